"""Small seeded cohorts for the biomarker tests."""

from __future__ import annotations

import warnings

import pytest

from alsprog.data import assemble
from alsprog.simulate import simulate_cohort

#: Simulator overrides that leave only the baseline ALS effects: no site effects, no
#: ageing, no longitudinal change, so every session's features are
#: N(mu + d * sd [ALS], Sigma) and the true AUC follows in closed form.
CLEAN = dict(
    site_offset_sd=0.0,
    site_scale_min=0.9999,
    site_scale_max=1.0,
    fa_age_per_year=0.0,
    md_age_per_year=0.0,
    thickness_age_per_year=0.0,
    fa_cst_change_per_year=0.0,
    fa_cc_motor_change_per_year=0.0,
    md_cst_change_per_year=0.0,
    thickness_precentral_change_per_year=0.0,
)


@pytest.fixture(scope="session")
def clean_cohort():
    c = simulate_cohort(100, 80, months=6, n_sites=3, seed=2024, **CLEAN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return c, assemble(c.visits, c.subjects, c.imaging)


@pytest.fixture(scope="session")
def site_cohort():
    c = simulate_cohort(60, 50, months=6, n_sites=3, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return assemble(c.visits, c.subjects, c.imaging)


from bio_testdata import confounded_table, noise_table  # noqa: E402,F401
