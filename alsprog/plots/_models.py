"""Figures comparing fitted models.

Owns: :func:`model_comparison` (expected log predictive density by PSIS-LOO with its
standard error, one row per model).
Leaves: the LOO numbers to the models' ``loo()`` and ArviZ; the comparison table to
its caller (e.g. :mod:`alsprog.report`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alsprog.errors import ModelSpecificationError

__all__ = ["model_comparison"]


def model_comparison(
    comparison: pd.DataFrame,
    *,
    elpd: str = "elpd_loo",
    se: str = "elpd_se",
    ax: Any = None,
) -> Any:
    """ELPD (LOO) of each model with ±1 SE, best at the top.

    Parameters
    ----------
    comparison : pandas.DataFrame
        One row per model, indexed by model name, with the ELPD and its standard
        error (rows with a missing ELPD, e.g. non-Bayesian models, are left out).
    elpd, se : str
        Their column names.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ModelSpecificationError
        If a column is missing or no row has an ELPD.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> t = pd.DataFrame({"elpd_loo": [-2234.2, -2202.2], "elpd_se": [22.8, 21.6]},
    ...                  index=["linear", "sigmoid"])
    >>> [x.get_text() for x in model_comparison(t).get_yticklabels()]
    ['linear', 'sigmoid']
    >>> plt.close("all")
    """
    import matplotlib.pyplot as plt

    if not isinstance(comparison, pd.DataFrame):
        raise ModelSpecificationError(
            f"`comparison` must be a DataFrame; got {type(comparison).__name__}."
        )
    missing = [c for c in (elpd, se) if c not in comparison.columns]
    if missing:
        raise ModelSpecificationError(f"`comparison` lacks column(s) {missing}.")
    d = comparison.loc[comparison[elpd].notna()].sort_values(elpd)
    if d.empty:
        raise ModelSpecificationError("`comparison` has no model with an ELPD.")
    ax = ax if ax is not None else plt.gca()
    y = np.arange(len(d))
    ax.errorbar(
        d[elpd].to_numpy(float),
        y,
        xerr=d[se].to_numpy(float),
        fmt="o",
        color="C0",
        capsize=4,
    )
    ax.axvline(float(d[elpd].max()), color="0.6", ls=":", lw=0.8)
    ax.set_yticks(y, [str(i) for i in d.index])
    ax.set_ylim(-0.6, len(d) - 0.4)
    ax.set_xlabel("ELPD (PSIS-LOO, ± 1 SE); higher predicts better")
    return ax
