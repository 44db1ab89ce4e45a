"""Imaging biomarkers: ALS-vs-control classifiers and progression markers, validated
honestly (subject-grouped and leave-site-out CV, in-fold ComBat, leakage guards)."""

from alsprog.biomarkers._classifier import (
    ImagingClassifier,
    imaging_feature_columns,
    select_features,
)
from alsprog.biomarkers._evaluate import (
    ClassifierEvaluation,
    LearningCurve,
    evaluate_classifier,
    learning_curve,
)
from alsprog.biomarkers._guards import (
    ConfoundingWarning,
    LeakageWarning,
    check_harmonized_before_split,
    check_site_confounding,
    check_subject_overlap,
)
from alsprog.biomarkers._importance import feature_importance
from alsprog.biomarkers._progression import (
    imaging_change_rates,
    screen_progression_markers,
)

__all__ = [
    "ClassifierEvaluation",
    "LearningCurve",
    "evaluate_classifier",
    "learning_curve",
    "feature_importance",
    "imaging_change_rates",
    "screen_progression_markers",
    "ConfoundingWarning",
    "ImagingClassifier",
    "LeakageWarning",
    "check_harmonized_before_split",
    "check_site_confounding",
    "check_subject_overlap",
    "imaging_feature_columns",
    "select_features",
]
