"""Imaging biomarkers: ALS-vs-control classifiers and progression markers, validated
honestly (subject-grouped and leave-site-out CV, in-fold ComBat, leakage guards).

The names are loaded on first use (PEP 562), so ``from alsprog.biomarkers import
DEFAULT_N_PERMUTATIONS`` (read by the command line's ``--help``) does not import
scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alsprog._lazy import lazy_names
from alsprog.biomarkers._pvalue import (
    DEFAULT_N_PERMUTATIONS,
    format_pvalue,
    permutation_pvalue,
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from alsprog.biomarkers._classifier import ImagingClassifier
    from alsprog.biomarkers._compare import ClassifierComparison, compare_classifiers
    from alsprog.biomarkers._evaluate import ClassifierEvaluation, evaluate_classifier
    from alsprog.biomarkers._features import imaging_feature_columns, select_features
    from alsprog.biomarkers._guards import (
        ConfoundingWarning,
        LeakageWarning,
        check_harmonized_before_split,
        check_site_confounding,
        check_subject_overlap,
    )
    from alsprog.biomarkers._importance import feature_importance
    from alsprog.biomarkers._learning_curve import LearningCurve, learning_curve
    from alsprog.biomarkers._mlp import GroupedEarlyStoppingMLP
    from alsprog.biomarkers._progression import (
        imaging_change_rates,
        screen_progression_markers,
    )

__all__ = [
    "DEFAULT_N_PERMUTATIONS",
    "ClassifierComparison",
    "ClassifierEvaluation",
    "LearningCurve",
    "compare_classifiers",
    "evaluate_classifier",
    "format_pvalue",
    "learning_curve",
    "feature_importance",
    "imaging_change_rates",
    "permutation_pvalue",
    "screen_progression_markers",
    "ConfoundingWarning",
    "GroupedEarlyStoppingMLP",
    "ImagingClassifier",
    "LeakageWarning",
    "check_harmonized_before_split",
    "check_site_confounding",
    "check_subject_overlap",
    "imaging_feature_columns",
    "select_features",
]

_MODULES = {
    "ImagingClassifier": "alsprog.biomarkers._classifier",
    "GroupedEarlyStoppingMLP": "alsprog.biomarkers._mlp",
    "imaging_feature_columns": "alsprog.biomarkers._features",
    "select_features": "alsprog.biomarkers._features",
    "ClassifierComparison": "alsprog.biomarkers._compare",
    "compare_classifiers": "alsprog.biomarkers._compare",
    "ClassifierEvaluation": "alsprog.biomarkers._evaluate",
    "LearningCurve": "alsprog.biomarkers._learning_curve",
    "evaluate_classifier": "alsprog.biomarkers._evaluate",
    "learning_curve": "alsprog.biomarkers._learning_curve",
    "ConfoundingWarning": "alsprog.biomarkers._guards",
    "LeakageWarning": "alsprog.biomarkers._guards",
    "check_harmonized_before_split": "alsprog.biomarkers._guards",
    "check_site_confounding": "alsprog.biomarkers._guards",
    "check_subject_overlap": "alsprog.biomarkers._guards",
    "feature_importance": "alsprog.biomarkers._importance",
    "imaging_change_rates": "alsprog.biomarkers._progression",
    "screen_progression_markers": "alsprog.biomarkers._progression",
}


__getattr__, __dir__ = lazy_names(__name__, globals(), _MODULES, __all__)
