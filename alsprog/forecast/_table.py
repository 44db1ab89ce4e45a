"""One forecast: a fitted forecaster plus new patients' visits -> the forecast table.

Owns: :func:`forecast_table`, the path every forecast takes (the public
:func:`alsprog.forecast.forecast` for every forecaster, the recalibration of
:class:`~alsprog.forecast.CalibratedForecaster`, ``backtest``):
check the arguments, ask the forecaster for its columns (``columns_``) and whether
it can forecast on the requested time column (``check_forecast_time``), split the
history from the rows to forecast (:func:`~alsprog.data._history.prepare_history`),
call the forecaster's ``forecast_rows`` and lay the result out as a table.
Leaves: each forecast's arithmetic to the forecaster (the model families under
:mod:`alsprog.models`, the baselines, the calibration); which columns a forecaster
reads to :mod:`alsprog.forecast._columns`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._random import as_generator, child_seed
from alsprog._validation import check_int, check_level
from alsprog.data._history import ModelColumns, Prepared, prepare_history, with_draws
from alsprog.forecast._columns import fitted_columns, set_table_columns

__all__ = ["MAX_SAMPLES", "fit_and_forecast", "forecast_table", "layout"]

#: Most predictive draws per forecast row accepted.
MAX_SAMPLES = 1_000_000


def layout(
    prep: Prepared,
    cols: ModelColumns,
    time: str,
    stats: dict[str, npt.NDArray[np.float64]],
    draws: npt.NDArray[np.float64] | None,
) -> pd.DataFrame:
    """The forecast table of ``prep``'s future rows: subject, ``time``, ``stats``
    (one column each) and the draws as ``draw_0``, ...; ``attrs`` name the
    columns."""
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


def forecast_table(
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
    """:func:`alsprog.forecast.forecast` (see there for the arguments)."""
    level = check_level(level)
    if n_samples is not None:
        n_samples = check_int(n_samples, "n_samples", low=1, high=MAX_SAMPLES)
    cols = fitted_columns(model)
    if time is not None and not isinstance(time, str):
        raise TypeError(f"`time` must be a column name (str); got {time!r}.")
    axis = cols.visit_time if time is None else time
    model.check_forecast_time(axis)
    prep = prepare_history(
        history,
        at_months,
        outcome=cols.outcome,
        covariates=cols.covariates,
        subject=cols.subject,
        time=axis,
        advance=[cols.time] if cols.time != axis else [],
        context=cols.context,
    )
    rows = model.forecast_rows(
        prep,
        level=level,
        n_samples=n_samples,
        rng=as_generator(seed),
        given_alive=bool(given_alive),
    )
    return layout(prep, cols, axis, rows.stats, rows.draws)


def fit_and_forecast(
    model: Any,
    train: pd.DataFrame,
    history: pd.DataFrame,
    at: pd.DataFrame,
    rng: np.random.Generator,
    *,
    level: float,
    n_samples: int | None,
    time: str,
) -> pd.DataFrame:
    """Fit ``model`` on ``train`` and forecast ``history``'s patients at ``at``
    (the forecast's seed drawn from ``rng``): one backtest step."""
    model.fit(train)
    return forecast_table(
        model,
        history,
        at,
        level=level,
        n_samples=n_samples,
        seed=child_seed(rng),
        time=time,
    )
