"""Trajectory models: linear mixed (lme4-exact REML/ML), MMRM, joint, Bayesian hierarchical.

The names are loaded on first use (PEP 562), so ``from alsprog.models import
LinearMixedModel`` does not import the Bayesian or MMRM modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
