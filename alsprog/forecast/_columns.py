"""Which columns a forecaster reads: fitted models' own, and unfitted ones' declared.

Owns: :func:`fitted_columns` (a fitted trajectory model's ``columns_``, a fitted
baseline's column parameters, a :class:`CalibratedForecaster`'s inner model's) and
:func:`declared_columns` (the same read from an unfitted estimator's parameters, so
:func:`~alsprog.forecast.backtest` can split and cut the data before fitting), and
:func:`table_columns` (the subject/time/outcome names a forecast table carries in its
``attrs``).
Leaves: the :class:`~alsprog.data._history.ModelColumns` record itself to
:mod:`alsprog.data._history`; what each model reads to the models.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from alsprog._validation import check_is_fitted
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
        "BayesianTrajectoryModel, a fitted forecast baseline or a "
        f"CalibratedForecaster; got {type(model).__name__}."
    )


def _baseline_columns(model: Any) -> ModelColumns:
    time = str(model.time)
    return ModelColumns(
        outcome=str(model.outcome),
        subject=str(model.subject),
        time=time,
        covariates=tuple(dict.fromkeys([time, *model._needs()])),
        visit_time=time,
    )


def fitted_columns(model: Any) -> ModelColumns:
    """The columns a fitted model or forecaster reads.

    Raises
    ------
    NotFittedError
        If it is not fitted.
    TypeError
        If it is not a forecaster alsprog knows.
    """
    from alsprog.forecast._baselines import _LineBaseline
    from alsprog.forecast._calibrated import CalibratedForecaster

    if isinstance(model, _LineBaseline):
        check_is_fitted(model, ["error_variance_"])
        return _baseline_columns(model)
    if isinstance(model, CalibratedForecaster):
        check_is_fitted(model, ["model_"])
        return fitted_columns(model.model_)
    from alsprog.models import JointModel, LinearMixedModel

    if isinstance(model, (JointModel, LinearMixedModel)):
        return model.columns_  # NotFittedError when unfitted
    from alsprog.models import BayesianTrajectoryModel  # only now: heavier import

    if isinstance(model, BayesianTrajectoryModel):
        return model.columns_
    raise _not_a_model(model)


def declared_columns(est: Any) -> ModelColumns:
    """The outcome, subject and time columns an unfitted estimator will read.

    Read from its parameters (formula, ``time``, ``subject``, ``outcome``) without
    fitting; ``covariates`` holds only the time column.

    Examples
    --------
    >>> from alsprog.models import LinearMixedModel
    >>> c = declared_columns(LinearMixedModel(
    ...     "frs ~ visit_month + (visit_month | patient)", time="visit_month"))
    >>> c.outcome, c.subject, c.time
    ('frs', 'patient', 'visit_month')
    """
    from alsprog.forecast._baselines import _LineBaseline
    from alsprog.forecast._calibrated import CalibratedForecaster
    from alsprog.models._formula import parse_mixed_formula

    if isinstance(est, _LineBaseline):
        return _baseline_columns(est)
    if isinstance(est, CalibratedForecaster):
        return declared_columns(est.model)
    from alsprog.models import JointModel, LinearMixedModel

    if isinstance(est, (JointModel, LinearMixedModel)):
        parsed = parse_mixed_formula(est.formula)
        if not parsed.random:
            from alsprog.errors import ModelSpecificationError

            raise ModelSpecificationError(
                f"Formula {est.formula!r} has no random-effects term '(... | group)'; "
                "the grouping column is named there."
            )
        time = str(est.time)
        return ModelColumns.of(parsed.outcome, parsed.random[0].group, time, [time])
    from alsprog.models import BayesianTrajectoryModel

    if isinstance(est, BayesianTrajectoryModel):
        from alsprog.models.bayes._design import DEFAULT_FORMULA, DEFAULT_TIME

        kind = est.kind if est.kind in DEFAULT_FORMULA else "linear"
        formula = est.formula if est.formula is not None else DEFAULT_FORMULA[kind]
        time = str(est.time if est.time is not None else DEFAULT_TIME[kind])
        outcome = parse_mixed_formula(formula).outcome
        return ModelColumns.of(outcome, str(est.subject), time, [time])
    raise _not_a_model(est)


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
