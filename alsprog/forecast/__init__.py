"""Forecasts of a patient's future ALSFRS-R from the visits seen so far.

:func:`forecast` conditions a fitted mixed or Bayesian model on each new patient's
history; :class:`DeltaFSBaseline`, :class:`PatientOLSBaseline` and
:class:`RandomForestSlope` are the reference forecasters; :class:`CalibratedForecaster`
recalibrates any of them on the training patients' own errors; :func:`evaluate`,
:func:`calibration` and :func:`backtest` score them; :func:`evaluate_survival` and
:func:`backtest_survival` score predicted survival (time-dependent AUC, Brier,
concordance, calibration; at a landmark for dynamic predictions).  All of them read the subject,
time and outcome columns a model was fitted on (its ``columns_``; a baseline's
``subject``/``time``/``outcome``), so a model on ``patient``/``visit_month``/``frs``
is forecast and scored on those; the ``*_months`` arguments are in that time
column's units.
"""

from alsprog.forecast._api import forecast
from alsprog.forecast._baselines import (
    DeltaFSBaseline,
    PatientOLSBaseline,
    RandomForestSlope,
    history_features,
    window_slopes,
)
from alsprog.forecast._calibrated import CalibratedForecaster
from alsprog.forecast._evaluate import backtest, calibration, crps_draws, evaluate
from alsprog.forecast._survival import (
    SurvivalScores,
    backtest_survival,
    evaluate_survival,
)

__all__ = [
    "CalibratedForecaster",
    "DeltaFSBaseline",
    "PatientOLSBaseline",
    "RandomForestSlope",
    "SurvivalScores",
    "backtest",
    "backtest_survival",
    "calibration",
    "crps_draws",
    "evaluate",
    "evaluate_survival",
    "forecast",
    "history_features",
    "window_slopes",
]
