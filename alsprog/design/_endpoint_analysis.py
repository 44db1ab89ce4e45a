"""Each simulated trial analysed as planned, for every endpoint, at every look.

Owns: :data:`ENDPOINTS`; the per-trial test of each endpoint on a chunk of simulated
trials (``slope``: REML random-slope model, Wald test of ``months:arm``; ``mmrm``:
unstructured MMRM of change from baseline at the last visit; ``cafs``: the combined
assessment of function and survival, Finkelstein–Schoenfeld scores ranked by the
Wilcoxon test; ``joint_rank``: the same pairwise rule with each survivor's own
ALSFRS-R slope in place of the change at the horizon; ``win_ratio``: survival, then
ALSFRS-R change beyond a threshold, log win ratio over its U-statistic SE;
``survival``: log-rank test, Cox hazard ratio), with every statistic oriented so
that ``z > 0`` means the treated arm did better; truncation of the trials at
interim looks and the stopping rule of a group-sequential design.
Leaves: the trials to :mod:`alsprog.design._simulated_trials` and
:mod:`alsprog.design._course_trials`; the pairwise scores to
:mod:`alsprog.design._pairwise`; log-rank and Cox to :mod:`alsprog.design._survival`;
the boundaries to :mod:`alsprog.design._group_sequential`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from alsprog.design._simulated_trials import (
    _Chunk,
    _fit_mmrm_trials,
    _fit_slope_trials,
)
from alsprog.design._trial import TrialDesign
from alsprog.errors import ModelSpecificationError

__all__: list[str] = []

Array = npt.NDArray[np.float64]

#: Endpoints :func:`~alsprog.design.simulate_power` analyses.
ENDPOINTS = ("slope", "mmrm", "cafs", "joint_rank", "win_ratio", "survival")
#: Endpoints that need death times.
SURVIVAL_ENDPOINTS = frozenset({"cafs", "joint_rank", "win_ratio", "survival"})


def truncate(chunk: _Chunk, grid: Array, at: float) -> tuple[_Chunk, Array]:
    """The trials as seen at month ``at``: visits up to it, survival censored at it."""
    keep = grid <= at + 1e-9
    j = int(keep.sum())
    time = event = None
    if chunk.time is not None and chunk.event is not None:
        event = chunk.event & (chunk.time <= at)
        time = np.minimum(chunk.time, at)
    return (
        replace(
            chunk,
            y=chunk.y[..., :j],
            mask=chunk.mask[..., :j],
            time=time,
            event=event,
        ),
        grid[:j],
    )


def _change_at(chunk: _Chunk, h: int) -> Array:
    """ALSFRS-R change from baseline at visit ``h`` (NaN where not seen)."""
    seen = (chunk.mask[..., h] > 0) & (chunk.mask[..., 0] > 0)
    return np.where(seen, chunk.y[..., h] - chunk.y[..., 0], np.nan)


def _own_slopes(chunk: _Chunk, grid: Array) -> Array:
    """Each patient's least-squares ALSFRS-R slope over their visits (NaN < 2)."""
    w = chunk.mask
    n = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tbar = (w * grid).sum(axis=-1) / n
        ybar = (w * chunk.y).sum(axis=-1) / n
        dt = grid - tbar[..., None]
        sxx = (w * dt * dt).sum(axis=-1)
        sxy = (w * dt * (chunk.y - ybar[..., None])).sum(axis=-1)
        slope = sxy / sxx
    return np.where((n >= 2) & (sxx > 0), slope, np.nan)


def _need_survival(chunk: _Chunk, endpoint: str) -> tuple[Array, npt.NDArray[np.bool_]]:
    if chunk.time is None or chunk.event is None:
        raise ModelSpecificationError(
            f"endpoint {endpoint!r} needs death times, which this source has none "
            "of (a historical cohort without death_or_tracheostomy_months / "
            "event_observed)."
        )
    return chunk.time, chunk.event


def _rows(est: Array, se: Array, z: Array, alpha: float, chunk: _Chunk) -> list[dict]:
    p = 2 * stats.norm.sf(np.abs(z))
    n_obs = chunk.mask.sum(axis=(1, 2))
    n = chunk.arm.shape[1]
    return [
        {
            "estimate": float(est[i]),
            "std_error": float(se[i]),
            "z": float(z[i]),
            "p_value": float(p[i]),
            "reject": bool(p[i] < alpha),
            "n_patients": n,
            "n_observations": int(n_obs[i]),
            "n_screened": int(chunk.n_screened[i]),
            "converged": bool(np.isfinite(z[i])),
        }
        for i in range(len(z))
    ]


def analyse(
    chunk: _Chunk,
    design: TrialDesign,
    grid: Array,
    endpoint: str,
    *,
    horizon: float,
    threshold: float,
    covariates: Any = (),
) -> list[dict]:
    """Per-trial rows (``estimate, std_error, z, p_value, reject, ...``); ``z`` is
    oriented so that positive means the treated arm did better."""
    alpha = design.alpha
    sign = 1.0 if design.mean_slope <= 0 else -1.0  # decline: a higher slope is better
    if endpoint == "slope":
        rows = _fit_slope_trials(
            chunk, replace(design, visit_months=tuple(grid)), alpha
        )
        for r in rows:
            r["z"] *= sign
        return rows
    if endpoint == "mmrm":
        rows = _fit_mmrm_trials(chunk, design, alpha, covariates)
        for r in rows:
            r["z"] *= sign
        return rows
    h = int(np.searchsorted(grid, horizon + 1e-9) - 1)
    at = float(grid[h])
    arm = chunk.arm > 0
    if endpoint == "survival":
        from alsprog.design._survival_batch import cox_batch, logrank_batch

        time, event = _need_survival(chunk, endpoint)
        z = -logrank_batch(time, event, arm)
        cox = cox_batch(time, event, arm)
        return _rows(cox.log_hazard_ratio, cox.se, z, alpha, chunk)
    time, event = _need_survival(chunk, endpoint)
    event = event & (time <= at)
    time = np.minimum(time, at)
    if endpoint in ("cafs", "joint_rank"):
        from alsprog.design._pairwise import cafs_scores_batch, rank_sum_z

        if endpoint == "cafs":
            function = sign * _change_at(chunk, h)
        else:
            trunc, g = truncate(chunk, grid, at)
            function = sign * _own_slopes(trunc, g)
        scores = cafs_scores_batch(time, event, function, at)
        z = rank_sum_z(scores, arm)
        with np.errstate(invalid="ignore"):
            est = np.nanmean(np.where(arm, scores, np.nan), axis=1) - np.nanmean(
                np.where(arm, np.nan, scores), axis=1
            )
        return _rows(est, np.full(len(z), np.nan), z, alpha, chunk)
    if endpoint == "win_ratio":
        from alsprog.design._pairwise import win_statistics_batch

        w = win_statistics_batch(
            time, event, sign * _change_at(chunk, h), arm, at, threshold
        )
        # tested on the net benefit (win ratio 1 <=> net benefit 0), which exists
        # even when a small trial loses no pair; the estimate is the log win ratio
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(w.net_benefit_se > 0, w.net_benefit / w.net_benefit_se, 0.0)
            est = np.log(w.win_ratio)
        return _rows(est, w.log_win_ratio_se, z, alpha, chunk)
    raise ModelSpecificationError(f"unknown endpoint {endpoint!r}")
