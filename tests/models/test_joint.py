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
    from alsprog.models._joint_numerics import exposure

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
    from alsprog.models._joint_numerics import JointData, exposure, make_objective
    from alsprog.models._lmm_numerics import compute_group_stats

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
    from alsprog.models._joint_numerics import exposure

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


@pytest.mark.slow
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
