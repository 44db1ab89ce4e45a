"""Edges of the Bayesian linear model's numerics and its PyMC model (no sampling).

Oracles are independent of the code under test: scipy's dense multivariate-normal
density per subject, textbook Gaussian conditioning with dense matrices and NumPy's
Cholesky factor, direct sums, and scipy.stats densities of each prior and of the
observed outcome at a chosen parameter point.  The data are hand-made and include a
subject with one visit and a subject with none (the last code), where the algebra's
edge cases live.  PyMC graphs are compiled with ``FAST_COMPILE`` (no C compilation)
to keep these tests quick.
"""

from __future__ import annotations

import numpy as np
import pytest
from bayes_fixtures import logp_terms
from numpy.testing import assert_allclose
from scipy import stats

from alsprog.errors import ModelSpecificationError
from alsprog.models.bayes._linear import (
    conditional_subject_effects,
    marginal_loglik,
    marginal_loglik_pt,
    subject_stats,
)
from alsprog.models.bayes._priors import Prior, default_priors

# four subjects: 4 visits, 2 visits, 1 visit, no visit (last code, so the sums need
# minlength); rows deliberately not sorted by subject
GROUPS = np.array([0, 1, 0, 2, 0, 1, 0])
MONTHS = np.array([0.0, 0.0, 3.0, 2.0, 6.0, 4.0, 12.0])
AGE = np.array([61.0, 47.0, 61.0, 70.0, 61.0, 47.0, 61.0])
Y = np.array([41.0, 37.0, 39.5, 30.0, 36.0, 33.0, 31.0])
X = np.column_stack([np.ones(7), MONTHS, AGE])
G = 4

# two parameter draws, different in every entry: (beta, sd, corr, sigma)
BETA = np.array([[40.0, -0.8, -0.04], [35.0, -1.2, 0.02]])
SD = np.array([[4.0, 0.5], [6.0, 0.9]])
CORR = np.array([-0.3, 0.6])
SIGMA = np.array([1.8, 2.5])


@pytest.fixture(scope="module")
def st():
    return subject_stats(Y, X, MONTHS, GROUPS, G)


def _cov(sd, corr):
    c = corr * sd[0] * sd[1]
    return np.array([[sd[0] ** 2, c], [c, sd[1] ** 2]])


def _rows(g):
    rows = GROUPS == g
    return X[rows], Y[rows], np.column_stack([np.ones(rows.sum()), MONTHS[rows]])


def _dense_loglik(g, beta, sd, corr, sigma):
    Xg, yg, Zg = _rows(g)
    if len(yg) == 0:
        return 0.0  # no data: the density of an empty vector
    V = Zg @ _cov(sd, corr) @ Zg.T + sigma**2 * np.eye(len(yg))
    return stats.multivariate_normal(Xg @ beta, V).logpdf(yg)


def _conditional(g, beta, sd, corr, sigma):
    """Textbook conditioning: E = S Z'V^-1 r, Cov = S - S Z'V^-1 Z S."""
    Xg, yg, Zg = _rows(g)
    S = _cov(sd, corr)
    if len(yg) == 0:
        return np.zeros(2), S
    V = Zg @ S @ Zg.T + sigma**2 * np.eye(len(yg))
    r = yg - Xg @ beta
    return S @ Zg.T @ np.linalg.solve(V, r), S - S @ Zg.T @ np.linalg.solve(V, Zg @ S)


# ------------------------------------------------------------- subject_stats
def test_subject_stats_every_subject_including_an_empty_one(st):
    assert st.n.tolist() == [4.0, 2.0, 1.0, 0.0]
    assert st.n.dtype == np.float64
    shapes = {k: v.shape for k, v in vars(st).items()}
    assert shapes == {
        "n": (4,),
        "XX": (4, 3, 3),
        "Xy": (4, 3),
        "yy": (4,),
        "ZX": (4, 2, 3),
        "Zy": (4, 2),
        "ZZ": (4, 2, 2),
    }
    for g in range(G):
        Xg, yg, Zg = _rows(g)
        assert_allclose(st.XX[g], Xg.T @ Xg, rtol=1e-14)
        assert_allclose(st.Xy[g], Xg.T @ yg, rtol=1e-14)
        assert_allclose(st.yy[g], yg @ yg, rtol=1e-14)
        assert_allclose(st.ZX[g], Zg.T @ Xg, rtol=1e-14)
        assert_allclose(st.Zy[g], Zg.T @ yg, rtol=1e-14)
        assert_allclose(st.ZZ[g], Zg.T @ Zg, rtol=1e-14)
    assert np.all(st.XX[3] == 0.0) and np.all(st.ZZ[3] == 0.0) and st.yy[3] == 0.0


def test_subject_stats_accepts_integer_inputs():
    # integer outcome and time (whole ALSFRS-R scores, whole months) sum as floats
    s = subject_stats(
        np.array([3, 4]), np.array([[1, 2], [1, 5]]), np.array([1, 2]), [0, 0], 1
    )
    assert s.Zy.tolist() == [[7.0, 11.0]]
    assert s.ZZ.tolist() == [[[2.0, 3.0], [3.0, 5.0]]]
    assert s.yy.tolist() == [25.0]
    assert s.XX.tolist() == [[[2.0, 7.0], [7.0, 29.0]]]


def test_subject_stats_of_float32_data_are_float64_sums():
    # float32 columns (e.g. from parquet) are widened before any product, so the
    # sums equal those of the same values in float64, to the last bit
    y32, X32 = Y.astype(np.float32) / 3, X.astype(np.float32) / 7
    a = subject_stats(y32, X32, MONTHS, GROUPS, G)
    b = subject_stats(y32.astype(float), X32.astype(float), MONTHS, GROUPS, G)
    for k in ("XX", "Xy", "yy", "ZX", "Zy"):
        assert getattr(a, k).dtype == np.float64
        assert np.array_equal(getattr(a, k), getattr(b, k)), k


# ----------------------------------------------------------- marginal_loglik
def test_marginal_loglik_two_draws_at_once_match_dense_mvn(st):
    ll = marginal_loglik(st, BETA, SD, CORR, SIGMA)
    assert ll.shape == (2, G)
    ref = [
        [_dense_loglik(g, BETA[s], SD[s], CORR[s], SIGMA[s]) for g in range(G)]
        for s in range(2)
    ]
    assert_allclose(ll, ref, rtol=1e-10, atol=1e-10)
    # the subject with no visit contributes exactly nothing
    assert_allclose(ll[:, 3], 0.0, atol=1e-12)


def test_marginal_loglik_single_visit_is_univariate_normal(st):
    # one visit at t = 2: y ~ N(x'beta, sd0^2 + 2 rho sd0 sd1 t + sd1^2 t^2 + sigma^2)
    s = 1
    var = SD[s, 0] ** 2 + 2 * 2.0 * CORR[s] * SD[s, 0] * SD[s, 1]
    var += 4.0 * SD[s, 1] ** 2 + SIGMA[s] ** 2
    ref = stats.norm(X[3] @ BETA[s], np.sqrt(var)).logpdf(Y[3])
    ll = marginal_loglik(st, BETA[s], SD[s], CORR[s], SIGMA[s])  # one draw, 1-d
    assert ll.shape == (1, G)
    assert_allclose(ll[0, 2], ref, rtol=1e-12)


def test_marginal_loglik_takes_integer_parameters(st):
    beta, sd = np.array([40, -1, 0]), np.array([4, 1])
    ll = marginal_loglik(st, beta, sd, 0, 2)
    ref = [_dense_loglik(g, beta, sd, 0.0, 2.0) for g in range(G)]
    assert_allclose(ll[0], ref, rtol=1e-10, atol=1e-12)


def test_marginal_loglik_of_float32_parameters_is_computed_in_float64(st):
    # float32 draws (e.g. from a sampler run in single precision) are widened first
    p32 = [a.astype(np.float32) / 3 for a in (BETA, SD, CORR, SIGMA)]
    ll = marginal_loglik(st, *p32)
    assert ll.dtype == np.float64
    ref = marginal_loglik(st, *(a.astype(float) for a in p32))
    assert_allclose(ll, ref, rtol=1e-15)


def test_pytensor_sum_matches_dense_mvn_with_edge_subjects(st):
    import pytensor
    import pytensor.tensor as pt

    b, s, c, sg = pt.dvector(), pt.dvector(), pt.dscalar(), pt.dscalar()
    f = pytensor.function(
        [b, s, c, sg], marginal_loglik_pt(st, b, s, c, sg), mode="FAST_COMPILE"
    )
    for k in range(2):
        ref = sum(_dense_loglik(g, BETA[k], SD[k], CORR[k], SIGMA[k]) for g in range(G))
        assert_allclose(f(BETA[k], SD[k], CORR[k], SIGMA[k]), ref, rtol=1e-11)


# ----------------------------------------------- conditional_subject_effects
def test_conditional_effects_are_mean_plus_cholesky_times_the_normals(st):
    """Exact: the draws are ``E + L e`` with the generator's own standard normals."""
    out = conditional_subject_effects(
        st, BETA, SD, CORR, SIGMA, np.random.default_rng(11)
    )
    assert out.shape == (2, G, 2)
    e = np.random.default_rng(11).standard_normal((2, G, 2))
    for s in range(2):
        for g in range(G):
            mean, cov = _conditional(g, BETA[s], SD[s], CORR[s], SIGMA[s])
            ref = mean + np.linalg.cholesky(cov) @ e[s, g]
            assert_allclose(out[s, g], ref, rtol=1e-9, atol=1e-12)


def test_conditional_effects_of_a_subject_without_visits_follow_the_prior(st):
    out = conditional_subject_effects(
        st, BETA[0], SD[0], CORR[0], SIGMA[0], np.random.default_rng(3)
    )
    assert out.shape == (1, G, 2)
    e = np.random.default_rng(3).standard_normal((1, G, 2))[0, 3]
    L = np.linalg.cholesky(_cov(SD[0], CORR[0]))
    assert_allclose(out[0, 3], L @ e, rtol=1e-12)
    # by hand: b0 = sd0 e0, b1 = sd1 (rho e0 + sqrt(1 - rho^2) e1)
    b1 = SD[0, 1] * (CORR[0] * e[0] + np.sqrt(1 - CORR[0] ** 2) * e[1])
    assert_allclose(out[0, 3], [SD[0, 0] * e[0], b1], rtol=1e-12)


# ---------------------------------------------------------- the PyMC model
COORDS = {
    "term": ["Intercept", "months", "age"],
    "effect": ["Intercept", "months"],
    "subject_id": ["s0", "s1", "s2", "s3"],
    "obs": np.arange(7),
}
# a parameter point: centred intercept, months, age, sd0, sd1, rho, sigma
PT = {"ic": 37.5, "bm": -0.7, "ba": -0.03, "sd0": 4.5, "sd1": 0.6, "rho": -0.4}
PT["sigma"] = 2.2


def _build(**kw):
    from alsprog.models.bayes._linear import build_linear_model

    args = {
        "y": Y,
        "X": X,
        "t": MONTHS,
        "groups": GROUPS,
        "coords": COORDS,
        "priors": default_priors("linear"),
        "outcome": "frs",
        "time": "months",
        "marginal": True,
        "likelihood": "normal",
    }
    return build_linear_model(**{**args, **kw})


def _values(extra=None):
    u = (PT["rho"] + 1) / 2
    v = {
        "_beta_intercept_centred": PT["ic"],
        "_beta_rest": np.array([PT["bm"], PT["ba"]]),
        "_sd_intercept_log__": np.log(PT["sd0"]),
        "_sd_slope_log__": np.log(PT["sd1"]),
        "_corr_logodds__": np.log(u / (1 - u)),
        "sigma_log__": np.log(PT["sigma"]),
    }
    return {**v, **(extra or {})}


def _beta_point():
    ic = PT["ic"] - MONTHS.mean() * PT["bm"] - AGE.mean() * PT["ba"]
    return np.array([ic, PT["bm"], PT["ba"]])


def _prior_terms():
    """Default priors at PT by scipy: intercept, rest (months: slope prior), SDs."""
    u = (PT["rho"] + 1) / 2
    return [
        stats.norm(36.0, 12.0).logpdf(PT["ic"]),
        stats.norm(-1.0, 1.0).logpdf(PT["bm"]) + stats.norm(0, 5).logpdf(PT["ba"]),
        stats.halfnorm(scale=10.0).logpdf(PT["sd0"]),
        stats.halfnorm(scale=1.5).logpdf(PT["sd1"]),
        stats.beta(2.0, 2.0).logpdf(u),
        stats.halfnorm(scale=5.0).logpdf(PT["sigma"]),
    ]


def test_marginal_model_variables_and_dims():
    # built in each test (0.1 s), not in a shared fixture, so that mutation testing
    # sees every test that builds the model
    m = _build()
    assert [v.name for v in m.free_RVs] == [
        "_beta_intercept_centred",
        "_beta_rest",
        "_sd_intercept",
        "_sd_slope",
        "_corr",
        "sigma",
    ]
    assert m.observed_RVs == []
    assert [p.name for p in m.potentials] == ["marginal_loglik"]
    assert {n: m.named_vars_to_dims.get(n) for n in ("beta", "subject_sd")} == {
        "beta": ("term",),
        "subject_sd": ("effect",),
    }
    assert m.named_vars_to_dims.get("subject_corr") is None
    assert {d.name for d in m.deterministics} == {"beta", "subject_sd", "subject_corr"}


def test_marginal_model_logp_at_a_point_matches_scipy():
    terms, (beta, sd, corr) = logp_terms(
        _build(), _values(), ["beta", "subject_sd", "subject_corr"]
    )
    # beta on the formula's scale: intercept = centred one - column means' beta
    assert_allclose(beta, _beta_point(), rtol=1e-13)
    assert_allclose(sd, [PT["sd0"], PT["sd1"]], rtol=1e-13)
    assert_allclose(corr, PT["rho"], rtol=1e-7)
    pot = sum(
        _dense_loglik(g, _beta_point(), [PT["sd0"], PT["sd1"]], PT["rho"], PT["sigma"])
        for g in range(G)
    )
    assert_allclose(terms, [*_prior_terms(), pot], rtol=1e-7)


def test_marginal_model_uses_the_stats_it_is_given():
    # stats of another outcome (y + 1) must replace those of ``y``
    other = subject_stats(Y + 1.0, X, MONTHS, GROUPS, G)
    terms, _ = logp_terms(_build(stats=other, y=None), _values(), [])
    sd = [PT["sd0"], PT["sd1"]]
    ref = [
        stats.multivariate_normal(
            _rows(g)[0] @ _beta_point(),
            _rows(g)[2] @ _cov(sd, PT["rho"]) @ _rows(g)[2].T
            + PT["sigma"] ** 2 * np.eye((GROUPS == g).sum()),
        ).logpdf(_rows(g)[1] + 1.0)
        for g in range(3)  # subject 3 has no visit and contributes 0
    ]
    assert_allclose(terms[-1], sum(ref), rtol=1e-7)


def test_time_term_takes_slope_or_its_own_term_prior_and_others_theirs():
    priors = {
        **default_priors("linear"),
        "slope": Prior("Normal", mu=-2.0, sigma=0.3),
        "beta": Prior("Normal", mu=1.0, sigma=2.0),
        "intercept": Prior("Normal", mu=30.0, sigma=4.0),
    }
    terms, _ = logp_terms(_build(priors=priors), _values(), [])
    assert_allclose(terms[0], stats.norm(30.0, 4.0).logpdf(PT["ic"]), rtol=1e-7)
    ref = stats.norm(-2.0, 0.3).logpdf(PT["bm"]) + stats.norm(1, 2).logpdf(PT["ba"])
    assert_allclose(terms[1], ref, rtol=1e-7)
    # a ``beta[months]`` prior wins over ``slope``; ``beta[age]`` over ``beta``
    priors["beta[months]"] = Prior("Normal", mu=0.5, sigma=0.2)
    priors["beta[age]"] = Prior("Normal", mu=-1.0, sigma=0.1)
    terms, _ = logp_terms(_build(priors=priors), _values(), [])
    ref = stats.norm(0.5, 0.2).logpdf(PT["bm"]) + stats.norm(-1, 0.1).logpdf(PT["ba"])
    assert_allclose(terms[1], ref, rtol=1e-7)


def test_mixed_prior_families_become_one_variable_each():
    priors = {
        **default_priors("linear"),
        "beta[age]": Prior("StudentT", nu=3, mu=0, sigma=1),
    }
    m = _build(priors=priors)
    names = [v.name for v in m.free_RVs]
    assert names[:3] == [
        "_beta_intercept_centred",
        "_beta_rest_normal",
        "_beta_rest_studentt",
    ]
    point = _values(
        {
            "_beta_rest_normal": np.array([PT["bm"]]),
            "_beta_rest_studentt": np.array([PT["ba"]]),
        }
    )
    del point["_beta_rest"]
    terms, (beta,) = logp_terms(m, point, ["beta"])
    assert_allclose(beta, _beta_point(), rtol=1e-13)
    assert_allclose(terms[2], stats.t(3, 0, 1).logpdf(PT["ba"]), rtol=1e-7)


def test_intercept_in_another_column_and_intercept_only():
    # columns (months, Intercept): the centring acts on the intercept's own entry
    coords = {**COORDS, "term": ["months", "Intercept"]}
    m = _build(X=X[:, [1, 0]], coords=coords)
    point = _values({"_beta_rest": np.array([PT["bm"]])})
    terms, (beta,) = logp_terms(m, point, ["beta"])
    assert_allclose(beta, [PT["bm"], PT["ic"] - MONTHS.mean() * PT["bm"]], rtol=1e-13)
    # the time column's prior is still ``slope``
    assert_allclose(terms[1], stats.norm(-1.0, 1.0).logpdf(PT["bm"]), rtol=1e-7)
    # intercept only: beta is the (uncentred) intercept itself
    m = _build(X=X[:, :1], coords={**COORDS, "term": ["Intercept"]})
    assert [v.name for v in m.free_RVs][:2] == [
        "_beta_intercept_centred",
        "_sd_intercept",
    ]
    point = _values()
    del point["_beta_rest"]
    terms, (beta,) = logp_terms(m, point, ["beta"])
    assert_allclose(beta, [PT["ic"]], rtol=1e-15)


def test_without_intercept_every_column_gets_its_term_prior():
    coords = {**COORDS, "term": ["months", "age"]}
    m = _build(X=X[:, 1:], coords=coords)
    assert [v.name for v in m.free_RVs][0] == "_beta"
    point = _values({"_beta": np.array([PT["bm"], PT["ba"]])})
    del point["_beta_rest"], point["_beta_intercept_centred"]
    terms, (beta,) = logp_terms(m, point, ["beta"])
    assert_allclose(beta, [PT["bm"], PT["ba"]], rtol=1e-15)  # no centring
    ref = stats.norm(-1.0, 1.0).logpdf(PT["bm"]) + stats.norm(0, 5).logpdf(PT["ba"])
    assert_allclose(terms[0], ref, rtol=1e-7)


@pytest.mark.parametrize("likelihood", ["normal", "student_t"])
def test_full_model_effects_and_outcome_logp_match_scipy(likelihood):
    priors = default_priors("linear", likelihood)
    m = _build(marginal=False, likelihood=likelihood, priors=priors)
    names = [v.name for v in m.free_RVs]
    tail = ["_z", "nu"] if likelihood == "student_t" else ["_z"]
    assert names == [
        "_beta_intercept_centred",
        "_beta_rest",
        "_sd_intercept",
        "_sd_slope",
        "_corr",
        "sigma",
        *tail,
    ]
    assert [v.name for v in m.observed_RVs] == ["frs"]
    assert m.potentials == []
    dims = m.named_vars_to_dims
    assert dims["_z"] == dims["subject_effects"] == ("subject_id", "effect")
    assert dims["frs"] == ("obs",)
    assert_allclose(m.rvs_to_values[m["frs"]].data, Y)
    z = np.array([[0.3, -1.1], [1.4, 0.2], [-0.6, 0.9], [2.0, -0.5]])
    extra = {"_z": z}
    if likelihood == "student_t":
        extra["nu_log__"] = np.log(4.5)
    terms, (b,) = logp_terms(m, _values(extra), ["subject_effects"])
    rho = PT["rho"]
    ref_b = np.column_stack(
        [
            PT["sd0"] * z[:, 0],
            PT["sd1"] * (rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]),
        ]
    )
    assert_allclose(b, ref_b, rtol=1e-13)
    mu = X @ _beta_point() + ref_b[GROUPS, 0] + ref_b[GROUPS, 1] * MONTHS
    if likelihood == "student_t":
        obs = stats.t(4.5, mu, PT["sigma"]).logpdf(Y).sum()
        last = [
            stats.norm.logpdf(z).sum(),
            stats.gamma(2.0, scale=10.0).logpdf(4.5),
            obs,
        ]
    else:
        obs = stats.norm(mu, PT["sigma"]).logpdf(Y).sum()
        last = [stats.norm.logpdf(z).sum(), obs]
    assert_allclose(terms, [*_prior_terms(), *last], rtol=1e-7)


@pytest.mark.parametrize("key", ["sd_intercept", "sd_slope", "sigma", "nu"])
def test_scale_priors_must_live_on_the_positive_reals(key):
    priors = default_priors("linear", "student_t")
    priors[key] = Prior("Normal", mu=1, sigma=1)
    with pytest.raises(
        ModelSpecificationError,
        match=rf"Prior for '{key}' must live on the positive reals .*"
        r"got Prior\('Normal', mu=1.0, sigma=1.0\)",
    ):
        _build(marginal=False, likelihood="student_t", priors=priors)
