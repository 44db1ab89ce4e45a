"""LinearMixedModel against lme4 (R, run offline), statsmodels and closed forms."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone

from alsprog.errors import (
    ConvergenceWarning,
    DataWarning,
    ModelSpecificationError,
    NotFittedError,
)
from alsprog.models import LinearMixedModel, Summary

# Reference fits: tests/reference/lme4_reference.R (R 4.2.2, lme4 1.1.31, bobyqa with
# rhoend 1e-12), saved to tests/reference/lme4_reference.json; printed output in
# tests/reference/lme4_reference.Rout.
LME4_CASES = {
    "sleep_reml": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
    "sleep_ml": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", False),
    "sleep_uncorr": (
        "sleepstudy",
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
        True,
    ),
    "sleep_int": ("sleepstudy", "Reaction ~ Days + (1 | Subject)", True),
    # R: log(Reaction) ~ cD + (cD | Subject) with cD = Days - mean(Days)
    "sleep_log": (
        "sleepstudy",
        "np.log(Reaction) ~ center(Days) + (center(Days) | Subject)",
        True,
    ),
    "als_reml": (
        "als_reference",
        "frs ~ months * onset_site + age_at_onset + (months | subject_id)",
        True,
    ),
    "als_ml": (
        "als_reference",
        "frs ~ months * onset_site + age_at_onset + (months | subject_id)",
        False,
    ),
    "als_uncorr": (
        "als_reference",
        "frs ~ months + (1 | subject_id) + (0 + months | subject_id)",
        True,
    ),
}
RTOL = 1e-4  # issue 5: "match lme4/statsmodels to 1e-4 relative"


def _lme4_name(name: str) -> str:
    """lme4 spells coefficients as R does; map to formulaic/patsy names."""
    name = name.replace("(Intercept)", "Intercept")
    if name == "cD":
        return "center(Days)"
    for lvl in ("other", "spinal"):
        name = name.replace(f"onset_site{lvl}", f"onset_site[T.{lvl}]")
    return name


def _fit(request, case: str, **kw) -> LinearMixedModel:
    data_name, formula, reml = LME4_CASES[case]
    df = request.getfixturevalue(data_name)
    time = "Days" if data_name == "sleepstudy" else "months"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return LinearMixedModel(formula, reml=reml, time=time, **kw).fit(df)


@pytest.fixture(scope="module")
def sleep_fit(sleepstudy) -> LinearMixedModel:
    return LinearMixedModel("Reaction ~ Days + (Days | Subject)", time="Days").fit(
        sleepstudy
    )


# ---------------------------------------------------------------- lme4 agreement
def test_sleepstudy_published_values(sleep_fit):
    # lme4 documentation / Bates et al. 2015 JSS, sleepstudy example (REML):
    # fixef 251.405105, 10.467286; SDs 24.741, 5.922; corr 0.066; sigma 25.592;
    # REML criterion 1743.6.
    m = sleep_fit
    assert_allclose(m.fe_params_, [251.405105, 10.467286], rtol=1e-6)
    sd = np.sqrt(np.diag(m.cov_re_))
    assert_allclose(sd, [24.741, 5.922], atol=1e-3)  # published to 3 decimals
    corr = m.cov_re_.iloc[0, 1] / sd.prod()
    assert corr == pytest.approx(0.066, abs=5e-4)
    assert np.sqrt(m.scale_) == pytest.approx(25.592, abs=5e-4)
    assert -2 * m.llf_ == pytest.approx(1743.6, abs=0.05)
    assert m.converged_ and not m.singular_
    assert (m.n_obs_, m.n_groups_, m.n_dropped_) == (180, 18, 0)


@pytest.mark.parametrize("case", sorted(LME4_CASES))
def test_matches_lme4(request, lme4_values, case):
    ref = lme4_values[case]
    m = _fit(request, case)
    names = [_lme4_name(k) for k in ref["fixef"]]
    assert list(m.fe_params_.index) == names
    assert_allclose(m.fe_params_[names], list(ref["fixef"].values()), rtol=RTOL)
    assert_allclose(m.bse_[names], list(ref["se"].values()), rtol=RTOL)
    assert_allclose(m.scale_, ref["sigma"] ** 2, rtol=RTOL)
    vc = np.atleast_2d(np.asarray(ref["vcov_re"], dtype=float))
    assert_allclose(m.cov_re_.to_numpy(), vc, rtol=RTOL, atol=RTOL * np.abs(vc).max())
    assert_allclose(m.theta_.to_numpy(), ref["theta"], rtol=RTOL, atol=1e-6)
    # criterion = -2 llf on lme4's scale (REML criterion or ML deviance)
    assert_allclose(-2 * m.llf_, ref["criterion"], rtol=1e-8)
    assert_allclose(m.llf_, ref["logLik"], rtol=1e-8)
    assert (m.n_obs_, m.n_groups_) == (ref["nobs"], ref["ngrps"])
    assert m.singular_ == ref["singular"]
    # BLUPs (conditional modes), all subjects
    assert list(map(str, m.random_effects_.index)) == ref["ranef_levels"]
    b = np.asarray(ref["ranef"], dtype=float)
    assert_allclose(
        m.random_effects_.to_numpy(), b, rtol=RTOL, atol=RTOL * np.abs(b).max()
    )
    ci = np.asarray(ref["confint_wald"], dtype=float)
    assert_allclose(m.confint(0.95).to_numpy(), ci, rtol=RTOL)


def test_na_rows_dropped_like_lme4(als_reference, lme4_values):
    n_na = int(als_reference[["frs", "age_at_onset"]].isna().any(axis=1).sum())
    with pytest.warns(
        DataWarning, match=rf"Dropped {n_na} of {len(als_reference)} rows"
    ):
        m = LinearMixedModel(
            "frs ~ months * onset_site + age_at_onset + (months | subject_id)"
        ).fit(als_reference)
    assert m.n_dropped_ == n_na
    assert m.n_obs_ == lme4_values["als_reml"]["nobs"] == len(als_reference) - n_na


def test_singular_fit_reported_as_lme4(lme4_values):
    ref = lme4_values["noise_int"]
    df = pd.DataFrame(
        {
            "y": [1, -1, 0, 2, -2, 0, 0.5, -0.5, 0, 1.5, -1.5, 0],
            "g": np.repeat(list("abcd"), 3),
        }
    )
    with pytest.warns(
        ConvergenceWarning, match=r"boundary \(singular\) fit.*Intercept"
    ):
        m = LinearMixedModel("y ~ 1 + (1 | g)").fit(df)
    assert m.singular_ and ref["singular"]
    assert m.theta_.iloc[0] == pytest.approx(ref["theta"], abs=1e-6)
    assert -2 * m.llf_ == pytest.approx(ref["criterion"], rel=1e-8)
    assert np.sqrt(m.scale_) == pytest.approx(ref["sigma"], rel=1e-6)
    assert "singular" in str(m.summary())


# --------------------------------------------------------- statsmodels agreement
@pytest.mark.parametrize("reml", [True, False])
def test_matches_statsmodels_on_cohort(cohort, reml):
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = smf.mixedlm(
            "frs ~ months * onset_site",
            cohort,
            groups=cohort["subject_id"],
            re_formula="~months",
        ).fit(reml=reml, method=["lbfgs"], gtol=1e-10)
    m = LinearMixedModel(
        "frs ~ months * onset_site + (months | subject_id)", reml=reml
    ).fit(cohort)
    assert_allclose(m.fe_params_, r.fe_params[m.fe_params_.index], rtol=RTOL)
    # statsmodels' bse_fe come from the observed information of all parameters jointly
    # (beta-theta cross terms included); lme4 and alsprog use sigma^2 (X'V^-1X)^-1.
    # They differ by O(1e-4), so compare with statsmodels' own GLS-form below.
    assert_allclose(m.bse_, r.bse_fe[m.bse_.index], rtol=2e-3)
    assert_allclose(
        m.cov_re_.to_numpy(),
        r.cov_re.to_numpy(),
        rtol=RTOL,
        atol=RTOL * np.abs(r.cov_re.to_numpy()).max(),
    )
    assert m.scale_ == pytest.approx(r.scale, rel=RTOL)
    # statsmodels' llf uses lme4's constants for both REML and ML
    assert m.llf_ == pytest.approx(r.llf, rel=1e-7)
    blups = np.vstack([r.random_effects[k].to_numpy() for k in m.random_effects_.index])
    assert_allclose(
        m.random_effects_.to_numpy(), blups, rtol=1e-3, atol=1e-4 * np.abs(blups).max()
    )
    # our optimum is at least as good as statsmodels'
    assert m.llf_ >= r.llf - 1e-8


# ----------------------------------------------------------- dense closed forms
def test_estimates_equal_dense_gls_and_henderson(sleep_fit, sleepstudy):
    """beta is GLS with V built densely; BLUPs solve Henderson's equations."""
    m = sleep_fit
    X = np.column_stack([np.ones(180), sleepstudy["Days"]])
    g = pd.factorize(sleepstudy["Subject"], sort=True)[0]
    Z = np.zeros((180, 36))
    Z[np.arange(180), 2 * g] = 1.0
    Z[np.arange(180), 2 * g + 1] = sleepstudy["Days"]
    D = np.kron(np.eye(18), m.cov_re_.to_numpy())
    V = Z @ D @ Z.T + m.scale_ * np.eye(180)
    Vi = np.linalg.inv(V)
    y = sleepstudy["Reaction"].to_numpy()
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    assert_allclose(m.fe_params_, beta, rtol=1e-9)
    assert_allclose(m.cov_params().to_numpy(), np.linalg.inv(X.T @ Vi @ X), rtol=1e-8)
    b = D @ Z.T @ Vi @ (y - X @ beta)
    assert_allclose(m.random_effects_.to_numpy().ravel(), b, rtol=1e-8, atol=1e-9)
    # REML log-likelihood from its definition
    sign, logdet_v = np.linalg.slogdet(V)
    r = y - X @ beta
    llf = -0.5 * (
        logdet_v
        + np.linalg.slogdet(X.T @ Vi @ X)[1]
        + r @ Vi @ r
        + (180 - 2) * np.log(2 * np.pi)
    )
    assert m.llf_ == pytest.approx(llf, rel=1e-10)


def test_trajectory_intervals_match_henderson_inverse(sleep_fit, sleepstudy):
    """Prediction-error variance of x b + z u from the inverse of Henderson's MME."""
    m = sleep_fit
    X = np.column_stack([np.ones(180), sleepstudy["Days"]])
    g = pd.factorize(sleepstudy["Subject"], sort=True)[0]
    Z = np.zeros((180, 36))
    Z[np.arange(180), 2 * g] = 1.0
    Z[np.arange(180), 2 * g + 1] = sleepstudy["Days"]
    s2 = m.scale_
    Ginv = np.kron(np.eye(18), np.linalg.inv(m.cov_re_.to_numpy()))
    mme = np.block([[X.T @ X, X.T @ Z], [Z.T @ X, Z.T @ Z + s2 * Ginv]])
    cinv = s2 * np.linalg.inv(mme)
    times = np.array([0.0, 4.5, 12.0])
    subj = ["309", "372"]
    traj = m.subject_trajectories(
        times, subjects=subj, level=0.9, interval="confidence"
    )
    levels = list(m.random_effects_.index)
    expected_se = []
    for s in subj:
        i = levels.index(s)
        for t in times:
            c = np.zeros(38)
            c[:2] = [1.0, t]
            c[2 + 2 * i : 4 + 2 * i] = [1.0, t]
            expected_se.append(np.sqrt(c @ cinv @ c))
    assert_allclose(traj["se"], expected_se, rtol=1e-7)
    pred = m.subject_trajectories(
        times, subjects=subj, level=0.9, interval="prediction"
    )
    assert_allclose(pred["se"] ** 2, np.square(expected_se) + s2, rtol=1e-7)
    assert_allclose(
        pred["upper"] - pred["mean"], 1.6448536269514722 * pred["se"], rtol=1e-9
    )
    # the mean is the subject-specific prediction
    new = pd.DataFrame({"Subject": np.repeat(subj, 3), "Days": np.tile(times, 2)})
    assert_allclose(pred["mean"], m.predict(new), rtol=1e-12)
    assert list(pred.columns) == ["Subject", "Days", "mean", "se", "lower", "upper"]


# ------------------------------------------------------------------ behaviour
def test_predict_seen_unseen_and_population(sleep_fit, sleepstudy):
    m = sleep_fit
    new = pd.DataFrame({"Subject": ["308", "999"], "Days": [2.0, 2.0]})
    p = m.predict(new)
    fixed = m.fe_params_["Intercept"] + 2.0 * m.fe_params_["Days"]
    b = m.random_effects_.loc["308"]
    assert p.iloc[0] == pytest.approx(
        fixed + b["Intercept"] + 2.0 * b["Days"], rel=1e-12
    )
    assert p.iloc[1] == pytest.approx(fixed, rel=1e-12)
    assert_allclose(m.predict(new, include_random=False), [fixed, fixed], rtol=1e-12)
    # fitted values + residuals give the data back
    assert_allclose(
        m.predict(sleepstudy) + m.resid_, sleepstudy["Reaction"], rtol=1e-12
    )


def test_trajectories_default_grid_and_all_subjects(sleep_fit):
    traj = sleep_fit.subject_trajectories()
    assert len(traj) == 18 * 25
    assert traj["Days"].min() == 0.0 and traj["Days"].max() == 9.0
    assert (traj["lower"] < traj["mean"]).all() and (traj["mean"] < traj["upper"]).all()


def test_predict_missing_covariate_gives_nan(sleep_fit):
    p = sleep_fit.predict(
        pd.DataFrame({"Subject": ["308", "308"], "Days": [1.0, np.nan]})
    )
    assert np.isfinite(p.iloc[0]) and np.isnan(p.iloc[1])


def test_categorical_names_and_predict_new_levels(cohort):
    m = LinearMixedModel("frs ~ months * onset_site + (months | subject_id)").fit(
        cohort
    )
    assert list(m.fe_params_.index) == [
        "Intercept",
        "months",
        "onset_site[T.other]",
        "onset_site[T.spinal]",
        "months:onset_site[T.other]",
        "months:onset_site[T.spinal]",
    ]
    bad = cohort.head(2).assign(onset_site="respiratory")
    with pytest.raises(ModelSpecificationError, match="prediction"):
        m.predict(bad)


def test_double_bar_equals_explicit_uncorrelated(sleepstudy):
    a = LinearMixedModel("Reaction ~ Days + (Days || Subject)").fit(sleepstudy)
    b = LinearMixedModel("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)").fit(
        sleepstudy
    )
    assert_allclose(a.theta_, b.theta_, rtol=1e-10)
    assert a.cov_re_.iloc[0, 1] == 0.0


def test_three_random_effects(sleepstudy):
    """q = 3 uses the general (non closed-form) path; compare with statsmodels."""
    import statsmodels.formula.api as smf

    df = sleepstudy.assign(d2=(sleepstudy["Days"] - 4.5) ** 2 / 10)
    m = LinearMixedModel("Reaction ~ Days + d2 + (Days + d2 | Subject)").fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = smf.mixedlm(
            "Reaction ~ Days + d2", df, groups=df["Subject"], re_formula="~Days + d2"
        ).fit(reml=True, method=["lbfgs"])
    assert m.llf_ >= r.llf - 1e-6
    assert m.llf_ == pytest.approx(r.llf, abs=1e-3)
    assert_allclose(m.fe_params_, r.fe_params, rtol=1e-3)


def test_summary_tables_and_text(sleep_fit):
    s = sleep_fit.summary()
    assert isinstance(s, Summary)
    assert set(s.tables) == {"residuals", "random", "fixed"}
    fixed = s.tables["fixed"]
    # lmerTest's table (issue 22): df and p of the Satterthwaite t-tests
    assert list(fixed.columns) == [
        "estimate",
        "std_error",
        "df",
        "t",
        "p_value",
        "ci_lower",
        "ci_upper",
    ]
    assert fixed.loc["Days", "t"] == pytest.approx(6.771, abs=1e-3)  # lme4 t value
    assert fixed.loc["Days", "df"] == pytest.approx(17.0, abs=1e-3)
    # lme4 scaled residuals: Min -3.9536, Max 5.1793 (lme4_reference.Rout)
    assert s.tables["residuals"]["Min"].iloc[0] == pytest.approx(-3.953563861, rel=1e-5)
    assert s.tables["residuals"]["Max"].iloc[0] == pytest.approx(5.179256574, rel=1e-5)
    text = str(s)
    for piece in (
        "Linear mixed model fit by REML",
        "REML criterion at convergence: 1743.6",
        "Random effects:",
        "Fixed effects:",
        "Residual",
        "Subject, 18",
    ):
        assert piece in text
    assert "<table" in s.to_html() and s._repr_html_() == s.to_html()


def test_ml_summary_has_information_criteria(sleepstudy, lme4_values):
    m = LinearMixedModel("Reaction ~ Days + (Days | Subject)", reml=False).fit(
        sleepstudy
    )
    # lme4 AIC = deviance + 2 * 6 parameters
    assert m.aic == pytest.approx(lme4_values["sleep_ml"]["criterion"] + 12, rel=1e-9)
    assert m.bic == pytest.approx(
        lme4_values["sleep_ml"]["criterion"] + 6 * np.log(180), rel=1e-9
    )
    assert "AIC" in str(m.summary())


def test_estimator_contract(sleepstudy):
    m = LinearMixedModel("Reaction ~ Days + (1 | Subject)", reml=False)
    assert m.get_params() == {
        "formula": "Reaction ~ Days + (1 | Subject)",
        "reml": False,
        "time": "months",
        "tol": 1e-10,
        "max_iter": 1000,
        "strict": False,
        "ddf": "satterthwaite",
    }
    c = clone(m)
    assert c.fit(sleepstudy) is c
    assert not hasattr(m, "fe_params_")
    # a second fit starts from scratch
    c.set_params(formula="Reaction ~ Days + (Days | Subject)").fit(sleepstudy)
    assert list(c.cov_re_.index) == ["Intercept", "Days"]


def test_params_protocol_without_sklearn_base():
    # LinearMixedModel implements scikit-learn's parameter protocol itself (importing
    # sklearn.base would cost more than a whole first fit; benchmarks/lmm.py)
    m = LinearMixedModel("y ~ t + (1 | g)", tol=1e-8)
    assert repr(m) == "LinearMixedModel(formula='y ~ t + (1 | g)', tol=1e-08)"
    assert repr(clone(m)) == repr(m)
    with pytest.raises(ModelSpecificationError, match="Invalid parameter 'colour'"):
        m.set_params(colour="red")
    assert m.set_params() is m


def test_first_fit_imports_stay_light():
    # the cold-start target (issue 5): a first fit must not pull in sklearn,
    # scipy.stats or the Bayesian/MMRM modules, and every public name must resolve
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from alsprog.models import LinearMixedModel\n"
        "g = np.repeat(np.arange(10), 3); t = np.tile([0.0, 1.0, 2.0], 10)\n"
        "y = np.sin(g) + t + np.cos(np.arange(30))\n"
        "df = pd.DataFrame({'g': g, 't': t, 'y': y})\n"
        "LinearMixedModel('y ~ t + (1 | g)').fit(df)\n"
        "heavy = ('sklearn', 'scipy.stats', 'alsprog.models.bayes._model',\n"
        "         'alsprog.models.mmrm._model', 'jax', 'pymc', 'arviz')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    import alsprog.models as models

    for name in models.__all__:
        assert getattr(models, name).__name__ == name
    assert set(models.__all__) <= set(dir(models))
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        models.Nope  # noqa: B018


def test_input_frame_not_modified(cohort):
    before = cohort.copy()
    LinearMixedModel("frs ~ months + (months | subject_id)").fit(cohort)
    pd.testing.assert_frame_equal(cohort, before)


def test_confint_level(sleep_fit):
    ci90 = sleep_fit.confint(0.9)
    ci95 = sleep_fit.confint()
    assert (ci90["lower"] > ci95["lower"]).all() and (
        ci90["upper"] < ci95["upper"]
    ).all()
    half = (ci95["upper"] - ci95["lower"]) / 2
    assert_allclose(half, 1.959963984540054 * sleep_fit.bse_, rtol=1e-12)


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("formula", "match"),
    [
        ("Reaction ~ Days + (Days | Subject) + Nope", r"unknown column\(s\) 'Nope'"),
        ("Reaction ~ Days + (Nope | Subject)", r"unknown column\(s\) 'Nope'"),
        ("Reaction ~ Days + (Days | Person)", r"'Person'.*not a column"),
        ("Reaction Days + (1 | Subject)", r"exactly one '~'"),
        ("Reaction ~ Days + (1 | Subject", r"unmatched '\('"),
        ("Reaction ~ Days + 1 | Subject", r"Cannot read term '1 \| Subject'"),
        ("Reaction ~ Days + ( | Subject)", r"nothing left of '\|'"),
        (
            "Reaction ~ Days + (1 | Subject/Days)",
            r"180 random effects of .Days:Subject.",
        ),
        ("Reaction ~ Days + (1 | log(Subject))", r"not a column name"),
        ("Reaction ~ Days", r"no random-effects term"),
        (
            "Reaction ~ Days + (1 | Subject) + (Days | Subject)",
            r"'Intercept'.*more than one",
        ),
        (
            "Reaction ~ Days + I(2 * Days) + (1 | Subject)",
            r"perfectly collinear.*'I\(2 \* Days\)'",
        ),
        (" ~ Days + (1 | Subject)", r"no outcome"),
    ],
)
def test_bad_formula(sleepstudy, formula, match):
    with pytest.raises(ModelSpecificationError, match=match):
        LinearMixedModel(formula).fit(sleepstudy)


def test_one_level_grouping_factor(sleepstudy):
    df = sleepstudy.assign(Subject="308")
    with pytest.raises(ModelSpecificationError, match=r"'Subject' has 1 level"):
        LinearMixedModel("Reaction ~ Days + (1 | Subject)").fit(df)


def test_too_few_observations():
    df = pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 4.0],
            "t": [0.0, 1.0, 0.0, 1.0],
            "g": ["a", "a", "b", "b"],
        }
    )
    with pytest.raises(
        ModelSpecificationError, match=r"Too few observations: 4 .*<= 4"
    ):
        LinearMixedModel("y ~ t + (t | g)").fit(df)
    one_per_group = pd.DataFrame({"y": [1.0, 2.0, 3.0], "g": ["a", "b", "c"]})
    with pytest.raises(ModelSpecificationError, match="Too few observations"):
        LinearMixedModel("y ~ 1 + (1 | g)").fit(one_per_group)


def test_all_rows_missing():
    df = pd.DataFrame({"y": [np.nan] * 4, "g": list("aabb")})
    with (
        pytest.warns(DataWarning),
        pytest.raises(ModelSpecificationError, match="No complete"),
    ):
        LinearMixedModel("y ~ 1 + (1 | g)").fit(df)


def test_categorical_outcome_rejected(sleepstudy):
    with pytest.raises(ModelSpecificationError, match="Outcome 'Subject'"):
        LinearMixedModel("Subject ~ Days + (1 | Days)").fit(
            sleepstudy.assign(Days=sleepstudy["Days"] % 3)
        )


def test_not_a_dataframe():
    with pytest.raises(ModelSpecificationError, match="pandas DataFrame"):
        LinearMixedModel("y ~ 1 + (1 | g)").fit({"y": [1.0]})


@pytest.mark.parametrize(
    ("params", "exc", "match"),
    [
        ({"reml": "yes"}, ValueError, r"`reml` must be one of True, False; got 'yes'"),
        ({"tol": 0.0}, ValueError, r"`tol` must be in \(0, 1\]; got 0.0"),
        ({"max_iter": 0}, ValueError, r"`max_iter` must be an integer >= 1; got 0"),
        ({"time": 3}, TypeError, r"`time` must be a column name"),
        ({"formula": 3}, ModelSpecificationError, r"`formula` must be a string"),
    ],
)
def test_bad_parameters(sleepstudy, params, exc, match):
    kw = {"formula": "Reaction ~ Days + (1 | Subject)", **params}
    with pytest.raises(exc, match=match):
        LinearMixedModel(**kw).fit(sleepstudy)


@pytest.mark.parametrize("method", ["summary", "confint", "cov_params", "aic"])
def test_not_fitted(method):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(LinearMixedModel("y ~ 1 + (1 | g)"), method)()


def test_bad_prediction_inputs(sleep_fit):
    with pytest.raises(ModelSpecificationError, match=r"lacks column\(s\) 'Days'"):
        sleep_fit.predict(pd.DataFrame({"Subject": ["308"]}))
    with pytest.raises(ModelSpecificationError, match="grouping column 'Subject'"):
        sleep_fit.predict(pd.DataFrame({"Days": [1.0]}))
    with pytest.raises(ModelSpecificationError, match=r"Subject\(s\) 'nobody'"):
        sleep_fit.subject_trajectories([0.0], subjects=["nobody"])
    with pytest.raises(ValueError, match=r"`level` must be in \(0, 1\); got 90"):
        sleep_fit.subject_trajectories([0.0], level=90)
    with pytest.raises(ValueError, match=r"`level` must be in \(0, 1\); got 1.5"):
        sleep_fit.confint(1.5)
    with pytest.raises(ValueError, match="`interval` must be one of"):
        sleep_fit.subject_trajectories([0.0], interval="credible")
    with pytest.raises(ValueError, match="`times` must be finite"):
        sleep_fit.subject_trajectories([np.nan])
    m = LinearMixedModel("Reaction ~ Days + (1 | Subject)").fit(
        pd.read_csv(
            __import__("lmm_testdata").REFERENCE / "sleepstudy.csv",
            dtype={"Subject": str},
        )
    )
    with pytest.raises(ModelSpecificationError, match="Time column 'months'"):
        m.subject_trajectories([0.0])


def test_nonconvergence_warns_and_strict_raises(sleepstudy):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        m = LinearMixedModel(
            "Reaction ~ Days + (Days | Subject)", max_iter=1, tol=1e-15
        ).fit(sleepstudy)
    assert not m.converged_
    from alsprog.errors import ConvergenceError

    with pytest.raises(ConvergenceError, match="did not converge"):
        LinearMixedModel(
            "Reaction ~ Days + (Days | Subject)", max_iter=1, tol=1e-15, strict=True
        ).fit(sleepstudy)
