"""Linear mixed-effects models fitted by exact profiled REML/ML.

Owns: :class:`LinearMixedModel`, the user-facing estimator with lme4-style formulas,
its fitted attributes (statsmodels' names), intervals, predictions, subject
trajectories and its part of the model contract.
Leaves: the formula -> design step to :mod:`alsprog.models._formula`, the likelihood
and optimiser to :mod:`alsprog.models.lmm._numerics`, the summary tables to
:mod:`alsprog.models.lmm._summary`, the conditional forecast of new patients to
:mod:`alsprog.models.lmm._forecast`, the saved-file layout to
:mod:`alsprog.models.lmm._io`, figures to :mod:`alsprog.plots`.  Imports stay light
(no scikit-learn, scipy and formulaic only inside the functions that use them) so
that a first fit in a fresh process is quick.
"""

from __future__ import annotations

import logging
import os
import time as _time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._validation import check_choice, check_is_fitted
from alsprog.errors import (
    ConvergenceWarning,
    ModelSpecificationError,
    not_converged,
)
from alsprog.models._contract import (
    DEFAULT_LEVEL,
    ForecastRows,
    TrajectoryModel,
    outcome_bounds,
)
from alsprog.models._formula import (
    MixedDesign,
    build_mixed_design,
    parse_mixed_formula,
)
from alsprog.models._summary import Summary
from alsprog.models._threads import single_blas_thread
from alsprog.models.lmm._inference import MixedInference, forget_derived
from alsprog.models.lmm._multi_design import needs_multi
from alsprog.models.lmm._numerics import (
    GroupStats,
    LmmEstimates,
    compute_group_stats,
    fit_profiled,
)

if TYPE_CHECKING:
    from alsprog.data._history import ModelColumns, Prepared

__all__ = ["LinearMixedModel"]

logger = logging.getLogger(__name__)

#: lme4's ``isSingular`` tolerance on the diagonal of theta.
SINGULAR_TOL = 1e-4


class LinearMixedModel(MixedInference, TrajectoryModel):
    """Linear mixed-effects model with lme4-style formulas, fitted by exact REML or ML.

    The fit maximises lme4's profiled (restricted) likelihood over the relative
    covariance factor theta, using per-subject sufficient statistics so that every
    likelihood evaluation is a vectorised pass over subjects, with the exact gradient.
    Several grouping factors take lme4's sparse penalised least squares instead,
    factored blockwise (the factor with the most levels level by level, the others'
    Schur complement densely; at most 4,000 random effects outside the first
    factor). Estimates agree with ``lme4::lmer`` (see ``tests/reference``).

    Parameters
    ----------
    formula : str
        ``"outcome ~ fixed terms + (expr | group)"``, e.g.
        ``"alsfrs_r_total ~ months * onset_site + age_at_onset + (months | subject_id)"``.
        The fixed part is read by formulaic (treatment coding, first level as
        reference, names such as ``onset_site[T.spinal]``); random terms may be
        ``(1 | g)``, ``(months | g)``, ``(1 | g) + (0 + months | g)`` or
        ``(months || g)``, on one grouping factor or several: crossed
        ``(1 | site) + (months | subject_id)``, nested ``(1 | site/subject_id)``
        (= ``(1 | site) + (1 | subject_id:site)``) or an interaction
        ``(1 | site:subject_id)``.  With several factors ``random_effects_`` and
        ``cov_re_`` are dictionaries by factor (lme4's ``ranef`` and ``VarCorr``
        lists), the subject is the first column of the factor with the most
        levels, and forecasting new patients is refused (one subject factor only).
    reml : bool, default True
        REML (``True``, lme4's default) or maximum likelihood.
    time : str, default "months"
        Time column, used by :meth:`subject_trajectories` and, through
        :attr:`columns_`, by forecasts, figures and backtests; name it when the
        formula's time variable is not ``months``.
    tol : float, default 1e-10
        Optimiser tolerance (relative change of the deviance and projected gradient).
    max_iter : int, default 1000
        Maximum optimiser iterations.
    strict : bool, default False
        Raise :class:`~alsprog.errors.ConvergenceError` instead of warning when the
        optimiser does not converge.
    ddf : {"satterthwaite", "kenward-roger", "normal"}, default "satterthwaite"
        Denominator degrees of freedom of the fixed-effect t-tests that
        :meth:`summary` shows (and the report's model table): Satterthwaite's
        (lmerTest's default), Kenward-Roger's (pbkrtest's; REML fits) or none
        (z-tests).

    Attributes
    ----------
    fe_params_ : pandas.Series
        Fixed-effect estimates.
    bse_ : pandas.Series
        Their standard errors, from ``sigma^2 (X'V^{-1}X)^{-1}`` as in lme4.
    cov_re_ : pandas.DataFrame or dict of str to pandas.DataFrame
        Covariance matrix of the random effects (one per grouping factor, by
        lme4's factor name such as ``"subject_id:site"``, with several).
    scale_ : float
        Residual variance.
    llf_ : float
        REML or ML log-likelihood on lme4's scale (``REMLcrit = -2 * llf_``).
    random_effects_ : pandas.DataFrame or dict of str to pandas.DataFrame
        Conditional modes (BLUPs), one row per group level (one table per grouping
        factor with several; unseen levels predict 0, lme4's ``allow.new.levels``).
    theta_ : pandas.Series
        Relative covariance parameters (lme4's ``getME(m, "theta")``).
    converged_ : bool
    singular_ : bool
        True when a variance is at the boundary (lme4's ``isSingular``).
    n_obs_, n_subjects_, n_dropped_ : int
        Rows used, group levels (subjects), rows dropped for missing values
        (``n_groups_``, lme4's word, is a read-only alias of ``n_subjects_``).
    outcome_bounds_ : tuple of float
        The outcome's range in the data dictionary (0-48 for ``alsfrs_r_total``;
        ``(-inf, inf)`` for an outcome it does not bound): forecasts stay inside.
    resid_ : pandas.Series
        Conditional residuals ``y - X beta - Z b`` indexed like the rows used.
    n_iter_ : int
        Deviance evaluations used by the optimiser.
    columns_ : ModelColumns
        The outcome, grouping, time and covariate columns the fitted model reads
        (read-only; from the formula and ``time``).

    Raises
    ------
    ModelSpecificationError
        From :meth:`fit`, for an unreadable formula, unknown column, a grouping
        factor with one level, collinear fixed effects or too few observations.

    Warns
    -----
    DataWarning
        Rows with missing values are dropped (count in ``n_dropped_``).
    ConvergenceWarning
        Boundary (singular) fit, or the optimiser did not converge.

    See Also
    --------
    MMRM : mixed model for repeated measures at scheduled visits.

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models
    using lme4. J Stat Softw 67(1):1-48.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> sid = np.repeat(np.arange(40), 5); t = np.tile(np.arange(5.0) * 3, 40)
    >>> y = 38 + rng.normal(0, 4, 40)[sid] + (-0.9 + rng.normal(0, .5, 40)[sid]) * t
    >>> frs = np.clip(np.round(y + rng.normal(0, 2, 200)), 0, 48)  # scores are whole
    >>> df = pd.DataFrame({"subject_id": sid, "months": t, "alsfrs_r_total": frs})
    >>> m = LinearMixedModel("alsfrs_r_total ~ months + (months | subject_id)").fit(df)
    >>> m.fe_params_.round(2)
    Intercept    37.65
    months       -0.75
    dtype: float64
    """

    #: The suffix of the file :meth:`save` writes (a NumPy ``.npz`` archive).
    file_suffix = ".npz"
    param_ranges = {"tol": "(0, 1]", "max_iter": "[1, inf]"}

    def describe(self) -> str:
        """``"mixed model (REML)"`` or ``(ML)`` (progress lines)."""
        return f"mixed model ({'REML' if self.reml else 'ML'})"

    def __init__(
        self,
        formula: str,
        *,
        reml: bool = True,
        time: str = "months",
        tol: float = 1e-10,
        max_iter: int = 1000,
        strict: bool = False,
        ddf: Literal["satterthwaite", "kenward-roger", "normal"] = "satterthwaite",
    ) -> None:
        self.formula = formula
        self.reml = reml
        self.time = time
        self.tol = tol
        self.max_iter = max_iter
        self.strict = strict
        self.ddf = ddf

    def _check_params(self) -> None:
        """Check the parameters (from :meth:`fit`, and :meth:`load` on a file's)."""
        self.check_params()
        if not isinstance(self.time, str):
            raise TypeError(f"`time` must be a column name (str); got {self.time!r}.")

    # ------------------------------------------------------------------ fit
    def fit(self, df: pd.DataFrame) -> LinearMixedModel:
        """Fit the model to a long-format table.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per observation; not modified.

        Returns
        -------
        LinearMixedModel
            ``self``, fitted.

        Raises
        ------
        ModelSpecificationError
            See the class docstring.
        ConvergenceError
            If ``strict=True`` and the optimiser did not converge.

        Warns
        -----
        DataWarning, ConvergenceWarning
        """
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, k)
        self._check_params()
        if needs_multi(parse_mixed_formula(self.formula)):  # several grouping factors
            from alsprog.models.lmm._multi_model import fit_multi_model

            return fit_multi_model(self, df, SINGULAR_TOL)
        t0 = _time.perf_counter()
        with single_blas_thread():
            design = build_mixed_design(self.formula, df)
            G = len(design.group_levels)
            stats = compute_group_stats(design.X, design.Z, design.y, design.groups, G)
            tpl = design.template
            est = fit_profiled(
                stats,
                tpl.rows,
                tpl.cols,
                tpl.lower,
                reml=bool(self.reml),
                tol=float(self.tol),
                max_iter=int(self.max_iter),
            )
        self._set_fitted(design, stats, est)
        self._frame = design.frame
        first = np.full(G, -1, dtype=np.intp)
        first[design.groups[::-1]] = np.arange(len(design.groups))[::-1]
        # the design's own rows: values as the data dictionary read them
        frame = design.frame if design.frame is not None else df.iloc[[]]
        self._first_rows = frame.iloc[first][design.variables].reset_index(drop=True)
        if self.time in design.variables:
            tv = pd.to_numeric(
                df[self.time].iloc[design.row_positions], errors="coerce"
            )
            self._time_range = (float(tv.min()), float(tv.max()))
        else:
            self._time_range = (np.nan, np.nan)
        logger.info(
            "LinearMixedModel: %d rows, %d groups, %d evaluations, %.3f s",
            design.X.shape[0],
            G,
            est.n_iter,
            _time.perf_counter() - t0,
        )
        diag = tpl.rows == tpl.cols
        self.singular_ = bool(np.any(est.theta[diag] < SINGULAR_TOL))
        if not est.converged:
            msg = (
                f"REML/ML optimisation did not converge ({est.message}; max |gradient| "
                f"{np.max(np.abs(est.grad)):.1e}); rescale the time variable or raise "
                "max_iter."
            )
            not_converged(msg, strict=bool(self.strict), stacklevel=2)
        if not self.singular_ and est.converged:
            self._warn_flat(stats, est.theta)
        if self.singular_:
            at = [
                tpl.names[i] for i in np.flatnonzero(diag & (est.theta < SINGULAR_TOL))
            ]
            warnings.warn(
                f"boundary (singular) fit: the variance of {', '.join(at)} is estimated "
                "at (or near) zero; consider a simpler random-effects structure "
                "(lme4: see help('isSingular')).",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _warn_flat(self, stats: GroupStats, theta: npt.NDArray[np.float64]) -> None:
        """Warn when the criterion is flat along some direction of theta (lme4:
        "Model is nearly unidentifiable")."""
        from alsprog.models.lmm._identify import flat_directions, warn_flat

        tpl = self._design_info["template"]
        ratio, U = flat_directions(
            theta, stats, tpl.rows, tpl.cols, reml=bool(self.reml)
        )
        warn_flat(ratio, U, list(tpl.names), bool(self.reml))

    def _set_fitted(
        self, design: MixedDesign, stats: GroupStats, est: LmmEstimates
    ) -> None:
        fitted = design.X @ est.beta + np.einsum(
            "nq,nq->n", design.Z, est.b[design.groups]
        )
        self._set_state(
            design,
            beta=est.beta,
            cov_beta=est.cov_beta,
            cov_re=est.cov_re,
            sigma2=float(est.sigma2),
            deviance=float(est.deviance),
            theta=est.theta,
            b=est.b,
            Q=est.cov_b / est.sigma2 if est.sigma2 > 0 else est.cov_b,
            ZtX=stats.ZtX,
            resid=design.y - fitted,
            converged=bool(est.converged),
            n_iter=int(est.n_iter),
            n_dropped=int(design.n_dropped),
        )

    def _set_state(
        self,
        design: MixedDesign,
        *,
        beta: npt.NDArray[np.float64],
        cov_beta: npt.NDArray[np.float64],
        cov_re: npt.NDArray[np.float64],
        sigma2: float,
        deviance: float,
        theta: npt.NDArray[np.float64],
        b: npt.NDArray[np.float64],
        Q: npt.NDArray[np.float64],
        ZtX: npt.NDArray[np.float64],
        resid: npt.NDArray[np.float64],
        converged: bool,
        n_iter: int,
        n_dropped: int,
    ) -> None:
        """Set the fitted attributes (from :meth:`fit` or :meth:`load`)."""
        fe = design.fe_names
        re = design.re_names
        self.fe_params_ = pd.Series(beta, index=fe)
        self.bse_ = pd.Series(np.sqrt(np.diag(cov_beta)), index=fe)
        self.cov_re_ = pd.DataFrame(cov_re, index=re, columns=re)
        self.scale_ = sigma2
        self.llf_ = -0.5 * deviance
        self.theta_ = pd.Series(theta, index=list(design.template.names), name="theta")
        self.random_effects_ = pd.DataFrame(
            b, index=design.group_levels.copy(), columns=re
        )
        self.converged_ = converged
        self.n_obs_ = int(design.X.shape[0])
        self.n_subjects_ = int(len(design.group_levels))
        self.outcome_bounds_ = outcome_bounds(design.outcome)
        self.n_dropped_ = n_dropped
        self.n_iter_ = n_iter
        self.resid_ = pd.Series(resid, index=design.row_index, name="resid")
        # private fitted state for predictions
        self._cov_beta = cov_beta
        self._Q = Q
        self._ZtX = ZtX
        self._design_info = {
            "fixed_spec": design.fixed_spec,
            "random_specs": design.random_specs,
            "group": design.group,
            "outcome": design.outcome,
            "variables": design.variables,
            "levels": design.group_levels,
            "n_theta": design.template.n_theta,
            "template": design.template,
        }
        self._deviance = deviance
        self._multi = None  # one grouping factor (see _multi_model)
        forget_derived(self)  # the Satterthwaite and Kenward-Roger states

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to one file (NumPy ``.npz``; never a pickle).

        The file holds a JSON header ``{"model": "LinearMixedModel", "version":
        alsprog version, "params": get_params(), ...}``, every fitted array, and the
        model's columns of the rows used in the fit, from which :meth:`load`
        rebuilds the formula's design exactly (category levels, stateful
        transforms such as ``center(age)``).  So the file contains those data:
        share it as you would share them.  The write is atomic.

        Parameters
        ----------
        path : str or os.PathLike
            Output file, conventionally ``*.npz`` (no suffix is added).

        Raises
        ------
        NotFittedError
            If the model is not fitted.
        SavedModelError
            If a parameter, a model column or the data's index cannot be stored
            without pickle (e.g. an object column mixing strings and numbers).

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> sid = np.repeat(np.arange(30), 4); t = np.tile(np.arange(4.0), 30)
        >>> y = 40 + rng.normal(0, 3, 30)[sid] - t + rng.normal(0, 1, 120)
        >>> df = pd.DataFrame({"subject_id": sid, "months": t,
        ...                    "alsfrs_r_total": np.round(y)})
        >>> m = LinearMixedModel("alsfrs_r_total ~ months + (1 | subject_id)").fit(df)
        >>> path = pathlib.Path(tempfile.mkdtemp()) / ("lmm" + m.file_suffix)
        >>> m.save(path)
        >>> back = LinearMixedModel.load(path)
        >>> bool((back.fe_params_ == m.fe_params_).all())
        True
        """
        from alsprog.models.lmm._io import save_model

        check_is_fitted(self, ["fe_params_"])
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LinearMixedModel:
        """Rebuild a model written by :meth:`save`, fitted and without refitting.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        LinearMixedModel
            With the saved estimates; every method (``summary``, ``confint``,
            ``predict``, ``subject_trajectories``, ``cov_params``, ``aic``/``bic``)
            gives the results of the saved model.

        Raises
        ------
        SavedModelError
            Missing file or a file of another kind (named: "it is a netCDF-4/HDF5
            file, not an alsprog mixed-model .npz file"), a file of another model
            class, alsprog version or format, or a missing or malformed field (the
            message names the file and the field).  The whole file is checked before
            anything is built from it: the JSON header (every field, its type, the
            parameters as :meth:`fit` checks them, the formula through alsprog's
            allow-list), every array's declared shape and dtype against the header's
            counts (read from the ``.npy`` headers, so an array claiming more than
            the file can hold is refused before any allocation; never an object
            array, so never a pickle), then finite values, non-negative variances
            and the design rebuilt from the saved rows.
        """
        from alsprog.models.lmm._io import load_model

        return load_model(cls, path)

    # ------------------------------------------------------------ results
    def cov_params(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effect estimates (lme4's ``vcov``).

        Returns
        -------
        pandas.DataFrame
        """
        check_is_fitted(self, ["fe_params_"])
        names = self.fe_params_.index
        return pd.DataFrame(self._cov_beta, index=names, columns=names)

    @property
    def aic(self) -> float:
        """Akaike information criterion ``-2 llf + 2 k`` (k: fixed + variance params + 1)."""
        check_is_fitted(self, ["llf_"])
        k = len(self.fe_params_) + self._design_info["n_theta"] + 1
        return -2.0 * self.llf_ + 2.0 * k

    @property
    def bic(self) -> float:
        """Bayesian information criterion ``-2 llf + log(n) k``."""
        check_is_fitted(self, ["llf_"])
        k = len(self.fe_params_) + self._design_info["n_theta"] + 1
        return -2.0 * self.llf_ + np.log(self.n_obs_) * k

    def summary(
        self, level: float = DEFAULT_LEVEL, *, ddf: str | None = "model"
    ) -> Summary:
        """lmerTest's summary: criterion, scaled residuals, random and fixed effects
        with Satterthwaite t-tests.

        Printed, it is lmerTest's ``print(summary(fit))`` line for line (numbers as
        R formats them, significance codes included; see
        :class:`~alsprog.models.MixedSummary`); with ``ddf=None`` it is lme4's.

        Parameters
        ----------
        level : float, default 0.95
            Coverage of the intervals in the fixed-effects table (t quantiles on
            each coefficient's df; normal quantiles with ``ddf`` "normal" or None).
        ddf : {"model", "satterthwaite", "kenward-roger", "normal"} or None, default "model"
            Denominator degrees of freedom of the t-tests (``"model"``: the
            model's ``ddf``, Satterthwaite's by default): Satterthwaite's
            approximation as lmerTest computes it (its default), Kenward-Roger's
            (with the adjusted standard errors, as pbkrtest; REML fits), none
            (z-tests), or None for lme4's table without tests.

        Returns
        -------
        MixedSummary
            Tables ``"residuals"``, ``"random"`` (variance, std_dev and correlations)
            and ``"fixed"`` (estimate, std_error, df, t, p_value, ci_lower,
            ci_upper; without ``df`` and ``p_value`` when ``ddf`` is None).

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"g": list("aabbccdd"), "t": [0, 1] * 4,
        ...                    "y": [1.0, 2.1, 0.4, 1.2, 2.0, 3.3, 1.1, 1.7]})
        >>> print(LinearMixedModel("y ~ t + (1 | g)").fit(df).summary(ddf=None))
        Linear mixed model fit by REML
        Formula: y ~ t + (1 | g)
        <BLANKLINE>
        REML criterion at convergence: 11.2
        <BLANKLINE>
        Scaled residuals:
             Min       1Q   Median       3Q      Max
        -0.83295 -0.51721 -0.07852  0.43869  0.98999
        <BLANKLINE>
        Random effects:
         Groups   Name        Variance Std.Dev.
         g        (Intercept) 0.57083  0.7555
         Residual             0.04833  0.2198
        Number of obs: 8, groups:  g, 4
        <BLANKLINE>
        Fixed effects:
                    Estimate Std. Error t value
        (Intercept)   1.1250     0.3934   2.859
        t             0.9500     0.1555   6.111
        <BLANKLINE>
        Correlation of Fixed Effects:
          (Intr)
        t -0.198
        """
        from alsprog.models.lmm._summary import lmm_summary

        check_is_fitted(self, ["fe_params_"])
        if ddf == "model":
            ddf = self.ddf
        return lmm_summary(self, level, ddf)

    # -------------------------------------------------------- prediction
    @property
    def columns_(self) -> ModelColumns:
        """The columns the fitted model reads (outcome, subject, time, covariates).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> t = np.tile([0.0, 3.0, 6.0], 20)
        >>> frs = 40 - t + np.repeat(np.arange(20) % 5, 3) + np.arange(60) % 4
        >>> df = pd.DataFrame({"patient": np.repeat(np.arange(20), 3),
        ...                    "visit_month": t, "frs": frs})
        >>> m = LinearMixedModel("frs ~ visit_month + (1 | patient)",
        ...                      time="visit_month").fit(df)
        >>> m.columns_.subject, m.columns_.time, m.columns_.outcome
        ('patient', 'visit_month', 'frs')
        """
        from alsprog.data._history import ModelColumns

        check_is_fitted(self, ["fe_params_"])
        info = self._design_info
        return ModelColumns.of(
            info["outcome"], info["group"], str(self.time), info["variables"]
        )

    def required_columns(self) -> ModelColumns:
        """The outcome, subject and time columns the model will read (before fit).

        Examples
        --------
        >>> c = LinearMixedModel("frs ~ visit_month + (visit_month | patient)",
        ...                      time="visit_month").required_columns()
        >>> c.outcome, c.subject, c.time
        ('frs', 'patient', 'visit_month')
        """
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
        from alsprog.models.lmm._multi_model import refuse_multi

        check_is_fitted(self, ["fe_params_"])
        refuse_multi(self, "Forecasting new patients")
        check_time_in_formula(self, self, str(self.time))

    def forecast_rows(
        self,
        history: Prepared,
        *,
        level: float,
        n_samples: int | None = None,
        rng: np.random.Generator,
        given_alive: bool = True,
    ) -> ForecastRows:
        """New patients' forecasts given their history: the exact conditional normal.

        The BLUP given the history with its prediction variance, the fixed-effect
        uncertainty and the residual variance, censored at
        :attr:`outcome_bounds_`; ``stats`` also holds ``loc`` and ``scale`` (the
        normal before censoring).  ``given_alive`` is ignored.  See
        :meth:`TrajectoryModel.forecast_rows
        <alsprog.models._contract.TrajectoryModel.forecast_rows>`;
        :func:`alsprog.forecast.forecast` is the public entry point.
        """
        from alsprog.models.lmm._forecast import lmm_forecast_rows
        from alsprog.models.lmm._multi_model import refuse_multi

        check_is_fitted(self, ["fe_params_"])
        refuse_multi(self, "Forecasting new patients")
        return lmm_forecast_rows(
            self, history, level=level, n_samples=n_samples, rng=rng
        )

    def _fixed_matrix(
        self, df: pd.DataFrame
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """Fixed- and random-effects designs ``X``, ``Z`` of the complete rows of
        ``df`` and the row mask (the fitted model is not changed)."""
        from alsprog.models.lmm._forecast import prediction_design

        return prediction_design(self._design_info, self.formula, df)

    def predict(self, df: pd.DataFrame, *, include_random: bool = True) -> pd.Series:
        """Predicted outcome for the rows of ``df``.

        Parameters
        ----------
        df : pandas.DataFrame
            Rows to predict; needs the covariates and, when ``include_random``, the
            grouping column.
        include_random : bool, default True
            Add the subject's BLUP for subjects seen in the fit; unseen subjects
            (and all rows when ``False``) get the population (fixed-effects) mean.

        Returns
        -------
        pandas.Series
            Indexed like ``df``; NaN where a covariate is missing.

        Raises
        ------
        ModelSpecificationError
            If a needed column is absent or a category was not seen in the fit.
        """
        check_is_fitted(self, ["fe_params_"])
        check_choice(include_random, "include_random", (True, False))
        if not isinstance(df, pd.DataFrame):
            raise TypeError(
                f"`df` must be a pandas DataFrame; got {type(df).__name__}."
            )
        if self._multi is not None:
            from alsprog.models.lmm._multi_model import multi_predict

            return multi_predict(self, df, include_random)
        X, Z, ok = self._fixed_matrix(df)
        out = np.full(len(df), np.nan)
        pred = X @ self.fe_params_.to_numpy()
        if include_random:
            group = self._design_info["group"]
            if group not in df.columns:
                raise ModelSpecificationError(
                    f"Data for prediction lacks the grouping column {group!r}; pass it "
                    "or use include_random=False."
                )
            idx = self._design_info["levels"].get_indexer(df.loc[ok, group])
            seen = idx >= 0
            b = self.random_effects_.to_numpy()
            pred[seen] += np.einsum("nq,nq->n", Z[seen], b[idx[seen]])
        out[ok] = pred
        return pd.Series(out, index=df.index, name="predicted")

    def subject_trajectories(
        self,
        times: Sequence[float] | npt.ArrayLike | None = None,
        *,
        subjects: Sequence[object] | None = None,
        level: float = 0.9,
        interval: Literal["confidence", "prediction"] = "confidence",
    ) -> pd.DataFrame:
        """Each subject's predicted trajectory at ``times`` with pointwise intervals.

        The subject's covariates are taken from their first row in the fitted data;
        the time column is set to each value of ``times``.

        Parameters
        ----------
        times : array-like of float, optional
            Values of the time column (``time``, months by default); 25 equally
            spaced values over the fitted data's range by default.
        subjects : sequence, optional
            Group levels seen in the fit; all by default.
        level : float, default 0.9
            Interval coverage, in (0, 1).
        interval : {"confidence", "prediction"}, default "confidence"
            ``"confidence"`` covers the subject's mean trajectory (every model's
            default); ``"prediction"`` covers a new observation (adds the residual
            variance).

        Returns
        -------
        pandas.DataFrame
            Columns: the grouping column, the time column, ``mean``, ``se``,
            ``lower``, ``upper``.  The variance accounts for the uncertainty of the
            fixed effects and of the BLUPs (theta and sigma treated as known),
            normal quantiles.

        Raises
        ------
        ModelSpecificationError
            If a subject was not in the fit or the time column is not in the model.
        """
        from alsprog.models.lmm._forecast import lmm_subject_trajectories

        check_is_fitted(self, ["fe_params_"])
        return lmm_subject_trajectories(self, times, subjects, level, interval)
