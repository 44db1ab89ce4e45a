"""feature_importance: held-out permutation importance on grouped folds."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from bio_testdata import noise_table

from alsprog.biomarkers import ImagingClassifier, feature_importance
from alsprog.data import assemble
from alsprog.errors import DataValidationError, ModelSpecificationError
from alsprog.simulate import simulate_cohort

#: Simulator truth (CohortParams): ALS shifts CST FA/MD, motor-callosal FA and
#: precentral thickness; thickness_cuneus_left is a negative control with no effect.
AFFECTED = [
    "fa_cst_left",
    "fa_cst_right",
    "fa_cc_motor",
    "md_cst_left",
    "md_cst_right",
    "thickness_precentral_left",
    "thickness_precentral_right",
]
NULL = "thickness_cuneus_left"


@pytest.fixture(scope="module")
def cross_sectional():
    c = simulate_cohort(80, 80, months=0, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return assemble(c.visits, c.subjects, c.imaging)


@pytest.fixture(scope="module")
def importance(cross_sectional):
    return feature_importance(cross_sectional, n_repeats=3, seed=3)


def test_affected_regions_rank_above_negative_control(importance):
    imp = importance.set_index("feature")
    assert list(importance.columns[:7]) == [
        "feature",
        "metric",
        "region",
        "importance_mean",
        "importance_sd",
        "ci_lower",
        "ci_upper",
    ]
    assert set(imp.index) == {*AFFECTED, NULL}
    assert imp.loc[AFFECTED, "importance_mean"].min() > imp.loc[NULL, "importance_mean"]
    assert importance["feature"].iloc[-1] == NULL
    # the negative control's interval covers 0; the top feature's does not
    assert imp.loc[NULL, "ci_lower"] < 0 < imp.loc[NULL, "ci_upper"]
    assert importance["ci_lower"].iloc[0] > 0 or importance["ci_lower"].iloc[1] > 0
    assert (imp["n_folds"] == 15).all()  # 5 folds x 3 repeats


def test_names_and_coefficient_signs(importance):
    imp = importance.set_index("feature")
    assert imp.loc["thickness_precentral_left", ["metric", "region"]].tolist() == [
        "thickness",
        "precentral_left",
    ]
    assert imp.loc["fa_cc_motor", "region"] == "cc_motor"
    # simulator truth: FA and thickness lower, MD higher in ALS (positive class)
    assert (imp.loc[["fa_cst_left", "fa_cc_motor"], "coefficient"] < 0).all()
    assert (imp.loc[["md_cst_left", "md_cst_right"], "coefficient"] > 0).all()


def test_noise_features_have_no_importance():
    df = noise_table(n_subjects=40, n_sessions=2, n_features=3, seed=1)
    clf = ImagingClassifier(covariates=())
    imp = feature_importance(df, clf, n_repeats=2, seed=0)
    # pure noise: every interval covers 0 (permutation within test folds only)
    assert ((imp["ci_lower"] < 0) & (imp["ci_upper"] > 0)).all()
    assert imp["coefficient"].notna().all()


def test_same_seed_same_numbers_and_rf_has_no_coefficient():
    df = noise_table(n_subjects=30, n_sessions=2, n_features=2, seed=2)
    from sklearn.ensemble import RandomForestClassifier

    clf = ImagingClassifier(RandomForestClassifier(30), covariates=())
    a = feature_importance(df, clf, cv=3, n_repeats=1, seed=5)
    b = feature_importance(df, clf, cv=3, n_repeats=1, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert a["coefficient"].isna().all()


def test_leave_site_out(cross_sectional):
    imp = feature_importance(cross_sectional, cv="site", n_repeats=2, seed=0)
    n_sites = cross_sectional["site"].nunique()
    assert (imp["n_folds"] == 2 * n_sites).all()
    assert np.isfinite(imp["importance_mean"]).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cv": "session"}, "got 'session'"),
        ({"n_repeats": 0}, "`n_repeats`"),
        ({"level": 95}, "`level`"),
        ({"target": "nope"}, "'nope'"),
    ],
)
def test_bad_arguments(kwargs, match):
    df = noise_table(n_subjects=20, n_sessions=1, n_features=2)
    with pytest.raises(ModelSpecificationError, match=match):
        feature_importance(df, ImagingClassifier(covariates=()), **kwargs)


def test_bad_clf_and_too_few_subjects():
    df = noise_table(n_subjects=20, n_sessions=1, n_features=2)
    with pytest.raises(ModelSpecificationError, match="ImagingClassifier"):
        feature_importance(df, "logistic")  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="lower `cv`"):
        feature_importance(df, ImagingClassifier(covariates=()), cv=15)
