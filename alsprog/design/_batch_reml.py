"""Exact REML fits of many simulated trials at once (random intercept and slope).

Owns: :func:`batch_reml`, a vectorised-over-trials version of the profiled REML
criterion of :mod:`alsprog.models.lmm._numerics` (lme4's formulation, Bates et al.
2015) for the model ``y_ij = (u_i ⊗ z_j)'β + z_j'b_i + e_ij`` with ``z_j = (1, t_j)``,
its exact gradient, and a bounded Newton optimiser.  It reaches the same optimum as
:func:`~alsprog.models.lmm._numerics.fit_profiled` (tested to 1e-6), only faster when
hundreds of trials are fitted together.
Leaves: simulation to :mod:`alsprog.design._simulate`.

Shapes: ``K`` trials, ``G`` patients per trial, ``r`` patient-level covariates ``u_i``
(intercept, arm, markers), ``p = 2 r`` fixed effects ordered ``(u_k ⊗ z_b)``, so the
coefficient of ``arm × time`` is ``β[3]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
_LOG2PI = float(np.log(2 * np.pi))


@dataclass
class BatchStats:
    """Per-trial sufficient statistics: ``S = Z_i'Z_i``, ``u_i``, ``Z_i'y_i``."""

    S: Array  # (K, G, 2, 2)
    U: Array  # (K, G, r)
    Zty: Array  # (K, G, 2)
    yty: Array  # (K,)
    n: Array  # (K,) observations

    @property
    def UUt(self) -> Array:
        """``u_i u_i'`` flattened and transposed, shape (K, r*r, G), contiguous."""
        uu = self.__dict__.get("_uut")
        if uu is None:
            K, G, r = self.U.shape
            uu = (self.U[..., :, None] * self.U[..., None, :]).reshape(K, G, r * r)
            uu = np.ascontiguousarray(np.swapaxes(uu, 1, 2))
            self.__dict__["_uut"] = uu
        return uu

    @property
    def Ut(self) -> Array:
        """``U`` transposed, shape (K, r, G), contiguous."""
        ut = self.__dict__.get("_ut")
        if ut is None:
            ut = np.ascontiguousarray(np.swapaxes(self.U, 1, 2))
            self.__dict__["_ut"] = ut
        return ut

    @classmethod
    def from_arrays(cls, times: Array, mask: Array, y: Array, U: Array) -> BatchStats:
        """Statistics from a visit mask ``(K, G, J)``, outcomes and covariates."""
        z = np.stack([np.ones_like(times), times], axis=1)  # (J, 2)
        zz = np.einsum("ja,jb->jab", z, z)
        S = np.einsum("kgj,jab->kgab", mask, zz)
        ym = y * mask
        Zty = ym @ z
        return cls(
            S=S,
            U=U,
            Zty=Zty,
            yty=np.einsum("kgj,kgj->k", ym, ym),
            n=mask.sum(axis=(1, 2)),
        )


@dataclass
class _Eval:
    deviance: Array  # (K,)
    grad: Array  # (K, 3)
    beta: Array  # (K, p)
    Cinv: Array  # (K, p, p)
    r2: Array  # (K,)


def _quiet_evaluate(theta: Array, st: BatchStats) -> _Eval:
    """:func:`evaluate` without floating-point warnings: a trial whose numbers break
    down gives a non-finite criterion or gradient, which the optimiser handles (it
    leaves that trial unconverged)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return evaluate(theta, st)


def evaluate(theta: Array, st: BatchStats, *, gradient: bool = True) -> _Eval:
    """REML criterion (and its gradient in theta) of every trial at ``theta``.

    Every 2 x 2 per-patient matrix is held as its components (arrays of shape
    ``(K, G)``), so each step is an element-wise pass over patients.
    """
    K, G, r = st.U.shape
    p = 2 * r
    l0, l1, l2 = (theta[:, j : j + 1] for j in range(3))
    s00, s01, s11 = st.S[..., 0, 0], st.S[..., 0, 1], st.S[..., 1, 1]
    y0, y1 = st.Zty[..., 0], st.Zty[..., 1]
    # M = Lambda' S Lambda + I
    sl00 = s00 * l0 + s01 * l1
    sl10 = s01 * l0 + s11 * l1
    m00 = l0 * sl00 + l1 * sl10 + 1.0
    m01 = (l0 * s01 + l1 * s11) * l2
    m11 = l2 * l2 * s11 + 1.0
    det = m00 * m11 - m01 * m01
    i00, i01, i11 = m11 / det, -m01 / det, m00 / det
    # Q = Lambda M^-1 Lambda'
    q00 = l0 * l0 * i00
    q01 = l0 * (i00 * l1 + i01 * l2)
    q11 = (l1 * i00 + l2 * i01) * l1 + (l1 * i01 + l2 * i11) * l2
    # SQ and A = S - S Q S (= Z'V^-1 Z)
    sq00 = s00 * q00 + s01 * q01
    sq01 = s00 * q01 + s01 * q11
    sq10 = s01 * q00 + s11 * q01
    sq11 = s01 * q01 + s11 * q11
    a00 = s00 - (sq00 * s00 + sq01 * s01)
    a01 = s01 - (sq00 * s01 + sq01 * s11)
    a11 = s11 - (sq10 * s01 + sq11 * s11)
    h0 = y0 - (sq00 * y0 + sq01 * y1)  # Z'V^-1 y
    h1 = y1 - (sq10 * y0 + sq11 * y1)
    UUt = st.UUt  # (K, r*r, G)
    Cab = UUt @ np.stack([a00, a01, a11], axis=2)  # (K, r*r, 3)
    C = np.empty((K, r, 2, r, 2))
    Cr = Cab.reshape(K, r, r, 3)
    C[:, :, 0, :, 0] = Cr[..., 0]
    C[:, :, 0, :, 1] = Cr[..., 1]
    C[:, :, 1, :, 0] = Cr[..., 1]
    C[:, :, 1, :, 1] = Cr[..., 2]
    C = C.reshape(K, p, p)
    C = 0.5 * (C + np.swapaxes(C, 1, 2))
    xvy = (st.Ut @ np.stack([h0, h1], axis=2)).reshape(K, p)
    yvy = st.yty - (y0 * y0 * q00 + 2.0 * y0 * y1 * q01 + y1 * y1 * q11).sum(axis=1)
    sign, logdet_c = np.linalg.slogdet(C)
    bad = (sign <= 0) | np.any(det <= 0, axis=1)
    if bad.any():  # numerically broken theta (far out): infinite criterion
        C[bad] = np.eye(p)
    Cinv = np.linalg.inv(C)
    beta = np.einsum("kij,kj->ki", Cinv, xvy)
    r2 = np.maximum(yvy - np.einsum("ki,ki->k", beta, xvy), np.finfo(float).tiny)
    nu = st.n - p
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = (
            np.log(np.where(det > 0, det, 1.0)).sum(axis=1)
            + logdet_c
            + nu * (1.0 + _LOG2PI + np.log(r2 / nu))
        )
    dev = np.where(bad, np.inf, dev)
    grad = np.zeros((K, 3))
    if gradient:
        # sum_g B_g C^-1 B_g' with B_g = u_g' ⊗ A_g equals sum_g A_g W_g A_g with
        # W_g[b, c] = sum_ij u_gi u_gj Cinv[(i, b), (j, c)]
        Ci = Cinv.reshape(K, r, 2, r, 2).transpose(0, 1, 3, 2, 4).reshape(K, r * r, 4)
        Wg = np.swapaxes(UUt, 1, 2) @ Ci  # (K, G, 4)
        w00, w01, w11 = Wg[..., 0], 0.5 * (Wg[..., 1] + Wg[..., 2]), Wg[..., 3]
        aw00 = a00 * w00 + a01 * w01
        aw01 = a00 * w01 + a01 * w11
        aw10 = a01 * w00 + a11 * w01
        aw11 = a01 * w01 + a11 * w11
        b00 = (aw00 * a00 + aw01 * a01).sum(axis=1)
        b01 = (aw00 * a01 + aw01 * a11).sum(axis=1)
        b11 = (aw10 * a01 + aw11 * a11).sum(axis=1)
        v = st.U @ beta.reshape(K, r, 2)  # (K, G, 2)
        e0 = h0 - (a00 * v[..., 0] + a01 * v[..., 1])
        e1 = h1 - (a01 * v[..., 0] + a11 * v[..., 1])
        f = nu / r2
        d00 = a00.sum(axis=1) - b00 - f * (e0 * e0).sum(axis=1)
        d01 = a01.sum(axis=1) - b01 - f * (e0 * e1).sum(axis=1)
        d11 = a11.sum(axis=1) - b11 - f * (e1 * e1).sum(axis=1)
        t0, t1, t2 = theta[:, 0], theta[:, 1], theta[:, 2]
        grad[:, 0] = 2.0 * (d00 * t0 + d01 * t1)
        grad[:, 1] = 2.0 * (d01 * t0 + d11 * t1)
        grad[:, 2] = 2.0 * d11 * t2
    return _Eval(deviance=dev, grad=grad, beta=beta, Cinv=Cinv, r2=r2)


@dataclass
class BatchFit:
    """Estimates of every trial at its REML optimum."""

    theta: Array  # (K, 3)
    beta: Array  # (K, p)
    cov_beta: Array  # (K, p, p)
    sigma2: Array  # (K,)
    deviance: Array  # (K,)
    converged: npt.NDArray[np.bool_]  # (K,)
    n_iter: int


def batch_reml(
    st: BatchStats, theta0: Array, *, tol: float = 1e-8, max_iter: int = 60
) -> BatchFit:
    """Minimise every trial's REML criterion by bounded Newton steps.

    The Hessian is the forward difference of the exact gradient; a step that does
    not lower the criterion is retried with Levenberg damping; the diagonal of Lambda stays >= 0 (a coordinate at
    its bound with the gradient pointing outward is held there).

    Parameters
    ----------
    st : BatchStats
    theta0 : ndarray, shape (3,) or (K, 3)
        Start (lme4's relative covariance factor: ``[L00, L10, L11]``).
    tol : float, default 1e-8
        Newton steps below ``tol * max(1, |theta|)`` count as converged.
    max_iter : int, default 60

    Returns
    -------
    BatchFit
    """
    K = st.S.shape[0]
    theta = np.broadcast_to(np.asarray(theta0, float), (K, 3)).copy()
    # start strictly inside: at 0 the criterion is flat in a diagonal entry
    theta[:, [0, 2]] = np.maximum(theta[:, [0, 2]], 1e-4)
    cur = _quiet_evaluate(theta, st)
    # a trial whose criterion or gradient is not finite at the start (a rank-deficient
    # design, a degenerate outcome) is left unconverged for the caller's one-by-one
    # refit; it must not stop the others
    failed = ~(np.isfinite(cur.deviance) & np.isfinite(cur.grad).all(axis=1))
    done = failed.copy()
    lower = np.array([0.0, -np.inf, 0.0])
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        act = ~done
        if not act.any():
            break
        th = theta[act]
        sub = _subset(st, act)
        g = cur.grad[act]
        # Hessian from forward differences of the exact gradient
        H = np.empty((th.shape[0], 3, 3))
        for j in range(3):
            step = 1e-6 * np.maximum(1.0, np.abs(th[:, j]))
            tj = th.copy()
            tj[:, j] += step
            H[:, :, j] = (_quiet_evaluate(tj, sub).grad - g) / step[:, None]
        H = 0.5 * (H + np.swapaxes(H, 1, 2))
        # a Hessian that is not finite (the criterion broke down near this theta):
        # no step, the trial stops unconverged
        broken = ~np.isfinite(H).all(axis=(1, 2))
        H[broken] = np.eye(3)
        g = np.where(broken[:, None], 0.0, g)
        # hold coordinates at their lower bound when the gradient pushes outward
        fixed = (th <= lower + 1e-12) & (g > 0)
        Hf = H.copy()
        gf = np.where(fixed, 0.0, g)
        for j in range(3):
            Hf[:, j, :] = np.where(fixed[:, [j]], 0.0, Hf[:, j, :])
            Hf[:, :, j] = np.where(fixed[:, [j]], 0.0, Hf[:, :, j])
            Hf[:, j, j] = np.where(fixed[:, j], 1.0, Hf[:, j, j])
        # Levenberg damping where the Hessian is not positive definite
        eig_min = np.linalg.eigvalsh(Hf)[:, 0]
        scale = np.maximum(np.abs(Hf).max(axis=(1, 2)), 1e-12)
        mu = np.where(eig_min < 1e-10 * scale, 1e-6 * scale - eig_min, 0.0)
        eye = np.eye(3)
        delta = -np.linalg.solve(Hf + mu[:, None, None] * eye, gf[..., None])[..., 0]
        decrement = -np.einsum("ki,ki->k", gf, delta)  # g' H^-1 g (>= 0)
        f0 = cur.deviance[act]
        new_th = _to_boundary(th, delta)
        new = _quiet_evaluate(new_th, sub)
        for _ in range(40):
            worse = ~(new.deviance <= f0 + 1e-12 * np.abs(f0))
            if not worse.any():
                break
            # raise the damping (a shorter step turning towards the gradient)
            mu = np.where(worse, np.maximum(4.0 * mu, 1e-4 * scale), mu)
            d2 = -np.linalg.solve(Hf + mu[:, None, None] * eye, gf[..., None])[..., 0]
            new_th = np.where(worse[:, None], _to_boundary(th, d2), new_th)
            new = _quiet_evaluate(new_th, sub)
        still = ~(new.deviance <= f0 + 1e-12 * np.abs(f0))
        new_th = np.where(still[:, None], th, new_th)
        if still.any():
            keep = _subset_eval(cur, np.flatnonzero(act)[still])
            _assign(new, keep, np.flatnonzero(still))
        s_ = new_th - th
        moved = np.abs(s_).max(axis=1)
        small = (decrement <= 1e-10) | (
            (mu == 0) & (moved <= tol * np.maximum(1.0, np.abs(th).max(axis=1)))
        )
        # a step that could not lower the criterion at any damping: at the optimum to
        # rounding (decrement tiny) or stuck (left unconverged)
        small |= still & (decrement <= 1e-6)
        idx = np.flatnonzero(act)
        theta[idx] = new_th
        _assign(cur, new, idx)
        done[idx[small | broken]] = True
        failed[idx[broken]] = True
    sigma2 = cur.r2 / (st.n - 2 * st.U.shape[2])
    return BatchFit(
        theta=theta,
        beta=cur.beta,
        cov_beta=sigma2[:, None, None] * cur.Cinv,
        sigma2=sigma2,
        deviance=cur.deviance,
        converged=done & ~failed,
        n_iter=it,
    )


def _to_boundary(th: Array, step: Array) -> Array:
    """``th + step``, but a diagonal entry crossing 0 goes a tenth of the way to it.

    The REML criterion is even in each diagonal entry of Lambda, so its derivative
    vanishes at 0: landing exactly on the bound would freeze the entry there.  Going
    a fraction of the way lets a boundary (singular) fit converge geometrically.
    """
    new = th + step
    for j in (0, 2):
        cross = new[:, j] < 0.0
        new[:, j] = np.where(cross, 0.1 * th[:, j], new[:, j])
    return new


def _subset(st: BatchStats, m: npt.NDArray[np.bool_]) -> BatchStats:
    return BatchStats(
        S=st.S[m],
        U=st.U[m],
        Zty=st.Zty[m],
        yty=st.yty[m],
        n=st.n[m],
    )


def _subset_eval(cur: _Eval, idx: npt.NDArray[np.intp]) -> _Eval:
    return _Eval(
        deviance=cur.deviance[idx],
        grad=cur.grad[idx],
        beta=cur.beta[idx],
        Cinv=cur.Cinv[idx],
        r2=cur.r2[idx],
    )


def _assign(cur: _Eval, new: _Eval, idx: npt.NDArray[np.intp]) -> None:
    cur.deviance[idx] = new.deviance
    cur.grad[idx] = new.grad
    cur.beta[idx] = new.beta
    cur.Cinv[idx] = new.Cinv
    cur.r2[idx] = new.r2
