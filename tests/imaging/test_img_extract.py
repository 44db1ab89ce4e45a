"""extract_roi_features: exact values on hand-made volumes, the simulator's table,
nilearn's NiftiLabelsMasker, QC, resampling and parallel runs."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats as sps

from alsprog.errors import DataWarning, ImagingError
from alsprog.imaging import STATISTICS, extract_roi_features, roi_statistics

FEATURE_COLUMNS = ["fa_cst_left", "fa_cst_right", "fa_cc_motor", "md_cst_left",
                   "md_cst_right", "thickness_precentral_left",
                   "thickness_precentral_right", "thickness_cuneus_left"]  # fmt: skip


# --------------------------------------------------------------------- simulator


@pytest.fixture(scope="module")
def sim_features(sim_root, sim_atlas):
    return extract_roi_features(sim_root, sim_atlas, progress=False)


def test_simulator_table_recovered(sim_features, sim_cohort):
    features, _ = sim_features
    truth = sim_cohort.imaging.sort_values(["subject_id", "session"]).reset_index(
        drop=True
    )
    assert list(features.columns[:3]) == ["subject_id", "session", "acquisition_date"]
    assert features["subject_id"].tolist() == truth["subject_id"].tolist()
    assert features["session"].tolist() == truth["session"].tolist()
    assert (features["acquisition_date"] == truth["acquisition_date"]).all()
    # write_nifti sets each ROI mean to the table value; only float32 storage of the
    # voxels separates them (relative rounding 6e-8 per voxel)
    for col in FEATURE_COLUMNS:
        assert_allclose(features[col], truth[col], rtol=1e-6, err_msg=col)


REGIONS = ["cst_left", "cst_right", "cc_motor", "precentral_left",
           "precentral_right", "cuneus_left"]  # fmt: skip


def test_simulator_atlas_gives_only_its_meaningful_features(sim_features):
    # issue 18: the simulated atlas's lookup table says which metrics belong to which
    # region, so FA/MD come from tracts and thickness from cortex only: exactly the
    # simulator's imaging table (earlier every metric in every region, 3 x 6 columns)
    features, qc = sim_features
    assert list(features.columns[3:]) == FEATURE_COLUMNS
    # one QC row per image x region of its metric: 2 + 2 + 1 FA/MD tracts... per
    # session: fa 3 regions, md 2, thickness 3
    assert len(qc) == len(features) * (3 + 2 + 3)
    assert (qc["status"] == "ok").all() and (qc["coverage"] == 1.0).all()
    assert (qc["n_nan"] == 0).all()


def test_every_metric_region_column_without_metrics_column(sim_root, sim_atlas):
    # a lookup table without a `metrics` column: every metric in every region, as
    # before (backwards compatible)
    labels = pd.DataFrame({"index": range(1, 7), "name": REGIONS})
    features, qc = extract_roi_features(sim_root, sim_atlas, labels, progress=False)
    expected = [f"{m}_{r}" for m in ("fa", "md", "thickness") for r in REGIONS]
    assert list(features.columns[3:]) == expected
    assert len(qc) == len(features) * 3 * 6


def test_identical_to_nilearn(sim_root, sim_atlas, sim_features):
    from nilearn.maskers import NiftiLabelsMasker

    features, _ = sim_features
    paths = sorted(sim_root.glob("sub-*/ses-*/dwi/*_md.nii.gz"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = NiftiLabelsMasker(
            labels_img=str(sim_atlas), strategy="mean"
        ).fit_transform([str(p) for p in paths])
    # MD is measured in the two tracts, labels 1 and 2 (nilearn's first columns)
    ours = features[["md_cst_left", "md_cst_right"]].to_numpy()
    assert ref.shape == (len(ours), 6)
    assert_allclose(ours, ref[:, :2], atol=1e-6, rtol=0)


def test_assemble_joins_features(sim_cohort, sim_features):
    from alsprog.data import assemble

    features, _ = sim_features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        long = assemble(sim_cohort.visits, sim_cohort.subjects, imaging=features)
    matched = long.dropna(subset=["fa_cst_left"])
    assert len(matched) == len(features)
    assert "imaging_offset_days" in long.columns


def test_parallel_threads_identical(sim_root, sim_atlas, sim_features):
    par = extract_roi_features(
        sim_root, sim_atlas, n_jobs=2, batch_size=5, progress=False
    )
    pd.testing.assert_frame_equal(par.features, sim_features.features)
    pd.testing.assert_frame_equal(par.qc, sim_features.qc)


def test_dask_local_cluster_identical(sim_root, sim_atlas, sim_features):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        parallel_config(backend="dask"),
    ):
        out = extract_roi_features(sim_root, sim_atlas, batch_size=6, progress=False)
        # the batches ran on the cluster's workers
        assert sum(client.run(lambda: 1).values()) == 2
    pd.testing.assert_frame_equal(out.features, sim_features.features)
    pd.testing.assert_frame_equal(out.qc, sim_features.qc)


def test_metrics_filter_and_progress(sim_root, sim_atlas):
    features, qc = extract_roi_features(
        sim_root, sim_atlas, metrics=["FA"], progress=True
    )
    assert set(qc["metric"]) == {"fa"}
    assert all(c.startswith("fa_") for c in features.columns[3:])


# --------------------------------------------------------------------- hand-made


def _roi_values(data, labels, label):
    return np.asarray(data, dtype=np.float64)[labels == label]


@pytest.fixture
def handmade(small_atlas, nifti, manifest, tmp_path):
    atlas_path, labels = small_atlas
    rng = np.random.default_rng(7)
    data = [rng.normal(0.5, 0.1, labels.shape).astype(np.float32) for _ in range(2)]
    paths = [nifti(tmp_path / f"img{i}.nii.gz", d) for i, d in enumerate(data)]
    return atlas_path, labels, data, manifest(paths)


def test_handmade_exact_statistics(handmade):
    atlas_path, labels, data, man = handmade
    features, qc = extract_roi_features(
        man, atlas_path, stats=STATISTICS, progress=False
    )
    regions = {1: "cst_left", 2: "left_hippocampus", 3: "cc_motor"}
    for row, d in enumerate(data):
        for label, region in regions.items():
            v = _roi_values(d, labels, label)
            col = f"fa_{region}"
            # independent references: numpy and scipy on the voxels picked by mask
            assert features.loc[row, col] == pytest.approx(v.mean(), abs=1e-12)
            assert features.loc[row, f"{col}_median"] == pytest.approx(np.median(v))
            assert features.loc[row, f"{col}_std"] == pytest.approx(v.std(), rel=1e-10)
            assert features.loc[row, f"{col}_count"] == v.size
            # voxels of 2 x 2 x 2.5 mm
            assert features.loc[row, f"{col}_volume"] == pytest.approx(v.size * 10.0)
            assert features.loc[row, f"{col}_trimmed_mean"] == pytest.approx(
                sps.trim_mean(v, 0.1), rel=1e-12
            )
    assert list(features.columns[3:9]) == [
        "fa_cst_left", "fa_cst_left_median", "fa_cst_left_std", "fa_cst_left_count",
        "fa_cst_left_volume", "fa_cst_left_trimmed_mean",
    ]  # fmt: skip
    assert qc["n_voxels"].tolist()[:3] == [40, 12, 24]


def test_handmade_known_means(small_atlas, nifti, manifest, tmp_path):
    atlas_path, labels = small_atlas
    data = np.where(labels == 1, 0.25, 0.0) + np.where(labels == 2, 0.75, 0.0)
    data[labels == 3] = np.tile([1.0, 2.0, 3.0, 6.0], 6)  # mean 3, median 2.5
    path = nifti(tmp_path / "known.nii", data)  # uncompressed
    features, _ = extract_roi_features(
        manifest([path], metric="thickness"), atlas_path,
        stats=("mean", "median", "trimmed_mean"), trim=0.25, progress=False,
    )  # fmt: skip
    row = features.iloc[0]
    assert row["thickness_cst_left"] == 0.25
    assert row["thickness_left_hippocampus"] == 0.75
    assert row["thickness_cc_motor"] == 3.0
    assert row["thickness_cc_motor_median"] == 2.5
    # 24 values, 6 cut from each end: the 12 middle ones are six 2s and six 3s
    assert row["thickness_cc_motor_trimmed_mean"] == 2.5


def test_integer_and_scaled_images(small_atlas, manifest, tmp_path):
    atlas_path, labels = small_atlas
    raw = (labels * 10 + 1).astype(np.int16)
    img = nib.Nifti1Image(raw, np.diag([2.0, 2.0, 2.5, 1.0]))
    img.header.set_slope_inter(0.5, 1.0)
    nib.save(img, tmp_path / "scaled.nii.gz")
    # metric md (diffusivity, no upper bound): 6.5 would be refused as FA (0-1)
    features, _ = extract_roi_features(
        manifest([tmp_path / "scaled.nii.gz"], metric="md"), atlas_path, progress=False
    )
    # stored 11, 21, 31 -> 0.5 * v + 1
    assert features.iloc[0, 3:].tolist() == [6.5, 11.5, 16.5]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_ignored_and_counted(handmade, nifti, tmp_path, bad):
    atlas_path, labels, data, man = handmade
    d = data[0].copy()
    idx = np.argwhere(labels == 2)[:3]
    d[tuple(idx.T)] = bad
    d[labels == 0] = np.nan  # outside every region: irrelevant
    nifti(tmp_path / "img0.nii.gz", d)
    features, qc = extract_roi_features(man, atlas_path, progress=False)
    v = _roi_values(d, labels, 2)
    assert features.loc[0, "fa_left_hippocampus"] == pytest.approx(
        v[np.isfinite(v)].mean(), abs=1e-12
    )
    row = qc[(qc["path"] == man["path"][0]) & (qc["region"] == "left_hippocampus")]
    assert row[["n_nan", "n_used", "n_voxels"]].iloc[0].tolist() == [3, 9, 12]
    assert row["coverage"].iloc[0] == pytest.approx(0.75)
    with pytest.raises(ImagingError, match=r"img0\.nii\.gz: 3 NaN/inf voxels"):
        extract_roi_features(man, atlas_path, nan_policy="raise", progress=False)


def test_empty_region_warns(handmade, nifti, tmp_path):
    atlas_path, labels, data, man = handmade
    d = data[1].copy()
    d[labels == 3] = np.nan
    nifti(tmp_path / "img1.nii.gz", d)
    with pytest.warns(DataWarning, match=r"1 image × region pairs had no usable"):
        features, qc = extract_roi_features(man, atlas_path, progress=False)
    assert np.isnan(features.loc[1, "fa_cc_motor"])
    assert qc.loc[(qc["region"] == "cc_motor"), "status"].tolist() == ["ok", "empty"]


def test_mask_leaves_voxels_out(handmade, nifti, tmp_path):
    atlas_path, labels, data, man = handmade
    mask = np.ones(labels.shape, np.uint8)
    mask[0, :, :] = 0  # half of cst_left
    mpath = nifti(tmp_path / "mask.nii.gz", mask, dtype=np.uint8)
    features, qc = extract_roi_features(man, atlas_path, mask=mpath, progress=False)
    v = np.asarray(data[0], np.float64)[(labels == 1) & (mask == 1)]
    assert features.loc[0, "fa_cst_left"] == pytest.approx(v.mean(), abs=1e-12)
    first = qc.iloc[0]
    assert (first["n_voxels"], first["n_outside_mask"], first["n_used"]) == (40, 20, 20)
    assert first["coverage"] == 0.5


def test_lookup_table_labels_absent_from_atlas(handmade, tmp_path):
    atlas_path, labels, data, man = handmade
    table = pd.DataFrame(
        {"index": [1, 2, 3, 9], "name": ["cst_left", "hippo L", "cc", "Pons"]}
    )
    features, qc = extract_roi_features(man, atlas_path, table, progress=False)
    assert "fa_pons" not in features.columns
    absent = qc[qc["status"] == "absent_from_atlas"]
    assert absent["region"].tolist() == ["pons", "pons"]
    assert (absent["label"] == 9).all() and (absent["n_voxels"] == 0).all()
    assert list(features.columns[3:]) == ["fa_cst_left", "fa_hippo_l", "fa_cc"]


def test_freesurfer_lut_and_mapping_labels(handmade, tmp_path):
    atlas_path, labels, data, man = handmade
    lut = tmp_path / "FreeSurferColorLUT.txt"
    lut.write_text(
        "#$Id: FreeSurferColorLUT.txt\n\n"
        "#No. Label Name:                            R   G   B   A\n"
        "0   Unknown                                 0   0   0   0\n"
        "1   Left-Cerebral-Exterior                  70  130 180 0\n"
        "2   Left-Cerebral-White-Matter              245 245 245 0\n"
        "3   Left-Cerebral-Cortex                    205 62  78  0\n"
    )
    features, _ = extract_roi_features(man, atlas_path, lut, progress=False)
    assert list(features.columns[3:]) == [
        "fa_left_cerebral_exterior", "fa_left_cerebral_white_matter",
        "fa_left_cerebral_cortex",
    ]  # fmt: skip
    mapped, _ = extract_roi_features(
        man, atlas_path, {1: "a", 2: "b", 3: "c"}, progress=False
    )
    assert list(mapped.columns[3:]) == ["fa_a", "fa_b", "fa_c"]
    assert_allclose(mapped.iloc[:, 3:].to_numpy(), features.iloc[:, 3:].to_numpy())


def test_manifest_file_with_relative_paths(handmade, tmp_path):
    atlas_path, labels, data, man = handmade
    rel = man.assign(path=[f"img{i}.nii.gz" for i in range(2)])
    rel.to_csv(tmp_path / "manifest.csv", index=False)
    features, _ = extract_roi_features(
        tmp_path / "manifest.csv", atlas_path, progress=False
    )
    direct, _ = extract_roi_features(man, atlas_path, progress=False)
    pd.testing.assert_frame_equal(features, direct)
    assert features["acquisition_date"].tolist() == [
        pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-02")
    ]  # fmt: skip


# --------------------------------------------------------------------- resampling


def test_resample_shifted_grid(handmade, nifti, tmp_path):
    atlas_path, labels, data, man = handmade
    # the same voxels on a larger grid whose origin lies 2 voxels lower in x
    big = np.full((9, 5, 4), 7.0, dtype=np.float32)
    big[2:8] = data[0]
    affine = np.diag([2.0, 2.0, 2.5, 1.0])
    affine[0, 3] = -4.0
    path = nifti(tmp_path / "shifted.nii.gz", big, affine)
    one = man.iloc[:1].assign(path=str(path))
    with pytest.raises(
        ImagingError, match=r"shifted\.nii\.gz: shape \(9, 5, 4\) differs"
    ):
        extract_roi_features(one, atlas_path, progress=False)
    ref, _ = extract_roi_features(man.iloc[:1], atlas_path, progress=False)
    for method in ("nearest", "linear"):
        got, qc = extract_roi_features(one, atlas_path, resample=method, progress=False)
        assert_allclose(
            got.iloc[:, 3:].to_numpy(), ref.iloc[:, 3:].to_numpy(), atol=1e-7
        )
        assert (qc["n_outside_fov"] == 0).all()


def test_resample_outside_field_of_view(handmade, nifti, tmp_path):
    atlas_path, labels, data, man = handmade
    # an image covering only x-slices 0..2 of the atlas
    affine = np.diag([2.0, 2.0, 2.5, 1.0])
    path = nifti(tmp_path / "partial.nii.gz", data[0][:3], affine)
    one = man.iloc[:1].assign(path=str(path))
    with pytest.warns(DataWarning, match="cc_motor"):  # x 4..5: wholly outside
        got, qc = extract_roi_features(
            one, atlas_path, resample="nearest", progress=False
        )
    hip = qc[qc["region"] == "left_hippocampus"].iloc[0]
    # hippocampus spans x 2..3: x=3 (6 voxels) lies outside the image
    assert (hip["n_outside_fov"], hip["n_used"], hip["n_nan"]) == (6, 6, 0)
    v = np.asarray(data[0], np.float64)[2, 0:3, 0:2]
    assert got.loc[0, "fa_left_hippocampus"] == pytest.approx(v.mean(), abs=1e-12)


def test_affine_tolerance(handmade, nifti, tmp_path):
    atlas_path, labels, data, man = handmade
    for shift, ok in ((5e-4, True), (5e-3, False)):
        affine = np.diag([2.0, 2.0, 2.5, 1.0])
        affine[1, 3] = shift
        path = nifti(tmp_path / f"shift{ok}.nii.gz", data[0], affine)
        one = man.iloc[:1].assign(path=str(path))
        if ok:
            extract_roi_features(one, atlas_path, progress=False)
        else:
            with pytest.raises(
                ImagingError, match=r"affine differs from atlas .* 0\.005 mm"
            ):
                extract_roi_features(one, atlas_path, progress=False)


# --------------------------------------------------------------------- numerics


def test_roi_statistics_all_nan_region():
    v = np.array([np.nan, np.nan, 1.0])
    s, used, bad = roi_statistics(
        v, np.array([0, 0, 1]), np.array([0, 2, 3]), stats=STATISTICS
    )
    assert np.isnan(s[[0, 1, 2, 5], 0]).all() and s[3, 0] == 0 and s[4, 0] == 0
    assert used.tolist() == [0, 1] and bad.tolist() == [2, 0]
    assert s[:, 1].tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
