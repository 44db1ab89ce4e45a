"""Several outcomes of simulated patients on one shared latent disease time.

Owns: :func:`simulate_disease_course`, the generative model behind
:class:`alsprog.models.bayes._course.DiseaseCourseModel` (Leaspy's multivariate
logistic model: one logistic curve per outcome on a latent disease time shared by the
outcomes, a time shift ``tau_i`` and an acceleration ``alpha_i = exp(xi_i)`` per
patient, and space shifts ``w_ik``), with realistic ALSFRS-R domain, FVC and CST-FA
numbers, and :class:`SimulatedCourse` (the visits plus the truth).
Leaves: the cohort simulator with items, events and imaging files to
:mod:`alsprog.simulate._cohort`; fitting to :mod:`alsprog.models`.

The model (``docs/domain.md`` §3 anchor; Schiratti 2017, JMLR; Koval 2021, Sci Rep;
Leaspy ``docs/models.md``): each outcome is rescaled to ``y = (normal - x) /
(normal - floor)``, so 0 is the healthy end and 1 the floor, and

    psi_i(t) = alpha_i (t - tau_i) + t0                  (latent disease time, months)
    y_ik(t) = 1 / (1 + exp(-v_k (psi_i(t) - m_k) - w_ik))

with ``tau_i ~ N(t0, tau_sd)``, ``xi_i ~ N(0, xi_sd)``, ``m_k`` the latent time at
which outcome ``k`` is half-way to its floor and ``v_k`` its rate (1/month).  ``t`` is
months since symptom onset, so the latent axis is the months since onset of a patient
with ``tau_i = t0`` and ``alpha_i = 1``.  The space shifts are outcome-specific time
shifts ``s_ik`` (months; bulbar-onset patients' bulbar domain earlier, their limbs
later, centred over the cohort) turned into logit units ``w_ik = -v_k s_ik`` and projected orthogonal to
``v = (v_1..v_K)``, as Leaspy does, so that they never move all outcomes together (that
is ``tau_i``'s job).  Continuous outcomes (FVC, FA) add a per-patient healthy level
(``healthy_sd``, raw units): people differ before the disease does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._random import as_generator
from alsprog._validation import check_int, check_interval
from alsprog.errors import ModelSpecificationError

__all__ = [
    "COURSE_OUTCOMES",
    "REFERENCE_RANGES",
    "SimulatedCourse",
    "default_course_params",
    "simulate_disease_course",
]

Array = npt.NDArray[np.float64]

#: ALSFRS-R domain subscores (0-12 each, 12 = normal) [Cedarbaum 1999].
DOMAINS = (
    "alsfrs_r_bulbar",
    "alsfrs_r_fine_motor",
    "alsfrs_r_gross_motor",
    "alsfrs_r_respiratory",
)
#: Every outcome the simulator knows, in its default order.
COURSE_OUTCOMES = (*DOMAINS, "fvc_percent_predicted", "fa_cst_left")

#: ``(normal, floor)`` in raw units, mapped to 0 and 1.  Domains: the scale's ends.
#: FVC: 100 % predicted (normal by definition) to 0.  CST FA: healthy 0.55
#: (docs/domain.md §6-7) to 0.45, an assumed floor ~18 % below healthy, so that the
#: mid-course deficit (0.03-0.05, 5-10 % lower; d ~ -0.95 vs SD 0.03) sits near
#: y = 0.3-0.5.
REFERENCE_RANGES: dict[str, tuple[float, float]] = {
    **{d: (12.0, 0.0) for d in DOMAINS},
    "fvc_percent_predicted": (100.0, 0.0),
    "fa_cst_left": (0.55, 0.45),
}

# Per outcome: half-way latent time m_k (months since onset of the reference patient),
# rate v_k (1/month), residual SD (raw units), SD of the outcome's own time shift
# (months), shift for bulbar-onset vs spinal-onset patients (months; negative =
# earlier), healthy-level SD (raw).
# Calibrated (derived here) so that a spinal/bulbar 72/28 mix at ~15 months from onset
# gives domain means near the trial-entry means bulbar 9.7, fine 8.0, gross 7.6,
# respiratory 10.8 [Paganoni 2020] (measured, 3000 patients: 9.8, 7.6, 8.1,
# 10.5), a total near 35.9 (trials 36-38) and 0.89 points/month
# (docs/domain.md §1-2); respiratory declines last [Thakore 2018]; FVC ~80 % at entry;
# FA changes early and slowly [Steinbach 2020] (approx.).
_OUTCOME_DEFAULTS: dict[str, dict[str, float]] = {
    "alsfrs_r_bulbar": {
        "midpoint": 33.0,
        "rate": 0.12,
        "noise_sd": 0.8,
        "shift_sd": 4.0,
        "bulbar_onset_shift": -18.0,
        "healthy_sd": 0.0,
    },
    "alsfrs_r_fine_motor": {
        "midpoint": 21.0,
        "rate": 0.12,
        "noise_sd": 0.8,
        "shift_sd": 4.0,
        "bulbar_onset_shift": 8.0,
        "healthy_sd": 0.0,
    },
    "alsfrs_r_gross_motor": {
        "midpoint": 23.0,
        "rate": 0.12,
        "noise_sd": 0.8,
        "shift_sd": 4.0,
        "bulbar_onset_shift": 8.0,
        "healthy_sd": 0.0,
    },
    "alsfrs_r_respiratory": {
        "midpoint": 36.0,
        "rate": 0.12,
        "noise_sd": 0.8,
        "shift_sd": 4.0,
        "bulbar_onset_shift": 0.0,
        "healthy_sd": 0.0,
    },
    "fvc_percent_predicted": {
        "midpoint": 30.0,
        "rate": 0.10,
        "noise_sd": 5.0,
        "shift_sd": 4.0,
        "bulbar_onset_shift": 0.0,
        "healthy_sd": 8.0,
    },
    "fa_cst_left": {
        "midpoint": 12.0,
        "rate": 0.08,
        "noise_sd": 0.012,
        "shift_sd": 4.0,
        "bulbar_onset_shift": 0.0,
        "healthy_sd": 0.015,
    },
}

_POPULATION_DEFAULTS: dict[str, Any] = {
    "t0": 24.0,  # mean tau (months since onset)
    "tau_sd": 8.0,
    "xi_sd": 0.35,  # alpha 0.5-2 for +-2 SD
    "bulbar_onset": 0.28,  # docs/domain.md §7
    "entry_mean": 15.0,  # months onset -> first visit, 15 +- 6, >= 3 (§7)
    "entry_sd": 6.0,
    "entry_min": 3.0,
    "imaging_every_months": 6.0,  # FA only at scan visits (0, 6, 12, ...)
}


def default_course_params() -> dict[str, Any]:
    """The simulator's default parameters (a fresh, editable copy).

    Returns
    -------
    dict
        Population keys ``t0``, ``tau_sd``, ``xi_sd``, ``bulbar_onset``,
        ``entry_mean``, ``entry_sd``, ``entry_min``, ``imaging_every_months`` and
        ``outcomes``: one dict per outcome with ``midpoint``, ``rate``, ``noise_sd``,
        ``shift_sd``, ``bulbar_onset_shift``, ``healthy_sd`` (see the module notes).

    Examples
    --------
    >>> p = default_course_params()
    >>> p["outcomes"]["alsfrs_r_fine_motor"]["midpoint"]
    21.0
    """
    out = copy.deepcopy(_POPULATION_DEFAULTS)
    out["outcomes"] = copy.deepcopy(_OUTCOME_DEFAULTS)
    return out


@dataclass(frozen=True, repr=False, eq=False)
class SimulatedCourse:
    """Visits from :func:`simulate_disease_course` and the truth behind them.

    Attributes
    ----------
    visits : pandas.DataFrame
        Long table, one row per visit: ``subject_id``, ``months`` (since the first
        visit), ``months_since_onset`` and one column per outcome (raw units; FA
        missing between scans).
    truth : pandas.DataFrame
        One row per patient: ``subject_id``, ``onset_site``, ``tau``, ``xi``,
        ``alpha``, ``entry_months_since_onset``, then ``w_<outcome>`` (space shifts,
        logit units) and ``healthy_<outcome>`` (raw healthy level) per outcome.
    outcomes : pandas.DataFrame
        One row per outcome (index: outcome): ``midpoint``, ``rate``, ``normal``,
        ``floor``, ``noise_sd``.
    params : dict
        The parameters used (defaults merged with the caller's).
    """

    visits: pd.DataFrame
    truth: pd.DataFrame
    outcomes: pd.DataFrame
    params: dict[str, Any]

    def __repr__(self) -> str:
        return (
            f"SimulatedCourse({self.truth.shape[0]} patients, "
            f"{self.visits.shape[0]} visits, outcomes={list(self.outcomes.index)})"
        )

    def decline_order(self, threshold: float = 0.5) -> list[str]:
        """Outcomes in the order the population curves reach ``threshold``.

        Examples
        --------
        >>> simulate_disease_course(3, seed=1).decline_order()[:2]
        ['fa_cst_left', 'alsfrs_r_fine_motor']
        """
        check_interval(
            threshold, "threshold", low=0, high=1, low_closed=False, high_closed=False
        )
        o = self.outcomes
        t = o["midpoint"] + np.log(threshold / (1 - threshold)) / o["rate"]
        return list(t.sort_values(kind="stable").index)


def project_out(w: Array, v: Array) -> Array:
    """Remove from each row of ``w`` its component along ``v`` (Leaspy's space
    shifts are orthogonal to the rates).

    Examples
    --------
    >>> project_out(np.array([[1.0, 1.0]]), np.array([1.0, 1.0]))
    array([[0., 0.]])
    """
    v = np.asarray(v, dtype=float)
    return w - np.outer(w @ v, v) / float(v @ v)


def _merge_params(params: dict[str, Any] | None, outcomes: tuple[str, ...]) -> dict:
    p = default_course_params()
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ModelSpecificationError(
            f"`params` must be a dict; got {type(params).__name__}."
        )
    unknown = sorted(set(params) - set(p))
    if unknown:
        raise ModelSpecificationError(
            f"`params` has unknown key(s) {', '.join(map(repr, unknown))}; valid: "
            f"{', '.join(sorted(p))}."
        )
    for k, val in params.items():
        if k != "outcomes":
            p[k] = val
    for name, over in (params.get("outcomes") or {}).items():
        if name not in p["outcomes"]:
            raise ModelSpecificationError(
                f"`params['outcomes']` names unknown outcome {name!r}; valid: "
                f"{', '.join(COURSE_OUTCOMES)}."
            )
        bad = sorted(set(over) - set(p["outcomes"][name]))
        if bad:
            raise ModelSpecificationError(
                f"`params['outcomes'][{name!r}]` has unknown key(s) "
                f"{', '.join(map(repr, bad))}; valid: "
                f"{', '.join(p['outcomes'][name])}."
            )
        p["outcomes"][name].update(over)
    for k in ("tau_sd", "xi_sd", "entry_sd"):
        check_interval(p[k], f"params['{k}']", low=0, error=ModelSpecificationError)
    check_interval(
        p["bulbar_onset"],
        "params['bulbar_onset']",
        low=0,
        high=1,
        error=ModelSpecificationError,
    )
    check_interval(
        p["imaging_every_months"],
        "params['imaging_every_months']",
        low=0,
        low_closed=False,
        error=ModelSpecificationError,
    )
    for name in outcomes:
        o = p["outcomes"][name]
        check_interval(
            o["rate"],
            f"params['outcomes'][{name!r}]['rate']",
            low=0,
            low_closed=False,
            error=ModelSpecificationError,
        )
        for k in ("noise_sd", "shift_sd", "healthy_sd"):
            check_interval(
                o[k],
                f"params['outcomes'][{name!r}][{k!r}]",
                low=0,
                error=ModelSpecificationError,
            )
    return p


def simulate_disease_course(
    n_patients: int,
    *,
    outcomes: tuple[str, ...] | list[str] = COURSE_OUTCOMES,
    months: float = 18,
    visit_interval_months: float = 3,
    seed: Any = None,
    params: dict[str, Any] | None = None,
) -> SimulatedCourse:
    """Simulate ALS patients whose outcomes follow logistic curves on one latent time.

    Parameters
    ----------
    n_patients : int
        Number of patients (>= 1).
    outcomes : sequence of str, default all six
        Which of ``alsfrs_r_bulbar``, ``alsfrs_r_fine_motor``,
        ``alsfrs_r_gross_motor``, ``alsfrs_r_respiratory``, ``fvc_percent_predicted``,
        ``fa_cst_left`` to simulate (at least one, no repeats).  The space shifts are
        projected orthogonal to the rates of the outcomes simulated.
    months : float, default 18
        Follow-up from the first visit (months, >= 0).
    visit_interval_months : float, default 3
        Months between visits (> 0); visits at 0, interval, ... up to ``months``.
    seed : int, numpy.random.Generator or None
        Random seed.
    params : dict, optional
        Overrides of :func:`default_course_params`; ``params["outcomes"]`` overrides
        per outcome, e.g. ``{"outcomes": {"alsfrs_r_bulbar": {"rate": 0.2}}}``.

    Returns
    -------
    SimulatedCourse
        ``visits`` (long table), ``truth`` (per patient), ``outcomes`` (per outcome)
        and ``params``.

    Raises
    ------
    ModelSpecificationError
        Unknown outcome or parameter key, or a parameter out of range.
    ValueError
        Bad ``n_patients``, ``months`` or ``visit_interval_months``.

    Notes
    -----
    Domains are rounded to whole points and clipped to 0-12; FVC is clipped to
    0-250 %; FA to 0-1 and observed only every ``imaging_every_months`` (a missing
    cell otherwise).  There is no dropout or death: every patient has every visit.

    Examples
    --------
    >>> sim = simulate_disease_course(4, outcomes=["alsfrs_r_bulbar"], seed=1)
    >>> sim.visits.shape
    (28, 4)
    >>> sorted(sim.visits["alsfrs_r_bulbar"].unique().tolist())[-1] <= 12
    True
    """
    n = check_int(n_patients, "n_patients", low=1)
    months = check_interval(months, "months", low=0)
    step = check_interval(
        visit_interval_months, "visit_interval_months", low=0, low_closed=False
    )
    outs = tuple(outcomes) if not isinstance(outcomes, str) else (outcomes,)
    unknown = [o for o in outs if o not in COURSE_OUTCOMES]
    if unknown or not outs or len(set(outs)) != len(outs):
        what = (
            f"unknown outcome(s) {', '.join(map(repr, unknown))}"
            if unknown
            else "no outcome"
            if not outs
            else "a repeated outcome"
        )
        raise ModelSpecificationError(
            f"`outcomes` has {what}; choose distinct names from "
            f"{', '.join(COURSE_OUTCOMES)}."
        )
    p = _merge_params(params, outs)
    rng = as_generator(seed)
    po = p["outcomes"]
    K = len(outs)
    mid = np.array([po[o]["midpoint"] for o in outs], dtype=float)
    rate = np.array([po[o]["rate"] for o in outs], dtype=float)

    # Per patient: onset site, tau, xi, entry time, space shifts, healthy levels.
    bulbar = rng.random(n) < p["bulbar_onset"]
    tau = p["t0"] + p["tau_sd"] * rng.standard_normal(n)
    xi = p["xi_sd"] * rng.standard_normal(n)
    alpha = np.exp(xi)
    entry = np.maximum(
        p["entry_mean"] + p["entry_sd"] * rng.standard_normal(n), p["entry_min"]
    )
    shift = np.array([po[o]["shift_sd"] for o in outs]) * rng.standard_normal((n, K))
    # Onset-site shifts centred on the cohort's bulbar-onset share, so that the
    # midpoints are those of the average patient (w = 0), as the model assumes.
    site = np.array([po[o]["bulbar_onset_shift"] for o in outs], dtype=float)
    shift += np.outer(bulbar - float(p["bulbar_onset"]), site)
    # A time shift s (months) moves the outcome's curve s months later on the
    # latent axis: w = -v s (negative s: the outcome declines earlier).
    w = project_out(-shift * rate, rate) if K > 1 else np.zeros((n, 1))
    normal = np.array([REFERENCE_RANGES[o][0] for o in outs])
    floor = np.array([REFERENCE_RANGES[o][1] for o in outs])
    healthy = normal + np.array([po[o]["healthy_sd"] for o in outs]) * (
        rng.standard_normal((n, K))
    )

    visit_months = np.arange(0.0, months + 1e-9, step)
    J = len(visit_months)
    subj = np.repeat(np.arange(n), J)
    vm = np.tile(visit_months, n)
    t = entry[subj] + vm
    psi = alpha[subj] * (t - tau[subj]) + p["t0"]
    eta = rate[None, :] * (psi[:, None] - mid[None, :]) + w[subj]
    y = 1.0 / (1.0 + np.exp(-eta))
    raw = healthy[subj] - y * (normal - floor)[None, :]
    noise_sd = np.array([po[o]["noise_sd"] for o in outs])
    raw = raw + noise_sd[None, :] * rng.standard_normal(raw.shape)

    width = max(4, len(str(n)))
    ids = np.array([f"P{i + 1:0{width}d}" for i in range(n)], dtype=object)
    visits = pd.DataFrame(
        {
            "subject_id": pd.array(ids[subj], dtype="str"),
            "months": vm,
            "months_since_onset": t,
        }
    )
    every = float(p["imaging_every_months"])
    scan = np.isclose(np.mod(vm + 1e-9, every), 0.0, atol=1e-6)
    for k, o in enumerate(outs):
        col = raw[:, k]
        if o in DOMAINS:
            visits[o] = np.clip(np.round(col), 0, 12) + 0.0
        elif o == "fvc_percent_predicted":
            visits[o] = np.clip(col, 0, 250)
        else:
            visits[o] = np.where(scan, np.clip(col, 0, 1), np.nan)

    truth = pd.DataFrame(
        {
            "subject_id": pd.array(ids, dtype="str"),
            "onset_site": np.where(bulbar, "bulbar", "spinal"),
            "tau": tau,
            "xi": xi,
            "alpha": alpha,
            "entry_months_since_onset": entry,
        }
    )
    for k, o in enumerate(outs):
        truth[f"w_{o}"] = w[:, k]
    for k, o in enumerate(outs):
        truth[f"healthy_{o}"] = healthy[:, k]
    table = pd.DataFrame(
        {
            "midpoint": mid,
            "rate": rate,
            "normal": normal,
            "floor": floor,
            "noise_sd": noise_sd,
        },
        index=pd.Index(list(outs), name="outcome"),
    )
    return SimulatedCourse(visits=visits, truth=truth, outcomes=table, params=p)
