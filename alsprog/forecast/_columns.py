"""Which columns a forecaster reads: fitted models' own, and unfitted ones' declared.

Owns: :func:`fitted_columns` (a fitted forecaster's ``columns_``) and
:func:`declared_columns` (an unfitted one's ``required_columns()``, so
:func:`~alsprog.forecast.backtest` can split and cut the data before fitting), and
:func:`table_columns` (the subject/time/outcome names a forecast table carries in its
``attrs``).
Leaves: the :class:`~alsprog.data._history.ModelColumns` record itself to
:mod:`alsprog.data._history`; what each model reads to the models and baselines
(each answers for itself).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from alsprog.data._history import ModelColumns

__all__ = [
    "DEFAULT_COLUMNS",
    "declared_columns",
    "fitted_columns",
    "table_columns",
]

#: The data dictionary's names: what every table carries unless a model says otherwise.
DEFAULT_COLUMNS = {
    "subject": "subject_id",
    "time": "months",
    "outcome": "alsfrs_r_total",
}
#: Keys of a forecast table's ``attrs`` naming its columns.
ATTRS = {"subject": "subject", "time": "time", "outcome": "outcome"}


def _not_a_model(model: Any) -> TypeError:
    return TypeError(
        "`model` must be a fitted LinearMixedModel, JointModel, "
        "BayesianTrajectoryModel (any TrajectoryModel), a fitted forecast baseline "
        f"or a CalibratedForecaster; got {type(model).__name__}."
    )


def fitted_columns(model: Any) -> ModelColumns:
    """The columns a fitted model or forecaster reads: its ``columns_``.

    Raises
    ------
    NotFittedError
        If it is not fitted.
    TypeError
        If it is not a forecaster (it has no ``columns_``).
    """
    if not hasattr(type(model), "columns_"):
        raise _not_a_model(model)
    cols = model.columns_  # NotFittedError when unfitted
    if not isinstance(cols, ModelColumns):
        raise _not_a_model(model)
    return cols


def declared_columns(est: Any) -> ModelColumns:
    """The outcome, subject and time columns an unfitted estimator will read: its
    ``required_columns()``, read from its parameters without fitting;
    ``covariates`` holds only the time column.

    Examples
    --------
    >>> from alsprog.models import LinearMixedModel
    >>> c = declared_columns(LinearMixedModel(
    ...     "frs ~ visit_month + (visit_month | patient)", time="visit_month"))
    >>> c.outcome, c.subject, c.time
    ('frs', 'patient', 'visit_month')
    """
    required = getattr(est, "required_columns", None)
    if not callable(required):
        raise _not_a_model(est)
    return required()


def table_columns(
    table: pd.DataFrame,
    *,
    subject: str | None = None,
    time: str | None = None,
    outcome: str | None = None,
) -> tuple[str, str, str]:
    """``(subject, time, outcome)``: the arguments given, else the names a forecast
    table carries in ``attrs`` (set by :func:`~alsprog.forecast.forecast`), else the
    data dictionary's.

    Examples
    --------
    >>> f = pd.DataFrame({"patient": ["A"], "visit_month": [6.0], "mean": [30.0]})
    >>> f.attrs.update(subject="patient", time="visit_month", outcome="frs")
    >>> table_columns(f)
    ('patient', 'visit_month', 'frs')
    >>> table_columns(pd.DataFrame(), outcome="y")
    ('subject_id', 'months', 'y')
    """
    attrs = getattr(table, "attrs", {}) or {}
    given = {"subject": subject, "time": time, "outcome": outcome}
    out = []
    for key in ("subject", "time", "outcome"):
        v = given[key]
        if v is None:
            v = attrs.get(ATTRS[key])
        if not isinstance(v, str) or not v:
            v = DEFAULT_COLUMNS[key] if given[key] is None else v
        if not isinstance(v, str):
            raise TypeError(f"`{key}` must be a column name (str); got {v!r}.")
        out.append(v)
    return out[0], out[1], out[2]


def set_table_columns(
    table: pd.DataFrame, subject: str, time: str, outcome: str
) -> pd.DataFrame:
    """Record the subject, time and outcome columns in ``table.attrs`` (in place)."""
    table.attrs.update(
        {ATTRS["subject"]: subject, ATTRS["time"]: time, ATTRS["outcome"]: outcome}
    )
    return table
