"""Saved latent-class mixed models: one NumPy ``.npz`` file, never a pickle.

Owns: the fields of a saved :class:`~alsprog.models.LatentClassMixedModel` (a JSON
header ``{"model", "version", "format", "params", "names", "scalars", "frame"}``,
the estimates as the optimiser's vector ``x``, their covariance ``cov_x`` and the
log-likelihood each start reached ``start_llf``, and the model's columns of the
rows used in the fit) and their checks before anything is built: every field with
its JSON type, the class, version and format, the parameters through the model's
own checks, both formulas through :func:`alsprog._formula_text.check_formula`
(before formulaic sees them), every array's shape against the header's counts,
finite estimates, a symmetric covariance; then, after the design is rebuilt from
the saved rows by the fit's own code, its names and counts, and the
log-likelihood of the saved estimates on those rows against the saved one.
Leaves: the archive and its checks to :mod:`alsprog.models._npz`; frames as arrays
to :mod:`alsprog.models._npz_frames`; the fitted state to
:mod:`alsprog.models.latent._model`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.errors import ModelSpecificationError, SavedModelError
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
FORMAT = 1
_WHAT = (
    "an alsprog latent-class model .npz file (written by LatentClassMixedModel.save)"
)
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "formula": (str,),
    "n_classes": (int,),
    "time": (str,),
    "mixture": (type(None), list),
    "class_formula": (type(None), str),
    "random_covariance": (str,),
    "link": (str,),
    "n_init": (int,),
    "seed": (type(None), int),
    "n_jobs": (type(None), int),
    "max_iter": (int,),
    "tol": (int, float),
}


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted :class:`~alsprog.models.LatentClassMixedModel` to ``path``
    (atomically)."""
    from alsprog._version import __version__

    params = model.get_params(deep=False)
    if params["mixture"] is not None:
        params["mixture"] = [str(m) for m in params["mixture"]]
    if not isinstance(params["seed"], (type(None), int)) or isinstance(
        params["seed"], bool
    ):
        params["seed"] = None  # a Generator is not a file's business: the fit is
    arrays: dict[str, npt.NDArray[Any]] = {}
    try:
        frame_spec = encode_frame(model._frame, "frame", arrays)
    except Unsupported as exc:
        raise SavedModelError(
            f"{path}: cannot save LatentClassMixedModel: {exc} (convert it to "
            "numbers, strings or a categorical and refit)."
        ) from exc
    state = model._state
    arrays.update(
        x=np.asarray(state.x, float),
        cov_x=np.asarray(state.cov_x, float),
        start_llf=np.asarray(model.start_llf_, float),
    )
    header = {
        "model": type(model).__name__,
        "version": __version__,
        "format": FORMAT,
        "params": params,
        "names": {
            "fe": [str(c) for c in model.fe_params_.columns],
            "variables": [str(c) for c in model._frame.columns],
        },
        "scalars": {
            "llf": model.llf_,
            "n_obs": model.n_obs_,
            "n_subjects": model.n_subjects_,
            "n_params": model.n_params_,
            "n_starts": len(model.start_llf_),
        },
        "frame": frame_spec,
    }
    write_saved(path, header, arrays)


def load_model(cls: Any, path: str | os.PathLike[str]) -> Any:
    """Rebuild a model saved by :func:`save_model` (see the module docstring); a
    refusal is a :class:`~alsprog.errors.SavedModelError` naming the file and the
    field."""
    header, saved = read_saved(path, what=_WHAT)
    with saved:
        return _restore(cls, header, saved)


def _check_header(cls: Any, header: Mapping[str, Any], saved: SavedFile) -> dict:
    ch = Check(saved.path, cls.__name__)
    ch.identity(header, cls, FORMAT)
    ch.keys(
        header,
        "",
        ("model", "version", "format", "params", "names", "scalars", "frame"),
    )
    params = dict(ch.params(header, cls, _PARAM_TYPES))
    try:  # the estimator's own declaration of its parameters
        cls(**params)._check_params()
    except (TypeError, ValueError, ModelSpecificationError) as exc:
        ch.refuse_params(exc)
    nm = ch.keys(header["names"], "names", ("fe", "variables"))
    fe = ch.names(nm, "fe", "names")
    variables = ch.names(nm, "variables", "names")
    sc = ch.keys(
        header["scalars"],
        "scalars",
        ("llf", "n_obs", "n_subjects", "n_params", "n_starts"),
    )
    llf = ch.number(sc, "llf", "scalars")
    n = ch.count(sc, "n_obs", "scalars", low=1)
    n_subj = ch.count(sc, "n_subjects", "scalars", low=1)
    n_params = ch.count(sc, "n_params", "scalars", low=1)
    n_starts = ch.count(sc, "n_starts", "scalars", low=1)
    if n_subj > n or n_params >= n_subj:
        ch.fail(
            "scalars.n_obs",
            f"is {n} rows for {n_subj} subjects and {n_params} parameters; the file "
            "is inconsistent.",
        )
    ch.member("x", "x", (n_params,), "f")
    ch.member("cov_x", "cov_x", (n_params, n_params), "f")
    ch.member("start_llf", "start_llf", (n_starts,), "f")
    check_frame(ch, header["frame"], "frame", n, variables)
    for key, want in ch.want.items():
        saved.check(key, field=want.field, shape=want.shape, kind=want.kinds)
    extra = sorted(set(saved.members) - {HEADER} - set(ch.want))
    if extra:
        saved.fail(
            extra[0],
            "is not part of a LatentClassMixedModel file (no field of the header "
            "uses it).",
        )
    return {
        "params": params,
        "fe": fe,
        "variables": variables,
        "llf": llf,
        "n_obs": n,
        "n_subjects": n_subj,
        "n_params": n_params,
    }


def _check_formulas(
    saved: SavedFile, params: Mapping[str, Any], variables: list
) -> None:
    """Both formulas through the allow-list; the saved columns exactly those they
    name."""
    from alsprog._formula_text import check_formula
    from alsprog.models.latent._membership import class_rhs

    try:
        main = check_formula(
            params["formula"], columns=variables, what="saved formula"
        ).variables
        extra: tuple[str, ...] = ()
        if params["class_formula"] is not None:
            _, extra = class_rhs(params["class_formula"], variables)
    except ModelSpecificationError as exc:
        raise SavedModelError(
            f"{saved.path}: field 'params' is refused: {exc}"
        ) from exc
    if set(variables) != set(main) | set(extra):
        saved.fail(
            "names.variables",
            f"is {variables!r} but the formulas name {sorted(set(main) | set(extra))!r}; "
            "the file is inconsistent.",
        )


def _restore(cls: Any, header: Mapping[str, Any], saved: SavedFile) -> Any:
    from alsprog.models.latent._numerics import evaluate

    h = _check_header(cls, header, saved)
    params = h["params"]
    _check_formulas(saved, params, h["variables"])
    x = saved.array("x")
    cov_x = saved.array("cov_x")
    llfs = saved.array("start_llf")
    saved.require_finite({"x": x})
    saved.require_symmetric("cov_x", cov_x, finite_only=True)
    frame = decode_frame(header["frame"], "frame", saved)
    require_complete(frame, "frame", saved)
    model = cls(**params)
    prep = saved.rebuild("frame", lambda: model._prepare(frame))
    saved.require_rebuilt(
        [
            ("names.fe", h["fe"], list(prep.design.fe_names)),
            ("scalars.n_obs", h["n_obs"], prep.stats.n_obs),
            ("scalars.n_subjects", h["n_subjects"], prep.stats.n_subjects),
            ("scalars.n_params", h["n_params"], prep.layout.n_params),
        ]
    )
    llf = evaluate(x, prep.layout, prep.stats, grad=False).llf + prep.log_jacobian
    saved.require_llf("scalars.llf", h["llf"], llf)
    model._set_fitted(prep, x, cov_x, llfs)
    return model
