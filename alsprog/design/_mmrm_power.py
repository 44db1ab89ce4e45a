"""Analytic sample size and power of an MMRM comparison at the final visit.

Owns: the MMRM formula of Lu, Luo & Chen (2008) as R's longpower implements it
(``power.mmrm``): :func:`sample_size_mmrm`, its inverse :func:`power_mmrm`, the
attrition-and-correlation factor φ (:func:`mmrm_phi`) and the check of the
correlation matrices.
Leaves: the :class:`~alsprog.design.SampleSize` result and the shared argument checks
to :mod:`alsprog.design._sample_size`, the slope formulas to
:mod:`alsprog.design._analytic`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from alsprog._validation import check_interval
from alsprog.design._sample_size import (
    Alternative,
    FloatArray,
    SampleSize,
    _check_retention,
    _common,
    _err,
    _n_per_arm,
    _resolve_delta,
    _z,
)
from alsprog.errors import ModelSpecificationError

__all__ = ["mmrm_phi", "power_mmrm", "sample_size_mmrm"]


def _check_corr(corr: Any, n: int | None, name: str) -> FloatArray:
    try:
        c = np.asarray(corr, dtype=float)
    except (TypeError, ValueError):
        raise _err(f"`{name}` must be a correlation matrix; got {corr!r}.") from None
    if c.ndim == 0:
        if n is None:
            raise _err(
                f"`{name}` as a single number needs `retention` to set its size."
            )
        rho = float(c)
        if not -1 / max(n - 1, 1) < rho < 1:
            raise _err(f"`{name}` = {rho!r} is not a valid exchangeable correlation.")
        c = np.full((n, n), rho)
        np.fill_diagonal(c, 1.0)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise _err(
            f"`{name}` must be a square matrix with one row per visit; got shape "
            f"{c.shape}."
        )
    if not np.allclose(c, c.T, atol=1e-10) or not np.allclose(np.diag(c), 1.0):
        raise _err(
            f"`{name}` must be a symmetric correlation matrix (ones on the diagonal)."
        )
    if np.linalg.eigvalsh(c).min() <= 1e-12:
        raise _err(f"`{name}` must be positive definite.")
    return c


def mmrm_phi(corr: FloatArray, retention: FloatArray) -> float:
    """Lu, Luo & Chen's φ = [(Σ_j (r_j - r_{j+1}) R_j⁻¹ padded)⁻¹]_{JJ} (their eq. 3)."""
    j_max = corr.shape[0]
    r0 = np.append(retention, 0.0)
    info = np.zeros((j_max, j_max))
    for j in range(1, j_max + 1):
        w = r0[j - 1] - r0[j]
        if w <= 0:
            continue
        block = np.zeros((j_max, j_max))
        block[:j, :j] = np.linalg.inv(corr[:j, :j])
        info += w * block
    return float(np.linalg.inv(info)[-1, -1])


def _mmrm_setup(
    sigma: float,
    corr: Any,
    retention: Sequence[float] | None,
    corr_control: Any,
    retention_control: Sequence[float] | None,
) -> tuple[float, float, dict[str, Any]]:
    e = ModelSpecificationError
    sigma = check_interval(sigma, "sigma", low=0, low_closed=False, error=e)
    n_vis = None
    if retention is not None:
        n_vis = len(retention)
    ra = _check_corr(corr, n_vis, "corr")
    r = _check_retention(retention, ra.shape[0], "retention")
    rb_corr = (
        ra
        if corr_control is None
        else _check_corr(corr_control, ra.shape[0], "corr_control")
    )
    if rb_corr.shape != ra.shape:
        raise _err("`corr_control` must have the same size as `corr`.")
    rc = (
        r
        if retention_control is None
        else _check_retention(retention_control, ra.shape[0], "retention_control")
    )
    phi_a, phi_b = mmrm_phi(ra, r), mmrm_phi(rb_corr, rc)
    inputs = {
        "sigma": sigma,
        "corr": ra.tolist(),
        "retention": r.tolist(),
        "corr_control": rb_corr.tolist(),
        "retention_control": rc.tolist(),
        "phi": phi_a,
        "phi_control": phi_b,
    }
    return phi_a, phi_b, inputs


def sample_size_mmrm(
    delta: float,
    sigma: float,
    corr: Any,
    retention: Sequence[float] | None = None,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    allocation_ratio: float = 1.0,
    corr_control: Any = None,
    retention_control: Sequence[float] | None = None,
    alternative: Alternative = "two-sided",
) -> SampleSize:
    """Patients per arm for an MMRM comparison of change at the final visit.

    Lu, Luo & Chen (2008), formula (3): ``n_t = (φ_t + λ φ_c) (z_{1-α/2} +
    z_{power})² σ² / δ²``, ``n_c = n_t / λ``, where ``φ`` inflates for attrition and
    correlation (1 without dropout), as longpower's ``power.mmrm``.

    Parameters
    ----------
    delta : float
        Difference between arms in mean change at the final visit (outcome units).
    sigma : float
        SD of the outcome at the final visit.
    corr : array-like or float
        Correlation matrix of the repeated measures (a single number = exchangeable,
        then ``retention`` sets the number of visits).
    retention : sequence of float, optional
        Fraction observed at each visit (1 first, non-increasing); ``None`` = complete.
    alpha, power, allocation_ratio, alternative
        As in :func:`sample_size_slope`.
    corr_control, retention_control : optional
        Control-arm correlation and retention (default: same as treatment).

    Returns
    -------
    SampleSize
        ``method="mmrm"``; ``inputs`` holds ``phi`` and ``phi_control``.

    Raises
    ------
    ModelSpecificationError
        Bad power/alpha, a matrix that is not a positive-definite correlation matrix,
        retention of the wrong length or increasing.

    Examples
    --------
    longpower ``power.mmrm(Ra=<4x4 exchangeable 0.25>, ra=c(1,.9,.8,.7), sigmaa=1,
    delta=0.5, power=0.80)``: n1 = n2 = 86.99175.

    >>> r = sample_size_mmrm(0.5, 1.0, 0.25, [1, 0.9, 0.8, 0.7])
    >>> round(r.n_per_arm, 5)
    86.99175
    """
    e = ModelSpecificationError
    _common(alpha, alternative, allocation_ratio)
    power = check_interval(
        power, "power", low=0, high=1, low_closed=False, high_closed=False, error=e
    )
    d = abs(_resolve_delta(delta, None, None))
    phi_a, phi_b, inputs = _mmrm_setup(
        sigma, corr, retention, corr_control, retention_control
    )
    z = _z(alpha, alternative) + float(stats.norm.ppf(power))
    lam = allocation_ratio
    n_t = _n_per_arm((phi_a + lam * phi_b) * z * z * inputs["sigma"] ** 2, d)
    return SampleSize(
        n_per_arm=n_t,
        n_control=n_t / lam,
        power=power,
        delta=d,
        method="mmrm",
        alpha=alpha,
        alternative=alternative,
        allocation_ratio=float(lam),
        inputs=inputs,
    )


def power_mmrm(
    n_per_arm: float,
    delta: float,
    sigma: float,
    corr: Any,
    retention: Sequence[float] | None = None,
    *,
    alpha: float = 0.05,
    allocation_ratio: float = 1.0,
    corr_control: Any = None,
    retention_control: Sequence[float] | None = None,
    alternative: Alternative = "two-sided",
) -> SampleSize:
    """Power of the MMRM final-visit comparison with ``n_per_arm`` treated patients.

    The inverse of :func:`sample_size_mmrm`.

    Examples
    --------
    longpower ``power.mmrm(N=174, Ra=<exch. 0.25>, ra=c(1,.9,.8,.7), sigmaa=1,
    delta=0.5)``: power 0.8000372.

    >>> round(power_mmrm(87, 0.5, 1.0, 0.25, [1, 0.9, 0.8, 0.7]).power, 7)
    0.8000372
    """
    e = ModelSpecificationError
    _common(alpha, alternative, allocation_ratio)
    n = check_interval(n_per_arm, "n_per_arm", low=0, low_closed=False, error=e)
    d = abs(_resolve_delta(delta, None, None))
    phi_a, phi_b, inputs = _mmrm_setup(
        sigma, corr, retention, corr_control, retention_control
    )
    lam = allocation_ratio
    se = inputs["sigma"] * math.sqrt((phi_a + lam * phi_b) / n)
    pw = float(stats.norm.cdf(d / se - _z(alpha, alternative)))
    return SampleSize(
        n_per_arm=float(n),
        n_control=float(n) / lam,
        power=pw,
        delta=d,
        method="mmrm",
        alpha=alpha,
        alternative=alternative,
        allocation_ratio=float(lam),
        inputs=inputs,
    )
