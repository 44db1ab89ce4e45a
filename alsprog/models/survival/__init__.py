"""Survival models (issue 25, in progress).

So far the numerics: Cox proportional hazards (:mod:`._cox`: Efron and Breslow ties,
delayed entry, as ``survival::coxph``) and Royston-Parmar flexible parametric
survival (:mod:`._flexible`: restricted cubic splines in log time on the hazard,
odds and normal scales, delayed entry, exact ML with analytic gradients) and the
scores of time-to-event predictions (:mod:`._scores`: Harrell's and Uno's C,
time-dependent AUC and Brier with censoring weights, as survival and
riskRegression).  The public ``SurvivalModel``, ``evaluate_survival``, landmark
scores and the report come next.
"""
