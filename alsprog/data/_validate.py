"""Checking a long-format table against the data dictionary, and column mappings.

Owns: the public :func:`validate` for long-format tables, the row checks it adds to
the column checks (key duplicates, subject-level columns constant within a subject)
and column mappings ``{old name: dictionary name}`` (:func:`rename_problems`,
:func:`check_rename`, :func:`rename_columns`).
Never modifies the table it checks: coercions go to a copy.
Leaves: one-column rules to :mod:`alsprog.data._columns`, locating and raising problems
to :mod:`alsprog.data._context`, score arithmetic to :mod:`alsprog.data._scoring`,
time lines to :mod:`alsprog.data._plausibility` and time axes to
:mod:`alsprog.data._time`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from alsprog.data._columns import check_columns, refuse_repeated_columns
from alsprog.data._context import TableContext, _fmt_value, _plain, raise_if
from alsprog.data._dictionary import DataDictionary, load_dictionary
from alsprog.data._plausibility import check_plausibility, resolve_today
from alsprog.data._scoring import check_scores
from alsprog.errors import Problem

__all__ = ["validate"]

#: How a column mapping is named in messages (the CLI's option, the config's key).
RENAME_WHAT = "`rename`"


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
