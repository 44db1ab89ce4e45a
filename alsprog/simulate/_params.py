"""Parameters of the synthetic-cohort simulator.

Owns: :class:`CohortParams` (every number the simulator uses, with its source in
``docs/domain.md``) and merging user overrides over it.
Leaves: calibrations derived from the parameters to
:mod:`alsprog.simulate._progression`, drawing anything to
:mod:`alsprog.simulate._cohort` and :mod:`alsprog.simulate._imaging`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alsprog._validation import check_interval

__all__ = [
    "DAYS_PER_MONTH",
    "IMAGING_FEATURES",
    "CohortParams",
    "lognormal_from_moments",
    "resolve_params",
]

#: Days per month, as in the data dictionary (``months`` column).
DAYS_PER_MONTH = 30.4375

#: Imaging features, in table order, as ``(column, measure)``; a measure holds the
#: ``<measure>_hc_mean`` / ``_hc_sd`` / ``_als_d`` / ``_change_per_year`` parameters.
IMAGING_FEATURES: tuple[tuple[str, str], ...] = (
    ("fa_cst_left", "fa_cst"),
    ("fa_cst_right", "fa_cst"),
    ("fa_cc_motor", "fa_cc_motor"),
    ("md_cst_left", "md_cst"),
    ("md_cst_right", "md_cst"),
    ("thickness_precentral_left", "thickness_precentral"),
    ("thickness_precentral_right", "thickness_precentral"),
    ("thickness_cuneus_left", "thickness_cuneus"),
)


@dataclass(frozen=True)
class CohortParams:
    """Every parameter of :func:`~alsprog.simulate.simulate_cohort`, with its source.

    Defaults come from ``docs/domain.md`` §7 ("Default simulator parameters") and the rows of
    §1-§3 and §6 it cites. Times are in months (1 month = 30.4375 days), ALSFRS-R in
    points (0-48), imaging in the units of the data dictionary. Instances are immutable;
    use :func:`dataclasses.replace` or ``simulate_cohort(..., name=value)`` to change a
    field.

    Parameters
    ----------
    slope_mean : float, default -0.9
        Population mean of the true 12-month ALSFRS-R slope (points/month, negative =
        decline), bulbar multiplier included. Trial-like default; -1.0 is PRO-ACT-like,
        -1.5 enriched [§7; §2 Atassi 2014, Thakore 2018, Paganoni 2020].
    slope_sd : float, default 0.6
        Between-patient SD of the true 12-month slope (points/month) [§7; §2
        "between-patient slope SD", approx. 0.5-0.8; Ibric 2025: -0.89 ± 0.65]. The
        lognormal rate behind both is solved for numerically, since a patient cannot
        fall below ``min_total_12m`` (see ``alsprog.simulate._progression``).
    slope_delta_fs_correlation : float, default 0.5
        Correlation (Gaussian copula) of the progression rate with ΔFS: the pre-slope
        predicts, imperfectly, the later slope [§2 Proudfoot 2016; §4 "strongest: past
        slope"] (assumption, r ≈ 0.5).
    residual_sd : float, default 2.0
        Within-patient residual SD of the observed total (points) before rounding and
        clipping to 0-48 [§7; §2 Kaufmann 2007, approx. 1.5-2.5].
    onset_to_baseline_mean, onset_to_baseline_sd, onset_to_baseline_min : float
        Months from symptom onset to the first visit: normal, mean 15, SD 6, truncated
        at >= 3 by redrawing [§7; §2 Andrews 2018: 15.6 ± 5.4].
    delta_fs_mean, delta_fs_sd : float, default 0.7, 0.5
        ΔFS (points/month lost from onset to the first visit): lognormal with this mean
        and SD [§7; §1 Paganoni 2020: 0.94 ± 0.49; van Eijk 2018: 0.56-0.68].
    onset_delta_fs_correlation : float, default -0.5
        Gaussian-copula correlation of onset-to-baseline time with ΔFS (fast progressors
        reach the first visit sooner). Tuned so that the implied baseline
        ``48 - ΔFS * T0`` is 38 ± 5 [§7 "Baseline ALSFRS-R 38 ± 5"; §2 Andrews 2018:
        38.0 ± 5.6] (derived: about 38.8 ± 5.4 after truncation).
    baseline_min, baseline_max : float, default 10, 47
        Window for the true baseline total; draws outside it are redrawn [§7
        "truncated ≤ 47"; the lower bound keeps trial-like entrants].
    min_total_12m : float, default 1.0
        Floor of the true total 12 months after baseline, so very fast patients still
        lie on a sigmoid through both points (derived).
    p_bulbar : float, default 0.28
        Probability of bulbar onset [§7; §2 Andrews 2018 24%, Paganoni 2020 27%,
        registries 25-30%].
    bulbar_slope_multiplier : float, default 1.15
        Progression-rate multiplier for bulbar onset [§7; §2 Gordon 2010] (approx.).
    age_at_onset_mean, age_at_onset_sd : float, default 58, 11
        Age at onset, normal, clipped to 18-90 [§7; §2 Andrews 2018: 57 ± 11].
    p_male : float, default 0.62
        Probability of male sex [§7; §2 Fontana 2021, trials 63-70% male].
    diagnostic_delay_median : float, default 11.0
        Median months from onset to diagnosis, lognormal [§7; §2 Paganoni 2014: 11.5;
        Falcão de Campos 2023: 11].
    diagnostic_delay_log_sd : float, default 0.5
        Log-scale SD of the diagnostic delay (assumption).
    diagnostic_delay_correlation : float, default 0.8
        Gaussian-copula correlation of the delay with onset-to-baseline time; the delay
        is then capped at that time (diagnosis precedes the first visit, about a quarter
        of patients are diagnosed at it) (assumption).
    event_median_months : float, default 30.0
        Population median time from onset to death, tracheostomy or permanent
        ventilation [§7; §2 Chiò 2009: median 20-48 months].
    event_weibull_shape : float, default 1.5
        Weibull shape of the event time from onset (> 1: hazard rising with disease
        duration) (assumption).
    event_rate_exponent : float, default 2.0
        Proportional-hazards exponent on the progression rate: a patient progressing at
        ``r`` points/month has hazard ``(r / |slope_mean|) ** exponent`` times a
        reference one [§2 ENCALS predictors, Westeneng 2018: ΔFS]. Chosen so that median
        survival from the first visit by ΔFS group (< 0.47, 0.47-1.11, > 1.11) is about
        37 / 19 / 10 months (Labra 2016: 29 / 19 / 8 months, §1) and about 12% survive
        10 years from onset (§2 Chiò 2009: 10-20%) (derived by simulation).
    dropout_per_year : float, default 0.15
        Population probability of dropping out within 12 months of the first visit
        (latent, before death) [§7; §2 "approx. 10-25%/yr"].
    dropout_rate_exponent : float, default 1.0
        Informative dropout: the dropout hazard scales as
        ``(r / |slope_mean|) ** exponent`` [§2 Proudfoot 2016] (assumption).
    missed_visit_prob : float, default 0.07
        Probability that a scheduled visit after the first is missed (assumption).
    visit_jitter_sd_days : float, default 5.0
        SD (days) of visit dates around the schedule, clipped at 30% of the visit
        interval (assumption).
    imaging_jitter_sd_days : float, default 3.0
        SD (days) of scan dates around their clinic visit, clipped at 3 SD
        (assumption).
    gastrostomy_prob : float, default 0.3
        Per-visit probability of a gastrostomy (item 5b scored from then on) once
        swallowing (item 3) has been <= 1 (assumption).
    fa_cst_hc_mean, fa_cst_hc_sd, fa_cst_als_d : float, default 0.55, 0.03, -0.95
        CST fractional anisotropy in healthy controls and the ALS baseline effect as
        Cohen's d [§7; §6 Foerster 2012/2013: AUC 0.75 ⇒ d ≈ 0.95; HC 0.5-0.65].
    fa_cc_motor_hc_mean, fa_cc_motor_hc_sd, fa_cc_motor_als_d : float
        Motor corpus callosum FA: 0.65 ± 0.035, d = -0.7 [§6 Li 2012, Zhang 2018]
        (approx.).
    md_cst_hc_mean, md_cst_hc_sd, md_cst_als_d : float
        CST mean diffusivity (10^-3 mm²/s): 0.75 ± 0.04, d = +0.8 [§6 Li 2012,
        Zhang 2018] (approx.).
    thickness_precentral_hc_mean, thickness_precentral_hc_sd : float, default 2.5, 0.12
        Precentral cortical thickness (mm) in controls [§7; §6 approx. 2.4-2.7].
    thickness_precentral_als_d : float, default -0.15 / 0.12
        ALS precentral thinning of 0.15 mm as Cohen's d [§7; §6 Walhout 2015,
        deficit approx. 0.1-0.2 mm].
    thickness_cuneus_hc_mean, thickness_cuneus_hc_sd : float, default 1.9, 0.12
        Cuneus thickness (mm), a negative-control region with no ALS effect (approx.).
    fa_cst_change_per_year, fa_cc_motor_change_per_year : float, default -0.010, -0.008
        Within-patient FA change per year in ALS for a patient progressing at
        ``|slope_mean|``; it scales with the patient's rate [§6 Steinbach 2020/2021:
        white-matter change linked to aggressiveness; "small vs between-subject SD"].
    md_cst_change_per_year : float, default 0.012
        Within-patient MD change per year (as above).
    thickness_precentral_change_per_year : float, default -0.005
        Near-flat precentral thinning per year [§6 Schuster 2014: precentral floor at
        first scan].
    fa_age_per_year, md_age_per_year, thickness_age_per_year : float
        Linear ageing effects per year around age 60 (-0.0015, +0.002, -0.004 mm)
        (approx.).
    fa_scan_sd, md_scan_sd, thickness_scan_sd : float
        Scan-rescan noise SD per session (0.005, 0.008, 0.02 mm) (approx.).
    imaging_lr_correlation : float, default 0.7
        Correlation of the left and right between-subject random effects (assumption).
    site_offset_sd : float, default 0.5
        SD of the additive site offset, in units of the feature's between-subject SD
        [§7; §6 Fortin 2017 "offsets 0.5-1 SD" (assumption)].
    site_scale_min, site_scale_max : float, default 0.8, 1.25
        Range of the uniform multiplicative site scale around the healthy mean [§7; §6].
    niv_median_months : float, default 36.0
        Population median time from onset to permanent non-invasive ventilation
        (NIV > 23 h/day, the third part of the ENCALS composite endpoint with death
        and tracheostomy [§2; Westeneng 2018]) were the patient never to die first.
        NIV is drawn as death/tracheostomy is: Weibull from onset, proportional hazards
        on the progression rate, given no permanent NIV at the first visit, independent
        of death given the rate. Permanent NIV is a late event, months after NIV is
        first started (median about 2 years from onset) and close to death or
        tracheostomy, so its median lies past ``event_median_months``; 36 months puts
        permanent NIV first in about 43 % of the population's composite events and the
        composite median at about 21 months from onset (death/tracheostomy alone: 30)
        (assumption, derived by simulation; 26 months: NIV first in about 55 %).
        ``math.inf`` switches NIV off (no patient ever starts it).
    niv_weibull_shape : float, default 1.5
        Weibull shape of the NIV time from onset (as ``event_weibull_shape``)
        (assumption).
    niv_rate_exponent : float, default 2.0
        Proportional-hazards exponent of NIV on the progression rate, as
        ``event_rate_exponent`` (assumption: the respiratory decline follows the
        total).
    niv_fvc_correlation : float, default 0.4
        Gaussian-copula correlation between a patient's baseline FVC and NIV draw: a
        low FVC brings NIV earlier without changing the NIV time's distribution
        (assumption; §2 Westeneng 2018: FVC predicts the composite).
    fvc_baseline_mean, fvc_baseline_sd : float, default 88, 14
        FVC (% of predicted) at the first visit: normal, clipped to 40-130 (as the
        PRO-ACT simulator of :func:`~alsprog.simulate.write_proact`; trial entrants
        typically need FVC >= 60-70 %) (approx.).
    fvc_per_point : float, default 2.5
        FVC % predicted lost per point of the true ALSFRS-R total lost since the first
        visit (approx.: FVC falls about 2-3 % of predicted a month when the total falls
        about 1 point a month).
    fvc_residual_sd : float, default 4.0
        Visit-to-visit noise SD of FVC (% predicted); values are clipped to 5-140
        (approx.).

    Examples
    --------
    >>> p = CohortParams(slope_mean=-1.5)
    >>> p.slope_mean, p.slope_sd
    (-1.5, 0.6)
    >>> CohortParams(p_bulbar=1.5)
    Traceback (most recent call last):
    ...
    ValueError: `p_bulbar` must be in [0, 1]; got 1.5.
    """

    slope_mean: float = -0.9
    slope_sd: float = 0.6
    slope_delta_fs_correlation: float = 0.5
    residual_sd: float = 2.0
    onset_to_baseline_mean: float = 15.0
    onset_to_baseline_sd: float = 6.0
    onset_to_baseline_min: float = 3.0
    delta_fs_mean: float = 0.7
    delta_fs_sd: float = 0.5
    onset_delta_fs_correlation: float = -0.5
    baseline_min: float = 10.0
    baseline_max: float = 47.0
    min_total_12m: float = 1.0
    p_bulbar: float = 0.28
    bulbar_slope_multiplier: float = 1.15
    age_at_onset_mean: float = 58.0
    age_at_onset_sd: float = 11.0
    p_male: float = 0.62
    diagnostic_delay_median: float = 11.0
    diagnostic_delay_log_sd: float = 0.5
    diagnostic_delay_correlation: float = 0.8
    event_median_months: float = 30.0
    event_weibull_shape: float = 1.5
    event_rate_exponent: float = 2.0
    dropout_per_year: float = 0.15
    dropout_rate_exponent: float = 1.0
    missed_visit_prob: float = 0.07
    visit_jitter_sd_days: float = 5.0
    imaging_jitter_sd_days: float = 3.0
    gastrostomy_prob: float = 0.3
    fa_cst_hc_mean: float = 0.55
    fa_cst_hc_sd: float = 0.03
    fa_cst_als_d: float = -0.95
    fa_cc_motor_hc_mean: float = 0.65
    fa_cc_motor_hc_sd: float = 0.035
    fa_cc_motor_als_d: float = -0.7
    md_cst_hc_mean: float = 0.75
    md_cst_hc_sd: float = 0.04
    md_cst_als_d: float = 0.8
    thickness_precentral_hc_mean: float = 2.5
    thickness_precentral_hc_sd: float = 0.12
    thickness_precentral_als_d: float = -0.15 / 0.12
    thickness_cuneus_hc_mean: float = 1.9
    thickness_cuneus_hc_sd: float = 0.12
    fa_cst_change_per_year: float = -0.010
    fa_cc_motor_change_per_year: float = -0.008
    md_cst_change_per_year: float = 0.012
    thickness_precentral_change_per_year: float = -0.005
    fa_age_per_year: float = -0.0015
    md_age_per_year: float = 0.002
    thickness_age_per_year: float = -0.004
    fa_scan_sd: float = 0.005
    md_scan_sd: float = 0.008
    thickness_scan_sd: float = 0.02
    imaging_lr_correlation: float = 0.7
    site_offset_sd: float = 0.5
    site_scale_min: float = 0.8
    site_scale_max: float = 1.25
    niv_median_months: float = 36.0
    niv_weibull_shape: float = 1.5
    niv_rate_exponent: float = 2.0
    niv_fvc_correlation: float = 0.4
    fvc_baseline_mean: float = 88.0
    fvc_baseline_sd: float = 14.0
    fvc_per_point: float = 2.5
    fvc_residual_sd: float = 4.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name in _MAY_BE_INF and getattr(self, f.name) == math.inf:
                object.__setattr__(self, f.name, math.inf)  # switched off
                continue
            low, high, low_closed, high_closed = _RANGES.get(
                f.name, (None, None, True, True)
            )
            value = check_interval(
                getattr(self, f.name),
                f.name,
                low=low,
                high=high,
                low_closed=low_closed,
                high_closed=high_closed,
            )
            object.__setattr__(self, f.name, float(value))
        _check_order(self, "baseline_min", "baseline_max")
        _check_order(self, "min_total_12m", "baseline_min")
        _check_order(self, "site_scale_min", "site_scale_max")
        if (
            self.onset_to_baseline_min
            >= self.onset_to_baseline_mean + 3 * self.onset_to_baseline_sd
        ):
            raise ValueError(
                "`onset_to_baseline_min` must be below onset_to_baseline_mean + 3 SD "
                f"({self.onset_to_baseline_mean + 3 * self.onset_to_baseline_sd:g}); got "
                f"{self.onset_to_baseline_min!r}."
            )
        for measure in {m for _, m in IMAGING_FEATURES}:
            sd = getattr(self, f"{measure}_hc_sd")
            noise = getattr(self, f"{measure.split('_')[0]}_scan_sd")
            age = (
                getattr(self, f"{measure.split('_')[0]}_age_per_year")
                * self.age_at_onset_sd
            )
            if noise**2 + age**2 >= sd**2:
                raise ValueError(
                    f"`{measure}_hc_sd` ({sd:g}) must exceed the scan noise and age "
                    f"spread it includes (sqrt(scan_sd**2 + (age_per_year * "
                    f"age_at_onset_sd)**2) = {math.hypot(noise, age):g})."
                )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all parameters, in declaration order.

        Examples
        --------
        >>> CohortParams.field_names()[:2]
        ('slope_mean', 'slope_sd')
        """
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict[str, float]:
        """Return the parameters as a plain ``{name: value}`` dict.

        Examples
        --------
        >>> CohortParams().to_dict()["p_male"]
        0.62
        """
        return dataclasses.asdict(self)


# name -> (low, high, low_closed, high_closed); unlisted fields are any finite number.
_PROB = (0.0, 1.0, True, True)
_POS = (0.0, None, False, True)
_NONNEG = (0.0, None, True, True)
_CORR = (-1.0, 1.0, False, False)
_RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "slope_mean": (None, 0.0, True, False),
    "slope_sd": _POS,
    "slope_delta_fs_correlation": _CORR,
    "residual_sd": _NONNEG,
    "onset_to_baseline_mean": _POS,
    "onset_to_baseline_sd": _POS,
    "onset_to_baseline_min": _NONNEG,
    "delta_fs_mean": _POS,
    "delta_fs_sd": _POS,
    "onset_delta_fs_correlation": _CORR,
    "baseline_min": (0.0, 48.0, True, False),
    "baseline_max": (0.0, 48.0, False, False),
    "min_total_12m": (0.0, 48.0, False, False),
    "p_bulbar": _PROB,
    "bulbar_slope_multiplier": _POS,
    "age_at_onset_mean": (18.0, 90.0, True, True),
    "age_at_onset_sd": _NONNEG,
    "p_male": _PROB,
    "diagnostic_delay_median": _POS,
    "diagnostic_delay_log_sd": _NONNEG,
    "diagnostic_delay_correlation": _CORR,
    "event_median_months": _POS,
    "event_weibull_shape": _POS,
    "event_rate_exponent": _NONNEG,
    "dropout_per_year": (0.0, 1.0, True, False),
    "dropout_rate_exponent": _NONNEG,
    "missed_visit_prob": (0.0, 1.0, True, False),
    "visit_jitter_sd_days": _NONNEG,
    "imaging_jitter_sd_days": _NONNEG,
    "gastrostomy_prob": _PROB,
    "imaging_lr_correlation": (0.0, 1.0, True, True),
    "site_offset_sd": _NONNEG,
    "site_scale_min": _POS,
    "site_scale_max": _POS,
    "niv_median_months": _POS,
    "niv_weibull_shape": _POS,
    "niv_rate_exponent": _NONNEG,
    "niv_fvc_correlation": _CORR,
    "fvc_baseline_sd": _NONNEG,
    "fvc_per_point": _NONNEG,
    "fvc_residual_sd": _NONNEG,
}
#: Fields that may also be ``math.inf`` (the feature switched off).
_MAY_BE_INF = frozenset({"niv_median_months"})
for _measure in {m for _, m in IMAGING_FEATURES}:
    _RANGES[f"{_measure}_hc_mean"] = _POS
    _RANGES[f"{_measure}_hc_sd"] = _POS
for _kind in ("fa", "md", "thickness"):
    _RANGES[f"{_kind}_scan_sd"] = _NONNEG


def _check_order(p: CohortParams, low: str, high: str) -> None:
    if getattr(p, low) >= getattr(p, high):
        raise ValueError(
            f"`{low}` must be below `{high}`; got {getattr(p, low)!r} >= {getattr(p, high)!r}."
        )


def resolve_params(
    params: CohortParams | Mapping[str, Any] | None, overrides: Mapping[str, Any]
) -> CohortParams:
    """Merge ``overrides`` (and a dict ``params``) over the defaults.

    Raises ``TypeError`` naming the unknown keys and listing the valid ones.

    Examples
    --------
    >>> resolve_params(None, {"p_male": 0.5}).p_male
    0.5
    >>> resolve_params(None, {"p_mle": 0.5})
    Traceback (most recent call last):
    ...
    TypeError: unknown simulator parameter 'p_mle'; valid names are: slope_mean, ...
    """
    if params is None:
        base = CohortParams()
    elif isinstance(params, CohortParams):
        base = params
    elif isinstance(params, Mapping):
        base = resolve_params(None, params)
    else:
        raise TypeError(
            f"`params` must be a CohortParams, a dict or None; got {type(params).__name__}."
        )
    valid = CohortParams.field_names()
    unknown = [k for k in overrides if k not in valid]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise TypeError(
            f"unknown simulator parameter{plural} {names}; valid names are: {', '.join(valid)}."
        )
    return dataclasses.replace(base, **dict(overrides)) if overrides else base


# --------------------------------------------------------------------------- calibrations


def lognormal_from_moments(mean: float, sd: float) -> tuple[float, float]:
    """Return ``(mu, sigma)`` of the lognormal with this mean and SD.

    Examples
    --------
    >>> import math
    >>> mu, sigma = lognormal_from_moments(0.7, 0.5)
    >>> round(math.exp(mu + sigma**2 / 2), 6)
    0.7
    """
    s2 = math.log1p((sd / mean) ** 2)
    return math.log(mean) - s2 / 2, math.sqrt(s2)
