"""PET standardised uptake value ratios per atlas region, with optional GTM
partial-volume correction.

Owns: :func:`extract_suvr` (PET uptake images + label atlas -> ``suvr_<region>``
features and QC, one row per subject × session) and :func:`gtm_matrix` (the
geometric transfer matrix of Rousset et al. 1998 from a region grid and an isotropic
Gaussian PSF).
Leaves: finding images to :mod:`alsprog.imaging._bids`, reading voxels to
:mod:`alsprog.imaging._nifti`, atlases to :mod:`alsprog.imaging._atlas`, the
regional means, the feature and QC tables to :mod:`alsprog.imaging._extract`,
simulated PET to :mod:`alsprog.simulate._pet`.

The GTM depends only on the atlas, the mask and the PSF, so it is built once per
call (one Gaussian filter per region) and every image costs one gather, one
``bincount`` and one small least-squares solve.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._validation import check_choice, check_int, check_interval
from alsprog.errors import DataWarning, ImagingError, ModelSpecificationError
from alsprog.imaging._atlas import (
    AFFINE_TOL_MM,
    Atlas,
    prepare_atlas,
    region_name,
    same_grid,
)
from alsprog.imaging._bids import images_manifest
from alsprog.imaging._extract import (
    RoiFeatures,
    _features_table,
    _qc_table,
    map_image_batches,
    roi_statistics,
)
from alsprog.imaging._nifti import as_volume, read_volume

__all__ = ["extract_suvr", "gtm_matrix"]

logger = logging.getLogger(__name__)

#: FWHM = this factor × Gaussian sigma (2 sqrt(2 ln 2)).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

#: Default largest condition number of the GTM accepted (noise in the observed
#: regional means is amplified by up to this factor).
MAX_CONDITION = 1e3


def _voxel_sizes(affine: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """mm per voxel along each array axis (column norms of the affine)."""
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def gtm_matrix(
    regions: npt.NDArray[np.integer[Any]],
    *,
    psf_fwhm: float,
    voxel_size: Sequence[float],
    measured: npt.NDArray[np.integer[Any]] | None = None,
) -> npt.NDArray[np.float64]:
    """Geometric transfer matrix of a region grid under an isotropic Gaussian PSF.

    ``G[i, j]`` is the mean, over the voxels of region ``i``, of region ``j``'s
    regional spread function ``RSF_j = PSF * 1(region j)``, so observed regional
    means are ``G @ true means`` for a piecewise-constant uptake (Rousset et al.
    1998).  Activity outside the grid and in voxels of no region is taken as zero.

    Parameters
    ----------
    regions : ndarray of int, 3-D
        Region number per voxel: ``1..K``; 0 for voxels in no region.
    psf_fwhm : float
        Full width at half maximum of the PSF in mm, > 0.
    voxel_size : sequence of 3 float
        mm per voxel along each axis (anisotropic voxels allowed); the Gaussian's
        sigma along axis ``a`` is ``psf_fwhm / (2 sqrt(2 ln 2)) / voxel_size[a]``
        voxels.
    measured : ndarray of int, 3-D, optional
        Region number of the voxels each row averages over (e.g. ``regions`` with
        masked voxels set to 0); default ``regions``.

    Returns
    -------
    ndarray, shape (K, K)
        Row ``i``: region ``i + 1`` measured; column ``j``: region ``j + 1`` emitting.

    Raises
    ------
    ModelSpecificationError
        If ``psf_fwhm`` or a voxel size is not a positive number.

    References
    ----------
    Rousset OG, Ma Y, Evans AC. Correction for partial volume effects in PET:
    principle and validation. J Nucl Med 1998;39:904-911.

    Examples
    --------
    >>> regions = np.zeros((6, 6, 6), dtype=int)
    >>> regions[:3], regions[3:] = 1, 2
    >>> gtm_matrix(regions, psf_fwhm=1e-3, voxel_size=(2, 2, 2)).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> g = gtm_matrix(regions, psf_fwhm=4.0, voxel_size=(2, 2, 2))
    >>> bool(g[0, 1] > 0.05 and np.allclose(g, g.T))
    True
    """
    from scipy.ndimage import gaussian_filter

    fwhm = check_interval(
        psf_fwhm, "psf_fwhm", low=0.0, low_closed=False, error=ModelSpecificationError
    )
    sizes = [
        check_interval(
            v, f"voxel_size[{a}]", low=0.0, low_closed=False,
            error=ModelSpecificationError,
        )
        for a, v in enumerate(voxel_size)
    ]  # fmt: skip
    grid = np.asarray(regions)
    if grid.ndim != 3 or len(sizes) != 3:
        raise ModelSpecificationError(
            f"`regions` must be 3-D and `voxel_size` 3 numbers; got shape "
            f"{grid.shape} and {len(sizes)} sizes."
        )
    meas = grid if measured is None else np.asarray(measured)
    k = int(grid.max()) if grid.size else 0
    sigma = [fwhm / FWHM_PER_SIGMA / s for s in sizes]
    flat = meas.ravel()
    rows = flat > 0
    idx = flat[rows] - 1
    counts = np.bincount(idx, minlength=k).astype(np.float64)
    g = np.zeros((k, k))
    for j in range(k):
        rsf = gaussian_filter(
            (grid == j + 1).astype(np.float64), sigma, mode="constant", cval=0.0
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            g[:, j] = np.bincount(idx, weights=rsf.ravel()[rows], minlength=k) / counts
    return g


class _Gtm(NamedTuple):
    """The GTM of one call and the voxels of its background regions."""

    g: npt.NDArray[np.float64]
    names: tuple[str, ...]  # atlas regions, then background regions
    background: tuple[npt.NDArray[np.intp], ...]  # flat positions per background


def _build_gtm(
    atlas: Atlas,
    full: Atlas,
    brain: npt.NDArray[np.bool_] | None,
    fwhm: float,
    max_condition: float,
) -> _Gtm:
    """The GTM over the atlas regions plus the background region(s)."""
    n = math.prod(atlas.shape)
    tissue = np.zeros(n, dtype=np.int64)  # full ROIs emit
    tissue[full.pos] = full.idx + 1
    measured = np.zeros(n, dtype=np.int64)  # masked ROIs are averaged
    measured[atlas.pos] = atlas.idx + 1
    k = atlas.n_regions
    outside = tissue == 0
    parts: list[tuple[str, npt.NDArray[np.bool_]]] = []
    if brain is None:
        parts.append(("rest_of_field_of_view", outside))
    else:
        parts.append(("rest_of_brain", outside & brain))
        parts.append(("outside_brain", outside & ~brain))
    names = list(atlas.regions)
    background: list[npt.NDArray[np.intp]] = []
    for name, sel in parts:
        if sel.any():
            label = k + 1 + len(background)
            tissue[sel] = label
            measured[sel] = label
            names.append(name)
            background.append(np.flatnonzero(sel))
    shape3 = atlas.shape
    g = gtm_matrix(
        tissue.reshape(shape3, order="F"),
        psf_fwhm=fwhm,
        voxel_size=tuple(_voxel_sizes(atlas.affine)),
        measured=measured.reshape(shape3, order="F"),
    )
    s = np.linalg.svd(g, compute_uv=False)
    cond = float(s[0] / s[-1]) if s[-1] > 0 else math.inf
    if not cond <= max_condition:
        _, _, vt = np.linalg.svd(g)
        v = np.abs(vt[-1])
        involved = [names[i] for i in np.argsort(-v) if v[i] >= 0.25 * v.max()]
        raise ImagingError(
            f"{atlas.name}: the geometric transfer matrix at psf_fwhm={fwhm:g} mm is "
            f"ill-conditioned (condition number {cond:.3g} > max_condition="
            f"{max_condition:g}); regions {', '.join(map(repr, involved))} cannot be "
            "told apart at this resolution: merge them, use fewer, larger regions or "
            "leave pvc=None"
        )
    logger.debug("GTM of %d regions, condition number %.3g", len(names), cond)
    return _Gtm(g, tuple(names), tuple(background))


class _Task(NamedTuple):
    nan_policy: str
    gtm: _Gtm | None


def _pet_image(path: str, atlas: Atlas, task: _Task) -> tuple[Any, ...]:
    vol = read_volume(path)
    if not same_grid(vol.shape, vol.affine, atlas.shape, atlas.affine):
        if vol.shape != atlas.shape:
            what = f"shape {vol.shape} differs from atlas {atlas.name} {atlas.shape}"
        else:
            diff = float(np.max(np.abs(vol.affine - atlas.affine)))
            what = (
                f"affine differs from atlas {atlas.name} by up to {diff:.3g} mm "
                f"(> {AFFINE_TOL_MM} mm)"
            )
        raise ImagingError(
            f"{path}: {what}; PET images must be on the atlas grid (register and "
            "resample the PET image, or the atlas, to the other's space first)"
        )
    values = vol.data[atlas.pos]
    stats, used, n_nan = roi_statistics(values, atlas.idx, atlas.starts)
    if task.nan_policy == "raise" and n_nan.any():
        r = int(np.flatnonzero(n_nan)[0])
        raise ImagingError(
            f"{path}: {int(n_nan.sum())} NaN/inf voxels inside regions (first: "
            f"{n_nan[r]} in {atlas.regions[r]!r}, label {atlas.labels[r]}); pass "
            "nan_policy='ignore' to leave them out"
        )
    observed = stats[0]
    corrected = None
    if task.gtm is not None:
        bg = [vol.data[p].astype(np.float64) for p in task.gtm.background]
        t_obs = np.concatenate(
            [observed, [float(np.mean(b[np.isfinite(b)])) for b in bg]]
        )
        if not np.isfinite(t_obs).all():
            r = int(np.flatnonzero(~np.isfinite(t_obs))[0])
            raise ImagingError(
                f"{path}: region {task.gtm.names[r]!r} has no finite voxel, so the "
                "GTM correction cannot be solved; fix the image or pass pvc=None"
            )
        corrected = np.linalg.lstsq(task.gtm.g, t_obs, rcond=None)[0][: atlas.n_regions]
    zeros = np.zeros(atlas.n_regions, dtype=np.int64)
    return observed, corrected, used, n_nan, zeros


def _where(manifest: pd.DataFrame, i: int) -> str:
    """``path (subject S, session X)`` of manifest row ``i``."""
    row = manifest.iloc[int(i)]
    return f"{row['path']} (subject {row['subject_id']}, session {row['session']})"


def _chunk(paths: list[str], atlas: Atlas, task: _Task) -> list[Any]:
    return [_pet_image(p, atlas, task) for p in paths]


def extract_suvr(
    source: Any,
    atlas: Any,
    *,
    labels: Any = None,
    reference_region: str = "cerebellum_grey",
    pvc: Literal["gtm"] | None = None,
    psf_fwhm: float | None = None,
    metric: str = "pet",
    mask: Any = None,
    brain_mask: Any = None,
    max_condition: float = MAX_CONDITION,
    nan_policy: Literal["ignore", "raise"] = "ignore",
    n_jobs: int | None = 1,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> RoiFeatures:
    """Standardised uptake value ratios of every atlas region, per subject × session.

    ``suvr_<region> = mean uptake in the region / mean uptake in the reference
    region``, from the voxel means or, with ``pvc="gtm"``, from the regional means
    corrected for partial volume by the geometric transfer matrix.

    Parameters
    ----------
    source : str, path-like or pandas.DataFrame
        A BIDS-derivatives folder or a manifest, as for
        :func:`extract_roi_features`; the PET uptake images are those whose metric
        (BIDS suffix) is ``metric`` (``sub-01_ses-m00_..._pet.nii.gz``).  Any
        uptake unit (Bq/mL, SUV): it cancels in the ratio.
    atlas : str, path-like or nibabel image
        3-D label volume on the PET images' grid (0 = background).
    labels : str, path-like, pandas.DataFrame, mapping or None
        Lookup table, as for :func:`extract_roi_features`; a ``metrics`` column is
        ignored (SUVR is computed in every region).
    reference_region : str, default "cerebellum_grey"
        Region (feature spelling, see :func:`region_name`) whose mean uptake is the
        denominator; it gets no feature of its own (its SUVR is 1).
    pvc : {"gtm"} or None, default None
        ``"gtm"``: geometric-transfer-matrix partial-volume correction (Rousset et
        al. 1998) with an isotropic Gaussian PSF of ``psf_fwhm`` mm.
    psf_fwhm : float, optional
        Scanner PSF full width at half maximum, mm, > 0; needed for ``pvc="gtm"``.
        Voxel sizes (anisotropic allowed) come from the atlas affine.
    metric : str, default "pet"
        Metric (BIDS suffix) of the uptake images.
    mask : str, path-like, nibabel image or None
        Optional mask on the atlas grid: region voxels where it is 0 or NaN are not
        averaged (for GTM they still emit).
    brain_mask : str, path-like, nibabel image or None
        GTM only.  Voxels in no atlas region form background regions whose uptake
        is estimated with the others: with a brain mask, ``rest_of_brain`` (inside
        it) and ``outside_brain`` (outside it); without, one
        ``rest_of_field_of_view`` region.  GTM assumes uniform uptake in each
        region, so give a brain mask when the atlas does not cover the brain.
    max_condition : float, default 1e3
        Largest accepted condition number of the GTM.
    nan_policy : {"ignore", "raise"}, default "ignore"
        NaN/inf voxels inside a region: left out (counted in ``qc.n_nan``) or an
        :class:`ImagingError`.
    n_jobs, batch_size, progress
        As for :func:`extract_roi_features`.

    Returns
    -------
    RoiFeatures
        ``(features, qc)``.  ``features``: ``subject_id``, ``session``,
        ``acquisition_date`` and ``suvr_<region>`` for every region but the
        reference, in label order.  ``qc``: as for :func:`extract_roi_features`
        (``metric`` is the images' metric), plus ``uptake`` (observed regional
        mean), ``uptake_pvc`` (GTM-corrected mean, NaN without ``pvc``) and
        ``suvr``; a negative corrected mean gives a NaN feature and status
        ``"pvc_negative"``.

    Raises
    ------
    ImagingError
        Naming the file or atlas: the reference region not in the atlas, or without
        voxels inside ``mask``; reference uptake that is not positive (every such
        image listed with its subject and session); an image whose shape or affine
        differs from the atlas; a negative regional mean uptake (without
        ``pvc``); an ill-conditioned GTM (naming the regions that
        cannot be told apart); a region without finite voxels under GTM; and every
        error of :func:`extract_roi_features` about files, atlases and manifests.
    ModelSpecificationError
        ``pvc="gtm"`` without ``psf_fwhm``, or ``psf_fwhm`` <= 0.
    TypeError, ValueError
        For another wrong argument.

    Warns
    -----
    DataWarning
        Regions without usable voxels; negative GTM-corrected uptake.

    Notes
    -----
    With ``pvc="gtm"`` the regional spread function of every region (atlas regions
    and the background regions) is the Gaussian-blurred indicator of that region
    (``scipy.ndimage.gaussian_filter``, sigma ``psf_fwhm / (2 sqrt(2 ln 2))`` mm
    over each axis's voxel size, zero activity beyond the field of view); ``G[i, j]``
    is its mean over region ``i``; the observed regional means ``t_obs`` give the
    true means by least squares, ``G t = t_obs``.  Uptake is assumed uniform within
    each region.  In ALS, FDG uptake in the cerebellum may itself be relatively
    raised (Buhour et al. 2017, EJNMMI Res 7:21), which lowers every SUVR with the
    cerebellar reference; pass another ``reference_region`` if that matters.

    References
    ----------
    Rousset OG, Ma Y, Evans AC. Correction for partial volume effects in PET:
    principle and validation. J Nucl Med 1998;39:904-911.

    See Also
    --------
    extract_roi_features : Regional statistics of MRI maps, same layout.

    Examples
    --------
    >>> import tempfile
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.simulate import simulate_suvr, write_pet
    >>> cohort = simulate_cohort(1, 0, months=0, seed=3)
    >>> truth = simulate_suvr(cohort, seed=3)
    >>> root = write_pet(cohort, tempfile.mkdtemp(), suvr=truth, shape=(16, 16, 16),
    ...                  psf_fwhm=1e-3, noise_sd=0.0, seed=3, progress=False)
    >>> features, qc = extract_suvr(root, root / "atlas" /
    ...     "atlas-alsprogsimpet_dseg.nii.gz", progress=False)
    >>> bool(np.allclose(features["suvr_precentral_left"],
    ...                  truth["suvr_precentral_left"], rtol=1e-6))
    True
    """

    t0 = time.perf_counter()
    if pvc is not None:
        check_choice(pvc, "pvc", ("gtm", None), error=ModelSpecificationError)
        if psf_fwhm is None:
            raise ModelSpecificationError(
                "pvc='gtm' needs `psf_fwhm`, the scanner PSF's full width at half "
                "maximum in mm (e.g. psf_fwhm=6.0)"
            )
    fwhm = None
    if psf_fwhm is not None:
        fwhm = float(
            check_interval(
                psf_fwhm, "psf_fwhm", low=0.0, low_closed=False,
                error=ModelSpecificationError,
            )
        )  # fmt: skip
    check_choice(nan_policy, "nan_policy", ("ignore", "raise"))
    max_condition = float(
        check_interval(max_condition, "max_condition", low=1.0, low_closed=True)
    )
    if n_jobs is not None:
        n_jobs = check_int(n_jobs, "n_jobs")
        if n_jobs == 0:
            raise ValueError("`n_jobs` must be a non-zero integer or None; got 0.")
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", low=1)
    metric = region_name(metric)
    ref_name = region_name(reference_region)

    manifest = images_manifest(source, metrics=[metric])
    manifest = manifest[manifest["metric"] == metric].reset_index(drop=True)
    if manifest.empty:
        raise ImagingError(f"{source}: no images of metric {metric!r} (PET uptake)")
    prepared = dataclasses.replace(prepare_atlas(atlas, labels, mask), metrics=())
    if ref_name not in prepared.regions:
        raise ImagingError(
            f"{prepared.name}: reference region {ref_name!r} is not in the atlas "
            f"(regions: {', '.join(prepared.regions)}); pass one of them as "
            "reference_region"
        )
    ref = prepared.regions.index(ref_name)
    if prepared.starts[ref + 1] == prepared.starts[ref]:
        raise ImagingError(
            f"{prepared.name}: reference region {ref_name!r} has no voxel inside "
            "the mask, so it cannot be the reference; check the mask or pass another "
            "reference_region"
        )
    gtm = None
    if pvc == "gtm":
        assert fwhm is not None
        empty = [
            r
            for i, r in enumerate(prepared.regions)
            if prepared.starts[i + 1] == prepared.starts[i]
        ]
        if empty:
            raise ImagingError(
                f"{prepared.name}: regions {empty!r} have no voxel inside the mask; "
                "GTM needs a measured mean in every region"
            )
        full = prepared if mask is None else prepare_atlas(atlas, labels)
        brain = None
        if brain_mask is not None:
            bname = (
                str(brain_mask)
                if isinstance(brain_mask, str | os.PathLike)
                else "brain mask"
            )
            bvol = as_volume(brain_mask, bname)
            if not same_grid(bvol.shape, bvol.affine, prepared.shape, prepared.affine):
                raise ImagingError(
                    f"{bname}: brain mask grid (shape {bvol.shape}) differs from atlas "
                    f"{prepared.name} (shape {prepared.shape}) or their affines "
                    f"differ by more than {AFFINE_TOL_MM} mm"
                )
            bdata = bvol.data
            brain = np.asarray(bdata != 0)
            if bdata.dtype.kind == "f":
                brain &= ~np.isnan(bdata)
        gtm = _build_gtm(prepared, full, brain, fwhm, max_condition)
    task = _Task(nan_policy, gtm)

    n = len(manifest)
    results = map_image_batches(
        _chunk,
        manifest["path"].tolist(),
        prepared,
        task,
        n_jobs=n_jobs,
        batch_size=batch_size,
        progress=progress,
        desc="SUVR",
    )

    k = prepared.n_regions
    observed = np.stack([r[0] for r in results])  # (n, k)
    corrected = np.stack([r[1] for r in results]) if gtm is not None else None
    uptake = observed if corrected is None else corrected
    ref_uptake = uptake[:, ref]
    bad = np.flatnonzero(~(ref_uptake > 0))
    if bad.size:
        what = "GTM-corrected " if corrected is not None else ""
        lines = [f"  {_where(manifest, i)}: {ref_uptake[i]:.6g}" for i in bad[:20]]
        if bad.size > 20:
            lines.append(f"  ... and {bad.size - 20} more images")
        raise ImagingError(
            f"{bad.size} image(s) have {what}mean uptake <= 0 or NaN in the reference "
            f"region {ref_name!r}, so no ratio can be formed (expected a positive "
            "uptake; check the image's scaling and registration):\n" + "\n".join(lines)
        )
    suvr = uptake / ref_uptake[:, None]
    if corrected is None and (suvr < 0).any():
        rows, cols = np.nonzero(suvr < 0)
        raise ImagingError(
            f"{len(set(rows.tolist()))} image(s) have a negative mean uptake in a "
            f"region (first: {_where(manifest, int(rows[0]))}, region "
            f"{prepared.regions[int(cols[0])]!r}: {observed[rows[0], cols[0]]:.6g}); "
            "uptake images must be >= 0 (check the image's scaling)"
        )
    negative = np.zeros_like(suvr, dtype=bool)
    if corrected is not None:
        negative = corrected < 0
        if negative.any():
            i, r = (int(v[0]) for v in np.nonzero(negative))
            warnings.warn(
                f"{int(negative.sum())} GTM-corrected regional means are negative "
                f"(first: {_where(manifest, i)}, region {prepared.regions[r]!r}: "
                f"{corrected[i, r]:.4g}); their "
                "SUVR is NaN (status 'pvc_negative' in qc): the region is too small "
                "or noisy for this PSF",
                DataWarning,
                stacklevel=2,
            )
            suvr = np.where(negative, np.nan, suvr)
    keep = [r for r in range(k) if r != ref]
    reduced = dataclasses.replace(
        prepared,
        regions=tuple(prepared.regions[r] for r in keep),
        labels=prepared.labels[keep],
    )
    feats = _features_table(
        manifest.assign(metric="suvr"),
        [(row[None, keep],) for row in suvr],
        reduced,
        ("mean",),
    )
    qc = _qc_table(manifest, [(None, *r[2:]) for r in results], prepared)
    nk = n * k
    extra = {
        "uptake": observed.ravel(),
        "uptake_pvc": np.full(nk, np.nan) if corrected is None else corrected.ravel(),
        "suvr": suvr.ravel(),
    }
    for col, vals in extra.items():
        qc[col] = np.concatenate([vals, np.full(len(qc) - nk, np.nan)])
    qc.loc[np.flatnonzero(negative.ravel()), "status"] = "pvc_negative"
    is_empty = qc["status"] == "empty"
    if is_empty.any():
        first = qc[is_empty].iloc[0]
        warnings.warn(
            f"{int(is_empty.sum())} image × region pairs had no usable voxel (first: "
            f"{first['path']} (subject {first['subject_id']}, session "
            f"{first['session']}), region {first['region']!r}); their SUVR is NaN "
            "(see qc)",
            DataWarning,
            stacklevel=2,
        )
    logger.info(
        "SUVR of %d regions (reference %s, pvc=%s) from %d images in %.1f s",
        k - 1,
        ref_name,
        pvc,
        n,
        time.perf_counter() - t0,
    )
    return RoiFeatures(feats, qc)
