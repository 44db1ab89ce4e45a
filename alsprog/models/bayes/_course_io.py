"""Saved disease-course models: one netCDF file, never a pickle.

Owns: the file layout of :meth:`DiseaseCourseModel.save` / ``load`` and the checks
that run on such a file before anything is built from it.  The file is the model's
InferenceData (``posterior``: the population and subject variables, ``sample_stats``
with the sampler's wall time in its attrs as ``sampling_time``, PyMC's name) plus
the observed cells the model was fitted to, as prepared
(:func:`~alsprog.models.bayes._course_graph.prepare_course_data`), so that the
fitted state is rebuilt exactly: ``constant_data`` holds, along dimension ``cell``,
``subject_index`` (position in the posterior's ``subject_id`` coordinate),
``outcome_index`` (position in ``outcome``) and ``time``, and the scalar
``n_dropped``; ``observed_data`` holds ``y``, the normalised value (0 healthy, 1
floor).  The JSON config ``{"model", "version", "params"}`` sits in the file's
attrs under ``"alsprog"``, with the parameters ``get_params(deep=False)`` gives at
save time (sequences as lists, a numpy Generator ``seed`` as null; a value equal
to its parameter's default loads as the default itself, e.g. ``offsets=()``).

The checks, in order: the file's kind from its first bytes; the JSON config (the
class, naming another alsprog model's file as such, the version, every parameter
with its JSON type and through the estimator's own ``_check_params``); the layout
read without loading values (every group, variable and dimension named when
missing, sizes agreeing with each other and with the saved ``chains`` and ``draws``,
plain numeric types, no variable alsprog does not write); then the values (finite
draws and cells, positive scales, indices in range, the coordinates agreeing with
the parameters and with the cells).  Every refusal is a
:class:`~alsprog.errors.SavedModelError` naming the file and the field.
Leaves: the generic steps (opening the file, the config, the declared sizes) to
:mod:`alsprog.models.bayes._io`, the fitted state to
:class:`~alsprog.models.bayes._course.DiseaseCourseModel` (its ``_set_fitted``),
atomic writes to :mod:`alsprog._io`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alsprog._io import atomic_path
from alsprog._version import __version__
from alsprog.errors import AlsprogError, SavedModelError
from alsprog.models.bayes._io import (
    CONFIG_ATTR,
    _Fail,
    _Layout,
    _short,
    check_declared,
    check_params,
    check_values,
    open_layout,
    read_config,
)

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from alsprog.models.bayes._course import DiseaseCourseModel

__all__ = ["load_course", "save_course"]

_WHAT = "an alsprog disease-course model file (netCDF, written by "
_WHAT += "DiseaseCourseModel.save)"
#: Groups a saved disease-course model has, and nothing else.
GROUPS = ("posterior", "sample_stats", "constant_data", "observed_data")
#: Each parameter's JSON types (a parameter not listed may be any JSON value; the
#: estimator's own checks still run on it).
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "outcomes": (list,),
    "outcome": (str, type(None)),
    "time": (str,),
    "subject": (str,),
    "bounds": (dict, type(None)),
    "offsets": (list,),
    "chains": (int,),
    "draws": (int,),
    "tune": (int,),
    "seed": (int, type(None)),
    "target_accept": (int, float),
    "strict": (bool,),
    "progress": (bool, type(None)),
}
#: Posterior variables that are scales (must be positive).
_SCALES = ("tau_sd", "xi_sd", "w_sd", "b_sd", "sigma")


# ---------------------------------------------------------------------- save
def _jsonable(key: str, value: Any, path: Path) -> Any:
    """``value`` as JSON data: mappings as objects, sequences as lists, numpy
    scalars as numbers; a parameter with no JSON form is refused."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(f"{key}.{k}", v, path) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray | pd.Index | pd.Series):
        return [_jsonable(key, v, path) for v in list(value)]
    raise SavedModelError(
        f"{path}: field 'params.{key}' is {_short(value)}, which has no JSON form; "
        "set it to plain numbers, text or lists before saving."
    )


def save_course(model: DiseaseCourseModel, path: str | os.PathLike[str]) -> None:
    """Write a fitted model's InferenceData, cells and JSON config to ``path``.

    The write is atomic (:func:`alsprog._io.atomic_path`); a ``seed`` that is not
    an integer (a numpy Generator) is stored as null.
    """
    import arviz as az
    import xarray as xr

    p = Path(path)
    params = dict(model.get_params(deep=False))
    seed = params.get("seed")
    if not (seed is None or isinstance(seed, int | np.integer)):
        params["seed"] = None  # a Generator has no JSON form
    params = {k: _jsonable(k, v, p) for k, v in params.items()}
    config = {"model": type(model).__name__, "version": __version__, "params": params}
    d = model._data
    cell = np.arange(len(d.y))
    constant = xr.Dataset(
        {
            "subject_index": (("cell",), d.s),
            "outcome_index": (("cell",), d.k),
            "time": (("cell",), d.t),
            "n_dropped": ((), np.int64(d.n_dropped)),
        },
        coords={"cell": cell},
    )
    observed = xr.Dataset({"y": (("cell",), d.y)}, coords={"cell": cell})
    fitted = model.idata_
    idata = az.InferenceData(  # shares the draws with the model: no copy
        attrs={**fitted.attrs, CONFIG_ATTR: json.dumps(config)},
        posterior=fitted.posterior,
        sample_stats=fitted.sample_stats.assign_attrs(
            sampling_time=float(model.sampling_seconds_)
        ),
        observed_data=observed,
        constant_data=constant,
    )
    with atomic_path(p) as tmp:
        idata.to_netcdf(str(tmp))


# ---------------------------------------------------------------------- load
def load_course(
    path: str | os.PathLike[str], *, cls: type[DiseaseCourseModel] | None = None
) -> DiseaseCourseModel:
    """Rebuild a fitted model (``cls``, default :class:`DiseaseCourseModel`) from a
    file written by :func:`save_course`.

    The whole file is checked before anything is built from it (see the module
    docstring); a refusal is a :class:`~alsprog.errors.SavedModelError` naming the
    file and the field.
    """
    if cls is None:
        from alsprog.models.bayes._course import DiseaseCourseModel

        cls = DiseaseCourseModel
    p = Path(path)
    layout = open_layout(p, what=_WHAT, writer=cls)
    fail = _Fail(p)
    params = read_config(cls, layout, fail, _PARAM_TYPES)
    for g in GROUPS:
        if g not in layout.groups:
            fail(g, f"is missing: the file has no group {g!r}.")
    extra = [g for g in layout.groups if g not in GROUPS]
    if extra:
        fail(extra[0], f"is not a group of {_WHAT}.")
    model = _model_from(cls, p, params, fail)
    outs, bounds = check_params(model, p)
    offsets = list(model.offsets)
    if any(o not in outs for o in offsets):
        bad = [o for o in offsets if o not in outs]
        fail("params.offsets", f"names {bad[0]!r}, not one of params.outcomes.")
    _check_layout(p, layout, outs, [o for o in outs if o in offsets], model, fail)
    return _restore(p, model, outs, bounds, fail)


def _model_from(
    cls: type[DiseaseCourseModel], p: Path, params: dict[str, Any], fail: _Fail
) -> DiseaseCourseModel:
    """``cls(**params)`` once the lists and the bounds hold what they must."""
    for key in ("outcomes", "offsets"):
        value = params.get(key)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            fail(f"params.{key}", f"is {_short(value)}; expected a list of names.")
    bounds = params.get("bounds")
    if isinstance(bounds, dict):
        pairs = {}
        for k, pair in bounds.items():
            ok = isinstance(pair, list) and len(pair) == 2
            if not ok or any(
                isinstance(x, bool) or not isinstance(x, int | float) for x in pair
            ):
                fail(
                    f"params.bounds.{k}",
                    f"is {_short(pair)}; expected [normal, floor], two numbers.",
                )
            pairs[k] = (pair[0], pair[1])
        params = {**params, "bounds": pairs}
    return cls(**_with_defaults(cls, params))


def _with_defaults(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with each value that equals the JSON form of its parameter's
    default replaced by the default itself (``offsets=()`` was saved as ``[]``), so
    that a model saved with its defaults loads with the same ``get_params()``."""
    import inspect

    signature = inspect.signature(cls.__init__).parameters
    out = dict(params)
    for key, value in params.items():
        default = signature[key].default
        if default is inspect.Parameter.empty or default is None:
            continue
        try:
            same = json.loads(json.dumps(default)) == value
        except (TypeError, ValueError):  # a default with no JSON form
            same = False
        if same and type(default) is not type(value):
            out[key] = default
    return out


def _check_layout(
    p: Path,
    layout: _Layout,
    outs: tuple[str, ...],
    offsets: list[str],
    model: DiseaseCourseModel,
    fail: _Fail,
) -> None:
    """Variables, dimensions and their sizes, before any value is read."""
    groups = layout.groups
    check_declared(p, layout, fail, text_groups=())
    post_dims, post_vars = groups["posterior"]
    K, J = len(outs), len(offsets)
    want_dims = {"chain": model.chains, "draw": model.draws, "outcome": K}
    if J:
        want_dims["offset_outcome"] = J
    for dim in (*want_dims, "subject_id"):
        if dim not in post_dims:
            fail(f"posterior.{dim}", "is missing: the posterior has no such dimension.")
    for dim, n in want_dims.items():
        if post_dims[dim] != n:
            what = {"chain": "params.chains", "draw": "params.draws"}.get(
                dim, "params.outcomes" if dim == "outcome" else "params.offsets"
            )
            fail(
                f"posterior.{dim}",
                f"has size {post_dims[dim]} but {what} gives {n}; the file is "
                "inconsistent.",
            )
    extra = [d for d in post_dims if d not in (*want_dims, "subject_id")]
    if extra:
        fail(f"posterior.{extra[0]}", "is not a dimension of this model's posterior.")
    cd = ("chain", "draw")
    want = {
        "t0": cd,
        "m": (*cd, "outcome"),
        "log_v": (*cd, "outcome"),
        "tau_sd": cd,
        "xi_sd": cd,
        "sigma": (*cd, "outcome"),
        "stage": (*cd, "subject_id"),
        "tau": (*cd, "subject_id"),
        "xi": (*cd, "subject_id"),
    }
    if K > 1:
        want |= {"w_sd": cd, "w": (*cd, "subject_id", "outcome")}
    if J:
        want |= {
            "b_sd": (*cd, "offset_outcome"),
            "b": (*cd, "subject_id", "offset_outcome"),
        }
    want |= {d: (d,) for d in post_dims}  # the coordinates
    _check_vars(post_vars, want, "posterior", fail, exact=True)
    ss_dims, ss_vars = groups["sample_stats"]
    if ss_dims.get("chain") != model.chains or ss_dims.get("draw") != model.draws:
        fail(
            "sample_stats",
            f"has dimensions {ss_dims}; expected chain = {model.chains}, draw = "
            f"{model.draws}.",
        )
    _check_vars(ss_vars, {"diverging": cd}, "sample_stats", fail, exact=False)
    for name, v in ss_vars.items():
        if v.dims not in (cd, (name,)):
            fail(f"sample_stats.{name}", f"has dimensions {v.dims}; expected {cd}.")
    cells = {
        "subject_index": ("cell",),
        "outcome_index": ("cell",),
        "time": ("cell",),
        "n_dropped": (),
        "cell": ("cell",),
    }
    _check_vars(groups["constant_data"][1], cells, "constant_data", fail, exact=True)
    _check_vars(
        groups["observed_data"][1],
        {"y": ("cell",), "cell": ("cell",)},
        "observed_data",
        fail,
        exact=True,
    )
    n_cells = groups["constant_data"][0].get("cell", 0)
    if groups["observed_data"][0].get("cell") != n_cells or n_cells == 0:
        fail(
            "observed_data.y",
            f"has {groups['observed_data'][0].get('cell')} cells; constant_data has "
            f"{n_cells} (at least one is needed).",
        )
    if not 1 <= post_dims["subject_id"] <= n_cells:
        fail(
            "posterior.subject_id",
            f"has {post_dims['subject_id']} subjects for {n_cells} observed cells; "
            "the file is inconsistent.",
        )
    for name in ("subject_index", "outcome_index", "n_dropped"):
        if groups["constant_data"][1][name].kind not in "iu":
            fail(f"constant_data.{name}", "does not hold integers.")
    for group, name in (("constant_data", "time"), ("observed_data", "y")):
        if groups[group][1][name].kind != "f":
            fail(f"{group}.{name}", "does not hold floating-point numbers.")


def _check_vars(
    have: Mapping[str, Any],
    want: Mapping[str, tuple[str, ...]],
    group: str,
    fail: _Fail,
    *,
    exact: bool,
) -> None:
    """Every variable of ``want`` with its dimensions; with ``exact``, no other."""
    for name, dims in want.items():
        if name not in have:
            fail(f"{group}.{name}", f"is missing from group {group!r}.")
        if have[name].dims != dims:
            fail(
                f"{group}.{name}",
                f"has dimensions {have[name].dims}; expected {dims}.",
            )
    if exact:
        for name in have:
            if name not in want:
                fail(f"{group}.{name}", f"is not a variable of {_WHAT}.")


def _restore(
    p: Path,
    model: DiseaseCourseModel,
    outs: tuple[str, ...],
    bounds: dict[str, tuple[float, float]],
    fail: _Fail,
) -> DiseaseCourseModel:
    """Read the values, check them, rebuild the prepared data and the fitted state."""
    import arviz as az

    try:
        with az.rc_context({"data.load": "eager"}):  # read all, close the file
            idata = az.from_netcdf(str(p))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise SavedModelError(f"{p}: cannot be read as netCDF ({exc})") from exc
    post = idata.posterior
    for name in post.data_vars:
        values = np.asarray(post[name].values)
        check_values(values, f"posterior.{name}", fail, scale=name in _SCALES)
    offsets = [o for o in outs if o in model.offsets]
    for coord, expected in (("outcome", list(outs)), ("offset_outcome", offsets)):
        if coord in post.coords and [str(v) for v in post[coord].values] != expected:
            fail(
                f"posterior.{coord}",
                f"is {[str(v) for v in post[coord].values]!r} but the parameters "
                f"give {expected!r}; the file is inconsistent.",
            )
    ids = np.asarray(post["subject_id"].values.tolist(), dtype=object)
    seconds = idata.sample_stats.attrs.get("sampling_time")
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float | np.number)
        or not np.isfinite(seconds)
        or seconds < 0
    ):
        fail(
            "sample_stats.sampling_time",
            f"is {_short(seconds)}; expected the sampler's wall time in seconds.",
        )
    d = _cells(p, idata, ids, outs, model, fail)
    normal = np.array([bounds[o][0] for o in outs], dtype=float)
    floor = np.array([bounds[o][1] for o in outs], dtype=float)
    d = dataclasses.replace(d, normal=normal, floor=floor)
    for name in ("constant_data", "observed_data"):
        del idata[name]
    del idata.attrs[CONFIG_ATTR]
    attrs = dict(idata.sample_stats.attrs)
    del attrs["sampling_time"]
    idata.sample_stats.attrs = attrs
    model._set_fitted(idata, d, float(seconds))
    return model


def _cells(
    p: Path,
    idata: Any,
    ids: Any,
    outs: tuple[str, ...],
    model: DiseaseCourseModel,
    fail: _Fail,
) -> Any:
    """The prepared data, rebuilt by :func:`prepare_course_data` from the cells.

    The cells are laid out one per row, with the range ``(0, 1)`` so that the
    normalisation ``(0 - y) / (0 - 1)`` gives back ``y`` bit for bit; the caller
    puts the model's ranges in.
    """
    from alsprog.models.bayes._course_graph import prepare_course_data

    const = idata.constant_data
    s = np.asarray(const["subject_index"].values)
    k = np.asarray(const["outcome_index"].values)
    t = np.asarray(const["time"].values, dtype=float)
    y = np.asarray(idata.observed_data["y"].values, dtype=float)
    n_dropped = int(const["n_dropped"].values)
    N, K = len(ids), len(outs)
    if np.any(s < 0) or np.any(s >= N):
        fail("constant_data.subject_index", f"holds a value outside [0, {N}).")
    if np.any(k < 0) or np.any(k >= K):
        fail("constant_data.outcome_index", f"holds a value outside [0, {K}).")
    if np.any(np.bincount(s, minlength=N) == 0):
        fail(
            "constant_data.subject_index",
            "leaves a subject of the posterior without any cell; the file is "
            "inconsistent.",
        )
    check_values(t, "constant_data.time", fail)
    check_values(y, "observed_data.y", fail)
    if n_dropped < 0:
        fail("constant_data.n_dropped", f"is {n_dropped}; expected a count >= 0.")
    if len(set(ids.tolist())) != N:
        fail("posterior.subject_id", "repeats a subject.")
    # column names that cannot clash with an outcome's
    subject, time = "subject", "time"
    while subject in outs or time in outs:
        subject, time = f"_{subject}", f"_{time}"
    frame = pd.DataFrame({subject: ids[s], time: t})
    for j, o in enumerate(outs):
        frame[o] = np.where(k == j, y, np.nan)
    try:
        d = prepare_course_data(
            frame,
            outs,
            subject=subject,
            time=time,
            bounds={o: (0.0, 1.0) for o in outs},
            offsets=[o for o in outs if o in model.offsets],
        )
    except (AlsprogError, TypeError, ValueError) as exc:
        raise SavedModelError(
            f"{p}: field 'constant_data': the model's data cannot be rebuilt ({exc})"
        ) from exc
    if list(d.subject_ids) != list(ids):
        fail(
            "posterior.subject_id",
            "is not in the sorted order of the saved cells' subjects; the file is "
            "inconsistent.",
        )
    if not (np.array_equal(d.s, s) and np.array_equal(d.k, k)):
        fail("constant_data", "does not rebuild its own cells; the file is damaged.")
    return dataclasses.replace(d, subject_ids=ids, n_dropped=n_dropped)
