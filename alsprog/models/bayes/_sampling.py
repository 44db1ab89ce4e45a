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
    start: dict[str, Any] | None = None,
) -> Any:
    """Run NUTS on ``model`` with the chosen implementation; returns InferenceData.

    ``start`` (numpyro only): values of free variables, on their own scale, the
    chains start from (jittered); the others start at PyMC's initial point.
    """
    import pymc as pm

    show = sys.stderr.isatty() if progress is None else bool(progress)
    if sampler == "numpyro":
        return sample_numpyro(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            target_accept=target_accept,
            seed=seed,
            progress=show,
            dense=dense,
            var_names=var_names,
            start=start,
        )
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
    if sampler == "nutpie":
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


#: numpyro's per-draw statistics under the names ``pm.sample`` gives them.
_STAT_NAMES = {
    "diverging": "diverging",
    "energy": "energy",
    "num_steps": "n_steps",
    "accept_prob": "acceptance_rate",
    "adapt_state.step_size": "step_size",
    "potential_energy": "lp",
}


def _start_points(
    model: Any, start: dict[str, Any] | None, chains: int, rng: np.random.Generator
) -> list[Any]:
    """Per-chain starting values of the model's value variables (unconstrained).

    PyMC's initial point, with ``start`` (constrained values by variable name) put
    through each variable's transform, then jittered uniformly by +-0.5 (population
    parameters) or +-1 (vectors of 50 values or more: per-subject variables), as
    ``pm.sample`` jitters, so that R-hat compares chains from dispersed starts.
    """
    import jax.numpy as jnp

    point = model.initial_point()
    for name, value in (start or {}).items():
        rv = model[name]
        value_var = model.rvs_to_values[rv]
        tr = model.rvs_to_transforms.get(rv)
        val = np.asarray(value, dtype=float)
        if tr is not None:
            val = np.asarray(tr.forward(val, *rv.owner.inputs).eval(), dtype=float)
        point[value_var.name] = val.reshape(np.shape(point[value_var.name]))
    out = []
    for v in model.value_vars:
        base = np.asarray(point[v.name], dtype=float)
        width = 1.0 if base.size >= 50 else 0.5
        jit = rng.uniform(-width, width, size=(chains, *base.shape))
        out.append(jnp.asarray(base[None] + jit))
    return out


def sample_numpyro(
    model: Any,
    *,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    seed: int,
    progress: bool,
    dense: bool,
    var_names: list[str],
    start: dict[str, Any] | None = None,
) -> Any:
    """NUTS through numpyro on PyMC's JAX log-density, without ``pm.sample``'s detours.

    The same sampler ``pm.sample(nuts_sampler="numpyro")`` runs (numpyro's NUTS on
    ``pymc.sampling.jax.get_jaxified_logp``, chains in parallel over JAX's host
    devices, which PyMC sets to 100), called directly: no step-method assignment, no
    op-by-op evaluation of the jittered starts, the kept variables computed by one
    compiled function vectorised over the draws.  On 1,000 patients of the sigmoid
    model this saves about 10 s of the fit's fixed cost.  Returns InferenceData with
    ``posterior`` (``var_names``) and ``sample_stats`` named as ``pm.sample``'s.
    """
    import arviz as az
    import jax
    from numpyro.infer import MCMC, NUTS
    from pymc.sampling.jax import get_jaxified_graph, get_jaxified_logp

    rng = np.random.default_rng(seed)
    potential = get_jaxified_logp(model, negative_logp=False)  # -logp (numpyro's U)
    init = _start_points(model, start, chains, rng)
    kernel = NUTS(
        potential_fn=potential, target_accept_prob=target_accept, dense_mass=dense
    )
    n_dev = jax.local_device_count()
    method = "parallel" if n_dev >= chains else "vectorized"
    mcmc = MCMC(
        kernel,
        num_warmup=tune,
        num_samples=draws,
        num_chains=chains,
        chain_method=method,
        progress_bar=progress,
    )
    keys = jax.random.split(jax.random.PRNGKey(int(rng.integers(2**31))), chains)
    if chains == 1:
        keys, init = keys[0], [x[0] for x in init]
    logger.info("numpyro NUTS: %d chains (%s) x %d draws", chains, method, draws)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*There are not enough devices.*")
        mcmc.run(keys, init_params=init, extra_fields=tuple(_STAT_NAMES))
    raw = mcmc.get_samples(group_by_chain=True)
    outs = [v for v in model.unobserved_value_vars if v.name in var_names]
    try:
        fn = _unrewritten_jax(model.value_vars, outs)
        values = jax.jit(jax.vmap(jax.vmap(fn)))(*raw)
    except NotImplementedError:  # an Op with a JAX form only after rewriting
        fn = get_jaxified_graph(inputs=model.value_vars, outputs=outs)
        values = jax.jit(jax.vmap(jax.vmap(fn)))(*raw)
    dims = model.named_vars_to_dims
    coords = {k: list(v) for k, v in model.coords.items() if v is not None}
    posterior = {v.name: np.asarray(x) for v, x in zip(outs, values, strict=True)}
    stats = {}
    for key, name in _STAT_NAMES.items():
        val = np.asarray(mcmc.get_extra_fields(group_by_chain=True)[key])
        stats[name] = val
    stats["tree_depth"] = np.log2(np.maximum(stats["n_steps"], 1)).astype(int) + 1
    stats["lp"] = -stats["lp"]
    return az.from_dict(
        posterior=posterior,
        sample_stats=stats,
        coords=coords,
        dims={k: list(v) for k, v in dims.items() if k in posterior},
    )


def _unrewritten_jax(inputs: list[Any], outputs: list[Any]) -> Any:
    """The JAX function of a PyTensor graph as built, without PyTensor's rewrites.

    For the kept variables, evaluated once over all draws: rewriting their graph
    for speed (what ``get_jaxified_graph`` does) costs more than it saves there
    (measured on the sigmoid model of 1,000 patients: 2.4 s of rewriting against
    0.15 s without, the same values to 2e-15); XLA still fuses the result.
    """
    import pytensor.tensor as pt
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph import FunctionGraph, clone_replace, graph_inputs
    from pytensor.link.jax.dispatch import jax_funcify

    shared = [v for v in graph_inputs(outputs) if isinstance(v, SharedVariable)]
    outputs = clone_replace(
        outputs, replace={v: pt.constant(v.get_value(borrow=True)) for v in shared}
    )
    return jax_funcify(FunctionGraph(inputs=inputs, outputs=outputs, clone=True))


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
