"""The DREAM ALS Prediction challenge's protocol: 3 months in, the slope to month 12.

Owns: :func:`dream_slopes` (the challenge's target: the slope between the first
visit after month 3 and the last visit up to month 12) and :func:`dream_backtest`
(each model fitted on the training patients, forecast at each test patient's two
target visits from its visits in months 0-3, scored by RMSD and Pearson's r beside
the no-skill references: the training patients' mean slope, and 0).
Leaves: the split and the forecasts to :mod:`alsprog.forecast._split` and
:mod:`alsprog.forecast._table`; the ``protocol`` argument to
:func:`alsprog.forecast.backtest`.

Reference: Küffner R, Zach N, Norel R, et al. Crowdsourced analysis of clinical
trial data to predict amyotrophic lateral sclerosis progression. Nat Biotechnol
2015;33:51-57 (the DREAM-Phil Bowen ALS Prediction Prize4Life challenge: from the
first 3 months of trial data, predict the ALSFRS slope over months 3-12, computed
from the first visit after month 3 to the last visit before month 12; scored by
RMSD and Pearson correlation).
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from alsprog._progress import progress_bar
from alsprog._validation import check_columns
from alsprog.forecast._table import fit_and_forecast

__all__ = ["DREAM_END", "DREAM_START", "dream_backtest", "dream_slopes"]

logger = logging.getLogger(__name__)

#: The challenge's window, months since the first (trial-entry) visit.
DREAM_START = 3.0
DREAM_END = 12.0


def dream_slopes(
    table: pd.DataFrame,
    *,
    outcome: str = "alsfrs_r_total",
    subject: str = "subject_id",
    time: str = "months",
    start: float = DREAM_START,
    end: float = DREAM_END,
) -> pd.DataFrame:
    """The DREAM challenge's target slope of each subject.

    ``slope = (y(t2) - y(t1)) / (t2 - t1)``, with ``t1`` the first visit after
    ``start`` (``time > start``) and ``t2`` the last visit up to ``end``
    (``time <= end``) that has a value of ``outcome`` (Küffner et al. 2015).
    Subjects without two such distinct visits get no row.

    Parameters
    ----------
    table : pandas.DataFrame
        The long table (or any table with the three columns).
    outcome, subject, time : str
        The columns; ``start`` and ``end`` are in the units of ``time``.
    start, end : float, default 3 and 12

    Returns
    -------
    pandas.DataFrame
        Indexed by subject: ``t1``, ``y1``, ``t2``, ``y2``, ``slope`` (units of
        ``outcome`` per unit of ``time``).

    Examples
    --------
    >>> df = pd.DataFrame({"subject_id": ["A"] * 5 + ["B"] * 2,
    ...     "months": [0, 2.9, 3.4, 9, 12.0, 0, 4],
    ...     "alsfrs_r_total": [40.0, 39, 38, 33, 31, 44, 43]})
    >>> dream_slopes(df).round(3).to_dict("index")
    {'A': {'t1': 3.4, 'y1': 38.0, 't2': 12.0, 'y2': 31.0, 'slope': -0.814}}
    """
    check_columns(table, "table", [subject, time, outcome])
    if not end > start:
        raise ValueError(f"`end` must be after `start`; got {start!r}, {end!r}.")
    t = table.loc[table[outcome].notna(), [subject, time, outcome]]
    t = t[(t[time] > start) & (t[time] <= end)].sort_values([subject, time])
    g = t.groupby(subject, sort=True)
    first, last = g.first(), g.last()
    out = pd.DataFrame(
        {
            "t1": first[time].astype(float),
            "y1": first[outcome].astype(float),
            "t2": last[time].astype(float),
            "y2": last[outcome].astype(float),
        }
    )
    out = out[out["t2"] > out["t1"]]
    out["slope"] = (out["y2"] - out["y1"]) / (out["t2"] - out["t1"])
    out.index.name = subject
    return out


def _scores(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    d = pred - obs
    r = np.nan
    if len(obs) > 2 and np.std(pred) > 0 and np.std(obs) > 0:
        r = float(np.corrcoef(pred, obs)[0, 1])
    return {
        "n": len(obs),
        "rmsd": float(np.sqrt(np.mean(d**2))) if len(obs) else np.nan,
        "r": r,
        "mean_observed": float(np.mean(obs)) if len(obs) else np.nan,
        "mean_predicted": float(np.mean(pred)) if len(obs) else np.nan,
    }


def dream_backtest(
    models: Mapping[str, Any],
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    rng: np.random.Generator,
    reseed: Any,
    outcome: str,
    subject: str,
    time: str,
    level: float,
    n_samples: int | None,
    progress: bool | None,
) -> pd.DataFrame:
    """Score ``models`` on the DREAM protocol (see :func:`backtest`)."""
    target = dream_slopes(test, outcome=outcome, subject=subject, time=time)
    hist = test[test[time] <= DREAM_START]
    hist = hist[hist[outcome].notna()]
    target = target[target.index.isin(set(hist[subject]))]
    hist = hist[hist[subject].isin(set(target.index))]
    obs = target["slope"].to_numpy()
    at = pd.DataFrame(
        {
            subject: np.concatenate([target.index.to_numpy()] * 2),
            time: np.concatenate([target["t1"].to_numpy(), target["t2"].to_numpy()]),
        }
    )
    rows: list[dict[str, Any]] = []
    for name, est in progress_bar(
        list(models.items()), desc="backtest (DREAM)", unit="model", progress=progress
    ):
        t0 = _time.perf_counter()
        f = fit_and_forecast(
            reseed(est, rng),
            train,
            hist,
            at,
            rng,
            level=level,
            n_samples=n_samples,
            time=time,
        )
        mean = f.set_index([subject, time])["mean"]
        y1 = mean.reindex(list(zip(target.index, target["t1"], strict=True)))
        y2 = mean.reindex(list(zip(target.index, target["t2"], strict=True)))
        pred = (y2.to_numpy() - y1.to_numpy()) / (
            target["t2"] - target["t1"]
        ).to_numpy()
        row = {"model": name, **_scores(pred, obs)}
        row["seconds"] = _time.perf_counter() - t0
        logger.info("DREAM backtest: %s in %.2f s", name, row["seconds"])
        rows.append(row)
    train_slopes = dream_slopes(train, outcome=outcome, subject=subject, time=time)
    mean_slope = float(train_slopes["slope"].mean()) if len(train_slopes) else np.nan
    for name, value in (("training_mean", mean_slope), ("zero", 0.0)):
        rows.append(
            {"model": name, **_scores(np.full(len(obs), value), obs), "seconds": 0.0}
        )
    res = pd.DataFrame(rows)
    res.attrs["n_test"] = int(test[subject].nunique())
    res.attrs["n_scored"] = len(target)
    res.attrs["training_mean_slope"] = mean_slope
    return res
