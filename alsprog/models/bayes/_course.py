"""A multivariate Bayesian disease-course model: logistic outcomes on one latent time.

Owns: :class:`DiseaseCourseModel` (Leaspy's multivariate logistic model, fully
Bayesian: PyMC graph sampled by numpyro's NUTS): its parameters and fit, the model's
definition and priors (below), patient stage and speed, the order in which the
outcomes decline (:class:`DeclineOrder`), population curves, subject trajectories,
the summary and the forecast table of new patients.
Leaves: data preparation, mean curve and PyMC graph to
:mod:`alsprog.models.bayes._course_graph`; the importance sampling behind the
forecast to :mod:`alsprog.models.bayes._course_forecast`; the NUTS call and the
convergence diagnostics to :mod:`alsprog.models.bayes._sampling`; the figure to
:mod:`alsprog.plots`; the
model contract to :class:`~alsprog.models.TrajectoryModel`: the model has several
outcomes per visit, and the contract's one-outcome methods (``predict``,
``subject_trajectories``, ``forecast_rows``, hence :func:`alsprog.forecast.forecast`
and ``backtest``) report its ``outcome`` (the first of ``outcomes`` by default);
:meth:`DiseaseCourseModel.for_outcome` gives the same fitted model reporting another,
so every outcome is forecast through the contract.

Model (Schiratti et al. 2017, JMLR 18:1-33; Koval et al. 2021, Sci Rep 11:8020;
Leaspy's logistic model, ``docs/models.md`` in github.com/aramis-lab/leaspy:
``gamma_ik(t) = 1 / (1 + g_k exp(-v_k e^xi_i (t - tau_i) - w_ik))``).  Each outcome
``x`` is rescaled with its ``(normal, floor)`` range to ``y = (normal - x) /
(normal - floor)``: 0 is the healthy end, 1 the floor, so every curve rises.  With
``t`` the time column (months since onset by default),

    psi_i(t) = alpha_i (t - tau_i) + t0,     alpha_i = exp(xi_i)
    y_ijk ~ Normal(expit(v_k (psi_i(t_ij) - m_k) + w_ik) + b_ik, sigma_k)

``psi`` is the latent disease time: months since onset of a patient with ``tau_i =
t0`` and ``alpha_i = 1``.  ``m_k`` is the latent time at which outcome ``k`` is
half-way (Leaspy's ``g_k = exp(v_k (m_k - t0))``), ``v_k`` its rate (1/month).
Identifiability as in Leaspy: ``xi_i ~ N(0, xi_sd)`` (mean fixed at 0, so ``t0`` is
the pivot of the speeds), ``tau_i ~ N(t0, tau_sd)`` with ``t0`` a parameter, and
space shifts ``w_i`` orthogonal to ``v`` (``w_i = P u_i``, ``u_ik = v_k w_sd z_ik``,
``z_ik ~ N(0, 1)``, ``w_sd`` one SD in months, ``P`` the projection off ``v``), so that
they never move all outcomes together (that is ``tau_i``'s job).  ``b_ik ~ N(0,
b_sd_k)`` is an optional healthy-level offset (normalised units) for the outcomes in
``offsets`` (FVC, FA: people differ before the disease does).

Parameterisation (what NUTS sees; :func:`~alsprog.models.bayes._course_graph.
build_course_model`): the latent axis is sampled in logit units of the mean rate
``vbar = exp(mean_k log v_k)``, centred on each patient's own mean visit time
``tbar_i``.  Per outcome ``log v_k = mean + zero-sum part`` (the same iid prior) and
``c_k = vbar (m_k - centre)`` (zero-sum; ``centre`` the mean half-way time).  Per
patient ``a_i = log(vbar alpha_i)`` and ``u_i = vbar (stage_i - centre)`` with
``stage_i = psi_i(tbar_i)``, so that ``eta_ijk = (v_k / vbar) (u_i + e^a_i (t_ij -
tbar_i) - c_k)``.  Both per-patient coordinates are affine maps of free ones, ``xi_i
= a_i - log vbar = c_i + s_i z_i`` and then ``u_i = c'_i + s'_i z'_i`` given the
speed, with ``N(c, s^2)`` the prior (``xi_i ~ N(0, xi_sd)``; Leaspy's ``tau_i ~ N(t0,
tau_sd)`` seen as ``u_i ~ N(vbar (t0 + alpha_i (tbar_i - t0) - centre), vbar alpha_i
tau_sd)``) times a quadratic summary of the patient's likelihood, scaled by the
current ``sigma`` (:func:`~alsprog.models.bayes._course_graph.speed_information`,
:func:`~alsprog.models.bayes._course_graph.stage_map`): non-centred for a patient
whose data say little, centred for one whose data say much, so that neither a small
``xi_sd`` nor a small ``tau_sd`` is a funnel.  Leaspy's prior sits on ``tau_i =
tbar_i - (stage_i - t0) / alpha_i`` through a potential with the Jacobians, and ``m_k
~ N(t_ref, 24)`` on ``m_k = centre + c_k / vbar``; ``centre`` has no prior factor of
its own, so the prior is exactly the one below (checked against a direct simulation
of it in ``tests/models/test_bayes_course_sbc.py``).  The two directions the data pin
only weakly are single coordinates: Leaspy's pivot (all stages and half-way times
moving together: ``centre``) and a common speed-up traded against the rates (``mean
log v``).  Measured on 60 simulated patients, 3 domains, 2 x 300 draws (same data
and seed): sampling ``tau_i`` non-centred, min bulk ESS of the population parameters
50 (``t0``); centred, 6; the stage at ``tbar_i`` in months, 14-58 (``m``, ``log v``);
the logit-unit frame, 592 (R-hat <= 1.007).  On the SBC's prior draws (30 patients, 3
outcomes, 2 x 400 draws): the speed map against ``a_i`` sampled directly, bulk ESS of
``xi_sd`` 30 -> 574 and 45 -> 816 on two of them, divergences 18 -> 0; the stage map
against a centred stage, min bulk ESS of the population parameters on replications 0-3
186, 60, 10, 15 -> 243, 97, 53, 115 (``tau_sd`` 15 -> 115 on the fourth); over 100
SBC replications every population parameter's ranks are uniform (chi-square p >=
0.038; ``tau_sd`` 0.007 -> 0.475) and divergent fits fell from half to 12 %.

Priors (months and normalised units): ``t0 ~ N(t_ref, 12)`` and ``m_k ~ N(t_ref,
24)`` with ``t_ref`` the median observed time, ``log v_k ~ N(log 0.1, 0.75)`` (a
curve 10-90 % in ~44 months at 0.1/month; docs/domain.md §3: dx 8-15 months),
``tau_sd ~ HalfNormal(12)``, ``xi_sd ~ HalfNormal(0.5)``, ``w_sd ~ HalfNormal(8)``,
``b_sd_k ~ HalfNormal(0.3)``, ``sigma_k ~ HalfNormal(0.2)``.
"""

from __future__ import annotations

import logging
import os
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._random import as_generator, child_seed
from alsprog._validation import check_int, check_interval, check_is_fitted, check_level
from alsprog.errors import (
    DataWarning,
    ModelSpecificationError,
    not_converged,
)
from alsprog.models._contract import (
    DEFAULT_TRAJECTORY_LEVEL,
    ForecastRows,
    TrajectoryModel,
    outcome_bounds,
)
from alsprog.models.bayes._course_graph import (
    DEFAULT_BOUNDS,
    build_course_model,
    course_mean,
    initial_curves,
    prepare_course_data,
    to_raw,
)

__all__ = ["DEFAULT_BOUNDS", "DeclineOrder", "DiseaseCourseModel"]

logger = logging.getLogger(__name__)
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from alsprog.data._history import ModelColumns, Prepared

Array = npt.NDArray[np.float64]

_POPULATION = ["t0", "m", "log_v", "tau_sd", "xi_sd", "w_sd", "b_sd", "sigma"]
_SUBJECT = ["stage", "tau", "xi", "w", "b"]


@dataclass(frozen=True, repr=False, eq=False)
class DeclineOrder:
    """When each outcome's population curve reaches a normalised threshold.

    Attributes
    ----------
    threshold : float
        The normalised level (0 healthy, 1 floor), e.g. 0.5 = half-way.
    level : float
        Coverage of the credible intervals.
    times : pandas.DataFrame
        Index ``outcome``, sorted by ``mean``: ``mean``, ``lower``, ``upper`` (latent
        time, months) and ``prob_first`` (posterior probability that the outcome is
        the first to reach the threshold).
    pairwise : pandas.DataFrame
        ``pairwise.loc[a, b]``: posterior probability that ``a`` reaches the
        threshold before ``b`` (diagonal NaN).
    orders : pandas.DataFrame
        Every complete order seen in the draws (``order``: names joined by
        ``" < "``) with its posterior ``probability``, most probable first.
    """

    threshold: float
    level: float
    times: pd.DataFrame
    pairwise: pd.DataFrame
    orders: pd.DataFrame

    def __repr__(self) -> str:
        return (
            f"DeclineOrder(threshold={self.threshold}, "
            f"most probable: {self.orders['order'].iloc[0]!r} "
            f"({self.orders['probability'].iloc[0]:.2f}))"
        )


class DiseaseCourseModel(TrajectoryModel):
    """Several outcomes as logistic curves on one latent disease time (Bayesian).

    Leaspy's multivariate logistic model, sampled fully by NUTS (numpyro through
    PyMC) instead of MCMC-SAEM; the model, its normalisation and its priors are in
    the notes of :mod:`alsprog.models.bayes._course`.

    Parameters
    ----------
    outcomes : sequence of str
        Outcome columns (at least one, distinct), e.g. the four ALSFRS-R domains,
        ``fvc_percent_predicted``, ``fa_cst_left``.
    outcome : str, optional
        The one of ``outcomes`` that the single-outcome contract reports
        (:meth:`predict`, :meth:`subject_trajectories`, :meth:`forecast_rows`, so
        :func:`alsprog.forecast.forecast`); the first by default.  It does not
        change the fit: :meth:`for_outcome` switches it on a fitted model.
    time : str, default "months_since_onset"
        Time column (months).
    subject : str, default "subject_id"
        Grouping column.
    bounds : mapping, optional
        ``{outcome: (normal, floor)}`` in raw units, over :data:`DEFAULT_BOUNDS`;
        needed for outcomes not in it.
    offsets : sequence of str, default ()
        Outcomes given a per-patient healthy-level offset (continuous biomarkers).
    chains, draws, tune : int, default 4, 1000, 1000
        NUTS chains, kept draws and tuning steps per chain.
    seed : int, numpy.random.Generator or None
        Random seed (the sampler gets an integer drawn from it).
    target_accept : float, default 0.8
        NUTS target acceptance, in (0, 1).
    strict : bool, default False
        Raise :class:`~alsprog.errors.ConvergenceError` instead of warning when the
        convergence gate fails (R-hat > 1.01, bulk ESS < 400 or divergences, over
        the population parameters).
    progress : bool or None
        Sampler progress bar (None: only on a terminal).

    Attributes
    ----------
    idata_ : arviz.InferenceData
        Posterior of ``t0, m, log_v, tau_sd, xi_sd, w_sd, b_sd, sigma, stage, tau,
        xi, w, b`` (those that exist; ``stage`` is the latent time at each
        patient's mean visit time; the sampler's own coordinates are dropped).
    population_ : pandas.DataFrame
        Per outcome: ``midpoint`` (latent half-way time), ``rate``, ``sigma``
        (normalised residual SD), ``normal``, ``floor``: posterior means.
    diagnostics_ : dict
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``n_divergent``,
        ``min_bfmi`` over the population parameters.
    converged_ : bool
    sampling_seconds_ : float
    n_obs_, n_subjects_, n_dropped_ : int
        Observed cells, subjects, rows without any observed outcome (dropped).
    reference_time_ : float
        The median observed time (centre of ``t0``'s prior).

    Examples
    --------
    >>> m = DiseaseCourseModel(["alsfrs_r_bulbar", "alsfrs_r_gross_motor"], chains=2)
    >>> m
    DiseaseCourseModel(outcomes=['alsfrs_r_bulbar', 'alsfrs_r_gross_motor'], chains=2)
    """

    file_suffix = ".nc"

    def __init__(
        self,
        outcomes: Sequence[str],
        *,
        outcome: str | None = None,
        time: str = "months_since_onset",
        subject: str = "subject_id",
        bounds: Mapping[str, tuple[float, float]] | None = None,
        offsets: Sequence[str] = (),
        chains: int = 4,
        draws: int = 1000,
        tune: int = 1000,
        seed: Any = None,
        target_accept: float = 0.8,
        strict: bool = False,
        progress: bool | None = None,
    ) -> None:
        self.outcomes = outcomes
        self.outcome = outcome
        self.time = time
        self.subject = subject
        self.bounds = bounds
        self.offsets = offsets
        self.chains = chains
        self.draws = draws
        self.tune = tune
        self.seed = seed
        self.target_accept = target_accept
        self.strict = strict
        self.progress = progress

    # ---------------------------------------------------------------- fitting
    def _check_params(self) -> tuple[tuple[str, ...], dict[str, tuple[float, float]]]:
        outs = self.outcomes
        if isinstance(outs, str) or not isinstance(outs, Sequence) or not outs:
            raise ModelSpecificationError(
                f"`outcomes` must be a non-empty list of column names; got {outs!r}."
            )
        outs = tuple(outs)
        if len(set(outs)) != len(outs):
            raise ModelSpecificationError(f"`outcomes` repeats a name: {list(outs)!r}.")
        bounds = dict(DEFAULT_BOUNDS)
        bounds.update(dict(self.bounds or {}))
        for o in outs:
            if o not in bounds:
                raise ModelSpecificationError(
                    f"outcome {o!r} has no known (normal, floor) range; pass "
                    f"bounds={{{o!r}: (normal, floor)}}."
                )
            pair = bounds[o]
            ok = (
                isinstance(pair, tuple | list)
                and len(pair) == 2
                and all(np.isfinite(np.asarray(pair, dtype=float)))
                and float(pair[0]) != float(pair[1])
            )
            if not ok:
                raise ModelSpecificationError(
                    f"`bounds[{o!r}]` must be two different finite numbers "
                    f"(normal, floor); got {pair!r}."
                )
        check_int(self.chains, "chains", low=1, error=ModelSpecificationError)
        check_int(self.draws, "draws", low=1, error=ModelSpecificationError)
        check_int(self.tune, "tune", low=0, error=ModelSpecificationError)
        check_interval(
            self.target_accept,
            "target_accept",
            low=0,
            high=1,
            low_closed=False,
            high_closed=False,
            error=ModelSpecificationError,
        )
        if self.outcome is not None and self.outcome not in outs:
            raise ModelSpecificationError(
                f"`outcome` must be one of `outcomes` ({', '.join(outs)}); got "
                f"{self.outcome!r}."
            )
        return outs, bounds

    # ------------------------------------------------------- the one-outcome view
    def _primary(self) -> str:
        """The outcome the single-outcome contract reports."""
        if self.outcome is not None:
            return str(self.outcome)
        outs = self.outcomes
        if isinstance(outs, str) or not isinstance(outs, Sequence) or not outs:
            raise ModelSpecificationError(
                f"`outcomes` must be a non-empty list of column names; got {outs!r}."
            )
        return str(outs[0])

    def required_columns(self) -> ModelColumns:
        """The reported outcome, subject and time columns, from the parameters.

        The other outcomes are the columns' ``context``: read where a table has
        them (a forecast's history conditions on every outcome of every visit, also
        visits without the reported one), but no row needs them.

        Examples
        --------
        >>> c = DiseaseCourseModel(["alsfrs_r_bulbar", "fvc_percent_predicted"],
        ...                        outcome="fvc_percent_predicted").required_columns()
        >>> c.outcome, c.time, c.covariates
        ('fvc_percent_predicted', 'months_since_onset', ('months_since_onset',))
        >>> c.context
        ('alsfrs_r_bulbar',)
        """
        from alsprog.data._history import ModelColumns

        return ModelColumns.of(
            self._primary(),
            self.subject,
            self.time,
            [self.time],
            context=[str(o) for o in self.outcomes],
        )

    @property
    def columns_(self) -> ModelColumns:
        """The columns the fitted model reports on (see :meth:`required_columns`)."""
        check_is_fitted(self, ["idata_"])
        return self.required_columns()

    @property
    def outcome_bounds_(self) -> tuple[float, float]:
        """The reported outcome's range in the data dictionary (forecasts are
        clipped to it)."""
        check_is_fitted(self, ["idata_"])
        return outcome_bounds(self._primary())

    def for_outcome(self, outcome: str) -> DiseaseCourseModel:
        """The same fitted model reporting ``outcome`` through the contract.

        A shallow copy sharing the posterior (nothing is refitted or changed on
        ``self``): forecast every outcome with :func:`alsprog.forecast.forecast`
        by looping over ``outcomes``.

        Raises
        ------
        ModelSpecificationError
            If ``outcome`` is not one of ``outcomes``.
        """
        import copy

        check_is_fitted(self, ["idata_"])
        if outcome not in tuple(self._data.outcomes):
            raise ModelSpecificationError(
                f"`outcome` must be one of the fitted outcomes "
                f"({', '.join(self._data.outcomes)}); got {outcome!r}."
            )
        out = copy.copy(self)
        out.outcome = outcome
        return out

    def fit(self, df: pd.DataFrame) -> DiseaseCourseModel:
        """Sample the posterior from a long table (one row per visit).

        Parameters
        ----------
        df : pandas.DataFrame
            ``subject``, ``time`` and the outcome columns; not modified.  A visit
            may miss any outcome: only observed cells enter the likelihood.

        Returns
        -------
        DiseaseCourseModel
            ``self``, fitted.

        Raises
        ------
        ModelSpecificationError
            Bad options, missing columns, an outcome without a range.
        DataValidationError
            Non-numeric outcome values, a non-finite time on a row with a value.
        ConvergenceError
            With ``strict=True``, when the convergence gate fails.

        Warns
        -----
        ConvergenceWarning
            The gate failed (``strict=False``).
        DataWarning
            Rows without any observed outcome were dropped.
        """
        import warnings

        for attr in [
            k for k in vars(self) if k.endswith("_") and not k.startswith("_")
        ]:
            delattr(self, attr)
        outs, bounds = self._check_params()
        rng = as_generator(self.seed)
        d = prepare_course_data(
            df,
            outs,
            subject=self.subject,
            time=self.time,
            bounds=bounds,
            offsets=tuple(self.offsets),
        )
        if d.n_dropped:
            warnings.warn(
                f"{d.n_dropped} row(s) without any of {', '.join(outs)} were dropped.",
                DataWarning,
                stacklevel=2,
            )
        m0, v0 = initial_curves(d)
        model = build_course_model(d, m0, v0)
        from alsprog.models.bayes._sampling import sample_nuts

        var_names = [n for n in (*_POPULATION, *_SUBJECT) if n in model.named_vars]
        start = _time.perf_counter()
        idata = sample_nuts(
            model,
            sampler="numpyro",
            draws=self.draws,
            tune=self.tune,
            chains=self.chains,
            target_accept=self.target_accept,
            seed=child_seed(rng),
            progress=self.progress,
            dense=False,
            var_names=var_names,
        )
        seconds = _time.perf_counter() - start
        idata.posterior = idata.posterior[var_names]
        failure = self._set_fitted(idata, d, seconds)
        if failure is not None:
            not_converged(
                f"DiseaseCourseModel may not have converged: {failure}.",
                strict=bool(self.strict),
                stacklevel=2,
            )
        return self

    def _set_fitted(self, idata: Any, data: Any, sampling_seconds: float) -> str | None:
        """Set the fitted state from the posterior and the prepared data
        (:class:`~alsprog.models.bayes._course_graph.CourseData`), for ``fit`` and
        ``load``; returns the convergence gate's failure text, or None."""
        from alsprog.models.bayes._sampling import (
            ESS_BULK_MIN,
            RHAT_MAX,
            convergence_failure,
            diagnose,
        )

        outs, bounds = self._check_params()
        d = data
        self.sampling_seconds_ = sampling_seconds
        self._data = d
        self.idata_ = idata
        self.n_obs_ = len(d.y)
        self.n_subjects_ = len(d.subject_ids)
        self.n_dropped_ = d.n_dropped
        self.reference_time_ = d.t_ref
        self.bounds_ = {o: bounds[o] for o in outs}
        self._draws = self._flat_draws()
        p = self._draws
        self.population_ = pd.DataFrame(
            {
                "midpoint": p["m"].mean(axis=0),
                "rate": np.exp(p["log_v"]).mean(axis=0),
                "sigma": p["sigma"].mean(axis=0),
                "normal": d.normal,
                "floor": d.floor,
            },
            index=pd.Index(list(outs), name="outcome"),
        )
        pop = [n for n in _POPULATION if n in idata.posterior]
        self.diagnostics_ = diagnose(idata, pop)
        failure = convergence_failure(
            self.diagnostics_,
            rhat_max=RHAT_MAX,
            ess_bulk_min=ESS_BULK_MIN,
            suggest_marginal=False,
        )
        self.converged_ = failure is None
        return failure

    def summary(self, level: float = 0.95) -> Any:
        """Population parameters and half-way times with credible intervals.

        Returns
        -------
        Summary
            Tables ``population`` (rows ``t0``, ``tau_sd``, ``xi_sd``, ``w_sd`` and,
            per outcome, ``midpoint[...]``, ``rate[...]``, ``sigma[...]``,
            ``b_sd[...]``; columns ``mean``, ``sd``, ``lower``, ``upper``,
            ``r_hat``, ``ess_bulk``) and ``decline`` (:meth:`decline_order` at
            0.5); the header gives the data size, sampler settings and the gate.
        """
        import arviz as az

        from alsprog.models._summary import Summary

        check_is_fitted(self, ["idata_"])
        level = check_level(level)
        post = self.idata_.posterior
        lo, hi = (1 - level) / 2, (1 + level) / 2
        rows: dict[str, dict[str, float]] = {}
        rhat = az.rhat(post) if post.sizes["chain"] > 1 else None
        ess = az.ess(post, method="bulk")

        def add(label: str, draws: Any, rh: Any, es: Any) -> None:
            x = np.ravel(draws)
            rows[label] = {
                "mean": float(x.mean()),
                "sd": float(x.std(ddof=1)) if x.size > 1 else float("nan"),
                "lower": float(np.quantile(x, lo)),
                "upper": float(np.quantile(x, hi)),
                "r_hat": float("nan") if rh is None else float(rh),
                "ess_bulk": float(es),
            }

        for name in ("t0", "tau_sd", "xi_sd", "w_sd"):
            if name in post:
                add(
                    name,
                    post[name].values,
                    None if rhat is None else rhat[name].values,
                    ess[name].values,
                )
        outs = list(self._data.outcomes)
        for name, label, fn in (
            ("m", "midpoint", None),
            ("log_v", "rate", np.exp),
            ("sigma", "sigma", None),
            ("b_sd", "b_sd", None),
        ):
            if name not in post:
                continue
            dim = post[name].dims[-1]
            for j, o in enumerate(post[name].coords[dim].values):
                x = post[name].values[..., j]
                add(
                    f"{label}[{o}]",
                    fn(x) if fn is not None else x,
                    None if rhat is None else rhat[name].values[j],
                    ess[name].values[j],
                )
        table = pd.DataFrame.from_dict(rows, orient="index")
        dg = self.diagnostics_
        header = {
            "Outcomes": ", ".join(outs),
            "Number of obs (cells)": self.n_obs_,
            "Number of subjects": self.n_subjects_,
            "Chains x draws": f"{post.sizes['chain']} x {post.sizes['draw']}",
            "Converged": self.converged_,
            "Max R-hat": round(dg["max_rhat"], 4),
            "Min bulk ESS": round(dg["min_ess_bulk"], 1),
            "Divergences": int(dg["n_divergent"]),
        }
        return Summary(
            "Bayesian multivariate logistic disease-course model (NUTS)",
            header,
            {
                "population": table,
                "decline": self.decline_order(0.5, level=level).times,
            },
            captions={
                "population": f"Population parameters ({level:.0%} intervals)",
                "decline": "Latent time at which each outcome is half-way",
            },
        )

    def _flat_draws(self) -> dict[str, Array]:
        post = self.idata_.posterior
        c, n = post.sizes["chain"], post.sizes["draw"]
        out = {
            k: np.asarray(post[k].values, dtype=float).reshape(
                c * n, *post[k].shape[2:]
            )
            for k in post.data_vars
        }
        d = self._data
        S, N, K = c * n, len(d.subject_ids), len(d.outcomes)
        if "w" not in out:
            out["w"] = np.zeros((S, N, K))
        bfull = np.zeros((S, N, K))
        if "b" in out:
            bfull[:, :, d.offset_mask] = out["b"]
        out["b_full"] = bfull
        return out

    # ---------------------------------------------------------------- results
    def _subject_index(self, subjects: Any) -> npt.NDArray[np.int64]:
        ids = self._data.subject_ids
        if subjects is None:
            return np.arange(len(ids))
        if isinstance(subjects, str) or not isinstance(
            subjects, Sequence | np.ndarray | pd.Index | pd.Series
        ):
            subjects = [subjects]
        pos = pd.Index(ids).get_indexer(pd.Index(list(subjects), dtype=object))
        if (pos < 0).any():
            bad = [s for s, i in zip(subjects, pos, strict=True) if i < 0]
            raise ModelSpecificationError(
                f"subject(s) {', '.join(map(repr, bad[:5]))} were not in the fit; use "
                "`forecast(history)` for new patients."
            )
        return pos.astype(np.int64)

    def patient_stage(
        self,
        at: float | None = None,
        *,
        subjects: Any = None,
        level: float = 0.9,
    ) -> pd.DataFrame:
        """Each patient's disease stage and speed, with credible intervals.

        Parameters
        ----------
        at : float, optional
            Time (the time column's units) at which to read the stage; default each
            patient's last visit with an observed outcome.
        subjects : list, optional
            Fitted subjects (default all).
        level : float, default 0.9
            Coverage of the equal-tailed credible intervals.

        Returns
        -------
        pandas.DataFrame
            One row per subject: the subject column, the time column (where the
            stage is read), then ``<q>_mean``, ``<q>_lower``, ``<q>_upper`` for
            ``stage`` (latent disease time ``psi_i``, months since onset of the
            reference patient), ``speed`` (``alpha_i``), ``tau`` and ``xi``.
        """
        check_is_fitted(self, ["idata_"])
        level = check_level(level)
        idx = self._subject_index(subjects)
        p, d = self._draws, self._data
        when = (
            d.last_time[idx]
            if at is None
            else np.full(len(idx), float(check_interval(at, "at")))
        )
        tau, xi = p["tau"][:, idx], p["xi"][:, idx]
        alpha = np.exp(xi)
        stage = alpha * (when[None, :] - tau) + p["t0"][:, None]
        out = pd.DataFrame({self.subject: d.subject_ids[idx], self.time: when})
        lo, hi = (1 - level) / 2, (1 + level) / 2
        for name, x in (("stage", stage), ("speed", alpha), ("tau", tau), ("xi", xi)):
            out[f"{name}_mean"] = x.mean(axis=0)
            out[f"{name}_lower"] = np.quantile(x, lo, axis=0)
            out[f"{name}_upper"] = np.quantile(x, hi, axis=0)
        return out

    def decline_order(
        self, threshold: float = 0.5, *, level: float = 0.9
    ) -> DeclineOrder:
        """When the outcomes' population curves reach ``threshold``, and in what order.

        Parameters
        ----------
        threshold : float, default 0.5
            Normalised level in (0, 1) (0 healthy, 1 floor); 0.5 = half-way.
        level : float, default 0.9
            Coverage of the credible intervals of the times.

        Returns
        -------
        DeclineOrder
            Times with intervals, pairwise order probabilities, and the posterior
            probability of each complete order.
        """
        check_is_fitted(self, ["idata_"])
        threshold = check_interval(
            threshold, "threshold", low=0, high=1, low_closed=False, high_closed=False
        )
        level = check_level(level)
        p, outs = self._draws, list(self._data.outcomes)
        T = p["m"] + np.log(threshold / (1 - threshold)) / np.exp(p["log_v"])
        lo, hi = (1 - level) / 2, (1 + level) / 2
        first = np.bincount(T.argmin(axis=1), minlength=len(outs)) / len(T)
        times = pd.DataFrame(
            {
                "mean": T.mean(axis=0),
                "lower": np.quantile(T, lo, axis=0),
                "upper": np.quantile(T, hi, axis=0),
                "prob_first": first,
            },
            index=pd.Index(outs, name="outcome"),
        ).sort_values("mean", kind="stable")
        pw = (T[:, :, None] < T[:, None, :]).mean(axis=0)
        np.fill_diagonal(pw, np.nan)
        pairwise = pd.DataFrame(pw, index=outs, columns=outs)
        ranks = np.argsort(T, axis=1, kind="stable")
        keys, counts = np.unique(ranks, axis=0, return_counts=True)
        orders = pd.DataFrame(
            {
                "order": [" < ".join(outs[j] for j in row) for row in keys],
                "probability": counts / len(T),
            }
        ).sort_values("probability", ascending=False, kind="stable")
        return DeclineOrder(
            threshold=threshold,
            level=level,
            times=times,
            pairwise=pairwise,
            orders=orders.reset_index(drop=True),
        )

    def population_curves(
        self,
        times: Any = None,
        *,
        level: float = 0.9,
        scale: Literal["normalised", "raw"] = "normalised",
    ) -> pd.DataFrame:
        """Each outcome's population curve on the latent time axis, with its band.

        ``times`` are latent times (months); default 121 points from where the
        earliest curve is at 2 % to where the latest is at 98 %.  Columns ``outcome``, ``latent_time``, ``mean``,
        ``lower``, ``upper``: normalised (0 healthy, 1 floor) or raw units.
        """
        check_is_fitted(self, ["idata_"])
        level = check_level(level)
        p, d = self._draws, self._data
        mid = p["m"]
        if times is None:  # every curve from 2 % to 98 % of its way
            half = np.log(49.0) / np.exp(p["log_v"]).mean(axis=0)
            mbar = mid.mean(axis=0)
            lo_t, hi_t = float(np.min(mbar - half)), float(np.max(mbar + half))
            times = np.linspace(np.floor(lo_t), np.ceil(hi_t), 121)
        tt = np.asarray(times, dtype=float).ravel()
        from scipy.special import expit

        y = expit(
            np.exp(p["log_v"])[:, None, :] * (tt[None, :, None] - mid[:, None, :])
        )
        if scale == "raw":
            y = to_raw(y, d.normal, d.floor)
        lo, hi = (1 - level) / 2, (1 + level) / 2
        K = len(d.outcomes)
        return pd.DataFrame(
            {
                "outcome": np.repeat(list(d.outcomes), len(tt)),
                "latent_time": np.tile(tt, K),
                "mean": y.mean(axis=0).T.ravel(),
                "lower": np.quantile(y, lo, axis=0).T.ravel(),
                "upper": np.quantile(y, hi, axis=0).T.ravel(),
            }
        )

    def _band(self, ysamp: Array, sid: Any, tt: Array, level: float) -> pd.DataFrame:
        """Long table from draws ``(S, n_rows, K)`` of raw values."""
        d = self._data
        lo, hi = (1 - level) / 2, (1 + level) / 2
        K = ysamp.shape[2]
        return pd.DataFrame(
            {
                self.subject: np.repeat(np.asarray(sid, dtype=object), K),
                self.time: np.repeat(tt, K),
                "outcome": np.tile(list(d.outcomes), len(tt)),
                "mean": ysamp.mean(axis=0).ravel(),
                "lower": np.quantile(ysamp, lo, axis=0).ravel(),
                "upper": np.quantile(ysamp, hi, axis=0).ravel(),
            }
        )

    def subject_trajectories(
        self,
        times: Any,
        *,
        subjects: Any = None,
        level: float = DEFAULT_TRAJECTORY_LEVEL,
        interval: Literal["confidence", "prediction"] = "confidence",
        outcomes: Sequence[str] | None = None,
        seed: Any = None,
    ) -> pd.DataFrame:
        """Fitted subjects' curves at ``times`` (raw units).

        Parameters
        ----------
        times : array-like
            Values of the time column.
        subjects : list, optional
            Fitted subjects (default all).
        level : float, default 0.9
            Band coverage.
        interval : {"confidence", "prediction"}
            Band of the subject's mean curve, or of a new visit (the residual
            noise added, before rounding or clipping).
        outcomes : sequence of str, optional
            The outcomes to draw: the reported ``outcome`` by default (the
            contract's one-outcome table), ``model.outcomes`` for all.
        seed : int, Generator or None
            For the noise of ``"prediction"`` bands.

        Returns
        -------
        pandas.DataFrame
            The subject column, the time column, ``outcome``, ``mean``, ``lower``,
            ``upper``: posterior mean and equal-tailed band.
        """
        check_is_fitted(self, ["idata_"])
        level = check_level(level)
        if interval not in ("confidence", "prediction"):
            raise ValueError(
                f"`interval` must be 'confidence' or 'prediction'; got {interval!r}."
            )
        keep = self._outcome_positions(outcomes)
        idx = self._subject_index(subjects)
        tt = np.asarray(times, dtype=float).ravel()
        si = np.repeat(idx, len(tt))
        tall = np.tile(tt, len(idx))
        y = self._curve_draws_rows(si, tall, interval, as_generator(seed))
        band = self._band(y, self._data.subject_ids[si], tall, level)
        K = len(self._data.outcomes)
        rows = (np.arange(len(tall))[:, None] * K + keep[None, :]).ravel()
        return band.iloc[rows].reset_index(drop=True)

    def _outcome_positions(
        self, outcomes: Sequence[str] | None
    ) -> npt.NDArray[np.intp]:
        """Positions of ``outcomes`` (default the reported one) among the fitted."""
        fitted = list(self._data.outcomes)
        names = [self._primary()] if outcomes is None else outcomes
        if isinstance(names, str):
            names = [names]
        bad = [o for o in names if o not in fitted]
        if bad or not len(names):
            raise ModelSpecificationError(
                f"`outcomes` must name fitted outcomes ({', '.join(fitted)}); got "
                f"{list(names)!r}."
            )
        return np.array([fitted.index(o) for o in names], dtype=np.intp)

    def _curve_draws_rows(
        self, si: Any, t: Array, interval: str, rng: np.random.Generator
    ) -> Array:
        p, d = self._draws, self._data
        y = course_mean(
            t[None, :, None],
            p["tau"][:, si, None],
            p["xi"][:, si, None],
            p["t0"][:, None, None],
            p["m"][:, None, :],
            np.exp(p["log_v"])[:, None, :],
            p["w"][:, si, :],
            p["b_full"][:, si, :],
        )
        if interval == "prediction":
            y = y + p["sigma"][:, None, :] * rng.standard_normal(y.shape)
        return to_raw(y, d.normal, d.floor)

    def predict(self, df: pd.DataFrame) -> pd.Series:
        """The posterior-mean curve of the reported ``outcome`` at each row of
        ``df`` (the contract's ``predict``): a Series ``predicted`` with ``df``'s
        index, NaN where the time is missing; fitted subjects get their own curve,
        others the population's (``tau = t0``, unit speed, no shifts).
        :meth:`predict_outcomes` gives every outcome."""
        pos = self._outcome_positions(None)[0]
        return self.predict_outcomes(df).iloc[:, pos].rename("predicted")

    def predict_outcomes(self, df: pd.DataFrame) -> pd.DataFrame:
        """Posterior-mean curve of every outcome at each row of ``df``: a
        DataFrame with ``df``'s index and one column per outcome (raw units); see
        :meth:`predict`."""
        check_is_fitted(self, ["idata_"])
        missing = [c for c in (self.subject, self.time) if c not in df.columns]
        if missing:
            raise ModelSpecificationError(
                f"the table lacks column(s) {', '.join(map(repr, missing))}."
            )
        d = self._data
        pos = pd.Index(d.subject_ids).get_indexer(
            pd.Index(df[self.subject].to_numpy(), dtype=object)
        )
        t = pd.to_numeric(df[self.time], errors="coerce").to_numpy(dtype=float)
        seen = pos >= 0
        y = np.full((len(df), len(d.outcomes)), np.nan)
        if seen.any():
            y[seen] = self._curve_draws_rows(
                pos[seen], t[seen], "confidence", as_generator(0)
            ).mean(axis=0)
        if (~seen).any():
            p = self._draws
            pop = course_mean(
                t[~seen][None, :, None],
                p["t0"][:, None, None],
                np.zeros((1, 1, 1)),
                p["t0"][:, None, None],
                p["m"][:, None, :],
                np.exp(p["log_v"])[:, None, :],
                np.zeros((1, 1, 1)),
                np.zeros((1, 1, 1)),
            )
            y[~seen] = to_raw(pop, d.normal, d.floor).mean(axis=0)
        return pd.DataFrame(y, index=df.index, columns=list(d.outcomes))

    def forecast_rows(
        self,
        history: Prepared,
        *,
        level: float,
        n_samples: int | None = None,
        rng: np.random.Generator,
        given_alive: bool = True,
    ) -> ForecastRows:
        """New patients' posterior predictive of the reported ``outcome`` given
        their history (the contract's conditional forecast; no refit).

        The history conditions on every fitted outcome of its visits
        (``history.observed``: the rows with any of them, through
        :attr:`columns_`' ``context``; a column absent from the table counts as
        unobserved); per posterior draw (``n_samples``, 400 by default) one
        draw of the patient's effects by importance resampling as in
        :meth:`forecast` (500 importance draws each), the outcome's residual noise
        added, clipped at :attr:`outcome_bounds_` and summarised.  A patient with
        no observed row is forecast from the population.  ``given_alive`` is
        ignored.  See :meth:`TrajectoryModel.forecast_rows
        <alsprog.models._contract.TrajectoryModel.forecast_rows>`.
        """
        from alsprog.models.bayes._course_forecast import forecast_subject
        from alsprog.models.bayes._forecast import summarise_draws

        check_is_fitted(self, ["idata_"])
        level = check_level(level)
        d0 = self._data
        outs = list(d0.outcomes)
        k_out = int(self._outcome_positions(None)[0])
        obs = history.observed
        table = obs.reindex(columns=[self.subject, self.time, *outs])
        for o in outs:  # absent outcome columns: unobserved
            table[o] = pd.to_numeric(table[o], errors="coerce")
        offsets = [o for o, on in zip(outs, d0.offset_mask, strict=True) if on]
        h = None
        if len(table):
            h = prepare_course_data(
                table,
                outs,
                subject=self.subject,
                time=self.time,
                bounds=self.bounds_,
                offsets=offsets,
            )
        p = self._draws
        S = len(p["t0"])
        n = 400 if n_samples is None else int(n_samples)
        pick = rng.choice(S, size=n, replace=n > S)
        future = history.future
        code = future["_subject_index"].to_numpy()
        when_all = future[self.time].to_numpy(dtype=float)
        draws = np.empty((n, len(future)))
        sd = p["sigma"][pick, k_out] * abs(d0.floor[k_out] - d0.normal[k_out])
        empty: tuple[Any, Any, Any] = (np.empty(0, np.int64), np.empty(0), np.empty(0))
        for j, sid in enumerate(history.subjects):
            rows = np.flatnonzero(code == j)
            if not len(rows):
                continue
            cells = empty
            if h is not None:
                at = pd.Index(h.subject_ids).get_indexer(pd.Index([sid], dtype=object))
                if at[0] >= 0:
                    sel = h.s == at[0]
                    cells = (h.k[sel], h.t[sel], h.y[sel])
            curves, _, _ = forecast_subject(
                p, pick, d0.offset_mask, cells, when_all[rows], 500, rng
            )
            raw = to_raw(curves[:, :, k_out], d0.normal[k_out], d0.floor[k_out])
            draws[:, rows] = raw + sd[:, None] * rng.standard_normal(raw.shape)
        lo, hi = self.outcome_bounds_
        draws = np.clip(draws, lo, hi)
        return ForecastRows(
            summarise_draws(draws, level), draws if n_samples is not None else None
        )

    def forecast(
        self,
        history: pd.DataFrame,
        *,
        times: Any = None,
        level: float = 0.9,
        n_draws: int = 400,
        n_importance: int = 500,
        seed: Any = None,
    ) -> pd.DataFrame:
        """Forecast new patients' outcomes from their visits (importance sampling).

        For each of ``n_draws`` posterior draws of the population parameters,
        ``n_importance`` subject effects ``(tau, xi, w, b)`` are drawn from a
        proposal fitted to the patient's history (adaptive importance sampling,
        see :mod:`alsprog.models.bayes._course_forecast`) and weighted by prior x
        likelihood of the observed cells / proposal; one is resampled by its
        weight (sampling importance resampling), so the ``n_draws`` curves are
        draws from the patient's posterior of the mean curve.

        Parameters
        ----------
        history : pandas.DataFrame
            Visits of the new patients (subject, time, any of the outcomes).
        times : array-like, optional
            Times to forecast (same for every patient); default each patient's last
            history time plus 0, 3, 6, 9, 12 months.
        level : float, default 0.9
            Band coverage.
        n_draws, n_importance : int
            Posterior draws used and importance samples per draw.
        seed : int, Generator or None

        Returns
        -------
        pandas.DataFrame
            The subject and time columns, ``outcome``, ``mean``, ``lower``,
            ``upper`` (raw units), ``stage_mean`` (latent time at that time) and
            ``importance_ess`` (mean Kish effective sample size of the weights,
            of ``n_importance``; low values mean the history is far from the
            population and the forecast is less reliable).
        """
        check_is_fitted(self, ["idata_"])
        level = check_level(level)
        n_draws = check_int(n_draws, "n_draws", low=1)
        M = check_int(n_importance, "n_importance", low=1)
        rng = as_generator(seed)
        d0 = self._data
        outs = list(d0.outcomes)
        h = prepare_course_data(
            history,
            outs,
            subject=self.subject,
            time=self.time,
            bounds=self.bounds_,
            offsets=[o for o, on in zip(outs, d0.offset_mask, strict=True) if on],
        )
        from alsprog.models.bayes._course_forecast import forecast_subject

        p = self._draws
        S = len(p["t0"])
        pick = rng.choice(S, size=min(n_draws, S), replace=False)
        K = len(outs)
        rows = []
        for i, sid in enumerate(h.subject_ids):
            sel = h.s == i
            when = (
                h.last_time[i] + np.array([0.0, 3.0, 6.0, 9.0, 12.0])
                if times is None
                else np.asarray(times, dtype=float).ravel()
            )
            curves, stages, ess = forecast_subject(
                p,
                pick,
                d0.offset_mask,
                (h.k[sel], h.t[sel], h.y[sel]),
                when,
                M,
                rng,
            )
            raw = to_raw(curves, d0.normal, d0.floor)
            band = self._band(raw, np.repeat(sid, len(when)), when, level)
            band["stage_mean"] = np.repeat(stages.mean(axis=0), K)
            band["importance_ess"] = ess
            rows.append(band)
        return pd.concat(rows, ignore_index=True)

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to one netCDF file (InferenceData + JSON config).

        The file holds the posterior and sampler statistics, the observed cells as
        prepared for the fit (so that :meth:`load` rebuilds every result exactly)
        and, in its attrs under ``"alsprog"``, the JSON config ``{"model",
        "version", "params"}`` with ``get_params(deep=False)``: sequences as
        lists, a ``seed`` that is a numpy Generator as null (a loaded model
        refitted then draws fresh entropy).  The write is atomic; the layout is
        described in :mod:`alsprog.models.bayes._course_io`.

        Parameters
        ----------
        path : str or os.PathLike
            Output file, conventionally ``*.nc``.

        Raises
        ------
        NotFittedError
            If the model is not fitted.
        SavedModelError
            If a parameter has no JSON form.

        Examples
        --------
        >>> DiseaseCourseModel(["alsfrs_r_bulbar"]).save("m.nc")
        Traceback (most recent call last):
        ...
        alsprog.errors.NotFittedError: This DiseaseCourseModel is not fitted yet; call `fit` before using this method.
        """
        from alsprog.models.bayes._course_io import save_course

        check_is_fitted(self, ["idata_"])
        save_course(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DiseaseCourseModel:
        """Rebuild a model written by :meth:`save`, without refitting.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        DiseaseCourseModel
            Fitted, with the saved draws: every result (``summary``,
            ``patient_stage``, ``decline_order``, ``population_curves``,
            ``subject_trajectories``, ``predict``, ``forecast`` with the same seed)
            equals the saved model's.

        Raises
        ------
        SavedModelError
            Missing file or a file of another kind (named: "it is a Python pickle
            ..."; a BayesianTrajectoryModel file is named as such), no alsprog
            config, a different class or alsprog version, a parameter that ``fit``
            would refuse, a missing group, variable or dimension, sizes that
            disagree with the saved chains, draws, outcomes or cells, or draws that
            are not finite or scales that are not positive (the message names the
            file and the field).  The whole file is checked before anything is
            built from it; nothing in it is ever run.

        Examples
        --------
        >>> DiseaseCourseModel.load("no-such-file.nc")
        Traceback (most recent call last):
        ...
        alsprog.errors.SavedModelError: no-such-file.nc: no such file.
        """
        from alsprog.models.bayes._course_io import load_course

        return load_course(path, cls=cls)
