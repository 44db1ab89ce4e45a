"""Plausibility across columns, rows and tables: each subject's time line in order.

Owns: checking the data dictionary's ``plausibility`` rules on each subject's time
line (a visit in 2099, onset after the first visit, an age above 120, death before a
visit), each broken rule reported as a :class:`~alsprog.errors.Problem` at the file,
line, subject, column and value at fault, and the date the rules treat as today
(:func:`resolve_today`).
Leaves: the points themselves (how each is built from the tables) to
:mod:`alsprog.data._timeline`, the rules to the schema
(:mod:`alsprog.data._dictionary`), one-cell rules (types, ranges, categories) to
:mod:`alsprog.data._columns`.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
import pandas as pd

from alsprog.data._dictionary import DAYS_PER_MONTH, load_dictionary
from alsprog.data._timeline import (
    POINTS,
    Table,
    _build,
    _d,
    _Frame,
    _g,
    _has,
    _text,
)
from alsprog.errors import Problem

__all__ = ["POINTS", "check_plausibility", "resolve_today"]


def resolve_today(today: Any = None) -> pd.Timestamp:
    """The date plausibility rules treat as today.

    Parameters
    ----------
    today : datetime.date, str or None
        A date, a ``"YYYY-MM-DD"`` string, or ``None`` for the current date.

    Examples
    --------
    >>> resolve_today("2024-05-01")
    Timestamp('2024-05-01 00:00:00')
    """
    if today is None:
        return pd.Timestamp(_dt.date.today())
    if isinstance(today, _dt.date | np.datetime64):
        ts = pd.Timestamp(today)
        if ts is pd.NaT:
            raise ValueError("`today` must be a date; got NaT.")
        return ts.tz_localize(None).normalize() if ts.tzinfo else ts.normalize()
    if isinstance(today, str):
        try:
            return pd.Timestamp(_dt.date.fromisoformat(today.strip()))
        except ValueError:
            pass
        raise ValueError(f"`today` must be a date or 'YYYY-MM-DD'; got {today!r}.")
    raise TypeError(
        f"`today` must be a datetime.date, a 'YYYY-MM-DD' string or None; got "
        f"{type(today).__name__}."
    )


# --------------------------------------------------------------------------- rules
def _pair(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Every (a, b) pair of the same subject (``b`` may be today, of every subject)."""
    if len(b) == 1 and b["sid"].iloc[0] is None:
        out = a.add_suffix("_a")
        extra = {}
        for c in b.columns:
            v = b[c].to_numpy()
            extra[f"{c}_b"] = pd.Series(
                np.repeat(v, len(out)), index=out.index, dtype=v.dtype, copy=False
            )
        out = pd.concat([out, pd.DataFrame(extra, index=out.index)], axis=1)
        out["date_b"] = pd.to_datetime(out["date_b"])
        return out
    return a.add_suffix("_a").merge(
        b.add_suffix("_b"), left_on="sid_a", right_on="sid_b", how="inner"
    )


def _difference(pairs: pd.DataFrame) -> np.ndarray:
    """``b - a`` in months: on the months axis when both have it, else by dates."""
    ta, tb = pairs["t_a"].to_numpy(dtype=float), pairs["t_b"].to_numpy(dtype=float)
    by_t = tb - ta
    days = (
        pd.to_datetime(pairs["date_b"]) - pd.to_datetime(pairs["date_a"])
    ).dt.total_seconds().to_numpy() / 86400
    return np.where(np.isfinite(by_t), by_t, days / DAYS_PER_MONTH)


def _location(fr: _Frame, tab: int, pos: int, here: tuple[int, int]) -> str:
    if tab < 0 or (tab, pos) == here:
        return ""
    df, ctx = fr.tables[tab]
    where = f"{ctx.line_kind} {ctx.line_at(pos, df.index)}"
    return f", {where}" if tab == here[0] else f", {ctx.name} {where}"


_VISIT_POINTS = frozenset({"visit", "first_visit", "last_visit"})


def _comparable(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two point sets share a time axis (months, or dates) anywhere."""
    return bool(
        (
            np.isfinite(a["t"].to_numpy(dtype=float)).any()
            and np.isfinite(b["t"].to_numpy(dtype=float)).any()
        )
        or (a["date"].notna().any() and b["date"].notna().any())
    )


def _apply(rule: dict[str, Any], fr: _Frame, cache: dict[str, Any]) -> list[Problem]:
    def points(name: str) -> pd.DataFrame | None:
        if name not in cache:
            cache[name] = POINTS[name](fr)
        return cache[name]

    kind = rule["kind"]
    first_key, second_key = ("a", "b") if kind == "agree" else ("earlier", "later")
    firsts = rule[first_key] if isinstance(rule[first_key], list) else [rule[first_key]]
    seconds = (
        rule[second_key] if isinstance(rule[second_key], list) else [rule[second_key]]
    )
    tol = float(rule.get("toleranceMonths", 0))
    report = rule.get("report", first_key)
    side = "a" if report == first_key else "b"
    probs: list[Problem] = []
    # the second side first: it is often absent (no events, no birth), which spares
    # building the first side's points
    present = [(n2, b) for n2 in seconds if (b := points(n2)) is not None and len(b)]
    if not present:
        return []
    only_today = all(n2 == "today" for n2, _ in present)
    for n1 in firsts:
        if only_today and n1 in _VISIT_POINTS and not _has(fr.vis, "date"):
            continue  # visits without dates cannot be after today
        a = points(n1)
        if a is None or len(a) == 0:
            continue
        for _n2, b in present:
            if not _comparable(a, b):
                continue
            pairs = _pair(a, b)
            if len(pairs) == 0:
                continue
            diff = _difference(pairs)
            with np.errstate(invalid="ignore"):
                if kind == "order":
                    bad, gap = diff < -tol, -diff
                elif kind == "agree":
                    bad, gap = np.abs(diff) > tol, np.abs(diff)
                else:  # span
                    bad, gap = diff > float(rule["maxMonths"]) + tol, diff
            for k in np.flatnonzero(bad):
                probs.append(_problem(rule, fr, pairs.iloc[k], side, gap[k]))
    return probs


def _problem(
    rule: dict[str, Any], fr: _Frame, row: pd.Series, side: str, gap: float
) -> Problem:
    tab, pos = int(row[f"tab_{side}"]), int(row[f"pos_{side}"])
    df, ctx = fr.tables[tab]
    here = (tab, pos)
    texts = {}
    for s in ("a", "b"):
        text = _text(row, s)
        if s != side:
            text += _location(fr, int(row[f"tab_{s}"]), int(row[f"pos_{s}"]), here)
        texts[s] = text
    keys = ("a", "b") if rule["kind"] == "agree" else ("earlier", "later")
    fields = {
        keys[0]: texts["a"],
        keys[1]: texts["b"],
        "gap": f"{gap:.1f}",
        "gap_years": f"{gap / 12:.1f}",
        "max_years": _g(float(rule.get("maxMonths", 0)) / 12),
    }
    message = rule["message"].format(**fields)
    if rule.get("hint"):
        message += f"; {rule['hint']}"
    value = row[f"value_{side}"]
    if bool(row[f"vdate_{side}"]):
        value = _d(row[f"date_{side}"])
    elif isinstance(value, float | np.floating) and not np.isfinite(value):
        value = None
    return ctx.problem(
        df, pos, message, rule=rule["name"], column=row[f"column_{side}"], value=value
    )


#: Columns a point of some rule is read from, besides ``subject_id`` and ``months``
#: (which alone give visit points only, and no rule compares visits with visits).
_INFORMATIVE = frozenset(
    {
        "acquisition_date",
        "acquisition_day",
        "age",
        "age_at_baseline",
        "age_at_onset",
        "death_or_tracheostomy_months",
        "diagnostic_delay_months",
        "event_observed",
        "imaging_offset_days",
        "onset_date",
        "onset_months_before_baseline",
        "session",
        "visit_date",
        "visit_day",
    }
)


def check_plausibility(
    *,
    visits: Table | None = None,
    subjects: Table | None = None,
    imaging: Table | None = None,
    long: Table | None = None,
    today: Any = None,
) -> list[Problem]:
    """Every broken plausibility rule of the data dictionary, as problems.

    Parameters
    ----------
    visits, subjects, imaging : (DataFrame, TableContext), optional
        Tables whose dictionary columns are already parsed (as ``check_columns``
        returns them); a rule is checked when the tables given hold both its points.
    long : (DataFrame, TableContext), optional
        A long-format table, playing all three roles (then give nothing else).
    today : date, str or None
        The date of the check (default: the current date).

    Returns
    -------
    list of Problem
        One per broken rule and row, located at the row and column the rule names.
    """
    given = [t for t in (visits, subjects, imaging, long) if t is not None]
    if not any(_INFORMATIVE & set(map(str, t[0].columns)) for t in given):
        return []  # only keys and months: no rule has two points to compare
    fr = _build(
        visits=visits,
        subjects=subjects,
        imaging=imaging,
        long=long,
        today=resolve_today(today),
    )
    cache: dict[str, Any] = {}
    probs: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    for rule in load_dictionary().rules:
        for p in _apply(rule, fr, cache):
            key = (p.source, p.line, p.column, p.rule, p.message)
            if key not in seen:
                seen.add(key)
                probs.append(p)
    return probs
