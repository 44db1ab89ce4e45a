"""Simulate a cohort, write it as files, read it back and assemble the long table.

Run: ``python examples/01_data_simulate_and_assemble.py [OUT_DIR]``
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alsprog.data import assemble, read_subjects, read_visits, write_table
from alsprog.simulate import simulate_cohort


def main(out: Path) -> None:
    cohort = simulate_cohort(60, n_controls=20, months=12, seed=11)
    print(cohort)

    # the three input tables as a clinic or imaging core would export them
    for name in ("subjects", "visits", "imaging"):
        write_table(getattr(cohort, name), out / f"{name}.csv")

    visits = read_visits(out / "visits.csv")  # validated against the data dictionary
    subjects = read_subjects(out / "subjects.csv")
    table = assemble(visits, subjects, out / "imaging.csv", window_days=45)
    write_table(table, out / "table.parquet")

    als = table[table["group"] == "als"]
    first = als.drop_duplicates("subject_id")
    print(f"long table: {len(table)} rows, {table['subject_id'].nunique()} subjects")
    print(
        f"baseline ALSFRS-R: {first['alsfrs_r_total'].mean():.1f} "
        f"± {first['alsfrs_r_total'].std():.1f}"
    )
    print(f"ΔFS (points/month): median {first['delta_fs'].median():.2f}")
    print(f"visits with imaging: {table['session'].notna().sum()}")
    print(f"written: {out / 'table.parquet'}")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    target.mkdir(parents=True, exist_ok=True)
    main(target)
