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


# ------------------------------------------------ renamed columns (issue 18.1)
_RENAME = {"subject_id": "patient", "months": "visit_month", "alsfrs_r_total": "frs"}


def test_subject_trajectories_on_renamed_columns_without_time(table):
    """The model's own columns name the axis, the outcome and the subject."""
    from alsprog.models import LinearMixedModel

    als = table[table["group"] == "als"].rename(columns=_RENAME)
    m = LinearMixedModel(
        "frs ~ visit_month + (visit_month | patient)", time="visit_month"
    ).fit(als)
    sid = als.dropna(subset=["frs"]).groupby("patient").size().idxmax()
    ax = subject_trajectories({"mixed": m}, als, sid, level=0.8)
    (line,) = ax.lines
    expected = m.subject_trajectories(
        line.get_xdata(), subjects=[sid], level=0.8, interval="confidence"
    )
    np.testing.assert_allclose(line.get_ydata(), expected["mean"])
    rows = als[als["patient"] == sid]
    assert line.get_xdata().max() == pytest.approx(rows["visit_month"].max())
    assert rows["visit_month"].max() >= 9.0  # the grid runs over the visits
    points = np.asarray(ax.collections[-1].get_offsets())
    np.testing.assert_allclose(np.sort(points[:, 1]), np.sort(rows["frs"].dropna()))
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("visit_month", "frs")


# ------------------------------- one band type, distinguishable lines (issue 18.15)
_SID = "P0002"


def _band_edges(band, n):
    """(lower, upper) of a fill_between polygon over n points."""
    v = band.get_paths()[0].vertices
    return v[1 : n + 1, 1], v[n + 2 : 2 * n + 2, 1][::-1]


@pytest.fixture(scope="module")
def three_models(table):
    import warnings

    from alsprog.errors import ConvergenceWarning
    from alsprog.models import BayesianTrajectoryModel, LinearMixedModel

    als = table[table["group"] == "als"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        models = {
            "mixed": LinearMixedModel(
                "alsfrs_r_total ~ months + (months | subject_id)"
            ).fit(als),
            # the Bayesian line used to hide the mixed model's (same colour-less
            # solid style, drawn on top) and showed another band type
            "bayes": BayesianTrajectoryModel(
                chains=1, draws=60, tune=60, seed=1, progress=False
            ).fit(als),
            "intercepts": LinearMixedModel(
                "alsfrs_r_total ~ months + (1 | subject_id)"
            ).fit(als),
        }
    return als, models


@pytest.mark.slow  # three models fitted; heavy for the quick tier; CI runs the slow tier
def test_every_model_gets_the_same_band_type_and_its_own_line(three_models):
    als, models = three_models
    ax = subject_trajectories(models, als, _SID, level=0.9)
    lines = ax.lines
    assert [ln.get_label() for ln in lines] == ["mixed", "bayes", "intercepts"]
    # distinguishable: colour, dash pattern and marker differ between models, and
    # the first line is the widest and lowest so the later ones never hide it
    assert len({ln.get_color() for ln in lines}) == 3
    assert len({str(ln.get_linestyle()) for ln in lines}) == 3
    assert len({ln.get_marker() for ln in lines}) == 3
    assert lines[0].get_linewidth() > max(ln.get_linewidth() for ln in lines[1:])
    assert [ln.get_zorder() for ln in lines] == sorted(ln.get_zorder() for ln in lines)
    bands = [c for c in ax.collections if c.get_gid() is not None]
    assert [b.get_gid() for b in bands] == ["confidence"] * 3
    x = lines[0].get_xdata()
    mixed, bayes, intercepts = models.values()
    conf = [
        mixed.subject_trajectories(x, subjects=[_SID]),  # every model's default
        bayes.subject_trajectories(x, subjects=[_SID]),  # credible band of the mean
        intercepts.subject_trajectories(x, subjects=[_SID]),
    ]
    for band, tr in zip(bands, conf, strict=True):
        lo, hi = _band_edges(band, len(x))
        np.testing.assert_allclose(lo, tr["lower"], rtol=1e-10)
        np.testing.assert_allclose(hi, tr["upper"], rtol=1e-10)
    # not the mixed model's prediction interval, which is wider
    pred = mixed.subject_trajectories(x, subjects=[_SID], interval="prediction")
    assert (_band_edges(bands[0], len(x))[0] > pred["lower"].to_numpy() + 0.5).all()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [
        "mixed",
        "bayes",
        "intercepts",
        "visits",
        "90% band of the mean curve (confidence / credible)",
    ]


@pytest.mark.slow  # three models fitted; heavy for the quick tier; CI runs the slow tier
def test_prediction_bands_for_every_model_when_asked(three_models):
    als, models = three_models
    ax = subject_trajectories(models, als, _SID, interval="prediction")
    bands = [c for c in ax.collections if c.get_gid() is not None]
    assert [b.get_gid() for b in bands] == ["prediction"] * 3
    x = ax.lines[0].get_xdata()
    pred = models["mixed"].subject_trajectories(
        x, subjects=[_SID], interval="prediction"
    )
    lo, hi = _band_edges(bands[0], len(x))
    np.testing.assert_allclose(lo, pred["lower"], rtol=1e-10)
    conf = models["bayes"].subject_trajectories(x, subjects=[_SID])
    lo, hi = _band_edges(bands[1], len(x))
    assert ((hi - lo) > (conf["upper"] - conf["lower"]).to_numpy()).all()
    assert ax.get_legend().get_texts()[-1].get_text() == (
        "90% prediction interval (a new visit)"
    )
    with pytest.raises(ValueError, match="interval"):
        subject_trajectories(models, als, _SID, interval="credible")
