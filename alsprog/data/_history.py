"""A new patient's history and the times to forecast, checked and laid out.

Owns: :class:`ModelColumns` (the columns a fitted model reads, which forecasts,
plots and backtests take from the model instead of assuming the data dictionary's
``subject_id``/``months``/``alsfrs_r_total``), and turning ``history`` (long-format
rows of new patients' visits so far) and ``at_months`` into one row per (subject,
forecast time) with the subject's covariates carried forward, plus every check on
them (validation against the data dictionary, covariates present, forecast times not
before the last visit seen).
Leaves: the model arithmetic to :mod:`alsprog.forecast` (and the simulator's oracle
forecast in :mod:`alsprog.simulate`, which shares this layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import DataValidationError, Problem

__all__ = [
    "ModelColumns",
    "Prepared",
    "prepare_history",
    "shift_time_columns",
    "validate_model_columns",
    "varying_within_subject",
    "with_draws",
]

# columns that advance with the visit time (months) when a row is carried forward;
# value = how many of the column's units pass per month
_TIME_VARYING = {"months_since_onset": 1.0, "age": 1.0 / 12.0}
_SOURCE = "history"
#: The data dictionary's onset-relative time; a model on it is forecast on ``months``.
_ONSET_TIME, _VISIT_TIME = "months_since_onset", "months"


@dataclass(frozen=True)
class ModelColumns:
    """The columns a fitted trajectory model reads, named once.

    Every trajectory model exposes one as its read-only ``columns_`` attribute (the
    forecast baselines carry the same names as parameters); :func:`alsprog.forecast.forecast`,
    :func:`alsprog.forecast.backtest`, :func:`alsprog.forecast.evaluate` and the
    figures read them, so a model fitted on ``patient``/``visit_month``/``frs`` is
    forecast, scored and drawn on those columns.

    Attributes
    ----------
    outcome : str
        Outcome column (the formula's left-hand side).
    subject : str
        Grouping column.
    time : str
        The model's time column (its curve is a function of it).
    covariates : tuple of str
        Every column each forecast row needs besides ``subject`` and ``outcome``
        (the time column included).
    visit_time : str
        Column of the visit times that forecasts are asked at (``at_months``) and
        figures are drawn on: ``time`` itself, except for a model on the data
        dictionary's ``months_since_onset``, whose visits are placed on ``months``
        (months since the first visit; ``months_since_onset`` advances with it).
    context : tuple of str
        Other outcome columns the model conditions a forecast on (a multivariate
        model's other outcomes): a history row with any of them, or with
        ``outcome``, is a visit seen so far.  Optional in a table; empty for
        single-outcome models.

    Examples
    --------
    >>> c = ModelColumns.of("frs", "patient", "visit_month",
    ...                     ["frs", "visit_month", "onset", "patient"])
    >>> c.covariates, c.visit_time
    (('visit_month', 'onset'), 'visit_month')
    >>> ModelColumns.of("alsfrs_r_total", "subject_id", "months_since_onset",
    ...                 ["alsfrs_r_total", "months_since_onset"]).visit_time
    'months'
    """

    outcome: str
    subject: str
    time: str
    covariates: tuple[str, ...]
    visit_time: str
    context: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        outcome: str,
        subject: str,
        time: str,
        variables: Sequence[str],
        *,
        context: Sequence[str] = (),
    ) -> ModelColumns:
        """From a model's outcome, grouping and time columns and its variables
        (and the other outcomes it conditions on, ``context``)."""
        keep = [str(v) for v in variables if v not in (outcome, subject)]
        if time not in keep:
            keep.append(time)
        visit = _VISIT_TIME if time == _ONSET_TIME else time
        others = tuple(str(c) for c in context if c != outcome)
        return cls(str(outcome), str(subject), str(time), tuple(keep), visit, others)


@dataclass(frozen=True)
class Prepared:
    """History rows used and the future rows to forecast.

    Attributes
    ----------
    observed : pandas.DataFrame
        History rows with an outcome, sorted by subject and time (a copy).
    future : pandas.DataFrame
        One row per subject and forecast time: the subject's last history row with the
        time columns advanced and the outcome missing; column ``_subject_index``
        indexes :attr:`subjects`.
    subjects : pandas.Index
        Subjects, in order of first appearance in ``history``.
    last_time : numpy.ndarray
        Per subject, the time of the last observed outcome (``nan`` when none).
    first : pandas.DataFrame
        Each subject's first history row, in the order of :attr:`subjects`.
    """

    observed: pd.DataFrame
    future: pd.DataFrame
    subjects: pd.Index
    last_time: npt.NDArray[np.float64]
    first: pd.DataFrame


def with_draws(table: pd.DataFrame, draws: npt.ArrayLike) -> pd.DataFrame:
    """``table`` with predictive draws (samples, rows) as columns ``draw_0``, ...

    Examples
    --------
    >>> with_draws(pd.DataFrame({"mean": [1.0]}), [[0.5], [1.5]]).columns.tolist()
    ['mean', 'draw_0', 'draw_1']
    """
    d = np.asarray(draws, dtype=float)
    cols = pd.DataFrame(d.T, columns=[f"draw_{i}" for i in range(d.shape[0])])
    return pd.concat([table.reset_index(drop=True), cols], axis=1)


def shift_time_columns(
    rows: pd.DataFrame,
    new_time: npt.ArrayLike,
    *,
    time: str = "months",
    advance: Sequence[str] = (),
) -> pd.DataFrame:
    """Copy of ``rows`` moved to ``new_time``, advancing the time-varying columns.

    The columns in ``advance`` (a model's own time column when forecasts are laid
    out on another axis) advance one for one with ``time``.  The data dictionary's
    ``months_since_onset`` advances month for month and ``age`` by a twelfth of a
    year per month: these two take the time axis to be in months.  Every other
    column is carried unchanged.

    Examples
    --------
    >>> rows = pd.DataFrame({"months": [3.0], "months_since_onset": [20.0],
    ...                      "age": [60.0]})
    >>> shift_time_columns(rows, [9.0]).round(2).to_dict("records")
    [{'months': 9.0, 'months_since_onset': 26.0, 'age': 60.5}]
    >>> rows = pd.DataFrame({"visit_month": [3.0], "mso": [20.0]})
    >>> shift_time_columns(rows, [9.0], time="visit_month", advance=["mso"]
    ...                    ).to_dict("records")
    [{'visit_month': 9.0, 'mso': 26.0}]
    """
    out = rows.copy()
    new = np.asarray(new_time, dtype=float)
    delta = new - out[time].to_numpy(dtype=float)
    out[time] = new
    rates = dict(_TIME_VARYING)
    rates.update({c: 1.0 for c in advance})
    for col, per_month in rates.items():
        if col in out.columns and col != time:
            out[col] = out[col].to_numpy(dtype=float) + per_month * delta
    return out


def validate_model_columns(
    df: pd.DataFrame, columns: Sequence[str], *, source: str | None = None
) -> pd.DataFrame:
    """:func:`alsprog.data.validate` on the columns a model uses, and the row keys.

    Every model's ``fit`` and every forecast run this same check on their table, so a
    table one of them accepts is accepted by the other.  Columns the model does not
    use are left to :func:`alsprog.data.assemble`.

    Returns
    -------
    pandas.DataFrame
        ``df`` itself when the dictionary reads every checked value as it is given;
        else a copy where the columns whose values it reads differently (a synonym
        such as ``'limb'`` mapped to ``'spinal'``, text read as dates) are replaced
        by their reading.  Type changes alone (integers as floats) are not applied,
        so a model's numbers do not depend on them.

    Raises
    ------
    DataValidationError
        Listing every problem of those columns.

    Examples
    --------
    >>> df = pd.DataFrame({"subject_id": ["P1", "P1"], "months": [0.0, 3.0],
    ...                    "alsfrs_r_total": [40, 52], "note": ["", ""]})
    >>> validate_model_columns(df, ["alsfrs_r_total"])
    Traceback (most recent call last):
    ...
    alsprog.errors.DataValidationError: long-format table: 1 problem
      row 1, subject P1, column alsfrs_r_total: 52 is outside 0-48 (the ALSFRS-R total is 0-48)
    """
    from alsprog.data import validate

    checked = validate(df, source=source, columns=columns)
    changed = [c for c in checked.columns if not _same_values(df[c], checked[c])]
    if not changed:
        return df
    out = df.copy()
    for c in changed:
        out[c] = checked[c]
    return out


def _same_values(raw: pd.Series, parsed: pd.Series) -> bool:
    """Whether the dictionary's parsing kept every value (a type change, such as
    integers read as floats, does not count; a synonym mapped or text read as a date
    does)."""
    if pd.api.types.is_numeric_dtype(raw) and pd.api.types.is_numeric_dtype(parsed):
        return True
    a, b = raw.astype(object), parsed.astype(object)
    na_a, na_b = a.isna().to_numpy(), b.isna().to_numpy()
    same = (a == b).fillna(False).to_numpy(dtype=bool) | (
        # numbers read as text (integer subject ids as strings) keep their values
        (a.astype(str) == b.astype(str)).to_numpy(dtype=bool)
    )
    return bool(np.all(np.where(na_a | na_b, na_a & na_b, same)))


def _validate(history: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    try:
        return validate_model_columns(history, columns, source=_SOURCE)
    except DataValidationError as exc:
        raise DataValidationError(
            exc.problem_list, source=f"{_SOURCE} (forecast input)"
        ) from None


def _times_table(
    at_months: Any, subjects: pd.Index, subject: str, time: str
) -> pd.DataFrame:
    """``(subject, time)`` pairs to forecast: a grid for everyone or per-subject rows."""
    if isinstance(at_months, pd.DataFrame):
        missing = [c for c in (subject, time) if c not in at_months.columns]
        if missing:
            raise DataValidationError(
                [
                    Problem(
                        f"`at_months` lacks column {c!r} (a table of per-subject "
                        f"forecast times needs {subject!r} and {time!r})",
                        rule="required",
                        column=c,
                    )
                    for c in missing
                ],
                source="at_months",
            )
        table = at_months[[subject, time]].copy()
        table[subject] = table[subject].astype(str)
        unknown = sorted(set(table[subject]) - set(subjects))
        if unknown:
            raise DataValidationError(
                [
                    Problem(
                        "has forecast times but no rows in `history` (give at least "
                        "one row with its covariates)",
                        rule="unknown_subject",
                        subject_id=s,
                    )
                    for s in unknown
                ],
                source="at_months",
            )
    else:
        grid = np.atleast_1d(np.asarray(at_months, dtype=object))
        if grid.ndim != 1 or grid.size == 0:
            raise ValueError(
                f"`at_months` must be one or more months; got {at_months!r}."
            )
        table = pd.DataFrame(
            {
                subject: np.repeat(np.asarray(subjects, dtype=object), grid.size),
                time: np.tile(grid, len(subjects)),
            }
        )
    values = pd.to_numeric(table[time], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        raw = table[time].to_numpy()[bad]
        what = (
            "months >= 0 since the first visit"
            if time == "months"
            else (f"values >= 0 of the time column {time!r}")
        )
        raise ValueError(
            f"`at_months` must be finite {what}; got "
            f"{', '.join(repr(v) for v in pd.unique(raw)[:5])}."
        )
    table[time] = values
    return table.reset_index(drop=True)


def prepare_history(
    history: pd.DataFrame,
    at_months: Any,
    *,
    outcome: str,
    covariates: Sequence[str],
    subject: str = "subject_id",
    time: str = "months",
    advance: Sequence[str] = (),
    validate: bool = True,
    allow_past: bool = False,
    context: Sequence[str] = (),
) -> Prepared:
    """Check ``history`` and ``at_months`` and lay out the rows to forecast.

    Parameters
    ----------
    history : pandas.DataFrame
        Long-format rows of the patients to forecast (one per visit; the outcome may
        be missing on rows that only carry a patient's covariates).
    at_months : float, sequence of float or pandas.DataFrame
        Forecast times (values of ``time``, months since the first visit for the
        data dictionary's ``months``) for every subject, or a table with columns
        ``subject`` and ``time`` giving each subject's own times.
    outcome : str
        Outcome column.
    covariates : sequence of str
        Columns the model needs on every row (time columns included).
    subject, time : str
        Grouping column and the time axis of ``at_months``.
    advance : sequence of str, optional
        Columns that advance one for one with ``time`` on the forecast rows (a
        model's own time column when it differs from ``time``); see
        :func:`shift_time_columns`.
    validate : bool, default True
        Check ``history`` against the data dictionary first.
    allow_past : bool, default False
        Accept times before a subject's last visit (a fitted subject's trajectory
        over their own follow-up, not a forecast).
    context : sequence of str, optional
        Other outcome columns the model conditions on (:attr:`ModelColumns.context`):
        a row with any of them present counts as a visit seen so far (it is kept in
        ``observed`` and sets the subject's last visit).  Columns the table lacks
        are ignored; present ones are checked against the data dictionary.

    Returns
    -------
    Prepared

    Raises
    ------
    DataValidationError
        If ``history`` breaks a dictionary rule, a subject lacks a covariate the model
        needs, or a forecast time lies before the subject's last visit with an outcome;
        every problem is listed.
    """
    if not isinstance(history, pd.DataFrame):
        raise TypeError(
            f"`history` must be a pandas DataFrame; got {type(history).__name__}."
        )
    needed = list(dict.fromkeys([subject, time, outcome, *covariates]))
    absent = [c for c in needed if c not in history.columns]
    if absent:
        role = {
            outcome: "its outcome",
            subject: "its subject column",
            time: "the time axis of the forecast times",
        }
        found = ", ".join(map(repr, map(str, history.columns[:12])))
        more = ", ..." if len(history.columns) > 12 else ""
        raise DataValidationError(
            [
                Problem(
                    f"is needed by the model ({role.get(c, 'a covariate')}) but "
                    f"absent from the history table (it has {found}{more})",
                    rule="required",
                    column=c,
                )
                for c in absent
            ],
            source=_SOURCE,
        )
    extra = [
        c for c in dict.fromkeys(context) if c in history.columns and c not in needed
    ]
    df = _validate(history, needed + extra) if validate else history.copy()
    if len(df) == 0:
        raise DataValidationError(
            [Problem("the history table has no rows", rule="empty")], source=_SOURCE
        )
    df[subject] = df[subject].astype(str)
    df = df.reset_index(drop=True)
    df["_line"] = np.arange(1, len(df) + 1)
    subjects = pd.Index(pd.unique(df[subject]), name=subject)
    df = df.sort_values([subject, time], kind="stable")

    problems: list[Problem] = []
    for col in [c for c in needed if c not in (subject, outcome)]:
        lacking = df[df[col].isna()]
        for sid, g in lacking.groupby(subject, sort=False):
            problems.append(
                Problem(
                    f"has no value (the model needs {col!r} on every history row; a "
                    "patient with no visits yet still needs one row with its baseline "
                    "covariates)",
                    rule="required",
                    source=_SOURCE,
                    line=int(g["_line"].iloc[0]),
                    subject_id=str(sid),
                    column=col,
                    value=None,
                    line_kind="row",
                )
            )
    has_y = df[[outcome, *extra]].notna().any(axis=1).to_numpy()
    observed = df[has_y]
    last = observed.groupby(subject, sort=False)[time].max()
    last_time = last.reindex(subjects).to_numpy(dtype=float)

    times = _times_table(at_months, subjects, subject, time)
    code = subjects.get_indexer(pd.Index(times[subject]))
    early = times[time].to_numpy() < last_time[code] - 1e-9
    if allow_past:
        early[:] = False
    for row in times[early].itertuples(index=False):
        sid, t = str(getattr(row, subject)), float(getattr(row, time))
        unit = "months" if time == "months" else f"on {time!r}"
        problems.append(
            Problem(
                f"forecast time {t:g} {unit} is before this subject's last visit in "
                f"the history ({last_time[subjects.get_loc(sid)]:g} {unit}); forecast "
                "from the visits seen so far forward only",
                rule="horizon",
                source="at_months",
                subject_id=sid,
                column=time,
                value=t,
            )
        )
    if problems:
        raise DataValidationError(problems, source=f"{_SOURCE} (forecast input)")

    base = df.groupby(subject, sort=False).tail(1).set_index(subject)
    rows = base.reindex(np.asarray(times[subject])).reset_index()
    future = shift_time_columns(
        rows, times[time].to_numpy(), time=time, advance=advance
    )
    future[outcome] = np.nan
    future["_subject_index"] = code
    first = df.groupby(subject, sort=False).head(1).set_index(subject)
    first = first.reindex(np.asarray(subjects)).reset_index()
    return Prepared(
        observed=observed.drop(columns="_line").reset_index(drop=True),
        future=future.drop(columns="_line").reset_index(drop=True),
        subjects=subjects,
        last_time=last_time,
        first=first.drop(columns="_line"),
    )


def varying_within_subject(
    rows: pd.DataFrame, key: Any, columns: Sequence[str], *, limit: int = 20
) -> list[Problem]:
    """A problem for each subject (``key``: a column name or a Series of labels)
    whose rows give a column of ``columns`` more than one value (a missing value
    counts as one): event times and indicators, and other columns a model reads
    once per subject.

    Examples
    --------
    >>> rows = pd.DataFrame({"subject_id": ["a", "a", "b"], "t": [1.0, 2.0, 3.0]})
    >>> [p.subject_id for p in varying_within_subject(rows, "subject_id", ["t"])]
    ['a']
    """
    problems = []
    for col in columns:
        n_distinct = rows.groupby(key, sort=False)[col].nunique(dropna=False)
        problems += [
            Problem(
                f"{col!r} differs between the subject's visits; one value per "
                "subject is expected (it varies)",
                rule="subject_level",
                subject_id=str(sid),
                column=col,
            )
            for sid in n_distinct.index[n_distinct.to_numpy() > 1][:limit]
        ]
    return problems
