"""Baselines (ΔFS, per-patient OLS, DREAM random forest), evaluate, calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from forecast_testdata import first_months, split_cohort
from numpy.testing import assert_allclose
from scipy import integrate
from scipy.stats import norm
from sklearn.base import clone

from alsprog.errors import ModelSpecificationError, NotFittedError
from alsprog.forecast import (
    DeltaFSBaseline,
    PatientOLSBaseline,
    RandomForestSlope,
    calibration,
    crps_draws,
    evaluate,
    forecast,
    history_features,
    window_slopes,
)
from alsprog.models._gaussian import censored_normal_mean, crps_censored_normal


def test_delta_fs_baseline_extrapolates_the_pre_slope():
    _, _, train, test = split_cohort()
    b = DeltaFSBaseline().fit(train)
    hist = first_months(test)
    f = forecast(b, hist, [6.0, 12.0])
    last = (
        hist.sort_values("months").groupby("subject_id").tail(1).set_index("subject_id")
    )
    a, c = b.error_variance_.to_numpy()
    e = b.standardised_errors_
    for sid, g in f.groupby("subject_id"):
        h = last.loc[sid]
        ahead = g["months"].to_numpy() - h["months"]
        point = h["alsfrs_r_total"] - h["delta_fs"] * ahead
        expect = np.clip(point + np.sqrt(a + c * ahead**2) * np.median(e), 0, 48)
        assert_allclose(g["median"], expect, rtol=1e-10)


def test_patient_ols_baseline_is_numpy_polyfit():
    _, _, train, test = split_cohort()
    b = PatientOLSBaseline().fit(train)
    hist = first_months(test)
    lines = b._lines(hist)
    for sid, g in hist.groupby("subject_id"):
        if g["months"].nunique() < 2:
            assert lines.loc[sid, "slope"] == pytest.approx(b.mean_slope_)
            continue
        slope, icept = np.polyfit(g["months"], g["alsfrs_r_total"], 1)
        assert lines.loc[sid, "slope"] == pytest.approx(slope, rel=1e-10)
        tl = g["months"].max()
        assert lines.loc[sid, "anchor"] == pytest.approx(icept + slope * tl, rel=1e-10)


def test_random_forest_is_reproducible_and_clonable():
    _, _, train, test = split_cohort()
    rf = RandomForestSlope(n_estimators=40, random_state=3)
    hist = first_months(test)
    a = forecast(clone(rf).fit(train), hist, [12.0], n_samples=20, seed=1)
    b = forecast(clone(rf).fit(train), hist, [12.0], n_samples=20, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert rf.get_params()["n_estimators"] == 40
    fitted = clone(rf).fit(train)
    assert {"first", "last", "slope", "delta_fs", "bulbar"} <= set(fitted.features_)
    # out-of-bag slope predictions track the observed months 3-12 slopes
    target = window_slopes(train, start=3, end=12).reindex(fitted._oob.index)
    assert np.corrcoef(fitted._oob, target)[0, 1] > 0.1


def test_predict_means_one_thing_forecasts_go_through_forecast():
    """``predict`` is a model's per-row point prediction; a baseline forecasts new
    patients only through ``forecast`` (it has no ``predict`` of another meaning)."""
    from alsprog.forecast import CalibratedForecaster

    for cls in (DeltaFSBaseline, PatientOLSBaseline, CalibratedForecaster):
        assert not hasattr(cls, "predict"), cls


def test_baselines_need_fit_and_enough_patients():
    _, _, train, test = split_cohort()
    with pytest.raises(NotFittedError):
        forecast(DeltaFSBaseline(), first_months(test), [12.0])
    few = train[train["subject_id"].isin(train["subject_id"].unique()[:5])]
    with pytest.raises(ModelSpecificationError, match="at least 10"):
        PatientOLSBaseline().fit(few)


def test_history_features_and_window_slopes_by_hand():
    df = pd.DataFrame(
        {
            "subject_id": ["A"] * 5 + ["B"],
            "months": [0.0, 3.0, 6.0, 9.0, 12.0, 0.0],
            "alsfrs_r_total": [40.0, 39.0, 36.0, 35.0, 31.0, 30.0],
            "onset_site": ["bulbar"] * 5 + ["spinal"],
        }
    )
    s = window_slopes(df, start=3, end=12)
    # least squares through (3,39) (6,36) (9,35) (12,31): slope -0.8667
    assert s["A"] == pytest.approx(np.polyfit([3, 6, 9, 12], [39, 36, 35, 31], 1)[0])
    assert "B" not in s.index
    f = history_features(df[df["months"] <= 3])
    assert f.loc["A", "slope"] == pytest.approx(-1 / 3)
    assert np.isnan(f.loc["B", "slope"]) and f.loc["B", "n_visits"] == 1
    assert f.loc["A", "bulbar"] == 1.0 and f.loc["B", "bulbar"] == 0.0


# ------------------------------------------------------------------ scores
@pytest.mark.parametrize(
    ("loc", "scale", "y"), [(24.0, 3.0, 20.0), (1.0, 4.0, 0.0), (46.0, 5.0, 48.0)]
)
def test_censored_normal_mean_and_crps_against_quadrature(loc, scale, y):
    lo, hi = 0.0, 48.0
    mean = (
        lo * norm.cdf(lo, loc, scale)
        + integrate.quad(lambda x: x * norm.pdf(x, loc, scale), lo, hi)[0]
        + hi * norm.sf(hi, loc, scale)
    )
    assert censored_normal_mean(np.array(loc), np.array(scale)) == pytest.approx(
        mean, abs=1e-8
    )

    def F(x):
        return norm.cdf(x, loc, scale)

    crps = (
        integrate.quad(lambda x: F(x) ** 2, lo, y)[0]
        + integrate.quad(lambda x: (1 - F(x)) ** 2, y, hi)[0]
    )
    got = crps_censored_normal(np.array([y]), np.array([loc]), np.array([scale]))
    assert got[0] == pytest.approx(crps, abs=2e-4)


def test_sample_crps_matches_normal_closed_form():
    rng = np.random.default_rng(4)
    y = np.array([0.0, 1.0, -2.0])
    x = rng.normal(0.0, 1.0, (3, 40000))
    z = y
    exact = z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi)
    assert_allclose(crps_draws(x, y), exact, atol=0.01)


def test_evaluate_and_calibration_by_hand():
    f = pd.DataFrame(
        {
            "model": ["m"] * 4,
            "subject_id": ["A", "A", "B", "B"],
            "months": [6.0, 12.0, 6.0, 12.0],
            "horizon": [6.0, 12.0, 6.0, 12.0],
            "mean": [36.0, 30.0, 40.0, 38.0],
            "lower": [30.0, 25.0, 38.0, 30.0],
            "upper": [40.0, 35.0, 42.0, 40.0],
            "loc": [36.0, 30.0, 40.0, 38.0],
            "scale": [2.0, 2.0, 2.0, 2.0],
        }
    )
    a = pd.DataFrame(
        {
            "subject_id": ["A", "A", "A", "B", "B", "B"],
            "months": [3.0, 6.0, 12.0, 3.0, 6.0, 12.0],
            "alsfrs_r_total": [39.0, 37.0, 27.0, 41.0, 40.0, 41.0],
        }
    )
    r = evaluate(f, a).set_index("horizon")
    assert r.loc[6.0, "rmse"] == pytest.approx(np.sqrt((1 + 0) / 2))
    assert r.loc[12.0, "bias"] == pytest.approx(((30 - 27) + (38 - 41)) / 2)
    assert r.loc[12.0, "coverage"] == pytest.approx(0.5)  # B's 41 is above 40
    assert r.loc[6.0, "width"] == pytest.approx(7.0)
    # slope over 6-12 from forecast means vs observed (the 3-month rows have no
    # forecast, so only 6 and 12 count): A -1 vs -10/6, B -1/3 vs +1/6
    d = np.array([-1 - (-10 / 6), -1 / 3 - 1 / 6])
    assert r["slope_rmsd"].iloc[0] == pytest.approx(np.sqrt(np.mean(d**2)))
    c = calibration(f, a, levels=[0.5])
    z = norm.ppf(0.75) * 2
    inside = [
        abs(36 - 37) <= z,
        abs(30 - 27) <= z,
        abs(40 - 40) <= z,
        abs(38 - 41) <= z,
    ]
    assert c["coverage"].iloc[0] == pytest.approx(np.mean(inside))


def test_slope_rmsd_uses_the_known_history_values():
    """With ``history``, the visits already seen enter the predicted slope with their
    observed values (a forecast made there is ignored); by hand with np.polyfit."""
    f = pd.DataFrame(
        {
            "subject_id": ["A", "A", "A"],
            "months": [3.0, 6.0, 12.0],
            "horizon": [np.nan, 6.0, 12.0],
            "mean": [38.0, 36.0, 30.0],  # smoothed 38 at the known month-3 visit
        }
    )
    a = pd.DataFrame(
        {
            "subject_id": ["A"] * 4,
            "months": [0.0, 3.0, 6.0, 12.0],
            "alsfrs_r_total": [42.0, 40.0, 37.0, 27.0],
        }
    )
    hist = a[a["months"] <= 3]
    obs = np.polyfit([3, 6, 12], [40, 37, 27], 1)[0]
    smoothed = np.polyfit([3, 6, 12], [38, 36, 30], 1)[0]
    known = np.polyfit([3, 6, 12], [40, 36, 30], 1)[0]
    plain = evaluate(f, a)
    assert plain["slope_rmsd"].iloc[0] == pytest.approx(abs(smoothed - obs))
    r = evaluate(f, a, history=hist)
    assert r["slope_rmsd"].iloc[0] == pytest.approx(abs(known - obs))
    # the per-horizon scores do not change
    pd.testing.assert_frame_equal(
        r.drop(columns=["slope_rmsd", "slope_r"]),
        plain.drop(columns=["slope_rmsd", "slope_r"]),
    )
    # a history visit without a forecast row still counts (both slopes)
    r2 = evaluate(f.iloc[1:], a, history=hist)
    assert r2["slope_rmsd"].iloc[0] == pytest.approx(abs(known - obs))
    assert r2["slope_n"].iloc[0] == 1
    with pytest.raises(ModelSpecificationError, match="history"):
        evaluate(f, a, history=hist.drop(columns="months"))
