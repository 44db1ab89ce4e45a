"""Forecasts from a JointModel: against dense algebra and Monte Carlo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from joint_testdata import fitted
from scipy.stats import norm

from alsprog.errors import DataValidationError
from alsprog.forecast import backtest, forecast


def _history(df: pd.DataFrame, n: int = 6, upto: float = 4.0) -> pd.DataFrame:
    ids = df["subject_id"].unique()[:n]
    h = df[df["subject_id"].isin(ids) & (df["months"] <= upto)]
    return h.reset_index(drop=True)


def _dense_posterior(jm, h: pd.DataFrame, sid: str):
    """Posterior N(m, P) of b | history by V = Z D Z' + s2 I (no Woodbury)."""
    rows = h[h["subject_id"] == sid]
    beta = jm.fe_params_.to_numpy()
    X = np.column_stack([np.ones(len(rows)), rows["months"], rows["x"]])
    Z = np.column_stack([np.ones(len(rows)), rows["months"]])
    D = jm.cov_re_.to_numpy()
    V = Z @ D @ Z.T + jm.scale_ * np.eye(len(rows))
    K = D @ Z.T @ np.linalg.inv(V)
    m = K @ (rows["y"].to_numpy() - X @ beta)
    P = D - K @ Z @ D
    return m, P, K @ X, rows["x"].iloc[0]


@pytest.mark.slow  # heavy for the quick tier; CI runs the slow tier
def test_forecast_regardless_of_survival_is_the_conditional_normal():
    df, jm = fitted()
    h = _history(df)
    f = forecast(jm, h, [6.0, 12.0], given_alive=False, level=0.8)
    beta = jm.fe_params_.to_numpy()
    cov_beta = jm.cov_params().to_numpy()
    for _, row in f.iterrows():
        m, P, KX, x = _dense_posterior(jm, h, row["subject_id"])
        t = row["months"]
        xf, zf = np.array([1.0, t, x]), np.array([1.0, t])
        loc = xf @ beta + zf @ m
        xe = xf - zf @ KX
        sd = np.sqrt(zf @ P @ zf + jm.scale_ + xe @ cov_beta @ xe)
        # outcome 'y' is not bounded by the data dictionary (issue 19: forecasts
        # are censored at the outcome's own range, none here)
        assert jm.outcome_bounds_ == (-np.inf, np.inf)
        censored = norm(loc, sd).expect(lambda v: np.clip(v, *jm.outcome_bounds_))
        hi = min(loc + norm.ppf(0.9) * sd, jm.outcome_bounds_[1])
        assert row["median"] == pytest.approx(min(loc, jm.outcome_bounds_[1]), abs=1e-6)
        assert row["mean"] == pytest.approx(censored, abs=1e-4)
        assert row["upper"] == pytest.approx(hi, abs=2e-3)  # quadrature
        assert row["lower"] == pytest.approx(loc - norm.ppf(0.9) * sd, abs=2e-3)


def test_forecast_given_alive_matches_monte_carlo():
    df, jm = fitted()
    h = _history(df, n=3)
    f = forecast(jm, h, [10.0], given_alive=True, level=0.9)
    rng = np.random.default_rng(3)
    beta = jm.fe_params_.to_numpy()
    gamma = jm.event_params_.loc["x", "coef"]
    H = jm._cumulative_hazard(np.array([10.0]))[0]
    for _, row in f.iterrows():
        m, P, _, x = _dense_posterior(jm, h, row["subject_id"])
        b = rng.multivariate_normal(m, P, 400_000)
        w = np.exp(-H * np.exp(gamma * x + b @ jm.alpha_))
        w /= w.sum()
        # fixed-effect uncertainty is added to each node's variance, not the mean
        mean = np.sum(w * (np.array([1.0, 10.0, x]) @ beta + b @ [1.0, 10.0]))
        assert row["mean"] == pytest.approx(mean, abs=0.02)


def test_survival_condition_lifts_the_forecast_of_fast_decliners():
    """alpha_slope < 0 (steeper slope, higher hazard): alive patients decline less."""
    df, jm = fitted()
    assert jm.alpha_[1] < 0
    h = _history(df, n=20)
    alive = forecast(jm, h, [12.0, 24.0], given_alive=True)
    anyway = forecast(jm, h, [12.0, 24.0], given_alive=False)
    diff = alive["mean"] - anyway["mean"]
    assert (diff > 0).all()
    gap = diff.groupby(alive["months"]).mean()
    assert gap[24.0] > gap[12.0]


def test_draws_follow_the_summaries():
    df, jm = fitted()
    h = _history(df, n=4)
    f = forecast(jm, h, [8.0, 16.0], n_samples=20_000, seed=5, level=0.9)
    draws = f.filter(like="draw_").to_numpy()
    np.testing.assert_allclose(draws.mean(axis=1), f["mean"], atol=0.1)
    np.testing.assert_allclose(np.quantile(draws, 0.05, axis=1), f["lower"], atol=0.2)
    np.testing.assert_allclose(np.quantile(draws, 0.95, axis=1), f["upper"], atol=0.2)
    again = forecast(jm, h, [8.0, 16.0], n_samples=20_000, seed=5, level=0.9)
    pd.testing.assert_frame_equal(f, again)


def test_predict_survival_is_a_conditional_survival_curve():
    df, jm = fitted()
    h = _history(df, n=5)
    last = h.groupby("subject_id")["months"].max()
    at = pd.DataFrame(
        {
            "subject_id": np.repeat(last.index, 3),
            "months": np.concatenate([[t, t + 6, t + 12] for t in last.to_numpy()]),
        }
    )
    s = jm.predict_survival(h, at)
    curves = s.pivot(index="subject_id", columns="months", values="survival")
    first = s.groupby("subject_id")["survival"].first()
    np.testing.assert_allclose(first, 1.0, atol=1e-12)  # alive at the last visit
    assert (s.groupby("subject_id")["survival"].diff().dropna() < 0).all()
    assert curves.notna().any().all()


def test_history_missing_an_event_covariate_is_reported():
    df, jm = fitted()
    h = _history(df, n=2).drop(columns="x")
    with pytest.raises(DataValidationError, match="x"):
        forecast(jm, h, [6.0])


@pytest.mark.slow
def test_backtest_scores_a_joint_model_on_als_cohorts():
    from alsprog.models import JointModel, LinearMixedModel
    from alsprog.simulate import simulate_cohort

    f = "alsfrs_r_total ~ months * (delta_fs + onset_site) + (months | subject_id)"
    res = backtest(
        simulate_cohort(400, seed=8),
        {"joint": JointModel(f), "lmm": LinearMixedModel(f)},
        seed=2,
        n_samples=100,
        reference=False,
    )
    j = res[res["model"] == "joint"].set_index("horizon")
    assert set(j.index) == {6.0, 12.0}
    assert np.all((j["coverage"] > 0.75) & (j["coverage"] <= 1.0))
    assert np.isfinite(j["crps"]).all() and np.isfinite(j["slope_rmsd"]).all()
