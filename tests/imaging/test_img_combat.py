"""ComBat: agreement with neuroCombat 0.2.12, fit/apply, the longitudinal variant
against statsmodels' REML, and removing simulated site effects."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from alsprog.errors import DataValidationError, ModelSpecificationError, NotFittedError
from alsprog.imaging import ComBat, combat
from alsprog.imaging._combat import random_intercept_reml
from alsprog.simulate import simulate_cohort

FEATURES = ["fa_cst_left", "fa_cst_right", "fa_cc_motor", "md_cst_left",
            "md_cst_right", "thickness_precentral_left",
            "thickness_precentral_right", "thickness_cuneus_left"]  # fmt: skip


@pytest.fixture(scope="module")
def cohort():
    # ~1,400 scans at 4 sites: site means are estimated to about 0.05 SD
    return simulate_cohort(400, 200, months=12, n_sites=4, seed=5)


@pytest.fixture(scope="module")
def table(cohort):
    """Imaging rows with site, group, sex and age (rounded to 1/8 year so that
    neuroCombat's float32 cast of continuous covariates is exact)."""
    subj = cohort.subjects[["subject_id", "site", "group", "sex", "age_at_baseline"]]
    df = cohort.imaging.merge(subj, on="subject_id")
    df["age"] = (df["age_at_baseline"] * 8).round() / 8
    first = df.groupby("subject_id")["acquisition_date"].transform("min")
    df["years"] = (df["acquisition_date"] - first).dt.days / 365.25
    df["als_years"] = df["years"] * (df["group"] == "als")
    return df


def _neurocombat(df, features, **kw):
    from neuroCombat import neuroCombat

    covars = df[["site", "group", "sex", "age"]].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = neuroCombat(
            dat=df[features].to_numpy(np.float64).T, covars=covars, batch_col="site",
            categorical_cols=["group", "sex"], continuous_cols=["age"], **kw,
        )  # fmt: skip
    return out


@pytest.mark.parametrize(
    "kw",
    [{}, {"mean_only": True}, {"eb": False}, {"parametric": False},
     {"parametric": False, "mean_only": True}],
    ids=["parametric", "mean_only", "no_eb", "non_parametric", "np_mean_only"],
)  # fmt: skip
def test_matches_neurocombat(table, kw, capsys):
    pytest.importorskip("neuroCombat")
    ref = _neurocombat(table, FEATURES, **kw)
    ours = combat(table, batch="site", covariates=["group", "sex", "age"],
                  columns=FEATURES, **kw)  # fmt: skip
    assert_allclose(ours[FEATURES].to_numpy(), ref["data"].T, rtol=0, atol=1e-6)
    # and the estimates behind it
    cb = ComBat(batch="site", covariates=["group", "sex", "age"], features=FEATURES,
                **kw).fit(table)  # fmt: skip
    assert_allclose(cb.gamma_star_.to_numpy(), np.asarray(ref["estimates"]["gamma.star"]),
                    atol=1e-8)  # fmt: skip
    assert_allclose(cb.var_pooled_.to_numpy(), ref["estimates"]["var.pooled"][:, 0],
                    rtol=1e-10)  # fmt: skip


def test_matches_neurocombat_ref_batch(table, monkeypatch):
    pytest.importorskip("neuroCombat")
    monkeypatch.setattr(np, "int", int, raising=False)  # neuroCombat 0.2.12 uses np.int
    ref = _neurocombat(table, FEATURES, ref_batch="S2")
    ours = combat(table, covariates=["group", "sex", "age"], columns=FEATURES,
                  ref_batch="S2")  # fmt: skip
    assert_allclose(ours[FEATURES].to_numpy(), ref["data"].T, rtol=0, atol=1e-6)
    s2 = table["site"] == "S2"
    pd.testing.assert_frame_equal(ours.loc[s2, FEATURES], table.loc[s2, FEATURES])


def test_apply_to_new_data(table):
    """Fit on 2/3 of subjects, apply to the rest: the same arithmetic as on the
    training rows; without covariates it equals neuroCombatFromTraining."""
    pytest.importorskip("neuroCombat")
    subjects = table["subject_id"].unique()
    train = table[table["subject_id"].isin(subjects[::3]) == False]  # noqa: E712
    test = table[table["subject_id"].isin(subjects[::3])]
    cb = ComBat(covariates=["group", "sex", "age"], features=FEATURES).fit(train)
    pd.testing.assert_frame_equal(cb.transform(train), combat(
        train, covariates=["group", "sex", "age"], columns=FEATURES))  # fmt: skip
    new = cb.transform(test)
    # closed form from the fitted parameters, row by row
    X = np.column_stack([(test["group"] == "control"), (test["sex"] == "male"),
                         test["age"]]).astype(float)  # fmt: skip
    assert cb.design_columns_ == ["group[T.control]", "sex[T.male]", "age"]
    mean = cb.grand_mean_.to_numpy() + X @ cb.beta_.to_numpy()
    sd = np.sqrt(cb.var_pooled_.to_numpy())
    g = cb.gamma_star_.loc[test["site"]].to_numpy()
    d = cb.delta_star_.loc[test["site"]].to_numpy()
    expected = ((test[FEATURES].to_numpy() - mean) / sd - g) / np.sqrt(d) * sd + mean
    assert_allclose(new[FEATURES].to_numpy(), expected, rtol=1e-12)
    # no covariates: neuroCombatFromTraining's formula on neuroCombat's own estimates
    # (the function itself fails under NumPy 2: int() of a 1-element array)
    from neuroCombat import neuroCombat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = neuroCombat(
            dat=train[FEATURES].to_numpy(float).T,
            covars=train[["site"]].reset_index(drop=True),
            batch_col="site",
        )
    est = fit["estimates"]
    wh = [list(est["batches"]).index(b) for b in test["site"]]
    stand = est["stand.mean"][:, :1]
    var = est["var.pooled"]
    z = (test[FEATURES].to_numpy(float).T - stand) / np.sqrt(var)
    z = (z - est["gamma.star"][wh].T) / np.sqrt(est["delta.star"][wh].T)
    ref = z * np.sqrt(var) + stand
    ours = ComBat(features=FEATURES).fit(train).transform(test)
    assert_allclose(ours[FEATURES].to_numpy(), ref.T, atol=1e-6)


def test_unseen_site_and_level(table):
    cb = ComBat(covariates=["group"], features=FEATURES).fit(
        table[table["site"] != "S4"]
    )
    with pytest.raises(
        ModelSpecificationError, match=r"site values \['S4'\] were not seen"
    ):
        cb.transform(table)
    cb = ComBat(covariates=["sex"], features=FEATURES).fit(table[table["sex"] == "male"]
                                                           .assign(sex="male"))  # fmt: skip
    with pytest.raises(ModelSpecificationError, match=r"'sex' has levels \['female'\]"):
        cb.transform(table)


def test_bad_inputs(table):
    with pytest.raises(NotFittedError):
        ComBat().transform(table)
    with pytest.raises(ModelSpecificationError, match=r"columns \['scanner'\]"):
        ComBat(batch="scanner").fit(table)
    with pytest.raises(ModelSpecificationError, match="at least 2 sites"):
        ComBat().fit(table.assign(site="S1"))
    one = pd.concat([table, table.iloc[:1].assign(site="S9")], ignore_index=True)
    with pytest.raises(
        ModelSpecificationError, match=r"sites \['S9'\] have fewer than 2"
    ):
        ComBat().fit(one)
    with pytest.raises(ModelSpecificationError, match=r"ref_batch 'S7' is not a level"):
        ComBat(ref_batch="S7").fit(table)
    with pytest.raises(ModelSpecificationError, match="rank deficient"):
        ComBat(covariates=["site2"]).fit(table.assign(site2=table["site"]))
    bad = table.copy()
    bad.loc[bad.index[3], "fa_cc_motor"] = np.nan
    with pytest.raises(
        DataValidationError, match=r"row 4, subject \w+, column fa_cc_motor"
    ):
        ComBat().fit(bad)
    with pytest.raises(ModelSpecificationError, match="no feature columns"):
        ComBat().fit(table[["site", "age"]])
    with pytest.raises(ModelSpecificationError, match="not available with `subject`"):
        ComBat(subject="subject_id", ref_batch="S1").fit(table)


def test_default_features_skip_size_statistics(table):
    df = table.assign(fa_cst_left_count=100.0, fa_cst_left_median=table["fa_cst_left"])
    cb = ComBat().fit(df)
    assert "fa_cst_left_count" not in cb.features_
    assert cb.features_ == [*FEATURES, "fa_cst_left_median"]


def test_sklearn_pipeline_contract(table):
    from sklearn.base import clone

    cb = ComBat(covariates=["age"], eb=False)
    assert clone(cb).get_params() == cb.get_params()
    assert "covariates=['age']" in repr(ComBat(covariates=["age"]))


# --------------------------------------------------------------------- simulation


def _site_spread(df, features, truth):
    """SD across sites of the mean (value - truth), per feature, in truth-SD units."""
    err = df[features].to_numpy() - truth[features].to_numpy()
    means = pd.DataFrame(err, columns=features).groupby(df["site"].to_numpy()).mean()
    return (means.std() / truth[features].std()).to_numpy()


def _group_effect(df, features):
    m = df.groupby("group")[features].mean()
    return (m.loc["als"] - m.loc["control"]).to_numpy()


@pytest.mark.parametrize("subject", [None, "subject_id"])
def test_removes_site_effect_keeps_disease_effect(cohort, table, subject):
    truth = table[["subject_id", "session"]].merge(
        cohort.imaging_truth, on=["subject_id", "session"]
    )
    harmonised = combat(table, covariates=["group", "age"], columns=FEATURES,
                        subject=subject)  # fmt: skip
    before = _site_spread(table, FEATURES, truth)
    after = _site_spread(harmonised, FEATURES, truth)
    # simulated offsets are 0.5 truth-SD on average; ComBat leaves a fraction of that
    assert np.median(before) > 0.25
    assert np.all(after < 0.5 * before)
    assert np.median(after) < 0.1  # the floor: sampling error of the site means
    true_effect = _group_effect(truth.assign(group=table["group"].to_numpy()), FEATURES)
    raw_effect = _group_effect(table, FEATURES)
    harm_effect = _group_effect(harmonised, FEATURES)
    sd = truth[FEATURES].std().to_numpy()
    # the ALS - control difference survives, closer to the truth than before
    assert np.all(np.abs(harm_effect - true_effect) / sd < 0.15)
    assert (
        np.abs(harm_effect - true_effect).sum() < np.abs(raw_effect - true_effect).sum()
    )


def test_longitudinal_keeps_within_subject_change(cohort, table):
    """Longitudinal ComBat with time and diagnosis × time in the mean model [Beer
    2020]: each ALS patient's simulated change is kept."""
    truth = table[["subject_id", "session"]].merge(
        cohort.imaging_truth, on=["subject_id", "session"]
    )
    harm = combat(table, covariates=["group", "age", "years", "als_years"],
                  columns=FEATURES, subject="subject_id")  # fmt: skip
    als = (table["group"] == "als").to_numpy()

    def change(df):
        d = df[FEATURES].assign(subject_id=table["subject_id"].to_numpy(),
                                session=table["session"].to_numpy())[als]  # fmt: skip
        g = d.sort_values("session").groupby("subject_id")[FEATURES]
        return (g.last() - g.first()).to_numpy()

    true_change, raw_change, harm_change = change(truth), change(table), change(harm)
    keep = true_change[:, 0] != 0  # patients with at least two scans
    assert keep.sum() > 200
    for k, name in enumerate(FEATURES):
        r_raw = np.corrcoef(raw_change[keep, k], true_change[keep, k])[0, 1]
        r_harm = np.corrcoef(harm_change[keep, k], true_change[keep, k])[0, 1]
        assert r_harm > 0.98 * r_raw, name  # change is only rescaled per site
        # mean change of the patients within 10% of the simulated one
        assert harm_change[keep, k].mean() == pytest.approx(
            true_change[keep, k].mean(), rel=0.1
        ), name


# --------------------------------------------------------------------- REML


def test_random_intercept_reml_matches_statsmodels():
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(12)
    n_sub, per = 60, 4
    g = np.repeat(np.arange(n_sub), per)
    x = rng.normal(size=n_sub * per)
    site = rng.integers(0, 3, n_sub)[g]
    y = (
        0.5
        + 0.3 * x
        + 0.2 * site
        + rng.normal(0, 0.8, n_sub)[g]
        + rng.normal(0, 0.5, n_sub * per)
    )
    df = pd.DataFrame({"y": y, "x": x, "site": site.astype(str), "g": g})
    X = np.column_stack([site == 0, site == 1, site == 2, x]).astype(float)
    beta, s2, lam, blup = random_intercept_reml(y, X, g)
    m = smf.mixedlm("y ~ 0 + C(site) + x", df, groups="g").fit(reml=True)
    assert_allclose(beta, m.fe_params.to_numpy(), rtol=1e-5)
    assert s2 == pytest.approx(m.scale, rel=1e-5)
    assert lam * s2 == pytest.approx(float(m.cov_re.iloc[0, 0]), rel=1e-4)
    sm_blup = np.array([m.random_effects[k].iloc[0] for k in range(n_sub)])
    assert_allclose(blup, sm_blup, atol=1e-4)


def test_random_intercept_reml_boundary():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(40), 3)
    y = rng.normal(size=120)  # no subject effect: variance ratio at or near 0
    beta, s2, lam, blup = random_intercept_reml(y, np.ones((120, 1)), g)
    assert lam < 0.1
    assert beta[0] == pytest.approx(y.mean(), abs=0.05)
