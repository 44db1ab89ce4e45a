"""Imaging features per visit: ROI statistics of NIfTI maps, FreeSurfer stats, ComBat.

Owns: turning imaging derivatives (voxel maps in a BIDS-derivatives folder or a
manifest, FreeSurfer ``.stats`` files or a whole ``SUBJECTS_DIR``) into one row of
``<metric>_<region>`` features per subject × session, with QC (PET uptake images
into ``suvr_<region>``, optionally partial-volume corrected; TractSeg and pyAFQ tract
profiles into whole-tract and segment means, with an along-tract group test), and
harmonising them across sites; 4-D resting-state BOLD into ``fc_<roi1>__<roi2>``
connectivity edges and network summaries; several sources of one session merged
into one row.
Leaves: joining features to clinic visits to :func:`alsprog.data.assemble`.
"""

from alsprog.imaging._combat import ComBat, combat
from alsprog.imaging._connectivity import ConnectivityFeatures, extract_connectivity
from alsprog.imaging._extract import (
    STATISTICS,
    RoiFeatures,
    extract_roi_features,
    roi_statistics,
)
from alsprog.imaging._freesurfer import read_freesurfer_dir, read_freesurfer_stats
from alsprog.imaging._merge import merge_features
from alsprog.imaging._pet import extract_suvr, gtm_matrix
from alsprog.imaging._signal import KINDS, clean_signals, connectivity_matrices
from alsprog.imaging._tract_stats import TractProfileTest, tract_profile_test
from alsprog.imaging._tracts import TractProfiles, bundle_name, read_tract_profiles

__all__ = [
    "ComBat",
    "ConnectivityFeatures",
    "KINDS",
    "RoiFeatures",
    "STATISTICS",
    "TractProfileTest",
    "TractProfiles",
    "bundle_name",
    "clean_signals",
    "combat",
    "connectivity_matrices",
    "extract_connectivity",
    "extract_roi_features",
    "extract_suvr",
    "gtm_matrix",
    "merge_features",
    "read_freesurfer_dir",
    "read_freesurfer_stats",
    "read_tract_profiles",
    "roi_statistics",
    "tract_profile_test",
]
