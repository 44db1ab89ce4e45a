"""Survival sample size against R's rpact and closed forms.

References: ``tests/reference/rpact_survival_reference.R`` (rpact 3.3.4
``getSampleSizeSurvival``; its .json output and .Rout log); Schoenfeld's formula and
the event probability by direct numerical integration (scipy.integrate.quad).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats

from alsprog.design._group_sequential import group_sequential
from alsprog.design._survival import event_probability, sample_size_survival
from alsprog.design._survival_batch import cox_batch, logrank_batch
from alsprog.errors import ModelSpecificationError

REF = json.loads(
    (
        Path(__file__).parents[1] / "reference" / "rpact_survival_reference.json"
    ).read_text(encoding="utf-8")
)
REL = 1e-6


def _run(case):
    a = {k: v for k, v in case["args"].items() if v is not None}
    hr = a.pop("hazard_ratio")
    if case["design"] is not None:
        d = {k: v for k, v in case["design"].items() if v is not None}
        a["design"] = group_sequential(d.pop("k"), **d)
    return sample_size_survival(hr, **a)


@pytest.mark.parametrize("case", REF, ids=[c["name"] for c in REF])
def test_equals_rpact(case):
    s = _run(case)
    assert s.events_fixed == pytest.approx(case["eventsFixed"], rel=REL)
    assert s.events == pytest.approx(case["maxNumberOfEvents"], rel=REL)
    assert s.patients == pytest.approx(case["maxNumberOfSubjects"], rel=REL)
    if case["maxNumberOfSubjects1"]:
        assert s.patients_treatment == pytest.approx(
            case["maxNumberOfSubjects1"], rel=REL
        )
        assert s.patients_control == pytest.approx(
            case["maxNumberOfSubjects2"], rel=REL
        )
    np.testing.assert_allclose(
        s.events_per_look, np.atleast_1d(case["cumulativeEventsPerStage"]), rtol=REL
    )
    np.testing.assert_allclose(
        s.analysis_times, np.atleast_1d(case["analysisTime"]), rtol=REL
    )
    np.testing.assert_allclose(
        s.patients_per_look, np.atleast_1d(case["numberOfSubjects"]), rtol=REL
    )
    assert s.expected_study_duration == pytest.approx(case["studyDuration"], rel=REL)
    assert s.expected_events_h1 == pytest.approx(case["expectedEventsH1"], rel=REL)
    assert s.expected_patients_h1 == pytest.approx(
        case["expectedNumberOfSubjectsH1"], rel=REL
    )
    assert s.inputs["control_hazard"] == pytest.approx(case["lambda2"], rel=1e-12)
    assert s.inputs["treatment_hazard"] == pytest.approx(case["lambda1"], rel=1e-12)


def test_reference_covers_the_brief():
    args = [c["args"] for c in REF]
    assert len(REF) >= 12
    assert len({a["hazard_ratio"] for a in args}) >= 5
    assert any(a["control_event_rate"] is not None for a in args)
    assert any(a["control_median_months"] is not None for a in args)
    assert any(a["dropout_rate"] for a in args)
    assert any(a["allocation_ratio"] for a in args)
    assert {a["method"] for a in args} == {None, "freedman"}
    assert sum(c["design"] is not None for c in REF) >= 3


def test_schoenfeld_closed_form():
    s = sample_size_survival(
        0.75,
        accrual_months=12,
        follow_up_months=12,
        control_median_months=20,
        alpha=0.05,
        sided=2,
        power=0.9,
        allocation_ratio=2.0,
    )
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.9)
    assert s.events == pytest.approx(z**2 * 9 / 2 / math.log(0.75) ** 2, rel=1e-12)
    assert s.patients_treatment == pytest.approx(2 * s.patients_control, rel=1e-12)
    assert s.events_ceil == math.ceil(s.events)


@pytest.mark.parametrize("time", [5.0, 12.0, 30.0])
def test_event_probability_by_quadrature(time):
    lam, phi, accrual = 0.04, 0.01, 12.0

    def f(x):
        return lam / (lam + phi) * (1 - math.exp(-(lam + phi) * x))

    lo = max(time - accrual, 0.0)
    want = integrate.quad(f, lo, time, epsabs=0, epsrel=1e-13)[0] / accrual
    assert event_probability(time, accrual, lam, phi) == pytest.approx(want, rel=1e-12)


def test_patients_are_events_over_event_probability():
    s = sample_size_survival(
        0.7,
        accrual_months=12,
        follow_up_months=6,
        control_event_rate=0.4,
        dropout_rate=0.1,
    )
    assert s.patients * s.event_probability == pytest.approx(s.events, rel=1e-12)
    assert s.patients_ceil >= s.patients


def test_design_supplies_alpha_power_sided():
    d = group_sequential(2, alpha=0.05, beta=0.1, sided=2)
    s = sample_size_survival(
        0.7, accrual_months=12, follow_up_months=12, control_median_months=18, design=d
    )
    assert (s.alpha, s.sided) == (0.05, 2) and s.power == pytest.approx(0.9)
    assert s.events == pytest.approx(s.events_fixed * d.inflation_factor, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(hazard_ratio=1.0), "must not be 1"),
        (dict(hazard_ratio=-0.5), "`hazard_ratio` must be in"),
        (dict(control_median_months=None), "exactly one of"),
        (dict(control_event_rate=0.3), "exactly one of"),
        (
            dict(control_median_months=None, control_event_rate=1.2),
            "`control_event_rate`",
        ),
        (dict(control_median_months=0.0), "`control_median_months` must be in"),
        (dict(accrual_months=0.0), "`accrual_months` must be in"),
        (dict(follow_up_months=-1.0), "`follow_up_months` must be in"),
        (dict(dropout_rate=1.0), "`dropout_rate` must be in"),
        (dict(method="logrank"), "`method` must be one of"),
        (dict(alpha=0.0), "`alpha` must be in"),
        (dict(power=0.3), "`power` must exceed 0.5"),
        (dict(sided=3), "`sided` must be an integer"),
        (dict(allocation_ratio=0.0), "`allocation_ratio` must be in"),
        (dict(design="asOF"), "must be a GroupSequentialDesign"),
    ],
)
def test_invalid_arguments(kwargs, match):
    a = dict(
        hazard_ratio=0.7,
        accrual_months=12.0,
        follow_up_months=12.0,
        control_median_months=18.0,
    )
    a.update(kwargs)
    with pytest.raises(ModelSpecificationError, match=match):
        sample_size_survival(a.pop("hazard_ratio"), **a)


def test_design_disagreement_is_an_error():
    d = group_sequential(2)
    with pytest.raises(ModelSpecificationError, match="disagrees with the design"):
        sample_size_survival(
            0.7,
            accrual_months=12,
            follow_up_months=12,
            control_median_months=18,
            design=d,
            alpha=0.05,
        )


# ------------------------------------------------------------ log-rank and Cox
LR = json.loads(
    (
        Path(__file__).parents[1] / "reference" / "survival_logrank_cox_reference.json"
    ).read_text(encoding="utf-8")
)


@pytest.mark.parametrize("case", LR, ids=[c["name"] for c in LR])
def test_logrank_and_cox_equal_r_survival(case):
    t, e, a = (np.array(case[k]) for k in ("time", "event", "arm"))
    assert len(np.unique(t)) < t.size or case["name"].endswith("continuous")
    z = logrank_batch(t, e, a)
    assert z.shape == (1,)
    assert z[0] == pytest.approx(case["z"], rel=1e-10)
    assert z[0] ** 2 == pytest.approx(case["chisq"], rel=1e-10)
    fit = cox_batch(t, e, a)
    assert fit.converged.all()
    assert fit.log_hazard_ratio[0] == pytest.approx(case["coef"], rel=1e-8)
    assert fit.se[0] == pytest.approx(case["se"], rel=1e-8)


def test_batch_rows_are_independent_trials():
    # the first 40 patients of each R data set stacked, rows shuffled within each
    # trial, each also with the arms swapped: every row equals its own one-trial
    # fit, and swapping the arms flips the sign
    rng = np.random.default_rng(3)
    n = 40
    cases = [c for c in LR if len(c["time"]) >= n]
    rows_t, rows_e, rows_a = [], [], []
    for c in cases:
        t, e, a = (np.array(c[k])[:n] for k in ("time", "event", "arm"))
        for swap in (False, True):
            perm = rng.permutation(n)
            rows_t.append(t[perm])
            rows_e.append(e[perm])
            rows_a.append(a[perm] ^ swap)
    time, event, arm = np.array(rows_t), np.array(rows_e), np.array(rows_a)
    z = logrank_batch(time, event, arm)
    fit = cox_batch(time, event, arm)
    for i in range(0, len(z), 2):
        zi = logrank_batch(time[i], event[i], arm[i])[0]
        assert z[i] == pytest.approx(zi, rel=1e-12)
        assert z[i + 1] == pytest.approx(-z[i], rel=1e-10)
        assert fit.log_hazard_ratio[i + 1] == pytest.approx(
            -fit.log_hazard_ratio[i], rel=1e-8
        )
        assert fit.se[i + 1] == pytest.approx(fit.se[i], rel=1e-8)
    # the first trial is the first R data set's first n patients: compare with the
    # hand-computed log-rank sums
    t, e, a = time[0], event[0], arm[0]
    o_e = v = 0.0
    for u in np.unique(t[e]):
        at = t >= u
        nn, n1 = at.sum(), (at & a).sum()
        d, d1 = (e & (t == u)).sum(), (e & (t == u) & a).sum()
        o_e += d1 - d * n1 / nn
        v += d * (n1 / nn) * (1 - n1 / nn) * (nn - d) / max(nn - 1, 1)
    assert z[0] == pytest.approx(o_e / math.sqrt(v), rel=1e-12)


def test_cox_score_is_zero_at_the_estimate_and_se_is_curvature():
    c = LR[1]
    t, e, a = (np.array(c[k]) for k in ("time", "event", "arm"))
    fit = cox_batch(t, e, a)
    b = fit.log_hazard_ratio[0]

    def loglik(beta):
        out = 0.0
        for u in np.unique(t[e]):
            at = t >= u
            d, d1 = (e & (t == u)).sum(), (e & (t == u) & a).sum()
            out += d1 * beta - d * math.log(
                (at & ~a).sum() + (at & a).sum() * math.exp(beta)
            )
        return out

    h = 1e-4
    assert (loglik(b + h) - loglik(b - h)) / (2 * h) == pytest.approx(0, abs=1e-7)
    curv = -(loglik(b + h) - 2 * loglik(b) + loglik(b - h)) / h**2
    assert fit.se[0] == pytest.approx(1 / math.sqrt(curv), rel=1e-5)


def test_no_events_or_one_sided_events_give_nan():
    time = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    event = np.array([[False] * 4, [True, False, True, False]])
    arm = np.array([[False, True, False, True]] * 2)
    z = logrank_batch(time, event, arm)
    assert np.isnan(z[0]) and np.isfinite(z[1])
    fit = cox_batch(time, event, arm)
    assert np.isnan(fit.log_hazard_ratio).all() and not fit.converged.any()


def test_batch_speed_1000_trials_of_600():
    import time as _time

    rng = np.random.default_rng(11)
    k, n = 1000, 600
    arm = np.broadcast_to(np.arange(n) % 2 == 1, (k, n))
    t = rng.exponential(1 / np.where(arm, 0.7, 1.0))
    c = rng.uniform(0, 2, (k, n))
    time, event = np.minimum(t, c).round(2), t <= c
    t0 = _time.perf_counter()
    z = logrank_batch(time, event, arm)
    fit = cox_batch(time, event, arm)
    elapsed = _time.perf_counter() - t0
    assert fit.converged.all()
    # Cox score test at 0 is the log-rank test without the ties correction: close
    assert np.corrcoef(z, fit.z)[0, 1] > 0.999
    assert elapsed < 5.0  # about 0.4 s on one core


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([[1.0, 2.0]], [[True]], [[True, False]]), "one shape"),
        (([[1.0, -2.0]], [[True, True]], [[True, False]]), "non-negative"),
        (([[1.0, np.nan]], [[True, True]], [[True, False]]), "finite"),
        (([[1.0, 2.0]], [[2, 1]], [[True, False]]), "`event` must be boolean"),
        (([[1.0, 2.0]], [[1, 1]], [["a", "b"]]), "`arm` must be boolean"),
        (([[1.0]], [[True]], [[True]]), "at least 2 patients"),
    ],
)
def test_batch_invalid_input(args, match):
    with pytest.raises(ModelSpecificationError, match=match):
        logrank_batch(*args)
    with pytest.raises(ModelSpecificationError, match=match):
        cox_batch(*args)


def test_chunked_analysis_equals_whole(monkeypatch):
    import alsprog.design._survival_batch as sb

    rng = np.random.default_rng(5)
    k, n = 23, 50
    arm = rng.random((k, n)) < 0.5
    time = rng.exponential(1.0, (k, n)).round(1)
    event = rng.random((k, n)) < 0.7
    z = logrank_batch(time, event, arm)
    fit = cox_batch(time, event, arm)
    monkeypatch.setattr(sb, "_CHUNK_CELLS", 7 * n)  # chunks of 7 trials
    np.testing.assert_array_equal(logrank_batch(time, event, arm), z)
    chunked = cox_batch(time, event, arm)
    np.testing.assert_array_equal(chunked.log_hazard_ratio, fit.log_hazard_ratio)
    np.testing.assert_array_equal(chunked.se, fit.se)
