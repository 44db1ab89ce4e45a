"""``alsprog demo`` and ``run``: the whole pipeline, on the embedded cohort or a config.

Owns: their options and handlers, the ``[i/n] stage: message`` lines and the
summary of a finished run.
Leaves: the pipeline to :mod:`alsprog.report`.
"""

from __future__ import annotations

import argparse
import sys
import time

from alsprog.cli._options import _out_folder_options, _seed_option
from alsprog.cli._shared import _progress, _stage

__all__ = ["add_demo_parser", "add_run_parser", "cmd_demo", "cmd_run"]


def _stage_printer(args: argparse.Namespace):
    """An ``on_stage`` callback printing ``[i/n] stage: message`` lines to stderr."""
    seen: set[str] = set()

    def on_stage(i: int, n: int, stage: str, message: str) -> None:
        if stage in seen:
            _stage(args, f"      {message}")
        else:
            seen.add(stage)
            _stage(args, f"[{i}/{n}] {stage}: {message}")

    return on_stage


def _print_run(result, seconds: float) -> None:
    timings = ", ".join(f"{k} {v:.0f}" for k, v in result.stage_seconds.items())
    print(
        f"alsprog: {result.n_figures} figures and {len(result.files)} files in "
        f"{seconds:.0f} s ({timings} s)"
    )
    print(f"  report: {result.report}")
    print(f"  repeat: alsprog run {result.out / 'config.toml'}")
    if result.seed is not None:
        print(f"  seed: {result.seed} (run.seed; every step's seed derives from it)")
    for w in result.warnings:  # alsprog's own, once each (also in run.log)
        print(f"alsprog: warning: {w}", file=sys.stderr)
    if result.library_warnings:
        print(
            f"  {len(result.library_warnings)} warning(s) and log record(s) of other "
            f"libraries: see {result.out / 'run.log'}"
        )


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog demo``: the main job on the embedded synthetic cohort."""
    from alsprog.biomarkers import DEFAULT_N_PERMUTATIONS  # light: no scikit-learn

    p = sub.add_parser(
        "demo",
        help="run the main job on the embedded synthetic cohort",
        description="Simulate the embedded synthetic cohort (with NIfTI "
        "volumes) and run the alsprog pipeline on it.",
    )
    _out_folder_options(p)
    p.add_argument("--n-patients", type=int, default=200, help="ALS patients (200)")
    p.add_argument("--n-controls", type=int, default=60, help="healthy controls (60)")
    _seed_option(p)
    p.add_argument("--chains", type=int, default=2, help="Bayesian chains (2)")
    p.add_argument(
        "--draws", type=int, default=500, help="Bayesian draws and tuning steps (500)"
    )
    p.add_argument(
        "--n-sims", type=int, default=200, help="simulated trials per slowing (200)"
    )
    p.add_argument(
        "--n-permutations",
        type=int,
        default=DEFAULT_N_PERMUTATIONS,
        help=f"classifier label permutations ({DEFAULT_N_PERMUTATIONS})",
    )
    p.add_argument("--n-jobs", type=int, default=-1, help="parallel workers (-1: all)")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from alsprog.report import run_demo

    t0 = time.perf_counter()
    result = run_demo(
        args.out,
        n_patients=args.n_patients,
        n_controls=args.n_controls,
        seed=args.seed,
        chains=args.chains,
        draws=args.draws,
        n_sims=args.n_sims,
        n_permutations=args.n_permutations,
        n_jobs=args.n_jobs,
        progress=_progress(args),
        on_stage=_stage_printer(args),
        force=args.force,
    )
    _print_run(result, time.perf_counter() - t0)
    return 0


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog run``: the whole analysis of your own data, from a TOML config."""
    p = sub.add_parser(
        "run",
        help="the whole analysis of your own data, from a TOML config",
        description="Check every input first (all problems listed before anything "
        "is fitted), then extract imaging features, assemble the long table, fit the "
        "models, forecast and backtest, size a trial, evaluate imaging biomarkers and "
        "write tables, figures and a self-contained report.html into one folder. "
        "See the README's config reference.",
    )
    p.add_argument("config", metavar="CONFIG.toml", help="run configuration")
    _out_folder_options(p, default="the config's run.out")
    p.add_argument(
        "--check",
        action="store_true",
        help="only check the config and its inputs; write nothing",
    )
    p.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from alsprog.report import check, run

    if args.check:
        config = check(args.config, args.out, force=args.force)
        print(f"ok: {args.config}: no problems ({len(config.models)} models)")
        return 0
    t0 = time.perf_counter()
    result = run(
        args.config,
        args.out,
        progress=_progress(args),
        on_stage=_stage_printer(args),
        force=args.force,
    )
    _print_run(result, time.perf_counter() - t0)
    return 0
