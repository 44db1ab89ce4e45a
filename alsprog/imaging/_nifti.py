"""Reading one NIfTI volume fast, with every failure an :class:`ImagingError`.

Owns: :func:`read_volume` (a ``.nii``/``.nii.gz`` file -> flat voxel vector in file
order, shape, affine and voxel size) and :func:`as_volume` (the same for an in-memory
nibabel image or array).
Leaves: atlases and lookup tables to :mod:`alsprog.imaging._atlas`, statistics to
:mod:`alsprog.imaging._extract`.

Why not ``nibabel.load(path).get_fdata()``: nibabel streams a gzip file through
``gzip.GzipFile`` in small reads and converts to float64; here the compressed bytes are
read at once, inflated in one ``zlib`` call (the GIL is released, so threads overlap)
and the voxels viewed in place with ``numpy.frombuffer`` (no reshape, no copy, no
float64 conversion). nibabel still parses and checks the header.
"""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.errors import ImagingError

__all__ = ["Volume", "as_volume", "read_volume"]

_GZIP_MAGIC = b"\x1f\x8b"


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


def _inflate(raw: bytes, name: str) -> bytes:
    """Decompress a gzip stream in one call; truncated or corrupt -> ImagingError."""
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(raw)
    except zlib.error as exc:
        raise ImagingError(
            f"{name}: cannot be read as gzip-compressed NIfTI ({exc})"
        ) from exc
    if not d.eof:
        raise ImagingError(
            f"{name}: gzip stream is truncated (the file ends before the data does); "
            "copy the file again"
        )
    if d.unused_data:  # several gzip members: rare, let the gzip module join them
        import gzip

        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImagingError(f"{name}: cannot be read as gzip ({exc})") from exc
    return out


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


def _decode(buf: bytes, name: str, *, expect_3d: bool = True) -> Volume:
    hdr = _header(buf, name)
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
    n = int(np.prod(shape[:3]))
    need = offset + n * dtype.itemsize
    if len(buf) < need:
        raise ImagingError(
            f"{name}: is truncated ({len(buf)} bytes of data, {need} expected for "
            f"shape {shape[:3]} {dtype})"
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

    Raises :class:`ImagingError` naming the file when it cannot be read, is not
    NIfTI, is truncated, is 4-D (with ``expect_3d``) or holds non-scalar voxels.
    """
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ImagingError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    buf = _inflate(raw, name) if raw[:2] == _GZIP_MAGIC else raw
    return _decode(buf, name, expect_3d=expect_3d)


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
