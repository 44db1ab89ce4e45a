"""Mixed model for repeated measures (MMRM) at scheduled visits, fitted by REML.

Owns: :class:`MMRM` (generalised least squares with an unstructured, compound-symmetry
or AR(1) within-subject covariance over visits, REML), least-squares means per visit x
arm, and treatment contrasts with Satterthwaite degrees of freedom.
Leaves: the REML criterion and covariance structures to
:mod:`alsprog.models.mmrm._numerics`; the checked rows, design and reference grid to
:mod:`alsprog.models.mmrm._design`; forecasts of new patients, fitted subjects'
trajectories and predictions (the conditional multivariate normal over visits) to
:mod:`alsprog.models.mmrm._forecast`; the saved file to
:mod:`alsprog.models.mmrm._io`; lme4-style random-effects models to
:mod:`alsprog.models.lmm._model`.

Satterthwaite degrees of freedom for ``c'beta`` are ``2 v^2 / (g' A g)`` with
``v = c'C^{-1}c``, ``g`` its exact gradient in the covariance parameters and ``A`` twice
the inverse Hessian of ``-2 l_R`` (as the R package mmrm does).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import linalg
from scipy.special import ndtri

from alsprog._formula_text import check_formula
from alsprog._validation import check_choice, check_interval, check_is_fitted
from alsprog.errors import (
    ModelSpecificationError,
    not_converged,
)
from alsprog.models._contract import DEFAULT_LEVEL, TrajectoryModel, outcome_bounds
from alsprog.models._summary import Summary
from alsprog.models._threads import single_blas_thread
from alsprog.models.mmrm._checks import (
    _assess_convergence,
    _text,
)
from alsprog.models.mmrm._design import build_design
from alsprog.models.mmrm._numerics import (
    contrast_variance_grad,
    cov_jacobian,
    covariance_from_params,
    evaluate_reml,
    n_cov_params,
    numerical_hessian,
    start_params,
)

if TYPE_CHECKING:
    from alsprog.data._history import ModelColumns, Prepared
    from alsprog.models._contract import ForecastRows

__all__ = ["MMRM"]

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
Structure = Literal["unstructured", "compound_symmetry", "ar1"]


# --------------------------------------------------------------------- estimator
class MMRM(TrajectoryModel):
    """Mixed model for repeated measures: GLS over scheduled visits, fitted by REML.

    The primary analysis of most ALS trials: change from baseline at each scheduled
    visit, with a within-subject covariance over visits (unstructured by default),
    least-squares means per visit x arm and the treatment contrast at the final visit
    with Satterthwaite degrees of freedom.

    Parameters
    ----------
    formula : str
        Fixed effects, e.g. ``"chg ~ visit * arm + baseline_total"``; the visit column
        is treated as categorical (levels in sorted order, or a categorical's order).
    subject : str, default "subject_id"
        Subject column.
    visit : str, default "visit"
        Scheduled-visit column.
    arm : str, default "arm"
        Treatment column.
    reference : str, optional
        Reference level of ``arm`` (e.g. ``"placebo"``); by default the first level
        (a categorical's first category, else the smallest value).  From Python any
        value of the column works (a numeric arm's ``0``).
    covariance : {"unstructured", "compound_symmetry", "ar1"}, default "unstructured"
        Within-subject covariance over visits (AR(1) by visit index).
    tol : float, default 1e-10
        Relative tolerance of the optimiser.
    max_iter : int, default 500
    strict : bool, default False
        Raise :class:`~alsprog.errors.ConvergenceError` instead of warning.

    Attributes
    ----------
    fe_params_, bse_ : pandas.Series
        Fixed effects and standard errors (GLS, ``C^{-1}``).
    cov_ : pandas.DataFrame
        Estimated visit covariance matrix.
    llf_ : float
        REML log-likelihood (``-0.5 * criterion``).
    lsmeans_ : pandas.DataFrame
        Least-squares mean per visit x arm (numeric covariates at their mean, other
        factors averaged with equal weights): ``estimate, std_error, df, ci_lower,
        ci_upper``.
    visits_, arms_ : list
        Visit and arm levels in model order.
    converged_ : bool
    n_obs_, n_subjects_, n_dropped_ : int

    Raises
    ------
    ModelSpecificationError
        Unknown columns, duplicated subject x visit rows, fewer than two visits or
        arms, collinear fixed effects, too few observations.

    See Also
    --------
    LinearMixedModel : random intercept/slope models over continuous time.

    References
    ----------
    Mallinckrodt CH et al. (2008). Recommendations for the primary analysis of
    continuous endpoints in longitudinal clinical trials. Drug Inf J 42:303-319.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> n = 60; visits = [3, 6, 9]
    >>> arm = np.repeat(["placebo", "active"], n // 2)
    >>> df = pd.DataFrame({"subject_id": np.repeat(np.arange(n), 3),
    ...                    "visit": np.tile(visits, n), "arm": np.repeat(arm, 3)})
    >>> b = rng.normal(0, 2, n)
    >>> df["chg"] = (-0.9 * df["visit"] + 0.3 * df["visit"] * (df["arm"] == "active")
    ...              + b[df["subject_id"]] + rng.normal(0, 1.5, len(df)))
    >>> m = MMRM("chg ~ visit * arm", reference="placebo").fit(df)
    >>> c = m.contrast().iloc[0]  # complete balanced data: Satterthwaite df = n - 2
    >>> round(float(c["estimate"]), 2), round(float(c["df"]), 3)
    (2.52, 58.0)
    """

    #: The columns a run config's parameters name (checked against its tables).
    column_params = ("subject", "visit", "arm")
    #: As :meth:`fit` checks them.
    param_ranges = {"tol": "(0, 1]", "max_iter": "[1, inf]"}
    description = "MMRM ({covariance} covariance)"

    def __init__(
        self,
        formula: str,
        *,
        subject: str = "subject_id",
        visit: str = "visit",
        arm: str = "arm",
        reference: str | None = None,
        covariance: Structure = "unstructured",
        tol: float = 1e-10,
        max_iter: int = 500,
        strict: bool = False,
    ) -> None:
        self.formula = formula
        self.subject = subject
        self.visit = visit
        self.arm = arm
        self.reference = reference
        self.covariance = covariance
        self.tol = tol
        self.max_iter = max_iter
        self.strict = strict

    # ------------------------------------------------------------------- fit
    def fit(self, df: pd.DataFrame) -> MMRM:
        """Fit by REML.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per subject x scheduled visit; not modified.

        Returns
        -------
        MMRM
            ``self``.

        Raises
        ------
        ModelSpecificationError, ConvergenceError

        Warns
        -----
        DataWarning
            Rows with missing values are dropped.
        ConvergenceWarning
        """
        with single_blas_thread():
            return self._fit(df)

    def _fit(self, df: pd.DataFrame) -> MMRM:
        from scipy import optimize

        for attr in [
            a for a in vars(self) if a.endswith("_") and not a.startswith("__")
        ]:
            delattr(self, attr)
        self.check_params()
        for name in ("subject", "visit", "arm"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(
                    f"`{name}` must be a column name (str); got {getattr(self, name)!r}."
                )
        d = build_design(self, df)
        T = len(d["visits"])
        patterns = d["patterns"]
        structure = self.covariance
        k = n_cov_params(structure, T)
        if d["n"] - d["p"] <= k:
            raise ModelSpecificationError(
                f"Too few observations: {d['n']} rows for {d['p']} fixed effects and {k} "
                f"covariance parameters ({structure}, {T} visits)."
            )
        theta0 = start_params(d["Sigma0"], structure)

        def fun(th: Array) -> tuple[float, Array]:
            try:
                Sig = covariance_from_params(th, structure, T)
                ev = evaluate_reml(Sig, patterns, True)
            except (np.linalg.LinAlgError, linalg.LinAlgError, FloatingPointError):
                return np.inf, np.zeros_like(th)
            J = cov_jacobian(th, structure, T)
            G = cast(Array, ev.grad_sigma)
            return ev.value, np.einsum("kij,ij->k", J, G)

        res = optimize.minimize(
            fun,
            theta0,
            jac=True,
            method="L-BFGS-B",
            options={
                "ftol": self.tol * 1e-3,
                "gtol": 1e-9,
                "maxiter": self.max_iter,
                "maxls": 50,
            },
        )
        theta = res.x
        H = numerical_hessian(lambda t: fun(t)[1], theta)
        g = fun(theta)[1]
        newton = np.full_like(theta, np.inf)
        try:
            if np.all(np.linalg.eigvalsh(H) > 0):
                newton = np.linalg.solve(H, g)
                cand = theta - newton
                if fun(cand)[0] <= res.fun + 1e-12 * abs(res.fun):
                    theta = cand
        except np.linalg.LinAlgError:
            pass
        Sigma = covariance_from_params(theta, structure, T)
        ev = evaluate_reml(Sigma, patterns, False)
        evals = np.linalg.eigvalsh(0.5 * (H + H.T))
        converged, decrement = _assess_convergence(ev.value, fun(theta)[1], H, evals)
        self._set_state(
            d,
            theta=theta,
            sigma=Sigma,
            beta=ev.beta,
            cinv=ev.Cinv,
            llf=float(-0.5 * ev.value),
            theta_cov=(
                2.0 * np.linalg.inv(0.5 * (H + H.T)) if evals.min() > 0 else None
            ),
            converged=converged,
        )
        if not converged:
            if not np.isfinite(ev.value):
                why = "the REML criterion is not finite"
            elif not evals.min() > 0:
                why = (
                    "the REML Hessian is not positive definite (a boundary or "
                    "unidentified covariance)"
                )
            else:
                why = (
                    "a Newton step would still lower the REML criterion by "
                    f"{decrement / 2:.1e}"
                )
            fix = (
                f"raise max_iter (now {self.max_iter}), try "
                if res.status == 1
                else "try "
            )
            msg = (
                f"MMRM REML optimisation did not converge: {why}; the optimiser said "
                f"{_text(res.message)!r}. {fix.capitalize()}"
                "covariance='compound_symmetry' or check for sparse visits."
            )
            not_converged(msg, strict=bool(self.strict), stacklevel=3)
        return self

    def _set_state(
        self,
        d: dict,
        *,
        theta: Array,
        sigma: Array,
        beta: Array,
        cinv: Array,
        llf: float,
        theta_cov: npt.NDArray[np.floating] | None,
        converged: bool,
    ) -> None:
        """Set the fitted attributes (from :meth:`fit`, or :meth:`load` with the
        saved estimates and the design rebuilt from the saved rows)."""
        names = d["fe_names"]
        self.fe_params_ = pd.Series(beta, index=names)
        self.bse_ = pd.Series(np.sqrt(np.diag(cinv)), index=names)
        self.cov_ = pd.DataFrame(sigma, index=d["visits"], columns=d["visits"])
        self.llf_ = llf
        self.theta_ = theta
        self.visits_ = list(d["visits"])
        self.arms_ = list(d["arms"])
        self.converged_ = converged
        self.n_obs_ = int(d["n"])
        self.n_subjects_ = int(d["n_subjects"])
        self.n_dropped_ = int(d["n_dropped"])
        self.outcome_bounds_ = outcome_bounds(self.required_columns().outcome)
        self._patterns = d["patterns"]
        self._Cinv = cinv
        self._theta_cov = theta_cov
        self._grid = d["grid"]
        # for forecasts, trajectories and save: the design of new rows, the fit's rows
        self._spec = d["spec"]
        self._frame = d["frame"]
        self._rows = d["rows"]
        self.lsmeans_ = self._lsmeans(0.95)

    # ----------------------------------------------------------- inference
    def _satterthwaite(self, c: Array) -> tuple[float, float]:
        """(variance of c'beta, Satterthwaite df)."""
        v = float(c @ self._Cinv @ c)
        if self._theta_cov is None:
            return v, float("nan")
        T = len(self.visits_)
        Sigma = self.cov_.to_numpy()
        Gs = contrast_variance_grad(Sigma, self._patterns, self._Cinv, c)
        J = cov_jacobian(self.theta_, self.covariance, T)
        g = np.einsum("kij,ij->k", J, Gs)
        denom = float(g @ self._theta_cov @ g)
        return v, (2 * v * v / denom if denom > 0 else float("inf"))

    def _lsmeans(self, level: float) -> pd.DataFrame:
        from scipy.stats import t as tdist

        L = self._grid["L"]
        rows = []
        for key, c in L.iterrows():
            c = c.to_numpy()
            est = float(c @ self.fe_params_.to_numpy())
            v, df = self._satterthwaite(c)
            q = float(tdist.ppf(0.5 + level / 2, df))
            se = np.sqrt(v)
            rows.append(
                {
                    "visit": key[0],
                    "arm": key[1],
                    "estimate": est,
                    "std_error": se,
                    "df": df,
                    "ci_lower": est - q * se,
                    "ci_upper": est + q * se,
                }
            )
        return pd.DataFrame(rows)

    def lsmeans(self, level: float = 0.95) -> pd.DataFrame:
        """Least-squares means per visit x arm with Satterthwaite intervals.

        Parameters
        ----------
        level : float, default 0.95

        Returns
        -------
        pandas.DataFrame
            Columns ``visit, arm, estimate, std_error, df, ci_lower, ci_upper``.
        """
        check_is_fitted(self, ["fe_params_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        return self._lsmeans(level)

    def contrast(
        self, visit: object | None = None, level: float = 0.95
    ) -> pd.DataFrame:
        """Each arm minus the reference arm at one visit (the final visit by default).

        Parameters
        ----------
        visit : optional
            A visit level; the last scheduled visit by default.
        level : float, default 0.95

        Returns
        -------
        pandas.DataFrame
            One row per non-reference arm: ``visit, arm, reference, estimate,
            std_error, df, t, p_value, ci_lower, ci_upper`` (two-sided t test with
            Satterthwaite degrees of freedom).

        Raises
        ------
        ModelSpecificationError
            If ``visit`` is not a visit level of the fit.
        """
        from scipy.stats import t as tdist

        check_is_fitted(self, ["fe_params_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        visit = self.visits_[-1] if visit is None else visit
        if visit not in self.visits_:
            raise ModelSpecificationError(
                f"Visit {visit!r} is not one of the fitted visits {self.visits_!r}."
            )
        L = self._grid["L"]
        ref = self.arms_[0]
        out = []
        for arm in self.arms_[1:]:
            c = (L.loc[(visit, arm)] - L.loc[(visit, ref)]).to_numpy()
            est = float(c @ self.fe_params_.to_numpy())
            v, df = self._satterthwaite(c)
            se = float(np.sqrt(v))
            t = est / se
            q = float(tdist.ppf(0.5 + level / 2, df))
            out.append(
                {
                    "visit": visit,
                    "arm": arm,
                    "reference": ref,
                    "estimate": est,
                    "std_error": se,
                    "df": df,
                    "t": t,
                    "p_value": float(2 * tdist.sf(abs(t), df)),
                    "ci_lower": est - q * se,
                    "ci_upper": est + q * se,
                }
            )
        return pd.DataFrame(out)

    @classmethod
    def data_defaults(
        cls, params: Mapping[str, Any], *, outcome: str, time: str
    ) -> dict[str, Any]:
        """A run config's unset ``formula``: ``outcome ~ visit * arm`` on the
        section's visit and arm columns (``[data]``'s time is not a visit).

        Examples
        --------
        >>> MMRM.data_defaults({"arm": "group"}, outcome="chg", time="months")
        {'formula': 'chg ~ visit * group'}
        """
        if params.get("formula") is not None:
            return {}
        visit, arm = params.get("visit") or "visit", params.get("arm") or "arm"
        return {"formula": f"{outcome} ~ {visit} * {arm}"}

    @property
    def columns_(self) -> ModelColumns:
        """The columns the fitted model reads; its time column is the visit."""
        from alsprog.data._history import ModelColumns

        check_is_fitted(self, ["fe_params_"])
        variables = check_formula(self.formula, kind="fixed").variables
        c = self.required_columns()
        return ModelColumns.of(c.outcome, c.subject, c.time, variables)

    def scheduled_times(self) -> tuple[float, ...] | None:
        """The fitted visits when they are numbers (a run forecasts and draws the
        model at these only); None for visits named by text."""
        check_is_fitted(self, ["fe_params_"])
        if all(isinstance(v, int | float | np.number) for v in self.visits_):
            return tuple(float(v) for v in self.visits_)
        return None

    def check_forecast_time(self, time: str) -> None:
        """Refuse forecast times on any column but the visit column.

        Raises
        ------
        ModelSpecificationError
            If ``time`` is not :attr:`visit` (visits are levels, not a clock).
        """
        if time != self.visit:
            raise ModelSpecificationError(
                f"MMRM forecasts at its visit levels ({self.visit!r}), not on "
                f"{time!r}: give the forecast times as visits."
            )

    def forecast_rows(
        self,
        history: Prepared,
        *,
        level: float,
        n_samples: int | None = None,
        rng: np.random.Generator,
        given_alive: bool = True,
    ) -> ForecastRows:
        """New patients' outcomes at fitted visits given their observed visits:
        the conditional multivariate normal with the fixed effects' uncertainty,
        censored at :attr:`outcome_bounds_` (``stats`` also hold ``loc`` and
        ``scale``); draws are joint over each patient's visits.  ``given_alive``
        is ignored.  See :mod:`alsprog.models.mmrm._forecast`;
        :func:`alsprog.forecast.forecast` is the public entry point.

        Raises
        ------
        ModelSpecificationError
            A forecast or history visit that is not a fitted visit level.
        """
        from alsprog.models.mmrm._forecast import mmrm_forecast_rows

        check_is_fitted(self, ["fe_params_"])
        return mmrm_forecast_rows(
            self, history, level=level, n_samples=n_samples, rng=rng
        )

    def predict(self, df: pd.DataFrame) -> pd.Series:
        """Point prediction of the outcome at each row of ``df`` (at a fitted
        visit): a fitted subject's conditional mean given their visits in the fit
        (their outcome at a visit they were seen at), others' the GLS mean
        ``X b``; NaN where a covariate is missing.

        Raises
        ------
        ModelSpecificationError
            A visit or arm not in the fit, or a column the formula uses absent.
        """
        from alsprog.models.mmrm._forecast import mmrm_predict

        check_is_fitted(self, ["fe_params_"])
        if not isinstance(df, pd.DataFrame):
            raise TypeError(
                f"`df` must be a pandas DataFrame; got {type(df).__name__}."
            )
        return mmrm_predict(self, df)

    def subject_trajectories(
        self,
        times: Sequence[object] | npt.ArrayLike | None = None,
        *,
        subjects: Sequence[object] | None = None,
        level: float = 0.9,
        interval: Literal["confidence", "prediction"] = "confidence",
    ) -> pd.DataFrame:
        """Fitted subjects' outcomes at visit levels given their observed visits.

        Parameters
        ----------
        times : sequence, optional
            Visit levels; all by default.
        subjects : sequence, optional
            Subjects seen in the fit; all by default.
        level : float, default 0.9
        interval : {"confidence", "prediction"}, default "confidence"
            ``"confidence"`` covers the subject's conditional mean (the fixed
            effects' uncertainty only); ``"prediction"`` their outcome at the visit
            (0 wide at a visit they were seen at).

        Returns
        -------
        pandas.DataFrame
            The subject column, the visit column, ``mean``, ``se``, ``lower``,
            ``upper`` (covariates from the subject's first row; normal quantiles).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(1)
        >>> df = pd.DataFrame({"subject_id": np.repeat(np.arange(40), 3),
        ...                    "visit": np.tile([3, 6, 9], 40),
        ...                    "arm": np.repeat(["placebo", "active"], 60)})
        >>> df["chg"] = rng.normal(0, 2, 40)[df["subject_id"]] - 0.5 * df["visit"]
        >>> df["chg"] += rng.normal(0, 1, 120)
        >>> m = MMRM("chg ~ visit * arm", reference="placebo").fit(df.iloc[:-1])
        >>> tr = m.subject_trajectories(subjects=[39], interval="prediction")
        >>> tr["visit"].tolist(), bool(tr["se"].iloc[-1] > tr["se"].iloc[0])
        ([3, 6, 9], True)
        """
        from alsprog.models.mmrm._forecast import mmrm_trajectories

        check_is_fitted(self, ["fe_params_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        check_choice(interval, "interval", ("prediction", "confidence"))
        return mmrm_trajectories(self, times, subjects, level, interval)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to one ``.npz`` file (never a pickle), holding the
        model's columns of the rows used in the fit: share it as you would share
        them.  See :mod:`alsprog.models.mmrm._io`.

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np, pandas as pd
        >>> rng = np.random.default_rng(1)
        >>> df = pd.DataFrame({"subject_id": np.repeat(np.arange(40), 3),
        ...                    "visit": np.tile([3, 6, 9], 40),
        ...                    "arm": np.repeat(["placebo", "active"], 60)})
        >>> df["chg"] = -0.5 * df["visit"] + rng.normal(0, 2, 40)[df["subject_id"]]
        >>> df["chg"] += rng.normal(0, 1, 120)
        >>> m = MMRM("chg ~ visit * arm", reference="placebo").fit(df)
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "mmrm.npz"
        >>> m.save(path)
        >>> MMRM.load(path).contrast().equals(m.contrast())
        True
        """
        from alsprog.models.mmrm._io import save_model

        check_is_fitted(self, ["fe_params_"])
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MMRM:
        """Rebuild a model written by :meth:`save` without refitting; the whole file
        is checked first (:class:`~alsprog.errors.SavedModelError` naming the
        field)."""
        from alsprog.models.mmrm._io import load_model

        return cast(MMRM, load_model(cls, path))

    def required_columns(self) -> ModelColumns:
        """The outcome, subject and visit (time) columns the model will read.

        Examples
        --------
        >>> c = MMRM("chg ~ visit * arm").required_columns()
        >>> c.outcome, c.subject, c.time
        ('chg', 'subject_id', 'visit')
        """
        from alsprog.data._history import ModelColumns
        from alsprog.models._formula import parse_mixed_formula

        outcome = parse_mixed_formula(self.formula).outcome
        visit = str(self.visit)
        return ModelColumns.of(outcome, str(self.subject), visit, [visit])

    @property
    def aic(self) -> float:
        """REML AIC, ``-2 llf + 2 k`` with ``k`` the covariance parameters (as SAS
        PROC MIXED and R's mmrm count them under REML)."""
        check_is_fitted(self, ["fe_params_"])
        return float(-2.0 * self.llf_ + 2.0 * len(self.theta_))

    @property
    def bic(self) -> float:
        """REML BIC, ``-2 llf + k log(n_subjects)`` (the subjects are the
        independent units, as in SAS PROC MIXED and R's mmrm)."""
        check_is_fitted(self, ["fe_params_"])
        k = len(self.theta_)
        return float(-2.0 * self.llf_ + k * np.log(self.n_subjects_))

    def summary(self, level: float = DEFAULT_LEVEL) -> Summary:
        """Fixed effects, covariance over visits, LS means and the final contrast.

        Parameters
        ----------
        level : float, default 0.95

        Returns
        -------
        Summary
            Tables ``"fixed"``, ``"covariance"``, ``"lsmeans"``, ``"contrast"``.
        """
        check_is_fitted(self, ["fe_params_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        z = float(ndtri(0.5 + level / 2))
        fixed = pd.DataFrame(
            {
                "estimate": self.fe_params_,
                "std_error": self.bse_,
                "t": self.fe_params_ / self.bse_,
                "ci_lower": self.fe_params_ - z * self.bse_,
                "ci_upper": self.fe_params_ + z * self.bse_,
            }
        )
        header = {
            "Formula": self.formula,
            "Covariance": self.covariance,
            "REML criterion at convergence": f"{-2 * self.llf_:.1f}",
            "Number of obs": f"{self.n_obs_}, subjects: {self.n_subjects_}",
        }
        notes = [] if self.converged_ else ["optimiser did not converge"]
        return Summary(
            "MMRM fit by REML",
            header,
            {
                "fixed": fixed,
                "covariance": self.cov_,
                "lsmeans": self.lsmeans(level),
                "contrast": self.contrast(level=level),
            },
            captions={
                "fixed": "Fixed effects (Wald, normal)",
                "covariance": "Covariance over visits",
                "lsmeans": "Least-squares means (Satterthwaite df)",
                "contrast": "Treatment contrast at the final visit",
            },
            notes=notes,
        )
