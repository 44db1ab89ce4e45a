"""``alsprog power``: sample size for slowing ALSFRS-R decline.

Owns: its options and handler (a design from the options, a saved mixed model or a
historical long table); with ``--endpoint``, ``--from-cohort`` or ``--source`` the
sizes come from simulated trials (:mod:`alsprog.cli._power_sim`).
Leaves: the formulas to :mod:`alsprog.design`, fitting to :mod:`alsprog.models`.
"""

from __future__ import annotations

import argparse
import sys

from alsprog.cli._options import _fraction, _rename_option
from alsprog.cli._power_sim import (
    add_simulation_options,
    simulated_power,
    wants_simulation,
)
from alsprog.cli._shared import _read_long

__all__ = ["add_power_parser", "cmd_power"]


def add_power_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog power``: patients per arm to detect a slowing."""
    p = sub.add_parser(
        "power",
        help="sample size for slowing ALSFRS-R decline",
        description="Patients per arm to detect a slowing of the mean ALSFRS-R slope "
        "with a random-intercept-and-slope mixed model (Diggle 2002, Liu & Liang "
        "1997, Edland 2009; as R's longpower).",
    )
    p.add_argument(
        "--from-model",
        default=None,
        metavar="FILE",
        help="a model saved by LinearMixedModel.save, or a historical long-format "
        "table (a random-slope mixed model is fitted to it): variance components "
        "and mean slope",
    )
    p.add_argument(
        "--outcome", default="alsfrs_r_total", help="outcome for --from-model"
    )
    p.add_argument("--time", default="months", help="time column (months)")
    p.add_argument(
        "--slowing",
        type=_fraction("--slowing", high_closed=True),
        nargs="+",
        default=None,
        help="fractional slowing(s), e.g. 0.25 0.3 0.5 (required, except for the "
        "survival formula)",
    )
    p.add_argument(
        "--mean-slope",
        type=float,
        default=-0.9,
        help="control-arm mean slope, points/month (-0.9)",
    )
    p.add_argument(
        "--months",
        "--visit-months",
        dest="months",
        type=float,
        nargs="+",
        default=[0, 3, 6, 9, 12],
        help="visit times in months (0 3 6 9 12); the config's design.visit_months",
    )
    p.add_argument(
        "--sig2-int",
        type=float,
        default=0.0,
        help="random-intercept variance (0; cancels without attrition)",
    )
    p.add_argument(
        "--sig2-slope",
        type=float,
        default=0.36,
        help="random-slope variance (0.36 = SD 0.6)",
    )
    p.add_argument(
        "--cov-int-slope",
        type=float,
        default=0.0,
        help="intercept-slope covariance (0)",
    )
    p.add_argument("--sig2-e", type=float, default=4.0, help="residual variance (4)")
    p.add_argument(
        "--method",
        "--methods",
        dest="method",
        nargs="+",
        default=["edland"],
        choices=("edland", "diggle", "liu_liang"),
        help="formula(s) (edland); the config's design.methods",
    )
    p.add_argument(
        "--power", type=_fraction("--power"), default=0.8, help="target power (0.8)"
    )
    p.add_argument(
        "--alpha", type=_fraction("--alpha"), default=0.05, help="type I error (0.05)"
    )
    p.add_argument(
        "--alternative", choices=("two-sided", "one-sided"), default="two-sided"
    )
    p.add_argument(
        "--allocation-ratio",
        type=float,
        default=1.0,
        help="treatment:control allocation (1)",
    )
    p.add_argument(
        "--retention",
        type=_fraction("--retention", high_closed=True),
        nargs="+",
        default=None,
        help="fraction still observed at each visit, 1 first",
    )
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    _rename_option(p)
    add_simulation_options(p)
    p.set_defaults(handler=cmd_power)


def cmd_power(args: argparse.Namespace) -> int:
    from alsprog.design import TrialDesign

    if args.slowing is None and args.control_median_months is None:
        print(
            "alsprog power: error: the following arguments are required: --slowing",
            file=sys.stderr,
        )
        return 2
    if args.slowing is None:
        args.slowing = [0.25]  # not used by the survival formula

    common = dict(
        alpha=args.alpha,
        power=args.power,
        allocation_ratio=args.allocation_ratio,
        retention=None if args.retention is None else tuple(args.retention),
    )
    if args.from_model:
        from alsprog.errors import SavedModelError
        from alsprog.models import LinearMixedModel
        from alsprog.models._file_kind import sniff_file

        kind = sniff_file(args.from_model)  # from the first bytes, not the suffix
        if kind.kind == "zip":  # a LinearMixedModel.save() file, checked whole
            model = LinearMixedModel.load(args.from_model)
            formula = model.formula
        elif kind.kind not in ("text", "parquet", "gzip", "missing", "not_file"):
            raise SavedModelError(
                f"{args.from_model}: it is {kind.description}; --from-model takes a "
                "mixed model saved by LinearMixedModel.save (.npz) or a long-format "
                "table (.csv, .tsv, .parquet)."
            )
        else:  # a historical table: fit the random-slope model to it
            data = _read_long(
                args.from_model,
                "--from-model",
                args,
                needed=("subject_id", args.outcome, args.time),
            )
            formula = f"{args.outcome} ~ {args.time} + ({args.time} | subject_id)"
            model = LinearMixedModel(formula, time=args.time).fit(data)
        d = TrialDesign.from_model(model, args.months, time=args.time, **common)
        args.mean_slope = d.mean_slope
        print(
            f"from {args.from_model}: {formula} on {model.n_groups_} subjects: "
            f"mean slope {d.mean_slope:.4g}, sig2_int {d.sig2_int:.4g}, sig2_slope "
            f"{d.sig2_slope:.4g}, cov {d.cov_int_slope:.4g}, sig2_e {d.sig2_e:.4g}"
        )
    else:
        d = TrialDesign(
            visit_months=tuple(args.months),
            mean_slope=args.mean_slope,
            sig2_int=args.sig2_int,
            sig2_slope=args.sig2_slope,
            cov_int_slope=args.cov_int_slope,
            sig2_e=args.sig2_e,
            **common,
        )
    if wants_simulation(args):
        if args.alternative != "two-sided":
            from alsprog.errors import ModelSpecificationError

            raise ModelSpecificationError(
                "simulated trials are tested two-sided; drop --alternative one-sided."
            )
        return simulated_power(args, d)
    table = d.sample_size_table(
        args.slowing, methods=args.method, alternative=args.alternative
    )
    if args.csv:
        print(table.to_csv(index=False), end="")
        return 0
    print(
        f"sample size per arm for slowing a mean slope of {args.mean_slope:g} "
        f"points/month; visits at months {', '.join(f'{m:g}' for m in args.months)}; "
        f"power {args.power:g}, alpha {args.alpha:g} ({args.alternative})"
    )
    shown = table.assign(
        slowing=(table["slowing"] * 100).map(lambda v: f"{v:g}%"),
        delta=table["delta"].map(lambda v: f"{v:.4g}"),
        n_per_arm=table["n_per_arm"].map(lambda v: f"{v:.2f}"),
    )[["method", "slowing", "delta", "n_per_arm", "n_per_arm_ceil", "n_total_ceil"]]
    print(shown.to_string(index=False))
    return 0
