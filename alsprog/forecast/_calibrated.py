"""Recalibrated forecasts: a model's predictive bands corrected on training patients.

Owns: :class:`CalibratedForecaster`, which wraps any forecaster, forecasts each
training patient from their own first months exactly as new patients will be
forecast, and learns how the observed later values fall relative to the model's
predictive distribution (standardised errors by months ahead); new forecasts are
then shifted and widened or narrowed accordingly (the empirical recalibration of
Kuleshov et al. 2018, done per forecast distance as the baselines' intervals are).
Leaves: the model's own forecast to its ``forecast_rows``; splitting history from
future and the table to :mod:`alsprog.forecast._table`.

Why: the patients whose later values get observed are not a random sample of those
forecast (fast progressors die or leave first), so a model's 90 % band covers more or
fewer than 90 % of the values that will be seen.  Training patients went through the
same loss, so their errors measure the model's calibration where it is scored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, clone

from alsprog._validation import (
    check_choice,
    check_int,
    check_interval,
    check_is_fitted,
)
from alsprog.data._history import ModelColumns, Prepared
from alsprog.errors import ModelSpecificationError
from alsprog.forecast._columns import fitted_columns
from alsprog.forecast._split import history_and_later, patient_rows
from alsprog.forecast._table import forecast_table
from alsprog.models._contract import ForecastRows

__all__ = ["CalibratedForecaster"]

#: Level whose central band is +-1 SD for a normal (2 * Phi(1) - 1): the model's scale.
_SD_LEVEL = 0.6826894921370859


class CalibratedForecaster(BaseEstimator):
    """A forecaster whose bands are recalibrated on the training patients' own errors.

    ``fit`` fits ``model`` on the training table, forecasts every training patient
    from their visits up to ``history_months`` (as new patients are forecast) at
    their later observed visits, and stores the standardised errors
    ``z = (y - c) / s`` in bins of months ahead of the last history visit, where
    ``c``, ``s`` are the predictive distribution's centre and scale before clipping
    to 0-48 (``loc``, ``scale`` of the mixed and joint models; otherwise the median
    and half the central 68.3 % band, one SD for a normal).  A new forecast is the
    distribution of ``clip(c + s z, 0, 48)`` with ``z`` from the training errors at
    that distance: its mean, median and interval (quantiles interpolated linearly
    between bins).  The calibration is for the values that get
    observed, under the same follow-up as the training patients'.

    Parameters
    ----------
    model : estimator
        Unfitted forecaster accepted by :func:`alsprog.forecast.forecast`
        (``LinearMixedModel``, ``JointModel``, ``BayesianTrajectoryModel``, a
        baseline); cloned in ``fit``.
    history_months : float, default 3
        Training patients' visits up to this month (+ ``tol_months``) are their
        history.  This and the other ``*_months`` parameters are in the units of
        the model's time column (its ``columns_.visit_time``).
    tol_months : float, default 0.5
    bin_months : float, default 3
        Width of the months-ahead bins.
    min_per_bin : int, default 50
        Bins with fewer errors are merged into their neighbour.
    shift : bool, default True
        Also move the centre by the errors' mean at each distance (a bias
        correction at each horizon).  ``False`` keeps the model's own centre and
        recalibrates only the spread and shape of the band (each bin's errors are
        centred).  The shift is an average over the patients still observed at
        that distance, a mix that changes with the distance as fast progressors
        die, so it improves each horizon's bias but bends every patient's
        trajectory the same way (slopes about 0.06 points/month shallower on the
        simulator, which costs on the DREAM slope); without it the trajectory is
        the model's (for :class:`~alsprog.models.JointModel`, its mean given
        survival) and only the band is learned.

    Attributes
    ----------
    model_ : estimator
        The fitted model.
    calibration_ : pandas.DataFrame
        Per bin: ``ahead`` (median months ahead), ``n``, ``mean_z``, ``sd_z`` and
        the quantiles of ``z`` at 0.05, 0.5, 0.95 (the training errors as observed,
        before any centring for ``shift=False``).

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> from alsprog.models import LinearMixedModel
    >>> from alsprog.forecast import forecast
    >>> c = simulate_cohort(300, seed=4)
    >>> t = assemble(c.visits, c.subjects)
    >>> train, new = t[t["subject_id"] > "P0030"], t[t["subject_id"] <= "P0030"]
    >>> cal = CalibratedForecaster(LinearMixedModel(
    ...     "alsfrs_r_total ~ months * delta_fs + (months | subject_id)")).fit(train)
    >>> f = forecast(cal, new[new["months"] < 3.5], [6, 12])
    >>> list(f.columns)
    ['subject_id', 'months', 'mean', 'median', 'lower', 'upper']
    """

    def __init__(
        self,
        model: Any,
        *,
        history_months: float = 3.0,
        tol_months: float = 0.5,
        bin_months: float = 3.0,
        min_per_bin: int = 50,
        shift: bool = True,
    ) -> None:
        self.model = model
        self.history_months = history_months
        self.tol_months = tol_months
        self.bin_months = bin_months
        self.min_per_bin = min_per_bin
        self.shift = shift

    def fit(self, train: pd.DataFrame) -> CalibratedForecaster:
        """Fit the model and learn its standardised errors on ``train``.

        Parameters
        ----------
        train : pandas.DataFrame
            Long table of the training patients' whole follow-up.

        Returns
        -------
        CalibratedForecaster
        """
        check_interval(self.history_months, "history_months", low=0.0)
        check_interval(self.tol_months, "tol_months", low=0.0)
        check_interval(self.bin_months, "bin_months", low=0.0, low_closed=False)
        check_int(self.min_per_bin, "min_per_bin", low=5)
        check_choice(self.shift, "shift", (True, False), error=TypeError)
        if not isinstance(train, pd.DataFrame):
            raise TypeError(f"`train` must be a DataFrame; got {type(train).__name__}.")
        if not (hasattr(self.model, "fit") and hasattr(self.model, "get_params")):
            raise TypeError(
                "`model` must be an unfitted alsprog model or forecast baseline (with "
                f"fit and get_params); got {self.model!r}."
            )
        model = clone(self.model).fit(train)
        cols = fitted_columns(model)
        subject, time, outcome = cols.subject, cols.visit_time, cols.outcome
        hist, later = history_and_later(
            patient_rows(train, outcome, subject=subject),
            self.history_months,
            self.tol_months,
            subject=subject,
            time=time,
        )
        later = later[later[time] > later["_last"]]
        if len(later) < 2 * int(self.min_per_bin):
            raise ModelSpecificationError(
                f"Too few training visits after month {self.history_months:g} "
                f"({len(later)}) to calibrate the forecasts; need at least "
                f"{2 * int(self.min_per_bin)}."
            )
        at = later[[subject, time]].reset_index(drop=True)
        # a random model (Bayesian) forecasts the training patients with its own
        # seed, so a seeded recalibrated model is reproducible
        seed = model.get_params(deep=False).get("seed")
        f = forecast_table(model, hist, at, level=_SD_LEVEL, seed=seed)
        centre, s = _centre_scale(f)
        y = later[outcome].to_numpy(float)
        z = (y - centre) / s
        ahead = (later[time] - later["_last"]).to_numpy(float)
        self.model_ = model
        self.outcome_bounds_ = getattr(model, "outcome_bounds_", (-np.inf, np.inf))
        self._outcome = outcome
        self._bins = _bins(ahead, z, float(self.bin_months), int(self.min_per_bin))
        self.calibration_ = pd.DataFrame(
            [
                {
                    "ahead": a,
                    "n": len(zz),
                    "mean_z": float(np.mean(zz)),
                    "sd_z": float(np.std(zz, ddof=1)),
                    "q05": float(np.quantile(zz, 0.05)),
                    "q50": float(np.median(zz)),
                    "q95": float(np.quantile(zz, 0.95)),
                }
                for a, zz in self._bins
            ]
        )
        if not self.shift:
            self._bins = [(a, zz - np.mean(zz)) for a, zz in self._bins]
        return self

    # ------------------------------------------------------ forecaster protocol
    #: Forecasts only on its model's own visit-time column (backtest reads this).
    own_time_only = True

    @property
    def columns_(self) -> ModelColumns:
        """The columns the fitted model reads."""
        check_is_fitted(self, ["model_"])
        return fitted_columns(self.model_)

    def required_columns(self) -> ModelColumns:
        """The columns the wrapped (unfitted) model will read."""
        return self.model.required_columns()

    def check_forecast_time(self, time: str) -> None:
        """Refuse forecast times on another column than the model's visit times
        (the calibration was learned on those)."""
        own = self.columns_.visit_time
        if time != own:
            raise ModelSpecificationError(
                f"{type(self).__name__} forecasts on its own time column "
                f"{own!r}; got time={time!r} (set the baseline's `time`)."
            )
        self.model_.check_forecast_time(time)

    def with_seed(self, seed: Any) -> CalibratedForecaster:
        """An unfitted copy whose wrapped model is reseeded (its ``with_seed``):
        a recalibrated random model is reproducible in a backtest."""
        params = self.get_params(deep=False)
        params["model"] = self.model.with_seed(seed)
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
        """The model's forecast, recalibrated with the training errors at each
        distance ahead; inside the model's outcome bounds.  The model forecasts
        as it was calibrated (``given_alive=True``)."""
        check_is_fitted(self, ["model_"])
        low, high = self.outcome_bounds_
        inner = self.model_.forecast_rows(
            history, level=_SD_LEVEL, n_samples=None, rng=rng, given_alive=True
        )
        f = pd.DataFrame(inner.stats)
        time = self.columns_.visit_time
        gf = history.future["_subject_index"].to_numpy()
        last = np.nan_to_num(history.last_time[gf], nan=0.0)
        ahead = (history.future[time].to_numpy(float) - last).astype(float)
        med, s = _centre_scale(f)
        probs = [(1 - level) / 2, 0.5, (1 + level) / 2]
        centres = np.array([a for a, _ in self._bins])
        qz = np.array([np.quantile(zz, probs) for _, zz in self._bins])  # (bins, 3)
        q = np.column_stack([np.interp(ahead, centres, qz[:, j]) for j in range(3)])
        # mean of the clipped calibrated distribution, interpolated between bins
        lo_bin = np.clip(np.searchsorted(centres, ahead) - 1, 0, len(centres) - 1)
        hi_bin = np.minimum(lo_bin + 1, len(centres) - 1)
        span = centres[hi_bin] - centres[lo_bin]
        wt = np.clip(
            np.divide(
                ahead - centres[lo_bin], span, out=np.zeros_like(ahead), where=span > 0
            ),
            0.0,
            1.0,
        )
        means = np.empty((len(self._bins), len(ahead)))
        for b, (_, zz) in enumerate(self._bins):
            means[b] = np.mean(np.clip(med[:, None] + s[:, None] * zz, low, high), 1)
        rows = np.arange(len(ahead))
        stats = {
            "mean": (1 - wt) * means[lo_bin, rows] + wt * means[hi_bin, rows],
            "median": np.clip(med + s * q[:, 1], low, high),
            "lower": np.clip(med + s * q[:, 0], low, high),
            "upper": np.clip(med + s * q[:, 2], low, high),
        }
        draws = None
        if n_samples is not None:
            # each draw from the lower or upper bin with the interpolation weight,
            # so the draws' mean is the mean above
            which = np.where(rng.random((n_samples, len(ahead))) < wt, hi_bin, lo_bin)
            draws = np.empty((n_samples, len(ahead)))
            for b, (_, zz) in enumerate(self._bins):
                r, c = np.nonzero(which == b)
                if r.size:
                    pick = zz[rng.integers(0, len(zz), r.size)]
                    draws[r, c] = med[c] + s[c] * pick
            draws = np.clip(draws, low, high)
        return ForecastRows(stats, draws)


def _centre_scale(
    f: pd.DataFrame,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Centre and scale of each predictive distribution before the clipping at the
    outcome's bounds.

    ``loc``/``scale`` where the model gives them (mixed and joint models); otherwise
    the median and the wider half of the 68.3 % band (the narrower half may be cut
    by a bound).
    """
    if {"loc", "scale"} <= set(f.columns) and f["scale"].notna().all():
        return f["loc"].to_numpy(float), np.maximum(f["scale"].to_numpy(float), 1e-6)
    med = f["median"].to_numpy(float)
    half = np.maximum(
        f["upper"].to_numpy(float) - med, med - f["lower"].to_numpy(float)
    )
    return med, np.maximum(half, 1e-6)


def _bins(
    ahead: npt.NDArray[np.float64],
    z: npt.NDArray[np.float64],
    width: float,
    min_n: int,
) -> list[tuple[float, npt.NDArray[np.float64]]]:
    """Errors grouped by months ahead; small bins merged into the previous one."""
    ok = np.isfinite(z) & np.isfinite(ahead)
    ahead, z = ahead[ok], z[ok]
    key = np.floor(ahead / width).astype(int)
    groups: list[list[int]] = []
    for k in np.unique(key):
        idx = np.flatnonzero(key == k).tolist()
        if groups and len(groups[-1]) < min_n:
            groups[-1].extend(idx)
        else:
            groups.append(idx)
    if len(groups) > 1 and len(groups[-1]) < min_n:
        tail = groups.pop()
        groups[-1].extend(tail)
    return [(float(np.median(ahead[g])), np.sort(z[g])) for g in groups]
