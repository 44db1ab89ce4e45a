"""``alsprog survival``: fit a survival model, score it on held-out patients, group.

Owns: the command's options and handler.
Leaves: the model to :class:`alsprog.models.SurvivalModel`, the scores to
:func:`alsprog.forecast.backtest_survival`, the groups to
:func:`alsprog.models.risk_groups`.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

from alsprog.cli._options import _fraction, _rename_option, _seed_option
from alsprog.cli._shared import _one_source, _read_long, _stage

__all__: list[str] = []

logger = logging.getLogger(__name__)


def add_survival_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog survival``: Royston-Parmar or Cox survival, scored and grouped."""
    from alsprog.report._schema import DEFAULT_SURVIVAL_FORMULA

    p = sub.add_parser(
        "survival",
        help="time to death/tracheostomy: fit, score on held-out patients, risk groups",
        description="Fit a survival model (Royston-Parmar as the ENCALS model, or "
        "Cox) to all patients and print its hazard ratios and risk groups; then fit "
        "it and the other method on part of the patients and score both on the "
        "others (C-index, time-dependent AUC, Brier, calibration slope).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", default=None, help="assembled long table")
    src.add_argument(
        "--simulate", type=int, default=None, metavar="N", help="simulate N patients"
    )
    p.add_argument(
        "--formula",
        default=DEFAULT_SURVIVAL_FORMULA,
        help=f"R's Surv(time, event) ~ covariates ({DEFAULT_SURVIVAL_FORMULA})",
    )
    p.add_argument("--method", choices=("flexible", "cox"), default="flexible")
    p.add_argument("--scale", choices=("hazard", "odds", "normal"), default="hazard")
    p.add_argument("--df", type=int, default=3, help="spline degrees of freedom (3)")
    p.add_argument(
        "--time-origin",
        choices=("onset", "baseline"),
        default="onset",
        help="onset: time from symptom onset with delayed entry at the first visit "
        "(onset)",
    )
    p.add_argument(
        "--times",
        type=float,
        nargs="+",
        default=[6.0, 12.0, 18.0, 24.0],
        help="score horizons, months from the first visit (6 12 18 24)",
    )
    p.add_argument("--n-groups", type=int, default=5, help="risk groups (5)")
    p.add_argument(
        "--test-fraction",
        type=_fraction("--test-fraction"),
        default=0.3,
        help="fraction of patients held out (0.3)",
    )
    _seed_option(p)
    p.add_argument("--out", default=None, help="CSV file for the scores")
    _rename_option(p)
    p.set_defaults(handler=cmd_survival)


def cmd_survival(args: argparse.Namespace) -> int:
    from alsprog._io import atomic_path, check_out_file
    from alsprog.errors import DataWarning
    from alsprog.forecast import backtest_survival
    from alsprog.models import SurvivalModel, risk_groups

    if not _one_source(args):
        return 2
    if args.out:
        check_out_file(args.out, inputs={"--data": args.data})

    def model(method: str) -> SurvivalModel:
        return SurvivalModel(
            args.formula,
            method=method,  # type: ignore[arg-type]
            scale=args.scale if method == "flexible" else "hazard",
            df=args.df,
            time_origin=args.time_origin,
        )

    est = model(args.method)
    est.required_columns()  # the formula is checked before any data is read
    if args.data is not None:
        table = _read_long(args.data, "--data", args)
    else:
        from alsprog.data import assemble
        from alsprog.simulate import simulate_cohort

        c = simulate_cohort(args.simulate, seed=args.seed)
        table = assemble(c.visits, c.subjects)
    _stage(args, f"fitting {est.describe()}")
    est.fit(table)
    print(est.summary())
    groups = risk_groups(est, table, n_groups=args.n_groups)
    print("\nrisk groups:")
    print(groups.table.to_string(float_format=lambda v: f"{v:.3g}"))
    other = "cox" if args.method == "flexible" else "flexible"
    _stage(args, f"scoring {args.method} and {other} on held-out patients")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # shown by the fit above
        res = backtest_survival(
            table,
            {args.method: model(args.method), other: model(other)},
            times=args.times,
            test_fraction=args.test_fraction,
            n_groups=args.n_groups,
            seed=args.seed,
        )
    cols = ["model", "horizon", "n", "harrell_c", "auc", "brier", "brier_km"]
    cols += ["calibration_slope"]
    print("\nscores on held-out patients:")
    print(res.scores[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        with atomic_path(Path(args.out)) as tmp:
            res.scores.to_csv(tmp, index=False)
    print(f"seed {args.seed}" + (f"; scores in {args.out}" if args.out else ""))
    logger.info("alsprog survival: seed %d, %s", args.seed, est.describe())
    return 0
