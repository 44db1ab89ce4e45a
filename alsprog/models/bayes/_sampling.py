"""Sampling the Bayesian trajectory models and judging the draws.

Owns: the NUTS call through PyMC (numpyro via JAX, nutpie, or PyMC's own sampler), the
exact conditional draws of the per-subject effects that pair with each draw of the
marginal linear model, the convergence diagnostics (R-hat, bulk/tail ESS,
divergences, BFMI) and the convergence gate's thresholds and message.
Leaves: the model graphs and the linear numerics to
:mod:`alsprog.models.bayes._linear` and :mod:`alsprog.models.bayes._sigmoid`; warning,
raising and the fitted state to :mod:`alsprog.models.bayes._model`.  PyMC, ArviZ and xarray
are imported inside the functions that use them.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import numpy as np

from alsprog.models.bayes._design import BayesDesign
from alsprog.models.bayes._linear import conditional_subject_effects, subject_stats

__all__ = [
    "ESS_BULK_MIN",
    "NO_BLAS_MESSAGE",
    "PARAM_RANGES",
    "RHAT_MAX",
    "SAMPLERS",
    "convergence_failure",
    "diagnose",
    "draw_subject_effects",
    "sample_nuts",
]

logger = logging.getLogger(__name__)

#: Convergence gate: any R-hat above, any bulk ESS below, or any divergence warns.
RHAT_MAX = 1.01
ESS_BULK_MIN = 400
#: Ranges of the sampling parameters (``BayesianTrajectoryModel.param_ranges``).
PARAM_RANGES = {
    "chains": "[1, inf]",
    "draws": "[1, inf]",
    "tune": "[0, inf]",
    "target_accept": "(0, 1)",
}

SAMPLERS = ("numpyro", "nutpie", "pymc")

#: Said when PyMC's own NUTS is asked for and PyTensor found no BLAS library.
NO_BLAS_MESSAGE = (
    "sampler='pymc' runs PyMC's own NUTS through PyTensor's C backend, which found no "
    "BLAS library on this machine (pip installs none): it samples 2-3x slower (measured "
    "on 200 simulated patients, 2 x 300 draws: linear model 38.6 s without BLAS, 12.4 s "
    "with OpenBLAS; sigmoid 53.4 s and 25.4 s). The default sampler='numpyro' (JAX) is "
    "not affected (15.5-16.3 s either way); or install a system OpenBLAS (Debian: "
    "libopenblas-dev)."
)


def no_blas_note() -> str | None:
    """:data:`NO_BLAS_MESSAGE` when PyTensor links to no BLAS library, else None."""
    import pytensor

    return None if str(pytensor.config.blas__ldflags).strip() else NO_BLAS_MESSAGE


def sample_nuts(
    model: Any,
    *,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    seed: int,
    progress: bool | None,
    dense: bool,
    var_names: list[str],
) -> Any:
    """Run NUTS on ``model`` with the chosen implementation; returns InferenceData."""
    import pymc as pm

    show = sys.stderr.isatty() if progress is None else bool(progress)
    kwargs: dict[str, Any] = {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "target_accept": target_accept,
        "random_seed": seed,
        "progressbar": show,
        "compute_convergence_checks": False,
        "var_names": var_names,
        "idata_kwargs": {"log_likelihood": False},
    }
    if sampler == "numpyro":
        kwargs["nuts_sampler"] = "numpyro"
        kwargs["nuts_sampler_kwargs"] = {
            "chain_method": "parallel",
            "nuts_kwargs": {"dense_mass": dense},
        }
    elif sampler == "nutpie":
        kwargs["nuts_sampler"] = "nutpie"
    else:
        kwargs["cores"] = 1
        note = no_blas_note()
        if note is not None:
            from alsprog.errors import AlsprogWarning

            warnings.warn(note, AlsprogWarning, stacklevel=3)
    logger.info("sampling with %s: %d chains x %d draws", sampler, chains, draws)
    with model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*There are not enough devices.*")
        idata = pm.sample(**kwargs)
    return idata


def draw_subject_effects(idata: Any, d: BayesDesign, rng: np.random.Generator) -> Any:
    """Exact draws of the per-subject effects, one per posterior draw.

    Pairs each draw of the marginal linear model's population parameters with
    ``b_i ~ N(M_i^{-1} Z_i'r_i, sigma^2 M_i^{-1})``; returns an ``xarray.DataArray``
    with dims ``(chain, draw, subject_id, effect)``.
    """
    import xarray as xr

    post = idata.posterior
    c, n = post.sizes["chain"], post.sizes["draw"]
    flat = {
        k: post[k].values.reshape(c * n, *post[k].shape[2:])
        for k in ("beta", "subject_sd", "subject_corr", "sigma")
    }
    stats = subject_stats(d.y, d.X, d.t, d.groups, len(d.subject_ids))
    b = np.empty((c * n, len(d.subject_ids), 2))
    for s in range(0, c * n, 250):  # chunks bound the memory
        sl = slice(s, s + 250)
        b[sl] = conditional_subject_effects(
            stats,
            flat["beta"][sl],
            flat["subject_sd"][sl],
            flat["subject_corr"][sl],
            flat["sigma"][sl],
            rng,
        )
    return xr.DataArray(
        b.reshape(c, n, *b.shape[1:]),
        dims=("chain", "draw", "subject_id", "effect"),
        coords={
            "chain": post.chain,
            "draw": post.draw,
            "subject_id": d.subject_ids,
            "effect": post.effect.values,
        },
    )


def diagnose(idata: Any, names: list[str]) -> dict[str, float]:
    """Convergence diagnostics over the variables ``names`` of the posterior.

    Returns ``max_rhat`` (NaN with one chain), ``min_ess_bulk``, ``min_ess_tail``,
    ``n_divergent`` and ``min_bfmi`` (NaN when ArviZ cannot compute it).
    """
    import arviz as az

    post = idata.posterior[[n for n in names if n in idata.posterior]]

    def extreme(ds: Any, fn: Any) -> float:
        vals = np.concatenate([np.ravel(ds[v].values) for v in ds.data_vars])
        vals = vals[np.isfinite(vals)]
        return float(fn(vals)) if vals.size else float("nan")

    if post.sizes["chain"] > 1:
        max_rhat = extreme(az.rhat(post), np.max)
    else:
        max_rhat = float("nan")
    ss = idata.sample_stats
    n_div = int(ss["diverging"].values.sum()) if "diverging" in ss else 0
    try:
        min_bfmi = float(np.min(az.bfmi(idata)))
    except (KeyError, AttributeError, ValueError, TypeError):
        min_bfmi = float("nan")
    return {
        "max_rhat": max_rhat,
        "min_ess_bulk": extreme(az.ess(post, method="bulk"), np.min),
        "min_ess_tail": extreme(az.ess(post, method="tail"), np.min),
        "n_divergent": n_div,
        "min_bfmi": min_bfmi,
    }


def convergence_failure(
    dg: dict[str, float],
    *,
    rhat_max: float,
    ess_bulk_min: float,
    suggest_marginal: bool,
) -> str | None:
    """What failed in the convergence gate and what to try, or ``None`` if it passed.

    Parameters
    ----------
    dg : dict
        Output of :func:`diagnose`.
    rhat_max, ess_bulk_min : float
        The gate's thresholds (:data:`RHAT_MAX`, :data:`ESS_BULK_MIN`).
    suggest_marginal : bool
        Whether to advise the exact marginal model.

    Examples
    --------
    >>> dg = {"max_rhat": 1.0, "min_ess_bulk": 120.0, "n_divergent": 0}
    >>> convergence_failure(dg, rhat_max=1.01, ess_bulk_min=400,
    ...                     suggest_marginal=False)
    'min bulk ESS 120 < 400; raise draws/tune or chains'
    """
    problems = []
    if dg["max_rhat"] > rhat_max:
        problems.append(f"max R-hat {dg['max_rhat']:.3f} > {rhat_max}")
    if dg["min_ess_bulk"] < ess_bulk_min:
        problems.append(f"min bulk ESS {dg['min_ess_bulk']:.0f} < {ess_bulk_min}")
    if dg["n_divergent"] > 0:
        problems.append(f"{dg['n_divergent']} divergent transitions")
    if not problems:
        return None
    advice = []
    if dg["n_divergent"] > 0:
        advice.append("raise target_accept (e.g. 0.95)")
    if dg["max_rhat"] > rhat_max or dg["min_ess_bulk"] < ess_bulk_min:
        advice.append("raise draws/tune or chains")
    if suggest_marginal:
        advice.append("use marginalize=None (the exact marginal model)")
    return f"{'; '.join(problems)}; {', '.join(advice)}"
