"""Write tests/reference/latent_flexmix_data.csv, the cohort latent_flexmix_reference.R
fits with flexmix's FLXMRlmm.

Run from the repository root:
``.venv/bin/python tests/reference/latent_flexmix_make_data.py``.
The CSV is the source of truth for the tests (this script may change; the file won't).

150 patients, exactly 5 visits each (balanced on purpose: flexmix's M-step for a
shared random-effects covariance and residual variance is exact EM only when every
subject has the same number of visits, see tests/models/test_latent_flexmix.py),
visit times 0, 3, 6, 9, 12 months each moved by up to +-0.5 month (so every subject
has its own random-effects design), two linear classes (40 - 0.4 months, 60 %;
38 - 1.2 months, 40 %), a correlated random intercept and slope and normal noise.
The outcome, ``score``, is kept continuous (not rounded; an ``alsfrs_r_total``
column would have to hold whole numbers).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(20241)
    n, v = 150, 5
    cls = (rng.uniform(size=n) < 0.4).astype(int)  # 0 slow, 1 fast
    b0_cls = np.array([40.0, 38.0])[cls]
    b1_cls = np.array([-0.4, -1.2])[cls]
    G = np.array([[9.0, -0.15], [-0.15, 0.04]])
    b = rng.multivariate_normal(np.zeros(2), G, size=n)
    t = np.arange(v) * 3.0 + rng.uniform(-0.5, 0.5, (n, v))
    t[:, 0] = np.abs(t[:, 0])
    y = (b0_cls + b[:, 0])[:, None] + (b1_cls + b[:, 1])[:, None] * t
    y = y + rng.normal(0.0, 1.5, (n, v))
    df = pd.DataFrame(
        {
            "subject_id": np.repeat(np.arange(1, n + 1), v),
            "months": np.round(t.ravel(), 4),
            "score": np.round(y.ravel(), 4),
            "true_class": np.repeat(cls + 1, v),
        }
    )
    df.to_csv(HERE / "latent_flexmix_data.csv", index=False)


if __name__ == "__main__":
    main()
