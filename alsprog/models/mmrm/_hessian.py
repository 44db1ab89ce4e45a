"""The exact Hessian of an MMRM's REML or ML criterion in its covariance parameters.

Owns: :func:`criterion_hessian`.
Leaves: the criterion and its gradient to :mod:`alsprog.models.mmrm._numerics`; the
structures' derivatives to :mod:`alsprog.models.mmrm._covariance`.

With ``V`` block diagonal, ``W = V^{-1}``, ``w = W (y - X beta)``, ``C = X'WX`` and
``P = W - W X C^{-1} X' W`` (Harville 1977), the Hessian of ``-2 l_R`` is
``f_ij = <G, Sigma_ij> - tr(P V_i P V_j) + 2 (w'V_i W V_j w - a_i'C^{-1}a_j)`` with
``G`` the gradient with respect to ``Sigma``, ``Sigma_ij`` the second derivatives of
the covariance, ``a_i = X'W V_i w``; for ML (``beta`` profiled) ``tr(P V_i P V_j)``
becomes ``tr(W V_i W V_j)``.  Both bilinear parts are built as tensors over the
entries of each group's ``Sigma`` (sums over subjects, pattern by pattern) and
contracted with the structures' Jacobians.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import numpy.typing as npt

from alsprog.models.mmrm._covariance import covariance_and_derivatives, n_cov_params
from alsprog.models.mmrm._numerics import Pattern, evaluate_reml, sigmas_from_params

__all__ = ["criterion_hessian"]

Array = npt.NDArray[np.float64]


def criterion_hessian(
    theta: Array,
    structure: str,
    T: int,
    n_groups: int,
    patterns: list[Pattern],
    *,
    reml: bool = True,
) -> Array:
    """Exact Hessian of ``-2 l`` (REML or ML) in ``theta`` (the groups' parameters
    concatenated), shape (k, k).

    Raises
    ------
    numpy.linalg.LinAlgError
        If a covariance or ``C`` is not positive definite.
    """
    theta = np.asarray(theta, dtype=float)
    G = n_groups
    k1 = n_cov_params(structure, T)
    Sigs = sigmas_from_params(theta, structure, T, G)
    ev = evaluate_reml(Sigs, patterns, True, reml=reml)
    grad = cast(Array, ev.grad_sigma)
    Cinv, beta = ev.Cinv, ev.beta
    p = len(beta)
    t1 = np.zeros((G, T, T, T, T))  # sum_s Sinv[d,a] Sinv[b,c]
    t2 = np.zeros((G, T, T, T, T))  # sum_s Sinv[b,c] N[d,a]
    t3 = np.zeros((G, T, T, T, T))  # sum_s Sinv[a,c] w[b] w[d]
    A = np.zeros((G, T, T, p, p))  # sum_s u_a u_b'
    gv = np.zeros((G, T, T, p))  # sum_s u_a w[b]
    for pt in patterns:
        g, idx = pt.group, pt.idx
        Sinv = np.linalg.inv(Sigs[g][pt.ix])
        Sinv = 0.5 * (Sinv + Sinv.T)
        Y, X = pt.weighted()
        m = Y.shape[0]
        w = (Y - X @ beta) @ Sinv  # (m, d)
        d = len(idx)
        U = X.transpose(0, 2, 1) @ Sinv  # (m, p, d): u_{s,a} = U[s, :, a]
        CU = Cinv @ U  # (m, p, d)
        N = U.reshape(-1, d).T @ CU.reshape(-1, d)  # N[a, b] = sum_s u_a'C^-1 u_b
        ix = np.ix_(idx, idx, idx, idx)
        t1[g][ix] += m * np.einsum("da,bc->abcd", Sinv, Sinv)
        t2[g][ix] += np.einsum("bc,da->abcd", Sinv, N)
        t3[g][ix] += np.einsum("ac,bd->abcd", Sinv, w.T @ w)
        A[g][pt.ix] += np.tensordot(U, U, axes=([0], [0])).transpose(1, 3, 0, 2)
        gv[g][pt.ix] += np.tensordot(U, w, axes=([0], [0])).transpose(1, 2, 0)
    n = G * T * T
    Af = A.reshape(n, p, p)
    gf = gv.reshape(n, p)
    t4 = gf @ Cinv @ gf.T
    B = 2.0 * (_blocks(t3, G, T) - t4) - _blocks(t1, G, T)
    if reml:
        M = np.einsum("ij,ajk->aik", Cinv, Af)
        t5 = np.einsum("aij,bji->ab", M, M)
        t2f = _blocks(t2, G, T)
        # tr(P D1 P D2) = T1 - T2 - T2' + T5 (T2' swaps the two perturbations)
        B -= -t2f - t2f.T + t5
    J = np.zeros((G * k1, n))
    H = np.zeros((G * k1, G * k1))
    for g in range(G):
        d = covariance_and_derivatives(theta[g * k1 : (g + 1) * k1], structure, T, 2)
        sl = slice(g * k1, (g + 1) * k1)
        J[sl, g * T * T : (g + 1) * T * T] = cast(Array, d.jac).reshape(k1, T * T)
        H[sl, sl] = np.einsum("klij,ij->kl", cast(Array, d.hess), grad[g])
    H += J @ B @ J.T
    return 0.5 * (H + H.T)


def _blocks(t: Array, G: int, T: int) -> Array:
    """(G, T, T, T, T) per-group tensors as the block-diagonal (G T^2, G T^2)."""
    n = T * T
    out = np.zeros((G * n, G * n))
    for g in range(G):
        out[g * n : (g + 1) * n, g * n : (g + 1) * n] = t[g].reshape(n, n)
    return out
