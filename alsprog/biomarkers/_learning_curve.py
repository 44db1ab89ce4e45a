"""Learning curves: held-out AUC against the number of training subjects.

Owns: :func:`learning_curve` and its result :class:`LearningCurve`.
Leaves: the table preparation and fold loop to :mod:`alsprog.biomarkers._folds`, the
pipeline to :mod:`alsprog.biomarkers._classifier`, figures to :mod:`alsprog.plots`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._random import as_generator, child_seed
from alsprog._validation import check_int, check_level, check_n_jobs
from alsprog.biomarkers._classifier import ImagingClassifier
from alsprog.biomarkers._folds import _Data, _fit_predict, _prepare, _splits
from alsprog.errors import ModelSpecificationError

__all__ = ["LearningCurve", "learning_curve"]


@dataclass(frozen=True, repr=False)
class LearningCurve:
    """Result of :func:`learning_curve`.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per training size, repeat and fold: ``n_train_subjects, repeat,
        fold, test_auc, train_auc``.
    summary : pandas.DataFrame
        Per training size: ``test_auc_mean, test_auc_sd, test_auc_lower,
        test_auc_upper`` (central ``level`` range of the draws), ``train_auc_mean``.
    level : float
    pos_label : object
        The positive class the AUCs score.
    """

    scores: pd.DataFrame
    summary: pd.DataFrame
    level: float = 0.9
    pos_label: Any = None

    def __repr__(self) -> str:
        return (
            f"LearningCurve({len(self.summary)} sizes, {len(self.scores)} fits, "
            f"positive={self.pos_label!r})"
        )


def _lc_fit(
    clf: ImagingClassifier,
    data: _Data,
    train: npt.NDArray[np.intp],
    test: npt.NDArray[np.intp],
    seed: int,
) -> tuple[float, float]:
    from alsprog.biomarkers._metrics import weighted_auc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s_te, _ = _fit_predict(clf, data, data.y, (train, test), seed, True)
        s_tr, _ = _fit_predict(clf, data, data.y, (train, train), seed, True)
    return (
        weighted_auc(s_te, data.positive[test]),
        weighted_auc(s_tr, data.positive[train]),
    )


def learning_curve(
    table: pd.DataFrame,
    target: str = "group",
    clf: ImagingClassifier | None = None,
    *,
    train_sizes: Any = (10, 20, 40, 80),
    cv: int = 5,
    n_repeats: int = 3,
    subject: str = "subject_id",
    level: float = 0.9,
    seed: Any = None,
    n_jobs: int | None = 1,
    positive: Any = None,
) -> LearningCurve:
    """Held-out AUC against the number of training subjects.

    For each repeat the subjects are split into ``cv`` grouped stratified folds; from
    each training fold ``n`` subjects are drawn (stratified by class, all their
    sessions) and the classifier is scored on the full test fold and on its own
    training rows.  Small ``n`` shows both the optimism of the training AUC and the
    spread of the held-out AUC that small studies report.

    Parameters
    ----------
    table, target, clf, subject, positive
        As in :func:`evaluate_classifier`.
    train_sizes : sequence of int, default (10, 20, 40, 80)
        Numbers of training subjects (>= 4; sizes larger than a training fold are
        dropped).
    cv : int, default 5
        Grouped folds.
    n_repeats : int, default 3
        Repetitions with new folds and subsamples.
    level : float, default 0.9
        Central range of the test AUCs reported in ``summary``.
    seed, n_jobs
        As in :func:`evaluate_classifier`.

    Returns
    -------
    LearningCurve

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(30, 30, months=0, seed=1)
    >>> df = assemble(c.visits, c.subjects, c.imaging)
    >>> lc = learning_curve(df, train_sizes=(10, 40), n_repeats=1, seed=0)
    >>> lc.summary.index.tolist()
    [10, 40]
    """
    from joblib import Parallel, delayed

    clf = ImagingClassifier() if clf is None else clf
    cv = check_int(cv, "cv", low=2, error=ModelSpecificationError)
    n_repeats = check_int(n_repeats, "n_repeats", low=1, error=ModelSpecificationError)
    level = check_level(level, error=ModelSpecificationError)
    n_jobs = check_n_jobs(n_jobs, error=ModelSpecificationError)
    if isinstance(train_sizes, str) or not hasattr(train_sizes, "__iter__"):
        train_sizes = [train_sizes]
    sizes = sorted(
        {
            check_int(n, "train_sizes", low=4, error=ModelSpecificationError)
            for n in train_sizes
        }
    )
    if not sizes:
        raise ModelSpecificationError(
            "`train_sizes` must hold at least one number of training subjects."
        )
    rng = as_generator(seed)
    data = _prepare(
        table,
        target=target,
        clf=clf,
        subject=subject,
        site="site",
        cv=cv,
        positive=positive,
    )
    jobs = []
    for r in range(n_repeats):
        for f, (tr, te) in enumerate(_splits(data, cv, rng)):
            subj = pd.Series(data.subjects[tr]).drop_duplicates()
            lab = (
                pd.Series(data.y[tr], index=data.subjects[tr]).groupby(level=0).first()
            )
            for n in sizes:
                if n > len(subj):
                    continue
                frac = lab.value_counts(normalize=True)
                chosen: list[Any] = []
                for c, pc in frac.items():
                    pool = lab.index[lab == c].to_numpy()
                    k = max(2, round(n * pc))
                    chosen += list(rng.choice(pool, min(k, len(pool)), replace=False))
                rows = tr[np.isin(data.subjects[tr], chosen)]
                jobs.append((n, r, f, rows, te, child_seed(rng)))
    if not jobs:
        largest = max(
            len(np.unique(data.subjects[tr])) for tr, _ in _splits(data, cv, rng)
        )
        raise ModelSpecificationError(
            f"`train_sizes` {sizes} are all larger than the training folds "
            f"(at most {largest} subjects with cv={cv}); choose smaller sizes."
        )
    res = Parallel(n_jobs=n_jobs)(
        delayed(_lc_fit)(clf, data, rows, te, sd) for _, _, _, rows, te, sd in jobs
    )
    scores = pd.DataFrame(
        [
            {
                "n_train_subjects": n,
                "repeat": r,
                "fold": f,
                "test_auc": a,
                "train_auc": b,
            }
            for (n, r, f, *_), (a, b) in zip(jobs, res, strict=True)
        ]
    )
    alpha = (1 - level) / 2
    g = scores.groupby("n_train_subjects")
    summary = pd.DataFrame(
        {
            "test_auc_mean": g["test_auc"].mean(),
            "test_auc_sd": g["test_auc"].std(ddof=1),
            "test_auc_lower": g["test_auc"].quantile(alpha),
            "test_auc_upper": g["test_auc"].quantile(1 - alpha),
            "train_auc_mean": g["train_auc"].mean(),
        }
    )
    return LearningCurve(scores, summary, level, data.pos_label)
