"""Saved models as NumPy ``.npz`` archives: written atomically, read only after checks.

Owns: :func:`write_saved` (a JSON header stored as UTF-8 bytes plus named numeric or
string arrays, never an object array, so never a pickle), :func:`open_saved` and
:func:`read_saved`, which check a file before any array is read: its kind from the
first bytes (a netCDF, text or pickle file is named as such); the zip directory
(member names, stored or deflated members only, sizes the archive can hold: deflate
expands at most ~1032-fold); each member's ``.npy`` header read without loading the
data (no object or structured dtypes; exactly the bytes its shape needs); then the
JSON header (bounded size, valid UTF-8 JSON object).  :class:`SavedFile` reads a
member only after its declared shape and dtype were matched with what the caller's
header implies (:meth:`SavedFile.check`), so no read allocates more than the file's
own counts justify; :class:`Check` phrases the header checks.  A file may embed
another model's file under a key prefix (a joint model's longitudinal mixed model):
:meth:`SavedFile.part` is the view of those members, and ``Check(..., prefix=...)``
its header checks, so the embedded model's own checks run on it unchanged and name
its fields ``<prefix><field>``.  Every refusal is a
:class:`~alsprog.errors.SavedModelError` naming the file and the field.
Leaves: each model's header fields and restore to its module
(:mod:`alsprog.models.lmm._io`), data frames as arrays to
:mod:`alsprog.models._npz_frames`, file kinds to :mod:`alsprog.models._file_kind`.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from alsprog._io import atomic_path
from alsprog.errors import SavedModelError
from alsprog.models._file_kind import sniff_file

__all__ = [
    "HEADER",
    "MAX_HEADER_BYTES",
    "MAX_MEMBERS",
    "Check",
    "SavedFile",
    "join",
    "open_saved",
    "read_saved",
    "short",
    "write_saved",
]

HEADER = "__header__"
_WHAT = "an alsprog .npz model file"

#: Largest JSON header accepted, in bytes (a real one is a few kB).
MAX_HEADER_BYTES = 16 * 2**20
#: Most members an archive may list (a real one has a few dozen).
MAX_MEMBERS = 4096
#: Largest ``.npy`` header (numpy's own default limit).
_NPY_HEADER_MAX = 10_000
#: deflate expands data at most ~1032-fold: a member claiming more is forged.
_DEFLATE_MAX_RATIO = 1032
_KIND_NAMES = {
    "f": "floating-point numbers",
    "iu": "integers",
    "u": "unsigned bytes",
    "U": "strings",
    "biufcmM": "numbers",
}


# ------------------------------------------------------------- header checks
@dataclass(frozen=True)
class _Want:
    """What one member must be: its field, shape (None: any length) and dtype kinds."""

    field: str
    shape: tuple[int | None, ...]
    kinds: str


class Check:
    """Checks of the JSON header; each failure names the file and the field.

    Parameters
    ----------
    path : pathlib.Path
        The file, for messages.
    model : str
        The class whose file this is, for messages.
    prefix : str, optional
        Put before every field a message names: the header checked is embedded in
        another file under this prefix (as :meth:`SavedFile.part`'s members are).

    Examples
    --------
    >>> from pathlib import Path
    >>> ch = Check(Path("m.npz"), "LinearMixedModel", prefix="longitudinal.")
    >>> ch.count({"n_obs": 0}, "n_obs", "scalars", low=1)
    Traceback (most recent call last):
    ...
    alsprog.errors.SavedModelError: m.npz: field 'longitudinal.scalars.n_obs' is 0; \
expected an integer >= 1.
    """

    def __init__(self, path: Path, model: str, *, prefix: str = "") -> None:
        self.path = path
        self.model = model
        self.prefix = prefix
        self.want: dict[str, _Want] = {}

    def fail(self, field: str, text: str) -> NoReturn:
        raise SavedModelError(f"{self.path}: field {self.prefix + field!r} {text}")

    def keys(
        self,
        mapping: Any,
        field: str,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
    ) -> Mapping[str, Any]:
        if not isinstance(mapping, Mapping):
            self.fail(field, f"is {short(mapping)}; expected a JSON object.")
        for key in required:
            if key not in mapping:
                self.fail(join(field, key), "is missing.")
        extra = [k for k in mapping if k not in required and k not in optional]
        if extra:
            self.fail(
                join(field, extra[0]),
                f"is not part of a {self.model} file; the file was not written by "
                f"{self.model}.save or was edited.",
            )
        return mapping

    def get(self, mapping: Mapping[str, Any], key: str, types: Any, where: str) -> Any:
        """``mapping[key]`` if it has one of the JSON ``types`` (bool is not int)."""
        name = join(where, key)
        if key not in mapping:
            self.fail(name, "is missing.")
        value = mapping[key]
        allowed = types if isinstance(types, tuple) else (types,)
        if not isinstance(value, allowed) or (
            isinstance(value, bool) and bool not in allowed
        ):
            self.fail(name, f"is {short(value)}; expected {_type_names(allowed)}.")
        return value

    def identity(self, header: Mapping[str, Any], cls: Any, fmt: int) -> None:
        """The header's ``model``, ``version`` and ``format``: ``cls``'s file, written
        by this alsprog, in format ``fmt`` (another alsprog model's file is named)."""
        from alsprog._version import __version__

        model_name = self.get(header, "model", str, "")
        if model_name != cls.__name__:
            from alsprog import models

            known = model_name in models.__all__  # another alsprog model's file
            hint = f" (this is a {model_name} file)" if known else ""
            self.fail("model", f"is {model_name!r}, expected {cls.__name__!r}{hint}.")
        version = self.get(header, "version", str, "")
        if version != __version__:
            self.fail(
                "version",
                f"is {version!r} but this is alsprog {__version__}; refit the model "
                "with this version.",
            )
        got = self.get(header, "format", int, "")
        if got != fmt:
            self.fail("format", f"is {got!r}, expected {fmt}.")

    def params(
        self, header: Mapping[str, Any], cls: Any, types: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """The header's ``params``: exactly ``cls``'s constructor parameters, each of
        its JSON ``types`` (any type for a parameter ``types`` does not name)."""
        params = self.get(header, "params", dict, "")
        names = cls._get_param_names()
        for key in params:
            if key not in names:
                self.fail(
                    join("params", key),
                    f"is not a parameter of {cls.__name__} (its parameters: "
                    f"{', '.join(names)}).",
                )
        for key in names:
            self.get(params, key, types.get(key, (object,)), "params")
        return params  # type: ignore[no-any-return]

    def refuse_params(self, exc: Exception) -> NoReturn:
        """Fail on a parameter the model's own check refused: the field is the
        name in backquotes that starts the message, else ``params``."""
        m = re.match(r"`(\w+)`", str(exc))
        self.fail(f"params.{m.group(1)}" if m else "params", f"is refused: {exc}")

    def count(
        self, mapping: Mapping[str, Any], key: str, where: str, *, low: int = 0
    ) -> int:
        value = self.get(mapping, key, int, where)
        if value < low:
            self.fail(join(where, key), f"is {value}; expected an integer >= {low}.")
        return int(value)

    def number(
        self,
        mapping: Mapping[str, Any],
        key: str,
        where: str,
        *,
        positive: bool = False,
    ) -> float:
        value = float(self.get(mapping, key, (int, float), where))
        if not math.isfinite(value) or (positive and value <= 0):
            self.fail(
                join(where, key),
                f"is {value!r}; expected a {'positive ' if positive else ''}finite "
                "number.",
            )
        return value

    def names(self, mapping: Mapping[str, Any], key: str, where: str) -> list[str]:
        value = self.get(mapping, key, list, where)
        field = join(where, key)
        for v in value:
            if not isinstance(v, str):
                self.fail(field, f"holds {short(v)}; expected names (strings).")
        seen: set[str] = set()
        for v in value:
            if v in seen:
                self.fail(field, f"names {v!r} twice.")
            seen.add(v)
        return list(value)

    def label(self, mapping: Mapping[str, Any], key: str, where: str) -> None:
        """An index or level name: what :func:`_json_name` writes."""
        self.get(mapping, key, (type(None), str, bool, int, float), where)

    def member(
        self, key: str, field: str, shape: tuple[int | None, ...], kinds: str
    ) -> None:
        """Register the member ``key`` the header implies: its shape and dtype kinds."""
        self.want[key] = _Want(field, shape, kinds)


def join(where: str, key: str) -> str:
    """The dotted name of ``key`` inside the field ``where``."""
    return f"{where}.{key}" if where else key


def short(value: object) -> str:
    """``repr(value)``, cut to 60 characters for a message."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _type_names(types: tuple[type, ...]) -> str:
    names = {
        "NoneType": "null",
        "str": "str",
        "int": "int",
        "float": "float",
        "bool": "bool",
        "list": "list",
        "dict": "dict",
    }
    return " or ".join(names.get(t.__name__, t.__name__) for t in types)


# ------------------------------------------------------------------- the file
@dataclass(frozen=True)
class _Member:
    """One ``.npy`` member as its headers describe it (no data read)."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


class SavedFile:
    """An opened ``.npz`` whose zip directory and member headers were checked.

    Member data is read only by :meth:`array`, after :meth:`check` (or the caller)
    has matched each member's declared shape and dtype with what the JSON header
    implies, so no read allocates more than the file can justify.

    :meth:`part` gives the members under a key prefix as a file of their own (a
    view of the same archive): its keys are the members' names without the prefix,
    and its messages name fields and members with it.
    """

    def __init__(
        self,
        path: Path,
        zf: zipfile.ZipFile,
        members: dict[str, _Member],
        *,
        prefix: str = "",
    ) -> None:
        self.path = path
        self._zf = zf
        self.members = members
        #: Put before every key and field this file names (``""``: the whole file).
        self.prefix = prefix

    def __enter__(self) -> SavedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the archive (a :meth:`part` leaves it to the whole file)."""
        if not self.prefix:
            self._zf.close()

    def part(self, prefix: str) -> SavedFile:
        """The members whose keys start with ``prefix``, as a file of their own.

        The view shares the archive (and its checked member headers); its keys are
        the members' keys without ``prefix``, and every field or member it names in
        a message carries ``prefix`` again.  In a view the header key is an ordinary
        member: :attr:`data_keys` lists it, so the embedded model refuses it.

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.npz"
        >>> write_saved(path, {"model": "X"}, {"a": np.zeros(2), "sub.b": np.ones(3)})
        >>> header, saved = read_saved(path)
        >>> with saved:
        ...     sub = saved.part("sub.")
        ...     print(sorted(sub.data_keys), sub.array("b"))
        ...     sub.check("c")
        Traceback (most recent call last):
        ...
        alsprog.errors.SavedModelError: .../x.npz: field 'sub.c' is missing.
        """
        members = {
            key[len(prefix) :]: m
            for key, m in self.members.items()
            if key.startswith(prefix) and len(key) > len(prefix)
        }
        return SavedFile(self.path, self._zf, members, prefix=self.prefix + prefix)

    @property
    def data_keys(self) -> set[str]:
        """The members' keys, without the JSON header of the whole file."""
        keys = set(self.members)
        return keys if self.prefix else keys - {HEADER}

    def name(self, field: str) -> str:
        """The full name of ``field`` in a message (with the view's prefix)."""
        return self.prefix + field

    def error(self, field: str, text: str) -> SavedModelError:
        """The refusal ``<file>: field '<field>' <text>`` (to raise, or chain)."""
        return SavedModelError(f"{self.path}: field {self.name(field)!r} {text}")

    def fail(self, field: str, text: str) -> NoReturn:
        raise self.error(field, text)

    def require_finite(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Refuse the first array of ``arrays`` (field name -> numbers) holding a
        NaN or an infinity, naming the value and its index."""
        for key, arr in arrays.items():
            if not np.all(np.isfinite(arr)):
                bad = np.argwhere(~np.isfinite(arr))[0]
                self.fail(
                    key,
                    f"holds {float(arr[tuple(bad)])!r} at "
                    f"{tuple(int(i) for i in bad)}; expected finite numbers.",
                )

    def require_symmetric(
        self, key: str, arr: np.ndarray, *, finite_only: bool = False
    ) -> None:
        """Refuse ``arr`` (a covariance matrix, or a stack of them in its last two
        axes) unless it equals its transpose to 1e-8 of its largest entry; with
        ``finite_only`` the non-finite entries (an unidentified direction's
        variance) are left out of the comparison."""
        a = np.asarray(arr, dtype=float)
        at = np.swapaxes(a, -1, -2)
        keep = (
            np.isfinite(a) & np.isfinite(at) if finite_only else np.full(a.shape, True)
        )
        scale = float(np.max(np.abs(a[keep]), initial=0.0))
        tol = 1e-8 * max(1.0, scale)
        if not np.allclose(a[keep], at[keep], rtol=1e-8, atol=tol):
            self.fail(key, "is not symmetric; expected a covariance matrix.")

    def rebuild(self, field: str, build: Any) -> Any:
        """``build()`` (the fit's own code on the saved rows), its warnings silenced;
        a data or specification error is a refusal of ``field``."""
        import warnings

        from alsprog.errors import DataValidationError, ModelSpecificationError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return build()
        except (ModelSpecificationError, DataValidationError, TypeError) as exc:
            raise SavedModelError(
                f"{self.path}: field {self.name(field)!r}: the model's design cannot "
                f"be rebuilt ({exc})"
            ) from exc

    def require_rebuilt(self, checks: list[tuple[str, Any, Any]]) -> None:
        """Refuse the first ``(field, saved, rebuilt)`` whose saved value differs
        from what the saved rows give when the model's own code rebuilds it."""
        for field, want, got in checks:
            if want != got:
                self.fail(
                    field,
                    f"is {want!r} but the saved rows give {got!r}; the file is "
                    "inconsistent.",
                )

    def require_llf(
        self, field: str, saved: float, rebuilt: float, *, rel_tol: float = 1e-9
    ) -> None:
        """Refuse a saved log-likelihood that the saved estimates do not give on
        the saved rows."""
        if not math.isclose(rebuilt, saved, rel_tol=rel_tol, abs_tol=1e-8):
            self.fail(
                field,
                f"is {saved!r} but the saved estimates give {rebuilt!r} on the saved "
                "rows; the file is inconsistent.",
            )

    def check(
        self,
        key: str,
        *,
        field: str | None = None,
        shape: tuple[int | None, ...] | None = None,
        kind: str | None = None,
    ) -> _Member:
        """The member ``key``, its declared shape and dtype checked; no data read."""
        field = field or key
        m = self.members.get(key)
        if m is None:
            self.fail(
                field,
                "is missing."
                if field == key
                else f"is missing (member {self.name(key)!r}).",
            )
        where = (
            repr(self.name(field))
            if field == key
            else f"{self.name(field)!r} (member {self.name(key)!r})"
        )
        if shape is not None and (
            len(m.shape) != len(shape)
            or any(
                w is not None and w != s for w, s in zip(shape, m.shape, strict=True)
            )
        ):
            dims = ["any" if w is None else str(w) for w in shape]
            want = f"({', '.join(dims)}{',' if len(dims) == 1 else ''})"
            raise SavedModelError(
                f"{self.path}: field {where} has shape {m.shape}; expected {want}."
            )
        if kind is not None and m.dtype.kind not in kind:
            raise SavedModelError(
                f"{self.path}: field {where} has dtype {m.dtype}; expected "
                f"{_KIND_NAMES.get(kind, kind)}."
            )
        return m

    def array(
        self,
        key: str,
        *,
        field: str | None = None,
        shape: tuple[int | None, ...] | None = None,
        kind: str | None = None,
    ) -> npt.NDArray[Any]:
        """The array ``key``, read once its header passed :meth:`check`."""
        m = self.check(key, field=field, shape=shape, kind=kind)
        try:
            with self._zf.open(m.info) as fh:
                arr = np.lib.format.read_array(
                    fh, allow_pickle=False, max_header_size=_NPY_HEADER_MAX
                )
        except _READ_ERRORS as exc:
            raise self.error(field or key, f"cannot be read ({exc}).") from exc
        return arr


def open_saved(path: str | os.PathLike[str], what: str = _WHAT) -> SavedFile:
    """Open an ``.npz`` archive and check its directory and every member's header.

    Nothing but headers is read: the file's first bytes (its kind), the zip
    directory (names ending in ``.npy``, stored or deflated members, sizes that the
    archive can hold: deflate expands at most ~1032-fold) and each member's ``.npy``
    header (a plain numeric or string dtype, and exactly the bytes its shape needs).

    Raises
    ------
    SavedModelError
        Missing file, a file of another kind (named: "it is a netCDF-4/HDF5 file,
        not ..."), a damaged archive or a forged member.
    """
    p = Path(path)
    kind = sniff_file(p)
    if kind.kind == "missing":
        raise SavedModelError(f"{p}: no such file.")
    if kind.kind != "zip":
        raise SavedModelError(
            f"{p}: cannot be read: it is {kind.description}, not {what}."
        )
    try:
        zf = zipfile.ZipFile(p)
    except (*_READ_ERRORS, NotImplementedError) as exc:
        raise SavedModelError(
            f"{p}: cannot be read: it is a truncated or damaged zip archive ({exc}), "
            f"not {what}."
        ) from exc
    try:
        members = _check_members(p, zf, what)
    except BaseException:
        zf.close()
        raise
    return SavedFile(p, zf, members)


def _check_members(p: Path, zf: zipfile.ZipFile, what: str) -> dict[str, _Member]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise SavedModelError(
            f"{p}: the archive lists {len(infos)} members; {what} has at most "
            f"{MAX_MEMBERS}."
        )
    archive = p.stat().st_size
    if sum(i.compress_size for i in infos) > archive:
        raise SavedModelError(
            f"{p}: the zip directory claims more data than the file's {archive} "
            "bytes; the archive is damaged or forged."
        )
    members: dict[str, _Member] = {}
    for info in infos:
        name = info.filename
        key = name[:-4] if name.endswith(".npy") else name
        field = "header" if key == HEADER else key
        if info.is_dir() or not name.endswith(".npy") or not key:
            raise SavedModelError(
                f"{p}: member {name!r} is not a NumPy array (.npy); not {what}."
            )
        if key in members:
            raise SavedModelError(f"{p}: field {field!r} appears twice in the archive.")
        if info.flag_bits & 0x1:
            raise SavedModelError(f"{p}: field {field!r} is encrypted.")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise SavedModelError(
                    f"{p}: field {field!r} is stored uncompressed but claims "
                    f"{info.file_size} bytes in {info.compress_size}; the archive is "
                    "damaged or forged."
                )
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            if info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
                raise SavedModelError(
                    f"{p}: field {field!r} claims {info.file_size} bytes from "
                    f"{info.compress_size} compressed, more than deflate can expand "
                    "to; refused (a zip bomb?)."
                )
        else:
            raise SavedModelError(
                f"{p}: field {field!r} uses zip compression method "
                f"{info.compress_type}; alsprog writes stored or deflated members only."
            )
        members[key] = _read_member_header(p, zf, info, field)
    return members


def _read_member_header(
    p: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, field: str
) -> _Member:
    fmt = np.lib.format
    try:
        with zf.open(info) as fh:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(
                    fh, max_header_size=_NPY_HEADER_MAX
                )
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(
                    fh, max_header_size=_NPY_HEADER_MAX
                )
            else:
                raise SavedModelError(
                    f"{p}: field {field!r} is a .npy of format version {version}; "
                    "alsprog writes versions 1.0 and 2.0 only."
                )
            offset = fh.tell()
    except SavedModelError:
        raise
    except (*_READ_ERRORS, SyntaxError) as exc:
        raise SavedModelError(
            f"{p}: field {field!r} has no valid .npy header ({exc})."
        ) from exc
    if dtype.hasobject:
        raise SavedModelError(
            f"{p}: field {field!r} holds Python objects (dtype {dtype}); such arrays "
            "are stored as pickles, which alsprog never loads (loading one can run "
            "code). Refused."
        )
    if dtype.names is not None or dtype.subdtype is not None:
        raise SavedModelError(
            f"{p}: field {field!r} has a structured dtype {dtype}; alsprog writes "
            "plain numbers and strings only."
        )
    if dtype.kind not in "biufcUmM" or dtype.itemsize == 0:
        raise SavedModelError(
            f"{p}: field {field!r} has dtype {dtype}; alsprog writes plain numbers "
            "and strings only."
        )
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes != info.file_size:
        raise SavedModelError(
            f"{p}: field {field!r} declares shape {shape} of {dtype} "
            f"({nbytes} bytes) but the member holds {info.file_size - offset} bytes; "
            "refused before reading it."
        )
    return _Member(info, tuple(int(s) for s in shape), dtype)


def read_saved(
    path: str | os.PathLike[str], what: str = _WHAT
) -> tuple[dict[str, Any], SavedFile]:
    """Open a file written by :func:`write_saved`: its JSON header and its arrays.

    Raises
    ------
    SavedModelError
        Missing or unreadable file, a file of another kind, a forged member, or no
        valid header.
    """
    saved = open_saved(path, what)
    p = saved.path
    try:
        m = saved.check(HEADER, field="header", kind="u")
        if len(m.shape) != 1 or m.dtype != np.uint8:
            saved.fail("header", f"has shape {m.shape} of {m.dtype}; expected bytes.")
        if m.size > MAX_HEADER_BYTES:
            saved.fail(
                "header",
                f"is {m.size} bytes long; at most {MAX_HEADER_BYTES} accepted.",
            )
        raw = saved.array(HEADER, field="header")
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise SavedModelError(
                f"{p}: field 'header' is not valid JSON ({str(exc)[:200]})."
            ) from exc
        if not isinstance(header, dict):
            raise SavedModelError(f"{p}: field 'header' is not a JSON object.")
    except BaseException:
        saved.close()
        raise
    return header, saved


def write_saved(
    path: str | os.PathLike[str], header: Mapping[str, Any], arrays: Mapping[str, Any]
) -> None:
    """Write ``header`` (JSON) and ``arrays`` to one ``.npz`` file, atomically."""
    try:
        text = json.dumps(header, allow_nan=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise SavedModelError(f"{path}: the header cannot be written ({exc}).") from exc
    payload: dict[str, Any] = {
        HEADER: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    }
    for k, v in arrays.items():
        arr = np.asarray(v)
        if arr.dtype == object:  # never let an object array (a pickle) in
            raise SavedModelError(f"{path}: field {k!r} would need pickle.")
        payload[k] = arr
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, allow_pickle=False, **payload)


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
