"""write_nifti: BIDS-derivatives layout, atlas, and ROI means equal to the imaging table."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alsprog.errors import ImagingError
from alsprog.simulate import write_nifti

REGIONS = ["cst_left", "cst_right", "cc_motor", "precentral_left", "precentral_right",
           "cuneus_left"]  # fmt: skip
FOLDER = {"fa": "dwi", "md": "dwi", "thickness": "anat"}


@pytest.fixture(scope="module")
def written(nifti_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("bids") / "derivatives"
    returned = write_nifti(nifti_cohort, out, seed=1, progress=False)
    assert returned == out
    return out


def _image_path(out, sid, ses, metric):
    return (out / f"sub-{sid}" / f"ses-{ses}" / FOLDER[metric]
            / f"sub-{sid}_ses-{ses}_space-alsprogsim_{metric}.nii.gz")  # fmt: skip


@pytest.fixture(scope="module")
def atlas(written):
    img = nib.load(written / "atlas" / "atlas-alsprogsim_dseg.nii.gz")
    return img, np.asarray(img.dataobj)


def test_dataset_description(written):
    desc = json.loads((written / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "alsprog"
    assert "BIDSVersion" in desc and "Name" in desc


def test_atlas_labels_and_tsv(atlas, written):
    img, labels = atlas
    assert img.get_data_dtype() == np.int16
    assert labels.shape == (40, 48, 40)
    tsv = pd.read_csv(written / "atlas" / "atlas-alsprogsim_dseg.tsv", sep="\t")
    assert list(tsv.columns) == ["index", "name", "metrics"]
    assert list(tsv["name"]) == REGIONS
    # issue 18: which metrics belong to which region (tracts: FA/MD; cortex:
    # thickness), as the simulated imaging table has them
    assert list(tsv["metrics"]) == [
        "fa md", "fa md", "fa", "thickness", "thickness", "thickness"
    ]  # fmt: skip
    assert set(np.unique(labels)) == {0, *tsv["index"]}
    for index in tsv["index"]:
        assert (labels == index).sum() >= 50  # compact blobs, not single voxels
    # left regions on the left (negative x in RAS), right on the right
    ijk = np.argwhere(labels == tsv.set_index("name").loc["cst_left", "index"])
    assert (nib.affines.apply_affine(img.affine, ijk)[:, 0] < 0).all()
    np.testing.assert_allclose(np.diag(img.affine)[:3], 3.0)
    centre = nib.affines.apply_affine(img.affine, (np.array(labels.shape) - 1) / 2)
    np.testing.assert_allclose(centre, 0.0, atol=1e-9)


def test_every_session_has_three_maps(written, nifti_cohort):
    im = nifti_cohort.imaging
    assert set(im["subject_id"].str[0]) == {"P", "C"}  # controls included
    for row in im.itertuples():
        for metric in FOLDER:
            assert _image_path(written, row.subject_id, row.session, metric).is_file()
    n_maps = len(list(written.rglob("sub-*_space-alsprogsim_*.nii.gz")))
    assert n_maps == 3 * len(im)
    assert not list(written.rglob("*.tmp"))  # atomic writes leave nothing behind


def test_sessions_and_participants_tsv(written, nifti_cohort):
    im = nifti_cohort.imaging
    for sid, rows in im.groupby("subject_id"):
        tsv = pd.read_csv(written / f"sub-{sid}" / f"sub-{sid}_sessions.tsv", sep="\t")
        assert list(tsv.columns) == ["session_id", "acq_time"]
        assert list(tsv["session_id"]) == ["ses-" + s for s in rows["session"]]
        assert list(tsv["acq_time"]) == list(
            rows["acquisition_date"].dt.strftime("%Y-%m-%d")
        )
    part = pd.read_csv(written / "participants.tsv", sep="\t")
    assert sorted(part["participant_id"]) == sorted("sub-" + im["subject_id"].unique())


@pytest.mark.parametrize("metric", ["fa", "md", "thickness"])
def test_maps_share_space_and_reproduce_roi_means(written, nifti_cohort, atlas, metric):
    atlas_img, labels = atlas
    im = nifti_cohort.imaging
    measured = [r for r in REGIONS if f"{metric}_{r}" in im.columns]
    assert measured
    for row in im.itertuples():
        img = nib.load(_image_path(written, row.subject_id, row.session, metric))
        assert img.shape == labels.shape
        assert img.get_data_dtype() == np.float32
        np.testing.assert_allclose(img.affine, atlas_img.affine)
        data = np.asarray(img.dataobj, dtype=np.float64)
        for region in measured:
            roi = labels == REGIONS.index(region) + 1
            assert data[roi].mean() == pytest.approx(
                getattr(row, f"{metric}_{region}"), rel=1e-5
            )
            assert data[roi].std() > 0  # voxel noise, not a constant fill
        assert np.isfinite(data).all() and data.min() >= 0


def test_unmeasured_regions_have_plausible_values(written, nifti_cohort, atlas):
    _, labels = atlas
    row = nifti_cohort.imaging.iloc[0]
    fa = np.asarray(
        nib.load(_image_path(written, row.subject_id, row.session, "fa")).dataobj
    )
    th = np.asarray(
        nib.load(_image_path(written, row.subject_id, row.session, "thickness")).dataobj
    )
    cortex = labels == REGIONS.index("precentral_left") + 1
    assert 0.1 < fa[cortex].mean() < 0.3  # grey matter FA is low
    assert fa.max() <= 1.0
    assert th[labels == REGIONS.index("cst_left") + 1].mean() < 0.5  # no cortex in WM
    assert (fa[labels == 0] >= 0).all()


def test_same_seed_same_bytes(nifti_cohort, tmp_path):
    a = write_nifti(
        nifti_cohort, tmp_path / "a", shape=(20, 24, 20), seed=5, progress=False
    )
    b = write_nifti(
        nifti_cohort, tmp_path / "b", shape=(20, 24, 20), seed=5, progress=False
    )
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        if f.name not in ("dataset_description.json", ".alsprog-manifest.json"):
            assert (a / f).read_bytes() == (b / f).read_bytes(), f


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shape": (40, 48)}, TypeError, r"`shape`"),
        ({"shape": "40x48x40"}, TypeError, r"`shape`"),
        ({"shape": (40, 48, 4)}, ValueError, r"`shape\[2\]`"),
        ({"shape": (40, 48, 40.5)}, TypeError, r"`shape\[2\]`"),
        ({"voxel_size": 0.0}, ValueError, r"`voxel_size`"),
        ({"voxel_size": "3"}, TypeError, r"`voxel_size`"),
        ({"n_jobs": 0}, ValueError, r"`n_jobs`"),
        ({"n_jobs": 1.5}, TypeError, r"`n_jobs`"),
        (
            {"shape": (12, 12, 12)},
            ImagingError,
            r"atlas-alsprogsim_dseg\.nii\.gz.*precentral",
        ),
    ],
)
def test_argument_errors(nifti_cohort, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        write_nifti(nifti_cohort, tmp_path / "out", progress=False, **kwargs)


def test_cohort_type_is_checked(tmp_path):
    with pytest.raises(TypeError, match="`cohort` must be a Cohort"):
        write_nifti(pd.DataFrame(), tmp_path / "out")


def test_files_do_not_depend_on_n_jobs(nifti_cohort, tmp_path):
    kw = {"shape": (20, 24, 20), "seed": 8, "progress": False}
    a = write_nifti(nifti_cohort, tmp_path / "a", n_jobs=1, **kw)
    b = write_nifti(nifti_cohort, tmp_path / "b", n_jobs=2, **kw)
    for f in a.rglob("*.nii.gz"):
        assert f.read_bytes() == (b / f.relative_to(a)).read_bytes(), f


@pytest.mark.parametrize(
    ("dtype", "shape", "intent"),
    [
        ("<f4", (7, 8, 9), None),
        ("<i2", (7, 8, 9), "label"),
        (">f4", (5, 6, 4, 3), None),
    ],
)
def test_nifti_bytes_are_nibabels_with_the_header_built_once(dtype, shape, intent):
    import gzip

    import nibabel as nib
    import numpy as np

    from alsprog.simulate._nifti import _header_bytes, _nifti_bytes

    affine = np.diag([3.0, 2.5, 3.0, 1.0])
    affine[:3, 3] = [-30.0, -40.0, -25.0]
    rng = np.random.default_rng(4)
    for _ in range(2):  # the second file reuses the cached header
        data = (rng.normal(size=shape) * 100).astype(dtype)
        img = nib.Nifti1Image(data.astype(np.dtype(dtype).newbyteorder("=")), affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
        img.header.set_xyzt_units("mm")
        if intent is not None:
            img.header.set_intent(intent)
        assert (
            gzip.decompress(_nifti_bytes(nib, data, affine, intent)) == img.to_bytes()
        )
    assert _header_bytes.cache_info().hits >= 1
