"""Trajectory models: linear mixed (lme4-exact REML/ML), MMRM, joint, Bayesian hierarchical,
nonlinear mixed (the D50 sigmoid, nlme's ML);
and the survival model (Royston-Parmar or Cox) beside them.

Every one subclasses :class:`TrajectoryModel` (the contract forecasts, backtests
and the report rely on); :mod:`alsprog.models.registry` names the model types.

The names are loaded on first use (PEP 562), so ``from alsprog.models import
LinearMixedModel`` does not import the Bayesian or MMRM modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alsprog._lazy import lazy_names

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from alsprog.models._contract import ForecastRows, TrajectoryModel
    from alsprog.models._summary import MixedSummary, Summary
    from alsprog.models.bayes._course import DiseaseCourseModel
    from alsprog.models.bayes._model import BayesianTrajectoryModel
    from alsprog.models.bayes._priors import Prior
    from alsprog.models.joint._model import JointModel
    from alsprog.models.latent._model import LatentClassMixedModel
    from alsprog.models.latent._select import ClassSelection, select_n_classes
    from alsprog.models.lmm._model import LinearMixedModel
    from alsprog.models.mmrm._model import MMRM
    from alsprog.models.nlme._model import NonlinearMixedModel
    from alsprog.models.survival._groups import RiskGroups, risk_groups
    from alsprog.models.survival._model import SurvivalModel

__all__ = [
    "MMRM",
    "BayesianTrajectoryModel",
    "ClassSelection",
    "DiseaseCourseModel",
    "ForecastRows",
    "JointModel",
    "LatentClassMixedModel",
    "LinearMixedModel",
    "MixedSummary",
    "NonlinearMixedModel",
    "Prior",
    "RiskGroups",
    "Summary",
    "SurvivalModel",
    "TrajectoryModel",
    "risk_groups",
    "select_n_classes",
]

_MODULES = {
    "MMRM": "alsprog.models.mmrm._model",
    "BayesianTrajectoryModel": "alsprog.models.bayes._model",
    "DiseaseCourseModel": "alsprog.models.bayes._course",
    "JointModel": "alsprog.models.joint._model",
    "LatentClassMixedModel": "alsprog.models.latent._model",
    "ClassSelection": "alsprog.models.latent._select",
    "select_n_classes": "alsprog.models.latent._select",
    "LinearMixedModel": "alsprog.models.lmm._model",
    "NonlinearMixedModel": "alsprog.models.nlme._model",
    "Prior": "alsprog.models.bayes._priors",
    "MixedSummary": "alsprog.models._summary",
    "Summary": "alsprog.models._summary",
    "SurvivalModel": "alsprog.models.survival._model",
    "RiskGroups": "alsprog.models.survival._groups",
    "risk_groups": "alsprog.models.survival._groups",
    "TrajectoryModel": "alsprog.models._contract",
    "ForecastRows": "alsprog.models._contract",
}


__getattr__, __dir__ = lazy_names(__name__, globals(), _MODULES, __all__)
