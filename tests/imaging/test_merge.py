"""merge_features: several feature tables of the same sessions side by side."""

from __future__ import annotations

import pandas as pd
import pytest

from alsprog.errors import DataValidationError
from alsprog.imaging import merge_features


def _roi() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject_id": ["P2", "P1", "P1"],
            "session": ["m00", "m06", "m00"],
            "acquisition_date": ["2024-02-01", "2024-07-05", "2024-01-05"],
            "fa_cst_left": [0.47, 0.50, 0.52],
        }
    )


def _fc() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject_id": ["P1", "P3"],
            "session": ["m00", "m00"],
            "acquisition_date": pd.to_datetime(["2024-01-05", "2024-03-03"]),
            "fcnet_motor": [0.41, 0.30],
        }
    )


def test_outer_merge_keeps_every_session_and_takes_the_known_date():
    roi, fc = _roi(), _fc()
    before = (roi.copy(), fc.copy())
    out = merge_features(roi, fc, names=["dti", "fmri"])
    assert list(out.columns) == [
        "subject_id",
        "session",
        "acquisition_date",
        "fa_cst_left",
        "fcnet_motor",
    ]
    assert list(zip(out.subject_id, out.session, strict=True)) == [
        ("P1", "m00"),
        ("P1", "m06"),
        ("P2", "m00"),
        ("P3", "m00"),
    ]
    assert out["fcnet_motor"].tolist()[0] == 0.41
    assert out["fcnet_motor"].isna().tolist() == [False, True, True, False]
    assert out["fa_cst_left"].isna().tolist() == [False, False, False, True]
    # P3 exists only in the connectivity table: its date comes from there
    assert str(out["acquisition_date"].iloc[3].date()) == "2024-03-03"
    pd.testing.assert_frame_equal(roi, before[0])  # inputs untouched
    pd.testing.assert_frame_equal(fc, before[1])


def test_inner_merge_and_results_with_features_attribute():
    class Result:
        features = _fc()

    out = merge_features(_roi(), Result(), how="inner")
    assert len(out) == 1 and out.loc[0, "fa_cst_left"] == 0.52


def test_disagreeing_dates_duplicate_columns_and_sessions_are_all_reported():
    fc = _fc()
    fc.loc[0, "acquisition_date"] = pd.Timestamp("2024-01-09")
    with pytest.raises(DataValidationError) as err:
        merge_features(_roi(), fc, names=["dti", "fmri"])
    text = str(err.value)
    assert "'P1'" in text and "'m00'" in text
    assert "2024-01-09" in text and "2024-01-05" in text
    assert "fmri" in text and "dti" in text

    dup = pd.concat([_fc(), _fc().iloc[:1]])
    clash = _fc().rename(columns={"fcnet_motor": "fa_cst_left"})
    with pytest.raises(DataValidationError) as err:
        merge_features(_roi(), dup, clash, names=["a", "b", "c"])
    problems = err.value.problem_list
    assert any("'fa_cst_left' is in both a and c" in p.message for p in problems)
    assert any("more than once" in p.message and p.subject_id == "P1" for p in problems)

    with pytest.raises(DataValidationError, match="no column session"):
        merge_features(_roi(), _fc().drop(columns="session"))


def test_tables_without_dates_and_bad_arguments():
    a = _roi().drop(columns="acquisition_date")
    b = _fc().drop(columns="acquisition_date")
    out = merge_features(a, b)
    assert "acquisition_date" not in out.columns and len(out) == 4
    with pytest.raises(TypeError):
        merge_features()
    with pytest.raises(ValueError, match="names"):
        merge_features(a, b, names=["x"])
    with pytest.raises(ValueError, match="how"):
        merge_features(a, b, how="left")
    with pytest.raises(TypeError, match="DataFrame"):
        merge_features(a, [1, 2])
