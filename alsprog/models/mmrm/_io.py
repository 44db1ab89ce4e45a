"""Saved MMRMs: one NumPy ``.npz`` file, never a pickle.

Owns: the fields of a saved :class:`~alsprog.models.MMRM` (a JSON header
``{"model", "version", "format", "params", "names", "scalars", "frame"}``, the
estimates ``fe_params``, ``cov_beta``, ``cov`` (one visit covariance per covariance
group, (G, T, T)), ``theta`` (mmrm's parameterisation, format 2) and, when the fit
had one, ``theta_cov``, and the model's columns of the rows used in the fit, group
and weights columns included) and their checks before anything is built: every field present with its JSON type, the
class, version and format, the parameters, the formula through
:func:`alsprog._formula_text.check_formula` (before formulaic sees it), every
array's declared shape against the header's counts; then the values (finite,
symmetric, positive-definite covariances, ``cov`` equal to the covariance its
``theta`` gives) and, after the design is rebuilt from the saved rows (the same
code as the fit's), its agreement with the saved names, counts and estimates.
Leaves: the archive and its checks to :mod:`alsprog.models._npz`; frames as arrays
to :mod:`alsprog.models._npz_frames`; the fitted state to
:mod:`alsprog.models.mmrm._model`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.errors import (
    ModelSpecificationError,
    SavedModelError,
)
from alsprog.models._npz import HEADER, Check, SavedFile, read_saved, write_saved
from alsprog.models._npz_frames import (
    Unsupported,
    check_frame,
    decode_frame,
    encode_frame,
    require_complete,
)

__all__ = ["FORMAT", "load_model", "save_model"]

#: Layout version of the file (bumped when the fields change).
FORMAT = 2  # 2: mmrm's covariance parameterisation, groups, weights, ML
_WHAT = "an alsprog MMRM .npz file (written by MMRM.save)"
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "formula": (str,),
    "subject": (str,),
    "visit": (str,),
    "arm": (str,),
    "reference": (type(None), str, bool, int, float),
    "covariance": (str,),
    "method": (str,),
    "group": (type(None), str),
    "weights": (type(None), str),
    "tol": (int, float),
    "max_iter": (int,),
    "strict": (bool,),
}
_SCALARS = (
    "llf",
    "converged",
    "n_obs",
    "n_subjects",
    "n_dropped",
    "n_visits",
    "n_groups",
)


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted :class:`~alsprog.models.MMRM` to ``path`` (atomically)."""
    from alsprog._version import __version__

    params = model.get_params(deep=False)
    ref = params["reference"]
    if isinstance(ref, np.generic):
        ref = params["reference"] = ref.item()
    if not isinstance(ref, _PARAM_TYPES["reference"]):
        raise SavedModelError(
            f"{path}: cannot save MMRM: its reference {ref!r} is not a string or a "
            "number."
        )
    arrays: dict[str, np.ndarray] = {}
    try:
        frame_spec = encode_frame(model._frame, "frame", arrays)
    except Unsupported as exc:
        raise SavedModelError(
            f"{path}: cannot save MMRM: {exc} (convert it to numbers, strings or a "
            "categorical and refit)."
        ) from exc
    arrays.update(
        fe_params=model.fe_params_.to_numpy(),
        cov_beta=model._Cinv,
        cov=model._sigmas,
        theta=np.asarray(model.theta_, dtype=float),
    )
    if model._theta_cov is not None:
        arrays["theta_cov"] = model._theta_cov
    header = {
        "model": type(model).__name__,
        "version": __version__,
        "format": FORMAT,
        "params": params,
        "names": {
            "fe": [str(c) for c in model.fe_params_.index],
            "variables": [str(c) for c in model._frame.columns],
        },
        "scalars": {
            "llf": model.llf_,
            "converged": bool(model.converged_),
            "n_obs": model.n_obs_,
            "n_subjects": model.n_subjects_,
            "n_dropped": model.n_dropped_,
            "n_visits": len(model.visits_),
            "n_groups": len(model.groups_),
            "theta_cov": model._theta_cov is not None,
        },
        "frame": frame_spec,
    }
    write_saved(path, header, arrays)


def load_model(cls: Any, path: str | os.PathLike[str]) -> Any:
    """Rebuild an :class:`~alsprog.models.MMRM` saved by :func:`save_model`.

    The whole file is checked before anything is built from it (see the module
    docstring); a refusal is a :class:`~alsprog.errors.SavedModelError` naming the
    file and the field.
    """
    header, saved = read_saved(path, what=_WHAT)
    with saved:
        return _restore(cls, header, saved)


def _check_header(cls: Any, header: Mapping[str, Any], saved: SavedFile) -> dict:
    """Check every field of the JSON header and the members it implies; read
    nothing.  Returns the counts and names the rest of the load uses."""
    from alsprog.models.mmrm._covariance import canonical_structure
    from alsprog.models.mmrm._numerics import n_cov_params

    ch = Check(saved.path, cls.__name__)
    ch.identity(header, cls, FORMAT)
    ch.keys(
        header,
        "",
        ("model", "version", "format", "params", "names", "scalars", "frame"),
    )
    params = ch.params(header, cls, _PARAM_TYPES)
    try:  # the estimator's one declaration of its parameters
        cls(**params).check_params()
    except (TypeError, ValueError) as exc:
        ch.refuse_params(exc)
    nm = ch.keys(header["names"], "names", ("fe", "variables"))
    fe = ch.names(nm, "fe", "names")
    variables = ch.names(nm, "variables", "names")
    if not fe:
        ch.fail("names.fe", "is empty; an MMRM has fixed effects.")
    sc = ch.keys(header["scalars"], "scalars", (*_SCALARS, "theta_cov"))
    llf = ch.number(sc, "llf", "scalars")
    converged = ch.get(sc, "converged", bool, "scalars")
    n = ch.count(sc, "n_obs", "scalars", low=1)
    n_subj = ch.count(sc, "n_subjects", "scalars", low=1)
    n_dropped = ch.count(sc, "n_dropped", "scalars")
    T = ch.count(sc, "n_visits", "scalars", low=2)
    G = ch.count(sc, "n_groups", "scalars", low=1)
    has_theta_cov = ch.get(sc, "theta_cov", bool, "scalars")
    if n_subj > n or T > n or G > n_subj or len(fe) >= n:
        ch.fail(
            "scalars.n_obs",
            f"is {n}: fewer rows than {n_subj} subjects, {T} visits, {G} groups or "
            f"{len(fe)} fixed "
            "effects allow; the file is inconsistent.",
        )
    if params["group"] is None and G != 1:
        ch.fail("scalars.n_groups", f"is {G} but the model has no group column.")
    P = len(fe)
    k = n_cov_params(canonical_structure(params["covariance"]), T) * G
    shapes = {
        "fe_params": (P,),
        "cov_beta": (P, P),
        "cov": (G, T, T),
        "theta": (k,),
        **({"theta_cov": (k, k)} if has_theta_cov else {}),
    }
    for key, shape in shapes.items():
        ch.member(key, key, shape, "f")
    check_frame(ch, header["frame"], "frame", n, variables)
    have = set(saved.members) - {HEADER}
    for key, want in ch.want.items():
        saved.check(key, field=want.field, shape=want.shape, kind=want.kinds)
    extra = sorted(have - set(ch.want))
    if extra:
        saved.fail(
            extra[0], "is not part of an MMRM file (no field of the header uses it)."
        )
    return {
        "params": dict(params),
        "fe": fe,
        "variables": variables,
        "n_obs": n,
        "n_subjects": n_subj,
        "n_groups": G,
        "n_dropped": n_dropped,
        "n_visits": T,
        "llf": llf,
        "converged": converged,
        "arrays": tuple(shapes),
    }


def _check_formula(
    saved: SavedFile, params: Mapping[str, Any], variables: list
) -> None:
    """The formula through the allow-list, and the saved columns exactly those
    the formula and the subject, visit and arm parameters name."""
    from alsprog._formula_text import check_formula

    try:
        checked = check_formula(
            params["formula"], columns=variables, kind="fixed", what="saved formula"
        )
    except ModelSpecificationError as exc:
        raise SavedModelError(
            f"{saved.path}: field 'params.formula' is refused: {exc}"
        ) from exc
    extra = [params[c] for c in ("group", "weights") if params[c] is not None]
    cols = [params["subject"], params["visit"], params["arm"], *extra]
    used = list(dict.fromkeys([*sorted(set(checked.variables)), *cols]))
    if used != variables:
        saved.fail(
            "names.variables",
            f"is {variables!r} but the formula and parameters name {used!r}; the "
            "file is inconsistent.",
        )


def _check_values(saved: SavedFile, values: dict[str, npt.NDArray[Any]]) -> None:
    """Finite numbers; symmetric positive-definite covariances."""
    saved.require_finite(values)
    for key in ("cov", "cov_beta", "theta_cov"):
        if key not in values:
            continue
        arr = values[key]
        saved.require_symmetric(key, arr)
        try:
            np.linalg.cholesky(arr)
        except np.linalg.LinAlgError:
            saved.fail(key, "is not positive definite; expected a covariance matrix.")


def _agree(saved: SavedFile, field: str, mine: Any, ref: Any, rtol: float) -> None:
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    if not np.allclose(mine, ref, rtol=rtol, atol=rtol * scale):
        saved.fail(
            field,
            "differs from what the saved rows and covariance give; the file is "
            "inconsistent (or was saved by another formulaic version).",
        )


def _restore(cls: Any, header: Mapping[str, Any], saved: SavedFile) -> Any:
    from alsprog.models.mmrm._covariance import canonical_structure
    from alsprog.models.mmrm._design import build_design
    from alsprog.models.mmrm._numerics import evaluate_reml, sigmas_from_params

    # 1. the header and every member's declared shape and dtype; nothing read yet
    h = _check_header(cls, header, saved)
    params = h["params"]
    # 2. the formula, before formulaic sees it
    _check_formula(saved, params, h["variables"])
    # 3. the values, now that every read is bounded by the declared counts
    values = {key: saved.array(key) for key in h["arrays"]}
    _check_values(saved, values)
    implied = sigmas_from_params(
        values["theta"],
        canonical_structure(params["covariance"]),
        h["n_visits"],
        h["n_groups"],
    )
    _agree(saved, "cov", implied, values["cov"], 1e-9)
    frame = decode_frame(header["frame"], "frame", saved)
    require_complete(frame, "frame", saved)
    # 4. the design, rebuilt from the checked formula and rows as the fit built it
    model = cls(**params)
    d = saved.rebuild("frame", lambda: build_design(model, frame))
    saved.require_rebuilt(
        [
            ("names.fe", h["fe"], d["fe_names"]),
            ("scalars.n_obs", h["n_obs"], d["n"]),
            ("scalars.n_subjects", h["n_subjects"], d["n_subjects"]),
            ("scalars.n_visits", h["n_visits"], len(d["visits"])),
            ("scalars.n_groups", h["n_groups"], len(d["groups"])),
        ]
    )
    # 5. the estimates are the GLS fit of those rows under the saved covariance
    ev = evaluate_reml(
        values["cov"], d["patterns"], False, reml=params["method"] == "REML"
    )
    _agree(saved, "fe_params", ev.beta, values["fe_params"], 1e-8)
    _agree(saved, "cov_beta", ev.Cinv, values["cov_beta"], 1e-8)
    if not math.isclose(-0.5 * ev.value, h["llf"], rel_tol=1e-8, abs_tol=1e-8):
        saved.fail(
            "scalars.llf",
            f"differs from the saved rows' {params['method']} log-likelihood.",
        )
    d["n_dropped"] = h["n_dropped"]
    model._set_state(
        d,
        theta=values["theta"],
        sigma=values["cov"],
        beta=values["fe_params"],
        cinv=values["cov_beta"],
        llf=h["llf"],
        theta_cov=values.get("theta_cov"),
        converged=h["converged"],
    )
    return model
