"""One chunk of simulated trials: drawn from their source, analysed at each look.

Owns: :class:`_Plan` (endpoint, source, treatment effect, horizon, threshold,
group-sequential looks), :func:`run_trials` (a chunk of trials from the design's
linear model, the nonlinear course or a historical cohort, analysed by
:mod:`alsprog.design._endpoint_analysis`) and the interim looks: a trial is
analysed on the data seen by each look's time and stops at the first look whose
boundary it crosses.
Leaves: the arguments, seeds and result to :mod:`alsprog.design._simulate`.

Timing of the looks: for the survival endpoint a look comes when the trial has seen
its information rate's share of the deaths it will have at the final analysis
(event-driven, as survival trials are run); for the others at that share of the
follow-up (months, rounded down to a scheduled visit for the ALSFRS-R data).  All
patients are randomised at month 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.design._course_trials import CourseSource
from alsprog.design._endpoint_analysis import analyse, truncate
from alsprog.design._simulated_trials import _Chunk, _simulate_chunk, _Spec
from alsprog.design._trial import TrialDesign

__all__: list[str] = []

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Plan:
    """What each trial is and how it is analysed."""

    endpoint: str = "slope"
    source: Any = None  # None (the design's model) | CourseSource | HistoricalCohort
    slowing: float = 0.25
    hazard_ratio: float = 1.0
    horizon: float = 12.0
    threshold: float = 0.0
    looks: Any = None  # GroupSequentialDesign or None


def draw_chunk(
    design: TrialDesign, spec: _Spec, plan: _Plan, k: int, rng: np.random.Generator
) -> _Chunk:
    """``k`` trials from the plan's source."""
    grid = np.asarray(design.visit_months, float)
    if plan.source is None:
        return _simulate_chunk(design, spec, k, rng)
    # CourseSource and HistoricalCohort draw trials with the same call
    return plan.source.draw_trials(
        grid,
        spec.n_t,
        spec.n_c,
        k,
        rng,
        slowing=plan.slowing,
        hazard_ratio=plan.hazard_ratio,
    )


def run_trials(
    design: TrialDesign,
    spec: _Spec,
    plan: _Plan,
    k: int,
    seed: np.random.SeedSequence,
) -> tuple[list[dict], Array, Array]:
    """Simulate and analyse ``k`` trials; also the treated and control patients
    seen at each visit, summed over them."""
    rng = np.random.default_rng(seed)
    chunk = draw_chunk(design, spec, plan, k, rng)
    seen_t = chunk.mask[:, : spec.n_t].sum(axis=(0, 1))
    seen_c = chunk.mask[:, spec.n_t :].sum(axis=(0, 1))
    grid = np.asarray(design.visit_months, float)
    if plan.looks is None:
        rows = analyse(
            chunk,
            design,
            grid,
            plan.endpoint,
            horizon=plan.horizon,
            threshold=plan.threshold,
            covariates=spec.covariates,
        )
    else:
        rows = _analyse_looks(chunk, design, grid, plan, spec)
    return rows, seen_t, seen_c


def look_times(chunk: _Chunk, grid: Array, plan: _Plan) -> Array:
    """Month of each look of each trial, shape (K, L)."""
    rates = np.asarray(plan.looks.information_rates, float)
    k = chunk.arm.shape[0]
    last = float(grid[-1])
    if plan.endpoint != "survival":
        return np.broadcast_to(rates * last, (k, rates.size)).copy()
    assert chunk.time is not None and chunk.event is not None
    ev_times = np.sort(np.where(chunk.event, chunk.time, np.inf), axis=1)
    total = chunk.event.sum(axis=1)
    need = np.ceil(rates[None, :] * total[:, None] - 1e-9).astype(int)
    need = np.clip(need, 1, None)
    idx = np.minimum(need - 1, ev_times.shape[1] - 1)
    at = np.take_along_axis(ev_times, idx, axis=1)
    at = np.where(np.isfinite(at), at, last)
    at[:, -1] = last  # the final analysis at the end of follow-up
    return np.minimum(at, last)


def _analyse_looks(
    chunk: _Chunk, design: TrialDesign, grid: Array, plan: _Plan, spec: _Spec
) -> list[dict]:
    times = look_times(chunk, grid, plan)
    k, n_looks = times.shape
    z = np.full((k, n_looks), np.nan)
    per_look: list[list[dict]] = []
    for look in range(n_looks):
        if plan.endpoint == "survival":
            rows = _survival_at(chunk, design, grid, plan, times[:, look])
        else:
            at = float(times[0, look])
            sub, g = truncate(chunk, grid, at)
            rows = analyse(
                sub,
                design,
                g,
                plan.endpoint,
                horizon=min(plan.horizon, at),
                threshold=plan.threshold,
                covariates=spec.covariates,
            )
        z[:, look] = [r["z"] for r in rows]
        per_look.append(rows)
    # z > 0 favours the treated arm (one-sided designs test the upper side;
    # two-sided ones |z|); a trial not analysable at a look does not stop there
    outcome = plan.looks.stop_at_looks(np.nan_to_num(z, nan=0.0))
    out = []
    for i in range(k):
        s = int(outcome.look[i])
        row = dict(per_look[s - 1][i])
        why = (
            "efficacy"
            if outcome.rejected[i]
            else ("futility" if outcome.futility[i] else "final")
        )
        row.update(
            reject=bool(outcome.rejected[i]),
            stop_look=s,
            stopped_for=why,
            stop_months=float(times[i, s - 1]),
        )
        out.append(row)
    return out


def _survival_at(
    chunk: _Chunk, design: TrialDesign, grid: Array, plan: _Plan, at: Array
) -> list[dict]:
    """Survival rows with each trial censored at its own look time."""
    assert chunk.time is not None and chunk.event is not None
    sub = replace(
        chunk,
        time=np.minimum(chunk.time, at[:, None]),
        event=chunk.event & (chunk.time <= at[:, None]),
    )
    return analyse(
        sub,
        design,
        grid,
        "survival",
        horizon=plan.horizon,
        threshold=plan.threshold,
    )


def describe_source(source: Any) -> str:
    """A short name of the source for results and reports."""
    from alsprog.design._historical import HistoricalCohort

    if source is None:
        return "design"
    if isinstance(source, HistoricalCohort):
        return f"historical ({len(source.subjects)} patients)"
    return "course"  # "course", CohortParams, its dict or a CourseSource


def make_plan(
    design: TrialDesign,
    *,
    endpoint: str,
    source: Any,
    hazard_ratio: Any,
    horizon_months: Any,
    threshold: Any,
    looks: Any,
    extras: dict[str, Any],
) -> _Plan:
    """Check the endpoint options against the source and build the plan."""
    from alsprog._validation import check_interval
    from alsprog.design._endpoint_analysis import SURVIVAL_ENDPOINTS
    from alsprog.design._historical import HistoricalCohort
    from alsprog.errors import ModelSpecificationError

    e = ModelSpecificationError
    hr = check_interval(hazard_ratio, "hazard_ratio", low=0, low_closed=False, error=e)
    thr = check_interval(threshold, "threshold", low=0, error=e)
    grid = np.asarray(design.visit_months, float)
    horizon = float(grid[-1]) if horizon_months is None else horizon_months
    horizon = check_interval(
        horizon, "horizon_months", low=0, low_closed=False, error=e
    )
    if horizon < grid[1] - 1e-9 or horizon > grid[-1] + 1e-9:
        raise e(
            f"`horizon_months` must lie between the first follow-up visit "
            f"({grid[1]:g}) and the last ({grid[-1]:g}); got {horizon:g}."
        )
    if source is not None and not isinstance(source, HistoricalCohort):
        source = CourseSource.from_any(source)
    if source is not None:
        set_extras = [
            k for k, v in extras.items() if v not in (0.0, None, (), "additive")
        ]
        if set_extras:
            raise e(
                f"{', '.join(set_extras)} apply to the design's linear model only; "
                "the nonlinear course and a historical cohort bring their own dropout "
                "and deaths (leave them at their defaults with `source`)."
            )
        if design.retention is not None:
            raise e(
                "the design's `retention` applies to its linear model only; with "
                "`source` attrition comes from the source (set retention=None)."
            )
    if isinstance(source, HistoricalCohort):
        if tuple(source.visit_months) != tuple(float(g) for g in grid):
            raise e(
                f"the historical cohort is on visits {list(source.visit_months)} but "
                f"the design's visits are {list(grid)}; build it with "
                "HistoricalCohort.from_table(..., visit_months=design.visit_months)."
            )
        if endpoint in SURVIVAL_ENDPOINTS and not source.has_survival:
            raise e(
                f"endpoint {endpoint!r} needs death times; the historical cohort has "
                "no death_or_tracheostomy_months / event_observed columns."
            )
    if source is None and endpoint in SURVIVAL_ENDPOINTS:
        if extras.get("death_hazard", 0.0) == 0.0:
            raise e(
                f"endpoint {endpoint!r} needs deaths: give `death_hazard` (the "
                "design's linear model) or a `source` ('course' or a "
                "HistoricalCohort)."
            )
    if source is None and hr != 1.0 and extras.get("death_hazard", 0.0) == 0.0:
        raise e("`hazard_ratio` needs deaths: give `death_hazard` or a `source`.")
    if looks is not None:
        from alsprog.design._group_sequential import GroupSequentialDesign

        if not isinstance(looks, GroupSequentialDesign):
            raise e(
                "`looks` must be a GroupSequentialDesign (alsprog.design."
                f"group_sequential); got {type(looks).__name__}."
            )
        if endpoint == "mmrm":
            raise e("group-sequential looks are not simulated for the MMRM endpoint.")
        first = float(looks.information_rates[0]) * float(grid[-1])
        if endpoint != "survival" and first < grid[1] - 1e-9:
            # calendar looks: the first must see a follow-up visit
            raise e(
                f"the first look comes at month {first:g} (information rate "
                f"{float(looks.information_rates[0]):g} of {grid[-1]:g} months), "
                f"before the first follow-up visit ({grid[1]:g}): endpoint "
                f"{endpoint!r} has nothing to analyse there; give `information_rates` "
                f"starting at {grid[1] / grid[-1]:g} or later, or more visits."
            )
    return _Plan(
        endpoint=endpoint,
        source=source,
        slowing=float(design.slowing),
        hazard_ratio=hr,
        horizon=horizon,
        threshold=thr,
        looks=looks,
    )
