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

__all__ = [
    "SampleSize",
    "detectable_delta_slope",
    "power_mmrm",
    "power_slope",
    "sample_size_mmrm",
    "sample_size_slope",
    "sample_size_table",
]
