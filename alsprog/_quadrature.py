"""Adaptive Gauss-Hermite quadrature over a low-dimensional Gaussian prior.

Owns: :func:`adaptive_gauss_hermite`, the posterior of a few latent quantities per
patient (the simulator's latent progression for the oracle forecast, a new patient's
sigmoid effects per posterior draw) as weighted nodes, batched over many independent
problems.  Leaves: the likelihoods to the callers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__all__ = ["adaptive_gauss_hermite", "padded"]

Array = npt.NDArray[np.float64]


def _grid(n: int, dim: int) -> tuple[Array, Array]:
    """Tensor-product probabilists' Gauss-Hermite nodes (K, dim) and log weights (K,)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    mesh = np.stack(np.meshgrid(*([x] * dim), indexing="ij"), axis=-1).reshape(-1, dim)
    wm = np.prod(
        np.stack(np.meshgrid(*([w] * dim), indexing="ij"), axis=-1).reshape(-1, dim),
        axis=1,
    )
    return mesh, np.log(wm)


def _normalise(logw: Array) -> Array:
    top = np.max(logw, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    w = np.exp(logw - top)
    s = w.sum(axis=-1, keepdims=True)
    return np.divide(w, s, out=np.zeros_like(w), where=s > 0)


def _log_normal(x: Array, mean: Array, chol: Array) -> Array:
    """log N(x; mean, chol chol') for x (B, K, d), mean (B, d), chol (B, d, d).

    Forward substitution written out over the (small) dimension: a batched
    ``np.linalg.solve`` per node costs 20x more for d = 2.
    """
    d = x.shape[-1]
    diff = x - mean[:, None, :]
    z = np.empty_like(diff)
    for i in range(d):
        acc = diff[..., i]
        for j in range(i):
            acc = acc - chol[:, None, i, j] * z[..., j]
        z[..., i] = acc / chol[:, None, i, i]
    logdet = np.sum(np.log(np.abs(np.diagonal(chol, axis1=-2, axis2=-1))), axis=-1)
    return -0.5 * np.sum(z**2, axis=-1) - logdet[:, None] - 0.5 * d * np.log(2 * np.pi)


def adaptive_gauss_hermite(
    loglik: Callable[[Array], Array],
    mean: Array,
    chol: Array,
    *,
    n_nodes: int = 15,
    inflate: float = 1.5,
) -> tuple[Array, Array]:
    """Weighted nodes approximating ``prior(x) * exp(loglik(x))``, batched.

    Pass 1 integrates on the prior's Gauss-Hermite grid to find the posterior mean and
    covariance; pass 2 recentres the grid on them (covariance times ``inflate``) and
    reweights by ``prior / proposal`` (adaptive quadrature, as lme4's ``nAGQ``).

    Parameters
    ----------
    loglik : callable
        ``loglik(x)`` with ``x`` of shape (B, K, d) returns (B, K) log-likelihoods
        (``-inf`` allowed, e.g. for a truncated prior).
    mean, chol : ndarray
        Prior mean (B, d) and lower Cholesky factor of its covariance (B, d, d).
    n_nodes : int, default 15
        Nodes per dimension.
    inflate : float, default 1.5
        Variance inflation of the recentred grid.

    Returns
    -------
    nodes : ndarray
        (B, K, d) with ``K = n_nodes ** d``.
    weights : ndarray
        (B, K), each row summing to one (all zero when the likelihood is zero on
        every node of both passes).

    Examples
    --------
    Conjugate check: prior N(0, 1), one observation 1.0 with noise variance 1 gives the
    posterior N(0.5, 0.5).

    >>> ll = lambda x: -0.5 * (1.0 - x[..., 0]) ** 2
    >>> nodes, w = adaptive_gauss_hermite(ll, np.zeros((1, 1)), np.ones((1, 1, 1)))
    >>> m = float(np.sum(w * nodes[..., 0]))
    >>> v = float(np.sum(w * (nodes[..., 0] - m) ** 2))
    >>> round(m, 6), round(v, 6)
    (0.5, 0.5)
    """
    mean = np.asarray(mean, dtype=float)
    chol = np.asarray(chol, dtype=float)
    d = mean.shape[-1]
    g, logw = _grid(n_nodes, d)
    x1 = mean[:, None, :] + g @ np.swapaxes(chol, -1, -2)
    w1 = _normalise(logw[None, :] + loglik(x1))
    m = (w1[:, None, :] @ x1)[:, 0, :]
    diff = x1 - m[:, None, :]
    V = np.swapaxes(diff * w1[..., None], -1, -2) @ diff
    prior_cov = chol @ np.swapaxes(chol, -1, -2)
    # keep the proposal proper when the posterior collapses onto one node
    V = inflate * V + 1e-6 * prior_cov + 1e-12 * np.eye(d)
    dead = w1.sum(axis=1) == 0
    if dead.any():  # no node had any likelihood: fall back to the prior grid
        m[dead], V[dead] = mean[dead], prior_cov[dead] + 1e-12 * np.eye(d)
    C = np.linalg.cholesky(V)
    x2 = m[:, None, :] + g @ np.swapaxes(C, -1, -2)
    log_prior = _log_normal(x2, mean, chol)
    log_prop = _log_normal(x2, m, C)
    w2 = _normalise(logw[None, :] + log_prior - log_prop + loglik(x2))
    lost = w2.sum(axis=1) == 0
    if lost.any():
        x2[lost], w2[lost] = x1[lost], w1[lost]
    return x2, w2


def padded(
    values: npt.NDArray[np.float64], groups: npt.NDArray[np.intp], n_groups: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(G, n_max) array of each group's values (row order kept) and its mask."""
    counts = np.bincount(groups, minlength=n_groups)
    width = max(int(counts.max()) if len(counts) else 0, 1)
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(g)) - start[g]
    out = np.zeros((n_groups, width))
    mask = np.zeros((n_groups, width), bool)
    out[g, pos] = values[order]
    mask[g, pos] = True
    return out, mask
