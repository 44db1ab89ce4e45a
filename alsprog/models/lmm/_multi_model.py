"""A :class:`~alsprog.models.LinearMixedModel` with several grouping factors.

Owns: :func:`fit_multi_model` (the fit of ``(1 | site) + (months | subject_id)``,
nested ``(1 | site/subject_id)`` and crossed designs, setting the model's fitted
attributes: per-factor ``random_effects_`` and ``cov_re_`` dictionaries, lme4's
theta, the singular-fit warning), :func:`multi_predict` (conditional predictions,
unseen levels at 0 as lme4's ``allow.new.levels``) and :func:`refuse_multi` (the
clear error of the methods that need one subject factor).
Leaves: the design to :mod:`alsprog.models.lmm._multi_design`, the likelihood to
:mod:`alsprog.models.lmm._multi`, the one-factor fit to
:mod:`alsprog.models.lmm._model`.
"""

from __future__ import annotations

import logging
import time as _time
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import ConvergenceWarning, ModelSpecificationError, not_converged
from alsprog.models._contract import outcome_bounds
from alsprog.models._threads import single_blas_thread
from alsprog.models.lmm._multi_design import level_labels

__all__ = [
    "fit_multi_model",
    "multi_mean_var",
    "multi_predict",
    "refuse_multi",
    "set_multi_state",
]

logger = logging.getLogger(__name__)


def fit_multi_model(model: Any, df: pd.DataFrame, singular_tol: float) -> Any:
    """Fit ``model`` (a LinearMixedModel whose formula has several grouping
    factors) to ``df`` and set its fitted attributes; returns ``model``."""
    from alsprog.models.lmm._multi import fit_multi
    from alsprog.models.lmm._multi_design import build_multi_design

    t0 = _time.perf_counter()
    with single_blas_thread():
        design = build_multi_design(model.formula, df)
        est = fit_multi(
            design,
            reml=bool(model.reml),
            tol=float(model.tol),
            max_iter=int(model.max_iter),
        )
    set_multi_state(model, design, est)
    logger.info(
        "LinearMixedModel: %d rows, grouping factors %s, %d evaluations, %.3f s",
        design.X.shape[0],
        ", ".join(f"{f.name} ({f.n_levels})" for f in design.factors),
        est.n_iter,
        _time.perf_counter() - t0,
    )
    diag = np.isfinite(design.theta_lower)
    model.singular_ = bool(np.any(est.theta[diag] < singular_tol))
    if not est.converged:
        not_converged(
            f"REML/ML optimisation did not converge ({est.message}); rescale the "
            "time variable or raise max_iter.",
            strict=bool(model.strict),
            stacklevel=3,
        )
    if not model.singular_ and est.hessian is not None:
        from alsprog.models.lmm._identify import flat_from_hessian, warn_flat

        H, idx = est.hessian
        if np.all(np.isfinite(H)):
            ratio, U = flat_from_hessian(H)
            names = [design.theta_names[i] for i in idx]
            warn_flat(ratio, U, names, bool(model.reml))
    if model.singular_:
        at = [
            design.theta_names[i]
            for i in np.flatnonzero(diag & (est.theta < singular_tol))
        ]
        warnings.warn(
            f"boundary (singular) fit: the variance of {', '.join(at)} is estimated "
            "at (or near) zero; consider a simpler random-effects structure "
            "(lme4: see help('isSingular')).",
            ConvergenceWarning,
            stacklevel=3,
        )
    return model


def set_multi_state(model: Any, design: Any, est: Any) -> None:
    """Set a model's fitted attributes from a design and its estimates (from a fit,
    or a saved model's theta); ``singular_`` and ``_time_range`` are the caller's."""
    from alsprog.models.lmm._inference import forget_derived

    beta = est.beta
    fitted = design.X @ beta
    for f, b in zip(design.factors, est.b, strict=True):
        fitted = fitted + np.einsum("nq,nq->n", f.Z, b[f.codes])
    fe = design.fe_names
    model.fe_params_ = pd.Series(beta, index=fe)
    model.bse_ = pd.Series(np.sqrt(np.diag(est.cov_beta)), index=fe)
    model.scale_ = float(est.sigma2)
    model.llf_ = -0.5 * float(est.deviance)
    model.theta_ = pd.Series(est.theta, index=design.theta_names, name="theta")
    model.cov_re_ = {}
    model.random_effects_ = {}
    for f, b in zip(design.factors, est.b, strict=True):
        lam = f.factor(est.theta)
        model.cov_re_[f.name] = pd.DataFrame(
            est.sigma2 * lam @ lam.T, index=f.re_names, columns=f.re_names
        )
        model.random_effects_[f.name] = pd.DataFrame(
            b, index=f.levels.copy(), columns=f.re_names
        )
    model.converged_ = bool(est.converged)
    model.n_obs_ = int(design.X.shape[0])
    model.n_subjects_ = int(design.factors[0].n_levels)
    model.outcome_bounds_ = outcome_bounds(design.outcome)
    model.n_dropped_ = int(design.n_dropped)
    model.n_iter_ = int(est.n_iter)
    model.resid_ = pd.Series(design.y - fitted, index=design.row_index, name="resid")
    model._cov_beta = est.cov_beta
    model._deviance = float(est.deviance)
    model._frame = design.frame
    # the subject: the first column of the factor with the most levels (subject_id
    # of '(1 | site/subject_id)' too); its first row gives its covariates and levels
    subject = design.factors[0].columns[0]
    codes, levels = pd.factorize(design.frame[subject], sort=True)
    first = np.full(len(levels), -1, dtype=np.intp)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    model._first_rows = design.frame.iloc[first][design.variables].reset_index(
        drop=True
    )
    tv = (
        pd.to_numeric(design.frame[model.time], errors="coerce")
        if model.time in design.frame.columns
        else pd.Series([np.nan])
    )
    model._time_range = (float(tv.min()), float(tv.max()))
    model._design_info = {
        "fixed_spec": design.fixed_spec,
        "random_specs": [],
        "group": subject,
        "outcome": design.outcome,
        "variables": design.variables,
        "levels": pd.Index(levels, name=subject),
        "n_theta": design.n_theta,
        "template": None,
    }
    terms = []
    for f in design.factors:
        for a, b in f.terms:
            first = int(min(f.theta_index[(f.rows >= a) & (f.rows < b)]))
            terms.append((first, f.name, a, b))
    model._multi = {
        "factors": [
            {
                "name": f.name,
                "columns": f.columns,
                "levels": f.levels,
                "re_names": f.re_names,
                "random_specs": f.random_specs,
            }
            for f in design.factors
        ],
        "terms": [(g, a, b) for _, g, a, b in sorted(terms)],
    }
    forget_derived(model)


def _factor_matrix(
    specs: list[tuple[Any, list[str]]], sub: pd.DataFrame
) -> npt.NDArray[np.float64]:
    from alsprog._formula_text import formula_context

    blocks = []
    for spec, names in specs:
        mm = spec.get_model_matrix(sub, na_action="raise", context=formula_context())
        arr = np.asarray(mm, dtype=float)
        cols = [str(c) for c in mm.columns]
        if arr.shape[0] != len(sub):  # intercept-only on an empty frame
            arr = np.broadcast_to(arr[:1], (len(sub), arr.shape[1]))
        blocks.append(arr[:, [cols.index(n) for n in names]])
    return np.hstack(blocks)


def multi_predict(model: Any, df: pd.DataFrame, include_random: bool) -> pd.Series:
    """``X beta + sum over factors of Z_f b_f`` (levels not seen in the fit: 0)."""
    from alsprog.models.lmm._forecast import prediction_design

    info = model._design_info
    gcols = {c for f in model._multi["factors"] for c in f["columns"]}
    try:
        fixed_vars = set(info["fixed_spec"].required_variables)
    except Exception:  # formulaic without the attribute: grouping columns too
        fixed_vars = gcols
    if include_random:
        missing_g = sorted(c for c in gcols if c not in df.columns)
        if missing_g:
            raise ModelSpecificationError(
                f"Data for prediction lacks the grouping column(s) "
                f"{', '.join(map(repr, missing_g))}; pass them or use "
                "include_random=False."
            )
    X, _, ok = prediction_design(info, model.formula, df, exclude=gcols - fixed_vars)
    pred = X @ model.fe_params_.to_numpy()
    if include_random:
        sub = df.loc[ok]
        try:
            for f in model._multi["factors"]:
                Z = _factor_matrix(f["random_specs"], sub)
                idx = f["levels"].get_indexer(level_labels(sub, list(f["columns"])))
                seen = idx >= 0
                b = model.random_effects_[f["name"]].to_numpy()
                pred[seen] += np.einsum("nq,nq->n", Z[seen], b[idx[seen]])
        except Exception as exc:
            raise ModelSpecificationError(
                f"Cannot build the design for prediction: {exc}"
            ) from exc
    out = np.full(len(df), np.nan)
    out[ok] = pred
    return pd.Series(out, index=df.index, name="predicted")


def multi_mean_var(
    model: Any, rows: pd.DataFrame
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Conditional mean ``x'beta + z'b`` of rows of fitted subjects and its variance
    given theta and sigma: ``sigma^2 [x; Lambda'z]' M^-1 [x; Lambda'z]`` with ``M``
    the penalised least-squares system (lme4's ``[L, RZX; 0, RX]`` factor)."""
    from scipy import linalg

    from alsprog._formula_text import formula_context
    from alsprog.models.lmm._multi import _fsolve

    design, st, pc = multi_state(model)
    theta = model.theta_.to_numpy()
    X = np.asarray(
        model._design_info["fixed_spec"].get_model_matrix(
            rows, na_action="raise", context=formula_context()
        ),
        dtype=float,
    )
    if X.shape[0] != len(rows):
        X = np.broadcast_to(X[:1], (len(rows), X.shape[1]))
    m, p = len(rows), X.shape[1]
    mean = X @ model.fe_params_.to_numpy()
    ar = np.zeros((st.qr, m))
    for k, f in enumerate(design.factors):
        Z = _factor_matrix(f.random_specs, rows)
        idx = f.levels.get_indexer(level_labels(rows, list(f.columns)))
        b = model.random_effects_[f.name].to_numpy()
        mean += np.einsum("nq,nq->n", Z, b[idx])
        a = Z @ f.factor(theta)  # rows of (Lambda'z)'
        if k == 0:
            g1, a1 = idx, a.T  # (q1, m)
        else:
            o = st.offsets[k - 1]
            pos = o + idx[:, None] * f.q + np.arange(f.q)
            ar[pos.T, np.arange(m)] = a.T
    v1 = _fsolve(pc.L1[:, :, g1], a1[:, None, :])[:, 0, :]  # (q1, m)
    rzx = np.einsum("iam,im->am", pc.c1[:, :p, :][:, :, g1], v1)  # (p, m)
    var = (v1 * v1).sum(axis=0)
    if st.qr:
        # W' v1 for each row: its first-factor level's couples only
        Wv = np.zeros((st.qr, m))
        for Wf, (pg, _, _), rows in zip(pc.W, st.cross, st.rows_r, strict=True):
            for r in range(m):
                sel = np.flatnonzero(pg == g1[r])
                if len(sel):
                    T = np.einsum("iap,i->ap", Wf[:, :, sel], v1[:, r])
                    np.add.at(Wv[:, r], rows[:, sel].ravel(), T.ravel())
        vr = linalg.solve_triangular(pc.Lr, ar - Wv, lower=True)
        rzx += pc.cr[:, :p].T @ vr
        var += (vr * vr).sum(axis=0)
    v2 = linalg.solve_triangular(pc.C_chol, X.T - rzx, lower=True)
    var += (v2 * v2).sum(axis=0)
    return mean, model.scale_ * var


def multi_state(model: Any) -> tuple[Any, Any, Any]:
    """The fit's design, its cross-products and the penalised least squares at its
    theta, built once per fit and kept beside the model."""
    from alsprog.models._derived import derived
    from alsprog.models.lmm._multi import MultiStats, multi_pieces

    cache = derived(model)
    if "multi_state" not in cache:
        design = model._rows()
        st = MultiStats.of(design)
        pc = multi_pieces(model.theta_.to_numpy(), design, st, bool(model.reml))
        cache["multi_state"] = (design, st, pc)
    return cache["multi_state"]


def refuse_multi(model: Any, what: str) -> None:
    """Raise for a method that needs a model with one subject grouping factor."""
    if getattr(model, "_multi", None) is not None:
        names = ", ".join(f["name"] for f in model._multi["factors"])
        raise ModelSpecificationError(
            f"{what} is available for models with one grouping factor; this model "
            f"has several ({names}). Fit '(months | subject_id)' alone for it."
        )
