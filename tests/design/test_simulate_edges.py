"""simulate_power and power_curve at their edges: every limit, every result field (issue 20).

Most tests replace the per-chunk simulation (``run_trials``) by a fake whose trials
are known in advance, so the orchestration (chunks, child seeds, the specification
handed to each chunk, power, its Monte Carlo SE, screen failure and the attrition
table) is checked against numbers computed here; a few run real, tiny trials.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import alsprog.design._simulate as sim
from alsprog.design import (
    BaselineMarker,
    Enrichment,
    TrialDesign,
    enriched_design,
    power_curve,
    simulate_power,
)
from alsprog.design._simulate import MAX_PER_ARM, MAX_SIMS, PowerResult
from alsprog.errors import ModelSpecificationError

FA = BaselineMarker("fa_cst_left", mean=0.52, sd=0.03, corr_slope=0.5)
DFS = BaselineMarker("delta_fs", mean=0.7, sd=0.5, corr_slope=-0.5, lognormal=True)
#: The fake chunk's realised fractions seen per visit, treated and control.
SEEN_T = np.array([1.0, 0.9, 0.8, 0.7, 0.6])
SEEN_C = np.array([1.0, 0.8, 0.6, 0.4, 0.2])


class FakeChunks:
    """Stands in for ``run_trials``: trial i of a chunk rejects when i is even;
    every trial screens ``screen`` times its enrolled patients."""

    def __init__(self, screen: float = 1.0):
        self.calls: list[dict] = []
        self.screen = screen

    def __call__(self, design, spec, plan, k, seed):
        self.calls.append(
            {
                "design": design,
                "spec": spec,
                "k": k,
                "seed": seed,
                "analysis": plan.endpoint,
            }
        )
        n = spec.n_t + spec.n_c
        rows = [
            {
                "estimate": 0.1 * i,
                "reject": i % 2 == 0,
                "n_patients": n,
                "n_screened": self.screen * n,
                "chunk": len(self.calls) - 1,
            }
            for i in range(k)
        ]
        return rows, k * spec.n_t * SEEN_T, k * spec.n_c * SEEN_C


@pytest.fixture
def fake(monkeypatch):
    f = FakeChunks()
    monkeypatch.setattr(sim, "run_trials", f)
    return f


def _run(design=None, n=10, **kw):
    kw.setdefault("n_jobs", 1)
    kw.setdefault("progress", False)
    kw.setdefault("n_sims", 7)
    return simulate_power(TrialDesign() if design is None else design, n, **kw)


# ------------------------------------------------------------------ the arguments


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n": 1}, "`n_per_arm` must be an integer >= 2; got 1."),
        ({"n": 2.5}, "`n_per_arm` must be an integer >= 2; got 2.5."),
        (
            {"n": MAX_PER_ARM + 1},
            "`n_per_arm` must be at most 100,000; got 100,001.",
        ),
        ({"n_sims": 0}, "`n_sims` must be an integer >= 1; got 0."),
        (
            {"n_sims": MAX_SIMS + 1},
            "`n_sims` must be at most 10,000,000; got 10,000,001.",
        ),
        ({"chunk_size": 0}, "`chunk_size` must be an integer >= 1; got 0."),
        ({"n_jobs": 0}, "`n_jobs` must be a non-zero integer"),
        ({"analysis": "gee"}, "`analysis` must be one of 'slope', 'mmrm'; got 'gee'."),
        (
            {"effect": "multiplicative"},
            "`effect` must be one of 'additive', 'proportional'; got 'multiplicative'.",
        ),
        ({"dropout": 1}, r"`dropout` must be in [0, 1); got 1."),
        ({"dropout": -0.01}, r"`dropout` must be in [0, 1); got -0.01."),
        ({"death_hazard": 1.0}, r"`death_hazard` must be in [0, 1); got 1.0."),
        ({"death_hazard": -1e-9}, r"`death_hazard` must be in [0, 1); got -1e-09."),
        ({"covariates": "fa"}, "`covariates` must be a sequence of BaselineMarker"),
        ({"enrichment": DFS}, "`enrichment` must be an Enrichment."),
        ({"progress": "yes"}, "`progress` must be True, False or None; got 'yes'."),
        ({"progress": 2}, "`progress` must be True, False or None; got 2."),
    ],
)
def test_bad_arguments_name_the_value(fake, kwargs, error):
    with pytest.raises(ModelSpecificationError) as info:
        _run(**kwargs)
    assert type(info.value) is ModelSpecificationError
    assert str(info.value).startswith(error)
    assert fake.calls == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 2},
        {"n": MAX_PER_ARM},
        {"n_sims": 1},
        {"chunk_size": 1},
        {"dropout": 0.0},
        {"dropout": 0.999},
        {"death_hazard": 0.999},
        {"death_hazard": 0},
    ],
)
def test_arguments_at_the_limit_are_accepted(fake, kwargs):
    r = _run(**kwargs)
    spec = fake.calls[0]["spec"]
    assert r.n_per_arm == spec.n_t == kwargs.get("n", 10)
    assert r.dropout == spec.dropout == kwargs.get("dropout", 0.0)
    assert r.death_hazard == spec.death_hazard == kwargs.get("death_hazard", 0.0)
    assert sum(c["k"] for c in fake.calls) == r.n_sims == kwargs.get("n_sims", 7)


def test_largest_number_of_simulations_is_accepted(monkeypatch):
    sizes = []

    def one_row(design, spec, plan, k, seed):  # one row stands for k trials
        sizes.append(k)
        return [{"reject": True, "n_patients": 4, "n_screened": 4}], SEEN_T, SEEN_C

    monkeypatch.setattr(sim, "run_trials", one_row)
    r = _run(n_sims=MAX_SIMS, chunk_size=MAX_SIMS)
    assert sizes == [MAX_SIMS]
    assert r.n_sims == MAX_SIMS


def test_design_must_be_a_design_or_fitted_model(fake):
    for bad in (
        SimpleNamespace(fe_params_=pd.Series({"months": -1.0})),
        SimpleNamespace(cov_re_=pd.DataFrame()),
        "design",
    ):
        with pytest.raises(ModelSpecificationError) as info:
            simulate_power(bad, 10, n_sims=2, n_jobs=1, progress=False)
        assert str(info.value) == (
            "`design` must be a TrialDesign or a fitted LinearMixedModel; got "
            f"{type(bad).__name__}."
        )
    assert fake.calls == []


def test_fitted_model_becomes_its_design(fake):
    names = ["Intercept", "months"]
    model = SimpleNamespace(
        fe_params_=pd.Series([35.0, -0.7], index=names),
        cov_re_=pd.DataFrame([[16.0, 0.2], [0.2, 0.25]], index=names, columns=names),
        scale_=3.0,
    )
    r = simulate_power(model, 10, n_sims=3, n_jobs=1, progress=False)
    d = fake.calls[0]["design"]
    assert isinstance(d, TrialDesign) and r.design is d
    assert (d.mean_slope, d.sig2_int, d.sig2_slope, d.cov_int_slope, d.sig2_e) == (
        -0.7,
        16.0,
        0.25,
        0.2,
        3.0,
    )


# --------------------------------------------------------- chunks, seeds and spec


@pytest.mark.parametrize(
    "n_sims, chunk_size, sizes",
    [(7, 3, [3, 3, 1]), (6, 3, [3, 3]), (2, 5, [2]), (4, 1, [1, 1, 1, 1])],
)
def test_trials_are_split_into_chunks(fake, n_sims, chunk_size, sizes):
    r = _run(n_sims=n_sims, chunk_size=chunk_size)
    assert [c["k"] for c in fake.calls] == sizes
    # rows are numbered over all chunks, in order
    assert r.estimates["trial"].tolist() == list(range(n_sims))
    assert list(r.estimates.columns)[0] == "trial"
    assert r.estimates["chunk"].tolist() == [
        j for j, k in enumerate(sizes) for _ in range(k)
    ]


def test_each_chunk_gets_a_child_of_one_seed_sequence(fake):
    _run(n_sims=7, chunk_size=3, seed=2)
    # the generator's first draw in [0, 2**63 - 1) is the entropy of the sequence
    # (seed 2: a draw in [0, 2**63 - 2) would differ, so the range is pinned too)
    assert int(np.random.default_rng(2).integers(0, 2**63 - 2)) != int(
        np.random.default_rng(2).integers(0, 2**63 - 1)
    )
    entropy = int(np.random.default_rng(2).integers(0, 2**63 - 1))
    seeds = [c["seed"] for c in fake.calls]
    assert [s.entropy for s in seeds] == [entropy] * 3
    assert [s.spawn_key for s in seeds] == [(0,), (1,), (2,)]
    # a Generator passes through: the same draws as its seed
    fake.calls.clear()
    _run(n_sims=7, chunk_size=3, seed=np.random.default_rng(2))
    assert [c["seed"].entropy for c in fake.calls] == [entropy] * 3


def test_the_specification_each_chunk_gets(fake):
    r = _run(
        TrialDesign(allocation_ratio=2.0),
        7,
        dropout=0.2,
        death_hazard=0.1,
        covariates=FA,
        effect="proportional",
        analysis="mmrm",
    )
    assert {c["analysis"] for c in fake.calls} == {"mmrm"}
    spec = fake.calls[0]["spec"]
    # 7 / 2 = 3.5, rounded half to even: 4
    assert (spec.n_t, spec.n_c) == (7, 4)
    assert (spec.dropout, spec.death_hazard) == (0.2, 0.1)
    assert spec.covariates == (FA,)
    assert spec.enrichment is None and spec.delta is None
    assert spec.effect == "proportional"
    assert r.n_control == 4 and r.analysis == "mmrm"


@pytest.mark.parametrize(
    "ratio, n, n_control",
    [(1.0, 2, 2), (2.0, 5, 2), (2.0, 7, 4), (4.0, 5, 2), (0.5, 3, 6), (3.0, 10, 3)],
)
def test_control_arm_size(fake, ratio, n, n_control):
    # n / ratio rounded (half to even), at least 2
    r = _run(TrialDesign(allocation_ratio=ratio), n)
    assert r.n_control == fake.calls[0]["spec"].n_c == n_control
    assert r.n_per_arm == n


def test_enrichment_passes_the_enrolled_populations_effect(fake):
    d = TrialDesign(slowing=0.3)
    enr = Enrichment(DFS, quantile=0.5)
    _run(d, enrichment=enr)
    spec = fake.calls[0]["spec"]
    assert spec.enrichment is enr
    # additive: slowing of the enrolled population's (steeper) mean slope
    assert spec.delta == pytest.approx(abs(enriched_design(d, enr).mean_slope) * 0.3)
    assert spec.delta > d.delta
    fake.calls.clear()
    _run(d, enrichment=enr, effect="proportional")
    assert fake.calls[0]["spec"].delta is None
    assert fake.calls[0]["spec"].enrichment is enr


# ------------------------------------------------------------------ the result


def test_every_result_field(fake):
    d = TrialDesign(retention=(1.0, 0.9, 0.8, 0.7, 0.6), allocation_ratio=2.0)
    before = time.perf_counter()
    r = _run(d, 9, n_sims=7, chunk_size=3, dropout=0.1, death_hazard=0.2)
    took = time.perf_counter() - before
    # chunks of 3, 3, 1; trial i of a chunk rejects when i is even: 5 of 7
    assert r.power == pytest.approx(5 / 7, rel=1e-15)
    assert r.se == pytest.approx(math.sqrt(5 / 7 * 2 / 7 / 7), rel=1e-15)
    assert (r.n_sims, r.n_per_arm, r.n_control) == (7, 9, 4)
    assert r.analysis == "slope"
    assert r.screen_failure == 0.0
    assert len(r.estimates) == 7
    assert r.design is d
    assert 0.0 < r.seconds <= took
    assert r.retention == (1.0, 0.9, 0.8, 0.7, 0.6)
    assert (r.dropout, r.death_hazard) == (0.1, 0.2)
    expected = pd.DataFrame(
        {
            "months": [0.0, 3.0, 6.0, 9.0, 12.0],
            "retention": [1.0, 0.9, 0.8, 0.7, 0.6],
            "observed": (9 * SEEN_T + 4 * SEEN_C) / 13,
            "observed_treatment": SEEN_T,
            "observed_control": SEEN_C,
        }
    )
    pd.testing.assert_frame_equal(r.attrition, expected, rtol=1e-14)


def test_no_retention_is_a_column_of_ones(fake):
    d = TrialDesign(visit_months=(0, 2, 4.5, 9, 13))
    r = _run(d, 5)
    assert r.retention is None
    assert r.attrition["retention"].tolist() == [1.0] * 5
    assert r.attrition["months"].tolist() == [0.0, 2.0, 4.5, 9.0, 13.0]


def test_screen_failure_is_the_unenrolled_fraction(monkeypatch):
    f = FakeChunks(screen=4.0)  # 4 screened per enrolled patient
    monkeypatch.setattr(sim, "run_trials", f)
    r = _run()
    assert r.screen_failure == pytest.approx(0.75, rel=1e-15)
    g = FakeChunks(screen=0.0)  # nobody counted as screened: no screen failure
    monkeypatch.setattr(sim, "run_trials", g)
    assert _run().screen_failure == 0.0


@pytest.mark.parametrize("p_reject, se", [(0, 0.0), (1, 0.0)])
def test_certain_outcomes_have_zero_standard_error(monkeypatch, p_reject, se):
    def run(design, spec, plan, k, seed):
        rows = [{"reject": bool(p_reject), "n_patients": 4, "n_screened": 4}] * k
        return rows, np.zeros(5), np.zeros(5)

    monkeypatch.setattr(sim, "run_trials", run)
    r = _run(n_sims=5)
    assert r.power == float(p_reject) and r.se == se
    assert r.attrition["observed"].tolist() == [0.0] * 5


def test_progress_bar_is_told_what_is_counted(fake, monkeypatch):
    seen = []

    def bar(parts, **kw):
        seen.append(kw)
        return parts

    monkeypatch.setattr(sim, "progress_bar", bar)
    _run(n_sims=7, chunk_size=3, progress=None)
    _run(n_sims=4, chunk_size=4, progress=True)
    assert seen == [
        {"progress": None, "total": 3, "desc": "simulating 7 trials", "unit": "chunk"},
        {"progress": True, "total": 1, "desc": "simulating 4 trials", "unit": "chunk"},
    ]


def test_chunks_go_to_joblib_as_a_generator(fake, monkeypatch):
    import joblib

    made = []
    real = joblib.Parallel

    def parallel(**kw):
        made.append(kw)
        return real(**(kw | {"n_jobs": 1}))

    monkeypatch.setattr(joblib, "Parallel", parallel)
    _run(n_jobs=3)
    _run(n_jobs=-1)
    assert made == [
        {"n_jobs": 3, "return_as": "generator"},
        {"n_jobs": -1, "return_as": "generator"},
    ]


def test_log_line_reports_trials_and_power(fake, caplog):
    with caplog.at_level(logging.INFO, logger="alsprog.design._simulate"):
        _run(n_sims=7, chunk_size=3)
    (msg,) = [r.getMessage() for r in caplog.records if r.name == sim.__name__]
    assert msg.startswith("simulated 7 trials in ")
    assert msg.endswith(" s (power 0.714)")


def test_power_result_defaults_repr_and_frozen():
    d = TrialDesign()
    r = PowerResult(0.5, 0.05, 100, 40, 40, "slope", 0.0, pd.DataFrame(), d)
    assert r.seconds == 0.0 and r.retention is None
    assert r.dropout == 0.0 and r.death_hazard == 0.0
    assert isinstance(r.attrition, pd.DataFrame) and r.attrition.empty
    assert repr(r) == (
        "PowerResult(power=0.5000, se=0.0500, n_sims=100, n_per_arm=40, "
        "endpoint='slope', retention=None, dropout=0, death_hazard=0, "
        "screen_failure=0.000)"
    )
    r2 = dataclasses.replace(
        r, retention=(1.0, 0.85, 0.725), dropout=0.1, screen_failure=0.4567
    )
    assert repr(r2) == (
        "PowerResult(power=0.5000, se=0.0500, n_sims=100, n_per_arm=40, "
        "endpoint='slope', retention=[1, 0.85, 0.725], dropout=0.1, "
        "death_hazard=0, screen_failure=0.457)"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.power = 0.9  # type: ignore[misc]


# ------------------------------------------------------------- real, tiny trials


def test_smallest_real_trial():
    r = simulate_power(TrialDesign(), 2, n_sims=1, seed=0, n_jobs=1, progress=False)
    row = r.estimates.iloc[0]
    assert (r.n_per_arm, r.n_control, r.n_sims) == (2, 2, 1)
    assert row["n_patients"] == 4 and row["n_observations"] == 20
    assert row["n_screened"] == 4 and r.screen_failure == 0.0
    assert r.power in (0.0, 1.0) and r.se == 0.0
    assert r.attrition["observed"].tolist() == [1.0] * 5
    assert row["reject"] == (row["p_value"] < 0.05)


def test_real_run_reproducible_and_unequal_allocation():
    d = TrialDesign(allocation_ratio=2.0, slowing=0.5)
    a = simulate_power(d, 7, n_sims=3, chunk_size=2, seed=5, n_jobs=1, progress=False)
    b = simulate_power(d, 7, n_sims=3, chunk_size=2, seed=5, n_jobs=1, progress=False)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    assert a.estimates["n_patients"].tolist() == [11, 11, 11]
    assert a.n_control == 4


def test_progress_bar_on_stderr(capsys):
    simulate_power(TrialDesign(), 4, n_sims=2, seed=1, n_jobs=1, progress=True)
    err = capsys.readouterr().err
    assert "simulating 2 trials" in err and "chunk" in err


# ---------------------------------------------------------------- power_curve


def test_power_curve_arguments():
    d = TrialDesign()
    cases = [
        ({"design": "d"}, "`design` must be a TrialDesign; got str."),
        ({"n_per_arm": [10, 0]}, "`n_per_arm` must be in (0, inf); got 0."),
        ({"n_per_arm": [-1]}, "`n_per_arm` must be in (0, inf); got -1."),
        (
            {"slowing": ["fast"]},
            "`slowing` must be a number in (-inf, inf); got 'fast'.",
        ),
        ({"simulate": "yes"}, "`simulate` must be one of True, False; got 'yes'."),
        ({"n_sims": 0}, "`n_sims` must be an integer >= 1; got 0."),
        (
            {"n_sims": MAX_SIMS + 1},
            "`n_sims` must be at most 10,000,000; got 10,000,001.",
        ),
        ({"analysis": "gee"}, "`analysis` must be one of 'slope', 'mmrm'; got 'gee'."),
        (
            {"method": "gls"},
            "`method` must be one of 'edland', 'diggle', 'liu_liang'; got 'gls'.",
        ),
        (
            {"foo": 1, "bar": 2},
            "unknown option(s) 'bar', 'foo' for simulate_power; valid: chunk_size, "
            "covariates, death_hazard, dropout, effect, enrichment.",
        ),
    ]
    for kwargs, error in cases:
        args = {"design": d, "n_per_arm": [10]} | kwargs
        with pytest.raises(ModelSpecificationError) as info:
            power_curve(args.pop("design"), args.pop("n_per_arm"), **args)
        assert type(info.value) is ModelSpecificationError
        assert str(info.value) == error, (kwargs, str(info.value))


def test_power_curve_at_the_limits_is_analytic():
    d = TrialDesign(retention=(1.0, 0.8, 0.7, 0.6, 0.5), allocation_ratio=2.0)
    c = power_curve(d, [1e-9, 40, 120], slowing=[0.2, 0.4], n_sims=MAX_SIMS)
    pd.testing.assert_frame_equal(
        c, power_curve(d, [1e-9, 40, 120], slowing=[0.2, 0.4], n_sims=1)
    )
    assert list(c.columns) == ["n_per_arm", "slowing", "delta", "power"]
    assert c["n_per_arm"].tolist() == [1e-9, 40, 120] * 2
    assert c["slowing"].tolist() == [0.2] * 3 + [0.4] * 3
    for method in ("edland", "diggle", "liu_liang"):
        c = power_curve(d, [40, 120], slowing=[0.2, 0.4], method=method)
        for row in c.itertuples():
            e = dataclasses.replace(d, slowing=row.slowing)
            assert row.delta == pytest.approx(0.9 * row.slowing)
            assert row.power == pytest.approx(
                e.power_at(row.n_per_arm, method=method).power, rel=1e-12
            )
    # default grid and slowing: the design's own curve
    pd.testing.assert_frame_equal(power_curve(d), d.power_curve())


def test_power_curve_simulates_every_point(fake, monkeypatch):
    calls = []
    real = sim.simulate_power

    def spy(design, n, **kw):
        calls.append((design, n, kw))
        return real(design, n, **kw)

    monkeypatch.setattr(sim, "simulate_power", spy)
    d = TrialDesign()
    opts = {
        "dropout": 0.1,
        "death_hazard": 0.05,
        "enrichment": Enrichment(DFS, quantile=0.5),
        "covariates": (FA,),
        "effect": "proportional",
        "chunk_size": 2,
    }
    c = power_curve(
        d,
        [2.6, 7],
        slowing=[0.3, 0.6],
        simulate=True,
        n_sims=5,
        analysis="mmrm",
        seed=21,
        n_jobs=1,
        progress=False,
        **opts,
    )
    rng = np.random.default_rng(21)
    seeds = [int(rng.integers(0, 2**31 - 1)) for _ in range(4)]
    assert [n for _, n, _ in calls] == [3, 7, 3, 7]
    assert [x.slowing for x, _, _ in calls] == [0.3, 0.3, 0.6, 0.6]
    for (x, _, kw), s in zip(calls, seeds, strict=True):
        assert x == dataclasses.replace(d, slowing=x.slowing)
        assert (
            kw
            == {
                "n_sims": 5,
                "analysis": "mmrm",
                "seed": s,
                "n_jobs": 1,
                "progress": False,
            }
            | opts
        )
    # chunks of 2, 2, 1; the even trials of each chunk reject: 3 of 5
    assert c["simulated_power"].tolist() == [0.6] * 4
    assert c["simulated_se"].tolist() == [math.sqrt(0.6 * 0.4 / 5)] * 4
    assert list(c.columns) == [
        "n_per_arm",
        "slowing",
        "delta",
        "power",
        "simulated_power",
        "simulated_se",
    ]
    analytic = power_curve(d, [2.6, 7], slowing=[0.3, 0.6])
    pd.testing.assert_frame_equal(c[analytic.columns], analytic)


def test_power_curve_simulated_is_monotone_and_reproducible():
    d = TrialDesign(slowing=0.5, visit_months=(0, 6, 12))
    args = dict(simulate=True, n_sims=20, seed=2, n_jobs=1, progress=False)
    a = power_curve(d, [4, 60], **args)
    b = power_curve(d, [4, 60], **args)
    pd.testing.assert_frame_equal(a, b)
    assert a["simulated_power"].iloc[0] < a["simulated_power"].iloc[1]
    p = a["simulated_power"].to_numpy()
    np.testing.assert_allclose(a["simulated_se"], np.sqrt(p * (1 - p) / 20))


def test_power_curve_simulation_defaults(fake, monkeypatch):
    calls = []
    real = sim.simulate_power

    def spy(design, n, **kw):
        calls.append(kw)
        return real(design, n, **kw)

    monkeypatch.setattr(sim, "simulate_power", spy)
    c = power_curve(TrialDesign(), [4], simulate=True, seed=3)
    seed = int(np.random.default_rng(3).integers(0, 2**31 - 1))
    assert calls == [
        {
            "n_sims": 200,
            "analysis": "slope",
            "seed": seed,
            "n_jobs": 1,
            "progress": None,
        }
    ]
    # 200 trials in chunks of 50: the even trials of each chunk reject, half of all
    assert c["simulated_power"].tolist() == [0.5]
    assert c["simulated_se"].tolist() == [math.sqrt(0.25 / 200)]


def test_simulate_power_defaults(fake, monkeypatch):
    import joblib

    made = []
    real = joblib.Parallel

    def parallel(**kw):
        made.append(kw)
        return real(**(kw | {"n_jobs": 1}))

    monkeypatch.setattr(joblib, "Parallel", parallel)
    r = simulate_power(TrialDesign(), 10, seed=1, progress=False)
    # 1000 trials in 20 chunks of 50, all cores, slope analysis, additive effect
    assert r.n_sims == 1000 and len(r.estimates) == 1000
    assert [c["k"] for c in fake.calls] == [50] * 20
    assert made == [{"n_jobs": -1, "return_as": "generator"}]
    assert {c["analysis"] for c in fake.calls} == {"slope"}
    spec = fake.calls[0]["spec"]
    assert spec.effect == "additive" and spec.covariates == ()
    assert (spec.dropout, spec.death_hazard, spec.enrichment) == (0.0, 0.0, None)
    assert r.power == 0.5 and r.analysis == "slope"
