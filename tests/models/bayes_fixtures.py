"""Data generators and fitted-model fixtures for the Bayesian trajectory model tests.

The generators draw data *from the fitted models' own forms* with a NumPy Generator
(exact-model data), so recovery checks compare with known truth:

- :func:`linear_long`: random intercept + slope (docs/domain.md §7: intercept 38 +- 5,
  slope -0.9 +- 0.6 /month, residual SD 2), bulbar onset 28 % with an extra slope,
  age effect, visits every 3 months up to 18 with geometric dropout.
- :func:`sigmoid_long`: ``48 / (1 + exp((t - D50) / dx))`` on months since onset with
  lognormal D50 (median 30) and dx (median 10) (docs/domain.md §3, §7) plus N(0, 2) noise.

The outcome is the exact model's continuous value, so it is called ``frs`` (pass
``outcome="alsfrs_r_total"`` after rounding to whole 0-48 values, as the data dictionary
requires of that column).

Fixtures fit each model once per session with few draws (2 chains), so the suite stays
quick; convergence warnings from such short runs are silenced here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from alsprog.errors import ConvergenceWarning

LINEAR_TRUTH = {
    "intercept": 38.0,
    "slope": -0.9,
    "bulbar_slope": -0.3,
    "age": -0.05,
    "sd_intercept": 5.0,
    "sd_slope": 0.6,
    "corr": -0.2,
    "sigma": 2.0,
}

SIGMOID_TRUTH = {
    "log_d50": float(np.log(30.0)),
    "log_dx": float(np.log(10.0)),
    "sd_log_d50": 0.3,
    "sd_log_dx": 0.25,
    "corr": 0.3,
    "sigma": 2.0,
}


def linear_long(
    n_subjects: int,
    *,
    seed: int,
    visits: tuple[float, ...] = (0, 3, 6, 9, 12, 15, 18),
    dropout: float = 0.1,
    truth: dict[str, float] | None = None,
    outcome: str = "frs",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long table and per-subject truth (``b0``, ``b1``, ``slope``) of the linear form.

    ``age_at_onset`` enters centred at 58 in the truth, so the formula's intercept
    (age 0) is ``intercept - 58 * age``.
    """
    t = {**LINEAR_TRUTH, **(truth or {})}
    rng = np.random.default_rng(seed)
    c = t["corr"] * t["sd_intercept"] * t["sd_slope"]
    cov = np.array([[t["sd_intercept"] ** 2, c], [c, t["sd_slope"] ** 2]])
    b = rng.multivariate_normal([0.0, 0.0], cov, size=n_subjects)
    bulbar = rng.random(n_subjects) < 0.28
    age = rng.normal(58.0, 11.0, n_subjects)
    n_vis = np.clip(rng.geometric(dropout, n_subjects), 1, len(visits))
    sid = np.repeat(np.arange(n_subjects), n_vis)
    pos = np.arange(len(sid)) - np.repeat(np.cumsum(n_vis) - n_vis, n_vis)
    months = np.asarray(visits, dtype=float)[pos]
    slope = t["slope"] + t["bulbar_slope"] * bulbar + b[:, 1]
    y = (
        (t["intercept"] + t["age"] * (age - 58.0) + b[:, 0])[sid]
        + slope[sid] * months
        + rng.normal(0.0, t["sigma"], len(sid))
    )
    ids = np.array([f"S{i:04d}" for i in range(n_subjects)])
    df = pd.DataFrame(
        {
            "subject_id": ids[sid],
            "months": months,
            outcome: y,
            "onset_site": np.where(bulbar, "bulbar", "spinal")[sid],
            "age_at_onset": age[sid],
        }
    )
    truth_df = pd.DataFrame(
        {
            "subject_id": ids,
            "b0": b[:, 0],
            "b1": b[:, 1],
            "slope": slope,
            "n_visits": n_vis,
        }
    )
    return df, truth_df


def sigmoid_long(
    n_subjects: int,
    *,
    seed: int,
    visits: tuple[float, ...] = (0, 3, 6, 9, 12, 15, 18, 24),
    truth: dict[str, float] | None = None,
    outcome: str = "frs",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long table and per-subject ``d50``/``dx`` from the D50 sigmoid form."""
    t = {**SIGMOID_TRUTH, **(truth or {})}
    rng = np.random.default_rng(seed)
    c = t["corr"] * t["sd_log_d50"] * t["sd_log_dx"]
    cov = np.array([[t["sd_log_d50"] ** 2, c], [c, t["sd_log_dx"] ** 2]])
    u = rng.multivariate_normal([t["log_d50"], t["log_dx"]], cov, size=n_subjects)
    d50, dx = np.exp(u[:, 0]), np.exp(u[:, 1])
    t0 = rng.uniform(4.0, 24.0, n_subjects)  # months from onset to first visit
    n_vis = len(visits)
    sid = np.repeat(np.arange(n_subjects), n_vis)
    months = np.tile(np.asarray(visits, dtype=float), n_subjects)
    mso = t0[sid] + months
    mean = 48.0 / (1.0 + np.exp((mso - d50[sid]) / dx[sid]))
    y = mean + rng.normal(0.0, t["sigma"], len(sid))
    ids = np.array([f"S{i:04d}" for i in range(n_subjects)])
    df = pd.DataFrame(
        {
            "subject_id": ids[sid],
            "months": months,
            "months_since_onset": mso,
            outcome: y,
        }
    )
    return df, pd.DataFrame({"subject_id": ids, "d50": d50, "dx": dx})


def quiet_fit(model, df):
    """Fit while silencing the convergence warnings of deliberately short runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(df)


@pytest.fixture(scope="session")
def linear_data() -> pd.DataFrame:
    return linear_long(80, seed=3)[0]


@pytest.fixture(scope="session")
def linear_fit(linear_data):
    from alsprog.models.bayes._model import BayesianTrajectoryModel

    m = BayesianTrajectoryModel(
        formula="frs ~ months * onset_site + age_at_onset",
        chains=2,
        draws=400,
        tune=400,
        seed=11,
        progress=False,
    )
    return quiet_fit(m, linear_data)


@pytest.fixture(scope="session")
def linear_full_fit(linear_data):
    from alsprog.models.bayes._model import BayesianTrajectoryModel

    m = BayesianTrajectoryModel(
        formula="frs ~ months * onset_site + age_at_onset",
        chains=2,
        draws=400,
        tune=400,
        seed=12,
        marginalize=False,
        progress=False,
    )
    return quiet_fit(m, linear_data)


@pytest.fixture(scope="session")
def sigmoid_data() -> pd.DataFrame:
    return sigmoid_long(40, seed=5)[0]


@pytest.fixture(scope="session")
def sigmoid_fit(sigmoid_data):
    from alsprog.models.bayes._model import BayesianTrajectoryModel

    m = BayesianTrajectoryModel(
        "sigmoid",
        formula="frs ~ 1",
        chains=2,
        draws=300,
        tune=300,
        seed=13,
        progress=False,
    )
    return quiet_fit(m, sigmoid_data)


def logp_terms(model, point, names=()):
    """A PyMC model's log-density terms at ``point`` (no Jacobian), summed per
    variable, and the named deterministics (compiled with FAST_COMPILE)."""
    import pytensor

    outs = model.replace_rvs_by_values(
        [*model.logp(jacobian=False, sum=False), *(model[n] for n in names)]
    )
    f = pytensor.function(
        model.value_vars, outs, mode="FAST_COMPILE", on_unused_input="ignore"
    )
    res = f(**point)
    k = len(model.free_RVs) + len(model.observed_RVs) + len(model.potentials)
    return [float(np.sum(r)) for r in res[:k]], res[k:]


def release_compiled() -> None:
    """Drop JAX's compiled executables after a fit (the SBC studies): each fit
    compiles new functions, and a hundred of them in one process grew to gigabytes
    and ended in a segmentation fault inside XLA's compiler."""
    import gc

    import jax

    jax.clear_caches()
    gc.collect()
