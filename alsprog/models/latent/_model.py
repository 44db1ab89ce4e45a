"""Latent-class linear mixed models: progression classes found from the visits.

Owns: :class:`LatentClassMixedModel` (lcmm's ``hlme`` with a common random-effects
covariance): its parameter checks, the many-start fit (EM then L-BFGS on the exact
marginal likelihood, in parallel over starts), the deterministic class labels, the
fitted attributes (estimates, information criteria, entropy, posteriors), the
summary with lcmm's posterior classification table, and the class probabilities of
new patients (:meth:`~LatentClassMixedModel.predict_class`).
Leaves: the formula -> design step to :mod:`alsprog.models._formula`, the one-class
start to the mixed model's numerics (:mod:`alsprog.models.lmm._numerics`), the
likelihood, EM and optimiser to :mod:`alsprog.models.latent._numerics`; class-number
selection, forecasts, saving and registration to later work (issue 24).
"""

from __future__ import annotations

import logging
import os
import time as _time
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._random import as_generator
from alsprog._validation import check_int, check_interval, check_is_fitted, check_n_jobs
from alsprog.errors import ConvergenceWarning, DataWarning, ModelSpecificationError
from alsprog.models._contract import (
    DEFAULT_INTERVAL,
    DEFAULT_LEVEL,
    DEFAULT_TRAJECTORY_LEVEL,
    ForecastRows,
    TrajectoryModel,
    outcome_bounds,
)
from alsprog.models._formula import build_mixed_design
from alsprog.models._summary import Summary
from alsprog.models._threads import single_blas_thread
from alsprog.models.latent._link import Link
from alsprog.models.latent._membership import (
    Membership,
    class_rhs,
    membership_design,
    membership_rows,
)
from alsprog.models.latent._numerics import (
    Layout,
    SubjectStats,
    build_stats,
    evaluate,
    fit_one_start,
    log_prior,
    newton_polish,
)
from alsprog.models.latent._predict import FittedState
from alsprog.models.latent._starts import one_class_start, relabel, run_starts
from alsprog.models.lmm._forecast import mixed_required_columns

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from alsprog.data._history import ModelColumns, Prepared

__all__ = ["LatentClassMixedModel"]

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]

#: Starts whose log-likelihood is within this of the best count as reaching it.
BEST_TOL = 1e-4
#: Fewest subjects per class that a fit accepts.
MIN_SUBJECTS_PER_CLASS = 5


class LatentClassMixedModel(TrajectoryModel):
    """Latent-class linear mixed model (lcmm's ``hlme``), fitted by exact ML.

    Each subject belongs to one of ``n_classes`` latent classes with probability
    ``pi_k`` (or, with ``class_formula``, ``pi_ik`` from a multinomial logit on the
    subject's baseline covariates, lcmm's ``classmb``).  Given the class, the outcome follows a linear mixed model whose fixed
    effects named in ``mixture`` are the class's own (the others are shared), with
    one random-effects covariance ``G`` and one residual variance ``s2`` for all
    classes (``hlme``'s default, ``nwg = FALSE``).  The fit maximises the exact
    marginal log-likelihood ``sum_i log sum_k pi_k N(y_i; X_i beta_k, Z_i G Z_i' +
    s2 I)``: from each of ``n_init`` starts, EM steps (posterior-weighted GLS for the
    fixed effects, Verbeke & Lesaffre's expected complete-data updates of ``G`` and
    ``s2``) and then L-BFGS with the analytic gradient over an unconstrained
    parameterisation (log-Cholesky of ``G``, ``log s2``, the membership logit's
    coefficients).  The best start is kept, and ``n_best_starts_`` says how many
    starts reached it.

    The model meets alsprog's trajectory-model contract: a new patient's forecast
    (:func:`alsprog.forecast.forecast`, ``backtest``, ``CalibratedForecaster``) is
    the mixture over classes, weighted by the patient's class posterior given the
    visits so far, of each class's conditional normal forecast (lcmm's
    ``predictY`` given the visits); :meth:`subject_trajectories`, :meth:`predict`,
    :meth:`class_trajectories`, :meth:`save` and :meth:`load` work as on the
    other models.  The random-effects structure is the formula's ``(... | group)``
    term.

    Classes are labelled 1..K by decreasing coefficient of the first class-specific
    term other than the intercept (the slope of ``months``: class 1 progresses
    slowest), or by decreasing size when the intercept alone is class-specific, so
    fits from different seeds carry the same labels.

    Parameters
    ----------
    formula : str
        Mixed-model formula with one grouping factor, as
        :class:`~alsprog.models.LinearMixedModel`'s, e.g.
        ``"alsfrs_r_total ~ months + (months | subject_id)"``.
    n_classes : int, default 2
        Number of latent classes, >= 1.  With 1 the model is the linear mixed
        model fitted by ML.  :func:`~alsprog.models.select_n_classes` chooses it.
    time : str, default "months"
        The formula's time column (trajectories and forecasts move along it).
    mixture : list of str, optional
        Fixed-effect names (as in ``fe_params_``, e.g. ``["Intercept", "months"]``)
        that differ by class; default all.
    class_formula : str, optional
        Class membership on baseline covariates, lcmm's ``classmb``: the right-hand
        side of a multinomial logit, e.g. ``"~ delta_fs + onset_site"``; its
        columns must not change within a subject.  Subjects missing one are left
        out with a warning.  Default: class probabilities without covariates.
    random_covariance : {"shared", "class"}, default "shared"
        One random-effects covariance for all classes (lcmm's ``hlme`` default) or
        one per class (flexmix's ``FLXMRlmm`` default for the random part): a fast
        class may also vary more between patients.
    link : {"identity", "d50"}, default "identity"
        ``"d50"``: each class follows the D50 sigmoid, the model being linear on
        ``z = log((y - lo + 1/2) / (hi - y + 1/2))`` over the outcome's range
        ``[lo, hi]`` (0-48: with time since onset, ``48 / (1 + exp((t - D50) /
        dx))``; see :mod:`alsprog.models.latent._link`); estimates are on ``z``,
        ``llf_`` on the outcome's scale (Jacobian added), forecasts and
        trajectories back on the outcome's scale.  Needs an outcome the data
        dictionary bounds.
    n_init : int, default 20
        Starts: k-means partitions of the per-subject coefficients and random
        perturbations of the one-class ML fit, alternately.
    seed : int, numpy Generator or None
        Seed of the starts (each start gets its own child seed, so the result does
        not depend on ``n_jobs``).
    n_jobs : int or None, default 1
        joblib workers over starts (-1: all cores).
    max_iter : int, default 500
        L-BFGS iterations per start.
    tol : float, default 1e-8
        L-BFGS tolerance on the gradient of the mean log-likelihood per subject.

    Attributes
    ----------
    fe_params_ : pandas.DataFrame
        Fixed effects, class (1..K) x term; shared terms repeat in every row.
    bse_ : pandas.DataFrame
        Their standard errors from the observed information (finite differences of
        the analytic gradient).
    cov_re_ : pandas.DataFrame
        Random-effects covariance ``G`` (term x term); with
        ``random_covariance="class"``, one per class, rows indexed by (class, term).
    scale_ : float
        Residual variance.
    class_probs_ : pandas.Series
        Class membership probabilities ``pi_k`` (with ``class_formula``, their mean
        over the fitted subjects).
    class_coef_, class_coef_bse_ : pandas.DataFrame
        With ``class_formula``: the membership logit's coefficients (log odds of
        classes 2..K against class 1) and their standard errors.
    llf_ : float
        Maximised marginal log-likelihood.
    n_params_, n_obs_, n_subjects_ : int
    aic, bic, sabic : float
        ``-2 llf + 2 n_params``, ``+ n_params log N``, ``+ n_params log((N + 2)/24)``
        with N subjects (lcmm's convention).
    entropy_ : float
        Relative entropy ``1 - E / (N log K)``, ``E = -sum p log p`` over subjects
        and classes (1 with one class).
    icl_ : float
        ``bic + 2 E``.
    class_sizes_ : pandas.Series
        Subjects per MAP class.
    posterior_ : pandas.DataFrame
        Posterior class probabilities, subject x class.
    classes_ : pandas.Series
        MAP class of each subject.
    start_llf_ : numpy.ndarray
        Log-likelihood reached by each start.
    n_best_starts_ : int
        Starts within ``1e-4`` of the best log-likelihood.
    converged_ : bool
        The gradient of the mean log-likelihood per subject at the optimum is
        below ``1e-4`` in every coordinate.

    Raises
    ------
    ModelSpecificationError
        From :meth:`fit`: bad ``n_classes``, ``mixture`` naming an unknown term,
        fewer than 5 subjects per class or no more subjects than parameters, and
        every formula problem :func:`~alsprog.models._formula.build_mixed_design`
        reports.

    References
    ----------
    Verbeke G, Lesaffre E (1996). A linear mixed-effects model with heterogeneity in
    the random-effects population. JASA 91:217-221.
    Proust-Lima C, Philipps V, Liquet B (2017). Estimation of extended mixed models
    using latent classes and latent processes: the R package lcmm. J Stat Softw 78(2).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> cls = np.repeat([0, 1], 40); slope = np.array([-0.3, -2.0])[cls]
    >>> sid = np.repeat(np.arange(80), 5); t = np.tile(np.arange(5.0) * 3, 80)
    >>> y = 40 + rng.normal(0, 2, 80)[sid] + slope[sid] * t + rng.normal(0, 1, 400)
    >>> frs = np.clip(np.round(y), 0, 48)  # scores are whole
    >>> df = pd.DataFrame({"subject_id": sid, "months": t, "alsfrs_r_total": frs})
    >>> m = LatentClassMixedModel("alsfrs_r_total ~ months + (1 | subject_id)",
    ...                           2, n_init=4, seed=1).fit(df)
    >>> m.fe_params_["months"].round(1).tolist(), m.class_sizes_.tolist()
    ([-0.3, -2.0], [40, 40])
    """

    #: The suffix of the file :meth:`save` writes (a NumPy ``.npz`` archive).
    file_suffix = ".npz"
    param_ranges = {
        "n_classes": "[1, inf]",
        "n_init": "[1, inf]",
        "max_iter": "[1, inf]",
        "tol": "(0, 1]",
    }
    description = "latent-class mixed model ({n_classes} classes)"

    def __init__(
        self,
        formula: str,
        n_classes: int = 2,
        *,
        time: str = "months",
        mixture: list[str] | None = None,
        class_formula: str | None = None,
        random_covariance: Literal["shared", "class"] = "shared",
        link: Literal["identity", "d50"] = "identity",
        n_init: int = 20,
        seed: int | None = None,
        n_jobs: int | None = 1,
        max_iter: int = 500,
        tol: float = 1e-8,
    ) -> None:
        self.formula = formula
        self.n_classes = n_classes
        self.time = time
        self.mixture = mixture
        self.class_formula = class_formula
        self.random_covariance = random_covariance
        self.link = link
        self.n_init = n_init
        self.seed = seed
        self.n_jobs = n_jobs
        self.max_iter = max_iter
        self.tol = tol

    def _check_params(self) -> None:
        err = ModelSpecificationError
        check_int(self.n_classes, "n_classes", low=1, error=err)
        check_int(self.n_init, "n_init", low=1, error=err)
        check_int(self.max_iter, "max_iter", low=1, error=err)
        check_interval(self.tol, "tol", low=0.0, high=1.0, low_closed=False, error=err)
        check_n_jobs(self.n_jobs, error=err)
        if not isinstance(self.formula, str):
            raise err(f"`formula` must be a string; got {self.formula!r}.")
        if not isinstance(self.time, str):
            raise err(f"`time` must be a column name (str); got {self.time!r}.")
        if self.class_formula is not None:
            class_rhs(self.class_formula)
        if self.link not in ("identity", "d50"):
            raise err(
                "`link` must be 'identity' (linear in the outcome) or 'd50' (the D50 "
                f"sigmoid: linear on the outcome's logit); got {self.link!r}."
            )
        if self.random_covariance not in ("shared", "class"):
            raise err(
                "`random_covariance` must be 'shared' (one random-effects covariance "
                "for all classes) or 'class' (one per class); got "
                f"{self.random_covariance!r}."
            )
        if self.mixture is not None and (
            isinstance(self.mixture, str)
            or not all(isinstance(m, str) for m in self.mixture)
        ):
            raise err(
                "`mixture` must be a list of fixed-effect names such as "
                f"['Intercept', 'months']; got {self.mixture!r}."
            )

    # ------------------------------------------------------------------ fit
    def fit(self, df: pd.DataFrame) -> LatentClassMixedModel:
        """Fit the model to a long-format table (one row per visit).

        Parameters
        ----------
        df : pandas.DataFrame
            Not modified.

        Returns
        -------
        LatentClassMixedModel
            ``self``, fitted.

        Raises
        ------
        ModelSpecificationError
            See the class docstring.

        Warns
        -----
        ConvergenceWarning
            When the best start did not converge or the best log-likelihood was
            reached by one start only (with several starts).
        """
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, k)
        self._check_params()
        t0 = _time.perf_counter()
        K = int(self.n_classes)
        rng = as_generator(self.seed)
        if not isinstance(df, pd.DataFrame):
            raise TypeError(
                f"`df` must be a pandas DataFrame; got {type(df).__name__}."
            )
        with single_blas_thread():
            prep = self._prepare(df)
            design, lay, st = prep.design, prep.layout, prep.stats
            N = st.n_subjects
            if N < MIN_SUBJECTS_PER_CLASS * K or N <= lay.n_params:
                raise ModelSpecificationError(
                    f"Too few subjects: {N} for {K} class(es) and {lay.n_params} "
                    f"parameters; a latent-class fit needs at least "
                    f"{MIN_SUBJECTS_PER_CLASS} subjects per class and more subjects "
                    "than parameters."
                )
            x1, lay1 = one_class_start(design, st)
            if K == 1:
                results = [
                    fit_one_start(x1, lay, st, max_iter=self.max_iter, tol=self.tol)
                ]
            else:
                results = run_starts(
                    x1,
                    lay1,
                    lay,
                    st,
                    rng,
                    int(self.n_init),
                    self.n_jobs,
                    max_iter=int(self.max_iter),
                    tol=float(self.tol),
                )
        llfs = np.array([r.llf for r in results])
        best = results[int(np.nanargmax(llfs))]
        with single_blas_thread():
            x, H = newton_polish(relabel(best.x, lay), lay, st)
            self._set_fitted(prep, x, _inverse_information(H), llfs + prep.log_jacobian)
        logger.info(
            "LatentClassMixedModel: K=%d, %d subjects, %d starts (%d at the best), "
            "%.2f s",
            K,
            N,
            len(results),
            self.n_best_starts_,
            _time.perf_counter() - t0,
        )
        if not self.converged_:
            warnings.warn(
                f"Latent-class model with {K} classes: the best start did not "
                f"converge (max |gradient| "
                f"{best.grad_max:.1e} per subject); raise max_iter or rescale time.",
                ConvergenceWarning,
                stacklevel=2,
            )
        elif K > 1 and len(results) > 1 and self.n_best_starts_ == 1:
            warnings.warn(
                f"Latent-class model with {K} classes: only 1 of {len(results)} "
                "starts reached the best log-likelihood "
                f"({self.llf_:.4f}); the optimum may not be global: raise n_init.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _prepare(self, df: pd.DataFrame) -> _Prepared:
        """The design, layout and statistics of a table (the fit's and a saved
        model's rebuild): subjects without membership covariates left out."""
        df, membership, rows = self._membership(df)
        design = build_mixed_design(self.formula, df)
        link = self._link(design)
        if not link.identity:
            design = replace(design, y=link.forward(design.y))
        C = None
        if membership is not None:
            C = membership_rows(membership, rows.reindex(design.group_levels))
        names = design.fe_names
        mix = self._mixture_mask(names)
        N = len(design.group_levels)
        r = 1 if C is None else C.shape[1]
        lay = Layout(
            int(self.n_classes),
            len(names),
            design.Z.shape[1],
            mix,
            r,
            class_cov=self.random_covariance == "class",
        )
        st = build_stats(design.y, design.X, design.Z, design.groups, N, C)
        frame = df.iloc[design.row_positions]
        extra = [] if membership is None else list(membership.variables)
        cols = list(dict.fromkeys([*design.variables, *extra]))
        frame = frame[cols]
        if membership is not None:  # each subject's value on every row it has
            g = frame[design.group]
            frame = frame.assign(**{v: g.map(rows[v]).to_numpy() for v in extra})
        jac = link.log_jacobian(design.y)
        return _Prepared(design, lay, st, membership, frame, df, link, jac)

    def _link(self, design: Any) -> Link:
        """The outcome's link, its range checked against the outcome's values."""
        if self.link == "identity":
            return Link()
        lo, hi = outcome_bounds(design.outcome)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ModelSpecificationError(
                f"link='d50' needs an outcome with a known range; the data "
                f"dictionary gives none for {design.outcome!r} (use alsfrs_r_total, "
                "or link='identity')."
            )
        bad = (design.y < lo) | (design.y > hi)
        if bad.any():
            raise ModelSpecificationError(
                f"link='d50': {design.outcome!r} value {design.y[bad][0]!r} is outside "
                f"its range [{lo:g}, {hi:g}]."
            )
        return Link("d50", lo, hi)

    def _membership(
        self, df: pd.DataFrame
    ) -> tuple[pd.DataFrame, Membership | None, Any]:
        """The table less subjects without membership covariates (warned), the
        membership design and each subject's covariate row (None, None without
        ``class_formula``)."""
        if self.class_formula is None:
            return df, None, None
        group = mixed_required_columns(self.formula, self.time).subject
        if group not in df.columns:
            raise ModelSpecificationError(
                f"Grouping factor {group!r} in {self.formula!r} is not a column of "
                "the data."
            )
        rows, membership = membership_design(self.class_formula, df, group)
        keep = df[group].isin(rows.index).to_numpy() | df[group].isna().to_numpy()
        if not keep.all():
            lost = df.loc[~keep, group].nunique()
            warnings.warn(
                f"Left out {lost} subject(s) ({int((~keep).sum())} rows) with a "
                f"missing class-membership covariate ({', '.join(membership.variables)}).",
                DataWarning,
                stacklevel=3,
            )
            df = df.loc[keep]
        return df, membership, rows

    def _mixture_mask(self, names: list[str]) -> npt.NDArray[np.bool_]:
        if self.mixture is None:
            return np.ones(len(names), dtype=bool)
        unknown = [m for m in self.mixture if m not in names]
        if unknown:
            raise ModelSpecificationError(
                f"`mixture` names {', '.join(map(repr, unknown))}, not fixed effects "
                f"of {self.formula!r}; its fixed effects are "
                f"{', '.join(map(repr, names))}."
            )
        if len(set(self.mixture)) != len(list(self.mixture)):
            raise ModelSpecificationError(
                f"`mixture` repeats a name: {list(self.mixture)!r}."
            )
        return np.isin(np.array(names), np.array(list(self.mixture), dtype=object))

    def _set_fitted(self, prep: _Prepared, x: Array, cov_x: Array, llfs: Array) -> None:
        """Every fitted attribute from the estimates ``x`` (the fit's, a saved
        model's), their covariance and each start's log-likelihood (on the
        outcome's scale)."""
        design, lay, st, membership = (
            prep.design,
            prep.layout,
            prep.stats,
            prep.membership,
        )
        df = prep.table
        K = lay.K
        betas, _, G, s2, gamma = lay.unpack(x)
        ev = evaluate(x, lay, st)
        assert ev.grad is not None
        grad_max = float(np.max(np.abs(ev.grad))) / st.n_subjects
        labels = pd.RangeIndex(1, K + 1, name="class")
        names = design.fe_names
        re = design.re_names
        se_x = np.sqrt(np.where(np.diag(cov_x) > 0, np.diag(cov_x), np.nan))
        self.fe_params_ = pd.DataFrame(betas, index=labels, columns=names)
        self.bse_ = pd.DataFrame(lay.betas_of(se_x), index=labels, columns=names)
        if lay.class_cov:
            rows = pd.MultiIndex.from_product([labels, re], names=["class", "term"])
            self.cov_re_ = pd.DataFrame(G.reshape(-1, len(re)), index=rows, columns=re)
        else:
            self.cov_re_ = pd.DataFrame(G, index=re, columns=re)
        self.scale_ = float(s2)
        prior = np.exp(log_prior(gamma, st))
        self.class_probs_ = pd.Series(prior.mean(axis=0), index=labels, name="pi")
        if membership is not None:
            cls = pd.RangeIndex(2, K + 1, name="class")
            cols = list(membership.names)
            self.class_coef_ = pd.DataFrame(gamma[1:], index=cls, columns=cols)
            self.class_coef_bse_ = pd.DataFrame(
                lay.gamma_of(se_x)[1:], index=cls, columns=cols
            )
        self.llf_ = float(ev.llf) + prep.log_jacobian
        self.n_params_ = int(lay.n_params)
        self.n_obs_ = int(st.n_obs)
        self.n_subjects_ = int(st.n_subjects)
        subj = design.group_levels.copy()
        self.posterior_ = pd.DataFrame(ev.posterior, index=subj, columns=labels)
        self.classes_ = pd.Series(
            np.argmax(ev.posterior, axis=1) + 1, index=subj, name="class"
        )
        self.class_sizes_ = (
            self.classes_.value_counts().reindex(labels, fill_value=0).rename("n")
        )
        P = np.clip(ev.posterior, 1e-300, 1.0)
        E = float(-np.sum(ev.posterior * np.log(P)))
        self.classification_entropy_ = E
        self.entropy_ = 1.0 if K == 1 else 1.0 - E / (st.n_subjects * np.log(K))
        self.icl_ = self.bic + 2.0 * E
        self.start_llf_ = llfs
        self.n_best_starts_ = int(np.sum(llfs >= np.nanmax(llfs) - BEST_TOL))
        self.converged_ = bool(grad_max < 1e-4)
        self._state = FittedState(
            x=x,
            layout=lay,
            cov_x=cov_x,
            fixed_spec=design.fixed_spec,
            random_specs=design.random_specs,
            group=design.group,
            outcome=design.outcome,
            variables=list(design.variables),
            membership=membership,
            subjects=subj,
            stats=st,
            first_rows=_first_rows(design, df),
            link=prep.link,
            time_range=_time_range(design, df, str(self.time)),
        )
        self._frame = prep.frame
        self.outcome_bounds_ = outcome_bounds(design.outcome)

    # ---------------------------------------------------------- criteria
    @property
    def aic(self) -> float:
        """Akaike's criterion ``-2 llf + 2 n_params``."""
        check_is_fitted(self, ["llf_"])
        return -2.0 * self.llf_ + 2.0 * self.n_params_

    @property
    def bic(self) -> float:
        """Schwarz's criterion ``-2 llf + n_params log(n_subjects)``."""
        check_is_fitted(self, ["llf_"])
        return -2.0 * self.llf_ + self.n_params_ * np.log(self.n_subjects_)

    @property
    def sabic(self) -> float:
        """Sample-size adjusted BIC ``-2 llf + n_params log((n_subjects + 2) / 24)``."""
        check_is_fitted(self, ["llf_"])
        return -2.0 * self.llf_ + self.n_params_ * np.log((self.n_subjects_ + 2) / 24)

    # ---------------------------------------------------------- new patients
    def predict_class(self, history: pd.DataFrame) -> pd.DataFrame:
        """Posterior class probabilities of patients given their visits.

        Parameters
        ----------
        history : pandas.DataFrame
            Visits (outcome, grouping column and the formula's covariates) of new or
            known patients; rows with a missing value are left out.

        Returns
        -------
        pandas.DataFrame
            Subject x class probabilities (rows sum to 1).

        Raises
        ------
        NotFittedError
            If the model is not fitted.
        ModelSpecificationError
            A missing column, a category not seen in the fit, or no usable visit.
        """
        from alsprog.models.latent._predict import predict_class_table

        check_is_fitted(self, ["llf_"])
        return predict_class_table(self, history)

    # ------------------------------------------------------------ contract
    def required_columns(self) -> ModelColumns:
        """The outcome, subject and time columns (and the membership covariates)
        the model will read, from its parameters alone.

        Examples
        --------
        >>> c = LatentClassMixedModel("frs ~ t + (t | patient)", 2, time="t",
        ...                           class_formula="~ delta_fs").required_columns()
        >>> c.outcome, c.subject, c.time, c.covariates
        ('frs', 'patient', 't', ('t', 'delta_fs'))
        """
        from alsprog.data._history import ModelColumns

        base = mixed_required_columns(self.formula, str(self.time))
        if self.class_formula is None:
            return base
        _, extra = class_rhs(self.class_formula)
        return ModelColumns.of(
            base.outcome, base.subject, base.time, [*base.covariates, *extra]
        )

    @property
    def columns_(self) -> ModelColumns:
        """The columns the fitted model reads (outcome, subject, time, covariates
        of the trajectory and of class membership)."""
        from alsprog.data._history import ModelColumns

        check_is_fitted(self, ["llf_"])
        st: FittedState = self._state
        extra = [] if st.membership is None else list(st.membership.variables)
        covs = [v for v in st.variables if v not in (st.outcome, st.group)]
        return ModelColumns.of(
            st.outcome, st.group, str(self.time), list(dict.fromkeys(covs + extra))
        )

    def check_forecast_time(self, time: str) -> None:
        """Refuse to forecast when the formula does not use the model's ``time``."""
        from types import SimpleNamespace

        from alsprog.models.lmm._forecast import check_time_in_formula

        check_is_fitted(self, ["llf_"])
        design = SimpleNamespace(_design_info=self._state.info())
        check_time_in_formula(self, design, str(self.time))

    def forecast_rows(
        self,
        history: Prepared,
        *,
        level: float,
        n_samples: int | None = None,
        rng: np.random.Generator,
        given_alive: bool = True,
    ) -> ForecastRows:
        """New patients' forecasts: the mixture over classes, weighted by each
        patient's class posterior given the visits so far (and the membership
        covariates), of each class's conditional normal forecast, censored at
        :attr:`outcome_bounds_`.  ``stats`` also holds ``class_1_probability``;
        ``given_alive`` is ignored.  :func:`alsprog.forecast.forecast` is the
        public entry point."""
        from alsprog.models.latent._predict import latent_forecast_rows

        check_is_fitted(self, ["llf_"])
        return latent_forecast_rows(
            self, history, level=level, n_samples=n_samples, rng=rng
        )

    def predict(self, df: pd.DataFrame) -> pd.Series:
        """Point predictions: for subjects seen in the fit, the posterior-weighted
        mean of their class curves (random effects included); for others, the
        prior-weighted mean of the class means.

        Returns
        -------
        pandas.Series
            Named ``predicted``, indexed like ``df``; NaN where a covariate is
            missing.
        """
        from alsprog.models.latent._predict import latent_predict

        check_is_fitted(self, ["llf_"])
        if not isinstance(df, pd.DataFrame):
            raise TypeError(
                f"`df` must be a pandas DataFrame; got {type(df).__name__}."
            )
        return latent_predict(self, df)

    def subject_trajectories(
        self,
        times: Any = None,
        *,
        subjects: Any = None,
        level: float = DEFAULT_TRAJECTORY_LEVEL,
        interval: Literal["confidence", "prediction"] = DEFAULT_INTERVAL,
    ) -> pd.DataFrame:
        """Fitted subjects' trajectories at ``times``: the mixture over classes
        (weights: the subject's posterior) of the class-conditional curve given the
        subject's visits; pointwise ``level`` bands of that mixture (a new visit's
        with ``interval="prediction"``).

        Returns
        -------
        pandas.DataFrame
            The grouping column, the time column, ``mean``, ``lower``, ``upper``.
        """
        from alsprog.models.latent._predict import latent_subject_trajectories

        check_is_fitted(self, ["llf_"])
        return latent_subject_trajectories(self, times, subjects, level, interval)

    def class_trajectories(
        self, times: Any = None, *, level: float = DEFAULT_LEVEL
    ) -> pd.DataFrame:
        """Each class's mean curve at ``times`` (the time column's values; 25 over
        the fitted range by default), averaged over the fitted subjects'
        covariates, with a Wald ``level`` band.

        Returns
        -------
        pandas.DataFrame
            ``class``, the time column, ``mean``, ``se``, ``lower``, ``upper``.
        """
        from alsprog.models.latent._predict import class_curves

        check_is_fitted(self, ["llf_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        return class_curves(self, times, level)

    # ---------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to one ``.npz`` file (never a pickle), holding
        the model's columns of the rows used in the fit: share it as you would
        share them.  See :mod:`alsprog.models.latent._io`.

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> sid = np.repeat(np.arange(60), 4); t = np.tile([0.0, 3, 6, 9], 60)
        >>> slope = np.where(np.arange(60) < 30, -0.3, -2.0)[sid]
        >>> y = 40 + rng.normal(0, 2, 60)[sid] + slope * t + rng.normal(0, 1, 240)
        >>> df = pd.DataFrame({"subject_id": sid, "months": t, "frs": np.round(y)})
        >>> m = LatentClassMixedModel("frs ~ months + (1 | subject_id)", 2,
        ...                           n_init=2, seed=0).fit(df)
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "lcmm.npz"
        >>> m.save(path)
        >>> LatentClassMixedModel.load(path).posterior_.equals(m.posterior_)
        True
        """
        from alsprog.models.latent._io import save_model

        check_is_fitted(self, ["llf_"])
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LatentClassMixedModel:
        """Rebuild a model written by :meth:`save` without refitting; the whole
        file is checked first (:class:`~alsprog.errors.SavedModelError` naming the
        field)."""
        from alsprog.models.latent._io import load_model

        return load_model(cls, path)  # type: ignore[no-any-return]

    # -------------------------------------------------------------- summary
    def summary(self, level: float = DEFAULT_LEVEL) -> Summary:
        """Estimates, class sizes and lcmm's posterior classification table.

        Parameters
        ----------
        level : float, default 0.95
            Coverage of the Wald intervals of the estimates.

        Returns
        -------
        Summary
            Tables ``fixed`` (class x term: estimate, standard error, interval),
            ``membership`` (with ``class_formula``: the multinomial logit's
            coefficients against class 1), ``random``, ``classes`` (``pi``, MAP
            count and share) and ``postprob`` (for the subjects assigned to each
            class, the mean posterior probability of each class, as lcmm's
            ``postprob``).
        """
        from alsprog.models.latent._summary import latent_summary

        check_is_fitted(self, ["llf_"])
        level = check_interval(
            level, "level", low=0, high=1, low_closed=False, high_closed=False
        )
        return latent_summary(self, level)


@dataclass(frozen=True)
class _Prepared:
    """A table made ready for the likelihood: its design, layout, statistics,
    membership design, the model's columns of the rows used and the table."""

    design: Any
    layout: Layout
    stats: SubjectStats
    membership: Membership | None
    frame: pd.DataFrame
    table: pd.DataFrame
    link: Link
    log_jacobian: float


def _first_rows(design: Any, df: pd.DataFrame) -> pd.DataFrame:
    """Each fitted subject's first row of the model's columns, in level order."""
    G = len(design.group_levels)
    first = np.full(G, -1, dtype=np.intp)
    first[design.groups[::-1]] = np.arange(len(design.groups))[::-1]
    frame = design.frame if design.frame is not None else df.iloc[[]]
    return frame.iloc[first][design.variables].reset_index(drop=True)


def _time_range(design: Any, df: pd.DataFrame, time: str) -> tuple[float, float]:
    if time not in design.variables:
        return (np.nan, np.nan)
    tv = pd.to_numeric(df[time].iloc[design.row_positions], errors="coerce")
    return (float(tv.min()), float(tv.max()))


def _inverse_information(H: Array) -> Array:
    """The covariance of the estimates: the inverse of the observed information
    ``-H`` (NaN where it is singular)."""
    try:
        C = np.asarray(np.linalg.inv(-H), dtype=float)
        return (C + C.T) / 2  # symmetric to the last bit (a saved model checks it)
    except np.linalg.LinAlgError:
        return np.full(H.shape, np.nan)
