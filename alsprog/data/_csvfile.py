"""Reading a delimited text file (CSV/TSV) as raw cells, refusing a corrupted one.

Owns: :func:`read_delimited`, which turns the bytes of a ``.csv``/``.tsv`` (optionally
gzip-compressed) file into a table of text cells and the physical line where each
record starts, and every check on the file as text: empty file, binary content, an
encoding other than UTF-8 (named by line and byte offset), another separator than the
one the suffix promises, a quote never closed, a row with fewer or more fields than the
header, empty or repeated column names.  pandas' own reader pads short rows, shifts
long ones into the index and renames repeated names; this one refuses them instead.
Leaves: what the cells mean (types, ranges, categories) to :mod:`alsprog.data._columns`.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from alsprog.errors import DataValidationError, Problem

__all__ = ["MAX_TABLE_BYTES", "read_delimited"]

#: Largest table file (after decompression) read into memory: 2 GiB.
MAX_TABLE_BYTES = 2 * 1024**3

#: Leading bytes of file formats that are not text tables, and what to do instead.
_SIGNATURES = (
    (b"PAR1", "a Parquet file: give it the suffix .parquet"),
    (b"\x1f\x8b", "gzip-compressed: give it the suffix .csv.gz (or .tsv.gz)"),
    (
        b"PK\x03\x04",
        "a ZIP archive (an Excel .xlsx workbook?): export the sheet as CSV",
    ),
    (
        b"\xd0\xcf\x11\xe0",
        "an Office document (an Excel .xls workbook?): export it as CSV",
    ),
    (b"%PDF", "a PDF document"),
    (b"\x89HDF", "an HDF5/netCDF file"),
    (b"SQLite format 3", "an SQLite database"),
)
_SEPARATORS = {",": "','", "\t": "tab", ";": "';'", "|": "'|'"}


def _refuse(name: str, message: str, *, line: int | None = None) -> DataValidationError:
    return DataValidationError(
        [Problem(message, rule="file", source=name, line=line)], source=name
    )


def _read_bytes(path: Path, name: str, gzipped: bool) -> bytes:
    size = path.stat().st_size
    if not gzipped:
        if size > MAX_TABLE_BYTES:
            raise _refuse(
                name,
                f"the file is {size / 1024**3:.1f} GiB; alsprog reads tables of up to "
                f"{MAX_TABLE_BYTES / 1024**3:.0f} GiB (save it as Parquet)",
            )
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read(MAX_TABLE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise _refuse(name, f"cannot be decompressed as gzip ({exc})") from exc
    if len(data) > MAX_TABLE_BYTES:
        raise _refuse(
            name,
            f"decompresses to more than {MAX_TABLE_BYTES / 1024**3:.0f} GiB; alsprog "
            "reads tables of up to that size",
        )
    return data


def _line_of(data: bytes, offset: int) -> int:
    """1-based physical line of byte ``offset`` (``\\r\\n``, ``\\n`` or ``\\r`` end a line)."""
    head = data[:offset]
    return head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1


def _decode(data: bytes, name: str) -> str:
    """The file's text, or a refusal that says what the bytes are instead."""
    if not data.strip(b" \t\r\n\x0c\x0b"):
        raise _refuse(
            name,
            "the file is empty (expected a header line naming the columns, then one "
            "row per record)",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _refuse(
            name,
            "the file is UTF-16 encoded (byte-order mark "
            f"{data[:2].hex(' ').upper()}); save it as UTF-8 CSV",
        )
    for magic, what in _SIGNATURES:
        if data.startswith(magic):
            raise _refuse(name, f"the file is not a text table: it is {what}")
    nul = data.find(b"\x00")
    if nul >= 0:
        sample = data[:4096]
        utf16 = sample.count(b"\x00") > len(sample) // 4
        what = (
            "it looks UTF-16 encoded: save it as UTF-8 CSV"
            if utf16
            else "a binary file, not CSV text"
        )
        raise _refuse(
            name,
            f"NUL byte at byte offset {nul}: {what}",
            line=_line_of(data, nul),
        )
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    shift = len(data) - len(body)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + shift
        bad = data[offset : offset + 1].hex().upper()
        n_bad = body.decode("utf-8", errors="replace").count("\ufffd") - body.decode(
            "utf-8", errors="ignore"
        ).count("\ufffd")
        more = f" ({n_bad} invalid bytes in all)" if n_bad > 1 else ""
        line = _line_of(data, offset)
        raise _refuse(
            name,
            f"byte 0x{bad} at byte offset {offset} is not valid UTF-8"
            f"{more}: the file is in another encoding (Latin-1 or Windows-1252?); "
            "save it as UTF-8",
            line=line,
        ) from None


def _records(text: str, sep: str, name: str) -> tuple[list[list[str]], list[int]]:
    """Every record of ``text`` and the physical line where it starts."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    rows: list[list[str]] = []
    starts: list[int] = []
    prev = 0
    try:
        for rec in reader:
            rows.append(rec)
            starts.append(prev + 1)
            prev = reader.line_num
    except csv.Error as exc:
        line = prev + 1
        reason = str(exc)
        if "unexpected end of data" in reason or "new-line character" in reason:
            what = "a quoted field opened on this line is never closed"
        elif "field larger than field limit" in reason:
            what = (
                "a field is longer than 128 KiB (a quote never closed, or not a table?)"
            )
        else:
            what = f"the quoting is malformed ({reason})"
        raise _refuse(name, what, line=line) from None
    return rows, starts


def _sniff(header_line: str, expected: str) -> str | None:
    """The separator a one-field header line seems to use instead of ``expected``."""
    counts = {s: header_line.count(s) for s in _SEPARATORS if s != expected}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] > 0 else None


def read_delimited(
    path: str | Path, *, name: str, sep: str, gzipped: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a delimited text file as text cells, checking it is a well-formed table.

    Parameters
    ----------
    path : str or pathlib.Path
        The file; only read.
    name : str
        How messages name the file.
    sep : str
        The separator the file's suffix promises (``","`` or ``"\\t"``).
    gzipped : bool, default False
        Decompress first.

    Returns
    -------
    (pandas.DataFrame, numpy.ndarray)
        One row per non-blank record, every cell a ``str`` (surrounding spaces of
        column names removed), and the physical line of the file where each record
        starts (the header is line 1 when it is the first line).

    Raises
    ------
    DataValidationError
        Listing every problem of the file as text, each with its line.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "v.csv"
    >>> _ = p.write_text('subject_id,note\\nP1,"two\\nlines"\\nP2,x\\n')
    >>> df, lines = read_delimited(p, name="v.csv", sep=",")
    >>> df["subject_id"].tolist(), lines.tolist()
    (['P1', 'P2'], [2, 4])
    """
    path = Path(path)
    data = _read_bytes(path, name, gzipped)
    text = _decode(data, name)
    rows, starts = _records(text, sep, name)
    # the header is the first non-blank record
    first = next((i for i, r in enumerate(rows) if any(c.strip() for c in r)), None)
    if first is None:
        raise _refuse(name, "the file has no header line (only blank lines)")
    header = [c.strip() for c in rows[first]]
    hline = starts[first]
    body = rows[first + 1 :]
    body_lines = starts[first + 1 :]
    problems: list[Problem] = []

    def add(message: str, line: int | None, *, rule: str = "file", column=None) -> None:
        problems.append(
            Problem(message, rule=rule, source=name, line=line, column=column)
        )

    if len(header) == 1:
        other = _sniff(rows[first][0], sep)
        if other is not None:
            suffix = {"\t": ".tsv"}.get(other)
            fix = (
                f"name the file {suffix}"
                if suffix
                else f"save it with {_SEPARATORS[sep]}"
            )
            if sep == "\t" and other == ",":
                fix = "name the file .csv"
            raise _refuse(
                name,
                f"the header has a single column {header[0][:80]!r}: the separator "
                f"looks like {_SEPARATORS[other]}, not {_SEPARATORS[sep]} ({fix})",
                line=hline,
            )
    empty = [i + 1 for i, c in enumerate(header) if not c]
    if empty:
        add(
            f"the header has {len(empty)} empty column name(s) (column position(s) "
            f"{', '.join(map(str, empty[:10]))})",
            hline,
            rule="header",
        )
    counts = Counter(c for c in header if c)
    for col, n in counts.items():
        if n > 1:
            where = [str(i + 1) for i, c in enumerate(header) if c == col]
            add(
                f"column {col!r} appears {n} times in the header (positions "
                f"{', '.join(where)}); every column needs its own name",
                hline,
                rule="header",
                column=col,
            )
    width = len(header)
    keep: list[int] = []
    for k, rec in enumerate(body):
        if not any(c.strip() for c in rec):
            continue  # a blank line (or only separators) is no record
        if len(rec) != width:
            extra = ""
            if len(rec) > width and not any(c.strip() for c in rec[width:]):
                extra = " (the extra fields are empty: a trailing separator?)"
            add(
                f"{len(rec)} fields, but the header has {width}{extra}: a missing or "
                f"extra {_SEPARATORS[sep]} (or an unquoted {_SEPARATORS[sep]} inside "
                "a value) would shift the values into the wrong columns",
                body_lines[k],
                rule="fields",
            )
            continue
        keep.append(k)
    if not problems and not keep:
        add("the file has a header but no data rows", hline, rule="empty")
    if problems:
        raise DataValidationError(problems, source=name)
    cells = np.empty((len(keep), width), dtype=object)
    for j, k in enumerate(keep):
        cells[j] = body[k]
    raw = pd.DataFrame(
        {i: pd.array(cells[:, i], dtype="str") for i in range(width)},
        index=pd.RangeIndex(len(keep)),
    )
    raw.columns = header
    lines = np.asarray([body_lines[k] for k in keep], dtype=np.int64)
    return raw, lines
