"""Posterior summaries of a fitted Bayesian trajectory model.

Owns: condensing posterior draws into numbers: the tables and header of
:meth:`BayesianTrajectoryModel.summary` (posterior mean, SD, equal-tailed interval,
R-hat and ESS of the fixed effects, subject-effect SDs and correlation, and residual
parameters) and the mean / interval band of a set of draws that ``predict`` and
``subject_trajectories`` report.
Leaves: argument checks and the fitted state to :mod:`alsprog.models.bayes._model`, the
:class:`~alsprog.models.Summary` container and its rendering to
:mod:`alsprog.models._summary`, the convergence gate to
:mod:`alsprog.models.bayes._sampling`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.models._summary import Summary
from alsprog.models.bayes._design import DEFAULT_FORMULA

if TYPE_CHECKING:  # pragma: no cover - annotations only
    # the estimator's module imports this one: name its type without importing it
    BayesianTrajectoryModel = Any

__all__ = ["band", "summarise_posterior"]


def band(draws: npt.NDArray[np.float64], level: float) -> npt.NDArray[np.float64]:
    """Columns mean, lower, upper of ``draws`` (S, rows) at central coverage ``level``.

    Examples
    --------
    >>> band(np.array([[0.0], [1.0], [2.0]]), 0.5)
    array([[1. , 0.5, 1.5]])
    """
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return np.column_stack([draws.mean(axis=0), lo, hi])


def summarise_posterior(model: BayesianTrajectoryModel, level: float) -> Summary:
    """The :class:`Summary` of a fitted model at interval coverage ``level``."""
    import arviz as az

    post = model._posterior
    rhat = az.rhat(post) if post.sizes["chain"] > 1 else None
    ess_b = az.ess(post, method="bulk")
    ess_t = az.ess(post, method="tail")

    def table(name: str, labels: list[str]) -> pd.DataFrame:
        v = post[name].values.reshape(-1, *post[name].shape[2:])
        v = v.reshape(v.shape[0], -1)
        lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2], axis=0)
        rh = (
            rhat[name].values.ravel()
            if rhat is not None
            else np.full(v.shape[1], np.nan)
        )
        return pd.DataFrame(
            {
                "mean": v.mean(axis=0),
                "sd": v.std(axis=0, ddof=1),
                "ci_lower": lo,
                "ci_upper": hi,
                "r_hat": rh,
                "ess_bulk": ess_b[name].values.ravel(),
                "ess_tail": ess_t[name].values.ravel(),
            },
            index=labels,
        )

    effects = list(post.effect.values)
    if model.kind == "linear":
        fixed_labels = model.terms_
    else:
        fixed_labels = [f"{e}: {t}" for e in effects for t in model.terms_]
    fixed = table("beta", fixed_labels)
    random = pd.concat(
        [
            table("subject_sd", [f"sd({e})" for e in effects]),
            table("subject_corr", [f"corr({effects[0]}, {effects[1]})"]),
        ]
    )
    resid = table("sigma", ["sigma"])
    if model.likelihood == "student_t":
        resid = pd.concat([resid, table("nu", ["nu"])])
    dg = model.diagnostics_
    d = model._design
    header = {
        "Formula": model.formula or DEFAULT_FORMULA[model.kind],
        "Likelihood": model.likelihood,
        "Time": d.time,
        "Number of obs": model.n_obs_,
        f"Number of subjects ({d.subject})": model.n_subjects_,
        "Sampler": (
            f"{model.sampler}, {post.sizes['chain']} chains x {post.sizes['draw']}"
            f" draws ({'marginal' if model.marginalized_ else 'full'} model)"
        ),
        "Diagnostics": (
            f"max R-hat {dg['max_rhat']:.3f}, min bulk ESS "
            f"{dg['min_ess_bulk']:.0f}, min tail ESS {dg['min_ess_tail']:.0f}, "
            f"{dg['n_divergent']} divergent, min BFMI {dg['min_bfmi']:.2f}"
        ),
    }
    notes = (
        []
        if model.converged_
        else [
            "Warning: the convergence gate failed (R-hat > 1.01, bulk ESS < 400 or "
            "divergences); do not trust these numbers."
        ]
    )
    title = (
        "Bayesian linear trajectory model"
        if model.kind == "linear"
        else "Bayesian sigmoid (D50) trajectory model, log D50 / log dx scale"
    )
    return Summary(
        title,
        header,
        {"fixed": fixed, "random": random, "residual": resid},
        captions={
            "fixed": f"Fixed effects (posterior mean, {level:.0%} interval)",
            "random": "Per-subject effects",
            "residual": "Residual",
        },
        notes=notes,
    )
