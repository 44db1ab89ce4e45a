"""Array functions behind :class:`~alsprog.models.MMRM` (GLS with visit covariance).

Owns: the REML and ML criteria with their exact gradients in the visit covariance
(data grouped by covariance group and observed-visit pattern, observation weights),
the gradient of a contrast's variance, the map of such gradients to the covariance
parameters, and a finite-difference Hessian used for the parameters' covariance.
Leaves: the covariance structures to :mod:`alsprog.models.mmrm._covariance` (re-exported
here); formulas, data frames, LS means and reporting to
:mod:`alsprog.models.mmrm._model`.

Subject ``i`` of covariance group ``g`` has ``S_i = W_i^{-1/2} E_i Sigma_g E_i'
W_i^{-1/2}`` (``E_i`` picks the observed visits, ``W_i`` the observation weights, as
mmrm).  The REML criterion is ``-2 l_R = sum_i log|S_i| + log|C| + sum_i
r_i'S_i^{-1}r_i + (N - p) log(2 pi)`` with ``C = sum_i X_i'S_i^{-1}X_i`` and ``beta``
profiled by GLS; ML drops ``log|C|`` and has ``N log(2 pi)``.  With ``y~_i =
W_i^{1/2} y_i`` and ``X~_i = W_i^{1/2} X_i`` the gradient with respect to ``Sigma_g``
is ``sum_{i in g} E_i Sigma^{-1}(Sigma - r~_i r~_i' - X~_i C^{-1} X~_i')Sigma^{-1}
E_i'`` (``Sigma`` the observed block; ML without the ``C^{-1}`` term).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from alsprog.models.mmrm._covariance import (
    cov_jacobian,
    covariance_from_params,
    n_cov_params,
    start_params,
)

__all__ = [
    "Pattern",
    "RemlEval",
    "build_patterns",
    "contrast_variance_grad",
    "cov_jacobian",
    "covariance_from_params",
    "evaluate_reml",
    "mmrm_reml_criterion",
    "n_cov_params",
    "numerical_hessian",
    "sigmas_from_params",
    "start_params",
    "theta_gradient",
]

Array = npt.NDArray[np.float64]
_LOG2PI = float(np.log(2 * np.pi))


def sigmas_from_params(theta: Array, structure: str, T: int, n_groups: int) -> Array:
    """Each group's visit covariance, (G, T, T), from the groups' parameters
    concatenated in group order (as mmrm's ``theta``).

    Examples
    --------
    >>> sigmas_from_params(np.array([0.0, 0.0, np.log(2), 0.0]), "ar1", 2, 2)[:, 0, 0]
    array([1., 4.])
    """
    k = n_cov_params(structure, T)
    return np.stack(
        [
            covariance_from_params(theta[g * k : (g + 1) * k], structure, T)
            for g in range(n_groups)
        ]
    )


def theta_gradient(theta: Array, structure: str, grad_sigma: Array) -> Array:
    """``d f / d theta`` from ``d f / d Sigma_g`` (G, T, T) by the exact Jacobian
    of each group's covariance."""
    G, T = grad_sigma.shape[0], grad_sigma.shape[1]
    k = n_cov_params(structure, T)
    return np.concatenate(
        [
            np.einsum(
                "kij,ij->k",
                cov_jacobian(theta[g * k : (g + 1) * k], structure, T),
                grad_sigma[g],
            )
            for g in range(G)
        ]
    )


# ------------------------------------------------------------------- the criterion
@dataclass(frozen=True)
class Pattern:
    """Subjects of one covariance group sharing one set of observed visits.

    ``idx``: visit indices (sorted); ``Y``: (m, d); ``X``: (m, d, p); ``rows``: the
    positions in the data of each subject's observations, (m, d); ``group``: the
    covariance group's index; ``sw``: the square roots of the observation weights,
    (m, d), or None for unit weights; ``ix``: ``np.ix_(idx, idx)``.
    """

    idx: npt.NDArray[np.intp]
    Y: Array
    X: Array
    rows: npt.NDArray[np.intp]
    group: int = 0
    sw: Array | None = None

    @cached_property
    def ix(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """``np.ix_(idx, idx)``: the pattern's block of a (T, T) matrix."""
        return np.ix_(self.idx, self.idx)

    def weighted(self) -> tuple[Array, Array]:
        """``(W^{1/2} Y, W^{1/2} X)``: the GLS data under ``Sigma`` itself."""
        if self.sw is None:
            return self.Y, self.X
        return self.Y * self.sw, self.X * self.sw[:, :, None]


@dataclass(frozen=True)
class RemlEval:
    """What :func:`evaluate_reml` returns."""

    value: float
    beta: Array
    C: Array
    Cinv: Array
    grad_sigma: Array | None


def mmrm_reml_criterion(
    Sigma: Array, patterns: list[Pattern], *, gradient: bool = False
) -> tuple[float, Array, Array, Array | None]:
    """REML criterion ``-2 l_R`` of a GLS model with visit covariance ``Sigma``.

    Parameters
    ----------
    Sigma : ndarray, shape (T, T) or (G, T, T)
        Covariance over all visits (per covariance group).
    patterns : list of Pattern
        The data grouped by observed-visit pattern.
    gradient : bool, default False
        Also return the gradient with respect to (symmetric) ``Sigma``.

    Returns
    -------
    value : float
    beta : ndarray, shape (p,)
        GLS estimate.
    cov_beta : ndarray, shape (p, p)
        ``C^{-1}``.
    grad : ndarray, shaped as ``Sigma``, or None

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``Sigma`` or ``C`` is not positive definite.
    """
    ev = evaluate_reml(Sigma, patterns, gradient)
    return ev.value, ev.beta, ev.Cinv, ev.grad_sigma


def evaluate_reml(
    Sigma: Array, patterns: list[Pattern], gradient: bool, *, reml: bool = True
) -> RemlEval:
    """REML (or, ``reml=False``, ML) criterion ``-2 l``, the GLS estimate, ``C``
    and ``C^{-1}`` (and d criterion / d Sigma, shaped as ``Sigma``).

    ``Sigma`` is (T, T), or (G, T, T) for group-specific covariances (a pattern of
    group ``g`` uses ``Sigma[g]``).
    """
    Sig = np.asarray(Sigma, dtype=float)
    stacked = Sig.ndim == 3
    Sigs = Sig if stacked else Sig[None]
    p = patterns[0].X.shape[2]
    C = np.zeros((p, p))
    Xty = np.zeros(p)
    yty = 0.0
    logdet = 0.0
    N = 0
    whitened = []
    for pt in patterns:
        S = Sigs[pt.group][pt.ix]
        Lc = np.linalg.cholesky(S)  # tiny (d <= T): numpy avoids scipy's call overhead
        Linv = np.linalg.inv(Lc)
        Y, X = pt.weighted()
        m, d = Y.shape
        Yw = Y @ Linv.T  # (m, d): each row whitened
        Xw = Linv @ X  # (m, d, p), broadcast over subjects (faster than einsum)
        Xf = Xw.reshape(m * d, p)
        C += Xf.T @ Xf
        Xty += Xf.T @ Yw.ravel()
        yty += float(Yw.ravel() @ Yw.ravel())
        logdet += m * 2.0 * float(np.log(np.diag(Lc)).sum())
        if pt.sw is not None:
            logdet -= 2.0 * float(np.log(pt.sw).sum())
        N += m * d
        whitened.append((Linv, Yw, Xw))
    C = 0.5 * (C + C.T)
    Cc = np.linalg.cholesky(C)
    Cinv = np.linalg.inv(C)
    Cinv = 0.5 * (Cinv + Cinv.T)
    beta = Cinv @ Xty
    rss = yty - float(beta @ Xty)
    if reml:
        value = (
            logdet + 2.0 * float(np.log(np.diag(Cc)).sum()) + rss + (N - p) * _LOG2PI
        )
    else:
        value = logdet + rss + N * _LOG2PI
    grad = None
    if gradient:
        grad = np.zeros_like(Sigs)
        for pt, (Linv, Yw, Xw) in zip(patterns, whitened, strict=True):
            m, d = pt.Y.shape
            rw = Yw - Xw @ beta  # whitened residuals, (m, d)
            # S^-1 (m S - R - P) S^-1 = Linv' (m I - rw'rw - sum Xw Cinv Xw') Linv
            inner = m * np.eye(d) - rw.T @ rw
            if reml:
                Xf = Xw.reshape(m * d, p)
                XC = (Xf @ Cinv).reshape(m, d, p)
                inner -= XC.transpose(1, 0, 2).reshape(d, -1) @ (
                    Xw.transpose(1, 0, 2).reshape(d, -1).T
                )
            g = Linv.T @ inner @ Linv
            grad[pt.group][pt.ix] += 0.5 * (g + g.T)
        if not stacked:
            grad = grad[0]
    return RemlEval(value=value, beta=beta, C=C, Cinv=Cinv, grad_sigma=grad)


def contrast_variance_grad(
    Sigma: Array, patterns: list[Pattern], Cinv: Array, c: Array
) -> Array:
    """d(c'C^{-1}c)/dSigma = sum_i E_i u_i u_i' E_i', u_i = Sigma^{-1} X~_i C^{-1} c
    (shaped as ``Sigma``: (T, T) or (G, T, T))."""
    Sig = np.asarray(Sigma, dtype=float)
    Sigs = Sig if Sig.ndim == 3 else Sig[None]
    G = np.zeros_like(Sigs)
    w = Cinv @ c
    for pt in patterns:
        S = Sigs[pt.group][pt.ix]
        Xw = pt.weighted()[1] @ w  # (m, d)
        U = np.linalg.solve(S, Xw.T)  # (d, m)
        G[pt.group][pt.ix] += U @ U.T
    return G if Sig.ndim == 3 else G[0]


def build_patterns(
    y: Array,
    X: Array,
    subj: npt.NDArray[np.intp],
    vis: npt.NDArray[np.intp],
    group: npt.NDArray[np.intp] | None = None,
    weights: Array | None = None,
) -> list[Pattern]:
    """The rows grouped by (covariance group, observed visits), in the order of
    first appearance by subject code; ``group`` (per row, constant within a
    subject) and ``weights`` (per row, positive) optional."""
    order = np.lexsort((vis, subj))
    subj_o, vis_o = subj[order], vis[order]
    starts = np.flatnonzero(np.r_[True, subj_o[1:] != subj_o[:-1]])
    ends = np.r_[starts[1:], len(subj_o)]
    groups: dict[tuple[int, tuple[int, ...]], list[npt.NDArray[np.intp]]] = {}
    for s, e in zip(starts, ends, strict=True):
        g = 0 if group is None else int(group[order[s]])
        groups.setdefault((g, tuple(vis_o[s:e])), []).append(order[s:e])
    out = []
    for (g, key), rows_list in groups.items():
        rows = np.vstack(rows_list)
        out.append(
            Pattern(
                idx=np.asarray(key, dtype=np.intp),
                Y=y[rows],
                X=X[rows],
                rows=rows,
                group=g,
                sw=None if weights is None else np.sqrt(weights[rows]),
            )
        )
    return out


def numerical_hessian(grad: Callable[[Array], Array], theta: Array) -> Array:
    """Symmetrised central-difference Hessian from a gradient function."""
    k = len(theta)
    H = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * max(1.0, abs(theta[j]))
        e = np.zeros(k)
        e[j] = h
        H[:, j] = (grad(theta + e) - grad(theta - e)) / (2 * h)
    return 0.5 * (H + H.T)
