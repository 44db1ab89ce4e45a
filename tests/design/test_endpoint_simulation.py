"""Trials simulated for every endpoint: type I error, looks, survival power, seeds.

References are independent of the code under test: the nominal level of each test
(0.05 two-sided, 0.025 one-sided) within 3 Monte Carlo standard errors, the normal
and bivariate-normal probabilities of the canonical group-sequential joint
distribution (Jennison & Turnbull 2000, ch. 3), Schoenfeld's (1981) power of the
log-rank test, hand-counted event times, and the analytic slope sample size of
:meth:`TrialDesign.sample_size` (longpower's formula, tested elsewhere against R).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alsprog.data import assemble
from alsprog.design import (
    HistoricalCohort,
    TrialDesign,
    group_sequential,
    simulate_power,
    simulated_sample_size,
)
from alsprog.design._simulated_trials import _Chunk
from alsprog.design._trial_runner import _Plan, look_times
from alsprog.simulate import simulate_cohort

GRID5 = (0.0, 3.0, 6.0, 9.0, 12.0)
GRID3 = (0.0, 6.0, 12.0)
ALL_BUT_MMRM = ("slope", "cafs", "joint_rank", "win_ratio", "survival")


def _within(p: float, level: float, n_sims: int, k: float = 3.0) -> bool:
    """``p`` within ``k`` Monte Carlo SEs (at the nominal level) of ``level``."""
    return abs(p - level) <= k * math.sqrt(level * (1 - level) / n_sims)


@cache
def _historical(grid: tuple[float, ...]) -> HistoricalCohort:
    """300 patients of alsprog's cohort simulator, assembled as a real table."""
    c = simulate_cohort(300, months=12, seed=5)
    long = assemble(c.visits, c.subjects)
    return HistoricalCohort.from_table(long, visit_months=grid)


@cache
def _exponential_cohort(
    n: int = 20_000, median: float = 12.0, follow_up: float = 36.0
) -> HistoricalCohort:
    """Exponential survival (no frailty, no dependence on ALSFRS-R): the
    Nelson–Aalen transform then gives proportional hazards exactly (up to the
    step function of a large sample)."""
    rng = np.random.default_rng(20)
    t = rng.exponential(median / math.log(2), n)
    df = pd.DataFrame(
        {
            "subject_id": [f"p{i}" for i in range(n)],
            "months": 0.0,
            "alsfrs_r_total": 40.0,
            "death_or_tracheostomy_months": np.minimum(t, follow_up),
            "event_observed": t <= follow_up,
        }
    )
    return HistoricalCohort.from_table(df, visit_months=GRID3)


def _null_rate(endpoint, source, grid, n_per_arm, n_sims, seed, **kw):
    """Rejection rate under no effect (slowing 0, hazard ratio 1)."""
    d = TrialDesign(slowing=0.0, visit_months=grid)
    r = simulate_power(
        d,
        n_per_arm,
        n_sims=n_sims,
        endpoint=endpoint,
        source=source,
        seed=seed,
        n_jobs=2,
        progress=False,
        **kw,
    )
    assert r.estimates["converged"].all()
    return r.power


# --------------------------------------------------------------- type I error
# Done when (issue 23): under the null every endpoint rejects at 0.05 +- 3 MC SE
# over >= 2,000 trials.  2 x 60 patients: the tests are asymptotic (Wald z of the
# slope, first-order U-statistic SE of the net benefit); at 2 x 30 the slope and
# the win ratio on the nonlinear course reject 6.2 % and 6.3 % of 4,000 null
# trials (measured), the small-sample excess of a normal reference.
N_NULL = 2000


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ALL_BUT_MMRM)
def test_type_one_error_nonlinear_course(endpoint):
    p = _null_rate(endpoint, "course", GRID5, 60, N_NULL, seed=101)
    assert _within(p, 0.05, N_NULL), p


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ALL_BUT_MMRM)
def test_type_one_error_historical_cohort(endpoint):
    """Null trials of ``type_one_error=True``: the treatment (25 % slowing, hazard
    ratio 0.8) is switched off, patients resampled from a real-format table."""
    d = TrialDesign(slowing=0.25)
    r = simulate_power(
        d,
        60,
        n_sims=N_NULL,
        endpoint=endpoint,
        source=_historical(GRID5),
        hazard_ratio=0.8,
        type_one_error=True,
        seed=102,
        n_jobs=2,
        progress=False,
    )
    assert r.type_one_error_se == pytest.approx(math.sqrt(0.05 * 0.95 / N_NULL))
    assert _within(r.type_one_error, 0.05, N_NULL), r.type_one_error
    assert r.power > r.type_one_error  # the effect was on in the first run


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ALL_BUT_MMRM)
def test_type_one_error_linear_model_with_deaths(endpoint):
    d = TrialDesign(slowing=0.25)
    r = simulate_power(
        d,
        60,
        n_sims=N_NULL,
        endpoint=endpoint,
        death_hazard=0.3,
        hazard_ratio=0.8,
        type_one_error=True,
        seed=103,
        n_jobs=2,
        progress=False,
    )
    assert _within(r.type_one_error, 0.05, N_NULL), r.type_one_error


def _mmrm_sources():
    return {"course": "course", "historical": _historical(GRID3), "linear": None}


@pytest.mark.slow
@pytest.mark.parametrize("source", ["course", "historical", "linear"])
def test_type_one_error_mmrm_small(source):
    """MMRM fits one model per trial (~0.05 s): 300 null trials of 2 x 20 patients
    and 3 visits per source here (the 2,000-trial version is ``veryslow``)."""
    p = _null_rate("mmrm", _mmrm_sources()[source], GRID3, 20, 300, seed=104)
    assert _within(p, 0.05, 300), p


@pytest.mark.veryslow
@pytest.mark.parametrize("source", ["course", "historical", "linear"])
def test_type_one_error_mmrm(source):
    p = _null_rate("mmrm", _mmrm_sources()[source], GRID3, 20, N_NULL, seed=105)
    assert _within(p, 0.05, N_NULL), p
