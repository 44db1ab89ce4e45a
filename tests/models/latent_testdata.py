"""Test data for the latent-class models (imported by the tests and benchmarks/latent.py).

Patients from linear progression classes, written once: ``test_latent_class.py`` and
``test_latent_select.py`` check recovery against this generator, and
``benchmarks/latent.py`` times ``select_n_classes`` on it (its default 2,000-patient
cohort is ``simulate_classes(2000, seed=21)``).  It stands in for
``alsprog.simulate.simulate_cohort(..., progression_classes=...)`` on purpose: linear
classes with a known per-class slope, so the latent-class model is exactly right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The model formula of the latent-class tests and benchmark.
FORMULA = "alsfrs_r_total ~ months + (months | subject_id)"
#: True class slopes (points/month) of the simulated cohorts.
SLOPES = (-0.3, -1.0, -2.0)


def simulate_classes(
    n_patients: int,
    slopes: tuple[float, ...] = SLOPES,
    *,
    seed: int = 0,
    n_visits: int = 5,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Patients from linear progression classes with a shared random intercept and
    slope: intercept 40 + N(0, 3^2), slope class slope + N(0, 0.15^2), visits every
    3 months, noise N(0, 1.5^2), rounded and clipped to 0-48 (ALSFRS-R is whole).

    Classes are equally likely; returns the long table (``subject_id`` ``P0000``,
    ..., ``months``, ``alsfrs_r_total``) and each patient's 0-based class.
    """
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, len(slopes), n_patients)
    sid = np.repeat(np.arange(n_patients), n_visits)
    t = np.tile(np.arange(n_visits) * 3.0, n_patients)
    b0 = rng.normal(0, 3, n_patients)
    b1 = rng.normal(0, 0.15, n_patients)
    y = 40 + b0[sid] + (np.asarray(slopes)[cls][sid] + b1[sid]) * t
    y = y + rng.normal(0, 1.5, len(t))
    df = pd.DataFrame(
        {
            "subject_id": [f"P{i:04d}" for i in sid],
            "months": t,
            "alsfrs_r_total": np.clip(np.round(y), 0, 48),
        }
    )
    return df, cls
