"""Simulated trials lose patients as the design's retention says (issue 18, item 2).

``TrialDesign.retention`` is the attrition the analytic formulas assume (monotone,
non-informative; a fraction ``r[k] - r[k+1]`` has its last visit at ``k``).
``simulate_power`` must simulate exactly that, so that simulated and analytic power
agree within Monte Carlo error; ``dropout``/``death_hazard`` add informative losses on
top and are reported separately.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from alsprog.design import TrialDesign, power_curve, simulate_power
from alsprog.design._simulated_trials import _simulate_chunk, _Spec

ISSUE = (1.0, 0.5, 0.3, 0.2, 0.1)  # the issue's pattern
MILD = (1.0, 0.95, 0.9, 0.85, 0.8)  # mild, linear (the README config's)
EARLY = (1.0, 0.6, 0.55, 0.5, 0.45)  # a large early drop, then little

#: (retention, design changes, analytic n per arm for 80 % power)
PATTERNS = {
    "none": (None, {}, 126),
    "issue": (ISSUE, {}, 383),
    "mild_linear": (MILD, {}, 140),
    "early_drop": (EARLY, {}, 229),
    # with dropout the intercept variance and its covariance with the slope matter
    "early_drop_correlated_2to1": (
        EARLY,
        {"cov_int_slope": 1.5, "allocation_ratio": 2.0},
        326,
    ),
}


def _mc_tolerance(p: float, n_sims: int) -> float:
    """Three Monte Carlo standard errors of a simulated power whose truth is ``p``."""
    return 3 * math.sqrt(p * (1 - p) / n_sims)


@pytest.mark.parametrize("name", list(PATTERNS))
def test_simulated_power_matches_analytic_under_retention(name):
    # the "none" case is the control: it held before the fix too
    retention, changes, n_expected = PATTERNS[name]
    d = TrialDesign(retention=retention, **changes)
    n = d.sample_size().n_per_arm_ceil
    assert n == n_expected
    target = d.power_at(n).power
    r = simulate_power(d, n, n_sims=1500, seed=18, n_jobs=1, progress=False)
    assert abs(r.power - target) < _mc_tolerance(target, r.n_sims), (
        f"{name}: simulated {r.power:.4f} vs analytic {target:.4f} at n = {n}"
    )
    assert r.estimates["converged"].all()
    assert r.retention == retention


@pytest.mark.veryslow  # a study (make test-all): keeps make test near 15 minutes
@pytest.mark.parametrize("name", list(PATTERNS))
def test_simulated_power_matches_analytic_under_retention_large(name):
    retention, changes, _ = PATTERNS[name]
    d = TrialDesign(retention=retention, **changes)
    n = d.sample_size().n_per_arm_ceil
    target = d.power_at(n).power
    r = simulate_power(d, n, n_sims=10_000, seed=180, n_jobs=1, progress=False)
    assert abs(r.power - target) < _mc_tolerance(target, r.n_sims)
    # the slope-difference estimator stays unbiased under non-informative dropout
    est = r.estimates["estimate"]
    assert est.mean() == pytest.approx(d.delta, abs=4 * est.std() / math.sqrt(len(est)))
    # and its model-based SE matches its spread
    assert r.estimates["std_error"].mean() == pytest.approx(est.std(), rel=0.03)


def test_retention_changes_simulated_power_at_the_same_n():
    # the issue: both gave 0.8367 +- 0.0213 at 126 per arm
    full = TrialDesign()
    lossy = TrialDesign(retention=ISSUE)
    a = simulate_power(full, 126, n_sims=400, seed=7, n_jobs=1, progress=False)
    b = simulate_power(lossy, 126, n_sims=400, seed=7, n_jobs=1, progress=False)
    assert lossy.power_at(126).power == pytest.approx(0.3624, abs=1e-4)
    assert full.power_at(126).power == pytest.approx(0.8018, abs=1e-4)
    assert b.power < a.power - 0.25
    assert abs(b.power - lossy.power_at(126).power) < _mc_tolerance(0.3624, 400)
    assert abs(a.power - full.power_at(126).power) < _mc_tolerance(0.8018, 400)
    assert b.estimates["std_error"].mean() > 1.4 * a.estimates["std_error"].mean()
    # fewer visits analysed: 126 * 2 * (1 + .5 + .3 + .2 + .1) = 529.2 expected
    assert b.estimates["n_observations"].mean() == pytest.approx(529.2, rel=0.02)
    assert (a.estimates["n_observations"] == 126 * 2 * 5).all()


@pytest.mark.parametrize("retention", [ISSUE, MILD, EARLY])
def test_realised_observed_fraction_matches_retention(retention):
    d = TrialDesign(retention=retention)
    r_j = np.asarray(retention)
    chunk = _simulate_chunk(d, _Spec(400, 400), 5, np.random.default_rng(1))
    seen = chunk.mask.mean(axis=(0, 1))  # 4,000 patients
    assert (np.abs(seen - r_j) <= 4 * np.sqrt(r_j * (1 - r_j) / 4000) + 1e-12).all()
    # monotone dropout: a patient missing at a visit is missing at every later one
    assert (np.diff(chunk.mask, axis=2) <= 0).all()
    assert (chunk.mask[..., 0] == 1).all()
    # non-informative: the patients who stay have the same slopes as those who leave
    t = np.asarray(d.visit_months)
    last = chunk.mask.sum(axis=2)  # visits seen
    slopes = np.polyfit(t, chunk.y.reshape(-1, t.size).T, 1)[0].reshape(last.shape)
    stay, leave = slopes[last == 5], slopes[last < 5]
    pooled = math.sqrt(slopes.var() * (1 / stay.size + 1 / leave.size))
    assert abs(stay.mean() - leave.mean()) < 4 * pooled
    # the result reports the realised fractions next to the design's retention
    r = simulate_power(d, 150, n_sims=200, seed=3, n_jobs=1, progress=False)
    att = r.attrition
    assert list(att.columns) == [
        "months",
        "retention",
        "observed",
        "observed_treatment",
        "observed_control",
    ]
    assert att["months"].tolist() == [0.0, 3.0, 6.0, 9.0, 12.0]
    assert att["retention"].tolist() == list(retention)
    n_pat = {"observed": 200 * 300, "observed_treatment": 200 * 150}
    n_pat["observed_control"] = n_pat["observed_treatment"]
    for col, m in n_pat.items():
        se = np.sqrt(att["retention"] * (1 - att["retention"]) / m)
        assert (np.abs(att[col] - att["retention"]) <= 4 * se + 1e-12).all(), col


def test_dropout_and_death_add_on_top_of_retention():
    spec = _Spec(3000, 3000, dropout=0.3, death_hazard=0.2)
    plain = _simulate_chunk(TrialDesign(), spec, 1, np.random.default_rng(4))
    both = _simulate_chunk(
        TrialDesign(retention=MILD), spec, 1, np.random.default_rng(4)
    )
    # same draws: the retention only removes further visits
    np.testing.assert_array_equal(both.y, plain.y)
    assert (both.mask <= plain.mask).all()
    # among those the extra losses left, a fraction retention[j] is still seen
    kept = both.mask[0].sum(axis=0) / plain.mask[0].sum(axis=0)
    np.testing.assert_allclose(kept, MILD, atol=0.02)
    r = simulate_power(
        TrialDesign(retention=MILD),
        100,
        n_sims=100,
        dropout=0.3,
        death_hazard=0.2,
        seed=2,
        n_jobs=1,
        progress=False,
    )
    assert (r.retention, r.dropout, r.death_hazard) == (MILD, 0.3, 0.2)
    assert repr(r).startswith("PowerResult(power=")
    assert (
        "endpoint='slope', retention=[1, 0.95, 0.9, 0.85, 0.8], dropout=0.3, "
        "death_hazard=0.2, screen_failure=0.000)"
    ) in repr(r)
    att = r.attrition
    assert (att["observed"].iloc[1:] < att["retention"].iloc[1:] - 0.02).all()
    # informative extra losses: control patients (steeper decline) leave sooner
    assert att["observed_control"].iloc[-1] < att["observed_treatment"].iloc[-1]
    # retention alone: the result says so
    r0 = simulate_power(TrialDesign(), 20, n_sims=2, seed=1, n_jobs=1, progress=False)
    assert "retention=None, dropout=0, death_hazard=0," in repr(r0)
    assert (r0.attrition["observed"] == 1).all()


def test_seeded_runs_with_retention_reproduce():
    d = TrialDesign(slowing=0.3, retention=EARLY)
    kw = dict(n_sims=30, chunk_size=7, progress=False)
    a = simulate_power(d, 60, seed=3, n_jobs=1, **kw)
    b = simulate_power(d, 60, seed=3, n_jobs=2, **kw)
    c = simulate_power(d, 60, seed=4, n_jobs=1, **kw)
    np.testing.assert_array_equal(a.estimates["estimate"], b.estimates["estimate"])
    assert a.power == b.power
    assert not np.array_equal(a.estimates["estimate"], c.estimates["estimate"])
    # the seeded losses themselves (visits analysed in the first trials)
    assert a.estimates["n_observations"].head(5).tolist() == [358, 386, 353, 361, 343]
    assert a.attrition.equals(b.attrition)
    assert a.attrition["observed"].round(4).tolist() == [
        1.0,
        0.6167,
        0.5592,
        0.5056,
        0.4514,
    ]


def test_power_curve_simulates_the_designs_retention():
    d = TrialDesign(slowing=0.3, retention=ISSUE)
    c = power_curve(d, [100, 266], simulate=True, n_sims=300, seed=5, progress=False)
    assert c["power"].round(4).tolist() == [0.4048, 0.8006]  # 266 = analytic n
    tol = 3 * np.sqrt(c["power"] * (1 - c["power"]) / 300)
    assert (np.abs(c["simulated_power"] - c["power"]) < tol).all()


def test_report_design_stage_checks_the_analytic_n_with_its_retention(tmp_path):
    # the report simulated trials without dropout, so every point sat above the curve
    from alsprog.data import assemble
    from alsprog.report._config import DataConfig, DesignConfig, RunConfig
    from alsprog.report.sections import RunContext
    from alsprog.report.sections.cohort import Cohort
    from alsprog.report.sections.design import stage_design
    from alsprog.simulate import simulate_cohort

    cohort = simulate_cohort(150, months=12, seed=3)
    long = assemble(cohort.visits, cohort.subjects)
    cfg = RunConfig(
        data=DataConfig(visits=tmp_path / "v.csv", subjects=tmp_path / "s.csv"),
        design=DesignConfig(slowing=(0.3,), retention=ISSUE, n_sims=400),
    )
    s = RunContext(config=cfg, out=tmp_path, progress=False)
    s.results["cohort"] = Cohort(long, long.describe(), patients=long, fit_data=long)
    res = stage_design(s)
    row = res.sample_size.iloc[0]
    n = int(row["n_per_arm_ceil"])
    assert n == 262
    target = res.design.power_at(n).power
    assert abs(row["simulated_power"] - target) < _mc_tolerance(target, 400)
    hit = res.power_curve["n_per_arm"] == n
    assert res.power_curve.loc[hit, "simulated_power"].item() == row["simulated_power"]
    assert s.notes["design"] == [
        "simulated trials lose patients as the formula assumes: retention 1, 0.5, "
        "0.3, 0.2, 0.1 (monotone, non-informative); no extra dropout or death"
    ]
