"""Survival formulas and the one-row-per-subject table a survival model reads.

Owns: reading ``Surv(time, event) ~ rhs`` and ``Surv(entry, exit, event) ~ rhs``
(:func:`parse_surv_formula`: the ``Surv`` arguments are plain column names, the
right-hand side passes :func:`alsprog._formula_text.check_formula`), each subject's
baseline row of a long table (:func:`subject_rows`), the event data with their checks
(:func:`event_arrays`) and the covariate design (:func:`covariate_design`, its
formulaic spec kept for new data).
Leaves: the numerics to :mod:`._cox` and :mod:`._flexible`; the model to
:mod:`._model`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._formula_text import check_formula, formula_context
from alsprog.data._history import varying_within_subject
from alsprog.errors import (
    DataValidationError,
    DataWarning,
    ModelSpecificationError,
    Problem,
)

__all__ = [
    "SurvFormula",
    "observed_events",
    "covariate_design",
    "event_arrays",
    "parse_surv_formula",
    "subject_rows",
]

Array = npt.NDArray[np.float64]

_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_SURV = re.compile(
    rf"^\s*Surv\s*\(\s*(?P<a>{_NAME})\s*,\s*(?P<b>{_NAME})\s*"
    rf"(?:,\s*(?P<c>{_NAME})\s*)?\)\s*~(?P<rhs>.*)$",
    re.DOTALL,
)


@dataclass(frozen=True)
class SurvFormula:
    """A read survival formula: ``entry`` (None without delayed entry), ``exit``,
    ``event`` (column names) and the right-hand side ``rhs`` (``"1"`` for none)."""

    text: str
    entry: str | None
    exit: str
    event: str
    rhs: str

    @property
    def columns(self) -> list[str]:
        """The time and event columns, in the formula's order."""
        return [c for c in (self.entry, self.exit, self.event) if c is not None]


def parse_surv_formula(formula: object) -> SurvFormula:
    """Read ``"Surv(time, event) ~ x + z"`` or ``"Surv(entry, exit, event) ~ ..."``.

    Raises
    ------
    ModelSpecificationError
        Anything else: the left-hand side must be ``Surv(...)`` of two or three
        column names; the right-hand side passes the formula allow-list.

    Examples
    --------
    >>> f = parse_surv_formula("Surv(t0, t1, died) ~ age + C(onset_site)")
    >>> f.entry, f.exit, f.event, f.rhs
    ('t0', 't1', 'died', 'age + C(onset_site)')
    >>> parse_surv_formula("Surv(t, __import__('os')) ~ 1")
    Traceback (most recent call last):
    ...
    alsprog.errors.ModelSpecificationError: The survival formula "Surv(t, __import__('os')) ~ 1" must read 'Surv(time, event) ~ terms' or 'Surv(entry, exit, event) ~ terms' with column names inside Surv(...) (letters, digits, '_' and '.'); use '~ 1' for no covariates.
    """
    if not isinstance(formula, str):
        raise ModelSpecificationError(
            "The survival formula must be a string like 'Surv(time, event) ~ age'; "
            f"got {type(formula).__name__} {formula!r:.80}."
        )
    text = formula.strip()
    m = _SURV.match(text)
    if m is None or not m.group("rhs").strip():
        raise ModelSpecificationError(
            f"The survival formula {text!r} must read 'Surv(time, event) ~ terms' or "
            "'Surv(entry, exit, event) ~ terms' with column names inside Surv(...) "
            "(letters, digits, '_' and '.'); use '~ 1' for no covariates."
        )
    a, b, c = m.group("a"), m.group("b"), m.group("c")
    entry, exit_, event = (a, b, c) if c is not None else (None, a, b)
    rhs = check_formula(m.group("rhs"), kind="rhs", what="survival formula").text
    names = [n for n in (entry, exit_, event) if n is not None]
    if len(set(names)) != len(names):
        raise ModelSpecificationError(
            f"The survival formula {text!r} names a column twice inside Surv(...)."
        )
    return SurvFormula(text=text, entry=entry, exit=exit_, event=event, rhs=rhs)


def rhs_variables(rhs: str) -> list[str]:
    """The columns the right-hand side reads."""
    return list(check_formula(rhs, kind="rhs", what="survival formula").variables)


def subject_rows(
    table: pd.DataFrame,
    columns: list[str],
    *,
    subject: str,
    time: str,
    constant: list[str],
) -> pd.DataFrame:
    """Each subject's baseline row (the earliest ``time``; the first row where the
    table has no ``time``) with ``columns``, indexed by subject; a table without the
    ``subject`` column is one row per subject already (its index kept).

    Raises
    ------
    DataValidationError
        A ``constant`` column (the event data) that differs between a subject's rows.
    """
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ModelSpecificationError(
            f"Column(s) {', '.join(map(repr, missing))} are not in the table; it has "
            f"{', '.join(map(str, table.columns))}."
        )
    if subject not in table.columns:
        out = table.loc[:, list(dict.fromkeys(columns))]
        if not out.index.is_unique:
            raise DataValidationError(
                [
                    Problem(
                        f"the table has no {subject!r} column and its index repeats; "
                        "give one row per subject or a subject column",
                        rule="duplicate",
                        column=subject,
                    )
                ]
            )
        return out
    keep = list(dict.fromkeys([subject, *columns]))
    rows = table.loc[:, list(dict.fromkeys([*keep, time]))] if time in table else None
    rows = table.loc[:, keep] if rows is None else rows
    if rows[subject].isna().any():
        raise DataValidationError(
            [
                Problem(
                    "subject is missing",
                    rule="required",
                    line=int(i) + 1,
                    column=subject,
                )
                for i in np.flatnonzero(rows[subject].isna().to_numpy())[:20]
            ]
        )
    key = rows[subject].astype(str)
    problems = varying_within_subject(rows, key, constant)
    if problems:
        raise DataValidationError(problems)
    if time in rows.columns:
        t = pd.to_numeric(rows[time], errors="coerce").to_numpy(dtype=float)
        order = np.lexsort((np.arange(len(rows)), np.nan_to_num(t, nan=np.inf)))
        rows = rows.iloc[order]
        key = key.iloc[order]
    first = rows.loc[~key.duplicated().to_numpy()]
    first.index = pd.Index(key[~key.duplicated()].to_numpy(), name=subject)
    return first.loc[:, list(dict.fromkeys(columns))]


def _event_flags(values: pd.Series, column: str) -> tuple[Array, list[Problem]]:
    """0/1 floats of an event column (booleans, 0/1 numbers); NaN where missing."""
    problems: list[Problem] = []
    if pd.api.types.is_bool_dtype(values):
        out = values.astype("float64").to_numpy(dtype=float, na_value=np.nan)
        return out, problems
    num = pd.to_numeric(values, errors="coerce").astype("float64")
    arr = num.to_numpy(dtype=float, na_value=np.nan)
    bad = np.flatnonzero(
        (values.notna().to_numpy() & np.isnan(arr))
        | (~np.isnan(arr) & ~np.isin(arr, [0.0, 1.0]))
    )
    problems += [
        Problem(
            f"event indicator {values.iloc[i]!r} is not true/false or 1/0",
            rule="event_indicator",
            subject_id=str(values.index[i]),
            column=column,
            value=values.iloc[i],
        )
        for i in bad[:20]
    ]
    return arr, problems


@dataclass(frozen=True)
class EventData:
    """The complete subjects' ``entry`` (zeros without delayed entry), ``exit``,
    ``event`` (0/1) and their labels ``subjects``; ``keep`` marks them among the
    rows given."""

    entry: Array
    exit: Array
    event: Array
    subjects: pd.Index
    keep: npt.NDArray[np.bool_]


def event_arrays(
    rows: pd.DataFrame,
    f: SurvFormula,
    *,
    origin: Array | None,
    covariates: list[str],
    warn: bool = True,
    refuse: bool = True,
) -> EventData:
    """Check and return the event data of the subjects with every value present.

    ``origin`` (months from the time origin to the data's zero, per row: the
    onset-to-baseline time for ``time_origin="onset"``) is added to entry and exit.
    ``refuse=False`` keeps subjects with no time at risk (scores of observed
    outcomes, not a fit).

    Raises
    ------
    DataValidationError
        A non-numeric or negative time, an event not after entry (no time at risk;
        a censoring there is left out with the warning), an event indicator that is
        not boolean/0-1.
    """
    problems: list[Problem] = []
    arrays: dict[str, Array] = {}
    for col in [f.exit] + ([f.entry] if f.entry else []):
        v = rows[col]
        num = pd.to_numeric(v, errors="coerce").astype("float64")
        arr = num.to_numpy(dtype=float, na_value=np.nan)
        bad = np.flatnonzero(v.notna().to_numpy() & ~np.isfinite(arr))
        bad = np.union1d(bad, np.flatnonzero(arr < 0))
        problems += [
            Problem(
                f"time {v.iloc[i]!r} is not a number >= 0",
                rule="event_time",
                subject_id=str(rows.index[i]),
                column=col,
                value=v.iloc[i],
            )
            for i in bad[:20]
        ]
        arrays[col] = arr
    ev, pr = _event_flags(rows[f.event], f.event)
    problems += pr
    if problems:
        raise DataValidationError(problems)
    exit_ = arrays[f.exit]
    entry = arrays[f.entry] if f.entry else np.zeros(len(rows))
    present = ~np.isnan(exit_) & ~np.isnan(entry) & ~np.isnan(ev)
    if covariates:
        present &= rows[covariates].notna().all(axis=1).to_numpy()
    if origin is not None:
        present &= ~np.isnan(origin)
    # no time at risk: a censoring there adds nothing to any likelihood (left out,
    # as coxph does); an event there cannot be modelled
    no_time = present & (exit_ <= entry) & refuse
    bad = np.flatnonzero(no_time & (ev > 0))
    problems = [
        Problem(
            f"event at time {exit_[i]:g}, not after the entry time {entry[i]:g}: a "
            "subject needs some time at risk before the event",
            rule="exit_before_entry",
            subject_id=str(rows.index[i]),
            column=f.exit,
            value=float(exit_[i]),
        )
        for i in bad[:20]
    ]
    if problems:
        raise DataValidationError(problems)
    n_missing = int((~present).sum())
    n_no_time = int(no_time.sum())
    if (n_missing or n_no_time) and warn:
        cols = [*f.columns, *covariates]
        counts = rows[cols].isna().sum()
        parts = [f"{k}: {v}" for k, v in counts.items() if v]
        if origin is not None and np.isnan(origin).any():
            parts.append(f"origin: {int(np.isnan(origin).sum())}")
        reasons = []
        if n_missing:
            reasons.append(f"{n_missing} with a missing value ({', '.join(parts)})")
        if n_no_time:
            reasons.append(
                f"{n_no_time} censored with no time at risk (exit not after entry)"
            )
        warnings.warn(
            f"Left out {n_missing + n_no_time} of {len(rows)} subjects: "
            + "; ".join(reasons)
            + ".",
            DataWarning,
            stacklevel=4,
        )
    present = present & ~no_time
    shift = np.zeros(len(rows)) if origin is None else np.nan_to_num(origin)
    return EventData(
        entry=(entry + shift)[present],
        exit=(exit_ + shift)[present],
        event=ev[present],
        subjects=rows.index[present],
        keep=present,
    )


def covariate_design(
    rhs: str, rows: pd.DataFrame, spec: Any = None
) -> tuple[Array, list[str], Any]:
    """The covariate matrix of ``rhs`` (no intercept: the baseline hazard holds it),
    its column names and formulaic spec (``spec`` given: new data through the fitted
    spec, so categories and transforms are the fit's)."""
    from formulaic import model_matrix

    try:
        if spec is None:
            mm = model_matrix(rhs, rows, na_action="raise", context=formula_context())
        else:
            mm = spec.get_model_matrix(
                rows, na_action="raise", context=formula_context()
            )
    except Exception as exc:
        raise ModelSpecificationError(
            f"Cannot build the covariates of {rhs!r}: {exc}"
        ) from exc
    names = [str(c) for c in mm.columns]
    keep = [i for i, n in enumerate(names) if n != "Intercept"]
    X = np.asarray(mm, dtype=float)[:, keep]
    return X, [names[i] for i in keep], mm.model_spec


def observed_events(
    table: pd.DataFrame,
    event_time: str,
    event: str,
    subject: str,
    entry: str | None = None,
) -> pd.DataFrame:
    """One row per subject of a (long or one-row-per-subject) table: ``time``,
    ``event`` (0/1) and ``entry`` (0 without an ``entry`` column), indexed by
    subject as text; subjects without event data (healthy controls) left out.

    Examples
    --------
    >>> t = pd.DataFrame({"subject_id": ["a", "a", "b"], "t": [5.0, 5.0, 2.0],
    ...                   "d": [True, True, False]})
    >>> observed_events(t, "t", "d", "subject_id")["event"].tolist()
    [1.0, 0.0]
    """
    cols = [c for c in (entry, event_time, event) if c is not None]
    rows = subject_rows(
        table,
        cols,
        subject=subject,
        time="__none__",
        constant=cols if subject in table.columns else [],
    )
    f = SurvFormula(text="", entry=entry, exit=event_time, event=event, rhs="1")
    ed = event_arrays(rows, f, origin=None, covariates=[], warn=False, refuse=False)
    return pd.DataFrame(
        {"time": ed.exit, "event": ed.event, "entry": ed.entry},
        index=ed.subjects.astype(str),
    )
