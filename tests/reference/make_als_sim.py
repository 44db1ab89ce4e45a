"""Write tests/reference/als_sim.csv, the simulated cohort lme4_reference.R fits.

Run from the repository root: ``.venv/bin/python tests/reference/make_als_sim.py``.
The CSV is the source of truth for the tests (the helper may change; the file won't).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "models"))

from lmm_testdata import simulate_als_long  # noqa: E402


def main() -> None:
    df = simulate_als_long(250, seed=2024)
    rng = np.random.default_rng(7)
    df.loc[rng.choice(len(df), 12, replace=False), "alsfrs_r_total"] = np.nan
    first_rows = df.groupby("subject_id").head(1).index.to_numpy()
    for sid in df.loc[rng.choice(first_rows, 3, replace=False), "subject_id"]:
        df.loc[df["subject_id"] == sid, "age_at_onset"] = np.nan
    df.to_csv(HERE / "als_sim.csv", index=False, na_rep="NA")


if __name__ == "__main__":
    main()
