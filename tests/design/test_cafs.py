"""CAFS scores and test: brute-force pairs, hand-derived cohorts, scipy's rank-sum test.

Every reference is independent of the code under test: the pair rule is written out
again here as a plain double loop over patients (Finkelstein & Schoenfeld 1999; Berry
et al. 2013), small cohorts are scored by hand in the comments, and the p-value comes
from ``scipy.stats.mannwhitneyu`` on the scores.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from scipy import stats

from alsprog.design._cafs import CafsTest, cafs_scores, cafs_test
from alsprog.design._endpoint_table import horizon_endpoints
from alsprog.design._pairwise import cafs_scores_batch, rank_sum_z
from alsprog.errors import DataValidationError, ModelSpecificationError

H = 12.0


# ------------------------------------------------------------------ brute force
def _status(t: float, e: bool, h: float) -> str:
    if e and t <= h:
        return "died"
    if t > h or t == h:
        return "alive"
    return "censored"


def brute_pair(a: tuple, b: tuple, h: float) -> int:
    """+1 when patient a beats b, -1 when b beats a, 0 for a tie (from the rule)."""
    (ta, ea, ca), (tb, eb, cb) = a, b
    sa, sb = _status(ta, ea, h), _status(tb, eb, h)
    if sa == "died" and sb == "died":
        return int(np.sign(ta - tb))
    if sa == "died":  # b known alive at ta (censored at or after it, or alive)?
        return -1 if tb >= ta else 0
    if sb == "died":
        return 1 if ta >= tb else 0
    if sa == "alive" and sb == "alive":
        if np.isnan(ca) or np.isnan(cb):
            return 0
        return int(np.sign(ca - cb))
    return 0


def brute_scores(t, e, c, h=H) -> np.ndarray:
    n = len(t)
    return np.array(
        [
            sum(
                brute_pair((t[i], e[i], c[i]), (t[j], e[j], c[j]), h)
                for j in range(n)
                if j != i
            )
            for i in range(n)
        ]
    )


def random_cohort(rng, n):
    """Times on a coarse grid (ties, events and censorings at the horizon), missing
    changes among the alive."""
    t = rng.choice([1.0, 2.0, 3.0, 6.0, 6.0, 9.0, 11.5, 12.0, 12.0, 14.0], n)
    e = rng.random(n) < 0.5
    c = rng.integers(-12, 3, n).astype(float)
    c[rng.random(n) < 0.15] = np.nan
    return t, e, c


def long_table(t, e, c, arm=None):
    """Visits at months 0 and 12 (the latter only for patients alive at 12 with a
    change); the event time and flag repeated on every row."""
    rows = []
    for i, (ti, ei, ci) in enumerate(zip(t, e, c, strict=True)):
        sid = f"P{i:03d}"
        base = 40.0 - i % 7
        extra = {} if arm is None else {"arm": bool(arm[i])}
        rows.append(
            dict(
                subject_id=sid,
                months=0.0,
                alsfrs_r_total=base,
                death_or_tracheostomy_months=ti,
                event_observed=bool(ei),
                **extra,
            )
        )
        if _status(ti, ei, H) == "alive" and not np.isnan(ci):
            rows.append(
                dict(
                    subject_id=sid,
                    months=H,
                    alsfrs_r_total=base + ci,
                    death_or_tracheostomy_months=ti,
                    event_observed=bool(ei),
                    **extra,
                )
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ scores
@pytest.mark.parametrize("seed", range(8))
def test_scores_equal_brute_force_pairs(seed):
    rng = np.random.default_rng(seed)
    t, e, c = random_cohort(rng, int(rng.integers(2, 40)))
    expected = brute_scores(t, e, c)
    assert_array_equal(cafs_scores_batch(t, e, c, H), expected)
    got = cafs_scores(long_table(t, e, c), horizon_months=H)
    assert_array_equal(got.to_numpy(), expected)
    assert got.sum() == 0
    assert got.name == "cafs_score"
    assert list(got.index) == [f"P{i:03d}" for i in range(len(t))]


def test_scores_continuous_times_brute_force():
    rng = np.random.default_rng(42)
    t = rng.uniform(0, 16, 60).round(1)
    e = rng.random(60) < 0.6
    c = rng.normal(-8, 5, 60).round(1)
    assert_array_equal(cafs_scores_batch(t, e, c, 10.0), brute_scores(t, e, c, 10.0))


def test_scores_by_hand():
    # a: alive at 12, change -6; b: censored at 12 (alive), -2; c: died at 7;
    # d: died at 3; e: censored at 5 (before the horizon); f: event at 13 (alive at
    # 12) without a 12-month value.
    # a: beats c, d, loses b, ties e, f -> 2 - 1 = 1
    # b: beats a, c, d; ties e, f -> 3
    # c (7): beats d; loses a, b, f; ties e (censored at 5 < 7) -> 1 - 3 = -2
    # d (3): loses a, b, c, e (censored at 5 >= 3), f -> -5
    # e: beats d (3 <= 5), ties the rest -> 1
    # f: beats c, d; ties a, b (no value), e -> 2
    t = [12.0, 12.0, 7.0, 3.0, 5.0, 13.0]
    e = [False, False, True, True, False, True]
    c = [-6.0, -2.0, np.nan, np.nan, np.nan, np.nan]
    assert cafs_scores_batch(t, e, c, 12.0).tolist() == [1, 3, -2, -5, 1, 2]


def test_censoring_at_a_death_time_counts_as_longer():
    # Gehan: censored at 6 vs death at 6 -> the censored patient wins
    assert cafs_scores_batch(
        [6.0, 6.0], [True, False], [np.nan, np.nan], 12
    ).tolist() == [-1, 1]
    # an event exactly at the horizon is a death; censoring at it is alive
    assert cafs_scores_batch(
        [12.0, 12.0], [True, False], [np.nan, -3.0], 12
    ).tolist() == [-1, 1]


def test_change_ignored_unless_alive():
    # a value given for a dead or censored patient is not used
    a = cafs_scores_batch([3.0, 5.0, 12.0], [True, False, False], [5.0, 9.0, -1.0], 12)
    b = cafs_scores_batch([3.0, 5.0, 12.0], [True, False, False], [np.nan] * 3, 12)
    assert_array_equal(a, b)


def test_batch_equals_single_rows():
    rng = np.random.default_rng(3)
    k, n = 5, 25
    t = np.stack([random_cohort(rng, n)[0] for _ in range(k)])
    e = rng.random((k, n)) < 0.5
    c = rng.integers(-9, 2, (k, n)).astype(float)
    batch = cafs_scores_batch(t, e, c, H)
    assert batch.shape == (k, n)
    for i in range(k):
        assert_array_equal(batch[i], brute_scores(t[i], e[i], c[i]))
    arm = np.arange(n) < 12
    z = rank_sum_z(batch, arm)
    for i in range(k):
        res = cafs_test(
            pd.DataFrame(
                {
                    "subject_id": range(n),
                    "arm": arm,
                    "death_or_tracheostomy_months": t[i],
                    "event_observed": e[i],
                    "change": c[i],
                }
            ),
            arm="arm",
            horizon_months=H,
            change="change",
        )
        assert res.statistic == pytest.approx(z[i], rel=1e-12)


# ------------------------------------------------------------------ horizon values
def test_horizon_endpoints_window_and_missing():
    visits = pd.DataFrame(
        {
            "subject_id": ["a"] * 4 + ["b"] * 3 + ["c"] * 2,
            "months": [0, 6, 11.2, 12.9, 0.0, 6.0, 9.0, 0.0, 5.0],
            "alsfrs_r_total": [40, 37, 35, 33, 44, 40, np.nan, 30, 28],
            "death_or_tracheostomy_months": [14, 14, 14, 14, 13, np.nan, 13, 4, 4],
            "event_observed": [0, 0, 0, 0, 0, None, 0, 1, 1],
        }
    )
    # a: 11.2 and 12.9 within 1 month of 12: 11.2 is closer (0.8 < 0.9): 35 - 40
    tie = horizon_endpoints(visits, horizon_months=12)
    assert tie.loc["a", "change"] == -5
    assert tie.loc["a", "baseline"] == 40 and tie.loc["a", "at_horizon"] == 35
    # b: no visit near 12 (the 9-month value is missing): a tie, or 40 carried
    assert np.isnan(tie.loc["b", "change"])
    assert tie.loc["b", "event_time"] == 13  # one value, missing rows ignored
    last = horizon_endpoints(visits, horizon_months=12, missing="last")
    assert last.loc["b", "change"] == -4
    # a wider window reaches 12.9 only when closer: a 2-month window still picks 11.2
    assert (
        horizon_endpoints(visits, horizon_months=12.5, window_months=2).loc[
            "a", "change"
        ]
        == -7
    )  # 12.9 is 0.4 away, 11.2 is 1.3 away
    assert list(tie["status"]) == ["alive", "alive", "died"]
    assert np.isnan(tie.loc["c", "change"])  # died: no change even with values
    assert tie["event"].tolist() == [False, False, True]


def test_long_table_and_change_column_agree():
    rng = np.random.default_rng(11)
    t, e, c = random_cohort(rng, 30)
    long = long_table(t, e, c)
    sub = pd.DataFrame(
        {
            "subject_id": [f"P{i:03d}" for i in range(30)],
            "death_or_tracheostomy_months": t,
            "event_observed": e,
            "change": c,
        }
    )
    assert_array_equal(
        cafs_scores(long, horizon_months=H),
        cafs_scores(sub, horizon_months=H, change="change"),
    )


# ------------------------------------------------------------------ the test
@pytest.mark.parametrize("seed", range(4))
def test_p_value_equals_mannwhitneyu(seed):
    rng = np.random.default_rng(100 + seed)
    n = 40
    t, e, c = random_cohort(rng, n)
    arm = rng.permutation(np.arange(n) < 18)
    res = cafs_test(long_table(t, e, c, arm), arm="arm", horizon_months=H)
    scores = brute_scores(t, e, c)
    ref = stats.mannwhitneyu(
        scores[arm], scores[~arm], use_continuity=False, method="asymptotic"
    )
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    u_t = ref.statistic  # U of the treated = W - n1 (n1 + 1) / 2
    assert res.rank_sum == pytest.approx(u_t + 18 * 19 / 2, rel=1e-12)
    assert np.sign(res.statistic) == np.sign(u_t - 18 * (n - 18) / 2)
    ranks = stats.rankdata(scores)
    assert res.mean_rank_treatment == pytest.approx(ranks[arm].mean())
    assert res.mean_rank_control == pytest.approx(ranks[~arm].mean())
    assert res.mean_score_treatment == pytest.approx(scores[arm].mean())
    assert res.mean_score_control == pytest.approx(scores[~arm].mean())
    assert (res.n_treatment, res.n_control) == (18, 22)
    assert (res.treatment, res.control) == (True, False)
    assert res.p_value_permutation is None and res.n_permutations == 0
    assert_array_equal(res.scores.to_numpy(), scores)


def test_hand_example_and_table():
    # scores drug [5, 3, -1], placebo [1, -3, -5]; ranks drug 6, 5, 3 (W = 14),
    # E = 3 * 7 / 2 = 10.5, Var = 3 * 3 / 12 * 7 = 5.25, z = 3.5 / sqrt(5.25)
    subjects = pd.DataFrame(
        {
            "subject_id": list("abcdef"),
            "arm": ["drug"] * 3 + ["placebo"] * 3,
            "death_or_tracheostomy_months": [12, 12, 9, 12, 5, 4],
            "event_observed": [0, 0, 1, 0, 1, 1],
            "change": [-3, -5, None, -8, None, None],
        }
    )
    res = cafs_test(
        subjects, arm="arm", treatment="drug", horizon_months=12, change="change"
    )
    assert isinstance(res, CafsTest)
    assert res.scores.tolist() == [5, 3, -1, 1, -3, -5]
    assert res.statistic == pytest.approx(3.5 / np.sqrt(5.25), rel=1e-12)
    assert res.rank_sum == 14
    assert res.horizon_months == 12.0
    tab = res.table()
    assert list(tab.index) == ["drug", "placebo"]
    assert tab["mean_score"].tolist() == pytest.approx([7 / 3, -7 / 3])
    assert tab["n"].tolist() == [3, 3]
    # placebo as treatment: the sign flips
    flip = cafs_test(
        subjects, arm="arm", treatment="placebo", horizon_months=12, change="change"
    )
    assert flip.statistic == pytest.approx(-res.statistic)


def test_permutation_p_value_matches_full_enumeration():
    subjects = pd.DataFrame(
        {
            "subject_id": list("abcdefg"),
            "arm": [1, 1, 1, 0, 0, 0, 0],
            "death_or_tracheostomy_months": [12, 12, 9, 12, 5, 4, 12],
            "event_observed": [0, 0, 1, 0, 1, 1, 0],
            "change": [-3, -5, None, -8, None, None, -5],
        }
    )
    res = cafs_test(
        subjects,
        arm="arm",
        horizon_months=12,
        change="change",
        n_permutations=20000,
        seed=5,
    )
    r = stats.rankdata(res.scores.to_numpy())
    w_obs = r[:3].sum()
    centre = 3 * 8 / 2
    splits = list(itertools.combinations(range(7), 3))
    exact = np.mean(
        [abs(r[list(s)].sum() - centre) >= abs(w_obs - centre) - 1e-9 for s in splits]
    )
    # Monte Carlo error of the estimate: sqrt(p (1 - p) / 20000) < 0.0036
    assert res.p_value_permutation == pytest.approx(exact, abs=0.015)
    again = cafs_test(
        subjects,
        arm="arm",
        horizon_months=12,
        change="change",
        n_permutations=20000,
        seed=5,
    )
    assert again.p_value_permutation == res.p_value_permutation
    assert res.n_permutations == 20000


def test_rank_sum_z_all_ties_is_zero_and_broadcasts():
    assert rank_sum_z(
        np.zeros((2, 4)), np.array([True, True, False, False])
    ).tolist() == [0.0, 0.0]


# ------------------------------------------------------------------ bad input
def _good():
    return long_table(
        [12.0, 3.0, 14.0, 6.0],
        [False, True, False, False],
        [-2.0, np.nan, -5.0, np.nan],
        arm=[True, True, False, False],
    )


def test_missing_column_is_named():
    with pytest.raises(DataValidationError, match="column event_observed: is needed"):
        cafs_scores(_good().drop(columns="event_observed"), horizon_months=12)
    with pytest.raises(DataValidationError, match="column trt: is needed"):
        cafs_test(_good(), arm="trt", horizon_months=12)


def test_non_numeric_and_negative_values_name_subject_and_value():
    bad = _good()
    bad["months"] = bad["months"].astype(object)
    bad.loc[1, "months"] = "baseline"
    bad["death_or_tracheostomy_months"] = bad["death_or_tracheostomy_months"].astype(
        float
    )
    bad.loc[bad["subject_id"] == "P002", "death_or_tracheostomy_months"] = -1.0
    with pytest.raises(DataValidationError) as info:
        cafs_scores(bad, horizon_months=12)
    msg = str(info.value)
    assert "3 problems" in msg  # P000 months; P002 on both its rows
    assert "subject P000, column months: 'baseline' is not months" in msg
    assert "subject P002, column death_or_tracheostomy_months: -1.0 is below 0" in msg
    assert set(info.value.problems["column"]) == {
        "months",
        "death_or_tracheostomy_months",
    }


def test_bad_event_flag_and_inconsistent_event_time():
    bad = _good()
    bad["event_observed"] = bad["event_observed"].astype(object)
    bad.loc[0, "event_observed"] = "yes"
    bad.loc[1, "death_or_tracheostomy_months"] = 11.0  # P000 has 12 on row 1
    with pytest.raises(DataValidationError) as info:
        cafs_scores(bad, horizon_months=12)
    msg = str(info.value)
    assert "subject P000, column event_observed: 'yes' is not an event flag" in msg
    assert "subject P000, column death_or_tracheostomy_months: differs" in msg


def test_subject_without_event_time():
    bad = _good()
    bad.loc[bad["subject_id"] == "P001", "death_or_tracheostomy_months"] = np.nan
    with pytest.raises(
        DataValidationError,
        match="subject P001, column death_or_tracheostomy_months: has no value",
    ):
        cafs_scores(bad, horizon_months=12)


def test_arm_with_one_level_and_bad_treatment():
    one = _good().assign(arm=True)
    with pytest.raises(DataValidationError, match=r"column arm: has 1 level\(s\)"):
        cafs_test(one, arm="arm", horizon_months=12)
    three = _good().assign(arm=["a", "a", "b", "b", "c", "c"][: len(_good())])
    with pytest.raises(DataValidationError, match=r"has 3 level"):
        cafs_test(three, arm="arm", horizon_months=12)
    text = _good().assign(arm=lambda d: np.where(d["arm"], "drug", "placebo"))
    with pytest.raises(ModelSpecificationError, match="`treatment` must name"):
        cafs_test(text, arm="arm", horizon_months=12)
    with pytest.raises(ModelSpecificationError, match="got 'Drug'"):
        cafs_test(text, arm="arm", treatment="Drug", horizon_months=12)
    mixed = _good()
    mixed.loc[0, "arm"] = False  # P000 is True on its other row
    with pytest.raises(DataValidationError, match="subject P000, column arm: differs"):
        cafs_test(mixed, arm="arm", horizon_months=12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"horizon_months": 0}, "`horizon_months` must be in"),
        ({"horizon_months": 12, "window_months": -1}, "`window_months`"),
        ({"horizon_months": 12, "missing": "locf"}, "`missing` must be one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ModelSpecificationError, match=match):
        cafs_scores(_good(), **kwargs)


def test_bad_test_arguments():
    with pytest.raises(ModelSpecificationError, match="`n_permutations`"):
        cafs_test(_good(), arm="arm", horizon_months=12, n_permutations=-1)
    with pytest.raises(TypeError, match="`table` must be a pandas DataFrame"):
        cafs_scores([1, 2], horizon_months=12)


def test_duplicate_subject_with_change_column():
    sub = pd.DataFrame(
        {
            "subject_id": ["a", "a"],
            "death_or_tracheostomy_months": [12, 12],
            "event_observed": [0, 0],
            "change": [1.0, 2.0],
        }
    )
    with pytest.raises(
        DataValidationError,
        match="subject a, column subject_id: appears on more than one row",
    ):
        cafs_scores(sub, horizon_months=12, change="change")


@pytest.mark.parametrize(
    "args, match",
    [
        (([1.0, -2.0], [True, False], [0.0, 0.0], 12), "`time` must hold finite"),
        (([1.0, 2.0], [True, False], [0.0], 12), "`change` must have the shape"),
        (([1.0, 2.0], [2, 0], [0.0, 0.0], 12), "`event` must be boolean"),
        (([1.0, 2.0], [True, False], [0.0, 0.0], -1), "`horizon` must be in"),
    ],
)
def test_batch_bad_input(args, match):
    with pytest.raises(ModelSpecificationError, match=match):
        cafs_scores_batch(*args)


def test_rank_sum_z_needs_both_arms():
    with pytest.raises(ModelSpecificationError, match="both arms"):
        rank_sum_z([1.0, 2.0], [True, True])
    with pytest.raises(ModelSpecificationError, match="boolean"):
        rank_sum_z([1.0, 2.0], [1, 0])


def test_rank_sum_z_per_trial_arms_equal_scipy():
    rng = np.random.default_rng(8)
    scores = rng.integers(-5, 6, (6, 30)).astype(float)  # many ties
    arm = rng.random((6, 30)) < 0.5
    z = rank_sum_z(scores, arm)
    for k in range(6):
        ref = stats.mannwhitneyu(
            scores[k, arm[k]],
            scores[k, ~arm[k]],
            use_continuity=False,
            method="asymptotic",
        )
        assert 2 * stats.norm.sf(abs(z[k])) == pytest.approx(ref.pvalue, rel=1e-10)
        assert np.sign(z[k]) == np.sign(
            ref.statistic - arm[k].sum() * (~arm[k]).sum() / 2
        )
    # one row of arms is broadcast over the trials, as a 1-D or a (1, N) array
    assert_array_equal(rank_sum_z(scores, arm[0]), rank_sum_z(scores, arm[:1]))
    assert rank_sum_z(scores, arm[0])[3] == pytest.approx(rank_sum_z(scores[3], arm[0]))


@pytest.mark.parametrize(
    "arm", [np.ones((2, 3), bool), np.ones((3, 4), bool), np.ones((1, 1, 4), bool)]
)
def test_rank_sum_z_arm_shape(arm):
    with pytest.raises(ModelSpecificationError, match="`arm` must have the shape"):
        rank_sum_z(np.zeros((3, 4)) if arm.shape != (3, 4) else np.zeros((2, 4)), arm)


def test_horizon_window_edge_and_bad_tables():
    visits = pd.DataFrame(
        {
            "subject_id": ["a", "a"],
            "months": [0.0, 13.0],
            "alsfrs_r_total": [40.0, 37.0],
            "death_or_tracheostomy_months": [14.0, 14.0],
            "event_observed": [False, False],
        }
    )
    # 13 is exactly one month from the horizon: inside the default window
    assert horizon_endpoints(visits, horizon_months=12).loc["a", "change"] == -3
    assert np.isnan(
        horizon_endpoints(visits, horizon_months=12, window_months=0.5).loc[
            "a", "change"
        ]
    )
    no_month = visits.assign(months=[0.0, np.nan])
    with pytest.raises(
        DataValidationError, match="row 2, subject a, column months: has no value"
    ):
        horizon_endpoints(no_month, horizon_months=12)
    with pytest.raises(DataValidationError, match="the table has no rows"):
        horizon_endpoints(visits.iloc[:0], horizon_months=12)
    with pytest.raises(DataValidationError, match="column months: 'inf'|not finite"):
        horizon_endpoints(visits.assign(months=[0.0, np.inf]), horizon_months=12)
