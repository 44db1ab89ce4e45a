"""Honest validation of imaging classifiers: grouped CV, leave-site-out, bootstrap CIs
and permutation p-values.

Owns: :func:`evaluate_classifier` and its result :class:`ClassifierEvaluation` (its
tables, ROC curves and files).
Leaves: the table preparation and fold loop to :mod:`alsprog.biomarkers._folds`, the
pipeline to :mod:`alsprog.biomarkers._classifier`, the metrics to
:mod:`alsprog.biomarkers._metrics`, the warnings to :mod:`alsprog.biomarkers._guards`,
learning curves to :mod:`alsprog.biomarkers._learning_curve`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._progress import progress_bar
from alsprog._random import as_generator, child_seed
from alsprog._validation import check_int, check_level, check_n_jobs
from alsprog.biomarkers._classifier import ImagingClassifier
from alsprog.biomarkers._folds import (
    CVSpec,
    Split,
    _Data,
    _fit_predict,
    _fold_cache,
    _perm_chunk,
    _prepare,
    _splits,
)
from alsprog.biomarkers._guards import (
    check_harmonized_before_split,
    check_site_confounding,
    check_subject_overlap,
)
from alsprog.biomarkers._metrics import (
    binary_metrics,
    bootstrap_metrics,
    weighted_auc,
)
from alsprog.biomarkers._pvalue import (
    DEFAULT_N_PERMUTATIONS,
    format_pvalue,
    permutation_pvalue,
)
from alsprog.errors import ModelSpecificationError

__all__ = ["ClassifierEvaluation", "evaluate_classifier"]

logger = logging.getLogger(__name__)

#: Most bootstrap resamples or label permutations accepted.
MAX_RESAMPLES = 1_000_000


@dataclass(frozen=True, repr=False)
class ClassifierEvaluation:
    """Result of :func:`evaluate_classifier`.

    Attributes
    ----------
    folds : pandas.DataFrame
        One row per fold and repeat: ``repeat, fold, test_site, n_train_subjects,
        n_test_subjects, n_test_sessions`` and the four metrics.
    summary : pandas.DataFrame
        One row per metric (``roc_auc, balanced_accuracy, sensitivity,
        specificity``): ``estimate`` (pooled out-of-fold predictions, averaged over
        repeats), ``ci_lower``, ``ci_upper`` (percentile subject-level bootstrap),
        ``p_value`` (the permutation p-value, ``roc_auc`` row only; NaN elsewhere
        and without permutations), ``n_permutations`` and ``positive_class`` (the
        label sensitivity is computed for).
    permutation_pvalue : float or None
        ``(1 + #{permuted AUC >= AUC}) / (1 + n_permutations)``, labels permuted
        between subjects; None when ``n_permutations=0``.  At least
        ``1 / (n_permutations + 1)``: :attr:`pvalue_text` says so.
    permutation_aucs : numpy.ndarray
        The AUCs under permuted labels.
    predictions : pandas.DataFrame
        Out-of-fold scores: ``repeat, fold, row, subject, site, target, score,
        positive, predicted`` (``score`` larger = more likely ``pos_label``;
        ``positive``: the row's target is ``pos_label``).
    cv : str
        ``"subject"``, ``"site"``, ``"session"`` or ``"<k>-fold"``.
    pos_label : object
        The positive class: sensitivity is the share of its subjects' sessions
        called positive, and the ROC curve and AUC are about scoring it higher.
    features : list of str
        Feature columns used.
    level : float
        Coverage of the intervals.
    """

    folds: pd.DataFrame
    summary: pd.DataFrame
    permutation_pvalue: float | None
    permutation_aucs: npt.NDArray[np.float64]
    predictions: pd.DataFrame
    cv: str
    pos_label: Any
    features: list[str] = field(default_factory=list)
    level: float = 0.95

    @property
    def n_permutations(self) -> int:
        """Label permutations behind :attr:`permutation_pvalue` (0: none)."""
        return len(self.permutation_aucs)

    @property
    def pvalue_text(self) -> str:
        """The permutation p-value with its count and floor, e.g. ``"p = 0.012
        (1000 permutations; smallest possible 1/1001)"`` (see
        :func:`~alsprog.biomarkers.format_pvalue`)."""
        return format_pvalue(self.permutation_pvalue, self.n_permutations)

    def __repr__(self) -> str:
        auc = self.summary.loc["roc_auc"]
        p = "" if self.permutation_pvalue is None else f", {self.pvalue_text}"
        return (
            f"ClassifierEvaluation(cv={self.cv!r}, positive={self.pos_label!r}, "
            f"AUC={auc['estimate']:.3f} [{auc['ci_lower']:.3f}, "
            f"{auc['ci_upper']:.3f}]{p})"
        )

    def roc_curves(self, *, n_points: int = 101) -> pd.DataFrame:
        """ROC curve of each fold and their vertical mean.

        Returns
        -------
        pandas.DataFrame
            ``repeat, fold, fpr, tpr``; the mean curve has ``fold = "mean"`` and
            ``repeat = -1`` (true-positive rate interpolated on ``n_points`` evenly
            spaced false-positive rates and averaged over folds).
        """
        from sklearn.metrics import roc_curve

        grid = np.linspace(0.0, 1.0, n_points)
        rows, interp = [], []
        for (r, f), g in self.predictions.groupby(["repeat", "fold"], sort=True):
            pos = g["positive"].to_numpy(bool)
            if pos.all() or not pos.any():
                continue
            fpr, tpr, _ = roc_curve(pos, g["score"].to_numpy())
            rows.append(
                pd.DataFrame({"repeat": r, "fold": str(f), "fpr": fpr, "tpr": tpr})
            )
            t = np.interp(grid, fpr, tpr)
            t[0] = 0.0
            interp.append(t)
        if interp:
            rows.append(
                pd.DataFrame(
                    {
                        "repeat": -1,
                        "fold": "mean",
                        "fpr": grid,
                        "tpr": np.mean(interp, axis=0),
                    }
                )
            )
        return (
            pd.concat(rows, ignore_index=True)
            if rows
            else pd.DataFrame(columns=["repeat", "fold", "fpr", "tpr"])
        )

    def save(
        self,
        out: str | os.PathLike[str],
        *,
        force: bool = False,
        command: str = "alsprog classify",
    ) -> Path:
        """Write ``classifier.csv`` (the summary), ``classifier_folds.csv``,
        ``classifier_predictions.csv``, ``roc.csv`` and ``classifier.json`` into the
        folder ``out`` (built atomically): the names ``alsprog run`` gives them in
        ``biomarkers/``.

        ``out`` must be new, empty or written by alsprog (then replaced); with
        ``force``, a folder of other files takes alsprog's beside them, none of them
        deleted or overwritten.  ``command`` is recorded in the folder's manifest
        (the CLI records its options there, the seed included).

        Returns
        -------
        pathlib.Path
            The folder.

        Raises
        ------
        OutputError
            If alsprog may not write ``out``.
        """
        from alsprog._io import atomic_dir

        out = Path(out)
        with atomic_dir(out, command=command, force=force) as tmp:
            self.summary.rename_axis("metric").to_csv(tmp / "classifier.csv")
            self.folds.to_csv(tmp / "classifier_folds.csv", index=False)
            self.predictions.to_csv(tmp / "classifier_predictions.csv", index=False)
            self.roc_curves().to_csv(tmp / "roc.csv", index=False)
            meta = {
                "cv": self.cv,
                "pos_label": str(self.pos_label),
                "features": self.features,
                "level": self.level,
                "permutation_pvalue": self.permutation_pvalue,
                "n_permutations": self.n_permutations,
                "permutation_pvalue_text": self.pvalue_text,
            }
            (tmp / "classifier.json").write_text(json.dumps(meta, indent=2))
        return out


def evaluate_classifier(
    table: pd.DataFrame,
    target: str = "group",
    clf: ImagingClassifier | None = None,
    cv: CVSpec = "subject",
    *,
    subject: str = "subject_id",
    site: str = "site",
    n_repeats: int = 1,
    n_permutations: int = DEFAULT_N_PERMUTATIONS,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: Any = None,
    n_jobs: int | None = 1,
    progress: bool | None = None,
    positive: Any = None,
) -> ClassifierEvaluation:
    """Cross-validate an imaging classifier so that the estimate is honest.

    Every session of one subject stays in one fold; ``cv="site"`` leaves one site out
    at a time (the external-validation estimate).  The classifier's whole pipeline
    (imputation, ComBat, scaling, tuning) is refitted on each training fold.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table, one row per subject × visit; rows without any selected imaging
        feature (clinic-only visits) or without a target are left out.
    target : str, default "group"
        Two-class column.
    clf : ImagingClassifier, optional
        Default: ``ImagingClassifier()`` (logistic regression on every imaging
        column, age and sex).
    cv : {"subject", "site", "session"} or int, default "subject"
        5 (or ``cv``) subject-grouped stratified folds; leave-one-site-out; or
        ``"session"``: a naive row-level split that puts scans of one subject on both
        sides (for demonstrating leakage only; warns).
    subject, site : str
        Subject and site columns.
    n_repeats : int, default 1
        Repetitions of the grouped split with new shuffles (not for ``"site"``).
    n_permutations : int, default 200
        Label permutations (between subjects) for the p-value of the AUC; 0 skips.
        The smallest p-value possible is ``1 / (n_permutations + 1)``.  The default
        is :data:`~alsprog.biomarkers.DEFAULT_N_PERMUTATIONS`, as for
        ``alsprog classify`` and the run config.
    n_bootstrap : int, default 1000
        Subject-level bootstrap draws for the intervals.
    level : float, default 0.95
        Interval coverage.
    seed : int, Generator or None
        Seed of the folds, the classifiers, the bootstrap and the permutations.
    n_jobs : int, default 1
        joblib workers for folds and permutation chunks.
    progress : bool or None
        Progress of the permutations: ``None`` a bar on a terminal and plain lines
        now and then otherwise, ``True`` a bar, ``False`` nothing.
    positive : object, optional
        The positive class (sensitivity, ROC): a label of ``target``, or text equal
        to one but for case.  Default: the classifier's ``positive``, else the data
        dictionary's ALS label ``"als"`` found ignoring case (``"ALS"``); labels
        without it must name it here (0/1 labels take 1).

    Returns
    -------
    ClassifierEvaluation
        ``pos_label`` and the summary's ``positive_class`` say which class is
        positive.

    Raises
    ------
    DataValidationError
        A target with fewer or more than two classes, rows without a subject, fewer
        subjects than folds in a class.
    ModelSpecificationError
        Bad arguments, missing columns, features matching no column, fewer than two
        sites for ``cv="site"``; a ``positive`` that is not a class, matches both
        classes ignoring case, or is missing when no class is the ALS label.

    Warns
    -----
    ConfoundingWarning
        A site holds only one class.
    LeakageWarning
        Features already harmonised on all data; ``cv="session"``.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(30, 30, months=6, seed=1)
    >>> df = assemble(c.visits, c.subjects, c.imaging)
    >>> res = evaluate_classifier(df, n_permutations=0, n_bootstrap=50, seed=0)
    >>> list(res.summary.index), res.pos_label
    (['roc_auc', 'balanced_accuracy', 'sensitivity', 'specificity'], 'als')
    >>> bool(res.summary.loc["roc_auc", "estimate"] > 0.7)
    True
    """
    clf = ImagingClassifier() if clf is None else clf
    n_repeats, n_permutations, n_bootstrap, n_jobs, level = _check_options(
        n_repeats, n_permutations, n_bootstrap, n_jobs, progress, level
    )
    rng = as_generator(seed)
    data = _prepare(
        table,
        target=target,
        clf=clf,
        subject=subject,
        site=site,
        cv=cv,
        positive=positive,
    )
    all_splits, grouped = _checked_splits(
        data,
        target=target,
        features=data.features,
        covariates=clf.covariates_list(),
        site=site,
        cv=cv,
        n_repeats=n_repeats,
        rng=rng,
    )
    folds, predictions = _cross_validate(
        clf, data, all_splits, cv=cv, grouped=grouped, rng=rng, n_jobs=n_jobs
    )
    summary = bootstrap_metrics(
        predictions, n_bootstrap=n_bootstrap, level=level, rng=rng
    )
    perm_aucs, pvalue = _permutation_test(
        clf,
        data,
        all_splits[0],
        predictions,
        n_permutations=n_permutations,
        grouped=grouped,
        rng=rng,
        n_jobs=n_jobs,
        progress=progress,
    )
    summary = summary.assign(
        p_value=[pvalue if m == "roc_auc" and pvalue is not None else np.nan
                 for m in summary.index],
        n_permutations=len(perm_aucs),
        positive_class=str(data.pos_label),
    )  # fmt: skip
    cv_name = cv if isinstance(cv, str) else f"{cv}-fold"
    return ClassifierEvaluation(
        folds,
        summary,
        pvalue,
        perm_aucs,
        predictions,
        cv_name,
        data.pos_label,
        data.features,
        level,
    )


def _check_options(
    n_repeats: Any,
    n_permutations: Any,
    n_bootstrap: Any,
    n_jobs: Any,
    progress: Any,
    level: Any,
) -> tuple[int, int, int, int | None, float]:
    """:func:`evaluate_classifier`'s counts, workers, progress and level, checked."""
    n_repeats = check_int(n_repeats, "n_repeats", low=1, error=ModelSpecificationError)
    n_permutations = check_int(
        n_permutations,
        "n_permutations",
        low=0,
        high=MAX_RESAMPLES,
        error=ModelSpecificationError,
    )
    n_bootstrap = check_int(
        n_bootstrap,
        "n_bootstrap",
        low=1,
        high=MAX_RESAMPLES,
        error=ModelSpecificationError,
    )
    n_jobs = check_n_jobs(n_jobs, error=ModelSpecificationError)
    if progress not in (None, True, False):
        raise ModelSpecificationError(
            f"`progress` must be True, False or None; got {progress!r}."
        )
    level = check_level(level, error=ModelSpecificationError)
    return n_repeats, n_permutations, n_bootstrap, n_jobs, level


def _checked_splits(
    data: _Data,
    *,
    target: str,
    features: list[str],
    covariates: list[str],
    site: str,
    cv: Any,
    n_repeats: int,
    rng: np.random.Generator,
) -> tuple[list[list[Split]], bool]:
    """The leakage guards (site confounding, features harmonised before the split,
    subjects on both sides of a session split), then the splits of every repeat
    (one for ``cv="site"``) and whether they are grouped by subject.  Warnings
    point at the public function's caller."""
    if data.sites is not None:
        check_site_confounding(data.sites, data.y, stacklevel=4)
        check_harmonized_before_split(
            data.X.assign(**{target: data.y.astype(str)}),
            features,
            site=site,
            adjust_for=[*covariates, target],
            stacklevel=4,
        )
    if cv == "site":
        n_repeats = 1
    all_splits = [_splits(data, cv, rng) for _ in range(n_repeats)]
    if cv == "session":
        for tr, te in all_splits[0][:1]:
            check_subject_overlap(data.subjects[tr], data.subjects[te], stacklevel=4)
    return all_splits, cv != "session"


def _cross_validate(
    clf: ImagingClassifier,
    data: _Data,
    all_splits: list[list[Split]],
    *,
    cv: Any,
    grouped: bool,
    rng: np.random.Generator,
    n_jobs: int | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit and score every fold of every repeat: the fold table and the out-of-fold
    predictions (one child seed per fold, drawn in order from ``rng``)."""
    from joblib import Parallel, delayed

    jobs = [
        (r, f, s, child_seed(rng))
        for r, sp in enumerate(all_splits)
        for f, s in enumerate(sp)
    ]
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_predict)(clf, data, data.y, s, sd, grouped) for _, _, s, sd in jobs
    )
    return _fold_tables(data, jobs, [score for score, _ in results], cv)


def _fold_tables(
    data: _Data,
    jobs: list[tuple[int, int, Split, int]],
    scores: list[npt.NDArray[np.float64]],
    cv: Any,
    extra: dict[str, list[npt.NDArray[np.float64]]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fold table and the out-of-fold predictions of one estimator from its
    test-row scores per job ``(repeat, fold, split, seed)`` (a row is predicted
    positive when its score is above 0); ``extra`` adds prediction columns."""
    fold_rows, pred_parts = [], []
    for k, ((r, f, (tr, te), _), score) in enumerate(zip(jobs, scores, strict=True)):
        pos = data.positive[te]
        pred = score > 0
        m = binary_metrics(score, pos, pred)
        test_site = None
        if cv == "site":
            test_site = str(data.sites[te][0])  # type: ignore[index]
        fold_rows.append(
            {
                "repeat": r,
                "fold": f,
                "test_site": test_site,
                "n_train_subjects": len(pd.unique(data.subjects[tr])),
                "n_test_subjects": len(pd.unique(data.subjects[te])),
                "n_test_sessions": len(te),
                **m,
            }
        )
        pred_parts.append(
            pd.DataFrame(
                {
                    "repeat": r,
                    "fold": f,
                    "row": te,
                    "subject": data.subjects[te],
                    "site": None if data.sites is None else data.sites[te],
                    "target": data.y[te],
                    "score": score,
                    "positive": pos,
                    "predicted": pred,
                    **{name: cols[k] for name, cols in (extra or {}).items()},
                }
            )
        )
    folds = pd.DataFrame(fold_rows)
    predictions = pd.concat(pred_parts, ignore_index=True)
    return folds, predictions


def _permutation_test(
    clf: ImagingClassifier,
    data: _Data,
    splits: list[Split],
    predictions: pd.DataFrame,
    *,
    n_permutations: int,
    grouped: bool,
    rng: np.random.Generator,
    n_jobs: int | None,
    progress: bool | None,
) -> tuple[npt.NDArray[np.float64], float | None]:
    """The AUCs under labels permuted between subjects, and the permutation p-value
    of the first repeat's AUC (none without permutations)."""
    from joblib import Parallel, delayed

    perm_aucs = np.empty(0)
    pvalue = None
    if n_permutations:
        chunks = np.array_split(
            np.arange(n_permutations), max(1, min(n_permutations, n_permutations // 20))
        )
        seeds = [child_seed(rng) for _ in chunks]
        # the label-free steps (imputation, ComBat, scaling) fitted once per fold
        cache = _fold_cache(clf, data, splits, grouped)
        parts = []
        # the bar advances as chunks finish (not as they are handed out)
        with progress_bar(
            progress=progress,
            total=n_permutations,
            desc="permutations",
            unit="permutation",
        ) as bar:
            for part in Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(_perm_chunk)(clf, data, splits, len(c), sd, grouped, cache)
                for c, sd in zip(chunks, seeds, strict=True)
            ):
                parts.append(part)
                bar.update(len(part))
        perm_aucs = np.concatenate([np.asarray(p, np.float64) for p in parts])
        p0 = predictions[predictions["repeat"] == 0]
        observed = weighted_auc(p0["score"].to_numpy(), p0["positive"].to_numpy(bool))
        pvalue = permutation_pvalue(observed, perm_aucs.tolist())
    return perm_aucs, pvalue
