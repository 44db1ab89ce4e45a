"""Figures of trajectories: observed ALSFRS-R, model curves per patient, imaging.

Owns: :func:`spaghetti` (every patient's observed outcome over time, coloured by onset
site), :func:`subject_trajectories` (one patient's visits with each fitted model's
curve and band) and :func:`feature_trajectories` (an imaging feature per subject over
time, coloured by group).
Leaves: every number drawn to the long table or to the models' public
``subject_trajectories`` method; imaging change rates to
:func:`alsprog.biomarkers.imaging_change_rates` (only shown in the legend).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from alsprog._validation import check_columns
from alsprog.errors import ModelSpecificationError

__all__ = ["feature_trajectories", "spaghetti", "subject_trajectories"]


def _axes(ax: Any) -> Any:
    import matplotlib.pyplot as plt

    return ax if ax is not None else plt.gca()


def _need(table: Any, columns: Sequence[str], what: str) -> None:
    check_columns(table, what, columns, not_frame=ModelSpecificationError)


def _broken(
    d: pd.DataFrame, subject: str, x: str, y: str
) -> tuple[np.ndarray, np.ndarray]:
    """All subjects' (x, y) in one array pair, a NaN between subjects: one line
    artist draws every subject's polyline (fast with hundreds of subjects)."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for _, g in d.groupby(subject, sort=False):
        xs += [g[x].to_numpy(float), np.array([np.nan])]
        ys += [g[y].to_numpy(float), np.array([np.nan])]
    if not xs:
        return np.array([]), np.array([])
    return np.concatenate(xs), np.concatenate(ys)


def spaghetti(
    table: pd.DataFrame,
    *,
    outcome: str = "alsfrs_r_total",
    time: str = "months",
    by: str | None = "onset_site",
    subject: str = "subject_id",
    alpha: float = 0.35,
    ax: Any = None,
) -> Any:
    """Each subject's observed outcome over time, one thin line per subject.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table (one row per subject x visit); rows missing the outcome or time
        are not drawn.
    outcome, time, subject : str
        Columns of the outcome, the time axis and the subject.
    by : str or None, default "onset_site"
        Colour lines by this subject-level column (its first value per subject;
        missing values drawn as ``"missing"``); ``None`` draws one colour.
    alpha : float, default 0.35
        Line opacity.
    ax : matplotlib.axes.Axes, optional
        Default: the current Axes.

    Returns
    -------
    matplotlib.axes.Axes
        One line artist per colour (subjects separated by NaN gaps); the legend
        names each colour with its subject count.

    Raises
    ------
    ModelSpecificationError
        If a column is missing.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> t = pd.DataFrame({"subject_id": ["P1", "P1", "P2", "P2"],
    ...                   "months": [0, 3, 0, 3], "alsfrs_r_total": [40, 37, 35, 34],
    ...                   "onset_site": ["bulbar", "bulbar", "spinal", "spinal"]})
    >>> ax = spaghetti(t)
    >>> len(ax.lines), [x.get_text() for x in ax.get_legend().get_texts()]
    (2, ['bulbar (n=1)', 'spinal (n=1)'])
    >>> ax.lines[0].get_xdata().tolist()  # one line per onset site, NaN-separated
    [0.0, 3.0, nan]
    >>> plt.close("all")
    """
    _need(table, [outcome, time, subject] + ([by] if by else []), "table")
    ax = _axes(ax)
    d = table.dropna(subset=[outcome, time]).sort_values([subject, time])
    if by is not None:
        first = d.groupby(subject, sort=False)[by].first()
        cats = first.astype(object).where(first.notna(), "missing").astype(str)
    else:
        cats = pd.Series("all", index=d[subject].unique())
    levels = sorted(cats.unique())
    colour = {c: f"C{i % 10}" for i, c in enumerate(levels)}
    cat_of_row = d[subject].map(cats)
    for c in levels:
        x, y = _broken(d.loc[cat_of_row == c], subject, time, outcome)
        ax.plot(x, y, color=colour[c], lw=0.7, alpha=alpha)
    from matplotlib.lines import Line2D

    counts = cats.value_counts()
    handles = [
        Line2D([], [], color=colour[c], lw=2, label=f"{c} (n={counts[c]})")
        for c in levels
    ]
    ax.legend(handles=handles, title=by, fontsize="small", frameon=False)
    ax.set_xlabel(time)
    ax.set_ylabel(outcome)
    return ax


def _columns(model: Any) -> Any:
    """A fitted model's :class:`~alsprog.data._history.ModelColumns`, or None (a
    stand-in without one; an unfitted model's NotFittedError is an AttributeError)."""
    return getattr(model, "columns_", None)


def _model_time(model: Any) -> str:
    cols = _columns(model)
    if cols is not None:
        return str(cols.time)
    t = getattr(model, "time", None)
    if t:
        return str(t)
    return (
        "months_since_onset" if getattr(model, "kind", None) == "sigmoid" else "months"
    )


#: Per model, in order: line style, width and marker, so that no curve hides
#: another (the first is the widest and lowest; later ones are dashed on top).
_STYLES = (
    {"ls": "-", "lw": 2.6, "marker": None},
    {"ls": "--", "lw": 1.9, "marker": "o"},
    {"ls": "-.", "lw": 1.9, "marker": "s"},
    {"ls": ":", "lw": 2.1, "marker": "^"},
    {"ls": (0, (6, 2, 1, 2)), "lw": 1.7, "marker": "D"},
)
#: What each ``interval`` draws, as the legend says it.
_BAND_LABELS = {
    "confidence": "{level:.0%} band of the mean curve (confidence / credible)",
    "prediction": "{level:.0%} prediction interval (a new visit)",
}


def _takes(method: Any, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def subject_trajectories(
    models: Any,
    data: pd.DataFrame,
    subject: Any,
    *,
    outcome: str | None = None,
    time: str | None = None,
    subject_col: str | None = None,
    times: Sequence[float] | None = None,
    level: float = 0.9,
    interval: Literal["confidence", "prediction"] = "confidence",
    legend: bool = True,
    ax: Any = None,
) -> Any:
    """One patient's visits with each fitted model's curve and band.

    Parameters
    ----------
    models : fitted model or mapping of str to fitted model
        Models with a ``subject_trajectories(times, subjects=..., level=...)`` method
        (:class:`~alsprog.models.LinearMixedModel`,
        :class:`~alsprog.models.BayesianTrajectoryModel`,
        :class:`~alsprog.models.JointModel`), fitted on data including
        ``subject``; the mapping's keys label the curves.
    data : pandas.DataFrame
        Long table holding the patient's visits (other subjects are ignored).
    subject : object
        The patient's id.
    outcome, time, subject_col : str, optional
        Columns of the outcome, the axis time and the subject.  By default the
        first model's own (its ``columns_``: outcome, visit-time and subject
        columns, e.g. ``frs``, ``visit_month``, ``patient``), else the data
        dictionary's ``alsfrs_r_total``, ``months``, ``subject_id``.
    times : sequence of float, optional
        Axis times of the curves (default: 50 points from 0 to the last visit).
    level : float, default 0.9
        Band coverage, passed to the models.
    interval : {"confidence", "prediction"}, default "confidence"
        The one band type drawn for every model: ``"confidence"`` the band of the
        patient's mean curve (the mixed and joint models' confidence band, the
        Bayesian models' credible band), ``"prediction"`` the interval of a new
        visit (the residual noise added).  The legend says which.
    legend : bool, default True
        Add a legend: one entry per model (colour, line style and marker), the
        visits and the band type.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        The visits as points, one line and band per model (the band's ``gid`` is
        ``interval``).  Each model has its own colour, line style and marker; the
        first model's line is the widest and lowest, so later ones never hide it.

    Raises
    ------
    ModelSpecificationError
        A missing column, a subject without rows, or ``interval="prediction"`` for
        a model whose ``subject_trajectories`` cannot give it.

    Notes
    -----
    A model on another time axis (the sigmoid model's ``months_since_onset``) is
    asked for its curve at the patient's own ``months_since_onset`` values and drawn
    at the matching ``months``, so every curve shares the axis.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from alsprog.models import LinearMixedModel
    >>> rng = np.random.default_rng(0)
    >>> sid = np.repeat([f"P{i}" for i in range(30)], 4)
    >>> t = np.tile([0.0, 3.0, 6.0, 9.0], 30)
    >>> df = pd.DataFrame({"subject_id": sid, "months": t,
    ...     "alsfrs_r_total": np.round(40 - 0.9 * t + rng.normal(0, 1.5, 120))})
    >>> m = LinearMixedModel("alsfrs_r_total ~ months + (months | subject_id)").fit(df)
    >>> ax = subject_trajectories({"mixed": m}, df, "P3")
    >>> len(ax.lines), len(ax.collections)  # curve; points and band
    (1, 2)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['mixed', 'visits', '90% band of the mean curve (confidence / credible)']
    >>> plt.close("all")
    """
    from alsprog._validation import check_choice

    check_choice(interval, "interval", tuple(_BAND_LABELS))
    if not isinstance(models, Mapping):
        models = {type(models).__name__: models}
    first = next((c for c in map(_columns, models.values()) if c is not None), None)
    if outcome is None:
        outcome = first.outcome if first is not None else "alsfrs_r_total"
    if time is None:
        time = first.visit_time if first is not None else "months"
    if subject_col is None:
        subject_col = first.subject if first is not None else "subject_id"
    _need(data, [outcome, time, subject_col], "data")
    ax = _axes(ax)
    rows = data.loc[data[subject_col].astype(str) == str(subject)].sort_values(time)
    if rows.empty:
        raise ModelSpecificationError(f"subject {subject!r} has no rows in `data`.")
    if times is None:
        hi = float(rows[time].max())
        grid = np.linspace(0.0, hi if hi > 0 else 1.0, 50)
    else:
        grid = np.asarray(times, dtype=float)
    from matplotlib.patches import Patch

    handles = []
    n = len(models)
    for i, (name, model) in enumerate(models.items()):
        mt = _model_time(model)
        offset = 0.0
        if mt != time:
            if mt not in rows.columns:
                raise ModelSpecificationError(
                    f"model {name!r} runs on {mt!r}, which `data` lacks."
                )
            # numbers written as text (a CSV's extra visit column) count as numbers
            both = rows[[time, mt]].apply(pd.to_numeric, errors="coerce").dropna()
            if both.empty:
                continue
            offset = float((both[mt] - both[time]).iloc[0])
        kwargs: dict[str, Any] = {"subjects": [subject], "level": level}
        if _takes(model.subject_trajectories, "interval"):
            kwargs["interval"] = interval
        elif interval != "confidence":
            raise ModelSpecificationError(
                f"model {name!r} gives no {interval} interval (its "
                "subject_trajectories takes no `interval`)."
            )
        at = grid + offset
        sched = getattr(model, "scheduled_times", lambda: None)()
        if sched is not None:  # a trial model: its scheduled visits in the range
            at = np.array([v for v in sched if at.min() <= v <= at.max()], float)
            if at.size == 0:
                continue
        tr = model.subject_trajectories(at, **kwargs)
        x = tr[mt].to_numpy(float) - offset
        colour = f"C{i % 10}"
        style = _STYLES[i % len(_STYLES)]
        step = max(1, len(x) // 6)  # about six markers, staggered between models
        (line,) = ax.plot(
            x,
            tr["mean"],
            color=colour,
            ls=style["ls"],
            lw=style["lw"],
            marker=style["marker"],
            ms=4.5,
            markevery=((i * step // n) % step, step),
            label=name,
            zorder=2.0 + i * 0.1,
        )
        band = ax.fill_between(
            x, tr["lower"], tr["upper"], color=colour, alpha=0.12, lw=0, zorder=1.0
        )
        band.set_gid(interval)
        handles.append(line)
    pts = ax.scatter(
        rows[time], rows[outcome], color="k", s=14, zorder=3, label="visits"
    )
    ax.set_title(str(subject), fontsize="medium")
    ax.set_xlabel(time)
    ax.set_ylabel(outcome)
    if legend:
        band_label = _BAND_LABELS[interval].format(level=level)
        proxy = Patch(facecolor="0.55", alpha=0.3, lw=0, label=band_label)
        ax.legend(handles=[*handles, pts, proxy], fontsize="x-small", frameon=False)
    return ax


def feature_trajectories(
    table: pd.DataFrame,
    feature: str,
    *,
    time: str = "months",
    group: str = "group",
    subject: str = "subject_id",
    rates: pd.DataFrame | None = None,
    alpha: float = 0.4,
    ax: Any = None,
) -> Any:
    """An imaging feature per subject over time, coloured by group.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table; rows without the feature (clinic-only visits) are not drawn.
    feature : str
        Feature column, e.g. ``"fa_cst_left"``.
    time, group, subject : str
        Time, group and subject columns.
    rates : pandas.DataFrame, optional
        From :func:`~alsprog.biomarkers.imaging_change_rates`; its row for
        ``feature`` adds each group's yearly change to the legend.
    alpha : float, default 0.4
        Line opacity.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        One line artist (with points) per group, subjects separated by NaN gaps.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> t = pd.DataFrame({"subject_id": ["P1", "P1", "C1", "C1"],
    ...     "group": ["als", "als", "control", "control"], "months": [0, 6, 0, 6],
    ...     "fa_cst_left": [0.52, 0.51, 0.55, 0.55]})
    >>> len(feature_trajectories(t, "fa_cst_left").lines)
    2
    >>> plt.close("all")
    """
    _need(table, [feature, time, group, subject], "table")
    ax = _axes(ax)
    d = table.dropna(subset=[feature, time]).sort_values([subject, time])
    groups = sorted(d[group].dropna().astype(str).unique())
    colour = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    row = None
    if rates is not None and "feature" in rates.columns:
        hit = rates.loc[rates["feature"] == feature]
        row = hit.iloc[0] if len(hit) else None
    from matplotlib.lines import Line2D

    handles = []
    for g in groups:
        sub = d.loc[d[group].astype(str) == g]
        x, y = _broken(sub, subject, time, feature)
        ax.plot(x, y, color=colour[g], lw=0.6, alpha=alpha, marker=".", ms=2)
        label = f"{g} (n={sub[subject].nunique()}"
        col = f"{g}_slope"
        if row is not None and col in row.index and pd.notna(row[col]):
            label += f"; {row[col]:+.3g}/yr"
        handles.append(Line2D([], [], color=colour[g], lw=2, label=label + ")"))
    ax.legend(handles=handles, fontsize="x-small", frameon=False)
    ax.set_title(feature, fontsize="medium")
    ax.set_xlabel(time)
    return ax
