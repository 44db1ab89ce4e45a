"""compare_classifiers: the same folds for every estimator and paired AUC differences.

Oracles: evaluate_classifier run on its own with the same seed (the comparison must
reproduce it exactly); an estimator compared with a copy of itself (difference 0);
chance (0.5) on pure noise; an unpaired bootstrap written out here with independent
resamples; scikit-learn's brier_score_loss and log_loss; hand-counted p-values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from bio_testdata import noise_table
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from alsprog.biomarkers._classifier import ImagingClassifier
from alsprog.biomarkers._compare import (
    ClassifierComparison,
    bootstrap_pvalue,
    compare_classifiers,
    paired_bootstrap,
)
from alsprog.biomarkers._evaluate import evaluate_classifier
from alsprog.biomarkers._metrics import bootstrap_metrics, weighted_auc
from alsprog.errors import ModelSpecificationError

QUICK = dict(cv=3, harmonize=None, covariates=(), n_bootstrap=50, seed=0)
KEYS = ["repeat", "fold", "row", "subject", "target", "positive"]


@pytest.fixture(scope="module")
def small():
    """24 noise subjects x 2 sessions, 3 features (cheap to fit)."""
    return noise_table(24, 2, 3, seed=1)


@pytest.fixture(scope="module")
def small_result(small):
    return compare_classifiers(small, ("logistic", "svm"), n_repeats=2, **QUICK)


def test_every_estimator_sees_the_same_folds(small_result):
    p = {n: ev.predictions for n, ev in small_result.evaluations.items()}
    pd.testing.assert_frame_equal(p["logistic"][KEYS], p["svm"][KEYS])
    f = {n: ev.folds for n, ev in small_result.evaluations.items()}
    cols = ["repeat", "fold", "n_train_subjects", "n_test_subjects", "n_test_sessions"]
    pd.testing.assert_frame_equal(f["logistic"][cols], f["svm"][cols])
    # grouped: no subject in two test folds of one repeat; each row tested once
    for _, g in p["svm"].groupby("repeat"):
        assert (g.groupby("subject")["fold"].nunique() == 1).all()
        assert sorted(g["row"]) == list(range(48))
        assert g["fold"].nunique() == 3
    # two repeats: new shuffles
    r0, r1 = (
        g.sort_values("row")["fold"].to_numpy() for _, g in p["svm"].groupby("repeat")
    )
    assert not np.array_equal(r0, r1)


def test_result_fields(small_result):
    res = small_result
    assert isinstance(res, ClassifierComparison)
    assert res.estimators == ["logistic", "svm"]
    assert res.reference == "logistic" and res.cv == "3-fold"
    assert res.pos_label == "als" and res.level == 0.95
    assert list(res.summary.columns) == [
        "roc_auc",
        "roc_auc_ci_lower",
        "roc_auc_ci_upper",
        "balanced_accuracy",
        "sensitivity",
        "specificity",
        "brier_score",
        "brier_score_ci_lower",
        "brier_score_ci_upper",
        "log_loss",
        "n_subjects",
        "n_sessions",
    ]
    assert res.summary["n_subjects"].tolist() == [24, 24]
    assert res.summary["n_sessions"].tolist() == [48, 48]
    assert list(res.differences.index) == ["svm"]
    d = res.differences.loc["svm"]
    assert d["reference"] == "logistic"
    assert d["difference"] == pytest.approx(d["roc_auc"] - d["reference_roc_auc"])
    assert d["roc_auc"] == res.summary.loc["svm", "roc_auc"]
    assert d["reference_roc_auc"] == res.summary.loc["logistic", "roc_auc"]
    assert d["ci_lower"] <= d["ci_upper"] and 0 < d["p_value"] <= 1
    assert d["n_bootstrap"] == 50 and d["n_folds"] == 6
    fa = res.folds
    assert list(fa.columns) == ["logistic", "svm"]
    assert fa.index.names == ["repeat", "fold"] and len(fa) == 6
    assert d["folds_better"] == int((fa["svm"] > fa["logistic"]).sum())
    for name, ev in res.evaluations.items():
        np.testing.assert_array_equal(fa[name].to_numpy(), ev.folds["roc_auc"])
        assert ev.permutation_pvalue is None and ev.n_permutations == 0
    assert set(res.seconds.index) == {"logistic", "svm"} and (res.seconds > 0).all()
    text = repr(res)
    assert "reference='logistic'" in text and "minus logistic" in text
    assert text.count("\n") == 2
    frame = res.to_frame()
    assert frame.loc["logistic", "difference"] == 0.0
    assert np.isnan(frame.loc["logistic", "p_value"])
    assert frame.loc["svm", "difference_ci_lower"] == d["ci_lower"]


def test_same_as_evaluate_classifier(small, small_result):
    # svm: calibrated probabilities, three inner fits per fold; logistic and mlp in
    # the slow test below
    ev = evaluate_classifier(
        small,
        clf=ImagingClassifier("svm", covariates=()),
        cv=3,
        n_repeats=2,
        n_permutations=0,
        n_bootstrap=50,
        seed=0,
    )
    got = small_result.evaluations["svm"]
    pd.testing.assert_frame_equal(got.summary, ev.summary)
    pd.testing.assert_frame_equal(got.folds, ev.folds)
    pd.testing.assert_frame_equal(
        got.predictions.drop(columns="probability"), ev.predictions
    )
    assert (
        small_result.summary.loc["svm", "roc_auc"]
        == ev.summary.loc["roc_auc", "estimate"]
    )


def test_probabilities_brier_and_log_loss(small_result):
    res = small_result
    for name, ev in res.evaluations.items():
        p = ev.predictions
        assert ((p["probability"] > 0) & (p["probability"] < 1)).all()
        s = res.summary.loc[name]
        by_repeat = [
            (
                brier_score_loss(g["positive"], g["probability"]),
                log_loss(g["positive"], g["probability"]),
                roc_auc_score(g["positive"], g["score"]),
            )
            for _, g in p.groupby("repeat")
        ]
        brier, loss, auc = np.mean(by_repeat, axis=0)  # averaged over the 2 repeats
        assert s["brier_score"] == pytest.approx(brier, rel=1e-12)
        assert s["log_loss"] == pytest.approx(loss, rel=1e-12)
        assert s["roc_auc"] == pytest.approx(auc, rel=1e-12)
        assert s["brier_score_ci_lower"] <= brier <= s["brier_score_ci_upper"]
    # logistic regression's score is the log-odds of its probability (positive class)
    p = res.evaluations["logistic"].predictions
    np.testing.assert_allclose(p["probability"], expit(p["score"]), rtol=1e-10)


def test_an_estimator_against_itself_differs_by_exactly_zero(small):
    res = compare_classifiers(
        small, {"a": "logistic", "b": ImagingClassifier(covariates=())}, **QUICK
    )
    d = res.differences.loc["b"]
    assert (d["difference"], d["ci_lower"], d["ci_upper"]) == (0.0, 0.0, 0.0)
    assert d["p_value"] == 1.0 and d["folds_better"] == 0


def test_paired_bootstrap_uses_bootstrap_metrics_resamples(small_result):
    pred = small_result.evaluations["svm"].predictions
    draws = paired_bootstrap(
        {"svm": pred}, n_bootstrap=200, rng=np.random.default_rng(5)
    )
    auc = draws["roc_auc"][:, 0]
    ref = bootstrap_metrics(
        pred, n_bootstrap=200, level=0.9, rng=np.random.default_rng(5)
    ).loc["roc_auc"]
    assert auc[0] == ref["estimate"]
    assert np.nanquantile(auc[1:], 0.05) == ref["ci_lower"]
    assert np.nanquantile(auc[1:], 0.95) == ref["ci_upper"]


def correlated_predictions(n: int = 80, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Two scorers that share a large subject component (one session each)."""
    rng = np.random.default_rng(seed)
    pos = np.arange(n) % 2 == 0
    u = rng.standard_normal(n) + 1.0 * pos
    base = pd.DataFrame({"repeat": 0, "subject": [f"S{i}" for i in range(n)]})
    base["positive"] = pos
    return {k: base.assign(score=u + 0.3 * rng.standard_normal(n)) for k in ("a", "b")}


def test_paired_interval_is_narrower_than_unpaired():
    preds = correlated_predictions()
    draws = paired_bootstrap(preds, n_bootstrap=400, rng=np.random.default_rng(1))
    d = draws["roc_auc"][1:, 1] - draws["roc_auc"][1:, 0]
    paired = np.subtract(*np.quantile(d, [0.975, 0.025]))
    # unpaired: each scorer's AUC resampled on its own, independently
    rng = np.random.default_rng(2)
    pos = preds["a"]["positive"].to_numpy(bool)
    n = len(pos)

    def boot(score):
        out = []
        for _ in range(400):
            w = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
            out.append(weighted_auc(score, pos, w))
        return np.array(out)

    du = boot(preds["b"]["score"].to_numpy()) - boot(preds["a"]["score"].to_numpy())
    unpaired = np.subtract(*np.quantile(du, [0.975, 0.025]))
    assert paired < 0.5 * unpaired


def test_paired_bootstrap_refuses_other_sessions():
    preds = correlated_predictions()
    preds["b"] = preds["b"].iloc[::-1].reset_index(drop=True)
    with pytest.raises(ModelSpecificationError, match="'b' are not of the same"):
        paired_bootstrap(preds, n_bootstrap=2, rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    ("draws", "expected"),
    [
        ([0.1, 0.2, 0.3, -0.1], 2 * 2 / 5),  # one of 4 at or below 0
        ([0.1, 0.2, 0.3, 0.4], 2 * 1 / 5),  # the floor 2 / (B + 1)
        ([-0.1, -0.2, 0.3], 2 * 2 / 4),
        ([0.0, 0.0], 1.0),
        ([0.1, np.nan, -0.1], 1.0),  # NaN draws left out: 2 * 2 / 3 capped
        ([np.nan], np.nan),
    ],
)
def test_bootstrap_pvalue_by_hand(draws, expected):
    assert bootstrap_pvalue(draws) == pytest.approx(expected, nan_ok=True)


def test_same_seed_same_numbers(small, small_result):
    again = compare_classifiers(
        small,
        ("logistic", "svm"),
        n_repeats=2,
        **{**QUICK, "seed": np.random.default_rng(0)},  # a Generator works too
    )
    pd.testing.assert_frame_equal(again.summary, small_result.summary)
    pd.testing.assert_frame_equal(again.differences, small_result.differences)
    pd.testing.assert_frame_equal(again.folds, small_result.folds)


def test_reference_and_names(small):
    lr = LogisticRegression(C=0.01)
    res = compare_classifiers(
        small,
        ["logistic", ("weak", ImagingClassifier(lr, covariates=())), lr],
        reference="weak",
        **QUICK,
    )
    assert res.estimators == ["logistic", "weak", "LogisticRegression"]
    assert list(res.differences.index) == ["logistic", "LogisticRegression"]
    assert (res.differences["reference"] == "weak").all()
    # the same regularised model twice (one wrapped here, one given wrapped)
    assert res.differences.loc["LogisticRegression", "difference"] == 0.0


def test_leave_site_out(small):
    res = compare_classifiers(small, ("logistic", "svm"), **{**QUICK, "cv": "site"})
    assert res.cv == "site" and len(res.folds) == 2
    sites = res.evaluations["svm"].folds["test_site"].tolist()
    assert sorted(sites) == ["A", "B"]


@pytest.mark.parametrize(
    ("estimators", "kw", "match"),
    [
        (("logistic", "xgb"), {}, r"'xgb' is not a known estimator"),
        (("logistic", "svm"), {"reference": "rf"}, r"`reference` 'rf' is not one"),
        (("logistic", "logistic"), {}, r"name 'logistic' is given twice"),
        (("logistic",), {}, r"at least two .* got 1 \('logistic'\)"),
        ((), {}, r"at least two .* got 0"),
        ("logistic", {}, r"got 'logistic'"),
        ({"a": "svm", "b": 3}, {}, r"entry 'b' must be"),
        ({"a": "svm", "": "rf"}, {}, r"non-empty strings; got ''"),
        (("logistic", "svm"), {"n_bootstrap": 0}, r"n_bootstrap"),
    ],
)
def test_bad_input_names_the_value(small, estimators, kw, match):
    with pytest.raises(ModelSpecificationError, match=match):
        compare_classifiers(small, estimators, **{**QUICK, **kw})


def test_estimators_must_keep_the_same_sessions(small):
    df = small.copy()
    df.loc[:5, "fa_noise0"] = np.nan
    est = {
        "a": ImagingClassifier(features=["fa_noise0"], covariates=()),
        "b": ImagingClassifier(features=["fa_noise1"], covariates=()),
    }
    with pytest.raises(ModelSpecificationError, match="'a' and 'b' keep different"):
        compare_classifiers(df, est, **QUICK)


def test_estimators_must_agree_on_the_positive_class(small):
    est = {
        "a": ImagingClassifier(covariates=()),
        "b": ImagingClassifier(covariates=(), positive="control"),
    }
    with pytest.raises(ModelSpecificationError, match="'als', 'control'"):
        compare_classifiers(small, est, **QUICK)


@pytest.mark.slow
def test_noise_every_auc_is_chance():
    df = noise_table(60, 2, 4, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compare_classifiers(
            df, ("logistic", "svm", "mlp"), harmonize=None, covariates=(),
            n_bootstrap=300, seed=3,
        )  # fmt: skip
    s = res.summary
    # 60 subjects: SE of a chance AUC about 0.075
    assert (abs(s["roc_auc"] - 0.5) < 0.2).all()
    assert ((s["roc_auc_ci_lower"] < 0.5) & (s["roc_auc_ci_upper"] > 0.5)).all()
    d = res.differences
    assert ((d["ci_lower"] < 0) & (d["ci_upper"] > 0)).all()


@pytest.mark.slow
def test_simulated_cohort_matches_evaluate_classifier_with_mlp():
    from alsprog.data import assemble
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(25, 25, months=6, seed=3)
    df = assemble(c.visits, c.subjects, c.imaging)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compare_classifiers(df, n_bootstrap=100, seed=11)
        for name in ("logistic", "svm", "mlp"):
            ev = evaluate_classifier(
                df,
                clf=ImagingClassifier(name, harmonize="combat"),
                n_permutations=0,
                n_bootstrap=100,
                seed=11,
            )
            pd.testing.assert_frame_equal(res.evaluations[name].summary, ev.summary)
    # a real effect: every estimator well above chance
    assert (res.summary["roc_auc_ci_lower"] > 0.6).all()


@pytest.mark.slow
def test_workers_do_not_change_the_numbers(small, small_result):
    res = compare_classifiers(
        small, ("logistic", "svm"), n_repeats=2, n_jobs=2, **QUICK
    )
    pd.testing.assert_frame_equal(res.summary, small_result.summary)
    pd.testing.assert_frame_equal(res.differences, small_result.differences)
