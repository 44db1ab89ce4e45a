"""A two-arm trial design: schedule, variance components, effect, attrition.

Owns: :class:`TrialDesign` (an immutable specification with
:meth:`TrialDesign.from_model` to take variance components from a fitted
:class:`~alsprog.models.LinearMixedModel`) and the analytic power curve.
Leaves: the formulas to :mod:`alsprog.design._analytic`, power by simulation to
:mod:`alsprog.design._simulate`, figures to :mod:`alsprog.plots`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from alsprog._validation import check_interval, check_level
from alsprog.design._analytic import power_slope, sample_size_slope, sample_size_table
from alsprog.design._sample_size import (
    Alternative,
    Method,
    SampleSize,
    _check_retention,
    _check_times,
    _check_variances,
)
from alsprog.errors import ModelSpecificationError

__all__ = ["TrialDesign"]


@dataclass(frozen=True)
class TrialDesign:
    """A two-arm trial that aims to slow the mean ALSFRS-R slope.

    The control arm follows a linear mixed model with a random intercept and slope
    per patient; the treatment arm's mean slope is ``mean_slope * (1 - slowing)``.

    Parameters
    ----------
    visit_months : sequence of float, default (0, 3, 6, 9, 12)
        Scheduled visits (months from randomisation), strictly increasing.
    mean_slope : float, default -0.9
        Control-arm mean slope (points/month; docs/domain.md §7).
    slowing : float, default 0.25
        Fractional slowing of the mean slope under treatment (docs/domain.md §5: designs
        target 20-35 %).
    sig2_int, sig2_slope, cov_int_slope, sig2_e : float
        Random-intercept variance, random-slope variance, their covariance and the
        residual variance (defaults: intercept SD 5, slope SD 0.6, residual SD 2;
        docs/domain.md §7).
    mean_intercept : float, default 38.0
        Mean outcome at randomisation (used by simulations), within the outcome's
        range in the data dictionary (0-48 for the ALSFRS-R total).
    alpha : float, default 0.05
        Two-sided type I error.
    power : float, default 0.8
        Target power for :meth:`sample_size`.
    allocation_ratio : float, default 1.0
        Treatment : control.
    retention : sequence of float, optional
        Fraction of randomised patients still observed at each visit (1 at baseline,
        non-increasing; longpower's ``ra``); ``None`` = no attrition.  Dropout is
        monotone (a patient missing at a visit is missing afterwards) and
        non-informative.  The analytic formulas and
        :func:`~alsprog.design.simulate_power` both use it, so their powers agree.
    outcome : str, default "alsfrs_r_total"
        The outcome the slopes are in (``fvc_percent_predicted``: % of predicted
        per month); its dictionary range bounds ``mean_intercept``.

    Examples
    --------
    >>> d = TrialDesign(visit_months=[0, 3, 6, 9, 12], slowing=0.25)
    >>> d.delta
    0.225
    >>> d.sample_size().n_per_arm_ceil
    126
    >>> TrialDesign(retention=[1, 0.5, 0.3, 0.2, 0.1]).sample_size().n_per_arm_ceil
    383
    """

    visit_months: tuple[float, ...] = (0.0, 3.0, 6.0, 9.0, 12.0)
    mean_slope: float = -0.9
    slowing: float = 0.25
    sig2_int: float = 25.0
    sig2_slope: float = 0.36
    cov_int_slope: float = 0.0
    sig2_e: float = 4.0
    mean_intercept: float = 38.0
    alpha: float = 0.05
    power: float = 0.8
    allocation_ratio: float = 1.0
    retention: tuple[float, ...] | None = None
    outcome: str = "alsfrs_r_total"

    def __post_init__(self) -> None:
        e = ModelSpecificationError
        t = _check_times(self.visit_months)
        object.__setattr__(self, "visit_months", tuple(float(x) for x in t))
        _check_variances(
            self.sig2_int, self.sig2_slope, self.cov_int_slope, self.sig2_e
        )
        check_interval(self.mean_slope, "mean_slope", error=e)
        if self.mean_slope == 0:
            raise e("`mean_slope` must not be 0: there is no decline to slow.")
        check_interval(self.slowing, "slowing", error=e)
        from alsprog.models._contract import outcome_bounds

        if not isinstance(self.outcome, str):
            raise e(f"`outcome` must be a column name (str); got {self.outcome!r}.")
        lo, hi = outcome_bounds(self.outcome)
        check_interval(self.mean_intercept, "mean_intercept", low=lo, high=hi, error=e)
        check_level(self.alpha, "alpha", error=e)
        check_level(self.power, "power", error=e)
        check_interval(
            self.allocation_ratio, "allocation_ratio", low=0, low_closed=False, error=e
        )
        if self.retention is not None:
            r = _check_retention(self.retention, t.size, "retention")
            object.__setattr__(self, "retention", tuple(float(x) for x in r))

    # ------------------------------------------------------------------ derived
    @property
    def delta(self) -> float:
        """Difference in mean slopes, treatment minus control (points/month, > 0)."""
        return abs(self.mean_slope) * self.slowing

    @property
    def treatment_slope(self) -> float:
        """Mean slope under treatment."""
        return self.mean_slope * (1.0 - self.slowing)

    def _kwargs(self) -> dict[str, Any]:
        return dict(
            times=self.visit_months,
            sig2_int=self.sig2_int,
            sig2_slope=self.sig2_slope,
            cov_int_slope=self.cov_int_slope,
            sig2_e=self.sig2_e,
            alpha=self.alpha,
            allocation_ratio=self.allocation_ratio,
            retention=self.retention,
        )

    def sample_size(self, method: Method = "edland") -> SampleSize:
        """Patients per arm for :attr:`power` (see :func:`sample_size_slope`)."""
        if self.delta == 0:
            raise ModelSpecificationError("`slowing` is 0: no effect to detect.")
        return sample_size_slope(
            self.delta, power=self.power, method=method, **self._kwargs()
        )

    def sample_size_table(
        self,
        slowings: Sequence[float] | None = None,
        *,
        methods: Sequence[Method] = ("edland",),
        alternative: Alternative = "two-sided",
    ) -> pd.DataFrame:
        """Patients per arm for several slowings and methods, one row each.

        Parameters
        ----------
        slowings : sequence of float, optional
            Fractional slowings of :attr:`mean_slope` (default: this design's).
        methods : sequence of {"edland", "diggle", "liu_liang"}, default ("edland",)
        alternative : {"two-sided", "one-sided"}, default "two-sided"

        Returns
        -------
        pandas.DataFrame
            As :func:`~alsprog.design.sample_size_table` with this design's visits,
            variance components, alpha, power, allocation and retention.

        Examples
        --------
        >>> t = TrialDesign().sample_size_table([0.25, 0.5])
        >>> t["n_per_arm_ceil"].tolist()
        [126, 32]
        """
        return sample_size_table(
            [self.slowing] if slowings is None else list(slowings),
            mean_slope=self.mean_slope,
            methods=methods,
            power=self.power,
            alternative=alternative,
            **self._kwargs(),
        )

    def power_at(self, n_per_arm: float, method: Method = "edland") -> SampleSize:
        """Analytic power with ``n_per_arm`` treated patients."""
        if self.delta == 0:
            raise ModelSpecificationError("`slowing` is 0: no effect to detect.")
        return power_slope(n_per_arm, self.delta, method=method, **self._kwargs())

    def power_curve(
        self,
        n_per_arm: Sequence[float] | None = None,
        *,
        slowing: Sequence[float] | None = None,
        method: Method = "edland",
    ) -> pd.DataFrame:
        """Analytic power over a grid of sizes and/or slowings.

        Parameters
        ----------
        n_per_arm : sequence of float, optional
            Treated patients per design (default: 20 values up to 1.5 × the size for
            :attr:`power`).
        slowing : sequence of float, optional
            Slowings to combine with every size (default: this design's).
        method : {"edland", "diggle", "liu_liang"}

        Returns
        -------
        pandas.DataFrame
            ``n_per_arm, slowing, delta, power`` (one row per combination).

        Examples
        --------
        >>> TrialDesign().power_curve([50, 126]).round(3)["power"].tolist()
        [0.424, 0.802]
        """
        slowings = [self.slowing] if slowing is None else list(slowing)
        if n_per_arm is None:
            top = self.sample_size(method).n_per_arm * 1.5
            n_per_arm = np.unique(np.ceil(np.linspace(max(top / 20, 2), top, 20)))
        rows = []
        for s in slowings:
            d = replace(self, slowing=float(s))
            for n in n_per_arm:
                rows.append(
                    {
                        "n_per_arm": float(n),
                        "slowing": float(s),
                        "delta": d.delta,
                        "power": d.power_at(float(n), method).power,
                    }
                )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """The design as plain values."""
        return asdict(self)

    # ----------------------------------------------------------- from a model
    @classmethod
    def from_model(
        cls,
        model: Any,
        visit_months: Sequence[float] = (0, 3, 6, 9, 12),
        slowing: float = 0.25,
        *,
        time: str | None = None,
        **kwargs: Any,
    ) -> TrialDesign:
        """Take variance components and the mean slope from a fitted mixed model.

        Parameters
        ----------
        model : LinearMixedModel
            Fitted on historical (placebo or natural-history) data with a random
            intercept and a random slope on ``time``.
        visit_months : sequence of float
            The new trial's visits.
        slowing : float, default 0.25
            Fractional slowing to detect.
        time : str, optional
            Time variable; default: the model's ``time`` parameter (``"months"``).
        **kwargs
            Other :class:`TrialDesign` fields (``alpha``, ``power``, ``retention``,
            ...).

        Returns
        -------
        TrialDesign

        Raises
        ------
        ModelSpecificationError
            The model is not fitted, has no fixed effect for ``time``, or no random
            intercept.

        Examples
        --------
        >>> from alsprog.models import LinearMixedModel
        >>> from alsprog.simulate import simulate_cohort
        >>> from alsprog.data import assemble
        >>> c = simulate_cohort(150, months=12, seed=3)
        >>> long = assemble(c.visits, c.subjects)
        >>> m = LinearMixedModel("alsfrs_r_total ~ months + (months | subject_id)").fit(long)
        >>> d = TrialDesign.from_model(m, [0, 3, 6, 9, 12], slowing=0.3)
        >>> round(d.mean_slope, 3), round(d.sig2_slope, 3), round(d.sig2_e, 2)
        (-0.645, 0.113, 4.33)
        >>> d.sample_size().n_per_arm_ceil
        68
        """
        if not hasattr(model, "fe_params_") or not hasattr(model, "cov_re_"):
            raise ModelSpecificationError(
                "`model` must be a fitted LinearMixedModel (call fit first); got "
                f"{type(model).__name__}."
            )
        t = time or getattr(model, "time", None) or "months"
        fe = model.fe_params_
        if t not in fe.index:
            raise ModelSpecificationError(
                f"the model has no fixed effect {t!r} (terms: {', '.join(fe.index)}); "
                "pass time=... naming the slope term."
            )
        cov, extra = _subject_covariance(model, t)
        names = list(cov.index)
        icpt = next((n for n in names if n in ("Intercept", "(Intercept)")), None)
        if icpt is None:
            raise ModelSpecificationError(
                "the model has no random intercept; fit (1 + time | subject)."
            )
        sig2_int = float(cov.loc[icpt, icpt]) + extra
        if t in names:
            sig2_slope = float(cov.loc[t, t])
            cov_is = float(cov.loc[icpt, t])
        else:
            sig2_slope, cov_is = 0.0, 0.0
        icpt_fixed = next(
            (n for n in fe.index if n in ("Intercept", "(Intercept)")), None
        )
        mean_intercept = float(fe[icpt_fixed]) if icpt_fixed is not None else 38.0
        cols = getattr(model, "columns_", None)
        outcome = str(getattr(cols, "outcome", None) or "alsfrs_r_total")
        lo, hi = getattr(model, "outcome_bounds_", (0.0, 48.0))
        fields = dict(
            visit_months=tuple(float(x) for x in visit_months),
            mean_slope=float(fe[t]),
            slowing=float(slowing),
            sig2_int=sig2_int,
            sig2_slope=sig2_slope,
            cov_int_slope=cov_is,
            sig2_e=float(model.scale_),
            mean_intercept=min(max(mean_intercept, lo), hi),
            outcome=outcome,
        )
        fields.update(kwargs)
        return cls(**fields)

    def __repr__(self) -> str:
        return (
            f"TrialDesign(visit_months={list(self.visit_months)}, mean_slope="
            f"{self.mean_slope:.4g}, slowing={self.slowing:g}, sig2_int="
            f"{self.sig2_int:.4g}, sig2_slope={self.sig2_slope:.4g}, cov_int_slope="
            f"{self.cov_int_slope:.4g}, sig2_e={self.sig2_e:.4g}, alpha={self.alpha:g}, "
            f"power={self.power:g}, allocation_ratio={self.allocation_ratio:g}, "
            f"retention={None if self.retention is None else list(self.retention)})"
        )


def _subject_covariance(model: Any, time: str) -> tuple[Any, float]:
    """The subjects' random-effects covariance of a fitted mixed model, and the
    intercept variance of its other grouping factors (sites): with several factors
    the subject factor is the one with the most levels, and a site intercept adds
    to each patient's intercept variance (it leaves within-patient slopes alone)."""
    cov = model.cov_re_
    if not isinstance(cov, dict):
        return cov, 0.0
    subject = model._design_info["group"]
    extra = 0.0
    for name, c in cov.items():
        if name == subject:
            continue
        if list(c.index) not in (["Intercept"], ["(Intercept)"]):
            raise ModelSpecificationError(
                f"the model's grouping factor {name!r} has random effects "
                f"{', '.join(map(str, c.index))}; a trial design takes a random "
                f"intercept per {name!r} only (its slope variance would make "
                f"patients of one {name!r} decline alike, which the slope formulas "
                "do not model)."
            )
        extra += float(c.iloc[0, 0])
    if time not in cov[subject].index and any(time in c.index for c in cov.values()):
        raise ModelSpecificationError(
            f"the random slope of {time!r} is not on the subject factor {subject!r}."
        )
    return cov[subject], extra
