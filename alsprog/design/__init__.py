"""Trial design: sample size and power for slowing ALSFRS-R decline, for the
endpoints ALS trials use (slope, MMRM, CAFS, win ratio, survival), with
group-sequential looks, by formula and by simulating whole trials from a fitted
model, the nonlinear disease course or historical patients."""

from alsprog.design._analytic import (
    detectable_delta_slope,
    power_slope,
    sample_size_slope,
    sample_size_table,
)
from alsprog.design._course_trials import CourseSource
from alsprog.design._historical import HistoricalCohort
from alsprog.design._markers import (
    BaselineMarker,
    Enrichment,
    adjusted_design,
    enriched_design,
)
from alsprog.design._mmrm_power import power_mmrm, sample_size_mmrm
from alsprog.design._sample_size import SampleSize
from alsprog.design._simulate import PowerResult, power_curve, simulate_power
from alsprog.design._simulated_size import SimulatedSampleSize, simulated_sample_size
from alsprog.design._trial import TrialDesign

__all__ = [
    "BaselineMarker",
    "CourseSource",
    "HistoricalCohort",
    "SimulatedSampleSize",
    "Enrichment",
    "PowerResult",
    "TrialDesign",
    "adjusted_design",
    "enriched_design",
    "power_curve",
    "simulate_power",
    "simulated_sample_size",
    "SampleSize",
    "detectable_delta_slope",
    "power_mmrm",
    "power_slope",
    "sample_size_mmrm",
    "sample_size_slope",
    "sample_size_table",
]
