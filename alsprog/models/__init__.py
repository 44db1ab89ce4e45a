"""Trajectory models: linear mixed (lme4-exact REML/ML), MMRM, joint, Bayesian hierarchical.

The names are loaded on first use (PEP 562), so ``from alsprog.models import
LinearMixedModel`` does not import the Bayesian or MMRM modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alsprog._lazy import lazy_names

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from alsprog.models._bayes import BayesianTrajectoryModel
    from alsprog.models._bayes_priors import Prior
    from alsprog.models._joint import JointModel
    from alsprog.models._lmm import LinearMixedModel
    from alsprog.models._mmrm import MMRM
    from alsprog.models._summary import MixedSummary, Summary

__all__ = [
    "MMRM",
    "BayesianTrajectoryModel",
    "JointModel",
    "LinearMixedModel",
    "MixedSummary",
    "Prior",
    "Summary",
]

_MODULES = {
    "MMRM": "alsprog.models._mmrm",
    "BayesianTrajectoryModel": "alsprog.models._bayes",
    "JointModel": "alsprog.models._joint",
    "LinearMixedModel": "alsprog.models._lmm",
    "Prior": "alsprog.models._bayes_priors",
    "MixedSummary": "alsprog.models._summary",
    "Summary": "alsprog.models._summary",
}


__getattr__, __dir__ = lazy_names(__name__, globals(), _MODULES, __all__)
