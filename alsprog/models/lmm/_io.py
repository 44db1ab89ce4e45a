"""Saved LinearMixedModels: one NumPy ``.npz`` file, never a pickle.

Owns: the fields of a saved :class:`~alsprog.models.LinearMixedModel` (a JSON header
``{"model", "version", "format", "params", "names", "scalars", "frame", "levels"}``
and the fitted arrays) and their checks before anything is built: every field
present with its JSON type, the class, version and format known, the parameters
through the estimator's own ``_check_params``, the formula through
:func:`alsprog._formula_text.check_formula` (before any design is rebuilt), finite
numbers, positive variances, and every array's declared shape equal to what the
header's counts imply; then the values (finite, symmetric covariances, non-negative
variances, ``cov_re`` equal to ``scale * Lambda(theta) Lambda(theta)'``) and, after
the design is rebuilt from the saved rows, its agreement with the saved one.  The
format is a public piece of the mixed-model family that other files embed (a joint
model's longitudinal part): :func:`mixed_fields` gives a fitted model's header and
arrays without writing anything, :func:`check_mixed` checks them in a file (or in a
:meth:`~alsprog.models._npz.SavedFile.part` of one, its fields then named with the
part's prefix) and :func:`restore_mixed` checks them whole and builds the model;
:func:`save_model` and :func:`load_model` are these applied to a file of its own.
Leaves: the archive, its size and dtype checks to :mod:`alsprog.models._npz`; frames
as arrays to :mod:`alsprog.models._npz_frames`; the fitted state to
:mod:`alsprog.models.lmm._model`.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.errors import SavedModelError
from alsprog.models._npz import (
    Check,
    SavedFile,
    read_saved,
    short,
    write_saved,
)
from alsprog.models._npz_frames import (
    Unsupported,
    check_frame,
    check_index,
    decode_frame,
    decode_index,
    encode_frame,
    encode_index,
)

__all__ = [
    "FORMAT",
    "check_mixed",
    "load_model",
    "mixed_fields",
    "restore_mixed",
    "save_model",
]

#: Layout version of the file (bumped when the fields change).
FORMAT = 1
_WHAT = "an alsprog mixed-model .npz file (written by LinearMixedModel.save)"


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted :class:`~alsprog.models.LinearMixedModel` to ``path``
    (atomically): the header and arrays of :func:`mixed_fields`."""
    if getattr(model, "_multi", None) is not None:  # several grouping factors
        from alsprog.models.lmm._multi_io import multi_fields

        header, arrays = multi_fields(model, path, FORMAT)
    else:
        header, arrays = mixed_fields(model, path)
    write_saved(path, header, arrays)


def mixed_fields(
    model: Any, path: str | os.PathLike[str], *, field: str | None = None
) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The JSON header and the arrays of a saved mixed model; nothing is written.

    Parameters
    ----------
    model : LinearMixedModel
        Fitted.
    path : str or os.PathLike
        The file they are meant for, named in a refusal.
    field : str, optional
        The field of that file they go to (a joint model's ``"longitudinal"``),
        named in a refusal.

    Returns
    -------
    header : dict
        ``{"model", "version", "format", "params", "names", "scalars", "frame",
        "levels"}``, JSON-ready.
    arrays : dict of str to numpy.ndarray
        Plain numeric or string arrays by member key (no object array).

    Raises
    ------
    SavedModelError
        If a column of the model's rows or its subjects' index cannot be stored
        without pickle.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alsprog.models import LinearMixedModel
    >>> rng = np.random.default_rng(0)
    >>> sid = np.repeat(np.arange(30), 4); t = np.tile(np.arange(4.0), 30)
    >>> y = 40 + rng.normal(0, 3, 30)[sid] - t + rng.normal(0, 1, 120)
    >>> df = pd.DataFrame({"subject_id": sid, "months": t,
    ...                    "alsfrs_r_total": np.round(y)})
    >>> m = LinearMixedModel("alsfrs_r_total ~ months + (1 | subject_id)").fit(df)
    >>> header, arrays = mixed_fields(m, "lmm.npz")
    >>> header["model"], arrays["fe_params"].shape
    ('LinearMixedModel', (2,))
    """
    from alsprog._version import __version__

    arrays: dict[str, npt.NDArray[Any]] = {}
    try:
        frame_spec = encode_frame(model._frame, "frame", arrays)
        levels_spec = encode_index(model._design_info["levels"], "levels", arrays)
    except Unsupported as exc:
        where = f"{path}: field {field!r}" if field else f"{path}"
        raise SavedModelError(
            f"{where}: cannot save {type(model).__name__}: {exc} (convert it to "
            "numbers, strings or a categorical, or reset the data's index, and refit)."
        ) from exc
    x_first, z_first, _ = model._fixed_matrix(model._first_rows)
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
            "n_groups": model.n_subjects_,
            "n_dropped": model.n_dropped_,
            "n_iter": model.n_iter_,
            "time_range": list(model._time_range),
        },
        "frame": frame_spec,
        "levels": levels_spec,
    }
    return header, arrays


def load_model(cls: Any, path: str | os.PathLike[str]) -> Any:
    """Rebuild a :class:`~alsprog.models.LinearMixedModel` saved by :func:`save_model`.

    The whole file is checked before anything is built from it (see the module
    docstring); a refusal is a :class:`~alsprog.errors.SavedModelError` naming the
    file and the field.
    """
    from alsprog.models.lmm._multi_io import is_multi_header, restore_multi

    header, saved = read_saved(path, what=_WHAT)
    with saved:
        if is_multi_header(header):
            return restore_multi(cls, header, saved, FORMAT)
        return restore_mixed(cls, header, saved)


_FLOAT_ARRAYS = (
    "fe_params",
    "cov_beta",
    "cov_re",
    "theta",
    "random_effects",
    "Q",
    "ZtX",
    "resid",
    "x_first",
    "z_first",
)
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "formula": (str,),
    "reml": (bool,),
    "time": (str,),
    "tol": (int, float),
    "max_iter": (int,),
    "strict": (bool,),
}


def check_mixed(
    cls: Any, header: Mapping[str, Any], saved: SavedFile
) -> dict[str, Any]:
    """Check a saved mixed model's JSON header and the members it implies; read no
    array and build nothing.

    Parameters
    ----------
    cls : type
        :class:`~alsprog.models.LinearMixedModel` (or a subclass).
    header : Mapping
        The mixed model's JSON header, as read from the file.
    saved : SavedFile
        The file, or the :meth:`~alsprog.models._npz.SavedFile.part` of a file that
        holds the mixed model's members: they must be exactly those the header
        implies (another member is refused), each with its declared shape and dtype.

    Returns
    -------
    dict
        The checked parameters, names and counts (``params``, ``fe``, ``re``,
        ``theta``, ``variables``, ``n_obs``, ``n_groups``, ``scale``, ``deviance``,
        ``time_range``).

    Raises
    ------
    SavedModelError
        Naming the file and the field (with the part's prefix).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, pandas as pd
    >>> from alsprog.models import LinearMixedModel
    >>> from alsprog.models._npz import read_saved
    >>> rng = np.random.default_rng(0)
    >>> sid = np.repeat(np.arange(30), 4); t = np.tile(np.arange(4.0), 30)
    >>> y = 40 + rng.normal(0, 3, 30)[sid] - t + rng.normal(0, 1, 120)
    >>> df = pd.DataFrame({"subject_id": sid, "months": t,
    ...                    "alsfrs_r_total": np.round(y)})
    >>> m = LinearMixedModel("alsfrs_r_total ~ months + (1 | subject_id)").fit(df)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "lmm.npz"
    >>> m.save(path)
    >>> header, saved = read_saved(path)
    >>> with saved:
    ...     check_mixed(LinearMixedModel, header, saved)["n_groups"]
    30
    """
    ch = Check(saved.path, cls.__name__, prefix=saved.prefix)
    ch.identity(header, cls, FORMAT)
    ch.keys(
        header,
        "",
        ("model", "version", "format", "params", "names", "scalars", "frame", "levels"),
    )

    params = ch.params(header, cls, _PARAM_TYPES)

    nm = ch.keys(header["names"], "names", ("fe", "re", "theta", "variables"))
    fe = ch.names(nm, "fe", "names")
    re_names = ch.names(nm, "re", "names")
    theta = ch.names(nm, "theta", "names")
    variables = ch.names(nm, "variables", "names")
    sc = ch.keys(
        header["scalars"],
        "scalars",
        (
            "scale",
            "deviance",
            "converged",
            "singular",
            "n_obs",
            "n_groups",
            "n_dropped",
            "n_iter",
            "time_range",
        ),
    )
    scale = ch.number(sc, "scale", "scalars", positive=True)
    deviance = ch.number(sc, "deviance", "scalars")
    ch.get(sc, "converged", bool, "scalars")
    ch.get(sc, "singular", bool, "scalars")
    n = ch.count(sc, "n_obs", "scalars", low=1)
    G = ch.count(sc, "n_groups", "scalars", low=2)
    ch.count(sc, "n_dropped", "scalars")
    ch.count(sc, "n_iter", "scalars")
    tr = ch.get(sc, "time_range", list, "scalars")
    ok = len(tr) == 2 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in tr
    )
    if ok:
        finite = [math.isfinite(v) for v in tr]
        ok = (all(finite) and tr[0] <= tr[1]) or not any(finite)
    if not ok:
        ch.fail(
            "scalars.time_range",
            f"is {short(tr)}; expected [lowest, highest] time (or two NaN).",
        )

    P, q, k = len(fe), len(re_names), len(theta)
    if q < 1 or not q <= k <= q * (q + 1) // 2:
        ch.fail(
            "names.theta",
            f"has {k} names for {q} random effect(s); expected {q} to "
            f"{q * (q + 1) // 2}.",
        )
    if n <= P or n <= G * q:
        ch.fail(
            "scalars.n_obs",
            f"is {n}: too few observations for {P} fixed effects and {G} x {q} random "
            "effects; the file is inconsistent.",
        )
    for key, shape in {
        "fe_params": (P,),
        "cov_beta": (P, P),
        "cov_re": (q, q),
        "theta": (k,),
        "random_effects": (G, q),
        "Q": (G, q, q),
        "ZtX": (G, q, P),
        "resid": (n,),
        "x_first": (G, P),
        "z_first": (G, q),
    }.items():
        ch.member(key, key, shape, "f")
    check_frame(ch, header["frame"], "frame", n, variables)
    check_index(ch, header["levels"], "levels", G, "levels", "levels")

    # the members are exactly those the header implies, each as declared
    have = saved.data_keys
    for key, want in ch.want.items():
        saved.check(key, field=want.field, shape=want.shape, kind=want.kinds)
    extra = sorted(have - set(ch.want))
    if extra:
        saved.fail(
            extra[0],
            "is not part of a LinearMixedModel file (no field of the header uses it).",
        )
    return {
        "params": dict(params),
        "fe": fe,
        "re": re_names,
        "theta": theta,
        "variables": variables,
        "n_obs": n,
        "n_groups": G,
        "scale": scale,
        "deviance": deviance,
        "time_range": (float(tr[0]), float(tr[1])),
    }


def _check_params(
    cls: Any, params: dict[str, Any], saved: SavedFile, columns: list[str]
) -> Any:
    """``cls(**params)`` after the estimator's own checks and the formula allow-list."""
    from alsprog._formula_text import check_formula
    from alsprog.errors import ModelSpecificationError

    p = saved.path
    model = cls(**params)
    try:
        model._check_params()
    except (TypeError, ValueError) as exc:
        m = re.match(r"`(\w+)`", str(exc))
        field = f"params.{m.group(1)}" if m else "params"
        raise SavedModelError(f"{p}: field {saved.name(field)!r}: {exc}") from exc
    try:
        check_formula(
            model.formula, columns=columns, kind="mixed", what="saved formula"
        )
    except ModelSpecificationError as exc:
        raise saved.error("params.formula", f"is refused: {exc}") from exc
    return model


def _check_values(saved: SavedFile, arrays: dict[str, npt.NDArray[Any]]) -> None:
    """Finite numbers, symmetric covariances with non-negative variances."""
    saved.require_finite(arrays)
    for key in ("cov_beta", "cov_re", "Q"):
        arr = arrays[key]
        if arr.size == 0:
            continue
        diag = np.diagonal(arr, axis1=-2, axis2=-1)
        if np.any(diag < 0):
            bad = diag[diag < 0].ravel()[0]
            saved.fail(key, f"has a negative variance {float(bad)!r} on its diagonal.")
        saved.require_symmetric(key, arr)


def restore_mixed(cls: Any, header: Mapping[str, Any], saved: SavedFile) -> Any:
    """Check a saved mixed model whole, then build it (fitted, without refitting).

    The header and every member's declared shape (:func:`check_mixed`), the
    parameters and the formula, then the values, then the design rebuilt from the
    saved rows and its agreement with the saved one; the model is built only then.

    Parameters
    ----------
    cls : type
        :class:`~alsprog.models.LinearMixedModel` (or a subclass).
    header : Mapping
        The mixed model's JSON header.
    saved : SavedFile
        The open file, or the part of one that holds the mixed model's members
        (refusals name its fields with the part's prefix).

    Returns
    -------
    LinearMixedModel

    Raises
    ------
    SavedModelError
        Naming the file and the field.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, pandas as pd
    >>> from alsprog.models import LinearMixedModel
    >>> from alsprog.models._npz import read_saved, write_saved
    >>> rng = np.random.default_rng(0)
    >>> sid = np.repeat(np.arange(30), 4); t = np.tile(np.arange(4.0), 30)
    >>> y = 40 + rng.normal(0, 3, 30)[sid] - t + rng.normal(0, 1, 120)
    >>> df = pd.DataFrame({"subject_id": sid, "months": t,
    ...                    "alsfrs_r_total": np.round(y)})
    >>> m = LinearMixedModel("alsfrs_r_total ~ months + (1 | subject_id)").fit(df)
    >>> header, arrays = mixed_fields(m, "outer.npz", field="inner")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "outer.npz"
    >>> inner = {f"inner.{k}": v for k, v in arrays.items()}
    >>> write_saved(path, {"inner": header}, inner)
    >>> outer, saved = read_saved(path)
    >>> with saved:
    ...     part = saved.part("inner.")
    ...     back = restore_mixed(LinearMixedModel, outer["inner"], part)
    >>> bool((back.fe_params_ == m.fe_params_).all())
    True
    """
    from alsprog.errors import ModelSpecificationError
    from alsprog.models._formula import build_mixed_design

    # 1. the header and every member's declared shape and dtype; nothing read yet
    h = check_mixed(cls, header, saved)
    # 2. the parameters, as fit checks them, and the formula, before any design
    model = _check_params(cls, h["params"], saved, h["variables"])
    # 3. the values, now that every read is bounded by the declared counts
    values = {key: saved.array(key) for key in _FLOAT_ARRAYS}
    _check_values(saved, values)
    frame = decode_frame(header["frame"], "frame", saved)
    for name in frame.columns:
        col = frame[name]
        if col.isna().any():
            saved.fail(
                "frame",
                f"column {name!r} has missing values at row "
                f"{int(np.flatnonzero(col.isna().to_numpy())[0])}; the saved rows are "
                "the complete rows of the fit.",
            )
    try:
        levels = decode_index(header["levels"], "levels", saved)
    except SavedModelError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise saved.error("levels", f"cannot be rebuilt ({exc!r}).") from exc
    # 4. the design, rebuilt from the checked formula and rows
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            design = build_mixed_design(model.formula, frame)
    except ModelSpecificationError as exc:
        raise SavedModelError(
            f"{saved.path}: field {saved.name('frame')!r}: the model's design cannot "
            f"be rebuilt ({exc})"
        ) from exc
    n_obs, G = h["n_obs"], h["n_groups"]
    for field, saved_value, rebuilt in [
        ("names.fe", h["fe"], design.fe_names),
        ("names.re", h["re"], design.re_names),
        ("names.theta", h["theta"], list(design.template.names)),
        ("names.variables", h["variables"], design.variables),
        ("scalars.n_obs", n_obs, design.X.shape[0]),
        ("scalars.n_groups", G, len(design.group_levels)),
    ]:
        if saved_value != rebuilt:
            saved.fail(
                field,
                f"is {saved_value!r} but the saved rows give {rebuilt!r}; the file is "
                "inconsistent.",
            )
    if not levels.equals(design.group_levels):
        saved.fail("levels", "differs from the groups of the saved rows.")
    tpl = design.template
    theta = values["theta"]
    if np.any(theta < tpl.lower):
        i = int(np.flatnonzero(theta < tpl.lower)[0])
        saved.fail(
            "theta",
            f"has {tpl.names[i]} = {float(theta[i])!r}; a relative standard deviation "
            "cannot be negative.",
        )
    lam = tpl.factor(theta)
    implied = h["scale"] * lam @ lam.T
    tol = 1e-9 * max(1.0, float(np.max(np.abs(implied))))
    if not np.allclose(values["cov_re"], implied, rtol=1e-9, atol=tol):
        saved.fail(
            "cov_re",
            "differs from scalars.scale x Lambda(theta) Lambda(theta)'; the file is "
            "inconsistent.",
        )

    sc = header["scalars"]
    model._set_state(
        design,
        beta=values["fe_params"],
        cov_beta=values["cov_beta"],
        cov_re=values["cov_re"],
        sigma2=h["scale"],
        deviance=h["deviance"],
        theta=theta,
        b=values["random_effects"],
        Q=values["Q"],
        ZtX=values["ZtX"],
        resid=values["resid"],
        converged=sc["converged"],
        n_iter=sc["n_iter"],
        n_dropped=sc["n_dropped"],
    )
    model.singular_ = sc["singular"]
    model._frame = design.frame
    first = np.full(G, -1, dtype=np.intp)
    first[design.groups[::-1]] = np.arange(n_obs)[::-1]
    model._first_rows = frame.iloc[first][design.variables].reset_index(drop=True)
    model._time_range = h["time_range"]
    # the rebuilt formula must give the saved design (levels, transforms' state)
    x_first, z_first, _ = model._fixed_matrix(model._first_rows)
    for key, mine in [("x_first", x_first), ("z_first", z_first)]:
        ref = values[key]
        tol = 1e-12 * max(1.0, float(np.max(np.abs(ref), initial=0.0)))
        if mine.shape != ref.shape or not np.allclose(mine, ref, rtol=1e-12, atol=tol):
            raise SavedModelError(
                f"{saved.path}: field {saved.name(key)!r}: the design rebuilt from the "
                "saved rows differs from the fitted one (saved by another formulaic "
                "version?)."
            )
    return model
