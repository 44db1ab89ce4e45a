"""The numerics of the D50 sigmoid nonlinear mixed model, as nlme's ``nlme()`` has them.

Owns: the fit (:func:`fit_lb`: the Lindstrom-Bates Laplace-EM of
:func:`alsprog.models.bayes._laplace.laplace_sigmoid`, started from the
typical ALSFRS-R course), and everything nlme reads off the linearised model at
convergence: each subject's Gauss-Newton statistics at its conditional mode
(:class:`SubjectStats`), the Lindstrom-Bates approximate ML log-likelihood
(:func:`lb_loglik`), the generalised least squares fixed effects and their
covariance ``(X'V^-1 X)^-1`` (:func:`gls_fixed`), the log-likelihood of the
linearised model with the fixed effects profiled out (:func:`linearised_loglik`),
nlme's ``apVar`` (:func:`variance_apvar`: the inverse negative Hessian of that
log-likelihood in nlme's natural parameters), each subject's conditional and
prediction-error covariances of ``(log D50_i, log dx_i)`` and the stationarity of
saved modes (:func:`mode_steps`).
Arrays in, arrays out; no tables.
Leaves: the vectorised Gauss-Newton modes and EM to
:mod:`alsprog.models.bayes._laplace`; the estimator to
:mod:`alsprog.models.nlme._model`.

The model: ``y_ij = 48 expit((D50_i - t_ij) / dx_i) + e_ij`` with
``theta_i = (log D50_i, log dx_i) = B x_i + b_i``, ``b_i ~ N(0, Psi)``,
``e_ij ~ N(0, sigma^2)``; ``B`` (2, p) holds the fixed effects (row 0 of log D50,
row 1 of log dx), ``x_i`` the subject's covariates.  At the conditional modes
``theta^_i`` the model is linearised, ``w_i = J_i theta_i + e_i`` with
``w_i = y_i - f(theta^_i) + J_i theta^_i`` and ``J_i = df/dtheta`` there: a linear
mixed model (nlme's "LME step"), whose ML log-likelihood at the converged
estimates is the Lindstrom-Bates approximation nlme reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alsprog.models.bayes._laplace import (
    _inner_modes,
    _jacobian_sums,
    laplace_sigmoid,
)

__all__ = [
    "LbFit",
    "SubjectStats",
    "conditional_cov",
    "fit_lb",
    "gls_fixed",
    "lb_loglik",
    "linearised_loglik",
    "lme_step",
    "mode_steps",
    "natural_params",
    "prediction_error_cov",
    "start_beta",
    "subject_stats",
    "variance_apvar",
]

Array = npt.NDArray[np.float64]

#: EM iterations before the fit turns to nlme's own alternation of PNLS and LME
#: steps (EM's steps shrink where a subject-effect SD heads for zero).
EM_ITER = 100
#: Lower bound of a subject-effect SD in the LME step: an SD there is a boundary
#: (singular) fit.
SD_FLOOR = 1e-5
#: Starting D50 and dx (months since onset) of the typical patient (the Bayesian
#: sigmoid's prior centres, ``docs/domain.md`` §3).
START_D50_DX = (30.0, 10.0)


@dataclass(frozen=True)
class LbFit:
    """The converged Lindstrom-Bates estimates.

    Attributes
    ----------
    beta : ndarray, shape (2, p)
        Fixed effects of log D50 (row 0) and log dx (row 1).
    cov : ndarray, shape (2, 2)
        ``Psi``, the covariance of the subject effects.
    sigma : float
        Residual SD.
    modes : ndarray, shape (G, 2)
        Each subject's conditional mode of ``(log D50_i, log dx_i)``.
    iterations : int
        EM iterations run.
    converged : bool
        The iterations stopped before ``max_iter``.
    """

    beta: Array
    cov: Array
    sigma: float
    modes: Array
    iterations: int
    converged: bool


@dataclass(frozen=True)
class SubjectStats:
    """Each subject's Gauss-Newton statistics at the modes ``theta^_i``.

    ``n`` (G,) visits; ``jj`` (G, 2, 2) ``J_i'J_i``; ``jr`` (G, 2) ``J_i'r_i`` with
    ``r_i = y_i - f(theta^_i)``; ``rss`` (G,) ``r_i'r_i``; ``modes`` (G, 2); and the
    working response's ``u`` (G, 2) ``J_i'w_i`` and ``ww`` (G,) ``w_i'w_i``.
    """

    n: Array
    jj: Array
    jr: Array
    rss: Array
    modes: Array
    u: Array
    ww: Array


def start_beta(Xs: Array) -> Array:
    """Starting fixed effects: every subject at the typical D50 and dx.

    The least-squares fit of the constant ``(log 30, log 10)`` on the subject
    design (the intercept alone with an intercept; each level with a
    cell-means coding).

    Examples
    --------
    >>> np.exp(start_beta(np.ones((4, 1)))).round(6).ravel().tolist()
    [30.0, 10.0]
    """
    w = np.linalg.pinv(Xs) @ np.ones(len(Xs))
    return np.outer(np.log(START_D50_DX), w)


def fit_lb(
    y: Array,
    t: Array,
    groups: npt.NDArray[np.intp],
    Xs: Array,
    *,
    tol: float,
    max_iter: int,
) -> LbFit:
    """The Lindstrom-Bates fixed point, from :func:`start_beta`.

    First the Laplace-EM of
    :func:`~alsprog.models.bayes._laplace.laplace_sigmoid` (at most
    :data:`EM_ITER` iterations); where it has not converged by then, nlme's own
    alternation until nothing changes by ``tol``: the LME step
    (:func:`lme_step`: ``Psi`` and ``sigma`` maximising the log-likelihood of the
    model linearised at the modes, the fixed effects by GLS) and the PNLS step
    (each patient's conditional mode given those, by penalised Gauss-Newton).
    Both have nlme's fixed point: modes that solve the penalised nonlinear least
    squares given ``(Psi, sigma)`` (the fixed effects that solve it jointly with
    the modes are the least-squares fit of the modes on the covariates, the GLS
    of the linearised model) and ``(B, Psi, sigma)`` a stationary point of the ML
    log-likelihood of the model linearised there.
    """
    first = min(int(max_iter), EM_ITER)
    fit = laplace_sigmoid(
        y, t, groups, Xs, start_beta=start_beta(Xs), max_iter=first, tol=tol
    )
    beta, cov, sigma = fit.beta, fit.cov, float(fit.sigma)
    modes = np.asarray(fit.modes, dtype=float)
    converged = fit.iterations < first
    iterations = int(fit.iterations)
    while not converged and iterations < max_iter:
        iterations += 1
        st = subject_stats(modes, y, t, groups)
        new_cov, new_sigma = lme_step(st, Xs, cov, sigma)
        new_beta, _ = gls_fixed(st, Xs, new_cov, new_sigma)
        modes = _inner_modes(
            modes,
            Xs @ new_beta.T,
            np.asarray(np.linalg.inv(new_cov), dtype=np.float64),
            new_sigma**2,
            y,
            t,
            groups,
            50,
        )
        change = max(
            float(np.max(np.abs(new_beta - beta))),
            float(
                np.max(
                    np.abs(
                        natural_params(new_cov, new_sigma) - natural_params(cov, sigma)
                    )
                )
            ),
        )
        beta, cov, sigma = new_beta, new_cov, new_sigma
        converged = change < tol
    return LbFit(
        beta=np.asarray(beta, dtype=float),
        cov=np.asarray(cov, dtype=float),
        sigma=float(sigma),
        modes=modes,
        iterations=iterations,
        converged=bool(converged),
    )


def lme_step(
    st: SubjectStats, Xs: Array, cov: Array, sigma: float
) -> tuple[Array, float]:
    """nlme's LME step: ``(Psi, sigma)`` maximising :func:`linearised_loglik`.

    L-BFGS-B in nlme's natural parameters (:func:`natural_params`) from the
    current values, with central-difference gradients; the log SDs are bounded
    below at ``log`` :data:`SD_FLOOR` (a boundary fit stops there).
    """
    from scipy.optimize import minimize

    lo = math.log(SD_FLOOR)
    x0 = natural_params(cov, sigma)
    x0[:2] = np.maximum(x0[:2], lo)
    x0[2] = float(np.clip(x0[2], -20.0, 20.0))

    def f(x: Array) -> float:
        c, s = _from_natural(x)
        return -linearised_loglik(st, Xs, c, s)

    def grad(x: Array) -> Array:
        h = 1e-5
        g = np.empty(len(x))
        for k in range(len(x)):
            e = np.zeros(len(x))
            e[k] = h
            g[k] = (f(x + e) - f(x - e)) / (2 * h)
        return g

    res = minimize(
        f,
        x0,
        jac=grad,
        method="L-BFGS-B",
        bounds=[(lo, None), (lo, None), (-20.0, 20.0), (None, None)],
        options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": 500},
    )
    new_cov, new_sigma = _from_natural(np.asarray(res.x, dtype=float))
    return new_cov, float(new_sigma)


def subject_stats(
    modes: Array, y: Array, t: Array, groups: npt.NDArray[np.intp]
) -> SubjectStats:
    """:class:`SubjectStats` at ``modes`` (G, 2).

    Examples
    --------
    >>> st = subject_stats(np.log([[30.0, 10.0]]), np.array([24.0]), np.array([30.0]),
    ...                    np.zeros(1, dtype=np.intp))
    >>> round(float(st.rss[0]), 12), st.jj.shape  # the curve is 24 at D50
    (0.0, (1, 2, 2))
    """
    G = len(modes)
    jj3, jr, rss = _jacobian_sums(modes, y, t, groups, G)
    jj = np.empty((G, 2, 2))
    jj[:, 0, 0], jj[:, 0, 1], jj[:, 1, 1] = jj3[:, 0], jj3[:, 1], jj3[:, 2]
    jj[:, 1, 0] = jj3[:, 1]
    u = jr + np.einsum("gij,gj->gi", jj, modes)
    ww = rss + 2.0 * np.einsum("gi,gi->g", modes, jr)
    ww = ww + np.einsum("gi,gij,gj->g", modes, jj, modes)
    n = np.bincount(groups, minlength=G).astype(float)
    return SubjectStats(n=n, jj=jj, jr=jr, rss=rss, modes=modes, u=u, ww=ww)


def conditional_cov(st: SubjectStats, cov: Array, sigma: float) -> Array:
    """``C_i = (J_i'J_i / sigma^2 + Psi^-1)^-1`` (G, 2, 2): the covariance of
    ``theta_i`` given the subject's visits in the linearised model (the inverse of
    the Gauss-Newton curvature of the penalised objective at the mode)."""
    return np.linalg.inv(st.jj / sigma**2 + np.linalg.inv(cov))


def lb_loglik(
    st: SubjectStats, Xs: Array, beta: Array, cov: Array, sigma: float
) -> float:
    """The Lindstrom-Bates approximate ML log-likelihood (nlme's ``logLik``).

    The Laplace approximation with the Gauss-Newton Hessian at the modes,

    ``sum_i [-n_i/2 log(2 pi sigma^2) - r_i'r_i/(2 sigma^2) - d_i'Psi^-1 d_i/2
    - log|Psi|/2 - log|J_i'J_i/sigma^2 + Psi^-1|/2]``, ``d_i = theta^_i - B x_i``,

    which equals the ML log-likelihood of the linearised model at the modes.
    """
    prec = np.linalg.inv(cov)
    d = st.modes - Xs @ beta.T
    K = st.jj / sigma**2 + prec
    _, logdet_k = np.linalg.slogdet(K)
    _, logdet_psi = np.linalg.slogdet(cov)
    quad = np.einsum("gi,ij,gj->g", d, prec, d)
    ll = (
        -0.5 * st.n * math.log(2 * math.pi * sigma**2)
        - 0.5 * st.rss / sigma**2
        - 0.5 * quad
        - 0.5 * logdet_psi
        - 0.5 * logdet_k
    )
    return float(ll.sum())


def _inv2(m: Array) -> tuple[Array, Array]:
    """Inverse and determinant of a stack of symmetric 2 x 2 matrices (closed form)."""
    det = m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] ** 2
    inv = np.empty_like(m)
    inv[..., 0, 0] = m[..., 1, 1] / det
    inv[..., 1, 1] = m[..., 0, 0] / det
    inv[..., 0, 1] = inv[..., 1, 0] = -m[..., 0, 1] / det
    return inv, det


def _gls_parts(
    st: SubjectStats, cov: Array, sigma: float
) -> tuple[Array, Array, Array, Array]:
    """Per subject ``M_i = J'V^-1 J`` (G, 2, 2), ``h_i = J'V^-1 w`` (G, 2), ``C_i``
    and ``log|V_i| - n_i log sigma^2`` of the linearised model."""
    A = st.jj / sigma**2
    prec, det_psi = _inv2(cov)
    C, det_k = _inv2(A + prec)
    AC = A @ C
    M = A - AC @ A
    h = (st.u - np.einsum("gij,gj->gi", AC, st.u)) / sigma**2
    logdet = np.log(det_psi) + np.log(det_k)
    return M, h, C, logdet


def _blocks(Xs: Array, M: Array) -> Array:
    """``sum_i (I_2 (x) x_i) M_i (I_2 (x) x_i')`` (2p, 2p), effects outermost."""
    p = Xs.shape[1]
    out = np.empty((2 * p, 2 * p))
    for k in range(2):
        for m in range(2):
            out[k * p : (k + 1) * p, m * p : (m + 1) * p] = (
                Xs * M[:, k, m, None]
            ).T @ Xs
    return out


def _gls(Xs: Array, M: Array, h: Array) -> tuple[Array, Array]:
    info = _blocks(Xs, M)
    rhs = np.concatenate([Xs.T @ h[:, 0], Xs.T @ h[:, 1]])
    cov_beta = np.linalg.inv(info)
    cov_beta = 0.5 * (cov_beta + cov_beta.T)
    return (cov_beta @ rhs).reshape(2, -1), cov_beta


def gls_fixed(
    st: SubjectStats, Xs: Array, cov: Array, sigma: float
) -> tuple[Array, Array]:
    """GLS fixed effects (2, p) of the linearised model and their covariance
    ``(X'V^-1 X)^-1`` (2p, 2p; log D50's terms first): nlme's ``vcov``.

    The fixed effects' design in the linearised model is ``J_i (I_2 (x) x_i')``,
    the random effects' ``J_i``, ``V_i = J_i Psi J_i' + sigma^2 I``; by Woodbury
    ``J_i'V_i^-1 J_i = A_i - A_i C_i A_i`` with ``A_i = J_i'J_i / sigma^2``, so
    subjects with a single visit (singular ``A_i``) are fine.
    """
    M, h, _, _ = _gls_parts(st, cov, sigma)
    return _gls(Xs, M, h)


def linearised_loglik(st: SubjectStats, Xs: Array, cov: Array, sigma: float) -> float:
    """ML log-likelihood of the linearised model at ``(Psi, sigma)``, the fixed
    effects at their GLS values (profiled out): the function nlme's ``apVar``
    differentiates and its LME step maximises."""
    M, h, C, logdet = _gls_parts(st, cov, sigma)
    beta, _ = _gls(Xs, M, h)
    m = Xs @ beta.T
    A = st.jj / sigma**2
    # (w - Jm)'V^-1 (w - Jm) = ww/s2 - 2 m'u/s2 + m'Am - (u/s2 - Am)'C(u/s2 - Am)
    q = st.u / sigma**2 - np.einsum("gij,gj->gi", A, m)
    quad = (
        st.ww / sigma**2
        - 2.0 * np.einsum("gi,gi->g", m, st.u) / sigma**2
        + np.einsum("gi,gij,gj->g", m, A, m)
        - np.einsum("gi,gij,gj->g", q, C, q)
    )
    ll = -0.5 * st.n * math.log(2 * math.pi * sigma**2) - 0.5 * logdet - 0.5 * quad
    return float(ll.sum())


def natural_params(cov: Array, sigma: float) -> Array:
    """nlme's parameters of ``apVar``: ``log sd_1``, ``log sd_2``,
    ``log((1 + r)/(1 - r))`` (``pdNatural`` of ``Psi``) and ``log sigma``.

    Examples
    --------
    >>> natural_params(np.diag([4.0, 1.0]), 2.0).tolist()
    [0.6931471805599453, 0.0, 0.0, 0.6931471805599453]
    """
    sd = np.sqrt(np.diag(cov))
    r = cov[0, 1] / (sd[0] * sd[1])
    return np.array(
        [
            math.log(sd[0]),
            math.log(sd[1]),
            math.log((1 + r) / (1 - r)),
            math.log(sigma),
        ]
    )


def _from_natural(par: Array) -> tuple[Array, float]:
    sigma = math.exp(par[3])
    sd = np.exp(par[:2])
    r = math.tanh(par[2] / 2)
    cov = np.array([[sd[0] ** 2, r * sd[0] * sd[1]], [r * sd[0] * sd[1], sd[1] ** 2]])
    return cov, sigma


def variance_apvar(
    st: SubjectStats, Xs: Array, cov: Array, sigma: float
) -> tuple[Array, Array]:
    """nlme's ``apVar``: the natural parameters (:func:`natural_params`) and the
    inverse of the negative Hessian of :func:`linearised_loglik` in them (central
    differences, step ``1e-4`` per parameter); NaN where the Hessian is not
    negative definite (nlme: "Non-positive definite approximate variance-covariance").
    """
    par = natural_params(cov, sigma)
    k = len(par)

    def f(x: Array) -> float:
        c, s = _from_natural(x)
        return linearised_loglik(st, Xs, c, s)

    h = 1e-4
    H = np.empty((k, k))
    f0 = f(par)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h
        H[i, i] = (f(par + ei) - 2 * f0 + f(par - ei)) / h**2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h
            H[i, j] = H[j, i] = (
                f(par + ei + ej)
                - f(par + ei - ej)
                - f(par - ei + ej)
                + f(par - ei - ej)
            ) / (4 * h**2)
    if np.any(np.linalg.eigvalsh(H) >= 0):
        return par, np.full((k, k), np.nan)
    V = np.linalg.inv(-H)
    return par, 0.5 * (V + V.T)


def prediction_error_cov(
    st: SubjectStats, Xs: Array, cov: Array, sigma: float, cov_beta: Array
) -> Array:
    """Each fitted subject's ``Var(theta^_i - theta_i)`` (G, 2, 2) in the linearised
    model: Henderson's ``C_i + C_i Psi^-1 X_i Cov(B) X_i' Psi^-1 C_i`` (the
    conditional covariance plus the fixed effects' uncertainty carried through the
    shrinkage)."""
    C = conditional_cov(st, cov, sigma)
    p = Xs.shape[1]
    G = len(Xs)
    Xi = np.zeros((G, 2, 2 * p))
    Xi[:, 0, :p], Xi[:, 1, p:] = Xs, Xs
    L = C @ np.linalg.inv(cov) @ Xi  # (G, 2, 2p)
    return C + L @ cov_beta @ np.swapaxes(L, 1, 2)


def mode_steps(
    st: SubjectStats, Xs: Array, beta: Array, cov: Array, sigma: float
) -> Array:
    """The Gauss-Newton step ``|C_i grad_i|`` (G,) of each subject's penalised
    objective at ``modes``: about zero at a conditional mode."""
    d = st.modes - Xs @ beta.T
    grad = st.jr / sigma**2 - d @ np.linalg.inv(cov)
    step = np.einsum("gij,gj->gi", conditional_cov(st, cov, sigma), grad)
    return np.asarray(np.max(np.abs(step), axis=1), dtype=float)
