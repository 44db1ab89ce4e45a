"""Simulated trials, a chunk at a time: the generator and each trial's analysis.

Owns: the trial generator (random intercept and slope per patient, treatment slowing,
the design's attrition, extra death and dropout whose hazards rise with the patient's
progression rate, baseline markers correlated with progression, enrichment by
screening) and the analysis of each simulated trial by alsprog's exact REML engine
(the same numerics as :class:`~alsprog.models.LinearMixedModel`:
``y ~ months * arm + (months | subject)``, Wald test of ``months:arm``) or by
:class:`~alsprog.models.MMRM`.
Leaves: the arguments, the seeds, the parallel chunks and the result to
:mod:`alsprog.design._simulate`, the markers to :mod:`alsprog.design._markers`.

Speed: trials are simulated vectorised over a chunk of trials; because every
patient's design row is ``u_i ⊗ (1, t_j)``, the per-patient sufficient statistics of
the mixed model are formed directly from the visit mask (no data frame, no formula),
and each trial's REML fit starts from the generating parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from alsprog.design._markers import BaselineMarker, Enrichment, _marker_loadings
from alsprog.design._trial import TrialDesign
from alsprog.errors import ModelSpecificationError

__all__: list[str] = []

Array = npt.NDArray[np.float64]
_MIN_RATE = 0.05  # points/month: floor of the progression rate used for hazards


@dataclass(frozen=True)
class _Spec:
    """What to simulate, besides the design."""

    n_t: int
    n_c: int
    dropout: float = 0.0
    death_hazard: float = 0.0
    enrichment: Enrichment | None = None
    covariates: tuple[BaselineMarker, ...] = ()
    delta: float | None = None  # additive effect; None = the design's
    effect: str = "additive"
    survival: bool = False  # also draw death times (survival and composite endpoints)
    hazard_ratio: float = 1.0  # treated : control death hazard


@dataclass
class _Chunk:
    arm: Array  # (K, N)
    markers: Array  # (K, N, M) standard-normal scores of analysis covariates
    y: Array  # (K, N, J)
    mask: Array  # (K, N, J) 1 where observed
    n_screened: npt.NDArray[np.int64]  # (K,)
    # survival in months since randomisation (death/tracheostomy when ``event``),
    # censored at the last scheduled visit; None when not simulated
    time: Array | None = None  # (K, N)
    event: npt.NDArray[np.bool_] | None = None  # (K, N)


def _simulate_chunk(
    design: TrialDesign, spec: _Spec, k: int, rng: np.random.Generator
) -> _Chunk:
    n_t, n_c = spec.n_t, spec.n_c
    dropout, death_hazard = spec.dropout, spec.death_hazard
    enrichment, covariates = spec.enrichment, spec.covariates
    t = np.asarray(design.visit_months, float)
    n = n_t + n_c
    g = np.array(
        [
            [design.sig2_int, design.cov_int_slope],
            [design.cov_int_slope, design.sig2_slope],
        ]
    )
    chol = np.linalg.cholesky(g + 1e-14 * np.eye(2))
    markers = list(covariates)
    if enrichment is not None and enrichment.marker not in markers:
        markers_all = [*markers, enrichment.marker]
    else:
        markers_all = markers
    loads = [_marker_loadings(design, m) for m in markers_all]

    def draw(size: tuple[int, int]) -> tuple[Array, Array]:
        b = rng.standard_normal((*size, 2)) @ chol.T
        zs = np.empty((*size, len(markers_all)))
        for j, (w, resid) in enumerate(loads):
            zs[..., j] = b @ w + resid * rng.standard_normal(size)
        return b, zs

    if enrichment is None:
        b, zs = draw((k, n))
        n_screened = np.full(k, n, dtype=np.int64)
    else:
        j_enr = markers_all.index(enrichment.marker)
        zc = enrichment.z_cutoff
        p = enrichment.pass_fraction
        m = int(math.ceil(n / p * 1.25 + 10))
        b, zs = draw((k, m))
        passed = (
            zs[..., j_enr] >= zc if enrichment.keep == "above" else zs[..., j_enr] <= zc
        )
        while np.any(passed.sum(axis=1) < n):  # rare: top up short trials
            b2, z2 = draw((k, m))
            p2 = (
                z2[..., j_enr] >= zc
                if enrichment.keep == "above"
                else z2[..., j_enr] <= zc
            )
            b, zs = np.concatenate([b, b2], axis=1), np.concatenate([zs, z2], axis=1)
            passed = np.concatenate([passed, p2], axis=1)
        # enrol the first n passers of each trial, in screening order; the screened
        # count is the position of the n-th passer
        order = np.argsort(~passed, axis=1, kind="stable")[:, :n]
        n_screened = (np.argmax(np.cumsum(passed, axis=1) >= n, axis=1) + 1).astype(
            np.int64
        )
        b = np.take_along_axis(b, order[..., None], axis=1)
        zs = np.take_along_axis(zs, order[..., None], axis=1)
    arm = np.zeros((k, n))
    arm[:, :n_t] = 1.0
    if spec.effect == "proportional":
        # every treated patient's slope is slowed by the same fraction
        slope = (design.mean_slope + b[..., 1]) * (1.0 - arm * design.slowing)
    else:
        delta = design.delta if spec.delta is None else spec.delta
        slope = (
            design.mean_slope + arm * delta * np.sign(-design.mean_slope) + b[..., 1]
        )
    mu = design.mean_intercept + b[..., 0]
    y = (
        mu[..., None]
        + slope[..., None] * t
        + rng.normal(0.0, math.sqrt(design.sig2_e), (k, n, t.size))
    )
    mask = np.ones((k, n, t.size))
    h_death = np.zeros((k, n))
    end = np.full((k, n), np.inf)
    if dropout > 0 or death_hazard > 0:
        rate = np.maximum(-slope if design.mean_slope < 0 else slope, _MIN_RATE)
        rel = rate / abs(design.mean_slope)
        h = np.zeros_like(rel)
        if death_hazard > 0:
            h_death = -math.log1p(-death_hazard) / 12.0 * rel**2
            if spec.hazard_ratio != 1.0:  # treatment multiplies the death hazard
                h_death = h_death * np.where(arm > 0, spec.hazard_ratio, 1.0)
            h += h_death
        if dropout > 0:
            h += -math.log1p(-dropout) / 12.0 * rel
        end = rng.exponential(1.0, rel.shape) / h
        mask = ((t - t[0])[None, None, :] < end[..., None]).astype(float)
    if design.retention is not None:
        # the design's attrition (the analytic formulas' model): monotone and
        # non-informative; seen at visit j while u < retention[j]
        u = rng.random((k, n))
        mask = mask * (u[..., None] < np.asarray(design.retention, float))
    time = event = None
    if spec.survival:
        # drawn last, so the visits above do not depend on it; the first of the
        # competing exponential events is death with probability h_death / h; after
        # a dropout, vital status is still followed (memoryless: death comes at a
        # fresh exponential time with the death hazard)
        last = float(t[-1] - t[0])
        if death_hazard > 0:
            # h: the combined death and dropout hazard that drew ``end``
            first_is_death = rng.random((k, n)) < h_death / h
            later = end + rng.exponential(1.0, (k, n)) / h_death
            death = np.where(first_is_death, end, later)
        else:
            death = np.full((k, n), np.inf)
        event = death <= last
        time = np.minimum(death, last)
    return _Chunk(
        arm=arm,
        markers=zs[..., : len(markers)],
        y=y,
        mask=mask,
        n_screened=n_screened,
        time=time,
        event=event,
    )


# ----------------------------------------------------------------------- analysis
def _check_slope_estimable(st: Any, n: int) -> None:
    """Refuse a simulated trial whose fixed effects cannot all be estimated.

    With heavy dropout a small trial can lose every follow-up visit of an arm; its
    slope (and so the treatment effect) is then not estimable.
    """
    K, _, r = st.U.shape
    p = 2 * r
    xtx = np.einsum("kga,kgb,kgcd->kacbd", st.U, st.U, st.S).reshape(K, p, p)
    rank = np.linalg.matrix_rank(xtx)
    bad = np.flatnonzero((rank < p) | (st.n <= p))
    if bad.size:
        i = int(bad[0])
        raise ModelSpecificationError(
            f"a simulated trial ({n} patients, {int(st.n[i])} visits observed) has "
            "too few follow-up visits to estimate each arm's slope (the treatment "
            "effect is not estimable); raise `n_per_arm` or the design's "
            "`retention`, or lower `dropout`/`death_hazard`."
        )


def _fit_slope_trials(chunk: _Chunk, design: TrialDesign, alpha: float) -> list[dict]:
    """REML fit of ``y ~ months * arm (+ markers * months) + (months | subject)``."""
    from alsprog.design._batch_reml import BatchStats, batch_reml

    t = np.asarray(design.visit_months, float)
    k, n, _ = chunk.y.shape
    m = chunk.markers
    if m.shape[2]:
        m = m - m.mean(axis=1, keepdims=True)
    U = np.concatenate([np.ones((k, n, 1)), chunk.arm[..., None], m], axis=2)
    st = BatchStats.from_arrays(t, chunk.mask, chunk.y, U)
    _check_slope_estimable(st, n)
    sd_i, sd_s = math.sqrt(design.sig2_int), math.sqrt(design.sig2_slope)
    se = math.sqrt(design.sig2_e)
    corr = design.cov_int_slope / (sd_i * sd_s) if sd_i * sd_s > 0 else 0.0
    # start at the generating parameters (lme4's relative covariance factor)
    theta0 = np.array(
        [
            max(sd_i / se, 1e-2),
            corr * sd_s / se,
            max(math.sqrt(max(1 - corr * corr, 0.0)) * sd_s / se, 1e-2),
        ]
    )
    fit = batch_reml(st, theta0)
    if not fit.converged.all():
        _refit_unconverged(fit, chunk, U, t)
    z_crit = stats.norm.ppf(1 - alpha / 2)
    beta = fit.beta[:, 3]  # arm x months
    sebeta = np.sqrt(fit.cov_beta[:, 3, 3])
    zval = beta / sebeta
    n_obs = chunk.mask.sum(axis=(1, 2))
    return [
        {
            "estimate": float(beta[i]),
            "std_error": float(sebeta[i]),
            "z": float(zval[i]),
            "p_value": float(2 * stats.norm.sf(abs(zval[i]))),
            "reject": bool(abs(zval[i]) > z_crit),
            "n_patients": n,
            "n_observations": int(n_obs[i]),
            "n_screened": int(chunk.n_screened[i]),
            "converged": bool(fit.converged[i]),
        }
        for i in range(k)
    ]


def _refit_unconverged(fit: Any, chunk: _Chunk, U: Array, t: Array) -> None:
    """Fit the (rare) trials the batch optimiser left unconverged one by one."""
    from alsprog.models.lmm._numerics import GroupStats, fit_profiled

    zz = np.stack([np.ones_like(t), t], axis=1)
    rows, cols = np.array([0, 1, 1]), np.array([0, 0, 1])
    lower = np.array([0.0, -np.inf, 0.0])
    for i in np.flatnonzero(~fit.converged):
        w, u = chunk.mask[i], U[i]
        y = chunk.y[i] * w
        n, r = u.shape
        ztz = np.einsum("nj,ja,jb->nab", w, zz, zz)
        zty = y @ zz
        ztx = np.einsum("nk,nab->nakb", u, ztz).reshape(n, 2, 2 * r)
        xtx = np.einsum("nk,nl,nab->kalb", u, u, ztz).reshape(2 * r, 2 * r)
        xty = np.einsum("nk,na->ka", u, zty).reshape(2 * r)
        gs = GroupStats(
            ZtZ=ztz,
            ZtX=ztx,
            Zty=zty,
            XtX=0.5 * (xtx + xtx.T),
            Xty=xty,
            yty=float(np.sum(y * y)),
            n=int(w.sum()),
            n_per_group=w.sum(axis=1).astype(np.intp),
        )
        est = fit_profiled(gs, rows, cols, lower, reml=True, theta0=fit.theta[i])
        fit.beta[i], fit.cov_beta[i] = est.beta, est.cov_beta
        fit.theta[i], fit.converged[i] = est.theta, est.converged


def _fit_mmrm_trials(
    chunk: _Chunk,
    design: TrialDesign,
    alpha: float,
    covariates: Sequence[BaselineMarker],
) -> list[dict]:
    """MMRM of change from baseline (unstructured), contrast at the final visit."""
    from alsprog.models import MMRM

    k, n, j = chunk.y.shape
    extra = "".join(f" + {m.name}" for m in covariates)
    out = []
    for i in range(k):
        y, w = chunk.y[i], chunk.mask[i].astype(bool)
        base = y[:, 0]
        df = pd.DataFrame(
            {
                "subject_id": np.repeat(np.arange(n), j - 1),
                "visit": np.tile(np.arange(1, j), n),
                "arm": np.repeat(chunk.arm[i], j - 1),
                "baseline": np.repeat(base, j - 1),
                "chg": (y[:, 1:] - base[:, None]).ravel(),
            }
        )
        for c, m in enumerate(covariates):
            df[m.name] = np.repeat(chunk.markers[i][:, c], j - 1)
        obs = w[:, 1:].ravel()
        try:
            fit = MMRM(
                f"chg ~ visit * arm + baseline{extra}",
                subject="subject_id",
                visit="visit",
                arm="arm",
                reference=0.0,  # type: ignore[arg-type]  # numeric arm codes
                covariance="unstructured",
            ).fit(df.loc[obs])
        except ModelSpecificationError as exc:
            raise ModelSpecificationError(
                f"a simulated trial ({n} patients, {int(obs.sum())} post-baseline "
                f"visits observed) cannot be analysed by an unstructured MMRM: {exc} "
                "Raise `n_per_arm` or the design's `retention`, or lower "
                "`dropout`/`death_hazard`."
            ) from exc
        c = fit.contrast(visit=j - 1).iloc[0]
        out.append(
            {
                "estimate": float(c["estimate"]),
                "std_error": float(c["std_error"]),
                "z": float(c["t"]),
                "p_value": float(c["p_value"]),
                "reject": bool(c["p_value"] < alpha),
                "n_patients": n,
                "n_observations": int(obs.sum()),
                "n_screened": int(chunk.n_screened[i]),
                "converged": bool(fit.converged_),
            }
        )
    return out
