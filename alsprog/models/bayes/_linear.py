"""Numerics of the Bayesian linear trajectory model with per-subject effects.

Owns: the per-subject sufficient statistics of a random intercept + slope model, its
exact Gaussian marginal log-likelihood (per subject, written once for NumPy and once
for PyTensor so PyMC can sample it through JAX), the exact conditional draws of the
per-subject effects given the population parameters, and the PyMC model builders
(marginal and full non-centred).
Leaves: the estimator, priors and bookkeeping to :mod:`alsprog.models.bayes._model`.

The model, for subject ``i`` with ``n_i`` visits::

    y_i = X_i beta + Z_i b_i + e_i,   Z_i = [1, t_i],
    b_i ~ N(0, Sigma),  Sigma = diag(s) [[1, rho], [rho, 1]] diag(s),
    e_i ~ N(0, sigma^2 I).

Integrating ``b_i`` out gives ``y_i ~ N(X_i beta, sigma^2 I + Z_i Sigma Z_i')``.  With
``M_i = Z_i'Z_i + sigma^2 Sigma^{-1}`` (2 x 2) and ``r_i = y_i - X_i beta``::

    log p(y_i) = -1/2 [ n_i log 2 pi + (n_i - 2) log sigma^2 + log|Sigma| + log|M_i|
                        + (r_i'r_i - r_i'Z_i M_i^{-1} Z_i'r_i) / sigma^2 ]

and ``b_i | y_i ~ N(M_i^{-1} Z_i'r_i, sigma^2 M_i^{-1})``.  Every quantity needs only
``r_i'r_i`` and ``Z_i'r_i``, which follow from the per-subject sums ``X'X``, ``X'y``,
``y'y``, ``Z'X``, ``Z'y`` and ``Z'Z`` computed once, so one log-density evaluation
costs O(G p^2) for G subjects and p fixed effects, whatever the number of visits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "SubjectStats",
    "conditional_subject_effects",
    "marginal_loglik",
    "marginal_loglik_pt",
    "subject_stats",
]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class SubjectStats:
    """Per-subject sufficient statistics of the linear model (G subjects, p terms).

    Attributes
    ----------
    n : ndarray, shape (G,)
        Visits per subject.
    XX : ndarray, shape (G, p, p)
    Xy : ndarray, shape (G, p)
    yy : ndarray, shape (G,)
    ZX : ndarray, shape (G, 2, p)
    Zy : ndarray, shape (G, 2)
    ZZ : ndarray, shape (G, 2, 2)
    """

    n: npt.NDArray[np.float64]
    XX: npt.NDArray[np.float64]
    Xy: npt.NDArray[np.float64]
    yy: npt.NDArray[np.float64]
    ZX: npt.NDArray[np.float64]
    Zy: npt.NDArray[np.float64]
    ZZ: npt.NDArray[np.float64]


def subject_stats(
    y: npt.NDArray[np.float64],
    X: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    groups: npt.NDArray[np.intp],
    n_groups: int,
) -> SubjectStats:
    """Sum the cross-products of each subject's rows.

    Parameters
    ----------
    y : ndarray, shape (n,)
        Outcome.
    X : ndarray, shape (n, p)
        Fixed-effects design.
    t : ndarray, shape (n,)
        Time (the random-slope variable); ``Z = [1, t]``.
    groups : ndarray of int, shape (n,)
        Subject code of each row, in ``0 .. n_groups - 1``.
    n_groups : int
        Number of subjects G.

    Returns
    -------
    SubjectStats

    Examples
    --------
    >>> s = subject_stats(np.array([1.0, 2.0, 3.0]), np.ones((3, 1)),
    ...                   np.array([0.0, 1.0, 0.0]), np.array([0, 0, 1]), 2)
    >>> s.n.tolist(), s.Zy.tolist()
    ([2.0, 1.0], [[3.0, 2.0], [3.0, 0.0]])
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    Z = np.column_stack([np.ones_like(t, dtype=float), np.asarray(t, dtype=float)])
    p = X.shape[1]

    def gsum(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out = np.zeros((n_groups, *v.shape[1:]))
        np.add.at(out, groups, v)
        return out

    return SubjectStats(
        n=np.bincount(groups, minlength=n_groups).astype(float),
        XX=gsum(X[:, :, None] * X[:, None, :]).reshape(n_groups, p, p),
        Xy=gsum(X * y[:, None]),
        yy=gsum(y * y),
        ZX=gsum(Z[:, :, None] * X[:, None, :]),
        Zy=gsum(Z * y[:, None]),
        ZZ=gsum(Z[:, :, None] * Z[:, None, :]),
    )


def _blocks(
    xp: Any,
    stats: Any,
    beta: Any,
    sd: Any,
    corr: Any,
    sigma: Any,
    batched: bool,
) -> tuple[Any, ...]:
    """Shared algebra; ``xp`` is numpy or pytensor.tensor.

    With ``batched`` the parameters carry a leading draw axis S and the results have
    shape (S, G); otherwise shape (G,).
    """
    if batched:
        rr = (
            stats.yy[None, :]
            - 2.0 * xp.einsum("gp,sp->sg", stats.Xy, beta)
            + xp.einsum("gpq,sp,sq->sg", stats.XX, beta, beta)
        )
        zr = stats.Zy[None, :, :] - xp.einsum("gkp,sp->sgk", stats.ZX, beta)
        s0, s1 = sd[:, 0][:, None], sd[:, 1][:, None]
        rho, s2 = corr[:, None], (sigma**2)[:, None]
    else:
        rr = None  # summed over subjects in marginal_loglik_pt instead
        zr = stats.Zy - xp.dot(stats.ZX, beta)
        s0, s1, rho, s2 = sd[0], sd[1], corr, sigma**2
    one_m_r2 = 1.0 - rho**2
    # sigma^2 Sigma^{-1} entries
    k = s2 / one_m_r2
    p00 = k / s0**2
    p11 = k / s1**2
    p01 = -k * rho / (s0 * s1)
    a = stats.ZZ[..., 0, 0] + p00
    b = stats.ZZ[..., 0, 1] + p01
    d = stats.ZZ[..., 1, 1] + p11
    det = a * d - b * b
    z0, z1 = zr[..., 0], zr[..., 1]
    m0 = (d * z0 - b * z1) / det  # M^{-1} Z'r
    m1 = (a * z1 - b * z0) / det
    quad = z0 * m0 + z1 * m1
    logdet_sigma = 2.0 * xp.log(s0) + 2.0 * xp.log(s1) + xp.log(one_m_r2)
    if rr is None:  # only the sum over subjects is needed
        g = stats.n.shape[0]
        ll = -0.5 * (
            (stats.n.sum() - 2.0 * g) * xp.log(s2)
            + g * logdet_sigma
            + xp.log(det).sum()
            - quad.sum() / s2
        )
        return ll, m0, m1, a, b, d, det, s2
    ll = -0.5 * (
        stats.n * _LOG_2PI
        + (stats.n - 2.0) * xp.log(s2)
        + logdet_sigma
        + xp.log(det)
        + (rr - quad) / s2
    )
    return ll, m0, m1, a, b, d, det, s2


def marginal_loglik(
    stats: SubjectStats,
    beta: npt.NDArray[np.float64],
    sd: npt.NDArray[np.float64],
    corr: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Exact per-subject marginal log-likelihood for S parameter draws (NumPy).

    Parameters
    ----------
    stats : SubjectStats
    beta : ndarray, shape (S, p)
    sd : ndarray, shape (S, 2)
        SDs of the random intercept and slope.
    corr : ndarray, shape (S,)
        Their correlation, in (-1, 1).
    sigma : ndarray, shape (S,)
        Residual SD.

    Returns
    -------
    ndarray, shape (S, G)
        ``log p(y_i | beta, Sigma, sigma)`` with the subject effects integrated out.

    Examples
    --------
    One subject, one visit at t = 0: y ~ N(beta, sd0^2 + sigma^2).

    >>> s = subject_stats(np.array([1.0]), np.ones((1, 1)), np.zeros(1),
    ...                   np.array([0]), 1)
    >>> ll = marginal_loglik(s, np.zeros((1, 1)), np.array([[1.0, 1.0]]),
    ...                      np.zeros(1), np.ones(1))
    >>> bool(np.isclose(ll[0, 0], -0.5 * (np.log(2 * np.pi * 2) + 0.5)))
    True
    """
    beta = np.atleast_2d(np.asarray(beta, dtype=float))
    sd = np.atleast_2d(np.asarray(sd, dtype=float))
    corr = np.atleast_1d(np.asarray(corr, dtype=float))
    sigma = np.atleast_1d(np.asarray(sigma, dtype=float))
    return _blocks(np, stats, beta, sd, corr, sigma, batched=True)[0]


def _summed_loglik(
    xp: Any, stats: SubjectStats, beta: Any, sd: Any, corr: Any, sigma: Any
) -> Any:
    """Sum over subjects of the marginal log-likelihood, for one parameter set.

    ``xp`` is ``pytensor.tensor`` or ``jax.numpy``; ``stats`` holds arrays (or
    constants) of that library.  The residual sum of squares is summed over subjects
    before it meets the parameters (``sum_i r_i'r_i`` needs only the totals of
    ``X'X``, ``X'y`` and ``y'y``), so the per-subject work is the 2 x p product
    ``Z_i'X_i beta`` and 2 x 2 algebra.
    """
    part = _blocks(xp, stats, beta, sd, corr, sigma, batched=False)[0]
    xx = stats.XX.sum(axis=0)
    xy = stats.Xy.sum(axis=0)
    rss = stats.yy.sum() - 2.0 * xp.dot(xy, beta) + xp.dot(beta, xp.dot(xx, beta))
    return part - 0.5 * (stats.n.sum() * _LOG_2PI + rss / sigma**2)


def marginal_loglik_pt(
    stats: SubjectStats, beta: Any, sd: Any, corr: Any, sigma: Any
) -> Any:
    """The summed marginal log-likelihood as a PyTensor scalar.

    Equals ``marginal_loglik(...).sum()`` for one draw.  ``beta`` (p,), ``sd`` (2,),
    ``corr`` and ``sigma`` (scalars) are PyTensor variables; the statistics enter as
    constants.  Differentiable by PyTensor, so every PyMC sampler can use it.
    """
    import pytensor.tensor as pt

    const = SubjectStats(
        **{k: pt.constant(v) for k, v in vars(stats).items()}  # type: ignore[arg-type]
    )
    return _summed_loglik(pt, const, beta, sd, corr, sigma)


def conditional_subject_effects(
    stats: SubjectStats,
    beta: npt.NDArray[np.float64],
    sd: npt.NDArray[np.float64],
    corr: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """Draw each subject's (intercept, slope) effect from its exact conditional normal.

    For each of the S parameter draws, ``b_i ~ N(M_i^{-1} Z_i'r_i, sigma^2 M_i^{-1})``
    independently over subjects, so paired with posterior draws of the population
    parameters these are exact draws from the joint posterior.

    Parameters
    ----------
    stats : SubjectStats
    beta, sd, corr, sigma : ndarray
        Shapes (S, p), (S, 2), (S,), (S,) as in :func:`marginal_loglik`.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (S, G, 2)

    Examples
    --------
    With no data on a subject beyond one visit and huge residual noise, the effects
    follow their prior N(0, Sigma):

    >>> s = subject_stats(np.array([0.0]), np.ones((1, 1)), np.zeros(1),
    ...                   np.array([0]), 1)
    >>> b = conditional_subject_effects(s, np.zeros((4000, 1)),
    ...     np.tile([2.0, 0.5], (4000, 1)), np.zeros(4000), np.full(4000, 1e6),
    ...     np.random.default_rng(0))
    >>> np.round(b[:, 0].std(axis=0), 1).tolist()
    [2.0, 0.5]
    """
    beta = np.atleast_2d(beta)
    sd = np.atleast_2d(sd)
    corr = np.atleast_1d(corr)
    sigma = np.atleast_1d(sigma)
    _, m0, m1, a, b, d, det, s2 = _blocks(np, stats, beta, sd, corr, sigma, True)
    # covariance C = sigma^2 M^{-1} = s2 / det * [[d, -b], [-b, a]]; 2x2 Cholesky
    c00 = s2 * d / det
    c01 = -s2 * b / det
    c11 = s2 * a / det
    l00 = np.sqrt(c00)
    l10 = c01 / l00
    l11 = np.sqrt(np.maximum(c11 - l10**2, 0.0))
    e = rng.standard_normal((*m0.shape, 2))
    return np.stack(
        [m0 + l00 * e[..., 0], m1 + l10 * e[..., 0] + l11 * e[..., 1]], axis=-1
    )


def centred_fixed_effects(
    name: str,
    fe_names: list[str],
    xbar: npt.NDArray[np.float64],
    intercept_prior: Any,
    term_priors: list[Any],
) -> Any:
    """Fixed effects whose intercept prior sits at the covariates' sample means.

    As in brms, the prior of the intercept applies to the outcome at the sample mean
    of every other column (``intercept_c = beta_0 + xbar' beta_rest``), which keeps the
    prior meaningful whatever the covariates' origin and decorrelates the sampler;
    the returned vector is on the formula's own scale (``beta_0 = intercept_c -
    xbar' beta_rest``).  ``term_priors`` has one prior per column (the intercept's
    entry is ignored).  Without an intercept every column gets its term prior.
    """
    import pytensor.tensor as pt

    from alsprog.models.bayes._priors import scalar_from_prior, vector_from_priors

    p = len(fe_names)
    if "Intercept" not in fe_names:
        return vector_from_priors(f"_{name}", term_priors)
    i0 = fe_names.index("Intercept")
    rest = np.array([k for k in range(p) if k != i0], dtype=np.intp)
    ic = scalar_from_prior(f"_{name}_intercept_centred", intercept_prior)
    br = vector_from_priors(f"_{name}_rest", [term_priors[k] for k in rest])
    out = pt.zeros((p,))
    if rest.size:
        out = pt.set_subtensor(out[rest], br)
        ic = ic - pt.dot(br, pt.constant(xbar[rest]))
    return pt.set_subtensor(out[i0], ic)


def non_centred_effects(z: Any, sd0: Any, sd1: Any, corr: Any) -> Any:
    """``b = z L'`` with ``L`` the Cholesky factor of the 2 x 2 covariance."""
    import pytensor.tensor as pt

    b0 = sd0 * z[:, 0]
    b1 = sd1 * (corr * z[:, 0] + pt.sqrt(1.0 - corr**2) * z[:, 1])
    return pt.stack([b0, b1], axis=1)


def build_linear_model(
    *,
    y: npt.NDArray[np.float64],
    X: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    groups: npt.NDArray[np.intp],
    coords: dict[str, Any],
    priors: dict[str, Any],
    outcome: str,
    time: str,
    marginal: bool,
    likelihood: str,
    stats: SubjectStats | None = None,
) -> Any:
    """The PyMC model of the linear kind.

    ``marginal=True`` samples only the population parameters under the exact
    marginal likelihood (a ``pm.Potential``); ``False`` is the full model with
    non-centred per-subject effects ``subject_effects`` and an observed outcome
    (needed for a Student-t likelihood and for prior predictive checks).
    """
    import pymc as pm
    import pytensor.tensor as pt

    from alsprog.models.bayes._priors import (
        correlation_from_prior,
        scalar_from_prior,
        term_priors,
    )

    fe_names = list(coords["term"])
    non_icpt = np.array([n != "Intercept" for n in fe_names])
    xbar = np.where(non_icpt, X.mean(axis=0), 0.0)
    tp = term_priors(priors, "beta", fe_names)
    tp = [
        priors.get(f"beta[{n}]", priors["slope"]) if n == time else p
        for n, p in zip(fe_names, tp, strict=True)
    ]
    with pm.Model(coords=coords) as model:
        beta = pm.Deterministic(
            "beta",
            centred_fixed_effects("beta", fe_names, xbar, priors["intercept"], tp),
            dims="term",
        )
        sd0 = scalar_from_prior("_sd_intercept", priors["sd_intercept"], positive=True)
        sd1 = scalar_from_prior("_sd_slope", priors["sd_slope"], positive=True)
        sd = pm.Deterministic("subject_sd", pt.stack([sd0, sd1]), dims="effect")
        corr = pm.Deterministic(
            "subject_corr", correlation_from_prior("_corr", priors["corr"])
        )
        sigma = scalar_from_prior("sigma", priors["sigma"], positive=True)
        if marginal:
            if stats is None:
                stats = subject_stats(y, X, t, groups, len(coords["subject_id"]))
            pm.Potential(
                "marginal_loglik", marginal_loglik_pt(stats, beta, sd, corr, sigma)
            )
            return model
        z = pm.Normal("_z", 0.0, 1.0, dims=("subject_id", "effect"))
        b = pm.Deterministic(
            "subject_effects",
            non_centred_effects(z, sd0, sd1, corr),
            dims=("subject_id", "effect"),
        )
        mu = pt.dot(pt.constant(X), beta) + b[groups, 0] + b[groups, 1] * t
        if likelihood == "student_t":
            nu = scalar_from_prior("nu", priors["nu"], positive=True)
            pm.StudentT(outcome, nu=nu, mu=mu, sigma=sigma, observed=y, dims="obs")
        else:
            pm.Normal(outcome, mu=mu, sigma=sigma, observed=y, dims="obs")
    return model
