"""Latent-class linear mixed model with a random-effects covariance per class.

Owns: the exact marginal log-likelihood, its analytic gradient and the class
posteriors when each class has its own random-effects covariance ``G_k``
(:func:`evaluate_class_cov`: flexmix's ``FLXMRlmm`` with ``varFix =
c(Random = FALSE, Residual = TRUE)``, lcmm's ``nwg`` without the proportionality),
and its EM step (:func:`em_step_class_cov`: each ``G_k`` the posterior-weighted
mean of the class's expected random-effect second moments).
Leaves: the shared-covariance model, the layout, the Woodbury pieces, the
membership logit and the GLS step to :mod:`alsprog.models.latent._numerics`, which
calls in here when :attr:`Layout.class_cov` is set.

Given the class, ``y_i ~ N(X_i beta_k, Z_i G_k Z_i' + s2 I)``; every per-subject
quantity is the shared model's with ``L_k`` (``G_k = L_k L_k'``) in place of ``L``,
computed class by class (a loop over K of vectorised steps over subjects).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from alsprog.models.latent._numerics import (
    _LOG2PI,
    Evaluation,
    Layout,
    SubjectStats,
    _logsumexp,
    _pieces,
    _residual_products,
    log_prior,
    membership_step,
    solve_betas,
)

__all__ = ["em_step_class_cov", "evaluate_class_cov"]

Array = npt.NDArray[np.float64]


def evaluate_class_cov(
    x: Array, lay: Layout, st: SubjectStats, *, grad: bool = True
) -> Evaluation:
    """:func:`~alsprog.models.latent._numerics.evaluate` with one covariance per
    class (``L`` and ``G`` of shape (K, q, q))."""
    betas, L, _, s2, gamma = lay.unpack(x)
    K, q = lay.K, lay.q
    logpi = log_prior(gamma, st)
    Ztr, Xtr, rtr = _residual_products(st, betas)
    N = st.n_subjects
    logd = np.empty((N, K))
    parts = []
    for k in range(K):
        pc = _pieces(st, L[k], s2, ztvz=grad, xtvx=False)
        u = Ztr[:, k] @ L[k]  # (N, q): L_k' Z' r_k
        Miu = np.einsum("nqr,nr->nq", pc.Mi, u)
        uMu = np.sum(u * Miu, axis=1)
        quad = (rtr[:, k] - uMu) / s2
        logd[:, k] = -0.5 * (st.n * _LOG2PI + pc.logdet + quad) + logpi[:, k]
        parts.append((pc, Miu, uMu))
    li = _logsumexp(logd)
    W = np.exp(logd - li[:, None])
    g = None
    if grad:
        gb = np.empty((K, lay.p))
        gLs = []
        gs2 = 0.0
        r, c = np.tril_indices(q)
        d = np.arange(q)
        for k, (pc, Miu, uMu) in enumerate(parts):
            w = W[:, k]
            LMiu = Miu @ L[k].T  # (N, q)
            XVr = (Xtr[:, k] - np.einsum("nq,nqp->np", LMiu, st.ZtX)) / s2
            ZVr = (Ztr[:, k] - np.einsum("nq,nqr->nr", LMiu, st.ZtZ)) / s2
            gb[k] = w @ XVr
            assert pc.ZtVZ is not None
            A = 0.5 * ((ZVr * w[:, None]).T @ ZVr - np.tensordot(w, pc.ZtVZ, 1))
            PMiu = np.einsum("nqr,nr->nq", pc.P, Miu)
            vtv = (rtr[:, k] - 2.0 * uMu + np.sum(Miu * PMiu, axis=1)) / s2**2
            gs2 += 0.5 * (float(w @ vtv) - float(w @ pc.tr_Vinv))
            gL = 2.0 * A @ L[k]
            gL[d, d] *= L[k][d, d]
            gLs.append(gL[r, c])
        dW = W[:, 1:] - np.exp(logpi[:, 1:])
        g_gamma = dW.sum(axis=0) if st.C is None else (dW.T @ st.C).ravel()
        g = np.concatenate(
            [
                gb[:, lay.mix].ravel(),
                gb[:, ~lay.mix].sum(axis=0),
                np.concatenate(gLs),
                [gs2 * s2],
                g_gamma,
            ]
        )
    return Evaluation(float(li.sum()), li, W, g)


def em_step_class_cov(x: Array, lay: Layout, st: SubjectStats, W: Array) -> Array:
    """One M-step given posteriors ``W`` with one covariance per class: GLS fixed
    effects at the current ``V_ik``, each ``G_k`` the ``W``-weighted mean of
    ``E[b b' | y, k]``, ``s2`` the expected residual sum of squares over the
    visits, the membership logit as in the shared model."""
    _, L, G, s2, gamma = lay.unpack(x)
    K, p, q = lay.K, lay.p, lay.q
    pcs = [_pieces(st, L[k], s2) for k in range(K)]
    H = np.empty((K, p, p))
    rhs = np.empty((K, p))
    for k, pc in enumerate(pcs):
        assert pc.XtVX is not None
        LtZtX = L[k].T @ st.ZtX  # (N, q, p)
        Miv = np.einsum("nqr,nr->nq", pc.Mi, st.Zty @ L[k])
        XtVy = (st.Xty - np.einsum("nqp,nq->np", LtZtX, Miv)) / s2
        H[k] = np.tensordot(W[:, k], pc.XtVX, axes=1)
        rhs[k] = W[:, k] @ XtVy
    new = solve_betas(H, rhs, lay)
    Ztr, _, rtr = _residual_products(st, new)
    G_new = np.empty((K, q, q))
    rss = 0.0
    for k, pc in enumerate(pcs):
        assert pc.ZtVZ is not None
        w = W[:, k]
        u = Ztr[:, k] @ L[k]
        LMiu = np.einsum("nqr,nr->nq", pc.Mi, u) @ L[k].T
        ZVr = (Ztr[:, k] - np.einsum("nq,nqr->nr", LMiu, st.ZtZ)) / s2
        B = ZVr @ G[k]  # (N, q): posterior means G_k Z' V^-1 r_k
        Cm = G[k][None] - G[k] @ pc.ZtVZ @ G[k]  # (N, q, q)
        S = (B * w[:, None]).T @ B + np.tensordot(w, Cm, 1)
        G_new[k] = S / max(float(w.sum()), 1e-12)
        BZZ = np.einsum("nq,nqr->nr", B, st.ZtZ)
        rss_k = rtr[:, k] - 2.0 * np.sum(B * Ztr[:, k], axis=1) + np.sum(BZZ * B, 1)
        rss += float(w @ rss_k) + float(w @ np.sum(Cm * st.ZtZ, axis=(1, 2)))
    ridge = 1e-8 * np.trace(G_new, axis1=1, axis2=2)[:, None, None] / max(q, 1)
    G_new = 0.5 * (G_new + np.swapaxes(G_new, 1, 2)) + ridge * np.eye(q)
    gamma_new = membership_step(gamma, st, W)
    return lay.pack(new, G_new, rss / st.n_obs, gamma=gamma_new)
