"""Figures of latent progression classes.

Owns: :func:`class_trajectories` (each class's mean curve with its band, the
observed mean of the patients assigned to it, and its size in the legend) and
:func:`observed_class_means` (those observed means, by time bin).
Leaves: the curves, sizes and observed means to their callers
(:meth:`alsprog.models.LatentClassMixedModel.class_trajectories`,
``class_sizes_``, :mod:`alsprog.report`); the class-number plot to
:meth:`alsprog.models.ClassSelection.plot`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from alsprog.errors import ModelSpecificationError

__all__ = ["class_trajectories", "observed_class_means"]


def class_trajectories(
    curves: pd.DataFrame,
    *,
    time: str = "months",
    outcome: str | None = None,
    labels: Mapping[Any, str] | None = None,
    observed: pd.DataFrame | None = None,
    ax: Any = None,
) -> Any:
    """Each latent class's mean curve and band, one colour per class.

    Parameters
    ----------
    curves : pandas.DataFrame
        Columns ``class``, ``time``, ``mean``, ``lower``, ``upper`` (the output of
        ``LatentClassMixedModel.class_trajectories``).
    time : str, default "months"
        The time column of ``curves`` (and of ``observed``).
    outcome : str, optional
        The y-axis label.
    labels : mapping, optional
        Legend text of each class (e.g. its size); default ``"class k"``.
    observed : pandas.DataFrame, optional
        Observed means to mark: columns ``class``, ``time``, ``mean`` (e.g. the
        mean outcome of the patients whose most probable class is ``k``, by time
        bin).
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: the current axes).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ModelSpecificationError
        If a column is missing or ``curves`` is empty.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> c = pd.DataFrame({"class": [1, 1, 2, 2], "months": [0.0, 12, 0, 12],
    ...                   "mean": [40.0, 36, 40, 16], "lower": [39.0, 35, 39, 14],
    ...                   "upper": [41.0, 37, 41, 18]})
    >>> fig, ax = plt.subplots()
    >>> ax = class_trajectories(
    ...     c, labels={1: "slow (n = 30)", 2: "fast (n = 10)"}, ax=ax)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['slow (n = 30)', 'fast (n = 10)']
    >>> plt.close("all")
    """
    import matplotlib.pyplot as plt

    _check_columns(curves, "curves", ("class", time, "mean", "lower", "upper"))
    if curves.empty:
        raise ModelSpecificationError("`curves` has no rows to draw.")
    if observed is not None:
        _check_columns(observed, "observed", ("class", time, "mean"))
    ax = ax if ax is not None else plt.gca()
    labels = dict(labels or {})
    for i, (k, d) in enumerate(curves.groupby("class", sort=True)):
        d = d.sort_values(time)
        colour = f"C{i % 10}"
        t = d[time].to_numpy(float)
        ax.fill_between(
            t,
            d["lower"].to_numpy(float),
            d["upper"].to_numpy(float),
            color=colour,
            alpha=0.2,
            linewidth=0,
        )
        ax.plot(
            t,
            d["mean"].to_numpy(float),
            color=colour,
            lw=2,
            label=labels.get(k, f"class {k}"),
        )
        if observed is not None:
            o = observed.loc[observed["class"] == k].sort_values(time)
            if len(o):
                ax.plot(
                    o[time].to_numpy(float),
                    o["mean"].to_numpy(float),
                    "o",
                    color=colour,
                    markersize=5,
                    markerfacecolor="white",
                )
    ax.set_xlabel(time)
    if outcome:
        ax.set_ylabel(outcome)
    ax.legend(frameon=False, fontsize="small")
    return ax


def _check_columns(df: Any, name: str, cols: tuple[str, ...]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ModelSpecificationError(
            f"`{name}` must be a DataFrame; got {type(df).__name__}."
        )
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ModelSpecificationError(
            f"`{name}` lacks column(s) {missing}; it has {list(df.columns)}."
        )


def observed_class_means(
    data: pd.DataFrame,
    classes: pd.Series,
    *,
    outcome: str,
    time: str = "months",
    group: str = "subject_id",
    width: float | None = None,
    min_count: int = 3,
) -> pd.DataFrame:
    """Mean outcome of the patients assigned to each class, by time bin.

    Visits are grouped by ``round(time / width)``: with scheduled visits every
    ``width`` months, each bin is one scheduled visit.  Each bin with at least
    ``min_count`` visits of a class gives one row: the mean time and the mean
    outcome of those visits.

    Parameters
    ----------
    data : pandas.DataFrame
        Long-format visits with ``group``, ``time`` and ``outcome``.
    classes : pandas.Series
        Each patient's class, indexed by the ``group`` values (e.g. ``classes_``);
        patients not in it are left out.
    outcome, time, group : str
    width : float, optional
        Bin width in units of ``time``; default the median gap between a patient's
        consecutive visits (one twentieth of the time range when no patient has two
        visits).
    min_count : int, default 3

    Returns
    -------
    pandas.DataFrame
        ``class``, ``time``, ``mean``, ``n`` (visits in the bin), by class and time.

    Examples
    --------
    >>> d = pd.DataFrame({"subject_id": ["a", "a", "b", "b", "c"],
    ...                   "months": [0.0, 3.2, 0.0, 2.9, 0.1],
    ...                   "y": [40.0, 38, 42, 30, 44]})
    >>> m = observed_class_means(d, pd.Series({"a": 1, "b": 2, "c": 2}),
    ...                          outcome="y", min_count=1)
    >>> m["class"].tolist(), m["months"].round(2).tolist(), m["mean"].tolist()
    ([1, 1, 2, 2], [0.0, 3.2, 0.05, 2.9], [40.0, 38.0, 43.0, 30.0])
    """
    d = data[[group, time, outcome]].dropna()
    key = classes.set_axis(classes.index.astype(str))
    d = d.assign(_class=d[group].astype(str).map(key)).dropna(subset=["_class"])
    cols = ["class", time, "mean", "n"]
    if d.empty:
        return pd.DataFrame(columns=cols)
    t = d[time].to_numpy(float)
    if width is None:
        gaps = d.sort_values([group, time]).groupby(group)[time].diff()
        gaps = gaps[gaps > 0]
        span = float(t.max() - t.min())
        width = float(gaps.median()) if len(gaps) else span / 20
    if not width > 0:
        width = 1.0
    d = d.assign(_bin=np.round(t / width))
    g = d.groupby(["_class", "_bin"], sort=True)
    out = g.agg(t=(time, "mean"), mean=(outcome, "mean"), n=(outcome, "size"))
    out = out.loc[out["n"] >= min_count].reset_index()
    return pd.DataFrame(
        {
            "class": out["_class"].astype(classes.dtype).to_numpy(),
            time: out["t"].to_numpy(float),
            "mean": out["mean"].to_numpy(float),
            "n": out["n"].to_numpy(int),
        },
        columns=cols,
    )
