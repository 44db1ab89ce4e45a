"""Hand-built tables for the biomarker tests (pure noise; site-confounded)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def noise_table(
    n_subjects: int = 60, n_sessions: int = 4, n_features: int = 6, seed: int = 0
) -> pd.DataFrame:
    """Pure-noise features with a large subject effect and small scan noise: repeated
    scans of one subject are near copies, the label is unrelated to the features."""
    rng = np.random.default_rng(seed)
    subj = np.repeat([f"S{i:03d}" for i in range(n_subjects)], n_sessions)
    label = np.repeat(
        rng.permutation(
            np.r_[
                ["als"] * (n_subjects // 2),
                ["control"] * (n_subjects - n_subjects // 2),
            ]
        ),
        n_sessions,
    )
    u = rng.standard_normal((n_subjects, n_features))
    x = np.repeat(u, n_sessions, axis=0) + 0.05 * rng.standard_normal(
        (n_subjects * n_sessions, n_features)
    )
    df = pd.DataFrame(x, columns=[f"fa_noise{j}" for j in range(n_features)])
    df.insert(0, "subject_id", subj)
    df.insert(1, "group", label)
    df.insert(2, "site", np.repeat(rng.choice(["A", "B"], n_subjects), n_sessions))
    return df


def confounded_table(seed: int = 0) -> pd.DataFrame:
    """No disease effect at all; site A holds only ALS, site B only controls, C and D
    are mixed; site offsets of +-1 between-subject SD."""
    rng = np.random.default_rng(seed)
    rows = []
    plan = {"A": (40, 0), "B": (0, 40), "C": (20, 20), "D": (20, 20)}
    offset = {"A": 1.0, "B": -1.0, "C": 0.3, "D": -0.3}
    k = 0
    for site, (n_als, n_ctl) in plan.items():
        for grp, n in (("als", n_als), ("control", n_ctl)):
            for _ in range(n):
                k += 1
                u = rng.standard_normal(4)
                for _ses in range(2):
                    x = u + offset[site] + 0.2 * rng.standard_normal(4)
                    rows.append(
                        {
                            "subject_id": f"S{k:03d}",
                            "group": grp,
                            "site": site,
                            "age": rng.uniform(45, 75),
                            "sex": rng.choice(["F", "M"]),
                            **{f"fa_r{j}": x[j] for j in range(4)},
                        }
                    )
    return pd.DataFrame(rows)
