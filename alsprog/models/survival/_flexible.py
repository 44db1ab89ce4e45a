"""Royston-Parmar flexible parametric survival numerics.

Owns: the restricted cubic spline basis in log time and its derivative
(:func:`rcs_basis`), the default knots (:func:`default_knots`: the extremes of the
log event times and their centiles at equal steps inside, as Stata's ``stpm2`` and
R's ``rstpm2``), the exact log-likelihood with right censoring and delayed entry and
its analytic gradient on the three scales (:func:`rp_loglik`), and the maximum
likelihood fit with standard errors from the observed information
(:func:`rp_fit`, returning :class:`RPFit`).
Leaves: formulas, data checks and the model class to later work (issue 25's
``SurvivalModel``); the Cox model that gives the start to
:mod:`alsprog.models.survival._cox`.

The model (Royston & Parmar 2002, Stat Med 21:2175) is ``g(S(t | x)) = s(log t;
gamma) + x' beta`` with ``s`` a restricted cubic spline and ``g`` the log cumulative
hazard (``scale="hazard"``: proportional hazards, ``beta`` are log hazard ratios),
the log odds of failure (``"odds"``: proportional odds) or the probit of failure
(``"normal"``).  With ``eta = s(log t) + x' beta`` and ``h`` the hazard, the
log-likelihood is ``sum_i d_i log h(t_i) + log S(t_i) - log S(entry_i)``, ``log
h = log(dH/d eta) + log s'(log t) - log t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.special import log_expit, log_ndtr, ndtri

__all__ = ["RPFit", "default_knots", "rcs_basis", "rp_data", "rp_fit", "rp_loglik"]

Array = npt.NDArray[np.float64]
Scale = Literal["hazard", "odds", "normal"]
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def default_knots(log_event_times: Array, df: int) -> Array:
    """``df + 1`` knots: the extremes of the log event times and their centiles at
    ``100 k / df`` % inside (numpy's linear interpolation, R's ``quantile`` type 7).

    Examples
    --------
    >>> default_knots(np.log([1.0, 2, 4, 8]), 1).round(4).tolist()
    [0.0, 2.0794]
    """
    return np.quantile(np.asarray(log_event_times, float), np.linspace(0, 1, df + 1))


def rcs_basis(z: Array, knots: Array) -> tuple[Array, Array]:
    """The restricted cubic spline basis ``[1, z, v_1(z), ...]`` and its derivative in
    ``z``: ``v_j(z) = (z - k_j)^3_+ - l_j (z - k_min)^3_+ - (1 - l_j)(z - k_max)^3_+``
    with ``l_j = (k_max - k_j) / (k_max - k_min)`` (linear beyond the boundary knots).

    Examples
    --------
    >>> B, dB = rcs_basis(np.array([0.0, 1.0]), np.array([0.0, 0.5, 2.0]))
    >>> B.shape, dB[:, 1].tolist()
    ((2, 3), [1.0, 1.0])
    """
    z = np.asarray(z, float)
    kmin, kmax = float(knots[0]), float(knots[-1])
    inner = np.asarray(knots[1:-1], float)
    cols = [np.ones_like(z), z]
    dcols = [np.zeros_like(z), np.ones_like(z)]
    for k in inner:
        lam = (kmax - k) / (kmax - kmin)
        u = [np.maximum(z - a, 0.0) for a in (k, kmin, kmax)]
        cols.append(u[0] ** 3 - lam * u[1] ** 3 - (1 - lam) * u[2] ** 3)
        dcols.append(3 * (u[0] ** 2 - lam * u[1] ** 2 - (1 - lam) * u[2] ** 2))
    return np.column_stack(cols), np.column_stack(dcols)


def _scale_terms(eta: Array, scale: Scale) -> tuple[Array, Array, Array, Array]:
    """``log S``, ``d log S / d eta``, ``log dH/d eta`` and its derivative in eta."""
    if scale == "hazard":
        e = np.exp(eta)
        return -e, -e, eta, np.ones_like(eta)
    if scale == "odds":
        p = np.exp(log_expit(eta))  # F = expit(eta)
        return log_expit(-eta), -p, log_expit(eta), 1.0 - p
    # normal: F = Phi(eta), S = Phi(-eta); dH/deta = phi(eta) / Phi(-eta)
    log_s = log_ndtr(-eta)
    mills = np.exp(-0.5 * eta**2 - _LOG_SQRT_2PI - log_s)  # phi / Phi(-eta)
    return log_s, -mills, -0.5 * eta**2 - _LOG_SQRT_2PI - log_s, -eta + mills


@dataclass(frozen=True)
class _Data:
    B: Array  # basis at exit (n, m)
    dB: Array
    X: Array  # covariates (n, p)
    d: Array  # events (n,)
    log_t: Array
    B0: Array  # basis at entry, rows with entry > 0 (n0, m)
    X0: Array
    scale: str


def rp_data(
    time: Array, event: Array, X: Array, entry: Array, knots: Array, scale: str
) -> _Data:
    """The spline basis at the exit (and delayed-entry) times, with the covariates
    and events: what :func:`rp_loglik` evaluates on."""
    t = np.asarray(time, float)
    B, dB = rcs_basis(np.log(t), knots)
    e0 = np.asarray(entry, float)
    late = e0 > 0
    B0 = (
        rcs_basis(np.log(e0[late]), knots)[0]
        if late.any()
        else np.zeros((0, B.shape[1]))
    )
    Xa = np.asarray(X, float)
    return _Data(B, dB, Xa, np.asarray(event, float), np.log(t), B0, Xa[late], scale)


def rp_loglik(theta: Array, data: _Data) -> tuple[float, Array]:
    """Log-likelihood and its gradient at ``theta = (gamma, beta)``; ``-inf`` (and a
    zero gradient) where the spline decreases at an event or censoring time."""
    m = data.B.shape[1]
    g, b = theta[:m], theta[m:]
    eta = data.B @ g + data.X @ b
    ds = data.dB @ g
    if np.any(ds <= 0):
        return -np.inf, np.zeros_like(theta)
    scale = data.scale
    log_s, dlog_s, log_dh, dlog_dh = _scale_terms(eta, scale)  # type: ignore[arg-type]
    d = data.d
    ll = float(np.sum(d * (log_dh + np.log(ds) - data.log_t) + log_s))
    w = d * dlog_dh + dlog_s  # d ll / d eta
    grad_g = data.B.T @ w + data.dB.T @ (d / ds)
    grad_b = data.X.T @ w
    if len(data.B0):
        eta0 = data.B0 @ g + data.X0 @ b
        log_s0, dlog_s0, _, _ = _scale_terms(eta0, scale)  # type: ignore[arg-type]
        ll -= float(np.sum(log_s0))
        grad_g -= data.B0.T @ dlog_s0
        grad_b -= data.X0.T @ dlog_s0
    return ll, np.concatenate([grad_g, grad_b])


@dataclass(frozen=True)
class RPFit:
    """A fitted Royston-Parmar model: ``knots`` (log time), ``gamma`` (spline),
    ``beta`` (covariates), their covariance ``cov`` and standard errors ``se``
    (``gamma`` then ``beta``), ``loglik``, ``converged`` and ``scale``."""

    knots: Array
    gamma: Array
    beta: Array
    cov: Array
    se: Array
    loglik: float
    converged: bool
    scale: str


def _start(
    t: Array, d: Array, X: Array, entry: Array, knots: Array, scale: Scale
) -> Array:
    """Cox's coefficients and, for the spline, least squares of the transformed
    Breslow cumulative hazard at the event times on the basis."""
    from alsprog.models.survival._cox import cox_fit

    cox = cox_fit(  # a few Newton steps: a start, not the estimate
        t, d, X, entry=np.where(entry > 0, entry, -np.inf), ties="breslow", max_iter=3
    )
    coef = cox.coef if np.all(np.isfinite(cox.coef)) else np.zeros(X.shape[1])
    H = np.clip(cox.basehaz, 1e-8, None)
    if scale == "hazard":
        target = np.log(H)
    elif scale == "odds":
        target = np.log(np.expm1(H))
    else:
        target = ndtri(np.clip(-np.expm1(-H), 1e-10, 1 - 1e-10))
    z = np.log(cox.basehaz_times)
    B, dB = rcs_basis(z, knots)
    ok = np.isfinite(target)
    g = np.zeros(B.shape[1])
    if ok.sum() >= B.shape[1]:
        g = np.linalg.lstsq(B[ok], target[ok], rcond=None)[0]
    if np.any(rcs_basis(np.log(t), knots)[1] @ g <= 0) or not np.all(np.isfinite(g)):
        g = np.zeros(B.shape[1])  # a straight line in log time (a Weibull start)
        if ok.sum() >= 2 and np.ptp(z[ok]) > 0:
            g[:2] = np.polyfit(z[ok], target[ok], 1)[::-1]
        if not g[1] > 0:
            g[:2] = [-np.log(np.mean(t)), 1.0]
    return np.concatenate([g, coef])


def rp_fit(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    X: npt.ArrayLike,
    *,
    entry: npt.ArrayLike | None = None,
    scale: Scale = "hazard",
    df: int = 3,
    knots: npt.ArrayLike | None = None,
    tol: float = 1e-10,
) -> RPFit:
    """Maximum likelihood fit of a Royston-Parmar model.

    Parameters
    ----------
    time, event : array_like, shape (n,)
        Exit time (> 0) and event indicator.
    X : array_like, shape (n, p)
        Covariates (no intercept: the spline has one).
    entry : array_like, shape (n,), optional
        Delayed entry times (0 or absent: at risk from time 0).
    scale : {"hazard", "odds", "normal"}
    df : int, default 3
        Spline degrees of freedom (``df - 1`` inner knots) when ``knots`` is None.
    knots : array_like, optional
        Knots on the log time scale, boundary knots included.
    tol : float
        Convergence on the gradient's largest entry per event.

    Returns
    -------
    RPFit

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random(2000) < 0.5
    >>> t = rng.weibull(1.5, 2000) / np.exp(0.5 * x / 1.5)
    >>> fit = rp_fit(t, np.ones(2000), x[:, None].astype(float), df=1)
    >>> round(float(fit.beta[0]), 1), round(float(fit.gamma[1]), 1)  # HR, shape
    (0.5, 1.5)
    """
    from scipy import optimize

    t = np.asarray(time, float)
    d = np.asarray(event, float)
    Xa = np.asarray(X, float)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    e0 = np.zeros(len(t)) if entry is None else np.asarray(entry, float)
    kn = (
        default_knots(np.log(t[d > 0]), df)
        if knots is None
        else np.asarray(knots, float)
    )
    data = rp_data(t, d, Xa, e0, kn, scale)
    B = data.B
    n_ev = max(float(d.sum()), 1.0)

    def fun(th: Array) -> tuple[float, Array]:
        ll, g = rp_loglik(th, data)
        if not np.isfinite(ll):
            return np.inf, np.zeros_like(th)
        return -ll / n_ev, -g / n_ev

    x0 = _start(t, d, Xa, e0, kn, scale)
    res = optimize.minimize(
        fun, x0, jac=True, method="BFGS", options={"gtol": tol, "maxiter": 2000}
    )
    x = res.x
    H = _hessian(x, data)
    for _ in range(10):  # Newton polish with the finite-difference Hessian
        ll, g = rp_loglik(x, data)
        try:
            step = np.linalg.solve(-H, g)
        except np.linalg.LinAlgError:
            break
        new_ll, _ = rp_loglik(x + step, data)
        if not (np.isfinite(new_ll) and new_ll >= ll - 1e-12 * abs(ll)):
            break
        x = x + step
        H = _hessian(x, data)
        if np.max(np.abs(step)) < 1e-12:
            break
    ll, g = rp_loglik(x, data)
    cov = np.linalg.inv(-H)
    m = B.shape[1]
    return RPFit(
        knots=kn,
        gamma=x[:m],
        beta=x[m:],
        cov=cov,
        se=np.sqrt(np.diag(cov)),
        loglik=ll,
        converged=bool(np.max(np.abs(g)) / n_ev < 1e-6),
        scale=scale,
    )


def _hessian(x: Array, data: _Data) -> Array:
    """Central differences of the analytic gradient, symmetrised."""
    from alsprog._numdiff import hessian_from_gradient

    return hessian_from_gradient(lambda z: rp_loglik(z, data)[1], x)
