"""Joint model numerics: layout, exposure, likelihood against brute force, Newton.

Every expected value is computed here independently of alsprog: the piecewise
exposure table by hand, the likelihood as scipy's multivariate normal density plus
the piecewise-exponential survival written out (association zero) or as a dense-grid
integral over the random effects (association non-zero), derivatives by finite
differences, Newton iterates by hand on functions whose iterates are known.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from alsprog.models.joint._numerics import (
    JointData,
    JointLayout,
    event_breaks,
    exposure,
    inverse_information,
    make_objective,
    newton_polish,
)

# --------------------------------------------------------------------- layout


def test_layout_sizes_and_slices():
    lay = JointLayout(p=3, q=2, r=1, k=4)
    assert lay.n_chol == 3
    assert lay.size == 3 + 3 + 1 + 1 + 2 + 4
    assert lay.slices() == {
        "beta": slice(0, 3),
        "chol": slice(3, 6),
        "log_sigma": slice(6, 7),
        "gamma": slice(7, 8),
        "alpha": slice(8, 10),
        "log_hazard": slice(10, 14),
    }
    big = JointLayout(p=1, q=3, r=0, k=2)
    assert big.n_chol == 6
    assert big.size == 1 + 6 + 1 + 0 + 3 + 2
    assert big.slices() == {
        "beta": slice(0, 1),
        "chol": slice(1, 7),
        "log_sigma": slice(7, 8),
        "gamma": slice(8, 8),
        "alpha": slice(8, 11),
        "log_hazard": slice(11, 13),
    }


def test_chol_index_is_the_row_major_lower_triangle():
    rows, cols = JointLayout(p=1, q=3, r=0, k=1).chol_index()
    assert rows.tolist() == [0, 1, 1, 2, 2, 2]
    assert cols.tolist() == [0, 0, 1, 0, 1, 2]


def test_unpack_chol_exponentiates_the_diagonal_only():
    lay = JointLayout(p=1, q=3, r=0, k=1)
    packed = np.array([np.log(2.0), -0.5, np.log(3.0), 0.25, 1.5, np.log(0.5)])
    keep = packed.copy()
    L = lay.unpack_chol(packed)
    expected = np.array([[2.0, 0.0, 0.0], [-0.5, 3.0, 0.0], [0.25, 1.5, 0.5]])
    np.testing.assert_allclose(L, expected, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(packed, keep)  # the input is not modified
    # whole numbers in: still the float exponential
    L1 = JointLayout(p=1, q=1, r=0, k=1).unpack_chol(np.array([1]))
    assert L1.dtype == np.float64
    assert L1[0, 0] == pytest.approx(np.e, rel=1e-15)


def test_pack_chol_inverts_unpack():
    lay = JointLayout(p=1, q=2, r=1, k=1)
    L = np.array([[1.5, 0.0], [-0.7, 0.3]])
    packed = lay.pack_chol(L @ L.T)
    # the ridge is 1e-8 of the mean variance: relative error ~1e-8
    np.testing.assert_allclose(packed, [np.log(1.5), -0.7, np.log(0.3)], atol=1e-7)
    np.testing.assert_allclose(lay.unpack_chol(packed), L, atol=1e-7)
    assert packed.dtype == np.float64


def test_pack_chol_ridge_is_1e8_of_the_mean_variance_at_least_1e8():
    one = JointLayout(p=1, q=1, r=0, k=1)
    # large variance: ridge 1e-8 * 1e6 = 1e-2
    assert one.pack_chol(np.array([[1e6]]))[0] == pytest.approx(
        0.5 * np.log(1e6 + 1e-2), abs=1e-13
    )
    two = JointLayout(p=1, q=2, r=0, k=1)
    # mean variance (4e6 + 2e6) / 2 = 3e6: ridge 3e-2 on each diagonal entry
    got = two.pack_chol(np.diag([4e6, 2e6]))
    np.testing.assert_allclose(
        got, [0.5 * np.log(4e6 + 3e-2), 0.0, 0.5 * np.log(2e6 + 3e-2)], atol=1e-13
    )
    # singular (zero) covariance: ridge 1e-8, factor 1e-4 on the diagonal
    zero = two.pack_chol(np.zeros((2, 2)))
    np.testing.assert_allclose(zero, [np.log(1e-4), 0.0, np.log(1e-4)], atol=1e-9)
    # small variances: the ridge stays 1e-8 (not 1e-8 of the mean variance)
    small = one.pack_chol(np.array([[0.01]]))[0]
    assert small == pytest.approx(0.5 * np.log(0.01 + 1e-8), abs=1e-13)


def test_pack_chol_works_in_float64_whatever_the_input_type():
    """A float32 covariance is converted first: its trace 2^25 + 1 (not
    representable in float32) sets the ridge, (2^25 + 1) / 2 * 1e-8."""
    two = JointLayout(p=1, q=2, r=0, k=1)
    got = two.pack_chol(np.diag(np.array([2.0**25, 1.0], dtype=np.float32)))
    ridge = 1e-8 * (2.0**25 + 1.0) / 2.0
    np.testing.assert_allclose(
        got,
        [0.5 * np.log(2.0**25 + ridge), 0.0, 0.5 * np.log(1.0 + ridge)],
        rtol=0,
        atol=1e-13,
    )
    assert got.dtype == np.float64
    # whole numbers (a nested list) pack as the same floats
    np.testing.assert_allclose(
        two.pack_chol([[4, 2], [2, 5]]),
        two.pack_chol(np.array([[4.0, 2.0], [2.0, 5.0]])),
        rtol=0,
        atol=0,
    )


# ------------------------------------------------------------------- exposure


def test_exposure_matches_a_hand_table():
    breaks = np.array([0.0, 1.0, 2.5, 4.0])
    times = np.array([0.0, 0.3, 1.0, 2.5, 3.0, 4.0, 6.0, -0.5])
    e, k = exposure(times, breaks)
    expected = [
        [0.0, 0.0, 0.0],
        [0.3, 0.0, 0.0],
        [1.0, 0.0, 0.0],  # a time on a break starts the next interval
        [1.0, 1.5, 0.0],
        [1.0, 1.5, 0.5],
        [1.0, 1.5, 1.5],
        [1.0, 1.5, 1.5],  # beyond the last break: last interval, capped exposure
        [0.0, 0.0, 0.0],  # before the first break: nothing at risk
    ]
    np.testing.assert_allclose(e, expected, rtol=0, atol=1e-15)
    assert k.tolist() == [0, 0, 1, 2, 2, 2, 2, 0]
    assert k.dtype == np.intp
    assert e.shape == (8, 3)


def test_exposure_with_an_infinite_last_break_and_integer_times():
    e, k = exposure(np.array([5, 2]), np.array([0.0, 2.0, np.inf]))
    assert e.tolist() == [[2.0, 3.0], [2.0, 0.0]]
    assert k.tolist() == [1, 1]


def test_exposure_of_object_times_is_float():
    """Times from an object column (pandas) are read as numbers."""
    times = np.array([0.5, 2.5], dtype=object)
    e, k = exposure(times, np.array([0.0, 1.0, 2.0, np.inf]))
    assert e.dtype == np.float64
    assert e.tolist() == [[0.5, 0.0, 0.0], [1.0, 1.0, 0.5]]
    assert k.tolist() == [0, 2]


def test_exposure_of_times_given_as_text():
    """Text times ('10.0') are read as numbers, also when finding the interval
    (as text '10.0' would sort before '2')."""
    breaks = np.array([0.0, 2.0, 5.0, np.inf])
    e, k = exposure(np.array(["10.0", "3", "0.5"]), breaks)
    assert e.dtype == np.float64
    assert e.tolist() == [[2.0, 3.0, 5.0], [2.0, 1.0, 0.0], [0.5, 0.0, 0.0]]
    assert k.tolist() == [2, 1, 0]


# --------------------------------------------------------------- event breaks


def test_event_breaks_are_the_quantiles_of_the_event_times():
    got = event_breaks(np.arange(1.0, 9.0), 4)
    # numpy's default (linear) quantiles at 1/4, 1/2, 3/4 of 1..8: 2.75, 4.5, 6.25
    assert got.tolist() == [0.0, 2.75, 4.5, 6.25, np.inf]
    assert event_breaks(np.array([3.0, 1.0, 2.0]), 2).tolist() == [0.0, 2.0, np.inf]


def test_event_breaks_drop_duplicates_and_zeros():
    assert event_breaks(np.array([1.0, 1, 1, 1, 5]), 4).tolist() == [0.0, 1.0, np.inf]
    # quantiles at 1/3 and 2/3 of [0, 0, 0, 0, 1, 2]: 0 and 1/3; zero is dropped
    got = event_breaks(np.array([0.0, 0, 0, 0, 1, 2]), 3)
    np.testing.assert_allclose(got, [0.0, 1.0 / 3.0, np.inf], rtol=1e-15)
    assert event_breaks(np.array([1.0, 2.0]), 1).tolist() == [0.0, np.inf]


# ------------------------------------------------------------------ JointData


def test_joint_data_from_stats_converts_types():
    stats = types.SimpleNamespace(
        ZtZ=np.ones((2, 1, 1)),
        ZtX=np.full((2, 1, 1), 2.0),
        Zty=np.full((2, 1), 3.0),
        XtX=np.full((1, 1), 4.0),
        Xty=np.full(1, 5.0),
        yty=np.float32(30.5),
        n=np.int64(7),
    )
    expo, interval = np.array([[1.0], [2.0]]), np.array([0, 0], dtype=np.intp)
    data = JointData.from_stats(
        stats, np.array([[1], [2]]), np.array([True, False]), expo, interval
    )
    assert data.ZtZ is stats.ZtZ and data.ZtX is stats.ZtX and data.Zty is stats.Zty
    assert data.XtX is stats.XtX and data.Xty is stats.Xty
    assert type(data.yty) is float and data.yty == 30.5
    assert type(data.n_obs) is int and data.n_obs == 7
    assert data.W.dtype == np.float64 and data.W.tolist() == [[1.0], [2.0]]
    assert data.event.dtype == np.float64 and data.event.tolist() == [1.0, 0.0]
    assert data.exposure is expo and data.interval is interval


# ----------------------------------------------------------------- likelihood

#: Four subjects: visit months, outcome, event covariate, event/censoring time, event.
SUBJECTS = [
    (np.array([0.0, 1.0, 2.0, 4.0]), np.array([41.2, 39.0, 38.1, 35.3]), 0.5, 4.5, 1),
    (np.array([0.0, 2.0]), np.array([36.4, 35.9]), -1.0, 3.0, 0),
    (np.array([0.0, 1.0, 3.0]), np.array([44.0, 43.1, 41.7]), 1.2, 7.0, 1),
    (np.array([0.0, 0.5]), np.array([38.8, 38.0]), 0.0, 1.0, 1),
]
LAYOUT = JointLayout(p=3, q=2, r=1, k=3)
BETA = np.array([39.5, -0.8, -1.5])
L_TRUE = np.array([[2.0, 0.0], [0.15, 0.4]])
SIGMA = 1.3
GAMMA = np.array([0.4])
ALPHA = np.array([0.1, -1.5])
HAZ = np.array([0.05, 0.1, 0.08])


def _phi(alpha: np.ndarray = ALPHA) -> np.ndarray:
    sl = LAYOUT.slices()
    phi = np.zeros(LAYOUT.size)
    phi[sl["beta"]] = BETA
    phi[sl["chol"]] = [np.log(L_TRUE[0, 0]), L_TRUE[1, 0], np.log(L_TRUE[1, 1])]
    phi[sl["log_sigma"]] = np.log(SIGMA)
    phi[sl["gamma"]] = GAMMA
    phi[sl["alpha"]] = alpha
    phi[sl["log_hazard"]] = np.log(HAZ)
    return phi


def _designs(months: np.ndarray, x: float) -> tuple[np.ndarray, np.ndarray]:
    X = np.column_stack([np.ones_like(months), months, np.full_like(months, x)])
    Z = X[:, :2]
    return X, Z


def _tiny_data() -> JointData:
    """Sufficient statistics summed by hand from the visit rows."""
    ZtZ, ZtX, Zty = [], [], []
    XtX, Xty, yty, n = np.zeros((3, 3)), np.zeros(3), 0.0, 0
    for months, y, x, _, _ in SUBJECTS:
        X, Z = _designs(months, x)
        ZtZ.append(Z.T @ Z)
        ZtX.append(Z.T @ X)
        Zty.append(Z.T @ y)
        XtX += X.T @ X
        Xty += X.T @ y
        yty += float(y @ y)
        n += len(y)
    times = np.array([s[3] for s in SUBJECTS])
    # exposure and interval written out for the breaks 0, 2, 5, inf
    expo = np.array([[2.0, 2.5, 0.0], [2.0, 1.0, 0.0], [2.0, 3.0, 2.0], [1.0, 0, 0]])
    interval = np.array([1, 1, 2, 0], dtype=np.intp)
    assert times.tolist() == [4.5, 3.0, 7.0, 1.0]
    return JointData(
        ZtZ=np.array(ZtZ),
        ZtX=np.array(ZtX),
        Zty=np.array(Zty),
        XtX=XtX,
        Xty=Xty,
        yty=yty,
        n_obs=n,
        W=np.array([[s[2]] for s in SUBJECTS]),
        event=np.array([float(s[4]) for s in SUBJECTS]),
        exposure=expo,
        interval=interval,
    )


def _gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor-product standard-normal Gauss-Hermite nodes and log weights (q = 2)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    nodes = np.array([[a, b] for a in x for b in x])
    return nodes, np.log(np.array([wa * wb for wa in w for wb in w]))


# The objectives are built in each test, not shared at module scope: mutmut runs
# for a mutant of ``_build`` only the tests that call it themselves.
@pytest.fixture
def objective():
    nodes, lw = _gauss_hermite(20)
    return make_objective(_tiny_data(), LAYOUT, nodes, lw)


def _survival_loglik(lin: np.ndarray, t: float, d: int, haz: np.ndarray) -> np.ndarray:
    """Piecewise-constant hazard written out: d log h(t) + d lin - H0(t) exp(lin)."""
    edges = [0.0, 2.0, 5.0]
    H0, h_t = 0.0, haz[0]
    for j, lo in enumerate(edges):
        hi = edges[j + 1] if j + 1 < len(edges) else np.inf
        if t > lo:
            H0 += haz[j] * (min(t, hi) - lo)
        if lo <= t < hi:
            h_t = haz[j]
    return d * (np.log(h_t) + lin) - H0 * np.exp(lin)


def _brute_force_loglik(alpha: np.ndarray) -> float:
    """Sum over subjects of log of the integral over b on a dense 2-D grid."""
    D = L_TRUE @ L_TRUE.T
    sd = np.sqrt(np.diag(D))
    g0 = np.linspace(-9 * sd[0], 9 * sd[0], 1001)
    g1 = np.linspace(-9 * sd[1], 9 * sd[1], 1001)
    B0, B1 = np.meshgrid(g0, g1, indexing="ij")
    prior = multivariate_normal(np.zeros(2), D).logpdf(np.dstack([B0, B1]))
    total = 0.0
    for months, y, x, t, d in SUBJECTS:
        ll = prior.copy()
        for m, v in zip(months, y, strict=True):
            mu = BETA[0] + BETA[1] * m + BETA[2] * x + B0 + B1 * m
            ll += norm.logpdf(v, mu, SIGMA)
        lin = GAMMA[0] * x + alpha[0] * B0 + alpha[1] * B1
        ll += _survival_loglik(lin, t, d, HAZ)
        top = ll.max()
        inner = np.trapezoid(np.trapezoid(np.exp(ll - top), g1, axis=1), g0)
        total += float(np.log(inner) + top)
    return total


def _closed_form_loglik() -> float:
    """Association zero: marginal normal longitudinal part + survival closed form."""
    D = L_TRUE @ L_TRUE.T
    total = 0.0
    for months, y, x, t, d in SUBJECTS:
        X, Z = _designs(months, x)
        V = Z @ D @ Z.T + SIGMA**2 * np.eye(len(y))
        total += multivariate_normal(X @ BETA, V).logpdf(y)
        total += float(_survival_loglik(np.array(GAMMA[0] * x), t, d, HAZ))
    return total


def test_objective_is_the_closed_form_and_the_brute_force_integral(objective):
    """Association zero: the closed form; non-zero: a dense-grid integral over b."""
    fun, _, _ = objective
    got = fun(_phi(alpha=np.zeros(2)))
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == ()
    # float64 throughout: agreement far beyond float32 precision
    assert -float(got) == pytest.approx(_closed_form_loglik(), rel=1e-13)
    for alpha in (ALPHA, np.array([-0.3, 2.0])):
        got = -float(fun(_phi(alpha)))
        assert got == pytest.approx(_brute_force_loglik(alpha), abs=2e-6)
    # float32 parameters are computed with in float64
    phi32 = _phi().astype(np.float32)
    assert float(fun(phi32)) == pytest.approx(
        float(fun(phi32.astype(np.float64))), rel=1e-14
    )


def test_gradient_matches_finite_differences(objective):
    fun, grad, _ = objective
    phi = _phi()
    g = grad(phi)
    assert g.dtype == np.float64 and g.shape == (LAYOUT.size,)
    h = 1e-5
    fd = np.empty(LAYOUT.size)
    for j in range(LAYOUT.size):
        step = np.zeros(LAYOUT.size)
        step[j] = h
        fd[j] = (float(fun(phi + step)) - float(fun(phi - step))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6)
    phi32 = phi.astype(np.float32)
    np.testing.assert_allclose(
        grad(phi32), grad(phi32.astype(np.float64)), rtol=1e-12, atol=1e-12
    )


@pytest.mark.slow  # compiling the Hessian alone takes about 7 s
def test_hessian_matches_finite_differences_of_the_gradient(objective):
    _, grad, hess = objective
    phi = _phi()
    H = hess(phi)
    assert H.dtype == np.float64 and H.shape == (LAYOUT.size, LAYOUT.size)
    h = 1e-5
    fd = np.empty((LAYOUT.size, LAYOUT.size))
    for j in range(LAYOUT.size):
        step = np.zeros(LAYOUT.size)
        step[j] = h
        fd[:, j] = (grad(phi + step) - grad(phi - step)) / (2 * h)
    np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-10)


#: Random intercept only (q = 1): visit months, outcome, covariate, time, event.
SUBJECTS_Q1 = [
    (np.array([0.0, 1.0, 3.0]), np.array([30.2, 29.1, 26.8]), 1.0, 3.5, 1),
    (np.array([0.0, 2.0]), np.array([33.0, 31.9]), -0.5, 2.5, 0),
    (np.array([0.0, 1.0]), np.array([28.4, 27.0]), 0.3, 1.5, 1),
]
LAYOUT_Q1 = JointLayout(p=2, q=1, r=1, k=2)
#: An asymmetric three-point rule (not Gauss-Hermite): nodes and weights.
NODES_Q1 = np.array([[-1.0], [0.5], [2.0]])
WEIGHTS_Q1 = np.array([0.2, 0.5, 0.3])
PHI_Q1 = np.array([31.0, -1.1, np.log(1.7), np.log(0.9), 0.6, -0.8, -2.5, -1.9])


@pytest.fixture
def objective_q1():
    rows = [np.column_stack([np.ones_like(m), m]) for m, *_ in SUBJECTS_Q1]
    ys = [y for _, y, *_ in SUBJECTS_Q1]
    data = JointData(
        ZtZ=np.array([[[len(y)]] for y in ys], dtype=float),
        ZtX=np.array([[X.sum(axis=0)] for X in rows]),
        Zty=np.array([[y.sum()] for y in ys]),
        XtX=sum(X.T @ X for X in rows),
        Xty=sum(X.T @ y for X, y in zip(rows, ys, strict=True)),
        yty=float(sum(y @ y for y in ys)),
        n_obs=sum(len(y) for y in ys),
        W=np.array([[s[2]] for s in SUBJECTS_Q1]),
        event=np.array([1.0, 0.0, 1.0]),
        exposure=np.array([[2.0, 1.5], [2.0, 0.5], [1.5, 0.0]]),  # breaks 0, 2, inf
        interval=np.array([1, 1, 0], dtype=np.intp),
    )
    return make_objective(data, LAYOUT_Q1, NODES_Q1, np.log(WEIGHTS_Q1))


def test_objective_q1_value_gradient_and_hessian(objective_q1):
    """b | y_i is normal (variance 1 / (1/tau^2 + n_i / s^2)); the survival part
    is the weighted sum over b = mean + sd * node of the event likelihood;
    the derivatives match finite differences."""
    fun, grad, hess = objective_q1
    b0, b1, log_tau, log_s, gamma, alpha, lh0, lh1 = PHI_Q1
    tau2, s2, haz = np.exp(2 * log_tau), np.exp(2 * log_s), np.exp([lh0, lh1])
    total = 0.0
    for months, y, x, t, d in SUBJECTS_Q1:
        r = y - b0 - b1 * months
        V = tau2 * np.ones((len(y), len(y))) + s2 * np.eye(len(y))
        total += multivariate_normal(np.zeros(len(y)), V).logpdf(r)
        var = 1.0 / (1.0 / tau2 + len(y) / s2)
        b = var * r.sum() / s2 + np.sqrt(var) * NODES_Q1[:, 0]
        lin = gamma * x + alpha * b
        total += np.log(WEIGHTS_Q1 @ np.exp(_survival_loglik_2(lin, t, d, haz)))
    assert -float(fun(PHI_Q1)) == pytest.approx(total, rel=1e-13)
    g, H = grad(PHI_Q1), hess(PHI_Q1)
    assert g.dtype == np.float64 and g.shape == (8,)
    assert H.dtype == np.float64 and H.shape == (8, 8)
    h = 1e-5
    for j in range(8):
        step = np.zeros(8)
        step[j] = h
        fd = (float(fun(PHI_Q1 + step)) - float(fun(PHI_Q1 - step))) / (2 * h)
        assert g[j] == pytest.approx(fd, rel=1e-6, abs=1e-6)
        fd_col = (grad(PHI_Q1 + step) - grad(PHI_Q1 - step)) / (2 * h)
        np.testing.assert_allclose(H[:, j], fd_col, rtol=1e-6, atol=1e-6)


def _survival_loglik_2(lin: np.ndarray, t: float, d: int, haz: np.ndarray):
    """Two intervals [0, 2), [2, inf)."""
    H0 = haz[0] * min(t, 2.0) + haz[1] * max(t - 2.0, 0.0)
    return d * (np.log(haz[0] if t < 2.0 else haz[1]) + lin) - H0 * np.exp(lin)


# ------------------------------------------------------------- newton polish


class _Counted:
    """Wraps a function and counts its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, x):
        self.calls += 1
        return self.fn(np.asarray(x, dtype=float))


def test_newton_polish_solves_a_quadratic_in_one_step():
    A = np.array([[4.0, 1.0], [1.0, 3.0]])
    c = np.array([1.0, -2.0])
    xstar = np.linalg.solve(A, c)
    f0 = -0.5 * c @ xstar  # minimum of 0.5 x'Ax - c'x
    fun = _Counted(lambda x: 0.5 * x @ A @ x - c @ x)
    grad = _Counted(lambda x: A @ x - c)
    # an asymmetric Hessian: only its symmetric part A is used
    hess = _Counted(lambda x: A + np.array([[0.0, 2.0], [-2.0, 0.0]]))
    phi, f, H, g = newton_polish(np.array([5.0, -7.0]), fun, grad, hess, steps=1)
    np.testing.assert_allclose(phi, xstar, rtol=1e-13)
    assert f == pytest.approx(f0, rel=1e-13)
    assert type(f) is float
    np.testing.assert_allclose(H, A + np.array([[0.0, 2.0], [-2.0, 0.0]]))
    np.testing.assert_allclose(g, 0.0, atol=1e-13)
    assert (fun.calls, grad.calls, hess.calls) == (2, 2, 2)
    # at the optimum the loop stops at once: no further evaluation
    fun.calls = grad.calls = hess.calls = 0
    out = newton_polish(xstar, fun, grad, hess)
    np.testing.assert_array_equal(out[0], xstar)
    assert (fun.calls, grad.calls, hess.calls) == (1, 1, 1)


def test_newton_polish_quartic_takes_exactly_steps_newton_steps():
    """f = x^4: each Newton step multiplies x by 2/3 (full steps all accepted)."""
    fun = _Counted(lambda x: float(x[0] ** 4))
    grad = lambda x: np.array([4.0 * x[0] ** 3])  # noqa: E731
    hess = lambda x: np.array([[12.0 * x[0] ** 2]])  # noqa: E731
    phi, f, H, g = newton_polish(np.array([100.0]), fun, grad, hess)
    x20 = 100.0 * (2.0 / 3.0) ** 20  # the default is 20 steps
    assert phi[0] == pytest.approx(x20, rel=1e-12)
    assert f == pytest.approx(x20**4, rel=1e-11)
    assert H[0, 0] == pytest.approx(12 * x20**2, rel=1e-11)
    assert g[0] == pytest.approx(4 * x20**3, rel=1e-11)
    assert fun.calls == 21
    phi3 = newton_polish(np.array([100.0]), fun, grad, hess, steps=3)[0]
    assert phi3[0] == pytest.approx(100.0 * (2.0 / 3.0) ** 3, rel=1e-13)


def test_newton_polish_stops_below_gradient_1e8_but_not_at_it():
    calls = []

    def grad(x):
        return np.array([1e-8 if x[0] == 1.0 else 0.0])

    def fun(x):
        calls.append(float(x[0]))
        return 0.0

    hess = lambda x: np.array([[1e-8]])  # noqa: E731
    # |g| == 1e-8 exactly: one Newton step, x -> 1 - 1 = 0 (f stays 0: accepted)
    phi, f, H, g = newton_polish(np.array([1.0]), fun, grad, hess)
    assert phi.tolist() == [0.0] and g.tolist() == [0.0] and f == 0.0
    assert calls == [1.0, 0.0]
    # a gradient of 0.5 (below 1, above 1e-8) is still polished
    phi = newton_polish(
        np.array([1.0]),
        lambda x: float(x[0] ** 2),
        lambda x: 2 * x,
        lambda x: np.array([[2.0]]),
        steps=1,
    )[0]
    assert phi.tolist() == [0.0]
    grad_small = lambda x: np.array([0.25 * x[0]])  # noqa: E731
    phi = newton_polish(
        np.array([2.0]),
        lambda x: float(0.125 * x[0] ** 2),
        grad_small,
        lambda x: np.array([[0.25]]),
        steps=1,
    )[0]
    assert phi.tolist() == [0.0]  # |g| = 0.5 at the start


def test_newton_polish_halves_the_step_until_the_objective_does_not_rise():
    """f = sqrt(1 + x^2) from x = 2: the Newton step 10 overshoots; t = 1/4 lands
    on -0.5 (f = sqrt(1.25) < sqrt(5)); t = 1 and 1/2 give -8 and -3 (f larger)."""
    fun = _Counted(lambda x: float(np.sqrt(1.0 + x[0] ** 2)))
    grad = lambda x: x / np.sqrt(1.0 + x**2)  # noqa: E731
    hess = lambda x: np.array([[(1.0 + x[0] ** 2) ** -1.5]])  # noqa: E731
    phi, f, H, g = newton_polish(np.array([2.0]), fun, grad, hess, steps=1)
    assert phi[0] == pytest.approx(-0.5, rel=1e-14)
    assert f == pytest.approx(np.sqrt(1.25), rel=1e-14)
    assert H[0, 0] == pytest.approx(1.25**-1.5, rel=1e-14)
    assert g[0] == pytest.approx(-0.5 / np.sqrt(1.25), rel=1e-14)
    assert fun.calls == 4  # start, t = 1, 1/2, 1/4


def test_newton_polish_rejects_non_finite_candidates():
    """A candidate of -inf is not a decrease: the step is halved."""

    def fun(x):
        return -np.inf if x[0] < -0.5 else float(x[0] ** 2)

    phi = newton_polish(
        np.array([1.0]), fun, lambda x: 4 * x, lambda x: np.array([[2.0]]), steps=1
    )[0]
    # step 2: t = 1 gives -1 (-inf, rejected), t = 1/2 gives 0
    assert phi.tolist() == [0.0]


def test_newton_polish_accepts_a_rise_of_1e10_relative_only():
    def run(f0, f1):
        def fun(x):
            return f0 if x[0] == 1.0 else f1

        return newton_polish(
            np.array([1.0]),
            fun,
            lambda x: np.array([1.0]) if x[0] == 1.0 else np.array([0.0]),
            lambda x: np.array([[1.0]]),
            steps=1,
        )

    # no change at zero is accepted (f <= f)
    phi, f, _, _ = run(0.0, 0.0)
    assert phi.tolist() == [0.0] and f == 0.0
    # 1000 -> 1000 + 5e-8 is within 1e-10 * 1000 = 1e-7: accepted
    phi, f, _, _ = run(1000.0, 1000.0 + 5e-8)
    assert phi.tolist() == [0.0] and f == 1000.0 + 5e-8
    # -1000 -> -1000 + 5e-8 likewise (the tolerance uses |f|)
    phi, f, _, _ = run(-1000.0, -1000.0 + 5e-8)
    assert phi.tolist() == [0.0]
    # 1000 -> 1000 + 2e-7 is a rise beyond it: every halving is rejected
    phi, f, H, g = run(1000.0, 1000.0 + 2e-7)
    assert phi.tolist() == [1.0] and f == 1000.0
    assert H.tolist() == [[1.0]] and g.tolist() == [1.0]


def test_newton_polish_gives_up_when_no_step_descends():
    """An ascent direction (negative Hessian): halve while t > 1e-4, then stop."""
    fun = _Counted(lambda x: float(x[0] ** 2))
    grad = _Counted(lambda x: 2 * x)
    hess = _Counted(lambda x: np.array([[-2.0]]))
    phi, f, H, g = newton_polish(np.array([1.0]), fun, grad, hess)
    assert phi.tolist() == [1.0] and f == 1.0
    assert H.tolist() == [[-2.0]] and g.tolist() == [2.0]
    # t = 1, 1/2, ..., 2^-13 (> 1e-4); 2^-14 < 1e-4 ends the search
    assert fun.calls == 1 + 14
    assert (grad.calls, hess.calls) == (1, 1)


def test_newton_polish_stops_on_a_singular_hessian():
    fun = _Counted(lambda x: float(x @ x))
    phi, f, H, g = newton_polish(
        np.array([1.0, 2.0]), fun, lambda x: 2 * x, lambda x: np.zeros((2, 2))
    )
    assert phi.tolist() == [1.0, 2.0] and f == 5.0
    assert H.tolist() == [[0.0, 0.0], [0.0, 0.0]] and g.tolist() == [2.0, 4.0]
    assert fun.calls == 1


# ------------------------------------------------------- inverse information


def test_inverse_information_of_a_symmetric_matrix():
    H = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, -0.2], [0.5, -0.2, 2.0]])
    got = inverse_information(H)
    np.testing.assert_allclose(got, np.linalg.inv(H), rtol=1e-13)
    np.testing.assert_allclose(got @ H, np.eye(3), atol=1e-14)
    assert got.dtype == np.float64
    # an indefinite matrix is inverted too (no positive-definiteness check here)
    Hi = np.array([[1.0, 2.0], [2.0, 1.0]])
    np.testing.assert_allclose(
        inverse_information(Hi), np.array([[-1.0, 2.0], [2.0, -1.0]]) / 3, rtol=1e-14
    )


def test_inverse_information_symmetrises_first():
    H = np.array([[2.0, 3.0], [-1.0, 2.0]])  # symmetric part [[2, 1], [1, 2]]
    np.testing.assert_allclose(
        inverse_information(H), np.array([[2.0, -1.0], [-1.0, 2.0]]) / 3, rtol=1e-14
    )


def test_inverse_information_of_a_singular_matrix_is_the_pseudo_inverse():
    got = inverse_information(np.diag([2.0, 0.0]))
    np.testing.assert_allclose(got, [[0.5, 0.0], [0.0, 0.0]], atol=1e-15)
    assert got.dtype == np.float64
    # rank one: pinv of v v' is v v' / |v|^4
    v = np.array([1.0, 2.0])
    np.testing.assert_allclose(
        inverse_information(np.outer(v, v)), np.outer(v, v) / 25.0, atol=1e-14
    )


def test_inverse_information_is_float64_for_float32_input():
    H = np.array([[4.0, 1.0], [1.0, 2.0]], dtype=np.float32)
    got = inverse_information(H)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.array([[2.0, -1.0], [-1.0, 4.0]]) / 7, rtol=1e-6)
    sing = inverse_information(np.diag(np.array([4.0, 0.0], dtype=np.float32)))
    assert sing.dtype == np.float64
    np.testing.assert_allclose(sing, [[0.25, 0.0], [0.0, 0.0]], atol=1e-7)


def test_inverse_information_inverts_an_ill_conditioned_matrix_exactly():
    """Invertible with condition number 1e16: the inverse, not the pseudo-inverse
    (which would cut the smallest eigenvalue, below 1e-15 of the largest)."""
    got = inverse_information(np.diag([1.0, 1e-16]))
    np.testing.assert_allclose(got, np.diag([1.0, 1e16]), rtol=1e-15)
