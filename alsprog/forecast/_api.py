"""``forecast``: a fitted model plus a new patient's visits so far -> future ALSFRS-R.

Owns: the public :func:`forecast` entry point, dispatch on the model type, and the
tidy forecast table (mean, median, interval, optional predictive draws) with the
ALSFRS-R bounds respected.
Leaves: the arithmetic to :mod:`~alsprog.models._gaussian` (mixed model),
:mod:`~alsprog.models.bayes._forecast` (Bayesian models) and
:mod:`~alsprog.forecast._baselines`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._random import as_generator
from alsprog._validation import check_int, check_level
from alsprog.data._history import ModelColumns, Prepared, prepare_history, with_draws
from alsprog.errors import ModelSpecificationError
from alsprog.forecast._columns import fitted_columns, set_table_columns

__all__ = ["forecast", "summarise_draws"]

LOW, HIGH = 0.0, 48.0
_DEFAULT_BAYES_SAMPLES = 1000


def summarise_draws(
    draws: npt.NDArray[np.float64], level: float
) -> dict[str, npt.NDArray[np.float64]]:
    """Mean, median and central interval per column of ``draws`` (samples, rows)."""
    lo, med, hi = np.quantile(draws, [(1 - level) / 2, 0.5, (1 + level) / 2], axis=0)
    return {"mean": draws.mean(axis=0), "median": med, "lower": lo, "upper": hi}


def _table(
    prep: Prepared,
    cols: ModelColumns,
    time: str,
    stats: dict[str, npt.NDArray[np.float64]],
    draws: npt.NDArray[np.float64] | None,
) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            cols.subject: prep.future[cols.subject].astype(str).to_numpy(),
            time: prep.future[time].to_numpy(dtype=float),
        }
    )
    for k, v in stats.items():
        out[k] = np.asarray(v, dtype=float)
    if draws is not None:
        out = with_draws(out, draws)
    return set_table_columns(out, cols.subject, time, cols.outcome)


def _check_time_in_model(model: Any, cols: ModelColumns) -> None:
    """A mixed or joint model whose ``time`` its formula does not use would be
    forecast flat: refuse it, naming the parameter to set."""
    from alsprog.models import JointModel, LinearMixedModel

    lmm = model.longitudinal_ if isinstance(model, JointModel) else model
    if isinstance(lmm, LinearMixedModel):
        variables = lmm._design_info["variables"]
        if cols.time not in variables:
            used = [v for v in variables if v not in (cols.outcome, cols.subject)]
            raise ModelSpecificationError(
                f"{type(model).__name__}: the time column {cols.time!r} is not used by "
                f"{model.formula!r} (its variables: {', '.join(map(repr, used))}), so "
                "its forecasts could not move with time; fit it with `time=` naming "
                "the formula's time column, e.g. "
                f"{type(model).__name__}(..., time={(used or ['months'])[0]!r})."
            )


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
    Gauss-Hermite quadrature over them for the sigmoid one).  Forecasts lie in 0-48:
    the predictive distribution is censored at the bounds.  A patient whose history
    rows carry covariates but no outcome gets the population forecast for those
    covariates.

    The subject, time and outcome columns are the model's own (its ``columns_``; a
    baseline's ``subject``/``time``/``outcome``): a model fitted on ``patient``,
    ``visit_month`` and ``frs`` reads and returns those columns.

    Parameters
    ----------
    model : LinearMixedModel, JointModel, BayesianTrajectoryModel, a fitted baseline or CalibratedForecaster
        Fitted on other patients.  Baselines (:class:`DeltaFSBaseline`, ...) and
        :class:`CalibratedForecaster` are passed through to their ``predict``.  A
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
        and central ``level`` interval, in 0-48); for the mixed model also ``loc``
        and ``scale``: the mean and SD of the normal predictive distribution before
        it is censored at 0 and 48 (``mean`` and ``median`` are those of the
        censored one, and differ from ``loc`` only near a bound), for the joint
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
    level = check_level(level)
    if n_samples is not None:
        n_samples = check_int(n_samples, "n_samples", low=1, high=1_000_000)
    from alsprog.forecast._baselines import _LineBaseline
    from alsprog.forecast._calibrated import CalibratedForecaster

    cols = fitted_columns(model)
    if time is not None and not isinstance(time, str):
        raise TypeError(f"`time` must be a column name (str); got {time!r}.")
    axis = cols.visit_time if time is None else time
    if isinstance(model, (_LineBaseline, CalibratedForecaster)):
        if axis != cols.visit_time:
            raise ModelSpecificationError(
                f"{type(model).__name__} forecasts on its own time column "
                f"{cols.visit_time!r}; got time={time!r} (set the baseline's `time`)."
            )
        return model.predict(
            history, at_months, level=level, n_samples=n_samples, seed=seed
        )
    _check_time_in_model(model, cols)
    prep = prepare_history(
        history,
        at_months,
        outcome=cols.outcome,
        covariates=cols.covariates,
        subject=cols.subject,
        time=axis,
        advance=[cols.time] if cols.time != axis else [],
    )
    rng = as_generator(seed)
    from alsprog.models import JointModel, LinearMixedModel

    if isinstance(model, JointModel):
        from alsprog.models.joint._forecast import joint_forecast

        stats, draws = joint_forecast(
            model,
            prep,
            level=level,
            given_alive=bool(given_alive),
            n_samples=n_samples,
            rng=rng,
        )
        return _table(prep, cols, axis, stats, draws)
    if isinstance(model, LinearMixedModel):
        from alsprog.models._gaussian import lmm_forecast, normal_band

        loc, scale = lmm_forecast(model, prep)
        stats = normal_band(loc, scale, level)
        stats["loc"], stats["scale"] = loc, scale
        draws = None
        if n_samples is not None:
            z = rng.standard_normal((n_samples, len(loc)))
            draws = np.clip(loc + scale * z, LOW, HIGH)
        return _table(prep, cols, axis, stats, draws)

    from alsprog.models.bayes._forecast import bayes_draws

    k = n_samples if n_samples is not None else _DEFAULT_BAYES_SAMPLES
    draws = np.clip(bayes_draws(model, prep, n_samples=k, rng=rng), LOW, HIGH)
    return _table(
        prep, cols, axis, summarise_draws(draws, level), draws if n_samples else None
    )
