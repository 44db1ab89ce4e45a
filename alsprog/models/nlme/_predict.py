"""Predictions, trajectories and forecasts of a fitted D50 nonlinear mixed model.

Owns: :func:`nlme_predict` (fitted patients at their conditional modes, others at
the population's), :func:`nlme_subject_trajectories` (delta-method bands of
fitted patients' curves) and :func:`nlme_forecast_rows` (new patients' predictive
draws given their visits: fixed effects from their approximate normal, subject
effects by the Bayesian sigmoid model's Laplace-proposal importance resampling
under the fitted ``Psi`` and ``sigma``, and the conditional-mode curve).
Leaves: the estimates to :mod:`alsprog.models.nlme._model`; the mode finder and
the importance resampling to :mod:`alsprog.models.bayes._forecast` (reused, not
copied); splitting history from future to :func:`alsprog.forecast.forecast`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit, ndtri

from alsprog._quadrature import padded
from alsprog._validation import check_choice, check_level
from alsprog.data._history import Prepared
from alsprog.errors import ModelSpecificationError
from alsprog.models._contract import ForecastRows
from alsprog.models.bayes._forecast import (
    DEFAULT_SAMPLES,
    _design,
    _History,
    _sigmoid_effects,
    summarise_draws,
)
from alsprog.models.bayes._sigmoid import sigmoid_mean
from alsprog.models.nlme._numerics import prediction_error_cov

__all__ = [
    "conditional_modes",
    "nlme_forecast_rows",
    "nlme_predict",
    "nlme_subject_trajectories",
]

Array = npt.NDArray[np.float64]


def _fixed_rows(model: Any, rows: pd.DataFrame) -> tuple[Array, npt.NDArray[np.bool_]]:
    """``(log D50, log dx)`` at the population values (n, 2) of the complete rows
    of ``rows`` (NaN elsewhere) and the mask of complete rows."""
    d = model._design
    need = [c for c in d.mixed.variables if c not in (d.outcome, d.subject)]
    missing = [c for c in need if c not in rows.columns]
    if missing:
        raise ModelSpecificationError(
            f"The rows lack column(s) {', '.join(map(repr, missing))} that the "
            f"model {model.formula!r} needs (time {d.time!r})."
        )
    ok = rows[need].notna().all(axis=1).to_numpy()
    lin = np.full((len(rows), 2), np.nan)
    if ok.any():
        X = _design(model, rows.loc[ok])
        lin[ok] = X @ model._beta.T
    return lin, ok


def nlme_predict(model: Any, df: pd.DataFrame) -> pd.Series:
    """:meth:`NonlinearMixedModel.predict
    <alsprog.models.NonlinearMixedModel.predict>`."""
    d = model._design
    lin, ok = _fixed_rows(model, df)
    if d.subject in df.columns:
        idx = pd.Index(d.subject_ids).get_indexer(df[d.subject].astype(str))
        seen = (idx >= 0) & ok
        lin[seen] = model._modes[idx[seen]]
    t = pd.to_numeric(df[d.time], errors="coerce").to_numpy(dtype=float)
    out = sigmoid_mean(t, np.exp(lin[:, 0]), np.exp(lin[:, 1]))
    return pd.Series(np.where(ok, out, np.nan), index=df.index, name="predicted")


def nlme_subject_trajectories(
    model: Any, times: Any, subjects: Any, level: float, interval: str
) -> pd.DataFrame:
    """:meth:`NonlinearMixedModel.subject_trajectories
    <alsprog.models.NonlinearMixedModel.subject_trajectories>`."""
    level = check_level(level)
    check_choice(interval, "interval", ("confidence", "prediction"))
    d = model._design
    if times is None:
        times = np.linspace(float(d.t.min()), float(d.t.max()), 25)
    t = np.asarray(times, dtype=float).ravel()
    if t.size == 0 or not np.all(np.isfinite(t)):
        raise ValueError(f"`times` must be finite numbers; got {times!r}.")
    if subjects is None:
        sel = np.arange(len(d.subject_ids))
    else:
        asked = [str(s) for s in np.atleast_1d(np.asarray(subjects, dtype=object))]
        sel = pd.Index(d.subject_ids).get_indexer(asked)
        if (sel < 0).any():
            bad = [s for s, i in zip(asked, sel, strict=True) if i < 0]
            raise ModelSpecificationError(
                f"Subject(s) {', '.join(map(repr, bad[:5]))} were not in the fitted "
                "data; use predict() or alsprog.forecast.forecast for new patients."
            )
    pev = prediction_error_cov(
        model._stats, model._Xs, model._cov, model._sigma, model._cov_beta
    )[sel]
    th = model._modes[sel]
    d50, dx = np.exp(th[:, 0:1]), np.exp(th[:, 1:2])
    eta = (d50 - t[None, :]) / dx  # (S, T)
    g = np.stack([d50 / dx * np.ones_like(eta), -eta], axis=-1)  # d eta / d theta
    var_eta = np.einsum("stk,skl,stl->st", g, pev, g)
    se_eta = np.sqrt(np.maximum(var_eta, 0.0))
    s = expit(eta)
    mean = 48.0 * s
    se = 48.0 * s * (1.0 - s) * se_eta
    z = float(ndtri(0.5 + level / 2))
    if interval == "confidence":
        lower, upper = 48.0 * expit(eta - z * se_eta), 48.0 * expit(eta + z * se_eta)
    else:
        spread = z * np.sqrt(se**2 + model.scale_)
        lower, upper = (
            np.clip(mean - spread, *model.outcome_bounds_),
            np.clip(mean + spread, *model.outcome_bounds_),
        )
    return pd.DataFrame(
        {
            d.subject: np.repeat(np.asarray(d.levels)[sel], len(t)),
            d.time: np.tile(t, len(sel)),
            "mean": mean.ravel(),
            "se": se.ravel(),
            "lower": lower.ravel(),
            "upper": upper.ravel(),
        }
    )


def _history_arrays(
    model: Any, prep: Prepared
) -> tuple[Array, Array, npt.NDArray[np.intp], Array, int]:
    """History outcome, time, patient index; patients' covariate rows Xs; G."""
    d = model._design
    observed, subjects = prep.observed, prep.subjects
    G = len(subjects)
    gh = np.asarray(subjects.get_indexer(observed[d.subject].astype(str)), np.intp)
    yh = observed[d.outcome].to_numpy(dtype=float)
    th = observed[d.time].to_numpy(dtype=float)
    Xs = _design(model, prep.first)
    return yh, th, gh, Xs, G


def conditional_modes(
    model: Any,
    Xs: Array,
    yh: Array,
    th: Array,
    gh: npt.NDArray[np.intp],
    G: int,
) -> tuple[Array, Array]:
    """Each new patient's conditional mode of ``(log D50, log dx)`` given their
    visits under the estimates (G, 2), and the Gauss-Newton curvature there
    (G, 2, 2), by :class:`alsprog.models.bayes._forecast._History`'s damped
    Gauss-Newton (a patient without visits gets the population's values)."""
    lin0 = Xs @ model._beta.T
    y_pad, mask = padded(yh, gh, G)
    t_pad = padded(th, gh, G)[0]
    prec = np.broadcast_to(np.linalg.inv(model._cov), (G, 2, 2)).copy()
    h = _History(lin0, prec, np.full(G, model._sigma), None, y_pad, t_pad, mask)
    b, H = h.mode()
    return lin0 + b, H


def nlme_forecast_rows(
    model: Any,
    prep: Prepared,
    *,
    level: float,
    n_samples: int | None,
    rng: np.random.Generator,
) -> ForecastRows:
    """:meth:`NonlinearMixedModel.forecast_rows
    <alsprog.models.NonlinearMixedModel.forecast_rows>`."""
    d = model._design
    yh, th, gh, Xs, G = _history_arrays(model, prep)
    future = prep.future
    gf = future["_subject_index"].to_numpy()
    tf = future[d.time].to_numpy(dtype=float)
    k = n_samples if n_samples is not None else DEFAULT_SAMPLES
    p = Xs.shape[1]
    L = np.linalg.cholesky(model._cov_beta + 1e-14 * np.eye(2 * p))
    beta_s = model._beta.ravel() + rng.standard_normal((k, 2 * p)) @ L.T
    beta_s = beta_s.reshape(k, 2, p)
    lin0 = np.einsum("gp,skp->sgk", Xs, beta_s)  # (S, G, 2)
    D = np.broadcast_to(model._cov, (k, 2, 2)).copy()
    sigma = np.full(k, model._sigma)
    b = _sigmoid_effects(lin0, D, sigma, None, yh, th, gh, G, rng)
    lin = (lin0 + b)[:, gf]  # (S, n_f, 2)
    mu = sigmoid_mean(tf[None, :], np.exp(lin[..., 0]), np.exp(lin[..., 1]))
    draws = np.clip(
        mu + model._sigma * rng.standard_normal(mu.shape), *model.outcome_bounds_
    )
    stats = summarise_draws(draws, level)
    modes, _ = conditional_modes(model, Xs, yh, th, gh, G)
    stats["mode"] = np.clip(
        sigmoid_mean(tf, np.exp(modes[gf, 0]), np.exp(modes[gf, 1])),
        *model.outcome_bounds_,
    )
    return ForecastRows(stats, draws if n_samples is not None else None)
