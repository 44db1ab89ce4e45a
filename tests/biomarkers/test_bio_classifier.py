"""ImagingClassifier passes scikit-learn's estimator checks."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from alsprog.biomarkers import ImagingClassifier


@parametrize_with_checks([ImagingClassifier(random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(
    [ImagingClassifier("svm", random_state=0), ImagingClassifier("rf", random_state=0)]
)
def test_sklearn_estimator_checks_svm_rf(estimator, check):
    check(estimator)


def test_feature_patterns_select_columns():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        rng.normal(size=(40, 3)),
        columns=["fa_cst_left", "md_cst_left", "thickness_cuneus_left"],
    )
    y = np.repeat(["als", "control"], 20)
    clf = ImagingClassifier(features=["fa_*", "thickness_*"], covariates=()).fit(X, y)
    assert clf.features_ == ["fa_cst_left", "thickness_cuneus_left"]
    assert clf.feature_names_out() == ["fa_cst_left", "thickness_cuneus_left"]
