"""The event part's data of a joint model: event times, indicators, covariates.

Owns: each subject's first row (:func:`first_rows`), the event time and indicator
checked per subject (:func:`event_data`), and the subject-level event covariates'
design (:func:`event_design`, :func:`without_intercept`).
Leaves: the longitudinal design to :mod:`alsprog.models._formula`; the likelihood to
:mod:`alsprog.models.joint._numerics`; the estimator to
:mod:`alsprog.models.joint._model`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._formula_text import check_formula, formula_context
from alsprog.data._history import varying_within_subject
from alsprog.errors import DataValidationError, ModelSpecificationError, Problem

__all__ = ["event_data", "event_design", "first_rows", "without_intercept"]

Array = npt.NDArray[np.float64]


def first_rows(rows: pd.DataFrame, group: str, subjects: pd.Index) -> pd.DataFrame:
    """Each subject's first row, in the order of ``subjects``."""
    key = rows[group].astype(str)
    first = rows.loc[~key.duplicated()].copy()
    first.index = key[~key.duplicated()].to_numpy()
    return first.loc[[str(s) for s in subjects]].reset_index(drop=True)


def event_design(
    text: str, first: pd.DataFrame, group: str
) -> tuple[Array, list[str], Any]:
    """Subject-level event covariates (intercept dropped) and their model spec."""
    from formulaic import model_matrix

    if not text.strip():
        return np.zeros((len(first), 0)), [], None
    required = set(
        check_formula(
            text, columns=first.columns, kind="rhs", what="event_formula"
        ).variables
    )
    problems = [
        Problem(
            f"{v!r} is missing; the event part (event_formula {text!r}) needs it",
            rule="required",
            subject_id=str(first[group].iloc[i]),
            column=v,
        )
        for v in sorted(required)
        for i in np.flatnonzero(first[v].isna().to_numpy())
    ]
    if problems:
        raise DataValidationError(problems)
    try:
        mm = model_matrix(text, first, na_action="raise", context=formula_context())
    except Exception as exc:
        raise ModelSpecificationError(
            f"Cannot build the event design from {text!r}: {exc}"
        ) from exc
    W, names = without_intercept(mm)
    return W, names, mm.model_spec


def without_intercept(mm: Any) -> tuple[Array, list[str]]:
    """A formulaic model matrix without its intercept column (the baseline hazard
    holds it), as an array and column names."""
    names = [str(c) for c in mm.columns]
    keep = [i for i, n in enumerate(names) if n != "Intercept"]
    return np.asarray(mm, dtype=float)[:, keep], [names[i] for i in keep]


def event_data(
    model: Any, rows: pd.DataFrame, first: pd.DataFrame, group: str
) -> tuple[Array, npt.NDArray[np.bool_]]:
    missing = [c for c in (model.event_time, model.event) if c not in rows.columns]
    if missing:
        raise DataValidationError(
            [
                Problem(
                    f"column {c!r} is missing; the event part needs it (set "
                    "`event_time`/`event` to the columns holding the event time "
                    "and indicator)",
                    rule="required",
                    column=c,
                )
                for c in missing
            ]
        )
    problems = varying_within_subject(
        rows, group, (model.event_time, model.event), limit=len(rows)
    )
    times = pd.to_numeric(first[model.event_time], errors="coerce").to_numpy(float)
    ev_raw = first[model.event]
    ids = first[group].astype(str).to_numpy()
    for i in np.flatnonzero(~np.isfinite(times) | (times < 0)):
        problems.append(
            Problem(
                f"event time {first[model.event_time].iloc[i]!r}; expected a number "
                ">= 0 (months from the first visit)",
                rule="minimum",
                subject_id=ids[i],
                column=model.event_time,
                value=first[model.event_time].iloc[i],
            )
        )
    for i in np.flatnonzero(ev_raw.isna().to_numpy()):
        problems.append(
            Problem(
                "event indicator is missing; expected true or false",
                rule="required",
                subject_id=ids[i],
                column=model.event,
            )
        )
    if problems:
        raise DataValidationError(problems)
    events = ev_raw.astype("boolean").to_numpy(dtype=bool, na_value=False)
    return times, events
