"""Edge and branch tests that kill the mutants the main tests let survive (issue 20).

Expected values come from the ALSFRS-R rules (Cedarbaum 1999: twelve items scored 0-4,
domains bulbar q1-3, fine motor q4-6, gross motor q7-9, respiratory q10-12, total 0-48;
item 5 is 5a without or 5b with gastrostomy) and the ΔFS definition of Kimura et al.
2006, (48 - total at the first visit) / months from onset, worked out by hand here.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from tablefiles import ITEMS, VISITS_HEADER, visit_row, write_csv

from alsprog.data import delta_fs, read_visits, score_alsfrs_r, validate
from alsprog.data._context import TableContext
from alsprog.data._scoring import check_scores
from alsprog.errors import DataValidationError

NAN = math.nan
DOMAINS = {
    "alsfrs_r_bulbar": ITEMS[0:3],
    "alsfrs_r_fine_motor": ITEMS[3:6],
    "alsfrs_r_gross_motor": ITEMS[6:9],
    "alsfrs_r_respiratory": ITEMS[9:12],
}
SCORES = ["alsfrs_r_total", *DOMAINS]
Q5A, Q5B, Q5, FLAG = (
    "alsfrs_r_q5a",
    "alsfrs_r_q5b",
    "alsfrs_r_q5",
    "alsfrs_r_q5_gastrostomy",
)


def _frame(rows: list[list[float]], **extra) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=ITEMS, dtype=float)
    df.insert(0, "subject_id", [f"P{i}" for i in range(len(rows))])
    for k, v in extra.items():
        df[k] = v
    return df


def _without_q5(n: int, **extra) -> pd.DataFrame:
    """``n`` visits with items 4 everywhere and no q5 column, plus ``extra`` columns."""
    return _frame([[4.0] * 12] * n).drop(columns=Q5).assign(**extra)


def _problems(df: pd.DataFrame, **kw) -> list[tuple]:
    with pytest.raises(DataValidationError) as info:
        score_alsfrs_r(df, **kw)
    assert str(info.value).startswith("visits table: ")
    assert info.value.source == "visits table"
    return [
        (p.source, p.line, p.subject_id, p.column, p.value, p.rule, p.message)
        for p in info.value.problem_list
    ]


def _flags(s: pd.Series) -> list:
    return [None if v is pd.NA else bool(v) for v in s]


def _nan_list(s: pd.Series) -> list:
    return [None if np.isnan(v) else float(v) for v in s]


def _expected_scores(items: list[float]) -> dict[str, float]:
    """Domain and total sums, NaN when an item of the sum is missing (hand rule)."""
    out = {}
    for name, cols in DOMAINS.items():
        vals = [items[ITEMS.index(c)] for c in cols]
        out[name] = NAN if any(math.isnan(v) for v in vals) else sum(vals)
    out["alsfrs_r_total"] = NAN if any(math.isnan(v) for v in items) else sum(items)
    return out


# --- the q5a/q5b fold ---------------------------------------------------------------


def test_q5a_only_folds_into_q5_after_q4_with_flag_false():
    df = _without_q5(2, **{Q5A: [3.0, NAN]})
    out = score_alsfrs_r(df)
    assert list(out.columns) == [
        "subject_id",
        *ITEMS[:5],
        FLAG,
        *ITEMS[5:],
        *SCORES,
    ]
    assert _nan_list(out[Q5]) == [3.0, None]
    assert _flags(out[FLAG]) == [False, None]
    assert str(out[FLAG].dtype) == "boolean"
    # 11 items at 4 plus 5a = 3; the second visit has no item 5 at all
    assert out.loc[0, "alsfrs_r_total"] == 47
    assert out.loc[0, "alsfrs_r_fine_motor"] == 11
    assert np.isnan(out.loc[1, "alsfrs_r_total"])
    assert np.isnan(out.loc[1, "alsfrs_r_fine_motor"])
    assert out.loc[1, "alsfrs_r_bulbar"] == 12


def test_q5b_only_folds_into_q5_with_flag_true():
    out = score_alsfrs_r(_without_q5(1, **{Q5B: [2.0]}))
    assert Q5B not in out.columns and Q5A not in out.columns
    assert out.loc[0, Q5] == 2
    assert _flags(out[FLAG]) == [True]
    assert out.loc[0, "alsfrs_r_total"] == 46
    assert out.loc[0, "alsfrs_r_fine_motor"] == 10


def test_q5a_and_q5b_one_per_visit():
    df = _without_q5(3, **{Q5A: [1.0, NAN, NAN], Q5B: [NAN, 0.0, NAN]})
    out = score_alsfrs_r(df)
    assert _nan_list(out[Q5]) == [1.0, 0.0, None]
    assert _flags(out[FLAG]) == [False, True, None]
    assert _nan_list(out["alsfrs_r_total"]) == [45.0, 44.0, None]
    assert list(out.columns).index(Q5) == list(out.columns).index("alsfrs_r_q4") + 1


def test_q5a_and_q5b_strings_are_parsed_with_item_rules():
    df = _without_q5(4, **{Q5A: ["3", "x", "5", "NA"]})
    assert _problems(df) == [
        ("visits table", 1, "P1", Q5A, "x", "type", "'x' is not a number"),
        (
            "visits table",
            2,
            "P2",
            Q5A,
            5.0,
            "maximum",
            "5 is outside 0-4 (items are scored 0-4)",
        ),
    ]
    out = score_alsfrs_r(_without_q5(2, **{Q5B: ["3", "NA"]}))
    assert _nan_list(out[Q5]) == [3.0, None]
    assert _flags(out[FLAG]) == [True, None]


def test_problems_in_5a_5b_and_the_flag_are_all_reported():
    df = _without_q5(
        3,
        **{
            Q5A: ["x", NAN, NAN],
            Q5B: [NAN, 9.0, NAN],
            FLAG: ["true", "false", "sometimes"],
        },
    )
    assert [p[1:6] for p in _problems(df)] == [
        (0, "P0", Q5A, "x", "type"),
        (1, "P1", Q5B, 9.0, "maximum"),
        (2, "P2", FLAG, "sometimes", "type"),
    ]


def test_q5_item_problem_without_subject_column():
    df = _without_q5(2, **{Q5B: [NAN, 7.0]}).drop(columns="subject_id")
    df.index = [10, 11]
    assert _problems(df) == [
        (
            "visits table",
            11,
            None,
            Q5B,
            7.0,
            "maximum",
            "7 is outside 0-4 (items are scored 0-4)",
        )
    ]


def test_both_5a_and_5b_scored_is_one_problem_per_visit():
    df = _without_q5(3, **{Q5A: [4.0, 3.0, NAN], Q5B: [NAN, 2.0, 1.0]})
    df.index = [7, 8, 9]
    assert _problems(df) == [
        (
            "visits table",
            8,
            "P1",
            Q5B,
            2.0,
            "q5_variant",
            "both 5a (3) and 5b (2) are scored; exactly one may be",
        )
    ]


def test_q5_with_q5a_q5b_agreeing_is_kept_in_place():
    df = _frame([[4.0] * 12] * 4)
    df[Q5] = [3.0, 2.0, 1.0, NAN]
    df[Q5A] = [3.0, NAN, NAN, NAN]
    df[Q5B] = [NAN, 2.0, NAN, 0.0]
    out = score_alsfrs_r(df)
    # visit 2 scores neither 5a nor 5b: its q5 is kept; visit 3 takes 5b
    assert _nan_list(out[Q5]) == [3.0, 2.0, 1.0, 0.0]
    assert _flags(out[FLAG]) == [False, True, None, True]
    assert _nan_list(out["alsfrs_r_total"]) == [47.0, 46.0, 45.0, 44.0]
    assert list(out.columns) == ["subject_id", *ITEMS[:5], FLAG, *ITEMS[5:], *SCORES]


def test_q5_disagreeing_with_q5a_q5b_is_a_problem():
    df = _frame([[4.0] * 12] * 3)
    df[Q5] = [2.0, 1.0, 4.0]
    df[Q5A] = [3.0, NAN, NAN]
    df[Q5B] = [NAN, 1.0, NAN]
    assert _problems(df) == [
        (
            "visits table",
            0,
            "P0",
            Q5,
            2.0,
            "q5_variant",
            "alsfrs_r_q5 = 2 disagrees with 5a/5b = 3",
        )
    ]


def test_q5_disagreeing_with_q5b_names_the_5b_value():
    df = _frame([[4.0] * 12])
    df[Q5] = [4.0]
    df[Q5B] = [0.0]
    assert _problems(df) == [
        (
            "visits table",
            0,
            "P0",
            Q5,
            4.0,
            "q5_variant",
            "alsfrs_r_q5 = 4 disagrees with 5a/5b = 0",
        )
    ]


def test_both_scored_compares_q5_with_the_5b_score():
    # 5b (gastrostomy) is the score that counts when both are given
    df = _frame([[4.0] * 12] * 2)
    df[Q5] = [3.0, 4.0]
    df[Q5A] = [4.0, 4.0]
    df[Q5B] = [3.0, 3.0]
    both = "both 5a (4) and 5b (3) are scored; exactly one may be"
    assert _problems(df) == [
        ("visits table", 0, "P0", Q5B, 3.0, "q5_variant", both),
        ("visits table", 1, "P1", Q5B, 3.0, "q5_variant", both),
        (
            "visits table",
            1,
            "P1",
            Q5,
            4.0,
            "q5_variant",
            "alsfrs_r_q5 = 4 disagrees with 5a/5b = 3",
        ),
    ]


def test_bad_q5_next_to_q5a_q5b_is_reported_not_dropped():
    # bug fixed with this test: a q5 that is not a number was silently made missing
    # when the table also had 5a/5b columns
    df = _frame([[4.0] * 12] * 3).drop(columns=Q5)
    df[Q5] = ["x", "7", "2"]
    df[Q5A] = [NAN, 3.0, NAN]
    assert _problems(df) == [
        ("visits table", 0, "P0", Q5, "x", "type", "'x' is not a number"),
        (
            "visits table",
            1,
            "P1",
            Q5,
            7.0,
            "maximum",
            "7 is outside 0-4 (items are scored 0-4)",
        ),
    ]


def test_q5_as_nullable_integers_next_to_q5a():
    df = _frame([[4.0] * 12] * 3)
    df[Q5] = pd.array([3, None, 1], dtype="Int64")
    df[Q5A] = [3.0, 2.0, NAN]
    out = score_alsfrs_r(df)
    assert _nan_list(out[Q5]) == [3.0, 2.0, 1.0]
    assert _flags(out[FLAG]) == [False, False, None]
    assert out["alsfrs_r_total"].tolist() == [47.0, 46.0, 45.0]


def test_q5_is_moved_right_after_q4():
    cols = ["subject_id", *[c for c in ITEMS if c != Q5], Q5A]
    df = _frame([[4.0] * 12])[cols[:-1]].assign(site=["S1"], **{Q5A: [2.0]})
    out = score_alsfrs_r(df)
    assert list(out.columns) == [
        "subject_id",
        *ITEMS[:5],
        FLAG,
        *ITEMS[5:],
        "site",
        *SCORES,
    ]
    assert out.loc[0, "site"] == "S1"


def test_q5_columns_go_last_without_q4():
    df = _frame([[4.0] * 12]).drop(columns=["alsfrs_r_q4", Q5])
    df[Q5B] = [3.0]
    df["site"] = ["S1"]
    out = score_alsfrs_r(df)
    assert list(out.columns) == [
        "subject_id",
        *ITEMS[:3],
        *ITEMS[5:],
        "site",
        Q5,
        FLAG,
        *SCORES,
    ]
    assert out.loc[0, Q5] == 3
    assert _flags(out[FLAG]) == [True]
    assert out.loc[0, "alsfrs_r_bulbar"] == 12
    assert np.isnan(out.loc[0, "alsfrs_r_fine_motor"])
    assert np.isnan(out.loc[0, "alsfrs_r_total"])


def test_given_gastrostomy_flag_must_match_5a_or_5b():
    df = _without_q5(
        4,
        **{
            Q5A: [3.0, NAN, NAN, NAN],
            Q5B: [NAN, 2.0, NAN, NAN],
            FLAG: [True, False, None, True],
        },
    )
    msg = "alsfrs_r_q5_gastrostomy = {} disagrees with which of 5a/5b is scored"
    assert _problems(df) == [
        ("visits table", 0, "P0", FLAG, True, "q5_variant", msg.format("True")),
        ("visits table", 1, "P1", FLAG, False, "q5_variant", msg.format("False")),
    ]


def test_gastrostomy_flag_clash_in_a_column_without_gaps():
    df = _without_q5(2, **{Q5B: [NAN, 1.0], FLAG: [True, True]})
    # visit 0 scores neither variant: its flag stays as given
    assert _problems(df.assign(**{Q5A: [NAN, NAN], FLAG: [True, False]})) == [
        (
            "visits table",
            1,
            "P1",
            FLAG,
            False,
            "q5_variant",
            "alsfrs_r_q5_gastrostomy = False disagrees with which of 5a/5b is scored",
        )
    ]
    out = score_alsfrs_r(df)
    assert _flags(out[FLAG]) == [True, True]
    assert str(out[FLAG].dtype) == "boolean"


def test_given_gastrostomy_flag_agreeing_or_missing_is_completed():
    df = _without_q5(
        5,
        **{
            Q5A: [3.0, NAN, 2.0, NAN, NAN],
            Q5B: [NAN, 2.0, NAN, NAN, NAN],
            FLAG: ["false", "yes", "", "true", None],
        },
    )
    out = score_alsfrs_r(df)
    # scored visits take the flag from 5a/5b; the others keep what was given
    assert _flags(out[FLAG]) == [False, True, False, True, None]
    assert _nan_list(out[Q5]) == [3.0, 2.0, 2.0, None, None]
    assert list(out.columns)[5:7] == [Q5, FLAG]


def test_bad_gastrostomy_flag_names_its_subject(tmp_path):
    # bug fixed with this test: the flag's own problems did not name the subject
    df = _without_q5(2, **{Q5A: [NAN, 4.0], FLAG: ["maybe", "no"]})
    probs = _problems(df)
    assert [p[1:6] for p in probs] == [(0, "P0", FLAG, "maybe", "type")]
    assert probs[0][6] == (
        "'maybe' is not a boolean (expected true/false; also 1/0, yes/no, in any case)"
    )
    no_subject = _problems(df.drop(columns="subject_id"))
    assert [p[1:6] for p in no_subject] == [(0, None, FLAG, "maybe", "type")]
    header = [c for c in VISITS_HEADER if c != Q5]
    header[header.index("alsfrs_r_q6") : header.index("alsfrs_r_q6")] = [Q5B, FLAG]
    items = [4, 4, 4, 4, 3, "perhaps", 4, 4, 4, 4, 4, 4, 4]
    path = write_csv(tmp_path / "v.csv", header, [["P9", "2020-01-10", *items, 47]])
    with pytest.raises(DataValidationError) as info:
        read_visits(path)
    assert [
        (p.source, p.line, p.subject_id, p.column, p.value)
        for p in info.value.problem_list
    ] == [(str(path), 2, "P9", FLAG, "perhaps")]


# --- declared scores against their items ---------------------------------------------


def test_no_item_columns_leave_the_table_alone():
    df = pd.DataFrame({"subject_id": ["P0", "P1"], "alsfrs_r_total": [40.0, NAN]})
    out = score_alsfrs_r(df)
    assert list(out.columns) == ["subject_id", "alsfrs_r_total"]
    assert _nan_list(out["alsfrs_r_total"]) == [40.0, None]
    assert "alsfrs_r_imputed" not in score_alsfrs_r(df, impute="domain_mean").columns


def test_declared_total_differs_names_all_twelve_items():
    rows = [[4.0] * 12, [3.0] * 12]
    df = _frame(rows, alsfrs_r_total=[47.0, 36.0], alsfrs_r_respiratory=[12.0, 10.0])
    df.index = [5, 6]
    assert _problems(df) == [
        (
            "visits table",
            5,
            "P0",
            "alsfrs_r_total",
            47.0,
            "sum",
            "declared 47 differs from the sum of items alsfrs_r_q1..q12 = 48",
        ),
        (
            "visits table",
            6,
            "P1",
            "alsfrs_r_respiratory",
            10.0,
            "sum",
            "declared 10 differs from the sum of items alsfrs_r_q10..q12 = 9",
        ),
    ]


def test_declared_scores_equal_to_items_pass():
    rows = [[0.0] * 12, [4.0] * 12, [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2]]
    declared = {s: [_expected_scores(r)[s] for r in rows] for s in SCORES}
    assert declared["alsfrs_r_total"] == [0, 48, 23]
    out = score_alsfrs_r(_frame(rows, **declared))
    for s in SCORES:
        assert out[s].tolist() == declared[s]


@pytest.mark.parametrize(
    "items, window",
    [
        ([2.0, NAN, 0.0], (2, 6)),  # one missing: the rest sum to 2, + 0..4
        ([1.0, NAN, NAN], (1, 9)),  # two missing: 1 + 0..8
        ([NAN, 0.0, 0.0], (0, 4)),
    ],
)
def test_declared_domain_plausibility_window_edges(items, window):
    lo, hi = window
    n_missing = sum(math.isnan(v) for v in items)
    partial = int(sum(v for v in items if not math.isnan(v)))
    rows = [items + [4.0] * 9] * 4
    ok = _frame(rows[:2], alsfrs_r_bulbar=[float(lo), float(hi)])
    out = score_alsfrs_r(ok)
    assert out["alsfrs_r_bulbar"].tolist() == [lo, hi]
    assert out["alsfrs_r_fine_motor"].tolist() == [12.0, 12.0]
    assert out["alsfrs_r_total"].isna().all()
    bad = [float(lo - 1), float(hi + 1)] if lo > 0 else [float(hi + 1)]
    df = _frame(rows[: len(bad)], alsfrs_r_bulbar=bad)
    assert _problems(df) == [
        (
            "visits table",
            i,
            f"P{i}",
            "alsfrs_r_bulbar",
            v,
            "sum",
            f"declared {int(v)} is impossible with the items given "
            f"({n_missing} missing, the rest sum to {partial})",
        )
        for i, v in enumerate(bad)
    ]


def test_declared_total_plausibility_window_edges():
    # q2 and q7 missing: the ten others sum to 30, so the total is 30..38
    items = [3.0, NAN, 3.0, 3.0, 3.0, 3.0, NAN, 3.0, 3.0, 3.0, 3.0, 3.0]
    out = score_alsfrs_r(_frame([items, items], alsfrs_r_total=[30.0, 38.0]))
    assert out["alsfrs_r_total"].tolist() == [30.0, 38.0]
    df = _frame([items, items], alsfrs_r_total=[29.0, 39.0])
    msg = (
        "declared {} is impossible with the items given (2 missing, the rest sum to 30)"
    )
    assert _problems(df) == [
        ("visits table", 0, "P0", "alsfrs_r_total", 29.0, "sum", msg.format(29)),
        ("visits table", 1, "P1", "alsfrs_r_total", 39.0, "sum", msg.format(39)),
    ]


def test_declared_domain_with_all_items_missing_is_kept():
    rows = [[NAN, NAN, NAN] + [4.0] * 9] * 3
    out = score_alsfrs_r(_frame(rows, alsfrs_r_bulbar=[0.0, 7.0, 12.0]))
    assert out["alsfrs_r_bulbar"].tolist() == [0.0, 7.0, 12.0]
    assert out["alsfrs_r_gross_motor"].tolist() == [12.0] * 3
    # a declared value out of range is one problem (its range), not also a sum problem
    df = _frame(rows[:1], alsfrs_r_bulbar=[13.0])
    assert _problems(df) == [
        (
            "visits table",
            0,
            "P0",
            "alsfrs_r_bulbar",
            13.0,
            "maximum",
            "13 is outside 0-12 (domain subscores are 0-12)",
        )
    ]


def test_missing_declared_scores_are_filled_from_complete_items():
    rows = [
        [4, 3, 2, 1, 0, 4, 3, 2, 1, 4, 4, 3],
        [4, 3, 2, 1, 0, 4, 3, 2, 1, 4, NAN, 3],
        [4, 3, 2, 1, 0, 4, 3, 2, 1, 4, 4, 3],
    ]
    df = _frame(rows, alsfrs_r_total=[NAN, NAN, 31.0], alsfrs_r_bulbar=[NAN, 9.0, NAN])
    out = score_alsfrs_r(df)
    assert _nan_list(out["alsfrs_r_total"]) == [31.0, None, 31.0]
    assert out["alsfrs_r_bulbar"].tolist() == [9.0, 9.0, 9.0]
    assert _nan_list(out["alsfrs_r_respiratory"]) == [11.0, None, 11.0]
    assert out["alsfrs_r_total"].dtype == np.float64
    assert list(out.columns) == ["subject_id", *ITEMS, *SCORES]


def test_declared_score_problem_located_by_file_line(tmp_path):
    rows = [
        visit_row("P001", "2020-01-10"),
        visit_row("P001", "2020-04-09", total=30),
        visit_row("P002", "2021-03-01", [4, None, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4], 43),
    ]
    path = write_csv(tmp_path / "visits.csv", VISITS_HEADER, rows)
    with pytest.raises(DataValidationError) as info:
        read_visits(path)
    got = [
        (p.source, p.line, p.subject_id, p.column, p.value, p.rule, p.message)
        for p in info.value.problem_list
    ]
    items_sum = sum([4, 4, 3, 3, 3, 3, 3, 3, 2, 4, 4, 4])
    assert got == [
        (
            str(path),
            3,
            "P001",
            "alsfrs_r_total",
            30.0,
            "sum",
            f"declared 30 differs from the sum of items alsfrs_r_q1..q12 = {items_sum}",
        ),
        (
            str(path),
            4,
            "P002",
            "alsfrs_r_total",
            43.0,
            "sum",
            "declared 43 is impossible with the items given "
            "(1 missing, the rest sum to 44)",
        ),
    ]


def test_score_problem_names_the_subject_as_given_in_the_input():
    # the sum check locates problems in the table as the user gave it, like every
    # other check: subject 7.0 (a number among text ids) is shown as 7 throughout
    df = pd.DataFrame(
        {
            "subject_id": pd.Series(["P1", 7.0], dtype=object),
            "months": [0.0, 0.0],
            **{c: [4.0, 4.0] for c in ITEMS},
            "alsfrs_r_total": [48.0, 47.0],
        }
    )
    with pytest.raises(DataValidationError) as info:
        validate(df, today="2025-01-01")
    assert [
        (p.line, p.subject_id, p.column, p.rule) for p in info.value.problem_list
    ] == [
        (1, "7", "subject_id", "pattern"),
        (1, "7", "alsfrs_r_total", "sum"),
    ]


def test_check_scores_without_original_locates_problems_in_its_own_table():
    df = _frame([[4.0] * 12, [3.0] * 12], alsfrs_r_total=[47.0, 36.0])
    df.index = [3, 4]
    out, probs = check_scores(df, TableContext("visits.csv"))
    assert [
        (p.source, p.line, p.subject_id, p.column, p.value, p.rule, p.message)
        for p in probs
    ] == [
        (
            "visits.csv",
            3,
            "P0",
            "alsfrs_r_total",
            47.0,
            "sum",
            "declared 47 differs from the sum of items alsfrs_r_q1..q12 = 48",
        )
    ]
    assert out["alsfrs_r_bulbar"].tolist() == [12.0, 9.0]
    assert out["alsfrs_r_total"].tolist() == [47.0, 36.0]


def test_check_scores_needs_an_item_to_judge_a_declared_score():
    # with every item of the domain missing nothing is "given": even a declared 13
    # (outside 0-12, which the column checks report) is no sum problem here
    rows = [[NAN, NAN, NAN] + [4.0] * 9]
    out, probs = check_scores(
        _frame(rows, alsfrs_r_bulbar=[13.0]), TableContext("visits table")
    )
    assert probs == []
    assert out.loc[0, "alsfrs_r_bulbar"] == 13
    assert np.isnan(out.loc[0, "alsfrs_r_total"])


# --- domain-mean imputation ------------------------------------------------------------


def test_imputation_outside_the_bulbar_domain():
    # bulbar complete in every visit; fine motor, gross motor and respiratory each
    # miss one item somewhere: (1 + 2) / 2 = 1.5 -> 2, (0 + 1) / 2 = 0.5 -> 1 (half up)
    rows = [
        [4, 4, 4, 1, NAN, 2, 4, 4, 4, 4, 4, 4],
        [4, 4, 4, 4, 4, 4, 3, 3, NAN, NAN, 1, NAN],
        [4, 4, 4, 4, 4, 4, 4, 4, 4, 0, NAN, 1],
    ]
    out = score_alsfrs_r(_frame(rows), impute="domain_mean")
    assert out.loc[0, "alsfrs_r_q5"] == 2
    assert out.loc[0, "alsfrs_r_fine_motor"] == 5
    assert out.loc[0, "alsfrs_r_total"] == 41
    assert out.loc[1, "alsfrs_r_q9"] == 3
    assert out.loc[1, "alsfrs_r_gross_motor"] == 9
    # two respiratory items missing: they stay missing
    assert np.isnan(out.loc[1, "alsfrs_r_q12"])
    assert np.isnan(out.loc[1, "alsfrs_r_respiratory"])
    assert np.isnan(out.loc[1, "alsfrs_r_total"])
    assert out.loc[2, "alsfrs_r_q11"] == 1
    assert out.loc[2, "alsfrs_r_respiratory"] == 2
    assert out.loc[2, "alsfrs_r_total"] == 38
    assert _flags(out["alsfrs_r_imputed"]) == [True, True, True]
    assert list(out.columns) == ["subject_id", *ITEMS, *SCORES, "alsfrs_r_imputed"]


def test_imputation_warns_nothing_for_visits_it_leaves_alone():
    rows = [
        [4, NAN, 2] + [4.0] * 9,  # one bulbar item to impute
        [4.0] * 12,  # nothing missing
        [NAN, NAN, 4] + [4.0] * 9,  # two missing: left alone
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = score_alsfrs_r(_frame(rows), impute="domain_mean")
    assert _nan_list(out["alsfrs_r_bulbar"]) == [9.0, 12.0, None]
    assert _nan_list(out["alsfrs_r_q2"]) == [3.0, 4.0, None]


def test_imputation_in_the_last_domain_only():
    rows = [[4, 4, 4, 4, 4, 4, 4, 4, 4, NAN, 2, 3]]  # (2 + 3) / 2 = 2.5 -> 3
    out = score_alsfrs_r(_frame(rows), impute="domain_mean")
    assert out.loc[0, "alsfrs_r_q10"] == 3
    assert out.loc[0, "alsfrs_r_respiratory"] == 8
    assert out.loc[0, "alsfrs_r_total"] == 44
    assert _flags(out["alsfrs_r_imputed"]) == [True]


@pytest.mark.parametrize(
    "known, filled",
    [((0, 0), 0), ((0, 1), 1), ((1, 1), 1), ((1, 2), 2), ((3, 4), 4), ((0, 4), 2)],
)
def test_imputed_value_is_mean_rounded_half_up(known, filled):
    rows = [[4.0] * 12, [4.0] * 12]
    rows[1][6], rows[1][8] = known
    rows[1][7] = NAN
    out = score_alsfrs_r(_frame(rows), impute="domain_mean")
    assert math.floor(sum(known) / 2 + 0.5) == filled  # the rule, by hand
    assert out["alsfrs_r_q8"].tolist() == [4.0, float(filled)]
    assert out["alsfrs_r_gross_motor"].tolist() == [12.0, float(sum(known) + filled)]
    assert _flags(out["alsfrs_r_imputed"]) == [False, True]


def test_an_absent_item_column_is_imputed_but_two_are_not():
    df = _frame([[4.0] * 12]).drop(columns="alsfrs_r_q12")
    out = score_alsfrs_r(df, impute="domain_mean")
    # q12 absent from the table: one missing respiratory item, (4 + 4) / 2 = 4
    assert out.loc[0, "alsfrs_r_q12"] == 4
    assert out.loc[0, "alsfrs_r_total"] == 48
    assert _flags(out["alsfrs_r_imputed"]) == [True]
    df = _frame([[4.0] * 12]).drop(columns=["alsfrs_r_q11", "alsfrs_r_q12"])
    out = score_alsfrs_r(df, impute="domain_mean")
    assert list(out.columns) == [
        "subject_id",
        *ITEMS[:10],
        *SCORES,
        "alsfrs_r_imputed",
    ]
    assert _flags(out["alsfrs_r_imputed"]) == [False]
    assert np.isnan(out.loc[0, "alsfrs_r_respiratory"])


def test_imputed_absent_items_are_added_in_item_order():
    df = _frame([[4.0] * 12]).drop(columns=["alsfrs_r_q3", "alsfrs_r_q12"])
    out = score_alsfrs_r(df, impute="domain_mean")
    assert list(out.columns) == [
        "subject_id",
        *[c for c in ITEMS if c not in ("alsfrs_r_q3", "alsfrs_r_q12")],
        *SCORES,
        "alsfrs_r_q3",
        "alsfrs_r_q12",
        "alsfrs_r_imputed",
    ]
    assert out.loc[0, "alsfrs_r_q3"] == 4 and out.loc[0, "alsfrs_r_q12"] == 4
    assert out.loc[0, "alsfrs_r_total"] == 48
    assert out["alsfrs_r_imputed"].dtype == "boolean"


def test_without_imputation_absent_items_are_not_added():
    df = _frame([[4.0] * 12]).drop(columns=["alsfrs_r_q12"])
    out = score_alsfrs_r(df)
    assert list(out.columns) == ["subject_id", *ITEMS[:11], *SCORES]
    assert "alsfrs_r_imputed" not in out.columns


def test_imputed_item_checks_declared_score():
    # q2 imputed (4 + 2) / 2 = 3, so a declared bulbar of 9 agrees and 8 does not
    rows = [[4, NAN, 2] + [4.0] * 9]
    out = score_alsfrs_r(_frame(rows, alsfrs_r_bulbar=[9.0]), impute="domain_mean")
    assert out.loc[0, "alsfrs_r_bulbar"] == 9
    assert _problems(_frame(rows, alsfrs_r_bulbar=[8.0]), impute="domain_mean") == [
        (
            "visits table",
            0,
            "P0",
            "alsfrs_r_bulbar",
            8.0,
            "sum",
            "declared 8 differs from the sum of items alsfrs_r_q1..q3 = 9",
        )
    ]


# --- score_alsfrs_r arguments and pass-through ----------------------------------------


def test_df_must_be_a_dataframe():
    with pytest.raises(TypeError) as info:
        score_alsfrs_r([[4] * 12])
    assert str(info.value) == "`df` must be a pandas DataFrame; got list."


def test_impute_argument_message():
    with pytest.raises(ValueError) as info:
        score_alsfrs_r(_frame([[4.0] * 12]), impute="mean")
    assert str(info.value) == "`impute` must be one of None, 'domain_mean'; got 'mean'."


def test_items_given_as_text_are_numbers_and_other_columns_pass_through():
    df = pd.DataFrame({c: ["4", " 3 "] for c in ITEMS})
    df[7] = ["a", "b"]
    df["visit_date"] = ["not checked here", "2020-01-01"]
    out = score_alsfrs_r(df)
    assert list(out.columns) == [*ITEMS, 7, "visit_date", *SCORES]
    assert out[ITEMS].dtypes.eq(np.float64).all()
    assert out["alsfrs_r_q1"].tolist() == [4.0, 3.0]
    assert out["alsfrs_r_total"].tolist() == [48.0, 36.0]
    assert out[7].tolist() == ["a", "b"]
    assert out["visit_date"].tolist() == ["not checked here", "2020-01-01"]
    assert df["alsfrs_r_q1"].tolist() == ["4", " 3 "]  # input untouched


def test_item_problems_are_all_reported_once():
    df = _frame([[4.0] * 12] * 2)
    df["alsfrs_r_q7"] = [4.0, 5.0]
    df["alsfrs_r_q1"] = [-1.0, 4.0]
    with pytest.raises(DataValidationError) as info:
        score_alsfrs_r(df)
    assert str(info.value) == (
        "visits table: 2 problems\n"
        "  row 0, subject P0, column alsfrs_r_q1: -1 is outside 0-4 "
        "(items are scored 0-4)\n"
        "  row 1, subject P1, column alsfrs_r_q7: 5 is outside 0-4 "
        "(items are scored 0-4)"
    )


def test_repeated_columns_refused():
    df = _frame([[4.0] * 12])
    df = pd.concat([df, df[["alsfrs_r_q1"]]], axis=1)
    with pytest.raises(DataValidationError, match="alsfrs_r_q1"):
        score_alsfrs_r(df)


# --- ΔFS -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "total, months, expected",
    [
        (0, 12.0, 4.0),  # floor of the scale: 48 points in 12 months
        (48, 3.0, 0.0),  # ceiling: no loss
        (39, 0.5, 18.0),  # onset under a month before the first visit
        (47.5, 2.0, 0.25),
        (39, math.inf, 0.0),
    ],
)
def test_delta_fs_edges_return_python_float(total, months, expected):
    got = delta_fs(total, months)
    assert type(got) is float
    assert got == expected


def test_delta_fs_zero_dim_arrays_give_a_float():
    got = delta_fs(np.array(30.0), np.float64(6.0))
    assert type(got) is float and got == 3.0


def test_delta_fs_nan_scalar_is_nan_float():
    got = delta_fs(NAN, 6.0)
    assert type(got) is float and math.isnan(got)
    assert math.isnan(delta_fs(40.0, NAN))


def test_delta_fs_broadcasts_a_scalar_over_an_array():
    got = delta_fs([0, 24, 48], 12.0)
    assert isinstance(got, np.ndarray) and got.shape == (3,)
    assert got.tolist() == [4.0, 2.0, 0.0]
    got = delta_fs(36, [1.0, 4.0])
    assert isinstance(got, np.ndarray) and got.tolist() == [12.0, 3.0]
    got = delta_fs([[48, 36]], [[2.0], [4.0]])
    assert got.tolist() == [[0.0, 6.0], [0.0, 3.0]]


def _dfs_problems(total, months) -> tuple[str, list[tuple]]:
    with pytest.raises(DataValidationError) as info:
        delta_fs(total, months)
    assert info.value.source == "delta_fs"
    return str(info.value), [
        (p.source, p.line, p.line_kind, p.column, p.value, p.rule, p.message)
        for p in info.value.problem_list
    ]


@pytest.mark.parametrize(
    "total, text",
    [
        (48.5, "48.5"),
        (-0.5, "-0.5"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (49, "49"),
    ],
)
def test_delta_fs_total_outside_scale(total, text):
    msg, probs = _dfs_problems(total, 6.0)
    assert probs == [
        (
            None,
            None,
            "element",
            "alsfrs_r_total",
            float(total),
            "range",
            f"{text} is outside 0-48",
        )
    ]
    assert (
        msg == f"delta_fs: 1 problem\n  column alsfrs_r_total: {text} is outside 0-48"
    )
    assert type(probs[0][4]) is float


@pytest.mark.parametrize("months, text", [(0.0, "0"), (-0.0, "0"), (-0.25, "-0.25")])
def test_delta_fs_months_not_positive(months, text):
    msg, probs = _dfs_problems(40, months)
    expected = (
        f"{text} months since onset is not positive "
        "(ΔFS needs the first visit after onset)"
    )
    assert probs == [
        (None, None, "element", "months_since_onset", months, "range", expected)
    ]
    assert msg == f"delta_fs: 1 problem\n  column months_since_onset: {expected}"


def test_delta_fs_array_problems_name_the_element():
    total = [40, 50, NAN, 30, -1]
    months = [2.0, 3.0, 0.0, -1.0, NAN]
    msg, probs = _dfs_problems(total, months)
    not_pos = (
        " months since onset is not positive (ΔFS needs the first visit after onset)"
    )
    assert probs == [
        (None, 1, "element", "alsfrs_r_total", 50.0, "range", "50 is outside 0-48"),
        (None, 2, "element", "months_since_onset", 0.0, "range", "0" + not_pos),
        (None, 3, "element", "months_since_onset", -1.0, "range", "-1" + not_pos),
        (None, 4, "element", "alsfrs_r_total", -1.0, "range", "-1 is outside 0-48"),
    ]
    assert msg.splitlines()[:2] == [
        "delta_fs: 4 problems",
        "  element 1, column alsfrs_r_total: 50 is outside 0-48",
    ]


def test_delta_fs_nan_passes_through_arrays():
    got = delta_fs(np.array([NAN, 45.0, 42.0]), np.array([3.0, NAN, 2.0]))
    assert np.isnan(got[0]) and np.isnan(got[1]) and got[2] == 3.0


@pytest.mark.parametrize(
    "total, months, detail",
    [
        ("abc", 1.0, "could not convert string to float: 'abc'"),
        (40, "soon", "could not convert string to float: 'soon'"),
        ([1, 2], [1.0, 2.0, 3.0], "shape mismatch"),
    ],
)
def test_delta_fs_non_numbers_are_type_errors(total, months, detail):
    with pytest.raises(TypeError) as info:
        delta_fs(total, months)
    text = str(info.value)
    assert text.startswith(
        "`baseline_total` and `months_since_onset` must be numbers "
        f"or arrays of numbers ({detail}"
    )
    assert text.endswith(").")
    assert info.value.__cause__ is None and info.value.__suppress_context__
