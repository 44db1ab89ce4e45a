"""Time axes, cross-table checks and assembly of the long format."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from tablefiles import SUBJECTS_HEADER, VISITS_HEADER, valid_subjects_rows, write_csv

from alsprog.data import (
    add_time_axes,
    assemble,
    data_dictionary,
    match_imaging,
    validate,
)
from alsprog.data._dictionary import load_dictionary, readme_path
from alsprog.errors import DataValidationError, DataWarning

DAYS = 30.4375  # 1 month in days, as the issue and the data dictionary define it


def test_months_from_dates(visits_csv, subjects_csv):
    long = assemble(visits_csv, subjects_csv)
    p1 = long[long["subject_id"] == "P001"]
    # 2020-01-10 -> 2020-04-09 is 90 days, -> 2020-07-08 is 180 days
    np.testing.assert_allclose(p1["months"], [0, 90 / DAYS, 180 / DAYS], rtol=1e-12)
    # onset 2019-01-15 -> first visit 2020-01-10 = 360 days
    np.testing.assert_allclose(
        p1["months_since_onset"], [360 / DAYS, 450 / DAYS, 540 / DAYS], rtol=1e-12
    )
    np.testing.assert_allclose(p1["onset_months_before_baseline"], 360 / DAYS)


def test_months_from_visit_day_and_onset_months():
    v = pd.DataFrame(
        {
            "subject_id": ["A", "A", "A"],
            "visit_day": [-14, 77, 168],
            "alsfrs_r_total": [40, 38, 35],
        }
    )
    s = pd.DataFrame(
        {
            "subject_id": ["A"],
            "group": ["als"],
            "onset_months_before_baseline": [10.0],
            "age_at_baseline": [60.0],
        }
    )
    out = add_time_axes(v, s)
    np.testing.assert_allclose(out["months"], [0, 91 / DAYS, 182 / DAYS])
    np.testing.assert_allclose(out["months_since_onset"], 10 + out["months"])
    np.testing.assert_allclose(out["age"], 60 + out["months"] / 12)


def test_delta_fs_computed_and_given(visits_csv, subjects_csv, tmp_path):
    long = assemble(visits_csv, subjects_csv)
    base = long.drop_duplicates("subject_id").set_index("subject_id")
    # P001: first total 40 (items sum), 360 days after onset
    assert base.loc["P001", "delta_fs"] == pytest.approx((48 - 40) / (360 / DAYS))
    # given values win
    s = pd.read_csv(subjects_csv)
    s["delta_fs"] = [0.5, np.nan]
    long2 = assemble(visits_csv, s)
    b2 = long2.drop_duplicates("subject_id").set_index("subject_id")
    assert b2.loc["P001", "delta_fs"] == 0.5
    assert b2.loc["P002", "delta_fs"] == pytest.approx(base.loc["P002", "delta_fs"])


def test_subject_columns_repeat_on_every_visit(visits_csv, subjects_csv):
    long = assemble(visits_csv, subjects_csv)
    assert (long.groupby("subject_id")["onset_site"].nunique() == 1).all()
    assert long.columns[:3].tolist() == ["subject_id", "group", "visit_date"]
    assert long["months"].is_monotonic_increasing is False  # two subjects
    assert (
        long.groupby("subject_id")["months"]
        .apply(lambda m: m.is_monotonic_increasing)
        .all()
    )


def test_visit_before_onset(tmp_path, visits_csv):
    rows = valid_subjects_rows()
    rows[1][SUBJECTS_HEADER.index("onset_date")] = (
        "2021-05-01"  # after P002's first visit
    )
    s = write_csv(tmp_path / "s.csv", SUBJECTS_HEADER, rows)
    with pytest.raises(
        DataValidationError,
        match=r"line 5, subject P002, column visit_date: visit on 2021-03-01 "
        r"is 2.0 months before symptom onset",
    ):
        assemble(visits_csv, s)


def test_visit_for_unknown_subject_and_subject_without_visits(tmp_path, visits_csv):
    rows = [
        valid_subjects_rows()[0],
        ["P003", "als", "male", 50, "spinal", "2020-01-01", "S1"],
    ]
    s = write_csv(tmp_path / "s.csv", SUBJECTS_HEADER, rows)
    with pytest.raises(DataValidationError) as exc:
        assemble(visits_csv, s)
    text = str(exc.value)
    assert (
        "line 5, subject P002, column subject_id: visit for subject 'P002', which is not"
        in text
    )
    assert "line 3, subject P003, column subject_id: subject has no visits" in text
    assert len(exc.value.problem_list) == 3  # two visits of P002 + P003


def test_problems_of_all_tables_reported_together(tmp_path):
    v = write_csv(
        tmp_path / "v.csv",
        VISITS_HEADER[:2] + ["alsfrs_r_total"],
        [["P001", "2020-01-10", 60]],
    )
    s = write_csv(tmp_path / "s.csv", ["subject_id", "group"], [["P001", "patient"]])
    with pytest.raises(DataValidationError) as exc:
        assemble(v, s)
    sources = {p.source for p in exc.value.problem_list}
    assert sources == {str(v), str(s)}


def _imaging(rows):
    return pd.DataFrame(
        rows, columns=["subject_id", "session", "acquisition_date", "fa_cst_left"]
    ).astype({"acquisition_date": "datetime64[ns]"})


def test_imaging_joins_nearest_visit_within_window(visits_csv, subjects_csv):
    img = _imaging(
        [
            ["P001", "m00", "2020-01-20", 0.52],  # 10 days after the first visit
            ["P001", "m03", "2020-05-20", 0.51],  # 41 days after 04-09: within 45
            ["P002", "m00", "2021-04-15", 0.50],  # 45 days after 03-01, 47 before 06-01
        ]
    )
    long = assemble(visits_csv, subjects_csv, img)
    p1 = long[long["subject_id"] == "P001"]
    assert p1["session"].tolist()[:2] == ["m00", "m03"]
    assert p1["imaging_offset_days"].tolist()[:2] == [10.0, 41.0]
    p2 = long[long["subject_id"] == "P002"]
    assert (
        p2["session"].tolist()[0] == "m00" and p2["imaging_offset_days"].iloc[0] == 45.0
    )
    assert long.attrs["n_unmatched_imaging"] == 0


def test_imaging_outside_window_is_reported_not_silently_dropped(
    visits_csv, subjects_csv
):
    img = _imaging(
        [["P001", "m00", "2020-01-12", 0.52], ["P001", "m12", "2020-11-01", 0.49]]
    )  # 116 days after the last visit
    with pytest.warns(
        DataWarning,
        match=r"1 imaging session\(s\) matched no clinic visit.*"
        r"P001 session m12: no visit within 45 days "
        r"\(nearest is 116 days away\)",
    ):
        long = assemble(visits_csv, subjects_csv, img)
    assert long.attrs["n_unmatched_imaging"] == 1
    assert "m12" not in set(long["session"].dropna())
    with pytest.raises(DataValidationError, match=r"session 'm12' matches no visit"):
        assemble(visits_csv, subjects_csv, img, unmatched="raise")
    # a wider window matches it
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        wide = assemble(visits_csv, subjects_csv, img, window_days=120)
    assert "m12" in set(wide["session"].dropna())


def test_two_sessions_near_one_visit_closest_wins(visits_csv, subjects_csv):
    img = _imaging(
        [["P001", "a", "2020-01-25", 0.52], ["P001", "b", "2020-01-12", 0.51]]
    )
    with pytest.warns(
        DataWarning,
        match=r"P001 session a: its nearest visit .* is matched "
        r"to session 'b', which is closer",
    ):
        long = assemble(visits_csv, subjects_csv, img)
    assert long.loc[0, "session"] == "b" and long.loc[0, "fa_cst_left"] == 0.51
    report = match_imaging(pd.read_csv(visits_csv, parse_dates=["visit_date"]), img)
    assert report["matched"].tolist() == [False, True]


def test_imaging_of_unknown_subject(visits_csv, subjects_csv):
    img = _imaging([["P999", "m00", "2020-01-12", 0.52]])
    with pytest.raises(
        DataValidationError,
        match=r"subject P999, column subject_id: imaging "
        r"session of subject 'P999'",
    ):
        assemble(visits_csv, subjects_csv, img)


def test_imaging_on_visit_day_axis():
    v = pd.DataFrame(
        {"subject_id": ["A", "A"], "visit_day": [0, 180], "alsfrs_r_total": [40, 35]}
    )
    s = pd.DataFrame({"subject_id": ["A"], "group": ["als"]})
    img = pd.DataFrame(
        {
            "subject_id": ["A"],
            "session": ["m06"],
            "acquisition_day": [170],
            "thickness_precentral_left": [2.41],
        }
    )
    long = assemble(v, s, img)
    assert long["imaging_offset_days"].tolist()[1] == -10.0


def test_assemble_inputs_not_modified(visits_csv, subjects_csv):
    v = pd.read_csv(visits_csv)
    s = pd.read_csv(subjects_csv)
    v0, s0 = v.copy(), s.copy()
    assemble(v, s)
    pd.testing.assert_frame_equal(v, v0)
    pd.testing.assert_frame_equal(s, s0)


def test_bad_arguments(visits_csv, subjects_csv):
    with pytest.raises(ValueError, match="`window_days` must be in"):
        assemble(visits_csv, subjects_csv, window_days=-1)
    with pytest.raises(ValueError, match="`unmatched` must be one of"):
        assemble(visits_csv, subjects_csv, unmatched="drop")
    with pytest.raises(
        TypeError, match="`visits` must be a pandas DataFrame or a path"
    ):
        assemble(42, subjects_csv)


def test_validate_long_table(visits_csv, subjects_csv):
    long = assemble(visits_csv, subjects_csv)
    pd.testing.assert_frame_equal(validate(long), long)
    bad = long.copy()
    bad.loc[1, "onset_site"] = "bulbar"  # varies within P001
    bad.loc[2, "months"] = bad.loc[1, "months"]
    with pytest.raises(DataValidationError) as exc:
        validate(bad, source="mytable")
    text = str(exc.value)
    assert "row 1, subject P001, column onset_site: subject-level value varies" in text
    assert (
        "row 2, subject P001, column months: duplicate visit" not in text
    )  # dates key
    bad2 = long.drop(columns=["visit_date"])
    bad2.loc[2, "months"] = bad2.loc[1, "months"]
    with pytest.raises(
        DataValidationError,
        match=r"row 2, subject P001, column months: "
        r"duplicate visit time",
    ):
        validate(bad2)


def test_negative_months_in_long_table():
    df = pd.DataFrame({"subject_id": ["A", "A"], "months": [0.0, -2.0]})
    with pytest.raises(
        DataValidationError,
        match=r"row 1, subject A, column months: -2 is "
        r"outside 0-1440 \(time must not be negative",
    ):
        validate(df)


# ----------------------------------------------------------------- data dictionary
def test_readme_is_generated_from_schema():
    expected = load_dictionary().to_markdown()
    actual = readme_path().read_text(encoding="utf-8")
    assert actual == expected, (
        "data_dictionary/README.md is out of date; regenerate it with "
        "python -c 'from alsprog.data._dictionary import write_readme; write_readme()'"
    )


def test_schema_is_a_frictionless_table_schema():
    path = readme_path().parent / "long_format.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    allowed_types = {"string", "number", "integer", "boolean", "date"}
    allowed_constraints = {"required", "minimum", "maximum", "enum", "pattern"}
    names = [f["name"] for f in schema["fields"]]
    assert len(names) == len(set(names))
    for f in schema["fields"]:
        assert f["type"] in allowed_types
        assert f["level"] in {"subject", "visit", "imaging"}
        assert f["description"]
        assert set(f.get("constraints", {})) <= allowed_constraints
    for col in [
        "subject_id",
        "visit_date",
        "visit_day",
        "months",
        "months_since_onset",
        "alsfrs_r_total",
        "alsfrs_r_bulbar",
        "alsfrs_r_fine_motor",
        "alsfrs_r_gross_motor",
        "alsfrs_r_respiratory",
        "group",
        "sex",
        "age_at_onset",
        "onset_site",
        "onset_date",
        "onset_months_before_baseline",
        "diagnostic_delay_months",
        "delta_fs",
        "site",
        "death_or_tracheostomy_months",
        "event_observed",
        "fa_cst_left",
        "thickness_precentral_right",
        *[f"alsfrs_r_q{i}" for i in range(1, 13)],
    ]:
        assert col in names, col


def test_packaged_schema_is_the_source_of_truth():
    from importlib import resources

    packaged = resources.files("alsprog.data").joinpath("long_format.schema.json")
    source = readme_path().parent / "long_format.schema.json"
    assert packaged.read_text("utf-8") == source.read_text("utf-8")


def test_data_dictionary_frame():
    dd = data_dictionary().set_index("name")
    assert dd.loc["alsfrs_r_q7", "maximum"] == 4
    assert dd.loc["alsfrs_r_total", "unit"] == "points"
    assert set(dd["level"]) == {"subject", "visit", "imaging"}


def test_plausibility_rules_name_points_the_code_builds():
    from alsprog.data._plausibility import POINTS

    dd = load_dictionary()
    assert set(dd.points) == set(POINTS)
    assert {r["name"] for r in dd.rules} >= {
        "future_date",
        "before_onset",
        "onset_before_birth",
        "age_above_limit",
        "event_before_visit",
    }


def test_a_rule_naming_an_unknown_point_is_refused():
    from alsprog.data._dictionary import DataDictionary

    schema = json.loads(json.dumps(load_dictionary().schema))
    schema["plausibility"]["rules"][0]["later"] = "tomorrow"
    with pytest.raises(ValueError, match="unknown point 'tomorrow'"):
        DataDictionary(schema)
