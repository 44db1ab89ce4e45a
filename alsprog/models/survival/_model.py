"""The survival model: Royston-Parmar flexible parametric or Cox, from a formula.

Owns: :class:`SurvivalModel` (fit from ``Surv(...) ~ covariates`` on a long or
one-row-per-subject table, time from symptom onset with delayed entry or from
baseline, predicted survival with intervals, medians, the prognostic index, hazard
ratios, summary).
Leaves: formula and table reading to :mod:`._design`; the numerics to :mod:`._cox`
and :mod:`._flexible`; scores to :mod:`._scores` and :mod:`alsprog.forecast`; risk
groups to :mod:`._groups`.
"""

from __future__ import annotations

import logging
import math
import os
import time as _time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from alsprog._validation import check_choice, check_int, check_interval, check_is_fitted
from alsprog.errors import (
    DataValidationError,
    ModelSpecificationError,
    Problem,
    not_converged,
)
from alsprog.models._contract import DEFAULT_LEVEL
from alsprog.models._estimator import EstimatorParams
from alsprog.models._summary import Summary
from alsprog.models.survival._design import (
    SurvFormula,
    covariate_design,
    event_arrays,
    parse_surv_formula,
    rhs_variables,
    subject_rows,
)

__all__ = ["SurvivalModel"]


@dataclass(frozen=True)
class _Terms:
    """Likelihood terms at the estimates: ``llf``; Cox also ``null_llf`` (at zero)
    and the baseline cumulative hazard at the covariates' means."""

    llf: float
    null_llf: float = float("nan")
    basehaz_times: Any = None
    basehaz: Any = None


@dataclass(frozen=True)
class _Prepared:
    """What a fit starts from (see :meth:`SurvivalModel._prepare`)."""

    f: SurvFormula
    covs: list[str]
    names: list[str]
    spec: Any
    means: npt.NDArray[np.float64]
    Xc: npt.NDArray[np.float64]
    entry: npt.NDArray[np.float64]
    exit: npt.NDArray[np.float64]
    event: npt.NDArray[np.float64]
    subjects: pd.Index
    n_left_out: int
    frame: pd.DataFrame


logger = logging.getLogger(__name__)
Array = npt.NDArray[np.float64]

#: ``exp(coef)``'s name on each scale (the normal scale has none).
_RATIO = {"hazard": "hazard_ratio", "odds": "odds_ratio"}


class SurvivalModel(EstimatorParams):
    """Survival of ALS patients from baseline covariates: Royston-Parmar or Cox.

    ``method="flexible"`` (default) is the Royston-Parmar model of the ENCALS
    prediction model (Westeneng et al. 2018): ``g(S(t | x)) = s(log t) + x' beta``,
    ``s`` a restricted cubic spline with ``df`` degrees of freedom (knots at the
    extremes and centiles of the log event times, as Stata's ``stpm2`` and R's
    ``rstpm2``) and ``g`` the log cumulative hazard (``scale="hazard"``:
    proportional hazards, ``exp(beta)`` are hazard ratios), the log odds
    (``"odds"``: proportional odds) or the probit (``"normal"``) of failure; exact
    maximum likelihood with analytic gradients, standard errors from the observed
    information.  ``method="cox"`` is Cox's proportional-hazards model (Efron ties,
    as R's ``survival::coxph``), for comparison.

    Right censoring and delayed entry (left truncation) are both handled: with
    ``time_origin="onset"`` time counts from symptom onset and each patient enters at
    their onset-to-baseline time (``onset``, months), the ENCALS time scale; patients
    who died before they could be seen never enter, so ignoring the delayed entry
    would bias every estimate.  ``Surv(entry, exit, event)`` gives the entry times
    directly.

    Parameters
    ----------
    formula : str
        ``"Surv(time, event) ~ covariates"`` or ``"Surv(entry, exit, event) ~
        covariates"`` (R's survival syntax; ``~ 1`` for none).  Times are in the
        data's units from its zero (months from the first visit for the data
        dictionary's ``death_or_tracheostomy_months``); ``event`` is boolean or 0/1.
        Covariates are read at each subject's baseline row (its first ``time``).
    method : {"flexible", "cox"}, default "flexible"
    scale : {"hazard", "odds", "normal"}, default "hazard"
        Royston-Parmar scale (``method="flexible"`` only).
    df : int, default 3
        Degrees of freedom of the baseline spline (``df - 1`` inner knots; 1 is the
        Weibull model on the hazard scale, log-logistic on the odds scale,
        log-normal on the normal scale).
    time_origin : {"baseline", "onset"}, default "baseline"
        ``"onset"`` adds each subject's ``onset`` column to the formula's times:
        time from symptom onset, entering at baseline (delayed entry).
    onset : str, default "onset_months_before_baseline"
        Months from symptom onset to the data's zero (``time_origin="onset"``).
    subject : str, default "subject_id"
        One row per subject is read from a long table (a table without this column
        is one row per subject already).
    time : str, default "months"
        Visit time column of a long table: each subject's covariates are read at
        their earliest visit.
    ties : {"efron", "breslow"}, default "efron"
        Cox's handling of tied event times.
    strict : bool, default False
        Raise :class:`~alsprog.errors.ConvergenceError` instead of warning.

    Attributes
    ----------
    params_, bse_ : pandas.Series
        Covariate coefficients (log hazard ratios on the hazard scale) and their
        standard errors.
    spline_params_ : pandas.Series
        The spline's coefficients ``gamma_0 .. gamma_df`` (``method="flexible"``;
        at the covariates' means ``x_means_``).
    cov_params_ : pandas.DataFrame
        Covariance of all estimates (spline, then covariates).
    knots_ : numpy.ndarray
        The spline's knots in time units (``method="flexible"``).
    baseline_hazard_ : pandas.DataFrame
        ``time``, ``cumulative_hazard`` at the covariates' means (``method="cox"``).
    llf_ : float
        Maximised log-likelihood (Cox: the partial log-likelihood, as coxph).
    n_subjects_, n_events_ : int
    converged_ : bool

    References
    ----------
    Royston P, Parmar MKB (2002). Flexible parametric proportional-hazards and
    proportional-odds models for censored survival data. Stat Med 21:2175-2197.
    Westeneng HJ et al. (2018). Prognosis for patients with amyotrophic lateral
    sclerosis: development and validation of a personalised prediction model.
    Lancet Neurol 17:423-433.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(120, seed=1)
    >>> table = assemble(c.visits, c.subjects)
    >>> m = SurvivalModel("Surv(death_or_tracheostomy_months, event_observed) "
    ...                   "~ delta_fs + onset_site", time_origin="onset").fit(table)
    >>> list(m.params_.index), bool(m.converged_)
    (['delta_fs', 'onset_site[T.spinal]'], True)
    >>> s = m.predict_survival(table, [12, 24])
    >>> s.columns.tolist()
    ['subject_id', 'months', 'survival', 'lower', 'upper']
    """

    #: The suffix of the file :meth:`save` writes.
    file_suffix: ClassVar[str] = ".npz"
    #: Allowed ranges of numeric parameters (checked before a run).
    param_ranges: ClassVar[dict[str, str]] = {"df": "[1, 10]"}

    def __init__(
        self,
        formula: str,
        *,
        method: Literal["flexible", "cox"] = "flexible",
        scale: Literal["hazard", "odds", "normal"] = "hazard",
        df: int = 3,
        time_origin: Literal["baseline", "onset"] = "baseline",
        onset: str = "onset_months_before_baseline",
        subject: str = "subject_id",
        time: str = "months",
        ties: Literal["efron", "breslow"] = "efron",
        strict: bool = False,
    ) -> None:
        self.formula = formula
        self.method = method
        self.scale = scale
        self.df = df
        self.time_origin = time_origin
        self.onset = onset
        self.subject = subject
        self.time = time
        self.ties = ties
        self.strict = strict

    # ------------------------------------------------------------ parameters
    def _checked(self) -> SurvFormula:
        err = ModelSpecificationError
        check_choice(self.method, "method", ("flexible", "cox"), error=err)
        check_choice(self.scale, "scale", ("hazard", "odds", "normal"), error=err)
        check_int(self.df, "df", low=1, high=10, error=err)
        check_choice(self.time_origin, "time_origin", ("baseline", "onset"), error=err)
        check_choice(self.ties, "ties", ("efron", "breslow"), error=err)
        for name in ("onset", "subject", "time"):
            if not isinstance(getattr(self, name), str):
                raise err(
                    f"`{name}` must be a column name; got {getattr(self, name)!r}."
                )
        if self.method == "cox" and self.scale != "hazard":
            raise err(
                f"scale={self.scale!r} is a Royston-Parmar scale; Cox's model is on "
                "the hazard scale (use method='flexible')."
            )
        return parse_surv_formula(self.formula)

    def required_columns(self) -> list[str]:
        """Every column :meth:`fit` reads (before fitting): the ``Surv`` columns,
        the covariates and, with ``time_origin="onset"``, ``onset``.

        Examples
        --------
        >>> SurvivalModel("Surv(t, d) ~ age", time_origin="onset").required_columns()
        ['t', 'd', 'age', 'onset_months_before_baseline']
        """
        f = self._checked()
        extra = [self.onset] if self.time_origin == "onset" else []
        return list(dict.fromkeys([*f.columns, *rhs_variables(f.rhs), *extra]))

    def describe(self) -> str:
        """One line: the method, scale and time scale."""
        if self.method == "cox":
            what = f"Cox proportional hazards ({self.ties} ties)"
        else:
            what = (
                f"Royston-Parmar flexible parametric, {self.scale} scale, df {self.df}"
            )
        return f"{what}, time from {self.time_origin}"

    # ------------------------------------------------------------------ fitting
    def fit(self, table: pd.DataFrame) -> SurvivalModel:
        """Fit by maximum likelihood (Cox: partial likelihood).

        Parameters
        ----------
        table : pandas.DataFrame
            A long table (one row per visit; each subject's event columns equal on
            every row, covariates read at the first visit) or one row per subject;
            not modified.  Subjects with a missing value in the model's columns
            (healthy controls have no event data) are left out with a
            :class:`~alsprog.errors.DataWarning`.

        Returns
        -------
        SurvivalModel
            ``self``, fitted.

        Raises
        ------
        ModelSpecificationError
            An unreadable formula, unknown columns, no events, collinear covariates.
        DataValidationError
            Negative or non-numeric times, exit not after entry, event indicators
            that are not boolean/0-1, event data varying within a subject.
        """
        from alsprog.models.survival._cox import cox_fit
        from alsprog.models.survival._flexible import rp_fit

        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, k)
        if not isinstance(table, pd.DataFrame):
            raise TypeError(
                f"`table` must be a pandas DataFrame; got {type(table).__name__}."
            )
        t0 = _time.perf_counter()
        prep = self._prepare(table)
        late = prep.entry > 0
        entry = prep.entry if late.any() else None
        if self.method == "cox":
            cox = cox_fit(prep.exit, prep.event, prep.Xc, entry=entry, ties=self.ties)
            self.n_iter_ = cox.n_iter
            theta, cov, converged = cox.coef, cox.cov, cox.converged
            knots = None
            terms = _Terms(cox.loglik[1], cox.loglik[0], cox.basehaz_times, cox.basehaz)
        else:
            rp = rp_fit(
                prep.exit,
                prep.event,
                prep.Xc,
                entry=entry,
                scale=self.scale,
                df=int(self.df),
            )
            theta = np.concatenate([rp.gamma, rp.beta])
            cov, converged, knots = rp.cov, rp.converged, rp.knots
            terms = _Terms(rp.loglik)
        self._set_fitted(prep, theta, cov, knots, terms)
        self.converged_ = bool(converged) and bool(np.all(np.isfinite(cov)))
        logger.info(
            "SurvivalModel: %d subjects, %d events, %.2f s",
            self.n_subjects_,
            self.n_events_,
            _time.perf_counter() - t0,
        )
        if not self.converged_:
            not_converged(
                "the survival model's maximum likelihood did not converge; simplify "
                "the covariates or lower df.",
                strict=bool(self.strict),
                stacklevel=2,
            )
        return self

    def _prepare(self, table: pd.DataFrame) -> _Prepared:
        """The checked formula, each subject's baseline row and event data, and
        the centred covariates (what a fit, and a saved model's restore, start
        from)."""
        f = self._checked()
        covs = rhs_variables(f.rhs)
        onset = [self.onset] if self.time_origin == "onset" else []
        rows = subject_rows(
            table,
            [*f.columns, *covs, *onset],
            subject=self.subject,
            time=self.time,
            constant=[*f.columns, *onset],
        )
        origin = self._origin(rows)
        ed = event_arrays(rows, f, origin=origin, covariates=covs)
        if ed.event.sum() == 0:
            raise ModelSpecificationError(
                f"No events ({f.event} true) among the {len(ed.exit)} complete "
                "subjects: a survival model cannot be estimated."
            )
        used = rows.loc[ed.keep]
        X, names, spec = covariate_design(f.rhs, used)
        if X.shape[1] and np.linalg.matrix_rank(X - X.mean(axis=0)) < X.shape[1]:
            raise ModelSpecificationError(
                f"The covariates of {f.rhs!r} are collinear (or one is constant) "
                f"among the {len(X)} subjects: {', '.join(names)}."
            )
        means = X.mean(axis=0) if len(X) else np.zeros(X.shape[1])
        frame = used.reset_index(drop=True)
        frame.insert(0, self.subject, used.index.astype(str))
        return _Prepared(
            f=f,
            covs=covs,
            names=names,
            spec=spec,
            means=means,
            Xc=X - means,
            entry=ed.entry,
            exit=ed.exit,
            event=ed.event,
            subjects=ed.subjects,
            n_left_out=int((~ed.keep).sum()),
            frame=frame,
        )

    def _likelihood_terms(
        self, prep: _Prepared, theta: Array, log_knots: Array | None
    ) -> _Terms:
        """The log-likelihood of ``theta`` on the prepared rows (Cox: also at zero,
        and the baseline cumulative hazard): what a saved model's restore checks."""
        from alsprog.models.survival._cox import (
            _baseline_hazard,
            _risk_sets,
            cox_partial,
        )
        from alsprog.models.survival._flexible import rp_data, rp_loglik

        if log_knots is not None:
            data = rp_data(
                prep.exit, prep.event, prep.Xc, prep.entry, log_knots, self.scale
            )
            return _Terms(rp_loglik(np.asarray(theta, float), data)[0])
        beta = np.asarray(theta, float)
        late = prep.entry > 0
        start = prep.entry if late.any() else np.full(len(prep.exit), -np.inf)
        rs = _risk_sets(start, prep.exit, prep.event.astype(bool))

        def ll(b: Array) -> float:
            return float(cox_partial(b, prep.Xc, rs, self.ties, derivatives=False)[0])

        return _Terms(
            ll(beta),
            ll(np.zeros_like(beta)),
            rs.times,
            _baseline_hazard(beta, prep.Xc, rs, self.ties),
        )

    def _set_fitted(
        self,
        prep: _Prepared,
        theta: Array,
        cov: Array,
        log_knots: Array | None,
        terms: _Terms | None = None,
    ) -> None:
        """Every fitted attribute from the estimates ``theta`` (spline, then
        covariates; the covariates alone for Cox), their covariance and the
        likelihood terms the fit computed (recomputed when not given: a restore)."""
        if terms is None:
            terms = self._likelihood_terms(prep, theta, log_knots)
        names = prep.names
        n_spline = 0 if log_knots is None else len(log_knots)
        beta = np.asarray(theta[n_spline:], float)
        llf = terms.llf
        if log_knots is None:
            self.baseline_hazard_ = pd.DataFrame(
                {"time": terms.basehaz_times, "cumulative_hazard": terms.basehaz}
            )
            self.null_llf_ = float(terms.null_llf)
        else:
            spline_names = [f"gamma_{j}" for j in range(n_spline)]
            self.spline_params_ = pd.Series(
                np.asarray(theta[:n_spline], float), index=spline_names, name="coef"
            )
            self._log_knots = np.asarray(log_knots, float)
            self.knots_ = np.exp(self._log_knots)
        all_names = [*(f"gamma_{j}" for j in range(n_spline)), *names]
        self.params_ = pd.Series(beta, index=names, name="coef", dtype=float)
        self.bse_ = pd.Series(
            np.sqrt(np.diag(cov))[n_spline:], index=names, name="se", dtype=float
        )
        self.cov_params_ = pd.DataFrame(cov, index=all_names, columns=all_names)
        self.x_means_ = pd.Series(prep.means, index=names, dtype=float)
        self.llf_ = float(llf)
        self.n_subjects_ = len(prep.exit)
        self.n_events_ = int(prep.event.sum())
        self.n_left_out_ = prep.n_left_out
        self._f = prep.f
        self._spec = prep.spec
        self._covs = prep.covs
        self._frame = prep.frame
        self._fit_events = pd.DataFrame(
            {"entry": prep.entry, "exit": prep.exit, "event": prep.event},
            index=prep.subjects,
        )
        self._fit_pi = prep.Xc @ beta

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to ``path`` (a NumPy ``.npz``, never a pickle):
        the parameters, the estimates, their covariance and the subjects' baseline
        rows it was fitted on, so :meth:`load` rebuilds the covariates' design (and
        checks the log-likelihood) by the fit's own code.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> d = pd.DataFrame({"t": [1.0, 2, 3, 4, 5, 6], "d": [1, 1, 1, 1, 0, 1],
        ...                   "x": [0.0, 1, 0, 1, 0, 1]})
        >>> m = SurvivalModel("Surv(t, d) ~ x", method="cox").fit(d)
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.npz"
        >>> m.save(p)
        >>> round(float(SurvivalModel.load(p).params_["x"]), 6)
        -0.273948
        """
        from alsprog.models.survival._io import save_model

        check_is_fitted(self, ["params_"])
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SurvivalModel:
        """A model written by :meth:`save`.

        Raises
        ------
        SavedModelError
            A file that is not an alsprog survival model of this version, or whose
            fields disagree with each other (naming the field).
        """
        from alsprog.models.survival._io import load_model

        return load_model(cls, path)  # type: ignore[no-any-return]

    def _origin(self, rows: pd.DataFrame) -> Array | None:
        """Months from the time origin to each row's zero (onset origin), else None."""
        if self.time_origin != "onset":
            return None
        v = rows[self.onset]
        arr = pd.to_numeric(v, errors="coerce").astype("float64")
        out = arr.to_numpy(dtype=float, na_value=np.nan)
        bad = np.flatnonzero(v.notna().to_numpy() & ~(out >= 0))
        if bad.size:
            raise DataValidationError(
                [
                    Problem(
                        f"onset-to-baseline time {v.iloc[i]!r} is not a number >= 0",
                        rule="onset",
                        subject_id=str(rows.index[i]),
                        column=self.onset,
                        value=v.iloc[i],
                    )
                    for i in bad[:20]
                ]
            )
        return out

    # --------------------------------------------------------------- results
    @property
    def n_params_(self) -> int:
        """Estimated parameters (spline and covariates)."""
        check_is_fitted(self, ["params_"])
        return int(self.cov_params_.shape[0])

    @property
    def aic(self) -> float:
        """Akaike's criterion, ``-2 llf + 2 k`` (Cox: from the partial likelihood)."""
        return -2.0 * self.llf_ + 2.0 * self.n_params_

    @property
    def bic(self) -> float:
        """``-2 llf + k log(n)``, n the number of events for Cox (as coxph's
        ``BIC``), of subjects otherwise."""
        n = self.n_events_ if self.method == "cox" else self.n_subjects_
        return -2.0 * self.llf_ + self.n_params_ * math.log(n)

    def coef_table(self, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
        """The covariates' coefficients with Wald tests and ``level`` intervals, and
        their exponentials (hazard or odds ratios) where the scale has them.

        Returns
        -------
        pandas.DataFrame
            Indexed by covariate: ``coef``, ``se``, ``z``, ``p``, ``lower``,
            ``upper`` and, on the hazard (odds) scale, ``hazard_ratio``
            (``odds_ratio``) with ``ratio_lower``, ``ratio_upper``.
        """
        check_is_fitted(self, ["params_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        q = stats.norm.ppf(0.5 + level / 2)
        b, se = self.params_.to_numpy(), self.bse_.to_numpy()
        z = b / se
        out = pd.DataFrame(
            {
                "coef": b,
                "se": se,
                "z": z,
                "p": 2 * stats.norm.sf(np.abs(z)),
                "lower": b - q * se,
                "upper": b + q * se,
            },
            index=self.params_.index,
        )
        ratio = _RATIO.get("hazard" if self.method == "cox" else self.scale)
        if ratio:
            out[ratio] = np.exp(b)
            out["ratio_lower"] = np.exp(out["lower"])
            out["ratio_upper"] = np.exp(out["upper"])
        return out

    def hazard_ratios(self, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
        """Hazard ratios with ``level`` confidence intervals (hazard scale or Cox).

        Returns
        -------
        pandas.DataFrame
            ``hazard_ratio``, ``lower``, ``upper``, ``p`` by covariate.

        Raises
        ------
        ModelSpecificationError
            On the odds or normal scale, whose coefficients are not log hazard
            ratios (see :meth:`coef_table`).
        """
        check_is_fitted(self, ["params_"])
        if self.method != "cox" and self.scale != "hazard":
            raise ModelSpecificationError(
                f"On the {self.scale} scale the coefficients are not log hazard "
                "ratios; read coef_table() (odds ratios on the odds scale)."
            )
        t = self.coef_table(level)
        return pd.DataFrame(
            {
                "hazard_ratio": t["hazard_ratio"],
                "lower": t["ratio_lower"],
                "upper": t["ratio_upper"],
                "p": t["p"],
            }
        )

    def summary(self, level: float = DEFAULT_LEVEL) -> Summary:
        """Header facts, the coefficient table and (Royston-Parmar) the spline.

        Examples
        --------
        >>> import pandas as pd
        >>> d = pd.DataFrame({"t": [1.0, 2, 3, 4, 5, 6], "d": [1, 1, 1, 1, 0, 1],
        ...                   "x": [0.0, 1, 0, 1, 0, 1]})
        >>> print(SurvivalModel("Surv(t, d) ~ x", method="cox").fit(d).summary().title)
        Cox proportional hazards (efron ties), time from baseline
        """
        check_is_fitted(self, ["params_"])
        header: dict[str, object] = {
            "Formula": self._f.text,
            "Subjects": self.n_subjects_,
            "Events": self.n_events_,
            "Log-likelihood": round(self.llf_, 4),
            "AIC": round(self.aic, 2),
            "BIC": round(self.bic, 2),
        }
        if self.method != "cox":
            header["Knots (time)"] = ", ".join(f"{k:.4g}" for k in self.knots_)
        if self.n_left_out_:
            header["Left out"] = self.n_left_out_
        tables = {"coefficients": self.coef_table(level)}
        if self.method != "cox":
            sp = self.cov_params_.index[: len(self.spline_params_)]
            tables["spline"] = pd.DataFrame(
                {
                    "coef": self.spline_params_.to_numpy(),
                    "se": np.sqrt(np.diag(self.cov_params_.loc[sp, sp])),
                },
                index=self.spline_params_.index,
            )
        notes = [] if self.converged_ else ["The fit did not converge."]
        return Summary(self.describe(), header, tables, notes=notes)

    # -------------------------------------------------------------- prediction
    def _new_rows(self, table: pd.DataFrame) -> tuple[pd.DataFrame, Array, Array]:
        """Baseline rows of ``table``, their centred covariates and origin shift."""
        check_is_fitted(self, ["params_"])
        if not isinstance(table, pd.DataFrame):
            raise TypeError(
                f"`table` must be a pandas DataFrame; got {type(table).__name__}."
            )
        onset = [self.onset] if self.time_origin == "onset" else []
        rows = subject_rows(
            table,
            [*self._covs, *onset],
            subject=self.subject,
            time=self.time,
            constant=onset,
        )
        problems = [
            Problem(
                f"{c!r} is missing; the survival model needs it",
                rule="required",
                subject_id=str(rows.index[i]),
                column=c,
            )
            for c in [*self._covs, *onset]
            for i in np.flatnonzero(rows[c].isna().to_numpy())[:20]
        ]
        if problems:
            raise DataValidationError(problems)
        if self._covs:
            X, _, _ = covariate_design(self._f.rhs, rows, self._spec)
        else:
            X = np.zeros((len(rows), 0))
        origin = self._origin(rows)
        shift = np.zeros(len(rows)) if origin is None else origin
        return rows, X - self.x_means_.to_numpy(), shift

    def complete_subjects(self, table: pd.DataFrame) -> pd.Index:
        """The subjects of ``table`` with every covariate the model reads at their
        baseline row (and ``onset`` for ``time_origin="onset"``): those it can
        predict.

        Returns
        -------
        pandas.Index
            Subject labels as text.
        """
        check_is_fitted(self, ["params_"])
        onset = [self.onset] if self.time_origin == "onset" else []
        rows = subject_rows(
            table,
            [*self._covs, *onset],
            subject=self.subject,
            time=self.time,
            constant=[],
        )
        ok = rows.notna().all(axis=1).to_numpy()
        return rows.index[ok].astype(str)

    def prognostic_index(self, table: pd.DataFrame) -> pd.Series:
        """The linear predictor ``(x - x_mean)' beta`` of each subject: higher is a
        worse prognosis on the hazard and odds scales (ENCALS's prognostic index).

        Returns
        -------
        pandas.Series
            Indexed by subject, named ``prognostic_index``.
        """
        rows, Xc, _ = self._new_rows(table)
        return pd.Series(
            Xc @ self.params_.to_numpy(), index=rows.index, name="prognostic_index"
        )

    def _log_surv(self, u: Array, Xc: Array, with_grad: bool = False) -> Any:
        """``log S(u | x)`` on the model's time axis (u > 0; 0 at u <= 0), shape
        (n, k) for u (n, k); with ``with_grad`` also its gradient in the
        parameters, shape (n, k, n_params)."""
        from alsprog.models.survival._flexible import _scale_terms, rcs_basis

        beta = self.params_.to_numpy()
        lin = (Xc @ beta)[:, None]
        pos = u > 0
        if self.method == "cox":
            bt = self.baseline_hazard_["time"].to_numpy()
            H0 = self.baseline_hazard_["cumulative_hazard"].to_numpy()
            i = np.searchsorted(bt, u, side="right") - 1
            H = np.where(i >= 0, H0[np.maximum(i, 0)], 0.0)
            return -H * np.exp(lin)
        gamma = self.spline_params_.to_numpy()
        z = np.log(np.where(pos, u, 1.0))
        B, _ = rcs_basis(z.ravel(), self._log_knots)
        eta = (B @ gamma).reshape(u.shape) + lin
        log_s, dlog_s, _, _ = _scale_terms(eta.ravel(), self.scale)  # type: ignore[arg-type]
        log_s = np.where(pos, log_s.reshape(u.shape), 0.0)
        if not with_grad:
            return log_s
        dl = np.where(pos, dlog_s.reshape(u.shape), 0.0)
        Bk = B.reshape(*u.shape, -1)
        Xk = np.broadcast_to(Xc[:, None, :], (*u.shape, Xc.shape[1]))
        grad = dl[..., None] * np.concatenate([Bk, Xk], axis=-1)
        return log_s, grad

    def predict_survival(
        self,
        table: pd.DataFrame,
        times: Any,
        *,
        given_alive_at: float = 0.0,
        level: float = DEFAULT_LEVEL,
    ) -> pd.DataFrame:
        """Each subject's probability of being event-free at ``times``.

        ``P(T > t | x, T > given_alive_at)``: times on the data's axis (the
        formula's time units from its zero, months from the first visit for the
        data dictionary's event columns), conditional on being event-free at
        ``given_alive_at`` (the first visit by default; with ``time_origin="onset"``
        that is conditional on surviving from onset to baseline).

        Parameters
        ----------
        table : pandas.DataFrame
            Long or one-row-per-subject table with the covariates (and ``onset``
            for ``time_origin="onset"``).
        times : float or sequence of float
            Times at which to predict (>= ``given_alive_at``).
        given_alive_at : float, default 0
            The landmark: predictions are conditional on no event before it.
        level : float, default 0.95
            Pointwise interval (Royston-Parmar: delta method on ``log(-log S)``,
            the parameters' covariance; Cox: no interval columns).

        Returns
        -------
        pandas.DataFrame
            The subject column, the time column (``time``), ``survival`` and, for
            Royston-Parmar, ``lower``, ``upper``.
        """
        rows, Xc, shift = self._new_rows(table)
        times_a = np.atleast_1d(np.asarray(times, dtype=float))
        g = check_interval(given_alive_at, "given_alive_at", low=0)
        if times_a.ndim != 1 or not np.all(np.isfinite(times_a)) or np.any(times_a < g):
            raise ValueError(
                f"`times` must be finite values >= given_alive_at ({g:g}); got "
                f"{times!r:.80}."
            )
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        n, k = len(rows), len(times_a)
        u = shift[:, None] + times_a[None, :]
        u0 = np.broadcast_to((shift + g)[:, None], (n, k))
        out = {
            self.subject: np.repeat(rows.index.astype(str).to_numpy(), k),
            self.time: np.tile(times_a, n),
        }
        if self.method == "cox":
            diff = self._log_surv(u, Xc) - self._log_surv(u0, Xc)
            out["survival"] = np.exp(diff).ravel()
            return pd.DataFrame(out)
        ls, gr = self._log_surv(u, Xc, True)
        if np.any(u0 > 0):
            ls0, gr0 = self._log_surv(u0, Xc, True)
        else:  # conditional on nothing: S(0) = 1
            ls0, gr0 = np.zeros_like(ls), np.zeros_like(gr)
        diff = np.minimum(ls - ls0, 0.0)
        V = self.cov_params_.to_numpy()
        q = stats.norm.ppf(0.5 + level / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.log(-diff)
            dg = (gr - gr0) / diff[..., None]
            se = np.sqrt(np.einsum("nkp,pq,nkq->nk", dg, V, dg))
        surv = np.exp(diff)
        lower = np.where(diff < 0, np.exp(-np.exp(w + q * se)), 1.0)
        upper = np.where(diff < 0, np.exp(-np.exp(w - q * se)), 1.0)
        out |= {
            "survival": surv.ravel(),
            "lower": lower.ravel(),
            "upper": upper.ravel(),
        }
        return pd.DataFrame(out)

    def predict_median(
        self, table: pd.DataFrame, *, given_alive_at: float = 0.0
    ) -> pd.Series:
        """Each subject's median event-free time on the data's axis (from its zero),
        conditional on being event-free at ``given_alive_at``.

        Royston-Parmar: the root of ``S(t) = 1/2`` (the spline is linear in log time
        beyond its boundary knots, so it is always reached on the hazard scale);
        Cox: the first time the step curve is at or below 1/2, NaN when it never
        is (as R's ``survfit``).

        Returns
        -------
        pandas.Series
            Indexed by subject, named ``median``.
        """
        rows, Xc, shift = self._new_rows(table)
        g = check_interval(given_alive_at, "given_alive_at", low=0)
        n = len(rows)
        base = self._log_surv((shift + g)[:, None], Xc)[:, 0]
        target = base + math.log(0.5)
        if self.method == "cox":
            bt = self.baseline_hazard_["time"].to_numpy()
            ls = self._log_surv(np.broadcast_to(bt, (n, len(bt))).copy(), Xc)
            ok = (ls <= target[:, None] + 1e-12) & (bt[None, :] > (shift + g)[:, None])
            first = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
            med = np.where(first >= 0, bt[np.maximum(first, 0)] - shift, np.nan)
            return pd.Series(med, index=rows.index, name="median")
        lo = np.log(np.maximum(shift + g, 1e-9))
        hi = lo + 1.0
        for _ in range(60):  # widen until S is below one half
            above = self._log_surv(np.exp(hi)[:, None], Xc)[:, 0] > target
            if not above.any():
                break
            hi = np.where(above, hi + 2.0, hi)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            above = self._log_surv(np.exp(mid)[:, None], Xc)[:, 0] > target
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        med = np.exp(0.5 * (lo + hi)) - shift
        return pd.Series(med, index=rows.index, name="median")
