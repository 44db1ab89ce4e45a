"""The imaging section: ROI features of the NIfTI maps, when ``[imaging]`` is given.

Owns: :func:`stage_imaging` (extract the features and their QC into ``imaging/``)
and :class:`Imaging`, its frozen result.
Leaves: the extraction to :mod:`alsprog.imaging`; joining the features to the
visits to :mod:`alsprog.report.sections.cohort`, which also shows this stage's notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from alsprog.report.sections._base import RunContext, Section

__all__ = ["Imaging", "ImagingSection", "stage_imaging"]


@dataclass(frozen=True)
class Imaging:
    """The features extracted from the maps (None without ``[imaging]``) and QC."""

    features: pd.DataFrame | None = None
    qc: pd.DataFrame | None = None


def stage_imaging(ctx: RunContext) -> Imaging:
    """ROI features of the NIfTI maps (when ``[imaging]`` is given)."""
    from alsprog.data import write_table
    from alsprog.imaging import extract_roi_features

    im = ctx.config.imaging
    if im is None:
        src = ctx.config.data.imaging
        ctx.note(
            "imaging",
            f"features read from {src.name}" if src else "no imaging inputs",
        )
        return Imaging()
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
    write_table(res.features, ctx.out / "imaging" / "features.csv")
    ctx.write(res.qc, "imaging/qc.csv")
    n_img = res.qc["path"].nunique()
    ctx.note(
        "imaging",
        f"{len(res.features)} sessions x {res.features.shape[1] - 3} features from "
        f"{n_img} images",
    )
    return Imaging(features=res.features, qc=res.qc)


class ImagingSection(Section):
    """Stage ``imaging``; no part of its own in the report (see the cohort)."""

    name = "imaging"

    def intro(self, ctx: RunContext) -> str:
        if ctx.config.imaging:
            return "ROI features of the NIfTI maps"
        return "imaging features"

    def compute(self, ctx: RunContext) -> Imaging:
        return stage_imaging(ctx)
