"""The clinical course of a simulated patient: onset, progression rate, events.

Owns: the joint draw of onset-to-baseline time and ΔFS, the progression-rate
distribution (calibrated so that the *realised* 12-month slopes have the documented
mean and SD), the D50 sigmoid through two points, and the Weibull-event and dropout
scales that make the population figures come out as documented.
Leaves: assembling patients and tables to :mod:`alsprog.simulate._cohort`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

from alsprog.simulate._params import CohortParams, lognormal_from_moments

__all__ = [
    "draw_onset",
    "dropout_reference_hazard",
    "event_reference_scale",
    "rate_lognormal",
    "realised_slope",
    "sigmoid_through",
]

_CALIBRATION_DRAWS = 60_000
_CALIBRATION_SEED = 20_240_601


def draw_onset(
    p: CohortParams, n: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], ...]:
    """Draw onset-to-baseline months ``T0`` and ΔFS jointly (Gaussian copula).

    Pairs are redrawn until ``T0 >= onset_to_baseline_min`` and the implied baseline
    ``48 - ΔFS * T0`` lies in ``[baseline_min, baseline_max]``.

    Returns
    -------
    t0, delta_fs, z_t0, z_delta_fs : ndarray
        The accepted draws and their standard-normal copula scores.
    """
    mu, sigma = lognormal_from_moments(p.delta_fs_mean, p.delta_fs_sd)
    rho = p.onset_delta_fs_correlation
    parts: list[tuple[npt.NDArray[np.float64], ...]] = []
    have = 0
    for _ in range(200):
        if have >= n:
            break
        m = int((n - have) * 1.1) + 16
        z1 = rng.standard_normal(m)
        z2 = rho * z1 + math.sqrt(1 - rho**2) * rng.standard_normal(m)
        t0 = p.onset_to_baseline_mean + p.onset_to_baseline_sd * z1
        dfs = np.exp(mu + sigma * z2)
        b = 48.0 - dfs * t0
        ok = (
            (t0 >= p.onset_to_baseline_min)
            & (b >= p.baseline_min)
            & (b <= p.baseline_max)
        )
        ok &= np.cumsum(ok) <= n - have
        parts.append((t0[ok], dfs[ok], z1[ok], z2[ok]))
        have += int(ok.sum())
    if have < n:
        raise ValueError(
            "the onset_to_baseline_*, delta_fs_* and baseline_min/baseline_max parameters "
            "leave almost no valid patients (baseline = 48 - ΔFS * T0 must fall in "
            f"[{p.baseline_min:g}, {p.baseline_max:g}]); widen the window."
        )
    if not parts:
        return tuple(np.empty(0) for _ in range(4))
    return tuple(np.concatenate(x) for x in zip(*parts, strict=True))


def sigmoid_through(
    t0: npt.NDArray[np.float64],
    baseline: npt.NDArray[np.float64],
    total_12m: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(d50, dx)`` of ``48 / (1 + exp((t - d50) / dx))`` through two points.

    The curve passes through ``baseline`` at ``t0`` and ``total_12m`` at ``t0 + 12``
    months since onset (both totals strictly between 0 and 48, decreasing).

    Examples
    --------
    >>> d50, dx = sigmoid_through(np.array([15.0]), np.array([38.0]), np.array([27.2]))
    >>> round(float(d50[0]), 1), round(float(dx[0]), 1)
    (30.0, 11.2)
    """
    u1 = np.log(48.0 / baseline - 1.0)
    u2 = np.log(48.0 / total_12m - 1.0)
    dx = 12.0 / (u2 - u1)
    return t0 - dx * u1, dx


def realised_slope(
    rate: npt.NDArray[np.float64], baseline: npt.NDArray[np.float64], p: CohortParams
) -> npt.NDArray[np.float64]:
    """12-month slope (negative) after flooring the 12-month total at ``min_total_12m``."""
    return (np.maximum(baseline - 12.0 * rate, p.min_total_12m) - baseline) / 12.0


def rate_lognormal(p: CohortParams) -> tuple[float, float]:
    """``(mu, sigma)`` of the log progression rate (points/month) for spinal onset.

    The rate is ``exp(mu + sigma * z)``, with ``z`` correlated with ΔFS, times
    ``bulbar_slope_multiplier`` for bulbar onset. A fast patient cannot lose more than
    ``baseline - min_total_12m`` points in 12 months, so ``mu`` and ``sigma`` are solved
    (on fixed internal draws of the model) such that the realised 12-month slopes have
    mean ``slope_mean`` and SD ``slope_sd`` (derived). Cached per parameter set.
    """
    return _rate_lognormal_cached(p)


@functools.lru_cache(maxsize=32)
def _rate_lognormal_cached(p: CohortParams) -> tuple[float, float]:
    from scipy.optimize import root

    m, sd, q, k = -p.slope_mean, p.slope_sd, p.p_bulbar, p.bulbar_slope_multiplier
    # closed form without the floor: two-group lognormal mixture with mean m, SD sd
    mix1, mix2 = (1 - q) + q * k, (1 - q) + q * k**2
    base = m / mix1
    one_plus_cv2 = max((sd**2 + m**2) / (base**2 * mix2), 1.0 + 1e-6)
    s0 = math.sqrt(math.log(one_plus_cv2))
    x0 = np.array([math.log(base) - s0**2 / 2, math.log(s0)])

    rng = np.random.default_rng(_CALIBRATION_SEED)
    t0, dfs, _, z_dfs = draw_onset(p, _CALIBRATION_DRAWS, rng)
    baseline = 48.0 - dfs * t0
    r = p.slope_delta_fs_correlation
    z = r * z_dfs + math.sqrt(1 - r**2) * rng.standard_normal(len(z_dfs))

    def moments(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        rate = np.exp(x[0] + math.exp(x[1]) * z)
        s_sp = -realised_slope(rate, baseline, p)
        s_bu = -realised_slope(rate * k, baseline, p)
        mean = (1 - q) * s_sp.mean() + q * s_bu.mean()
        second = (1 - q) * (s_sp**2).mean() + q * (s_bu**2).mean()
        return np.array([mean - m, math.sqrt(max(second - mean**2, 0.0)) - sd])

    with np.errstate(over="ignore", invalid="ignore"):
        sol = root(moments, x0, method="hybr")
        residual = np.max(np.abs(moments(sol.x)))
    if not sol.success or not residual < 1e-6:
        raise ValueError(
            f"`slope_mean` {p.slope_mean:g} with `slope_sd` {sd:g} cannot be reached: "
            "12-month totals are floored at min_total_12m, so very fast declines are "
            "capped; lower slope_sd or |slope_mean|."
        )
    return float(sol.x[0]), float(math.exp(sol.x[1]))


def _rate_nodes(p: CohortParams, exponent: float) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes/weights of ``(rate / |slope_mean|) ** exponent``."""
    mu, sigma = rate_lognormal(p)
    z, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    log_rel = mu + sigma * z - math.log(-p.slope_mean)
    nodes = np.concatenate([log_rel, log_rel + math.log(p.bulbar_slope_multiplier)])
    weights = np.concatenate([(1 - p.p_bulbar) * w, p.p_bulbar * w])
    return np.exp(exponent * nodes), weights


def event_reference_scale(p: CohortParams) -> float:
    """Weibull scale (months from onset) of a patient progressing at ``|slope_mean|``.

    Patient ``i`` has scale ``ref * (rate_i / |slope_mean|) ** (-exponent / shape)``;
    ``ref`` makes the population survival from onset,
    ``E[exp(-(t / scale) ** shape)]`` over the rate distribution, equal 0.5 at
    ``event_median_months`` (derived).
    """
    from scipy.optimize import brentq

    x, w = _rate_nodes(p, p.event_rate_exponent)

    def surv_minus_half(log_a: float) -> float:
        return float(np.sum(w * np.exp(-math.exp(log_a) * x))) - 0.5

    log_a = brentq(surv_minus_half, -30.0, 30.0, xtol=1e-12)
    return p.event_median_months / math.exp(log_a / p.event_weibull_shape)


def dropout_reference_hazard(p: CohortParams) -> float:
    """Monthly dropout hazard of a patient progressing at ``|slope_mean|``.

    Patient ``i`` has hazard ``ref * (rate_i / |slope_mean|) ** exponent``; ``ref``
    makes the population probability of dropping out within 12 months equal
    ``dropout_per_year`` (derived).
    """
    from scipy.optimize import brentq

    if p.dropout_per_year == 0:
        return 0.0
    x, w = _rate_nodes(p, p.dropout_rate_exponent)

    def stay_minus_target(log_h: float) -> float:
        return float(np.sum(w * np.exp(-12.0 * math.exp(log_h) * x))) - (
            1 - p.dropout_per_year
        )

    return math.exp(brentq(stay_minus_target, -40.0, 10.0, xtol=1e-12))
