"""The batch REML engine, trial by trial against independent references (issue 20).

References: a dense REML criterion written here from its definition (``V = Z Λ Λ' Z' +
I``, GLS, ``log|V| + log|X'V⁻¹X| + ν(1 + log 2π r²/ν)``), its central finite
differences, a bounded minimiser (scipy) of that dense criterion, and alsprog's own
:class:`~alsprog.models.LinearMixedModel` (verified against lme4).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from alsprog.design._batch_reml import (
    BatchStats,
    _assign,
    _Eval,
    _subset,
    _subset_eval,
    _to_boundary,
    batch_reml,
    evaluate,
)

TIMES = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
LME4_START = np.array([1.0, 0.0, 1.0])


def _data(K, G, *, seed, sd=(2.0, 0.8), corr=0.3, markers=1, miss=0.15, slowing=0.5):
    """K trials of G patients at TIMES: intercept, arm (alternating) and markers."""
    rng = np.random.default_rng(seed)
    J = len(TIMES)
    arm = np.tile(np.arange(G) % 2, (K, 1)).astype(float)
    m = rng.normal(size=(K, G, markers))
    U = np.concatenate([np.ones((K, G, 1)), arm[..., None], m], axis=2)
    cov = np.array(
        [[sd[0] ** 2, corr * sd[0] * sd[1]], [corr * sd[0] * sd[1], sd[1] ** 2]]
    )
    b = rng.multivariate_normal([0.0, 0.0], cov, size=(K, G))
    slope = -1.0 + slowing * arm + 0.4 * m[..., 0] if markers else -1.0 + slowing * arm
    y = (
        30.0
        + b[..., :1]
        + (slope[..., None] + b[..., 1:]) * TIMES
        + rng.normal(size=(K, G, J))
    )
    mask = (rng.uniform(size=(K, G, J)) > miss).astype(float)
    mask[..., 0] = 1.0  # everybody has a baseline
    return mask, y, U


def _dense(theta, mask, y, U):
    """Dense REML pieces of one trial at ``theta`` (from the definitions)."""
    G, r = U.shape
    rows = [(g, j) for g in range(G) for j in range(len(TIMES)) if mask[g, j]]
    n = len(rows)
    X = np.array([np.kron(U[g], [1.0, TIMES[j]]) for g, j in rows])
    Z = np.zeros((n, 2 * G))
    for i, (g, j) in enumerate(rows):
        Z[i, 2 * g : 2 * g + 2] = [1.0, TIMES[j]]
    yy = np.array([y[g, j] for g, j in rows])
    lam = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
    V = Z @ np.kron(np.eye(G), lam @ lam.T) @ Z.T + np.eye(n)
    Vi = np.linalg.inv(V)
    XVX = X.T @ Vi @ X
    Cinv = np.linalg.inv(XVX)
    beta = Cinv @ X.T @ Vi @ yy
    res = yy - X @ beta
    r2 = res @ Vi @ res
    nu = n - 2 * r
    dev = (
        np.linalg.slogdet(V)[1]
        + np.linalg.slogdet(XVX)[1]
        + nu * (1 + np.log(2 * np.pi * r2 / nu))
    )
    return {"dev": dev, "beta": beta, "Cinv": Cinv, "r2": r2, "n": n, "nu": nu}


def _dense_fit(mask, y, U, start=(1.0, 0.0, 1.0)):
    """Bounded minimum of the dense criterion (diagonal of Λ >= 0)."""
    res = optimize.minimize(
        lambda th: _dense(th, mask, y, U)["dev"],
        np.asarray(start),
        method="L-BFGS-B",
        bounds=[(0.0, None), (None, None), (0.0, None)],
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
    )
    return res.x, res.fun


def _stats(mask, y, U):
    return BatchStats.from_arrays(TIMES, mask, y, U)


# --------------------------------------------------------------------- statistics


def test_from_arrays_matches_explicit_sums():
    mask, y, U = _data(2, 4, seed=1)
    st = _stats(mask, y, U)
    for k in range(2):
        for g in range(4):
            z = np.column_stack([np.ones(5), TIMES])[mask[k, g] > 0]
            yy = y[k, g][mask[k, g] > 0]
            np.testing.assert_allclose(st.S[k, g], z.T @ z, rtol=1e-14)
            np.testing.assert_allclose(st.Zty[k, g], z.T @ yy, rtol=1e-14)
        obs = y[k][mask[k] > 0]
        assert st.yty[k] == pytest.approx(obs @ obs, rel=1e-14)
        assert st.n[k] == mask[k].sum()
    np.testing.assert_array_equal(st.U, U)


def test_cached_transposes():
    mask, y, U = _data(2, 3, seed=2, markers=2)
    st = _stats(mask, y, U)
    uut = st.UUt
    assert uut.shape == (2, 16, 3) and uut.flags["C_CONTIGUOUS"]
    for k in range(2):
        for g in range(3):
            np.testing.assert_array_equal(
                uut[k, :, g], np.outer(U[k, g], U[k, g]).ravel()
            )
    assert st.UUt is uut  # computed once
    ut = st.Ut
    assert ut.shape == (2, 4, 3) and ut.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(ut, np.swapaxes(U, 1, 2))
    assert st.Ut is ut


# ---------------------------------------------------------------------- criterion


@pytest.mark.parametrize(
    "theta",
    [[1.0, 0.0, 1.0], [2.0, 0.3, 0.7], [0.5, -0.8, 1.6], [3.0, 1.2, 0.0]],
)
def test_evaluate_matches_dense_reml(theta):
    mask, y, U = _data(3, 6, seed=3, markers=1)
    st = _stats(mask, y, U)
    # each trial at its own theta
    th = np.array([theta, np.multiply(theta, 1.3), np.multiply(theta, 0.6)])
    ev = evaluate(th, st)
    for k in range(3):
        ref = _dense(th[k], mask[k], y[k], U[k])
        assert ev.deviance[k] == pytest.approx(ref["dev"], rel=1e-10)
        np.testing.assert_allclose(ev.beta[k], ref["beta"], rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(ev.Cinv[k], ref["Cinv"], rtol=1e-9, atol=1e-12)
        assert ev.r2[k] == pytest.approx(ref["r2"], rel=1e-10)


@pytest.mark.parametrize("markers", [0, 2])
def test_gradient_matches_finite_differences_of_dense(markers):
    mask, y, U = _data(2, 6, seed=4, markers=markers)
    st = _stats(mask, y, U)
    th = np.array([[1.7, -0.4, 0.9], [0.6, 0.5, 1.4]])
    g = evaluate(th, st).grad
    for k in range(2):
        for j in range(3):
            h = np.zeros(3)
            h[j] = 1e-5
            fd = (
                _dense(th[k] + h, mask[k], y[k], U[k])["dev"]
                - _dense(th[k] - h, mask[k], y[k], U[k])["dev"]
            ) / 2e-5
            assert g[k, j] == pytest.approx(fd, rel=1e-6, abs=1e-7)


def test_gradient_false_leaves_it_zero():
    mask, y, U = _data(2, 5, seed=5)
    st = _stats(mask, y, U)
    th = np.array([[1.5, 0.2, 0.8]] * 2)
    full, bare = evaluate(th, st), evaluate(th, st, gradient=False)
    np.testing.assert_array_equal(bare.grad, np.zeros((2, 3)))
    assert np.abs(full.grad).min() > 0
    np.testing.assert_array_equal(bare.deviance, full.deviance)


def test_rank_deficient_trial_is_infinite_and_leaves_the_others():
    # trial 1 randomised nobody to treatment: X'V^-1X is singular
    mask, y, U = _data(3, 6, seed=6)
    U = U.copy()
    U[1, :, 1] = 0.0
    st = _stats(mask, y, U)
    th = np.array([[1.0, 0.2, 0.5]] * 3)
    with np.errstate(over="ignore"):
        ev = evaluate(th, st)
    assert ev.deviance[1] == np.inf
    # its placeholders stay finite, so the batch's linear algebra never meets NaN
    assert np.isfinite(ev.beta[1]).all() and np.isfinite(ev.Cinv[1]).all()
    for k in (0, 2):
        ref = _dense(th[k], mask[k], y[k], U[k])
        assert ev.deviance[k] == pytest.approx(ref["dev"], rel=1e-10)
        np.testing.assert_allclose(ev.beta[k], ref["beta"], rtol=1e-9, atol=1e-10)


def test_broken_trials_stay_unconverged_and_leave_the_others():
    # trial 1 randomised nobody to treatment (infinite criterion everywhere), trial 2
    # has one visit per patient (its gradient is NaN): both stop unconverged, without
    # a LinAlgError, while trials 0 and 3 reach the optimum they reach alone
    mask, y, U = _data(4, 8, seed=21, markers=0)
    U = U.copy()
    mask = mask.copy()
    U[1, :, 1] = 0.0
    mask[2, :, 1:] = 0.0
    for start in (LME4_START, np.zeros(3)):
        with warnings.catch_warnings():  # quietly: the broken trials are expected
            warnings.simplefilter("error", RuntimeWarning)
            fit = batch_reml(_stats(mask, y, U), start)
        assert fit.converged.tolist() == [True, False, False, True]
        assert fit.deviance[1] == np.inf
        for k in (0, 3):
            alone = batch_reml(
                _stats(mask[k : k + 1], y[k : k + 1], U[k : k + 1]), start
            )
            np.testing.assert_allclose(fit.theta[k], alone.theta[0], rtol=1e-12)
            np.testing.assert_allclose(fit.beta[k], alone.beta[0], rtol=1e-12)
            assert fit.deviance[k] == pytest.approx(
                -2 * _lmm_fit(mask[k], y[k], U[k]).llf_, abs=1e-6
            )


def test_patient_without_visits_counts_for_nothing():
    mask, y, U = _data(1, 6, seed=7)
    th = np.array([[1.2, 0.1, 0.6]])
    ev = evaluate(th, _stats(mask, y, U))
    keep = mask.copy()
    keep[0, 5] = 0.0  # patient 5 (treated) never seen
    ev = evaluate(th, _stats(keep, y, U))
    ref = _dense(th[0], keep[0, :5], y[0, :5], U[0, :5])
    assert np.isfinite(ev.deviance[0])
    assert ev.deviance[0] == pytest.approx(ref["dev"], rel=1e-10)
    np.testing.assert_allclose(ev.beta[0], ref["beta"], rtol=1e-9, atol=1e-10)


def test_perfect_fit_keeps_a_tiny_positive_residual():
    # y = 0: r^2 = 0, floored at the smallest normal float, so the criterion is finite
    mask, _, U = _data(1, 4, seed=8, markers=0)
    y = np.zeros_like(mask)
    th = np.array([[0.7, 0.2, 0.4]])
    ev = evaluate(th, _stats(mask, y, U), gradient=False)
    tiny = np.finfo(float).tiny
    assert ev.r2[0] == tiny
    np.testing.assert_array_equal(ev.beta, 0.0)
    n, p = mask.sum(), 4
    lam = np.array([[0.7, 0.0], [0.2, 0.4]])
    logdet = 0.0
    for g in range(4):
        z = np.column_stack([np.ones(5), TIMES])[mask[0, g] > 0]
        logdet += np.linalg.slogdet(lam.T @ z.T @ z @ lam + np.eye(2))[1]
    ref = _dense(th[0], mask[0], np.ones_like(mask[0]), U[0])  # X'V^-1X only
    xvx = np.linalg.slogdet(np.linalg.inv(ref["Cinv"]))[1]
    nu = n - p
    expected = logdet + xvx + nu * (1 + np.log(2 * np.pi) + np.log(tiny / nu))
    assert ev.deviance[0] == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------ fitting


def _lmm_fit(mask, y, U):
    from alsprog.models import LinearMixedModel

    G = U.shape[0]
    rows = [
        {"subject": f"s{g}", "months": TIMES[j], "arm": U[g, 1], "y": y[g, j]}
        for g in range(G)
        for j in range(len(TIMES))
        if mask[g, j]
    ]
    return LinearMixedModel("y ~ months * arm + (months | subject)").fit(
        pd.DataFrame(rows)
    )


@pytest.mark.filterwarnings("ignore:boundary \\(singular\\) fit")
def test_fit_matches_linear_mixed_model():
    mask, y, U = _data(3, 10, seed=9, markers=0)
    fit = batch_reml(_stats(mask, y, U), LME4_START)
    assert fit.converged.tolist() == [True, True, True]
    assert fit.theta.shape == (3, 3) and fit.beta.shape == (3, 4)
    for k in range(3):
        m = _lmm_fit(mask[k], y[k], U[k])
        np.testing.assert_allclose(
            fit.theta[k], m.theta_.to_numpy(), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(fit.beta[k], m.fe_params_.to_numpy(), rtol=1e-7)
        np.testing.assert_allclose(
            fit.cov_beta[k], m.cov_params().to_numpy(), rtol=1e-5
        )
        assert fit.sigma2[k] == pytest.approx(m.scale_, rel=1e-6)
        assert fit.deviance[k] == pytest.approx(-2 * m.llf_, abs=1e-8)


def test_fit_with_markers_matches_dense_optimum():
    mask, y, U = _data(2, 8, seed=10, markers=1)
    fit = batch_reml(_stats(mask, y, U), LME4_START)
    assert fit.converged.all()
    for k in range(2):
        th, dev = _dense_fit(mask[k], y[k], U[k])
        assert fit.deviance[k] == pytest.approx(dev, abs=1e-7)
        np.testing.assert_allclose(fit.theta[k], th, rtol=1e-4, atol=1e-5)
        ref = _dense(fit.theta[k], mask[k], y[k], U[k])
        sigma2 = ref["r2"] / ref["nu"]
        assert fit.sigma2[k] == pytest.approx(sigma2, rel=1e-10)
        np.testing.assert_allclose(fit.beta[k], ref["beta"], rtol=1e-9)
        np.testing.assert_allclose(fit.cov_beta[k], sigma2 * ref["Cinv"], rtol=1e-9)
        assert fit.deviance[k] == pytest.approx(ref["dev"], rel=1e-12)


def test_boundary_fit_reaches_zero_slope_variance():
    # no slope variance and a tiny intercept variance: the optimum has L11 = 0
    mask, y, U = _data(2, 10, seed=11, sd=(1.0, 0.0), corr=0.0, markers=0, miss=0.0)
    st = _stats(mask, y, U)
    fit = batch_reml(st, LME4_START)
    assert fit.converged.all()
    for k in range(2):
        th, dev = _dense_fit(mask[k], y[k], U[k])
        assert th[2] == 0.0  # the bounded reference sits on the bound
        assert fit.theta[k, 2] == pytest.approx(0.0, abs=1e-6)
        assert fit.theta[k, 2] >= 0.0 and fit.theta[k, 0] >= 0.0
        assert fit.deviance[k] == pytest.approx(dev, abs=1e-7)


def test_start_from_zero_is_moved_inside():
    # at Λ = 0 the criterion is flat in the diagonal: the start is lifted to 1e-4
    mask, y, U = _data(2, 8, seed=12, markers=0)
    st = _stats(mask, y, U)
    start = batch_reml(st, np.zeros(3), max_iter=0)
    np.testing.assert_array_equal(start.theta, [[1e-4, 0.0, 1e-4]] * 2)
    assert start.n_iter == 0
    assert start.converged.tolist() == [False, False]
    ref = [_dense([1e-4, 0.0, 1e-4], mask[k], y[k], U[k]) for k in range(2)]
    np.testing.assert_allclose(start.deviance, [r["dev"] for r in ref], rtol=1e-12)
    full = batch_reml(st, np.zeros(3))
    lme4 = batch_reml(st, LME4_START)
    assert full.converged.all()
    np.testing.assert_allclose(full.deviance, lme4.deviance, atol=1e-8)
    np.testing.assert_allclose(full.beta, lme4.beta, rtol=1e-6)


def test_start_per_trial_and_negative_diagonal():
    mask, y, U = _data(2, 8, seed=13, markers=0)
    st = _stats(mask, y, U)
    starts = np.array([[2.0, 0.5, 0.1], [-3.0, 0.2, -1.0]])
    at0 = batch_reml(st, starts, max_iter=0)
    np.testing.assert_array_equal(at0.theta, [[2.0, 0.5, 0.1], [1e-4, 0.2, 1e-4]])
    fit = batch_reml(st, starts)
    ref = batch_reml(st, LME4_START)
    np.testing.assert_allclose(fit.deviance, ref.deviance, atol=1e-8)
    np.testing.assert_allclose(fit.theta, ref.theta, rtol=1e-4, atol=1e-6)


def _iterations_alone(st, k):
    """Smallest max_iter at which trial k converges when fitted on its own."""
    one = _subset(st, np.arange(st.S.shape[0]) == k)
    for m in range(1, 40):
        if batch_reml(one, LME4_START, max_iter=m).converged[0]:
            return m
    raise AssertionError("no convergence")


def test_trials_converging_at_different_iterations_are_kept_apart():
    mask, y, U = _data(4, 6, seed=14, markers=0, miss=0.3)
    # trial 3 is nearly a boundary fit: more iterations
    mask2, y2, U2 = _data(1, 6, seed=15, sd=(1.0, 0.0), corr=0.0, markers=0)
    mask[3], y[3], U[3] = mask2[0], y2[0], U2[0]
    st = _stats(mask, y, U)
    need = [_iterations_alone(st, k) for k in range(4)]
    assert len(set(need)) > 1  # the test needs trials that finish apart
    full = batch_reml(st, LME4_START)
    assert full.converged.all()
    assert full.n_iter == max(need) + 1  # the last pass finds nothing left to do
    for m in sorted(set(need)):
        part = batch_reml(st, LME4_START, max_iter=m)
        assert part.n_iter == m
        done = np.array(need) <= m
        np.testing.assert_array_equal(part.converged, done)
        for k in np.flatnonzero(done):
            alone = batch_reml(_subset(st, np.arange(4) == k), LME4_START)
            np.testing.assert_allclose(part.theta[k], alone.theta[0], rtol=1e-12)
            np.testing.assert_allclose(part.beta[k], alone.beta[0], rtol=1e-12)
            assert part.deviance[k] == pytest.approx(alone.deviance[0], rel=1e-14)
            np.testing.assert_allclose(part.cov_beta[k], alone.cov_beta[0], rtol=1e-12)
        # whatever converged or not, the fields belong to the returned theta
        ev = evaluate(part.theta, st)
        np.testing.assert_allclose(part.deviance, ev.deviance, rtol=1e-13)
        np.testing.assert_allclose(part.beta, ev.beta, rtol=1e-10)


def test_iteration_limit_leaves_unconverged():
    mask, y, U = _data(2, 8, seed=16, markers=0)
    st = _stats(mask, y, U)
    one = batch_reml(st, LME4_START, max_iter=1)
    assert one.n_iter == 1
    assert not one.converged.any()
    ev = evaluate(np.array([LME4_START] * 2), st)
    assert (one.deviance < ev.deviance).all()  # one Newton step still lowers it


def test_start_at_the_optimum_stays_there():
    mask, y, U = _data(2, 8, seed=17, markers=0)
    st = _stats(mask, y, U)
    fit = batch_reml(st, LME4_START)
    again = batch_reml(st, fit.theta)
    assert again.converged.all()
    assert again.n_iter <= 3
    np.testing.assert_allclose(again.theta, fit.theta, rtol=1e-6, atol=1e-8)
    assert (again.deviance <= fit.deviance + 1e-9).all()


def test_tolerance_controls_the_stop():
    mask, y, U = _data(2, 8, seed=18, markers=0)
    st = _stats(mask, y, U)
    loose = batch_reml(st, LME4_START, tol=1e-1)
    tight = batch_reml(st, LME4_START, tol=1e-12)
    assert loose.converged.all() and tight.converged.all()
    assert loose.n_iter <= tight.n_iter
    assert (loose.deviance >= tight.deviance - 1e-12).all()


# ---------------------------------------------------------------- the bookkeeping


def test_to_boundary_pulls_crossing_diagonal_entries_a_tenth_of_the_way():
    th = np.array([[1.0, 0.5, 0.5], [1.0, 0.0, 1.0], [0.2, 1.0, 0.3]])
    step = np.array([[-3.0, -5.0, -1.0], [-1.0, -2.0, -1.0], [0.5, 1.0, -0.1]])
    before = th.copy()
    new = _to_boundary(th, step)
    np.testing.assert_allclose(
        new, [[0.1, -4.5, 0.05], [0.0, -2.0, 0.0], [0.7, 2.0, 0.2]], atol=1e-15
    )
    np.testing.assert_array_equal(th, before)


def _eval_of(K, offset):
    rng = np.random.default_rng(offset)
    return _Eval(
        deviance=rng.normal(size=K),
        grad=rng.normal(size=(K, 3)),
        beta=rng.normal(size=(K, 4)),
        Cinv=rng.normal(size=(K, 4, 4)),
        r2=rng.normal(size=K),
    )


def test_subset_eval_and_assign_move_every_field():
    cur, new = _eval_of(5, 1), _eval_of(2, 2)
    idx = np.array([3, 1])
    sub = _subset_eval(cur, idx)
    for f in ("deviance", "grad", "beta", "Cinv", "r2"):
        np.testing.assert_array_equal(getattr(sub, f), getattr(cur, f)[idx])
    old = _subset_eval(cur, np.arange(5))
    _assign(cur, new, idx)
    for f in ("deviance", "grad", "beta", "Cinv", "r2"):
        got, was, put = getattr(cur, f), getattr(old, f), getattr(new, f)
        np.testing.assert_array_equal(got[idx], put)
        np.testing.assert_array_equal(got[[0, 2, 4]], was[[0, 2, 4]])


def test_subset_takes_every_statistic():
    mask, y, U = _data(3, 4, seed=19)
    st = _stats(mask, y, U)
    m = np.array([True, False, True])
    sub = _subset(st, m)
    for f in ("S", "U", "Zty", "yty", "n"):
        np.testing.assert_array_equal(getattr(sub, f), getattr(st, f)[m])


def test_integer_start_is_a_float_start():
    mask, y, U = _data(2, 8, seed=20, markers=0)
    st = _stats(mask, y, U)
    a = batch_reml(st, np.array([1, 0, 1]))
    b = batch_reml(st, np.array([1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.deviance, b.deviance)
    at0 = batch_reml(st, np.array([0, 0, 0]), max_iter=0)
    np.testing.assert_array_equal(at0.theta, [[1e-4, 0.0, 1e-4]] * 2)


def test_trial_whose_criterion_cannot_be_lowered_stays_put(monkeypatch):
    # trial 1's criterion is made 1e6 higher everywhere but at its start: no step,
    # at any damping, lowers it, so it stays there, unconverged, with its start's
    # estimates, while the other trials finish as they do alone
    import alsprog.design._batch_reml as br

    mask, y, U = _data(3, 8, seed=21, markers=0)
    st = _stats(mask, y, U)
    real = br.evaluate

    def spiked(theta, s, *, gradient=True):
        out = real(theta, s, gradient=gradient)
        away = np.any(theta != LME4_START, axis=1) & (s.yty == st.yty[1])
        out.deviance = np.where(away, out.deviance + 1e6, out.deviance)
        return out

    monkeypatch.setattr(br, "evaluate", spiked)
    fit = batch_reml(st, LME4_START, max_iter=7)
    default = batch_reml(st, LME4_START)  # max_iter=60
    monkeypatch.setattr(br, "evaluate", real)
    assert default.n_iter == 60
    assert default.converged.tolist() == [True, False, True]
    assert fit.converged.tolist() == [True, False, True]
    assert fit.n_iter == 7
    np.testing.assert_array_equal(fit.theta[1], LME4_START)
    ref = _dense(LME4_START, mask[1], y[1], U[1])
    assert fit.deviance[1] == pytest.approx(ref["dev"], rel=1e-12)
    np.testing.assert_allclose(fit.beta[1], ref["beta"], rtol=1e-9)
    sigma2 = ref["r2"] / ref["nu"]
    assert fit.sigma2[1] == pytest.approx(sigma2, rel=1e-12)
    np.testing.assert_allclose(fit.cov_beta[1], sigma2 * ref["Cinv"], rtol=1e-9)
    for k in (0, 2):
        alone = batch_reml(_subset(st, np.arange(3) == k), LME4_START)
        np.testing.assert_allclose(fit.theta[k], alone.theta[0], rtol=1e-12)
        assert fit.deviance[k] == pytest.approx(alone.deviance[0], rel=1e-14)
        np.testing.assert_allclose(fit.beta[k], alone.beta[0], rtol=1e-12)
        np.testing.assert_allclose(fit.cov_beta[k], alone.cov_beta[0], rtol=1e-12)
        assert fit.sigma2[k] == pytest.approx(alone.sigma2[0], rel=1e-14)


# A quadratic criterion with a known bounded minimum, for the optimiser's rules
_A = np.array([[2.0, 0.5, 0.3], [0.5, 1.0, 0.2], [0.3, 0.2, 1.5]])


def _quadratic(centres, st):
    """``evaluate`` replaced by ``100 + (θ - m)' A (θ - m)``, m chosen per trial."""
    keys = list(st.yty)

    def fake(theta, s, *, gradient=True):
        m = np.array([centres[keys.index(v)] for v in s.yty])
        d = theta - m
        K = theta.shape[0]
        return _Eval(
            deviance=100.0 + np.einsum("ki,ij,kj->k", d, _A, d),
            grad=2.0 * d @ _A if gradient else np.zeros((K, 3)),
            beta=np.zeros((K, 4)),
            Cinv=np.tile(np.eye(4), (K, 1, 1)),
            r2=np.ones(K),
        )

    return fake


def test_coordinate_at_its_bound_is_held_there(monkeypatch):
    import alsprog.design._batch_reml as br

    mask, y, U = _data(2, 6, seed=22, markers=0)
    st = _stats(mask, y, U)
    # trial 0: the unconstrained minimum has L11 = -0.3 < 0, so the bounded one has
    # L11 = 0 and (L00, L10) minimising the quadratic there; trial 1: inside
    centres = [np.array([2.0, 1.0, -0.3]), np.array([2.0, 1.0, 1.0])]
    monkeypatch.setattr(br, "evaluate", _quadratic(centres, st))
    fit = batch_reml(st, LME4_START, tol=0.0)
    top = centres[0][:2] + np.linalg.solve(_A[:2, :2], _A[:2, 2]) * centres[0][2]
    # KKT: the gradient pushes outward (0.86, a small push is held too)
    assert 0 < 2 * (_A[2] @ (np.append(top, 0.0) - centres[0])) < 1
    assert fit.converged.tolist() == [True, True]
    assert fit.n_iter < 30
    np.testing.assert_allclose(fit.theta[0, :2], top, atol=1e-9)
    assert 0.0 < fit.theta[0, 2] <= 1e-12
    np.testing.assert_allclose(fit.theta[1], centres[1], atol=1e-12)
    np.testing.assert_allclose(fit.sigma2, 1.0 / (st.n - 4), rtol=1e-15)


def test_cancelled_determinant_is_infinite_for_that_trial_only():
    # one visit at t = 1 (S = [[1, 1], [1, 1]]) and Λ = (2^30, 0, 2^30): every entry
    # of M = Λ'SΛ + I rounds to 2^60, so det M computes to exactly 0
    mask, y, U = _data(2, 4, seed=30, markers=0, miss=0.0)
    mask[0, 0, :] = 0.0
    mask[0, 0, 2] = 1.0
    st = _stats(mask, y, U)
    th = np.array([[2.0**30, 0.0, 2.0**30], [1.0, 0.2, 0.5]])
    with np.errstate(all="ignore"):
        ev = evaluate(th, st)
    assert ev.deviance[0] == np.inf
    ref = _dense(th[1], mask[1], y[1], U[1])
    assert ev.deviance[1] == pytest.approx(ref["dev"], rel=1e-10)


def test_no_residual_degrees_of_freedom_is_undefined_without_warnings():
    # 2 patients seen twice: n = 4 = p, so nu = 0 and the criterion is undefined
    mask = np.zeros((1, 2, 5))
    mask[0, :, [0, 4]] = 1.0
    y = np.random.default_rng(1).normal(size=(1, 2, 5))
    U = np.array([[[1.0, 0.0], [1.0, 1.0]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev = evaluate(np.array([[1.0, 0.2, 0.5]]), _stats(mask, y, U))
    assert np.isnan(ev.deviance[0])


def test_newton_solves_a_quadratic_in_one_step(monkeypatch):
    import alsprog.design._batch_reml as br

    mask, y, U = _data(2, 6, seed=23, markers=0)
    st = _stats(mask, y, U)
    centres = [np.array([2.0, 1.0, 3.0]), np.array([0.5, -2.0, 0.25])]
    monkeypatch.setattr(br, "evaluate", _quadratic(centres, st))
    one = batch_reml(st, LME4_START, max_iter=1)
    np.testing.assert_allclose(one.theta, centres, atol=1e-8)
    fit = batch_reml(st, LME4_START)
    assert fit.converged.all() and fit.n_iter == 3  # step, then nothing left
    np.testing.assert_allclose(fit.deviance, 100.0, rtol=1e-14)


def _quartic(centres, st):
    """``evaluate`` replaced by ``sum_j (θ_j - m_j)^4``: Newton shrinks every error
    by exactly 2/3 per step."""
    keys = list(st.yty)

    def fake(theta, s, *, gradient=True):
        m = np.array([centres[keys.index(v)] for v in s.yty])
        d = theta - m
        K = theta.shape[0]
        return _Eval(
            deviance=(d**4).sum(axis=1),
            grad=4.0 * d**3 if gradient else np.zeros((K, 3)),
            beta=np.zeros((K, 4)),
            Cinv=np.tile(np.eye(4), (K, 1, 1)),
            r2=np.ones(K),
        )

    return fake


@pytest.mark.parametrize("tol", [0.3, 0.05, 1e-3])
def test_relative_step_size_stops_each_trial(monkeypatch, tol):
    # a trial stops after the first Newton step with max|step| <= tol max(1, |θ|)
    # (θ before the step) or g'H^-1 g <= 1e-10; on the quartic the error after k
    # steps is (2/3)^k of the start's, so the stopping step is known in advance
    import alsprog.design._batch_reml as br

    mask, y, U = _data(3, 6, seed=24, markers=0)
    st = _stats(mask, y, U)
    centres = [
        np.array([30.0, 20.0, 25.0]),
        np.array([1.3, -0.4, 0.5]),
        np.array([0.5, 0.3, 1.2]),
    ]
    monkeypatch.setattr(br, "evaluate", _quartic(centres, st))
    expected = []
    for m in centres:
        th, k = LME4_START.copy(), 0
        while True:
            k += 1
            d = th - m
            step = -d / 3.0
            decrement = np.sum(4 * d**3 * d / 3.0)
            if decrement <= 1e-10 or np.abs(step).max() <= tol * max(
                1.0, np.abs(th).max()
            ):
                break
            th = th + step
        expected.append((k, th + step))
    fit = batch_reml(st, LME4_START, tol=tol)
    assert fit.converged.all()
    assert fit.n_iter == max(k for k, _ in expected) + 1
    for i, (k, th) in enumerate(expected):
        np.testing.assert_allclose(fit.theta[i], th, rtol=1e-5)
        alone = batch_reml(_subset(st, np.arange(3) == i), LME4_START, tol=tol)
        assert alone.n_iter == k + 1


def test_step_raising_the_criterion_a_little_is_refused(monkeypatch):
    # trial 0's criterion is 10 higher away from its start, which is 0.05 from the
    # minimum of its quadratic: every step (any damping) raises it by less than its
    # value; it stays put, unconverged (g'H^-1 g is 0.0025 > 1e-6)
    import alsprog.design._batch_reml as br

    mask, y, U = _data(2, 6, seed=25, markers=0)
    st = _stats(mask, y, U)
    centres = [LME4_START + [0.05, 0.0, 0.0], np.array([2.0, 1.0, 3.0])]
    quad = _quadratic(centres, st)

    def spiked(theta, s, *, gradient=True):
        out = quad(theta, s, gradient=gradient)
        away = np.any(theta != LME4_START, axis=1) & (s.yty == st.yty[0])
        out.deviance = np.where(away, out.deviance + 10.0, out.deviance)
        return out

    monkeypatch.setattr(br, "evaluate", spiked)
    fit = batch_reml(st, LME4_START, max_iter=5)
    assert fit.converged.tolist() == [False, True]
    np.testing.assert_array_equal(fit.theta[0], LME4_START)
    assert fit.deviance[0] == pytest.approx(100.0 + 0.05**2 * _A[0, 0], rel=1e-14)
    np.testing.assert_allclose(fit.theta[1], centres[1], atol=1e-8)


def _quadratic_with(matrices, centres, st):
    """Like ``_quadratic`` with one matrix per trial."""
    keys = list(st.yty)

    def fake(theta, s, *, gradient=True):
        i = [keys.index(v) for v in s.yty]
        d = theta - np.array([centres[j] for j in i])
        A = np.array([matrices[j] for j in i])
        K = theta.shape[0]
        return _Eval(
            deviance=100.0 + np.einsum("ki,kij,kj->k", d, A, d),
            grad=2.0 * np.einsum("ki,kij->kj", d, A),
            beta=np.zeros((K, 4)),
            Cinv=np.tile(np.eye(4), (K, 1, 1)),
            r2=np.ones(K),
        )

    return fake


def test_nearly_singular_hessian_is_damped(monkeypatch):
    # Levenberg: where the smallest eigenvalue of H is below 1e-10 of its largest
    # entry (s, at least 1e-12), the step is -(H + mu I)^-1 g with mu = 1e-6 s - eig
    import alsprog.design._batch_reml as br

    mask, y, U = _data(3, 6, seed=26, markers=0)
    st = _stats(mask, y, U)
    mats = [
        np.diag([1e6, 1.0, 1e-5]),  # s = 2e6: eig 2e-5 < 2e-4, damped
        np.diag([0.1, 0.1, 1e-12]),  # s = 0.2: eig 2e-12 < 2e-11, damped
        np.diag([1e6, 1.0, 1e-3]),  # eig 2e-3 > 2e-4: a plain Newton step
    ]
    centres = [LME4_START + 1e-3] * 3
    monkeypatch.setattr(br, "evaluate", _quadratic_with(mats, centres, st))
    one = batch_reml(st, LME4_START, max_iter=1)
    for k, A in enumerate(mats):
        H = 2 * A
        g = 2 * A @ (LME4_START - centres[k])
        s, eig = np.abs(H).max(), np.linalg.eigvalsh(H)[0]
        mu = 1e-6 * s - eig if eig < 1e-10 * s else 0.0
        step = -np.linalg.solve(H + mu * np.eye(3), g)
        np.testing.assert_allclose(one.theta[k] - LME4_START, step, rtol=1e-4)


def test_rise_within_the_relative_slack_counts_as_no_rise(monkeypatch):
    # a step may raise the criterion by up to 1e-12 |f|: with f = 1e4 a rise of
    # 6e-10 is accepted (rounding noise at the optimum), and the fit moves
    import alsprog.design._batch_reml as br

    mask, y, U = _data(1, 6, seed=27, markers=0)
    st = _stats(mask, y, U)
    centre = LME4_START + [1e-5, 0.0, 0.0]
    quad = _quadratic([centre], st)

    def lifted(theta, s, *, gradient=True):
        out = quad(theta, s, gradient=gradient)
        away = np.any(theta != LME4_START, axis=1)
        out.deviance = 1e4 + out.deviance + np.where(away, 1e-9, 0.0)
        return out

    monkeypatch.setattr(br, "evaluate", lifted)
    one = batch_reml(st, LME4_START, max_iter=1)
    np.testing.assert_allclose(one.theta[0], centre, rtol=0, atol=1e-12)
    assert one.deviance[0] > 1e4 + 100.0  # higher than at the start, within 1e-8
