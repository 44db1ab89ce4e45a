"""CalibratedForecaster: recalibration against known truth."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest

from alsprog.errors import ModelSpecificationError
from alsprog.forecast import CalibratedForecaster, backtest, evaluate, forecast
from alsprog.models import LinearMixedModel

RIGHT = "alsfrs_r_total ~ months + (months | subject_id)"
WRONG = "alsfrs_r_total ~ months + (1 | subject_id)"  # ignores the slope variance


@functools.lru_cache(maxsize=2)
def linear_cohort(n: int = 1200, seed: int = 3) -> pd.DataFrame:
    """Random-intercept-and-slope data, visits every 3 months to 18, no dropout."""
    rng = np.random.default_rng(seed)
    months = np.arange(0.0, 19.0, 3.0)
    a = rng.normal(40.0, 3.0, n)
    b = rng.normal(-0.7, 0.35, n)
    y = a[:, None] + b[:, None] * months + rng.normal(0.0, 1.5, (n, len(months)))
    return pd.DataFrame(
        {
            "subject_id": np.repeat([f"S{i:04d}" for i in range(n)], len(months)),
            "months": np.tile(months, n),
            "alsfrs_r_total": np.clip(np.round(y), 0, 48).ravel().astype(float),
        }
    )


def _split(df: pd.DataFrame, n_test: int = 400):
    ids = df["subject_id"].unique()
    test = df["subject_id"].isin(ids[:n_test])
    return df[~test], df[test]


def _score(model, train, test):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model.fit(train)
    hist = test[test["months"] <= 3.0]
    at = test[test["months"] > 3.0][["subject_id", "months"]]
    f = forecast(fitted, hist, at, level=0.9)
    f["horizon"] = f["months"]
    return evaluate(f, test).set_index("horizon")


def test_a_misspecified_model_is_recalibrated():
    train, test = _split(linear_cohort())
    raw = _score(LinearMixedModel(WRONG), train, test)
    cal = _score(CalibratedForecaster(LinearMixedModel(WRONG)), train, test)
    # random intercept only: the bands do not widen with time, far too narrow late
    assert raw.loc[18.0, "coverage"] < 0.8
    for h in (6.0, 12.0, 18.0):
        assert 0.86 <= cal.loc[h, "coverage"] <= 0.94, cal.loc[h]
    assert cal.loc[18.0, "width"] > raw.loc[18.0, "width"]


def test_a_correct_model_is_left_nearly_unchanged():
    train, test = _split(linear_cohort())
    raw = _score(LinearMixedModel(RIGHT), train, test)
    cal = _score(CalibratedForecaster(LinearMixedModel(RIGHT)), train, test)
    np.testing.assert_allclose(cal["width"], raw["width"], rtol=0.08)
    np.testing.assert_allclose(cal["rmse"], raw["rmse"], rtol=0.02)
    c = CalibratedForecaster(LinearMixedModel(RIGHT)).fit(train)
    tab = c.calibration_
    assert (tab["n"] >= 50).all()
    # standardised errors of a correct model: mean 0, SD 1, 90 % range +-1.645
    np.testing.assert_allclose(tab["mean_z"], 0.0, atol=0.1)
    np.testing.assert_allclose(tab["sd_z"], 1.0, atol=0.1)
    np.testing.assert_allclose(tab["q95"], 1.645, atol=0.15)


def test_draws_and_summaries_agree_and_are_reproducible():
    train, test = _split(linear_cohort())
    c = CalibratedForecaster(LinearMixedModel(WRONG)).fit(train)
    hist = test[test["months"] <= 3.0]
    f = forecast(c, hist, [9.0, 15.0], n_samples=4000, seed=2)
    d = f.filter(like="draw_").to_numpy()
    se = d.std(axis=1) / np.sqrt(d.shape[1])  # Monte Carlo error of the draws' mean
    assert np.all(np.abs(d.mean(axis=1) - f["mean"]) < 4.5 * se + 1e-9)
    assert ((f["lower"] <= f["median"]) & (f["median"] <= f["upper"])).all()
    g = forecast(c, hist, [9.0, 15.0], n_samples=4000, seed=2)
    pd.testing.assert_frame_equal(f, g)


def test_clone_backtest_and_errors():
    from sklearn.base import clone

    c = CalibratedForecaster(LinearMixedModel(RIGHT), bin_months=4.0)
    assert clone(c).get_params()["bin_months"] == 4.0
    res = backtest(
        linear_cohort(300, 5), {"cal": c}, seed=1, n_samples=50, horizons=(6, 12)
    )
    assert set(res["horizon"]) == {6.0, 12.0}
    few = linear_cohort(300, 5)
    few = few[few["months"] <= 6.0].head(60)
    with pytest.raises(ModelSpecificationError, match="Too few training visits"):
        CalibratedForecaster(LinearMixedModel(RIGHT)).fit(few)


def _fast_ones_leave(df: pd.DataFrame) -> pd.DataFrame:
    """Informative dropout: patients whose own slope is steep leave after month 6,
    so the values seen late are the slower patients' (the model's mean is too low
    for them)."""
    slope = df.groupby("subject_id")[["months", "alsfrs_r_total"]].apply(
        lambda g: np.polyfit(g["months"], g["alsfrs_r_total"], 1)[0]
    )
    steep = df["subject_id"].map(slope).to_numpy() < -0.8
    return df[~(steep & (df["months"].to_numpy() > 6.0))]


def test_shift_false_keeps_the_model_centre_and_learns_only_the_band():
    train, test = _split(_fast_ones_leave(linear_cohort()))
    shifted = CalibratedForecaster(LinearMixedModel(RIGHT)).fit(train)
    kept = CalibratedForecaster(LinearMixedModel(RIGHT), shift=False).fit(train)
    # the observed late values lie above the model's forecasts (selection), and the
    # table reports the errors as observed either way
    late = shifted.calibration_["ahead"] > 8
    assert (shifted.calibration_.loc[late, "mean_z"] > 0.15).all()
    pd.testing.assert_frame_equal(shifted.calibration_, kept.calibration_)
    hist = test[test["months"] <= 3.0]
    at = [6.0, 9.0, 12.0, 15.0]
    raw = forecast(shifted.model_, hist, at)
    fs, fk = forecast(shifted, hist, at), forecast(kept, hist, at)
    inside = (fs["lower"] > 0) & (fs["upper"] < 48) & (fk["upper"] < 48)
    assert inside.mean() > 0.9
    # centre: the model's own centre (exactly where no error reaches a bound;
    # the clipping of far tails moves it a little near 48); band: the same width,
    # moved back by the shift
    zmax = max(np.abs(zz).max() for _, zz in kept._bins)
    far = (raw["loc"] + zmax * raw["scale"] < 48) & (
        raw["loc"] - zmax * raw["scale"] > 0
    )
    assert far.sum() > 100
    np.testing.assert_allclose(fk["mean"][far], raw["loc"][far], atol=1e-9)
    np.testing.assert_allclose(fk["mean"], raw["mean"], atol=0.1)
    np.testing.assert_allclose(
        (fk["upper"] - fk["lower"])[inside],
        (fs["upper"] - fs["lower"])[inside],
        rtol=1e-9,
    )
    assert (fs["mean"] - fk["mean"])[inside & (fs["months"] >= 12)].min() > 0.2
    with pytest.raises(TypeError, match="shift"):
        CalibratedForecaster(LinearMixedModel(RIGHT), shift="no").fit(train)
