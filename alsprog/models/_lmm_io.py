"""Saved LinearMixedModels: one NumPy ``.npz`` file, never a pickle.

Owns: the file layout of :meth:`LinearMixedModel.save` / :meth:`~LinearMixedModel.load`
(a JSON header ``{"model", "version", "format", "params", ...}`` stored as UTF-8 bytes
plus named numeric/string arrays, read back with ``allow_pickle=False``), the encoding
of data-frame columns and indexes as plain arrays (numbers, strings, categoricals,
with their pandas dtypes), and the checks that turn a missing, corrupt or mismatched
file into a :class:`~alsprog.errors.SavedModelError` naming the file and the field.
Leaves: which fitted state is saved and how it is restored to
:mod:`alsprog.models._lmm`; atomic writes to :mod:`alsprog._io`.
"""

from __future__ import annotations

import json
import math
import os
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._io import atomic_path
from alsprog.errors import SavedModelError

__all__ = [
    "FORMAT",
    "SavedFile",
    "decode_frame",
    "decode_index",
    "encode_frame",
    "encode_index",
    "load_model",
    "read_saved",
    "save_model",
    "write_saved",
]

#: Layout version of the file (bumped when the fields change).
FORMAT = 1
_HEADER = "__header__"


class _Unsupported(TypeError):
    """A column or index that cannot be stored as plain arrays."""


# --------------------------------------------------------------------- values
def _json_name(name: object, what: str) -> object:
    if name is None or isinstance(name, str | bool | int | float):
        return name
    if isinstance(name, np.integer | np.floating | np.bool_):
        return name.item()
    raise _Unsupported(f"{what} has a name of type {type(name).__name__}")


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
            raise _Unsupported(f"{what} holds values that are not all strings")
        if any(v.endswith("\x00") for v in obj):
            raise _Unsupported(f"{what} holds strings ending in NUL")
        arrays[key] = obj.astype(str) if len(obj) else np.array([], dtype="<U1")
        if isinstance(dtype, pd.StringDtype):
            na_nan = isinstance(dtype.na_value, float) and math.isnan(dtype.na_value)
            return {"kind": "string", "storage": dtype.storage, "na_nan": na_nan}
        return {"kind": "object"}
    numpy_dtype = getattr(dtype, "numpy_dtype", None)  # Int64, Float64, boolean
    if isinstance(numpy_dtype, np.dtype) and not bool(pd.isna(values).any()):
        arrays[key] = np.asarray(values.to_numpy(dtype=numpy_dtype))
        return {"kind": "numpy", "pandas_dtype": str(dtype)}
    raise _Unsupported(f"{what} has dtype {dtype} that cannot be saved")


def _decode_values(
    spec: Mapping[str, Any], key: str, arrays: SavedFile, field: str
) -> pd.Index:
    kind = spec.get("kind")
    if kind == "categorical":
        codes = arrays.array(f"{key}.codes", field=field)
        cats = _decode_values(spec["categories"], f"{key}.categories", arrays, field)
        if codes.dtype.kind not in "iu" or (
            codes.size and (codes.min() < -1 or codes.max() >= len(cats))
        ):
            raise SavedModelError(f"{arrays.path}: field {field!r} has bad codes.")
        return pd.Index(
            pd.Categorical.from_codes(
                codes, categories=cats, ordered=bool(spec["ordered"])
            )
        )
    arr = arrays.array(key, field=field)
    if kind == "numpy":
        if arr.dtype.kind not in "biufcmM":
            raise SavedModelError(
                f"{arrays.path}: field {field!r} should be numeric; got {arr.dtype}."
            )
        out = pd.Index(arr, tupleize_cols=False)
        if "pandas_dtype" in spec:
            out = out.astype(spec["pandas_dtype"])
        return out
    if arr.dtype.kind != "U":
        raise SavedModelError(
            f"{arrays.path}: field {field!r} should hold strings; got {arr.dtype}."
        )
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
    raise SavedModelError(f"{arrays.path}: field {field!r} has unknown kind {kind!r}.")


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


def decode_index(spec: Mapping[str, Any], key: str, arrays: SavedFile) -> pd.Index:
    """Inverse of :func:`encode_index`."""
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
    raise SavedModelError(f"{arrays.path}: field {key!r} has unknown kind {kind!r}.")


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
            raise _Unsupported(f"column {name!r} of {key} is not named by a string")
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


def decode_frame(spec: Mapping[str, Any], key: str, arrays: SavedFile) -> pd.DataFrame:
    """Inverse of :func:`encode_frame`."""
    try:
        n = int(spec["n_rows"])
        index = decode_index(spec["index"], f"{key}.index", arrays)
        data = {
            col["name"]: _decode_values(col["values"], f"{key}.col{i}", arrays, key)
            for i, col in enumerate(spec["columns"])
        }
        if len(index) != n or any(len(v) != n for v in data.values()):
            raise SavedModelError(
                f"{arrays.path}: field {key!r} should have {n} rows; the columns or "
                "index differ."
            )
        frame = pd.DataFrame(data, index=index)
    except SavedModelError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SavedModelError(
            f"{arrays.path}: field {key!r} cannot be rebuilt ({exc!r})."
        ) from exc
    return frame


# ------------------------------------------------------------------- the file
class SavedFile:
    """Read access to a saved file's arrays, naming the file and field on failure."""

    def __init__(self, path: Path, npz: Any) -> None:
        self.path = path
        self._npz = npz

    def __enter__(self) -> SavedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._npz.close()

    def array(
        self,
        key: str,
        *,
        field: str | None = None,
        shape: tuple[int, ...] | None = None,
        kind: str | None = None,
    ) -> npt.NDArray[Any]:
        """The array ``key``; ``SavedModelError`` if it is missing or malformed."""
        field = field or key
        if key not in self._npz.files:
            raise SavedModelError(f"{self.path}: field {field!r} is missing.")
        try:
            arr = self._npz[key]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise SavedModelError(
                f"{self.path}: field {field!r} cannot be read ({exc})."
            ) from exc
        if shape is not None and arr.shape != shape:
            raise SavedModelError(
                f"{self.path}: field {field!r} has shape {arr.shape}; expected {shape}."
            )
        if kind is not None and arr.dtype.kind not in kind:
            raise SavedModelError(
                f"{self.path}: field {field!r} has dtype {arr.dtype}; expected numbers."
            )
        return arr


def write_saved(
    path: str | os.PathLike[str], header: Mapping[str, Any], arrays: Mapping[str, Any]
) -> None:
    """Write ``header`` (JSON) and ``arrays`` to one ``.npz`` file, atomically."""
    try:
        text = json.dumps(header, allow_nan=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise SavedModelError(f"{path}: the header cannot be written ({exc}).") from exc
    payload: dict[str, Any] = {
        _HEADER: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    }
    for k, v in arrays.items():
        arr = np.asarray(v)
        if arr.dtype == object:  # never let an object array (a pickle) in
            raise SavedModelError(f"{path}: field {k!r} would need pickle.")
        payload[k] = arr
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, allow_pickle=False, **payload)


def read_saved(path: str | os.PathLike[str]) -> tuple[dict[str, Any], SavedFile]:
    """Open a file written by :func:`write_saved`: its header and its arrays.

    Raises
    ------
    SavedModelError
        Missing or unreadable file, not an ``.npz`` archive, or no valid header.
    """
    p = Path(path)
    try:
        npz = np.load(p, allow_pickle=False)
    except FileNotFoundError as exc:
        raise SavedModelError(f"{p}: no such file.") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SavedModelError(
            f"{p}: cannot be read as a saved alsprog model (.npz) ({exc})."
        ) from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise SavedModelError(
            f"{p}: is a single NumPy array, not a saved alsprog model (.npz)."
        )
    saved = SavedFile(p, npz)
    try:
        raw = saved.array(_HEADER, field="header", kind="u")
        try:
            header = json.loads(raw.astype(np.uint8).tobytes().decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise SavedModelError(
                f"{p}: field 'header' is not valid JSON ({exc})."
            ) from exc
        if not isinstance(header, dict):
            raise SavedModelError(f"{p}: field 'header' is not a JSON object.")
    except SavedModelError:
        npz.close()
        raise
    return header, saved


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# ------------------------------------------------------------ LinearMixedModel
def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted :class:`~alsprog.models.LinearMixedModel` to ``path``."""
    from alsprog._version import __version__

    arrays: dict[str, np.ndarray] = {}
    try:
        frame_spec = encode_frame(model._frame, "frame", arrays)
        levels_spec = encode_index(model._design_info["levels"], "levels", arrays)
    except _Unsupported as exc:
        raise SavedModelError(
            f"{path}: cannot save {type(model).__name__}: {exc} (convert it to numbers, "
            "strings or a categorical, or reset the data's index, and refit)."
        ) from exc
    x_first, _ = model._fixed_matrix(model._first_rows)
    z_first = model._last_Z
    arrays.update(
        fe_params=model.fe_params_.to_numpy(),
        cov_beta=model._cov_beta,
        cov_re=model.cov_re_.to_numpy(),
        theta=model.theta_.to_numpy(),
        random_effects=model.random_effects_.to_numpy(),
        Q=model._Q,
        ZtX=model._ZtX,
        resid=model.resid_.to_numpy(),
        x_first=x_first,
        z_first=z_first,
    )
    header = {
        "model": type(model).__name__,
        "version": __version__,
        "format": FORMAT,
        "params": model.get_params(deep=False),
        "names": {
            "fe": list(model.fe_params_.index),
            "re": list(model.cov_re_.index),
            "theta": list(model.theta_.index),
            "variables": list(model._design_info["variables"]),
        },
        "scalars": {
            "scale": model.scale_,
            "deviance": model._deviance,
            "converged": model.converged_,
            "singular": model.singular_,
            "n_obs": model.n_obs_,
            "n_groups": model.n_groups_,
            "n_dropped": model.n_dropped_,
            "n_iter": model.n_iter_,
            "time_range": list(model._time_range),
        },
        "frame": frame_spec,
        "levels": levels_spec,
    }
    write_saved(path, header, arrays)


def load_model(cls: Any, path: str | os.PathLike[str]) -> Any:
    """Rebuild a :class:`~alsprog.models.LinearMixedModel` saved by :func:`save_model`."""
    header, saved = read_saved(path)
    with saved:
        return _restore(cls, header, saved)


def _restore(cls: Any, header: Mapping[str, Any], saved: SavedFile) -> Any:
    from alsprog._version import __version__
    from alsprog.errors import ModelSpecificationError
    from alsprog.models._formula import build_mixed_design

    p = saved.path

    def get(mapping: Mapping[str, Any], key: str, types: Any, where: str = "") -> Any:
        name = f"{where}.{key}" if where else key
        if not isinstance(mapping, Mapping) or key not in mapping:
            raise SavedModelError(f"{p}: field {name!r} is missing.")
        value = mapping[key]
        allowed = types if isinstance(types, tuple) else (types,)
        if not isinstance(value, allowed) or (
            isinstance(value, bool) and bool not in allowed
        ):
            raise SavedModelError(
                f"{p}: field {name!r} is {value!r}; expected {_type_names(types)}."
            )
        return value

    model_name = get(header, "model", str)
    if model_name != cls.__name__:
        raise SavedModelError(
            f"{p}: field 'model' is {model_name!r}, expected {cls.__name__!r}."
        )
    version = get(header, "version", str)
    if version != __version__:
        raise SavedModelError(
            f"{p}: field 'version' is {version!r} but this is alsprog {__version__}; "
            "refit the model with this version."
        )
    fmt = get(header, "format", int)
    if fmt != FORMAT:
        raise SavedModelError(f"{p}: field 'format' is {fmt!r}, expected {FORMAT}.")
    params = get(header, "params", dict)
    try:
        model = cls(**params)
    except TypeError as exc:
        raise SavedModelError(f"{p}: field 'params' does not fit: {exc}.") from exc
    names = get(header, "names", dict)
    fe = get(names, "fe", list, "names")
    re = get(names, "re", list, "names")
    theta_names = get(names, "theta", list, "names")
    variables = get(names, "variables", list, "names")
    sc = get(header, "scalars", dict)
    n_obs = get(sc, "n_obs", int, "scalars")
    G = get(sc, "n_groups", int, "scalars")
    time_range = get(sc, "time_range", list, "scalars")
    if len(time_range) != 2 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in time_range
    ):
        raise SavedModelError(
            f"{p}: field 'scalars.time_range' is {time_range!r}; expected 2 numbers."
        )

    frame = decode_frame(get(header, "frame", dict), "frame", saved)
    try:
        levels = decode_index(get(header, "levels", dict), "levels", saved)
    except SavedModelError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SavedModelError(
            f"{p}: field 'levels' cannot be rebuilt ({exc!r})."
        ) from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            design = build_mixed_design(model.formula, frame)
    except ModelSpecificationError as exc:
        raise SavedModelError(
            f"{p}: field 'frame': the model's design cannot be rebuilt ({exc})"
        ) from exc
    for field, saved_value, rebuilt in [
        ("names.fe", fe, design.fe_names),
        ("names.re", re, design.re_names),
        ("names.theta", theta_names, list(design.template.names)),
        ("names.variables", variables, design.variables),
        ("scalars.n_obs", n_obs, design.X.shape[0]),
        ("scalars.n_groups", G, len(design.group_levels)),
    ]:
        if saved_value != rebuilt:
            raise SavedModelError(
                f"{p}: field {field!r} is {saved_value!r} but the saved rows give "
                f"{rebuilt!r}; the file is inconsistent."
            )
    if not levels.equals(design.group_levels):
        raise SavedModelError(
            f"{p}: field 'levels' differs from the groups of the saved rows."
        )

    P, q, k = len(fe), len(re), len(theta_names)

    def arr(key: str, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
        return saved.array(key, shape=shape, kind="f")

    model._set_state(
        design,
        beta=arr("fe_params", (P,)),
        cov_beta=arr("cov_beta", (P, P)),
        cov_re=arr("cov_re", (q, q)),
        sigma2=float(get(sc, "scale", (float, int), "scalars")),
        deviance=float(get(sc, "deviance", (float, int), "scalars")),
        theta=arr("theta", (k,)),
        b=arr("random_effects", (G, q)),
        Q=arr("Q", (G, q, q)),
        ZtX=arr("ZtX", (G, q, P)),
        resid=arr("resid", (n_obs,)),
        converged=get(sc, "converged", bool, "scalars"),
        n_iter=get(sc, "n_iter", int, "scalars"),
        n_dropped=get(sc, "n_dropped", int, "scalars"),
    )
    model.singular_ = get(sc, "singular", bool, "scalars")
    model._frame = design.frame
    first = np.full(G, -1, dtype=np.intp)
    first[design.groups[::-1]] = np.arange(n_obs)[::-1]
    model._first_rows = frame.iloc[first][design.variables].reset_index(drop=True)
    model._time_range = (float(time_range[0]), float(time_range[1]))
    # the rebuilt formula must give the saved design (levels, transforms' state)
    x_first, _ = model._fixed_matrix(model._first_rows)
    for key, mine in [("x_first", x_first), ("z_first", model._last_Z)]:
        ref = arr(key, mine.shape)
        tol = 1e-12 * max(1.0, float(np.max(np.abs(ref), initial=0.0)))
        if not np.allclose(mine, ref, rtol=1e-12, atol=tol):
            raise SavedModelError(
                f"{p}: field {key!r}: the design rebuilt from the saved rows differs "
                "from the fitted one (saved by another formulaic version?)."
            )
    return model


def _type_names(types: Any) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in ts)
