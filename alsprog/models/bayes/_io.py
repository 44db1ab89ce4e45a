"""Saved Bayesian trajectory models: one netCDF file, never a pickle.

Owns: the file layout of :meth:`BayesianTrajectoryModel.save` / ``load`` (the
InferenceData plus, in its attrs under ``"alsprog"``, the JSON config ``{"model",
"version", "params"}`` with priors as dicts), the ``observed_data``,
``log_likelihood`` and ``constant_data`` groups that make a saved file rebuildable,
and the checks that run on a file before anything is built from it: its kind from the
first bytes (a zip/.npz, text or pickle file is named as such); the layout read without
loading any values (every group, variable and dimension the model needs, named when
missing; the dimensions' sizes agreeing with each other and with the saved ``chains``
and ``draws``; plain numeric or string types; declared sizes the file can hold); the
JSON config (every parameter with its JSON type and through the estimator's own
``_check_params``, priors through :class:`Prior`, the formula through
:func:`alsprog._formula_text.check_formula`); then the values (finite draws, positive
scales, correlations in [-1, 1]) and, after the design is rebuilt from
``constant_data``, its agreement with the posterior's coordinates.  Every refusal is a
:class:`~alsprog.errors.SavedModelError` naming the file and the field.  The steps
that do not depend on the model (:func:`open_layout`, :func:`read_config`,
:func:`check_params`, :func:`check_declared`, :func:`check_values`) are shared with the disease-course
model's files (:mod:`alsprog.models.bayes._course_io`); a file of one of the two
models handed to the other's loader is named as such.
Leaves: the fitted state and how it is restored to :mod:`alsprog.models.bayes._model`, the
diagnostics to :mod:`alsprog.models.bayes._sampling`, atomic writes to
:mod:`alsprog._io`.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import numpy as np
import numpy.typing as npt

from alsprog._io import atomic_path
from alsprog._version import __version__
from alsprog.errors import AlsprogError, SavedModelError
from alsprog.models._file_kind import sniff_file
from alsprog.models.bayes._design import EFFECTS_SIGMOID, BayesDesign
from alsprog.models.bayes._priors import Prior, merge_priors
from alsprog.models.bayes._sampling import ESS_BULK_MIN, RHAT_MAX, diagnose

if TYPE_CHECKING:  # pragma: no cover - annotations only
    # the estimator's module imports this one: name its type without importing it
    BayesianTrajectoryModel = Any

__all__ = [
    "CONFIG_ATTR",
    "attach_data",
    "check_declared",
    "check_params",
    "check_values",
    "load_model",
    "open_layout",
    "read_config",
    "save_model",
]

#: The key of the JSON config in the netCDF file's attrs.
CONFIG_ATTR = "alsprog"

_WHAT = (
    "an alsprog Bayesian model file (netCDF, written by BayesianTrajectoryModel.save)"
)
#: Groups :meth:`BayesianTrajectoryModel.load` needs.
GROUPS = (
    "posterior",
    "sample_stats",
    "log_likelihood",
    "observed_data",
    "constant_data",
)
#: The alsprog models saved as netCDF files (a file's ``model`` names its loader).
_NETCDF_MODELS = ("BayesianTrajectoryModel", "DiseaseCourseModel")
#: Largest JSON config accepted, in characters (a real one is under 2 kB).
_MAX_CONFIG = 2**20
#: deflate (HDF5's gzip filter) expands data at most ~1032-fold.
_DEFLATE_MAX_RATIO = 1032
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "formula": (str, type(None)),
    "likelihood": (str,),
    "priors": (dict, type(None)),
    "sampler": (str,),
    "chains": (int,),
    "draws": (int,),
    "tune": (int,),
    "seed": (int, type(None)),
    "marginalize": (bool, type(None)),
    "time": (str, type(None)),
    "subject": (str,),
    "target_accept": (int, float),
    "strict": (bool,),
    "progress": (bool, type(None)),
}


def attach_data(idata: Any, d: BayesDesign, loglik: npt.NDArray[np.float64]) -> None:
    """Add observed_data, log_likelihood and constant_data groups."""
    import xarray as xr

    post = idata.posterior
    obs = np.arange(len(d.y))
    ll = xr.Dataset(
        {
            d.outcome: (
                ("chain", "draw", "obs"),
                loglik.reshape(post.sizes["chain"], post.sizes["draw"], -1),
            )
        },
        coords={"chain": post.chain, "draw": post.draw, "obs": obs},
    )
    observed = xr.Dataset({d.outcome: (("obs",), d.y)}, coords={"obs": obs})
    const = xr.Dataset(
        {c: (("obs",), d.frame[c].to_numpy()) for c in d.frame.columns},
        coords={"obs": obs},
    )
    for name in ("log_likelihood", "observed_data", "constant_data"):
        if name in idata.groups():
            del idata[name]
    idata.add_groups(
        {"log_likelihood": ll, "observed_data": observed, "constant_data": const}
    )


def save_model(model: BayesianTrajectoryModel, path: str | os.PathLike[str]) -> None:
    """Write a fitted model's InferenceData and JSON config atomically to ``path``."""
    params = model.get_params()
    if params["priors"] is not None:
        params["priors"] = {
            k: (v.to_dict() if isinstance(v, Prior) else dict(v))
            for k, v in params["priors"].items()
        }
    if not (params["seed"] is None or isinstance(params["seed"], int | np.integer)):
        params["seed"] = None  # a Generator has no JSON form
    elif params["seed"] is not None:
        params["seed"] = int(params["seed"])
    config = {
        "model": type(model).__name__,
        "version": __version__,
        "params": params,
    }
    idata = model.idata_.copy()
    idata.attrs[CONFIG_ATTR] = json.dumps(config)
    with atomic_path(path) as tmp:
        idata.to_netcdf(str(tmp))


@dataclass(frozen=True)
class _Var:
    """A variable as the file declares it (no values read)."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    kind: str  # numpy dtype kind; "T" for a string, "?" for anything else
    nbytes: int


@dataclass(frozen=True)
class _Layout:
    """Groups, their dimensions and variables, and the JSON config attribute."""

    config: object
    groups: dict[str, tuple[dict[str, int], dict[str, _Var]]]


class _Fail:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, field: str, text: str) -> NoReturn:
        raise SavedModelError(f"{self.path}: field {field!r} {text}")


def load_model(
    cls: type[BayesianTrajectoryModel], path: str | os.PathLike[str]
) -> BayesianTrajectoryModel:
    """Rebuild a fitted ``cls`` from a file written by :func:`save_model`.

    The whole file is checked before anything is built from it (see the module
    docstring); a refusal is a :class:`~alsprog.errors.SavedModelError` naming the
    file and the field.
    """
    p = Path(path)
    layout = open_layout(p, what=_WHAT, writer=cls)
    fail = _Fail(p)
    params = read_config(cls, layout, fail, _PARAM_TYPES)  # names a foreign model
    for g in GROUPS:
        if g not in layout.groups:
            fail(g, f"is missing: the file has no group {g!r}.")
    model, marginal = _check_config(cls, p, params, layout, fail)
    sizes = _check_layout(p, layout, model, fail)
    return _restore(cls, p, model, marginal, sizes, fail)


def open_layout(p: Path, *, what: str, writer: type) -> _Layout:
    """The layout of an alsprog netCDF model file written by ``writer.save``.

    Refuses (naming what the file is) a missing file, a file of another kind (told
    from its first bytes), a damaged netCDF-4 file and one without the JSON config;
    ``what`` names the expected file in the messages.  Reads no values.
    """
    kind = sniff_file(p)
    if kind.kind == "missing":
        raise SavedModelError(f"{p}: no such file.")
    if kind.kind != "hdf5":
        hint = (
            " (a mixed model saved by LinearMixedModel.save? load it with "
            "LinearMixedModel.load)"
            if kind.kind == "zip"
            else ""
        )
        raise SavedModelError(
            f"{p}: cannot be read: it is {kind.description}{hint}, not {what}."
        )
    layout = _read_layout(p, what)
    if layout.config is None:
        raise SavedModelError(
            f"{p}: field 'alsprog' missing from the file's attrs; not a file "
            f"written by {writer.__name__}.save."
        )
    return layout


def _read_layout(p: Path, what: str = _WHAT) -> _Layout:
    """The groups, dimensions, variables and config of a netCDF-4 file; no values."""
    import h5netcdf

    try:
        with h5netcdf.File(p, mode="r") as f:
            config = f.attrs.get(CONFIG_ATTR) if CONFIG_ATTR in f.attrs else None
            groups = {}
            for gname, g in f.groups.items():
                if g.groups:
                    raise SavedModelError(
                        f"{p}: field {gname!r} holds sub-groups "
                        f"({', '.join(map(repr, g.groups))}); not {what}."
                    )
                dims = {d: int(g.dimensions[d].size) for d in g.dimensions}
                variables = {}
                for vname, v in g.variables.items():
                    variables[vname] = _describe(v)
                groups[gname] = (dims, variables)
    except SavedModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise SavedModelError(
            f"{p}: cannot be read: it is a damaged or foreign netCDF-4/HDF5 file "
            f"({exc}), not {what}."
        ) from exc
    return _Layout(config, groups)


def _describe(v: Any) -> _Var:
    import h5py

    dtype = np.dtype(v.dtype)
    h5dtype = getattr(getattr(v, "_h5ds", None), "dtype", dtype)
    if dtype.kind == "O":
        kind = "T" if h5py.check_string_dtype(h5dtype) is not None else "?"
    elif dtype.kind in "biufSU" and dtype.names is None and dtype.subdtype is None:
        kind = dtype.kind
    else:
        kind = "?"
    shape = tuple(int(s) for s in v.shape)
    return _Var(tuple(v.dimensions), shape, kind, math.prod(shape) * dtype.itemsize)


def read_config(
    cls: Any, layout: _Layout, fail: _Fail, types: dict[str, tuple[type, ...]]
) -> dict[str, Any]:
    """The JSON config's parameters, checked for ``cls``: a JSON object with exactly
    ``model`` (``cls``'s name; another alsprog model's file is named as such),
    ``version`` (this alsprog's) and ``params`` (exactly ``cls``'s parameters, each
    of its JSON ``types``, default any; ``seed`` in [0, 2**128))."""
    raw = layout.config
    if not isinstance(raw, str) or len(raw) > _MAX_CONFIG:
        fail("alsprog", f"is {_short(raw)}; expected a JSON text of at most 1 MiB.")
    try:
        config = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        fail("alsprog", f"is not a valid config: not JSON ({str(exc)[:200]}).")
    if not isinstance(config, dict):
        fail("alsprog", f"is not a valid config: {_short(config)} is not an object.")
    for key in ("model", "version", "params"):
        if key not in config:
            fail(key, "is missing from the config (attribute 'alsprog').")
    extra = [k for k in config if k not in ("model", "version", "params")]
    if extra:
        fail(extra[0], f"is not part of a {cls.__name__} config.")
    model_name, version, params = config["model"], config["version"], config["params"]
    if model_name != cls.__name__:
        hint = (
            f": the file holds a {model_name}; load it with {model_name}.load"
            if model_name in _NETCDF_MODELS
            else ""
        )
        fail("model", f"is {model_name!r}, expected {cls.__name__!r}{hint}.")
    if version != __version__:
        fail(
            "version",
            f"is {version!r} but this is alsprog {__version__}; refit the model with "
            "this version.",
        )
    if not isinstance(params, dict):
        fail("params", f"is {_short(params)}; expected a JSON object.")
    names = cls._get_param_names()
    for key in params:
        if key not in names:
            fail(
                f"params.{key}",
                f"is not a parameter of {cls.__name__} (its parameters: "
                f"{', '.join(names)}).",
            )
    for key in names:
        if key not in params:
            fail(f"params.{key}", "is missing.")
        allowed = types.get(key, (object,))
        value = params[key]
        if not isinstance(value, allowed) or (
            isinstance(value, bool) and bool not in allowed
        ):
            fail(
                f"params.{key}", f"is {_short(value)}; expected {_type_names(allowed)}."
            )
    seed = params.get("seed")
    if isinstance(seed, int) and not 0 <= seed < 2**128:
        fail("params.seed", f"is {seed}; expected an integer in [0, 2**128).")
    return dict(params)


def check_params(model: Any, p: Path) -> Any:
    """``model._check_params()``, its refusal a :class:`SavedModelError` naming the
    parameter (the first backquoted name in the message)."""
    try:
        return model._check_params()
    except (TypeError, ValueError) as exc:
        m = re.match(r"`(\w+)", str(exc))
        field = f"params.{m.group(1)}" if m else "params"
        raise SavedModelError(f"{p}: field {field!r}: {exc}") from exc


def _check_config(
    cls: type[BayesianTrajectoryModel],
    p: Path,
    params: dict[str, Any],
    layout: _Layout,
    fail: _Fail,
) -> tuple[BayesianTrajectoryModel, bool]:
    """The parameters: priors, the estimator's own checks, formula and columns."""
    from alsprog._formula_text import check_formula
    from alsprog.errors import ModelSpecificationError

    if params["priors"] is not None:
        priors = {}
        for key, value in params["priors"].items():
            try:
                if not isinstance(value, dict):
                    raise ModelSpecificationError(
                        f"expected a prior dict; got {_short(value)}"
                    )
                priors[key] = Prior.from_dict(value)
                for name, x in priors[key].params.items():
                    if not math.isfinite(x):
                        raise ModelSpecificationError(f"{name} is {x!r}")
            except (ModelSpecificationError, TypeError, ValueError) as exc:
                raise SavedModelError(
                    f"{p}: field 'params.priors.{key}' is refused: {exc}"
                ) from exc
        params["priors"] = priors
    model = cls(**params)
    marginal = check_params(model, p)
    # the formula and the column names that enter formula text, before any design
    columns = list(layout.groups["constant_data"][1])
    checks: list[tuple[str, str, Literal["mixed", "rhs"]]] = []
    if model.formula:
        checks.append(("params.formula", model.formula, "mixed"))
    for key in ("time", "subject"):
        if getattr(model, key) is not None:  # column names enter formula text
            checks.append((f"params.{key}", getattr(model, key), "rhs"))
    field = "params"
    try:
        for field, text, kind in checks:
            checked = check_formula(
                text, columns=columns, kind=kind, what=f"saved {field[7:]}"
            )
            if kind == "rhs" and checked.variables != (text.strip(),):
                raise ModelSpecificationError(f"{text!r} is not a column name.")
    except ModelSpecificationError as exc:
        raise SavedModelError(f"{p}: field {field!r} is refused: {exc}") from exc
    return model, bool(marginal)


def check_declared(
    p: Path, layout: _Layout, fail: _Fail, *, text_groups: tuple[str, ...]
) -> None:
    """What the variables declare, before any value is read: no more bytes than the
    file can hold compressed, plain numbers, text only in ``text_groups`` and in
    coordinates."""
    groups = layout.groups
    size = p.stat().st_size
    declared = sum(v.nbytes for _, vs in groups.values() for v in vs.values())
    if declared > _DEFLATE_MAX_RATIO * size + 2**20:
        raise SavedModelError(
            f"{p}: the variables declare {declared} bytes, more than a {size}-byte "
            "file can hold even compressed; refused before reading (a forged or "
            "zip-bomb file?)."
        )
    where = " and ".join([*text_groups, "coordinates"])
    for gname, (_, variables) in groups.items():
        for vname, v in variables.items():
            is_coord = vname in v.dims and len(v.dims) == 1
            text_ok = gname in text_groups or is_coord
            if v.kind == "?" or (v.kind in "TSU" and not text_ok):
                fail(
                    f"{gname}.{vname}",
                    "has a type alsprog does not write (it writes numbers, and strings "
                    f"only in {where}).",
                )


def _check_layout(
    p: Path, layout: _Layout, model: BayesianTrajectoryModel, fail: _Fail
) -> dict[str, int]:
    """Groups, variables, dimensions and their sizes, before any value is read."""
    groups = layout.groups
    check_declared(p, layout, fail, text_groups=("constant_data",))

    def dims_of(group: str) -> dict[str, int]:
        return groups[group][0]

    def var(group: str, name: str, dims: tuple[str, ...]) -> _Var:
        variables = groups[group][1]
        if name not in variables:
            fail(f"{group}.{name}", f"is missing from group {group!r}.")
        v = variables[name]
        if v.dims != dims:
            fail(f"{group}.{name}", f"has dimensions {v.dims}; expected {dims}.")
        return v

    post = dims_of("posterior")
    for d in ("chain", "draw", "term", "effect", "subject_id"):
        if d not in post:
            fail(f"posterior.{d}", "is missing: the posterior has no such dimension.")
    sizes = {d: post[d] for d in ("chain", "draw", "term", "effect", "subject_id")}
    if sizes["chain"] != model.chains or sizes["draw"] != model.draws:
        fail(
            "posterior",
            f"has {sizes['chain']} chains x {sizes['draw']} draws but params.chains "
            f"= {model.chains}, params.draws = {model.draws}; the file is "
            "inconsistent.",
        )
    if sizes["effect"] != 2:
        fail("posterior.effect", f"has size {sizes['effect']}; expected 2.")
    cd = ("chain", "draw")
    beta = (*cd, "term") if model.kind == "linear" else (*cd, "effect", "term")
    var("posterior", "beta", beta)
    var("posterior", "subject_sd", (*cd, "effect"))
    var("posterior", "subject_corr", cd)
    var("posterior", "sigma", cd)
    if model.likelihood == "student_t":
        var("posterior", "nu", cd)
    var("posterior", "subject_effects", (*cd, "subject_id", "effect"))
    for coord in ("term", "effect", "subject_id"):
        var("posterior", coord, (coord,))
    ss = dims_of("sample_stats")
    if ss.get("chain") != sizes["chain"] or ss.get("draw") != sizes["draw"]:
        fail(
            "sample_stats",
            f"has dimensions {ss}; expected chain = {sizes['chain']}, draw = "
            f"{sizes['draw']}.",
        )
    var("sample_stats", "diverging", cd)
    n_obs = dims_of("constant_data").get("obs")
    if not n_obs:
        fail("constant_data", "has no observations (dimension 'obs' missing or 0).")
    for group in ("log_likelihood", "observed_data"):
        if dims_of(group).get("obs") != n_obs:
            fail(
                group,
                f"has {dims_of(group).get('obs')} observations; constant_data has "
                f"{n_obs}.",
            )
    if not 2 <= sizes["subject_id"] <= n_obs or not 1 <= sizes["term"] <= n_obs:
        fail(
            "posterior",
            f"has {sizes['subject_id']} subjects and {sizes['term']} terms for "
            f"{n_obs} observations; the file is inconsistent.",
        )
    for group in ("constant_data", "observed_data"):
        for vname, v in groups[group][1].items():
            if v.dims != ("obs",):
                fail(f"{group}.{vname}", f"has dimensions {v.dims}; expected ('obs',).")
    for vname in groups["log_likelihood"][1]:
        if vname not in ("chain", "draw", "obs"):
            var("log_likelihood", vname, (*cd, "obs"))
    return {**sizes, "obs": n_obs}


def _restore(
    cls: type[BayesianTrajectoryModel],
    p: Path,
    model: BayesianTrajectoryModel,
    marginal: bool,
    sizes: dict[str, int],
    fail: _Fail,
) -> BayesianTrajectoryModel:
    import arviz as az

    try:
        idata = az.from_netcdf(str(p))
        frame = idata.constant_data.to_dataframe().reset_index(drop=True)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise SavedModelError(f"{p}: cannot be read as netCDF ({exc})") from exc
    for name in frame.columns:
        col = frame[name]
        if col.dtype == object and not all(isinstance(v, str) for v in col):
            fail(
                f"constant_data.{name}",
                "holds values that are neither numbers nor text.",
            )
        if col.isna().any():
            fail(
                f"constant_data.{name}",
                "has missing values; the saved rows are the complete rows of the fit.",
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            design = model._prepare(frame)
        priors = merge_priors(
            model.kind, model.likelihood, model.priors, design.fe_names
        )
    except AlsprogError as exc:
        raise SavedModelError(
            f"{p}: field 'constant_data': the model's design cannot be rebuilt ({exc})"
        ) from exc
    post = idata.posterior
    effects = ["Intercept", design.time] if model.kind == "linear" else EFFECTS_SIGMOID
    for coord, want in [
        ("term", design.fe_names),
        ("effect", effects),
        ("subject_id", design.subject_ids),
    ]:
        have, want = [str(v) for v in post[coord].values], list(want)
        if have != want:
            i = next(
                (i for i, (a, b) in enumerate(zip(have, want, strict=False)) if a != b),
                min(len(have), len(want)),
            )
            fail(
                f"posterior.{coord}",
                f"has {len(have)} values but the saved rows give {len(want)}; the file "
                "is inconsistent."
                if len(have) != len(want)
                else f"has {have[i]!r} at position {i} where the saved rows give "
                f"{want[i]!r}" + "; the file is inconsistent.",
            )
    if len(design.y) != sizes["obs"]:
        fail(
            "constant_data",
            f"gives {len(design.y)} complete rows of {sizes['obs']}; the file is "
            "inconsistent.",
        )
    observed = np.asarray(idata.observed_data[design.outcome].values, dtype=float)
    if design.outcome not in idata.log_likelihood or not np.array_equal(
        observed, design.y
    ):
        fail(
            "observed_data",
            f"does not hold the outcome {design.outcome!r} of the saved rows.",
        )
    _check_draws(idata, model, fail)
    del idata.attrs[CONFIG_ATTR]
    model._set_fitted(idata, design, priors, marginal)
    model.idata_ = idata
    model.diagnostics_ = diagnose(idata, model._population_vars())
    model.converged_ = bool(
        model.diagnostics_["max_rhat"] <= RHAT_MAX
        and model.diagnostics_["min_ess_bulk"] >= ESS_BULK_MIN
        and model.diagnostics_["n_divergent"] == 0
    )
    return model


def check_values(
    values: npt.NDArray[Any], field: str, fail: _Fail, *, scale: bool = False
) -> None:
    """Finite numbers in ``values`` (positive ones for a ``scale``), else a refusal
    naming ``field``."""
    if values.dtype.kind not in "iuf" or not np.all(np.isfinite(values)):
        fail(field, "holds values that are not finite numbers.")
    if scale and np.any(values <= 0):
        fail(
            field,
            f"holds {float(values[values <= 0].ravel()[0])!r}; a scale must be "
            "positive.",
        )


def _check_draws(idata: Any, model: BayesianTrajectoryModel, fail: _Fail) -> None:
    """Finite draws, positive scales, correlations in [-1, 1]."""
    post = idata.posterior
    for name in [*model._population_vars(), "subject_effects"]:
        values = np.asarray(post[name].values)
        scale = name in ("sigma", "subject_sd", "nu")
        check_values(values, f"posterior.{name}", fail, scale=scale)
        if name == "subject_corr" and np.any(np.abs(values) > 1):
            fail(
                "posterior.subject_corr",
                f"holds {float(values[np.abs(values) > 1].ravel()[0])!r}; a "
                "correlation lies in [-1, 1].",
            )
    for name in idata.log_likelihood.data_vars:
        values = np.asarray(idata.log_likelihood[name].values)
        if values.dtype.kind != "f" or not np.all(np.isfinite(values)):
            fail(f"log_likelihood.{name}", "holds values that are not finite numbers.")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)
