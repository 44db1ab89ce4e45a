"""LatentClassMixedModel's class membership on covariates and its model contract.

Oracles: the likelihood with a membership logit recomputed densely (scipy's
multivariate normal, the softmax by hand) and its gradient by central differences;
the membership M-step with 0/1 posteriors against statsmodels' ``MNLogit``; forecasts
of one class against ``LinearMixedModel(reml=False)``'s exact conditional normal;
forecasts with two classes against Bayes' rule and the conditional normal computed
densely (Schur complements of the joint covariance); the class curves and
predictions against the estimates' closed forms; recovery of simulated membership
coefficients against the truth.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from latent_testdata import FORMULA, simulate_classes
from numpy.testing import assert_allclose
from scipy.special import logsumexp, ndtr
from scipy.stats import multivariate_normal
from test_latent_class import _dense_loglik, _tiny, assert_em_climbs, fd_gradient

from alsprog.errors import DataWarning, ModelSpecificationError, SavedModelError
from alsprog.forecast import forecast
from alsprog.models import LatentClassMixedModel, LinearMixedModel
from alsprog.models.latent._numerics import (
    Layout,
    build_stats,
    evaluate,
    membership_step,
)


# ------------------------------------------------------------------ numerics
@pytest.fixture(scope="module")
def tiny_cov():
    y, X, Z, g = _tiny()
    C = np.column_stack([np.ones(7), np.linspace(-1.0, 1.5, 7)])
    lay = Layout(3, 3, 2, np.array([True, True, False]), r=2)
    rng = np.random.default_rng(4)
    betas = np.array([30.0, -1.0]) + rng.normal(0, 0.5, (3, 2))
    chol = [np.log(2.0), 0.1, np.log(0.3)]
    gamma = [0.2, 0.8, -0.3, -1.1]  # class 2 (intercept, slope), class 3
    x = np.concatenate([betas.ravel(), [0.3], chol, [np.log(9.0)], gamma])
    return y, X, Z, g, C, lay, x


def test_membership_logit_likelihood_matches_dense_bruteforce(tiny_cov):
    y, X, Z, g, C, lay, x = tiny_cov
    assert lay.n_params == 6 + 1 + 3 + 1 + 2 * 2 == len(x)
    ev = evaluate(x, lay, build_stats(y, X, Z, g, 7, C))
    ref, post = _dense_loglik(x, lay, y, X, Z, g, C)
    assert abs(ev.llf - ref) < 1e-10
    assert_allclose(ev.posterior, post, atol=1e-12)


def test_membership_logit_gradient_matches_finite_differences(tiny_cov):
    y, X, Z, g, C, lay, x = tiny_cov
    st = build_stats(y, X, Z, g, 7, C)
    grad = evaluate(x, lay, st).grad
    fd = fd_gradient(x, lay, st)
    assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


def test_em_with_a_membership_logit_never_decreases_the_likelihood(tiny_cov):
    y, X, Z, g, C, lay, x = tiny_cov
    st = build_stats(y, X, Z, g, 7, C)
    assert_em_climbs(x, lay, st, 12)


@pytest.fixture(scope="module")
def tiny_class_cov():
    y, X, Z, g = _tiny()
    lay = Layout(2, 3, 2, np.array([True, True, False]), class_cov=True)
    chol = [np.log(2.0), 0.1, np.log(0.3), np.log(1.0), -0.2, np.log(0.6)]
    x = np.concatenate([[30.0, -0.5, 28.0, -1.5], [0.3], chol, [np.log(9.0)], [0.4]])
    return y, X, Z, g, lay, x


def test_class_covariances_likelihood_and_gradient_match_brute_force(tiny_class_cov):
    y, X, Z, g, lay, x = tiny_class_cov
    assert lay.n_params == 4 + 1 + 2 * 3 + 1 + 1 == len(x)
    st = build_stats(y, X, Z, g, 7)
    ev = evaluate(x, lay, st)
    ref, post = _dense_loglik(x, lay, y, X, Z, g)
    assert abs(ev.llf - ref) < 1e-10
    assert_allclose(ev.posterior, post, atol=1e-12)
    fd = fd_gradient(x, lay, st)
    assert_allclose(ev.grad, fd, rtol=1e-5, atol=1e-7)
    betas, L, G, s2, gamma = lay.unpack(x)
    assert G.shape == (2, 2, 2)
    assert_allclose(lay.pack(betas, G, s2, gamma=gamma), x, atol=1e-10)


def test_em_with_class_covariances_never_decreases_the_likelihood(tiny_class_cov):
    y, X, Z, g, lay, x = tiny_class_cov
    st = build_stats(y, X, Z, g, 7)
    assert_em_climbs(x, lay, st, 12)


def test_membership_step_with_hard_labels_is_statsmodels_mnlogit():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    n = 400
    C = np.column_stack([np.ones(n), rng.normal(size=n), rng.random(n) < 0.4])
    eta = C @ np.array([[0, 0, 0], [0.3, 1.0, -0.5], [-0.4, -0.8, 1.0]]).T
    p = np.exp(eta - logsumexp(eta, axis=1, keepdims=True))
    lab = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    W = np.eye(3)[lab]
    st = build_stats(np.zeros(n), np.ones((n, 1)), np.ones((n, 1)), np.arange(n), n, C)
    gamma = membership_step(np.zeros((3, 3)), st, W)
    ref = sm.MNLogit(lab, C).fit(disp=0, method="newton", maxiter=100, tol=1e-12)
    assert_allclose(gamma[1:], np.asarray(ref.params).T, atol=1e-6)
    assert_allclose(gamma[0], 0.0)


# ----------------------------------------------------- membership on covariates
def _with_covariate(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Two classes whose membership follows a logit in a baseline covariate
    ``delta_fs`` (true log odds of class 2, the fast one: -1.5 + 2.0 delta_fs)."""
    rng = np.random.default_rng(seed)
    dfs = rng.gamma(4.0, 0.2, n)
    p_fast = 1 / (1 + np.exp(-(-1.5 + 2.0 * dfs)))
    cls = (rng.random(n) < p_fast).astype(int)
    sid = np.repeat(np.arange(n), 5)
    t = np.tile(np.arange(5) * 3.0, n)
    slope = np.array([-0.3, -2.0])[cls]
    y = 40 + rng.normal(0, 3, n)[sid] + (slope + rng.normal(0, 0.15, n))[sid] * t
    y = np.clip(np.round(y + rng.normal(0, 1.5, len(t))), 0, 48)
    df = pd.DataFrame(
        {
            "subject_id": [f"S{i:04d}" for i in sid],
            "months": t,
            "alsfrs_r_total": y,
            "delta_fs": dfs[sid],
        }
    )
    return df, cls, dfs


@pytest.fixture(scope="module")
def membership_fit():
    df, cls, dfs = _with_covariate(500, seed=12)
    m = LatentClassMixedModel(
        FORMULA, 2, class_formula="~ delta_fs", n_init=4, seed=2
    ).fit(df)
    return df, cls, dfs, m


def test_membership_coefficients_are_recovered(membership_fit):
    _, _, _, m = membership_fit
    assert list(m.class_coef_.columns) == ["Intercept", "delta_fs"]
    z = (m.class_coef_.loc[2] - np.array([-1.5, 2.0])) / m.class_coef_bse_.loc[2]
    assert np.all(np.abs(z) < 2.5), z
    assert m.n_params_ == 4 + 3 + 1 + 2
    assert m.converged_
    before = m.posterior_.copy()
    table = m.summary().tables["membership"]
    pd.testing.assert_frame_equal(m.posterior_, before)  # the summary changes nothing
    assert table.loc[(2, "delta_fs"), "estimate"] == pytest.approx(
        m.class_coef_.loc[2, "delta_fs"]
    )


def test_membership_prior_enters_the_posterior_as_bayes_rule(membership_fit):
    df, _, dfs, m = membership_fit
    new = df[df["subject_id"].isin(["S0001", "S0002"]) & (df["months"] <= 3)]
    got = m.predict_class(new)
    betas, G, s2 = m.fe_params_.to_numpy(), m.cov_re_.to_numpy(), m.scale_
    for s, row in got.iterrows():
        r = new[new["subject_id"] == s]
        t = r["months"].to_numpy()
        X = np.column_stack([np.ones(len(t)), t])
        V = X @ G @ X.T + s2 * np.eye(len(t))
        eta = m.class_coef_.to_numpy() @ [1.0, r["delta_fs"].iloc[0]]
        logp = np.array([0.0, eta[0]]) - logsumexp([0.0, eta[0]])
        dens = [
            logp[k] + multivariate_normal(X @ betas[k], V).logpdf(r["alsfrs_r_total"])
            for k in range(2)
        ]
        assert_allclose(row.to_numpy(), np.exp(dens - logsumexp(dens)), atol=1e-10)


def test_a_covariate_changing_within_a_subject_is_refused():
    df, _, _ = _with_covariate(40, seed=1)
    df.loc[df.index[1], "delta_fs"] = 9.0
    with pytest.raises(
        ModelSpecificationError,
        match=r"'delta_fs' changes within "
        r"subject 'S0000'.*baseline",
    ):
        LatentClassMixedModel(FORMULA, 2, class_formula="~ delta_fs").fit(df)


def test_subjects_without_the_covariate_are_left_out_with_a_warning():
    df, _, _ = _with_covariate(60, seed=2)
    before = df.copy()
    df.loc[df["subject_id"] == "S0003", "delta_fs"] = np.nan
    with pytest.warns(DataWarning, match=r"Left out 1 subject\(s\) \(5 rows\)"):
        m = LatentClassMixedModel(
            FORMULA, 2, class_formula="delta_fs", n_init=4, seed=0
        ).fit(df)
    assert m.n_subjects_ == 59 and "S0003" not in m.posterior_.index
    assert df.drop(columns="delta_fs").equals(before.drop(columns="delta_fs"))


def test_a_covariate_missing_at_some_visits_takes_the_subjects_value(tmp_path):
    df, _, _ = _with_covariate(60, seed=2)
    gaps = df.copy()
    gaps.loc[(gaps["subject_id"] == "S0003") & (gaps["months"] > 0), "delta_fs"] = None
    kw = {"class_formula": "~ delta_fs", "n_init": 2, "seed": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = LatentClassMixedModel(FORMULA, 2, **kw).fit(df)
        b = LatentClassMixedModel(FORMULA, 2, **kw).fit(gaps)
    assert b.n_subjects_ == 60
    assert_allclose(b.class_coef_, a.class_coef_, rtol=1e-10)
    b.save(tmp_path / "gaps.npz")  # the saved rows carry the subject's value
    back = LatentClassMixedModel.load(tmp_path / "gaps.npz")
    assert back.llf_ == b.llf_


@pytest.mark.parametrize(
    ("class_formula", "match"),
    [
        ("~ __import__('os').getcwd()", r"class_formula.*refused"),
        ("~ delta_fs - 1", r"must keep the intercept"),
        ("~ 1", r"names no column"),
        ("~ nosuch", r"nosuch"),
        (3, r"must be a string"),
    ],
)
def test_bad_class_formulas_are_refused(class_formula, match):
    df, _, _ = _with_covariate(40, seed=3)
    with pytest.raises(ModelSpecificationError, match=match):
        LatentClassMixedModel(FORMULA, 2, class_formula=class_formula).fit(df)


# ------------------------------------------------------------------ contract
@pytest.fixture(scope="module", params=["shared", "class"])
def two_classes(request):
    df, cls = simulate_classes(160, slopes=(-0.3, -2.0), seed=14)
    df = df.rename(columns={"alsfrs_r_total": "frs"})  # unbounded: no censoring
    m = LatentClassMixedModel(
        "frs ~ months + (months | subject_id)",
        2,
        random_covariance=request.param,
        n_init=4,
        seed=1,
    ).fit(df)
    return df, cls, m


def test_one_class_forecasts_are_the_mixed_models(cohort_k1):
    train, hist, lc = cohort_k1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lmm = LinearMixedModel("frs ~ months + (months | subject_id)", reml=False).fit(
            train
        )
    a = forecast(lc, hist, [6.0, 12.0])
    b = forecast(lmm, hist, [6.0, 12.0])
    assert_allclose(a["mean"], b["mean"], atol=1e-4)
    assert_allclose(a["upper"] - a["lower"], b["upper"] - b["lower"], rtol=2e-3)
    traj_a = lc.subject_trajectories([0.0, 9.0], subjects=["P0001", "P0002"])
    traj_b = lmm.subject_trajectories([0.0, 9.0], subjects=["P0001", "P0002"])
    assert_allclose(traj_a["mean"], traj_b["mean"], atol=1e-4)


@pytest.fixture(scope="module")
def cohort_k1():
    df, _ = simulate_classes(120, slopes=(-1.0,), seed=15)
    df = df.rename(columns={"alsfrs_r_total": "frs"})
    new = [f"P{i:04d}" for i in range(100, 120)]
    train = df[~df["subject_id"].isin(new)]
    hist = df[df["subject_id"].isin(new) & (df["months"] <= 3)]
    lc = LatentClassMixedModel("frs ~ months + (months | subject_id)", 1).fit(train)
    return train, hist, lc


def _dense_class_forecast(m, hist_t, hist_y, t_future):
    """Each class's conditional mean and random-effect variance at ``t_future``
    given a history, and the class posterior: Bayes' rule and Schur complements of
    the joint normal of (history, future) with the estimates plugged in."""
    betas, s2 = m.fe_params_.to_numpy(), m.scale_
    if m.random_covariance == "class":
        Gs = [m.cov_re_.loc[k].to_numpy() for k in (1, 2)]
    else:
        Gs = [m.cov_re_.to_numpy()] * 2
    Xh = np.column_stack([np.ones(len(hist_t)), hist_t])
    Xf = np.array([[1.0, t_future]])
    pi = m.class_probs_.to_numpy()
    logw, means, var_re = [], [], []
    for k, G in enumerate(Gs):
        Vh = Xh @ G @ Xh.T + s2 * np.eye(len(hist_t))
        Cfh = Xf @ G @ Xh.T
        logw.append(
            np.log(pi[k]) + multivariate_normal(Xh @ betas[k], Vh).logpdf(hist_y)
        )
        r = hist_y - Xh @ betas[k]
        means.append((Xf @ betas[k] + Cfh @ np.linalg.solve(Vh, r)).item())
        var_re.append((Xf @ G @ Xf.T - Cfh @ np.linalg.solve(Vh, Cfh.T)).item())
    w = np.exp(logw - logsumexp(logw))
    return w, np.array(means), np.array(var_re)


def test_two_class_forecast_is_the_posterior_mixture_of_class_forecasts(two_classes):
    df, _, m = two_classes
    hist = df[df["subject_id"].isin(["P0003", "P0010"]) & (df["months"] <= 6)]
    f = forecast(m, hist, [12.0], level=0.8)
    cov_b = m._state.cov_betas()
    for _, row in f.iterrows():
        h = hist[hist["subject_id"] == row["subject_id"]]
        w, means, var_re = _dense_class_forecast(
            m, h["months"].to_numpy(), h["frs"].to_numpy(), 12.0
        )
        assert row["mean"] == pytest.approx(w @ means, abs=1e-8)
        assert row["class_1_probability"] == pytest.approx(w[0], abs=1e-10)
        # the interval is the mixture's: its distribution function gives 0.1, 0.9
        # (variance: random effects + residual + at most the fixed effects')
        lo_sd = np.sqrt(var_re + m.scale_)
        hi_sd = np.sqrt(var_re + m.scale_ + np.max(np.linalg.eigvalsh(cov_b)) * 150)
        for q, p in ((row["lower"], 0.1), (row["upper"], 0.9)):
            F_lo = w @ ndtr((q - means) / hi_sd)
            F_hi = w @ ndtr((q - means) / lo_sd)
            assert min(F_lo, F_hi) - 1e-9 <= p <= max(F_lo, F_hi) + 1e-9


def test_forecast_draws_follow_the_mixture(two_classes):
    df, _, m = two_classes
    hist = df[(df["subject_id"] == "P0004") & (df["months"] == 0)]
    f = forecast(m, hist, [12.0], level=0.8, seed=5, n_samples=20000)
    d = f.filter(like="draw_").to_numpy().ravel()
    assert np.mean(d) == pytest.approx(f["mean"].iloc[0], abs=0.15)
    assert np.quantile(d, [0.1, 0.5, 0.9]) == pytest.approx(
        f[["lower", "median", "upper"]].iloc[0].to_numpy(), abs=0.25
    )


def test_class_curves_and_predictions_are_the_estimates(two_classes):
    df, _, m = two_classes
    curves = m.class_trajectories([0.0, 12.0], level=0.9)
    b = m.fe_params_
    for k in (1, 2):
        c = curves[curves["class"] == k]
        assert_allclose(
            c["mean"], b.loc[k, "Intercept"] + b.loc[k, "months"] * np.array([0, 12.0])
        )
        assert c["se"].iloc[0] == pytest.approx(m.bse_.loc[k, "Intercept"], rel=1e-10)
    new = pd.DataFrame({"subject_id": ["nobody"], "months": [12.0]})
    pi = m.class_probs_.to_numpy()
    expect = pi @ (b["Intercept"] + 12.0 * b["months"]).to_numpy()
    assert m.predict(new).iloc[0] == pytest.approx(expect)
    seen = df[df["subject_id"] == "P0005"].head(2)
    traj = m.subject_trajectories(seen["months"], subjects=["P0005"])
    assert_allclose(m.predict(seen).to_numpy(), traj["mean"].to_numpy(), atol=1e-10)


def test_save_and_load_round_trip_and_refuse_a_forged_file(membership_fit, tmp_path):
    df, _, _, m = membership_fit
    path = tmp_path / "lc.npz"
    m.save(path)
    back = LatentClassMixedModel.load(path)
    pd.testing.assert_frame_equal(back.posterior_, m.posterior_)
    pd.testing.assert_frame_equal(back.class_coef_, m.class_coef_)
    assert back.llf_ == m.llf_ and back.get_params() == m.get_params()
    hist = df[df["subject_id"] == "S0007"].head(2)
    pd.testing.assert_frame_equal(forecast(back, hist, [9.0]), forecast(m, hist, [9.0]))
    # a file whose estimates do not give its log-likelihood on its rows is refused
    import json
    import zipfile

    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    arr = np.load(path)
    x = arr["x"].copy()
    x[0] += 0.5
    forged = tmp_path / "forged.npz"
    np.savez(forged, **{k: arr[k] for k in arr.files if k != "x"}, x=x)
    with pytest.raises(SavedModelError, match=r"scalars.llf"):
        LatentClassMixedModel.load(forged)
    # and so is a class formula that is code
    header = json.loads(np.load(path)["__header__"].tobytes())
    header["params"]["class_formula"] = "~ __import__('os').getcwd()"
    bad = tmp_path / "bad.npz"
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(bad, **{k: arr[k] for k in arr.files if k != "__header__"}, __header__=raw)
    with pytest.raises(SavedModelError, match=r"class_formula"):
        LatentClassMixedModel.load(bad)
    assert members  # the original file was read, not rewritten


def test_class_covariances_are_recovered_and_fit_better_than_one(tmp_path):
    rng = np.random.default_rng(21)
    n = 400
    cls = (rng.random(n) < 0.5).astype(int)
    slope_sd = np.array([0.1, 0.6])[cls]  # the fast class varies more
    sid = np.repeat(np.arange(n), 6)
    t = np.tile(np.arange(6) * 3.0, n)
    slope = np.array([-0.3, -2.0])[cls] + rng.normal(0, 1, n) * slope_sd
    y = 40 + rng.normal(0, 3, n)[sid] + slope[sid] * t + rng.normal(0, 1.0, len(t))
    df = pd.DataFrame({"subject_id": [f"Q{i:03d}" for i in sid], "months": t, "frs": y})
    f = "frs ~ months + (months | subject_id)"
    m = LatentClassMixedModel(f, 2, random_covariance="class", n_init=4, seed=3)
    m.fit(df)
    shared = LatentClassMixedModel(f, 2, n_init=4, seed=3).fit(df)
    assert m.n_params_ == shared.n_params_ + 3
    assert m.llf_ > shared.llf_ + 20  # the data's heterogeneity is real
    sd_slope = np.sqrt(m.cov_re_.xs("months", level="term")["months"])
    assert_allclose(sd_slope.to_numpy(), [0.1, 0.6], rtol=0.25)
    assert m.converged_
    path = tmp_path / "cc.npz"
    m.save(path)
    back = LatentClassMixedModel.load(path)
    pd.testing.assert_frame_equal(back.cov_re_, m.cov_re_)
    hist = df[(df["subject_id"] == "Q001") & (df["months"] <= 3)]
    pd.testing.assert_frame_equal(
        forecast(back, hist, [12.0]), forecast(m, hist, [12.0])
    )


def _curved_classes(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A slow linear class (40 - 0.3 t) and an accelerating one
    (40 - 0.5 t - 0.06 t^2), visits every 2 months to 16."""
    rng = np.random.default_rng(seed)
    cls = (rng.random(n) < 0.5).astype(int)
    sid = np.repeat(np.arange(n), 9)
    t = np.tile(np.arange(9) * 2.0, n)
    lin = np.array([-0.3, -0.5])[cls][sid] * t
    quad = np.array([0.0, -0.06])[cls][sid] * t**2
    y = 40 + rng.normal(0, 2.5, n)[sid] + lin + quad
    y = y + rng.normal(0, 0.2, n)[sid] * t + rng.normal(0, 1.0, len(t))
    df = pd.DataFrame({"subject_id": [f"C{i:03d}" for i in sid], "months": t, "frs": y})
    return df, cls


@pytest.mark.parametrize(
    "formula",
    [
        "frs ~ months + I(months ** 2) + (months | subject_id)",
        "frs ~ bs(months, df=3) + (months | subject_id)",
    ],
)
def test_curved_class_trajectories_are_recovered(formula):
    df, cls = _curved_classes(300, seed=23)
    m = LatentClassMixedModel(formula, 2, n_init=4, seed=5).fit(df)
    times = np.array([0.0, 8.0, 16.0])
    truth = {
        1: 40 - 0.3 * times,
        2: 40 - 0.5 * times - 0.06 * times**2,
    }
    curves = m.class_trajectories(times)
    # classes are labelled by decreasing first non-intercept coefficient; match
    # each fitted class to the truth by its value at month 16
    end = curves[curves["months"] == 16.0].set_index("class")["mean"]
    order = end.sort_values(ascending=False).index.tolist()
    for fitted, true in zip(order, (1, 2), strict=True):
        c = curves[curves["class"] == fitted]
        z = (c["mean"].to_numpy() - truth[true]) / c["se"].to_numpy()
        assert np.all(np.abs(z) < 3.0), (formula, fitted, z)
    from sklearn.metrics import adjusted_rand_score

    ids = [f"C{i:03d}" for i in range(300)]
    assert adjusted_rand_score(cls, m.classes_.loc[ids]) > 0.8


@pytest.mark.slow
def test_forecasts_beat_the_mixed_model_on_class_data():
    """Held-out patients from three linear classes, forecast from their first six
    months: the 3-class model's RMSE and CRPS at 12 and 18 months are lower than
    the mixed model's (benchmarks/latent.py measures by how much)."""
    from alsprog.forecast import backtest

    df, _ = simulate_classes(1000, seed=5, n_visits=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest(
            df,
            {
                "latent": LatentClassMixedModel(FORMULA, 3, n_init=4, seed=1),
                "mixed": LinearMixedModel(FORMULA, reml=False),
            },
            history_months=6.0,
            horizons=(12.0, 18.0),
            seed=3,
            progress=False,
        )
    wide = res.pivot_table(index="horizon", columns="model", values=["rmse", "crps"])
    assert (wide[("crps", "latent")] < 0.95 * wide[("crps", "mixed")]).all(), wide
    assert (wide[("rmse", "latent")] < 0.98 * wide[("rmse", "mixed")]).all(), wide


# ------------------------------------------------------------------ D50 link
def _sigmoid_classes(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Two classes of D50 sigmoids in months since onset (D50 30 and 18 months,
    dx 10 and 5), each patient's own D50 shifted by N(0, 2^2), noise on the logit
    scale, scores whole and in 0-48."""
    rng = np.random.default_rng(seed)
    cls = (rng.random(n) < 0.5).astype(int)
    d50 = np.array([30.0, 18.0])[cls] + rng.normal(0, 2.0, n)
    dx = np.array([10.0, 5.0])[cls]
    start = rng.uniform(6, 12, n)
    sid = np.repeat(np.arange(n), 6)
    t = start[sid] + np.tile(np.arange(6) * 3.0, n)
    z = (d50[sid] - t) / dx[sid] + rng.normal(0, 0.15, len(t))
    y = np.clip(np.round(-0.5 + 49.0 / (1.0 + np.exp(-z))), 0, 48)
    df = pd.DataFrame(
        {
            "subject_id": [f"D{i:03d}" for i in sid],
            "months": np.tile(np.arange(6) * 3.0, n),
            "months_since_onset": t,
            "alsfrs_r_total": y,
        }
    )
    return df, cls


D50_FORMULA = "alsfrs_r_total ~ months_since_onset + (1 | subject_id)"


@pytest.fixture(scope="module")
def d50_fit():
    df, cls = _sigmoid_classes(300, seed=31)
    m = LatentClassMixedModel(
        D50_FORMULA, 2, time="months_since_onset", link="d50", n_init=4, seed=2
    ).fit(df)
    return df, cls, m


def test_the_d50_link_is_the_linear_model_of_the_logit_plus_its_jacobian(d50_fit):
    df, _, m = d50_fit
    y = df["alsfrs_r_total"].to_numpy()
    z = np.log((y + 0.5) / (48.5 - y))
    on_z = LatentClassMixedModel(
        "z ~ months_since_onset + (1 | subject_id)",
        2,
        time="months_since_onset",
        n_init=4,
        seed=2,
    ).fit(df.assign(z=z))
    jac = np.sum(np.log(1 / (y + 0.5) + 1 / (48.5 - y)))  # log |dz/dy|
    assert m.llf_ == pytest.approx(on_z.llf_ + jac, abs=1e-6)
    assert_allclose(m.fe_params_, on_z.fe_params_, atol=1e-5)
    assert m.aic == pytest.approx(-2 * m.llf_ + 2 * m.n_params_)


def test_d50_and_dx_of_each_class_are_recovered(d50_fit):
    _, cls, m = d50_fit
    t = m.summary().tables["d50"]
    # class 1 has the larger slope coefficient (-1/dx closer to 0): the slow one
    truth = {(1, "D50"): 30.0, (1, "dx"): 10.0, (2, "D50"): 18.0, (2, "dx"): 5.0}
    for key, value in truth.items():
        est, se = t.loc[key, "estimate"], t.loc[key, "std_error"]
        assert abs(est - value) < 3 * se + 0.05 * value, (key, est, se)
    from sklearn.metrics import adjusted_rand_score

    ids = [f"D{i:03d}" for i in range(300)]
    assert adjusted_rand_score(cls, m.classes_.loc[ids]) > 0.9
    curves = m.class_trajectories([18.0, 30.0])
    mid = curves.set_index(["class", "months_since_onset"])["mean"]
    assert mid[(1, 30.0)] == pytest.approx(24.0, abs=2.0)  # D50: half the scale
    assert mid[(2, 18.0)] == pytest.approx(24.0, abs=2.0)


def test_one_class_d50_forecasts_map_the_logit_models_back():
    df, _ = _sigmoid_classes(120, seed=32)
    new = [f"D{i:03d}" for i in range(100, 120)]
    train = df[~df["subject_id"].isin(new)]
    hist = df[df["subject_id"].isin(new)]
    hist = hist[hist.groupby("subject_id")["months_since_onset"].rank() <= 2]
    lc = LatentClassMixedModel(
        D50_FORMULA, 1, time="months_since_onset", link="d50"
    ).fit(train)
    y = train["alsfrs_r_total"].to_numpy()
    on_z = LatentClassMixedModel(
        "z ~ months_since_onset + (1 | subject_id)", 1, time="months_since_onset"
    ).fit(train.assign(z=np.log((y + 0.5) / (48.5 - y))))
    yh = hist["alsfrs_r_total"].to_numpy()
    hz = hist.assign(z=np.log((yh + 0.5) / (48.5 - yh)))
    at = [9.0, 15.0]  # months since the first visit
    a = forecast(lc, hist, at, level=0.8)
    b = forecast(on_z, hz, at, level=0.8)
    back = np.clip(
        -0.5 + 49.0 / (1.0 + np.exp(-b[["lower", "median", "upper"]])), 0, 48
    )
    assert_allclose(a[["lower", "median", "upper"]], back, atol=1e-8)
    assert (a["mean"].between(a["lower"], a["upper"])).all()


def test_d50_model_saves_loads_and_refuses_an_unbounded_outcome(d50_fit, tmp_path):
    df, _, m = d50_fit
    m.save(tmp_path / "d50.npz")
    back = LatentClassMixedModel.load(tmp_path / "d50.npz")
    assert back.llf_ == m.llf_ and back.link == "d50"
    hist = df[df["subject_id"] == "D005"].head(2)
    pd.testing.assert_frame_equal(
        forecast(back, hist, [12.0], seed=1, n_samples=50),
        forecast(m, hist, [12.0], seed=1, n_samples=50),
    )
    with pytest.raises(ModelSpecificationError, match="needs an outcome with a known"):
        LatentClassMixedModel(
            "frs ~ months_since_onset + (1 | subject_id)", 2, link="d50"
        ).fit(df.rename(columns={"alsfrs_r_total": "frs"}))
