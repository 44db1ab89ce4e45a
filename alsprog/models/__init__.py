"""Trajectory models: linear mixed models (lme4-exact REML/ML) and MMRM."""

from alsprog.models._lmm import LinearMixedModel
from alsprog.models._mmrm import MMRM
from alsprog.models._summary import Summary

__all__ = ["MMRM", "LinearMixedModel", "Summary"]
