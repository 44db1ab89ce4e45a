"""Pairwise comparisons of patients on survival, then function: the array numerics.

Owns: the batched pair rule shared by CAFS and the win statistics (K simulated trials
of N patients at once, no loop over trials or pairs): :func:`cafs_scores_batch`,
:func:`rank_sum_z` (Wilcoxon rank-sum z with tie correction) and
:func:`win_statistics_batch` (net benefit, win ratio, win odds and their first-order
U-statistic standard errors), with their result :class:`WinStatisticsBatch`.
Leaves: reading tables, the CAFS test and the table-level generalised pairwise
comparisons to :mod:`alsprog.design._cafs` and :mod:`alsprog.design._win_ratio`.

The pair rule (Finkelstein & Schoenfeld 1999; Berry et al. 2013), with survival
followed up to ``horizon`` months:

- a patient *died* when the event is observed at ``time <= horizon``; is *known
  alive* at the horizon when ``time > horizon``, or ``time == horizon`` and censored;
  otherwise is *censored* before the horizon;
- two deaths: the later death wins, equal times tie;
- a death at ``t`` loses to anyone known alive at ``t`` (censored at ``t`` or later,
  or alive at the horizon): a censoring at the same time as a death counts as
  longer, as Gehan's rule and BuyseTest's ``scoring.rule = "Gehan"`` do;
- a death after someone's censoring, and any pair of a censored patient with a
  censored or alive patient, cannot be ordered: a tie (uninformative);
- two patients known alive at the horizon are compared on ``change`` (the outcome at
  the horizon minus at baseline; a larger change, i.e. a smaller loss, wins) by at
  least ``threshold`` points; a missing change makes the pair a tie.  ``change`` of a
  patient not known alive at the horizon is ignored.

Counting "how many opponents beat me" per patient is done by sorting each trial's
times (and changes) once, so a trial of N patients costs O(N log N), not O(N^2).

References
----------
Finkelstein DM, Schoenfeld DA (1999). Combining mortality and longitudinal measures in
clinical trials. Stat Med 18:1341-1354.
Berry JD, Miller R, Moore DH, et al. (2013). The Combined Assessment of Function and
Survival (CAFS): a new endpoint for ALS clinical trials. Amyotroph Lateral Scler
Frontotemporal Degener 14:162-168.
Buyse M (2010). Generalized pairwise comparisons of prioritized outcomes in the
two-sample problem. Stat Med 29:3245-3257.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog._validation import check_interval
from alsprog.errors import ModelSpecificationError

__all__ = [
    "WinStatisticsBatch",
    "cafs_scores_batch",
    "rank_sum_z",
    "win_statistics_batch",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


# ------------------------------------------------------------------ array checks
def _as_2d(x: Any, name: str, dtype: Any) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        raise ModelSpecificationError(
            f"`{name}` must be an array of numbers; got {type(x).__name__}."
        ) from None
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] == 0:
        raise ModelSpecificationError(
            f"`{name}` must be an array of shape (n_trials, n_patients) or "
            f"(n_patients,); got shape {np.shape(x)}."
        )
    return a


def _check_batch(
    time: Any, event: Any, change: Any, horizon: Any
) -> tuple[FloatArray, BoolArray, FloatArray, float, bool]:
    one = np.ndim(time) == 1
    t = _as_2d(time, "time", float)
    ev = np.asarray(event)
    if ev.dtype != bool:
        if not np.isin(ev, [0, 1]).all():
            raise ModelSpecificationError(
                "`event` must be boolean (True: death observed at `time`); got "
                f"values {np.unique(ev)[:5].tolist()!r}."
            )
        ev = ev.astype(bool)
    e = _as_2d(ev, "event", bool)
    c = _as_2d(change, "change", float)
    for name, a in (("event", e), ("change", c)):
        if a.shape != t.shape:
            raise ModelSpecificationError(
                f"`{name}` must have the shape of `time` {np.shape(time)}; got "
                f"{np.shape(a if name == 'change' else event)}."
            )
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        bad = t[~(np.isfinite(t) & (t >= 0))][0]
        raise ModelSpecificationError(
            f"`time` must hold finite follow-up times >= 0 (months); got {bad!r}."
        )
    h = check_interval(
        horizon, "horizon", low=0, low_closed=False, error=ModelSpecificationError
    )
    return t, e, c, float(h), one


# ------------------------------------------------------------------ counting by sorting
def _tie_groups(
    values: FloatArray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort each row; return the order and, per sorted position, the first and last
    sorted position of its tie group (NaN are sorted last and tie together)."""
    v = np.where(np.isnan(values), np.inf, values)
    order = np.argsort(v, axis=1, kind="stable")
    vs = np.take_along_axis(v, order, axis=1)
    n = v.shape[1]
    idx = np.arange(n)
    new = np.ones(v.shape, dtype=bool)
    new[:, 1:] = vs[:, 1:] != vs[:, :-1]
    start = np.maximum.accumulate(np.where(new, idx, 0), axis=1)
    last = np.ones(v.shape, dtype=bool)
    last[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(last, idx, n - 1)[:, ::-1], axis=1)[:, ::-1]
    return order, start, end


def _counts_self(
    values: FloatArray, masks: list[BoolArray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each mask M and each patient i of each row: ``#{j in M: v_j < v_i}`` and
    ``#{j in M: v_j <= v_i}``, from one sort of the row (O(N log N))."""
    order, start, end = _tie_groups(values)
    inverse = np.empty_like(order)
    np.put_along_axis(inverse, order, np.arange(order.shape[1])[None, :], axis=1)
    s_i = np.take_along_axis(start, inverse, axis=1)
    e_i = np.take_along_axis(end, inverse, axis=1)
    out = []
    for m in masks:
        m_sorted = np.take_along_axis(m, order, axis=1).astype(np.int64)
        cum = np.cumsum(m_sorted, axis=1)
        incl = np.take_along_axis(cum, e_i, axis=1)
        before = np.take_along_axis(cum - m_sorted, s_i, axis=1)
        out.append((before, incl))
    return out


def _counts_at(
    values: FloatArray, mask: BoolArray, queries: FloatArray, *, strict: bool
) -> np.ndarray:
    """``#{j in mask: v_j < q_i}`` (strict) or ``<= q_i`` for each query of each row."""
    k, n = values.shape
    v = np.where(mask, values, np.inf)
    q = np.where(np.isnan(queries), -np.inf, queries)
    zeros = np.zeros(q.shape, dtype=np.int64)
    if strict:  # queries first: at equal values a query sorts before the members
        cat, flag, qpos = np.hstack([q, v]), np.hstack([zeros, mask]), slice(0, n)
    else:
        cat, flag, qpos = np.hstack([v, q]), np.hstack([mask, zeros]), slice(n, 2 * n)
    order = np.argsort(cat, axis=1, kind="stable")
    cum = np.cumsum(np.take_along_axis(flag.astype(np.int64), order, axis=1), axis=1)
    inverse = np.empty_like(order)
    np.put_along_axis(inverse, order, np.arange(2 * n)[None, :], axis=1)
    return np.take_along_axis(cum, inverse[:, qpos], axis=1)


def _states(
    t: FloatArray, e: BoolArray, c: FloatArray, h: float
) -> tuple[BoolArray, BoolArray, BoolArray, FloatArray, BoolArray]:
    dead = e & (t <= h)
    alive = ~dead & (t >= h)
    cens = ~dead & ~alive
    ch = np.where(alive, c, np.nan)
    has = alive & np.isfinite(ch)
    return dead, alive, cens, ch, has


def _wins_losses(
    t: FloatArray,
    e: BoolArray,
    c: FloatArray,
    h: float,
    threshold: float,
    opponents: BoolArray | None,
    *,
    restriction: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per patient: how many ``opponents`` it beats and loses to under the pair rule.

    ``restriction``: BuyseTest's truncation at the horizon, where a death exactly at
    the horizon ties with anyone alive at it (both reach the horizon) instead of
    losing; the pair is then uninformative, since the dead has no change.
    """
    dead, alive, cens, ch, has = _states(t, e, c, h)
    if opponents is not None:
        d_o, a_o = dead & opponents, alive & opponents
        c_o, h_o = cens & opponents, has & opponents
    else:
        d_o, a_o, c_o, h_o = dead, alive, cens, has
    n_d = d_o.sum(axis=1, keepdims=True)
    n_a = a_o.sum(axis=1, keepdims=True)
    n_c = c_o.sum(axis=1, keepdims=True)
    n_h = h_o.sum(axis=1, keepdims=True)
    (d_lt, d_le), (c_lt, _) = _counts_self(t, [d_o, c_o])
    beats_dead, loses_alive = n_d, n_a
    if restriction:
        at_h = t == h
        beats_dead = n_d - (d_o & at_h).sum(axis=1, keepdims=True)
        loses_alive = np.where(at_h, 0, n_a)
    wins = (
        np.where(dead, d_lt, 0)
        + np.where(alive, beats_dead, 0)
        + np.where(cens, d_le, 0)
    )
    losses = np.where(dead, (n_d - d_le) + loses_alive + (n_c - c_lt), 0)
    if threshold == 0:
        ((w_lt, w_le),) = _counts_self(ch, [h_o])
        w, lo = w_lt, n_h - w_le
    else:
        w = _counts_at(ch, h_o, ch - threshold, strict=False)
        lo = n_h - _counts_at(ch, h_o, ch + threshold, strict=True)
    wins = wins + np.where(has, w, 0)
    losses = losses + np.where(has, lo, 0)
    return wins, losses


# ------------------------------------------------------------------ public batch API
def cafs_scores_batch(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    change: npt.ArrayLike,
    horizon: float,
) -> npt.NDArray[np.int64]:
    """CAFS scores of K simulated trials at once: wins minus losses over all others.

    Parameters
    ----------
    time : array of shape (K, N) or (N,)
        Follow-up time of survival, months from baseline (>= 0): the death time when
        ``event``, else the last time known alive.
    event : bool array, same shape
        True where a death (or tracheostomy) is observed at ``time``.
    change : array, same shape
        Outcome at the horizon minus at baseline (ALSFRS-R points; a larger value is
        a smaller loss); NaN when unknown.  Read only for patients known alive at the
        horizon; a NaN there makes their comparisons on function ties.
    horizon : float
        Months (> 0) at which survival is truncated and function compared.

    Returns
    -------
    numpy.ndarray of int64, shape of ``time``
        Each patient's score: the number of patients of the same trial it beats minus
        the number it loses to (pair rule in the module docstring).

    Raises
    ------
    ModelSpecificationError
        If shapes differ, times are negative or not finite, or ``event`` is not
        boolean.

    Examples
    --------
    >>> cafs_scores_batch([3.0, 12.0, 12.0, 5.0], [True, False, False, False],
    ...                   [np.nan, -4.0, -6.0, np.nan], 12.0).tolist()
    [-3, 2, 0, 1]
    """
    t, e, c, h, one = _check_batch(time, event, change, horizon)
    wins, losses = _wins_losses(t, e, c, h, 0.0, None)
    out = (wins - losses).astype(np.int64)
    return out[0] if one else out


def _midranks(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mid-ranks (1-based) per row and the tie term ``sum(t^3 - t)`` per row."""
    order, start, end = _tie_groups(x)
    mid = (start + end) / 2.0 + 1.0
    ranks = np.empty_like(mid)
    np.put_along_axis(ranks, order, mid, axis=1)
    size = (end - start + 1).astype(float)
    return ranks, np.sum(size * size - 1.0, axis=1)


def rank_sum_z(scores: npt.ArrayLike, arm: npt.ArrayLike) -> FloatArray:
    """Wilcoxon rank-sum z of each trial, with the normal tie correction.

    Parameters
    ----------
    scores : array of shape (K, N) or (N,)
        Scores (higher is better), e.g. from :func:`cafs_scores_batch`.
    arm : bool array of shape (K, N) or (N,)
        True for the treated arm; one row is broadcast over all trials.  Each trial
        needs patients in both arms.

    Returns
    -------
    numpy.ndarray of float, shape (K,) (a float for 1-D ``scores``)
        ``(W - n1 (N + 1) / 2) / sqrt(n1 n0 / 12 (N + 1 - sum(t^3 - t) / (N (N - 1))))``
        with ``W`` the sum of the treated arm's mid-ranks: positive when the treated
        arm scores higher.  0 where every score ties (no information).  Its
        two-sided p-value ``2 * norm.sf(abs(z))`` equals
        ``scipy.stats.mannwhitneyu(..., use_continuity=False, method="asymptotic")``.

    Raises
    ------
    ModelSpecificationError
        If shapes differ or a trial has an empty arm.

    Examples
    --------
    >>> round(float(rank_sum_z([5.0, 3.0, 1.0, 1.0], [True, True, False, False])), 6)
    1.632993
    """
    one = np.ndim(scores) == 1
    s = _as_2d(scores, "scores", float)
    a = np.asarray(arm)
    if a.dtype != bool:
        raise ModelSpecificationError(
            f"`arm` must be a boolean array (True: treated); got dtype {a.dtype}."
        )
    if (
        a.ndim > 2
        or a.shape[-1:] != s.shape[-1:]
        or (a.ndim == 2 and a.shape[0] not in (1, s.shape[0]))
    ):
        raise ModelSpecificationError(
            f"`arm` must have the shape of `scores` {np.shape(scores)} (or one row); "
            f"got {np.shape(arm)}."
        )
    a = np.broadcast_to(a if a.ndim == 2 else a[None, :], s.shape)
    n = s.shape[1]
    n1 = a.sum(axis=1).astype(float)
    n0 = n - n1
    if np.any(n1 == 0) or np.any(n0 == 0):
        raise ModelSpecificationError(
            "each trial needs patients in both arms; `arm` is all True or all False "
            f"in {int(np.sum((n1 == 0) | (n0 == 0)))} trial(s)."
        )
    ranks, ties = _midranks(s)
    w = np.sum(ranks * a, axis=1)
    var = n1 * n0 / 12.0 * ((n + 1) - ties / (n * (n - 1.0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(var > 0, (w - n1 * (n + 1) / 2.0) / np.sqrt(var), 0.0)
    return z[0] if one else z


@dataclass(frozen=True)
class WinStatisticsBatch:
    """Win statistics of K simulated trials (arrays of shape (K,); immutable).

    Pairs are treated x control; ``favorable`` is the fraction of pairs the treated
    patient wins.

    Attributes
    ----------
    favorable, unfavorable : numpy.ndarray
        Fractions of the ``n1 * n0`` pairs won and lost by the treated patient.
    net_benefit : numpy.ndarray
        ``favorable - unfavorable`` (Buyse 2010).
    win_ratio : numpy.ndarray
        ``favorable / unfavorable`` (Pocock 2012); inf when nothing is lost.
    win_odds : numpy.ndarray
        ``(favorable + ties / 2) / (unfavorable + ties / 2)`` (Dong 2020), ties being
        every pair not won or lost.
    net_benefit_se, log_win_ratio_se, log_win_odds_se : numpy.ndarray
        First-order U-statistic (H-decomposition) standard errors, as BuyseTest's
        ``method.inference = "u-statistic"``; delta method on the log scale.
    z : numpy.ndarray
        ``log(win_ratio) / log_win_ratio_se``: positive when the treated arm does
        better; NaN when a trial has no win or no loss.
    """

    favorable: FloatArray
    unfavorable: FloatArray
    net_benefit: FloatArray
    win_ratio: FloatArray
    win_odds: FloatArray
    net_benefit_se: FloatArray
    log_win_ratio_se: FloatArray
    log_win_odds_se: FloatArray
    z: FloatArray


def _u_moments(
    fav_t: FloatArray,
    unf_t: FloatArray,
    fav_c: FloatArray,
    unf_c: FloatArray,
    n1: FloatArray,
    n0: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Proportions and first-order variances from per-patient pair means.

    ``fav_t[i]`` is the mean over controls of treated ``i``'s favorable pairs (NaN
    outside the arm), ``fav_c[j]`` the mean over treated patients for control ``j``.
    Returns ``p_f, p_u, var_f, var_u, cov_fu`` (BuyseTest, src/FCT_calcStatistic.h:
    ``iid = (E[s | x_l] - U) / m``, ``Mvar = sum(iid^2)``).
    """
    p_f = np.nansum(fav_t, axis=1) / n1
    p_u = np.nansum(unf_t, axis=1) / n1
    hf_t, hu_t = fav_t - p_f[:, None], unf_t - p_u[:, None]
    hf_c, hu_c = fav_c - p_f[:, None], unf_c - p_u[:, None]
    var_f = np.nansum(hf_t**2, 1) / n1**2 + np.nansum(hf_c**2, 1) / n0**2
    var_u = np.nansum(hu_t**2, 1) / n1**2 + np.nansum(hu_c**2, 1) / n0**2
    cov = np.nansum(hf_t * hu_t, 1) / n1**2 + np.nansum(hf_c * hu_c, 1) / n0**2
    return p_f, p_u, var_f, var_u, cov


def _ratio_stats(
    p_f: FloatArray,
    p_u: FloatArray,
    var_f: FloatArray,
    var_u: FloatArray,
    cov: FloatArray,
) -> dict[str, FloatArray]:
    nb = p_f - p_u
    var_nb = var_f + var_u - 2 * cov
    with np.errstate(divide="ignore", invalid="ignore"):
        wr = p_f / p_u
        var_lwr = var_f / p_f**2 + var_u / p_u**2 - 2 * cov / (p_f * p_u)
        wo = (1 + nb) / (1 - nb)
        se_lwo = np.sqrt(var_nb) * 2 / (1 - nb**2)
        se_lwr = np.sqrt(np.where(np.isfinite(var_lwr), np.maximum(var_lwr, 0), np.nan))
    return {
        "net_benefit": nb,
        "net_benefit_se": np.sqrt(np.maximum(var_nb, 0)),
        "win_ratio": wr,
        "log_win_ratio_se": se_lwr,
        "win_odds": wo,
        "log_win_odds_se": se_lwo,
    }


def win_statistics_batch(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    change: npt.ArrayLike,
    arm: npt.ArrayLike,
    horizon: float,
    threshold: float = 0.0,
) -> WinStatisticsBatch:
    """Net benefit, win ratio and win odds of K simulated trials at once.

    Every treated patient is compared with every control of the same trial: on
    survival up to ``horizon`` first (Gehan's rule, uninformative pairs go on), then,
    when both are known alive at the horizon, on ``change`` (a larger change, i.e. a
    smaller loss, wins when it differs by at least ``threshold`` points).  The pair
    rule is that of :func:`cafs_scores_batch` with the threshold added, and one
    difference that BuyseTest's ``restriction`` makes: a death exactly at the
    horizon ties with a patient alive at the horizon (CAFS ranks it below).  The
    result equals :func:`~alsprog.design.win_ratio` with priorities
    ``[Priority(time, kind="survival", event=event, horizon=horizon),
    Priority(change, threshold=threshold)]`` on ``change`` set missing for
    patients not known alive at the horizon.

    Parameters
    ----------
    time, event, change : arrays of shape (K, N) or (N,)
        As for :func:`cafs_scores_batch`.
    arm : bool array of shape (K, N), or (N,) broadcast over trials
        True for the treated arm.
    horizon : float
        Months (> 0).
    threshold : float, default 0.0
        Smallest difference in ``change`` (points, >= 0) that decides a pair; 0: any
        difference.

    Returns
    -------
    WinStatisticsBatch
        Arrays of shape (K,) (0-d for 1-D input).

    Raises
    ------
    ModelSpecificationError
        If shapes differ, times are negative, ``threshold`` is negative or a trial
        has an empty arm.

    Examples
    --------
    >>> w = win_statistics_batch([3.0, 12.0, 12.0, 5.0], [True, False, False, True],
    ...     [np.nan, -4.0, -6.0, np.nan], [False, True, True, False], 12.0)
    >>> float(w.favorable), float(w.unfavorable), float(w.win_ratio)
    (1.0, 0.0, inf)
    """
    t, e, c, h, one = _check_batch(time, event, change, horizon)
    thr = check_interval(threshold, "threshold", low=0, error=ModelSpecificationError)
    a = np.asarray(arm)
    if (
        a.dtype != bool
        or a.ndim > 2
        or a.shape[-1:] != t.shape[-1:]
        or (a.ndim == 2 and a.shape[0] not in (1, t.shape[0]))
    ):
        raise ModelSpecificationError(
            f"`arm` must be a boolean array of the shape of `time` {t.shape} or one "
            f"row; got dtype {a.dtype}, shape {a.shape}."
        )
    a = np.broadcast_to(a if a.ndim == 2 else a[None, :], t.shape)
    n1 = a.sum(axis=1).astype(float)
    n0 = t.shape[1] - n1
    if np.any(n1 == 0) or np.any(n0 == 0):
        raise ModelSpecificationError(
            "each trial needs patients in both arms; `arm` is all True or all False "
            f"in {int(np.sum((n1 == 0) | (n0 == 0)))} trial(s)."
        )
    # treated vs controls, controls vs treated
    wins_t, loss_t = _wins_losses(t, e, c, h, float(thr), ~a, restriction=True)
    wins_c, loss_c = _wins_losses(t, e, c, h, float(thr), a, restriction=True)
    nan = np.nan
    fav_t = np.where(a, wins_t / n0[:, None], nan)
    unf_t = np.where(a, loss_t / n0[:, None], nan)
    fav_c = np.where(~a, loss_c / n1[:, None], nan)  # treated beats control j
    unf_c = np.where(~a, wins_c / n1[:, None], nan)
    p_f, p_u, var_f, var_u, cov = _u_moments(fav_t, unf_t, fav_c, unf_c, n1, n0)
    st = _ratio_stats(p_f, p_u, var_f, var_u, cov)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(st["win_ratio"]) / st["log_win_ratio_se"]
    z = np.where(np.isfinite(z), z, nan)
    fields = {"favorable": p_f, "unfavorable": p_u, **st, "z": z}
    if one:
        fields = {k: v[0] for k, v in fields.items()}
    return WinStatisticsBatch(**fields)
