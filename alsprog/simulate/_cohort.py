"""Synthetic ALS cohorts: subjects, ALSFRS-R visits, events and imaging sessions.

Owns: :func:`simulate_cohort` and the :class:`Cohort` it returns.
Leaves: parameters to :mod:`alsprog.simulate._params`, their calibration and the
onset/sigmoid/event draws to :mod:`alsprog.simulate._progression`, item splitting to
:mod:`alsprog.simulate._items`, imaging values to
:mod:`alsprog.simulate._imaging`, NIfTI files to :mod:`alsprog.simulate._nifti`,
reading and validating tables to :mod:`alsprog.data`.

Generative model per patient (docs/domain.md §1-§3, §7):

1. Onset-to-baseline months ``T0`` (normal, truncated) and ΔFS (lognormal) are drawn
   jointly through a Gaussian copula with negative correlation (fast progressors reach
   the first visit sooner); the true baseline total is ``B = 48 - ΔFS * T0``, redrawn
   until it lies in ``[baseline_min, baseline_max]``.
2. The 12-month progression rate ``r`` (points/month) is lognormal, correlated with ΔFS,
   times ``bulbar_slope_multiplier`` for bulbar onset. With ``progression_classes``,
   each patient's class is drawn first (with the classes' shares) and the rate from
   that class's lognormal (:mod:`alsprog.simulate._classes`), with the same copula.
3. The patient follows the D50 sigmoid ``48 / (1 + exp((t - D50) / dx))`` (``t`` months
   since onset) through ``B`` at ``T0`` and ``B - 12 r`` at ``T0 + 12`` [Steinbach 2020].
4. Observed total = ``round(true + N(0, residual_sd))`` clipped to 0-48, split into
   items by :func:`~alsprog.simulate._items.split_total`.
5. Death/tracheostomy: Weibull from onset with hazard ``∝ (r / |slope_mean|)**k``,
   drawn conditional on survival to the first visit; dropout: exponential from the first
   visit, hazard rising with ``r``. Either ends the visits.
6. Permanent NIV (> 23 h/day) and FVC (:mod:`alsprog.simulate._niv`): NIV is Weibull
   from onset like death, given no NIV at the first visit; it does not end the visits.
   FVC % predicted falls with the true total. Both come from a random stream of their
   own, so every other column is the same for a seed as before they existed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._random import as_generator
from alsprog._validation import check_int
from alsprog.simulate._classes import (
    ProgressionClass,
    class_lognormals,
    draw_classes,
    resolve_classes,
)
from alsprog.simulate._course import draw_events, draw_rate
from alsprog.simulate._imaging import (
    apply_site_effects,
    draw_site_effects,
    imaging_values,
)
from alsprog.simulate._items import DOMAINS, item_order, split_total
from alsprog.simulate._niv import draw_niv_fvc, independent_stream
from alsprog.simulate._params import (
    DAYS_PER_MONTH,
    IMAGING_FEATURES,
    CohortParams,
    resolve_params,
)
from alsprog.simulate._progression import draw_onset, realised_slope, sigmoid_through

__all__ = ["Cohort", "simulate_cohort"]

#: Most visit rows (subjects x scheduled visits) one call simulates.
MAX_VISIT_ROWS = 10_000_000

logger = logging.getLogger(__name__)

ITEMS = [f"alsfrs_r_q{i}" for i in range(1, 13)]
GASTROSTOMY = "alsfrs_r_q5_gastrostomy"
FEATURES = [f for f, _ in IMAGING_FEATURES]
_FIRST_BASELINE = np.datetime64("2016-01-01")
_LAST_BASELINE = np.datetime64("2021-12-31")
_N_BASELINE_DAYS = int((_LAST_BASELINE - _FIRST_BASELINE) // np.timedelta64(1, "D")) + 1
# no simulated date after this one (fixed, so a seed gives the same cohort every day):
# long follow-ups move the baseline window back instead of running into the future
_LAST_DATE = np.datetime64("2025-12-31")


@dataclass(frozen=True, repr=False, eq=False)
class Cohort:
    """A simulated cohort: the three long-format tables plus the simulation truth.

    Attributes
    ----------
    subjects : pandas.DataFrame
        One row per subject: ``subject_id, group, sex, age_at_onset, age_at_baseline,
        onset_site, onset_date, diagnostic_delay_months, site,
        death_or_tracheostomy_months, event_observed, niv_months, niv_observed,
        death_tracheostomy_or_niv_months, death_tracheostomy_or_niv_observed``
        (ALS-only columns missing for controls). Permanent NIV is observed when it
        starts no later than ``death_or_tracheostomy_months`` (before death or
        tracheostomy, or before the last contact); otherwise ``niv_months`` is that
        time, censored. The ENCALS composite ends at the first of the three:
        ``death_tracheostomy_or_niv_months`` is the smaller of the two times, observed
        when either event is. NIV does not end follow-up for death/tracheostomy.
    visits : pandas.DataFrame
        One row per attended clinic visit: ``subject_id, visit_date``, the 12 ALSFRS-R
        items, ``alsfrs_r_q5_gastrostomy``, the total, the four domain subscores,
        ``fvc_liters`` and ``fvc_percent_predicted`` (all missing for controls).
    imaging : pandas.DataFrame
        One row per imaging session: ``subject_id, session, acquisition_date`` and the
        features (site effects applied).
    truth : pandas.DataFrame
        One row per subject with the latent quantities: ``months_onset_to_baseline``,
        noise-free ``baseline_total``, ``delta_fs``, ``progression_rate`` (points/month,
        positive), ``slope_12m`` (true mean slope over the first 12 months, negative),
        ``d50``, ``dx``, ``event_weibull_scale`` (months, from onset),
        ``event_months_since_onset``, ``niv_weibull_scale``,
        ``niv_months_since_onset`` (``inf`` when NIV is switched off),
        ``dropout_months`` (from the first visit),
        ``study_end_months``; with ``progression_classes``, also
        ``progression_class`` (after ``delta_fs``): each patient's class, 1..K in the
        order the classes were given (missing for controls).
    imaging_truth : pandas.DataFrame
        The imaging table before site effects (same rows and columns as ``imaging``).
    site_effects : pandas.DataFrame
        ``site, feature, offset, scale``: observed = healthy mean + scale × (pre-site
        value − healthy mean) + offset.
    params : CohortParams
        The parameters used.
    seed : object
        The ``seed`` argument as given.
    progression_classes : tuple of ProgressionClass or None
        The progression classes the patients were drawn from (``None``: one
        population, as :class:`CohortParams` describes).

    Examples
    --------
    >>> cohort = simulate_cohort(3, 1, months=6, seed=2)
    >>> cohort.subjects[["subject_id", "group"]].to_dict("list")
    {'subject_id': ['C0001', 'P0001', 'P0002', 'P0003'], 'group': ['control', 'als', 'als', 'als']}
    >>> cohort.params.slope_mean
    -0.9
    """

    subjects: pd.DataFrame
    visits: pd.DataFrame
    imaging: pd.DataFrame
    truth: pd.DataFrame
    imaging_truth: pd.DataFrame
    site_effects: pd.DataFrame
    params: CohortParams = field(default_factory=CohortParams)
    seed: Any = None
    progression_classes: tuple[ProgressionClass, ...] | None = None

    def __repr__(self) -> str:
        groups = self.subjects["group"].value_counts()
        classes = (
            ""
            if self.progression_classes is None
            else f"{len(self.progression_classes)} progression classes, "
        )
        return (
            f"Cohort({int(groups.get('als', 0))} patients, "
            f"{int(groups.get('control', 0))} controls, {len(self.visits)} visits, "
            f"{len(self.imaging)} imaging sessions, {classes}seed={self.seed!r})"
        )

    def to_proact(self, folder: Any, **kwargs: Any) -> Any:
        """Write the patients as a PRO-ACT export: :func:`alsprog.simulate.write_proact`.

        Examples
        --------
        >>> import tempfile
        >>> export = simulate_cohort(2, 0, seed=1).to_proact(tempfile.mkdtemp())
        >>> export.subject_ids.tolist()
        [1, 2]
        """
        from alsprog.simulate._proact import write_proact

        return write_proact(self, folder, **kwargs)


def simulate_cohort(
    n_patients: int,
    n_controls: int = 0,
    *,
    months: int = 18,
    visit_interval_months: int = 3,
    n_sites: int = 3,
    imaging_interval_months: int = 6,
    seed: Any = None,
    params: CohortParams | dict[str, float] | None = None,
    progression_classes: Sequence[ProgressionClass | Mapping[str, Any]] | None = None,
    **overrides: float,
) -> Cohort:
    """Simulate a longitudinal ALS cohort with healthy controls and imaging.

    Parameters
    ----------
    n_patients : int
        Number of ALS patients (IDs ``P0001``, ...), >= 0.
    n_controls : int, default 0
        Number of healthy controls (IDs ``C0001``, ...), >= 0; at least one subject in
        all.
    months : int, default 18
        Planned follow-up from the first visit, 0-240 months.
    visit_interval_months : int, default 3
        Months between scheduled clinic visits (>= 1); visits at 0, interval, ... up to
        ``months``.
    n_sites : int, default 3
        Number of recruiting/scanner sites ``S1`` ... ``Sn`` (1-99); subjects are
        assigned at random.
    imaging_interval_months : int, default 6
        Months between imaging sessions (a multiple of ``visit_interval_months``);
        patients are scanned at the visits on this schedule, controls come only for
        these visits.
    seed : int, numpy.random.Generator or None
        Random seed; the same seed gives the same cohort.
    params : CohortParams or dict, optional
        Simulator parameters (defaults: :class:`CohortParams`).
    progression_classes : sequence of ProgressionClass or dict, optional
        Draw the patients from K latent progression classes with known membership:
        one :class:`ProgressionClass` (or dict with keys ``share``, ``slope_mean``,
        ``slope_sd``, optionally ``name``) per class; the shares must sum to 1. Each
        patient's class is drawn with the shares, then the 12-month rate from that
        class's lognormal (calibrated so that the class's true 12-month slopes have its
        ``slope_mean`` and ``slope_sd``), correlated with ΔFS as without classes. The
        class is recorded in ``truth["progression_class"]`` (1..K in the order given)
        and the classes in ``Cohort.progression_classes``. ``params.slope_mean`` and
        ``slope_sd`` then no longer shape the rates; they remain the reference of the
        death, dropout and imaging laws, which depend on each patient's rate as
        without classes (so a fast class dies and drops out sooner). Default ``None``:
        one population, the same numbers for the same seed as before classes existed.
    **overrides : float
        Individual :class:`CohortParams` fields, merged over ``params``.

    Returns
    -------
    Cohort
        Tables ``subjects``, ``visits``, ``imaging`` in the long format of the data
        dictionary, plus ``truth``, ``imaging_truth``, ``site_effects`` and ``params``.

    Raises
    ------
    TypeError
        If an argument has the wrong type or an override is not a parameter name (the
        message lists the valid names).
    ValueError
        If an argument is out of range.
    ModelSpecificationError
        If ``progression_classes`` is malformed (a value out of range, shares not
        summing to 1, no class) or a class's slope mean and SD cannot be reached; the
        message names the class and the value.

    Notes
    -----
    Patients are simulated vectorised over the cohort (20,000 patients take about a
    second or two). The generative model is described in the module docstring of
    ``alsprog.simulate._cohort``; every default and its source is listed in
    :class:`CohortParams`.

    A patient's class is drawn independently of onset, ΔFS and onset site, and the
    death and dropout hazards rise with the rate as in one population, so a fast class
    leaves early: with the three classes of the example below, 24 months of follow-up
    and default parameters, the median time from the first visit to death is about
    108, 15 and 4 months in the slow, typical and fast class, and 49 % of the fast
    class have a single visit. Pass ``event_rate_exponent`` and
    ``dropout_rate_exponent`` (0 makes both hazards the same in every class) to keep
    more of a fast class under observation.

    Examples
    --------
    >>> cohort = simulate_cohort(5, 2, months=12, seed=1)
    >>> cohort
    Cohort(5 patients, 2 controls, ... visits, ... imaging sessions, seed=1)
    >>> list(cohort.subjects["subject_id"])
    ['C0001', 'C0002', 'P0001', 'P0002', 'P0003', 'P0004', 'P0005']
    >>> v = cohort.visits.dropna(subset=["alsfrs_r_total"])
    >>> bool((v[[f"alsfrs_r_q{i}" for i in range(1, 13)]].sum(axis=1)
    ...       == v["alsfrs_r_total"]).all())
    True

    Three well-separated progression classes (slow, typical, fast):

    >>> from alsprog.simulate import ProgressionClass
    >>> classes = [
    ...     ProgressionClass(0.3, slope_mean=-0.3, slope_sd=0.15, name="slow"),
    ...     ProgressionClass(0.5, slope_mean=-1.0, slope_sd=0.3, name="typical"),
    ...     ProgressionClass(0.2, slope_mean=-2.0, slope_sd=0.4, name="fast"),
    ... ]
    >>> c = simulate_cohort(300, seed=1, progression_classes=classes)
    >>> c.truth.groupby("progression_class")["slope_12m"].mean().round(1).tolist()
    [-0.3, -1.0, -2.0]
    >>> c.truth["progression_class"].value_counts().sort_index().tolist()
    [85, 157, 58]
    """
    n_patients = check_int(n_patients, "n_patients", low=0)
    n_controls = check_int(n_controls, "n_controls", low=0)
    if n_patients + n_controls == 0:
        raise ValueError("`n_patients` + `n_controls` must be at least 1; got 0.")
    months = check_int(months, "months", low=0, high=240)
    visit_interval_months = check_int(
        visit_interval_months, "visit_interval_months", low=1
    )
    n_sites = check_int(n_sites, "n_sites", low=1, high=99)
    imaging_interval_months = check_int(
        imaging_interval_months, "imaging_interval_months", low=1
    )
    n_rows = (n_patients + n_controls) * (months // visit_interval_months + 1)
    if n_rows > MAX_VISIT_ROWS:
        raise ValueError(
            f"`n_patients` + `n_controls` ({n_patients + n_controls:,}) over {months} "
            f"months every {visit_interval_months} make {n_rows:,} visit rows; at most "
            f"{MAX_VISIT_ROWS:,} are simulated at once (simulate in batches with "
            "different seeds)."
        )
    if imaging_interval_months % visit_interval_months:
        raise ValueError(
            "`imaging_interval_months` must be a multiple of `visit_interval_months` "
            f"({visit_interval_months}); got {imaging_interval_months}."
        )
    p = resolve_params(params, overrides)
    classes = resolve_classes(progression_classes)
    lognormals = None if classes is None else class_lognormals(p, classes)
    rng = as_generator(seed)
    started = time.perf_counter()

    sites = [f"S{i + 1}" for i in range(n_sites)]
    pat = _draw_patients(p, n_patients, rng, classes, lognormals)
    ctl = _draw_controls(p, n_controls, rng)
    n = n_patients + n_controls
    site_index = rng.integers(0, n_sites, n)
    baseline_day = rng.integers(0, _N_BASELINE_DAYS, n)
    pat_end = np.minimum(pat["death_months"], pat["dropout_months"])
    width = max(4, len(str(max(n_patients, n_controls))))
    sim = _Sim(
        ids=np.array(
            [f"P{i + 1:0{width}d}" for i in range(n_patients)]
            + [f"C{i + 1:0{width}d}" for i in range(n_controls)],
            dtype=object,
        ),
        is_als=np.arange(n) < n_patients,
        site_index=site_index,
        site=np.asarray(sites, dtype=object)[site_index],
        baseline_date=_first_baseline(months) + baseline_day.astype("timedelta64[D]"),
        pat=pat,
        ctl=ctl,
        pv=_schedule(p, np.arange(0, months + 1, visit_interval_months), pat_end, rng),
        cv=_schedule(
            p,
            np.arange(0, months + 1, imaging_interval_months),
            ctl["dropout_months"],
            rng,
        ),
    )
    scores = _score_visits(p, pat, sim.pv, rng)
    imaging, imaging_truth, site_effects = _imaging_tables(
        p, sim, sites, imaging_interval_months, rng
    )
    # NIV and FVC: drawn after everything else, from a stream of their own
    niv = draw_niv_fvc(p, pat, sim.pv["t"], independent_stream(rng))
    cohort = Cohort(
        subjects=_subjects_table(sim, niv),
        visits=_visits_table(sim, scores, niv),
        imaging=imaging,
        truth=_truth_table(sim, niv),
        imaging_truth=imaging_truth,
        site_effects=site_effects,
        params=p,
        seed=seed,
        progression_classes=classes,
    )
    logger.info("simulated %r in %.2f s", cohort, time.perf_counter() - started)
    return cohort


@dataclass(frozen=True)
class _Sim:
    """Everything drawn for one cohort, per subject in draw order (patients first)."""

    ids: npt.NDArray[np.object_]
    is_als: npt.NDArray[np.bool_]
    site_index: npt.NDArray[np.int64]
    site: npt.NDArray[np.object_]
    baseline_date: npt.NDArray[np.datetime64]
    pat: dict[str, Any]  # from _draw_patients
    ctl: dict[str, Any]  # from _draw_controls
    pv: dict[str, np.ndarray]  # patients' visit schedule, from _schedule
    cv: dict[str, np.ndarray]  # controls' visit schedule

    @property
    def n_pat(self) -> int:
        return int(self.is_als.sum())

    @property
    def n_ctl(self) -> int:
        return len(self.is_als) - self.n_pat

    def both(self, patient_values: Any, fill: Any = np.nan) -> np.ndarray:
        """Patient values followed by ``fill`` for every control."""
        values = np.asarray(patient_values)
        dtype = object if values.dtype.kind in "OUS" else values.dtype
        return np.concatenate([values.astype(dtype), np.full(self.n_ctl, fill, dtype)])

    def age_at_baseline(self) -> np.ndarray:
        return np.concatenate(
            [
                self.pat["age_at_onset"] + self.pat["t0"] / 12.0,
                self.ctl["age_at_baseline"],
            ]
        )

    def onset_site(self) -> pd.api.extensions.ExtensionArray:
        bulbar = np.where(self.pat["bulbar"], "bulbar", "spinal")
        return pd.array(self.both(bulbar), dtype="str")

    def study_end(self) -> np.ndarray:
        """Months from the first visit to the last scheduled visit (patients)."""
        return self.pv["t"][:, -1]


# --------------------------------------------------------------------------- patients


def _draw_patients(
    p: CohortParams,
    n: int,
    rng: np.random.Generator,
    classes: tuple[ProgressionClass, ...] | None = None,
    lognormals: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Per-patient latent quantities (arrays of length ``n``).

    With ``classes`` (and their ``(mu, sigma)`` from ``class_lognormals``), each
    patient's class is drawn right before the rate; without, nothing extra is drawn,
    so the stream of draws is that of a cohort without classes.
    """
    bulbar = rng.random(n) < p.p_bulbar
    male = rng.random(n) < p.p_male
    age_at_onset = np.clip(
        rng.normal(p.age_at_onset_mean, p.age_at_onset_sd, n), 18.0, 90.0
    )
    t0, dfs, z_t0, z_dfs = draw_onset(p, n, rng)
    baseline = 48.0 - dfs * t0

    # 12-month progression rate, correlated with ΔFS (Gaussian copula), from the
    # patient's progression class when there are classes
    extra: dict[str, Any] = {}
    if classes is None or lognormals is None:
        rate = draw_rate(p, z_dfs, bulbar, rng)
    else:
        k = draw_classes(classes, n, rng)
        rate = draw_rate(
            p, z_dfs, bulbar, rng, lognormal=(lognormals[0][k], lognormals[1][k])
        )
        extra["progression_class"] = k + 1

    # D50 sigmoid through (T0, B) and (T0 + 12, B - 12 r)
    slope_12m = realised_slope(rate, baseline, p)
    d50, dx = sigmoid_through(t0, baseline, baseline + 12.0 * slope_12m)

    # diagnostic delay: lognormal, correlated with T0, diagnosis before the first visit
    rd = p.diagnostic_delay_correlation
    z_delay = rd * z_t0 + math.sqrt(1 - rd**2) * rng.standard_normal(n)
    delay = np.exp(
        math.log(p.diagnostic_delay_median) + p.diagnostic_delay_log_sd * z_delay
    )
    delay = np.minimum(delay, t0)

    # death/tracheostomy: Weibull from onset, PH on the rate, survival to T0 given
    ev = draw_events(p, rate, t0, rng)
    start, span = item_order(bulbar, rng)
    return {
        "bulbar": bulbar,
        "male": male,
        "age_at_onset": age_at_onset,
        "t0": t0,
        "delta_fs": dfs,
        "baseline": baseline,
        "rate": rate,
        "slope_12m": slope_12m,
        "d50": d50,
        "dx": dx,
        "diagnostic_delay": delay,
        "event_scale": ev["event_scale"],
        "event_since_onset": ev["event_since_onset"],
        "death_months": ev["event_since_onset"] - t0,
        "dropout_months": ev["dropout_months"],
        "item_start": start,
        "item_span": span,
        **extra,
    }


def _exponential_times(
    hazard: npt.NDArray[np.float64] | float, rng: np.random.Generator, n: int
) -> npt.NDArray[np.float64]:
    e = rng.exponential(1.0, n)
    with np.errstate(divide="ignore"):
        return np.where(np.asarray(hazard) > 0, e / np.asarray(hazard), np.inf)


def _draw_controls(p: CohortParams, n: int, rng: np.random.Generator) -> dict[str, Any]:
    """Controls: sex and age matched to the patients, non-informative dropout."""
    age_mean = p.age_at_onset_mean + p.onset_to_baseline_mean / 12.0
    hazard = -math.log1p(-p.dropout_per_year) / 12.0
    return {
        "male": rng.random(n) < p.p_male,
        "age_at_baseline": np.clip(
            rng.normal(age_mean, p.age_at_onset_sd, n), 18.0, 95.0
        ),
        "dropout_months": _exponential_times(hazard, rng, n),
    }


# --------------------------------------------------------------------------- visits


def _schedule(
    p: CohortParams,
    grid: npt.NDArray[np.int64],
    end: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Jittered visit days on ``grid`` (months) and which visits are attended.

    A visit is attended unless missed (never the first) or after ``end`` (months from
    the first visit to death or dropout).
    """
    n, k = len(end), len(grid)
    step = (grid[1] - grid[0]) if k > 1 else 1
    bound = max(0.0, 0.3 * step * DAYS_PER_MONTH)
    jitter = np.clip(rng.normal(0.0, p.visit_jitter_sd_days, (n, k)), -bound, bound)
    jitter[:, 0] = 0.0
    day = np.rint(grid * DAYS_PER_MONTH + jitter).astype(np.int64)
    t = day / DAYS_PER_MONTH
    missed = rng.random((n, k)) < p.missed_visit_prob
    missed[:, 0] = False
    attended = ~missed & (t < end[:, None])
    attended[:, 0] = True
    return {
        "day": day,
        "t": t,
        "attended": attended,
        "grid": grid,
    }


def _score_visits(
    p: CohortParams,
    pat: dict[str, Any],
    pv: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """ALSFRS-R items, total, subscores and gastrostomy flag on the (patient, visit) grid."""
    n, k = pv["t"].shape
    months_since_onset = pat["t0"][:, None] + pv["t"]
    true = 48.0 / (
        1.0 + np.exp((months_since_onset - pat["d50"][:, None]) / pat["dx"][:, None])
    )
    noisy = true + rng.normal(0.0, p.residual_sd, (n, k))
    total = np.clip(np.rint(noisy), 0.0, 48.0)
    att = pv["attended"]
    row_patient = np.nonzero(att)[0]
    items = np.zeros((n, k, 12), dtype=np.int64)
    items[att] = split_total(
        total[att], pat["item_start"][row_patient], pat["item_span"][row_patient]
    )
    swallow_low = att & (items[:, :, 2] <= 1)
    eligible = np.maximum.accumulate(swallow_low, axis=1)
    placed = eligible & att & (rng.random((n, k)) < p.gastrostomy_prob)
    gastrostomy = np.maximum.accumulate(placed, axis=1)
    return {"items": items, "total": total, "gastrostomy": gastrostomy}


# --------------------------------------------------------------------------- tables


def _subjects_table(sim: _Sim, niv: dict[str, np.ndarray]) -> pd.DataFrame:
    pat, pv = sim.pat, sim.pv
    # follow-up: the event is observed when it precedes dropout and the study end;
    # otherwise the patient is censored at the last attended visit (last contact)
    last_visit = np.where(pv["attended"], pv["t"], -np.inf).max(axis=1)
    death = pat["death_months"]
    observed = (death <= pat["dropout_months"]) & (death <= sim.study_end())
    event_observed = _flag(sim, observed)
    death_time = np.where(observed, death, last_visit)
    # NIV is observed when it starts within that follow-up (before death or
    # tracheostomy, or before the last contact); otherwise censored at its end. The
    # composite ends at the first of the three.
    niv_observed = niv["niv_months"] <= death_time
    niv_time = np.where(niv_observed, niv["niv_months"], death_time)
    onset_days = np.rint(pat["t0"] * DAYS_PER_MONTH).astype("timedelta64[D]")
    onset_date = sim.both(
        sim.baseline_date[: sim.n_pat] - onset_days, fill=np.datetime64("NaT", "D")
    )
    male = np.concatenate([pat["male"], sim.ctl["male"]])
    df = pd.DataFrame(
        {
            "subject_id": pd.array(sim.ids, dtype="str"),
            "group": pd.array(np.where(sim.is_als, "als", "control"), dtype="str"),
            "sex": pd.array(np.where(male, "male", "female"), dtype="str"),
            "age_at_onset": sim.both(pat["age_at_onset"]),
            "age_at_baseline": sim.age_at_baseline(),
            "onset_site": sim.onset_site(),
            "onset_date": onset_date.astype("datetime64[ns]"),
            "diagnostic_delay_months": sim.both(pat["diagnostic_delay"]),
            "site": pd.array(sim.site, dtype="str"),
            "death_or_tracheostomy_months": sim.both(death_time),
            "event_observed": event_observed,
            "niv_months": sim.both(niv_time),
            "niv_observed": _flag(sim, niv_observed),
            "death_tracheostomy_or_niv_months": sim.both(
                np.minimum(niv_time, death_time)
            ),
            "death_tracheostomy_or_niv_observed": _flag(sim, niv_observed | observed),
        }
    )
    return _sorted(df, ["subject_id"])


def _flag(sim: _Sim, patient_values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A boolean column: the patients' values, <NA> for every control."""
    flag = pd.array(sim.both(patient_values, fill=False).astype(bool), dtype="boolean")
    flag[~sim.is_als] = pd.NA
    return flag


def _visits_table(
    sim: _Sim, scores: dict[str, np.ndarray], niv: dict[str, np.ndarray]
) -> pd.DataFrame:
    pa, ca = sim.pv["attended"], sim.cv["attended"]
    p_rows, _ = np.nonzero(pa)
    c_rows, _ = np.nonzero(ca)
    c_rows = c_rows + sim.n_pat
    rows = np.concatenate([p_rows, c_rows])
    days = np.concatenate([sim.pv["day"][pa], sim.cv["day"][ca]])
    items = scores["items"][pa].astype(float)
    pad = np.full(len(c_rows), np.nan)
    cols: dict[str, Any] = {
        "subject_id": pd.array(sim.ids[rows], dtype="str"),
        "visit_date": _dates(sim.baseline_date[rows], days),
    }
    for j, name in enumerate(ITEMS):
        cols[name] = np.concatenate([items[:, j], pad])
    flag = np.concatenate([scores["gastrostomy"][pa], np.zeros(len(c_rows), bool)])
    cols[GASTROSTOMY] = pd.array(flag, dtype="boolean")
    cols[GASTROSTOMY][len(p_rows) :] = pd.NA
    cols["alsfrs_r_total"] = np.concatenate([items.sum(axis=1), pad])
    for domain, idx in DOMAINS.items():
        sub = items[:, [i - 1 for i in idx]].sum(axis=1)
        cols[f"alsfrs_r_{domain}"] = np.concatenate([sub, pad])
    for name in ("fvc_liters", "fvc_percent_predicted"):
        cols[name] = np.concatenate([niv[name][pa], pad])
    return _sorted(pd.DataFrame(cols), ["subject_id", "visit_date"])


def _imaging_tables(
    p: CohortParams,
    sim: _Sim,
    sites: list[str],
    imaging_interval: int,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Imaging sessions (site effects applied), the same before site effects, and the
    site-effect table."""
    pv, cv = sim.pv, sim.cv
    scanned_p = pv["attended"] & (pv["grid"] % imaging_interval == 0)[None, :]
    scanned_c = cv["attended"]
    p_rows, p_cols = np.nonzero(scanned_p)
    c_rows, c_cols = np.nonzero(scanned_c)
    subj = np.concatenate([p_rows, sim.n_pat + c_rows])
    month = np.concatenate([pv["grid"][p_cols], cv["grid"][c_cols]])
    visit_day = np.concatenate([pv["day"][scanned_p], cv["day"][scanned_c]])
    sd = p.imaging_jitter_sd_days
    offset = np.clip(np.rint(rng.normal(0.0, sd, len(subj))), -3 * sd, 3 * sd)
    acq_day = np.maximum(visit_day + offset.astype(np.int64), 0)
    # a scan jittered past the patient's death is moved back to the day of death
    death_day = np.floor(
        sim.both(sim.pat["death_months"], fill=np.inf) * DAYS_PER_MONTH
    )
    acq_day = np.minimum(acq_day, death_day[subj]).astype(np.int64)
    years = acq_day / DAYS_PER_MONTH / 12.0
    pre = imaging_values(
        p,
        subject_index=subj,
        years=years,
        age_at_baseline=sim.age_at_baseline(),
        is_als=sim.is_als,
        rate_ratio=sim.both(sim.pat["rate"] / -p.slope_mean, fill=1.0),
        rng=rng,
    )
    site_effects = draw_site_effects(p, sites, rng)
    observed = apply_site_effects(p, pre, sim.site_index[subj], site_effects)
    head = {
        "subject_id": pd.array(sim.ids[subj], dtype="str"),
        "session": pd.array([f"m{m:02d}" for m in month], dtype="str"),
        "acquisition_date": _dates(sim.baseline_date[subj], acq_day),
    }
    tables = [
        _sorted(
            pd.DataFrame({**head, **{f: v[:, j] for j, f in enumerate(FEATURES)}}),
            ["subject_id", "acquisition_date"],
        )
        for v in (observed, pre)
    ]
    return tables[0], tables[1], site_effects


def _truth_table(sim: _Sim, niv: dict[str, np.ndarray]) -> pd.DataFrame:
    pat = sim.pat
    df = pd.DataFrame(
        {
            "subject_id": pd.array(sim.ids, dtype="str"),
            "group": pd.array(np.where(sim.is_als, "als", "control"), dtype="str"),
            "onset_site": sim.onset_site(),
            "months_onset_to_baseline": sim.both(pat["t0"]),
            "baseline_total": sim.both(pat["baseline"]),
            "delta_fs": sim.both(pat["delta_fs"]),
            **_class_column(sim),
            "progression_rate": sim.both(pat["rate"]),
            "slope_12m": sim.both(pat["slope_12m"]),
            "d50": sim.both(pat["d50"]),
            "dx": sim.both(pat["dx"]),
            "event_weibull_scale": sim.both(pat["event_scale"]),
            "event_months_since_onset": sim.both(pat["event_since_onset"]),
            "niv_weibull_scale": sim.both(niv["niv_scale"]),
            "niv_months_since_onset": sim.both(niv["niv_since_onset"]),
            "dropout_months": np.concatenate(
                [pat["dropout_months"], sim.ctl["dropout_months"]]
            ),
            "study_end_months": sim.both(sim.study_end()),
        }
    )
    return _sorted(df, ["subject_id"])


def _class_column(sim: _Sim) -> dict[str, Any]:
    """``{"progression_class": 1..K, <NA> for controls}``, or nothing without classes."""
    if "progression_class" not in sim.pat:
        return {}
    values = sim.both(sim.pat["progression_class"].astype(float))
    return {"progression_class": pd.array(values, dtype="Int64")}


def _first_baseline(months: int) -> np.datetime64:
    """Start of the baseline window: 2016-01-01, earlier when the follow-up (with the
    largest visit jitter and a year's margin) would pass :data:`_LAST_DATE`."""
    span = np.timedelta64(int(np.ceil((1.3 * months + 12) * DAYS_PER_MONTH)), "D")
    last = min(_LAST_BASELINE, _LAST_DATE - span)
    return last - np.timedelta64(_N_BASELINE_DAYS - 1, "D")


def _dates(base: np.ndarray, days: np.ndarray) -> pd.Series:
    return pd.Series((base + days.astype("timedelta64[D]")).astype("datetime64[ns]"))


def _sorted(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return df.sort_values(by, kind="stable").reset_index(drop=True)
