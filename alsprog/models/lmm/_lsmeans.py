"""LS means (estimated marginal means) and their contrasts, as emmeans computes them.

Owns: :func:`reference_grid` (every level of each factor of the fixed part, numeric
covariates at their mean over the fit's rows, or at the values of ``at``),
:func:`lsmeans_matrix` (each requested cell's row of fixed-effect weights: the
equally weighted mean of the grid's model-matrix rows in that cell) and
:func:`pairwise` (the differences of every pair of means, with Tukey or Bonferroni
adjustment).
Leaves: tests and df to :mod:`alsprog.models.lmm._ddf`; the public methods to
:mod:`alsprog.models.lmm._inference`.

Reference: Lenth RV. emmeans: Estimated Marginal Means, aka Least-Squares Means
(R package); Searle, Speed & Milliken, Am Stat 1980;34:216-221.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import ModelSpecificationError

__all__ = ["lsmeans_matrix", "pairwise", "reference_grid"]


def _is_factor(col: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)


def _levels(col: pd.Series) -> list[Any]:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [c for c in col.cat.categories if (col == c).any()]
    return sorted(pd.unique(col.dropna()).tolist())


def reference_grid(
    frame: pd.DataFrame,
    variables: Sequence[str],
    at: Mapping[str, Any] | None,
) -> pd.DataFrame:
    """emmeans' reference grid: the first variable varies fastest."""
    at = dict(at or {})
    unknown = [v for v in at if v not in variables]
    if unknown:
        raise ModelSpecificationError(
            f"`at` names {unknown}, which the model's fixed effects do not use "
            f"({', '.join(variables)})."
        )
    values: dict[str, list[Any]] = {}
    for v in variables:
        col = frame[v]
        if v in at:
            vals = at[v]
            vals = list(vals) if isinstance(vals, list | tuple | np.ndarray) else [vals]
            if not vals:
                raise ModelSpecificationError(f"`at[{v!r}]` holds no value.")
            if _is_factor(col):
                seen = set(_levels(col))
                bad = [x for x in vals if x not in seen]
                if bad:
                    raise ModelSpecificationError(
                        f"`at[{v!r}]` holds {bad}, not levels of {v!r} in the fit "
                        f"({_levels(col)})."
                    )
            values[v] = vals
        elif _is_factor(col):
            values[v] = _levels(col)
        else:
            values[v] = [float(col.mean())]
    combos = itertools.product(*(values[v] for v in reversed(variables)))
    rows = [dict(zip(reversed(variables), c, strict=True)) for c in combos]
    grid = pd.DataFrame(rows, columns=list(variables))
    for v in variables:
        if isinstance(frame[v].dtype, pd.CategoricalDtype):
            grid[v] = pd.Categorical(grid[v], categories=frame[v].cat.categories)
    return grid


def lsmeans_matrix(
    grid: pd.DataFrame,
    X: npt.NDArray[np.float64],
    specs: Sequence[str],
) -> tuple[pd.DataFrame, npt.NDArray[np.float64]]:
    """The cells of ``specs`` (first varying fastest) and each cell's row of weights:
    the mean of its grid rows of ``X`` (other factors averaged with equal weights)."""
    keys = grid[list(specs)]
    uniq = {s: pd.unique(keys[s]).tolist() for s in specs}
    combos = itertools.product(*(uniq[s] for s in reversed(specs)))
    cells = pd.DataFrame(
        [dict(zip(reversed(specs), c, strict=True)) for c in combos],
        columns=list(specs),
    )
    L = np.empty((len(cells), X.shape[1]))
    for i in range(len(cells)):
        mask = np.ones(len(grid), dtype=bool)
        for s in specs:
            mask &= (keys[s] == cells.loc[i, s]).to_numpy()
        L[i] = X[mask].mean(axis=0)
    return cells, L


def pairwise(
    cells: pd.DataFrame, L: npt.NDArray[np.float64]
) -> tuple[list[str], npt.NDArray[np.float64]]:
    """Every pair ``i < j`` of cells: label ``"a - b"`` and weights ``L_i - L_j``
    (emmeans' ``pairs()``)."""
    labels = [
        " ".join(str(v) for v in cells.iloc[i].tolist()) for i in range(len(cells))
    ]
    names, rows = [], []
    for i in range(len(cells)):
        for j in range(i + 1, len(cells)):
            names.append(f"{labels[i]} - {labels[j]}")
            rows.append(L[i] - L[j])
    return names, np.array(rows).reshape(len(rows), L.shape[1])
