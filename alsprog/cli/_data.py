"""``alsprog simulate``, ``validate`` and ``assemble``: the data commands.

Owns: their options and handlers (printing, exit status 1 on validation problems).
Leaves: simulation to :mod:`alsprog.simulate`, reading and checking tables to
:mod:`alsprog.data`, output folders to :mod:`alsprog._io`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from alsprog.cli._options import (
    _out_folder_options,
    _rename_option,
    _renames,
    _seed_option,
)
from alsprog.cli._shared import _progress, _stage
from alsprog.errors import DataValidationError

__all__ = [
    "add_assemble_parser",
    "add_simulate_parser",
    "add_validate_parser",
    "cmd_assemble",
    "cmd_simulate",
    "cmd_validate",
]


def add_simulate_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog simulate``: a synthetic cohort's tables (and NIfTI maps)."""
    p = sub.add_parser(
        "simulate",
        help="simulate a synthetic ALS cohort",
        description="Simulate a realistic synthetic ALS cohort and write "
        "its subjects, visits, imaging and truth tables.",
    )
    _out_folder_options(p)
    p.add_argument("--n-patients", type=int, default=200, help="ALS patients (200)")
    p.add_argument("--n-controls", type=int, default=0, help="healthy controls (0)")
    p.add_argument("--months", type=int, default=18, help="follow-up months (18)")
    _seed_option(p)
    p.add_argument(
        "--nifti",
        action="store_true",
        help="also write NIfTI feature maps and an atlas (BIDS derivatives)",
    )
    p.add_argument(
        "--format",
        choices=("csv", "parquet", "proact"),
        default="csv",
        help="table format (csv); proact: the patients as a PRO-ACT export "
        "(PROACT_ALSFRS.csv, ...) for `alsprog import proact`",
    )
    p.set_defaults(handler=cmd_simulate)


def _write_inputs(cohort, out: Path, *, fmt: str) -> list[Path]:
    from alsprog.data import write_table

    written = []
    for name in ("subjects", "visits", "imaging", "truth"):
        table = getattr(cohort, name)
        if name == "imaging" and table.empty:
            continue
        written.append(write_table(table, out / f"{name}.{fmt}"))
    return written


def cmd_simulate(args: argparse.Namespace) -> int:
    from alsprog._io import atomic_dir, check_out_folder
    from alsprog.simulate import simulate_cohort, write_nifti

    out = Path(args.out)
    check_out_folder(out, force=args.force)  # before any work
    t0 = time.perf_counter()
    cohort = simulate_cohort(
        args.n_patients, n_controls=args.n_controls, months=args.months, seed=args.seed
    )
    command = (
        f"alsprog simulate --n-patients {args.n_patients} --n-controls "
        f"{args.n_controls} --months {args.months} --seed {args.seed} --format "
        f"{args.format}" + (" --nifti" if args.nifti else "")
    )  # recorded in the folder's manifest
    with atomic_dir(out, command=command, force=args.force) as tmp:
        if args.format == "proact":
            from alsprog.simulate import write_proact

            export = write_proact(cohort, tmp, seed=args.seed)
            files = sorted(export.files.values())
        else:
            files = _write_inputs(cohort, tmp, fmt=args.format)
        if args.nifti:
            from alsprog.simulate._nifti import nifti_size

            n_maps, n_bytes = nifti_size(cohort)  # said before anything is written
            _stage(
                args,
                f"writing {n_maps} NIfTI maps (FA, MD and thickness of "
                f"{len(cohort.imaging)} imaging sessions) and an atlas, about "
                f"{n_bytes / 1e6:.0f} MB, into {out / 'derivatives'}",
            )
            write_nifti(
                cohort, tmp / "derivatives", seed=args.seed, progress=_progress(args)
            )
    n_subj = len(cohort.subjects)
    print(
        f"simulated {n_subj} subjects ({args.n_patients} ALS, {args.n_controls} "
        f"controls), {len(cohort.visits)} visits, {len(cohort.imaging)} imaging "
        f"sessions in {time.perf_counter() - t0:.1f} s (seed {args.seed})"
    )
    for f in files:
        print(f"  {out / f.name}")
    if args.nifti:
        written = [p for p in (out / "derivatives").rglob("*") if p.is_file()]
        n_maps = sum(p.name.endswith(".nii.gz") for p in written) - 1  # the atlas
        mb = sum(p.stat().st_size for p in written) / 1e6
        print(
            f"  {out / 'derivatives'} (BIDS derivatives + atlas: {n_maps} NIfTI maps, "
            f"{mb:.1f} MB)"
        )
    return 0


def add_validate_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog validate``: tables checked against the data dictionary."""
    p = sub.add_parser(
        "validate",
        help="check tables against the data dictionary",
        description="Check visits, subjects, imaging or long-format "
        "tables against the data dictionary; given a visits and a "
        "subjects table, also check them against each other. Prints "
        "every problem; exit status 1 if there is any.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="CSV/TSV or Parquet files")
    p.add_argument(
        "--kind",
        choices=("visits", "subjects", "imaging", "long"),
        default=None,
        help="table kind (guessed from the columns)",
    )
    p.add_argument(
        "--window-days",
        type=float,
        default=45,
        help="imaging-to-visit matching window in days (45)",
    )
    _rename_option(p)
    p.set_defaults(handler=cmd_validate)


def _columns_line(columns: Sequence[str], limit: int = 30) -> str:
    shown = ", ".join(columns[:limit])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > limit else "")


def _explain_kind(path: str, args: argparse.Namespace, rename) -> None:
    """Print how a failed table was read: the kind (and why) and its columns."""
    from alsprog.data._read import guess_kind, header_columns

    cols = header_columns(path, rename=rename)
    if cols is None:
        return
    if args.kind is None:
        kind, why = guess_kind(cols)
        print(
            f"{path}: read as a {kind} table, guessed from its columns ({why}); "
            "--kind visits|subjects|imaging|long chooses another",
            file=sys.stderr,
        )
    else:
        print(f"{path}: read as a {args.kind} table (--kind)", file=sys.stderr)
    print(f"  columns found: {_columns_line(cols)}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from alsprog.data import assemble
    from alsprog.data._read import read_table

    rename = _renames(args)
    errors: list[DataValidationError] = []
    tables: dict[str, str] = {}
    missing_column = False
    for path in args.files:
        try:
            df, kind = read_table(path, kind=args.kind, rename=rename)
        except DataValidationError as exc:
            errors.append(exc)
            _explain_kind(path, args, rename)
            print(str(exc), file=sys.stderr)
            missing_column |= any(p.rule == "required_column" for p in exc.problem_list)
            continue
        print(f"ok: {path} ({kind}, {len(df)} rows)")
        if kind in ("visits", "subjects", "imaging") and kind not in tables:
            tables[kind] = path
    if not errors and "visits" in tables and "subjects" in tables:
        try:
            assemble(  # its warnings are alsprog's: printed once each by main
                tables["visits"],
                tables["subjects"],
                tables.get("imaging"),
                window_days=args.window_days,
                rename=rename,
            )
            print(
                "ok: tables agree with each other (subjects, visits"
                + (", imaging" if "imaging" in tables else "")
                + ")"
            )
        except DataValidationError as exc:
            errors.append(exc)
            print(str(exc), file=sys.stderr)
    if errors:
        if missing_column:
            print(
                "hint: a column the dictionary requires under another name in your "
                "file? map it: --rename YOURS=subject_id (or [data] rename in a run "
                "config)",
                file=sys.stderr,
            )
        n = sum(len(e.problem_list) for e in errors)
        print(f"alsprog: {n} problem{'s' if n != 1 else ''} found", file=sys.stderr)
        return 1
    return 0


def add_assemble_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog assemble``: visits + subjects (+ imaging) -> the long table."""
    p = sub.add_parser(
        "assemble",
        help="visits + subjects (+ imaging) -> the long table the other commands read",
        description="Check the visits, subjects and (optional) imaging tables together "
        "and write the long table (one row per subject x visit: time axes, ΔFS, "
        "subject columns, imaging joined to the nearest visit) that `alsprog "
        "forecast`, `backtest`, `classify` and `power --from-model` read.",
    )
    p.add_argument("--visits", required=True, help="visits table (CSV/TSV/Parquet)")
    p.add_argument("--subjects", required=True, help="subjects table")
    p.add_argument(
        "--imaging", default=None, help="imaging-features table (`alsprog features`)"
    )
    p.add_argument(
        "--out", required=True, help="the long table to write (.csv or .parquet)"
    )
    p.add_argument(
        "--window-days",
        type=float,
        default=45,
        help="largest scan-to-visit distance when joining imaging, days (45)",
    )
    p.add_argument(
        "--unmatched",
        choices=("warn", "raise"),
        default="warn",
        help="imaging sessions matching no visit: leave them out with a warning, or "
        "stop with an error (warn)",
    )
    _rename_option(p)
    p.set_defaults(handler=cmd_assemble)


def cmd_assemble(args: argparse.Namespace) -> int:
    from alsprog._io import check_out_file
    from alsprog.data import assemble, write_table

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(
            f"--out {args.out!r} must end in .csv or .parquet (the long table's "
            "format)."
        )
    inputs = {
        "--visits": args.visits,
        "--subjects": args.subjects,
        "--imaging": args.imaging,
    }
    check_out_file(out, inputs=inputs)  # before any work
    rename = _renames(args)
    t0 = time.perf_counter()
    table = assemble(
        args.visits,
        args.subjects,
        args.imaging,
        window_days=args.window_days,
        unmatched=args.unmatched,
        rename=rename,
    )
    write_table(table, out)
    per = table.drop_duplicates("subject_id")
    groups = per["group"].astype(str).value_counts() if "group" in per else None
    who = ""
    if groups is not None:
        who = f" ({groups.get('als', 0)} ALS, {groups.get('control', 0)} controls)"
    img = ""
    if args.imaging is not None:
        n_img = int(table["session"].notna().sum()) if "session" in table else 0
        img = (
            f"; {n_img} imaging sessions joined within {args.window_days:g} days, "
            f"{table.attrs.get('n_unmatched_imaging', 0)} left out"
        )
    print(
        f"assembled {len(table)} visits of {len(per)} subjects{who}{img} in "
        f"{time.perf_counter() - t0:.1f} s -> {out}"
    )
    print(
        "  read by: alsprog forecast --train/--history, backtest --data, classify "
        "--table, power --from-model"
    )
    return 0
