"""LatentClassMixedModel against brute force, finite differences, the mixed model
by ML and simulation truth.

Oracles: the marginal log-likelihood and posteriors are recomputed densely with
``scipy.stats.multivariate_normal`` and the mixture summed by hand; the gradient by
central differences; K = 1 against ``LinearMixedModel(reml=False)`` (itself checked
against lme4 in test_lmm.py); recovery against the generator in latent_testdata.py.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from latent_testdata import FORMULA, SLOPES, simulate_classes
from numpy.testing import assert_allclose
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from alsprog.errors import ModelSpecificationError, NotFittedError
from alsprog.models import LinearMixedModel
from alsprog.models.latent._model import LatentClassMixedModel
from alsprog.models.latent._numerics import (
    Layout,
    build_stats,
    em_step,
    evaluate,
)


def _tiny() -> tuple[np.ndarray, ...]:
    """7 subjects with 2-4 visits, three fixed columns (the last shared)."""
    rng = np.random.default_rng(1)
    sizes = np.array([2, 4, 3, 3, 2, 4, 1])
    g = np.repeat(np.arange(7), sizes)
    rng.shuffle(g)  # rows of a subject need not be adjacent
    n = len(g)
    t = rng.uniform(0, 10, n)
    X = np.c_[np.ones(n), t, rng.normal(size=n)]
    Z = X[:, :2].copy()
    y = 30 - t + rng.normal(size=n) * 3
    return y, X, Z, g


def _dense_loglik(x, lay, y, X, Z, g, C=None):
    """sum_i log sum_k pi_ik N(y_i; X_i beta_k, Z_i G Z_i' + s2 I), densely, with
    pi_ik the softmax over k of C_i gamma_k (gamma_1 = 0; C = 1 by default) and G
    the class's own with one covariance per class."""
    betas, _, G, s2, gamma = lay.unpack(x)
    total, post = [], []
    for i in range(g.max() + 1):
        eta = gamma[:, 0] if C is None else gamma @ C[i]
        logpi = eta - logsumexp(eta)
        r = g == i
        Gk = G if G.ndim == 3 else [G] * lay.K  # one covariance per class, or shared
        terms = [
            logpi[k]
            + multivariate_normal(
                X[r] @ betas[k], Z[r] @ Gk[k] @ Z[r].T + s2 * np.eye(r.sum())
            ).logpdf(y[r])
            for k in range(lay.K)
        ]
        li = logsumexp(terms)
        total.append(li)
        post.append(np.exp(np.array(terms) - li))
    return math.fsum(total), np.array(post)


def fd_gradient(x, lay, st, h=1e-6):
    """Central differences of the log-likelihood at ``x``."""
    return np.array(
        [
            (
                evaluate(x + h * e, lay, st, grad=False).llf
                - evaluate(x - h * e, lay, st, grad=False).llf
            )
            / (2 * h)
            for e in np.eye(len(x))
        ]
    )


def assert_em_climbs(x, lay, st, n_steps):
    """``n_steps`` EM steps from ``x`` never lower the log-likelihood and gain."""
    ev = evaluate(x, lay, st)
    llfs = [ev.llf]
    for _ in range(n_steps):
        x = em_step(x, lay, st, ev.posterior)
        ev = evaluate(x, lay, st)
        llfs.append(ev.llf)
    assert np.all(np.diff(llfs) >= -1e-8 * abs(llfs[0]))
    assert llfs[-1] > llfs[0] + 1.0


@pytest.fixture(scope="module")
def tiny():
    y, X, Z, g = _tiny()
    lay = Layout(3, 3, 2, np.array([True, True, False]))
    rng = np.random.default_rng(2)
    # classes around intercept 30, slope -1; shared coefficient 0.3; Cholesky of G
    # (log 2, 0.1, log 0.3); residual variance 9; logits 0.2, -0.3
    betas = np.array([30.0, -1.0]) + rng.normal(0, 0.5, (3, 2))
    chol = [np.log(2.0), 0.1, np.log(0.3)]
    x = np.concatenate([betas.ravel(), [0.3], chol, [np.log(9.0)], [0.2, -0.3]])
    return y, X, Z, g, lay, x


def test_loglik_and_posteriors_match_dense_bruteforce(tiny):
    y, X, Z, g, lay, x = tiny
    ev = evaluate(x, lay, build_stats(y, X, Z, g, 7))
    ref, post = _dense_loglik(x, lay, y, X, Z, g)
    assert abs(ev.llf - ref) < 1e-10
    assert_allclose(ev.posterior, post, atol=1e-12)
    assert_allclose(ev.loglik_i.sum(), ev.llf, rtol=1e-14)


def test_layout_counts_and_round_trip(tiny):
    *_, lay, x = tiny
    # 3 classes x 2 class-specific + 1 shared + 3 (2x2 Cholesky) + log s2 + 2 logits
    assert lay.n_params == 6 + 1 + 3 + 1 + 2 == len(x)
    betas, L, G, s2, gamma = lay.unpack(x)
    assert_allclose(G, L @ L.T)
    assert_allclose(gamma[:, 0], [0.0, 0.2, -0.3])  # logits against class 1
    assert np.all(betas[:, 2] == betas[0, 2])  # the shared column
    pi = np.exp(gamma[:, 0]) / np.exp(gamma[:, 0]).sum()
    assert_allclose(lay.pack(betas, G, s2, pi), x, atol=1e-10)
    assert_allclose(lay.pack(betas, G, s2, gamma=gamma + 5.0), x, atol=1e-10)


def test_gradient_matches_finite_differences(tiny):
    y, X, Z, g, lay, x = tiny
    st = build_stats(y, X, Z, g, 7)
    grad = evaluate(x, lay, st).grad
    fd = fd_gradient(x, lay, st)
    assert_allclose(grad, fd, rtol=1e-5, atol=1e-4 * np.abs(grad).max() * 1e-3)


def test_em_steps_never_decrease_the_likelihood(tiny):
    y, X, Z, g, lay, x = tiny
    assert_em_climbs(x, lay, build_stats(y, X, Z, g, 7), 15)


@pytest.fixture(scope="module")
def cohort_one():
    df, _ = simulate_classes(300, slopes=(-1.0,), seed=5)
    # unbalanced: drop a fifth of the follow-up visits (1-5 visits per patient)
    drop = np.random.default_rng(5).random(len(df)) < 0.2
    return df[~drop | (df["months"] == 0)].reset_index(drop=True)


def test_one_class_equals_linear_mixed_model_by_ml(cohort_one):
    m = LatentClassMixedModel(FORMULA, 1).fit(cohort_one)
    ref = LinearMixedModel(FORMULA, reml=False).fit(cohort_one)
    assert abs(m.llf_ - ref.llf_) < 1e-6
    assert_allclose(m.fe_params_.loc[1], ref.fe_params_, rtol=1e-4)
    assert_allclose(m.cov_re_, ref.cov_re_, rtol=1e-4, atol=1e-6)
    assert_allclose(m.scale_, ref.scale_, rtol=1e-4)
    # lme4-style ML standard errors: sqrt(diag(sigma^2 (X'V^-1 X)^-1))
    assert_allclose(m.bse_.loc[1], ref.bse_, rtol=2e-3)
    assert m.n_params_ == 2 + 3 + 1
    assert m.entropy_ == 1.0 and m.n_best_starts_ == 1 and m.converged_
    assert_allclose(m.posterior_.to_numpy(), 1.0)


@pytest.fixture(scope="module")
def three():
    df, cls = simulate_classes(600, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converges, several starts at the best
        m = LatentClassMixedModel(FORMULA, 3, n_init=6, seed=3).fit(df)
    return df, cls, m


def test_recovers_three_classes(three):
    from sklearn.metrics import adjusted_rand_score

    df, cls, m = three
    subjects = [f"P{i:04d}" for i in range(600)]
    assert adjusted_rand_score(cls, m.classes_.loc[subjects].to_numpy()) >= 0.8
    # labels by decreasing slope, so class k is SLOPES[k - 1]
    z = (m.fe_params_["months"] - np.array(SLOPES)) / m.bse_["months"]
    assert np.all(np.abs(z) < 2.0), z
    assert np.all(
        np.abs(m.fe_params_["Intercept"] - 40.0) < 2 * m.bse_["Intercept"] + 0.1
    )
    assert m.converged_ and m.n_best_starts_ >= 2
    assert np.max(m.start_llf_) == pytest.approx(m.llf_, abs=1e-6)
    assert_allclose(m.class_probs_.sum(), 1.0)
    assert_allclose(m.class_probs_, np.bincount(cls) / 600, atol=0.06)


def test_other_seed_reaches_the_same_optimum(three):
    df, _, m = three
    other = LatentClassMixedModel(FORMULA, 3, n_init=6, seed=99).fit(df)
    assert other.llf_ == pytest.approx(m.llf_, abs=1e-4)
    assert_allclose(other.fe_params_, m.fe_params_, atol=1e-3)


def test_criteria_entropy_and_tables_follow_their_definitions(three):
    _, _, m = three
    N, P = 600, m.posterior_.to_numpy()
    # 3 x (intercept, slope) + 3 covariance + residual + 2 logits
    assert m.n_params_ == 12 and m.n_subjects_ == N and m.n_obs_ == 3000
    assert m.aic == pytest.approx(-2 * m.llf_ + 24)
    assert m.bic == pytest.approx(-2 * m.llf_ + 12 * np.log(N))
    assert m.sabic == pytest.approx(-2 * m.llf_ + 12 * np.log((N + 2) / 24))
    E = -np.sum(P * np.log(np.clip(P, 1e-300, 1)))
    assert m.entropy_ == pytest.approx(1 - E / (N * np.log(3)))
    assert m.icl_ == pytest.approx(m.bic + 2 * E)
    assert (m.classes_.to_numpy() == P.argmax(axis=1) + 1).all()
    assert (
        m.class_sizes_.tolist() == np.bincount(P.argmax(axis=1), minlength=3).tolist()
    )
    s = m.summary()
    post = s.tables["postprob"].to_numpy()
    for k in range(3):
        assert_allclose(post[k], P[P.argmax(axis=1) == k].mean(axis=0))
    assert np.all(np.diag(post) > 0.8)
    assert "Posterior classification" in str(s)
    assert_allclose(s.tables["classes"]["share"].sum(), 1.0)


def test_predict_class_matches_bayes_rule_densely(three):
    _, _, m = three
    rng = np.random.default_rng(4)
    rows = []
    for j, (n, slope) in enumerate([(1, -1.0), (3, -2.0), (6, -0.3)]):
        t = np.arange(n) * 2.0
        y = np.round(41 + slope * t + rng.normal(0, 1, n))
        rows += [
            {"subject_id": f"N{j}", "months": a, "alsfrs_r_total": b}
            for a, b in zip(t, y, strict=True)
        ]
    new = pd.DataFrame(rows)
    got = m.predict_class(new)
    beta = m.fe_params_.to_numpy()
    G, s2, pi = m.cov_re_.to_numpy(), m.scale_, m.class_probs_.to_numpy()
    for sid, grp in new.groupby("subject_id"):
        X = np.c_[np.ones(len(grp)), grp["months"]]
        V = X @ G @ X.T + s2 * np.eye(len(grp))
        lp = np.log(pi) + [
            multivariate_normal(X @ b, V).logpdf(grp["alsfrs_r_total"]) for b in beta
        ]
        assert_allclose(got.loc[sid], np.exp(lp - logsumexp(lp)), atol=1e-10)
    assert got.index.tolist() == ["N0", "N1", "N2"]
    assert got.loc["N2"].idxmax() == 1 and got.loc["N1"].idxmax() == 3


def test_mixture_subset_shares_the_other_terms():
    df, _ = simulate_classes(150, slopes=(-0.3, -2.0), seed=8)
    m = LatentClassMixedModel(FORMULA, 2, mixture=["months"], n_init=2, seed=0).fit(df)
    assert m.fe_params_["Intercept"].nunique() == 1
    assert m.fe_params_["months"].iloc[0] > m.fe_params_["months"].iloc[1]
    assert m.n_params_ == 2 + 1 + 3 + 1 + 1


def test_same_seed_same_fit_and_jobs_do_not_matter():
    df, _ = simulate_classes(120, slopes=(-0.3, -2.0), seed=9)
    a = LatentClassMixedModel(FORMULA, 2, n_init=3, seed=7).fit(df)
    b = LatentClassMixedModel(FORMULA, 2, n_init=3, seed=7).fit(df)
    assert_allclose(a.start_llf_, b.start_llf_, rtol=0, atol=0)
    assert a.get_params()["n_classes"] == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_classes": 0}, r"`n_classes` must be an integer >= 1; got 0"),
        ({"n_classes": "3"}, r"`n_classes` must be an integer >= 1; got '3'"),
        ({"n_classes": 2, "mixture": ["slope"]}, r"'slope'.*'Intercept', 'months'"),
        ({"n_classes": 2, "mixture": "months"}, r"list of fixed-effect names"),
        ({"n_classes": 2, "n_init": 0}, r"`n_init` must be an integer >= 1"),
        ({"n_classes": 2, "tol": 0.0}, r"`tol` must be in \(0, 1\]"),
        ({"n_classes": 3}, r"Too few subjects: 12 for 3 class\(es\)"),
    ],
)
def test_bad_parameters_raise_naming_the_value(kwargs, match):
    df, _ = simulate_classes(12, seed=1)
    with pytest.raises(ModelSpecificationError, match=match):
        LatentClassMixedModel(FORMULA, **kwargs).fit(df)


def test_unfitted_model_refuses_methods():
    m = LatentClassMixedModel(FORMULA, 2)
    with pytest.raises(NotFittedError):
        m.predict_class(pd.DataFrame())
    with pytest.raises(NotFittedError):
        _ = m.bic


def test_predict_class_needs_the_outcome(three):
    _, _, m = three
    with pytest.raises(ModelSpecificationError, match="'alsfrs_r_total'"):
        m.predict_class(pd.DataFrame({"subject_id": ["a"], "months": [0.0]}))


# ---------------------------------------------------------------- slow tier
@pytest.mark.veryslow  # a study (make test-all): keeps make test near 15 minutes
def test_2000_patients_bic_selects_three_and_recovers_truth():
    from sklearn.metrics import adjusted_rand_score

    df, cls = simulate_classes(2000, seed=21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # K = 4 overfits: a flat, lonely optimum
        fits = {
            k: LatentClassMixedModel(FORMULA, k, n_init=n, seed=1).fit(df)
            for k, n in [(2, 8), (3, 20), (4, 8)]
        }
    assert fits[3].bic < fits[2].bic and fits[3].bic < fits[4].bic
    m = fits[3]
    ids = [f"P{i:04d}" for i in range(2000)]
    assert adjusted_rand_score(cls, m.classes_.loc[ids].to_numpy()) >= 0.8
    z = (m.fe_params_["months"] - np.array(SLOPES)) / m.bse_["months"]
    assert np.all(np.abs(z) < 2.0), z
    assert m.n_best_starts_ >= 5
    other = LatentClassMixedModel(FORMULA, 3, n_init=6, seed=2).fit(df)
    assert other.llf_ == pytest.approx(m.llf_, abs=1e-4)


@pytest.mark.slow
def test_bic_selects_one_class_on_one_class_data(cohort_one):
    df, _ = simulate_classes(600, slopes=(-1.0,), seed=6)
    one = LatentClassMixedModel(FORMULA, 1).fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two classes on one-class data: flat optimum
        two = LatentClassMixedModel(FORMULA, 2, n_init=6, seed=0).fit(df)
    assert one.bic < two.bic
    assert two.llf_ >= one.llf_ - 1e-6  # nested: K = 2 can only fit better


@pytest.mark.slow
def test_parallel_starts_give_the_serial_result():
    df, _ = simulate_classes(200, slopes=(-0.3, -2.0), seed=9)
    a = LatentClassMixedModel(FORMULA, 2, n_init=4, seed=7).fit(df)
    b = LatentClassMixedModel(FORMULA, 2, n_init=4, seed=7, n_jobs=2).fit(df)
    assert_allclose(a.start_llf_, b.start_llf_, rtol=1e-12)
    assert_allclose(a.fe_params_, b.fe_params_, rtol=1e-10)
