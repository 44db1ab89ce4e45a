"""Analytic sample size and power for trials that slow ALSFRS-R decline.

Owns: the random-intercept-and-slope formulas of Diggle et al. (2002), Liu & Liang
(1997) and Edland (2009; Zhao & Edland's attrition form) as R's longpower implements
them (``diggle.linear.power``, ``liu.liang.linear.power``, ``edland.linear.power``,
``lmmpower``), their inverses and the table of sample sizes over slowings and methods.
Leaves: the :class:`SampleSize` result and the argument checks to
:mod:`alsprog.design._sample_size`, the MMRM formula of Lu, Luo & Chen (2008) to
:mod:`alsprog.design._mmrm_power`, variance components from fitted models to
:mod:`alsprog.design._trial`, power by simulation to :mod:`alsprog.design._simulate`.

Attrition: ``retention[j]`` is the fraction of randomised patients still observed at
visit ``j`` (1 at baseline, non-increasing), as longpower's ``ra``.  Patients whose last
visit is ``k`` contribute the information of their first ``k`` visits (a pattern
mixture, exact for likelihood analysis under MAR).  Unlike longpower's
``edland.linear.power``, which skips patients seen only at baseline, they are counted
here (they inform the intercept); the difference vanishes without attrition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from alsprog._validation import (
    check_choice,
    check_interval,
    check_level,
    check_numbers,
)
from alsprog.design._sample_size import (
    Alternative,
    FloatArray,
    Method,
    SampleSize,
    _check_retention,
    _check_times,
    _check_variances,
    _common,
    _err,
    _n_per_arm,
    _resolve_delta,
    _z,
)
from alsprog.errors import ModelSpecificationError

__all__ = [
    "detectable_delta_slope",
    "power_slope",
    "sample_size_slope",
    "sample_size_table",
]


# ------------------------------------------------------------------------ numerics
def marginal_covariance(
    times: FloatArray, sig2_int: float, sig2_slope: float, cov: float, sig2_e: float
) -> FloatArray:
    """``V = Z G Zᵀ + σ²_e I`` for a random intercept and slope on ``times``."""
    z = np.column_stack([np.ones_like(times), times])
    g = np.array([[sig2_int, cov], [cov, sig2_slope]])
    return z @ g @ z.T + sig2_e * np.eye(times.size)


def _dropout_pattern(retention: FloatArray) -> FloatArray:
    """Fraction whose last visit is each visit: ``r[k] - r[k+1]``."""
    return retention - np.append(retention[1:], 0.0)


def slope_variance_factor(
    times: FloatArray, v: FloatArray, retention: FloatArray
) -> float:
    """``ξ = [(Σ_k p_k X_kᵀ V_k⁻¹ X_k)⁻¹]₂₂``: variance of one patient's slope estimate.

    With complete data this is Diggle's ``[(XᵀV⁻¹X)⁻¹]₂₂``.
    """
    x = np.column_stack([np.ones_like(times), times])
    p = _dropout_pattern(retention)
    info = np.zeros((2, 2))
    for k in range(1, times.size + 1):
        if p[k - 1] <= 0:
            continue
        xk, vk = x[:k], v[:k, :k]
        info += p[k - 1] * xk.T @ np.linalg.solve(vk, xk)
    if np.linalg.matrix_rank(info) < 2:
        raise _err(
            "the slope is not estimable: too few patients are seen at two or more visits "
            "(check `retention`)."
        )
    return float(np.linalg.inv(info)[1, 1])


def liu_liang_sigma1(
    times: FloatArray,
    v_treat: FloatArray,
    v_ctrl: FloatArray,
    r_treat: FloatArray,
    r_ctrl: FloatArray,
    pi_treat: float,
) -> float:
    """Liu & Liang's Σ₁ for the slope-difference parameter (per total patient).

    Parameter of interest: treatment × time (``u = t`` in the treatment arm, 0 in
    control); nuisance: intercept, treatment, time (``v = [1, trt, t]``).  Averaged
    over arms (weights π) and dropout patterns.
    """
    m = times.size
    arms = [
        (
            pi_treat,
            np.asarray(times, float),
            np.column_stack([np.ones(m), np.ones(m), times]),
            v_treat,
            r_treat,
        ),
        (
            1 - pi_treat,
            np.zeros(m),
            np.column_stack([np.ones(m), np.zeros(m), times]),
            v_ctrl,
            r_ctrl,
        ),
    ]
    i_pp = 0.0
    i_pl = np.zeros(3)
    i_ll = np.zeros((3, 3))
    for pi, u, vv, cov, r in arms:
        p = _dropout_pattern(r)
        for k in range(1, m + 1):
            w = pi * p[k - 1]
            if w <= 0:
                continue
            rinv = np.linalg.inv(cov[:k, :k])
            uk, vk = u[:k], vv[:k]
            i_pp += w * uk @ rinv @ uk
            i_pl += w * uk @ rinv @ vk
            i_ll += w * vk.T @ rinv @ vk
    return float(i_pp - i_pl @ np.linalg.solve(i_ll, i_pl))


@dataclass(frozen=True)
class _SlopeSetup:
    times: FloatArray
    v: FloatArray
    retention: FloatArray
    retention_control: FloatArray
    inputs: dict[str, Any]


def _slope_setup(
    times: Sequence[float],
    sig2_int: float,
    sig2_slope: float,
    cov_int_slope: float,
    sig2_e: float,
    retention: Sequence[float] | None,
    retention_control: Sequence[float] | None,
) -> _SlopeSetup:
    t = _check_times(times)
    s_i, s_s, cov, s_e = _check_variances(sig2_int, sig2_slope, cov_int_slope, sig2_e)
    r = _check_retention(retention, t.size, "retention")
    rc = (
        r
        if retention_control is None
        else _check_retention(retention_control, t.size, "retention_control")
    )
    v = marginal_covariance(t, s_i, s_s, cov, s_e)
    inputs = {
        "times": t.tolist(),
        "sig2_int": s_i,
        "sig2_slope": s_s,
        "cov_int_slope": cov,
        "sig2_e": s_e,
        "retention": r.tolist(),
        "retention_control": rc.tolist(),
    }
    return _SlopeSetup(t, v, r, rc, inputs)


def _slope_variance_per_treated(
    setup: _SlopeSetup, method: str, allocation_ratio: float
) -> float:
    """Var(δ̂) × n_treatment: the quantity every method turns into a sample size."""
    lam = allocation_ratio
    if method == "liu_liang":
        pi_t = lam / (1 + lam)
        s1 = liu_liang_sigma1(
            setup.times,
            setup.v,
            setup.v,
            setup.retention,
            setup.retention_control,
            pi_t,
        )
        # Var(δ̂) = 1 / (N Σ1) and N = n_t (1 + lam) / lam
        return lam / ((1 + lam) * s1)
    xi_t = slope_variance_factor(setup.times, setup.v, setup.retention)
    xi_c = slope_variance_factor(setup.times, setup.v, setup.retention_control)
    if method == "diggle":
        # Diggle et al. (2002) p. 29 with the marginal covariance of the random
        # intercept-and-slope model: Var(δ̂) = ξ_t / n_t + ξ_c / n_c
        return xi_t + lam * xi_c
    # Edland (2009), Zhao & Edland form: n = z² (term1 + λ term2) / δ²
    return xi_t + lam * xi_c


def _slope_variance(
    method: str,
    alpha: float,
    alternative: str,
    allocation_ratio: float,
    times: Sequence[float],
    sig2_int: float,
    sig2_slope: float,
    cov_int_slope: float,
    sig2_e: float,
    retention: Sequence[float] | None,
    retention_control: Sequence[float] | None,
) -> tuple[_SlopeSetup, float]:
    """Checked inputs and ``Var(δ̂) × n_treatment``, shared by the slope functions."""
    check_choice(
        method,
        "method",
        ("edland", "diggle", "liu_liang"),
        error=ModelSpecificationError,
    )
    _common(alpha, alternative, allocation_ratio)
    setup = _slope_setup(
        times, sig2_int, sig2_slope, cov_int_slope, sig2_e, retention, retention_control
    )
    return setup, _slope_variance_per_treated(setup, method, allocation_ratio)


def sample_size_slope(
    delta: float | None = None,
    times: Sequence[float] = (0, 3, 6, 9, 12),
    sig2_int: float = 0.0,
    sig2_slope: float = 0.36,
    cov_int_slope: float = 0.0,
    sig2_e: float = 4.0,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    method: Method = "edland",
    allocation_ratio: float = 1.0,
    retention: Sequence[float] | None = None,
    retention_control: Sequence[float] | None = None,
    slowing: float | None = None,
    mean_slope: float | None = None,
    alternative: Alternative = "two-sided",
) -> SampleSize:
    """Patients per arm to detect a difference in mean ALSFRS-R slopes.

    The analysis model is a linear mixed model with a random intercept and slope per
    patient (variance components ``sig2_int``, ``sig2_slope``, ``cov_int_slope``,
    residual ``sig2_e``) and a treatment × time fixed effect ``delta``.  With
    ``ξ = [(Σ_k p_k X_kᵀ V_k⁻¹ X_k)⁻¹]₂₂`` (``p_k`` = fraction whose last visit is
    ``k``; complete data: Diggle's ``[(XᵀV⁻¹X)⁻¹]₂₂``), the treatment arm needs
    ``n = (z_{1-α/2} + z_{power})² (ξ_t + λ ξ_c) / δ²`` and the control arm ``n / λ``.

    Parameters
    ----------
    delta : float, optional
        Difference in mean slopes to detect (points/month; sign ignored).  Or give
        ``slowing`` and ``mean_slope``.
    times : sequence of float, default (0, 3, 6, 9, 12)
        Visit times (months), strictly increasing.
    sig2_int, sig2_slope, cov_int_slope : float
        Random intercept variance (points²), random slope variance (points²/month²)
        and their covariance; ``sig2_slope = 0`` is a random-intercept design.
        Defaults: slope SD 0.6 points/month (docs/domain.md §7).
    sig2_e : float, default 4.0
        Residual variance (points²; SD 2.0, docs/domain.md §7).
    alpha : float, default 0.05
        Type I error, in (0, 1).
    power : float, default 0.8
        Target power, in (0, 1).
    method : {"edland", "diggle", "liu_liang"}, default "edland"
        Formula (as longpower's ``edland.linear.power``, ``diggle.linear.power`` and
        ``liu.liang.linear.power``).  All three are the same GLS variance of the
        slope difference (Liu & Liang's model with a separate intercept and slope per
        arm included), so they give the same n; diggle and edland refuse a slope that
        is not estimable (their rank check), where liu_liang still returns one.
    allocation_ratio : float, default 1.0
        Treatment : control patients (longpower's ``lambda``).
    retention, retention_control : sequence of float, optional
        Fraction still observed at each visit (1 at baseline, non-increasing), as
        longpower's ``ra``; control defaults to ``retention``.  ``None`` = no attrition.
    slowing, mean_slope : float, optional
        Effect as a fractional slowing of the mean slope: ``delta = slowing *
        |mean_slope|`` (e.g. 0.25 and -0.9).
    alternative : {"two-sided", "one-sided"}, default "two-sided"

    Returns
    -------
    SampleSize

    Raises
    ------
    ModelSpecificationError
        Power or alpha outside (0, 1), visit times not strictly increasing, negative
        variances, a random-effects covariance that is not positive semi-definite,
        bad retention, missing or zero effect.

    See Also
    --------
    power_slope : the inverse, power for a given size.
    sample_size_mmrm : change at the final visit by MMRM.

    References
    ----------
    Diggle, Heagerty, Liang & Zeger (2002), Analysis of Longitudinal Data, 2nd ed.;
    Liu & Liang (1997), Biometrics 53:937-947; Ard & Edland (2011), J Alzheimers Dis
    21:369-377; Donohue, longpower (R package).

    Examples
    --------
    longpower's ADAS-cog example (``lmmpower(delta=1.5, t=seq(0,1.5,0.25), sig2.i=55,
    sig2.s=24, sig2.e=10, cov.s.i=0.8*sqrt(55)*sqrt(24), power=0.80)``: n = 207.3101):

    >>> r = sample_size_slope(1.5, [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5], sig2_int=55,
    ...                       sig2_slope=24, cov_int_slope=0.8 * 55**0.5 * 24**0.5,
    ...                       sig2_e=10, power=0.80)
    >>> round(r.n_per_arm, 4), r.n_per_arm_ceil
    (207.3101, 208)

    An ALS trial, 25% slowing of -0.9 points/month, 3-monthly visits over a year:

    >>> sample_size_slope(slowing=0.25, mean_slope=-0.9, times=[0, 3, 6, 9, 12],
    ...                   sig2_slope=0.36, sig2_e=4.0).n_per_arm_ceil
    126
    """
    setup, var_n = _slope_variance(
        method,
        alpha,
        alternative,
        allocation_ratio,
        times,
        sig2_int,
        sig2_slope,
        cov_int_slope,
        sig2_e,
        retention,
        retention_control,
    )
    power = check_level(power, "power", error=ModelSpecificationError)
    d = _resolve_delta(delta, slowing, mean_slope)
    z = _z(alpha, alternative) + float(stats.norm.ppf(power))
    n_t = _n_per_arm(z * z * var_n, d)
    return SampleSize(
        n_per_arm=n_t,
        n_control=n_t / allocation_ratio,
        power=power,
        delta=d,
        method=method,
        alpha=alpha,
        alternative=alternative,
        allocation_ratio=float(allocation_ratio),
        inputs={**setup.inputs, "slowing": slowing, "mean_slope": mean_slope},
    )


def power_slope(
    n_per_arm: float,
    delta: float | None = None,
    times: Sequence[float] = (0, 3, 6, 9, 12),
    sig2_int: float = 0.0,
    sig2_slope: float = 0.36,
    cov_int_slope: float = 0.0,
    sig2_e: float = 4.0,
    *,
    alpha: float = 0.05,
    method: Method = "edland",
    allocation_ratio: float = 1.0,
    retention: Sequence[float] | None = None,
    retention_control: Sequence[float] | None = None,
    slowing: float | None = None,
    mean_slope: float | None = None,
    alternative: Alternative = "two-sided",
) -> SampleSize:
    """Power of the slope comparison with ``n_per_arm`` treated patients.

    The inverse of :func:`sample_size_slope`:
    ``power = Φ(|δ| / sqrt(Var(δ̂)) - z_{1-α/2})`` with
    ``Var(δ̂) = (ξ_t + λ ξ_c) / n`` (the opposite tail is ignored, as in longpower).

    Parameters
    ----------
    n_per_arm : float
        Patients in the treatment arm (> 0; control = ``n_per_arm / allocation_ratio``).
    delta, times, sig2_int, sig2_slope, cov_int_slope, sig2_e, alpha, method,
    allocation_ratio, retention, retention_control, slowing, mean_slope, alternative
        As in :func:`sample_size_slope`.

    Returns
    -------
    SampleSize

    Raises
    ------
    ModelSpecificationError
        As :func:`sample_size_slope`, or ``n_per_arm`` not positive.

    Examples
    --------
    longpower: ``lmmpower(n=208, ...)`` of the ADAS-cog example gives delta 1.49751 at
    power 0.80; conversely, n = 207.3101 gives power 0.80:

    >>> r = power_slope(207.3101, 1.5, [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5], sig2_int=55,
    ...                 sig2_slope=24, cov_int_slope=0.8 * 55**0.5 * 24**0.5, sig2_e=10)
    >>> round(r.power, 4)
    0.8
    """
    setup, var_n = _slope_variance(
        method,
        alpha,
        alternative,
        allocation_ratio,
        times,
        sig2_int,
        sig2_slope,
        cov_int_slope,
        sig2_e,
        retention,
        retention_control,
    )
    n = check_interval(
        n_per_arm, "n_per_arm", low=0, low_closed=False, error=ModelSpecificationError
    )
    d = _resolve_delta(delta, slowing, mean_slope)
    pw = float(stats.norm.cdf(d / math.sqrt(var_n / n) - _z(alpha, alternative)))
    return SampleSize(
        n_per_arm=float(n),
        n_control=float(n) / allocation_ratio,
        power=pw,
        delta=d,
        method=method,
        alpha=alpha,
        alternative=alternative,
        allocation_ratio=float(allocation_ratio),
        inputs={**setup.inputs, "slowing": slowing, "mean_slope": mean_slope},
    )


def detectable_delta_slope(
    n_per_arm: float,
    times: Sequence[float] = (0, 3, 6, 9, 12),
    sig2_int: float = 0.0,
    sig2_slope: float = 0.36,
    cov_int_slope: float = 0.0,
    sig2_e: float = 4.0,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    method: Method = "edland",
    allocation_ratio: float = 1.0,
    retention: Sequence[float] | None = None,
    retention_control: Sequence[float] | None = None,
    alternative: Alternative = "two-sided",
) -> SampleSize:
    """Smallest difference in slopes detectable with ``n_per_arm`` at ``power``.

    Examples
    --------
    longpower ``lmmpower(n=208, ...)`` of the ADAS-cog example: delta = 1.49751.

    >>> r = detectable_delta_slope(208, [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5], 55, 24,
    ...                            0.8 * 55**0.5 * 24**0.5, 10)
    >>> round(r.delta, 5)
    1.49751
    """
    setup, var_n = _slope_variance(
        method,
        alpha,
        alternative,
        allocation_ratio,
        times,
        sig2_int,
        sig2_slope,
        cov_int_slope,
        sig2_e,
        retention,
        retention_control,
    )
    power = check_level(power, "power", error=ModelSpecificationError)
    n = check_interval(
        n_per_arm, "n_per_arm", low=0, low_closed=False, error=ModelSpecificationError
    )
    z = _z(alpha, alternative) + float(stats.norm.ppf(power))
    d = z * math.sqrt(var_n / n)
    return SampleSize(
        n_per_arm=float(n),
        n_control=float(n) / allocation_ratio,
        power=power,
        delta=d,
        method=method,
        alpha=alpha,
        alternative=alternative,
        allocation_ratio=float(allocation_ratio),
        inputs=setup.inputs,
    )


def sample_size_table(
    slowings: Sequence[float],
    *,
    mean_slope: float,
    times: Sequence[float] = (0, 3, 6, 9, 12),
    sig2_int: float = 0.0,
    sig2_slope: float = 0.36,
    cov_int_slope: float = 0.0,
    sig2_e: float = 4.0,
    methods: Sequence[Method] = ("edland",),
    alpha: float = 0.05,
    power: float = 0.8,
    allocation_ratio: float = 1.0,
    retention: Sequence[float] | None = None,
    alternative: Alternative = "two-sided",
) -> Any:
    """Sample sizes for several slowings and methods, one row each.

    Parameters
    ----------
    slowings : sequence of float
        Fractional slowings of ``mean_slope`` (e.g. 0.25, 0.30, 0.50).
    mean_slope : float
        Mean ALSFRS-R slope under control (points/month, e.g. -0.9).
    methods : sequence of {"edland", "diggle", "liu_liang"}
        Formulas to tabulate.
    times, sig2_int, sig2_slope, cov_int_slope, sig2_e, alpha, power,
    allocation_ratio, retention, alternative
        As in :func:`sample_size_slope`.

    Returns
    -------
    pandas.DataFrame
        Columns ``method, slowing, delta, n_per_arm, n_per_arm_ceil, n_control_ceil,
        n_total_ceil, power``.

    Examples
    --------
    >>> t = sample_size_table([0.25, 0.5], mean_slope=-0.9)
    >>> t[["slowing", "n_per_arm_ceil"]].to_numpy().tolist()
    [[0.25, 126.0], [0.5, 32.0]]
    """
    import pandas as pd

    e = ModelSpecificationError
    slowings = check_numbers(slowings, "slowings", low=0, low_closed=False, error=e)
    chosen: list[Any] = (
        [methods]
        if isinstance(methods, str) or not isinstance(methods, Iterable)
        else list(methods)
    )
    if not chosen:
        raise _err(
            "`methods` must name at least one of 'edland', 'diggle', 'liu_liang'."
        )
    rows = []
    for method in chosen:
        for s in slowings:
            r = sample_size_slope(
                times=times,
                sig2_int=sig2_int,
                sig2_slope=sig2_slope,
                cov_int_slope=cov_int_slope,
                sig2_e=sig2_e,
                alpha=alpha,
                power=power,
                method=method,
                allocation_ratio=allocation_ratio,
                retention=retention,
                slowing=s,
                mean_slope=mean_slope,
                alternative=alternative,
            )
            rows.append(
                {
                    "method": method,
                    "slowing": float(s),
                    "delta": r.delta,
                    "n_per_arm": r.n_per_arm,
                    "n_per_arm_ceil": r.n_per_arm_ceil,
                    "n_control_ceil": r.n_control_ceil,
                    "n_total_ceil": r.n_total_ceil,
                    "power": r.power,
                }
            )
    return pd.DataFrame(rows)
