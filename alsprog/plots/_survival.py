"""Figures of survival: risk groups' curves and one patient's predicted survival.

Owns: :func:`risk_group_curves` (the Kaplan-Meier curve of each risk group, solid,
beside the mean predicted curve of its members, dashed, one colour per group) and
:func:`survival_curve` (a patient's predicted survival with its band and median).
Leaves: the numbers to :func:`alsprog.models.risk_groups` and
:meth:`alsprog.models.SurvivalModel.predict_survival`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alsprog.errors import ModelSpecificationError

__all__ = ["risk_group_curves", "survival_curve"]


def risk_group_curves(
    groups: Any,
    *,
    time_label: str = "months since the first visit",
    labels: dict[int, str] | None = None,
    ax: Any = None,
) -> Any:
    """Observed (Kaplan-Meier, solid steps) and predicted (dashed) survival of each
    risk group.

    Parameters
    ----------
    groups : RiskGroups
        From :func:`alsprog.models.risk_groups`.
    time_label : str
        The x-axis label.
    labels : dict, optional
        Legend text of each group; default ``"group k (n = ...)"``.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from alsprog.models import SurvivalModel, risk_groups
    >>> d = pd.DataFrame({"t": [2.0, 3, 5, 7, 8, 9, 11, 12], "d": [1, 1, 1, 0, 1, 1, 0, 1],
    ...                   "x": [3.0, 2.5, 2, 1.8, 1, 0.5, 0.2, 0]})
    >>> g = risk_groups(SurvivalModel("Surv(t, d) ~ x", df=1).fit(d), d, n_groups=2)
    >>> ax = risk_group_curves(g, ax=plt.figure().gca())
    >>> len(ax.get_legend().get_texts())
    2
    >>> plt.close("all")
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    table = groups.table
    if table.empty:
        raise ModelSpecificationError("`groups` has no risk groups to draw.")
    cmap = plt.get_cmap("viridis_r")
    k = len(table)
    for i, g in enumerate(table.index):
        colour = cmap(0.1 + 0.8 * i / max(k - 1, 1))
        text = (labels or {}).get(int(g), f"group {g} (n = {int(table.loc[g, 'n'])})")
        km = groups.km[groups.km["group"] == g]
        if len(km):
            ax.step(km["time"], km["survival"], where="post", color=colour, label=text)
            ax.fill_between(
                km["time"],
                km["lower"].fillna(0.0),
                km["upper"].fillna(1.0),
                step="post",
                color=colour,
                alpha=0.12,
                linewidth=0,
            )
        pr = groups.predicted[groups.predicted["group"] == g]
        ax.plot(
            pr["time"],
            pr["survival"],
            linestyle="--",
            color=colour,
            label=None if len(km) else text,
        )
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(time_label)
    ax.set_ylabel("event-free probability")
    ax.legend(fontsize="small", title="solid: observed, dashed: predicted")
    return ax


def survival_curve(
    predictions: pd.DataFrame,
    *,
    time: str = "months",
    label: str | None = None,
    ax: Any = None,
) -> Any:
    """One patient's predicted survival curve with its band and median.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``time``, ``survival`` and optionally ``lower``/``upper`` of one patient
        (e.g. ``SurvivalModel.predict_survival`` for one subject on a grid).
    time : str, default "months"
        The time column.
    label : str, optional
        Legend text.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> p = pd.DataFrame({"months": [0.0, 12, 24, 36], "survival": [1.0, 0.8, 0.45, 0.2]})
    >>> ax = survival_curve(p, label="P0001", ax=plt.figure().gca())
    >>> ax.get_ylabel()
    'event-free probability'
    >>> plt.close("all")
    """
    import matplotlib.pyplot as plt

    for c in (time, "survival"):
        if c not in predictions.columns:
            raise ModelSpecificationError(
                f"`predictions` lacks the column {c!r}; it has "
                f"{list(predictions.columns)}."
            )
    ax = ax if ax is not None else plt.gca()
    p = predictions.sort_values(time)
    t, s = p[time].to_numpy(float), p["survival"].to_numpy(float)
    (line,) = ax.plot(t, s, label=label)
    if {"lower", "upper"} <= set(p.columns):
        ax.fill_between(t, p["lower"], p["upper"], color=line.get_color(), alpha=0.2)
    below = np.flatnonzero(s <= 0.5)
    if below.size and below[0] > 0:
        j = below[0]
        tm = np.interp(0.5, [s[j], s[j - 1]], [t[j], t[j - 1]])
        ax.plot([tm, tm], [0, 0.5], linestyle=":", color=line.get_color())
        ax.annotate(
            f"median {tm:.0f}",
            (tm, 0.5),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize="small",
        )
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(time)
    ax.set_ylabel("event-free probability")
    if label is not None:
        ax.legend(fontsize="small")
    return ax
