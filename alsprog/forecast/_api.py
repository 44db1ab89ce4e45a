"""``forecast``: a fitted model plus a new patient's visits so far -> future ALSFRS-R.

Owns: the public :func:`forecast` entry point and its documentation.
Leaves: splitting history from future and the table to
:mod:`alsprog.forecast._table`; each forecast's arithmetic to the forecaster's
``forecast_rows`` (the model families under :mod:`alsprog.models`, the baselines,
:class:`~alsprog.forecast.CalibratedForecaster`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from alsprog.forecast._table import forecast_table

__all__ = ["forecast"]


def forecast(
    model: Any,
    history: pd.DataFrame,
    at_months: Any,
    *,
    level: float = 0.9,
    n_samples: int | None = None,
    seed: Any = None,
    given_alive: bool = True,
    time: str | None = None,
) -> pd.DataFrame:
    """Forecast each patient's ALSFRS-R at future months from the visits seen so far.

    The model was fitted on other patients; the patients in ``history`` are not
    refitted, their forecast conditions on their own visits: for a
    :class:`~alsprog.models.LinearMixedModel` the exact conditional normal (the BLUP
    given the history with its prediction variance, the fixed-effect uncertainty and
    the residual variance); for a :class:`~alsprog.models.BayesianTrajectoryModel`
    the posterior predictive given the history (per posterior draw, the exact
    conditional normal of the subject effects for the linear model, adaptive
    Gauss-Hermite quadrature over them for the sigmoid one).  Forecasts lie in the
    outcome's range in the data dictionary (the model's ``outcome_bounds_``: 0-48
    for ``alsfrs_r_total``; none for an outcome it does not bound): the predictive
    distribution is censored at the bounds.  Each forecaster computes its own
    forecast (its ``forecast_rows``); this function splits the history from the
    rows to forecast and lays out the table.  A patient whose history
    rows carry covariates but no outcome gets the population forecast for those
    covariates.

    The subject, time and outcome columns are the model's own (its ``columns_``; a
    baseline's ``subject``/``time``/``outcome``): a model fitted on ``patient``,
    ``visit_month`` and ``frs`` reads and returns those columns.

    Parameters
    ----------
    model : a fitted trajectory model, baseline or CalibratedForecaster
        Fitted on other patients: any :class:`~alsprog.models._contract.TrajectoryModel`
        (:class:`~alsprog.models.LinearMixedModel`, ...), a baseline
        (:class:`DeltaFSBaseline`, ...) or :class:`CalibratedForecaster`.  A
        :class:`~alsprog.models.JointModel` gives the outcome given the history and
        being event-free at the forecast time (see ``given_alive``): a mixture of
        normals over Gauss-Hermite nodes of the random effects, each reweighted by
        its survival probability.
    history : pandas.DataFrame
        Long-format rows (as :func:`alsprog.data.assemble` returns) of the patients to
        forecast: one row per visit so far, subject-level covariates repeated on each
        row, with the model's subject, time, outcome and covariate columns (a
        missing one is named in the error).  Checked against the data dictionary;
        not modified.
    at_months : float, sequence of float or pandas.DataFrame
        Times to forecast on the model's time axis (``months`` since each patient's
        first visit with the data dictionary's names), the same for everyone, or a
        table with the subject and time columns giving each patient's own times.
        Must not precede a patient's last visit in ``history``.
    level : float, default 0.9
        Central interval coverage in (0, 1).
    n_samples : int, optional
        Also return this many predictive draws per row as columns ``draw_0``, ...
        (Bayesian models use this many posterior draws; default 1000, not returned).
    seed : int, numpy.random.Generator or None
        For the predictive draws.
    given_alive : bool, default True
        For a :class:`~alsprog.models.JointModel` only: forecast the outcome given the
        patient is event-free (alive, no tracheostomy) at each forecast time, i.e. the
        value that will be observed; ``False`` gives the trajectory regardless of
        survival.  Ignored by the other models, which do not model the event.
    time : str, optional
        Column of the forecast times (``at_months``) when it is not the model's
        visit-time column (``model.columns_.visit_time``: its time column, or
        ``months`` for a model on ``months_since_onset``); the model's own time
        column then advances one for one with it.  E.g. a sigmoid model on a
        renamed months-since-onset column forecast at months since the first visit.
        Baselines and :class:`CalibratedForecaster` take only their own.

    Returns
    -------
    pandas.DataFrame
        One row per patient and time: the model's subject column and the time
        column (``subject_id``, ``months`` with the data dictionary's names),
        ``mean``, ``median``, ``lower``, ``upper`` (the forecast's mean, median
        and central ``level`` interval, inside the outcome's bounds); for the mixed
        model also ``loc`` and ``scale``: the mean and SD of the normal predictive
        distribution before it is censored at the outcome's bounds (censored at
        0 and 48 for the ALSFRS-R total; not censored for an outcome the data
        dictionary does not bound): ``mean`` and ``median`` are those of the
        censored one, and differ from ``loc`` only near a bound; for the joint
        model the mean and SD of its normal mixture before censoring; CRPS
        (:func:`evaluate`) and :class:`CalibratedForecaster` use them.  Draws when
        asked.  Its ``attrs`` name the ``subject``, ``time`` and ``outcome``
        columns, which :func:`evaluate` and :func:`alsprog.plots.fan_chart` read.

    Raises
    ------
    DataValidationError
        If ``history`` breaks a data-dictionary rule, lacks a column the model
        reads, a patient lacks a covariate the model needs, or a time precedes the
        patient's last visit (all listed).
    ModelSpecificationError
        If a mixed or joint model's ``time`` is not a variable of its formula (its
        forecasts could not move with time).
    NotFittedError
        If the model is not fitted.

    See Also
    --------
    alsprog.forecast.backtest : forecasts of held-out patients, scored.
    alsprog.plots.fan_chart : a patient's history and forecast.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> from alsprog.models import LinearMixedModel
    >>> table = assemble(simulate_cohort(120, seed=3).visits,
    ...                  simulate_cohort(120, seed=3).subjects)
    >>> train = table[table["subject_id"] > "P0020"]
    >>> new = table[(table["subject_id"] <= "P0020") & (table["months"] < 4)]
    >>> m = LinearMixedModel(
    ...     "alsfrs_r_total ~ months * delta_fs + (months | subject_id)").fit(train)
    >>> f = forecast(m, new, [6, 12])
    >>> list(f.columns)
    ['subject_id', 'months', 'mean', 'median', 'lower', 'upper', 'loc', 'scale']
    >>> bool(((f["lower"] <= f["mean"]) & (f["mean"] <= f["upper"])).all())
    True
    """
    return forecast_table(
        model,
        history,
        at_months,
        level=level,
        n_samples=n_samples,
        seed=seed,
        given_alive=given_alive,
        time=time,
    )
