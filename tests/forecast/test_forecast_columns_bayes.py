"""Bayesian forecasts on the columns the model was fitted with (issue 18.1).

Short chains with a fixed seed: the same data under the data dictionary's names and
under ``patient``/``visit_month``/``frs`` give identical posterior draws, so the
forecasts must agree to rounding; the forecast mean is checked against the mixture,
over posterior draws, of the dense conditional normal (computed here).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from forecast_testdata import split_cohort
from numpy.testing import assert_allclose

from alsprog.errors import ConvergenceWarning
from alsprog.forecast import forecast
from alsprog.models import BayesianTrajectoryModel
from alsprog.models._gaussian import censored_normal_mean

RENAME = {
    "subject_id": "patient",
    "months": "visit_month",
    "alsfrs_r_total": "frs",
    "onset_site": "onset",
}
SHORT = {"chains": 1, "draws": 100, "tune": 100, "seed": 5, "progress": False}
STATS = ["mean", "median", "lower", "upper"]


def _data():
    _, _, train, test = split_cohort(100, 21, 15)
    return train, test[test["months"] <= 3.5]


def _fit(model, df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(df)


@pytest.fixture(scope="module")
def linear_pair():
    train, _ = _data()
    m0 = _fit(
        BayesianTrajectoryModel(
            formula="alsfrs_r_total ~ months * onset_site", **SHORT
        ),
        train,
    )
    m = _fit(
        BayesianTrajectoryModel(
            formula="frs ~ visit_month * onset",
            time="visit_month",
            subject="patient",
            **SHORT,
        ),
        train.rename(columns=RENAME),
    )
    return m0, m


def test_bayes_linear_on_renamed_columns(linear_pair):
    m0, m = linear_pair
    _, hist = _data()
    assert (m.columns_.subject, m.columns_.time, m.columns_.outcome) == (
        "patient",
        "visit_month",
        "frs",
    )
    for name in ("beta", "subject_effects", "sigma", "subject_sd"):
        assert np.array_equal(m._draws(name), m0._draws(name)), name
    f0 = forecast(m0, hist, [6.0, 12.0], seed=3, n_samples=1000)
    f = forecast(m, hist.rename(columns=RENAME), [6.0, 12.0], seed=3, n_samples=1000)
    assert list(f.columns[:2]) == ["patient", "visit_month"]
    draws = [c for c in f.columns if c.startswith("draw_")]
    # issue 19: 'frs' is not bounded by the data dictionary, the ALSFRS-R total is
    # (0-48): the same predictive draws, censored only under the default name
    clipped = np.clip(f[draws].to_numpy(), 0, 48)
    assert_allclose(clipped, f0[draws], rtol=1e-10, atol=1e-10)
    lo, med, hi = np.quantile(clipped, [0.05, 0.5, 0.95], axis=1)
    assert_allclose(f0[STATS], np.column_stack([clipped.mean(1), med, lo, hi]))
    raw = f[draws].to_numpy()
    lo, med, hi = np.quantile(raw, [0.05, 0.5, 0.95], axis=1)
    assert_allclose(f[STATS], np.column_stack([raw.mean(1), med, lo, hi]))
    six, twelve = f[f["visit_month"] == 6.0], f[f["visit_month"] == 12.0]
    width6 = (six["upper"] - six["lower"]).to_numpy()
    width12 = (twelve["upper"] - twelve["lower"]).to_numpy()
    assert (width12 > width6).all()
    assert (twelve["mean"].to_numpy() != six["mean"].to_numpy()).all()
    tr0 = m0.subject_trajectories([0.0, 6.0], subjects=["P0002"])
    tr = m.subject_trajectories([0.0, 6.0], subjects=["P0002"])
    assert list(tr.columns[:2]) == ["patient", "visit_month"]
    assert_allclose(tr[["mean", "lower", "upper"]], tr0[["mean", "lower", "upper"]])


def test_bayes_linear_forecast_is_the_mixture_of_dense_conditional_normals(
    linear_pair,
):
    """Per posterior draw s, y_f | y_h ~ N(loc_s, sd_s) (dense, V = Z D Z' + s2 I);
    the forecast's draws (1000 = 10 per posterior draw) average the censored means."""
    _, m = linear_pair
    _, hist = _data()
    h_all = hist.rename(columns=RENAME)
    f = forecast(m, h_all, [6.0, 12.0], seed=11, n_samples=1000)
    beta, sigma = m._draws("beta"), m._draws("sigma")
    sd, rho = m._draws("subject_sd"), m._draws("subject_corr")
    assert list(m.terms_) == [
        "Intercept",
        "visit_month",
        "onset[T.spinal]",
        "visit_month:onset[T.spinal]",
    ]

    def design(rows):
        t = rows["visit_month"].to_numpy(float)
        sp = (rows["onset"].astype(str) == "spinal").to_numpy(float)
        one = np.ones(len(rows))
        return np.column_stack([one, t, sp, t * sp]), np.column_stack([one, t])

    for sid in list(pd.unique(h_all["patient"]))[:4]:
        h = h_all[h_all["patient"] == sid]
        fut = pd.concat([h.iloc[[-1]]] * 2, ignore_index=True)
        fut["visit_month"] = [6.0, 12.0]
        (Xh, Zh), (Xf, Zf) = design(h), design(fut)
        y = h["frs"].to_numpy(float)
        means, locs, variances = [], [], []
        for s in range(len(sigma)):
            c = rho[s] * sd[s, 0] * sd[s, 1]
            D = np.array([[sd[s, 0] ** 2, c], [c, sd[s, 1] ** 2]])
            V = Zh @ D @ Zh.T + sigma[s] ** 2 * np.eye(len(y))
            K = Zf @ D @ Zh.T @ np.linalg.inv(V)
            loc = Xf @ beta[s] + K @ (y - Xh @ beta[s])
            var = np.diag(Zf @ D @ Zf.T - K @ Zh @ D @ Zf.T) + sigma[s] ** 2
            # censored at the outcome's bounds: none for 'frs' (issue 19)
            means.append(
                censored_normal_mean(loc, np.sqrt(var), bounds=m.outcome_bounds_)
            )
            locs.append(loc)
            variances.append(var)
        expect = np.mean(means, axis=0)
        # SD of the mixture (unclipped: an upper bound) -> Monte Carlo error
        spread = np.sqrt(np.mean(variances, axis=0) + np.var(locs, axis=0))
        got = f.loc[f["patient"] == sid, "mean"].to_numpy()
        assert np.all(np.abs(got - expect) < 4 * spread / np.sqrt(1000))


def _assert_same_draws_unclipped(f, f0, tol):
    """``f`` ('frs') has ``f0``'s (``alsfrs_r_total``) predictive draws, uncensored.

    Issue 19: the data dictionary bounds the ALSFRS-R total (0-48), not 'frs'.
    """
    draws = [c for c in f0.columns if c.startswith("draw_")]
    raw = f[draws].to_numpy()
    clipped = np.clip(raw, 0, 48)
    assert_allclose(clipped, f0[draws], rtol=tol, atol=tol)
    for d, got in ((clipped, f0), (raw, f)):
        lo, med, hi = np.quantile(d, [0.05, 0.5, 0.95], axis=1)
        want = np.column_stack([d.mean(1), med, lo, hi])
        assert_allclose(got[STATS], want, rtol=tol, atol=tol)


@pytest.mark.slow
def test_bayes_sigmoid_on_renamed_columns():
    """The sigmoid model on a renamed months-since-onset column: forecast on it, or
    at months since the first visit with `time=`, as the default naming does."""
    train, hist = _data()
    ren = {**RENAME, "months_since_onset": "mso"}
    m0 = _fit(BayesianTrajectoryModel(kind="sigmoid", **SHORT), train)
    m = _fit(
        BayesianTrajectoryModel(
            kind="sigmoid", formula="frs ~ 1", time="mso", subject="patient", **SHORT
        ),
        train.rename(columns=ren),
    )
    assert m.columns_.time == "mso" and m.columns_.visit_time == "mso"
    assert m0.columns_.visit_time == "months"  # the dictionary's onset time
    assert np.array_equal(m._draws("subject_effects"), m0._draws("subject_effects"))
    h = hist.rename(columns=ren)
    # 1000 draws (the default number, returned here to compare them)
    f0 = forecast(m0, hist, [6.0, 12.0], seed=3, n_samples=1000)
    f = forecast(m, h, [6.0, 12.0], seed=3, time="visit_month", n_samples=1000)
    assert list(f.columns[:2]) == ["patient", "visit_month"]
    _assert_same_draws_unclipped(f, f0, 1e-10)
    six, twelve = f[f["visit_month"] == 6.0], f[f["visit_month"] == 12.0]
    assert (
        (twelve["upper"] - twelve["lower"]).to_numpy()
        > (six["upper"] - six["lower"]).to_numpy()
    ).all()
    # on its own axis: the same times expressed as months since onset
    offset = (
        h.groupby("patient")["mso"].first()
        - h.groupby("patient")["visit_month"].first()
    )
    at = f0[["subject_id", "months"]].rename(columns={"subject_id": "patient"})
    at["mso"] = at["months"] + at["patient"].map(offset).to_numpy()
    g = forecast(m, h, at[["patient", "mso"]], seed=3, n_samples=1000)
    assert list(g.columns[:2]) == ["patient", "mso"]
    _assert_same_draws_unclipped(g, f0, 1e-8)
