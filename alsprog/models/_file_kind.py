"""What kind of file a path holds, told from its first bytes (magic numbers).

Owns: :func:`sniff_file`, which names a file's kind (zip/.npz, netCDF-4/HDF5,
netCDF-3, .npy, pickle, Parquet, compressed, text, empty, other binary) without
parsing it, so that a loader given the wrong file says what the file *is* instead of
repeating a parser's error ("pickled data" for a text file).
Leaves: parsing and checking each format to its loader
(:mod:`alsprog.models.lmm._io`, :mod:`alsprog.models.bayes._io`).
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileKind", "sniff_file"]

_HEAD = 4096

#: (leading bytes, kind, description); the first match wins.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"PK\x03\x04", "zip", "a zip archive (.npz)"),
    (b"PK\x05\x06", "zip", "an empty zip archive"),
    (b"\x89HDF\r\n\x1a\n", "hdf5", "a netCDF-4/HDF5 file"),
    (b"CDF\x01", "netcdf3", "a netCDF-3 (classic) file"),
    (b"CDF\x02", "netcdf3", "a netCDF-3 (64-bit offset) file"),
    (b"CDF\x05", "netcdf3", "a netCDF-3 (64-bit data) file"),
    (b"\x93NUMPY", "npy", "a single NumPy array (.npy)"),
    (b"PAR1", "parquet", "a Parquet table"),
    (b"\x1f\x8b", "gzip", "a gzip-compressed file"),
    (b"BZh", "bzip2", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "xz", "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", "zstd", "a zstd-compressed file"),
    (b"%PDF", "pdf", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "png", "a PNG image"),
)


@dataclass(frozen=True)
class FileKind:
    """A file's kind (``"zip"``, ``"hdf5"``, ``"text"``, ...) and a phrase for it."""

    kind: str
    description: str


def sniff_file(path: str | os.PathLike[str]) -> FileKind:
    """Name the kind of file at ``path`` from its first bytes.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    FileKind
        ``kind`` is one of ``"missing"``, ``"not_file"``, ``"unreadable"``,
        ``"empty"``, ``"zip"``, ``"hdf5"``, ``"netcdf3"``, ``"npy"``, ``"pickle"``,
        ``"parquet"``, ``"gzip"``, ``"bzip2"``, ``"xz"``, ``"zstd"``, ``"pdf"``,
        ``"png"``, ``"text"`` or ``"binary"``; ``description`` reads "a text file
        (starts 'subject_id,months')" and the like.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("subject_id,months\\nP1,0\\n")
    >>> sniff_file(p)
    FileKind(kind='text', description="a text file (starts 'subject_id,months')")
    """
    p = Path(path)
    if not p.exists():
        return FileKind("missing", "no such file")
    if not p.is_file():
        return FileKind("not_file", "not a regular file (a folder?)")
    try:
        with open(p, "rb") as fh:
            head = fh.read(_HEAD)
    except OSError as exc:
        return FileKind("unreadable", f"unreadable ({exc.strerror or exc})")
    if not head:
        return FileKind("empty", "an empty file (0 bytes)")
    for magic, kind, text in _MAGIC:
        if head.startswith(magic):
            return FileKind(kind, text)
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return FileKind(
            "pickle",
            "a Python pickle (alsprog never loads pickles: loading one can run code)",
        )
    decoded = _as_text(head)
    if decoded is not None:
        lines = decoded.lstrip("\ufeff").splitlines()
        first = next((line.strip() for line in lines if line.strip()), "")
        first = first[:40] + ("..." if len(first) > 40 else "")
        return FileKind("text", f"a text file (starts {first!r})")
    return FileKind(
        "binary", f"binary data of an unknown kind (first bytes {head[:8].hex(' ')})"
    )


def _as_text(head: bytes) -> str | None:
    """``head`` decoded as UTF-8 text, or None for binary data."""
    if b"\x00" in head:
        return None
    try:  # a multi-byte character may be cut at the end of the head
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f\v")
    return text if controls <= len(text) // 100 else None
