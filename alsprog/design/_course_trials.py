"""Trials simulated from a disease course instead of a fitted line.

Owns: the sources of :func:`~alsprog.design.simulate_power` other than the design's
linear mixed model: alsprog's nonlinear cohort simulator (:class:`CourseSource`: the
D50 sigmoid course, a death/tracheostomy hazard rising with the progression rate,
informative dropout, missed visits and integer ALSFRS-R totals) with a treatment that
slows progression by a fraction and/or multiplies the death hazard, and the
resampling of a :class:`~alsprog.design.HistoricalCohort` (the same
``draw_trials`` call); both produce a chunk of trials on the design's visit grid for :mod:`alsprog.design._endpoint_analysis`.
Leaves: the course itself to :mod:`alsprog.simulate._course`; the historical
resampling to :mod:`alsprog.design._historical`.

Treatment in the simulator: a patient of the treated arm moves along their own D50
sigmoid at ``1 - slowing`` of the untreated speed from randomisation on (disease time
``T0 + (1 - s) t``), so every moment's progression rate is slowed by the fraction
``s``; their death hazard after randomisation is multiplied by ``hazard_ratio``
(:func:`~alsprog.simulate._course.death_after`).  The two are separate: a slowing
alone leaves survival as it was; give ``hazard_ratio`` for a survival effect.
Vital status is followed to the end of the trial after a dropout (death times are
known; ALSFRS-R visits stop at dropout or death).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from alsprog.design._simulated_trials import _Chunk
from alsprog.errors import ModelSpecificationError
from alsprog.simulate._course import death_after, draw_course
from alsprog.simulate._params import CohortParams, resolve_params

__all__ = ["CourseSource"]


@dataclass(frozen=True)
class CourseSource:
    """alsprog's nonlinear ALS course as the source of simulated trials.

    Parameters
    ----------
    params : CohortParams, optional
        Simulator parameters (default: :class:`~alsprog.simulate.CohortParams`, the
        documented natural history: D50 sigmoid, Weibull death/tracheostomy with a
        hazard rising with the square of the progression rate, 15 % yearly dropout
        rising with the rate, 7 % missed visits, residual SD 2 points).
    missed_visits : bool, default True
        Whether scheduled visits are missed at random (``params.missed_visit_prob``).

    Examples
    --------
    >>> CourseSource().params.event_median_months
    30.0
    """

    params: CohortParams = CohortParams()
    missed_visits: bool = True

    @classmethod
    def from_any(cls, source: Any) -> CourseSource:
        """``"course"``, a :class:`CohortParams`, a dict of its fields or itself."""
        if isinstance(source, CourseSource):
            return source
        if isinstance(source, str) and source == "course":
            return cls()
        if isinstance(source, CohortParams | dict):
            try:
                return cls(resolve_params(source, {}))
            except (TypeError, ValueError) as exc:
                raise ModelSpecificationError(
                    f"bad simulator parameters: {exc}"
                ) from exc
        raise ModelSpecificationError(
            "`source` must be None (the design's linear model), 'course' (alsprog's "
            "nonlinear simulator), a CohortParams, a CourseSource or a "
            f"HistoricalCohort; got {type(source).__name__}."
        )

    def draw_trials(
        self,
        grid: np.ndarray,
        n_t: int,
        n_c: int,
        k: int,
        rng: np.random.Generator,
        *,
        slowing: float,
        hazard_ratio: float,
    ) -> _Chunk:
        """``k`` trials of ``n_t`` treated and ``n_c`` control patients."""
        p = self.params
        n = n_t + n_c
        c = draw_course(p, k * n, rng)
        arm = np.zeros((k, n))
        arm[:, :n_t] = 1.0
        a = arm.ravel()
        t = np.asarray(grid, float)
        disease_time = c["t0"][:, None] + (1.0 - slowing * a)[:, None] * t[None, :]
        true = 48.0 / (
            1.0 + np.exp((disease_time - c["d50"][:, None]) / c["dx"][:, None])
        )
        y = np.clip(np.rint(true + rng.normal(0.0, p.residual_sd, true.shape)), 0, 48)
        hr = np.where(a > 0, hazard_ratio, 1.0)
        death = (
            death_after(
                c["event_scale"], c["t0"], c["event_draw"], p.event_weibull_shape, hr
            )
            - c["t0"]
        )
        gone = np.minimum(death, c["dropout_months"])
        seen = t[None, :] < gone[:, None]
        if self.missed_visits and p.missed_visit_prob > 0:
            seen &= rng.random(seen.shape) >= p.missed_visit_prob
        seen[:, 0] = True  # randomised patients are seen at baseline
        last = float(t[-1])
        return _Chunk(
            arm=arm,
            markers=np.zeros((k, n, 0)),
            y=y.reshape(k, n, t.size),
            mask=seen.reshape(k, n, t.size).astype(float),
            n_screened=np.full(k, n, dtype=np.int64),
            time=np.minimum(death, last).reshape(k, n),
            event=(death <= last).reshape(k, n),
        )
