"""Numerics of group-sequential designs as R's rpact computes them.

Owns: the recursive numerical integration of Armitage, McPherson & Rowe (1969) on
rpact's grid (91 points per stage, composite 7-point Newton–Cotes weights, bounds
clamped to [-6, 8]), the spending functions, and the two root finders rpact uses
(its fixed-tolerance bisection and Brent's ``zeroin``), ported so that boundaries
agree with ``rpact::getDesignGroupSequential`` to rounding error rather than to its
root-finding tolerance.
Leaves: argument checks and the :class:`GroupSequentialDesign` result to
:mod:`alsprog.design._group_sequential`.

Reference: rpact ``src/f_design_group_sequential.cpp`` and ``src/f_utilities.cpp``
(Wassmer & Pahlke, LGPL-3), read for the formulas; the code here is a NumPy rewrite.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy import special

__all__: list[str] = []

FloatArray = npt.NDArray[np.float64]

_UPPER = 8.0  # C_UPPER_BOUNDS_DEFAULT
_LOWER = -6.0  # C_FUTILITY_BOUNDS_DEFAULT
_N_GRID = 15 * 6 + 1  # C_NUMBER_OF_GRID_POINTS_ONE_SIDED
_ROOT_FACTOR = 100.0  # C_FUNCTION_ROOT_TOLERANCE_FACTOR
_MAX_ITER = 100
_NOISE = 1e-14  # alpha increments below this are rounding noise of the quadrature
_NC6 = np.array([82.0, 216.0, 27.0, 272.0, 27.0, 216.0])
_INV_SQRT_2PI = 0.3989422804014327


def _pnorm(x: FloatArray | float) -> FloatArray:
    return special.ndtr(x)


def _qnorm(p: float) -> float:
    return float(special.ndtri(min(max(p, 1e-100), 1.0)))


def one_minus_qnorm(p: float) -> float:
    """``qnorm(1 - p)`` computed without cancellation (rpact's getOneMinusQNorm)."""
    p = min(max(p, 1e-100), 1.0)
    return float(-special.ndtri(p))


def _weights(dx: float) -> FloatArray:
    vec = 6.0 * np.tile(_NC6 * (dx / 840.0), 15)
    w = np.empty(_N_GRID)
    w[0] = w[-1] = 246.0 * dx / 840.0
    w[1:-1] = vec[1:]
    return w


def gs_probabilities(
    decision: FloatArray, info: FloatArray, *, fast: bool = False
) -> FloatArray:
    """Stage-wise probabilities of a two-row decision matrix (lower, upper bounds).

    Returns a ``(3, k)`` array as rpact's ``getGroupSequentialProbabilities``: row 0
    is P(continued to stage j and Z_j < lower_j), row 1 the same with upper_j, row 2
    P(continued to stage j).  ``fast`` reproduces rpact's
    ``getGroupSequentialProbabilitiesFast`` (row 0 only; upper bounds not clamped).
    """
    d = np.array(decision, dtype=float)
    info = np.asarray(info, dtype=float)
    k_max = info.size
    if not fast:
        d = np.minimum(d, _UPPER)
    probs = np.zeros((3, k_max))
    if fast:
        probs[0, 0] = _pnorm(min(d[0, 0], _UPPER))
    else:
        probs[0:2, 0] = _pnorm(d[:, 0])
    probs[2, 0] = 1.0
    if k_max == 1:
        return probs
    d = np.maximum(d, _LOWER)
    eps = np.diff(info, prepend=0.0)
    sq = np.sqrt(info)
    x2 = dn2 = np.empty(0)
    for k in range(2, k_max + 1):
        lo, hi = d[0, k - 2], d[1, k - 2]
        dx = (hi - lo) / (_N_GRID - 1)
        x = lo + np.arange(_N_GRID) * dx
        w = _weights(dx)
        if k == 2:
            dens = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        else:
            j = k - 2  # 0-based index of the stage whose density is on grid x
            a = (x[:, None] * sq[j] - x2[None, :] * sq[j - 1]) / math.sqrt(eps[j])
            phi = _INV_SQRT_2PI * np.exp(-0.5 * a * a)
            dens = math.sqrt(info[j] / eps[j]) * (phi @ dn2)
        dn = w * dens
        for row in (0,) if fast else (0, 1):
            z = (d[row, k - 1] * sq[k - 1] - x * sq[k - 2]) / math.sqrt(eps[k - 1])
            probs[row, k - 1] = float(_pnorm(z) @ dn)
        if not fast:
            probs[2, k - 1] = probs[1, k - 2] - probs[0, k - 2]
        x2, dn2 = x, dn
    return probs


def spending_value(
    total: float, t: float, sided: int, kind: str, gamma: float | None
) -> float:
    """Cumulative error spent at information fraction ``t`` (rpact getSpendingValueCpp)."""
    if kind in ("asP", "bsP"):
        return total * math.log(1.0 + (math.e - 1.0) * t)
    if kind == "asOF":
        return (
            2.0
            * sided
            * float(_pnorm(-one_minus_qnorm(total / (2 * sided)) / math.sqrt(t)))
        )
    if kind == "bsOF":
        return 2.0 * float(_pnorm(-one_minus_qnorm(total / 2) / math.sqrt(t)))
    if kind in ("asKD", "bsKD"):
        return total * t ** float(gamma)  # type: ignore[arg-type]
    if kind in ("asHSD", "bsHSD"):
        g = float(gamma)  # type: ignore[arg-type]
        if g == 0:
            return total * t
        return total * (1.0 - math.exp(-g * t)) / (1.0 - math.exp(-g))
    raise ValueError(kind)  # pragma: no cover - guarded by the caller


def bisection2(
    f: Callable[[float], float], lower: float, upper: float, tol: float
) -> float:
    """rpact's bisection: ``f`` decreasing; the last midpoint once the bracket < tol.

    rpact's callers keep the last point evaluated even where bisection2 itself
    would answer NA (residual above tolerance), so this returns it always.
    """
    step = 1
    while True:
        value = (lower + upper) / 2
        result = f(value)
        if result > 0:
            lower = value
        else:
            upper = value
        step += 1
        if step > _MAX_ITER:  # pragma: no cover - 100 halvings of [−6, 10] suffice
            raise ArithmeticError("bisection did not converge")
        if upper - lower <= tol:
            break
    return value


def _bisection(
    f: Callable[[float], float], lower: float, upper: float, tol: float
) -> float:
    step = 1
    while True:
        value = (lower + upper) / 2
        result = f(value)
        if (result < 0) == (f(lower) < 0):
            lower = value
        else:
            upper = value
        step += 1
        if step > _MAX_ITER:  # pragma: no cover
            raise ArithmeticError("bisection did not converge")
        if upper - lower <= tol:
            break
    return math.nan if abs(result / _ROOT_FACTOR) > tol else value


def zeroin(
    f: Callable[[float], float],
    lower: float,
    upper: float,
    tol: float,
    *,
    max_iter: int = _MAX_ITER,
    fallback: bool = True,
) -> float:
    """Brent's root finder as in R's ``uniroot`` / rpact's ``bizero`` (netlib zeroin)."""
    a, b = lower, upper
    fa, fb = f(a), f(b)
    c, fc = a, fa
    eps = np.finfo(float).eps
    for _ in range(max_iter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * eps * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0:
            if fallback and abs(fb / _ROOT_FACTOR) > tol:
                return _bisection(f, lower, upper, tol)
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(
                prev_step * q / 2
            ):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    raise ArithmeticError("root search did not converge")  # pragma: no cover


def decision_matrix(
    critical: FloatArray, sided: int, k: int | None = None
) -> FloatArray:
    """Non-binding decision matrix: (-6 | -critical, critical), first ``k`` stages."""
    c = np.asarray(critical, dtype=float)
    lower = -c if sided == 2 else np.full(c.size, _LOWER)
    d = np.vstack([lower, c])
    return d if k is None else d[:, :k]


def size_from(probs: FloatArray, sided: int) -> float:
    """Total rejection probability of a (3, k) probability array."""
    s = float(np.sum(probs[2] - probs[1]))
    if sided == 2:
        s += float(np.sum(probs[0]))
    return s


def critical_values_spending(
    info: FloatArray,
    alpha: float,
    sided: int,
    kind: str,
    gamma: float | None,
    tol: float,
) -> FloatArray:
    """Efficacy bounds of an alpha-spending design (rpact getCriticalValue)."""
    k_max = info.size
    crit = np.full(k_max, np.nan)
    before = 0.0
    for k in range(1, k_max + 1):
        spent = spending_value(alpha, float(info[k - 1]), sided, kind, gamma)
        if k == 1:
            crit[0] = one_minus_qnorm(spent / sided)
            before = spent
            continue
        if spent - before < _NOISE:
            # nothing left to spend at this look: rpact's bisection is then driven
            # by rounding noise and ends at the top of its bracket (8)
            crit[k - 1] = _UPPER
            continue
        before = spent

        def f(c: float, k: int = k, spent: float = spent) -> float:
            crit[k - 1] = c
            p = gs_probabilities(decision_matrix(crit, sided, k), info[:k])
            return size_from(p, sided) - spent

        crit[k - 1] = bisection2(f, 0.0, 8.0, tol)
    return crit


def critical_values_wang_tsiatis(
    info: FloatArray, alpha: float, sided: int, delta: float, tol: float
) -> FloatArray:
    """Classical O'Brien–Fleming (delta 0) or Pocock (delta 0.5) bounds."""
    shape = info ** (delta - 0.5)

    def f(scale: float) -> float:
        p = gs_probabilities(decision_matrix(scale * shape, sided), info)
        return size_from(p, sided) - alpha

    return zeroin(f, 0.0, 8.0, tol) * shape


def futility_bounds_spending(
    info: FloatArray,
    critical: FloatArray,
    beta: float,
    kind: str,
    gamma: float | None,
    tol: float,
) -> tuple[FloatArray, float]:
    """Non-binding one-sided beta-spending futility bounds and the drift (shift).

    rpact getDesignGroupSequentialBetaSpendingOneSidedCpp: the drift is found so that
    the last futility bound meets the last efficacy bound.
    """
    k_max = info.size
    spend = np.array([spending_value(beta, float(t), 1, kind, gamma) for t in info])
    sq = np.sqrt(info)

    def bounds(shift: float) -> FloatArray:
        fut = np.full(k_max, np.nan)
        for k in range(1, k_max + 1):
            if k == 1:
                fut[0] = _qnorm(float(spend[0])) + sq[0] * shift
                continue

            def g(b: float, k: int = k) -> float:
                fut[k - 1] = b
                d = np.vstack([fut[:k] - sq[:k] * shift, critical[:k] - sq[:k] * shift])
                return float(spend[k - 1]) - float(
                    np.sum(gs_probabilities(d, info[:k], fast=True)[0])
                )

            fut[k - 1] = bisection2(g, -6.0, 5.0, tol)
        return fut

    shift = zeroin(lambda s: float(bounds(s)[-1] - critical[-1]), -4.0, 10.0, tol)
    return bounds(shift), shift
