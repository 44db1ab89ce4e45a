"""Scores of time-to-event predictions: concordance, time-dependent AUC, Brier.

Owns: the Kaplan-Meier estimate of the censoring distribution
(:func:`censoring_survival`), Harrell's and Uno's concordance
(:func:`concordance`, as ``survival::concordance`` with ``timewt = "n"`` or
``"n/G2"``), the cumulative/dynamic time-dependent AUC and the Brier score with
inverse-probability-of-censoring weights, and the integrated Brier score over a
grid (:func:`auc_brier`, as ``riskRegression::Score`` with ``cens.model = "km"``).
Leaves: the predictions to the models; landmark protocols and the public
``evaluate_survival`` to later work (issue 25).

At a horizon ``t`` the cases are the patients with an event by ``t`` (weight
``1 / G(T_i-)``) and the controls those still event-free after ``t`` (weight ``1 /
G(t)``); patients censored before ``t`` carry no weight.  ``G`` is the
Kaplan-Meier estimate of the censoring distribution, an event at the same time as
a censoring counted first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["AucBrier", "auc_brier", "censoring_survival", "concordance"]

Array = npt.NDArray[np.float64]


def censoring_survival(time: Array, event: Array) -> tuple[Array, Array]:
    """The Kaplan-Meier estimate of the censoring distribution: its jump times and
    ``G`` right after each (censorings are the events; at risk at ``s``: ``T >= s``).

    Examples
    --------
    >>> t, G = censoring_survival(np.array([1.0, 2, 3, 4]), np.array([1, 0, 1, 0]))
    >>> t.tolist(), G.round(4).tolist()
    ([2.0, 4.0], [0.6667, 0.0])
    """
    time = np.asarray(time, float)
    cens = ~np.asarray(event).astype(bool)
    # events at a censoring time happened first: they are no longer at risk of it
    return _product_limit(time, cens, before=~cens)


def _product_limit(
    time: Array, jump: npt.NDArray[np.bool_], before: npt.NDArray[np.bool_] | None
) -> tuple[Array, Array]:
    """Kaplan-Meier of the ``jump`` rows' times: the distinct times and the
    survival right after each; at risk at ``s``: ``T >= s`` less the ``before``
    rows that end at ``s`` (they left first)."""
    jumps, n = np.unique(time[jump], return_counts=True)
    at_risk = len(time) - np.searchsorted(np.sort(time), jumps, side="left")
    if before is not None:
        at_risk = at_risk - _counts_at(time[before], jumps)
    return jumps, np.cumprod(1.0 - n / at_risk)


def _counts_at(values: Array, points: Array) -> Array:
    """How many of ``values`` equal each of ``points``."""
    v = np.sort(values)
    return np.searchsorted(v, points, side="right") - np.searchsorted(v, points)


def _G_at(jumps: Array, G: Array, t: Array, *, left: bool) -> Array:
    """``G(t)`` (or its left limit ``G(t-)``) as a step function."""
    side = "left" if left else "right"
    t = np.asarray(t, float)
    if len(jumps) == 0:  # nobody censored: G is 1 throughout
        return np.ones_like(t)
    i = np.searchsorted(jumps, t, side=side) - 1
    return np.where(i >= 0, G[np.maximum(i, 0)], 1.0)


def concordance(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    *,
    weights: str = "harrell",
    tau: float | None = None,
) -> float:
    """Concordance of a risk score with the event times (higher risk, earlier event).

    A pair is comparable when the shorter time is an event (an event tied with a
    censoring counts as earlier; tied events are not comparable); a tie in risk
    counts one half.  ``weights="uno"`` weights each pair by ``1 / G(T_i)^2`` at the
    earlier time (Uno et al. 2011; ``survival::concordance(timewt = "n/G2")``);
    ``tau`` keeps the pairs whose earlier event is at or before it.

    Examples
    --------
    >>> round(concordance([1.0, 2, 3, 4], [1, 1, 1, 0], [4.0, 3, 1, 2]), 6)  # R: 5/6
    0.833333
    """
    t = np.asarray(time, float)
    e = np.asarray(event).astype(bool)
    r = np.asarray(risk, float)
    jumps, G = censoring_survival(t, e)
    # j is comparable to event i when key_j > key_i: later, or censored at the same
    # time (key = 2 rank(t) + censored); counted with a Fenwick tree over the risk
    # ranks, inserting subjects by decreasing key (O(n log n))
    key = 2 * np.unique(t, return_inverse=True)[1] + (~e)
    rank = np.unique(r, return_inverse=True)[1] + 1  # 1-based, ties share a rank
    w = np.ones(len(t))
    if weights == "uno":
        w = 1.0 / _G_at(jumps, G, t, left=True) ** 2
    scored = e & (t <= tau) if tau is not None else e
    order = np.argsort(-key, kind="stable")
    tree = np.zeros(int(rank.max(initial=0)) + 1, dtype=np.int64)
    inserted = 0
    num = den = 0.0
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for group in np.split(order, bounds):
        for i in group[scored[group]]:
            if inserted:
                below = _prefix(tree, int(rank[i]) - 1)
                tied = _prefix(tree, int(rank[i])) - below
                num += w[i] * (below + 0.5 * tied)
                den += w[i] * inserted
        for j in group:
            _add(tree, int(rank[j]))
        inserted += len(group)
    return float(num / den) if den > 0 else float("nan")  # no comparable pair


def _prefix(tree: npt.NDArray[np.int64], k: int) -> int:
    """Fenwick tree: how many inserted ranks are <= k."""
    total = 0
    while k > 0:
        total += int(tree[k])
        k -= k & -k
    return total


def _add(tree: npt.NDArray[np.int64], k: int) -> None:
    n = len(tree)
    while k < n:
        tree[k] += 1
        k += k & -k


@dataclass(frozen=True)
class AucBrier:
    """Scores at each horizon: ``times``, ``auc``, ``brier``, ``brier_null`` (the
    Kaplan-Meier risk for everyone), ``ibs`` (riskRegression's integrated Brier
    score: the left Riemann sum of the Brier scores over the horizons, divided by
    the horizon; 0 at the first)."""

    times: Array
    auc: Array
    brier: Array
    brier_null: Array
    ibs: Array


def auc_brier(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    times: Sequence[float],
) -> AucBrier:
    """Time-dependent AUC and Brier score with Kaplan-Meier censoring weights.

    Parameters
    ----------
    time, event : array_like, shape (n,)
    risk : array_like, shape (n, len(times))
        Predicted probability of an event by each horizon (``1 - S(t | x)``).
    times : sequence of float
        Horizons, increasing.

    Returns
    -------
    AucBrier
    """
    t = np.asarray(time, float)
    e = np.asarray(event).astype(bool)
    R = np.asarray(risk, float).reshape(len(t), -1)
    hz = np.asarray(times, float)
    jumps, G = censoring_survival(t, e)
    w_case = 1.0 / _G_at(jumps, G, t, left=True)
    km = _km_risk(t, e, hz)
    auc, brier, null = [], [], []
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, h in enumerate(hz):  # no controls left at h: AUC and Brier are NaN
            case = e & (t <= h)
            ctrl = t > h
            Gh = _G_at(jumps, G, np.array([h]), left=False)[0]
            wc, r = w_case[case], R[:, k]
            n = len(t)
            brier.append(
                (np.sum(wc * (1 - r[case]) ** 2) + np.sum(r[ctrl] ** 2) / Gh) / n
            )
            null.append(
                (np.sum(wc * (1 - km[k]) ** 2) + ctrl.sum() * km[k] ** 2 / Gh) / n
            )
            rc, rn = r[case], r[ctrl]
            order = np.sort(rn)
            above = np.searchsorted(order, rc, side="left")
            tied = np.searchsorted(order, rc, side="right") - above
            wins = above + 0.5 * tied  # controls below each case, ties half
            auc.append(float(np.sum(wc * wins) / (wc.sum() * len(rn))))
    brier_a = np.array(brier)
    widths = np.diff(hz)
    ibs = np.concatenate([[0.0], np.cumsum(brier_a[:-1] * widths) / hz[1:]])
    return AucBrier(hz, np.array(auc), brier_a, np.array(null), ibs)


def _km_risk(t: Array, e: npt.NDArray[np.bool_], horizons: Array) -> Array:
    """Kaplan-Meier probability of an event by each horizon."""
    ev, S = _product_limit(t, e, None)
    i = np.searchsorted(ev, horizons, side="right") - 1
    return 1.0 - np.where(i >= 0, S[np.maximum(i, 0)], 1.0)
