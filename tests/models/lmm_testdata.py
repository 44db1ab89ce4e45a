"""Test data for alsprog.models (imported by conftest.py and the tests): lme4's sleepstudy, small seeded ALS-like cohorts.

The cohort helper stands in for ``alsprog.simulate.simulate_cohort`` (random intercept
and slope, months 0-18, ALSFRS-R-like numbers: intercept 38 +- 5, slope -0.9 +- 0.6 per
month, residual SD 2) so these tests do not depend on the simulator's evolving output.
Reference cohorts the R scripts read are saved under ``tests/reference`` and loaded
from there, so R and Python see identical numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE = Path(__file__).resolve().parents[1] / "reference"

#: Truth used by :func:`simulate_als_long` (ALSFRS-R points and months).
TRUTH = {
    "intercept": 38.0,
    "slope": -0.9,
    "sd_intercept": 5.0,
    "sd_slope": 0.6,
    "corr": -0.2,
    "sd_resid": 2.0,
    "bulbar_slope": -0.3,
    "age_effect": -0.05,
}


def simulate_als_long(
    n_subjects: int,
    *,
    seed: int,
    visit_months: tuple[float, ...] = (0, 3, 6, 9, 12, 15, 18),
    dropout: float = 0.08,
    jitter: float = 0.5,
    truth: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Seeded long-format ALS-like cohort with a random intercept and slope.

    Each subject is seen at ``visit_months`` (jittered by up to ``jitter`` months
    after baseline) until a geometric dropout; onset site is bulbar (30 %), spinal
    (65 %) or other (5 %); bulbar onset adds ``bulbar_slope`` per month.  The outcome
    ``frs`` is ALSFRS-R-like but continuous and unbounded (a Gaussian model's own
    data), so it is not named ``alsfrs_r_total``, whose values the data dictionary
    requires to be whole numbers in 0-48.
    """
    t = {**TRUTH, **(truth or {})}
    rng = np.random.default_rng(seed)
    cov = np.array(
        [
            [t["sd_intercept"] ** 2, t["corr"] * t["sd_intercept"] * t["sd_slope"]],
            [t["corr"] * t["sd_intercept"] * t["sd_slope"], t["sd_slope"] ** 2],
        ]
    )
    b = rng.multivariate_normal([0.0, 0.0], cov, size=n_subjects)
    site = rng.choice(
        ["bulbar", "spinal", "other"], size=n_subjects, p=[0.3, 0.65, 0.05]
    )
    age = np.round(rng.normal(58.0, 10.0, size=n_subjects), 1)
    n_vis = np.minimum(rng.geometric(dropout, size=n_subjects), len(visit_months))
    n_vis = np.maximum(n_vis, 1)
    sid = np.repeat(np.arange(n_subjects), n_vis)
    pos = np.arange(len(sid)) - np.repeat(np.cumsum(n_vis) - n_vis, n_vis)
    months = np.asarray(visit_months, dtype=float)[pos]
    months = months + np.where(pos > 0, rng.uniform(-jitter, jitter, len(sid)), 0.0)
    slope = t["slope"] + b[sid, 1] + t["bulbar_slope"] * (site[sid] == "bulbar")
    y = (
        t["intercept"]
        + b[sid, 0]
        + t["age_effect"] * (age[sid] - 58.0)
        + slope * months
        + rng.normal(0.0, t["sd_resid"], len(sid))
    )
    return pd.DataFrame(
        {
            "subject_id": [f"P{i:05d}" for i in sid],
            "months": np.round(months, 3),
            "frs": np.round(y, 3),
            "onset_site": site[sid],
            "age_at_onset": age[sid],
        }
    )
