"""Mixed models for repeated measures (nlme::gls-exact): estimator and numerics.

Private: users import from :mod:`alsprog.models`.
"""
