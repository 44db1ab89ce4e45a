"""The classifier's positive class (issue 18, item 5): labels ALS/HC make ALS
positive (not HC, as sorting made it), `positive=` chooses another, and every result
says which class is positive."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from alsprog.biomarkers import ImagingClassifier, evaluate_classifier
from alsprog.biomarkers._classifier import resolve_positive
from alsprog.errors import ModelSpecificationError


@pytest.fixture(scope="module")
def table(site_cohort):
    df = site_cohort.copy()
    df["diagnosis"] = df["group"].map({"als": "ALS", "control": "HC"})
    return df


def _evaluate(df, target, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_classifier(
            df,
            target,
            clf=ImagingClassifier(covariates=(), **kw.pop("clf_kw", {})),
            n_permutations=0,
            n_bootstrap=200,
            seed=3,
            **kw,
        )


def test_als_hc_labels_make_als_positive(table):
    ref = _evaluate(table, "group")  # the data dictionary's als / control
    got = _evaluate(table, "diagnosis")  # ALS / HC: sorted, HC came second
    assert ref.pos_label == "als" and got.pos_label == "ALS"
    cols = ["estimate", "ci_lower", "ci_upper"]
    pd.testing.assert_frame_equal(got.summary[cols], ref.summary[cols])
    assert got.summary["positive_class"].tolist() == ["ALS"] * 4
    # sensitivity is the share of ALS sessions called ALS, computed here by hand
    p = got.predictions
    als = p["target"] == "ALS"
    assert (p["positive"] == als).all()
    assert got.folds["sensitivity"].tolist() == pytest.approx(
        [
            g.loc[g["target"] == "ALS", "predicted"].mean()
            for _, g in p.groupby("fold", sort=True)
        ]
    )
    # and the score is larger for ALS: the AUC is well above 0.5 either way
    assert got.summary.loc["roc_auc", "estimate"] > 0.7
    assert "positive='ALS'" in repr(got)


def test_positive_chooses_the_other_class(table):
    ref = _evaluate(table, "diagnosis")
    hc = _evaluate(table, "diagnosis", positive="hc")  # case ignored
    assert hc.pos_label == "HC"
    assert hc.summary["positive_class"].tolist() == ["HC"] * 4
    s, r = hc.summary["estimate"], ref.summary["estimate"]
    assert s["sensitivity"] == pytest.approx(r["specificity"])
    assert s["specificity"] == pytest.approx(r["sensitivity"])
    assert s["roc_auc"] == pytest.approx(r["roc_auc"])  # the score flips with it


def test_estimator_reports_its_positive_class():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"fa_cst_left": np.r_[rng.normal(0.50, 0.02, 30),
                                           rng.normal(0.56, 0.02, 30)]})  # fmt: skip
    y = np.repeat(["ALS", "HC"], 30)
    clf = ImagingClassifier(covariates=(), random_state=0).fit(X, y)
    assert clf.classes_.tolist() == ["ALS", "HC"]  # scikit-learn's sorted order
    assert clf.pos_label_ == "ALS"
    # decision_function scores classes_[1] (scikit-learn); positive_score the ALS
    np.testing.assert_array_equal(clf.positive_score(X), -clf.decision_function(X))
    assert (clf.positive_score(X)[:30] > 0).mean() > 0.8
    hc = ImagingClassifier(covariates=(), positive="HC").fit(X, y)
    assert hc.pos_label_ == "HC"
    np.testing.assert_array_equal(hc.positive_score(X), hc.decision_function(X))


def test_estimator_without_als_label_follows_scikit_learn():
    X = np.arange(8.0).reshape(-1, 1)
    for y, pos in (([0, 1] * 4, 1), (["one", "two"] * 4, "two")):
        assert ImagingClassifier().fit(X, y).pos_label_ == pos


@pytest.mark.parametrize(
    ("classes", "positive", "message"),
    [
        (
            ["ALS", "HC"],
            "patient",
            r"`positive` 'patient' is not a class of column 'diagnosis'; its classes "
            r"are \['ALS', 'HC'\]: pass one of them",
        ),
        (
            ["ALS", "als"],
            None,
            r"classes \['ALS', 'als'\] of column 'diagnosis' are both the ALS label "
            r"'als' when case is ignored, so the positive class is ambiguous",
        ),
        (
            ["ALS", "als"],
            "Als",
            r"`positive` 'Als' matches both classes \['ALS', 'als'\] of column "
            r"'diagnosis' when case is ignored; give the exact label",
        ),
        (
            ["case", "hc"],
            None,
            r"no class of column 'diagnosis' \(\['case', 'hc'\]\) is the data "
            r"dictionary's ALS label 'als' \(compared ignoring case\), so the positive "
            r"class \(the one sensitivity and the ROC curve are about\) is unknown; "
            r"pass `positive=` one of \['case', 'hc'\]",
        ),
    ],
)
def test_absent_or_ambiguous_positive_is_refused(classes, positive, message):
    with pytest.raises(ModelSpecificationError, match=message):
        resolve_positive(classes, positive, column="diagnosis")


def test_resolve_positive_defaults():
    assert resolve_positive(["ALS", "HC"]) == "ALS"
    assert resolve_positive([" Als ", "control"]) == " Als "
    assert resolve_positive([0, 1]) == 1
    assert resolve_positive([-1, 1]) == 1
    assert resolve_positive([False, True]) is True
    assert resolve_positive(["case", "hc"], "case") == "case"
    assert resolve_positive([0, 1], "0") == 0  # command-line text
    assert resolve_positive(["case", "hc"], strict=False) == "hc"


def test_evaluate_refuses_text_labels_without_als(table):
    df = table.assign(diagnosis=table["group"].map({"als": "case", "control": "hc"}))
    with pytest.raises(ModelSpecificationError, match=r"pass `positive=` one of"):
        _evaluate(df, "diagnosis")
    res = _evaluate(df, "diagnosis", positive="case")
    assert res.pos_label == "case"


def test_evaluate_and_classifier_positive_must_agree(table):
    with pytest.raises(
        ModelSpecificationError,
        match=r"`positive` 'ALS' differs from the classifier's positive 'HC'",
    ):
        _evaluate(table, "diagnosis", positive="ALS", clf_kw={"positive": "HC"})
    res = _evaluate(table, "diagnosis", clf_kw={"positive": "hc"})
    assert res.pos_label == "HC"


def test_importance_and_learning_curve_name_the_positive_class(table):
    from alsprog.biomarkers import feature_importance, learning_curve

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = feature_importance(
            table, ImagingClassifier(covariates=()), target="diagnosis", cv=3,
            n_repeats=1, seed=0,
        )  # fmt: skip
        lc = learning_curve(
            table, "diagnosis", ImagingClassifier(covariates=()),
            train_sizes=(20,), cv=3, n_repeats=1, seed=0,
        )  # fmt: skip
    assert imp["positive_class"].unique().tolist() == ["ALS"]
    # simulator truth: FA lower in ALS, so its coefficient is negative for ALS
    fa = imp.set_index("feature").loc[["fa_cst_left", "fa_cst_right"], "coefficient"]
    assert fa.sum() < 0
    assert lc.pos_label == "ALS" and "positive='ALS'" in repr(lc)
