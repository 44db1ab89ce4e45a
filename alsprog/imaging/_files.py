"""Opening imaging inputs safely: regular files only, read within a size limit.

Owns: :func:`open_regular` (open a path read-only and refuse, with an
:class:`ImagingError` naming it, anything that is not a regular file: a folder, a
named pipe, a device such as ``/dev/zero``, a socket, a dangling symbolic link or a
link loop) and :func:`read_text` (a small text file such as a lookup table, a
manifest or a FreeSurfer ``.stats`` file, read through :func:`open_regular`) and
:func:`read_text_table` (such a file as a CSV/TSV table of strings).
Leaves: parsing to the modules that read each format.

Why: ``open()`` on a named pipe blocks until a writer appears, and reading a device
such as ``/dev/zero`` or ``/dev/urandom`` never ends; both would hang an extraction or
exhaust memory.  The file is opened with ``O_NONBLOCK`` (so even a pipe swapped in
after a check cannot block the open) and checked with ``fstat`` on the open
descriptor, so what is checked is what is read.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from alsprog.errors import ImagingError

__all__ = ["MAX_TEXT_BYTES", "open_regular", "read_text"]

#: Largest text input (lookup table, manifest, sessions table, ``.stats`` file) read.
MAX_TEXT_BYTES = 64 * 1024 * 1024


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _link_note(path: Path) -> str:
    """`` (a symbolic link to X)`` when ``path`` is a link, else ``""``."""
    try:
        if path.is_symlink():
            return f" (a symbolic link to {os.readlink(path)})"
    except OSError:
        pass
    return ""


def open_regular(path: str | os.PathLike[str], what: str = "file") -> BinaryIO:
    """Open ``path`` read-only as a binary file object; it must be a regular file.

    Parameters
    ----------
    path : str or path-like
        The file; symbolic links are followed to a regular file only.
    what : str
        What the file should be, for messages (``"image"``, ``"lookup table"``).

    Returns
    -------
    BinaryIO
        An unbuffered-at-open, blocking-read file object; the caller closes it.

    Raises
    ------
    ImagingError
        Naming ``path``: missing, a dangling symbolic link, a link loop, a folder, a
        named pipe, a device or a socket, or not readable.
    """
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except OSError as exc:
        raise _open_error(p, what, exc) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ImagingError(
                f"{p}: is {_kind(mode)}{_link_note(p)}, not a regular {what} file; "
                f"point to the {what} file itself"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _open_error(p: Path, what: str, exc: OSError) -> ImagingError:
    if exc.errno == errno.ELOOP:
        return ImagingError(
            f"{p}: is a symbolic link loop{_link_note(p)}, not a regular {what} "
            f"file; point to the {what} file itself"
        )
    if exc.errno == errno.ENOENT and p.is_symlink():
        return ImagingError(
            f"{p}: is a dangling symbolic link{_link_note(p)}: its target does not "
            "exist"
        )
    if exc.errno == errno.EISDIR:
        return ImagingError(f"{p}: is a folder, not a regular {what} file")
    return ImagingError(f"{p}: cannot be read ({exc.strerror or exc})")


def read_text(
    path: str | os.PathLike[str],
    what: str = "file",
    *,
    max_bytes: int = MAX_TEXT_BYTES,
) -> str:
    """Read a small UTF-8 text file through :func:`open_regular`.

    Raises
    ------
    ImagingError
        As :func:`open_regular`; also when the file is larger than ``max_bytes`` or
        is not UTF-8 text (naming the 1-based line of the first bad byte).
    """
    with open_regular(path, what) as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ImagingError(
            f"{path}: is larger than {max_bytes // (1024 * 1024)} MiB; a {what} "
            "file is small text"
        )
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark is not part of the text
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ImagingError(
            f"{path}: cannot be read as UTF-8 text (line {line}: byte "
            f"{raw[exc.start : exc.start + 1]!r}); a {what} file is text, this one "
            "is garbled or binary"
        ) from exc


def read_text_table(path: str | os.PathLike[str], what: str) -> pd.DataFrame:
    """A small CSV (or, by a ``.tsv``/``.txt`` suffix, tab-separated) table read
    through :func:`read_text`, every cell a string and no cell turned into NaN.

    Raises
    ------
    ImagingError
        As :func:`read_text`; also when pandas cannot parse it as a table, naming
        the file and ``what`` it should have been.
    """
    import io

    path = Path(path)
    text = read_text(path, what)
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many parser error types
        raise ImagingError(f"{path}: cannot be read as a {what} ({exc})") from exc
