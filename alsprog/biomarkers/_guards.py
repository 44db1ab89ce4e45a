"""Leakage and confounding guards for imaging classifiers.

Owns: the warnings alsprog raises when a validation is not honest (sessions of one
subject on both sides of a split, a site holding one class, features harmonised on all
data before the split) and the checks behind them.
Leaves: the cross-validation itself to :mod:`alsprog.biomarkers._evaluate`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import DataWarning

__all__ = [
    "ConfoundingWarning",
    "LeakageWarning",
    "check_harmonized_before_split",
    "check_site_confounding",
    "check_subject_overlap",
]


class LeakageWarning(DataWarning):
    """Information from test data can reach training (subjects or harmonisation)."""


class ConfoundingWarning(DataWarning):
    """Site and diagnosis are confounded: a site holds only one class."""


def check_subject_overlap(
    train_groups: Any, test_groups: Any, *, stacklevel: int = 2
) -> list[Any]:
    """Warn when sessions of one subject fall in both the training and the test set.

    Parameters
    ----------
    train_groups, test_groups : array-like
        Subject identifier of each training and each test row.
    stacklevel : int, default 2
        Passed to :func:`warnings.warn`.

    Returns
    -------
    list
        The subjects found on both sides (sorted), empty when the split is clean.

    Warns
    -----
    LeakageWarning
        If at least one subject is on both sides.

    Examples
    --------
    >>> check_subject_overlap(["P1", "P2"], ["P3"])
    []
    """
    both = sorted(
        set(pd.unique(np.asarray(train_groups, dtype=object)))
        & set(pd.unique(np.asarray(test_groups, dtype=object))),
        key=str,
    )
    if both:
        shown = ", ".join(str(s) for s in both[:5])
        more = f" and {len(both) - 5} more" if len(both) > 5 else ""
        warnings.warn(
            f"sessions of {len(both)} subject(s) ({shown}{more}) are in both the "
            "training and the test set, so repeated scans of one person inflate "
            "the accuracy; use subject-grouped folds (cv='subject')",
            LeakageWarning,
            stacklevel=stacklevel,
        )
    return both


def check_site_confounding(sites: Any, y: Any, *, stacklevel: int = 2) -> pd.DataFrame:
    """Warn when a site holds only one class of the target.

    Parameters
    ----------
    sites, y : array-like
        Site and class of each row (rows with a missing site are ignored).
    stacklevel : int, default 2
        Passed to :func:`warnings.warn`.

    Returns
    -------
    pandas.DataFrame
        Site × class table of row counts.

    Warns
    -----
    ConfoundingWarning
        If there are at least two sites and one of them holds a single class.

    Examples
    --------
    >>> check_site_confounding(["A", "A", "B", "B"], ["als", "control"] * 2)
    col_0  als  control
    row_0
    A        1        1
    B        1        1
    """
    s = np.asarray(sites, dtype=object).ravel()
    yy = np.asarray(y, dtype=object).ravel()
    if len(s) != len(yy):
        from alsprog.errors import ModelSpecificationError

        raise ModelSpecificationError(
            f"`sites` has {len(s)} values for {len(yy)} values of `y`; give one site "
            "per row."
        )
    keep = pd.notna(s)
    table = pd.crosstab(s[keep], yy[keep])
    if len(table) >= 2 and table.shape[1] >= 2:
        single = [str(site) for site, row in table.iterrows() if (row > 0).sum() < 2]
        if single:
            detail = "; ".join(
                f"site {site!r} has only {table.columns[table.loc[site] > 0][0]!r}"
                for site in table.index
                if str(site) in single
            )
            warnings.warn(
                f"site and diagnosis are confounded ({detail}): a classifier can "
                "learn the scanner instead of the disease; compare cv='site' with "
                "cv='subject' and harmonise within folds (harmonize='combat')",
                ConfoundingWarning,
                stacklevel=stacklevel,
            )
    return table


def check_harmonized_before_split(
    table: pd.DataFrame,
    features: Sequence[str],
    *,
    site: str = "site",
    adjust_for: Sequence[str] = (),
    threshold: float = 0.05,
    stacklevel: int = 2,
) -> npt.NDArray[np.float64]:
    """Warn when features look harmonised across sites on all data already.

    ComBat fitted on the whole table leaves the site means of every feature almost
    equal (after the covariates it protected), far more equal than chance allows;
    fitting it before the cross-validation split lets the test folds shape the
    training data.  The check is a partial F-test of ``site`` in a linear model of
    each feature on ``adjust_for`` (covariates and diagnosis): when no feature (of
    at least two) shows a site difference, smallest p-value above ``threshold``, the
    warning is raised.  Raw multi-site DTI and thickness data give tiny p-values
    [Fortin 2017]; ComBat with the diagnosis protected gives p-values near 1 and
    ComBat without it p-values like pure chance.  Simulated data without site effects
    also trigger it.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per session with ``site`` and the feature columns.
    features : sequence of str
        Feature columns.
    site : str, default "site"
        Site column.
    adjust_for : sequence of str, default ()
        Columns adjusted for (numbers linearly, text as indicators).
    threshold : float, default 0.05
        Warn when every feature's site p-value exceeds it.
    stacklevel : int, default 2
        Passed to :func:`warnings.warn`.

    Returns
    -------
    numpy.ndarray
        The site p-value per feature (NaN where it cannot be computed).

    Warns
    -----
    LeakageWarning
        If all features have equal site means beyond chance.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"site": np.repeat(["A", "B"], 20),
    ...                    "fa_x": rng.normal(0.5, 0.03, 40)})
    >>> bool(check_harmonized_before_split(df, ["fa_x"])[0] < 0.999)
    True
    """
    from scipy import stats

    from alsprog._validation import check_interval
    from alsprog.errors import ModelSpecificationError

    if not isinstance(table, pd.DataFrame):
        raise ModelSpecificationError(
            f"`table` must be a pandas DataFrame; got {type(table).__name__}."
        )
    if isinstance(features, str):
        features = [features]
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise ModelSpecificationError(f"feature column(s) {missing} not in the table")
    threshold = check_interval(
        threshold,
        "threshold",
        low=0,
        high=1,
        low_closed=False,
        high_closed=False,
        error=ModelSpecificationError,
    )
    pvalues = np.full(len(features), np.nan)
    if site not in table.columns or table[site].nunique() < 2:
        return pvalues
    adjust = [c for c in adjust_for if c in table.columns]
    for j, f in enumerate(features):
        d = table[[site, f, *adjust]].dropna()
        if d[site].nunique() < 2 or len(d) < 10:
            continue
        base = _design(d, adjust)
        full = np.column_stack([base, _design(d, [site])[:, 1:]])
        yv = d[f].to_numpy(np.float64)
        rss0 = _rss(base, yv)
        rss1 = _rss(full, yv)
        df1 = full.shape[1] - base.shape[1]
        df2 = len(yv) - np.linalg.matrix_rank(full)
        if df1 <= 0 or df2 <= 0 or rss1 <= 0:
            continue
        fstat = ((rss0 - rss1) / df1) / (rss1 / df2)
        pvalues[j] = stats.f.sf(fstat, df1, df2)
    finite = pvalues[np.isfinite(pvalues)]
    if len(finite) >= 2 and np.min(finite) > threshold:
        warnings.warn(
            f"none of the {len(finite)} features differs between sites (smallest "
            f"site p-value {np.min(finite):.2g} > {threshold}), as after harmonising "
            "all data before the split, which leaks the test folds into training: "
            "pass raw features and "
            "harmonize='combat', which fits ComBat on each training fold only",
            LeakageWarning,
            stacklevel=stacklevel,
        )
    return pvalues


def _design(d: pd.DataFrame, cols: Sequence[str]) -> npt.NDArray[np.float64]:
    parts = [np.ones(len(d))]
    for c in cols:
        col = d[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            parts.append(col.to_numpy(np.float64))
        else:
            levels = sorted(pd.unique(col.astype(str)))
            vals = col.astype(str).to_numpy()
            parts += [(vals == lv).astype(np.float64) for lv in levels[1:]]
    return np.column_stack(parts)


def _rss(X: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    r = y - X @ beta
    return float(r @ r)
