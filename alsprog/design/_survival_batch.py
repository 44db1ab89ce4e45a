"""Log-rank and Cox analysis of many simulated two-arm trials at once.

Owns: :func:`logrank_batch` (the log-rank z per trial, as ``survival::survdiff``)
and :func:`cox_batch` (the Cox log hazard ratio and its standard error with Breslow
ties, as ``survival::coxph(ties = "breslow")``), both vectorised over trials: arrays
of shape (trials, patients), no Python loop over trials.
Leaves: simulating the trials and stopping them at interim looks to the trial
simulator and :mod:`alsprog.design._group_sequential`.

Method: each row is sorted by time once; tied times form one risk set (the group of
equal times), whose size, treated size, events and treated events are read from
cumulative sums at the group's first and last sorted position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alsprog.errors import ModelSpecificationError

__all__ = ["CoxBatch", "cox_batch", "logrank_batch"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CoxBatch:
    """Cox fits of many trials (arrays of one value per trial).

    Attributes
    ----------
    log_hazard_ratio : ndarray, shape (K,)
        Treated vs control log hazard ratio (Breslow ties); NaN where the trial's
        estimate does not exist (no events in one arm, or no events at all).
    se : ndarray, shape (K,)
        Its model-based standard error ``1 / sqrt(information)``.
    converged : ndarray of bool, shape (K,)
        Newton's iterations converged (``|step| < 1e-10``).

    Examples
    --------
    >>> fit = cox_batch([[1.0, 2.0, 3.0, 4.0]], [[True] * 4], [[True, False] * 2])
    >>> fit.log_hazard_ratio.shape, bool(fit.converged[0])
    ((1,), True)
    """

    log_hazard_ratio: FloatArray
    se: FloatArray
    converged: npt.NDArray[np.bool_]

    @property
    def z(self) -> FloatArray:
        """Wald statistic ``log_hazard_ratio / se``."""
        return self.log_hazard_ratio / self.se


@dataclass(frozen=True)
class _RiskSets:
    n: FloatArray  # at risk, at each group's first position, else 0
    n1: FloatArray  # treated at risk
    d: FloatArray  # events in the group
    d1: FloatArray  # treated events in the group


def _check(
    time: npt.ArrayLike, event: npt.ArrayLike, arm: npt.ArrayLike
) -> tuple[FloatArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    t = np.asarray(time, dtype=float)
    e = np.asarray(event)
    a = np.asarray(arm)
    if t.ndim == 1:
        t, e, a = t[None, :], e[None, ...], a[None, ...]
    if t.ndim != 2 or e.shape != t.shape or a.shape != t.shape:
        raise ModelSpecificationError(
            "`time`, `event` and `arm` must be arrays of one shape (n_trials, "
            f"n_patients); got {np.shape(time)}, {np.shape(event)}, {np.shape(arm)}."
        )
    if t.shape[1] < 2:
        raise ModelSpecificationError(
            f"each trial needs at least 2 patients; got shape {t.shape}."
        )
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ModelSpecificationError(
            "`time` must hold finite non-negative follow-up times (months)."
        )
    for name, v in (("event", e), ("arm", a)):
        if v.dtype != bool:
            if not np.all(np.isin(v, (0, 1))):
                raise ModelSpecificationError(
                    f"`{name}` must be boolean (or 0/1); got values "
                    f"{np.unique(v)[:5].tolist()!r}."
                )
    return t, e.astype(bool), a.astype(bool)


#: Trials are analysed in chunks of about this many patients (all trials together)
#: so that the (trials, patients) work arrays stay small.
_CHUNK_CELLS = 1_000_000


def _chunks(
    t: FloatArray, e: npt.NDArray[np.bool_], a: npt.NDArray[np.bool_]
) -> list[tuple[FloatArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]]:
    rows = max(1, _CHUNK_CELLS // t.shape[1])
    return [
        (t[i : i + rows], e[i : i + rows], a[i : i + rows])
        for i in range(0, t.shape[0], rows)
    ]


def _risk_sets(
    t: FloatArray, e: npt.NDArray[np.bool_], a: npt.NDArray[np.bool_]
) -> _RiskSets:
    k, n = t.shape
    order = np.argsort(t, axis=1, kind="stable")
    ts = np.take_along_axis(t, order, axis=1)
    es = np.take_along_axis(e, order, axis=1).astype(float)
    as_ = np.take_along_axis(a, order, axis=1).astype(float)
    idx = np.broadcast_to(np.arange(n), (k, n))
    start_mask = np.ones((k, n), dtype=bool)
    start_mask[:, 1:] = ts[:, 1:] != ts[:, :-1]
    end_mask = np.ones((k, n), dtype=bool)
    end_mask[:, :-1] = start_mask[:, 1:]
    # first and last sorted position of each element's tie group
    start = np.maximum.accumulate(np.where(start_mask, idx, 0), axis=1)
    end = np.minimum.accumulate(np.where(end_mask, idx, n - 1)[:, ::-1], axis=1)[
        :, ::-1
    ]
    zeros = np.zeros((k, 1))
    ce = np.concatenate([zeros, np.cumsum(es, axis=1)], axis=1)
    ce1 = np.concatenate([zeros, np.cumsum(es * as_, axis=1)], axis=1)
    ca = np.concatenate([zeros, np.cumsum(as_, axis=1)], axis=1)
    rows = np.arange(k)[:, None]
    at_risk = (n - start).astype(float)
    at_risk1 = ca[:, -1:] - ca[rows, start]
    d = ce[rows, end + 1] - ce[rows, start]
    d1 = ce1[rows, end + 1] - ce1[rows, start]
    keep = start_mask & (d > 0)
    return _RiskSets(
        n=np.where(keep, at_risk, 0.0),
        n1=np.where(keep, at_risk1, 0.0),
        d=np.where(keep, d, 0.0),
        d1=np.where(keep, d1, 0.0),
    )


def logrank_batch(
    time: npt.ArrayLike, event: npt.ArrayLike, arm: npt.ArrayLike
) -> FloatArray:
    """Log-rank z statistic of each of many two-arm trials.

    Parameters
    ----------
    time : array_like, shape (K, N)
        Follow-up time of each of ``N`` patients in each of ``K`` trials (a 1-D
        array is one trial).
    event : array_like of bool, shape (K, N)
        True where the follow-up ended with the event, False where censored.
    arm : array_like of bool, shape (K, N)
        True for the treated arm.

    Returns
    -------
    ndarray, shape (K,)
        ``(O - E) / sqrt(V)`` for the treated arm: observed minus expected events
        over the hypergeometric variance, as ``survival::survdiff`` (its chi-square
        is ``z**2``).  Negative when the treated arm has fewer events than expected
        (hazard ratio below 1); NaN where ``V`` is 0 (no events).

    Examples
    --------
    >>> time = [[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 2.0, 2.0]]
    >>> event = [[True, True, True, True], [True, False, True, True]]
    >>> arm = [[False, False, True, True], [False, True, True, False]]
    >>> [round(float(z), 4) for z in logrank_batch(time, event, arm)]
    [-1.6977, -1.0]
    """
    t, e, a = _check(time, event, arm)
    return np.concatenate([_logrank(*c) for c in _chunks(t, e, a)])


def _logrank(
    t: FloatArray, e: npt.NDArray[np.bool_], a: npt.NDArray[np.bool_]
) -> FloatArray:
    r = _risk_sets(t, e, a)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(r.n > 0, r.n1 / np.where(r.n > 0, r.n, 1.0), 0.0)
        o_minus_e = np.sum(r.d1 - r.d * p, axis=1)
        shrink = np.where(r.n > 1, (r.n - r.d) / np.where(r.n > 1, r.n - 1, 1.0), 0.0)
        var = np.sum(r.d * p * (1 - p) * shrink, axis=1)
        return np.where(var > 0, o_minus_e / np.sqrt(var), np.nan)


def cox_batch(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    arm: npt.ArrayLike,
    *,
    max_iter: int = 50,
) -> CoxBatch:
    """Cox proportional-hazards fit of treatment in each of many trials.

    Newton–Raphson on the Breslow partial likelihood of the single covariate
    ``arm``, all trials at once (no loop over trials), from a log hazard ratio of
    0 as ``survival::coxph``; steps are capped at 2 on the log scale.

    Parameters
    ----------
    time, event, arm : array_like, shape (K, N)
        As :func:`logrank_batch`.
    max_iter : int
        Newton iterations at most.

    Returns
    -------
    CoxBatch
        ``log_hazard_ratio`` (treated vs control), its ``se`` and ``converged``
        per trial.

    Examples
    --------
    >>> fit = cox_batch([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [True] * 6,
    ...                 [False, True, False, True, False, True])
    >>> round(float(fit.log_hazard_ratio[0]), 4), round(float(fit.se[0]), 4)
    (-0.6321, 0.922)
    """
    t, e, a = _check(time, event, arm)
    fits = [_cox(*c, max_iter=max_iter) for c in _chunks(t, e, a)]
    return CoxBatch(
        log_hazard_ratio=np.concatenate([f.log_hazard_ratio for f in fits]),
        se=np.concatenate([f.se for f in fits]),
        converged=np.concatenate([f.converged for f in fits]),
    )


def _cox(
    t: FloatArray,
    e: npt.NDArray[np.bool_],
    a: npt.NDArray[np.bool_],
    *,
    max_iter: int,
) -> CoxBatch:
    r = _risk_sets(t, e, a)
    n0 = r.n - r.n1
    k = t.shape[0]
    beta = np.zeros(k)
    converged = np.zeros(k, dtype=bool)
    info = np.zeros(k)
    for _ in range(max_iter):
        w = np.exp(beta)[:, None]
        denom = n0 + r.n1 * w
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(denom > 0, r.n1 * w / np.where(denom > 0, denom, 1.0), 0.0)
        score = np.sum(r.d1 - r.d * p, axis=1)
        info = np.sum(r.d * p * (1 - p), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.where(info > 0, score / np.where(info > 0, info, 1.0), 0.0)
        step = np.clip(step, -2.0, 2.0)
        step[converged] = 0.0
        beta = beta + step
        converged |= np.abs(step) < 1e-10
        if converged.all():
            break
    w = np.exp(beta)[:, None]
    denom = n0 + r.n1 * w
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(denom > 0, r.n1 * w / np.where(denom > 0, denom, 1.0), 0.0)
        info = np.sum(r.d * p * (1 - p), axis=1)
        se = np.where(info > 0, 1.0 / np.sqrt(info), np.nan)
    # no finite estimate without events in both arms
    d1 = r.d1.sum(axis=1)
    d = r.d.sum(axis=1)
    bad = (d1 == 0) | (d1 == d)
    beta = np.where(bad, np.nan, beta)
    se = np.where(bad, np.nan, se)
    return CoxBatch(log_hazard_ratio=beta, se=se, converged=converged & ~bad)
