"""Grouped CV, leave-site-out, naive split, guards and bad input of the classifier."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from bio_testdata import confounded_table, noise_table
from scipy import stats

from alsprog.biomarkers import (
    ConfoundingWarning,
    ImagingClassifier,
    LeakageWarning,
    evaluate_classifier,
    learning_curve,
)
from alsprog.errors import AlsprogError, DataValidationError, ModelSpecificationError
from alsprog.imaging import combat


def true_session_auc(p) -> float:
    """AUC of the Bayes-optimal (LDA) rule from the simulator's parameters.

    Standardised units per feature: ALS shift d; left/right of one measure correlate
    rho * (1 - scan_sd**2 / sd**2) (shared random effect, independent scan noise);
    measures independent.  Delta**2 = sum over measures of d' Sigma^-1 d and
    AUC = Phi(Delta / sqrt(2)) (equal covariances, Gaussian).
    """
    rho = p.imaging_lr_correlation
    delta2 = 0.0
    for measure, metric, bilateral in (
        ("fa_cst", "fa", True),
        ("fa_cc_motor", "fa", False),
        ("md_cst", "md", True),
        ("thickness_precentral", "thickness", True),
    ):
        d = getattr(p, f"{measure}_als_d")
        sd = getattr(p, f"{measure}_hc_sd")
        scan = getattr(p, f"{metric}_scan_sd")
        if bilateral:
            r = rho * (1 - scan**2 / sd**2)
            delta2 += 2 * d**2 / (1 + r)
        else:
            delta2 += d**2
    return float(stats.norm.cdf(np.sqrt(delta2) / np.sqrt(2)))


def test_grouped_auc_matches_simulator_truth(clean_cohort):
    cohort, df = clean_cohort
    truth = true_session_auc(cohort.params)  # about 0.926 with the defaults
    clf = ImagingClassifier(covariates=())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeakageWarning)  # no site effects simulated
        res = evaluate_classifier(
            df, clf=clf, n_permutations=9, n_bootstrap=300, seed=1
        )
    auc = res.summary.loc["roc_auc"]
    assert auc["ci_lower"] <= truth <= auc["ci_upper"], (truth, auc.to_dict())
    assert len(res.folds) == 5
    assert res.permutation_pvalue == pytest.approx(0.1)  # (1 + 0) / (1 + 9)
    # issue 18: the p-value, its permutation count and the positive class travel
    # with the table
    assert res.summary.columns.tolist() == [
        "estimate", "ci_lower", "ci_upper", "p_value", "n_permutations",
        "positive_class",
    ]  # fmt: skip
    assert res.summary["p_value"].iloc[0] == pytest.approx(0.1)
    assert res.summary["p_value"].iloc[1:].isna().all()
    assert (res.summary["n_permutations"] == 9).all()
    assert (res.summary["positive_class"] == "als").all()


def test_noise_grouped_is_chance_but_naive_split_is_inflated():
    df = noise_table(seed=3)
    from sklearn.ensemble import RandomForestClassifier

    clf = ImagingClassifier(
        RandomForestClassifier(n_estimators=60), covariates=(), random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeakageWarning)  # no site effects in noise
        grouped = evaluate_classifier(
            df, clf=clf, n_permutations=0, n_bootstrap=200, seed=0
        )
    g = grouped.summary.loc["roc_auc"]
    assert g["ci_lower"] <= 0.5 <= g["ci_upper"]
    with pytest.warns(LeakageWarning, match="both the training and the test set"):
        naive = evaluate_classifier(
            df, clf=clf, cv="session", n_permutations=0, n_bootstrap=200, seed=0
        )
    n = naive.summary.loc["roc_auc"]
    assert n["estimate"] > 0.8 and n["ci_lower"] > g["ci_upper"]


def test_site_confounding_exposed_by_leave_site_out_and_combat():
    df = confounded_table(seed=1)
    clf = ImagingClassifier(covariates=())
    with pytest.warns(ConfoundingWarning, match="site 'A' has only 'als'"):
        grouped = evaluate_classifier(
            df, clf=clf, n_permutations=0, n_bootstrap=200, seed=0
        )
    assert grouped.summary.loc["roc_auc", "estimate"] > 0.7  # scanner, not disease
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfoundingWarning)
        loso = evaluate_classifier(
            df, clf=clf, cv="site", n_permutations=0, n_bootstrap=200, seed=0
        )
        harm = evaluate_classifier(
            df,
            clf=ImagingClassifier(covariates=(), harmonize="combat"),
            n_permutations=0,
            n_bootstrap=200,
            seed=0,
        )
    mixed = loso.folds.dropna(subset=["roc_auc"])
    assert set(mixed["test_site"]) == {"C", "D"}
    assert loso.folds.set_index("test_site")["roc_auc"][["A", "B"]].isna().all()
    # within the mixed sites there is no signal: leave-site-out shows it
    assert mixed["roc_auc"].mean() < 0.65
    h = harm.summary.loc["roc_auc"]
    assert h["estimate"] < grouped.summary.loc["roc_auc", "estimate"] - 0.1
    assert h["ci_lower"] <= 0.5 <= h["ci_upper"] + 0.05


def test_harmonising_before_split_warns(site_cohort):
    df = site_cohort.dropna(subset=["fa_cst_left"])
    pre = combat(df, batch="site", covariates=["group", "age", "sex"])
    with pytest.warns(LeakageWarning, match="harmonising all data before the split"):
        evaluate_classifier(pre, n_permutations=0, n_bootstrap=20, cv=3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeakageWarning)
        evaluate_classifier(df, n_permutations=0, n_bootstrap=20, cv=3, seed=0)


def test_leave_site_out_with_combat_runs_and_is_reproducible(site_cohort):
    clf = ImagingClassifier(harmonize="combat")
    a = evaluate_classifier(
        site_cohort, clf=clf, cv="site", n_permutations=2, n_bootstrap=50, seed=5
    )
    b = evaluate_classifier(
        site_cohort,
        clf=clf,
        cv="site",
        n_permutations=2,
        n_bootstrap=50,
        seed=5,
        n_jobs=2,
    )
    assert list(a.folds["test_site"]) == ["S1", "S2", "S3"]
    pd.testing.assert_frame_equal(a.summary, b.summary)
    np.testing.assert_allclose(a.permutation_aucs, b.permutation_aucs)
    assert a.summary.loc["roc_auc", "estimate"] > 0.75
    curves = a.roc_curves()
    assert (curves["fold"] == "mean").sum() == 101


def test_predict_warns_on_subjects_seen_in_fit(site_cohort):
    df = site_cohort.dropna(subset=["fa_cst_left"])
    clf = ImagingClassifier().fit(df, df["group"], groups=df["subject_id"])
    with pytest.warns(LeakageWarning, match="subject"):
        clf.predict(df.iloc[:5], groups=df["subject_id"].iloc[:5])


def test_svm_scores_and_calibrated_probabilities(site_cohort):
    df = site_cohort.dropna(subset=["fa_cst_left"])
    clf = ImagingClassifier("svm", random_state=0).fit(
        df, df["group"], groups="subject_id"
    )
    assert clf.calibrator_ is not None
    proba = clf.predict_proba(df)
    assert proba.shape == (len(df), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # the calibrated probability of classes_[1] increases with the SVM decision
    rho = stats.spearmanr(proba[:, 1], clf.decision_function(df)).statistic
    assert rho > 0.99


def test_tuning_is_nested(site_cohort):
    clf = ImagingClassifier(param_grid={"C": [0.01, 1.0]}, random_state=0)
    res = evaluate_classifier(
        site_cohort, clf=clf, cv=3, n_permutations=0, n_bootstrap=20, seed=0
    )
    assert len(res.folds) == 3
    df = site_cohort.dropna(subset=["fa_cst_left"])
    fitted = clf.fit(df, df["group"], groups=df["subject_id"])
    assert fitted.best_params_["clf__C"] in (0.01, 1.0)


def test_learning_curve_small_samples_are_optimistic(site_cohort):
    lc = learning_curve(site_cohort, train_sizes=(8, 60), cv=3, n_repeats=1, seed=0)
    s = lc.summary
    assert list(s.index) == [8, 60]
    assert s.loc[8, "train_auc_mean"] >= s.loc[8, "test_auc_mean"]


# ---------------------------------------------------------------- bad input


def test_one_class_target(site_cohort):
    df = site_cohort[site_cohort["group"] == "als"]
    with pytest.raises(DataValidationError, match=r"1 class\(es\) \['als'\]"):
        evaluate_classifier(df, n_permutations=0)
    with pytest.raises(DataValidationError, match="only one class"):
        ImagingClassifier().fit(
            df.dropna(subset=["fa_cst_left"]),
            df.dropna(subset=["fa_cst_left"])["group"],
        )


def test_features_matching_nothing(site_cohort):
    with pytest.raises(ModelSpecificationError, match="'dti_\\*' matches no column"):
        evaluate_classifier(site_cohort, clf=ImagingClassifier(features=["dti_*"]))


def test_groups_with_missing_values(site_cohort):
    df = site_cohort.dropna(subset=["fa_cst_left"]).reset_index(drop=True)
    groups = df["subject_id"].astype(object)
    groups.iloc[3] = None
    with pytest.raises(DataValidationError, match="missing subject in `groups`"):
        ImagingClassifier().fit(df, df["group"], groups=groups)
    bad = df.assign(subject_id=groups)
    with pytest.raises(
        DataValidationError, match="1 imaging row\\(s\\) have no subject"
    ):
        evaluate_classifier(bad, n_permutations=0)


def test_fewer_subjects_than_folds():
    df = noise_table(n_subjects=6, n_sessions=2)
    with pytest.raises(DataValidationError, match="6 subjects .* for 5 folds"):
        evaluate_classifier(df, clf=ImagingClassifier(covariates=()), n_permutations=0)


@pytest.mark.parametrize("cv", ["patient", 1, 2.5])
def test_bad_cv(site_cohort, cv):
    with pytest.raises(AlsprogError, match="`cv`"):
        evaluate_classifier(site_cohort, cv=cv, n_permutations=0)


def test_missing_covariate(site_cohort):
    with pytest.raises(ModelSpecificationError, match="covariate column"):
        evaluate_classifier(
            site_cohort, clf=ImagingClassifier(covariates=("bmi",)), n_permutations=0
        )
