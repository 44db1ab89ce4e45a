"""Class membership on baseline covariates: the multinomial logit's design.

Owns: reading ``class_formula`` (lcmm's ``classmb``: ``"~ delta_fs + onset_site"``)
through the formula checks, one row per subject of its design (intercept first,
treatment coding), the check that its covariates do not change within a subject,
the subjects it must leave out (a missing covariate), and the same design for new
patients under the fitted coding (:func:`membership_rows`).
Leaves: the likelihood and the Newton step of the logit to
:mod:`alsprog.models.latent._numerics`; the fit to :mod:`alsprog.models.latent._model`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._formula_text import check_formula, formula_context
from alsprog.errors import ModelSpecificationError

__all__ = ["Membership", "class_rhs", "membership_design", "membership_rows"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Membership:
    """The fitted membership design: its formula's right-hand side, the columns it
    reads, its column names (``Intercept`` first) and formulaic's spec (so new
    patients get the fit's coding)."""

    rhs: str
    variables: tuple[str, ...]
    names: tuple[str, ...]
    spec: Any


def class_rhs(class_formula: str, columns: Any = None) -> tuple[str, tuple[str, ...]]:
    """The checked right-hand side of ``class_formula`` (a leading ``~`` dropped)
    and the columns it uses.

    Examples
    --------
    >>> class_rhs("~ delta_fs + onset_site")
    ('delta_fs + onset_site', ('delta_fs', 'onset_site'))

    Raises
    ------
    ModelSpecificationError
        Anything the formula language does not allow, an unknown column.
    """
    if not isinstance(class_formula, str):
        raise ModelSpecificationError(
            f"`class_formula` must be a string such as '~ delta_fs + onset_site'; "
            f"got {class_formula!r}."
        )
    text = class_formula.strip()
    text = text[1:].strip() if text.startswith("~") else text
    checked = check_formula(text, columns=columns, kind="rhs", what="class_formula")
    return checked.text, checked.variables


def membership_design(
    class_formula: str, df: pd.DataFrame, group: str
) -> tuple[pd.DataFrame, Membership]:
    """Each subject's membership covariates (one row per subject, indexed by the
    grouping column's values, sorted), and the design's spec.

    Subjects with a missing covariate are left out of the returned rows (the caller
    drops their visits and warns).

    Raises
    ------
    ModelSpecificationError
        A covariate that changes within a subject (membership is on baseline
        values), a bad formula, no subject left.
    """
    rhs, variables = class_rhs(class_formula, df.columns)
    if not variables:
        raise ModelSpecificationError(
            f"`class_formula` {class_formula!r} names no column; leave it None for "
            "class probabilities without covariates."
        )
    sub = df.loc[pd.notna(df[group]), [group, *variables]]
    per = sub.groupby(group, sort=True, dropna=True)
    for v in variables:
        n_values = per[v].nunique()
        bad = n_values[n_values > 1]
        if len(bad):
            s = bad.index[0]
            seen = sub.loc[sub[group] == s, v].drop_duplicates().tolist()[:4]
            raise ModelSpecificationError(
                f"`class_formula` column {v!r} changes within subject {s!r} "
                f"(values {seen}); class membership is modelled on baseline "
                "covariates, one value per subject (use a baseline column such as "
                "delta_fs or age_at_onset)."
            )
    first = per.first()
    complete = first.notna().all(axis=1)
    rows = first.loc[complete]
    if rows.empty:
        raise ModelSpecificationError(
            f"No subject has every `class_formula` column ({', '.join(variables)})."
        )
    spec = _matrix(rhs, rows).model_spec
    names = tuple(str(c) for c in spec.column_names)
    if not names or names[0] != "Intercept":
        raise ModelSpecificationError(
            f"`class_formula` {class_formula!r} must keep the intercept (drop '- 1' "
            "or '0 +'): the logits are relative to class 1."
        )
    return rows, Membership(rhs, tuple(variables), names, spec)


def membership_rows(m: Membership, rows: pd.DataFrame) -> Array:
    """The membership design of subjects' covariate rows under the fitted coding.

    Raises
    ------
    ModelSpecificationError
        A missing column or value, a category not seen in the fit.
    """
    from formulaic.errors import DataMismatchWarning

    missing = [v for v in m.variables if v not in rows.columns]
    if missing:
        raise ModelSpecificationError(
            f"The class-membership covariate(s) {', '.join(map(repr, missing))} of "
            f"class_formula '~ {m.rhs}' are not in the data."
        )
    na = rows[list(m.variables)].isna().any(axis=1)
    if na.any():
        who = rows.index[na.to_numpy()][0]
        raise ModelSpecificationError(
            f"Subject {who!r} has no value of a class-membership covariate "
            f"({', '.join(m.variables)}), needed for its class probabilities."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataMismatchWarning)
            C = np.asarray(
                m.spec.get_model_matrix(
                    rows[list(m.variables)],
                    na_action="raise",
                    context=formula_context(),
                ),
                dtype=float,
            )
    except Exception as exc:
        raise ModelSpecificationError(
            f"Cannot build the class-membership design '~ {m.rhs}': {exc}"
        ) from exc
    if C.shape[0] != len(rows):
        C = np.broadcast_to(C[:1], (len(rows), C.shape[1])).copy()
    return C


def _matrix(rhs: str, rows: pd.DataFrame) -> Any:
    from formulaic import model_matrix

    try:
        return model_matrix(rhs, rows, na_action="raise", context=formula_context())
    except ModelSpecificationError:
        raise
    except Exception as exc:
        raise ModelSpecificationError(
            f"Cannot build the class-membership design '~ {rhs}': {exc}"
        ) from exc
