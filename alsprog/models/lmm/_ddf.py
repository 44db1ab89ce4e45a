"""Degrees of freedom of the fixed-effect tests: Satterthwaite as lmerTest does it.

Owns: :func:`satterthwaite_state` (the asymptotic covariance of the variance
parameters ``(theta, sigma)`` from the Hessian of the deviance, and the Jacobian of
``vcov(beta)`` with respect to them) and :func:`contrast_tests` (estimate, standard
error, denominator df, t and p of each row of a contrast matrix ``L``), with
``ddf="satterthwaite"`` or ``"normal"`` (df infinite: z-tests).
Leaves: the deviance pieces to :mod:`alsprog.models.lmm._numerics`; the public
methods (``summary``, ``confint``, ``contest``) to
:mod:`alsprog.models.lmm._model`.

lmerTest (Kuznetsova, Brockhoff & Christensen, J Stat Softw 2017;82(13)) computes,
at the optimum ``varpar = (theta, sigma)``:

* the deviance as a function of ``varpar`` (not profiled on sigma):
  ``log|Lambda'Z'Z Lambda + I| + pwrss/sigma^2 + n log(2 pi sigma^2)`` (ML), plus
  ``log|X'V^-1 X / sigma^2 ...| = log det C - p log(2 pi sigma^2)`` for REML;
* ``A = 2 H^-1``, ``H`` its Hessian (numDeriv, Richardson extrapolation);
* ``J_k = d vcov(beta) / d varpar_k``, ``vcov(beta) = sigma^2 C(theta)^-1``;
* for a contrast ``l``: ``df = 2 (l'Vl)^2 / (g'Ag)`` with ``g_k = l'J_k l``.

Both derivatives are taken here by central differences with Richardson
extrapolation (four step sizes, as numDeriv), so the df agree with lmerTest's to
their numerical precision.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.models.lmm._numerics import GroupStats, _evaluate

__all__ = [
    "DDF_CHOICES",
    "SatterthwaiteState",
    "contrast_tests",
    "joint_test",
    "satterthwaite_from",
    "satterthwaite_state",
]

Array = npt.NDArray[np.float64]

#: The denominator-df methods the fixed-effect tests take.
DDF_CHOICES = ("satterthwaite", "kenward-roger", "normal")
_LOG2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class SatterthwaiteState:
    """What every Satterthwaite df of one fit needs.

    Attributes
    ----------
    vcov_beta : ndarray, shape (p, p)
    vcov_varpar : ndarray, shape (k, k)
        ``2 H^-1``: asymptotic covariance of ``(theta, sigma)``.
    jacobian : ndarray, shape (k, p, p)
        ``d vcov(beta) / d varpar``.
    positive : bool
        Whether the Hessian is positive definite (otherwise the df are NaN).
    """

    vcov_beta: Array
    vcov_varpar: Array
    jacobian: Array
    positive: bool


def _lambda(
    theta: Array, rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp], q: int
) -> Array:
    lam = np.zeros((q, q))
    lam[rows, cols] = theta
    return lam


def _steps(x: Array, d: float, eps: float = 1e-4) -> Array:
    """numDeriv's step: ``d |x|``, or ``eps`` where ``x`` is (nearly) zero."""
    zero_tol = math.sqrt(np.finfo(float).eps / 7e-7)
    ax = np.abs(x)
    return np.where(ax < zero_tol, eps, d * ax)


def _extrapolate(a: list[Array]) -> Array:
    """Richardson extrapolation of estimates at steps h, h/2, h/4, ... whose error
    runs in even powers of the step."""
    a = list(a)
    for m in range(1, len(a)):
        f = 4.0**m
        a = [(f * a[k + 1] - a[k]) / (f - 1.0) for k in range(len(a) - 1)]
    return a[0]


def _jacobian(f: Callable[[Array], Array], x: Array, r: int = 4) -> Array:
    """``d f / d x``: shape ``(len(x), *f(x).shape)``."""
    h0 = _steps(x, 1e-4)
    out = []
    for i in range(len(x)):
        est = []
        h = h0[i]
        for _ in range(r):
            e = np.zeros_like(x)
            e[i] = h
            est.append((f(x + e) - f(x - e)) / (2.0 * h))
            h /= 2.0
        out.append(_extrapolate(est))
    return np.array(out)


def _hessian(f: Callable[[Array], float], x: Array, r: int = 4) -> Array:
    """Second derivatives of a scalar ``f`` by central differences, extrapolated."""
    k = len(x)
    h0 = _steps(x, 0.1)
    f0 = f(x)
    H = np.zeros((k, k))
    for i in range(k):
        est = []
        h = h0[i]
        for _ in range(r):
            e = np.zeros(k)
            e[i] = h
            est.append((f(x + e) - 2.0 * f0 + f(x - e)) / (h * h))
            h /= 2.0
        H[i, i] = _extrapolate([np.float64(v) for v in est])
        for j in range(i):
            est = []
            hi, hj = h0[i], h0[j]
            for _ in range(r):
                ei = np.zeros(k)
                ej = np.zeros(k)
                ei[i], ej[j] = hi, hj
                val = (
                    f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
                ) / (4.0 * hi * hj)
                est.append(np.float64(val))
                hi /= 2.0
                hj /= 2.0
            H[i, j] = H[j, i] = _extrapolate(est)
    return H


def satterthwaite_state(
    stats: GroupStats,
    rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp],
    theta: Array,
    sigma: float,
    *,
    reml: bool,
) -> SatterthwaiteState:
    """The covariance of ``(theta, sigma)`` and the Jacobian of ``vcov(beta)`` at a
    fit's optimum (see the module docstring)."""
    q = stats.q
    return satterthwaite_from(
        lambda th: _evaluate(_lambda(th, rows, cols, q), stats, reml),
        stats.n,
        stats.p,
        theta,
        sigma,
        reml=reml,
    )


def satterthwaite_from(
    pieces: Callable[[Array], Any],
    n: int,
    p: int,
    theta: Array,
    sigma: float,
    *,
    reml: bool,
) -> SatterthwaiteState:
    """:func:`satterthwaite_state` for any likelihood: ``pieces(theta)`` gives the
    penalised least-squares solution at ``theta`` (attributes ``logdet_v``, ``r2``,
    ``logdet_c`` and ``C_chol``), one grouping factor's or several's."""
    from scipy import linalg

    def deviance(vp: Array) -> float:
        pc = pieces(vp[:-1])
        if pc is None:
            return math.inf
        s2 = float(vp[-1]) ** 2
        dev = pc.logdet_v + pc.r2 / s2 + n * (_LOG2PI + math.log(s2))
        if reml:
            dev += pc.logdet_c - p * (_LOG2PI + math.log(s2))
        return dev

    def vcov_beta(vp: Array) -> Array:
        pc = pieces(vp[:-1])
        cinv = linalg.cho_solve((pc.C_chol, True), np.eye(p))
        return float(vp[-1]) ** 2 * 0.5 * (cinv + cinv.T)

    x = np.append(np.asarray(theta, dtype=float), float(sigma))
    H = _hessian(deviance, x)
    H = 0.5 * (H + H.T)
    w, U = np.linalg.eigh(H)
    positive = bool(np.all(w > 1e-8 * max(1.0, float(np.max(np.abs(w))))))
    A = (
        (U / np.where(w > 0, w, np.nan)) @ U.T * 2.0
        if positive
        else np.full_like(H, np.nan)
    )
    J = _jacobian(vcov_beta, x)
    return SatterthwaiteState(vcov_beta(x), A, J, positive)


def contrast_tests(
    L: Array,
    beta: Array,
    vcov_beta: Array,
    *,
    ddf: str,
    state: Any = None,
) -> dict[str, Array]:
    """Estimate, standard error, df, t and two-sided p of each row of ``L``.

    ``ddf="normal"``: df infinite (z-tests); ``"satterthwaite"``: ``state`` from
    :func:`satterthwaite_state`; ``"kenward-roger"``: ``state`` from
    :func:`~alsprog.models.lmm._kr.kr_state`, whose adjusted covariance gives the
    standard errors (as lmerTest and pbkrtest).
    """
    from scipy import stats as st

    L = np.atleast_2d(np.asarray(L, dtype=float))
    est = L @ beta
    if ddf == "kenward-roger":
        from alsprog.models.lmm._kr import kr_ddf

        vcov_beta = state.vcov_adj
    var = np.einsum("ij,jk,ik->i", L, vcov_beta, L)
    se = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = est / se
    if ddf == "normal":
        df = np.full(len(L), np.inf)
        p = 2.0 * st.norm.sf(np.abs(t))
    elif ddf == "kenward-roger":
        df = np.array([kr_ddf(row, state)[0] for row in L])
        p = 2.0 * st.t.sf(np.abs(t), df)
    else:
        assert state is not None
        g = np.einsum("ij,kjl,il->ik", L, state.jacobian, L)
        denom = np.einsum("ik,kl,il->i", g, state.vcov_varpar, g)
        with np.errstate(divide="ignore", invalid="ignore"):
            df = 2.0 * var**2 / denom
        p = 2.0 * st.t.sf(np.abs(t), df)
    return {"estimate": est, "std_error": se, "df": df, "t": t, "p_value": p}


def _fstat_ddf(nu: Array, tol: float = 1e-8) -> float:
    """lmerTest's denominator df of an F statistic from the df of its ``q``
    independent t components (Fai & Cornelius 1996)."""
    if len(nu) == 1 or np.all(np.abs(nu - nu[0]) < tol):
        return float(nu[0])
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * e / (e - len(nu))


def joint_test(
    L: Array,
    beta: Array,
    vcov_beta: Array,
    *,
    ddf: str,
    state: Any = None,
) -> dict[str, float]:
    """The F-test of ``L beta = 0`` (all rows at once), as lmerTest's
    ``contest(m, L, joint = TRUE)``: ``F = sum_m (p_m'L beta)^2 / d_m / q`` over the
    ``q`` positive eigenvalues ``d_m`` (eigenvectors ``p_m``) of ``L V L'``, its
    denominator df from the Satterthwaite df of each component.  With
    Kenward-Roger, pbkrtest's ``KRmodcomp``: the Wald statistic on the adjusted
    covariance, scaled; ``wald_F`` is the unscaled one (lmerTest's sums of
    squares use it)."""
    from scipy import stats as st

    L = np.atleast_2d(np.asarray(L, dtype=float))
    d, P = np.linalg.eigh(L @ vcov_beta @ L.T)
    order = np.argsort(d)[::-1]
    d, P = d[order], P[:, order]
    pos = d > max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)
    q = int(pos.sum())
    if q == 0:
        raise ValueError("the contrast is zero: nothing to test.")
    PtL = (P.T @ L)[:q]
    d = d[:q]
    F = float(np.sum((PtL @ beta) ** 2 / d) / q)
    if ddf == "kenward-roger":
        # pbkrtest's KRmodcomp: the Wald statistic on the adjusted covariance,
        # scaled, with its denominator df (L reduced to independent rows)
        from alsprog.models.lmm._kr import kr_ddf

        lb = PtL @ beta
        wald = float(lb @ np.linalg.solve(PtL @ state.vcov_adj @ PtL.T, lb))
        den, scaling = kr_ddf(PtL, state)
        F = scaling * wald / q
        return {
            "F": F,
            "num_df": float(q),
            "den_df": den,
            "p_value": float(st.f.sf(F, q, den)),
            "wald_F": wald / q,
        }
    if ddf == "normal":
        den = np.inf
        p = float(st.chi2.sf(F * q, q))
    else:
        assert state is not None
        g = np.einsum("mi,kij,mj->mk", PtL, state.jacobian, PtL)
        nu = 2.0 * d**2 / np.einsum("mk,kl,ml->m", g, state.vcov_varpar, g)
        den = _fstat_ddf(nu)
        p = float(st.f.sf(F, q, den))
    return {"F": F, "num_df": float(q), "den_df": float(den), "p_value": p, "wald_F": F}
