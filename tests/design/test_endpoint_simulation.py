"""Trials simulated for every endpoint: type I error, looks, survival power, seeds.

References are independent of the code under test: the nominal level of each test
(0.05 two-sided, 0.025 one-sided) within 3 Monte Carlo standard errors, the normal
and bivariate-normal probabilities of the canonical group-sequential joint
distribution (Jennison & Turnbull 2000, ch. 3), Schoenfeld's (1981) power of the
log-rank test, hand-counted event times, and the analytic slope sample size of
:meth:`TrialDesign.sample_size` (longpower's formula, tested elsewhere against R).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alsprog.data import assemble
from alsprog.design import (
    HistoricalCohort,
    TrialDesign,
    group_sequential,
    simulate_power,
    simulated_sample_size,
)
from alsprog.design._simulated_trials import _Chunk
from alsprog.design._trial_runner import _Plan, look_times
from alsprog.errors import ModelSpecificationError
from alsprog.simulate import simulate_cohort

GRID5 = (0.0, 3.0, 6.0, 9.0, 12.0)
GRID3 = (0.0, 6.0, 12.0)
ALL_BUT_MMRM = ("slope", "cafs", "joint_rank", "win_ratio", "survival")


def _within(p: float, level: float, n_sims: int, k: float = 3.0) -> bool:
    """``p`` within ``k`` Monte Carlo SEs (at the nominal level) of ``level``."""
    return abs(p - level) <= k * math.sqrt(level * (1 - level) / n_sims)


@cache
def _historical(grid: tuple[float, ...]) -> HistoricalCohort:
    """300 patients of alsprog's cohort simulator, assembled as a real table."""
    c = simulate_cohort(300, months=12, seed=5)
    long = assemble(c.visits, c.subjects)
    return HistoricalCohort.from_table(long, visit_months=grid)


@cache
def _exponential_cohort(
    n: int = 20_000, median: float = 12.0, follow_up: float = 36.0
) -> HistoricalCohort:
    """Exponential survival (no frailty, no dependence on ALSFRS-R): the
    Nelson–Aalen transform then gives proportional hazards exactly (up to the
    step function of a large sample)."""
    rng = np.random.default_rng(20)
    t = rng.exponential(median / math.log(2), n)
    df = pd.DataFrame(
        {
            "subject_id": [f"p{i}" for i in range(n)],
            "months": 0.0,
            "alsfrs_r_total": 40.0,
            "death_or_tracheostomy_months": np.minimum(t, follow_up),
            "event_observed": t <= follow_up,
        }
    )
    return HistoricalCohort.from_table(df, visit_months=GRID3)


def _null_rate(endpoint, source, grid, n_per_arm, n_sims, seed, **kw):
    """Rejection rate under no effect (slowing 0, hazard ratio 1)."""
    d = TrialDesign(slowing=0.0, visit_months=grid)
    r = simulate_power(
        d,
        n_per_arm,
        n_sims=n_sims,
        endpoint=endpoint,
        source=source,
        seed=seed,
        n_jobs=2,
        progress=False,
        **kw,
    )
    assert r.estimates["converged"].all()
    return r.power


# --------------------------------------------------------------- type I error
# Done when (issue 23): under the null every endpoint rejects at 0.05 +- 3 MC SE
# over >= 2,000 trials.  2 x 60 patients: the tests are asymptotic (Wald z of the
# slope, first-order U-statistic SE of the net benefit); at 2 x 30 the slope and
# the win ratio on the nonlinear course reject 6.2 % and 6.3 % of 4,000 null
# trials (measured), the small-sample excess of a normal reference.
N_NULL = 2000


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ALL_BUT_MMRM)
def test_type_one_error_nonlinear_course(endpoint):
    p = _null_rate(endpoint, "course", GRID5, 60, N_NULL, seed=101)
    assert _within(p, 0.05, N_NULL), p


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ALL_BUT_MMRM)
def test_type_one_error_historical_cohort(endpoint):
    """Null trials of ``type_one_error=True``: the treatment (25 % slowing, hazard
    ratio 0.8) is switched off, patients resampled from a real-format table."""
    d = TrialDesign(slowing=0.25)
    r = simulate_power(
        d,
        60,
        n_sims=N_NULL,
        endpoint=endpoint,
        source=_historical(GRID5),
        hazard_ratio=0.8,
        type_one_error=True,
        seed=102,
        n_jobs=2,
        progress=False,
    )
    assert r.type_one_error_se == pytest.approx(math.sqrt(0.05 * 0.95 / N_NULL))
    assert _within(r.type_one_error, 0.05, N_NULL), r.type_one_error
    assert r.power > r.type_one_error  # the effect was on in the first run


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ALL_BUT_MMRM)
def test_type_one_error_linear_model_with_deaths(endpoint):
    d = TrialDesign(slowing=0.25)
    r = simulate_power(
        d,
        60,
        n_sims=N_NULL,
        endpoint=endpoint,
        death_hazard=0.3,
        hazard_ratio=0.8,
        type_one_error=True,
        seed=103,
        n_jobs=2,
        progress=False,
    )
    assert _within(r.type_one_error, 0.05, N_NULL), r.type_one_error


N_MMRM = 300


def _mmrm_sources():
    return {"course": "course", "historical": _historical(GRID3), "linear": None}


@pytest.mark.slow
@pytest.mark.parametrize("source", ["course", "historical", "linear"])
def test_type_one_error_mmrm_small(source):
    """MMRM fits one model per trial (~0.05 s): 300 null trials of 2 x 20 patients
    and 3 visits per source here (the 2,000-trial version is ``veryslow``)."""
    p = _null_rate("mmrm", _mmrm_sources()[source], GRID3, 20, N_MMRM, seed=104)
    assert _within(p, 0.05, N_MMRM), p


@pytest.mark.veryslow
@pytest.mark.parametrize("source", ["course", "historical", "linear"])
def test_type_one_error_mmrm(source):
    p = _null_rate("mmrm", _mmrm_sources()[source], GRID3, 20, N_NULL, seed=105)
    assert _within(p, 0.05, N_NULL), p


# ---------------------------------------------------------- group-sequential looks
def test_survival_looks_are_event_driven_on_a_hand_made_chunk():
    """Look j of a survival trial comes at the time of its ceil(rate_j D)-th death
    (D: the deaths it has by the end); the final look at the end of follow-up."""
    time = np.array(
        [
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],  # 6 deaths: looks at the 2nd, 4th
            [7.0, 3.0, 12.0, 9.5, 12.0, 12.0],  # 3 deaths (7, 3, 9.5): 1st, 2nd
            [12.0, 12.0, 12.0, 12.0, 12.0, 12.0],  # none: every look at the end
            [2.5, 2.5, 2.5, 8.0, 12.0, 12.0],  # tied deaths; 4 in all: 2nd, 3rd
        ]
    )
    event = time < 12.0
    chunk = _Chunk(
        arm=np.tile([1.0, 1.0, 1.0, 0.0, 0.0, 0.0], (4, 1)),
        markers=np.zeros((4, 6, 0)),
        y=np.zeros((4, 6, 3)),
        mask=np.ones((4, 6, 3)),
        n_screened=np.full(4, 6),
        time=time,
        event=event,
    )
    gs = group_sequential(3, alpha=0.025)
    grid = np.array(GRID3)
    got = look_times(chunk, grid, _Plan(endpoint="survival", looks=gs))
    # by hand: ceil(D/3), ceil(2D/3) = (2, 4) of 6, (1, 2) of 3, (2, 3) of 4
    want = [[2.0, 4.0, 12.0], [3.0, 7.0, 12.0], [12.0, 12.0, 12.0], [2.5, 2.5, 12.0]]
    np.testing.assert_array_equal(got, want)
    # the other endpoints look at the share of follow-up: 4, 8 and 12 months
    got = look_times(chunk, grid, _Plan(endpoint="cafs", looks=gs))
    np.testing.assert_allclose(got, np.tile([4.0, 8.0, 12.0], (4, 1)))


def _check_stopping(r, gs):
    """The stopping table against the trials' own rows and the boundaries."""
    est, st = r.estimates, r.stopping
    n_looks = len(gs.information_rates)
    assert st["look"].tolist() == list(range(1, n_looks + 1))
    for j in range(1, n_looks + 1):
        at = est["stop_look"] == j
        assert st.loc[j - 1, "stopped_efficacy"] == pytest.approx(
            np.mean(at & est["reject"])
        )
        assert st.loc[j - 1, "stopped_futility"] == pytest.approx(
            np.mean(at & (est["stopped_for"] == "futility"))
        )
    assert st["cumulative_power"].iloc[-1] == pytest.approx(r.power)
    assert np.all(np.diff(st["cumulative_power"]) >= 0)
    # a rejection is a z at or over its look's bound (z > 0 favours the treated
    # arm); a trial running to the end without rejecting stays below the last one
    z = est["z"].fillna(0.0).to_numpy()
    crit = gs.critical_values[est["stop_look"].to_numpy() - 1]
    rej = est["reject"].to_numpy()
    assert np.all(z[rej] >= crit[rej])
    final = (est["stop_look"] == n_looks).to_numpy() & ~rej
    assert np.all(z[final] < gs.critical_values[-1])
    if gs.futility is not None:
        fut = (est["stopped_for"] == "futility").to_numpy()
        fb = gs.futility_bounds[
            np.minimum(est["stop_look"].to_numpy(), n_looks - 1) - 1
        ]
        assert np.all(z[fut] <= fb[fut])


def test_group_sequential_survival_null_level_and_table():
    """Event-driven looks of a log-rank test under the null: the one-sided level
    0.025 is kept (2,000 trials, ~60 deaths each)."""
    gs = group_sequential(3, alpha=0.025)
    d = TrialDesign(slowing=0.0, visit_months=GRID3)
    r = simulate_power(
        d,
        60,
        n_sims=N_NULL,
        endpoint="survival",
        source=_exponential_cohort(),
        looks=gs,
        seed=201,
        n_jobs=1,
        progress=False,
    )
    assert _within(r.power, 0.025, N_NULL), r.power
    _check_stopping(r, gs)
    # the interim looks come at death counts, not at fixed months
    at1 = r.estimates.loc[r.estimates["stop_look"] == 1, "stop_months"]
    assert at1.empty or at1.max() < 12.0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("endpoint", "source", "kw"),
    [
        ("slope", None, {}),
        ("cafs", "course", {}),
        ("win_ratio", None, {"death_hazard": 0.3}),
    ],
)
def test_group_sequential_calendar_looks_null_level(endpoint, source, kw):
    gs = group_sequential(3, alpha=0.025)
    d = TrialDesign(slowing=0.0)
    r = simulate_power(
        d,
        60,
        n_sims=N_NULL,
        endpoint=endpoint,
        source=source,
        looks=gs,
        seed=202,
        n_jobs=2,
        progress=False,
        **kw,
    )
    assert _within(r.power, 0.025, N_NULL), r.power
    _check_stopping(r, gs)
    # calendar looks: a third and two thirds of the 12 months
    months = r.estimates.groupby("stop_look")["stop_months"].unique()
    for look, m in months.items():
        np.testing.assert_allclose(m, [4.0 * look])


def test_huge_effect_stops_most_trials_at_the_first_look():
    """Hazard ratio 0.3, 2 x 500 patients, ~115 deaths at the first look:
    Schoenfeld's E[z_1] = sqrt(115 / 4) |log 0.3| = 6.5, far over the
    O'Brien-Fleming bound 3.71."""
    gs = group_sequential(3, alpha=0.025)
    d = TrialDesign(slowing=0.0, visit_months=GRID3)
    r = simulate_power(
        d,
        500,
        n_sims=100,
        endpoint="survival",
        source=_exponential_cohort(),
        hazard_ratio=0.3,
        looks=gs,
        seed=203,
        n_jobs=1,
        progress=False,
    )
    st = r.stopping
    assert st.loc[0, "stopped_efficacy"] > 0.9
    assert st.loc[0, "mean_months"] < 8.0  # a third of the deaths come early
    assert r.power == pytest.approx(1.0)
    _check_stopping(r, gs)


def test_futility_bound_stops_null_trials_as_the_normal_theory_says():
    """Under the null the look statistics are N(0, 1) with corr(z_1, z_2) =
    sqrt(t_1 / t_2): P(futility at 1) = Phi(f_1), P(futility at 2) = P(f_1 < z_1 <
    c_1, z_2 <= f_2) (bivariate normal)."""
    gs = group_sequential(3, alpha=0.025, futility="obrien-fleming")
    d = TrialDesign(slowing=0.0, visit_months=GRID3)
    n = N_NULL
    r = simulate_power(
        d,
        60,
        n_sims=n,
        endpoint="survival",
        source=_exponential_cohort(),
        looks=gs,
        seed=204,
        n_jobs=1,
        progress=False,
    )
    f1, f2 = gs.futility_bounds
    c1 = gs.critical_values[0]
    t1, t2 = gs.information_rates[:2]
    rho = math.sqrt(t1 / t2)
    p1 = stats.norm.cdf(f1)
    mvn = stats.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]])
    p2 = mvn.cdf([c1, f2]) - mvn.cdf([f1, f2])
    st = r.stopping
    for got, want in [
        (st.loc[0, "stopped_futility"], p1),
        (st.loc[1, "stopped_futility"], p2),
    ]:
        assert abs(got - want) < 3 * math.sqrt(want * (1 - want) / n), (got, want)
    assert p1 > 0.3  # the bound does stop trials
    assert r.power <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / n)
    _check_stopping(r, gs)


# ----------------------------------------------------- survival power vs theory
def test_logrank_power_matches_schoenfeld_on_exponential_patients():
    """Exponential deaths (median 12 months) resampled from a large cohort; the
    treated arm's hazard is multiplied by 0.75 through the Nelson–Aalen transform.
    Schoenfeld (1981): power = Phi(sqrt(D p (1 - p)) |log HR| - z_{1-alpha/2}) at
    the expected deaths D by month 12 (p = 1/2), and Var(log HR) = 4 / D."""
    hr, n, n_sims = 0.75, 300, 2000
    h = _exponential_cohort()
    d = TrialDesign(slowing=0.0, visit_months=GRID3)
    r = simulate_power(
        d,
        n,
        n_sims=n_sims,
        endpoint="survival",
        source=h,
        hazard_ratio=hr,
        seed=301,
        n_jobs=1,
        progress=False,
    )
    # expected deaths: the cohort's own 12-month fraction (the resampled control
    # distribution) and S_t = S_c^HR for the treated
    p_c = float(np.mean(h.event & (h.time <= 12.0)))
    assert p_c == pytest.approx(0.5, abs=0.01)  # exponential, median 12
    p_t = 1.0 - (1.0 - p_c) ** hr
    deaths = n * (p_c + p_t)
    want = stats.norm.cdf(
        math.sqrt(deaths * 0.25) * abs(math.log(hr)) - stats.norm.ppf(0.975)
    )
    assert 0.5 < want < 0.8
    assert abs(r.power - want) < 3 * r.se, (r.power, want, r.se)
    # the Cox estimate: unbiased for log HR up to its O(1/D) bias, SE as the theory
    est = r.estimates["estimate"]
    assert abs(est.mean() - math.log(hr)) < 3 * est.std() / math.sqrt(n_sims) + 0.005
    assert est.std() == pytest.approx(math.sqrt(4.0 / deaths), rel=0.06)
    assert r.estimates["std_error"].mean() == pytest.approx(est.std(), rel=0.06)


# ------------------------------------------------------------- reproducibility
@pytest.mark.parametrize(
    ("endpoint", "source", "looks"),
    [
        ("win_ratio", "course", None),
        ("survival", "historical", group_sequential(2, alpha=0.025)),
    ],
)
def test_same_seed_same_trials_with_any_n_jobs(endpoint, source, looks):
    src = _historical(GRID5) if source == "historical" else source
    d = TrialDesign(slowing=0.3)

    def run(seed, n_jobs):
        return simulate_power(
            d,
            30,
            n_sims=40,
            endpoint=endpoint,
            source=src,
            hazard_ratio=0.7,
            looks=looks,
            seed=seed,
            n_jobs=n_jobs,
            chunk_size=10,
            progress=False,
        ).estimates

    a, b, c = run(7, 1), run(7, 1), run(7, 2)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert not np.allclose(a["z"], run(8, 1)["z"])


# ------------------------------------------------------ simulated sample size
def test_simulated_size_is_none_without_an_effect_and_stays_under_n_max():
    """Survival on the nonlinear course with hazard ratio 1: the slowing does not
    change survival, power stays at alpha, no size reaches 80 %."""
    r = simulated_sample_size(
        TrialDesign(slowing=0.25),
        endpoint="survival",
        source="course",
        hazard_ratio=1.0,
        n_start=40,
        n_max=150,
        n_sims=40,
        seed=401,
        n_jobs=1,
        progress=False,
    )
    assert r.n_per_arm is None
    assert r.n_per_arm_exact > 150
    assert r.points["n_per_arm"].max() <= 150
    assert r.points["n_per_arm"].tolist() == [40, 150]  # the start, then n_max
    assert r.endpoint == "survival" and r.source == "course"


@pytest.mark.slow
def test_simulated_size_covers_the_analytic_slope_size():
    """The slope endpoint on the design's linear model: the formula (longpower's,
    matched to R elsewhere) must lie in the simulated size's 95 % interval."""
    d = TrialDesign(slowing=0.3)
    want = d.sample_size().n_per_arm
    r = simulated_sample_size(d, n_sims=600, seed=402, n_jobs=2, progress=False)
    assert r.ci[0] <= want <= r.ci[1], (r.ci, want)
    assert r.ci[1] - r.ci[0] < 0.4 * want  # an interval that says something
    assert r.n_per_arm == math.ceil(r.n_per_arm_exact)
    assert len(r.points) >= 3


# ------------------------------------------------- looks: checks and the null SE
def test_calendar_look_before_the_first_follow_up_visit_is_refused():
    """3 equal looks on visits 0, 6, 12: the first at month 4 has no follow-up
    visit (it used to fail inside the analysis with `horizon` 0 / one visit)."""
    d = TrialDesign(visit_months=GRID3)
    gs = group_sequential(3, alpha=0.025)
    for endpoint, kw in [("slope", {}), ("cafs", {"death_hazard": 0.3})]:
        with pytest.raises(
            ModelSpecificationError,
            match=r"first look comes at month 4 .*before the first follow-up visit "
            r"\(6\).*starting at 0\.5",
        ):
            simulate_power(d, 30, n_sims=2, endpoint=endpoint, looks=gs, **kw)
    # a first look at the 6-month visit is fine; survival looks count deaths
    ok = group_sequential(3, alpha=0.025, information_rates=[0.5, 0.75, 1.0])
    r = simulate_power(
        d, 30, n_sims=4, endpoint="cafs", death_hazard=0.3, looks=ok, seed=1, n_jobs=1
    )
    assert set(r.estimates["stop_months"]) <= {6.0, 9.0, 12.0}
    simulate_power(
        d,
        30,
        n_sims=4,
        endpoint="survival",
        death_hazard=0.3,
        looks=gs,
        seed=1,
        n_jobs=1,
    )


def test_null_se_with_looks_is_at_the_looks_level():
    """With one-sided looks at 0.025 the null rejection rate is compared with
    0.025: its MC SE is sqrt(0.025 x 0.975 / n), not the design's 0.05's."""
    gs = group_sequential(2, alpha=0.025)
    d = TrialDesign(slowing=0.0, visit_months=GRID3)
    r = simulate_power(
        d,
        40,
        n_sims=100,
        endpoint="survival",
        source=_exponential_cohort(),
        hazard_ratio=0.7,
        looks=gs,
        type_one_error=True,
        seed=5,
        n_jobs=1,
        progress=False,
    )
    assert r.type_one_error_se == pytest.approx(math.sqrt(0.025 * 0.975 / 100))
    plain = simulate_power(
        d,
        40,
        n_sims=100,
        endpoint="survival",
        source=_exponential_cohort(),
        type_one_error=True,
        seed=5,
        n_jobs=1,
        progress=False,
    )
    assert plain.type_one_error_se == pytest.approx(math.sqrt(0.05 * 0.95 / 100))


def test_simulated_size_names_a_course_given_as_parameters():
    """``source=CohortParams(...)`` is the nonlinear course, as ``"course"`` is
    (it used to be described as a historical cohort and fail)."""
    from alsprog.simulate import CohortParams

    kw = dict(
        endpoint="cafs", n_start=20, n_max=40, n_sims=10, n_jobs=1, progress=False
    )
    a = simulated_sample_size(
        TrialDesign(slowing=0.5), source=CohortParams(), seed=1, **kw
    )
    b = simulated_sample_size(TrialDesign(slowing=0.5), source="course", seed=1, **kw)
    assert a.source == "course"
    pd.testing.assert_frame_equal(a.points, b.points)


def test_simulated_size_null_se_with_looks_is_at_the_looks_level():
    r = simulated_sample_size(
        TrialDesign(slowing=0.0, visit_months=GRID3),
        endpoint="survival",
        source=_exponential_cohort(),
        hazard_ratio=0.6,
        looks=group_sequential(2, alpha=0.025),
        n_start=100,
        n_sims=20,
        type_one_error=True,
        seed=2,
        n_jobs=1,
        progress=False,
    )
    assert r.type_one_error_se == pytest.approx(math.sqrt(0.025 * 0.975 / 20))
