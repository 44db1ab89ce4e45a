"""Biomarker figures: right artists, nothing computed, figures closed."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from alsprog import plots
from alsprog.biomarkers import (
    LearningCurve,
    evaluate_classifier,
    learning_curve,
)
from alsprog.data import assemble
from alsprog.errors import ModelSpecificationError
from alsprog.simulate import simulate_cohort


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def table():
    c = simulate_cohort(30, 30, months=0, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return assemble(c.visits, c.subjects, c.imaging)


def test_roc_curves_one_line_per_fold_plus_mean_and_chance(table):
    ev = evaluate_classifier(
        table, n_repeats=2, n_permutations=0, n_bootstrap=20, seed=0
    )
    _, ax = plt.subplots()
    out = plots.roc_curves(ev, ax=ax)
    assert out is ax
    assert len(ax.lines) == 10 + 2  # 2 repeats x 5 folds, mean, chance
    mean = ev.roc_curves().query("fold == 'mean'")
    bold = max(ax.lines, key=lambda ln: ln.get_linewidth())
    assert list(bold.get_xdata()) == list(mean["fpr"])
    assert "AUC" in bold.get_label()


def test_feature_importance_bars_in_table_order():
    t = pd.DataFrame(
        {
            "feature": ["fa_cst_left", "md_cst_left", "thickness_cuneus_left"],
            "importance_mean": [0.08, 0.05, 0.0],
            "ci_lower": [0.04, 0.01, -0.02],
            "ci_upper": [0.12, 0.09, 0.02],
        }
    )
    ax = plots.feature_importance(t)
    assert len(ax.patches) == 3
    widths = [p.get_width() for p in ax.patches]
    assert widths == [0.0, 0.05, 0.08]  # first row on top
    labels = [tl.get_text() for tl in ax.get_yticklabels()]
    assert labels[-1] == "fa_cst_left"


def test_learning_curve_lines(table):
    lc = learning_curve(table, train_sizes=(10, 20), cv=3, n_repeats=1, seed=0)
    ax = plots.learning_curve(lc)
    assert len(ax.lines) == 3  # test mean, train mean, chance
    assert list(ax.lines[0].get_xdata()) == [10.0, 20.0]
    assert list(ax.lines[0].get_ydata()) == list(lc.summary["test_auc_mean"])


def test_bad_inputs_name_the_argument():
    with pytest.raises(ModelSpecificationError, match="`evaluation`"):
        plots.roc_curves(pd.DataFrame())
    with pytest.raises(ModelSpecificationError, match="ci_upper"):
        plots.feature_importance(pd.DataFrame(columns=["feature", "ci_lower"]))
    with pytest.raises(ModelSpecificationError, match="`curve`"):
        plots.learning_curve(LearningCurve)
