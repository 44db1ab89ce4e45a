"""The D50 sigmoid nonlinear mixed model fitted by maximum likelihood, as R's nlme.

Owns: :class:`NonlinearMixedModel` (the frequentist D50 model, nlme's
``nlme(y ~ 48 / (1 + exp(-(exp(lD50) - t) / exp(ldx))), fixed = lD50 + ldx ~ x,
random = pdSymm(lD50 + ldx ~ 1), method = "ML")``): its parameters and their
checks, the design (subject-level covariates only), the fitted attributes with
nlme's names and meanings, the criteria and its part of the model contract.
Leaves: the formula -> arrays step to :mod:`alsprog.models.bayes._design` (one
parser for the sigmoid's formulas); the Laplace-EM, the Lindstrom-Bates
log-likelihood, the covariance of the estimates and ``apVar`` to
:mod:`alsprog.models.nlme._numerics`; predictions, trajectories and forecasts to
:mod:`alsprog.models.nlme._predict`; the summary to
:mod:`alsprog.models.nlme._summary`; the saved file to
:mod:`alsprog.models.nlme._io`.
"""

from __future__ import annotations

import logging
import os
import time as _time
import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._validation import check_is_fitted
from alsprog.errors import ConvergenceWarning, ModelSpecificationError, not_converged
from alsprog.models._contract import (
    DEFAULT_LEVEL,
    DEFAULT_TRAJECTORY_LEVEL,
    ForecastRows,
    TrajectoryModel,
    outcome_bounds,
)
from alsprog.models._summary import Summary
from alsprog.models._threads import single_blas_thread
from alsprog.models.nlme._numerics import (
    SubjectStats,
    fit_lb,
    gls_fixed,
    lb_loglik,
    subject_stats,
)

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from alsprog.data._history import ModelColumns, Prepared
    from alsprog.models.bayes._design import BayesDesign

__all__ = ["NonlinearMixedModel"]

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]

#: The two subject-level parameters of the curve, as ``fe_params_`` names them.
EFFECTS = ("log_d50", "log_dx")
#: A subject-effect SD below this is a boundary (singular) fit.
SINGULAR_SD = 1e-3
#: A fit that did not converge with a subject-effect SD below this is taken to be
#: crawling towards a boundary (EM's steps shrink as an SD goes to zero).
NEAR_SINGULAR_SD = 0.05


class NonlinearMixedModel(TrajectoryModel):
    """The D50 sigmoid nonlinear mixed model fitted by maximum likelihood (R's nlme).

    Each patient follows ``y_ij = 48 / (1 + exp((t_ij - D50_i) / dx_i)) + e_ij``
    in months since onset ``t``, with ``(log D50_i, log dx_i) = B x_i + b_i``:
    fixed effects ``B`` on the patient's covariates ``x_i`` (the formula's
    right-hand side, one row per patient), subject effects ``b_i ~ N(0, Psi)``
    with ``Psi`` unstructured 2 x 2, and ``e_ij ~ N(0, sigma^2)``.  This is nlme's
    ``nlme(y ~ 48 / (1 + exp(-(exp(lD50) - t) / exp(ldx))), fixed = lD50 + ldx ~ x,
    random = pdSymm(lD50 + ldx ~ 1), groups = ~subject, method = "ML")``.

    The fit is nlme's Lindstrom-Bates (first-order conditional) estimate: each
    patient's conditional mode of ``(log D50_i, log dx_i)`` by penalised
    Gauss-Newton, the population given the model linearised at the modes, until
    neither changes: a vectorised Laplace-EM (1,000 patients take under a
    second), and where EM crawls (a subject-effect SD or correlation near its
    boundary) nlme's own alternation of PNLS and LME steps.  ``llf_`` is the maximised Lindstrom-Bates approximate log-likelihood
    nlme reports (the ML log-likelihood of the linearised model, equal to the
    Laplace approximation with the Gauss-Newton Hessian at the modes); the fixed
    effects' standard errors are nlme's ``(X'V^-1 X)^-1`` of the linearised model;
    the variance components' intervals are nlme's ``intervals()`` from ``apVar``.
    Estimates agree with nlme to about 1e-8 (``tests/reference``).

    Parameters
    ----------
    formula : str
        ``"outcome ~ covariates"``, e.g. ``"alsfrs_r_total ~ 1"`` or
        ``"alsfrs_r_total ~ onset_site + age_at_onset"``: each term acts on both
        ``log D50`` and ``log dx``.  Covariates must be constant within a patient
        (they are read once per patient); the time column is not one (the curve
        is in it) and the subject effects are implied (no ``(... | group)`` term).
        The outcome is the ALSFRS-R total (or an outcome the data dictionary does
        not bound, such as a renamed ``frs``).
    time : str, default "months_since_onset"
        Time column of the curve (months since symptom onset).
    subject : str, default "subject_id"
        Grouping column.
    tol : float, default 1e-8
        Stop when the largest change of a fixed effect or a log SD of the subject
        effects in one iteration is below ``tol``.
    max_iter : int, default 1000
        Most iterations.
    strict : bool, default False
        Raise :class:`~alsprog.errors.ConvergenceError` instead of warning when the
        fit does not converge.

    Attributes
    ----------
    fe_params_ : pandas.Series
        Fixed effects, indexed by ``(effect, term)``: effect ``log_d50`` or
        ``log_dx``, term as formulaic names it (``Intercept``,
        ``onset_site[T.spinal]``); nlme's ``fixef``.
    bse_ : pandas.Series
        Their standard errors (nlme's: the linearised model's
        ``sqrt(diag((X'V^-1 X)^-1))``).
    cov_re_ : pandas.DataFrame
        ``Psi``, the covariance of the subject effects (``log_d50``, ``log_dx``).
    scale_ : float
        Residual variance ``sigma^2``.
    random_effects_ : pandas.DataFrame
        Each patient's conditional mode of ``b_i`` (nlme's ``ranef``), one row per
        subject.
    llf_ : float
        Lindstrom-Bates approximate ML log-likelihood (nlme's ``logLik``).
    aic, bic : float
        ``-2 llf_ + 2 k`` and ``-2 llf_ + k log(n_obs_)`` with ``k`` = fixed effects
        + 3 + 1 (nlme's).
    converged_ : bool
    n_iter_ : int
        Iterations run.
    n_obs_, n_subjects_, n_dropped_ : int
        Visits used, patients, rows dropped for a missing value.
    outcome_bounds_ : tuple of float
        The outcome's range in the data dictionary (0-48 for the ALSFRS-R total):
        forecasts stay inside.
    columns_ : ModelColumns
        The columns the fitted model reads.

    Raises
    ------
    ModelSpecificationError
        From :meth:`fit`: an unreadable formula, a missing column, a non-numeric
        outcome, an outcome not on the ALSFRS-R scale, the time column or a
        random-effects term in the formula, a covariate that changes within a
        patient, collinear covariates or too few patients.

    Warns
    -----
    DataWarning
        Rows with a missing value are dropped (count in ``n_dropped_``).
    ConvergenceWarning
        The iterations did not converge, or a subject-effect SD is at the
        boundary (near zero).

    See Also
    --------
    BayesianTrajectoryModel : the same curve with priors, ``kind="sigmoid"``.
    LatentClassMixedModel : classes of D50 curves, ``link="d50"``.

    References
    ----------
    Lindstrom MJ, Bates DM (1990). Nonlinear mixed effects models for repeated
    measures data. Biometrics 46:673-687.
    Pinheiro JC, Bates DM (2000). Mixed-Effects Models in S and S-PLUS, ch. 7.
    Springer.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> n = 60; sid = np.repeat(np.arange(n), 6)
    >>> t = (rng.uniform(6, 24, n)[sid] + np.tile(np.arange(6.0) * 3, n))
    >>> d50 = np.exp(np.log(30) + rng.normal(0, 0.3, n))[sid]
    >>> dx = np.exp(np.log(10) + rng.normal(0, 0.2, n))[sid]
    >>> y = 48 / (1 + np.exp((t - d50) / dx)) + rng.normal(0, 1.5, 6 * n)
    >>> frs = np.clip(np.round(y), 0, 48)  # scores are whole
    >>> df = pd.DataFrame({"subject_id": sid, "months_since_onset": t,
    ...                    "alsfrs_r_total": frs})
    >>> m = NonlinearMixedModel("alsfrs_r_total ~ 1").fit(df)
    >>> np.exp(m.fe_params_).round(1).tolist()  # D50, dx in months (truth 30, 10)
    [30.3, 9.3]
    """

    #: The suffix of the file :meth:`save` writes (a NumPy ``.npz`` archive).
    file_suffix = ".npz"
    column_params = ("subject", "time")
    param_ranges = {"tol": "(0, 1]", "max_iter": "[1, inf]"}
    description = "nonlinear mixed model (D50 sigmoid, ML)"

    @classmethod
    def data_defaults(cls, params: Any, *, outcome: str, time: str) -> dict[str, Any]:
        """``formula`` ``outcome ~ 1`` and ``time`` ``months_since_onset`` where a
        run config leaves them unset (the sigmoid is a curve in time since onset,
        whatever the data's visit time is).

        Examples
        --------
        >>> NonlinearMixedModel.data_defaults({}, outcome="frs", time="months")
        {'time': 'months_since_onset', 'formula': 'frs ~ 1'}
        """
        from alsprog.models.bayes._design import kind_defaults

        return kind_defaults(
            {**dict(params), "kind": "sigmoid"}, outcome=outcome, time=time
        )

    def __init__(
        self,
        formula: str,
        *,
        time: str = "months_since_onset",
        subject: str = "subject_id",
        tol: float = 1e-8,
        max_iter: int = 1000,
        strict: bool = False,
    ) -> None:
        self.formula = formula
        self.time = time
        self.subject = subject
        self.tol = tol
        self.max_iter = max_iter
        self.strict = strict

    def _check_params(self) -> None:
        """Check the parameters (from :meth:`fit`, and :meth:`load` on a file's)."""
        from alsprog._formula_text import check_formula

        for name in ("formula", "time", "subject"):
            value = getattr(self, name)
            if not isinstance(value, str):
                what = "a formula" if name == "formula" else "a column name"
                raise ModelSpecificationError(
                    f"`{name}` must be {what} (str); got {value!r}."
                )
        check_formula(self.formula, kind="mixed")
        try:
            self.check_params()
        except (TypeError, ValueError) as exc:
            raise ModelSpecificationError(str(exc)) from exc

    # ------------------------------------------------------------------ fit
    def _prepare(self, df: pd.DataFrame) -> tuple[BayesDesign, Array]:
        """The sigmoid design of ``df`` (the fit's and a saved model's rebuild)
        and the per-patient covariate rows ``Xs`` (G, p)."""
        from alsprog.models.bayes._design import prepare_design

        if not isinstance(df, pd.DataFrame):
            raise ModelSpecificationError(
                f"Data must be a pandas DataFrame; got {type(df).__name__}."
            )
        self._check_columns(df)
        d = prepare_design(
            df,
            kind="sigmoid",
            formula=self.formula,
            time=self.time,
            subject=self.subject,
        )
        self._check_constant_covariates(d)
        Xs = np.asarray(d.X[d.first_rows], dtype=float)
        G, p = Xs.shape
        if np.linalg.matrix_rank(Xs) < p:
            raise ModelSpecificationError(
                f"Formula {self.formula!r}: the covariates are collinear over the "
                f"{G} patients (terms {', '.join(d.fe_names)}); drop a term or a "
                "level no patient has."
            )
        if G < 2 * p + 4 + 1:
            raise ModelSpecificationError(
                f"Too few patients: {G} for {2 * p} fixed effects and 4 variance "
                "parameters; a nonlinear mixed fit needs more patients than "
                "parameters."
            )
        return d, Xs

    def _check_columns(self, df: pd.DataFrame) -> None:
        """Name a missing column, a non-numeric outcome or time, and an outcome
        off the ALSFRS-R scale before the formula step does."""
        from alsprog._formula_text import check_formula
        from alsprog.models._contract import on_alsfrs_r_scale
        from alsprog.models._formula import parse_mixed_formula

        parsed = parse_mixed_formula(self.formula)
        rhs = [] if parsed.random else check_formula(parsed.fixed, kind="rhs").variables
        need = {
            str(self.subject): "subject column",
            str(self.time): "time column",
            parsed.outcome: "outcome",
            **{v: "covariate" for v in rhs if v not in (self.subject, self.time)},
        }
        for col, what in need.items():
            if col not in df.columns:
                raise ModelSpecificationError(
                    f"Column {col!r} (the {what}) is not in the data; the data has "
                    f"{', '.join(map(str, df.columns))}."
                )
        for col in (parsed.outcome, str(self.time)):
            if not pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(
                df[col]
            ):
                raise ModelSpecificationError(
                    f"Column {col!r} (the {need[col]}) must hold numbers; it has dtype "
                    f"{df[col].dtype} (e.g. {df[col].dropna().iloc[0]!r})."
                    if df[col].notna().any()
                    else f"Column {col!r} (the {need[col]}) holds no values."
                )
        if not on_alsfrs_r_scale(parsed.outcome):
            lo, hi = outcome_bounds(parsed.outcome)
            raise ModelSpecificationError(
                f"Formula {self.formula!r}: the D50 curve 48 / (1 + exp((t - D50) / "
                f"dx)) is of the ALSFRS-R total; {parsed.outcome!r} ranges over "
                f"{lo:g}-{hi:g}. Use LinearMixedModel for it."
            )

    def _check_constant_covariates(self, d: BayesDesign) -> None:
        """Refuse a covariate that changes within a patient, naming both."""
        frame, subj = d.frame, d.subject
        for col in d.mixed.variables:
            if col in (d.outcome, subj, d.time):
                continue
            n = frame.groupby(subj, sort=False)[col].nunique(dropna=False)
            if (n > 1).any():
                who = n.index[int(np.argmax(n.to_numpy() > 1))]
                vals = pd.unique(frame.loc[frame[subj] == who, col])[:2]
                raise ModelSpecificationError(
                    f"Column {col!r} changes within subject {who!r} ({vals[0]!r}, "
                    f"{vals[1]!r}); the model's covariates act on each patient's "
                    "D50 and dx, so they must be constant within a patient (use "
                    "its baseline value)."
                )

    def fit(self, df: pd.DataFrame) -> NonlinearMixedModel:
        """Fit the model to a long-format table (one row per visit).

        Parameters
        ----------
        df : pandas.DataFrame
            Not modified.

        Returns
        -------
        NonlinearMixedModel
            ``self``, fitted.

        Raises
        ------
        ModelSpecificationError
            See the class docstring.
        ConvergenceError
            If ``strict=True`` and the fit did not converge.

        Warns
        -----
        DataWarning, ConvergenceWarning
        """
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, k)
        self._check_params()
        t0 = _time.perf_counter()
        with single_blas_thread():
            d, Xs = self._prepare(df)
            est = fit_lb(
                d.y, d.t, d.groups, Xs, tol=float(self.tol), max_iter=int(self.max_iter)
            )
            self._set_fitted(
                d,
                Xs,
                est.beta,
                est.cov,
                est.sigma,
                est.modes,
                converged=est.converged,
                n_iter=est.iterations,
                n_dropped=int(d.mixed.n_dropped),
            )
        logger.info(
            "NonlinearMixedModel: %d rows, %d patients, %d iterations, %.3f s",
            self.n_obs_,
            self.n_subjects_,
            self.n_iter_,
            _time.perf_counter() - t0,
        )
        sd = np.sqrt(np.diag(est.cov))
        if not self.converged_:
            low = int(np.argmin(sd))
            hint = (
                f"; the SD of the subject effects of {EFFECTS[low]} is {sd[low]:.2g} "
                "and the iterations crawl towards a boundary (singular) fit: the "
                "patients may not differ detectably in it"
                if sd[low] < NEAR_SINGULAR_SD
                else "; raise max_iter, or simplify the formula"
            )
            not_converged(
                f"NonlinearMixedModel did not converge in {self.n_iter_} iterations "
                f"(tol={self.tol:g}){hint}.",
                strict=bool(self.strict),
                stacklevel=2,
            )
        elif np.any(sd < SINGULAR_SD):
            at = [EFFECTS[i] for i in np.flatnonzero(sd < SINGULAR_SD)]
            warnings.warn(
                f"boundary (singular) fit: the SD of the subject effects of "
                f"{', '.join(at)} is estimated at (or near) zero; the patients do "
                "not differ detectably in it.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _set_fitted(
        self,
        d: BayesDesign,
        Xs: Array,
        beta: Array,
        cov: Array,
        sigma: float,
        modes: Array,
        *,
        converged: bool,
        n_iter: int,
        n_dropped: int,
    ) -> None:
        """Every fitted attribute from the estimates (the fit's, a saved model's)."""
        st: SubjectStats = subject_stats(modes, d.y, d.t, d.groups)
        _, cov_beta = gls_fixed(st, Xs, cov, sigma)
        index = pd.MultiIndex.from_product(
            [list(EFFECTS), list(d.fe_names)], names=["effect", "term"]
        )
        self.fe_params_ = pd.Series(beta.ravel(), index=index)
        self.bse_ = pd.Series(np.sqrt(np.diag(cov_beta)), index=index)
        self.cov_re_ = pd.DataFrame(cov, index=list(EFFECTS), columns=list(EFFECTS))
        self.scale_ = float(sigma) ** 2
        levels = d.levels
        if not pd.api.types.is_numeric_dtype(levels):  # one dtype fitted or loaded
            levels = pd.Index(list(levels), dtype=object, name=levels.name)
        self.random_effects_ = pd.DataFrame(
            modes - Xs @ beta.T, index=levels, columns=list(EFFECTS)
        )
        self.llf_ = lb_loglik(st, Xs, beta, cov, sigma)
        self.converged_ = bool(converged)
        self.n_iter_ = int(n_iter)
        self.n_obs_ = int(len(d.y))
        self.n_subjects_ = int(len(Xs))
        self.n_dropped_ = int(n_dropped)
        self.outcome_bounds_ = outcome_bounds(d.outcome)
        self._design = d
        self._Xs = Xs
        self._beta = np.asarray(beta, dtype=float)
        self._cov = np.asarray(cov, dtype=float)
        self._sigma = float(sigma)
        self._modes = np.asarray(modes, dtype=float)
        self._stats = st
        self._cov_beta = cov_beta

    # ------------------------------------------------------------ criteria
    @property
    def n_params_(self) -> int:
        """Estimated parameters: fixed effects, 3 of ``Psi`` and ``sigma``."""
        check_is_fitted(self, ["llf_"])
        return len(self.fe_params_) + 4

    @property
    def aic(self) -> float:
        """Akaike's criterion ``-2 llf_ + 2 n_params_`` (nlme's ``AIC``)."""
        check_is_fitted(self, ["llf_"])
        return -2.0 * self.llf_ + 2.0 * self.n_params_

    @property
    def bic(self) -> float:
        """Schwarz's criterion ``-2 llf_ + n_params_ log(n_obs_)`` (nlme's ``BIC``)."""
        check_is_fitted(self, ["llf_"])
        return -2.0 * self.llf_ + self.n_params_ * float(np.log(self.n_obs_))

    def cov_params(self) -> pd.DataFrame:
        """Covariance of the fixed-effect estimates (nlme's ``vcov``): the
        linearised model's ``(X'V^-1 X)^-1``, indexed as :attr:`fe_params_`."""
        check_is_fitted(self, ["llf_"])
        idx = self.fe_params_.index
        return pd.DataFrame(self._cov_beta, index=idx, columns=idx)

    def summary(self, level: float = DEFAULT_LEVEL) -> Summary:
        """nlme's ``summary`` and ``intervals``: criteria, fixed effects with
        t-tests and intervals, variance components with intervals.

        Parameters
        ----------
        level : float, default 0.95
            Coverage of the intervals, in (0, 1).

        Returns
        -------
        Summary
            Tables ``"fixed"`` (``estimate``, ``std_error``, ``df``, ``t``,
            ``p_value``, ``ci_lower``, ``ci_upper``, as nlme prints them: t-tests
            on nlme's ``N - G - (p - 1)`` degrees of freedom with ``summary``'s
            standard errors, ``bse_`` times ``sqrt(N / (N - p))`` (nlme's
            ``adjustSigma``), and ``intervals``' t intervals on ``bse_``),
            ``"random"`` (the SDs of
            ``log D50`` and ``log dx``, their correlation and the residual SD with
            nlme's approximate intervals: normal on the log SDs, on
            ``log((1 + r)/(1 - r))`` and on ``log sigma``, from ``apVar``) and,
            with an intercept, ``"curve"`` (the reference patient's D50 and dx in
            months, intervals from the fixed-effects table).
        """
        from alsprog._validation import check_level
        from alsprog.models.nlme._summary import nlme_summary

        check_is_fitted(self, ["llf_"])
        level = check_level(level)
        return nlme_summary(self, level)

    def intervals(self, level: float = DEFAULT_LEVEL) -> dict[str, pd.DataFrame]:
        """nlme's ``intervals()``: ``{"fixed": ..., "random": ...}`` tables with
        ``lower``, ``estimate``, ``upper`` (see :meth:`summary`)."""
        s = self.summary(level)
        fixed = s.tables["fixed"][["ci_lower", "estimate", "ci_upper"]]
        random = s.tables["random"][["ci_lower", "estimate", "ci_upper"]]
        names = {"ci_lower": "lower", "ci_upper": "upper"}
        return {
            "fixed": fixed.rename(columns=names),
            "random": random.rename(columns=names),
        }

    # ------------------------------------------------------------ contract
    def required_columns(self) -> ModelColumns:
        """The outcome, subject and time columns the model will read (before fit).

        Examples
        --------
        >>> c = NonlinearMixedModel("frs ~ onset_site").required_columns()
        >>> c.outcome, c.subject, c.time
        ('frs', 'subject_id', 'months_since_onset')
        """
        from alsprog.data._history import ModelColumns
        from alsprog.models._formula import parse_mixed_formula

        outcome = parse_mixed_formula(self.formula).outcome
        t = str(self.time)
        return ModelColumns.of(outcome, str(self.subject), t, [t])

    @property
    def columns_(self) -> ModelColumns:
        """The columns the fitted model reads (outcome, subject, time, covariates)."""
        from alsprog.data._history import ModelColumns

        check_is_fitted(self, ["llf_"])
        d = self._design
        return ModelColumns.of(d.outcome, d.subject, d.time, d.mixed.variables)

    def predict(self, df: pd.DataFrame) -> pd.Series:
        """The curve at each row of ``df``: a fitted patient's at their conditional
        mode (nlme's ``predict(level = 1)``), anyone else's at the population
        values of their covariates (``level = 0``).

        Returns
        -------
        pandas.Series
            Named ``predicted``, indexed like ``df``; NaN where the time or a
            covariate is missing.

        Raises
        ------
        ModelSpecificationError
            A missing time or covariate column, or a category not seen in the fit.
        """
        from alsprog.models.nlme._predict import nlme_predict

        check_is_fitted(self, ["llf_"])
        if not isinstance(df, pd.DataFrame):
            raise TypeError(
                f"`df` must be a pandas DataFrame; got {type(df).__name__}."
            )
        return nlme_predict(self, df)

    def subject_trajectories(
        self,
        times: Any = None,
        *,
        subjects: Any = None,
        level: float = DEFAULT_TRAJECTORY_LEVEL,
        interval: Literal["confidence", "prediction"] = "confidence",
    ) -> pd.DataFrame:
        """Fitted patients' curves at ``times`` with pointwise ``level`` bands.

        The curve at the patient's conditional mode; its band by the delta method
        on the logit of the curve, ``eta = (D50 - t) / dx``, with the prediction
        error covariance of the mode in the linearised model (the conditional
        covariance plus the fixed effects' uncertainty, Henderson's; ``Psi`` and
        ``sigma`` as known), mapped back through ``48 expit(eta)``; with
        ``interval="prediction"`` a normal band for a new visit, the curve's
        delta-method variance plus ``sigma^2``, clipped at the outcome's bounds.

        Parameters
        ----------
        times : array-like of float, optional
            Values of the time column; 25 over the fitted range by default.
        subjects : sequence, optional
            Patients seen in the fit; all by default.
        level : float, default 0.9
        interval : {"confidence", "prediction"}, default "confidence"

        Returns
        -------
        pandas.DataFrame
            The subject column, the time column, ``mean``, ``se`` (delta method,
            outcome scale), ``lower``, ``upper``.

        Raises
        ------
        ModelSpecificationError
            A patient not in the fit.
        """
        from alsprog.models.nlme._predict import nlme_subject_trajectories

        check_is_fitted(self, ["llf_"])
        return nlme_subject_trajectories(self, times, subjects, level, interval)

    def forecast_rows(
        self,
        history: Prepared,
        *,
        level: float,
        n_samples: int | None = None,
        rng: np.random.Generator,
        given_alive: bool = True,
    ) -> ForecastRows:
        """New patients' forecasts given their visits (no refit).

        Per predictive draw: fixed effects from their approximate normal
        distribution (``cov_params()``), the patient's subject effects drawn
        given their visits under the fitted ``Psi`` and ``sigma`` (the Laplace
        mode, then importance resampling from a t proposal around it, as the
        Bayesian sigmoid model does per posterior draw), the curve at the future
        times and normal noise; clipped at :attr:`outcome_bounds_` and summarised
        (1,000 draws unless ``n_samples`` says).  ``stats`` also holds ``mode``:
        the curve at the patient's conditional mode under the estimates (nlme's
        ``predict`` for a patient with those visits).  ``given_alive`` is ignored.
        :func:`alsprog.forecast.forecast` is the public entry point.
        """
        from alsprog.models.nlme._predict import nlme_forecast_rows

        check_is_fitted(self, ["llf_"])
        return nlme_forecast_rows(
            self, history, level=level, n_samples=n_samples, rng=rng
        )

    # ---------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to one ``.npz`` file (never a pickle).

        The file holds a JSON header (class, alsprog version, parameters, names,
        counts, the log-likelihood), the estimates (``beta``, ``cov_re``,
        ``sigma``, the conditional ``modes``) and the model's columns of the rows
        used in the fit, so it contains those data: share it as you would share
        them.  The write is atomic.

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np, pandas as pd
        >>> rng = np.random.default_rng(1)
        >>> sid = np.repeat(np.arange(40), 5)
        >>> t = rng.uniform(6, 24, 40)[sid] + np.tile(np.arange(5.0) * 3, 40)
        >>> d50 = np.exp(np.log(30) + rng.normal(0, 0.3, 40))[sid]
        >>> dx = np.exp(np.log(10) + rng.normal(0, 0.3, 40))[sid]
        >>> y = 48 / (1 + np.exp((t - d50) / dx)) + rng.normal(0, 1.5, 200)
        >>> df = pd.DataFrame({"subject_id": sid, "months_since_onset": t,
        ...                    "alsfrs_r_total": np.clip(np.round(y), 0, 48)})
        >>> m = NonlinearMixedModel("alsfrs_r_total ~ 1").fit(df)
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "nlme.npz"
        >>> m.save(path)
        >>> NonlinearMixedModel.load(path).fe_params_.equals(m.fe_params_)
        True
        """
        from alsprog.models.nlme._io import save_model

        check_is_fitted(self, ["llf_"])
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NonlinearMixedModel:
        """Rebuild a model written by :meth:`save`, without refitting.

        Raises
        ------
        SavedModelError
            A missing file, a file of another kind or model class, version or
            format, or a missing or malformed field, named with the file.  The
            header and every array's shape and dtype are checked before anything
            is read; then finite estimates, a positive definite ``cov_re`` and
            positive ``sigma``, the design rebuilt from the saved rows (names and
            counts), the saved modes being the conditional modes (a Gauss-Newton
            step of at most ``1e-4``) and the saved log-likelihood recomputed.
        """
        from alsprog.models.nlme._io import load_model

        return load_model(cls, path)
