"""Saved Bayesian trajectory models: one netCDF file, never a pickle.

Owns: the file layout of :meth:`BayesianTrajectoryModel.save` / ``load`` (the
InferenceData plus, in its attrs under ``"alsprog"``, the JSON config ``{"model",
"version", "params"}`` with priors as dicts), the ``observed_data``,
``log_likelihood`` and ``constant_data`` groups that make a saved file rebuildable,
and the checks that turn an unreadable or mismatched file into a
:class:`~alsprog.errors.SavedModelError` naming the file and the field.
Leaves: the fitted state and how it is restored to :mod:`alsprog.models._bayes`, the
diagnostics to :mod:`alsprog.models._bayes_sampling`, atomic writes to
:mod:`alsprog._io`.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from alsprog._io import atomic_path
from alsprog._version import __version__
from alsprog.errors import SavedModelError
from alsprog.models._bayes_design import BayesDesign
from alsprog.models._bayes_priors import Prior, merge_priors
from alsprog.models._bayes_sampling import ESS_BULK_MIN, RHAT_MAX, diagnose

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from alsprog.models._bayes import BayesianTrajectoryModel

__all__ = ["CONFIG_ATTR", "attach_data", "load_model", "save_model"]

#: The key of the JSON config in the netCDF file's attrs.
CONFIG_ATTR = "alsprog"


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


def load_model(
    cls: type[BayesianTrajectoryModel], path: str | os.PathLike[str]
) -> BayesianTrajectoryModel:
    """Rebuild a fitted ``cls`` from a file written by :func:`save_model`."""
    import arviz as az

    try:
        idata = az.from_netcdf(str(path))
    except (OSError, ValueError) as exc:
        raise SavedModelError(f"{path}: cannot be read as netCDF ({exc})") from exc
    raw = idata.attrs.get(CONFIG_ATTR)
    if raw is None:
        raise SavedModelError(
            f"{path}: field 'alsprog' missing from the file's attrs; not a file "
            "written by BayesianTrajectoryModel.save."
        )
    try:
        config = json.loads(raw)
        model_name, version, params = (
            config["model"],
            config["version"],
            dict(config["params"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SavedModelError(
            f"{path}: field 'alsprog' is not a valid config ({exc})"
        ) from exc
    if model_name != cls.__name__:
        raise SavedModelError(
            f"{path}: field 'model' is {model_name!r}, expected {cls.__name__!r}."
        )
    if version != __version__:
        raise SavedModelError(
            f"{path}: field 'version' is {version!r} but this is alsprog "
            f"{__version__}; refit the model with this version."
        )
    if params.get("priors") is not None:
        params["priors"] = {k: Prior.from_dict(v) for k, v in params["priors"].items()}
    model = cls(**params)
    marginal = model._check_params()
    frame = idata.constant_data.to_dataframe().reset_index(drop=True)
    design = model._prepare(frame)
    priors = merge_priors(model.kind, model.likelihood, model.priors, design.fe_names)
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
