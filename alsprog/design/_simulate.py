"""Power by simulation: whole trials simulated and analysed as the statistician would.

Owns: :func:`simulate_power`, the trial generator (random intercept and slope per
patient, treatment slowing, the design's attrition, extra death and dropout whose
hazards rise with the patient's progression rate, baseline markers correlated with
progression, enrichment by screening), :class:`BaselineMarker`, :class:`Enrichment`
and :class:`PowerResult`.  Each simulated trial is analysed by alsprog's exact REML
engine (the same numerics as :class:`~alsprog.models.LinearMixedModel`:
``y ~ months * arm + (months | subject)``, Wald test of ``months:arm``) or by
:class:`~alsprog.models.MMRM`.
Leaves: formulas to :mod:`alsprog.design._analytic`, figures to :mod:`alsprog.plots`.

Attrition, two separate sources:

- ``TrialDesign.retention`` is the attrition the analytic formulas assume (longpower's
  ``ra``; Edland 2009): ``retention[j]`` is the probability that a randomised patient
  is still observed at visit ``j``, dropout is monotone (missing at visit ``j``,
  missing afterwards) and non-informative (independent of the patient's intercept,
  slope, arm and outcomes).  Each patient draws one uniform ``u`` and is seen at
  visit ``j`` while ``u < retention[j]``, so a fraction ``retention[j] -
  retention[j+1]`` has its last visit at ``j``: the pattern mixture of
  :func:`~alsprog.design.sample_size_slope`.  Simulated and analytic power then agree
  within Monte Carlo error.
- ``dropout`` and ``death_hazard`` of :func:`simulate_power` remove further visits on
  top (informative: hazards rise with the progression rate), which no analytic
  formula here includes.

Speed: trials are simulated vectorised over a chunk of trials; because every
patient's design row is ``u_i ⊗ (1, t_j)``, the per-patient sufficient statistics of
the mixed model are formed directly from the visit mask (no data frame, no formula),
and each trial's REML fit starts from the generating parameters.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from alsprog._progress import progress_bar
from alsprog._random import as_generator
from alsprog._validation import (
    check_choice,
    check_int,
    check_interval,
    check_n_jobs,
    check_numbers,
)
from alsprog.design._trial import TrialDesign
from alsprog.errors import ModelSpecificationError

__all__ = [
    "BaselineMarker",
    "Enrichment",
    "PowerResult",
    "adjusted_design",
    "enriched_design",
    "power_curve",
    "simulate_power",
]

logger = logging.getLogger(__name__)
Array = npt.NDArray[np.float64]
_MIN_RATE = 0.05  # points/month: floor of the progression rate used for hazards


@dataclass(frozen=True)
class BaselineMarker:
    """A baseline variable correlated with the patient's progression.

    Parameters
    ----------
    name : str
        Column name (``"delta_fs"``, ``"fa_cst_left"``, ...).
    mean, sd : float
        Marginal mean and SD in the screened population.
    corr_slope : float
        Correlation with the patient's random slope (negative: a higher value goes
        with a steeper decline, as for ΔFS).
    corr_intercept : float, default 0.0
        Correlation with the random intercept.
    lognormal : bool, default False
        Lognormal marginal (for skewed markers such as ΔFS); correlations then hold on
        the log scale.

    Examples
    --------
    >>> BaselineMarker("delta_fs", mean=0.7, sd=0.5, corr_slope=-0.5, lognormal=True)
    BaselineMarker(name='delta_fs', mean=0.7, sd=0.5, corr_slope=-0.5, corr_intercept=0.0, lognormal=True)
    """

    name: str
    mean: float
    sd: float
    corr_slope: float
    corr_intercept: float = 0.0
    lognormal: bool = False

    def __post_init__(self) -> None:
        e = ModelSpecificationError
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise e(
                "`name` must be a column name (letters, digits and _, not starting "
                f"with a digit), e.g. 'delta_fs'; got {self.name!r}."
            )
        check_interval(self.mean, f"{self.name}.mean", error=e)
        check_interval(self.sd, f"{self.name}.sd", low=0, low_closed=False, error=e)
        check_interval(
            self.corr_slope, f"{self.name}.corr_slope", low=-1, high=1, error=e
        )
        check_interval(
            self.corr_intercept, f"{self.name}.corr_intercept", low=-1, high=1, error=e
        )
        if self.lognormal:
            check_interval(
                self.mean, f"{self.name}.mean", low=0, low_closed=False, error=e
            )

    def values(self, z: Array) -> Array:
        """Marker values from standard-normal scores ``z``."""
        if not self.lognormal:
            return self.mean + self.sd * z
        s2 = math.log1p((self.sd / self.mean) ** 2)
        return np.exp(math.log(self.mean) - s2 / 2 + math.sqrt(s2) * z)

    def quantile(self, q: float) -> float:
        """The marker's ``q`` quantile."""
        return float(self.values(np.array([stats.norm.ppf(q)]))[0])


@dataclass(frozen=True)
class Enrichment:
    """Enrol only screened patients whose baseline marker passes a threshold.

    Parameters
    ----------
    marker : BaselineMarker
        The screening variable.
    threshold : float, optional
        Keep patients with ``marker >= threshold`` (``keep="above"``) or ``<=``.
    quantile : float, optional
        Instead of a threshold: keep the patients beyond this quantile of the
        screened population (e.g. 0.5 = the faster half when ``keep="above"``).
    keep : {"above", "below"}, default "above"

    Examples
    --------
    >>> dfs = BaselineMarker("delta_fs", 0.7, 0.5, corr_slope=-0.5, lognormal=True)
    >>> round(Enrichment(dfs, quantile=0.5).pass_fraction, 3)
    0.5
    """

    marker: BaselineMarker
    threshold: float | None = None
    quantile: float | None = None
    keep: Literal["above", "below"] = "above"

    def __post_init__(self) -> None:
        e = ModelSpecificationError
        if not isinstance(self.marker, BaselineMarker):
            raise e("`marker` must be a BaselineMarker.")
        if (self.threshold is None) == (self.quantile is None):
            raise e("give exactly one of `threshold` and `quantile`.")
        if self.threshold is not None:
            check_interval(self.threshold, "threshold", error=e)
        if self.quantile is not None:
            check_interval(
                self.quantile,
                "quantile",
                low=0,
                high=1,
                low_closed=False,
                high_closed=False,
                error=e,
            )
        check_choice(self.keep, "keep", ("above", "below"), error=e)
        if self.pass_fraction < 1e-3:
            raise e(
                f"enrichment keeps {self.pass_fraction:.2e} of screened patients; "
                "choose a less extreme threshold."
            )

    @property
    def cutoff(self) -> float:
        """The marker value that separates kept from screened-out patients."""
        if self.threshold is not None:
            return float(self.threshold)
        assert self.quantile is not None
        return self.marker.quantile(self.quantile)

    @property
    def z_cutoff(self) -> float:
        """The cut-off on the standard-normal score scale."""
        m = self.marker
        c = self.cutoff
        if m.lognormal:
            if c <= 0:
                return -np.inf
            s2 = math.log1p((m.sd / m.mean) ** 2)
            return (math.log(c) - (math.log(m.mean) - s2 / 2)) / math.sqrt(s2)
        return (c - m.mean) / m.sd

    @property
    def pass_fraction(self) -> float:
        """Fraction of screened patients who are enrolled."""
        z = self.z_cutoff
        return float(stats.norm.sf(z) if self.keep == "above" else stats.norm.cdf(z))


@dataclass(frozen=True)
class PowerResult:
    """Power estimated by simulating and analysing whole trials.

    Attributes
    ----------
    power : float
        Fraction of trials whose two-sided test rejected at ``alpha``.
    se : float
        Monte Carlo standard error, ``sqrt(power (1 - power) / n_sims)``.
    n_sims : int
    n_per_arm : int
        Treated patients per trial.
    n_control : int
    analysis : str
        ``"slope"`` or ``"mmrm"``.
    screen_failure : float
        Fraction of screened patients not enrolled (0 without enrichment).
    estimates : pandas.DataFrame
        One row per trial: ``trial, estimate, std_error, z, p_value, reject,
        n_patients, n_observations, n_screened, converged``.
    design : TrialDesign
    seconds : float
        Wall time of the simulation.
    retention : tuple of float or None
        The design's non-informative attrition the trials were simulated with (and
        the analytic formulas assume); ``None`` = none.
    dropout, death_hazard : float
        Extra informative dropout and death added on top of ``retention`` (0 = none).
    attrition : pandas.DataFrame
        One row per visit: ``months, retention`` (the design's, 1 without attrition),
        ``observed, observed_treatment, observed_control`` (the realised fraction of
        randomised patients seen at that visit, over all simulated trials, after
        ``retention`` and any ``dropout``/``death_hazard``).
    """

    power: float
    se: float
    n_sims: int
    n_per_arm: int
    n_control: int
    analysis: str
    screen_failure: float
    estimates: pd.DataFrame = field(repr=False)
    design: TrialDesign = field(repr=False)
    seconds: float = field(default=0.0, repr=False)
    retention: tuple[float, ...] | None = None
    dropout: float = 0.0
    death_hazard: float = 0.0
    attrition: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def __repr__(self) -> str:
        ret = None if self.retention is None else [f"{r:g}" for r in self.retention]
        ret_text = "None" if ret is None else f"[{', '.join(ret)}]"
        return (
            f"PowerResult(power={self.power:.4f}, se={self.se:.4f}, n_sims={self.n_sims}, "
            f"n_per_arm={self.n_per_arm}, analysis={self.analysis!r}, "
            f"retention={ret_text}, dropout={self.dropout:g}, "
            f"death_hazard={self.death_hazard:g}, "
            f"screen_failure={self.screen_failure:.3f})"
        )


#: Largest trial simulated: treated patients per arm, trials, Monte Carlo draws.
MAX_PER_ARM = 100_000
MAX_SIMS = 10_000_000
MAX_DRAWS = 100_000_000

#: Options :func:`power_curve` passes on to :func:`simulate_power`.
_SIMULATE_OPTIONS = frozenset(
    {"dropout", "death_hazard", "enrichment", "covariates", "effect", "chunk_size"}
)


def _check_count(value: Any, name: str, low: int, high: int) -> int:
    """An integer >= ``low`` (the usual message), then at most ``high``."""
    n = check_int(value, name, low=low, error=ModelSpecificationError)
    if n > high:
        raise ModelSpecificationError(f"`{name}` must be at most {high:,}; got {n:,}.")
    return n


def _check_design(design: Any) -> None:
    if not isinstance(design, TrialDesign):
        raise ModelSpecificationError(
            f"`design` must be a TrialDesign; got {type(design).__name__}."
        )


def _check_markers(covariates: Any) -> tuple[BaselineMarker, ...]:
    if isinstance(covariates, BaselineMarker):
        covariates = (covariates,)
    if isinstance(covariates, str) or not isinstance(covariates, Iterable):
        raise ModelSpecificationError(
            "`covariates` must be a sequence of BaselineMarker objects; got "
            f"{covariates!r}."
        )
    covariates = tuple(covariates)
    for m in covariates:
        if not isinstance(m, BaselineMarker):
            raise ModelSpecificationError(
                f"`covariates` must be BaselineMarker objects; got {m!r}."
            )
    names = [m.name for m in covariates]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ModelSpecificationError(
            f"`covariates` name marker(s) {', '.join(map(repr, dup))} more than once."
        )
    return tuple(covariates)


# --------------------------------------------------------------------- simulation
def _marker_loadings(design: TrialDesign, m: BaselineMarker) -> tuple[Array, float]:
    """Regression of the marker's normal score on (b0, b1) and its residual SD."""
    g = np.array(
        [
            [design.sig2_int, design.cov_int_slope],
            [design.cov_int_slope, design.sig2_slope],
        ]
    )
    sd = np.sqrt(np.diag(g))
    c = np.array([m.corr_intercept * sd[0], m.corr_slope * sd[1]])
    for k, (corr, s) in enumerate(((m.corr_intercept, sd[0]), (m.corr_slope, sd[1]))):
        if corr != 0 and s == 0:
            what = ("intercept", "slope")[k]
            raise ModelSpecificationError(
                f"marker {m.name!r} is correlated with the random {what}, whose variance "
                "is 0 in this design."
            )
    w = np.linalg.pinv(g) @ c
    explained = float(c @ w)
    if explained > 1 + 1e-9:
        raise ModelSpecificationError(
            f"marker {m.name!r}: the correlations with intercept and slope are "
            "impossible together given the intercept-slope correlation."
        )
    return w, math.sqrt(max(0.0, 1.0 - explained))


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


@dataclass
class _Chunk:
    arm: Array  # (K, N)
    markers: Array  # (K, N, M) standard-normal scores of analysis covariates
    y: Array  # (K, N, J)
    mask: Array  # (K, N, J) 1 where observed
    n_screened: npt.NDArray[np.int64]  # (K,)


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
    if dropout > 0 or death_hazard > 0:
        rate = np.maximum(-slope if design.mean_slope < 0 else slope, _MIN_RATE)
        rel = rate / abs(design.mean_slope)
        h = np.zeros_like(rel)
        if death_hazard > 0:
            h += -math.log1p(-death_hazard) / 12.0 * rel**2
        if dropout > 0:
            h += -math.log1p(-dropout) / 12.0 * rel
        end = rng.exponential(1.0, rel.shape) / h
        mask = ((t - t[0])[None, None, :] < end[..., None]).astype(float)
    if design.retention is not None:
        # the design's attrition (the analytic formulas' model): monotone and
        # non-informative; seen at visit j while u < retention[j]
        u = rng.random((k, n))
        mask = mask * (u[..., None] < np.asarray(design.retention, float))
    return _Chunk(
        arm=arm, markers=zs[..., : len(markers)], y=y, mask=mask, n_screened=n_screened
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
                reference=0.0,
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


def _run_chunk(
    design: TrialDesign,
    spec: _Spec,
    k: int,
    seed: np.random.SeedSequence,
    analysis: str,
) -> tuple[list[dict], Array, Array]:
    """Simulate and analyse ``k`` trials.

    Returns the per-trial rows and the number of treated and control patients seen
    at each visit, summed over the ``k`` trials.
    """
    rng = np.random.default_rng(seed)
    chunk = _simulate_chunk(design, spec, k, rng)
    seen_t = chunk.mask[:, : spec.n_t].sum(axis=(0, 1))
    seen_c = chunk.mask[:, spec.n_t :].sum(axis=(0, 1))
    if analysis == "slope":
        rows = _fit_slope_trials(chunk, design, design.alpha)
    else:
        rows = _fit_mmrm_trials(chunk, design, design.alpha, spec.covariates)
    return rows, seen_t, seen_c


def simulate_power(
    design: TrialDesign | Any,
    n_per_arm: int,
    *,
    n_sims: int = 1000,
    analysis: Literal["slope", "mmrm"] = "slope",
    dropout: float = 0.0,
    death_hazard: float = 0.0,
    enrichment: Enrichment | None = None,
    covariates: Sequence[BaselineMarker] = (),
    effect: Literal["additive", "proportional"] = "additive",
    seed: Any = None,
    n_jobs: int = -1,
    chunk_size: int = 50,
    progress: bool | None = None,
) -> PowerResult:
    """Power of a two-arm trial by simulating and analysing ``n_sims`` trials.

    Each trial randomises ``n_per_arm`` treated and ``n_per_arm / allocation_ratio``
    control patients, draws every patient's intercept and slope from the design's
    variance components (treatment slows the mean slope by ``design.slowing``),
    loses patients as ``design.retention`` says (monotone, non-informative: the
    attrition the analytic formulas assume, so both answer the same question),
    removes further visits after the extra ``dropout`` or ``death_hazard`` (if any),
    and analyses the trial exactly:
    ``analysis="slope"`` fits ``y ~ months * arm (+ covariates × months) + (months |
    subject)`` by REML with alsprog's engine and tests ``months:arm`` (Wald, two-sided);
    ``analysis="mmrm"`` fits an unstructured MMRM to change from baseline and tests
    the arm difference at the final visit.

    Parameters
    ----------
    design : TrialDesign or LinearMixedModel
        The trial; a fitted model is turned into one by
        :meth:`TrialDesign.from_model`.
    n_per_arm : int
        Treated patients per trial (>= 2).
    n_sims : int, default 1000
        Trials to simulate.
    analysis : {"slope", "mmrm"}, default "slope"
    dropout : float, default 0.0
        Extra yearly dropout probability at the mean progression rate, on top of
        ``design.retention``; a patient's hazard scales with their progression rate
        (informative dropout, not in the analytic formulas).
    death_hazard : float, default 0.0
        Extra yearly probability of death or tracheostomy at the mean progression
        rate, on top of ``design.retention``; the hazard scales with the square of the
        patient's progression rate (as the simulator, docs/domain.md §2).  With
        ``design.retention=None, dropout=0, death_hazard=0`` follow-up is complete.
    enrichment : Enrichment, optional
        Screen patients on a baseline marker; the screen-failure fraction is reported.
    covariates : sequence of BaselineMarker
        Baseline markers to adjust for (main effect and interaction with time).
    effect : {"additive", "proportional"}, default "additive"
        ``"additive"``: treatment adds ``slowing × |mean slope|`` of the enrolled
        population to every treated slope (the analytic formulas' model);
        ``"proportional"``: every treated patient's own slope is multiplied by
        ``1 - slowing`` (fast progressors gain most, and the treated arm's slope
        variance shrinks).
    seed : int, Generator or None
        Seed; each chunk of trials gets its own child seed, so the result does not
        depend on ``n_jobs`` or the joblib backend.
    n_jobs : int, default -1
        joblib workers (``-1`` = all cores); runs on a Dask cluster inside
        ``joblib.parallel_config(backend="dask")``.
    chunk_size : int, default 50
        Trials per task.
    progress : bool or None
        Progress bar per chunk (None: only on a terminal).

    Returns
    -------
    PowerResult
        With the attrition simulated (``retention``, ``dropout``, ``death_hazard``)
        and the realised fraction seen at each visit (``attrition``).

    Raises
    ------
    ModelSpecificationError
        Bad arguments or impossible marker correlations.

    Examples
    --------
    >>> d = TrialDesign(slowing=0.5)
    >>> r = simulate_power(d, 40, n_sims=20, seed=1, n_jobs=1, progress=False)
    >>> r.n_sims, 0 <= r.power <= 1
    (20, True)

    The design's retention is simulated as the analytic formula assumes it:

    >>> d = TrialDesign(retention=[1, 0.5, 0.3, 0.2, 0.1])
    >>> n = d.sample_size().n_per_arm_ceil
    >>> r = simulate_power(d, n, n_sims=200, seed=1, n_jobs=1, progress=False)
    >>> n, round(d.power_at(n).power, 3), r.retention
    (383, 0.801, (1.0, 0.5, 0.3, 0.2, 0.1))
    >>> abs(r.power - d.power_at(n).power) < 3 * r.se
    True
    >>> r.attrition["observed"].round(2).tolist()
    [1.0, 0.5, 0.3, 0.2, 0.1]
    """
    from joblib import Parallel, delayed

    e = ModelSpecificationError
    if progress not in (None, True, False):
        raise e(f"`progress` must be True, False or None; got {progress!r}.")
    if not isinstance(design, TrialDesign):
        if hasattr(design, "fe_params_") and hasattr(design, "cov_re_"):
            design = TrialDesign.from_model(design)
        else:
            raise e(
                f"`design` must be a TrialDesign or a fitted LinearMixedModel; got "
                f"{type(design).__name__}."
            )
    n_per_arm = _check_count(n_per_arm, "n_per_arm", 2, MAX_PER_ARM)
    n_sims = _check_count(n_sims, "n_sims", 1, MAX_SIMS)
    chunk_size = check_int(chunk_size, "chunk_size", low=1, error=e)
    check_n_jobs(n_jobs, error=e)
    check_choice(analysis, "analysis", ("slope", "mmrm"), error=e)
    check_choice(effect, "effect", ("additive", "proportional"), error=e)
    dropout = check_interval(
        dropout, "dropout", low=0, high=1, high_closed=False, error=e
    )
    death_hazard = check_interval(
        death_hazard, "death_hazard", low=0, high=1, high_closed=False, error=e
    )
    covariates = _check_markers(covariates)
    if enrichment is not None and not isinstance(enrichment, Enrichment):
        raise e("`enrichment` must be an Enrichment.")
    n_c = max(2, int(round(n_per_arm / design.allocation_ratio)))
    rng = as_generator(seed)
    sizes = [chunk_size] * (n_sims // chunk_size)
    if n_sims % chunk_size:
        sizes.append(n_sims % chunk_size)
    seeds = np.random.SeedSequence(int(rng.integers(0, 2**63 - 1))).spawn(len(sizes))
    started = time.perf_counter()
    delta = None
    if enrichment is not None and effect == "additive":
        # the slowing is a fraction of the enrolled population's mean slope
        delta = enriched_design(design, enrichment).delta
    spec = _Spec(
        n_t=n_per_arm,
        n_c=n_c,
        dropout=dropout,
        death_hazard=death_hazard,
        enrichment=enrichment,
        covariates=covariates,
        delta=delta,
        effect=effect,
    )
    tasks = (
        delayed(_run_chunk)(design, spec, k, s, analysis)
        for k, s in zip(sizes, seeds, strict=True)
    )
    parts = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    rows: list[dict] = []
    n_visits = len(design.visit_months)
    seen_t, seen_c = np.zeros(n_visits), np.zeros(n_visits)
    for part, part_t, part_c in progress_bar(
        parts,
        progress=progress,
        total=len(sizes),
        desc=f"simulating {n_sims} trials",
        unit="chunk",
    ):
        rows.extend(part)
        seen_t += part_t
        seen_c += part_c
    est = pd.DataFrame(rows)
    est.insert(0, "trial", np.arange(len(est)))
    p = float(est["reject"].mean())
    screened = float(est["n_screened"].sum())
    enrolled = float(est["n_patients"].sum())
    seconds = time.perf_counter() - started
    logger.info("simulated %d trials in %.1f s (power %.3f)", n_sims, seconds, p)
    attrition = pd.DataFrame(
        {
            "months": np.asarray(design.visit_months, float),
            "retention": (
                np.ones(n_visits)
                if design.retention is None
                else np.asarray(design.retention, float)
            ),
            "observed": (seen_t + seen_c) / (n_sims * (n_per_arm + n_c)),
            "observed_treatment": seen_t / (n_sims * n_per_arm),
            "observed_control": seen_c / (n_sims * n_c),
        }
    )
    return PowerResult(
        power=p,
        se=math.sqrt(p * (1 - p) / n_sims),
        n_sims=n_sims,
        n_per_arm=n_per_arm,
        n_control=n_c,
        analysis=analysis,
        screen_failure=1.0 - enrolled / screened if screened else 0.0,
        estimates=est,
        design=design,
        seconds=seconds,
        retention=design.retention,
        dropout=dropout,
        death_hazard=death_hazard,
        attrition=attrition,
    )


def enriched_design(
    design: TrialDesign,
    enrichment: Enrichment,
    *,
    n_draws: int = 400_000,
    seed: Any = 0,
) -> TrialDesign:
    """The design of the enrolled population after enrichment (moments by Monte Carlo).

    The enrolled patients' random effects have a shifted mean (a steeper mean slope
    when fast progressors are selected) and smaller variances; the slowing is kept as
    a fraction of the enrolled population's mean slope.

    Examples
    --------
    >>> dfs = BaselineMarker("delta_fs", 0.7, 0.5, corr_slope=-0.5, lognormal=True)
    >>> d = enriched_design(TrialDesign(), Enrichment(dfs, quantile=0.5))
    >>> d.mean_slope < -0.9 and d.sig2_slope < 0.36
    True
    """
    e = ModelSpecificationError
    _check_design(design)
    if not isinstance(enrichment, Enrichment):
        raise e(f"`enrichment` must be an Enrichment; got {type(enrichment).__name__}.")
    n_draws = check_int(n_draws, "n_draws", low=1000, high=MAX_DRAWS, error=e)
    g = np.array(
        [
            [design.sig2_int, design.cov_int_slope],
            [design.cov_int_slope, design.sig2_slope],
        ]
    )
    chol = np.linalg.cholesky(g + 1e-14 * np.eye(2))
    rng = as_generator(seed)
    b = rng.standard_normal((n_draws, 2)) @ chol.T
    w, resid = _marker_loadings(design, enrichment.marker)
    z = b @ w + resid * rng.standard_normal(n_draws)
    keep = (
        z >= enrichment.z_cutoff
        if enrichment.keep == "above"
        else z <= enrichment.z_cutoff
    )
    bk = b[keep]
    if len(bk) < 100:
        raise e(
            f"only {len(bk)} of {n_draws} simulated patients pass the enrichment "
            f"(pass fraction {enrichment.pass_fraction:.2e}); raise `n_draws` or "
            "choose a less extreme threshold."
        )
    mean = bk.mean(axis=0)
    cov = np.cov(bk, rowvar=False)
    return replace(
        design,
        mean_intercept=float(np.clip(design.mean_intercept + mean[0], 0, 48)),
        mean_slope=float(design.mean_slope + mean[1]),
        sig2_int=float(cov[0, 0]),
        sig2_slope=float(cov[1, 1]),
        cov_int_slope=float(cov[0, 1]),
    )


def adjusted_design(
    design: TrialDesign, covariates: Sequence[BaselineMarker]
) -> TrialDesign:
    """The design after adjusting for baseline markers (× time) in the analysis.

    Conditioning on jointly normal markers leaves the random effects with the
    conditional covariance ``G - Cov(b, m) Var(m)^-1 Cov(m, b)``, which is what the
    adjusted analysis sees (exact for normal markers; lognormal markers are adjusted
    on their normal scores here, approximately in the simulated analysis).

    Examples
    --------
    >>> fa = BaselineMarker("fa_cst_left", 0.5, 0.03, corr_slope=0.5)
    >>> round(adjusted_design(TrialDesign(), [fa]).sig2_slope, 4)
    0.27
    """
    _check_design(design)
    covariates = _check_markers(covariates)
    g = np.array(
        [
            [design.sig2_int, design.cov_int_slope],
            [design.cov_int_slope, design.sig2_slope],
        ]
    )
    if not covariates:
        return design
    # covariance of (b, markers): cov(b, m_k) = G w_k, var(m) = W' G W + diag(r²)
    ws, rs = zip(*(_marker_loadings(design, m) for m in covariates), strict=True)
    wmat = np.column_stack(ws)
    cbm = g @ wmat
    vm = wmat.T @ g @ wmat + np.diag(np.square(rs))
    cond = g - cbm @ np.linalg.solve(vm, cbm.T)
    return replace(
        design,
        sig2_int=float(cond[0, 0]),
        sig2_slope=float(max(cond[1, 1], 0)),
        cov_int_slope=float(cond[0, 1]),
    )


def power_curve(
    design: TrialDesign,
    n_per_arm: Sequence[int] | None = None,
    *,
    slowing: Sequence[float] | None = None,
    method: Literal["edland", "diggle", "liu_liang"] = "edland",
    simulate: bool = False,
    n_sims: int = 200,
    analysis: Literal["slope", "mmrm"] = "slope",
    seed: Any = None,
    n_jobs: int = 1,
    progress: bool | None = None,
    **simulate_kwargs: Any,
) -> pd.DataFrame:
    """Power over a grid of sizes and slowings, analytic and optionally simulated.

    Parameters
    ----------
    design : TrialDesign
    n_per_arm : sequence of int, optional
        Treated patients per point (default: :meth:`TrialDesign.power_curve`'s grid).
    slowing : sequence of float, optional
        Slowings (default: the design's).
    method : {"edland", "diggle", "liu_liang"}
        Analytic formula.
    simulate : bool, default False
        Also estimate each point's power by :func:`simulate_power` (``n_sims``
        trials losing patients as ``design.retention`` says, the attrition of the
        analytic curve; each point gets its own child seed).
    n_sims, analysis, seed, n_jobs, progress, **simulate_kwargs
        Passed to :func:`simulate_power` (``dropout``, ``death_hazard`` add
        informative losses on top of the retention; ``enrichment``, ...).

    Returns
    -------
    pandas.DataFrame
        ``n_per_arm, slowing, delta, power`` (analytic), plus ``simulated_power`` and
        ``simulated_se`` when ``simulate=True``.

    Examples
    --------
    >>> c = power_curve(TrialDesign(), [60, 126], simulate=True, n_sims=20, seed=1,
    ...                 progress=False)
    >>> list(c.columns)
    ['n_per_arm', 'slowing', 'delta', 'power', 'simulated_power', 'simulated_se']
    """
    e = ModelSpecificationError
    _check_design(design)
    sizes = None
    if n_per_arm is not None:
        sizes = check_numbers(n_per_arm, "n_per_arm", low=0, low_closed=False, error=e)
    slowings = None
    if slowing is not None:
        slowings = check_numbers(slowing, "slowing", error=e)
    check_choice(simulate, "simulate", (True, False), error=e)
    n_sims = _check_count(n_sims, "n_sims", 1, MAX_SIMS)
    check_choice(analysis, "analysis", ("slope", "mmrm"), error=e)
    unknown = sorted(set(simulate_kwargs) - _SIMULATE_OPTIONS)
    if unknown:
        raise e(
            f"unknown option(s) {', '.join(map(repr, unknown))} for simulate_power; "
            f"valid: {', '.join(sorted(_SIMULATE_OPTIONS))}."
        )
    curve = design.power_curve(sizes, slowing=slowings, method=method)
    if not simulate:
        return curve
    rng = as_generator(seed)
    sims, ses = [], []
    for row in curve.itertuples(index=False):
        d = replace(design, slowing=float(row.slowing))
        r = simulate_power(
            d,
            int(round(row.n_per_arm)),
            n_sims=n_sims,
            analysis=analysis,
            seed=int(rng.integers(0, 2**31 - 1)),
            n_jobs=n_jobs,
            progress=progress,
            **simulate_kwargs,
        )
        sims.append(r.power)
        ses.append(r.se)
    return curve.assign(simulated_power=sims, simulated_se=ses)
