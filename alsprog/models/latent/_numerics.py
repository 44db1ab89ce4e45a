"""Exact marginal likelihood, EM and quasi-Newton fit of a latent-class linear mixed model.

Owns: the per-subject sufficient statistics (:class:`SubjectStats`), the parameter
layout and its unconstrained vector (:class:`Layout`: class-specific and shared fixed
effects, log-Cholesky of the shared random-effects covariance ``G``, log residual
variance, logits of the class probabilities), the exact marginal log-likelihood with
its analytic gradient and class posteriors (:func:`evaluate`), the EM step
(:func:`em_step`), one fit from one start (:func:`fit_one_start`), the Newton polish
and observed information (:func:`newton_polish`, :func:`hessian`) and the starting
values (:func:`kmeans_start`, :func:`perturbed_start`).
Leaves: formulas, data checks, the choice among starts, labels and fitted attributes
to :mod:`alsprog.models.latent._model`.

The model (lcmm's ``hlme`` with a common random-effects covariance): subject ``i``
belongs to class ``k`` with probability ``pi_k``; given the class,
``y_i ~ N(X_i beta_k, V_i)`` with ``V_i = Z_i G Z_i' + s2 I``.  The marginal
log-likelihood is ``sum_i log sum_k pi_k N(y_i; X_i beta_k, V_i)``, computed exactly
from each subject's cross-products (``y'y``, ``X'y``, ``X'X``, ``Z'y``, ``Z'X``,
``Z'Z``) through Woodbury's identity and the determinant lemma with the q x q matrix
``s2 I + L' Z'Z L`` (``G = L L'``): one evaluation costs O(N K (p + q)^2) whatever
the number of visits, vectorised over subjects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

__all__ = [
    "Evaluation",
    "Layout",
    "StartResult",
    "SubjectStats",
    "build_stats",
    "em_step",
    "evaluate",
    "fit_one_start",
    "hessian",
    "kmeans_start",
    "log_prior",
    "membership_log_probs",
    "membership_step",
    "newton_polish",
    "perturbed_start",
    "subject_features",
]

_LOG2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class SubjectStats:
    """Per-subject sufficient statistics: everything the likelihood needs.

    Attributes
    ----------
    n : ndarray of int, shape (N,)
        Visits per subject.
    yty : ndarray, shape (N,)
    Xty : ndarray, shape (N, p)
    XtX : ndarray, shape (N, p, p)
    Zty : ndarray, shape (N, q)
    ZtX : ndarray, shape (N, q, p)
    ZtZ : ndarray, shape (N, q, q)
    n_subjects, n_obs : int
    C : ndarray, shape (N, r), optional
        Class-membership design (intercept first); ``None``: the intercept alone.
    """

    n: npt.NDArray[np.intp]
    yty: Array
    Xty: Array
    XtX: Array
    Zty: Array
    ZtX: Array
    ZtZ: Array
    n_subjects: int
    n_obs: int
    C: Array | None = None


def build_stats(
    y: Array,
    X: Array,
    Z: Array,
    groups: npt.NDArray[np.intp],
    n_subjects: int,
    C: Array | None = None,
) -> SubjectStats:
    """Reduce the rows to per-subject cross-products (every code must occur).

    Examples
    --------
    >>> y = np.arange(5.0); X = np.ones((5, 1)); Z = np.ones((5, 1))
    >>> s = build_stats(y, X, Z, np.array([0, 1, 0, 1, 1]), 2)
    >>> s.n.tolist(), s.yty.tolist(), s.Xty[:, 0].tolist()
    ([2, 3], [4.0, 26.0], [2.0, 8.0])
    """
    order = np.argsort(groups, kind="stable")
    counts = np.bincount(groups, minlength=n_subjects)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    yo, Xo, Zo = y[order], X[order], Z[order]

    def total(a: Array) -> Array:
        return np.add.reduceat(a, starts, axis=0)

    return SubjectStats(
        n=counts.astype(np.intp),
        yty=total(yo * yo),
        Xty=total(Xo * yo[:, None]),
        XtX=total(Xo[:, :, None] * Xo[:, None, :]),
        Zty=total(Zo * yo[:, None]),
        ZtX=total(Zo[:, :, None] * Xo[:, None, :]),
        ZtZ=total(Zo[:, :, None] * Zo[:, None, :]),
        n_subjects=int(n_subjects),
        n_obs=int(len(y)),
        C=None if C is None else np.asarray(C, dtype=float),
    )


@dataclass(frozen=True)
class Layout:
    """Where each parameter sits in the unconstrained vector.

    Order: the class-specific fixed effects (class by class, the ``mix`` columns),
    the shared fixed effects, the lower triangle of the Cholesky factor of ``G``
    (row by row, diagonal on the log scale; with ``class_cov`` one factor per
    class, class by class), ``log s2``, then the coefficients of
    the multinomial logit of class membership, ``log(pi_ik / pi_i1) = C_i gamma_k``
    for classes 2..K (class by class, ``r`` each; with ``r = 1`` the logits
    ``log(pi_k / pi_1)``).
    """

    K: int
    p: int
    q: int
    mix: npt.NDArray[np.bool_]
    r: int = 1
    class_cov: bool = False

    @property
    def n_cov(self) -> int:
        """Random-effects covariances: 1 shared, or one per class."""
        return self.K if self.class_cov else 1

    @property
    def pm(self) -> int:
        """Number of class-specific fixed effects per class."""
        return int(self.mix.sum())

    @property
    def n_params(self) -> int:
        """Free parameters (the ``n_params_`` of AIC/BIC)."""
        q = self.q
        fixed = self.K * self.pm + (self.p - self.pm)
        return fixed + self.n_cov * q * (q + 1) // 2 + 1 + (self.K - 1) * self.r

    def beta_indices(self) -> npt.NDArray[np.intp]:
        """(K, p): where each class's fixed effect sits in the vector."""
        K, pm, p = self.K, self.pm, self.p
        idx = np.empty((K, p), dtype=np.intp)
        idx[:, self.mix] = np.arange(K * pm).reshape(K, pm)
        idx[:, ~self.mix] = K * pm + np.arange(p - pm)[None, :]
        return idx

    def betas_of(self, v: Array) -> Array:
        """(K, p): the entries of a parameter-length vector ``v`` (e.g. standard
        errors) at each class's fixed effects."""
        return np.asarray(v)[self.beta_indices()]

    def gamma_of(self, v: Array) -> Array:
        """(K, r): the entries of ``v`` at the membership coefficients (class 1,
        the reference, NaN)."""
        q = self.q
        o = self.K * self.pm + self.p - self.pm + self.n_cov * q * (q + 1) // 2 + 1
        out = np.full((self.K, self.r), np.nan)
        out[1:] = np.asarray(v)[o:].reshape(self.K - 1, self.r)
        return out

    def unpack(self, x: Array) -> tuple[Array, Array, Array, float, Array]:
        """``(betas (K, p), L, G, s2, gamma (K, r))`` from the vector ``x``;
        ``L`` and ``G`` are (q, q), or (K, q, q) with ``class_cov``; ``gamma``'s
        first row (class 1, the reference) is zero."""
        K, pm, p, q = self.K, self.pm, self.p, self.q
        betas = np.empty((K, p))
        betas[:, self.mix] = x[: K * pm].reshape(K, pm)
        betas[:, ~self.mix] = x[K * pm : K * pm + p - pm]
        o = K * pm + p - pm
        nt = q * (q + 1) // 2
        r, c = np.tril_indices(q)
        L = np.zeros((self.n_cov, q, q))
        L[:, r, c] = x[o : o + self.n_cov * nt].reshape(self.n_cov, nt)
        d = np.arange(q)
        L[:, d, d] = np.exp(L[:, d, d])
        o += self.n_cov * nt
        s2 = float(np.exp(x[o]))
        gamma = np.zeros((K, self.r))
        gamma[1:] = x[o + 1 :].reshape(K - 1, self.r)
        G = L @ np.swapaxes(L, 1, 2)
        if not self.class_cov:
            L, G = L[0], G[0]
        return betas, L, G, s2, gamma

    def pack(
        self,
        betas: Array,
        G: Array,
        s2: float,
        pi: Array | None = None,
        *,
        gamma: Array | None = None,
    ) -> Array:
        """The vector for the given parameters (inverse of :meth:`unpack`): class
        probabilities ``pi`` (K,) (membership coefficients other than the
        intercept zero) or the membership coefficients ``gamma`` (K, r)."""
        q = self.q
        Gs = np.broadcast_to(np.asarray(G, float), (self.n_cov, q, q))
        L = np.linalg.cholesky(Gs + 1e-12 * np.eye(q)) if q else np.zeros((1, 0, 0))
        d = np.arange(q)
        L[:, d, d] = np.log(L[:, d, d])
        r, c = np.tril_indices(q)
        if gamma is None:
            pi = np.clip(np.asarray(pi, float), 1e-300, None)
            gamma = np.zeros((self.K, self.r))
            gamma[:, 0] = np.log(pi)
        gamma = np.asarray(gamma, float).reshape(self.K, self.r)
        eta = (gamma[1:] - gamma[0]).ravel()
        return np.concatenate(
            [
                betas[:, self.mix].ravel(),
                betas[0, ~self.mix],
                L[:, r, c].ravel(),
                [np.log(s2)],
                eta,
            ]
        )


def _logsumexp(a: Array) -> Array:
    m = np.max(a, axis=1, keepdims=True)
    return (m + np.log(np.sum(np.exp(a - m), axis=1, keepdims=True)))[:, 0]


def log_prior(gamma: Array, st: SubjectStats) -> Array:
    """Log prior class probabilities of each subject, (N, K): the multinomial
    logit ``C_i gamma_k`` normalised over classes."""
    return membership_log_probs(gamma, st.C, st.n_subjects)


def membership_log_probs(gamma: Array, C: Array | None, n: int) -> Array:
    """Log class probabilities (n, K) of ``n`` subjects with membership design ``C``
    (None: the intercept alone, the same for everyone)."""
    if C is None:
        eta = np.broadcast_to(gamma[:, 0], (n, gamma.shape[0]))
    else:
        eta = C @ gamma.T
    return eta - _logsumexp(eta)[:, None]


def membership_step(
    gamma: Array, st: SubjectStats, W: Array, n_iter: int = 25
) -> Array:
    """The membership coefficients maximising ``sum_ik W_ik log pi_ik``: the mean
    posterior with the intercept alone, else Newton's method on the multinomial
    logit (concave) from ``gamma``, step-halving."""
    K = W.shape[1]
    if K == 1:
        return np.zeros_like(gamma)
    if st.C is None or st.C.shape[1] == 1:
        pi = np.clip(W.mean(axis=0), 1e-10, None)
        out = np.zeros_like(gamma)
        out[:, 0] = np.log(pi / pi.sum())
        return out - out[0]
    C = st.C
    r = C.shape[1]
    g = gamma - gamma[0]

    def objective(gm: Array) -> float:
        return float(np.sum(W * log_prior(gm, st)))

    f = objective(g)
    for _ in range(n_iter):
        P = np.exp(log_prior(g, st))[:, 1:]  # (N, K-1)
        grad = ((W[:, 1:] - P).T @ C).ravel()
        # Hessian of the multinomial logit: -sum_i (diag(P_i) - P_i P_i') x C_i C_i'
        D = P[:, :, None] * (np.eye(K - 1)[None] - P[:, None, :])  # (N, K-1, K-1)
        H = np.einsum("nab,nr,ns->arbs", D, C, C).reshape((K - 1) * r, (K - 1) * r)
        H += 1e-10 * np.eye(H.shape[0])
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            break
        for _half in range(20):
            trial = g.copy()
            trial[1:] += step.reshape(K - 1, r)
            ft = objective(trial)
            if ft >= f:
                break
            step = step / 2
        else:
            break
        gain, g, f = ft - f, trial, ft
        if gain < 1e-12 * max(1.0, abs(f)):
            break
    return g


@dataclass(frozen=True)
class Evaluation:
    """Log-likelihood, per-subject contributions, posteriors and gradient."""

    llf: float
    loglik_i: Array
    posterior: Array
    grad: Array | None


@dataclass(frozen=True)
class _Pieces:
    """Per-subject pieces of ``V_i^{-1}`` through the q x q matrix
    ``Mq = s2 I + L' Z'Z L`` (Woodbury's identity, the determinant lemma).

    ``ZtVZ`` and ``XtVX`` are computed only when asked for (the likelihood alone
    needs neither; its gradient needs ``ZtVZ``; the EM step both)."""

    Mi: Array  # Mq^{-1}, (N, q, q)
    P: Array  # L' Z'Z L, (N, q, q)
    logdet: Array  # log det V_i, (N,)
    ZtVZ: Array | None  # Z' V^{-1} Z, (N, q, q)
    XtVX: Array | None  # X' V^{-1} X, (N, p, p)
    tr_Vinv: Array  # (N,)


def _inv_logdet(M: Array) -> tuple[Array, Array]:
    """Inverses and log-determinants of a stack of symmetric positive definite
    matrices; closed forms for 1 x 1 and 2 x 2 (the usual random intercept and
    slope), where LAPACK's per-matrix overhead dominates; otherwise (or when a
    matrix is not positive definite, so LAPACK raises) through Cholesky."""
    q = M.shape[-1]
    if q == 1 and np.all(M > 0):
        return 1.0 / M, np.log(M[:, 0, 0])
    if q == 2:
        a, b, d = M[:, 0, 0], M[:, 0, 1], M[:, 1, 1]
        det = a * d - b * b
        if np.all(det > 0) and np.all(a > 0):
            inv = np.empty_like(M)
            inv[:, 0, 0] = d / det
            inv[:, 1, 1] = a / det
            inv[:, 0, 1] = inv[:, 1, 0] = -b / det
            return inv, np.log(det)
    C = np.linalg.cholesky(M)
    logdet = 2.0 * np.sum(np.log(np.diagonal(C, axis1=1, axis2=2)), axis=1)
    return np.asarray(np.linalg.inv(M), dtype=np.float64), logdet


def _pieces(
    st: SubjectStats, L: Array, s2: float, *, ztvz: bool = True, xtvx: bool = True
) -> _Pieces:
    q = L.shape[0]
    ZtZL = st.ZtZ @ L
    P = L.T @ ZtZL
    Mq = P + s2 * np.eye(q)
    Mi, logdet_q = _inv_logdet(Mq)
    logdet = (st.n - q) * np.log(s2) + logdet_q
    ZtVZ = XtVX = None
    if ztvz:
        ZtVZ = (st.ZtZ - ZtZL @ Mi @ np.swapaxes(ZtZL, 1, 2)) / s2
    if xtvx:
        LtZtX = L.T @ st.ZtX
        XtVX = (st.XtX - np.swapaxes(LtZtX, 1, 2) @ Mi @ LtZtX) / s2
    tr_Vinv = (st.n - np.sum(Mi * P, axis=(1, 2))) / s2  # both symmetric
    return _Pieces(Mi, P, logdet, ZtVZ, XtVX, tr_Vinv)


def _residual_products(st: SubjectStats, betas: Array) -> tuple[Array, Array, Array]:
    """``Z'r_k`` (N, K, q), ``X'r_k`` (N, K, p) and ``r_k'r_k`` (N, K) for the
    residuals ``r_k = y - X beta_k`` of every subject and class."""
    XtXb = st.XtX @ betas.T  # (N, p, K)
    Ztr = st.Zty[:, None, :] - np.swapaxes(st.ZtX @ betas.T, 1, 2)
    Xtr = st.Xty[:, None, :] - np.swapaxes(XtXb, 1, 2)
    rtr = st.yty[:, None] - 2.0 * st.Xty @ betas.T + np.sum(XtXb * betas.T, axis=1)
    return Ztr, Xtr, rtr


def evaluate(
    x: Array, lay: Layout, st: SubjectStats, *, grad: bool = True
) -> Evaluation:
    """Exact marginal log-likelihood at ``x``, its gradient and the class posteriors.

    Every quantity is a function of the per-subject cross-products, so one
    evaluation costs O(N K (p + q)^2) whatever the number of visits.

    Parameters
    ----------
    x : ndarray
        Unconstrained parameter vector (:class:`Layout`).
    lay : Layout
    st : SubjectStats
    grad : bool, default True
        Also compute the gradient with respect to ``x``.

    Returns
    -------
    Evaluation
        ``posterior`` has shape ``(n_subjects, K)``; ``loglik_i`` ``(n_subjects,)``.
    """
    if lay.class_cov:
        from alsprog.models.latent._class_cov import evaluate_class_cov

        return evaluate_class_cov(x, lay, st, grad=grad)
    betas, L, G, s2, gamma = lay.unpack(x)
    logpi = log_prior(gamma, st)
    pc = _pieces(st, L, s2, ztvz=grad, xtvx=False)
    Ztr, Xtr, rtr = _residual_products(st, betas)
    u = Ztr @ L  # (N, K, q): L' Z' r_k
    Miu = u @ pc.Mi  # Mi symmetric
    uMu = np.sum(u * Miu, axis=2)
    quad = (rtr - uMu) / s2
    logd = -0.5 * (st.n[:, None] * _LOG2PI + pc.logdet[:, None] + quad) + logpi
    li = _logsumexp(logd)
    W = np.exp(logd - li[:, None])
    g = None
    if grad:
        # X' V^-1 r_k and Z' V^-1 r_k
        LMiu = Miu @ L.T  # (N, K, q): L Mq^-1 u
        XVr = (Xtr - LMiu @ st.ZtX) / s2
        ZVr = (Ztr - LMiu @ st.ZtZ) / s2  # ZtZ symmetric
        gb = np.sum(W[:, :, None] * XVr, axis=0)
        q = lay.q
        WZ = (ZVr * W[:, :, None]).reshape(-1, q)
        assert pc.ZtVZ is not None
        A = 0.5 * (WZ.T @ ZVr.reshape(-1, q) - pc.ZtVZ.sum(axis=0))
        # ||V^-1 r_k||^2 = (r'r - 2 u'Mi u + u'Mi P Mi u) / s2^2
        vtv = (rtr - 2.0 * uMu + np.sum(Miu * (Miu @ pc.P), axis=2)) / s2**2
        gs2 = 0.5 * (float(np.sum(W * vtv)) - float(pc.tr_Vinv.sum()))
        gL = 2.0 * A @ L
        d = np.arange(lay.q)
        gL[d, d] *= L[d, d]
        r, c = np.tril_indices(lay.q)
        dW = W[:, 1:] - np.exp(logpi[:, 1:])
        g_gamma = dW.sum(axis=0) if st.C is None else (dW.T @ st.C).ravel()
        g = np.concatenate(
            [
                gb[:, lay.mix].ravel(),
                gb[:, ~lay.mix].sum(axis=0),
                gL[r, c],
                [gs2 * s2],
                g_gamma,
            ]
        )
    return Evaluation(float(li.sum()), li, W, g)


def solve_betas(H: Array, rhs: Array, lay: Layout) -> Array:
    """The fixed effects (K, p) solving the posterior-weighted GLS equations
    ``sum_k H_k beta_k = sum_k rhs_k``, the shared columns common to all classes."""
    K, p, mix = lay.K, lay.p, lay.mix
    # assemble the normal equations in (class-specific..., shared)
    pm, ps = lay.pm, p - lay.pm
    dim = K * pm + ps
    A = np.zeros((dim, dim))
    b = np.zeros(dim)
    s = slice(K * pm, dim)
    for k in range(K):
        mk = slice(k * pm, (k + 1) * pm)
        A[mk, mk] = H[k][np.ix_(mix, mix)]
        A[mk, s] = H[k][np.ix_(mix, ~mix)]
        A[s, mk] = A[mk, s].T
        A[s, s] += H[k][np.ix_(~mix, ~mix)]
        b[mk] = rhs[k][mix]
        b[s] += rhs[k][~mix]
    theta = np.linalg.solve(A + 1e-12 * np.eye(dim), b)
    new = np.empty((K, p))
    new[:, mix] = theta[: K * pm].reshape(K, pm)
    new[:, ~mix] = theta[K * pm :]
    return new


def em_step(x: Array, lay: Layout, st: SubjectStats, W: Array) -> Array:
    """One M-step given posteriors ``W``: new parameters as a vector.

    The membership coefficients maximise the expected complete-data log-likelihood
    (:func:`membership_step`: ``pi`` is the mean posterior when the intercept alone
    models membership); the fixed effects solve the posterior-weighted GLS
    equations at the current ``V_i``; ``G`` and ``s2`` are the expected complete-data
    updates of Verbeke & Lesaffre's heterogeneity model (posterior means and
    covariances of the random effects within each class).
    """
    if lay.class_cov:
        from alsprog.models.latent._class_cov import em_step_class_cov

        return em_step_class_cov(x, lay, st, W)
    _, L, G, s2, gamma = lay.unpack(x)
    pc = _pieces(st, L, s2)
    assert pc.XtVX is not None and pc.ZtVZ is not None
    LtZtX = L.T @ st.ZtX  # (N, q, p)
    Miv = pc.Mi @ (st.Zty @ L)[:, :, None]  # (N, q, 1)
    XtVy = (st.Xty - (np.swapaxes(LtZtX, 1, 2) @ Miv)[:, :, 0]) / s2
    H = np.tensordot(W.T, pc.XtVX, axes=1)
    rhs = W.T @ XtVy
    new = solve_betas(H, rhs, lay)
    # random-effects covariance and residual variance
    Ztr, _, rtr = _residual_products(st, new)
    LMiu = ((Ztr @ L) @ pc.Mi) @ L.T
    ZVr = (Ztr - LMiu @ st.ZtZ) / s2
    B = ZVr @ G  # (N, K, q): posterior means G Z' V^-1 r_k
    Cm = G[None] - G @ pc.ZtVZ @ G  # (N, q, q)
    q = lay.q
    Gsum = (B * W[:, :, None]).reshape(-1, q).T @ B.reshape(-1, q) + Cm.sum(axis=0)
    rss_k = rtr - 2.0 * np.sum(B * Ztr, axis=2) + np.sum((B @ st.ZtZ) * B, axis=2)
    rss = float(np.sum(W * rss_k)) + float(np.sum(Cm * st.ZtZ))
    G_new = Gsum / st.n_subjects
    s2_new = rss / st.n_obs
    gamma_new = membership_step(gamma, st, W)
    return lay.pack(new, 0.5 * (G_new + G_new.T), s2_new, gamma=gamma_new)


@dataclass(frozen=True)
class StartResult:
    """One start's optimum."""

    x: Array
    llf: float
    converged: bool
    n_em: int
    n_eval: int
    grad_max: float


def fit_one_start(
    x0: Array,
    lay: Layout,
    st: SubjectStats,
    *,
    em_iter: int = 30,
    em_tol: float = 1e-7,
    max_iter: int = 500,
    tol: float = 1e-8,
) -> StartResult:
    """EM from ``x0`` until the log-likelihood gains less than ``em_tol`` per
    subject, then L-BFGS on the exact marginal log-likelihood (analytic gradient)."""
    from scipy import optimize

    x = np.asarray(x0, float)
    ev = evaluate(x, lay, st, grad=False)
    it = 0
    for it in range(1, em_iter + 1):  # noqa: B007
        x_new = em_step(x, lay, st, ev.posterior)
        ev_new = evaluate(x_new, lay, st, grad=False)
        if not np.isfinite(ev_new.llf):
            break
        gain = ev_new.llf - ev.llf
        x, ev = x_new, ev_new
        if gain < em_tol * st.n_subjects:
            break
    N = st.n_subjects

    def fun(z: Array) -> tuple[float, Array]:
        try:
            e = evaluate(z, lay, st)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(z)
        if not np.isfinite(e.llf):
            return np.inf, np.zeros_like(z)
        assert e.grad is not None
        return -e.llf / N, -e.grad / N

    res = optimize.minimize(
        fun,
        x,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "ftol": tol * 1e-3, "gtol": tol, "maxcor": 20},
    )
    xf = res.x if res.fun <= fun(x)[0] else x
    f, g = fun(xf)
    gmax = float(np.max(np.abs(g))) if g.size else 0.0
    return StartResult(
        x=xf,
        llf=-f * N,
        converged=bool(np.isfinite(f) and gmax < 1e-4),
        n_em=it,
        n_eval=int(res.nfev),
        grad_max=gmax,
    )


def hessian(x: Array, lay: Layout, st: SubjectStats) -> Array:
    """Hessian of the log-likelihood at ``x``: central differences of the analytic
    gradient, symmetrised."""
    from alsprog._numdiff import hessian_from_gradient

    def grad(z: Array) -> Array:
        g = evaluate(z, lay, st).grad
        assert g is not None
        return g

    return hessian_from_gradient(grad, x)


def newton_polish(
    x: Array, lay: Layout, st: SubjectStats, *, n_steps: int = 5
) -> tuple[Array, Array]:
    """A few Newton steps (finite-difference Hessian, step halving) from a quasi-Newton
    optimum; returns the point and the Hessian there."""
    ev = evaluate(x, lay, st)
    H = hessian(x, lay, st)
    for _ in range(n_steps):
        assert ev.grad is not None
        try:
            step = -np.linalg.solve(H, ev.grad)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or ev.grad @ step <= 0:
            break  # not an ascent direction: the Hessian is not negative definite
        for _half in range(10):
            trial = evaluate(x + step, lay, st)
            if np.isfinite(trial.llf) and trial.llf >= ev.llf:
                break
            step = step / 2
        else:
            break
        x, ev = x + step, trial
        H = hessian(x, lay, st)
        if np.max(np.abs(step)) < 1e-10:
            break
    return x, H


def _kmeans(
    F: Array, K: int, rng: np.random.Generator, n_iter: int = 50
) -> npt.NDArray[np.intp]:
    """Lloyd's k-means with k-means++ seeding; returns labels."""
    N = F.shape[0]
    centres = [F[rng.integers(N)]]
    for _ in range(1, K):
        d2 = np.min(((F[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        tot = d2.sum()
        i = rng.choice(N, p=d2 / tot) if tot > 0 else rng.integers(N)
        centres.append(F[i])
    C = np.array(centres)
    lab = np.zeros(N, dtype=np.intp)
    for it in range(n_iter):
        new = np.argmin(((F[:, None, :] - C[None]) ** 2).sum(-1), axis=1)
        if it and np.array_equal(new, lab):
            break
        lab = new
        for k in range(K):
            if np.any(lab == k):
                C[k] = F[lab == k].mean(axis=0)
    return lab


def subject_features(
    x1: Array, lay1: Layout, st: SubjectStats, mix: npt.NDArray[np.bool_]
) -> Array:
    """Per-subject coefficients of the class-specific columns: least squares of each
    subject's outcome, less the shared fixed part of the one-class fit, on its
    class-specific columns, shrunk lightly towards the one-class estimates (so
    columns constant within a subject stay estimable)."""
    betas, *_ = lay1.unpack(x1)
    beta = betas[0]
    XtX = st.XtX[:, mix][:, :, mix]
    rhs0 = st.Xty[:, mix] - st.XtX[:, mix][:, :, ~mix] @ beta[~mix]
    lam = 1e-3 * (np.trace(XtX, axis1=1, axis2=2) / XtX.shape[1] + 1.0)
    A = XtX + lam[:, None, None] * np.eye(XtX.shape[1])
    rhs = rhs0 + lam[:, None] * beta[mix][None]
    F: Array = np.linalg.solve(A, rhs[:, :, None])[:, :, 0]
    return F


def kmeans_start(
    x1: Array,
    lay1: Layout,
    lay: Layout,
    st: SubjectStats,
    F: Array,
    rng: np.random.Generator,
) -> Array:
    """A start from a k-means partition of the per-subject coefficients ``F``: the
    partition as posteriors, then one M-step from the one-class covariance."""
    sd = F.std(axis=0)
    lab = _kmeans(F / np.where(sd > 0, sd, 1.0), lay.K, rng)
    W = np.full((st.n_subjects, lay.K), 0.02 / max(lay.K - 1, 1))
    W[np.arange(st.n_subjects), lab] = 0.98 if lay.K > 1 else 1.0
    return em_step(_broadcast(x1, lay1, lay), lay, st, W)


def perturbed_start(
    x1: Array, lay1: Layout, lay: Layout, F: Array, rng: np.random.Generator
) -> Array:
    """A random start: the one-class fit with each class's specific fixed effects
    moved by a normal draw scaled by the spread of the per-subject coefficients."""
    betas, _, G, s2, _ = lay1.unpack(x1)
    sd = F.std(axis=0)
    new = np.repeat(betas, lay.K, axis=0)
    new[:, lay.mix] += rng.standard_normal((lay.K, lay.pm)) * sd[None, :]
    pi = rng.dirichlet(np.full(lay.K, 5.0))
    return lay.pack(new, 0.5 * G, s2, pi)


def _broadcast(x1: Array, lay1: Layout, lay: Layout) -> Array:
    betas, _, G, s2, _ = lay1.unpack(x1)
    return lay.pack(np.repeat(betas, lay.K, axis=0), G, s2, np.full(lay.K, 1 / lay.K))
