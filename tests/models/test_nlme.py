"""NonlinearMixedModel: the D50 sigmoid nonlinear mixed model against R's nlme.

Reference values: tests/reference/nlme_sigmoid_reference.R (nlme 3.1-162, R 4.2.2,
``nlme(..., method = "ML")`` with a tight ``nlmeControl``) on
tests/reference/nlme_sigmoid_data.csv (nlme_sigmoid_make_data.py), stored in
nlme_sigmoid_reference.json (+ .Rout).  Other oracles: dense linear algebra of the
linearised model built from finite-difference Jacobians, scipy's optimiser for
conditional modes, and simulation truth (slow tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import optimize, stats
from scipy.special import expit

from alsprog.errors import (
    ConvergenceError,
    ConvergenceWarning,
    ModelSpecificationError,
    NotFittedError,
    SavedModelError,
)
from alsprog.forecast import forecast
from alsprog.models import NonlinearMixedModel, Summary
from alsprog.models.nlme._numerics import prediction_error_cov
from alsprog.models.registry import MODELS

REF_DIR = Path(__file__).resolve().parents[1] / "reference"
REF = json.loads((REF_DIR / "nlme_sigmoid_reference.json").read_text())
FORMULAS = {"site": "frs ~ onset_site", "intercept": "frs ~ 1"}


def curve(t, log_d50, log_dx):
    """The D50 curve, written out independently of alsprog."""
    return 48.0 / (1.0 + np.exp((t - np.exp(log_d50)) / np.exp(log_dx)))


def simulate(
    n,
    seed,
    *,
    beta=((3.4, -0.25), (2.3, 0.1)),
    sd=(0.3, 0.25),
    corr=0.4,
    sigma=2.0,
    n_visits=6,
):
    """Patients on the model with known truth: visits every 3 months from a first
    visit 3-24 months after onset; ``beta`` rows log D50, log dx; columns
    intercept, bulbar onset."""
    rng = np.random.default_rng(seed)
    bulbar = (rng.random(n) < 0.35).astype(float)
    cov = np.array([[1.0, corr], [corr, 1.0]]) * np.outer(sd, sd)
    theta = np.column_stack([np.ones(n), bulbar]) @ np.asarray(beta).T
    theta = theta + rng.multivariate_normal(np.zeros(2), cov, n)
    first = rng.uniform(3.0, 24.0, n)
    months = np.tile(np.arange(n_visits) * 3.0, n)
    sid = np.repeat(np.arange(n), n_visits)
    since = first[sid] + months
    y = curve(since, theta[sid, 0], theta[sid, 1]) + rng.normal(0, sigma, len(sid))
    df = pd.DataFrame(
        {
            "subject_id": [f"P{i:04d}" for i in sid],
            "months": months,
            "months_since_onset": since,
            "frs": y,
            "onset_site": np.where(bulbar[sid] == 1, "bulbar", "spinal"),
        }
    )
    return df, theta


@pytest.fixture(scope="module")
def ref_data():
    return pd.read_csv(REF_DIR / "nlme_sigmoid_data.csv")


@pytest.fixture(scope="module")
def ref_fits(ref_data):
    return {
        k: NonlinearMixedModel(f, tol=1e-10).fit(ref_data) for k, f in FORMULAS.items()
    }


@pytest.fixture(scope="module")
def small():
    """A small fit (20 patients, 6 visits) for the dense-algebra oracles."""
    df, _ = simulate(20, 5, n_visits=6, sd=(0.3, 0.35))
    m = NonlinearMixedModel("frs ~ 1", tol=1e-10).fit(df)
    assert m.converged_
    return df, m


@pytest.fixture(scope="module")
def sim_fit():
    df, theta = simulate(60, 11)
    return df, NonlinearMixedModel("frs ~ onset_site").fit(df)


# ------------------------------------------------------------- against nlme
def _r_vec(d):
    return np.array(list(d.values()), dtype=float)


@pytest.mark.parametrize("key", ["site", "intercept"])
def test_fixed_effects_and_standard_errors_match_nlme(ref_fits, key):
    m, r = ref_fits[key], REF[key]
    # R: fixef(fit), sqrt(diag(vcov(fit))); agreement ~1e-9 (same fixed point)
    assert_allclose(m.fe_params_.to_numpy(), _r_vec(r["fixef"]), rtol=1e-7)
    assert_allclose(m.bse_.to_numpy(), _r_vec(r["se"]), rtol=1e-6)
    assert_allclose(m.cov_params().to_numpy(), np.array(r["vcov"]), rtol=1e-5)
    p = len(m.fe_params_)
    assert m.fe_params_.index.names == ["effect", "term"]
    assert list(m.fe_params_.index.get_level_values("effect")) == (
        ["log_d50"] * (p // 2) + ["log_dx"] * (p // 2)
    )


@pytest.mark.parametrize("key", ["site", "intercept"])
def test_variance_components_sigma_and_loglik_match_nlme(ref_fits, key):
    m, r = ref_fits[key], REF[key]
    assert_allclose(m.cov_re_.to_numpy(), np.array(r["psi"]), rtol=1e-6)
    assert_allclose(np.sqrt(m.scale_), r["sigma"], rtol=1e-7)
    # logLik: nlme's LME-step log-likelihood, the Lindstrom-Bates approximation
    assert m.llf_ == pytest.approx(r["logLik"], abs=1e-5)
    assert m.aic == pytest.approx(r["AIC"], abs=1e-4)
    assert m.bic == pytest.approx(r["BIC"], abs=1e-4)
    assert m.n_params_ == r["df_logLik"]
    assert m.n_obs_ == r["nobs"] == 556 and m.n_subjects_ == 100
    assert m.converged_ and m.n_dropped_ == 0


@pytest.mark.parametrize("key", ["site", "intercept"])
def test_random_effect_modes_match_nlme_ranef(ref_fits, key):
    m, r = ref_fits[key], REF[key]
    ranef = pd.DataFrame(
        {"log_d50": r["ranef"]["lD50"], "log_dx": r["ranef"]["ldx"]},
        index=r["ranef"]["subject_id"],
    )
    got = m.random_effects_.loc[ranef.index]
    assert_allclose(got.to_numpy(), ranef.to_numpy(), atol=1e-6)


@pytest.mark.parametrize("key", ["site", "intercept"])
def test_summary_tests_and_intervals_match_nlme(ref_fits, key):
    m, r = ref_fits[key], REF[key]
    s = m.summary()
    fixed = s.tables["fixed"]
    # summary.nlme: DF N - G - (p - 1), t on the adjustSigma standard errors
    assert (fixed["df"] == _r_vec(r["df"])).all()
    assert_allclose(fixed["t"].to_numpy(), _r_vec(r["t"]), rtol=1e-6)
    assert_allclose(fixed["p_value"].to_numpy(), _r_vec(r["p"]), rtol=1e-4, atol=1e-12)
    # intervals(fit, which = "fixed"): t quantiles on vcov's standard errors
    assert_allclose(fixed["ci_lower"], r["fixed_ci"]["lower"], rtol=1e-6)
    assert_allclose(fixed["ci_upper"], r["fixed_ci"]["upper"], rtol=1e-6)
    # intervals(fit)$reStruct and $sigma from apVar, nlme's fdHess of the
    # linearised log-likelihood: the two numerical Hessians agree to ~1e-3
    rand = s.tables["random"]
    assert_allclose(rand["estimate"].to_numpy()[:3], r["re_ci"]["est"], rtol=1e-6)
    assert_allclose(rand["ci_lower"].to_numpy()[:2], r["re_ci"]["lower"][:2], rtol=2e-3)
    assert rand["ci_lower"].iloc[2] == pytest.approx(r["re_ci"]["lower"][2], abs=1e-3)
    assert_allclose(rand["ci_upper"].to_numpy()[:2], r["re_ci"]["upper"][:2], rtol=2e-3)
    assert rand["ci_upper"].iloc[2] == pytest.approx(r["re_ci"]["upper"][2], abs=1e-3)
    sig = rand.loc["sigma", ["ci_lower", "estimate", "ci_upper"]].to_numpy()
    assert_allclose(sig, r["sigma_ci"], rtol=1e-5)
    iv = m.intervals()
    assert_allclose(iv["fixed"]["lower"], fixed["ci_lower"])
    assert list(iv["random"].columns) == ["lower", "estimate", "upper"]


def test_apvar_matches_nlme(ref_fits):
    from alsprog.models.nlme._numerics import natural_params, variance_apvar

    m, r = ref_fits["site"], REF["site"]
    par, V = variance_apvar(m._stats, m._Xs, m._cov, m._sigma)
    assert_allclose(par[[0, 1, 3]], np.log([*_r_vec(r["sd"]), r["sigma"]]), rtol=1e-6)
    assert par[2] == pytest.approx(np.log((1 + r["corr"]) / (1 - r["corr"])), rel=1e-6)
    assert_allclose(np.sqrt(np.diag(V)), np.sqrt(np.diag(r["apVar"])), rtol=2e-3)
    assert_allclose(natural_params(np.diag([4.0, 9.0]), 3.0), np.log([2, 3, 1, 3]))


def test_nlme_default_stopping_is_within_its_tolerance(ref_fits):
    # nlmeControl()'s defaults (tolerance 1e-5, pnlsTol 1e-3) stop ~3e-5 from the
    # fixed point that the tight control and alsprog reach to ~1e-9
    m = ref_fits["site"]
    tight, default = _r_vec(REF["site"]["fixef"]), _r_vec(REF["site_default"]["fixef"])
    got = m.fe_params_.to_numpy()
    assert np.max(np.abs(got - tight)) < 1e-7 < 1e-5 < np.max(np.abs(got - default))
    assert np.max(np.abs(got - default)) < 1e-4


def test_print_layout(ref_fits):
    text = str(ref_fits["site"].summary())
    assert text.startswith("Nonlinear mixed-effects model fit by maximum likelihood")
    assert "Log-likelihood (Lindstrom-Bates): -1388.7377" in text
    assert "log_d50 onset_site[T.spinal]" in text
    curve_tab = ref_fits["site"].summary(0.8).tables["curve"]
    fx = ref_fits["site"].summary(0.8).tables["fixed"]
    assert curve_tab.loc["D50", "estimate"] == pytest.approx(
        np.exp(fx.loc[("log_d50", "Intercept"), "estimate"])
    )
    assert curve_tab.loc["dx", "ci_upper"] == pytest.approx(
        np.exp(fx.loc[("log_dx", "Intercept"), "ci_upper"])
    )


# ------------------------------------------------- dense-algebra oracles
def _dense(m, df):
    """The linearised model built densely from finite-difference Jacobians."""
    d = m._design
    th, g, t = m._modes, d.groups, d.t
    h = 1e-6
    J = np.column_stack(
        [
            (curve(t, th[g, 0] + h, th[g, 1]) - curve(t, th[g, 0] - h, th[g, 1]))
            / (2 * h),
            (curve(t, th[g, 0], th[g, 1] + h) - curve(t, th[g, 0], th[g, 1] - h))
            / (2 * h),
        ]
    )
    Xs = m._Xs
    p = Xs.shape[1]
    G = len(Xs)
    X = np.hstack([J[:, :1] * Xs[g], J[:, 1:] * Xs[g]])
    Z = np.zeros((len(t), 2 * G))
    Z[np.arange(len(t)), 2 * g], Z[np.arange(len(t)), 2 * g + 1] = J[:, 0], J[:, 1]
    w = d.y - curve(t, th[g, 0], th[g, 1]) + np.einsum("nk,nk->n", J, th[g])
    Psi_all = np.kron(np.eye(G), m._cov)
    V = Z @ Psi_all @ Z.T + m._sigma**2 * np.eye(len(t))
    return X, Z, w, V, Psi_all, p, G


def test_fixed_effects_cov_and_loglik_match_the_dense_linearised_model(small):
    df, m = small
    X, _, w, V, _, _, _ = _dense(m, df)
    Vi = np.linalg.inv(V)
    cov_beta = np.linalg.inv(X.T @ Vi @ X)
    beta = cov_beta @ X.T @ Vi @ w
    assert_allclose(m.cov_params().to_numpy(), cov_beta, rtol=1e-5)
    assert_allclose(m.fe_params_.to_numpy(), beta, rtol=1e-6)
    ll = stats.multivariate_normal(X @ beta, V).logpdf(w)
    assert m.llf_ == pytest.approx(ll, abs=1e-5)


def test_prediction_error_covariance_is_hendersons(small):
    df, m = small
    X, Z, _, _, Psi_all, p, G = _dense(m, df)
    s2 = m._sigma**2
    C = np.linalg.inv(
        np.block(
            [
                [X.T @ X / s2, X.T @ Z / s2],
                [Z.T @ X / s2, Z.T @ Z / s2 + np.linalg.inv(Psi_all)],
            ]
        )
    )
    pev = prediction_error_cov(m._stats, m._Xs, m._cov, m._sigma, m._cov_beta)
    for i in (0, 7, G - 1):
        L = np.zeros((2, 2 * p + 2 * G))
        L[0, :p], L[1, p : 2 * p] = m._Xs[i], m._Xs[i]
        L[0, 2 * p + 2 * i], L[1, 2 * p + 2 * i + 1] = 1.0, 1.0
        assert_allclose(pev[i], L @ C @ L.T, rtol=1e-5)


def test_fitted_modes_minimise_each_penalised_objective(small):
    df, m = small
    d = m._design
    prec = np.linalg.inv(m._cov)
    for i in (0, 5):
        rows = d.groups == i
        y, t = d.y[rows], d.t[rows]
        mu = m._Xs[i] @ m._beta.T

        def obj(th, y=y, t=t, mu=mu):
            r = y - curve(t, th[0], th[1])
            return r @ r / m._sigma**2 + (th - mu) @ prec @ (th - mu)

        best = optimize.minimize(
            obj, mu, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12}
        )
        assert_allclose(m._modes[i], best.x, atol=1e-5)


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("change", "formula", "match"),
    [
        (
            lambda d: d.drop(columns="months_since_onset"),
            "frs ~ 1",
            r"'months_since_onset' \(the time column\) is not in the data",
        ),
        (
            lambda d: d.drop(columns="subject_id"),
            "frs ~ 1",
            r"'subject_id' \(the subject column\)",
        ),
        (
            lambda d: d,
            "frs ~ riluzole",
            r"'riluzole' \(the covariate\) is not in the data",
        ),
        (lambda d: d, "alsfrs_r_total ~ 1", r"'alsfrs_r_total' \(the outcome\)"),
        (
            lambda d: d.assign(frs=d["frs"].astype(str)),
            "frs ~ 1",
            r"'frs' \(the outcome\) must hold numbers; .* '41.0997'",
        ),
        (
            lambda d: d.assign(months_since_onset="x"),
            "frs ~ 1",
            r"'months_since_onset' \(the time column\) must hold numbers",
        ),
        (lambda d: d, "frs ~ months_since_onset", r"curve in 'months_since_onset'"),
        (lambda d: d, "frs ~ 1 + (1 | subject_id)", r"remove the random-effects term"),
        (
            lambda d: d.assign(alsfrs_r_bulbar=d["frs"] / 4),
            "alsfrs_r_bulbar ~ 1",
            r"'alsfrs_r_bulbar' ranges over 0-12. Use LinearMixedModel",
        ),
        (
            lambda d: d[d["subject_id"].isin(["S001", "S002", "S003"])],
            "frs ~ onset_site",
            r"Too few patients: 3 for",
        ),
        (lambda d: d, "frs ~ __import__('os').getcwd()", r"refused"),
    ],
)
def test_bad_input_names_the_culprit(ref_data, change, formula, match):
    with pytest.raises(ModelSpecificationError, match=match):
        NonlinearMixedModel(formula).fit(change(ref_data))


def test_a_covariate_that_changes_within_a_patient_is_refused(ref_data):
    df = ref_data.assign(tv_cov=np.where(ref_data.index % 2 == 0, "yes", "no"))
    with pytest.raises(
        ModelSpecificationError,
        match=r"'tv_cov' changes within subject 'S001' \('yes', 'no'\)",
    ):
        NonlinearMixedModel("frs ~ tv_cov").fit(df)


def test_covariates_collinear_over_patients_are_refused(ref_data):
    df = ref_data.assign(spinal=(ref_data["onset_site"] == "spinal") * 1.0)
    df = df.assign(other=1.0 - df["spinal"])
    with pytest.raises(ModelSpecificationError, match="collinear"):
        NonlinearMixedModel("frs ~ 0 + spinal + other + onset_site").fit(df)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"tol": 0}, r"`tol` must be in \(0, 1\]; got 0"),
        ({"tol": 1.5}, r"`tol` must be in \(0, 1\]"),
        ({"max_iter": 0}, r"`max_iter` must be an integer >= 1; got 0"),
        ({"time": 3}, r"`time` must be a column name"),
        ({"subject": None}, r"`subject` must be a column name"),
        ({"strict": "yes"}, r"`strict` must be one of True, False"),
    ],
)
def test_bad_parameters_are_refused(ref_data, kw, match):
    with pytest.raises(ModelSpecificationError, match=match):
        NonlinearMixedModel("frs ~ 1", **kw).fit(ref_data)


def test_formula_must_be_text(ref_data):
    with pytest.raises(ModelSpecificationError, match=r"`formula` must be a formula"):
        NonlinearMixedModel(None).fit(ref_data)
    with pytest.raises(ModelSpecificationError, match=r"pandas DataFrame; got dict"):
        NonlinearMixedModel("frs ~ 1").fit({"frs": [1.0]})


def test_not_fitted_and_missing_values(ref_data):
    m = NonlinearMixedModel("frs ~ 1")
    with pytest.raises(NotFittedError):
        m.summary()
    with pytest.raises(NotFittedError):
        m.predict(ref_data)
    df = ref_data.assign(frs=np.where(ref_data.index < 3, np.nan, ref_data["frs"]))
    with pytest.warns(UserWarning, match="Dropped 3 of 556 rows"):
        m.fit(df)
    assert m.n_dropped_ == 3 and m.n_obs_ == 553


def test_non_convergence_warns_or_raises(ref_data):
    with pytest.warns(ConvergenceWarning, match="did not converge in 3 iterations"):
        m = NonlinearMixedModel("frs ~ 1", max_iter=3).fit(ref_data)
    assert not m.converged_ and m.n_iter_ == 3
    assert "did not converge" in str(m.summary())
    with pytest.raises(ConvergenceError):
        NonlinearMixedModel("frs ~ 1", max_iter=3, strict=True).fit(ref_data)


def test_a_fit_where_em_crawls_matches_nlme():
    # 24 patients x 4 visits: the SD of log dx is near zero and the correlation
    # near -1; EM crawls there, so the fit turns to nlme's PNLS/LME alternation
    from alsprog.models.nlme._numerics import EM_ITER, lme_step, mode_steps

    df = pd.read_csv(REF_DIR / "nlme_sigmoid_small.csv")
    m = NonlinearMixedModel("frs ~ 1").fit(df)
    r = REF["small"]
    assert m.converged_ and m.n_iter_ > EM_ITER
    assert_allclose(m.fe_params_.to_numpy(), _r_vec(r["fixef"]), rtol=1e-5)
    sd = np.sqrt(np.diag(m._cov))
    assert sd[0] == pytest.approx(r["sd"]["lD50"], rel=1e-5)
    # the likelihood is flat along this SD and the correlation: looser agreement
    assert sd[1] == pytest.approx(r["sd"]["ldx"], rel=1e-3)
    assert m._cov[0, 1] / np.prod(sd) < -0.999 and r["corr"] < -0.999
    assert m._sigma == pytest.approx(r["sigma"], rel=1e-6)
    assert m.llf_ == pytest.approx(r["logLik"], abs=1e-4)
    assert_allclose(m.bse_.to_numpy(), _r_vec(r["se"]), rtol=1e-3)
    # and it is a fixed point: the LME step at its modes returns its estimates,
    # the modes are the PNLS modes under them
    cov, sigma = lme_step(m._stats, m._Xs, m._cov, m._sigma)
    assert sigma == pytest.approx(m._sigma, rel=1e-7)
    assert_allclose(cov, m._cov, rtol=1e-4, atol=1e-9)
    assert mode_steps(m._stats, m._Xs, m._beta, m._cov, m._sigma).max() < 1e-6


def test_em_alone_stopped_early_says_where_it_crawls():
    df = pd.read_csv(REF_DIR / "nlme_sigmoid_small.csv")
    with pytest.warns(ConvergenceWarning, match=r"did not converge in 40 iterations"):
        m = NonlinearMixedModel("frs ~ 1", max_iter=40).fit(df)
    assert not m.converged_ and m.n_iter_ == 40


# ---------------------------------------------------- predictions and bands
def test_predict_fitted_patients_at_their_modes_others_at_the_population(sim_fit):
    df, m = sim_fit
    rows = df[df["subject_id"] == "P0003"]
    th = m._modes[m._design.subject_ids.index("P0003")]
    t = rows["months_since_onset"].to_numpy()
    assert_allclose(m.predict(rows).to_numpy(), curve(t, *th), rtol=1e-12)
    new = rows.assign(subject_id="new")
    fe = m.fe_params_
    site = float(rows["onset_site"].iloc[0] == "spinal")
    pop = [
        fe[(e, "Intercept")] + site * fe[(e, "onset_site[T.spinal]")]
        for e in ("log_d50", "log_dx")
    ]
    assert_allclose(m.predict(new).to_numpy(), curve(t, *pop), rtol=1e-12)
    holes = new.assign(onset_site=[None] + ["spinal"] * (len(new) - 1))
    out = m.predict(holes)
    assert np.isnan(out.iloc[0]) and out.notna().iloc[1:].all()
    assert out.name == "predicted" and out.index.equals(holes.index)
    with pytest.raises(ModelSpecificationError, match="lack column"):
        m.predict(rows.drop(columns="onset_site").assign(subject_id="new"))


def test_subject_trajectories_bands(sim_fit):
    df, m = sim_fit
    times = [5.0, 20.0, 40.0]
    conf = m.subject_trajectories(times, subjects=["P0003", "P0010"])
    pred = m.subject_trajectories(
        times, subjects=["P0003", "P0010"], interval="prediction", level=0.9
    )
    assert list(conf.columns) == [
        "subject_id",
        "months_since_onset",
        "mean",
        "se",
        "lower",
        "upper",
    ]
    assert (conf["lower"] < conf["mean"]).all() and (conf["mean"] < conf["upper"]).all()
    assert (pred["lower"] < conf["lower"]).all() and (
        pred["upper"] > conf["upper"]
    ).all()
    # the confidence band is the delta method on the logit of the curve
    i = m._design.subject_ids.index("P0003")
    pev = prediction_error_cov(m._stats, m._Xs, m._cov, m._sigma, m._cov_beta)[i]
    d50, dx = np.exp(m._modes[i])
    eta = (d50 - 20.0) / dx
    g = np.array([d50 / dx, -eta])
    se = np.sqrt(g @ pev @ g)
    z = stats.norm.ppf(0.95)
    row = conf.iloc[1]
    assert row["lower"] == pytest.approx(48 * expit(eta - z * se), rel=1e-10)
    assert row["se"] == pytest.approx(
        48 * expit(eta) * (1 - expit(eta)) * se, rel=1e-10
    )
    prow = pred.iloc[1]
    assert prow["upper"] - prow["mean"] == pytest.approx(
        z * np.sqrt(row["se"] ** 2 + m.scale_), rel=1e-10
    )
    full = m.subject_trajectories()
    assert len(full) == 25 * m.n_subjects_
    with pytest.raises(ModelSpecificationError, match="'nobody'"):
        m.subject_trajectories(times, subjects=["nobody"])
    with pytest.raises(ValueError, match="level"):
        m.subject_trajectories(times, level=90)


# ------------------------------------------------------------------ forecast
def test_forecast_new_patients_conditions_on_their_visits(sim_fit):
    df, m = sim_fit
    new, _ = simulate(4, 99)
    hist = new[new["months"] <= 6.0]
    f = forecast(m, hist, [9.0, 15.0], seed=2, n_samples=50, level=0.8)
    assert len(f) == 8 and sum(c.startswith("draw_") for c in f.columns) == 50
    assert (f["lower"] < f["median"]).all() and (f["median"] < f["upper"]).all()
    again = forecast(m, hist, [9.0, 15.0], seed=2, n_samples=50, level=0.8)
    pd.testing.assert_frame_equal(f, again)
    # the conditional mode given the history, found by scipy's optimiser
    p1 = hist[hist["subject_id"] == "P0001"]
    fe = m.fe_params_
    site = float(p1["onset_site"].iloc[0] == "spinal")
    mu = np.array(
        [
            fe[(e, "Intercept")] + site * fe[(e, "onset_site[T.spinal]")]
            for e in ("log_d50", "log_dx")
        ]
    )
    prec = np.linalg.inv(m._cov)
    y, t = p1["frs"].to_numpy(), p1["months_since_onset"].to_numpy()

    def obj(th):
        r = y - curve(t, *th)
        return r @ r / m.scale_ + (th - mu) @ prec @ (th - mu)

    best = optimize.minimize(
        obj, mu, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12}
    ).x
    t_future = p1["months_since_onset"].iloc[0] + np.array([9.0, 15.0])
    got = f[f["subject_id"] == "P0001"]
    # the mode column is the curve at that mode
    assert_allclose(got["mode"].to_numpy(), curve(t_future, *best), atol=1e-4)
    # the predictive mean is near it (noise and effects average out)
    assert_allclose(got["mean"].to_numpy(), got["mode"].to_numpy(), atol=4.0)


def test_a_patient_without_scores_gets_the_population_curve(sim_fit):
    _, m = sim_fit
    new, _ = simulate(3, 99)
    hist = new[new["months"] <= 3.0].copy()
    hist.loc[hist["subject_id"] == "P0000", "frs"] = np.nan
    f = forecast(m, hist, [9.0], seed=1).set_index("subject_id")
    fe = m.fe_params_
    site = float(
        hist.loc[hist["subject_id"] == "P0000", "onset_site"].iloc[0] == "spinal"
    )
    pop = [
        fe[(e, "Intercept")] + site * fe[(e, "onset_site[T.spinal]")]
        for e in ("log_d50", "log_dx")
    ]
    t0 = hist.loc[hist["subject_id"] == "P0000", "months_since_onset"].iloc[0]
    assert f.loc["P0000", "mode"] == pytest.approx(curve(t0 + 9.0, *pop), rel=1e-10)
    # predict without a subject column: everyone at the population's curve
    rows = new[new["subject_id"] == "P0000"]
    got = m.predict(rows.drop(columns="subject_id")).to_numpy()
    assert_allclose(got, curve(rows["months_since_onset"].to_numpy(), *pop), rtol=1e-12)


def test_forecast_stays_inside_the_outcome_bounds():
    df, _ = simulate(50, 21)
    df["alsfrs_r_total"] = np.clip(np.round(df.pop("frs")), 0, 48)
    m = NonlinearMixedModel("alsfrs_r_total ~ 1").fit(df)
    assert m.outcome_bounds_ == (0.0, 48.0)
    new, _ = simulate(4, 22)
    new["alsfrs_r_total"] = np.clip(np.round(new.pop("frs")), 0, 48)
    hist = new[new["months"] <= 3.0]
    f = forecast(m, hist, [6.0, 120.0], seed=1, n_samples=30)
    cols = ["mean", "median", "lower", "upper", "mode"]
    assert f[cols].stack().between(0, 48).all()
    assert (f.loc[f["months"] == 120.0, "lower"] == 0).all()  # clipped at 0
    draws = f[[c for c in f.columns if c.startswith("draw_")]].to_numpy()
    assert draws.min() == 0 and draws.max() <= 48


# ------------------------------------------------------------------- files
def test_save_and_load_round_trip(sim_fit, tmp_path):
    df, m = sim_fit
    path = tmp_path / "m.npz"
    m.save(path)
    back = NonlinearMixedModel.load(path)
    assert back.get_params() == m.get_params()
    pd.testing.assert_series_equal(back.fe_params_, m.fe_params_)
    pd.testing.assert_series_equal(back.bse_, m.bse_)
    pd.testing.assert_frame_equal(back.cov_re_, m.cov_re_)
    pd.testing.assert_frame_equal(back.random_effects_, m.random_effects_)
    for a in (
        "llf_",
        "scale_",
        "n_obs_",
        "n_subjects_",
        "n_dropped_",
        "n_iter_",
        "converged_",
        "outcome_bounds_",
    ):
        assert getattr(back, a) == getattr(m, a), a
    assert str(back.summary()) == str(m.summary())
    pd.testing.assert_frame_equal(
        back.subject_trajectories([10.0, 30.0]), m.subject_trajectories([10.0, 30.0])
    )
    hist = df[(df["subject_id"] == "P0002") & (df["months"] <= 3)].assign(
        subject_id="Q"
    )
    pd.testing.assert_frame_equal(
        forecast(back, hist, [9.0], seed=1), forecast(m, hist, [9.0], seed=1)
    )


def _forge(src, dst, **kw):
    from npz_forge import rewrite_npz

    return rewrite_npz(src, dst, **kw)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            {"replace": {"beta": None}},
            r"field 'modes' row \d+ \(subject 'P\d+'\) is not the conditional mode",
        ),
        (
            {"replace": {"sigma": np.array([-1.0])}},
            r"field 'sigma' is -1.0; expected a positive",
        ),
        (
            {"replace": {"cov_re": np.array([[1.0, 2.0], [2.0, 1.0]])}},
            r"'cov_re' is not positive definite",
        ),
        (
            {"replace": {"cov_re": np.array([[1.0, 0.1], [0.2, 1.0]])}},
            r"'cov_re' is not symmetric",
        ),
        (
            {"replace": {"modes": np.zeros((3, 2))}},
            r"'modes' has shape \(3, 2\); expected \(60, 2\)",
        ),
        (
            {"replace": {"beta": np.array([[np.nan, 0.0], [2.0, 0.0]])}},
            r"'beta' holds nan",
        ),
        (
            {"replace": {"extra": np.zeros(2)}},
            r"'extra' is not part of a NonlinearMixedModel file",
        ),
        ({"drop": ("modes",)}, r"field 'modes' is missing"),
        (
            {"header": lambda h: h["scalars"].update(llf=-1.0)},
            r"'scalars.llf' is -1.0 but the saved estimates give",
        ),
        (
            {"header": lambda h: h["scalars"].update(n_subjects=59)},
            r"'modes' has shape \(60, 2\); expected \(59, 2\)",
        ),
        (
            {"header": lambda h: h.update(model="LinearMixedModel")},
            r"'model' is 'LinearMixedModel', expected 'NonlinearMixedModel'",
        ),
        (
            {
                "header": lambda h: h["params"].update(
                    formula="frs ~ __import__('os').getcwd()"
                )
            },
            r"'params",
        ),
        ({"header": lambda h: h["params"].update(tol=0)}, r"'params.tol' is refused"),
        (
            {"header": lambda h: h["names"].update(fe=["Intercept", "x"])},
            r"'names.fe' is \['Intercept', 'x'\] but the saved rows give",
        ),
    ],
)
def test_forged_files_are_refused(sim_fit, tmp_path, edit, match):
    _, m = sim_fit
    path = tmp_path / "m.npz"
    m.save(path)
    if "replace" in edit and edit["replace"].get("beta", 0) is None:
        beta = m._beta.copy()
        beta[0, 0] += 0.05  # estimates whose modes the file does not hold
        edit = {"replace": {"beta": beta}}
    forged = _forge(path, tmp_path / "forged.npz", **edit)
    with pytest.raises(SavedModelError, match=match):
        NonlinearMixedModel.load(forged)


def test_files_of_other_kinds_are_refused(tmp_path):
    with pytest.raises(SavedModelError, match="none.npz: no such file"):
        NonlinearMixedModel.load(tmp_path / "none.npz")
    text = tmp_path / "t.npz"
    text.write_text("subject_id,frs\n")
    with pytest.raises(SavedModelError):
        NonlinearMixedModel.load(text)


# ---------------------------------------------------------------- contract
def test_registered_with_its_config_defaults():
    assert MODELS["nonlinear"] is NonlinearMixedModel
    d = NonlinearMixedModel.data_defaults({"time": "t"}, outcome="frs", time="months")
    assert d == {"formula": "frs ~ 1"}
    c = NonlinearMixedModel(
        "alsfrs_r_total ~ onset_site", subject="pid"
    ).required_columns()
    assert (c.outcome, c.subject, c.time) == (
        "alsfrs_r_total",
        "pid",
        "months_since_onset",
    )
    assert isinstance(NonlinearMixedModel("frs ~ 1").describe(), str)


def test_columns_and_summary_type(sim_fit):
    _, m = sim_fit
    cols = m.columns_
    assert (cols.outcome, cols.subject, cols.time) == (
        "frs",
        "subject_id",
        "months_since_onset",
    )
    assert "onset_site" in cols.covariates and cols.visit_time == "months"
    assert isinstance(m.summary(), Summary)
    assert m.fit_statistics()["loglik"] == m.llf_


# ------------------------------------------------------------------- slow
@pytest.mark.slow
def test_recovers_the_simulation_truth():
    beta = np.array([[3.4, -0.25], [2.3, 0.1]])
    df, _ = simulate(500, 2024, beta=beta)
    m = NonlinearMixedModel("frs ~ onset_site").fit(df)
    # simulate() codes bulbar as 1; formulaic's reference level is bulbar
    truth = np.array(
        [beta[0, 0] + beta[0, 1], -beta[0, 1], beta[1, 0] + beta[1, 1], -beta[1, 1]]
    )
    z = (m.fe_params_.to_numpy() - truth) / m.bse_.to_numpy()
    assert np.all(np.abs(z) < 3.5), z
    rand = m.summary(0.99).tables["random"]
    for name, value in [
        ("sd(log_d50)", 0.3),
        ("sd(log_dx)", 0.25),
        ("corr(log_d50,log_dx)", 0.4),
        ("sigma", 2.0),
    ]:
        assert rand.loc[name, "ci_lower"] < value < rand.loc[name, "ci_upper"], name


@pytest.mark.slow
def test_forecast_intervals_cover_new_patients_visits():
    df, _ = simulate(300, 7)
    m = NonlinearMixedModel("frs ~ onset_site").fit(df)
    new, _ = simulate(300, 8)
    new["subject_id"] = "N" + new["subject_id"]
    hist = new[new["months"] <= 6.0]
    f = forecast(m, hist, [9.0, 12.0, 15.0], seed=4, level=0.9)
    truth = new[new["months"] >= 9.0]
    merged = f.merge(truth, on=["subject_id", "months"])
    assert len(merged) == 900
    inside = (merged["lower"] <= merged["frs"]) & (merged["frs"] <= merged["upper"])
    assert 0.87 <= inside.mean() <= 0.93, inside.mean()


def test_other_column_names_give_the_same_fit(sim_fit):
    df, m = sim_fit
    renamed = df.rename(
        columns={"subject_id": "patient", "months_since_onset": "t", "frs": "score"}
    )
    other = NonlinearMixedModel("score ~ onset_site", time="t", subject="patient")
    other.fit(renamed)
    assert_allclose(other.fe_params_.to_numpy(), m.fe_params_.to_numpy(), rtol=1e-12)
    assert other.llf_ == pytest.approx(m.llf_, rel=1e-12)
    assert (other.columns_.subject, other.columns_.time) == ("patient", "t")
    traj = other.subject_trajectories([12.0], subjects=["P0001"])
    assert list(traj.columns[:2]) == ["patient", "t"]


def test_using_a_fit_changes_neither_it_nor_the_data():
    df, _ = simulate(40, 31)
    before = df.copy()
    m = NonlinearMixedModel("frs ~ onset_site").fit(df)
    pd.testing.assert_frame_equal(df, before)
    keys = sorted(vars(m))
    arrays = {
        k: np.array(v, copy=True)
        for k, v in vars(m).items()
        if isinstance(v, np.ndarray)
    }
    frames = {
        k: v.copy()
        for k, v in vars(m).items()
        if isinstance(v, pd.Series | pd.DataFrame)
    }
    m.summary()
    m.predict(df)
    m.subject_trajectories([10.0])
    hist = df[(df["months"] <= 3) & df["subject_id"].isin(["P0001", "P0002"])]
    hist = hist.assign(subject_id="n" + hist["subject_id"])
    forecast(m, hist, [6.0], seed=0, n_samples=20)
    assert sorted(vars(m)) == keys
    for k, v in arrays.items():
        assert np.array_equal(getattr(m, k), v), k
    for k, v in frames.items():
        assert getattr(m, k).equals(v), k
