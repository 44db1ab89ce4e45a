"""``alsprog import``: an export of a public ALS data set -> alsprog's tables.

Owns: ``alsprog import proact FOLDER --out DIR``, which reads an unpacked PRO-ACT
download (never modified) and writes ``visits.csv``, ``subjects.csv``,
``long.csv`` (what ``forecast``, ``backtest`` and ``power --from-model`` read) and
``report.txt`` (what each rule kept, mapped, collapsed and dropped).
Leaves: reading to :func:`alsprog.data.read_proact`, the folder rule to
:mod:`alsprog._io`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from alsprog.cli._options import _out_folder_options

__all__ = ["add_import_parser", "cmd_import"]


def add_import_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog import proact FOLDER --out DIR``."""
    p = sub.add_parser(
        "import",
        help="a PRO-ACT download -> visits, subjects and the long table",
        description="Read an unpacked PRO-ACT export (PROACT_ALSFRS.csv, "
        "PROACT_DEMOGRAPHICS.csv, ... or the older alsfrs.csv, AlsHistory.csv names) "
        "and write alsprog's visits.csv, subjects.csv, long.csv and report.txt into "
        "--out. The export is only read. Every problem of every file is listed with "
        "its file, line, column and value.",
    )
    p.add_argument("source", choices=("proact",), help="the export's format: proact")
    p.add_argument("folder", help="the unpacked export")
    _out_folder_options(p)
    p.add_argument(
        "--conflicts",
        choices=("raise", "drop"),
        default="raise",
        help="differing ALSFRS rows of one subject on one day: stop with an error, or "
        "drop them all (raise)",
    )
    p.add_argument(
        "--today",
        default=None,
        help="date of the plausibility check, YYYY-MM-DD (default: today)",
    )
    p.set_defaults(handler=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from alsprog._io import atomic_dir, check_out_folder
    from alsprog.data import assemble, read_proact, write_table

    out = Path(args.out)
    check_out_folder(out, force=args.force, inputs={"FOLDER": args.folder})
    t0 = time.perf_counter()
    cohort = read_proact(args.folder, conflicts=args.conflicts)
    long = assemble(cohort.visits, cohort.subjects, today=args.today)
    command = f"alsprog import proact {args.folder} --conflicts {args.conflicts}"
    with atomic_dir(out, command=command, force=args.force) as tmp:
        write_table(cohort.visits, tmp / "visits.csv")
        write_table(cohort.subjects, tmp / "subjects.csv")
        write_table(long, tmp / "long.csv")
        (tmp / "report.txt").write_text(str(cohort.report) + "\n", encoding="utf-8")
    r = cohort.report
    print(
        f"imported {r.n_subjects} subjects, {r.n_visits} visits ({r.n_alsfrs_r} "
        f"ALSFRS-R, {r.n_alsfrs_original} original ALSFRS only, {r.n_fvc} FVC) in "
        f"{time.perf_counter() - t0:.1f} s -> {out}"
    )
    for note in r.notes:
        print(f"  {note}")
    print("  long.csv is read by: alsprog forecast, backtest, power --from-model")
    return 0
