"""The table preparation and fold loop shared by the classifier evaluations.

Owns: checking a table against an :class:`~alsprog.biomarkers.ImagingClassifier` and a
``cv`` (the arrays to split, the positive class), the grouped, leave-site-out or
session splits, fitting and scoring one fold, and label permutations between subjects
for the permutation test (where the label-free steps of each fold's pipeline are
fitted once and only the final estimator is refitted per permutation).
Leaves: the results and their summaries to :mod:`alsprog.biomarkers._evaluate`,
:mod:`alsprog.biomarkers._learning_curve` and :mod:`alsprog.biomarkers._importance`,
the pipeline to :mod:`alsprog.biomarkers._classifier`.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import clone

from alsprog._random import as_generator, child_seed
from alsprog._validation import check_int
from alsprog.biomarkers._classifier import ImagingClassifier, _groups_param
from alsprog.biomarkers._features import (
    _same,
    check_feature_values,
    resolve_positive,
    select_features,
)
from alsprog.errors import DataValidationError, ModelSpecificationError, Problem

__all__ = ["CVSpec", "Split"]

CVSpec = Literal["subject", "site", "session"] | int
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


def _fitted_fold(
    clf: ImagingClassifier,
    data: _Data,
    y: npt.NDArray[Any],
    split: Split,
    seed: int,
    grouped: bool,
) -> tuple[ImagingClassifier, dict[str, Any]]:
    """A clone of ``clf`` fitted on the split's training rows, and the keywords its
    predictions on the test rows take (the test rows' sites)."""
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
    return model, ({"sites": sites[test]} if "sites" in kw else {})  # type: ignore[index]


def _fit_predict(
    clf: ImagingClassifier,
    data: _Data,
    y: npt.NDArray[Any],
    split: Split,
    seed: int,
    grouped: bool,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    model, kwp = _fitted_fold(clf, data, y, split, seed, grouped)
    score = model.positive_score(data.X.iloc[split[1]], **kwp)
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


class _SubjectShuffler:
    """Labels permuted between subjects, the subject structure worked out once.

    When every subject has one label, the subjects' labels (in order of first
    appearance) are permuted and spread back over their sessions; otherwise the rows'
    labels are permuted.  Each call draws exactly what ``rng.permutation`` of those
    labels draws, so a seed gives the same permutations as ever.
    """

    def __init__(self, data: _Data) -> None:
        per = pd.DataFrame({"s": data.subjects, "y": data.y})
        self.y = data.y
        self.constant = bool(per.groupby("s")["y"].nunique().max() == 1)
        if self.constant:
            first = per.groupby("s", sort=False)["y"].first()
            self.first = first
            self.values = first.to_numpy()
            self.rows = first.index.get_indexer(pd.Index(data.subjects))

    def __call__(self, rng: np.random.Generator) -> npt.NDArray[Any]:
        if not self.constant:
            return rng.permutation(self.y)
        shuffled = pd.Series(rng.permutation(self.values), index=self.first.index)
        return shuffled.iloc[self.rows].to_numpy(dtype=object)


@dataclass(frozen=True)
class _FoldCache:
    """The label-free part of each fold's pipeline, fitted once for all permutations.

    Imputation, ComBat (site and covariates only, never the label), encoding and
    scaling do not see the labels, so under permuted labels each fold's training and
    test matrices are the same as with the real ones; only the final estimator is
    refitted per permutation (on the training fold only, as before).
    """

    template: ImagingClassifier
    matrices: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]


def _fold_cache(
    clf: ImagingClassifier, data: _Data, splits: list[Split], grouped: bool
) -> _FoldCache | None:
    """Each fold's transformed training and test rows, or None when the fit uses the
    labels before the final estimator (tuning, calibration) or fails."""
    from sklearn.utils.validation import column_or_1d

    if clf.param_grid:
        return None
    template = clone(clf).set_params(positive=data.pos_label)
    matrices = []
    try:
        final = template._final_estimator(0)
        if not _has_proba(final) or _groups_param(final, data.subjects):
            # no scores, or a final estimator that uses the subjects (the MLP's
            # grouped early stopping): the cached refit would drop them
            return None
        sites = data.sites
        for train, test in splits:
            model = clone(template).set_params(random_state=0)
            kw: dict[str, Any] = {}
            if model.harmonize is not None and sites is not None:
                kw["sites"] = sites[train]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(
                    data.X.iloc[train],
                    column_or_1d(data.y[train]),
                    groups=data.subjects[train] if grouped else None,
                    **kw,
                )
                pre = model.pipeline_[:-1]
                x_train = pre.transform(
                    model._frame(data.X.iloc[train], kw.get("sites"), fit=False)
                )
                x_test = pre.transform(
                    model._prepare(
                        data.X.iloc[test],
                        None if "sites" not in kw else sites[test],  # type: ignore[index]
                        None,
                    )
                )
            matrices.append(
                (np.asarray(x_train, np.float64), np.asarray(x_test, np.float64))
            )
    except Exception:
        return None
    return _FoldCache(template, matrices)


def _has_proba(est: Any) -> bool:
    try:
        return bool(hasattr(est, "predict_proba"))
    except AttributeError:
        return False


def _fit_predict_cached(
    cache: _FoldCache,
    k: int,
    clf: ImagingClassifier,
    data: _Data,
    y: npt.NDArray[Any],
    split: Split,
    seed: int,
    grouped: bool,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """:func:`_fit_predict` of fold ``k`` with its label-free steps taken from
    ``cache``: the same final estimator (same seed), fitted on the same matrix."""
    from sklearn.utils.validation import column_or_1d

    train, _ = split
    yv = column_or_1d(y[train])
    classes = np.unique(yv)
    if len(classes) != 2:  # the full path raises the usual error
        return _fit_predict(clf, data, y, split, seed, grouped)
    x_train, x_test = cache.matrices[k]
    est = cache.template._final_estimator(child_seed(as_generator(seed)))
    est.fit(x_train, yv)
    if hasattr(est, "decision_function"):
        score = np.asarray(est.decision_function(x_test), np.float64).ravel()
    else:
        p = np.clip(np.asarray(est.predict_proba(x_test))[:, 1], 1e-12, 1 - 1e-12)
        score = np.log(p) - np.log1p(-p)
    pos = resolve_positive(classes, data.pos_label, strict=False)
    score = -score if _same(classes[0], pos) else score
    return score, score > 0


def _perm_chunk(
    clf: ImagingClassifier,
    data: _Data,
    splits: list[Split],
    n: int,
    seed: int,
    grouped: bool,
    cache: _FoldCache | None = None,
) -> list[float]:
    """AUCs of ``n`` label permutations drawn from ``seed``; with ``cache`` (from
    :func:`_fold_cache` on the same ``splits``) only the final estimator is refitted,
    to the same numbers."""
    from threadpoolctl import threadpool_limits

    from alsprog.biomarkers._metrics import weighted_auc

    rng = as_generator(seed)
    shuffle = _SubjectShuffler(data)
    out = []
    # one BLAS thread, as in a joblib worker: threads only add contention for the
    # small fits of the cached path (notably with n_jobs=1 on a busy machine)
    limit = threadpool_limits(1) if cache is not None else contextlib.nullcontext()
    with warnings.catch_warnings(), limit:
        warnings.simplefilter("ignore")
        for _ in range(n):
            yp = shuffle(rng)
            seeds = [child_seed(rng) for _ in splits]
            if cache is None:
                res = _run_folds(clf, data, yp, splits, seeds, grouped)
            else:
                res = [
                    _fit_predict_cached(cache, k, clf, data, yp, s, sd, grouped)
                    for k, (s, sd) in enumerate(zip(splits, seeds, strict=True))
                ]
            score = np.empty(len(yp))
            for (_, test), (s, _) in zip(splits, res, strict=True):
                score[test] = s
            out.append(weighted_auc(score, yp == data.pos_label))
    return out
