"""Figures of imaging-biomarker results.

Owns: ROC curves of a :class:`~alsprog.biomarkers.ClassifierEvaluation`, the
feature-importance bar chart of :func:`~alsprog.biomarkers.feature_importance` and the
learning curve of :func:`~alsprog.biomarkers.learning_curve`.
Leaves: every number drawn to the public methods and tables of
:mod:`alsprog.biomarkers` (nothing is computed here).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from alsprog.errors import ModelSpecificationError

__all__ = ["feature_importance", "learning_curve", "roc_curves"]


def _axes(ax: Any) -> Any:
    import matplotlib.pyplot as plt

    return ax if ax is not None else plt.gca()


def roc_curves(evaluation: Any, ax: Any = None) -> Any:
    """Held-out ROC curve of every fold (thin) and their vertical mean (bold).

    Parameters
    ----------
    evaluation : ClassifierEvaluation
        From :func:`~alsprog.biomarkers.evaluate_classifier`; drawn from its
        :meth:`roc_curves` table.
    ax : matplotlib.axes.Axes, optional
        Default: the current Axes.

    Returns
    -------
    matplotlib.axes.Axes
        One line per fold, the mean curve (labelled with the summary AUC when
        available) and the chance diagonal.

    Raises
    ------
    ModelSpecificationError
        If ``evaluation`` has no ``roc_curves`` method.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> from alsprog.biomarkers import evaluate_classifier
    >>> c = simulate_cohort(30, 30, months=0, seed=1)
    >>> df = assemble(c.visits, c.subjects, c.imaging)
    >>> ev = evaluate_classifier(df, n_permutations=0, n_bootstrap=20, seed=0)
    >>> ax = roc_curves(ev)
    >>> len(ax.lines)  # 5 folds, mean, chance
    7
    >>> plt.close("all")
    """
    if not callable(getattr(evaluation, "roc_curves", None)):
        raise ModelSpecificationError(
            "`evaluation` must be a ClassifierEvaluation (from evaluate_classifier); "
            f"got {type(evaluation).__name__}."
        )
    ax = _axes(ax)
    curves = evaluation.roc_curves()
    is_mean = curves["fold"].astype(str) == "mean"
    for _, g in curves.loc[~is_mean].groupby(["repeat", "fold"], sort=False):
        ax.plot(g["fpr"], g["tpr"], color="0.6", lw=0.8, alpha=0.7)
    mean = curves.loc[is_mean]
    if len(mean):
        label = "mean"
        summary = getattr(evaluation, "summary", None)
        if isinstance(summary, pd.DataFrame) and "roc_auc" in summary.index:
            s = summary.loc["roc_auc"]
            label = f"mean (AUC {s['estimate']:.2f}"
            if {"ci_lower", "ci_upper"} <= set(s.index):
                label += f", {s['ci_lower']:.2f}-{s['ci_upper']:.2f}"
            label += ")"
        ax.plot(mean["fpr"], mean["tpr"], color="C0", lw=2.5, label=label)
    ax.plot([0, 1], [0, 1], ls="--", color="k", lw=0.8, label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.legend(loc="lower right", fontsize="small")
    return ax


def feature_importance(importance_table: pd.DataFrame, ax: Any = None) -> Any:
    """Horizontal bars of permutation importance with their intervals.

    Parameters
    ----------
    importance_table : pandas.DataFrame
        From :func:`~alsprog.biomarkers.feature_importance` (``feature,
        importance_mean, ci_lower, ci_upper``); drawn in its row order, the first row
        at the top.
    ax : matplotlib.axes.Axes, optional
        Default: the current Axes.

    Returns
    -------
    matplotlib.axes.Axes
        One bar per feature, error bars from the interval, a line at 0.

    Raises
    ------
    ModelSpecificationError
        If a needed column is missing.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> t = pd.DataFrame({"feature": ["fa_cst_left", "thickness_cuneus_left"],
    ...                   "importance_mean": [0.06, 0.0], "ci_lower": [0.02, -0.01],
    ...                   "ci_upper": [0.1, 0.01]})
    >>> len(feature_importance(t).patches)
    2
    >>> plt.close("all")
    """
    need = ["feature", "importance_mean", "ci_lower", "ci_upper"]
    if not isinstance(importance_table, pd.DataFrame):
        raise ModelSpecificationError(
            "`importance_table` must be the DataFrame from feature_importance; got "
            f"{type(importance_table).__name__}."
        )
    missing = [c for c in need if c not in importance_table.columns]
    if missing:
        raise ModelSpecificationError(
            f"`importance_table` lacks column(s) {missing}; pass the table from "
            "alsprog.biomarkers.feature_importance"
        )
    ax = _axes(ax)
    t = importance_table.iloc[::-1]
    mean = t["importance_mean"].to_numpy(float)
    err = [mean - t["ci_lower"].to_numpy(float), t["ci_upper"].to_numpy(float) - mean]
    ax.barh(
        range(len(t)),
        mean,
        xerr=err,
        color="C0",
        ecolor="k",
        capsize=3,
        tick_label=t["feature"].astype(str).tolist(),
    )
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("drop in held-out ROC AUC when permuted")
    return ax


def learning_curve(curve: Any, ax: Any = None) -> Any:
    """Held-out and training AUC against the number of training subjects.

    Parameters
    ----------
    curve : LearningCurve
        From :func:`~alsprog.biomarkers.learning_curve`; drawn from its ``summary``.
    ax : matplotlib.axes.Axes, optional
        Default: the current Axes.

    Returns
    -------
    matplotlib.axes.Axes
        Lines of the mean test and training AUC, the test band (central ``level``
        range of the folds) and the chance line at 0.5.

    Raises
    ------
    ModelSpecificationError
        If ``curve`` has no ``summary`` table.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from alsprog.biomarkers import LearningCurve
    >>> s = pd.DataFrame({"test_auc_mean": [0.7, 0.8], "test_auc_sd": [0.1, 0.05],
    ...                   "test_auc_lower": [0.55, 0.72], "test_auc_upper": [0.85, 0.88],
    ...                   "train_auc_mean": [0.95, 0.88]}, index=[10, 40])
    >>> len(learning_curve(LearningCurve(pd.DataFrame(), s)).lines)
    3
    >>> plt.close("all")
    """
    summary = getattr(curve, "summary", None)
    if not isinstance(summary, pd.DataFrame):
        raise ModelSpecificationError(
            "`curve` must be a LearningCurve (from learning_curve); got "
            f"{type(curve).__name__}."
        )
    ax = _axes(ax)
    n = summary.index.to_numpy(float)
    level = getattr(curve, "level", None)
    band = f"test ({level:.0%} range)" if level is not None else "test range"
    ax.fill_between(
        n,
        summary["test_auc_lower"],
        summary["test_auc_upper"],
        color="C0",
        alpha=0.2,
        label=band,
    )
    ax.plot(n, summary["test_auc_mean"], "o-", color="C0", label="held-out AUC")
    ax.plot(n, summary["train_auc_mean"], "s--", color="C1", label="training AUC")
    ax.axhline(0.5, color="k", ls=":", lw=0.8)
    ax.set_xlabel("training subjects")
    ax.set_ylabel("ROC AUC")
    ax.legend(loc="lower right", fontsize="small")
    return ax
