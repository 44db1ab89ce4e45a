"""Synthetic ALS cohorts: clinical visits, events, imaging features and NIfTI maps.

Owns: :func:`simulate_cohort` (subjects, ALSFRS-R visits, survival and imaging tables in
the data dictionary's long format, plus the simulation truth), :class:`CohortParams`
(every simulator parameter with its source), :class:`ProgressionClass` (latent
progression classes with known membership), :func:`write_nifti` (a BIDS-derivatives
folder of voxel maps whose ROI means reproduce the imaging table),
:func:`write_fmri` (4-D resting-state BOLD with known connectivity and confounds),
:func:`write_pet` (PET uptake images with known SUVR, blurred by a known PSF),
:func:`write_tract_profiles` (TractSeg/pyAFQ tract profiles with a known along-tract
effect) and
:func:`simulate_disease_course` (several outcomes on one latent disease time, with the
truth).
Leaves: reading and validating tables to :mod:`alsprog.data`.
"""

from __future__ import annotations

from alsprog.simulate._classes import ProgressionClass
from alsprog.simulate._cohort import Cohort, simulate_cohort
from alsprog.simulate._course_multi import SimulatedCourse, simulate_disease_course
from alsprog.simulate._fmri import FMRI_NETWORKS, SimulatedFmri, write_fmri
from alsprog.simulate._nifti import write_nifti
from alsprog.simulate._oracle import oracle_forecast
from alsprog.simulate._params import CohortParams
from alsprog.simulate._pet import simulate_suvr, write_pet
from alsprog.simulate._proact import ProactExport, write_proact
from alsprog.simulate._tracts import (
    SimulatedTracts,
    simulate_tract_profiles,
    write_tract_profiles,
)

__all__ = [
    "Cohort",
    "CohortParams",
    "FMRI_NETWORKS",
    "ProactExport",
    "ProgressionClass",
    "SimulatedCourse",
    "SimulatedFmri",
    "SimulatedTracts",
    "oracle_forecast",
    "simulate_cohort",
    "simulate_disease_course",
    "simulate_suvr",
    "simulate_tract_profiles",
    "write_fmri",
    "write_nifti",
    "write_pet",
    "write_proact",
    "write_tract_profiles",
]
