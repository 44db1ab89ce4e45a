"""Profile-likelihood intervals (``confint(method="profile")``) equal lme4's (issue 22).

References: tests/reference/lme4_profile_reference.json (R 4.2.2, lme4 1.1.31), written
offline by lme4_profile_reference.R on lme4's sleepstudy (random intercept;
correlated and uncorrelated intercept and slope, REML and ML; a near-null and a null
grouping factor; intercept only; two grouping factors; a 3 x 3 covariance) and the
simulated ALS cohort als_sim.csv (the model of lmertest_reference.R).  For each model
it holds lme4's ``confint(m, method = "profile")`` and the crossing points
``zeta = -/+ qnorm(0.975)`` solved by uniroot() on lme4's own deviance function
(``lme4:::devfun2``, the other parameters optimised by bobyqa; fixed effects by lmer
refits with an offset).

Tolerances, honestly reached:
* against the crossing points solved in R: 1e-7 relative (the largest difference is
  2.1e-9, ALS; both sides solve for the root, to ~1e-10, of the same deviance);
* against lme4's printed confint: 2e-4 relative (lme4 interpolates the crossing from a
  spline through about a dozen profile points: it is up to 7.2e-5 relative away from
  the crossing points), 2e-2 for the 3 x 3 covariance, where lme4 warns
  "non-monotonic profile" and falls back to linear interpolation (1.6e-2 off);
* the ML estimates, the profile's centre, against lme4's ML refit: 1e-4 relative
  (lme4's refitML stops its optimiser early: its correlation is 2.4e-5 off).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from lmm_testdata import REFERENCE
from scipy import optimize
from scipy import stats as st

from alsprog.errors import ModelSpecificationError
from alsprog.models import LinearMixedModel
from alsprog.models.lmm._profile import profile_model, profile_names

LME4 = json.loads((REFERENCE / "lme4_profile_reference.json").read_text())
C95 = math.sqrt(st.chi2.ppf(0.95, 1))
ALS = "frs ~ months * onset_site + age_at_onset + (months | subject_id)"
CASES = {
    "sleep_reml": ("Reaction ~ Days + (Days | Subject)", True),
    "sleep_ml": ("Reaction ~ Days + (Days | Subject)", False),
    "sleep_int": ("Reaction ~ Days + (1 | Subject)", True),
    "sleep_int_ml": ("Reaction ~ Days + (1 | Subject)", False),
    "sleep_uncorr": ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", True),
    "sleep_boundary": ("Reaction ~ Days + (1 | g2)", True),
    "sleep_singular": ("Reaction ~ Days + (1 | g3)", False),
    "sleep_null": ("Reaction ~ 1 + (1 | Subject)", True),
    "sleep_two": ("Reaction ~ Days + (1 | g2) + (Days | Subject)", True),
    "sleep_quad": ("Reaction ~ Days + (Days + D2 | Subject)", False),
    "als_reml": (ALS, True),
}
QUICK = [
    "sleep_reml",
    "sleep_int",
    "sleep_uncorr",
    "sleep_boundary",
    "sleep_singular",
    "sleep_null",
]
#: lme4's spline against the crossing points: 2e-4 relative, but where lme4 warns
#: "non-monotonic profile ... falling back to linear interpolation" (the 3 x 3
#: covariance: its correlations' limits are up to 1.6e-2 relative off)
SPLINE_RTOL = {"sleep_quad": 2e-2}
SLOW = [c for c in CASES if c not in QUICK]


def _data(name: str) -> pd.DataFrame:
    if name.startswith("als"):
        als = pd.read_csv(REFERENCE / "als_sim.csv", dtype={"subject_id": str})
        return als.assign(frs=als.pop("alsfrs_r_total"))
    sleep = pd.read_csv(REFERENCE / "sleepstudy.csv", dtype={"Subject": str})
    # as lme4_profile_reference.R: near-null and null groupings, a centred quadratic
    sleep["g2"] = (np.arange(len(sleep)) // 3 % 5).astype(str)
    sleep["g3"] = (np.arange(len(sleep)) % 3).astype(str)
    sleep["D2"] = (sleep["Days"] - 4.5) ** 2 / 10
    return sleep


_FITS: dict[str, LinearMixedModel] = {}
_PROFILES: dict[str, object] = {}


def _fit(name: str) -> LinearMixedModel:
    if name not in _FITS:
        formula, reml = CASES[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rows dropped (als), singular fits
            _FITS[name] = LinearMixedModel(formula, reml=reml).fit(_data(name))
    return _FITS[name]


def _profile(name: str):
    if name not in _PROFILES:
        _PROFILES[name] = profile_model(_fit(name))
    return _PROFILES[name]


def _lme4_name(ours: str) -> str:
    return ours.replace("Intercept", "(Intercept)")


def _check_against_lme4(name: str) -> None:
    r, prof = LME4[name], _profile(name)
    ci = prof.intervals
    n_var = len(r["names"]) - len(_fit(name).fe_params_)
    # rows in lme4's order, named as confint(oldNames = FALSE) names them
    assert [_lme4_name(n) for n in ci.index[:n_var]] == r["lme4_names"][:n_var]
    assert ci.index[n_var - 1] == "sigma"
    got = ci.to_numpy()
    exact = np.column_stack([r["exact_lower"], r["exact_upper"]])
    spline = np.column_stack([r["lower"], r["upper"]])
    np.testing.assert_allclose(got, exact, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(got, spline, rtol=SPLINE_RTOL.get(name, 2e-4), atol=1e-9)
    np.testing.assert_allclose(prof.estimates, r["ml_estimate"], rtol=1e-4)
    assert prof.deviance == pytest.approx(r["ml_deviance"], abs=1e-6)
    # the limits bracket the estimates (strictly, but for a limit at a bound)
    est = prof.estimates.to_numpy()
    assert np.all(got[:, 0] <= est) and np.all(est <= got[:, 1])
    assert np.all((got[:, 0] < est) | (got[:, 0] == 0.0))


@pytest.mark.parametrize("name", QUICK)
def test_profile_intervals_equal_lme4(name):
    _check_against_lme4(name)


@pytest.mark.veryslow  # a study (make test-all): keeps make test near 15 minutes
@pytest.mark.parametrize("name", SLOW)
def test_profile_intervals_equal_lme4_slow(name):
    _check_against_lme4(name)


def test_confint_method_profile_is_the_profile():
    m = _fit("sleep_int")
    pd.testing.assert_frame_equal(
        m.confint(method="profile"), _profile("sleep_int").intervals
    )
    # the default is unchanged: lme4's Wald intervals of the fixed effects
    wald = m.confint()
    np.testing.assert_allclose(
        wald["upper"], m.fe_params_ + st.norm.ppf(0.975) * m.bse_, rtol=1e-12
    )
    assert m.confint(method="wald").equals(wald)
    with pytest.raises(ValueError, match="`method` must be 'wald' or 'profile'"):
        m.confint(method="boot")
    with pytest.raises(ValueError, match="ddf='satterthwaite' with method='profile'"):
        m.confint(method="profile", ddf="satterthwaite")


def test_reml_fit_is_profiled_through_its_ml_refit():
    # lme4's devfun2() starts with refitML(): REML and ML fits have one profile
    reml, ml = profile_model(_fit("sleep_int")), _profile("sleep_int_ml")
    np.testing.assert_allclose(reml.intervals, ml.intervals, rtol=1e-8)
    np.testing.assert_allclose(reml.estimates, ml.estimates, rtol=1e-8)


# ----------------------------------------------------- brute-force zeta at the limits
def _dense_ml_deviance(y, X, Z, groups, cov_re, sigma, offset=None):
    """-2 log-likelihood of y ~ N(X beta + offset, Z G Z' + sigma^2 I), beta at its
    GLS estimate, by dense algebra per group (independent of alsprog's numerics)."""
    y = y - (0.0 if offset is None else offset)
    XtVX = np.zeros((X.shape[1], X.shape[1]))
    XtVy = np.zeros(X.shape[1])
    parts = []
    for g in np.unique(groups):
        i = groups == g
        V = Z[i] @ cov_re @ Z[i].T + sigma**2 * np.eye(i.sum())
        Vi = np.linalg.inv(V)
        XtVX += X[i].T @ Vi @ X[i]
        XtVy += X[i].T @ Vi @ y[i]
        parts.append((i, Vi, np.linalg.slogdet(V)[1]))
    beta = np.linalg.solve(XtVX, XtVy) if X.shape[1] else np.zeros(0)
    r = y - X @ beta
    dev = len(y) * math.log(2 * math.pi)
    for i, Vi, logdet in parts:
        dev += logdet + r[i] @ Vi @ r[i]
    return dev


def _sleep_arrays():
    d = _data("sleep_reml")
    y = d["Reaction"].to_numpy(float)
    X = np.column_stack([np.ones(len(d)), d["Days"].to_numpy(float)])
    groups = d["Subject"].to_numpy()
    return y, X, groups


def test_zeta_at_the_limits_is_the_chi_square_quantile_by_brute_force():
    """Random intercept: at each limit, the deviance minimised over the other
    parameters (Nelder-Mead on dense algebra) is C95^2 above the ML minimum."""
    y, X, groups = _sleep_arrays()
    Z = np.ones((len(y), 1))
    prof = _profile("sleep_int")
    est = prof.estimates

    def dev(sd, sigma, x_days=None):
        if x_days is None:
            return _dense_ml_deviance(y, X, Z, groups, np.array([[sd**2]]), sigma)
        return _dense_ml_deviance(
            y, X[:, :1], Z, groups, np.array([[sd**2]]), sigma, X[:, 1] * x_days
        )

    base = dev(est["sd_Intercept|Subject"], est["sigma"])
    assert base == pytest.approx(prof.deviance, abs=1e-8)
    ci = prof.intervals
    for side in ("lower", "upper"):
        sd = ci.loc["sd_Intercept|Subject", side]
        m = optimize.minimize_scalar(
            lambda s, sd=sd: dev(sd, s),
            bounds=(20, 40),
            method="bounded",
            options={"xatol": 1e-9},
        )
        assert math.sqrt(m.fun - base) == pytest.approx(C95, abs=1e-6)
        sig = ci.loc["sigma", side]
        m = optimize.minimize_scalar(
            lambda s, sig=sig: dev(s, sig),
            bounds=(10, 80),
            method="bounded",
            options={"xatol": 1e-9},
        )
        assert math.sqrt(m.fun - base) == pytest.approx(C95, abs=1e-6)
        x = ci.loc["Days", side]
        m = optimize.minimize(
            lambda p, x=x: dev(p[0], p[1], x),
            [est["sd_Intercept|Subject"], est["sigma"]],
            method="Nelder-Mead",
            options={"xatol": 1e-8, "fatol": 1e-11, "maxiter": 4000},
        )
        assert math.sqrt(m.fun - base) == pytest.approx(C95, abs=1e-5)


def test_correlation_limit_by_brute_force():
    """(Days | Subject): at the correlation's upper limit the deviance minimised
    over both sds and sigma (dense algebra, Nelder-Mead) is C95^2 above the minimum."""
    y, X, groups = _sleep_arrays()
    Z = X.copy()
    prof = _profile("sleep_reml")
    est = prof.estimates.to_numpy()

    def dev(s0, rho, s1, sigma):
        c = rho * s0 * s1
        return _dense_ml_deviance(
            y, X, Z, groups, np.array([[s0**2, c], [c, s1**2]]), sigma
        )

    base = dev(*est[:4])
    assert base == pytest.approx(prof.deviance, abs=1e-7)
    rho = prof.intervals.loc["cor_Days.Intercept|Subject", "upper"]
    m = optimize.minimize(
        lambda p: dev(p[0], rho, p[1], p[2]),
        est[[0, 2, 3]],
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-11, "maxiter": 6000},
    )
    assert math.sqrt(m.fun - base) == pytest.approx(C95, abs=1e-5)


# --------------------------------------------------------------- other properties
def test_sd_whose_profile_does_not_cross_before_zero_has_lower_limit_zero():
    prof = _profile("sleep_boundary")
    assert prof.intervals.loc["sd_Intercept|g2", "lower"] == 0.0
    t = prof.table[prof.table["parameter"] == "sd_Intercept|g2"]
    at0 = t.loc[t["value"] == 0.0, "zeta"]
    assert len(at0) == 1 and -C95 < float(at0.iloc[0]) < 0.0
    assert LME4["sleep_boundary"]["lower"][0] == 0.0


def test_lower_level_gives_nested_intervals_and_table_is_monotone():
    m = _fit("sleep_int")
    p95 = _profile("sleep_int")
    p80 = profile_model(m, 0.8, n_grid=5)
    assert np.all(p80.intervals["lower"] > p95.intervals["lower"])
    assert np.all(p80.intervals["upper"] < p95.intervals["upper"])
    c80 = math.sqrt(st.chi2.ppf(0.8, 1))
    for par, t in p80.table.groupby("parameter", sort=False):
        z = t["zeta"].to_numpy()
        assert np.all(np.diff(t["value"].to_numpy()) > 0), par
        # zeta increases through the estimate (points the root finder placed
        # within 1e-10 of each other may tie to rounding)
        assert np.all(np.diff(z) > -1e-9), par
        lo, hi = p80.intervals.loc[par]
        v = t.set_index("value")["zeta"]
        assert v[lo] == pytest.approx(-c80, abs=1e-7)
        assert v[hi] == pytest.approx(c80, abs=1e-7)
        assert len(t) >= 5 + 3  # the grid, the estimate and both limits
        at_est = t.loc[t["value"] == p80.estimates[par], "zeta"]
        assert float(at_est.iloc[0]) == 0.0


def test_parm_selects_parameters_by_name_or_kind():
    m = _fit("sleep_int")
    names = profile_names(m)
    assert names == ["sd_Intercept|Subject", "sigma", "Intercept", "Days"]
    theta = profile_model(m, parm="theta_").intervals
    assert list(theta.index) == names[:2]
    pd.testing.assert_frame_equal(theta, _profile("sleep_int").intervals.iloc[:2])
    beta = profile_model(m, parm=["Days"]).intervals
    assert list(beta.index) == ["Days"]
    with pytest.raises(ModelSpecificationError, match=r"\['days'\], which are not"):
        profile_model(m, parm=["days"])


def test_profiling_leaves_the_fitted_model_unchanged():
    m = LinearMixedModel("Reaction ~ Days + (1 | Subject)").fit(_data("sleep_int"))
    before = {k: v for k, v in vars(m).items() if k.endswith("_")}
    theta, llf = m.theta_.copy(), m.llf_
    m.confint(method="profile", level=0.5)
    after = {k: v for k, v in vars(m).items() if k.endswith("_")}
    assert after.keys() == before.keys()
    pd.testing.assert_series_equal(m.theta_, theta)
    assert m.llf_ == llf and m.reml is True


def test_sd_cor_scale_round_trips_theta():
    """theta -> (sd, cor, sigma) -> theta, on a 3 x 3 term beside a 1 x 1 term, and
    the covariance the sd/cor values describe is sigma^2 Lambda Lambda'."""
    from alsprog.models.lmm._profile import _Scale

    rows = np.array([0, 1, 2, 1, 2, 2, 3])
    cols = np.array([0, 0, 0, 1, 1, 2, 3])
    scale = _Scale(rows, cols, 4)
    theta = np.array([1.3, -0.4, 0.2, 0.7, 0.5, 0.9, 0.3])
    v = scale.to_sdcor(theta, 2.0)
    np.testing.assert_allclose(scale.to_theta(v), theta, rtol=1e-13)
    lam = np.zeros((4, 4))
    lam[rows, cols] = theta
    cov = 4.0 * lam @ lam.T
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(v[[0, 3, 5, 6]], sd, rtol=1e-13)
    assert v[1] == pytest.approx(cov[1, 0] / (sd[1] * sd[0]), rel=1e-13)
    assert v[4] == pytest.approx(cov[2, 1] / (sd[2] * sd[1]), rel=1e-13)
    assert v[-1] == 2.0
    # a correlation of +-1 is on the boundary (a singular factor), beyond it nothing
    edge = v.copy()
    edge[1] = -1.0
    edge[2] = edge[4] = 0.0
    th = scale.to_theta(edge)
    assert th is not None and th[3] == pytest.approx(0.0, abs=1e-12)
    edge[1] = 1.0001
    assert scale.to_theta(edge) is None


def test_lower_deviance_found_while_profiling_warns(monkeypatch):
    """A centre that is not the optimum (lme4 stops: 'profiling detected new, lower
    deviance') warns."""
    from alsprog.errors import ConvergenceWarning
    from alsprog.models.lmm import _profile
    from alsprog.models.lmm._numerics import estimates_at

    fit = _profile._Criterion.fit

    def off_optimum(self, theta0):
        est = fit(self, theta0)
        tpl = self.template
        return estimates_at(est.theta * 1.3, self.stats, tpl.rows, tpl.cols, reml=False)

    monkeypatch.setattr(_profile._Criterion, "fit", off_optimum)
    with pytest.warns(ConvergenceWarning, match="deviance .* below the ML fit's"):
        # the grid puts profile points near the real optimum, below the centre
        profile_model(_fit("sleep_int"), parm="sigma", n_grid=9)


def test_a_loaded_model_has_the_same_profile(tmp_path):
    m = _fit("sleep_int")
    path = tmp_path / ("lmm" + m.file_suffix)
    m.save(path)
    back = LinearMixedModel.load(path)
    pd.testing.assert_frame_equal(
        back.confint(method="profile"), _profile("sleep_int").intervals, rtol=1e-9
    )
