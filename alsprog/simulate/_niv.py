"""Permanent non-invasive ventilation and FVC of simulated patients.

Owns: the draws behind the NIV and FVC columns of
:func:`~alsprog.simulate.simulate_cohort`: the random stream they come from
(:func:`independent_stream`, which leaves the cohort's own stream untouched, so that
every other column is the same for the same seed as before NIV and FVC existed), the
Weibull scale of NIV onset (:func:`niv_reference_scale`) and the draws themselves
(:func:`draw_niv_fvc`).
Leaves: death, tracheostomy and dropout to :mod:`alsprog.simulate._course`; censoring
and tables to :mod:`alsprog.simulate._cohort`; the rate distribution to
:mod:`alsprog.simulate._progression`.

Permanent NIV (> 23 h/day, the third part of the ENCALS composite endpoint
[Westeneng 2018]) starts at a Weibull time from onset with shape ``niv_weibull_shape``
and patient scale ``ref * (r / |slope_mean|) ** (-niv_rate_exponent / shape)``,
proportional hazards on the progression rate ``r`` as death/tracheostomy; ``ref``
puts the population median from onset at ``niv_median_months``. Patients on
permanent NIV do not enter a cohort, so the time is drawn given no NIV at the first
visit, as death is. Given the rate, NIV and death/tracheostomy are independent.

FVC (% of predicted) starts at a normal baseline, falls ``fvc_per_point`` per point of
the true (noise-free) ALSFRS-R total lost since the first visit, with visit noise of
SD ``fvc_residual_sd``; a patient's baseline FVC and NIV draw are correlated
(``niv_fvc_correlation``: a low FVC brings NIV earlier) through a Gaussian copula that
keeps the NIV time's Weibull law. Litres are the percentage times the ECSC/ERS 1993
predicted FVC for sex, age and a drawn height [Quanjer 1993].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.simulate._course import death_after
from alsprog.simulate._params import CohortParams
from alsprog.simulate._progression import _rate_nodes

__all__ = ["draw_niv_fvc", "independent_stream", "niv_reference_scale"]

Array = npt.NDArray[np.float64]

# ECSC/ERS 1993 predicted FVC (litres) = a * height_m - 0.026 * age - c [Quanjer 1993]
_PREDICTED_FVC = {True: (5.76, 4.34), False: (4.43, 2.89)}  # male, female
# adult heights (m), mean and SD, men and women of European ancestry (assumption)
_HEIGHT = {True: (1.76, 0.07), False: (1.63, 0.065)}
_FVC_RANGE = (5.0, 140.0)  # % predicted after noise
_FVC_BASELINE_RANGE = (40.0, 130.0)


def independent_stream(rng: np.random.Generator) -> np.random.Generator:
    """A generator independent of ``rng`` that leaves ``rng``'s stream as it was.

    The child is ``rng``'s bit generator jumped far ahead from its present state
    (where the bit generator can jump; otherwise a spawned child), so the same seed
    gives the same child, and drawing from it changes nothing ``rng`` draws later.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> before = rng.bit_generator.state
    >>> child = independent_stream(rng)
    >>> rng.bit_generator.state == before
    True
    >>> bool(child.random() == independent_stream(np.random.default_rng(1)).random())
    True
    """
    bit = rng.bit_generator
    if hasattr(bit, "jumped"):
        return np.random.Generator(bit.jumped())
    return rng.spawn(1)[0]


def niv_reference_scale(p: CohortParams) -> float:
    """Weibull scale (months from onset) of NIV for a patient at ``|slope_mean|``.

    Patient ``i`` has scale ``ref * (rate_i / |slope_mean|) ** (-niv_rate_exponent /
    niv_weibull_shape)``; ``ref`` makes the population probability of no NIV,
    ``E[exp(-(t / scale) ** shape)]`` over the rate distribution, equal 0.5 at
    ``niv_median_months`` (derived; ``inf`` when NIV is switched off).

    Examples
    --------
    >>> ref = niv_reference_scale(CohortParams(niv_rate_exponent=0.0))
    >>> round(ref * math.log(2) ** (1 / 1.5), 6)  # no rate effect: the median
    36.0
    """
    from scipy.optimize import brentq

    if math.isinf(p.niv_median_months):
        return math.inf
    x, w = _rate_nodes(p, p.niv_rate_exponent)

    def surv_minus_half(log_a: float) -> float:
        return float(np.sum(w * np.exp(-math.exp(log_a) * x))) - 0.5

    log_a = brentq(surv_minus_half, -30.0, 30.0, xtol=1e-12)
    return p.niv_median_months / math.exp(log_a / p.niv_weibull_shape)


def draw_niv_fvc(
    p: CohortParams,
    pat: dict[str, Any],
    t: Array,
    rng: np.random.Generator,
) -> dict[str, Array]:
    """NIV onset and FVC of the patients in ``pat`` on their visit grid ``t``.

    Parameters
    ----------
    p : CohortParams
    pat : dict
        The patients' draws: ``t0``, ``rate``, ``baseline``, ``d50``, ``dx``,
        ``male`` and ``age_at_onset`` (arrays of length ``n``).
    t : ndarray, shape (n, k)
        Months from each patient's first visit to each scheduled visit.
    rng : numpy.random.Generator
        A stream of its own (:func:`independent_stream`).

    Returns
    -------
    dict
        ``niv_scale`` and ``niv_since_onset`` (months from onset; ``inf`` when NIV
        is switched off), ``niv_months`` (from the first visit), and
        ``fvc_percent_predicted`` and ``fvc_liters`` of shape ``(n, k)``.

    Examples
    --------
    >>> from alsprog.simulate._course import draw_course
    >>> c = draw_course(CohortParams(), 4, np.random.default_rng(0))
    >>> c.update(male=np.array([True, False, True, False]), age_at_onset=np.full(4, 60.0))
    >>> d = draw_niv_fvc(CohortParams(), c, np.zeros((4, 1)), np.random.default_rng(1))
    >>> bool((d["niv_months"] > 0).all()), d["fvc_percent_predicted"].shape
    (True, (4, 1))
    """
    n = len(pat["t0"])
    rel = pat["rate"] / -p.slope_mean
    k = p.niv_weibull_shape
    # copula: a low baseline FVC goes with an early NIV; E stays unit exponential
    from scipy.special import log_ndtr

    z_fvc = rng.standard_normal(n)
    r = p.niv_fvc_correlation
    z_niv = r * z_fvc + math.sqrt(1.0 - r**2) * rng.standard_normal(n)
    e = -log_ndtr(-z_niv)  # -log(1 - Phi(z)): Exp(1), increasing in z
    ref = niv_reference_scale(p)
    if math.isinf(ref):
        scale = np.full(n, np.inf)
        since_onset = np.full(n, np.inf)
    else:
        scale = ref * rel ** (-p.niv_rate_exponent / k)
        since_onset = death_after(scale, pat["t0"], e, k)

    # FVC % predicted: baseline, minus fvc_per_point per true ALSFRS-R point lost
    base = np.clip(
        p.fvc_baseline_mean + p.fvc_baseline_sd * z_fvc, *_FVC_BASELINE_RANGE
    )
    since = pat["t0"][:, None] + t
    true = 48.0 / (1.0 + np.exp((since - pat["d50"][:, None]) / pat["dx"][:, None]))
    loss = np.maximum(pat["baseline"][:, None] - true, 0.0)
    noise = rng.normal(0.0, p.fvc_residual_sd, t.shape)
    pct = np.clip(base[:, None] - p.fvc_per_point * loss + noise, *_FVC_RANGE)

    # litres: % of the ECSC/ERS 1993 prediction for sex, age at the visit and height
    male = np.asarray(pat["male"], dtype=bool)
    z_h = rng.standard_normal(n)
    height = np.where(
        male,
        _HEIGHT[True][0] + _HEIGHT[True][1] * z_h,
        _HEIGHT[False][0] + _HEIGHT[False][1] * z_h,
    )
    a = np.where(male, _PREDICTED_FVC[True][0], _PREDICTED_FVC[False][0])
    c = np.where(male, _PREDICTED_FVC[True][1], _PREDICTED_FVC[False][1])
    age = (pat["age_at_onset"] + pat["t0"] / 12.0)[:, None] + t / 12.0
    predicted = np.maximum(a[:, None] * height[:, None] - 0.026 * age - c[:, None], 0.5)
    return {
        "niv_scale": scale,
        "niv_since_onset": since_onset,
        "niv_months": since_onset - pat["t0"],
        "fvc_percent_predicted": np.round(pct, 1),
        "fvc_liters": np.round(pct / 100.0 * predicted, 2),
    }
