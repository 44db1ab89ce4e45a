"""Data frames and indexes stored as plain arrays in a saved ``.npz`` model.

Owns: :func:`encode_frame` / :func:`encode_index` (numbers, strings and categoricals
with their pandas dtypes as JSON specs plus arrays; anything else is refused, never
pickled), :func:`check_frame` / :func:`check_index` / :func:`check_values`, which
check a spec read back from a file and register the members it needs, with their
shapes, on a :class:`~alsprog.models._npz.Check` before any array is read, and
:func:`decode_frame` / :func:`decode_index`, which rebuild them from checked arrays,
and :func:`require_complete` (a saved fit's rows have no missing value).
Leaves: the archive and its checks to :mod:`alsprog.models._npz`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from alsprog.errors import SavedModelError
from alsprog.models._npz import Check, SavedFile, join, short

__all__ = [
    "Unsupported",
    "check_frame",
    "check_index",
    "check_values",
    "decode_frame",
    "decode_index",
    "encode_frame",
    "encode_index",
    "require_complete",
]

#: pandas extension dtypes a numeric column may be restored to.
_PANDAS_DTYPE = re.compile(
    r"(U?Int(8|16|32|64)|Float(32|64)|boolean"
    r"|(u?int(8|16|32|64)|float|double|bool)\[pyarrow\])"
)


class Unsupported(TypeError):
    """A column or index that cannot be stored as plain arrays."""


# --------------------------------------------------------------------- values
def _json_name(name: object, what: str) -> object:
    if name is None or isinstance(name, str | bool | int | float):
        return name
    if isinstance(name, np.integer | np.floating | np.bool_):
        return name.item()
    raise Unsupported(f"{what} has a name of type {type(name).__name__}")


def _encode_values(
    values: pd.Series | pd.Index, key: str, arrays: dict[str, np.ndarray], what: str
) -> dict[str, Any]:
    """Store one column's values under ``key``; return how to rebuild its dtype."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cat = pd.Categorical(values)
        arrays[f"{key}.codes"] = np.asarray(cat.codes)
        return {
            "kind": "categorical",
            "ordered": bool(dtype.ordered),
            "categories": _encode_values(
                dtype.categories, f"{key}.categories", arrays, what
            ),
        }
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        arrays[key] = np.asarray(values)
        return {"kind": "numpy"}
    if isinstance(dtype, pd.StringDtype) or dtype == np.dtype(object):
        obj = np.asarray(values, dtype=object)
        if not all(isinstance(v, str) for v in obj):
            raise Unsupported(f"{what} holds values that are not all strings")
        if any(v.endswith("\x00") for v in obj):
            raise Unsupported(f"{what} holds strings ending in NUL")
        arrays[key] = obj.astype(str) if len(obj) else np.array([], dtype="<U1")
        if isinstance(dtype, pd.StringDtype):
            na_nan = isinstance(dtype.na_value, float) and math.isnan(dtype.na_value)
            return {"kind": "string", "storage": dtype.storage, "na_nan": na_nan}
        return {"kind": "object"}
    numpy_dtype = getattr(dtype, "numpy_dtype", None)  # Int64, Float64, boolean
    if isinstance(numpy_dtype, np.dtype) and not bool(pd.isna(values).any()):
        arrays[key] = np.asarray(values.to_numpy(dtype=numpy_dtype))
        return {"kind": "numpy", "pandas_dtype": str(dtype)}
    raise Unsupported(f"{what} has dtype {dtype} that cannot be saved")


# ---------------------------------------------------------- frames and indexes
def encode_index(
    index: pd.Index, key: str, arrays: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Describe ``index`` as JSON plus arrays stored under ``key``.

    Raises
    ------
    TypeError
        If a level's dtype or name has no plain-array form.
    """
    if isinstance(index, pd.RangeIndex):
        return {
            "kind": "range",
            "start": int(index.start),
            "stop": int(index.stop),
            "step": int(index.step),
            "name": _json_name(index.name, key),
        }
    if isinstance(index, pd.MultiIndex):
        return {
            "kind": "multi",
            "names": [_json_name(n, key) for n in index.names],
            "levels": [
                _encode_values(index.get_level_values(i), f"{key}.{i}", arrays, key)
                for i in range(index.nlevels)
            ],
        }
    return {
        "kind": "values",
        "name": _json_name(index.name, key),
        "values": _encode_values(index, key, arrays, key),
    }


def encode_frame(
    frame: pd.DataFrame, key: str, arrays: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Describe ``frame`` (string column names) as JSON plus arrays under ``key``.

    Raises
    ------
    TypeError
        If a column name is not a string or a column/index dtype has no plain-array
        form (the message names it).
    """
    cols = []
    for i, name in enumerate(frame.columns):
        if not isinstance(name, str):
            raise Unsupported(f"column {name!r} of {key} is not named by a string")
        cols.append(
            {
                "name": name,
                "values": _encode_values(
                    frame.iloc[:, i], f"{key}.col{i}", arrays, f"column {name!r}"
                ),
            }
        )
    return {
        "n_rows": len(frame),
        "columns": cols,
        "index": encode_index(frame.index, f"{key}.index", arrays),
    }


# ------------------------------------------------------------ spec checks
def check_values(
    ch: Check,
    spec: Any,
    key: str,
    n: int | None,
    field: str,
    where: str,
    *,
    categorical: bool = True,
) -> None:
    """Check one column's spec (as :func:`_encode_values` writes it)."""
    if not isinstance(spec, Mapping):
        ch.fail(where, f"is {short(spec)}; expected a JSON object.")
    kinds = ("numpy", "string", "object", *(("categorical",) if categorical else ()))
    kind = ch.get(spec, "kind", str, where)
    if kind not in kinds:
        ch.fail(
            join(where, "kind"),
            f"is {kind!r}; expected one of {', '.join(map(repr, kinds))}.",
        )
    if kind == "categorical":
        ch.keys(spec, where, ("kind", "ordered", "categories"))
        ch.get(spec, "ordered", bool, where)
        ch.member(f"{key}.codes", field, (n,), "iu")
        check_values(
            ch,
            spec["categories"],
            f"{key}.categories",
            None,
            field,
            join(where, "categories"),
            categorical=False,
        )
    elif kind == "numpy":
        ch.keys(spec, where, ("kind",), ("pandas_dtype",))
        if "pandas_dtype" in spec:
            dt = ch.get(spec, "pandas_dtype", str, where)
            if not _PANDAS_DTYPE.fullmatch(dt):
                ch.fail(
                    join(where, "pandas_dtype"),
                    f"is {dt!r}; expected a pandas numeric dtype such as 'Int64'.",
                )
        ch.member(key, field, (n,), "biufcmM")
    elif kind == "string":
        ch.keys(spec, where, ("kind", "storage", "na_nan"))
        storage = ch.get(spec, "storage", str, where)
        if storage not in ("python", "pyarrow"):
            ch.fail(
                join(where, "storage"),
                f"is {storage!r}; expected 'python' or 'pyarrow'.",
            )
        ch.get(spec, "na_nan", bool, where)
        ch.member(key, field, (n,), "U")
    else:
        ch.keys(spec, where, ("kind",))
        ch.member(key, field, (n,), "U")


def check_index(ch: Check, spec: Any, key: str, n: int, field: str, where: str) -> None:
    """Check an index spec (as :func:`encode_index` writes it) of length ``n``."""
    if not isinstance(spec, Mapping):
        ch.fail(where, f"is {short(spec)}; expected a JSON object.")
    kind = ch.get(spec, "kind", str, where)
    if kind == "range":
        ch.keys(spec, where, ("kind", "start", "stop", "step", "name"))
        start, stop, step = (
            ch.get(spec, k, int, where) for k in ("start", "stop", "step")
        )
        if step == 0:
            ch.fail(join(where, "step"), "is 0; expected a non-zero integer.")
        length = max(0, -(-(stop - start) // step))
        if length != n:
            ch.fail(
                where,
                f"describes {length} rows; expected {n}; the file is inconsistent.",
            )
        ch.label(spec, "name", where)
    elif kind == "multi":
        ch.keys(spec, where, ("kind", "names", "levels"))
        names = ch.get(spec, "names", list, where)
        levels = ch.get(spec, "levels", list, where)
        if not 1 <= len(levels) <= 64 or len(names) != len(levels):
            ch.fail(
                where,
                f"has {len(levels)} levels and {len(names)} names; expected 1 to "
                "64 of each.",
            )
        for i, name in enumerate(names):
            ch.label({"name": name}, "name", join(where, f"names[{i}]"))
        for i, level in enumerate(levels):
            check_values(ch, level, f"{key}.{i}", n, field, f"{where}.levels[{i}]")
    elif kind == "values":
        ch.keys(spec, where, ("kind", "name", "values"))
        ch.label(spec, "name", where)
        check_values(ch, spec["values"], key, n, field, join(where, "values"))
    else:
        ch.fail(
            join(where, "kind"),
            f"is {kind!r}; expected 'range', 'multi' or 'values'.",
        )


def check_frame(ch: Check, spec: Any, key: str, n: int, columns: list[str]) -> None:
    """Check a frame spec (as :func:`encode_frame` writes it)."""
    ch.keys(spec, key, ("n_rows", "columns", "index"))
    n_rows = ch.count(spec, "n_rows", key)
    if n_rows != n:
        ch.fail(
            key,
            f"should have {n_rows} rows (frame.n_rows) but scalars.n_obs is {n}; "
            "the file is inconsistent.",
        )
    cols = ch.get(spec, "columns", list, key)
    names = []
    for i, col in enumerate(cols):
        where = f"{key}.columns[{i}]"
        ch.keys(col, where, ("name", "values"))
        names.append(ch.get(col, "name", str, where))
        check_values(ch, col["values"], f"{key}.col{i}", n, key, join(where, "values"))
    if names != columns:
        ch.fail(
            key,
            f"has columns {names!r} but names.variables is {columns!r}; the file "
            "is inconsistent.",
        )
    check_index(ch, spec["index"], f"{key}.index", n, key, join(key, "index"))


# ------------------------------------------------------------------ decoding
def _decode_values(
    spec: Mapping[str, Any], key: str, arrays: SavedFile, field: str
) -> pd.Index:
    kind = spec.get("kind")
    if kind == "categorical":
        codes = arrays.array(f"{key}.codes", field=field, kind="iu")
        cats = _decode_values(spec["categories"], f"{key}.categories", arrays, field)
        if codes.size and (int(codes.min()) < -1 or int(codes.max()) >= len(cats)):
            bad = codes[(codes < -1) | (codes >= len(cats))][0]
            arrays.fail(
                field,
                f"has category code {int(bad)}; expected -1 to {len(cats) - 1} "
                f"({len(cats)} categories).",
            )
        if not cats.is_unique:
            arrays.fail(field, "names a category twice.")
        return pd.Index(
            pd.Categorical.from_codes(
                codes, categories=cats, ordered=bool(spec["ordered"])
            )
        )
    if kind == "numpy":
        arr = arrays.array(key, field=field, kind="biufcmM")
        out = pd.Index(arr, tupleize_cols=False)
        if "pandas_dtype" in spec:
            try:
                out = out.astype(spec["pandas_dtype"])
            except (TypeError, ValueError, OverflowError) as exc:
                raise arrays.error(
                    field, f"cannot be restored as {spec['pandas_dtype']} ({exc})."
                ) from exc
        return out
    arr = arrays.array(key, field=field, kind="U")
    obj = arr.astype(object)
    if kind == "object":
        return pd.Index(obj, dtype=object, tupleize_cols=False)
    if kind == "string":
        dtype = (
            pd.StringDtype(spec["storage"], na_value=np.nan)
            if spec.get("na_nan")
            else pd.StringDtype(spec["storage"])
        )
        return pd.Index(pd.array(obj, dtype=dtype))
    arrays.fail(field, f"has unknown kind {kind!r}.")


def decode_index(spec: Mapping[str, Any], key: str, arrays: SavedFile) -> pd.Index:
    """Inverse of :func:`encode_index` (``spec`` already checked)."""
    kind = spec.get("kind")
    if kind == "range":
        return pd.RangeIndex(
            spec["start"], spec["stop"], spec["step"], name=spec.get("name")
        )
    if kind == "multi":
        levels = [
            _decode_values(s, f"{key}.{i}", arrays, key)
            for i, s in enumerate(spec["levels"])
        ]
        return pd.MultiIndex.from_arrays(levels, names=spec["names"])
    if kind == "values":
        return _decode_values(spec["values"], key, arrays, key).rename(spec["name"])
    arrays.fail(key, f"has unknown kind {kind!r}.")


def decode_frame(spec: Mapping[str, Any], key: str, arrays: SavedFile) -> pd.DataFrame:
    """Inverse of :func:`encode_frame` (``spec`` already checked)."""
    try:
        n = int(spec["n_rows"])
        index = decode_index(spec["index"], f"{key}.index", arrays)
        data = {
            col["name"]: _decode_values(col["values"], f"{key}.col{i}", arrays, key)
            for i, col in enumerate(spec["columns"])
        }
        if len(index) != n or any(len(v) != n for v in data.values()):
            arrays.fail(key, f"should have {n} rows; the columns or index differ.")
        frame = pd.DataFrame(data, index=index)
    except SavedModelError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise arrays.error(key, f"cannot be rebuilt ({exc!r}).") from exc
    return frame


def require_complete(frame: pd.DataFrame, key: str, arrays: SavedFile) -> None:
    """Refuse a saved frame of a fit's rows with a missing value (the rows a fit
    uses are complete)."""
    for name in frame.columns:
        miss = frame[name].isna().to_numpy()
        if miss.any():
            arrays.fail(
                key,
                f"column {name!r} has a missing value at row "
                f"{int(np.flatnonzero(miss)[0])}; the saved rows are the complete "
                "rows of the fit.",
            )
