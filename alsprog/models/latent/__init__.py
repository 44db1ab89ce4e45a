"""Latent-class linear mixed models (progression classes): estimator, numerics and
the choice of the number of classes.

Private: users import :class:`~alsprog.models.LatentClassMixedModel` from
:mod:`alsprog.models`, and
:func:`~alsprog.models.select_n_classes` likewise.
"""
