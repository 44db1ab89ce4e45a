"""Per-patient endpoints of a trial table: survival to a horizon and the change in function.

Owns: :func:`horizon_endpoints` (one row per subject from a long visit table: event
time, event flag, the outcome at baseline and at the horizon, and their change), and
the table checks the pairwise endpoints share (columns present, numbers, event flags,
two arms), which collect every problem and raise one
:class:`~alsprog.errors.DataValidationError` naming subject, column and value.
Leaves: the pair rule to :mod:`alsprog.design._pairwise`; the CAFS test and the win
statistics to :mod:`alsprog.design._cafs` and :mod:`alsprog.design._win_ratio`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from alsprog._validation import check_choice, check_interval
from alsprog.errors import DataValidationError, ModelSpecificationError, Problem

__all__ = ["horizon_endpoints"]

_SOURCE = "table"
_NUMBER = "a number"


def _require(table: Any, columns: Sequence[str], roles: dict[str, str]) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"`table` must be a pandas DataFrame; got {type(table).__name__}."
        )
    for col in columns:
        if not isinstance(col, str):
            raise ModelSpecificationError(f"column names must be strings; got {col!r}.")
    absent = [c for c in dict.fromkeys(columns) if c not in table.columns]
    if absent:
        found = ", ".join(map(repr, map(str, table.columns[:12])))
        more = ", ..." if len(table.columns) > 12 else ""
        raise DataValidationError(
            [
                Problem(
                    f"is needed ({roles.get(c, 'a column')}) but absent from the table "
                    f"(it has {found}{more})",
                    rule="required",
                    column=c,
                )
                for c in absent
            ],
            source=_SOURCE,
        )
    if len(table) == 0:
        raise DataValidationError(
            [Problem("the table has no rows", rule="empty")], source=_SOURCE
        )


def _py(value: Any) -> Any:
    """A numpy scalar as the Python value (so messages show ``-1.0``)."""
    return value.item() if isinstance(value, np.generic) else value


def _numbers(
    df: pd.DataFrame,
    col: str,
    subject: str,
    problems: list[Problem],
    *,
    low: float | None = None,
    missing_ok: bool = True,
    what: str = _NUMBER,
) -> np.ndarray:
    """The column as floats; a problem per non-numeric, missing (unless allowed) or
    too-small value, naming the row and subject."""
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw):
        values = pd.Series(np.nan, index=raw.index)
        bad_type = raw.notna().to_numpy()
    else:
        values = pd.to_numeric(raw, errors="coerce").astype(float)
        bad_type = (raw.notna() & values.isna()).to_numpy()
    v = values.to_numpy(dtype=float)
    missing = raw.isna().to_numpy()
    bad_low = np.zeros(len(v), dtype=bool)
    if low is not None:
        with np.errstate(invalid="ignore"):
            bad_low = np.isfinite(v) & (v < low)
    inf = np.isinf(v)
    for pos in np.flatnonzero(bad_type | bad_low | inf | (missing & ~missing_ok)):
        value = _py(raw.iloc[pos])
        if bad_type[pos]:
            msg, rule = f"{value!r} is not {what}", "type"
        elif missing[pos]:
            msg, rule, value = f"has no value (expected {what})", "required", None
        elif inf[pos]:
            msg, rule = f"{value!r} is not finite (expected {what})", "finite"
        else:
            msg, rule = f"{value!r} is below {low:g} (expected {what})", "minimum"
        problems.append(
            Problem(
                msg,
                rule=rule,
                source=_SOURCE,
                line=int(pos) + 1,
                subject_id=str(df[subject].iloc[pos]),
                column=col,
                value=value,
                line_kind="row",
            )
        )
    return np.where(bad_type | inf, np.nan, v)


def _flags(
    df: pd.DataFrame, col: str, subject: str, problems: list[Problem]
) -> np.ndarray:
    """True/False/1/0 as floats 1.0/0.0 (NaN when missing); a problem otherwise."""
    raw = df[col]
    out = np.full(len(raw), np.nan)
    for pos, value in enumerate(raw.to_numpy(dtype=object)):
        if (
            value is None
            or value is pd.NA
            or (isinstance(value, float) and np.isnan(value))
        ):
            continue
        if isinstance(value, bool | np.bool_) or (
            isinstance(value, int | float | np.integer | np.floating)
            and value in (0, 1)
        ):
            out[pos] = float(bool(value))
            continue
        problems.append(
            Problem(
                f"{value!r} is not an event flag (expected True/False or 1/0)",
                rule="type",
                source=_SOURCE,
                line=pos + 1,
                subject_id=str(df[subject].iloc[pos]),
                column=col,
                value=value,
                line_kind="row",
            )
        )
    return out


def _one_per_subject(
    df: pd.DataFrame,
    values: np.ndarray,
    col: str,
    subject: str,
    codes: np.ndarray,
    n_subjects: int,
    problems: list[Problem],
    *,
    required: bool = True,
) -> np.ndarray:
    """The single value a subject repeats on its rows (missing rows ignored)."""
    out = np.full(n_subjects, np.nan)
    ok = ~np.isnan(values)
    first = pd.Series(values[ok]).groupby(codes[ok]).agg(["min", "max"])
    out[first.index.to_numpy()] = first["min"].to_numpy()
    differ = first.index.to_numpy()[(first["max"] - first["min"]).to_numpy() != 0]
    for k in differ:
        rows = np.flatnonzero((codes == k) & ok)
        first_v = _py(values[rows[0]])
        other = rows[values[rows] != values[rows[0]]][0]
        problems.append(
            Problem(
                f"differs between the subject's rows ({first_v!r} on row "
                f"{rows[0] + 1}, {_py(values[other])!r} on row {other + 1}); it must "
                "be one value per subject",
                rule="constant",
                source=_SOURCE,
                line=int(rows[0]) + 1,
                subject_id=str(df[subject].iloc[rows[0]]),
                column=col,
                value=first_v,
                line_kind="row",
            )
        )
    if required:
        for k in np.flatnonzero(np.isnan(out)):
            rows = np.flatnonzero(codes == k)
            if not np.any(ok[rows]) and not any(
                p.subject_id == str(df[subject].iloc[rows[0]]) and p.column == col
                for p in problems
            ):
                problems.append(
                    Problem(
                        "has no value on any of the subject's rows",
                        rule="required",
                        source=_SOURCE,
                        line=int(rows[0]) + 1,
                        subject_id=str(df[subject].iloc[rows[0]]),
                        column=col,
                        value=None,
                        line_kind="row",
                    )
                )
    return out


def _subjects(df: pd.DataFrame, subject: str) -> tuple[pd.Index, np.ndarray]:
    codes, uniques = pd.factorize(df[subject].astype(str), sort=False)
    return pd.Index(uniques, name=subject), codes


def _arm_levels(
    df: pd.DataFrame,
    arm: str,
    treatment: Any,
    subject: str,
    codes: np.ndarray,
    n_subjects: int,
    problems: list[Problem],
) -> tuple[np.ndarray, Any, Any]:
    """Per subject: True for the treatment level; the treatment and control labels."""
    raw = df[arm]
    lab = raw.to_numpy(dtype=object)
    missing = raw.isna().to_numpy()
    for pos in np.flatnonzero(missing):
        problems.append(
            Problem(
                "has no arm",
                rule="required",
                source=_SOURCE,
                line=int(pos) + 1,
                subject_id=str(df[subject].iloc[pos]),
                column=arm,
                value=None,
                line_kind="row",
            )
        )
    levels = list(pd.unique(raw[~missing]))
    if len(levels) != 2:
        raise DataValidationError(
            problems
            + [
                Problem(
                    f"has {len(levels)} level(s) {levels!r}; a two-arm comparison "
                    "needs exactly two (treatment and control)",
                    rule="levels",
                    source=_SOURCE,
                    column=arm,
                    value=levels,
                )
            ],
            source=_SOURCE,
        )
    if treatment is None:
        as_set = {bool(x) if isinstance(x, bool | np.bool_) else x for x in levels}
        if as_set == {False, True} or as_set == {0, 1}:
            treatment = next(x for x in levels if bool(x))
        else:
            raise ModelSpecificationError(
                f"`treatment` must name the treated level of column {arm!r} (one of "
                f"{levels!r}); it can be left out only when the levels are "
                "True/False or 1/0."
            )
    if treatment not in levels:
        raise ModelSpecificationError(
            f"`treatment` must be one of the levels of column {arm!r} {levels!r}; got "
            f"{treatment!r}."
        )
    control = _py(next(x for x in levels if x != treatment))
    treatment = _py(treatment)
    is_t = np.where(missing, np.nan, (lab == treatment).astype(float))
    per = _one_per_subject(
        df, is_t, arm, subject, codes, n_subjects, problems, required=False
    )
    return per == 1, treatment, control


def duplicate_subjects(df: pd.DataFrame, subject: str, message: str) -> list[Problem]:
    """A problem for each row whose subject appeared on an earlier row."""
    sid = df[subject].astype(str)
    return [
        Problem(
            message,
            rule="duplicate",
            source=_SOURCE,
            line=int(pos) + 1,
            subject_id=sid.iloc[pos],
            column=subject,
            value=sid.iloc[pos],
            line_kind="row",
        )
        for pos in np.flatnonzero(sid.duplicated().to_numpy())
    ]


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise DataValidationError(problems, source=_SOURCE)


def horizon_endpoints(
    table: pd.DataFrame,
    *,
    horizon_months: float,
    outcome: str = "alsfrs_r_total",
    event_time: str = "death_or_tracheostomy_months",
    event: str = "event_observed",
    subject: str = "subject_id",
    months: str = "months",
    window_months: float = 1.0,
    missing: Literal["tie", "last"] = "tie",
) -> pd.DataFrame:
    """One row per patient: survival to the horizon and the change in function.

    Parameters
    ----------
    table : pandas.DataFrame
        Long visit table, one row per subject x visit: ``months`` since baseline
        (>= 0), the ``outcome`` at the visit (missing allowed), and per subject the
        ``event_time`` (months from baseline to death/tracheostomy or last contact,
        >= 0) and the ``event`` flag (True/1: the event was observed), repeated on the
        subject's rows (rows where they are missing are ignored; values that differ
        are an error).
    horizon_months : float
        Months (> 0) at which survival is truncated and function compared.
    outcome, event_time, event, subject, months : str
        Column names.
    window_months : float, default 1.0
        The outcome at the horizon is the one of the observed visit closest to
        ``horizon_months`` within ``± window_months`` (the later on a tie).
    missing : {"tie", "last"}, default "tie"
        With no such visit: ``"tie"`` leaves the change missing (the patient still
        beats every death, and ties on function), ``"last"`` carries the last
        observed outcome up to ``horizon_months + window_months`` forward.

    Returns
    -------
    pandas.DataFrame
        Indexed by subject (as text, in order of first appearance): ``event_time``,
        ``event`` (bool), ``status`` (``"died"``: event at or before the horizon;
        ``"alive"``: known alive at the horizon, i.e. ``event_time`` after it or
        censored at it; ``"censored"``: lost before it), ``baseline`` (outcome at the
        earliest visit with a value), ``at_horizon`` and ``change`` (``at_horizon -
        baseline``, missing unless ``"alive"``).

    Raises
    ------
    DataValidationError
        Naming subject, column and value: a column absent, a value that is not a
        number, a negative time, an event flag that is not True/False, or an event
        time that differs between a subject's rows.

    Examples
    --------
    >>> visits = pd.DataFrame({"subject_id": ["a", "a", "b", "b"],
    ...     "months": [0.0, 12.0, 0.0, 6.0], "alsfrs_r_total": [40, 34, 38, 30],
    ...     "death_or_tracheostomy_months": [14.0, 14.0, 8.0, 8.0],
    ...     "event_observed": [False, False, True, True]})
    >>> horizon_endpoints(visits, horizon_months=12)[["status", "change"]]
                  status  change
    subject_id
    a              alive    -6.0
    b               died     NaN
    """
    h = check_interval(
        horizon_months,
        "horizon_months",
        low=0,
        low_closed=False,
        error=ModelSpecificationError,
    )
    win = check_interval(
        window_months, "window_months", low=0, error=ModelSpecificationError
    )
    check_choice(missing, "missing", ("tie", "last"), error=ModelSpecificationError)
    roles = {
        outcome: "the outcome",
        event_time: "the event time",
        event: "the event flag",
        subject: "the subject column",
        months: "months since baseline of each visit",
    }
    _require(table, [subject, months, outcome, event_time, event], roles)
    df = table.reset_index(drop=True)
    problems: list[Problem] = []
    subjects, codes = _subjects(df, subject)
    n = len(subjects)
    m = _numbers(
        df,
        months,
        subject,
        problems,
        low=0,
        missing_ok=False,
        what="months since baseline (>= 0)",
    )
    y = _numbers(df, outcome, subject, problems)
    et = _numbers(
        df,
        event_time,
        subject,
        problems,
        low=0,
        what="months from baseline to the event or last contact (>= 0)",
    )
    ev = _flags(df, event, subject, problems)
    t_s = _one_per_subject(df, et, event_time, subject, codes, n, problems)
    e_s = _one_per_subject(df, ev, event, subject, codes, n, problems)
    _raise(problems)
    out = _endpoints_frame(subjects, t_s, e_s.astype(bool), h)
    obs = np.isfinite(y) & np.isfinite(m)
    vis = pd.DataFrame({"k": codes[obs], "m": m[obs], "y": y[obs]})
    vis = vis.sort_values(["k", "m"], kind="stable")
    base = vis.groupby("k")["y"].first()
    near = vis[np.abs(vis["m"] - h) <= win + 1e-9].copy()
    near["d"] = np.abs(near["m"] - h)
    near = near.sort_values(["k", "d", "m"], ascending=[True, True, False])
    at = near.groupby("k")["y"].first()
    if missing == "last":
        upto = vis[vis["m"] <= h + win + 1e-9].groupby("k")["y"].last()
        at = at.combine_first(upto)
    out["baseline"] = base.reindex(range(n)).to_numpy()
    out["at_horizon"] = at.reindex(range(n)).to_numpy()
    change = out["at_horizon"] - out["baseline"]
    out["change"] = change.where(out["status"] == "alive")
    return out


def _endpoints_frame(
    subjects: pd.Index, t: np.ndarray, e: np.ndarray, h: float
) -> pd.DataFrame:
    dead = e & (t <= h)
    alive = ~dead & (t >= h)
    status = np.where(dead, "died", np.where(alive, "alive", "censored"))
    return pd.DataFrame(
        {"event_time": t, "event": e, "status": pd.array(status, dtype="str")},
        index=subjects,
    )


def _subject_table(
    table: pd.DataFrame,
    *,
    change: str,
    event_time: str,
    event: str,
    subject: str,
    horizon: float,
    extra: Sequence[str] = (),
) -> tuple[pd.DataFrame, list[Problem]]:
    """A one-row-per-subject table with a precomputed change: checked endpoints."""
    roles = {
        change: "the change in the outcome from baseline to the horizon",
        event_time: "the event time",
        event: "the event flag",
        subject: "the subject column",
    }
    _require(table, [subject, event_time, event, change, *extra], roles)
    df = table.reset_index(drop=True)
    problems = duplicate_subjects(
        df,
        subject,
        "appears on more than one row; with `change` given the table has one "
        "row per subject (pass a long visit table without `change` instead)",
    )
    sid = df[subject].astype(str)
    t = _numbers(
        df,
        event_time,
        subject,
        problems,
        low=0,
        missing_ok=False,
        what="months from baseline to the event or last contact (>= 0)",
    )
    ev = _flags(df, event, subject, problems)
    for pos in np.flatnonzero(np.isnan(ev) & df[event].isna().to_numpy()):
        problems.append(
            Problem(
                "has no value (expected True/False or 1/0)",
                rule="required",
                source=_SOURCE,
                line=int(pos) + 1,
                subject_id=sid.iloc[pos],
                column=event,
                value=None,
                line_kind="row",
            )
        )
    c = _numbers(df, change, subject, problems)
    out = _endpoints_frame(pd.Index(sid, name=subject), t, ev == 1, horizon)
    out["change"] = np.where(out["status"] == "alive", c, np.nan)
    return out, problems
