"""Assembling the long-format table: subjects × visits, with imaging joined in.

Owns: :func:`assemble` (validate the three inputs together, add time axes and ΔFS,
attach subject columns to every visit, join imaging sessions to the nearest visit
within a window) and :func:`match_imaging` (the session-to-visit matching on its own,
with the reason for every session left unmatched).
Leaves: reading files to :mod:`alsprog.data._read`, time arithmetic to
:mod:`alsprog.data._time`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from alsprog._validation import check_choice, check_interval
from alsprog.data._context import TableContext, strip_source
from alsprog.data._dictionary import load_dictionary
from alsprog.data._plausibility import check_plausibility
from alsprog.data._read import (
    _load,
    check_imaging_table,
    check_subjects_table,
    check_visits_table,
)
from alsprog.data._time import check_relations, compute_time_axes
from alsprog.data._validate import check_rename, rename_columns
from alsprog.errors import DataValidationError, DataWarning, Problem

__all__ = ["assemble", "match_imaging"]

logger = logging.getLogger(__name__)

TableLike: TypeAlias = pd.DataFrame | str | os.PathLike[str]


def _take(
    table: TableLike, kind: str, checker: Any, rename: dict[str, str]
) -> tuple[pd.DataFrame, TableContext, list[Problem]]:
    if isinstance(table, pd.DataFrame):
        ctx = TableContext.of(table, f"{kind} table")
        raw = rename_columns(table, rename, ctx.name) if rename else table
    elif isinstance(table, str | os.PathLike):
        raw, ctx = _load(table, rename)
    else:
        raise TypeError(
            f"`{kind}` must be a pandas DataFrame or a path; got "
            f"{type(table).__name__}."
        )
    df, probs = checker(raw, ctx, plausibility=False)
    return df, ctx, probs


def _time_pair(visits: pd.DataFrame, imaging: pd.DataFrame) -> tuple[str, str] | None:
    if "visit_date" in visits.columns and "acquisition_date" in imaging.columns:
        return "visit_date", "acquisition_date"
    if "visit_day" in visits.columns and "acquisition_day" in imaging.columns:
        return "visit_day", "acquisition_day"
    return None


def _match(
    visits: pd.DataFrame, imaging: pd.DataFrame, window_days: float
) -> pd.DataFrame:
    """One row per imaging session: matched visit position or the reason it has none."""
    pair = _time_pair(visits, imaging)
    n_img = len(imaging)
    res = pd.DataFrame(
        {
            "subject_id": imaging["subject_id"].to_numpy(),
            "session": imaging["session"].to_numpy(),
            "visit_pos": np.full(n_img, -1),
            "offset_days": np.full(n_img, np.nan),
            "reason": np.full(n_img, "", dtype=object),
        }
    )
    if pair is None:
        res["reason"] = (
            "imaging has no acquisition_date/acquisition_day on the "
            "visits' time axis (visit_date/visit_day)"
        )
        return res
    vcol, icol = pair
    v = pd.DataFrame(
        {
            "subject_id": visits["subject_id"].to_numpy(),
            "t_vis": visits[vcol].to_numpy(),
            "visit_pos": np.arange(len(visits)),
        }
    )
    i = pd.DataFrame(
        {
            "subject_id": imaging["subject_id"].to_numpy(),
            "t_img": imaging[icol].to_numpy(),
            "img_pos": np.arange(n_img),
        }
    )
    cand = i.merge(v, on="subject_id", how="inner")
    if vcol == "visit_date":
        diff = (cand["t_img"] - cand["t_vis"]).dt.total_seconds().to_numpy() / 86400.0
    else:
        diff = (cand["t_img"].astype(float) - cand["t_vis"].astype(float)).to_numpy()
    cand["offset"] = diff
    cand["absdiff"] = np.abs(diff)
    cand = cand.dropna(subset=["absdiff"])
    nearest = cand.sort_values(["img_pos", "absdiff", "visit_pos"]).drop_duplicates(
        "img_pos", keep="first"
    )
    near_dist = dict(zip(nearest["img_pos"], nearest["absdiff"], strict=True))
    ok = nearest[nearest["absdiff"] <= window_days]
    winners = ok.sort_values(["visit_pos", "absdiff", "img_pos"]).drop_duplicates(
        "visit_pos", keep="first"
    )
    win_img = set(winners["img_pos"])
    by_visit = dict(zip(winners["visit_pos"], winners["img_pos"], strict=True))
    pos = res["visit_pos"].to_numpy(copy=True)
    off = res["offset_days"].to_numpy(copy=True)
    reason = res["reason"].to_numpy(copy=True)
    sessions = imaging["session"].to_numpy()
    for k_, vp_, offset, absdiff in zip(
        ok["img_pos"].to_numpy(),
        ok["visit_pos"].to_numpy(),
        ok["offset"].to_numpy(dtype=float),
        ok["absdiff"].to_numpy(dtype=float),
        strict=True,
    ):
        k, vp = int(k_), int(vp_)
        if k in win_img:
            pos[k] = vp
            off[k] = offset
        else:
            other = sessions[by_visit[vp]]
            reason[k] = (
                f"its nearest visit ({absdiff:.0f} days away) is matched to "
                f"session {other!r}, which is closer"
            )
    for k in range(n_img):
        if pos[k] < 0 and not reason[k]:
            if imaging[icol].isna().iloc[k]:
                reason[k] = f"no {icol}"
            elif k in near_dist:
                reason[k] = (
                    f"no visit within {window_days:g} days (nearest is "
                    f"{near_dist[k]:.0f} days away)"
                )
            else:
                reason[k] = "the subject has no visits"
    res["visit_pos"], res["offset_days"], res["reason"] = pos, off, reason
    return res


def match_imaging(
    visits: pd.DataFrame, imaging: pd.DataFrame, *, window_days: float = 45
) -> pd.DataFrame:
    """Match each imaging session to the nearest clinic visit of the same subject.

    A session is matched to its nearest visit when that visit is at most
    ``window_days`` away; when two sessions share a nearest visit the closer one wins
    and the other is left unmatched.  Nothing is dropped: every session is listed.

    Parameters
    ----------
    visits : pandas.DataFrame
        Visits with ``subject_id`` and ``visit_date`` (or ``visit_day``).
    imaging : pandas.DataFrame
        Sessions with ``subject_id``, ``session`` and ``acquisition_date`` (or
        ``acquisition_day``).
    window_days : float, default 45
        Largest allowed distance in days between a scan and its visit.

    Returns
    -------
    pandas.DataFrame
        One row per session: ``subject_id, session, matched, visit_date`` (or
        ``visit_day``), ``offset_days`` (scan minus visit) and ``reason`` (empty when
        matched).

    Examples
    --------
    >>> import pandas as pd
    >>> v = pd.DataFrame({"subject_id": ["P1", "P1"],
    ...                   "visit_date": pd.to_datetime(["2020-01-01", "2020-07-01"])})
    >>> i = pd.DataFrame({"subject_id": ["P1", "P1"], "session": ["m00", "m03"],
    ...                   "acquisition_date": pd.to_datetime(["2020-01-08", "2020-04-01"])})
    >>> match_imaging(v, i)[["session", "matched", "offset_days"]]
      session  matched  offset_days
    0     m00     True          7.0
    1     m03    False          NaN
    """
    check_interval(window_days, "window_days", low=0)
    res = _match(
        visits.reset_index(drop=True),
        imaging.reset_index(drop=True),
        float(window_days),
    )
    return _report(res, visits.reset_index(drop=True))


def _report(res: pd.DataFrame, visits: pd.DataFrame) -> pd.DataFrame:
    out = res[["subject_id", "session"]].copy()
    out["matched"] = res["visit_pos"].to_numpy() >= 0
    tcol = (
        "visit_date"
        if "visit_date" in visits.columns
        else ("visit_day" if "visit_day" in visits.columns else None)
    )
    if tcol is not None:
        pos = res["visit_pos"].to_numpy()
        vals = visits[tcol].reindex(pd.RangeIndex(len(visits))).to_numpy()
        picked = pd.Series(
            vals[np.clip(pos, 0, None)] if len(vals) else np.full(len(pos), np.nan)
        )
        out[tcol] = picked.where(pos >= 0).to_numpy()
    out["offset_days"] = res["offset_days"].to_numpy()
    out["reason"] = res["reason"].to_numpy()
    return out


def _compute_delta_fs(long: pd.DataFrame, subjects: pd.DataFrame) -> pd.Series:
    """ΔFS per subject from the first visit with a total, where not given."""
    need = {"alsfrs_r_total", "months_since_onset"}
    given = (
        subjects.set_index("subject_id")["delta_fs"] if "delta_fs" in subjects else None
    )
    if not need <= set(long.columns):
        return given if given is not None else pd.Series(dtype=float)
    first = (
        long.dropna(subset=["alsfrs_r_total", "months_since_onset"])
        .sort_values(["subject_id", "months"])
        .drop_duplicates("subject_id")
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        val = (48.0 - first["alsfrs_r_total"].to_numpy()) / first[
            "months_since_onset"
        ].to_numpy()
    val = np.where(first["months_since_onset"].to_numpy() > 0, val, np.nan)
    computed = pd.Series(val, index=first["subject_id"].to_numpy())
    if given is None:
        return computed
    return given.where(given.notna(), computed.reindex(given.index))


def _order_columns(df: pd.DataFrame) -> pd.DataFrame:
    dd = load_dictionary()
    first = ["subject_id", "group"]
    known = [c for c in dd.fields if c in df.columns and c not in first]
    by_level = {
        lev: [c for c in known if dd.fields[c].level == lev]
        for lev in ("visit", "subject", "imaging")
    }
    extra = [c for c in df.columns if c not in set(first) | set(known)]
    feats = [c for c in extra if dd.is_imaging_feature(c)]
    extra = [c for c in extra if c not in feats]
    imaging_keys = [c for c in by_level["imaging"] if not dd.is_imaging_feature(c)]
    imaging_feats = [c for c in by_level["imaging"] if dd.is_imaging_feature(c)]
    cols = (
        [c for c in first if c in df.columns]
        + by_level["visit"]
        + extra
        + by_level["subject"]
        + imaging_keys
        + imaging_feats
        + feats
    )
    return df[cols]


def assemble(
    visits: TableLike,
    subjects: TableLike,
    imaging: TableLike | None = None,
    *,
    window_days: float = 45,
    unmatched: Literal["warn", "raise"] = "warn",
    today: Any = None,
    rename: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Build the long-format table: one row per subject × visit.

    The three inputs are validated together and every problem is reported at once:
    column rules of each table (and corrupted files), visits of unknown subjects,
    subjects without visits, imaging sessions of unknown subjects, and the data
    dictionary's plausibility rules across the tables (no date after ``today``, no
    visit before onset, no death before a visit or scan, ages within 0-120, onset not
    before birth, ...).  Then ``months``,
    ``months_since_onset`` and ``age`` are added, ``delta_fs`` is computed where the
    subjects table does not give it, subject columns are repeated on each visit, and
    each imaging session is joined to the nearest visit of its subject within
    ``window_days`` (see :func:`match_imaging`).

    Parameters
    ----------
    visits, subjects : pandas.DataFrame or path
        The visits and subjects tables, or CSV/Parquet files holding them.  Inputs are
        never modified.
    imaging : pandas.DataFrame or path, optional
        Imaging features, one row per subject × session.
    window_days : float, default 45
        Largest distance in days between a scan and the visit it is joined to.
    unmatched : {"warn", "raise"}, default "warn"
        What to do with sessions that match no visit: ``"warn"`` leaves them out of
        the table with a :class:`~alsprog.errors.DataWarning` naming each one (call
        :func:`match_imaging` for the full list), ``"raise"`` raises
        :class:`~alsprog.errors.DataValidationError`.
    today : datetime.date or str, optional
        The date of the plausibility check (no date may lie after it); default the
        current date.  Give it for reproducible results.
    rename : mapping of str to str, optional
        Column names of the inputs mapped to the dictionary's before they are
        checked, e.g. ``{"patient": "subject_id", "visit_month": "months"}``
        (applied to each table that has the column).

    Returns
    -------
    pandas.DataFrame
        Sorted by ``subject_id`` and ``months``; the number of unmatched sessions is
        in ``df.attrs["n_unmatched_imaging"]``.

    Raises
    ------
    DataValidationError
        Listing every problem of the three tables and their relations.

    Warns
    -----
    DataWarning
        When imaging sessions match no visit (``unmatched="warn"``).

    Examples
    --------
    >>> import pandas as pd
    >>> visits = pd.DataFrame({"subject_id": ["P1", "P1"],
    ...     "visit_date": ["2020-01-01", "2020-04-01"], "alsfrs_r_total": [39, 36]})
    >>> subjects = pd.DataFrame({"subject_id": ["P1"], "group": ["als"],
    ...     "onset_date": ["2019-01-01"]})
    >>> long = assemble(visits, subjects)
    >>> long[["months", "alsfrs_r_total", "delta_fs"]].round(2).to_numpy().tolist()
    [[0.0, 39.0, 0.75], [2.99, 36.0, 0.75]]
    """
    check_interval(window_days, "window_days", low=0)
    check_choice(unmatched, "unmatched", ("warn", "raise"))
    names = check_rename(rename)
    v, vctx, probs = _take(visits, "visits", check_visits_table, names)
    s, sctx, p = _take(subjects, "subjects", check_subjects_table, names)
    probs += p
    img = ictx = None
    if imaging is not None:
        img, ictx, p = _take(imaging, "imaging", check_imaging_table, names)
        probs += p
    probs += check_relations(v, vctx, s, sctx)
    probs += check_plausibility(
        visits=(v, vctx),
        subjects=(s, sctx),
        imaging=(img, ictx) if img is not None and ictx is not None else None,
        today=today,
    )
    if img is not None and ictx is not None:
        probs += _unknown_imaging_subjects(img, ictx, s, sctx)
    if probs:
        raise DataValidationError(probs, source=_heading(probs))
    v, p = compute_time_axes(v, vctx, s)
    if p:
        raise DataValidationError(p, source=vctx.name)
    v = v.reset_index(drop=True)
    long = v.merge(
        s, on="subject_id", how="left", validate="m:1", suffixes=("", "_subject")
    )
    if "months_since_onset" in long.columns:
        dfs = _compute_delta_fs(long, s)
        long["delta_fs"] = long["subject_id"].map(dfs).astype(float)
        base = long.loc[long["months"] == 0].drop_duplicates("subject_id")
        ombb = pd.Series(
            base["months_since_onset"].to_numpy(), index=base["subject_id"].to_numpy()
        )
        if "onset_months_before_baseline" in long.columns:
            long["onset_months_before_baseline"] = long[
                "onset_months_before_baseline"
            ].fillna(long["subject_id"].map(ombb))
        else:
            long["onset_months_before_baseline"] = long["subject_id"].map(ombb)
    n_unmatched = 0
    if img is not None and ictx is not None:
        img = img.reset_index(drop=True)
        res = _match(v, img, float(window_days))
        miss = res["visit_pos"].to_numpy() < 0
        n_unmatched = int(miss.sum())
        if n_unmatched:
            listing = [
                f"{r.subject_id} session {r.session}: {r.reason}"
                for r in res.loc[miss].itertuples(index=False)
            ]
            if unmatched == "raise":
                raise DataValidationError(
                    [
                        ictx.problem(
                            img,
                            int(k),
                            f"session {img['session'].iloc[k]!r} "
                            f"matches no visit: {res['reason'].iloc[k]}",
                            rule="unmatched",
                            column="session",
                            value=img["session"].iloc[k],
                        )
                        for k in np.flatnonzero(miss)
                    ],
                    source=ictx.name,
                )
            shown = "; ".join(listing[:10])
            more = f"; ... and {n_unmatched - 10} more" if n_unmatched > 10 else ""
            warnings.warn(
                f"{n_unmatched} imaging session(s) matched no clinic visit within "
                f"{window_days:g} days and are left out of the table: {shown}{more}. "
                "Call alsprog.data.match_imaging() for the full list or widen "
                "window_days.",
                DataWarning,
                stacklevel=2,
            )
        matched = res.loc[~miss]
        img_cols = [c for c in img.columns if c != "subject_id"]
        joined = img.loc[~miss, img_cols].copy()
        joined["imaging_offset_days"] = matched["offset_days"].to_numpy()
        joined.index = matched["visit_pos"].to_numpy()
        joined = joined.rename(
            columns={c: f"{c}_imaging" for c in img_cols if c in long.columns}
        )
        long = long.join(joined)
    long = _order_columns(long)
    long = long.sort_values(["subject_id", "months"], kind="stable").reset_index(
        drop=True
    )
    long.attrs = {}
    strip_source(long)
    long.attrs["n_unmatched_imaging"] = n_unmatched
    logger.info(
        "assembled %d rows for %d subjects (%d imaging sessions unmatched)",
        len(long),
        long["subject_id"].nunique(),
        n_unmatched,
    )
    return long


def _unknown_imaging_subjects(
    img: pd.DataFrame, ictx: TableContext, s: pd.DataFrame, sctx: TableContext
) -> list[Problem]:
    """One problem per imaging session whose subject is not in the subjects table."""
    if "subject_id" not in img.columns or "subject_id" not in s.columns:
        return []
    known = set(s["subject_id"].dropna())
    return [
        ictx.problem(
            img,
            int(pos),
            f"imaging session of subject {img['subject_id'].iloc[pos]!r}, "
            f"which is not in the subjects table ({sctx.name})",
            rule="unknown_subject",
            column="subject_id",
            value=img["subject_id"].iloc[pos],
        )
        for pos in np.flatnonzero(
            (~img["subject_id"].isin(known) & img["subject_id"].notna()).to_numpy()
        )
    ]


def _heading(probs: list[Problem]) -> str:
    sources = []
    for p in probs:
        if p.source not in sources:
            sources.append(p.source)
    return " + ".join(str(s) for s in sources)
