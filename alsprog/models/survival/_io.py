"""Saved survival models: one NumPy ``.npz`` file, never a pickle.

Owns: the fields of a saved :class:`~alsprog.models.SurvivalModel` (a JSON header
``{"model", "version", "format", "params", "names", "scalars", "frame"}``, the
estimates ``theta`` (spline, then covariates; the covariates alone for Cox), their
covariance ``cov``, the spline's knots on the log-time scale ``log_knots``
(Royston-Parmar), and the subjects' baseline rows the model was fitted on) and their
checks before anything is built: every field with its JSON type, the class, version
and format, the parameters through the model's own checks (the formula through the
allow-list before formulaic sees it), every array's shape against the header's
counts, finite estimates, a symmetric covariance; then, after the fit's own code
rebuilds the design from the saved rows, its names and counts, and the
log-likelihood of the saved estimates on those rows against the saved one.
Leaves: the archive and its checks to :mod:`alsprog.models._npz`; frames as arrays
to :mod:`alsprog.models._npz_frames`; the fitted state to
:mod:`alsprog.models.survival._model`.
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
_WHAT = "an alsprog survival model .npz file (written by SurvivalModel.save)"
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "formula": (str,),
    "method": (str,),
    "scale": (str,),
    "df": (int,),
    "time_origin": (str,),
    "onset": (str,),
    "subject": (str,),
    "time": (str,),
    "ties": (str,),
    "strict": (bool,),
}


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted :class:`~alsprog.models.SurvivalModel` to ``path``
    (atomically)."""
    from alsprog._version import __version__

    arrays: dict[str, npt.NDArray[Any]] = {}
    try:
        frame_spec = encode_frame(model._frame, "frame", arrays)
    except Unsupported as exc:
        raise SavedModelError(
            f"{path}: cannot save SurvivalModel: {exc} (convert it to numbers, "
            "strings or a categorical and refit)."
        ) from exc
    cox = model.method == "cox"
    theta = (
        model.params_.to_numpy()
        if cox
        else np.concatenate([model.spline_params_.to_numpy(), model.params_.to_numpy()])
    )
    arrays.update(theta=theta, cov=model.cov_params_.to_numpy(float))
    if not cox:
        arrays["log_knots"] = np.asarray(model._log_knots, float)
    header = {
        "model": type(model).__name__,
        "version": __version__,
        "format": FORMAT,
        "params": model.get_params(deep=False),
        "names": {
            "covariates": [str(c) for c in model.params_.index],
            "variables": [str(c) for c in model._frame.columns],
        },
        "scalars": {
            "llf": model.llf_,
            "n_subjects": model.n_subjects_,
            "n_events": model.n_events_,
            "n_params": int(len(theta)),
            "converged": bool(model.converged_),
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
    try:  # the estimator's own checks (the formula through the allow-list)
        cls(**params)._checked()
    except (TypeError, ValueError, ModelSpecificationError) as exc:
        ch.refuse_params(exc)
    nm = ch.keys(header["names"], "names", ("covariates", "variables"))
    covariates = ch.names(nm, "covariates", "names")
    variables = ch.names(nm, "variables", "names")
    sc = ch.keys(
        header["scalars"],
        "scalars",
        ("llf", "n_subjects", "n_events", "n_params", "converged"),
    )
    llf = ch.number(sc, "llf", "scalars")
    n_subj = ch.count(sc, "n_subjects", "scalars", low=1)
    n_events = ch.count(sc, "n_events", "scalars", low=1)
    n_params = ch.count(sc, "n_params", "scalars", low=0)
    converged = ch.get(sc, "converged", bool, "scalars")
    n_spline = 0 if params["method"] == "cox" else int(params["df"]) + 1
    if n_events > n_subj or n_params != n_spline + len(covariates):
        ch.fail(
            "scalars.n_params",
            f"is {n_params} for {len(covariates)} covariates, {n_subj} subjects and "
            f"{n_events} events; the file is inconsistent.",
        )
    ch.member("theta", "theta", (n_params,), "f")
    ch.member("cov", "cov", (n_params, n_params), "f")
    if n_spline:
        ch.member("log_knots", "log_knots", (n_spline,), "f")
    check_frame(ch, header["frame"], "frame", n_subj, variables)
    for key, want in ch.want.items():
        saved.check(key, field=want.field, shape=want.shape, kind=want.kinds)
    extra = sorted(set(saved.members) - {HEADER} - set(ch.want))
    if extra:
        saved.fail(
            extra[0],
            "is not part of a SurvivalModel file (no field of the header uses it).",
        )
    return {
        "params": params,
        "covariates": covariates,
        "llf": llf,
        "n_subjects": n_subj,
        "n_events": n_events,
        "converged": converged,
        "n_spline": n_spline,
    }


def _restore(cls: Any, header: Mapping[str, Any], saved: SavedFile) -> Any:
    h = _check_header(cls, header, saved)
    theta = saved.array("theta")
    cov = saved.array("cov")
    saved.require_finite({"theta": theta})
    saved.require_symmetric("cov", cov, finite_only=True)
    knots = saved.array("log_knots") if h["n_spline"] else None
    if knots is not None:
        saved.require_finite({"log_knots": knots})
        if np.any(np.diff(knots) <= 0):
            saved.fail("log_knots", "is not increasing; expected spline knots.")
    frame = decode_frame(header["frame"], "frame", saved)
    require_complete(frame, "frame", saved)
    model = cls(**h["params"])
    prep = saved.rebuild("frame", lambda: model._prepare(frame))
    saved.require_rebuilt(
        [
            ("names.covariates", h["covariates"], list(prep.names)),
            ("scalars.n_subjects", h["n_subjects"], len(prep.exit)),
            ("scalars.n_events", h["n_events"], int(prep.event.sum())),
        ]
    )
    model._set_fitted(prep, theta, cov, knots)
    saved.require_llf("scalars.llf", h["llf"], model.llf_)
    model.converged_ = bool(h["converged"])
    return model
