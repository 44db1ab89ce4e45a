"""Trajectory figures: spaghetti by onset site, per-patient model curves, imaging by
group, and the LOO model comparison."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from alsprog.errors import ModelSpecificationError
from alsprog.plots import (
    feature_trajectories,
    model_comparison,
    spaghetti,
    subject_trajectories,
)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def table():
    from alsprog.data import assemble
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(40, 10, months=12, seed=3)
    return assemble(c.visits, c.subjects, c.imaging)


def test_spaghetti_one_line_per_patient_coloured_by_onset_site(table):
    als = table[table["group"] == "als"]
    ax = spaghetti(als)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    sites = als.drop_duplicates("subject_id")["onset_site"].value_counts()
    assert labels == [f"{s} (n={sites[s]})" for s in sorted(sites.index)]
    # one artist per onset site; each subject's polyline ends in a NaN gap
    assert len(ax.lines) == len(sites)
    assert len({line.get_color() for line in ax.lines}) == len(sites)
    n_gaps = sum(int(np.isnan(line.get_xdata()).sum()) for line in ax.lines)
    assert n_gaps == als["subject_id"].nunique()
    n_points = sum(int((~np.isnan(line.get_ydata())).sum()) for line in ax.lines)
    assert n_points == als["alsfrs_r_total"].notna().sum()


def test_spaghetti_without_grouping_and_missing_column(table):
    ax = spaghetti(table[table["group"] == "als"], by=None)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["all (n=40)"]
    with pytest.raises(ModelSpecificationError, match="'fvc'"):
        spaghetti(table, outcome="fvc")


def test_subject_trajectories_draws_model_curves_through_its_public_method(table):
    from alsprog.models import LinearMixedModel

    als = table[table["group"] == "als"]
    m = LinearMixedModel("alsfrs_r_total ~ months + (months | subject_id)").fit(als)
    ax = subject_trajectories({"mixed": m}, als, "P0003", level=0.8)
    (line,) = ax.lines
    expected = m.subject_trajectories(line.get_xdata(), subjects=["P0003"], level=0.8)
    np.testing.assert_allclose(line.get_ydata(), expected["mean"])
    assert ax.get_title() == "P0003"


class _OnsetModel:
    """A stand-in model on months since onset (as the sigmoid model is)."""

    kind = "sigmoid"
    time = "months_since_onset"

    def subject_trajectories(self, times, *, subjects, level):
        t = np.asarray(times, float)
        return pd.DataFrame(
            {
                "subject_id": subjects[0],
                "months_since_onset": t,
                "mean": 48 - t,
                "lower": 47 - t,
                "upper": 49 - t,
            }
        )


def test_subject_trajectories_shifts_a_model_on_months_since_onset(table):
    als = table[table["group"] == "als"]
    rows = als[als["subject_id"] == "P0002"]
    offset = float((rows["months_since_onset"] - rows["months"]).iloc[0])
    ax = subject_trajectories(_OnsetModel(), als, "P0002", times=[0.0, 6.0])
    (line,) = ax.lines
    np.testing.assert_allclose(line.get_xdata(), [0.0, 6.0])
    np.testing.assert_allclose(line.get_ydata(), [48 - offset, 42 - offset])


def test_subject_trajectories_unknown_subject(table):
    with pytest.raises(ModelSpecificationError, match="'nobody' has no rows"):
        subject_trajectories(_OnsetModel(), table, "nobody")


def test_feature_trajectories_by_group_with_rates_in_the_legend(table):
    rates = pd.DataFrame(
        {"feature": ["fa_cst_left"], "als_slope": [-0.012], "control_slope": [-0.001]}
    )
    ax = feature_trajectories(table, "fa_cst_left", rates=rates)
    imaged = table.dropna(subset=["fa_cst_left"])
    assert len(ax.lines) == 2  # one per group
    n_gaps = sum(int(np.isnan(line.get_xdata()).sum()) for line in ax.lines)
    assert n_gaps == imaged["subject_id"].nunique()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["als (n=40; -0.012/yr)", "control (n=10; -0.001/yr)"]


def test_model_comparison_orders_by_elpd_and_skips_missing():
    t = pd.DataFrame(
        {"elpd_loo": [np.nan, -200.0, -180.0], "elpd_se": [np.nan, 5.0, 4.0]},
        index=["lmm", "linear", "sigmoid"],
    )
    ax = model_comparison(t)
    assert [x.get_text() for x in ax.get_yticklabels()] == ["linear", "sigmoid"]
    with pytest.raises(ModelSpecificationError, match="no model with an ELPD"):
        model_comparison(t.iloc[:1])
    with pytest.raises(ModelSpecificationError, match="lacks column"):
        model_comparison(t[["elpd_loo"]])
