"""LinearMixedModel with several grouping factors against lme4, lmerTest and pbkrtest.

References: ``tests/reference/lme4_multi_reference.R`` (lme4's Pastes, Penicillin and
cake data, and ``site_sim.csv``, a simulated multi-centre ALS cohort written by
``make_site_sim.py``): crossed ``(1 | plate) + (1 | sample)``, nested ``(1 |
batch/cask)``, interaction ``(1 | recipe:replicate)`` and ``(1 | site) + (months |
subject_id)`` fits by REML and ML, with lmerTest's Satterthwaite tests and type III
ANOVA and pbkrtest's Kenward-Roger tests.  The issue's bar is 1e-4 relative; the fits
agree to about 1e-6.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alsprog.errors import (
    ConvergenceWarning,
    ModelSpecificationError,
    ModelSpecificationWarning,
)
from alsprog.models import LinearMixedModel
from alsprog.models.lmm import _multi
from alsprog.models.lmm._multi import fit_multi
from alsprog.models.lmm._multi_design import build_multi_design

REF = Path(__file__).resolve().parents[1] / "reference"
REFERENCE = json.loads((REF / "lme4_multi_reference.json").read_text())
CASES = {k: v for k, v in REFERENCE.items() if "formula" in v}
DATA = {
    "pastes": "Pastes",
    "penicillin": "Penicillin",
    "cake": "cake",
    "site": "site_sim",
}
SITE_FORMULA = "alsfrs_r_total ~ months * arm + (1 | site) + (months | subject_id)"


def _data(case: str) -> pd.DataFrame:
    df = pd.read_csv(REF / f"{DATA[case.split('_')[0]]}.csv")
    if case.startswith("cake"):
        df["replicate"] = df["replicate"].astype(str)
    return df


_FITS: dict[str, LinearMixedModel] = {}


def _fit(case: str) -> LinearMixedModel:
    if case not in _FITS:
        r = CASES[case]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _FITS[case] = LinearMixedModel(r["formula"], reml=r["REML"]).fit(
                _data(case)
            )
    return _FITS[case]


#: Cases the quick tier runs; the others are marked slow (CI runs them all).
QUICK = {"pastes_reml", "penicillin_ml", "cake_interaction", "site_reml"}


def _cases(keep=lambda c: True):
    return [
        pytest.param(c, marks=() if c in QUICK else pytest.mark.slow)
        for c in sorted(CASES)
        if keep(c)
    ]


def _r_name(name: str) -> str:
    return name.replace("Intercept", "(Intercept)")


@pytest.mark.parametrize("case", _cases())
def test_estimates_equal_lme4(case):
    r = CASES[case]
    m = _fit(case)
    assert m.converged_
    assert m.singular_ == r["singular"]
    assert [_r_name(n) for n in m.theta_.index] == list(r["theta"])
    np.testing.assert_allclose(
        m.theta_.to_numpy(), list(r["theta"].values()), rtol=1e-4, atol=1e-5
    )
    fe = np.array(list(r["fixef"].values()))
    se = np.array(list(r["se"].values()))
    # a fixed effect on the scale of its standard error (near-zero effects)
    assert (
        np.max(np.abs(m.fe_params_.to_numpy() - fe) / np.maximum(np.abs(fe), se)) < 1e-4
    )
    np.testing.assert_allclose(m.bse_.to_numpy(), se, rtol=1e-4)
    assert np.sqrt(m.scale_) == pytest.approx(r["sigma"], rel=1e-4)
    assert -2 * m.llf_ == pytest.approx(r["criterion"], rel=1e-8)
    assert m.llf_ == pytest.approx(r["logLik"], rel=1e-8)
    assert m.n_obs_ == r["nobs"]
    assert {k: len(v.index) for k, v in m.random_effects_.items()} == r["ngrps"]


@pytest.mark.parametrize("case", _cases())
def test_variance_components_and_conditional_modes_equal_lme4(case):
    r = CASES[case]
    m = _fit(case)
    for row in r["varcorr"]:
        grp, v1, v2 = row["grp"], row.get("var1"), row.get("var2")
        if grp == "Residual":
            assert m.scale_ == pytest.approx(row["vcov"], rel=1e-4)
            continue
        grp = grp.split(".")[0] if grp not in m.cov_re_ else grp  # lme4: 'g.1'
        cov = m.cov_re_[grp]
        names = [_r_name(n) for n in cov.index]
        i = names.index(v1)
        j = i if v2 is None else names.index(v2)
        assert cov.iloc[i, j] == pytest.approx(row["vcov"], rel=1e-4, abs=1e-8)
    for grp, ref in r["ranef"].items():
        b = m.random_effects_[grp]
        assert [_r_name(n) for n in b.columns] == list(np.atleast_1d(ref["names"]))
        got = b.loc[ref["levels"]]
        vals = np.asarray(ref["values"], dtype=float).reshape(len(ref["levels"]), -1)
        scale = np.abs(vals).max()
        np.testing.assert_allclose(got.to_numpy(), vals, atol=1e-5 * scale)
    # lme4's fitted values: fixed part plus every factor's conditional mode
    head = _data(case).head(12)
    np.testing.assert_allclose(m.predict(head), r["fitted_head"], rtol=1e-6)


@pytest.mark.parametrize("case", _cases(lambda c: "satterthwaite" in CASES[c]))
def test_satterthwaite_and_kenward_roger_equal_lmertest(case):
    r = CASES[case]
    m = _fit(case)
    L = np.eye(len(m.fe_params_))
    s = m.contest(L, ddf="satterthwaite")
    ref = r["satterthwaite"]
    np.testing.assert_allclose(s["df"], np.atleast_1d(ref["df"]), rtol=1e-4)
    np.testing.assert_allclose(s["t"], np.atleast_1d(ref["t"]), rtol=1e-4)
    p = np.atleast_1d(ref["p"])
    assert np.all(np.abs(s["p_value"].to_numpy() - p) <= np.maximum(1e-6, 1e-4 * p))
    if "kenward_roger" in r:
        k = m.contest(L, ddf="kenward-roger")
        ref = r["kenward_roger"]
        np.testing.assert_allclose(k["df"], np.atleast_1d(ref["df"]), rtol=1e-4)
        np.testing.assert_allclose(k["std_error"], np.atleast_1d(ref["se"]), rtol=1e-4)
        p = np.atleast_1d(ref["p"])
        assert np.all(np.abs(k["p_value"].to_numpy() - p) <= np.maximum(1e-6, 1e-4 * p))
    if "anova" in r:
        a = m.anova()
        ref = r["anova"]
        assert list(a.index) == ref["terms"]
        np.testing.assert_allclose(a["F"], ref["F"], rtol=1e-4)
        np.testing.assert_allclose(a["den_df"], ref["den_df"], rtol=1e-4)
        np.testing.assert_allclose(a["num_df"], ref["num_df"])


def test_one_factor_through_the_general_engine_equals_the_fast_path():
    # the block/Schur engine with one factor against the exact-gradient one-factor fit
    df = pd.read_csv(REF / "sleepstudy.csv")
    f = "Reaction ~ Days + (Days | Subject)"
    for reml in (True, False):
        est = fit_multi(build_multi_design(f, df), reml=reml)
        m = LinearMixedModel(f, reml=reml).fit(df)
        np.testing.assert_allclose(est.theta, m.theta_.to_numpy(), atol=1e-6)
        np.testing.assert_allclose(est.beta, m.fe_params_.to_numpy(), rtol=1e-9)
        assert est.deviance == pytest.approx(-2 * m.llf_, abs=1e-8)
        np.testing.assert_allclose(est.cov_beta, m.cov_params().to_numpy(), rtol=1e-5)
        b = m.random_effects_.to_numpy()
        np.testing.assert_allclose(est.b[0], b, atol=1e-5 * np.abs(b).max())


def test_nested_grouping_is_the_sum_of_its_factors():
    df = _data("site_reml")
    a = LinearMixedModel("alsfrs_r_total ~ months + (1 | site/subject_id)").fit(df)
    b = LinearMixedModel(
        "alsfrs_r_total ~ months + (1 | site) + (1 | subject_id:site)"
    ).fit(df)
    assert list(a.random_effects_) == ["subject_id:site", "site"]
    np.testing.assert_allclose(a.theta_.to_numpy(), b.theta_.to_numpy(), rtol=1e-9)
    assert a.llf_ == pytest.approx(b.llf_, abs=1e-9)
    assert a.random_effects_["subject_id:site"].index[0] == "P000:S00"


def test_prediction_of_unseen_levels_drops_only_their_effect():
    m = _fit("site_reml")
    df = _data("site_reml")
    rows = df.head(3).copy()
    rows["site"] = ["S99", "S99", "S99"]  # a new site, a known subject
    beta = m.fe_params_
    b_subj = m.random_effects_["subject_id"].loc[rows["subject_id"]].to_numpy()
    arm = (rows["arm"] == "placebo").to_numpy(float)
    t = rows["months"].to_numpy()
    fixed = (
        beta.iloc[0] + beta.iloc[1] * t + beta.iloc[2] * arm + beta.iloc[3] * t * arm
    )
    expect = fixed + b_subj[:, 0] + b_subj[:, 1] * t
    np.testing.assert_allclose(m.predict(rows).to_numpy(), expect, rtol=1e-12)
    pop = m.predict(rows.drop(columns=["site", "subject_id"]), include_random=False)
    np.testing.assert_allclose(pop.to_numpy(), fixed, rtol=1e-12)
    with pytest.raises(
        ModelSpecificationError, match="lacks the grouping column.*'site'"
    ):
        m.predict(rows.drop(columns=["site"]))


def test_summary_lists_every_factor_as_lme4():
    m = _fit("site_reml")
    text = str(m.summary())
    assert "Number of obs: 1070, groups:  subject_id, 228; site, 16" in text
    rnd = m.summary().tables["random"]
    assert list(rnd.index.get_level_values("group")) == [
        "subject_id",
        "",
        "site",
        "Residual",
    ]
    r = {
        (g["grp"], g.get("var1"), g.get("var2")): g
        for g in CASES["site_reml"]["varcorr"]
    }
    assert rnd["std_dev"].iloc[2] == pytest.approx(
        r[("site", "(Intercept)", None)]["sdcor"], rel=1e-4
    )
    corr = r[("subject_id", "(Intercept)", "months")]["sdcor"]
    assert rnd.iloc[1]["corr_Intercept"] == pytest.approx(corr, rel=1e-4)
    assert m.aic == pytest.approx(-2 * m.llf_ + 2 * (4 + 4 + 1))


def test_forecasting_new_patients_needs_one_factor():
    m = _fit("site_reml")
    with pytest.raises(
        ModelSpecificationError, match=r"Forecasting.*several \(subject_id, site\)"
    ):
        m.check_forecast_time("months")


def test_subject_trajectories_equal_the_dense_conditional_normal():
    # brute force: the joint conditional normal of (beta, u) given theta and sigma,
    # sigma^2 M^-1 with M the dense penalised least-squares matrix
    from scipy import linalg

    m = _fit("site_reml")
    design = build_multi_design(SITE_FORMULA, _data("site_reml"))
    blocks, lams = [], []
    for f in design.factors:
        Zf = np.zeros((len(design.y), f.q * f.n_levels))
        for j in range(f.q):
            Zf[np.arange(len(design.y)), f.codes * f.q + j] = f.Z[:, j]
        blocks.append(Zf)
        lams.append(np.kron(np.eye(f.n_levels), f.factor(m.theta_.to_numpy())))
    Z, Lam = np.hstack(blocks), linalg.block_diag(*lams)
    X = design.X
    ZL = Z @ Lam
    M = np.block([[ZL.T @ ZL + np.eye(ZL.shape[1]), ZL.T @ X], [X.T @ ZL, X.T @ X]])
    tr = m.subject_trajectories([0.0, 7.5], subjects=["P003", "P150"], level=0.9)
    assert list(tr.columns) == ["subject_id", "months", "mean", "se", "lower", "upper"]
    df = _data("site_reml")
    site = {s: df.loc[df["subject_id"] == s, "site"].iloc[0] for s in ["P003", "P150"]}
    beta = m.fe_params_.to_numpy()
    for _, row in tr.iterrows():
        s, t = row["subject_id"], row["months"]
        placebo = float(df.loc[df["subject_id"] == s, "arm"].iloc[0] == "placebo")
        x = np.array([1.0, t, placebo, t * placebo])
        z = np.zeros(Z.shape[1])
        g = list(design.factors[0].levels).index(s)
        z[2 * g : 2 * g + 2] = [1.0, t]
        h = list(design.factors[1].levels).index(site[s])
        z[2 * design.factors[0].n_levels + h] = 1.0
        b = np.concatenate(
            [m.random_effects_[f.name].to_numpy().ravel() for f in design.factors]
        )
        assert row["mean"] == pytest.approx(x @ beta + z @ b, rel=1e-8)
        v = np.concatenate([Lam.T @ z, x])
        var = m.scale_ * v @ np.linalg.solve(M, v)
        assert row["se"] == pytest.approx(np.sqrt(var), rel=1e-6)
        assert row["upper"] - row["mean"] == pytest.approx(
            1.6448536 * row["se"], rel=1e-6
        )
    pred = m.subject_trajectories([3.0], subjects=["P003"], interval="prediction")
    conf = m.subject_trajectories([3.0], subjects=["P003"])
    assert pred["se"].iloc[0] ** 2 == pytest.approx(conf["se"].iloc[0] ** 2 + m.scale_)


def test_too_many_dense_random_effects_are_refused(monkeypatch):
    monkeypatch.setattr(_multi, "MULTI_DENSE_MAX", 10)
    with pytest.raises(
        ModelSpecificationError, match=r"carry 16 random effects.*at most 10"
    ):
        LinearMixedModel(SITE_FORMULA).fit(_data("site_reml"))


def test_grouping_factor_also_fixed_warns():
    df = _data("site_reml")
    with pytest.warns(ModelSpecificationWarning, match="'site' is both a fixed effect"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            LinearMixedModel(
                "alsfrs_r_total ~ months + site + (1 | site) + (1 | subject_id)"
            ).fit(df)
    # a nested factor beside its fixed parent is the usual multi-centre model
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelSpecificationWarning)
        LinearMixedModel("alsfrs_r_total ~ months + site + (1 | subject_id:site)").fit(
            df
        )


def test_a_factor_with_one_level_is_refused():
    df = _data("site_reml")
    df["site"] = "S00"
    with pytest.raises(ModelSpecificationError, match="'site' has 1 level"):
        LinearMixedModel(SITE_FORMULA).fit(df)


def test_singular_fit_warns_with_the_factor():
    df = _data("site_reml")
    # two "sites" of alternating pairs of subjects (both arms in each): no site effect
    df["site"] = np.where(df["subject_id"].str[1:].astype(int) // 2 % 2, "S_a", "S_b")
    with pytest.warns(ConvergenceWarning, match=r"site\.Intercept"):
        m = LinearMixedModel(SITE_FORMULA).fit(df)
    assert m.singular_
    assert m.cov_re_["site"].iloc[0, 0] < 1e-6


def test_trial_design_from_a_site_and_subject_fit():
    from alsprog.design import TrialDesign

    m = _fit("site_reml")
    d = TrialDesign.from_model(m, [0, 3, 6, 9, 12], slowing=0.3)
    subj, site = m.cov_re_["subject_id"], m.cov_re_["site"]
    # a site intercept adds to every patient's intercept variance
    assert d.sig2_int == pytest.approx(subj.iloc[0, 0] + site.iloc[0, 0], rel=1e-12)
    assert d.sig2_slope == pytest.approx(subj.loc["months", "months"], rel=1e-12)
    assert d.cov_int_slope == pytest.approx(subj.iloc[0, 1], rel=1e-12)
    assert d.sig2_e == pytest.approx(m.scale_, rel=1e-12)
    slopes = _fit("site_uncorrelated")
    assert slopes.cov_re_["subject_id"].shape == (2, 2)
    nested = LinearMixedModel(
        "alsfrs_r_total ~ months + (months | site) + (months | subject_id)"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nested.fit(_data("site_reml"))
    with pytest.raises(ModelSpecificationError, match="'site' has random effects"):
        TrialDesign.from_model(nested, [0, 6, 12], slowing=0.3)


def test_save_and_load_give_the_same_model(tmp_path):
    m = _fit("site_reml")
    path = tmp_path / "m.npz"
    m.save(path)
    back = LinearMixedModel.load(path)
    pd.testing.assert_series_equal(back.fe_params_, m.fe_params_, rtol=1e-10)
    pd.testing.assert_series_equal(back.theta_, m.theta_)
    for g in m.random_effects_:
        pd.testing.assert_frame_equal(
            back.random_effects_[g], m.random_effects_[g], rtol=1e-8
        )
        pd.testing.assert_frame_equal(back.cov_re_[g], m.cov_re_[g], rtol=1e-10)
    assert back.llf_ == pytest.approx(m.llf_, rel=1e-12)
    assert (back.singular_, back.converged_, back.n_obs_) == (False, True, 1070)
    assert str(back.summary(ddf=None)) == str(m.summary(ddf=None))
    rows = _data("site_reml").head(7)
    np.testing.assert_allclose(back.predict(rows), m.predict(rows), rtol=1e-10)


def test_a_tampered_saved_estimate_is_refused(tmp_path):
    from alsprog.errors import SavedModelError
    from alsprog.models._npz import read_saved, write_saved

    m = _fit("site_reml")
    path = tmp_path / "m.npz"
    m.save(path)
    header, saved = read_saved(path)
    with saved:
        arrays = {k: saved.array(k) for k in saved.data_keys}
    arrays["fe_params"] = arrays["fe_params"] + np.array([0, 0, 0, 0.01])
    bad = tmp_path / "bad.npz"
    write_saved(bad, header, arrays)
    with pytest.raises(SavedModelError, match=r"bad.npz: field 'fe_params' differs"):
        LinearMixedModel.load(bad)


@pytest.mark.parametrize(
    ("formula", "subject"),
    [
        ("y ~ t + (1 | site) + (t | patient)", "patient"),
        ("y ~ t + (1 | site/patient)", "patient"),
        ("y ~ t + (1 | site) + (1 | subject_id)", "subject_id"),
        ("y ~ t + (1 | patient:site) + (1 | site)", "patient"),
    ],
)
def test_required_columns_name_the_patients_column(formula, subject):
    assert LinearMixedModel(formula, time="t").required_columns().subject == subject


def test_fitted_columns_name_the_subject_factor():
    m = _fit("site_nested")
    assert m.columns_.subject == "subject_id"
    assert m.n_subjects_ == 228


@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward-roger"])
def test_lsmeans_and_contrast_equal_emmeans(ddf):
    ref = REFERENCE[f"site_lsmeans_{ddf.replace('-', '_')}"]
    m = _fit("site_reml")
    ls = m.lsmeans("arm", at={"months": 12}, ddf=ddf)
    assert list(ls["arm"]) == ref["arm"]
    np.testing.assert_allclose(ls["estimate"], ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(ls["std_error"], ref["se"], rtol=1e-4)
    np.testing.assert_allclose(ls["df"], ref["df"], rtol=1e-4)
    c = m.contrast("arm", at={"months": 12}, ddf=ddf).iloc[0]
    assert c["contrast"] == ref["contrast"]
    assert c["estimate"] == pytest.approx(ref["contrast_estimate"], rel=1e-6)
    assert c["std_error"] == pytest.approx(ref["contrast_se"], rel=1e-4)
    assert c["df"] == pytest.approx(ref["contrast_df"], rel=1e-4)
    assert c["t"] == pytest.approx(ref["contrast_t"], rel=1e-4)
    assert c["p_value"] == pytest.approx(ref["contrast_p"], rel=1e-4)


def test_a_site_confounded_with_a_fixed_effect_is_flagged_unidentifiable():
    # sites made of one arm each: the site intercepts repeat the arm effect
    df = _data("site_reml")
    df["site"] = np.where(df["arm"] == "placebo", "S_p", "S_a")
    with pytest.warns(ModelSpecificationWarning, match=r"nearly flat.*site\.Intercept"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            LinearMixedModel(SITE_FORMULA).fit(df)
