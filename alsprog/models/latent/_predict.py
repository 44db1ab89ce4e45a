"""Predictions of a fitted latent-class mixed model: mixtures over the classes.

Owns: the fitted state the predictions read (:class:`FittedState`), the designs of
new rows under it, class posteriors of patients given their visits and baseline
covariates (:func:`class_posterior`), each class's conditional normal given a
history and the mixture over classes of them (:func:`mixture_band`: the mean,
median and central interval of the mixture censored at the outcome's bounds, by
bisection on its distribution function), and the four uses of them: forecasts of
new patients (:func:`latent_forecast_rows`), fitted subjects' trajectories
(:func:`latent_subject_trajectories`), point predictions (:func:`latent_predict`)
and each class's population curve (:func:`class_curves`).
Leaves: the likelihood and posteriors to :mod:`alsprog.models.latent._numerics`;
the conditional normal of one class to :mod:`alsprog.models._gaussian`; the fit to
:mod:`alsprog.models.latent._model`.

A patient's predictive distribution at a future time is
``sum_k w_k N(x' beta_k + z' b_k, v_k)`` where ``w_k`` is the class posterior given
the visits so far (the prior ``pi_k(covariates)`` for a patient without visits),
``b_k`` the class-``k`` BLUP given the visits and ``v_k`` its prediction variance
(random effects, class-``k`` fixed-effect uncertainty from the observed information
and the residual variance), as lcmm's ``predictY`` conditional on the visits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import ndtr

from alsprog.data._history import Prepared
from alsprog.errors import ModelSpecificationError
from alsprog.models._contract import ForecastRows
from alsprog.models._gaussian import (
    SubjectSums,
    censored_normal_mean,
    conditional_effects,
    fixed_effect_variance,
    subject_sums,
)
from alsprog.models.latent._link import Link, link_band
from alsprog.models.latent._membership import Membership, membership_rows
from alsprog.models.latent._numerics import (
    Layout,
    SubjectStats,
    build_stats,
    evaluate,
    membership_log_probs,
)
from alsprog.models.lmm._forecast import trajectory_rows

__all__ = [
    "FittedState",
    "class_curves",
    "class_posterior",
    "latent_forecast_rows",
    "latent_predict",
    "latent_subject_trajectories",
    "mixture_band",
    "predict_class_table",
]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FittedState:
    """What predictions need from a fit: the estimates as the optimiser's vector
    and its layout, their covariance, the formula's specs and columns, the
    membership design, the fitted subjects, their statistics and first rows."""

    x: Array
    layout: Layout
    cov_x: Array
    fixed_spec: Any
    random_specs: Any
    group: str
    outcome: str
    variables: list[str]
    membership: Membership | None
    subjects: pd.Index
    stats: SubjectStats
    first_rows: pd.DataFrame
    time_range: tuple[float, float]
    link: Link = Link()

    def info(self) -> dict[str, Any]:
        """The dict :func:`~alsprog.models.lmm._forecast.prediction_design` reads."""
        return {
            "fixed_spec": self.fixed_spec,
            "random_specs": self.random_specs,
            "group": self.group,
            "outcome": self.outcome,
            "variables": self.variables,
        }

    def params(self) -> tuple[Array, Array, float, Array]:
        """``betas (K, p)``, ``G``, ``s2``, ``gamma (K, r)``."""
        betas, _, G, s2, gamma = self.layout.unpack(self.x)
        return betas, G, s2, gamma

    def cov_betas(self) -> Array:
        """(K, p, p): each class's fixed-effect covariance."""
        idx = self.layout.beta_indices()
        return self.cov_x[idx[:, :, None], idx[:, None, :]]


def design_of(state: FittedState, formula: str, rows: pd.DataFrame) -> Any:
    """``X``, ``Z`` and the complete-row mask of ``rows`` under the fit's design."""
    from alsprog.models.lmm._forecast import prediction_design

    return prediction_design(state.info(), formula, rows)


def membership_of(state: FittedState, first: pd.DataFrame) -> Array | None:
    """The membership design of subjects' first rows (None without covariates)."""
    if state.membership is None:
        return None
    return membership_rows(state.membership, first)


def class_posterior(
    state: FittedState,
    sums_stats: SubjectStats | None,
    has_visits: npt.NDArray[np.bool_],
    C: Array | None,
) -> Array:
    """Class posteriors (N, K): Bayes' rule given the visits for subjects with
    any (``sums_stats`` holds theirs, in order), the prior otherwise."""
    _, _, _, gamma = state.params()
    W = np.exp(membership_log_probs(gamma, C, len(has_visits)))
    if sums_stats is not None and has_visits.any():
        W[has_visits] = evaluate(
            state.x, state.layout, sums_stats, grad=False
        ).posterior
    return W


def mixture_band(
    w: Array, loc: Array, scale: Array, level: float, bounds: tuple[float, float]
) -> dict[str, Array]:
    """Mean, median and central ``level`` interval of ``sum_k w_k N(loc_k, scale_k)``
    censored at ``bounds``; arrays (n, K) -> (n,).

    Quantiles of the censored mixture are the mixture's quantiles clipped to the
    bounds; the mixture's are found by bisection on its distribution function.

    Examples
    --------
    >>> w = np.array([[0.5, 0.5]]); loc = np.array([[-1.0, 1.0]])
    >>> b = mixture_band(w, loc, np.ones((1, 2)), 0.9, (-np.inf, np.inf))
    >>> abs(float(b["median"][0])) < 1e-12, round(float(b["mean"][0]), 12)
    (True, 0.0)
    """
    low, high = bounds
    mean = np.sum(w * censored_normal_mean(loc, scale, bounds=bounds), axis=1)
    alpha = (1.0 - level) / 2.0
    out = {"mean": mean}
    for name, p in (("median", 0.5), ("lower", alpha), ("upper", 1.0 - alpha)):
        out[name] = np.clip(mixture_quantile(w, loc, scale, p), low, high)
    return out


def mixture_quantile(w: Array, loc: Array, scale: Array, p: float) -> Array:
    """The ``p`` quantile of each row's normal mixture (bisection, 80 halvings)."""
    s = np.maximum(scale, 1e-300)
    lo = np.min(loc - 40.0 * s, axis=1)
    hi = np.max(loc + 40.0 * s, axis=1)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        F = np.sum(w * ndtr((mid[:, None] - loc) / s), axis=1)
        below = F < p
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _history(
    state: FittedState, formula: str, observed: pd.DataFrame, subjects: pd.Index
) -> tuple[SubjectSums, SubjectStats | None, npt.NDArray[np.bool_]]:
    """Each subject's cross-products (zeros without visits), the likelihood's
    statistics of those with visits, and which have them."""
    lay = state.layout
    n = len(subjects)
    if len(observed):
        X, Z, ok = design_of(state, formula, observed)
        y = observed.loc[ok, state.outcome].to_numpy(dtype=float)
        y = state.link.forward(y)
        g = np.asarray(subjects.get_indexer(observed.loc[ok, state.group]))
        keep = np.isfinite(y) & (g >= 0)
        X, Z, y, g = X[keep], Z[keep], y[keep], g[keep]
    else:
        X, Z = np.zeros((0, lay.p)), np.zeros((0, lay.q))
        y, g = np.zeros(0), np.zeros(0, dtype=np.intp)
    sums = subject_sums(X, Z, y, g, n)
    has = np.bincount(g, minlength=n) > 0
    if not has.any():
        return sums, None, has
    codes = np.cumsum(has) - 1
    st = build_stats(y, X, Z, codes[g].astype(np.intp), int(has.sum()))
    return sums, st, has


def _class_normals(
    state: FittedState, sums: SubjectSums, Xf: Array, Zf: Array, gf: Array
) -> tuple[Array, Array]:
    """Each future row's class-conditional normal: loc and variance (n, K), the
    residual variance not yet added."""
    betas, G, s2, _ = state.params()
    K, q = betas.shape[0], G.shape[-1]
    # one covariance per class (shared ones repeated): b (K, N, q), cov_b
    # (K, N, q, q) and KX (K, N, q, p)
    Gk = np.broadcast_to(G, (K, q, q))
    b, cov_b, KX = conditional_effects(sums, betas, Gk, np.full(K, s2))
    cov_beta = state.cov_betas()
    loc = np.empty((len(gf), K))
    var = np.empty((len(gf), K))
    for k in range(K):
        loc[:, k] = Xf @ betas[k] + np.einsum("nq,nq->n", Zf, b[k][gf])
        cb = np.nan_to_num(cov_beta[k])
        var[:, k] = fixed_effect_variance(Xf, Zf, KX[k][gf], cb)
        var[:, k] += np.einsum("nq,nqr,nr->n", Zf, cov_b[k][gf], Zf)
    return loc, var


def latent_forecast_rows(
    model: Any,
    prep: Prepared,
    *,
    level: float,
    n_samples: int | None,
    rng: np.random.Generator,
) -> ForecastRows:
    """The mixture forecast of new patients' future rows (see the module)."""
    state: FittedState = model._state
    bounds = model.outcome_bounds_
    sums, st, has = _history(state, model.formula, prep.observed, prep.subjects)
    first = prep.first.set_index(state.group, drop=False)
    C = membership_of(state, first)
    if st is not None and C is not None:
        st = _with_membership(st, C[has])
    W = class_posterior(state, st, has, C)
    Xf, Zf, ok = design_of(state, model.formula, prep.future)
    if not ok.all():
        raise ModelSpecificationError(
            "A row to forecast lacks a covariate of the model's formula."
        )
    gf = prep.future["_subject_index"].to_numpy()
    loc, var = _class_normals(state, sums, Xf, Zf, gf)
    scale = np.sqrt(np.maximum(var + model.scale_, 0.0))
    w = W[gf]
    stats = link_band(state.link, w, loc, scale, level, bounds)
    stats["class_1_probability"] = w[:, 0]
    draws = None
    if n_samples is not None:
        draws = _mixture_draws(W, gf, loc, scale, n_samples, rng, bounds, state.link)
    return ForecastRows(stats, draws)


def _with_membership(st: SubjectStats, C: Array) -> SubjectStats:
    from dataclasses import replace

    return replace(st, C=C)


def _mixture_draws(
    W: Array,
    gf: Array,
    loc: Array,
    scale: Array,
    n: int,
    rng: np.random.Generator,
    bounds: tuple[float, float],
    link: Link,
) -> Array:
    """Draws (n, rows): one class per draw and subject (so a subject's future rows
    share it), then each row's normal in that class (on the link's scale, mapped
    back), clipped to the bounds."""
    cum = np.cumsum(W, axis=1)
    u = rng.random((n, W.shape[0]))
    cls = np.minimum((u[:, :, None] > cum[None]).sum(axis=2), W.shape[1] - 1)
    k = cls[:, gf]  # (n, rows)
    rows = np.arange(len(gf))
    z = rng.standard_normal((n, len(gf)))
    d = link.inverse(loc[rows, k] + scale[rows, k] * z)
    return np.clip(d, *bounds)


def latent_subject_trajectories(
    model: Any, times: Any, subjects: Any, level: float, interval: str
) -> pd.DataFrame:
    """Fitted subjects' curves: the posterior mixture over classes of each class's
    conditional mean curve (``"confidence"``) or of a new visit (``"prediction"``)."""
    from alsprog._validation import check_choice, check_interval

    level = check_interval(
        level, "level", low=0, high=1, low_closed=False, high_closed=False
    )
    check_choice(interval, "interval", ("prediction", "confidence"))
    state: FittedState = model._state
    tcol = str(model.time)
    if tcol not in state.variables:
        raise ModelSpecificationError(
            f"Time column {tcol!r} is not used by {model.formula!r}; set `time` to "
            "the model's time column."
        )
    levels = state.subjects
    rows, t, idx = trajectory_rows(
        state.first_rows,
        levels,
        state.time_range,
        tcol,
        times,
        subjects,
        "predict_class or forecast",
    )
    Xf, Zf, _ = design_of(state, model.formula, rows)
    gi = np.repeat(idx, len(t))
    loc, var = _class_normals(state, state.stats, Xf, Zf, gi)
    if interval == "prediction":
        var = var + model.scale_
    W = model.posterior_.to_numpy()[gi]
    bounds = (-np.inf, np.inf) if state.link.identity else model.outcome_bounds_
    sd = np.sqrt(np.maximum(var, 0.0))
    band = link_band(state.link, W, loc, sd, level, bounds)
    return pd.DataFrame(
        {
            state.group: np.asarray(levels)[gi],
            tcol: rows[tcol].to_numpy(),
            "mean": band["mean"],
            "lower": band["lower"],
            "upper": band["upper"],
        }
    )


def latent_predict(model: Any, df: pd.DataFrame) -> pd.Series:
    """Posterior-weighted mean of the class curves (BLUPs included) for fitted
    subjects; the prior-weighted mean of the class means for others (with the D50
    link: of the subject's curve's mean, and of the class sigmoids)."""
    state: FittedState = model._state
    X, Z, ok = design_of(state, model.formula, df)
    betas, _, _, gamma = state.params()
    out = np.full(len(df), np.nan)
    sub = df.loc[ok]
    if state.group in df.columns:
        idx = state.subjects.get_indexer(sub[state.group])
    else:
        idx = np.full(len(sub), -1)
    seen = idx >= 0
    pred = np.empty(len(sub))
    link = state.link
    if seen.any():
        loc, var = _class_normals(state, state.stats, X[seen], Z[seen], idx[seen])
        if not link.identity:  # the mean of the subject's curve, as trajectories
            loc = link.mean(loc, np.sqrt(np.maximum(var, 0.0)), model.outcome_bounds_)
        pred[seen] = np.sum(model.posterior_.to_numpy()[idx[seen]] * loc, axis=1)
    if (~seen).any():
        means = X[~seen] @ betas.T  # (n, K): the class curves (medians on a link)
        if not link.identity:
            means = np.clip(link.inverse(means), *model.outcome_bounds_)
        C = membership_of(state, sub.loc[~seen])
        prior = np.exp(membership_log_probs(gamma, C, len(means)))
        pred[~seen] = np.sum(prior * means, axis=1)
    out[ok] = pred
    return pd.Series(out, index=df.index, name="predicted")


def class_curves(model: Any, times: Any, level: float) -> pd.DataFrame:
    """Each class's population mean curve at ``times``: ``xbar(t)' beta_k`` with
    ``xbar(t)`` the mean over the fitted subjects of their design row at time ``t``
    (their own covariates, so the curve is the class's average over the cohort's
    covariates), with a Wald ``level`` band from the class's fixed-effect
    covariance; with the D50 link, all mapped back to the outcome's scale (the
    class's sigmoid; ``se`` by the delta method)."""
    from scipy.special import ndtri

    state: FittedState = model._state
    tcol = str(model.time)
    n = len(state.subjects)
    rows, t, _ = trajectory_rows(
        state.first_rows, state.subjects, state.time_range, tcol, times, None, ""
    )
    X, _, _ = design_of(state, model.formula, rows)
    # rows are subject-major: average each time over the subjects
    Xt = X.reshape(n, len(t), -1).mean(axis=0)
    betas, _, _, _ = state.params()
    cov = state.cov_betas()
    z = float(ndtri(0.5 + level / 2))
    frames = []
    link = state.link
    for k in range(betas.shape[0]):
        eta = Xt @ betas[k]
        se_eta = np.sqrt(np.maximum(np.einsum("np,pr,nr->n", Xt, cov[k], Xt), 0.0))
        # on a link: the class's curve mapped back, its band's ends mapped back,
        # the standard error by the delta method
        mean = link.inverse(eta)
        se = link.derivative(eta) * se_eta
        frames.append(
            pd.DataFrame(
                {
                    "class": k + 1,
                    tcol: t,
                    "mean": mean,
                    "se": se,
                    "lower": link.inverse(eta - z * se_eta),
                    "upper": link.inverse(eta + z * se_eta),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def predict_class_table(model: Any, history: pd.DataFrame) -> pd.DataFrame:
    """:meth:`~alsprog.models.LatentClassMixedModel.predict_class`: class
    posteriors of the subjects of ``history`` given their visits (and membership
    covariates from their first row)."""
    state: FittedState = model._state
    if not isinstance(history, pd.DataFrame):
        raise TypeError(
            f"`history` must be a pandas DataFrame; got {type(history).__name__}."
        )
    for col in (state.group, state.outcome):
        if col not in history.columns:
            raise ModelSpecificationError(
                f"`history` lacks column {col!r} used by {model.formula!r}."
            )
    yv = pd.to_numeric(history[state.outcome], errors="coerce").to_numpy(float)
    rows = history.loc[np.isfinite(yv) & pd.notna(history[state.group]).to_numpy()]
    if rows.empty:
        raise ModelSpecificationError(
            "`history` has no visit with the outcome and every model column."
        )
    subjects = pd.Index(pd.unique(rows[state.group]), name=state.group)
    subjects = subjects.sort_values()
    _, st, has = _history(state, model.formula, rows, subjects)
    if not has.any():
        raise ModelSpecificationError(
            "`history` has no visit with the outcome and every model column."
        )
    first = rows.groupby(state.group, sort=True).first()
    C = membership_of(state, first.reindex(subjects))
    if st is not None and C is not None:
        st = _with_membership(st, C[has])
    W = class_posterior(state, st, has, C)
    labels = pd.RangeIndex(1, state.layout.K + 1, name="class")
    keep = has if C is None else np.ones(len(subjects), bool)
    return pd.DataFrame(W[keep], index=subjects[keep], columns=labels)
