"""extract_suvr: SUVR against a hand computation, GTM partial-volume correction
against simulation truth and an independent blur, the error cases, and the PET
simulator round trip."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.signal import fftconvolve

from alsprog.errors import (
    DataValidationError,
    DataWarning,
    ImagingError,
    ModelSpecificationError,
)
from alsprog.imaging._pet import extract_suvr, gtm_matrix
from alsprog.simulate import simulate_cohort
from alsprog.simulate._pet import (
    ALS_MOTOR_EFFECT,
    HEALTHY_SUVR,
    simulate_suvr,
    write_pet,
)

ATLAS = "atlas-alsprogsimpet_dseg.nii.gz"
BRAIN = "atlas-alsprogsimpet_desc-brain_mask.nii.gz"
SIM_REGIONS = ["cst_left", "cst_right", "cc_motor", "precentral_left",
               "precentral_right", "cuneus_left"]  # fmt: skip
SIM_COLUMNS = [f"suvr_{r}" for r in SIM_REGIONS]


# ----------------------------------------------------------------- hand-made data


@pytest.fixture
def pet_atlas(tmp_path, nifti):
    """8x7x6 atlas, 2 mm voxels: 1 cerebellum_grey, 2 precentral_left, 3 cst_left;
    voxels in no region along the x = 7 face."""
    labels = np.zeros((8, 7, 6), dtype=np.int16)
    labels[0:3] = 1
    labels[3:5, 0:4] = 2
    labels[3:7, 4:7] = 3
    labels[5:7, 0:4, 0:3] = 3
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    path = nifti(tmp_path / "atlas" / "pet_dseg.nii.gz", labels, affine, dtype=np.int16)
    pd.DataFrame(
        {"index": [1, 2, 3], "name": ["Cerebellum grey", "precentral_left", "CST left"]}
    ).to_csv(tmp_path / "atlas" / "pet_dseg.tsv", sep="\t", index=False)
    return path, labels, affine


def _uptake_images(tmp_path, nifti, labels, affine, n=2, seed=0):
    rng = np.random.default_rng(seed)
    paths, arrays = [], []
    for i in range(n):
        data = rng.uniform(0.5, 3.0, labels.shape).astype(np.float32)
        paths.append(nifti(tmp_path / f"pet{i}.nii.gz", data, affine))
        arrays.append(data)
    return paths, arrays


def test_suvr_equals_hand_computation(tmp_path, nifti, manifest, pet_atlas):
    atlas, labels, affine = pet_atlas
    paths, arrays = _uptake_images(tmp_path, nifti, labels, affine)
    features, qc = extract_suvr(manifest(paths, metric="pet"), atlas, progress=False)
    # hand computation: regional means of the stored float32 voxels, in float64
    for i, data in enumerate(arrays):
        d = data.astype(np.float64)
        ref = d[labels == 1].sum() / np.count_nonzero(labels == 1)
        pre = d[labels == 2].sum() / np.count_nonzero(labels == 2) / ref
        cst = d[labels == 3].sum() / np.count_nonzero(labels == 3) / ref
        assert_allclose(features.loc[i, "suvr_precentral_left"], pre, rtol=1e-9)
        assert_allclose(features.loc[i, "suvr_cst_left"], cst, rtol=1e-9)
        assert_allclose(
            qc.loc[qc["subject_id"] == f"P{i + 1}", "uptake"],
            [d[labels == k].mean() for k in (1, 2, 3)],
            rtol=1e-9,
        )
    # same long layout as extract_roi_features; the reference gets no column
    assert list(features.columns) == [
        "subject_id", "session", "acquisition_date", "suvr_precentral_left",
        "suvr_cst_left",
    ]  # fmt: skip
    assert features["subject_id"].tolist() == ["P1", "P2"]
    assert features["session"].tolist() == ["m00", "m00"]
    assert list(qc["region"][:3]) == ["cerebellum_grey", "precentral_left", "cst_left"]
    assert (qc["status"] == "ok").all() and qc["uptake_pvc"].isna().all()
    assert_allclose(qc["suvr"][qc["region"] == "cerebellum_grey"], 1.0, rtol=1e-15)


def test_suvr_of_bids_folder_and_other_reference(tmp_path, nifti, pet_atlas):
    atlas, labels, affine = pet_atlas
    data = np.where(labels == 2, 4.0, np.where(labels == 3, 2.0, 1.0))
    root = tmp_path / "bids"
    nifti(
        root / "sub-01" / "ses-m06" / "pet" / "sub-01_ses-m06_pet.nii.gz", data, affine
    )
    nifti(
        root / "sub-01" / "ses-m06" / "anat" / "sub-01_ses-m06_T1w.nii.gz", data, affine
    )
    with pytest.warns(DataWarning, match="no acquisition date"):
        features, _ = extract_suvr(
            root, atlas, reference_region="CST left", progress=False
        )
    # only the pet image is read; reference cst_left (uptake 2)
    assert features.columns[3:].tolist() == [
        "suvr_cerebellum_grey", "suvr_precentral_left"
    ]  # fmt: skip
    assert features.iloc[0, 3:].tolist() == [0.5, 2.0]


# ------------------------------------------------------------------ GTM numerics


def test_gtm_with_vanishing_psf_equals_uncorrected(
    tmp_path, nifti, manifest, pet_atlas
):
    atlas, labels, affine = pet_atlas
    paths, _ = _uptake_images(tmp_path, nifti, labels, affine)
    table = manifest(paths, metric="pet")
    plain, _ = extract_suvr(table, atlas, progress=False)
    pvc, qc = extract_suvr(table, atlas, pvc="gtm", psf_fwhm=1e-4, progress=False)
    assert_allclose(pvc.iloc[:, 3:], plain.iloc[:, 3:], rtol=1e-12)
    assert_allclose(qc["uptake_pvc"], qc["uptake"], rtol=1e-12)


def _kernel_blur(true, fwhm, voxel):
    """Blur with an explicit 3-D Gaussian built on mm coordinates (4-sigma box, as
    scipy's default truncation), by FFT convolution with zero padding."""
    sig = fwhm / (2 * math.sqrt(2 * math.log(2)))
    axes = []
    for v in voxel:
        r = int(4 * sig / v + 0.5)
        axes.append(np.arange(-r, r + 1) * v)
    x, y, z = np.meshgrid(*axes, indexing="ij")
    k = np.exp(-(x**2 + y**2 + z**2) / (2 * sig**2))
    return fftconvolve(true, k / k.sum(), mode="same")


def test_gtm_recovers_truth_on_anisotropic_voxels(tmp_path, nifti, manifest):
    # 2 x 2 x 3.5 mm voxels; blocks of uniform uptake, the rest of the field of view
    # uniform too (one background region); blurred independently of alsprog
    voxel = (2.0, 2.0, 3.5)
    labels = np.zeros((18, 16, 12), dtype=np.int16)
    labels[2:9, 2:14, 2:10] = 1
    labels[10:13, 3:7, 3:9] = 2
    labels[10:16, 9:13, 5:8] = 3
    truth = {0: 0.4, 1: 1.0, 2: 1.3, 3: 0.6}
    true = np.vectorize(truth.get)(labels).astype(np.float64)
    affine = np.diag([*voxel, 1.0])
    atlas = nifti(tmp_path / "a_dseg.nii.gz", labels, affine, dtype=np.int16)
    lut = {1: "cerebellum_grey", 2: "precentral_left", 3: "cst_left"}
    path = nifti(tmp_path / "pet.nii.gz", _kernel_blur(true, 7.0, voxel), affine)
    table = manifest([path], metric="pet")
    plain, _ = extract_suvr(table, atlas, labels=lut, progress=False)
    pvc, qc = extract_suvr(
        table, atlas, labels=lut, pvc="gtm", psf_fwhm=7.0, progress=False
    )
    expected = [1.3, 0.6]
    # partial volume biases the plain ratios by far more than 2 %...
    assert np.all(np.abs(plain.iloc[0, 3:].to_numpy(float) / expected - 1) > 0.02)
    # ...and GTM removes it (float32 storage and kernel rounding only)
    assert_allclose(pvc.iloc[0, 3:].to_numpy(float), expected, rtol=1e-4)
    assert_allclose(qc["uptake_pvc"], [1.0, 1.3, 0.6], rtol=1e-4)


def test_gtm_matrix_closed_form_two_slabs():
    # 1-D along x: region 1 = x < 0, region 2 = x >= 0 over a long axis with a
    # Gaussian PSF; G[0, 1] = spill of slab 2 into slab 1, by direct summation of
    # the Gaussian weights (independent of scipy.ndimage)
    n, v, fwhm = 40, 1.5, 6.0
    regions = np.zeros((n, 1, 1), dtype=int)
    regions[: n // 2], regions[n // 2 :] = 1, 2
    g = gtm_matrix(regions, psf_fwhm=fwhm, voxel_size=(v, 1e6, 1e6))
    sig = fwhm / (2 * math.sqrt(2 * math.log(2))) / v
    r = int(4 * sig + 0.5)
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / sig) ** 2)
    w /= w.sum()
    ind2 = (np.arange(n) >= n // 2).astype(float)
    rsf2 = np.convolve(ind2, w, mode="same")
    assert_allclose(g[0, 1], rsf2[: n // 2].mean(), rtol=1e-12)
    assert_allclose(g[1, 1], rsf2[n // 2 :].mean(), rtol=1e-12)
    assert g[0, 1] > 0.01


# ------------------------------------------------------------------ simulation


@pytest.fixture(scope="module")
def pet_cohort():
    return simulate_cohort(2, 1, months=6, n_sites=1, seed=3)


@pytest.fixture(scope="module")
def pet_truth(pet_cohort):
    return simulate_suvr(pet_cohort, seed=3)


@pytest.fixture(scope="module")
def blurred_root(pet_cohort, pet_truth, tmp_path_factory):
    out = tmp_path_factory.mktemp("pet") / "blurred"
    return write_pet(pet_cohort, out, suvr=pet_truth, shape=(24, 24, 24),
                     voxel_size=2.0, psf_fwhm=6.0, noise_sd=0.002, seed=5,
                     n_jobs=1, progress=False)  # fmt: skip


def _truth_matrix(truth):
    return truth.sort_values(["subject_id", "session"])[SIM_COLUMNS].to_numpy()


def test_gtm_recovers_simulated_suvr_within_2_percent(blurred_root, pet_truth):
    atlas, brain = blurred_root / "atlas" / ATLAS, blurred_root / "atlas" / BRAIN
    truth = _truth_matrix(pet_truth)
    plain, _ = extract_suvr(blurred_root, atlas, progress=False)
    pvc, qc = extract_suvr(
        blurred_root, atlas, pvc="gtm", psf_fwhm=6.0, brain_mask=brain, progress=False
    )
    assert plain.columns[3:].tolist() == pvc.columns[3:].tolist() == SIM_COLUMNS
    bias = np.abs(plain[SIM_COLUMNS].to_numpy() / truth - 1)
    error = np.abs(pvc[SIM_COLUMNS].to_numpy() / truth - 1)
    assert (bias > 0.02).all(), bias.min()
    assert (error < 0.02).all(), error.max()
    assert (qc["status"] == "ok").all()


def test_gtm_needs_the_brain_mask_when_the_atlas_does_not_cover_the_brain(
    blurred_root, pet_truth
):
    # one background region for brain and air: GTM's uniform-uptake model is wrong
    pvc, _ = extract_suvr(
        blurred_root, blurred_root / "atlas" / ATLAS, pvc="gtm", psf_fwhm=6.0,
        progress=False,
    )  # fmt: skip
    error = np.abs(pvc[SIM_COLUMNS].to_numpy() / _truth_matrix(pet_truth) - 1)
    assert error.max() > 0.1


def test_gtm_noise_free_exact_and_parallel(pet_cohort, pet_truth, tmp_path):
    root = write_pet(pet_cohort, tmp_path / "o", suvr=pet_truth, shape=(24, 24, 24),
                     voxel_size=2.0, psf_fwhm=8.0, noise_sd=0.0, seed=1,
                     progress=False)  # fmt: skip
    pvc, _ = extract_suvr(
        root, root / "atlas" / ATLAS, pvc="gtm", psf_fwhm=8.0,
        brain_mask=root / "atlas" / BRAIN, n_jobs=2, batch_size=1, progress=False,
    )  # fmt: skip
    assert_allclose(pvc[SIM_COLUMNS].to_numpy(), _truth_matrix(pet_truth), rtol=2e-5)


def test_simulator_round_trip(pet_cohort, pet_truth, tmp_path):
    # a PSF of ~0 width and no noise: the plain SUVR is the truth (float32 storage)
    root = write_pet(pet_cohort, tmp_path / "sharp", suvr=pet_truth, shape=(16, 16, 16),
                     psf_fwhm=1e-3, noise_sd=0.0, seed=2, n_jobs=1,
                     progress=False)  # fmt: skip
    features, _ = extract_suvr(root, root / "atlas" / ATLAS, progress=False)
    truth = pet_truth.sort_values(["subject_id", "session"]).reset_index(drop=True)
    assert features["subject_id"].tolist() == truth["subject_id"].tolist()
    assert features["session"].tolist() == truth["session"].tolist()
    assert (features["acquisition_date"] == truth["acquisition_date"]).all()
    assert_allclose(features[SIM_COLUMNS], truth[SIM_COLUMNS], rtol=1e-6)


def test_simulator_same_seed_same_files(pet_cohort, tmp_path):
    a = write_pet(pet_cohort, tmp_path / "a", shape=(16, 16, 16), seed=9, n_jobs=1,
                  progress=False)  # fmt: skip
    b = write_pet(pet_cohort, tmp_path / "b", shape=(16, 16, 16), seed=9, n_jobs=2,
                  progress=False)  # fmt: skip
    files = sorted(p.relative_to(a) for p in a.rglob("*.nii.gz"))
    assert len(files) == 2 + len(pet_cohort.imaging)
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_simulate_suvr_als_motor_deficit(pet_cohort):
    truth = simulate_suvr(pet_cohort, between_subject_cv=0, retest_cv=0, seed=0)
    als = truth["subject_id"].str.startswith("P").to_numpy()
    # DOMAIN-style default: motor-cortex uptake 8 % lower in ALS, nothing else moves
    assert_allclose(
        truth.loc[als, "suvr_precentral_left"],
        HEALTHY_SUVR["precentral_left"] * (1 - ALS_MOTOR_EFFECT),
        rtol=1e-12,
    )
    assert_allclose(truth.loc[~als, "suvr_precentral_right"], 1.2, rtol=1e-12)
    assert_allclose(truth["suvr_cuneus_left"], 1.3, rtol=1e-12)


def test_write_pet_refuses_a_bad_truth_table(pet_cohort, pet_truth, tmp_path):
    bad = pet_truth.copy()
    bad.loc[1, "suvr_cc_motor"] = -0.2
    sid, ses = bad.loc[1, "subject_id"], bad.loc[1, "session"]
    with pytest.raises(
        DataValidationError,
        match=rf"subject {sid}, column suvr_cc_motor: session {ses}: -0.2 is not",
    ):
        write_pet(pet_cohort, tmp_path / "x", suvr=bad, shape=(16, 16, 16))
    with pytest.raises(DataValidationError, match="column suvr_cst_left: missing"):
        write_pet(pet_cohort, tmp_path / "y", suvr=bad.drop(columns="suvr_cst_left"))


# ------------------------------------------------------------------------ errors


def test_reference_region_missing(tmp_path, nifti, manifest, pet_atlas):
    atlas, labels, affine = pet_atlas
    paths, _ = _uptake_images(tmp_path, nifti, labels, affine, n=1)
    with pytest.raises(ImagingError, match=r"reference region 'putamen' is not in"):
        extract_suvr(manifest(paths, metric="pet"), atlas, reference_region="Putamen")


def test_reference_region_empty_inside_mask(tmp_path, nifti, manifest, pet_atlas):
    atlas, labels, affine = pet_atlas
    paths, _ = _uptake_images(tmp_path, nifti, labels, affine, n=1)
    mask = nifti(tmp_path / "mask.nii.gz", (labels != 1).astype(np.uint8), affine)
    with pytest.raises(ImagingError, match="'cerebellum_grey' has no voxel inside"):
        extract_suvr(manifest(paths, metric="pet"), atlas, mask=mask)


@pytest.mark.parametrize("value", [0.0, -1.0, np.nan])
def test_non_positive_reference_uptake(tmp_path, nifti, manifest, pet_atlas, value):
    atlas, labels, affine = pet_atlas
    good = nifti(tmp_path / "good.nii.gz", np.ones(labels.shape), affine)
    data = np.where(labels == 1, value, 1.0)
    bad = nifti(tmp_path / "bad.nii.gz", data, affine)
    with pytest.raises(ImagingError, match=r"bad.nii.gz \(subject P2, session m00\)"):
        extract_suvr(manifest([good, bad], metric="pet"), atlas, progress=False)


def test_gtm_without_psf(tmp_path, nifti, manifest, pet_atlas):
    atlas, labels, affine = pet_atlas
    paths, _ = _uptake_images(tmp_path, nifti, labels, affine, n=1)
    with pytest.raises(ModelSpecificationError, match="needs `psf_fwhm`"):
        extract_suvr(manifest(paths, metric="pet"), atlas, pvc="gtm")
    with pytest.raises(ModelSpecificationError, match="`pvc` must be one of"):
        extract_suvr(manifest(paths, metric="pet"), atlas, pvc="rbv", psf_fwhm=5.0)


@pytest.mark.parametrize("fwhm", [0.0, -2.0, math.inf])
def test_psf_fwhm_not_positive(tmp_path, nifti, manifest, pet_atlas, fwhm):
    atlas, labels, affine = pet_atlas
    paths, _ = _uptake_images(tmp_path, nifti, labels, affine, n=1)
    with pytest.raises(ModelSpecificationError, match=r"`psf_fwhm` must be in \(0"):
        extract_suvr(manifest(paths, metric="pet"), atlas, pvc="gtm", psf_fwhm=fwhm)
    with pytest.raises(ModelSpecificationError, match="psf_fwhm"):
        gtm_matrix(np.ones((3, 3, 3), int), psf_fwhm=fwhm, voxel_size=(1, 1, 1))


def test_ill_conditioned_gtm_names_the_regions(tmp_path, nifti, manifest):
    # regions 2 and 3 interleave as a 3-D checkerboard: under an 8 mm PSF their
    # spread functions are nearly the same, so G is nearly singular (condition
    # number about 2e5 by numpy.linalg.cond)
    labels = np.zeros((10, 10, 10), dtype=np.int16)
    labels[:4] = 1
    even = np.indices(labels.shape).sum(axis=0) % 2 == 0
    labels[4:] = np.where(even[4:], 2, 3)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    atlas = nifti(tmp_path / "a.nii.gz", labels, affine, dtype=np.int16)
    lut = {1: "cerebellum_grey", 2: "precentral_left", 3: "precentral_right"}
    path = nifti(tmp_path / "p.nii.gz", np.ones(labels.shape), affine)
    table = manifest([path], metric="pet")
    with pytest.raises(
        ImagingError, match=r"ill-conditioned.*'precentral_(left|right)', "
        r"'precentral_(left|right)'"
    ):  # fmt: skip
        extract_suvr(table, atlas, labels=lut, pvc="gtm", psf_fwhm=8.0)
    # the same atlas at a sharp PSF is fine
    features, _ = extract_suvr(table, atlas, labels=lut, pvc="gtm", psf_fwhm=0.5)
    assert_allclose(features.iloc[0, 3:].to_numpy(float), 1.0, rtol=1e-9)


def test_image_grid_must_match_atlas(tmp_path, nifti, manifest, pet_atlas):
    atlas, labels, affine = pet_atlas
    small = nifti(tmp_path / "small.nii.gz", np.ones((8, 7, 5)), affine)
    with pytest.raises(ImagingError, match=r"small.nii.gz: shape \(8, 7, 5\) differs"):
        extract_suvr(manifest([small], metric="pet"), atlas)
    shifted = affine.copy()
    shifted[0, 3] = 1.0
    moved = nifti(tmp_path / "moved.nii.gz", np.ones(labels.shape), shifted)
    with pytest.raises(ImagingError, match=r"moved.nii.gz: affine differs .* by up"):
        extract_suvr(manifest([moved], metric="pet"), atlas, pvc="gtm", psf_fwhm=4.0)


def test_no_pet_images(tmp_path, nifti, manifest, pet_atlas):
    atlas, labels, affine = pet_atlas
    paths, _ = _uptake_images(tmp_path, nifti, labels, affine, n=1)
    with pytest.raises(ImagingError, match="no images of metric 'pet'"):
        extract_suvr(manifest(paths, metric="fa"), atlas)


def test_negative_corrected_uptake_warns(tmp_path, nifti, manifest, pet_atlas):
    atlas, labels, affine = pet_atlas
    # spill-in only: a cold cst_left surrounded by hot regions, observed below the
    # spill the model expects -> negative corrected mean
    data = np.where(labels == 3, 0.0, 5.0)
    path = nifti(tmp_path / "cold.nii.gz", data, affine)
    with pytest.warns(DataWarning, match="negative"):
        features, qc = extract_suvr(
            manifest([path], metric="pet"), atlas, pvc="gtm", psf_fwhm=4.0,
            progress=False,
        )  # fmt: skip
    assert np.isnan(features.loc[0, "suvr_cst_left"])
    assert qc.loc[qc["region"] == "cst_left", "status"].tolist() == ["pvc_negative"]


def _blocks(tmp_path, nifti):
    """The anisotropic block phantom of the recovery test, blurred at 7 mm."""
    voxel = (2.0, 2.0, 3.5)
    labels = np.zeros((18, 16, 12), dtype=np.int16)
    labels[2:9, 2:14, 2:10] = 1
    labels[10:13, 3:7, 3:9] = 2
    labels[10:16, 9:13, 5:8] = 3
    true = np.vectorize({0: 0.4, 1: 1.0, 2: 1.3, 3: 0.6}.get)(labels).astype(float)
    affine = np.diag([*voxel, 1.0])
    atlas = nifti(tmp_path / "b_dseg.nii.gz", labels, affine, dtype=np.int16)
    path = nifti(tmp_path / "b_pet.nii.gz", _kernel_blur(true, 7.0, voxel), affine)
    lut = {1: "cerebellum_grey", 2: "precentral_left", 3: "cst_left"}
    return atlas, path, labels, affine, lut


def test_gtm_masked_voxels_still_emit(tmp_path, nifti, manifest):
    # the mask removes half of precentral_left from the average, not from the
    # tissue: the spill of the removed half is still modelled, truth recovered
    atlas, path, labels, affine, lut = _blocks(tmp_path, nifti)
    keep = np.ones(labels.shape, dtype=np.uint8)
    keep[10:13, 3:5] = 0
    mask = nifti(tmp_path / "keep.nii.gz", keep, affine, dtype=np.uint8)
    table = manifest([path], metric="pet")
    pvc, qc = extract_suvr(
        table, atlas, labels=lut, pvc="gtm", psf_fwhm=7.0, mask=mask, progress=False
    )
    assert_allclose(pvc.iloc[0, 3:].to_numpy(float), [1.3, 0.6], rtol=1e-4)
    assert qc["n_outside_mask"].tolist() == [0, 3 * 2 * 6, 0]
    # a mask that empties a region leaves GTM without that region's mean
    keep[10:13, 3:7] = 0
    mask = nifti(tmp_path / "keep2.nii.gz", keep, affine, dtype=np.uint8)
    with pytest.raises(ImagingError, match=r"\['precentral_left'\] have no voxel"):
        extract_suvr(table, atlas, labels=lut, pvc="gtm", psf_fwhm=7.0, mask=mask)


def test_max_condition_is_the_limit(tmp_path, nifti, manifest):
    atlas, path, labels, affine, lut = _blocks(tmp_path, nifti)
    table = manifest([path], metric="pet")
    cond = np.linalg.cond(  # the GTM with one rest-of-field-of-view region
        gtm_matrix(np.where(labels == 0, 4, labels), psf_fwhm=7.0,
                   voxel_size=(2.0, 2.0, 3.5))
    )  # fmt: skip
    extract_suvr(
        table, atlas, labels=lut, pvc="gtm", psf_fwhm=7.0, max_condition=cond * 1.01
    )
    with pytest.raises(ImagingError, match=rf"condition number {cond:.3g} >"):
        extract_suvr(table, atlas, labels=lut, pvc="gtm", psf_fwhm=7.0,
                     max_condition=cond * 0.99)  # fmt: skip


def test_brain_mask_on_another_grid(tmp_path, nifti, manifest):
    atlas, path, labels, affine, lut = _blocks(tmp_path, nifti)
    brain = nifti(tmp_path / "brain.nii.gz", np.ones((18, 16, 11)), affine)
    with pytest.raises(ImagingError, match=r"brain.nii.gz: brain mask grid"):
        extract_suvr(manifest([path], metric="pet"), atlas, labels=lut, pvc="gtm",
                     psf_fwhm=7.0, brain_mask=brain)  # fmt: skip


def test_nan_policy(tmp_path, nifti, manifest, pet_atlas):
    atlas, labels, affine = pet_atlas
    data = np.ones(labels.shape)
    data[4, 1, 1] = np.nan  # in precentral_left
    path = nifti(tmp_path / "nan.nii.gz", data, affine)
    table = manifest([path], metric="pet")
    with pytest.raises(ImagingError, match="1 NaN/inf voxels .* 'precentral_left'"):
        extract_suvr(table, atlas, nan_policy="raise")
    features, qc = extract_suvr(table, atlas, progress=False)
    assert features.loc[0, "suvr_precentral_left"] == 1.0
    assert qc["n_nan"].tolist() == [0, 1, 0]


def test_negative_uptake_refused(tmp_path, nifti, manifest, pet_atlas):
    atlas, labels, affine = pet_atlas
    data = np.where(labels == 3, -0.5, 1.0)
    path = nifti(tmp_path / "neg.nii.gz", data, affine)
    with pytest.raises(
        ImagingError, match=r"neg.nii.gz \(subject P1, session m00\), region 'cst_left'"
    ):
        extract_suvr(manifest([path], metric="pet"), atlas, progress=False)
