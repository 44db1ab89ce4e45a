"""ALSFRS-R items from simulated totals.

Owns: the patient-specific order in which the 12 items lose function and the integer
split of a total into items (0-4 each) that sum to it exactly.
Leaves: the totals themselves to :mod:`alsprog.simulate._cohort`.

Model: each item ``j`` of patient ``i`` loses its 4 points linearly while a latent
severity ``c`` runs from ``start[i, j]`` to ``start[i, j] + span[i, j]``. The domain of
onset starts first (bulbar items for bulbar onset, one limb domain for spinal onset),
the other limb and bulbar domains follow, respiratory comes last, as in PRO-ACT
[Thakore 2018, Muscle Nerve; docs/domain.md §2 "subscores decline in onset-site order,
respiratory slowest"]. For a visit the severity solving ``sum_j loss_j(c) = 48 - total``
is found by bisection, and the real-valued losses are rounded to integers by the largest
remainder, so the items sum exactly to the total and lose function in a consistent,
onset-ordered way as the total falls.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["DOMAINS", "item_order", "split_total"]

#: ALSFRS-R domains and their item numbers (1-based) [Cedarbaum 1999; docs/domain.md §1].
DOMAINS: dict[str, tuple[int, int, int]] = {
    "bulbar": (1, 2, 3),
    "fine_motor": (4, 5, 6),
    "gross_motor": (7, 8, 9),
    "respiratory": (10, 11, 12),
}

# Domain start offsets and item spans (severity units), drawn uniformly per patient.
# Tuned on 8,000 simulated patients so that at a baseline total of 34-38 (mean 36.3) the
# mean subscores are 9.7 / 7.8 / 7.9 / 10.9, near the trial-entry means bulbar 9.7, fine
# 8.0, gross 7.6, respiratory 10.8 [Paganoni 2020, NEJM], and at totals <= 25 about 34%
# of fine-motor and 33% of gross-motor items are 0 (33-49% and 32-42% in
# [Cudkowicz 2022, Muscle Nerve]; docs/domain.md §1).
_SECOND_LIMB = (0.2, 1.0)
_BULBAR_AFTER_SPINAL = (0.6, 1.8)
_LIMBS_AFTER_BULBAR = (0.3, 1.2)
_RESPIRATORY = (0.25, 2.0)
_ITEM_JITTER_SD = 0.2
_SPAN = (1.4, 2.4)


def item_order(
    bulbar_onset: npt.NDArray[np.bool_], rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Draw per-patient item ``start`` and ``span`` arrays, each ``(n_patients, 12)``."""
    n = len(bulbar_onset)
    dom = np.empty((n, 4))  # bulbar, fine, gross, respiratory
    upper_first = rng.random(n) < 0.5
    second = rng.uniform(*_SECOND_LIMB, n)
    dom[:, 1] = np.where(upper_first, 0.0, second)
    dom[:, 2] = np.where(upper_first, second, 0.0)
    dom[:, 0] = rng.uniform(*_BULBAR_AFTER_SPINAL, n)
    dom[:, 3] = rng.uniform(*_RESPIRATORY, n)
    # bulbar onset: bulbar first, both limb domains later
    limbs = rng.uniform(*_LIMBS_AFTER_BULBAR, (n, 2))
    dom[bulbar_onset, 0] = 0.0
    dom[bulbar_onset, 1:3] = limbs[bulbar_onset]
    start = np.repeat(dom, 3, axis=1) + rng.normal(0.0, _ITEM_JITTER_SD, (n, 12))
    span = rng.uniform(*_SPAN, (n, 12))
    return start, span


def split_total(
    total: npt.NDArray[np.float64],
    start: npt.NDArray[np.float64],
    span: npt.NDArray[np.float64],
    *,
    n_iter: int = 60,
) -> npt.NDArray[np.int64]:
    """Split integer totals (0-48) into 12 integer items (0-4) that sum to them exactly.

    Parameters
    ----------
    total : ndarray, shape (n,)
        ALSFRS-R totals, integers in 0-48.
    start, span : ndarray, shape (n, 12)
        Item order of the patient of each row (from :func:`item_order`).

    Returns
    -------
    ndarray of int, shape (n, 12)
        Item scores; ``items.sum(axis=1) == total``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> start, span = item_order(np.array([True, False]), rng)
    >>> items = split_total(np.array([40.0, 12.0]), start, span)
    >>> items.sum(axis=1).tolist(), int(items.min()) >= 0, int(items.max()) <= 4
    ([40, 12], True, True)
    """
    loss = 48.0 - np.asarray(total, dtype=float)
    if len(loss) == 0:
        return np.zeros((0, 12), dtype=np.int64)
    lo = start.min(axis=1) - 1.0
    hi = (start + span).max(axis=1) + 1.0
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        below = _item_loss(mid, start, span).sum(axis=1) < loss
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    real = _item_loss(0.5 * (lo + hi), start, span)
    # Largest remainder: floor each item, then give the missing points to the items with
    # the largest fractional parts (never above 4, since those items are below 4).
    base = np.minimum(np.floor(real + 1e-9), 4.0)
    frac = np.where(base < 4.0, real - base, -np.inf)
    missing = (loss - base.sum(axis=1)).round().astype(np.int64)
    rank = np.argsort(np.argsort(-frac, axis=1, kind="stable"), axis=1, kind="stable")
    lost = base + (rank < missing[:, None])
    return (4 - lost).astype(np.int64)


def _item_loss(
    c: npt.NDArray[np.float64],
    start: npt.NDArray[np.float64],
    span: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    return 4.0 * np.clip((c[:, None] - start) / span, 0.0, 1.0)
