"""Forging saved ``.npz`` model files in tests: copy one, editing its JSON header,
its arrays or its raw zip members (the refusal tests of every ``.npz`` model format
and the safety tests use it)."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def rewrite_npz(src, dst, *, header=None, drop=(), replace=None):
    """Copy the saved file ``src`` to ``dst``, calling ``header`` on its decoded
    header (to edit it in place), dropping the ``drop`` arrays and setting the
    ``replace`` ones; returns ``dst``."""
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    h = json.loads(arrays["__header__"].tobytes().decode())
    if header is not None:
        header(h)
    arrays["__header__"] = np.frombuffer(json.dumps(h).encode(), dtype=np.uint8)
    for k in drop:
        del arrays[k]
    arrays.update(replace or {})
    with open(dst, "wb") as fh:
        np.savez(fh, **arrays)
    return dst


def npy(arr, *, allow_pickle: bool = False) -> bytes:
    """``arr`` as the bytes of a ``.npy`` file."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A hand-written .npy (version 1.0) header declaring ``shape``: no data."""
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * (63 - (10 + len(text)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def members(path: Path) -> dict[str, bytes]:
    """Each zip member's name and bytes."""
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def write_zip(path: Path, parts: dict[str, bytes], deflated=()) -> Path:
    """Write ``parts`` as a zip (the ``deflated`` names compressed, others stored)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in parts.items():
            method = zipfile.ZIP_DEFLATED if name in deflated else zipfile.ZIP_STORED
            zf.writestr(name, data, compress_type=method)
    return path


def craft(
    src: Path,
    dst: Path,
    *,
    header: Callable[[dict], None] | None = None,
    arrays: dict[str, object] | None = None,
    raw: dict[str, bytes] | None = None,
    drop: tuple[str, ...] = (),
    deflated: tuple[str, ...] = (),
) -> Path:
    """Copy a saved .npz, editing its JSON header, arrays or raw members."""
    parts = members(src)
    h = json.loads(np.load(io.BytesIO(parts["__header__.npy"])).tobytes())
    if header is not None:
        header(h)
    parts["__header__.npy"] = npy(np.frombuffer(json.dumps(h).encode(), np.uint8))
    for key in drop:
        del parts[f"{key}.npy"]
    for key, value in (arrays or {}).items():
        parts[f"{key}.npy"] = npy(np.asarray(value))
    for key, data in (raw or {}).items():
        parts[f"{key}.npy"] = data
    return write_zip(dst, parts, deflated=tuple(f"{k}.npy" for k in deflated))
