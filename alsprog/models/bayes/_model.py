"""Bayesian hierarchical ALSFRS-R trajectory models sampled with PyMC through JAX.

Owns: :class:`BayesianTrajectoryModel` (linear and sigmoid/D50 kinds): its parameters
and their checks, building the PyMC model of a fit and running the fit (sampler, exact
per-subject effects of the marginalised linear model, convergence gate), predictions,
subject trajectories, LOO and its part of the model contract.
Leaves: the formula -> design arrays to :mod:`~alsprog.models.bayes._design`, the NUTS
call, exact effect draws and diagnostics to :mod:`~alsprog.models.bayes._sampling`,
the posterior math on new rows to :mod:`~alsprog.models.bayes._posterior`, the
conditional forecast of new patients to :mod:`~alsprog.models.bayes._forecast`, the
summary tables to :mod:`~alsprog.models.bayes._summary`, the netCDF file to
:mod:`~alsprog.models.bayes._io`, the linear numerics and graph to
:mod:`~alsprog.models.bayes._linear`, the sigmoid graph to
:mod:`~alsprog.models.bayes._sigmoid`, priors to :mod:`~alsprog.models.bayes._priors`.
"""

from __future__ import annotations

import os
import time as _time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._formula_text import formula_context
from alsprog._random import as_generator, child_seed
from alsprog._validation import check_choice, check_int, check_interval, check_is_fitted
from alsprog.errors import (
    ModelSpecificationError,
    not_converged,
)
from alsprog.models._contract import (
    DEFAULT_INTERVAL,
    DEFAULT_LEVEL,
    DEFAULT_TRAJECTORY_LEVEL,
    ForecastRows,
    TrajectoryModel,
    outcome_bounds,
)
from alsprog.models._summary import Summary
from alsprog.models.bayes._design import (
    BayesDesign,
    design_coords,
    kind_defaults,
    prepare_design,
    subject_first,
)
from alsprog.models.bayes._io import attach_data, load_model, save_model
from alsprog.models.bayes._laplace import LaplaceFit
from alsprog.models.bayes._posterior import (
    noise,
    pointwise_loglik,
    subject_loo,
    table_rows,
)
from alsprog.models.bayes._priors import (
    Prior,
    default_priors,
    merge_priors,
    outcome_defaults,
)
from alsprog.models.bayes._sampling import (
    ESS_BULK_MIN,
    PARAM_RANGES,
    RHAT_MAX,
    convergence_failure,
    diagnose,
    draw_subject_effects,
    sample_nuts,
)
from alsprog.models.bayes._sigmoid import (
    laplace_start,
    sigmoid_laplace,
    sigmoid_mean,
)
from alsprog.models.bayes._summary import band, summarise_posterior

if TYPE_CHECKING:
    from alsprog.data._history import ModelColumns, Prepared

__all__ = ["BayesianTrajectoryModel", "Prior"]


class BayesianTrajectoryModel(TrajectoryModel):
    """Bayesian hierarchical ALSFRS-R trajectory model (linear or sigmoid D50).

    Parameters
    ----------
    kind : {"linear", "sigmoid"}, default "linear"
        ``"linear"``: ``y = X beta + b_0i + b_1i t + e`` with a correlated random
        intercept and slope on ``time`` per subject (LKJ prior on their correlation).
        ``"sigmoid"``: ``y = 48 / (1 + exp((t - D50_i) / dx_i)) + e`` on months since
        onset (``docs/domain.md`` §3) with ``log D50_i`` and ``log dx_i`` linear in the
        formula's covariates plus correlated per-subject effects; bounded to 0-48.
    formula : str, optional
        lme4-style fixed part, e.g. ``"alsfrs_r_total ~ months * onset_site +
        age_at_onset"`` (default ``"alsfrs_r_total ~ months"`` for linear,
        ``"alsfrs_r_total ~ 1"`` for sigmoid).  For linear the random intercept and
        slope ``(time | subject)`` are implied; an explicit ``(months | subject_id)``
        term is accepted.  For sigmoid the right-hand side lists the covariates of
        ``log D50`` and ``log dx`` (read at each subject's first visit; they should be
        constant within subject) and must not contain the time column.
    likelihood : {"normal", "student_t"}, default "normal"
        Residual distribution.  ``student_t`` adds ``nu`` (prior ``Gamma(2, 0.1)``).
    priors : dict of str to Prior, optional
        Priors merged over :meth:`default_priors` in ``fit``; keys also include
        per-term forms such as ``"beta[age_at_onset]"`` (linear) or
        ``"d50_beta[onset_site[T.spinal]]"`` (sigmoid).  The defaults are on the
        ALSFRS-R scale; a linear model of another outcome the data dictionary
        bounds (``fvc_percent_predicted``, an imaging feature) gets them scaled to
        its data as rstanarm scales its defaults (see
        :func:`~alsprog.models.bayes._priors.outcome_defaults`).
    sampler : {"numpyro", "nutpie", "pymc"}, default "numpyro"
        NUTS implementation: numpyro's on PyMC's JAX log-density (what
        ``pm.sample(nuts_sampler="numpyro")`` runs, called directly; chains in
        parallel), nutpie, or PyMC's own.  ``"blackjax"`` is refused: PyMC 5.28's
        bridge is broken with blackjax 1.7.1.  PyMC's own compiles through
        PyTensor's C backend, which needs a system BLAS (pip installs none): without
        one it samples 2-3x slower and says so; numpyro is not affected.
    chains, draws, tune : int, default 4, 1000, 1000
        Markov chains, kept draws and tuning draws per chain.
    seed : int, numpy.random.Generator or None
        Seeds the sampler (an integer drawn from it) and the exact subject-effect
        draws; the same seed gives the same posterior.
    marginalize : bool or None, default None
        Linear model with a normal likelihood only: integrate the per-subject effects
        out exactly, sample the population parameters alone, then draw
        ``subject_effects`` from their exact conditional normal.  ``None`` does so
        whenever possible; ``False`` samples the full non-centred model (to check they
        agree, or for a Student-t likelihood, where it is the only option).
    time : str, optional
        Time column (default ``"months"`` for linear, ``"months_since_onset"`` for
        sigmoid).
    subject : str, default "subject_id"
        Grouping column.
    target_accept : float, default 0.8
        NUTS target acceptance rate in (0, 1); raise it (0.95) after divergences.
    strict : bool, default False
        Raise :class:`~alsprog.errors.ConvergenceError` instead of warning when the
        convergence gate fails.
    progress : bool or None, default None
        Sampler progress bar: ``None`` only when stderr is a terminal.

    Attributes
    ----------
    idata_ : arviz.InferenceData
        Groups ``posterior`` (``beta`` with a ``term`` coordinate - plus ``effect`` for
        sigmoid -, ``subject_effects`` with ``subject_id`` and ``effect`` coordinates,
        ``subject_sd`` per effect, ``subject_corr``, ``sigma``, ``nu`` for Student-t),
        ``sample_stats``, ``observed_data``, ``log_likelihood`` (one value per
        observation, conditional on the subject's effects) and ``constant_data`` (the
        model's columns, so a saved model can be rebuilt).
    diagnostics_ : dict
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail`` (over the population
        parameters ``beta``, ``subject_sd``, ``subject_corr``, ``sigma``, ``nu``),
        ``n_divergent`` and ``min_bfmi``.
    converged_ : bool
        Whether the convergence gate passed.
    priors_ : dict of str to Prior
        The priors used (defaults merged with ``priors``).
    terms_ : list of str
        The formula's fixed-effect term names.
    marginalized_ : bool
        Whether the subject effects were integrated out while sampling.
    n_obs_, n_subjects_, n_dropped_ : int
        Rows used, subjects, rows dropped for missing values.
    sampling_seconds_ : float
        Wall time of the sampler call (compilation included).
    columns_ : ModelColumns
        The outcome, subject, time and covariate columns the fitted model reads
        (read-only), which forecasts, figures and backtests use.

    Warns
    -----
    ConvergenceWarning
        When any R-hat > 1.01, any bulk ESS < 400 or any divergence occurs.
    DataWarning
        When rows with missing model values are dropped.

    See Also
    --------
    alsprog.models.LinearMixedModel : REML/ML fit of the same linear model.

    Notes
    -----
    *Marginal linear model.* With ``Z_i = [1, t_i]`` the subject effects integrate
    out to ``y_i ~ N(X_i beta, sigma^2 I + Z_i Sigma Z_i')``; its log-density needs only
    per-subject sums of cross-products and 2 x 2 algebra (see
    :mod:`alsprog.models.bayes._linear`), so the sampler sees ``p + 4`` parameters
    instead of ``p + 4 + 2G``; numpyro then uses a dense mass matrix.  Paired with
    each posterior draw, ``b_i ~ N(M_i^{-1} Z_i'r_i, sigma^2 M_i^{-1})`` gives exact
    joint posterior draws.
    *Priors.* The intercept prior applies at the sample means of the other columns
    (as in brms); see :meth:`default_priors` for the values and their sources.
    *LOO.* ``loo()`` is by observation (PSIS on the conditional pointwise
    log-likelihood); ``loo(by="subject")`` leaves out whole subjects using their
    marginal log-likelihood (exact Gaussian blocks for the linear normal model,
    adaptive Gauss-Hermite quadrature otherwise); ``kfold()`` refits K times.
    *Sigmoid sampling.* A Laplace-EM fit of the same model (per-patient modes and
    curvature, first-order as ``nlme``; well under a second for 1,000 patients)
    starts the chains and shapes the geometry: each patient's ``(log D50, log dx)``
    is an exact, data-informed affine map of the sampled variables in the curve's
    value-and-slope coordinates at the patient's mean visit time
    (:func:`~alsprog.models.bayes._sigmoid.whitened_effects`), non-centred where the
    visits say little and centred where they say much.  The posterior is that of
    the centred model; on 1,000 simulated patients (2 chains x 1,000 draws) the
    minimum bulk ESS of the population parameters is about 2,000 (107 with plain
    non-centred effects) and R-hat 1.004.  A new patient's forecast draws their
    effects given the history by importance resampling from a Laplace proposal.
    *JAX compile cache.* numpyro compiles the sampler with XLA on each fit; set
    ``jax.config.update("jax_compilation_cache_dir", path)`` to reuse compilations
    across fits of the same data shape.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alsprog.models.bayes._model import BayesianTrajectoryModel
    >>> m = BayesianTrajectoryModel("linear", formula="alsfrs_r_total ~ months",
    ...                             chains=2, draws=500, seed=1)
    >>> m.kind, m.draws
    ('linear', 500)
    >>> BayesianTrajectoryModel.default_priors()["sd_slope"]
    Prior('HalfNormal', sigma=1.5)
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"subject_id": np.repeat([f"P{i}" for i in range(30)], 4),
    ...                    "months": np.tile([0.0, 3.0, 6.0, 9.0], 30)})
    >>> df["alsfrs_r_total"] = 38 - 0.9 * df["months"] + rng.normal(0, 2, len(df))
    >>> m.fit(df).summary()  # doctest: +SKIP
    """

    #: The suffix of the file :meth:`save` writes (netCDF-4).
    file_suffix = ".nc"
    report_level = 0.9  # the report has always shown 90 % credible intervals
    description = "Bayesian {kind}, {chains} chains x {draws} draws"
    param_ranges = PARAM_RANGES

    @classmethod
    def data_defaults(cls, params: Any, *, outcome: str, time: str) -> dict[str, Any]:
        """The kind's time and fixed part where unset (:func:`.kind_defaults`)."""
        return kind_defaults(params, outcome=outcome, time=time)

    def __init__(
        self,
        kind: Literal["linear", "sigmoid"] = "linear",
        *,
        formula: str | None = None,
        likelihood: Literal["normal", "student_t"] = "normal",
        priors: dict[str, Prior] | None = None,
        sampler: Literal["numpyro", "nutpie", "pymc"] = "numpyro",
        chains: int = 4,
        draws: int = 1000,
        tune: int = 1000,
        seed: Any = None,
        marginalize: bool | None = None,
        time: str | None = None,
        subject: str = "subject_id",
        target_accept: float = 0.8,
        strict: bool = False,
        progress: bool | None = None,
    ) -> None:
        self.kind = kind
        self.formula = formula
        self.likelihood = likelihood
        self.priors = priors
        self.sampler = sampler
        self.chains = chains
        self.draws = draws
        self.tune = tune
        self.seed = seed
        self.marginalize = marginalize
        self.time = time
        self.subject = subject
        self.target_accept = target_accept
        self.strict = strict
        self.progress = progress

    # ------------------------------------------------------------------ priors
    @classmethod
    def default_priors(
        cls,
        kind: Literal["linear", "sigmoid"] = "linear",
        likelihood: Literal["normal", "student_t"] = "normal",
    ) -> dict[str, Prior]:
        """The default priors of a model kind (weakly informative, ALSFRS-R scale).

        Linear (ALSFRS-R points, months; ``docs/domain.md`` §2, §7):

        - ``intercept``: Normal(36, 12), the outcome at the covariates' means;
        - ``slope``: Normal(-1, 1), the time term (reported means -0.99 to -1.66);
        - ``beta``: Normal(0, 5), every other term (``beta[term]`` per term);
        - ``sd_intercept``: HalfNormal(10); ``sd_slope``: HalfNormal(1.5) (between-
          patient slope SD approx. 0.5-0.8);
        - ``corr``: LKJ(2) on the intercept-slope correlation;
        - ``sigma``: HalfNormal(5) (residual SD approx. 1.5-2.5).

        Sigmoid (log months; ``docs/domain.md`` §3): ``d50_intercept`` Normal(log 30, 0.5),
        ``dx_intercept`` Normal(log 10, 0.5), ``d50_beta``/``dx_beta`` Normal(0, 0.5),
        ``sd_d50``/``sd_dx`` HalfNormal(0.5), ``corr`` LKJ(2), ``sigma``
        HalfNormal(5).  A Student-t likelihood adds ``nu``: Gamma(2, 0.1).

        Parameters
        ----------
        kind : {"linear", "sigmoid"}, default "linear"
        likelihood : {"normal", "student_t"}, default "normal"

        Returns
        -------
        dict of str to Prior

        Examples
        --------
        >>> BayesianTrajectoryModel.default_priors("sigmoid")["sd_dx"]
        Prior('HalfNormal', sigma=0.5)
        """
        return default_priors(kind, likelihood)

    # --------------------------------------------------------------- checking
    def _check_params(self) -> bool:
        if self.sampler == "blackjax":
            raise ModelSpecificationError(
                "sampler='blackjax' is not supported: PyMC 5.28's blackjax bridge is "
                "broken with blackjax 1.7.1; use 'numpyro' (also JAX) or 'nutpie'."
            )
        self.check_params()
        can = self.kind == "linear" and self.likelihood == "normal"
        if self.marginalize and not can:
            raise ModelSpecificationError(
                "marginalize=True needs kind='linear' with likelihood='normal' (only "
                f"then is the marginal likelihood Gaussian); got kind={self.kind!r}, "
                f"likelihood={self.likelihood!r}. Use marginalize=None or False."
            )
        return can if self.marginalize is None else bool(self.marginalize)

    def _merged_priors(self, d: BayesDesign) -> dict[str, Prior]:
        defaults = outcome_defaults(self.kind, self.likelihood, d.outcome, d.y, d.t)
        return merge_priors(
            self.kind, self.likelihood, self.priors, d.fe_names, defaults=defaults
        )

    def _prepare(self, df: pd.DataFrame) -> BayesDesign:
        return prepare_design(
            df,
            kind=self.kind,
            formula=self.formula,
            time=self.time,
            subject=self.subject,
        )

    def _build(
        self,
        d: BayesDesign,
        priors: dict[str, Prior],
        marginal: bool,
        laplace: LaplaceFit | None = None,
    ) -> Any:
        from alsprog.models.bayes._linear import build_linear_model
        from alsprog.models.bayes._sigmoid import build_sigmoid_model

        coords = design_coords(d, self.kind)
        if self.kind == "linear":
            return build_linear_model(
                y=d.y,
                X=d.X,
                t=d.t,
                groups=d.groups,
                coords=coords,
                priors=priors,
                outcome=d.outcome,
                time=d.time,
                marginal=marginal,
                likelihood=self.likelihood,
            )
        return build_sigmoid_model(
            y=d.y,
            Xs=d.X[d.first_rows],
            t=d.t,
            groups=d.groups,
            coords=coords,
            priors=priors,
            outcome=d.outcome,
            likelihood=self.likelihood,
            laplace=laplace,
        )

    def _population_vars(self) -> list[str]:
        names = ["beta", "subject_sd", "subject_corr", "sigma"]
        return [*names, "nu"] if self.likelihood == "student_t" else names

    # -------------------------------------------------------------------- fit
    def fit(self, df: pd.DataFrame) -> BayesianTrajectoryModel:
        """Sample the posterior of the model given long-format data.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per visit with the formula's columns, ``subject`` and ``time``;
            not modified.  Rows with missing model values are dropped.

        Returns
        -------
        BayesianTrajectoryModel
            ``self``, fitted.

        Raises
        ------
        ModelSpecificationError
            Bad formula, unknown column, unknown prior key, impossible option.
        ConvergenceError
            With ``strict=True``, when the convergence gate fails.

        Warns
        -----
        ConvergenceWarning
            R-hat > 1.01, bulk ESS < 400 or divergences (``strict=False``).
        DataWarning
            Rows dropped for missing values.
        """
        for attr in [
            k for k in vars(self) if k.endswith("_") and not k.startswith("_")
        ]:
            delattr(self, attr)
        marginal = self._check_params()
        rng = as_generator(self.seed)
        design = self._prepare(df)
        priors = self._merged_priors(design)
        laplace = sigmoid_laplace(design, priors) if self.kind == "sigmoid" else None
        model = self._build(design, priors, marginal, laplace)
        var_names = self._population_vars()
        if not marginal:
            var_names.append("subject_effects")
        start = _time.perf_counter()
        idata = sample_nuts(
            model,
            sampler=self.sampler,
            draws=self.draws,
            tune=self.tune,
            chains=self.chains,
            target_accept=self.target_accept,
            seed=child_seed(rng),
            progress=self.progress,
            dense=marginal,
            var_names=var_names,
            start=None
            if laplace is None
            else laplace_start(
                laplace, list(design.fe_names), design.X[design.first_rows]
            ),
        )
        idata.posterior = idata.posterior[var_names]
        if marginal:
            idata.posterior["subject_effects"] = draw_subject_effects(
                idata, design, rng
            )
        self.sampling_seconds_ = _time.perf_counter() - start
        self._set_fitted(idata, design, priors, marginal)
        attach_data(idata, design, pointwise_loglik(self))
        self.idata_ = idata
        self._gate()
        return self

    def _set_fitted(
        self, idata: Any, d: BayesDesign, priors: dict[str, Prior], marginal: bool
    ) -> None:
        self._design = d
        self.priors_ = priors
        self.terms_ = list(d.fe_names)
        self.marginalized_ = bool(marginal)
        self.n_obs_ = len(d.y)
        self.n_subjects_ = len(d.subject_ids)
        self.n_dropped_ = int(d.mixed.n_dropped)
        self.outcome_bounds_ = outcome_bounds(d.outcome)
        self._posterior = idata.posterior

    def _gate(self) -> None:
        self.diagnostics_ = diagnose(self.idata_, self._population_vars())
        failure = convergence_failure(
            self.diagnostics_,
            rhat_max=RHAT_MAX,
            ess_bulk_min=ESS_BULK_MIN,
            suggest_marginal=not self.marginalized_ and self.kind == "linear",
        )
        self.converged_ = failure is None
        if failure is not None:
            msg = (
                f"{type(self).__name__} ({self.kind}) may not have converged: "
                f"{failure}."
            )
            not_converged(msg, strict=bool(self.strict), stacklevel=3)

    @property
    def columns_(self) -> ModelColumns:
        """The columns the fitted model reads (outcome, subject, time, covariates)."""
        from alsprog.data._history import ModelColumns

        check_is_fitted(self, ["idata_"])
        d = self._design
        return ModelColumns.of(d.outcome, d.subject, d.time, d.mixed.variables)

    def required_columns(self) -> ModelColumns:
        """The outcome, subject and time columns the model will read (before fit).

        Examples
        --------
        >>> c = BayesianTrajectoryModel("sigmoid").required_columns()
        >>> c.outcome, c.subject, c.time
        ('alsfrs_r_total', 'subject_id', 'months_since_onset')
        """
        from alsprog.data._history import ModelColumns
        from alsprog.models._formula import parse_mixed_formula
        from alsprog.models.bayes._design import DEFAULT_FORMULA, DEFAULT_TIME

        kind = self.kind if self.kind in DEFAULT_FORMULA else "linear"
        formula = self.formula if self.formula is not None else DEFAULT_FORMULA[kind]
        time = str(self.time if self.time is not None else DEFAULT_TIME[kind])
        outcome = parse_mixed_formula(formula).outcome
        return ModelColumns.of(outcome, str(self.subject), time, [time])

    def forecast_rows(
        self,
        history: Prepared,
        *,
        level: float,
        n_samples: int | None = None,
        rng: np.random.Generator,
        given_alive: bool = True,
    ) -> ForecastRows:
        """New patients' posterior predictive given their history (no refit).

        Per posterior draw (``n_samples`` of them, 1000 by default, thinned
        evenly), the exact conditional normal of the subject effects for the
        linear model with a normal likelihood, adaptive Gauss-Hermite quadrature
        over them otherwise; clipped at :attr:`outcome_bounds_` and summarised.
        ``given_alive`` is ignored.  See :meth:`TrajectoryModel.forecast_rows
        <alsprog.models._contract.TrajectoryModel.forecast_rows>`.
        """
        from alsprog.models.bayes._forecast import bayes_forecast_rows

        check_is_fitted(self, ["idata_"])
        return bayes_forecast_rows(
            self, history, level=level, n_samples=n_samples, rng=rng
        )

    # ------------------------------------------------------------ posterior math
    def _draws(self, name: str) -> npt.NDArray[np.float64]:
        """Posterior draws of ``name`` with chains and draws flattened first."""
        v = self._posterior[name]
        return np.asarray(v.values).reshape(-1, *v.shape[2:])

    def _mean_draws(
        self,
        X: npt.NDArray[np.float64],
        t: npt.NDArray[np.float64],
        b: npt.NDArray[np.float64],
        draws: slice = slice(None),
    ) -> npt.NDArray[np.float64]:
        """Mean curve per draw for rows with design ``X``, time ``t``, effects ``b``.

        ``b`` has shape (S, rows, 2) for the posterior draws selected by ``draws``;
        returns (S, rows).
        """
        beta = self._draws("beta")[draws]
        if self.kind == "linear":
            return beta @ X.T + b[..., 0] + b[..., 1] * t
        lin = np.einsum("rp,skp->srk", X, beta) + b
        return sigmoid_mean(t, np.exp(lin[..., 0]), np.exp(lin[..., 1]))

    # ------------------------------------------------------------ public API
    def predict(self, df: pd.DataFrame, *, seed: Any = None) -> pd.Series:
        """The point prediction at each row of ``df`` (a Series ``predicted``, NaN
        where a model value is missing): the posterior mean of the mean curve,
        :meth:`predict_interval`'s ``mean``; new subjects' effects are drawn from
        the population (``seed``)."""
        band = self.predict_interval(df, interval="confidence", seed=seed)
        return band["mean"].rename("predicted")

    def predict_interval(
        self,
        df: pd.DataFrame,
        *,
        level: float = DEFAULT_TRAJECTORY_LEVEL,
        interval: Literal["confidence", "prediction"] = DEFAULT_INTERVAL,
        seed: Any = None,
    ) -> pd.DataFrame:
        """Posterior mean and central band for each row of ``df``.

        Subjects seen in ``fit`` use their posterior effects; new subjects get
        effects drawn from the population distribution.

        Parameters
        ----------
        df : pandas.DataFrame
            Rows with the model's columns (the outcome is not needed).
        level : float, default 0.9
            Central interval coverage in (0, 1).
        interval : {"confidence", "prediction"}, default "confidence"
            ``"confidence"``: the credible band of the mean curve (as
            :meth:`subject_trajectories`); ``"prediction"``: the posterior
            predictive band of a new observation (residual noise added).
        seed : int, numpy.random.Generator or None
            For the new subjects' effects and the noise.

        Returns
        -------
        pandas.DataFrame
            Index of ``df``; columns ``mean``, ``lower``, ``upper`` (NaN on rows with
            missing model values).
        """
        check_is_fitted(self, ["idata_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        check_choice(interval, "interval", ("confidence", "prediction"))
        rng = as_generator(seed)
        ok, X, t, b = table_rows(self, df, rng)
        if self.kind == "sigmoid":
            X = subject_first(X, df.loc[ok, self._design.subject].astype(str))
        draws = self._mean_draws(X, t, b)
        if interval == "prediction":
            draws = draws + noise(self, draws.shape, rng)
        out = pd.DataFrame(np.nan, index=df.index, columns=["mean", "lower", "upper"])
        out.loc[ok] = band(draws, level)
        return out

    def subject_trajectories(
        self,
        times: Any,
        *,
        subjects: Any = None,
        level: float = 0.9,
        interval: Literal["confidence", "prediction"] = "confidence",
        seed: Any = None,
    ) -> pd.DataFrame:
        """Posterior mean curve and credible band per subject over ``times``.

        Covariates are each subject's values at its first visit in the fitted data.

        Parameters
        ----------
        times : array-like of float
            Values of the time column (months, or months since onset for sigmoid).
        subjects : list of str, optional
            Subjects to include (default all fitted subjects).
        level : float, default 0.9
            Credible band coverage in (0, 1).
        interval : {"confidence", "prediction"}, default "confidence"
            ``"confidence"``: credible band of the subject's mean curve;
            ``"prediction"``: posterior predictive band of a new observation (each
            draw's mean plus its residual noise), as the mixed model's
            ``interval`` names them.
        seed : int, numpy.random.Generator or None
            For the residual noise of ``interval="prediction"``.

        Returns
        -------
        pandas.DataFrame
            Columns ``subject``, ``time`` (named as the model's columns), ``mean``,
            ``lower``, ``upper``; one row per subject and time.
        """
        check_is_fitted(self, ["idata_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        check_choice(interval, "interval", ("confidence", "prediction"))
        rng = as_generator(seed) if interval == "prediction" else None
        d = self._design
        times = np.atleast_1d(np.asarray(times, dtype=float))
        if subjects is None:
            sel = np.arange(len(d.subject_ids))
        else:
            subjects = [str(s) for s in np.atleast_1d(subjects)]
            sel = pd.Index(d.subject_ids).get_indexer(subjects)
            if (sel < 0).any():
                bad = [s for s, i in zip(subjects, sel, strict=True) if i < 0]
                raise ModelSpecificationError(
                    f"Subject(s) {', '.join(map(repr, bad[:5]))} were not in the fitted "
                    "data; use predict() for new subjects."
                )
        b_all = self._draws("subject_effects")
        parts = []
        for chunk in np.array_split(sel, max(1, len(sel) // 100)):
            rows = d.frame.iloc[np.repeat(d.first_rows[chunk], len(times))].copy()
            rows[d.time] = np.tile(times, len(chunk))
            X = np.asarray(
                d.mixed.fixed_spec.get_model_matrix(rows, context=formula_context()),
                dtype=float,
            )
            t = rows[d.time].to_numpy(dtype=float)
            b = b_all[:, np.repeat(chunk, len(times))]
            draws = self._mean_draws(X, t, b)
            if rng is not None:
                draws = draws + noise(self, draws.shape, rng)
            band_ = band(draws, level)
            parts.append(
                pd.DataFrame(
                    {
                        d.subject: np.repeat(
                            np.asarray(d.subject_ids)[chunk], len(times)
                        ),
                        d.time: t,
                        "mean": band_[:, 0],
                        "lower": band_[:, 1],
                        "upper": band_[:, 2],
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)

    def loo(self, *, by: Literal["observation", "subject"] = "observation") -> Any:
        """PSIS leave-one-out cross-validation (ArviZ ``ELPDData``).

        Parameters
        ----------
        by : {"observation", "subject"}, default "observation"
            ``"observation"`` leaves out one visit at a time using the pointwise
            log-likelihood conditional on the subject effects (the unit to compare
            linear and sigmoid models on).  ``"subject"`` leaves out whole subjects
            using each subject's marginal log-likelihood per draw, its effects
            integrated out: exact Gaussian blocks for the linear normal model,
            adaptive Gauss-Hermite quadrature over the two effects otherwise
            (:func:`~alsprog.models.bayes._posterior.marginal_loglik_subjects`).

        Returns
        -------
        arviz.ELPDData

        See Also
        --------
        kfold : exact K-fold by subject, for when PSIS's Pareto k are high.
        """
        import arviz as az

        check_is_fitted(self, ["idata_"])
        check_choice(by, "by", ("observation", "subject"))
        if by == "observation":
            return az.loo(self.idata_, pointwise=True)
        return subject_loo(self)

    def kfold(
        self, data: pd.DataFrame, *, k: int = 5, seed: Any = None, n_jobs: int = 1
    ) -> Any:
        """Exact K-fold cross-validation by subject (refits copies; ``self`` is
        not changed).

        Each fold's subjects are held out, a copy of the model is fitted on the
        others and the held-out subjects are scored by their posterior predictive
        marginal density; see
        :func:`~alsprog.models.bayes._kfold.kfold_by_subject`.

        Parameters
        ----------
        data : pandas.DataFrame
            Long-format data (normally the data of ``fit``).
        k : int, default 5
            Number of folds, 2 to the number of subjects.
        seed : int, numpy.random.Generator or None
            Seeds the split and the refits.
        n_jobs : int, default 1
            joblib workers for the refits.

        Returns
        -------
        arviz.ELPDData
            ``az.loo``'s layout (``az.compare`` takes it) with ``method="kfold"``.
        """
        from alsprog.models.bayes._kfold import kfold_by_subject

        return kfold_by_subject(self, data, k=k, seed=seed, n_jobs=n_jobs)

    def summary(self, level: float = DEFAULT_LEVEL) -> Summary:
        """Posterior summary: fixed effects, subject-effect SDs and correlation, noise.

        Parameters
        ----------
        level : float, default 0.95
            Equal-tailed credible interval coverage in (0, 1).

        Returns
        -------
        Summary
            Tables ``fixed``, ``random`` and ``residual`` with columns ``mean``,
            ``sd``, ``ci_lower``, ``ci_upper``, ``r_hat``, ``ess_bulk``,
            ``ess_tail``.
        """
        check_is_fitted(self, ["idata_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        return summarise_posterior(self, level)

    def prior_predictive(
        self, df: pd.DataFrame, *, draws: int = 500, seed: Any = None
    ) -> Any:
        """Prior predictive draws of the outcome for the rows of ``df``.

        Uses the full (non-marginal) model with the merged priors; the model does
        not need to be fitted and is not changed.

        Parameters
        ----------
        df : pandas.DataFrame
            Long-format data (the design and subjects; the outcome's values are
            used only as ``observed_data`` for comparison).
        draws : int, default 500
            Number of prior draws (>= 1).
        seed : int, numpy.random.Generator or None

        Returns
        -------
        arviz.InferenceData
            Groups ``prior``, ``prior_predictive`` (the outcome per ``obs``) and
            ``observed_data``.
        """
        import pymc as pm

        self._check_params()
        draws = check_int(draws, "draws", low=1)
        rng = as_generator(seed)
        design = self._prepare(df)
        priors = self._merged_priors(design)
        model = self._build(design, priors, marginal=False)
        with model:
            return pm.sample_prior_predictive(
                draws=draws,
                random_seed=child_seed(rng),
                var_names=[*self._population_vars(), design.outcome],
            )

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to one netCDF file (InferenceData + JSON config).

        The config ``{"model", "version", "params"}`` sits in the file's attrs under
        ``"alsprog"``; priors are stored as dicts.  The write is atomic.

        Parameters
        ----------
        path : str or os.PathLike
            Output file, conventionally ``*.nc``.
        """
        check_is_fitted(self, ["idata_"])
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BayesianTrajectoryModel:
        """Rebuild a model written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        BayesianTrajectoryModel
            Fitted, with the saved draws.

        Raises
        ------
        SavedModelError
            Missing file or a file of another kind (named: "it is a zip archive
            (.npz) ..."), no alsprog config, a different class or alsprog version, a
            missing group, variable or dimension, sizes that disagree with the saved
            chains and draws or with each other, a parameter, prior or formula that
            ``fit`` would refuse, or draws that are not finite (the message names
            the file and the field).  The whole file is checked before anything is
            built from it.
        """
        return load_model(cls, path)
