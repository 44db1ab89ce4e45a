"""The "mlp" estimator: early stopping on whole held-out subjects, honestly validated.

Oracles: the closed-form AUC of two Gaussian classes with equal covariance,
Phi(Delta / sqrt(2)); chance (0.5) on pure noise; scikit-learn's own forward pass
(``MLPClassifier.predict_proba``) and ``log_loss`` for the network's scores and the
monitored loss.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from bio_testdata import noise_table
from scipy import stats
from scipy.special import expit
from sklearn.exceptions import NotFittedError
from sklearn.metrics import log_loss
from sklearn.utils.estimator_checks import parametrize_with_checks

from alsprog.biomarkers import LeakageWarning, evaluate_classifier
from alsprog.biomarkers._classifier import ImagingClassifier
from alsprog.biomarkers._folds import _fold_cache, _prepare, _splits
from alsprog.biomarkers._mlp import GroupedEarlyStoppingMLP, grouped_validation_split

FAST = dict(hidden_layer_sizes=(4,), max_iter=30, n_iter_no_change=3)


def gaussian_table(
    n_subjects: int,
    n_sessions: int,
    shift: list[float],
    *,
    subject_sd: float = 0.8,
    scan_sd: float = 0.6,
    seed: int = 0,
) -> tuple[pd.DataFrame, float]:
    """Two Gaussian classes, equal covariance, subject random effects; returns the
    table and the per-session AUC of the Bayes rule, Phi(Delta / sqrt(2))."""
    shift = np.asarray(shift, np.float64)
    rng = np.random.default_rng(seed)
    als = rng.permutation(np.arange(n_subjects) < n_subjects // 2)
    u = subject_sd * rng.standard_normal((n_subjects, len(shift)))
    u += np.outer(als, shift)
    rows = np.repeat(np.arange(n_subjects), n_sessions)
    x = u[rows] + scan_sd * rng.standard_normal((len(rows), len(shift)))
    df = pd.DataFrame(x, columns=[f"fa_r{j}" for j in range(len(shift))])
    df.insert(0, "subject_id", [f"S{i:03d}" for i in rows])
    df.insert(1, "group", np.where(als[rows], "als", "control"))
    df.insert(2, "site", "A")
    # session covariance (subject_sd^2 + scan_sd^2) I: Mahalanobis distance
    delta = np.linalg.norm(shift) / np.hypot(subject_sd, scan_sd)
    return df, float(stats.norm.cdf(delta / np.sqrt(2)))


def tiny(seed: int = 0, n_subjects: int = 16, n_sessions: int = 3):
    df = noise_table(
        n_subjects=n_subjects, n_sessions=n_sessions, n_features=3, seed=seed
    )
    feats = [c for c in df if c.startswith("fa_")]
    return df, df[feats].to_numpy(), df["group"].to_numpy(), df["subject_id"]


# ---------------------------------------------------------------- the inner split


def test_grouped_validation_split_keeps_subjects_apart():
    _, _, y, g = tiny(n_subjects=30)
    g = g.to_numpy()
    for seed in range(5):
        tr, va = grouped_validation_split(y, g, validation_fraction=0.2, seed=seed)
        assert not set(g[tr]) & set(g[va])  # no subject on both sides
        assert sorted(np.r_[tr, va]) == list(range(len(y)))
        assert len(set(g[va])) == 6  # 20 % of 30 subjects
        assert set(y[tr]) == {"als", "control"}
    a = grouped_validation_split(y, g, seed=3)
    b = grouped_validation_split(y, g, seed=3)
    np.testing.assert_array_equal(a[1], b[1])
    assert grouped_validation_split(y, np.full(len(y), "S0"), seed=0) is None


def test_inner_split_is_grouped_inside_the_classifier():
    """The classifier routes the subjects to the network's inner split."""
    df, _, y, g = tiny(n_subjects=20)
    clf = ImagingClassifier(
        GroupedEarlyStoppingMLP(**FAST), covariates=(), random_state=0
    )
    clf.fit(df, y, groups=g)
    net = clf.pipeline_[-1]
    assert net.monitor_ == "validation"
    assert not set(net.train_groups_) & set(net.validation_groups_)
    assert set(net.train_groups_) | set(net.validation_groups_) == set(g)
    assert len(net.validation_groups_) == 4
    # without the subjects, the split is by rows and scans of a subject get split
    rows = (
        ImagingClassifier(
            GroupedEarlyStoppingMLP(**FAST), covariates=(), random_state=0
        )
        .fit(df, y)
        .pipeline_[-1]
    )
    assert len(rows.validation_groups_) == round(0.2 * len(y))


def test_mlp_string_builds_the_grouped_network():
    df, _, y, g = tiny()
    clf = ImagingClassifier("mlp", covariates=(), random_state=0)
    net = clf._final_estimator(5)
    assert isinstance(net, GroupedEarlyStoppingMLP)
    assert net.get_params()["hidden_layer_sizes"] == (32,)
    assert net.class_weight == "balanced" and net.random_state == 5
    clf = ImagingClassifier(
        GroupedEarlyStoppingMLP((4,), max_iter=8, n_iter_no_change=2),
        covariates=(),
        param_grid={"alpha": [1e-3, 1e-1]},
        random_state=0,
    )
    # the grid search passes the subjects on (scikit-learn slices them per fold)
    clf.fit(df, y, groups=g)
    net = clf.pipeline_[-1]
    assert not set(net.validation_groups_) & set(net.train_groups_)
    assert set(net.validation_groups_) | set(net.train_groups_) == set(g)
    assert clf.best_params_["clf__alpha"] in (1e-3, 1e-1)


# ---------------------------------------------------------------- training


def test_same_seed_same_predictions():
    df, _, y, g = tiny()

    def fit(seed):
        net = GroupedEarlyStoppingMLP(**FAST)  # seeded by the classifier
        clf = ImagingClassifier(net, covariates=(), random_state=seed)
        return clf.fit(df, y, groups=g)

    a, b, c = fit(7), fit(7), fit(8)
    np.testing.assert_array_equal(a.predict_proba(df), b.predict_proba(df))
    assert not np.allclose(a.predict_proba(df), c.predict_proba(df))


def test_early_stopping_stops_at_the_best_validation_loss():
    """Pure noise: the validation loss soon stops improving; training stops after
    ``n_iter_no_change`` stale epochs and keeps the epoch of the smallest loss."""
    _, X, y, g = tiny(n_subjects=24)
    m = GroupedEarlyStoppingMLP(
        (8,), max_iter=200, n_iter_no_change=4, tol=0.0, refit=False, random_state=1
    )
    m.fit(X, y, groups=g)
    assert m.stopped_early_ and m.n_iter_ < m.max_iter
    assert m.n_iter_ == m.best_epoch_ + 4
    assert m.best_epoch_ == int(np.argmin(m.loss_curve_)) + 1
    # the kept weights are the best epoch's: recompute the validation log-loss
    val = np.isin(g.to_numpy(), m.validation_groups_)
    loss = log_loss(y[val], m.predict_proba(X[val]), labels=m.classes_)
    assert loss == pytest.approx(m.loss_curve_.min(), rel=1e-10)


def test_refit_trains_all_rows_for_the_best_number_of_epochs():
    _, X, y, g = tiny()
    m = GroupedEarlyStoppingMLP(**FAST, random_state=0).fit(X, y, groups=g)
    assert m.mlp_.n_iter_ == m.best_epoch_  # MLPClassifier counts its epochs
    assert m.mlp_.t_ == m.best_epoch_ * len(y)  # every row, once per epoch


def test_scores_are_the_networks_log_odds():
    _, X, y, g = tiny()
    m = GroupedEarlyStoppingMLP(**FAST, random_state=0).fit(X, y, groups=g)
    p = m.mlp_.predict_proba(X)[:, 1]  # scikit-learn's forward pass
    np.testing.assert_allclose(expit(m.decision_function(X)), p, rtol=1e-10)
    np.testing.assert_array_equal(m.predict(X), m.classes_[(p > 0.5).astype(int)])


def test_one_subject_falls_back_to_the_training_loss():
    _, X, y, _ = tiny()
    m = GroupedEarlyStoppingMLP(**FAST, random_state=0)
    m.fit(X, y, groups=np.zeros(len(y)))
    assert m.monitor_ == "training" and len(m.validation_groups_) == 0
    assert m.best_epoch_ == m.n_iter_


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("max_iter", 0),
        ("alpha", -1.0),
        ("validation_fraction", 1.0),
        ("activation", "softmax"),
        ("n_iter_no_change", 1.5),
    ],
)
def test_bad_parameters(param, value):
    _, X, y, g = tiny()
    with pytest.raises((ValueError, TypeError), match=f"`{param}`"):
        GroupedEarlyStoppingMLP(**{param: value}).fit(X, y, groups=g)


def test_binary_only_and_unfitted():
    _, X, _, _ = tiny()
    with pytest.raises(ValueError, match="binary"):
        GroupedEarlyStoppingMLP().fit(X, np.arange(len(X)) % 3)
    with pytest.raises(ValueError, match="two classes"):
        GroupedEarlyStoppingMLP().fit(X, np.zeros(len(X)))
    with pytest.raises(NotFittedError):
        GroupedEarlyStoppingMLP().predict_proba(X)


def test_permutations_refit_the_whole_pipeline_with_subjects():
    """The permutation fast path refits the final estimator without the subjects:
    it is not taken for the network, so every permuted fit stops on held-out
    subjects as the real one does."""
    df, *_ = tiny(n_subjects=20)
    clf = ImagingClassifier("mlp", covariates=())
    data = _prepare(
        df, target="group", clf=clf, subject="subject_id", site="site", cv=4
    )
    splits = _splits(data, 4, np.random.default_rng(0))
    assert _fold_cache(clf, data, splits, True) is None
    logistic = ImagingClassifier(covariates=())
    assert _fold_cache(logistic, data, splits, True) is not None  # the test can fail


# ---------------------------------------------------------------- validation


@pytest.mark.slow
def test_grouped_cv_auc_matches_the_analytic_auc():
    df, truth = gaussian_table(240, 2, [0.9, 0.6, 0.0, 0.0], seed=11)
    # by hand: Delta = sqrt(0.9^2 + 0.6^2) / hypot(0.8, 0.6) = 1.0817,
    # Phi(1.0817 / sqrt(2)) = Phi(0.7649) = 0.7778
    assert truth == pytest.approx(0.7778, abs=1e-4)
    clf = ImagingClassifier("mlp", covariates=(), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeakageWarning)  # one site
        res = evaluate_classifier(
            df, clf=clf, n_permutations=4, n_bootstrap=300, seed=2
        )
    auc = res.summary.loc["roc_auc"]
    assert auc["ci_lower"] <= truth <= auc["ci_upper"], (truth, auc.to_dict())
    assert res.permutation_pvalue == pytest.approx(0.2)  # (1 + 0) / (1 + 4)
    assert (res.permutation_aucs < auc["estimate"]).all()


@pytest.mark.slow
def test_noise_grouped_is_chance_but_naive_split_is_inflated():
    """Pure noise, repeated near-identical scans per subject.  300 subjects: the
    grouped AUC's SD is about 0.03, so 0.5 +- 0.1 is some 3 SDs.  The naive
    session split is shown on 80 subjects (a network memorises 80 subjects' scans,
    not 300, within its epochs), beside the grouped estimate on the same table."""
    clf = ImagingClassifier("mlp", covariates=(), random_state=0)
    big = noise_table(n_subjects=300, n_sessions=2, seed=0)
    small = noise_table(n_subjects=80, n_sessions=3, seed=5)
    kw = dict(clf=clf, n_permutations=0, n_bootstrap=200, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeakageWarning)
        grouped = evaluate_classifier(big, **kw).summary.loc["roc_auc"]
        small_grouped = evaluate_classifier(small, **kw).summary.loc["roc_auc"]
        naive = evaluate_classifier(small, cv="session", **kw).summary.loc["roc_auc"]
    assert abs(grouped["estimate"] - 0.5) < 0.1
    assert grouped["ci_lower"] <= 0.5 <= grouped["ci_upper"]
    assert small_grouped["ci_lower"] <= 0.5 <= small_grouped["ci_upper"]
    assert naive["estimate"] > 0.8 and naive["ci_lower"] > small_grouped["ci_upper"]


@pytest.mark.slow
def test_row_split_early_stopping_is_fooled_by_repeated_scans():
    """Why the inner split must be grouped: on pure noise, a validation part made of
    rows holds other scans of the training subjects, so its loss keeps falling far
    below chance (log 2) and training never stops; held-out subjects stay near
    chance and stop it."""
    df = noise_table(n_subjects=40, n_sessions=3, n_features=6, seed=2)
    X, y, g = df.filter(like="fa_").to_numpy(), df["group"], df["subject_id"]
    fit = lambda groups, s: GroupedEarlyStoppingMLP(  # noqa: E731
        learning_rate_init=0.01, max_iter=60, refit=False, random_state=s
    ).fit(X, y, groups=groups)
    rows = [fit(None, s) for s in range(3)]
    subjects = [fit(g, s) for s in range(3)]
    assert all(m.loss_curve_.min() < 0.15 and not m.stopped_early_ for m in rows)
    assert np.median([m.loss_curve_.min() for m in subjects]) > 0.5
    assert sum(m.stopped_early_ for m in subjects) >= 2


@pytest.mark.slow
@parametrize_with_checks(
    [
        ImagingClassifier("mlp", random_state=0),
        GroupedEarlyStoppingMLP(learning_rate_init=0.01, random_state=0),
    ]
)
def test_sklearn_estimator_checks_mlp(estimator, check):
    check(estimator)
