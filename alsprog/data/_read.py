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
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from alsprog._io import atomic_path
from alsprog.data._columns import check_columns, refuse_repeated_columns
from alsprog.data._context import TableContext, attach_source, raise_if
from alsprog.data._csvfile import read_delimited
from alsprog.data._dictionary import load_dictionary
from alsprog.data._plausibility import check_plausibility
from alsprog.data._scoring import check_scores, fold_q5
from alsprog.data._validate import (
    check_duplicates,
    check_rename,
    rename_columns,
    validate,
)
from alsprog.errors import DataValidationError, Problem

__all__ = [
    "guess_kind",
    "read_imaging",
    "read_subjects",
    "read_table",
    "read_visits",
    "write_table",
]

TableKind = Literal["visits", "subjects", "imaging", "long"]


def _file_problem(name: str, message: str, *, line: int | None = None) -> Problem:
    return Problem(message, rule="file", source=name, line=line)


def _load(
    path: str | os.PathLike[str], rename: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, TableContext]:
    """Read a CSV or Parquet file as raw cells, with each row's line number.

    CSV/TSV files go through :func:`~alsprog.data._csvfile.read_delimited`, which
    refuses a corrupted file (wrong separator, ragged rows, bad encoding, binary
    content) naming the line; Parquet files are read by pyarrow.  An empty table, or
    repeated or empty column names, are refused for both.  ``rename`` maps the
    file's column names to the dictionary's before anything is checked.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"`path` must be a str or os.PathLike; got {type(path).__name__}."
        )
    p = Path(path)
    name = str(path)
    try:
        is_file = p.is_file()
        exists = p.exists()
    except OSError as exc:  # a name too long, a loop of links
        raise DataValidationError(
            [_file_problem(name, f"cannot be opened ({exc})")], source=name
        ) from exc
    if not is_file:
        what = (
            "does not exist"
            if not exists
            else "is a directory, not a table file"
            if p.is_dir()
            else "is not a regular file (a device, pipe or socket?)"
        )
        raise DataValidationError(
            [_file_problem(name, f"the file {what}")], source=name
        )
    low = p.name.lower()
    gz = low.endswith(".gz")
    suffix = "".join(p.suffixes[-2:]).lower() if gz else p.suffix.lower()
    if suffix in (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt"):
        sep = "\t" if suffix.startswith(".tsv") else ","
        try:
            raw, lines = read_delimited(p, name=name, sep=sep, gzipped=gz)
        except OSError as exc:
            raise DataValidationError(
                [_file_problem(name, f"cannot be read ({exc})")], source=name
            ) from exc
        kind = "line"
    elif suffix in (".parquet", ".pq"):
        raw = _read_parquet(p, name)
        lines = np.arange(len(raw)) + 1
        kind = "row"
    else:
        raise DataValidationError(
            [
                _file_problem(
                    name,
                    f"unsupported file type {p.suffix!r} (expected .csv, .tsv or "
                    ".parquet)",
                )
            ],
            source=name,
        )
    if rename:
        raw = rename_columns(raw, rename, name)
    return raw, TableContext(name, name, lines, kind)


def _read_parquet(p: Path, name: str) -> pd.DataFrame:
    try:
        import pyarrow as pa

        arrow_errors: tuple[type[BaseException], ...] = (pa.ArrowException,)
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        arrow_errors = ()
    unreadable: tuple[type[BaseException], ...] = (
        OSError,
        ValueError,
        TypeError,
        KeyError,
        *arrow_errors,
    )
    try:
        raw = pd.read_parquet(p)
    except Exception as exc:
        if not isinstance(exc, unreadable):
            raise
        raise DataValidationError(
            [_file_problem(name, f"cannot be read as Parquet ({exc})")], source=name
        ) from exc
    raw = raw.reset_index(drop=True)
    probs: list[Problem] = []
    names = [str(c).strip() for c in raw.columns]
    for col, n in Counter(names).items():
        if n > 1:
            probs.append(
                Problem(
                    f"column {col!r} appears {n} times; every column needs its own name",
                    rule="header",
                    source=name,
                    column=col,
                )
            )
    if "" in names:
        probs.append(Problem("a column has an empty name", rule="header", source=name))
    for col in raw.columns:
        if raw[col].dtype == object:
            kinds = {type(v).__name__ for v in raw[col].dropna().to_numpy()[:1000]}
            nested = kinds & {"list", "dict", "ndarray", "tuple", "bytes"}
            if nested:
                probs.append(
                    Problem(
                        f"holds {sorted(nested)[0]} values, not single cells",
                        rule="type",
                        source=name,
                        column=str(col),
                    )
                )
    if not probs and len(raw) == 0:
        probs.append(Problem("the file has no rows", rule="empty", source=name))
    if probs:
        raise DataValidationError(probs, source=name)
    raw.columns = names
    return raw


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


def check_outcome(
    raw: pd.DataFrame, df: pd.DataFrame, ctx: TableContext
) -> list[Problem]:
    """A visits table needs an outcome column with a value on at least one visit."""
    dd = load_dictionary()
    probs: list[Problem] = []
    for group in dd.alternatives_for("visit", scope="table"):
        present = [c for c in group if c in raw.columns or c in df.columns]
        if not present:
            like = [
                str(c)
                for c in raw.columns
                if "frs" in str(c).lower() or "total" in str(c).lower()
            ]
            hint = (
                f" (the table has {', '.join(map(repr, like[:5]))}: rename the "
                "column to the dictionary's name)"
                if like
                else ""
            )
            probs.append(
                ctx.problem(
                    raw,
                    None,
                    "the visits table has no outcome column: expected "
                    "'alsfrs_r_total', the items 'alsfrs_r_q1' ... 'alsfrs_r_q12' or "
                    f"a domain subscore such as 'alsfrs_r_bulbar'{hint}",
                    rule="no_outcome",
                    column=group[0],
                )
            )
            continue
        have = [c for c in present if c in df.columns]
        if len(df) and have and not df[have].notna().to_numpy().any():
            # every cell empty (or refused by its own rule, reported already)
            empty_in_file = all(
                c not in raw.columns or _all_missing(raw[c], dd) for c in present
            )
            if empty_in_file:
                probs.append(
                    ctx.problem(
                        raw,
                        None,
                        f"no visit has a value in any outcome column ({', '.join(present)})",
                        rule="no_outcome",
                        column=present[0],
                    )
                )
    return probs


def _all_missing(s: pd.Series, dd) -> bool:
    if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
        return bool(s.isna().all())
    text = s.astype(str).str.strip()
    return bool((s.isna() | text.isin(set(dd.missing_values))).all())


def check_visits_table(
    raw: pd.DataFrame,
    ctx: TableContext,
    *,
    today: Any = None,
    plausibility: bool = True,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Column rules, q5 fold, score sums, outcome, duplicate visits of a visits table.

    With ``plausibility``, also the dictionary's plausibility rules that the visits
    alone allow (no visit after ``today``); :func:`~alsprog.data.assemble` checks them
    across tables instead.
    """
    refuse_repeated_columns(raw, ctx)
    folded, probs = fold_q5(raw, ctx)
    df, p = check_columns(folded, ctx, level="visit")
    probs += p
    df, p = check_scores(df, ctx, original=folded)
    probs += p
    probs += check_outcome(raw, df, ctx)
    keys, what = _time_key(df)
    probs += check_duplicates(df, ctx, keys, what)
    if plausibility:
        probs += check_plausibility(visits=(df, ctx), today=today)
    return df, probs


def check_subjects_table(
    raw: pd.DataFrame,
    ctx: TableContext,
    *,
    today: Any = None,
    plausibility: bool = True,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Column rules and duplicate subjects of a subjects table (and, with
    ``plausibility``, the rules the subjects alone allow: ages, onset, dates)."""
    refuse_repeated_columns(raw, ctx)
    df, probs = check_columns(raw, ctx, level="subject")
    probs += check_duplicates(df, ctx, ["subject_id"], "subject")
    if plausibility:
        probs += check_plausibility(subjects=(df, ctx), today=today)
    return df, probs


def check_imaging_table(
    raw: pd.DataFrame,
    ctx: TableContext,
    *,
    today: Any = None,
    plausibility: bool = True,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Column rules and duplicate sessions of an imaging-features table (and, with
    ``plausibility``, no session after ``today``)."""
    refuse_repeated_columns(raw, ctx)
    df, probs = check_columns(
        raw, ctx, level="imaging", required=["subject_id", "session"]
    )
    probs += check_duplicates(df, ctx, ["subject_id", "session"], "imaging session")
    if plausibility:
        probs += check_plausibility(imaging=(df, ctx), today=today)
    return df, probs


def read_visits(
    path: str | os.PathLike[str],
    *,
    today: Any = None,
    rename: Mapping[str, str] | None = None,
) -> pd.DataFrame:
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
    today : datetime.date or str, optional
        The date of the plausibility check (no date may lie after it); default the
        current date.  Give it for reproducible results.
    rename : mapping of str to str, optional
        Column names of the file mapped to the dictionary's before anything is
        checked, e.g. ``{"patient": "subject_id"}``; each target must be a
        dictionary column.

    Returns
    -------
    pandas.DataFrame
        The visits, dictionary columns parsed to their types.

    Raises
    ------
    DataValidationError
        Listing every problem with its line, subject, column and value: unreadable
        or corrupted file (binary, not UTF-8, another separator, a row with fewer or
        more fields than the header, repeated column names, no rows), a column name
        that is a near miss of the dictionary's, missing required column, no outcome
        column, unparsable date, a visit after ``today``, item outside 0-4 or not
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
    raw, ctx = _load(path, check_rename(rename))
    df, probs = check_visits_table(raw, ctx, today=today)
    raise_if(probs, ctx.name)
    return _finish(df, ctx)


def read_subjects(
    path: str | os.PathLike[str],
    *,
    today: Any = None,
    rename: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read and validate a subjects table: one row per subject.

    Needs ``subject_id`` and ``group`` (``als``/``control``); see the data dictionary
    for the optional columns (``sex``, ``age_at_onset``, ``onset_site``,
    ``onset_date`` or ``onset_months_before_baseline``, ``site``, event times, ...).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv`` (or ``.tsv``) or ``.parquet`` file.  It is only read.
    today : datetime.date or str, optional
        The date of the plausibility check (no date may lie after it); default the
        current date.  Give it for reproducible results.
    rename : mapping of str to str, optional
        Column names of the file mapped to the dictionary's before anything is
        checked, e.g. ``{"patient": "subject_id"}``; each target must be a
        dictionary column.

    Returns
    -------
    pandas.DataFrame
        The subjects, dictionary columns parsed to their types.

    Raises
    ------
    DataValidationError
        Listing every problem: unreadable or corrupted file, near-miss column name,
        missing required column, unknown category (numeric codes are never guessed),
        value out of range, unparsable date, duplicate subject, and the implausible:
        onset or diagnosis after ``today``, age_at_onset above age_at_baseline,
        onset before birth, ages that disagree with the onset time.

    Warns
    -----
    DataWarning
        When a category is given by one of its dictionary synonyms (sex ``M``,
        onset_site ``limb``): the mapping applied and its count are named.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "subjects.csv"
    >>> _ = p.write_text("subject_id,group,onset_site\\nP1,als,Bulbar\\n")
    >>> read_subjects(p)["onset_site"].tolist()
    ['bulbar']
    """
    raw, ctx = _load(path, check_rename(rename))
    df, probs = check_subjects_table(raw, ctx, today=today)
    raise_if(probs, ctx.name)
    return _finish(df, ctx)


def read_imaging(
    path: str | os.PathLike[str],
    *,
    today: Any = None,
    rename: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read and validate an imaging-features table: one row per subject × session.

    Needs ``subject_id``, ``session`` and ``acquisition_date`` (or
    ``acquisition_day``); every other column named ``<metric>_<region>`` is checked
    against the dictionary's imaging patterns (FA within 0-1, thickness 0-10 mm, ...).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv`` (or ``.tsv``) or ``.parquet`` file.  It is only read.
    today : datetime.date or str, optional
        The date of the plausibility check (no date may lie after it); default the
        current date.  Give it for reproducible results.
    rename : mapping of str to str, optional
        Column names of the file mapped to the dictionary's before anything is
        checked, e.g. ``{"patient": "subject_id"}``; each target must be a
        dictionary column.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataValidationError
        Listing every problem, including a corrupted file, duplicate subject ×
        session rows and sessions after ``today``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "imaging.csv"
    >>> _ = p.write_text("subject_id,session,acquisition_date,fa_cst_left\\n"
    ...                  "P1,m00,2020-01-07,0.52\\n")
    >>> read_imaging(p)["fa_cst_left"].tolist()
    [0.52]
    """
    raw, ctx = _load(path, check_rename(rename))
    df, probs = check_imaging_table(raw, ctx, today=today)
    raise_if(probs, ctx.name)
    return _finish(df, ctx)


def _levels(columns: Sequence[str]) -> dict[str, list[str]]:
    dd = load_dictionary()
    out: dict[str, list[str]] = {"subject": [], "visit": [], "imaging": []}
    for c in columns:
        if not isinstance(c, str) or c == "subject_id":
            continue
        f = dd.field_for(c)
        level = f.level if f is not None else None
        if level is None and c.startswith("alsfrs_r_"):
            level = "visit"  # alsfrs_r_q5a/q5b, folded when read
        if level in out:
            out[level].append(c)
    return out


def guess_kind(columns: Sequence[str]) -> tuple[TableKind, str]:
    """Guess which table a file holds from its columns, and say why.

    A table with visit columns (a time axis or ALSFRS-R scores) and subject columns
    (``group``, ``sex``, ``onset_site``, ...) is a long table; with visit columns only,
    a visits table; with a ``session`` or imaging-feature column, an imaging table;
    anything else a subjects table.

    Returns
    -------
    (str, str)
        The kind and the reason, e.g. ``("visits", "visit columns (visit_date,
        alsfrs_r_total) but no subject columns")``.

    Examples
    --------
    >>> guess_kind(["patient", "visit_month", "alsfrs_r_total", "onset_site"])[0]
    'long'
    >>> guess_kind(["subject_id", "visit_date", "alsfrs_r_total"])
    ('visits', 'visit columns (visit_date, alsfrs_r_total) but no subject columns (group, sex, onset_site, ...)')
    """

    def shown(cols: list[str]) -> str:
        return ", ".join(cols[:4]) + (", ..." if len(cols) > 4 else "")

    lv = _levels(columns)
    if lv["visit"] and lv["subject"]:
        return "long", (
            f"visit columns ({shown(lv['visit'])}) and subject columns "
            f"({shown(lv['subject'])})"
        )
    if lv["visit"]:
        return "visits", (
            f"visit columns ({shown(lv['visit'])}) but no subject columns (group, "
            "sex, onset_site, ...)"
        )
    if lv["imaging"]:
        return "imaging", f"imaging columns ({shown(lv['imaging'])})"
    if lv["subject"]:
        return "subjects", (
            f"subject columns ({shown(lv['subject'])}) and no visit or imaging columns"
        )
    return "subjects", "no visit, subject or imaging column of the data dictionary"


def detect_kind(columns: list[str]) -> TableKind:
    """Guess which table a file holds from its columns (see :func:`guess_kind`)."""
    return guess_kind(columns)[0]


def header_columns(
    path: str | os.PathLike[str], *, rename: Mapping[str, str] | None = None
) -> list[str] | None:
    """The column names in a table file's header (after ``rename``), read cheaply.

    Returns ``None`` when the header cannot be read; the table's reader then says why.
    """
    p = Path(path)
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            names = list(pq.read_schema(p).names)
        else:
            low = p.name.lower()
            sep = "\t" if ".tsv" in low else ","
            head = pd.read_csv(p, sep=sep, nrows=0, encoding="utf-8-sig")
            names = [str(c).strip() for c in head.columns]
    except Exception:  # unreadable: the reader reports why, with the line
        return None
    renames = check_rename(rename)
    return [renames.get(c, c) for c in names]


def table_columns(
    path: str | os.PathLike[str], *, rename: Mapping[str, str] | None = None
) -> list[str]:
    """The column names of a table file (after ``rename``), reading it whole."""
    raw, _ = _load(path, check_rename(rename))
    return [str(c) for c in raw.columns]


def read_table(
    path: str | os.PathLike[str],
    *,
    kind: TableKind | None = None,
    today: Any = None,
    rename: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, TableKind]:
    """Read and validate any alsprog table, guessing its kind from its columns.

    Parameters
    ----------
    path : str or os.PathLike
        CSV/TSV or Parquet file.
    kind : {"visits", "subjects", "imaging", "long"}, optional
        Skip the guess (:func:`guess_kind`).
    today : datetime.date or str, optional
        The date of the plausibility check (no date may lie after it); default the
        current date.  Give it for reproducible results.
    rename : mapping of str to str, optional
        Column names of the file mapped to the dictionary's before the guess and
        the checks, e.g. ``{"patient": "subject_id"}``.

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
    rename = check_rename(rename)
    if kind is None:
        kind = guess_kind(table_columns(path, rename=rename))[0]
    if kind == "visits":
        return read_visits(path, today=today, rename=rename), kind
    if kind == "subjects":
        return read_subjects(path, today=today, rename=rename), kind
    if kind == "imaging":
        return read_imaging(path, today=today, rename=rename), kind
    if kind == "long":
        raw, ctx = _load(path, rename)
        df = _finish(raw, ctx)
        out = validate(df, source=ctx.name, today=today)
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
