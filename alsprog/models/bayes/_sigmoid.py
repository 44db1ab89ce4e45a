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

from alsprog.models.bayes._laplace import (
    LaplaceFit,
    ValueSlope,
    laplace_sigmoid,
    value_slope,
)
from alsprog.models.bayes._linear import centred_fixed_effects, non_centred_effects

__all__ = [
    "FULL_SCALE",
    "build_sigmoid_model",
    "laplace_start",
    "sigmoid_laplace",
    "padded_loglik",
    "sigmoid_mean",
    "whitened_effects",
]

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


def sigmoid_laplace(d: Any, priors: dict[str, Any]) -> LaplaceFit:
    """The Laplace-EM fit of a sigmoid design, started at the priors' centres."""
    fe_names = list(d.fe_names)
    start = np.zeros((2, len(fe_names)))
    if "Intercept" in fe_names:
        i0 = fe_names.index("Intercept")
        for row, key in enumerate(("d50", "dx")):
            start[row, i0] = float(priors[f"{key}_intercept"].params.get("mu", 0.0))
    return laplace_sigmoid(d.y, d.t, d.groups, d.X[d.first_rows], start_beta=start)


def laplace_start(
    laplace: LaplaceFit, fe_names: list[str], Xs: npt.NDArray[np.float64]
) -> dict[str, Any]:
    """The Laplace estimates as starting values of :func:`build_sigmoid_model`'s
    free variables (by name, on their own scale)."""
    xbar = np.where([n != "Intercept" for n in fe_names], Xs.mean(axis=0), 0.0)
    sd = np.sqrt(np.diag(laplace.cov))
    rho = float(np.clip(laplace.cov[0, 1] / (sd[0] * sd[1]), -0.95, 0.95))
    start: dict[str, Any] = {
        "_sd_d50": sd[0],
        "_sd_dx": sd[1],
        "_corr": (rho + 1.0) / 2.0,
        "sigma": laplace.sigma,
    }
    for row, key in enumerate(("d50", "dx")):
        beta = laplace.beta[row]
        if "Intercept" not in fe_names:
            start[f"_{key}"] = beta
            continue
        i0 = fe_names.index("Intercept")
        rest = [k for k in range(len(fe_names)) if k != i0]
        start[f"_{key}_intercept_centred"] = beta[i0] + float(xbar[rest] @ beta[rest])
        if rest:
            start[f"_{key}_rest"] = beta[rest]
    return start


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
    laplace: LaplaceFit | None = None,
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
        mean = pt.dot(pt.constant(Xs), beta.T)  # (G, 2): population log D50, log dx
        if laplace is None:
            z = pm.Normal("_z", 0.0, 1.0, dims=("subject_id", "effect"))
            b = non_centred_effects(z, sd0, sd1, corr)
        else:
            z = pm.Flat("_w", dims=("subject_id", "effect"))
            theta, logp = whitened_effects(
                z, mean, sd0, sd1, corr, sigma, value_slope(laplace, y, t, groups)
            )
            pm.Potential("_subject_prior", logp)
            b = theta - mean
        b = pm.Deterministic("subject_effects", b, dims=("subject_id", "effect"))
        lin = mean + b
        nu = None
        if likelihood == "student_t":
            nu = scalar_from_prior("nu", priors["nu"], positive=True)
        if laplace is None:
            d50 = pt.exp(lin[:, 0])[groups]
            dx = pt.exp(lin[:, 1])[groups]
            mu = FULL_SCALE * pt.sigmoid(-(pt.constant(t) - d50) / dx)
            if nu is not None:
                pm.StudentT(outcome, nu=nu, mu=mu, sigma=sigma, observed=y, dims="obs")
            else:
                pm.Normal(outcome, mu=mu, sigma=sigma, observed=y, dims="obs")
        else:
            pm.Potential(
                "_loglik",
                padded_loglik(
                    lin, sigma, nu, y=y, t=t, groups=groups, n_groups=len(Xs)
                ),
            )
    return model


def padded_loglik(
    lin: Any,
    sigma: Any,
    nu: Any,
    *,
    y: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    groups: npt.NDArray[np.intp],
    n_groups: int,
) -> Any:
    """The summed log-likelihood on the (subject, visit) layout of
    :func:`alsprog._quadrature.padded`.

    Each subject's ``log D50`` and ``log dx`` broadcast along its row and the sum runs
    over the mask, so the gradient needs no gather or scatter over observations
    (measured: 68 against 95 microseconds per gradient on 1,000 patients).
    """
    import pymc as pm
    import pytensor.tensor as pt

    from alsprog._quadrature import padded

    Y, mask = padded(y, groups, n_groups)
    Y, T = pt.constant(Y), pt.constant(padded(t, groups, n_groups)[0])
    M = pt.constant(mask.astype(float))
    d50 = pt.exp(lin[:, 0])[:, None]
    dx = pt.exp(lin[:, 1])[:, None]
    mu = FULL_SCALE * pt.sigmoid((d50 - T) / dx)
    if nu is None:
        dens = pm.logp(pm.Normal.dist(mu=mu, sigma=sigma), Y)
    else:
        dens = pm.logp(pm.StudentT.dist(nu=nu, mu=mu, sigma=sigma), Y)
    return pt.sum(M * dens)


def whitened_effects(
    w: Any,
    mean: Any,
    sd0: Any,
    sd1: Any,
    corr: Any,
    sigma: Any,
    vs: ValueSlope,
) -> tuple[Any, Any]:
    """Subject effects by a data-informed affine map of free ``w``, and their log-prior.

    Each subject's curve is coordinated by ``phi_i = (a_i, u_i)``, the logit of its
    value at the subject's mean visit time and the log of its logit slope
    (:class:`~alsprog.models.bayes._laplace.ValueSlope`), in which the likelihood is
    that of a logistic curve with a linear predictor, nearly Gaussian even for a
    patient seen once or far from their D50 (the banana between ``log D50`` and
    ``log dx`` such a patient has is straight in ``phi``).  ``phi_i = c_i + L_i w_i``
    where ``N(c_i, L_i L_i')`` approximates the subject's conditional posterior given
    the current population parameters: the quadratic approximation of its
    log-likelihood at its Laplace mode (``vs.info``, ``vs.linear`` over ``sigma^2``)
    times its prior ``N(mean_i, Sigma)`` linearised there (``theta ~ theta_hat +
    A (phi - phi_hat)``).  Then ``theta_i = (log D50_i, log dx_i)`` follows from
    ``phi_i`` exactly.  The map is a bijection (onto ``D50 > 0``, outside which the
    density is zero) for every value of the population parameters, so with the
    log-prior of ``theta`` and the log-Jacobians ``log|d theta / d phi| = log dx -
    log D50`` and ``log|L_i|`` added (returned summed over subjects) the model is
    exactly the centred hierarchical model; only the geometry the sampler sees
    changes.  A subject the data say little about gets the non-centred form, a
    well-measured one its standardised posterior (the centred form), and every case
    between is scaled by its own information.

    Measured (1,000 simulated patients, 2 chains x 1,000 draws, numpyro): the
    minimum bulk ESS of the population parameters rises from 107 (non-centred in
    ``theta``) to about 2,200, R-hat from 1.011 to 1.004.
    """
    import pytensor.tensor as pt

    one_m_r2 = 1.0 - corr**2
    i00 = 1.0 / (sd0**2 * one_m_r2)
    i01 = -corr / (sd0 * sd1 * one_m_r2)
    i11 = 1.0 / (sd1**2 * one_m_r2)
    A = pt.constant(vs.jac)
    a00, a01, a11 = A[:, 0], A[:, 1], A[:, 2]
    # Q = A' Sigma^-1 A with A = [[a00, a01], [0, a11]]
    q00 = a00 * a00 * i00
    q01 = a00 * (a01 * i00 + a11 * i01)
    q11 = a01 * a01 * i00 + 2 * a01 * a11 * i01 + a11 * a11 * i11
    s2 = sigma**2
    g = pt.constant(vs.info)
    h = pt.constant(vs.linear)
    k = pt.constant(vs.offset)
    a = g[:, 0] / s2 + q00
    b = g[:, 1] / s2 + q01
    d = g[:, 2] / s2 + q11
    det = a * d - b * b
    m0 = mean[:, 0] + k[:, 0]
    m1 = mean[:, 1] + k[:, 1]
    e0 = i00 * m0 + i01 * m1  # Sigma^-1 (m + k)
    e1 = i01 * m0 + i11 * m1
    v0 = h[:, 0] / s2 + a00 * e0
    v1 = h[:, 1] / s2 + a01 * e0 + a11 * e1
    c0 = (d * v0 - b * v1) / det
    c1 = (a * v1 - b * v0) / det
    l11 = pt.sqrt(d / det)
    l21 = -b / (det * l11)
    l22 = 1.0 / pt.sqrt(d)
    pa = c0 + l11 * w[:, 0]
    pu = c1 + l21 * w[:, 0] + l22 * w[:, 1]
    d50 = pt.constant(vs.tbar) + pa * pt.exp(-pu)
    ok = pt.all(d50 > 0)
    t0 = pt.log(pt.switch(d50 > 0, d50, 1.0))
    t1 = -pu
    f0 = t0 - mean[:, 0]
    f1 = t1 - mean[:, 1]
    quad = i00 * f0**2 + 2.0 * i01 * f0 * f1 + i11 * f1**2
    n = w.shape[0]
    log_det_sigma = 2.0 * pt.log(sd0) + 2.0 * pt.log(sd1) + pt.log(one_m_r2)
    logp = (
        -0.5 * pt.sum(quad)
        - 0.5 * n * log_det_sigma
        - n * np.log(2.0 * np.pi)
        - 0.5 * pt.sum(pt.log(det))
        + pt.sum(t1 - t0)
    )
    return pt.stack([t0, t1], axis=1), pt.switch(ok, logp, -np.inf)
