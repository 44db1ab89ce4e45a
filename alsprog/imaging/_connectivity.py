"""Resting-state functional connectivity: one row of edge features per subject × session.

Owns: :func:`extract_connectivity` (4-D BOLD images + label atlas -> ROI time series,
cleaned as ``nilearn.signal.clean`` does, -> correlation, partial-correlation or
tangent connectivity -> ``fc_<roi1>__<roi2>`` Fisher-z edges, per-ROI and network
summaries, QC), :func:`clean_signals` (the numerics of the cleaning: detrend,
Butterworth band-pass, confound projection, z-scoring) and
:func:`connectivity_matrices` (Ledoit-Wolf covariances -> the three kinds).
Leaves: finding images to :mod:`alsprog.imaging._bids`, atlases and region names to
:mod:`alsprog.imaging._atlas`, NIfTI parsing to :mod:`alsprog.imaging._nifti`, joining
features to visits to :func:`alsprog.data.assemble`.

The cleaning follows nilearn 0.14's ``nilearn.signal.clean`` (as called by
``NiftiLabelsMasker``) step for step, so the matrices equal nilearn's
``NiftiLabelsMasker(...)`` + ``ConnectivityMeasure(kind=...)`` to rounding: linear
detrend of signals and confounds; a zero-phase order-5 Butterworth filter
(``scipy.signal.butter(..., output="sos")`` + ``sosfiltfilt``, odd padding) of
both; confounds z-scored (``ddof=1``) and projected out through a pivoted QR
(columns with ``|R_ii| <= 100 eps`` dropped); then each series z-scored
(``ddof=1``).  Covariances are Ledoit-Wolf shrunk as scikit-learn's ``LedoitWolf``
(nilearn's default ``cov_estimator``).  nilearn itself is not imported.

Each image is read once, block by block, and reduced to region sums on the fly: the
gzip stream is inflated by the fastest inflater installed (ISA-L, zlib-ng or the
stdlib's zlib; see :mod:`alsprog.imaging._gzread`) and each block of volumes summed in
float64 over the atlas's runs of equal region (one contiguous ``numpy.add.reduceat``,
no gather, no float64 copy of the image), then the runs over regions.  A series with
a non-finite value inside a region is read again by the exact path (ROI voxels
gathered, voxels non-finite at any volume left out).  Images are processed in
batches through joblib threads, so ``joblib.parallel_config(backend="dask")``
spreads them.
"""

from __future__ import annotations

import fnmatch
import io
import json
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._validation import check_choice, check_int, check_interval
from alsprog.errors import DataWarning, ImagingError
from alsprog.imaging._atlas import Atlas, prepare_atlas, region_name, same_grid
from alsprog.imaging._bids import images_manifest
from alsprog.imaging._extract import QC_COLUMNS as _ROI_QC
from alsprog.imaging._extract import map_image_batches
from alsprog.imaging._files import open_regular, read_text
from alsprog.imaging._signal import (
    FILTER_ORDER,
    KINDS,
    Kind,
    _padlen,
    clean_signals,
    connectivity_matrices,
    filter_sos,
)

__all__ = [
    "KINDS",
    "ConnectivityFeatures",
    "clean_signals",
    "connectivity_matrices",
    "extract_connectivity",
]

logger = logging.getLogger(__name__)

#: Fewest volumes accepted in a run (more are needed when filtering: see the filter
#: padding in :func:`clean_signals`).
MIN_VOLUMES = 10

#: Bytes of voxel data inflated per read (whole volumes, at least one).
_BLOCK_BYTES = 8 * 2**20

#: Largest 4-D image read, in bytes of voxel data.
MAX_BOLD_BYTES = 2**34

#: :data:`alsprog.imaging._extract.QC_COLUMNS` (before ``path``) plus the run's own.
QC_COLUMNS = [
    *_ROI_QC[:-1],
    "n_volumes",
    "t_r",
    "t_r_source",
    "n_confounds",
    "path",
    "confounds_path",
]


class ConnectivityFeatures(NamedTuple):
    """Result of :func:`extract_connectivity`.

    Attributes
    ----------
    features : pandas.DataFrame
        One row per subject × session: ``subject_id``, ``session``,
        ``acquisition_date``, the ``fc_<roi1>__<roi2>`` edges, the per-ROI
        ``fcroi_<roi>`` and the network ``fcnet_<net>`` / ``fcnet_<net1>__<net2>``
        summaries.
    qc : pandas.DataFrame
        One row per image × region (columns ``QC_COLUMNS``).
    matrices : numpy.ndarray, shape (n_sessions, n_regions, n_regions)
        The connectivity matrices in the row order of ``features`` (correlation or
        partial correlation, diagonal 1; tangent-space coordinates for
        ``"tangent"``), NaN for empty or constant ROIs.
    regions : tuple of str
        Region names of the matrix rows (atlas label order).
    reference : numpy.ndarray or None
        For ``"tangent"``: the group reference, the geometric mean of the
        sessions' covariances; ``None`` otherwise.
    """

    features: pd.DataFrame
    qc: pd.DataFrame
    matrices: npt.NDArray[np.float64]
    regions: tuple[str, ...]
    reference: npt.NDArray[np.float64] | None


class _Bold(NamedTuple):
    sums: npt.NDArray[np.float64]  # (n_volumes, n_regions) sums of the used voxels
    used: npt.NDArray[np.int64]  # voxels summed per region
    n_nan: npt.NDArray[np.int64]  # voxels left out per region (non-finite)
    shape: tuple[int, int, int]
    n_volumes: int
    affine: npt.NDArray[np.float64]
    header_t_r: float | None
    scale: tuple[float, float]  # slope, intercept (applied to the ROI means)


class _Runs(NamedTuple):
    """Runs of equal region in the flat (Fortran-order) atlas, for summing volumes.

    ``starts`` are the first voxels of every run (background runs included, so that
    ``numpy.add.reduceat(volume, starts)`` gives each run's sum from one contiguous
    pass); ``order`` the runs inside a region, sorted by region; ``bounds`` the
    ``K + 1`` segment bounds of each region in ``order``.
    """

    starts: npt.NDArray[np.intp]
    order: npt.NDArray[np.intp]
    bounds: npt.NDArray[np.intp]


def _runs(atlas: Atlas) -> _Runs:
    lab = np.full(math.prod(atlas.shape), -1, dtype=np.intp)
    lab[atlas.pos] = atlas.idx
    starts = np.concatenate([[0], np.flatnonzero(np.diff(lab)) + 1]).astype(np.intp)
    run_lab = lab[starts]
    inside = np.flatnonzero(run_lab >= 0)
    order = inside[np.argsort(run_lab[inside], kind="stable")]
    bounds = np.searchsorted(run_lab[order], np.arange(atlas.n_regions + 1))
    return _Runs(starts, order.astype(np.intp), bounds.astype(np.intp))


def _read_bold(path: str, atlas: Atlas, runs: _Runs | None = None) -> _Bold:
    """Read a 4-D NIfTI block by block into per-region voxel sums.

    The grid is checked against the atlas from the header, before any voxel is
    read; then blocks of volumes are inflated (:mod:`alsprog.imaging._gzread`: the
    fastest inflater installed, the GIL released) and reduced at once, so memory
    holds one block plus the sums, never the whole 4-D image.  With ``runs`` a
    block is summed over the atlas's runs of equal region (one contiguous
    ``numpy.add.reduceat`` pass in float64, no gather, no float64 copy of the
    image), then the runs over regions; if any region sum is not finite (a NaN or
    inf voxel in a region) the file is read again by the exact path: the ROI voxels
    gathered, voxels non-finite at any volume left out.
    """
    bold = _read_pass(path, atlas, runs)
    if runs is not None and not np.isfinite(bold.sums).all():
        bold = _read_pass(path, atlas, None)
    return bold


def _read_pass(path: str, atlas: Atlas, runs: _Runs | None) -> _Bold:
    from alsprog.imaging._gzread import FastReader
    from alsprog.imaging._nifti import _MAX_HEADER, _header

    k = atlas.n_regions
    with open_regular(path, "image") as fh:
        try:
            reader = FastReader(fh, path)
            head = reader.read(_MAX_HEADER)
            hdr = _header(head, path)
            shape = tuple(int(s) for s in hdr.get_data_shape())
            if len(shape) < 4 or shape[3] <= 1 or any(s != 1 for s in shape[4:]):
                raise ImagingError(
                    f"{path}: is {len(shape)}-D with shape {shape}; a 4-D BOLD series "
                    "(x, y, z, volumes) with more than one volume is expected"
                )
            try:
                dtype = hdr.get_data_dtype()
            except Exception as exc:  # nibabel raises several types
                raise ImagingError(
                    f"{path}: unsupported NIfTI data type ({exc})"
                ) from exc
            if dtype.kind not in "biuf" or dtype.fields is not None:
                raise ImagingError(f"{path}: voxel type {dtype} is not a real number")
            n_vox = math.prod(shape[:3])
            n_t = shape[3]
            nbytes = n_vox * n_t * dtype.itemsize
            if nbytes > MAX_BOLD_BYTES:
                raise ImagingError(
                    f"{path}: header gives shape {shape} ({nbytes / 2**30:.1f} GiB); "
                    f"at most {MAX_BOLD_BYTES // 2**30} GiB are read (a corrupt "
                    "header?)"
                )
            affine = np.asarray(hdr.get_best_affine(), dtype=np.float64)
            if not same_grid(shape[:3], affine, atlas.shape, atlas.affine):
                what = (
                    f"affine differs from the atlas by up to "
                    f"{float(np.max(np.abs(affine - atlas.affine))):.3g} mm"
                    if tuple(shape[:3]) == atlas.shape
                    else f"grid {shape[:3]} differs from the atlas grid {atlas.shape}"
                )
                raise ImagingError(
                    f"{path}: {what} ({atlas.name}); resample the BOLD series or the "
                    "atlas onto one grid first"
                )
            offset = int(hdr.get_data_offset())
            if offset > len(head):
                reader.read(offset - len(head))  # header extensions
            pending = head[offset:]
            vol_bytes = n_vox * dtype.itemsize
            if runs is None:
                data = np.empty((n_t, atlas.pos.size), dtype=dtype.newbyteorder("="))
            else:
                sums = np.zeros((n_t, k))
                nonempty = np.diff(runs.bounds) > 0
                seg = runs.bounds[:-1][nonempty]  # reduceat needs increasing indices
            # a block of volumes per read: few inflate calls, bounded memory
            step = max(1, _BLOCK_BYTES // max(vol_bytes, 1))
            for t0 in range(0, n_t, step):
                nv = min(step, n_t - t0)
                want = nv * vol_bytes
                if len(pending) >= want:
                    chunk, pending = pending[:want], pending[want:]
                else:
                    chunk = pending + reader.read(want - len(pending))
                    pending = b""
                if len(chunk) < want:
                    ends = t0 + len(chunk) // vol_bytes + 1
                    raise ImagingError(
                        f"{path}: is truncated (the data ends in volume {ends} of "
                        f"{n_t}; shape {shape} {dtype})"
                    )
                # Fortran order: each volume is one contiguous block
                block = np.frombuffer(chunk, dtype=dtype, count=nv * n_vox)
                block = block.reshape(nv, n_vox)
                if runs is None:
                    data[t0 : t0 + nv] = block[:, atlas.pos]
                elif seg.size:
                    per_run = np.add.reduceat(
                        block, runs.starts, axis=1, dtype=np.float64
                    )[:, runs.order]
                    sums[t0 : t0 + nv, nonempty] = np.add.reduceat(per_run, seg, axis=1)
        except OSError as exc:
            raise ImagingError(
                f"{path}: cannot be read ({exc.strerror or exc})"
            ) from exc
    if runs is None:
        sums, used, n_nan = _gather_sums(data, atlas)
    else:
        used = np.diff(atlas.starts).astype(np.int64)
        n_nan = np.zeros(k, dtype=np.int64)
    slope, inter = hdr.get_slope_inter()
    scale = (
        1.0 if slope is None else float(slope),
        0.0 if slope is None or inter is None else float(inter),
    )
    zooms = hdr.get_zooms()
    t_r = None
    unit = hdr.get_xyzt_units()[1]
    # pixdim[4] without a time unit is often nibabel's placeholder 1: not trusted
    if len(zooms) > 3 and float(zooms[3]) > 0 and unit in ("sec", "msec", "usec"):
        t_r = float(zooms[3]) * {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}[unit]
    return _Bold(sums, used, n_nan, shape[:3], n_t, affine, t_r, scale)  # type: ignore[arg-type]


def _gather_sums(
    data: npt.NDArray[Any], atlas: Atlas
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Region sums of gathered ROI voxels ``(n_volumes, n_roi_voxels)``, leaving out
    voxels non-finite at any volume; and the used and left-out counts."""
    k = atlas.n_regions
    if data.dtype.kind == "f":
        finite = np.isfinite(data).all(axis=0)
    else:
        finite = np.ones(data.shape[1], dtype=bool)
    if not finite.all():
        data[:, ~finite] = 0  # voxels with a NaN/inf at any volume are left out
    n_nan = np.bincount(atlas.idx[~finite], minlength=k).astype(np.int64)
    used = np.bincount(atlas.idx[finite], minlength=k).astype(np.int64)
    sums = np.zeros((data.shape[0], k))
    nonempty = np.diff(atlas.starts) > 0  # reduceat needs increasing indices
    if nonempty.any():
        sums[:, nonempty] = np.add.reduceat(
            data, atlas.starts[:-1][nonempty], axis=1, dtype=np.float64
        )
    return sums, used, n_nan


_ENTITY = re.compile(r"([A-Za-z0-9]+)-([A-Za-z0-9]+)")
_DROP_ENTITIES = ("space", "res", "den", "desc", "cohort")


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _sidecar(path: Path) -> Path:
    return path.with_name(_stem(path) + ".json")


def confounds_path(path: str | os.PathLike[str]) -> Path | None:
    """The fMRIPrep ``*_desc-confounds_timeseries.tsv`` beside a BOLD file, if any.

    The BOLD name's entities other than ``space``, ``res``, ``den``, ``desc`` and
    ``cohort`` are kept (``sub-01_ses-m00_task-rest_space-X_desc-preproc_bold`` ->
    ``sub-01_ses-m00_task-rest_desc-confounds_timeseries.tsv``); the older
    ``_desc-confounds_regressors.tsv`` is accepted too.
    """
    p = Path(path)
    parts = _stem(p).split("_")[:-1]  # drop the suffix (bold)
    kept = [
        w
        for w in parts
        if not (_ENTITY.fullmatch(w) and w.split("-")[0] in _DROP_ENTITIES)
    ]
    base = "_".join(kept)
    for suffix in ("timeseries", "regressors"):
        cand = p.with_name(f"{base}_desc-confounds_{suffix}.tsv")
        if cand.exists() or cand.is_symlink():
            return cand
    return None


def _t_r(path: str, given: float | None, header: float | None) -> tuple[float, str]:
    if given is not None:
        return given, "argument"
    side = _sidecar(Path(path))
    if side.exists() or side.is_symlink():
        text = read_text(side, "JSON sidecar")
        try:
            meta = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImagingError(f"{side}: cannot be read as JSON ({exc})") from exc
        if isinstance(meta, dict) and "RepetitionTime" in meta:
            value = meta["RepetitionTime"]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not np.isfinite(value)
                or value <= 0
            ):
                raise ImagingError(
                    f"{side}: RepetitionTime {value!r} is not a positive number of "
                    "seconds"
                )
            return float(value), "sidecar"
    if header is not None:
        return header, "header"
    raise ImagingError(
        f"{path}: no repetition time: the header's pixdim[4] is 0 or has no time "
        f"unit, and there is no RepetitionTime in {side.name}; pass t_r= (seconds)"
    )


def _tsv_cells(text: str, source: Any) -> tuple[list[str], npt.NDArray[np.str_]]:
    """A tab-separated table as its header and a (rows, columns) array of cells.

    BIDS TSV files are plain (no quoting); a file with quotes is read by pandas.
    Blank lines at the end are ignored; a row with another number of cells than
    the header is an error naming its line.
    """
    if '"' in text:
        try:
            df = pd.read_csv(
                io.StringIO(text), sep="\t", dtype=str, keep_default_na=False
            )
        except Exception as exc:  # pandas raises many parser error types
            raise ImagingError(f"{source}: cannot be read as TSV ({exc})") from exc
        return [str(c) for c in df.columns], df.to_numpy(dtype=str)
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ImagingError(f"{source}: cannot be read as TSV (the file is empty)")
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:]]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ImagingError(
                f"{source}: cannot be read as TSV (line {i + 2} has {len(row)} "
                f"fields, the header {len(header)})"
            )
    return header, np.array(rows, dtype=str).reshape(len(rows), len(header))


def _read_confounds(
    path: str, wanted: Sequence[str], n_volumes: int
) -> tuple[npt.NDArray[np.float64], str]:
    cpath = confounds_path(path)
    if cpath is None:
        raise ImagingError(
            f"{path}: confounds {list(wanted)} were asked for, but no "
            "*_desc-confounds_timeseries.tsv lies beside it"
        )
    text = read_text(cpath, "confounds table")
    header, table = _tsv_cells(text, cpath)
    columns: list[str] = []
    for w in wanted:
        hits = [c for c in header if fnmatch.fnmatchcase(c, w)]
        if not hits:
            shown = ", ".join(map(str, header[:30]))
            raise ImagingError(
                f"{cpath}: confounds column {w!r} does not exist; its columns are "
                f"{shown}{' ...' if len(header) > 30 else ''}"
            )
        columns.extend(h for h in hits if h not in columns)
    if len(table) != n_volumes:
        raise ImagingError(
            f"{cpath}: has {len(table)} rows, but {path} has {n_volumes} volumes (one "
            "row per volume expected)"
        )
    out = np.empty((n_volumes, len(columns)))
    for j, col in enumerate(columns):
        cells = np.char.strip(table[:, header.index(col)])
        missing = np.isin(np.char.lower(cells), ["n/a", "nan", ""])
        # fMRIPrep's derivative and framewise-displacement columns start with n/a
        lead = int(np.argmin(missing)) if not missing.all() else len(missing)
        if missing[lead:].any():
            line = lead + int(np.argmax(missing[lead:])) + 2
            raise ImagingError(
                f"{cpath}: line {line}, column {col}: n/a inside the series (only "
                "leading n/a, as in derivative columns, are set to 0); leave the "
                "column out or fill it"
            )
        try:
            out[:, j] = np.where(missing, "0", cells).astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise ImagingError(f"{cpath}: column {col}: not numbers ({exc})") from exc
        if not np.isfinite(out[:, j]).all():
            line = int(np.argmax(~np.isfinite(out[:, j]))) + 2
            raise ImagingError(f"{cpath}: line {line}, column {col}: not finite")
    return out, str(cpath)


class _Task(NamedTuple):
    confounds: tuple[str, ...] | None
    detrend: bool
    standardize: bool
    high_pass: float | None
    low_pass: float | None
    t_r: float | None
    runs: _Runs | None  # None: the gather path for every file


def _session(path: str, atlas: Atlas, task: _Task) -> dict[str, Any]:
    """One image: ROI series, cleaned; and its QC numbers."""
    bold = _read_bold(path, atlas, task.runs)
    t_r, t_r_source = _t_r(path, task.t_r, bold.header_t_r)
    n_t = bold.n_volumes
    if n_t < MIN_VOLUMES:
        raise ImagingError(
            f"{path}: has {n_t} volumes; at least {MIN_VOLUMES} are needed for a "
            "connectivity estimate"
        )
    nyq = 0.5 / t_r
    for name, f in (("low_pass", task.low_pass), ("high_pass", task.high_pass)):
        if f is not None and f >= nyq:
            raise ImagingError(
                f"{path}: {name}={f} Hz is not below the Nyquist frequency "
                f"{nyq:.4g} Hz of t_r={t_r} s ({t_r_source}); lower {name} or pass "
                "None"
            )
    sos = filter_sos(t_r, task.high_pass, task.low_pass)
    if sos is not None and n_t <= _padlen(sos):
        raise ImagingError(
            f"{path}: has {n_t} volumes; the order-{FILTER_ORDER} Butterworth filter "
            f"needs more than {_padlen(sos)} (its padding); pass high_pass=None / "
            "low_pass=None or use a longer run"
        )
    conf, cpath = (
        _read_confounds(path, task.confounds, n_t) if task.confounds else (None, "")
    )
    k = atlas.n_regions
    used, n_nan = bold.used, bold.n_nan
    raw = np.full((n_t, k), np.nan)
    ok = used > 0
    slope, inter = bold.scale
    raw[:, ok] = bold.sums[:, ok] / used[ok] * slope + inter
    clean = np.full((n_t, k), np.nan)
    if ok.any():
        clean[:, ok] = clean_signals(
            raw[:, ok],
            confounds=conf,
            detrend=task.detrend,
            standardize=task.standardize,
            high_pass=task.high_pass,
            low_pass=task.low_pass,
            t_r=t_r,
        )
    status = np.where(ok, "ok", "empty").astype(object)
    with np.errstate(invalid="ignore"):
        spread = np.ptp(raw, axis=0)
        constant = ok & ~(spread > 1e-10 * np.maximum(1.0, np.abs(raw[0])))
    status[constant] = "constant"
    return {
        "series": clean,
        "n_nan": n_nan,
        "n_used": used,
        "status": status,
        "n_volumes": n_t,
        "t_r": t_r,
        "t_r_source": t_r_source,
        "n_confounds": 0 if conf is None else conf.shape[1],
        "confounds_path": cpath,
    }


def _chunk(paths: list[str], atlas: Atlas, task: _Task) -> list[dict[str, Any]]:
    return [_session(p, atlas, task) for p in paths]


# --------------------------------------------------------------------------- features


def _edges(spec: Any, regions: tuple[str, ...]) -> list[tuple[int, int]]:
    k = len(regions)
    if spec is None:
        return [(i, j) for i in range(k) for j in range(i + 1, k)]
    index = {r: i for i, r in enumerate(regions)}
    out: list[tuple[int, int]] = []
    for pair in spec:
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(
                f"`edges` must be None or a list of (region, region) pairs; got "
                f"{pair!r}."
            )
        ij = []
        for r in pair:
            name = region_name(r)
            if name not in index:
                raise ImagingError(
                    f"edges: region {r!r} is not in the atlas (regions: "
                    f"{', '.join(regions)})"
                )
            ij.append(index[name])
        if ij[0] == ij[1]:
            raise ValueError(f"`edges` pair {tuple(pair)!r} joins a region to itself.")
        e = (min(ij), max(ij))
        if e not in out:
            out.append(e)
    return out


def _networks(spec: Any, regions: tuple[str, ...]) -> dict[str, list[int]]:
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise TypeError(
            "`networks` must be a mapping {network: [regions or patterns]}; got "
            f"{type(spec).__name__}."
        )
    out: dict[str, list[int]] = {}
    for net, members in spec.items():
        name = region_name(net)
        if not name or name in out:
            raise ValueError(f"`networks` name {net!r} is empty or repeated.")
        if isinstance(members, str):
            members = [members]
        hits: list[int] = []
        for m in members:
            found = [i for i, r in enumerate(regions) if fnmatch.fnmatchcase(r, str(m))]
            if not found:
                raise ImagingError(
                    f"networks[{net!r}]: {m!r} matches no region of the atlas "
                    f"({', '.join(regions)})"
                )
            hits.extend(i for i in found if i not in hits)
        out[name] = sorted(hits)
    return out


def _fisher(m: npt.NDArray[np.float64], kind: str) -> npt.NDArray[np.float64]:
    if kind == "tangent":
        return m
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arctanh(np.clip(m, -1.0, 1.0))


def extract_connectivity(
    source: Any,
    atlas: Any,
    labels: Any = None,
    *,
    confounds: Sequence[str] | None = None,
    standardize: bool = True,
    detrend: bool = True,
    high_pass: float | None = 0.008,
    low_pass: float | None = 0.1,
    t_r: float | None = None,
    kind: Kind = "correlation",
    cov_estimator: Literal["ledoit_wolf", "empirical"] = "ledoit_wolf",
    edges: Sequence[tuple[str, str]] | None = None,
    networks: Mapping[str, str | Sequence[str]] | None = None,
    mask: Any = None,
    n_jobs: int | None = 1,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> ConnectivityFeatures:
    """Resting-state functional connectivity per subject × session.

    For every 4-D BOLD image: the mean time series of each atlas region, cleaned
    (detrend, Butterworth band-pass, confound regression, z-score, in the order and
    with the defaults of ``nilearn.signal.clean``), then a connectivity matrix, its
    chosen edges as Fisher z and per-ROI and network summaries.

    Parameters
    ----------
    source : str, path-like or pandas.DataFrame
        A BIDS-derivatives folder (``sub-<id>/ses-<id>/func/sub-<id>_ses-<id>_..._bold.nii[.gz]``,
        one run per session; dates from ``sub-<id>_sessions.tsv``) or a manifest
        with columns ``subject_id, session, acquisition_date, metric, path``
        (``metric`` ``bold``), as for :func:`extract_roi_features`.
    atlas : str, path-like or nibabel image
        3-D label volume on the BOLD grid (0 = background).
    labels : str, path-like, DataFrame, mapping or None
        Lookup table label -> region name, as for :func:`extract_roi_features`.
    confounds : sequence of str, optional
        Columns (or shell patterns such as ``"trans_*"``) of the fMRIPrep
        ``*_desc-confounds_timeseries.tsv`` beside each run to regress out.
        Leading ``n/a`` (derivative columns) are set to 0.
    standardize : bool, default True
        z-score each cleaned series (``ddof=1``).
    detrend : bool, default True
        Remove mean and linear trend of series and confounds first.
    high_pass, low_pass : float or None, default 0.008, 0.1
        Band-pass cut-offs in Hz (order-5 zero-phase Butterworth); ``None`` leaves
        that side unfiltered.  Both must be below the Nyquist frequency
        ``1 / (2 t_r)`` of every run.
    t_r : float, optional
        Repetition time in seconds; default from the ``RepetitionTime`` of the JSON
        sidecar, else the NIfTI header (``pixdim[4]`` in its time unit; a header
        without a time unit is not trusted).
    kind : {"correlation", "partial correlation", "tangent"}, default "correlation"
        ``"tangent"`` measures each session's covariance against a group
        reference, the geometric mean of all sessions' covariances in this call
        (as nilearn's ``ConnectivityMeasure(kind="tangent")``); its values depend
        on which sessions are extracted together and are not correlations.
    cov_estimator : {"ledoit_wolf", "empirical"}, default "ledoit_wolf"
        Covariance estimator (nilearn's default is Ledoit-Wolf shrinkage).
    edges : sequence of (str, str), optional
        Region pairs to report; ``None`` every pair.
    networks : mapping, optional
        ``{"motor": ["precentral_*", "cst_*"], ...}``: region names or shell
        patterns per network, for the ``fcnet_`` summaries.
    mask : str, path-like, nibabel image or None
        Optional mask on the atlas grid.
    n_jobs : int or None, default 1
        joblib worker threads.
    batch_size : int, optional
        Images per parallel task.
    progress : bool or None
        Progress bar counting images.

    Returns
    -------
    ConnectivityFeatures
        ``features`` has ``subject_id``, ``session``, ``acquisition_date``, then
        ``fc_<roi1>__<roi2>`` (Fisher z ``arctanh(r)`` of the correlation or
        partial correlation; the tangent-space coordinate for ``"tangent"``; the
        two regions in atlas order), ``fcroi_<roi>`` (mean over the region's
        edges to all others) and, per network, ``fcnet_<net>`` (mean over its
        within-network edges) and ``fcnet_<net1>__<net2>`` (mean over edges
        between two networks).  ``qc`` has one row per image × region with
        ``n_voxels``, ``n_nan`` (voxels with a non-finite value at any volume, left
        out), ``n_used``, ``status`` (``"ok"``, ``"empty"``, ``"constant"``: no
        variance after cleaning, its edges NaN), ``n_volumes``, ``t_r``,
        ``t_r_source``, ``n_confounds`` and the file paths.

    Raises
    ------
    ImagingError
        Naming the file: not 4-D, grid or affine different from the atlas, fewer
        than 10 volumes or too few for the filter, no repetition time, a cut-off
        at or above Nyquist, a confounds file missing or without a named column,
        n/a inside a confound series, an unknown region in ``edges``/``networks``;
        everything :func:`extract_roi_features` raises for the sources and atlas.
    TypeError, ValueError
        For a wrong argument (e.g. ``high_pass >= low_pass``, ``"tangent"`` with one
        session).

    Warns
    -----
    DataWarning
        Regions empty or constant in some session (their edges are NaN; for
        ``"tangent"`` they are left out of every session).

    Notes
    -----
    Voxels with a NaN at any volume are left out of their region (nilearn sets
    them to 0 instead); otherwise the matrices equal nilearn 0.14's
    ``NiftiLabelsMasker(labels_img, standardize="zscore_sample", detrend=True,
    high_pass=..., low_pass=..., t_r=...)`` followed by
    ``ConnectivityMeasure(kind=...)``.

    Examples
    --------
    >>> import tempfile
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.simulate._fmri import write_fmri
    >>> cohort = simulate_cohort(1, 1, months=0, seed=2)
    >>> sim = write_fmri(cohort, tempfile.mkdtemp(), shape=(16, 18, 16),
    ...                  n_volumes=60, seed=2, progress=False)
    >>> res = extract_connectivity(sim.root, sim.atlas, confounds=["trans_*", "rot_*"],
    ...                            progress=False)
    >>> res.matrices.shape, res.features.columns[3]
    ((2, 6, 6), 'fc_cst_left__cst_right')
    """

    t0 = time.perf_counter()
    check_choice(kind, "kind", KINDS)
    check_choice(cov_estimator, "cov_estimator", ("ledoit_wolf", "empirical"))
    if not isinstance(standardize, bool) or not isinstance(detrend, bool):
        raise TypeError("`standardize` and `detrend` must be True or False.")
    hp = (
        None
        if high_pass is None
        else float(check_interval(high_pass, "high_pass", low=0.0, low_closed=False))
    )
    lp = (
        None
        if low_pass is None
        else float(check_interval(low_pass, "low_pass", low=0.0, low_closed=False))
    )
    if hp is not None and lp is not None and hp >= lp:
        raise ValueError(
            f"`high_pass` must be below `low_pass`; got high_pass={hp}, low_pass={lp}."
        )
    tr = (
        None
        if t_r is None
        else float(check_interval(t_r, "t_r", low=0.0, low_closed=False))
    )
    if confounds is not None:
        if isinstance(confounds, str):
            confounds = [confounds]
        confounds = [str(c) for c in confounds]
    if n_jobs is not None:
        n_jobs = check_int(n_jobs, "n_jobs")
        if n_jobs == 0:
            raise ValueError("`n_jobs` must be a non-zero integer or None; got 0.")
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", low=1)

    manifest = images_manifest(source, metrics=["bold"])
    if manifest.empty:
        raise ImagingError(f"{source}: no BOLD images (metric 'bold') found")
    prepared = prepare_atlas(atlas, labels, mask)
    if prepared.n_regions < 2:
        raise ImagingError(
            f"{prepared.name}: connectivity needs two or more regions; the atlas has "
            f"{prepared.n_regions}"
        )
    pairs = _edges(edges, prepared.regions)
    nets = _networks(networks, prepared.regions)
    if kind == "tangent" and len(manifest) < 2:
        raise ValueError(
            "kind='tangent' needs two or more sessions (it measures each against the "
            f"group's geometric mean); found {len(manifest)}."
        )
    task = _Task(
        tuple(confounds) if confounds else None,
        detrend,
        standardize,
        hp,
        lp,
        tr,
        _runs(prepared),
    )
    n = len(manifest)
    results = map_image_batches(
        _chunk,
        manifest["path"].tolist(),
        prepared,
        task,
        n_jobs=n_jobs,
        batch_size=batch_size,
        progress=progress,
        desc="Connectivity",
        max_batch=16,
    )

    k = prepared.n_regions
    usable = np.array([r["status"] == "ok" for r in results]).reshape(n, k)
    matrices = np.full((n, k, k), np.nan)
    reference = None
    if kind == "tangent":
        common = usable.all(axis=0)
        if common.sum() < 2:
            raise ImagingError(
                f"{source}: fewer than two regions are usable in every session; "
                "'tangent' needs a common set (see qc)"
            )
        mats, ref = connectivity_matrices(
            [r["series"][:, common] for r in results],
            kind=kind,
            cov_estimator=cov_estimator,
        )
        idx = np.flatnonzero(common)
        matrices[np.ix_(np.arange(n), idx, idx)] = mats
        reference = np.full((k, k), np.nan)
        reference[np.ix_(idx, idx)] = ref
    else:
        for s, r in enumerate(results):
            ok = usable[s]
            if ok.sum() < 2:
                continue
            mats, _ = connectivity_matrices(
                [r["series"][:, ok]], kind=kind, cov_estimator=cov_estimator
            )
            idx = np.flatnonzero(ok)
            matrices[s][np.ix_(idx, idx)] = mats[0]
    bad = ~usable
    if bad.any():
        bs, br = (int(v) for v in np.argwhere(bad)[0])
        row = manifest.iloc[bs]
        warnings.warn(
            f"{int(bad.sum())} image × region pairs are empty or constant (first: "
            f"{row['path']} (subject {row['subject_id']}, session {row['session']}), "
            f"region {prepared.regions[br]!r}: {results[bs]['status'][br]}); their "
            "edges are NaN (see qc)",
            DataWarning,
            stacklevel=2,
        )
    features = _features(manifest, matrices, prepared.regions, pairs, nets, kind)
    qc = _qc(manifest, results, prepared)
    logger.info(
        "connectivity (%s) of %d regions from %d images in %.1f s",
        kind,
        k,
        n,
        time.perf_counter() - t0,
    )
    return ConnectivityFeatures(features, qc, matrices, prepared.regions, reference)


def _features(
    manifest: pd.DataFrame,
    matrices: npt.NDArray[np.float64],
    regions: tuple[str, ...],
    pairs: list[tuple[int, int]],
    nets: dict[str, list[int]],
    kind: str,
) -> pd.DataFrame:
    z = _fisher(matrices, kind)
    n, k = len(manifest), len(regions)
    ids = pd.DataFrame(
        {
            "subject_id": manifest["subject_id"].astype("str").to_numpy(),
            "session": manifest["session"].astype("str").to_numpy(),
            "acquisition_date": pd.to_datetime(manifest["acquisition_date"]).to_numpy(),
        }
    )
    names = [f"fc_{regions[i]}__{regions[j]}" for i, j in pairs]
    ii = np.fromiter((i for i, _ in pairs), dtype=np.intp, count=len(pairs))
    jj = np.fromiter((j for _, j in pairs), dtype=np.intp, count=len(pairs))
    blocks = [z[:, ii, jj].reshape(n, len(pairs))]
    off = np.where(np.eye(k, dtype=bool), np.nan, z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        blocks.append(np.nanmean(off, axis=2))
        names += [f"fcroi_{r}" for r in regions]
        nets_list = list(nets)
        for a, na in enumerate(nets_list):
            ia = nets[na]
            if len(ia) >= 2:
                sub = off[:, ia][:, :, ia]
                upper = np.triu(np.ones((len(ia), len(ia)), dtype=bool), 1)
                blocks.append(np.nanmean(sub[:, upper], axis=1)[:, None])
                names.append(f"fcnet_{na}")
            for nb in nets_list[a + 1 :]:
                cross = off[:, nets[na]][:, :, nets[nb]].reshape(n, -1)
                blocks.append(np.nanmean(cross, axis=1)[:, None])
                names.append(f"fcnet_{na}__{nb}")
    values = pd.DataFrame(np.hstack(blocks), columns=names)
    return pd.concat([ids, values], axis=1)


def _qc(
    manifest: pd.DataFrame, results: list[dict[str, Any]], atlas: Atlas
) -> pd.DataFrame:
    n, k = len(manifest), atlas.n_regions
    rep = np.repeat(np.arange(n), k)
    used = np.concatenate([r["n_used"] for r in results])
    n_vox = np.tile(atlas.n_voxels, n)

    def per_image(key: str) -> npt.NDArray[Any]:
        return np.asarray([r[key] for r in results], dtype=object)[rep]

    return pd.DataFrame(
        {
            "subject_id": manifest["subject_id"].to_numpy()[rep],
            "session": manifest["session"].to_numpy()[rep],
            "metric": "bold",
            "region": np.tile(np.asarray(atlas.regions, dtype=object), n),
            "label": np.tile(atlas.labels, n),
            "n_voxels": n_vox,
            "n_outside_mask": np.tile(atlas.n_outside_mask, n),
            "n_outside_fov": np.zeros(n * k, dtype=np.int64),
            "n_nan": np.concatenate([r["n_nan"] for r in results]),
            "n_used": used,
            "coverage": used / n_vox,
            "status": np.concatenate([r["status"] for r in results]),
            "n_volumes": per_image("n_volumes").astype(np.int64),
            "t_r": per_image("t_r").astype(np.float64),
            "t_r_source": per_image("t_r_source"),
            "n_confounds": per_image("n_confounds").astype(np.int64),
            "path": manifest["path"].to_numpy()[rep],
            "confounds_path": per_image("confounds_path"),
        }
    )[QC_COLUMNS]
