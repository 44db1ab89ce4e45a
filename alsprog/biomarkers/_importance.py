"""Permutation importance of imaging features on held-out folds.

Owns: :func:`feature_importance`: the drop in held-out ROC AUC when one feature is
permuted between the subjects of a test fold, over the same subject-grouped (or
leave-site-out) folds as :func:`~alsprog.biomarkers.evaluate_classifier`, with an
interval across folds and repeats and, for linear estimators, the mean coefficient.
Leaves: the folds and table preparation to :mod:`alsprog.biomarkers._folds`, the
pipeline to :mod:`alsprog.biomarkers._classifier`, figures to :mod:`alsprog.plots`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import clone

from alsprog._random import as_generator, child_seed
from alsprog._validation import check_int, check_level
from alsprog.biomarkers._classifier import ImagingClassifier
from alsprog.biomarkers._folds import (
    CVSpec,
    Split,
    _Data,
    _prepare,
    _splits,
)
from alsprog.biomarkers._metrics import weighted_auc
from alsprog.errors import ModelSpecificationError

__all__ = ["feature_importance"]

logger = logging.getLogger(__name__)

_COLUMNS = [
    "feature",
    "metric",
    "region",
    "importance_mean",
    "importance_sd",
    "ci_lower",
    "ci_upper",
    "coefficient",
    "n_folds",
    "positive_class",
]


def _split_name(feature: str) -> tuple[str, str]:
    """``"thickness_precentral_left"`` -> ``("thickness", "precentral_left")``."""
    metric, _, region = feature.partition("_")
    return (metric, region) if region else (feature, "")


def _donor_rows(
    subjects: npt.NDArray[Any], rng: np.random.Generator
) -> npt.NDArray[np.intp]:
    """Row positions that permute whole subjects: row ``j`` (the ``k``-th session of
    its subject) takes the ``k``-th (cyclically) session of a donor subject."""
    codes, uniq = pd.factorize(pd.Series(subjects))
    rows_of = [np.flatnonzero(codes == i) for i in range(len(uniq))]
    donor = rng.permutation(len(uniq))
    out = np.empty(len(subjects), dtype=np.intp)
    for i, rows in enumerate(rows_of):
        src = rows_of[donor[i]]
        out[rows] = src[np.arange(len(rows)) % len(src)]
    return out


def _coefficients(model: ImagingClassifier, features: list[str], flip: bool) -> Any:
    """Standardised coefficients of the features (NaN when not linear)."""
    final = model.pipeline_[-1]
    coef = getattr(final, "coef_", None)
    if coef is None:
        return np.full(len(features), np.nan)
    names = model.feature_names_out()
    c = pd.Series(np.asarray(coef, np.float64).ravel(), index=names)
    out = c.reindex(features).to_numpy(np.float64)
    return -out if flip else out


def _fold_importance(
    clf: ImagingClassifier,
    data: _Data,
    split: Split,
    n_perm: int,
    fit_seed: int,
    perm_seed: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Fit on the training rows; AUC drops (n_perm × features) and coefficients."""
    train, test = split
    model = clone(clf).set_params(positive=data.pos_label)
    if "random_state" in model.get_params():
        model.set_params(random_state=fit_seed)
    kw: dict[str, Any] = {}
    if getattr(model, "harmonize", None) is not None and data.sites is not None:
        kw["sites"] = data.sites[train]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(data.X.iloc[train], data.y[train], groups=data.subjects[train], **kw)
    kwp = {"sites": data.sites[test]} if "sites" in kw else {}  # type: ignore[index]
    flip = bool(model.classes_[0] == data.pos_label)
    X_test = data.X.iloc[test].reset_index(drop=True)
    pos = data.positive[test]

    def score(X: pd.DataFrame) -> float:
        s = model.decision_function(X, **kwp)
        return weighted_auc(-s if flip else s, pos)

    base = score(X_test)
    rng = np.random.default_rng(perm_seed)
    drops = np.empty((n_perm, len(data.features)))
    for r in range(n_perm):
        for j, feat in enumerate(data.features):
            donor = _donor_rows(data.subjects[test], rng)
            Xp = X_test.copy()
            Xp[feat] = X_test[feat].to_numpy()[donor]
            drops[r, j] = base - score(Xp)
    return drops, _coefficients(model, data.features, flip)


def feature_importance(
    table: pd.DataFrame,
    clf: ImagingClassifier | None = None,
    *,
    target: str = "group",
    cv: CVSpec = "subject",
    subject: str = "subject_id",
    site: str = "site",
    n_repeats: int = 5,
    level: float = 0.95,
    seed: Any = None,
    n_jobs: int | None = 1,
    positive: Any = None,
) -> pd.DataFrame:
    """Permutation importance of each imaging feature on held-out folds.

    The classifier is refitted on each training fold of the same subject-grouped
    (``cv="subject"`` or an integer) or leave-one-site-out (``cv="site"``) split as
    :func:`~alsprog.biomarkers.evaluate_classifier`; on the held-out fold each feature
    in turn is permuted *between subjects* (every session of a subject takes the
    values of another test subject) and the drop in ROC AUC is recorded.  A feature
    the classifier does not need has an importance near 0.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table, one row per subject × session (as for ``evaluate_classifier``).
    clf : ImagingClassifier, optional
        Default ``ImagingClassifier()``.
    target : str, default "group"
        Two-class column.
    cv : {"subject", "site"} or int, default "subject"
        5 (or ``cv``) subject-grouped stratified folds, or leave-one-site-out.
    subject, site : str
        Subject and site columns.
    n_repeats : int, default 5
        Repetitions: new grouped shuffles (refitted) for ``"subject"``/integer folds;
        new permutations of the same leave-site-out fits for ``"site"``.
    level : float, default 0.95
        Coverage of the interval.
    seed : int, Generator or None
        Seed of the folds, the classifiers and the permutations.
    n_jobs : int, default 1
        joblib workers over folds.
    positive : object, optional
        The positive class, as in
        :func:`~alsprog.biomarkers.evaluate_classifier` (default: the ALS label
        ``"als"`` found ignoring case).

    Returns
    -------
    pandas.DataFrame
        One row per feature, most important first: ``feature, metric, region``
        (``<metric>_<region>``), ``importance_mean`` (mean AUC drop over folds ×
        repeats), ``importance_sd``, ``ci_lower, ci_upper``, ``coefficient`` (mean
        standardised coefficient over fits, positive = higher in the positive class;
        NaN for non-linear estimators), ``n_folds`` (folds × repeats) and
        ``positive_class`` (that class's label).

    Raises
    ------
    ModelSpecificationError
        Bad arguments (``cv="session"`` is refused: it leaks), missing columns.
    DataValidationError
        As in :func:`~alsprog.biomarkers.evaluate_classifier`.

    Notes
    -----
    The fold-level drops share training subjects, so their plain standard error is too
    small; the interval is the corrected resampled *t* interval of Nadeau & Bengio,
    ``mean ± t_{J-1} · sd · sqrt(1/J + n_test/n_train)`` over the ``J`` fold × repeat
    values.  Correlated features (left and right CST) share importance: permuting one
    of two near-copies costs little AUC.

    References
    ----------
    Nadeau C, Bengio Y (2003). Inference for the generalization error. Mach Learn
    52:239-281.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(40, 40, months=0, seed=1)
    >>> df = assemble(c.visits, c.subjects, c.imaging)
    >>> imp = feature_importance(df, cv=3, n_repeats=1, seed=0)
    >>> imp.columns[:6].tolist()
    ['feature', 'metric', 'region', 'importance_mean', 'importance_sd', 'ci_lower']
    >>> imp.set_index("feature").loc["thickness_cuneus_left", "metric"]
    'thickness'
    """
    from joblib import Parallel, delayed
    from scipy import stats

    clf = ImagingClassifier() if clf is None else clf
    if not isinstance(clf, ImagingClassifier):
        raise ModelSpecificationError(
            f"`clf` must be an ImagingClassifier; got {type(clf).__name__}."
        )
    if cv == "session":
        raise ModelSpecificationError(
            "`cv` must be 'subject', 'site' or an integer >= 2; got 'session' (a "
            "row-level split leaks subjects into the test fold)."
        )
    n_repeats = check_int(n_repeats, "n_repeats", low=1, error=ModelSpecificationError)
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
    if cv == "site":
        jobs = [(s, n_repeats) for s in _splits(data, cv, rng)]
    else:
        jobs = [(s, 1) for _ in range(n_repeats) for s in _splits(data, cv, rng)]
    seeds = [(child_seed(rng), child_seed(rng)) for _ in jobs]
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fold_importance)(clf, data, s, k, fs, ps)
        for (s, k), (fs, ps) in zip(jobs, seeds, strict=True)
    )
    drops = np.vstack([d for d, _ in results])
    coefs = np.vstack([c for _, c in results])
    ratio = np.mean(
        [
            len(pd.unique(data.subjects[te])) / len(pd.unique(data.subjects[tr]))
            for (tr, te), _ in jobs
        ]
    )
    J = drops.shape[0]
    mean = drops.mean(axis=0)
    sd = drops.std(axis=0, ddof=1) if J > 1 else np.full(len(mean), np.nan)
    half = stats.t.ppf(0.5 + level / 2, max(J - 1, 1)) * sd * np.sqrt(1 / J + ratio)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        coef = np.nanmean(coefs, axis=0)
    names = [_split_name(f) for f in data.features]
    out = pd.DataFrame(
        {
            "feature": data.features,
            "metric": [m for m, _ in names],
            "region": [r for _, r in names],
            "importance_mean": mean,
            "importance_sd": sd,
            "ci_lower": mean - half,
            "ci_upper": mean + half,
            "coefficient": coef,
            "n_folds": J,
            "positive_class": str(data.pos_label),
        },
        columns=_COLUMNS,
    )
    logger.info("feature_importance: %d features, %d fold fits", len(mean), len(jobs))
    return out.sort_values(
        "importance_mean", ascending=False, kind="stable"
    ).reset_index(drop=True)
