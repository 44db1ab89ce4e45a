"""Reading and validating the input tables: every bad input names line and column."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tablefiles import (
    ITEMS,
    SUBJECTS_HEADER,
    VISITS_HEADER,
    valid_subjects_rows,
    valid_visits_rows,
    visit_row,
    write_csv,
)

from alsprog.data import (
    read_imaging,
    read_subjects,
    read_table,
    read_visits,
    write_table,
)
from alsprog.errors import DataValidationError


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _visits_with(tmp_path: Path, row_index: int, column: str, value: object) -> Path:
    rows = valid_visits_rows()
    rows[row_index][VISITS_HEADER.index(column)] = value
    return write_csv(tmp_path / "visits.csv", VISITS_HEADER, rows)


def test_valid_visits_read_and_typed(visits_csv):
    df = read_visits(visits_csv)
    assert len(df) == 5
    assert pd.api.types.is_datetime64_any_dtype(df["visit_date"])
    assert df["alsfrs_r_q1"].dtype == np.float64
    # domains are filled from the items (dictionary sumOf)
    assert df.loc[0, "alsfrs_r_bulbar"] == 4 + 4 + 3
    assert df.loc[0, "alsfrs_r_respiratory"] == 12
    assert (df["alsfrs_r_total"] == df[ITEMS].sum(axis=1)).all()


@pytest.mark.parametrize("value", [5, -1, 2.5, "x"])
def test_bad_item_names_line_and_column(tmp_path, value):
    # row index 2 -> file line 4 (header is line 1)
    path = _visits_with(tmp_path, 2, "alsfrs_r_q7", value)
    with pytest.raises(
        DataValidationError, match=r"line 4, subject P001, column alsfrs_r_q7"
    ):
        read_visits(path)


def test_item_problem_message_says_what_was_expected(tmp_path):
    path = _visits_with(tmp_path, 2, "alsfrs_r_q7", 5)
    with pytest.raises(DataValidationError) as exc:
        read_visits(path)
    assert "5 is outside 0-4 (items are scored 0-4)" in str(exc.value)
    probs = exc.value.problems
    assert probs.loc[0, "line"] == 4 and probs.loc[0, "column"] == "alsfrs_r_q7"
    assert probs.loc[0, "value"] == 5


def test_total_differs_from_items(tmp_path):
    path = _visits_with(tmp_path, 1, "alsfrs_r_total", 30)
    with pytest.raises(
        DataValidationError,
        match=r"line 3, subject P001, column alsfrs_r_total: declared 30 "
        r"differs from the sum of items",
    ):
        read_visits(path)


@pytest.mark.parametrize("total", [49, -2])
def test_total_outside_range(tmp_path, total):
    rows = [["P001", "2020-01-01", total]]
    path = write_csv(
        tmp_path / "v.csv", ["subject_id", "visit_date", "alsfrs_r_total"], rows
    )
    with pytest.raises(
        DataValidationError,
        match=r"line 2, subject P001, column alsfrs_r_total: .* outside 0-48",
    ):
        read_visits(path)


def test_duplicate_visit_date_names_both_lines(tmp_path):
    path = _visits_with(tmp_path, 1, "visit_date", "2020-01-10")
    with pytest.raises(
        DataValidationError,
        match=r"line 3, subject P001, column visit_date: duplicate visit "
        r"date .* first seen at line 2",
    ):
        read_visits(path)


@pytest.mark.parametrize("bad", ["2021-13-02", "02/03/2021", "yesterday"])
def test_unparsable_date(tmp_path, bad):
    path = _visits_with(tmp_path, 3, "visit_date", bad)
    with pytest.raises(
        DataValidationError,
        match=rf"line 5, subject P002, column visit_date: '{bad}' is not a "
        r"date \(expected YYYY-MM-DD\)",
    ):
        read_visits(path)


def test_missing_required_column(tmp_path):
    rows = [r[1:] for r in valid_visits_rows()]
    path = write_csv(tmp_path / "v.csv", VISITS_HEADER[1:], rows)
    with pytest.raises(
        DataValidationError, match=r"column subject_id: column 'subject_id' is missing"
    ):
        read_visits(path)


def test_missing_time_column(tmp_path):
    path = write_csv(tmp_path / "v.csv", ["subject_id", "alsfrs_r_total"], [["P1", 40]])
    with pytest.raises(
        DataValidationError,
        match=r"needs one of the columns 'visit_date', "
        r"'visit_day', 'months'",
    ):
        read_visits(path)


def test_missing_required_value(tmp_path):
    path = _visits_with(tmp_path, 0, "subject_id", "")
    with pytest.raises(
        DataValidationError,
        match=r"line 2, column subject_id: value is missing \(required\)",
    ):
        read_visits(path)


@pytest.mark.parametrize(
    "value, text",
    [(-1.5, "outside 0-1440"), ("inf", "not a finite"), ("-inf", "not a finite")],
)
def test_negative_or_non_finite_time(tmp_path, value, text):
    rows = [["P001", 0, 40], ["P001", value, 38]]
    path = write_csv(
        tmp_path / "v.csv", ["subject_id", "months", "alsfrs_r_total"], rows
    )
    with pytest.raises(
        DataValidationError, match=rf"line 3, subject P001, column months: .*{text}"
    ):
        read_visits(path)


def test_non_finite_visit_day(tmp_path):
    rows = [["P001", 0, 40], ["P001", "nan", 38], ["P001", "inf", 37]]
    path = write_csv(
        tmp_path / "v.csv", ["subject_id", "visit_day", "alsfrs_r_total"], rows
    )
    with pytest.raises(DataValidationError) as exc:
        read_visits(path)
    text = str(exc.value)
    assert "line 3, subject P001, column visit_day: no value" in text
    assert (
        "line 4, subject P001, column visit_day: 'inf' is not a finite number" in text
    )


@pytest.mark.parametrize(
    "column, value", [("onset_site", "arm"), ("group", "patient"), ("sex", "x")]
)
def test_unknown_category(tmp_path, column, value):
    rows = valid_subjects_rows()
    rows[1][SUBJECTS_HEADER.index(column)] = value
    path = write_csv(tmp_path / "s.csv", SUBJECTS_HEADER, rows)
    with pytest.raises(
        DataValidationError,
        match=rf"line 3, subject P002, column {column}: '{value}' is not an "
        r"allowed category \(expected one of",
    ):
        read_subjects(path)


def test_categories_are_case_insensitive(tmp_path):
    rows = valid_subjects_rows()
    rows[0][SUBJECTS_HEADER.index("onset_site")] = " Spinal "
    rows[0][SUBJECTS_HEADER.index("group")] = "ALS"
    df = read_subjects(write_csv(tmp_path / "s.csv", SUBJECTS_HEADER, rows))
    assert df.loc[0, "onset_site"] == "spinal" and df.loc[0, "group"] == "als"


def test_duplicate_subject(tmp_path):
    rows = valid_subjects_rows() + [valid_subjects_rows()[0]]
    path = write_csv(tmp_path / "s.csv", SUBJECTS_HEADER, rows)
    with pytest.raises(
        DataValidationError,
        match=r"line 4, subject P001, column subject_id: "
        r"duplicate subject",
    ):
        read_subjects(path)


def test_all_problems_reported_at_once(tmp_path):
    rows = valid_visits_rows()
    rows[0][VISITS_HEADER.index("alsfrs_r_q3")] = 7
    rows[2][VISITS_HEADER.index("visit_date")] = "2020-02-30"
    rows[4][VISITS_HEADER.index("alsfrs_r_total")] = 12
    path = write_csv(tmp_path / "v.csv", VISITS_HEADER, rows)
    with pytest.raises(DataValidationError) as exc:
        read_visits(path)
    probs = exc.value.problems
    assert probs["line"].tolist() == [2, 4, 6]
    assert probs["column"].tolist() == ["alsfrs_r_q3", "visit_date", "alsfrs_r_total"]
    assert str(exc.value).startswith(f"{path}: 3 problems")


def test_bad_file_is_never_modified(tmp_path):
    path = _visits_with(tmp_path, 2, "alsfrs_r_q7", 9)
    before, mtime = _digest(path), path.stat().st_mtime_ns
    with pytest.raises(DataValidationError):
        read_visits(path)
    assert _digest(path) == before and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["visits.csv"]


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        read_visits(tmp_path / "nope.csv")
    p = tmp_path / "v.xlsx"
    p.write_text("x")
    with pytest.raises(DataValidationError, match=r"unsupported file type '.xlsx'"):
        read_visits(p)


def test_blank_lines_keep_line_numbers(tmp_path):
    rows = valid_visits_rows()
    rows[3][VISITS_HEADER.index("alsfrs_r_q1")] = 8
    path = write_csv(tmp_path / "v.csv", VISITS_HEADER, rows)
    text = path.read_text().splitlines()
    text.insert(2, "")  # a blank line 3: the bad row moves from line 5 to line 6
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(
        DataValidationError, match=r"line 6, subject P002, column alsfrs_r_q1"
    ):
        read_visits(path)


def test_q5a_q5b_fold(tmp_path):
    header = [c for c in VISITS_HEADER if c != "alsfrs_r_q5"]
    header.insert(header.index("alsfrs_r_q6"), "alsfrs_r_q5b")
    header.insert(header.index("alsfrs_r_q5b"), "alsfrs_r_q5a")
    items = [4, 4, 3, 3, None, None, 3, 3, 3, 2, 4, 4, 4]

    def row(date, a, b):
        vals = [4, 4, 3, 3, a, b, 3, 3, 3, 2, 4, 4, 4]
        total = sum(v for v in vals if v is not None)
        return ["P001", date, *vals, total]

    assert len(items) == 13
    path = write_csv(
        tmp_path / "v.csv",
        header,
        [row("2020-01-01", 3, None), row("2020-04-01", None, 1)],
    )
    df = read_visits(path)
    assert df["alsfrs_r_q5"].tolist() == [3.0, 1.0]
    assert df["alsfrs_r_q5_gastrostomy"].tolist() == [False, True]
    assert "alsfrs_r_q5a" not in df.columns
    path = write_csv(tmp_path / "v2.csv", header, [row("2020-01-01", 3, 2)])
    with pytest.raises(
        DataValidationError, match=r"line 2, subject P001, column alsfrs_r_q5b: both 5a"
    ):
        read_visits(path)


def test_read_imaging_checks_pattern_columns(tmp_path):
    header = [
        "subject_id",
        "session",
        "acquisition_date",
        "fa_cst_left",
        "md_cst_left",
        "fa_cst_left_count",
    ]
    rows = [
        ["P001", "m00", "2020-01-11", 0.51, 0.78, 120],
        ["P001", "m06", "2020-07-11", 1.3, 0.80, 118],
        ["P001", "m06", "2020-07-12", 0.50, 0.81, 118],
    ]
    with pytest.raises(DataValidationError) as exc:
        read_imaging(write_csv(tmp_path / "i.csv", header, rows))
    text = str(exc.value)
    assert "line 3, subject P001, column fa_cst_left: 1.3 is outside 0-1" in text
    assert "line 4, subject P001, column session: duplicate imaging session" in text


def test_parquet_rows_are_named_rows(tmp_path, visits_csv):
    df = read_visits(visits_csv)
    df.loc[1, "alsfrs_r_total"] = 47.0
    p = write_table(df, tmp_path / "v.parquet")
    with pytest.raises(
        DataValidationError, match=r"row 2, subject P001, column alsfrs_r_total"
    ):
        read_visits(p)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_table_round_trip(tmp_path, visits_csv, suffix):
    df = read_visits(visits_csv)
    back = read_visits(write_table(df, tmp_path / f"out{suffix}"))
    pd.testing.assert_frame_equal(back, df, check_like=False)
    if suffix == ".csv":
        line = (tmp_path / "out.csv").read_text().splitlines()[1]
        assert line.startswith("P001,2020-01-10,4,4,3,")  # whole numbers, ISO dates


def test_write_table_is_atomic_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "keep.csv"
    target.write_text("old\n")

    def boom(self, path, *a, **k):
        Path(path).write_text("half a ")
        raise RuntimeError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(RuntimeError):
        write_table(pd.DataFrame({"subject_id": ["P1"]}), target)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.csv"]


def test_read_table_detects_kind(visits_csv, subjects_csv):
    assert read_table(visits_csv)[1] == "visits"
    assert read_table(subjects_csv)[1] == "subjects"


def test_numeric_subject_ids_become_strings(tmp_path):
    path = write_csv(tmp_path / "s.csv", ["subject_id", "group"], [[101, "als"]])
    assert read_subjects(path)["subject_id"].tolist() == ["101"]


def test_row_of_visit_before_first(tmp_path):
    rows = [visit_row("P9", "2020-01-01")]
    df = read_visits(write_csv(tmp_path / "v.csv", VISITS_HEADER, rows))
    assert df.attrs["alsprog_source"].endswith("v.csv")
