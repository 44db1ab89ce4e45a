"""Edge and branch tests that kill the mutants the main tests let survive (issue 20).

Every number is checked against something computed here without the code under test:
the dense marginal likelihood (V = I + Z Lambda Lambda' Z', written out in numpy),
central finite differences of that dense deviance, closed forms of toy objectives, or
lme4's published fits (tests/reference/lme4_reference.json).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from alsprog.errors import ConvergenceWarning
from alsprog.models import LinearMixedModel
from alsprog.models.lmm import _numerics as N
from alsprog.models.lmm._numerics import (
    compute_group_stats,
    estimates_at,
    fit_profiled,
    profiled_deviance,
)

LOG2PI = np.log(2 * np.pi)


# ------------------------------------------------------------------ helpers
def _small(q: int, p: int, seed: int = 0, n_groups: int = 7):
    """A small unbalanced problem with q random effects and p fixed effects."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 6, n_groups)
    g = np.repeat(np.arange(n_groups), sizes)
    rng.shuffle(g)
    n = len(g)
    t = rng.uniform(0, 3, n)
    X = np.column_stack([np.ones(n), t, rng.normal(size=n)])[:, :p]
    Z = np.column_stack([np.ones(n), t, t**2])[:, :q]
    b = rng.normal(size=(n_groups, q)) * [2.0, 0.7, 0.2][:q]
    y = 5.0 + 0.4 * t + np.einsum("nq,nq->n", Z, b[g]) + rng.normal(size=n)
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))
    rows, cols = rows[order], cols[order]
    lower = np.where(rows == cols, 0.0, -np.inf)
    return X, Z, y, g, n_groups, rows, cols, lower


def _lam(theta, rows, cols, q):
    lam = np.zeros((q, q))
    lam[rows, cols] = theta
    return lam


def _zblock(Z, g, G):
    n, q = Z.shape
    Zb = np.zeros((n, q * G))
    for j in range(q):
        Zb[np.arange(n), q * g + j] = Z[:, j]
    return Zb


def _dense(X, Z, y, g, G, lam, reml):
    """Profiled -2 log-likelihood and estimates from the dense marginal model
    y ~ N(X beta, sigma^2 V), V = I + Z (I_G kron Lambda Lambda') Z' (Bates et al.
    2015, eqs. 34 and 41), written out without the per-group reduction."""
    n, p = X.shape
    q = Z.shape[1]
    Zb = _zblock(Z, g, G)
    D = np.kron(np.eye(G), lam @ lam.T)
    V = np.eye(n) + Zb @ D @ Zb.T
    Vi = np.linalg.inv(V)
    C = X.T @ Vi @ X
    beta = np.linalg.solve(C, X.T @ Vi @ y) if p else np.zeros(0)
    r = y - X @ beta
    r2 = float(r @ Vi @ r)
    nu = n - p if reml else n
    dev = np.linalg.slogdet(V)[1] + nu * (1 + LOG2PI + np.log(r2 / nu))
    if reml:
        dev += np.linalg.slogdet(C)[1] if p else 0.0
    sigma2 = r2 / nu
    b = (D @ Zb.T @ Vi @ r).reshape(G, q)
    cond = D - D @ Zb.T @ Vi @ Zb @ D  # Var(b | y) / sigma^2, beta known
    cov_b = np.array([cond[q * i : q * i + q, q * i : q * i + q] for i in range(G)])
    return {
        "deviance": dev,
        "beta": beta,
        "sigma2": sigma2,
        "C": C,
        "b": b,
        "cov_b": sigma2 * cov_b,
        "logdet_v": np.linalg.slogdet(V)[1],
        "logdet_c": np.linalg.slogdet(C)[1] if p else 0.0,
    }


def _dense_grad(X, Z, y, g, G, theta, rows, cols, reml, h=1e-6):
    q = Z.shape[1]
    out = []
    for e in np.eye(len(theta)):
        up = _dense(X, Z, y, g, G, _lam(theta + h * e, rows, cols, q), reml)
        dn = _dense(X, Z, y, g, G, _lam(theta - h * e, rows, cols, q), reml)
        out.append((up["deviance"] - dn["deviance"]) / (2 * h))
    return np.array(out)


def _sleep_stats(sleepstudy, slope: bool = True):
    codes, _ = pd.factorize(sleepstudy["Subject"], sort=True)
    n = len(sleepstudy)
    days = sleepstudy["Days"].to_numpy(float)
    X = np.column_stack([np.ones(n), days])
    Z = X if slope else np.ones((n, 1))
    y = sleepstudy["Reaction"].to_numpy(float)
    return compute_group_stats(X, Z, y, codes, int(codes.max()) + 1)


# ------------------------------------------------------------ group statistics
def test_group_stats_missing_highest_code_rejected():
    with pytest.raises(
        ValueError, match=r"^every group code 0\.\.n_groups-1 must occur at least once$"
    ):
        compute_group_stats(
            np.ones((4, 1)), np.ones((4, 1)), np.ones(4), np.array([0, 0, 1, 1]), 3
        )


@pytest.mark.parametrize("codes", [[0, 1, 2], [-1, 0, 1], [0, 5, 1]])
def test_group_stats_code_out_of_range(codes):
    # 2 == n_groups is the first code out of range
    with pytest.raises(ValueError, match=r"^group codes must lie in 0\.\.n_groups-1$"):
        compute_group_stats(
            np.ones((3, 1)), np.ones((3, 1)), np.ones(3), np.array(codes), 2
        )


def test_group_stats_no_rows():
    s = compute_group_stats(
        np.zeros((0, 2)), np.zeros((0, 1)), np.zeros(0), np.zeros(0, int), 0
    )
    assert (s.n, s.p, s.q, s.G, s.yty) == (0, 2, 1, 0, 0.0)
    assert (
        s.ZtZ.shape == (0, 1, 1) and s.ZtX.shape == (0, 1, 2) and s.Zty.shape == (0, 1)
    )
    assert_allclose(s.XtX, np.zeros((2, 2)))


def test_group_stats_convert_small_integer_and_float_codes():
    """int8 inputs (whose products overflow in int8) and float group codes are
    converted before any arithmetic."""
    rng = np.random.default_rng(4)
    n = 12
    g = np.repeat([0, 1, 2], 4)
    X = rng.integers(10, 30, (n, 2)).astype(np.int8)
    Z = rng.integers(10, 30, (n, 2)).astype(np.int8)
    y = rng.integers(10, 30, n).astype(np.int8)
    s = compute_group_stats(X, Z, y, g.astype(float), 3)
    Xf, Zf, yf = X.astype(float), Z.astype(float), y.astype(float)
    for i in range(3):
        m = g == i
        assert_allclose(s.ZtZ[i], Zf[m].T @ Zf[m], rtol=1e-14)
        assert_allclose(s.ZtX[i], Zf[m].T @ Xf[m], rtol=1e-14)
        assert_allclose(s.Zty[i], Zf[m].T @ yf[m], rtol=1e-14)
    assert_allclose(s.XtX, Xf.T @ Xf, rtol=1e-14)
    assert_allclose(s.Xty, Xf.T @ yf, rtol=1e-14)
    assert s.yty == float(yf @ yf)
    assert s.n == n and s.n_per_group.tolist() == [4, 4, 4]
    assert s.XtX.dtype == s.Xty.dtype == s.ZtZ.dtype == np.float64


def test_group_stats_shapes_and_components():
    X, Z, y, g, G, *_ = _small(3, 2, seed=1)
    s = compute_group_stats(X, Z, y, g, G)
    assert (s.p, s.q, s.G, s.n) == (2, 3, G, len(y))
    assert s.n_per_group.tolist() == np.bincount(g).tolist()
    comp = s.components()
    assert s.components() is comp  # computed once, then cached
    for j in range(3):
        assert_allclose(comp.Zy[j], [Z[g == i, j] @ y[g == i] for i in range(G)])
        assert_allclose(comp.ZX[j], [Z[g == i, j] @ X[g == i] for i in range(G)])
        for k in range(3):
            zz = [Z[g == i, j] @ Z[g == i, k] for i in range(G)]
            assert_allclose(comp.S[j][k], zz, rtol=1e-13)
            assert comp.S[j][k].flags.c_contiguous
    assert_allclose(comp.S_sum, Z.T @ Z, rtol=1e-13)


# ------------------------------------------------ deviance against the dense form
DEV_CASES = [
    (1, 0, [0.7]),
    (1, 1, [1.3]),
    (1, 3, [0.0]),
    (2, 1, [0.8, -0.3, 0.5]),
    (2, 3, [0.8, 0.0, 0.4]),
    (2, 2, [0.0, 0.3, 0.6]),
    (2, 2, [0.9, 0.2, 0.0]),
    (3, 1, [0.9, 0.1, -0.2, 0.5, 0.05, 0.3]),
    (3, 3, [0.9, 0.0, -0.2, 0.0, 0.05, 0.3]),
    # entries exactly 1 (lme4's start) must not be mistaken for structural zeros
    (1, 1, [1.0]),
    (2, 2, [1.0, 0.5, 1.0]),
    (3, 2, [1.0, 1.0, 0.0, 1.0, 0.3, 1.0]),
]


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize(("q", "p", "theta"), DEV_CASES)
def test_deviance_and_gradient_equal_dense_form(q, p, theta, reml):
    """Intercept-only (p=1) and no fixed effect (p=0) included: the REML gradient
    has its C^-1 correction whenever p >= 1."""
    X, Z, y, g, G, rows, cols, _ = _small(q, p, seed=q + p)
    s = compute_group_stats(X, Z, y, g, G)
    theta = np.array(theta)
    ref = _dense(X, Z, y, g, G, _lam(theta, rows, cols, q), reml)
    d, grad = profiled_deviance(theta, s, rows, cols, reml=reml, gradient=True)
    assert d == pytest.approx(ref["deviance"], rel=1e-11)
    assert profiled_deviance(theta, s, rows, cols, reml=reml) == d
    num = _dense_grad(X, Z, y, g, G, theta, rows, cols, reml)
    assert_allclose(grad, num, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("reml", [True, False])
def test_deviance_of_a_small_scale_outcome(reml):
    """y in thousandths: r^2 far below 1 is used as it is."""
    X, Z, y, g, G, rows, cols, _ = _small(2, 2, seed=6)
    y = 1e-3 * y
    s = compute_group_stats(X, Z, y, g, G)
    theta = np.array([0.7, 0.2, 0.4])
    ref = _dense(X, Z, y, g, G, _lam(theta, rows, cols, 2), reml)
    assert ref["sigma2"] < 1e-5
    est = estimates_at(theta, s, rows, cols, reml=reml)
    assert est.deviance == pytest.approx(ref["deviance"], rel=1e-11)
    assert est.sigma2 == pytest.approx(ref["sigma2"], rel=1e-10)


def test_reml_is_default_and_differs_from_ml():
    X, Z, y, g, G, rows, cols, _ = _small(1, 1, seed=3)
    s = compute_group_stats(X, Z, y, g, G)
    theta = np.array([0.9])
    lam = _lam(theta, rows, cols, 1)
    assert profiled_deviance(theta, s, rows, cols) == pytest.approx(
        _dense(X, Z, y, g, G, lam, True)["deviance"], rel=1e-12
    )
    assert profiled_deviance(theta, s, rows, cols, reml=False) == pytest.approx(
        _dense(X, Z, y, g, G, lam, False)["deviance"], rel=1e-12
    )


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("reml", [True, False])
def test_zero_outcome_uses_smallest_positive_residual(reml):
    """y = 0: r^2 = 0 exactly, replaced by the smallest positive double."""
    X, Z, _, g, G, rows, cols, _ = _small(2, 2, seed=5)
    y = np.zeros(len(g))
    s = compute_group_stats(X, Z, y, g, G)
    theta = np.array([0.8, 0.1, 0.5])
    ref = _dense(X, Z, y + 1.0, g, G, _lam(theta, rows, cols, 2), reml)
    n, p = X.shape
    nu = n - p if reml else n
    tiny = np.finfo(float).tiny
    expect = ref["logdet_v"] + nu * (1 + LOG2PI + np.log(tiny / nu))
    if reml:
        expect += ref["logdet_c"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the deviance alone warns about nothing
        d = profiled_deviance(theta, s, rows, cols, reml=reml)
    assert np.isfinite(d) and d == pytest.approx(expect, rel=1e-12)
    est = estimates_at(theta, s, rows, cols, reml=reml)
    assert est.sigma2 == tiny / nu
    assert_allclose(est.beta, 0.0, atol=0)


def test_collinear_design_raises():
    X, Z, y, g, G, rows, cols, _ = _small(1, 2, seed=0)
    X = np.column_stack([X, 2 * X[:, 1]])
    s = compute_group_stats(X, Z, y, g, G)
    with pytest.raises(
        np.linalg.LinAlgError, match=r"^X'V\^-1X is not positive definite$"
    ):
        profiled_deviance(np.array([0.5]), s, rows, cols)


# --------------------------------------------------------------- estimates_at
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize(("q", "theta"), [(1, [1.1]), (2, [0.8, -0.3, 0.5])])
def test_estimates_at_every_field_equals_dense(q, theta, reml):
    X, Z, y, g, G, rows, cols, _ = _small(q, 2, seed=11)
    s = compute_group_stats(X, Z, y, g, G)
    theta_in = np.array(theta)
    est = estimates_at(theta_in, s, rows, cols, reml=reml)
    lam = _lam(theta_in, rows, cols, q)
    ref = _dense(X, Z, y, g, G, lam, reml)
    assert est.theta is not theta_in
    assert_allclose(est.theta, theta, rtol=0)
    theta_in[0] = 99.0  # the estimates keep their own copy
    assert est.theta[0] == theta[0]
    assert_allclose(est.beta, ref["beta"], rtol=1e-10)
    assert est.sigma2 == pytest.approx(ref["sigma2"], rel=1e-11)
    assert_allclose(est.cov_beta, ref["sigma2"] * np.linalg.inv(ref["C"]), rtol=1e-9)
    assert_allclose(est.cov_re, ref["sigma2"] * lam @ lam.T, rtol=1e-11)
    assert_allclose(est.b, ref["b"], rtol=1e-9, atol=1e-12)
    assert_allclose(est.cov_b, ref["cov_b"], rtol=1e-8, atol=1e-12)
    assert est.deviance == pytest.approx(ref["deviance"], rel=1e-11)
    assert est.converged is True and est.n_iter == 0 and est.message == ""
    num = _dense_grad(X, Z, y, g, G, np.array(theta), rows, cols, reml)
    assert_allclose(est.grad, num, rtol=2e-6, atol=2e-6)
    assert_allclose(est.C, ref["C"], rtol=1e-10)
    assert_allclose(est.lam, lam, rtol=0)
    minv = [
        np.linalg.inv(lam.T @ Z[g == i].T @ Z[g == i] @ lam + np.eye(q))
        for i in range(G)
    ]
    assert_allclose(est.Minv, minv, rtol=1e-10)


def test_stack_fills_a_missing_triangle():
    a, b, d = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0, 6.0])
    expect = [[[1, 3], [3, 5]], [[2, 4], [4, 6]]]
    assert_allclose(N._stack([[a, b], [None, d]]), expect)
    assert_allclose(N._stack([[a, None], [b, d]]), expect)
    assert_allclose(N._stack([[a]]), [[[1]], [[2]]])


# ------------------------------------------------------------- optimiser edges
def test_iteration_limit_is_not_converged(monkeypatch):
    X, Z, y, g, G, rows, cols, lower = _small(2, 2, seed=2, n_groups=12)
    s = compute_group_stats(X, Z, y, g, G)
    calls = []
    real = N.profiled_deviance

    def counting(*args, **kw):
        calls.append(kw.get("gradient", False))
        return real(*args, **kw)

    monkeypatch.setattr(N, "profiled_deviance", counting)
    est = fit_profiled(s, rows, cols, lower, max_iter=1)
    assert est.converged is False
    assert "ITERATIONS REACHED LIMIT" in est.message
    # only L-BFGS-B's evaluations: no Newton polish, no boundary probe after the limit
    assert all(calls) and est.n_iter == len(calls) >= 2
    monkeypatch.setattr(N, "profiled_deviance", real)
    ref = _dense(X, Z, y, g, G, _lam(est.theta, rows, cols, 2), True)
    assert est.deviance == pytest.approx(ref["deviance"], rel=1e-11)
    full = fit_profiled(s, rows, cols, lower)
    assert full.converged and full.deviance < est.deviance - 1e-6


def test_iteration_limit_warns_in_the_model(sleepstudy):
    with pytest.warns(ConvergenceWarning, match=r"did not converge \(STOP: TOTAL NO"):
        m = LinearMixedModel(
            "Reaction ~ Days + (Days | Subject)", time="Days", max_iter=1
        ).fit(sleepstudy)
    assert m.converged_ is False


def _quantised(real, digits):
    """The deviance rounded to ``digits`` decimals: a known, platform-free noise floor."""

    def dev(*args, **kw):
        out = real(*args, **kw)
        if kw.get("gradient", False):
            return float(np.round(out[0], digits)), out[1]
        return float(np.round(out, digits))

    return dev


@pytest.mark.parametrize("q", [1, 2])
def test_stall_exit_then_newton_reaches_the_optimum(monkeypatch, q):
    """A deviance known only to 0.01 stops L-BFGS-B ('stalled at rounding level');
    Newton steps on the exact gradient then finish the fit."""
    X, Z, y, g, G, rows, cols, lower = _small(q, 2, seed=q, n_groups=30)
    s = compute_group_stats(X, Z, y, g, G)
    exact = fit_profiled(s, rows, cols, lower)
    assert exact.message != "stalled at rounding level"
    monkeypatch.setattr(N, "profiled_deviance", _quantised(N.profiled_deviance, 2))
    est = fit_profiled(s, rows, cols, lower)
    assert est.message == "stalled at rounding level"
    assert est.converged is True
    assert_allclose(est.theta, exact.theta, atol=1e-5)
    assert est.deviance == pytest.approx(exact.deviance, abs=1e-8)
    assert est.n_iter > N._STALL_EVALS


def test_verdict_follows_newton_or_projected_gradient(monkeypatch):
    """converged = Newton step below tolerance, or else |projected gradient| < 1e-3."""
    X, Z, y, g, G, rows, cols, lower = _small(1, 2, seed=4, n_groups=30)
    s = compute_group_stats(X, Z, y, g, G)
    good = fit_profiled(s, rows, cols, lower)
    assert good.converged and abs(good.grad[0]) < 1e-6
    far = good.theta + 0.5
    far_grad = profiled_deviance(far, s, rows, cols, gradient=True)[1]
    assert abs(far_grad[0]) > 1e-1
    # Newton fails at the optimum: the gradient check alone says converged
    monkeypatch.setattr(N, "_polish", lambda th, fun, lower, step_tol: (th, False))
    assert fit_profiled(s, rows, cols, lower).converged is True
    # Newton fails far from it: not converged, and the model warns
    monkeypatch.setattr(N, "_polish", lambda th, fun, lower, step_tol: (far, False))
    est = fit_profiled(s, rows, cols, lower)
    assert est.converged is False
    assert_allclose(est.theta, far)
    num = _dense_grad(X, Z, y, g, G, far, rows, cols, True)
    assert_allclose(est.grad, num, rtol=1e-5)
    # Newton reports success: trusted even where the gradient is large
    monkeypatch.setattr(N, "_polish", lambda th, fun, lower, step_tol: (far, True))
    assert fit_profiled(s, rows, cols, lower).converged is True


def test_unconverged_fit_warns_with_message_and_gradient(monkeypatch, sleepstudy):
    real = N._polish

    def off_by_03(th, fun, lower, step_tol):
        return real(th, fun, lower, step_tol=step_tol)[0] + 0.3, False

    monkeypatch.setattr(N, "_polish", off_by_03)
    pattern = r"did not converge \(CONVERGENCE: .*max \|gradient\|"
    with pytest.warns(ConvergenceWarning, match=pattern):
        m = LinearMixedModel("Reaction ~ Days + (Days | Subject)", time="Days").fit(
            sleepstudy
        )
    assert m.converged_ is False


@pytest.mark.parametrize(
    ("case", "slope", "theta0"),
    [("sleep_reml", True, [1.0, 0.0, 0.0]), ("sleep_int", False, [0.0])],
)
def test_start_on_the_boundary_escapes_to_lme4_optimum(
    monkeypatch, sleepstudy, lme4_values, case, slope, theta0
):
    """A diagonal theta started at 0 stays there under L-BFGS-B (the deviance is even
    in it); the boundary probe restarts the fit, which then matches lme4."""
    ref = lme4_values[case]
    s = _sleep_stats(sleepstudy, slope)
    q = s.q
    rows, cols = (
        (np.array([0, 1, 1]), np.array([0, 0, 1]))
        if q == 2
        else (
            np.array([0]),
            np.array([0]),
        )
    )
    lower = np.where(rows == cols, 0.0, -np.inf)
    calls, restarts = [], []
    real_dev, real_escape = N.profiled_deviance, N._escape_boundary

    def counting(*args, **kw):
        calls.append(kw.get("gradient", False))
        return real_dev(*args, **kw)

    def escape(*args):
        assert args[-1] is True  # probes on the fit's own criterion (REML here)
        out = real_escape(*args)
        restarts.append(out is not None)
        return out

    monkeypatch.setattr(N, "profiled_deviance", counting)
    monkeypatch.setattr(N, "_escape_boundary", escape)
    est = fit_profiled(s, rows, cols, lower, theta0=np.array(theta0))
    assert est.converged is True
    assert_allclose(est.theta, np.atleast_1d(ref["theta"]), rtol=1e-4, atol=1e-6)
    assert est.deviance == pytest.approx(ref["criterion"], rel=1e-9)
    assert restarts[0] is True and restarts[-1] is False
    # every objective evaluation plus one per restart
    assert est.n_iter == sum(calls) + sum(restarts)


def test_start_below_bound_is_clipped(sleepstudy, lme4_values):
    s = _sleep_stats(sleepstudy, slope=False)
    one = np.array([0])
    est = fit_profiled(s, one, one, np.array([0.0]), theta0=np.array([-2.0]))
    assert est.converged
    assert est.theta[0] == pytest.approx(lme4_values["sleep_int"]["theta"], rel=1e-5)


def test_debug_log_reports_the_fit(caplog):
    X, Z, y, g, G, rows, cols, lower = _small(1, 2, seed=4, n_groups=30)
    s = compute_group_stats(X, Z, y, g, G)
    with caplog.at_level(logging.DEBUG, logger="alsprog.models.lmm._numerics"):
        est = fit_profiled(s, rows, cols, lower)
    msgs = [r.getMessage() for r in caplog.records if r.name == N.__name__]
    pg = abs(est.grad[0]) if est.theta[0] > 0 or est.grad[0] < 0 else 0.0
    assert msgs == [
        f"profiled fit: {est.message}; {est.n_iter} evaluations, "
        f"deviance {est.deviance:.12g}, |pg| {pg:.2e}"
    ]


# ----------------------------------------------------------- boundary probe
def _q1(seed=4):
    X, Z, y, g, G, rows, cols, lower = _small(1, 2, seed=seed, n_groups=30)
    return compute_group_stats(X, Z, y, g, G), rows, cols, lower, X, Z, y, g, G


def test_escape_boundary_probes_only_diagonals_at_the_bound():
    s, rows, cols, lower, *_ = _q1()
    opt = fit_profiled(s, rows, cols, lower).theta[0]
    assert opt > 1.0  # every probe (<= 1) beats 0 and 0.05
    # interior points are left alone, even far from the optimum
    for t in (0.05, 5.0):
        assert N._escape_boundary(np.array([t]), s, rows, cols, lower, True) is None
    # 1e-10 still counts as at the bound; the best probe is 1.0, the closest to opt
    for t in (0.0, 1e-10):
        out = N._escape_boundary(np.array([t]), s, rows, cols, lower, True)
        assert_allclose(out, [1.0])


def test_escape_boundary_keeps_a_genuine_zero():
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(10), 4)
    y = rng.normal(size=40)
    y -= np.bincount(g, y)[g] / 4
    s = compute_group_stats(np.ones((40, 1)), np.ones((40, 1)), y, g, 10)
    one = np.array([0])
    for reml in (True, False):
        assert (
            N._escape_boundary(np.array([0.0]), s, one, one, np.array([0.0]), reml)
            is None
        )


def test_escape_boundary_picks_best_probe_per_coordinate():
    """q = 2, both diagonals at 0: the best single-coordinate probe wins (ML and REML)."""
    X, Z, y, g, G, rows, cols, lower = _small(2, 2, seed=8, n_groups=12)
    s = compute_group_stats(X, Z, y, g, G)
    theta = np.array([0.0, 0.2, 0.0])
    for reml in (True, False):
        base = _dense(X, Z, y, g, G, _lam(theta, rows, cols, 2), reml)["deviance"]
        best, best_d = None, base
        for j in (0, 2):
            for t in (1e-3, 1e-2, 0.1, 0.5, 1.0):
                c = theta.copy()
                c[j] = t
                d = _dense(X, Z, y, g, G, _lam(c, rows, cols, 2), reml)["deviance"]
                if d < best_d - 1e-10 * abs(best_d):
                    best, best_d = c, d
        out = N._escape_boundary(theta, s, rows, cols, lower, reml)
        assert best is not None
        assert_allclose(out, best, rtol=0)


def test_escape_boundary_skips_singular_probes(monkeypatch):
    """A probe whose X'V^-1X is singular is skipped, not fatal."""

    s, rows, cols, lower, *_ = _q1()
    real = N.profiled_deviance

    def dev(theta, *args, **kw):
        if theta[0] == 1e-3:
            raise np.linalg.LinAlgError("X'V^-1X is not positive definite")
        return real(theta, *args, **kw)

    monkeypatch.setattr(N, "profiled_deviance", dev)
    out = N._escape_boundary(np.array([0.0]), s, rows, cols, lower, True)
    assert_allclose(out, [1.0])  # the later probes are still tried


# ----------------------------------------------------------- the stall detector
def test_best_tracks_improvements_and_raises_after_stall():
    b = N._Best(np.array([1.0]))
    assert b.deviance == np.inf and b.since == 0 and b.active is True
    b.update(10.0, np.array([2.0]))
    assert (b.deviance, b.theta[0], b.since) == (10.0, 2.0, 0)
    b.update(9.0, np.array([3.0]))
    assert (b.deviance, b.theta[0]) == (9.0, 3.0)
    # a far-away worse probe is normal line-search progress
    b.update(9.5, np.array([4.0]))
    assert b.since == 0
    # an improvement of 1e-12 relative or less is no improvement
    for k in range(1, N._STALL_EVALS):
        b.update(9.0 - 8e-12, np.array([3.0 + 2.9e-5]))  # within 1e-5 relative
        assert b.since == k and b.deviance == 9.0
    with pytest.raises(N._Stalled):
        b.update(9.0, np.array([3.0]))


def test_best_negative_deviance_threshold_uses_its_size():
    b = N._Best(np.array([1.0]))
    b.update(-9.0, np.array([1.0]))
    b.update(-9.0 + 8e-12, np.array([1.0]))  # worse, not an improvement
    assert b.deviance == -9.0 and b.since == 1
    b.update(-9.0 - 8e-12, np.array([1.0]))  # better by less than 1e-12 relative
    assert b.deviance == -9.0 and b.since == 2
    b.update(-9.0 - 1e-11, np.array([1.0]))
    assert b.deviance == -9.0 - 1e-11 and b.since == 0


def test_best_inactive_never_raises_and_first_value_is_taken():
    start = np.array([0.5])
    b = N._Best(start)
    start[0] = 9.0
    assert b.theta[0] == 0.5
    th = np.array([0.5])
    b.update(np.inf, th)  # not finite: taken anyway, then any finite value improves
    b.update(3.0, th)
    assert b.deviance == 3.0 and b.since == 0
    b.active = False
    for _ in range(2 * N._STALL_EVALS):
        b.update(3.0, th)
    assert b.since == 2 * N._STALL_EVALS
    th[0] = 7.0
    assert b.theta[0] == 0.5  # copies, not references


def test_best_near_is_relative_to_larger_of_one_and_theta():
    b = N._Best(np.array([0.0, 0.0]))
    b.update(1.0, np.array([200.0, 0.0]))
    b.update(2.0, np.array([200.0 + 1.9e-3, 1e-5]))  # within 1e-5 * 200 and 1e-5 * 1
    assert b.since == 1
    b.update(2.0, np.array([200.0 + 2.1e-3, 0.0]))
    b.update(2.0, np.array([200.0, 1.1e-5]))
    assert b.since == 1


def test_projected_gradient():
    theta = np.array([0.0, 0.0, 0.5, -1.0])
    grad = np.array([0.5, -2.0, 3.0, 0.0])
    lower = np.array([0.0, 0.0, 0.0, -np.inf])
    pg = N._projected_gradient(theta, grad, lower)
    assert pg.tolist() == [0.0, -2.0, 3.0, 0.0]
    assert grad.tolist() == [0.5, -2.0, 3.0, 0.0]  # not changed in place
    assert N._projected_gradient(np.zeros(1), np.zeros(1), np.zeros(1)).tolist() == [
        0.0
    ]


# ------------------------------------------------------------------- Newton phase
def _quadratic(A, b):
    """f(x) = x'Ax/2 - b'x with its gradient, counting evaluations."""
    A, b = np.asarray(A, float), np.asarray(b, float)
    calls = []

    def fun(x):
        calls.append(x.copy())
        return float(0.5 * x @ A @ x - b @ x), A @ x - b

    return fun, calls


def test_polish_newton_reaches_quadratic_minimum():
    A, b = [[2.0, 0.5], [0.5, 1.0]], [1.0, -1.0]
    fun, calls = _quadratic(A, b)
    th, ok = N._polish(np.array([3.0, 3.0]), fun, np.full(2, -np.inf), step_tol=1e-5)
    assert ok is True
    assert_allclose(th, np.linalg.solve(A, b), rtol=1e-9)
    # start, 2 Hessian columns, the big step, then the small confirming step
    assert len(calls) == 5


def test_polish_rejects_indefinite_hessian():
    fun, calls = _quadratic([[1.0, 0.0], [0.0, -1.0]], [0.0, 0.0])
    start = np.array([0.3, 0.2])
    th, ok = N._polish(start, fun, np.full(2, -np.inf), step_tol=1e-5)
    assert ok is False and th.tolist() == [0.3, 0.2] and len(calls) == 3


def test_polish_rejects_singular_hessian():
    fun, _ = _quadratic([[1.0, 1.0], [1.0, 1.0]], [0.0, 0.0])
    th, ok = N._polish(np.array([0.3, 0.2]), fun, np.full(2, -np.inf), step_tol=1e-5)
    assert ok is False and th.tolist() == [0.3, 0.2]


def test_polish_nonfinite_start():
    th, ok = N._polish(
        np.array([1.0]), lambda x: (np.inf, np.zeros(1)), np.zeros(1), step_tol=1e-5
    )
    assert ok is False and th.tolist() == [1.0]


def test_polish_all_at_bound_pointing_out():
    # f = (x + 0.25)^2 on x >= 0: minimum at the bound, gradient 0.5 > 0 there; and
    # x^2 at its own minimum 0 (gradient exactly 0)
    for shift in (0.25, 0.0):
        calls = []

        def fun(x, shift=shift, calls=calls):
            calls.append(1)
            return float((x[0] + shift) ** 2), np.array([2 * (x[0] + shift)])

        th, ok = N._polish(np.array([0.0]), fun, np.zeros(1), step_tol=1e-5)
        assert ok is True and th.tolist() == [0.0] and len(calls) == 1


def test_polish_stops_when_bound_becomes_active():
    # f = (x + 0.25)^2 started at 0.5 >= 0: the Newton step lands on -0.25, clipped
    # to 0, where the gradient (0.5) points out of the feasible set: stop there
    calls = []

    def fun(x):
        calls.append(1)
        return float((x[0] + 0.25) ** 2), np.array([2 * (x[0] + 0.25)])

    th, ok = N._polish(np.array([0.5]), fun, np.zeros(1), step_tol=1e-5)
    assert ok is False and th.tolist() == [0.0] and len(calls) == 3


def test_polish_lands_on_the_bound_at_a_zero_gradient():
    def fun(x):
        return float(x[0] ** 2), np.array([2 * x[0]])

    th, ok = N._polish(np.array([0.5]), fun, np.zeros(1), step_tol=1e-5)
    assert ok is True and th[0] == pytest.approx(0.0, abs=1e-10)


def test_polish_keeps_point_when_step_goes_uphill():
    # deviance and gradient disagree: the step raises the deviance, theta is kept;
    # the verdict is whether that rejected step was already below the tolerance
    def fun_big(x):
        return float(100.0 - x[0]), np.array([2 * (x[0] - 1)])

    th, ok = N._polish(np.array([2.0]), fun_big, np.full(1, -np.inf), step_tol=1e-5)
    assert ok is False and th.tolist() == [2.0]

    def fun_small(x):
        return float(x[0] ** 2 + 1e6 * abs(x[0] - 2.0)), np.array(
            [2 * (x[0] - 2.0 + 1e-8)]
        )

    th, ok = N._polish(np.array([2.0]), fun_small, np.full(1, -np.inf), step_tol=1e-5)
    assert ok is True and th.tolist() == [2.0]


def test_polish_gives_up_after_max_steps():
    # f = cosh(x): the Hessian frozen at the start (cosh(3)) makes every step too
    # short, so the steps shrink slowly
    def fun(x):
        return float(np.cosh(x[0])), np.array([np.sinh(x[0])])

    th, ok = N._polish(np.array([3.0]), fun, np.full(1, -np.inf), step_tol=1e-8)
    assert ok is False and 0 < th[0] < 3.0
    th1, ok1 = N._polish(
        np.array([3.0]), fun, np.full(1, -np.inf), step_tol=1e-8, max_steps=1
    )
    x1 = 3.0 - np.sinh(3.0) / np.cosh(
        3.0
    )  # one Newton step (finite-difference Hessian)
    assert ok1 is False and th1[0] == pytest.approx(x1, rel=1e-4)
    # six steps by default: x_{k+1} = x_k - sinh(x_k)/cosh(3)
    x = 3.0
    for _ in range(6):
        x -= np.sinh(x) / np.cosh(3.0)
    assert th[0] == pytest.approx(x, rel=1e-3)


# ------------------------------------------------ optimiser start, stop rules, verdict
def _recording(monkeypatch):
    """Record every theta the objective is evaluated at (and whether with gradient)."""
    seen = []
    real = N.profiled_deviance

    def dev(theta, *args, **kw):
        seen.append((np.array(theta, dtype=float), kw.get("gradient", False)))
        return real(theta, *args, **kw)

    monkeypatch.setattr(N, "profiled_deviance", dev)
    return seen


def test_default_start_is_lme4s_and_count_is_exact(
    monkeypatch, sleepstudy, lme4_values
):
    s = _sleep_stats(sleepstudy)
    rows, cols = np.array([0, 1, 1]), np.array([0, 0, 1])
    lower = np.array([0.0, -np.inf, 0.0])
    seen = _recording(monkeypatch)
    est = fit_profiled(s, rows, cols, lower)
    assert seen[0][0].tolist() == [1.0, 0.0, 1.0]  # lme4: 1 on the diagonal, 0 off it
    assert est.n_iter == len(seen) and all(grad for _, grad in seen)
    assert est.converged is True
    assert est.message == "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"
    assert_allclose(est.theta, lme4_values["sleep_reml"]["theta"], rtol=1e-4)


def test_start_below_bound_is_clipped_before_the_first_evaluation(monkeypatch):
    X, Z, y, g, G, rows, cols, lower = _small(2, 2, seed=2, n_groups=30)
    s = compute_group_stats(X, Z, y, g, G)
    seen = _recording(monkeypatch)
    est = fit_profiled(s, rows, cols, lower, theta0=np.array([-0.5, -0.25, 2.0]))
    assert seen[0][0].tolist() == [0.0, -0.25, 2.0]
    assert est.converged


@pytest.mark.parametrize(
    ("tol", "stop"),
    [
        (1e-6, "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"),
        (1e-13, "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"),
    ],
)
def test_tol_sets_the_quasi_newton_stop(tol, stop):
    """ftol = 10 tol stops L-BFGS-B early for a loose tol, the projected gradient
    (gtol = 1e-6 n) for a tight one; the Newton phase finishes both."""
    X, Z, y, g, G, rows, cols, lower = _small(1, 2, seed=4, n_groups=30)
    s = compute_group_stats(X, Z, y, g, G)
    est = fit_profiled(s, rows, cols, lower, tol=tol)
    assert est.message == stop and est.converged
    # the dense deviance's derivative changes sign within 2e-5 of the estimate
    below, above = (
        _dense_grad(X, Z, y, g, G, est.theta + d, rows, cols, True)[0]
        for d in (-2e-5, 2e-5)
    )
    assert below < 0 < above


def test_singular_trial_points_count_as_infinite_deviance(monkeypatch):
    """A trial theta whose X'V^-1X is singular is an infinite deviance to L-BFGS-B,
    which backs off and still finds the optimum."""
    X, Z, y, g, G, rows, cols, lower = _small(1, 2, seed=4, n_groups=30)
    s = compute_group_stats(X, Z, y, g, G)
    exact = fit_profiled(s, rows, cols, lower)
    real = N.profiled_deviance
    hits = []

    def dev(theta, *args, **kw):
        if theta[0] < 1.0:
            hits.append(float(theta[0]))
            raise np.linalg.LinAlgError("X'V^-1X is not positive definite")
        return real(theta, *args, **kw)

    monkeypatch.setattr(N, "profiled_deviance", dev)
    est = fit_profiled(s, rows, cols, lower, theta0=np.array([1.5]))
    assert hits and est.converged
    assert est.theta[0] == pytest.approx(exact.theta[0], abs=1e-5)


@pytest.mark.parametrize(("pg", "converged"), [(1e-3, False), (0.999e-3, True)])
def test_gradient_verdict_threshold_is_strict(monkeypatch, pg, converged):
    X, Z, y, g, G, rows, cols, lower = _small(1, 2, seed=4, n_groups=30)
    s = compute_group_stats(X, Z, y, g, G)
    monkeypatch.setattr(N, "_polish", lambda th, fun, lower, step_tol: (th, False))
    monkeypatch.setattr(N, "_projected_gradient", lambda th, gr, lo: np.array([pg]))
    assert fit_profiled(s, rows, cols, lower).converged is converged


def test_iteration_limit_overrides_a_small_gradient(monkeypatch):
    X, Z, y, g, G, rows, cols, lower = _small(1, 2, seed=4, n_groups=30)
    s = compute_group_stats(X, Z, y, g, G)
    monkeypatch.setattr(N, "_projected_gradient", lambda th, gr, lo: np.zeros(1))
    est = fit_profiled(s, rows, cols, lower, max_iter=1)
    assert est.converged is False and "ITERATIONS REACHED LIMIT" in est.message


def test_polish_hessian_probes_forward_steps():
    """Forward differences with step 1e-5 max(1, |theta_i|), one coordinate at a time."""
    fun, calls = _quadratic(np.diag([1.0, 2.0, 3.0]), [0.0, 0.0, 0.0])
    start = np.array([1.5, 0.5, -3.0])
    N._polish(start, fun, np.full(3, -np.inf), step_tol=1e-5)
    assert calls[0].tolist() == start.tolist()
    for i, h in enumerate([1.5e-5, 1e-5, 3e-5]):
        probe = start.copy()
        probe[i] += h
        assert calls[1 + i].tolist() == probe.tolist()


def test_polish_singular_zero_eigenvalue_and_failed_eigensolver(monkeypatch):
    fun, _ = _quadratic(np.diag([1.0, 0.0]), [0.0, 0.0])
    th, ok = N._polish(np.array([0.3, 0.2]), fun, np.full(2, -np.inf), step_tol=1e-5)
    assert ok is False and th.tolist() == [0.3, 0.2]

    def broken(H):
        raise np.linalg.LinAlgError("Eigenvalues did not converge")

    monkeypatch.setattr(np.linalg, "eigvalsh", broken)
    fun, _ = _quadratic(np.diag([1.0, 2.0]), [1.0, 1.0])
    th, ok = N._polish(np.array([0.3, 0.2]), fun, np.full(2, -np.inf), step_tol=1e-5)
    assert ok is False and th.tolist() == [0.3, 0.2]


@pytest.mark.parametrize(
    ("x0", "step", "calls"),
    [
        (4.0, 3e-5, 3),  # 3e-5 <= 1e-5 * |4|: the first step is already small
        (0.5, 1.5e-5, 4),  # 1.5e-5 > 1e-5 * max(1, 0.5): one more step
    ],
)
def test_polish_step_tolerance_is_relative_to_max_one_theta(x0, step, calls):
    fun, seen = _quadratic([[1.0]], [x0 - step])
    th, ok = N._polish(np.array([x0]), fun, np.full(1, -np.inf), step_tol=1e-5)
    assert ok is True and th[0] == pytest.approx(x0 - step, abs=1e-12)
    assert len(seen) == calls


@pytest.mark.parametrize(
    ("d0", "d1", "accepted"),
    [
        (1.0, 1.0 + 1e-13, True),  # exactly at the allowance: accepted
        (1.0, 1.0 + 0.5e-13, True),
        (1e4, 1e4 + 5e-10, True),  # the allowance scales with |d0|
        (1.0, 1.0 + 1.5e-13, False),
        (1.0, 1.5, False),
    ],
)
def test_polish_accepts_a_step_up_to_rounding_allowance(d0, d1, accepted):
    """A Newton step is taken when the deviance rises by at most 1e-13 max(1, |d0|)."""

    def fun(x):
        dev = d0 if abs(x[0] - 1.0) > 1e-3 else d1
        return dev, np.array([x[0] - 1.0])

    th, ok = N._polish(np.array([2.0]), fun, np.full(1, -np.inf), step_tol=1e-5)
    if accepted:
        assert ok is True and th[0] == pytest.approx(1.0, abs=1e-9)
    else:
        assert ok is False and th.tolist() == [2.0]


def test_best_improvement_must_exceed_relative_threshold():
    b = N._Best(np.array([1.0]))
    b.update(1.0, np.array([1.0]))
    b.update(1.0 - 1e-12 * abs(1.0), np.array([1.0]))  # exactly at the threshold
    assert b.deviance == 1.0 and b.since == 1


@pytest.mark.parametrize("target", [1e-3, 1e-2, 0.1, 0.5, 1.0])
def test_escape_boundary_probe_values(monkeypatch, target):
    """Probes 1e-3, 1e-2, 0.1, 0.5, 1; the one with the lowest deviance wins."""
    s, rows, cols, lower, *_ = _q1()
    monkeypatch.setattr(
        N, "profiled_deviance", lambda th, *a, **k: 10.0 + (th[0] - target) ** 2
    )
    out = N._escape_boundary(np.array([0.0]), s, rows, cols, lower, True)
    assert out.tolist() == [target]


@pytest.mark.parametrize(
    ("d0", "d_probe", "escapes"),
    [
        (1.0, 1.0 - 1e-10, False),  # exactly 1e-10 better: not enough
        (1.0, 1.0 - 1.5e-10, True),
        (1.0, 1.0 + 1e-12, False),
        (1e4, 1e4 - 1e-7, False),  # the threshold scales with |d0|
        (1e4, 1e4 - 2e-6, True),
    ],
)
def test_escape_boundary_needs_a_real_improvement(monkeypatch, d0, d_probe, escapes):
    s, rows, cols, lower, *_ = _q1()

    def dev(th, *a, **k):
        return d0 if th[0] == 0.0 else (d_probe if th[0] == 0.5 else d0 + 1.0)

    monkeypatch.setattr(N, "profiled_deviance", dev)
    out = N._escape_boundary(np.array([0.0]), s, rows, cols, lower, True)
    assert (out.tolist() == [0.5]) if escapes else out is None


@pytest.mark.parametrize(("reml", "target"), [(True, 0.1), (False, 1.0)])
def test_escape_boundary_probes_the_requested_criterion(monkeypatch, reml, target):
    s, rows, cols, lower, *_ = _q1()

    def dev(th, *a, reml=True, **k):
        return 10.0 + (th[0] - (0.1 if reml else 1.0)) ** 2

    monkeypatch.setattr(N, "profiled_deviance", dev)
    out = N._escape_boundary(np.array([0.0]), s, rows, cols, lower, reml)
    assert out.tolist() == [target]


def test_bounds_hold_at_every_evaluation(monkeypatch, lme4_values):
    """L-BFGS-B works inside the bounds: no diagonal theta below 0 is ever evaluated
    (lme4's singular 'noise_int' fit, whose optimum is the bound itself)."""
    y = np.array([1, -1, 0, 2, -2, 0, 0.5, -0.5, 0, 1.5, -1.5, 0])
    g = np.repeat(np.arange(4), 3)
    s = compute_group_stats(np.ones((12, 1)), np.ones((12, 1)), y, g, 4)
    one = np.array([0])
    seen = _recording(monkeypatch)
    est = fit_profiled(s, one, one, np.array([0.0]))
    assert est.theta[0] == lme4_values["noise_int"]["theta"] == 0.0
    assert est.deviance == pytest.approx(
        lme4_values["noise_int"]["criterion"], rel=1e-10
    )
    assert est.converged is True
    assert min(th[0] for th, _ in seen) >= 0.0


def test_fit_passes_only_known_options_to_scipy():
    """Every L-BFGS-B option is spelled as scipy knows it: no OptimizeWarning."""
    X, Z, y, g, G, rows, cols, lower = _small(2, 2, seed=2, n_groups=30)
    s = compute_group_stats(X, Z, y, g, G)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = fit_profiled(s, rows, cols, lower)
    assert est.converged


def test_estimates_at_defaults_to_reml_and_float_theta():
    X, Z, y, g, G, rows, cols, _ = _small(2, 2, seed=11)
    s = compute_group_stats(X, Z, y, g, G)
    est = estimates_at(np.array([1, 0, 1]), s, rows, cols)  # integer theta
    assert est.theta.dtype == np.float64 and est.theta.tolist() == [1.0, 0.0, 1.0]
    ref = _dense(X, Z, y, g, G, np.eye(2), True)
    assert est.deviance == pytest.approx(ref["deviance"], rel=1e-11)
    assert est.sigma2 == pytest.approx(ref["sigma2"], rel=1e-11)


def test_polish_step_exactly_at_tolerance_is_small():
    """|step| <= step_tol * max(1, |theta|): a step exactly at the limit converges."""
    calls = []

    def fun(x):
        calls.append(x.copy())
        return 1.0, np.array([0.25 if x[0] == 0.0 else 0.75])

    h = 1e-5  # the Hessian probe at theta = 0
    step = np.linalg.solve(np.array([[(0.75 - 0.25) / h]]), np.array([0.25]))[0]
    th, ok = N._polish(np.array([0.0]), fun, np.full(1, -np.inf), step_tol=abs(step))
    assert ok is True and th.tolist() == [-step] and len(calls) == 3
