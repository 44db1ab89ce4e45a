"""The result of a sample-size or power calculation, and the checks its formulas share.

Owns: the frozen :class:`SampleSize` result, the argument checks of the analytic
formulas (visit times, retention, variance components, alpha, alternative, allocation,
the effect as ``delta`` or ``slowing``) and the normal quantile of the test.
Leaves: the random-intercept-and-slope formulas to :mod:`alsprog.design._analytic`,
the MMRM formula to :mod:`alsprog.design._mmrm_power`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from alsprog._validation import check_choice, check_interval
from alsprog.errors import ModelSpecificationError

__all__ = ["SampleSize"]

Method = Literal["diggle", "liu_liang", "edland"]
Alternative = Literal["two-sided", "one-sided"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SampleSize:
    """Result of a sample-size or power calculation (immutable).

    Attributes
    ----------
    n_per_arm : float
        Patients in the treatment arm, exact (not rounded); with 1:1 allocation, in
        each arm.
    n_per_arm_ceil : int
        ``n_per_arm`` rounded up.
    n_control : float
        Patients in the control arm (``n_per_arm / allocation_ratio``).
    n_total : float
        ``n_per_arm + n_control``.
    power : float
        Power of the test.
    delta : float
        Difference in mean slopes (points/month) or, for MMRM, in mean change at the
        final visit.
    method : str
        ``"diggle"``, ``"liu_liang"``, ``"edland"`` or ``"mmrm"``.
    alpha : float
        Type I error.
    alternative : str
        ``"two-sided"`` or ``"one-sided"``.
    allocation_ratio : float
        Treatment : control allocation.
    inputs : dict
        The remaining inputs (times, variance components, retention, ...).
    """

    n_per_arm: float
    n_control: float
    power: float
    delta: float
    method: str
    alpha: float
    alternative: str
    allocation_ratio: float
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_per_arm_ceil(self) -> int:
        """Treatment-arm size rounded up."""
        return _ceil(self.n_per_arm)

    @property
    def n_control_ceil(self) -> int:
        """Control-arm size rounded up."""
        return _ceil(self.n_control)

    @property
    def n_total(self) -> float:
        """Both arms together (exact)."""
        return self.n_per_arm + self.n_control

    @property
    def n_total_ceil(self) -> int:
        """Both arms, each rounded up."""
        return self.n_per_arm_ceil + self.n_control_ceil

    def to_dict(self) -> dict[str, Any]:
        """All fields and derived sizes as plain Python values."""
        d = asdict(self)
        d.update(
            n_per_arm_ceil=self.n_per_arm_ceil,
            n_control_ceil=self.n_control_ceil,
            n_total=self.n_total,
            n_total_ceil=self.n_total_ceil,
        )
        return d

    def __repr__(self) -> str:
        arms = (
            f"n_per_arm={self.n_per_arm:.4f} (ceil {self.n_per_arm_ceil})"
            if self.allocation_ratio == 1
            else f"n_treatment={self.n_per_arm:.4f}, n_control={self.n_control:.4f}"
        )
        return (
            f"SampleSize({arms}, n_total={self.n_total:.4f}, power={self.power:.4f}, "
            f"delta={self.delta:.6g}, method={self.method!r}, alpha={self.alpha:g}, "
            f"{self.alternative})"
        )


def _ceil(x: float) -> int:
    # guard against 207.00000000001 from rounding error
    return int(math.ceil(x - 1e-9))


# ------------------------------------------------------------------ argument checks
def _err(msg: str) -> ModelSpecificationError:
    return ModelSpecificationError(msg)


#: Largest visit time (months) accepted: beyond it squares of times lose precision.
_MAX_TIME = 1e5


def _check_times(times: Sequence[float]) -> FloatArray:
    try:
        t = np.asarray(times, dtype=float)
    except (TypeError, ValueError):
        raise _err(f"`times` must be a sequence of numbers; got {times!r}.") from None
    if t.ndim != 1 or t.size < 2:
        raise _err(f"`times` must hold at least two visit times; got {times!r}.")
    if not np.all(np.isfinite(t)):
        raise _err(f"`times` must be finite; got {t.tolist()!r}.")
    if np.any(np.diff(t) <= 0):
        raise _err(f"`times` must be strictly increasing; got {t.tolist()!r}.")
    if np.max(np.abs(t)) > _MAX_TIME:
        raise _err(
            f"`times` must be visit times in months within ±{_MAX_TIME:g}; got "
            f"{t.tolist()!r}."
        )
    return t


def _check_retention(
    retention: Sequence[float] | None, n: int, name: str
) -> FloatArray:
    if retention is None:
        return np.ones(n)
    try:
        r = np.asarray(retention, dtype=float)
    except (TypeError, ValueError):
        raise _err(
            f"`{name}` must be a sequence of fractions; got {retention!r}."
        ) from None
    if r.shape != (n,):
        raise _err(f"`{name}` must have one value per visit ({n}); got {r.size}.")
    if not np.all(np.isfinite(r)) or np.any(r <= 0) or np.any(r > 1):
        raise _err(f"`{name}` must be fractions in (0, 1]; got {r.tolist()!r}.")
    if r[0] != 1:
        raise _err(
            f"`{name}` must start at 1 (everyone is seen at baseline); "
            f"got {float(r[0])!r}."
        )
    if np.any(np.diff(r) > 0):
        raise _err(f"`{name}` must not increase over visits; got {r.tolist()!r}.")
    return r


def _check_variances(
    sig2_int: float, sig2_slope: float, cov_int_slope: float, sig2_e: float
) -> tuple[float, float, float, float]:
    e = ModelSpecificationError
    sig2_int = check_interval(sig2_int, "sig2_int", low=0, error=e)
    sig2_slope = check_interval(sig2_slope, "sig2_slope", low=0, error=e)
    cov = check_interval(cov_int_slope, "cov_int_slope", error=e)
    sig2_e = check_interval(sig2_e, "sig2_e", low=0, low_closed=False, error=e)
    if cov * cov > sig2_int * sig2_slope * (1 + 1e-12):
        corr = (
            cov / math.sqrt(sig2_int * sig2_slope)
            if sig2_int * sig2_slope > 0
            else math.inf
        )
        raise _err(
            "the random-effects covariance matrix [[sig2_int, cov_int_slope], "
            "[cov_int_slope, sig2_slope]] is not positive semi-definite: "
            f"cov_int_slope^2 = {cov * cov:.6g} > sig2_int * sig2_slope = "
            f"{sig2_int * sig2_slope:.6g} (implied correlation {corr:.3g}); "
            "|cov_int_slope| must be at most sqrt(sig2_int * sig2_slope)."
        )
    return sig2_int, sig2_slope, cov, sig2_e


def _common(alpha: float, alternative: str, allocation_ratio: float) -> None:
    e = ModelSpecificationError
    check_interval(
        alpha, "alpha", low=0, high=1, low_closed=False, high_closed=False, error=e
    )
    check_choice(alternative, "alternative", ("two-sided", "one-sided"), error=e)
    check_interval(
        allocation_ratio, "allocation_ratio", low=0, low_closed=False, error=e
    )


def _resolve_delta(
    delta: float | None, slowing: float | None, mean_slope: float | None
) -> float:
    e = ModelSpecificationError
    if delta is not None and slowing is not None:
        raise _err("give either `delta` or `slowing` (with `mean_slope`), not both.")
    if delta is None:
        if slowing is None or mean_slope is None:
            raise _err(
                "give `delta` (difference in slopes, points/month) or `slowing` (a "
                "fraction, e.g. 0.25) together with `mean_slope` (e.g. -0.9)."
            )
        slowing = check_interval(slowing, "slowing", low=0, low_closed=False, error=e)
        mean_slope = check_interval(mean_slope, "mean_slope", error=e)
        if mean_slope == 0:
            raise _err("`mean_slope` must not be 0 when `slowing` is given.")
        return abs(slowing * mean_slope)
    delta = check_interval(delta, "delta", error=e)
    if delta == 0:
        raise _err("`delta` must not be 0 (no effect cannot be detected).")
    return abs(delta)


def _n_per_arm(numerator: float, d: float) -> float:
    """``numerator / d**2``, or an error when that is not a finite sample size."""
    n = numerator / (d * d) if d * d > 0 else math.inf
    if not math.isfinite(n):
        raise _err(
            f"the effect {d!r} is too small to detect: the sample size per arm "
            f"({numerator!r} / {d!r}^2) is not a finite number."
        )
    return n


def _z(alpha: float, alternative: str) -> float:
    a = alpha / 2 if alternative == "two-sided" else alpha
    return float(stats.norm.ppf(1 - a))
