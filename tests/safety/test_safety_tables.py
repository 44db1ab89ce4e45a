"""Hostile tables: implausible data and corrupted files are refused, never passed.

Each case starts from three small valid files (subjects, visits, imaging), breaks one
thing, and asserts the exact outcome: the error class, the problem's rule, file line,
subject, column and value, and that every input file is byte-identical afterwards
(and no file was added beside them).  The date of the check is fixed (``TODAY``) so
the "after today" rules are reproducible.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alsprog.data import (
    add_time_axes,
    assemble,
    read_imaging,
    read_subjects,
    read_table,
    read_visits,
    score_alsfrs_r,
    validate,
)
from alsprog.errors import DataValidationError, DataWarning

TODAY = dt.date(2026, 1, 1)

SUBJECTS = [
    [
        "subject_id",
        "group",
        "sex",
        "age_at_onset",
        "age_at_baseline",
        "onset_site",
        "onset_date",
        "diagnostic_delay_months",
        "death_or_tracheostomy_months",
        "event_observed",
    ],
    # onset 2019-01-15, first visit 2020-01-10 (11.8 months later, ages 61 -> 62),
    # diagnosis 8 months after onset, death 12 months after the first visit
    ["P001", "als", "male", "61", "62", "spinal", "2019-01-15", "8", "12", "true"],
    # onset 2020-09-01, first visit 2021-03-01; censored at 3.5 months
    ["P002", "als", "female", "55", "55", "bulbar", "2020-09-01", "4", "3.5", "false"],
]
VISITS = [
    ["subject_id", "visit_date", "alsfrs_r_total"],
    ["P001", "2020-01-10", "40"],  # line 2
    ["P001", "2020-04-09", "38"],  # line 3
    ["P001", "2020-07-08", "37"],  # line 4: P001's last visit, month 5.9
    ["P002", "2021-03-01", "44"],  # line 5
    ["P002", "2021-06-01", "42"],  # line 6: P002's last visit, month 3.0
]
IMAGING = [
    ["subject_id", "session", "acquisition_date", "fa_cst_left"],
    ["P001", "m00", "2020-01-12", "0.52"],  # line 2
    ["P001", "m06", "2020-07-10", "0.50"],  # line 3
    ["P002", "m00", "2021-03-03", "0.55"],  # line 4
]
TABLES = {"subjects": SUBJECTS, "visits": VISITS, "imaging": IMAGING}


def _csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _write_inputs(folder: Path, edits: dict[tuple[str, int, str], str]) -> dict:
    """The three valid tables, with ``{(table, line, column): value}`` applied."""
    paths = {}
    for name, rows in TABLES.items():
        rows = [list(r) for r in rows]
        for (table, line, column), value in edits.items():
            if table == name:
                rows[line - 1][rows[0].index(column)] = value
        paths[name] = folder / f"{name}.csv"
        paths[name].write_text(_csv_text(rows), encoding="utf-8")
    return paths


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _only(
    err: DataValidationError, rule: str, column: str | None = None
) -> dict[str, Any]:
    """The one problem of ``err`` with ``rule`` (and ``column``, when given)."""
    probs = err.problems
    hits = probs[probs["rule"] == rule]
    if column is not None:
        hits = hits[hits["column"] == column]
    assert len(hits) == 1, f"expected one {rule!r} problem:\n{err}"
    return hits.iloc[0].to_dict()


def _read(kind: str, paths: dict[str, Path]) -> Any:
    if kind == "assemble":
        return assemble(
            paths["visits"], paths["subjects"], paths["imaging"], today=TODAY
        )
    reader = {"visits": read_visits, "subjects": read_subjects, "imaging": read_imaging}
    return reader[kind](paths[kind], today=TODAY)


# --------------------------------------------------------------------- implausible
@dataclass(frozen=True)
class Implausible:
    edits: dict[tuple[str, int, str], str]
    via: str  # a reader ("visits", "subjects", "imaging") or "assemble"
    rule: str
    table: str
    line: int
    subject: str
    column: str
    value: Any
    text: str
    also: tuple[str, ...] = field(default=())  # other rules this input breaks too


IMPLAUSIBLE = {
    # the example: a single visit in 2099
    "visit_in_2099": Implausible(
        edits={("visits", 3, "visit_date"): "2099-04-09"},
        via="visits",
        rule="future_date",
        table="visits",
        line=3,
        subject="P001",
        column="visit_date",
        value="2099-04-09",
        text="visit on 2099-04-09 is after today (2026-01-01)",
        also=("event_before_visit",),
    ),
    "onset_after_today": Implausible(
        edits={("subjects", 2, "onset_date"): "2026-06-01"},
        via="subjects",
        rule="future_date",
        table="subjects",
        line=2,
        subject="P001",
        column="onset_date",
        value="2026-06-01",
        text="onset 2026-06-01 is after today",
    ),
    "diagnosis_after_today": Implausible(
        edits={("subjects", 3, "onset_date"): "2025-10-01"},
        via="subjects",
        rule="future_date",
        table="subjects",
        line=3,
        subject="P002",
        column="diagnostic_delay_months",
        value=4.0,
        text="diagnosis 4 months after onset (about 2026-01-30) is after today",
    ),
    "scan_after_today": Implausible(
        edits={("imaging", 4, "acquisition_date"): "2030-03-03"},
        via="imaging",
        rule="future_date",
        table="imaging",
        line=4,
        subject="P002",
        column="acquisition_date",
        value="2030-03-03",
        text="imaging session 'm00' on 2030-03-03 is after today",
    ),
    "event_after_today": Implausible(
        edits={("subjects", 2, "death_or_tracheostomy_months"): "100"},
        via="assemble",
        rule="future_date",
        table="subjects",
        line=2,
        subject="P001",
        column="death_or_tracheostomy_months",
        value=100.0,
        text="death or tracheostomy at month 100.0 (about 2028-05-10) is after today",
    ),
    "age_at_baseline_130": Implausible(
        edits={("subjects", 2, "age_at_baseline"): "130"},
        via="subjects",
        rule="maximum",
        table="subjects",
        line=2,
        subject="P001",
        column="age_at_baseline",
        value=130.0,
        text="130 is outside 0-120",
        also=("ages_disagree_with_onset",),
    ),
    "negative_age_at_onset": Implausible(
        edits={("subjects", 3, "age_at_onset"): "-3"},
        via="subjects",
        rule="minimum",
        table="subjects",
        line=3,
        subject="P002",
        column="age_at_onset",
        value=-3.0,
        text="-3 is outside 0-110",
    ),
    "age_121_at_last_visit": Implausible(
        edits={
            ("subjects", 2, "age_at_baseline"): "120",
            ("subjects", 2, "age_at_onset"): "",
        },
        via="assemble",
        rule="age_above_limit",
        table="subjects",
        line=2,
        subject="P001",
        column="age_at_baseline",
        value=120.0,
        text="visits.csv line 4 is at age 120.5, above 120",
    ),
    "age_at_onset_above_baseline_age": Implausible(
        edits={("subjects", 2, "age_at_onset"): "63"},
        via="subjects",
        rule="onset_age_after_baseline_age",
        table="subjects",
        line=2,
        subject="P001",
        column="age_at_onset",
        value=63.0,
        text="onset at age 63 (age_at_onset; age_at_baseline 62) "
        "is after the first visit",
        also=("ages_disagree_with_onset",),
    ),
    "onset_after_first_visit": Implausible(
        edits={("subjects", 2, "onset_date"): "2020-03-01"},
        via="assemble",
        rule="before_onset",
        table="visits",
        line=2,
        subject="P001",
        column="visit_date",
        value="2020-01-10",
        text="visit on 2020-01-10 is 1.7 months before symptom onset (onset 2020-03-01",
        also=("ages_disagree_with_onset",),
    ),
    "onset_after_diagnosis": Implausible(
        edits={("subjects", 3, "diagnostic_delay_months"): "-2"},
        via="subjects",
        rule="minimum",
        table="subjects",
        line=3,
        subject="P002",
        column="diagnostic_delay_months",
        value=-2.0,
        text="-2 is outside 0-1440 (diagnosis must not be before symptom onset",
    ),
    "onset_before_birth": Implausible(
        edits={
            ("subjects", 3, "age_at_baseline"): "3",
            ("subjects", 3, "age_at_onset"): "",
            ("subjects", 3, "onset_date"): "2010-09-01",
        },
        via="assemble",
        rule="onset_before_birth",
        table="subjects",
        line=3,
        subject="P002",
        column="age_at_baseline",
        value=3.0,
        text="onset 2010-09-01 is 90.0 months before birth (age_at_baseline 3)",
    ),
    "ages_disagree_with_onset": Implausible(
        edits={("subjects", 2, "age_at_onset"): "50"},
        via="assemble",
        rule="ages_disagree_with_onset",
        table="subjects",
        line=2,
        subject="P001",
        column="age_at_onset",
        value=50.0,
        text="disagrees with onset 2019-01-15 by 132.2 months",
    ),
    "death_before_last_visit": Implausible(
        edits={("subjects", 2, "death_or_tracheostomy_months"): "2"},
        via="assemble",
        rule="event_before_visit",
        table="subjects",
        line=2,
        subject="P001",
        column="death_or_tracheostomy_months",
        value=2.0,
        text="death or tracheostomy at month 2.0 (about 2020-03-10) is 3.9 months before "
        "the last visit on 2020-07-08, ",
        also=("scan_after_death",),
    ),
    "last_contact_before_last_visit": Implausible(
        edits={("subjects", 3, "death_or_tracheostomy_months"): "1"},
        via="assemble",
        rule="event_before_visit",
        table="subjects",
        line=3,
        subject="P002",
        column="death_or_tracheostomy_months",
        value=1.0,
        text="last contact (censored) at month 1.0 (about 2021-03-31) is 2.0 months "
        "before the last visit on 2021-06-01",
    ),
    "scan_after_death": Implausible(
        edits={("imaging", 3, "acquisition_date"): "2021-03-10"},
        via="assemble",
        rule="scan_after_death",
        table="imaging",
        line=3,
        subject="P001",
        column="acquisition_date",
        value="2021-03-10",
        text="imaging session 'm06' on 2021-03-10 is 2.0 months after death "
        "or tracheostomy at month 12.0",
    ),
    "diagnosis_after_death": Implausible(
        edits={("subjects", 2, "diagnostic_delay_months"): "30"},
        via="assemble",
        rule="diagnosis_after_death",
        table="subjects",
        line=2,
        subject="P001",
        column="diagnostic_delay_months",
        value=30.0,
        text="diagnosis 30 months after onset (about 2021-07-16) is 6.2 months after "
        "death or tracheostomy at month 12.0 (about 2021-01-09)",
    ),
    "visit_date_before_1900": Implausible(
        edits={("visits", 5, "visit_date"): "1899-12-31"},
        via="visits",
        rule="minimum",
        table="visits",
        line=5,
        subject="P002",
        column="visit_date",
        value="1899-12-31",
        text="'1899-12-31' is before 1900-01-01",
    ),
    "date_beyond_representable": Implausible(
        edits={("visits", 6, "visit_date"): "9999-12-31"},
        via="visits",
        rule="maximum",
        table="visits",
        line=6,
        subject="P002",
        column="visit_date",
        value="9999-12-31",
        text="'9999-12-31' is not a plausible date",
    ),
    "onset_120_years_before": Implausible(
        edits={("subjects", 2, "onset_date"): "1899-01-01"},
        via="subjects",
        rule="minimum",
        table="subjects",
        line=2,
        subject="P001",
        column="onset_date",
        value="1899-01-01",
        text="'1899-01-01' is before 1900-01-01",
    ),
}


@pytest.mark.parametrize("case", list(IMPLAUSIBLE.values()), ids=list(IMPLAUSIBLE))
def test_implausible_table_is_refused(tmp_path, case):
    paths = _write_inputs(tmp_path, case.edits)
    before = _digests(tmp_path)
    with pytest.raises(DataValidationError) as info:
        _read(case.via, paths)
    p = _only(info.value, case.rule, case.column)
    assert p["source"] == str(paths[case.table])
    assert (p["line"], p["subject_id"], p["column"]) == (
        case.line,
        case.subject,
        case.column,
    )
    assert p["value"] == case.value
    assert case.text in p["message"], p["message"]
    assert set(info.value.problems["rule"]) <= {case.rule, *case.also}
    rendered = str(info.value)
    assert (
        f"line {case.line}, subject {case.subject}, column {case.column}:" in rendered
    )
    assert _digests(tmp_path) == before  # inputs byte-identical, nothing added


def test_valid_inputs_pass_every_entry_point(tmp_path):
    """The control: the untouched tables pass each reader and assemble."""
    paths = _write_inputs(tmp_path, {})
    before = _digests(tmp_path)
    for kind in ("visits", "subjects", "imaging", "assemble"):
        _read(kind, paths)
    long = assemble(paths["visits"], paths["subjects"], paths["imaging"], today=TODAY)
    validate(long, today=TODAY)
    assert _digests(tmp_path) == before


def test_today_defaults_to_the_current_date(tmp_path):
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    paths = _write_inputs(tmp_path, {("visits", 6, "visit_date"): f"{tomorrow}"})
    with pytest.raises(
        DataValidationError,
        match=r"line 6, subject P002, column "
        r"visit_date: visit on .* is after today",
    ):
        read_visits(paths["visits"])
    read_visits(paths["visits"], today=tomorrow)  # not after the given day


# ------------------------------------------------------------ implausible long tables
def _long(tmp_path: Path) -> pd.DataFrame:
    paths = _write_inputs(tmp_path, {})
    return assemble(paths["visits"], paths["subjects"], paths["imaging"], today=TODAY)


@pytest.mark.parametrize(
    "column, row, value, rule, text",
    [
        ("months_since_onset", 1, -2.0, "minimum", "-2 is outside 0-1440"),
        (
            "death_or_tracheostomy_months",
            None,
            1.0,
            "event_before_visit",
            "death or tracheostomy at month 1.0",
        ),
        (
            "visit_date",
            4,
            pd.Timestamp("2030-06-01"),
            "future_date",
            "visit on 2030-06-01 is after today",
        ),
        ("age", 2, 131.0, "maximum", "131 is outside 0-120"),
    ],
    ids=[
        "negative_months_since_onset",
        "death_before_visit",
        "visit_in_2030",
        "age_131",
    ],
)
def test_implausible_long_table_is_refused_by_validate(
    tmp_path, column, row, value, rule, text
):
    long = _long(tmp_path)
    bad = long.copy()
    if row is None:  # a subject-level value: every row of P001
        bad.loc[bad["subject_id"] == "P001", column] = value
        row = 0
    else:
        bad.loc[row, column] = value
    kept = bad.copy(deep=True)
    with pytest.raises(DataValidationError) as info:
        validate(bad, today=TODAY)
    p = _only(info.value, rule)
    assert (p["line"], p["subject_id"], p["column"]) == (
        row,
        bad.loc[row, "subject_id"],
        column,
    )
    assert text in p["message"]
    pd.testing.assert_frame_equal(bad, kept)  # the caller's table is untouched


# ----------------------------------------------------------------------- corrupted
@dataclass(frozen=True)
class Corrupted:
    content: bytes | str | None  # None: make a directory
    rule: str
    line: int | None
    column: str | None
    text: str
    name: str = "visits.csv"
    subject: str | None = None


_H = "subject_id,visit_date,alsfrs_r_total\n"
_OK = _H + "P001,2020-01-10,40\nP001,2020-04-09,38\n"

CORRUPTED = {
    "row_with_fewer_fields": Corrupted(
        content=_H + "P001,2020-01-10,40\nP001,2020-04-09\nP001,2020-07-08,37\n",
        rule="fields",
        line=3,
        column=None,
        text="2 fields, but the header has 3",
    ),
    "row_with_more_fields": Corrupted(
        content=_H + "P001,2020-01-10,40\nP001,2020-04-09,3,8\n",
        rule="fields",
        line=3,
        column=None,
        text="4 fields, but the header has 3",
    ),
    "semicolon_separated": Corrupted(
        content="subject_id;visit_date;alsfrs_r_total\nP001;2020-01-10;40\n",
        rule="file",
        line=1,
        column=None,
        text="the separator looks like ';', not ','",
    ),
    "tab_separated_csv": Corrupted(
        content="subject_id\tvisit_date\talsfrs_r_total\nP001\t2020-01-10\t40\n",
        rule="file",
        line=1,
        column=None,
        text="the separator looks like tab, not ',' (name the file .tsv)",
    ),
    "comma_separated_tsv": Corrupted(
        content=_OK,
        rule="file",
        line=1,
        column=None,
        text="the separator looks like ',', not tab",
        name="v.tsv",
    ),
    # a quoted note spanning lines 3-5: the bad total on the next record is on line 6
    "line_after_multiline_quoted_field": Corrupted(
        content="subject_id,visit_date,alsfrs_r_total,note\nP001,2020-01-10,40,ok\n"
        'P001,2020-04-09,38,"first\nsecond\nthird"\nP001,2020-07-08,55,x\n',
        rule="maximum",
        line=6,
        column="alsfrs_r_total",
        text="55 is outside 0-48",
        subject="P001",
    ),
    "near_miss_ALSFRS_TOTAL": Corrupted(
        content="subject_id,visit_date,ALSFRS_TOTAL\nP001,2020-01-10,40\n",
        rule="column_name",
        line=None,
        column="ALSFRS_TOTAL",
        text="close to 'alsfrs_r_total': rename it to 'alsfrs_r_total'",
    ),
    "near_miss_alsfrs_total": Corrupted(
        content="subject_id,visit_date,alsfrs_total\nP001,2020-01-10,40\n",
        rule="column_name",
        line=None,
        column="alsfrs_total",
        text="rename it to 'alsfrs_r_total'",
    ),
    "near_miss_subjectid": Corrupted(
        content="subjectid,visit_date,alsfrs_r_total\nP001,2020-01-10,40\n",
        rule="column_name",
        line=None,
        column="subjectid",
        text="is the dictionary column 'subject_id' spelled differently",
    ),
    "near_miss_Subject_ID": Corrupted(
        content="Subject_ID,visit_date,alsfrs_r_total\nP001,2020-01-10,40\n",
        rule="column_name",
        line=None,
        column="Subject_ID",
        text="rename it to 'subject_id'",
    ),
    "no_outcome_column": Corrupted(
        content="subject_id,visit_date,fvc\nP001,2020-01-10,80\n",
        rule="no_outcome",
        line=None,
        column="alsfrs_r_total",
        text="the visits table has no outcome column: expected 'alsfrs_r_total', the "
        "items 'alsfrs_r_q1' ... 'alsfrs_r_q12'",
    ),
    "outcome_column_without_values": Corrupted(
        content=_H + "P001,2020-01-10,\nP001,2020-04-09,NA\n",
        rule="no_outcome",
        line=None,
        column="alsfrs_r_total",
        text="no visit has a value",
    ),
    "duplicate_header_names": Corrupted(
        content="subject_id,visit_date,alsfrs_r_total,alsfrs_r_total\nP001,2020-01-10,40,41\n",
        rule="header",
        line=1,
        column="alsfrs_r_total",
        text="appears 2 times in the header (positions 3, 4)",
    ),
    "empty_header_name": Corrupted(
        content="subject_id,,alsfrs_r_total\nP001,2020-01-10,40\n",
        rule="header",
        line=1,
        column=None,
        text="the header has 1 empty column name(s) (column position(s) 2)",
    ),
    "empty_file": Corrupted(
        content=b"", rule="file", line=None, column=None, text="the file is empty"
    ),
    "only_blank_lines": Corrupted(
        content="\n\n  \n",
        rule="file",
        line=None,
        column=None,
        text="the file is empty",
    ),
    "header_only": Corrupted(
        content=_H, rule="empty", line=1, column=None, text="a header but no data rows"
    ),
    "binary_garbage": Corrupted(
        content=b"subject_id,visit_date\n" + bytes(range(256)) * 3,
        rule="file",
        line=2,
        column=None,
        text="NUL byte at byte offset 22: a binary file, not CSV text",
    ),
    "latin1_bytes": Corrupted(
        content=(_OK + "P\xe9002,2020-07-08,37\n").encode("latin-1"),
        rule="file",
        line=4,
        column=None,
        text="byte 0xE9 at byte offset 76 is not valid UTF-8",
    ),
    "utf16_file": Corrupted(
        content=_OK.encode("utf-16"),
        rule="file",
        line=None,
        column=None,
        text="the file is UTF-16 encoded",
    ),
    "xlsx_named_csv": Corrupted(
        content=b"PK\x03\x04" + bytes(60),
        rule="file",
        line=None,
        column=None,
        text="it is a ZIP archive (an Excel .xlsx workbook?): export the sheet as CSV",
    ),
    "parquet_named_csv": Corrupted(
        content=b"PAR1" + bytes(60),
        rule="file",
        line=None,
        column=None,
        text="a Parquet file",
    ),
    "quote_never_closed": Corrupted(
        content=_H + 'P001,2020-01-10,"40\nP001,2020-04-09,38\n',
        rule="file",
        line=2,
        column=None,
        text="a quoted field opened on this line is never closed",
    ),
    "not_gzip_but_csv_gz": Corrupted(
        content=_OK,
        rule="file",
        line=None,
        column=None,
        text="cannot be decompressed as gzip",
        name="v.csv.gz",
    ),
    "a_directory": Corrupted(
        content=None,
        rule="file",
        line=None,
        column=None,
        text="the file is a directory, not a table file",
    ),
    "numeric_sex_codes": Corrupted(
        content="subject_id,group,sex\nP001,als,1\nP002,als,female\n",
        rule="enum",
        line=2,
        column="sex",
        text="recode them with your data set's own key, e.g. ISO/IEC "
        "5218 1 -> 'male', 2 -> 'female'",
        name="subjects.csv",
        subject="P001",
    ),
    "boolean_Y": Corrupted(
        content="subject_id,group,death_or_tracheostomy_months,event_observed\nP001,als,3,Y\n",
        rule="type",
        line=2,
        column="event_observed",
        text="'Y' is not a boolean (expected true/false; also "
        "1/0, yes/no, in any case)",
        name="subjects.csv",
        subject="P001",
    ),
    "misspelt_category": Corrupted(
        content="subject_id,group,onset_site\nP001,als,bulbr\n",
        rule="enum",
        line=2,
        column="onset_site",
        text="did you mean 'bulbar'?",
        name="subjects.csv",
        subject="P001",
    ),
}


def _reader_for(name: str):
    return read_subjects if name.startswith("subjects") else read_visits


@pytest.mark.parametrize("case", list(CORRUPTED.values()), ids=list(CORRUPTED))
def test_corrupted_file_is_refused(tmp_path, case):
    path = tmp_path / case.name
    if case.content is None:
        path.mkdir()
    elif isinstance(case.content, bytes):
        path.write_bytes(case.content)
    else:
        path.write_bytes(case.content.encode("utf-8"))
    before = _digests(tmp_path)
    with pytest.raises(DataValidationError) as info:
        _reader_for(case.name)(path, today=TODAY)
    p = _only(info.value, case.rule)
    assert p["source"] == str(path)
    assert (p["line"], p["column"], p["subject_id"]) == (
        case.line,
        case.column,
        case.subject,
    )
    assert case.text in p["message"], p["message"]
    assert _digests(tmp_path) == before
    assert path.exists()


def test_short_row_is_named_not_padded(tmp_path):
    """pandas pads the short row with NaN; alsprog names it and reads nothing."""
    path = tmp_path / "visits.csv"
    path.write_text(_H + "P001,2020-01-10,40\nP001,2020-04-09\n")
    assert pd.read_csv(path)["alsfrs_r_total"].isna().sum() == 1  # today's padding
    with pytest.raises(DataValidationError, match=r"line 3: 2 fields, but the header"):
        read_visits(path, today=TODAY)


def test_bom_is_accepted_with_right_names_and_lines(tmp_path):
    path = tmp_path / "visits.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (_OK + "P001,2020-07-08,49\n").encode())
    with pytest.raises(DataValidationError) as info:
        read_visits(path, today=TODAY)
    p = _only(info.value, "maximum")
    assert (p["line"], p["column"], p["value"]) == (4, "alsfrs_r_total", 49.0)
    path.write_bytes(b"\xef\xbb\xbf" + _OK.encode())
    df = read_visits(path, today=TODAY)
    assert list(df.columns[:2]) == ["subject_id", "visit_date"]


def test_crlf_and_gzip_keep_line_numbers(tmp_path):
    text = _H + "P001,2020-01-10,40\nP001,2020-04-09,-1\n"
    crlf = tmp_path / "visits.csv"
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    gz = tmp_path / "visits.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    for path in (crlf, gz):
        with pytest.raises(
            DataValidationError, match=r"line 3, subject P001, column alsfrs_r_total"
        ):
            read_visits(path, today=TODAY)


# ------------------------------------------------------------------------ codings
@pytest.mark.parametrize(
    "column, given, expected",
    [
        ("sex", ["M", "f"], ["male", "female"]),
        ("onset_site", ["LIMB", "Bulbar onset"], ["spinal", "bulbar"]),
    ],
)
def test_synonyms_are_mapped_with_a_warning_naming_the_mapping(
    tmp_path, column, given, expected
):
    path = tmp_path / "subjects.csv"
    path.write_text(
        f"subject_id,group,{column}\nP001,als,{given[0]}\nP002,als,{given[1]}\n"
    )
    before = _digests(tmp_path)
    with pytest.warns(DataWarning) as caught:
        df = read_subjects(path, today=TODAY)
    assert df[column].tolist() == expected
    msg = str(caught[0].message)
    assert f"column {column}: mapped" in msg
    for g, e in zip(given, expected, strict=True):
        assert f"{g!r} -> {e!r} (1 row)" in msg
    assert caught[0].filename == __file__  # points at the caller, not alsprog
    assert _digests(tmp_path) == before


def test_same_word_in_another_case_is_silent(tmp_path):
    path = tmp_path / "subjects.csv"
    path.write_text(
        "subject_id,group,sex,onset_site,event_observed,death_or_tracheostomy_months\n"
        "P001,ALS,Male,Bulbar,TRUE,5\nP002,als,FEMALE,spinal,No,4\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = read_subjects(path, today=TODAY)
    assert df["sex"].tolist() == ["male", "female"]
    assert df["event_observed"].tolist() == [True, False]


# -------------------------------------------------- inputs never modified (frames)
def _frame_digest(df: pd.DataFrame) -> tuple:
    return (
        pd.util.hash_pandas_object(df.astype(str), index=True).sum(),
        tuple(map(str, df.columns)),
        tuple(map(str, df.dtypes)),
        repr(df.attrs),
    )


def test_validation_never_modifies_the_callers_frames(tmp_path):
    paths = _write_inputs(tmp_path, {})
    v = pd.read_csv(paths["visits"], dtype=str)
    s = pd.read_csv(paths["subjects"], dtype=str)
    i = pd.read_csv(paths["imaging"], dtype=str)
    v.loc[1, "visit_date"] = "2099-01-01"  # implausible: refused
    s.loc[0, "sex"] = "M"  # a synonym: mapped in the result only
    long = v.assign(months=["0", "3", "6", "0", "3"], sex="M")
    long.attrs["note"] = "the caller's"
    frames = (v, s, i, long)
    before = [_frame_digest(f) for f in frames]
    with pytest.raises(DataValidationError), pytest.warns(DataWarning):
        assemble(v, s, i, today=TODAY)
    with pytest.raises(DataValidationError), pytest.warns(DataWarning):
        add_time_axes(v, s, today=TODAY)
    with pytest.raises(DataValidationError), pytest.warns(DataWarning):
        validate(long, today=TODAY)
    score_alsfrs_r(v)
    assert [_frame_digest(f) for f in frames] == before
    assert s.loc[0, "sex"] == "M" and long["sex"].eq("M").all()
    assert long.attrs == {"note": "the caller's"}


def test_repeated_frame_column_is_refused_not_a_traceback():
    df = pd.DataFrame({"subject_id": ["P1"], "months": [0.0], "alsfrs_r_total": [40]})
    df = pd.concat([df, df[["alsfrs_r_total"]]], axis=1)
    with pytest.raises(
        DataValidationError,
        match=r"column alsfrs_r_total: column 'alsfrs_r_total' "
        r"appears 2 times",
    ):
        validate(df, today=TODAY)


# ---------------------------------------------------- the command line and the run
def _cohort_files(folder: Path) -> tuple[Path, Path]:
    from alsprog.data import write_table
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(12, 0, months=12, seed=5)
    return (
        write_table(c.visits, folder / "visits.csv"),
        write_table(c.subjects, folder / "subjects.csv"),
    )


def _set_visit_year(path: Path, line: int, year: str) -> str:
    rows = list(csv.reader(path.open(newline="")))
    col = rows[0].index("visit_date")
    rows[line - 1][col] = year + rows[line - 1][col][4:]
    path.write_text(_csv_text(rows))
    return rows[line - 1][col], rows[line - 1][0]


def test_cli_validate_refuses_a_2099_visit(tmp_path, capsys):
    from alsprog.cli import main

    visits, subjects = _cohort_files(tmp_path)
    assert main(["validate", str(visits), str(subjects)]) == 0
    date, sid = _set_visit_year(visits, 5, "2099")
    before = _digests(tmp_path)
    assert main(["validate", str(visits), str(subjects)]) == 1
    err = capsys.readouterr().err
    assert (
        f"line 5, subject {sid}, column visit_date: visit on {date} is after today"
        in err
    )
    assert _digests(tmp_path) == before


def test_run_check_refuses_a_2099_visit(tmp_path):
    """The issue's example: a 2099 visit moved a trial's sample size with exit 0."""
    from alsprog.report import ConfigError, check

    visits, subjects = _cohort_files(tmp_path)
    config = tmp_path / "run.toml"
    config.write_text(
        '[data]\nvisits = "visits.csv"\nsubjects = "subjects.csv"\n'
        '[models.lmm]\ntype = "mixed"\n'
        'formula = "alsfrs_r_total ~ months + (months | subject_id)"\n'
    )
    check(config, tmp_path / "out")  # the valid data pass
    date, sid = _set_visit_year(visits, 7, "2099")
    before = _digests(tmp_path)
    with pytest.raises(ConfigError) as info:
        check(config, tmp_path / "out")
    p = _only(info.value, "future_date")
    assert (p["source"], p["line"], p["subject_id"], p["column"], p["value"]) == (
        str(visits),
        7,
        sid,
        "visit_date",
        date,
    )
    assert _digests(tmp_path) == before
    assert not (tmp_path / "out").exists()


def test_read_table_long_applies_the_plausibility_rules(tmp_path):
    long = _long(tmp_path)
    long.loc[2, "visit_date"] = pd.Timestamp("2031-01-01")
    from alsprog.data import write_table

    path = write_table(long, tmp_path / "long.csv")
    with pytest.raises(DataValidationError) as info:
        read_table(path, kind="long", today=TODAY)
    p = _only(info.value, "future_date")
    assert (p["line"], p["column"], p["value"]) == (4, "visit_date", "2031-01-01")


def test_subjects_of_the_simulator_pass_the_rules():
    """The simulator's tables follow every plausibility rule (long follow-up too)."""
    from alsprog.simulate import simulate_cohort

    for months, interval in ((18, 3), (240, 12)):
        c = simulate_cohort(
            150,
            30,
            months=months,
            visit_interval_months=interval,
            imaging_interval_months=interval,
            seed=11,
        )
        long = assemble(c.visits, c.subjects, c.imaging, today=TODAY)
        validate(long, today=TODAY)
        assert long["visit_date"].max() <= pd.Timestamp("2025-12-31")
    assert np.isfinite(long["months"]).all()
