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
from alsprog.design._cafs import CafsTest, cafs_scores, cafs_test
from alsprog.design._course_trials import CourseSource
from alsprog.design._endpoint_table import horizon_endpoints
from alsprog.design._group_sequential import (
    GroupSequentialDesign,
    SequentialOutcome,
    group_sequential,
)
from alsprog.design._historical import HistoricalCohort
from alsprog.design._markers import (
    BaselineMarker,
    Enrichment,
    adjusted_design,
    enriched_design,
)
from alsprog.design._mmrm_power import power_mmrm, sample_size_mmrm
from alsprog.design._pairwise import (
    WinStatisticsBatch,
    cafs_scores_batch,
    rank_sum_z,
    win_statistics_batch,
)
from alsprog.design._sample_size import SampleSize
from alsprog.design._simulate import PowerResult, power_curve, simulate_power
from alsprog.design._simulated_size import SimulatedSampleSize, simulated_sample_size
from alsprog.design._survival import SurvivalSampleSize, sample_size_survival
from alsprog.design._survival_batch import CoxBatch, cox_batch, logrank_batch
from alsprog.design._trial import TrialDesign
from alsprog.design._win_ratio import Priority, WinRatioResult, win_ratio

__all__ = [
    "adjusted_design",
    "BaselineMarker",
    "cafs_scores",
    "cafs_scores_batch",
    "cafs_test",
    "CafsTest",
    "CourseSource",
    "cox_batch",
    "CoxBatch",
    "detectable_delta_slope",
    "enriched_design",
    "Enrichment",
    "group_sequential",
    "GroupSequentialDesign",
    "HistoricalCohort",
    "horizon_endpoints",
    "logrank_batch",
    "power_curve",
    "power_mmrm",
    "power_slope",
    "PowerResult",
    "Priority",
    "rank_sum_z",
    "sample_size_mmrm",
    "sample_size_slope",
    "sample_size_survival",
    "sample_size_table",
    "SampleSize",
    "SequentialOutcome",
    "simulate_power",
    "simulated_sample_size",
    "SimulatedSampleSize",
    "SurvivalSampleSize",
    "TrialDesign",
    "win_ratio",
    "win_statistics_batch",
    "WinRatioResult",
    "WinStatisticsBatch",
]
