"""Regional statistics of voxel maps: one row of features per subject × session.

Owns: :func:`extract_roi_features` (images + label atlas -> features and QC tables),
:func:`roi_statistics` (the numerics: ROI voxel values sorted by region -> every
statistic in one pass of ``numpy.bincount``) and :class:`RoiFeatures`.
Leaves: finding images to :mod:`alsprog.imaging._bids`, reading voxels to
:mod:`alsprog.imaging._nifti`, atlases to :mod:`alsprog.imaging._atlas`, joining
features to visits to :func:`alsprog.data.assemble`.

Each image is read once (one ``zlib`` inflate, no float64 copy); its ROI voxels are
gathered with one precomputed index sorted by region, and every region's sums come
from one ``bincount``.  Work is split into batches of images run through joblib, so
``joblib.parallel_config(backend="dask")`` spreads it over a Dask cluster.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._progress import progress_bar
from alsprog._validation import check_choice, check_int, check_interval
from alsprog.errors import DataWarning, ImagingError
from alsprog.imaging._atlas import (
    AFFINE_TOL_MM,
    Atlas,
    metrics_by_region_mapping,
    prepare_atlas,
    same_grid,
)
from alsprog.imaging._bids import images_manifest
from alsprog.imaging._nifti import Volume, read_volume

__all__ = ["STATISTICS", "RoiFeatures", "extract_roi_features", "roi_statistics"]

logger = logging.getLogger(__name__)

#: Statistics ``extract_roi_features`` computes, in the order of their columns.
STATISTICS = ("mean", "median", "std", "count", "volume", "trimmed_mean")

Statistic = Literal["mean", "median", "std", "count", "volume", "trimmed_mean"]

QC_COLUMNS = [
    "subject_id",
    "session",
    "metric",
    "region",
    "label",
    "n_voxels",
    "n_outside_mask",
    "n_outside_fov",
    "n_nan",
    "n_used",
    "coverage",
    "status",
    "path",
]


class RoiFeatures(NamedTuple):
    """Result of :func:`extract_roi_features`.

    Attributes
    ----------
    features : pandas.DataFrame
        One row per subject × session: ``subject_id``, ``session``,
        ``acquisition_date``, then ``<metric>_<region>[_<stat>]`` columns.
    qc : pandas.DataFrame
        One row per image × region (columns :data:`QC_COLUMNS`).
    """

    features: pd.DataFrame
    qc: pd.DataFrame


def roi_statistics(
    values: npt.NDArray[Any],
    idx: npt.NDArray[np.intp],
    starts: npt.NDArray[np.intp],
    *,
    stats: Sequence[str] = ("mean",),
    trim: float = 0.1,
    voxel_volume: float = 1.0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Statistics of every region from its voxel values, non-finite values left out.

    Parameters
    ----------
    values : ndarray, shape (n,)
        Voxel values of all regions, sorted by region.
    idx : ndarray of intp, shape (n,)
        Region index (0..K-1) of each value, non-decreasing.
    starts : ndarray of intp, shape (K + 1,)
        Region ``k`` is ``values[starts[k]:starts[k + 1]]``.
    stats : sequence of str
        Names from :data:`STATISTICS`.
    trim : float
        Fraction cut from each end for ``trimmed_mean`` (as
        ``scipy.stats.trim_mean``).
    voxel_volume : float
        mm³ per voxel, for ``volume``.

    Returns
    -------
    (ndarray, ndarray, ndarray)
        Statistics, shape ``(len(stats), K)`` (NaN for a region without finite
        values; ``std`` is the population SD); finite values used per region; non-finite
        values per region.

    Examples
    --------
    >>> v = np.array([1.0, 2.0, 3.0, 10.0, np.nan])
    >>> s, used, bad = roi_statistics(v, np.array([0, 0, 0, 1, 1]), np.array([0, 3, 5]),
    ...                               stats=("mean", "count"))
    >>> s.tolist(), used.tolist(), bad.tolist()
    ([[2.0, 10.0], [3.0, 1.0]], [3, 1], [0, 1])
    """
    k = len(starts) - 1
    sizes = np.diff(starts).astype(np.int64)
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        all_finite = bool(finite.all())
    else:
        finite, all_finite = None, True
    if all_finite:
        n_bad = np.zeros(k, dtype=np.int64)
        w = values
    else:
        n_bad = np.bincount(idx[~finite], minlength=k).astype(np.int64)
        w = np.where(finite, values, 0.0)
    used = sizes - n_bad
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(idx, weights=w, minlength=k) / used
    out = np.full((len(stats), k), np.nan)
    for j, stat in enumerate(stats):
        if stat == "mean":
            out[j] = mean
        elif stat == "count":
            out[j] = used
        elif stat == "volume":
            out[j] = used * voxel_volume
        elif stat == "std":
            dev = np.asarray(w, dtype=np.float64) - mean[idx]
            if not all_finite:
                dev[~finite] = 0.0
            with np.errstate(invalid="ignore", divide="ignore"):
                out[j] = np.sqrt(
                    np.bincount(idx, weights=dev * dev, minlength=k) / used
                )
        else:  # median, trimmed_mean: per region on the sorted finite values
            for r in range(k):
                seg = values[starts[r] : starts[r + 1]]
                if not all_finite:
                    seg = seg[finite[starts[r] : starts[r + 1]]]
                if seg.size == 0:
                    continue
                if stat == "median":
                    out[j, r] = np.median(seg)
                else:
                    cut = int(trim * seg.size)
                    part = np.partition(seg, (cut, seg.size - cut - 1))
                    out[j, r] = part[cut : seg.size - cut].mean(dtype=np.float64)
    return out, used, n_bad


class _Task(NamedTuple):
    stats: tuple[str, ...]
    trim: float
    nan_policy: str
    resample: str | None


def _roi_values(
    vol: Volume, atlas: Atlas, resample: str | None
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None]:
    """ROI voxel values on the atlas grid, and which fell outside the image."""
    if same_grid(vol.shape, vol.affine, atlas.shape, atlas.affine):
        return vol.data[atlas.pos], None
    if resample is None:
        diff = (
            float(np.max(np.abs(vol.affine - atlas.affine)))
            if vol.shape == atlas.shape
            else None
        )
        what = (
            f"affine differs from atlas {atlas.name} by up to {diff:.3g} mm "
            f"(> {AFFINE_TOL_MM} mm)"
            if diff is not None
            else f"shape {vol.shape} differs from atlas {atlas.name} {atlas.shape}"
        )
        raise ImagingError(
            f"{vol.name}: {what}; pass resample='nearest' or 'linear' to resample "
            "it onto the atlas grid"
        )
    to_img = np.linalg.solve(vol.affine, atlas.affine)
    coords = to_img[:3, :3] @ atlas.roi_ijk() + to_img[:3, 3:]
    dims = np.asarray(vol.shape, dtype=np.float64)[:, None]
    inside = np.all((coords >= -0.5) & (coords <= dims - 0.5), axis=0)
    grid = vol.grid()
    if resample == "nearest":
        ijk = np.clip(np.rint(coords).astype(np.intp), 0, dims.astype(np.intp) - 1)
        values = grid[ijk[0], ijk[1], ijk[2]].astype(np.float64)
    else:
        from scipy.ndimage import map_coordinates

        values = map_coordinates(
            np.asarray(grid, dtype=np.float64), coords, order=1, mode="nearest"
        )
    values[~inside] = np.nan
    return values, ~inside


def _image_stats(path: str, atlas: Atlas, task: _Task) -> tuple[Any, ...]:
    vol = read_volume(path)
    values, outside = _roi_values(vol, atlas, task.resample)
    stats, used, n_bad = roi_statistics(
        values,
        atlas.idx,
        atlas.starts,
        stats=task.stats,
        trim=task.trim,
        voxel_volume=atlas.voxel_volume,
    )
    k = atlas.n_regions
    n_out = (
        np.zeros(k, dtype=np.int64)
        if outside is None
        else np.bincount(atlas.idx[outside], minlength=k).astype(np.int64)
    )
    n_nan = n_bad - n_out
    if task.nan_policy == "raise" and n_nan.any():
        r = int(np.flatnonzero(n_nan)[0])
        raise ImagingError(
            f"{path}: {int(n_nan.sum())} NaN/inf voxels inside regions (first: "
            f"{n_nan[r]} in {atlas.regions[r]!r}, label {atlas.labels[r]}); pass "
            "nan_policy='ignore' to leave them out"
        )
    return stats, used, n_nan, n_out


def _extract_chunk(paths: list[str], atlas: Atlas, task: _Task) -> list[Any]:
    """One batch of images (the unit of parallel work)."""
    return [_image_stats(p, atlas, task) for p in paths]


def map_image_batches(
    fn: Any,
    paths: list[str],
    atlas: Atlas,
    task: Any,
    *,
    n_jobs: int | None,
    batch_size: int | None,
    progress: bool | None,
    desc: str,
    max_batch: int = 64,
) -> list[Any]:
    """``fn(batch, atlas, task)`` over batches of ``paths``, results in path order.

    Batches run through joblib threads (or the configured joblib backend, e.g.
    ``parallel_config(backend="dask")``, which spreads them); the default batch size
    gives each worker about four batches, at most ``max_batch`` images each.  One
    progress bar counts images.
    """
    from joblib import Parallel, delayed, effective_n_jobs

    n = len(paths)
    configured = _backend_configured()  # e.g. parallel_config(backend="dask")
    workers = max(1, effective_n_jobs(-1 if configured else n_jobs))
    size = batch_size or max(1, min(max_batch, math.ceil(n / (4 * workers))))
    chunks = [paths[i : i + size] for i in range(0, n, size)]
    results: list[Any] = []
    with progress_bar(progress=progress, total=n, desc=desc, unit="image") as bar:
        if workers == 1 and not configured:
            for c in chunks:
                results.extend(fn(c, atlas, task))
                bar.update(len(c))
        else:
            parallel = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")
            for c, part in zip(
                chunks,
                parallel(delayed(fn)(c, atlas, task) for c in chunks),
                strict=True,
            ):
                results.extend(part)
                bar.update(len(c))
    return results


def extract_roi_features(
    images: Any,
    atlas: Any,
    labels: Any = None,
    *,
    stats: Sequence[Statistic] | str = ("mean",),
    mask: Any = None,
    nan_policy: Literal["ignore", "raise"] = "ignore",
    resample: Literal["nearest", "linear"] | None = None,
    trim: float = 0.1,
    metrics: Sequence[str] | None = None,
    metrics_by_region: Mapping[str, str | Sequence[str]] | Sequence[str] | None = None,
    n_jobs: int | None = 1,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> RoiFeatures:
    """Regional statistics of every map: one feature row per subject × session.

    Parameters
    ----------
    images : str, path-like or pandas.DataFrame
        A BIDS-derivatives folder (maps named
        ``sub-<id>/ses-<id>/<datatype>/sub-<id>_ses-<id>_..._<metric>.nii[.gz]``; the
        metric is the BIDS suffix, lower-cased; ``mask``, ``dseg`` and ``probseg``
        files are skipped; dates from ``sub-<id>/sub-<id>_sessions.tsv``,
        ``acq_time``) or a manifest (DataFrame or CSV/TSV file) with columns
        ``subject_id, session, acquisition_date, metric, path`` (relative paths are
        taken from the manifest's folder).
    atlas : str, path-like or nibabel image
        3-D label volume (whole numbers, 0 = background).
    labels : str, path-like, pandas.DataFrame, mapping or None
        Lookup table label -> region name: a TSV with ``index`` and ``name``
        columns, a FreeSurfer colour LUT, a DataFrame with those columns or a
        ``{label: name}`` mapping.  ``None``: the ``.tsv`` beside the atlas with the
        same stem.  Names become ``region_name(name)`` (lower case, ``_``).  An
        optional ``metrics`` column of a TSV or DataFrame lists the metrics measured
        in each region (``fa md`` for a tract, ``thickness`` for cortex; separated
        by spaces or commas; an empty cell: every metric), so that no feature is
        made of cortical thickness in a white-matter tract or FA in cortex.
    stats : sequence of str or str, default ("mean",)
        Any of ``"mean"``, ``"median"``, ``"std"`` (population SD), ``"count"``
        (voxels used), ``"volume"`` (voxels used × voxel volume, mm³),
        ``"trimmed_mean"``.  The mean is ``<metric>_<region>``; others add
        ``_<stat>``.
    mask : str, path-like, nibabel image or None
        Optional mask on the atlas grid; voxels where it is 0 or NaN are left out.
    nan_policy : {"ignore", "raise"}, default "ignore"
        NaN/inf voxels inside a region: left out and counted in ``qc.n_nan``, or an
        :class:`ImagingError`.
    resample : {"nearest", "linear"} or None, default None
        Images on another grid than the atlas (shape, or affine beyond 1e-3 mm):
        ``None`` refuses them; otherwise each atlas ROI voxel centre is sampled from
        the image (nearest neighbour or trilinear).  Atlas voxels outside the image
        are left out and counted in ``qc.n_outside_fov``.
    trim : float, default 0.1
        Fraction cut from each end for ``trimmed_mean``, in [0, 0.5).
    metrics : sequence of str, optional
        Keep only these metrics (e.g. ``["fa", "md"]``).
    metrics_by_region : mapping or sequence of str, optional
        Which metrics belong to which regions, over the lookup table's ``metrics``
        column: ``{"cst_*": ["fa", "md"], "precentral_*": "thickness"}`` or the same
        as ``["cst_*=fa,md", "precentral_*=thickness"]``; keys are region names as
        in the feature columns, or shell patterns, and each must match a region.
        Regions neither lists keep every metric (the default: all metrics in all
        regions).
    n_jobs : int or None, default 1
        joblib workers (threads; -1 all cores).  Inside
        ``joblib.parallel_config(backend="dask")`` the batches run on the Dask
        cluster.
    batch_size : int, optional
        Images per parallel task; default about four tasks per worker, at most 64.
    progress : bool or None
        Progress bar counting images: ``None`` on a terminal only.

    Returns
    -------
    RoiFeatures
        ``(features, qc)``.  ``features``: one row per subject × session, sorted,
        with ``subject_id``, ``session``, ``acquisition_date`` and the
        ``<metric>_<region>[_<stat>]`` columns (metrics alphabetically, regions in
        label order, statistics in the order asked; only the regions each metric
        belongs to) — ready for
        ``alsprog.data.assemble(visits, subjects, imaging=features)``.  ``qc``: one
        row per image × region of its metric with ``n_voxels`` (atlas voxels), ``n_outside_mask``,
        ``n_outside_fov``, ``n_nan`` (non-finite voxels left out), ``n_used``,
        ``coverage`` (``n_used / n_voxels``) and ``status`` (``"ok"``, ``"empty"``
        when no voxel is usable, ``"absent_from_atlas"`` for lookup-table labels not
        in the atlas, which get no feature).

    Raises
    ------
    ImagingError
        Naming the file: unreadable, truncated or not NIfTI; 4-D; grid different
        from the atlas (without ``resample``); NaN/inf in a region with
        ``nan_policy="raise"``; an atlas label missing from the lookup table;
        duplicate subject × session × metric; no images found; an image that is not
        a regular file (folder, named pipe, device, dangling link), has an absurd
        header shape or decompresses to more than its header implies; a
        ``metrics_by_region`` entry that is malformed, matches no region or names a
        metric no image has; regional
        values outside the data dictionary's range for their metric (e.g. FA
        outside 0-1, negative thickness: every such image is listed with its
        subject and session).
    TypeError, ValueError
        For a wrong argument.

    Warns
    -----
    DataWarning
        Sessions without an acquisition date; regions without usable voxels (naming
        the first image, its subject and session, and whether all its voxels there
        were NaN).

    See Also
    --------
    read_freesurfer_stats : The same feature naming from FreeSurfer ``.stats`` files.
    combat : Harmonise the features across sites.

    Examples
    --------
    >>> import tempfile
    >>> from alsprog.simulate import simulate_cohort, write_nifti
    >>> cohort = simulate_cohort(1, 0, months=6, seed=3)
    >>> root = write_nifti(cohort, tempfile.mkdtemp(), shape=(20, 24, 20), seed=3,
    ...                    n_jobs=1, progress=False)
    >>> features, qc = extract_roi_features(root, root / "atlas" /
    ...     "atlas-alsprogsim_dseg.nii.gz", progress=False)
    >>> features[["session", "fa_cst_left"]].round(4).equals(
    ...     cohort.imaging[["session", "fa_cst_left"]].round(4))
    True
    >>> first = qc.iloc[0]
    >>> first["metric"], first["region"], int(first["n_voxels"]), float(first["coverage"])
    ('fa', 'cst_left', 14, 1.0)
    """

    t0 = time.perf_counter()
    stat_names: tuple[str, ...] = (stats,) if isinstance(stats, str) else tuple(stats)
    if not stat_names:
        raise ValueError(f"`stats` must name at least one of {STATISTICS}; got ().")
    for s in stat_names:
        check_choice(s, "stats", STATISTICS)
    if len(set(stat_names)) != len(stat_names):
        raise ValueError(f"`stats` must not repeat a statistic; got {stat_names!r}.")
    check_choice(nan_policy, "nan_policy", ("ignore", "raise"))
    if resample is not None:
        check_choice(resample, "resample", ("nearest", "linear", None))
    trim = float(check_interval(trim, "trim", low=0.0, high=0.5, high_closed=False))
    if n_jobs is not None:
        n_jobs = check_int(n_jobs, "n_jobs")
        if n_jobs == 0:
            raise ValueError("`n_jobs` must be a non-zero integer or None; got 0.")
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", low=1)
    if metrics is not None and isinstance(metrics, str):
        metrics = [metrics]

    manifest = images_manifest(images, metrics=metrics)
    prepared = prepare_atlas(atlas, labels, mask, metrics_by_region)
    found = sorted(set(manifest["metric"]))
    for key, listed in metrics_by_region_mapping(metrics_by_region).items():
        unknown = [m for m in listed if m not in found]
        if unknown:
            raise ImagingError(
                f"metrics_by_region[{key!r}] names metric {unknown[0]!r}, but the "
                f"images hold the metrics {', '.join(found)}"
            )
    task = _Task(stat_names, trim, nan_policy, resample)
    n = len(manifest)
    results = map_image_batches(
        _extract_chunk,
        manifest["path"].tolist(),
        prepared,
        task,
        n_jobs=n_jobs,
        batch_size=batch_size,
        progress=progress,
        desc="ROI features",
    )
    _check_ranges(manifest, results, prepared, stat_names)
    features = _features_table(manifest, results, prepared, stat_names)
    qc = _qc_table(manifest, results, prepared)
    n_empty = int((qc["status"] == "empty").sum())
    if n_empty:
        first = qc[qc["status"] == "empty"].iloc[0]
        why = (
            f"all {int(first['n_nan'])} of its voxels are NaN/inf"
            if first["n_nan"] > 0 and first["n_nan"] == first["n_voxels"]
            else "no voxel left after the mask and field of view"
        )
        warnings.warn(
            f"{n_empty} image × region pairs had no usable voxel (first: "
            f"{first['path']} (subject {first['subject_id']}, session "
            f"{first['session']}), region {first['region']!r}: {why}); their "
            "features are NaN (see qc)",
            DataWarning,
            stacklevel=2,
        )
    logger.info(
        "extracted %d regions from %d images (%d sessions) in %.1f s",
        prepared.n_regions,
        n,
        len(features),
        time.perf_counter() - t0,
    )
    return RoiFeatures(features, qc)


def _check_ranges(
    manifest: pd.DataFrame, results: list[Any], atlas: Atlas, stats: tuple[str, ...]
) -> None:
    """Refuse regional values outside the data dictionary's range for their metric.

    Each problem names the image file, its subject and session, the features and
    their values, so a map on the wrong scale (FA x 1000, thickness in µm) is found
    where it came from rather than as a row of the feature table later.
    """
    from alsprog.data._dictionary import load_dictionary

    dd = load_dictionary()
    metric = manifest["metric"].to_numpy()
    bad_images: dict[int, list[str]] = {}
    for m in sorted(set(metric)):
        rows = np.flatnonzero(metric == m)
        lo = np.full((len(stats), atlas.n_regions), -np.inf)
        hi = np.full((len(stats), atlas.n_regions), np.inf)
        names = np.empty((len(stats), atlas.n_regions), dtype=object)
        allowed = np.empty((len(stats), atlas.n_regions), dtype=object)
        for j, stat in enumerate(stats):
            suffix = "" if stat == "mean" else f"_{stat}"
            for r, region in enumerate(atlas.regions):
                names[j, r] = f"{m}_{region}{suffix}"
                f = dd.field_for(names[j, r])
                allowed[j, r] = "a finite number"
                if f is not None and f.level == "imaging":
                    lo[j, r] = -np.inf if f.minimum is None else f.minimum
                    hi[j, r] = np.inf if f.maximum is None else f.maximum
                    allowed[j, r] = f.range_text()
        values = np.stack([results[i][0] for i in rows])  # (n, stats, regions)
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(values) & (
                ~np.isfinite(values) | (values < lo) | (values > hi)
            )
        bad &= atlas.measures(m)[None, None, :]  # regions the metric belongs to
        for t, j, r in zip(*np.nonzero(bad), strict=True):
            bad_images.setdefault(int(rows[t]), []).append(
                f"{names[j, r]} = {values[t, j, r]:.6g} (allowed {allowed[j, r]})"
            )
    if not bad_images:
        return
    lines = []
    for i in sorted(bad_images)[:20]:
        row = manifest.iloc[i]
        found = bad_images[i]
        more = f", ... ({len(found)} in all)" if len(found) > 3 else ""
        lines.append(
            f"  {row['path']} (subject {row['subject_id']}, session "
            f"{row['session']}): {', '.join(found[:3])}{more}"
        )
    if len(bad_images) > 20:
        lines.append(f"  ... and {len(bad_images) - 20} more images")
    raise ImagingError(
        f"{len(bad_images)} image(s) give regional values outside the data "
        "dictionary's range; check the scaling or units of these maps (e.g. FA "
        "stored x 1000, thickness in µm) or the metric in their file names:\n"
        + "\n".join(lines)
    )


def _backend_configured() -> bool:
    """Whether a joblib backend other than the default (loky) is configured."""
    try:
        from joblib.parallel import get_active_backend

        backend, _ = get_active_backend()
        return type(backend).__name__ not in ("LokyBackend", "SequentialBackend")
    except Exception:  # pragma: no cover - private joblib API moved
        return False


def _features_table(
    manifest: pd.DataFrame, results: list[Any], atlas: Atlas, stats: tuple[str, ...]
) -> pd.DataFrame:
    # a session's date: the first of its images that has one (an undated FA must
    # not hide the date of its MD)
    sessions = (
        manifest[["subject_id", "session"]]
        .assign(acquisition_date=pd.to_datetime(manifest["acquisition_date"]))
        .groupby(["subject_id", "session"], sort=True, as_index=False)
        .first()
    )
    key = pd.MultiIndex.from_frame(sessions[["subject_id", "session"]])
    row_of = key.get_indexer(
        pd.MultiIndex.from_frame(manifest[["subject_id", "session"]])
    )
    columns: dict[str, Any] = {
        "subject_id": sessions["subject_id"].astype("str"),
        "session": sessions["session"].astype("str"),
        "acquisition_date": pd.to_datetime(sessions["acquisition_date"]),
    }
    metric = manifest["metric"].to_numpy()
    for m in sorted(set(metric)):
        rows = np.flatnonzero(metric == m)
        block = np.full((len(sessions), len(stats), atlas.n_regions), np.nan)
        block[row_of[rows]] = np.stack([results[i][0] for i in rows])
        measured = atlas.measures(m)
        for r, region in enumerate(atlas.regions):
            if not measured[r]:
                continue
            for j, stat in enumerate(stats):
                suffix = "" if stat == "mean" else f"_{stat}"
                columns[f"{m}_{region}{suffix}"] = block[:, j, r]
    return pd.DataFrame(columns)


def _qc_table(manifest: pd.DataFrame, results: list[Any], atlas: Atlas) -> pd.DataFrame:
    n, k = len(manifest), atlas.n_regions
    rep = np.repeat(np.arange(n), k)
    used = np.concatenate([r[1] for r in results]) if n else np.zeros(0, np.int64)
    n_nan = np.concatenate([r[2] for r in results]) if n else np.zeros(0, np.int64)
    n_out = np.concatenate([r[3] for r in results]) if n else np.zeros(0, np.int64)
    n_vox = np.tile(atlas.n_voxels, n)
    qc = pd.DataFrame(
        {
            "subject_id": manifest["subject_id"].to_numpy()[rep],
            "session": manifest["session"].to_numpy()[rep],
            "metric": manifest["metric"].to_numpy()[rep],
            "region": np.tile(np.asarray(atlas.regions, dtype=object), n),
            "label": np.tile(atlas.labels, n),
            "n_voxels": n_vox,
            "n_outside_mask": np.tile(atlas.n_outside_mask, n),
            "n_outside_fov": n_out,
            "n_nan": n_nan,
            "n_used": used,
            "coverage": used / n_vox,
            "status": np.where(used > 0, "ok", "empty").astype(object),
            "path": manifest["path"].to_numpy()[rep],
        }
    )
    if atlas.absent and n:
        a = len(atlas.absent)
        rep_a = np.repeat(np.arange(n), a)
        zeros = np.zeros(n * a, dtype=np.int64)
        absent = pd.DataFrame(
            {
                "subject_id": manifest["subject_id"].to_numpy()[rep_a],
                "session": manifest["session"].to_numpy()[rep_a],
                "metric": manifest["metric"].to_numpy()[rep_a],
                "region": np.tile(np.asarray([x[1] for x in atlas.absent], object), n),
                "label": np.tile(np.asarray([x[0] for x in atlas.absent]), n),
                "n_voxels": zeros,
                "n_outside_mask": zeros,
                "n_outside_fov": zeros,
                "n_nan": zeros,
                "n_used": zeros,
                "coverage": np.full(n * a, np.nan),
                "status": "absent_from_atlas",
                "path": manifest["path"].to_numpy()[rep_a],
            }
        )
        qc = pd.concat([qc, absent], ignore_index=True)
    if atlas.metrics:
        keep = np.ones(len(qc), dtype=bool)
        for m in pd.unique(qc["metric"]):
            measured = set(np.asarray(atlas.regions)[atlas.measures(str(m))])
            rows = (qc["metric"] == m).to_numpy()
            keep[rows] = (
                qc.loc[rows, "region"].isin(measured).to_numpy()
                | (qc.loc[rows, "status"] == "absent_from_atlas").to_numpy()
            )
        qc = qc.loc[keep].reset_index(drop=True)
    return qc[QC_COLUMNS]
