"""Edge and branch tests of table validation and plausibility that kill the mutants the
main tests let survive (issue 20).

Every limit below is the data dictionary's declared one (``plausibility`` rules of
``data_dictionary/long_format.schema.json``): a rule's points are compared in months
(``DAYS_PER_MONTH = 30.4375`` days a month when both are dates) and a problem is
reported only when the gap is beyond the rule's ``toleranceMonths``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from alsprog.data._context import TableContext, attach_source
from alsprog.data._dictionary import load_dictionary
from alsprog.data._plausibility import check_plausibility, resolve_today
from alsprog.data._validate import (
    check_constant_within_subject,
    check_duplicates,
    check_rename,
    rename_columns,
    rename_problems,
    validate,
)
from alsprog.errors import DataValidationError

TODAY = "2026-01-01"


def _problems(df: pd.DataFrame, **kw) -> list[dict]:
    """The problems ``validate`` raises for ``df`` (``[]`` when it passes)."""
    try:
        validate(df, today=TODAY, **kw)
    except DataValidationError as e:
        return e.problems.to_dict("records")
    return []


def _table(**cols) -> pd.DataFrame:
    """A long table of subject P1 (one row per value of each column)."""
    n = max(len(v) for v in cols.values())
    return pd.DataFrame({"subject_id": ["P1"] * n, **cols})


# ------------------------------------------------------------------- resolve_today
@pytest.mark.parametrize(
    "today",
    [
        dt.date(2024, 5, 1),
        dt.datetime(2024, 5, 1, 10, 30),
        np.datetime64("2024-05-01T10:30"),
        pd.Timestamp("2024-05-01 23:59"),
        # an aware time: its own wall-clock date, made naive
        pd.Timestamp("2024-05-01 23:30", tz="America/New_York"),
        "2024-05-01",
        "  2024-05-01\n",
    ],
)
def test_resolve_today_is_a_naive_midnight(today):
    got = resolve_today(today)
    assert isinstance(got, pd.Timestamp)
    assert got.tzinfo is None
    assert (got.year, got.month, got.day) == (2024, 5, 1)
    assert (got.hour, got.minute, got.second, got.nanosecond) == (0, 0, 0, 0)
    assert got == pd.Timestamp("2024-05-01")


def test_resolve_today_defaults_to_the_current_date():
    before = pd.Timestamp(dt.date.today())
    got = resolve_today()
    assert got.tzinfo is None
    assert got in (before, before + pd.Timedelta(days=1))  # midnight may pass
    assert got == got.normalize()


@pytest.mark.parametrize("today", [pd.NaT, np.datetime64("NaT")])
def test_resolve_today_refuses_nat(today):
    with pytest.raises(ValueError, match=r"^`today` must be a date; got NaT\.$"):
        resolve_today(today)


@pytest.mark.parametrize("today", ["2024-5-1", "01/05/2024", "", "2024-02-30"])
def test_resolve_today_refuses_a_bad_string(today):
    with pytest.raises(ValueError) as info:
        resolve_today(today)
    assert str(info.value) == (
        f"`today` must be a date or 'YYYY-MM-DD'; got {today!r}."
    )


@pytest.mark.parametrize("today, name", [(5, "int"), (2024.5, "float"), ([], "list")])
def test_resolve_today_refuses_other_types(today, name):
    with pytest.raises(TypeError) as info:
        resolve_today(today)
    assert str(info.value) == (
        f"`today` must be a datetime.date, a 'YYYY-MM-DD' string or None; got {name}."
    )


# ----------------------------------------------------- plausibility rules at the edge
HINT_FUTURE = (
    "a date after today has not happened yet: check the year and the date format"
)


def _one(df: pd.DataFrame) -> dict:
    probs = _problems(df)
    assert len(probs) == 1, probs
    return probs[0]


def test_future_date_a_visit_on_today_passes_the_next_day_does_not():
    # rule future_date: visit <= today, 0 months' tolerance
    assert _problems(_table(visit_date=["2025-06-01", TODAY])) == []
    p = _one(_table(visit_date=["2025-06-01", "2026-01-02"]))
    assert p == {
        "source": "long-format table",
        "line": 1,
        "subject_id": "P1",
        "column": "visit_date",
        "value": "2026-01-02",
        "rule": "future_date",
        "message": f"visit on 2026-01-02 is after today (2026-01-01); {HINT_FUTURE}",
    }


def test_future_date_of_onset_and_diagnosis_each_reported():
    df = _table(
        months=[0.0],
        visit_date=["2026-01-02"],
        onset_date=["2026-01-03"],
        diagnostic_delay_months=[1.0],
    )
    got = sorted(
        (p["rule"], p["column"], p["value"], p["message"]) for p in _problems(df)
    )
    # diagnosis: 1 month (30.4375 days) after onset 2026-01-03 is 2026-02-02 (+ hours)
    assert got == [
        (
            "before_onset",
            "visit_date",
            "2026-01-02",
            "visit on 2026-01-02 is 0.0 months before symptom onset (onset "
            "2026-01-03); check onset_date / onset_months_before_baseline and the "
            "visit date",
        ),
        (
            "future_date",
            "diagnostic_delay_months",
            1.0,
            "diagnosis 1 months after onset (about 2026-02-02) is after today "
            f"(2026-01-01); {HINT_FUTURE}",
        ),
        (
            "future_date",
            "onset_date",
            "2026-01-03",
            f"onset 2026-01-03 is after today (2026-01-01); {HINT_FUTURE}",
        ),
        (
            "future_date",
            "visit_date",
            "2026-01-02",
            f"visit on 2026-01-02 is after today (2026-01-01); {HINT_FUTURE}",
        ),
    ]


def test_visits_without_dates_are_never_after_today():
    # months alone give no date: nothing to compare with today, at any month
    assert _problems(_table(months=[0.0, 1440.0])) == []


def test_before_onset_onset_on_the_visit_day_passes_a_later_onset_does_not():
    # rule before_onset: onset <= visit, 0 months' tolerance; 30 days = 0.99 months
    ok = _table(visit_date=["2024-01-01", "2024-03-01"], onset_date=["2024-01-01"] * 2)
    assert _problems(ok) == []
    p = _one(
        _table(visit_date=["2024-01-01", "2024-03-01"], onset_date=["2024-01-31"] * 2)
    )
    assert p == {
        "source": "long-format table",
        "line": 0,
        "subject_id": "P1",
        "column": "visit_date",
        "value": "2024-01-01",
        "rule": "before_onset",
        "message": "visit on 2024-01-01 is 1.0 months before symptom onset (onset "
        "2024-01-31); check onset_date / onset_months_before_baseline and the visit "
        "date",
    }


@pytest.mark.parametrize("before", [24.0, 23.0, 0.0])
def test_onset_before_birth_within_12_months_passes(before):
    # age 1 at month 0: birth 12 months before the first visit; onset 24 months
    # before it is 12 months before birth, the rule's tolerance
    assert (
        _problems(
            _table(months=[0.0], age=[1.0], onset_months_before_baseline=[before])
        )
        == []
    )


def test_onset_before_birth_beyond_12_months_is_reported_at_the_age():
    p = _one(_table(months=[0.0], age=[1.0], onset_months_before_baseline=[25.0]))
    assert p == {
        "source": "long-format table",
        "line": 0,
        "subject_id": "P1",
        "column": "age",
        "value": 1.0,
        "rule": "onset_before_birth",
        "message": "onset 25 months before the first visit is 13.0 months before "
        "birth (age 1 at month 0.0); check the ages and onset_date / "
        "onset_months_before_baseline",
    }


HINT_AGES = (
    "age_at_baseline − age_at_onset must match the time from onset to the first visit"
)


@pytest.mark.parametrize(
    "at_onset, before, gap",
    [
        (59.0, 24.0, None),  # 12 months by ages, 24 by months: 12, at the tolerance
        (59.0, 0.0, None),  # 12 months the other way
        (59.0, 25.0, "13.0"),
        (58.0, 11.0, "13.0"),  # ages say 24 months, months 11: |11 - 24| = 13
        (60.0, 12.5, "12.5"),
    ],
)
def test_ages_disagree_with_onset_beyond_12_months(at_onset, before, gap):
    df = _table(
        months=[0.0, 1.0],
        age_at_baseline=[60.0] * 2,
        age_at_onset=[at_onset] * 2,
        onset_months_before_baseline=[before] * 2,
    )
    probs = [p for p in _problems(df) if p["rule"] == "ages_disagree_with_onset"]
    if gap is None:
        assert _problems(df) == []
        return
    assert probs == [
        {
            "source": "long-format table",
            "line": 0,
            "subject_id": "P1",
            "column": "age_at_onset",
            "value": at_onset,
            "rule": "ages_disagree_with_onset",
            "message": f"onset at age {at_onset:g} (age_at_onset; age_at_baseline 60) "
            f"disagrees with onset {before:g} months before the first visit by {gap} "
            f"months; {HINT_AGES}",
        }
    ]


def test_onset_columns_disagree_beyond_one_month():
    # 30 days = 0.986 months passes, 31 days = 1.018 months does not
    ok = _table(
        visit_date=["2024-01-01"],
        onset_months_before_baseline=[0.0],
        onset_date=["2023-12-02"],
    )
    assert _problems(ok) == []
    p = _one(
        _table(
            visit_date=["2024-01-01"],
            onset_months_before_baseline=[0.0],
            onset_date=["2023-12-01"],
        )
    )
    assert p == {
        "source": "long-format table",
        "line": 0,
        "subject_id": "P1",
        "column": "onset_months_before_baseline",
        "value": 0.0,
        "rule": "onset_columns_disagree",
        "message": "onset 0 months before the first visit disagrees with onset "
        "2023-12-01 by 1.0 months; onset_date and onset_months_before_baseline "
        "describe the same onset: give one, or make them agree",
    }


@pytest.mark.parametrize(
    "months, age, ok",
    [
        ([0.0], [120.0], True),  # a single visit at 120: 1440 months, the limit
        ([0.0, 12.0], [119.0, 120.0], True),  # 119 + 12 months = 1440
        ([0.0, 12.0625], [119.0, 120.0], False),
    ],
)
def test_age_above_limit_at_120_years(months, age, ok):
    probs = _problems(_table(months=months, age=age))
    if ok:
        assert probs == []
    else:
        assert probs == [
            {
                "source": "long-format table",
                "line": 0,
                "subject_id": "P1",
                "column": "age",
                "value": 119.0,
                "rule": "age_above_limit",
                "message": "the last visit at month 12.1, row 1 is at age 120.0, "
                "above 120; check the ages and the visit dates",
            }
        ]


def test_age_above_limit_names_the_age_and_the_years():
    p = _one(_table(months=[0.0, 12.0], age_at_baseline=[120.0] * 2))
    assert p == {
        "source": "long-format table",
        "line": 0,
        "subject_id": "P1",
        "column": "age_at_baseline",
        "value": 120.0,
        "rule": "age_above_limit",
        "message": "the last visit at month 12.0, row 1 is at age 121.0, above 120; "
        "check the ages and the visit dates",
    }


HINT_EVENT = (
    "death, tracheostomy or last contact cannot precede a visit: check "
    "death_or_tracheostomy_months (months from the first visit) and the visit dates"
)


@pytest.mark.parametrize("observed", [True, False])
def test_event_before_visit_tolerates_005_months(observed):
    # last visit 0.05 months after the event: at the tolerance; 0.0625 beyond it
    ok = _table(
        months=[0.0, 0.05],
        death_or_tracheostomy_months=[0.0] * 2,
        event_observed=[observed] * 2,
    )
    assert _problems(ok) == []
    p = _one(
        _table(
            months=[0.0, 0.0625],
            death_or_tracheostomy_months=[0.0] * 2,
            event_observed=[observed] * 2,
        )
    )
    what = "death or tracheostomy" if observed else "last contact (censored)"
    assert p == {
        "source": "long-format table",
        "line": 0,
        "subject_id": "P1",
        "column": "death_or_tracheostomy_months",
        "value": 0.0,
        "rule": "event_before_visit",
        "message": f"{what} at month 0.0 is 0.1 months before the last visit at "
        f"month 0.1, row 1; {HINT_EVENT}",
    }


@pytest.mark.parametrize(
    "delay, observed, bad",
    [
        (0.05, True, False),  # diagnosis 0.05 months after death: the tolerance
        (0.0625, True, True),
        (0.0625, False, False),  # last contact, not death: no rule
    ],
)
def test_diagnosis_after_death_tolerates_005_months(delay, observed, bad):
    df = _table(
        months=[0.0],
        onset_months_before_baseline=[0.0],
        diagnostic_delay_months=[delay],
        death_or_tracheostomy_months=[0.0],
        event_observed=[observed],
    )
    probs = _problems(df)
    if not bad:
        assert probs == []
        return
    assert probs == [
        {
            "source": "long-format table",
            "line": 0,
            "subject_id": "P1",
            "column": "diagnostic_delay_months",
            "value": 0.0625,
            "rule": "diagnosis_after_death",
            "message": "diagnosis 0.0625 months after onset is 0.1 months after death "
            "or tracheostomy at month 0.0; check diagnostic_delay_months, the onset "
            "and death_or_tracheostomy_months",
        }
    ]


@pytest.mark.parametrize("day, bad", [(1.0, False), (2.0, False), (3.0, True)])
def test_scan_after_death_tolerates_005_months(day, bad):
    # death on day 1; 0.05 months = 1.52 days: day 2 passes, day 3 does not
    df = _table(
        visit_day=[0],
        acquisition_day=[day],
        death_or_tracheostomy_months=[1 / 30.4375],
        event_observed=[True],
    )
    probs = _problems(df)
    if not bad:
        assert probs == []
        return
    assert probs == [
        {
            "source": "long-format table",
            "line": 0,
            "subject_id": "P1",
            "column": "acquisition_day",
            "value": 3.0,
            "rule": "scan_after_death",
            "message": "imaging session '' on day 3 is 0.1 months after death or "
            "tracheostomy at month 0.0; check the acquisition date and "
            "death_or_tracheostomy_months",
        }
    ]


def test_scan_after_death_by_date_names_the_other_row():
    df = _table(
        visit_date=["2024-01-01", "2024-01-15"],
        acquisition_date=["2024-01-01", "2024-03-01"],
        session=["a", "b"],
        death_or_tracheostomy_months=[1.0] * 2,
        event_observed=[True] * 2,
    )
    probs = [p for p in _problems(df) if p["rule"] == "scan_after_death"]
    # death 1 month (30.4375 days) after 2024-01-01: 2024-01-31; the scan 30 days
    # later is 0.99 months after it
    assert probs == [
        {
            "source": "long-format table",
            "line": 1,
            "subject_id": "P1",
            "column": "acquisition_date",
            "value": "2024-03-01",
            "rule": "scan_after_death",
            "message": "imaging session 'b' on 2024-03-01 is 1.0 months after death "
            "or tracheostomy at month 1.0 (about 2024-01-31), row 0; check the "
            "acquisition date and death_or_tracheostomy_months",
        }
    ]


@pytest.mark.parametrize("at_onset, bad", [(60.0, False), (61.0, True)])
def test_onset_age_after_baseline_age(at_onset, bad):
    probs = _problems(
        _table(months=[0.0], age_at_baseline=[60.0], age_at_onset=[at_onset])
    )
    if not bad:
        assert probs == []
        return
    assert probs == [
        {
            "source": "long-format table",
            "line": 0,
            "subject_id": "P1",
            "column": "age_at_onset",
            "value": 61.0,
            "rule": "onset_age_after_baseline_age",
            "message": "onset at age 61 (age_at_onset; age_at_baseline 60) is after the "
            "first visit (age 60); age_at_onset must not exceed age_at_baseline",
        }
    ]


# ------------------------------------------------------------------ column mappings
def test_rename_problems_each_kind_named():
    got = rename_problems(
        {
            "": "subject_id",
            "  ": "months",
            3: "months",
            "a": "",
            "b": None,
            "c": "c",
            "d": "zzzzqqq",  # close to nothing
            "e": "subj_id",  # close by difflib (ratio >= 0.6) only
            "g": "ALSFRS_R_TOTAL",  # the dictionary's name in another case
            "f": "subject_id",
            "h": "subject_id",  # the second one mapped to subject_id
            "i": "fa_new_region",  # an imaging pattern name
            "j": "visit_date",
        }
    )
    assert got == [
        "'': the old name must be a non-empty string",
        "'  ': the old name must be a non-empty string",
        "3: the old name must be a non-empty string",
        "'a' -> '': the new name must be a non-empty string",
        "'b' -> None: the new name must be a non-empty string",
        "'c' -> 'c': renames the column to itself",
        "'d' -> 'zzzzqqq': 'zzzzqqq' is not a column of the data dictionary",
        "'e' -> 'subj_id': 'subj_id' is not a column of the data dictionary; did you "
        "mean 'subject_id'?",
        "'g' -> 'ALSFRS_R_TOTAL': 'ALSFRS_R_TOTAL' is not a column of the data "
        "dictionary; did you mean 'alsfrs_r_total'?",
        "'f' and 'h' are both renamed to 'subject_id'; keep one",
    ]


def test_rename_problems_blank_new_name_and_fine_mapping():
    assert rename_problems({"x": "   "}) == [
        "'x' -> '   ': the new name must be a non-empty string"
    ]
    assert rename_problems({}) == []
    assert rename_problems({"a": "months", "b": "visit_date"}) == []


@pytest.mark.parametrize("bad", [[("a", "b")], "a=b", None])
def test_rename_problems_not_a_mapping(bad):
    assert rename_problems(bad) == [
        f"must be a mapping of old to new column names; got {bad!r}"
    ]


def test_check_rename_messages_and_copy():
    with pytest.raises(ValueError) as info:
        check_rename({"a": "zzzzqqq", "b": "b"})
    assert str(info.value) == (
        "`rename`: 'a' -> 'zzzzqqq': 'zzzzqqq' is not a column of the data "
        "dictionary; 'b' -> 'b': renames the column to itself."
    )
    with pytest.raises(ValueError) as info:
        check_rename({"a": "subj_id"}, what="--rename")
    assert str(info.value) == (
        "--rename: 'a' -> 'subj_id': 'subj_id' is not a column of the data "
        "dictionary; did you mean 'subject_id'?"
    )
    assert check_rename(None) == {}
    given = {"p": "subject_id"}
    got = check_rename(given)
    assert got == given and got is not given and type(got) is dict


def test_rename_columns_renames_present_columns_and_keeps_attrs():
    df = pd.DataFrame({"patient": ["P1"], "t": [0.0], "other": [1]})
    df.attrs["note"] = "kept"
    out = rename_columns(
        df, {"patient": "subject_id", "t": "months", "x": "age"}, "t.csv"
    )
    assert list(out.columns) == ["subject_id", "months", "other"]
    assert out.attrs == {"note": "kept"}
    assert list(df.columns) == ["patient", "t", "other"]  # the input is untouched
    assert rename_columns(df, {"x": "age"}, "t.csv") is df  # nothing to rename
    assert rename_columns(df, None, "t.csv") is df


def test_rename_columns_swap_is_no_clash():
    df = pd.DataFrame({"months": [1.0], "age": [2.0]})
    out = rename_columns(df, {"months": "age", "age": "months"}, "t.csv")
    assert list(out.columns) == ["age", "months"]
    assert out["age"].tolist() == [1.0]


def test_rename_columns_clash_names_both_columns():
    df = pd.DataFrame(
        {"patient": ["P1"], "subject_id": ["P2"], "t": [0.0], "months": [1.0]}
    )
    with pytest.raises(DataValidationError) as info:
        rename_columns(df, {"patient": "subject_id", "t": "months"}, "visits.csv")
    got = info.value.problems.to_dict("records")
    assert str(info.value).splitlines()[0] == "visits.csv: 2 problems"
    assert got == [
        {
            "source": "visits.csv",
            "line": None,
            "subject_id": None,
            "column": old,
            "value": old,
            "rule": "rename",
            "message": f"column {old!r} is renamed to {new!r} (`rename`), but the "
            f"table has {new!r} already: drop one of them or the mapping",
        }
        for old, new in (("patient", "subject_id"), ("t", "months"))
    ]


# ---------------------------------------------------------------------- row checks
def test_duplicate_visit_times_point_at_the_first_row():
    df = pd.DataFrame(
        {"subject_id": ["P1", "P1", "P2", "P1", "P1"], "months": [0, 3, 0, 3, 3]}
    )
    got = _problems(df)
    assert got == [
        {
            "source": "long-format table",
            "line": line,
            "subject_id": "P1",
            "column": "months",
            "value": 3.0,
            "rule": "duplicate",
            "message": "duplicate visit time (subject_id='P1', months=3); first seen "
            "at row 1",
        }
        for line in (3, 4)
    ]


def test_duplicates_by_date_come_first_and_missing_keys_are_no_duplicates():
    df = pd.DataFrame(
        {
            "subject_id": ["P1", "P1", "P1", "P1"],
            "months": [0.0, 0.0, np.nan, np.nan],
            "visit_date": ["2024-01-01", "2024-01-01", None, None],
            "visit_day": [0.0, 0.0, np.nan, np.nan],
        },
        index=[10, 11, 12, 13],
    )
    got = [p for p in _problems(df) if p["rule"] == "duplicate"]
    assert got == [
        {
            "source": "long-format table",
            "line": 11,
            "subject_id": "P1",
            "column": "visit_date",
            "value": pd.Timestamp("2024-01-01"),
            "rule": "duplicate",
            "message": "duplicate visit date (subject_id='P1', visit_date='2024-01-01'); "
            "first seen at row 10",
        }
    ]


def test_duplicate_visit_days():
    df = pd.DataFrame(
        {"subject_id": ["P1", "P1"], "visit_day": [5, 5], "months": [0.0, 1.0]}
    )
    assert _problems(df) == [
        {
            "source": "long-format table",
            "line": 1,
            "subject_id": "P1",
            "column": "visit_day",
            "value": 5.0,
            "rule": "duplicate",
            "message": "duplicate visit day (subject_id='P1', visit_day=5); first seen "
            "at row 0",
        }
    ]


def test_without_subject_id_visit_keys_are_not_checked():
    df = pd.DataFrame({"patient": ["P1", "P1"], "months": [0.0, 0.0]})
    out = validate(df, columns=["patient"], today=TODAY)
    assert out["months"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "values, line, shown, value",
    [
        ([None, "male", "female"], 2, "'male', 'female'", "male"),
        (["female", None, "male"], 2, "'female', 'male'", "female"),
        (["male", "female", "male"], 1, "'male', 'female'", "male"),
    ],
)
def test_subject_level_value_varies(values, line, shown, value):
    df = pd.DataFrame(
        {
            "subject_id": ["P2", "P1", "P1", "P1"],
            "months": [0.0, 0.0, 1.0, 2.0],
            "sex": ["male", *values],
        }
    )
    assert _problems(df) == [
        {
            "source": "long-format table",
            "line": line + 1,
            "subject_id": "P1",
            "column": "sex",
            "value": value,
            "rule": "constant",
            "message": f"subject-level value varies within the subject ({shown})",
        }
    ]


def test_subject_level_numbers_show_three_values_at_most():
    df = _table(months=[0.0, 1.0, 2.0, 3.0], age_at_baseline=[60.0, 61.0, 62.0, 63.0])
    assert _problems(df) == [
        {
            "source": "long-format table",
            "line": 1,
            "subject_id": "P1",
            "column": "age_at_baseline",
            "value": 60.0,
            "rule": "constant",
            "message": "subject-level value varies within the subject (60, 61, 62)",
        }
    ]


def test_visit_level_columns_may_vary():
    df = _table(months=[0.0, 1.0], age=[60.0, 60.1], alsfrs_r_total=[40.0, 38.0])
    assert _problems(df) == []


# ------------------------------------------------------------------------- validate
def test_validate_refuses_a_non_frame():
    with pytest.raises(TypeError) as info:
        validate([1, 2])
    assert str(info.value) == "`df` must be a pandas DataFrame; got list."


def test_validate_names_the_source():
    df = _table(months=[0.0, 3.0], alsfrs_r_total=[40, 52])
    with pytest.raises(DataValidationError) as info:
        validate(df, source="my.csv", today=TODAY)
    assert str(info.value).splitlines()[0] == "my.csv: 1 problem"
    p = info.value.problems.to_dict("records")
    assert p == [
        {
            "source": "my.csv",
            "line": 1,
            "subject_id": "P1",
            "column": "alsfrs_r_total",
            "value": 52.0,
            "rule": "maximum",
            "message": "52 is outside 0-48 (the ALSFRS-R total is 0-48)",
        }
    ]


def test_validate_with_columns_checks_those_and_the_keys_only():
    df = _table(months=[0.0, 3.0], alsfrs_r_total=[40, 52], sex=["x", "male"])
    out = validate(df, columns=["months"], today=TODAY)  # neither bad column checked
    assert list(out.columns) == ["subject_id", "months"]
    probs = [
        (p["column"], p["rule"]) for p in _problems(df, columns=["alsfrs_r_total"])
    ]
    assert probs == [("alsfrs_r_total", "maximum")]
    # the row keys are always checked
    dup = _table(months=[3.0, 3.0], alsfrs_r_total=[40, 41])
    assert [p["rule"] for p in _problems(dup, columns=["alsfrs_r_total"])] == [
        "duplicate"
    ]


def test_validate_coerces_a_copy_and_leaves_the_input():
    df = _table(
        months=[0, 3], visit_date=["2024-01-01", "2024-04-01"], alsfrs_r_total=[40, 38]
    )
    kept = df.copy(deep=True)
    out = validate(df, today=TODAY)
    pd.testing.assert_frame_equal(df, kept)
    assert out is not df
    assert out["months"].dtype == np.float64
    assert out["visit_date"].tolist() == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-04-01"),
    ]
    assert out["alsfrs_r_total"].tolist() == [40.0, 38.0]


def test_validate_uses_the_given_today():
    df = _table(visit_date=["2025-06-01", "2025-07-01"])
    validate(df, today="2025-07-01")
    with pytest.raises(
        DataValidationError, match=r"visit on 2025-07-01 is after today \(2025-06-30\)"
    ):
        validate(df, today="2025-06-30")


# ------------------------------------------------------- plausibility across tables
def _ctx(name: str, lines: list[int]) -> TableContext:
    return TableContext(name, name, np.array(lines))


def _visits_subjects():
    v = pd.DataFrame(
        {
            "subject_id": ["P1", "P1", "P2"],
            "visit_date": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-01-01"]),
        }
    )
    s = pd.DataFrame(
        {
            "subject_id": ["P2", "P1"],
            "onset_date": pd.to_datetime(["2020-01-01", "2024-02-01"]),
            "death_or_tracheostomy_months": [np.nan, 1.0],
            "event_observed": pd.array([pd.NA, True], dtype="boolean"),
        }
    )
    return (v, _ctx("visits.csv", [2, 3, 4])), (s, _ctx("subjects.csv", [2, 3]))


def test_problems_across_tables_name_the_other_file_and_line():
    visits, subjects = _visits_subjects()
    got = [
        p.__dict__
        for p in check_plausibility(visits=visits, subjects=subjects, today=TODAY)
    ]
    # onset 2024-02-01 is 31 days = 1.02 months after the visit of 2024-01-01; death
    # 1 month (30.4375 days) after the first visit, 2024-01-31, is 30 days = 0.99
    # months before the last visit
    assert got == [
        {
            "message": "visit on 2024-01-01 is 1.0 months before symptom onset (onset "
            "2024-02-01, subjects.csv line 3); check onset_date / "
            "onset_months_before_baseline and the visit date",
            "rule": "before_onset",
            "source": "visits.csv",
            "line": 2,
            "subject_id": "P1",
            "column": "visit_date",
            "value": "2024-01-01",
            "line_kind": "line",
        },
        {
            "message": "death or tracheostomy at month 1.0 (about 2024-01-31) is 1.0 "
            "months before the last visit on 2024-03-01, visits.csv line 3; "
            f"{HINT_EVENT}",
            "rule": "event_before_visit",
            "source": "subjects.csv",
            "line": 3,
            "subject_id": "P1",
            "column": "death_or_tracheostomy_months",
            "value": 1.0,
            "line_kind": "line",
        },
    ]


def test_scan_after_death_across_tables():
    visits, subjects = _visits_subjects()
    im = pd.DataFrame(
        {
            "subject_id": ["P1", "P1"],
            "session": ["s1", "s2"],
            "acquisition_date": pd.to_datetime(["2024-01-31", "2024-02-02"]),
        }
    )
    got = check_plausibility(
        visits=visits,
        subjects=subjects,
        imaging=(im, _ctx("imaging.csv", [2, 3])),
        today=TODAY,
    )
    # death on 2024-01-31 (+ 10.5 hours): s1 on that day passes, s2 is 1.56 days
    # = 0.051 months later, just beyond the 0.05 months' tolerance
    scans = [p.__dict__ for p in got if p.rule == "scan_after_death"]
    assert scans == [
        {
            "message": "imaging session 's2' on 2024-02-02 is 0.1 months after death or "
            "tracheostomy at month 1.0 (about 2024-01-31), subjects.csv line 3; check "
            "the acquisition date and death_or_tracheostomy_months",
            "rule": "scan_after_death",
            "source": "imaging.csv",
            "line": 3,
            "subject_id": "P1",
            "column": "acquisition_date",
            "value": "2024-02-02",
            "line_kind": "line",
        }
    ]


def test_imaging_alone_checks_its_dates_against_today():
    im = pd.DataFrame(
        {
            "subject_id": ["P1", "P2"],
            "session": ["s1", "s1"],
            "acquisition_date": pd.to_datetime(["2026-01-02", TODAY]),
        }
    )
    got = [
        p.__dict__
        for p in check_plausibility(
            imaging=(im, _ctx("imaging.csv", [5, 6])), today=TODAY
        )
    ]
    assert got == [
        {
            "message": "imaging session 's1' on 2026-01-02 is after today (2026-01-01); "
            f"{HINT_FUTURE}",
            "rule": "future_date",
            "source": "imaging.csv",
            "line": 5,
            "subject_id": "P1",
            "column": "acquisition_date",
            "value": "2026-01-02",
            "line_kind": "line",
        }
    ]


def test_keys_and_months_alone_are_not_checked():
    v = pd.DataFrame({"subject_id": ["P1", "P1"], "months": [0.0, 2000.0]})
    s = pd.DataFrame({"subject_id": ["P1"]})
    assert (
        check_plausibility(
            visits=(v, _ctx("v.csv", [2, 3])),
            subjects=(s, _ctx("s.csv", [2])),
            today=TODAY,
        )
        == []
    )
    assert check_plausibility(today=TODAY) == []


def test_gap_by_dates_when_one_point_has_no_month():
    # the first visit has no date, so onset_date has no month: the gap is counted in
    # days, 452 / 30.4375 = 14.850 months ("14.9"; 14.8 were a day 86401 s long)
    df = _table(
        months=[0.0, 1.0],
        visit_date=[None, "2024-02-01"],
        onset_date=["2025-04-28"] * 2,  # 2024-02-01 + 452 days
    )
    assert _problems(df) == [
        {
            "source": "long-format table",
            "line": 1,
            "subject_id": "P1",
            "column": "visit_date",
            "value": "2024-02-01",
            "rule": "before_onset",
            "message": "visit on 2024-02-01 is 14.9 months before symptom onset (onset "
            "2025-04-28, row 0); check onset_date / onset_months_before_baseline and "
            "the visit date",
        }
    ]


def test_a_missing_subject_level_value_is_no_variation():
    df = pd.DataFrame(
        {
            "subject_id": ["P1", "P1", "P2", "P2"],
            "months": [0.0, 1.0, 0.0, 1.0],
            "sex": [None, "male", "female", None],
            "age_at_baseline": [np.nan, 60.0, np.nan, np.nan],
        }
    )
    assert _problems(df) == []


def test_varying_subjects_reported_in_table_order():
    df = pd.DataFrame(
        {
            "subject_id": ["P2", "P2", "P1", "P1"],
            "months": [0.0, 1.0, 0.0, 1.0],
            "sex": ["male", "female", "female", "male"],
        }
    )
    got = [(p["line"], p["subject_id"], p["value"]) for p in _problems(df)]
    assert got == [(1, "P2", "male"), (3, "P1", "female")]


def test_with_columns_no_time_column_is_required():
    # a model's own columns: the dictionary's "one of visit_date, visit_day, months"
    # applies to the whole table only
    df = pd.DataFrame({"subject_id": ["P1", "P1"], "alsfrs_r_total": [40.0, 38.0]})
    out = validate(df, columns=["alsfrs_r_total"], today=TODAY)
    assert out["alsfrs_r_total"].tolist() == [40.0, 38.0]
    assert _problems(df) == [
        {
            "source": "long-format table",
            "line": None,
            "subject_id": None,
            "column": "visit_date",
            "value": None,
            "rule": "required_column",
            "message": "needs one of the columns 'visit_date', 'visit_day', 'months'",
        }
    ]


def test_declared_total_against_its_items_names_row_and_subject():
    items = {f"alsfrs_r_q{i}": [4.0, 3.0] for i in range(1, 13)}
    df = pd.DataFrame(
        {
            "subject_id": ["P1", "P2"],
            "months": [0.0, 0.0],
            **items,
            "alsfrs_r_total": [48.0, 37.0],
        }
    )
    # P2: 12 items of 3 sum to 36
    assert _problems(df, source="v.csv") == [
        {
            "source": "v.csv",
            "line": 1,
            "subject_id": "P2",
            "column": "alsfrs_r_total",
            "value": 37.0,
            "rule": "sum",
            "message": "declared 37 differs from the sum of items alsfrs_r_q1..q12 = 36",
        }
    ]


def test_check_duplicates_on_three_keys_and_missing_keys():
    df = pd.DataFrame(
        {
            "subject_id": ["P1", "P1", "P1", "P2", "P1"],
            "session": ["a", "a", "b", "a", "a"],
            "acquisition_date": pd.to_datetime(["2024-01-01"] * 4 + ["2024-02-01"]),
        }
    )
    ctx = _ctx("imaging.csv", [2, 3, 4, 5, 6])
    keys = ["subject_id", "session", "acquisition_date"]
    got = [p.__dict__ for p in check_duplicates(df, ctx, keys, "imaging session")]
    assert got == [
        {
            "message": "duplicate imaging session (subject_id='P1', session='a', "
            "acquisition_date='2024-01-01'); first seen at line 2",
            "rule": "duplicate",
            "source": "imaging.csv",
            "line": 3,
            "subject_id": "P1",
            "column": "acquisition_date",
            "value": pd.Timestamp("2024-01-01"),
            "line_kind": "line",
        }
    ]
    # keys the table lacks are left out; none left, or no rows: nothing to check
    one = check_duplicates(df, ctx, ["subject_id", "session", "nope"], "session")
    assert [(p.line, p.column, p.value) for p in one] == [
        (3, "session", "a"),
        (6, "session", "a"),
    ]
    assert check_duplicates(df, ctx, ["nope"], "x") == []
    assert check_duplicates(df.iloc[:0], ctx, keys, "x") == []


def test_validate_of_a_read_table_keeps_its_file_and_lines():
    df = _table(months=[0.0, 3.0], alsfrs_r_total=[40, 52])
    attach_source(df, "visits.csv", [2, 3])
    with pytest.raises(DataValidationError) as info:
        validate(df, source="renamed", today=TODAY)
    assert info.value.source == "renamed"
    assert str(info.value).splitlines() == [
        "renamed: 1 problem",
        "  visits.csv: line 3, subject P1, column alsfrs_r_total: 52 is outside 0-48 "
        "(the ALSFRS-R total is 0-48)",
    ]
    assert info.value.problems.to_dict("records") == [
        {
            "source": "visits.csv",
            "line": 3,
            "subject_id": "P1",
            "column": "alsfrs_r_total",
            "value": 52.0,
            "rule": "maximum",
            "message": "52 is outside 0-48 (the ALSFRS-R total is 0-48)",
        }
    ]


def test_validate_error_names_the_given_source():
    df = _table(months=[0.0, 3.0], alsfrs_r_total=[40, 52])
    with pytest.raises(DataValidationError) as info:
        validate(df, source="my.csv", today=TODAY)
    assert info.value.source == "my.csv"
    with pytest.raises(DataValidationError) as info:
        validate(df, today=TODAY)
    assert info.value.source == "long-format table"


def test_rename_problems_go_on_after_a_repeated_target():
    assert rename_problems({"f": "subject_id", "h": "subject_id", "k": "k"}) == [
        "'f' and 'h' are both renamed to 'subject_id'; keep one",
        "'k' -> 'k': renames the column to itself",
    ]


def test_rename_columns_error_names_the_table():
    df = pd.DataFrame({"patient": ["P1"], "subject_id": ["P2"]})
    with pytest.raises(DataValidationError) as info:
        rename_columns(df, {"patient": "subject_id"}, "visits.csv")
    assert info.value.source == "visits.csv"


def test_check_constant_within_subject_lists_subjects_in_table_order():
    df = pd.DataFrame(
        {
            "subject_id": ["P2", "P2", "P1", "P1"],
            "sex": ["male", "female", "female", "male"],
            "age": [60.0, 61.0, 50.0, 51.0],  # a visit-level column may vary
            5: [1, 2, 3, 4],  # not a dictionary name
        }
    )
    got = check_constant_within_subject(
        df, _ctx("t.csv", [2, 3, 4, 5]), load_dictionary()
    )
    assert [(p.line, p.subject_id, p.column, p.value) for p in got] == [
        (3, "P2", "sex", "male"),
        (5, "P1", "sex", "female"),
    ]
    assert (
        check_constant_within_subject(
            df.drop(columns="subject_id"),
            _ctx("t.csv", [2, 3, 4, 5]),
            load_dictionary(),
        )
        == []
    )
