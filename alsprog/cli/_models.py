"""The forecasters the ``alsprog`` commands name, in one place.

Owns: the model names ``forecast --model`` and ``backtest --models`` accept (the
config's names), the baselines, the default backtest models, the old hyphenated
spelling, and building an unfitted forecaster (optionally recalibrated) from its name
and the command's options.
Leaves: fitting, forecasting and scoring to :mod:`alsprog.forecast`.
"""

from __future__ import annotations

import argparse
import sys

from alsprog.cli._shared import _progress

__all__: list[str] = []

#: Forecasters by the config's names (``[forecast] baselines``, ``[models.NAME]``).
_FORECAST_MODELS = (
    "lmm",
    "joint",
    "bayes_linear",
    "bayes_sigmoid",
    "delta_fs",
    "patient_ols",
    "random_forest",
)


#: Forecasters that are baselines (``backtest --recalibrate`` leaves them alone).
_BASELINES = ("delta_fs", "patient_ols", "random_forest")

#: ``backtest --models`` when none are given.
_BACKTEST_MODELS = ("lmm", "delta_fs", "patient_ols", "random_forest")


def _model_name(text: str) -> str:
    """A forecaster's name; the old hyphenated spelling (``delta-fs``) is read with a
    note (the config and the output tables use ``delta_fs``)."""
    name = text.replace("-", "_")
    if name != text and name in _FORECAST_MODELS:
        print(
            f"alsprog: note: model name {text!r} is now spelled {name!r}, as in the "
            "config and the output tables; the old spelling will stop working in a "
            "later version",
            file=sys.stderr,
        )
    return name


_LMM_FORMULA = (
    "alsfrs_r_total ~ months * (delta_fs + onset_site) + (months | subject_id)"
)


def _forecast_model(name: str, args: argparse.Namespace):
    """An unfitted forecaster from its command-line name (configuration only)."""
    from alsprog.forecast import DeltaFSBaseline, PatientOLSBaseline, RandomForestSlope
    from alsprog.models import BayesianTrajectoryModel, JointModel, LinearMixedModel

    formula = getattr(args, "formula", None)
    if name == "lmm":
        return LinearMixedModel(formula or _LMM_FORMULA)
    if name == "joint":
        return JointModel(formula or _LMM_FORMULA, event_formula=args.event_formula)
    if name in ("bayes_linear", "bayes_sigmoid"):
        return BayesianTrajectoryModel(
            "linear" if name == "bayes_linear" else "sigmoid",
            formula=formula,
            chains=args.chains,
            draws=args.draws,
            tune=args.draws,
            seed=args.seed,
            progress=_progress(args),
        )
    if name == "delta_fs":
        return DeltaFSBaseline(history_months=args.history_months)
    if name == "patient_ols":
        return PatientOLSBaseline(history_months=args.history_months)
    return RandomForestSlope(history_months=args.history_months, random_state=args.seed)


def _recalibrated(model, args: argparse.Namespace):
    """``model`` wrapped in CalibratedForecaster per ``--recalibrate`` (band/shift)."""
    from alsprog.forecast import CalibratedForecaster

    return CalibratedForecaster(
        model, history_months=args.history_months, shift=args.recalibrate == "shift"
    )
