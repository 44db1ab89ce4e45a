"""Power-curve figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest

from alsprog.design import TrialDesign, power_curve
from alsprog.plots import power_curve as plot_power_curve


def test_power_curve_plot_draws_each_slowing_and_simulated_points():
    c = power_curve(
        TrialDesign(),
        [30, 126],
        slowing=[0.25, 0.5],
        simulate=True,
        n_sims=10,
        seed=1,
        n_jobs=1,
        progress=False,
    )
    ax = plot_power_curve(c)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["25% slowing", "50% slowing"]
    assert len(ax.containers) == 2  # one errorbar set per slowing
    assert ax.get_ylim() == (0, 1)


def test_power_curve_plot_rejects_other_tables():
    import pandas as pd

    with pytest.raises(ValueError, match="needs the columns"):
        plot_power_curve(pd.DataFrame({"x": [1]}))
