"""Classification metrics with case weights, for subject-level bootstraps.

Owns: weighted ROC AUC, sensitivity, specificity and balanced accuracy computed from
scores and labels (arrays in, floats out), and the subject-bootstrap that uses them.
Leaves: producing the scores to :mod:`alsprog.biomarkers._evaluate`.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["METRICS", "binary_metrics", "bootstrap_metrics", "weighted_auc"]

Array = npt.NDArray[np.float64]

#: Metric names in the order of the summary table.
METRICS: tuple[str, ...] = (
    "roc_auc",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
)


def weighted_auc(
    score: Array, positive: npt.NDArray[np.bool_], w: Array | None = None
) -> float:
    """ROC AUC (Mann-Whitney, ties count one half) with case weights.

    Examples
    --------
    >>> weighted_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1], bool))
    0.75
    """
    score = np.asarray(score, np.float64)
    positive = np.asarray(positive, bool)
    w = np.ones(len(score)) if w is None else np.asarray(w, np.float64)
    wp = np.where(positive, w, 0.0)
    wn = np.where(positive, 0.0, w)
    tot_p, tot_n = wp.sum(), wn.sum()
    if tot_p <= 0 or tot_n <= 0:
        return float("nan")
    uniq, inv = np.unique(score, return_inverse=True)
    p_at = np.bincount(inv, weights=wp, minlength=len(uniq))
    n_at = np.bincount(inv, weights=wn, minlength=len(uniq))
    n_below = np.cumsum(n_at) - n_at
    return float(np.sum(p_at * (n_below + 0.5 * n_at)) / (tot_p * tot_n))


def binary_metrics(
    score: Array,
    positive: npt.NDArray[np.bool_],
    predicted: npt.NDArray[np.bool_],
    w: Array | None = None,
) -> dict[str, float]:
    """ROC AUC, balanced accuracy, sensitivity and specificity (weighted).

    Examples
    --------
    >>> m = binary_metrics(np.array([0.2, 0.7, 0.6, 0.9]),
    ...                    np.array([0, 0, 1, 1], bool), np.array([0, 1, 1, 1], bool))
    >>> m["sensitivity"], m["specificity"], m["balanced_accuracy"]
    (1.0, 0.5, 0.75)
    """
    positive = np.asarray(positive, bool)
    predicted = np.asarray(predicted, bool)
    w = np.ones(len(positive)) if w is None else np.asarray(w, np.float64)
    wp, wn = w[positive].sum(), w[~positive].sum()
    sens = float(w[positive & predicted].sum() / wp) if wp > 0 else float("nan")
    spec = float(w[~positive & ~predicted].sum() / wn) if wn > 0 else float("nan")
    return {
        "roc_auc": weighted_auc(score, positive, w),
        "balanced_accuracy": 0.5 * (sens + spec),
        "sensitivity": sens,
        "specificity": spec,
    }


def subject_weights(
    codes: npt.NDArray[np.intp], n_subjects: int, rng: np.random.Generator
) -> Array:
    """One subject-level bootstrap resample as row weights: each row counts as
    often as its subject (``codes``, 0..n_subjects-1) was drawn."""
    mult = np.bincount(rng.integers(0, n_subjects, n_subjects), minlength=n_subjects)
    return mult[codes].astype(np.float64)


def percentile_interval(draws: Array, level: float) -> tuple[Array, Array]:
    """Percentile interval of bootstrap ``draws`` (rows), NaN draws left out."""
    alpha = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (
            np.nanquantile(draws, alpha, axis=0),
            np.nanquantile(draws, 1.0 - alpha, axis=0),
        )


def bootstrap_metrics(
    predictions: pd.DataFrame,
    *,
    n_bootstrap: int,
    level: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Point estimates and percentile intervals from a subject-level bootstrap.

    ``predictions`` has columns ``repeat, subject, score, positive, predicted``;
    subjects are resampled with replacement (all their sessions together) and each
    metric is averaged over repeats.
    """
    codes, subjects = pd.factorize(predictions["subject"])
    repeats = predictions["repeat"].to_numpy()
    score = predictions["score"].to_numpy(np.float64)
    pos = predictions["positive"].to_numpy(bool)
    pred = predictions["predicted"].to_numpy(bool)
    rep_ids = np.unique(repeats)

    def metrics(weights: Array) -> Array:
        vals = []
        for r in rep_ids:
            k = repeats == r
            m = binary_metrics(score[k], pos[k], pred[k], weights[k])
            vals.append([m[name] for name in METRICS])
        return np.nanmean(np.asarray(vals), axis=0)

    with np.errstate(invalid="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            est = metrics(np.ones(len(score)))
            draws = np.empty((n_bootstrap, len(METRICS)))
            for b in range(n_bootstrap):
                draws[b] = metrics(subject_weights(codes, len(subjects), rng))
            lo, hi = percentile_interval(draws, level)
    return pd.DataFrame(
        {"estimate": est, "ci_lower": lo, "ci_upper": hi},
        index=pd.Index(list(METRICS), name="metric"),
    )
