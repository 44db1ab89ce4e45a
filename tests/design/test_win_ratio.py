"""Generalised pairwise comparisons: hand-derived tables, brute-force pairs, U-statistic
variance from its definition, bootstrap.

References, all independent of the code under test: pairs written out by hand in the
comments; BuyseTest's scoring rules (src/FCT_calcOnePair.h, ``calcOnePair_TTEgehan``
and ``calcOnePair_Continuous``; restriction in R/BuyseTest.R) re-implemented here as
a plain double loop; the first-order variance computed from its definition
(src/FCT_calcStatistic.h) with explicit loops over patients.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from alsprog.design._pairwise import win_statistics_batch
from alsprog.design._win_ratio import Priority, WinRatioResult, win_ratio
from alsprog.errors import DataValidationError, ModelSpecificationError


# ------------------------------------------------------------------ brute force
def _restrict(x, s, h):
    if h is None:
        return x, s
    if x > h:
        return h, 0.5
    if x == h and s == 0:
        return x, 0.5
    return x, s


def _cmp(xt, xc, tau):
    """+1 / -1 / 0 on a known pair (BuyseTest: T >= C + tau; tau 0: strict)."""
    if tau == 0:
        return 1 if xt > xc else (-1 if xt < xc else 0)
    return 1 if xt >= xc + tau else (-1 if xt <= xc - tau else 0)


def brute_priority(p, t_row, c_row):
    """'fav', 'unf', 'neu' or 'uninf' of one treated/control pair on priority p."""
    xt, xc = t_row[p.column], c_row[p.column]
    tau = p.threshold
    if p.kind != "survival":
        if pd.isna(xt) or pd.isna(xc):
            return "uninf"
        r = _cmp(float(xt), float(xc), tau)
    else:
        st, sc = float(t_row[p.event]), float(c_row[p.event])
        xt, st = _restrict(float(xt), st, p.horizon)
        xc, sc = _restrict(float(xc), sc, p.horizon)
        if st == 0.5 and sc == 0.5:
            r = 0
        elif st > 0 and sc > 0:
            r = _cmp(xt, xc, tau)
        elif st > 0 and sc == 0:  # treated event/alive, control censored
            if (tau == 0 and (xt < xc or (st == 1 and xt == xc))) or (
                tau > 0 and xt <= xc - tau
            ):
                r = -1
            else:
                return "uninf"
        elif st == 0 and sc > 0:
            if (tau == 0 and (xt > xc or (sc == 1 and xt == xc))) or (
                tau > 0 and xt >= xc + tau
            ):
                r = 1
            else:
                return "uninf"
        else:
            return "uninf"
    if p.direction == "lower":
        r = -r
    return {1: "fav", -1: "unf", 0: "neu"}[r]


def brute(df, priorities, arm="arm"):
    """Per-priority counts and the final pair matrix, by a double loop."""
    t_rows = [r for _, r in df[df[arm] == 1].iterrows()]
    c_rows = [r for _, r in df[df[arm] == 0].iterrows()]
    n1, n0 = len(t_rows), len(c_rows)
    counts = {k: np.zeros(len(priorities)) for k in ("fav", "unf", "neu", "uninf")}
    final = np.zeros((n1, n0))
    for i, tr in enumerate(t_rows):
        for j, cr in enumerate(c_rows):
            for k, p in enumerate(priorities):
                res = brute_priority(p, tr, cr)
                if res in ("fav", "unf"):
                    counts[res][k] += 1
                    final[i, j] = 1 if res == "fav" else -1
                    break
                counts[res][k] += 1
    return {k: v / (n1 * n0) for k, v in counts.items()}, final


def brute_variance(final):
    """First-order H-decomposition variance of the favorable and unfavorable
    fractions and their covariance, from the definition with explicit loops."""
    n1, n0 = final.shape
    fav, unf = final == 1, final == -1
    pf, pu = fav.mean(), unf.mean()
    vf = vu = cv = 0.0
    for i in range(n1):
        hf, hu = fav[i].mean() - pf, unf[i].mean() - pu
        vf, vu, cv = vf + hf * hf / n1**2, vu + hu * hu / n1**2, cv + hf * hu / n1**2
    for j in range(n0):
        hf, hu = fav[:, j].mean() - pf, unf[:, j].mean() - pu
        vf, vu, cv = vf + hf * hf / n0**2, vu + hu * hu / n0**2, cv + hf * hu / n0**2
    return pf, pu, vf, vu, cv


def random_table(rng, n):
    t = rng.choice([2.0, 4.0, 6.0, 6.0, 9.0, 12.0, 12.0, 15.0], n)
    return pd.DataFrame(
        {
            "subject_id": [f"S{i}" for i in range(n)],
            "arm": rng.permutation(np.arange(n) % 2),
            "time": t,
            "died": (rng.random(n) < 0.5).astype(int),
            "change": np.where(
                rng.random(n) < 0.2, np.nan, rng.integers(-10, 3, n).astype(float)
            ),
            "response": np.where(
                rng.random(n) < 0.1, np.nan, (rng.random(n) < 0.4).astype(float)
            ),
        }
    )


PRIORITY_SETS = {
    "surv-horizon+change2": [
        Priority("time", kind="survival", event="died", horizon=12.0),
        Priority("change", threshold=2.0),
    ],
    "surv-threshold+binary+change": [
        Priority("time", kind="survival", event="died", threshold=3.0),
        Priority("response", kind="binary"),
        Priority("change", direction="lower"),
    ],
    "change-only": [Priority("change", threshold=1.0)],
    "surv-lower": [
        Priority("time", kind="survival", event="died", direction="lower", horizon=9.0)
    ],
}


@pytest.mark.parametrize("name", sorted(PRIORITY_SETS))
@pytest.mark.parametrize("seed", range(3))
def test_counts_and_se_equal_brute_force(name, seed):
    rng = np.random.default_rng(seed)
    df = random_table(rng, int(rng.integers(8, 30)))
    pri = PRIORITY_SETS[name]
    res = win_ratio(df, arm="arm", priorities=pri)
    counts, final = brute(df, pri)
    tab = res.priorities
    for k in ("fav", "unf", "neu", "uninf"):
        col = {
            "fav": "favorable",
            "unf": "unfavorable",
            "neu": "neutral",
            "uninf": "uninformative",
        }[k]
        assert_allclose(tab[col].to_numpy(), counts[k], atol=1e-15, err_msg=col)
    pf, pu, vf, vu, cv = brute_variance(final)
    assert res.favorable == pytest.approx(pf, abs=1e-15)
    assert res.unfavorable == pytest.approx(pu, abs=1e-15)
    assert res.ties == pytest.approx(1 - pf - pu, abs=1e-15)
    assert res.net_benefit == pytest.approx(pf - pu, abs=1e-15)
    assert res.net_benefit_se == pytest.approx(np.sqrt(vf + vu - 2 * cv), rel=1e-12)
    if pf > 0 and pu > 0:
        assert res.win_ratio == pytest.approx(pf / pu, rel=1e-12)
        # BuyseTest's win-ratio variance (R/BuyseTest-inference.R) / WR^2
        var_wr = vf / pu**2 + vu * pf**2 / pu**4 - 2 * cv * pf / pu**3
        assert res.log_win_ratio_se == pytest.approx(
            np.sqrt(var_wr) / (pf / pu), rel=1e-10
        )
    t = 1 - pf - pu
    assert res.win_odds == pytest.approx((pf + t / 2) / (pu + t / 2), rel=1e-12)
    # cumulative columns at the last priority are the overall values
    assert tab["net_benefit"].iloc[-1] == pytest.approx(res.net_benefit)
    assert tab["favorable_cum"].iloc[-1] == pytest.approx(res.favorable)
    assert_allclose(tab["favorable_cum"].to_numpy(), np.cumsum(tab["favorable"]))


def test_hand_derived_two_by_two():
    # T = [3, 1], C = [2, 0]: (3,2) fav, (3,0) fav, (1,2) unf, (1,0) fav
    # p_f = 3/4, p_u = 1/4, NB = 1/2; treated means of fav 1, 1/2 (h = ±1/4),
    # control means 1/2, 1 (h = ∓1/4): V_f = 2/16/4 + 2/16/4 = 1/16 = V_u,
    # C = -1/16, so Var(NB) = 1/16 + 1/16 + 2/16 = 1/4, SE 1/2;
    # Var(log WR) = (1/16)/(9/16) + (1/16)/(1/16) + 2 (1/16)/(3/16) = 16/9, SE 4/3;
    # WO = (3/4) / (1/4) = 3 (no ties), SE(log WO) = 2 (1/2) / (1 - 1/4) = 4/3.
    df = pd.DataFrame(
        {
            "subject_id": list("abcd"),
            "arm": ["t", "t", "c", "c"],
            "y": [3.0, 1.0, 2.0, 0.0],
        }
    )
    res = win_ratio(df, arm="arm", treatment="t", priorities=[Priority("y")])
    assert isinstance(res, WinRatioResult)
    assert (res.favorable, res.unfavorable, res.ties) == (0.75, 0.25, 0.0)
    assert res.net_benefit == 0.5
    assert res.net_benefit_se == pytest.approx(0.5, rel=1e-14)
    assert res.win_ratio == pytest.approx(3.0)
    assert res.log_win_ratio_se == pytest.approx(4 / 3, rel=1e-14)
    assert res.win_odds == pytest.approx(3.0)
    assert res.log_win_odds_se == pytest.approx(4 / 3, rel=1e-14)
    z = stats.norm.ppf(0.975)
    # BuyseTest's transformations (R/S4-BuyseTest-confint.R): atanh, log
    half = z * 0.5 / (1 - 0.25)
    assert_allclose(
        res.net_benefit_ci, np.tanh(np.arctanh(0.5) + np.array([-half, half]))
    )
    assert_allclose(res.win_ratio_ci, 3 * np.exp(np.array([-1, 1]) * z * 4 / 3))
    assert_allclose(res.win_odds_ci, 3 * np.exp(np.array([-1, 1]) * z * 4 / 3))
    assert res.net_benefit_p == pytest.approx(
        2 * stats.norm.sf(np.arctanh(0.5) / (0.5 / 0.75))
    )
    assert res.win_ratio_p == pytest.approx(2 * stats.norm.sf(np.log(3) / (4 / 3)))
    assert res.win_odds_p == pytest.approx(res.win_ratio_p)
    assert (res.n_treatment, res.n_control, res.treatment, res.control) == (
        2,
        2,
        "t",
        "c",
    )
    assert res.level == 0.95 and res.n_bootstrap == 0
    assert res.win_ratio_ci_bootstrap is None and res.net_benefit_se_bootstrap is None


def test_hand_derived_survival_then_change():
    # treated a (alive at 12, -3), b (alive, -5), c (died 9);
    # controls d (alive, -8), e (died 5), f (censored at 10).
    # survival to 12: a-d neutral, a-e fav, a-f uninf (a alive, f lost at 10),
    # b-d neutral, b-e fav, b-f uninf, c-d unf, c-e fav (9 > 5), c-f unf (death at 9
    # while f known alive to 10)                      -> 3 fav, 2 unf, 2 neu, 2 uninf
    # change >= 2: a-d fav (5), b-d fav (3); a-f, b-f uninf (f has no value)
    df = pd.DataFrame(
        {
            "subject_id": list("abcdef"),
            "arm": [1, 1, 1, 0, 0, 0],
            "months": [12, 12, 9, 12, 5, 10],
            "died": [0, 0, 1, 0, 1, 0],
            "change": [-3, -5, None, -8, None, None],
        }
    )
    res = win_ratio(
        df,
        arm="arm",
        priorities=[
            Priority("months", kind="survival", event="died", horizon=12),
            Priority("change", threshold=2),
        ],
    )
    tab = res.priorities
    assert list(tab.index) == ["months (to 12)", "change (>= 2)"]
    assert_allclose(tab["favorable"] * 9, [3, 2])
    assert_allclose(tab["unfavorable"] * 9, [2, 0])
    assert_allclose(tab["neutral"] * 9, [2, 0])
    assert_allclose(tab["uninformative"] * 9, [2, 2])
    assert_allclose(tab["win_ratio"], [1.5, 2.5])
    # with a threshold of 4 points b-d (3 points) is neutral
    res4 = win_ratio(
        df,
        arm="arm",
        priorities=[
            Priority("months", kind="survival", event="died", horizon=12),
            Priority("change", threshold=4),
        ],
    )
    assert res4.favorable * 9 == pytest.approx(4)
    assert res4.priorities["neutral"].iloc[-1] * 9 == pytest.approx(1)


def test_gehan_without_horizon_and_equal_times():
    # no horizon: both alive at 12 censored -> uninformative; a death at 6 vs a
    # censoring at 6 -> the censored patient lives longer (unfavorable here)
    df = pd.DataFrame(
        {
            "subject_id": list("abcd"),
            "arm": [1, 1, 0, 0],
            "t": [6.0, 12.0, 6.0, 12.0],
            "d": [1, 0, 0, 0],
        }
    )
    res = win_ratio(
        df, arm="arm", priorities=[Priority("t", kind="survival", event="d")]
    )
    # a(6, death) vs c(6, cens): unf; a vs d(12 cens): unf; b(12 cens) vs c(6 cens):
    # uninf; b vs d: uninf
    assert (res.favorable, res.unfavorable) == (0.0, 0.5)
    assert res.priorities["uninformative"].iloc[0] == 0.5
    assert res.win_ratio == 0.0


@pytest.mark.parametrize("threshold", [0.0, 2.0])
def test_batch_equals_table(threshold):
    rng = np.random.default_rng(7)
    k, n = 4, 40
    t = rng.choice([2.0, 5.0, 8.0, 12.0, 12.0, 13.0], (k, n))
    e = rng.random((k, n)) < 0.5
    c = rng.integers(-10, 2, (k, n)).astype(float)
    c[rng.random((k, n)) < 0.1] = np.nan
    arm = np.arange(n) % 3 == 0
    w = win_statistics_batch(t, e, c, arm, 12.0, threshold)
    for i in range(k):
        alive = ~(e[i] & (t[i] <= 12)) & (t[i] >= 12)
        df = pd.DataFrame(
            {
                "subject_id": range(n),
                "arm": arm,
                "t": t[i],
                "d": e[i],
                "change": np.where(alive, c[i], np.nan),
            }
        )
        res = win_ratio(
            df,
            arm="arm",
            priorities=[
                Priority("t", kind="survival", event="d", horizon=12.0),
                Priority("change", threshold=threshold),
            ],
        )
        assert w.favorable[i] == pytest.approx(res.favorable, abs=1e-15)
        assert w.unfavorable[i] == pytest.approx(res.unfavorable, abs=1e-15)
        assert w.net_benefit[i] == pytest.approx(res.net_benefit, abs=1e-15)
        assert w.win_ratio[i] == pytest.approx(res.win_ratio, rel=1e-12)
        assert w.win_odds[i] == pytest.approx(res.win_odds, rel=1e-12)
        assert w.net_benefit_se[i] == pytest.approx(res.net_benefit_se, rel=1e-12)
        assert w.log_win_ratio_se[i] == pytest.approx(res.log_win_ratio_se, rel=1e-12)
        assert w.log_win_odds_se[i] == pytest.approx(res.log_win_odds_se, rel=1e-12)
        assert w.z[i] == pytest.approx(np.log(res.win_ratio) / res.log_win_ratio_se)


def test_batch_sign_and_no_loss():
    # treated survive longer: positive z; a trial without a loss has z NaN
    t = np.array([[12.0, 12.0, 8.0, 3.0, 4.0, 12.0], [12.0] * 3 + [1.0] * 3])
    e = np.array([[0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1]], dtype=bool)
    c = np.array([[-1.0, -2.0, np.nan, np.nan, np.nan, -9.0], [-1.0] * 6])
    arm = np.array([True, True, True, False, False, False])
    w = win_statistics_batch(t, e, c, arm, 12.0)
    # row 0: treated 0, 1 beat all three controls (5 on change: -1, -2 vs -9);
    # treated 2 (died at 8) beats 3 and 4, loses to 5: 8 wins, 1 loss of 9
    assert w.favorable[0] == pytest.approx(8 / 9) and w.unfavorable[0] == 1 / 9
    assert w.z[0] > 0 and w.net_benefit[0] == pytest.approx(7 / 9)
    assert np.isnan(w.z[1]) and w.win_ratio[1] == np.inf
    assert w.net_benefit[1] == 1.0


def test_asymptotic_se_close_to_bootstrap():
    rng = np.random.default_rng(2024)
    n = 150
    arm = np.repeat([1, 0], n)
    hazard = np.where(arm == 1, 0.04, 0.06)
    death = rng.exponential(1 / hazard)
    cens = rng.uniform(6, 18, 2 * n)
    t = np.minimum(death, cens).round(1)
    d = (death <= cens).astype(int)
    change = rng.normal(np.where(arm == 1, -6, -8), 5).round()
    alive = t >= 12
    df = pd.DataFrame(
        {
            "subject_id": range(2 * n),
            "arm": arm,
            "t": t,
            "d": d,
            "change": np.where(alive, change, np.nan),
        }
    )
    pri = [
        Priority("t", kind="survival", event="d", horizon=12.0),
        Priority("change", threshold=2.0),
    ]
    res = win_ratio(df, arm="arm", priorities=pri, n_bootstrap=2000, seed=3)
    # the bootstrap SE is itself noisy (about 1.6 % with 2000 resamples) and the
    # first-order SE is an approximation: 10 %
    assert res.net_benefit_se_bootstrap == pytest.approx(res.net_benefit_se, rel=0.1)
    assert res.log_win_ratio_se_bootstrap == pytest.approx(
        res.log_win_ratio_se, rel=0.1
    )
    assert res.log_win_odds_se_bootstrap == pytest.approx(res.log_win_odds_se, rel=0.1)
    lo, hi = res.net_benefit_ci_bootstrap
    assert lo < res.net_benefit < hi
    assert res.net_benefit_ci_bootstrap == pytest.approx(res.net_benefit_ci, abs=0.03)
    assert res.win_ratio_ci_bootstrap[0] < res.win_ratio < res.win_ratio_ci_bootstrap[1]
    assert res.win_odds_ci_bootstrap[0] < res.win_odds < res.win_odds_ci_bootstrap[1]
    again = win_ratio(df, arm="arm", priorities=pri, n_bootstrap=2000, seed=3)
    assert again.win_ratio_ci_bootstrap == res.win_ratio_ci_bootstrap
    other = win_ratio(df, arm="arm", priorities=pri, n_bootstrap=2000, seed=4)
    assert other.win_ratio_ci_bootstrap != res.win_ratio_ci_bootstrap


def test_bootstrap_percentiles_by_hand():
    # the bootstrap draws are multinomial counts within each arm, recomputed here
    df = pd.DataFrame(
        {
            "subject_id": list("abcde"),
            "arm": [1, 1, 0, 0, 0],
            "y": [3.0, 1.0, 2.0, 0.0, 1.0],
        }
    )
    res = win_ratio(
        df, arm="arm", priorities=[Priority("y")], n_bootstrap=500, seed=9, level=0.8
    )
    rng = np.random.default_rng(9)
    a = rng.multinomial(2, [0.5, 0.5], size=500)
    b = rng.multinomial(3, [1 / 3] * 3, size=500)
    yt, yc = np.array([3.0, 1.0]), np.array([2.0, 0.0, 1.0])
    fav = (yt[:, None] > yc[None, :]).astype(float)
    unf = (yt[:, None] < yc[None, :]).astype(float)
    nb = np.array([(ai @ (fav - unf) @ bi) / 6 for ai, bi in zip(a, b, strict=True)])
    assert_allclose(res.net_benefit_ci_bootstrap, np.quantile(nb, [0.1, 0.9]))
    assert res.net_benefit_se_bootstrap == pytest.approx(np.std(nb, ddof=1))


# ------------------------------------------------------------------ bad input
def _df():
    return pd.DataFrame(
        {
            "subject_id": list("abcd"),
            "arm": [1, 1, 0, 0],
            "t": [6.0, 12.0, 6.0, 12.0],
            "d": [1, 0, 0, 0],
            "y": [1.0, 2.0, 3.0, 4.0],
        }
    )


def test_missing_columns_named():
    with pytest.raises(DataValidationError) as info:
        win_ratio(
            _df(),
            arm="group",
            priorities=[Priority("t", kind="survival", event="dead")],
        )
    msg = str(info.value)
    assert "column group: is needed" in msg and "column dead: is needed" in msg


def test_bad_values_named():
    df = _df()
    df["t"] = df["t"].astype(object)
    df.loc[1, "t"] = "12m"
    df.loc[2, "d"] = 3
    df.loc[3, "t"] = -1.0
    with pytest.raises(DataValidationError) as info:
        win_ratio(df, arm="arm", priorities=[Priority("t", kind="survival", event="d")])
    msg = str(info.value)
    assert "row 2, subject b, column t: '12m' is not a follow-up time" in msg
    assert "row 3, subject c, column d: 3 is not an event flag" in msg
    assert "row 4, subject d, column t: -1.0 is below 0" in msg


def test_binary_values_and_duplicates():
    df = _df().assign(r=[0, 1, 2, 1])
    df.loc[3, "subject_id"] = "a"
    with pytest.raises(DataValidationError) as info:
        win_ratio(df, arm="arm", priorities=[Priority("r", kind="binary")])
    msg = str(info.value)
    assert "subject c, column r: 2 is not" in msg
    assert "subject a, column subject_id: appears on more than one row" in msg


def test_arm_levels():
    with pytest.raises(DataValidationError, match=r"column arm: has 1 level"):
        win_ratio(_df().assign(arm=0), arm="arm", priorities=[Priority("y")])
    with pytest.raises(ModelSpecificationError, match="`treatment` must be one of"):
        win_ratio(_df(), arm="arm", treatment=2, priorities=[Priority("y")])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"column": "t", "kind": "weibull"}, "`kind` must be one of"),
        ({"column": "t", "direction": "up"}, "`direction` must be one of"),
        ({"column": "t", "threshold": -1}, "`threshold` must be in"),
        ({"column": "t", "kind": "binary", "threshold": 1}, "must be 0 for a binary"),
        ({"column": "t", "kind": "survival"}, "needs `event`"),
        (
            {"column": "t", "kind": "survival", "event": "d", "horizon": 0},
            "`horizon` must be in",
        ),
        ({"column": "y", "event": "d"}, "survival priorities only"),
        ({"column": 3}, "`column` must be a column name"),
    ],
)
def test_bad_priority(kwargs, match):
    with pytest.raises(ModelSpecificationError, match=match):
        Priority(**kwargs)


def test_bad_arguments():
    with pytest.raises(ModelSpecificationError, match="`priorities` must be"):
        win_ratio(_df(), arm="arm", priorities=[])
    with pytest.raises(ModelSpecificationError, match="`priorities` must be"):
        win_ratio(_df(), arm="arm", priorities=["y"])
    with pytest.raises(ModelSpecificationError, match="`level`"):
        win_ratio(_df(), arm="arm", priorities=Priority("y"), level=95)
    with pytest.raises(ModelSpecificationError, match="`n_bootstrap`"):
        win_ratio(_df(), arm="arm", priorities=Priority("y"), n_bootstrap=-5)


@pytest.mark.parametrize(
    "arm, threshold, match",
    [
        ([True, True], 0.0, "both arms"),
        ([1, 0], 0.0, "boolean"),
        ([True, False], -1.0, "`threshold` must be in"),
    ],
)
def test_batch_bad_input(arm, threshold, match):
    with pytest.raises(ModelSpecificationError, match=match):
        win_statistics_batch(
            [1.0, 2.0], [True, False], [0.0, 0.0], arm, 12.0, threshold
        )


def test_death_at_the_horizon_ties_with_the_alive():
    # BuyseTest's restriction: both reach the horizon (neutral), then no change for
    # the dead (uninformative); CAFS instead ranks the death below the survivor
    t, e, c = [12.0, 12.0], [True, False], [np.nan, -3.0]
    w = win_statistics_batch(t, e, c, [True, False], 12.0)
    assert (float(w.favorable), float(w.unfavorable)) == (0.0, 0.0)
    df = pd.DataFrame(
        {"subject_id": ["a", "b"], "arm": [1, 0], "t": t, "d": e, "change": c}
    )
    res = win_ratio(
        df,
        arm="arm",
        priorities=[
            Priority("t", kind="survival", event="d", horizon=12.0),
            Priority("change"),
        ],
    )
    assert res.priorities["neutral"].iloc[0] == 1.0
    assert res.priorities["uninformative"].iloc[1] == 1.0
    from alsprog.design._pairwise import cafs_scores_batch

    assert cafs_scores_batch(t, e, c, 12.0).tolist() == [-1, 1]


def test_bootstrap_ratio_without_losses():
    # every resample wins all pairs: the win ratio is infinite, its interval too
    df = pd.DataFrame(
        {"subject_id": list("abcd"), "arm": [1, 1, 0, 0], "y": [5.0, 6.0, 1.0, 2.0]}
    )
    res = win_ratio(df, arm="arm", priorities=[Priority("y")], n_bootstrap=50, seed=1)
    assert res.win_ratio == np.inf
    assert res.win_ratio_ci_bootstrap == (np.inf, np.inf)
    assert res.net_benefit_ci_bootstrap == (1.0, 1.0)
    assert np.isnan(res.log_win_ratio_se_bootstrap)
    # no loss: a zero SE for the net benefit, no SE for the log ratio
    assert res.net_benefit_se == 0.0 and res.net_benefit_ci == (1.0, 1.0)
    assert np.isnan(res.net_benefit_p) and np.isnan(res.win_ratio_p)


# ------------------------------------------------------------------ R's BuyseTest
_REF = Path(__file__).parents[1] / "reference"
_BT_CASES = {
    # BuyseTest formula in tests/reference/buysetest_reference.R -> priorities here
    "surv12_change2": [
        Priority("time", kind="survival", event="event", horizon=12.0),
        Priority("change", threshold=2.0),
    ],
    "surv3_binary_changelower": [
        Priority("time", kind="survival", event="event", threshold=3.0),
        Priority("response", kind="binary"),
        Priority("change", direction="lower"),
    ],
    "full1": [Priority("full", threshold=1.0)],
}


@pytest.fixture(scope="module")
def buysetest():
    ref = json.loads((_REF / "buysetest_reference.json").read_text())
    data = pd.read_csv(_REF / "buysetest_trial.csv")
    return ref, data


@pytest.mark.parametrize("case", sorted(_BT_CASES))
def test_matches_buysetest(buysetest, case):
    # R's BuyseTest 3.3.9 (scoring.rule = "Gehan", method.inference = "u-statistic"),
    # values printed in tests/reference/buysetest_reference.Rout
    ref, data = buysetest
    r = {k: np.atleast_1d(v) for k, v in ref[case].items()}  # one endpoint: scalars
    res = win_ratio(data, arm="arm", priorities=_BT_CASES[case])
    tab = res.priorities
    tol = {"rtol": 1e-12, "atol": 1e-14}
    assert_allclose(tab["favorable"], r["favorable"], **tol)
    assert_allclose(tab["unfavorable"], r["unfavorable"], **tol)
    assert_allclose(tab["neutral"], r["neutral"], **tol)
    assert_allclose(tab["uninformative"] * r["n_pairs"][0], r["uninf_pairs"], **tol)
    assert_allclose(tab["favorable_cum"], r["favorable_cum"], **tol)
    assert_allclose(tab["unfavorable_cum"], r["unfavorable_cum"], **tol)
    assert_allclose(tab["net_benefit"], r["net_benefit"], **tol)
    assert_allclose(tab["net_benefit_se"], r["net_benefit_se"], rtol=1e-10)
    assert_allclose(tab["win_ratio"], r["win_ratio"], **tol)
    # BuyseTest reports the SE of the win ratio itself: SE(log WR) * WR
    assert_allclose(
        tab["log_win_ratio_se"] * tab["win_ratio"], r["win_ratio_se"], rtol=1e-10
    )
    assert_allclose(
        res.net_benefit_ci,
        [r["net_benefit_lower"][-1], r["net_benefit_upper"][-1]],
        rtol=1e-10,
    )
    assert_allclose(
        res.win_ratio_ci,
        [r["win_ratio_lower"][-1], r["win_ratio_upper"][-1]],
        rtol=1e-10,
    )
    assert res.net_benefit_p == pytest.approx(r["net_benefit_p"][-1], rel=1e-8)
    assert res.win_ratio_p == pytest.approx(r["win_ratio_p"][-1], rel=1e-8)


def test_win_odds_match_buysetest_half_neutral(buysetest):
    # add.halfNeutral = TRUE; no pair is uninformative for `full` (no missing value)
    ref, data = buysetest
    r = ref["full1_halfneutral"]
    res = win_ratio(data, arm="arm", priorities=_BT_CASES["full1"])
    assert res.priorities["uninformative"].iloc[-1] == 0
    assert res.win_odds == pytest.approx(r["win_odds"], rel=1e-12)
    assert res.log_win_odds_se * res.win_odds == pytest.approx(
        r["win_odds_se"], rel=1e-10
    )
    assert_allclose(
        res.win_odds_ci, [r["win_odds_lower"], r["win_odds_upper"]], rtol=1e-10
    )
    assert res.win_odds_p == pytest.approx(r["win_odds_p"], rel=1e-8)


def test_batch_arm_shape_and_one_row_broadcast():
    t = np.array([[12.0, 3.0, 12.0, 5.0], [12.0, 12.0, 2.0, 4.0]])
    e = np.array([[0, 1, 0, 1], [0, 0, 1, 1]], dtype=bool)
    c = np.array([[-1.0, np.nan, -3.0, np.nan], [-2.0, -1.0, np.nan, np.nan]])
    arm = np.array([True, False, True, False])
    a = win_statistics_batch(t, e, c, arm, 12.0)
    b = win_statistics_batch(t, e, c, arm[None, :], 12.0)
    assert_allclose(a.net_benefit, b.net_benefit)
    with pytest.raises(ModelSpecificationError, match="`arm` must be a boolean array"):
        win_statistics_batch(t, e, c, np.ones((3, 4), bool), 12.0)


def _simulated_trials(rng, k, n, hr, shift):
    arm = np.arange(2 * n) < n
    rate = np.where(arm, 0.06 * hr, 0.06)
    death = rng.exponential(1 / rate, (k, 2 * n))
    drop = rng.exponential(40.0, (k, 2 * n))
    t = np.minimum(np.minimum(death, drop), 12.0)
    e = death <= np.minimum(drop, 12.0)
    change = rng.normal(np.where(arm, -8 + shift, -8), 6, (k, 2 * n)).round()
    return t, e, np.where(t >= 12, change, np.nan), arm


def test_se_matches_spread_over_simulated_trials():
    # the first-order SE against the Monte Carlo SD of the estimates over 2000 trials
    # (SD of an SD estimate over 2000 trials: about 1.6 %)
    rng = np.random.default_rng(77)
    t, e, c, arm = _simulated_trials(rng, 2000, 100, hr=0.7, shift=2.0)
    w = win_statistics_batch(t, e, c, arm, 12.0, 2.0)
    assert np.mean(w.net_benefit_se) == pytest.approx(np.std(w.net_benefit), rel=0.06)
    assert np.mean(w.log_win_ratio_se) == pytest.approx(
        np.std(np.log(w.win_ratio)), rel=0.06
    )
    assert np.mean(w.log_win_odds_se) == pytest.approx(
        np.std(np.log(w.win_odds)), rel=0.06
    )


def test_type_one_error_under_the_null():
    # no effect: |z| > 1.96 in 5 % of 2000 trials, within 3 Monte Carlo SE (0.0146)
    from alsprog.design._pairwise import cafs_scores_batch, rank_sum_z

    rng = np.random.default_rng(78)
    t, e, c, arm = _simulated_trials(rng, 2000, 100, hr=1.0, shift=0.0)
    w = win_statistics_batch(t, e, c, arm, 12.0, 2.0)
    z_cafs = rank_sum_z(cafs_scores_batch(t, e, c, 12.0), arm)
    for z in (w.z, w.net_benefit / w.net_benefit_se, z_cafs):
        assert np.mean(np.abs(z) > stats.norm.ppf(0.975)) == pytest.approx(
            0.05, abs=3 * np.sqrt(0.05 * 0.95 / 2000)
        )
