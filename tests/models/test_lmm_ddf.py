"""Satterthwaite t-tests of the fixed effects equal lmerTest's (issue 22).

References: tests/reference/lmertest_reference.json (R 4.2.2, lme4 1.1.31, lmerTest
3.1.3), written offline by lmertest_reference.R on lme4's sleepstudy and the
simulated ALS cohort als_sim.csv.  Both sides take numerical derivatives
(Richardson-extrapolated central differences), so the df agree to about 1e-6
relative; the issue asks for 1e-4, and p to 1e-6 absolute below 0.01.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from lmm_testdata import REFERENCE
from scipy import stats as st

from alsprog.errors import ModelSpecificationError
from alsprog.models import LinearMixedModel

LMERTEST = json.loads((REFERENCE / "lmertest_reference.json").read_text())
ALS = "frs ~ months * onset_site + age_at_onset + (months | subject_id)"
CASES = {
    "sleep_reml": ("Reaction ~ Days + (Days | Subject)", True),
    "sleep_ml": ("Reaction ~ Days + (Days | Subject)", False),
    "sleep_int": ("Reaction ~ Days + (1 | Subject)", True),
    "sleep_uncorr": ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", True),
    "als_reml": (ALS, True),
    "als_ml": (ALS, False),
}


def _data(name, sleepstudy):
    if name.startswith("als"):
        als = pd.read_csv(REFERENCE / "als_sim.csv", dtype={"subject_id": str})
        return als.assign(frs=als.pop("alsfrs_r_total"))
    return sleepstudy


@pytest.fixture(scope="module")
def fits(sleepstudy):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # als: rows with missing values dropped
        for name, (formula, reml) in CASES.items():
            out[name] = LinearMixedModel(formula, reml=reml).fit(
                _data(name, sleepstudy)
            )
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_satterthwaite_table_equals_lmertest(fits, name):
    m, r = fits[name], LMERTEST[name]
    fixed = m.summary().tables["fixed"]
    assert list(fixed.columns) == [
        "estimate",
        "std_error",
        "df",
        "t",
        "p_value",
        "ci_lower",
        "ci_upper",
    ]
    np.testing.assert_allclose(fixed["estimate"], r["estimate"], rtol=1e-6)
    np.testing.assert_allclose(fixed["std_error"], r["se"], rtol=1e-5)
    np.testing.assert_allclose(fixed["df"], r["df"], rtol=1e-5)
    np.testing.assert_allclose(fixed["t"], r["t"], rtol=1e-5)
    p, rp = fixed["p_value"].to_numpy(), np.array(r["p"])
    small = rp < 0.01
    np.testing.assert_allclose(p[small], rp[small], rtol=0, atol=1e-6)
    np.testing.assert_allclose(p[~small], rp[~small], rtol=1e-4)
    # t-based intervals on each coefficient's df (R: est -/+ qt(0.975, df) se)
    q = st.t.ppf(0.975, r["df"])
    np.testing.assert_allclose(
        fixed["ci_lower"], np.array(r["estimate"]) - q * np.array(r["se"]), rtol=1e-5
    )
    ci = m.confint(ddf="satterthwaite")
    np.testing.assert_allclose(ci["upper"], fixed["ci_upper"], rtol=1e-12)


@pytest.mark.parametrize("name", ["sleep_reml", "als_reml"])
def test_contest_equals_lmertest(fits, name):
    m, r = fits[name], LMERTEST[name]
    got = m.contest(r["contrast_L"]).iloc[0]
    ref = r["contrast"]
    assert got["estimate"] == pytest.approx(ref["estimate"], rel=1e-6)
    assert got["std_error"] == pytest.approx(ref["se"], rel=1e-5)
    assert got["df"] == pytest.approx(ref["df"], rel=1e-5)
    assert got["t"] == pytest.approx(ref["t"], rel=1e-5)
    assert got["p_value"] == pytest.approx(ref["p"], rel=1e-3, abs=1e-300)
    # the same contrast by coefficient names
    names = list(m.fe_params_.index)
    named = {n: c for n, c in zip(names, r["contrast_L"], strict=True) if c}
    assert m.contest(named).iloc[0]["df"] == got["df"]


def test_normal_ddf_is_a_z_test(fits):
    m = fits["sleep_reml"]
    z = m.contest(np.eye(2), ddf="normal")
    assert np.isinf(z["df"]).all()
    t = m.fe_params_ / m.bse_
    np.testing.assert_allclose(z["p_value"], 2 * st.norm.sf(np.abs(t)), rtol=1e-12)
    ci = m.confint(0.9)  # the default: normal quantiles, lme4's Wald intervals
    np.testing.assert_allclose(
        ci["lower"], m.fe_params_ - st.norm.ppf(0.95) * m.bse_, rtol=1e-12
    )
    text = str(m.summary(ddf="normal")).splitlines()
    at = text.index("Fixed effects:")
    assert text[at + 1].split() == [
        "Estimate",
        "Std.",
        "Error",
        "z",
        "value",
        "Pr(>|z|)",
    ]
    lme4 = m.summary(ddf=None).tables["fixed"]
    assert list(lme4.columns) == ["estimate", "std_error", "t", "ci_lower", "ci_upper"]


def test_contest_refuses_bad_contrasts(fits):
    m = fits["sleep_reml"]
    with pytest.raises(
        ModelSpecificationError, match=r"needs 2 coefficients .*shape \(3,\)"
    ):
        m.contest([1, 0, 0])
    with pytest.raises(
        ModelSpecificationError, match=r"\['days'\], which are not fixed"
    ):
        m.contest({"days": 1})
    with pytest.raises(
        ValueError,
        match="`ddf` must be one of 'satterthwaite', 'kenward-roger', 'normal'",
    ):
        m.contest([0, 1], ddf="kr")


def test_saved_model_gives_the_same_df(fits, tmp_path):
    m = fits["als_reml"]
    m.save(tmp_path / "m.npz")
    back = LinearMixedModel.load(tmp_path / "m.npz")
    np.testing.assert_allclose(
        back.contest(np.eye(7))["df"], m.contest(np.eye(7))["df"], rtol=1e-10
    )


@pytest.mark.parametrize("name", ["sleep_reml", "als_reml"])
def test_joint_f_test_equals_lmertest(fits, name):
    m, r = fits[name], LMERTEST[name]
    got = m.contest(r["joint_L"], joint=True)
    assert list(got.columns) == ["F", "num_df", "den_df", "p_value"]
    ref = r["joint"]
    row = got.iloc[0]
    assert row["F"] == pytest.approx(ref["F"], rel=1e-5)
    assert row["num_df"] == ref["numdf"]
    assert row["den_df"] == pytest.approx(ref["dendf"], rel=1e-5)
    assert row["p_value"] == pytest.approx(ref["p"], rel=1e-4)
    # a one-row contrast: F = t^2 on the t-test's df
    one = m.contest(r["joint_L"][:1], joint=True).iloc[0]
    t = m.contest(r["joint_L"][:1]).iloc[0]
    assert one["F"] == pytest.approx(t["t"] ** 2, rel=1e-12)
    assert one["den_df"] == pytest.approx(t["df"], rel=1e-12)
    assert one["p_value"] == pytest.approx(t["p_value"], rel=1e-9)
    # z: a chi-square test on the rank of L
    z = m.contest(r["joint_L"], joint=True, ddf="normal").iloc[0]
    q = len(r["joint_L"]) if np.ndim(r["joint_L"]) == 2 else 1
    assert z["p_value"] == pytest.approx(st.chi2.sf(z["F"] * q, q), rel=1e-12)
    with pytest.raises(ValueError, match="the contrast is zero"):
        m.contest(np.zeros((1, len(m.fe_params_))), joint=True)


def test_rank_deficient_joint_contrast_tests_its_rank(fits):
    m = fits["als_reml"]
    L = np.array(LMERTEST["als_reml"]["joint_L"], dtype=float)
    twice = np.vstack([L, L[:1] * 2.0])  # a repeated row adds nothing
    a = m.contest(twice, joint=True).iloc[0]
    b = m.contest(L, joint=True).iloc[0]
    assert a["num_df"] == 4
    assert a["F"] == pytest.approx(b["F"], rel=1e-9)


@pytest.mark.parametrize(
    ("name", "small", "big"),
    [
        (
            "lrt_sleep",
            "Reaction ~ 1 + (Days | Subject)",
            "Reaction ~ Days + (Days | Subject)",
        ),
        (
            "lrt_als",
            "frs ~ months + age_at_onset + (months | subject_id)",
            "frs ~ months * onset_site + age_at_onset + (months | subject_id)",
        ),
    ],
)
def test_anova_is_lme4s_likelihood_ratio_test(sleepstudy, name, small, big):
    data = _data("als" if "als" in name else "sleep", sleepstudy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m0 = LinearMixedModel(small).fit(data)
        m1 = LinearMixedModel(big).fit(data)
    a = m1.anova(m0)  # any order: sorted by the number of parameters
    r = LMERTEST[name]
    assert list(a.index) == [small, big]
    np.testing.assert_array_equal(a["npar"], r["npar"])
    for col in ("AIC", "BIC", "logLik", "deviance"):
        np.testing.assert_allclose(a[col], r[col], rtol=1e-7)
    assert a["Chisq"].iloc[1] == pytest.approx(r["Chisq"][1], rel=1e-5)
    assert a["Df"].iloc[1] == r["Df"][1]
    assert a["p_value"].iloc[1] == pytest.approx(r["p"][1], rel=1e-4)
    assert np.isnan(a["Chisq"].iloc[0]) and np.isnan(a["p_value"].iloc[0])
    assert m0.reml and m1.reml  # the fits given are not changed
    ml = m0.anova(m1, refit=False)  # REML criteria, as lme4's refit = FALSE
    assert ml["deviance"].iloc[0] == pytest.approx(-2 * m0.llf_)


def test_anova_refusals(fits, sleepstudy):
    m = fits["sleep_reml"]
    with pytest.raises(ModelSpecificationError, match="takes fitted LinearMixedModels"):
        m.anova("m1")
    small = LinearMixedModel("Reaction ~ Days + (1 | Subject)").fit(
        sleepstudy.iloc[:100]
    )
    with pytest.raises(
        ModelSpecificationError, match=r"different numbers of observations \(180, 100\)"
    ):
        m.anova(small)
    with pytest.raises(
        ModelSpecificationError, match="refit=False needs models of one kind"
    ):
        m.anova(fits["sleep_ml"], refit=False)


@pytest.mark.parametrize(
    "name", ["sleep_reml", "sleep_int", "sleep_uncorr", "als_reml"]
)
def test_kenward_roger_equals_pbkrtest(fits, name):
    """Kenward-Roger (pbkrtest's vcovAdj and Lb_ddf, through lmerTest's
    summary(ddf = "Kenward-Roger")): adjusted standard errors, df, t and p."""
    m, r = fits[name], LMERTEST[name]["kr"]
    fixed = m.summary(ddf="kenward-roger").tables["fixed"]
    np.testing.assert_allclose(fixed["std_error"], r["se"], rtol=1e-6)
    np.testing.assert_allclose(fixed["df"], r["df"], rtol=1e-6)
    np.testing.assert_allclose(fixed["t"], r["t"], rtol=1e-6)
    p, rp = fixed["p_value"].to_numpy(), np.array(r["p"])
    np.testing.assert_allclose(p[rp < 0.01], rp[rp < 0.01], rtol=0, atol=1e-6)
    np.testing.assert_allclose(p[rp >= 0.01], rp[rp >= 0.01], rtol=1e-5)
    # the adjusted covariance is never smaller than the model-based one
    assert (fixed["std_error"] >= m.bse_ * (1 - 1e-12)).all()
    q = st.t.ppf(0.975, r["df"])
    ci = m.confint(ddf="kenward-roger")
    np.testing.assert_allclose(
        ci["upper"], m.fe_params_ + q * np.array(r["se"]), rtol=1e-6
    )
    assert "t-tests use Kenward-Roger's method" in str(m.summary(ddf="kenward-roger"))


@pytest.mark.parametrize("name", ["sleep_reml", "als_reml"])
def test_kenward_roger_joint_f_equals_pbkrtest(fits, name):
    m, r = fits[name], LMERTEST[name]
    got = m.contest(r["joint_L"], joint=True, ddf="kenward-roger").iloc[0]
    ref = r["joint_kr"]
    assert got["F"] == pytest.approx(ref["F"], rel=1e-6)
    assert got["num_df"] == ref["numdf"]
    assert got["den_df"] == pytest.approx(ref["dendf"], rel=1e-6)
    assert got["p_value"] == pytest.approx(ref["p"], rel=1e-5)


def test_kenward_roger_needs_reml(fits):
    with pytest.raises(ModelSpecificationError, match="defined for REML fits"):
        fits["sleep_ml"].summary(ddf="kenward-roger")


def _als2():
    als = pd.read_csv(REFERENCE / "als_sim.csv", dtype={"subject_id": str})
    age = als["age_at_onset"]
    early = pd.Series(np.where(age < 55, "young", "old"), index=als.index)
    # R's ifelse(NA < 55, ...) is NA: the row is dropped, as here
    return als.assign(frs=als.pop("alsfrs_r_total"), early=early.where(age.notna()))


@pytest.mark.parametrize(
    ("key", "formula"),
    [
        ("aov_als", ALS),
        ("aov_als2", "frs ~ months * onset_site * early + (months | subject_id)"),
        ("aov_sleep", "Reaction ~ Days + (Days | Subject)"),
    ],
)
@pytest.mark.parametrize(
    ("ddf", "label"),
    [("satterthwaite", "Satterthwaite"), ("kenward-roger", "Kenward-Roger")],
)
def test_type3_anova_equals_lmertest(sleepstudy, key, formula, ddf, label):
    data = {"aov_als": _data("als", sleepstudy), "aov_als2": _als2()}.get(
        key, sleepstudy
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LinearMixedModel(formula).fit(data)
    a = m.anova(ddf=ddf)
    r = LMERTEST[key][label]
    terms = r["terms"] if isinstance(r["terms"], list) else [r["terms"]]
    assert list(a.index) == terms
    assert list(a.columns) == ["sum_sq", "mean_sq", "num_df", "den_df", "F", "p_value"]
    np.testing.assert_array_equal(a["num_df"], np.atleast_1d(r["numdf"]))
    np.testing.assert_allclose(a["F"], np.atleast_1d(r["F"]), rtol=1e-5)
    np.testing.assert_allclose(a["den_df"], np.atleast_1d(r["dendf"]), rtol=1e-5)
    np.testing.assert_allclose(a["sum_sq"], np.atleast_1d(r["sum_sq"]), rtol=1e-5)
    np.testing.assert_allclose(a["mean_sq"], np.atleast_1d(r["mean_sq"]), rtol=1e-5)
    p, rp = a["p_value"].to_numpy(), np.atleast_1d(r["p"])
    np.testing.assert_allclose(p[rp < 0.01], rp[rp < 0.01], rtol=0, atol=1e-6)
    np.testing.assert_allclose(p[rp >= 0.01], rp[rp >= 0.01], rtol=1e-4)


def test_type3_of_a_single_term_is_its_t_test(fits):
    m = fits["sleep_reml"]
    a = m.anova().loc["Days"]
    t = m.contest([0, 1]).iloc[0]
    assert a["F"] == pytest.approx(t["t"] ** 2, rel=1e-12)
    assert a["den_df"] == pytest.approx(t["df"], rel=1e-12)


def test_type3_refuses_other_codings(sleepstudy):
    df = sleepstudy.assign(half=np.where(sleepstudy["Days"] < 5, "early", "late"))
    m = LinearMixedModel("Reaction ~ C(half, Sum) + Days + (1 | Subject)").fit(df)
    with pytest.raises(ModelSpecificationError, match="treatment-coded factors"):
        m.anova()


def test_flat_criterion_warns_as_lme4(sleepstudy):
    """Issue 22, item 5: a random-effects column that repeats another leaves the
    criterion flat along a ridge of theta; lme4 says 'nearly unidentifiable'."""
    from alsprog.errors import ModelSpecificationWarning

    df = sleepstudy.assign(two=2.0)
    with pytest.warns(ModelSpecificationWarning, match="nearly flat along theta") as w:
        LinearMixedModel("Reaction ~ Days + (1 + two | Subject)").fit(df)
    assert "not identifiable" in str(w[0].message)
    # an identifiable model fits without it
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelSpecificationWarning)
        LinearMixedModel("Reaction ~ Days + (Days | Subject)").fit(sleepstudy)
