"""Figures from fitted alsprog objects and tidy result tables (matplotlib inside)."""

from alsprog.plots._biomarkers import feature_importance, learning_curve, roc_curves
from alsprog.plots._design import power_curve

__all__ = ["feature_importance", "learning_curve", "power_curve", "roc_curves"]
