"""Figures for forecasts: a patient's fan chart and the calibration curve.

Owns: :func:`fan_chart` and :func:`calibration_curve`.  Draws only what
:func:`alsprog.forecast.forecast` and :func:`alsprog.forecast.calibration` computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["calibration_curve", "fan_chart"]


def fan_chart(
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    subject: str,
    *,
    actual: pd.DataFrame | None = None,
    outcome: str | None = None,
    time: str | None = None,
    subject_col: str | None = None,
    ax: Any = None,
) -> Any:
    """One patient's visits so far, forecast median and interval band.

    Parameters
    ----------
    history : pandas.DataFrame
        The visits the forecast was conditioned on (subject, time, outcome).
    forecasts : pandas.DataFrame
        From :func:`alsprog.forecast.forecast` (subject, time, ``median``,
        ``lower``, ``upper``); forecast several times for a smooth band.
    subject : str
        The patient to draw.
    actual : pandas.DataFrame, optional
        Later observed visits, drawn as open circles.
    outcome, time, subject_col : str, optional
        Columns of the outcome, the time and the subject; by default those the
        forecast table's ``attrs`` name (the model's own, set by
        :func:`~alsprog.forecast.forecast`), else the data dictionary's
        ``alsfrs_r_total``, ``months``, ``subject_id``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> h = pd.DataFrame({"subject_id": ["A", "A"], "months": [0.0, 3.0],
    ...                   "alsfrs_r_total": [40.0, 38.0]})
    >>> f = pd.DataFrame({"subject_id": ["A"] * 2, "months": [6.0, 12.0],
    ...                   "median": [36.0, 32.0], "lower": [31.0, 24.0],
    ...                   "upper": [40.0, 38.0]})
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> ax = fan_chart(h, f, "A", ax=ax)
    >>> len(ax.collections) >= 2   # band and history points
    True
    """
    import matplotlib.pyplot as plt

    from alsprog.forecast._columns import table_columns

    sid_col, time, outcome = table_columns(
        forecasts, subject=subject_col, time=time, outcome=outcome
    )
    need = {sid_col, time, "median", "lower", "upper"}
    if not need <= set(forecasts.columns):
        raise ValueError(
            f"`forecasts` needs the columns {sorted(need)}; got {list(forecasts.columns)}."
        )
    missing = [c for c in (sid_col, time, outcome) if c not in history.columns]
    if missing:
        raise ValueError(
            f"`history` needs the columns {missing}; got {list(history.columns)}."
        )
    ax = ax if ax is not None else plt.gca()
    h = history[history[sid_col].astype(str) == str(subject)].sort_values(time)
    f = forecasts[forecasts[sid_col].astype(str) == str(subject)]
    f = f.sort_values(time)
    if h.empty and f.empty:
        raise ValueError(
            f"subject {subject!r} is in neither `history` nor `forecasts`."
        )
    h = h[h[outcome].notna()]
    if len(h):  # join the band to the last visit
        last = h.iloc[-1]
        start = pd.DataFrame(
            {
                time: [last[time]],
                "median": [last[outcome]],
                "lower": [last[outcome]],
                "upper": [last[outcome]],
            }
        )
        f = pd.concat([start, f[[time, "median", "lower", "upper"]]])
    ax.fill_between(
        f[time], f["lower"], f["upper"], alpha=0.25, color="C0", label="interval"
    )
    ax.plot(f[time], f["median"], color="C0", lw=2, label="forecast median")
    ax.scatter(h[time], h[outcome], color="k", zorder=3, label="visits so far")
    if actual is not None:
        a = actual[actual[sid_col].astype(str) == str(subject)]
        a = a[a[time] > (h[time].max() if len(h) else -1)]
        ax.scatter(
            a[time],
            a[outcome],
            facecolors="none",
            edgecolors="k",
            zorder=3,
            label="later visits",
        )
    from alsprog.models._contract import outcome_bounds

    lo, hi = outcome_bounds(outcome)
    if outcome.startswith("alsfrs") and np.isfinite(lo) and np.isfinite(hi):
        ax.set_ylim(lo, hi)  # a rating scale: its full range
    else:  # the data's range, within the dictionary's bounds (FVC: 0-250 %)
        y0, y1 = ax.get_ylim()
        ax.set_ylim(max(y0, lo), min(y1, hi))
    ax.set_xlabel("months since first visit" if time == "months" else time)
    ax.set_ylabel("ALSFRS-R total" if outcome == "alsfrs_r_total" else outcome)
    ax.set_title(str(subject))
    ax.legend(loc="lower left", fontsize="small")
    return ax


def calibration_curve(table: pd.DataFrame, *, ax: Any = None) -> Any:
    """Empirical coverage of the forecast intervals against their nominal level.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`alsprog.forecast.calibration` (``level``, ``coverage`` and
        optionally ``model``: one line each).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> t = pd.DataFrame({"level": [0.5, 0.9], "coverage": [0.48, 0.91]})
    >>> fig, ax = plt.subplots()
    >>> len(calibration_curve(t, ax=ax).get_lines())   # diagonal and the curve
    2
    """
    import matplotlib.pyplot as plt

    if not {"level", "coverage"} <= set(table.columns):
        raise ValueError(
            f"`table` needs 'level' and 'coverage'; got {list(table.columns)}."
        )
    ax = ax if ax is not None else plt.gca()
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="ideal")
    groups = table.groupby("model", sort=False) if "model" in table else [("", table)]
    for name, g in groups:
        g = g.sort_values("level")
        ax.plot(g["level"], g["coverage"], marker="o", label=str(name) or "forecast")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal interval level")
    ax.set_ylabel("observed coverage")
    ax.legend(loc="upper left", fontsize="small")
    return ax
