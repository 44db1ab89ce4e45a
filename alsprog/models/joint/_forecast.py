"""Forecasts from a fitted joint model, given the history and survival.

Owns: the posterior of a new patient's random effects given their history under a
:class:`~alsprog.models.JointModel` as Gauss-Hermite nodes (:func:`joint_nodes`),
and the predictive distribution of the outcome at a future time given the history
and being event-free then (:func:`joint_forecast`), and the fitted subjects'
trajectories given their visits and event data (:func:`joint_trajectories`): a mixture of normals over the
nodes, reweighted by each node's survival probability, censored at the outcome's
bounds.
Leaves: the conditional-normal algebra to :mod:`alsprog.models._gaussian`, each
history's cross-products to :mod:`alsprog.models.lmm._forecast`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import ndtr

from alsprog.data._history import Prepared
from alsprog.errors import ModelSpecificationError
from alsprog.models._contract import ForecastRows
from alsprog.models._gaussian import (
    censored_normal_mean,
    conditional_effects,
    fixed_effect_variance,
    psd_sqrt,
)
from alsprog.models.lmm._forecast import history_sums

__all__ = [
    "JointNodes",
    "joint_forecast",
    "joint_nodes",
    "joint_predict",
    "joint_trajectories",
    "subject_posterior",
    "mixture_quantiles",
]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class JointNodes:
    """Each subject's random-effects posterior given the history, as nodes."""

    b: Array  # (G, M, q)
    weights: Array  # (G, M), sum to one
    eta: Array  # (G,) event covariates' linear predictor
    KX: Array  # (G, q, p) BLUP gain times Z'X (fixed-effect uncertainty)


def joint_nodes(model: Any, prep: Prepared, *, n_quad: int = 15) -> JointNodes:
    """Gauss-Hermite nodes of ``b | history`` for each subject of ``prep``."""
    from alsprog._quadrature import _grid

    beta = model.fe_params_.to_numpy()
    D = model.cov_re_.to_numpy()
    G = len(prep.subjects)
    sums = history_sums(model.longitudinal_, prep, len(beta), D.shape[0])
    mean, cov, KX = conditional_effects(sums, beta, D, model.scale_)
    z, log_w = _grid(int(n_quad), D.shape[0])
    b = mean[:, None, :] + np.einsum("gij,mj->gmi", psd_sqrt(cov), z)
    w = np.broadcast_to(np.exp(log_w), (G, len(log_w))).copy()
    eta = model._event_linear(prep.first)
    return JointNodes(b=b, weights=w, eta=eta, KX=KX)


def mixture_quantiles(
    probs: Array, means: Array, weights: Array, sd: Array, *, iters: int = 60
) -> Array:
    """Quantiles of ``sum_k w_k N(mu_k, sd^2)`` per row, by bisection.

    ``means``/``weights`` are (n, K), ``sd`` (n,), ``probs`` (m,); returns (m, n).

    Examples
    --------
    >>> q = mixture_quantiles(np.array([0.5, 0.975]), np.array([[0.0, 0.0]]),
    ...                       np.array([[0.5, 0.5]]), np.array([1.0]))
    >>> (np.round(q[:, 0], 6) + 0.0).tolist()
    [0.0, 1.959964]
    """
    sd = np.maximum(np.asarray(sd, dtype=float), 1e-12)
    lo = np.min(means, axis=1) - 9.0 * sd
    hi = np.max(means, axis=1) + 9.0 * sd
    out = np.empty((len(probs), means.shape[0]))
    for j, p in enumerate(probs):
        a, b = lo.copy(), hi.copy()
        for _ in range(iters):
            mid = 0.5 * (a + b)
            cdf = np.sum(weights * ndtr((mid[:, None] - means) / sd[:, None]), axis=1)
            below = cdf < p
            a = np.where(below, mid, a)
            b = np.where(below, b, mid)
        out[j] = 0.5 * (a + b)
    return out


def joint_forecast(
    model: Any,
    prep: Prepared,
    *,
    level: float,
    given_alive: bool = True,
    n_samples: int | None = None,
    rng: np.random.Generator,
    n_quad: int = 15,
) -> ForecastRows:
    """Summaries (mean, median, interval, loc/scale) and draws of each future row.

    Given the history, each subject's random effects have a normal posterior; with
    ``given_alive`` each future row's nodes are reweighted by the probability of
    being event-free at that row's time, ``exp(-H_0(t) exp(w'gamma + alpha'b))``
    (the event-free condition at the last visit is implied).  Each node gives a
    normal for the outcome with the residual variance plus the fixed effects'
    uncertainty propagated through the BLUP (as for the mixed model).
    """
    lmm = model.longitudinal_
    nodes = joint_nodes(model, prep, n_quad=n_quad)
    beta = model.fe_params_.to_numpy()
    cov_beta = model.cov_params().to_numpy()
    future = prep.future
    Xf, Zf, _ = lmm._fixed_matrix(future)
    gf = future["_subject_index"].to_numpy()
    means = (Xf @ beta)[:, None] + np.einsum("nq,nmq->nm", Zf, nodes.b[gf])
    var = fixed_effect_variance(Xf, Zf, nodes.KX[gf], cov_beta) + model.scale_
    sd = np.sqrt(np.maximum(var, 0.0))
    w = nodes.weights[gf]
    if given_alive:
        # the event time counts from the first visit, on the model's time column
        H = model._cumulative_hazard(future[model.columns_.time].to_numpy(float))
        risk = nodes.eta[gf, None] + nodes.b[gf] @ model.alpha_
        logw = np.log(np.maximum(w, 1e-300)) - H[:, None] * np.exp(risk)
        logw -= logw.max(axis=1, keepdims=True)
        w = np.exp(logw)
        w /= w.sum(axis=1, keepdims=True)
    low, high = bounds = model.outcome_bounds_
    mean = np.sum(w * censored_normal_mean(means, sd[:, None], bounds=bounds), axis=1)
    lo, med, hi = mixture_quantiles(
        np.array([(1 - level) / 2, 0.5, (1 + level) / 2]), means, w, sd
    )
    stats = {
        "mean": mean,
        "median": np.clip(med, low, high),
        "lower": np.clip(lo, low, high),
        "upper": np.clip(hi, low, high),
    }
    # moments of the mixture before clipping (the mixed model's loc/scale analogue)
    loc = np.sum(w * means, axis=1)
    stats["loc"] = loc
    stats["scale"] = np.sqrt(np.sum(w * (means - loc[:, None]) ** 2, axis=1) + sd**2)
    draws = None
    if n_samples is not None:
        n, m = means.shape
        cum = np.cumsum(w, axis=1)
        cum /= cum[:, -1:]
        offset = np.arange(n, dtype=float)
        # one sorted array: row i's cumulative weights shifted into (i, i + 1]
        u = rng.random((n_samples, n)) + offset
        k = np.searchsorted((cum + offset[:, None]).ravel(), u) - np.arange(n) * m
        k = np.clip(k, 0, m - 1)
        mu = np.take_along_axis(means[None, :, :], k[..., None], axis=2)[..., 0]
        draws = np.clip(mu + sd * rng.standard_normal(mu.shape), low, high)
    return ForecastRows(stats, draws)


def subject_posterior(
    model: Any, ids: list[str], grid: Array, *, n_quad: int
) -> tuple[Prepared, JointNodes, Array]:
    """Fitted subjects ``ids``' rows at times ``grid`` (``Prepared``), the nodes of
    their random effects and each node's posterior weight given the subject's
    visits *and* event data, ``p(b | y_i) S(T_i | b) h(T_i | b)^d_i`` (rows of
    weights sum to one)."""
    from alsprog.data._history import prepare_history

    info = model.longitudinal_._design_info
    group = info["group"]
    rows = model._fit_rows
    sub = rows[rows[group].astype(str).isin(set(ids))]
    prep = prepare_history(
        sub,
        grid,
        outcome=info["outcome"],
        covariates=model._covariates(),
        subject=group,
        time=model.time,
        validate=False,
        allow_past=True,
    )
    nodes = joint_nodes(model, prep, n_quad=n_quad)
    ev = model._fit_events.reindex(prep.subjects.astype(str))
    risk = nodes.eta[:, None] + nodes.b @ model.alpha_
    H = model._cumulative_hazard(ev["time"].to_numpy())
    logw = np.log(np.maximum(nodes.weights, 1e-300))
    logw += ev["event"].to_numpy()[:, None] * risk - H[:, None] * np.exp(risk)
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return prep, nodes, w


def joint_predict(model: Any, df: pd.DataFrame, *, n_quad: int = 15) -> pd.Series:
    """:meth:`JointModel.predict`: ``X beta + Z E[b | y_i, T_i, d_i]`` for rows of
    fitted subjects, ``X beta`` for the others (NaN where a covariate is
    missing)."""
    info = model.longitudinal_._design_info
    group = info["group"]
    X, Z, ok = model.longitudinal_._fixed_matrix(df)
    pred = X @ model.fe_params_.to_numpy()
    if group not in df.columns:
        raise ModelSpecificationError(
            f"Data for prediction lacks the grouping column {group!r}."
        )
    ids = df.loc[ok, group].astype(str).to_numpy()
    known = model._fit_events.index
    seen = np.isin(ids, known)
    if seen.any():
        wanted = list(dict.fromkeys(ids[seen]))
        prep, nodes, w = subject_posterior(model, wanted, np.zeros(1), n_quad=n_quad)
        b_hat = np.einsum("sm,smq->sq", w, nodes.b)
        where = pd.Index(prep.subjects.astype(str)).get_indexer(ids[seen])
        pred[seen] += np.einsum("nq,nq->n", Z[seen], b_hat[where])
    out = np.full(len(df), np.nan)
    out[ok] = pred
    return pd.Series(out, index=df.index, name="predicted")


def joint_trajectories(
    model: Any,
    times: Any,
    *,
    subjects: Any,
    level: float,
    interval: str,
    n_quad: int,
) -> pd.DataFrame:
    """:meth:`JointModel.subject_trajectories` of checked arguments: each fitted
    subject's random effects averaged over their posterior given the visits and
    the event data (nodes of the visits' normal posterior, reweighted)."""
    info = model.longitudinal_._design_info
    group = info["group"]
    rows = model._fit_rows
    known = model._fit_events.index
    if subjects is None:
        ids = list(known)
    else:
        ids = [str(v) for v in np.atleast_1d(np.asarray(subjects, dtype=object))]
        unknown = [v for v in ids if v not in known]
        if unknown:
            raise ModelSpecificationError(
                f"subject(s) {unknown[:5]} were not in the data the model was "
                "fitted to."
            )
    if times is None:
        t = pd.to_numeric(rows[model.time], errors="coerce")
        times = np.linspace(float(t.min()), float(t.max()), 25)
    grid = np.asarray(times, dtype=float).ravel()
    prep, nodes, w = subject_posterior(model, ids, grid, n_quad=n_quad)
    lmm = model.longitudinal_
    Xf, Zf, _ = lmm._fixed_matrix(prep.future)
    gf = prep.future["_subject_index"].to_numpy()
    beta = model.fe_params_.to_numpy()
    means = (Xf @ beta)[:, None] + np.einsum("nq,nmq->nm", Zf, nodes.b[gf])
    wf = w[gf]
    mean = np.sum(wf * means, axis=1)
    v_fix = fixed_effect_variance(Xf, Zf, nodes.KX[gf], model.cov_params().to_numpy())
    se = np.sqrt(np.sum(wf * (means - mean[:, None]) ** 2, axis=1) + v_fix)
    sd = np.sqrt(v_fix + (model.scale_ if interval == "prediction" else 0.0))
    lo, hi = mixture_quantiles(
        np.array([(1 - level) / 2, (1 + level) / 2]), means, wf, sd
    )
    return pd.DataFrame(
        {
            group: prep.future[group].astype(str).to_numpy(),
            model.time: prep.future[model.time].to_numpy(float),
            "mean": mean,
            "se": se,
            "lower": lo,
            "upper": hi,
        }
    )
