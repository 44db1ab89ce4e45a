"""Formula and long-format table -> the arrays of one Bayesian trajectory fit.

Owns: the default formula and time column of each model kind, the checks that the
formula suits the kind (implied ``(time | subject)`` term for linear, covariates only
for sigmoid), the :class:`BayesDesign` (design matrix, outcome, time, subject codes, each
subject's first row and the model's columns) built from the complete rows, the
coordinates of the posterior, and the first-visit covariates of new rows.
Leaves: the estimator to :mod:`alsprog.models.bayes._model`, the lme4-style formula ->
design step to :mod:`alsprog.models._formula`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._formula_text import check_formula
from alsprog.errors import ModelSpecificationError
from alsprog.models._formula import MixedDesign, build_mixed_design, parse_mixed_formula

__all__ = [
    "DEFAULT_FORMULA",
    "DEFAULT_TIME",
    "EFFECTS_SIGMOID",
    "BayesDesign",
    "design_coords",
    "kind_defaults",
    "prepare_design",
    "subject_first",
]

DEFAULT_FORMULA = {
    "linear": "alsfrs_r_total ~ months",
    "sigmoid": "alsfrs_r_total ~ 1",
}
DEFAULT_TIME = {"linear": "months", "sigmoid": "months_since_onset"}
EFFECTS_SIGMOID = ["log_d50", "log_dx"]


def kind_defaults(params: Any, *, outcome: str, time: str) -> dict[str, Any]:
    """A run's values for an unset ``time`` and ``formula`` of a Bayesian model.

    ``time``: the data's for the linear kind, ``months_since_onset`` for sigmoid;
    ``formula``: ``outcome ~ time`` (linear) or ``outcome ~ 1`` (sigmoid), on the
    data's outcome.

    Examples
    --------
    >>> kind_defaults({"kind": "sigmoid"}, outcome="frs", time="t")
    {'time': 'months_since_onset', 'formula': 'frs ~ 1'}
    """
    kind = params.get("kind", "linear")
    t = params.get("time") or (time if kind == "linear" else DEFAULT_TIME[kind])
    out: dict[str, Any] = {} if params.get("time") else {"time": t}
    if params.get("formula") is None:
        rhs = t if kind == "linear" else "1"
        out["formula"] = f"{outcome} ~ {rhs}"
    return out


@dataclass
class BayesDesign:
    """Arrays and bookkeeping of one fit (complete rows of the data)."""

    mixed: MixedDesign
    y: npt.NDArray[np.float64]
    X: npt.NDArray[np.float64]
    t: npt.NDArray[np.float64]
    groups: npt.NDArray[np.intp]
    levels: pd.Index
    subject_ids: list[str]
    fe_names: list[str]
    frame: pd.DataFrame  # the model's columns, complete rows, index reset
    first_rows: npt.NDArray[np.intp]  # each subject's first row in `frame`
    time: str
    subject: str
    outcome: str


def prepare_design(
    df: pd.DataFrame,
    *,
    kind: str,
    formula: str | None,
    time: str | None,
    subject: Any,
) -> BayesDesign:
    """Check the formula against the model kind and build the fit's arrays.

    Parameters
    ----------
    df : pandas.DataFrame
        Long-format data; not modified.  Rows with missing model values are dropped
        (with a :class:`~alsprog.errors.DataWarning` from the formula step).
    kind : {"linear", "sigmoid"}
    formula, time : str or None
        ``None`` takes the kind's default (:data:`DEFAULT_FORMULA`,
        :data:`DEFAULT_TIME`).
    subject : str
        Grouping column.

    Returns
    -------
    BayesDesign

    Raises
    ------
    ModelSpecificationError
        Not a DataFrame, missing column, or a formula that does not suit ``kind``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"subject_id": list("aaabbbccc"),
    ...                    "months": [0.0, 3.0, 6.0] * 3,
    ...                    "alsfrs_r_total": [40, 37, 35, 41, 36, 30, 38, 37, 33]})
    >>> d = prepare_design(df, kind="linear", formula=None, time=None,
    ...                    subject="subject_id")
    >>> d.fe_names, d.subject_ids, d.first_rows.tolist()
    (['Intercept', 'months'], ['a', 'b', 'c'], [0, 3, 6])
    """
    if not isinstance(df, pd.DataFrame):
        raise ModelSpecificationError(
            f"Data must be a pandas DataFrame; got {type(df).__name__}."
        )
    formula = formula if formula is not None else DEFAULT_FORMULA[kind]
    time = time if time is not None else DEFAULT_TIME[kind]
    if not isinstance(subject, str) or not isinstance(time, str):
        raise ModelSpecificationError(
            f"`subject` and `time` must be column names; got {subject!r}, {time!r}."
        )
    parsed = parse_mixed_formula(formula)
    for col in (subject, time):
        if col not in df.columns:
            raise ModelSpecificationError(
                f"Column {col!r} is not in the data (needed as the "
                f"{'subject' if col == subject else 'time'} column); the data has "
                f"{', '.join(map(str, df.columns))}."
            )
    if kind == "linear":
        if parsed.random:
            if len(parsed.random) != 1 or parsed.random[0].group != subject:
                raise ModelSpecificationError(
                    f"Formula {formula!r}: the linear model takes one random term "
                    f"'({time} | {subject})' (implied when omitted); got "
                    f"{', '.join(f'({r.expr} | {r.group})' for r in parsed.random)}."
                )
            full = formula
        else:
            full = f"{formula} + ({time} | {subject})"
    else:
        if parsed.random:
            raise ModelSpecificationError(
                f"Formula {formula!r}: the sigmoid model's per-subject D50 and dx "
                "effects are implied; remove the random-effects term."
            )
        from alsprog.models._contract import on_alsfrs_r_scale, outcome_bounds

        if not on_alsfrs_r_scale(parsed.outcome):
            bounds = outcome_bounds(parsed.outcome)
            raise ModelSpecificationError(
                f"Formula {formula!r}: the sigmoid model is the D50 curve of the "
                f"ALSFRS-R total, 48 / (1 + exp((t - D50) / dx)); {parsed.outcome!r} "
                f"ranges over {bounds[0]:g}-{bounds[1]:g}. Use kind='linear' for it."
            )
        used = set(check_formula(parsed.fixed, kind="rhs").variables)
        if time in used:
            raise ModelSpecificationError(
                f"Formula {formula!r}: the sigmoid model is a curve in {time!r}; "
                f"list only covariates of log D50 / log dx, not {time!r}."
            )
        full = f"{formula} + (0 + {time} | {subject})"
    mixed = build_mixed_design(full, df)
    if kind == "linear" and mixed.re_names != ["Intercept", time]:
        raise ModelSpecificationError(
            f"Formula {formula!r}: the random term must give a random intercept and "
            f"a slope on {time!r}, e.g. '({time} | {subject})'; it gives "
            f"{mixed.re_names}."
        )
    frame = df.loc[mixed.row_index, mixed.variables].reset_index(drop=True)
    for c in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(
            frame[c]
        ):
            frame[c] = frame[c].astype(str).astype(object)
    t = mixed.Z[:, -1].astype(float)
    first = np.full(len(mixed.group_levels), -1, dtype=np.intp)
    order = np.arange(len(mixed.groups))[::-1]
    first[mixed.groups[order]] = order
    return BayesDesign(
        mixed=mixed,
        y=mixed.y,
        X=mixed.X,
        t=t,
        groups=mixed.groups,
        levels=mixed.group_levels,
        subject_ids=[str(s) for s in mixed.group_levels],
        fe_names=list(mixed.fe_names),
        frame=frame,
        first_rows=first,
        time=time,
        subject=subject,
        outcome=mixed.outcome,
    )


def design_coords(d: BayesDesign, kind: str) -> dict[str, Any]:
    """Posterior coordinates ``term``, ``effect``, ``subject_id`` and ``obs``."""
    effect = ["Intercept", d.time] if kind == "linear" else EFFECTS_SIGMOID
    return {
        "term": d.fe_names,
        "effect": effect,
        "subject_id": d.subject_ids,
        "obs": np.arange(len(d.y)),
    }


def subject_first(
    X: npt.NDArray[np.float64], ids: pd.Series
) -> npt.NDArray[np.float64]:
    """Replace each row of ``X`` by its subject's first row (sigmoid covariates)."""
    codes, _ = pd.factorize(ids.to_numpy())
    first = np.full(codes.max() + 1 if len(codes) else 0, -1, dtype=np.intp)
    order = np.arange(len(codes))[::-1]
    first[codes[order]] = order
    return X[first[codes]]
