"""Every bad input to extract_roi_features: an ImagingError naming the file."""

from __future__ import annotations

import gzip
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alsprog.errors import DataWarning, ImagingError
from alsprog.imaging import extract_roi_features


@pytest.fixture
def one(small_atlas, nifti, manifest, tmp_path):
    """(atlas path, labels, manifest of one good image, the image's data)."""
    atlas_path, labels = small_atlas
    data = np.random.default_rng(3).normal(0.5, 0.1, labels.shape)
    path = nifti(tmp_path / "good.nii.gz", data)
    return atlas_path, labels, manifest([path]), data


def _run(man, atlas, **kw):
    return extract_roi_features(man, atlas, progress=False, **kw)


def test_missing_file(one, tmp_path):
    atlas, _, man, _ = one
    man = man.assign(path=str(tmp_path / "nope.nii.gz"))
    with pytest.raises(ImagingError, match=r"nope\.nii\.gz: cannot be read"):
        _run(man, atlas)


@pytest.mark.parametrize("keep", [0.5, 0.05])
def test_truncated_gzip(one, tmp_path, keep):
    atlas, _, man, _ = one
    raw = (tmp_path / "good.nii.gz").read_bytes()
    bad = tmp_path / "cut.nii.gz"
    bad.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(ImagingError, match=r"cut\.nii\.gz: .*truncated"):
        _run(man.assign(path=str(bad)), atlas)


def test_truncated_uncompressed(one, tmp_path):
    atlas, _, man, _ = one
    with gzip.open(tmp_path / "good.nii.gz") as fh:
        raw = fh.read()
    bad = tmp_path / "cut.nii"
    bad.write_bytes(raw[:-100])
    with pytest.raises(ImagingError, match=r"cut\.nii: is truncated .* expected"):
        _run(man.assign(path=str(bad)), atlas)


@pytest.mark.parametrize(
    "content, gz",
    [(b"subject_id,session\nP1,m00\n" * 30, False), (b"not an image" * 50, True),
     (b"\x1f\x8bgarbage", False)],
)  # fmt: skip
def test_not_nifti(one, tmp_path, content, gz):
    atlas, _, man, _ = one
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(
        ImagingError, match=r"bad\.nii\.gz: (is not a NIfTI|cannot be read)"
    ):
        _run(man.assign(path=str(bad)), atlas)


def test_analyze_pair_refused(one, tmp_path):
    atlas, labels, man, data = one
    nib.save(nib.Nifti1Pair(data.astype(np.float32), np.eye(4)), tmp_path / "pair.img")
    with pytest.raises(ImagingError, match=r"pair\.hdr: NIfTI magic"):
        _run(man.assign(path=str(tmp_path / "pair.hdr")), atlas)


def test_four_d_refused(one, nifti, tmp_path):
    atlas, labels, man, data = one
    path = nifti(tmp_path / "dwi.nii.gz", np.stack([data, data], axis=-1))
    with pytest.raises(
        ImagingError, match=r"dwi\.nii\.gz: is 4-D with shape \(6, 5, 4, 2\)"
    ):
        _run(man.assign(path=str(path)), atlas)
    # a trailing singleton dimension is a 3-D map
    path1 = nifti(tmp_path / "one.nii.gz", data[..., None])
    _run(man.assign(path=str(path1)), atlas)


def test_complex_voxels_refused(one, nifti, tmp_path):
    atlas, labels, man, data = one
    path = nifti(tmp_path / "cplx.nii.gz", data, dtype=np.complex64)
    with pytest.raises(ImagingError, match=r"cplx\.nii\.gz: voxel type complex64"):
        _run(man.assign(path=str(path)), atlas)


def test_shape_mismatch(one, nifti, tmp_path):
    atlas, labels, man, data = one
    path = nifti(tmp_path / "small.nii.gz", data[:5])
    with pytest.raises(
        ImagingError,
        match=r"small\.nii\.gz: shape \(5, 5, 4\) differs from atlas .*atl_dseg\.nii\.gz"
        r".*resample='nearest'",
    ):
        _run(man.assign(path=str(path)), atlas)


def test_label_missing_from_lookup(one, tmp_path):
    atlas, labels, man, data = one
    table = pd.DataFrame({"index": [1, 3], "name": ["a", "c"]})
    with pytest.raises(
        ImagingError, match=r"atl_dseg\.nii\.gz: labels 2 appear in the atlas but not"
    ):
        _run(man, atlas, labels=table)


def test_missing_sidecar_lookup(one, tmp_path):
    atlas, labels, man, data = one
    (atlas.parent / "atl_dseg.tsv").unlink()
    with pytest.raises(ImagingError, match=r"atl_dseg\.nii\.gz: no lookup table given"):
        _run(man, atlas)


def test_lookup_bad_columns_and_duplicate_names(one, tmp_path):
    atlas, labels, man, data = one
    bad = tmp_path / "lut.tsv"
    bad.write_text("label\tregion\n1\ta\n")
    with pytest.raises(ImagingError, match=r"lut\.tsv: line 1"):
        _run(man, atlas, labels=bad)
    dup = pd.DataFrame({"index": [1, 2, 3], "name": ["CST left", "cst-left", "x"]})
    with pytest.raises(
        ImagingError, match=r"labels 1 and 2 both become region 'cst_left'"
    ):
        _run(man, atlas, labels=dup)


def test_probabilistic_atlas_refused(one, nifti, tmp_path):
    atlas, labels, man, data = one
    prob = nifti(tmp_path / "prob.nii.gz", labels * 0.3)
    with pytest.raises(
        ImagingError, match=r"prob\.nii\.gz: atlas must hold whole-number"
    ):
        _run(man, prob, labels={1: "a", 2: "b", 3: "c"})
    four = nifti(tmp_path / "four.nii.gz", np.stack([labels] * 2, -1), dtype=np.int16)
    with pytest.raises(ImagingError, match=r"four\.nii\.gz: is 4-D"):
        _run(man, four, labels={1: "a", 2: "b", 3: "c"})


def test_duplicate_in_manifest(one):
    atlas, labels, man, data = one
    dup = pd.concat([man, man.assign(path=man["path"] + ".copy")], ignore_index=True)
    with pytest.raises(
        ImagingError,
        match=r"manifest table: 1 duplicate subject × session × metric"
        r"(.|\n)*sub-P1 ses-m00 fa: .*good\.nii\.gz, .*good\.nii\.gz\.copy",
    ):
        _run(dup, atlas)


def test_duplicate_in_bids_root(one, tmp_path):
    atlas, labels, man, data = one
    root = tmp_path / "bids"
    for space in ("MNI", "native"):
        d = root / "sub-01" / "ses-1" / "dwi"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(man["path"][0], d / f"sub-01_ses-1_space-{space}_fa.nii.gz")
    with pytest.raises(ImagingError, match=r"space-MNI_fa\.nii\.gz, .*space-native_fa"):
        _run(root, atlas)


def test_bids_root_problems(one, tmp_path):
    atlas, labels, man, data = one
    root = tmp_path / "bids"
    with pytest.raises(ImagingError, match=r"bids: does not exist"):
        _run(root, atlas)
    root.mkdir()
    with pytest.raises(ImagingError, match=r"bids: no images"):
        _run(root, atlas)
    d = root / "sub-01" / "ses-1" / "anat"
    d.mkdir(parents=True)
    shutil.copy(man["path"][0], d / "sub-02_ses-1_thickness.nii.gz")
    with pytest.raises(
        ImagingError, match=r"sub-02_ses-1_thickness\.nii\.gz: file name"
    ):
        _run(root, atlas)


def test_bids_dates_and_missing_sessions_tsv(one, tmp_path):
    atlas, labels, man, data = one
    root = tmp_path / "bids"
    for sub in ("01", "02"):
        d = root / f"sub-{sub}" / "ses-a" / "anat"
        d.mkdir(parents=True)
        shutil.copy(man["path"][0], d / f"sub-{sub}_ses-a_thickness.nii.gz")
        shutil.copy(man["path"][0], d / f"sub-{sub}_ses-a_desc-brain_mask.nii.gz")
    (root / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tacq_time\nses-a\t2021-03-04T10:11:12\n"
    )
    with pytest.warns(DataWarning, match=r"1 session\(s\) have no acquisition date"):
        features, qc = _run(root, atlas)
    assert features["acquisition_date"].tolist()[0] == pd.Timestamp("2021-03-04")
    assert pd.isna(features["acquisition_date"].tolist()[1])
    assert set(qc["metric"]) == {"thickness"}  # the mask is not a metric
    (root / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tacq_time\nses-a\tyesterday\n"
    )
    with pytest.raises(ImagingError, match=r"sub-01_sessions\.tsv: line 2: acq_time"):
        _run(root, atlas)


@pytest.mark.parametrize(
    "kw, err, match",
    [({"stats": ("mean", "mode")}, ValueError, "`stats` must be one of"),
     ({"stats": ()}, ValueError, "`stats` must name"),
     ({"stats": ("mean", "mean")}, ValueError, "must not repeat"),
     ({"nan_policy": "drop"}, ValueError, "`nan_policy` must be one of"),
     ({"resample": "cubic"}, ValueError, "`resample` must be one of"),
     ({"trim": 0.5}, ValueError, r"`trim` must be in \[0, 0.5\)"),
     ({"n_jobs": 0}, ValueError, "`n_jobs`"),
     ({"n_jobs": 1.5}, TypeError, "`n_jobs`"),
     ({"batch_size": 0}, ValueError, "`batch_size`")],
)  # fmt: skip
def test_bad_arguments(one, kw, err, match):
    atlas, labels, man, data = one
    with pytest.raises(err, match=match):
        _run(man, atlas, **kw)


def test_bad_images_type(one):
    atlas, *_ = one
    with pytest.raises(TypeError, match="`images` must be"):
        _run(42, atlas)
