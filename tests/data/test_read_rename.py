"""Column mappings (``rename=``) in the readers and ``assemble``, and the guess of a
table's kind with its reason (issue 18, item 13)."""

from __future__ import annotations

import pandas as pd
import pytest
from tablefiles import (
    SUBJECTS_HEADER,
    VISITS_HEADER,
    valid_subjects_rows,
    valid_visits_rows,
    write_csv,
)

from alsprog.data import assemble, read_subjects, read_table, read_visits
from alsprog.errors import DataValidationError

OURS = {"subject_id": "patient", "visit_date": "seen_on"}
BACK = {v: k for k, v in OURS.items()}


def _own(header):
    return [OURS.get(c, c) for c in header]


def test_read_visits_with_a_mapping_equals_the_dictionary_file(tmp_path):
    ref = write_csv(tmp_path / "ref.csv", VISITS_HEADER, valid_visits_rows())
    mine = write_csv(tmp_path / "mine.csv", _own(VISITS_HEADER), valid_visits_rows())
    got = read_visits(mine, rename=BACK)
    pd.testing.assert_frame_equal(got, read_visits(ref), check_like=False)
    assert list(got.columns)[: len(VISITS_HEADER)] == VISITS_HEADER


def test_problems_keep_their_line_and_use_the_dictionary_name(tmp_path):
    rows = valid_visits_rows()
    rows[2][VISITS_HEADER.index("alsfrs_r_q7")] = 5
    mine = write_csv(tmp_path / "mine.csv", _own(VISITS_HEADER), rows)
    with pytest.raises(
        DataValidationError,
        match=r"line 4, subject P001, column alsfrs_r_q7: 5 is outside 0-4",
    ):
        read_visits(mine, rename=BACK)


def test_without_the_mapping_the_names_are_missing(tmp_path):
    mine = write_csv(
        tmp_path / "mine.csv", _own(SUBJECTS_HEADER), valid_subjects_rows()
    )
    with pytest.raises(DataValidationError, match="column 'subject_id' is missing"):
        read_subjects(mine)
    assert list(read_subjects(mine, rename=BACK).columns)[0] == "subject_id"


def test_a_mapping_onto_a_column_the_table_has_is_refused(tmp_path):
    header = [*SUBJECTS_HEADER, "patient"]
    rows = [[*r, "x"] for r in valid_subjects_rows()]
    path = write_csv(tmp_path / "s.csv", header, rows)
    with pytest.raises(DataValidationError) as info:
        read_subjects(path, rename={"patient": "subject_id"})
    assert (
        "column patient: column 'patient' is renamed to 'subject_id' (`rename`), but "
        "the table has 'subject_id' already: drop one of them or the mapping"
    ) in str(info.value)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {"patient": "subjectid"},
            "`rename`: 'patient' -> 'subjectid': 'subjectid' is not a column of the "
            "data dictionary; did you mean 'subject_id'?",
        ),
        (
            {"a": "months", "b": "months"},
            "`rename`: 'a' and 'b' are both renamed to 'months'; keep one.",
        ),
        ({"x": "x"}, "`rename`: 'x' -> 'x': renames the column to itself."),
        (["patient"], "`rename`: must be a mapping of old to new column names"),
    ],
)
def test_the_mapping_itself_is_checked_first(tmp_path, mapping, message):
    path = write_csv(tmp_path / "v.csv", VISITS_HEADER, valid_visits_rows())
    with pytest.raises(ValueError) as info:
        read_visits(path, rename=mapping)
    assert not isinstance(info.value, DataValidationError)
    assert message in str(info.value)


def test_assemble_applies_the_mapping_to_every_table(tmp_path):
    v = write_csv(tmp_path / "v.csv", _own(VISITS_HEADER), valid_visits_rows())
    s = write_csv(tmp_path / "s.csv", _own(SUBJECTS_HEADER), valid_subjects_rows())
    ref_v = write_csv(tmp_path / "rv.csv", VISITS_HEADER, valid_visits_rows())
    ref_s = write_csv(tmp_path / "rs.csv", SUBJECTS_HEADER, valid_subjects_rows())
    expected = assemble(ref_v, ref_s, today="2026-01-01")
    got = assemble(v, s, rename=BACK, today="2026-01-01")
    pd.testing.assert_frame_equal(got, expected)
    # data frames too; the caller's frames keep their names
    vf = pd.read_csv(v, dtype=str)
    got = assemble(vf, pd.read_csv(s, dtype=str), rename=BACK, today="2026-01-01")
    pd.testing.assert_frame_equal(got, expected)
    assert "patient" in vf.columns


@pytest.mark.parametrize(
    ("columns", "kind", "why"),
    [
        (
            ["patient", "visit_month", "alsfrs_r_total", "group", "onset_site"],
            "long",
            "visit columns (alsfrs_r_total) and subject columns (group, onset_site)",
        ),
        (
            ["subject_id", "visit_date", "alsfrs_r_total"],
            "visits",
            "visit columns (visit_date, alsfrs_r_total) but no subject columns "
            "(group, sex, onset_site, ...)",
        ),
        (
            ["subject_id", "alsfrs_r_q5a", "alsfrs_r_q5b"],
            "visits",
            "visit columns (alsfrs_r_q5a, alsfrs_r_q5b) but no subject columns "
            "(group, sex, onset_site, ...)",
        ),
        (
            ["subject_id", "session", "fa_cst_left"],
            "imaging",
            "imaging columns (session, fa_cst_left)",
        ),
        (
            ["subject_id", "group"],
            "subjects",
            "subject columns (group) and no visit or imaging columns",
        ),
        (
            ["patient", "dose"],
            "subjects",
            "no visit, subject or imaging column of the data dictionary",
        ),
    ],
)
def test_guess_kind_says_why(columns, kind, why):
    from alsprog.data._read import guess_kind

    assert guess_kind(columns) == (kind, why)


def test_read_table_guesses_after_the_mapping(tmp_path):
    path = tmp_path / "clinic.csv"
    path.write_text(
        "patient,visit_month,alsfrs_r_total,group\nP1,0,40,als\nP1,3,37,als\n"
    )
    table, kind = read_table(
        path, rename={"patient": "subject_id", "visit_month": "months"}
    )
    assert kind == "long"
    assert table["alsfrs_r_total"].tolist() == [40.0, 37.0]
