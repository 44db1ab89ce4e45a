"""Bayesian hierarchical trajectory models (PyMC, sampled by numpyro): estimator, design, priors, sampling, file format, summary and conditional forecast.

Private: users import from :mod:`alsprog.models`.
"""
