"""Shared simulated cohorts for the alsprog.simulate tests (session scope, seeded)."""

from __future__ import annotations

import pytest

from alsprog.simulate import simulate_cohort

#: Size of the realism cohort; 20,000 patients keep Monte-Carlo error on a mean slope
#: near 0.6 / sqrt(20,000) ≈ 0.004 points/month, far inside the tolerances used.
N_LARGE = 20_000


@pytest.fixture(scope="session")
def small_cohort():
    """A small cohort with every feature: 200 patients, 60 controls, 4 sites."""
    return simulate_cohort(200, 60, months=18, n_sites=4, seed=11)


@pytest.fixture(scope="session")
def large_cohort():
    """The realism cohort: 20,000 patients and 2,000 controls at default parameters."""
    return simulate_cohort(N_LARGE, 2_000, seed=2024)


@pytest.fixture(scope="session")
def nifti_cohort():
    """Two patients and two controls, scanned at months 0, 6 and 12."""
    return simulate_cohort(2, 2, months=12, seed=4)
