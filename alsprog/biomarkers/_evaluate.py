"""Honest validation of imaging classifiers: grouped CV, leave-site-out, bootstrap CIs,
permutation p-values and learning curves.

Owns: :func:`evaluate_classifier`, :class:`ClassifierEvaluation`,
:func:`learning_curve` and the table preparation and fold loop they share.
Leaves: the pipeline to :mod:`alsprog.biomarkers._classifier`, the metrics to
:mod:`alsprog.biomarkers._metrics`, the warnings to :mod:`alsprog.biomarkers._guards`.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import clone

from alsprog._progress import progress_bar
from alsprog._random import as_generator, child_seed
from alsprog._validation import check_int, check_level, check_n_jobs
from alsprog.biomarkers._classifier import (
    ImagingClassifier,
    check_feature_values,
    resolve_positive,
    select_features,
)
from alsprog.biomarkers._guards import (
    check_harmonized_before_split,
    check_site_confounding,
    check_subject_overlap,
)
from alsprog.biomarkers._metrics import binary_metrics, bootstrap_metrics
from alsprog.biomarkers._pvalue import (
    DEFAULT_N_PERMUTATIONS,
    format_pvalue,
    permutation_pvalue,
)
from alsprog.errors import DataValidationError, ModelSpecificationError, Problem

__all__ = [
    "ClassifierEvaluation",
    "LearningCurve",
    "evaluate_classifier",
    "learning_curve",
]

logger = logging.getLogger(__name__)

CVSpec = Literal["subject", "site", "session"] | int

#: Most bootstrap resamples or label permutations accepted.
MAX_RESAMPLES = 1_000_000
Split = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]


@dataclass(frozen=True)
class _Data:
    X: pd.DataFrame
    y: npt.NDArray[Any]
    subjects: npt.NDArray[Any]
    sites: npt.NDArray[Any] | None
    features: list[str]
    pos_label: Any
    positive: npt.NDArray[np.bool_]


def _prepare(
    table: pd.DataFrame,
    *,
    target: str,
    clf: ImagingClassifier,
    subject: str,
    site: str,
    cv: Any,
    positive: Any = None,
) -> _Data:
    """Check the table against the classifier and ``cv``; the arrays to split.

    The positive class is ``positive``, else the classifier's ``positive``, else the
    data dictionary's ALS label (see :func:`resolve_positive`, strict).
    """
    if not isinstance(clf, ImagingClassifier):
        raise ModelSpecificationError(
            f"`clf` must be an ImagingClassifier; got {type(clf).__name__}."
        )
    need_site = cv == "site" or clf.harmonize is not None
    if not isinstance(table, pd.DataFrame):
        raise ModelSpecificationError(
            f"`table` must be a pandas DataFrame; got {type(table).__name__}."
        )
    for name, col in (("target", target), ("subject", subject)):
        if col not in table.columns:
            raise ModelSpecificationError(f"`{name}` column {col!r} not in the table")
    if need_site and site not in table.columns:
        raise ModelSpecificationError(f"`site` column {site!r} not in the table")
    features = select_features(list(table.columns), clf.features)
    check_feature_values(table, features, "evaluate_classifier", subject=subject)
    keep = table[features].notna().any(axis=1) & table[target].notna()
    df = table.loc[keep].reset_index(drop=True)
    if df[subject].isna().any():
        n = int(df[subject].isna().sum())
        raise DataValidationError(
            [
                Problem(
                    f"{n} imaging row(s) have no subject; every session needs its "
                    "subject for grouped folds",
                    rule="required",
                    column=subject,
                )
            ],
            source="evaluate_classifier",
        )
    y = df[target].to_numpy(dtype=object)
    classes = sorted(pd.unique(y), key=str)
    if len(classes) != 2:
        raise DataValidationError(
            [
                Problem(
                    f"{len(classes)} class(es) {classes} among rows with imaging; "
                    "a classifier needs exactly two",
                    rule="classes",
                    column=target,
                    value=classes,
                )
            ],
            source="evaluate_classifier",
        )
    pos = _positive(classes, positive, clf.positive, target)
    sites = None
    if site in df.columns:
        sites = df[site].to_numpy(dtype=object)
        if need_site and pd.isna(sites).any():
            raise DataValidationError(
                [
                    Problem(
                        f"{int(pd.isna(sites).sum())} row(s) have no site",
                        rule="required",
                        column=site,
                    )
                ],
                source="evaluate_classifier",
            )
    data = _Data(
        df, y, df[subject].to_numpy(dtype=object), sites, features, pos, y == pos
    )
    _check_cv(data, cv)
    return data


def _positive(classes: list[Any], given: Any, of_clf: Any, target: str) -> Any:
    """The positive class from ``evaluate_classifier``'s and the classifier's
    ``positive`` (they must agree when both are given)."""
    pos = resolve_positive(
        classes, given if given is not None else of_clf, column=target
    )
    if given is not None and of_clf is not None:
        other = resolve_positive(classes, of_clf, column=target)
        if other != pos:
            raise ModelSpecificationError(
                f"`positive` {given!r} differs from the classifier's positive "
                f"{of_clf!r}; give one of them"
            )
    return pos


def _splits(
    data: _Data, cv: Any, rng: np.random.Generator, *, n_folds_default: int = 5
) -> list[Split]:
    from sklearn.model_selection import (
        LeaveOneGroupOut,
        StratifiedGroupKFold,
        StratifiedKFold,
    )

    idx = np.zeros(len(data.y))
    if cv == "site":
        return list(LeaveOneGroupOut().split(idx, data.y, data.sites))
    k = n_folds_default if cv in ("subject", "session") else cv
    if cv == "session":
        skf = StratifiedKFold(k, shuffle=True, random_state=child_seed(rng))
        return list(skf.split(idx, data.y))
    sgk = StratifiedGroupKFold(k, shuffle=True, random_state=child_seed(rng))
    return list(sgk.split(idx, data.y, data.subjects))


def _check_cv(data: _Data, cv: Any) -> None:
    if isinstance(cv, str):
        if cv not in ("subject", "site", "session"):
            raise ModelSpecificationError(
                f"`cv` must be 'subject', 'site', 'session' or an integer >= 2; "
                f"got {cv!r}."
            )
    else:
        check_int(cv, "cv", low=2, error=ModelSpecificationError)
    if cv == "site":
        n_sites = len(pd.unique(data.sites))  # type: ignore[arg-type]
        if n_sites < 2:
            raise ModelSpecificationError(
                f"cv='site' needs at least two sites; the table has {n_sites}"
            )
        return
    k = 5 if isinstance(cv, str) else int(cv)
    per_class = pd.Series(data.subjects).groupby(pd.Series(data.y)).nunique()
    n_subj = len(pd.unique(data.subjects))
    if n_subj < k or per_class.min() < k:
        raise DataValidationError(
            [
                Problem(
                    f"{n_subj} subjects ({', '.join(f'{c}: {n}' for c, n in per_class.items())}) "
                    f"for {k} folds; each class needs at least one subject per fold: "
                    "lower `cv`",
                    rule="folds",
                )
            ],
            source="evaluate_classifier",
        )


def _fit_predict(
    clf: ImagingClassifier,
    data: _Data,
    y: npt.NDArray[Any],
    split: Split,
    seed: int,
    grouped: bool,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    train, test = split
    model = clone(clf).set_params(positive=data.pos_label)
    if "random_state" in model.get_params():
        model.set_params(random_state=seed)
    sites = None if data.sites is None else data.sites
    kw: dict[str, Any] = {}
    if getattr(model, "harmonize", None) is not None and sites is not None:
        kw["sites"] = sites[train]
    model.fit(
        data.X.iloc[train],
        y[train],
        groups=data.subjects[train] if grouped else None,
        **kw,
    )
    kwp = {"sites": sites[test]} if "sites" in kw else {}  # type: ignore[index]
    score = model.positive_score(data.X.iloc[test], **kwp)
    return score, score > 0


def _run_folds(
    clf: ImagingClassifier,
    data: _Data,
    y: npt.NDArray[Any],
    splits: list[Split],
    seeds: list[int],
    grouped: bool,
) -> list[tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]]:
    return [
        _fit_predict(clf, data, y, s, sd, grouped)
        for s, sd in zip(splits, seeds, strict=True)
    ]


def _permute_subject_labels(data: _Data, rng: np.random.Generator) -> npt.NDArray[Any]:
    per = pd.DataFrame({"s": data.subjects, "y": data.y})
    constant = per.groupby("s")["y"].nunique().max() == 1
    if not constant:
        return rng.permutation(data.y)
    first = per.groupby("s", sort=False)["y"].first()
    shuffled = pd.Series(rng.permutation(first.to_numpy()), index=first.index)
    return shuffled.loc[data.subjects].to_numpy(dtype=object)


def _perm_chunk(
    clf: ImagingClassifier,
    data: _Data,
    splits: list[Split],
    n: int,
    seed: int,
    grouped: bool,
) -> list[float]:
    from alsprog.biomarkers._metrics import weighted_auc

    rng = as_generator(seed)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n):
            yp = _permute_subject_labels(data, rng)
            seeds = [child_seed(rng) for _ in splits]
            res = _run_folds(clf, data, yp, splits, seeds, grouped)
            score = np.empty(len(yp))
            for (_, test), (s, _) in zip(splits, res, strict=True):
                score[test] = s
            out.append(weighted_auc(score, yp == data.pos_label))
    return out


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
    from joblib import Parallel, delayed

    clf = ImagingClassifier() if clf is None else clf
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
    if data.sites is not None:
        check_site_confounding(data.sites, data.y, stacklevel=3)
        check_harmonized_before_split(
            data.X.assign(**{target: data.y.astype(str)}),
            data.features,
            site=site,
            adjust_for=[*clf.covariates_list(), target],
            stacklevel=3,
        )
    if cv == "site":
        n_repeats = 1
    grouped = cv != "session"
    all_splits = [_splits(data, cv, rng) for _ in range(n_repeats)]
    if cv == "session":
        for tr, te in all_splits[0][:1]:
            check_subject_overlap(data.subjects[tr], data.subjects[te], stacklevel=3)
    jobs = [
        (r, f, s, child_seed(rng))
        for r, sp in enumerate(all_splits)
        for f, s in enumerate(sp)
    ]
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_predict)(clf, data, data.y, s, sd, grouped) for _, _, s, sd in jobs
    )
    fold_rows, pred_parts = [], []
    for (r, f, (tr, te), _), (score, pred) in zip(jobs, results, strict=True):
        pos = data.positive[te]
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
                }
            )
        )
    folds = pd.DataFrame(fold_rows)
    predictions = pd.concat(pred_parts, ignore_index=True)
    summary = bootstrap_metrics(
        predictions, n_bootstrap=n_bootstrap, level=level, rng=rng
    )
    perm_aucs = np.empty(0)
    pvalue = None
    if n_permutations:
        chunks = np.array_split(
            np.arange(n_permutations), max(1, min(n_permutations, n_permutations // 20))
        )
        seeds = [child_seed(rng) for _ in chunks]
        parts = []
        # the bar advances as chunks finish (not as they are handed out)
        with progress_bar(
            progress=progress,
            total=n_permutations,
            desc="permutations",
            unit="permutation",
        ) as bar:
            for part in Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(_perm_chunk)(clf, data, all_splits[0], len(c), sd, grouped)
                for c, sd in zip(chunks, seeds, strict=True)
            ):
                parts.append(part)
                bar.update(len(part))
        perm_aucs = np.concatenate([np.asarray(p, np.float64) for p in parts])
        p0 = predictions[predictions["repeat"] == 0]
        from alsprog.biomarkers._metrics import weighted_auc

        observed = weighted_auc(p0["score"].to_numpy(), p0["positive"].to_numpy(bool))
        pvalue = permutation_pvalue(observed, perm_aucs.tolist())
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
