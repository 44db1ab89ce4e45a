"""Applying the data dictionary's one-column rules to a table.

Owns: the column checks and coercions (type, required, range, enum and its synonyms,
pattern, date and boolean parsing), the table's required columns and alternatives,
column names that are near misses of the dictionary's and repeated column names.
Never modifies the table it checks: coercions go to a copy.
Leaves: the rules themselves to the schema (:mod:`alsprog.data._dictionary`), locating
and raising problems to :mod:`alsprog.data._context`, rows and keys to
:mod:`alsprog.data._validate`.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from alsprog.data._context import (
    TableContext,
    _fmt_id,
    _fmt_value,
    warn_data,
)
from alsprog.data._dictionary import DataDictionary, Field, load_dictionary
from alsprog.errors import DataValidationError, Problem

__all__ = ["check_column_names", "check_columns", "refuse_repeated_columns"]

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
