"""The report never names a non-converged model, or one whose PSIS-LOO is
unreliable, as the best (issue 26, honest model comparison)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import pytest

from alsprog.report.sections.models import MAX_PARETO_K_BAD, best_by_loo


def _comp(rank, converged, bad):
    return pd.DataFrame(
        {"rank": rank, "converged": converged, "n_pareto_k_bad": bad},
        index=["sigmoid", "linear", "mixed"][: len(rank)],
    )


@pytest.mark.parametrize(
    ("rank", "converged", "bad", "want"),
    [
        ([0.0, 1.0], [True, True], [0, 0], "sigmoid"),
        ([0.0, 1.0], [False, True], [0, 0], "linear (sigmoid did not converge)"),
        (
            [0.0, 1.0],
            [True, True],
            [MAX_PARETO_K_BAD + 1, MAX_PARETO_K_BAD],
            f"linear (sigmoid {MAX_PARETO_K_BAD + 1} Pareto k > 0.7)",
        ),
        (
            [1.0, 0.0],
            [False, False],
            [0, 80],
            "none (linear did not converge; sigmoid did not converge)",
        ),
        # a model outside the LOO comparison (rank NaN) is never named
        (
            [0.0, 1.0, None],
            [False, True, True],
            [0, 0, 0],
            "linear (sigmoid did not converge)",
        ),
    ],
)
def test_best_model_is_the_first_that_passed_the_gates(rank, converged, bad, want):
    assert best_by_loo(_comp(rank, converged, bad)) == want


@pytest.mark.slow  # reads the tiny demo run (minutes, shared with the other report tests)
def test_the_tiny_demo_names_no_unconverged_model(tiny_demo):
    out = Path(tiny_demo.out)
    comp = pd.read_csv(out / "models" / "comparison.csv", index_col="model")
    text = html.unescape((out / "report.html").read_text())
    assert "best model by LOO" in text
    shown = best_by_loo(comp)
    assert shown in text
    for name in comp.index[(comp["converged"] == False) & comp["rank"].notna()]:  # noqa: E712
        assert not shown.startswith(name)
