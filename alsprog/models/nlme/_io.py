"""Saved D50 nonlinear mixed models: one NumPy ``.npz`` file, never a pickle.

Owns: the fields of a saved :class:`~alsprog.models.NonlinearMixedModel` (a JSON
header ``{"model", "version", "format", "params", "names", "scalars", "frame"}``,
the estimates ``beta`` (2, p), ``cov_re`` (2, 2), ``sigma`` (1,) and the
conditional ``modes`` (G, 2), and the model's columns of the rows used in the fit)
and their checks before anything is built: every field with its JSON type, the
class, version and format, the parameters through the model's own checks, the
formula through :func:`alsprog._formula_text.check_formula` (before formulaic
sees it), every array's shape against the header's counts; then finite
estimates, a symmetric positive definite ``cov_re``, a positive ``sigma``; after
the design is rebuilt from the saved rows by the fit's own code, its names and
counts, the modes being the conditional modes under the saved estimates, and the
log-likelihood those give on those rows against the saved one.
Leaves: the archive and its checks to :mod:`alsprog.models._npz`; frames as arrays
to :mod:`alsprog.models._npz_frames`; the fitted state to
:mod:`alsprog.models.nlme._model`.
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

__all__ = ["FORMAT", "MODE_STEP_TOL", "load_model", "save_model"]

#: Layout version of the file (bumped when the fields change).
FORMAT = 1
#: Largest Gauss-Newton step (log scale) at a saved mode: the fit's inner
#: iterations stop at steps below 1e-6.
MODE_STEP_TOL = 1e-4
_WHAT = (
    "an alsprog nonlinear mixed model .npz file (written by NonlinearMixedModel.save)"
)
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "formula": (str,),
    "time": (str,),
    "subject": (str,),
    "tol": (int, float),
    "max_iter": (int,),
    "strict": (bool,),
}


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted :class:`~alsprog.models.NonlinearMixedModel` to ``path``
    (atomically)."""
    from alsprog._version import __version__

    d = model._design
    arrays: dict[str, npt.NDArray[Any]] = {}
    try:
        frame_spec = encode_frame(d.frame, "frame", arrays)
    except Unsupported as exc:
        raise SavedModelError(
            f"{path}: cannot save NonlinearMixedModel: {exc} (convert it to numbers, "
            "strings or a categorical and refit)."
        ) from exc
    arrays.update(
        beta=np.asarray(model._beta, float),
        cov_re=np.asarray(model._cov, float),
        sigma=np.array([model._sigma], float),
        modes=np.asarray(model._modes, float),
    )
    header = {
        "model": type(model).__name__,
        "version": __version__,
        "format": FORMAT,
        "params": model.get_params(deep=False),
        "names": {
            "fe": [str(c) for c in d.fe_names],
            "variables": [str(c) for c in d.frame.columns],
        },
        "scalars": {
            "llf": float(model.llf_),
            "n_obs": int(model.n_obs_),
            "n_subjects": int(model.n_subjects_),
            "n_dropped": int(model.n_dropped_),
            "n_iter": int(model.n_iter_),
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
        ("llf", "n_obs", "n_subjects", "n_dropped", "n_iter", "converged"),
    )
    llf = ch.number(sc, "llf", "scalars")
    n = ch.count(sc, "n_obs", "scalars", low=1)
    n_subj = ch.count(sc, "n_subjects", "scalars", low=1)
    n_dropped = ch.count(sc, "n_dropped", "scalars")
    n_iter = ch.count(sc, "n_iter", "scalars", low=1)
    converged = ch.get(sc, "converged", bool, "scalars")
    p = len(fe)
    if p < 1 or n_subj > n:
        ch.fail(
            "scalars.n_subjects",
            f"is {n_subj} patients for {n} rows and {p} terms; the file is "
            "inconsistent.",
        )
    ch.member("beta", "beta", (2, p), "f")
    ch.member("cov_re", "cov_re", (2, 2), "f")
    ch.member("sigma", "sigma", (1,), "f")
    ch.member("modes", "modes", (n_subj, 2), "f")
    check_frame(ch, header["frame"], "frame", n, variables)
    for key, want in ch.want.items():
        saved.check(key, field=want.field, shape=want.shape, kind=want.kinds)
    extra = sorted(set(saved.members) - {HEADER} - set(ch.want))
    if extra:
        saved.fail(
            extra[0],
            "is not part of a NonlinearMixedModel file (no field of the header uses "
            "it).",
        )
    return {
        "params": params,
        "fe": fe,
        "variables": variables,
        "llf": llf,
        "n_obs": n,
        "n_subjects": n_subj,
        "n_dropped": n_dropped,
        "n_iter": n_iter,
        "converged": converged,
    }


def _check_formula(
    saved: SavedFile, params: Mapping[str, Any], variables: list
) -> None:
    """The formula through the allow-list; the saved columns exactly those it,
    ``subject`` and ``time`` name."""
    from alsprog._formula_text import check_formula

    try:
        used = check_formula(
            params["formula"], columns=variables, what="saved formula"
        ).variables
    except ModelSpecificationError as exc:
        raise SavedModelError(
            f"{saved.path}: field 'params' is refused: {exc}"
        ) from exc
    want = set(used) | {params["subject"], params["time"]}
    if set(variables) != want:
        saved.fail(
            "names.variables",
            f"is {variables!r} but the formula, subject and time name "
            f"{sorted(want)!r}; the file is inconsistent.",
        )


def _restore(cls: Any, header: Mapping[str, Any], saved: SavedFile) -> Any:
    from alsprog.models.nlme._numerics import lb_loglik, mode_steps, subject_stats

    h = _check_header(cls, header, saved)
    params = h["params"]
    _check_formula(saved, params, h["variables"])
    beta = saved.array("beta")
    cov = saved.array("cov_re")
    sigma_arr = saved.array("sigma")
    modes = saved.array("modes")
    saved.require_finite(
        {"beta": beta, "cov_re": cov, "sigma": sigma_arr, "modes": modes}
    )
    saved.require_symmetric("cov_re", cov)
    if np.any(np.linalg.eigvalsh(0.5 * (cov + cov.T)) <= 0):
        saved.fail("cov_re", "is not positive definite; expected a covariance matrix.")
    sigma = float(sigma_arr[0])
    if sigma <= 0:
        saved.fail("sigma", f"is {sigma!r}; expected a positive residual SD.")
    frame = decode_frame(header["frame"], "frame", saved)
    require_complete(frame, "frame", saved)
    model = cls(**params)
    d, Xs = saved.rebuild("frame", lambda: model._prepare(frame))
    saved.require_rebuilt(
        [
            ("names.fe", h["fe"], list(d.fe_names)),
            ("scalars.n_obs", h["n_obs"], len(d.y)),
            ("scalars.n_subjects", h["n_subjects"], len(Xs)),
        ]
    )
    st = subject_stats(modes, d.y, d.t, d.groups)
    step = mode_steps(st, Xs, beta, cov, sigma)
    if np.max(step) > MODE_STEP_TOL:
        g = int(np.argmax(step))
        saved.fail(
            "modes",
            f"row {g} (subject {d.subject_ids[g]!r}) is not the conditional mode under "
            f"the saved estimates (a Gauss-Newton step of {step[g]:.2g}); the file is "
            "inconsistent.",
        )
    saved.require_llf("scalars.llf", h["llf"], lb_loglik(st, Xs, beta, cov, sigma))
    model._set_fitted(
        d,
        Xs,
        beta,
        cov,
        sigma,
        modes,
        converged=h["converged"],
        n_iter=h["n_iter"],
        n_dropped=h["n_dropped"],
    )
    return model
