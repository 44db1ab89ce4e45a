"""Latent-class linear mixed models (progression classes): estimator and numerics.

Private: users import :class:`~alsprog.models.LatentClassMixedModel` from
:mod:`alsprog.models`.
"""
