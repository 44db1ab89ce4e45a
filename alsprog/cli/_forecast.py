"""``alsprog forecast`` and ``backtest``: forecasting new patients and scoring models.

Owns: their options and handlers.
Leaves: the model names to :mod:`alsprog.cli._models`, forecasting and scoring to
:mod:`alsprog.forecast`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from alsprog.cli._models import (
    _BACKTEST_MODELS,
    _BASELINES,
    _forecast_model,
    _forecast_models,
    _model_name,
    _recalibrated,
    _types_help,
)
from alsprog.cli._options import (
    _fraction,
    _recalibrate_option,
    _rename_option,
    _seed_option,
)
from alsprog.cli._shared import _one_source, _progress, _read_long, _stage

__all__ = ["add_backtest_parser", "add_forecast_parser", "cmd_backtest", "cmd_forecast"]

logger = logging.getLogger("alsprog")


def add_forecast_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog forecast``: new patients' ALSFRS-R from their visits so far."""
    p = sub.add_parser(
        "forecast",
        help="forecast new patients' ALSFRS-R from their visits so far",
        description="Fit a model on the training table's patients, then forecast the "
        "patients in the history table at the given months since their first visit.",
    )
    p.add_argument("--train", required=True, help="long table of training patients")
    p.add_argument("--history", required=True, help="long table: visits so far")
    p.add_argument(
        "--at", type=float, nargs="+", required=True, help="months to forecast"
    )
    p.add_argument("--out", required=True, help="CSV file for the forecasts")
    p.add_argument(
        "--model",
        type=_model_name,
        choices=_forecast_models(),
        default="lmm",
        help="(lmm)" + _types_help(),
    )
    p.add_argument("--formula", default=None, help="model formula (lmm default)")
    p.add_argument(
        "--event-formula",
        default="delta_fs + onset_site",
        help="joint model: covariates of the death/tracheostomy hazard "
        "(delta_fs + onset_site)",
    )
    p.add_argument(
        "--level", type=_fraction("--level"), default=0.9, help="interval level (0.9)"
    )
    p.add_argument("--history-months", type=float, default=3.0, help="(3)")
    _recalibrate_option(p, "the model")
    p.add_argument("--chains", type=int, default=2, help="Bayesian chains (2)")
    p.add_argument("--draws", type=int, default=500, help="Bayesian draws (500)")
    _seed_option(p)
    _rename_option(p)
    p.set_defaults(handler=cmd_forecast)


def cmd_forecast(args: argparse.Namespace) -> int:
    from alsprog._io import atomic_path, check_out_file
    from alsprog.forecast import forecast

    check_out_file(args.out, inputs={"--train": args.train, "--history": args.history})
    train = _read_long(args.train, "--train", args)
    history = _read_long(args.history, "--history", args)
    _stage(args, f"fitting {args.model} on {train['subject_id'].nunique()} patients")
    model = _forecast_model(args.model, args)
    if args.recalibrate != "none":
        model = _recalibrated(model, args)
    model = model.fit(train)
    f = forecast(model, history, args.at, level=args.level, seed=args.seed)
    out = Path(args.out)
    with atomic_path(out) as tmp:
        f.to_csv(tmp, index=False)
    print(
        f"{len(f)} forecasts for {f['subject_id'].nunique()} patients at months "
        f"{', '.join(f'{t:g}' for t in args.at)} -> {out} (seed {args.seed})"
    )
    logger.info("alsprog forecast: seed %d, model %s -> %s", args.seed, args.model, out)
    return 0


def add_backtest_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog backtest``: forecasters scored on held-out patients."""
    p = sub.add_parser(
        "backtest",
        help="score forecasters on held-out patients",
        description="Split patients, fit each model on the training part, forecast "
        "the others from their first months and score them (RMSE, coverage, CRPS, "
        "DREAM slope RMSD).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", default=None, help="assembled long table")
    src.add_argument(
        "--simulate", type=int, default=None, metavar="N", help="simulate N patients"
    )
    p.add_argument(
        "--models",
        nargs="+",
        type=_model_name,
        choices=_forecast_models(),
        default=list(_BACKTEST_MODELS),
        help=f"forecasters ({' '.join(_BACKTEST_MODELS)})" + _types_help(),
    )
    p.add_argument("--formula", default=None, help="formula of the lmm/bayes models")
    p.add_argument(
        "--event-formula",
        default="delta_fs + onset_site",
        help="joint model: covariates of the event hazard (delta_fs + onset_site)",
    )
    p.add_argument(
        "--protocol",
        choices=("horizons", "dream"),
        default="horizons",
        help="horizons: score at --horizons; dream: the DREAM challenge (months 0-3 "
        "in, the slope from the first visit after month 3 to the last up to month "
        "12 out, RMSD and Pearson r beside the training-mean and zero references; "
        "Kuffner et al. 2015) (horizons)",
    )
    p.add_argument("--history-months", type=float, default=3.0, help="(3)")
    p.add_argument("--horizons", type=float, nargs="+", default=[6.0, 12.0])
    p.add_argument(
        "--test-fraction",
        type=_fraction("--test-fraction"),
        default=0.2,
        help="fraction of patients held out (0.2)",
    )
    _recalibrate_option(p, "also each non-baseline model (as NAME_recalibrated)")
    p.add_argument(
        "--level", type=_fraction("--level"), default=0.9, help="interval level (0.9)"
    )
    p.add_argument("--chains", type=int, default=2, help="Bayesian chains (2)")
    p.add_argument("--draws", type=int, default=500, help="Bayesian draws (500)")
    _seed_option(p)
    p.add_argument("--out", default=None, help="CSV file for the table")
    _rename_option(p)
    p.set_defaults(handler=cmd_backtest)


def cmd_backtest(args: argparse.Namespace) -> int:
    from alsprog._io import atomic_path, check_out_file
    from alsprog.forecast import backtest

    if not _one_source(args):
        return 2
    if args.out:
        check_out_file(args.out, inputs={"--data": args.data})
    if args.data is not None:
        data = _read_long(args.data, "--data", args)
    else:
        from alsprog.simulate import simulate_cohort

        data = simulate_cohort(args.simulate, seed=args.seed)
    models = {name: _forecast_model(name, args) for name in args.models}
    if args.recalibrate != "none":
        for name in [n for n in args.models if n not in _BASELINES]:
            models[f"{name}_recalibrated"] = _recalibrated(models[name], args)
    res = backtest(
        data,
        models,
        history_months=args.history_months,
        horizons=args.horizons,
        test_fraction=args.test_fraction,
        level=args.level,
        seed=args.seed,
        progress=_progress(args),
        protocol=args.protocol,
    )
    if args.out:
        with atomic_path(Path(args.out)) as tmp:
            res.to_csv(tmp, index=False)
    cols = ["model", "horizon", "n", "rmse", "bias", "coverage", "crps", "slope_rmsd"]
    if args.protocol == "dream":
        cols = ["model", "n", "rmsd", "r", "mean_observed", "mean_predicted"]
        print(
            f"DREAM protocol: {res.attrs['n_scored']} of {res.attrs['n_test']} test "
            "patients have a visit after month 3 and a later one up to month 12"
        )
    print(res[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"seed {args.seed}" + (f"; table in {args.out}" if args.out else ""))
    logger.info("alsprog backtest: seed %d, models %s", args.seed, args.models)
    return 0
