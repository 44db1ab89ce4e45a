"""The array functions behind LinearMixedModel, tested on their own."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from alsprog.models.lmm._numerics import (
    compute_group_stats,
    estimates_at,
    fit_profiled,
    profiled_deviance,
)


def _problem(q: int, seed: int = 0, n_groups: int = 25):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, n_groups)
    g = np.repeat(np.arange(n_groups), sizes)
    rng.shuffle(g)  # unsorted groups must work
    n = len(g)
    t = rng.uniform(0, 3, n)
    X = np.column_stack([np.ones(n), t, rng.normal(size=n)])
    Z = np.column_stack([np.ones(n), t, t**2][:q])
    Z = Z.T if Z.shape[0] == q and Z.shape[1] != q else Z
    Z = np.column_stack([np.ones(n), t, t**2])[:, :q]
    b = rng.normal(size=(n_groups, q)) * [2.0, 0.7, 0.2][:q]
    y = X @ [3.0, -1.0, 0.5] + np.einsum("nq,nq->n", Z, b[g]) + rng.normal(size=n)
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))  # lme4 order: column by column
    rows, cols = rows[order], cols[order]
    lower = np.where(rows == cols, 0.0, -np.inf)
    return X, Z, y, g, n_groups, rows, cols, lower


@pytest.mark.parametrize("q", [1, 2, 3])
def test_group_stats_equal_loops(q):
    X, Z, y, g, G, *_ = _problem(q)
    s = compute_group_stats(X, Z, y, g, G)
    for i in (0, 7, G - 1):
        m = g == i
        assert_allclose(s.ZtZ[i], Z[m].T @ Z[m], rtol=1e-13)
        assert_allclose(s.ZtX[i], Z[m].T @ X[m], rtol=1e-13)
        assert_allclose(s.Zty[i], Z[m].T @ y[m], rtol=1e-13)
    assert_allclose(s.XtX, X.T @ X, rtol=1e-13)
    assert s.yty == pytest.approx(y @ y, rel=1e-13)
    assert s.n_per_group.sum() == len(y)


def test_group_stats_rejects_empty_group():
    with pytest.raises(ValueError, match="must occur"):
        compute_group_stats(
            np.ones((2, 1)), np.ones((2, 1)), np.ones(2), np.array([0, 2]), 3
        )


@pytest.mark.parametrize("q", [1, 2, 3])
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_matches_finite_differences(q, reml):
    X, Z, y, g, G, rows, cols, lower = _problem(q, seed=q)
    s = compute_group_stats(X, Z, y, g, G)
    rng = np.random.default_rng(5)
    theta = np.where(
        rows == cols, rng.uniform(0.3, 1.5, len(rows)), rng.normal(0, 0.3, len(rows))
    )
    d, grad = profiled_deviance(theta, s, rows, cols, reml=reml, gradient=True)
    h = 1e-6
    num = [
        (
            profiled_deviance(theta + h * e, s, rows, cols, reml=reml)
            - profiled_deviance(theta - h * e, s, rows, cols, reml=reml)
        )
        / (2 * h)
        for e in np.eye(len(theta))
    ]
    assert_allclose(grad, num, rtol=1e-5, atol=1e-6)
    assert d == profiled_deviance(theta, s, rows, cols, reml=reml)


@pytest.mark.parametrize("reml", [True, False])
def test_deviance_equals_dense_likelihood(reml):
    """-2 log-likelihood from a dense V = sigma^2 (I + Z Lambda Lambda' Z') at the
    profiled sigma^2 (closed form of Bates et al. 2015, eqs. 34 and 41)."""
    X, Z, y, g, G, rows, cols, lower = _problem(2, seed=3)
    s = compute_group_stats(X, Z, y, g, G)
    theta = np.array([0.8, -0.2, 0.4])
    est = estimates_at(theta, s, rows, cols, reml=reml)
    lam = np.zeros((2, 2))
    lam[rows, cols] = theta
    n, p = X.shape
    Zb = np.zeros((n, 2 * G))
    for j in range(2):
        Zb[np.arange(n), 2 * g + j] = Z[:, j]
    V = est.sigma2 * (np.eye(n) + Zb @ np.kron(np.eye(G), lam @ lam.T) @ Zb.T)
    Vi = np.linalg.inv(V)
    r = y - X @ est.beta
    m2ll = np.linalg.slogdet(V)[1] + r @ Vi @ r
    if reml:
        m2ll += np.linalg.slogdet(X.T @ Vi @ X)[1] + (n - p) * np.log(2 * np.pi)
    else:
        m2ll += n * np.log(2 * np.pi)
    assert est.deviance == pytest.approx(m2ll, rel=1e-11)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    assert_allclose(est.beta, beta, rtol=1e-10)
    assert_allclose(est.cov_beta, np.linalg.inv(X.T @ Vi @ X), rtol=1e-9)


@pytest.mark.parametrize("q", [1, 2, 3])
def test_fit_reaches_a_stationary_point(q):
    X, Z, y, g, G, rows, cols, lower = _problem(q, seed=10 + q, n_groups=60)
    s = compute_group_stats(X, Z, y, g, G)
    est = fit_profiled(s, rows, cols, lower)
    assert est.converged
    free = ~((est.theta <= lower) & (est.grad > 0))
    assert np.max(np.abs(est.grad[free])) < 1e-4
    # no better point nearby (derivative-free check)
    rng = np.random.default_rng(0)
    for _ in range(20):
        cand = np.maximum(est.theta + rng.normal(0, 1e-3, len(rows)), lower)
        assert profiled_deviance(cand, s, rows, cols) >= est.deviance - 1e-9


def test_fit_at_boundary_is_exact_zero():
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(10), 4)
    y = rng.normal(size=40)
    y -= np.bincount(g, y)[g] / 4  # equal group means: group variance estimate 0
    s = compute_group_stats(np.ones((40, 1)), np.ones((40, 1)), y, g, 10)
    est = fit_profiled(s, np.array([0]), np.array([0]), np.array([0.0]))
    assert est.theta[0] == 0.0 and est.converged
