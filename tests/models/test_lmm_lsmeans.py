"""LS means and their contrasts equal emmeans' (issue 22).

References: tests/reference/emmeans_reference.json (R 4.2.2, lme4 1.1.31, lmerTest
3.1.3, emmeans with ``lmer.df = "satterthwaite"``), written offline by
emmeans_reference.R on the simulated ALS cohort als_sim.csv and sleepstudy.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from lmm_testdata import REFERENCE

from alsprog.errors import ModelSpecificationError
from alsprog.models import LinearMixedModel

EMM = json.loads((REFERENCE / "emmeans_reference.json").read_text())


@pytest.fixture(scope="module")
def als_fit():
    als = pd.read_csv(REFERENCE / "als_sim.csv", dtype={"subject_id": str})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rows with missing values dropped
        return LinearMixedModel(
            "frs ~ months * onset_site + age_at_onset + (months | subject_id)"
        ).fit(als.assign(frs=als.pop("alsfrs_r_total")))


def _check(got, ref, label_cols, p_rel=1e-4):
    r = pd.DataFrame(ref)
    for c in label_cols:
        assert got[c].astype(str).tolist() == r[c].astype(str).tolist()
    est = "emmean" if "emmean" in r else "estimate"
    np.testing.assert_allclose(got["estimate"], r[est], rtol=1e-6)
    np.testing.assert_allclose(got["std_error"], r["SE"], rtol=1e-5)
    np.testing.assert_allclose(got["df"], r["df"], rtol=1e-5)
    np.testing.assert_allclose(got["lower"], r["lower.CL"], rtol=1e-5)
    np.testing.assert_allclose(got["upper"], r["upper.CL"], rtol=1e-5)
    np.testing.assert_allclose(got["t"], r["t.ratio"], rtol=1e-5)
    np.testing.assert_allclose(got["p_value"], r["p.value"], rtol=p_rel, atol=1e-12)


def test_lsmeans_at_month_12(als_fit):
    got = als_fit.lsmeans("onset_site", at={"months": 12})
    assert list(got.columns) == [
        "onset_site",
        "estimate",
        "std_error",
        "df",
        "lower",
        "upper",
        "t",
        "p_value",
    ]
    _check(got, EMM["als_site_m12"], ["onset_site"])


def test_lsmeans_at_the_covariate_means(als_fit):
    _check(als_fit.lsmeans("onset_site"), EMM["als_site_mean"], ["onset_site"])
    # months and age at their means over the fit's rows: the same cells by hand
    f = als_fit._frame
    at = {"months": f["months"].mean(), "age_at_onset": f["age_at_onset"].mean()}
    np.testing.assert_allclose(
        als_fit.lsmeans("onset_site", at=at)["estimate"],
        als_fit.lsmeans("onset_site")["estimate"],
        rtol=1e-12,
    )


def test_lsmeans_over_two_specs(als_fit):
    got = als_fit.lsmeans(["onset_site", "months"], at={"months": [0, 6, 12]})
    _check(got, EMM["als_site_by_month"], ["onset_site"])
    assert got["months"].tolist() == [0, 0, 0, 6, 6, 6, 12, 12, 12]


@pytest.mark.parametrize(
    ("adjust", "key"),
    [
        ("none", "als_site_m12_pairs"),
        ("tukey", "als_site_m12_tukey"),
        ("bonferroni", "als_site_m12_bonf"),
    ],
)
def test_pairwise_contrasts(als_fit, adjust, key):
    got = als_fit.contrast("onset_site", at={"months": 12}, adjust=adjust)
    assert got["contrast"].tolist() == [
        "bulbar - other",
        "bulbar - spinal",
        "other - spinal",
    ]
    _check(got, EMM[key], ["contrast"])


def test_sleepstudy_numeric_covariate_in_at(sleepstudy):
    m = LinearMixedModel("Reaction ~ Days + (Days | Subject)").fit(sleepstudy)
    got = m.lsmeans("Days", at={"Days": [0, 9]})
    _check(got, EMM["sleep_days"], ["Days"])
    # the cell at day 9 is the contest of (1, 9)
    c = m.contest([1, 9]).iloc[0]
    assert got["estimate"].iloc[1] == pytest.approx(c["estimate"], rel=1e-12)
    assert got["df"].iloc[1] == pytest.approx(c["df"], rel=1e-12)


def test_lsmeans_refusals(als_fit):
    with pytest.raises(ModelSpecificationError, match="`specs` must name variables"):
        als_fit.lsmeans("arm")
    with pytest.raises(ModelSpecificationError, match=r"`at` names \['visit'\]"):
        als_fit.lsmeans("onset_site", at={"visit": 3})
    with pytest.raises(ModelSpecificationError, match=r"holds \['limb'\], not levels"):
        als_fit.lsmeans("onset_site", at={"onset_site": "limb"})
    with pytest.raises(ModelSpecificationError, match="`at` must be a dict"):
        als_fit.lsmeans("onset_site", at=[12])
    with pytest.raises(ModelSpecificationError, match="single cell"):
        als_fit.contrast("onset_site", at={"onset_site": "bulbar"})
    with pytest.raises(ValueError, match="`adjust` must be"):
        als_fit.contrast("onset_site", adjust="holm")
    with pytest.raises(ValueError, match="`method` must be 'pairwise'"):
        als_fit.contrast("onset_site", method="trt.vs.ctrl")
    with pytest.raises(ValueError, match="`ddf` must be one of"):
        als_fit.lsmeans("onset_site", ddf="kr")


def test_kenward_roger_lsmeans_and_pairs(als_fit):
    """emmeans' default for lmer fits: Kenward-Roger df and adjusted SEs."""
    got = als_fit.lsmeans("onset_site", at={"months": 12}, ddf="kenward-roger")
    _check(got, EMM["als_site_m12_kr"], ["onset_site"])
    pairs = als_fit.contrast(
        "onset_site", at={"months": 12}, ddf="kenward-roger", adjust="none"
    )
    _check(pairs, EMM["als_site_m12_kr_pairs"], ["contrast"])
