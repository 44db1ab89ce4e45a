"""ENCALS-style risk groups and their figures (issue 25)."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from alsprog.models import SurvivalModel, risk_groups
from alsprog.models.survival._km import kaplan_meier
from alsprog.plots import risk_group_curves, survival_curve


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n = 400
    x = rng.normal(size=n)
    t = rng.weibull(1.5, n) * 20 * np.exp(-0.8 * x / 1.5)
    c = rng.uniform(5, 40, n)
    return pd.DataFrame(
        {
            "subject_id": [f"S{i:03d}" for i in range(n)],
            "t": np.minimum(t, c),
            "d": (t <= c).astype(int),
            "x": x,
        }
    )


@pytest.fixture(scope="module")
def model(data):
    return SurvivalModel("Surv(t, d) ~ x").fit(data)


def test_quintiles_of_the_fitted_index_and_observed_curves(model, data):
    g = risk_groups(model, data)
    counts = g.assignments["group"].value_counts().sort_index()
    assert counts.index.tolist() == [1, 2, 3, 4, 5] and (counts == 80).all()
    assert_allclose(
        g.cut_points, np.quantile(model.prognostic_index(data), [0.2, 0.4, 0.6, 0.8])
    )
    # each group's curve is the Kaplan-Meier of its members, from (0, 1)
    members = g.assignments.index[g.assignments["group"] == 3]
    sub = data.set_index("subject_id").loc[members]
    km = kaplan_meier(sub["t"], sub["d"])
    curve = g.km[g.km["group"] == 3]
    assert curve.iloc[0][["time", "survival"]].tolist() == [0.0, 1.0]
    assert_allclose(curve["survival"].iloc[1:], km["survival"])
    # the predicted curve is the members' mean prediction
    p = model.predict_survival(sub.reset_index(), [10.0])
    got = g.predicted[(g.predicted["group"] == 3)]
    at10 = np.interp(10.0, got["time"], got["survival"])
    assert abs(at10 - p["survival"].mean()) < 0.01
    # higher index, shorter survival; observed and predicted medians agree
    assert g.table["median_predicted"].is_monotonic_decreasing
    med = g.table["median_observed"].to_numpy()
    assert med[0] > 2 * med[-1]
    both = g.table.dropna(subset=["median_observed", "median_predicted"])
    assert_allclose(both["median_observed"], both["median_predicted"], rtol=0.3)


def test_given_cut_points_place_new_patients(model, data):
    g = risk_groups(model, data.iloc[:50], cut_points=[0.0])
    pi = model.prognostic_index(data.iloc[:50])
    assert (
        g.assignments["group"].to_numpy() == np.where(pi.to_numpy() > 0, 2, 1)
    ).all()
    no_events = data.iloc[:50].drop(columns=["t", "d"])
    g2 = risk_groups(model, no_events, n_groups=3, times=[0, 10, 20])
    assert g2.km.empty and g2.predicted["time"].unique().tolist() == [0.0, 10.0, 20.0]
    with pytest.raises(ValueError, match="cut_points"):
        risk_groups(model, data, cut_points=[np.nan])


def test_figures_draw_every_group_and_the_patient_curve(model, data):
    g = risk_groups(model, data, n_groups=4)
    fig, ax = plt.subplots()
    risk_group_curves(g, ax=ax)
    assert len(ax.get_legend().get_texts()) == 4
    assert len(ax.get_lines()) == 8  # observed and predicted per group
    p = model.predict_survival(data.iloc[[0]], np.linspace(0, 40, 41))
    fig2, ax2 = plt.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        survival_curve(p, time="months", label="S000", ax=ax2)
    assert len(ax2.collections) == 1  # the band
    plt.close("all")
