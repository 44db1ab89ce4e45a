"""Figures from fitted alsprog objects and tidy result tables (matplotlib inside)."""

from alsprog.plots._biomarkers import feature_importance, learning_curve, roc_curves
from alsprog.plots._course import disease_course_plot
from alsprog.plots._design import power_curve
from alsprog.plots._forecast import calibration_curve, fan_chart
from alsprog.plots._latent import class_trajectories, observed_class_means
from alsprog.plots._models import model_comparison
from alsprog.plots._survival import risk_group_curves, survival_curve
from alsprog.plots._trajectories import (
    feature_trajectories,
    spaghetti,
    subject_trajectories,
)

__all__ = [
    "calibration_curve",
    "class_trajectories",
    "disease_course_plot",
    "fan_chart",
    "feature_importance",
    "feature_trajectories",
    "learning_curve",
    "model_comparison",
    "observed_class_means",
    "power_curve",
    "risk_group_curves",
    "roc_curves",
    "spaghetti",
    "subject_trajectories",
    "survival_curve",
]
