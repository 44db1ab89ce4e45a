"""The sigmoid model's sampling form: the Laplace start and the whitened subject effects.

The sampler sees each subject's ``(log D50_i, log dx_i)`` through a data-informed
bijection of free ``w_i`` (``alsprog.models.bayes._sigmoid.whitened_effects``).  The
model must stay exactly the centred hierarchical model: these tests check, with
oracles that do not use the code under test, that

- the density the sampler sees equals the centred model's density (scipy: the
  bivariate normal prior of each subject's effects and the normal likelihood of
  every observation) times the Jacobian of ``w -> theta``, which is taken by central
  finite differences of the model's own ``subject_effects`` (so the analytic
  log-determinants in the graph are checked against numbers, not against
  themselves);
- the Laplace-EM fit recovers known population values on data from the model;
- at the Laplace estimates, ``w = 0`` maps to each subject's Laplace mode (the
  affine map is centred where it should be);
- (slow) sampling the whitened form and the plain non-centred form gives the same
  posterior.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from bayes_fixtures import SIGMOID_TRUTH, quiet_fit, sigmoid_long
from numpy.testing import assert_allclose
from scipy import stats
from scipy.special import expit

from alsprog._quadrature import padded
from alsprog.models.bayes._laplace import laplace_sigmoid, value_slope
from alsprog.models.bayes._priors import default_priors
from alsprog.models.bayes._sigmoid import (
    build_sigmoid_model,
    laplace_start,
)

G = 12


@pytest.fixture(scope="module")
def small():
    df, _ = sigmoid_long(G, seed=21, visits=(0, 3, 6, 12))
    df = df.iloc[np.random.default_rng(0).permutation(len(df))]  # rows unsorted
    df = df.iloc[: len(df) - 5]  # unequal visits per subject
    codes, ids = np.unique(df["subject_id"].to_numpy(), return_inverse=True)
    y = df["frs"].to_numpy(float)
    t = df["months_since_onset"].to_numpy(float)
    Xs = np.column_stack([np.ones(G), np.linspace(-1.0, 1.0, G)])
    start = np.array([[np.log(30.0), 0.0], [np.log(10.0), 0.0]])
    fit = laplace_sigmoid(y, t, ids, Xs, start_beta=start)
    return {"y": y, "t": t, "groups": ids, "Xs": Xs, "fit": fit, "ids": codes}


def _model(small, laplace):
    return build_sigmoid_model(
        y=small["y"],
        Xs=small["Xs"],
        t=small["t"],
        groups=small["groups"],
        coords={
            "term": ["Intercept", "x"],
            "effect": ["log_d50", "log_dx"],
            "subject_id": list(small["ids"]),
            "obs": np.arange(len(small["y"])),
        },
        priors=default_priors("sigmoid"),
        outcome="frs",
        likelihood="normal",
        laplace=laplace,
    )


def _functions(model):
    import pytensor

    names = ["subject_effects", "beta", "subject_sd", "subject_corr", "sigma"]
    outs = model.replace_rvs_by_values([model[n] for n in names])
    det = pytensor.function(
        model.value_vars, outs, mode="FAST_COMPILE", on_unused_input="ignore"
    )
    # the subject part of the density the sampler sees (population priors and
    # their transforms' Jacobians are constant here: only w moves)
    terms = model.replace_rvs_by_values(
        [model.logp(vars=[*model.potentials], jacobian=True)]
    )
    dens = pytensor.function(
        model.value_vars, terms[0], mode="FAST_COMPILE", on_unused_input="ignore"
    )
    return det, dens


def _oracle_centred(small, theta, beta, sd, rho, sigma):
    """log N(theta_i; X_i beta, Sigma) summed + normal log-likelihood (scipy)."""
    cov = np.array(
        [[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]]
    )
    mean = small["Xs"] @ beta.T
    prior = sum(
        stats.multivariate_normal(mean[i], cov).logpdf(theta[i]) for i in range(G)
    )
    g = small["groups"]
    mu = 48.0 * expit((np.exp(theta[g, 0]) - small["t"]) / np.exp(theta[g, 1]))
    return prior + stats.norm(mu, sigma).logpdf(small["y"]).sum()


def test_laplace_fit_recovers_the_population(small):
    # 400 subjects from the model: the Laplace-EM estimates sit near the truth
    df, _ = sigmoid_long(400, seed=3)
    ids = np.unique(df["subject_id"], return_inverse=True)[1]
    fit = laplace_sigmoid(
        df["frs"].to_numpy(float),
        df["months_since_onset"].to_numpy(float),
        ids,
        np.ones((400, 1)),
        start_beta=np.array([[np.log(30.0)], [np.log(10.0)]]),
    )
    t = SIGMOID_TRUTH
    assert abs(fit.beta[0, 0] - t["log_d50"]) < 0.05
    assert abs(fit.beta[1, 0] - t["log_dx"]) < 0.08
    assert abs(np.sqrt(fit.cov[0, 0]) - t["sd_log_d50"]) < 0.05
    assert abs(fit.sigma - t["sigma"]) < 0.15
    assert fit.iterations < 50


@pytest.mark.slow
def test_whitened_density_is_the_centred_model_times_the_jacobian(small):
    model = _model(small, small["fit"])
    det, dens = _functions(model)
    rng = np.random.default_rng(4)
    ip = model.initial_point()
    point = {v.name: np.asarray(ip[v.name]) for v in model.value_vars}
    # population values away from the Laplace estimates, random w
    point["_d50_intercept_centred"] = np.array(np.log(28.0))
    point["_d50_rest"] = np.array([0.05])
    point["_dx_intercept_centred"] = np.array(np.log(11.0))
    point["_dx_rest"] = np.array([-0.03])
    point["_sd_d50_log__"] = np.array(np.log(0.3))
    point["_sd_dx_log__"] = np.array(np.log(0.4))
    point["_corr_logodds__"] = np.array(0.4)
    point["sigma_log__"] = np.array(np.log(2.2))

    def theta_of(w):
        b, beta, *_ = det(**{**point, "_w": w})
        return small["Xs"] @ beta.T + b

    values = []
    for _ in range(3):
        w = rng.normal(0.0, 0.8, (G, 2))
        b, beta, sd, rho, sigma = det(**{**point, "_w": w})
        theta = small["Xs"] @ beta.T + b
        log_jac = 0.0
        h = 1e-6
        for i in range(G):
            jac = np.empty((2, 2))
            for k in range(2):
                up, dn = w.copy(), w.copy()
                up[i, k] += h
                dn[i, k] -= h
                jac[:, k] = (theta_of(up)[i] - theta_of(dn)[i]) / (2 * h)
            log_jac += np.log(abs(np.linalg.det(jac)))
        oracle = _oracle_centred(small, theta, beta, sd, float(rho), float(sigma))
        values.append((float(dens(**{**point, "_w": w})), oracle + log_jac))
    got = np.array([v[0] for v in values])
    want = np.array([v[1] for v in values])
    # equal up to one constant (the potentials carry no normalising constant of w's
    # flat prior); differences between points must agree closely
    assert_allclose(got - got[0], want - want[0], atol=1e-5)
    assert_allclose(got, want, atol=1e-5)


@pytest.mark.slow
def test_w_zero_maps_to_the_laplace_modes_at_the_laplace_estimates(small):
    fit = small["fit"]
    model = _model(small, fit)
    det, _ = _functions(model)
    start = laplace_start(fit, ["Intercept", "x"], small["Xs"])
    point = {}
    for v in model.value_vars:
        point[v.name] = np.asarray(model.initial_point()[v.name])
    for name, val in start.items():
        rv = model[name]
        tr = model.rvs_to_transforms.get(rv)
        val = np.asarray(val, dtype=float)
        if tr is not None:
            val = tr.forward(val, *rv.owner.inputs).eval()
        point[model.rvs_to_values[rv].name] = np.asarray(val)
    point["_w"] = np.zeros((G, 2))
    b, beta, sd, rho, sigma = det(**point)
    assert_allclose(beta, fit.beta, atol=1e-10)
    assert_allclose(small["Xs"] @ beta.T + b, fit.modes, atol=1e-8)


def test_value_slope_coordinates_round_trip(small):
    fit = small["fit"]
    vs = value_slope(fit, small["y"], small["t"], small["groups"])
    a, u = vs.mode[:, 0], vs.mode[:, 1]
    d50 = vs.tbar + a * np.exp(-u)
    assert_allclose(np.log(d50), fit.modes[:, 0], rtol=1e-12)
    assert_allclose(-u, fit.modes[:, 1], rtol=1e-12)
    # tbar is each subject's mean visit time
    for i in range(G):
        assert vs.tbar[i] == pytest.approx(small["t"][small["groups"] == i].mean())


def test_padded_layout_keeps_every_row_once(small):
    Y, M = padded(small["y"], small["groups"], G)
    T = padded(small["t"], small["groups"], G)[0]
    assert M.sum() == len(small["y"])
    assert_allclose(np.sort(Y[M == 1]), np.sort(small["y"]))
    for i in range(G):
        sel = small["groups"] == i
        assert_allclose(np.sort(T[i][M[i] == 1]), np.sort(small["t"][sel]))


@pytest.mark.slow
def test_whitened_and_non_centred_sampling_agree():
    from alsprog.models.bayes import _model as bm

    df, _ = sigmoid_long(40, seed=8)
    m = bm.BayesianTrajectoryModel(
        "sigmoid",
        formula="frs ~ 1",
        chains=2,
        draws=600,
        tune=600,
        seed=3,
        progress=False,
    )
    fits = {"whitened": quiet_fit(m, df), "non_centred": _fit_plain(m, df)}
    a, b = fits["whitened"].idata_.posterior, fits["non_centred"].idata_.posterior
    for name in ("beta", "subject_sd", "sigma"):
        xa = a[name].values.reshape(-1, *a[name].shape[2:])
        xb = b[name].values.reshape(-1, *b[name].shape[2:])
        sd = np.sqrt((xa.var(0) + xb.var(0)) / 2)
        # means within a quarter posterior SD (MCSE at ESS >= 100 is about 0.1 SD)
        assert np.all(np.abs(xa.mean(0) - xb.mean(0)) < 0.25 * sd), name


def _fit_plain(m, df):
    """Sample the non-centred graph (laplace=None) for the comparison."""
    from alsprog.models.bayes._sampling import sample_nuts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m._check_params()
        d = m._prepare(df)
        priors = m._merged_priors(d)
        model = m._build(d, priors, False, None)

        class Fitted:
            pass

        out = Fitted()
        out.idata_ = sample_nuts(
            model,
            sampler="numpyro",
            draws=m.draws,
            tune=m.tune,
            chains=m.chains,
            target_accept=0.9,
            seed=3,
            progress=False,
            dense=False,
            var_names=["beta", "subject_sd", "subject_corr", "sigma"],
        )
    return out


@pytest.mark.slow
def test_same_seed_same_sigmoid_posterior_and_forecast():
    from alsprog.forecast import forecast
    from alsprog.models.bayes._model import BayesianTrajectoryModel

    df, _ = sigmoid_long(25, seed=4, visits=(0, 3, 6, 12))
    fits = [
        quiet_fit(
            BayesianTrajectoryModel(
                "sigmoid",
                formula="frs ~ 1",
                chains=2,
                draws=100,
                tune=100,
                seed=123,
                progress=False,
            ),
            df,
        )
        for _ in range(2)
    ]
    for v in ("beta", "subject_effects", "sigma"):
        assert np.array_equal(
            fits[0].idata_.posterior[v].values, fits[1].idata_.posterior[v].values
        )
    hist = df[df["months"] <= 3]
    a, b = (forecast(f, hist, [6.0, 12.0], seed=5) for f in fits)
    assert a.equals(b)
