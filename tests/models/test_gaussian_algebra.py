"""The conditional-normal forecast algebra (``alsprog.models._gaussian``) against
dense, independent computations: explicit multivariate-normal conditioning, loops
over rows, and numerical integration of the censored normal's mean and CRPS."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from alsprog.models._gaussian import (
    DEFAULT_OUTCOME,
    SubjectSums,
    censored_normal_mean,
    conditional_effects,
    crps_censored_normal,
    fixed_effect_variance,
    normal_band,
    psd_sqrt,
    subject_sums,
)

INF = np.inf


def _history(seed: int = 0):
    rng = np.random.default_rng(seed)
    n, p, q, G = 9, 3, 2, 4
    X = rng.normal(size=(n, p))
    Z = rng.normal(size=(n, q))
    y = rng.normal(size=n) * 3.0
    groups = np.array([0, 0, 0, 1, 1, 3, 3, 3, 3])  # subject 2 has no rows
    return X, Z, y, groups, G


# ------------------------------------------------------------------ subject sums
def test_subject_sums_match_loops_and_are_zero_without_rows():
    X, Z, y, groups, G = _history()
    s = subject_sums(X, Z, y, groups, G)
    assert isinstance(s, SubjectSums)
    assert (
        s.ZtZ.shape == (G, 2, 2) and s.ZtX.shape == (G, 2, 3) and s.Zty.shape == (G, 2)
    )
    for g in range(G):
        rows = groups == g
        Zg, Xg, yg = Z[rows], X[rows], y[rows]
        np.testing.assert_allclose(s.ZtZ[g], Zg.T @ Zg, atol=1e-12)
        np.testing.assert_allclose(s.ZtX[g], Zg.T @ Xg, atol=1e-12)
        np.testing.assert_allclose(s.Zty[g], Zg.T @ yg, atol=1e-12)
    assert not s.ZtZ[2].any() and not s.ZtX[2].any() and not s.Zty[2].any()


# ---------------------------------------------------------------------- psd_sqrt
def test_psd_sqrt_reproduces_full_rank_singular_and_batched_matrices():
    A = np.array([[4.0, 1.2, 0.3], [1.2, 2.0, -0.4], [0.3, -0.4, 1.0]])
    L = psd_sqrt(A)
    np.testing.assert_allclose(L @ L.T, A, atol=1e-12)
    # rank one with a tiny negative eigenvalue from rounding: clipped, not nan
    v = np.array([1.0, 2.0, -1.0])
    S = np.outer(v, v) - 1e-14 * np.eye(3)
    Ls = psd_sqrt(S)
    assert np.isfinite(Ls).all()
    np.testing.assert_allclose(Ls @ Ls.T, np.outer(v, v), atol=1e-10)
    # an exactly zero matrix has a zero root
    assert not psd_sqrt(np.zeros((2, 2))).any()
    # batches: each matrix on its own
    B = np.stack([A, np.diag([9.0, 1.0, 0.25]), np.outer(v, v)])
    LB = psd_sqrt(B)
    for k in range(3):
        np.testing.assert_allclose(LB[k] @ LB[k].T, B[k], atol=1e-10)
    np.testing.assert_allclose(np.abs(LB[1]).max(axis=0), [0.5, 1.0, 3.0], atol=0)


# ------------------------------------------------------------ conditional effects
def _dense_conditional(X, Z, y, beta, D, s2):
    """b | y by explicit inversion of V = Z D Z' + s2 I."""
    V = Z @ D @ Z.T + s2 * np.eye(len(y))
    Vinv = np.linalg.inv(V)
    mean = D @ Z.T @ Vinv @ (y - X @ beta)
    cov = D - D @ Z.T @ Vinv @ Z @ D
    KX = D @ Z.T @ Vinv @ X
    return mean, cov, KX


@pytest.mark.parametrize(
    "D",
    [
        np.array([[2.5, 0.6], [0.6, 0.8]]),
        np.array([[2.0, 0.0], [0.0, 0.0]]),  # boundary fit: a zero slope variance
    ],
    ids=["full_rank", "singular"],
)
def test_conditional_effects_equal_explicit_mvn_conditioning(D):
    X, Z, y, groups, G = _history(1)
    beta = np.array([0.5, -1.0, 2.0])
    s2 = 1.7
    s = subject_sums(X, Z, y, groups, G)
    mean, cov, KX = conditional_effects(s, beta, D, s2)
    assert mean.shape == (G, 2) and cov.shape == (G, 2, 2) and KX.shape == (G, 2, 3)
    for g in range(G):
        rows = groups == g
        if not rows.any():  # no history: the prior
            np.testing.assert_allclose(mean[g], 0.0, atol=1e-12)
            np.testing.assert_allclose(cov[g], D, atol=1e-12)
            np.testing.assert_allclose(KX[g], 0.0, atol=1e-12)
            continue
        m, c, k = _dense_conditional(X[rows], Z[rows], y[rows], beta, D, s2)
        np.testing.assert_allclose(mean[g], m, atol=1e-10)
        np.testing.assert_allclose(cov[g], c, atol=1e-10)
        np.testing.assert_allclose(KX[g], k, atol=1e-10)


def test_conditional_effects_broadcast_over_posterior_draws():
    X, Z, y, groups, G = _history(2)
    s = subject_sums(X, Z, y, groups, G)
    betas = np.array([[0.0, 1.0, -1.0], [2.0, 0.5, 0.0]])
    Ds = np.array([[[1.0, 0.2], [0.2, 0.5]], [[3.0, -0.5], [-0.5, 1.5]]])
    s2s = np.array([0.5, 2.0])
    mean, cov, KX = conditional_effects(s, betas, Ds, s2s)
    assert (
        mean.shape == (2, G, 2)
        and cov.shape == (2, G, 2, 2)
        and KX.shape == (2, G, 2, 3)
    )
    for d in range(2):
        for g in (0, 1, 3):
            rows = groups == g
            m, c, k = _dense_conditional(
                X[rows], Z[rows], y[rows], betas[d], Ds[d], s2s[d]
            )
            np.testing.assert_allclose(mean[d, g], m, atol=1e-10)
            np.testing.assert_allclose(cov[d, g], c, atol=1e-10)
            np.testing.assert_allclose(KX[d, g], k, atol=1e-10)


# ---------------------------------------------------------- fixed-effect variance
def test_fixed_effect_variance_matches_a_row_loop():
    rng = np.random.default_rng(3)
    n, q, p = 5, 2, 3
    Xf, Zf, KX = (
        rng.normal(size=(n, p)),
        rng.normal(size=(n, q)),
        rng.normal(size=(n, q, p)),
    )
    M = rng.normal(size=(p, p))
    cov_beta = M @ M.T
    got = fixed_effect_variance(Xf, Zf, KX, cov_beta)
    assert got.shape == (n,) and got.dtype == float
    for i in range(n):
        xe = Xf[i] - Zf[i] @ KX[i]
        assert got[i] == pytest.approx(float(xe @ cov_beta @ xe), rel=1e-12)


# -------------------------------------------------------- censored normal: mean
def _quad_censored_mean(mu: float, sd: float, low: float, high: float) -> float:
    """E[clip(N(mu, sd^2), low, high)] by quadrature of the density."""
    f = norm(mu, sd)
    inner = integrate.quad(lambda x: x * f.pdf(x), low, high, points=None, limit=200)[0]
    below = low * f.cdf(low) if np.isfinite(low) else 0.0
    above = high * f.sf(high) if np.isfinite(high) else 0.0
    return below + inner + above


@pytest.mark.parametrize(
    ("mu", "sd", "low", "high"),
    [
        (47.0, 2.0, 0.0, 48.0),
        (1.0, 3.0, 0.0, 48.0),
        (24.0, 30.0, 0.0, 48.0),
        (-2.0, 1.5, 0.0, INF),
        (5.0, 2.5, -INF, 4.0),
        (0.7, 1.3, -INF, INF),
        (-1.0, 2.0, -3.0, 1.5),
        (0.3, 0.4, 0.0, 1.0),  # a scale under 1
    ],
)
def test_censored_normal_mean_equals_quadrature(mu, sd, low, high):
    got = censored_normal_mean(np.array([mu]), np.array([sd]), bounds=(low, high))
    assert got.shape == (1,)
    assert got[0] == pytest.approx(_quad_censored_mean(mu, sd, low, high), abs=1e-9)


def test_censored_normal_mean_far_beyond_a_finite_bound_is_the_bound():
    # all mass below low (F(a) = 1, F(b) = 1): the mean is low itself
    got = censored_normal_mean(
        np.array([-100.0, 200.0]), np.array([1.0, 1.0]), bounds=(0.0, 48.0)
    )
    np.testing.assert_allclose(got, [0.0, 48.0], atol=1e-12)


def test_censored_normal_mean_at_zero_scale_is_the_clipped_location():
    loc = np.array([-3.0, 10.0, 60.0, 48.0])
    got = censored_normal_mean(loc, np.zeros(4), bounds=(0.0, 48.0))
    np.testing.assert_array_equal(got, [0.0, 10.0, 48.0, 48.0])
    got = censored_normal_mean(loc, np.array([0.0, 1.0, 0.0, 0.0]), bounds=(-INF, INF))
    np.testing.assert_array_equal(got, loc)


def test_censored_normal_mean_default_bounds_are_the_alsfrs_r_total_range():
    assert DEFAULT_OUTCOME == "alsfrs_r_total"
    loc, sd = np.array([46.5, 1.0]), np.array([2.0, 2.0])
    expected = [
        _quad_censored_mean(m, s, 0.0, 48.0) for m, s in zip(loc, sd, strict=True)
    ]
    np.testing.assert_allclose(censored_normal_mean(loc, sd), expected, atol=1e-9)
    np.testing.assert_allclose(
        censored_normal_mean(loc, sd, bounds=None), expected, atol=1e-9
    )


# ---------------------------------------------------------------- normal band
def test_normal_band_every_field_at_and_inside_the_bounds():
    loc = np.array([47.0, 24.0, -1.0, 1.0])
    sd = np.array([2.0, 3.0, 1.0, 0.0])
    level = 0.8
    z = norm.ppf(0.9)
    b = normal_band(loc, sd, level, bounds=(0.0, 48.0))
    assert set(b) == {"mean", "median", "lower", "upper"}
    np.testing.assert_allclose(b["median"], [47.0, 24.0, 0.0, 1.0], atol=0)
    np.testing.assert_allclose(
        b["lower"], [47.0 - 2 * z, 24.0 - 3 * z, 0.0, 1.0], rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        b["upper"], [48.0, 24.0 + 3 * z, -1.0 + z, 1.0], rtol=1e-12
    )
    expected_mean = [
        _quad_censored_mean(47.0, 2.0, 0.0, 48.0),
        _quad_censored_mean(24.0, 3.0, 0.0, 48.0),
        _quad_censored_mean(-1.0, 1.0, 0.0, 48.0),
        1.0,
    ]
    np.testing.assert_allclose(b["mean"], expected_mean, atol=1e-9)


def test_normal_band_unbounded_and_default_bounds():
    b = normal_band(np.array([-5.0]), np.array([2.0]), 0.95, bounds=(-INF, INF))
    z = norm.ppf(0.975)
    assert b["lower"][0] == pytest.approx(-5.0 - 2 * z, rel=1e-12)
    assert b["upper"][0] == pytest.approx(-5.0 + 2 * z, rel=1e-12)
    assert b["median"][0] == -5.0 and b["mean"][0] == pytest.approx(-5.0, abs=1e-12)
    d = normal_band(np.array([-5.0, 50.0]), np.array([2.0, 1.0]), 0.95)  # 0-48
    np.testing.assert_array_equal(d["median"], [0.0, 48.0])
    np.testing.assert_array_equal(d["lower"], [0.0, 48.0])
    np.testing.assert_array_equal(d["upper"], [0.0, 48.0])


# ---------------------------------------------------------------- censored CRPS
def _quad_crps(y: float, mu: float, sd: float, low: float, high: float) -> float:
    """CRPS of the censored normal: integral over [low, high] of (F - 1{x >= y})^2."""
    f = norm(mu, sd)
    left = (
        integrate.quad(lambda x: f.cdf(x) ** 2, low, y, limit=200)[0]
        if y > low
        else 0.0
    )
    right = (
        integrate.quad(lambda x: f.sf(x) ** 2, y, high, limit=200)[0]
        if y < high
        else 0.0
    )
    return left + right


@pytest.mark.parametrize(
    ("y", "mu", "sd", "low", "high"),
    [
        (45.0, 46.0, 3.0, 0.0, 48.0),
        (48.0, 46.0, 3.0, 0.0, 48.0),  # observation on the upper bound
        (0.0, 2.0, 2.5, 0.0, 48.0),  # observation on the lower bound
        (10.0, 30.0, 5.0, 0.0, 48.0),
        (3.3, 1.0, 2.0, 0.0, INF),
        (-4.0, 1.0, 2.0, -INF, 6.0),
    ],
)
def test_crps_censored_normal_equals_quadrature(y, mu, sd, low, high):
    got = crps_censored_normal(
        np.array([y]), np.array([mu]), np.array([sd]), bounds=(low, high)
    )
    assert got.shape == (1,)
    assert got[0] == pytest.approx(_quad_crps(y, mu, sd, low, high), abs=2e-5)


def _trapezoid_split(y, mu, sd, x):
    """The trapezoid rule on grid ``x`` with the point y inserted (F linear there)."""
    F = norm.cdf((x - mu) / max(sd, 1e-12))
    k = min(max(int(np.searchsorted(x, y)) - 1, 0), len(x) - 2)
    total = 0.0
    for j in range(len(x) - 1):
        a, b = x[j], x[j + 1]
        if j < k:
            total += 0.5 * (F[j] ** 2 + F[j + 1] ** 2) * (b - a)
        elif j > k:
            total += 0.5 * ((1 - F[j]) ** 2 + (1 - F[j + 1]) ** 2) * (b - a)
        else:
            Fy = F[j] + (F[j + 1] - F[j]) * (y - a) / (b - a)
            total += 0.5 * (F[j] ** 2 + Fy**2) * (y - a)
            total += 0.5 * ((1 - Fy) ** 2 + (1 - F[j + 1]) ** 2) * (b - y)
    return total


def test_crps_censored_normal_is_the_split_trapezoid_on_a_coarse_grid():
    ys = np.array([0.0, 1.0, 13.0, 24.5, 40.0, 48.0, 7.2])
    mus = np.array([3.0, 0.5, 20.0, 24.0, 45.0, 44.0, 7.0])
    sds = np.array([2.0, 1.0, 6.0, 3.0, 4.0, 2.0, 0.0])
    x = np.linspace(0.0, 48.0, 9)
    got = crps_censored_normal(ys, mus, sds, bounds=(0.0, 48.0), n_grid=9)
    expected = [_trapezoid_split(*a, x) for a in zip(ys, mus, sds, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_crps_one_sided_bound_reaches_12_sds_beyond_means_and_observations():
    # low = -inf is replaced by min(mu - 12 sd, y): here y = -30 lies further out
    ys, mus, sds = np.array([-30.0, 2.0]), np.array([1.0, 3.0]), np.array([1.0, 0.5])
    got = crps_censored_normal(ys, mus, sds, bounds=(-INF, 6.0), n_grid=7)
    x = np.linspace(-30.0, 6.0, 7)
    expected = [_trapezoid_split(*a, x) for a in zip(ys, mus, sds, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # and the mean minus 12 SDs when it is the furthest
    got = crps_censored_normal(
        np.array([0.0]), np.array([1.0]), np.array([2.0]), bounds=(-INF, 6.0), n_grid=7
    )
    x = np.linspace(1.0 - 24.0, 6.0, 7)
    assert got[0] == pytest.approx(_trapezoid_split(0.0, 1.0, 2.0, x), rel=1e-12)
    # high = +inf is replaced by max(mu + 12 sd, y)
    got = crps_censored_normal(
        np.array([50.0, 0.5]),
        np.array([1.0, 2.0]),
        np.array([1.0, 1.0]),
        bounds=(0.0, INF),
        n_grid=7,
    )
    x = np.linspace(0.0, 50.0, 7)
    expected = [_trapezoid_split(50.0, 1.0, 1.0, x), _trapezoid_split(0.5, 2.0, 1.0, x)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    got = crps_censored_normal(
        np.array([0.5]), np.array([2.0]), np.array([1.5]), bounds=(0.0, INF), n_grid=7
    )
    x = np.linspace(0.0, 2.0 + 18.0, 7)
    assert got[0] == pytest.approx(_trapezoid_split(0.5, 2.0, 1.5, x), rel=1e-12)


def test_crps_unbounded_is_the_normal_closed_form_and_handles_zero_scale():
    ys = np.array([0.3, -2.0, 5.0])
    mus = np.array([0.0, 1.0, 5.0])
    sds = np.array([1.0, 2.5, 0.7])
    z = (ys - mus) / sds
    exact = sds * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    got = crps_censored_normal(ys, mus, sds, bounds=(-INF, INF))
    np.testing.assert_allclose(got, exact, rtol=1e-13)
    # a point forecast: the absolute error
    got = crps_censored_normal(
        np.array([3.0]), np.array([1.0]), np.array([0.0]), bounds=(-INF, INF)
    )
    assert got[0] == pytest.approx(2.0, abs=1e-11)


def test_crps_chunks_cover_every_row():
    n = 4101  # more than two chunks of 2000
    rng = np.random.default_rng(5)
    mus = rng.uniform(5, 43, n)
    ys = np.clip(mus + rng.normal(0, 3, n), 0, 48)
    sds = np.full(n, 3.0)
    got = crps_censored_normal(ys, mus, sds, bounds=(0.0, 48.0), n_grid=5)
    x = np.linspace(0.0, 48.0, 5)
    for i in (0, 1999, 2000, 2001, 3999, 4000, 4100):
        assert got[i] == pytest.approx(
            _trapezoid_split(ys[i], mus[i], sds[i], x), rel=1e-12
        )


def test_infinite_bounds_raise_no_floating_point_warning():
    # -inf * 0 beyond an infinite bound is masked, not computed into a warning
    loc, sd = np.array([1.0, -2.0]), np.array([2.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for bounds in ((-INF, INF), (-INF, 3.0), (0.0, INF), (0.0, 48.0)):
            out = censored_normal_mean(loc, sd, bounds=bounds)
            assert np.isfinite(out).all()


def test_crps_default_grid_is_2001_points():
    ys, mus, sds = np.array([44.0, 3.0]), np.array([46.0, 5.0]), np.array([3.0, 2.0])
    np.testing.assert_array_equal(
        crps_censored_normal(ys, mus, sds, bounds=(0.0, 48.0)),
        crps_censored_normal(ys, mus, sds, bounds=(0.0, 48.0), n_grid=2001),
    )


def test_crps_observation_a_rounding_error_outside_the_range_scores_as_at_the_bound():
    mus, sds = np.array([46.0, 2.0]), np.array([3.0, 2.0])
    at = crps_censored_normal(
        np.array([48.0, 0.0]), mus, sds, bounds=(0.0, 48.0), n_grid=9
    )
    off = crps_censored_normal(
        np.array([48.0 + 1e-12, -1e-12]), mus, sds, bounds=(0.0, 48.0), n_grid=9
    )
    np.testing.assert_allclose(off, at, atol=1e-10)


def test_results_are_double_precision_whatever_the_input_precision():
    ld = np.longdouble
    X, Z, y, groups, G = _history(4)
    s = subject_sums(X, Z, y, groups, G)
    beta, D, s2 = np.array([0.5, -1.0, 2.0]), np.array([[2.0, 0.3], [0.3, 0.7]]), 1.3
    want = conditional_effects(s, beta, D, s2)
    got = conditional_effects(s, beta.astype(ld), D.astype(ld), ld(s2))
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)
    loc, sd = np.array([1.0, 47.0, 20.0]), np.array([2.0, 3.0, 0.0])
    for bounds in ((0.0, 48.0), (-INF, INF)):
        m = censored_normal_mean(loc.astype(ld), sd.astype(ld), bounds=bounds)
        assert m.dtype == np.float64
        np.testing.assert_allclose(
            m, censored_normal_mean(loc, sd, bounds=bounds), rtol=1e-15
        )
        obs = np.array([0.5, 48.0, 21.0])
        c = crps_censored_normal(
            obs.astype(ld), loc.astype(ld), sd.astype(ld), bounds=bounds
        )
        assert c.dtype == np.float64
        np.testing.assert_allclose(
            c, crps_censored_normal(obs, loc, sd, bounds=bounds), rtol=1e-15
        )
    rng = np.random.default_rng(6)
    Xf, Zf, KX = (
        rng.normal(size=(3, 2)),
        rng.normal(size=(3, 2)),
        rng.normal(size=(3, 2, 2)),
    )
    cb = np.array([[1.0, 0.2], [0.2, 0.5]])
    v = fixed_effect_variance(
        Xf.astype(ld), Zf.astype(ld), KX.astype(ld), cb.astype(ld)
    )
    assert v.dtype == np.float64
    np.testing.assert_allclose(v, fixed_effect_variance(Xf, Zf, KX, cb), rtol=1e-14)
