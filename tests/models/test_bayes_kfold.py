"""Model comparison by subject (issue 26, item 2): the marginal log-likelihood of a
subject's visits with its effects integrated out, PSIS-LOO by subject for every kind,
and exact K-fold cross-validation by subject.

Oracles: the linear normal block is scipy's multivariate normal with covariance
``sigma^2 I + Z Sigma Z'`` (closed form); the quadrature is checked against a dense
trapezoid grid over the two effects (written here, independent of alsprog); K-fold
by subject and PSIS-LOO by subject estimate the same quantity, the elpd of new
patients, so on exact-model data they agree within 2 SE of their pointwise
difference (Vehtari, Gelman & Gabry 2017, §4.2).
"""

from __future__ import annotations

import warnings

import arviz  # noqa: F401  (imported at collection: its 3 s import is no test's)
import bayes_fixtures as bf
import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose
from scipy import stats

from alsprog.errors import ConvergenceWarning
from alsprog.models.bayes._kfold import fold_subjects, kfold_by_subject
from alsprog.models.bayes._model import BayesianTrajectoryModel
from alsprog.models.bayes._posterior import marginal_loglik_subjects


class _Draws:
    """Just what the marginal likelihood reads of a fitted model: kind,
    likelihood and flattened posterior draws."""

    def __init__(self, kind, likelihood, **draws):
        self.kind, self.likelihood, self._d = kind, likelihood, draws

    def _draws(self, name):
        return self._d[name]


def _linear_rows(rng, n_subjects=4):
    n_vis = rng.integers(1, 6, n_subjects)
    groups = np.repeat(np.arange(n_subjects), n_vis)
    t = np.concatenate([np.sort(rng.uniform(0, 18, k)) for k in n_vis])
    X = np.column_stack([np.ones_like(t), t, rng.normal(size=len(t))])
    y = 38 - 0.9 * t + rng.normal(0, 4, len(t))
    return X, y, t, groups, n_subjects


def _linear_draws(rng, S, likelihood="normal", nu=None):
    d = {
        "beta": np.column_stack(
            [rng.normal(38, 1, S), rng.normal(-0.9, 0.1, S), rng.normal(0, 0.5, S)]
        ),
        "subject_sd": np.column_stack([rng.uniform(3, 6, S), rng.uniform(0.3, 0.8, S)]),
        "subject_corr": rng.uniform(-0.6, 0.6, S),
        "sigma": rng.uniform(1.5, 2.5, S),
    }
    if nu is not None:
        d["nu"] = np.full(S, nu)
    return _Draws("linear", likelihood, **d)


def _gaussian_blocks(m, X, y, t, groups, G):
    """The exact marginal block of each draw and subject (scipy, dense covariance)."""
    beta, sd = m._draws("beta"), m._draws("subject_sd")
    rho, sigma = m._draws("subject_corr"), m._draws("sigma")
    out = np.empty((len(sigma), G))
    for s in range(len(sigma)):
        c = rho[s] * sd[s, 0] * sd[s, 1]
        D = np.array([[sd[s, 0] ** 2, c], [c, sd[s, 1] ** 2]])
        for g in range(G):
            r = groups == g
            Z = np.column_stack([np.ones(r.sum()), t[r]])
            cov = sigma[s] ** 2 * np.eye(r.sum()) + Z @ D @ Z.T
            out[s, g] = stats.multivariate_normal(X[r] @ beta[s], cov).logpdf(y[r])
    return out


def test_linear_normal_marginal_is_the_exact_gaussian_block():
    rng = np.random.default_rng(1)
    X, y, t, groups, G = _linear_rows(rng)
    m = _linear_draws(rng, 5)
    got = marginal_loglik_subjects(m, X=X, y=y, t=t, groups=groups, n_subjects=G)
    assert got.shape == (5, G)
    assert_allclose(got, _gaussian_blocks(m, X, y, t, groups, G), rtol=1e-10)


def test_quadrature_of_a_near_normal_student_t_is_the_gaussian_block():
    # Student-t with nu = 1e7 is the normal to ~1e-7 in log density; the quadrature
    # path (not the closed form) must reproduce the exact Gaussian block.
    rng = np.random.default_rng(2)
    X, y, t, groups, G = _linear_rows(rng)
    m = _linear_draws(rng, 4, likelihood="student_t", nu=1e7)
    got = marginal_loglik_subjects(m, X=X, y=y, t=t, groups=groups, n_subjects=G)
    assert_allclose(got, _gaussian_blocks(m, X, y, t, groups, G), atol=1e-5)


def _sigmoid_case(n_draws=3):
    rng = np.random.default_rng(5)
    G = 3
    n_vis = np.array([8, 4, 1])
    groups = np.repeat(np.arange(G), n_vis)
    t = np.concatenate([np.sort(rng.uniform(5, 45, k)) for k in n_vis])
    d50, dx = np.exp(np.log(30) + 0.3 * rng.normal(size=G)), 10.0
    y = 48 / (1 + np.exp((t - d50[groups]) / dx)) + rng.normal(0, 2, len(t))
    X = np.column_stack([np.ones(G), rng.normal(size=G)])  # (G, p): first visits
    beta = np.stack(
        [
            np.column_stack([rng.normal(np.log(30), 0.05, n_draws), np.zeros(n_draws)]),
            np.column_stack([rng.normal(np.log(10), 0.05, n_draws), np.zeros(n_draws)]),
        ],
        axis=1,
    )  # (S, effect, term)
    m = _Draws(
        "sigmoid",
        "normal",
        beta=beta,
        subject_sd=np.column_stack(
            [rng.uniform(0.2, 0.4, n_draws), rng.uniform(0.2, 0.3, n_draws)]
        ),
        subject_corr=rng.uniform(-0.5, 0.5, n_draws),
        sigma=rng.uniform(1.5, 2.5, n_draws),
    )
    return m, dict(X=X, y=y, t=t, groups=groups, n_subjects=G)


def _dense_grid_marginal(m, X, y, t, groups, n_subjects, half=7.0, n=401):
    """Trapezoid rule over the whitened effects u in [-half, half]^2 (converged:
    n=401 and n=2401 over [-8, 8]^2 agree to 1e-12 on these cases)."""
    u = np.linspace(-half, half, n)
    U0, U1 = np.meshgrid(u, u, indexing="ij")
    beta, sd = m._draws("beta"), m._draws("subject_sd")
    rho, sigma = m._draws("subject_corr"), m._draws("sigma")
    out = np.empty((len(sigma), n_subjects))
    for s in range(len(sigma)):
        b0 = sd[s, 0] * U0
        b1 = sd[s, 1] * (rho[s] * U0 + np.sqrt(1 - rho[s] ** 2) * U1)
        for g in range(n_subjects):
            lin = beta[s] @ X[g]  # fixed log D50, log dx
            d50, dx = np.exp(lin[0] + b0), np.exp(lin[1] + b1)
            ll = np.zeros_like(U0)
            for tj, yj in zip(t[groups == g], y[groups == g], strict=True):
                mu = 48 / (1 + np.exp((tj - d50) / dx))
                ll += stats.norm.logpdf(yj, mu, sigma[s])
            f = np.exp(ll - ll.max()) * stats.norm.pdf(U0) * stats.norm.pdf(U1)
            out[s, g] = ll.max() + np.log(np.trapezoid(np.trapezoid(f, u), u))
    return out


# subjects 0 and 1 have 8 and 4 visits; subject 2 has one, whose two effects lie on
# a curved ridge that a Gaussian-centred grid integrates less exactly
SEVERAL, SINGLE = [0, 1], 2


def test_sigmoid_quadrature_has_converged():
    m, a = _sigmoid_case()
    base = marginal_loglik_subjects(m, **a)
    more = marginal_loglik_subjects(m, **a, n_nodes=31)
    assert np.isfinite(base).all()
    # the sigmoid's 9 x 9 grid on the mode (alsprog.models.bayes._forecast):
    # measured 7e-5 / 8e-4 here; a LOO's elpd has an SE of several points
    assert np.max(np.abs(base - more)[:, SEVERAL]) < 2e-4
    assert np.max(np.abs(base - more)[:, SINGLE]) < 2e-3


def test_sigmoid_quadrature_matches_a_dense_grid():
    m, a = _sigmoid_case(n_draws=2)
    got = marginal_loglik_subjects(m, **a)
    want = _dense_grid_marginal(m, **a)
    assert_allclose(got[:, SEVERAL], want[:, SEVERAL], rtol=0, atol=2e-4)
    assert_allclose(got[:, SINGLE], want[:, SINGLE], rtol=0, atol=2e-3)
    finer = marginal_loglik_subjects(m, **a, n_nodes=15)
    assert_allclose(finer, want, rtol=0, atol=2e-4)
    # a coarse grid is measurably worse: the comparison can fail
    coarse = marginal_loglik_subjects(m, **a, n_nodes=5)
    assert np.max(np.abs(coarse - want)) > 2e-3


def test_sigmoid_quadrature_finds_a_narrow_posterior_far_from_the_prior():
    # a subject seen across the whole fall (8 visits from 46 to 5 points) with two
    # posterior draws of a fitted model: the effects' posterior is ~40 times
    # narrower than the prior and sits 2 prior SDs out, where a coarse prior grid
    # has no node; an earlier Newton start stalled there (-76.9 instead of -21.1)
    t = np.array([13.8, 16.8, 19.8, 22.8, 25.8, 28.8, 31.8, 37.8])
    y = np.array([45.2, 40.2, 35.3, 30.5, 28.0, 20.3, 14.6, 4.8])
    m = _Draws(
        "sigmoid",
        "normal",
        beta=np.array([[[3.51105138], [2.32703819]], [[3.46392176], [2.2105183]]]),
        subject_sd=np.array([[0.38484744, 0.26644274], [0.32078343, 0.31450289]]),
        subject_corr=np.array([0.0, 0.0]),
        sigma=np.array([1.85677204, 1.87293572]),
    )
    a = dict(X=np.ones((1, 1)), y=y, t=t, groups=np.zeros(8, np.intp), n_subjects=1)
    got = marginal_loglik_subjects(m, **a)
    # the dense grid converged: n=801 and n=2401 over [-8, 8]^2 agree to 1e-10
    assert_allclose(got, _dense_grid_marginal(m, **a, half=8.0, n=801), atol=1e-6)


# ------------------------------------------------------------------------ folds
def test_folds_are_a_seeded_partition():
    f = fold_subjects(23, 5, seed=4)
    assert f.shape == (23,)
    assert sorted(np.bincount(f, minlength=5).tolist()) == [4, 4, 5, 5, 5]
    assert np.array_equal(f, fold_subjects(23, 5, seed=4))
    assert not np.array_equal(f, fold_subjects(23, 5, seed=5))


@pytest.mark.parametrize(
    ("k", "match"), [(1, r"`k` must be an integer in \[2, 7\]; got 1"), (8, r"got 8")]
)
def test_bad_number_of_folds_is_refused(k, match):
    with pytest.raises(ValueError, match=match):
        fold_subjects(7, k, seed=0)


# ---------------------------------------------------- K-fold with a fast model
class _QuickLinear(BayesianTrajectoryModel):
    """The linear model with ``fit`` replaced by seeded draws around the OLS
    estimate (no sampler), so the K-fold machinery runs in milliseconds."""

    def fit(self, df):
        d = self._prepare(df)
        rng = np.random.default_rng(self.seed)
        S = self.chains * self.draws
        ols = np.linalg.lstsq(d.X, d.y, rcond=None)[0]
        post = {
            "beta": ols + 0.1 * rng.standard_normal((S, len(ols))),
            "subject_sd": np.column_stack([np.full(S, 5.0), np.full(S, 0.6)]),
            "subject_corr": np.zeros(S),
            "sigma": 2.0 + 0.05 * rng.standard_normal(S),
        }
        self._design = d
        self._posterior = xr.Dataset(
            {
                k: (
                    ("chain", "draw", *[f"{k}_{i}" for i in range(v.ndim - 1)]),
                    v.reshape(self.chains, self.draws, *v.shape[1:]),
                )
                for k, v in post.items()
            }
        )
        self.converged_ = self.converges
        return self

    converges = True


@pytest.fixture(scope="module")
def small_linear():
    return bf.linear_long(23, seed=8)[0]


def test_kfold_result_fields_and_seed(small_linear):
    m = _QuickLinear(formula="frs ~ months", chains=1, draws=50)
    cv = kfold_by_subject(m, small_linear, k=4, seed=3)
    G = small_linear["subject_id"].nunique()
    assert cv["method"] == "kfold" and cv["k"] == 4
    assert cv["n_data_points"] == G and cv["n_samples"] == 50
    assert cv["loo_i"].dims == ("subject_id",) and cv["loo_i"].size == G
    assert cv["elpd_loo"] == pytest.approx(float(cv["loo_i"].sum()))
    assert cv["se"] == pytest.approx(np.sqrt(G * np.var(cv["loo_i"].values)))
    assert np.isnan(cv["p_loo"]) and cv["scale"] == "log" and not cv["warning"]
    assert sorted(np.bincount(cv["fold"]).tolist()) == [5, 6, 6, 6]
    assert cv["fold_converged"] == (True,) * 4
    again = kfold_by_subject(m, small_linear, k=4, seed=3)
    assert_allclose(again["loo_i"].values, cv["loo_i"].values, rtol=0, atol=0)
    assert not hasattr(m, "_design")  # the model itself is not fitted


def test_kfold_scores_each_held_out_subject_by_its_refit(small_linear):
    # oracle: refit by hand on the other folds, exact Gaussian block per draw
    from scipy.special import logsumexp

    m = _QuickLinear(formula="frs ~ months", chains=1, draws=30)
    cv = kfold_by_subject(m, small_linear, k=3, seed=9)
    ids = list(cv["loo_i"].subject_id.values)
    rng = np.random.default_rng(9)
    fold = fold_subjects(len(ids), 3, rng)
    assert np.array_equal(fold, cv["fold"])
    children = rng.spawn(3)
    f = int(fold[0])
    test_ids = [ids[i] for i in np.flatnonzero(fold == f)]
    train = small_linear[~small_linear["subject_id"].isin(test_ids)]
    refit = m.with_seed(children[f]).fit(train)
    rows = small_linear[small_linear["subject_id"] == ids[0]]
    X = np.column_stack([np.ones(len(rows)), rows["months"]])
    g = np.zeros(len(rows), dtype=np.intp)
    ll = _gaussian_blocks(
        refit, X, rows["frs"].to_numpy(), rows["months"].to_numpy(), g, 1
    )
    want = logsumexp(ll[:, 0]) - np.log(ll.shape[0])
    assert float(cv["loo_i"][0]) == pytest.approx(want, rel=1e-10)


def test_kfold_does_not_depend_on_n_jobs(small_linear):
    from joblib import parallel_config

    m = _QuickLinear(formula="frs ~ months", chains=1, draws=20)
    one = kfold_by_subject(m, small_linear, k=3, seed=2, n_jobs=1)
    with parallel_config(backend="threading"):
        two = kfold_by_subject(m, small_linear, k=3, seed=2, n_jobs=2)
    assert np.array_equal(one["loo_i"].values, two["loo_i"].values)


def test_kfold_warns_once_about_non_converged_refits(small_linear, monkeypatch):
    monkeypatch.setattr(_QuickLinear, "converges", False)
    m = _QuickLinear(formula="frs ~ months", chains=1, draws=20)
    with pytest.warns(ConvergenceWarning, match=r"fold\(s\) 1, 2, 3 of 3") as rec:
        cv = kfold_by_subject(m, small_linear, k=3, seed=2)
    assert len(rec) == 1
    assert cv["warning"] and cv["fold_converged"] == (False, False, False)


def test_az_compare_takes_kfold_results(small_linear):
    import arviz as az

    a = kfold_by_subject(
        _QuickLinear(formula="frs ~ months", chains=1, draws=20),
        small_linear,
        k=3,
        seed=1,
    )
    b = kfold_by_subject(
        _QuickLinear(formula="frs ~ 1", chains=1, draws=20), small_linear, k=3, seed=1
    )
    cmp = az.compare({"slope": a, "flat": b})
    assert list(cmp.index) == ["slope", "flat"]  # the truth has a slope
    diff = a["loo_i"].values - b["loo_i"].values
    assert cmp.loc["flat", "elpd_diff"] == pytest.approx(diff.sum())


# ------------------------------------------------------------- real samplers
@pytest.mark.slow  # 6 NUTS fits of the marginal linear model (about a minute)
def test_kfold_agrees_with_psis_loo_by_subject():
    df = bf.linear_long(60, seed=21)[0]
    m = BayesianTrajectoryModel(
        formula="frs ~ months", chains=2, draws=300, tune=300, seed=5, progress=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # arviz's Pareto k note
        m.fit(df)
        psis = m.loo(by="subject")
        cv = m.kfold(df, k=5, seed=6)
    diff = cv["loo_i"].values - psis.loo_i.values
    se = np.sqrt(len(diff) * np.var(diff))
    assert abs(diff.sum()) < 2 * se
    assert cv["n_data_points"] == psis.n_data_points == 60


@pytest.mark.veryslow  # the session's short sigmoid fit, then 5 refits (2-3 minutes)
def test_sigmoid_kfold_agrees_with_psis_loo_by_subject(sigmoid_fit, sigmoid_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        psis = sigmoid_fit.loo(by="subject")
        cv = sigmoid_fit.kfold(sigmoid_data, k=5, seed=6)
    assert list(psis.loo_i.subject_id.values) == sigmoid_fit._design.subject_ids
    assert list(cv["loo_i"].subject_id.values) == sigmoid_fit._design.subject_ids
    assert float(psis.pareto_k.max()) < 0.7  # PSIS reliable here: they must agree
    diff = cv["loo_i"].values - psis.loo_i.values
    se = np.sqrt(len(diff) * np.var(diff))
    assert abs(diff.sum()) < 2 * se


sigmoid_data = bf.sigmoid_data
sigmoid_fit = bf.sigmoid_fit
