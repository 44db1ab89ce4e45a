"""Benchmark: alsprog's BayesianTrajectoryModel against plain PyMC samplers.

Usage::

    python benchmarks/bayes.py [--kind linear|sigmoid] [--quick] [--subjects 1000]
                               [--draws 1000] [--tune 1000] [--chains 2] [--repeats 1]
                               [--jax-cache DIR]

``--kind sigmoid`` benchmarks the nonlinear D50 model instead, on the simulator's
cohort (``simulate_cohort``, whose ALSFRS-R follows the D50 sigmoid per patient),
``alsfrs_r_total ~ onset_site`` on months since onset: alsprog (the value-and-slope
whitened subject effects started from a Laplace-EM fit, numpyro) against the same
model as a PyMC user writes it, centred as brms writes it (``LKJCholeskyCov``,
``MvNormal`` subject effects) and non-centred, both with numpyro's defaults through
``pm.sample(nuts_sampler="numpyro")`` (``--peers numpyro-centred numpyro pymc``).

One ALS-like data set (random intercept + slope, visits every 3 months up to 18 with
dropout, ~5.5 visits per subject, onset site and age) is fitted with
``alsfrs_r_total ~ months * onset_site + age_at_onset + (months | subject_id)``:

- ``alsprog``: ``BayesianTrajectoryModel`` (linear, marginalised per-subject effects,
  numpyro through JAX, exact conditional subject-effect draws afterwards); timed over
  the whole ``fit`` (sampling, subject effects, log-likelihood, diagnostics);
- peers: the standard full model as a PyMC user writes it (non-centred subject effects,
  ``LKJCholeskyCov``), sampled by PyMC's default NUTS, numpyro
  (``nuts_sampler="numpyro"``) and nutpie; timed over ``pm.sample``.  Stan
  (cmdstanpy) is run only when installed.

The figure of merit is the minimum bulk ESS over the population parameters (fixed
effects, the two subject-effect SDs, their correlation, the residual SD) per wall-clock
second, compilation included: what a user waits for on a fresh model.  Before timing,
each peer's posterior means are compared with alsprog's (largest difference in
posterior SDs).  Every tool first runs a short warm-up fit (``--warmup``: ``same``, the
same data with 50 tuning and 50 kept draws, so in-process compilation caches are warm
as on a user's second fit; ``small``, 30 subjects, imports only; ``none``), then the
timed fit ``--repeats`` times (median).  ``--jax-cache DIR`` turns on JAX's persistent
compilation cache for both JAX tools.  Rows are written to
``benchmarks/results/bayes_<kind>.csv``.  Timings on a shared machine are noisy: compare ratios
from the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alsprog._io import atomic_path  # noqa: E402
from alsprog.errors import ConvergenceWarning  # noqa: E402
from alsprog.models.bayes._model import BayesianTrajectoryModel  # noqa: E402

FIXED = "alsfrs_r_total ~ months * onset_site + age_at_onset"
SIGMOID_FIXED = "alsfrs_r_total ~ onset_site"
POP = ["beta", "subject_sd", "subject_corr", "sigma"]


def make_sigmoid_data(n: int, seed: int = 2026) -> pd.DataFrame:
    """The simulator's ALS cohort (D50 sigmoid per patient), one row per visit."""
    from alsprog.data import assemble
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(n, seed=seed)
    df = assemble(c.visits, c.subjects)
    cols = [
        "subject_id",
        "months",
        "months_since_onset",
        "alsfrs_r_total",
        "onset_site",
    ]
    return df[cols].dropna().reset_index(drop=True)


def sigmoid_pymc_model(df: pd.DataFrame, centred: bool):
    """The D50 sigmoid hierarchical model as a PyMC user writes it (alsprog's priors)."""
    import pymc as pm
    import pytensor.tensor as pt

    first = df.groupby("subject_id", sort=True).first()
    Xs = np.column_stack(
        [np.ones(len(first)), (first["onset_site"] == "spinal").to_numpy(float)]
    )
    codes = pd.Index(first.index).get_indexer(df["subject_id"])
    t = df["months_since_onset"].to_numpy(float)
    y = df["alsfrs_r_total"].to_numpy(float)
    coords = {
        "effect": ["log_d50", "log_dx"],
        "term": ["Intercept", "onset_site[T.spinal]"],
        "subject_id": list(first.index),
    }
    mu0 = np.array([[np.log(30.0), 0.0], [np.log(10.0), 0.0]])
    with pm.Model(coords=coords) as model:
        beta = pm.Normal("beta", mu=mu0, sigma=0.5, dims=("effect", "term"))
        chol, corr, stds = pm.LKJCholeskyCov(
            "chol", n=2, eta=2.0, sd_dist=pm.HalfNormal.dist(0.5), compute_corr=True
        )
        pm.Deterministic("subject_sd", stds, dims="effect")
        pm.Deterministic("subject_corr", corr[0, 1])
        mean = pt.dot(Xs, beta.T)
        if centred:
            theta = pm.MvNormal(
                "theta", mu=mean, chol=chol, dims=("subject_id", "effect")
            )
        else:
            z = pm.Normal("z", 0.0, 1.0, dims=("subject_id", "effect"))
            theta = pm.Deterministic(
                "theta", mean + pt.dot(z, chol.T), dims=("subject_id", "effect")
            )
        sigma = pm.HalfNormal("sigma", 5.0)
        d50, dx = pt.exp(theta[codes, 0]), pt.exp(theta[codes, 1])
        pm.Normal(
            "y", mu=48.0 * pm.math.sigmoid((d50 - t) / dx), sigma=sigma, observed=y
        )
    return model


def make_data(n: int, seed: int = 2024) -> pd.DataFrame:
    """ALS-like cohort: intercept 38 +- 5, slope -0.9 +- 0.6/month, residual SD 2."""
    rng = np.random.default_rng(seed)
    cov = np.array([[25.0, -0.6], [-0.6, 0.36]])
    b = rng.multivariate_normal([0.0, 0.0], cov, size=n)
    site = rng.choice(["bulbar", "spinal", "other"], size=n, p=[0.3, 0.65, 0.05])
    age = np.round(rng.normal(58.0, 10.0, n), 1)
    visits = np.arange(0.0, 19.0, 3.0)
    n_vis = np.clip(rng.geometric(0.08, n), 1, len(visits))
    sid = np.repeat(np.arange(n), n_vis)
    pos = np.arange(len(sid)) - np.repeat(np.cumsum(n_vis) - n_vis, n_vis)
    months = visits[pos] + np.where(pos > 0, rng.uniform(-0.5, 0.5, len(sid)), 0.0)
    slope = -0.9 + b[sid, 1] - 0.3 * (site[sid] == "bulbar")
    y = 38 + b[sid, 0] - 0.05 * (age[sid] - 58) + slope * months
    y = y + rng.normal(0, 2.0, len(sid))
    return pd.DataFrame(
        {
            "subject_id": [f"P{i:05d}" for i in sid],
            "months": np.round(months, 3),
            # ALSFRS-R totals are whole numbers in 0-48 (every fit checks it)
            "alsfrs_r_total": np.clip(np.round(y), 0, 48),
            "onset_site": site[sid],
            "age_at_onset": age[sid],
        }
    )


def standard_pymc_model(df: pd.DataFrame):
    """The full hierarchical model as commonly written in PyMC (non-centred)."""
    import pymc as pm
    import pytensor.tensor as pt
    from formulaic import model_matrix

    X = model_matrix(FIXED.split("~")[1], df)
    terms = list(X.columns)
    Xa = np.asarray(X, dtype=float)
    codes, subjects = pd.factorize(df["subject_id"], sort=True)
    t = df["months"].to_numpy(float)
    y = df["alsfrs_r_total"].to_numpy(float)
    coords = {
        "term": terms,
        "effect": ["Intercept", "months"],
        "subject_id": list(subjects),
    }
    mu0 = np.where(np.array(terms) == "Intercept", 40.0, 0.0)
    sd0 = np.where(np.array(terms) == "Intercept", 20.0, 5.0)
    with pm.Model(coords=coords) as model:
        beta = pm.Normal("beta", mu=mu0, sigma=sd0, dims="term")
        chol, corr, stds = pm.LKJCholeskyCov(
            "chol",
            n=2,
            eta=2.0,
            sd_dist=pm.HalfNormal.dist(sigma=[10.0, 1.5]),
            compute_corr=True,
        )
        pm.Deterministic("subject_sd", stds, dims="effect")
        pm.Deterministic("subject_corr", corr[0, 1])
        z = pm.Normal("z", 0.0, 1.0, dims=("subject_id", "effect"))
        b = pm.Deterministic(
            "subject_effects", pt.dot(z, chol.T), dims=("subject_id", "effect")
        )
        sigma = pm.HalfNormal("sigma", 5.0)
        mu = pt.dot(Xa, beta) + b[codes, 0] + b[codes, 1] * t
        pm.Normal("y", mu=mu, sigma=sigma, observed=y)
    return model


def min_ess(idata) -> tuple[float, float]:
    import arviz as az

    post = idata.posterior[POP]
    ess = az.ess(post, method="bulk")
    rhat = az.rhat(post)
    e = min(float(np.min(ess[v].values)) for v in POP)
    r = max(float(np.max(rhat[v].values)) for v in POP)
    return e, r


def flat_means(idata) -> pd.DataFrame:
    post = idata.posterior[POP]
    rows = {}
    for v in POP:
        x = (
            post[v]
            .values.reshape(-1, *post[v].shape[2:])
            .reshape(post.sizes["chain"] * post.sizes["draw"], -1)
        )
        for k in range(x.shape[1]):
            rows[f"{v}[{k}]"] = (x[:, k].mean(), x[:, k].std())
    return pd.DataFrame(rows, index=["mean", "sd"]).T


def run_alsprog(df, args, seed):
    m = BayesianTrajectoryModel(
        args.kind,
        formula=FIXED if args.kind == "linear" else SIGMOID_FIXED,
        chains=args.chains,
        draws=args.draws,
        tune=args.tune,
        seed=seed,
        progress=False,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(df)
    return time.perf_counter() - t0, m.idata_, int(m.diagnostics_["n_divergent"])


def run_peer(df, args, sampler, seed):
    import pymc as pm

    if args.kind == "linear":
        model = standard_pymc_model(df)
    else:
        model = sigmoid_pymc_model(df, centred=sampler.endswith("-centred"))
        sampler = sampler.removesuffix("-centred")
    kw = dict(
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        random_seed=seed,
        progressbar=False,
        compute_convergence_checks=False,
        idata_kwargs={"log_likelihood": False},
    )
    if sampler != "pymc":
        kw["nuts_sampler"] = sampler
    else:
        kw["cores"] = args.chains
    t0 = time.perf_counter()
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = pm.sample(**kw)
    secs = time.perf_counter() - t0
    return secs, idata, int(idata.sample_stats["diverging"].values.sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", choices=["linear", "sigmoid"], default="linear")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--subjects", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--peers", nargs="*", default=None)
    ap.add_argument("--jax-cache", default=None)
    ap.add_argument("--warmup", choices=["same", "small", "none"], default="same")
    args = ap.parse_args(argv)
    if args.quick:
        args.subjects, args.draws, args.tune = 200, 500, 500
    if args.peers is None:
        args.peers = (
            ["pymc", "numpyro", "nutpie"]
            if args.kind == "linear"
            else ["numpyro-centred", "numpyro"]
        )
    if args.jax_cache:
        import jax

        jax.config.update("jax_compilation_cache_dir", args.jax_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

    maker = make_data if args.kind == "linear" else make_sigmoid_data
    df = maker(args.subjects)
    print(
        f"data: {df['subject_id'].nunique()} subjects, {len(df)} rows; "
        f"{args.chains} chains x {args.draws} draws (tune {args.tune}); "
        f"warm-up: {args.warmup}",
        flush=True,
    )
    if args.warmup == "same":
        warm_df, warm_args = (
            df,
            argparse.Namespace(kind=args.kind, chains=args.chains, draws=50, tune=50),
        )
    else:
        warm_df = maker(30, seed=1)
        warm_args = argparse.Namespace(kind=args.kind, chains=1, draws=30, tune=30)

    label = "marginal" if args.kind == "linear" else "whitened"
    tools = [(f"alsprog {args.kind} ({label}, numpyro)", None)] + [
        (f"PyMC {args.kind} model, {p}", p) for p in args.peers
    ]
    rows, ref = [], None
    for name, peer in tools:
        if (
            peer
            and peer.startswith("nutpie")
            and importlib.util.find_spec("nutpie") is None
        ):
            print(f"{name}: skipped (not installed)")
            continue
        run = (
            (lambda d, a, s: run_alsprog(d, a, s))
            if peer is None
            else (lambda d, a, s, p=peer: run_peer(d, a, p, s))
        )
        if args.warmup != "none":
            run(warm_df, warm_args, 0)  # warm-up: imports and caches
        times, ess, rhat, div, idata = [], [], [], [], None
        for r in range(args.repeats):
            secs, idata, nd = run(df, args, 100 + r)
            e, rh = min_ess(idata)
            times.append(secs)
            ess.append(e)
            rhat.append(rh)
            div.append(nd)
        means = flat_means(idata)
        if ref is None:
            ref = means
            diff = 0.0
        else:
            diff = float((abs(means["mean"] - ref["mean"]) / ref["sd"]).max())
        secs, e = statistics.median(times), statistics.median(ess)
        rows.append(
            {
                "tool": name,
                "kind": args.kind,
                "subjects": args.subjects,
                "rows": len(df),
                "seconds": secs,
                "min_ess_bulk": e,
                "ess_per_s": e / secs,
                "max_rhat": max(rhat),
                "divergences": max(div),
                "max_mean_diff_in_sd": diff,
            }
        )
        print(
            f"{name}: {secs:.1f} s, min bulk ESS {e:.0f}, {e / secs:.1f} ESS/s, "
            f"R-hat {max(rhat):.3f}, {max(div)} divergent, "
            f"max |mean diff| {diff:.2f} posterior SD",
            flush=True,
        )
    if importlib.util.find_spec("cmdstanpy") is None:
        print("Stan (cmdstanpy): skipped (not installed)")
    table = pd.DataFrame(rows)
    best_peer = table.iloc[1:]["ess_per_s"].max() if len(table) > 1 else np.nan
    table["alsprog_ratio"] = table["ess_per_s"].iloc[0] / table["ess_per_s"]
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(
        f"\nalsprog / best peer (ESS/s): {table['ess_per_s'].iloc[0] / best_peer:.1f}x"
    )
    out = ROOT / "benchmarks" / "results"
    with atomic_path(out / f"bayes_{args.kind}.csv") as tmp:
        table.to_csv(tmp, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
