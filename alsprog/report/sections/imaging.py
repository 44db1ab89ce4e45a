"""The imaging section: ROI features of the NIfTI maps and connectivity of the BOLD
runs, when ``[imaging]`` or ``[connectivity]`` is given.

Owns: :func:`stage_imaging` (extract the features and their QC into ``imaging/``,
one row per session when both are given) and :class:`Imaging`, its frozen result.
Leaves: the extraction to :mod:`alsprog.imaging`; joining the features to the
visits to :mod:`alsprog.report.sections.cohort`, which also shows this stage's notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from alsprog.report.sections._base import RunContext, Section

__all__ = ["Imaging", "ImagingSection", "stage_imaging"]


@dataclass(frozen=True)
class Imaging:
    """The features extracted from the images (None without ``[imaging]`` or
    ``[connectivity]``; with both, one row per session holds both) and their QC."""

    features: pd.DataFrame | None = None
    qc: pd.DataFrame | None = None
    connectivity: Any = None  # ConnectivityFeatures, with [connectivity]


def stage_imaging(ctx: RunContext) -> Imaging:
    """ROI features of the NIfTI maps and connectivity of the BOLD runs (when
    ``[imaging]`` or ``[connectivity]`` is given)."""
    from alsprog.data import write_table

    cfg = ctx.config
    im, cc = cfg.imaging, cfg.connectivity
    if im is None and cc is None:
        src = cfg.data.imaging
        ctx.note(
            "imaging",
            f"features read from {src.name}" if src else "no imaging inputs",
        )
        return Imaging()
    parts: list[pd.DataFrame] = []
    names: list[str] = []
    qc = con = None
    if im is not None:
        roi, qc = _roi_features(ctx)
        parts.append(roi)
        names.append(f"ROI features of {im.root.name}")
    elif cfg.data.imaging is not None:
        from alsprog.data import read_imaging

        parts.append(read_imaging(cfg.data.imaging, rename=cfg.data.rename))
        names.append(cfg.data.imaging.name)
        ctx.note("imaging", f"features read from {cfg.data.imaging.name}")
    if cc is not None:
        con = _connectivity(ctx)
        parts.append(con.features)
        names.append(f"connectivity of {cc.root.name}")
    if len(parts) == 1:
        features = parts[0]
    else:
        from alsprog.imaging import merge_features

        features = merge_features(*parts, names=names)
    write_table(features, ctx.out / "imaging" / "features.csv")
    return Imaging(features=features, qc=qc, connectivity=con)


def _roi_features(ctx: RunContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``[imaging]``: ROI statistics of the maps, their QC in ``imaging/qc.csv``."""
    from alsprog.imaging import extract_roi_features

    im = ctx.config.imaging
    assert im is not None
    ctx.say(f"extracting ROI {', '.join(im.stats)} of the maps under {im.root.name}")
    res = extract_roi_features(
        im.root,
        im.atlas,
        im.labels,
        stats=im.stats,
        metrics=list(im.metrics) if im.metrics else None,
        metrics_by_region=list(im.metrics_by_region or ()) or None,
        n_jobs=ctx.config.run.n_jobs,
        progress=ctx.progress,
    )
    ctx.write(res.qc, "imaging/qc.csv")
    n_img = res.qc["path"].nunique()
    ctx.note(
        "imaging",
        f"{len(res.features)} sessions x {res.features.shape[1] - 3} features from "
        f"{n_img} images",
    )
    return res.features, res.qc


def _connectivity(ctx: RunContext) -> Any:
    """``[connectivity]``: the BOLD runs' connectivity features, into
    ``imaging/connectivity.csv`` (QC in ``imaging/connectivity_qc.csv``)."""
    from alsprog.imaging import extract_connectivity

    cc = ctx.config.connectivity
    assert cc is not None
    ctx.say(f"extracting {cc.kind} connectivity of the BOLD runs under {cc.root.name}")
    res = extract_connectivity(
        cc.root,
        cc.atlas,
        cc.labels,
        confounds=list(cc.confounds) if cc.confounds else None,
        standardize=cc.standardize,
        detrend=cc.detrend,
        high_pass=cc.high_pass or None,
        low_pass=cc.low_pass or None,
        t_r=cc.t_r,
        kind=cc.kind,
        edges=cc.edge_pairs,
        networks=cc.network_map,
        n_jobs=ctx.config.run.n_jobs,
        progress=ctx.progress,
    )
    ctx.write(res.features, "imaging/connectivity.csv")
    ctx.write(res.qc, "imaging/connectivity_qc.csv")
    band = " to ".join(
        f"{v:g} Hz" if v else "none" for v in (cc.high_pass, cc.low_pass)
    )
    regress = ", ".join(cc.confounds) if cc.confounds else "none"
    ctx.note(
        "imaging",
        f"{cc.kind} connectivity of {len(res.features)} BOLD runs over "
        f"{len(res.regions)} regions ({res.features.shape[1] - 3} features: Fisher-z "
        f"edges fc_, region means fcroi_, network means fcnet_); band-pass {band}, "
        f"confounds regressed: {regress}",
    )
    bad = res.qc[res.qc["status"] != "ok"]
    if len(bad):
        ctx.note(
            "imaging",
            f"connectivity QC: {len(bad)} region x run(s) empty or constant (their "
            "edges are missing); see imaging/connectivity_qc.csv",
        )
    return res


class ImagingSection(Section):
    """Stage ``imaging``; no part of its own in the report (see the cohort)."""

    name = "imaging"

    def intro(self, ctx: RunContext) -> str:
        parts = []
        if ctx.config.imaging:
            parts.append("ROI features of the NIfTI maps")
        if ctx.config.connectivity:
            parts.append("connectivity of the BOLD runs")
        return " and ".join(parts) or "imaging features"

    def compute(self, ctx: RunContext) -> Imaging:
        return stage_imaging(ctx)
