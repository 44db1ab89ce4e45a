"""Cox proportional-hazards numerics: Efron or Breslow ties, delayed entry.

Owns: the partial log-likelihood of a Cox model on counting-process data
``(entry, exit]`` (left truncation: a patient is at risk at ``t`` when ``entry < t
<= exit``) with its gradient and Hessian, for Efron's and Breslow's handling of tied
event times (:func:`cox_partial`), the Newton-Raphson fit with step halving from
zero as R's ``survival::coxph`` (:func:`cox_fit`, returning :class:`CoxFit`), and the
baseline cumulative hazard at the event times as ``basehaz(fit, centered =
FALSE)`` gives it.
Leaves: formulas, data checks and the model class to later work (issue 25's
``SurvivalModel``); the many-trial single-covariate Cox of the trial simulator to
:mod:`alsprog.design._survival_batch`.

Risk-set sums at each distinct event time are reverse cumulative sums over the
exits minus those over the entries, so a fit costs O(n p^2) per iteration after one
sort, whatever the number of ties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["CoxFit", "cox_fit", "cox_partial"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _RiskSets:
    """Where each distinct event time's risk set and events sit."""

    times: Array  # distinct event times, increasing (m,)
    n_events: npt.NDArray[np.intp]  # events at each (m,)
    exit_from: npt.NDArray[np.intp]  # first position (exit order) with exit >= t
    entry_from: npt.NDArray[np.intp]  # first position (entry order) with entry >= t
    exit_order: npt.NDArray[np.intp]
    entry_order: npt.NDArray[np.intp]
    event_index: npt.NDArray[np.intp]  # rows with an event, grouped by time
    event_group: npt.NDArray[np.intp]  # their time's position in ``times``


def _risk_sets(entry: Array, exit: Array, event: npt.NDArray[np.bool_]) -> _RiskSets:
    times, n_events = np.unique(exit[event], return_counts=True)
    exit_order = np.argsort(exit, kind="stable")
    entry_order = np.argsort(entry, kind="stable")
    exit_from = np.searchsorted(exit[exit_order], times, side="left")
    entry_from = np.searchsorted(entry[entry_order], times, side="left")
    ev = np.flatnonzero(event)
    group = np.searchsorted(times, exit[ev])
    order = np.argsort(group, kind="stable")
    return _RiskSets(
        times,
        n_events.astype(np.intp),
        exit_from.astype(np.intp),
        entry_from.astype(np.intp),
        exit_order,
        entry_order,
        ev[order],
        group[order],
    )


def _at_risk_sums(a: Array, rs: _RiskSets) -> Array:
    """``sum_{i: entry_i < t <= exit_i} a_i`` at each event time (``a`` (n, ...))."""

    def tail(
        values: Array, order: npt.NDArray[np.intp], start: npt.NDArray[np.intp]
    ) -> Array:
        rev = np.cumsum(values[order][::-1], axis=0)[::-1]
        pad = np.concatenate([rev, np.zeros((1, *values.shape[1:]))], axis=0)
        return pad[start]

    return tail(a, rs.exit_order, rs.exit_from) - tail(a, rs.entry_order, rs.entry_from)


def cox_partial(
    beta: Array,
    X: Array,
    rs: _RiskSets,
    ties: Literal["efron", "breslow"],
    *,
    derivatives: bool = True,
) -> tuple[float, Array | None, Array | None]:
    """Partial log-likelihood at ``beta`` and, when asked, its gradient and Hessian."""
    eta = X @ beta
    shift = float(np.max(eta)) if eta.size else 0.0
    w = np.exp(eta - shift)
    m, p = len(rs.times), X.shape[1]
    S0 = _at_risk_sums(w, rs)
    ev, grp = rs.event_index, rs.event_group
    D0 = np.bincount(grp, weights=w[ev], minlength=m)
    d = rs.n_events
    ll = float(np.sum(eta[ev]))
    if derivatives:
        wX = w[:, None] * X
        S1 = _at_risk_sums(wX, rs)
        S2 = _at_risk_sums(wX[:, :, None] * X[:, None, :], rs)
        D1 = np.zeros((m, p))
        np.add.at(D1, grp, wX[ev])
        D2 = np.zeros((m, p, p))
        np.add.at(D2, grp, wX[ev][:, :, None] * X[ev][:, None, :])
        grad = X[ev].sum(axis=0)
        hess = np.zeros((p, p))
    # Efron: the l-th of the d tied events removes l/d of the tied events' weight
    max_d = int(d.max()) if m else 0
    for k in range(max_d):
        active = d > k
        frac = np.where(active, k / np.maximum(d, 1), 0.0) if ties == "efron" else 0.0
        den = S0 - frac * D0
        ll -= float(np.sum(np.log(den[active]))) + shift * int(active.sum())
        if derivatives:
            fr = np.asarray(frac)[..., None] if ties == "efron" else 0.0
            num1 = S1 - fr * D1
            mean = num1 / den[:, None]
            grad -= mean[active].sum(axis=0)
            frr = np.asarray(frac)[..., None, None] if ties == "efron" else 0.0
            num2 = (S2 - frr * D2) / den[:, None, None]
            outer = mean[:, :, None] * mean[:, None, :]
            hess -= (num2 - outer)[active].sum(axis=0)
    if not derivatives:
        return ll, None, None
    return ll, grad, hess


@dataclass(frozen=True)
class CoxFit:
    """A fitted Cox model: ``coef``, ``se`` (from the inverse observed
    information, as coxph's naive variance), ``cov``, ``loglik`` (at zero and at the
    estimate, as coxph's ``loglik``), ``n_iter``, ``converged``, and the baseline
    cumulative hazard (``basehaz_times``, ``basehaz``: at covariates zero)."""

    coef: Array
    se: Array
    cov: Array
    loglik: tuple[float, float]
    n_iter: int
    converged: bool
    basehaz_times: Array
    basehaz: Array


def cox_fit(
    exit: npt.ArrayLike,
    event: npt.ArrayLike,
    X: npt.ArrayLike,
    *,
    entry: npt.ArrayLike | None = None,
    ties: Literal["efron", "breslow"] = "efron",
    max_iter: int = 50,
    tol: float = 1e-12,
) -> CoxFit:
    """Fit a Cox proportional-hazards model by Newton-Raphson, as ``coxph``.

    Parameters
    ----------
    exit : array_like, shape (n,)
        Event or censoring time.
    event : array_like of bool, shape (n,)
    X : array_like, shape (n, p)
        Covariates (no intercept).
    entry : array_like, shape (n,), optional
        Delayed entry (left truncation): at risk on ``(entry, exit]``; 0 by default
        (``-inf``: at risk from the start).
    ties : {"efron", "breslow"}
    max_iter, tol
        Newton iterations at most; convergence when the log-likelihood changes by
        less than ``tol`` relative (coxph's ``eps``).

    Returns
    -------
    CoxFit

    Examples
    --------
    >>> fit = cox_fit([1.0, 2, 3, 4, 5, 6], [1, 1, 1, 1, 0, 1],
    ...               [[0.0], [1], [0], [1], [0], [1]])
    >>> round(float(fit.coef[0]), 6), fit.converged  # coxph: -0.2739478
    (-0.273948, True)
    """
    t = np.asarray(exit, dtype=float)
    e = np.asarray(event).astype(bool)
    Xa = np.asarray(X, dtype=float)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    start = np.full(len(t), -np.inf) if entry is None else np.asarray(entry, float)
    rs = _risk_sets(start, t, e)
    p = Xa.shape[1]
    beta = np.zeros(p)
    ll0, g, H = cox_partial(beta, Xa, rs, ties)
    ll = ll0
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        assert g is not None and H is not None
        try:
            step = np.linalg.solve(-H, g)
        except np.linalg.LinAlgError:
            break
        for _half in range(30):
            ll_new, g_new, H_new = cox_partial(beta + step, Xa, rs, ties)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12 * abs(ll):
                break
            step = step / 2
        else:
            break
        beta = beta + step
        done = abs(ll_new - ll) <= tol * max(1.0, abs(ll_new))
        ll, g, H = ll_new, g_new, H_new
        if done:
            converged = True
            break
    assert H is not None
    cov = np.linalg.inv(-H)
    return CoxFit(
        coef=beta,
        se=np.sqrt(np.diag(cov)),
        cov=cov,
        loglik=(float(ll0), float(ll)),
        n_iter=it,
        converged=converged,
        basehaz_times=rs.times,
        basehaz=_baseline_hazard(beta, Xa, rs, ties),
    )


def _baseline_hazard(beta: Array, X: Array, rs: _RiskSets, ties: str) -> Array:
    """Cumulative hazard at covariates zero at each distinct event time: the sum
    over tied events of ``1 / (S0 - (l / d) D0)`` (Efron) or ``d / S0`` (Breslow),
    as ``basehaz(fit, centered = FALSE)``."""
    w = np.exp(X @ beta)
    S0 = _at_risk_sums(w, rs)
    D0 = np.bincount(rs.event_group, weights=w[rs.event_index], minlength=len(rs.times))
    d = rs.n_events
    if ties == "breslow":
        inc = d / S0
    else:
        inc = np.zeros(len(rs.times))
        for k in range(int(d.max()) if len(d) else 0):
            active = d > k
            inc[active] += 1.0 / (S0[active] - (k / d[active]) * D0[active])
    return np.cumsum(inc)
