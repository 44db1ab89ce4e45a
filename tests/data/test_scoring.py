"""ALSFRS-R scoring and ΔFS: sums from the dictionary, imputation, edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tablefiles import ITEMS

from alsprog.data import delta_fs, score_alsfrs_r
from alsprog.errors import DataValidationError


def _frame(rows: list[list[float | None]], **extra) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=ITEMS, dtype=float)
    df.insert(0, "subject_id", [f"P{i}" for i in range(len(rows))])
    for k, v in extra.items():
        df[k] = v
    return df


def test_domains_and_total_are_item_sums():
    rows = [[4, 3, 2, 1, 0, 4, 3, 2, 1, 4, 4, 3]]
    out = score_alsfrs_r(_frame(rows))
    # Cedarbaum 1999 domains: bulbar q1-3, fine q4-6, gross q7-9, respiratory q10-12
    assert out.loc[0, "alsfrs_r_bulbar"] == 9
    assert out.loc[0, "alsfrs_r_fine_motor"] == 5
    assert out.loc[0, "alsfrs_r_gross_motor"] == 6
    assert out.loc[0, "alsfrs_r_respiratory"] == 11
    assert out.loc[0, "alsfrs_r_total"] == 31


@pytest.mark.parametrize("value, total", [(0, 0), (4, 48)])
def test_floor_and_ceiling(value, total):
    out = score_alsfrs_r(_frame([[value] * 12]))
    assert out.loc[0, "alsfrs_r_total"] == total


def test_missing_item_leaves_total_missing():
    out = score_alsfrs_r(_frame([[4, None, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]]))
    assert np.isnan(out.loc[0, "alsfrs_r_total"])
    assert np.isnan(out.loc[0, "alsfrs_r_bulbar"])
    assert out.loc[0, "alsfrs_r_fine_motor"] == 12  # complete domain still scored


def test_declared_total_kept_when_items_incomplete():
    df = _frame([[4, None, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]], alsfrs_r_total=[46.0])
    assert score_alsfrs_r(df).loc[0, "alsfrs_r_total"] == 46


def test_declared_total_impossible_with_items():
    # 11 items sum to 44; one missing item adds 0-4, so 49 > 48 and 30 < 44 are impossible
    df = _frame([[4, None, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]], alsfrs_r_total=[30.0])
    with pytest.raises(
        DataValidationError,
        match=r"row 0, subject P0, column alsfrs_r_total: "
        r"declared 30 is impossible",
    ):
        score_alsfrs_r(df)


def test_declared_domain_must_match():
    df = _frame([[4] * 12], alsfrs_r_bulbar=[11.0])
    with pytest.raises(
        DataValidationError,
        match=r"column alsfrs_r_bulbar: declared 11 "
        r"differs from the sum of items",
    ):
        score_alsfrs_r(df)


def test_domain_mean_imputation():
    rows = [
        [4, None, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4],  # bulbar: (4+2)/2 = 3
        [3, None, None, 4, 4, 4, 4, 4, 4, 4, 4, 4],  # two missing: stays missing
        [4, 3, None, 4, 4, 4, 4, 4, 4, 4, 4, 4],
    ]  # (4+3)/2 = 3.5 -> 4 (half up)
    out = score_alsfrs_r(_frame(rows), impute="domain_mean")
    assert out.loc[0, "alsfrs_r_q2"] == 3 and out.loc[0, "alsfrs_r_total"] == 45
    assert np.isnan(out.loc[1, "alsfrs_r_total"])
    assert out.loc[2, "alsfrs_r_q3"] == 4 and out.loc[2, "alsfrs_r_total"] == 47
    assert out["alsfrs_r_imputed"].tolist() == [True, False, True]


def test_input_frame_not_modified():
    df = _frame([[4] * 12])
    before = df.copy()
    score_alsfrs_r(df, impute="domain_mean")
    pd.testing.assert_frame_equal(df, before)


def test_gastrostomy_flag_conflict():
    df = _frame([[4] * 12])
    df = df.drop(columns="alsfrs_r_q5").assign(
        alsfrs_r_q5a=[4.0], alsfrs_r_q5_gastrostomy=[True]
    )
    with pytest.raises(DataValidationError, match="alsfrs_r_q5_gastrostomy"):
        score_alsfrs_r(df)


def test_bad_impute_argument():
    with pytest.raises(ValueError, match="`impute` must be one of"):
        score_alsfrs_r(_frame([[4] * 12]), impute="mean")


@pytest.mark.parametrize(
    "total, months, expected",
    [
        (39, 12.0, 0.75),  # Kimura 2006 definition, (48 - 39) / 12
        (48, 6.0, 0.0),
        (38, 15.0, 10 / 15),  # docs/domain.md §7: 48 - 0.7*15 ~ 38
    ],
)
def test_delta_fs_closed_form(total, months, expected):
    assert delta_fs(total, months) == pytest.approx(expected, rel=1e-12)


def test_delta_fs_vectorised_and_nan():
    out = delta_fs(np.array([40.0, np.nan]), np.array([8.0, 4.0]))
    assert out[0] == 1.0 and np.isnan(out[1])


@pytest.mark.parametrize(
    "total, months, col",
    [
        (50, 10, "alsfrs_r_total"),
        (40, 0, "months_since_onset"),
        (40, -3, "months_since_onset"),
    ],
)
def test_delta_fs_errors(total, months, col):
    with pytest.raises(DataValidationError, match=col):
        delta_fs(total, months)
