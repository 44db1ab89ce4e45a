"""Forging saved ``.npz`` model files in tests: copy one, editing its JSON header or
its arrays (the refusal tests of every ``.npz`` model format use it)."""

from __future__ import annotations

import json

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
