"""Time axes of the long format: months since first visit, since onset, and age.

Owns: :func:`add_time_axes` and the cross-table checks of subjects and visits (visit
of an unknown subject, subject without visits).  1 month = 30.4375 days.
Leaves: column parsing to :mod:`alsprog.data._columns`, the order of each subject's
time line (visit before onset, death before a visit, ...) to
:mod:`alsprog.data._plausibility`, joins to :mod:`alsprog.data._assemble`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alsprog.data._context import TableContext, raise_if
from alsprog.data._dictionary import DAYS_PER_MONTH
from alsprog.errors import Problem

__all__ = ["add_time_axes"]


def _days(delta: pd.Series) -> np.ndarray:
    return delta.dt.total_seconds().to_numpy(dtype=float) / 86400.0


def check_relations(
    visits: pd.DataFrame,
    vctx: TableContext,
    subjects: pd.DataFrame,
    sctx: TableContext,
) -> list[Problem]:
    """Visits of subjects missing from the subjects table, and subjects with no visits."""
    probs: list[Problem] = []
    if "subject_id" not in visits.columns or "subject_id" not in subjects.columns:
        return probs
    known = set(subjects["subject_id"].dropna())
    vid = visits["subject_id"]
    unknown = (~vid.isin(known) & vid.notna()).to_numpy()
    for pos in np.flatnonzero(unknown):
        probs.append(
            vctx.problem(
                visits,
                int(pos),
                f"visit for subject {vid.iloc[pos]!r}, which is not in "
                f"the subjects table ({sctx.name})",
                rule="unknown_subject",
                column="subject_id",
                value=vid.iloc[pos],
            )
        )
    seen = set(vid.dropna())
    sid = subjects["subject_id"]
    for pos in np.flatnonzero((~sid.isin(seen) & sid.notna()).to_numpy()):
        probs.append(
            sctx.problem(
                subjects,
                int(pos),
                f"subject has no visits in the visits table ({vctx.name})",
                rule="no_visits",
                column="subject_id",
                value=sid.iloc[pos],
            )
        )
    return probs


def compute_time_axes(
    visits: pd.DataFrame,
    vctx: TableContext,
    subjects: pd.DataFrame | None,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Add ``months``, ``months_since_onset`` and ``age`` to validated visits."""
    out = visits.copy()
    probs: list[Problem] = []
    sid = out["subject_id"]
    if "visit_date" in out.columns and out["visit_date"].notna().any():
        t = out["visit_date"]
        first = t.groupby(sid).transform("min")
        out["months"] = _days(t - first) / DAYS_PER_MONTH
    elif "visit_day" in out.columns and out["visit_day"].notna().any():
        d = out["visit_day"].astype(float)
        out["months"] = (
            d - d.groupby(sid).transform("min")
        ).to_numpy() / DAYS_PER_MONTH
    elif "months" not in out.columns:
        raise_if(
            [
                vctx.problem(
                    out,
                    None,
                    "needs a visit_date, visit_day or months column",
                    rule="required_column",
                    column="visit_date",
                )
            ],
            vctx.name,
        )
    if subjects is None:
        return out, probs
    subj_cols = [
        c
        for c in ("onset_date", "onset_months_before_baseline", "age_at_baseline")
        if c in subjects.columns
    ]
    if not subj_cols:
        return out, probs
    info = subjects[["subject_id", *subj_cols]].drop_duplicates("subject_id")
    merged = out[["subject_id"]].merge(info, on="subject_id", how="left")
    mso = np.full(len(out), np.nan)
    if "onset_months_before_baseline" in merged.columns:
        ombb = merged["onset_months_before_baseline"].to_numpy(dtype=float)
        mso = ombb + out["months"].to_numpy(dtype=float)
    if "onset_date" in merged.columns and "visit_date" in out.columns:
        od = merged["onset_date"]
        has = od.notna().to_numpy() & out["visit_date"].notna().to_numpy()
        by_date = _days(out["visit_date"].reset_index(drop=True) - od) / DAYS_PER_MONTH
        mso = np.where(has, by_date, mso)
    if (
        "onset_date" in merged.columns
        or "onset_months_before_baseline" in merged.columns
    ):
        # a visit before onset is a plausibility rule (before_onset), checked by the
        # callers with every other rule of the time line
        out["months_since_onset"] = mso
    if "age_at_baseline" in merged.columns:
        out["age"] = (
            merged["age_at_baseline"].to_numpy(dtype=float)
            + out["months"].to_numpy(dtype=float) / 12.0
        )
    return out, probs


def add_time_axes(
    visits: pd.DataFrame,
    subjects: pd.DataFrame | None = None,
    *,
    today: Any = None,
) -> pd.DataFrame:
    """Add the long format's time columns to a visits table.

    * ``months``: months since the subject's first visit (from ``visit_date`` or
      ``visit_day``; 1 month = 30.4375 days).  A ``months`` column is kept as given
      when the table has neither.
    * ``months_since_onset``: from ``onset_date`` (with visit dates) or
      ``onset_months_before_baseline`` + ``months`` of the subjects table.
    * ``age``: ``age_at_baseline`` + months / 12.

    Parameters
    ----------
    visits : pandas.DataFrame
        Visits table (as from :func:`read_visits`).  Not modified.
    subjects : pandas.DataFrame, optional
        Subjects table for onset and age; without it only ``months`` is added.
    today : datetime.date or str, optional
        The date of the plausibility check (no date may lie after it); default the
        current date.

    Returns
    -------
    pandas.DataFrame
        A copy of ``visits`` with the new columns.

    Raises
    ------
    DataValidationError
        A visit before onset (or any other broken plausibility rule), a visit of a
        subject absent from ``subjects``, a subject without visits, or any column
        problem of either table.

    Examples
    --------
    >>> import pandas as pd
    >>> v = pd.DataFrame({"subject_id": ["P1", "P1"],
    ...                   "visit_date": ["2020-01-01", "2020-07-01"],
    ...                   "alsfrs_r_total": [40, 37]})
    >>> s = pd.DataFrame({"subject_id": ["P1"], "group": ["als"],
    ...                   "onset_date": ["2019-01-01"]})
    >>> out = add_time_axes(v, s)
    >>> out[["months", "months_since_onset"]].round(3).to_numpy().tolist()
    [[0.0, 11.992], [5.979, 17.971]]
    """
    from alsprog.data._plausibility import check_plausibility
    from alsprog.data._read import check_subjects_table, check_visits_table

    if not isinstance(visits, pd.DataFrame):
        raise TypeError(
            f"`visits` must be a pandas DataFrame; got {type(visits).__name__}."
        )
    vctx = TableContext.of(visits, "visits table")
    v, probs = check_visits_table(visits, vctx, plausibility=False)
    s = sctx = None
    if subjects is not None:
        if not isinstance(subjects, pd.DataFrame):
            raise TypeError(
                f"`subjects` must be a pandas DataFrame; got {type(subjects).__name__}."
            )
        sctx = TableContext.of(subjects, "subjects table")
        s, p = check_subjects_table(subjects, sctx, plausibility=False)
        probs += p
        probs += check_relations(v, vctx, s, sctx)
    probs += check_plausibility(
        visits=(v, vctx),
        subjects=(s, sctx) if s is not None and sctx is not None else None,
        today=today,
    )
    raise_if(probs)
    out, p = compute_time_axes(v, vctx, s)
    raise_if(p, vctx.name)
    return out
