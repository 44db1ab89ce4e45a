"""extract_roi_features and roi_statistics at their edges (issue 20, mutation
testing): every statistic by hand on tiny volumes, every column of the features and
QC tables, range limits exactly at the edge, grid mismatches, parallel runs.

The volumes are lines of voxels (shape ``(n, 1, 1)``), so the voxels of every region
are an explicit list in the test and each expected number is computed from that
list with numpy/scipy (or written out as a closed form)."""

from __future__ import annotations

import logging
import math
import re
import threading
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from alsprog.errors import DataWarning, ImagingError
from alsprog.imaging import STATISTICS, _extract, extract_roi_features, roi_statistics

# 2 x 2 x 2.5 mm voxels: 10 mm³ each (conftest's save_nifti default)
AFFINE = np.diag([2.0, 2.0, 2.5, 1.0])
MAIN = threading.main_thread()


def _line(values) -> np.ndarray:
    return np.asarray(values).reshape(-1, 1, 1)


def _manifest(rows) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["subject_id", "session", "acquisition_date", "metric", "path"]
    )


@pytest.fixture
def line_atlas(tmp_path, nifti):
    """Atlas of 5 voxels in a line, labels 1 1 2 2 3 (regions a, b, c)."""
    path = nifti(tmp_path / "line.nii", _line([1, 1, 2, 2, 3]), dtype=np.int16)
    return path, {1: "a", 2: "b", 3: "c"}


def _one(path, metric="md", subject="P1", session="m00") -> pd.DataFrame:
    return _manifest([(subject, session, "2020-01-01", metric, str(path))])


# ------------------------------------------------------------------ roi_statistics

# region 0: finite 5 1 3 9 7 (two non-finite); 1: empty; 2: one value; 3: only NaN;
# 4: ten finite values; 5: empty (the last region)
REGION_VALUES = [
    [5.0, np.nan, 1.0, np.inf, 3.0, 9.0, 7.0],
    [],
    [2.0],
    [np.nan, -np.inf],
    [10.0, -3.0, 4.0, 8.0, 0.5, 6.0, 6.0, -1.0, 12.0, 2.0],
    [],
]


def _flatten(regions, rng=None):
    vals, idx, starts = [], [], [0]
    for r, v in enumerate(regions):
        v = list(v)
        if rng is not None:
            rng.shuffle(v)
        vals += v
        idx += [r] * len(v)
        starts.append(len(vals))
    return np.array(vals), np.array(idx, np.intp), np.array(starts, np.intp)


@pytest.mark.parametrize("seed", [None, 1, 2, 3, 4, 5])
def test_roi_statistics_every_statistic_by_hand(seed):
    rng = None if seed is None else np.random.default_rng(seed)
    values, idx, starts = _flatten(REGION_VALUES, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0/0 of the empty regions stays silent
        out, used, bad = roi_statistics(
            values, idx, starts, stats=STATISTICS, trim=0.2, voxel_volume=2.5
        )
    assert out.shape == (6, 6) and out.dtype == np.float64
    assert used.dtype == np.int64 and bad.dtype == np.int64
    assert used.tolist() == [5, 0, 1, 0, 10, 0]
    assert bad.tolist() == [2, 0, 0, 2, 0, 0]
    for r, v in enumerate(REGION_VALUES):
        x = np.array([e for e in v if np.isfinite(e)])
        assert out[3, r] == x.size  # count
        assert out[4, r] == x.size * 2.5  # volume
        if x.size == 0:
            assert np.isnan(out[[0, 1, 2, 5], r]).all()
            continue
        assert out[0, r] == pytest.approx(x.mean(), rel=1e-15, abs=1e-15)
        assert out[1, r] == np.median(x)
        assert out[2, r] == pytest.approx(x.std(ddof=0), rel=1e-14, abs=1e-15)
        assert out[5, r] == pytest.approx(sps.trim_mean(x, 0.2), rel=1e-15)
    # closed forms: region 4 sorted -3 -1 0.5 2 4 6 6 8 10 12, 2 cut from each end
    assert out[5, 4] == pytest.approx((0.5 + 2 + 4 + 6 + 6 + 8) / 6, rel=1e-15)
    assert out[1, 4] == 5.0 and out[1, 0] == 5.0 and out[5, 0] == 5.0


def test_roi_statistics_defaults():
    # default trim 0.1 (one of ten values cut from each end), voxel volume 1 mm³
    values = np.array([9.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 80.0])
    out, used, _ = roi_statistics(
        values, np.zeros(10, np.intp), np.array([0, 10], np.intp),
        stats=("trimmed_mean", "volume", "count"),
    )  # fmt: skip
    assert out[:, 0].tolist() == [(1 + 2 + 3 + 4 + 5 + 6 + 7 + 9) / 8, 10.0, 10.0]
    assert used.tolist() == [10]
    only_mean, _, _ = roi_statistics(values, np.zeros(10, np.intp),
                                     np.array([0, 10], np.intp))  # fmt: skip
    assert only_mean.tolist() == [[117.0 / 10]]


def test_roi_statistics_order_of_stats_and_all_finite_empty_last():
    # all finite (no NaN branch), the last region empty: every row still K long
    values = np.array([4.0, 0.0, 2.0])
    out, used, bad = roi_statistics(
        values,
        np.array([0, 0, 1], np.intp),
        np.array([0, 2, 3, 3], np.intp),
        stats=("volume", "std", "median", "mean"),
        voxel_volume=0.5,
    )
    assert used.tolist() == [2, 1, 0] and bad.tolist() == [0, 0, 0]
    assert used.dtype == np.int64 and bad.dtype == np.int64
    np.testing.assert_array_equal(
        out,
        [[1.0, 0.5, 0.0], [2.0, 0.0, np.nan], [2.0, 2.0, np.nan], [2.0, 2.0, np.nan]],
    )


def test_roi_statistics_integer_values():
    # an integer image: no finiteness test, sums exact
    values = np.array([1, 2, 6, 7, 7], dtype=np.int16)
    out, used, bad = roi_statistics(
        values,
        np.array([0, 0, 0, 1, 1], np.intp),
        np.array([0, 3, 5], np.intp),
        stats=("mean", "median", "std", "trimmed_mean", "count"),
        trim=0.0,
    )
    assert out.dtype == np.float64
    assert out[:, 0].tolist() == [3.0, 2.0, math.sqrt(14 / 3), 3.0, 3.0]
    assert out[:, 1].tolist() == [7.0, 7.0, 0.0, 7.0, 2.0]
    assert used.tolist() == [3, 2] and bad.tolist() == [0, 0]


def test_roi_statistics_trimmed_mean_accumulates_in_float64():
    # float32 voxels: 2**24 + 1 + 1 is 2**24 in float32 arithmetic
    values = np.array([2.0**24, 1.0, 1.0, 3.0], dtype=np.float32)
    out, _, _ = roi_statistics(
        values,
        np.zeros(4, np.intp),
        np.array([0, 4], np.intp),
        stats=("trimmed_mean", "mean"),
        trim=0.0,
    )
    assert out[:, 0].tolist() == [(2.0**24 + 5.0) / 4, (2.0**24 + 5.0) / 4]


@pytest.mark.parametrize(
    ("trim", "kept"),
    [(0.0, list(range(10))), (0.1, list(range(1, 9))), (0.29, list(range(2, 8))),
     (0.3, list(range(3, 7))), (0.49, list(range(4, 6)))],
)  # fmt: skip
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roi_statistics_trim_cut_points(trim, kept, seed):
    # ten values 0, 10, 100, ... (each far from the others): which are kept shows
    # exactly where the cut falls (int(trim * 10) from each end)
    base = [10.0**i for i in range(10)]
    values = np.random.default_rng(seed).permutation(base)
    out, _, _ = roi_statistics(
        values,
        np.zeros(10, np.intp),
        np.array([0, 10], np.intp),
        stats=("trimmed_mean",),
        trim=trim,
    )
    assert out[0, 0] == pytest.approx(np.mean([base[i] for i in kept]), rel=1e-15)


# ------------------------------------------------------------------ argument checks


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"stats": ()}, ValueError,
         "`stats` must name at least one of ('mean', 'median', 'std', 'count', "
         "'volume', 'trimmed_mean'); got ()."),
        ({"stats": ("mean", "std", "mean")}, ValueError,
         "`stats` must not repeat a statistic; got ('mean', 'std', 'mean')."),
        ({"stats": ("mean", "mode")}, ValueError,
         "`stats` must be one of 'mean', 'median', 'std', 'count', 'volume', "
         "'trimmed_mean'; got 'mode'."),
        ({"stats": "mode"}, ValueError,
         "`stats` must be one of 'mean', 'median', 'std', 'count', 'volume', "
         "'trimmed_mean'; got 'mode'."),
        ({"nan_policy": "drop"}, ValueError,
         "`nan_policy` must be one of 'ignore', 'raise'; got 'drop'."),
        ({"resample": "cubic"}, ValueError,
         "`resample` must be one of 'nearest', 'linear', None; got 'cubic'."),
        ({"trim": 0.5}, ValueError, "`trim` must be in [0, 0.5); got 0.5."),
        ({"trim": -1e-9}, ValueError, "`trim` must be in [0, 0.5); got -1e-09."),
        ({"n_jobs": 0}, ValueError,
         "`n_jobs` must be a non-zero integer or None; got 0."),
        ({"n_jobs": 1.0}, TypeError, "`n_jobs` must be an integer; got 1.0."),
        ({"batch_size": 0}, ValueError,
         "`batch_size` must be an integer >= 1; got 0."),
        ({"batch_size": 2.0}, TypeError,
         "`batch_size` must be an integer >= 1; got 2.0."),
    ],
)  # fmt: skip
def test_bad_arguments(line_atlas, tmp_path, nifti, kwargs, exc, message):
    atlas, lut = line_atlas
    img = nifti(tmp_path / "i.nii", _line([1.0] * 5))
    with pytest.raises(exc) as err:
        extract_roi_features(_one(img), atlas, lut, progress=False, **kwargs)
    assert str(err.value) == message


def test_edge_arguments_accepted(line_atlas, tmp_path, nifti):
    atlas, lut = line_atlas
    img = nifti(tmp_path / "i.nii", _line([1.0, 2.0, 3.0, 5.0, 4.0]))
    man = _one(img)
    # trim exactly 0 (the closed end), one image per batch, n_jobs None, one stat
    # named as a string
    f, _ = extract_roi_features(
        man, atlas, lut, stats="trimmed_mean", trim=0.0, n_jobs=None, batch_size=1,
        progress=False,
    )  # fmt: skip
    assert list(f.columns[3:]) == ["md_a_trimmed_mean", "md_b_trimmed_mean",
                                   "md_c_trimmed_mean"]  # fmt: skip
    assert f.iloc[0, 3:].tolist() == [1.5, 4.0, 4.0]
    # trim just below 0.5: two voxels, int(0.49 * 2) = 0 cut
    f, _ = extract_roi_features(
        man, atlas, lut, stats=["median", "trimmed_mean"], trim=0.49, progress=False
    )
    assert f.iloc[0, 3:].tolist() == [1.5, 1.5, 4.0, 4.0, 4.0, 4.0]
    # resample given on the atlas grid: no resampling, the same values
    g, _ = extract_roi_features(
        man, atlas, lut, stats=["median", "trimmed_mean"], trim=0.49,
        resample="linear", progress=False,
    )  # fmt: skip
    pd.testing.assert_frame_equal(f, g)


# ------------------------------------------------------------------ the two tables


@pytest.fixture
def study(tmp_path, nifti):
    """Four images (three sessions, FA and MD) on an atlas of 8 voxels with labels
    4 4 4 7 7 0 9 9, a mask leaving out voxel 2, a lookup-table label (12) that is
    not in the atlas and MD measured outside ``pons_x`` only."""
    atlas = nifti(tmp_path / "atl.nii.gz", _line([4, 4, 4, 7, 7, 0, 9, 9]),
                  dtype=np.int16)  # fmt: skip
    mask = nifti(tmp_path / "mask.nii", _line([1, 1, 0, 1, 1, 1, 1, 1]),
                 dtype=np.uint8)  # fmt: skip
    lut = pd.DataFrame(
        {"index": [4, 7, 9, 12], "name": ["CST left", "cc", "Pons-X", "Absent one"]}
    )
    voxels = {  # voxel 2 is masked (a wild value), voxel 5 is background
        "p1m00_fa": [0.25, 0.5, 99.0, 0.75, np.nan, 7.0, 0.125, 0.625],
        "p1m00_md": [1.5, 2.5, 9.0, 3.0, 4.0, -7.0, 50.0, 60.0],
        "p1m06_fa": [0.5, 0.0, 99.0, 1.0, 0.5, 7.0, 0.375, 0.25],
        "p2m00_fa": [0.0, 0.0, 99.0, 0.125, 0.375, 7.0, 1.0, 1.0],
    }
    paths = {k: str(nifti(tmp_path / f"{k}.nii.gz", _line(v))) for k, v in
             voxels.items()}  # fmt: skip
    man = _manifest(  # deliberately not in sorted order
        [
            ("P2", "m00", "2021-03-04", "fa", paths["p2m00_fa"]),
            ("P1", "m06", "2020-07-01", "FA", paths["p1m06_fa"]),
            ("P1", "m00", "2020-01-01", "md", paths["p1m00_md"]),
            ("sub-P1", "ses-m00", "2020-01-01", "fa", paths["p1m00_fa"]),
        ]
    )
    return atlas, mask, lut, voxels, paths, man


def test_features_table_every_column(study):
    atlas, mask, lut, voxels, paths, man = study
    features, _ = extract_roi_features(
        man, atlas, lut, stats=("median", "mean", "count"), mask=mask,
        metrics_by_region={"pons_x": "fa"}, progress=False,
    )  # fmt: skip
    regions = {"cst_left": [0, 1], "cc": [3, 4], "pons_x": [6, 7]}  # unmasked voxels
    sessions = ["p1m00", "p1m06", "p2m00"]
    expected = {
        "subject_id": pd.Series(["P1", "P1", "P2"], dtype="str"),
        "session": pd.Series(["m00", "m06", "m00"], dtype="str"),
        "acquisition_date": pd.to_datetime(["2020-01-01", "2020-07-01", "2021-03-04"]),
    }
    for metric, where in (
        ("fa", ["cst_left", "cc", "pons_x"]),
        ("md", ["cst_left", "cc"]),
    ):
        for region in where:
            cols = {"median": [], "mean": [], "count": []}
            for s in sessions:
                v = voxels.get(f"{s}_{metric}")
                x = None if v is None else np.array(v)[regions[region]]
                x = None if x is None else x[np.isfinite(x)]
                cols["median"].append(np.nan if x is None else np.median(x))
                cols["mean"].append(np.nan if x is None else x.mean())
                cols["count"].append(np.nan if x is None else float(x.size))
            expected[f"{metric}_{region}_median"] = cols["median"]
            expected[f"{metric}_{region}"] = cols["mean"]
            expected[f"{metric}_{region}_count"] = cols["count"]
    pd.testing.assert_frame_equal(features, pd.DataFrame(expected), check_exact=True)
    # spot checks written out: P1 m00 FA in cc is 0.75 (its other voxel is NaN)
    assert features.loc[0, "fa_cc"] == 0.75 and features.loc[0, "fa_cc_count"] == 1
    assert features.loc[2, "fa_cst_left_median"] == 0.0
    assert np.isnan(features.loc[1, "md_cst_left"])


def test_qc_table_every_column(study):
    atlas, mask, lut, voxels, paths, man = study
    _, qc = extract_roi_features(
        man, atlas, lut, mask=mask, metrics_by_region={"pons_x": "fa"},
        progress=False,
    )  # fmt: skip
    # manifest order: P1 m00 fa, P1 m00 md, P1 m06 fa, P2 m00 fa; then one
    # absent_from_atlas row per image at the end
    images = [
        ("P1", "m00", "fa", "p1m00_fa", ["cst_left", "cc", "pons_x"]),
        ("P1", "m00", "md", "p1m00_md", ["cst_left", "cc"]),
        ("P1", "m06", "fa", "p1m06_fa", ["cst_left", "cc", "pons_x"]),
        ("P2", "m00", "fa", "p2m00_fa", ["cst_left", "cc", "pons_x"]),
    ]
    label = {"cst_left": 4, "cc": 7, "pons_x": 9}
    atlas_vox = {"cst_left": [0, 1, 2], "cc": [3, 4], "pons_x": [6, 7]}
    rows = []
    for sub, ses, met, key, regions in images:
        for reg in regions:
            v = np.array(voxels[key])[[i for i in atlas_vox[reg] if i != 2]]
            n_nan = int((~np.isfinite(v)).sum())
            n_vox = len(atlas_vox[reg])
            n_used = v.size - n_nan
            rows.append((sub, ses, met, reg, label[reg], n_vox, int(reg == "cst_left"),
                         0, n_nan, n_used, n_used / n_vox, "ok", paths[key]))  # fmt: skip
    for sub, ses, met, key, _ in images:
        rows.append((sub, ses, met, "absent_one", 12, 0, 0, 0, 0, 0, np.nan,
                     "absent_from_atlas", paths[key]))  # fmt: skip
    expected = pd.DataFrame(rows, columns=_extract.QC_COLUMNS)
    for col in ("label", "n_voxels", "n_outside_mask", "n_outside_fov", "n_nan",
                "n_used"):  # fmt: skip
        expected[col] = expected[col].astype(np.int64)
    pd.testing.assert_frame_equal(qc, expected, check_exact=True)
    # written out: cst_left lost one voxel to the mask, cc one to NaN in P1 m00 FA
    assert qc.loc[0, ["n_outside_mask", "n_used", "coverage"]].tolist() == [1, 2, 2 / 3]
    assert qc.loc[1, ["n_nan", "n_used", "coverage"]].tolist() == [1, 1, 0.5]


def test_without_mapping_every_region_and_absent_rows_kept(study):
    atlas, mask, lut, voxels, paths, man = study
    _, qc = extract_roi_features(man.iloc[2:3], atlas, lut, progress=False)
    assert qc["region"].tolist() == ["cst_left", "cc", "pons_x", "absent_one"]
    assert qc["status"].tolist() == ["ok"] * 3 + ["absent_from_atlas"]
    assert qc["n_voxels"].tolist() == [3, 2, 2, 0]
    assert qc["n_outside_mask"].tolist() == [0, 0, 0, 0]
    assert qc["metric"].tolist() == ["md"] * 4


def test_metrics_filter_as_string_and_list(study):
    atlas, mask, lut, voxels, paths, man = study
    for metrics in ("MD", ["md", "rd"]):  # one name; a list (rd: no such image)
        f, qc = extract_roi_features(man, atlas, lut, metrics=metrics, progress=False)
        assert f["subject_id"].tolist() == ["P1"]
        assert list(f.columns[3:]) == ["md_cst_left", "md_cc", "md_pons_x"]
        assert set(qc["metric"]) == {"md"}
        assert f.loc[0, "md_pons_x"] == 55.0


def test_no_image_left_gives_empty_tables(study):
    atlas, mask, lut, voxels, paths, man = study
    f, qc = extract_roi_features(man, atlas, lut, metrics=["rd"], progress=False)
    assert f.shape == (0, 3)
    assert list(f.columns) == ["subject_id", "session", "acquisition_date"]
    assert qc.shape == (0, 13) and list(qc.columns) == _extract.QC_COLUMNS
    ints = ["label", "n_voxels", "n_outside_mask", "n_outside_fov", "n_nan", "n_used"]
    assert qc[ints].dtypes.tolist() == [np.int64] * 6
    assert qc["coverage"].dtype == np.float64
    # the text columns of the empty table all of one type
    texts = ["subject_id", "session", "metric", "region", "status", "path"]
    assert qc[texts].dtypes.nunique() == 1


def test_metrics_by_region_names_unknown_metric(study):
    atlas, mask, lut, voxels, paths, man = study
    with pytest.raises(ImagingError) as err:
        extract_roi_features(
            man, atlas, lut, metrics_by_region={"cc": ["md", "rd", "ad"]},
            progress=False,
        )  # fmt: skip
    assert str(err.value) == (
        "metrics_by_region['cc'] names metric 'rd', but the images hold the metrics "
        "fa, md"
    )


def test_log_line(study, caplog):
    atlas, mask, lut, voxels, paths, man = study
    with caplog.at_level(logging.INFO, logger="alsprog.imaging._extract"):
        extract_roi_features(man, atlas, lut, mask=mask, progress=False)
    msgs = [r.getMessage() for r in caplog.records if r.name == _extract.__name__]
    assert len(msgs) == 1
    got = re.fullmatch(
        r"extracted 3 regions from 4 images \(3 sessions\) in (\d+\.\d) s", msgs[0]
    )
    assert got and 0.0 <= float(got.group(1)) < 120.0  # seconds since the call


# ------------------------------------------------------------------ NaN and empty


def test_nan_policy_raise_names_first_region(tmp_path, nifti):
    atlas = nifti(tmp_path / "a.nii", _line([4, 7, 7, 9, 9]), dtype=np.int16)
    lut = {4: "one", 7: "two", 9: "three"}
    img = nifti(tmp_path / "nan.nii", _line([1.0, np.nan, np.inf, 2.0, -np.inf]))
    with pytest.raises(ImagingError) as err:
        extract_roi_features(_one(img), atlas, lut, nan_policy="raise", progress=False)
    assert str(err.value) == (
        f"{img}: 3 NaN/inf voxels inside regions (first: 2 in 'two', label 7); pass "
        "nan_policy='ignore' to leave them out"
    )
    # the same image without non-finite voxels passes the check
    ok = nifti(tmp_path / "ok.nii", _line([1.0, 3.0, 5.0, 2.0, 4.0]))
    f, qc = extract_roi_features(_one(ok), atlas, lut, nan_policy="raise",
                                 progress=False)  # fmt: skip
    assert f.iloc[0, 3:].tolist() == [1.0, 4.0, 3.0]
    assert qc["n_nan"].tolist() == [0, 0, 0]


def _empty_warning(record) -> str:
    msgs = [w for w in record if issubclass(w.category, DataWarning)]
    assert len(msgs) == 1
    # stacklevel=2: the warning points at the frame that called
    # extract_roi_features: this test, or the wrapper's frame when a decorator
    # wraps the function (as mutation testing's trampoline does)
    code = extract_roi_features.__code__
    wrapped = code.co_filename != _extract.__file__
    assert msgs[0].filename == (code.co_filename if wrapped else __file__)
    return str(msgs[0].message)


def test_empty_region_all_nan_warning(tmp_path, nifti):
    atlas = nifti(tmp_path / "a.nii", _line([1, 2, 2, 3, 3]), dtype=np.int16)
    lut = {1: "a", 2: "b", 3: "c"}
    img = nifti(tmp_path / "img.nii", _line([np.nan, 1.0, 2.0, np.nan, np.nan]))
    man = _manifest([("P1", "m00", "2020-01-01", "md", str(img)),
                     ("P2", "m03", "2020-01-01", "md", str(img))])  # fmt: skip
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        f, qc = extract_roi_features(man, atlas, lut, progress=False)
    # a single voxel, NaN: "all 1 of its voxels"
    assert _empty_warning(rec) == (
        f"4 image × region pairs had no usable voxel (first: {img} (subject P1, "
        "session m00), region 'a': all 1 of its voxels are NaN/inf); their features "
        "are NaN (see qc)"
    )
    assert qc["status"].tolist() == ["empty", "ok", "empty"] * 2
    assert qc["n_used"].tolist() == [0, 2, 0] * 2
    assert qc["coverage"].tolist() == [0.0, 1.0, 0.0] * 2
    assert f["md_b"].tolist() == [1.5, 1.5] and f["md_a"].isna().all()


def test_empty_region_masked_and_nan_warning(tmp_path, nifti):
    atlas = nifti(tmp_path / "a.nii", _line([1, 2, 2, 3, 3]), dtype=np.int16)
    mask = nifti(tmp_path / "m.nii", _line([1, 1, 1, 0, 1]), dtype=np.uint8)
    lut = {1: "a", 2: "b", 3: "c"}
    # region c: one voxel masked, the other NaN -> empty, but not "all NaN"
    img = nifti(tmp_path / "img.nii", _line([0.5, 1.0, 2.0, 3.0, np.nan]))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        _, qc = extract_roi_features(_one(img), atlas, lut, mask=mask, progress=False)
    assert _empty_warning(rec) == (
        f"1 image × region pairs had no usable voxel (first: {img} (subject P1, "
        "session m00), region 'c': no voxel left after the mask and field of view); "
        "their features are NaN (see qc)"
    )
    c = qc.iloc[2]
    assert (c["n_voxels"], c["n_outside_mask"], c["n_nan"], c["n_used"]) == (2, 1, 1, 0)


def test_one_usable_voxel_is_ok(tmp_path, nifti, line_atlas):
    atlas, lut = line_atlas
    img = nifti(tmp_path / "img.nii", _line([np.nan, 2.0, 3.0, 4.0, 5.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty-region warning
        f, qc = extract_roi_features(_one(img), atlas, lut, stats=STATISTICS,
                                     progress=False)  # fmt: skip
    assert qc["status"].tolist() == ["ok", "ok", "ok"]
    assert qc["n_used"].tolist() == [1, 2, 1]
    # no lookup-table label absent from the atlas: the same column types
    assert qc.dtypes.astype(str).tolist() == ["str"] * 4 + ["int64"] * 6 + [
        "float64",
        "str",
        "str",
    ]
    assert f.loc[0, ["md_a", "md_a_median", "md_a_std", "md_a_count",
                     "md_a_trimmed_mean"]].tolist() == [2.0, 2.0, 0.0, 1.0, 2.0]  # fmt: skip
    # one voxel of 2 x 2 x 2.5 mm (the determinant of the affine, in floating point)
    assert f.loc[0, "md_a_volume"] == pytest.approx(10.0, rel=1e-14)
    assert f.loc[0, "md_b_volume"] == pytest.approx(20.0, rel=1e-14)


# ------------------------------------------------------------------ grids


def test_affine_mismatch_message(line_atlas, tmp_path, nifti):
    atlas, lut = line_atlas
    affine = AFFINE.copy()
    affine[2, 3] = 0.002
    img = nifti(tmp_path / "moved.nii", _line([1.0] * 5), affine)
    with pytest.raises(ImagingError) as err:
        extract_roi_features(_one(img), atlas, lut, progress=False)
    assert str(err.value) == (
        f"{img}: affine differs from atlas {atlas} by up to 0.002 mm (> 0.001 mm); "
        "pass resample='nearest' or 'linear' to resample it onto the atlas grid"
    )


def test_shape_mismatch_message(line_atlas, tmp_path, nifti):
    atlas, lut = line_atlas
    img = nifti(tmp_path / "short.nii", _line([1.0] * 4))
    with pytest.raises(ImagingError) as err:
        extract_roi_features(_one(img), atlas, lut, progress=False)
    assert str(err.value) == (
        f"{img}: shape (4, 1, 1) differs from atlas {atlas} (5, 1, 1); pass "
        "resample='nearest' or 'linear' to resample it onto the atlas grid"
    )


@pytest.mark.parametrize(
    ("method", "expected_b"),
    [
        # atlas voxels 2, 3 sit at image x = 0.5, 1.5: nearest rounds half to even
        # (0 -> v0; 2 -> clipped to the last voxel v1)
        ("nearest", (1.0 + (1.0 + 2.0**-23)) / 2),
        # linear: midway between v0 and v1, then v1 (the edge extended)
        ("linear", ((1.0 + 2.0**-24) + (1.0 + 2.0**-23)) / 2),
    ],
)
def test_resample_half_voxel_edges(line_atlas, tmp_path, nifti, method, expected_b):
    atlas, lut = line_atlas
    # a 2-voxel image whose origin is 1.5 voxels along x: atlas voxel i lies at image
    # x = i - 1.5, i.e. -1.5 (outside), -0.5 (inside: the edge), 0.5, 1.5 (inside:
    # the far edge), 2.5 (outside)
    affine = AFFINE.copy()
    affine[0, 3] = 3.0
    v1 = np.float32(1.0 + 2.0**-23)  # exact in float32; the midpoint is not
    img = nifti(tmp_path / "half.nii", _line([1.0, v1]), affine)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        f, qc = extract_roi_features(
            _one(img), atlas, lut, resample=method, nan_policy="raise",
            progress=False,
        )  # fmt: skip
    assert f.iloc[0, 3] == 1.0  # atlas voxel 1 at x = -0.5: the first image voxel
    assert f.iloc[0, 4] == expected_b
    assert np.isnan(f.iloc[0, 5])
    assert qc["n_outside_fov"].tolist() == [1, 0, 1]
    assert qc["n_nan"].tolist() == [0, 0, 0]
    assert qc["n_used"].tolist() == [1, 2, 0]
    assert qc["status"].tolist() == ["ok", "ok", "empty"]
    assert qc["n_outside_fov"].dtype == np.int64 and qc["n_nan"].dtype == np.int64
    assert "region 'c': no voxel left after the mask and field of view" in (
        _empty_warning(rec)
    )


def test_resample_counts_nan_apart_from_field_of_view(line_atlas, tmp_path, nifti):
    atlas, lut = line_atlas
    affine = AFFINE.copy()
    affine[0, 3] = 4.0  # atlas voxel i at image x = i - 2: voxels 0, 1 outside
    img = nifti(tmp_path / "img.nii", _line([np.nan, 8.0, 2.0]), affine)
    with pytest.warns(DataWarning, match="region 'a': no voxel left"):
        f, qc = extract_roi_features(_one(img), atlas, lut, resample="nearest",
                                     progress=False)  # fmt: skip
    assert qc["n_outside_fov"].tolist() == [2, 0, 0]
    assert qc["n_nan"].tolist() == [0, 1, 0]
    assert qc["n_used"].tolist() == [0, 1, 1]
    assert f.iloc[0, 3:].tolist()[1:] == [8.0, 2.0]
    with pytest.raises(ImagingError, match=r"1 NaN/inf voxels .*first: 1 in 'b'"):
        extract_roi_features(_one(img), atlas, lut, resample="nearest",
                             nan_policy="raise", progress=False)  # fmt: skip


def test_resample_integer_image(line_atlas, tmp_path, nifti):
    atlas, lut = line_atlas
    affine = AFFINE.copy()
    affine[0, 3] = -2.0  # atlas voxel i at image x = i + 1
    img = nifti(tmp_path / "int.nii", _line([9, 1, 2, 3, 4, 6]), affine,
                dtype=np.int16)  # fmt: skip
    for method in ("nearest", "linear"):
        f, qc = extract_roi_features(_one(img), atlas, lut, resample=method,
                                     progress=False)  # fmt: skip
        assert f.iloc[0, 3:].tolist() == [1.5, 3.5, 6.0]
        assert qc["n_outside_fov"].tolist() == [0, 0, 0]


# ------------------------------------------------------------------ range checks


def _range_error(man, atlas, lut, **kw) -> str:
    with pytest.raises(ImagingError) as err:
        extract_roi_features(man, atlas, lut, progress=False, **kw)
    return str(err.value)


HEAD = (
    "image(s) give regional values outside the data dictionary's range; check the "
    "scaling or units of these maps (e.g. FA stored x 1000, thickness in µm) or the "
    "metric in their file names:\n"
)


@pytest.mark.parametrize(
    ("metric", "values", "ok"),
    [
        ("fa", [0.0, 0.0, 1.0, 1.0, 0.5], True),  # exactly at both limits
        ("fa", [0.0, 0.0, 1.0, 1.0 + 2.0**-23, 0.5], False),  # just above 1
        ("fa", [-(2.0**-30), 0.0, 1.0, 1.0, 0.5], False),  # just below 0
        ("thickness", [10.0, 10.0, 0.0, 0.0, 3.0], True),
        ("thickness", [10.0, 10.0 + 2.0**-20, 0.0, 0.0, 3.0], False),
        ("md", [1e30, 1e30, 0.0, 0.0, 3.0], True),  # no upper limit
        ("md", [1e30, 1e30, 0.0, -(2.0**-30), 3.0], False),
        ("foo", [-1e30, 1e30, 3.0, 3.0, 3.0], True),  # not in the dictionary
        ("age", [200.0, 200.0, -5.0, -5.0, 1.0], True),  # age_at_onset: subject
        ("acquisition", [-1e30, 1e30, -7.0, -7.0, 9.0], True),  # imaging, no limits
    ],
)
def test_range_limits_at_the_edge(line_atlas, tmp_path, nifti, metric, values, ok):
    atlas, lut = line_atlas
    # age_at_onset is a subject-level field, acquisition_day an imaging-level one
    # without limits
    lut = {1: "a", 2: "at_onset" if metric == "age" else "day", 3: "c"}
    img = nifti(tmp_path / "img.nii", _line(values), dtype=np.float64)
    man = _one(img, metric=metric)
    if ok:
        f, _ = extract_roi_features(man, atlas, lut, progress=False)
        assert f.iloc[0, 3:].tolist() == [
            np.mean(values[:2]), np.mean(values[2:4]), values[4]
        ]  # fmt: skip
    else:
        msg = _range_error(man, atlas, lut)
        assert msg.startswith("1 " + HEAD + f"  {img} (subject P1, session m00): ")


def test_range_message_every_field(tmp_path, nifti):
    atlas = nifti(tmp_path / "a.nii", _line([1, 1, 2, 2, 3, 4, 5]), dtype=np.int16)
    lut = {1: "a", 2: "b", 3: "c", 4: "d", 5: "e"}
    fa_bad = nifti(tmp_path / "fa.nii", _line([0.5, 1.5, 0.25, 0.25, -0.5, 2.0, 3.0]))
    th_bad = nifti(tmp_path / "th.nii", _line([0.0, 0.0, 0.0, 0.0, 12.0, 1.0, 1.0]))
    fa_ok = nifti(tmp_path / "ok.nii", _line([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]))
    man = _manifest(
        [
            ("P2", "m00", "2020-01-01", "thickness", str(th_bad)),
            ("P1", "m03", "2020-01-01", "fa", str(fa_ok)),
            ("P1", "m06", "2020-06-01", "fa", str(fa_bad)),
        ]
    )
    msg = _range_error(man, atlas, lut, stats=("median", "mean"))
    # region a: median and mean exactly 1, the upper limit (no problem)
    assert msg == (
        "2 " + HEAD
        + f"  {fa_bad} (subject P1, session m06): fa_c_median = -0.5 (allowed 0-1), "
        "fa_d_median = 2 (allowed 0-1), fa_e_median = 3 (allowed 0-1), ... "
        "(6 in all)\n"
        f"  {th_bad} (subject P2, session m00): thickness_c_median = 12 (allowed "
        "0-10), thickness_c = 12 (allowed 0-10)"
    )  # fmt: skip


def test_range_of_spread_and_count(line_atlas, tmp_path, nifti):
    atlas, lut = line_atlas
    # thickness 0 and 25 over region a: mean 12.5 too, but with only std asked the
    # std 12.5 is what is out of range (thickness_a_std: 0-10); count has no maximum
    img = nifti(tmp_path / "img.nii", _line([0.0, 25.0, 2.0, 2.0, 2.0]))
    man = _one(img, metric="thickness")
    msg = _range_error(man, atlas, lut, stats=("std", "count", "volume"))
    assert msg == (
        "1 " + HEAD + f"  {img} (subject P1, session m00): thickness_a_std = 12.5 "
        "(allowed 0-10)"
    )


def test_range_overflow_to_infinity_refused(line_atlas, tmp_path, nifti):
    atlas, lut = line_atlas
    # two finite float64 voxels whose sum overflows: the mean is inf, which no
    # metric allows (not even one the dictionary does not know)
    img = nifti(tmp_path / "big.nii", _line([1e308, 1e308, 1.0, 1.0, 1.0]),
                dtype=np.float64)  # fmt: skip
    msg = _range_error(_one(img, metric="foo"), atlas, lut)
    assert msg == (
        "1 " + HEAD + f"  {img} (subject P1, session m00): foo_a = inf (allowed a "
        "finite number)"
    )


def test_range_exactly_three_problems_and_unmeasured_region(line_atlas, tmp_path,
                                                             nifti):  # fmt: skip
    atlas, lut = line_atlas
    fa = nifti(tmp_path / "fa.nii", _line([0.5, 0.5, 3.0, 3.0, 4.0]))
    md = nifti(tmp_path / "md.nii", _line([0.5, 0.5, 3.0, 3.0, 4.0]))
    man = _manifest([("P1", "m00", "2020-01-01", "fa", str(fa)),
                     ("P1", "m00", "2020-01-01", "md", str(md))])  # fmt: skip
    msg = _range_error(man, atlas, lut, stats=("mean", "median", "trimmed_mean"),
                       metrics_by_region={"b": "fa", "c": "md"})  # fmt: skip
    # region c is measured in MD only: its FA of 4 is no problem; b gives exactly
    # three, listed without "... (n in all)"
    assert msg == (
        "1 " + HEAD + f"  {fa} (subject P1, session m00): fa_b = 3 (allowed 0-1), "
        "fa_b_median = 3 (allowed 0-1), fa_b_trimmed_mean = 3 (allowed 0-1)"
    )


def test_range_four_problems_of_one_image(line_atlas, tmp_path, nifti):
    atlas, lut = line_atlas
    img = nifti(tmp_path / "img.nii", _line([2.0, 2.0, 3.0, 3.0, 0.5]))
    msg = _range_error(_one(img, metric="fa"), atlas, lut, stats=("mean", "median"))
    assert msg == (
        "1 " + HEAD + f"  {img} (subject P1, session m00): fa_a = 2 (allowed 0-1), "
        "fa_b = 3 (allowed 0-1), fa_a_median = 2 (allowed 0-1), ... (4 in all)"
    )


@pytest.mark.parametrize("n_bad", [20, 21])
def test_range_lists_twenty_images(line_atlas, tmp_path, nifti, n_bad):
    atlas, lut = line_atlas
    bad = nifti(tmp_path / "bad.nii", _line([0.5, 0.5, 0.5, 0.5, 7.0]))
    man = _manifest([(f"P{i:02d}", "m00", "2020-01-01", "fa", str(bad))
                     for i in range(n_bad)])  # fmt: skip
    msg = _range_error(man, atlas, lut)
    lines = msg.split("\n")
    assert lines[0] == f"{n_bad} " + HEAD.rstrip("\n")
    assert lines[1:21] == [
        f"  {bad} (subject P{i:02d}, session m00): fa_c = 7 (allowed 0-1)"
        for i in range(20)
    ]
    assert lines[21:] == ([] if n_bad == 20 else ["  ... and 1 more images"])


# ------------------------------------------------------------------ parallel work


@pytest.fixture
def chunk_log(monkeypatch):
    """Record each batch's size and whether it ran on the main thread."""
    calls: list[tuple[int, bool]] = []
    original = _extract._extract_chunk

    def spy(paths, atlas, task):
        calls.append((len(paths), threading.current_thread() is MAIN))
        return original(paths, atlas, task)

    monkeypatch.setattr(_extract, "_extract_chunk", spy)
    return calls


@pytest.fixture
def many(line_atlas, tmp_path, nifti):
    atlas, lut = line_atlas

    def make(n):
        paths = [
            nifti(tmp_path / f"img{i}.nii", _line(np.arange(5.0) * 0.01 + i * 1e-3))
            for i in range(min(n, 9))
        ]
        return _manifest([(f"P{i:03d}", "m00", "2020-01-01", "fa",
                           str(paths[i % len(paths)])) for i in range(n)])  # fmt: skip

    return atlas, lut, make


@pytest.mark.parametrize(
    ("n", "kw", "sizes", "on_main"),
    [
        (9, {}, [3, 3, 3], True),  # 4 batches per worker: ceil(9 / 4) = 3
        (3, {}, [1, 1, 1], True),
        (9, {"n_jobs": None}, [3, 3, 3], True),
        (9, {"batch_size": 4}, [4, 4, 1], True),
        (9, {"n_jobs": 2}, [2, 2, 2, 2, 1], False),  # ceil(9 / 8) = 2, threads
        (9, {"n_jobs": 2, "batch_size": 9}, [9], False),
        (257, {}, [64, 64, 64, 64, 1], True),  # at most 64 images a batch
    ],
)
def test_batches_and_threads(many, chunk_log, n, kw, sizes, on_main):
    atlas, lut, make = many
    man = make(n)
    f, qc = extract_roi_features(man, atlas, lut, progress=False, **kw)
    assert sorted(chunk_log, key=lambda c: -c[0]) == sorted(
        [(s, on_main) for s in sizes], key=lambda c: -c[0]
    )
    assert len(f) == n and len(qc) == 3 * n
    # each row its own image: values in manifest order whatever the batching
    k = np.arange(n) % min(n, 9)
    np.testing.assert_allclose(f["fa_a"], 0.005 + k * 1e-3, rtol=1e-6)
    np.testing.assert_allclose(f["fa_c"], 0.04 + k * 1e-3, rtol=1e-6)


def test_parallel_equals_serial(many):
    atlas, lut, make = many
    man = make(9)
    one = extract_roi_features(man, atlas, lut, stats=STATISTICS, progress=False)
    two = extract_roi_features(man, atlas, lut, stats=STATISTICS, n_jobs=2,
                               batch_size=2, progress=False)  # fmt: skip
    pd.testing.assert_frame_equal(one.features, two.features, check_exact=True)
    pd.testing.assert_frame_equal(one.qc, two.qc, check_exact=True)


def test_configured_backend_uses_every_core(many, chunk_log):
    atlas, lut, make = many
    man = make(9)
    with joblib.parallel_config(backend="threading"):
        assert _extract._backend_configured()
        cores = joblib.effective_n_jobs(-1)
        f, _ = extract_roi_features(man, atlas, lut, progress=False)
    size = max(1, math.ceil(9 / (4 * cores)))
    assert sorted(c[0] for c in chunk_log) == sorted(
        [size] * (9 // size) + ([9 % size] if 9 % size else [])
    )
    assert len(f) == 9


@pytest.mark.parametrize(
    ("backend", "configured"),
    [(None, False), ("loky", False), ("sequential", False), ("threading", True)],
)
def test_backend_configured(backend, configured):
    if backend is None:
        assert _extract._backend_configured() is False
    else:
        with joblib.parallel_config(backend=backend):
            assert _extract._backend_configured() is configured


@pytest.mark.parametrize("kw", [{}, {"n_jobs": 2}])
def test_progress_counts_images(many, capsys, monkeypatch, kw):
    import itertools

    import alsprog._progress as progress_module

    atlas, lut, make = many
    man = make(5)
    # a clock advancing 10 s per reading: LineProgress (progress=None off a
    # terminal) prints after each batch of 2, 2 and 1 images, then its last line
    ticks = itertools.count(0, 10)
    monkeypatch.setattr(progress_module, "_clock", lambda: float(next(ticks)))
    extract_roi_features(man, atlas, lut, progress=None, batch_size=2, **kw)
    assert capsys.readouterr().err.splitlines() == [
        "ROI features: 2/5 images (40%), 10 s, about 15 s left",
        "ROI features: 4/5 images (80%), 20 s, about 5 s left",
        "ROI features: 5/5 images done in 40 s",
    ]
    extract_roi_features(man, atlas, lut, progress=False, batch_size=2, **kw)
    assert capsys.readouterr().err == ""
    extract_roi_features(man, atlas, lut, progress=True, batch_size=2, **kw)
    assert "ROI features:   0%|" in capsys.readouterr().err  # the tqdm bar


def test_trim_reaches_the_statistics(tmp_path, nifti):
    atlas = nifti(tmp_path / "a.nii", _line([1] * 5), dtype=np.int16)
    img = nifti(tmp_path / "img.nii", _line([4.0, 100.0, 2.0, -50.0, 3.0]))
    for trim, expected in ((0.2, 3.0), (0.1, 59.0 / 5)):  # 0.1 * 5 voxels: no cut
        f, _ = extract_roi_features(
            _one(img), atlas, {1: "a"}, stats="trimmed_mean", trim=trim,
            progress=False,
        )  # fmt: skip
        assert f.loc[0, "md_a_trimmed_mean"] == expected


def test_linear_resample_is_trilinear(tmp_path, nifti):
    # a peak sampled half-way between voxels: trilinear weights 1/2, 1/2 (a
    # quadratic or cubic spline would overshoot or spread the peak)
    atlas = nifti(tmp_path / "a.nii", _line([1, 2, 3, 4, 5, 6]), dtype=np.int16)
    lut = {i: f"r{i}" for i in range(1, 7)}
    affine = AFFINE.copy()
    affine[0, 3] = -1.0  # atlas voxel i at image x = i + 0.5
    img = nifti(tmp_path / "peak.nii", _line([0.0, 0.0, 8.0, 0.0, 0.0, 0.0, 0.0]),
                affine)  # fmt: skip
    f, _ = extract_roi_features(_one(img), atlas, lut, resample="linear",
                                progress=False)  # fmt: skip
    assert f.iloc[0, 3:].tolist() == [0.0, 4.0, 4.0, 0.0, 0.0, 0.0]
    g, _ = extract_roi_features(_one(img), atlas, lut, resample="nearest",
                                progress=False)  # fmt: skip
    # x = i + 0.5 rounds half to even: 0, 2, 2, 4, 4, 6
    assert g.iloc[0, 3:].tolist() == [0.0, 8.0, 8.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(("n_jobs", "used"), [(1, False), (None, False), (2, True)])
def test_joblib_parallel_only_for_several_workers(many, monkeypatch, n_jobs, used):
    atlas, lut, make = many
    made = []

    class Spy(joblib.Parallel):
        def __init__(self, **kwargs):
            made.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(joblib, "Parallel", Spy)
    f, _ = extract_roi_features(make(4), atlas, lut, n_jobs=n_jobs, progress=False)
    # threads (the work is numpy, which releases the GIL), batches streamed back
    expected = [{"n_jobs": 2, "prefer": "threads", "return_as": "generator"}]
    assert made == (expected if used else [])
    assert len(f) == 4


def test_session_date_from_the_dated_image(line_atlas, tmp_path, nifti):
    # FA dated, MD of the same session undated: one row, the known date
    atlas, lut = line_atlas
    img = nifti(tmp_path / "img.nii", _line([0.5] * 5))
    man = _manifest([("P1", "m00", "2020-01-02", "fa", str(img)),
                     ("P1", "m00", "", "md", str(img))])  # fmt: skip
    with pytest.warns(DataWarning, match="no acquisition date"):  # _bids's count
        f, _ = extract_roi_features(man, atlas, lut, progress=False)
    assert f["acquisition_date"].tolist() == [pd.Timestamp("2020-01-02")]
    assert f.loc[0, ["fa_a", "md_a"]].tolist() == [0.5, 0.5]


def test_session_date_when_first_metric_undated(line_atlas, tmp_path, nifti):
    atlas, lut = line_atlas
    img = nifti(tmp_path / "img.nii", _line([0.5] * 5))
    man = _manifest([("P1", "m00", "", "fa", str(img)),
                     ("P1", "m00", "2020-01-02", "md", str(img))])  # fmt: skip
    with pytest.warns(DataWarning, match="no acquisition date"):  # _bids's count
        f, _ = extract_roi_features(man, atlas, lut, progress=False)
    assert f["acquisition_date"].tolist() == [pd.Timestamp("2020-01-02")]


def test_resample_far_outside_the_image(line_atlas, tmp_path, nifti):
    # atlas voxel i at image x = i - 4: voxels 0-3 lie 4..1 voxels before a 2-voxel
    # image (farther than its length), only voxel 4 is inside
    atlas, lut = line_atlas
    affine = AFFINE.copy()
    affine[0, 3] = 8.0
    img = nifti(tmp_path / "far.nii", _line([6.0, 9.0]), affine)
    for method in ("nearest", "linear"):
        with pytest.warns(DataWarning, match="2 image × region pairs had no usable"):
            f, qc = extract_roi_features(_one(img), atlas, lut, resample=method,
                                         progress=False)  # fmt: skip
        assert qc["n_outside_fov"].tolist() == [2, 2, 0]
        assert qc["n_used"].tolist() == [0, 0, 1]
        assert f.loc[0, "md_c"] == 6.0 and f[["md_a", "md_b"]].isna().all(axis=None)


def test_backend_check_survives_a_moved_joblib_api(monkeypatch):
    # get_active_backend is private joblib API: if it moves, no backend counts as
    # configured (the plain n_jobs rules apply)
    import joblib.parallel

    monkeypatch.delattr(joblib.parallel, "get_active_backend")
    with joblib.parallel_config(backend="threading"):
        assert _extract._backend_configured() is False
