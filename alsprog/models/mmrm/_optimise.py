"""The likelihood maximisation of an :class:`~alsprog.models.MMRM`.

Owns: :func:`optimise` (L-BFGS-B on the REML or ML criterion with its exact
gradient, then Newton steps with its exact Hessian to the precision of the
criterion, the convergence verdict and the covariance of the covariance parameters,
``2 H^{-1}``) and :class:`Optimum`, what it hands back.
Leaves: the criterion to :mod:`alsprog.models.mmrm._numerics`; its Hessian to
:mod:`alsprog.models.mmrm._hessian`; the convergence test to
:mod:`alsprog.models.mmrm._checks`; the estimator to
:mod:`alsprog.models.mmrm._model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from scipy import linalg

from alsprog.models.mmrm._checks import _assess_convergence
from alsprog.models.mmrm._hessian import criterion_hessian
from alsprog.models.mmrm._numerics import (
    Pattern,
    evaluate_reml,
    numerical_hessian,
    sigmas_from_params,
    theta_gradient,
)

__all__ = ["Optimum", "optimise"]

Array = npt.NDArray[np.float64]
#: Newton steps after L-BFGS-B (each a backtracking line search on the criterion).
_NEWTON_STEPS = 30
#: What the optimiser sees where the covariance is not positive definite: a finite
#: wall (L-BFGS-B's line search stops at an infinite value as if converged).
_WALL = 1e300


@dataclass
class Optimum:
    """The fit's estimates (``state``, the keyword arguments of
    ``MMRM._set_state``) and, when it did not converge, why and what to try."""

    state: dict[str, Any]
    why: str = ""
    message: Any = ""
    fix: str = ""
    n_newton: int = field(default=0)


def optimise(
    patterns: list[Pattern],
    structure: str,
    T: int,
    n_groups: int,
    theta0: Array,
    model: Any,
) -> Optimum:
    """Minimise ``-2 l`` (REML or ML, ``model.method``) over the covariance
    parameters, from ``theta0``."""
    from scipy import optimize

    reml = model.method == "REML"

    def fun(th: Array) -> tuple[float, Array]:
        try:
            Sig = sigmas_from_params(th, structure, T, n_groups)
            ev = evaluate_reml(Sig, patterns, True, reml=reml)
        except (np.linalg.LinAlgError, linalg.LinAlgError, FloatingPointError):
            return np.inf, np.zeros_like(th)
        if not np.isfinite(ev.value):
            return np.inf, np.zeros_like(th)
        return ev.value, theta_gradient(th, structure, cast(Array, ev.grad_sigma))

    def walled(th: Array) -> tuple[float, Array]:
        f, g = fun(th)
        return (f, g) if np.isfinite(f) else (_WALL, g)

    res = optimize.minimize(
        walled,
        theta0,
        jac=True,
        method="L-BFGS-B",
        options={
            "ftol": model.tol * 1e-3,
            "gtol": 1e-9,
            "maxiter": model.max_iter,
            "maxls": 50,
        },
    )

    last: list[tuple[Array, Array]] = []

    def hessian(th: Array) -> Array:
        if last and np.array_equal(last[0][0], th):
            return last[0][1]
        try:
            H = criterion_hessian(th, structure, T, n_groups, patterns, reml=reml)
        except (np.linalg.LinAlgError, linalg.LinAlgError, FloatingPointError):
            with np.errstate(all="ignore"):
                H = numerical_hessian(lambda t: fun(t)[1], th)
        last[:] = [(th.copy(), H)]
        return H

    theta, value = np.asarray(res.x, dtype=float), float(res.fun)
    value = value if value < _WALL else np.inf
    n_newton = 0
    if res.status != 1 and np.isfinite(value):  # not stopped by max_iter
        theta, value, n_newton = _newton(fun, hessian, theta, value)
    H = hessian(theta)
    Sigma = sigmas_from_params(theta, structure, T, n_groups)
    ev = evaluate_reml(Sigma, patterns, False, reml=reml)
    Hs = 0.5 * (H + H.T)
    evals = np.linalg.eigvalsh(Hs) if np.all(np.isfinite(Hs)) else np.array([np.nan])
    grad = fun(theta)[1]
    converged, decrement = _assess_convergence(ev.value, grad, Hs, evals)
    out = Optimum(
        state={
            "theta": theta,
            "sigma": Sigma,
            "beta": ev.beta,
            "cinv": ev.Cinv,
            "llf": float(-0.5 * ev.value),
            "theta_cov": 2.0 * np.linalg.inv(Hs) if evals.min() > 0 else None,
            "converged": converged,
        },
        message=res.message,
        n_newton=n_newton,
    )
    if not converged:
        if not np.isfinite(ev.value):
            out.why = f"the {model.method} criterion is not finite"
        elif not evals.min() > 0:
            out.why = (
                f"the {model.method} Hessian is not positive definite (a boundary or "
                "unidentified covariance)"
            )
        else:
            out.why = (
                f"a Newton step would still lower the {model.method} criterion by "
                f"{decrement / 2:.1e}"
            )
        out.fix = (
            f"raise max_iter (now {model.max_iter}), try "
            if res.status == 1
            else "try "
        )
    return out


def _newton(
    fun: Any, hessian: Any, theta: Array, value: float
) -> tuple[Array, float, int]:
    """Newton steps (exact gradient and Hessian), each halved until the criterion
    does not rise, while the Hessian is positive definite and the decrement
    ``g'H^{-1}g`` above rounding; returns the point, its value and the steps."""
    n = 0
    for _ in range(_NEWTON_STEPS):
        Hs = hessian(theta)
        Hs = 0.5 * (Hs + Hs.T)
        if not np.all(np.isfinite(Hs)):
            break
        try:
            cho = linalg.cho_factor(Hs)
        except (np.linalg.LinAlgError, linalg.LinAlgError):
            break
        g = fun(theta)[1]
        step = linalg.cho_solve(cho, g)
        if not float(g @ step) > 1e-14:
            break
        t = 1.0
        for _ in range(30):
            cand = theta - t * step
            fc = fun(cand)[0]
            if fc <= value + 1e-13 * abs(value):
                break
            t *= 0.5
        else:
            break
        theta, value, n = cand, min(fc, value), n + 1
    return theta, value, n
