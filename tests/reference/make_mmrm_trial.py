"""Write tests/reference/mmrm_trial.csv, the simulated two-arm trial mmrm_reference.R fits.

Run from the repository root: ``.venv/bin/python tests/reference/make_mmrm_trial.py``.
200 subjects (placebo/active), change from baseline in ALSFRS-R at months 3, 6, 9, 12
with an unstructured-looking covariance (random intercept + slope + noise), baseline
total as covariate, monotone dropout (~25 % by month 12) and a few missing values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def simulate_trial(n: int = 200, seed: int = 31) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    visits = np.array([3.0, 6.0, 9.0, 12.0])
    arm = np.where(np.arange(n) < n // 2, "placebo", "active")
    baseline = np.round(rng.normal(38, 5, n), 0)
    b0 = rng.normal(0, 1.5, n)
    b1 = rng.normal(0, 0.35, n)
    slope = -0.95 + 0.25 * (arm == "active") + b1
    rows = []
    for i in range(n):
        last = rng.choice(4, p=[0.08, 0.07, 0.10, 0.75])  # index of last visit attended
        for v in visits[: last + 1]:
            chg = b0[i] + slope[i] * v - 0.04 * (baseline[i] - 38) + rng.normal(0, 1.8)
            rows.append((f"T{i:04d}", int(v), arm[i], baseline[i], round(chg, 3)))
    df = pd.DataFrame(
        rows, columns=["subject_id", "visit", "arm", "baseline_total", "chg"]
    )
    df.loc[rng.choice(len(df), 5, replace=False), "chg"] = np.nan
    return df


if __name__ == "__main__":
    simulate_trial().to_csv(HERE / "mmrm_trial.csv", index=False, na_rep="NA")
