"""Imaging features per visit: ROI statistics of NIfTI maps, FreeSurfer stats, ComBat.

Owns: turning imaging derivatives (voxel maps in a BIDS-derivatives folder or a
manifest, FreeSurfer ``.stats`` files or a whole ``SUBJECTS_DIR``) into one row of
``<metric>_<region>`` features per subject × session, with QC, and harmonising them
across sites.
Leaves: joining features to clinic visits to :func:`alsprog.data.assemble`.
"""

from alsprog.imaging._combat import ComBat, combat
from alsprog.imaging._extract import (
    STATISTICS,
    RoiFeatures,
    extract_roi_features,
    roi_statistics,
)
from alsprog.imaging._freesurfer import read_freesurfer_dir, read_freesurfer_stats

__all__ = [
    "ComBat",
    "STATISTICS",
    "RoiFeatures",
    "combat",
    "extract_roi_features",
    "read_freesurfer_dir",
    "read_freesurfer_stats",
    "roi_statistics",
]
