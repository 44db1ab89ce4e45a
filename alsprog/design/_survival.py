"""Events and patients for a time-to-event endpoint, as R's rpact plans them.

Owns: :func:`sample_size_survival` and its frozen :class:`SurvivalSampleSize` result:
Schoenfeld's and Freedman's number of events for a hazard ratio, the probability of
an event by the (final or interim) analysis under uniform accrual, exponential
survival and exponential dropout, the patients that follow, and with a
group-sequential design the events, analysis times and expected study duration per
look, all as ``rpact::getSampleSizeSurvival`` computes them.
Leaves: the boundaries and inflation factor to
:mod:`alsprog.design._group_sequential`; log-rank and Cox analysis of simulated
trials to :mod:`alsprog.design._survival_batch`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from alsprog._validation import check_choice, check_int, check_interval
from alsprog.design._group_sequential import GroupSequentialDesign
from alsprog.design._gs_numerics import one_minus_qnorm, zeroin
from alsprog.errors import ModelSpecificationError

__all__ = ["SurvivalSampleSize", "sample_size_survival"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SurvivalSampleSize:
    """Events and patients for a two-arm survival trial (immutable).

    Attributes
    ----------
    events : float
        Events needed at the final analysis, exact (rpact ``maxNumberOfEvents``);
        with a group-sequential design the fixed-design events times its inflation
        factor.
    events_fixed : float
        Events of the fixed design (rpact ``eventsFixed``).
    patients : float
        Patients to randomise, exact (rpact ``maxNumberOfSubjects``).
    patients_treatment, patients_control : float
        Per arm (rpact ``maxNumberOfSubjects1`` / ``2``).
    event_probability : float
        Probability that a randomised patient has had an event by the final
        analysis, both arms pooled with the allocation ratio (rpact ``chi``).
    events_per_look : ndarray, shape (k,)
        Cumulative events at each look (rpact ``cumulativeEventsPerStage``).
    analysis_times : ndarray, shape (k,)
        Months from the first randomisation to each look (rpact ``analysisTime``).
    patients_per_look : ndarray, shape (k,)
        Patients randomised by each look (rpact ``numberOfSubjects``).
    expected_study_duration : float
        Expected months to the analysis at which the trial stops, under the
        alternative (rpact ``studyDuration``); the final analysis time when k = 1.
    expected_events_h1 : float
        Expected events at stopping under the alternative (``expectedEventsH1``).
    expected_patients_h1 : float
        Expected patients at stopping under the alternative.
    hazard_ratio, alpha, power, sided, allocation_ratio, method : as given
    inputs : dict
        The remaining inputs (accrual, follow-up, control hazard, dropout hazard).

    Examples
    --------
    >>> s = sample_size_survival(0.7, accrual_months=12, follow_up_months=12,
    ...                          control_event_rate=0.3, allocation_ratio=2.0)
    >>> s.events_ceil, s.patients_treatment_ceil, s.patients_control_ceil
    (278, 538, 269)
    """

    events: float
    events_fixed: float
    patients: float
    patients_treatment: float
    patients_control: float
    event_probability: float
    events_per_look: FloatArray
    analysis_times: FloatArray
    patients_per_look: FloatArray
    expected_study_duration: float
    expected_events_h1: float
    expected_patients_h1: float
    hazard_ratio: float
    alpha: float
    power: float
    sided: int
    allocation_ratio: float
    method: str
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def events_ceil(self) -> int:
        """Events rounded up."""
        return _ceil(self.events)

    @property
    def patients_ceil(self) -> int:
        """Patients rounded up."""
        return _ceil(self.patients)

    @property
    def patients_treatment_ceil(self) -> int:
        """Treatment-arm patients rounded up."""
        return _ceil(self.patients_treatment)

    @property
    def patients_control_ceil(self) -> int:
        """Control-arm patients rounded up."""
        return _ceil(self.patients_control)

    def to_dict(self) -> dict[str, Any]:
        """All fields and rounded sizes as plain Python values."""
        d = {
            key: (v.tolist() if isinstance(v, np.ndarray) else v)
            for key, v in asdict(self).items()
        }
        d.update(
            events_ceil=self.events_ceil,
            patients_ceil=self.patients_ceil,
            patients_treatment_ceil=self.patients_treatment_ceil,
            patients_control_ceil=self.patients_control_ceil,
        )
        return d

    def __repr__(self) -> str:
        return (
            f"SurvivalSampleSize(events={self.events:.4f} (ceil {self.events_ceil}), "
            f"patients={self.patients:.4f} (ceil {self.patients_ceil}), "
            f"hazard_ratio={self.hazard_ratio:g}, method={self.method!r}, "
            f"alpha={self.alpha:g}, power={self.power:g}, sided={self.sided}, "
            f"looks={self.events_per_look.size})"
        )


def _ceil(x: float) -> int:
    return int(math.ceil(x - 1e-9))


def _err(msg: str) -> ModelSpecificationError:
    return ModelSpecificationError(msg)


# ---------------------------------------------------------------------- numerics
def events_fixed(
    hazard_ratio: float,
    *,
    alpha: float,
    beta: float,
    sided: int,
    allocation_ratio: float,
    method: str,
) -> float:
    """Events of the fixed design (rpact ``.getEventsFixed``, twoSidedPower FALSE)."""
    z2 = (one_minus_qnorm(alpha / sided) + one_minus_qnorm(beta)) ** 2
    r = allocation_ratio
    if method == "schoenfeld":
        return z2 / math.log(hazard_ratio) ** 2 * (1 + r) ** 2 / r
    return z2 * (1 + hazard_ratio * r) ** 2 / (1 - hazard_ratio) ** 2 / r


def event_probability(time: float, accrual: float, lam: float, phi: float) -> float:
    """P(event observed by ``time``) for one arm, uniform accrual over ``accrual``.

    Exponential event hazard ``lam`` competing with exponential dropout ``phi``:
    a patient randomised at ``u`` has had an event by ``time`` with probability
    ``lam / (lam + phi) * (1 - exp(-(lam + phi) * (time - u)))``; averaged over
    ``u`` uniform on ``[0, min(time, accrual)]`` with density ``1 / accrual`` (rpact
    integrates the same function numerically).
    """
    h = lam + phi
    frac = lam / h
    if time <= accrual:
        return frac / accrual * (time + math.expm1(-h * time) / h)
    lo = time - accrual
    # integral of 1 - exp(-h x) over [lo, time]
    integral = accrual - (math.exp(-h * lo) * -math.expm1(-h * accrual)) / h
    return frac * integral / accrual


def _pooled(
    time: float, accrual: float, lam1: float, lam2: float, phi: float, r: float
) -> float:
    p1 = event_probability(time, accrual, lam1, phi)
    p2 = event_probability(time, accrual, lam2, phi)
    return (r * p1 + p2) / (1 + r)


# ---------------------------------------------------------------------- public
def sample_size_survival(
    hazard_ratio: float,
    *,
    accrual_months: float,
    follow_up_months: float,
    control_median_months: float | None = None,
    control_event_rate: float | None = None,
    event_time_months: float = 12.0,
    alpha: float | None = None,
    power: float | None = None,
    sided: int | None = None,
    allocation_ratio: float = 1.0,
    dropout_rate: float = 0.0,
    dropout_time_months: float = 12.0,
    method: Literal["schoenfeld", "freedman"] = "schoenfeld",
    design: GroupSequentialDesign | None = None,
) -> SurvivalSampleSize:
    """Events and patients to detect a hazard ratio with the log-rank test.

    Equal to R's ``rpact::getSampleSizeSurvival`` with ``accrualTime =
    c(0, accrual_months)``, ``followUpTime``, ``lambda2`` (from the median) or
    ``pi2``/``eventTime``, ``dropoutRate1 = dropoutRate2 = dropout_rate``,
    ``dropoutTime``, ``allocationRatioPlanned`` and ``typeOfComputation``
    (Schoenfeld or Freedman).  Survival and dropout are exponential, accrual is
    uniform, the treatment hazard is ``hazard_ratio`` times the control hazard.

    Parameters
    ----------
    hazard_ratio : float
        Treatment : control hazard ratio under the alternative, in (0, 1) or above 1
        (not 1).
    accrual_months : float
        Length of uniform accrual (months).
    follow_up_months : float
        Follow-up after the last patient is randomised (months); the final
        analysis is at ``accrual_months + follow_up_months``.
    control_median_months : float, optional
        Median survival in the control arm (months).  Give this or
        ``control_event_rate``.
    control_event_rate : float, optional
        Probability of an event by ``event_time_months`` in the control arm.
    event_time_months : float
        Time at which ``control_event_rate`` is given (rpact ``eventTime``, 12).
    alpha : float, optional
        One-sided type I error (with ``sided=2`` the total of both tails); 0.025 by
        default, or the ``design``'s.
    power : float, optional
        Power, 0.8 by default or ``1 - design.beta``.
    sided : {1, 2}, optional
        1 by default, or the ``design``'s.
    allocation_ratio : float
        Treatment : control allocation (rpact ``allocationRatioPlanned``).
    dropout_rate : float
        Probability of dropping out by ``dropout_time_months`` (both arms).
    dropout_time_months : float
        Time at which ``dropout_rate`` is given (rpact ``dropoutTime``, 12).
    method : {"schoenfeld", "freedman"}
        Formula for the number of events.
    design : GroupSequentialDesign, optional
        Interim looks (:func:`~alsprog.design.group_sequential`): the events are
        inflated by its inflation factor and spread over the looks by its
        information rates.

    Returns
    -------
    SurvivalSampleSize

    Raises
    ------
    ModelSpecificationError
        When an argument is out of range, when both or neither of
        ``control_median_months`` and ``control_event_rate`` are given, or when
        ``alpha``/``power``/``sided`` disagree with ``design``.

    Examples
    --------
    >>> s = sample_size_survival(0.7, accrual_months=12, follow_up_months=12,
    ...                          control_median_months=18)
    >>> round(s.events, 4), round(s.patients, 4)
    (246.7871, 562.6187)
    """
    e = ModelSpecificationError
    hr = check_interval(hazard_ratio, "hazard_ratio", low=0, low_closed=False, error=e)
    if hr == 1:
        raise _err("`hazard_ratio` must not be 1 (no effect cannot be detected).")
    alpha, beta, sided = _resolve_errors(alpha, power, sided, design)
    r = check_interval(
        allocation_ratio, "allocation_ratio", low=0, low_closed=False, error=e
    )
    accrual = check_interval(
        accrual_months, "accrual_months", low=0, low_closed=False, error=e
    )
    follow = check_interval(follow_up_months, "follow_up_months", low=0, error=e)
    check_choice(method, "method", ("schoenfeld", "freedman"), error=e)
    lam2 = _control_hazard(control_median_months, control_event_rate, event_time_months)
    drop = check_interval(
        dropout_rate, "dropout_rate", low=0, high=1, high_closed=False, error=e
    )
    drop_t = check_interval(
        dropout_time_months, "dropout_time_months", low=0, low_closed=False, error=e
    )
    phi = -math.log1p(-drop) / drop_t
    lam1 = lam2 * hr

    ev_fixed = events_fixed(
        hr, alpha=alpha, beta=beta, sided=sided, allocation_ratio=r, method=method
    )
    total_time = accrual + follow
    chi = _pooled(total_time, accrual, lam1, lam2, phi, r)

    k = 1 if design is None else design.k
    inflation = 1.0 if design is None else design.inflation_factor
    info = np.ones(1) if design is None else design.information_rates
    events_per_look = ev_fixed * info * inflation
    n_max = float(events_per_look[-1] / chi)
    times = np.full(k, float(total_time))
    for j in range(k - 1):
        target = float(events_per_look[j]) / n_max

        def f(t: float, target: float = target) -> float:
            return target - _pooled(t, accrual, lam1, lam2, phi, r)

        times[j] = _root(f, 0.0, total_time, 1e-6)
    patients_per_look = n_max * np.minimum(times / accrual, 1.0)
    if design is None:
        duration, exp_events, exp_patients = total_time, ev_fixed, n_max
    else:
        stop = design.rejection_probabilities + np.append(
            design.futility_probabilities, 0.0
        )
        stop[-1] = 1.0 - np.sum(stop[:-1])
        duration = float(times @ stop)
        exp_patients = float(patients_per_look @ stop)
        exp_events = design.average_sample_number[0] * ev_fixed
    return SurvivalSampleSize(
        events=float(events_per_look[-1]),
        events_fixed=ev_fixed,
        patients=n_max,
        patients_treatment=n_max * r / (1 + r),
        patients_control=n_max / (1 + r),
        event_probability=chi,
        events_per_look=events_per_look,
        analysis_times=times,
        patients_per_look=patients_per_look,
        expected_study_duration=float(duration),
        expected_events_h1=float(exp_events),
        expected_patients_h1=float(exp_patients),
        hazard_ratio=hr,
        alpha=alpha,
        power=1 - beta,
        sided=sided,
        allocation_ratio=r,
        method=method,
        inputs=dict(
            accrual_months=accrual,
            follow_up_months=follow,
            control_hazard=lam2,
            treatment_hazard=lam1,
            dropout_hazard=phi,
            control_median_months=control_median_months,
            control_event_rate=control_event_rate,
            event_time_months=event_time_months,
            dropout_rate=drop,
            dropout_time_months=drop_t,
            inflation_factor=inflation,
        ),
    )


def _root(f: Any, lower: float, upper: float, tol: float) -> float:
    """rpact's ``.getOneDimensionalRoot``: an end that is already a root, else uniroot."""
    fl, fu = f(lower), f(upper)
    if abs(fl) <= tol:
        return lower
    if abs(fu) <= tol:
        return upper
    return zeroin(f, lower, upper, tol, max_iter=1000, fallback=False)


def _resolve_errors(
    alpha: float | None,
    power: float | None,
    sided: int | None,
    design: GroupSequentialDesign | None,
) -> tuple[float, float, int]:
    e = ModelSpecificationError
    if design is not None:
        if not isinstance(design, GroupSequentialDesign):
            raise _err(
                "`design` must be a GroupSequentialDesign from group_sequential(); "
                f"got {type(design).__name__}."
            )
        for name, given, own in (
            ("alpha", alpha, design.alpha),
            ("power", power, 1 - design.beta),
            ("sided", sided, design.sided),
        ):
            if given is not None and not math.isclose(given, own, rel_tol=1e-12):
                raise _err(
                    f"`{name}`={given!r} disagrees with the design's {name} ({own!r}); "
                    f"leave `{name}` out to use the design's."
                )
        return design.alpha, design.beta, design.sided
    alpha = 0.025 if alpha is None else alpha
    power = 0.8 if power is None else power
    sided = 1 if sided is None else sided
    sided = check_int(sided, "sided", low=1, high=2, error=e)
    alpha = check_interval(
        alpha, "alpha", low=0, high=1, low_closed=False, high_closed=False, error=e
    )
    power = check_interval(
        power, "power", low=0, high=1, low_closed=False, high_closed=False, error=e
    )
    if alpha / sided >= 0.5 or power <= 0.5:
        raise _err(
            "`power` must exceed 0.5 and `alpha / sided` be below 0.5; got "
            f"power={power!r}, alpha={alpha!r}, sided={sided}."
        )
    return alpha, 1 - power, sided


def _control_hazard(
    median: float | None, rate: float | None, event_time: float
) -> float:
    e = ModelSpecificationError
    if (median is None) == (rate is None):
        raise _err(
            "give exactly one of `control_median_months` (median survival in the "
            "control arm) and `control_event_rate` (probability of an event by "
            f"`event_time_months`); got control_median_months={median!r}, "
            f"control_event_rate={rate!r}."
        )
    if median is not None:
        median = check_interval(
            median, "control_median_months", low=0, low_closed=False, error=e
        )
        return math.log(2) / median
    rate = check_interval(
        rate,
        "control_event_rate",
        low=0,
        high=1,
        low_closed=False,
        high_closed=False,
        error=e,
    )
    event_time = check_interval(
        event_time, "event_time_months", low=0, low_closed=False, error=e
    )
    return -math.log1p(-rate) / event_time
