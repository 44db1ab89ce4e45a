"""Conditional-normal forecasts from a fitted linear mixed model.

Owns: the exact Gaussian predictive distribution of a new patient's future outcome
given their history under a fitted :class:`~alsprog.models.LinearMixedModel` (BLUP
and its prediction variance, fixed-effect uncertainty, residual variance), the same
algebra vectorised over posterior draws for the Bayesian linear model, and the
moments/quantiles/CRPS of a normal censored to the ALSFRS-R range.
Leaves: history checks to :mod:`alsprog.data._history`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from alsprog.data._history import Prepared

__all__ = [
    "SubjectSums",
    "censored_normal_mean",
    "conditional_effects",
    "crps_censored_normal",
    "fixed_effect_variance",
    "history_sums",
    "lmm_forecast",
    "normal_band",
    "psd_sqrt",
    "subject_sums",
]

LOW, HIGH = 0.0, 48.0
_SQRT_2PI = np.sqrt(2.0 * np.pi)


@dataclass(frozen=True)
class SubjectSums:
    """Per-subject cross-products of a history: ``Z'Z``, ``Z'X``, ``Z'y``."""

    ZtZ: npt.NDArray[np.float64]  # (G, q, q)
    ZtX: npt.NDArray[np.float64]  # (G, q, p)
    Zty: npt.NDArray[np.float64]  # (G, q)


def subject_sums(
    X: npt.NDArray[np.float64],
    Z: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    groups: npt.NDArray[np.intp],
    n_groups: int,
) -> SubjectSums:
    """Sum ``Z'Z``, ``Z'X`` and ``Z'y`` over each subject's rows (zero when none)."""
    q, p = Z.shape[1], X.shape[1]
    ZtZ = np.zeros((n_groups, q, q))
    ZtX = np.zeros((n_groups, q, p))
    Zty = np.zeros((n_groups, q))
    np.add.at(ZtZ, groups, Z[:, :, None] * Z[:, None, :])
    np.add.at(ZtX, groups, Z[:, :, None] * X[:, None, :])
    np.add.at(Zty, groups, Z * y[:, None])
    return SubjectSums(ZtZ, ZtX, Zty)


def psd_sqrt(cov: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``L`` with ``L @ L.T == cov`` for (batches of) PSD matrices, singular allowed."""
    w, U = np.linalg.eigh(cov)
    return U * np.sqrt(np.clip(w, 0.0, None))[..., None, :]


def conditional_effects(
    sums: SubjectSums,
    beta: npt.NDArray[np.float64],
    cov_re: npt.NDArray[np.float64],
    sigma2: npt.NDArray[np.float64] | float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Posterior mean and covariance of each subject's effects given its history.

    With ``b ~ N(0, D)`` and ``y | b ~ N(X beta + Z b, sigma2 I)``, writing
    ``D = L L'`` and ``b = L w``: ``A = L'Z'ZL / sigma2 + I``,
    ``E[b | y] = L A^-1 L'Z'(y - X beta) / sigma2``, ``Cov[b | y] = L A^-1 L'``.
    ``D`` may be singular (boundary fits).  Broadcasts over leading batch axes of
    ``beta`` (..., p), ``cov_re`` (..., q, q) and ``sigma2`` (...,) against the
    subjects axis: results are (..., G, q), (..., G, q, q) and the gain
    ``K_X = L A^-1 L'Z'X / sigma2`` (..., G, q, p) used for the fixed-effect part of
    the prediction variance.

    Examples
    --------
    >>> s = subject_sums(np.ones((2, 1)), np.ones((2, 1)), np.array([1.0, 3.0]),
    ...                  np.array([0, 0]), 1)
    >>> m, v, _ = conditional_effects(s, np.array([0.0]), np.array([[4.0]]), 4.0)
    >>> # 4/(4 + 4/2) * 2 and 4 - 4*4/(4 + 2)
    >>> round(float(m[0, 0]), 12), round(float(v[0, 0, 0]), 12)
    (1.333333333333, 1.333333333333)
    """
    beta = np.asarray(beta, dtype=float)
    sigma2 = np.asarray(sigma2, dtype=float)
    L = psd_sqrt(np.asarray(cov_re, dtype=float))[..., None, :, :]  # (..., 1, q, q)
    s2 = sigma2[..., None, None, None]
    q = L.shape[-1]
    r = sums.Zty - np.einsum("gqp,...p->...gq", sums.ZtX, beta)  # Z'(y - X beta)
    LtZtZL = np.swapaxes(L, -1, -2) @ sums.ZtZ @ L
    A = LtZtZL / s2 + np.eye(q)
    Ainv = np.linalg.inv(A)
    LAinv = L @ Ainv
    gain = LAinv @ np.swapaxes(L, -1, -2) / s2  # (..., G, q, q): L A^-1 L' / s2
    mean = np.einsum("...gij,...gj->...gi", gain, r)
    cov = LAinv @ np.swapaxes(L, -1, -2)
    KX = gain @ sums.ZtX
    return mean, cov, KX


def censored_normal_mean(
    loc: npt.NDArray[np.float64], scale: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Mean of ``clip(N(loc, scale**2), 0, 48)``.

    Examples
    --------
    >>> float(censored_normal_mean(np.array(0.0), np.array(1.0)))  # E[max(Z, 0)]
    0.3989422804014327
    """
    loc, scale = np.asarray(loc, float), np.asarray(scale, float)
    s = np.where(scale > 0, scale, 1.0)
    a, b = (LOW - loc) / s, (HIGH - loc) / s
    Fa, Fb = ndtr(a), ndtr(b)
    fa, fb = np.exp(-0.5 * a**2) / _SQRT_2PI, np.exp(-0.5 * b**2) / _SQRT_2PI
    inner = loc * (Fb - Fa) + s * (fa - fb)
    out = LOW * Fa + inner + HIGH * (1.0 - Fb)
    return np.where(scale > 0, out, np.clip(loc, LOW, HIGH))


def crps_censored_normal(
    y: npt.NDArray[np.float64],
    loc: npt.NDArray[np.float64],
    scale: npt.NDArray[np.float64],
    *,
    n_grid: int = 2001,
) -> npt.NDArray[np.float64]:
    """CRPS of ``clip(N(loc, scale**2), 0, 48)`` at observations ``y`` in 0-48.

    ``CRPS = integral over [0, 48] of (F(x) - 1{x >= y})**2 dx`` (outside the range
    both terms agree), by the trapezoid rule on ``n_grid`` points plus the exact
    contribution of the step at ``y``.

    Examples
    --------
    >>> from scipy.stats import norm
    >>> z = 0.3   # far from the bounds it is the normal CRPS (Gneiting & Raftery 2007)
    >>> exact = 2 * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    >>> got = crps_censored_normal(np.array([24.0 + 2 * z]), np.array([24.0]),
    ...                            np.array([2.0]))
    >>> bool(abs(got[0] - exact) < 1e-4)
    True
    """
    y = np.asarray(y, float)
    loc, scale = np.broadcast_arrays(np.asarray(loc, float), np.asarray(scale, float))
    x = np.linspace(LOW, HIGH, n_grid)
    out = np.empty(y.shape)
    for i in range(0, y.size, 2000):  # chunks bound the memory
        sl = slice(i, i + 2000)
        yy, mm, ss = y.ravel()[sl], loc.ravel()[sl], scale.ravel()[sl]
        F = ndtr((x[None, :] - mm[:, None]) / np.maximum(ss[:, None], 1e-12))
        below = F**2
        above = (1.0 - F) ** 2
        step = x[None, :] >= yy[:, None]
        g = np.where(step, above, below)
        # trapezoid, with the interval holding y split exactly at y
        dx = x[1] - x[0]
        total = np.sum((g[:, 1:] + g[:, :-1]) * 0.5 * dx, axis=1)
        k = np.clip(np.searchsorted(x, yy) - 1, 0, n_grid - 2)
        rows = np.arange(len(yy))
        x0, x1 = x[k], x[k + 1]
        F0, F1 = F[rows, k], F[rows, k + 1]
        Fy = F0 + (F1 - F0) * (yy - x0) / dx
        wrong = (g[rows, k] + g[rows, k + 1]) * 0.5 * dx
        right = (F0**2 + Fy**2) * 0.5 * (yy - x0) + ((1 - Fy) ** 2 + (1 - F1) ** 2) * (
            0.5 * (x1 - yy)
        )
        out.ravel()[sl] = total - wrong + right
    return out


def normal_band(
    loc: npt.NDArray[np.float64], scale: npt.NDArray[np.float64], level: float
) -> dict[str, npt.NDArray[np.float64]]:
    """Mean, median and central interval of the normal censored to 0-48."""
    z = float(ndtri(0.5 + level / 2))
    return {
        "mean": censored_normal_mean(loc, scale),
        "median": np.clip(loc, LOW, HIGH),
        "lower": np.clip(loc - z * scale, LOW, HIGH),
        "upper": np.clip(loc + z * scale, LOW, HIGH),
    }


def lmm_forecast(
    model: Any, prep: Prepared
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Location and scale of each future row's normal predictive distribution.

    ``model`` is a fitted :class:`~alsprog.models.LinearMixedModel`; ``prep`` the
    checked history (rows with an outcome) and rows to forecast.  The variance adds the BLUP's conditional variance, the
    fixed-effect uncertainty propagated through the BLUP (``(X_f - Z_f K X_h)
    Cov(beta) (.)'``; the new patients are not in the fit, so the two are independent)
    and the residual variance; ``theta`` and ``sigma`` are treated as known.
    """
    beta = model.fe_params_.to_numpy()
    cov_beta = model.cov_params().to_numpy()
    D = model.cov_re_.to_numpy()
    s2 = float(model.scale_)
    sums = history_sums(model, prep, len(beta), D.shape[0])
    b, cov_b, KX = conditional_effects(sums, beta, D, s2)
    Xf, _ = model._fixed_matrix(prep.future)
    Zf = model._last_Z
    gf = prep.future["_subject_index"].to_numpy()
    loc = Xf @ beta + np.einsum("nq,nq->n", Zf, b[gf])
    var = fixed_effect_variance(Xf, Zf, KX[gf], cov_beta)
    var += np.einsum("nq,nqr,nr->n", Zf, cov_b[gf], Zf) + s2
    return loc, np.sqrt(np.maximum(var, 0.0))


def history_sums(model: Any, prep: Prepared, p: int, q: int) -> SubjectSums:
    """``Z'Z``, ``Z'X``, ``Z'y`` of each subject's history under a mixed model.

    ``model`` is a fitted :class:`~alsprog.models.LinearMixedModel` (its design is
    used, not its estimates); subjects without outcomes get zeros.
    """
    observed = prep.observed
    info = model._design_info
    if len(observed):
        Xh, ok = model._fixed_matrix(observed)
        Zh = model._last_Z
        yh = observed.loc[ok, info["outcome"]].to_numpy(dtype=float)
        gh = np.asarray(
            prep.subjects.get_indexer(observed.loc[ok, info["group"]].astype(str))
        )
    else:
        Xh, Zh, yh = np.zeros((0, p)), np.zeros((0, q)), np.zeros(0)
        gh = np.zeros(0, dtype=np.intp)
    return subject_sums(Xh, Zh, yh, gh, len(prep.subjects))


def fixed_effect_variance(
    Xf: npt.NDArray[np.float64],
    Zf: npt.NDArray[np.float64],
    KX: npt.NDArray[np.float64],
    cov_beta: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Variance of each future row's BLUP prediction from ``beta``'s uncertainty.

    ``(x_f - z_f K X_h) Cov(beta) (.)'`` with ``KX`` the rows' BLUP gain times
    ``Z'X`` (the new patients are not in the fit, so the two are independent).
    """
    xe = Xf - np.einsum("nq,nqp->np", Zf, KX)
    return np.asarray(np.einsum("np,pr,nr->n", xe, cov_beta, xe), dtype=float)
