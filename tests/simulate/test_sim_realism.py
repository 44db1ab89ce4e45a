"""Realism of a 20,000-patient cohort against the figures in docs/domain.md.

Each constant cites its docs/domain.md row; tolerances are explicit. Monte-Carlo error at
n = 20,000 is about SD / 141 (e.g. 0.004 points/month on the mean slope), so every
tolerance below is set by how exactly the generative model targets the figure, not by
sampling noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import brentq

DAYS_PER_MONTH = 30.4375  # data dictionary
ITEMS = [f"alsfrs_r_q{i}" for i in range(1, 13)]


@pytest.fixture(scope="module")
def pats(large_cohort):
    """Per-patient truth joined with the subjects table."""
    c = large_cohort
    t = c.truth[c.truth["group"] == "als"].set_index("subject_id")
    s = c.subjects.set_index("subject_id").loc[t.index]
    return t.join(s.drop(columns=["group", "onset_site"]))


@pytest.fixture(scope="module")
def als_visits(large_cohort):
    v = large_cohort.visits
    v = v[v["subject_id"].str.startswith("P")].copy()
    first = v.groupby("subject_id")["visit_date"].transform("min")
    v["months"] = (v["visit_date"] - first).dt.days / DAYS_PER_MONTH
    return v


def _ols_slopes(df: pd.DataFrame, x: str, y: str, min_points: int = 3) -> pd.Series:
    """Per-subject least-squares slope of ``y`` on ``x`` (subjects with enough points)."""
    n = df.groupby("subject_id")[x].transform("size")
    d = df[n >= min_points]
    xc = d[x] - d.groupby("subject_id")[x].transform("mean")
    yc = d[y] - d.groupby("subject_id")[y].transform("mean")
    sxy = (xc * yc).groupby(d["subject_id"]).sum()
    sxx = (xc**2).groupby(d["subject_id"]).sum()
    return sxy / sxx


# --------------------------------------------------------------------------- slopes


def test_true_12_month_slope_mean_and_sd(pats):
    # docs/domain.md §7: slope mean −0.9 pts/mo, between-patient SD 0.6
    # (§2: Ibric 2025 12-mo slope −0.89 ± 0.65; Thakore 2018 −0.99)
    assert pats["slope_12m"].mean() == pytest.approx(-0.9, abs=0.03)
    assert pats["slope_12m"].std() == pytest.approx(0.6, abs=0.03)


def test_observed_ols_slopes_track_truth(pats, als_visits):
    # Per-patient OLS over months 0-12 (>= 3 visits) vs the true 12-month slope of the
    # same patients. Expected var(OLS) = var(true) + mean(sigma_e^2 / Sxx): sigma_e^2 =
    # residual SD^2 (docs/domain.md §7: 2.0) + 1/12 for rounding to integers.
    v = als_visits[als_visits["months"] <= 12.5]
    ols = _ols_slopes(v, "months", "alsfrs_r_total")
    truth = pats.loc[ols.index, "slope_12m"]
    assert len(ols) > 0.6 * len(pats)
    assert ols.mean() == pytest.approx(truth.mean(), abs=0.05)
    xc = v["months"] - v.groupby("subject_id")["months"].transform("mean")
    sxx = (xc**2).groupby(v["subject_id"]).sum().loc[ols.index]
    expected_sd = np.sqrt(truth.var() + np.mean((2.0**2 + 1 / 12) / sxx))
    assert ols.std() == pytest.approx(expected_sd, rel=0.10)
    assert np.corrcoef(ols, truth)[0, 1] > 0.75


def test_bulbar_onset_progresses_faster(pats):
    # docs/domain.md §7: bulbar slope multiplier 1.15 (approx.)
    rate = pats.groupby("onset_site")["progression_rate"].mean()
    assert rate["bulbar"] / rate["spinal"] == pytest.approx(1.15, abs=0.04)


# --------------------------------------------------------------------------- baseline


def test_true_baseline_total(pats):
    # docs/domain.md §7: baseline ALSFRS-R 38 ± 5, truncated ≤ 47 (§2 Andrews 2018: 38.0 ± 5.6)
    assert pats["baseline_total"].mean() == pytest.approx(38.0, abs=1.0)
    assert pats["baseline_total"].std() == pytest.approx(5.0, abs=0.6)
    assert pats["baseline_total"].max() <= 47.0


def test_observed_baseline_total(als_visits):
    # §2 Andrews 2018 (EMPOWER placebo, observed scores): 38.0 ± 5.6
    base = als_visits[als_visits["months"] == 0]["alsfrs_r_total"]
    assert base.mean() == pytest.approx(38.0, abs=1.0)
    assert base.std() == pytest.approx(5.6, abs=0.5)


def test_onset_to_baseline(pats):
    # docs/domain.md §7: 15 ± 6 months, truncated ≥ 3 (§2 Andrews 2018: 15.6 ± 5.4)
    t0 = pats["months_onset_to_baseline"]
    assert t0.mean() == pytest.approx(15.0, abs=0.6)
    assert t0.std() == pytest.approx(6.0, abs=0.6)
    assert t0.min() >= 3.0


def test_delta_fs(pats):
    # docs/domain.md §7: ΔFS lognormal, mean 0.7, SD 0.5 (§1, derived)
    assert pats["delta_fs"].mean() == pytest.approx(0.7, abs=0.05)
    assert pats["delta_fs"].std() == pytest.approx(0.5, abs=0.07)
    assert stats.skew(pats["delta_fs"]) > 1.0  # right-skewed (§1)


def test_delta_fs_predicts_later_slope(pats):
    # §2 Proudfoot 2016 / §4 Hothorn 2014: the pre-slope predicts, imperfectly, the slope
    r = stats.spearmanr(pats["delta_fs"], -pats["slope_12m"]).statistic
    assert 0.3 < r < 0.7


@pytest.mark.parametrize(
    ("subscore", "paganoni"),
    # Paganoni 2020 trial-entry means (docs/domain.md §1), entry total ≈ 36
    [("alsfrs_r_bulbar", 9.7), ("alsfrs_r_fine_motor", 8.0),
     ("alsfrs_r_gross_motor", 7.6), ("alsfrs_r_respiratory", 10.8)],
)  # fmt: skip
def test_entry_subscores_near_trial_means(als_visits, subscore, paganoni):
    base = als_visits[
        (als_visits["months"] == 0) & als_visits["alsfrs_r_total"].between(34, 38)
    ]
    assert base[subscore].mean() == pytest.approx(paganoni, abs=0.6)


@pytest.mark.parametrize(
    ("items", "low", "high"),
    # Cudkowicz 2022 (docs/domain.md §1): at total ≤ 25, 33-49% of fine-motor and 32-42% of
    # gross-motor items are 0; tolerance 0.03 around the published ranges
    [(ITEMS[3:6], 0.33, 0.49), (ITEMS[6:9], 0.32, 0.42)],
)
def test_floor_of_limb_items_at_low_totals(als_visits, items, low, high):
    low_total = als_visits[als_visits["alsfrs_r_total"] <= 25]
    zero = (low_total[items] == 0).to_numpy().mean()
    assert low - 0.03 <= zero <= high + 0.03


# --------------------------------------------------------------------------- demographics


def test_demographics(pats):
    # docs/domain.md §7: bulbar 28%, male 62%, age at onset 58 ± 11
    assert (pats["onset_site"] == "bulbar").mean() == pytest.approx(0.28, abs=0.015)
    assert (pats["sex"] == "male").mean() == pytest.approx(0.62, abs=0.015)
    assert pats["age_at_onset"].mean() == pytest.approx(58.0, abs=0.5)
    assert pats["age_at_onset"].std() == pytest.approx(11.0, abs=0.5)


def test_diagnostic_delay(pats):
    # docs/domain.md §7: lognormal, median 11 months (§2 Falcão de Campos 2023: 11; Paganoni
    # 2014: 11.5); capped at onset-to-baseline time, which pulls the median down a little
    assert pats["diagnostic_delay_months"].median() == pytest.approx(11.0, abs=1.0)


def test_controls_match_patients_in_age_and_sex(large_cohort):
    s = large_cohort.subjects
    age = s.groupby("group")["age_at_baseline"].mean()
    assert age["control"] == pytest.approx(age["als"], abs=1.0)
    male = (s["sex"] == "male").groupby(s["group"]).mean()
    assert male["control"] == pytest.approx(0.62, abs=0.04)


# --------------------------------------------------------------------------- D50


def test_d50_and_dx(pats):
    # docs/domain.md §3/§7: D50 median ≈ 30 months (cohort medians approx. 25-40);
    # dx ≈ 10 months (approx. 8-15)
    assert pats["d50"].median() == pytest.approx(30.0, abs=4.0)
    assert 8.0 <= pats["dx"].median() <= 15.0
    assert pats["dx"].median() == pytest.approx(10.0, abs=2.0)
    # §3: high aggressiveness (D50 < 30) goes with a steeper slope
    fast = pats["d50"] < 30
    assert pats.loc[fast, "slope_12m"].mean() < pats.loc[~fast, "slope_12m"].mean()


# --------------------------------------------------------------------------- events


def test_population_weibull_median_from_onset(large_cohort, pats):
    # docs/domain.md §7: death/tracheostomy median 30 months from onset (§2 Chiò 2009: 20-48)
    k = large_cohort.params.event_weibull_shape
    scale = pats["event_weibull_scale"].to_numpy()

    def surv(t):
        return np.mean(np.exp(-((t / scale) ** k)))

    median = brentq(lambda t: surv(t) - 0.5, 1.0, 500.0)
    assert median == pytest.approx(30.0, abs=1.5)
    # §2 Chiò 2009: 10-20% live > 10 years
    assert 0.10 <= surv(120.0) <= 0.20


def test_event_times_are_weibull_given_survival_to_baseline(large_cohort, pats):
    # Conditional survival S(e)/S(T0) of a left-truncated Weibull is Uniform(0, 1)
    k = large_cohort.params.event_weibull_shape
    e, t0 = pats["event_months_since_onset"], pats["months_onset_to_baseline"]
    scale = pats["event_weibull_scale"]
    u = np.exp(-((e / scale) ** k - (t0 / scale) ** k))
    assert stats.kstest(u, "uniform").pvalue > 0.001
    assert (e > t0).all()


def test_hazard_rises_with_progression_rate(pats):
    # docs/domain.md §7: hazard rising with slope; §1 Labra 2016 median survival from first
    # visit 2.4 / 1.6 / 0.7 years for ΔFS < 0.47 / 0.47-1.11 / > 1.11
    death = pats["event_months_since_onset"] - pats["months_onset_to_baseline"]
    groups = pd.cut(pats["delta_fs"], [0, 0.47, 1.11, np.inf])
    med = death.groupby(groups, observed=True).median().to_numpy()
    assert med[0] > med[1] > med[2]
    assert med[0] / med[2] >= 2.5  # Labra: 2.4 / 0.7 = 3.4
    assert med[1] == pytest.approx(1.6 * 12, rel=0.25)
    # observed events per person-month: fastest third vs slowest third
    tert = pd.qcut(pats["slope_12m"], 3, labels=["fast", "mid", "slow"])
    rate = (
        pats["event_observed"].astype(float).groupby(tert, observed=True).sum()
        / pats["death_or_tracheostomy_months"].groupby(tert, observed=True).sum()
    )
    assert rate["fast"] > 2.0 * rate["slow"]


def test_dropout_is_15_percent_a_year_and_informative(large_cohort, pats):
    # docs/domain.md §7: dropout 15%/yr, informative (§2 Proudfoot 2016)
    assert (pats["dropout_months"] < 12).mean() == pytest.approx(0.15, abs=0.015)
    tert = pd.qcut(pats["slope_12m"], 3, labels=["fast", "mid", "slow"])
    by = (pats["dropout_months"] < 12).groupby(tert, observed=True).mean()
    assert by["fast"] > 1.5 * by["slow"]
    ctl = large_cohort.truth[large_cohort.truth["group"] == "control"]
    assert (ctl["dropout_months"] < 12).mean() == pytest.approx(0.15, abs=0.03)


def test_missed_visits(als_visits, pats):
    # docs/domain.md §7 (assumption): about 7% of scheduled visits after the first are missed
    end = np.minimum(
        pats["event_months_since_onset"] - pats["months_onset_to_baseline"],
        pats["dropout_months"],
    )
    # patients followed beyond month 18: 6 post-baseline visits scheduled
    full = end.index[end > 19]
    n = als_visits[als_visits["subject_id"].isin(full)].groupby("subject_id").size()
    assert 1 - (n - 1).mean() / 6 == pytest.approx(0.07, abs=0.01)
