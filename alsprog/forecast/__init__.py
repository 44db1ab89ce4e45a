"""Forecasts of a patient's future ALSFRS-R from the visits seen so far.

:func:`forecast` conditions a fitted mixed or Bayesian model on each new patient's
history; :class:`DeltaFSBaseline`, :class:`PatientOLSBaseline` and
:class:`RandomForestSlope` are the reference forecasters; :func:`evaluate`,
:func:`calibration` and :func:`backtest` score them.
"""

from alsprog.forecast._api import forecast
from alsprog.forecast._baselines import (
    DeltaFSBaseline,
    PatientOLSBaseline,
    RandomForestSlope,
    history_features,
    window_slopes,
)
from alsprog.forecast._evaluate import backtest, calibration, crps_draws, evaluate

__all__ = [
    "DeltaFSBaseline",
    "PatientOLSBaseline",
    "RandomForestSlope",
    "backtest",
    "calibration",
    "crps_draws",
    "evaluate",
    "forecast",
    "history_features",
    "window_slopes",
]
