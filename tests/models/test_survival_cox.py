"""Cox proportional-hazards numerics against R's survival::coxph.

Reference: tests/reference/coxph_reference.R (survival 3.5.3) writes lung.csv,
veteran.csv and coxph_reference.json: coefficients, naive SEs, the log-likelihood at
zero and at the estimate, and ``basehaz(fit, centered = FALSE)``, for Efron and
Breslow ties and a delayed-entry fit ``Surv(entry, time, event)``.  Also checked: the
gradient and Hessian against central differences of the partial likelihood, and a
brute-force Efron likelihood written with explicit risk sets.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from alsprog.models.survival._cox import _risk_sets, cox_fit, cox_partial

REF = Path(__file__).resolve().parents[1] / "reference"
LUNG = ["age", "sex", "ph.ecog", "ph.karno", "wt.loss"]
VET = ["trt", "karno", "diagtime", "age", "prior", "squamous", "smallcell", "adeno"]


@pytest.fixture(scope="module")
def ref():
    return json.loads((REF / "coxph_reference.json").read_text())


@pytest.fixture(scope="module")
def lung():
    return pd.read_csv(REF / "lung.csv")


@pytest.fixture(scope="module")
def veteran():
    return pd.read_csv(REF / "veteran.csv")


def _check(fit, r):
    assert_allclose(fit.coef, r["coef"], rtol=1e-6, atol=1e-9)
    assert_allclose(fit.se, r["se"], rtol=1e-6)
    assert_allclose(fit.loglik, r["loglik"], rtol=0, atol=1e-6)
    # basehaz lists every distinct time (censorings too); ours steps at the events
    at = np.searchsorted(fit.basehaz_times, r["basehaz_time"], side="right") - 1
    ours = np.where(at >= 0, fit.basehaz[np.maximum(at, 0)], 0.0)
    assert_allclose(ours, r["basehaz"], rtol=1e-6)
    assert fit.converged


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_lung_equals_coxph(lung, ref, ties):
    fit = cox_fit(lung["time"], lung["event"], lung[LUNG], ties=ties)
    _check(fit, ref[f"lung_{ties}"])


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_veteran_equals_coxph(veteran, ref, ties):
    fit = cox_fit(veteran["time"], veteran["status"], veteran[VET], ties=ties)
    _check(fit, ref[f"veteran_{ties}"])


def test_delayed_entry_equals_coxph_counting_process(lung, ref):
    cols = ["age", "sex", "ph.ecog"]
    fit = cox_fit(lung["time"], lung["event"], lung[cols], entry=lung["entry"])
    r = ref["lung_entry_efron"]
    assert_allclose(fit.coef, r["coef"], rtol=1e-6)
    assert_allclose(fit.se, r["se"], rtol=1e-6)
    assert_allclose(fit.loglik, r["loglik"], atol=1e-6)
    # ignoring the delayed entry gives another answer (the bias it removes)
    naive = cox_fit(lung["time"], lung["event"], lung[cols])
    assert np.max(np.abs(naive.coef - fit.coef)) > 1e-3


def _efron_bruteforce(beta, entry, exit, event, X):
    """Efron's partial log-likelihood with explicit risk sets."""
    eta = X @ beta
    ll = 0.0
    for t in np.unique(exit[event]):
        risk = (entry < t) & (exit >= t)
        dead = event & (exit == t)
        d = dead.sum()
        S0, D0 = np.exp(eta[risk]).sum(), np.exp(eta[dead]).sum()
        ll += eta[dead].sum() - sum(np.log(S0 - k / d * D0) for k in range(d))
    return ll


def test_partial_likelihood_and_derivatives_by_brute_force():
    rng = np.random.default_rng(1)
    n = 60
    X = rng.normal(size=(n, 3))
    exit = np.round(rng.exponential(5, n))  # many ties
    entry = np.where(rng.random(n) < 0.3, np.floor(exit / 2), -np.inf)
    event = rng.random(n) < 0.7
    beta = np.array([0.3, -0.5, 0.2])
    rs = _risk_sets(entry, exit, event)
    ll, g, H = cox_partial(beta, X, rs, "efron")
    assert ll == pytest.approx(
        _efron_bruteforce(beta, entry, exit, event, X), abs=1e-10
    )
    h = 1e-6
    E = np.eye(3)
    fd_g = [
        (
            cox_partial(beta + h * e, X, rs, "efron")[0]
            - cox_partial(beta - h * e, X, rs, "efron")[0]
        )
        / (2 * h)
        for e in E
    ]
    assert_allclose(g, fd_g, rtol=1e-6, atol=1e-7)
    fd_H = np.column_stack(
        [
            (
                cox_partial(beta + h * e, X, rs, "efron")[1]
                - cox_partial(beta - h * e, X, rs, "efron")[1]
            )
            / (2 * h)
            for e in E
        ]
    )
    assert_allclose(H, fd_H, rtol=1e-5, atol=1e-6)
