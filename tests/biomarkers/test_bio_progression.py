"""screen_progression_markers and imaging_change_rates on simulated cohorts."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alsprog.biomarkers import imaging_change_rates, screen_progression_markers
from alsprog.biomarkers._progression import _bh_qvalues
from alsprog.data import assemble
from alsprog.errors import DataValidationError, ModelSpecificationError
from alsprog.simulate import simulate_cohort

COUPLED = ["fa_cst_left", "md_cst_right", "thickness_precentral_left"]
NOISE = [f"noise_{j}" for j in range(10)]


@pytest.fixture(scope="module")
def cohort():
    c = simulate_cohort(80, 60, months=12, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return c, assemble(c.visits, c.subjects, c.imaging)


@pytest.fixture(scope="module")
def coupled_table(cohort):
    """The simulator draws baseline imaging independently of the progression rate;
    build the coupling in: every session of a patient of the COUPLED features is
    shifted by 1.5 feature SDs x its standardised true progression rate.  NOISE
    features are subject effects + scan noise, unrelated to anything."""
    c, df = cohort
    rate = c.truth.set_index("subject_id")["progression_rate"]
    als = df.loc[df["group"] == "als", "subject_id"].unique()
    r = rate.reindex(als)
    z = df["subject_id"].map((r - r.mean()) / r.std()).fillna(0.0).to_numpy()
    out = df.copy()
    for f in COUPLED:
        out[f] = df[f] + 1.5 * df.loc[df["group"] == "als", f].std() * z
    rng = np.random.default_rng(1)
    subj = df["subject_id"].unique()
    u = pd.DataFrame(rng.standard_normal((len(subj), len(NOISE))), index=subj)
    scanned = df["fa_cst_left"].notna().to_numpy()
    for j, f in enumerate(NOISE):
        x = df["subject_id"].map(u[j]).to_numpy() + 0.2 * rng.standard_normal(len(df))
        out[f] = np.where(scanned, x, np.nan)
    return out


@pytest.fixture(scope="module")
def screen(coupled_table):
    return screen_progression_markers(coupled_table, COUPLED + NOISE)


def test_coupled_features_recovered_null_not_flagged(screen):
    res = screen.set_index("feature")
    assert res.loc[COUPLED, "significant"].all()
    # every coupled feature was shifted up with the rate, and a higher rate means a
    # steeper ALSFRS-R fall: the time x feature interaction is negative
    assert (res.loc[COUPLED, "estimate"] < 0).all()
    # FDR 5% over 10 nulls: at most one false discovery
    assert res.loc[NOISE, "significant"].sum() <= 1
    assert (res["n_subjects"] == 80).all()


def test_screen_columns_and_pvalues_consistent(screen):
    assert screen.columns[:7].tolist() == [
        "feature",
        "estimate",
        "std_error",
        "z",
        "p_value",
        "q_value",
        "significant",
    ]
    np.testing.assert_allclose(screen["z"], screen["estimate"] / screen["std_error"])
    np.testing.assert_allclose(
        screen["p_value"], 2 * stats.norm.sf(screen["z"].abs()), rtol=1e-12
    )
    assert (screen["q_value"] >= screen["p_value"] - 1e-15).all()


def test_bh_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(0).uniform(size=25) ** 2
    ref = multitest.multipletests(p, method="fdr_bh")[1]
    np.testing.assert_allclose(_bh_qvalues(p), ref, rtol=1e-12)
    q = _bh_qvalues([0.2, np.nan, 0.01])
    assert np.isnan(q[1])
    np.testing.assert_allclose(q[[0, 2]], [0.2, 0.02])


def test_change_rates_affected_vs_negative_control(cohort):
    _, df = cohort
    feats = ["fa_cst_left", "fa_cst_right", "thickness_cuneus_left"]
    res = imaging_change_rates(df, feats).set_index("feature")
    fa = res.loc[["fa_cst_left", "fa_cst_right"]]
    # simulator truth: CST FA falls 0.010/year faster in ALS
    assert (fa["als_slope"] < fa["control_slope"]).all()
    assert (fa["difference_ci_upper"] < 0).all()
    assert fa["difference"].between(-0.02, -0.003).all()
    assert (fa["srm"] < 0).all()
    assert (np.isfinite(fa["n_per_arm"]) & (fa["n_per_arm"] > 0)).all()
    cun = res.loc["thickness_cuneus_left"]
    assert cun["difference_ci_lower"] < 0 < cun["difference_ci_upper"]
    assert (res["n_als"] == 80).all() and (res["n_control"] == 60).all()
    assert res["note"].map(type).eq(str).all()


def test_sample_size_follows_slowing(cohort):
    _, df = cohort
    a = imaging_change_rates(df, ["fa_cst_left"], slowing=0.25)
    b = imaging_change_rates(df, ["fa_cst_left"], slowing=0.5)
    # n scales as 1 / delta^2 (Edland formula, same variance components)
    assert math.isclose(a.loc[0, "n_per_arm"], 4 * b.loc[0, "n_per_arm"], rel_tol=1e-9)


def test_srm_matches_hand_ols(cohort):
    _, df = cohort
    d = df.loc[(df["group"] == "als") & df["fa_cst_left"].notna()]
    slopes = [
        np.polyfit(g["months"], g["fa_cst_left"], 1)[0]
        for _, g in d.groupby("subject_id")
        if g["months"].nunique() >= 2
    ]
    res = imaging_change_rates(df, ["fa_cst_left"])
    assert math.isclose(
        res.loc[0, "srm"], np.mean(slopes) / np.std(slopes, ddof=1), rel_tol=1e-8
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"slowing": 0}, "`slowing`"),
        ({"power": 1.0}, "`power`"),
        ({"visit_months": (6, 0)}, "`visit_months`"),
        ({"time": "weeks"}, "'weeks'"),
    ],
)
def test_change_rates_bad_arguments(cohort, kwargs, match):
    _, df = cohort
    with pytest.raises(ModelSpecificationError, match=match):
        imaging_change_rates(df, ["fa_cst_left"], **kwargs)


def test_screen_bad_input(cohort):
    _, df = cohort
    with pytest.raises(ModelSpecificationError, match="'nope'"):
        screen_progression_markers(df, ["nope"])
    with pytest.raises(ModelSpecificationError, match="`alpha`"):
        screen_progression_markers(df, ["fa_cst_left"], alpha=5)
    with pytest.raises(ModelSpecificationError, match="not numeric"):
        screen_progression_markers(df, ["site"])


def test_no_follow_up_scans_is_a_data_error():
    c = simulate_cohort(15, 10, months=0, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = assemble(c.visits, c.subjects, c.imaging)
    with pytest.raises(DataValidationError, match="two sessions"):
        imaging_change_rates(df, ["fa_cst_left"])
