"""Scoring forecasts against what happened, and patient-split backtests.

Owns: :func:`evaluate` (RMSE, MAE, bias, interval coverage and width, CRPS per
horizon, and the DREAM challenge's slope RMSD), :func:`calibration` (coverage against
nominal level) and :func:`backtest` (split patients, fit every model on the training
patients, forecast the others from their first months, score).
Leaves: the forecasts themselves to :func:`alsprog.forecast.forecast` and the
baselines.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import ndtri

from alsprog._progress import progress_bar
from alsprog._random import as_generator, child_seed
from alsprog._validation import check_columns, check_int, check_interval, check_level
from alsprog.errors import ModelSpecificationError
from alsprog.forecast._columns import (
    declared_columns,
    set_table_columns,
    table_columns,
)
from alsprog.forecast._split import history_and_later, split_patients
from alsprog.forecast._table import MAX_SAMPLES, fit_and_forecast

__all__ = ["backtest", "calibration", "crps_draws", "evaluate"]

logger = logging.getLogger(__name__)

METRICS = ["n", "rmse", "mae", "bias", "coverage", "width", "crps"]


def crps_draws(
    draws: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Sample CRPS ``E|X - y| - E|X - X'| / 2`` per row of ``draws`` (rows, K).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(0, 1, (1, 20000))
    >>> exact = 2 * 0.3989422804 - 1 / np.sqrt(np.pi)  # N(0, 1) at 0: 0.2337
    >>> bool(abs(crps_draws(x, np.array([0.0]))[0] - exact) < 0.01)
    True
    """
    try:
        x = np.sort(np.asarray(draws, dtype=float), axis=1)
        yv = np.asarray(y, dtype=float)
    except (TypeError, ValueError, np.exceptions.AxisError):
        raise ValueError(
            "`draws` must be a numeric array (rows, draws) and `y` one number per "
            f"row; got {type(draws).__name__} and {type(y).__name__}."
        ) from None
    if x.ndim != 2 or yv.shape != (x.shape[0],):
        raise ValueError(
            f"`draws` must have shape (rows, draws) with one `y` per row; got shapes "
            f"{np.shape(draws)} and {np.shape(y)}."
        )
    k = x.shape[1]
    term1 = np.mean(np.abs(x - yv[:, None]), axis=1)
    i = np.arange(1, k + 1)
    term2 = (2.0 / k**2) * np.sum((2 * i - k - 1) * x, axis=1)
    return np.asarray(term1 - 0.5 * term2)


def _draws_of(f: pd.DataFrame) -> npt.NDArray[np.float64] | None:
    cols = [c for c in f.columns if c.startswith("draw_")]
    if not cols:
        return None
    d = f[cols].to_numpy(dtype=float)
    return None if np.isnan(d).all() else d


def _merge(
    forecasts: pd.DataFrame, actual: pd.DataFrame, outcome: str, key: list[str]
) -> Any:
    subject, time = key
    check_columns(forecasts, "forecasts", [*key, "mean"])
    check_columns(actual, "actual", [*key, outcome])
    a = actual[[*key, outcome]].copy()
    f = forecasts.copy()
    for name, df, col in (("actual", a, outcome), ("forecasts", f, "mean")):
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = vals.isna() & df[col].notna()
        if bad.any():
            raise ModelSpecificationError(
                f"`{name}` column {col!r} holds {int(bad.sum())} value(s) that are not "
                f"numbers, e.g. {df.loc[bad, col].iloc[0]!r}."
            )
    a = a[a[outcome].notna()]
    for df in (a, f):
        df[subject] = df[subject].astype(str)
        df["_t"] = np.round(df[time].to_numpy(dtype=float), 6)
    a = a.drop(columns=time).drop_duplicates([subject, "_t"])
    out = f.merge(a, on=[subject, "_t"], how="inner").drop(columns="_t")
    if out.empty and len(f) and len(a):
        import warnings

        from alsprog.errors import DataWarning

        warnings.warn(
            f"none of the {len(f)} forecast rows matches an observed {outcome} "
            f"(same {subject} and {time}): forecasts are scored only at the visit "
            "times of `actual`; forecast at those times (as backtest does)",
            DataWarning,
            stacklevel=3,
        )
    return out


def _scores(m: pd.DataFrame, outcome: str) -> dict[str, float]:
    from alsprog.models._contract import outcome_bounds
    from alsprog.models._gaussian import crps_censored_normal

    y = m[outcome].to_numpy(dtype=float)
    err = m["mean"].to_numpy(dtype=float) - y
    lo, hi = m.get("lower"), m.get("upper")
    cover = width = np.nan
    if lo is not None and hi is not None and m[["lower", "upper"]].notna().all().all():
        cover = float(np.mean((y >= lo) & (y <= hi)))
        width = float(np.mean(hi - lo))
    draws = _draws_of(m)
    if draws is not None:
        crps = float(np.mean(crps_draws(draws, y)))
    elif {"loc", "scale"} <= set(m.columns) and m["scale"].notna().all():
        crps = float(
            np.mean(
                crps_censored_normal(
                    y,
                    m["loc"].to_numpy(),
                    m["scale"].to_numpy(),
                    bounds=outcome_bounds(outcome),
                )
            )
        )
    else:
        crps = np.nan
    return {
        "n": len(y),
        "rmse": float(np.sqrt(np.mean(err**2))) if len(y) else np.nan,
        "mae": float(np.mean(np.abs(err))) if len(y) else np.nan,
        "bias": float(np.mean(err)) if len(y) else np.nan,
        "coverage": cover,
        "width": width,
        "crps": crps,
    }


def _slope_scores(
    m: pd.DataFrame,
    outcome: str,
    window: tuple[float, float],
    tol: float,
    history: pd.DataFrame | None,
    key: list[str],
) -> dict[str, float]:
    from alsprog.forecast._baselines import window_slopes

    subject, time = key
    start, end = window
    pts = m[[subject, time, "mean", outcome]]
    if history is not None:
        # the history's visits are known when forecasting: they enter the predicted
        # slope with their observed values (and replace any forecast at those times)
        h = history[history[subject].isin(set(pts[subject]))]
        h = h.assign(mean=h[outcome])[[subject, time, "mean", outcome]]
        seen = pd.MultiIndex.from_arrays(
            [h[subject], np.round(h[time].to_numpy(dtype=float), 6)]
        )
        at = pd.MultiIndex.from_arrays(
            [pts[subject], np.round(pts[time].to_numpy(dtype=float), 6)]
        )
        pts = pd.concat([pts[~at.isin(seen)], h], ignore_index=True)
    obs, pred = (
        window_slopes(
            pts,
            start=start,
            end=end,
            outcome=outcome,
            subject=subject,
            time=time,
            value=value,
            tol_months=tol,
        )
        for value in (None, "mean")
    )
    both = pd.concat([obs.rename("obs"), pred.rename("pred")], axis=1).dropna()
    if len(both) == 0:
        return {"slope_n": 0, "slope_rmsd": np.nan, "slope_r": np.nan}
    d = both["pred"] - both["obs"]
    r = both["pred"].corr(both["obs"]) if len(both) > 2 else np.nan
    return {
        "slope_n": len(both),
        "slope_rmsd": float(np.sqrt(np.mean(d**2))),
        "slope_r": float(r),
    }


def evaluate(
    forecasts: pd.DataFrame,
    actual: pd.DataFrame,
    *,
    outcome: str | None = None,
    slope_window: tuple[float, float] = (3.0, 12.0),
    tol_months: float = 0.5,
    history: pd.DataFrame | None = None,
    subject: str | None = None,
    time: str | None = None,
) -> pd.DataFrame:
    """Score forecasts against the observed outcomes, per horizon.

    Forecast rows are matched to observed rows of the same subject at the same
    time (forecast at the visit times to be scored).  Rows are grouped by the
    forecasts' ``horizon`` column when present (rows with no horizon count only
    towards the slope), otherwise by the time rounded to whole units, and by
    ``model`` when present.

    Parameters
    ----------
    forecasts : pandas.DataFrame
        From :func:`~alsprog.forecast.forecast` (subject, time, ``mean``;
        ``lower``/``upper`` for coverage; draws or ``loc``/``scale`` for the CRPS).
    actual : pandas.DataFrame
        Long table with the subject, time and outcome columns.
    outcome : str, optional
        Outcome column of ``actual``; by default the one ``forecasts.attrs`` names
        (set by :func:`~alsprog.forecast.forecast` from the model), else
        ``"alsfrs_r_total"``.
    slope_window : (float, float), default (3, 12)
        Window of the DREAM slope, in the units of the time column (months 3 to 12
        with the data dictionary's ``months``): least-squares slope of the observed
        values and of the forecast means at the same visits (subjects with at least
        two matched visits spanning 3 units or more).
    tol_months : float, default 0.5
        Slack on the slope window's ends (time units).
    history : pandas.DataFrame, optional
        The visits the forecasts were conditioned on (subject, time, the
        outcome).  Those inside the slope window are known at forecast time, so
        they enter the *predicted* slope with their observed values, and the
        forecast means fill in the later visits.  Because the least-squares slope is
        linear in the visit values, this is the forecast's conditional expectation
        of the observed slope; without it a trajectory model would be scored on its
        smoothed value at a visit whose value is already known.  This is how the
        DREAM challenge scored a slope between months 3 and 12 from 3 months of
        data.  :func:`backtest` passes it.
    subject, time : str, optional
        Subject and time columns of all three tables; by default the ones
        ``forecasts.attrs`` names (the model's), else ``"subject_id"`` and
        ``"months"``.

    Returns
    -------
    pandas.DataFrame
        One row per (model,) horizon: ``n``, ``rmse``, ``mae``, ``bias`` (forecast
        minus observed), ``coverage`` (fraction inside ``[lower, upper]``), ``width``
        (mean interval width), ``crps`` (from draws, else the closed-form censored
        normal, else NaN), and ``slope_n``, ``slope_rmsd``, ``slope_r`` (the same on
        every row of a model).

    Examples
    --------
    >>> f = pd.DataFrame({"subject_id": ["A", "A"], "months": [6.0, 12.0],
    ...                   "mean": [35.0, 30.0], "lower": [31.0, 25.0],
    ...                   "upper": [39.0, 35.0]})
    >>> a = pd.DataFrame({"subject_id": ["A", "A"], "months": [6.0, 12.0],
    ...                   "alsfrs_r_total": [36.0, 24.0]})
    >>> evaluate(f, a)[["horizon", "n", "rmse", "bias", "coverage"]]
       horizon  n  rmse  bias  coverage
    0      6.0  1   1.0  -1.0       1.0
    1     12.0  1   6.0   6.0       0.0
    """
    check_interval(tol_months, "tol_months", low=0.0)
    if (
        isinstance(slope_window, str)
        or np.ndim(slope_window) != 1
        or len(slope_window) != 2
    ):
        raise ValueError(
            f"`slope_window` must be (start, end) in months; got {slope_window!r}."
        )
    start = check_interval(slope_window[0], "slope_window", low=0.0)
    end = check_interval(slope_window[1], "slope_window", low=0.0)
    if end <= start:
        raise ValueError(
            f"`slope_window` must be (start, end) with start < end; got {slope_window!r}."
        )
    subject, time, outcome = table_columns(
        forecasts, subject=subject, time=time, outcome=outcome
    )
    key_cols = [subject, time]
    m = _merge(forecasts, actual, outcome, key_cols)
    hist = None
    if history is not None:
        hist = check_columns(history, "history", [*key_cols, outcome])
        hist = hist[hist[outcome].notna()]
        hist = hist.assign(**{subject: hist[subject].astype(str)})
    if "horizon" not in m.columns:
        m["horizon"] = np.round(m[time].to_numpy(dtype=float))
    groups = ["model"] if "model" in m.columns else []
    rows = []
    for key, g in m.groupby(groups, sort=False) if groups else [((), m)]:
        slope = _slope_scores(g, outcome, slope_window, tol_months, hist, key_cols)
        for h, gh in g[g["horizon"].notna()].groupby("horizon", sort=True):
            row: dict[str, Any] = dict(zip(groups, np.atleast_1d(key), strict=True))
            row["horizon"] = float(h)
            row.update(_scores(gh, outcome))
            row.update(slope)
            rows.append(row)
    cols = [*groups, "horizon", *METRICS, "slope_n", "slope_rmsd", "slope_r"]
    return pd.DataFrame(rows, columns=cols)


def calibration(
    forecasts: pd.DataFrame,
    actual: pd.DataFrame,
    *,
    levels: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
    outcome: str | None = None,
    subject: str | None = None,
    time: str | None = None,
) -> pd.DataFrame:
    """Empirical coverage of central intervals at several nominal levels.

    Intervals come from the forecasts' draws (``draw_*`` columns) or, for the mixed
    model, from ``loc``/``scale`` (normal censored at the outcome's bounds in the data
    dictionary, 0-48 for ``alsfrs_r_total``).  ``outcome``,
    ``subject`` and ``time`` name the columns as in :func:`evaluate` (by default
    those ``forecasts.attrs`` names, else the data dictionary's).

    Returns
    -------
    pandas.DataFrame
        ``[model,] level, coverage, n``.

    Examples
    --------
    >>> f = pd.DataFrame({"subject_id": ["A", "B"], "months": [6.0, 6.0],
    ...                   "mean": [30.0, 30.0], "loc": [30.0, 30.0],
    ...                   "scale": [2.0, 2.0]})
    >>> a = pd.DataFrame({"subject_id": ["A", "B"], "months": [6.0, 6.0],
    ...                   "alsfrs_r_total": [30.5, 36.0]})
    >>> calibration(f, a, levels=[0.5, 0.9])["coverage"].tolist()
    [0.5, 0.5]
    """
    if isinstance(levels, str) or not isinstance(levels, Sequence | np.ndarray):
        levels = [levels]
    levels = [check_level(v, "levels") for v in levels]
    if not levels:
        raise ValueError("`levels` must hold at least one coverage in (0, 1); got [].")
    subject, time, outcome = table_columns(
        forecasts, subject=subject, time=time, outcome=outcome
    )
    m = _merge(forecasts, actual, outcome, [subject, time])
    from alsprog.models._contract import outcome_bounds

    bounds = outcome_bounds(outcome)
    groups = ["model"] if "model" in m.columns else []
    rows = []
    for key, g in m.groupby(groups, sort=False) if groups else [((), m)]:
        y = g[outcome].to_numpy(dtype=float)
        draws = _draws_of(g)
        for lev in levels:
            if draws is not None:
                lo, hi = np.quantile(draws, [(1 - lev) / 2, (1 + lev) / 2], axis=1)
            elif {"loc", "scale"} <= set(g.columns):
                z = float(ndtri(0.5 + lev / 2))
                loc, sc = g["loc"].to_numpy(float), g["scale"].to_numpy(float)
                lo = np.clip(loc - z * sc, *bounds)
                hi = np.clip(loc + z * sc, *bounds)
            else:
                raise ModelSpecificationError(
                    "calibration needs predictive draws (forecast(..., n_samples=...)) "
                    "or 'loc'/'scale' columns."
                )
            row: dict[str, Any] = dict(zip(groups, np.atleast_1d(key), strict=True))
            row.update(
                level=lev, coverage=float(np.mean((y >= lo) & (y <= hi))), n=len(y)
            )
            rows.append(row)
    return pd.DataFrame(rows, columns=[*groups, "level", "coverage", "n"])


def _true_curve(cohort: Any, at: pd.DataFrame) -> pd.DataFrame:
    truth = cohort.truth.set_index("subject_id")
    tr = truth.reindex(at["subject_id"].astype(str))
    from alsprog.models.bayes._sigmoid import sigmoid_mean

    t = tr["months_onset_to_baseline"].to_numpy() + at["months"].to_numpy(float)
    mean = sigmoid_mean(t, tr["d50"].to_numpy(), tr["dx"].to_numpy())
    out = at[["subject_id", "months"]].copy()
    out["mean"] = out["median"] = mean
    out["lower"] = out["upper"] = np.nan
    return out


def backtest(
    data: Any,
    models: Mapping[str, Any],
    *,
    history_months: float = 3.0,
    horizons: Sequence[float] = (6.0, 12.0),
    test_fraction: float = 0.2,
    level: float = 0.9,
    n_samples: int = 400,
    tol_months: float = 0.5,
    reference: bool | None = None,
    return_forecasts: bool = False,
    outcome: str | None = None,
    seed: Any = None,
    progress: bool | None = None,
    subject: str | None = None,
    time: str | None = None,
    protocol: str = "horizons",
) -> Any:
    """Split patients, fit each model on one part, forecast the other, score.

    Patients (never visits) are split at random; every model is cloned and fitted on
    the training patients' whole follow-up; each test patient's visits up to
    ``history_months`` (+ ``tol_months``) are the history and the forecasts are made
    at that patient's later observed visits, scored by :func:`evaluate` at each
    horizon (the visit within ``tol_months`` of it) and on the DREAM slope over
    months ``history_months`` to ``max(horizons)`` (the history's visits in that window
    enter every model's predicted slope with their observed values, as in
    :func:`evaluate` with ``history``).

    The subject, time and outcome columns are the models' own (their formulas and
    ``time``/``subject``/``outcome`` parameters, as each fitted model's
    ``columns_`` gives them); every model must read the same ones.  The
    ``*_months`` arguments, ``horizons`` and the slope window (``history_months``
    to ``max(max(horizons), 12)``, the DREAM months 3-12 with the defaults) are in
    the units of that time column: months for the data dictionary's ``months``
    (or a renamed months column), days on a ``Days`` column.

    Parameters
    ----------
    data : Cohort or pandas.DataFrame
        A simulated :class:`~alsprog.simulate.Cohort` or an assembled long table
        (healthy controls, marked in ``group``, are left out).
    models : mapping of str to estimator
        Unfitted models: :class:`~alsprog.models.LinearMixedModel`,
        :class:`~alsprog.models.BayesianTrajectoryModel`,
        :class:`~alsprog.models.JointModel`, :class:`DeltaFSBaseline`,
        :class:`PatientOLSBaseline`, :class:`RandomForestSlope`,
        :class:`CalibratedForecaster` (cloned, so the objects given are not
        changed).
    history_months : float, default 3
    horizons : sequence of float, default (6, 12)
        Months since the first visit at which forecasts are scored.
    test_fraction : float, default 0.2
    level : float, default 0.9
    n_samples : int, default 400
        Predictive draws per forecast (for the CRPS and calibration).
    tol_months : float, default 0.5
    reference : bool, optional
        For a Cohort (default True): add the rows ``oracle`` (the Bayes oracle,
        :func:`alsprog.simulate.oracle_forecast`) and ``true_curve`` (each patient's
        true mean curve: the noise floor, unattainable from a short history).
    return_forecasts : bool, default False
        Also return every forecast (column ``model``).
    outcome : str, optional
        The models' outcome column (checked against them when given).
    seed : int, numpy.random.Generator or None
        Split, samplers and draws.  Every model is reseeded through its
        ``with_seed`` (a model wrapped in :class:`CalibratedForecaster` too), so
        the same seed gives the same numbers; models without randomness draw no
        seed, so adding one does not change the others' numbers.
    progress : bool or None
        One step per model.
    subject : str, optional
        The models' subject column (checked against them when given).
    time : str, optional
        Column of the forecast and scoring times.  By default the models' common
        visit-time column (``columns_.visit_time``: their time column, ``months``
        for a model on ``months_since_onset``); give it when they differ, e.g. a
        sigmoid model on a renamed months-since-onset column next to mixed models
        on ``visit_month`` (a trajectory model whose own time differs then
        advances it with this one; baselines must use this one).
    protocol : {"horizons", "dream"}, default "horizons"
        ``"dream"``: the DREAM ALS Prediction challenge (Küffner et al., Nat
        Biotechnol 2015): each test patient's visits in months 0-3 are the history
        and the target is the slope from its first visit after month 3 to its last
        visit up to month 12 (:func:`~alsprog.forecast._dream.dream_slopes`); a
        model predicts it from its forecast means at those two visits.  The table
        then has one row per model, ``model, n, rmsd, r, mean_observed,
        mean_predicted, seconds``, with the no-skill references ``training_mean``
        (the training patients' mean slope) and ``zero``; ``history_months``,
        ``horizons``, ``tol_months`` and ``reference`` do not apply.

    Returns
    -------
    pandas.DataFrame or (pandas.DataFrame, pandas.DataFrame)
        :func:`evaluate`'s table with a ``model`` column and ``seconds`` (fit +
        forecast); with ``return_forecasts`` also the forecasts and the test
        patients' actual values are in ``.attrs["actual"]``.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.models import LinearMixedModel
    >>> from alsprog.forecast import DeltaFSBaseline
    >>> cohort = simulate_cohort(150, seed=5)
    >>> lmm = LinearMixedModel(
    ...     "alsfrs_r_total ~ months * delta_fs + (months | subject_id)")
    >>> res = backtest(cohort, {"lmm": lmm, "delta_fs": DeltaFSBaseline()}, seed=1)
    >>> res[["model", "horizon"]].drop_duplicates().shape[0]
    8
    """
    level = check_level(level)
    if protocol not in ("horizons", "dream"):
        raise ValueError(f"`protocol` must be 'horizons' or 'dream'; got {protocol!r}.")
    if protocol == "dream" and (reference or return_forecasts):
        raise ValueError(
            "protocol='dream' scores slopes only: `reference` and `return_forecasts` "
            "apply to protocol='horizons'."
        )
    check_interval(history_months, "history_months", low=0.0)
    check_interval(test_fraction, "test_fraction", low=0, high=1, low_closed=False)
    horizons = sorted(float(check_interval(h, "horizons", low=0.0)) for h in horizons)
    if not horizons or horizons[0] <= history_months:
        raise ValueError(
            f"`horizons` must lie after `history_months` ({history_months:g}); got "
            f"{horizons}."
        )
    if not isinstance(models, Mapping) or not models:
        raise TypeError("`models` must be a non-empty dict of name -> estimator.")
    for name, est in models.items():
        if not (hasattr(est, "fit") and hasattr(est, "get_params")):
            raise TypeError(
                f"`models`[{name!r}] must be an unfitted alsprog model or forecast "
                f"baseline (with fit and get_params); got {est!r}."
            )
    if n_samples is not None:
        check_int(n_samples, "n_samples", low=1, high=MAX_SAMPLES)
    cohort = None
    if hasattr(data, "visits") and hasattr(data, "subjects"):
        from alsprog.data import assemble

        cohort = data
        table = assemble(data.visits, data.subjects)
    elif isinstance(data, pd.DataFrame):
        table = data
    else:
        raise TypeError(
            f"`data` must be a Cohort or a pandas DataFrame; got {type(data).__name__}."
        )
    given = [c for c in (subject, time, outcome) if isinstance(c, str)]
    check_columns(table, "data", given)  # the data's problem before the models'
    subject, time, outcome = _backtest_columns(
        models, subject=subject, time=time, outcome=outcome
    )
    check_columns(table, "data", [subject, time, outcome])
    if reference is None:
        reference = cohort is not None and protocol == "horizons"
    if reference and cohort is None:
        raise ValueError("`reference=True` needs a simulated Cohort as `data`.")
    rng = as_generator(seed)
    train, test = split_patients(table, outcome, test_fraction, rng, subject)
    if protocol == "dream":
        from alsprog.forecast._dream import dream_backtest

        return dream_backtest(
            models,
            train,
            test,
            rng=rng,
            reseed=reseeded,
            outcome=outcome,
            subject=subject,
            time=time,
            level=level,
            n_samples=n_samples,
            progress=progress,
        )
    hist, later = history_and_later(
        test, history_months, tol_months, subject=subject, time=time
    )
    end = max(horizons[-1], 12.0) + tol_months
    keep = (
        (later[time] >= later["_last"])
        & (later[time] >= history_months - tol_months)
        & (later[time] <= end)
    )
    at = later.loc[keep, [subject, time]].reset_index(drop=True)
    horizon = pd.Series(np.nan, index=at.index)
    for h in horizons:
        near = (at[time] - h).abs() <= tol_months
        horizon[near] = h
    actual = test[[subject, time, outcome]]

    parts, timings = [], {}
    steps = list(models.items())
    if reference:
        steps += [("oracle", None), ("true_curve", None)]
    for name, est in progress_bar(
        steps, desc="backtest", unit="model", progress=progress
    ):
        t0 = _time.perf_counter()
        if name == "oracle" and est is None:
            from alsprog.simulate import oracle_forecast

            assert cohort is not None  # reference needs a cohort (checked above)
            f = oracle_forecast(
                hist,
                at,
                params=cohort.params,
                level=level,
                n_samples=n_samples,
                seed=child_seed(rng),
            )
        elif name == "true_curve" and est is None:
            f = _true_curve(cohort, at)
        else:
            f = fit_and_forecast(
                reseeded(est, rng),
                train,
                hist,
                at,
                rng,
                level=level,
                n_samples=n_samples,
                time=time,
            )
        timings[name] = _time.perf_counter() - t0
        logger.info("backtest: %s in %.2f s", name, timings[name])
        f.insert(0, "model", name)
        f.insert(3, "horizon", horizon.to_numpy())
        parts.append(f)
    allf = set_table_columns(
        pd.concat(parts, ignore_index=True), subject, time, outcome
    )
    res = evaluate(
        allf,
        actual,
        outcome=outcome,
        slope_window=(history_months, max(horizons[-1], 12.0)),
        tol_months=tol_months,
        history=hist,
        subject=subject,
        time=time,
    )
    res["seconds"] = res["model"].map(timings)
    if return_forecasts:
        allf.attrs["actual"] = actual.reset_index(drop=True)
        return res, allf
    return res


def _backtest_columns(
    models: Mapping[str, Any],
    *,
    subject: str | None,
    time: str | None,
    outcome: str | None,
) -> tuple[str, str, str]:
    """The subject, time and outcome columns every model of a backtest reads."""
    declared = {name: declared_columns(est) for name, est in models.items()}
    chosen: dict[str, str] = {}
    for field, given, attr in (
        ("subject", subject, "subject"),
        ("outcome", outcome, "outcome"),
        ("time", time, "visit_time"),
    ):
        if given is not None and not isinstance(given, str):
            raise TypeError(f"`{field}` must be a column name (str); got {given!r}.")
        values = {name: getattr(c, attr) for name, c in declared.items()}
        fixed = {
            name: v
            for name, v in values.items()
            if field != "time" or bool(getattr(models[name], "own_time_only", False))
        }
        # a given time is the axis for the trajectory models, which advance their
        # own time column with it; baselines forecast on their own column only
        want, pool = given, fixed if given is not None else values
        if want is None and len(set(values.values())) == 1:
            want = next(iter(values.values()))
        clash = {n: v for n, v in pool.items() if v != want}
        if want is None or clash:
            listed = "; ".join(f"{n!r}: {v!r}" for n, v in values.items())
            hint = (
                f"pass `{field}=` naming the column to forecast on"
                if field == "time"
                else f"fit every model on the same {field} column"
            )
            raise ModelSpecificationError(
                f"backtest: the models read different {field} columns ({listed})"
                + (f", not {given!r} as given" if given is not None else "")
                + f"; {hint}."
            )
        chosen[field] = want
    return chosen["subject"], chosen["time"], chosen["outcome"]


def reseeded(est: Any, rng: np.random.Generator) -> Any:
    """An unfitted copy of ``est`` seeded from ``rng`` through its ``with_seed``
    (the contract's one reseeding hook: models without randomness draw nothing);
    any other scikit-learn-style estimator is cloned with its ``seed`` or
    ``random_state`` set to a child seed."""
    hook = getattr(est, "with_seed", None)
    if callable(hook):
        return hook(rng)
    from sklearn.base import clone

    model = clone(est)
    if "seed" in model.get_params():
        model.set_params(seed=child_seed(rng))
    elif "random_state" in model.get_params():
        model.set_params(random_state=child_seed(rng))
    return model
