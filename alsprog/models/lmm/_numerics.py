"""Exact profiled REML/ML for linear mixed models with one grouping factor.

Owns: the array functions behind :class:`~alsprog.models.LinearMixedModel`: reduction
of each group to its sufficient statistics, the profiled deviance over the relative
covariance factor theta with its exact gradient, the optimiser, and the estimates
(fixed effects, covariance, conditional modes) at the optimum.
Leaves: formulas, data frames and reporting to :mod:`alsprog.models.lmm._model`.

Notation follows lme4 (Bates, Maechler, Bolker & Walker 2015, J Stat Softw 67(1),
sections 3.2-3.4): ``b = Lambda u``, ``u ~ N(0, sigma^2 I)``, ``e ~ N(0, sigma^2 I)``.
With one grouping factor ``Z`` is block diagonal, so every quantity reduces to sums over
groups of q x q and q x p pieces computed from the per-group statistics
``S_i = Z_i'Z_i``, ``Z_i'X_i``, ``Z_i'y_i`` plus the global ``X'X``, ``X'y``, ``y'y``.
With ``M_i = Lambda' S_i Lambda + I`` and ``Q_i = Lambda M_i^{-1} Lambda'``:

* ``log|V| = sum_i log|M_i|`` (``V = I + Z Lambda Lambda' Z'``),
* ``C = X'V^{-1}X = X'X - sum_i (Z_i'X_i)' Q_i Z_i'X_i`` (lme4's ``R_X'R_X``),
* ``beta = C^{-1} X'V^{-1}y``, ``r^2 = y'V^{-1}y - beta'X'V^{-1}y``,
* ML deviance ``log|V| + n (1 + log(2 pi r^2 / n))``,
  REML deviance ``log|V| + log|C| + (n-p) (1 + log(2 pi r^2 / (n-p)))``.

The gradient with respect to the entries of Lambda is
``2 (sum A_i - [sum B_i C^{-1} B_i'] - nu/r^2 sum w_i w_i') Lambda`` with
``A_i = Z_i'V_i^{-1}Z_i``, ``B_i = Z_i'V_i^{-1}X_i``, ``w_i = Z_i'V_i^{-1}(y_i - X_i beta)``,
``nu = n - p`` (REML, bracketed term included) or ``n`` (ML, bracketed term omitted).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "GroupStats",
    "LmmEstimates",
    "compute_group_stats",
    "estimates_at",
    "fit_profiled",
    "profiled_deviance",
]

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
_LOG2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class GroupStats:
    """Sufficient statistics of a mixed model with one grouping factor.

    Attributes
    ----------
    ZtZ : ndarray, shape (G, q, q)
    ZtX : ndarray, shape (G, q, p)
    Zty : ndarray, shape (G, q)
    XtX : ndarray, shape (p, p)
    Xty : ndarray, shape (p,)
    yty : float
    n : int
        Number of observations.
    n_per_group : ndarray of int, shape (G,)
    """

    ZtZ: Array
    ZtX: Array
    Zty: Array
    XtX: Array
    Xty: Array
    yty: float
    n: int
    n_per_group: npt.NDArray[np.intp]

    @property
    def p(self) -> int:
        """Number of fixed effects."""
        return int(self.XtX.shape[0])

    @property
    def q(self) -> int:
        """Number of random effects per group."""
        return int(self.ZtZ.shape[1])

    @property
    def G(self) -> int:
        """Number of groups."""
        return int(self.ZtZ.shape[0])

    def components(self) -> _Components:
        """The statistics laid out component-major (one length-G vector per entry)."""
        comp = self.__dict__.get("_components")
        if comp is None:
            q = self.q
            S = [
                [np.ascontiguousarray(self.ZtZ[:, j, k]) for k in range(q)]
                for j in range(q)
            ]
            ZX = [np.ascontiguousarray(self.ZtX[:, j, :]) for j in range(q)]
            Zy = [np.ascontiguousarray(self.Zty[:, j]) for j in range(q)]
            comp = _Components(S, ZX, Zy, self.ZtZ.sum(axis=0))
            object.__setattr__(self, "_components", comp)
        return comp


@dataclass(frozen=True)
class _Components:
    S: list[list[Array]]  # S[j][k]: (G,)
    ZX: list[Array]  # ZX[j]: (G, p)
    Zy: list[Array]  # Zy[j]: (G,)
    S_sum: Array  # (q, q)


def compute_group_stats(
    X: Array, Z: Array, y: Array, groups: npt.NDArray[np.intp], n_groups: int
) -> GroupStats:
    """Reduce rows to per-group sufficient statistics (one pass over the rows).

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Fixed-effects design.
    Z : ndarray, shape (n, q)
        Random-effects design (the columns of one group's block).
    y : ndarray, shape (n,)
        Outcome.
    groups : ndarray of int, shape (n,)
        Group code of each row, in ``0 .. n_groups - 1``; every code must occur.
    n_groups : int
        Number of groups G.

    Returns
    -------
    GroupStats

    Raises
    ------
    ValueError
        If a group code in ``0 .. n_groups - 1`` has no rows or is out of range.

    Examples
    --------
    >>> X = np.ones((4, 1)); Z = np.ones((4, 1)); y = np.array([1.0, 2, 3, 4])
    >>> s = compute_group_stats(X, Z, y, np.array([0, 0, 1, 1]), 2)
    >>> s.ZtZ.ravel().tolist(), s.Zty.ravel().tolist(), s.yty
    ([2.0, 2.0], [3.0, 7.0], 30.0)
    """
    from scipy import sparse

    X = np.asarray(X, dtype=float)
    Z = np.asarray(Z, dtype=float)
    y = np.asarray(y, dtype=float)
    groups = np.asarray(groups, dtype=np.intp)
    n, p = X.shape
    q = Z.shape[1]
    if n and (groups.min() < 0 or groups.max() >= n_groups):
        raise ValueError("group codes must lie in 0..n_groups-1")
    counts = np.bincount(groups, minlength=n_groups)
    if np.any(counts == 0):
        raise ValueError("every group code 0..n_groups-1 must occur at least once")
    m = q + p + 1
    W = np.empty((n, q * m))
    for a in range(q):
        blk = W[:, a * m : (a + 1) * m]
        blk[:, :q] = Z * Z[:, a : a + 1]
        blk[:, q : q + p] = X * Z[:, a : a + 1]
        blk[:, q + p] = y * Z[:, a]
    J = sparse.csr_matrix(
        (np.ones(n), groups, np.arange(n + 1)), shape=(n, n_groups)
    ).T.tocsr()
    out = np.asarray(J @ W).reshape(n_groups, q, m)
    XtX = X.T @ X
    return GroupStats(
        ZtZ=np.ascontiguousarray(out[:, :, :q]),
        ZtX=np.ascontiguousarray(out[:, :, q : q + p]),
        Zty=np.ascontiguousarray(out[:, :, q + p]),
        XtX=0.5 * (XtX + XtX.T),
        Xty=X.T @ y,
        yty=float(y @ y),
        n=n,
        n_per_group=counts,
    )


def _inv_logdet(M: list[list[Array]]) -> tuple[list[list[Array]], Array]:
    """Inverse and log-determinant of G symmetric positive definite q x q matrices.

    ``M[j][k]`` (j <= k filled) are length-G vectors; returns the inverse in the same
    layout (both triangles filled).
    """
    q = len(M)
    if q == 1:
        return [[1.0 / M[0][0]]], np.log(M[0][0])
    if q == 2:
        a, b, d = M[0][0], M[0][1], M[1][1]
        det = a * d - b * b
        r = 1.0 / det
        off = -b * r
        return [[d * r, off], [off, a * r]], np.log(det)
    G = M[0][0].shape[0]
    stack = np.empty((G, q, q))
    for j in range(q):
        for k in range(j, q):
            stack[:, j, k] = stack[:, k, j] = M[j][k]
    L = np.linalg.cholesky(stack)
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    inv = np.linalg.inv(stack)
    return [[inv[:, j, k] for k in range(q)] for j in range(q)], logdet  # type: ignore[misc]


@dataclass(frozen=True)
class _Pieces:
    deviance: float
    beta: Array
    r2: float
    C: Array
    C_chol: Array
    Q: list[list[Array]]  # Q[j][k] (G,), symmetric, both triangles
    Minv: list[list[Array]]
    lam: Array
    resid_z: list[Array]  # Z_i'(y_i - X_i beta), component j: (G,)
    logdet_v: float
    logdet_c: float


def _evaluate(lam: Array, stats: GroupStats, reml: bool) -> _Pieces:
    from scipy import linalg  # imported here: keeps `import alsprog.models` light

    cp = stats.components()
    S, ZX, Zy = cp.S, cp.ZX, cp.Zy
    q, p, n = stats.q, stats.p, stats.n
    nzl = [
        (m, k, float(lam[m, k])) for m in range(q) for k in range(q) if lam[m, k] != 0
    ]
    # T = S Lambda
    T: list[list[Array | float]] = [[0.0] * q for _ in range(q)]
    for j in range(q):
        for m, k, v in nzl:
            T[j][k] = T[j][k] + S[j][m] * v
    # M = Lambda' T + I  (upper triangle)
    M: list[list[Array]] = [[None] * q for _ in range(q)]  # type: ignore[list-item]
    for j in range(q):
        for k in range(j, q):
            acc: Array | float = 1.0 if j == k else 0.0
            for m in range(q):
                if lam[m, j] != 0:
                    acc = acc + float(lam[m, j]) * T[m][k]
            M[j][k] = np.broadcast_to(np.asarray(acc, dtype=float), (stats.G,))
    Minv, logdet_m = _inv_logdet(M)
    # R = Minv Lambda';  Q = Lambda R  (symmetric)
    R = [
        [
            sum(
                (Minv[m][i] * float(lam[k, i]) for i in range(q) if lam[k, i] != 0),
                np.zeros(stats.G),
            )
            for k in range(q)
        ]
        for m in range(q)
    ]
    Q: list[list[Array]] = [[None] * q for _ in range(q)]  # type: ignore[list-item]
    for j in range(q):
        for k in range(j, q):
            acc2 = np.zeros(stats.G)
            for m in range(q):
                if lam[j, m] != 0:
                    acc2 = acc2 + float(lam[j, m]) * R[m][k]
            Q[j][k] = acc2
            Q[k][j] = acc2
    QZy = [sum(Q[j][k] * Zy[k] for k in range(q)) for j in range(q)]
    C = stats.XtX.copy()
    xvy = stats.Xty.copy()
    yvy = stats.yty
    for j in range(q):
        # C -= sum_k ZX_j' diag(Q_jk) ZX_k, each (j, k) pair once
        for k in range(j, q):
            part = (ZX[j] * Q[j][k][:, None]).T @ ZX[k]
            C -= part if j == k else part + part.T
        xvy -= ZX[j].T @ QZy[j]
        yvy -= float(Zy[j] @ QZy[j])
    C = 0.5 * (C + C.T)
    try:
        C_chol = linalg.cholesky(C, lower=True)
    except linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError("X'V^-1X is not positive definite") from exc
    beta = linalg.cho_solve((C_chol, True), xvy)
    r2 = yvy - float(beta @ xvy)
    logdet_v = float(np.sum(logdet_m))
    logdet_c = 2.0 * float(np.log(np.diag(C_chol)).sum())
    nu = n - p if reml else n
    if r2 <= 0.0:
        r2 = np.finfo(float).tiny
    dev = logdet_v + nu * (1.0 + _LOG2PI + np.log(r2 / nu))
    if reml:
        dev += logdet_c
    resid_z = [Zy[j] - ZX[j] @ beta for j in range(q)]
    return _Pieces(
        deviance=float(dev),
        beta=beta,
        r2=float(r2),
        C=C,
        C_chol=C_chol,
        Q=Q,
        Minv=Minv,
        lam=lam,
        resid_z=resid_z,
        logdet_v=logdet_v,
        logdet_c=logdet_c,
    )


def _gradient_lambda(pc: _Pieces, stats: GroupStats, reml: bool) -> Array:
    """Gradient of the profiled deviance with respect to every entry of Lambda."""
    from scipy import linalg

    cp = stats.components()
    S, ZX = cp.S, cp.ZX
    q, p = stats.q, stats.p
    SQ = [
        [sum(S[j][m] * pc.Q[m][k] for m in range(q)) for k in range(q)]
        for j in range(q)
    ]
    A = cp.S_sum.copy()
    for j in range(q):
        for k in range(q):
            A[j, k] -= sum(float(SQ[j][m] @ S[m][k]) for m in range(q))
    e = pc.resid_z
    w = [e[j] - sum(SQ[j][m] * e[m] for m in range(q)) for j in range(q)]
    Wm = np.array([[float(w[j] @ w[k]) for k in range(q)] for j in range(q)])
    nu = stats.n - p if reml else stats.n
    core = A - (nu / pc.r2) * Wm
    if reml and p > 0:
        # B_i = (I - S_i Q_i) Z_i'X_i, so sum_i B_i C^-1 B_i' is a sum over groups of
        # (I - S_i Q_i) H_i (I - S_i Q_i)' with H_i[a, b] = (Z_i'X_i)_a C^-1 (Z_i'X_i)_b'
        Cinv = linalg.cho_solve((pc.C_chol, True), np.eye(p))
        ZXC = [ZX[a] @ Cinv for a in range(q)]
        h = [[np.einsum("gp,gp->g", ZXC[a], ZX[b]) for b in range(q)] for a in range(q)]
        cm = [[(1.0 if j == a else 0.0) - SQ[j][a] for a in range(q)] for j in range(q)]
        bcb = np.empty((q, q))
        for j in range(q):
            for k in range(j, q):
                tot = 0.0
                for a in range(q):
                    for b in range(q):
                        hab = h[min(a, b)][max(a, b)]
                        tot += float(np.sum(cm[j][a] * cm[k][b] * hab))
                bcb[j, k] = bcb[k, j] = tot
        core -= bcb
    return 2.0 * core @ pc.lam


def profiled_deviance(
    theta: Array,
    stats: GroupStats,
    rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp],
    *,
    reml: bool = True,
    gradient: bool = False,
) -> float | tuple[float, Array]:
    """Profiled REML or ML deviance (-2 log-likelihood) at ``theta``, on lme4's scale.

    Parameters
    ----------
    theta : ndarray, shape (k,)
        Relative covariance parameters; ``Lambda[rows[j], cols[j]] = theta[j]``.
    stats : GroupStats
        From :func:`compute_group_stats`.
    rows, cols : ndarray of int, shape (k,)
        Positions of theta in the lower-triangular q x q factor Lambda.
    reml : bool, default True
        REML criterion (``True``) or ML deviance (``False``).
    gradient : bool, default False
        Also return the exact gradient with respect to theta.

    Returns
    -------
    float or (float, ndarray)
        The deviance, and its gradient when asked for.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 5); X = np.ones((100, 1)); Z = np.ones((100, 1))
    >>> y = rng.normal(size=20)[g] + rng.normal(size=100)
    >>> s = compute_group_stats(X, Z, y, g, 20)
    >>> d = profiled_deviance(np.array([0.5]), s, np.array([0]), np.array([0]))
    >>> round(d, 4)
    321.7289
    """
    q = stats.q
    lam = np.zeros((q, q))
    lam[rows, cols] = theta
    pc = _evaluate(lam, stats, reml)
    if not gradient:
        return pc.deviance
    g = _gradient_lambda(pc, stats, reml)
    return pc.deviance, g[rows, cols]


@dataclass(frozen=True)
class LmmEstimates:
    """Estimates of a linear mixed model at the optimum of the profiled deviance.

    Attributes
    ----------
    theta : ndarray
        Relative covariance parameters (lme4's ``getME(m, "theta")``).
    beta : ndarray, shape (p,)
    cov_beta : ndarray, shape (p, p)
        ``sigma^2 C^{-1}``.
    sigma2 : float
        Residual variance (REML: ``r^2/(n-p)``, ML: ``r^2/n``).
    cov_re : ndarray, shape (q, q)
        ``sigma^2 Lambda Lambda'``.
    b : ndarray, shape (G, q)
        Conditional modes (BLUPs) of the random effects.
    cov_b : ndarray, shape (G, q, q)
        Conditional covariance of ``b_i`` given the data, ignoring uncertainty in
        beta: ``sigma^2 Lambda M_i^{-1} Lambda'``.
    deviance : float
        REML criterion or ML deviance.
    converged : bool
    n_iter : int
    grad : ndarray
        Gradient at the optimum (with respect to theta).
    message : str
    """

    theta: Array
    beta: Array
    cov_beta: Array
    sigma2: float
    cov_re: Array
    b: Array
    cov_b: Array
    deviance: float
    converged: bool
    n_iter: int
    grad: Array
    message: str
    C: Array
    Minv: Array
    lam: Array


def _stack(comp: list[list[Array]]) -> Array:
    q = len(comp)
    G = np.shape(comp[0][0])[0]
    out = np.empty((G, q, q))
    for j in range(q):
        for k in range(q):
            out[:, j, k] = comp[j][k] if comp[j][k] is not None else comp[k][j]
    return out


def estimates_at(
    theta: Array,
    stats: GroupStats,
    rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp],
    *,
    reml: bool = True,
) -> LmmEstimates:
    """All estimates implied by ``theta`` (no optimisation).

    Parameters
    ----------
    theta, stats, rows, cols, reml
        As for :func:`profiled_deviance`.

    Returns
    -------
    LmmEstimates
        With ``converged=True``, ``n_iter=0``.
    """
    from scipy import linalg

    q = stats.q
    lam = np.zeros((q, q))
    lam[rows, cols] = theta
    pc = _evaluate(lam, stats, reml)
    grad = _gradient_lambda(pc, stats, reml)[rows, cols]
    nu = stats.n - stats.p if reml else stats.n
    sigma2 = pc.r2 / nu
    Cinv = linalg.cho_solve((pc.C_chol, True), np.eye(stats.p))
    Q = _stack(pc.Q)
    b = np.einsum("gij,gj->gi", Q, np.stack(pc.resid_z, axis=1))
    return LmmEstimates(
        theta=np.asarray(theta, dtype=float).copy(),
        beta=pc.beta,
        cov_beta=sigma2 * 0.5 * (Cinv + Cinv.T),
        sigma2=sigma2,
        cov_re=sigma2 * lam @ lam.T,
        b=b,
        cov_b=sigma2 * Q,
        deviance=pc.deviance,
        converged=True,
        n_iter=0,
        grad=grad,
        message="",
        C=pc.C,
        Minv=_stack(pc.Minv),
        lam=lam,
    )


def fit_profiled(
    stats: GroupStats,
    rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp],
    lower: Array,
    *,
    reml: bool = True,
    theta0: Array | None = None,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> LmmEstimates:
    """Minimise the profiled deviance over theta.

    Bounded quasi-Newton (L-BFGS-B) with the exact gradient, stopped once it only
    probes the deviance's rounding noise; then Newton steps with a Hessian from finite
    differences of the exact gradient on the coordinates away from their bounds, until
    the Newton step is below ``sqrt(tol)`` (relative).  A diagonal theta left at 0 is
    probed away from the bound (the deviance is even in it, so 0 is always stationary)
    and the fit restarted from any better point, so boundary fits are genuine.

    Parameters
    ----------
    stats : GroupStats
    rows, cols : ndarray of int
        Positions of theta in Lambda.
    lower : ndarray
        Lower bounds of theta (0 on the diagonal, ``-inf`` off it).
    reml : bool, default True
    theta0 : ndarray, optional
        Start; lme4's (1 on the diagonal, 0 elsewhere) by default.
    tol : float, default 1e-10
        The quasi-Newton phase stops when an iteration lowers the deviance by less
        than ``10 * tol`` (relative); the Newton phase when the step is below
        ``sqrt(tol) * max(1, |theta|)``.
    max_iter : int, default 1000

    Returns
    -------
    LmmEstimates
        ``converged`` is ``True`` when the last Newton step was below the tolerance
        (or every free coordinate is at a bound with the gradient pointing outward),
        or else the projected gradient is below 1e-3 in absolute value (lme4's
        ``check.conv.grad`` scale).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(30), 4); X = np.ones((120, 1)); Z = np.ones((120, 1))
    >>> y = 2 * rng.normal(size=30)[g] + rng.normal(size=120)
    >>> s = compute_group_stats(X, Z, y, g, 30)
    >>> est = fit_profiled(s, np.array([0]), np.array([0]), np.array([0.0]))
    >>> est.converged, round(float(est.theta[0]), 3)
    (True, 1.713)
    """
    from scipy import optimize

    if theta0 is None:
        theta0 = np.where(rows == cols, 1.0, 0.0)
    lower = np.asarray(lower, dtype=float)
    theta0 = np.maximum(np.asarray(theta0, dtype=float), lower)
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    n_eval = 0
    best = _Best(theta0)

    def fun(th: Array) -> tuple[float, Array]:
        nonlocal n_eval
        n_eval += 1
        try:
            d, g = profiled_deviance(  # type: ignore[misc]
                th, stats, rows, cols, reml=reml, gradient=True
            )
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(th)
        best.update(d, th)
        return d, g

    options = {
        "ftol": 10 * tol,
        "gtol": 1e-6 * max(1.0, float(stats.n)),
        "maxiter": max_iter,
        "maxcor": 20,
    }

    def run(start: Array) -> tuple[Array, bool, bool, optimize.OptimizeResult]:
        nonlocal best
        best = _Best(start)
        try:
            res = optimize.minimize(
                fun, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options
            )
        except _Stalled:
            # the line search is probing the deviance's rounding noise: stop there
            # and let the Newton phase finish
            res = optimize.OptimizeResult(
                x=best.theta,
                fun=best.deviance,
                status=0,
                message="stalled at rounding level",
            )
        best.active = False
        th = np.maximum(np.asarray(res.x, dtype=float), lower)
        if res.status == 1:  # iteration limit: report, do not polish past it
            return th, False, True, res
        th, ok = _polish(th, fun, lower, step_tol=np.sqrt(tol))
        return th, ok, False, res

    theta, newton_ok, hit_limit, res = run(theta0)
    # A diagonal theta at 0 is always a stationary point in its own direction (the
    # deviance is even in it), so L-BFGS-B can stop there although the optimum is
    # inside.  Probe away from the bound and restart when that is better.
    for _ in range(3):
        if hit_limit:
            break
        restart = _escape_boundary(theta, stats, rows, cols, lower, reml)
        if restart is None:
            break
        n_eval += 1
        theta, newton_ok, hit_limit, res = run(restart)
    est = estimates_at(theta, stats, rows, cols, reml=reml)
    pg = _projected_gradient(theta, est.grad, lower)
    pg_max = float(np.max(np.abs(pg), initial=0.0))
    converged = bool(
        np.isfinite(est.deviance) and not hit_limit and (newton_ok or pg_max < 1e-3)
    )
    logger.debug(
        "profiled fit: %s; %d evaluations, deviance %.12g, |pg| %.2e",
        res.message,
        n_eval,
        est.deviance,
        pg_max,
    )
    return LmmEstimates(
        **{
            **est.__dict__,
            "converged": converged,
            "n_iter": int(n_eval),
            "message": str(res.message),
        }
    )


def _escape_boundary(
    theta: Array,
    stats: GroupStats,
    rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp],
    lower: Array,
    reml: bool,
) -> Array | None:
    """A better start off the boundary, or None when every probe is worse."""
    at = np.flatnonzero((rows == cols) & (theta <= lower + 1e-10))
    if at.size == 0:
        return None
    d0 = float(profiled_deviance(theta, stats, rows, cols, reml=reml))  # type: ignore[arg-type]
    best_d, best_t = d0, None
    for j in at:
        for t in (1e-3, 1e-2, 0.1, 0.5, 1.0):
            cand = theta.copy()
            cand[j] = t
            try:
                d = float(profiled_deviance(cand, stats, rows, cols, reml=reml))  # type: ignore[arg-type]
            except np.linalg.LinAlgError:
                continue
            if d < best_d - 1e-10 * max(1.0, abs(best_d)):
                best_d, best_t = d, cand
    return best_t


#: Evaluations in a row without improvement after which the quasi-Newton phase stops.
_STALL_EVALS = 6


class _Stalled(Exception):
    """Raised inside the objective to stop L-BFGS-B at the rounding floor."""


class _Best:
    """Best point seen; raises :class:`_Stalled` after too many non-improvements."""

    def __init__(self, theta: Array) -> None:
        self.deviance = np.inf
        self.theta = theta.copy()
        self.since = 0
        self.active = True

    def update(self, deviance: float, theta: Array) -> None:
        if not np.isfinite(self.deviance) or (
            deviance < self.deviance - 1e-12 * abs(self.deviance)
        ):
            self.deviance, self.theta, self.since = deviance, theta.copy(), 0
            return
        # count only probes next to the best point: far-away line-search trials that
        # overshoot are normal progress, not a stall
        near = np.all(
            np.abs(theta - self.theta) <= 1e-5 * np.maximum(1.0, np.abs(self.theta))
        )
        if near:
            self.since += 1
        if self.active and self.since >= _STALL_EVALS:
            raise _Stalled


def _projected_gradient(theta: Array, grad: Array, lower: Array) -> Array:
    pg = grad.copy()
    pg[(theta <= lower) & (grad > 0)] = 0.0
    return pg


def _polish(
    theta: Array,
    fun: object,
    lower: Array,
    *,
    step_tol: float,
    max_steps: int = 6,
) -> tuple[Array, bool]:
    """Newton steps on the free coordinates; returns (theta, converged).

    The Hessian is built once, by forward differences of the exact gradient, and
    reused for every step (the steps are tiny, so it barely changes).
    """
    dg = fun  # callable: theta -> (deviance, gradient)
    d0, g0 = dg(theta)  # type: ignore[operator]
    if not np.isfinite(d0):
        return theta, False
    free = ~((theta <= lower) & (g0 >= 0))
    if not free.any():
        return theta, True
    idx = np.flatnonzero(free)
    k = len(idx)
    H = np.empty((k, k))
    for j, i in enumerate(idx):
        h = 1e-5 * max(1.0, abs(theta[i]))
        tp = theta.copy()
        tp[i] += h
        H[:, j] = (dg(tp)[1][idx] - g0[idx]) / h  # type: ignore[operator]
    H = 0.5 * (H + H.T)
    try:
        if np.linalg.eigvalsh(H).min() <= 0:
            return theta, False
    except np.linalg.LinAlgError:
        return theta, False
    for _ in range(max_steps):
        step = np.linalg.solve(H, g0[idx])
        small = bool(
            np.all(np.abs(step) <= step_tol * np.maximum(1.0, np.abs(theta[idx])))
        )
        cand = theta.copy()
        cand[idx] -= step
        cand = np.maximum(cand, lower)
        d1, g1 = dg(cand)  # type: ignore[operator]
        if not d1 <= d0 + 1e-13 * max(1.0, abs(d0)):
            return theta, small
        theta, d0, g0 = cand, d1, g1
        if small:
            return theta, True
        if np.any((theta[idx] <= lower[idx]) & (g0[idx] > 0)):
            return theta, False  # the free set changed; leave it to the gradient check
    return theta, False
