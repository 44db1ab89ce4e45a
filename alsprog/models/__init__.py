"""Trajectory models: linear mixed (lme4-exact REML/ML), MMRM and Bayesian hierarchical."""

from alsprog.models._bayes import BayesianTrajectoryModel
from alsprog.models._bayes_priors import Prior
from alsprog.models._lmm import LinearMixedModel
from alsprog.models._mmrm import MMRM
from alsprog.models._summary import Summary

__all__ = [
    "MMRM",
    "BayesianTrajectoryModel",
    "LinearMixedModel",
    "Prior",
    "Summary",
]
