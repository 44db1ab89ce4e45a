"""The saved file of a LinearMixedModel with several grouping factors.

Owns: :func:`multi_fields` (the JSON header and arrays :meth:`LinearMixedModel.save
<alsprog.models.LinearMixedModel.save>` writes for such a model) and
:func:`restore_multi` (its checked reload).  The file holds the parameters, the
fit's rows, lme4's theta and the estimates; the reload checks the header and every
member's declared shape before reading, rebuilds the design from the rows, solves
the penalised least squares at the saved theta (one evaluation, no refit) and
refuses a file whose saved estimates that solution does not reproduce.
Leaves: the one-factor file and the shared checks to :mod:`alsprog.models.lmm._io`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.errors import SavedModelError
from alsprog.models._npz import Check, SavedFile
from alsprog.models._npz_frames import (
    Unsupported,
    check_frame,
    decode_frame,
    encode_frame,
)

__all__ = ["multi_fields", "restore_multi"]

_ARRAYS = ("fe_params", "cov_beta", "theta", "resid")


def multi_fields(
    model: Any, path: str | os.PathLike[str], fmt: int
) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The JSON header and arrays of a saved multi-factor mixed model."""
    from alsprog._version import __version__

    arrays: dict[str, npt.NDArray[Any]] = {}
    try:
        frame_spec = encode_frame(model._frame, "frame", arrays)
    except Unsupported as exc:
        raise SavedModelError(
            f"{path}: cannot save {type(model).__name__}: {exc} (convert it to "
            "numbers, strings or a categorical, or reset the data's index, and refit)."
        ) from exc
    arrays.update(
        fe_params=model.fe_params_.to_numpy(),
        cov_beta=model._cov_beta,
        theta=model.theta_.to_numpy(),
        resid=model.resid_.to_numpy(),
    )
    header = {
        "model": type(model).__name__,
        "version": __version__,
        "format": fmt,
        "params": model.get_params(deep=False),
        "names": {
            "fe": list(model.fe_params_.index),
            "theta": list(model.theta_.index),
            "variables": list(model._design_info["variables"]),
            "factors": [f["name"] for f in model._multi["factors"]],
        },
        "scalars": {
            "scale": model.scale_,
            "deviance": model._deviance,
            "converged": model.converged_,
            "singular": model.singular_,
            "n_obs": model.n_obs_,
            "n_dropped": model.n_dropped_,
            "n_iter": model.n_iter_,
        },
        "frame": frame_spec,
    }
    return header, arrays


def is_multi_header(header: Any) -> bool:
    """Whether a mixed model's header is a multi-factor one (names its factors)."""
    names = header.get("names") if isinstance(header, Mapping) else None
    return isinstance(names, Mapping) and "factors" in names


def restore_multi(
    cls: Any, header: Mapping[str, Any], saved: SavedFile, fmt: int
) -> Any:
    """Check a saved multi-factor mixed model whole, then build it (no refit).

    Raises
    ------
    SavedModelError
        Naming the file and the field.
    """
    from alsprog.errors import ModelSpecificationError
    from alsprog.models.lmm._io import _PARAM_TYPES, _check_params
    from alsprog.models.lmm._multi import MultiStats, multi_estimates
    from alsprog.models.lmm._multi_design import build_multi_design
    from alsprog.models.lmm._multi_model import set_multi_state

    ch = Check(saved.path, cls.__name__, prefix=saved.prefix)
    ch.identity(header, cls, fmt)
    ch.keys(
        header,
        "",
        ("model", "version", "format", "params", "names", "scalars", "frame"),
    )
    params = ch.params(header, cls, _PARAM_TYPES)
    nm = ch.keys(header["names"], "names", ("fe", "theta", "variables", "factors"))
    fe = ch.names(nm, "fe", "names")
    theta_names = ch.names(nm, "theta", "names")
    variables = ch.names(nm, "variables", "names")
    factors = ch.names(nm, "factors", "names")
    sc = ch.keys(
        header["scalars"],
        "scalars",
        ("scale", "deviance", "converged", "singular", "n_obs", "n_dropped", "n_iter"),
    )
    scale = ch.number(sc, "scale", "scalars", positive=True)
    deviance = ch.number(sc, "deviance", "scalars")
    converged = ch.get(sc, "converged", bool, "scalars")
    singular = ch.get(sc, "singular", bool, "scalars")
    n = ch.count(sc, "n_obs", "scalars", low=1)
    n_dropped = ch.count(sc, "n_dropped", "scalars")
    n_iter = ch.count(sc, "n_iter", "scalars")
    P, k = len(fe), len(theta_names)
    if n <= P or k < 1:
        ch.fail(
            "scalars.n_obs", f"is {n} for {P} fixed effects; the file is inconsistent."
        )
    for key, shape in {
        "fe_params": (P,),
        "cov_beta": (P, P),
        "theta": (k,),
        "resid": (n,),
    }.items():
        ch.member(key, key, shape, "f")
    check_frame(ch, header["frame"], "frame", n, variables)
    have = saved.data_keys
    for key, want in ch.want.items():
        saved.check(key, field=want.field, shape=want.shape, kind=want.kinds)
    extra = sorted(have - set(ch.want))
    if extra:
        saved.fail(
            extra[0],
            "is not part of a LinearMixedModel file (no field of the header uses it).",
        )
    model = _check_params(cls, dict(params), saved, variables)
    values = {key: saved.array(key) for key in _ARRAYS}
    saved.require_finite(values)
    frame = decode_frame(header["frame"], "frame", saved)
    for name in frame.columns:
        if frame[name].isna().any():
            saved.fail(
                "frame",
                f"column {name!r} has missing values; the saved rows are the complete "
                "rows of the fit.",
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            design = build_multi_design(model.formula, frame)
    except ModelSpecificationError as exc:
        raise SavedModelError(
            f"{saved.path}: field {saved.name('frame')!r}: the model's design cannot "
            f"be rebuilt ({exc})"
        ) from exc
    for field, saved_value, rebuilt in [
        ("names.fe", fe, design.fe_names),
        ("names.theta", theta_names, design.theta_names),
        ("names.variables", variables, design.variables),
        ("names.factors", factors, [f.name for f in design.factors]),
        ("scalars.n_obs", n, design.X.shape[0]),
    ]:
        if saved_value != rebuilt:
            saved.fail(
                field,
                f"is {saved_value!r} but the saved rows give {rebuilt!r}; the file is "
                "inconsistent.",
            )
    theta = values["theta"]
    low = design.theta_lower
    if np.any(theta < low):
        i = int(np.flatnonzero(theta < low)[0])
        saved.fail(
            "theta",
            f"has {theta_names[i]} = {float(theta[i])!r}; a relative standard "
            "deviation cannot be negative.",
        )
    try:
        est = multi_estimates(
            design,
            MultiStats.of(design),
            theta,
            reml=bool(model.reml),
            converged=converged,
            n_iter=n_iter,
            message="loaded",
        )
    except ModelSpecificationError as exc:
        raise saved.error("theta", f"gives no solution ({exc}).") from exc
    checks = [
        ("fe_params", values["fe_params"], est.beta),
        ("cov_beta", values["cov_beta"], est.cov_beta),
        ("resid", values["resid"], None),
        ("scalars.scale", np.array([scale]), np.array([est.sigma2])),
        ("scalars.deviance", np.array([deviance]), np.array([est.deviance])),
    ]
    for field, got, want in checks:
        if want is None:
            continue
        tol = 1e-7 * max(1.0, float(np.max(np.abs(want))))
        if not np.allclose(got, want, rtol=1e-7, atol=tol):
            saved.fail(
                field,
                "differs from the estimates the saved rows give at the saved theta; "
                "the file is inconsistent.",
            )
    set_multi_state(model, design, est)
    if not np.allclose(model.resid_.to_numpy(), values["resid"], rtol=1e-7, atol=1e-7):
        saved.fail("resid", "differs from the residuals at the saved estimates.")
    model.n_dropped_ = n_dropped
    model.singular_ = singular
    return model
