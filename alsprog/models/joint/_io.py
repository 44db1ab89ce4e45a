"""Saved JointModels: one NumPy ``.npz`` file, never a pickle.

Owns: :func:`save_joint` and :func:`load_joint`, the fields of a saved
:class:`~alsprog.models.JointModel` and their checks.  The file is the mixed-model
file's format (:mod:`alsprog.models._npz`): a JSON header ``{"model": "JointModel",
"version", "format", "params", "names", "scalars", "fit_rows", "fit_events",
"longitudinal"}`` and the arrays ``phi`` (the flat parameter vector the likelihood
was maximised over), ``cov_phi`` (its covariance, the inverse observed
information), ``event_design`` (each subject's event covariates, to check the
rebuilt event design), the fit's rows and event data (frames stored as
:mod:`alsprog.models._npz_frames` stores them) and, under the prefix
``longitudinal.``, the longitudinal mixed model (``longitudinal_``) in the mixed
model's own format (:func:`alsprog.models.lmm._io.mixed_fields`, embedded as it is,
with no file of its own written); its JSON header is the field ``longitudinal``.
Everything else the fitted model holds (estimates, standard errors, the baseline
hazard and its breaks, the event design's formulaic spec) is recomputed from these
by the fit's own code, so the loaded model gives the saved one's numbers exactly.

The whole file is checked before the joint model is built: (1) the archive, each
member's ``.npy`` header and the JSON header (:func:`alsprog.models._npz.read_saved`);
(2) every header field present with its JSON type, the class, version and format
known, the parameters as ``fit`` checks them, both formulas through
:func:`alsprog._formula_text.check_formula`, counts in range, every member's declared
shape and dtype equal to what the counts imply and no member the header does not
use, and the longitudinal header as the mixed model's loader checks it
(:func:`alsprog.models.lmm._io.check_mixed` on the file's
:meth:`~alsprog.models._npz.SavedFile.part` under ``longitudinal.``) and its
parameters those ``fit`` gives it; (3) the values: finite numbers, a symmetric
covariance, positive variances and hazards, event times and indicators as ``fit``
accepts them, the baseline-hazard breaks rebuilt from them; (4) the longitudinal
mixed model, by its own loader (:func:`alsprog.models.lmm._io.restore_mixed`, which
checks its part whole first), and its agreement with the joint fields (names,
counts, subjects); (5) the event design rebuilt from the checked formula and rows,
equal to the saved one.  A refusal is a :class:`~alsprog.errors.SavedModelError`
naming the file and the field (fields of the longitudinal part are named
``longitudinal.<field>``).
Leaves: the archive, its size and dtype checks to :mod:`alsprog.models._npz`; frames
as arrays to :mod:`alsprog.models._npz_frames`; the longitudinal mixed model's
format, its checks and its restore to :mod:`alsprog.models.lmm._io`; the fitted
state to :mod:`alsprog.models.joint._model`.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import SavedModelError
from alsprog.models._npz import Check, SavedFile, read_saved, short, write_saved
from alsprog.models._npz_frames import (
    Unsupported,
    check_frame,
    decode_frame,
    encode_frame,
)
from alsprog.models.joint._design import first_rows, without_intercept
from alsprog.models.lmm._io import check_mixed, mixed_fields, restore_mixed

__all__ = ["FILE_SUFFIX", "FORMAT", "load_joint", "save_joint"]

#: Layout version of the file (bumped when the fields change).
FORMAT = 1
#: The suffix of a saved joint model (a NumPy ``.npz`` archive).
FILE_SUFFIX = ".npz"
#: Members and header field of the longitudinal mixed model.
PREFIX = "longitudinal."
_WHAT = "an alsprog joint-model .npz file (written by JointModel.save)"

# ------------------------------------------------------------ the saved state
#: Fitted scalars: (header key in ``scalars``, attribute of the fitted model).
#: With :data:`_ARRAYS`, :data:`_FRAMES` and the longitudinal model this is every
#: attribute ``fit`` sets that cannot be recomputed from the others; ``_set_fitted``
#: recomputes the rest (``fe_params_``, ``bse_``, ``cov_re_``, ``scale_``,
#: ``event_params_``, ``baseline_hazard_``, ``llf_``, ``_layout``, ``_breaks``,
#: ``_w_spec``, ``_w_names``) exactly as ``fit`` does.
_SCALARS: tuple[tuple[str, str], ...] = (
    ("llf", "llf_"),
    ("converged", "converged_"),
    ("n_iter", "n_iter_"),
    ("n_obs", "n_obs_"),
    ("n_subjects", "n_subjects_"),
    ("n_events", "n_events_"),
)
#: Float arrays: (member, attribute).
_ARRAYS: tuple[tuple[str, str], ...] = (("phi", "_phi"), ("cov_phi", "_cov_phi"))
#: Data frames: (header field and member prefix, attribute).
_FRAMES: tuple[tuple[str, str], ...] = (
    ("fit_rows", "_fit_rows"),
    ("fit_events", "_fit_events"),
)
#: The longitudinal mixed model's attribute.
_LONGITUDINAL = "longitudinal_"
#: Columns of the saved event data (``_fit_events``), indexed by subject.
_EVENT_COLUMNS = ["time", "event"]
_HEADER_KEYS = (
    "model",
    "version",
    "format",
    "params",
    "names",
    "scalars",
    *(key for key, _ in _FRAMES),
    "longitudinal",
)
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "formula": (str,),
    "event_formula": (str,),
    "event_time": (str,),
    "event": (str,),
    "time": (str,),
    "n_intervals": (int,),
    "n_quad": (int,),
    "tol": (int, float),
    "max_iter": (int,),
    "strict": (bool,),
}


# ------------------------------------------------------------------- saving
def save_joint(model: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted :class:`~alsprog.models.JointModel` to ``path`` (atomically).

    The file holds the fitted parameters, the rows and event data of the fit (so it
    contains those data: share it as you would share them) and the longitudinal
    mixed model; see the module docstring.

    Parameters
    ----------
    model : JointModel
        Fitted.
    path : str or os.PathLike
        Output file, conventionally ``*.npz`` (no suffix is added).

    Raises
    ------
    NotFittedError
        If the model is not fitted.
    SavedModelError
        If a column of the fit's rows or its index cannot be stored without pickle,
        or the fitted parameters are not finite (the file could not be loaded).
    """
    from alsprog._validation import check_is_fitted
    from alsprog._version import __version__

    check_is_fitted(model, ["fe_params_"])
    p = Path(path)
    arrays: dict[str, np.ndarray] = {}
    frames: dict[str, Any] = {}
    try:
        for key, attr in _FRAMES:
            frames[key] = encode_frame(getattr(model, attr), key, arrays)
    except Unsupported as exc:
        raise SavedModelError(
            f"{p}: cannot save {type(model).__name__}: {exc} (convert it to numbers, "
            "strings or a categorical, or reset the data's index, and refit)."
        ) from exc
    for key, attr in _ARRAYS:
        arr = np.asarray(getattr(model, attr), dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise SavedModelError(
                f"{p}: cannot save {type(model).__name__}: field {key!r} holds "
                "non-finite numbers (the fit failed); refit before saving."
            )
        arrays[key] = arr
    arrays["event_design"] = _event_matrix(model)
    lmm_header, lmm_arrays = mixed_fields(
        getattr(model, _LONGITUDINAL), p, field="longitudinal"
    )
    arrays.update({PREFIX + key: value for key, value in lmm_arrays.items()})
    header = {
        "model": type(model).__name__,
        "version": __version__,
        "format": FORMAT,
        "params": model.get_params(deep=False),
        "names": {
            "fe": [str(v) for v in model.fe_params_.index],
            "re": [str(v) for v in model.cov_re_.index],
            "event": list(model._w_names),
            "columns": [str(c) for c in model._fit_rows.columns],
        },
        "scalars": {
            **{key: _plain(getattr(model, attr)) for key, attr in _SCALARS},
            "n_pieces": len(model.baseline_hazard_),
        },
        **frames,
        "longitudinal": lmm_header,
    }
    write_saved(p, header, arrays)


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value JSON writes."""
    return value.item() if isinstance(value, np.generic) else value


def _event_matrix(model: Any) -> npt.NDArray[np.float64]:
    """The event covariates of each fitted subject, ``(subjects, terms)``."""
    from alsprog._formula_text import formula_context

    subjects = model._fit_events.index
    if not model._w_names:
        return np.zeros((len(subjects), 0))
    group = model.longitudinal_._design_info["group"]
    first = first_rows(model._fit_rows, group, subjects)
    mm = model._w_spec.get_model_matrix(first, context=formula_context())
    return without_intercept(mm)[0]


def _event_design(
    text: str, first: pd.DataFrame
) -> tuple[npt.NDArray[np.float64], list[str], Any]:
    """The event design and its formulaic spec, as ``fit`` builds them from the
    subjects' first rows (``text`` through the formula allow-list, again here so
    that formulaic never sees a formula that did not pass it)."""
    from formulaic import model_matrix

    from alsprog._formula_text import check_formula, formula_context

    if not text.strip():
        return np.zeros((len(first), 0)), [], None
    check_formula(text, columns=first.columns, kind="rhs", what="saved event_formula")
    mm = model_matrix(text, first, na_action="raise", context=formula_context())
    W, names = without_intercept(mm)
    return W, names, mm.model_spec


# ------------------------------------------------------------------ loading
def load_joint(cls: Any, path: str | os.PathLike[str]) -> Any:
    """Rebuild a :class:`~alsprog.models.JointModel` saved by :func:`save_joint`.

    The whole file is checked before the model is built (see the module
    docstring); the loaded model's forecasts, survival predictions, trajectories
    and summary are the saved model's, number for number.

    Parameters
    ----------
    cls : type
        :class:`~alsprog.models.JointModel` (or a subclass).
    path : str or os.PathLike

    Returns
    -------
    JointModel
        Fitted, without refitting.

    Raises
    ------
    SavedModelError
        Missing file, a file of another kind (named: "it is a netCDF-4/HDF5 file,
        not an alsprog joint-model .npz file"), another model's file (a
        ``LinearMixedModel`` file is named as such), another alsprog version or
        format, or a missing, malformed or inconsistent field (the message names
        the file and the field).
    """
    header, saved = read_saved(path, what=_WHAT)
    with saved:
        return _restore(cls, header, saved)


def _check_header(cls: Any, header: Mapping[str, Any], saved: SavedFile) -> dict:
    """Check every field of the JSON header and the members it implies; read nothing.

    Returns the counts and names the rest of the load uses.
    """
    ch = Check(saved.path, cls.__name__)
    ch.identity(header, cls, FORMAT)
    ch.keys(header, "", _HEADER_KEYS)

    params = ch.params(header, cls, _PARAM_TYPES)

    nm = ch.keys(header["names"], "names", ("fe", "re", "event", "columns"))
    fe = ch.names(nm, "fe", "names")
    re_names = ch.names(nm, "re", "names")
    w_names = ch.names(nm, "event", "names")
    columns = ch.names(nm, "columns", "names")
    sc = ch.keys(
        header["scalars"], "scalars", (*(key for key, _ in _SCALARS), "n_pieces")
    )
    llf = ch.number(sc, "llf", "scalars")
    ch.get(sc, "converged", bool, "scalars")
    ch.count(sc, "n_iter", "scalars")
    n = ch.count(sc, "n_obs", "scalars", low=1)
    G = ch.count(sc, "n_subjects", "scalars", low=2)
    n_events = ch.count(sc, "n_events", "scalars", low=1)
    k = ch.count(sc, "n_pieces", "scalars", low=1)
    if n_events > G:
        ch.fail(
            "scalars.n_events",
            f"is {n_events} for {G} subjects; the file is inconsistent.",
        )
    n_intervals = params["n_intervals"]
    if k > n_intervals:
        ch.fail(
            "scalars.n_pieces",
            f"is {k} but params.n_intervals is {n_intervals!r}; the file is "
            "inconsistent.",
        )
    P, q, r = len(fe), len(re_names), len(w_names)
    if P < 1 or q < 1:
        ch.fail(
            "names.fe" if P < 1 else "names.re",
            "is empty; a joint model has fixed and random effects.",
        )
    if n <= P or n < G:
        ch.fail(
            "scalars.n_obs",
            f"is {n}: too few observations for {P} fixed effects and {G} subjects; "
            "the file is inconsistent.",
        )
    size = P + q * (q + 1) // 2 + 1 + r + q + k
    for key, shape in {
        "phi": (size,),
        "cov_phi": (size, size),
        "event_design": (G, r),
    }.items():
        ch.member(key, key, shape, "f")
    check_frame(ch, header["fit_rows"], "fit_rows", n, columns)
    check_frame(ch, header["fit_events"], "fit_events", G, _EVENT_COLUMNS)
    if not isinstance(header["longitudinal"], Mapping):
        ch.fail("longitudinal", "is not a JSON object (the mixed model's header).")

    # the members are exactly those the header implies, each as declared
    for key, want in ch.want.items():
        saved.check(key, field=want.field, shape=want.shape, kind=want.kinds)
    extra = sorted(
        k for k in saved.data_keys - set(ch.want) if not k.startswith(PREFIX)
    )
    if extra:
        saved.fail(
            extra[0],
            f"is not part of a {cls.__name__} file (no field of the header uses it).",
        )
    return {
        "params": dict(params),
        "fe": fe,
        "re": re_names,
        "w_names": w_names,
        "columns": columns,
        "llf": llf,
        "n_obs": n,
        "n_subjects": G,
        "n_events": n_events,
        "n_pieces": k,
    }


def _check_params(cls: Any, params: dict[str, Any], p: Path, columns: list[str]) -> Any:
    """``cls(**params)`` after ``fit``'s parameter checks and the formula allow-list."""
    from alsprog._formula_text import check_formula
    from alsprog.errors import ModelSpecificationError

    model = cls(**params)
    try:  # the estimator's one declaration of its parameters (what fit checks)
        model.check_params()
    except (TypeError, ValueError) as exc:
        m = re.match(r"`(\w+)`", str(exc))
        field = f"params.{m.group(1)}" if m else "params"
        raise SavedModelError(f"{p}: field {field!r}: {exc}") from exc
    kinds: tuple[tuple[str, Literal["mixed", "rhs"]], ...] = (
        ("formula", "mixed"),
        ("event_formula", "rhs"),
    )
    for name, kind in kinds:
        text = getattr(model, name)
        if kind == "rhs" and not text.strip():
            continue  # no event covariates
        try:
            check_formula(text, columns=columns, kind=kind, what=f"saved {name}")
        except ModelSpecificationError as exc:
            raise SavedModelError(
                f"{p}: field 'params.{name}' is refused: {exc}"
            ) from exc
    return model


def _check_values(saved: SavedFile, h: dict, values: dict[str, np.ndarray]) -> Any:
    """Finite numbers, a symmetric covariance, finite derived estimates.

    Returns the parameter layout.
    """
    from alsprog.models.joint._numerics import JointLayout

    saved.require_finite(values)
    cov = values["cov_phi"]
    saved.require_symmetric("cov_phi", cov)
    layout = JointLayout(
        p=len(h["fe"]), q=len(h["re"]), r=len(h["w_names"]), k=h["n_pieces"]
    )
    sl = layout.slices()
    phi = values["phi"]
    with np.errstate(over="ignore"):
        derived = {
            "residual variance": np.exp(2.0 * phi[sl["log_sigma"]]),
            "random-effects factor": layout.unpack_chol(phi[sl["chol"]]),
            "baseline hazard": np.exp(phi[sl["log_hazard"]]),
            "hazard ratio": np.exp(phi[sl["gamma"]]),
        }
    for what, arr in derived.items():
        if not np.all(np.isfinite(arr)) or (
            what != "random-effects factor" and np.any(arr <= 0)
        ):
            saved.fail(
                "phi", f"gives a {what} of {_short_array(arr)}; the file is damaged."
            )
    return layout


def _short_array(arr: np.ndarray) -> str:
    """An array's values for a message, cut to 60 characters."""
    text = np.array2string(np.asarray(arr).ravel(), precision=4, threshold=6)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _check_events(saved: SavedFile, events: pd.DataFrame, h: dict) -> None:
    """Event times and indicators as ``fit`` accepts them, one row per subject."""
    if not events.index.is_unique:
        saved.fail("fit_events", "names a subject twice in its index.")
    if not all(isinstance(v, str) for v in events.index):
        saved.fail("fit_events", "has an index that is not subject ids (strings).")
    for col in _EVENT_COLUMNS:
        if events[col].dtype.kind != "f":
            saved.fail(
                "fit_events",
                f"column {col!r} has dtype {events[col].dtype}; expected float64.",
            )
    t = events["time"].to_numpy()
    d = events["event"].to_numpy()
    if not np.all(np.isfinite(t) & (t >= 0)):
        i = int(np.flatnonzero(~(np.isfinite(t) & (t >= 0)))[0])
        saved.fail(
            "fit_events",
            f"column 'time' is {float(t[i])!r} at row {i}; expected months >= 0.",
        )
    if not np.all((d == 0.0) | (d == 1.0)):
        i = int(np.flatnonzero(~((d == 0.0) | (d == 1.0)))[0])
        saved.fail(
            "fit_events",
            f"column 'event' is {float(d[i])!r} at row {i}; expected 0 or 1.",
        )
    if int(d.sum()) != h["n_events"]:
        saved.fail(
            "scalars.n_events",
            f"is {h['n_events']} but fit_events holds {int(d.sum())} events; the file "
            "is inconsistent.",
        )


def _check_rows(
    saved: SavedFile, rows: pd.DataFrame, events: pd.DataFrame, lmm: Any, time: str
) -> str:
    """The fit's rows against the longitudinal model and the event data.

    Returns the grouping column.
    """
    info = lmm._design_info
    group, outcome = info["group"], info["outcome"]
    for col in dict.fromkeys([group, outcome, *info["variables"]]):
        if col not in rows.columns:
            saved.fail("fit_rows", f"has no column {col!r}; the model reads it.")
        missing = rows[col].isna().to_numpy()
        if missing.any():
            saved.fail(
                "fit_rows",
                f"column {col!r} has missing values at row "
                f"{int(np.flatnonzero(missing)[0])}; the saved rows are the complete "
                "rows of the fit.",
            )
    for col in rows.columns:
        values = rows[col]
        if (
            values.dtype.kind == "f"
            and np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).any()
        ):
            saved.fail("fit_rows", f"column {col!r} holds an infinite value.")
    ids = rows[group].astype(str)
    subjects = pd.Index(ids).unique()
    if len(subjects) != len(events) or not subjects.isin(events.index).all():
        saved.fail(
            "fit_events",
            "lists other subjects than the saved rows (fit_rows); the file is "
            "inconsistent.",
        )
    levels = [str(v) for v in info["levels"]]
    if levels != list(events.index):
        saved.fail(
            "fit_events",
            "lists the subjects in another order than the longitudinal model; the "
            "file is inconsistent.",
        )
    if time in rows.columns:
        last = pd.to_numeric(rows[time], errors="coerce").groupby(ids.to_numpy()).max()
        last = last.reindex(events.index).to_numpy(dtype=float)
        late = (events["event"].to_numpy() == 1.0) & (
            events["time"].to_numpy() < last - 1e-9
        )
        if late.any():
            i = int(np.flatnonzero(late)[0])
            saved.fail(
                "fit_events",
                f"has subject {events.index[i]!r} with an event at "
                f"{float(events['time'].iloc[i])!r}, before the last visit at {time} "
                f"{float(last[i])!r}; the file is inconsistent.",
            )
    return group


def _check_longitudinal(
    saved: SavedFile, part: SavedFile, header: Any, params: dict[str, Any]
) -> Any:
    """The longitudinal header, as the mixed model's loader checks it (its fields
    named ``longitudinal.*``), and its parameters, as ``fit`` sets them; nothing
    read.  Returns the mixed-model class.
    """
    from alsprog.models.lmm._model import LinearMixedModel

    check_mixed(LinearMixedModel, header, part)
    want = LinearMixedModel(
        params["formula"], reml=False, time=params["time"]
    ).get_params(deep=False)
    got = header["params"]
    for key in want:
        if got.get(key) != want[key] or type(got.get(key)) is not type(want[key]):
            saved.fail(
                f"{PREFIX}params.{key}",
                f"is {short(got.get(key))} but the joint model fits its longitudinal part "
                f"with {key}={want[key]!r}; the file is inconsistent.",
            )
    return LinearMixedModel


def _restore(cls: Any, header: Mapping[str, Any], saved: SavedFile) -> Any:
    from alsprog.models.joint._numerics import event_breaks

    p = saved.path
    # 1. the header and every member's declared shape and dtype; nothing read yet
    h = _check_header(cls, header, saved)
    # 2. the parameters, as fit checks them, and both formulas
    model = _check_params(cls, h["params"], p, h["columns"])
    part = saved.part(PREFIX)
    lmm_cls = _check_longitudinal(saved, part, header["longitudinal"], h["params"])
    # 3. the values, now that every read is bounded by the declared counts
    values = {key: saved.array(key) for key in ("phi", "cov_phi", "event_design")}
    layout = _check_values(saved, h, values)
    frames = {key: decode_frame(header[key], key, saved) for key, _ in _FRAMES}
    events = frames["fit_events"]
    _check_events(saved, events, h)
    is_event = events["event"].to_numpy() == 1.0
    breaks = event_breaks(events["time"].to_numpy()[is_event], int(model.n_intervals))
    if len(breaks) - 1 != h["n_pieces"]:
        saved.fail(
            "scalars.n_pieces",
            f"is {h['n_pieces']} but the event times give {len(breaks) - 1} pieces of "
            "the baseline hazard; the file is inconsistent.",
        )
    # 4. the longitudinal mixed model, checked whole and built by its own loader
    lmm = restore_mixed(lmm_cls, header["longitudinal"], part)
    for field, saved_value, lmm_value in [
        ("names.fe", h["fe"], [str(v) for v in lmm.fe_params_.index]),
        ("names.re", h["re"], [str(v) for v in lmm.cov_re_.index]),
        ("scalars.n_obs", h["n_obs"], int(lmm.n_obs_)),
        ("scalars.n_subjects", h["n_subjects"], len(lmm._design_info["levels"])),
    ]:
        if saved_value != lmm_value:
            saved.fail(
                field,
                f"is {saved_value!r} but the longitudinal model has {lmm_value!r}; "
                "the file is inconsistent.",
            )
    rows = frames["fit_rows"]
    group = _check_rows(saved, rows, events, lmm, model.time)
    # 5. the event design, rebuilt from the checked formula and rows
    first = first_rows(rows, group, events.index)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W, w_names, w_spec = _event_design(model.event_formula, first)
    except Exception as exc:  # formulaic's errors have no common base
        raise SavedModelError(
            f"{p}: field 'fit_rows': the event design cannot be rebuilt ({exc})"
        ) from exc
    if w_names != h["w_names"]:
        saved.fail(
            "names.event",
            f"is {h['w_names']!r} but the saved rows give {w_names!r}; the file is "
            "inconsistent.",
        )
    ref = values["event_design"]
    tol = 1e-12 * max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    if W.shape != ref.shape or not np.allclose(W, ref, rtol=1e-12, atol=tol):
        saved.fail(
            "event_design",
            "differs from the event design rebuilt from the saved rows (saved by "
            "another formulaic version?).",
        )

    # built only now, by the fit's own code
    model._set_fitted(
        values["phi"],
        values["cov_phi"],
        layout,
        design=SimpleNamespace(fe_names=h["fe"], re_names=h["re"]),
        w_names=w_names,
        w_spec=w_spec,
        breaks=breaks,
        nll=-h["llf"],
    )
    setattr(model, _LONGITUDINAL, lmm)
    for key, attr in _FRAMES:
        setattr(model, attr, frames[key])
    sc = header["scalars"]
    for key, attr in _SCALARS:
        if key != "llf":  # llf_ is set by _set_fitted (as -(-llf), the same float)
            setattr(model, attr, sc[key])
    return model
