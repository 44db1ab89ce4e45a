"""ENCALS-style risk groups: quantiles of the prognostic index, with observed and
predicted survival by group.

Owns: :func:`risk_groups` and :class:`RiskGroups` (each subject's prognostic index
and group, the cut points, the Kaplan-Meier curve of each group beside the mean
predicted curve of its members, a table per group).
Leaves: the prognostic index and predicted survival to
:class:`~alsprog.models.SurvivalModel`; the Kaplan-Meier estimate to :mod:`._km`;
the figures to :mod:`alsprog.plots`.

Westeneng et al. (Lancet Neurol 2018) cut the ENCALS prognostic index at its
quintiles in the development cohort, from very short to very long predicted
survival; a new cohort's patients are placed by those same cut points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._validation import check_int, check_is_fitted

__all__ = ["RiskGroups", "risk_groups"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RiskGroups:
    """What :func:`risk_groups` returns.

    Attributes
    ----------
    assignments : pandas.DataFrame
        Indexed by subject: ``prognostic_index`` and ``group`` (1 = the lowest
        index: the best prognosis on the hazard and odds scales).
    cut_points : numpy.ndarray
        The ``n_groups - 1`` boundaries of the index (a subject on a boundary goes
        to the lower group).
    km : pandas.DataFrame
        The observed Kaplan-Meier curve of each group on the data's time axis
        (``group``, ``time``, ``survival``, ``lower``, ``upper``, ``n_at_risk``;
        starting at time 0 with survival 1); empty when the table has no event data.
    predicted : pandas.DataFrame
        The mean predicted survival of each group's members (``group``, ``time``,
        ``survival``) on a grid of times.
    table : pandas.DataFrame
        One row per group: ``n``, ``n_events``, ``index_min``, ``index_max``,
        ``median_observed`` (Kaplan-Meier; NaN when not reached),
        ``median_predicted`` (of the group's mean predicted curve; NaN when beyond
        the grid).
    """

    assignments: pd.DataFrame
    cut_points: Array
    km: pd.DataFrame
    predicted: pd.DataFrame
    table: pd.DataFrame


def _median_of(times: Array, surv: Array) -> float:
    below = np.flatnonzero(surv <= 0.5)
    return float(times[below[0]]) if below.size else float("nan")


def risk_groups(
    model: Any,
    table: pd.DataFrame,
    *,
    n_groups: int = 5,
    cut_points: Any = None,
    times: Any = None,
) -> RiskGroups:
    """Risk groups of a fitted :class:`~alsprog.models.SurvivalModel` on ``table``.

    Parameters
    ----------
    model : SurvivalModel
        Fitted.
    table : pandas.DataFrame
        Subjects to place (long or one row per subject): the covariates and, for
        the observed curves, the event columns of the model's formula.  Subjects
        of a long table with a missing covariate are left out.
    n_groups : int, default 5
        Quantile groups of the prognostic index of the subjects the model was
        fitted on (ENCALS: quintiles of the development cohort).
    cut_points : array_like, optional
        Boundaries of the prognostic index to use instead (e.g. published ones).
    times : array_like, optional
        Grid of the predicted curves (data's time axis); 60 points from 0 to the
        last observed time by default.

    Returns
    -------
    RiskGroups

    Examples
    --------
    >>> from alsprog.models import SurvivalModel
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(120, seed=1)
    >>> t = assemble(c.visits, c.subjects)
    >>> m = SurvivalModel("Surv(death_or_tracheostomy_months, event_observed) "
    ...                   "~ delta_fs + age_at_onset", time_origin="onset").fit(t)
    >>> g = risk_groups(m, t)
    >>> g.table.index.tolist(), len(g.cut_points)
    ([1, 2, 3, 4, 5], 4)
    """
    from alsprog.models.survival._design import observed_events
    from alsprog.models.survival._km import kaplan_meier

    check_is_fitted(model, ["params_"])
    if model.subject in table.columns:  # subjects it cannot place are left out
        keep = set(model.complete_subjects(table))
        table = table.loc[table[model.subject].astype(str).isin(keep).to_numpy()]
    pi = model.prognostic_index(table)
    pi.index = pi.index.astype(str)
    if cut_points is None:
        k = check_int(n_groups, "n_groups", low=2, high=20)
        q = np.linspace(0, 1, k + 1)[1:-1]
        cuts = np.quantile(model._fit_pi, q)
    else:
        cuts = np.sort(np.asarray(cut_points, dtype=float).ravel())
        if not np.all(np.isfinite(cuts)) or cuts.size == 0:
            raise ValueError(
                f"`cut_points` must be finite numbers; got {cut_points!r}."
            )
        k = cuts.size + 1
    group = np.searchsorted(cuts, pi.to_numpy(), side="left") + 1
    assignments = pd.DataFrame(
        {"prognostic_index": pi.to_numpy(), "group": group}, index=pi.index.astype(str)
    )
    f = model._f
    has_events = all(c in table.columns for c in (f.exit, f.event))
    obs = (
        observed_events(table, f.exit, f.event, model.subject, entry=f.entry)
        if has_events
        else pd.DataFrame(columns=["time", "event", "entry"], dtype=float)
    )
    obs = obs.loc[obs.index.intersection(assignments.index)]
    if times is None:
        hi = (
            float(obs["time"].max())
            if len(obs)
            else float(model._fit_events["exit"].max())
        )
        grid = np.linspace(0.0, hi, 60)
    else:
        grid = np.unique(np.asarray(times, dtype=float))
    pred = model.predict_survival(table, grid)
    pred = pred.assign(group=pred[model.subject].map(assignments["group"]).to_numpy())
    mean_curve = (
        pred.groupby(["group", model.time], sort=True)["survival"].mean().reset_index()
    )
    mean_curve = mean_curve.rename(columns={model.time: "time"})
    kms, rows = [], []
    for g in range(1, k + 1):
        members = assignments.index[assignments["group"] == g]
        o = obs.loc[obs.index.intersection(members)]
        med_obs = float("nan")
        if len(o):
            km = kaplan_meier(
                o["time"], o["event"], entry=o["entry"] if f.entry else None
            )
            start = pd.DataFrame(
                {"time": [0.0], "survival": [1.0], "lower": [1.0], "upper": [1.0]}
            )
            start["n_at_risk"] = len(o)
            part = pd.concat(
                [start, km[["time", "survival", "lower", "upper", "n_at_risk"]]],
                ignore_index=True,
            )
            kms.append(part.assign(group=g))
            med_obs = _median_of(km["time"].to_numpy(), km["survival"].to_numpy())
        mc = mean_curve[mean_curve["group"] == g]
        rows.append(
            {
                "group": g,
                "n": int(len(members)),
                "n_events": int(o["event"].sum()) if len(o) else 0,
                "index_min": float(pi.loc[members].min()) if len(members) else np.nan,
                "index_max": float(pi.loc[members].max()) if len(members) else np.nan,
                "median_observed": med_obs,
                "median_predicted": _median_of(
                    mc["time"].to_numpy(), mc["survival"].to_numpy()
                ),
            }
        )
    km_all = (
        pd.concat(kms, ignore_index=True)[
            ["group", "time", "survival", "lower", "upper", "n_at_risk"]
        ]
        if kms
        else pd.DataFrame(
            columns=["group", "time", "survival", "lower", "upper", "n_at_risk"]
        )
    )
    return RiskGroups(
        assignments=assignments,
        cut_points=cuts,
        km=km_all,
        predicted=mean_curve[["group", "time", "survival"]],
        table=pd.DataFrame(rows).set_index("group"),
    )
