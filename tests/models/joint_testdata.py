"""Shared data for the joint-model tests: a joint simulation with known truth."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from alsprog.models import JointModel

FORMULA = "y ~ months + x + (months | subject_id)"
TRUTH = {
    "beta": np.array([40.0, -1.0, -2.0]),
    "D": np.array([[9.0, 0.3], [0.3, 0.16]]),
    "sigma": 1.5,
    "gamma": 0.5,
    "alpha": np.array([0.05, -2.0]),
    "hazard": 0.03,
}


def simulate_joint(n: int, seed: int, truth: dict = TRUTH) -> pd.DataFrame:
    """Visits every 2 months to the event/censoring time; exponential hazard."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    b = rng.multivariate_normal(np.zeros(2), truth["D"], n)
    rate = truth["hazard"] * np.exp(truth["gamma"] * x + b @ truth["alpha"])
    event_t = rng.exponential(1.0, n) / rate
    censor = rng.uniform(6.0, 30.0, n)
    t_end = np.minimum(event_t, censor)
    rows = []
    for i in range(n):
        months = np.arange(0.0, t_end[i] + 1e-12, 2.0)
        mu = (
            truth["beta"][0]
            + truth["beta"][1] * months
            + truth["beta"][2] * x[i]
            + b[i, 0]
            + b[i, 1] * months
        )
        y = mu + rng.normal(0.0, truth["sigma"], len(months))
        for m, v in zip(months, y, strict=True):
            rows.append((f"S{i:04d}", m, v, x[i], t_end[i], event_t[i] <= censor[i]))
    return pd.DataFrame(
        rows,
        columns=["subject_id", "months", "y", "x", "time", "dead"],
    )


@functools.lru_cache(maxsize=2)
def fitted(n: int = 500, seed: int = 1) -> tuple[pd.DataFrame, JointModel]:
    df = simulate_joint(n, seed)
    jm = JointModel(FORMULA, event_formula="x", event_time="time", event="dead")
    return df, jm.fit(df)
