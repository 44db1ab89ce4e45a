"""Survival models (issue 25, in progress).

So far the numerics: Cox proportional hazards (:mod:`._cox`: Efron and Breslow ties,
delayed entry, as ``survival::coxph``) and Royston-Parmar flexible parametric
survival (:mod:`._flexible`: restricted cubic splines in log time on the hazard,
odds and normal scales, delayed entry, exact ML with analytic gradients).  The
public ``SurvivalModel``, its formulas, scores and report come next.
"""
