"""The conditional-normal algebra shared by the model families' forecasts.

Owns: each subject's random effects given their history (:func:`conditional_effects`,
vectorised over posterior draws for the Bayesian linear model), the fixed effects'
share of the prediction variance, and the moments/quantiles/CRPS of a normal
censored at an outcome's bounds (``bounds=(low, high)``, either may be infinite;
``None`` reads the data dictionary's ``alsfrs_r_total`` range).
Leaves: each family's forecast to its folder (``models/lmm/_forecast.py``,
``models/joint/_forecast.py``, ``models/bayes/_forecast.py``); the bounds
themselves to the data dictionary (a model's ``outcome_bounds_``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

__all__ = [
    "SubjectSums",
    "censored_normal_mean",
    "conditional_effects",
    "crps_censored_normal",
    "fixed_effect_variance",
    "normal_band",
    "psd_sqrt",
    "subject_sums",
]

Bounds = tuple[float, float]
#: The outcome whose dictionary range ``bounds=None`` means.
DEFAULT_OUTCOME = "alsfrs_r_total"
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
    loc: npt.NDArray[np.float64],
    scale: npt.NDArray[np.float64],
    *,
    bounds: Bounds | None = None,
) -> npt.NDArray[np.float64]:
    """Mean of ``clip(N(loc, scale**2), low, high)`` with ``bounds=(low, high)``.

    Examples
    --------
    >>> float(censored_normal_mean(np.array(0.0), np.array(1.0),
    ...                            bounds=(0.0, 48.0)))  # E[max(Z, 0)]
    0.3989422804014327
    >>> float(censored_normal_mean(np.array(-3.0), np.array(1.0),
    ...                            bounds=(-np.inf, np.inf)))
    -3.0
    """
    low, high = _bounds(bounds)
    loc, scale = np.asarray(loc, float), np.asarray(scale, float)
    s = np.where(scale > 0, scale, 1.0)
    with np.errstate(invalid="ignore"):
        a, b = (low - loc) / s, (high - loc) / s
        Fa, Fb = ndtr(a), ndtr(b)
        fa, fb = np.exp(-0.5 * a**2) / _SQRT_2PI, np.exp(-0.5 * b**2) / _SQRT_2PI
        inner = loc * (Fb - Fa) + s * (fa - fb)
        # an infinite bound has no mass beyond it: its term is 0, not inf * 0
        below = np.where(Fa > 0, low * Fa, 0.0)
        above = np.where(Fb < 1, high * (1.0 - Fb), 0.0)
    out = below + inner + above
    return np.where(scale > 0, out, np.clip(loc, low, high))


def crps_censored_normal(
    y: npt.NDArray[np.float64],
    loc: npt.NDArray[np.float64],
    scale: npt.NDArray[np.float64],
    *,
    bounds: Bounds | None = None,
    n_grid: int = 2001,
) -> npt.NDArray[np.float64]:
    """CRPS of ``clip(N(loc, scale**2), low, high)`` at observations ``y`` in range.

    ``CRPS = integral over [low, high] of (F(x) - 1{x >= y})**2 dx`` (outside the
    range both terms agree), by the trapezoid rule on ``n_grid`` points plus the
    exact contribution of the step at ``y``.  With both bounds infinite it is the normal's
    closed form (Gneiting & Raftery 2007); an infinite bound on one side only is
    replaced by one 12 SDs beyond the rows' means and observations.

    Examples
    --------
    >>> from scipy.stats import norm
    >>> z = 0.3   # far from the bounds it is the normal CRPS (Gneiting & Raftery 2007)
    >>> exact = 2 * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    >>> got = crps_censored_normal(np.array([24.0 + 2 * z]), np.array([24.0]),
    ...                            np.array([2.0]), bounds=(0.0, 48.0))
    >>> bool(abs(got[0] - exact) < 1e-4)
    True
    >>> got = crps_censored_normal(np.array([24.0 + 2 * z]), np.array([24.0]),
    ...                            np.array([2.0]), bounds=(-np.inf, np.inf))
    >>> bool(abs(got[0] - exact) < 1e-12)
    True
    """
    low, high = _bounds(bounds)
    y = np.asarray(y, float)
    loc, scale = np.broadcast_arrays(np.asarray(loc, float), np.asarray(scale, float))
    if np.isinf(low) and np.isinf(high):
        sd = np.maximum(scale, 1e-12)
        zz = (y - loc) / sd
        pdf = np.exp(-0.5 * zz**2) / _SQRT_2PI
        return np.asarray(
            sd * (zz * (2.0 * ndtr(zz) - 1.0) + 2.0 * pdf - 1.0 / np.sqrt(np.pi))
        )
    if np.isinf(low) or np.isinf(high):
        reach = np.concatenate([(loc - 12 * scale).ravel(), y.ravel()])
        low = min(float(np.min(reach)), high) if np.isinf(low) else low
        reach = np.concatenate([(loc + 12 * scale).ravel(), y.ravel()])
        high = max(float(np.max(reach)), low) if np.isinf(high) else high
    x = np.linspace(low, high, n_grid)
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
    loc: npt.NDArray[np.float64],
    scale: npt.NDArray[np.float64],
    level: float,
    *,
    bounds: Bounds | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Mean, median and central interval of the normal censored at ``bounds``.

    Examples
    --------
    >>> b = normal_band(np.array([47.0]), np.array([2.0]), 0.9, bounds=(0.0, 48.0))
    >>> float(b["upper"][0]), float(b["median"][0])
    (48.0, 47.0)
    """
    bounds = low, high = _bounds(bounds)
    z = float(ndtri(0.5 + level / 2))
    return {
        "mean": censored_normal_mean(loc, scale, bounds=bounds),
        "median": np.clip(loc, low, high),
        "lower": np.clip(loc - z * scale, low, high),
        "upper": np.clip(loc + z * scale, low, high),
    }


def _bounds(bounds: Bounds | None) -> Bounds:
    """``bounds`` as floats; ``None``: the data dictionary's ALSFRS-R total range."""
    if bounds is None:
        from alsprog.models._contract import outcome_bounds

        return outcome_bounds(DEFAULT_OUTCOME)
    return float(bounds[0]), float(bounds[1])


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
