"""Mixed model for repeated measures (MMRM) at scheduled visits, fitted by REML or ML
as the R package mmrm fits it.

Owns: :class:`MMRM` (generalised least squares with a within-subject covariance over
visits of any of mmrm's structures, optionally one per level of a group column and
with observation weights, REML or ML), least-squares means per visit x arm, and
treatment contrasts with Satterthwaite degrees of freedom.
Leaves: the criteria to :mod:`alsprog.models.mmrm._numerics`; the covariance
structures to :mod:`alsprog.models.mmrm._covariance`; the optimisation to
:mod:`alsprog.models.mmrm._optimise`; the checked rows, design and reference grid to
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

from alsprog._formula_text import check_formula
from alsprog._validation import check_choice, check_interval, check_is_fitted
from alsprog.errors import (
    ModelSpecificationError,
    not_converged,
)
from alsprog.models._contract import DEFAULT_LEVEL, TrajectoryModel, outcome_bounds
from alsprog.models._derived import forget_derived
from alsprog.models._summary import Summary
from alsprog.models._threads import single_blas_thread
from alsprog.models.mmrm._checks import (
    _text,
)
from alsprog.models.mmrm._design import build_design
from alsprog.models.mmrm._numerics import (
    contrast_variance_grad,
    n_cov_params,
    start_params,
    theta_gradient,
)
from alsprog.models.mmrm._optimise import optimise

if TYPE_CHECKING:
    from alsprog.data._history import ModelColumns, Prepared
    from alsprog.models._contract import ForecastRows

__all__ = ["MMRM"]

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
Structure = Literal[
    "unstructured",
    "toeplitz",
    "heterogeneous_toeplitz",
    "ar1",
    "heterogeneous_ar1",
    "compound_symmetry",
    "heterogeneous_compound_symmetry",
    "ante_dependence",
    "heterogeneous_ante_dependence",
    "us",
    "toep",
    "toeph",
    "ar1h",
    "cs",
    "csh",
    "ad",
    "adh",
]


# --------------------------------------------------------------------- estimator
class MMRM(TrajectoryModel):
    """Mixed model for repeated measures: GLS over scheduled visits, fitted by REML
    or ML as the R package mmrm fits it.

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
    covariance : str, default "unstructured"
        Within-subject covariance over visits (lags by visit index): one of the R
        package mmrm's structures, by name or by mmrm's short name (``us``,
        ``toep``, ``toeph``, ``ar1``, ``ar1h``, ``cs``, ``csh``, ``ad``, ``adh``).
        :attr:`theta_` is mmrm's parameter vector of the structure (see
        :mod:`alsprog.models.mmrm._covariance`).
    method : {"REML", "ML"}, default "REML"
        Restricted or full maximum likelihood.  The fixed effects' covariance is
        ``(X'V^{-1}X)^{-1}`` under both (as mmrm; nlme::gls scales its ML one by
        ``N / (N - p)``).
    group : str, optional
        A column constant within subject: a separate covariance of the chosen
        structure for each of its levels (mmrm's ``us(visit | group / subject)``).
    weights : str, optional
        A column of positive observation weights ``w``: a subject's covariance is
        ``W^{-1/2} Sigma W^{-1/2}`` (mmrm's ``weights``; nlme's
        ``varFixed(~ 1 / w)``).
    ddf : {"satterthwaite", "kenward-roger", "kenward-roger-linear", \
"between-within", "residual"}, default "satterthwaite"
        Denominator degrees of freedom of the LS means, contrasts and the summary's
        coefficient tests, as R's mmrm computes them (Kenward-Roger: REML fits,
        with its adjusted covariance; "linear" drops the second-derivative term).
    vcov : {"model", "cr0", "cr2", "cr3"}, optional
        Covariance of the fixed effects in those tests: model-based, or the
        cluster-robust sandwich CR0, CR2 (bias-reduced) or CR3 (jackknife), as mmrm's
        "Empirical", "Empirical-Bias-Reduced" and "Empirical-Jackknife"; by default
        mmrm's: the Kenward-Roger covariance with Kenward-Roger ddf, CR0 with
        "residual", model-based otherwise (Satterthwaite with a sandwich is mmrm's
        empirical Satterthwaite).
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
        Estimated visit covariance matrix; with ``group``, the groups' matrices
        stacked, rows indexed by (group, visit).
    covs_ : dict
        Each group's covariance matrix (key None without ``group``).
    theta_ : ndarray
        The covariance parameters, the groups' concatenated in group order (mmrm's
        ``theta_est``).
    llf_ : float
        REML or ML log-likelihood (``-0.5 * criterion``; with weights it holds
        ``0.5 sum log w``, as mmrm's and nlme's do).
    lsmeans_ : pandas.DataFrame
        Least-squares mean per visit x arm (numeric covariates at their mean, other
        factors averaged with equal weights): ``estimate, std_error, df, ci_lower,
        ci_upper``.
    visits_, arms_ : list
        Visit and arm levels in model order.
    groups_ : list
        The covariance groups' levels (``[None]`` without ``group``).
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
    column_params = ("subject", "visit", "arm", "group", "weights")
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
        method: Literal["REML", "ML"] = "REML",
        group: str | None = None,
        weights: str | None = None,
        ddf: Literal[
            "satterthwaite",
            "kenward-roger",
            "kenward-roger-linear",
            "between-within",
            "residual",
        ] = "satterthwaite",
        vcov: Literal["model", "cr0", "cr2", "cr3"] | None = None,
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
        self.method = method
        self.group = group
        self.weights = weights
        self.ddf = ddf
        self.vcov = vcov
        self.tol = tol
        self.max_iter = max_iter
        self.strict = strict

    # ------------------------------------------------------------------- fit
    def fit(self, df: pd.DataFrame) -> MMRM:
        """Fit by REML or ML (:attr:`method`).

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
        for attr in [
            a for a in vars(self) if a.endswith("_") and not a.startswith("__")
        ]:
            delattr(self, attr)
        self.check_params()
        if str(self.ddf).startswith("kenward-roger"):
            if self.method != "REML":
                raise ModelSpecificationError(
                    f"ddf={self.ddf!r} needs a REML fit (Kenward-Roger is defined for "
                    "REML); set method='REML' or another ddf."
                )
            if self.vcov not in (None, "model"):
                raise ModelSpecificationError(
                    f"ddf={self.ddf!r} uses its own adjusted covariance; vcov="
                    f"{self.vcov!r} goes with ddf='satterthwaite' (mmrm's empirical "
                    "Satterthwaite) or 'residual'."
                )
        for name in ("subject", "visit", "arm"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(
                    f"`{name}` must be a column name (str); got {getattr(self, name)!r}."
                )
        for name in ("group", "weights"):
            if not isinstance(getattr(self, name), str | None):
                raise TypeError(
                    f"`{name}` must be a column name (str) or None; got "
                    f"{getattr(self, name)!r}."
                )
        d = build_design(self, df)
        T = len(d["visits"])
        n_groups = len(d["groups"])
        structure = d["structure"]
        k = n_cov_params(structure, T) * n_groups
        if d["n"] - d["p"] <= k:
            raise ModelSpecificationError(
                f"Too few observations: {d['n']} rows for {d['p']} fixed effects "
                f"and {k} covariance parameters ({structure}, {T} visits, "
                f"{n_groups} group(s))."
            )
        theta0 = np.concatenate([start_params(S0, structure) for S0 in d["Sigma0"]])
        fit = optimise(d["patterns"], structure, T, n_groups, theta0, self)
        self._set_state(d, **fit.state)
        if not fit.state["converged"]:
            msg = (
                f"MMRM {self.method} optimisation did not converge: {fit.why}; the "
                f"optimiser said {_text(fit.message)!r}. {fit.fix.capitalize()}"
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
        saved estimates and the design rebuilt from the saved rows).  ``sigma`` is
        (G, T, T), one covariance per group (G = 1 without ``group``)."""
        names = d["fe_names"]
        visits = list(d["visits"])
        sigmas = np.asarray(sigma, dtype=float).reshape(-1, len(visits), len(visits))
        self.fe_params_ = pd.Series(beta, index=names)
        self.bse_ = pd.Series(np.sqrt(np.diag(cinv)), index=names)
        self.covs_ = {
            g: pd.DataFrame(S, index=visits, columns=visits)
            for g, S in zip(d["groups"], sigmas, strict=True)
        }
        if self.group is None:
            self.cov_ = self.covs_[None]
        else:
            self.cov_ = pd.concat(
                list(self.covs_.values()),
                keys=list(self.covs_),
                names=[self.group, self.visit],
            )
        self.llf_ = llf
        self.theta_ = np.asarray(theta, dtype=float)
        self.visits_ = visits
        self.arms_ = list(d["arms"])
        self.groups_ = list(d["groups"])
        self.converged_ = converged
        self.n_obs_ = int(d["n"])
        self.n_subjects_ = int(d["n_subjects"])
        self.n_dropped_ = int(d["n_dropped"])
        self.outcome_bounds_ = outcome_bounds(self.required_columns().outcome)
        self._structure = d["structure"]
        self._patterns = d["patterns"]
        self._sigmas = sigmas
        self._Cinv = cinv
        self._theta_cov = theta_cov
        self._grid = d["grid"]
        # for forecasts, trajectories and save: the design of new rows, the fit's rows
        self._spec = d["spec"]
        self._frame = d["frame"]
        self._rows = d["rows"]
        forget_derived(self)  # the Kenward-Roger and sandwich states of a refit
        self.lsmeans_ = self._lsmeans(0.95)

    # ----------------------------------------------------------- inference
    def _var_df(self, c: Array) -> tuple[float, float]:
        """(variance of c'beta, its ddf) with the fit's ``ddf`` and ``vcov``."""
        if self.ddf == "satterthwaite" and self.vcov in (None, "model"):
            return self._satterthwaite(c)
        from alsprog.models.mmrm._inference import contrast_var_df

        return contrast_var_df(self, c)

    def _inference_words(self) -> str:
        """``"Kenward-Roger df"``, ``"Satterthwaite df, CR2 covariance"``, ..."""
        words = {
            "satterthwaite": "Satterthwaite",
            "kenward-roger": "Kenward-Roger",
            "kenward-roger-linear": "Kenward-Roger-Linear",
            "between-within": "between-within",
            "residual": "residual",
        }[str(self.ddf)]
        vcov = self.vcov or ("cr0" if self.ddf == "residual" else "model")
        return f"{words} df" + (
            "" if vcov == "model" else f", {vcov.upper()} covariance"
        )

    def _satterthwaite(self, c: Array) -> tuple[float, float]:
        """(variance of c'beta, Satterthwaite df)."""
        v = float(c @ self._Cinv @ c)
        if self._theta_cov is None:
            return v, float("nan")
        Gs = contrast_variance_grad(self._sigmas, self._patterns, self._Cinv, c)
        g = theta_gradient(self.theta_, self._structure, Gs)
        denom = float(g @ self._theta_cov @ g)
        return v, (2 * v * v / denom if denom > 0 else float("inf"))

    def _lsmeans(self, level: float, weights: str = "equal") -> pd.DataFrame:
        from scipy.stats import t as tdist

        L = self._grid["L" if weights == "equal" else "L_proportional"]
        rows = []
        for key, c in L.iterrows():
            c = c.to_numpy()
            est = float(c @ self.fe_params_.to_numpy())
            v, df = self._var_df(c)
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

    def lsmeans(
        self,
        level: float = 0.95,
        weights: Literal["equal", "proportional"] = "equal",
    ) -> pd.DataFrame:
        """Least-squares means per visit x arm with Satterthwaite intervals.

        Parameters
        ----------
        level : float, default 0.95
        weights : {"equal", "proportional"}, default "equal"
            How the other factors of the formula are averaged over (numeric
            covariates are at their mean): equally, or in proportion to how many
            rows of the data hold each combination of their levels (emmeans'
            ``weights = "proportional"``).

        Returns
        -------
        pandas.DataFrame
            Columns ``visit, arm, estimate, std_error, df, ci_lower, ci_upper``.
        """
        check_is_fitted(self, ["fe_params_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        check_choice(weights, "weights", ("equal", "proportional"))
        return self._lsmeans(level, weights)

    def contrast(
        self,
        visit: object | None = None,
        level: float = 0.95,
        weights: Literal["equal", "proportional"] = "equal",
    ) -> pd.DataFrame:
        """Each arm minus the reference arm at one visit (the final visit by default).

        Parameters
        ----------
        visit : optional
            A visit level; the last scheduled visit by default.
        level : float, default 0.95
        weights : {"equal", "proportional"}, default "equal"
            The LS means' weights over the other factors (see :meth:`lsmeans`).

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
        check_choice(weights, "weights", ("equal", "proportional"))
        visit = self.visits_[-1] if visit is None else visit
        if visit not in self.visits_:
            raise ModelSpecificationError(
                f"Visit {visit!r} is not one of the fitted visits {self.visits_!r}."
            )
        L = self._grid["L" if weights == "equal" else "L_proportional"]
        ref = self.arms_[0]
        out = []
        for arm in self.arms_[1:]:
            c = (L.loc[(visit, arm)] - L.loc[(visit, ref)]).to_numpy()
            est = float(c @ self.fe_params_.to_numpy())
            v, df = self._var_df(c)
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
        variables = list(check_formula(self.formula, kind="fixed").variables)
        variables += [v for v in (self.group, self.weights) if v is not None]
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
        """AIC, ``-2 llf + 2 k`` with ``k`` the covariance parameters (as SAS PROC
        MIXED and R's mmrm's ``AIC`` count them, under ML too)."""
        check_is_fitted(self, ["fe_params_"])
        return float(-2.0 * self.llf_ + 2.0 * len(self.theta_))

    @property
    def bic(self) -> float:
        """BIC, ``-2 llf + k log(n_subjects)`` (the subjects are the
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
        from alsprog.models.mmrm._inference import coefficient_table

        fixed = coefficient_table(self, level)
        header = {
            "Formula": self.formula,
            "Covariance": self.covariance
            + ("" if self.group is None else f" by {self.group}"),
            f"{self.method} criterion at convergence": f"{-2 * self.llf_:.1f}",
            "Number of obs": f"{self.n_obs_}, subjects: {self.n_subjects_}",
        }
        notes = [] if self.converged_ else ["optimiser did not converge"]
        return Summary(
            f"MMRM fit by {self.method}",
            header,
            {
                "fixed": fixed,
                "covariance": self.cov_,
                "lsmeans": self.lsmeans(level),
                "contrast": self.contrast(level=level),
            },
            captions={
                "fixed": f"Fixed effects ({self._inference_words()})",
                "covariance": "Covariance over visits",
                "lsmeans": f"Least-squares means ({self._inference_words()})",
                "contrast": "Treatment contrast at the final visit",
            },
            notes=notes,
        )
