"""Joint model of the ALSFRS-R trajectory and the time to death or tracheostomy.

Owns: :class:`JointModel`, a shared random-effects joint model (Henderson, Diggle &
Dobson 2000; Rizopoulos 2012): a linear mixed model for the outcome and a
proportional-hazards model for the event whose log hazard depends on the subject's
random effects, fitted by maximum likelihood over both parts at once; its summary,
and its part of the model contract.
Leaves: the likelihood and optimiser steps to :mod:`alsprog.models.joint._numerics`,
the forecast given survival and the trajectories to
:mod:`alsprog.models.joint._forecast`, designs to
:class:`~alsprog.models.LinearMixedModel` and :mod:`alsprog.models._formula`.

Why: in ALS the patients still seen at a later visit are the slower ones (faster
progressors die sooner).  A mixed model fitted to the visits alone forecasts the
trajectory a patient would have if nobody died; the joint model forecasts the value
that will be observed, i.e. given the patient is alive then, and corrects the
longitudinal estimates for the informative loss of the fast progressors.
"""

from __future__ import annotations

import logging
import os
import time as _time
import warnings
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._formula_text import formula_context
from alsprog._validation import check_choice, check_int, check_interval, check_is_fitted
from alsprog.data._history import ModelColumns, validate_model_columns
from alsprog.errors import (
    ConvergenceWarning,
    DataValidationError,
    ModelSpecificationError,
    Problem,
    not_converged,
)
from alsprog.models._contract import (
    DEFAULT_LEVEL,
    ForecastRows,
    TrajectoryModel,
)
from alsprog.models._summary import Summary
from alsprog.models.joint._design import (
    event_data,
    event_design,
    first_rows,
    without_intercept,
)
from alsprog.models.joint._numerics import (
    JointData,
    JointLayout,
    event_breaks,
    exposure,
    inverse_information,
    make_objective,
    newton_polish,
)

__all__ = ["JointModel"]

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]


class JointModel(TrajectoryModel):
    """Shared random-effects joint model of a longitudinal outcome and an event time.

    Longitudinal part: the linear mixed model of ``formula``,
    ``y_ij = x_ij' beta + z_ij' b_i + e_ij`` with ``b_i ~ N(0, D)`` and
    ``e_ij ~ N(0, sigma^2)``.  Event part: the hazard of death/tracheostomy at
    ``t`` months after the first visit is
    ``h_i(t) = h_0(t) exp(w_i' gamma + alpha' b_i)``, ``h_0`` piecewise constant
    between quantiles of the observed event times, ``w_i`` the subject-level
    covariates of ``event_formula``.  The random effects are shared: a patient whose
    slope is steeper than their covariates predict also dies sooner (``alpha``).  Both
    parts are fitted together by maximum likelihood (the event part integrated over
    each subject's random effects by Gauss-Hermite quadrature centred on their
    longitudinal posterior; exact gradient and Hessian by JAX; L-BFGS-B); standard
    errors from the observed information.  Censoring (last contact without the event)
    is taken as non-informative given the random effects and covariates.

    :func:`alsprog.forecast.forecast` gives a new patient's outcome conditional on
    their visits so far *and* on being alive at the forecast time (the value that
    will be observed), and :meth:`predict_survival` the probability of being
    event-free.

    Parameters
    ----------
    formula : str
        Longitudinal part, as for :class:`LinearMixedModel`, e.g.
        ``"alsfrs_r_total ~ months * (delta_fs + onset_site) + (months | subject_id)"``.
        The time axis (``time``, ``months`` by default) counts from each subject's
        first visit, the origin of the event time.
    event_formula : str, default "delta_fs + onset_site"
        Right-hand side of the subject-level event covariates (formulaic syntax,
        treatment coding, no intercept: the baseline hazard holds it).  ``""`` for
        none.
    event_time : str, default "death_or_tracheostomy_months"
        Months from the first visit to the event or to the last contact.
    event : str, default "event_observed"
        True where ``event_time`` is an event, False where censored.
    time : str, default "months"
        Time column of ``formula`` (since the first visit, in the units of
        ``event_time``), read by the event check, forecasts, trajectories, figures
        and backtests through :attr:`columns_`.
    n_intervals : int, default 6
        Pieces of the baseline hazard (breaks at quantiles of observed event times).
    n_quad : int, default 7
        Gauss-Hermite nodes per random effect while fitting.
    tol : float, default 1e-8
        Gradient tolerance of the optimiser (relative to the log-likelihood's size).
    max_iter : int, default 500
    strict : bool, default False
        Raise :class:`~alsprog.errors.ConvergenceError` instead of warning.

    Attributes
    ----------
    fe_params_, bse_ : pandas.Series
        Longitudinal fixed effects and their standard errors.
    cov_re_ : pandas.DataFrame
        Random-effects covariance ``D``.
    scale_ : float
        Residual variance ``sigma^2``.
    event_params_ : pandas.DataFrame
        Event coefficients (``gamma`` for the covariates, ``alpha:<effect>`` for the
        association) with ``coef``, ``se``, ``z``, ``p``, ``hazard_ratio``.
    baseline_hazard_ : pandas.DataFrame
        ``start``, ``end`` (months) and ``hazard`` (per month) of each piece.
    llf_ : float
        Maximised joint log-likelihood.
    longitudinal_ : LinearMixedModel
        The longitudinal part fitted alone by ML (the starting values; compare).
    columns_ : ModelColumns
        The outcome, subject, time and covariate columns (longitudinal and event)
        the fitted model reads (read-only).
    converged_ : bool
    n_iter_, n_obs_, n_subjects_, n_events_ : int
        Optimiser iterations, rows, subjects (``n_groups_``: read-only alias),
        events.
    outcome_bounds_ : tuple of float
        The outcome's range in the data dictionary (0-48 for ``alsfrs_r_total``;
        ``(-inf, inf)`` for an outcome it does not bound): forecasts stay inside.

    Raises
    ------
    ModelSpecificationError
        Unreadable formulas, unknown columns, no events in the data.
    DataValidationError
        Event columns missing or varying within a subject, negative or missing event
        times, an event before the subject's last visit.

    References
    ----------
    Henderson R, Diggle P, Dobson A (2000). Joint modelling of longitudinal
    measurements and event time data. Biostatistics 1(4):465-480.
    Rizopoulos D (2012). Joint Models for Longitudinal and Time-to-Event Data. CRC.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(200, seed=2)
    >>> table = assemble(c.visits, c.subjects)
    >>> jm = JointModel("alsfrs_r_total ~ months * delta_fs + (months | subject_id)",
    ...                 event_formula="delta_fs").fit(table)
    >>> bool(jm.converged_), list(jm.event_params_.index)
    (True, ['delta_fs', 'alpha:Intercept', 'alpha:months'])
    """

    def __init__(
        self,
        formula: str,
        *,
        event_formula: str = "delta_fs + onset_site",
        event_time: str = "death_or_tracheostomy_months",
        event: str = "event_observed",
        time: str = "months",
        n_intervals: int = 6,
        n_quad: int = 7,
        tol: float = 1e-8,
        max_iter: int = 500,
        strict: bool = False,
    ) -> None:
        self.formula = formula
        self.event_formula = event_formula
        self.event_time = event_time
        self.event = event
        self.time = time
        self.n_intervals = n_intervals
        self.n_quad = n_quad
        self.tol = tol
        self.max_iter = max_iter
        self.strict = strict

    # ------------------------------------------------------------------ fitting
    def fit(self, df: pd.DataFrame) -> JointModel:
        """Fit both parts by maximum likelihood.

        Parameters
        ----------
        df : pandas.DataFrame
            Long table (one row per visit, subject-level columns repeated on each
            row), as :func:`alsprog.data.assemble` returns; not modified.

        Returns
        -------
        JointModel
            ``self``, fitted.
        """
        from scipy.optimize import minimize

        from alsprog.models._formula import build_mixed_design
        from alsprog.models.lmm._model import LinearMixedModel
        from alsprog.models.lmm._numerics import compute_group_stats

        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, k)
        self.check_params()
        if not isinstance(self.event_formula, str):
            raise TypeError(
                f"`event_formula` must be a string; got {self.event_formula!r}."
            )
        if not isinstance(self.time, str):
            raise TypeError(f"`time` must be a column name (str); got {self.time!r}.")
        t_start = _time.perf_counter()
        if isinstance(df, pd.DataFrame):  # the mixed model's own check names others
            cols = [c for c in (self.event_time, self.event) if c in df.columns]
            df = validate_model_columns(df, cols)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lmm = LinearMixedModel(self.formula, reml=False, time=self.time).fit(df)
        design = build_mixed_design(self.formula, df)
        subjects = design.group_levels
        rows = df.iloc[design.row_positions]
        first = first_rows(rows, design.group, subjects)
        times, events = event_data(self, rows, first, design.group)
        last_visit = (
            pd.Series(pd.to_numeric(rows[self.time], errors="coerce").to_numpy())
            .groupby(design.groups)
            .max()
            .to_numpy()
            if self.time in rows.columns
            else np.zeros(len(subjects))
        )
        late = np.flatnonzero(events & (times < last_visit - 1e-9))
        if late.size:
            raise DataValidationError(
                [
                    Problem(
                        f"event time {times[i]:g} (with {self.event} true) is before "
                        f"the last visit at {self.time} {last_visit[i]:g}; an event "
                        "ends the follow-up",
                        rule="event_before_visit",
                        subject_id=str(subjects[int(i)]),
                        column=self.event_time,
                        value=float(times[i]),
                    )
                    for i in late
                ]
            )
        W, w_names, w_spec = event_design(self.event_formula, first, design.group)
        if not events.any():
            raise ModelSpecificationError(
                f"No events ({self.event} true) in the data: the event part cannot be "
                "estimated."
            )
        breaks = event_breaks(times[events], int(self.n_intervals))
        expo, interval = exposure(times, breaks)
        G = len(subjects)
        stats = compute_group_stats(design.X, design.Z, design.y, design.groups, G)
        data = JointData.from_stats(stats, W, events.astype(float), expo, interval)
        layout = JointLayout(
            p=design.X.shape[1], q=design.Z.shape[1], r=W.shape[1], k=len(breaks) - 1
        )
        from alsprog._quadrature import _grid

        nodes, log_w = _grid(int(self.n_quad), layout.q)
        phi0 = self._start(lmm, layout, expo, events, interval)
        fun, grad, hess = make_objective(data, layout, nodes, log_w)
        scale = max(abs(float(fun(phi0))), 1.0)
        res = minimize(
            lambda x: fun(x) / scale,
            phi0,
            jac=lambda x: grad(x) / scale,
            method="L-BFGS-B",
            options={
                "maxiter": int(self.max_iter),
                "gtol": float(self.tol),
                "ftol": 1e-14,
                "maxcor": 30,
            },
        )
        phi, nll, H, g = newton_polish(np.asarray(res.x, dtype=float), fun, grad, hess)
        grad_max = float(np.max(np.abs(g)))
        converged = grad_max <= 1e-3 and np.all(np.linalg.eigvalsh(H) > 0)
        cov = inverse_information(H)
        self._set_fitted(
            phi,
            cov,
            layout,
            design=design,
            w_names=w_names,
            w_spec=w_spec,
            breaks=breaks,
            nll=nll,
        )
        self.longitudinal_ = lmm
        keep = [design.group, self.time, design.outcome, *self._covariates()]
        self._fit_rows = rows[[c for c in dict.fromkeys(keep) if c in rows.columns]]
        self._fit_events = pd.DataFrame(
            {"time": times, "event": events.astype(float)}, index=subjects.astype(str)
        )
        self.converged_ = bool(converged) and np.isfinite(self.llf_)
        self.n_iter_ = int(res.nit)
        self.n_obs_ = int(stats.n)
        self.n_subjects_ = G
        self.n_events_ = int(events.sum())
        logger.info(
            "JointModel: %d rows, %d subjects, %d events, %d iterations, %.2f s",
            self.n_obs_,
            G,
            self.n_events_,
            self.n_iter_,
            _time.perf_counter() - t_start,
        )
        if not self.converged_:
            msg = (
                f"joint ML did not converge ({res.message}; max |gradient| "
                f"{grad_max:.1e}); raise max_iter or simplify the model."
            )
            not_converged(msg, strict=bool(self.strict), stacklevel=2)
        return self

    def _start(
        self,
        lmm: Any,
        layout: JointLayout,
        expo: Array,
        events: npt.NDArray[np.bool_],
        interval: npt.NDArray[np.intp],
    ) -> Array:
        sl = layout.slices()
        phi = np.zeros(layout.size)
        phi[sl["beta"]] = lmm.fe_params_.to_numpy()
        phi[sl["chol"]] = layout.pack_chol(lmm.cov_re_.to_numpy())
        phi[sl["log_sigma"]] = 0.5 * np.log(max(float(lmm.scale_), 1e-12))
        d_k = np.bincount(interval[events], minlength=layout.k)
        at_risk = expo.sum(axis=0)
        total = max(events.sum(), 1) / max(at_risk.sum(), 1e-12)
        rate = np.where(d_k > 0, d_k / np.maximum(at_risk, 1e-12), total)
        phi[sl["log_hazard"]] = np.log(rate)
        return phi

    def _set_fitted(
        self,
        phi: Array,
        cov: Array,
        layout: JointLayout,
        *,
        design: Any,
        w_names: list[str],
        w_spec: Any,
        breaks: Array,
        nll: float,
    ) -> None:
        from scipy.stats import norm

        sl = layout.slices()
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        fe, re = design.fe_names, design.re_names
        self.fe_params_ = pd.Series(phi[sl["beta"]], index=fe)
        self.bse_ = pd.Series(se[sl["beta"]], index=fe)
        L = layout.unpack_chol(phi[sl["chol"]])
        self.cov_re_ = pd.DataFrame(L @ L.T, index=re, columns=re)
        self.scale_ = float(np.exp(2.0 * phi[sl["log_sigma"]][0]))
        names = [*w_names, *(f"alpha:{n}" for n in re)]
        coef = np.concatenate([phi[sl["gamma"]], phi[sl["alpha"]]])
        coef_se = np.concatenate([se[sl["gamma"]], se[sl["alpha"]]])
        zval = np.divide(
            coef, coef_se, out=np.full_like(coef, np.nan), where=coef_se > 0
        )
        self.event_params_ = pd.DataFrame(
            {
                "coef": coef,
                "se": coef_se,
                "z": zval,
                "p": 2.0 * norm.sf(np.abs(zval)),
                "hazard_ratio": np.exp(coef),
            },
            index=pd.Index(names, name="term"),
        )
        self.baseline_hazard_ = pd.DataFrame(
            {
                "start": breaks[:-1],
                "end": breaks[1:],
                "hazard": np.exp(phi[sl["log_hazard"]]),
            }
        )
        self.llf_ = -nll
        self._phi = phi
        self._cov_phi = cov
        self._layout = layout
        self._breaks = breaks
        self._w_spec = w_spec
        self._w_names = w_names

    # ------------------------------------------------------------ persistence
    #: The suffix of the file :meth:`save` writes (a NumPy ``.npz`` archive).
    file_suffix = ".npz"
    column_params = ("time", "event_time", "event")
    param_ranges = {
        "n_intervals": "[1, 50]",
        "n_quad": "[2, 40]",
        "tol": "(0, 1]",
        "max_iter": "[1, inf]",
    }

    def describe(self) -> str:
        """What the progress lines call the model."""
        return "joint model of the visits and death/tracheostomy (ML)"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to one ``.npz`` file (never a pickle; atomic).

        See :func:`alsprog.models.joint._io.save_joint` for the layout.

        Parameters
        ----------
        path : str or os.PathLike
        """
        from alsprog.models.joint._io import save_joint

        save_joint(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> JointModel:
        """Rebuild a model written by :meth:`save`, fitted, without refitting.

        Raises
        ------
        SavedModelError
            A missing, foreign or inconsistent file (the message names the file
            and the field); the whole file is checked before anything is built.
        """
        from alsprog.models.joint._io import load_joint

        model: JointModel = load_joint(cls, path)
        return model

    # ------------------------------------------------------------------ results
    def cov_params(self) -> pd.DataFrame:
        """Covariance of the longitudinal fixed effects (observed information).

        Returns
        -------
        pandas.DataFrame
        """
        check_is_fitted(self, ["fe_params_"])
        s = self._layout.slices()["beta"]
        idx = self.fe_params_.index
        return pd.DataFrame(self._cov_phi[s, s], index=idx, columns=idx)

    @property
    def aic(self) -> float:
        """Akaike information criterion, ``-2 llf + 2 k``."""
        check_is_fitted(self, ["llf_"])
        return -2.0 * self.llf_ + 2.0 * self._layout.size

    @property
    def bic(self) -> float:
        """Bayesian information criterion with ``n`` = number of subjects."""
        check_is_fitted(self, ["llf_"])
        return -2.0 * self.llf_ + np.log(self.n_subjects_) * self._layout.size

    def summary(self, level: float = DEFAULT_LEVEL) -> Summary:
        """Both parts' estimates with standard errors and Wald intervals.

        Parameters
        ----------
        level : float, default 0.95

        Returns
        -------
        Summary
            Tables ``fixed_effects``, ``event``, ``random_effects``,
            ``baseline_hazard``.
        """
        from scipy.stats import norm

        check_is_fitted(self, ["fe_params_"])
        zq = float(norm.ppf(0.5 + level / 2))
        lo, hi = f"[{(1 - level) / 2:.3f}", f"{(1 + level) / 2:.3f}]"
        fe = pd.DataFrame({"coef": self.fe_params_, "std err": self.bse_})
        fe["z"] = fe["coef"] / fe["std err"]
        fe["P>|z|"] = 2.0 * norm.sf(np.abs(fe["z"]))
        fe[lo] = fe["coef"] - zq * fe["std err"]
        fe[hi] = fe["coef"] + zq * fe["std err"]
        ev = self.event_params_.copy()
        ev[lo] = ev["coef"] - zq * ev["se"]
        ev[hi] = ev["coef"] + zq * ev["se"]
        D = self.cov_re_.to_numpy()
        sd = np.sqrt(np.diag(D))
        re = pd.DataFrame(
            {"variance": np.diag(D), "std dev": sd}, index=self.cov_re_.index
        )
        re.loc["Residual"] = [self.scale_, np.sqrt(self.scale_)]
        header = {
            "Model": "joint (shared random effects)",
            "Formula": self.formula,
            "Event": f"{self.event_time} ~ {self.event_formula or '1'} + b",
            "Subjects": self.n_subjects_,
            "Observations": self.n_obs_,
            "Events": self.n_events_,
            "Log-likelihood": round(self.llf_, 3),
            "AIC": round(self.aic, 3),
            "Converged": self.converged_,
        }
        return Summary(
            "Joint model (longitudinal + time to event)",
            header,
            {
                "fixed_effects": fe,
                "event": ev,
                "random_effects": re,
                "baseline_hazard": self.baseline_hazard_,
            },
        )

    # --------------------------------------------------------- event predictions
    def _event_linear(self, first: pd.DataFrame) -> Array:
        """``w' gamma`` per row of ``first`` (subject-level covariates)."""
        gamma = self._phi[self._layout.slices()["gamma"]]
        if not self._w_names:
            return np.zeros(len(first))
        W, _ = without_intercept(
            self._w_spec.get_model_matrix(first, context=formula_context())
        )
        return W @ gamma

    def _cumulative_hazard(self, times: Array) -> Array:
        """Baseline cumulative hazard ``H_0(t)``."""
        e, _ = exposure(np.asarray(times, dtype=float), self._breaks)
        return e @ self.baseline_hazard_["hazard"].to_numpy()

    @property
    def outcome_bounds_(self) -> tuple[float, float]:
        """The outcome's range in the data dictionary (its longitudinal part's)."""
        check_is_fitted(self, ["fe_params_"])
        bounds: tuple[float, float] = self.longitudinal_.outcome_bounds_
        return bounds

    @property
    def alpha_(self) -> Array:
        """Association coefficients of the random effects (numpy)."""
        check_is_fitted(self, ["fe_params_"])
        return self._phi[self._layout.slices()["alpha"]]

    def predict(self, df: pd.DataFrame, *, n_quad: int = 15) -> pd.Series:
        """The point prediction of the outcome at each row of ``df``.

        Rows of subjects seen in the fit add the posterior mean of their random
        effects given their visits *and* event data (as
        :meth:`subject_trajectories`); other subjects get the population
        (fixed-effects) mean.

        ``df`` holds the covariates and the grouping column; ``n_quad`` is the
        Gauss-Hermite nodes per random effect.  Returns a Series ``predicted``
        indexed like ``df``, NaN where a covariate is missing.
        """
        from alsprog.models.joint._forecast import joint_predict

        check_is_fitted(self, ["fe_params_"])
        if not isinstance(df, pd.DataFrame):
            raise TypeError(
                f"`df` must be a pandas DataFrame; got {type(df).__name__}."
            )
        n_quad = check_int(n_quad, "n_quad", low=2, high=40)
        return joint_predict(self, df, n_quad=n_quad)

    def predict_survival(
        self,
        history: pd.DataFrame,
        at_months: Any,
        *,
        n_quad: int = 15,
        given_alive_at: float | None = None,
    ) -> pd.DataFrame:
        """Probability of being event-free at ``at_months`` given the visits so far.

        ``P(T > t | history, T > t_last)`` with ``t_last`` the patient's last visit
        (or ``given_alive_at`` when later: a landmark after the last visit): the
        event-time distribution averaged over the random effects' posterior given
        the history and survival to ``t_last``.

        Parameters
        ----------
        history : pandas.DataFrame
            Visits so far of the patients to predict (as for
            :func:`alsprog.forecast.forecast`).
        at_months : float, sequence or pandas.DataFrame
            Values of the time column (``time``: months since the first visit by
            default), not before the last visit.
        n_quad : int, default 15
            Gauss-Hermite nodes per random effect.
        given_alive_at : float, optional
            A landmark (time column's units): survival is conditional on no event
            before it, the patient's last visit when it is earlier.

        Returns
        -------
        pandas.DataFrame
            The subject column, the time column (``subject_id``, ``months`` by
            default), ``survival``.

        Examples
        --------
        >>> from alsprog.simulate import simulate_cohort
        >>> from alsprog.data import assemble
        >>> t = assemble(*(lambda c: (c.visits, c.subjects))(simulate_cohort(200, seed=2)))
        >>> jm = JointModel("alsfrs_r_total ~ months + (months | subject_id)",
        ...                 event_formula="delta_fs").fit(t)
        >>> s = jm.predict_survival(t[t["months"] < 3.5], [12, 24])
        >>> bool((s["survival"].between(0, 1)).all())
        True
        """
        from alsprog.models.joint._forecast import joint_nodes

        check_is_fitted(self, ["fe_params_"])
        from alsprog.data._history import prepare_history

        info = self.longitudinal_._design_info
        prep = prepare_history(
            history,
            at_months,
            outcome=info["outcome"],
            covariates=self._covariates(),
            subject=info["group"],
            time=self.time,
        )
        nodes = joint_nodes(self, prep, n_quad=n_quad)
        t_last = np.nan_to_num(prep.last_time, nan=0.0)
        if given_alive_at is not None:
            g = check_interval(given_alive_at, "given_alive_at", low=0)
            t_last = np.maximum(t_last, g)
            early = (
                prep.future[self.time].to_numpy(float)
                < t_last[prep.future["_subject_index"].to_numpy()]
            )
            if early.any():
                raise ValueError(
                    f"`at_months` must not be before given_alive_at ({g:g})."
                )
        gf = prep.future["_subject_index"].to_numpy()
        H_t = self._cumulative_hazard(prep.future[self.time].to_numpy(float))
        H_last = self._cumulative_hazard(t_last)[gf]
        risk = np.exp(nodes.eta[gf, None] + nodes.b[gf] @ self.alpha_)  # (n, M)
        w_last = nodes.weights[gf] * np.exp(-H_last[:, None] * risk)
        surv = np.sum(w_last * np.exp(-(H_t - H_last)[:, None] * risk), axis=1)
        surv = surv / np.maximum(w_last.sum(axis=1), 1e-300)
        return pd.DataFrame(
            {
                info["group"]: prep.future[info["group"]].astype(str).to_numpy(),
                self.time: prep.future[self.time].to_numpy(float),
                "survival": surv,
            }
        )

    def subject_trajectories(
        self,
        times: Any = None,
        *,
        subjects: Any = None,
        level: float = 0.9,
        interval: Literal["confidence", "prediction"] = "confidence",
        n_quad: int = 15,
    ) -> pd.DataFrame:
        """Fitted subjects' trajectories given all their data, with pointwise bands.

        Each subject's random effects are averaged over their posterior given the
        subject's visits *and* event data, ``p(b | y_i) S(T_i | b) h(T_i | b)^d_i``
        (Gauss-Hermite nodes of the visits' normal posterior, reweighted), the
        joint model's counterpart of the mixed model's BLUP trajectories.

        Parameters
        ----------
        times : array-like of float, optional
            Values of the time column (``time``: months since the first visit by
            default); 25 values over the fitted range by default.
        subjects : sequence, optional
            Subjects seen in the fit; all by default.
        level : float, default 0.9
        interval : {"confidence", "prediction"}, default "confidence"
            ``"confidence"`` covers the subject's mean trajectory (every model's
            default); ``"prediction"`` covers a new observation (adds the residual
            variance).
        n_quad : int, default 15
            Gauss-Hermite nodes per random effect.

        Returns
        -------
        pandas.DataFrame
            The grouping column, the time column (``months`` by default),
            ``mean``, ``se`` (of the mean trajectory), ``lower``, ``upper``.

        Examples
        --------
        >>> from alsprog.simulate import simulate_cohort
        >>> from alsprog.data import assemble
        >>> c = simulate_cohort(200, seed=2)
        >>> t = assemble(c.visits, c.subjects)
        >>> jm = JointModel("alsfrs_r_total ~ months + (months | subject_id)",
        ...                 event_formula="delta_fs").fit(t)
        >>> tr = jm.subject_trajectories([0, 6, 12], subjects=["P0001"])
        >>> tr.columns.tolist()
        ['subject_id', 'months', 'mean', 'se', 'lower', 'upper']
        """
        from alsprog.models.joint._forecast import joint_trajectories

        check_is_fitted(self, ["fe_params_"])
        level = check_interval(level, "level", low=0, high=1, low_closed=False)
        check_choice(interval, "interval", ("prediction", "confidence"))
        return joint_trajectories(
            self,
            times,
            subjects=subjects,
            level=level,
            interval=interval,
            n_quad=n_quad,
        )

    # ------------------------------------------------------------ contract
    def required_columns(self) -> ModelColumns:
        """The outcome, subject and time columns of the longitudinal part (before
        fit), as for :class:`~alsprog.models.LinearMixedModel`."""
        from alsprog.models.lmm._forecast import mixed_required_columns

        return mixed_required_columns(self.formula, self.time)

    def check_forecast_time(self, time: str) -> None:
        """Refuse to forecast when the formula does not use the model's ``time``.

        Raises
        ------
        ModelSpecificationError
            Naming ``time=`` to set: the forecasts could not move with time.
        """
        from alsprog.models.lmm._forecast import check_time_in_formula

        check_is_fitted(self, ["fe_params_"])
        check_time_in_formula(self, self.longitudinal_, str(self.time))

    def forecast_rows(
        self,
        history: Any,
        *,
        level: float,
        n_samples: int | None = None,
        rng: np.random.Generator,
        given_alive: bool = True,
    ) -> ForecastRows:
        """New patients' forecasts given their history and, with ``given_alive``,
        being event-free at each forecast time.

        A mixture of normals over Gauss-Hermite nodes of each patient's random
        effects given the history, each node reweighted by its survival
        probability, censored at :attr:`outcome_bounds_`; ``stats`` also holds
        ``loc`` and ``scale`` (the mixture's mean and SD before censoring).  See
        :meth:`TrajectoryModel.forecast_rows
        <alsprog.models._contract.TrajectoryModel.forecast_rows>`.
        """
        from alsprog.models.joint._forecast import joint_forecast

        check_is_fitted(self, ["fe_params_"])
        return joint_forecast(
            self,
            history,
            level=level,
            given_alive=bool(given_alive),
            n_samples=n_samples,
            rng=rng,
        )

    def _covariates(self) -> list[str]:
        """Columns each forecast row needs (longitudinal and event covariates)."""
        info = self.longitudinal_._design_info
        drop = {info["outcome"], info["group"]}
        cov = [v for v in info["variables"] if v not in drop]
        ev = [str(v) for v in self._w_spec.required_variables] if self._w_names else []
        return list(dict.fromkeys([*cov, *ev, self.time]))

    @property
    def columns_(self) -> ModelColumns:
        """The columns the fitted model reads (outcome, subject, time, covariates)."""
        check_is_fitted(self, ["fe_params_"])
        info = self.longitudinal_._design_info
        return ModelColumns.of(
            info["outcome"],
            info["group"],
            str(self.time),
            [info["outcome"], info["group"], *self._covariates()],
        )
