"""Fixtures for alsprog.models; the data helpers live in lmm_testdata.py."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from lmm_testdata import REFERENCE, TRUTH, simulate_als_long  # noqa: F401


@pytest.fixture(scope="session")
def sleepstudy() -> pd.DataFrame:
    """lme4's sleepstudy (180 rows), written from R by tests/reference/lme4_reference.R."""
    df = pd.read_csv(REFERENCE / "sleepstudy.csv", dtype={"Subject": str})
    return df


@pytest.fixture(scope="session")
def als_reference() -> pd.DataFrame:
    """The simulated cohort R fitted (tests/reference/als_sim.csv), some values missing.

    Its continuous outcome is renamed ``frs``: as ``alsfrs_r_total`` it breaks the
    data dictionary (whole numbers in 0-48), which every fit now checks."""
    df = pd.read_csv(REFERENCE / "als_sim.csv", dtype={"subject_id": str})
    return df.rename(columns={"alsfrs_r_total": "frs"})


@pytest.fixture(scope="session")
def lme4_values() -> dict:
    """lme4 results saved by tests/reference/lme4_reference.R."""

    return json.loads((REFERENCE / "lme4_reference.json").read_text())


@pytest.fixture(scope="session")
def cohort() -> pd.DataFrame:
    """A small seeded cohort (120 subjects) for fast checks."""
    return simulate_als_long(120, seed=11)
