"""Simulation-based calibration (Talts et al. 2018) of the sigmoid (D50) model.

Each replication draws the population parameters from the model's own default
priors, the patients' ``(log D50, log dx)`` from the population, visits and
outcomes from the likelihood, fits the model with the same priors and records the
rank of each true population parameter among thinned posterior draws.  When the
sampler (with the whitened subject effects and the Laplace start) computes the
posterior correctly, every rank is uniform on ``0..L``; the test bins them and asks
a chi-square test for p > 0.01 per parameter.  About 20 minutes on 2 cores:
``veryslow`` (``make test-all``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from bayes_fixtures import release_compiled
from scipy import stats
from scipy.special import expit

R = 100  # replications
N = 30  # patients per replication
VISITS = np.array([0.0, 3.0, 6.0, 12.0, 18.0])
THIN = 8  # 2 chains x 400 draws, every 8th: 100, of which L = 99 are ranked
L = 99  # ranks 0..99: ten bins of ten values each
BINS = 10

PARAMS = {
    "log_d50": lambda p: p["beta"][0, 0],
    "log_dx": lambda p: p["beta"][1, 0],
    "sd_d50": lambda p: p["subject_sd"][0],
    "sd_dx": lambda p: p["subject_sd"][1],
    "corr": lambda p: p["subject_corr"],
    "sigma": lambda p: p["sigma"],
}


def _draw_truth(rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """Population parameters from the default priors and a data set from them."""
    beta = np.array([[rng.normal(np.log(30.0), 0.5)], [rng.normal(np.log(10.0), 0.5)]])
    sd = np.abs(rng.normal(0.0, 0.5, 2))
    rho = 2.0 * rng.beta(2.0, 2.0) - 1.0  # LKJ(2) in two dimensions
    sigma = abs(rng.normal(0.0, 5.0))
    cov = np.array(
        [[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]]
    )
    theta = beta[:, 0] + rng.multivariate_normal([0.0, 0.0], cov, size=N)
    t0 = rng.uniform(4.0, 24.0, N)
    sid = np.repeat(np.arange(N), len(VISITS))
    t = t0[sid] + np.tile(VISITS, N)
    mu = 48.0 * expit((np.exp(theta[sid, 0]) - t) / np.exp(theta[sid, 1]))
    df = pd.DataFrame(
        {
            "subject_id": [f"S{i:03d}" for i in sid],
            "months_since_onset": t,
            "frs": mu + rng.normal(0.0, sigma, len(t)),
        }
    )
    truth = {"beta": beta, "subject_sd": sd, "subject_corr": rho, "sigma": sigma}
    return df, truth


def _ranks(r: int) -> dict[str, int]:
    from alsprog.models.bayes._model import BayesianTrajectoryModel

    df, truth = _draw_truth(np.random.default_rng(10_000 + r))
    m = BayesianTrajectoryModel(
        "sigmoid",
        formula="frs ~ 1",
        chains=2,
        draws=400,
        tune=400,
        seed=r,
        progress=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(df)
    post = m.idata_.posterior
    draws = {
        name: post[name].values[:, ::THIN].reshape(-1, *post[name].shape[2:])[:L]
        for name in ("beta", "subject_sd", "subject_corr", "sigma")
    }
    out = {}
    for key, get in PARAMS.items():
        d = np.array([get({k: v[i] for k, v in draws.items()}) for i in range(L)])
        out[key] = int(np.sum(d < get(truth)))
    return out


@pytest.mark.veryslow
def test_sigmoid_population_parameters_pass_sbc():
    results = []
    for r in range(R):
        results.append(_ranks(r))
        print(f"SBC replication {r}: {results[-1]}", flush=True)
        release_compiled()
    rows = pd.DataFrame(results)
    edges = np.arange(0, L + 2, (L + 1) // BINS)  # 0, 10, ..., 100
    pvalues = {}
    for key in PARAMS:
        counts, _ = np.histogram(rows[key], bins=edges)
        pvalues[key] = stats.chisquare(counts).pvalue
        print(f"SBC rank histogram {key}: {counts.tolist()}")
    print("SBC chi-square p-values:", {k: round(v, 3) for k, v in pvalues.items()})
    assert all(p > 0.01 for p in pvalues.values()), pvalues
