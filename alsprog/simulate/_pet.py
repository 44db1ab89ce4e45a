"""Simulated PET uptake images with known regional SUVR, as BIDS derivatives.

Owns: :func:`simulate_suvr` (true SUVR per region and session of a simulated cohort,
with lower motor-cortex uptake in ALS) and :func:`write_pet` (uptake images of those
SUVR, blurred by a known Gaussian PSF plus noise, on :func:`write_nifti`'s atlas with
a cerebellar grey-matter reference region added).
Leaves: the cohort to :mod:`alsprog.simulate._cohort`, the atlas geometry and file
writing helpers to :mod:`alsprog.simulate._nifti`, reading the images back to
:func:`alsprog.imaging.extract_suvr`.

Layout written under ``out_dir``::

    dataset_description.json
    participants.tsv
    atlas/atlas-alsprogsimpet_dseg.nii.gz          write_nifti's labels + 7 cerebellum_grey
    atlas/atlas-alsprogsimpet_dseg.tsv             index, name
    atlas/atlas-alsprogsimpet_desc-brain_mask.nii.gz
    sub-<id>/sub-<id>_sessions.tsv
    sub-<id>/ses-<s>/pet/sub-<id>_ses-<s>_space-alsprogsim_pet.nii.gz

The true uptake is piecewise constant: each atlas region at its SUVR times the
session's reference uptake, the rest of the brain at :data:`REST_OF_BRAIN_SUVR`
times it, 0 outside the brain.  This is exactly the model of a GTM correction with
the brain mask, so ``extract_suvr(..., pvc="gtm", brain_mask=...)`` recovers the
truth up to noise.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._io import check_out_folder, write_manifest
from alsprog._progress import progress_bar
from alsprog._random import as_generator
from alsprog._validation import check_int, check_interval
from alsprog.errors import DataValidationError, ImagingError, Problem
from alsprog.simulate._nifti import (
    ATLAS_REGIONS,
    SPACE,
    _atlas,
    _check_args,
    _save,
    _write_json,
    _write_tsv,
)

__all__ = ["PET_ATLAS_REGIONS", "REFERENCE_REGION", "simulate_suvr", "write_pet"]

logger = logging.getLogger(__name__)

ATLAS = "alsprogsimpet"
REFERENCE_REGION = "cerebellum_grey"

#: write_nifti's regions plus a cerebellar grey-matter reference (inferior,
#: posterior), in the same ``(label, name, centre, radii)`` form.
PET_ATLAS_REGIONS = (
    *ATLAS_REGIONS,
    (7, REFERENCE_REGION, (0.0, -0.55, -0.50), (0.40, 0.25, 0.18)),
)

#: Healthy FDG SUVR (cerebellar grey reference) per region.  Approximate values
#: (assumption): cortex somewhat above cerebellar grey matter, white-matter tracts
#: about half of it; no row of docs/domain.md gives these numbers yet.
HEALTHY_SUVR = {
    "cst_left": 0.55,
    "cst_right": 0.55,
    "cc_motor": 0.60,
    "precentral_left": 1.20,
    "precentral_right": 1.20,
    "cuneus_left": 1.30,
    REFERENCE_REGION: 1.0,
}
#: Uniform uptake of brain voxels in no region (grey/white blend), SUVR (assumption).
REST_OF_BRAIN_SUVR = 0.85
#: Relative precentral (motor-cortex) FDG uptake deficit in ALS, default of
#: ``als_effect``.  Motor-cortex hypometabolism is the most frequent ALS FDG-PET
#: finding (single-subject hypometabolism of the primary motor cortex in about 57 %
#: of spinal- and 64 % of bulbar-onset patients, 95 patients: "Testing the
#: diagnostic accuracy of [18F]FDG-PET in discriminating spinal- and bulbar-onset
#: ALS"; hypometabolism greatest in motor-sensory cortex, progressing on repeat
#: scans, 19 PET studies of 12 patients: Europe PMC MED/3260610; docs/domain.md
#: section 6).  The 8 % size is an assumption within these findings.
ALS_MOTOR_EFFECT = 0.08
_MOTOR = ("precentral_left", "precentral_right")
#: Mean cerebellar-grey uptake, SUV (g/mL), and its between-session log-SD (dose,
#: weight and timing differences that the ratio removes) (assumption).
REFERENCE_SUV = 6.0
REFERENCE_SUV_LOG_SD = 0.15


def simulate_suvr(
    cohort: Any,
    *,
    als_effect: float = ALS_MOTOR_EFFECT,
    between_subject_cv: float = 0.05,
    retest_cv: float = 0.02,
    seed: Any = None,
) -> pd.DataFrame:
    """True regional SUVR of every imaging session of a simulated cohort.

    Each subject's SUVR in a region is the healthy value (:data:`HEALTHY_SUVR`)
    times ``1 + between_subject_cv * z`` (one ``z`` per subject and region), times
    ``1 - als_effect`` in the precentral regions of ALS patients, times
    ``1 + retest_cv * e`` per session (test-retest variation).

    Parameters
    ----------
    cohort : Cohort
        From :func:`~alsprog.simulate.simulate_cohort`; one row per row of
        ``cohort.imaging``.
    als_effect : float, default 0.08
        Relative precentral uptake deficit in ALS, in [0, 1).
    between_subject_cv, retest_cv : float
        Relative SDs, in [0, 0.3].
    seed : int, numpy.random.Generator or None
        Seed.

    Returns
    -------
    pandas.DataFrame
        ``subject_id``, ``session``, ``acquisition_date`` and ``suvr_<region>`` for
        every region but the reference, sorted by subject and session.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> cohort = simulate_cohort(1, 1, months=0, seed=3)
    >>> truth = simulate_suvr(cohort, between_subject_cv=0, retest_cv=0, seed=3)
    >>> truth.set_index("subject_id")["suvr_precentral_left"].round(3).to_dict()
    {'C0001': 1.2, 'P0001': 1.104}
    """
    from alsprog.simulate._cohort import Cohort

    if not isinstance(cohort, Cohort):
        raise TypeError(
            f"`cohort` must be a Cohort from simulate_cohort(); got {type(cohort).__name__}."
        )
    als_effect = float(
        check_interval(als_effect, "als_effect", low=0.0, high=1.0, high_closed=False)
    )
    between_subject_cv = float(
        check_interval(between_subject_cv, "between_subject_cv", low=0.0, high=0.3)
    )
    retest_cv = float(check_interval(retest_cv, "retest_cv", low=0.0, high=0.3))
    rng = as_generator(seed)
    regions = [r for r in HEALTHY_SUVR if r != REFERENCE_REGION]
    healthy = np.array([HEALTHY_SUVR[r] for r in regions])
    motor = np.isin(regions, _MOTOR)
    imaging = cohort.imaging.sort_values(["subject_id", "session"]).reset_index(
        drop=True
    )
    group = cohort.subjects.set_index("subject_id")["group"]
    subjects = pd.unique(imaging["subject_id"])
    z = rng.standard_normal((len(subjects), len(regions)))
    level = healthy * (1.0 + between_subject_cv * z)
    is_als = (group.reindex(subjects).to_numpy() == "als")[:, None]
    level = np.where(is_als & motor, level * (1.0 - als_effect), level)
    row = pd.Index(subjects).get_indexer(pd.Index(imaging["subject_id"]))
    e = rng.standard_normal((len(imaging), len(regions)))
    values = np.clip(level[row] * (1.0 + retest_cv * e), 0.05, None)
    out = imaging[["subject_id", "session", "acquisition_date"]].copy()
    for j, r in enumerate(regions):
        out[f"suvr_{r}"] = values[:, j]
    return out


def pet_atlas(
    grid: tuple[int, int, int],
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.bool_]]:
    """Labels (write_nifti's, plus the cerebellar reference) and brain mask."""
    labels, brain, _ = _atlas(grid)
    axes = [(np.arange(n) - (n - 1) / 2.0) / (n / 2.0) for n in grid]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    label, _, centre, radii = PET_ATLAS_REGIONS[-1]
    inside = (
        ((x - centre[0]) / radii[0]) ** 2
        + ((y - centre[1]) / radii[1]) ** 2
        + ((z - centre[2]) / radii[2]) ** 2
    ) <= 1.0
    labels[inside & (labels == 0)] = label
    return labels, brain | (labels > 0)


def write_pet(
    cohort: Any,
    out_dir: str | os.PathLike[str],
    *,
    suvr: pd.DataFrame | None = None,
    shape: Sequence[int] = (40, 48, 40),
    voxel_size: float = 3.0,
    psf_fwhm: float = 6.0,
    noise_sd: float = 0.02,
    seed: Any = None,
    n_jobs: int | None = -1,
    progress: bool | None = None,
) -> Path:
    """Write one PET uptake image per imaging session, with known regional SUVR.

    The true image is piecewise constant (regions at ``suvr`` times the session's
    reference uptake, the rest of the brain at :data:`REST_OF_BRAIN_SUVR` times it, 0
    outside), blurred by an isotropic Gaussian PSF of ``psf_fwhm`` mm
    (``scipy.ndimage.gaussian_filter``, zero beyond the field of view), plus white
    Gaussian noise of SD ``noise_sd`` times the reference uptake.  Images are float32
    SUV on the atlas grid of :func:`write_nifti` (same shape, voxel size and affine).

    Parameters
    ----------
    cohort : Cohort
        From :func:`~alsprog.simulate.simulate_cohort`.
    out_dir : str or path-like
        Output folder: new, empty or an earlier alsprog result.
    suvr : pandas.DataFrame, optional
        True SUVR, as :func:`simulate_suvr` returns (``subject_id``, ``session``,
        ``suvr_<region>`` for the non-reference regions of
        :data:`PET_ATLAS_REGIONS`); one row per imaging session.  Default: drawn by
        :func:`simulate_suvr` from ``seed``.
    shape, voxel_size
        As for :func:`write_nifti`.
    psf_fwhm : float, default 6.0
        PSF full width at half maximum, mm, in (0, 30].
    noise_sd : float, default 0.02
        Voxel noise SD relative to the reference uptake, in [0, 1].
    seed : int, numpy.random.Generator or None
        Seed of the session uptake scale and the noise (and of ``suvr`` when
        drawn); each subject gets its own child seed.
    n_jobs : int or None, default -1
        Threads writing subjects in parallel.
    progress : bool or None
        Progress bar counting images.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    TypeError, ValueError
        For a wrong argument.
    DataValidationError
        If ``suvr`` lacks a session or a region column, or has a value that is not
        a positive number.
    ImagingError
        If ``shape`` is too coarse for an atlas region to contain voxels.
    OutputError
        If ``out_dir`` holds files alsprog did not write.

    Examples
    --------
    >>> import tempfile
    >>> from alsprog.simulate import simulate_cohort
    >>> cohort = simulate_cohort(1, 0, months=0, seed=3)
    >>> out = write_pet(cohort, tempfile.mkdtemp(), shape=(16, 16, 16), seed=3,
    ...                 progress=False)
    >>> [p.name for p in (out / "sub-P0001").rglob("*.nii.gz")]
    ['sub-P0001_ses-m00_space-alsprogsim_pet.nii.gz']
    """
    import nibabel as nib
    from joblib import Parallel, delayed

    grid, voxel_size = _check_args(cohort, shape, voxel_size)
    psf_fwhm = float(
        check_interval(psf_fwhm, "psf_fwhm", low=0.0, high=30.0, low_closed=False)
    )
    noise_sd = float(check_interval(noise_sd, "noise_sd", low=0.0, high=1.0))
    if n_jobs is not None:
        n_jobs = check_int(n_jobs, "n_jobs", low=-1)
        if n_jobs == 0:
            raise ValueError("`n_jobs` must be a positive integer or -1; got 0.")
    rng = as_generator(seed)
    truth = simulate_suvr(cohort, seed=rng) if suvr is None else suvr
    table = _check_suvr(truth, cohort)
    out = Path(out_dir)
    check_out_folder(out)
    out.mkdir(parents=True, exist_ok=True)

    affine = np.diag([voxel_size] * 3 + [1.0])
    affine[:3, 3] = -voxel_size * (np.asarray(grid) - 1) / 2.0
    labels, brain = pet_atlas(grid)
    atlas_file = out / "atlas" / f"atlas-{ATLAS}_dseg.nii.gz"
    for label, name, _, _ in PET_ATLAS_REGIONS:
        if np.count_nonzero(labels == label) < 4:
            raise ImagingError(
                f"{atlas_file}: region {name!r} has fewer than 4 voxels at shape "
                f"{grid}; use a larger `shape`."
            )
    _write_json(out / "dataset_description.json", _description())
    _save(nib, labels.astype(np.int16), affine, atlas_file, intent="label")
    _save(
        nib,
        brain.astype(np.uint8),
        affine,
        out / "atlas" / f"atlas-{ATLAS}_desc-brain_mask.nii.gz",
    )
    _write_tsv(
        out / "atlas" / f"atlas-{ATLAS}_dseg.tsv",
        pd.DataFrame(
            {
                "index": [r[0] for r in PET_ATLAS_REGIONS],
                "name": [r[1] for r in PET_ATLAS_REGIONS],
            }
        ),
    )
    subjects = cohort.subjects
    imaged = subjects[subjects["subject_id"].isin(table["subject_id"])]
    _write_tsv(
        out / "participants.tsv",
        pd.DataFrame(
            {
                "participant_id": "sub-" + imaged["subject_id"].astype(str),
                "group": imaged["group"].to_numpy(),
                "sex": imaged["sex"].to_numpy(),
                "site": imaged["site"].to_numpy(),
            }
        ),
    )
    sigma = psf_fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / voxel_size
    masks = {name: labels == label for label, name, _, _ in PET_ATLAS_REGIONS}
    groups = list(table.groupby("subject_id", sort=True))
    tasks = (
        delayed(_write_subject)(
            out, str(sid), rows, nib, affine, masks, brain, sigma, noise_sd, child
        )
        for (sid, rows), child in zip(groups, rng.spawn(len(groups)), strict=True)
    )
    with progress_bar(
        progress=progress, total=len(table), desc="PET images", unit="image"
    ) as bar:
        for n_written in Parallel(
            n_jobs=n_jobs, prefer="threads", return_as="generator"
        )(tasks):
            bar.update(n_written)
    logger.info("wrote %d PET images and the atlas to %s", len(table), out)
    write_manifest(out, command="write_pet")
    return out


def _check_suvr(truth: Any, cohort: Any) -> pd.DataFrame:
    if not isinstance(truth, pd.DataFrame):
        raise TypeError(f"`suvr` must be a DataFrame; got {type(truth).__name__}.")
    need = ["subject_id", "session"] + [
        f"suvr_{r}" for r in HEALTHY_SUVR if r != REFERENCE_REGION
    ]
    missing = [c for c in need if c not in truth.columns]
    if missing:
        raise DataValidationError(
            [
                Problem(
                    "missing (expected the columns of simulate_suvr)",
                    rule="required",
                    source="suvr table",
                    column=c,
                )
                for c in missing
            ],
            source="suvr table",
        )
    key = ["subject_id", "session"]
    imaging = cohort.imaging[[*key, "acquisition_date"]]
    table = imaging.merge(truth[need], on=key, how="left", validate="one_to_one")
    values = table[need[2:]].to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        raise DataValidationError(
            [
                Problem(
                    f"session {table.at[i, 'session']}: {float(values[i, j])!r} is not a "
                    "positive SUVR (every imaging session needs one per region)",
                    rule="minimum",
                    source="suvr table",
                    subject_id=str(table.at[i, "subject_id"]),
                    column=need[2 + j],
                    value=float(values[i, j]),
                )
                for i, j in zip(*np.nonzero(bad), strict=True)
            ],
            source="suvr table",
        )
    return table


def _write_subject(
    out: Path,
    sid: str,
    rows: pd.DataFrame,
    nib: Any,
    affine: npt.NDArray[np.float64],
    masks: dict[str, npt.NDArray[np.bool_]],
    brain: npt.NDArray[np.bool_],
    sigma: float,
    noise_sd: float,
    rng: np.random.Generator,
) -> int:
    from scipy.ndimage import gaussian_filter

    sessions = pd.DataFrame(
        {
            "session_id": "ses-" + rows["session"].astype(str),
            "acq_time": pd.to_datetime(rows["acquisition_date"]).dt.strftime(
                "%Y-%m-%d"
            ),
        }
    )
    _write_tsv(out / f"sub-{sid}" / f"sub-{sid}_sessions.tsv", sessions)
    n = 0
    for row in rows.itertuples(index=False):
        ref = REFERENCE_SUV * float(
            np.exp(REFERENCE_SUV_LOG_SD * rng.standard_normal())
        )
        true = np.where(brain, REST_OF_BRAIN_SUVR * ref, 0.0)
        for name, mask in masks.items():
            ratio = 1.0 if name == REFERENCE_REGION else getattr(row, f"suvr_{name}")
            true[mask] = float(ratio) * ref
        data = gaussian_filter(true, sigma, mode="constant", cval=0.0)
        if noise_sd > 0:
            data = data + rng.normal(0.0, noise_sd * ref, data.shape)
        ses = row.session
        _save(
            nib,
            data.astype(np.float32),
            affine,
            out
            / f"sub-{sid}"
            / f"ses-{ses}"
            / "pet"
            / f"sub-{sid}_ses-{ses}_space-{SPACE}_pet.nii.gz",
        )
        n += 1
    return n


def _description() -> dict[str, Any]:
    from alsprog._version import __version__

    return {
        "Name": "alsprog simulated cohort: PET uptake images",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "alsprog",
                "Version": __version__,
                "Description": "alsprog.simulate._pet.write_pet: piecewise-constant "
                "uptake with known regional SUVR, Gaussian PSF and noise.",
            }
        ],
    }
