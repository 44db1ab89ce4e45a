"""Resting-state BOLD series with known connectivity, written as BIDS derivatives.

Owns: :func:`write_fmri` (per imaging session of a cohort, a 4-D BOLD series whose
atlas-ROI mean signals are drawn from a known correlation matrix, with an ALS effect
on the motor-network edges, plus an fMRIPrep-style confounds table that the series
is contaminated by) and :data:`FMRI_NETWORKS`.
Leaves: the atlas and file writing helpers to :mod:`alsprog.simulate._nifti`,
extraction to :func:`alsprog.imaging._connectivity.extract_connectivity`.

Layout written under ``out_dir`` (the atlas and space of :func:`write_nifti`)::

    atlas/atlas-alsprogsim_dseg.nii.gz, .tsv
    sub-<id>/sub-<id>_sessions.tsv
    sub-<id>/ses-<s>/func/sub-<id>_ses-<s>_task-rest_space-alsprogsim_desc-preproc_bold.nii.gz
    sub-<id>/ses-<s>/func/sub-<id>_ses-<s>_task-rest_space-alsprogsim_desc-preproc_bold.json
    sub-<id>/ses-<s>/func/sub-<id>_ses-<s>_task-rest_desc-confounds_timeseries.tsv
    fmri_truth.tsv                      true Fisher z of every edge per session

Effect sizes: docs/domain.md (section 6) finds no consistent resting-state
connectivity effect of ALS to copy: studies report increased, decreased or unaltered
connectivity, no group difference at 4.7 T [Chenji 2016], increased cortical
connectivity by MEG [Proudfoot 2018], findings "sometimes even contradictory" in a
meta-analysis of 55 fMRI studies [Shen 2015]; resting-state features classify ALS
(ICA + SVM > 71 % [Welsh 2013]).  The default effect, a Fisher-z change of -0.25 on every
motor-network edge of patients (healthy motor edges r = 0.5, z = 0.55), is therefore
an assumption of this simulator; its sign and size are arguments.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from isal import igzip

from alsprog._io import atomic_path, check_out_folder, write_manifest
from alsprog._progress import progress_bar
from alsprog._random import as_generator
from alsprog._validation import check_int, check_interval
from alsprog.errors import ImagingError
from alsprog.simulate._imaging import REGION_METRICS
from alsprog.simulate._nifti import (
    ATLAS_REGIONS,
    SPACE,
    _atlas,
    _check_args,
    _save,
    _write_json,
    _write_tsv,
)

__all__ = ["CONFOUND_COLUMNS", "FMRI_NETWORKS", "SimulatedFmri", "write_fmri"]

logger = logging.getLogger(__name__)

#: Networks of the simulated atlas: the motor network (precentral cortex and the
#: corticospinal / callosal motor regions) and the visual cuneus.
FMRI_NETWORKS: dict[str, tuple[str, ...]] = {
    "motor": (
        "cst_left",
        "cst_right",
        "cc_motor",
        "precentral_left",
        "precentral_right",
    ),
    "visual": ("cuneus_left",),
}

#: Columns of the confounds table (fMRIPrep names).
CONFOUND_COLUMNS = (
    "trans_x",
    "trans_y",
    "trans_z",
    "rot_x",
    "rot_y",
    "rot_z",
    "csf",
    "white_matter",
    "trans_x_derivative1",
    "framewise_displacement",
)
_REGRESSED = CONFOUND_COLUMNS[:8]  # what contaminates the series


class SimulatedFmri(NamedTuple):
    """Result of :func:`write_fmri`.

    Attributes
    ----------
    root : pathlib.Path
        The BIDS-derivatives folder.
    atlas : pathlib.Path
        The label atlas (its lookup table beside it).
    truth : pandas.DataFrame
        One row per session: ``subject_id``, ``session``, ``group``, then the true
        Fisher z ``fc_<roi1>__<roi2>`` of every edge (of the correlation matrix the
        ROI signals were drawn from).
    """

    root: Path
    atlas: Path
    truth: pd.DataFrame


def true_correlation(
    *,
    als: bool,
    motor_r: float = 0.5,
    other_r: float = 0.15,
    als_effect_z: float = -0.25,
) -> npt.NDArray[np.float64]:
    """The correlation matrix ROI signals are drawn from (atlas region order).

    Motor-network edges have ``r = motor_r`` (for patients
    ``tanh(arctanh(motor_r) + als_effect_z)``), every other edge ``other_r``.
    """
    names = [r[1] for r in ATLAS_REGIONS]
    motor = np.array([n in FMRI_NETWORKS["motor"] for n in names])
    z_motor = np.arctanh(motor_r) + (als_effect_z if als else 0.0)
    corr = np.full((len(names), len(names)), other_r)
    corr[np.ix_(motor, motor)] = np.tanh(z_motor)
    np.fill_diagonal(corr, 1.0)
    if np.linalg.eigvalsh(corr)[0] <= 1e-6:
        raise ValueError(
            "the simulated correlation matrix is not positive definite; lower "
            "`als_effect_z`, `motor_r` or `other_r`."
        )
    return corr


def write_fmri(
    cohort: Any,
    out_dir: str | os.PathLike[str],
    *,
    shape: Sequence[int] = (20, 24, 20),
    voxel_size: float = 3.0,
    n_volumes: int = 120,
    t_r: float = 2.0,
    motor_r: float = 0.5,
    other_r: float = 0.15,
    als_effect_z: float = -0.25,
    signal_sd: float = 10.0,
    noise_sd: float = 20.0,
    confound_scale: float = 5.0,
    seed: Any = None,
    n_jobs: int | None = 1,
    progress: bool | None = None,
) -> SimulatedFmri:
    """Write a resting-state BOLD series and confounds table per imaging session.

    For each session the six ROI signals are white noise drawn from
    :func:`true_correlation` (patients with the ALS effect on motor edges), times
    ``signal_sd``.  Every brain voxel gets a baseline of 1000, a linear drift,
    ``confound_scale`` times a random mix of the motion/CSF/white-matter confounds
    (written to the confounds table), and voxel noise (``noise_sd``) whose mean over
    each ROI is removed at every volume, so each ROI's mean series is exactly
    ``1000 + drift + signal + confound mix`` (up to float32 rounding).  White
    signals keep their correlation under any band-pass filter applied to all ROIs
    alike, so the cleaned connectivity estimates the truth.

    Parameters
    ----------
    cohort : Cohort
        From :func:`~alsprog.simulate.simulate_cohort`; each row of
        ``cohort.imaging`` becomes one session; ``cohort.subjects["group"]`` says
        who is a patient (``"als"``).
    out_dir : str or path-like
        New, empty or earlier alsprog folder.
    shape : sequence of 3 int, default (20, 24, 20)
        Grid (12-512 each) of the atlas of :func:`write_nifti`.
    voxel_size : float, default 3.0
        mm, isotropic.
    n_volumes : int, default 120
        Volumes per run (10-10000).
    t_r : float, default 2.0
        Repetition time in seconds (header and JSON sidecar).
    motor_r, other_r : float, default 0.5, 0.15
        Healthy correlation of motor-network edges and of all other edges.
    als_effect_z : float, default -0.25
        Change of motor-edge Fisher z in patients (an assumption: see the module
        docstring).
    signal_sd, noise_sd, confound_scale : float
        Amplitudes (BOLD units) of the ROI signal, voxel noise and confounds.
    seed : int, Generator or None
        Each subject gets a child seed.
    n_jobs : int or None, default 1
        joblib threads.
    progress : bool or None
        Progress bar counting sessions.

    Returns
    -------
    SimulatedFmri
        ``(root, atlas, truth)``.

    Examples
    --------
    >>> import tempfile
    >>> from alsprog.simulate import simulate_cohort
    >>> cohort = simulate_cohort(1, 0, months=0, seed=1)
    >>> sim = write_fmri(cohort, tempfile.mkdtemp(), shape=(16, 18, 16), n_volumes=40,
    ...                  seed=1, progress=False)
    >>> sorted(p.name for p in sim.root.rglob("*_bold.*"))[0]
    'sub-P0001_ses-m00_task-rest_space-alsprogsim_desc-preproc_bold.json'
    >>> round(float(sim.truth["fc_precentral_left__precentral_right"].iloc[0]), 4)
    0.2993
    """
    import nibabel as nib
    from joblib import Parallel, delayed

    grid, voxel_size = _check_args(cohort, shape, voxel_size)
    n_volumes = check_int(n_volumes, "n_volumes", low=10, high=10_000)
    t_r = float(check_interval(t_r, "t_r", low=0.0, high=100.0, low_closed=False))
    for name, v in (("motor_r", motor_r), ("other_r", other_r)):
        check_interval(v, name, low=-1.0, high=1.0, low_closed=False, high_closed=False)
    als_effect_z = float(check_interval(als_effect_z, "als_effect_z", low=-3, high=3))
    for name, v in (
        ("signal_sd", signal_sd),
        ("noise_sd", noise_sd),
        ("confound_scale", confound_scale),
    ):
        check_interval(v, name, low=0.0)
    if n_jobs is not None:
        n_jobs = check_int(n_jobs, "n_jobs", low=-1)
        if n_jobs == 0:
            raise ValueError("`n_jobs` must be a positive integer or -1; got 0.")
    corr = {
        als: true_correlation(
            als=als, motor_r=motor_r, other_r=other_r, als_effect_z=als_effect_z
        )
        for als in (False, True)
    }
    rng = as_generator(seed)
    out = Path(out_dir)
    check_out_folder(out)
    out.mkdir(parents=True, exist_ok=True)

    affine = np.diag([voxel_size] * 3 + [1.0])
    affine[:3, 3] = -voxel_size * (np.asarray(grid) - 1) / 2.0
    labels, brain, _ = _atlas(grid)
    atlas_file = out / "atlas" / f"atlas-{SPACE}_dseg.nii.gz"
    for label, name, _, _ in ATLAS_REGIONS:
        if np.count_nonzero(labels == label) < 4:
            raise ImagingError(
                f"{atlas_file}: region {name!r} has fewer than 4 voxels at shape "
                f"{grid}; use a larger `shape`."
            )
    _save(nib, labels.astype(np.int16), affine, atlas_file, intent="label")
    # the same lookup table as write_nifti (its metrics column included), so both
    # can write into one folder
    _write_tsv(
        out / "atlas" / f"atlas-{SPACE}_dseg.tsv",
        pd.DataFrame(
            {
                "index": [r[0] for r in ATLAS_REGIONS],
                "name": [r[1] for r in ATLAS_REGIONS],
                "metrics": [" ".join(REGION_METRICS[r[1]]) for r in ATLAS_REGIONS],
            }
        ),
    )
    if not (out / "dataset_description.json").exists():
        _write_json(
            out / "dataset_description.json",
            {
                "Name": "alsprog simulated cohort: resting-state BOLD",
                "BIDSVersion": "1.9.0",
                "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "alsprog", "Description": "write_fmri"}],
            },
        )
    groups = dict(
        zip(
            cohort.subjects["subject_id"].astype(str),
            cohort.subjects["group"],
            strict=True,
        )
    )
    spec = _Spec(
        nib,
        affine,
        labels,
        brain,
        corr,
        n_volumes,
        t_r,
        signal_sd,
        noise_sd,
        confound_scale,
    )
    by_subject = list(cohort.imaging.groupby("subject_id", sort=True))
    tasks = (
        delayed(_write_subject)(
            out, str(sid), rows, groups[str(sid)] == "als", spec, child
        )
        for (sid, rows), child in zip(
            by_subject, rng.spawn(len(by_subject)), strict=True
        )
    )
    with progress_bar(
        progress=progress, total=len(cohort.imaging), desc="BOLD series", unit="session"
    ) as bar:
        parallel = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")
        done = 0
        for n in parallel(tasks):
            done += n
            bar.update(n)
    names = [r[1] for r in ATLAS_REGIONS]
    rows = []
    for sid, g in by_subject:
        als = groups[str(sid)] == "als"
        z = np.arctanh(np.clip(corr[als], -1, 1 - 1e-15))
        for ses in g["session"].astype(str):
            row: dict[str, Any] = {
                "subject_id": str(sid),
                "session": ses,
                "group": groups[str(sid)],
            }
            for i in range(len(names)):
                for j in range(i + 1, len(names)):
                    row[f"fc_{names[i]}__{names[j]}"] = z[i, j]
            rows.append(row)
    truth = pd.DataFrame(rows)
    _write_tsv(out / "fmri_truth.tsv", truth)
    write_manifest(out, command="write_fmri")
    logger.info("wrote %d BOLD series to %s", done, out)
    return SimulatedFmri(out, atlas_file, truth)


class _Spec(NamedTuple):
    nib: Any
    affine: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int16]
    brain: npt.NDArray[np.bool_]
    corr: Mapping[bool, npt.NDArray[np.float64]]
    n_volumes: int
    t_r: float
    signal_sd: float
    noise_sd: float
    confound_scale: float


def _confounds(rng: np.random.Generator, n: int) -> pd.DataFrame:
    motion = np.cumsum(rng.normal(0.0, 0.05, (n, 6)), axis=0)  # random walks
    tissue = np.cumsum(rng.normal(0.0, 1.0, (n, 2)), axis=0)
    df = pd.DataFrame(np.hstack([motion, tissue]), columns=list(_REGRESSED))
    df["trans_x_derivative1"] = df["trans_x"].diff()
    fd = np.abs(np.diff(motion[:, :3], axis=0)).sum(axis=1)
    fd = fd + 50.0 * np.abs(np.diff(motion[:, 3:], axis=0)).sum(axis=1)
    df["framewise_displacement"] = np.concatenate([[np.nan], fd])
    return df


def _write_subject(
    out: Path,
    sid: str,
    rows: pd.DataFrame,
    als: bool,
    spec: _Spec,
    rng: np.random.Generator,
) -> int:
    _write_tsv(
        out / f"sub-{sid}" / f"sub-{sid}_sessions.tsv",
        pd.DataFrame(
            {
                "session_id": "ses-" + rows["session"].astype(str),
                "acq_time": rows["acquisition_date"].dt.strftime("%Y-%m-%d"),
            }
        ),
    )
    chol = np.linalg.cholesky(spec.corr[als])
    n_t = spec.n_volumes
    t = np.arange(n_t, dtype=np.float64)
    brain = spec.brain
    n_brain = int(brain.sum())
    flat_labels = spec.labels[brain]
    for ses in rows["session"].astype(str):
        conf = _confounds(rng, n_t)
        signals = rng.normal(size=(n_t, chol.shape[0])) @ chol.T * spec.signal_sd
        mix = rng.normal(size=(len(_REGRESSED), chol.shape[0]))
        contamination = conf[list(_REGRESSED)].to_numpy() @ mix * spec.confound_scale
        drift = np.outer(t / n_t, rng.normal(0.0, 20.0, chol.shape[0]))
        roi = 1000.0 + drift + signals + contamination  # (n_t, K)
        noise = rng.normal(0.0, spec.noise_sd, (n_brain, n_t))
        vox = 1000.0 + noise
        for k, (label, _, _, _) in enumerate(ATLAS_REGIONS):
            inside = flat_labels == label
            seg = noise[inside]
            vox[inside] = roi[:, k][None, :] + seg - seg.mean(axis=0)
        data = np.zeros((*spec.labels.shape, n_t), dtype=np.float32)
        data[brain] = vox
        base = f"sub-{sid}_ses-{ses}_task-rest"
        folder = out / f"sub-{sid}" / f"ses-{ses}" / "func"
        bold = folder / f"{base}_space-{SPACE}_desc-preproc_bold.nii.gz"
        img = spec.nib.Nifti1Image(data, spec.affine)
        img.set_qform(spec.affine, code=1)
        img.set_sform(spec.affine, code=1)
        img.header.set_xyzt_units("mm", "sec")
        img.header.set_zooms((*np.abs(np.diag(spec.affine)[:3]), spec.t_r))
        payload = igzip.compress(img.to_bytes(), compresslevel=1, mtime=0)
        with atomic_path(bold) as tmp:
            tmp.write_bytes(payload)
        _write_json(
            folder / f"{base}_space-{SPACE}_desc-preproc_bold.json",
            {"RepetitionTime": spec.t_r, "TaskName": "rest"},
        )
        with atomic_path(folder / f"{base}_desc-confounds_timeseries.tsv") as tmp:
            conf.to_csv(tmp, sep="\t", index=False, lineterminator="\n", na_rep="n/a")
    return len(rows)
