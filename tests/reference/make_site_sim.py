"""Write tests/reference/site_sim.csv: a simulated multi-centre ALS cohort (site x subject).

Run from the repository root: ``.venv/bin/python tests/reference/make_site_sim.py``.
16 sites of 6-20 patients, visits every 3 months up to 18 with dropout; ALSFRS-R-like
outcome (whole numbers in 0-48) with a site intercept (sd 3), subject intercept and slope (sd 5 and 0.35,
correlation 0.2), residual sd 2, an arm effect on the slope of 0.25 points/month.
The CSV is the source of truth for the tests (lme4_multi_reference.R fits it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(31)
    rows = []
    pid = 0
    for s in range(16):
        site_b = rng.normal(0, 3.0)
        for _ in range(int(rng.integers(6, 21))):
            arm = "active" if pid % 2 else "placebo"
            b0, b1 = rng.multivariate_normal([0, 0], [[25, 0.35], [0.35, 0.1225]])
            n_vis = int(rng.integers(2, 8))
            for v in range(n_vis):
                t = 3.0 * v + (rng.uniform(-0.4, 0.4) if v else 0.0)
                slope = -0.9 + (0.25 if arm == "active" else 0.0) + b1
                y = 38 + site_b + b0 + slope * t + rng.normal(0, 2)
                y = int(min(max(round(y), 0), 48))  # whole ALSFRS-R totals
                rows.append((f"S{s:02d}", f"P{pid:03d}", arm, round(t, 3), y))
            pid += 1
    df = pd.DataFrame(
        rows, columns=["site", "subject_id", "arm", "months", "alsfrs_r_total"]
    )
    df.to_csv(HERE / "site_sim.csv", index=False)


if __name__ == "__main__":
    main()
