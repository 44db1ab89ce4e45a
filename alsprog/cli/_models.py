"""The forecasters the ``alsprog`` commands name, in one place.

Owns: the model names ``forecast --model`` and ``backtest --models`` accept (the
config's names, then every type of the model registry), the baselines, the default
backtest models, the old hyphenated spelling, and building an unfitted forecaster
(optionally recalibrated) from its name and the command's options.
Leaves: fitting, forecasting and scoring to :mod:`alsprog.forecast`; the model
types to :mod:`alsprog.models.registry`.
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


def _registry_types() -> tuple[str, ...]:
    """The registered model types not already among :data:`_FORECAST_MODELS`."""
    from alsprog.models.registry import MODELS

    return tuple(t for t in MODELS if t not in _FORECAST_MODELS)


def _forecast_models() -> tuple[str, ...]:
    """Every name ``--model``/``--models`` take: the config's forecasters, then the
    registry's model types (built with their constructor's defaults)."""
    return _FORECAST_MODELS + _registry_types()


def _types_help() -> str:
    """The help's sentence on the registry's types."""
    from alsprog.models.registry import MODELS

    return (
        "; or a model type of the registry ("
        + ", ".join(MODELS)
        + "), with its defaults and --formula/--event-formula"
    )


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
    if name == "random_forest":
        return RandomForestSlope(
            history_months=args.history_months, random_state=args.seed
        )
    return _registered_model(name, args)


def _registered_model(name: str, args: argparse.Namespace):
    """A model of the registry by its type name: the constructor's defaults, with
    the command's ``--formula`` (the lmm default where a formula is required),
    ``--event-formula``, seed and progress where the constructor takes them."""
    from alsprog.models.registry import MODELS, REQUIRED, config_keys

    cls = MODELS[name]
    keys = {k.name: k for k in config_keys(cls)}
    kw = {}
    formula = getattr(args, "formula", None)
    if "formula" in keys and (formula or keys["formula"].default is REQUIRED):
        kw["formula"] = formula or _default_formula(cls)
    if "event_formula" in keys:
        kw["event_formula"] = args.event_formula
    if "seed" in keys:
        kw["seed"] = args.seed
    if "progress" in keys:
        kw["progress"] = _progress(args)
    return cls(**kw)


def _default_formula(cls: type) -> str:
    """A required formula the command line leaves unset: the model's own default
    for the data dictionary's columns where the class declares one (an MMRM's
    ``alsfrs_r_total ~ visit * arm``), else the lmm default."""
    from alsprog.models._contract import TrajectoryModel

    own = getattr(getattr(cls, "data_defaults", None), "__func__", None)
    if own is None or own is TrajectoryModel.data_defaults.__func__:
        return _LMM_FORMULA
    filled = cls.data_defaults({}, outcome="alsfrs_r_total", time="months")  # type: ignore[attr-defined]
    return str(filled.get("formula") or _LMM_FORMULA)


def _recalibrated(model, args: argparse.Namespace):
    """``model`` wrapped in CalibratedForecaster per ``--recalibrate`` (band/shift)."""
    from alsprog.forecast import CalibratedForecaster

    return CalibratedForecaster(
        model, history_months=args.history_months, shift=args.recalibrate == "shift"
    )
