"""Kenward-Roger inference for the fixed effects, as pbkrtest computes it.

Owns: :func:`kr_state` (the adjusted covariance of the fixed effects, Kenward &
Roger 1997, with pbkrtest's ``vcovAdj``: the variance components are the
elements of each random-effects term's covariance matrix and the residual
variance, ``Sigma = sum_r gamma_r G_r``) and :func:`kr_ddf` (pbkrtest's
``Lb_ddf`` / ``.KR_adjust``: the denominator df and F scaling of a test of
``L beta``).
Leaves: which tests use them to :mod:`alsprog.models.lmm._ddf`.

References: Kenward MG, Roger JH. Small sample inference for fixed effects from
restricted maximum likelihood. Biometrics 1997;53:983-997.  Halekoh U, Højsgaard S.
A Kenward-Roger approximation and parametric bootstrap methods for tests in linear
mixed models - the R package pbkrtest. J Stat Softw 2014;59(9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["KRState", "kr_ddf", "kr_state", "kr_state_factors"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class KRState:
    """pbkrtest's ``vcovAdj`` result.

    Attributes
    ----------
    vcov : ndarray, shape (p, p)
        The unadjusted ``Phi = (X' Sigma^-1 X)^-1``.
    vcov_adj : ndarray, shape (p, p)
        ``Phi_A = Phi + 2 Phi U Phi``.
    P : ndarray, shape (m, p, p)
        ``-X' Sigma^-1 G_r Sigma^-1 X`` per variance component.
    W : ndarray, shape (m, m)
        ``2 I_E^-1``, the inverse expected information of the components.
    """

    vcov: Array
    vcov_adj: Array
    P: Array
    W: Array


def _components(
    blocks: list[tuple[int, int]],
) -> list[tuple[int, int]]:
    """The ``(a, b)`` covariance elements of every term, then none for the
    residual: each term's lower triangle, column by column (pbkrtest's order)."""
    out = []
    for lo, hi in blocks:
        for b in range(lo, hi):
            for a in range(b, hi):
                out.append((a, b))
    return out


def kr_state(
    X: Array,
    Z: Array,
    groups: npt.NDArray[np.intp],
    cov_re: Array,
    sigma2: float,
    blocks: list[tuple[int, int]],
) -> KRState:
    """The Kenward-Roger adjusted covariance of a one-grouping-factor mixed model.

    Parameters
    ----------
    X, Z : ndarray
        Fixed- and random-effects designs of the fit's rows.
    groups : ndarray of int
        Each row's group.
    cov_re : ndarray, shape (q, q)
        Covariance of a group's random effects (absolute scale).
    sigma2 : float
        Residual variance.
    blocks : list of (int, int)
        The random-effects terms as column ranges of ``Z`` (uncorrelated terms
        have no covariance parameter between them).
    """
    return kr_state_factors(X, [(Z, groups, cov_re, blocks)], sigma2)


def _row_blocks(codes: list[npt.NDArray[np.intp]]) -> npt.NDArray[np.intp]:
    """Each row's block of the marginal covariance: rows sharing a level of any
    factor, transitively (a site with its subjects; a whole crossed design)."""
    if len(codes) == 1:
        return codes[0]
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    sizes = [int(c.max()) + 1 for c in codes]
    offs = np.cumsum([0, *sizes[:-1]])
    first = codes[0] + offs[0]
    rows = np.concatenate([first for _ in codes[1:]])
    cols = np.concatenate([c + o for c, o in zip(codes[1:], offs[1:], strict=True)])
    n_nodes = int(sum(sizes))
    graph = sparse.coo_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(n_nodes, n_nodes)
    )
    _, label = connected_components(graph, directed=False)
    return label[first].astype(np.intp)


def kr_state_factors(
    X: Array,
    factors: list[tuple[Array, npt.NDArray[np.intp], Array, list[tuple[int, int]]]],
    sigma2: float,
) -> KRState:
    """:func:`kr_state` for one or several grouping factors.

    ``factors`` holds, per grouping factor, ``(Z, codes, cov_re, blocks)`` as
    :func:`kr_state` takes them; the variance components are every factor's terms'
    covariance elements (pbkrtest's ``get_SigmaG``), then the residual variance.
    """
    comps = [(f, a, c) for f, fac in enumerate(factors) for a, c in _components(fac[3])]
    m = len(comps) + 1
    p = X.shape[1]
    groups = _row_blocks([fac[1] for fac in factors])
    order = np.argsort(groups, kind="stable")
    g_sorted = groups[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    sizes = np.diff(np.r_[starts, len(groups)])
    P = np.zeros((m, p, p))
    Q = np.zeros((m, m, p, p))
    K = np.zeros((m, m))
    XtSiX = np.zeros((p, p))
    single = len(factors) == 1
    for n in np.unique(sizes):
        sel = starts[sizes == n]
        idx = order[sel[:, None] + np.arange(n)[None, :]]  # (B, n) row numbers
        Xb = X[idx]  # (B, n, p)
        Sig = sigma2 * np.eye(n) + np.zeros((len(sel), 1, 1))
        parts = []
        for Zf, codes, cov_re, _ in factors:
            Zb = Zf[idx]  # (B, n, q)
            cb = codes[idx]
            same = None if single else (cb[:, :, None] == cb[:, None, :])
            parts.append((Zb, same))
            S_f = np.einsum("bia,ac,bjc->bij", Zb, cov_re, Zb)
            Sig = Sig + (S_f if same is None else S_f * same)
        Si = np.linalg.inv(Sig)
        Si = 0.5 * (Si + np.swapaxes(Si, 1, 2))
        TT = Si @ Xb
        XtSiX += np.einsum("bnp,bnk->pk", Xb, TT)
        H = []
        for f, a, c in comps:
            Zb, same = parts[f]
            G = np.einsum("bi,bj->bij", Zb[..., a], Zb[..., c])
            if a != c:
                G = G + np.swapaxes(G, 1, 2)
            if same is not None:
                G = G * same
            H.append(G @ Si)
        H.append(np.broadcast_to(Si, Si.shape))  # residual: G = I
        HX = [h @ Xb for h in H]
        for r in range(m):
            P[r] -= np.einsum("bnp,bnk->pk", HX[r], TT)
            SiOr = Si @ HX[r]
            for s in range(r, m):
                Q[r, s] += np.einsum("bnp,bnk->pk", SiOr, HX[s])
                K[r, s] += np.einsum("bij,bji->", H[r], H[s])
    Phi = np.linalg.inv(XtSiX)
    Phi = 0.5 * (Phi + Phi.T)
    P = 0.5 * (P + np.swapaxes(P, 1, 2))
    IE2 = np.empty((m, m))
    for r in range(m):
        PhiPr = Phi @ P[r]
        for s in range(r, m):
            IE2[r, s] = IE2[s, r] = (
                K[r, s] - 2.0 * np.sum(Phi * Q[r, s]) + np.sum(PhiPr * (P[s] @ Phi))
            )
    condi = float(np.min(np.abs(np.linalg.eigvalsh(IE2))))
    W = 2.0 * (np.linalg.inv(IE2) if condi > 1e-10 else np.linalg.pinv(IE2))
    W = 0.5 * (W + W.T)
    U = np.zeros((p, p))
    for r in range(m - 1):
        for s in range(r + 1, m):
            U += W[r, s] * (Q[r, s] - P[r] @ Phi @ P[s])
    U = U + U.T
    for r in range(m):
        U += W[r, r] * (Q[r, r] - P[r] @ Phi @ P[r])
    PhiA = Phi + 2.0 * Phi @ U @ Phi
    return KRState(Phi, 0.5 * (PhiA + PhiA.T), P, W)


def kr_ddf(L: Array, state: KRState) -> tuple[float, float]:
    """Denominator df and F scaling of the test of ``L beta`` (rows of ``L``
    linearly independent), pbkrtest's ``.KR_adjust``."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    Phi = state.vcov
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    TP = Theta @ Phi
    m = len(state.P)
    u = [TP @ state.P[r] @ Phi for r in range(m)]
    A1 = A2 = 0.0
    for r in range(m):
        for s in range(r, m):
            e = 1.0 if r == s else 2.0
            A1 += e * state.W[r, s] * np.trace(u[r]) * np.trace(u[s])
            A2 += e * state.W[r, s] * np.sum(u[r] * u[s].T)
    q = float(np.linalg.matrix_rank(L))
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1.0) * A1 - (q + 4.0) * A2) / ((q + 2.0) * A2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2.0 - g) / den
    V0 = 1.0 + c1 * B
    V1 = 1.0 - c2 * B
    V2 = 1.0 - c3 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    num = 1.0 - A2 / q
    ratio = 1.0 if abs(num) < 1e-14 and abs(V1) < 1e-14 else num / V1
    rho = ratio**2 * V0 / V2 / q
    df2 = 4.0 + (q + 2.0) / (q * rho - 1.0)
    scaling = 1.0 if abs(df2 - 2.0) < 0.01 else df2 * (1.0 - A2 / q) / (df2 - 2.0)
    return float(df2), float(scaling)
