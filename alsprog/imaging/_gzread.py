"""Inflating gzip-compressed NIfTI with the fastest inflater installed.

Owns: :data:`INFLATERS` (the inflaters found, fastest first), :func:`inflater` (the one
used) and :class:`FastReader` (:class:`alsprog.imaging._nifti._Reader` with that
inflater).
Leaves: header parsing and the gzip-bomb guard to :mod:`alsprog.imaging._nifti`,
reducing the voxels to :mod:`alsprog.imaging._connectivity`.

Inflating is the floor of reading a ``desc-preproc_bold.nii.gz``: the stdlib's zlib
inflates about 230 MB/s on the benchmark machine, ISA-L (PyPI ``isal``,
``isal.isal_zlib``) about 2.7x and zlib-ng (PyPI ``zlib-ng``) about 2.5x that.
``isal`` is a dependency of alsprog, ``zlib-ng`` optional: the first of ``isal``,
``zlib-ng`` that imports is used, else the stdlib ``zlib``; all three produce the
same bytes (gzip is a standard), and all release the GIL while inflating, so threads
overlap.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, BinaryIO, NamedTuple

from alsprog.errors import ImagingError
from alsprog.imaging._nifti import _Reader

__all__ = ["INFLATERS", "FastReader", "Inflater", "inflater"]


class Inflater(NamedTuple):
    """A zlib-compatible inflater: its name, ``decompressobj`` and error types."""

    name: str
    decompressobj: Callable[..., Any]
    errors: tuple[type[BaseException], ...]


def _found() -> dict[str, Inflater]:
    out: dict[str, Inflater] = {}
    try:
        from isal import isal_zlib
    except ImportError:
        pass
    else:
        out["isal"] = Inflater("isal", isal_zlib.decompressobj, (isal_zlib.error,))
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        pass
    else:
        out["zlib-ng"] = Inflater("zlib-ng", zlib_ng.decompressobj, (zlib_ng.error,))
    out["zlib"] = Inflater("zlib", zlib.decompressobj, (zlib.error,))
    return out


#: Inflaters that import here, fastest first (``"zlib"`` always last).
INFLATERS: dict[str, Inflater] = _found()

#: Name of the inflater :class:`FastReader` uses by default (the fastest found); a
#: benchmark may set it to ``"zlib"`` to time the stdlib.
PREFERRED: str = next(iter(INFLATERS))


def inflater(name: str | None = None) -> Inflater:
    """The inflater ``name`` (default :data:`PREFERRED`).

    Examples
    --------
    >>> inflater("zlib").name
    'zlib'
    >>> inflater().name in INFLATERS
    True
    """
    key = PREFERRED if name is None else name
    if key not in INFLATERS:
        raise ValueError(
            f"inflater {key!r} is not installed; found {', '.join(INFLATERS)}"
        )
    return INFLATERS[key]


class FastReader(_Reader):
    """:class:`alsprog.imaging._nifti._Reader` inflating with :func:`inflater`.

    Same contract: ``read(n)`` returns up to ``n`` decompressed bytes, never
    inflates more than asked for (``max_length``), follows several gzip members and
    raises :class:`ImagingError` naming the file for a corrupt stream.
    """

    def __init__(self, fh: BinaryIO, name: str, using: str | None = None) -> None:
        self._inflater = inflater(using)
        super().__init__(fh, name)
        if self.gzip:
            self._d = self._inflater.decompressobj(wbits=31)
            # zlib rejects a gzip header whose method is not deflate (8) at once;
            # ISA-L waits for more input and would call the file truncated
            self._pending += self._raw(1)
            if len(self._pending) == 3 and self._pending[2] != 8:
                raise ImagingError(
                    f"{name}: cannot be read as gzip-compressed NIfTI (compression "
                    f"method {self._pending[2]} in the gzip header; only deflate, 8, "
                    "exists)"
                )

    def read(self, n: int) -> bytes:
        try:
            return super().read(n)
        except self._inflater.errors as exc:
            raise ImagingError(
                f"{self._name}: cannot be read as gzip-compressed NIfTI ({exc})"
            ) from exc

    def _next_member(self) -> bool:
        ok = super()._next_member()
        if ok:
            self._d = self._inflater.decompressobj(wbits=31)
        return ok
