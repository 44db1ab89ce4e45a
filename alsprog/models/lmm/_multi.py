"""Profiled REML/ML of a linear mixed model with several grouping factors.

Owns: :class:`MultiStats` (sufficient statistics of a :class:`MultiDesign`),
:func:`multi_pieces` (lme4's penalised least squares at one theta: the Cholesky
factor of ``Lambda'Z'Z Lambda + I``, ``RX``, the penalised residual sum of squares
and the deviance), :func:`fit_multi` (the optimiser) and the conditional modes.
Leaves: the design to :mod:`alsprog.models.lmm._multi_design`; one grouping factor's
faster exact-gradient path to :mod:`alsprog.models.lmm._numerics`.

lme4 (Bates et al. 2015, J Stat Softw 67(1), section 3) profiles ``beta`` and
``sigma`` out of the likelihood of ``y = X beta + Z Lambda u + e``: with
``A = Lambda'Z'Z Lambda + I = L L'``, ``RZX = L^-1 Lambda'Z'X``,
``RX'RX = X'X - RZX'RZX`` and the penalised residual sum of squares ``r2``,

* ML deviance ``log|A| + n (1 + log(2 pi r2 / n))``;
* REML criterion ``log|A| + log|RX'RX| + (n-p)(1 + log(2 pi r2 / (n-p)))``.

The sparse Cholesky factor is taken blockwise: the random effects of the factor with
the most levels (subjects) come first; their block of ``A`` is block-diagonal (one
small block per level), so it is factored level by level, vectorised, and the other
factors' effects (sites, plates: few levels) see its Schur complement, a small dense
matrix.  This is the elimination order a fill-reducing ordering finds for nested
and for crossed-with-few-levels designs, without a general sparse factorisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.models.lmm._multi_design import MultiDesign

__all__ = [
    "MULTI_DENSE_MAX",
    "MultiFit",
    "MultiPieces",
    "MultiStats",
    "fit_multi",
    "multi_estimates",
    "multi_pieces",
]

Array = npt.NDArray[np.float64]
_LOG2PI = math.log(2.0 * math.pi)
#: Largest number of random effects outside the first factor (the dense Schur block).
MULTI_DENSE_MAX = 4000


def _grouped(codes: npt.NDArray[np.intp], a: Array, b: Array, G: int) -> Array:
    """``sum over rows of level g of a_i b_j'``: shape (G, a.shape[1], b.shape[1])."""
    out = np.empty((G, a.shape[1], b.shape[1]))
    for i in range(a.shape[1]):
        for j in range(b.shape[1]):
            out[:, i, j] = np.bincount(codes, weights=a[:, i] * b[:, j], minlength=G)
    return out


def _chol(A: Array) -> Array | None:
    """Cholesky factors of many small matrices stored component-first: ``A`` is
    (q, q, G); None when one is not positive definite."""
    q = A.shape[0]
    L = np.zeros_like(A)
    for j in range(q):
        d = A[j, j] - (L[j, :j] ** 2).sum(axis=0)
        if not np.all(d > 0):
            return None
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, q):
            L[i, j] = (A[i, j] - (L[i, :j] * L[j, :j]).sum(axis=0)) / L[j, j]
    return L


def _fsolve(L: Array, B: Array) -> Array:
    """``L^-1 B`` for lower-triangular ``L`` (q, q, G) and ``B`` (q, m, G)."""
    X = np.empty_like(B)
    for i in range(L.shape[0]):
        acc = B[i] - np.einsum("kg,kmg->mg", L[i, :i], X[:i]) if i else B[i]
        X[i] = acc / L[i, i]
    return X


def _bsolve(L: Array, B: Array) -> Array:
    """``L'^-1 B`` for lower-triangular ``L`` (q, q, G) and ``B`` (q, m, G)."""
    q = L.shape[0]
    X = np.empty_like(B)
    for i in range(q - 1, -1, -1):
        acc = (
            B[i] - np.einsum("kg,kmg->mg", L[i + 1 :, i], X[i + 1 :])
            if i < q - 1
            else B[i]
        )
        X[i] = acc / L[i, i]
    return X


def _sandwich(lam_a: Array, S: Array, lam_b: Array) -> Array:
    """``lam_a' S_g lam_b`` for every g of a component-first ``S`` (qa, qb, G)."""
    T = np.tensordot(lam_a.T, S, axes=(1, 0))  # (qa, qb, G)
    return np.moveaxis(np.tensordot(T, lam_b, axes=(1, 0)), 2, 1)


@dataclass
class MultiStats:
    """Cross-products of a design with several grouping factors (computed once).

    The first factor's per-level blocks are stored component-first (``(q1, q1,
    G1)``) so that every step over its levels is a vectorised pass.
    """

    n: int
    p: int
    XtX: Array
    Xty: Array
    yty: float
    S1: Array  # (q1, q1, G1) first factor's Z'Z per level
    R1: Array  # (q1, p + 1, G1) its Z'[X y]
    Srr: Array  # (qr, qr) the other factors' Z'Z (dense)
    Rr: Array  # (qr, p + 1)
    cross: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], Array]]
    offsets: list[int]  # start of each other factor in the dense block
    #: per pair of other factors (f, f'), the pairs of (first-factor level, level)
    #: couples sharing a first-factor level and where their W'W block goes
    ww: list[tuple[int, int, npt.NDArray[np.intp], npt.NDArray[np.intp], Array]]
    #: per other factor, the dense-block rows of each couple's effects (qf, P)
    rows_r: list[npt.NDArray[np.intp]]

    @property
    def qr(self) -> int:
        """Random effects outside the first factor."""
        return self.Srr.shape[0]

    @classmethod
    def of(cls, design: MultiDesign) -> MultiStats:
        """The statistics of ``design``."""
        from scipy import sparse

        X, y = design.X, design.y
        n, p = X.shape
        Xy = np.column_stack([X, y])
        f1, rest = design.factors[0], design.factors[1:]
        G1 = f1.n_levels
        S1 = np.ascontiguousarray(_grouped(f1.codes, f1.Z, f1.Z, G1).transpose(1, 2, 0))
        R1 = np.ascontiguousarray(_grouped(f1.codes, f1.Z, Xy, G1).transpose(1, 2, 0))
        offsets, off = [], 0
        blocks = []
        for f in rest:
            offsets.append(off)
            rows = np.repeat(np.arange(n), f.q)
            cols = off + (f.codes[:, None] * f.q + np.arange(f.q)).ravel()
            blocks.append((rows, cols, f.Z.ravel()))
            off += f.q * f.n_levels
        qr = off
        if qr:
            Zr = sparse.csr_matrix(
                (
                    np.concatenate([b[2] for b in blocks]),
                    (
                        np.concatenate([b[0] for b in blocks]),
                        np.concatenate([b[1] for b in blocks]),
                    ),
                ),
                shape=(n, qr),
            )
            Srr = np.asarray((Zr.T @ Zr).toarray())
            Rr = np.asarray(Zr.T @ Xy)
        else:
            Srr, Rr = np.zeros((0, 0)), np.zeros((0, p + 1))
        cross, rows_r = [], []
        for f, o in zip(rest, offsets, strict=True):
            key = f1.codes.astype(np.int64) * f.n_levels + f.codes
            uniq, inv = np.unique(key, return_inverse=True)
            pg = (uniq // f.n_levels).astype(np.intp)
            ph = (uniq % f.n_levels).astype(np.intp)
            B = _grouped(inv.astype(np.intp), f1.Z, f.Z, len(uniq))
            cross.append((pg, ph, np.ascontiguousarray(B.transpose(1, 2, 0))))
            rows_r.append(o + np.arange(f.q)[:, None] + ph[None, :] * f.q)
        ww = []
        for a in range(len(rest)):
            for b in range(a, len(rest)):
                # every couple of a's pairs and b's pairs with the same first level
                ga, gb = cross[a][0], cross[b][0]
                order_b = np.argsort(gb, kind="stable")
                lo = np.searchsorted(gb[order_b], ga, side="left")
                hi = np.searchsorted(gb[order_b], ga, side="right")
                cnt = hi - lo
                pa = np.repeat(np.arange(len(ga)), cnt)
                pb = order_b[
                    np.concatenate(
                        [np.arange(x, y) for x, y in zip(lo, hi, strict=True)]
                    )
                    if len(ga)
                    else np.zeros(0, np.intp)
                ].astype(np.intp)
                flat = (rows_r[a][:, None, pa] * qr + rows_r[b][None, :, pb]).astype(
                    np.intp
                )  # (qa, qb, couples)
                ww.append((a, b, pa, pb, flat))
        return cls(
            n=n,
            p=p,
            XtX=X.T @ X,
            Xty=X.T @ y,
            yty=float(y @ y),
            S1=S1,
            R1=R1,
            Srr=Srr,
            Rr=Rr,
            cross=cross,
            offsets=offsets,
            ww=ww,
            rows_r=rows_r,
        )


@dataclass
class MultiPieces:
    """lme4's penalised least-squares solution at one theta."""

    deviance: float
    beta: Array
    r2: float
    logdet_v: float  # log|A| = log|Lambda'Z'Z Lambda + I|
    logdet_c: float  # log|RX'RX|
    C_chol: Array  # lower Cholesky factor of RX'RX
    L1: Array  # (q1, q1, G1)
    Lr: Array  # (qr, qr)
    W: list[Array]  # per other factor: L1^-1 Lambda1' Z1'Zf Lambda_f, (q1, qf, P)
    c1: Array  # (q1, p + 1, G1)
    cr: Array  # (qr, p + 1)
    lam1: Array
    lams: list[Array]  # the other factors' q_f x q_f factors


def _lam_rest(
    design: MultiDesign, st: MultiStats, lams: list[Array], M: Array, trans: bool
) -> Array:
    """``Lambda_r' M`` (``trans``) or ``Lambda_r M`` for the other factors'
    block-diagonal factor, on the rows of ``M`` (qr x k)."""
    out = np.empty_like(M)
    for f, o, lam in zip(design.factors[1:], st.offsets, lams, strict=True):
        blk = M[o : o + f.q * f.n_levels].reshape(f.n_levels, f.q, -1)
        mat = lam.T if trans else lam
        out[o : o + f.q * f.n_levels] = np.einsum("ij,gjk->gik", mat, blk).reshape(
            f.q * f.n_levels, -1
        )
    return out


def _wt(W: list[Array], st: MultiStats, c: Array) -> Array:
    """``W' c`` for ``c`` (q1, k, G1): (qr, k)."""
    k = c.shape[1]
    out = np.zeros((st.qr, k))
    for Wf, (pg, _, _), rows in zip(W, st.cross, st.rows_r, strict=True):
        T = np.einsum("iap,imp->amp", Wf, c[:, :, pg])  # (qf, k, P)
        idx = np.repeat(rows.ravel(), k) * k + np.tile(np.arange(k), rows.size)
        out += np.bincount(
            idx, weights=T.transpose(0, 2, 1).ravel(), minlength=st.qr * k
        ).reshape(st.qr, k)
    return out


def _w(W: list[Array], st: MultiStats, v: Array, G1: int) -> Array:
    """``W v`` for ``v`` (qr, k): (q1, k, G1)."""
    q1, k = W[0].shape[0] if W else 0, v.shape[1]
    out = np.zeros((q1, k, G1))
    for Wf, (pg, _, _), rows in zip(W, st.cross, st.rows_r, strict=True):
        T = np.einsum("iap,apm->imp", Wf, v[rows])  # (q1, k, P)
        for i in range(q1):
            for m in range(k):
                out[i, m] += np.bincount(pg, weights=T[i, m], minlength=G1)
    return out


def multi_pieces(
    theta: Array, design: MultiDesign, st: MultiStats, reml: bool
) -> MultiPieces | None:
    """Penalised least squares at ``theta`` (None where a factor is not positive
    definite: a theta outside the model's space, numerically)."""
    from scipy import linalg

    n, p = st.n, st.p
    f1 = design.factors[0]
    q1 = f1.q
    lam1 = f1.factor(theta)
    A11 = _sandwich(lam1, st.S1, lam1)
    A11[np.arange(q1), np.arange(q1)] += 1.0
    L1 = _chol(A11)
    if L1 is None:
        return None
    c1 = _fsolve(L1, np.tensordot(lam1.T, st.R1, axes=(1, 0)))
    logdet_v = 2.0 * float(np.log(L1[np.arange(q1), np.arange(q1)]).sum())
    lams = [f.factor(theta) for f in design.factors[1:]]
    if st.qr:
        W = [
            _fsolve(L1[:, :, pg], _sandwich(lam1, B, lam))
            for lam, (pg, _, B) in zip(lams, st.cross, strict=True)
        ]
        Arr = _lam_rest(design, st, lams, st.Srr, True)
        Arr = _lam_rest(design, st, lams, np.ascontiguousarray(Arr.T), True).T
        same = np.zeros(st.qr * st.qr)
        other = np.zeros(st.qr * st.qr)  # blocks (a, b), a < b: their transposes too
        for a, b, pa, pb, flat in st.ww:
            blk = np.einsum("iap,ibp->abp", W[a][:, :, pa], W[b][:, :, pb])
            acc = same if a == b else other
            acc += np.bincount(flat.ravel(), weights=blk.ravel(), minlength=acc.size)
        WW = same.reshape(st.qr, st.qr)
        if len(W) > 1:
            o2 = other.reshape(st.qr, st.qr)
            WW = WW + o2 + o2.T
        Sc = Arr + np.eye(st.qr) - WW
        try:
            Lr = linalg.cholesky(0.5 * (Sc + Sc.T), lower=True, check_finite=False)
        except linalg.LinAlgError:
            return None
        rhs = _lam_rest(design, st, lams, st.Rr, True) - _wt(W, st, c1)
        cr = linalg.solve_triangular(Lr, rhs, lower=True, check_finite=False)
        logdet_v += 2.0 * float(np.log(np.diag(Lr)).sum())
    else:
        W, Lr, cr = [], np.zeros((0, 0)), np.zeros((0, p + 1))
    cX = c1[:, :p, :]
    cy = c1[:, p, :]
    CtC = st.XtX - np.einsum("iag,ibg->ab", cX, cX) - cr[:, :p].T @ cr[:, :p]
    u = st.Xty - np.einsum("iag,ig->a", cX, cy) - cr[:, :p].T @ cr[:, p]
    try:
        C_chol = linalg.cholesky(0.5 * (CtC + CtC.T), lower=True, check_finite=False)
    except linalg.LinAlgError:
        return None
    beta = linalg.cho_solve((C_chol, True), u, check_finite=False)
    r2 = st.yty - float((cy * cy).sum()) - float(cr[:, p] @ cr[:, p]) - float(beta @ u)
    r2 = max(r2, np.finfo(float).tiny)
    logdet_c = 2.0 * float(np.log(np.diag(C_chol)).sum())
    if reml:
        nu = n - p
        dev = logdet_v + logdet_c + nu * (1.0 + _LOG2PI + math.log(r2 / nu))
    else:
        dev = logdet_v + n * (1.0 + _LOG2PI + math.log(r2 / n))
    return MultiPieces(
        deviance=dev,
        beta=beta,
        r2=r2,
        logdet_v=logdet_v,
        logdet_c=logdet_c,
        C_chol=C_chol,
        L1=L1,
        Lr=Lr,
        W=W,
        c1=c1,
        cr=cr,
        lam1=lam1,
        lams=lams,
    )


def conditional_modes(
    pc: MultiPieces, design: MultiDesign, st: MultiStats
) -> list[Array]:
    """The conditional modes ``b = Lambda u`` of every factor: (levels, q) each."""
    from scipy import linalg

    p = st.p
    beta = pc.beta
    G1 = pc.c1.shape[2]
    d1 = pc.c1[:, p, :] - np.einsum("iag,a->ig", pc.c1[:, :p, :], beta)
    out = []
    if st.qr:
        dr = pc.cr[:, p] - pc.cr[:, :p] @ beta
        ur = linalg.solve_triangular(pc.Lr, dr, lower=True, trans="T")
        d1 = d1 - _w(pc.W, st, ur[:, None], G1)[:, 0, :]
    else:
        ur = np.zeros(0)
    u1 = _bsolve(pc.L1, d1[:, None, :])[:, 0, :]  # (q1, G1)
    out.append((pc.lam1 @ u1).T)
    if st.qr:
        br = _lam_rest(design, st, pc.lams, ur[:, None], False)[:, 0]
        for f, o in zip(design.factors[1:], st.offsets, strict=True):
            out.append(br[o : o + f.q * f.n_levels].reshape(f.n_levels, f.q))
    return out


@dataclass
class MultiFit:
    """Estimates at the optimum of the profiled criterion."""

    theta: Array
    beta: Array
    cov_beta: Array
    sigma2: float
    deviance: float
    b: list[Array]
    converged: bool
    n_iter: int
    message: str
    pieces: MultiPieces
    #: The criterion's Hessian in the free theta coordinates and their positions.
    hessian: tuple[Array, Array] | None = None


def fit_multi(
    design: MultiDesign,
    *,
    reml: bool = True,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> MultiFit:
    """Minimise the profiled REML criterion (or ML deviance) over lme4's theta.

    Bounded quasi-Newton (L-BFGS-B) with central-difference gradients from lme4's
    start, then Newton steps on a finite-difference Hessian to polish the optimum
    (theta to about 1e-7).

    Raises
    ------
    ModelSpecificationError
        When the other factors carry more than ``MULTI_DENSE_MAX`` random effects
        (their block is factored densely).
    """
    from scipy import optimize

    from alsprog.errors import ModelSpecificationError

    qr = sum(f.q * f.n_levels for f in design.factors[1:])
    if qr > MULTI_DENSE_MAX:
        big = ", ".join(f"{f.name!r} ({f.n_levels} levels)" for f in design.factors[1:])
        raise ModelSpecificationError(
            f"The grouping factors beside {design.factors[0].name!r} ({big}) carry "
            f"{qr} random effects; alsprog factors them densely and takes at most "
            f"{MULTI_DENSE_MAX}; use fewer levels for the crossed factors."
        )
    st = MultiStats.of(design)
    lower = design.theta_lower
    count = [0]

    def dev(th: Array) -> float:
        count[0] += 1
        pc = multi_pieces(th, design, st, reml)
        return np.inf if pc is None else pc.deviance

    k = design.n_theta
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]

    def fun(th: Array) -> tuple[float, Array]:
        # forward differences (k + 1 evaluations): the Newton polish below makes
        # the optimum exact
        f0 = dev(th)
        g = np.empty(k)
        for j in range(k):
            h = 1e-7 * max(1.0, abs(th[j]))
            e = np.zeros(k)
            e[j] = h
            g[j] = (dev(th + e) - f0) / h
        return f0, g

    res = optimize.minimize(
        fun,
        design.start(),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        # to about 1e-7: the Newton steps below finish the job in few evaluations
        options={
            "ftol": max(tol, 1e-7),
            "gtol": 1e-8,
            "maxiter": max_iter,
            "maxls": 50,
        },
    )
    theta = np.where(np.isfinite(lower), np.maximum(res.x, lower), res.x)
    theta, optimum, hess = _newton_polish(dev, theta, lower)
    if not optimum:  # the quick start was not close enough: the careful way
        res = optimize.minimize(
            fun,
            theta,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": tol, "gtol": 1e-8, "maxiter": max_iter, "maxls": 50},
        )
        theta = np.where(np.isfinite(lower), np.maximum(res.x, lower), res.x)
        theta, optimum, hess = _newton_polish(dev, theta, lower)
    est = multi_estimates(
        design,
        st,
        theta,
        reml=reml,
        converged=bool(optimum),
        n_iter=count[0],
        message=str(res.message),
    )
    est.hessian = hess
    return est


def multi_estimates(
    design: MultiDesign,
    st: MultiStats,
    theta: Array,
    *,
    reml: bool,
    converged: bool,
    n_iter: int,
    message: str,
) -> MultiFit:
    """The estimates at ``theta`` (the optimum of a fit, or a saved model's)."""
    from alsprog.errors import ModelSpecificationError

    pc = multi_pieces(theta, design, st, reml)
    if pc is None:
        raise ModelSpecificationError(
            "The mixed model's penalised least squares broke down at the optimum "
            "(a singular fixed-effects design given the random effects?)."
        )
    nu = st.n - st.p if reml else st.n
    sigma2 = pc.r2 / nu
    return MultiFit(
        theta=theta,
        beta=pc.beta,
        cov_beta=sigma2 * _cho_inv(pc.C_chol),
        sigma2=float(sigma2),
        deviance=float(pc.deviance),
        b=conditional_modes(pc, design, st),
        converged=converged,
        n_iter=n_iter,
        message=message,
        pieces=pc,
    )


def _cho_inv(C_chol: Array) -> Array:
    from scipy import linalg

    inv = linalg.cho_solve((C_chol, True), np.eye(C_chol.shape[0]))
    return 0.5 * (inv + inv.T)


def _newton_polish(
    dev: Any, theta: Array, lower: Array, steps: int = 12
) -> tuple[Array, bool, tuple[Array, Array] | None]:
    """Newton steps on the free coordinates (central-difference gradient and
    Hessian; Levenberg-damped where the Hessian is not positive definite, halved
    until the criterion falls), to the optimum the quasi-Newton start leaves
    unfinished along weakly curved directions (a site variance beside thousands of
    subjects); and whether the point
    is an optimum: the Newton decrement ``g'H^-1 g`` (a change of the criterion,
    so free of the data's size) below 1e-6 with a positive definite Hessian, and
    the criterion not falling off a coordinate held at its bound."""
    k = len(theta)
    f0 = dev(theta)
    # a variance the optimiser left just above its bound: on the bound when that
    # is no worse (the criterion is flat there, so Newton cannot finish the job)
    for i in np.flatnonzero(
        np.isfinite(lower) & (theta > lower) & (theta < lower + 1e-3)
    ):
        cand = theta.copy()
        cand[i] = lower[i]
        f1 = dev(cand)
        if f1 <= f0 + 1e-9:
            theta, f0 = cand, min(f0, f1)
    ok = False
    last: tuple[Array, Array] | None = None
    for _ in range(steps):
        at_bound = np.isfinite(lower) & (theta <= lower + 1e-8)
        h = 1e-4 * np.maximum(1.0, np.abs(theta))
        for i in np.flatnonzero(at_bound):  # still pinned there?
            e = np.zeros(k)
            e[i] = 1e-6
            if dev(theta + e) < f0 - 1e-8:
                return theta, False, last
        idx = np.flatnonzero(~at_bound)
        if not len(idx):
            return theta, True, None
        m = len(idx)
        H = np.empty((m, m))
        g = np.empty(m)
        fp, fm = np.empty(m), np.empty(m)
        for a, i in enumerate(idx):
            e = np.zeros(k)
            e[i] = h[i]
            fp[a], fm[a] = dev(theta + e), dev(theta - e)
            g[a] = (fp[a] - fm[a]) / (2 * h[i])
            H[a, a] = (fp[a] - 2 * f0 + fm[a]) / h[i] ** 2
        for a in range(m):
            for b in range(a):
                i, j = idx[a], idx[b]
                e = np.zeros(k)
                e[i], e[j] = h[i], h[j]
                fpp = dev(theta + e)
                H[a, b] = H[b, a] = (fpp - fp[a] - fp[b] + f0) / (h[i] * h[j])
        last = (H, idx)
        if not np.all(np.isfinite(H)):
            return theta, False, last
        w = np.linalg.eigvalsh(H)
        positive = bool(np.all(w > 0))
        mu = 0.0 if positive else float(-w[0] + 1e-6 * max(1.0, abs(w[-1])))
        step = np.linalg.solve(H + mu * np.eye(m), g)
        decrement = float(g @ step)
        ok = positive and decrement < 1e-6
        if positive and decrement < 1e-10:
            return theta, True, last
        for _ in range(10):  # halve the step until the criterion falls
            cand = theta.copy()
            cand[idx] -= step
            cand = np.where(np.isfinite(lower), np.maximum(cand, lower), cand)
            f1 = dev(cand)
            if f1 < f0:
                break
            step = step / 2
        else:
            return theta, ok, last
        theta, f0 = cand, f1
    return theta, ok, last
