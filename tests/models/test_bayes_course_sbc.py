"""Simulation-based calibration (Talts et al. 2018) of the disease-course model.

Each replication draws the population parameters of :class:`DiseaseCourseModel`
from the prior its PyMC graph implements (``build_course_model``), the patients'
``tau_i``, ``xi_i`` and space shifts ``w_i`` from the population, and the outcomes
from the likelihood (normalised scale, turned back into raw units); it fits the model
and records the rank of each true population parameter among thinned posterior
draws.  When the sampler computes the posterior correctly, every rank is uniform on
``0..L``; the test bins them and asks a chi-square test for p > 0.01 per parameter.

The visit design is the same in every replication (30 patients, entry times on a
fixed grid, visits 0, 3, 6, 12, 18 months later; every cell observed), so that the
data-dependent constants of the prior (``t_ref``, the median observed time, and each
patient's mean visit time ``tbar_i``) are the same for the draw and the fit.

The prior is the one in the module notes of :mod:`alsprog.models.bayes._course`
(Leaspy's hierarchy, ``m_k ~ N(t_ref, 24)`` independently); :func:`_draw_hierarchy`
draws it directly.  Two quick checks guard the simulator: its forward part against
``pm.sample_prior_predictive`` of the graph (KS), and its full target density against
the graph's joint log density with the Jacobian of the graph's coordinates, on
simulator draws (equal up to a constant).

Ranks are uniform only if the ranked draws are near-independent.  Some prior draws
give posteriors the sampler mixes slowly in (a very small ``tau_sd`` or ``xi_sd``, a
near-noiseless outcome): there the bulk ESS of a parameter over the 800 draws can be
far below 100.  As Talts et al. (2018, section 5) advise, each replication's draws of
a parameter are therefore thinned to about its ESS (every ``ceil(800 / min(ESS,
100))``-th draw of each chain) and the rank among those ``L_r`` draws is made a
fractional rank ``(rank + U) / (L_r + 1)`` with ``U ~ Uniform(0, 1)`` (uniform on
(0, 1) under a correct posterior whatever ``L_r``); the chi-square test runs on ten
bins of these.  The fixed-thinning ranks (every 8th draw, L = 99) are printed too.
The SBC study takes about 55 minutes on 2 cores (16-76 s per fit, median 29 s):
``veryslow`` (``make test-all``); ``ALSPROG_COURSE_SBC_REPS`` sets the number of
replications.

Measured (100 replications, 2026-12-07, with the per-patient speed and stage maps of
``build_course_model``): every parameter passes, chi-square p of the ESS-thinned ranks
0.038 (``log_v[gross motor]``) to 0.90; ``tau_sd`` 0.475 (0.007 before the stage map);
median max R-hat 1.018, divergences in 12 of the 100 fits (mean 1.2 per fit; before
the stage map half of them, mean 15).
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from bayes_fixtures import release_compiled
from scipy import stats
from scipy.special import expit

from alsprog.models.bayes._course_graph import (
    DEFAULT_BOUNDS,
    build_course_model,
    prepare_course_data,
    speed_info,
    speed_information,
    stage_map,
    to_raw,
)

R = int(os.environ.get("ALSPROG_COURSE_SBC_REPS", "100"))  # replications
N = 30  # patients per replication
VISITS = np.array([0.0, 3.0, 6.0, 12.0, 18.0])
ENTRY = np.linspace(4.0, 40.0, N)  # months since onset at the first visit
OUTCOMES = ("alsfrs_r_bulbar", "alsfrs_r_gross_motor", "fvc_percent_predicted")
K = len(OUTCOMES)
NORMAL = np.array([DEFAULT_BOUNDS[o][0] for o in OUTCOMES])
FLOOR = np.array([DEFAULT_BOUNDS[o][1] for o in OUTCOMES])
SID = np.repeat(np.arange(N), len(VISITS))
TIMES = ENTRY[SID] + np.tile(VISITS, N)
T_REF = float(np.round(np.median(TIMES), 1))  # the model's t_ref: median time
TBAR = ENTRY + VISITS.mean()  # each patient's mean visit time
THIN = 8  # 2 chains x 400 draws, every 8th: 100, of which L = 99 are ranked
L = 99  # ranks 0..99: ten bins of ten values each
BINS = 10

# the model's priors (module notes of alsprog.models.bayes._course)
T0_SD, M_SD, LOGV_MU, LOGV_SD = 12.0, 24.0, np.log(0.1), 0.75
TAU_SD_SCALE, XI_SD_SCALE, W_SD_SCALE, SIGMA_SCALE = 12.0, 0.5, 8.0, 0.2

PARAMS = {
    "t0": lambda p: p["t0"],
    **{f"m[{o}]": (lambda p, k=k: p["m"][k]) for k, o in enumerate(OUTCOMES)},
    **{f"log_v[{o}]": (lambda p, k=k: p["log_v"][k]) for k, o in enumerate(OUTCOMES)},
    "tau_sd": lambda p: p["tau_sd"],
    "xi_sd": lambda p: p["xi_sd"],
    "w_sd": lambda p: p["w_sd"],
    **{f"sigma[{o}]": (lambda p, k=k: p["sigma"][k]) for k, o in enumerate(OUTCOMES)},
}
POPULATION = ("t0", "m", "log_v", "tau_sd", "xi_sd", "w_sd", "sigma")


def _design(values: np.ndarray | None = None) -> pd.DataFrame:
    """The fixed visit table; ``values`` (cells x K, raw units) or a constant."""
    y = np.full((len(TIMES), K), 6.0) if values is None else values
    return pd.DataFrame(
        {
            "subject_id": [f"S{i:03d}" for i in SID],
            "months_since_onset": TIMES,
            **{o: y[:, k] for k, o in enumerate(OUTCOMES)},
        }
    )


def _stage(t0: float, tau: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """Latent time at each patient's mean visit time: ``psi_i(tbar_i)``."""
    return t0 + np.exp(xi) * (TBAR - tau)


def _draw_forward(rng: np.random.Generator) -> dict:
    """The population parameters that the graph declares without a Potential."""
    return {
        "t0": rng.normal(T_REF, T0_SD),
        "log_v": rng.normal(LOGV_MU, LOGV_SD, K),
        "tau_sd": abs(rng.normal(0.0, TAU_SD_SCALE)),
        "xi_sd": abs(rng.normal(0.0, XI_SD_SCALE)),
        "w_sd": abs(rng.normal(0.0, W_SD_SCALE)),
        "sigma": np.abs(rng.normal(0.0, SIGMA_SCALE, K)),
    }


def _draw_hierarchy(rng: np.random.Generator) -> dict:
    """Population and patient parameters from the implemented prior (no data)."""
    p = _draw_forward(rng)
    tau = rng.normal(p["t0"], p["tau_sd"], N)
    xi = rng.normal(0.0, p["xi_sd"], N)
    z = rng.normal(0.0, 1.0, (N, K))
    v = np.exp(p["log_v"])
    uw = z * (p["w_sd"] * v)[None, :]
    w = uw - np.outer(uw @ v, v) / (v @ v)  # projected off v, as in the graph
    m = rng.normal(T_REF, M_SD, K)
    return {**p, "m": m, "tau": tau, "xi": xi, "z_w": z, "w": w}


def _draw_truth(rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """Parameters from the implemented prior and a raw-unit data set from them."""
    p = _draw_hierarchy(rng)
    v = np.exp(p["log_v"])
    psi = np.exp(p["xi"][SID]) * (TIMES - p["tau"][SID]) + p["t0"]
    eta = v[None, :] * (psi[:, None] - p["m"][None, :]) + p["w"][SID]
    y = expit(eta) + rng.normal(0.0, 1.0, eta.shape) * p["sigma"][None, :]
    return _design(to_raw(y, NORMAL[None, :], FLOOR[None, :])), p


def _target_logp(p: dict, m_sd: float = M_SD) -> float:
    """Unnormalised log density of the simulator's prior (natural parameters)."""
    n = stats.norm.logpdf
    hn = stats.halfnorm.logpdf
    return float(
        n(p["t0"], T_REF, T0_SD)
        + n(p["log_v"], LOGV_MU, LOGV_SD).sum()
        + hn(p["tau_sd"], scale=TAU_SD_SCALE)
        + hn(p["xi_sd"], scale=XI_SD_SCALE)
        + hn(p["w_sd"], scale=W_SD_SCALE)
        + hn(p["sigma"], scale=SIGMA_SCALE).sum()
        + n(p["z_w"]).sum()
        + n(p["tau"], p["t0"], p["tau_sd"]).sum()
        + n(p["xi"], 0.0, p["xi_sd"]).sum()
        + n(p["m"], T_REF, m_sd).sum()
    )


def _data():
    """The fixed design as the model's arrays (constant values)."""
    return prepare_course_data(
        _design(),
        OUTCOMES,
        subject="subject_id",
        time="months_since_onset",
        bounds=DEFAULT_BOUNDS,
    )


@pytest.fixture(scope="module")
def graph():
    d = _data()
    assert d.t_ref == T_REF
    np.testing.assert_allclose(d.mean_time, TBAR)
    return build_course_model(d, np.full(K, T_REF), np.full(K, 0.1))


@pytest.mark.slow
def test_simulator_forward_part_matches_the_graph(graph):
    """KS of each forward-sampled prior draw (the graph's Potentials are ignored by
    ``sample_prior_predictive``, so only parameters without a Potential are compared:
    the hierarchy draws)."""
    import pymc as pm

    names = ["t0", "log_v", "tau_sd", "xi_sd", "w_sd", "sigma"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = pm.sample_prior_predictive(
            3000,
            model=graph,
            var_names=names,
            random_seed=5,
            compile_kwargs={"mode": "FAST_COMPILE"},
        ).prior
    rng = np.random.default_rng(6)
    draws = [_draw_forward(rng) for _ in range(3000)]
    ours = {name: np.array([d[name] for d in draws]) for name in names}
    pvalues = {}
    for name in names:
        a = prior[name].values.reshape(3000, -1)
        b = ours[name].reshape(3000, -1)
        for k in range(a.shape[1]):
            pvalues[f"{name}[{k}]"] = stats.ks_2samp(a[:, k], b[:, k]).pvalue
    # the log rates are iid in the graph too (mean + zero-sum part): correlations ~0
    lv = prior["log_v"].values.reshape(3000, K)
    assert np.abs(np.corrcoef(lv.T)[np.triu_indices(K, 1)]).max() < 0.06
    assert min(pvalues.values()) > 0.001, pvalues


@pytest.mark.slow
def test_simulator_target_is_the_graphs_prior_density(graph):
    """On simulator draws, the graph's joint prior log density (free variables and
    Potentials, no likelihood), turned into the natural parameters ``(t0, log_v,
    m, tau, xi)`` with the Jacobian of the graph's own Deterministics, equals the
    simulator's target log density up to a constant."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.gradient import jacobian

    model = graph
    rv = model.named_vars
    coord_rvs = [
        rv[n]
        for n in (
            "t0",
            "centre",
            "log_v_mean",
            "log_v_dev",
            "c_free",
            "speed_z",
            "stage_z",
        )
    ]
    others = ["tau_sd", "xi_sd", "w_sd", "sigma", "z_w"]
    values = [model.rvs_to_values[r] for r in coord_rvs]
    other_values = [model.rvs_to_values[rv[n]] for n in others]
    natural = model.replace_rvs_by_values(
        [rv[n] for n in ("t0", "log_v", "m", "tau", "xi")]
    )
    z = pt.concatenate([pt.atleast_1d(x) for x in natural])
    jac = pt.concatenate(
        [jacobian(z, x, vectorize=True).reshape((z.shape[0], -1)) for x in values],
        axis=1,
    )
    # the prior: every free variable and Potential but the likelihood ``y`` (an
    # observed variable or a masked-grid Potential, depending on the graph)
    assert "y" in rv
    prior_terms = [x for x in model.potentials if x.name != "y"]
    logp = model.logp(vars=model.free_RVs + prior_terms, jacobian=False)
    inputs = values + other_values
    f = pytensor.function(
        inputs, [logp, z, pt.linalg.slogdet(jac)[1]], mode="FAST_COMPILE"
    )

    # constrained values -> the graph's value variables, with its own transforms
    tr = model.rvs_to_transforms
    fwd_names = ["log_v_dev", *others[:-1]]
    fwd_in = [rv[n].type() for n in fwd_names]
    fwd = pytensor.function(
        fwd_in,
        [
            tr[rv[n]].forward(x, *rv[n].owner.inputs)
            for n, x in zip(fwd_names, fwd_in, strict=True)
        ],
        mode="FAST_COMPILE",
    )

    # the graph's per-patient maps xi = c + s z and u = c + s z
    m0, v0 = np.full(K, T_REF), np.full(K, 0.1)
    a_hat, stage_hat, H = speed_information(_data(), m0, v0)
    vbar0, centre0 = 0.1, T_REF

    def coords(p: dict) -> list:
        """The graph's value variables at natural parameters ``p``."""
        stage = _stage(p["t0"], p["tau"], p["xi"])
        centre = p["m"].mean()
        lv_mean = p["log_v"].mean()
        vbar = np.exp(lv_mean)
        info = speed_info(H, p["sigma"])
        s_xi = 1.0 / np.sqrt(info + p["xi_sd"] ** -2.0)
        c_xi = s_xi**2 * info * (a_hat - lv_mean)
        alpha = np.exp(p["xi"])
        c_u, s_u = stage_map(
            H,
            p["sigma"],
            vbar0 * (stage_hat - centre0),
            p["xi"] + lv_mean - a_hat,
            vbar * (p["t0"] + alpha * (TBAR - p["t0"]) - centre),
            vbar * alpha * p["tau_sd"],
            vbar0,
        )
        lv_dev, *positive = fwd(p["log_v"] - lv_mean, *(p[n] for n in others[:-1]))
        return [
            np.asarray(p["t0"]),
            np.asarray(centre),
            np.asarray(lv_mean),
            lv_dev,
            (vbar * (p["m"] - centre))[:-1],
            (p["xi"] - c_xi) / s_xi,
            (vbar * (stage - centre) - c_u) / s_u,
            *positive,
            p["z_w"],
        ]

    rng = np.random.default_rng(7)
    diff, diff_wrong = [], []
    for _ in range(12):
        p = _draw_hierarchy(rng)
        lp, zz, logdet = f(*coords(p))
        np.testing.assert_allclose(
            zz,
            np.concatenate([[p["t0"]], p["log_v"], p["m"], p["tau"], p["xi"]]),
            rtol=1e-9,
            atol=1e-9,
        )
        diff.append(lp - logdet - _target_logp(p))
        diff_wrong.append(lp - logdet - _target_logp(p, m_sd=30.0))
    assert np.ptp(diff) < 1e-6, diff
    assert np.ptp(diff_wrong) > 0.1  # the comparison can fail


def sbc_ranks(
    draws: np.ndarray, truth: float, rng: np.random.Generator
) -> tuple[int, float, float]:
    """Ranks of ``truth`` among a parameter's ``(chains, draws)`` posterior draws:
    the fixed-thinning rank (every ``THIN``-th draw, ``L`` ranked), the ESS-thinned
    fractional rank in (0, 1), and the bulk ESS."""
    import arviz as az

    fixed = int(np.sum(draws[:, ::THIN].reshape(-1)[:L] < truth))
    ess = float(az.ess(draws, method="bulk"))
    step = int(np.ceil(draws.size / min(max(ess, 1.0), L + 1.0)))
    kept = draws[:, ::step].reshape(-1)
    frac = (np.sum(kept < truth) + rng.uniform()) / (len(kept) + 1)
    return fixed, float(frac), ess


def _ranks(r: int) -> dict[str, dict]:
    """Replication ``r``: each population parameter's ranks (:func:`sbc_ranks`),
    the fit's timing and diagnostics."""
    from alsprog.models.bayes._course import DiseaseCourseModel

    df, truth = _draw_truth(np.random.default_rng(20_000 + r))
    m = DiseaseCourseModel(
        list(OUTCOMES), chains=2, draws=400, tune=400, seed=r, progress=False
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(df)
    info = {
        "seconds": time.perf_counter() - start,
        "max_rhat": m.diagnostics_["max_rhat"],
        "min_ess_bulk": m.diagnostics_["min_ess_bulk"],
        "n_divergent": m.diagnostics_["n_divergent"],
    }
    assert m.reference_time_ == T_REF
    post = m.idata_.posterior
    rng = np.random.default_rng(30_000 + r)
    out: dict[str, dict] = {"fixed": {}, "frac": {}, "ess": {}, "info": info}
    for key, get in PARAMS.items():
        draws = np.array(
            [
                [get({n: post[n].values[c, i] for n in POPULATION}) for i in range(400)]
                for c in range(2)
            ]
        )
        fixed, frac, ess = sbc_ranks(draws, float(get(truth)), rng)
        out["fixed"][key], out["frac"][key], out["ess"][key] = fixed, frac, ess
    return out


def sbc_pvalues(results: list[dict]) -> dict[str, float]:
    """Chi-square p-value of each parameter's ten-bin histogram of ESS-thinned
    fractional ranks; prints both histograms and the ESS summary."""
    fixed = pd.DataFrame([r["fixed"] for r in results])
    frac = pd.DataFrame([r["frac"] for r in results])
    ess = pd.DataFrame([r["ess"] for r in results])
    info = pd.DataFrame([r["info"] for r in results])
    print("SBC fits:", info.describe().round(3).to_string(), sep="\n")
    print("SBC bulk ESS:", ess.describe().round(0).T.to_string(), sep="\n")
    pvalues = {}
    for key in PARAMS:
        c_fixed, _ = np.histogram(fixed[key], bins=np.arange(0, L + 2, (L + 1) // BINS))
        c_frac, _ = np.histogram(frac[key], bins=np.linspace(0.0, 1.0, BINS + 1))
        pvalues[key] = float(stats.chisquare(c_frac).pvalue)
        print(
            f"SBC {key}: ESS-thinned {c_frac.tolist()} p = {pvalues[key]:.3f}; "
            f"every {THIN}th {c_fixed.tolist()} "
            f"p = {stats.chisquare(c_fixed).pvalue:.3f}"
        )
    return pvalues


@pytest.mark.slow
def test_sbc_ranks_are_uniform_for_independent_and_autocorrelated_draws():
    """The rank helper itself: with the truth drawn from the same distribution as
    the draws, fractional ranks are uniform for independent draws and for strongly
    autocorrelated AR(1) draws (thinned by ESS), and not for a biased posterior."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(1)
    ok, ar, biased = [], [], []
    for _ in range(400):
        truth = rng.normal()
        ok.append(sbc_ranks(rng.normal(size=(2, 400)), truth, rng)[1])
        e = rng.normal(size=(2, 400)) * np.sqrt(1 - 0.97**2)  # AR(1), rho 0.97,
        e[:, 0] = rng.normal(size=2)  # stationary N(0, 1)
        ar.append(sbc_ranks(lfilter([1.0], [1.0, -0.97], e, axis=1), truth, rng)[1])
        biased.append(sbc_ranks(rng.normal(0.5, 1.0, (2, 400)), truth, rng)[1])
    edges = np.linspace(0.0, 1.0, BINS + 1)
    p = [stats.chisquare(np.histogram(u, bins=edges)[0]).pvalue for u in (ok, ar)]
    assert min(p) > 0.001, p
    assert stats.chisquare(np.histogram(biased, bins=edges)[0]).pvalue < 1e-6


@pytest.mark.veryslow
def test_course_population_parameters_pass_sbc():
    results = []
    for r in range(R):
        results.append(_ranks(r))
        print(f"SBC replication {r}: {results[-1]['frac']}", flush=True)
        release_compiled()
    pvalues = sbc_pvalues(results)
    assert all(p > 0.01 for p in pvalues.values()), pvalues
