"""The MMRM's array functions (``alsprog.models.mmrm._numerics``) against dense,
independent computations: covariance structures built entry by entry from their
definitions, the REML log-likelihood of the stacked GLS model written out from its
formula, and gradients by central finite differences of the criterion."""

from __future__ import annotations

import numpy as np
import pytest

from alsprog.models.mmrm._numerics import (
    Pattern,
    RemlEval,
    build_patterns,
    contrast_variance_grad,
    cov_jacobian,
    covariance_from_params,
    evaluate_reml,
    mmrm_reml_criterion,
    n_cov_params,
    numerical_hessian,
    start_params,
)

STRUCTURES = ("unstructured", "compound_symmetry", "ar1")


# ------------------------------------------------------------ covariance structures
# mmrm's parameterisation (src/covariance.h, src/utils.h of openpharma/mmrm); every
# structure is checked entry by entry in tests/models/test_mmrm_structures.py.
@pytest.mark.parametrize("T", [1, 2, 3, 4, 5])
def test_n_cov_params(T):
    k = n_cov_params("unstructured", T)
    assert k == sum(range(1, T + 1)) and type(k) is int  # a count, used as a length
    assert n_cov_params("compound_symmetry", T) == 2
    assert n_cov_params("ar1", T) == 2


def test_unstructured_is_mmrm_s_scaled_unit_cholesky():
    # theta = log sd_0, log sd_1, log sd_2, l10, l20, l21; L = diag(sd) L0
    theta = np.array([0.3, -0.2, 0.1, -0.7, 1.2, 0.5])
    sd = np.exp([0.3, -0.2, 0.1])
    L0 = np.array([[1.0, 0.0, 0.0], [-0.7, 1.0, 0.0], [1.2, 0.5, 1.0]])
    L = sd[:, None] * L0
    got = covariance_from_params(theta, "unstructured", 3)
    np.testing.assert_allclose(got, L @ L.T, rtol=1e-14)
    # theta itself is left alone
    np.testing.assert_array_equal(theta, [0.3, -0.2, 0.1, -0.7, 1.2, 0.5])
    # one visit: the variance exp(2 theta)
    assert covariance_from_params([0.4], "unstructured", 1)[0, 0] == pytest.approx(
        np.exp(0.8)
    )


@pytest.mark.parametrize("T", [2, 4])
def test_compound_symmetry_entries(T):
    log_sigma, z = 0.4, 0.9
    got = covariance_from_params([log_sigma, z], "compound_symmetry", T)
    s2 = np.exp(2 * log_sigma)
    a = 1 / (T - 1)
    rho = (1 + a) / (1 + np.exp(-z)) - a
    for j in range(T):
        for k in range(T):
            assert got[j, k] == pytest.approx(s2 if j == k else s2 * rho, rel=1e-14)
    # z -> -inf reaches the PD limit rho = -1/(T-1), z -> inf rho = 1
    lo = covariance_from_params([0.0, -40.0], "compound_symmetry", T)
    assert lo[0, 1] == pytest.approx(-1.0 / (T - 1), rel=1e-12)
    hi = covariance_from_params([0.0, 40.0], "compound_symmetry", T)
    assert hi[0, 1] == pytest.approx(1.0, rel=1e-12)


def test_ar1_entries():
    log_sigma, z, T = -0.3, 0.6, 4
    got = covariance_from_params([log_sigma, z], "ar1", T)
    s2, rho = np.exp(2 * log_sigma), z / np.sqrt(1 + z * z)
    for j in range(T):
        for k in range(T):
            assert got[j, k] == pytest.approx(s2 * rho ** abs(j - k), rel=1e-14)
    neg = covariance_from_params([0.0, -0.5], "ar1", 3)
    r = -0.5 / np.sqrt(1.25)
    np.testing.assert_allclose(
        neg, [[1, r, r * r], [r, 1, r], [r * r, r, 1]], rtol=1e-14
    )


def test_unknown_structure_is_an_error_naming_it():
    with pytest.raises(ValueError, match="unknown structure 'banded'"):
        covariance_from_params([0.0, 0.0], "banded", 3)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_cov_jacobian_matches_central_differences(structure):
    T = 3
    theta = (
        np.array([0.2, 0.4, -0.3, -0.1, 0.6, 0.3])
        if structure == "unstructured"
        else np.array([0.3, 0.7])
    )
    J = cov_jacobian(theta, structure, T)
    assert J.shape == (len(theta), T, T) and J.dtype == float
    h = 1e-6
    for k in range(len(theta)):
        e = np.zeros(len(theta))
        e[k] = h
        fd = (
            covariance_from_params(theta + e, structure, T)
            - covariance_from_params(theta - e, structure, T)
        ) / (2 * h)
        np.testing.assert_allclose(J[k], fd, atol=1e-8)


def test_cov_jacobian_closed_form_for_ar1():
    # d Sigma / d log sigma = 2 Sigma;
    # d Sigma_jk / dz = s2 |j-k| rho^(|j-k|-1) (1 + z^2)^(-3/2)
    theta = np.array([0.1, -0.4])
    J = cov_jacobian(theta, "ar1", 3)
    S = covariance_from_params(theta, "ar1", 3)
    np.testing.assert_allclose(J[0], 2 * S, rtol=1e-14)
    s2, rho = np.exp(0.2), -0.4 / np.sqrt(1.16)
    for j in range(3):
        for k in range(3):
            lag = abs(j - k)
            want = 0.0 if lag == 0 else s2 * lag * rho ** (lag - 1) * 1.16**-1.5
            assert J[1, j, k] == pytest.approx(want, rel=1e-13, abs=1e-15)


def test_start_params_round_trip_and_fallbacks():
    S = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.8], [0.5, 0.8, 2.0]])
    th = start_params(S, "unstructured")
    assert th.dtype == float and th.shape == (6,)
    np.testing.assert_allclose(
        covariance_from_params(th, "unstructured", 3), S, rtol=1e-13
    )
    L = np.linalg.cholesky(S)
    np.testing.assert_allclose(th[:3], np.log(np.diag(L)), rtol=1e-14)
    np.testing.assert_allclose(th[3:5], L[1:, 0] / np.diag(L)[1:], rtol=1e-14)
    # not positive definite: the diagonal alone
    bad = np.array([[4.0, 3.0], [3.0, 1.0]])
    thb = start_params(bad, "unstructured")
    np.testing.assert_allclose(thb, [np.log(2.0), 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(
        covariance_from_params(thb, "unstructured", 2), np.diag([4.0, 1.0])
    )
    # single precision in, double precision out
    th32 = start_params(S.astype(np.float32), "unstructured")
    assert th32.dtype == np.float64
    np.testing.assert_allclose(th32, th, rtol=1e-6)
    # homogeneous structures: log of the root mean variance, then the correlation
    for structure in ("compound_symmetry", "ar1"):
        th2 = start_params(S, structure)
        assert th2[0] == pytest.approx(0.5 * np.log(3.0), rel=1e-14)
        R = covariance_from_params(th2, structure, 3) / 3.0
        assert np.all(np.linalg.eigvalsh(R) > 0)


# ------------------------------------------------------------------- the criterion
def _data():
    """Seven subjects over T = 3 visits, some visits missing, rows shuffled."""
    rng = np.random.default_rng(11)
    visits = {
        0: [0, 1, 2],
        1: [0, 1, 2],
        2: [0, 2],
        3: [0, 1],
        4: [0, 1, 2],
        5: [1],
        6: [0, 2],
    }
    subj, vis = [], []
    for s, vv in visits.items():
        subj += [s] * len(vv)
        vis += vv
    subj, vis = np.array(subj), np.array(vis)
    perm = rng.permutation(len(subj))
    subj, vis = subj[perm], vis[perm]
    n = len(subj)
    trt = (subj % 2).astype(float)
    X = np.column_stack([np.ones(n), vis.astype(float), trt * vis])
    y = 30 - 1.5 * vis - 0.4 * trt * vis + rng.normal(0, 1.5, n)
    return y, X, subj, vis


SIGMA = np.array([[2.0, 0.9, 0.5], [0.9, 2.5, 1.1], [0.5, 1.1, 3.0]])


def _dense_reml(Sigma, y, X, subj, vis):
    """-2 REML log-likelihood of y ~ N(X beta, V), V block diagonal by subject."""
    n = len(y)
    V = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if subj[i] == subj[j]:
                V[i, j] = Sigma[vis[i], vis[j]]
    Vinv = np.linalg.inv(V)
    C = X.T @ Vinv @ X
    beta = np.linalg.solve(C, X.T @ Vinv @ y)
    r = y - X @ beta
    p = X.shape[1]
    value = (
        np.linalg.slogdet(V)[1]
        + np.linalg.slogdet(C)[1]
        + r @ Vinv @ r
        + (n - p) * np.log(2 * np.pi)
    )
    return value, beta, C


def test_build_patterns_groups_subjects_by_observed_visits():
    y, X, subj, vis = _data()
    pats = build_patterns(y, X, subj, vis)
    assert all(isinstance(p, Pattern) for p in pats)
    # first appearance in subject order: 0 (full), 2 (0, 2), 3 (0, 1), 5 (1)
    assert [p.idx.tolist() for p in pats] == [[0, 1, 2], [0, 2], [0, 1], [1]]
    members = {(0, 1, 2): [0, 1, 4], (0, 2): [2, 6], (0, 1): [3], (1,): [5]}
    for p in pats:
        who = members[tuple(p.idx)]
        m, d = len(who), len(p.idx)
        assert p.rows.shape == (m, d) and p.Y.shape == (m, d) and p.X.shape == (m, d, 3)
        for a, s in enumerate(who):
            for b, v in enumerate(p.idx):
                row = int(np.flatnonzero((subj == s) & (vis == v))[0])
                assert p.rows[a, b] == row
                assert p.Y[a, b] == y[row]
                np.testing.assert_array_equal(p.X[a, b], X[row])
    assert sum(p.rows.size for p in pats) == len(y)
    # visit codes of any integer type give intp visit indices
    pats32 = build_patterns(y, X, subj.astype(np.int32), vis.astype(np.int32))
    assert [p.idx.dtype for p in pats32] == [np.dtype(np.intp)] * 4
    assert [p.idx.tolist() for p in pats32] == [[0, 1, 2], [0, 2], [0, 1], [1]]


def test_reml_criterion_equals_the_dense_gls_likelihood():
    y, X, subj, vis = _data()
    pats = build_patterns(y, X, subj, vis)
    value, beta, C = _dense_reml(SIGMA, y, X, subj, vis)
    ev = evaluate_reml(SIGMA, pats, False)
    assert isinstance(ev, RemlEval)
    assert ev.value == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(ev.beta, beta, rtol=1e-10)
    np.testing.assert_allclose(ev.C, C, rtol=1e-12)
    np.testing.assert_allclose(ev.Cinv, np.linalg.inv(C), rtol=1e-10)
    np.testing.assert_array_equal(ev.C, ev.C.T)
    np.testing.assert_array_equal(ev.Cinv, ev.Cinv.T)
    assert ev.grad_sigma is None
    v2, b2, cov_beta, grad = mmrm_reml_criterion(SIGMA, pats)
    assert v2 == ev.value and grad is None
    np.testing.assert_array_equal(b2, ev.beta)
    np.testing.assert_array_equal(cov_beta, ev.Cinv)


def test_reml_gradient_equals_central_differences_of_the_criterion():
    y, X, subj, vis = _data()
    pats = build_patterns(y, X, subj, vis)
    value, beta, cov_beta, grad = mmrm_reml_criterion(SIGMA, pats, gradient=True)
    ev = evaluate_reml(SIGMA, pats, True)
    np.testing.assert_array_equal(ev.grad_sigma, grad)
    assert value == pytest.approx(_dense_reml(SIGMA, y, X, subj, vis)[0], rel=1e-12)
    assert grad.shape == (3, 3)
    np.testing.assert_array_equal(grad, grad.T)
    h = 1e-5
    for j in range(3):
        for k in range(j + 1):
            E = np.zeros((3, 3))
            E[j, k] = E[k, j] = h
            fd = (
                _dense_reml(SIGMA + E, y, X, subj, vis)[0]
                - _dense_reml(SIGMA - E, y, X, subj, vis)[0]
            ) / (2 * h)
            # a symmetric step moves both (j, k) and (k, j)
            want = fd if j == k else fd / 2
            assert grad[j, k] == pytest.approx(want, rel=1e-6, abs=1e-7)


def test_reml_gradient_of_an_unvisited_visit_is_zero():
    y, X, subj, vis = _data()
    keep = vis != 2
    pats = build_patterns(y[keep], X[keep][:, :2], subj[keep], vis[keep])
    _, _, _, grad = mmrm_reml_criterion(SIGMA, pats, gradient=True)
    assert not grad[2].any() and not grad[:, 2].any()


def test_reml_rejects_a_covariance_that_is_not_positive_definite():
    y, X, subj, vis = _data()
    pats = build_patterns(y, X, subj, vis)
    bad = SIGMA.copy()
    bad[0, 1] = bad[1, 0] = 5.0
    with pytest.raises(np.linalg.LinAlgError):
        mmrm_reml_criterion(bad, pats)


def test_contrast_variance_grad_equals_central_differences():
    y, X, subj, vis = _data()
    pats = build_patterns(y, X, subj, vis)
    c = np.array([0.0, 1.0, 2.0])

    def var(S):
        return c @ np.linalg.inv(_dense_reml(S, y, X, subj, vis)[2]) @ c

    Cinv = evaluate_reml(SIGMA, pats, False).Cinv
    G = contrast_variance_grad(SIGMA, pats, Cinv, c)
    assert G.shape == (3, 3)
    np.testing.assert_allclose(G, G.T, atol=1e-15)
    h = 1e-5
    for j in range(3):
        for k in range(j + 1):
            E = np.zeros((3, 3))
            E[j, k] = E[k, j] = h
            fd = (var(SIGMA + E) - var(SIGMA - E)) / (2 * h)
            want = fd if j == k else fd / 2
            assert G[j, k] == pytest.approx(want, rel=1e-6, abs=1e-10)


# --------------------------------------------------------------- numerical Hessian
def test_numerical_hessian_of_a_smooth_function():
    # f = exp(a) b^2 + sin(b) c + c^3: Hessian in closed form
    def grad(t):
        a, b, c = t
        return np.array(
            [np.exp(a) * b**2, 2 * np.exp(a) * b + np.cos(b) * c, np.sin(b) + 3 * c**2]
        )

    t = np.array([0.3, -1.2, 2.5])
    a, b, c = t
    H = np.array(
        [
            [np.exp(a) * b**2, 2 * np.exp(a) * b, 0.0],
            [2 * np.exp(a) * b, 2 * np.exp(a) - np.sin(b) * c, np.cos(b)],
            [0.0, np.cos(b), 6 * c],
        ]
    )
    got = numerical_hessian(grad, t)
    assert got.shape == (3, 3)
    np.testing.assert_allclose(got, H, rtol=1e-8, atol=1e-9)


def test_numerical_hessian_steps_and_symmetrisation():
    # a linear "gradient" g(t) = M t with M not symmetric: central differences are
    # exact, and the result is (M + M')/2
    M = np.array([[1.0, 2.0], [6.0, -3.0]])
    seen = []

    def grad(t):
        seen.append(np.array(t, dtype=float))
        return M @ t

    t = np.array([0.5, -40.0])
    H = numerical_hessian(grad, t)
    np.testing.assert_allclose(H, [[1.0, 4.0], [4.0, -3.0]], rtol=1e-9)
    np.testing.assert_array_equal(H, H.T)
    # central steps of 1e-5 * max(1, |theta_j|) along each coordinate in turn
    assert len(seen) == 4
    steps = [s - t for s in seen]
    np.testing.assert_allclose(steps[0], [1e-5, 0.0], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(steps[1], [-1e-5, 0.0], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(steps[2], [0.0, 4e-4], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(steps[3], [0.0, -4e-4], rtol=1e-9, atol=1e-15)
