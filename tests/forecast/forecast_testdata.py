"""Shared data for the forecast tests: a seeded simulated cohort split by patient."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd

LMM_FORMULA = (
    "alsfrs_r_total ~ months * (delta_fs + onset_site) + (months | subject_id)"
)


@functools.lru_cache(maxsize=4)
def split_cohort(n: int = 300, seed: int = 21, n_test: int = 40):
    """(cohort, table, train, test) with the test patients' full follow-up."""
    from alsprog.data import assemble
    from alsprog.simulate import simulate_cohort

    cohort = simulate_cohort(n, seed=seed)
    table = assemble(cohort.visits, cohort.subjects)
    table = table[table["alsfrs_r_total"].notna()].reset_index(drop=True)
    ids = np.asarray(pd.unique(table["subject_id"]))
    test_ids = set(np.random.default_rng(seed).permutation(ids)[:n_test])
    is_test = table["subject_id"].isin(test_ids)
    return cohort, table, table[~is_test].copy(), table[is_test].copy()


@functools.lru_cache(maxsize=4)
def fitted_lmm(n: int = 300, seed: int = 21):
    from alsprog.models import LinearMixedModel

    _, _, train, _ = split_cohort(n, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LinearMixedModel(LMM_FORMULA).fit(train)


def first_months(test: pd.DataFrame, months: float = 3.5) -> pd.DataFrame:
    return test[test["months"] <= months].copy()
