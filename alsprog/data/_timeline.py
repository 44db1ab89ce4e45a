"""Each subject's time line: the points plausibility rules compare.

Owns: building the points of each subject's time line (birth, symptom onset, diagnosis,
clinic visits, imaging sessions, death or last contact, and today) from the subjects,
visits and imaging tables, or from one long-format table, on one months axis from the
first visit (and by date where the tables have dates), and the text each point shows
in a message (:data:`POINTS`, one builder per point).
Leaves: the rules that compare points, and the problems they report, to
:mod:`alsprog.data._plausibility`; the rules themselves to the schema
(:mod:`alsprog.data._dictionary`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alsprog.data._context import TableContext
from alsprog.data._dictionary import DAYS_PER_MONTH

__all__ = ["POINTS", "Table"]

Table = tuple[pd.DataFrame, TableContext]


@dataclass
class _Frame:
    """The tables a time line is built from (``long`` plays all three roles)."""

    tables: list[Table]
    subj: pd.DataFrame  # one row per subject: sid, tab, pos and subject-level values
    vis: (
        pd.DataFrame | None
    )  # one row per visit: sid, tab, pos, t, date, day, column, value
    scans: pd.DataFrame | None
    today: pd.Timestamp


def _points(
    base: pd.DataFrame,
    keep: Any,
    *,
    t: Any,
    date: Any,
    column: Any,
    tpl: Any,
    value: Any = np.nan,
    x: Any = np.nan,
    y: Any = np.nan,
    s: Any = "",
    value_is_date: Any = False,
) -> pd.DataFrame:
    """A points table from the rows ``keep`` of ``base`` (which has sid, tab, pos).

    A point's text is rendered only when it appears in a message: ``tpl`` is a
    template over the fields of :func:`_text` (``{date}``, ``{on}``, ``{about}``,
    ``{x}``, ``{y}``, ``{t1}``, ``{y1}``, ``{s}``, ``{age}``).
    """
    rows = np.flatnonzero(np.broadcast_to(np.asarray(keep, dtype=bool), len(base)))
    n = len(rows)

    def arr(v: Any, dtype: Any = object) -> Any:
        if np.ndim(v) == 0:
            out = np.full(n, v, dtype=dtype)
        else:
            out = np.asarray(v, dtype=dtype)[rows]
        # object columns stay object (pandas would convert strings to its str dtype,
        # which costs more than every rule together)
        return pd.Series(out, dtype=object, copy=False) if dtype is object else out

    return pd.DataFrame(
        {
            "sid": arr(base["sid"].to_numpy(dtype=object)),
            "t": arr(t, float),
            "date": arr(date, "datetime64[ns]"),
            "tab": base["tab"].to_numpy(dtype=int)[rows],
            "pos": base["pos"].to_numpy(dtype=int)[rows],
            "column": arr(column),
            "value": arr(value),
            "vdate": arr(value_is_date, bool),
            "x": arr(x, float),
            "y": arr(y, float),
            "s": arr(s),
            "tpl": arr(tpl),
        }
    )


def _d(x: Any) -> str:
    return "" if pd.isna(x) else f"{pd.Timestamp(x):%Y-%m-%d}"


def _g(x: float) -> str:
    return f"{x:g}"


def _text(row: pd.Series, side: str) -> str:
    """The text of one point of a pair (``side`` "a" or "b")."""
    date = _d(row[f"date_{side}"])
    x, y = float(row[f"x_{side}"]), float(row[f"y_{side}"])
    t = float(row[f"t_{side}"])
    return str(row[f"tpl_{side}"]).format(
        date=date,
        on=f" on {date}" if date else "",
        about=f" (about {date})" if date else "",
        x=_g(x),
        y=_g(y),
        t1=f"{t:.1f}",
        y1=f"{y:.1f}",
        s=row[f"s_{side}"],
        age=f" (age {_g(x)})" if np.isfinite(x) else "",
    )


def _months_to_days(m: Any) -> Any:
    return pd.to_timedelta(np.floor(np.asarray(m, dtype=float) * DAYS_PER_MONTH), "D")


def _col(df: pd.DataFrame, name: str) -> pd.Series | None:
    return df[name] if name in df.columns else None


def _num(df: pd.DataFrame, name: str) -> np.ndarray:
    s = _col(df, name)
    if s is None:
        return np.full(len(df), np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


def _dates(df: pd.DataFrame, name: str) -> np.ndarray:
    s = _col(df, name)
    if s is None or not pd.api.types.is_datetime64_any_dtype(s.dtype):
        return np.full(len(df), np.datetime64("NaT"), dtype="datetime64[ns]")
    return s.to_numpy(dtype="datetime64[ns]")


def _valid_ids(df: pd.DataFrame) -> np.ndarray:
    sid = df["subject_id"]
    text = sid.astype(str).str.strip()
    return (sid.notna() & (text != "") & (text != "None")).to_numpy()


def _visit_frame(df: pd.DataFrame, tab: int, long: bool) -> pd.DataFrame | None:
    """Visits on a months axis from the first visit, and each subject's anchors."""
    if "subject_id" not in df.columns or len(df) == 0:
        return None
    ok = _valid_ids(df)
    v = pd.DataFrame(
        {
            "sid": df["subject_id"].astype(str).to_numpy(dtype=object),
            "tab": tab,
            "pos": np.arange(len(df)),
            "date": _dates(df, "visit_date"),
            "day": _num(df, "visit_day"),
            "months": _num(df, "months"),
        }
    )
    has_dates = "visit_date" in df.columns and bool(pd.notna(v["date"]).any())
    has_days = "visit_day" in df.columns and bool(np.isfinite(v["day"]).any())
    if has_dates:
        first = v.groupby("sid")["date"].transform("min")
        t = (v["date"] - first).dt.total_seconds().to_numpy() / 86400 / DAYS_PER_MONTH
        axis = "visit_date"
    elif has_days:
        t = (v["day"] - v.groupby("sid")["day"].transform("min")).to_numpy()
        t = t / DAYS_PER_MONTH
        axis = "visit_day"
    elif "months" in df.columns:
        t = v["months"].to_numpy()
        axis = "months"
    else:
        return None
    if long and "months" in df.columns:
        # a long table's months is the time the models use: keep it
        t = np.where(np.isfinite(v["months"]), v["months"], t)
    v["t"] = t
    v["axis"] = axis
    # the date (or day number) at months 0 of each subject, consistent with t
    v["date0"] = v["date"] - _months_to_days(np.where(np.isfinite(t), t, np.nan))
    v["day0"] = v["day"] - t * DAYS_PER_MONTH
    return v.loc[ok].reset_index(drop=True)


def _anchor(vis: pd.DataFrame | None, column: str) -> pd.Series:
    if vis is None or len(vis) == 0:
        return pd.Series(dtype=object)
    first = vis.dropna(subset=["t"]).sort_values(["sid", "t"], kind="stable")
    return first.drop_duplicates("sid").set_index("sid")[column]


def _subject_frame(df: pd.DataFrame, tab: int, long: bool) -> pd.DataFrame | None:
    if "subject_id" not in df.columns or len(df) == 0:
        return None
    ok = _valid_ids(df)
    s = pd.DataFrame(
        {
            "sid": df["subject_id"].astype(str).to_numpy(dtype=object),
            "tab": tab,
            "pos": np.arange(len(df)),
            "onset_date": _dates(df, "onset_date"),
            "ombb": _num(df, "onset_months_before_baseline"),
            "age_o": _num(df, "age_at_onset"),
            "age_b": _num(df, "age_at_baseline"),
            "delay": _num(df, "diagnostic_delay_months"),
            "event": _num(df, "death_or_tracheostomy_months"),
        }
    )
    obs = _col(df, "event_observed")
    if obs is not None and pd.api.types.is_bool_dtype(obs.dtype):
        flags = obs.astype("boolean")
        s["observed"] = np.where(
            flags.isna().to_numpy(), np.nan, flags.fillna(False).to_numpy(dtype=float)
        )
    else:
        s["observed"] = np.nan
    if long:
        # a long table: birth from the age at a visit, when the table has it
        s["age_row"] = _num(df, "age")
        s["months_row"] = _num(df, "months")
    s = s.loc[ok]
    if not long:
        return s.drop_duplicates("sid").reset_index(drop=True)
    first = s.groupby("sid", sort=False).first()  # first non-missing value
    first["pos"] = s.groupby("sid", sort=False)["pos"].min()
    aged = s.dropna(subset=["age_row", "months_row"]).drop_duplicates("sid")
    aged = aged.set_index("sid")
    first["birth_t"] = (aged["months_row"] - 12.0 * aged["age_row"]).reindex(
        first.index
    )
    first["birth_age"] = aged["age_row"].reindex(first.index)
    first["birth_at"] = aged["months_row"].reindex(first.index)
    return first.reset_index()


def _scan_frame(
    df: pd.DataFrame, tab: int, vis: pd.DataFrame | None, long: bool
) -> pd.DataFrame | None:
    if "subject_id" not in df.columns or len(df) == 0:
        return None
    if not {"acquisition_date", "acquisition_day"} & set(df.columns):
        return None  # no scan dates: no scan points
    date = _dates(df, "acquisition_date")
    day = _num(df, "acquisition_day")
    keep = _valid_ids(df)
    if long:
        keep = keep & (pd.notna(date) | np.isfinite(day))
    sc = pd.DataFrame(
        {
            "sid": df["subject_id"].astype(str).to_numpy(dtype=object),
            "tab": tab,
            "pos": np.arange(len(df)),
            "date": date,
            "day": day,
            "session": (
                df["session"].astype(str).to_numpy(dtype=object)
                if "session" in df.columns
                else ""
            ),
        }
    )
    t = np.full(len(df), np.nan)
    if long and "months" in df.columns:
        t = _num(df, "months") + _num(df, "imaging_offset_days") / DAYS_PER_MONTH
    date0 = _anchor(vis, "date0")
    day0 = _anchor(vis, "day0")
    if len(date0):
        d0 = pd.to_datetime(sc["sid"].map(date0))
        by_date = (sc["date"] - d0).dt.total_seconds().to_numpy() / 86400
        t = np.where(np.isfinite(t), t, by_date / DAYS_PER_MONTH)
    if len(day0):
        by_day = sc["day"].to_numpy() - sc["sid"].map(day0).to_numpy(dtype=float)
        t = np.where(np.isfinite(t), t, by_day / DAYS_PER_MONTH)
    sc["t"] = t
    return sc.loc[keep].reset_index(drop=True)


def _build(
    *,
    visits: Table | None,
    subjects: Table | None,
    imaging: Table | None,
    long: Table | None,
    today: pd.Timestamp,
) -> _Frame:
    tables: list[Table] = []
    vis = subj = scans = None
    if long is not None:
        tables.append(long)
        vis = _visit_frame(long[0], 0, True)
        subj = _subject_frame(long[0], 0, True)
        scans = _scan_frame(long[0], 0, vis, True)
    else:
        if visits is not None:
            tables.append(visits)
            vis = _visit_frame(visits[0], len(tables) - 1, False)
        if subjects is not None:
            tables.append(subjects)
            subj = _subject_frame(subjects[0], len(tables) - 1, False)
        if imaging is not None:
            tables.append(imaging)
            scans = _scan_frame(imaging[0], len(tables) - 1, vis, False)
    if subj is None:
        subj = pd.DataFrame({"sid": pd.Series(dtype=object)})
    date0 = _anchor(vis, "date0")
    subj["date0"] = (
        pd.to_datetime(subj["sid"].map(date0)).to_numpy(dtype="datetime64[ns]")
        if len(date0)
        else np.full(len(subj), np.datetime64("NaT"), dtype="datetime64[ns]")
    )
    return _Frame(tables, subj, vis, scans, today)


def _has(df: pd.DataFrame | None, *cols: str) -> bool:
    """Whether ``df`` has every column of ``cols`` with at least one value."""
    return (
        df is not None
        and len(df) > 0
        and all(c in df.columns and bool(df[c].notna().any()) for c in cols)
    )


def _p_today(fr: _Frame) -> pd.DataFrame | None:
    base = pd.DataFrame({"sid": [None], "tab": [-1], "pos": [-1]})
    return _points(
        base,
        [True],
        t=np.nan,
        date=fr.today.to_datetime64(),
        column=None,
        tpl="today ({date})",
    )


def _onset_by_date(fr: _Frame) -> pd.DataFrame | None:
    s = fr.subj
    if not _has(s, "onset_date"):
        return None
    od = pd.to_datetime(s["onset_date"])
    d0 = pd.to_datetime(s["date0"])
    t = (od - d0).dt.total_seconds().to_numpy() / 86400 / DAYS_PER_MONTH
    return _points(
        s,
        od.notna().to_numpy(),
        t=t,
        date=od.to_numpy(),
        column="onset_date",
        value_is_date=True,
        tpl="onset {date}",
    )


def _onset_by_months(fr: _Frame) -> pd.DataFrame | None:
    s = fr.subj
    if not _has(s, "ombb"):
        return None
    m = s["ombb"].to_numpy(dtype=float)
    d0 = pd.to_datetime(s["date0"])
    date = (d0 - _months_to_days(np.where(np.isfinite(m), m, np.nan))).to_numpy()
    return _points(
        s,
        np.isfinite(m),
        t=-m,
        date=date,
        column="onset_months_before_baseline",
        value=m,
        x=m,
        tpl="onset {x} months before the first visit",
    )


def _p_onset(fr: _Frame) -> pd.DataFrame | None:
    by_date, by_months = _onset_by_date(fr), _onset_by_months(fr)
    if by_date is None:
        return by_months
    if by_months is None:
        return by_date
    # onset_date wins where it can be placed on the months axis (as add_time_axes)
    placed = by_date[np.isfinite(by_date["t"])]
    rest = by_months[~by_months["sid"].isin(set(placed["sid"]))]
    unplaced = by_date[
        ~np.isfinite(by_date["t"]) & ~by_date["sid"].isin(set(rest["sid"]))
    ]
    return pd.concat([placed, rest, unplaced], ignore_index=True)


def _p_onset_by_age(fr: _Frame) -> pd.DataFrame | None:
    s = fr.subj
    if not _has(s, "age_o", "age_b"):
        return None
    ao, ab = s["age_o"].to_numpy(dtype=float), s["age_b"].to_numpy(dtype=float)
    return _points(
        s,
        np.isfinite(ao) & np.isfinite(ab),
        t=-12.0 * (ab - ao),
        date=np.datetime64("NaT"),
        column="age_at_onset",
        value=ao,
        x=ao,
        y=ab,
        tpl="onset at age {x} (age_at_onset; age_at_baseline {y})",
    )


def _p_diagnosis(fr: _Frame) -> pd.DataFrame | None:
    onset = _p_onset(fr)
    if onset is None or len(onset) == 0 or not _has(fr.subj, "delay"):
        return None
    delay = fr.subj.drop_duplicates("sid").set_index("sid")["delay"]
    o = onset.copy()
    dl = o["sid"].map(delay).to_numpy(dtype=float)
    o["t"] = o["t"].to_numpy() + dl
    o["date"] = (
        pd.to_datetime(o["date"]) + _months_to_days(np.where(np.isfinite(dl), dl, 0))
    ).to_numpy()
    o["column"], o["value"], o["vdate"], o["x"] = (
        "diagnostic_delay_months",
        dl,
        False,
        dl,
    )
    o["tpl"] = "diagnosis {x} months after onset{about}"
    return o[np.isfinite(dl)].reset_index(drop=True)


def _p_birth(fr: _Frame) -> pd.DataFrame | None:
    s = fr.subj
    parts = []
    done: set[Any] = set()
    if _has(s, "birth_t"):
        bt = s["birth_t"].to_numpy(dtype=float)
        p = _points(
            s,
            np.isfinite(bt),
            t=bt,
            date=np.datetime64("NaT"),
            column="age",
            value=s["birth_age"].to_numpy(dtype=float),
            x=s["birth_age"].to_numpy(dtype=float),
            y=s["birth_at"].to_numpy(dtype=float),
            tpl="birth (age {x} at month {y1})",
        )
        parts.append(p)
        done |= set(p["sid"])
    if _has(s, "age_b"):
        ab = s["age_b"].to_numpy(dtype=float)
        p = _points(
            s,
            np.isfinite(ab) & ~s["sid"].isin(done).to_numpy(),
            t=-12.0 * ab,
            date=np.datetime64("NaT"),
            column="age_at_baseline",
            value=ab,
            x=ab,
            tpl="birth (age_at_baseline {x})",
        )
        parts.append(p)
        done |= set(p["sid"])
    onset = _p_onset(fr)
    if onset is not None and len(onset) and _has(s, "age_o"):
        ages = s.drop_duplicates("sid").set_index("sid")["age_o"]
        ao = onset["sid"].map(ages).to_numpy(dtype=float)
        o = onset.copy()
        o["t"] = o["t"].to_numpy() - 12.0 * ao
        o["date"] = pd.NaT
        o["column"], o["value"], o["vdate"], o["x"] = "age_at_onset", ao, False, ao
        o["tpl"] = "birth (age_at_onset {x})"
        parts.append(o[np.isfinite(ao) & ~o["sid"].isin(done).to_numpy()])
    if not parts:
        return None
    return pd.concat(parts, ignore_index=True)


def _p_first_visit(fr: _Frame) -> pd.DataFrame | None:
    s = fr.subj
    if len(s) == 0:
        return None
    ab = s["age_b"].to_numpy(dtype=float) if "age_b" in s else np.nan
    return _points(
        s,
        np.ones(len(s), bool),
        t=0.0,
        date=s["date0"].to_numpy(),
        column=None,
        x=ab,
        tpl="the first visit{on}{age}",
    )


_VISIT_TPL = {
    "visit_date": "{s} on {date}",
    "visit_day": "{s} on day {x}",
    "months": "{s} at month {t1}",
}


def _visit_points(v: pd.DataFrame, label: str) -> pd.DataFrame:
    axis = str(v["axis"].iloc[0])
    value = v["day"].to_numpy() if axis == "visit_day" else v["t"].to_numpy()
    return _points(
        v,
        np.ones(len(v), bool),
        t=v["t"].to_numpy(),
        date=v["date"].to_numpy(),
        column=axis,
        value=value,
        value_is_date=axis == "visit_date",
        x=v["day"].to_numpy(),
        s=label,
        tpl=_VISIT_TPL[axis],
    )


def _p_visit(fr: _Frame) -> pd.DataFrame | None:
    v = fr.vis
    if v is None or len(v) == 0:
        return None
    return _visit_points(v, "visit")


def _p_last_visit(fr: _Frame) -> pd.DataFrame | None:
    v = fr.vis
    if v is None or len(v) == 0:
        return None
    last = v.dropna(subset=["t"]).sort_values(["sid", "t"], kind="stable")
    last = last.drop_duplicates("sid", keep="last").reset_index(drop=True)
    if len(last) == 0:
        return None
    return _visit_points(last, "the last visit")


def _p_scan(fr: _Frame) -> pd.DataFrame | None:
    sc = fr.scans
    if sc is None or len(sc) == 0:
        return None
    has_date = pd.notna(sc["date"]).to_numpy()
    has_day = np.isfinite(sc["day"].to_numpy())
    tpl = np.where(
        has_date,
        "imaging session {s} on {date}",
        np.where(
            has_day,
            "imaging session {s} on day {x}",
            "imaging session {s} at month {t1}",
        ),
    )
    return _points(
        sc,
        np.ones(len(sc), bool),
        t=sc["t"].to_numpy(),
        date=sc["date"].to_numpy(),
        column=np.where(has_date, "acquisition_date", "acquisition_day"),
        value=np.where(has_date, None, sc["day"].to_numpy(dtype=object)),
        value_is_date=has_date,
        x=sc["day"].to_numpy(),
        s=np.array([repr(x) for x in sc["session"]], dtype=object),
        tpl=tpl,
    )


_EVENT_LABEL = {
    1.0: "death or tracheostomy",
    0.0: "last contact (censored)",
}


def _p_event(fr: _Frame, *, deaths_only: bool = False) -> pd.DataFrame | None:
    s = fr.subj
    if not _has(s, "event"):
        return None
    e = s["event"].to_numpy(dtype=float)
    obs = s["observed"].to_numpy(dtype=float)
    date = (
        pd.to_datetime(s["date0"])
        + _months_to_days(np.where(np.isfinite(e), e, np.nan))
    ).to_numpy()
    keep = np.isfinite(e)
    if deaths_only:
        keep &= obs == 1.0
    label = np.where(
        obs == 1.0,
        _EVENT_LABEL[1.0],
        np.where(obs == 0.0, _EVENT_LABEL[0.0], "death, tracheostomy or last contact"),
    )
    return _points(
        s,
        keep,
        t=e,
        date=date,
        column="death_or_tracheostomy_months",
        value=e,
        s=label,
        tpl="{s} at month {t1}{about}",
    )


POINTS: dict[str, Callable[[_Frame], pd.DataFrame | None]] = {
    "today": _p_today,
    "birth": _p_birth,
    "onset": _p_onset,
    "onset_by_date": _onset_by_date,
    "onset_by_months": _onset_by_months,
    "onset_by_age": _p_onset_by_age,
    "diagnosis": _p_diagnosis,
    "first_visit": _p_first_visit,
    "visit": _p_visit,
    "last_visit": _p_last_visit,
    "scan": _p_scan,
    "event": _p_event,
    "death": lambda fr: _p_event(fr, deaths_only=True),
}
