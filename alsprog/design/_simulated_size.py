"""Patients per arm for a target power, by simulation, for any endpoint.

Owns: :func:`simulated_sample_size` and its result :class:`SimulatedSampleSize`.
Leaves: each simulation to :func:`~alsprog.design.simulate_power`.

Method: every endpoint's test statistic is asymptotically normal with a mean that
grows as ``sqrt(n)``, so power follows ``Phi(b sqrt(n) - z_{1-alpha/2})``.  A first
batch of trials at a starting size gives a first ``b``; batches at the implied size
and at 0.8 and 1.25 times it follow, ``b`` is refitted by maximum likelihood on every
simulated trial (a one-parameter probit), and the size is
``((z_{1-alpha/2} + z_power) / b)^2``, with an interval from the SE of ``b``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from alsprog._random import as_generator
from alsprog._validation import check_int, check_interval
from alsprog.design._simulate import MAX_PER_ARM, simulate_power
from alsprog.design._trial import TrialDesign
from alsprog.errors import ModelSpecificationError

__all__ = ["SimulatedSampleSize", "simulated_sample_size"]


@dataclass(frozen=True)
class SimulatedSampleSize:
    """Treated patients per arm for a target power, found by simulation.

    Attributes
    ----------
    n_per_arm : int or None
        Treated patients per arm (rounded up) for ``power``; None when more than
        ``n_max`` would be needed.
    n_per_arm_exact : float
        The fitted size (beyond ``n_max`` an extrapolation, inf without any effect).
    ci : tuple of float
        95 % interval of ``n_per_arm_exact`` from the Monte Carlo error.
    power : float
        Target power.
    endpoint, source : str
    slope : float
        ``b`` of ``Phi(b sqrt(n) - z)``.
    points : pandas.DataFrame
        The simulated sizes: ``n_per_arm, n_sims, power, se, fitted``.
    type_one_error, type_one_error_se : float or None
        Rejection rate under no treatment effect at ``n_per_arm`` (when asked).
    """

    n_per_arm: int | None
    n_per_arm_exact: float
    ci: tuple[float, float]
    power: float
    endpoint: str
    source: str
    slope: float
    points: pd.DataFrame = field(repr=False)
    type_one_error: float | None = None
    type_one_error_se: float | None = None


def simulated_sample_size(
    design: TrialDesign,
    *,
    endpoint: str = "slope",
    power: float | None = None,
    n_start: int | None = None,
    n_max: int = 5000,
    n_sims: int = 400,
    type_one_error: bool = False,
    seed: Any = None,
    n_jobs: int = -1,
    progress: bool | None = None,
    **simulate_kwargs: Any,
) -> SimulatedSampleSize:
    """Treated patients per arm for ``power``, by simulating trials of ``endpoint``.

    Parameters
    ----------
    design : TrialDesign
        Visits, slowing, alpha (two-sided) and allocation; with ``source=None`` also
        the linear model trials are drawn from.
    endpoint : {"slope", "mmrm", "cafs", "joint_rank", "win_ratio", "survival"}
    power : float, optional
        Target (default: ``design.power``).
    n_start : int, optional
        First size tried (default: the design's analytic slope size).
    n_max : int, default 5000
        Largest size simulated: an endpoint that needs more (e.g. survival when the
        treatment does not change survival) gets ``n_per_arm=None``.
    n_sims : int, default 400
        Trials per simulated size (four sizes in all).
    type_one_error : bool, default False
        Also simulate ``n_sims`` trials with no treatment effect at the size found.
    seed, n_jobs, progress
        As :func:`simulate_power`.
    **simulate_kwargs
        Passed to :func:`simulate_power` (``source``, ``hazard_ratio``,
        ``horizon_months``, ``threshold``, ``death_hazard``, ...).

    Returns
    -------
    SimulatedSampleSize

    Examples
    --------
    >>> d = TrialDesign(slowing=0.5)
    >>> r = simulated_sample_size(d, n_sims=60, seed=1, n_jobs=1, progress=False)
    >>> abs(r.n_per_arm - d.sample_size().n_per_arm_ceil) < 0.5 * r.n_per_arm
    True
    """
    e = ModelSpecificationError
    if not isinstance(design, TrialDesign):
        raise e(f"`design` must be a TrialDesign; got {type(design).__name__}.")
    target = design.power if power is None else power
    target = check_interval(
        target, "power", low=0, high=1, low_closed=False, high_closed=False, error=e
    )
    if target <= design.alpha / 2:
        raise e(f"`power` must exceed alpha/2 ({design.alpha / 2:g}); got {target:g}.")
    n_sims = check_int(n_sims, "n_sims", low=10, error=e)
    rng = as_generator(seed)
    if n_start is None:
        n0 = design.sample_size().n_per_arm_ceil if design.slowing > 0 else 100
    else:
        n0 = check_int(n_start, "n_start", low=2, error=e)
    n_max = check_int(n_max, "n_max", low=10, error=e)
    n_max = min(n_max, MAX_PER_ARM)
    n0 = int(min(max(n0, 10), MAX_PER_ARM))
    looks = simulate_kwargs.get("looks")
    # the one-sided level each trial is tested at: the design's two-sided alpha, or
    # the group-sequential design's own
    one_sided = (
        design.alpha / 2
        if looks is None
        else float(looks.alpha) / (2 if int(looks.sided) == 2 else 1)
    )
    z_a = stats.norm.ppf(1 - one_sided)
    z_b = stats.norm.ppf(target)
    rows: list[dict[str, Any]] = []

    def run(n: int) -> None:
        r = simulate_power(
            design,
            n,
            n_sims=n_sims,
            endpoint=endpoint,
            seed=int(rng.integers(0, 2**31 - 1)),
            n_jobs=n_jobs,
            progress=progress,
            **simulate_kwargs,
        )
        rows.append(
            {
                "n_per_arm": n,
                "n_sims": n_sims,
                "rejections": int(round(r.power * n_sims)),
                "power": r.power,
                "se": r.se,
            }
        )

    n0 = min(n0, n_max)
    run(n0)
    p0 = min(max(rows[0]["power"], 0.02), 0.98)
    b = max((stats.norm.ppf(p0) + z_a) / math.sqrt(n0), 1e-3)
    n1 = _size(b, z_a, z_b)
    if n1 > n_max and n0 < n_max:  # a weak effect: look at the largest size first
        run(n_max)
        b, _ = _fit(pd.DataFrame(rows), z_a)
        n1 = _size(b, z_a, z_b)
    if n1 <= n_max:
        for n in sorted({n1, max(2, round(0.8 * n1)), min(n_max, round(1.25 * n1))}):
            run(int(n))  # n1 <= n_max here
    pts = pd.DataFrame(rows)
    b, b_se = _fit(pts, z_a)
    n_exact = ((z_a + z_b) / b) ** 2
    lo = ((z_a + z_b) / (b + 1.96 * b_se)) ** 2
    hi = ((z_a + z_b) / max(b - 1.96 * b_se, 1e-9)) ** 2
    pts = pts.assign(fitted=stats.norm.cdf(b * np.sqrt(pts["n_per_arm"]) - z_a))
    reached = n_exact <= n_max
    n_final = int(math.ceil(n_exact - 1e-9)) if reached else None
    alpha_hat = alpha_se = None
    if type_one_error:
        null = simulate_power(
            replace(design, slowing=0.0),
            n_final if n_final is not None else n_max,
            n_sims=n_sims,
            endpoint=endpoint,
            seed=int(rng.integers(0, 2**31 - 1)),
            n_jobs=n_jobs,
            progress=progress,
            **{**simulate_kwargs, "hazard_ratio": 1.0},
        )
        alpha_hat = null.power
        looks = simulate_kwargs.get("looks")  # tested at the looks' own alpha
        level = design.alpha if looks is None else float(looks.alpha)
        alpha_se = math.sqrt(level * (1 - level) / n_sims)
    from alsprog.design._trial_runner import describe_source

    return SimulatedSampleSize(
        n_per_arm=n_final,
        n_per_arm_exact=float(n_exact),
        ci=(float(lo), float(hi)),
        power=float(target),
        endpoint=endpoint,
        source=describe_source(simulate_kwargs.get("source")),
        slope=float(b),
        points=pts,
        type_one_error=alpha_hat,
        type_one_error_se=alpha_se,
    )


def _size(b: float, z_a: float, z_b: float) -> float:
    """The size for power at ``b`` (a float: may be far beyond any simulated size)."""
    return max(2, math.ceil(((z_a + z_b) / b) ** 2)) if b > 0 else math.inf


def _fit(pts: pd.DataFrame, z_a: float) -> tuple[float, float]:
    """Probit MLE of ``b`` in ``Phi(b sqrt(n) - z_a)`` and its SE."""
    root_n = np.sqrt(pts["n_per_arm"].to_numpy(float))
    r = pts["rejections"].to_numpy(float)
    m = pts["n_sims"].to_numpy(float)

    def nll(b: float) -> float:
        eta = b * root_n - z_a
        return -float(
            np.sum(r * stats.norm.logcdf(eta) + (m - r) * stats.norm.logsf(eta))
        )

    res = optimize.minimize_scalar(nll, bounds=(1e-6, 10.0), method="bounded")
    b = float(res.x)
    eta = b * root_n - z_a
    pdf, cdf = stats.norm.pdf(eta), stats.norm.cdf(eta)
    info = float(np.sum(m * root_n**2 * pdf**2 / np.clip(cdf * (1 - cdf), 1e-12, None)))
    return b, 1.0 / math.sqrt(info) if info > 0 else float("inf")
