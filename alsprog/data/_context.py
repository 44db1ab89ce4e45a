"""Where a table's rows came from, and problems phrased and raised from there.

Owns: the ``TableContext`` that turns a row position into ``file, line N, subject S``,
the file and line bookkeeping kept in ``DataFrame.attrs`` (:func:`attach_source`,
:func:`strip_source`), the way a cell value is shown in a message, data warnings that
point at the user's own call (:func:`warn_data`) and :func:`raise_if`.
Leaves: the checks that find problems to :mod:`alsprog.data._columns` (one column),
:mod:`alsprog.data._validate` (rows and keys), :mod:`alsprog.data._scoring` (scores) and
:mod:`alsprog.data._plausibility` (time lines).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alsprog.data._dictionary import load_dictionary
from alsprog.errors import DataValidationError, DataWarning, Problem

__all__ = ["TableContext", "attach_source", "raise_if", "strip_source", "warn_data"]

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


def _fmt_id(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def raise_if(problems: Sequence[Problem], name: str | None = None) -> None:
    """Raise one :class:`DataValidationError` listing ``problems`` if any."""
    if problems:
        raise DataValidationError(problems, source=name)
