"""Synthetic ALS cohorts: clinical visits, events, imaging features and NIfTI maps.

Owns: :func:`simulate_cohort` (subjects, ALSFRS-R visits, survival and imaging tables in
the data dictionary's long format, plus the simulation truth), :class:`CohortParams`
(every simulator parameter with its source), :class:`ProgressionClass` (latent
progression classes with known membership), :func:`write_nifti` (a BIDS-derivatives
folder of voxel maps whose ROI means reproduce the imaging table) and
:func:`simulate_disease_course` (several outcomes on one latent disease time, with the
truth).
Leaves: reading and validating tables to :mod:`alsprog.data`.
"""

from __future__ import annotations

from alsprog.simulate._classes import ProgressionClass
from alsprog.simulate._cohort import Cohort, simulate_cohort
from alsprog.simulate._course_multi import SimulatedCourse, simulate_disease_course
from alsprog.simulate._nifti import write_nifti
from alsprog.simulate._oracle import oracle_forecast
from alsprog.simulate._params import CohortParams
from alsprog.simulate._proact import ProactExport, write_proact

__all__ = [
    "Cohort",
    "CohortParams",
    "ProactExport",
    "ProgressionClass",
    "SimulatedCourse",
    "oracle_forecast",
    "simulate_cohort",
    "simulate_disease_course",
    "write_nifti",
    "write_proact",
]
