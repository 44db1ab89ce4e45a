"""Linear mixed-effects models (lme4-exact REML/ML): estimator, numerics, file format and conditional forecast.

Private: users import from :mod:`alsprog.models`.
"""
