"""Benchmark: reading a PRO-ACT-sized export with alsprog.data.read_proact.

Usage::

    python benchmarks/proact.py [--quick] [--n-patients 10000] [--alsfrs-rows 80000]
                                [--fvc-rows 50000] [--repeats 3]

A simulated cohort of ``--n-patients`` is written as a PRO-ACT export by
``alsprog.simulate.write_proact`` (monthly visits, follow-up long enough for about
``--alsfrs-rows`` ALSFRS rows), its ALSFRS file trimmed to exactly that many rows
(the latest visits dropped first) and its FVC file to ``--fvc-rows`` rows (a
seeded random subset).  Then, as the median of ``--repeats`` runs:

* ``pandas.read_csv``: the seven files read as text, nothing checked or mapped,
  the least any reader spends (the floor, not a peer doing the same work);
* ``read_proact``: the export parsed, checked cell by cell and mapped;
* ``read_proact + assemble``: and validated into the long table.

The issue's target: read and assembled in at most 5 s on 2 cores.  Rows are also
written to ``benchmarks/results/proact.csv``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _timing import time_median  # noqa: E402

from alsprog.data import assemble, read_proact  # noqa: E402
from alsprog.simulate import simulate_cohort, write_proact  # noqa: E402

TARGET_S = 5.0


def make_export(folder: Path, n_patients: int, alsfrs_rows: int, fvc_rows: int) -> dict:
    months = int(np.ceil(1.6 * alsfrs_rows / n_patients)) + 2
    cohort = simulate_cohort(
        n_patients, 0, months=months, visit_interval_months=1, seed=2026
    )
    export = write_proact(cohort, folder, seed=2026)
    alsfrs = pd.read_csv(export.files["alsfrs"], dtype=str, keep_default_na=False)
    if len(alsfrs) < alsfrs_rows:
        sys.exit(f"the cohort gave {len(alsfrs)} ALSFRS rows, fewer than {alsfrs_rows}")
    delta = alsfrs["ALSFRS_Delta"].astype(int)
    keep = np.sort(np.argsort(delta.to_numpy(), kind="stable")[:alsfrs_rows])
    alsfrs.iloc[keep].to_csv(export.files["alsfrs"], index=False)
    kept = set(
        zip(
            alsfrs["subject_id"].iloc[keep],
            alsfrs["ALSFRS_Delta"].iloc[keep],
            strict=True,
        )
    )
    fvc = pd.read_csv(export.files["fvc"], dtype=str, keep_default_na=False)
    on_visit = [
        (s, d) in kept
        for s, d in zip(
            fvc["subject_id"], fvc["Forced_Vital_Capacity_Delta"], strict=True
        )
    ]
    fvc = fvc[on_visit]
    rng = np.random.default_rng(7)
    pick = np.sort(rng.choice(len(fvc), size=min(fvc_rows, len(fvc)), replace=False))
    fvc.iloc[pick].to_csv(export.files["fvc"], index=False)
    # a subject left without visits after trimming stays in the other files: the
    # reader leaves it out and counts it, as in a real export
    return {k: Path(v) for k, v in export.files.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 patients, 1 repeat")
    ap.add_argument("--n-patients", type=int, default=10_000)
    ap.add_argument("--alsfrs-rows", type=int, default=80_000)
    ap.add_argument("--fvc-rows", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if a.quick:
        a.n_patients, a.alsfrs_rows, a.fvc_rows, a.repeats = 1000, 8000, 5000, 1
    with tempfile.TemporaryDirectory(prefix="alsprog-proact-bench-") as tmp:
        folder = Path(tmp)
        files = make_export(folder, a.n_patients, a.alsfrs_rows, a.fvc_rows)
        sizes = {k: sum(1 for _ in open(p)) - 1 for k, p in files.items()}
        cohort = read_proact(folder)  # warm-up, and the counts shown
        long = assemble(cohort.visits, cohort.subjects, today="2026-12-01")
        print(
            f"export: {sizes['alsfrs']:,} ALSFRS rows, {sizes['fvc']:,} FVC rows, "
            f"{sizes['demographics']:,} subjects; read: {len(cohort.subjects):,} "
            f"subjects with visits, {len(long):,} visit rows"
        )

        def floor() -> None:
            for p in files.values():
                pd.read_csv(p, dtype=str)

        def read() -> None:
            read_proact(folder)

        def read_assemble() -> None:
            c = read_proact(folder)
            assemble(c.visits, c.subjects, today="2026-12-01")

        t_floor = time_median(floor, a.repeats)
        t_read = time_median(read, a.repeats)
        t_all = time_median(read_assemble, a.repeats)
    rows = [
        ("pandas.read_csv (floor)", t_floor),
        ("read_proact", t_read),
        ("read_proact + assemble", t_all),
    ]
    print(f"{'step':<26}{'seconds':>9}{'x floor':>9}")
    for name, t in rows:
        print(f"{name:<26}{t:>9.2f}{t / t_floor:>9.1f}")
    verdict = "meets" if t_all <= TARGET_S else "MISSES"
    print(f"read + assemble {t_all:.2f} s {verdict} the {TARGET_S:g} s target")
    out = ROOT / "benchmarks" / "results" / "proact.csv"
    out.parent.mkdir(exist_ok=True)
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "seconds", "alsfrs_rows", "fvc_rows", "patients"])
        for name, t in rows:
            w.writerow([name, f"{t:.3f}", sizes["alsfrs"], sizes["fvc"], a.n_patients])


if __name__ == "__main__":
    main()
