"""A fast Laplace fit of the sigmoid (D50) mixed model, to start and shape the sampler.

Owns: the per-subject penalised Gauss-Newton modes of ``(log D50_i, log dx_i)`` and the
Gauss-Newton information ``G_i = J_i'J_i`` there, and the alternating Laplace-EM of the
population (fixed effects, 2 x 2 subject covariance, residual SD) around them - the
first-order (Lindstrom-Bates) approximation nlme's ``nlme()`` iterates.  Everything is
vectorised over subjects with per-subject sums (``np.bincount``), so a fit of 10,000
patients takes well under a second.
Leaves: the PyMC graph that uses these numbers (an affine, data-informed
reparameterisation of the subject effects) to :mod:`alsprog.models.bayes._sigmoid`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import expit

__all__ = ["LaplaceFit", "ValueSlope", "laplace_sigmoid", "value_slope"]

Array = npt.NDArray[np.float64]

#: The ALSFRS-R maximum, the curve's upper asymptote (as in ``_sigmoid``).
_SCALE = 48.0
#: Bounds of log D50 and log dx in the inner iterations (months: 0.05 to 3e4).
_LOG_BOUND = (-3.0, 10.0)


@dataclass(frozen=True)
class LaplaceFit:
    """The Laplace-EM estimates of the sigmoid mixed model.

    Attributes
    ----------
    beta : ndarray, shape (2, p)
        Fixed effects of ``log D50`` (row 0) and ``log dx`` (row 1).
    cov : ndarray, shape (2, 2)
        Covariance of the subject effects.
    sigma : float
        Residual SD.
    modes : ndarray, shape (G, 2)
        Each subject's conditional mode of ``(log D50_i, log dx_i)``.
    info : ndarray, shape (G, 3)
        ``G_i = J_i'J_i`` at the mode as ``(g00, g01, g11)`` (the likelihood's
        information times ``sigma^2``).
    linear : ndarray, shape (G, 2)
        ``G_i mode_i + J_i'r_i``: with ``info``, the quadratic approximation of each
        subject's log-likelihood at its mode, ``-(theta'G_i theta)/2 + theta'linear_i``
        over ``sigma^2``.
    iterations : int
        EM iterations run.
    """

    beta: Array
    cov: Array
    sigma: float
    modes: Array
    info: Array
    linear: Array
    iterations: int


def _jacobian_sums(
    theta: Array, y: Array, t: Array, groups: npt.NDArray[np.intp], n_groups: int
) -> tuple[Array, Array, Array]:
    """Per-subject ``J'J`` (G, 3), ``J'r`` (G, 2) and residual sum of squares."""
    th = theta[groups]
    d50, dx = np.exp(th[:, 0]), np.exp(th[:, 1])
    eta = (d50 - t) / dx
    s = expit(eta)
    mu = _SCALE * s
    dmu = _SCALE * s * (1.0 - s)
    j0 = dmu * d50 / dx
    j1 = -dmu * eta
    r = y - mu

    def bc(w: Array) -> Array:
        return np.bincount(groups, weights=w, minlength=n_groups)

    jj = np.stack([bc(j0 * j0), bc(j0 * j1), bc(j1 * j1)], axis=1)
    jr = np.stack([bc(j0 * r), bc(j1 * r)], axis=1)
    return jj, jr, bc(r * r)


def _solve2(a: Array, b: Array, d: Array, v: Array) -> Array:
    """Solve ``[[a, b], [b, d]] x = v`` for each row."""
    det = a * d - b * b
    return np.stack(
        [(d * v[:, 0] - b * v[:, 1]) / det, (a * v[:, 1] - b * v[:, 0]) / det], axis=1
    )


def _inner_modes(
    theta: Array,
    prior_mean: Array,
    prec: Array,
    sigma2: float,
    y: Array,
    t: Array,
    groups: npt.NDArray[np.intp],
    n_iter: int,
) -> Array:
    """Penalised Gauss-Newton modes with step halving, vectorised over subjects."""
    n_groups = len(theta)

    def objective(th: Array) -> Array:
        _, _, rss = _jacobian_sums(th, y, t, groups, n_groups)
        dev = th - prior_mean
        pen = np.einsum("gi,ij,gj->g", dev, prec, dev)
        return rss / sigma2 + pen

    obj = objective(theta)
    for _ in range(n_iter):
        jj, jr, _ = _jacobian_sums(theta, y, t, groups, n_groups)
        dev = theta - prior_mean
        grad = jr / sigma2 - dev @ prec.T
        a = jj[:, 0] / sigma2 + prec[0, 0]
        b = jj[:, 1] / sigma2 + prec[0, 1]
        d = jj[:, 2] / sigma2 + prec[1, 1]
        step = _solve2(a, b, d, grad)
        scale = np.ones(n_groups)
        for _ in range(8):  # step halving where the objective does not fall
            cand = np.clip(theta + scale[:, None] * step, *_LOG_BOUND)
            new = objective(cand)
            worse = ~(new <= obj + 1e-12)
            if not worse.any():
                break
            scale = np.where(worse, scale / 2.0, scale)
        keep = new <= obj + 1e-12
        theta = np.where(keep[:, None], cand, theta)
        obj = np.where(keep, new, obj)
        if np.max(np.abs(step * scale[:, None])) < 1e-6:
            break
    return theta


def laplace_sigmoid(
    y: Array,
    t: Array,
    groups: npt.NDArray[np.intp],
    Xs: Array,
    *,
    start_beta: Array,
    start_sd: tuple[float, float] = (0.5, 0.5),
    start_sigma: float = 3.0,
    max_iter: int = 50,
    tol: float = 1e-5,
) -> LaplaceFit:
    """Fit the sigmoid mixed model by Laplace-EM (first-order, Lindstrom-Bates).

    Alternates (1) each subject's mode of ``(log D50_i, log dx_i)`` given the
    population, by penalised Gauss-Newton, and (2) the population given the modes:
    fixed effects by least squares of the modes on ``Xs``; the subject covariance as
    the modes' scatter plus their conditional covariances; the residual variance as
    the residual sum of squares plus the linearised trace term.

    Parameters
    ----------
    y, t : ndarray, shape (n,)
        Outcome (ALSFRS-R) and months since onset.
    groups : ndarray of int, shape (n,)
        Subject index of each row, ``0..G-1``.
    Xs : ndarray, shape (G, p)
        Per-subject design.
    start_beta : ndarray, shape (2, p)
        Starting fixed effects (the priors' means).
    start_sd, start_sigma : float
        Starting subject-effect SDs and residual SD.
    max_iter : int, default 50
    tol : float, default 1e-5
        Stop when the largest change of the fixed effects and log SDs is below.

    Returns
    -------
    LaplaceFit

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(50), 5); t = np.tile([12.0, 15, 18, 21, 24], 50)
    >>> d50 = np.exp(np.log(30) + 0.2 * rng.standard_normal(50))
    >>> y = 48 * expit((d50[g] - t) / 10) + rng.normal(0, 1, 250)
    >>> fit = laplace_sigmoid(y, t, g, np.ones((50, 1)),
    ...                       start_beta=np.log([[30.0], [10.0]]))
    >>> bool(abs(np.exp(fit.beta[0, 0]) - 30) < 2)
    True
    """
    n_groups = len(Xs)
    beta = np.asarray(start_beta, dtype=float).copy()
    cov = np.diag(np.square(start_sd))
    sigma2 = float(start_sigma) ** 2
    theta = Xs @ beta.T
    pinv = np.linalg.pinv(Xs)
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        prior_mean = Xs @ beta.T
        prec = np.linalg.inv(cov)
        theta = _inner_modes(theta, prior_mean, prec, sigma2, y, t, groups, 20)
        jj, _, rss = _jacobian_sums(theta, y, t, groups, n_groups)
        a = jj[:, 0] / sigma2 + prec[0, 0]
        b = jj[:, 1] / sigma2 + prec[0, 1]
        d = jj[:, 2] / sigma2 + prec[1, 1]
        det = a * d - b * b
        cond = np.stack([d / det, -b / det, a / det], axis=1)  # (C00, C01, C11)
        new_beta = (pinv @ theta).T
        dev = theta - Xs @ new_beta.T
        scatter = dev.T @ dev / n_groups
        ccov = np.array(
            [
                [cond[:, 0].mean(), cond[:, 1].mean()],
                [cond[:, 1].mean(), cond[:, 2].mean()],
            ]
        )
        new_cov = scatter + ccov
        trace = (
            jj[:, 0] * cond[:, 0] + 2 * jj[:, 1] * cond[:, 1] + jj[:, 2] * cond[:, 2]
        )
        new_sigma2 = float((rss.sum() + trace.sum()) / len(y))
        change = max(
            float(np.max(np.abs(new_beta - beta))),
            float(np.max(np.abs(0.5 * np.log(np.diag(new_cov) / np.diag(cov))))),
        )
        beta, cov, sigma2 = new_beta, new_cov, new_sigma2
        if change < tol:
            break
    prior_mean = Xs @ beta.T
    theta = _inner_modes(
        theta, prior_mean, np.linalg.inv(cov), sigma2, y, t, groups, 20
    )
    jj, jr, _ = _jacobian_sums(theta, y, t, groups, n_groups)
    linear = np.stack(
        [
            jj[:, 0] * theta[:, 0] + jj[:, 1] * theta[:, 1],
            jj[:, 1] * theta[:, 0] + jj[:, 2] * theta[:, 1],
        ],
        axis=1,
    )
    return LaplaceFit(
        beta=beta,
        cov=cov,
        sigma=float(np.sqrt(sigma2)),
        modes=theta,
        info=jj,
        linear=linear + jr,
        iterations=iterations,
    )


@dataclass(frozen=True)
class ValueSlope:
    """The Laplace fit in each subject's value-and-slope coordinates.

    ``phi_i = (a_i, u_i)``: ``a_i = (D50_i - tbar_i) / dx_i``, the logit of the curve's
    value (fraction of 48) at the subject's mean visit time ``tbar_i``, and
    ``u_i = -log dx_i``, the log of its logit slope; ``eta_ij = a_i - exp(u_i)(t_ij -
    tbar_i)``.  Attributes: ``tbar`` (G,), ``mode`` (G, 2), ``info`` (G, 3) and
    ``linear`` (G, 2) as :class:`LaplaceFit`'s but in ``phi``, ``jac`` (G, 3): the
    nonzero entries ``(A00, A01, A11)`` of ``A = d theta / d phi`` at the mode
    (``A10 = 0``), and ``offset`` (G, 2): ``A mode - theta_mode``.
    """

    tbar: Array
    mode: Array
    info: Array
    linear: Array
    jac: Array
    offset: Array


def value_slope(
    fit: LaplaceFit, y: Array, t: Array, groups: npt.NDArray[np.intp]
) -> ValueSlope:
    """Re-express a :class:`LaplaceFit` in value-and-slope coordinates."""
    n_groups = len(fit.modes)
    counts = np.bincount(groups, minlength=n_groups)
    tbar = np.bincount(groups, weights=t, minlength=n_groups) / np.maximum(counts, 1)
    d50, dx = np.exp(fit.modes[:, 0]), np.exp(fit.modes[:, 1])
    a = (d50 - tbar) / dx
    u = -fit.modes[:, 1]
    s = expit(a[groups] - np.exp(u[groups]) * (t - tbar[groups]))
    dmu = _SCALE * s * (1.0 - s)
    j0 = dmu
    j1 = -dmu * np.exp(u[groups]) * (t - tbar[groups])
    r = y - _SCALE * s

    def bc(w: Array) -> Array:
        return np.bincount(groups, weights=w, minlength=n_groups)

    info = np.stack([bc(j0 * j0), bc(j0 * j1), bc(j1 * j1)], axis=1)
    mode = np.stack([a, u], axis=1)
    linear = np.stack(
        [
            info[:, 0] * a + info[:, 1] * u + bc(j0 * r),
            info[:, 1] * a + info[:, 2] * u + bc(j1 * r),
        ],
        axis=1,
    )
    jac = np.stack(
        [np.exp(-u) / d50, -a * np.exp(-u) / d50, -np.ones(n_groups)], axis=1
    )
    a_phi = np.stack([jac[:, 0] * a + jac[:, 1] * u, jac[:, 2] * u], axis=1)
    return ValueSlope(
        tbar=tbar,
        mode=mode,
        info=info,
        linear=linear,
        jac=jac,
        offset=a_phi - fit.modes,
    )
