"""The sigmoid (D50) Bayesian trajectory model.

Owns: the PyMC model of ``ALSFRS-R(t) = 48 / (1 + exp((t - D50_i) / dx_i))`` on
months since onset (``docs/domain.md`` §3), with per-subject ``log D50`` and ``log dx``
hierarchical (correlated, non-centred) and linear in the covariates, and the NumPy
mean curve used for predictions.
Leaves: the estimator and bookkeeping to :mod:`alsprog.models.bayes._model`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.models.bayes._linear import centred_fixed_effects, non_centred_effects

__all__ = ["FULL_SCALE", "build_sigmoid_model", "sigmoid_mean"]

#: The ALSFRS-R maximum, the curve's upper asymptote.
FULL_SCALE = 48.0


def sigmoid_mean(
    t: npt.NDArray[np.float64],
    d50: npt.NDArray[np.float64],
    dx: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """``48 / (1 + exp((t - d50) / dx))``, broadcast over the arguments.

    Examples
    --------
    >>> float(sigmoid_mean(np.array(30.0), np.array(30.0), np.array(10.0)))
    24.0
    """
    from scipy.special import expit

    return FULL_SCALE * expit(-(t - d50) / dx)


def build_sigmoid_model(
    *,
    y: npt.NDArray[np.float64],
    Xs: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    groups: npt.NDArray[np.intp],
    coords: dict[str, Any],
    priors: dict[str, Any],
    outcome: str,
    likelihood: str,
) -> Any:
    """The PyMC model of the sigmoid kind.

    ``Xs`` is the per-subject design (one row per subject, read at its first visit);
    ``beta`` has dims ``("effect", "term")`` with effects ``log_d50`` and ``log_dx``;
    ``subject_effects`` are each subject's deviations of ``log D50`` and ``log dx``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from alsprog.models.bayes._priors import (
        correlation_from_prior,
        scalar_from_prior,
        term_priors,
    )

    fe_names = list(coords["term"])
    xbar = np.where([n != "Intercept" for n in fe_names], Xs.mean(axis=0), 0.0)
    with pm.Model(coords=coords) as model:
        parts = [
            centred_fixed_effects(
                key,
                fe_names,
                xbar,
                priors[f"{key}_intercept"],
                term_priors(priors, f"{key}_beta", fe_names),
            )
            for key in ("d50", "dx")
        ]
        beta = pm.Deterministic("beta", pt.stack(parts), dims=("effect", "term"))
        sd0 = scalar_from_prior("_sd_d50", priors["sd_d50"], positive=True)
        sd1 = scalar_from_prior("_sd_dx", priors["sd_dx"], positive=True)
        pm.Deterministic("subject_sd", pt.stack([sd0, sd1]), dims="effect")
        corr = pm.Deterministic(
            "subject_corr", correlation_from_prior("_corr", priors["corr"])
        )
        sigma = scalar_from_prior("sigma", priors["sigma"], positive=True)
        z = pm.Normal("_z", 0.0, 1.0, dims=("subject_id", "effect"))
        b = pm.Deterministic(
            "subject_effects",
            non_centred_effects(z, sd0, sd1, corr),
            dims=("subject_id", "effect"),
        )
        lin = pt.dot(pt.constant(Xs), beta.T) + b  # (G, 2): log D50, log dx
        d50 = pt.exp(lin[:, 0])[groups]
        dx = pt.exp(lin[:, 1])[groups]
        mu = FULL_SCALE * pt.sigmoid(-(pt.constant(t) - d50) / dx)
        if likelihood == "student_t":
            nu = scalar_from_prior("nu", priors["nu"], positive=True)
            pm.StudentT(outcome, nu=nu, mu=mu, sigma=sigma, observed=y, dims="obs")
        else:
            pm.Normal(outcome, mu=mu, sigma=sigma, observed=y, dims="obs")
    return model
