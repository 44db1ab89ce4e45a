"""Satterthwaite t-tests of the fixed effects equal lmerTest's (issue 22).

References: tests/reference/lmertest_reference.json (R 4.2.2, lme4 1.1.31, lmerTest
3.1.3), written offline by lmertest_reference.R on lme4's sleepstudy and the
simulated ALS cohort als_sim.csv.  Both sides take numerical derivatives
(Richardson-extrapolated central differences), so the df agree to about 1e-6
relative; the issue asks for 1e-4, and p to 1e-6 absolute below 0.01.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from lmm_testdata import REFERENCE
from scipy import stats as st

from alsprog.errors import ModelSpecificationError
from alsprog.models import LinearMixedModel

LMERTEST = json.loads((REFERENCE / "lmertest_reference.json").read_text())
ALS = "frs ~ months * onset_site + age_at_onset + (months | subject_id)"
CASES = {
    "sleep_reml": ("Reaction ~ Days + (Days | Subject)", True),
    "sleep_ml": ("Reaction ~ Days + (Days | Subject)", False),
    "sleep_int": ("Reaction ~ Days + (1 | Subject)", True),
    "sleep_uncorr": ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", True),
    "als_reml": (ALS, True),
    "als_ml": (ALS, False),
}


def _data(name, sleepstudy):
    if name.startswith("als"):
        als = pd.read_csv(REFERENCE / "als_sim.csv", dtype={"subject_id": str})
        return als.assign(frs=als.pop("alsfrs_r_total"))
    return sleepstudy


@pytest.fixture(scope="module")
def fits(sleepstudy):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # als: rows with missing values dropped
        for name, (formula, reml) in CASES.items():
            out[name] = LinearMixedModel(formula, reml=reml).fit(
                _data(name, sleepstudy)
            )
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_satterthwaite_table_equals_lmertest(fits, name):
    m, r = fits[name], LMERTEST[name]
    fixed = m.summary().tables["fixed"]
    assert list(fixed.columns) == [
        "estimate",
        "std_error",
        "df",
        "t",
        "p_value",
        "ci_lower",
        "ci_upper",
    ]
    np.testing.assert_allclose(fixed["estimate"], r["estimate"], rtol=1e-6)
    np.testing.assert_allclose(fixed["std_error"], r["se"], rtol=1e-5)
    np.testing.assert_allclose(fixed["df"], r["df"], rtol=1e-5)
    np.testing.assert_allclose(fixed["t"], r["t"], rtol=1e-5)
    p, rp = fixed["p_value"].to_numpy(), np.array(r["p"])
    small = rp < 0.01
    np.testing.assert_allclose(p[small], rp[small], rtol=0, atol=1e-6)
    np.testing.assert_allclose(p[~small], rp[~small], rtol=1e-4)
    # t-based intervals on each coefficient's df (R: est -/+ qt(0.975, df) se)
    q = st.t.ppf(0.975, r["df"])
    np.testing.assert_allclose(
        fixed["ci_lower"], np.array(r["estimate"]) - q * np.array(r["se"]), rtol=1e-5
    )
    ci = m.confint(ddf="satterthwaite")
    np.testing.assert_allclose(ci["upper"], fixed["ci_upper"], rtol=1e-12)


@pytest.mark.parametrize("name", ["sleep_reml", "als_reml"])
def test_contest_equals_lmertest(fits, name):
    m, r = fits[name], LMERTEST[name]
    got = m.contest(r["contrast_L"]).iloc[0]
    ref = r["contrast"]
    assert got["estimate"] == pytest.approx(ref["estimate"], rel=1e-6)
    assert got["std_error"] == pytest.approx(ref["se"], rel=1e-5)
    assert got["df"] == pytest.approx(ref["df"], rel=1e-5)
    assert got["t"] == pytest.approx(ref["t"], rel=1e-5)
    assert got["p_value"] == pytest.approx(ref["p"], rel=1e-3, abs=1e-300)
    # the same contrast by coefficient names
    names = list(m.fe_params_.index)
    named = {n: c for n, c in zip(names, r["contrast_L"], strict=True) if c}
    assert m.contest(named).iloc[0]["df"] == got["df"]


def test_normal_ddf_is_a_z_test(fits):
    m = fits["sleep_reml"]
    z = m.contest(np.eye(2), ddf="normal")
    assert np.isinf(z["df"]).all()
    t = m.fe_params_ / m.bse_
    np.testing.assert_allclose(z["p_value"], 2 * st.norm.sf(np.abs(t)), rtol=1e-12)
    ci = m.confint(0.9)  # the default: normal quantiles, lme4's Wald intervals
    np.testing.assert_allclose(
        ci["lower"], m.fe_params_ - st.norm.ppf(0.95) * m.bse_, rtol=1e-12
    )
    text = str(m.summary(ddf="normal")).splitlines()
    at = text.index("Fixed effects:")
    assert text[at + 1].split() == [
        "Estimate",
        "Std.",
        "Error",
        "z",
        "value",
        "Pr(>|z|)",
    ]
    lme4 = m.summary(ddf=None).tables["fixed"]
    assert list(lme4.columns) == ["estimate", "std_error", "t", "ci_lower", "ci_upper"]


def test_contest_refuses_bad_contrasts(fits):
    m = fits["sleep_reml"]
    with pytest.raises(
        ModelSpecificationError, match=r"needs 2 coefficients .*shape \(3,\)"
    ):
        m.contest([1, 0, 0])
    with pytest.raises(
        ModelSpecificationError, match=r"\['days'\], which are not fixed"
    ):
        m.contest({"days": 1})
    with pytest.raises(
        ValueError, match="`ddf` must be one of 'satterthwaite', 'normal'"
    ):
        m.contest([0, 1], ddf="kr")


def test_saved_model_gives_the_same_df(fits, tmp_path):
    m = fits["als_reml"]
    m.save(tmp_path / "m.npz")
    back = LinearMixedModel.load(tmp_path / "m.npz")
    np.testing.assert_allclose(
        back.contest(np.eye(7))["df"], m.contest(np.eye(7))["df"], rtol=1e-10
    )
