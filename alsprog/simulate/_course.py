"""The clinical course of simulated patients without the rest of a cohort.

Owns: the draws shared by :func:`~alsprog.simulate.simulate_cohort` and the trial
simulator of :mod:`alsprog.design`: the progression rate given ΔFS (:func:`draw_rate`),
the D50 sigmoid through baseline and the 12-month total, death/tracheostomy and
dropout times (:func:`draw_events`), and :func:`draw_course`, a lean draw of the whole
course (onset, ΔFS, rate, sigmoid, events) with no demographics, items or imaging.
Leaves: calibration (rate distribution, Weibull and dropout scales) to
:mod:`alsprog.simulate._progression`; tables to :mod:`alsprog.simulate._cohort`.

Death/tracheostomy is Weibull in months since onset with shape ``k`` and patient
scale ``s_i``; conditional on survival to baseline ``T0`` the event is at
``s_i ((T0 / s_i)^k + E / HR)^(1/k)`` with ``E ~ Exp(1)``: ``HR`` multiplies the
hazard after baseline (1 = the natural history).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.simulate._params import CohortParams
from alsprog.simulate._progression import (
    draw_onset,
    dropout_reference_hazard,
    event_reference_scale,
    rate_lognormal,
    realised_slope,
    sigmoid_through,
)

__all__ = ["death_after", "draw_course", "draw_events", "draw_rate"]

Array = npt.NDArray[np.float64]


def draw_rate(
    p: CohortParams,
    z_dfs: Array,
    bulbar: npt.NDArray[np.bool_],
    rng: np.random.Generator,
    lognormal: tuple[Any, Any] | None = None,
) -> Array:
    """12-month progression rate (points/month, positive), correlated with ΔFS through
    its copula score ``z_dfs`` and multiplied for bulbar onset.

    ``lognormal`` is ``(mu, sigma)`` of the log rate for spinal onset, scalars or one
    value per patient (progression classes); by default
    :func:`~alsprog.simulate._progression.rate_lognormal` of ``p``.
    """
    r = p.slope_delta_fs_correlation
    z_rate = r * z_dfs + math.sqrt(1 - r**2) * rng.standard_normal(len(z_dfs))
    mu, sigma = rate_lognormal(p) if lognormal is None else lognormal
    return np.exp(mu + sigma * z_rate) * np.where(
        bulbar, p.bulbar_slope_multiplier, 1.0
    )


def death_after(
    scale: Array, t0: Array, e: Array, k: float, hazard_ratio: Any = 1.0
) -> Array:
    """Months since onset of death given survival to ``t0`` and the unit-exponential
    draw ``e``, the hazard after ``t0`` multiplied by ``hazard_ratio``.

    Examples
    --------
    >>> death_after(np.array([10.0]), np.array([0.0]), np.array([1.0]), 1.0, 0.5)
    array([20.])
    """
    return scale * ((t0 / scale) ** k + e / hazard_ratio) ** (1.0 / k)


def draw_events(
    p: CohortParams, rate: Array, t0: Array, rng: np.random.Generator
) -> dict[str, Array]:
    """Weibull death/tracheostomy (PH on the rate) and exponential dropout.

    Returns ``event_scale``, ``event_draw`` (the unit exponential ``E``),
    ``event_since_onset`` and ``dropout_months`` (from baseline).
    """
    n = len(rate)
    rel = rate / -p.slope_mean
    k = p.event_weibull_shape
    scale = event_reference_scale(p) * rel ** (-p.event_rate_exponent / k)
    e = rng.exponential(1.0, n)
    hazard = dropout_reference_hazard(p) * rel**p.dropout_rate_exponent
    d = rng.exponential(1.0, n)
    with np.errstate(divide="ignore"):
        dropout = np.where(hazard > 0, d / hazard, np.inf)
    return {
        "event_scale": scale,
        "event_draw": e,
        "event_since_onset": death_after(scale, t0, e, k),
        "dropout_months": dropout,
    }


def draw_course(p: CohortParams, n: int, rng: np.random.Generator) -> dict[str, Array]:
    """The clinical course of ``n`` patients: what a trial simulation needs.

    Returns arrays of length ``n``: ``t0`` (months from onset to baseline),
    ``baseline`` (true total), ``rate``, ``d50``, ``dx`` (the sigmoid in months since
    onset), ``event_scale``, ``event_draw``, ``event_since_onset``, ``death_months``
    (from baseline) and ``dropout_months``.

    Examples
    --------
    >>> c = draw_course(CohortParams(), 3, np.random.default_rng(0))
    >>> sorted(c)[:4], c["t0"].shape
    (['baseline', 'bulbar', 'd50', 'death_months'], (3,))
    """
    bulbar = rng.random(n) < p.p_bulbar
    t0, dfs, _, z_dfs = draw_onset(p, n, rng)
    baseline = 48.0 - dfs * t0
    rate = draw_rate(p, z_dfs, bulbar, rng)
    d50, dx = sigmoid_through(
        t0, baseline, baseline + 12.0 * realised_slope(rate, baseline, p)
    )
    ev = draw_events(p, rate, t0, rng)
    return {
        "bulbar": bulbar,
        "t0": t0,
        "baseline": baseline,
        "rate": rate,
        "d50": d50,
        "dx": dx,
        **ev,
        "death_months": ev["event_since_onset"] - t0,
    }
