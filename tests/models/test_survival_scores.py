"""Scores of time-to-event predictions against R.

Reference: tests/reference/survival_scores_reference.R: a Cox model of lung.csv
(fitted on 150 patients) predicts the risk at 180, 365 and 540 days for all 227,
written to survival_scores_predictions.csv; ``riskRegression::Score`` (2022.11.28,
``cens.model = "km"``) gives the time-dependent AUC, the Brier score of the model and
of the Kaplan-Meier null model and riskRegression's integrated Brier score, and
``survival::concordance`` (3.5.3) Harrell's C and Uno's C (``timewt = "n/G2"``, with
and without ``ymax = 365``), all on those same numbers.  Brute force: the AUC and
Harrell's C recounted pair by pair.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from alsprog.models.survival._scores import auc_brier, censoring_survival, concordance

REF = Path(__file__).resolve().parents[1] / "reference"
RISKS = ["risk_180", "risk_365", "risk_540"]


@pytest.fixture(scope="module")
def ref():
    return json.loads((REF / "survival_scores_reference.json").read_text())


@pytest.fixture(scope="module")
def pred():
    return pd.read_csv(REF / "survival_scores_predictions.csv")


def test_auc_and_brier_equal_riskregression_score(pred, ref):
    s = auc_brier(pred["time"], pred["event"], pred[RISKS], ref["times"])
    assert_allclose(s.auc, ref["auc"], atol=1e-12)
    assert_allclose(s.brier, ref["brier"], atol=1e-12)
    assert_allclose(s.brier_null, ref["brier_null"], atol=1e-12)
    assert_allclose(s.ibs, ref["ibs"], atol=1e-12)


def test_harrell_and_uno_equal_survival_concordance(pred, ref):
    t, e, lp = pred["time"], pred["event"], pred["lp"]
    assert concordance(t, e, lp) == pytest.approx(ref["harrell"], abs=1e-12)
    assert concordance(t, e, lp, weights="uno") == pytest.approx(ref["uno"], abs=1e-12)
    assert concordance(t, e, lp, weights="uno", tau=365) == pytest.approx(
        ref["uno_365"], abs=1e-12
    )


def test_auc_and_harrell_by_counting_pairs():
    rng = np.random.default_rng(4)
    n = 80
    t = np.round(rng.exponential(10, n))
    e = rng.random(n) < 0.7
    r = np.round(rng.random(n), 1)  # ties in risk
    # Harrell: every comparable pair, one at a time
    num = den = 0.0
    for i in range(n):
        for j in range(n):
            if e[i] and (t[i] < t[j] or (t[i] == t[j] and not e[j])):
                den += 1
                num += 1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0
    assert concordance(t, e, r) == pytest.approx(num / den)
    # AUC at 8 with no censoring before 8 weighs every case and control alike
    e2 = e | (t <= 8)
    cases, ctrls = np.flatnonzero(e2 & (t <= 8)), np.flatnonzero(t > 8)
    pairs = [
        (1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0)
        for i in cases
        for j in ctrls
    ]
    got = auc_brier(t, e2, r[:, None], [8.0]).auc[0]
    assert got == pytest.approx(np.mean(pairs))


def test_censoring_distribution_counts_tied_events_first():
    t = np.array([1.0, 2, 2, 3, 4])
    e = np.array([1, 1, 0, 1, 0])
    jumps, G = censoring_survival(t, e)
    # at 2: four at risk, one of them has its event at 2 first -> 1 - 1/3
    assert jumps.tolist() == [2.0, 4.0]
    assert_allclose(G, [2 / 3, 0.0])


def _pairs_concordance(t, e, r, weights, tau):
    """Concordance by the definition, pair by pair (O(n^2))."""
    from alsprog.models.survival._scores import _G_at, censoring_survival

    jumps, G = censoring_survival(t, e)
    num = den = 0.0
    for i in np.flatnonzero(e):
        if tau is not None and t[i] > tau:
            continue
        later = (t > t[i]) | ((t == t[i]) & ~e)
        w = 1.0
        if weights == "uno":
            w = 1.0 / _G_at(jumps, G, np.array([t[i]]), left=True)[0] ** 2
        num += w * (np.sum(r[i] > r[later]) + 0.5 * np.sum(r[i] == r[later]))
        den += w * later.sum()
    return num / den if den > 0 else np.nan


def test_fast_concordance_equals_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(60):
        n = int(rng.integers(3, 40))
        t = rng.integers(1, 8, n).astype(float)  # tied times and risks
        e = rng.random(n) < 0.6
        r = rng.integers(0, 5, n).astype(float)
        for weights in ("harrell", "uno"):
            for tau in (None, 4.0):
                got = concordance(t, e, r, weights=weights, tau=tau)
                want = _pairs_concordance(t, e, r, weights, tau)
                assert (np.isnan(got) and np.isnan(want)) or abs(got - want) < 1e-12
