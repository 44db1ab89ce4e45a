"""Conditional multivariate-normal forecasts from a fitted MMRM.

Owns: a subject's covariance over visits (:func:`subject_sigma`), the design of new
rows under a fitted :class:`~alsprog.models.MMRM`
(:func:`row_design`, through the fit's formulaic model spec, as the reference grid
of the LS means is built), the visit levels of new rows (:func:`visit_codes`), one
patient's future visits given their observed ones (:func:`conditional_mvn`: the
GLS mean plus the covariance's regression on the patient's residuals, with the
fixed effects' uncertainty), new patients' forecasts
(:func:`mmrm_forecast_rows`, draws correlated over each patient's future visits)
and fitted subjects' trajectories at visit levels (:func:`mmrm_trajectories`).
Leaves: the fit to :mod:`alsprog.models.mmrm._model`; the censored-normal band and
the matrix square root to :mod:`alsprog.models._gaussian`; splitting a history
from the rows to forecast to :mod:`alsprog.data._history`.

With ``Sigma`` the fitted covariance over visits (the patient's covariance group's,
as ``W^{-1/2} Sigma W^{-1/2}`` with the weights of their rows, weight 1 at visits
without a row: :func:`subject_sigma`), ``o`` a patient's observed
visits and ``f`` the visits to forecast: ``K = S_fo S_oo^-1``, mean
``X_f b + K (y_o - X_o b)``, covariance ``S_ff - K S_of + A C A'`` with
``A = X_f - K X_o`` and ``C = Cov(b)`` (the patient was not in the fit, so ``b``'s
error is independent of theirs; ``Sigma`` is treated as known).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.data._history import Prepared
from alsprog.errors import ModelSpecificationError
from alsprog.models._contract import ForecastRows
from alsprog.models._gaussian import normal_band, psd_sqrt

__all__ = [
    "subject_sigma",
    "conditional_mvn",
    "mmrm_forecast_rows",
    "mmrm_trajectories",
    "row_design",
    "visit_codes",
]

Array = npt.NDArray[np.float64]


def visit_codes(model: Any, values: Any, what: str) -> npt.NDArray[np.intp]:
    """Index in ``model.visits_`` of each value of ``values`` (visit levels).

    Raises
    ------
    ModelSpecificationError
        Naming the first value that is not a fitted visit, and the fitted visits.
    """
    vals = pd.Index(np.asarray(values, dtype=object).ravel(), dtype=object)
    if all(isinstance(v, int | float | np.number) for v in model.visits_):
        # a numeric visit read as text ("3.0") is that visit
        vals = pd.Index([_as_number(v) for v in vals], dtype=object)
    codes = np.asarray(pd.Index(model.visits_, dtype=object).get_indexer(vals))
    if np.any(codes < 0):
        bad = vals[int(np.flatnonzero(codes < 0)[0])]
        raise ModelSpecificationError(
            f"{what} {_plain(bad)!r} is not a visit of the fitted MMRM (its "
            f"{model.visit!r} levels: {', '.join(repr(_plain(v)) for v in model.visits_)}"
            "); an MMRM forecasts at its scheduled visits only."
        )
    return codes.astype(np.intp)


def _as_number(v: object) -> object:
    """``"3.0"`` -> 3.0; anything else as given."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _plain(v: object) -> object:
    item = getattr(v, "item", None)
    return item() if callable(item) else v


def subject_sigma(
    model: Any, rows: pd.DataFrame | None, visits: npt.NDArray[np.intp]
) -> Array:
    """One subject's covariance over all visits: their group's ``Sigma`` with the
    weights ``w`` of ``rows`` (at visit indices ``visits``) as ``W^{-1/2} Sigma
    W^{-1/2}`` (weight 1 at visits without a row).

    Raises
    ------
    ModelSpecificationError
        A group or weights column absent from ``rows``, a group level not in the
        fit, or a weight that is not positive.
    """
    g = 0
    if model.group is not None:
        if rows is None or model.group not in rows.columns or not len(rows):
            raise ModelSpecificationError(
                f"Rows of a subject lack the covariance group column {model.group!r}."
            )
        level = rows[model.group].iloc[0]
        hit = [i for i, lv in enumerate(model.groups_) if lv == level]
        if not hit:
            raise ModelSpecificationError(
                f"Group {_plain(level)!r} ({model.group!r}) was not in the fit (its "
                f"groups: {', '.join(repr(_plain(a)) for a in model.groups_)})."
            )
        g = hit[0]
    sigma = model._sigmas[g]
    if model.weights is None or rows is None or not len(rows):
        return sigma
    if model.weights not in rows.columns:
        raise ModelSpecificationError(
            f"Rows of a subject lack the weights column {model.weights!r}."
        )
    w = pd.to_numeric(rows[model.weights], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(w) & (w > 0)):
        raise ModelSpecificationError(
            f"The weights column {model.weights!r} must be finite and positive; got "
            f"{w.tolist()!r}."
        )
    s = np.ones(sigma.shape[0])
    s[visits] = np.sqrt(w)
    return sigma / np.outer(s, s)


def row_design(model: Any, rows: pd.DataFrame, visits: npt.NDArray[np.intp]) -> Array:
    """Fixed-effects design of ``rows`` at visit indices ``visits``, through the
    fit's model spec (category levels and transforms' state as in the fit).

    Raises
    ------
    ModelSpecificationError
        If a column is absent, an arm or category was not seen in the fit.
    """
    from formulaic.errors import DataMismatchWarning

    from alsprog._formula_text import check_formula, formula_context

    rhs = model.formula.split("~", 1)[1]
    needed = list(check_formula(rhs, kind="rhs").variables)
    missing = [v for v in needed if v not in rows.columns]
    if missing:
        raise ModelSpecificationError(
            f"Rows to forecast lack column(s) {', '.join(map(repr, missing))} used "
            f"by {model.formula!r}."
        )
    frame = rows.loc[:, needed].reset_index(drop=True)
    frame[model.visit] = pd.Categorical.from_codes(visits, categories=model.visits_)
    if model.arm in frame.columns:
        given = frame[model.arm].to_numpy(dtype=object)
        codes = pd.Index(model.arms_, dtype=object).get_indexer(
            pd.Index(given, dtype=object)
        )
        if np.any(codes < 0):
            bad = given[codes < 0][0]
            raise ModelSpecificationError(
                f"Arm {_plain(bad)!r} ({model.arm!r}) was not in the fit (its arms: "
                f"{', '.join(repr(_plain(a)) for a in model.arms_)})."
            )
        frame[model.arm] = pd.Categorical.from_codes(codes, categories=model.arms_)
    try:
        with warnings.catch_warnings():
            # a category not seen in the fit would silently become NaN
            warnings.simplefilter("error", DataMismatchWarning)
            X = np.asarray(
                model._spec.get_model_matrix(
                    frame, na_action="raise", context=formula_context()
                ),
                dtype=float,
            )
    except Exception as exc:
        raise ModelSpecificationError(
            f"Cannot build the design of the rows to forecast: {exc}"
        ) from exc
    return X


def conditional_mvn(
    sigma: Array,
    cov_beta: Array,
    beta: Array,
    observed: tuple[Array, Array, npt.NDArray[np.intp]],
    Xf: Array,
    f: npt.NDArray[np.intp],
) -> tuple[Array, Array, Array]:
    """Mean and covariance of one patient's outcomes at visits ``f``, given theirs
    at the observed visits, and the share of ``beta``'s uncertainty in it.

    ``observed`` is ``(X_o, y_o, o)``: the design, outcomes and visit indices of the
    patient's observed visits (empty arrays for none: the marginal).

    Returns
    -------
    mean : ndarray, shape (k,)
    cov : ndarray, shape (k, k)
        ``S_ff - K S_of + A C A'``.
    fixed : ndarray, shape (k, k)
        ``A C A'`` alone (the conditional mean's own uncertainty).

    Examples
    --------
    >>> sig = np.array([[4.0, 2.0], [2.0, 4.0]])
    >>> obs = (np.ones((1, 1)), np.array([12.0]), np.array([0]))
    >>> m, v, a = conditional_mvn(sig, np.zeros((1, 1)), np.array([10.0]), obs,
    ...                           np.ones((1, 1)), np.array([1]))
    >>> float(m[0]), float(v[0, 0])   # 10 + 2/4 * 2 and 4 - 2 * 2/4
    (11.0, 3.0)
    """
    Xo, yo, o = observed
    Sff = sigma[np.ix_(f, f)]
    mean = Xf @ beta
    A = Xf
    cond = Sff
    if len(o):
        Soo = sigma[np.ix_(o, o)]
        Sfo = sigma[np.ix_(f, o)]
        K = np.linalg.solve(Soo, Sfo.T).T
        mean = mean + K @ (yo - Xo @ beta)
        A = Xf - K @ Xo
        cond = Sff - K @ Sfo.T
    fixed = A @ cov_beta @ A.T
    cov = cond + fixed
    return mean, 0.5 * (cov + cov.T), 0.5 * (fixed + fixed.T)


def _by_patient(codes: npt.NDArray[np.intp], n: int) -> list[npt.NDArray[np.intp]]:
    """Row positions of each of ``n`` patients, in row order."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n)]


def mmrm_forecast_rows(
    model: Any,
    prep: Prepared,
    *,
    level: float,
    n_samples: int | None,
    rng: np.random.Generator,
) -> ForecastRows:
    """The MMRM's :meth:`~alsprog.models.MMRM.forecast_rows`: each row's normal
    predictive censored at the outcome's bounds, its ``loc`` and ``scale``, and
    draws (joint over each patient's future visits) when asked."""
    cols = model.columns_
    beta = model.fe_params_.to_numpy()
    cov_beta = model._Cinv
    n = len(prep.subjects)
    future = prep.future
    f_vis = visit_codes(model, future[model.visit], "Forecast visit")
    Xf = row_design(model, future, f_vis)
    f_of = _by_patient(future["_subject_index"].to_numpy().astype(np.intp), n)
    observed = prep.observed
    o_vis = visit_codes(model, observed[model.visit], "History visit")
    Xo = (
        row_design(model, observed, o_vis)
        if len(observed)
        else np.zeros((0, len(beta)))
    )
    yo = observed[cols.outcome].to_numpy(dtype=float)
    o_sub = np.asarray(
        prep.subjects.get_indexer(observed[cols.subject].astype(str)), dtype=np.intp
    )
    o_of = _by_patient(o_sub, n)
    loc = np.empty(len(future))
    var = np.empty(len(future))
    roots: list[Array] = []
    for i in range(n):
        rows, seen = f_of[i], o_of[i]
        if len(np.unique(o_vis[seen])) != len(seen):
            dup = pd.Index(o_vis[seen])
            v = model.visits_[int(dup[dup.duplicated()][0])]
            raise ModelSpecificationError(
                f"Subject {prep.subjects[i]!r} has two history rows with an outcome "
                f"at visit {_plain(v)!r}; an MMRM needs one per subject and visit."
            )
        if not len(rows):
            roots.append(np.zeros((0, 0)))
            continue
        both = pd.concat([observed.iloc[seen], future.iloc[rows]])
        m, cov, _ = conditional_mvn(
            subject_sigma(model, both, np.r_[o_vis[seen], f_vis[rows]]),
            cov_beta,
            beta,
            (Xo[seen], yo[seen], o_vis[seen]),
            Xf[rows],
            f_vis[rows],
        )
        loc[rows] = m
        var[rows] = np.diag(cov)
        roots.append(psd_sqrt(cov) if n_samples is not None else cov)
    scale = np.sqrt(np.maximum(var, 0.0))
    bounds = model.outcome_bounds_
    stats = normal_band(loc, scale, level, bounds=bounds)
    stats["loc"], stats["scale"] = loc, scale
    draws = None
    if n_samples is not None:
        z = rng.standard_normal((n_samples, len(loc)))
        draws = np.empty_like(z)
        for i in range(n):
            rows = f_of[i]
            draws[:, rows] = loc[rows] + z[:, rows] @ roots[i].T
        draws = np.clip(draws, *bounds)
    return ForecastRows(stats, draws)


def mmrm_trajectories(
    model: Any,
    times: Any,
    subjects: Any,
    level: float,
    interval: str,
) -> pd.DataFrame:
    """The MMRM's :meth:`~alsprog.models.MMRM.subject_trajectories` (arguments
    checked there)."""
    from scipy.special import ndtri

    rows = model._rows
    levels: pd.Index = rows["levels"]
    if times is None:
        t_vis = np.arange(len(model.visits_), dtype=np.intp)
    else:
        t_vis = visit_codes(model, times, "Visit")
    if t_vis.size == 0:
        raise ValueError(f"`times` must name one or more visits; got {times!r}.")
    if subjects is None:
        idx = np.arange(len(levels))
    else:
        asked = pd.Index(list(subjects))
        idx = np.asarray(levels.get_indexer(asked))
        if np.any(idx < 0):
            unknown = [s for s, i in zip(asked, idx, strict=True) if i < 0]
            raise ModelSpecificationError(
                f"Subject(s) {', '.join(repr(_plain(s)) for s in unknown[:5])} were "
                "not in the fitted data; forecast new patients with "
                "alsprog.forecast.forecast."
            )
    beta = model.fe_params_.to_numpy()
    codes = rows["subject"]
    of = _by_patient(codes, len(levels))
    first = np.array([o[0] for o in of], dtype=np.intp)
    base = model._frame.iloc[first[idx]]
    grid = base.loc[base.index.repeat(len(t_vis))]
    vis = np.tile(t_vis, len(idx))
    Xf = row_design(model, grid, vis)
    k = len(t_vis)
    mean = np.empty(len(vis))
    var = np.empty(len(vis))
    for j, g in enumerate(idx):
        seen = of[g]
        sl = slice(j * k, (j + 1) * k)
        m, cov, fixed = conditional_mvn(
            _fitted_sigma(model, seen),
            model._Cinv,
            beta,
            (rows["X"][seen], rows["y"][seen], rows["visit"][seen]),
            Xf[sl],
            t_vis,
        )
        mean[sl] = m
        var[sl] = np.diag(cov if interval == "prediction" else fixed)
    se = np.sqrt(np.maximum(var, 0.0))
    z = float(ndtri(0.5 + level / 2))
    return pd.DataFrame(
        {
            model.subject: np.asarray(levels)[np.repeat(idx, k)],
            model.visit: np.asarray(pd.Index(model.visits_))[vis],
            "mean": mean,
            "se": se,
            "lower": mean - z * se,
            "upper": mean + z * se,
        }
    )


def mmrm_predict(model: Any, df: pd.DataFrame) -> pd.Series:
    """The MMRM's :meth:`~alsprog.models.MMRM.predict` (``df`` checked there)."""
    from alsprog._formula_text import check_formula

    needed = list(check_formula(model.formula.split("~", 1)[1], kind="rhs").variables)
    missing = [v for v in needed if v not in df.columns]
    if missing:
        raise ModelSpecificationError(
            f"Data for prediction lacks column(s) {', '.join(map(repr, missing))} "
            f"used by {model.formula!r}."
        )
    ok = df[needed].notna().all(axis=1).to_numpy()
    out = np.full(len(df), np.nan)
    sub = df.loc[ok]
    if len(sub):
        vis = visit_codes(model, sub[model.visit], "Visit")
        beta = model.fe_params_.to_numpy()
        pred = row_design(model, sub, vis) @ beta
        if model.subject in sub.columns:
            rows = model._rows
            levels: pd.Index = rows["levels"]
            which = np.asarray(levels.get_indexer(sub[model.subject]))
            of = _by_patient(rows["subject"], len(levels))
            for g in np.unique(which[which >= 0]):
                at, seen = np.flatnonzero(which == g), of[g]
                o = rows["visit"][seen]
                sigma = _fitted_sigma(model, seen)
                r = rows["y"][seen] - rows["X"][seen] @ beta
                gain = np.linalg.solve(sigma[np.ix_(o, o)], r)
                pred[at] += sigma[np.ix_(vis[at], o)] @ gain
        out[ok] = pred
    return pd.Series(out, index=df.index, name="predicted")


def _fitted_sigma(model: Any, seen: npt.NDArray[np.intp]) -> Array:
    """A fitted subject's covariance over all visits (their group's, scaled by
    their weights at their observed visits)."""
    rows = model._rows
    sigma = model._sigmas[int(rows["group"][seen[0]])]
    s = np.ones(sigma.shape[0])
    s[rows["visit"][seen]] = np.sqrt(rows["weights"][seen])
    return sigma / np.outer(s, s)
