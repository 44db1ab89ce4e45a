"""JointModel: likelihood against independent computations, recovery, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from joint_testdata import FORMULA, TRUTH, fitted
from scipy.stats import norm

from alsprog.errors import DataValidationError, ModelSpecificationError
from alsprog.models import JointModel, LinearMixedModel


def test_loglik_without_association_is_lmm_plus_piecewise_exponential():
    """alpha = 0: the joint likelihood separates into ML LMM + survival closed form."""
    df, jm = fitted()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lmm = LinearMixedModel(FORMULA, reml=False).fit(df)
    from alsprog.models.joint._numerics import exposure

    first = df.drop_duplicates("subject_id")
    gamma, log_h = (
        0.3,
        np.log([0.02, 0.04, 0.03, 0.05, 0.02, 0.03, 0.04])[: len(jm._breaks) - 1],
    )
    e, k = exposure(first["time"].to_numpy(), jm._breaks)
    eta = gamma * first["x"].to_numpy()
    d = first["dead"].to_numpy(float)
    surv = np.sum(d * (log_h[k] + eta) - (e @ np.exp(log_h)) * np.exp(eta))
    lay = jm._layout
    sl = lay.slices()
    phi = np.zeros(lay.size)
    phi[sl["beta"]] = lmm.fe_params_.to_numpy()
    phi[sl["chol"]] = lay.pack_chol(lmm.cov_re_.to_numpy())
    phi[sl["log_sigma"]] = 0.5 * np.log(lmm.scale_)
    phi[sl["gamma"]] = gamma
    phi[sl["log_hazard"]] = log_h
    fun = _objective(df, jm)
    assert -fun(phi) == pytest.approx(lmm.llf_ + surv, rel=1e-7)


def _objective(df: pd.DataFrame, jm: JointModel):
    import jax

    from alsprog._quadrature import _grid
    from alsprog.models._formula import build_mixed_design
    from alsprog.models.joint._numerics import JointData, exposure, make_objective
    from alsprog.models.lmm._numerics import compute_group_stats

    design = build_mixed_design(FORMULA, df)
    G = len(design.group_levels)
    st = compute_group_stats(design.X, design.Z, design.y, design.groups, G)
    first = df.drop_duplicates("subject_id")
    e, k = exposure(first["time"].to_numpy(), jm._breaks)
    data = JointData.from_stats(
        st, first[["x"]].to_numpy(float), first["dead"].to_numpy(float), e, k
    )
    nodes, lw = _grid(jm.n_quad, 2)
    with jax.enable_x64(True):
        fun, _, _ = make_objective(data, jm._layout, nodes, lw)
        return lambda phi: float(fun(phi))


def _brute_force_loglik(one: pd.DataFrame, jm: JointModel, phi: np.ndarray) -> float:
    """log of the integral over b of p(y | b) p(b) p(T, d | b) on a dense grid."""
    from alsprog.models.joint._numerics import exposure

    lay, sl = jm._layout, jm._layout.slices()
    beta = phi[sl["beta"]]
    L = lay.unpack_chol(phi[sl["chol"]])
    D = L @ L.T
    s = np.exp(phi[sl["log_sigma"]][0])
    gamma, alpha = phi[sl["gamma"]], phi[sl["alpha"]]
    lam = np.exp(phi[sl["log_hazard"]])
    e, k = exposure(np.array([one["time"].iloc[0]]), jm._breaks)
    d = float(one["dead"].iloc[0])
    x = one["x"].iloc[0]
    sd = np.sqrt(np.diag(D))
    g0 = np.linspace(-8 * sd[0], 8 * sd[0], 1201)
    g1 = np.linspace(-8 * sd[1], 8 * sd[1], 1201)
    B0, B1 = np.meshgrid(g0, g1, indexing="ij")
    Dinv = np.linalg.inv(D)
    ll = (
        -0.5 * (Dinv[0, 0] * B0**2 + 2 * Dinv[0, 1] * B0 * B1 + Dinv[1, 1] * B1**2)
        - 0.5 * np.log(np.linalg.det(D))
        - np.log(2 * np.pi)
    )
    for m, y in zip(one["months"], one["y"], strict=True):
        ll += norm.logpdf(y, beta[0] + beta[1] * m + beta[2] * x + B0 + B1 * m, s)
    lin = gamma[0] * x + alpha[0] * B0 + alpha[1] * B1
    ll += d * (np.log(lam[k[0]]) + lin) - (e[0] @ lam) * np.exp(lin)
    top = ll.max()
    inner = np.trapezoid(np.trapezoid(np.exp(ll - top), g1, axis=1), g0)
    return float(np.log(inner) + top)


@pytest.mark.parametrize("which", [(0, 1), (2, 3)])
def test_loglik_with_association_matches_brute_force_integration(which):
    """Quadrature over the longitudinal posterior == dense-grid integral over b."""
    df, jm = fitted()
    ids = df["subject_id"].unique()
    # one subject with the event and one censored, each pair
    dead = df.drop_duplicates("subject_id").set_index("subject_id")["dead"]
    pick = [dead.index[dead][which[0]], dead.index[~dead][which[1] - 1]]
    two = df[df["subject_id"].isin(pick)]
    phi = jm._phi.copy()
    phi[jm._layout.slices()["alpha"]] *= 1.5  # away from the optimum too
    brute = sum(_brute_force_loglik(two[two["subject_id"] == i], jm, phi) for i in pick)
    assert len(ids) > 2
    assert -_objective(two, jm)(phi) == pytest.approx(brute, abs=1e-4)


def test_recovers_the_simulation_truth():
    df, jm = fitted()
    assert jm.converged_
    se = jm.bse_.to_numpy()
    assert np.all(np.abs(jm.fe_params_.to_numpy() - TRUTH["beta"]) < 4 * se)
    ev = jm.event_params_
    truth_ev = [TRUTH["gamma"], *TRUTH["alpha"]]
    assert np.all(np.abs(ev["coef"].to_numpy() - truth_ev) < 4 * ev["se"].to_numpy())
    # the slope association is clearly detected
    assert ev.loc["alpha:months", "p"] < 1e-3
    assert np.sqrt(jm.scale_) == pytest.approx(TRUTH["sigma"], rel=0.05)
    D = jm.cov_re_.to_numpy()
    assert D[0, 0] == pytest.approx(TRUTH["D"][0, 0], rel=0.2)
    assert D[1, 1] == pytest.approx(TRUTH["D"][1, 1], rel=0.2)
    haz = jm.baseline_hazard_["hazard"].to_numpy()
    assert np.all(np.abs(np.log(haz / TRUTH["hazard"])) < 0.5)


def test_joint_fit_corrects_the_dropout_bias_of_the_mixed_model():
    """Fast decliners die early: the visits-only ML slope is too shallow."""
    df, jm = fitted()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lmm = LinearMixedModel(FORMULA, reml=False).fit(df)
    true_slope = TRUTH["beta"][1]
    err_joint = abs(jm.fe_params_["months"] - true_slope)
    err_lmm = abs(lmm.fe_params_["months"] - true_slope)
    assert err_joint < err_lmm
    assert lmm.fe_params_["months"] > true_slope  # the bias has this sign


def test_predict_survival_without_history_is_the_population_curve():
    df, jm = fitted()
    new = pd.DataFrame(
        {
            "subject_id": ["N1"],
            "months": [0.0],
            "y": [np.nan],
            "x": [0.7],
            "time": [np.nan],
            "dead": [np.nan],
        }
    )
    s = jm.predict_survival(new, [6.0, 12.0])
    rng = np.random.default_rng(0)
    b = rng.multivariate_normal(np.zeros(2), jm.cov_re_.to_numpy(), 400_000)
    eta = jm.event_params_.loc["x", "coef"] * 0.7 + b @ jm.alpha_
    H = jm._cumulative_hazard(np.array([6.0, 12.0]))
    mc = np.exp(-H[None, :] * np.exp(eta)[:, None]).mean(axis=0)
    np.testing.assert_allclose(s["survival"].to_numpy(), mc, atol=2e-3)


def test_summary_and_params():
    _, jm = fitted()
    text = str(jm.summary())
    assert "alpha:months" in text and "baseline_hazard" in text
    assert jm.cov_params().shape == (3, 3)
    assert jm.aic > -2 * jm.llf_
    from sklearn.base import clone

    c = clone(jm)
    assert c.get_params() == jm.get_params() and not hasattr(c, "fe_params_")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.drop(columns="time"), "'time' is missing"),
        (lambda d: d.assign(time=np.where(d.index == 3, 99.0, d["time"])), "varies"),
        (lambda d: d.assign(time=-d["time"]), "expected a number >= 0"),
        (
            lambda d: d.assign(
                time=np.where(d["dead"], 0.5, d["time"]),
            ),
            "before the last visit",
        ),
    ],
)
def test_bad_event_data_is_reported(change, match):
    df, _ = fitted()
    bad = change(df.copy())
    with pytest.raises(DataValidationError, match=match):
        JointModel(FORMULA, event_formula="x", event_time="time", event="dead").fit(bad)


def test_specification_errors():
    df, _ = fitted()
    with pytest.raises(ModelSpecificationError, match="unknown column"):
        JointModel(FORMULA, event_formula="nope", event_time="time", event="dead").fit(
            df
        )
    with pytest.raises(ModelSpecificationError, match="No events"):
        JointModel(FORMULA, event_formula="x", event_time="time", event="dead").fit(
            df.assign(dead=False)
        )


def test_input_not_modified():
    df, _ = fitted()
    before = df.copy()
    JointModel(
        FORMULA, event_formula="x", event_time="time", event="dead", max_iter=3
    ).fit(df)
    pd.testing.assert_frame_equal(df, before)


def test_random_intercept_only_and_no_event_covariates():
    df, _ = fitted()
    jm = JointModel(
        "y ~ months + x + (1 | subject_id)",
        event_formula="",
        event_time="time",
        event="dead",
    ).fit(df)
    assert jm.converged_
    assert list(jm.event_params_.index) == ["alpha:Intercept"]
    s = jm.predict_survival(df[df["months"] <= 2.0], [6.0])
    assert s["survival"].between(0.0, 1.0).all()


@pytest.mark.veryslow  # a study (make test-all): keeps make test near 15 minutes
def test_standard_errors_match_the_spread_over_replications():
    """Wald z of the slope and the association: mean ~0 and SD ~1 over 12 fits."""
    from joint_testdata import simulate_joint

    z = []
    for rep in range(12):
        df = simulate_joint(300, seed=100 + rep)
        jm = JointModel(FORMULA, event_formula="x", event_time="time", event="dead")
        jm.fit(df)
        ev = jm.event_params_
        z.append(
            [
                (jm.fe_params_["months"] - TRUTH["beta"][1]) / jm.bse_["months"],
                (ev.loc["alpha:months", "coef"] - TRUTH["alpha"][1])
                / ev.loc["alpha:months", "se"],
            ]
        )
    z = np.asarray(z)
    assert np.all(np.abs(z.mean(axis=0)) < 0.8), z.mean(axis=0)
    assert np.all((z.std(axis=0) > 0.5) & (z.std(axis=0) < 1.6)), z.std(axis=0)


def test_subject_trajectories_average_over_the_full_posterior():
    """Mean trajectory = E[x'beta + z'b | visits, event data], checked by importance
    sampling from the prior N(0, D) weighted by the whole likelihood of the subject
    (visits, survival to T and the hazard at T if the event was seen)."""
    df, jm = fitted()
    beta = jm.fe_params_.to_numpy()
    D = jm.cov_re_.to_numpy()
    sigma = np.sqrt(jm.scale_)
    gamma = jm.event_params_.loc["x", "coef"]
    alpha = jm.alpha_
    times = np.array([0.0, 4.0, 10.0])
    firsts = df.groupby("subject_id").first()
    dead = firsts[firsts["dead"] & (firsts["time"] > 6)].index[:2]
    alive = firsts[~firsts["dead"] & (firsts["time"] > 20)].index[:1]
    ids = [*dead, *alive]
    tr = jm.subject_trajectories(times, subjects=ids, interval="confidence")
    rng = np.random.default_rng(0)
    b = rng.multivariate_normal(np.zeros(2), D, 400_000)
    for sid in ids:
        one = df[df["subject_id"] == sid]
        f = firsts.loc[sid]
        t, y = one["months"].to_numpy(), one["y"].to_numpy()
        mu = beta[0] + beta[2] * f["x"] + b[:, :1] + (beta[1] + b[:, 1:]) * t
        logw = norm.logpdf(y, mu, sigma).sum(axis=1)
        risk = gamma * f["x"] + b @ alpha
        H = jm._cumulative_hazard(np.array([f["time"]]))[0]
        logw += float(f["dead"]) * risk - H * np.exp(risk)
        w = np.exp(logw - logw.max())
        w /= w.sum()
        ess = 1.0 / np.sum(w**2)
        assert ess > 500
        for tt in times:
            path = beta[0] + beta[2] * f["x"] + b[:, 0] + (beta[1] + b[:, 1]) * tt
            m = np.sum(w * path)
            mc_se = np.sqrt(np.sum(w**2 * (path - m) ** 2))
            got = tr[(tr["subject_id"] == sid) & (tr["months"] == tt)]["mean"].item()
            assert got == pytest.approx(m, abs=5 * mc_se + 0.02)
    # the band: confidence inside prediction; unknown subjects are refused
    pred = jm.subject_trajectories(times, subjects=ids, interval="prediction")
    assert (pred["upper"] - pred["lower"] > tr["upper"] - tr["lower"]).all()
    assert ((tr["lower"] < tr["mean"]) & (tr["mean"] < tr["upper"])).all()
    with pytest.raises(ModelSpecificationError, match="not in the data"):
        jm.subject_trajectories(times, subjects=["nobody"])


def test_subject_trajectories_use_the_event_data():
    """Two copies of one subject's few visits (to month 6), one dying right after
    the last visit and one followed event-free for years: the one who died is
    estimated to decline faster (the slope association is negative)."""
    df, jm = fitted()
    span = df.groupby("subject_id")["months"].max()
    sid = span[span == 6.0].index[0]
    one = df[df["subject_id"] == sid]
    died = one.assign(subject_id="died", time=one["months"].max(), dead=True)
    lived = one.assign(subject_id="lived", time=one["months"].max() + 36, dead=False)
    both = pd.concat([df, died, lived], ignore_index=True)
    jm2 = JointModel(FORMULA, event_formula="x", event_time="time", event="dead")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jm2.fit(both)
    tr = jm2.subject_trajectories([0.0, 12.0], subjects=["died", "lived"])
    m = tr.set_index(["subject_id", "months"])["mean"]
    slope_died = (m[("died", 12.0)] - m[("died", 0.0)]) / 12
    slope_lived = (m[("lived", 12.0)] - m[("lived", 0.0)]) / 12
    assert slope_died < slope_lived - 0.05


def test_predict_is_the_point_prediction_per_row():
    """``predict`` means what it means on every model: one number per row, the
    subject's posterior-mean curve for fitted subjects (the mean of
    ``subject_trajectories``), the population mean for new ones."""
    df, jm = fitted()
    ids = list(pd.unique(df["subject_id"]))[:2]
    rows = df[df["subject_id"].isin(ids)].head(5)
    got = jm.predict(rows)
    assert isinstance(got, pd.Series) and got.name == "predicted"
    assert got.index.equals(rows.index)
    tr = jm.subject_trajectories(rows["months"].unique(), subjects=ids)
    want = rows.merge(tr, on=["subject_id", "months"], how="left")["mean"]
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-10)
    new = rows.assign(subject_id="nobody")
    X = np.column_stack([np.ones(len(new)), new["months"], new["x"]])
    beta = jm.fe_params_.to_numpy()
    np.testing.assert_allclose(jm.predict(new).to_numpy(), X @ beta, rtol=1e-12)
    assert jm.predict(rows.assign(x=[np.nan, *rows["x"].iloc[1:]])).isna().iloc[0]
    with pytest.raises(ModelSpecificationError, match="grouping column"):
        jm.predict(rows.drop(columns="subject_id"))
