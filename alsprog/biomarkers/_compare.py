"""Honest comparison of imaging classifiers: the same folds, paired AUC differences.

Owns: :func:`compare_classifiers` and its result :class:`ClassifierComparison`, and
:func:`paired_bootstrap`, the subject-level bootstrap that applies one set of subject
resamples to every estimator's out-of-fold predictions (common random numbers).
Leaves: the table preparation, the splits and the guards to
:mod:`alsprog.biomarkers._folds` and :mod:`alsprog.biomarkers._guards`, the pipeline
to :mod:`alsprog.biomarkers._classifier`, the metrics and the per-estimator
bootstrap to :mod:`alsprog.biomarkers._metrics`, one estimator's evaluation (with
its permutation test) to :mod:`alsprog.biomarkers._evaluate`.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._random import as_generator, child_seed
from alsprog.biomarkers._classifier import _ESTIMATORS, ImagingClassifier
from alsprog.biomarkers._evaluate import (
    ClassifierEvaluation,
    _check_options,
    _checked_splits,
    _fold_tables,
)
from alsprog.biomarkers._features import select_features
from alsprog.biomarkers._folds import (
    CVSpec,
    Split,
    _Data,
    _fitted_fold,
    _prepare,
)
from alsprog.biomarkers._metrics import (
    bootstrap_metrics,
    percentile_interval,
    subject_weights,
    weighted_auc,
)
from alsprog.errors import ModelSpecificationError

__all__ = [
    "ClassifierComparison",
    "bootstrap_pvalue",
    "compare_classifiers",
    "paired_bootstrap",
]

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]

#: Probabilities are clipped to [EPS, 1 - EPS] for the log loss.
_EPS = 1e-15


@dataclass(frozen=True, repr=False)
class ClassifierComparison:
    """Result of :func:`compare_classifiers`.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per estimator (index ``estimator``, in the order given):
        ``roc_auc, roc_auc_ci_lower, roc_auc_ci_upper`` (pooled out-of-fold
        predictions, percentile subject-level bootstrap, exactly as
        :func:`evaluate_classifier` reports them), ``balanced_accuracy,
        sensitivity, specificity`` (at score 0, i.e. probability 1/2 of the
        class-weighted fit), ``brier_score, brier_score_ci_lower,
        brier_score_ci_upper`` and ``log_loss`` of the classifier's
        probability of the positive class (for ``"svm"`` its sigmoid
        calibration on inner subject-grouped folds), ``n_subjects`` and
        ``n_sessions``.  Every metric is averaged over repeats.
    differences : pandas.DataFrame
        One row per estimator other than the reference: ``reference``,
        ``roc_auc``, ``reference_roc_auc``, ``difference`` (``roc_auc -
        reference_roc_auc``), ``ci_lower``, ``ci_upper`` (paired percentile
        bootstrap), ``p_value`` (two-sided paired bootstrap, see
        :func:`compare_classifiers`), ``n_bootstrap`` (resamples with a finite
        difference) and ``folds_better`` (folds, over all repeats, where the
        estimator's AUC exceeds the reference's; out of ``n_folds``).
    evaluations : dict of str to ClassifierEvaluation
        Each estimator's evaluation, equal to :func:`evaluate_classifier` with
        the same ``seed`` and ``n_permutations=0``; the predictions carry an extra
        ``probability`` column (of the positive class).
    folds : pandas.DataFrame
        ROC AUC of each fold (rows ``repeat, fold``) and estimator (columns).
    reference : str
        The estimator the others are compared with.
    cv : str
        ``"subject"``, ``"site"``, ``"session"`` or ``"<k>-fold"``.
    pos_label : object
        The positive class.
    level : float
        Coverage of the intervals.
    seconds : pandas.Series
        Seconds spent fitting and scoring each estimator, summed over folds (wall
        time inside the workers; not part of the results proper).
    """

    summary: pd.DataFrame
    differences: pd.DataFrame
    evaluations: dict[str, ClassifierEvaluation]
    folds: pd.DataFrame
    reference: str
    cv: str
    pos_label: Any
    level: float = 0.95
    seconds: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))

    @property
    def estimators(self) -> list[str]:
        """The estimators' names, in the order given."""
        return list(self.summary.index)

    def __repr__(self) -> str:
        lines = [
            f"ClassifierComparison(cv={self.cv!r}, positive={self.pos_label!r}, "
            f"reference={self.reference!r}, level={self.level:g})"
        ]
        width = max(len(n) for n in self.estimators)
        for name in self.estimators:
            row = self.summary.loc[name]
            text = (
                f"  {name:<{width}}  AUC {row['roc_auc']:.3f} "
                f"[{row['roc_auc_ci_lower']:.3f}, {row['roc_auc_ci_upper']:.3f}]"
            )
            if name in self.differences.index:
                d = self.differences.loc[name]
                text += (
                    f"; minus {self.reference} {d['difference']:+.3f} "
                    f"[{d['ci_lower']:+.3f}, {d['ci_upper']:+.3f}], "
                    f"p = {d['p_value']:.3g}"
                )
            lines.append(text)
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """The comparison as one table: :attr:`summary` with the paired AUC
        difference from the reference (``difference, difference_ci_lower,
        difference_ci_upper, p_value``; 0 and NaN on the reference's row).

        Returns
        -------
        pandas.DataFrame
            One row per estimator, index ``estimator``.
        """
        d = self.differences[["difference", "ci_lower", "ci_upper", "p_value"]]
        d = d.rename(
            columns={
                "ci_lower": "difference_ci_lower",
                "ci_upper": "difference_ci_upper",
            }
        )
        out = self.summary.join(d)
        ref = self.reference
        out.loc[ref, ["difference", "difference_ci_lower", "difference_ci_upper"]] = 0.0
        return out


def compare_classifiers(
    table: pd.DataFrame,
    estimators: Sequence[Any] | Mapping[str, Any] = ("logistic", "svm", "mlp"),
    target: str = "group",
    cv: CVSpec = "subject",
    *,
    reference: str | None = None,
    features: str | Sequence[str] | None = None,
    harmonize: str | None = "combat",
    covariates: Sequence[str] = ("age", "sex"),
    subject: str = "subject_id",
    site: str = "site",
    n_repeats: int = 1,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: Any = None,
    n_jobs: int | None = 1,
    positive: Any = None,
) -> ClassifierComparison:
    """Cross-validate several imaging classifiers on the same folds and compare
    their ROC AUC with a paired subject-level bootstrap.

    Every estimator is fitted and scored on exactly the same subject-grouped (or
    leave-site-out) splits, with the same per-fold seeds, and its intervals come
    from the same subject resamples: each estimator's evaluation equals
    :func:`evaluate_classifier` with the same ``seed`` (and no permutations).  The
    difference of each estimator's AUC from the reference's is then bootstrapped
    over subjects with one set of resamples for both, so what the two share (the
    same hard and easy subjects) cancels.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table, one row per subject × visit, as for
        :func:`evaluate_classifier`.
    estimators : sequence or dict, default ("logistic", "svm", "mlp")
        At least two, each ``"logistic"``, ``"svm"``, ``"rf"`` or ``"mlp"`` (an
        :class:`ImagingClassifier` built from ``features``, ``harmonize`` and
        ``covariates``), an :class:`ImagingClassifier` (used as given; named by its
        ``estimator``), a scikit-learn classifier (wrapped like a string; named by
        its class), or a ``(name, estimator)`` pair; or a dict ``{name:
        estimator}``.  Names must be unique.
    target : str, default "group"
        Two-class column.
    cv : {"subject", "site", "session"} or int, default "subject"
        As in :func:`evaluate_classifier`.
    reference : str, optional
        Name of the estimator the others are compared with; default the first.
    features : str or sequence of str, optional
        Feature columns or patterns of the estimators built here (default: every
        imaging column).  All estimators must keep the same sessions.
    harmonize : {"combat", None}, default "combat"
        In-fold ComBat of the estimators built here.
    covariates : sequence of str, default ("age", "sex")
        Covariates of the estimators built here.
    subject, site : str
        Subject and site columns.
    n_repeats : int, default 1
        Repetitions of the grouped split (not for ``"site"``); metrics are averaged
        over repeats, resamples are of subjects.
    n_bootstrap : int, default 1000
        Subject-level bootstrap draws, shared by every estimator.
    level : float, default 0.95
        Interval coverage.
    seed : int, Generator or None
        Seed of the folds, the fits and the bootstrap.
    n_jobs : int, default 1
        joblib workers over estimators × folds.
    positive : object, optional
        The positive class, as in :func:`evaluate_classifier`; every estimator
        must agree on it.

    Returns
    -------
    ClassifierComparison

    Raises
    ------
    ModelSpecificationError
        Fewer than two estimators, an unknown estimator name, a duplicate name, a
        ``reference`` that is not one of them, estimators that keep different
        sessions or disagree on the positive class; and every error of
        :func:`evaluate_classifier`.
    DataValidationError
        As :func:`evaluate_classifier`.

    Warns
    -----
    ConfoundingWarning, LeakageWarning
        As :func:`evaluate_classifier` (once, not per estimator).

    See Also
    --------
    evaluate_classifier : one estimator, with a permutation p-value.

    Notes
    -----
    The p-value of a difference is the two-sided paired percentile-bootstrap
    p-value, ``min(1, 2 min((1 + #{d* <= 0}), (1 + #{d* >= 0})) / (1 + B))`` over
    the ``B`` resampled differences ``d*``.  It is the inversion of the reported
    percentile interval (the interval excludes 0 about when ``p < 1 - level``), it
    resamples whole subjects (all their sessions, in every repeat, at once), so
    repeated scans are handled without a model of their correlation, and it needs
    no normal approximation near AUC = 1.  A clustered DeLong test (Obuchowski
    1997) would give a similar answer for one repeat but not average over repeats
    nor share the resamples of the intervals.  Like DeLong's test, it treats the
    fold models as fixed: the variability from training on other subjects is not
    in it (no unbiased estimate of that exists for K-fold CV, Bengio & Grandvalet
    2004), so a small p-value says the two sets of predictions differ on these
    subjects, not that one learning algorithm is better on new training sets.
    :attr:`ClassifierComparison.folds` shows whether the fold AUCs agree.

    References
    ----------
    Obuchowski NA (1997). Nonparametric analysis of clustered ROC curve data.
    Biometrics 53:567-578.  Bengio Y, Grandvalet Y (2004). No unbiased estimator
    of the variance of K-fold cross-validation. JMLR 5:1089-1105.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(20, 20, months=0, seed=1)
    >>> df = assemble(c.visits, c.subjects, c.imaging)
    >>> res = compare_classifiers(df, ("logistic", "svm"), cv=3, harmonize=None,
    ...                           n_bootstrap=20, seed=0)
    >>> res.estimators, list(res.differences.index)
    (['logistic', 'svm'], ['svm'])
    >>> bool(res.summary.loc["svm", "roc_auc"] > 0.7)
    True
    """
    from joblib import Parallel, delayed

    clfs = _resolve_estimators(
        estimators, features=features, harmonize=harmonize, covariates=covariates
    )
    names = list(clfs)
    if reference is None:
        reference = names[0]
    elif not isinstance(reference, str) or reference not in clfs:
        raise ModelSpecificationError(
            f"`reference` {reference!r} is not one of the estimators "
            f"{', '.join(map(repr, names))}."
        )
    n_repeats, _, n_bootstrap, n_jobs, level = _check_options(
        n_repeats, 0, n_bootstrap, n_jobs, None, level
    )
    rng = as_generator(seed)
    datas = {
        name: _prepare(
            table,
            target=target,
            clf=clf,
            subject=subject,
            site=site,
            cv=cv,
            positive=positive,
        )
        for name, clf in clfs.items()
    }
    data0 = _check_same_rows(table, target, clfs, datas)
    feats = list(dict.fromkeys(f for d in datas.values() for f in d.features))
    covs = list(
        dict.fromkeys(c for clf in clfs.values() for c in clf.covariates_list())
    )
    # the draws of evaluate_classifier, in its order: splits, one seed per fold, then
    # the bootstrap; every estimator gets the same ones (common random numbers)
    all_splits, grouped = _checked_splits(
        data0,
        target=target,
        features=feats,
        covariates=[c for c in covs if c in data0.X.columns],
        site=site,
        cv=cv,
        n_repeats=n_repeats,
        rng=rng,
    )
    jobs = [
        (r, f, s, child_seed(rng))
        for r, sp in enumerate(all_splits)
        for f, s in enumerate(sp)
    ]
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_predict_proba)(clfs[name], datas[name], s, sd, grouped)
        for name in names
        for _, _, s, sd in jobs
    )
    cv_name = cv if isinstance(cv, str) else f"{cv}-fold"
    evaluations: dict[str, ClassifierEvaluation] = {}
    seconds = {}
    for k, name in enumerate(names):
        part = results[k * len(jobs) : (k + 1) * len(jobs)]
        folds, predictions = _fold_tables(
            datas[name],
            jobs,
            [score for score, _, _ in part],
            cv,
            {"probability": [proba for _, proba, _ in part]},
        )
        summary = bootstrap_metrics(
            predictions, n_bootstrap=n_bootstrap, level=level, rng=copy.deepcopy(rng)
        ).assign(p_value=np.nan, n_permutations=0, positive_class=str(data0.pos_label))
        evaluations[name] = ClassifierEvaluation(
            folds,
            summary,
            None,
            np.empty(0),
            predictions,
            cv_name,
            data0.pos_label,
            datas[name].features,
            level,
        )
        seconds[name] = float(sum(t for _, _, t in part))
        logger.info("%s: %d folds in %.1f s", name, len(jobs), seconds[name])
    preds = {name: ev.predictions for name, ev in evaluations.items()}
    boot = paired_bootstrap(preds, n_bootstrap=n_bootstrap, rng=rng)
    summary = _summary(evaluations, boot, level)
    differences = _differences(evaluations, boot, reference, level)
    fold_auc = pd.DataFrame(
        {name: ev.folds["roc_auc"].to_numpy() for name, ev in evaluations.items()},
        index=pd.MultiIndex.from_frame(evaluations[names[0]].folds[["repeat", "fold"]]),
    )
    fold_auc.columns.name = "estimator"
    differences["folds_better"] = [
        int((fold_auc[n] > fold_auc[reference]).sum()) for n in differences.index
    ]
    differences["n_folds"] = len(fold_auc)
    return ClassifierComparison(
        summary,
        differences,
        evaluations,
        fold_auc,
        reference,
        cv_name,
        data0.pos_label,
        level,
        pd.Series(seconds, name="seconds").rename_axis("estimator"),
    )


def paired_bootstrap(
    predictions: Mapping[str, pd.DataFrame],
    *,
    n_bootstrap: int,
    rng: np.random.Generator,
) -> dict[str, npt.NDArray[np.float64]]:
    """Subject-level bootstrap of several estimators' out-of-fold predictions, with
    the same resamples for all.

    Parameters
    ----------
    predictions : dict of str to pandas.DataFrame
        Each with ``repeat, subject, score, positive`` (and optionally
        ``probability``), rows in the same order for every estimator (the same
        splits).
    n_bootstrap : int
        Resamples of subjects (with replacement; all sessions of a subject in all
        repeats together), drawn as :func:`bootstrap_metrics` draws them, so the
        same ``rng`` state gives its resamples.
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``"roc_auc"``, ``"brier_score"``, ``"log_loss"``: arrays of shape
        ``(n_bootstrap + 1, n_estimators)``, row 0 the estimate on the data and
        the others the resamples, each averaged over repeats (NaN where a
        resample lacks a class, or without probabilities).

    Examples
    --------
    >>> p = pd.DataFrame({"repeat": 0, "subject": list("abcd"),
    ...                   "score": [0.1, 0.4, 0.35, 0.8],
    ...                   "positive": [False, False, True, True]})
    >>> out = paired_bootstrap({"m": p, "n": p}, n_bootstrap=5,
    ...                        rng=np.random.default_rng(0))
    >>> out["roc_auc"].shape, float(out["roc_auc"][0, 0])
    ((6, 2), 0.75)
    """
    names = list(predictions)
    first = predictions[names[0]]
    for name in names[1:]:
        p = predictions[name]
        if len(p) != len(first) or not (
            np.array_equal(
                p["subject"].to_numpy(dtype=object),
                first["subject"].to_numpy(dtype=object),
            )
            and np.array_equal(p["repeat"].to_numpy(), first["repeat"].to_numpy())
            and np.array_equal(
                p["positive"].to_numpy(bool), first["positive"].to_numpy(bool)
            )
        ):
            raise ModelSpecificationError(
                f"the predictions of {name!r} are not of the same sessions, in the "
                f"same order, as those of {names[0]!r}; a paired bootstrap needs "
                "the same splits"
            )
    codes, subjects = pd.factorize(first["subject"])
    repeats = first["repeat"].to_numpy()
    pos = first["positive"].to_numpy(bool)
    rep_rows = [np.flatnonzero(repeats == r) for r in np.unique(repeats)]
    score = np.stack([predictions[n]["score"].to_numpy(np.float64) for n in names])
    proba = np.stack(
        [
            predictions[n]["probability"].to_numpy(np.float64)
            if "probability" in predictions[n]
            else np.full(len(first), np.nan)
            for n in names
        ]
    )
    p = np.clip(proba, _EPS, 1.0 - _EPS)
    sq_err = (proba - pos) ** 2
    nll = -(pos * np.log(p) + (~pos) * np.log1p(-p))
    n_subj = len(subjects)
    out = {k: np.empty((n_bootstrap + 1, len(names))) for k in _BOOT_METRICS}
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for b in range(n_bootstrap + 1):
            if b == 0:
                w = np.ones(len(codes))
            else:
                w = subject_weights(codes, n_subj, rng)
            for k in range(len(names)):
                aucs, briers, losses = [], [], []
                for rows in rep_rows:
                    wr = w[rows]
                    aucs.append(weighted_auc(score[k, rows], pos[rows], wr))
                    tot = wr.sum()
                    briers.append(np.dot(wr, sq_err[k, rows]) / tot)
                    losses.append(np.dot(wr, nll[k, rows]) / tot)
                out["roc_auc"][b, k] = np.nanmean(aucs)
                out["brier_score"][b, k] = np.nanmean(briers)
                out["log_loss"][b, k] = np.nanmean(losses)
    return out


_BOOT_METRICS = ("roc_auc", "brier_score", "log_loss")


def _resolve_estimators(
    estimators: Any,
    *,
    features: Any,
    harmonize: Any,
    covariates: Any,
) -> dict[str, ImagingClassifier]:
    """``estimators`` as ``{name: ImagingClassifier}``, in order, checked."""
    if isinstance(estimators, Mapping):
        items = [(k, v) for k, v in estimators.items()]
    elif isinstance(estimators, str | bytes) or not isinstance(estimators, Sequence):
        raise ModelSpecificationError(
            "`estimators` must be a list of at least two estimators (names such as "
            f"'logistic', ImagingClassifier objects) or a dict; got {estimators!r}."
        )
    else:
        items = []
        for e in estimators:
            if isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str):
                items.append(e)
            elif isinstance(e, str):
                items.append((e, e))
            elif isinstance(e, ImagingClassifier):
                inner = e.estimator
                items.append((inner if isinstance(inner, str) else _cls(inner), e))
            else:
                items.append((_cls(e), e))
    if len(items) < 2:
        raise ModelSpecificationError(
            f"`estimators` must name at least two estimators to compare; got "
            f"{len(items)} ({', '.join(repr(n) for n, _ in items) or 'none'})."
        )
    out: dict[str, ImagingClassifier] = {}
    for name, spec in items:
        if not isinstance(name, str) or not name:
            raise ModelSpecificationError(
                f"estimator names must be non-empty strings; got {name!r}."
            )
        if name in out:
            raise ModelSpecificationError(
                f"estimator name {name!r} is given twice in `estimators`; name each "
                "one, e.g. [('mlp_small', clf1), ('mlp_large', clf2)] or a dict."
            )
        if isinstance(spec, ImagingClassifier):
            out[name] = spec
            continue
        if isinstance(spec, str):
            if spec not in _ESTIMATORS:
                raise ModelSpecificationError(
                    f"`estimators` entry {spec!r} is not a known estimator; use one "
                    f"of {', '.join(map(repr, _ESTIMATORS))}, an ImagingClassifier "
                    "or a scikit-learn classifier."
                )
        elif not (hasattr(spec, "fit") and hasattr(spec, "get_params")):
            raise ModelSpecificationError(
                f"`estimators` entry {name!r} must be 'logistic', 'svm', 'rf', "
                f"'mlp', an ImagingClassifier or a scikit-learn classifier; got "
                f"{spec!r}."
            )
        out[name] = ImagingClassifier(
            spec, features=features, harmonize=harmonize, covariates=covariates
        )
    return out


def _cls(est: Any) -> str:
    return type(est).__name__


def _check_same_rows(
    table: pd.DataFrame,
    target: str,
    clfs: dict[str, ImagingClassifier],
    datas: dict[str, _Data],
) -> _Data:
    """The first estimator's data, after checking that every estimator keeps the
    same sessions (as :func:`_prepare` keeps them) and the same positive class."""
    names = list(clfs)
    first = names[0]

    def kept(clf: ImagingClassifier) -> npt.NDArray[np.bool_]:
        # the rows _prepare keeps: any selected feature and a target
        feats = select_features(list(table.columns), clf.features)
        return (table[feats].notna().any(axis=1) & table[target].notna()).to_numpy()

    rows0 = kept(clfs[first])
    for name in names[1:]:
        if datas[name].pos_label != datas[first].pos_label:
            raise ModelSpecificationError(
                f"estimators {first!r} and {name!r} take different positive classes "
                f"({datas[first].pos_label!r}, {datas[name].pos_label!r}); pass "
                "`positive`"
            )
        if not np.array_equal(kept(clfs[name]), rows0):
            raise ModelSpecificationError(
                f"estimators {first!r} and {name!r} keep different sessions (their "
                "features are missing on different rows); compare them on the same "
                "sessions: give them the same `features` or drop those rows first"
            )
    return datas[first]


def _fit_predict_proba(
    clf: ImagingClassifier,
    data: _Data,
    split: Split,
    seed: int,
    grouped: bool,
) -> tuple[Array, Array, float]:
    """:func:`~alsprog.biomarkers._folds._fit_predict` (the same fit, the same
    scores) plus the probability of the positive class and the seconds taken."""
    t0 = time.perf_counter()
    model, kwp = _fitted_fold(clf, data, data.y, split, seed, grouped)
    x_test = data.X.iloc[split[1]]
    score = model.positive_score(x_test, **kwp)
    k = int(np.flatnonzero(model.classes_ == model.pos_label_)[0])
    proba = np.asarray(model.predict_proba(x_test, **kwp), np.float64)[:, k]
    return score, proba, time.perf_counter() - t0


def _summary(
    evaluations: dict[str, ClassifierEvaluation],
    boot: dict[str, Array],
    level: float,
) -> pd.DataFrame:
    rows = []
    b_lo, b_hi = percentile_interval(boot["brier_score"][1:], level)
    for k, (name, ev) in enumerate(evaluations.items()):
        s = ev.summary
        p = ev.predictions
        rows.append(
            {
                "estimator": name,
                "roc_auc": s.loc["roc_auc", "estimate"],
                "roc_auc_ci_lower": s.loc["roc_auc", "ci_lower"],
                "roc_auc_ci_upper": s.loc["roc_auc", "ci_upper"],
                "balanced_accuracy": s.loc["balanced_accuracy", "estimate"],
                "sensitivity": s.loc["sensitivity", "estimate"],
                "specificity": s.loc["specificity", "estimate"],
                "brier_score": boot["brier_score"][0, k],
                "brier_score_ci_lower": b_lo[k],
                "brier_score_ci_upper": b_hi[k],
                "log_loss": boot["log_loss"][0, k],
                "n_subjects": p["subject"].nunique(),
                "n_sessions": int((p["repeat"] == p["repeat"].iloc[0]).sum()),
            }
        )
    return pd.DataFrame(rows).set_index("estimator")


def _differences(
    evaluations: dict[str, ClassifierEvaluation],
    boot: dict[str, Array],
    reference: str,
    level: float,
) -> pd.DataFrame:
    names = list(evaluations)
    j = names.index(reference)
    auc = boot["roc_auc"]
    rows = []
    for k, name in enumerate(names):
        if name == reference:
            continue
        d = auc[1:, k] - auc[1:, j]
        d = d[np.isfinite(d)]
        lo, hi = percentile_interval(d, level) if len(d) else (np.nan, np.nan)
        rows.append(
            {
                "estimator": name,
                "reference": reference,
                "roc_auc": auc[0, k],
                "reference_roc_auc": auc[0, j],
                "difference": auc[0, k] - auc[0, j],
                "ci_lower": float(lo),
                "ci_upper": float(hi),
                "p_value": bootstrap_pvalue(d),
                "n_bootstrap": len(d),
            }
        )
    return pd.DataFrame(rows).set_index("estimator")


def bootstrap_pvalue(draws: npt.ArrayLike) -> float:
    """Two-sided percentile-bootstrap p-value of ``difference = 0``.

    ``min(1, 2 min(1 + #{d <= 0}, 1 + #{d >= 0}) / (1 + B))`` over the ``B``
    finite draws ``d``; NaN without any.

    Examples
    --------
    >>> bootstrap_pvalue([0.1, 0.2, 0.3, -0.1])
    0.8
    >>> bootstrap_pvalue([0.0, 0.0])
    1.0
    """
    d = np.asarray(draws, np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        return float("nan")
    below = 1 + int((d <= 0).sum())
    above = 1 + int((d >= 0).sum())
    return float(min(1.0, 2.0 * min(below, above) / (1 + len(d))))
