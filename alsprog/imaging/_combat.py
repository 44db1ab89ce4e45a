"""ComBat harmonisation of imaging features across sites (cross-sectional and
longitudinal).

Owns: :class:`ComBat` (fit on one table, apply to new rows), :func:`combat` (fit and
apply in one call) and the array numerics they call (:func:`combat_estimate`,
:func:`random_intercept_reml`).
Leaves: extracting the features to :mod:`alsprog.imaging._extract`; classifiers that
fit ComBat inside cross-validation to :mod:`alsprog.models`.

Model [Johnson 2007; Fortin 2017, 2018], for feature ``v`` of row ``j`` at site ``i``::

    y_ijv = alpha_v + X_ij beta_v + gamma_iv + delta_iv * eps_ijv

Location ``gamma`` and scale ``delta`` per site are shrunk by empirical Bayes across
features, then removed: ``(s - gamma*) / sqrt(delta*) * sigma + alpha + X beta`` with
``s = (y - alpha - X beta) / sigma``.  The numerics follow neuroCombat 0.2.12
(pooled variance divided by n, EB iterated to a relative change below 1e-4, the
reference-batch option).  The longitudinal variant [Beer 2020] fits the mean by a
linear mixed model with a random intercept per subject (REML) and keeps each
subject's predicted intercept out of the site adjustment, so within-subject change is
only rescaled by the site's scale factor.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from alsprog._validation import check_is_fitted
from alsprog.errors import DataValidationError, ModelSpecificationError, Problem

__all__ = ["ComBat", "combat", "combat_estimate", "random_intercept_reml"]

logger = logging.getLogger(__name__)

#: Feature columns picked by default: the data dictionary's imaging patterns, without
#: the ROI-size statistics (``_count``, ``_volume`` suffixes of another metric).
_FEATURE = re.compile(r"^(fa|md|rd|ad|thickness|area|volume|suvr)_[a-z0-9_]+$")
_SIZE_STAT = re.compile(
    r"^(fa|md|rd|ad|thickness|area|suvr)_[a-z0-9_]+_(count|volume)$"
)

Array = npt.NDArray[np.float64]


# --------------------------------------------------------------------- numerics


def random_intercept_reml(
    y: Array, X: Array, groups: npt.NDArray[np.intp]
) -> tuple[Array, float, float, Array]:
    """REML fit of ``y = X beta + u_group + e``, ``u ~ N(0, lam * s2)``, ``e ~ N(0, s2)``.

    Parameters
    ----------
    y : ndarray, shape (n,)
    X : ndarray, shape (n, q)
        Full-rank fixed-effects design.
    groups : ndarray of intp, shape (n,)
        Group code 0..m-1 of each row.

    Returns
    -------
    (beta, s2, lam, blup)
        Fixed effects, residual variance, variance ratio ``var(u) / s2`` (0 at the
        boundary) and the predicted random intercept of each group.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(30), 4)
    >>> y = 1.0 + rng.normal(0, 2, 30)[g] + rng.normal(0, 1, 120)
    >>> beta, s2, lam, _ = random_intercept_reml(y, np.ones((120, 1)), g)
    >>> bool(0.5 < s2 < 2 and lam > 1)
    True
    """
    from scipy.optimize import minimize_scalar

    n, q = X.shape
    m = int(groups.max()) + 1
    sizes = np.bincount(groups, minlength=m).astype(np.float64)
    Sx = np.zeros((m, q))
    np.add.at(Sx, groups, X)
    sy = np.bincount(groups, weights=y, minlength=m)
    XtX, Xty, yty = X.T @ X, X.T @ y, float(y @ y)

    def solve(lam: float) -> tuple[Array, float, float, Array]:
        c = lam / (1.0 + sizes * lam)
        A = XtX - Sx.T @ (c[:, None] * Sx)
        b = Xty - Sx.T @ (c * sy)
        beta = np.linalg.solve(A, b)
        rwr = yty - float(c @ (sy * sy)) - float(beta @ b)
        s2 = max(rwr, 1e-300) / (n - q)
        return np.asarray(beta, np.float64), s2, float(np.linalg.slogdet(A)[1]), c

    def objective(t: float) -> float:
        lam = float(np.exp(t))
        _, s2, logdet, _ = solve(lam)
        return (n - q) * np.log(s2) + float(np.log1p(sizes * lam).sum()) + logdet

    res = minimize_scalar(objective, bounds=(-25.0, 12.0), method="bounded",
                          options={"xatol": 1e-10})  # fmt: skip
    lam = float(np.exp(res.x))
    if objective(-25.0) <= res.fun:
        lam = 0.0
    beta, s2, _, c = solve(lam)
    resid_sum = sy - Sx @ beta
    blup = c * resid_sum  # = lam n_i / (1 + lam n_i) * mean residual of group i
    return beta, s2, lam, blup


def _it_sol(
    sdat: Array, g_hat: Array, d_hat: Array, g_bar: float, t2: float, a: float, b: float,
    conv: float = 1e-4,
) -> tuple[Array, Array]:  # fmt: skip
    """Parametric EB for one batch (features × rows), as sva/neuroCombat."""
    n = np.isfinite(sdat).sum(axis=1)
    g_old, d_old = g_hat.copy(), d_hat.copy()
    change = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        while change > conv:
            g_new = (t2 * n * g_hat + d_old * g_bar) / (t2 * n + d_old)
            sum2 = ((sdat - g_new[:, None]) ** 2).sum(axis=1)
            d_new = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
            # neuroCombat's stopping rule, NaN included (a NaN ratio stops it)
            change = max(
                (np.abs(g_new - g_old) / g_old).max(),
                (np.abs(d_new - d_old) / d_old).max(),
            )
            g_old, d_old = g_new, d_new
    return g_new, d_new


def _int_eprior(sdat: Array, g_hat: Array, d_hat: Array) -> tuple[Array, Array]:
    """Non-parametric EB for one batch: leave-one-feature-out likelihood weights
    (computed in log space, so it does not underflow where neuroCombat would)."""
    p, n = sdat.shape
    sx, sxx = sdat.sum(axis=1), (sdat**2).sum(axis=1)
    # sum2[i, j] = sum_k (x_ik - g_j)^2
    sum2 = sxx[:, None] - 2.0 * sx[:, None] * g_hat[None, :] + n * g_hat[None, :] ** 2
    loglh = -0.5 * n * np.log(2 * np.pi * d_hat)[None, :] - sum2 / (
        2.0 * d_hat[None, :]
    )
    np.fill_diagonal(loglh, -np.inf)
    loglh -= loglh.max(axis=1, keepdims=True)
    w = np.exp(loglh)
    w /= w.sum(axis=1, keepdims=True)
    return w @ g_hat, w @ d_hat


def combat_estimate(
    s: Array,
    batch: npt.NDArray[np.intp],
    n_batch: int,
    *,
    eb: bool = True,
    parametric: bool = True,
    mean_only: bool = False,
    ref: int | None = None,
) -> dict[str, Array]:
    """Site location/scale estimates from standardised data ``s`` (rows × features).

    Returns ``gamma_hat``, ``delta_hat``, ``gamma_star``, ``delta_star`` (batches ×
    features), and the priors ``gamma_bar``, ``t2``, ``a_prior``, ``b_prior``
    (per batch).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> s = rng.normal(0, 1, (40, 5)) + np.repeat([[-0.5], [0.5]], 20, axis=0)
    >>> est = combat_estimate(s, np.repeat([0, 1], 20), 2)
    >>> np.round(est["gamma_star"][:, 0], 1).tolist()
    [-0.5, 0.4]
    """
    p = s.shape[1]
    rows = [np.flatnonzero(batch == k) for k in range(n_batch)]
    gamma_hat = np.stack([s[r].mean(axis=0) for r in rows])
    if mean_only:
        delta_hat = np.ones((n_batch, p))
    else:
        delta_hat = np.stack([s[r].var(axis=0, ddof=1) for r in rows])
        delta_hat[delta_hat == 0] = 1.0
    gamma_bar = gamma_hat.mean(axis=1)
    t2 = gamma_hat.var(axis=1, ddof=1) if p > 1 else np.ones(n_batch)
    m = delta_hat.mean(axis=1)
    v = delta_hat.var(axis=1, ddof=1) if p > 1 else np.full(n_batch, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_prior = (2 * v + m**2) / v
        b_prior = (m * v + m**3) / v
    if not eb:
        gamma_star, delta_star = gamma_hat.copy(), delta_hat.copy()
    elif parametric and mean_only:
        gamma_star = (t2[:, None] * gamma_hat + gamma_bar[:, None]) / (
            t2[:, None] + 1.0
        )
        delta_star = np.ones((n_batch, p))
    elif parametric:
        gamma_star, delta_star = np.empty((n_batch, p)), np.empty((n_batch, p))
        for k, r in enumerate(rows):
            gamma_star[k], delta_star[k] = _it_sol(
                s[r].T, gamma_hat[k], delta_hat[k], gamma_bar[k], t2[k],
                a_prior[k], b_prior[k],
            )  # fmt: skip
    else:
        gamma_star, delta_star = np.empty((n_batch, p)), np.empty((n_batch, p))
        for k, r in enumerate(rows):
            gamma_star[k], delta_star[k] = _int_eprior(
                s[r].T, gamma_hat[k], delta_hat[k]
            )
    if ref is not None:
        gamma_star[ref], delta_star[ref] = 0.0, 1.0
    return {
        "gamma_hat": gamma_hat,
        "delta_hat": delta_hat,
        "gamma_star": gamma_star,
        "delta_star": delta_star,
        "gamma_bar": gamma_bar,
        "t2": t2,
        "a_prior": a_prior,
        "b_prior": b_prior,
    }


# --------------------------------------------------------------------- estimator


class ComBat(TransformerMixin, BaseEstimator):
    """ComBat harmonisation of imaging features across sites (fit, then apply).

    Parameters
    ----------
    batch : str, default "site"
        Column naming the site/scanner of each row.
    covariates : sequence of str, default ()
        Columns whose effects are kept (e.g. ``["group", "age_at_baseline",
        "sex"]``).  Numeric columns enter linearly; text, categorical and boolean
        columns as indicators (first level dropped).  Include the diagnosis when it
        is unbalanced across sites, or its effect is partly removed.
    features : sequence of str, optional
        Columns to harmonise.  Default: every numeric column named like an imaging
        feature of the data dictionary (``fa_...``, ``md_...``, ``thickness_...``,
        ...), except the ROI-size statistics (``..._count``, ``..._volume``).
    subject : str, optional
        Longitudinal ComBat [Beer 2020]: the column identifying subjects; the mean
        model gets a random intercept per subject (REML) and the subjects' predicted
        intercepts are kept out of the site adjustment.  Rows of a subject need not
        share a site.  Put time (and diagnosis × time) among ``covariates``, as Beer
        et al. do: otherwise disease progression is treated as residual noise and
        rescaled with it.
    eb : bool, default True
        Empirical Bayes shrinkage of the site parameters across features (False: the
        per-site estimates as they are).
    parametric : bool, default True
        Parametric (normal / inverse-gamma) priors, else non-parametric.
    mean_only : bool, default False
        Adjust only site means, not scales.
    ref_batch : str, optional
        Reference site: its rows stay unchanged and the others are mapped to it.
        Not with ``subject``.

    Attributes
    ----------
    features_ : list of str
    batches_ : list
        Sites seen in ``fit``, sorted.
    n_per_batch_ : pandas.Series
    grand_mean_ : pandas.Series
        Intercept per feature (size-weighted mean of site intercepts, or the
        reference site's).
    beta_ : pandas.DataFrame
        Covariate effects (design column × feature).
    batch_effect_ : pandas.DataFrame
        Site intercepts minus ``grand_mean_`` (site × feature), from the mean model.
    var_pooled_ : pandas.Series
        Residual variance per feature (ML, divided by n; REML residual variance in
        the longitudinal model).
    gamma_hat_, delta_hat_, gamma_star_, delta_star_ : pandas.DataFrame
        Site location and scale (site × feature), before and after EB.
    var_ratio_ : pandas.Series
        Longitudinal model only: random-intercept variance / residual variance.
    design_columns_ : list of str
        Names of the covariate design columns.
    categories_ : dict
        Levels of each categorical covariate seen in ``fit``.
    ref_index_ : int or None
        Position of ``ref_batch`` in ``batches_``.

    See Also
    --------
    combat : Fit and apply in one call.

    References
    ----------
    Johnson WE, Li C, Rabinovic A (2007). Biostatistics 8:118-127.
    Fortin JP et al. (2017). NeuroImage 161:149-170; (2018) NeuroImage 167:104-120.
    Beer JC et al. (2020). NeuroImage 220:117129.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"site": np.repeat(["A", "B"], 30),
    ...                    "age": rng.uniform(50, 70, 60)})
    >>> for k in range(4):
    ...     df[f"fa_r{k}"] = 0.5 + 0.002 * df["age"] + rng.normal(0, 0.02, 60)
    ...     df.loc[df["site"] == "B", f"fa_r{k}"] += 0.05
    >>> cb = ComBat(batch="site", covariates=["age"]).fit(df)
    >>> out = cb.transform(df)
    >>> gap = out.groupby("site")["fa_r0"].mean().diff().iloc[-1]
    >>> bool(abs(gap) < 0.01)
    True
    """

    def __init__(
        self,
        *,
        batch: str = "site",
        covariates: Sequence[str] = (),
        features: Sequence[str] | None = None,
        subject: str | None = None,
        eb: bool = True,
        parametric: bool = True,
        mean_only: bool = False,
        ref_batch: Any = None,
    ) -> None:
        self.batch = batch
        self.covariates = covariates
        self.features = features
        self.subject = subject
        self.eb = eb
        self.parametric = parametric
        self.mean_only = mean_only
        self.ref_batch = ref_batch

    # ------------------------------------------------------------------ helpers

    def _covariate_list(self) -> list[str]:
        cov = self.covariates
        if cov is None:
            return []
        if isinstance(cov, str):
            return [cov]
        return list(cov)

    def _check_columns(self, df: pd.DataFrame, features: list[str]) -> None:
        if not isinstance(df, pd.DataFrame):
            raise TypeError(
                f"ComBat needs a pandas DataFrame; got {type(df).__name__}."
            )
        need = [self.batch, *self._covariate_list(), *features]
        if self.subject is not None:
            need.append(self.subject)
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise ModelSpecificationError(
                f"ComBat: columns {missing} are not in the table; it has "
                f"{list(df.columns)[:20]}{' ...' if df.shape[1] > 20 else ''}"
            )
        problems = []
        for col in [self.batch, *self._covariate_list(), *features]:
            s = df[col]
            if col in features or pd.api.types.is_numeric_dtype(s):
                bad = ~np.isfinite(pd.to_numeric(s, errors="coerce").to_numpy(float))
            else:
                bad = s.isna().to_numpy()
            for row in np.flatnonzero(bad)[:20]:
                value = s.iloc[row]
                value = value.item() if isinstance(value, np.generic) else value
                sid = None
                if "subject_id" in df.columns:
                    sid = str(df["subject_id"].iloc[row])
                problems.append(
                    Problem(
                        f"{value!r} is missing or not a finite number (ComBat "
                        "needs complete rows; drop or impute them first)",
                        rule="missing",
                        line=int(row) + 1,
                        line_kind="row",
                        subject_id=sid,
                        column=col,
                        value=s.iloc[row],
                    )
                )
        if problems:
            raise DataValidationError(problems, source="ComBat input")

    def _design(self, df: pd.DataFrame, *, fit: bool) -> Array:
        blocks, names = [], []
        if fit:
            self.categories_: dict[str, list[Any]] = {}
        for col in self._covariate_list():
            s = df[col]
            if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
                if fit:
                    self.categories_[col] = sorted(pd.unique(s.astype(str)).tolist())
                levels = self.categories_[col]
                values = s.astype(str).to_numpy()
                unseen = sorted(set(values) - set(levels))
                if unseen:
                    raise ModelSpecificationError(
                        f"ComBat: covariate {col!r} has levels {unseen} not seen in fit "
                        f"(seen: {levels})"
                    )
                for lev in levels[1:]:
                    blocks.append((values == lev).astype(np.float64))
                    names.append(f"{col}[T.{lev}]")
            else:
                blocks.append(s.to_numpy(np.float64))
                names.append(col)
        if fit:
            self.design_columns_ = names
        n = len(df)
        return np.column_stack(blocks) if blocks else np.zeros((n, 0))

    def _batch_codes(self, df: pd.DataFrame) -> npt.NDArray[np.intp]:
        values = df[self.batch].to_numpy()
        index = {b: i for i, b in enumerate(self.batches_)}
        unseen = sorted({str(v) for v in values if v not in index})
        if unseen:
            raise ModelSpecificationError(
                f"ComBat: {self.batch} values {unseen} were not seen in fit (seen: "
                f"{[str(b) for b in self.batches_]}); ComBat can only harmonise sites "
                "it was fitted on"
            )
        return np.fromiter((index[v] for v in values), dtype=np.intp, count=len(values))

    def _pick_features(self, df: pd.DataFrame) -> list[str]:
        if self.features is not None:
            feats = (
                [self.features]
                if isinstance(self.features, str)
                else list(self.features)
            )
        else:
            feats = [
                c
                for c in df.columns
                if isinstance(c, str)
                and _FEATURE.match(c)
                and not _SIZE_STAT.match(c)
                and pd.api.types.is_numeric_dtype(df[c])
                and c not in (self.batch, *self._covariate_list())
            ]
        if not feats:
            raise ModelSpecificationError(
                "ComBat: no feature columns (none named like fa_..., md_..., "
                "thickness_...); pass `features`"
            )
        return feats

    # ------------------------------------------------------------------ fit

    def fit(self, df: pd.DataFrame, y: Any = None) -> ComBat:
        """Estimate the mean model and the site parameters from ``df``.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per scan with the batch, covariate, feature (and subject)
            columns; not modified.
        y : ignored
            For scikit-learn pipelines.

        Returns
        -------
        ComBat
            ``self``, fitted.

        Raises
        ------
        ModelSpecificationError
            Missing columns, fewer than 2 sites, a site with fewer than 2 rows, a
            reference site not in the data, a rank-deficient design (a covariate
            confounded with site) or a feature without variance.
        DataValidationError
            Missing or non-finite values in the columns used.
        """
        for name in ("eb", "parametric", "mean_only"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise TypeError(
                    f"`{name}` must be True or False; got {getattr(self, name)!r}."
                )
        features = self._pick_features(df)
        self._check_columns(df, features)
        batches = sorted(pd.unique(df[self.batch]).tolist(), key=str)
        if len(batches) < 2:
            raise ModelSpecificationError(
                f"ComBat: {self.batch} has {len(batches)} level(s); at least 2 sites are "
                "needed"
            )
        self.batches_ = batches
        codes = self._batch_codes(df)
        counts = np.bincount(codes, minlength=len(batches))
        if (counts < 2).any():
            bad = [str(b) for b, c in zip(batches, counts, strict=True) if c < 2]
            raise ModelSpecificationError(
                f"ComBat: sites {bad} have fewer than 2 rows; ComBat needs at least 2 "
                "per site (merge or drop them)"
            )
        ref = None
        if self.ref_batch is not None:
            if self.subject is not None:
                raise ModelSpecificationError(
                    "ComBat: `ref_batch` is not available with `subject` (longitudinal "
                    "ComBat maps every site to the pooled one)"
                )
            if self.ref_batch not in batches:
                raise ModelSpecificationError(
                    f"ComBat: ref_batch {self.ref_batch!r} is not a level of "
                    f"{self.batch} ({[str(b) for b in batches]})"
                )
            ref = batches.index(self.ref_batch)
        Y = df[features].to_numpy(np.float64)
        Xc = self._design(df, fit=True)
        n, nb = len(df), len(batches)
        onehot = np.zeros((n, nb))
        onehot[np.arange(n), codes] = 1.0
        D = np.column_stack([onehot, Xc])
        if np.linalg.matrix_rank(D) < D.shape[1]:
            raise ModelSpecificationError(
                f"ComBat: the design [{self.batch} indicators, "
                f"{', '.join(self.design_columns_) or 'no covariates'}] is rank "
                "deficient: a covariate is constant within sites or confounded with "
                "site; drop it"
            )
        if self.subject is None:
            if ref is not None:
                D[:, ref] = 1.0
            B = np.linalg.solve(D.T @ D, D.T @ Y)
            grand = B[ref] if ref is not None else (counts / n) @ B[:nb]
            rows = codes == ref if ref is not None else np.ones(n, bool)
            resid = Y - D @ B
            var_pooled = (resid[rows] ** 2).mean(axis=0)
            alpha = (
                B[:nb]
                if ref is None
                else B[:nb]
                + np.where(np.arange(nb)[:, None] == ref, 0.0, B[ref][None, :])
            )
            beta = B[nb:]
            offset = np.zeros_like(Y)
            var_ratio = None
        else:
            groups = pd.factorize(df[self.subject])[0].astype(np.intp)
            p = Y.shape[1]
            B = np.empty((D.shape[1], p))
            var_pooled, var_ratio = np.empty(p), np.empty(p)
            offset = np.empty_like(Y)
            for v in range(p):
                B[:, v], var_pooled[v], var_ratio[v], blup = random_intercept_reml(
                    Y[:, v], D, groups
                )
                offset[:, v] = blup[groups]
            alpha, beta = B[:nb], B[nb:]
            grand = (counts / n) @ alpha
        # residual SD below 1e-6 of the feature's root mean square: constant up to
        # rounding (REML's sums of squares lose about 1e-16 of y'y; its floor is
        # 1e-300), and standardising would blow the rounding noise up to unit scale
        flat = var_pooled <= np.maximum(1e-12 * (Y**2).mean(axis=0), 1e-300)
        if np.any(flat):
            bad = [f for f, fl in zip(features, flat, strict=True) if fl]
            raise ModelSpecificationError(
                f"ComBat: features {bad} have no residual variance; drop them"
            )
        sd = np.sqrt(var_pooled)
        mean = grand + Xc @ beta + offset
        s = (Y - mean) / sd
        est = combat_estimate(
            s, codes, nb, eb=self.eb, parametric=self.parametric,
            mean_only=self.mean_only, ref=ref,
        )  # fmt: skip
        self.features_ = features
        self.n_per_batch_ = pd.Series(counts, index=pd.Index(batches, name=self.batch))
        self.grand_mean_ = pd.Series(grand, index=features)
        self.beta_ = pd.DataFrame(beta, index=self.design_columns_, columns=features)
        self.batch_effect_ = pd.DataFrame(
            alpha - grand, index=pd.Index(batches, name=self.batch), columns=features
        )
        self.var_pooled_ = pd.Series(var_pooled, index=features)
        for key in ("gamma_hat", "delta_hat", "gamma_star", "delta_star"):
            setattr(
                self,
                f"{key}_",
                pd.DataFrame(
                    est[key], index=pd.Index(batches, name=self.batch), columns=features
                ),  # fmt: skip
            )
        if var_ratio is not None:
            self.var_ratio_ = pd.Series(var_ratio, index=features)
        self.ref_index_ = ref
        logger.info(
            "ComBat fitted on %d rows, %d sites, %d features%s",
            n, nb, len(features), " (longitudinal)" if self.subject else "",
        )  # fmt: skip
        return self

    # ------------------------------------------------------------------ apply

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        """Harmonise the features of ``df`` (training rows or new ones).

        New rows must come from sites seen in ``fit``; their covariate effects use
        the fitted coefficients.  In the longitudinal model a subject's intercept is
        predicted from its rows in ``df`` with the fitted variance ratio.

        Parameters
        ----------
        df : pandas.DataFrame
            Same columns as in ``fit``; not modified.

        Returns
        -------
        pandas.DataFrame
            A copy of ``df`` with the feature columns harmonised.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ModelSpecificationError
            A site or covariate level not seen in ``fit``, or missing columns.
        DataValidationError
            Missing or non-finite values in the columns used.
        """
        check_is_fitted(self, ["features_"])
        features = self.features_
        self._check_columns(df, features)
        codes = self._batch_codes(df)
        Xc = self._design(df, fit=False)
        Y = df[features].to_numpy(np.float64)
        grand = self.grand_mean_.to_numpy()
        beta = self.beta_.to_numpy()
        mean = grand + Xc @ beta
        if self.subject is not None:
            groups = pd.factorize(df[self.subject])[0].astype(np.intp)
            m = int(groups.max()) + 1 if len(groups) else 0
            sizes = np.bincount(groups, minlength=m).astype(np.float64)
            alpha = self.batch_effect_.to_numpy()[codes] + grand
            resid = Y - alpha - Xc @ beta
            lam = self.var_ratio_.to_numpy()
            shrink = (lam[None, :] * sizes[:, None]) / (
                1.0 + lam[None, :] * sizes[:, None]
            )
            sums = np.zeros((m, len(features)))
            np.add.at(sums, groups, resid)
            blup = shrink * sums / np.maximum(sizes, 1.0)[:, None]
            mean = mean + blup[groups]
        sd = np.sqrt(self.var_pooled_.to_numpy())
        s = (Y - mean) / sd
        g = self.gamma_star_.to_numpy()[codes]
        d = self.delta_star_.to_numpy()[codes]
        adjusted = (s - g) / np.sqrt(d) * sd + mean
        if self.ref_index_ is not None:
            keep = codes == self.ref_index_
            adjusted[keep] = Y[keep]
        out = df.copy()
        out[features] = adjusted
        return out

    def fit_transform(
        self, df: pd.DataFrame, y: Any = None, **fit_params: Any
    ) -> pd.DataFrame:
        """``fit(df).transform(df)``."""
        return self.fit(df).transform(df)


def combat(
    features: pd.DataFrame,
    *,
    batch: str = "site",
    covariates: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    subject: str | None = None,
    eb: bool = True,
    parametric: bool = True,
    mean_only: bool = False,
    ref_batch: Any = None,
) -> pd.DataFrame:
    """Harmonise imaging features across sites with ComBat, in one call.

    ``ComBat(...).fit_transform(features)``; see :class:`ComBat` for the model and
    every parameter (``columns`` is its ``features``).

    Parameters
    ----------
    features : pandas.DataFrame
        One row per scan: the feature columns plus ``batch``, the covariates (and
        ``subject``), e.g. the imaging features joined to the subjects table.
    batch, covariates, columns, subject, eb, parametric, mean_only, ref_batch
        As :class:`ComBat` (``columns`` = ``features``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``features`` with the feature columns harmonised.

    Raises
    ------
    ModelSpecificationError, DataValidationError
        As :meth:`ComBat.fit`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"site": np.repeat(["A", "B", "C"], 20)})
    >>> for k in range(3):
    ...     df[f"md_r{k}"] = rng.normal(0.8, 0.05, 60) + np.repeat([0, 0.1, -0.1], 20)
    >>> out = combat(df, batch="site")
    >>> np.round(out.groupby("site")["md_r0"].mean().std(), 3) < 0.02
    np.True_
    """
    return ComBat(
        batch=batch, covariates=covariates, features=columns, subject=subject, eb=eb,
        parametric=parametric, mean_only=mean_only, ref_batch=ref_batch,
    ).fit_transform(features)  # fmt: skip
