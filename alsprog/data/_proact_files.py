"""The files of a PRO-ACT export: finding them, reading them, parsing their cells.

Owns: the file-name and column-name matching of PRO-ACT exports (current
``PROACT_ALSFRS.csv`` names, older ``alsfrs.csv`` / ``AlsHistory.csv`` names, an
optional ``F_`` prefix, any case), :class:`ProactFile` (one file's text cells with
their lines and the problems found in them) and the cell parsers (numbers, whole
days, yes/no) that record a :class:`~alsprog.errors.Problem` naming file, line,
subject, column and value for every cell they cannot read.
Leaves: what each table means to :mod:`alsprog.data._proact_tables`, the cohort
and its report to :mod:`alsprog.data._proact`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alsprog.data._csvfile import read_delimited
from alsprog.data._dictionary import load_dictionary
from alsprog.errors import DataValidationError, Problem

__all__ = [
    "TABLES",
    "Note",
    "ProactFile",
    "find_files",
    "read_file",
]

#: The PRO-ACT tables alsprog reads, by their name without prefix, case or ``_``.
TABLES = (
    "alsfrs",
    "demographics",
    "alshistory",
    "deathdata",
    "fvc",
    "treatment",
    "riluzole",
)


def table_key(filename: str) -> str:
    """``PROACT_ALSFRS.csv``, ``F_PROACT_ALSFRS.csv``, ``alsfrs.csv`` -> ``alsfrs``;
    ``AlsHistory.csv`` -> ``alshistory``."""
    stem = filename.lower()
    for suffix in (".csv.gz", ".csv"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = stem.removeprefix("f_").removeprefix("proact_")
    return stem.replace("_", "").replace("-", "").replace(" ", "")


def column_key(name: str) -> str:
    """Column names matched ignoring case and runs of ``_`` (PRO-ACT writes both
    ``Subject_Liters_Trial_2`` and ``Subject_Liters__Trial_2_``)."""
    return re.sub(r"_+", "_", name.strip().lower()).strip("_")


def find_files(folder: Path) -> tuple[dict[str, Path], list[str], list[Problem]]:
    """The export's files by table, the names of other files, and naming problems.

    Two files that name the same table (``PROACT_FVC.csv`` and ``Fvc.csv``) are a
    problem: alsprog does not guess which one is meant.
    """
    found: dict[str, list[Path]] = {}
    others: list[str] = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or not p.name.lower().endswith((".csv", ".csv.gz")):
            continue
        key = table_key(p.name)
        if key in TABLES:
            found.setdefault(key, []).append(p)
        else:
            others.append(p.name)
    problems = [
        Problem(
            f"{len(paths)} files name the {key!r} table: "
            f"{', '.join(q.name for q in paths)}; keep one of them",
            rule="file",
            source=str(folder),
        )
        for key, paths in found.items()
        if len(paths) > 1
    ]
    return {k: v[0] for k, v in found.items()}, others, problems


@dataclass(frozen=True)
class Note:
    """One line of the import report: what a rule did to how many rows of a file."""

    source: str
    rule: str
    count: int
    message: str

    def __str__(self) -> str:
        return f"{Path(self.source).name}: {self.message}"


@dataclass
class ProactFile:
    """One PRO-ACT file as text cells, with each row's line and its problems."""

    path: Path
    cells: pd.DataFrame
    lines: np.ndarray
    problems: list[Problem] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    subject: np.ndarray | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    def column(self, *names: str) -> str | None:
        """The file's own spelling of the first of ``names`` it has."""
        for n in names:
            hit = self.columns.get(column_key(n))
            if hit is not None:
                return hit
        return None

    def require(self, *names: str) -> list[str | None]:
        """The file's spelling of each of ``names``; a problem for each one missing."""
        out: list[str | None] = []
        for n in names:
            hit = self.column(n)
            if hit is None:
                self.problems.append(
                    Problem(
                        f"the file has no {n!r} column (columns: "
                        f"{', '.join(list(self.cells.columns)[:30])})",
                        rule="missing_column",
                        source=self.name,
                        line=1,
                        column=n,
                    )
                )
            out.append(hit)
        return out

    def problem(
        self, pos: int, column: str | None, value: Any, message: str, rule: str
    ) -> None:
        sid = None
        if self.subject is not None and not np.isnan(self.subject[pos]):
            sid = str(int(self.subject[pos]))
        self.problems.append(
            Problem(
                message,
                rule=rule,
                source=self.name,
                line=int(self.lines[pos]),
                subject_id=sid,
                column=column,
                value=value,
            )
        )

    def missing(self, column: str) -> np.ndarray:
        """True where the cell is empty or one of the dictionary's missing tokens."""
        s = self.cells[column].str.strip()
        return s.isin(_missing_tokens()).to_numpy()

    def numbers(self, column: str | None) -> np.ndarray:
        """The column as float64 (NaN where missing); a problem for each other cell
        that is not a number."""
        n = len(self.cells)
        if column is None:
            return np.full(n, np.nan)
        text = self.cells[column].str.strip()
        miss = self.missing(column)
        vals = np.array(pd.to_numeric(text.where(~miss), errors="coerce"), dtype=float)
        bad = np.isnan(vals) & ~miss
        bad |= np.isinf(vals)
        for pos in np.flatnonzero(bad):
            self.problem(
                int(pos), column, text.iloc[pos], "is not a number", "not_a_number"
            )
        vals[bad] = np.nan
        return vals

    def whole(self, column: str | None, what: str) -> np.ndarray:
        """A column of whole numbers written ``8`` or ``8.0`` (days, subject ids)."""
        vals = self.numbers(column)
        frac = ~np.isnan(vals) & (vals != np.round(vals))
        for pos in np.flatnonzero(frac):
            self.problem(
                int(pos),
                column,
                self.cells[column].iloc[pos].strip(),
                f"is not a whole number ({what})",
                "not_whole",
            )
        vals[frac] = np.nan
        return vals

    def text(self, column: str | None) -> pd.Series:
        """The column's stripped text, ``<NA>`` where missing."""
        if column is None:
            return pd.Series(pd.NA, index=self.cells.index, dtype="str")
        s = self.cells[column].str.strip()
        return s.where(~pd.Series(self.missing(column), index=s.index))

    def yes_no(self, column: str | None) -> np.ndarray:
        """``Yes``/``No`` (also true/false, 1/0, any case) as 1.0/0.0, NaN missing."""
        t = self.text(column).str.lower()
        out = np.full(len(t), np.nan)
        yes = t.isin(("yes", "y", "true", "1", "1.0")).to_numpy()
        no = t.isin(("no", "n", "false", "0", "0.0")).to_numpy()
        out[yes] = 1.0
        out[no] = 0.0
        for pos in np.flatnonzero(~yes & ~no & t.notna().to_numpy()):
            self.problem(
                int(pos), column, t.iloc[pos], "is not Yes or No", "not_yes_no"
            )
        return out


def _missing_tokens() -> tuple[str, ...]:
    return load_dictionary().missing_values


def read_file(path: Path) -> ProactFile:
    """Read one export file and its ``subject_id`` column (whole numbers).

    A file that cannot be read as a table (not UTF-8, ragged rows, ...) gives its
    problems with an empty table, so that the other files are still checked.
    """
    try:
        cells, lines = read_delimited(
            path,
            name=str(path),
            sep=",",
            gzipped=path.name.lower().endswith(".gz"),
        )
    except DataValidationError as err:
        return ProactFile(
            path, pd.DataFrame(), np.zeros(0, dtype=int), err.problem_list
        )
    f = ProactFile(path, cells, np.asarray(lines, dtype=int))
    f.columns = {}
    for c in cells.columns:
        f.columns.setdefault(column_key(c), c)
    (sid_col,) = f.require("subject_id")
    if sid_col is not None:
        f.subject = f.whole(sid_col, "PRO-ACT subject ids are integers")
        for pos in np.flatnonzero(np.isnan(f.subject) & f.missing(sid_col)):
            f.problem(int(pos), sid_col, "", "subject_id is empty", "required")
    return f


def subject_labels(ids: np.ndarray) -> np.ndarray:
    """Integer subject ids as alsprog's text ids (``329.0`` -> ``"329"``)."""
    return np.array([str(int(v)) for v in ids], dtype=object)
