"""Reading and writing the input tables (CSV and Parquet).

Owns: :func:`read_visits`, :func:`read_subjects`, :func:`read_imaging`,
:func:`read_table` and :func:`write_table`.  Readers never modify the file; they parse
every dictionary column, check it, remember each row's line for later messages, and
raise one :class:`~alsprog.errors.DataValidationError` listing every problem.
Leaves: the rules to the data dictionary, cross-table checks to
:mod:`alsprog.data._assemble`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from alsprog._io import atomic_path
from alsprog.data._dictionary import load_dictionary
from alsprog.data._scoring import check_scores, fold_q5
from alsprog.data._validate import (
    TableContext,
    attach_source,
    check_columns,
    check_duplicates,
    raise_if,
    validate,
)
from alsprog.errors import DataValidationError, Problem

__all__ = ["read_imaging", "read_subjects", "read_table", "read_visits", "write_table"]

TableKind = Literal["visits", "subjects", "imaging", "long"]


def _load(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, TableContext]:
    """Read a CSV or Parquet file as raw cells, with each row's line number."""
    p = Path(path)
    name = str(path)
    if not p.is_file():
        what = "does not exist" if not p.exists() else "is not a file"
        raise DataValidationError(
            [Problem(f"the file {what}", rule="file", source=name)], source=name
        )
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix == ".gz" else p.suffix.lower()
    try:
        if suffix in (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt"):
            sep = "\t" if suffix.startswith(".tsv") else ","
            raw = pd.read_csv(
                p,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
                encoding="utf-8-sig",
            )
            lines = np.arange(len(raw)) + 2
            blank = (raw.apply(lambda c: c.str.strip()) == "").all(axis=1).to_numpy()
            raw = raw.loc[~blank].reset_index(drop=True)
            lines = lines[~blank]
            kind = "line"
        elif suffix in (".parquet", ".pq"):
            raw = pd.read_parquet(p)
            raw = raw.reset_index(drop=True)
            lines = np.arange(len(raw)) + 1
            kind = "row"
        else:
            raise DataValidationError(
                [
                    Problem(
                        f"unsupported file type {p.suffix!r} (expected .csv, .tsv or "
                        ".parquet)",
                        rule="file",
                        source=name,
                    )
                ],
                source=name,
            )
    except DataValidationError:
        raise
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataValidationError(
            [Problem(f"cannot be read as a table ({exc})", rule="file", source=name)],
            source=name,
        ) from exc
    unnamed = [c for c in raw.columns if str(c).startswith("Unnamed:")]
    if unnamed and kind == "line":
        raise DataValidationError(
            [
                Problem(
                    f"the header has {len(unnamed)} empty column name(s)",
                    rule="header",
                    source=name,
                    line=1,
                )
            ],
            source=name,
        )
    dups = raw.columns[raw.columns.duplicated()].tolist()
    if dups:
        raise DataValidationError(
            [
                Problem(
                    f"column(s) {', '.join(map(repr, dups))} appear more than once in the header",
                    rule="header",
                    source=name,
                    line=1,
                )
            ],
            source=name,
        )
    raw.columns = [str(c).strip() for c in raw.columns]
    return raw, TableContext(name, name, lines, kind)


def _finish(df: pd.DataFrame, ctx: TableContext) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    assert ctx.lines is not None
    return attach_source(df, ctx.name, ctx.lines.tolist(), ctx.line_kind)


def _time_key(df: pd.DataFrame) -> tuple[list[str], str]:
    for col, what in (
        ("visit_date", "visit date"),
        ("visit_day", "visit day"),
        ("months", "visit time"),
    ):
        if col in df.columns:
            return ["subject_id", col], what
    return [], ""


def check_visits_table(
    raw: pd.DataFrame, ctx: TableContext
) -> tuple[pd.DataFrame, list[Problem]]:
    """Column rules, q5 fold, score sums and duplicate visits of a visits table."""
    folded, probs = fold_q5(raw, ctx)
    df, p = check_columns(folded, ctx, level="visit")
    probs += p
    df, p = check_scores(df, ctx, original=folded)
    probs += p
    keys, what = _time_key(df)
    probs += check_duplicates(df, ctx, keys, what)
    return df, probs


def check_subjects_table(
    raw: pd.DataFrame, ctx: TableContext
) -> tuple[pd.DataFrame, list[Problem]]:
    """Column rules and duplicate subjects of a subjects table."""
    df, probs = check_columns(raw, ctx, level="subject")
    probs += check_duplicates(df, ctx, ["subject_id"], "subject")
    return df, probs


def check_imaging_table(
    raw: pd.DataFrame, ctx: TableContext
) -> tuple[pd.DataFrame, list[Problem]]:
    """Column rules and duplicate sessions of an imaging-features table."""
    df, probs = check_columns(
        raw, ctx, level="imaging", required=["subject_id", "session"]
    )
    probs += check_duplicates(df, ctx, ["subject_id", "session"], "imaging session")
    return df, probs


def read_visits(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a visits table: one row per subject × clinic visit.

    Needs ``subject_id`` and one of ``visit_date`` / ``visit_day`` / ``months``;
    ALSFRS-R items and scores are optional.  Separate ``alsfrs_r_q5a`` /
    ``alsfrs_r_q5b`` columns are folded into ``alsfrs_r_q5`` with the
    ``alsfrs_r_q5_gastrostomy`` flag; missing total and domain scores are computed
    from complete items; declared ones must agree with them.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv`` (or ``.tsv``) or ``.parquet`` file.  It is only read.

    Returns
    -------
    pandas.DataFrame
        The visits, dictionary columns parsed to their types.

    Raises
    ------
    DataValidationError
        Listing every problem with its line, subject, column and value: unreadable
        file, missing required column, unparsable date, item outside 0-4 or not
        whole, total outside 0-48 or different from its items, duplicate subject ×
        visit, non-finite or negative time.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "visits.csv"
    >>> _ = p.write_text("subject_id,visit_date,alsfrs_r_total\\nP1,2020-01-05,40\\n"
    ...                  "P1,2020-04-02,38\\n")
    >>> read_visits(p)["alsfrs_r_total"].tolist()
    [40.0, 38.0]
    """
    raw, ctx = _load(path)
    df, probs = check_visits_table(raw, ctx)
    raise_if(probs, ctx.name)
    return _finish(df, ctx)


def read_subjects(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a subjects table: one row per subject.

    Needs ``subject_id`` and ``group`` (``als``/``control``); see the data dictionary
    for the optional columns (``sex``, ``age_at_onset``, ``onset_site``,
    ``onset_date`` or ``onset_months_before_baseline``, ``site``, event times, ...).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv`` (or ``.tsv``) or ``.parquet`` file.  It is only read.

    Returns
    -------
    pandas.DataFrame
        The subjects, dictionary columns parsed to their types.

    Raises
    ------
    DataValidationError
        Listing every problem: missing required column, unknown category, value out
        of range, unparsable date, duplicate subject.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "subjects.csv"
    >>> _ = p.write_text("subject_id,group,onset_site\\nP1,als,Bulbar\\n")
    >>> read_subjects(p)["onset_site"].tolist()
    ['bulbar']
    """
    raw, ctx = _load(path)
    df, probs = check_subjects_table(raw, ctx)
    raise_if(probs, ctx.name)
    return _finish(df, ctx)


def read_imaging(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate an imaging-features table: one row per subject × session.

    Needs ``subject_id``, ``session`` and ``acquisition_date`` (or
    ``acquisition_day``); every other column named ``<metric>_<region>`` is checked
    against the dictionary's imaging patterns (FA within 0-1, thickness 0-10 mm, ...).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv`` (or ``.tsv``) or ``.parquet`` file.  It is only read.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataValidationError
        Listing every problem, including duplicate subject × session rows.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "imaging.csv"
    >>> _ = p.write_text("subject_id,session,acquisition_date,fa_cst_left\\n"
    ...                  "P1,m00,2020-01-07,0.52\\n")
    >>> read_imaging(p)["fa_cst_left"].tolist()
    [0.52]
    """
    raw, ctx = _load(path)
    df, probs = check_imaging_table(raw, ctx)
    raise_if(probs, ctx.name)
    return _finish(df, ctx)


def detect_kind(columns: list[str]) -> TableKind:
    """Guess which table a file holds from its columns."""
    cols = set(columns)
    has_time = bool(cols & {"visit_date", "visit_day", "months"})
    has_subject = bool(cols & {"group", "onset_site", "age_at_onset", "sex"})
    if has_time and has_subject:
        return "long"
    if has_time:
        return "visits"
    if "session" in cols:
        return "imaging"
    return "subjects"


def read_table(
    path: str | os.PathLike[str], *, kind: TableKind | None = None
) -> tuple[pd.DataFrame, TableKind]:
    """Read and validate any alsprog table, guessing its kind from its columns.

    Parameters
    ----------
    path : str or os.PathLike
        CSV/TSV or Parquet file.
    kind : {"visits", "subjects", "imaging", "long"}, optional
        Skip the guess.

    Returns
    -------
    (pandas.DataFrame, str)
        The validated table and its kind.

    Raises
    ------
    DataValidationError
        Listing every problem.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("subject_id,group\\nP1,als\\n")
    >>> read_table(p)[1]
    'subjects'
    """
    if kind is None:
        raw, _ = _load(path)
        kind = detect_kind(list(raw.columns))
    if kind == "visits":
        return read_visits(path), kind
    if kind == "subjects":
        return read_subjects(path), kind
    if kind == "imaging":
        return read_imaging(path), kind
    if kind == "long":
        raw, ctx = _load(path)
        df = _finish(raw, ctx)
        out = validate(df, source=ctx.name)
        return _finish(out, ctx), kind
    raise ValueError(
        f"`kind` must be one of 'visits', 'subjects', 'imaging', 'long'; got {kind!r}."
    )


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a table atomically as CSV (``.csv``) or Parquet (``.parquet``).

    CSV cells follow the dictionary: dates as ``YYYY-MM-DD``, booleans as
    ``true``/``false``, integer columns without a decimal point, missing as empty.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; not modified.
    path : str or os.PathLike
        Target file; its folder is created.  Written beside the target first, then
        renamed, so a crash never leaves half a file.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import pandas as pd
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = write_table(pd.DataFrame({"subject_id": ["P1"], "alsfrs_r_total": [40.0]}), p)
    >>> p.read_text().splitlines()
    ['subject_id,alsfrs_r_total', 'P1,40']
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"`path` must end in .csv or .parquet; got {str(path)!r}.")
    out = df.copy()
    out.attrs = {}
    if suffix == ".csv":
        dd = load_dictionary()
        for col in out.columns:
            f = dd.field_for(col) if isinstance(col, str) else None
            s = out[col]
            if f is not None and f.type == "integer" and pd.api.types.is_float_dtype(s):
                whole = s.dropna()
                if (whole == np.round(whole)).all():
                    out[col] = s.astype("Int64")
            elif pd.api.types.is_bool_dtype(s.dtype):
                out[col] = s.map({True: "true", False: "false"}).astype(object)
            elif pd.api.types.is_datetime64_any_dtype(s.dtype):
                out[col] = s.dt.strftime("%Y-%m-%d")
        with atomic_path(path) as tmp:
            out.to_csv(tmp, index=False, na_rep="")
    else:
        with atomic_path(path) as tmp:
            out.to_parquet(tmp, index=False)
    return path
