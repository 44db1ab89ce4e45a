"""``alsprog power --endpoint ... / --from-cohort ...``: sizes by simulating trials.

Owns: the simulation options of ``alsprog power`` (endpoints, source, hazard ratio,
horizon, threshold, trials per size, seed, type I error) and their handler: the
patients per arm for the target power of each endpoint and slowing, from the
nonlinear course, the design's linear model or a historical cohort table.
Leaves: the simulations to :func:`alsprog.design.simulated_sample_size`; the
analytic path and the common options to :mod:`alsprog.cli._power`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from alsprog.cli._shared import _read_long

__all__ = ["add_simulation_options", "simulated_power"]

ENDPOINTS = ("slope", "mmrm", "cafs", "joint_rank", "win_ratio", "survival")


def add_simulation_options(p: argparse.ArgumentParser) -> None:
    """The options that switch ``alsprog power`` to simulated trials."""
    g = p.add_argument_group(
        "simulated trials (any of --endpoint, --from-cohort, --source)",
        "Patients per arm found by simulating whole trials and analysing each as "
        "planned; the table gives the size, its 95% Monte Carlo interval and, with "
        "--type-one-error, the rejection rate with no treatment effect.",
    )
    g.add_argument(
        "--endpoint",
        nargs="+",
        choices=ENDPOINTS,
        default=None,
        help="endpoint(s): slope (random-slope model), mmrm (change at the last "
        "visit), cafs (combined assessment of function and survival), joint_rank, "
        "win_ratio (survival then ALSFRS-R change), survival (log-rank)",
    )
    g.add_argument(
        "--from-cohort",
        default=None,
        metavar="TABLE",
        help="a historical long-format table (e.g. PRO-ACT placebo arms): its "
        "patients are resampled with their own visits and survival",
    )
    g.add_argument(
        "--cohort-arm",
        nargs="+",
        default=None,
        metavar="VALUE",
        help="keep only the --from-cohort rows whose `arm` is one of these (placebo)",
    )
    g.add_argument(
        "--source",
        choices=("course", "linear"),
        default=None,
        help="without --from-cohort: alsprog's nonlinear ALS course (the default) "
        "or the linear mixed model of the variance options (the default with "
        "--from-model)",
    )
    g.add_argument(
        "--hazard-ratio",
        type=float,
        default=1.0,
        help="treated:control death hazard ratio (1: no survival effect)",
    )
    g.add_argument(
        "--horizon-months",
        type=float,
        default=None,
        help="CAFS / win-ratio horizon (the last visit)",
    )
    g.add_argument(
        "--threshold",
        type=float,
        default=0.0,
        help="win ratio: ALSFRS-R change difference that counts as a win (0)",
    )
    g.add_argument(
        "--death-hazard",
        type=float,
        default=0.0,
        help="--source linear: yearly death probability at the mean progression",
    )
    g.add_argument(
        "--n-sims", type=int, default=400, help="trials per simulated size (400)"
    )
    g.add_argument("--seed", type=int, default=1, help="random seed (1)")
    g.add_argument(
        "--type-one-error",
        action="store_true",
        help="also simulate trials with no treatment effect at the size found",
    )
    g.add_argument("--n-jobs", type=int, default=-1, help="parallel workers (-1: all)")
    g.add_argument(
        "--looks",
        type=int,
        default=None,
        help="group-sequential: number of equally spaced looks (O'Brien-Fleming "
        "alpha spending, one-sided alpha/2); simulated trials stop at them",
    )
    s = p.add_argument_group(
        "survival by formula (--endpoint survival with --control-median-months)",
        "Events and patients for the log-rank test as R's rpact "
        "getSampleSizeSurvival plans them (exponential survival, uniform accrual).",
    )
    s.add_argument(
        "--control-median-months",
        type=float,
        default=None,
        help="median months to death or tracheostomy in the control arm",
    )
    s.add_argument("--accrual-months", type=float, default=12.0, help="accrual (12)")
    s.add_argument(
        "--follow-up-months",
        type=float,
        default=12.0,
        help="follow-up after the last patient is randomised (12)",
    )
    s.add_argument(
        "--dropout-rate",
        type=float,
        default=0.0,
        help="probability of dropping out within 12 months (0)",
    )


def wants_simulation(args: argparse.Namespace) -> bool:
    """Whether the options ask for simulated trials (or the survival formula)."""
    return bool(
        args.endpoint
        or args.from_cohort
        or args.source
        or args.control_median_months is not None
    )


def _looks(args: argparse.Namespace) -> Any:
    if args.looks is None or args.looks == 1:
        return None
    from alsprog.design import group_sequential

    return group_sequential(args.looks, alpha=args.alpha / 2, beta=1 - args.power)


def survival_by_formula(args: argparse.Namespace) -> int:
    """``--endpoint survival --control-median-months M``: rpact's events and
    patients (Schoenfeld) for the hazard ratio."""
    import pandas as pd

    from alsprog.design import sample_size_survival

    if args.endpoint not in (None, ["survival"]):
        from alsprog.errors import ModelSpecificationError

        raise ModelSpecificationError(
            "--control-median-months sizes the survival endpoint by formula; use it "
            "with --endpoint survival only."
        )
    s = sample_size_survival(
        args.hazard_ratio,
        accrual_months=args.accrual_months,
        follow_up_months=args.follow_up_months,
        control_median_months=args.control_median_months,
        alpha=args.alpha / 2,
        power=args.power,
        allocation_ratio=args.allocation_ratio,
        dropout_rate=args.dropout_rate,
        design=_looks(args),
    )
    table = pd.DataFrame(
        [
            {
                "hazard_ratio": args.hazard_ratio,
                "events": s.events_ceil,
                "patients": s.patients_ceil,
                "patients_treatment": s.patients_treatment_ceil,
                "patients_control": s.patients_control_ceil,
                "event_probability": round(s.event_probability, 4),
                "study_months": round(float(s.analysis_times[-1]), 2),
            }
        ]
    )
    if args.csv:
        print(table.to_csv(index=False), end="")
        return 0
    print(
        f"log-rank test (Schoenfeld, as rpact): power {args.power:g}, two-sided alpha "
        f"{args.alpha:g}; control median {args.control_median_months:g} months, "
        f"accrual {args.accrual_months:g}, follow-up {args.follow_up_months:g}"
        + (f", {args.looks} looks (O'Brien-Fleming)" if _looks(args) else "")
    )
    print(table.to_string(index=False))
    return 0


def _source(args: argparse.Namespace, design: Any) -> Any:
    if args.from_cohort:
        from alsprog.design import HistoricalCohort

        table = _read_long(
            args.from_cohort,
            "--from-cohort",
            args,
            needed=("subject_id", "months", args.outcome),
        )
        return HistoricalCohort.from_table(
            table,
            visit_months=design.visit_months,
            outcome=args.outcome,
            arm="arm" if args.cohort_arm else None,
            arm_values=args.cohort_arm or (),
            source=str(args.from_cohort),
        )
    if args.source == "linear" or (args.source is None and args.from_model):
        return None  # the linear mixed model (fitted with --from-model)
    return "course"


def simulated_power(args: argparse.Namespace, design: Any) -> int:
    """Print (or write as CSV) the simulated size of each endpoint and slowing."""
    import pandas as pd

    from alsprog.design import simulated_sample_size

    if args.control_median_months is not None:
        return survival_by_formula(args)
    source = _source(args, design)
    if source is not None and not isinstance(source, str):
        print(f"historical cohort {args.from_cohort}: {source!r}")
    endpoints = args.endpoint or ["slope"]
    rows = []
    extra: dict[str, Any] = {}
    if source is None and args.death_hazard:
        extra["death_hazard"] = args.death_hazard
    for slowing in args.slowing:
        d = replace(design, slowing=float(slowing))
        for ep in endpoints:
            r = simulated_sample_size(
                d,
                endpoint=ep,
                n_sims=args.n_sims,
                type_one_error=args.type_one_error,
                seed=args.seed,
                n_jobs=args.n_jobs,
                source=source,
                hazard_ratio=args.hazard_ratio,
                horizon_months=args.horizon_months,
                threshold=args.threshold,
                looks=_looks(args),
                **extra,
            )
            row = {
                "endpoint": ep,
                "slowing": float(slowing),
                "hazard_ratio": args.hazard_ratio,
                "n_per_arm": r.n_per_arm,
                "ci_low": round(r.ci[0], 1),
                "ci_high": round(r.ci[1], 1),
                "source": r.source,
            }
            if args.type_one_error:
                row["type_one_error"] = r.type_one_error
                row["type_one_error_se"] = r.type_one_error_se
            rows.append(row)
    table = pd.DataFrame(rows)
    if args.csv:
        print(table.to_csv(index=False), end="")
        return 0
    print(
        f"patients per arm for power {args.power:g} (two-sided alpha {args.alpha:g}) "
        f"by simulating {args.n_sims} trials at each of four sizes; visits at months "
        f"{', '.join(f'{m:g}' for m in design.visit_months)}"
    )
    print(table.to_string(index=False))
    return 0
