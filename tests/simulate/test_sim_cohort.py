"""simulate_cohort: table layout, reproducibility, argument errors and internal logic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from alsprog.simulate import Cohort, simulate_cohort

DAYS_PER_MONTH = 30.4375  # data dictionary, `months` column
ITEMS = [f"alsfrs_r_q{i}" for i in range(1, 13)]
DOMAINS = {  # Cedarbaum 1999; docs/domain.md §1
    "alsfrs_r_bulbar": ITEMS[0:3],
    "alsfrs_r_fine_motor": ITEMS[3:6],
    "alsfrs_r_gross_motor": ITEMS[6:9],
    "alsfrs_r_respiratory": ITEMS[9:12],
}
FEATURES = [
    "fa_cst_left",
    "fa_cst_right",
    "fa_cc_motor",
    "md_cst_left",
    "md_cst_right",
    "thickness_precentral_left",
    "thickness_precentral_right",
    "thickness_cuneus_left",
]
TABLES = ["subjects", "visits", "imaging", "truth", "imaging_truth", "site_effects"]
SCHEMA = (
    Path(__file__).resolve().parents[2] / "data_dictionary" / "long_format.schema.json"
)


def _months(df: pd.DataFrame, date: str, first: pd.Series) -> pd.Series:
    return (df[date] - df["subject_id"].map(first)).dt.days / DAYS_PER_MONTH


# --------------------------------------------------------------------------- layout


def test_columns_are_the_documented_ones(small_cohort):
    c = small_cohort
    assert list(c.subjects.columns) == [
        "subject_id", "group", "sex", "age_at_onset", "age_at_baseline", "onset_site",
        "onset_date", "diagnostic_delay_months", "site", "death_or_tracheostomy_months",
        "event_observed", "niv_months", "niv_observed",
        "death_tracheostomy_or_niv_months", "death_tracheostomy_or_niv_observed",
    ]  # fmt: skip
    assert list(c.visits.columns) == [
        "subject_id", "visit_date", *ITEMS, "alsfrs_r_q5_gastrostomy", "alsfrs_r_total",
        *DOMAINS, "fvc_liters", "fvc_percent_predicted",
    ]  # fmt: skip
    assert list(c.imaging.columns) == [
        "subject_id",
        "session",
        "acquisition_date",
        *FEATURES,
    ]
    assert list(c.imaging_truth.columns) == list(c.imaging.columns)
    assert list(c.site_effects.columns) == ["site", "feature", "offset", "scale"]


def test_column_names_exist_in_the_data_dictionary(small_cohort):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    named = {f["name"] for f in schema["fields"]}
    for table in (small_cohort.subjects, small_cohort.visits, small_cohort.imaging):
        assert set(table.columns) <= named


@pytest.mark.parametrize(
    ("table", "column", "kind"),
    [
        ("subjects", "subject_id", "str"),
        ("subjects", "group", "str"),
        ("subjects", "sex", "str"),
        ("subjects", "onset_site", "str"),
        ("subjects", "site", "str"),
        ("subjects", "onset_date", "datetime64[ns]"),
        ("subjects", "age_at_onset", "float64"),
        ("subjects", "event_observed", "boolean"),
        ("visits", "visit_date", "datetime64[ns]"),
        ("visits", "alsfrs_r_q7", "float64"),
        ("visits", "alsfrs_r_total", "float64"),
        ("visits", "alsfrs_r_q5_gastrostomy", "boolean"),
        ("imaging", "session", "str"),
        ("imaging", "acquisition_date", "datetime64[ns]"),
        ("imaging", "fa_cst_left", "float64"),
    ],
)
def test_dtypes(small_cohort, table, column, kind):
    assert str(getattr(small_cohort, table)[column].dtype) == kind


def test_ids_and_sort_order(small_cohort):
    c = small_cohort
    ids = c.subjects["subject_id"]
    assert ids.str.fullmatch(r"[PC]\d{4}").all()
    assert (ids.str[0] == "P").sum() == 200 and (ids.str[0] == "C").sum() == 60
    assert ids.is_unique and ids.is_monotonic_increasing
    assert (c.subjects["group"] == ids.str[0].map({"P": "als", "C": "control"})).all()
    for table, date in (("visits", "visit_date"), ("imaging", "acquisition_date")):
        df = getattr(c, table)
        key = list(zip(df["subject_id"], df[date], strict=True))
        assert key == sorted(key) and len(set(key)) == len(key)
    assert list(c.truth["subject_id"]) == list(ids)


def test_repr_counts(small_cohort):
    assert repr(small_cohort).startswith("Cohort(200 patients, 60 controls, ")
    assert isinstance(small_cohort, Cohort)


def test_ids_widen_for_large_cohorts():
    c = simulate_cohort(10_000, 1, months=0, seed=1)
    assert c.subjects["subject_id"].iloc[-1] == "P10000"
    assert c.subjects["subject_id"].iloc[0] == "C00001"


# --------------------------------------------------------------------------- seeds


def test_same_seed_same_cohort():
    a = simulate_cohort(30, 10, seed=7)
    b = simulate_cohort(30, 10, seed=7)
    for name in TABLES:
        assert_frame_equal(getattr(a, name), getattr(b, name))


def test_generator_seed_is_used_as_is():
    a = simulate_cohort(10, 3, seed=np.random.default_rng(5))
    b = simulate_cohort(10, 3, seed=np.random.default_rng(5))
    assert_frame_equal(a.visits, b.visits)


@pytest.mark.parametrize("table", ["visits", "imaging", "truth"])
def test_different_seed_different_cohort(table):
    a = simulate_cohort(30, 10, seed=7)
    b = simulate_cohort(30, 10, seed=8)
    with pytest.raises(AssertionError):
        assert_frame_equal(getattr(a, table), getattr(b, table))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"n_patients": -1},
            ValueError,
            r"`n_patients` must be an integer >= 0; got -1",
        ),
        ({"n_patients": 2.5}, TypeError, r"`n_patients` must be an integer"),
        ({"n_patients": True}, TypeError, r"`n_patients`"),
        ({"n_patients": 0, "n_controls": 0}, ValueError, r"at least 1"),
        ({"n_controls": -2}, ValueError, r"`n_controls`"),
        ({"months": -1}, ValueError, r"`months`"),
        ({"months": 241}, ValueError, r"`months` must be an integer in \[0, 240\]"),
        ({"visit_interval_months": 0}, ValueError, r"`visit_interval_months`"),
        ({"n_sites": 0}, ValueError, r"`n_sites`"),
        ({"n_sites": "3"}, TypeError, r"`n_sites`"),
        ({"imaging_interval_months": 0}, ValueError, r"`imaging_interval_months`"),
        (
            {"imaging_interval_months": 4},
            ValueError,
            r"multiple of `visit_interval_months`",
        ),
        ({"seed": -1}, ValueError, r"`seed`"),
        ({"seed": "abc"}, TypeError, r"`seed`"),
    ],
)
def test_argument_errors(kwargs, error, match):
    args = {"n_patients": 5, **kwargs}
    with pytest.raises(error, match=match):
        simulate_cohort(**args)


def test_arguments_after_data_are_keyword_only():
    with pytest.raises(TypeError):
        simulate_cohort(5, 0, 12)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("n_patients", "n_controls", "months"), [(0, 4, 18), (4, 0, 0), (3, 1, 2)]
)
def test_edge_sizes(n_patients, n_controls, months):
    c = simulate_cohort(n_patients, n_controls, months=months, seed=3)
    assert len(c.subjects) == n_patients + n_controls
    # every subject has a baseline visit and a baseline scan
    assert set(c.visits["subject_id"]) == set(c.subjects["subject_id"])
    assert (c.imaging.groupby("subject_id")["session"].first() == "m00").all()


# --------------------------------------------------------------------------- ALSFRS-R


def _als_visits(c: Cohort) -> pd.DataFrame:
    return c.visits[c.visits["subject_id"].str.startswith("P")]


def test_items_are_integers_0_to_4(small_cohort):
    items = _als_visits(small_cohort)[ITEMS].to_numpy()
    assert not np.isnan(items).any()
    assert np.array_equal(items, np.round(items))
    assert items.min() >= 0 and items.max() <= 4


def test_items_sum_exactly_to_total_and_domains(small_cohort):
    v = _als_visits(small_cohort)
    assert (v[ITEMS].sum(axis=1) == v["alsfrs_r_total"]).all()
    for domain, items in DOMAINS.items():
        assert (v[items].sum(axis=1) == v[domain]).all()
        assert v[domain].between(0, 12).all()
    assert v["alsfrs_r_total"].between(0, 48).all()


def test_low_totals_still_split_exactly():
    # fast, late patients reach the floor: totals near 0 must still split exactly
    c = simulate_cohort(300, seed=5, slope_mean=-1.5, residual_sd=4.0)
    v = _als_visits(c)
    assert v["alsfrs_r_total"].min() <= 10
    assert (v[ITEMS].sum(axis=1) == v["alsfrs_r_total"]).all()


def test_onset_region_loses_first(small_cohort):
    # Thakore 2018 (docs/domain.md §2): decline in onset-site order, respiratory slowest
    c = small_cohort
    base = _als_visits(c).groupby("subject_id").first()
    site = c.subjects.set_index("subject_id").loc[base.index, "onset_site"]
    loss = 12 - base[list(DOMAINS)]
    bulbar, spinal = loss[site == "bulbar"], loss[site == "spinal"]
    assert bulbar["alsfrs_r_bulbar"].mean() > bulbar["alsfrs_r_gross_motor"].mean()
    limbs = spinal[["alsfrs_r_fine_motor", "alsfrs_r_gross_motor"]].max(axis=1)
    assert limbs.mean() > spinal["alsfrs_r_bulbar"].mean()
    assert (
        loss["alsfrs_r_respiratory"].mean()
        < loss.drop(columns="alsfrs_r_respiratory").mean().min()
    )


def test_gastrostomy_follows_swallowing_and_persists(small_cohort):
    v = _als_visits(small_cohort)
    flag = v["alsfrs_r_q5_gastrostomy"].astype(bool)
    assert not v["alsfrs_r_q5_gastrostomy"].isna().any()
    # once true, stays true
    assert (flag.groupby(v["subject_id"]).cummax() == flag).all()
    # only after swallowing (q3) has been <= 1 at this or an earlier visit
    ever_low = (v["alsfrs_r_q3"] <= 1).groupby(v["subject_id"]).cummax()
    assert not (flag & ~ever_low).any()


def test_controls_have_no_alsfrs_r_or_als_fields(small_cohort):
    c = small_cohort
    cv = c.visits[c.visits["subject_id"].str.startswith("C")]
    assert cv[[*ITEMS, "alsfrs_r_total", *DOMAINS]].isna().all().all()
    assert cv["alsfrs_r_q5_gastrostomy"].isna().all()
    cs = c.subjects[c.subjects["group"] == "control"]
    for col in (
        "age_at_onset",
        "onset_site",
        "onset_date",
        "diagnostic_delay_months",
        "death_or_tracheostomy_months",
        "event_observed",
    ):
        assert cs[col].isna().all(), col
    assert cs["age_at_baseline"].notna().all() and cs["sex"].notna().all()
    ps = c.subjects[c.subjects["group"] == "als"]
    assert ps.notna().all().all()


# --------------------------------------------------------------------------- schedule


def test_visit_schedule_and_dates(small_cohort):
    c = small_cohort
    v = c.visits
    first = v.groupby("subject_id")["visit_date"].min()
    assert first.between(pd.Timestamp("2016-01-01"), pd.Timestamp("2021-12-31")).all()
    months = _months(v, "visit_date", first)
    is_pat = v["subject_id"].str.startswith("P")
    # patients every 3 months, controls every 6 (imaging schedule); jitter of a few days
    for mask, step in ((is_pat, 3), (~is_pat, 6)):
        nominal = (months[mask] / step).round() * step
        assert (
            (months[mask] - nominal).abs() * DAYS_PER_MONTH
            <= 0.3 * step * DAYS_PER_MONTH
        ).all()
        assert nominal.max() <= 18
    # some visits are missed, never the first
    n_pat_visits = is_pat.sum()
    assert n_pat_visits < 200 * 7


def test_onset_and_age_are_consistent(small_cohort):
    c = small_cohort
    s = c.subjects.set_index("subject_id")
    t = c.truth.set_index("subject_id")
    pats = s.index[s["group"] == "als"]
    first = c.visits.groupby("subject_id")["visit_date"].min()
    onset_months = (first[pats] - s.loc[pats, "onset_date"]).dt.days / DAYS_PER_MONTH
    t0 = t.loc[pats, "months_onset_to_baseline"]
    np.testing.assert_allclose(onset_months, t0, atol=1 / DAYS_PER_MONTH)
    np.testing.assert_allclose(
        s.loc[pats, "age_at_baseline"],
        s.loc[pats, "age_at_onset"] + t0 / 12,
        rtol=1e-12,
    )
    assert (s.loc[pats, "diagnostic_delay_months"] <= t0 + 1e-12).all()
    assert (t0 >= 3).all()  # docs/domain.md §7: truncated at >= 3 months


def test_truth_is_on_the_d50_sigmoid(small_cohort):
    t = small_cohort.truth.dropna(subset=["d50"])

    # Steinbach 2020 (docs/domain.md §3): ALSFRS-R(t) = 48 / (1 + exp((t - D50) / dx))
    def f(m):
        return 48 / (1 + np.exp((m - t["d50"]) / t["dx"]))

    t0 = t["months_onset_to_baseline"]
    np.testing.assert_allclose(f(t0), t["baseline_total"], rtol=1e-10)
    np.testing.assert_allclose((f(t0 + 12) - f(t0)) / 12, t["slope_12m"], rtol=1e-8)
    np.testing.assert_allclose(
        t["delta_fs"], (48 - t["baseline_total"]) / t0, rtol=1e-10
    )
    assert (t["slope_12m"] < 0).all()


# --------------------------------------------------------------------------- follow-up


def _follow_up(c: Cohort) -> pd.DataFrame:
    first = c.visits.groupby("subject_id")["visit_date"].min()
    v = c.visits.assign(months=_months(c.visits, "visit_date", first))
    last = v.groupby("subject_id")["months"].max().rename("last_visit")
    t = c.truth.set_index("subject_id")
    s = c.subjects.set_index("subject_id")
    out = t.join(last).join(s[["death_or_tracheostomy_months", "event_observed"]])
    out["death_months"] = (
        out["event_months_since_onset"] - out["months_onset_to_baseline"]
    )
    return out[out["group"] == "als"]


def test_no_visits_after_death_or_dropout(small_cohort):
    f = _follow_up(small_cohort)
    assert (f["last_visit"] < f["death_months"]).all()
    assert (f["last_visit"] < f["dropout_months"]).all()
    assert (f["dropout_months"] < 18).any() and (f["death_months"] < 18).any()


def test_censoring_logic(small_cohort):
    f = _follow_up(small_cohort)
    obs = f["event_observed"].astype(bool)
    assert 0 < obs.mean() < 1
    # observed: the event time itself, before dropout and study end
    e = f[obs]
    np.testing.assert_allclose(
        e["death_or_tracheostomy_months"], e["death_months"], rtol=1e-12
    )
    assert (e["death_months"] <= e["dropout_months"]).all()
    assert (e["death_months"] <= e["study_end_months"]).all()
    assert (e["death_or_tracheostomy_months"] >= e["last_visit"]).all()
    # censored: last contact = last attended visit; the event falls after follow-up ended
    cens = f[~obs]
    np.testing.assert_allclose(
        cens["death_or_tracheostomy_months"], cens["last_visit"], atol=1e-12
    )
    ended = np.minimum(cens["dropout_months"], cens["study_end_months"])
    assert (cens["death_months"] > ended).all()


def test_no_dropout_no_missed_visits_completes_schedule():
    c = simulate_cohort(
        50, seed=9, dropout_per_year=0.0, missed_visit_prob=0.0, event_median_months=1e4
    )
    n = c.visits.groupby("subject_id").size()
    assert (n == 7).all()  # months 0, 3, ..., 18
    assert not c.subjects["event_observed"].astype(bool).any()


# --------------------------------------------------------------------------- imaging


def test_imaging_sessions_on_schedule(small_cohort):
    c = small_cohort
    im = c.imaging
    assert im["session"].str.fullmatch(r"m\d{2,}").all()
    months = im["session"].str[1:].astype(int)
    assert (months % 6 == 0).all() and months.max() <= 18
    # every session sits within a week of an attended visit at that nominal month
    visits = c.visits.assign(
        months=_months(
            c.visits, "visit_date", c.visits.groupby("subject_id")["visit_date"].min()
        )
    )
    visits["nominal"] = ((visits["months"] / 3).round() * 3).astype(int)
    merged = im.assign(nominal=months).merge(
        visits[["subject_id", "nominal", "visit_date"]],
        on=["subject_id", "nominal"],
        how="left",
    )
    assert merged["visit_date"].notna().all()
    gap = (merged["acquisition_date"] - merged["visit_date"]).dt.days.abs()
    assert (gap <= 3 * c.params.imaging_jitter_sd_days).all()  # clipped at 3 SD
    assert not im.duplicated(["subject_id", "session"]).any()
    assert im[FEATURES].notna().all().all()


def test_sites_and_site_effects(small_cohort):
    c = small_cohort
    assert set(c.subjects["site"]) == {"S1", "S2", "S3", "S4"}
    assert len(c.site_effects) == 4 * len(FEATURES)
    assert set(c.site_effects["feature"]) == set(FEATURES)
