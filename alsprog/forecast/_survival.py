"""Scores of survival predictions, and their backtest on held-out patients.

Owns: :func:`evaluate_survival` (at each horizon: Harrell's and Uno's C, the
time-dependent AUC, the Brier score with inverse-probability-of-censoring weights
and its Kaplan-Meier reference, the integrated Brier score, the calibration slope
and observed-vs-predicted survival by risk group; at a landmark, on the patients
still event-free there, scored on the window after it, as JMbayes2's
``tvAUC``/``tvBrier`` with IPCW weights), :class:`SurvivalScores`, and
:func:`backtest_survival` (split patients, fit each model on one part, predict the
others' survival from their baseline or, at a landmark, from their visits up to it,
score).
Leaves: the numerics of the scores to :mod:`alsprog.models.survival._scores`, the
Kaplan-Meier estimate to :mod:`alsprog.models.survival._km`; the models'
predictions to the models (``predict_survival``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import DataValidationError, ModelSpecificationError, Problem
from alsprog.models.survival._design import observed_events

__all__ = ["SurvivalScores", "backtest_survival", "evaluate_survival"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SurvivalScores:
    """What :func:`evaluate_survival` returns.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per horizon (and ``model`` when the predictions have one):
        ``horizon``, ``landmark``, ``n`` (patients event-free at the landmark),
        ``n_cases`` (events by the horizon), ``n_controls`` (event-free after it),
        ``harrell_c``, ``uno_c`` (pairs up to the horizon, ranked by the predicted
        risk at it), ``auc``, ``brier``, ``brier_km`` (everyone given the
        Kaplan-Meier risk: the reference to beat), ``ibs`` (integrated Brier score
        from the first horizon to this one), ``calibration_slope`` (1 is
        calibrated; < 1 too extreme, > 1 too timid).
    calibration : pandas.DataFrame
        One row per horizon and risk group (quantile groups of the predicted risk at
        the horizon, 1 = lowest risk): ``n``, ``predicted`` (mean predicted
        event-free probability), ``observed`` (Kaplan-Meier), ``lower``, ``upper``
        (its 95 % interval).
    """

    scores: pd.DataFrame
    calibration: pd.DataFrame

    def __str__(self) -> str:
        return self.scores.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def _calibration_slope(t: Array, e: Array, surv: Array, horizon: float) -> float:
    """Cox regression of the outcome, censored at the horizon, on the predicted
    ``log(-log S(horizon))``: 1 for calibrated predictions (for a
    proportional-hazards model, its prognostic index's slope)."""
    from alsprog.models.survival._cox import cox_fit

    s = np.clip(surv, 1e-12, 1 - 1e-12)
    x = np.log(-np.log(s))
    ev = (e > 0) & (t <= horizon)
    if ev.sum() < 2 or np.ptp(x) == 0:
        return float("nan")
    fit = cox_fit(np.minimum(t, horizon), ev, (x - x.mean())[:, None], ties="breslow")
    return float(fit.coef[0])


def _groups(risk: Array, n_groups: int) -> npt.NDArray[np.int64]:
    """Quantile groups 1..n_groups of ``risk`` (ties kept together)."""
    ranks = pd.Series(risk).rank(method="first").to_numpy()
    return np.minimum((ranks - 1) * n_groups // len(risk), n_groups - 1).astype(int) + 1


def evaluate_survival(
    predictions: pd.DataFrame,
    actual: pd.DataFrame,
    *,
    event_time: str = "death_or_tracheostomy_months",
    event: str = "event_observed",
    landmark: float = 0.0,
    n_groups: int = 5,
    subject: str = "subject_id",
    time: str | None = None,
) -> SurvivalScores:
    """Score predicted survival probabilities against observed event times.

    At each predicted time ``h`` (a horizon; times on the event-time axis, months
    from the first visit for the data dictionary's columns), among the patients
    event-free at ``landmark``: cases had the event in ``(landmark, h]``, controls
    are event-free after ``h``, and patients censored in between carry no weight;
    cases are weighted by the inverse of the censoring survival at their event
    time, controls at ``h`` (Kaplan-Meier of the censoring, recomputed on those at
    risk at the landmark).  This is ``riskRegression::Score`` (``cens.model =
    "km"``) on the landmark data set, and JMbayes2's ``tvAUC``/``tvBrier`` with
    ``type_weights = "IPCW"``.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The subject column, the time column (``time``; by default the one column
        other than the subject, ``survival``, ``lower``, ``upper`` and ``model``)
        and ``survival`` (probability of being event-free at that time, given
        event-free at ``landmark``), e.g. from
        :meth:`~alsprog.models.SurvivalModel.predict_survival`; every subject at
        every time; optional ``model`` column scores each model apart.
    actual : pandas.DataFrame
        The subjects' ``event_time`` and ``event`` (a long table's rows repeat
        them; subjects without event data are left out).
    event_time, event : str
        Columns of ``actual``.
    landmark : float, default 0
        Patients with an event or censored by then are left out; the window after
        it is scored.
    n_groups : int, default 5
        Risk groups of the calibration table.
    subject, time : str

    Returns
    -------
    SurvivalScores

    Examples
    --------
    >>> import pandas as pd
    >>> from alsprog.models import SurvivalModel
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(120, seed=3)
    >>> t = assemble(c.visits, c.subjects)
    >>> m = SurvivalModel("Surv(death_or_tracheostomy_months, event_observed) ~ delta_fs",
    ...                   time_origin="onset").fit(t)
    >>> s = evaluate_survival(m.predict_survival(t, [6, 12, 18]), t)
    >>> s.scores.columns[:4].tolist()
    ['horizon', 'landmark', 'n', 'n_cases']
    """
    from alsprog.models.survival._km import kaplan_meier, km_at
    from alsprog.models.survival._scores import auc_brier, concordance

    for name, v in (("predictions", predictions), ("actual", actual)):
        if not isinstance(v, pd.DataFrame):
            raise TypeError(
                f"`{name}` must be a pandas DataFrame; got {type(v).__name__}."
            )
    if "model" in predictions.columns:
        parts = [
            _with_model(
                evaluate_survival(
                    p.drop(columns="model"),
                    actual,
                    event_time=event_time,
                    event=event,
                    landmark=landmark,
                    n_groups=n_groups,
                    subject=subject,
                    time=time,
                ),
                str(name),
            )
            for name, p in predictions.groupby("model", sort=False)
        ]
        return SurvivalScores(
            pd.concat([p.scores for p in parts], ignore_index=True),
            pd.concat([p.calibration for p in parts], ignore_index=True),
        )
    time = _time_column(predictions, subject, time)
    missing = [c for c in (subject, "survival") if c not in predictions.columns]
    if missing:
        raise ModelSpecificationError(
            f"`predictions` lacks column(s) {missing}; it has "
            f"{list(predictions.columns)}."
        )
    obs = observed_events(actual, event_time, event, subject)
    wide = predictions.pivot_table(
        index=predictions[subject].astype(str),
        columns=time,
        values="survival",
        aggfunc="first",
    )
    horizons = np.asarray(wide.columns, dtype=float)
    if np.any(horizons <= landmark):
        raise ValueError(
            f"every predicted time must be after the landmark {landmark:g}; got "
            f"{horizons[horizons <= landmark].tolist()}."
        )
    at_risk = obs[obs["time"] > landmark]
    lost = at_risk.index.difference(wide.index)
    if len(lost):
        raise DataValidationError(
            [
                Problem(
                    "event-free at the landmark but has no predictions",
                    rule="required",
                    subject_id=str(s),
                    column="survival",
                )
                for s in lost[:20]
            ]
        )
    S = wide.loc[at_risk.index].to_numpy(dtype=float)
    if np.isnan(S).any():
        i, j = np.argwhere(np.isnan(S))[0]
        raise DataValidationError(
            [
                Problem(
                    f"no prediction at time {horizons[j]:g}",
                    rule="required",
                    subject_id=str(at_risk.index[i]),
                    column="survival",
                )
            ]
        )
    t = at_risk["time"].to_numpy(float) - landmark
    e = at_risk["event"].to_numpy(float)
    h = horizons - landmark
    ab = auc_brier(t, e, 1.0 - S, h)
    rows, cal = [], []
    for k, hz in enumerate(horizons):
        risk = 1.0 - S[:, k]
        rows.append(
            {
                "horizon": float(hz),
                "landmark": float(landmark),
                "n": len(t),
                "n_cases": int(np.sum((e > 0) & (t <= h[k]))),
                "n_controls": int(np.sum(t > h[k])),
                "harrell_c": concordance(t, e, risk, tau=h[k]),
                "uno_c": concordance(t, e, risk, weights="uno", tau=h[k]),
                "auc": float(ab.auc[k]),
                "brier": float(ab.brier[k]),
                "brier_km": float(ab.brier_null[k]),
                "ibs": float(ab.ibs[k]),
                "calibration_slope": _calibration_slope(t, e, S[:, k], h[k]),
            }
        )
        g = _groups(risk, int(n_groups))
        for grp in range(1, int(n_groups) + 1):
            sel = g == grp
            if not sel.any():
                continue
            km = kaplan_meier(t[sel], e[sel])
            cal.append(
                {
                    "horizon": float(hz),
                    "group": grp,
                    "n": int(sel.sum()),
                    "predicted": float(S[sel, k].mean()),
                    "observed": float(km_at(km, [h[k]])[0]),
                    "lower": float(km_at(km, [h[k]], "lower")[0]),
                    "upper": float(km_at(km, [h[k]], "upper")[0]),
                }
            )
    return SurvivalScores(pd.DataFrame(rows), pd.DataFrame(cal))


def _with_model(s: SurvivalScores, name: str) -> SurvivalScores:
    return SurvivalScores(
        s.scores.assign(model=name)[["model", *s.scores.columns]],
        s.calibration.assign(model=name)[["model", *s.calibration.columns]],
    )


def _time_column(predictions: pd.DataFrame, subject: str, time: str | None) -> str:
    if time is not None:
        if time not in predictions.columns:
            raise ModelSpecificationError(
                f"`time` {time!r} is not a column of the predictions "
                f"({list(predictions.columns)})."
            )
        return time
    rest = [
        c
        for c in predictions.columns
        if c not in (subject, "survival", "lower", "upper", "model")
    ]
    if len(rest) != 1:
        raise ModelSpecificationError(
            f"Cannot tell the time column of the predictions among {rest}; pass "
            "`time=`."
        )
    return str(rest[0])


def _event_columns(models: Mapping[str, Any]) -> tuple[str, str]:
    """The event-time and event columns every model reads (they must agree)."""
    cols = set()
    for name, m in models.items():
        if hasattr(m, "event_time") and hasattr(m, "event"):  # JointModel
            cols.add((str(m.event_time), str(m.event)))
        elif hasattr(m, "formula") and str(m.formula).lstrip().startswith("Surv"):
            from alsprog.models.survival._design import parse_surv_formula

            f = parse_surv_formula(m.formula)
            cols.add((f.exit, f.event))
        else:
            raise ModelSpecificationError(
                f"model {name!r} ({type(m).__name__}) does not predict survival: "
                "use SurvivalModel or JointModel."
            )
    if len(cols) != 1:
        raise ModelSpecificationError(
            f"The models read different event columns ({sorted(cols)}); score them "
            "on one outcome."
        )
    return cols.pop()


def backtest_survival(
    data: Any,
    models: Mapping[str, Any],
    *,
    times: Sequence[float] = (6.0, 12.0, 18.0, 24.0),
    landmark: float = 0.0,
    test_fraction: float = 0.3,
    n_groups: int = 5,
    seed: Any = None,
    subject: str = "subject_id",
    time: str = "months",
    return_predictions: bool = False,
) -> Any:
    """Split patients, fit each survival model on one part, score it on the others.

    Each held-out patient still event-free at ``landmark`` (with the covariates
    every model reads) is predicted from what is
    known at that time: a :class:`~alsprog.models.SurvivalModel` from their
    baseline covariates (given event-free at the landmark), a
    :class:`~alsprog.models.JointModel` from their visits up to the landmark as well
    (its dynamic prediction), and :func:`evaluate_survival` scores the window after
    the landmark (the landmark protocol of JMbayes2's ``tvAUC``/``tvBrier``).

    Parameters
    ----------
    data : Cohort or pandas.DataFrame
        A simulated :class:`~alsprog.simulate.Cohort` (assembled here) or an
        assembled long table; patients without event data (healthy controls) are
        left out.
    models : mapping of str to estimator
        Unfitted models (cloned; the objects given are not changed).
    times : sequence of float, default (6, 12, 18, 24)
        Horizons on the event-time axis (months from the first visit), after the
        landmark.
    landmark : float, default 0
    test_fraction : float, default 0.3
    n_groups : int, default 5
    seed : int, optional
        Seed of the split (the same seed, the same split).
    subject, time : str
        The subject and visit-time columns of the table.
    return_predictions : bool, default False
        Also return every prediction (column ``model``).

    Returns
    -------
    SurvivalScores or (SurvivalScores, pandas.DataFrame)

    Examples
    --------
    >>> from alsprog.models import SurvivalModel
    >>> from alsprog.simulate import simulate_cohort
    >>> f = "Surv(death_or_tracheostomy_months, event_observed) ~ delta_fs"
    >>> s = backtest_survival(simulate_cohort(120, seed=4),
    ...                       {"rp": SurvivalModel(f, time_origin="onset")},
    ...                       times=[12, 24], seed=1)
    >>> s.scores["model"].tolist()
    ['rp', 'rp']
    """
    from sklearn.base import clone

    from alsprog._random import as_generator
    from alsprog._validation import check_interval

    if not models:
        raise ValueError("`models` is empty: give at least one model to score.")
    table = _as_table(data)
    event_time, event = _event_columns(models)
    test_fraction = check_interval(
        test_fraction,
        "test_fraction",
        low=0,
        high=1,
        low_closed=False,
        high_closed=False,
    )
    landmark = check_interval(landmark, "landmark", low=0)
    if subject not in table.columns:
        raise ModelSpecificationError(
            f"The table has no subject column {subject!r}; it has "
            f"{', '.join(map(str, table.columns))}."
        )
    obs = observed_events(table, event_time, event, subject)
    ids = np.asarray(obs.index, dtype=object)
    rng = as_generator(seed)
    n_test = int(round(test_fraction * len(ids)))
    if n_test < 1 or n_test >= len(ids):
        raise ValueError(
            f"`test_fraction` {test_fraction:g} of {len(ids)} patients leaves an empty "
            "training or test set."
        )
    test_ids = set(rng.choice(ids, n_test, replace=False).tolist())
    key = table[subject].astype(str)
    is_test = key.isin(test_ids).to_numpy()
    known = key.isin(set(ids.tolist())).to_numpy()
    train, test = table.loc[known & ~is_test], table.loc[known & is_test]
    alive = obs.index[(obs["time"] > landmark) & obs.index.isin(test_ids)]
    test_alive = test.loc[test[subject].astype(str).isin(set(alive))]
    horizons = [float(h) for h in times]
    fitted = {name: clone(model).fit(train) for name, model in models.items()}
    # every model is scored on the same patients: those each can predict
    usable = set(alive)
    for est in fitted.values():
        if hasattr(est, "complete_subjects"):
            usable &= set(est.complete_subjects(test_alive))
    test_alive = test_alive.loc[test_alive[subject].astype(str).isin(usable)]
    dropped = set(alive) - usable
    test = test.loc[~test[subject].astype(str).isin(dropped)]
    preds = []
    for name, est in fitted.items():
        if hasattr(est, "event_time"):  # a joint model: its visits up to the landmark
            visits = pd.to_numeric(test_alive[time], errors="coerce")
            history = test_alive.loc[(visits <= landmark).to_numpy()]
            p = est.predict_survival(history, horizons, given_alive_at=landmark)
        else:
            p = est.predict_survival(test_alive, horizons, given_alive_at=landmark)
        p = p.rename(columns={est.time if hasattr(est, "time") else time: "time"})
        preds.append(p[[subject, "time", "survival"]].assign(model=str(name)))
    all_preds = pd.concat(preds, ignore_index=True)
    scores = evaluate_survival(
        all_preds,
        test,
        event_time=event_time,
        event=event,
        landmark=landmark,
        n_groups=n_groups,
        subject=subject,
        time="time",
    )
    return (scores, all_preds) if return_predictions else scores


def _as_table(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "visits") and hasattr(data, "subjects"):
        from alsprog.data import assemble

        return assemble(data.visits, data.subjects)
    raise TypeError(
        f"`data` must be a Cohort or an assembled long table; got {type(data).__name__}."
    )
