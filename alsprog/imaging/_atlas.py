"""Label atlases and their lookup tables, prepared once for fast ROI statistics.

Owns: :func:`region_name` (the feature-name spelling of a region), reading lookup
tables (BIDS ``dseg.tsv``, FreeSurfer colour LUT, DataFrame or mapping; a ``metrics``
column says which metrics belong to each region), :func:`metrics_by_region_mapping`
(the ``metrics_by_region`` argument, also as ``REGION=METRIC,...`` text) and
:class:`Atlas` (the atlas's ROI voxels sorted by region, so every image is reduced
with one gather and a few ``numpy.bincount`` calls).
Leaves: reading volumes to :mod:`alsprog.imaging._nifti`, the statistics to
:mod:`alsprog.imaging._extract`.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import ImagingError
from alsprog.imaging._files import read_text
from alsprog.imaging._nifti import as_volume

__all__ = [
    "Atlas",
    "metrics_by_region_mapping",
    "prepare_atlas",
    "read_lookup",
    "region_name",
    "same_grid",
]

#: Largest difference between two affines (mm) still counted as the same grid.
AFFINE_TOL_MM = 1e-3


def region_name(text: Any) -> str:
    """A region or metric name as used in feature columns.

    Lower case; every run of characters other than ``a-z`` and ``0-9`` becomes one
    ``_``; leading and trailing ``_`` are dropped.

    Examples
    --------
    >>> region_name("Left-Hippocampus")
    'left_hippocampus'
    >>> region_name("ctx-lh-precentral")
    'ctx_lh_precentral'
    """
    return re.sub(r"[^a-z0-9]+", "_", str(text).strip().lower()).strip("_")


def _atlas_sidecar(atlas: Any) -> Path | None:
    if not isinstance(atlas, str | os.PathLike):
        return None
    p = Path(atlas)
    stem = p.name
    for ext in (".nii.gz", ".nii"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return p.with_name(stem + ".tsv")


_METRIC_SPLIT = re.compile(r"[\s,;]+")
_METRIC_NAME = re.compile(r"[a-z0-9]+")


def _metric_list(text: Any, where: str) -> tuple[str, ...] | None:
    """``"fa md"`` / ``"fa,md"`` -> ``("fa", "md")``; empty -> ``None`` (all)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    words = [w for w in _METRIC_SPLIT.split(str(text).strip().lower()) if w]
    if not words:
        return None
    bad = [w for w in words if not _METRIC_NAME.fullmatch(w)]
    if bad:
        raise ImagingError(
            f"{where}: metric {bad[0]!r} is not a metric name (lower-case letters and "
            "digits, as in fa, md, thickness; separate several by spaces or commas)"
        )
    return tuple(dict.fromkeys(words))


def _lookup_from_frame(
    df: pd.DataFrame, source: str
) -> tuple[dict[int, str], dict[int, tuple[str, ...]]]:
    cols = {str(c).strip().lower(): c for c in df.columns}
    if "index" not in cols or "name" not in cols:
        raise ImagingError(
            f"{source}: lookup table needs columns 'index' and 'name'; found "
            f"{[str(c) for c in df.columns]}"
        )
    out: dict[int, str] = {}
    metrics: dict[int, tuple[str, ...]] = {}
    mcol = df[cols["metrics"]] if "metrics" in cols else None
    for line, (idx, name) in enumerate(
        zip(df[cols["index"]], df[cols["name"]], strict=True), start=2
    ):
        try:
            value = float(idx)
        except (TypeError, ValueError):
            value = float("nan")
        if not np.isfinite(value) or value != int(value):
            raise ImagingError(
                f"{source}: line {line}: index {idx!r} is not a whole number"
            )
        out[int(value)] = str(name)
        if mcol is not None:
            m = _metric_list(
                mcol.iloc[line - 2], f"{source}: line {line}, column metrics"
            )
            if m is not None:
                metrics[int(value)] = m
    return out, metrics


def _read_freesurfer_lut(path: Path, text: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) < 2 or not parts[0].lstrip("-").isdigit():
            raise ImagingError(
                f"{path}: line {line_no}: {line.strip()!r} is not '<index> <name> R G B A'"
            )
        out[int(parts[0])] = parts[1]
    return out


def read_lookup(labels: Any, atlas: Any = None) -> tuple[dict[int, str], str]:
    """Label -> region name (as given) and a description of where it came from.

    ``labels`` is ``None`` (the ``.tsv`` beside ``atlas``), a path to a BIDS
    ``index``/``name`` TSV or a FreeSurfer colour LUT, a DataFrame with ``index`` and
    ``name`` columns, or a mapping ``{label: name}``.
    """
    names, _, source = _read_lookup(labels, atlas)
    return names, source


def _read_lookup(
    labels: Any, atlas: Any = None
) -> tuple[dict[int, str], dict[int, tuple[str, ...]], str]:
    """As :func:`read_lookup`, with the ``metrics`` column of a table: label -> the
    metrics measured in that region (labels with an empty cell are left out: all)."""
    if labels is None:
        sidecar = _atlas_sidecar(atlas)
        if sidecar is None:
            raise ImagingError(
                "atlas given in memory: pass `labels` (a lookup table: TSV with "
                "index/name, FreeSurfer LUT, DataFrame or mapping)"
            )
        if not sidecar.exists() and not sidecar.is_symlink():
            raise ImagingError(
                f"{atlas}: no lookup table given and {sidecar} does not exist; pass "
                "`labels` (TSV with index/name, FreeSurfer LUT, DataFrame or mapping)"
            )
        labels = sidecar
    if isinstance(labels, pd.DataFrame):
        return (*_lookup_from_frame(labels, "labels table"), "labels table")
    if isinstance(labels, Mapping):
        try:
            return {int(k): str(v) for k, v in labels.items()}, {}, "labels mapping"
        except (TypeError, ValueError) as exc:
            raise ImagingError(
                f"labels mapping: keys must be integers ({exc})"
            ) from exc
    if not isinstance(labels, str | os.PathLike):
        raise TypeError(
            "`labels` must be None, a path, a DataFrame or a mapping; got "
            f"{type(labels).__name__}."
        )
    path = Path(labels)
    text = read_text(path, "lookup table")
    head = text.lstrip()
    first = head.splitlines()[0] if head else ""
    if "\t" in first and not first.startswith("#"):
        try:
            df = pd.read_csv(
                io.StringIO(text), sep="\t", dtype=str, keep_default_na=False
            )
        except Exception as exc:  # pandas raises many parser error types
            raise ImagingError(f"{path}: cannot be read as TSV ({exc})") from exc
        if {"index", "name"} <= {c.strip().lower() for c in df.columns}:
            return (*_lookup_from_frame(df, str(path)), str(path))
    return _read_freesurfer_lut(path, text), {}, str(path)


def metrics_by_region_mapping(spec: Any) -> dict[str, tuple[str, ...]]:
    """The ``metrics_by_region`` argument as ``{region pattern: metrics}``.

    Parameters
    ----------
    spec : mapping, sequence of str or None
        ``{"cst_*": ["fa", "md"], "precentral_left": "thickness"}``, or the same as
        text, one ``REGION=METRIC[,METRIC...]`` per entry (as the command line's
        ``--metrics-by-region`` and the config's ``[imaging] metrics_by_region``
        take it).  Regions are feature spellings (``cst_left``) or shell patterns
        (``cst_*``); metrics are map names (``fa``, ``md``, ``thickness``).

    Returns
    -------
    dict of str to tuple of str
        Lower-cased; ``{}`` for ``None``.

    Raises
    ------
    ImagingError
        A malformed entry, an empty metric list, a region given twice.

    Examples
    --------
    >>> metrics_by_region_mapping(["cst_*=fa,md", "precentral_*=thickness"])
    {'cst_*': ('fa', 'md'), 'precentral_*': ('thickness',)}
    """
    if spec is None:
        return {}
    items: list[tuple[Any, Any]]
    if isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, str) or not isinstance(spec, Sequence):
        raise ImagingError(
            "metrics_by_region must be a mapping {region: metrics} or a list of "
            f"'REGION=METRIC,METRIC' entries; got {spec!r}"
        )
    else:
        items = []
        for entry in spec:
            region, sep, metrics = str(entry).partition("=")
            if not sep or not region.strip():
                raise ImagingError(
                    f"metrics_by_region: {entry!r} is not REGION=METRIC[,METRIC...] "
                    "(e.g. 'cst_*=fa,md')"
                )
            items.append((region, metrics))
    out: dict[str, tuple[str, ...]] = {}
    for region, metrics in items:
        key = str(region).strip().lower()
        where = f"metrics_by_region[{key!r}]"
        if not key:
            raise ImagingError(f"metrics_by_region: a region name is empty ({spec!r})")
        if key in out:
            raise ImagingError(f"{where}: the region is given twice")
        if not isinstance(metrics, str) and isinstance(metrics, Sequence):
            metrics = " ".join(map(str, metrics))
        listed = _metric_list(metrics, where)
        if listed is None:
            raise ImagingError(
                f"{where}: no metric given; name the metrics measured in that region "
                "(e.g. fa,md)"
            )
        out[key] = listed
    return out


def _region_metrics(
    regions: Sequence[str],
    from_table: dict[str, tuple[str, ...]],
    mapping: dict[str, tuple[str, ...]],
    source: str,
) -> tuple[tuple[str, ...] | None, ...]:
    """Per region the metrics measured there (None: all); the mapping wins over the
    lookup table's ``metrics`` column, and each of its keys must match a region."""
    out: list[tuple[str, ...] | None] = [from_table.get(r) for r in regions]
    for key, metrics in mapping.items():
        hits = [i for i, r in enumerate(regions) if fnmatch.fnmatchcase(r, key)]
        if not hits:
            raise ImagingError(
                f"metrics_by_region: {key!r} matches no region of the atlas "
                f"({source}: {', '.join(regions)})"
            )
        for i in hits:
            out[i] = metrics
    return tuple(out)


def same_grid(
    shape_a: tuple[int, ...],
    affine_a: npt.NDArray[np.float64],
    shape_b: tuple[int, ...],
    affine_b: npt.NDArray[np.float64],
) -> bool:
    """Same shape and affines within :data:`AFFINE_TOL_MM`."""
    return tuple(shape_a) == tuple(shape_b) and bool(
        np.max(np.abs(affine_a - affine_b)) <= AFFINE_TOL_MM
    )


@dataclass(frozen=True)
class Atlas:
    """An atlas prepared for extraction.

    ``pos`` are flat (Fortran-order) voxel positions of every ROI voxel inside the
    mask, sorted by region; ``idx`` the region index (0..K-1) of each; ``starts`` the
    K+1 segment bounds in ``pos``.  ``n_voxels`` counts each region's voxels in the
    atlas, ``n_outside_mask`` those the mask removed.  ``metrics`` holds, per
    region, the metrics measured there (``None``: every metric).
    """

    name: str
    shape: tuple[int, int, int]
    affine: npt.NDArray[np.float64]
    voxel_volume: float
    labels: npt.NDArray[np.int64]
    regions: tuple[str, ...]
    absent: tuple[tuple[int, str], ...]
    pos: npt.NDArray[np.intp]
    idx: npt.NDArray[np.intp]
    starts: npt.NDArray[np.intp]
    n_voxels: npt.NDArray[np.int64]
    n_outside_mask: npt.NDArray[np.int64]
    metrics: tuple[tuple[str, ...] | None, ...] = ()

    @property
    def n_regions(self) -> int:
        return len(self.regions)

    def measures(self, metric: str) -> npt.NDArray[np.bool_]:
        """Which regions ``metric`` is measured in (all, without a mapping)."""
        if not self.metrics:
            return np.ones(self.n_regions, dtype=bool)
        return np.array([m is None or metric in m for m in self.metrics], dtype=bool)

    def roi_ijk(self) -> npt.NDArray[np.float64]:
        """Voxel coordinates (3, n) of ``pos`` on the atlas grid."""
        return np.vstack(np.unravel_index(self.pos, self.shape, order="F")).astype(
            np.float64
        )


def prepare_atlas(
    atlas: Any,
    labels: Any = None,
    mask: Any = None,
    metrics_by_region: Any = None,
) -> Atlas:
    """Read the atlas, its lookup table and an optional mask; index ROI voxels.

    The metrics of each region come from ``metrics_by_region`` (see
    :func:`metrics_by_region_mapping`), else from the lookup table's ``metrics``
    column, else every metric.
    """
    mapping = metrics_by_region_mapping(metrics_by_region)
    name = str(atlas) if isinstance(atlas, str | os.PathLike) else "atlas image"
    vol = as_volume(atlas, name)
    data = vol.data
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        if not finite.all() or np.any(data != np.round(data)):
            raise ImagingError(
                f"{name}: atlas must hold whole-number labels; found non-integer "
                "values (a probabilistic atlas cannot be used; threshold it first)"
            )
    if data.size and data.min() < 0:
        raise ImagingError(f"{name}: atlas labels must be >= 0; found {data.min()}")
    flat = data.astype(np.int64, copy=False)
    present = np.unique(flat)
    present = present[present != 0]
    if present.size == 0:
        raise ImagingError(f"{name}: atlas has no labelled voxel (all 0)")
    lookup, table_metrics, source = _read_lookup(labels, atlas)
    lookup.pop(0, None)  # 0 is background whatever the table calls it
    missing = [int(v) for v in present if int(v) not in lookup]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (
            " ..." if len(missing) > 20 else ""
        )
        raise ImagingError(
            f"{name}: labels {shown} appear in the atlas but not in the lookup table "
            f"{source}; add them to the table or pass another `labels`"
        )
    names = {lab: region_name(lookup[lab]) for lab in present.tolist()}
    bad = [lookup[lab] for lab, n in names.items() if not n]
    if bad:
        raise ImagingError(f"{source}: region names {bad!r} have no letter or digit")
    seen: dict[str, int] = {}
    for lab, n in names.items():
        if n in seen:
            raise ImagingError(
                f"{source}: labels {seen[n]} and {lab} both become region {n!r}; "
                "rename one"
            )
        seen[n] = lab
    absent = tuple(
        (lab, region_name(n) or str(n))
        for lab, n in sorted(lookup.items())
        if lab not in names
    )
    # compact index per voxel: -1 for background
    if present.max() < 10_000_000:
        table = np.full(int(present.max()) + 1, -1, dtype=np.intp)
        table[present] = np.arange(present.size)
        compact = table[flat]
    else:
        compact = np.where(
            flat == 0, -1, np.searchsorted(present, flat).astype(np.intp)
        )
    in_roi = compact >= 0
    n_voxels = np.bincount(compact[in_roi], minlength=present.size).astype(np.int64)
    keep = in_roi
    if mask is not None:
        mname = str(mask) if isinstance(mask, str | os.PathLike) else "mask image"
        mvol = as_volume(mask, mname)
        if not same_grid(mvol.shape, mvol.affine, vol.shape, vol.affine):
            raise ImagingError(
                f"{mname}: mask grid (shape {mvol.shape}) differs from atlas {name} "
                f"(shape {vol.shape}) or their affines differ by more than "
                f"{AFFINE_TOL_MM} mm"
            )
        mdata = mvol.data
        inside = mdata != 0
        if mdata.dtype.kind == "f":
            inside &= ~np.isnan(mdata)
        keep = in_roi & inside
    pos = np.flatnonzero(keep)
    idx = compact[pos]
    order = np.argsort(idx, kind="stable")
    pos, idx = pos[order], idx[order]
    kept = np.bincount(idx, minlength=present.size)
    starts = np.concatenate([[0], np.cumsum(kept)]).astype(np.intp)
    regions = tuple(names[lab] for lab in present.tolist())
    by_name = {names[lab]: table_metrics[lab] for lab in names if lab in table_metrics}
    return Atlas(
        name=name,
        shape=vol.shape,
        affine=vol.affine,
        voxel_volume=float(abs(np.linalg.det(vol.affine[:3, :3]))),
        labels=present.astype(np.int64),
        regions=regions,
        absent=absent,
        pos=pos.astype(np.intp),
        idx=idx.astype(np.intp),
        starts=starts,
        n_voxels=n_voxels,
        n_outside_mask=(n_voxels - kept).astype(np.int64),
        metrics=_region_metrics(regions, by_name, mapping, source),
    )
