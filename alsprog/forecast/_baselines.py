"""Reference forecasters: ΔFS extrapolation, a per-patient line, the DREAM forest.

Owns: :class:`DeltaFSBaseline`, :class:`PatientOLSBaseline` and
:class:`RandomForestSlope`, scikit-learn-shaped (``fit(train)``, then
``alsprog.forecast.forecast(baseline, history, at_months)`` as for every model),
each a straight line from the patient's last
visit; and their intervals, calibrated on the training patients' own forecast errors
(location-scale: the error SD grows with the months ahead, the standardised errors'
empirical quantiles give the band).  Every one reads the ``subject``, ``time`` and
``outcome`` columns it is given (the data dictionary's names by default); its
``history_months``, ``tol_months`` and ``slope_end_months`` are in the units of
``time``.
Each answers for itself to the forecast path (``columns_``, ``required_columns``,
``check_forecast_time``, ``forecast_rows``, ``with_seed``: the trajectory models'
contract), so :func:`~alsprog.forecast.forecast` needs no list of forecaster types.
Leaves: splitting history from future and the table to
:mod:`alsprog.forecast._table`; the history checks to :mod:`alsprog.data._history`;
the outcome's bounds to the data dictionary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator

from alsprog._random import as_generator, child_seed
from alsprog._validation import (
    check_columns,
    check_int,
    check_interval,
    check_is_fitted,
)
from alsprog.data._history import ModelColumns, Prepared
from alsprog.errors import ModelSpecificationError
from alsprog.models._contract import ForecastRows, on_alsfrs_r_scale, outcome_bounds

__all__ = [
    "DeltaFSBaseline",
    "PatientOLSBaseline",
    "RandomForestSlope",
    "history_features",
    "window_slopes",
]

_SUBSCORES = (
    "alsfrs_r_bulbar",
    "alsfrs_r_fine_motor",
    "alsfrs_r_gross_motor",
    "alsfrs_r_respiratory",
)


def _ols_slope(t: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    tc = t - t.mean()
    ss = float(tc @ tc)
    return float(tc @ (y - y.mean()) / ss) if ss > 0 else np.nan


def window_slopes(
    df: pd.DataFrame,
    *,
    start: float,
    end: float,
    outcome: str = "alsfrs_r_total",
    subject: str = "subject_id",
    time: str = "months",
    value: str | None = None,
    min_span: float = 3.0,
    tol_months: float = 0.5,
) -> pd.Series:
    """Per-subject least-squares slope of ``value`` on time over ``[start, end]``.

    The DREAM-challenge target: the ALSFRS-R slope (points/month) between months 3
    and 12 (visits within ``tol_months`` of the window count).  Subjects with fewer
    than two such visits or a span under ``min_span`` months get no slope.
    ``start``, ``end``, ``min_span`` and ``tol_months`` are in the units of the
    ``time`` column (months for the data dictionary's ``months``; on another
    column the window is that column's values, e.g. days 90 to 365).

    Examples
    --------
    >>> df = pd.DataFrame({"subject_id": ["A"] * 4, "months": [0.0, 3, 6, 12],
    ...                    "alsfrs_r_total": [40.0, 38, 35, 29]})
    >>> float(window_slopes(df, start=3, end=12)["A"])
    -1.0
    """
    value = outcome if value is None else value
    check_columns(df, "df", [subject, time, value])
    for name, v in (("start", start), ("end", end)):
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float | np.number)
            or np.isnan(v)
        ):
            raise ValueError(f"`{name}` must be a number of months; got {v!r}.")
    if not end > start:
        raise ValueError(f"`end` must be after `start`; got start={start}, end={end}.")
    check_interval(min_span, "min_span", low=0.0)
    check_interval(tol_months, "tol_months", low=0.0)
    w = df[(df[time] >= start - tol_months) & (df[time] <= end + tol_months)]
    w = w[w[value].notna()]
    out = {}
    for sid, g in w.groupby(subject, sort=False):
        t = g[time].to_numpy(dtype=float)
        if len(t) >= 2 and np.ptp(t) >= min_span:
            out[str(sid)] = _ols_slope(t, g[value].to_numpy(dtype=float))
    return pd.Series(out, dtype=float, name="slope")


def history_features(
    history: pd.DataFrame,
    *,
    outcome: str = "alsfrs_r_total",
    subject: str = "subject_id",
    time: str = "months",
) -> pd.DataFrame:
    """Per-patient features of a history (the DREAM recipe's kind), one row each.

    ``first``/``last``/``mean`` outcome, ``slope`` (least squares; NaN with one
    visit), ``n_visits``, ``span_months``, ``last_months``, ``delta_fs``,
    ``onset_months`` (onset to first visit), ``age`` (at onset), ``bulbar``,
    ``male`` and the four ALSFRS-R domain scores at the last visit, when the columns
    exist.

    Examples
    --------
    >>> df = pd.DataFrame({"subject_id": ["A", "A"], "months": [0.0, 3.0],
    ...                    "alsfrs_r_total": [40.0, 37.0]})
    >>> history_features(df)[["first", "last", "slope", "n_visits"]]
               first  last  slope  n_visits
    subject_id
    A           40.0  37.0   -1.0         2
    """
    h = check_columns(history, "history", [subject, time, outcome]).copy()
    h[subject] = h[subject].astype(str)
    h = h.sort_values([subject, time], kind="stable")
    obs = h[h[outcome].notna()]
    g = obs.groupby(subject, sort=False)
    feats = pd.DataFrame(index=pd.Index(pd.unique(h[subject]), name=subject))
    feats["first"] = g[outcome].first()
    feats["last"] = g[outcome].last()
    feats["mean"] = g[outcome].mean()
    feats["slope"] = pd.Series(
        {
            str(s): _ols_slope(x[time].to_numpy(float), x[outcome].to_numpy(float))
            for s, x in g
        },
        dtype=float,
    )
    feats["n_visits"] = g.size().reindex(feats.index).fillna(0).astype(int)
    feats["span_months"] = g[time].max() - g[time].min()
    feats["last_months"] = g[time].max()
    firsts = h.groupby(subject, sort=False).head(1).set_index(subject)
    for col, name in (
        ("delta_fs", "delta_fs"),
        ("onset_months_before_baseline", "onset_months"),
        ("age_at_onset", "age"),
    ):
        if col in firsts.columns:
            feats[name] = pd.to_numeric(firsts[col], errors="coerce")
    if "onset_site" in firsts.columns:
        feats["bulbar"] = (firsts["onset_site"].astype(str) == "bulbar").astype(float)
    if "sex" in firsts.columns:
        feats["male"] = (firsts["sex"].astype(str) == "male").astype(float)
    for col in _SUBSCORES:
        if col in obs.columns:
            feats[col] = g[col].last()
    return feats


class _LineBaseline(BaseEstimator):
    """Shared machinery: a straight line from the last visit, calibrated bands.

    The parameters shared by the ΔFS and per-patient baselines are set here.
    """

    def __init__(
        self,
        *,
        history_months: float = 3.0,
        tol_months: float = 0.5,
        outcome: str = "alsfrs_r_total",
        subject: str = "subject_id",
        time: str = "months",
    ) -> None:
        self.history_months = history_months
        self.tol_months = tol_months
        self.outcome = outcome
        self.subject = subject
        self.time = time

    # -- to be provided: per-subject (anchor value, anchor time, slope)
    def _lines(self, history: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError  # pragma: no cover

    def _fit_point(self, train: pd.DataFrame, rng: np.random.Generator) -> None:
        """Learn what the point forecast needs (default: nothing)."""

    def _calibration_lines(self, train: pd.DataFrame) -> pd.DataFrame:
        """Lines used to measure the training forecast errors (default: in-sample)."""
        return self._lines(self._histories(train))

    def _histories(self, df: pd.DataFrame) -> pd.DataFrame:
        cut = self.history_months + self.tol_months
        return df[df[self.time] <= cut]

    def _check_params(self) -> None:
        check_interval(self.history_months, "history_months", low=0.0)
        check_interval(self.tol_months, "tol_months", low=0.0)
        for name in ("outcome", "subject", "time"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(
                    f"`{name}` must be a column name (str); got "
                    f"{getattr(self, name)!r}."
                )

    def _check_table(self, df: pd.DataFrame, name: str) -> pd.DataFrame:
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"`{name}` must be a pandas DataFrame; got {type(df)}.")
        missing = [
            c for c in (self.subject, self.time, self.outcome) if c not in df.columns
        ]
        if missing:
            raise ModelSpecificationError(
                f"`{name}` lacks column(s) {', '.join(map(repr, missing))} (the "
                f"baseline's `subject`, `time`, `outcome`: {self.subject!r}, "
                f"{self.time!r}, {self.outcome!r}); it has "
                f"{', '.join(map(repr, map(str, df.columns[:12])))}."
            )
        out = df.copy()
        out[self.subject] = out[self.subject].astype(str)
        if "group" in out.columns:
            out = out[out["group"].astype(str) != "control"]
        return out

    def fit(self, train: pd.DataFrame) -> Any:
        """Learn the point forecast and the error scale from training patients.

        Parameters
        ----------
        train : pandas.DataFrame
            Long-format table of other patients' full follow-up (controls, if a
            ``group`` column marks them, are ignored).

        Returns
        -------
        self
        """
        self._check_params()
        rs = getattr(self, "random_state", None)
        rng = as_generator(rs)
        df = self._check_table(train, "train")
        df = df[df[self.outcome].notna()]
        if df[self.subject].nunique() < 10:
            raise ModelSpecificationError(
                f"{type(self).__name__} needs at least 10 training patients; got "
                f"{df[self.subject].nunique()}."
            )
        self._fit_point(df, rng)
        lines = self._calibration_lines(df)
        later = df[df[self.time] > self.history_months + self.tol_months]
        later = later.join(lines, on=self.subject, how="inner")
        ahead = (later[self.time] - later["anchor_time"]).to_numpy(dtype=float)
        pred = later["anchor"] + later["slope"] * (
            later[self.time] - later["anchor_time"]
        )
        err = (later[self.outcome] - pred).to_numpy(dtype=float)
        ok = np.isfinite(err) & np.isfinite(ahead)
        err, ahead = err[ok], ahead[ok]
        if len(err) < 20:
            raise ModelSpecificationError(
                f"{type(self).__name__}: too few training visits after month "
                f"{self.history_months:g} ({len(err)}) to calibrate the intervals."
            )
        # error variance a + b * ahead^2 (least squares on squared errors, >= 0)
        A = np.column_stack([np.ones_like(ahead), ahead**2])
        coef, *_ = np.linalg.lstsq(A, err**2, rcond=None)
        coef = np.maximum(coef, [1e-6, 0.0])
        self.error_variance_ = pd.Series(coef, index=["intercept", "per_month2"])
        scale = np.sqrt(coef[0] + coef[1] * ahead**2)
        self.standardised_errors_ = np.sort(err / scale)
        self.n_train_ = int(df[self.subject].nunique())
        self.outcome_bounds_ = outcome_bounds(self.outcome)
        return self

    # ------------------------------------------------------ forecaster protocol
    #: Forecasts only on its own ``time`` column (backtest reads this).
    own_time_only = True

    @property
    def columns_(self) -> ModelColumns:
        """The columns the fitted baseline reads (its column parameters)."""
        check_is_fitted(self, ["error_variance_"])
        return self.required_columns()

    def required_columns(self) -> ModelColumns:
        """The outcome, subject and time columns (its parameters) and the columns
        its point forecast needs."""
        time = str(self.time)
        return ModelColumns(
            outcome=str(self.outcome),
            subject=str(self.subject),
            time=time,
            covariates=tuple(dict.fromkeys([time, *self._needs()])),
            visit_time=time,
        )

    def check_forecast_time(self, time: str) -> None:
        """Refuse forecast times on another column than the baseline's ``time``."""
        if time != self.time:
            raise ModelSpecificationError(
                f"{type(self).__name__} forecasts on its own time column "
                f"{self.time!r}; got time={time!r} (set the baseline's `time`)."
            )

    def with_seed(self, seed: Any) -> Any:
        """An unfitted copy with ``random_state`` set from ``seed`` (a Generator
        gives one integer drawn from it); a baseline without randomness is copied
        unchanged and draws nothing."""
        params = self.get_params(deep=False)
        if "random_state" in params:
            params["random_state"] = (
                child_seed(seed) if isinstance(seed, np.random.Generator) else seed
            )
        return type(self)(**params)

    def forecast_rows(
        self,
        history: Prepared,
        *,
        level: float,
        n_samples: int | None = None,
        rng: np.random.Generator,
        given_alive: bool = True,
    ) -> ForecastRows:
        """A straight line from each patient's last visit, with the training
        errors' bands at each distance ahead, inside the outcome's bounds."""
        check_is_fitted(self, ["error_variance_"])
        prep = history
        low, high = self.outcome_bounds_
        seen = prep.first[self.subject].isin(prep.observed[self.subject])
        rows = pd.concat([prep.observed, prep.first[~seen]], ignore_index=True)
        lines = self._lines(rows)
        fut = prep.future
        ln = lines.reindex(fut[self.subject].astype(str))
        t = fut[self.time].to_numpy(dtype=float)
        ahead = np.maximum(t - ln["anchor_time"].to_numpy(dtype=float), 0.0)
        point = ln["anchor"].to_numpy(dtype=float) + ln["slope"].to_numpy(
            dtype=float
        ) * (t - ln["anchor_time"].to_numpy(dtype=float))
        a, b = self.error_variance_.to_numpy()
        scale = np.sqrt(a + b * ahead**2)
        e = self.standardised_errors_
        qs = np.quantile(e, [(1 - level) / 2, 0.5, (1 + level) / 2])
        stats = {
            "mean": np.clip(point + scale * e.mean(), low, high),
            "median": np.clip(point + scale * qs[1], low, high),
            "lower": np.clip(point + scale * qs[0], low, high),
            "upper": np.clip(point + scale * qs[2], low, high),
        }
        draws = None
        if n_samples is not None:
            pick = e[rng.integers(0, len(e), (n_samples, len(t)))]
            draws = np.clip(point + scale * pick, low, high)
        return ForecastRows(stats, draws)

    def _needs(self) -> list[str]:
        return []

    def _features(self, history: pd.DataFrame) -> pd.DataFrame:
        return history_features(
            history, outcome=self.outcome, subject=self.subject, time=self.time
        )


class DeltaFSBaseline(_LineBaseline):
    """Extrapolate the pre-slope: ΔFS points lost per month since onset, onward.

    The forecast is a straight line from the patient's last visit falling at ΔFS
    points/month (``delta_fs`` column, or ``(48 - first total) / months from onset``);
    a patient with no visit yet starts from ``48 - ΔFS * months since onset``.
    Intervals come from the training patients' errors at each horizon.

    Parameters
    ----------
    history_months : float, default 3
        Visits up to this month (plus ``tol_months``) form each training patient's
        history when the errors are measured.
    tol_months : float, default 0.5
        Slack on the history cut (visit dates scatter around the schedule).
    outcome : str, default "alsfrs_r_total"
    subject : str, default "subject_id"
    time : str, default "months"
        Time column; ``history_months`` and ``tol_months`` are in its units.  ΔFS
        is in points per month, so this baseline's time column must be in months.

    Attributes
    ----------
    error_variance_ : pandas.Series
        ``intercept`` and ``per_month2`` of the error variance ``a + b * ahead**2``.
    standardised_errors_ : numpy.ndarray
        Sorted training errors divided by their modelled SD.
    n_train_ : int

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(60, seed=4)
    >>> t = assemble(c.visits, c.subjects)
    >>> b = DeltaFSBaseline().fit(t[t["subject_id"] > "P0010"])
    >>> from alsprog.forecast import forecast
    >>> f = forecast(b, t[(t["subject_id"] <= "P0010") & (t["months"] < 4)], [12])
    >>> len(f), list(f.columns)[:4]
    (10, ['subject_id', 'months', 'mean', 'median'])
    """

    def _check_params(self) -> None:
        super()._check_params()
        if not on_alsfrs_r_scale(self.outcome):
            raise ModelSpecificationError(
                "DeltaFSBaseline extrapolates ΔFS, the ALSFRS-R points lost per month "
                f"since onset: it forecasts the ALSFRS-R total, not {self.outcome!r} "
                "(use PatientOLSBaseline or a model for it)."
            )

    def _lines(self, history: pd.DataFrame) -> pd.DataFrame:
        f = self._features(history)
        if "delta_fs" in f.columns:
            dfs = f["delta_fs"]
        else:
            dfs = pd.Series(np.nan, index=f.index)
        if "onset_months" in f.columns:
            fallback = (48.0 - f["first"]) / f["onset_months"]
            dfs = dfs.fillna(fallback)
        if dfs.isna().any():
            bad = list(dfs.index[dfs.isna()][:5])
            raise ModelSpecificationError(
                f"DeltaFSBaseline needs ΔFS ('delta_fs', or the first total and "
                f"'onset_months_before_baseline'); missing for subject(s) {bad}."
            )
        anchor = f["last"].copy()
        anchor_time = f["last_months"].copy()
        none = anchor.isna()
        if none.any():
            onset = f.get("onset_months", pd.Series(np.nan, index=f.index))
            anchor[none] = 48.0 - dfs[none] * onset[none]
            anchor_time[none] = 0.0
        return pd.DataFrame(
            {"anchor": anchor, "anchor_time": anchor_time, "slope": -dfs}
        )


class PatientOLSBaseline(_LineBaseline):
    """Each patient's own least-squares line through their visits so far.

    With a single visit (or none) the training patients' mean slope is used from the
    last visit (or the training mean total at month 0).  Intervals come from the
    training patients' errors at each horizon.

    Parameters
    ----------
    history_months, tol_months, outcome, subject, time
        As in :class:`DeltaFSBaseline` (any time unit).

    Attributes
    ----------
    mean_slope_ : float
        Training patients' mean slope over their follow-up (points/month).
    error_variance_, standardised_errors_, n_train_
        As in :class:`DeltaFSBaseline`.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(60, seed=4)
    >>> t = assemble(c.visits, c.subjects)
    >>> b = PatientOLSBaseline().fit(t[t["subject_id"] > "P0010"])
    >>> round(b.mean_slope_, 2) < 0
    True
    """

    def _fit_point(self, train: pd.DataFrame, rng: np.random.Generator) -> None:
        slopes = window_slopes(
            train,
            start=0.0,
            end=np.inf,
            outcome=self.outcome,
            subject=self.subject,
            time=self.time,
        )
        self.mean_slope_ = float(slopes.mean())
        self._mean_first = float(
            train.sort_values(self.time)
            .groupby(self.subject)[self.outcome]
            .first()
            .mean()
        )

    def _lines(self, history: pd.DataFrame) -> pd.DataFrame:
        f = self._features(history)
        obs = history[history[self.outcome].notna()]
        anchor, anchor_time, slope = {}, {}, {}
        for sid, g in obs.groupby(self.subject, sort=False):
            t = g[self.time].to_numpy(float)
            y = g[self.outcome].to_numpy(float)
            b = _ols_slope(t, y)
            tl = float(t.max())
            if np.isfinite(b):
                anchor[str(sid)] = float(y.mean() + b * (tl - t.mean()))
                slope[str(sid)] = b
            else:
                anchor[str(sid)] = float(y[-1])
                slope[str(sid)] = self.mean_slope_
            anchor_time[str(sid)] = tl
        out = pd.DataFrame(
            {
                "anchor": pd.Series(anchor, dtype=float),
                "anchor_time": pd.Series(anchor_time, dtype=float),
                "slope": pd.Series(slope, dtype=float),
            }
        ).reindex(f.index)
        none = out["anchor"].isna()
        out.loc[none, "anchor"] = self._mean_first
        out.loc[none, "anchor_time"] = 0.0
        out.loc[none, "slope"] = self.mean_slope_
        return out


class RandomForestSlope(_LineBaseline):
    """Random forest predicting the months 3-12 slope from the first 3 months.

    The recipe of the DREAM ALS Prediction Prize4Life winners (tree ensembles on
    features of the first three months; ``docs/domain.md`` §4): the target is each
    training patient's least-squares ALSFRS-R slope over months ``history_months`` to
    ``slope_end_months``; features are those of :func:`history_features`.  The
    forecast is a line from the last visit at the predicted slope; intervals come
    from out-of-bag training errors.

    Parameters
    ----------
    n_estimators : int, default 500
    min_samples_leaf : int, default 5
    max_features : float, default 0.5
        Fraction of features tried at each split.
    slope_end_months : float, default 12
        End of the slope window (in the units of ``time``).
    history_months, tol_months, outcome, subject, time
        As in :class:`DeltaFSBaseline` (any time unit).
    random_state : int, numpy.random.Generator or None
    n_jobs : int, optional
        joblib workers of the forest.

    Attributes
    ----------
    forest_ : sklearn.ensemble.RandomForestRegressor
    features_ : list of str
    feature_medians_ : pandas.Series
        Imputation values for missing features.
    error_variance_, standardised_errors_, n_train_
        As in :class:`DeltaFSBaseline`.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(80, seed=4)
    >>> t = assemble(c.visits, c.subjects)
    >>> rf = RandomForestSlope(n_estimators=50, random_state=0)
    >>> rf = rf.fit(t[t["subject_id"] > "P0010"])
    >>> "slope" in rf.features_
    True
    """

    def __init__(
        self,
        *,
        n_estimators: int = 500,
        min_samples_leaf: int = 5,
        max_features: float = 0.5,
        slope_end_months: float = 12.0,
        history_months: float = 3.0,
        tol_months: float = 0.5,
        outcome: str = "alsfrs_r_total",
        subject: str = "subject_id",
        time: str = "months",
        random_state: Any = None,
        n_jobs: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.slope_end_months = slope_end_months
        self.history_months = history_months
        self.tol_months = tol_months
        self.outcome = outcome
        self.subject = subject
        self.time = time
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _matrix(self, f: pd.DataFrame) -> npt.NDArray[np.float64]:
        X = f.reindex(columns=self.features_).astype(float)
        return X.fillna(self.feature_medians_).to_numpy()

    def _fit_point(self, train: pd.DataFrame, rng: np.random.Generator) -> None:
        from sklearn.ensemble import RandomForestRegressor

        check_int(self.n_estimators, "n_estimators", low=1)
        check_int(self.min_samples_leaf, "min_samples_leaf", low=1)
        check_interval(
            self.max_features, "max_features", low=0.0, high=1.0, low_closed=False
        )
        check_interval(
            self.slope_end_months,
            "slope_end_months",
            low=self.history_months,
            low_closed=False,
        )
        hist = self._histories(train)
        f = self._features(hist)
        target = window_slopes(
            train,
            start=self.history_months,
            end=self.slope_end_months,
            outcome=self.outcome,
            subject=self.subject,
            time=self.time,
            tol_months=self.tol_months,
        )
        f = f.loc[f.index.intersection(target.index)]
        if len(f) < 10:
            raise ModelSpecificationError(
                f"RandomForestSlope: only {len(f)} training patients have a month "
                f"{self.history_months:g}-{self.slope_end_months:g} slope (need >= 10)."
            )
        usable = [c for c in f.columns if f[c].notna().any()]
        self.features_ = usable
        self.feature_medians_ = f[usable].median()
        X = self._matrix(f)
        y = target.reindex(f.index).to_numpy(dtype=float)
        self.forest_ = RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            oob_score=True,
            random_state=child_seed(rng),
            n_jobs=self.n_jobs,
        ).fit(X, y)
        self._oob = pd.Series(self.forest_.oob_prediction_, index=f.index)

    def _calibration_lines(self, train: pd.DataFrame) -> pd.DataFrame:
        lines = self._lines(self._histories(train))
        oob = self._oob.reindex(lines.index)
        lines["slope"] = oob.fillna(lines["slope"])  # out-of-bag where available
        return lines

    def _lines(self, history: pd.DataFrame) -> pd.DataFrame:
        f = self._features(history)
        slope = self.forest_.predict(self._matrix(f))
        anchor = f["last"].fillna(self.feature_medians_.get("first", 38.0))
        anchor_time = f["last_months"].fillna(0.0)
        return pd.DataFrame(
            {"anchor": anchor, "anchor_time": anchor_time, "slope": slope},
            index=f.index,
        )
