"""Trials simulated from the nonlinear course and from historical patients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alsprog.data import assemble
from alsprog.design import (
    CourseSource,
    HistoricalCohort,
    TrialDesign,
    simulate_power,
    simulated_sample_size,
)
from alsprog.design._simulated_trials import _Spec
from alsprog.design._trial_runner import _Plan, draw_chunk
from alsprog.errors import DataValidationError, ModelSpecificationError
from alsprog.simulate import CohortParams, simulate_cohort
from alsprog.simulate._course import death_after, draw_course

GRID = np.array([0.0, 3.0, 6.0, 9.0, 12.0])


# ------------------------------------------------------------------- the course
def test_draw_course_matches_the_cohort_simulator_figures():
    """The lean course has the documented natural history: 12-month realised
    slope mean -0.9 (DOMAIN: simulator defaults), death median 30 months from
    onset."""
    p = CohortParams()
    c = draw_course(p, 40_000, np.random.default_rng(0))
    total_12 = 48.0 / (1.0 + np.exp((c["t0"] + 12 - c["d50"]) / c["dx"]))
    slope = (total_12 - c["baseline"]) / 12
    assert slope.mean() == pytest.approx(p.slope_mean, abs=0.03)
    # population survival from onset: a half alive at the median
    # (conditional on surviving to baseline, so the fraction is a little higher)
    alive = np.mean(c["event_since_onset"] > p.event_median_months)
    assert 0.5 < alive < 0.7


def test_death_after_multiplies_the_hazard_after_baseline():
    """S(t | alive at t0) = exp(-HR ((t/s)^k - (t0/s)^k)): KS test on draws."""
    rng = np.random.default_rng(1)
    n, k, s, t0, hr = 20_000, 1.5, 40.0, 10.0, 0.6
    e = rng.exponential(1.0, n)
    t = death_after(np.full(n, s), np.full(n, t0), e, k, hr)
    assert np.all(t >= t0)

    def cdf(x):
        return 1 - np.exp(-hr * ((x / s) ** k - (t0 / s) ** k))

    assert stats.kstest(t, cdf).pvalue > 0.01
    # HR = 1 reproduces the untreated draw exactly
    np.testing.assert_allclose(
        death_after(np.full(n, s), np.full(n, t0), e, k, 1.0),
        s * ((t0 / s) ** k + e) ** (1 / k),
    )


def _chunk(slowing, hr, seed=3, k=4, n=60, missed=False):
    src = CourseSource(missed_visits=missed)
    return src.draw_trials(
        GRID,
        n // 2,
        n // 2,
        k,
        np.random.default_rng(seed),
        slowing=slowing,
        hazard_ratio=hr,
    )


def test_course_treatment_slows_the_sigmoid_and_moves_only_treated_deaths():
    a, b = _chunk(0.0, 1.0), _chunk(0.5, 0.5)
    treated = a.arm > 0
    # the same patients (same draws): controls identical, treated lose fewer points
    np.testing.assert_array_equal(a.y[~treated], b.y[~treated])
    np.testing.assert_array_equal(a.time[~treated], b.time[~treated])
    loss_a = (a.y[..., 0] - a.y[..., -1])[treated]
    loss_b = (b.y[..., 0] - b.y[..., -1])[treated]
    assert loss_b.mean() < 0.7 * loss_a.mean()
    assert np.all(b.time[treated] >= a.time[treated] - 1e-12)
    # survival censored at the last visit, events only before it
    assert b.time.max() <= 12.0 and np.all(b.time[b.event] <= 12.0)
    # visits stop at death; baseline always seen
    assert np.all(b.mask[..., 0] == 1)
    dead_before = b.event[..., None] & (GRID[None, None, :] >= b.time[..., None])
    assert not np.any(b.mask.astype(bool) & dead_before)


def test_course_true_slowing_is_the_fraction_asked():
    """Without noise the treated patient's decline is (1 - s) of the untreated at
    every visit (disease time runs at 1 - s)."""
    p = CohortParams(residual_sd=0.0)
    src = CourseSource(params=p, missed_visits=False)
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    a = src.draw_trials(GRID, 200, 0, 1, rng_a, slowing=0.0, hazard_ratio=1.0)
    b = src.draw_trials(GRID, 200, 0, 1, rng_b, slowing=0.3, hazard_ratio=1.0)
    # the rounded totals: the 12-month loss ratio is 0.7 up to rounding
    la = a.y[0, :, 0] - a.y[0, :, 1]
    lb = b.y[0, :, 0] - b.y[0, :, 1]
    ok = la >= 6  # a clear loss in the first 3 months
    assert ok.sum() > 5
    assert np.mean(lb[ok] / la[ok]) == pytest.approx(0.7, abs=0.08)


# --------------------------------------------------------------- the historical
def _long(n=80, seed=2):
    c = simulate_cohort(n, months=12, seed=seed)
    return assemble(c.visits, c.subjects)


def test_historical_grid_takes_the_nearest_visit_in_the_window():
    df = pd.DataFrame(
        {
            "subject_id": ["a"] * 5 + ["b"] * 3,
            "months": [0.0, 2.9, 3.4, 6.8, 12.9, 0.0, 5.0, 9.0],
            "alsfrs_r_total": [40, 38, 37, 35, 30, 44, 43, 41],
            "death_or_tracheostomy_months": [13.0] * 5 + [9.5] * 3,
            "event_observed": [False] * 5 + [True] * 3,
        }
    )
    h = HistoricalCohort.from_table(df, visit_months=GRID)
    # a: 3 -> 2.9 (nearer than 3.4); 6 -> none within 1.5 of 6? 6.8 yes; 9 -> none;
    # 12 -> 12.9 (0.9 away)
    np.testing.assert_array_equal(h.y[0], [40, 38, 35, np.nan, 30])
    np.testing.assert_array_equal(h.y[1], [44, np.nan, 43, 41, np.nan])
    np.testing.assert_array_equal(h.time, [13.0, 9.5])
    np.testing.assert_array_equal(h.event, [False, True])
    assert h.has_survival and h.subjects == ("a", "b")


def test_historical_censored_patient_is_alive_at_the_visits_they_fill():
    """PRO-ACT censors the living at their last visit (11.8 months for the
    12-month visit): they are known alive at the scheduled visit they fill."""
    df = pd.DataFrame(
        {
            "subject_id": ["a", "a", "b", "b", "c", "c"],
            "months": [0.0, 11.8, 0.0, 11.7, 0.0, 5.0],
            "alsfrs_r_total": [40, 33, 42, 40, 38, 35],
            "death_or_tracheostomy_months": [11.8, 11.8, 11.75, 11.75, 5.0, 5.0],
            "event_observed": [False, False, True, True, False, False],
        }
    )
    h = HistoricalCohort.from_table(df, visit_months=GRID)
    # a: censored at 11.8 but seen for the 12-month visit -> alive at 12;
    # b: died at 11.75 (event kept); c: censored at 5, last filled visit 6 -> 6
    np.testing.assert_array_equal(h.time, [12.0, 11.75, 6.0])
    np.testing.assert_array_equal(h.event, [False, True, False])


def test_historical_nelson_aalen_and_hazard_ratio_transform():
    rng = np.random.default_rng(4)
    n = 4000
    t = rng.exponential(10.0, n)
    df = pd.DataFrame(
        {
            "subject_id": [f"s{i}" for i in range(n)],
            "months": 0.0,
            "alsfrs_r_total": 40.0,
            "death_or_tracheostomy_months": t,
            "event_observed": True,
        }
    )
    h = HistoricalCohort.from_table(df, visit_months=[0, 100, 200])
    times, H = h.cumulative_hazard()
    # Nelson-Aalen of an exponential(10): H(t) ~ t / 10
    mid = times < 15
    assert np.max(np.abs(H[mid] - times[mid] / 10)) < 0.08
    d = h.draw_trials([0, 100, 200], 3000, 3000, 1, rng, slowing=0.0, hazard_ratio=0.5)
    tt, ee, arm = d.time[0], d.event[0], d.arm[0] > 0
    # treated: hazard halved -> mean twice as long (up to the tail censored at max)
    assert np.median(tt[arm]) / np.median(tt[~arm]) == pytest.approx(2.0, rel=0.1)
    assert ee[~arm].all()


def test_historical_resampling_applies_the_slowing_to_each_patient():
    h = HistoricalCohort.from_table(_long(), visit_months=GRID)
    rng = np.random.default_rng(0)
    d = h.draw_trials(GRID, 50, 50, 2, rng, slowing=0.4, hazard_ratio=1.0)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(h.subjects), (2, 100))
    base = h.y[idx]
    seen = np.isfinite(base)
    np.testing.assert_array_equal(d.mask > 0, seen)
    want = np.where(
        (d.arm > 0)[..., None], base[..., :1] + 0.6 * (base - base[..., :1]), base
    )
    np.testing.assert_allclose(d.y[seen], want[seen])
    # the trial runner draws the same trials from the same seed
    chunk = draw_chunk(
        TrialDesign(slowing=0.4),
        _Spec(50, 50),
        _Plan(source=h, slowing=0.4),
        2,
        np.random.default_rng(0),
    )
    np.testing.assert_allclose(chunk.y, d.y)
    with pytest.raises(ModelSpecificationError, match="historical cohort is on visits"):
        h.draw_trials([0, 6, 12], 5, 5, 1, rng, slowing=0.0, hazard_ratio=1.0)


def test_historical_errors_name_the_column_subject_and_value():
    df = _long(10)
    with pytest.raises(DataValidationError, match="column 'alsfrs_r_total' is missing"):
        HistoricalCohort.from_table(df.drop(columns="alsfrs_r_total"))
    bad = df.assign(months=df["months"].astype(object))
    bad.loc[3, "months"] = "soon"
    with pytest.raises(DataValidationError, match=r"row 4, subject .*'soon' is not a"):
        HistoricalCohort.from_table(bad)
    bad = df.copy()
    bad.loc[bad.index[1], "death_or_tracheostomy_months"] = 999.0
    with pytest.raises(DataValidationError, match="survival differs"):
        HistoricalCohort.from_table(bad)
    with pytest.raises(DataValidationError, match="no row has arm"):
        HistoricalCohort.from_table(
            df.assign(arm="active"), arm="arm", arm_values=["placebo"]
        )
    with pytest.raises(ModelSpecificationError, match="increasing months"):
        HistoricalCohort.from_table(df, visit_months=[3, 6])


# ---------------------------------------------------------- simulate_power wiring
def test_simulate_power_with_course_and_historical_sources():
    d = TrialDesign()
    r = simulate_power(
        d,
        40,
        n_sims=20,
        source="course",
        seed=1,
        n_jobs=1,
        progress=False,
        type_one_error=True,
    )
    assert r.source == "course" and r.type_one_error is not None
    assert 0 <= r.power <= 1 and len(r.estimates) == 20
    h = HistoricalCohort.from_table(_long(), visit_months=d.visit_months)
    r2 = simulate_power(d, 40, n_sims=20, source=h, seed=1, n_jobs=1, progress=False)
    assert r2.source.startswith("historical")
    again = simulate_power(d, 40, n_sims=20, source=h, seed=1, n_jobs=1, progress=False)
    pd.testing.assert_frame_equal(r2.estimates, again.estimates)


def test_simulate_power_refuses_options_the_source_does_not_take():
    d = TrialDesign()
    with pytest.raises(ModelSpecificationError, match="dropout apply to the design"):
        simulate_power(d, 40, n_sims=2, source="course", dropout=0.1)
    with pytest.raises(ModelSpecificationError, match="needs deaths"):
        simulate_power(d, 40, n_sims=2, endpoint="survival")
    with pytest.raises(ModelSpecificationError, match="`source` must be"):
        simulate_power(d, 40, n_sims=2, source=3)
    h = HistoricalCohort.from_table(_long(), visit_months=[0, 6, 12])
    with pytest.raises(ModelSpecificationError, match="historical cohort is on visits"):
        simulate_power(d, 40, n_sims=2, source=h)
    with pytest.raises(ModelSpecificationError, match="horizon_months"):
        simulate_power(
            d, 40, n_sims=2, source="course", endpoint="cafs", horizon_months=20
        )


def test_simulated_sample_size_agrees_with_the_formula_on_the_linear_model():
    d = TrialDesign(slowing=0.4)
    r = simulated_sample_size(d, n_sims=150, seed=3, n_jobs=1, progress=False)
    n = d.sample_size().n_per_arm
    assert r.ci[0] < n < r.ci[1] or abs(r.n_per_arm_exact / n - 1) < 0.15
    assert list(r.points.columns) == [
        "n_per_arm",
        "n_sims",
        "rejections",
        "power",
        "se",
        "fitted",
    ]


def test_power_result_repr_names_source_hazard_ratio_and_type_one_error():
    r = simulate_power(
        TrialDesign(),
        30,
        n_sims=10,
        source="course",
        endpoint="survival",
        hazard_ratio=0.8,
        type_one_error=True,
        seed=2,
        n_jobs=1,
        progress=False,
    )
    text = repr(r)
    assert text.startswith("PowerResult(power=")
    assert text.endswith(
        f"screen_failure=0.000, source='course', hazard_ratio=0.8, "
        f"type_one_error={r.type_one_error:.4f})"
    )
    assert r.endpoint == r.analysis == "survival"
    plain = simulate_power(
        TrialDesign(), 30, n_sims=2, seed=2, n_jobs=1, progress=False
    )
    assert repr(plain).endswith("screen_failure=0.000)")
    assert plain.type_one_error is None and plain.type_one_error_se is None
    assert r.type_one_error_se == pytest.approx((0.05 * 0.95 / 10) ** 0.5, rel=1e-12)


def test_win_ratio_threshold_defaults_to_any_difference():
    # the linear model's totals are not whole numbers, so a threshold below one
    # point already changes the pairs
    kw = dict(
        n_sims=6,
        death_hazard=0.3,
        endpoint="win_ratio",
        seed=4,
        n_jobs=1,
        progress=False,
    )
    default = simulate_power(TrialDesign(), 40, **kw).estimates
    zero = simulate_power(TrialDesign(), 40, threshold=0.0, **kw).estimates
    half = simulate_power(TrialDesign(), 40, threshold=0.5, **kw).estimates
    pd.testing.assert_frame_equal(default, zero)
    assert not np.allclose(default["z"], half["z"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"endpoint": "cafs2"}, "`endpoint` must be one of 'slope', 'mmrm', 'cafs'"),
        ({"type_one_error": "yes"}, "`type_one_error` must be one of True, False"),
    ],
)
def test_bad_endpoint_options_name_the_option(kwargs, message):
    with pytest.raises(ModelSpecificationError) as err:
        simulate_power(TrialDesign(), 20, n_sims=2, **kwargs)
    assert str(err.value).startswith(message)


# ------------------------------------------------- the null trials of type I error
def _alpha(**kw):
    kw.setdefault("n_sims", 200)
    kw.setdefault("seed", 11)
    r = simulate_power(
        kw.pop("design"),
        kw.pop("n"),
        type_one_error=True,
        n_jobs=1,
        progress=False,
        **kw,
    )
    return r


def test_null_trials_of_the_linear_model_have_no_slowing():
    """A huge effect: every trial rejects, the null trials about 5 % of them."""
    r = _alpha(design=TrialDesign(slowing=0.9), n=150)
    assert r.power > 0.95
    assert abs(r.type_one_error - 0.05) < 4 * r.type_one_error_se


def test_null_trials_drop_the_hazard_ratio_of_the_linear_model():
    r = _alpha(
        design=TrialDesign(slowing=0.0),
        n=400,
        endpoint="survival",
        death_hazard=0.6,
        hazard_ratio=0.3,
    )
    assert r.power > 0.95  # the hazard ratio reaches the treated deaths
    assert abs(r.type_one_error - 0.05) < 4 * r.type_one_error_se


def test_null_trials_of_an_enriched_design_have_no_additive_effect():
    from alsprog.design import BaselineMarker, Enrichment

    dfs = BaselineMarker("delta_fs", mean=0.7, sd=0.5, corr_slope=-0.5, lognormal=True)
    r = _alpha(
        design=TrialDesign(slowing=0.9), n=150, enrichment=Enrichment(dfs, quantile=0.5)
    )
    assert r.power > 0.95
    assert abs(r.type_one_error - 0.05) < 4 * r.type_one_error_se


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"enrichment": "E"}, "enrichment"),
        ({"covariates": ("C",)}, "covariates"),
        ({"effect": "proportional"}, "effect"),
    ],
)
def test_linear_model_options_are_refused_with_a_source_by_name(kwargs, name):
    from alsprog.design import BaselineMarker, Enrichment

    dfs = BaselineMarker("delta_fs", mean=0.7, sd=0.5, corr_slope=-0.5, lognormal=True)
    value = {"E": Enrichment(dfs, quantile=0.5), "C": dfs}
    kw = {
        k: (
            value[v]
            if isinstance(v, str) and v in value
            else tuple(value[x] for x in v)
            if isinstance(v, tuple)
            else v
        )
        for k, v in kwargs.items()
    }
    with pytest.raises(ModelSpecificationError) as err:
        simulate_power(TrialDesign(), 20, n_sims=2, source="course", **kw)
    assert str(err.value).startswith(f"{name} apply to the design's linear model")


def test_null_trials_of_the_course_have_no_slowing_and_no_hazard_ratio():
    for endpoint in ("slope", "survival"):
        r = _alpha(
            design=TrialDesign(slowing=0.9),
            n=200,
            source="course",
            endpoint=endpoint,
            hazard_ratio=0.2,
            n_sims=100,
        )
        assert r.power > 0.9, endpoint
        assert abs(r.type_one_error - 0.05) < 4 * r.type_one_error_se, endpoint


def test_null_trials_report_their_own_progress(monkeypatch):
    import alsprog.design._simulate as sim

    seen = []
    real = sim.progress_bar

    def record(items, **kw):
        seen.append((kw["progress"], kw["desc"]))
        return real(items, **kw)

    monkeypatch.setattr(sim, "progress_bar", record)
    _alpha(design=TrialDesign(), n=20, n_sims=3)
    assert seen == [
        (False, "simulating 3 trials"),
        (False, "simulating 3 trials under the null"),
    ]


def test_null_trials_use_the_workers_asked_for(monkeypatch):
    import joblib

    asked = []
    real = joblib.Parallel

    class Recording(real):
        def __init__(self, *args, **kw):
            asked.append(kw.get("n_jobs", args[0] if args else None))
            super().__init__(*args, **kw)

    monkeypatch.setattr(joblib, "Parallel", Recording)
    _alpha(design=TrialDesign(), n=20, n_sims=3)
    assert asked == [1, 1]
