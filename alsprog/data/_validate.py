"""Applying the data dictionary's rules to a table.

Owns: the column checks and coercions (type, required, range, enum and its synonyms,
pattern, date and boolean parsing), column names that are near misses of the
dictionary's, key duplicates, the ``TableContext`` that turns a row position into
``file, line N, subject S`` and the public :func:`validate` for long-format tables.
Never modifies the table it checks: coercions go to a copy.
Leaves: the rules themselves to the schema (:mod:`alsprog.data._dictionary`), score
arithmetic to :mod:`alsprog.data._scoring` and time axes to :mod:`alsprog.data._time`.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alsprog.data._dictionary import DataDictionary, Field, load_dictionary
from alsprog.errors import DataValidationError, DataWarning, Problem

__all__ = ["validate"]

#: How a column mapping is named in messages (the CLI's option, the config's key).
RENAME_WHAT = "`rename`"

_SOURCE_ATTR = "alsprog_source"
_LINES_ATTR = "alsprog_lines"
_LINE_KIND_ATTR = "alsprog_line_kind"


@dataclass
class TableContext:
    """Where a table came from, to phrase problems as ``file, line N, subject S``.

    ``lines`` gives, for each row position, its 1-based line in the file (CSV, header
    = line 1) or row (Parquet); ``None`` for an in-memory table, whose problems are
    located by index label instead.
    """

    name: str
    source: str | None = None
    lines: np.ndarray | None = None
    line_kind: str = "line"

    @classmethod
    def of(cls, df: pd.DataFrame, default_name: str) -> TableContext:
        """Context of ``df``: the file it was read from when that is still valid."""
        source = df.attrs.get(_SOURCE_ATTR)
        lines = df.attrs.get(_LINES_ATTR)
        if (
            source is not None
            and lines is not None
            and len(lines) == len(df)
            and isinstance(df.index, pd.RangeIndex)
            and df.index.start == 0
            and df.index.step == 1
        ):
            kind = df.attrs.get(_LINE_KIND_ATTR, "line")
            return cls(str(source), str(source), np.asarray(lines), kind)
        if source is not None:
            return cls(str(source), str(source), None, "row")
        return cls(default_name, None, None, "row")

    def line_at(self, pos: int, index: pd.Index) -> int | Any:
        if self.lines is not None:
            return int(self.lines[pos])
        label = index[pos]
        return label.item() if isinstance(label, np.generic) else label

    def problem(
        self,
        df: pd.DataFrame,
        pos: int | None,
        message: str,
        *,
        rule: str,
        column: str | None = None,
        value: Any = None,
    ) -> Problem:
        """A :class:`Problem` for row position ``pos`` (``None`` = whole table)."""
        line = subject = None
        if pos is not None:
            line = self.line_at(pos, df.index)
            if "subject_id" in df.columns:
                sid = df["subject_id"].iloc[pos]
                if not _is_missing_scalar(sid):
                    sid = _fmt_id(_plain(sid)).strip()
                    if sid and sid not in load_dictionary().missing_values:
                        subject = sid
        return Problem(
            message=message,
            rule=rule,
            source=self.source if self.source is not None else self.name,
            line=line,
            subject_id=subject,
            column=column,
            value=_plain(value),
            line_kind=self.line_kind,
        )


def attach_source(
    df: pd.DataFrame, source: str, lines: Sequence[int], line_kind: str = "line"
) -> pd.DataFrame:
    """Record in ``df.attrs`` the file and line of every row (kept while rows are)."""
    df.attrs[_SOURCE_ATTR] = str(source)
    df.attrs[_LINES_ATTR] = tuple(int(x) for x in lines)
    df.attrs[_LINE_KIND_ATTR] = line_kind
    return df


def strip_source(df: pd.DataFrame) -> pd.DataFrame:
    """Drop the line bookkeeping from ``df.attrs`` (keeps the file name)."""
    df.attrs.pop(_LINES_ATTR, None)
    df.attrs.pop(_LINE_KIND_ATTR, None)
    return df


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_missing_scalar(x: Any) -> bool:
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _fmt_value(x: Any) -> str:
    x = _plain(x)
    if isinstance(x, float) and x.is_integer():
        return repr(int(x))
    if isinstance(x, pd.Timestamp):
        return repr(x.strftime("%Y-%m-%d"))
    return repr(x)


def warn_data(message: str) -> None:
    """Warn with :class:`DataWarning`, pointing at the first caller outside alsprog."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        "alsprog"
    ):
        level += 1
        frame = frame.f_back  # type: ignore[assignment]
    warnings.warn(message, DataWarning, stacklevel=level)


_NUMERIC_CODE = re.compile(r"^[+-]?\d+(\.\d*)?$")
_NS_MIN = pd.Timestamp.min.as_unit("ns")
_NS_MAX = pd.Timestamp.max.as_unit("ns")


# --------------------------------------------------------------------------- coercion
def _missing_mask(s: pd.Series, dd: DataDictionary) -> np.ndarray:
    """True where a cell is empty, NA or one of the schema's missing-value tokens."""
    miss = s.isna().to_numpy(copy=True)
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        text = s.astype(str).str.strip()
        miss |= text.isin(set(dd.missing_values)).to_numpy()
    return miss


def _coerce_column(
    df: pd.DataFrame, col: str, f: Field, ctx: TableContext, dd: DataDictionary
) -> tuple[pd.Series, list[Problem]]:
    """Parse ``df[col]`` to the field's type and check its constraints."""
    s = df[col]
    probs: list[Problem] = []
    miss = _missing_mask(s, dd)

    def add(mask: np.ndarray, make_msg: Any, rule: str, values: Any = None) -> None:
        vals = s.to_numpy() if values is None else values
        for pos in np.flatnonzero(mask):
            probs.append(
                ctx.problem(
                    df,
                    int(pos),
                    make_msg(vals[pos]),
                    rule=rule,
                    column=col,
                    value=vals[pos],
                )
            )

    if f.type in ("number", "integer"):
        if pd.api.types.is_bool_dtype(s.dtype):
            raw = s.astype(float)
        elif pd.api.types.is_complex_dtype(s.dtype):
            raw = s.astype(str).where(~miss, None)
        elif pd.api.types.is_numeric_dtype(s.dtype):
            raw = s
        else:
            raw = s.where(~miss, None)
        num = pd.to_numeric(raw, errors="coerce").astype("float64")
        x = num.to_numpy(copy=True)
        x[miss] = np.nan
        bad = np.isnan(x) & ~miss
        add(bad, lambda v: f"{_fmt_value(v)} is not a number", "type")
        nonfinite = np.isinf(x)
        add(nonfinite, lambda v: f"{_fmt_value(v)} is not a finite number", "finite")
        ok = np.isfinite(x)
        if f.type == "integer":
            frac = ok & (x != np.round(x))
            add(frac, lambda v: f"{_fmt_value(v)} is not a whole number", "integer")
        hint = f" ({f.hint})" if f.hint else ""
        if f.minimum is not None:
            low = ok & (x < f.minimum)
            if f.maximum is not None:
                msg = lambda v: f"{_fmt_value(v)} is outside {f.range_text()}{hint}"  # noqa: E731
            else:
                msg = lambda v: f"{_fmt_value(v)} is below {f.minimum:g}{hint}"  # noqa: E731
            add(low, msg, "minimum", x)
        if f.maximum is not None:
            high = ok & (x > f.maximum)
            if f.minimum is not None:
                msg = lambda v: f"{_fmt_value(v)} is outside {f.range_text()}{hint}"  # noqa: E731
            else:
                msg = lambda v: f"{_fmt_value(v)} is above {f.maximum:g}{hint}"  # noqa: E731
            add(high, msg, "maximum", x)
        # values that broke a rule are reported above; blank them so that later
        # checks (sums of items) do not report the same fault again
        x[bad | nonfinite] = np.nan
        if f.minimum is not None:
            x[ok & (x < f.minimum)] = np.nan
        if f.maximum is not None:
            x[ok & (x > f.maximum)] = np.nan
        if f.type == "integer":
            x[ok & (x != np.round(x))] = np.nan
        out = pd.Series(x, index=df.index, name=col, dtype="float64")
    elif f.type == "boolean":
        if pd.api.types.is_bool_dtype(s.dtype):
            out = s.astype("boolean")
        else:
            text = s.astype(str).str.strip().str.lower()
            true_set = {v.lower() for v in f.true_values} | {"1.0"}
            false_set = {v.lower() for v in f.false_values} | {"0.0"}
            trues = text.isin(true_set).to_numpy() & ~miss
            falses = text.isin(false_set).to_numpy() & ~miss
            bad = ~(trues | falses | miss)
            allowed = "/".join(f.true_values[:1] + f.false_values[:1])
            also = ", ".join(
                f"{t}/{f_}"
                for t, f_ in zip(f.true_values[1:], f.false_values[1:], strict=False)
            )
            add(
                bad,
                lambda v: (
                    f"{_fmt_value(v)} is not a boolean (expected {allowed}"
                    + (f"; also {also}, in any case" if also else "")
                    + ")"
                ),
                "type",
            )
            arr = pd.array([pd.NA] * len(s), dtype="boolean")
            arr[trues] = True
            arr[falses] = False
            out = pd.Series(arr, index=df.index, name=col)
    elif f.type == "date":
        out = _coerce_date(s, miss, f, add)
    else:  # string
        text = s.astype(str).str.strip()
        if pd.api.types.is_numeric_dtype(s.dtype):
            text = s.map(lambda v: _fmt_id(v), na_action="ignore").astype(str)
        text = text.where(~miss, None)
        if f.enum is not None:
            mapped = _map_enum(text, miss, f, col, ctx, add)
            text = mapped.where(~miss, None)
        if f.pattern is not None:
            ok = text.str.fullmatch(f.pattern).fillna(True).to_numpy(dtype=bool)
            add(
                ~ok & ~miss,
                lambda v: f"{_fmt_value(v)} does not match the pattern {f.pattern}",
                "pattern",
            )
        out = text.astype("str").rename(col)
    if f.required:
        add(miss, lambda v: "value is missing (required)", "required")
    return out, probs


def _coerce_date(s: pd.Series, miss: np.ndarray, f: Field, add: Any) -> pd.Series:
    """Parse a date column (text ``YYYY-MM-DD`` or datetimes) and check its bounds."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        parsed = pd.to_datetime(s)
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        parsed = parsed.dt.normalize()
    else:
        if s.dtype == object:  # date objects (from Excel or Python) as ISO text
            s = s.map(_iso_if_date, na_action="ignore")
        text = s.astype(str).str.strip().where(~miss, None)
        parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        bad = parsed.isna().to_numpy() & ~miss
        add(
            bad,
            lambda v: f"{_fmt_value(v)} is not a date (expected YYYY-MM-DD)",
            "type",
        )
    shown = s.to_numpy()
    ok = parsed.notna().to_numpy()
    hint = f" ({f.hint})" if f.hint else ""
    invalid = np.zeros(len(s), dtype=bool)
    if f.date_minimum is not None:
        lo = pd.Timestamp(f.date_minimum)
        early = ok & (parsed < lo).to_numpy()
        add(
            early,
            lambda v: f"{_date_text(v)} is before {f.date_minimum}{hint}",
            "minimum",
            shown,
        )
        invalid |= early
    if f.date_maximum is not None:
        hi = pd.Timestamp(f.date_maximum)
        late = ok & (parsed > hi).to_numpy()
        add(
            late,
            lambda v: f"{_date_text(v)} is after {f.date_maximum}{hint}",
            "maximum",
            shown,
        )
        invalid |= late
    beyond = ok & ~invalid & ((parsed < _NS_MIN) | (parsed > _NS_MAX)).to_numpy()
    add(
        beyond,
        lambda v: (
            f"{_date_text(v)} is not a plausible date (alsprog handles dates from "
            f"{_NS_MIN:%Y-%m-%d} to {_NS_MAX:%Y-%m-%d})"
        ),
        "maximum",
        shown,
    )
    invalid |= beyond
    parsed = parsed.where(~invalid)
    return parsed.astype("datetime64[ns]").rename(s.name)


def _iso_if_date(v: Any) -> Any:
    if isinstance(v, _dt.date):  # datetime and pandas.Timestamp too
        return f"{v.year:04d}-{v.month:02d}-{v.day:02d}"
    if isinstance(v, np.datetime64) and not np.isnat(v):
        return str(v.astype("datetime64[D]"))
    return v


def _date_text(v: Any) -> str:
    if isinstance(v, pd.Timestamp | _dt.date):
        return repr(f"{v:%Y-%m-%d}")
    if isinstance(v, np.datetime64):
        return repr(str(v)[:10])
    return _fmt_value(v)


def _map_enum(
    text: pd.Series,
    miss: np.ndarray,
    f: Field,
    col: str,
    ctx: TableContext,
    add: Any,
) -> pd.Series:
    """Categories matched ignoring case, synonyms mapped with a warning, others bad."""
    assert f.enum is not None
    canon = {e.lower(): e for e in f.enum}
    # read each distinct value once (a long table repeats a few categories)
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    lowered_u = pd.Series(uniques, dtype=text.dtype).str.lower()

    def spread(per_unique: pd.Series) -> pd.Series:
        values = per_unique.to_numpy(dtype=object)
        out = np.full(len(codes), np.nan, dtype=object)
        out[codes >= 0] = values[codes[codes >= 0]]
        return pd.Series(out, index=text.index, dtype=object)

    mapped = spread(lowered_u.map(canon))
    if f.synonyms:
        key = lowered_u.str.replace(r"[\s_-]+", " ", regex=True)
        syn = spread(key.map(f.synonyms))
        use = (mapped.isna() & syn.notna()).to_numpy() & ~miss
        if use.any():
            counts = Counter(
                zip(text.to_numpy()[use], syn.to_numpy()[use], strict=True)
            )
            shown = ", ".join(
                f"{a!r} -> {b!r} ({n} row{'s' if n != 1 else ''})"
                for (a, b), n in sorted(counts.items(), key=lambda kv: -kv[1])
            )
            warn_data(
                f"{ctx.name}, column {col}: mapped {shown} (synonyms listed in the "
                "data dictionary); recode the file to silence this warning"
            )
            mapped = mapped.where(~use, syn)
    bad = mapped.isna().to_numpy() & ~miss
    allowed = ", ".join(repr(e) for e in f.enum)
    choices = [*canon, *f.synonyms]

    def message(v: Any) -> str:
        base = f"{_fmt_value(v)} is not an allowed category (expected one of {allowed})"
        word = str(v).strip()
        if _NUMERIC_CODE.match(word):
            return base + (
                f"; {f.coding_hint}"
                if f.coding_hint
                else "; numeric codes are not guessed: recode the column"
            )
        close = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.75)
        if close:
            target = canon.get(close[0], f.synonyms.get(close[0]))
            return base + f"; did you mean {target!r}?"
        return base

    add(bad, message, "enum")
    return mapped


def _fmt_id(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def check_columns(
    df: pd.DataFrame,
    ctx: TableContext,
    *,
    level: str | None,
    dd: DataDictionary | None = None,
    required: Iterable[str] | None = None,
    alternatives: bool = True,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Check and coerce every dictionary column of ``df``.

    ``level`` names the input table ('subject', 'visit', 'imaging') whose required
    columns and alternatives apply; ``None`` is a long-format table, which needs
    ``subject_id`` and a time column.  Unknown columns pass through untouched.
    Returns the coerced copy and the problems found.
    """
    dd = dd or load_dictionary()
    probs: list[Problem] = []
    out = df.copy()
    req = (
        list(required)
        if required is not None
        else (dd.required_columns(level) if level else ["subject_id"])
    )
    table = {"subject": "subjects", "visit": "visits", "imaging": "imaging"}.get(
        level or "", "long-format"
    )
    names, meant = check_column_names(df, ctx, dd)
    probs += names
    unknown = [c for c in df.columns if isinstance(c, str) and dd.field_for(c) is None]
    for col in req:
        if col not in df.columns and col not in meant:
            probs.append(
                ctx.problem(
                    df,
                    None,
                    f"column {col!r} is missing (required in the {table} table)"
                    + _closest(col, unknown),
                    rule="required_column",
                    column=col,
                )
            )
    alt_levels = ([level] if level else ["visit"]) if alternatives else []
    for lev in alt_levels:
        for group in dd.alternatives_for(lev):
            present = [c for c in group if c in df.columns]
            if not present and not meant & set(group):
                names_ = ", ".join(repr(c) for c in group)
                probs.append(
                    ctx.problem(
                        df,
                        None,
                        f"needs one of the columns {names_}",
                        rule="required_column",
                        column=group[0],
                    )
                )
    for col in df.columns:
        if not isinstance(col, str):
            continue
        f = dd.field_for(col)
        if f is None:
            continue
        coerced, p = _coerce_column(df, col, f, ctx, dd)
        out[col] = coerced
        probs.extend(p)
    for lev in alt_levels:
        for group in dd.alternatives_for(lev):
            present = [c for c in group if c in out.columns]
            if present:
                # rows where every alternative is empty in the input (a value that
                # failed to parse is reported by its own column check)
                none = np.ones(len(out), dtype=bool)
                for c in present:
                    none &= _missing_mask(df[c], dd)
                for pos in np.flatnonzero(none):
                    probs.append(
                        ctx.problem(
                            df,
                            int(pos),
                            "no value in any of " + ", ".join(present),
                            rule="required",
                            column=present[0],
                        )
                    )
    return out, probs


def check_column_names(
    df: pd.DataFrame, ctx: TableContext, dd: DataDictionary
) -> tuple[list[Problem], set[str]]:
    """Column names that are near misses of the dictionary's, and the names meant.

    ``Subject_ID`` or ``ALSFRS_TOTAL`` would otherwise pass through as unknown extra
    columns while the table silently lacks ``subject_id`` or ``alsfrs_r_total``.  A
    name that differs from a dictionary name only in case or separators is always
    refused; a merely close name only when the dictionary column it resembles is
    absent (else it is an extra column of its own).
    """
    probs: list[Problem] = []
    meant: set[str] = set()
    for col in df.columns:
        if not isinstance(col, str):
            continue
        found = dd.suggest_name(col)
        if found is None:
            continue
        name, exact = found
        if name in df.columns:
            if not exact:
                continue
            message = (
                f"column {col!r} is the dictionary column {name!r} spelled "
                f"differently, and the table has {name!r} too: remove or rename one"
            )
        elif exact:
            message = (
                f"column {col!r} is the dictionary column {name!r} spelled "
                f"differently: rename it to {name!r} (names are exact and lower case)"
            )
        else:
            message = (
                f"column {col!r} is not in the data dictionary but close to "
                f"{name!r}: rename it to {name!r} if that is what it holds (else "
                "give it a name further from the dictionary's)"
            )
        meant.add(name)
        probs.append(
            ctx.problem(df, None, message, rule="column_name", column=col, value=col)
        )
    return probs, meant


def _closest(name: str, candidates: Sequence[str]) -> str:
    """``"; the table has 'x': ..."`` naming the column most like ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; the table has {close[0]!r}: rename it if it holds {name}"


def rename_problems(rename: Any) -> list[str]:
    """What is wrong with a column mapping ``{old name: dictionary name}``.

    Each target must be a column of the data dictionary (or an imaging
    ``<metric>_<region>`` name); no two columns may map to one target; a column may
    not map to itself.  Returns one message per problem (empty when the mapping is
    fine).

    Examples
    --------
    >>> rename_problems({"patient": "subject_id"})
    []
    >>> rename_problems({"patient": "subjectid"})
    ["'patient' -> 'subjectid': 'subjectid' is not a column of the data dictionary; did you mean 'subject_id'?"]
    """
    if not isinstance(rename, Mapping):
        return [f"must be a mapping of old to new column names; got {rename!r}"]
    dd = load_dictionary()
    out: list[str] = []
    seen: dict[str, str] = {}
    for old, new in rename.items():
        if not isinstance(old, str) or not old.strip():
            out.append(f"{old!r}: the old name must be a non-empty string")
            continue
        if not isinstance(new, str) or not new.strip():
            out.append(f"{old!r} -> {new!r}: the new name must be a non-empty string")
            continue
        if old == new:
            out.append(f"{old!r} -> {new!r}: renames the column to itself")
            continue
        if new not in dd.known_names() and dd.field_for(new) is None:
            found = dd.suggest_name(new)
            close = (
                [found[0]]
                if found
                else difflib.get_close_matches(new, dd.known_names(), n=1, cutoff=0.6)
            )
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(
                f"{old!r} -> {new!r}: {new!r} is not a column of the data "
                f"dictionary{hint}"
            )
            continue
        if new in seen:
            out.append(
                f"{seen[new]!r} and {old!r} are both renamed to {new!r}; keep one"
            )
            continue
        seen[new] = old
    return out


def check_rename(
    rename: Mapping[str, str] | None, *, what: str = RENAME_WHAT
) -> dict[str, str]:
    """A checked copy of a column mapping (``{}`` for ``None``).

    Raises
    ------
    ValueError
        Naming every problem :func:`rename_problems` finds (``what`` names the
        argument: ``--rename`` on the command line).

    Examples
    --------
    >>> check_rename({"patient": "subject_id"})
    {'patient': 'subject_id'}
    """
    if rename is None:
        return {}
    probs = rename_problems(rename)
    if probs:
        text = "; ".join(probs)
        raise ValueError(f"{what}: {text}" + ("" if text.endswith("?") else "."))
    return dict(rename)


def rename_columns(
    df: pd.DataFrame, rename: Mapping[str, str] | None, name: str
) -> pd.DataFrame:
    """``df`` with the mapped columns renamed (the columns it lacks are skipped).

    Raises
    ------
    DataValidationError
        When the table has both a column and the name it is mapped to.
    """
    rename = check_rename(rename)
    use = {old: new for old, new in rename.items() if old in df.columns}
    if not use:
        return df
    clash = [
        Problem(
            f"column {old!r} is renamed to {new!r} ({RENAME_WHAT}), but the table has "
            f"{new!r} already: drop one of them or the mapping",
            rule="rename",
            source=name,
            column=old,
            value=old,
        )
        for old, new in use.items()
        if new in df.columns and new not in use
    ]
    raise_if(clash, name)
    out = df.rename(columns=use)
    out.attrs = dict(df.attrs)
    return out


def check_duplicates(
    df: pd.DataFrame, ctx: TableContext, keys: Sequence[str], what: str
) -> list[Problem]:
    """One problem per row whose ``keys`` repeat an earlier row's."""
    keys = [k for k in keys if k in df.columns]
    if not keys or df.empty:
        return []
    sub = df[keys]
    valid = sub.notna().all(axis=1).to_numpy()
    dup = sub.duplicated(keep="first").to_numpy() & valid
    if not dup.any():
        return []
    first_pos: dict[tuple[Any, ...], int] = {}
    for pos, key in enumerate(sub.itertuples(index=False, name=None)):
        if valid[pos] and key not in first_pos:
            first_pos[key] = pos
    probs = []
    keyed = list(sub.itertuples(index=False, name=None))
    for pos_ in np.flatnonzero(dup):
        pos = int(pos_)
        first = first_pos[keyed[pos]]
        where = f"{ctx.line_kind} {ctx.line_at(first, df.index)}"
        shown = ", ".join(
            f"{k}={_fmt_value(v)}" for k, v in zip(keys, keyed[pos], strict=True)
        )
        probs.append(
            ctx.problem(
                df,
                int(pos),
                f"duplicate {what} ({shown}); first seen at {where}",
                rule="duplicate",
                column=keys[-1],
                value=keyed[pos][-1],
            )
        )
    return probs


def check_constant_within_subject(
    df: pd.DataFrame, ctx: TableContext, dd: DataDictionary
) -> list[Problem]:
    """Subject-level columns of a long table must not vary within a subject."""
    probs: list[Problem] = []
    if "subject_id" not in df.columns:
        return probs
    for col in df.columns:
        f = dd.fields.get(col) if isinstance(col, str) else None
        if f is None or f.level != "subject" or col == "subject_id":
            continue
        n = df.groupby("subject_id", sort=False)[col].nunique(dropna=True)
        for sid in n.index[n.to_numpy() > 1]:
            rows = np.flatnonzero((df["subject_id"] == sid).to_numpy())
            vals = df[col].iloc[rows].dropna().unique()[:3]
            differs = (df[col].iloc[rows] != vals[0]) & df[col].iloc[rows].notna()
            pos = int(rows[np.flatnonzero(differs.to_numpy())[0]])
            probs.append(
                ctx.problem(
                    df,
                    pos,
                    "subject-level value varies within the subject "
                    f"({', '.join(_fmt_value(v) for v in vals)})",
                    rule="constant",
                    column=col,
                    value=_plain(vals[0]),
                )
            )
    return probs


def refuse_repeated_columns(df: pd.DataFrame, ctx: TableContext) -> None:
    """Raise when a column name appears more than once (``df[name]`` is ambiguous)."""
    names = pd.Index([str(c).strip() for c in df.columns])
    repeated = names[names.duplicated()].unique()
    if len(repeated):
        raise DataValidationError(
            [
                ctx.problem(
                    df,
                    None,
                    f"column {c!r} appears {int((names == c).sum())} times; every "
                    "column needs its own name",
                    rule="header",
                    column=c,
                )
                for c in repeated
            ],
            source=ctx.name,
        )


def raise_if(problems: Sequence[Problem], name: str | None = None) -> None:
    """Raise one :class:`DataValidationError` listing ``problems`` if any."""
    if problems:
        raise DataValidationError(problems, source=name)


#: Checked with a model's own columns: the keys of the row rules (one row per subject
#: and visit, subject-level columns constant within a subject).
_ROW_KEYS = ("subject_id", "visit_date", "visit_day", "months")


def validate(
    df: pd.DataFrame,
    *,
    source: str | None = None,
    columns: Iterable[str] | None = None,
    today: Any = None,
) -> pd.DataFrame:
    """Check a long-format table (one row per subject × visit) against the dictionary.

    Every column named in the data dictionary (or matching an imaging pattern) is
    parsed to its type and checked against its constraints; ALSFRS-R totals and
    domain scores must equal the sum of their items when all items are present;
    ``(subject_id, time)`` must be unique; time must be finite and non-negative;
    subject-level columns must be constant within a subject; column names must not
    be near misses of the dictionary's; and the dictionary's plausibility rules
    must hold (no date after ``today``, no visit before onset or after death, ages
    within 0-120, ...).  All problems are collected and raised together.  ``df`` is
    never modified.

    Parameters
    ----------
    df : pandas.DataFrame
        Long-format table; extra columns are allowed and passed through.
    source : str, optional
        Name used in messages (e.g. the file it came from).
    columns : iterable of str, optional
        Check only these columns and the row keys (``subject_id`` and the visit
        time columns), and not the table's required columns: the check every model
        runs on the columns it uses, whatever its data's other columns are.
    today : datetime.date or str, optional
        The date of the plausibility check (no date may lie after it); default the
        current date.  Give it for reproducible results.

    Returns
    -------
    pandas.DataFrame
        A copy with dictionary columns coerced to their types (numbers as float64,
        dates as datetime64, booleans as the nullable ``boolean`` dtype).

    Raises
    ------
    DataValidationError
        Listing every problem with its row, subject, column and value.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"subject_id": ["P1", "P1"], "months": [0, 3],
    ...                    "alsfrs_r_total": [40, 52]})
    >>> validate(df)
    Traceback (most recent call last):
    ...
    alsprog.errors.DataValidationError: long-format table: 1 problem
      row 1, subject P1, column alsfrs_r_total: 52 is outside 0-48 (the ALSFRS-R total is 0-48)
    """
    from alsprog.data._plausibility import check_plausibility, resolve_today
    from alsprog.data._scoring import check_scores

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`df` must be a pandas DataFrame; got {type(df).__name__}.")
    day = resolve_today(today)
    dd = load_dictionary()
    ctx = TableContext.of(df, source or "long-format table")
    if source is not None:
        ctx.name = source
        if ctx.source is None:
            ctx.source = source
    refuse_repeated_columns(df, ctx)
    if columns is None:
        out, probs = check_columns(df, ctx, level=None, dd=dd)
    else:
        keep = {*_ROW_KEYS, *columns}
        out, probs = check_columns(
            df.loc[:, [c for c in df.columns if c in keep]],
            ctx,
            level=None,
            dd=dd,
            required=(),
            alternatives=False,
        )
    out, score_probs = check_scores(out, ctx, original=df)
    probs += score_probs
    for keys, what in (
        (["subject_id", "visit_date"], "visit date"),
        (["subject_id", "visit_day"], "visit day"),
        (["subject_id", "months"], "visit time"),
    ):
        # without subject_id (a model grouping by another column) the visit keys of
        # different subjects cannot be told apart: not checked
        if "subject_id" in out.columns and keys[1] in out.columns:
            probs += check_duplicates(out, ctx, keys, what)
            break
    probs += check_constant_within_subject(out, ctx, dd)
    probs += check_plausibility(long=(out, ctx), today=day)
    raise_if(probs, ctx.name)
    return out
