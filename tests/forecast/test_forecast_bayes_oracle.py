"""Bayesian-model forecasts and the simulator's Bayes oracle."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from forecast_testdata import first_months, split_cohort
from numpy.testing import assert_allclose

from alsprog.errors import ConvergenceWarning, DataValidationError
from alsprog.forecast import forecast
from alsprog.models import BayesianTrajectoryModel, LinearMixedModel
from alsprog.simulate import oracle_forecast

FORMULA = "alsfrs_r_total ~ months * (delta_fs + onset_site)"


@pytest.fixture(scope="module")
def bayes_linear():
    _, _, train, _ = split_cohort()
    m = BayesianTrajectoryModel(
        formula=FORMULA, chains=2, draws=300, tune=300, seed=5, progress=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return m.fit(train)


def test_bayes_linear_agrees_with_the_mixed_model(bayes_linear):
    """Same model, flat-ish priors, 260 patients: the two forecasts nearly coincide."""
    _, _, train, test = split_cohort()
    lmm = LinearMixedModel(FORMULA + " + (months | subject_id)").fit(train)
    hist = first_months(test)
    fb = forecast(bayes_linear, hist, [6.0, 12.0], seed=1)
    fl = forecast(lmm, hist, [6.0, 12.0])
    assert np.max(np.abs(fb["mean"] - fl["mean"])) < 0.6
    width_b = (fb["upper"] - fb["lower"]).mean()
    width_l = (fl["upper"] - fl["lower"]).mean()
    assert width_b == pytest.approx(width_l, rel=0.12)


def test_bayes_draws_reproducible_and_bounded(bayes_linear):
    _, _, _, test = split_cohort()
    hist = first_months(test)
    a = forecast(bayes_linear, hist, [12.0, 40.0], n_samples=200, seed=7)
    b = forecast(bayes_linear, hist, [12.0, 40.0], n_samples=200, seed=7)
    pd.testing.assert_frame_equal(a, b)
    d = a.filter(like="draw_").to_numpy()
    assert d.shape[1] == 200 and d.min() >= 0 and d.max() <= 48
    assert_allclose(a["mean"], d.mean(axis=1))


def test_sigmoid_effects_match_importance_sampling():
    """Effects drawn by Laplace importance resampling vs brute-force importance
    sampling from the prior."""
    from alsprog.models.bayes._forecast import _sigmoid_effects

    rng = np.random.default_rng(0)
    S = 4000  # the same posterior draw repeated: many draws of one posterior
    D = np.broadcast_to(np.array([[0.09, 0.02], [0.02, 0.0625]]), (S, 2, 2)).copy()
    sigma = np.full(S, 2.0)
    lin0 = np.broadcast_to(np.log([30.0, 10.0]), (S, 1, 2)).copy()
    th = np.array([20.0, 23.0, 26.0])
    yh = np.array([30.0, 26.5, 22.0])
    g = np.zeros(3, np.intp)
    b = _sigmoid_effects(lin0, D, sigma, None, yh, th, g, 1, rng)
    got = b[:, 0].mean(axis=0)
    # importance sampling from the prior
    u = rng.multivariate_normal([0, 0], D[0], size=400_000)
    d50 = np.exp(np.log(30.0) + u[:, 0])
    dx = np.exp(np.log(10.0) + u[:, 1])
    mu = 48 / (1 + np.exp((th[None, :] - d50[:, None]) / dx[:, None]))
    logw = -0.5 * np.sum((yh - mu) ** 2, axis=1) / 4.0
    w = np.exp(logw - logw.max())
    w /= w.sum()
    expect = w @ u
    sd = np.sqrt(w @ (u - expect) ** 2)
    assert_allclose(got, expect, atol=4 * sd.max() / np.sqrt(S))


def test_oracle_matches_importance_sampling_of_the_simulator():
    """The oracle's quadrature vs brute force over the simulator's latent draws."""
    from alsprog.simulate._oracle import _curves, _log_p_observed, _true_total

    cohort, table, _, _ = split_cohort()
    hist = table[(table["months"] <= 3.5) & (table["subject_id"] == "P0007")]
    f = oracle_forecast(hist, [12.0], params=cohort.params, given_follow_up=False)
    p = cohort.params
    rng = np.random.default_rng(1)
    e = rng.standard_normal((1, 400_000, 2))
    t0 = hist["onset_months_before_baseline"].to_numpy()[:1]
    bulbar = (hist["onset_site"] == "bulbar").to_numpy()[:1]
    c = _curves(p, t0, bulbar, e)
    mu = _true_total(c, t0[:, None] + hist["months"].to_numpy()[None, :])
    ll = _log_p_observed(hist["alsfrs_r_total"].to_numpy()[None, None, :], mu, 2.0)
    ll = ll.sum(axis=-1)
    from alsprog.simulate._progression import (
        dropout_reference_hazard,
        event_reference_scale,
    )

    rel = c["rate"] / -p.slope_mean
    scale = event_reference_scale(p) * rel ** (-p.event_rate_exponent / 1.5)
    tl = hist["months"].max()
    ll -= ((t0[0] + tl) / scale) ** 1.5 - (t0[0] / scale) ** 1.5
    ll -= dropout_reference_hazard(p) * rel * tl
    ll = np.where(c["ok"], ll, -np.inf)
    w = np.exp(ll - ll.max())
    w /= w.sum()
    mu12 = _true_total(c, t0[:, None] + np.array([[12.0]]))[0, :, 0]
    from scipy.stats import norm

    ey = norm.cdf((mu12[:, None] - np.arange(48)[None, :] - 0.5) / 2.0).sum(axis=1)
    assert f["mean"].iloc[0] == pytest.approx(float(w[0] @ ey), abs=0.05)


def test_oracle_needs_onset_time():
    cohort, table, _, _ = split_cohort()
    hist = first_months(table).drop(
        columns=["onset_months_before_baseline", "months_since_onset"]
    )
    with pytest.raises(DataValidationError, match="onset"):
        oracle_forecast(hist, [12.0], params=cohort.params)


@pytest.mark.slow
def test_sigmoid_forecast_uses_the_history():
    """D50 sigmoid model on data of its own form: the history sharpens the forecast."""
    from bayes_fixtures import sigmoid_long

    df, _ = sigmoid_long(70, seed=8, outcome="alsfrs_r_total")
    df["alsfrs_r_total"] = df["alsfrs_r_total"].clip(0, 48).round()  # observed: whole
    test_ids = sorted(df["subject_id"].unique())[:20]
    is_test = df["subject_id"].isin(test_ids)
    m = BayesianTrajectoryModel(
        "sigmoid", chains=2, draws=250, tune=250, seed=3, progress=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(df[~is_test])
    test = df[is_test]
    hist = test[test["months"] <= 6]
    later = test[test["months"] > 6]
    at = later[["subject_id", "months"]]
    f = forecast(m, hist, at, seed=2)
    none = hist.groupby("subject_id").head(1).assign(alsfrs_r_total=np.nan)
    f0 = forecast(m, none, at, seed=2)  # covariates only: the population forecast
    y = later["alsfrs_r_total"].to_numpy()
    rmse = np.sqrt(np.mean((f["mean"].to_numpy() - y) ** 2))
    rmse0 = np.sqrt(np.mean((f0["mean"].to_numpy() - y) ** 2))
    assert rmse < 0.8 * rmse0
    cover = np.mean((y >= f["lower"].to_numpy()) & (y <= f["upper"].to_numpy()))
    assert 0.8 <= cover <= 0.98


def test_student_t_linear_quadrature_matches_importance_sampling():
    """Linear model with Student-t noise: quadrature draws vs importance sampling."""
    from scipy.stats import t as student_t

    from alsprog.models.bayes._forecast import _effects_given_history

    rng = np.random.default_rng(1)
    S = 4000
    D = np.broadcast_to(np.array([[16.0, -0.5], [-0.5, 0.36]]), (S, 2, 2)).copy()
    sigma, nu = np.full(S, 2.0), np.full(S, 4.0)
    th = np.array([0.0, 3.0, 6.0])
    yh = np.array([36.0, 35.0, 29.0])
    base = np.broadcast_to(np.array([[38.0], [38 - 2.7], [38 - 5.4]]), (3, S)).copy()
    g = np.zeros(3, np.intp)
    b = _effects_given_history(base, D, sigma, nu, yh, th, g, 1, rng)
    got = b[:, 0].mean(axis=0)
    u = rng.multivariate_normal([0, 0], D[0], size=400_000)
    mu = base[:, 0][None, :] + u[:, :1] + u[:, 1:] * th[None, :]
    logw = student_t.logpdf((yh - mu) / 2.0, 4.0).sum(axis=1)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    expect = w @ u
    sd = np.sqrt(w @ (u - expect) ** 2)
    assert_allclose(got, expect, atol=4 * sd.max() / np.sqrt(S))
    # no history: the draws are the prior's
    none = _effects_given_history(
        np.zeros((0, S)),
        D,
        sigma,
        nu,
        np.zeros(0),
        np.zeros(0),
        np.zeros(0, np.intp),
        1,
        rng,
    )
    assert_allclose(np.cov(none[:, 0].T), D[0], rtol=0.15, atol=0.02)


def test_oracle_curves_reproduce_the_simulators_patients():
    """The oracle's latent -> curve map gives the simulator's own D50 and dx."""
    import math

    from alsprog.simulate import CohortParams
    from alsprog.simulate._cohort import _draw_patients
    from alsprog.simulate._oracle import _curves
    from alsprog.simulate._params import lognormal_from_moments
    from alsprog.simulate._progression import rate_lognormal

    p = CohortParams()
    pat = _draw_patients(p, 300, np.random.default_rng(4))
    # invert the simulator's draws to the oracle's standard-normal coordinates
    mu_d, s_d = lognormal_from_moments(p.delta_fs_mean, p.delta_fs_sd)
    z_t0 = (pat["t0"] - p.onset_to_baseline_mean) / p.onset_to_baseline_sd
    z_dfs = (np.log(pat["delta_fs"]) - mu_d) / s_d
    rho, r = p.onset_delta_fs_correlation, p.slope_delta_fs_correlation
    mu, sigma = rate_lognormal(p)
    mult = np.where(pat["bulbar"], p.bulbar_slope_multiplier, 1.0)
    z_rate = (np.log(pat["rate"] / mult) - mu) / sigma
    e = np.stack(
        [
            (z_dfs - rho * z_t0) / math.sqrt(1 - rho**2),
            (z_rate - r * z_dfs) / math.sqrt(1 - r**2),
        ],
        axis=-1,
    )[:, None, :]
    c = _curves(p, pat["t0"], pat["bulbar"], e)
    assert c["ok"].all()
    assert_allclose(c["d50"][:, 0], pat["d50"], rtol=1e-9)
    assert_allclose(c["dx"][:, 0], pat["dx"], rtol=1e-9)


def test_oracle_observation_likelihood_is_the_rounded_clipped_normal():
    from scipy.stats import norm

    from alsprog.simulate._oracle import _log_p_observed

    mu = np.array([20.3, 0.4, 47.8, 10.0])
    y = np.array([21.0, 0.0, 48.0, 30.0])
    expect = np.log(
        [
            norm.cdf(21.5, 20.3, 2) - norm.cdf(20.5, 20.3, 2),
            norm.cdf(0.5, 0.4, 2),
            norm.sf(47.5, 47.8, 2),
            norm.sf(29.5, 10, 2) - norm.sf(30.5, 10, 2),  # 10 SD out, ~1e-22
        ]
    )
    assert_allclose(_log_p_observed(y, mu, 2.0), expect, rtol=1e-8)
