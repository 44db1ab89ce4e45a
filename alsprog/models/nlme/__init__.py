"""The D50 sigmoid nonlinear mixed model fitted by maximum likelihood (R's nlme):
estimator, Lindstrom-Bates numerics, summary, file format and conditional forecast.

Private: users import :class:`~alsprog.models.NonlinearMixedModel` from
:mod:`alsprog.models`.
"""
