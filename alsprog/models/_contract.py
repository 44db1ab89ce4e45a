"""The contract every trajectory model meets: :class:`TrajectoryModel`.

Owns: :class:`TrajectoryModel` (the one base of the trajectory models: parameters
as scikit-learn's, ``fit``/``required_columns``/``columns_``/``summary``/
``subject_trajectories``/``forecast_rows``/``save``/``load``/``with_seed``, one
default interval level, one spelling of the fitted counts), :class:`ForecastRows`
(what ``forecast_rows`` returns), :data:`DEFAULT_LEVEL` and :func:`outcome_bounds`
(an outcome's range read from the data dictionary, which each model keeps as
``outcome_bounds_``).
Leaves: each family's numerics, forecast, file format and summary to its own
folder (``models/lmm``, ``models/joint``, ``models/bayes``); splitting a new
patient's history from the times to forecast and the forecast table to
:mod:`alsprog.forecast`; the registry of model names to
:mod:`alsprog.models.registry`.
Imports stay light (no scikit-learn, no pymc/jax): every model module imports it.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from alsprog.errors import ModelSpecificationError
from alsprog.models._estimator import EstimatorParams
from alsprog.models._params import check_declared, parse_range

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from alsprog.data._history import ModelColumns, Prepared

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_LEVEL",
    "DEFAULT_TRAJECTORY_LEVEL",
    "ForecastRows",
    "TrajectoryModel",
    "outcome_bounds",
    "parse_range",
]

#: The interval coverage of every model's ``summary()`` unless asked otherwise (as
#: lme4's ``confint`` and statsmodels' ``summary``).
DEFAULT_LEVEL = 0.95
#: The band level and band type of every model's ``subject_trajectories`` unless
#: asked otherwise: the 90 % band of the subject's mean curve.
DEFAULT_TRAJECTORY_LEVEL = 0.9
DEFAULT_INTERVAL = "confidence"


def outcome_bounds(column: str) -> tuple[float, float]:
    """The range of ``column`` in the data dictionary: ``(minimum, maximum)``.

    A bound the dictionary does not give is infinite, so an outcome it does not
    know (a renamed ``frs``) is unbounded.

    Examples
    --------
    >>> outcome_bounds("alsfrs_r_total")
    (0.0, 48.0)
    >>> outcome_bounds("frs")
    (-inf, inf)
    """
    from alsprog.data._dictionary import load_dictionary

    f = load_dictionary().field_for(str(column))
    if f is None or f.type not in ("number", "integer"):
        return (-math.inf, math.inf)
    lo = -math.inf if f.minimum is None else float(f.minimum)
    hi = math.inf if f.maximum is None else float(f.maximum)
    return (lo, hi)


def on_alsfrs_r_scale(column: str) -> bool:
    """Whether ``column`` is on the ALSFRS-R total's 0-48 scale: the total itself,
    or a column the data dictionary does not bound (a renamed total such as
    ``frs``); not FVC, an item, a subscore or an imaging feature.

    Examples
    --------
    >>> on_alsfrs_r_scale("frs"), on_alsfrs_r_scale("fvc_percent_predicted")
    (True, False)
    """
    return outcome_bounds(column) in ((0.0, 48.0), (-math.inf, math.inf))


@dataclass(frozen=True)
class ForecastRows:
    """A model's forecast of the future rows of a prepared history.

    Attributes
    ----------
    stats : dict of str to numpy.ndarray
        One value per future row (in the order of ``Prepared.future``): ``mean``,
        ``median``, ``lower``, ``upper`` (inside the outcome's bounds) and any
        model-specific columns (``loc``/``scale`` of a normal predictive
        distribution before it is censored at the bounds).
    draws : numpy.ndarray or None
        Predictive draws, shape (n_samples, future rows), when asked for.
    """

    stats: dict[str, npt.NDArray[np.float64]]
    draws: npt.NDArray[np.float64] | None = None


class TrajectoryModel(EstimatorParams):
    """Base of every trajectory model: the contract forecasts, backtests and the
    report rely on.

    A subclass stores its ``__init__`` arguments unchanged (scikit-learn's
    parameter protocol: ``get_params``, ``set_params``, :func:`sklearn.base.clone`),
    and implements :meth:`fit`, :meth:`required_columns`, :attr:`columns_`,
    :meth:`summary`, :meth:`predict`, :meth:`subject_trajectories`,
    :meth:`forecast_rows`, :meth:`save` and :meth:`load`.  Fitted state is set only by ``fit`` (and
    ``load``): no other method changes a fitted model.  A model with a likelihood
    also has ``llf_`` and the properties ``aic`` and ``bic``; every fitted model
    has ``n_obs_``, ``n_subjects_`` and ``outcome_bounds_`` (the outcome's range
    in the data dictionary, ``(-inf, inf)`` for an outcome it does not know).

    Examples
    --------
    >>> import numpy as np
    >>> class Flat(TrajectoryModel):
    ...     def __init__(self, *, outcome="alsfrs_r_total", seed=None):
    ...         self.outcome = outcome
    ...         self.seed = seed
    >>> Flat().with_seed(3)
    Flat(seed=3)
    >>> Flat.file_suffix, DEFAULT_LEVEL
    ('.npz', 0.95)
    """

    #: The suffix of the file :meth:`save` writes.
    file_suffix: ClassVar[str] = ".npz"
    #: The parameters that name a data column: a run checks them against its tables
    #: before fitting anything (``formula`` and ``*_formula`` are read as formulas).
    column_params: ClassVar[tuple[str, ...]] = ("outcome", "subject", "time")
    #: The interval level of the summary a run's report shows.
    report_level: ClassVar[float] = DEFAULT_LEVEL
    #: Allowed ranges of numeric parameters, as interval text (``"[1, inf]"``,
    #: ``"(0, 1)"``): a run config is checked against them before anything runs.
    param_ranges: ClassVar[Mapping[str, str]] = {}
    #: :meth:`describe`'s text, formatted with the parameters (``"{kind} model"``);
    #: the class name when empty.
    description: ClassVar[str] = ""
    # set by fit (and load) on every model
    n_obs_: int
    n_subjects_: int

    # ---------------------------------------------------------------- fitting
    def fit(self, table: pd.DataFrame) -> TrajectoryModel:
        """Fit to a long-format table (one row per visit) and return ``self``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement fit.")

    def required_columns(self) -> ModelColumns:
        """The outcome, subject and time columns the model will read, from its
        parameters alone (before ``fit``); ``covariates`` holds the time column.

        Raises
        ------
        ModelSpecificationError
            If the parameters do not name them (e.g. a formula without a grouping
            term).
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement required_columns."
        )

    # ---------------------------------------------------------------- results
    def summary(self, level: float = DEFAULT_LEVEL) -> Any:
        """The fitted model's :class:`~alsprog.models.Summary` at interval ``level``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement summary.")

    def subject_trajectories(
        self,
        times: Any,
        *,
        subjects: Any = None,
        level: float = DEFAULT_TRAJECTORY_LEVEL,
        interval: Literal["confidence", "prediction"] = DEFAULT_INTERVAL,
    ) -> pd.DataFrame:
        """Fitted subjects' trajectories at ``times`` (values of the time column)
        with pointwise ``level`` bands: the subject column, the time column,
        ``mean``, ``lower``, ``upper``; ``subjects`` (seen in the fit) all by
        default.

        ``interval="confidence"`` (every model's default) bands the subject's mean
        curve (a Bayesian model's credible band); ``"prediction"`` covers a new
        visit (the residual noise added).  A model that cannot give a prediction
        band takes no ``interval``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement subject_trajectories."
        )

    def predict(self, table: pd.DataFrame) -> pd.Series:
        """The point prediction of the outcome at each row of ``table``.

        The one meaning of ``predict`` on every model (as scikit-learn's and
        statsmodels'): a :class:`pandas.Series` named ``predicted``, indexed like
        ``table``, NaN where a covariate is missing.  Subjects seen in the fit get
        their own curve; others the population's.  Bands are
        :meth:`subject_trajectories`'s (fitted subjects) and forecasts of new
        patients given their visits :func:`alsprog.forecast.forecast`'s.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement predict.")

    @property
    def n_groups_(self) -> int:
        """lme4's word for :attr:`n_subjects_` (read-only alias)."""
        return int(self.n_subjects_)

    def describe(self) -> str:
        """A few words naming the model and its main settings (progress lines):
        :attr:`description` filled with the parameters."""
        if not self.description:
            return type(self).__name__
        return self.description.format(**self.get_params(deep=False))

    def variant(self) -> str | None:
        """The variant shown beside the model's type in a comparison table: its
        ``kind`` parameter where it has one (``"sigmoid"``), else None."""
        kind = self.get_params(deep=False).get("kind")
        return kind if isinstance(kind, str) else None

    def fit_statistics(self) -> dict[str, Any]:
        """The fitted model's row of a model comparison.

        ``loglik``, ``aic``, ``bic`` for a model with a likelihood (``llf_``),
        ``converged`` where the fit says, and a sampled model's ``max_rhat``,
        ``min_ess_bulk``, ``n_divergent`` (from ``diagnostics_``).
        """
        out: dict[str, Any] = {}
        if hasattr(self, "llf_"):
            out["loglik"] = float(self.llf_)
            for name in ("aic", "bic"):
                v = getattr(self, name)
                out[name] = float(v() if callable(v) else v)
        if hasattr(self, "converged_"):
            out["converged"] = bool(self.converged_)
        dg = getattr(self, "diagnostics_", None)
        if isinstance(dg, Mapping):
            for key, cast in (
                ("max_rhat", float),
                ("min_ess_bulk", float),
                ("n_divergent", int),
            ):
                if key in dg:
                    out[key] = cast(dg[key])
        return out

    def fit_warning(self) -> str | None:
        """Why the fitted numbers should not be relied on yet, or None: a sampled
        model (``diagnostics_``) that did not pass its convergence gate."""
        dg = getattr(self, "diagnostics_", None)
        if getattr(self, "converged_", True) or not isinstance(dg, Mapping):
            return None
        return (
            f"did not pass the convergence gate (max R-hat {dg['max_rhat']:.3f}, "
            f"min bulk ESS {dg['min_ess_bulk']:.0f}, {dg['n_divergent']} divergent): "
            "raise draws/tune or chains before relying on its numbers"
        )

    @classmethod
    def data_defaults(
        cls, params: Mapping[str, Any], *, outcome: str, time: str
    ) -> dict[str, Any]:
        """Values for the parameters a run config leaves unset (absent or None),
        from its ``[data]`` outcome and time columns.

        ``outcome`` and ``time`` take the data's; ``formula`` becomes
        ``outcome ~ time + (time | subject_id)`` (parameters the constructor does
        not take are left out).

        Examples
        --------
        >>> class Flat(TrajectoryModel):
        ...     def __init__(self, *, outcome=None, time=None):
        ...         self.outcome = outcome
        ...         self.time = time
        >>> Flat.data_defaults({"time": "t"}, outcome="frs", time="months")
        {'outcome': 'frs'}
        """
        names = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
        out: dict[str, Any] = {}
        if "outcome" in names and params.get("outcome") is None:
            out["outcome"] = outcome
        if "time" in names and params.get("time") is None:
            out["time"] = time
        if "formula" in names and params.get("formula") is None:
            t = params.get("time") or time
            out["formula"] = f"{outcome} ~ {t} + ({t} | subject_id)"
        return out

    # ------------------------------------------------------------- parameters
    def check_params(self) -> None:
        """Check the parameters against their one declaration, before a fit.

        The constructor's annotations and :attr:`param_ranges` are the
        declaration the run config's schema and checks read too: a ``Literal``
        parameter must be one of its values, a ``bool`` one True or False (or
        None where the annotation allows it), and a parameter in
        :attr:`param_ranges` an integer (``int`` annotation) or a number in its
        interval.

        Raises
        ------
        ValueError, TypeError
            The parameter, what it must be and the value given.

        Examples
        --------
        >>> class Flat(TrajectoryModel):
        ...     param_ranges = {"tol": "(0, 1]"}
        ...     def __init__(self, *, tol: float = 1e-8, strict: bool = False):
        ...         self.tol = tol
        ...         self.strict = strict
        >>> Flat(tol=0.5).check_params()
        >>> Flat(tol=0).check_params()
        Traceback (most recent call last):
        ...
        ValueError: `tol` must be in (0, 1]; got 0.
        >>> Flat(strict="yes").check_params()
        Traceback (most recent call last):
        ...
        ValueError: `strict` must be one of True, False; got 'yes'.
        """
        check_declared(type(self), self.get_params(deep=False))

    # --------------------------------------------------------------- forecast
    def check_forecast_time(self, time: str) -> None:
        """Refuse to forecast on the time column ``time`` when the model cannot.

        ``time`` is the column of the forecast times; the model's own time column
        advances one for one with it.  The default accepts any.

        Raises
        ------
        ModelSpecificationError
            If the forecasts could not move with ``time``.
        """

    def scheduled_times(self) -> tuple[float, ...] | None:
        """The only values of the time column the fitted model forecasts and draws
        trajectories at (a trial's scheduled visits), or None when any time works
        (the default).  A run's forecasts and figures ask such a model at these
        times only."""
        return None

    def forecast_rows(
        self,
        history: Prepared,
        *,
        level: float,
        n_samples: int | None = None,
        rng: np.random.Generator,
        given_alive: bool = True,
    ) -> ForecastRows:
        """Forecast new patients' future rows given their history (no refit).

        The conditional forecast the model family owns: the patients of
        ``history`` were not in the fit; their forecasts condition on their own
        visits.  :func:`alsprog.forecast.forecast` splits a table into
        ``history`` (:func:`alsprog.data._history.prepare_history`), calls this
        and lays the result out as the forecast table.

        Parameters
        ----------
        history : Prepared
            The patients' checked visits (``observed``), the rows to forecast
            (``future``, on the model's columns) and each patient's first row.
        level : float
            Central interval coverage in (0, 1).
        n_samples : int, optional
            Also return this many predictive draws per row (models that forecast
            by sampling use this many; their own default when ``None``).
        rng : numpy.random.Generator
            For every random number the forecast uses.
        given_alive : bool, default True
            For models of the event time: condition on being event-free at each
            forecast time.  Ignored by the others.

        Returns
        -------
        ForecastRows
            ``stats`` (``mean``, ``median``, ``lower``, ``upper`` inside
            :attr:`outcome_bounds_`, plus model-specific columns) and ``draws``
            (``None`` unless ``n_samples`` was given).
        """
        raise ModelSpecificationError(
            f"{type(self).__name__} does not forecast new patients (it has no "
            "conditional forecast); use a model that does, e.g. LinearMixedModel."
        )

    # ------------------------------------------------------------ randomness
    def with_seed(self, seed: Any) -> TrajectoryModel:
        """An unfitted copy whose randomness is seeded by ``seed``.

        The one reseeding hook (``backtest`` uses it for every model, wrapped ones
        included).  A model with a ``seed`` parameter gets ``seed`` (a
        :class:`numpy.random.Generator` gives one integer drawn from it); a model
        without randomness is copied unchanged and draws nothing from a
        Generator, so adding it to a backtest does not shift the others' seeds.

        Parameters
        ----------
        seed : int, numpy.random.Generator or None

        Returns
        -------
        TrajectoryModel
            A new, unfitted model with the same parameters but the seed.
        """
        params = self.get_params(deep=False)
        if "seed" in params:
            params["seed"] = _seed_value(seed)
        return type(self)(**params)

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to one file (conventionally ``*`` + :attr:`file_suffix`)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement save.")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrajectoryModel:
        """Rebuild a fitted model written by :meth:`save`, without refitting."""
        raise NotImplementedError(f"{cls.__name__} does not implement load.")


def _seed_value(seed: Any) -> Any:
    """An integer drawn from a Generator; anything else as given."""
    import numpy as np

    from alsprog._random import child_seed

    if isinstance(seed, np.random.Generator):
        return child_seed(seed)
    return seed
