"""The Kaplan-Meier estimate with delayed entry, Greenwood's variance and R's
intervals.

Owns: :func:`kaplan_meier` (the product-limit estimate of ``survival::survfit``:
at risk at ``s`` are those with ``entry < s <= exit``, Greenwood's variance, the
interval on the log scale as ``conf.type = "log"``) and :func:`km_at` (its value at
given times).
Leaves: the censoring distribution of the scores (events first at tied times) to
:mod:`._scores`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

__all__ = ["kaplan_meier", "km_at"]

Array = npt.NDArray[np.float64]


def kaplan_meier(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    *,
    entry: npt.ArrayLike | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Kaplan-Meier survival at each distinct event time, as R's ``survfit``.

    Parameters
    ----------
    time, event : array_like, shape (n,)
        Exit times and event indicators.
    entry : array_like, shape (n,), optional
        Delayed entry: at risk on ``(entry, exit]``.
    level : float, default 0.95
        Pointwise interval, on the log scale (``conf.type = "log"``, R's default),
        clipped at 1.

    Returns
    -------
    pandas.DataFrame
        ``time``, ``n_at_risk``, ``n_events``, ``survival``, ``se`` (Greenwood's
        standard error of ``survival``), ``lower``, ``upper``.

    Examples
    --------
    >>> km = kaplan_meier([1.0, 2, 2, 3, 4], [1, 1, 0, 1, 0])
    >>> km["survival"].round(4).tolist()
    [0.8, 0.6, 0.3]
    """
    t = np.asarray(time, float)
    e = np.asarray(event).astype(bool)
    e0 = np.full(len(t), -np.inf) if entry is None else np.asarray(entry, float)
    times, d = np.unique(t[e], return_counts=True)
    n_exit_before = np.searchsorted(np.sort(t), times, side="left")
    n_entered = np.searchsorted(np.sort(e0), times, side="left")
    at_risk = (n_entered - n_exit_before).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - d / at_risk)
        var_log = np.cumsum(d / (at_risk * (at_risk - d)))
    se_log = np.sqrt(var_log)
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore"):  # survival 0: no interval (NaN, as R's NA)
        return _table(times, at_risk, d, surv, se_log, z)


def _table(
    times: Array, at_risk: Array, d: Array, surv: Array, se_log: Array, z: float
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": times,
            "n_at_risk": at_risk.astype(int),
            "n_events": d.astype(int),
            "survival": surv,
            "se": surv * se_log,
            "lower": surv * np.exp(-z * se_log),
            "upper": np.minimum(surv * np.exp(z * se_log), 1.0),
        }
    )


def km_at(km: pd.DataFrame, times: npt.ArrayLike, column: str = "survival") -> Array:
    """A Kaplan-Meier table's ``column`` at ``times`` (right-continuous steps; 1
    before the first event time, and for ``se`` 0).

    Examples
    --------
    >>> km = kaplan_meier([1.0, 2, 3], [1, 1, 0])
    >>> km_at(km, [0.5, 1.0, 2.5]).round(4).tolist()
    [1.0, 0.6667, 0.3333]
    >>> km_at(kaplan_meier([1.0, 2], [0, 0]), [3.0]).tolist()
    [1.0]
    """
    at = np.asarray(times, float)
    i = np.searchsorted(km["time"].to_numpy(), at, side="right") - 1
    before = 0.0 if column == "se" else 1.0
    vals = km[column].to_numpy(dtype=float)
    if vals.size == 0:  # no events: survival 1 throughout
        return np.full(at.shape, before)
    return np.where(i >= 0, vals[np.maximum(i, 0)], before)
