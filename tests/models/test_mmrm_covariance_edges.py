"""Edges of the MMRM covariance structures (``alsprog.models.mmrm._covariance``):
parameter counts by closed form for every structure and 1 to 6 visits, one and two
visits, which outputs each derivative order returns, single-precision input, the
inverse correlation map and its clip, and the starting values of every structure
worked out by hand from an empirical covariance (mean correlation per lag through
the inverse map, compound symmetry through the logit with ``a = 1 / (T - 1)``) with
their fallbacks.

References are written out here from the definitions in mmrm's ``src/covariance.h``
(entry by entry, see :func:`_by_definition`) and derivatives are checked against
central finite differences of those definitions (issue 20: mutation testing).
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from alsprog.models.mmrm._covariance import (
    ALIASES,
    STRUCTURES,
    _correlation,
    _inv_map_cor,
    _map_cor,
    canonical_structure,
    cov_hessian,
    cov_jacobian,
    covariance_and_derivatives,
    covariance_from_params,
    n_cov_params,
    start_params,
)

KINDS = ("toeplitz", "ar1", "compound_symmetry", "ante_dependence")


def _cor(x):
    return x / np.sqrt(1.0 + x * x)


def _by_definition(theta, structure: str, T: int) -> np.ndarray:
    """Sigma written out entry by entry from mmrm's definitions."""
    th = np.asarray(theta, dtype=float)
    if structure == "unstructured":
        L = np.zeros((T, T))
        k = T
        for i in range(T):
            L[i, i] = 1.0
            for j in range(i):
                L[i, j] = th[k]
                k += 1
        L = np.exp(th[:T])[:, None] * L
        return L @ L.T
    het = structure.startswith("heterogeneous_")
    kind = structure.removeprefix("heterogeneous_")
    sd = np.exp(th[:T]) if het else np.full(T, np.exp(th[0]))
    phi = th[T:] if het else th[1:]
    out = np.empty((T, T))
    for i in range(T):
        for j in range(T):
            lo, hi = min(i, j), max(i, j)
            if i == j:
                r = 1.0
            elif kind == "toeplitz":
                r = _cor(phi[hi - lo - 1])
            elif kind == "ar1":
                r = _cor(phi[0]) ** (hi - lo)
            elif kind == "compound_symmetry":
                a = 1.0 / (T - 1)
                r = (1 + a) / (1 + np.exp(-phi[0])) - a
            else:
                r = float(np.prod([_cor(phi[m]) for m in range(lo, hi)]))
            out[i, j] = sd[i] * sd[j] * r
    return out


def _k_by_hand(structure: str, T: int) -> int:
    if structure == "unstructured":
        return T * (T + 1) // 2
    het = structure.startswith("heterogeneous_")
    kind = structure.removeprefix("heterogeneous_")
    n_corr = 1 if kind in ("ar1", "compound_symmetry") else T - 1
    return (T if het else 1) + n_corr


# ------------------------------------------------------------------ names, counts
@pytest.mark.parametrize("T", [1, 2, 3, 4, 6])
def test_parameter_counts_of_every_structure_by_closed_form(T):
    for s in STRUCTURES:
        k = n_cov_params(s, T)
        assert k == _k_by_hand(s, T) and type(k) is int, (s, T)
    for short, long in ALIASES.items():
        assert n_cov_params(short, T) == _k_by_hand(long, T)
    # toeplitz and ante-dependence: one correlation per lag / per neighbour pair
    assert n_cov_params("toeplitz", T) == n_cov_params("ante_dependence", T) == T
    assert n_cov_params("heterogeneous_toeplitz", T) == 2 * T - 1


def test_unknown_structure_message_lists_every_name():
    want = (
        "unknown structure 'ar2'; expected one of unstructured, toeplitz, "
        "heterogeneous_toeplitz, ar1, heterogeneous_ar1, compound_symmetry, "
        "heterogeneous_compound_symmetry, ante_dependence, "
        "heterogeneous_ante_dependence or mmrm's us, toep, toeph, ar1h, cs, csh, "
        "ad, adh"
    )
    with pytest.raises(ValueError) as err:
        canonical_structure("ar2")
    assert str(err.value) == want
    with pytest.raises(ValueError, match="unknown correlation 'ar2'"):
        _correlation("ar2", np.array([0.1]), 3, 2)


def test_theta_of_the_wrong_length_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"ar1 covariance over 3 visits has 2 "):
        covariance_and_derivatives([0.0, 0.1, 0.2], "ar1", 3)


# ---------------------------------------------------------- one and two visits
@pytest.mark.parametrize("structure", STRUCTURES)
def test_one_visit_is_a_variance_with_flat_correlation_derivatives(structure):
    k = n_cov_params(structure, 1)
    theta = np.r_[0.3, np.linspace(-0.4, 0.5, k - 1)]
    d = covariance_and_derivatives(theta, structure, 1, order=2)
    v = np.exp(0.6)
    assert_allclose(d.sigma, [[v]], rtol=1e-15)
    want_jac = np.zeros((k, 1, 1))
    want_jac[0] = 2 * v  # d exp(2 theta_0) / d theta_0
    assert_allclose(d.jac, want_jac, rtol=1e-15, atol=0)
    want_hess = np.zeros((k, k, 1, 1))
    want_hess[0, 0] = 4 * v
    assert_allclose(d.hess, want_hess, rtol=1e-15, atol=0)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_two_visits_by_closed_form(structure):
    k = n_cov_params(structure, 2)
    theta = np.array([0.2, -0.3, 0.7, -0.5][:k])
    het = structure.startswith("heterogeneous_") or structure == "unstructured"
    sd = np.exp(theta[:2]) if het else np.exp([theta[0], theta[0]])
    phi = theta[-1]
    if structure == "unstructured":  # L = diag(sd) [[1, 0], [l, 1]]
        s12 = sd[0] * sd[1] * phi
        s22 = sd[1] ** 2 * (1 + phi**2)
        want = [[sd[0] ** 2, s12], [s12, s22]]
    else:
        if structure.endswith("compound_symmetry"):
            r = np.tanh(phi / 2)  # a = 1: 2 expit(phi) - 1
        else:
            r = phi / np.sqrt(1 + phi**2)
        want = [[sd[0] ** 2, sd[0] * sd[1] * r], [sd[0] * sd[1] * r, sd[1] ** 2]]
    assert_allclose(covariance_from_params(theta, structure, 2), want, rtol=1e-14)


@pytest.mark.parametrize("T", [1, 2, 3])
@pytest.mark.parametrize("structure", STRUCTURES)
def test_derivatives_equal_central_differences_of_the_definition(structure, T):
    rng = np.random.default_rng(100 + T)
    k = n_cov_params(structure, T)
    theta = rng.normal(0, 0.6, k)
    d = covariance_and_derivatives(theta, structure, T, order=2)
    assert_allclose(d.sigma, _by_definition(theta, structure, T), rtol=1e-13)
    h = 1e-4
    eye = np.eye(k) * h
    for a in range(k):
        fd1 = (
            _by_definition(theta + eye[a], structure, T)
            - _by_definition(theta - eye[a], structure, T)
        ) / (2 * h)
        assert_allclose(d.jac[a], fd1, rtol=1e-6, atol=1e-8)
        for b in range(k):
            fd2 = (
                _by_definition(theta + eye[a] + eye[b], structure, T)
                - _by_definition(theta + eye[a] - eye[b], structure, T)
                - _by_definition(theta - eye[a] + eye[b], structure, T)
                + _by_definition(theta - eye[a] - eye[b], structure, T)
            ) / (4 * h * h)
            assert_allclose(d.hess[a, b], fd2, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------- orders, dtypes
@pytest.mark.parametrize("structure", STRUCTURES)
def test_each_order_returns_what_was_asked(structure):
    T = 3
    k = n_cov_params(structure, T)
    theta = np.linspace(-0.3, 0.4, k)
    want = _by_definition(theta, structure, T)
    d0 = covariance_and_derivatives(theta, structure, T, order=0)
    d1 = covariance_and_derivatives(theta, structure, T, order=1)
    d2 = covariance_and_derivatives(theta, structure, T, order=2)
    dd = covariance_and_derivatives(theta, structure, T)  # order 1 by default
    for d in (d0, d1, d2, dd):
        assert_allclose(d.sigma, want, rtol=1e-13)
    assert d0.jac is None and d0.hess is None
    assert d1.hess is None and dd.hess is None
    assert d1.jac.shape == dd.jac.shape == d2.jac.shape == (k, T, T)
    assert d2.hess.shape == (k, k, T, T)
    assert_allclose(d1.jac, d2.jac, rtol=0, atol=0)
    assert_allclose(cov_jacobian(theta, structure, T), d1.jac, rtol=0, atol=0)
    assert_allclose(cov_hessian(theta, structure, T), d2.hess, rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_correlation_derivatives_only_when_asked(kind):
    T = 4
    q = 1 if kind in ("ar1", "compound_symmetry") else T - 1
    phi = np.linspace(-0.5, 0.6, q)
    R0, dR0, d2R0 = _correlation(kind, phi, T, 0)
    R1, dR1, d2R1 = _correlation(kind, phi, T, 1)
    R2, dR2, d2R2 = _correlation(kind, phi, T, 2)
    assert dR0 is None and d2R0 is None and d2R1 is None
    assert dR1.shape == (q, T, T) and d2R2.shape == (q, q, T, T)
    assert_allclose(R0, R1, rtol=0, atol=0)
    assert_allclose(R0, R2, rtol=0, atol=0)
    assert_allclose(np.diag(R0), np.ones(T), rtol=0, atol=0)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_single_precision_theta_is_computed_in_double(structure):
    T = 3
    k = n_cov_params(structure, T)
    th32 = np.linspace(-0.35, 0.45, k).astype(np.float32)
    d32 = covariance_and_derivatives(th32, structure, T, order=2)
    d64 = covariance_and_derivatives(th32.astype(np.float64), structure, T, order=2)
    for got, want in ((d32.sigma, d64.sigma), (d32.jac, d64.jac), (d32.hess, d64.hess)):
        assert got.dtype == np.float64
        assert_allclose(got, want, rtol=1e-15, atol=1e-300)


# ------------------------------------------------------------- inverse of the map
def test_inverse_correlation_map_round_trip_and_clip():
    rho = np.array([-0.95, -0.9, -0.5, 0.0, 0.3, 0.75, 0.949])
    phi = _inv_map_cor(rho)
    assert_allclose(phi, rho / np.sqrt(1 - rho**2), rtol=1e-15)
    assert_allclose(_map_cor(phi)[0], rho, rtol=1e-14, atol=1e-16)
    # beyond +-0.95 the correlation is clipped to +-0.95 first
    edge = 0.95 / np.sqrt(1 - 0.95**2)
    assert edge == pytest.approx(3.0424349223, rel=1e-10)
    assert_allclose(
        _inv_map_cor(np.array([-1.0, -0.99, -0.96, 0.96, 0.99, 1.0])),
        [-edge, -edge, -edge, edge, edge, edge],
        rtol=1e-15,
    )


# ------------------------------------------------------------------ start values
SD = np.array([1.0, 2.0, 3.0, 1.5])
CORR = np.array(
    [
        [1.0, 0.6, 0.3, 0.1],
        [0.6, 1.0, 0.5, 0.2],
        [0.3, 0.5, 1.0, 0.4],
        [0.1, 0.2, 0.4, 1.0],
    ]
)
S4 = SD[:, None] * CORR * SD[None, :]


def _inv(r):
    return r / np.sqrt(1 - r * r)


def test_start_values_of_every_structure_by_hand():
    assert np.all(np.linalg.eigvalsh(CORR) > 0)
    logsd = np.log(SD)
    log_root_mean_var = 0.5 * np.log(np.mean(SD**2))  # 0.5 log(15.25 / 4)
    # toeplitz: mean correlation per lag: (.6 + .5 + .4) / 3, (.3 + .2) / 2, .1
    toep = _inv(np.array([0.5, 0.25, 0.1]))
    # ar1: mean lag-one correlation
    ar1 = _inv(np.array([0.5]))
    # ante-dependence: the lag-one correlations themselves
    ad = _inv(np.array([0.6, 0.5, 0.4]))
    # compound symmetry: mean off-diagonal correlation 2.1 / 6 = 0.35 through
    # rho = expit(phi) (1 + a) - a with a = 1 / 3
    u = (0.35 + 1 / 3) / (4 / 3)
    cs = np.array([np.log(u / (1 - u))])
    want = {
        "toeplitz": np.r_[log_root_mean_var, toep],
        "heterogeneous_toeplitz": np.r_[logsd, toep],
        "ar1": np.r_[log_root_mean_var, ar1],
        "heterogeneous_ar1": np.r_[logsd, ar1],
        "compound_symmetry": np.r_[log_root_mean_var, cs],
        "heterogeneous_compound_symmetry": np.r_[logsd, cs],
        "ante_dependence": np.r_[log_root_mean_var, ad],
        "heterogeneous_ante_dependence": np.r_[logsd, ad],
    }
    for s, w in want.items():
        th = start_params(S4, s)
        assert th.dtype == np.float64 and th.shape == (n_cov_params(s, 4),), s
        assert_allclose(th, w, rtol=1e-13, atol=1e-15, err_msg=s)
    # the compound-symmetry start reproduces the mean correlation
    R = covariance_from_params(want["compound_symmetry"], "cs", 4)
    assert R[0, 1] / R[0, 0] == pytest.approx(0.35, rel=1e-13)
    # aliases start the same
    for short, long in ALIASES.items():
        if long != "unstructured":
            assert_allclose(start_params(S4, short), want[long], rtol=1e-13)


def test_start_values_of_two_visits():
    S = np.array([[4.0, -1.2], [-1.2, 1.0]])  # correlation -0.6
    half_log_mean = 0.5 * np.log(2.5)
    for s, phi in (
        ("ar1", _inv(-0.6)),
        ("toeplitz", _inv(-0.6)),
        ("ante_dependence", _inv(-0.6)),
        ("compound_symmetry", np.log(0.4 / 1.6)),  # a = 1: u = (1 + rho) / 2
    ):
        assert_allclose(start_params(S, s), [half_log_mean, phi], rtol=1e-14)
        assert_allclose(
            start_params(S, "heterogeneous_" + s), [np.log(2.0), 0.0, phi], rtol=1e-14
        )


def test_start_correlations_are_clipped():
    lag = np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
    edge = _inv(0.95)
    for rho, want in ((0.98, edge), (-0.98, -edge)):
        S = 2.0 * rho**lag  # ar1 correlation beyond +-0.95, variance 2
        assert_allclose(start_params(S, "ar1"), [0.5 * np.log(2.0), want], rtol=1e-14)
    # compound symmetry over 3 visits (a = 1/2): rho within [-a + 0.05 (1 + a), 0.95]
    off = lag[:3, :3] > 0
    for rho, clipped in ((0.97, 0.95), (-0.48, -0.425), (-0.3, -0.3)):
        S = np.where(off, rho, 1.0)
        u = (clipped + 0.5) / 1.5
        assert_allclose(start_params(S, "cs"), [0.0, np.log(u / (1 - u))], rtol=1e-13)
    # two visits (a = 1): the lower limit is -0.9
    S = np.array([[1.0, -0.95], [-0.95, 1.0]])
    assert_allclose(start_params(S, "cs"), [0.0, np.log(0.05 / 0.95)], rtol=1e-13)


def test_start_values_with_non_positive_variances():
    # not positive definite: the unstructured start keeps the positive variances
    # and puts 1 for the others
    S = np.diag([0.25, 0.0, 9.0])
    assert_allclose(
        start_params(S, "us"), [np.log(0.5), 0.0, np.log(3.0), 0, 0, 0], atol=1e-15
    )
    S = np.diag([0.25, -4.0, 9.0])
    assert_allclose(
        start_params(S, "toeph"), [np.log(0.5), 0.0, np.log(3.0), 0, 0], atol=1e-15
    )
    assert_allclose(
        start_params(S, "ar1"), [0.5 * np.log(10.25 / 3), 0.0], rtol=1e-14, atol=1e-15
    )


def test_start_falls_back_to_identity_correlation_when_not_positive_definite():
    # pairwise estimates: lag-one mean 0.9, lag-two -0.9, not a correlation matrix
    C = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    sd = np.array([1.0, 2.0, 3.0])
    S = sd[:, None] * C * sd[None, :]
    assert_allclose(
        start_params(S, "toeplitz"), [0.5 * np.log(14 / 3), 0.0, 0.0], rtol=1e-14
    )
    assert_allclose(
        start_params(S, "heterogeneous_toeplitz"), np.r_[np.log(sd), 0, 0], rtol=1e-14
    )
    # the other structures stay positive definite from the same matrix
    assert_allclose(
        start_params(S, "ante_dependence"),
        [0.5 * np.log(14 / 3), _inv(0.9), _inv(0.9)],
        rtol=1e-14,
    )


def test_start_falls_back_to_zeros_when_not_finite():
    S = np.diag([np.inf, 1.0, 1.0])
    with np.errstate(invalid="ignore"):
        for s in STRUCTURES[1:]:
            th = start_params(S, s)
            assert th.shape == (n_cov_params(s, 3),)
            assert_allclose(th, np.zeros(n_cov_params(s, 3)), atol=0, err_msg=s)


def test_start_of_single_precision_input_is_double():
    for s in STRUCTURES:
        th32 = start_params(S4.astype(np.float32), s)
        assert th32.dtype == np.float64, s
        assert_allclose(th32, start_params(S4, s), rtol=1e-5, atol=1e-6)
