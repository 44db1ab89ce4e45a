"""Fan chart and calibration curve draw what the forecast functions computed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from alsprog.plots import calibration_curve, fan_chart


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_fan_chart_band_starts_at_last_visit_and_shows_later_visits():
    h = pd.DataFrame(
        {"subject_id": ["A"] * 2, "months": [0.0, 3.0], "alsfrs_r_total": [40.0, 37.0]}
    )
    f = pd.DataFrame(
        {
            "subject_id": ["A"] * 3,
            "months": [6.0, 9.0, 12.0],
            "median": [35.0, 33.0, 31.0],
            "lower": [30.0, 27.0, 24.0],
            "upper": [39.0, 38.0, 37.0],
        }
    )
    a = pd.DataFrame(
        {
            "subject_id": ["A"] * 3,
            "months": [3.0, 6.0, 12.0],
            "alsfrs_r_total": [37.0, 34.0, 30.0],
        }
    )
    ax = fan_chart(h, f, "A", actual=a)
    line = ax.get_lines()[0]
    assert_allclose(line.get_xdata(), [3.0, 6.0, 9.0, 12.0])
    assert_allclose(line.get_ydata(), [37.0, 35.0, 33.0, 31.0])
    later = ax.collections[-1].get_offsets()
    assert_allclose(np.asarray(later)[:, 0], [6.0, 12.0])


def test_fan_chart_errors():
    h = pd.DataFrame({"subject_id": ["A"], "months": [0.0], "alsfrs_r_total": [40.0]})
    with pytest.raises(ValueError, match="median"):
        fan_chart(h, pd.DataFrame({"subject_id": ["A"], "months": [6.0]}), "A")
    f = pd.DataFrame(
        {
            "subject_id": ["A"],
            "months": [6.0],
            "median": [1.0],
            "lower": [0.0],
            "upper": [2.0],
        }
    )
    with pytest.raises(ValueError, match="'Z'"):
        fan_chart(h, f, "Z")


def test_calibration_curve_one_line_per_model():
    t = pd.DataFrame(
        {
            "model": ["a", "a", "b", "b"],
            "level": [0.5, 0.9, 0.5, 0.9],
            "coverage": [0.45, 0.88, 0.52, 0.93],
        }
    )
    ax = calibration_curve(t)
    assert len(ax.get_lines()) == 3
    assert_allclose(ax.get_lines()[2].get_ydata(), [0.52, 0.93])
    with pytest.raises(ValueError, match="coverage"):
        calibration_curve(t.drop(columns="coverage"))


def test_fan_chart_reads_the_forecast_columns_of_a_renamed_model():
    """A forecast from a model on patient/visit_month/frs draws without naming them."""
    from alsprog.data import assemble
    from alsprog.forecast import forecast
    from alsprog.models import LinearMixedModel
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(60, seed=8)
    t = assemble(c.visits, c.subjects).rename(
        columns={
            "subject_id": "patient",
            "months": "visit_month",
            "alsfrs_r_total": "frs",
        }
    )
    t = t[t["frs"].notna()]
    new = t["patient"] <= "P0005"
    m = LinearMixedModel(
        "frs ~ visit_month + (visit_month | patient)", time="visit_month"
    ).fit(t[~new])
    hist = t[new & (t["visit_month"] <= 3.5)]
    f = forecast(m, hist, [6.0, 9.0, 12.0])
    sid = hist["patient"].iloc[0]
    ax = fan_chart(hist, f, sid, actual=t[new])
    line = ax.get_lines()[0]
    h = hist[hist["patient"] == sid]
    assert_allclose(line.get_xdata(), [h["visit_month"].max(), 6.0, 9.0, 12.0])
    assert_allclose(
        line.get_ydata()[1:], f.loc[f["patient"] == sid, "median"].to_numpy()
    )
    assert line.get_ydata()[0] == h["frs"].iloc[-1]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("visit_month", "frs")


def test_fan_chart_axis_follows_the_outcome():
    """ALSFRS-R on its full 0-48 scale; FVC % on the data's range, never below the
    dictionary's 0 (issue 21: FVC as an outcome)."""
    h = pd.DataFrame({"subject_id": ["A"] * 2, "months": [0.0, 3.0]})
    f = pd.DataFrame(
        {
            "subject_id": ["A"] * 2,
            "months": [6.0, 9.0],
            "median": [70.0, 64.0],
            "lower": [55.0, 2.0],
            "upper": [85.0, 90.0],
        }
    )
    ax = fan_chart(
        h.assign(alsfrs_r_total=[40.0, 37.0]),
        f.assign(median=[35.0, 33.0], lower=[30.0, 27.0], upper=[39.0, 38.0]),
        "A",
    )
    assert ax.get_ylim() == (0.0, 48.0)
    plt.close("all")
    ax = fan_chart(
        h.assign(fvc_percent_predicted=[88.0, 80.0]),
        f,
        "A",
        outcome="fvc_percent_predicted",
    )
    lo, hi = ax.get_ylim()
    assert lo == 0.0 and 90.0 < hi < 100.0
    assert ax.get_ylabel() == "fvc_percent_predicted"
