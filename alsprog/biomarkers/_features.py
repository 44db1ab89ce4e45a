"""Imaging feature columns, feature selection by name or pattern, the positive class.

Owns: which columns are ``<metric>_<region>`` imaging features of the data dictionary
(:func:`imaging_feature_columns`), resolving names and shell patterns against a table
(:func:`select_features`), the check that feature values are finite numbers, the data
dictionary's ALS label and the positive class among two labels
(:func:`resolve_positive`).  No scikit-learn here.
Leaves: the pipeline and the estimator to :mod:`alsprog.biomarkers._classifier`,
cross-validation to :mod:`alsprog.biomarkers._evaluate`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import DataValidationError, ModelSpecificationError, Problem

__all__ = [
    "als_label",
    "check_feature_values",
    "imaging_feature_columns",
    "resolve_positive",
    "select_features",
]


def imaging_feature_columns(columns: Sequence[Any]) -> list[str]:
    """Columns that are ``<metric>_<region>`` imaging features of the data dictionary.

    Examples
    --------
    >>> imaging_feature_columns(["subject_id", "fa_cst_left", "thickness_cuneus_left"])
    ['fa_cst_left', 'thickness_cuneus_left']
    """
    from alsprog.data._dictionary import load_dictionary

    _check_names(columns, "columns")
    d = load_dictionary()
    return [c for c in columns if isinstance(c, str) and d.is_imaging_feature(c)]


def als_label() -> str:
    """The data dictionary's label of ALS patients in ``group`` (``"als"``).

    Examples
    --------
    >>> als_label()
    'als'
    """
    from alsprog.data._dictionary import load_dictionary

    f = load_dictionary().field_for("group")
    enum = tuple(f.enum or ()) if f is not None else ()
    return "als" if "als" in enum or not enum else str(enum[0])


def _label_key(value: Any) -> str:
    return str(value).strip().casefold()


def resolve_positive(
    classes: Sequence[Any] | npt.NDArray[Any],
    positive: Any = None,
    *,
    strict: bool = True,
    column: str = "target",
) -> Any:
    """The positive class among two class labels.

    Parameters
    ----------
    classes : sequence
        The two classes, sorted.
    positive : object, optional
        The positive class as given: one of ``classes``, or text equal to one of them
        but for case and surrounding spaces (``"als"`` finds ``"ALS"``).  ``None``:
        the data dictionary's ALS label (:func:`als_label`), found the same way.
    strict : bool, default True
        What ``None`` does when no class is the ALS label: with ``strict`` (used by
        :func:`evaluate_classifier`, whose metrics depend on it) 0/1, -1/1 or
        False/True labels take the larger one and any other labels are refused;
        without (the scikit-learn estimator) the second class is positive, as
        scikit-learn's ``decision_function`` convention has it.
    column : str
        The label column, for messages.

    Returns
    -------
    object
        The positive class, an element of ``classes`` (a NumPy scalar as its
        Python value).

    Raises
    ------
    ModelSpecificationError
        ``positive`` is not one of the classes, matches both (``"ALS"`` and
        ``"als"``), or is ``None`` with ``strict`` and no class is the ALS label.

    Examples
    --------
    >>> resolve_positive(["ALS", "HC"])
    'ALS'
    >>> resolve_positive([0, 1])
    1
    >>> resolve_positive(["case", "hc"], "case")
    'case'
    """
    cls = [c.item() if isinstance(c, np.generic) else c for c in classes]
    shown = cls
    if positive is not None:
        if isinstance(positive, np.generic):
            positive = positive.item()
        exact = [c for c in cls if _same(c, positive)]
        if exact:
            return exact[0]
        hits = [c for c in cls if _label_key(c) == _label_key(positive)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ModelSpecificationError(
                f"`positive` {positive!r} matches both classes {shown} of column "
                f"{column!r} when case is ignored; give the exact label"
            )
        raise ModelSpecificationError(
            f"`positive` {positive!r} is not a class of column {column!r}; its "
            f"classes are {shown}: pass one of them"
        )
    als = als_label()
    hits = [c for c in cls if _label_key(c) == _label_key(als)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise ModelSpecificationError(
            f"classes {shown} of column {column!r} are both the ALS label {als!r} "
            "when case is ignored, so the positive class is ambiguous; recode one "
            "of them or pass `positive` with the exact label"
        )
    if not strict:
        return cls[-1]
    numeric = all(
        isinstance(c, int | float | bool | np.integer | np.floating | np.bool_)
        for c in cls
    )
    if numeric and {float(c) for c in cls} in [{0.0, 1.0}, {-1.0, 1.0}]:
        return max(cls)
    raise ModelSpecificationError(
        f"no class of column {column!r} ({shown}) is the data dictionary's ALS "
        f"label {als!r} (compared ignoring case), so the positive class (the one "
        "sensitivity and the ROC curve are about) is unknown; pass `positive=` "
        f"one of {shown}"
    )


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _check_names(values: Any, name: str) -> None:
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise ModelSpecificationError(
            f"`{name}` must be a sequence of column names; got {values!r}."
        )


def check_feature_values(
    table: pd.DataFrame,
    features: Sequence[str],
    source: str,
    *,
    subject: str | None = None,
) -> None:
    """Feature columns must hold numbers, finite or missing (``inf`` is not).

    Raises
    ------
    DataValidationError
        One problem per offending column, naming the first row and subject.
    """
    problems = []
    for c in features:
        col = table[c]
        if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            bad = pd.to_numeric(col, errors="coerce").isna() & col.notna()
            what = "is not a number"
        else:
            bad = pd.Series(np.isinf(col.to_numpy(np.float64)), index=col.index)
            what = "is infinite"
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            sid = None
            if subject is not None and subject in table.columns:
                sid = str(table[subject].iloc[pos])
            problems.append(
                Problem(
                    f"{int(bad.sum())} value(s) not finite numbers; the first, "
                    f"{col.iloc[pos]!r}, {what} (imaging features are numbers; "
                    "leave a missing value empty)",
                    rule="type",
                    line=pos + 1,
                    line_kind="row",
                    subject_id=sid,
                    column=c,
                    value=col.iloc[pos],
                )
            )
    if problems:
        raise DataValidationError(problems, source=source)


def select_features(
    columns: Sequence[Any], features: str | Sequence[str] | None
) -> list[str]:
    """Resolve feature names or shell patterns (``"fa_*"``) against ``columns``.

    Parameters
    ----------
    columns : sequence of str
        Available columns, in table order.
    features : str, sequence of str or None
        Names or :mod:`fnmatch` patterns; ``None`` selects every imaging feature of
        the data dictionary.

    Returns
    -------
    list of str
        Matching columns in table order, without duplicates.

    Raises
    ------
    ModelSpecificationError
        If a name or pattern matches no column, or nothing is selected.

    Examples
    --------
    >>> select_features(["fa_cst_left", "md_cst_left", "fa_cc_motor"], "fa_*")
    ['fa_cst_left', 'fa_cc_motor']
    """
    _check_names(columns, "columns")
    cols = [c for c in columns if isinstance(c, str)]
    if features is not None and not isinstance(features, str):
        _check_names(features, "features")
        if not all(isinstance(f, str) for f in features):
            raise ModelSpecificationError(
                f"`features` must be column names or patterns (str); got {features!r}."
            )
    if features is None:
        out = imaging_feature_columns(cols)
        if not out:
            raise ModelSpecificationError(
                "no imaging feature columns (named <metric>_<region>, e.g. "
                "fa_cst_left) in the table; pass `features`"
            )
        return out
    pats = [features] if isinstance(features, str) else list(features)
    if not pats:
        raise ModelSpecificationError("`features` is empty; give names or patterns.")
    chosen: set[str] = set()
    for pat in pats:
        hits = fnmatch.filter(cols, pat)
        if not hits:
            raise ModelSpecificationError(
                f"feature {pat!r} matches no column of the table; available imaging "
                f"columns: {imaging_feature_columns(cols) or 'none'}"
            )
        chosen.update(hits)
    return [c for c in cols if c in chosen]
