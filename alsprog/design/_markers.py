"""Baseline markers of progression: trial enrichment and covariate adjustment.

Owns: :class:`BaselineMarker` (a baseline variable correlated with the patient's random
intercept and slope), :class:`Enrichment` (enrol only patients whose marker passes a
threshold), the regression of a marker's normal score on the random effects, and the
design these imply: :func:`enriched_design` (the enrolled population's moments) and
:func:`adjusted_design` (the random effects left after adjusting for the markers).
Leaves: simulating and analysing trials with markers to
:mod:`alsprog.design._simulated_trials`, power to :mod:`alsprog.design._simulate`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from alsprog._random import as_generator
from alsprog._validation import check_choice, check_int, check_interval
from alsprog.design._trial import TrialDesign
from alsprog.errors import ModelSpecificationError
from alsprog.models._contract import outcome_bounds

__all__ = ["BaselineMarker", "Enrichment", "adjusted_design", "enriched_design"]

Array = npt.NDArray[np.float64]
#: Most Monte Carlo draws :func:`enriched_design` takes.
MAX_DRAWS = 100_000_000


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
        mean_intercept=float(
            np.clip(design.mean_intercept + mean[0], *outcome_bounds(design.outcome))
        ),
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
