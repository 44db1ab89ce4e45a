"""Joint models of the trajectory and the time to death or tracheostomy: estimator, numerics and conditional forecast.

Private: users import from :mod:`alsprog.models`.
"""
