"""simulate_cohort: permanent NIV (the ENCALS composite's third part) and FVC.

Oracles: the truth table (each patient's NIV time, Weibull scale, dropout and study
end), the Weibull law written out here, and the FVC model's stated numbers
(CohortParams: baseline 88 ± 14 % predicted, 2.5 % per ALSFRS-R point lost, noise SD 4).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from scipy import stats
from scipy.optimize import brentq

import alsprog.simulate._cohort as cohort_module
from alsprog.simulate import CohortParams, simulate_cohort

DAYS_PER_MONTH = 30.4375  # data dictionary, `months` column
NIV_SUBJECT = [
    "niv_months",
    "niv_observed",
    "death_tracheostomy_or_niv_months",
    "death_tracheostomy_or_niv_observed",
]
FVC = ["fvc_liters", "fvc_percent_predicted"]
NIV_TRUTH = ["niv_weibull_scale", "niv_months_since_onset"]


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(2000, 20, seed=31)


@pytest.fixture(scope="module")
def pats(cohort):
    """Truth joined with the subjects table, patients only."""
    t = cohort.truth[cohort.truth["group"] == "als"].set_index("subject_id")
    s = cohort.subjects.set_index("subject_id").loc[t.index]
    return t.join(s.drop(columns=["group", "onset_site"]))


@pytest.fixture(scope="module")
def als_visits(cohort):
    v = cohort.visits[cohort.visits["subject_id"].str.startswith("P")].copy()
    first = v.groupby("subject_id")["visit_date"].transform("min")
    v["months"] = (v["visit_date"] - first).dt.days / DAYS_PER_MONTH
    return v


@pytest.fixture(scope="module")
def baseline_only():
    """20,000 patients seen once: the NIV law needs only the truth table."""
    return simulate_cohort(20_000, months=0, seed=2025)


# --------------------------------------------------------------------------- layout


def test_dtypes_and_controls_are_missing(cohort):
    s, v, t = cohort.subjects, cohort.visits, cohort.truth
    assert str(s["niv_observed"].dtype) == "boolean"
    assert str(s["death_tracheostomy_or_niv_observed"].dtype) == "boolean"
    assert all(str(s[c].dtype) == "float64" for c in NIV_SUBJECT[::2])
    assert all(str(v[c].dtype) == "float64" for c in FVC)
    ctl = s["group"] == "control"
    assert ctl.sum() == 20
    assert s.loc[ctl, NIV_SUBJECT].isna().all().all()
    assert s.loc[~ctl, NIV_SUBJECT].notna().all().all()
    cv = v["subject_id"].str.startswith("C")
    assert cv.sum() > 0 and v.loc[cv, FVC].isna().all().all()
    assert v.loc[~cv, FVC].notna().all().all()
    tc = t["group"] == "control"
    assert t.loc[tc, NIV_TRUTH].isna().all().all()
    assert np.isfinite(t.loc[~tc, NIV_TRUTH].to_numpy()).all()


# --------------------------------------------------------------------------- NIV


def test_composite_is_the_first_of_death_tracheostomy_and_niv(pats):
    death, niv = pats["death_or_tracheostomy_months"], pats["niv_months"]
    both = pats["death_tracheostomy_or_niv_months"]
    assert (both == np.minimum(death, niv)).all()
    expected = pats["event_observed"] | pats["niv_observed"]
    assert (pats["death_tracheostomy_or_niv_observed"] == expected).all()
    # NIV is never recorded after death or tracheostomy, nor after the last contact
    assert (niv <= death).all()
    # both kinds of composite event occur
    assert (pats["niv_observed"] & ~pats["event_observed"]).sum() > 50
    assert (~pats["niv_observed"] & pats["event_observed"]).sum() > 50


def test_niv_times_and_censoring_follow_the_truth(pats):
    t0 = pats["months_onset_to_baseline"]
    niv = pats["niv_months_since_onset"] - t0  # months from the first visit
    death = pats["event_months_since_onset"] - t0
    window = np.minimum(pats["dropout_months"], pats["study_end_months"])
    follow_up = pats["death_or_tracheostomy_months"]
    obs = pats["niv_observed"].astype(bool)
    # observed: the true start, within the death/tracheostomy follow-up
    assert np.allclose(pats.loc[obs, "niv_months"], niv[obs], rtol=0, atol=1e-9)
    assert (niv[obs] <= np.minimum(death, window)[obs]).all()
    # censored: NIV starts after that follow-up ends, which is the censoring time
    assert (niv[~obs] > follow_up[~obs]).all()
    assert (pats.loc[~obs, "niv_months"] == follow_up[~obs]).all()
    # every patient starts NIV after the first visit (none on NIV at entry)
    assert (niv > 0).all()


def test_niv_observed_fraction_is_plausible(pats):
    # 18 months of follow-up at the defaults: about half the patients reach the
    # composite; permanent NIV is part of it, not most of it (CohortParams docstring:
    # NIV first in about 43 % of the population's composite events)
    niv = pats["niv_observed"].mean()
    composite = pats["death_tracheostomy_or_niv_observed"].astype(bool)
    assert 0.12 <= niv <= 0.35
    assert 0.3 <= pats["niv_observed"].sum() / composite.sum() <= 0.55
    assert composite.mean() > pats["event_observed"].mean()


@pytest.mark.slow  # seconds: the quick tier is full
@pytest.mark.parametrize("median", [36.0, 26.0])
def test_population_niv_median_from_onset(median):
    # the population probability of no NIV, averaged over the patients' Weibull
    # scales, is one half at niv_median_months (as for death/tracheostomy, the
    # cohort's rates differ slightly from the calibration's: abs 1.5 months)
    c = simulate_cohort(20_000, months=0, seed=7, niv_median_months=median)
    scale = c.truth["niv_weibull_scale"].to_numpy()
    k = c.params.niv_weibull_shape

    def no_niv(t):
        return np.mean(np.exp(-((t / scale) ** k)))

    assert brentq(lambda t: no_niv(t) - 0.5, 1.0, 500.0) == pytest.approx(
        median, abs=1.5
    )


def test_niv_times_are_weibull_given_no_niv_at_baseline(baseline_only):
    # S(niv) / S(T0) of a left-truncated Weibull is Uniform(0, 1)
    t = baseline_only.truth
    k = baseline_only.params.niv_weibull_shape
    n, t0, s = (
        t["niv_months_since_onset"],
        t["months_onset_to_baseline"],
        t["niv_weibull_scale"],
    )
    u = np.exp(-((n / s) ** k - (t0 / s) ** k))
    assert stats.kstest(u, "uniform").pvalue > 0.001
    assert (n > t0).all()


def test_niv_comes_sooner_for_fast_progressors(baseline_only):
    t = baseline_only.truth
    niv = t["niv_months_since_onset"] - t["months_onset_to_baseline"]
    tert = pd.qcut(t["slope_12m"], 3, labels=["fast", "mid", "slow"])
    med = niv.groupby(tert, observed=True).median()
    assert med["fast"] < med["mid"] < med["slow"]
    assert med["slow"] / med["fast"] > 2.0


def test_low_fvc_brings_niv_earlier(baseline_only):
    # the copula: baseline FVC is correlated (0.4 on the normal scale) with the
    # unit-exponential draw behind the NIV time, (N/s)^k - (T0/s)^k; the visit noise
    # (SD 4 on SD 14) dilutes it, and Spearman's rho of a normal pair with
    # correlation r is (6 / pi) asin(r / 2)
    t = baseline_only.truth.set_index("subject_id")
    k = baseline_only.params.niv_weibull_shape
    s = t["niv_weibull_scale"]
    e = (t["niv_months_since_onset"] / s) ** k - (
        t["months_onset_to_baseline"] / s
    ) ** k
    fvc = baseline_only.visits.set_index("subject_id")["fvc_percent_predicted"]
    rho = stats.spearmanr(fvc.loc[t.index], e).statistic
    r = baseline_only.params.niv_fvc_correlation * 14.0 / math.hypot(14.0, 4.0)
    assert rho == pytest.approx(6.0 / math.pi * math.asin(r / 2.0), abs=0.03)


def test_niv_can_be_switched_off():
    c = simulate_cohort(300, 5, seed=3, niv_median_months=math.inf)
    s = c.subjects[c.subjects["group"] == "als"]
    assert not s["niv_observed"].any()
    assert (s["niv_months"] == s["death_or_tracheostomy_months"]).all()
    assert (
        s["death_tracheostomy_or_niv_months"] == s["death_or_tracheostomy_months"]
    ).all()
    assert (s["death_tracheostomy_or_niv_observed"] == s["event_observed"]).all()
    assert np.isinf(c.truth.loc[c.truth["group"] == "als", NIV_TRUTH]).all().all()
    assert c.visits["fvc_percent_predicted"].notna().any()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("niv_median_months", 0.0),
        ("niv_median_months", -math.inf),
        ("niv_median_months", math.nan),
        ("niv_weibull_shape", 0.0),
        ("niv_fvc_correlation", 1.0),
        ("fvc_residual_sd", -1.0),
    ],
)
def test_bad_niv_fvc_parameters_name_the_field(field, value):
    with pytest.raises(ValueError, match=rf"`{field}`"):
        CohortParams(**{field: value})


# --------------------------------------------------------------------------- FVC


def test_fvc_is_in_range_and_starts_near_88_percent(als_visits):
    v = als_visits
    pct, litres = v["fvc_percent_predicted"], v["fvc_liters"]
    assert pct.between(5.0, 140.0).all()
    assert litres.between(0.0, 10.0, inclusive="neither").all()
    first = v[v["months"] == 0]
    # baseline N(88, 14) clipped to 40-130, plus visit noise SD 4
    assert first["fvc_percent_predicted"].mean() == pytest.approx(88.0, abs=1.5)
    assert first["fvc_percent_predicted"].std() == pytest.approx(
        math.hypot(14.0, 4.0), abs=1.5
    )
    # litres = % of a predicted 2-6 L
    predicted = 100.0 * litres / pct
    assert predicted[pct > 30].between(1.0, 7.0).all()


def test_fvc_declines_with_alsfrs_r(als_visits, pats):
    v = als_visits.join(
        pats[["months_onset_to_baseline", "d50", "dx"]], on="subject_id"
    )
    # the true (noise-free) total on the D50 sigmoid, and the points lost since entry
    since = v["months_onset_to_baseline"] + v["months"]
    true = 48.0 / (1.0 + np.exp((since - v["d50"]) / v["dx"]))
    base = 48.0 / (1.0 + np.exp((v["months_onset_to_baseline"] - v["d50"]) / v["dx"]))
    v["loss"] = base - true
    v = v[v["fvc_percent_predicted"].between(6.0, 139.0)]  # away from the clip
    # within-patient regression of FVC on the points lost: slope -2.5, residual SD 4
    g = v.groupby("subject_id")
    x = v["loss"] - g["loss"].transform("mean")
    y = v["fvc_percent_predicted"] - g["fvc_percent_predicted"].transform("mean")
    slope = (x * y).sum() / (x**2).sum()
    assert slope == pytest.approx(-2.5, abs=0.1)
    dof = len(v) - v["subject_id"].nunique() - 1
    assert math.sqrt(((y - slope * x) ** 2).sum() / dof) == pytest.approx(4.0, abs=0.3)
    # and it falls with the observed ALSFRS-R total
    r = stats.spearmanr(v["alsfrs_r_total"], v["fvc_percent_predicted"]).statistic
    assert r > 0.3


# --------------------------------------------------------------------------- seeds


def test_same_seed_same_numbers_other_seed_others():
    a, b = simulate_cohort(40, 3, seed=5), simulate_cohort(40, 3, seed=5)
    assert_frame_equal(a.subjects[NIV_SUBJECT], b.subjects[NIV_SUBJECT])
    assert_frame_equal(a.visits[FVC], b.visits[FVC])
    assert_frame_equal(a.truth[NIV_TRUTH], b.truth[NIV_TRUTH])
    c = simulate_cohort(40, 3, seed=6)
    assert not np.allclose(
        a.truth["niv_months_since_onset"].dropna(),
        c.truth["niv_months_since_onset"].dropna(),
    )


def test_niv_and_fvc_draws_leave_everything_else_unchanged(monkeypatch):
    """With the NIV/FVC draws replaced by a stub that draws nothing, every other
    column, and a caller's generator afterwards, are exactly the same."""
    real = cohort_module.draw_niv_fvc

    def stub(p, pat, t, rng):
        out = real(p, pat, t, np.random.default_rng(0))
        return {k: np.full_like(v, np.nan) for k, v in out.items()}

    kwargs = {"n_patients": 30, "n_controls": 4, "months": 12}
    g1 = np.random.default_rng(99)
    with_niv = simulate_cohort(**kwargs, seed=g1)
    after1 = g1.random(3)
    monkeypatch.setattr(cohort_module, "draw_niv_fvc", stub)
    g2 = np.random.default_rng(99)
    without = simulate_cohort(**kwargs, seed=g2)
    after2 = g2.random(3)
    np.testing.assert_array_equal(after1, after2)
    new = {"subjects": NIV_SUBJECT, "visits": FVC, "truth": NIV_TRUTH}
    for table in ("subjects", "visits", "imaging", "truth", "imaging_truth"):
        drop = new.get(table, [])
        assert_frame_equal(
            getattr(with_niv, table).drop(columns=drop),
            getattr(without, table).drop(columns=drop),
            check_exact=True,
        )
    assert without.truth["niv_weibull_scale"].isna().all()
