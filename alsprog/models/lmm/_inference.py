"""Inference on a fitted linear mixed model's fixed effects: t- and F-tests,
intervals and likelihood-ratio tests, as lmerTest and lme4 give them.

Owns: :class:`MixedInference`, the methods :class:`~alsprog.models.LinearMixedModel`
takes from it: ``confint`` (Wald, normal or Satterthwaite t quantiles), ``contest``
(t-tests of contrasts, or their joint F-test), ``anova`` (likelihood-ratio tests
between nested models, refitted by ML) and the cached Satterthwaite state.
Leaves: the df algebra to :mod:`alsprog.models.lmm._ddf`; fitting and the fitted
state to :mod:`alsprog.models.lmm._model`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._validation import check_interval, check_is_fitted
from alsprog.errors import ModelSpecificationError
from alsprog.models._derived import derived, forget_derived
from alsprog.models._formula import build_mixed_design
from alsprog.models.lmm._numerics import compute_group_stats

__all__ = ["MixedInference", "forget_derived"]


def _derived(model: Any) -> dict[str, Any]:
    return derived(model)


class MixedInference:
    """Tests and intervals of the fixed effects (mixed into LinearMixedModel)."""

    # set by LinearMixedModel's fit or load
    fe_params_: pd.Series
    bse_: pd.Series
    theta_: pd.Series
    scale_: float
    llf_: float
    n_obs_: int
    formula: str
    reml: bool
    _cov_beta: npt.NDArray[np.float64]
    _design_info: dict[str, Any]
    _frame: pd.DataFrame
    cov_re_: pd.DataFrame

    def confint(
        self,
        level: float = 0.95,
        *,
        method: str = "wald",
        ddf: str = "normal",
    ) -> pd.DataFrame:
        """Confidence intervals: Wald intervals of the fixed effects, or
        profile-likelihood intervals of every parameter (lme4's ``confint(m,
        method = "profile")``).

        Parameters
        ----------
        level : float, default 0.95
            Coverage, in (0, 1).
        method : {"wald", "profile"}, default "wald"
            ``"wald"``: estimate -/+ quantile x standard error for each fixed
            effect, the quantile from ``ddf``.  ``"profile"``: lme4's profile
            intervals of the random-effect standard deviations and correlations,
            the residual standard deviation and the fixed effects: where the
            signed square root of the change in ML deviance (the other
            parameters optimised) crosses ``-/+ sqrt(qchisq(level, 1))``.  A REML
            fit is profiled through its ML refit, as lme4 does.  lme4
            interpolates the limits from a spline through the profile; here they
            are solved for directly, so they agree with lme4's to about 1e-4
            relative (lme4's interpolation error; see
            :func:`~alsprog.models.lmm._profile.profile_model`).
        ddf : {"normal", "satterthwaite", "kenward-roger"}, default "normal"
            Wald intervals only. ``"normal"``: normal quantiles, as lme4's
            ``confint(m, method = "Wald")``; ``"satterthwaite"``: t quantiles on
            each coefficient's Satterthwaite df (lmerTest's, see :meth:`contest`);
            ``"kenward-roger"``: t quantiles on the Kenward-Roger df, around the
            adjusted standard errors (pbkrtest's; REML fits).

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``.  Wald: one row per fixed effect.
            Profile: in lme4's row order, ``sd_<effect>|<group>`` and
            ``cor_<effect>.<effect>|<group>`` for each random-effects term (lme4's
            ``.sig01, .sig02, ...``; for ``(months | subject_id)``:
            ``sd_Intercept|subject_id``, ``cor_months.Intercept|subject_id``,
            ``sd_months|subject_id``), ``sigma`` (lme4's ``.sigma``), then the
            fixed effects.  A standard deviation whose profile does not cross
            before 0 has lower limit 0, a correlation -1 or 1, as in lme4.

        Raises
        ------
        ValueError
            If ``level`` is not in (0, 1), ``method`` or ``ddf`` is not one of
            the choices, or ``ddf`` is given with ``method="profile"``.

        Examples
        --------
        >>> import pandas as pd
        >>> from alsprog.models import LinearMixedModel
        >>> df = pd.DataFrame({"g": list("aabbccdd"), "t": [0, 1] * 4,
        ...                    "y": [1.0, 2.1, 0.4, 1.2, 2.0, 3.3, 1.1, 1.7]})
        >>> m = LinearMixedModel("y ~ t + (1 | g)").fit(df)
        >>> m.confint(ddf="satterthwaite").round(3)
                     lower  upper
        Intercept    ...
        """
        check_is_fitted(self, ["fe_params_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        if method not in ("wald", "profile"):
            raise ValueError(f"`method` must be 'wald' or 'profile'; got {method!r}.")
        if method == "profile":
            from alsprog.models.lmm._profile import profile_model

            if ddf != "normal":
                raise ValueError(
                    f"`ddf` applies to Wald intervals; got ddf={ddf!r} with "
                    "method='profile' (profile intervals use no df)."
                )
            return profile_model(self, level).intervals
        from scipy import stats as st

        tests = self._tests(np.eye(len(self.fe_params_)), ddf)
        q = st.t.ppf(0.5 + level / 2, tests["df"])
        se = pd.Series(tests["std_error"], index=self.fe_params_.index)
        return pd.DataFrame(
            {"lower": self.fe_params_ - q * se, "upper": self.fe_params_ + q * se}
        )

    def contest(
        self, L: Any, *, ddf: str = "satterthwaite", joint: bool = False
    ) -> pd.DataFrame:
        """t-tests of linear combinations of the fixed effects, or their joint
        F-test, as lmerTest's ``contest(m, L, joint = FALSE/TRUE)``.

        Parameters
        ----------
        L : array-like, shape (p,) or (m, p), or dict of str to float
            One contrast per row over the fixed effects (in ``fe_params_``
            order); a dict names the coefficients, e.g. ``{"months": 1,
            "months:onset_site[T.spinal]": 1}``.
        ddf : {"satterthwaite", "kenward-roger", "normal"}, default "satterthwaite"
            Denominator degrees of freedom: Satterthwaite's approximation
            (lmerTest's default); Kenward-Roger's, with the adjusted covariance
            of the fixed effects (pbkrtest's ``vcovAdj``; REML fits; joint:
            pbkrtest's scaled F); or none (z-tests; a chi-square test when joint).
        joint : bool, default False
            Test all rows at once: one F-test of ``L beta = 0`` with ``num_df`` the
            rank of ``L`` and ``den_df`` from the Satterthwaite df of its
            independent components (lmerTest's ``contestMD``).

        Returns
        -------
        pandas.DataFrame
            ``estimate``, ``std_error``, ``df``, ``t``, ``p_value`` per contrast;
            joint: one row ``F``, ``num_df``, ``den_df``, ``p_value``.

        Raises
        ------
        ModelSpecificationError
            A contrast of the wrong length, or a name that is not a fixed effect.
        ValueError
            An unknown ``ddf``.

        Examples
        --------
        >>> import pandas as pd
        >>> from alsprog.models import LinearMixedModel
        >>> df = pd.DataFrame({"g": list("aabbccdd"), "t": [0, 1] * 4,
        ...                    "y": [1.0, 2.1, 0.4, 1.2, 2.0, 3.3, 1.1, 1.7]})
        >>> m = LinearMixedModel("y ~ t + (1 | g)").fit(df)
        >>> m.contest({"t": 1})[["estimate", "df"]].round(3)
           estimate   df
        0      0.95  3.0
        """
        check_is_fitted(self, ["fe_params_"])
        names = list(self.fe_params_.index)
        if isinstance(L, dict):
            unknown = [k for k in L if k not in names]
            if unknown:
                raise ModelSpecificationError(
                    f"contrast names {unknown}, which are not fixed effects "
                    f"({', '.join(names)})."
                )
            L = [[float(L.get(n, 0.0)) for n in names]]
        arr = np.atleast_2d(np.asarray(L, dtype=float))
        if arr.ndim != 2 or arr.shape[1] != len(names):
            raise ModelSpecificationError(
                f"a contrast needs {len(names)} coefficients (one per fixed effect: "
                f"{', '.join(names)}); got shape {np.shape(L)}."
            )
        if joint:
            from alsprog.models.lmm._ddf import joint_test

            self._tests(arr[:0], ddf)  # checks ddf
            state = self._state(ddf)
            res = joint_test(
                arr, self.fe_params_.to_numpy(), self._cov_beta, ddf=ddf, state=state
            )
            res.pop("wald_F")
            return pd.DataFrame([res])
        return pd.DataFrame(self._tests(arr, ddf))

    def _tests(self, L: npt.NDArray[np.float64], ddf: str) -> dict[str, Any]:
        from alsprog.models.lmm._ddf import DDF_CHOICES, contrast_tests

        if ddf not in DDF_CHOICES:
            raise ValueError(
                f"`ddf` must be one of {', '.join(map(repr, DDF_CHOICES))}; got "
                f"{ddf!r}."
            )
        return contrast_tests(
            L,
            self.fe_params_.to_numpy(),
            self._cov_beta,
            ddf=ddf,
            state=self._state(ddf),
        )

    def _type3(self, ddf: str) -> pd.DataFrame:
        from alsprog.models.lmm._anova import type3_contrasts
        from alsprog.models.lmm._ddf import joint_test

        self._tests(np.zeros((0, len(self.fe_params_))), ddf)  # checks ddf
        Ls = type3_contrasts(self._design_info["fixed_spec"], self._frame)
        state = self._state(ddf)
        rows = {}
        for term, L in Ls.items():
            if not len(L):
                continue
            r = joint_test(
                L, self.fe_params_.to_numpy(), self._cov_beta, ddf=ddf, state=state
            )
            mean_sq = r["wald_F"] * float(self.scale_)  # lmerTest's, unscaled
            rows[term] = {
                "sum_sq": mean_sq * r["num_df"],
                "mean_sq": mean_sq,
                "num_df": r["num_df"],
                "den_df": r["den_df"],
                "F": r["F"],
                "p_value": r["p_value"],
            }
        return pd.DataFrame.from_dict(rows, orient="index")

    def _state(self, ddf: str) -> Any:
        if ddf == "satterthwaite":
            return self._satterthwaite()
        if ddf == "kenward-roger":
            return self._kenward_roger()
        return None

    def _rows(self) -> Any:
        """The fit's design, rebuilt once from its rows (after a load too)."""
        cache = _derived(self)
        if "design" not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self._multi is not None:
                    from alsprog.models.lmm._multi_design import build_multi_design

                    cache["design"] = build_multi_design(self.formula, self._frame)
                else:
                    cache["design"] = build_mixed_design(self.formula, self._frame)
        return cache["design"]

    def _kenward_roger(self) -> Any:
        """pbkrtest's adjusted covariance of the fixed effects (computed once)."""
        cache = _derived(self)
        if "kr" not in cache:
            from alsprog.models.lmm._kr import kr_state

            if not self.reml:
                raise ModelSpecificationError(
                    "Kenward-Roger inference is defined for REML fits (pbkrtest "
                    "refits an ML fit by REML): fit with reml=True."
                )
            design = self._rows()
            if self._multi is not None:
                cache["kr"] = _multi_kenward_roger(self, design)
                return cache["kr"]
            tpl = self._design_info["template"]
            q = len(self.cov_re_)
            starts = [
                i for i in range(q) if not np.any((tpl.rows == i) & (tpl.cols < i))
            ]
            blocks = list(zip(starts, [*starts[1:], q], strict=True))
            cache["kr"] = kr_state(
                design.X,
                design.Z,
                design.groups,
                self.cov_re_.to_numpy(),
                float(self.scale_),
                blocks,
            )
        return cache["kr"]

    def _satterthwaite(self) -> Any:
        """The Satterthwaite state of the fit (computed once, from the fit's rows)."""
        cache = _derived(self)
        if "satt" not in cache:
            from alsprog.models.lmm._ddf import satterthwaite_state

            if self._multi is not None:
                cache["satt"] = _multi_satterthwaite(self, self._rows())
                return cache["satt"]
            design = self._rows()
            stats = compute_group_stats(
                design.X,
                design.Z,
                design.y,
                design.groups,
                len(design.group_levels),
            )
            tpl = self._design_info["template"]
            cache["satt"] = satterthwaite_state(
                stats,
                tpl.rows,
                tpl.cols,
                self.theta_.to_numpy(),
                math.sqrt(self.scale_),
                reml=bool(self.reml),
            )
        return cache["satt"]

    def anova(
        self, *others: Any, refit: bool = True, ddf: str = "satterthwaite"
    ) -> pd.DataFrame:
        """The type III ANOVA table of the fixed-effect terms (lmerTest's
        ``anova(m)``), or likelihood-ratio tests between nested models (lme4's
        ``anova(m0, m1, ...)``).

        Without other models: one F-test per term of the fixed part, of SAS's type
        III hypothesis (each term's effects orthogonal to those of the terms that
        contain it; factors treatment-coded, as formulaic codes them), with
        ``ddf``'s denominator df; ``sum_sq`` and ``mean_sq`` are lmerTest's
        (``mean_sq = F * sigma^2``, with Kenward-Roger's F before its scaling).

        With other models: they are ordered by their number of parameters, each
        row tested against the one above it.  REML fits are refitted by maximum
        likelihood first (``refit=True``, lme4's default: REML criteria of models
        with different fixed effects are not comparable); the fits given are not
        changed.

        Parameters
        ----------
        *others : LinearMixedModel
            Fitted models of the same rows (same number of observations).
        refit : bool, default True
            Refit REML fits by ML.  With ``False`` every model must be of one kind.
        ddf : {"satterthwaite", "kenward-roger", "normal"}, default "satterthwaite"
            The type III table's denominator df (see :meth:`contest`).

        Returns
        -------
        pandas.DataFrame
            Type III: indexed by term, ``sum_sq``, ``mean_sq``, ``num_df``,
            ``den_df``, ``F``, ``p_value``.  Models: indexed by formula, ``npar``,
            ``AIC``, ``BIC``, ``logLik``, ``deviance``, ``Chisq``, ``Df``,
            ``p_value`` (NaN on the first row).

        Raises
        ------
        ModelSpecificationError
            A model that is not a fitted LinearMixedModel, models fitted to
            different numbers of observations, or a factor that is not
            treatment-coded (type III).

        Examples
        --------
        >>> from alsprog.simulate import simulate_cohort
        >>> from alsprog.data import assemble
        >>> from alsprog.models import LinearMixedModel
        >>> c = simulate_cohort(60, seed=2)
        >>> t = assemble(c.visits, c.subjects)
        >>> m0 = LinearMixedModel("alsfrs_r_total ~ months + (months | subject_id)")
        >>> m1 = LinearMixedModel(
        ...     "alsfrs_r_total ~ months * onset_site + (months | subject_id)")
        >>> a = m0.fit(t).anova(m1.fit(t))
        >>> a[["npar", "Df"]].to_numpy().tolist()
        [[6.0, nan], [8.0, 2.0]]
        >>> list(m1.anova().index)
        ['months', 'onset_site', 'months:onset_site']
        """
        from scipy import stats as st

        check_is_fitted(self, ["fe_params_"])
        if not others:
            return self._type3(ddf)
        models = [self, *others]
        for m in others:
            if not isinstance(m, type(self)) or not hasattr(m, "fe_params_"):
                raise ModelSpecificationError(
                    f"anova() takes fitted LinearMixedModels; got {type(m).__name__}."
                )
        sizes = {m.n_obs_ for m in models}
        if len(sizes) > 1:
            raise ModelSpecificationError(
                "the models were fitted to different numbers of observations "
                f"({', '.join(str(m.n_obs_) for m in models)}); fit them to the same "
                "rows (drop the rows with a missing value in any model's columns)."
            )
        if not refit and len({bool(m.reml) for m in models}) > 1:
            raise ModelSpecificationError(
                "refit=False needs models of one kind (all REML or all ML)."
            )
        fits = []
        for m in models:
            if refit and m.reml:
                params = {**m.get_params(deep=False), "reml": False}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = type(m)(**params).fit(m._frame)
            fits.append(m)
        npar = [len(m.fe_params_) + m._design_info["n_theta"] + 1 for m in fits]
        order = np.argsort(npar, kind="stable")
        rows = []
        for k, i in enumerate(order):
            m, dev = fits[i], -2.0 * fits[i].llf_
            row = {
                "npar": float(npar[i]),
                "AIC": dev + 2.0 * npar[i],
                "BIC": dev + math.log(m.n_obs_) * npar[i],
                "logLik": m.llf_,
                "deviance": dev,
                "Chisq": np.nan,
                "Df": np.nan,
                "p_value": np.nan,
            }
            if k:
                prev = rows[-1]
                row["Chisq"] = max(prev["deviance"] - dev, 0.0)
                row["Df"] = row["npar"] - prev["npar"]
                row["p_value"] = (
                    float(st.chi2.sf(row["Chisq"], row["Df"]))
                    if row["Df"] > 0
                    else np.nan
                )
            rows.append(row)
        return pd.DataFrame(rows, index=[models[i].formula for i in order])

    # ------------------------------------------------------------ LS means
    def _lsmeans_setup(
        self, specs: Any, at: Any
    ) -> tuple[pd.DataFrame, npt.NDArray[np.float64]]:
        from alsprog._formula_text import formula_context
        from alsprog.models.lmm._lsmeans import lsmeans_matrix, reference_grid

        check_is_fitted(self, ["fe_params_"])
        spec = self._design_info["fixed_spec"]
        variables = [v for v in self._frame.columns if v in spec.required_variables]
        specs = [specs] if isinstance(specs, str) else list(specs)
        bad = [s for s in specs if s not in variables]
        if not specs or bad:
            raise ModelSpecificationError(
                f"`specs` must name variables of the fixed effects "
                f"({', '.join(variables)}); got {specs!r}."
            )
        if at is not None and not isinstance(at, dict):
            raise ModelSpecificationError(
                f"`at` must be a dict of variable -> value(s); got {at!r}."
            )
        grid = reference_grid(self._frame, variables, at)
        X = np.asarray(
            spec.get_model_matrix(grid, na_action="raise", context=formula_context()),
            dtype=float,
        )
        return lsmeans_matrix(grid, X, specs)

    def lsmeans(
        self,
        specs: str | list[str],
        *,
        at: dict[str, Any] | None = None,
        level: float = 0.95,
        ddf: str = "satterthwaite",
    ) -> pd.DataFrame:
        """LS means (estimated marginal means) as emmeans computes them.

        Over the reference grid (every level of each factor of the fixed effects;
        numeric covariates at their mean over the fit's rows, or at the values in
        ``at``), the model's prediction in each cell of ``specs``, the other
        factors averaged with equal weights (emmeans' ``emmeans(m, ~ specs,
        at = ...)``).

        Parameters
        ----------
        specs : str or list of str
            The variables whose cells get a mean, e.g. ``"onset_site"`` or
            ``["arm", "months"]`` (the first varies fastest).
        at : dict, optional
            Values of numeric covariates (or levels of factors) to put in the grid,
            e.g. ``{"months": 12}`` (each arm at month 12) or ``{"months": [0, 6,
            12]}``.
        level : float, default 0.95
            Coverage of the intervals.
        ddf : {"satterthwaite", "kenward-roger", "normal"}, default "satterthwaite"
            Degrees of freedom of the t intervals and tests (emmeans'
            ``lmer.df``; its own default is "kenward-roger", with the adjusted
            standard errors).

        Returns
        -------
        pandas.DataFrame
            The ``specs`` columns, then ``estimate``, ``std_error``, ``df``,
            ``lower``, ``upper``, ``t``, ``p_value`` (the test of mean 0).

        Raises
        ------
        ModelSpecificationError
            ``specs`` or ``at`` naming a variable the fixed effects do not use, or
            a level not seen in the fit.

        Examples
        --------
        >>> from alsprog.simulate import simulate_cohort
        >>> from alsprog.data import assemble
        >>> from alsprog.models import LinearMixedModel
        >>> c = simulate_cohort(80, seed=3)
        >>> t = assemble(c.visits, c.subjects)
        >>> m = LinearMixedModel(
        ...     "alsfrs_r_total ~ months * onset_site + (months | subject_id)").fit(t)
        >>> m.lsmeans("onset_site", at={"months": 12})[["onset_site", "df"]].shape
        (2, 2)
        """
        from alsprog.models.lmm._ddf import contrast_tests

        cells, L = self._lsmeans_setup(specs, at)
        return self._cell_table(cells, L, level, ddf, contrast_tests)

    def _cell_table(
        self,
        cells: pd.DataFrame,
        L: npt.NDArray[np.float64],
        level: float,
        ddf: str,
        tests: Any,
        crit: npt.NDArray[np.float64] | None = None,
    ) -> pd.DataFrame:
        from scipy import stats as st

        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        self._tests(L[:0], ddf)  # checks ddf
        r = tests(
            L,
            self.fe_params_.to_numpy(),
            self._cov_beta,
            ddf=ddf,
            state=self._state(ddf),
        )
        q = st.t.ppf(0.5 + level / 2, r["df"]) if crit is None else crit
        out = cells.reset_index(drop=True).copy()
        out["estimate"] = r["estimate"]
        out["std_error"] = r["std_error"]
        out["df"] = r["df"]
        out["lower"] = r["estimate"] - q * r["std_error"]
        out["upper"] = r["estimate"] + q * r["std_error"]
        out["t"] = r["t"]
        out["p_value"] = r["p_value"]
        return out

    def contrast(
        self,
        specs: str | list[str],
        *,
        method: str = "pairwise",
        at: dict[str, Any] | None = None,
        level: float = 0.95,
        ddf: str = "satterthwaite",
        adjust: str = "tukey",
    ) -> pd.DataFrame:
        """Differences of LS means, as emmeans' ``pairs(emmeans(...))``.

        Parameters
        ----------
        specs, at, level, ddf
            As for :meth:`lsmeans`.
        method : {"pairwise"}, default "pairwise"
            Every pair of cells, ``"a - b"`` for a before b.
        adjust : {"tukey", "bonferroni", "none"}, default "tukey"
            Multiplicity adjustment of the p-values and intervals (emmeans'
            default for pairs is Tukey's, the studentized range over the number of
            means).

        Returns
        -------
        pandas.DataFrame
            ``contrast``, ``estimate``, ``std_error``, ``df``, ``lower``,
            ``upper``, ``t``, ``p_value``.

        Examples
        --------
        >>> from alsprog.simulate import simulate_cohort
        >>> from alsprog.data import assemble
        >>> from alsprog.models import LinearMixedModel
        >>> c = simulate_cohort(80, seed=3)
        >>> t = assemble(c.visits, c.subjects)
        >>> m = LinearMixedModel(
        ...     "alsfrs_r_total ~ months * onset_site + (months | subject_id)").fit(t)
        >>> m.contrast("onset_site", at={"months": 12})["contrast"].tolist()
        ['bulbar - spinal']
        """
        from scipy import stats as st

        from alsprog.models.lmm._ddf import contrast_tests
        from alsprog.models.lmm._lsmeans import pairwise

        if method != "pairwise":
            raise ValueError(f"`method` must be 'pairwise'; got {method!r}.")
        if adjust not in ("tukey", "bonferroni", "none"):
            raise ValueError(
                f"`adjust` must be 'tukey', 'bonferroni' or 'none'; got {adjust!r}."
            )
        cells, L = self._lsmeans_setup(specs, at)
        names, D = pairwise(cells, L)
        if not names:
            raise ModelSpecificationError(
                f"{specs!r} has a single cell: there is no pair to compare."
            )
        k, m = len(cells), len(names)
        base = self._cell_table(
            pd.DataFrame({"contrast": names}), D, level, ddf, contrast_tests
        )
        df = base["df"].to_numpy(dtype=float)
        t = base["t"].to_numpy(dtype=float)
        if adjust == "tukey" and k > 2:
            p = st.studentized_range.sf(np.abs(t) * np.sqrt(2.0), k, df)
            crit = st.studentized_range.ppf(level, k, df) / np.sqrt(2.0)
        elif adjust == "bonferroni" and m > 1:
            p = np.minimum(1.0, base["p_value"].to_numpy() * m)
            crit = st.t.ppf(1.0 - (1.0 - level) / (2.0 * m), df)
        else:
            return base
        se = base["std_error"].to_numpy()
        est = base["estimate"].to_numpy()
        base["lower"] = est - crit * se
        base["upper"] = est + crit * se
        base["p_value"] = p
        return base


def _multi_satterthwaite(model: Any, design: Any) -> Any:
    """The Satterthwaite state of a fit with several grouping factors."""
    from alsprog.models.lmm._ddf import satterthwaite_from
    from alsprog.models.lmm._multi import multi_pieces
    from alsprog.models.lmm._multi_model import multi_state

    design, st, _ = multi_state(model)
    reml = bool(model.reml)
    return satterthwaite_from(
        lambda th: multi_pieces(th, design, st, reml),
        st.n,
        st.p,
        model.theta_.to_numpy(),
        math.sqrt(model.scale_),
        reml=reml,
    )


def _multi_kenward_roger(model: Any, design: Any) -> Any:
    """pbkrtest's adjusted covariance for a fit with several grouping factors."""
    from alsprog.models.lmm._kr import kr_state_factors

    factors = [
        (f.Z, f.codes, model.cov_re_[f.name].to_numpy(), f.terms)
        for f in design.factors
    ]
    return kr_state_factors(design.X, factors, float(model.scale_))
