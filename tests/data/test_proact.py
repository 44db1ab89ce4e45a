"""PRO-ACT exports (issue 21): the simulator's export read back exactly, each quirk
of real exports, and bad exports refused naming file, line, column and value."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alsprog.data import assemble, read_proact
from alsprog.errors import DataValidationError, OutputError
from alsprog.simulate import simulate_cohort, write_proact
from alsprog.simulate._proact import QUIRKS

DPM = 30.4375
TODAY = "2026-01-01"


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(n_patients=40, n_controls=3, seed=11)


@pytest.fixture(scope="module")
def truth(cohort):
    """The simulated patients assembled directly (dates), the reference."""
    pts = cohort.subjects[cohort.subjects["group"] == "als"]
    vis = cohort.visits[cohort.visits["subject_id"].isin(pts["subject_id"])]
    items = [f"alsfrs_r_q{k}" for k in range(1, 13)]
    vis = vis[vis[items].notna().any(axis=1)]
    return assemble(vis, pts, today=TODAY)


def _read_long(folder, **kw):
    c = read_proact(folder, **kw)
    return c, assemble(c.visits, c.subjects, today=TODAY)


def _by_sim_id(long, export):
    back = {str(v): k for k, v in export.subject_ids.items()}
    out = long.copy()
    out["subject_id"] = out["subject_id"].map(back)
    return out.sort_values(["subject_id", "months"]).reset_index(drop=True)


def _check_round_trip(truth, long, export, *, age_tol=1e-9):
    got = _by_sim_id(long, export)
    ref = truth.sort_values(["subject_id", "months"]).reset_index(drop=True)
    assert got["subject_id"].tolist() == ref["subject_id"].tolist()
    np.testing.assert_allclose(got["months"], ref["months"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        got["months_since_onset"], ref["months_since_onset"], rtol=0, atol=1e-9
    )
    np.testing.assert_array_equal(got["alsfrs_r_total"], ref["alsfrs_r_total"])
    for k in range(1, 13):
        np.testing.assert_array_equal(got[f"alsfrs_r_q{k}"], ref[f"alsfrs_r_q{k}"])
    assert (
        got["alsfrs_r_q5_gastrostomy"].tolist()
        == ref["alsfrs_r_q5_gastrostomy"].tolist()
    )
    assert got["onset_site"].tolist() == ref["onset_site"].tolist()
    assert got["sex"].tolist() == ref["sex"].tolist()
    np.testing.assert_allclose(
        got["age_at_baseline"], ref["age_at_baseline"], rtol=0, atol=age_tol
    )
    # days are whole in PRO-ACT: the delay and event times are rounded to a day
    np.testing.assert_allclose(
        got["diagnostic_delay_months"],
        ref["diagnostic_delay_months"],
        rtol=0,
        atol=0.5 / DPM + 1e-12,
    )
    subj_got = got.groupby("subject_id").first()
    subj_ref = ref.groupby("subject_id").first()
    event = subj_ref["event_observed"].astype(bool)
    assert subj_got["event_observed"].astype(bool).tolist() == event.tolist()
    np.testing.assert_allclose(
        subj_got.loc[event, "death_or_tracheostomy_months"],
        subj_ref.loc[event, "death_or_tracheostomy_months"],
        rtol=0,
        atol=0.5 / DPM + 1e-12,
    )
    # alive patients are censored at their last visit (PRO-ACT has no censoring date)
    last = ref.groupby("subject_id")["months"].max()
    np.testing.assert_allclose(
        subj_got.loc[~event, "death_or_tracheostomy_months"],
        last[~event.to_numpy()],
        rtol=0,
        atol=1e-9,
    )
    arm = export.arm.str.lower()
    assert subj_got["arm"].tolist() == arm.reindex(subj_got.index).tolist()
    assert set(got["alsfrs_version"]) == {"alsfrs-r"}


def test_round_trip_reproduces_every_patient(cohort, truth, tmp_path):
    export = write_proact(cohort, tmp_path)
    c, long = _read_long(tmp_path)
    assert len(c.subjects) == 40 == len(export.subject_ids)
    _check_round_trip(truth, long, export)
    # FVC: the best of three attempts per visit, litres and % of predicted
    fvc = c.fvc.copy()
    fvc["subject_id"] = fvc["subject_id"].map(
        {str(v): k for k, v in export.subject_ids.items()}
    )
    ref = export.fvc.sort_values(["subject_id", "delta"]).reset_index(drop=True)
    fvc = fvc.sort_values(["subject_id", "visit_day"]).reset_index(drop=True)
    np.testing.assert_array_equal(fvc["visit_day"], ref["delta"])
    np.testing.assert_allclose(fvc["fvc_liters"], ref["fvc_liters"], atol=1e-12)
    np.testing.assert_allclose(
        fvc["fvc_percent_predicted"], ref["fvc_percent_predicted"], atol=1e-12
    )
    assert c.report.n_fvc == len(ref) == c.report.n_visits
    assert c.report.n_alsfrs_r == len(truth)
    assert c.report.count("censored") == int(
        (~truth.groupby("subject_id")["event_observed"].first().astype(bool)).sum()
    )
    text = str(c.report)
    assert "PROACT_ALSFRS.csv" in text and "40 subjects" in text


@pytest.mark.parametrize(
    "quirks",
    [
        ("old_names",),
        ("f_prefix",),
        ("old_names", "f_prefix"),
        ("float_deltas",),
        ("onset_flags",),
        ("onset_spine",),
        ("history_rows",),
        ("history_rows", "onset_flags"),
        ("duplicates",),
        ("both_scales",),
    ],
)
def test_quirks_that_lose_nothing_round_trip(cohort, truth, tmp_path, quirks):
    export = write_proact(cohort, tmp_path, quirks=quirks)
    c, long = _read_long(tmp_path)
    _check_round_trip(truth, long, export)
    if "duplicates" in quirks:
        n_dup = len(range(0, len(truth), 3))
        assert c.report.count("duplicate") == n_dup
    if "both_scales" in quirks:
        assert c.report.count("both_scales") == len(truth)
    if "old_names" in quirks:
        assert Path(c.report.files["alshistory"]).name.endswith("AlsHistory.csv")


def test_date_of_birth_gives_age_to_a_day(cohort, truth, tmp_path):
    export = write_proact(cohort, tmp_path, quirks=["date_of_birth"])
    _, long = _read_long(tmp_path)
    _check_round_trip(truth, long, export, age_tol=0.5 / 365.25 + 1e-12)


def test_original_alsfrs_rows_never_get_an_alsfrs_r_total(cohort, truth, tmp_path):
    export = write_proact(cohort, tmp_path, quirks=["original_alsfrs"])
    c, long = _read_long(tmp_path)
    got = _by_sim_id(long, export)
    ref = truth.sort_values(["subject_id", "months"]).reset_index(drop=True)
    first = (ref["months"] == 0).to_numpy()
    assert (got.loc[first, "alsfrs_version"] == "alsfrs").all()
    assert got.loc[first, "alsfrs_r_total"].isna().all()
    assert (
        got.loc[first, ["alsfrs_r_q10", "alsfrs_r_q11", "alsfrs_r_q12"]]
        .isna()
        .all()
        .all()
    )
    assert got.loc[first, "alsfrs_r_respiratory"].isna().all()
    # items 1-9 are the same questions on both scales; the 0-40 total is q1-9 + Q10
    for k in range(1, 10):
        np.testing.assert_array_equal(
            got.loc[first, f"alsfrs_r_q{k}"], ref.loc[first, f"alsfrs_r_q{k}"]
        )
    q = ref.loc[first, [f"alsfrs_r_q{k}" for k in range(1, 11)]].sum(axis=1)
    np.testing.assert_array_equal(got.loc[first, "alsfrs_original_total"], q)
    later = ~first
    np.testing.assert_array_equal(
        got.loc[later, "alsfrs_r_total"], ref.loc[later, "alsfrs_r_total"]
    )
    assert (got.loc[later, "alsfrs_version"] == "alsfrs-r").all()
    assert got.loc[later, "alsfrs_original_total"].isna().all()
    assert c.report.count("original_alsfrs") == int(first.sum()) == 40
    assert c.report.n_alsfrs_original == 40


def test_half_point_items_are_never_rounded(cohort, truth, tmp_path):
    export = write_proact(cohort, tmp_path, quirks=["half_points"])
    c, long = _read_long(tmp_path)
    raw = pd.read_csv(export.files["alsfrs"])
    items = [
        c for c in raw.columns if c.startswith(("Q", "R_")) and c != "Q10_Respiratory"
    ]
    half = ((raw[items] % 1).fillna(0) != 0).any(axis=1)
    assert half.sum() == len(range(0, len(truth), 5))
    assert c.report.count("half_points") == half.sum()
    got = long.set_index(["subject_id", "visit_day"]).sort_index()
    keys = list(zip(raw["subject_id"].astype(str), raw["ALSFRS_Delta"], strict=True))
    for key, is_half in zip(keys, half, strict=True):
        row = got.loc[key]
        if is_half:
            assert np.isnan(row["alsfrs_r_total"])
            assert row[[f"alsfrs_r_q{k}" for k in range(1, 13)]].isna().all()
        else:
            assert (
                row["alsfrs_r_total"]
                == raw.set_index(["subject_id", "ALSFRS_Delta"]).loc[
                    (int(key[0]), key[1]), "ALSFRS_R_Total"
                ]
            )


def test_fvc_percent_units_are_read_as_percent(cohort, tmp_path):
    export = write_proact(cohort, tmp_path, quirks=["fvc_percent_units"])
    c = read_proact(tmp_path)
    ref = export.fvc.sort_values(["subject_id", "delta"]).reset_index(drop=True)
    back = {str(v): k for k, v in export.subject_ids.items()}
    fvc = c.fvc.assign(subject_id=c.fvc["subject_id"].map(back))
    fvc = fvc.sort_values(["subject_id", "visit_day"]).reset_index(drop=True)
    np.testing.assert_allclose(
        fvc["fvc_percent_predicted"], ref["fvc_percent_predicted"], atol=1e-12
    )
    np.testing.assert_array_equal(fvc["fvc_liters"].isna(), ref["fvc_liters"].isna())
    assert c.report.count("percent_units") == len(range(0, len(ref), 4))


def test_the_export_is_never_modified(cohort, tmp_path):
    write_proact(cohort, tmp_path, quirks=["duplicates", "half_points"])
    before = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()
    }
    read_proact(tmp_path)
    after = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()
    }
    assert before == after


def test_writer_refuses_existing_files_and_unknown_quirks(cohort, tmp_path):
    (tmp_path / "PROACT_FVC.csv").write_text("mine\n")
    with pytest.raises(OutputError, match=r"already holds PROACT_FVC\.csv"):
        write_proact(cohort, tmp_path)
    assert (tmp_path / "PROACT_FVC.csv").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["PROACT_FVC.csv"]
    with pytest.raises(ValueError, match="unknown PRO-ACT quirk 'typo'"):
        write_proact(cohort, tmp_path / "x", quirks=["typo"])
    assert set(QUIRKS) >= {"old_names", "half_points", "original_alsfrs"}


def test_to_proact_is_write_proact(cohort, tmp_path):
    a = cohort.to_proact(tmp_path / "a", seed=5)
    b = write_proact(cohort, tmp_path / "b", seed=5)
    for key in a.files:
        assert a.files[key].read_bytes() == b.files[key].read_bytes()


# ---------------------------------------------------------------- hand-made exports

ALSFRS_HEAD = (
    "subject_id,Q1_Speech,Q2_Salivation,Q3_Swallowing,Q4_Handwriting,"
    "Q5a_Cutting_without_Gastrostomy,Q5b_Cutting_with_Gastrostomy,"
    "Q6_Dressing_and_Hygiene,Q7_Turning_in_Bed,Q8_Walking,Q9_Climbing_Stairs,"
    "Q10_Respiratory,R_1_Dyspnea,R_2_Orthopnea,R_3_Respiratory_Insufficiency,"
    "ALSFRS_Total,ALSFRS_R_Total,ALSFRS_Delta\n"
)


def _row(sid, items, day, *, q5b=False, q10="", total_o="", total_r=None):
    q = [str(v) for v in items]
    q5 = [q[4], ""] if not q5b else ["", q[4]]
    if total_r is None:
        total_r = str(sum(items))
    return (
        ",".join(
            [str(sid), *q[:4], *q5, *q[5:9], q10, *q[9:], total_o, total_r, str(day)]
        )
        + "\n"
    )


FULL = [4, 4, 3, 3, 3, 3, 3, 2, 2, 4, 4, 4]  # 39


def _export(folder: Path, alsfrs_rows: list[str], **extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "PROACT_ALSFRS.csv").write_text(ALSFRS_HEAD + "".join(alsfrs_rows))
    demo = extra.pop("demographics", "subject_id,Age,Sex\n1,60,Male\n2,55.5,Female\n")
    (folder / "PROACT_DEMOGRAPHICS.csv").write_text(demo)
    for name, text in extra.items():
        (folder / f"PROACT_{name.upper()}.csv").write_text(text)
    return folder


def _problems(err):
    return [(Path(p.source).name, p.line, p.column, p.value) for p in err.problem_list]


def test_every_problem_of_every_file_at_once(tmp_path):
    rows = [
        _row(1, FULL, 0),
        _row(1, [4, 4, 3, 3, 3, 3, 3, 2, 2, 4, 4, 7], 90, total_r=""),  # item 7
        _row(1, FULL, "ninety"),  # non-numeric delta
        _row(3, FULL, 0),  # not in demographics (reported once the cells are fine)
    ]
    hist = "subject_id,Onset_Delta,Diagnosis_Delta,Site_of_Onset\n1,-400,-100,Onset: Elbow\n"
    _export(tmp_path, rows, alshistory=hist)
    with pytest.raises(DataValidationError) as info:
        read_proact(tmp_path)
    got = _problems(info.value)
    assert ("PROACT_ALSFRS.csv", 3, "R_3_Respiratory_Insufficiency", "7") in got
    assert ("PROACT_ALSFRS.csv", 4, "ALSFRS_Delta", "ninety") in got
    assert ("PROACT_ALSHISTORY.csv", 2, "Site_of_Onset", "Onset: Elbow") in got
    msg = str(info.value)
    assert "is not an ALSFRS item score (0-4)" in msg
    assert "is not a number" in msg and "is not an onset site" in msg
    assert "subject 1" in msg


def test_subject_with_visits_but_no_demographics(tmp_path):
    _export(
        tmp_path,
        [_row(1, FULL, 0), _row(2, FULL, 0), _row(3, FULL, 0), _row(3, FULL, 30)],
    )
    with pytest.raises(DataValidationError) as info:
        read_proact(tmp_path)
    (p,) = info.value.problem_list
    assert (Path(p.source).name, p.line, p.subject_id, p.column) == (
        "PROACT_ALSFRS.csv",
        4,
        "3",
        "subject_id",
    )
    assert "subject 3 has visits but no row in PROACT_DEMOGRAPHICS.csv" in str(p)


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        read_proact(tmp_path / "nowhere")
    (tmp_path / "PROACT_DEMOGRAPHICS.csv").write_text("subject_id,Age\n1,50\n")
    with pytest.raises(
        DataValidationError, match=r"no ALSFRS file: looked for PROACT_ALSFRS\.csv"
    ):
        read_proact(tmp_path)
    (tmp_path / "PROACT_ALSFRS.csv").write_text(ALSFRS_HEAD + _row(1, FULL, 0))
    (tmp_path / "alsfrs.csv").write_text(ALSFRS_HEAD + _row(1, FULL, 0))
    with pytest.raises(
        DataValidationError,
        match=r"2 files name the 'alsfrs' table: PROACT_ALSFRS\.csv, alsfrs\.csv",
    ):
        read_proact(tmp_path)


def test_file_names_and_columns_any_case(tmp_path):
    (tmp_path / "f_proact_alsfrs.CSV").write_text(
        ALSFRS_HEAD.upper() + _row(1, FULL, 0) + _row(1, FULL, 8.0)
    )
    (tmp_path / "Demographics.csv").write_text("SUBJECT_ID,age,sex\n1.0,60,male\n")
    (tmp_path / "PROACT_LABS.csv").write_text("subject_id,x\n1,2\n")
    c = read_proact(tmp_path)
    assert c.visits["visit_day"].tolist() == [0, 8]
    assert c.visits["alsfrs_r_total"].tolist() == [39.0, 39.0]
    assert c.subjects["subject_id"].tolist() == ["1"]
    assert c.report.unread == ["PROACT_LABS.csv"]


def test_declared_total_must_be_the_sum_and_q5_is_a_or_b(tmp_path):
    bad_total = _row(1, FULL, 0, total_r="40")
    both = _row(1, FULL, 30).split(",")
    both[6] = "2"  # Q5b filled beside Q5a
    partial = FULL[:11]
    gap = _row(1, [*partial, 0], 60, total_r="30").split(",")
    gap[14] = ""  # R_3 missing: 35 given + 0-4 missing cannot be 30
    _export(tmp_path, [bad_total, ",".join(both), ",".join(gap)])
    with pytest.raises(DataValidationError) as info:
        read_proact(tmp_path)
    msgs = {(p.line, p.column): p.message for p in info.value.problem_list}
    assert msgs[(2, "ALSFRS_R_Total")] == "is not the sum of the 12 ALSFRS-R items (39)"
    assert (
        "both Q5a_Cutting_without_Gastrostomy (3) and"
        in msgs[(3, "Q5b_Cutting_with_Gastrostomy")]
    )
    assert msgs[(4, "ALSFRS_R_Total")].startswith(
        "cannot be the ALSFRS-R total of these items: the 11 given sum to 35"
    )


def test_gastrostomy_and_partial_items(tmp_path):
    partial = _row(2, FULL, 0, total_r="38", q5b=True).split(",")
    partial[14] = ""  # R_3 missing; declared total within 35-39
    _export(tmp_path, [_row(1, FULL, 0, q5b=True), ",".join(partial)])
    c = read_proact(tmp_path)
    v = c.visits.set_index("subject_id")
    assert v["alsfrs_r_q5_gastrostomy"].tolist() == [True, True]
    assert v.loc["2", "alsfrs_r_total"] == 38 and np.isnan(v.loc["2", "alsfrs_r_q12"])
    assert v.loc["1", "alsfrs_r_total"] == 39


def test_conflicting_duplicates_raise_or_drop(tmp_path):
    other = list(FULL)
    other[0] = 3
    rows = [_row(1, FULL, 0), _row(1, FULL, 0), _row(1, other, 0), _row(1, FULL, 30)]
    _export(tmp_path, rows)
    with pytest.raises(DataValidationError) as info:
        read_proact(tmp_path)
    (p,) = info.value.problem_list
    assert p.line == 2 and p.column == "ALSFRS_Delta"
    assert "2 rows of subject 1 at ALSFRS_Delta 0 (lines 2, 4) differ" in p.message
    c = read_proact(tmp_path, conflicts="drop")
    assert c.visits["visit_day"].tolist() == [30]
    assert c.report.count("duplicate") == 1 and c.report.count("conflict") == 2
    with pytest.raises(ValueError, match="`conflicts` must be"):
        read_proact(tmp_path, conflicts="first")


def test_fvc_best_attempt_units_and_predicted(tmp_path):
    fvc = (
        "subject_id,Subject_Liters_Trial_1,pct_of_Normal_Trial_1,Subject_Liters__Trial_2_,"
        "pct_of_Normal_Trial_2,Subject_Liters_Trial_3,pct_of_Normal_Trial_3,subject_normal,"
        "Forced_Vital_Capacity_Units,Forced_Vital_Capacity_Delta\n"
        "1,3.1,80,3.3,85,,,,Liters,0\n"
        "1,2.9,,3.0,,,,4.0,Liters,30\n"  # % computed from subject_normal: 75
        "1,70,,72,,,,,Percent Predicted,60\n"
        "1,3.5,90,,,,,,Liters,0\n"  # a second row on day 0: the best kept
        "2,2.0,,,,,,,Liters,5\n"  # an FVC-only visit
        "2,,,,,,,,Liters,10\n"  # nothing: dropped
    )
    _export(tmp_path, [_row(1, FULL, 0), _row(2, FULL, 0)], fvc=fvc)
    c = read_proact(tmp_path)
    f = c.fvc
    assert f["subject_id"].tolist() == ["1", "1", "1", "2"]
    assert f["visit_day"].tolist() == [0, 30, 60, 5]
    np.testing.assert_allclose(f["fvc_liters"], [3.5, 3.0, np.nan, 2.0])
    np.testing.assert_allclose(f["fvc_percent_predicted"], [90, 75, 72, np.nan])
    assert c.visits["visit_day"].tolist() == [0, 30, 60, 0, 5]
    assert c.report.count("percent_units") == 1
    assert c.report.count("percent_computed") == 1
    assert c.report.count("best_of_visit") == 1
    assert c.report.count("empty") == 1
    long = assemble(c.visits, c.subjects, today=TODAY)
    assert long["fvc_percent_predicted"].notna().sum() == 3


def test_fvc_out_of_range_names_the_attempt(tmp_path):
    fvc = (
        "subject_id,Subject_Liters_Trial_1,pct_of_Normal_Trial_1,Forced_Vital_Capacity_Delta\n"
        "1,31,80,0\n1,3.0,260,30\n"
    )
    _export(tmp_path, [_row(1, FULL, 0)], fvc=fvc)
    with pytest.raises(DataValidationError) as info:
        read_proact(tmp_path)
    got = [(p.line, p.column, p.value, p.message) for p in info.value.problem_list]
    assert got == [
        (2, "Subject_Liters_Trial_1", "31", "is outside 0-10 (litres)"),
        (3, "pct_of_Normal_Trial_1", "260", "is outside 0-250 (% of predicted)"),
    ]


def test_history_death_treatment_riluzole(tmp_path):
    hist = (
        "subject_id,Onset_Delta,Diagnosis_Delta,Site_of_Onset,Site_of_Onset___Bulbar,Site_of_Onset___Limb\n"
        "1,-365,,,,\n"
        "1,,-200,Onset: Limb and Bulbar,,\n"
        "2,-300.0,-120,,1,1\n"
    )
    death = "subject_id,Subject_Died,Death_Days\n1,Yes,\n2,yes,200\n"
    treat = "subject_id,Study_Arm\n1,Active\n2,Placebo\n"
    ril = "subject_id,Subject_used_Riluzole\n1,Yes\n2,No\n"
    _export(
        tmp_path,
        [_row(1, FULL, 0), _row(1, FULL, 100), _row(2, FULL, 10)],
        alshistory=hist,
        deathdata=death,
        treatment=treat,
        riluzole=ril,
    )
    c = read_proact(tmp_path)
    s = c.subjects.set_index("subject_id")
    assert s["onset_site"].tolist() == ["other", "other"]  # both flags: other
    np.testing.assert_allclose(
        s["onset_months_before_baseline"], [365 / DPM, 310 / DPM]
    )
    np.testing.assert_allclose(s["diagnostic_delay_months"], [165 / DPM, 180 / DPM])
    # subject 1 died without a day: nothing invented; subject 2 from its first visit
    assert np.isnan(s.loc["1", "death_or_tracheostomy_months"])
    assert s["event_observed"].isna().tolist() == [True, False]
    assert s.loc["2", "death_or_tracheostomy_months"] == pytest.approx(190 / DPM)
    assert s["arm"].tolist() == ["active", "placebo"]
    assert s["riluzole"].tolist() == [True, False]
    np.testing.assert_allclose(s["age_at_baseline"], [60.0, 55.5 + 10 / 365.25])
    assert c.report.count("death_without_day") == 1
    c2 = read_proact(tmp_path, arm={"active": "drug", "PLACEBO": "placebo"})
    assert c2.subjects["arm"].tolist() == ["drug", "placebo"]
    only = read_proact(tmp_path, tables=["treatment"])
    assert only.subjects["onset_site"].isna().all()
    assert only.report.files["alshistory"] is None
    with pytest.raises(ValueError, match="`tables` names 'labs'"):
        read_proact(tmp_path, tables=["labs"])


def test_timeline_and_conflict_problems(tmp_path):
    hist = (
        "subject_id,Onset_Delta,Diagnosis_Delta,Site_of_Onset\n"
        "1,30,,Onset: Bulbar\n"  # onset after the first visit
        "2,-300,-400,Onset: Limb\n"  # diagnosis before onset
        "2,-310,,\n"  # a second, different onset
    )
    death = "subject_id,Subject_Died,Death_Days\n1,No,50\n"
    _export(
        tmp_path, [_row(1, FULL, 0), _row(2, FULL, 0)], alshistory=hist, deathdata=death
    )
    with pytest.raises(DataValidationError) as info:
        read_proact(tmp_path)
    got = {
        (Path(p.source).name, p.line, p.column): p.message
        for p in info.value.problem_list
    }
    assert got[("PROACT_ALSHISTORY.csv", 4, "Onset_Delta")] == (
        "differs from -300 on line 3 (one value per subject)"
    )
    assert (
        got[("PROACT_DEATHDATA.csv", 2, "Death_Days")]
        == "is given but Subject_Died is No"
    )
    hist_ok = hist.replace("2,-310,,\n", "")
    (tmp_path / "PROACT_ALSHISTORY.csv").write_text(hist_ok)
    (tmp_path / "PROACT_DEATHDATA.csv").write_text(
        "subject_id,Subject_Died,Death_Days\n2,Yes,-5\n"
    )
    with pytest.raises(DataValidationError) as info:
        read_proact(tmp_path)
    got = {(p.line, p.column): p.message for p in info.value.problem_list}
    assert got[(2, "Onset_Delta")] == "onset is after the subject's first visit (day 0)"
    assert (
        got[(3, "Diagnosis_Delta")]
        == "diagnosis is before symptom onset (Onset_Delta -300)"
    )
    assert got[(2, "Death_Days")] == "death is before the subject's first visit (day 0)"
