"""The permutation test's fast path gives the numbers of the full refit.

Under permuted labels only the final estimator is refitted per fold; imputation,
ComBat, encoding and scaling (which never see the label) are fitted once per training
fold.  The pinned AUCs below were computed by the full-refit code (alsprog before
the fold cache, every step refitted for every permutation) on the same inputs; the
per-fold scores are also compared bit for bit with :func:`_fit_predict`, and the
label shuffle with the former pandas implementation, copied here as the oracle.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from bio_testdata import confounded_table, noise_table
from sklearn.ensemble import RandomForestClassifier

from alsprog.biomarkers import ImagingClassifier, evaluate_classifier
from alsprog.biomarkers._folds import (
    _fit_predict,
    _fit_predict_cached,
    _fold_cache,
    _perm_chunk,
    _prepare,
    _splits,
    _SubjectShuffler,
)


def _mixed_table() -> pd.DataFrame:
    """Noise table where one subject's two sessions carry different labels (the
    row-level permutation branch)."""
    df = noise_table(n_subjects=40, n_sessions=2, n_features=4, seed=1)
    df.loc[0, "group"] = "control" if df.loc[0, "group"] == "als" else "als"
    return df


def _evaluate(df: pd.DataFrame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_classifier(df, n_bootstrap=1, n_jobs=1, progress=False, **kw)


# AUCs and p-values from the full-refit implementation (every pipeline step refitted
# for every permutation), n_bootstrap=1, n_jobs=1.
PINNED = {
    "combat_subject": (
        0.7142857142857143,
        [0.535390625, 0.5065625, 0.5541796875, 0.4787890625, 0.5738671875,
         0.4016015625],
    ),
    "combat_site": (1.0, [0.495078125, 0.500859375, 0.5701953125, 0.5649609375]),
    "rf_session": (0.5, [0.8315625, 0.7528125, 0.9071875]),
    "mixed_labels": (
        1.0,
        [0.4277673545966229, 0.5403377110694184, 0.4878048780487805],
    ),
}  # fmt: skip


def _case(name: str) -> tuple[pd.DataFrame, dict]:
    if name == "combat_subject":
        clf = ImagingClassifier(harmonize="combat")
        return confounded_table(0), dict(clf=clf, cv=3, n_permutations=6, seed=3)
    if name == "combat_site":
        clf = ImagingClassifier(harmonize="combat")
        return confounded_table(0), dict(clf=clf, cv="site", n_permutations=4, seed=4)
    if name == "rf_session":
        clf = ImagingClassifier(RandomForestClassifier(n_estimators=5), covariates=())
        return (
            noise_table(n_subjects=40, n_sessions=2, n_features=4, seed=1),
            dict(clf=clf, cv="session", n_permutations=3, seed=5),
        )
    clf = ImagingClassifier(covariates=())
    return _mixed_table(), dict(clf=clf, cv=3, n_permutations=3, seed=6)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("combat_subject", marks=pytest.mark.slow),
        pytest.param("combat_site", marks=pytest.mark.slow),
        "rf_session",
        "mixed_labels",
    ],
)
def test_permutation_aucs_pinned(name):
    df, kw = _case(name)
    res = _evaluate(df, **kw)
    p, aucs = PINNED[name]
    np.testing.assert_allclose(res.permutation_aucs, aucs, rtol=0, atol=1e-12)
    assert res.permutation_pvalue == pytest.approx(p, abs=1e-15)


def _data_and_splits(df, clf, cv, seed=0):
    data = _prepare(
        df, target="group", clf=clf, subject="subject_id", site="site", cv=cv
    )
    return data, _splits(data, cv, np.random.default_rng(seed))


@pytest.mark.parametrize("cv", [3, pytest.param("site", marks=pytest.mark.slow)])
def test_cached_fold_scores_equal_full_refit_combat(cv):
    clf = ImagingClassifier(harmonize="combat", random_state=1)
    data, splits = _data_and_splits(confounded_table(0), clf, cv)
    cache = _fold_cache(clf, data, splits, True)
    assert cache is not None
    yp = _SubjectShuffler(data)(np.random.default_rng(8))
    for k, split in enumerate(splits):
        full = _fit_predict(clf, data, yp, split, 123 + k, True)
        fast = _fit_predict_cached(cache, k, clf, data, yp, split, 123 + k, True)
        np.testing.assert_array_equal(fast[0], full[0])
        np.testing.assert_array_equal(fast[1], full[1])


def test_cached_chunk_equals_full_chunk_seeded_estimator():
    # the forest's seed is drawn per fold from the fold seed: the cache must use it
    est = RandomForestClassifier(n_estimators=4)
    clf = ImagingClassifier(est, harmonize="combat")
    data, splits = _data_and_splits(confounded_table(1), clf, 3)
    cache = _fold_cache(clf, data, splits, True)
    assert cache is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = _perm_chunk(clf, data, splits, 2, 77, True)
        fast = _perm_chunk(clf, data, splits, 2, 77, True, cache)
    assert fast == full


def test_no_cache_when_labels_reach_earlier_steps():
    df = noise_table(n_subjects=30, n_sessions=2, n_features=3, seed=2)
    for clf in (
        ImagingClassifier("svm", covariates=()),  # calibrated on inner folds
        ImagingClassifier(covariates=(), param_grid={"C": [0.1, 1.0]}),  # tuned
    ):
        data, splits = _data_and_splits(df, clf, 3)
        assert _fold_cache(clf, data, splits, True) is None


def test_cache_sees_only_training_rows():
    # ComBat, imputation and scaling are fitted on the training fold: wild test-fold
    # features leave the training matrix as it was
    clf = ImagingClassifier(harmonize="combat")
    df = confounded_table(0)
    data, splits = _data_and_splits(df, clf, 3)
    test = splits[0][1]
    wild = df.copy()
    feats = [c for c in df.columns if c.startswith("fa_")]
    wild.loc[test, feats] = wild.loc[test, feats] * 10 + 5
    data_w, _ = _data_and_splits(wild, clf, 3)
    a = _fold_cache(clf, data, splits[:1], True)
    b = _fold_cache(clf, data_w, splits[:1], True)
    np.testing.assert_array_equal(a.matrices[0][0], b.matrices[0][0])
    assert not np.allclose(a.matrices[0][1], b.matrices[0][1])


def _old_permute(subjects, y, rng):
    """The former per-permutation pandas shuffle (the oracle)."""
    per = pd.DataFrame({"s": subjects, "y": y})
    if per.groupby("s")["y"].nunique().max() != 1:
        return rng.permutation(y)
    first = per.groupby("s", sort=False)["y"].first()
    shuffled = pd.Series(rng.permutation(first.to_numpy()), index=first.index)
    return shuffled.loc[subjects].to_numpy(dtype=object)


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("labels", [("als", "control"), (0, 1)])
def test_subject_shuffle_matches_former_draws(mixed, labels):
    df = _mixed_table() if mixed else noise_table(40, 3, 2, seed=4)
    # sessions of a subject not adjacent: order of first appearance matters
    df = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    df["group"] = np.where(df["group"] == "als", labels[0], labels[1]).astype(object)
    clf = ImagingClassifier(covariates=(), positive=labels[0])
    data = _prepare(
        df, target="group", clf=clf, subject="subject_id", site="site", cv=3
    )
    shuffle = _SubjectShuffler(data)
    r_new, r_old = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(3):
        new = shuffle(r_new)
        old = _old_permute(data.subjects, data.y, r_old)
        assert new.dtype == old.dtype
        assert new.tolist() == old.tolist()
    if not mixed:  # one label per subject after the shuffle
        per = pd.Series(new).groupby(data.subjects).nunique()
        assert (per == 1).all()
