"""Mixed model for repeated measures (MMRM) at scheduled visits, fitted by REML.

Owns: :class:`MMRM` (generalised least squares with an unstructured, compound-symmetry
or AR(1) within-subject covariance over visits, REML), least-squares means per visit x
arm, and treatment contrasts with Satterthwaite degrees of freedom.
Leaves: the REML criterion and covariance structures to
:mod:`alsprog.models.mmrm._numerics`, lme4-style random-effects models to
:mod:`alsprog.models.lmm._model`.

Satterthwaite degrees of freedom for ``c'beta`` are ``2 v^2 / (g' A g)`` with
``v = c'C^{-1}c``, ``g`` its exact gradient in the covariance parameters and ``A`` twice
the inverse Hessian of ``-2 l_R`` (as the R package mmrm does).
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import linalg
from scipy.special import ndtri

from alsprog._formula_text import check_formula, formula_context
from alsprog._validation import check_choice, check_int, check_interval, check_is_fitted
from alsprog.data._history import validate_model_columns
from alsprog.errors import (
    DataWarning,
    ModelSpecificationError,
    not_converged,
)
from alsprog.models._contract import DEFAULT_LEVEL, TrajectoryModel
from alsprog.models._summary import Summary
from alsprog.models._threads import single_blas_thread
from alsprog.models.mmrm._checks import (
    _assess_convergence,
    _check_identifiable,
    _check_rank,
    _numeric_design,
    _py,
    _text,
)
from alsprog.models.mmrm._numerics import (
    build_patterns,
    contrast_variance_grad,
    cov_jacobian,
    covariance_from_params,
    evaluate_reml,
    n_cov_params,
    numerical_hessian,
    start_params,
)

if TYPE_CHECKING:
    from alsprog.data._history import ModelColumns

__all__ = ["MMRM"]

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
Structure = Literal["unstructured", "compound_symmetry", "ar1"]
_STRUCTURES = ("unstructured", "compound_symmetry", "ar1")


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
    reference : optional
        Reference level of ``arm`` (e.g. ``"placebo"``); by default the first level
        (a categorical's first category, else the smallest value).
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

    def __init__(
        self,
        formula: str,
        *,
        subject: str = "subject_id",
        visit: str = "visit",
        arm: str = "arm",
        reference: object | None = None,
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
        check_choice(self.covariance, "covariance", _STRUCTURES)
        check_interval(self.tol, "tol", low=0.0, high=1.0, low_closed=False)
        check_int(self.max_iter, "max_iter", low=1)
        check_choice(self.strict, "strict", (True, False))
        for name in ("subject", "visit", "arm"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(
                    f"`{name}` must be a column name (str); got {getattr(self, name)!r}."
                )
        d = self._design(df)
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
        names = d["fe_names"]
        self.fe_params_ = pd.Series(ev.beta, index=names)
        self.bse_ = pd.Series(np.sqrt(np.diag(ev.Cinv)), index=names)
        self.cov_ = pd.DataFrame(Sigma, index=d["visits"], columns=d["visits"])
        self.llf_ = float(-0.5 * ev.value)
        self.theta_ = theta
        self.visits_ = list(d["visits"])
        self.arms_ = list(d["arms"])
        self.converged_ = converged
        self.n_obs_ = int(d["n"])
        self.n_subjects_ = int(d["n_subjects"])
        self.n_dropped_ = int(d["n_dropped"])
        self._patterns = patterns
        self._Cinv = ev.Cinv
        self._theta_cov = (
            2.0 * np.linalg.inv(0.5 * (H + H.T)) if evals.min() > 0 else None
        )
        self._grid = d["grid"]
        self.lsmeans_ = self._lsmeans(0.95)
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

    def _design(self, df: pd.DataFrame) -> dict:
        from formulaic import model_matrix

        if not isinstance(df, pd.DataFrame):
            raise ModelSpecificationError(
                f"Data must be a pandas DataFrame; got {type(df).__name__}."
            )
        if not isinstance(self.formula, str) or self.formula.count("~") != 1:
            raise ModelSpecificationError(
                f"Formula {self.formula!r} must be a string with one '~', e.g. "
                "'chg ~ visit * arm + baseline_total'."
            )
        if "|" in self.formula:
            raise ModelSpecificationError(
                f"MMRM formulas have no random-effects terms; got {self.formula!r} (use "
                "LinearMixedModel for '(x | g)' terms)."
            )
        required = set(check_formula(self.formula, kind="fixed").variables)
        cols = [self.subject, self.visit, self.arm]
        missing = sorted((required | set(cols)) - set(df.columns))
        if missing:
            raise ModelSpecificationError(
                f"Unknown column(s) {', '.join(map(repr, missing))} (formula "
                f"{self.formula!r}, subject/visit/arm); the data has "
                f"{', '.join(map(str, df.columns))}."
            )
        df = validate_model_columns(df, [*required, *cols])
        if self.arm not in required:
            raise ModelSpecificationError(
                f"The arm column {self.arm!r} does not appear in {self.formula!r}."
            )
        used = list(dict.fromkeys([*sorted(required), *cols]))
        sub = df.loc[:, used]
        ok = sub.notna().all(axis=1).to_numpy()
        n_dropped = int((~ok).sum())
        if n_dropped:
            warnings.warn(
                f"Dropped {n_dropped} of {len(df)} rows with a missing value in "
                f"{', '.join(c for c in used if sub[c].isna().any())}.",
                DataWarning,
                stacklevel=4,
            )
            sub = sub.loc[ok]
        sub = sub.copy()
        vcol = sub[self.visit]
        if isinstance(vcol.dtype, pd.CategoricalDtype):
            visits = [v for v in vcol.cat.categories if (vcol == v).any()]
        else:
            visits = sorted(vcol.unique())
        if len(visits) < 2:
            raise ModelSpecificationError(
                f"Visit column {self.visit!r} has {len(visits)} level(s); an MMRM needs "
                "at least 2 scheduled visits."
            )
        sub[self.visit] = pd.Categorical(vcol, categories=visits)
        acol = sub[self.arm]
        if isinstance(acol.dtype, pd.CategoricalDtype):
            arms = [a for a in acol.cat.categories if (acol == a).any()]
        else:
            arms = sorted(acol.unique())
        if len(arms) < 2:
            raise ModelSpecificationError(
                f"Arm column {self.arm!r} has {len(arms)} level(s); contrasts need 2."
            )
        if self.reference is not None:
            if self.reference not in arms:
                raise ModelSpecificationError(
                    f"`reference` {self.reference!r} is not a level of {self.arm!r} "
                    f"({', '.join(map(repr, arms))})."
                )
            arms = [self.reference] + [a for a in arms if a != self.reference]
        sub[self.arm] = pd.Categorical(acol, categories=arms)
        dup = sub.duplicated([self.subject, self.visit])
        if dup.any():
            first = sub.loc[dup].iloc[0]
            raise ModelSpecificationError(
                f"{int(dup.sum())} duplicated subject x visit rows, e.g. subject "
                f"{_py(first[self.subject])!r} at visit {_py(first[self.visit])!r}; an "
                "MMRM needs "
                "one row per subject and visit."
            )
        try:
            mm = model_matrix(
                self.formula, sub, na_action="raise", context=formula_context()
            )
        except Exception as exc:
            raise ModelSpecificationError(
                f"Cannot build the design from {self.formula!r}: {exc}"
            ) from exc
        y, X = _numeric_design(mm, sub, self.formula, self.subject, self.visit)
        names = [str(c) for c in mm.rhs.columns]
        _check_rank(X, names, self.formula)
        subj_codes = pd.factorize(sub[self.subject])[0].astype(np.intp)
        vis_codes = sub[self.visit].cat.codes.to_numpy().astype(np.intp)
        patterns = build_patterns(y, X, subj_codes, vis_codes)
        # start: residual covariance of OLS, pairwise
        beta_ols = np.linalg.lstsq(X, y, rcond=None)[0]
        res = y - X @ beta_ols
        _check_identifiable(
            y,
            res,
            subj_codes,
            vis_codes,
            visits,
            self.formula,
            self.visit,
            self.covariance,
        )
        wide = pd.DataFrame({"s": subj_codes, "v": vis_codes, "r": res}).pivot(
            index="s", columns="v", values="r"
        )
        Sigma0 = wide.cov(min_periods=2).to_numpy()
        Sigma0 = np.where(np.isfinite(Sigma0), Sigma0, 0.0)
        dvar = np.diag(Sigma0).copy()
        dvar[~(dvar > 0)] = np.var(res) if np.var(res) > 0 else 1.0
        np.fill_diagonal(Sigma0, dvar)
        # reference grid for LS means: visit x arm, numeric covariates at their mean,
        # other factors crossed and averaged with equal weights
        grid = self._reference_grid(sub, required, visits, arms, mm.rhs.model_spec)
        return {
            "patterns": patterns,
            "fe_names": names,
            "visits": visits,
            "arms": arms,
            "n": len(y),
            "p": X.shape[1],
            "n_subjects": int(subj_codes.max() + 1),
            "n_dropped": n_dropped,
            "Sigma0": Sigma0,
            "grid": grid,
        }

    def _reference_grid(self, sub, required, visits, arms, spec) -> dict:
        outcome = str(self.formula.split("~")[0]).strip()
        others = [
            v for v in sorted(required) if v not in (self.visit, self.arm, outcome)
        ]
        levels: dict[str, list] = {self.visit: visits, self.arm: arms}
        means: dict[str, float] = {}
        for v in others:
            col = sub[v]
            if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(
                col
            ):
                means[v] = float(col.mean())
            else:
                levels[v] = sorted(col.unique())
        index = pd.MultiIndex.from_product(list(levels.values()), names=list(levels))
        grid = index.to_frame(index=False)
        for v, mu in means.items():
            grid[v] = mu
        grid[self.visit] = pd.Categorical(grid[self.visit], categories=visits)
        grid[self.arm] = pd.Categorical(grid[self.arm], categories=arms)
        for v in levels:
            if v not in (self.visit, self.arm):
                grid[v] = pd.Categorical(grid[v], categories=levels[v])
        Xg = np.asarray(
            spec.get_model_matrix(grid, context=formula_context()), dtype=float
        )
        keys = pd.MultiIndex.from_frame(grid[[self.visit, self.arm]].astype(object))
        L = (
            pd.DataFrame(Xg)
            .groupby([keys.get_level_values(0), keys.get_level_values(1)], sort=False)
            .mean()
        )
        L.index = L.index.set_names(["visit", "arm"])
        return {"L": L}

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
