"""Shared fixtures for the alsprog.imaging tests: a simulated BIDS tree and helpers
that write small hand-made NIfTI volumes."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alsprog.simulate import simulate_cohort, write_nifti

ATLAS_NAME = "atlas-alsprogsim_dseg.nii.gz"


def save_nifti(path: Path, data, affine=None, *, dtype=np.float32) -> Path:
    """Write ``data`` as NIfTI-1 (gzipped when the name ends in .gz)."""
    affine = np.diag([2.0, 2.0, 2.5, 1.0]) if affine is None else affine
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=dtype), affine), path)
    return path


@pytest.fixture(scope="session")
def sim_cohort():
    """Two patients and two controls scanned over 12 months."""
    return simulate_cohort(2, 2, months=12, n_sites=2, seed=4)


@pytest.fixture(scope="session")
def sim_root(sim_cohort, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("imaging") / "derivatives"
    return write_nifti(sim_cohort, out, seed=1, n_jobs=1, progress=False)


@pytest.fixture(scope="session")
def sim_atlas(sim_root) -> Path:
    return sim_root / "atlas" / ATLAS_NAME


@pytest.fixture
def small_atlas(tmp_path) -> tuple[Path, np.ndarray]:
    """A 6x5x4 atlas with labels 1 (cst_left), 2 (Left-Hippocampus), 3 (cc motor)
    and its TSV lookup table beside it."""
    labels = np.zeros((6, 5, 4), dtype=np.int16)
    labels[0:2, :, :] = 1
    labels[2:4, 0:3, 0:2] = 2
    labels[4:6, 1:5, 1:4] = 3
    path = save_nifti(tmp_path / "atlas" / "atl_dseg.nii.gz", labels, dtype=np.int16)
    pd.DataFrame(
        {"index": [1, 2, 3], "name": ["cst_left", "Left-Hippocampus", "CC motor"]}
    ).to_csv(tmp_path / "atlas" / "atl_dseg.tsv", sep="\t", index=False)
    return path, labels


def manifest_for(paths, metric="fa", sessions=None) -> pd.DataFrame:
    """A manifest with one subject per path (P1, P2, ...), session m00."""
    rows = []
    for i, p in enumerate(paths, start=1):
        ses = "m00" if sessions is None else sessions[i - 1]
        rows.append((f"P{i}", ses, "2020-01-0" + str(min(i, 9)), metric, str(p)))
    return pd.DataFrame(
        rows, columns=["subject_id", "session", "acquisition_date", "metric", "path"]
    )


@pytest.fixture
def nifti():
    """The :func:`save_nifti` helper."""
    return save_nifti


@pytest.fixture
def manifest():
    """The :func:`manifest_for` helper."""
    return manifest_for
