"""Write tests/reference/nlme_sigmoid_data.csv, the cohort nlme_sigmoid_reference.R
fits with R's ``nlme::nlme``.

Run from the repository root:
``.venv/bin/python tests/reference/nlme_sigmoid_make_data.py``.
The CSV is the source of truth for the tests (this script may change; the file won't).

100 patients on the D50 sigmoid ``48 / (1 + exp((t - D50_i) / dx_i))`` in months
since onset ``t``: ``(log D50_i, log dx_i) = (log 30 - 0.25 bulbar_i, log 10) + b_i``,
``b_i ~ N(0, Psi)`` with SDs 0.3 and 0.25 and correlation 0.4, normal noise with SD
2.  Each patient has 3 to 8 visits about 3 months apart, the first 3 to 30 months
after onset.  About a third have bulbar onset (``onset_site``).  The outcome,
``frs``, is kept continuous (an ``alsfrs_r_total`` column would hold whole numbers).

Also tests/reference/nlme_sigmoid_small.csv: 24 patients with 4 visits 3 months
apart (the first 3-24 months after onset), ``(log D50, log dx) = (3.4 - 0.25
bulbar, 2.3 + 0.1 bulbar) + b``, SDs 0.3 and 0.25, correlation 0.4, noise SD 2
(tests/models/test_nlme.py's ``simulate(24, 3, n_visits=4)``
written out): too few visits to tell the patients' dx apart, so the ML estimate
of its SD is near zero and the correlation near -1, where EM crawls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(20261207)
    n = 100
    bulbar = rng.uniform(size=n) < 0.33
    sd = np.array([0.3, 0.25])
    corr = np.array([[1.0, 0.4], [0.4, 1.0]])
    b = rng.multivariate_normal(np.zeros(2), corr * np.outer(sd, sd), size=n)
    d50 = np.exp(np.log(30.0) - 0.25 * bulbar + b[:, 0])
    dx = np.exp(np.log(10.0) + b[:, 1])
    rows = []
    for i in range(n):
        k = int(rng.integers(3, 9))
        t = rng.uniform(3.0, 30.0) + 3.0 * np.arange(k) + rng.uniform(-0.5, 0.5, k)
        mu = 48.0 / (1.0 + np.exp((t - d50[i]) / dx[i]))
        y = mu + rng.normal(0.0, 2.0, k)
        for tj, yj in zip(t, y, strict=True):
            rows.append(
                {
                    "subject_id": f"S{i + 1:03d}",
                    "months_since_onset": round(float(tj), 4),
                    "frs": round(float(yj), 4),
                    "onset_site": "bulbar" if bulbar[i] else "spinal",
                }
            )
    pd.DataFrame(rows).to_csv(HERE / "nlme_sigmoid_data.csv", index=False)


def small() -> None:
    n, n_visits, sd, corr, sigma = 24, 4, (0.3, 0.25), 0.4, 2.0
    beta = np.array([[3.4, -0.25], [2.3, 0.1]])
    rng = np.random.default_rng(3)
    bulbar = (rng.random(n) < 0.35).astype(float)
    cov = np.array([[1.0, corr], [corr, 1.0]]) * np.outer(sd, sd)
    theta = np.column_stack([np.ones(n), bulbar]) @ beta.T
    theta = theta + rng.multivariate_normal(np.zeros(2), cov, n)
    first = rng.uniform(3.0, 24.0, n)
    months = np.tile(np.arange(n_visits) * 3.0, n)
    sid = np.repeat(np.arange(n), n_visits)
    since = first[sid] + months
    d50, dx = np.exp(theta[sid, 0]), np.exp(theta[sid, 1])
    y = 48.0 / (1.0 + np.exp((since - d50) / dx)) + rng.normal(0, sigma, len(sid))
    pd.DataFrame(
        {
            "subject_id": [f"P{i:04d}" for i in sid],
            "months": months,
            "months_since_onset": since,
            "frs": y,
            "onset_site": np.where(bulbar[sid] == 1, "bulbar", "spinal"),
        }
    ).to_csv(HERE / "nlme_sigmoid_small.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
    small()
