"""Numerics of the Bayesian linear model and the Prior type (no sampling).

References are independent of the code under test: dense multivariate-normal densities
(scipy.stats), textbook Gaussian conditioning with dense matrices, and direct sums.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from bayes_fixtures import linear_long
from numpy.testing import assert_allclose
from scipy import stats

from alsprog.errors import ModelSpecificationError
from alsprog.models._formula import build_mixed_design
from alsprog.models.bayes._linear import (
    conditional_subject_effects,
    marginal_loglik,
    marginal_loglik_pt,
    subject_stats,
)
from alsprog.models.bayes._priors import Prior, default_priors, merge_priors

PARAMS = [
    # beta (p = 3: Intercept, months, age), sd (2), corr, sigma
    (np.array([40.0, -0.8, -0.04]), np.array([4.0, 0.5]), -0.3, 1.8),
    (np.array([35.0, -1.2, 0.02]), np.array([6.0, 0.9]), 0.6, 2.5),
]


@pytest.fixture(scope="module")
def small():
    df, _ = linear_long(12, seed=2)
    d = build_mixed_design("frs ~ months + age_at_onset + (months | subject_id)", df)
    G = len(d.group_levels)
    return d, subject_stats(d.y, d.X, d.Z[:, 1], d.groups, G)


def _dense_cov(Z, sd, corr, sigma):
    S = np.array(
        [[sd[0] ** 2, corr * sd[0] * sd[1]], [corr * sd[0] * sd[1], sd[1] ** 2]]
    )
    return Z @ S @ Z.T + sigma**2 * np.eye(len(Z)), S


def test_subject_stats_are_per_subject_sums(small):
    d, st = small
    g = 3
    rows = d.groups == g
    X, y, Z = d.X[rows], d.y[rows], d.Z[rows]
    assert st.n[g] == rows.sum()
    assert_allclose(st.XX[g], X.T @ X)
    assert_allclose(st.Xy[g], X.T @ y)
    assert_allclose(st.yy[g], y @ y)
    assert_allclose(st.ZX[g], Z.T @ X)
    assert_allclose(st.Zy[g], Z.T @ y)
    assert_allclose(st.ZZ[g], Z.T @ Z)


@pytest.mark.parametrize("beta, sd, corr, sigma", PARAMS)
def test_marginal_loglik_matches_dense_mvn(small, beta, sd, corr, sigma):
    d, st = small
    ll = marginal_loglik(st, beta[None], sd[None], np.array([corr]), np.array([sigma]))
    ref = []
    for g in range(len(d.group_levels)):
        rows = d.groups == g
        V, _ = _dense_cov(d.Z[rows], sd, corr, sigma)
        ref.append(stats.multivariate_normal(d.X[rows] @ beta, V).logpdf(d.y[rows]))
    # scipy's dense MVN density: an independent computation of the same quantity
    assert_allclose(ll[0], ref, rtol=1e-10)


@pytest.mark.parametrize("beta, sd, corr, sigma", PARAMS)
def test_pytensor_graph_matches_numpy(small, beta, sd, corr, sigma):
    import pytensor
    import pytensor.tensor as pt

    d, st = small
    b, s, c, sg = pt.dvector(), pt.dvector(), pt.dscalar(), pt.dscalar()
    f = pytensor.function([b, s, c, sg], marginal_loglik_pt(st, b, s, c, sg))
    ref = marginal_loglik(st, beta[None], sd[None], np.array([corr]), np.array([sigma]))
    assert_allclose(f(beta, sd, corr, sigma), ref.sum(), rtol=1e-10)


def test_conditional_effects_match_gaussian_conditioning(small):
    d, st = small
    beta, sd, corr, sigma = PARAMS[0]
    n = 20000
    draws = conditional_subject_effects(
        st,
        np.tile(beta, (n, 1)),
        np.tile(sd, (n, 1)),
        np.full(n, corr),
        np.full(n, sigma),
        np.random.default_rng(0),
    )
    g = 5
    rows = d.groups == g
    Z, r = d.Z[rows], d.y[rows] - d.X[rows] @ beta
    V, S = _dense_cov(Z, sd, corr, sigma)
    # textbook: E[b | y] = S Z' V^-1 r, Cov = S - S Z' V^-1 Z S
    mean = S @ Z.T @ np.linalg.solve(V, r)
    cov = S - S @ Z.T @ np.linalg.solve(V, Z @ S)
    emp = draws[:, g]
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(emp.mean(axis=0) - mean) < 5 * se)
    assert_allclose(np.cov(emp.T), cov, rtol=0.05, atol=1e-3 * np.abs(cov).max())


def test_conditional_effects_same_seed_same_numbers(small):
    _, st = small
    beta, sd, corr, sigma = PARAMS[1]
    args = (st, beta[None], sd[None], np.array([corr]), np.array([sigma]))
    a = conditional_subject_effects(*args, np.random.default_rng(4))
    b = conditional_subject_effects(*args, np.random.default_rng(4))
    assert np.array_equal(a, b)


# ------------------------------------------------------------------ priors
def test_prior_repr_is_valid_python_and_roundtrips():
    p = Prior("StudentT", nu=3, mu=-0.9, sigma=0.5)
    assert repr(p) == "Prior('StudentT', nu=3.0, mu=-0.9, sigma=0.5)"
    assert eval(repr(p)) == p
    assert Prior.from_dict(p.to_dict()) == p
    assert copy.deepcopy(p) == p
    assert hash(p) == hash(Prior("StudentT", nu=3.0, mu=-0.9, sigma=0.5))


def test_prior_is_immutable():
    p = Prior("Normal", mu=0, sigma=1)
    with pytest.raises(AttributeError, match="immutable"):
        p.mu = 3
    d = p.params
    d["mu"] = 5.0
    assert p.params["mu"] == 0.0


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("Normall",), {"mu": 0, "sigma": 1}, r"Unknown prior distribution 'Normall'"),
        (("Normal",), {"mu": 0}, r"takes parameters mu, sigma; got mu"),
        (("Normal",), {"mu": 0, "sigma": -1}, r"`sigma` must be a positive number"),
        (("HalfNormal",), {"sigma": "2"}, r"`sigma` must be a number; got '2'"),
        (("Uniform",), {"lower": 1, "upper": 0}, r"`lower` must be below `upper`"),
    ],
)
def test_bad_prior_names_the_culprit(args, kwargs, match):
    with pytest.raises(ModelSpecificationError, match=match):
        Prior(*args, **kwargs)


def test_merge_priors_unknown_key_lists_valid_ones():
    with pytest.raises(
        ModelSpecificationError,
        match=r"Unknown prior 'slop'.*valid keys"
        r" are: intercept, slope, beta, sd_intercept.*beta\[months\]",
    ):
        merge_priors(
            "linear",
            "normal",
            {"slop": Prior("Normal", mu=0, sigma=1)},
            ["Intercept", "months"],
        )


def test_merge_priors_accepts_dicts_and_term_keys():
    out = merge_priors(
        "linear",
        "normal",
        {
            "sigma": {"distribution": "HalfNormal", "sigma": 3.0},
            "beta[age_at_onset]": Prior("Normal", mu=0, sigma=0.1),
        },
        ["Intercept", "months", "age_at_onset"],
    )
    assert out["sigma"] == Prior("HalfNormal", sigma=3.0)
    assert out["beta[age_at_onset]"].params["sigma"] == 0.1
    assert out["slope"] == default_priors()["slope"]


def test_student_t_adds_nu():
    assert "nu" in default_priors("linear", "student_t")
    assert "nu" not in default_priors("linear", "normal")
