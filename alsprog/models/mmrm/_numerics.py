"""Array functions behind :class:`~alsprog.models.MMRM` (GLS with visit covariance).

Owns: the covariance structures over visits (unstructured, compound symmetry, AR(1))
as maps from unconstrained parameters, the REML criterion with its exact gradient
(data grouped by observed-visit pattern), the gradient of a contrast's variance, and a
finite-difference Hessian used for Satterthwaite degrees of freedom.
Leaves: formulas, data frames, LS means and reporting to :mod:`alsprog.models.mmrm._model`.

The REML criterion is ``-2 l_R = sum_i log|S_i| + log|C| + sum_i r_i'S_i^{-1}r_i +
(N - p) log(2 pi)`` with ``S_i`` the visits-observed block of the covariance ``Sigma``,
``C = sum_i X_i'S_i^{-1}X_i`` and ``beta`` profiled by GLS; its gradient with respect to
``Sigma`` is ``sum_i E_i S_i^{-1}(S_i - r_i r_i' - X_i C^{-1} X_i')S_i^{-1} E_i'``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Pattern",
    "RemlEval",
    "evaluate_reml",
    "build_patterns",
    "contrast_variance_grad",
    "cov_jacobian",
    "covariance_from_params",
    "mmrm_reml_criterion",
    "n_cov_params",
    "numerical_hessian",
    "start_params",
]

Array = npt.NDArray[np.float64]
_LOG2PI = float(np.log(2 * np.pi))


# ----------------------------------------------------------------- covariance maps
def n_cov_params(structure: str, n_visits: int) -> int:
    """Number of covariance parameters of a structure over ``n_visits`` visits."""
    if structure == "unstructured":
        return n_visits * (n_visits + 1) // 2
    return 2


def covariance_from_params(
    theta: npt.ArrayLike, structure: str, n_visits: int
) -> Array:
    """Visit covariance matrix from unconstrained parameters.

    Parameters
    ----------
    theta : array-like
        ``"unstructured"``: the lower triangle of the Cholesky factor, column by column,
        with the diagonal on the log scale.  ``"compound_symmetry"``: ``log sigma`` and
        ``z`` with ``rho = (e^z - 1)/(e^z + T - 1)``.  ``"ar1"``: ``log sigma`` and
        ``z`` with ``rho = tanh(z)``, ``Sigma_jk = sigma^2 rho^|j-k|``.
    structure : {"unstructured", "compound_symmetry", "ar1"}
    n_visits : int
        Number of visits T.

    Returns
    -------
    ndarray, shape (T, T)
        Works for complex ``theta`` too (used for complex-step derivatives).

    Examples
    --------
    >>> covariance_from_params([np.log(2.0), 0.0], "ar1", 3).round(3).tolist()
    [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]]
    """
    th = np.asarray(theta)
    T = n_visits
    if structure == "unstructured":
        L = np.zeros((T, T), dtype=th.dtype)
        r, c = _tril_colmajor(T)
        vals = th.copy()
        vals[r == c] = np.exp(th[r == c])
        L[r, c] = vals
        return L @ L.T
    s2 = np.exp(2 * th[0])
    if structure == "compound_symmetry":
        ez = np.exp(th[1])
        rho = (ez - 1) / (ez + T - 1)
        return s2 * ((1 - rho) * np.eye(T) + rho * np.ones((T, T)))
    if structure == "ar1":
        rho = np.tanh(th[1])
        lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
        return s2 * rho**lag
    raise ValueError(f"unknown structure {structure!r}")


def _tril_colmajor(T: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    r, c = np.tril_indices(T)
    o = np.lexsort((r, c))
    return r[o], c[o]


def cov_jacobian(theta: Array, structure: str, T: int) -> Array:
    """dSigma/dtheta_k, shape (k, T, T), by complex step (exact to rounding)."""
    h = 1e-30
    out = np.empty((len(theta), T, T))
    for k in range(len(theta)):
        tc = theta.astype(complex)
        tc[k] += 1j * h
        out[k] = covariance_from_params(tc, structure, T).imag / h
    return out


def start_params(Sigma0: Array, structure: str) -> Array:
    T = Sigma0.shape[0]
    if structure == "unstructured":
        try:
            L = np.linalg.cholesky(Sigma0)
        except np.linalg.LinAlgError:
            L = np.diag(np.sqrt(np.diag(Sigma0)))
        r, c = _tril_colmajor(T)
        v = L[r, c].copy()
        v[r == c] = np.log(v[r == c])
        return np.asarray(v, dtype=float)
    return np.array([0.5 * np.log(np.mean(np.diag(Sigma0))), 0.0])


# ------------------------------------------------------------------- the criterion
@dataclass(frozen=True)
class Pattern:
    """Subjects sharing one set of observed visits.

    ``idx``: visit indices (sorted); ``Y``: (m, d); ``X``: (m, d, p); ``rows``: the
    positions in the data of each subject's observations, (m, d).
    """

    idx: npt.NDArray[np.intp]
    Y: Array
    X: Array
    rows: npt.NDArray[np.intp]


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
    Sigma : ndarray, shape (T, T)
        Covariance over all visits.
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
    grad : ndarray, shape (T, T) or None

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``Sigma`` or ``C`` is not positive definite.
    """
    ev = evaluate_reml(Sigma, patterns, gradient)
    return ev.value, ev.beta, ev.Cinv, ev.grad_sigma


def evaluate_reml(Sigma: Array, patterns: list[Pattern], gradient: bool) -> RemlEval:
    """REML criterion, GLS estimate, ``C`` and ``C^{-1}`` (and dCriterion/dSigma)."""
    p = patterns[0].X.shape[2]
    C = np.zeros((p, p))
    Xty = np.zeros(p)
    yty = 0.0
    logdet = 0.0
    N = 0
    whitened = []
    for pt in patterns:
        S = Sigma[np.ix_(pt.idx, pt.idx)]
        Lc = np.linalg.cholesky(S)  # tiny (d <= T): numpy avoids scipy's call overhead
        Linv = np.linalg.inv(Lc)
        m, d = pt.Y.shape
        Yw = pt.Y @ Linv.T  # (m, d): each row whitened
        Xw = np.einsum("ij,mjp->mip", Linv, pt.X)  # (m, d, p)
        Xf = Xw.reshape(m * d, p)
        C += Xf.T @ Xf
        Xty += Xf.T @ Yw.ravel()
        yty += float(Yw.ravel() @ Yw.ravel())
        logdet += m * 2.0 * float(np.log(np.diag(Lc)).sum())
        N += m * d
        whitened.append((Linv, Yw, Xw))
    C = 0.5 * (C + C.T)
    Cc = np.linalg.cholesky(C)
    Cinv = np.linalg.inv(C)
    Cinv = 0.5 * (Cinv + Cinv.T)
    beta = Cinv @ Xty
    rss = yty - float(beta @ Xty)
    value = logdet + 2.0 * float(np.log(np.diag(Cc)).sum()) + rss + (N - p) * _LOG2PI
    grad = None
    if gradient:
        T = Sigma.shape[0]
        grad = np.zeros((T, T))
        for pt, (Linv, Yw, Xw) in zip(patterns, whitened, strict=True):
            m, d = pt.Y.shape
            rw = Yw - Xw @ beta  # whitened residuals, (m, d)
            # S^-1 (m S - R - P) S^-1 = Linv' (m I - rw'rw - sum Xw Cinv Xw') Linv
            Xf = Xw.reshape(m * d, p)
            XC = (Xf @ Cinv).reshape(m, d, p)
            inner = m * np.eye(d) - rw.T @ rw - np.einsum("mip,mjp->ij", XC, Xw)
            g = Linv.T @ inner @ Linv
            grad[np.ix_(pt.idx, pt.idx)] += 0.5 * (g + g.T)
    return RemlEval(value=value, beta=beta, C=C, Cinv=Cinv, grad_sigma=grad)


def contrast_variance_grad(
    Sigma: Array, patterns: list[Pattern], Cinv: Array, c: Array
) -> Array:
    """d(c'C^{-1}c)/dSigma = sum_i E_i u_i u_i' E_i', u_i = S_i^{-1} X_i C^{-1} c."""
    T = Sigma.shape[0]
    G = np.zeros((T, T))
    w = Cinv @ c
    for pt in patterns:
        S = Sigma[np.ix_(pt.idx, pt.idx)]
        Xw = pt.X @ w  # (m, d)
        U = np.linalg.solve(S, Xw.T)  # (d, m)
        G[np.ix_(pt.idx, pt.idx)] += U @ U.T
    return G


def build_patterns(
    y: Array, X: Array, subj: npt.NDArray[np.intp], vis: npt.NDArray[np.intp]
) -> list[Pattern]:
    order = np.lexsort((vis, subj))
    subj_o, vis_o = subj[order], vis[order]
    starts = np.flatnonzero(np.r_[True, subj_o[1:] != subj_o[:-1]])
    ends = np.r_[starts[1:], len(subj_o)]
    groups: dict[tuple[int, ...], list[npt.NDArray[np.intp]]] = {}
    for s, e in zip(starts, ends, strict=True):
        groups.setdefault(tuple(vis_o[s:e]), []).append(order[s:e])
    out = []
    for key, rows_list in groups.items():
        rows = np.vstack(rows_list)
        out.append(
            Pattern(idx=np.asarray(key, dtype=np.intp), Y=y[rows], X=X[rows], rows=rows)
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
