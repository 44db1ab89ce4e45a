"""Reading one NIfTI volume fast, with every failure an :class:`ImagingError`.

Owns: :func:`read_volume` (a ``.nii``/``.nii.gz`` file -> flat voxel vector in file
order, shape, affine and voxel size) and :func:`as_volume` (the same for an in-memory
nibabel image or array).
Leaves: atlases and lookup tables to :mod:`alsprog.imaging._atlas`, statistics to
:mod:`alsprog.imaging._extract`.

Why not ``nibabel.load(path).get_fdata()``: nibabel streams a gzip file through
``gzip.GzipFile`` in small reads and converts to float64; here the compressed bytes are
read in large chunks, inflated by ``zlib`` (the GIL is released, so threads overlap)
and the voxels viewed in place with ``numpy.frombuffer`` (no reshape, no float64
conversion). nibabel still parses and checks the header.

Safety: only regular files are opened (a named pipe or ``/dev/zero`` would hang or
never end; see :mod:`alsprog.imaging._files`); the header is parsed before any voxel
is read, an absurd shape is refused before anything is allocated, and at most the
bytes the header implies plus :data:`_GZIP_SLACK` are ever decompressed, so a gzip
bomb is refused after reading about as much as a real image of its header's shape.
"""

from __future__ import annotations

import io
import math
import os
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from alsprog.errors import ImagingError
from alsprog.imaging._files import open_regular

__all__ = ["MAX_DATA_BYTES", "MAX_VOXELS", "Volume", "as_volume", "read_volume"]

_GZIP_MAGIC = b"\x1f\x8b"
#: Bytes read before the header is parsed (a NIfTI-2 header is 540 bytes).
_MAX_HEADER = 540
#: Decompressed bytes allowed after the data the header implies.
_GZIP_SLACK = 64 * 1024
#: Largest data offset (header plus extensions) read.
_MAX_OFFSET = 64 * 1024 * 1024
#: Largest image read: voxels of the first 3 dimensions, and their bytes.
MAX_VOXELS = 2**28
MAX_DATA_BYTES = 2**31


@dataclass(frozen=True)
class Volume:
    """One 3-D volume: voxels as a flat vector in NIfTI (Fortran) order."""

    data: npt.NDArray[Any]
    shape: tuple[int, int, int]
    affine: npt.NDArray[np.float64]
    zooms: tuple[float, float, float]
    name: str

    def grid(self) -> npt.NDArray[Any]:
        """The voxels as a 3-D array (a view, Fortran order)."""
        return self.data.reshape(self.shape, order="F")


class _Reader:
    """Bytes of an image file, gunzipped on the fly, never more than asked for.

    ``read(n)`` returns up to ``n`` bytes of the (decompressed) file; the compressed
    file is read in chunks and inflated with ``max_length``, so a gzip bomb costs no
    more memory than the bytes the header asks for.
    """

    _CHUNK = 8 * 1024 * 1024

    def __init__(self, fh: BinaryIO, name: str) -> None:
        self._fh = fh
        self._name = name
        # reads never ask for more than the file holds: ``read(n)`` allocates n bytes
        self._left = os.fstat(fh.fileno()).st_size
        first = self._raw(2)
        self.gzip = first == _GZIP_MAGIC
        self._pending = first  # compressed input not yet given to zlib
        self._d: Any = zlib.decompressobj(wbits=31) if self.gzip else None
        self._member_done = False

    def read(self, n: int) -> bytes:
        if n <= 0:
            return b""
        if not self.gzip:
            head, self._pending = self._pending[:n], self._pending[n:]
            return head + (self._raw(n - len(head)) if n > len(head) else b"")
        parts: list[bytes] = []
        want = n
        while want > 0:
            if self._member_done:
                if not self._next_member():
                    break
            data = self._d.unconsumed_tail or self._pending or self._raw(self._CHUNK)
            self._pending = b""
            if not data:
                raise ImagingError(
                    f"{self._name}: gzip stream is truncated (the file ends before "
                    "the data does); copy the file again"
                )
            try:
                out = self._d.decompress(data, want)
            except zlib.error as exc:
                raise ImagingError(
                    f"{self._name}: cannot be read as gzip-compressed NIfTI ({exc})"
                ) from exc
            parts.append(out)
            want -= len(out)
            if self._d.eof:
                self._member_done = True
                self._pending = self._d.unused_data
        return b"".join(parts)

    def _raw(self, n: int) -> bytes:
        """Up to ``n`` bytes of the file itself."""
        n = min(n, self._left)
        if n <= 0:
            return b""
        data = self._fh.read(n)
        self._left -= len(data)
        return data

    def _next_member(self) -> bool:
        """Start the next gzip member, if any (several members are rare)."""
        rest = self._pending or self._raw(self._CHUNK)
        while rest and not rest.strip(b"\x00"):  # zero padding after the stream
            rest = self._raw(self._CHUNK)
        if not rest:
            self._pending = b""
            return False
        self._pending = rest
        self._d = zlib.decompressobj(wbits=31)
        self._member_done = False
        return True


def _header(buf: bytes, name: str) -> Any:
    """Parse a NIfTI-1 or NIfTI-2 header with nibabel."""
    import nibabel as nib
    from nibabel.spatialimages import HeaderDataError

    if len(buf) < 4:
        raise ImagingError(f"{name}: is not a NIfTI file (only {len(buf)} bytes)")
    size_le = int.from_bytes(buf[:4], "little")
    size_be = int.from_bytes(buf[:4], "big")
    if 348 in (size_le, size_be):
        klass: Any = nib.Nifti1Header
    elif 540 in (size_le, size_be):
        klass = nib.Nifti2Header
    else:
        raise ImagingError(
            f"{name}: is not a NIfTI file (header size {size_le} is neither 348 nor "
            "540); convert it to .nii or .nii.gz"
        )
    hdr_size = 348 if klass is nib.Nifti1Header else 540
    if len(buf) < hdr_size:
        raise ImagingError(
            f"{name}: is truncated ({len(buf)} bytes, the NIfTI header alone needs "
            f"{hdr_size})"
        )
    try:
        hdr = klass.from_fileobj(io.BytesIO(buf), check=True)  # shares buf
    except (HeaderDataError, ValueError) as exc:
        raise ImagingError(f"{name}: is not a valid NIfTI header ({exc})") from exc
    magic = bytes(hdr["magic"])
    if magic[:3] not in (b"n+1", b"n+2"):
        raise ImagingError(
            f"{name}: NIfTI magic {magic!r} is not a single-file image (n+1/n+2); "
            "convert the .hdr/.img pair to .nii"
        )
    return hdr


def _read(fh: BinaryIO, name: str, *, expect_3d: bool = True) -> Volume:
    from alsprog.imaging._gzread import FastReader  # the fastest inflater installed

    reader = FastReader(fh, name)
    head = reader.read(_MAX_HEADER)
    hdr = _header(head, name)
    shape = tuple(int(s) for s in hdr.get_data_shape())
    if len(shape) < 3:
        shape = shape + (1,) * (3 - len(shape))
    if expect_3d and any(s != 1 for s in shape[3:]):
        raise ImagingError(
            f"{name}: is {len(shape)}-D with shape {shape}; a 3-D map is expected "
            "(split the volumes, e.g. with nibabel.four_to_three)"
        )
    try:
        dtype = hdr.get_data_dtype()
    except Exception as exc:  # nibabel raises several types for unknown codes
        raise ImagingError(f"{name}: unsupported NIfTI data type ({exc})") from exc
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise ImagingError(
            f"{name}: voxel type {dtype} is not a real number; a scalar map is expected"
        )
    offset = int(hdr.get_data_offset())
    n = math.prod(shape[:3])
    if n > MAX_VOXELS or n * dtype.itemsize > MAX_DATA_BYTES:
        raise ImagingError(
            f"{name}: header gives shape {shape[:3]} ({n:,} voxels of {dtype}, "
            f"{n * dtype.itemsize / 2**30:.1f} GiB); at most {MAX_VOXELS:,} voxels "
            f"and {MAX_DATA_BYTES // 2**30} GiB are read (a corrupt header?)"
        )
    if offset > _MAX_OFFSET:
        raise ImagingError(
            f"{name}: header puts the voxel data at byte {offset:,} (vox_offset); at "
            f"most {_MAX_OFFSET:,} bytes of header extensions are read (a corrupt "
            "header?)"
        )
    need = offset + n * dtype.itemsize
    buf = head[:need] + reader.read(need - len(head))
    if len(buf) < need:
        raise ImagingError(
            f"{name}: is truncated ({len(buf)} bytes of data, {need} expected for "
            f"shape {shape[:3]} {dtype})"
        )
    if reader.gzip and not any(s != 1 for s in shape[3:]):
        # the whole image is read: a stream that goes on is corrupt or a bomb
        extra = len(reader.read(_GZIP_SLACK + 1))
        if extra > _GZIP_SLACK:
            raise ImagingError(
                f"{name}: decompresses to more than {need + _GZIP_SLACK:,} bytes, "
                f"though its header implies {need:,} (shape {shape[:3]} {dtype}); "
                "the file is corrupt or a decompression bomb and was not read further"
            )
    data = np.frombuffer(buf, dtype=dtype, count=n, offset=offset)
    if not dtype.isnative:
        data = data.astype(dtype.newbyteorder("="))
    slope, inter = hdr.get_slope_inter()
    if slope is not None and (slope != 1.0 or (inter or 0.0) != 0.0):
        data = data * np.float64(slope) + np.float64(inter or 0.0)
    affine = np.asarray(hdr.get_best_affine(), dtype=np.float64)
    zooms = tuple(float(z) for z in hdr.get_zooms()[:3])
    return Volume(data, shape[:3], affine, zooms, name)  # type: ignore[arg-type]


def read_volume(path: str | os.PathLike[str], *, expect_3d: bool = True) -> Volume:
    """Read a ``.nii`` or ``.nii.gz`` file into a :class:`Volume`.

    Raises :class:`ImagingError` naming the file when it is not a regular file (a
    folder, named pipe, device, dangling link or link loop), cannot be read, is not
    NIfTI, is truncated, has an absurd shape, decompresses to more than its header
    implies, is 4-D (with ``expect_3d``) or holds non-scalar voxels.  At most the
    bytes the header implies (plus a small slack) are ever decompressed.
    """
    name = str(path)
    with open_regular(path, "image") as fh:
        try:
            return _read(fh, name, expect_3d=expect_3d)
        except OSError as exc:
            raise ImagingError(
                f"{name}: cannot be read ({exc.strerror or exc})"
            ) from exc


def as_volume(obj: Any, name: str, *, expect_3d: bool = True) -> Volume:
    """A path, nibabel image or :class:`Volume` as a :class:`Volume`."""
    if isinstance(obj, Volume):
        return obj
    if isinstance(obj, str | os.PathLike):
        return read_volume(obj, expect_3d=expect_3d)
    if hasattr(obj, "dataobj") and hasattr(obj, "affine"):
        data = np.asanyarray(obj.dataobj)
        shape = data.shape + (1,) * max(0, 3 - data.ndim)
        if expect_3d and any(s != 1 for s in shape[3:]):
            raise ImagingError(
                f"{name}: is {len(shape)}-D with shape {shape}; a 3-D map is expected"
            )
        data = data.reshape(shape[:3])
        if data.dtype.kind not in "biuf":
            raise ImagingError(f"{name}: voxel type {data.dtype} is not a real number")
        zooms = tuple(float(z) for z in obj.header.get_zooms()[:3])
        return Volume(
            data.ravel(order="F"),
            shape[:3],  # type: ignore[arg-type]
            np.asarray(obj.affine, dtype=np.float64),
            zooms,  # type: ignore[arg-type]
            name,
        )
    raise TypeError(
        f"`{name}` must be a path or a nibabel image; got {type(obj).__name__}."
    )
