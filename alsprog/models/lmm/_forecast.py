"""Conditional-normal forecasts of new patients from a fitted linear mixed model.

Owns: the exact Gaussian predictive distribution of a new patient's future outcome
given their history under a fitted :class:`~alsprog.models.LinearMixedModel`
(:func:`lmm_forecast`: the BLUP given the history with its prediction variance, the
fixed-effect uncertainty and the residual variance), each history's cross-products
under a mixed model's design (:func:`history_sums`, also used by the joint model),
the mixed model's columns read from its parameters
(:func:`mixed_required_columns`), and the designs of new rows under a fitted model
(:func:`prediction_design`, for predictions, trajectories and forecasts).
Leaves: the conditional-normal algebra and the censored normal to
:mod:`alsprog.models._gaussian`; splitting history from future to
:mod:`alsprog.data._history` and :func:`alsprog.forecast.forecast`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._validation import check_choice, check_interval
from alsprog.data._history import ModelColumns, Prepared
from alsprog.errors import ModelSpecificationError
from alsprog.models._contract import ForecastRows
from alsprog.models._gaussian import (
    SubjectSums,
    conditional_effects,
    fixed_effect_variance,
    normal_band,
    subject_sums,
)

__all__ = [
    "check_time_in_formula",
    "history_sums",
    "lmm_forecast",
    "lmm_forecast_rows",
    "mixed_required_columns",
    "prediction_design",
    "trajectory_rows",
]


def lmm_forecast(
    model: Any, prep: Prepared
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Location and scale of each future row's normal predictive distribution.

    ``model`` is a fitted :class:`~alsprog.models.LinearMixedModel`; ``prep`` the
    checked history (rows with an outcome) and rows to forecast.  The variance adds
    the BLUP's conditional variance, the fixed-effect uncertainty propagated through
    the BLUP (``(X_f - Z_f K X_h) Cov(beta) (.)'``; the new patients are not in the
    fit, so the two are independent) and the residual variance; ``theta`` and
    ``sigma`` are treated as known.
    """
    beta = model.fe_params_.to_numpy()
    cov_beta = model.cov_params().to_numpy()
    D = model.cov_re_.to_numpy()
    s2 = float(model.scale_)
    sums = history_sums(model, prep, len(beta), D.shape[0])
    b, cov_b, KX = conditional_effects(sums, beta, D, s2)
    Xf, Zf, _ = model._fixed_matrix(prep.future)
    gf = prep.future["_subject_index"].to_numpy()
    loc = Xf @ beta + np.einsum("nq,nq->n", Zf, b[gf])
    var = fixed_effect_variance(Xf, Zf, KX[gf], cov_beta)
    var += np.einsum("nq,nqr,nr->n", Zf, cov_b[gf], Zf) + s2
    return loc, np.sqrt(np.maximum(var, 0.0))


def lmm_forecast_rows(
    model: Any,
    prep: Prepared,
    *,
    level: float,
    n_samples: int | None,
    rng: np.random.Generator,
) -> ForecastRows:
    """The mixed model's :meth:`~alsprog.models.LinearMixedModel.forecast_rows`:
    the normal predictive censored at the outcome's bounds, its ``loc`` and
    ``scale``, and draws when asked."""
    bounds = model.outcome_bounds_
    loc, scale = lmm_forecast(model, prep)
    stats = normal_band(loc, scale, level, bounds=bounds)
    stats["loc"], stats["scale"] = loc, scale
    draws = None
    if n_samples is not None:
        z = rng.standard_normal((n_samples, len(loc)))
        draws = np.clip(loc + scale * z, *bounds)
    return ForecastRows(stats, draws)


def history_sums(model: Any, prep: Prepared, p: int, q: int) -> SubjectSums:
    """``Z'Z``, ``Z'X``, ``Z'y`` of each subject's history under a mixed model.

    ``model`` is a fitted :class:`~alsprog.models.LinearMixedModel` (its design is
    used, not its estimates); subjects without outcomes get zeros.
    """
    observed = prep.observed
    info = model._design_info
    if len(observed):
        Xh, Zh, ok = model._fixed_matrix(observed)
        yh = observed.loc[ok, info["outcome"]].to_numpy(dtype=float)
        gh = np.asarray(
            prep.subjects.get_indexer(observed.loc[ok, info["group"]].astype(str))
        )
    else:
        Xh, Zh, yh = np.zeros((0, p)), np.zeros((0, q)), np.zeros(0)
        gh = np.zeros(0, dtype=np.intp)
    return subject_sums(Xh, Zh, yh, gh, len(prep.subjects))


def mixed_required_columns(formula: str, time: Any) -> ModelColumns:
    """Outcome, grouping and time columns of a mixed-model formula, unfitted.

    Examples
    --------
    >>> c = mixed_required_columns("frs ~ visit_month + (visit_month | patient)",
    ...                            "visit_month")
    >>> c.outcome, c.subject, c.time, c.covariates
    ('frs', 'patient', 'visit_month', ('visit_month',))
    """
    from alsprog.models._formula import parse_mixed_formula

    parsed = parse_mixed_formula(formula)
    if not parsed.random:
        raise ModelSpecificationError(
            f"Formula {formula!r} has no random-effects term '(... | group)'; "
            "the grouping column is named there."
        )
    t = str(time)
    return ModelColumns.of(parsed.outcome, _subject_column(parsed, t), t, [t])


def _subject_column(parsed: Any, time: str) -> str:
    """The patients' column among a formula's grouping columns: ``subject_id`` when
    grouped by it, else the group of a random slope of ``time``, else the innermost
    nested factor's column (``subject`` of ``site/subject``)."""
    import re

    terms = parsed.random
    if any("subject_id" in t.group_columns for t in terms):
        return "subject_id"
    for t in terms:
        if time in re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", t.expr):
            return str(t.group_columns[0])
    return str(max(terms, key=lambda t: len(t.group_columns)).group_columns[0])


def check_time_in_formula(model: Any, lmm: Any, time: str) -> None:
    """Refuse a mixed or joint model whose ``time`` its formula does not use: its
    forecasts would be flat.  ``lmm`` is the fitted mixed model holding the
    design; ``time`` is the model's own time column."""
    variables = lmm._design_info["variables"]
    cols = model.columns_
    if time not in variables:
        used = [v for v in variables if v not in (cols.outcome, cols.subject)]
        name = type(model).__name__
        raise ModelSpecificationError(
            f"{name}: the time column {time!r} is not used by "
            f"{model.formula!r} (its variables: {', '.join(map(repr, used))}), so "
            "its forecasts could not move with time; fit it with `time=` naming "
            "the formula's time column, e.g. "
            f"{name}(..., time={(used or ['months'])[0]!r})."
        )


def prediction_design(
    info: dict[str, Any],
    formula: str,
    df: pd.DataFrame,
    exclude: set[str] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Fixed- and random-effects designs ``X``, ``Z`` of the complete rows of ``df``
    under a fitted mixed model's design (``info``), and the row mask.  The rows need
    every model column but the outcome and the grouping column (``exclude``: the
    columns that are not needed, the grouping column by default).

    Raises
    ------
    ModelSpecificationError
        If a column the formula uses is absent or a category was not seen in the fit.
    """
    drop = {info["group"]} if exclude is None else exclude
    needed = [v for v in info["variables"] if v != info["outcome"] and v not in drop]
    missing = [v for v in needed if v not in df.columns]
    if missing:
        raise ModelSpecificationError(
            f"Data for prediction lacks column(s) {', '.join(map(repr, missing))} "
            f"used by {formula!r}."
        )
    ok = df[needed].notna().all(axis=1).to_numpy() if needed else np.ones(len(df), bool)
    sub = df.loc[ok, needed] if needed else pd.DataFrame(index=df.index[ok])
    from formulaic.errors import DataMismatchWarning

    from alsprog._formula_text import formula_context

    try:
        with warnings.catch_warnings():
            # a category not seen in the fit would silently become NaN
            warnings.simplefilter("error", DataMismatchWarning)
            X = np.asarray(
                info["fixed_spec"].get_model_matrix(
                    sub, na_action="raise", context=formula_context()
                ),
                dtype=float,
            )
            Zs = [
                np.asarray(
                    s.get_model_matrix(
                        sub, na_action="raise", context=formula_context()
                    ),
                    dtype=float,
                )
                for s in info["random_specs"]
            ]
    except Exception as exc:
        raise ModelSpecificationError(
            f"Cannot build the design for prediction: {exc}"
        ) from exc
    if X.shape[0] != int(ok.sum()):  # intercept-only designs on empty frames
        X = np.broadcast_to(X[:1], (int(ok.sum()), X.shape[1])).copy()
    Z = np.hstack(Zs) if Zs else np.zeros((X.shape[0], 0))
    if Z.shape[0] != X.shape[0]:
        Z = np.broadcast_to(Z[:1], (X.shape[0], Z.shape[1])).copy()
    return X, Z, ok


def trajectory_rows(
    first_rows: pd.DataFrame,
    levels: pd.Index,
    time_range: tuple[float, float],
    tcol: str,
    times: Any,
    subjects: Any,
    new_subjects: str,
) -> tuple[pd.DataFrame, npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """The rows of fitted subjects' trajectories: each subject's first fitted row
    (``first_rows``, in the order of ``levels``) repeated at every time of
    ``times`` (25 over ``time_range`` by default); the times and the subjects'
    positions.  ``new_subjects`` names what to use for subjects not in the fit.

    Raises
    ------
    ValueError
        ``times`` not finite numbers.
    ModelSpecificationError
        A subject not in the fit.
    """
    if times is None:
        times = np.linspace(*time_range, 25)
    t = np.asarray(times, dtype=float).ravel()
    if t.size == 0 or not np.all(np.isfinite(t)):
        raise ValueError(f"`times` must be finite numbers; got {times!r}.")
    if subjects is None:
        idx = np.arange(len(levels))
    else:
        idx = levels.get_indexer(pd.Index(list(subjects)))
        if np.any(idx < 0):
            unknown = [s for s, i in zip(subjects, idx, strict=True) if i < 0]
            raise ModelSpecificationError(
                f"Subject(s) {', '.join(map(repr, unknown[:5]))} were not in the fitted "
                f"data; use {new_subjects} for new subjects."
            )
    base = first_rows.iloc[idx]
    rows = base.loc[base.index.repeat(len(t))].reset_index(drop=True)
    rows[tcol] = np.tile(t, len(idx))
    return rows, t, idx


def lmm_subject_trajectories(
    model: Any,
    times: Any,
    subjects: Any,
    level: float,
    interval: str,
) -> pd.DataFrame:
    """Each subject's predicted trajectory at ``times`` with pointwise intervals (see
    :meth:`LinearMixedModel.subject_trajectories
    <alsprog.models.LinearMixedModel.subject_trajectories>`)."""
    level = check_interval(
        level, "level", low=0, high=1, low_closed=False, high_closed=False
    )
    check_choice(interval, "interval", ("prediction", "confidence"))
    info = model._design_info
    group, tcol = info["group"], model.time
    if tcol not in info["variables"]:
        raise ModelSpecificationError(
            f"Time column {tcol!r} is not used by {model.formula!r}; set `time` to "
            "the model's time column."
        )
    rows, t, idx = trajectory_rows(
        model._first_rows,
        info["levels"],
        model._time_range,
        tcol,
        times,
        subjects,
        "predict(df, include_random=False)",
    )
    levels: pd.Index = info["levels"]
    gi = np.repeat(idx, len(t))
    if model._multi is not None:  # several grouping factors: the sparse system
        from alsprog.models.lmm._multi_model import multi_mean_var

        mean, var = multi_mean_var(model, rows)
    else:
        X, Z, _ = model._fixed_matrix(rows)
        beta = model.fe_params_.to_numpy()
        b = model.random_effects_.to_numpy()
        mean = X @ beta + np.einsum("nq,nq->n", Z, b[gi])
        D = model._Q[gi] @ model._ZtX[gi]  # (m, q, p)
        xe = X - np.einsum("nq,nqp->np", Z, D)
        var = np.einsum("np,pr,nr->n", xe, model._cov_beta, xe)
        var += model.scale_ * np.einsum("nq,nqr,nr->n", Z, model._Q[gi], Z)
    if interval == "prediction":
        var += model.scale_
    se = np.sqrt(np.maximum(var, 0.0))
    from scipy.special import ndtri

    z = float(ndtri(0.5 + level / 2))
    return pd.DataFrame(
        {
            group: np.asarray(levels)[gi],
            tcol: rows[tcol].to_numpy(),
            "mean": mean,
            "se": se,
            "lower": mean - z * se,
            "upper": mean + z * se,
        }
    )
