"""Trial design: sample size and power for slowing ALSFRS-R decline."""

from alsprog.design._analytic import (
    SampleSize,
    detectable_delta_slope,
    power_mmrm,
    power_slope,
    sample_size_mmrm,
    sample_size_slope,
    sample_size_table,
)
from alsprog.design._simulate import (
    BaselineMarker,
    Enrichment,
    PowerResult,
    adjusted_design,
    enriched_design,
    power_curve,
    simulate_power,
)
from alsprog.design._trial import TrialDesign

__all__ = [
    "BaselineMarker",
    "Enrichment",
    "PowerResult",
    "TrialDesign",
    "adjusted_design",
    "enriched_design",
    "power_curve",
    "simulate_power",
    "SampleSize",
    "detectable_delta_slope",
    "power_mmrm",
    "power_slope",
    "sample_size_mmrm",
    "sample_size_slope",
    "sample_size_table",
]
