"""evaluate_survival, backtest_survival and kaplan_meier (issue 25) against R.

Reference: tests/reference/survival_evaluate_reference.R (survfit with delayed
entry; the landmark protocol on the Cox predictions of
survival_scores_predictions.csv scored by riskRegression::Score,
survival::concordance and coxph for the calibration slope).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from alsprog.errors import DataValidationError
from alsprog.forecast import backtest_survival, evaluate_survival
from alsprog.models import SurvivalModel
from alsprog.models.survival._km import kaplan_meier, km_at

REF = Path(__file__).resolve().parents[1] / "reference"


@pytest.fixture(scope="module")
def ref():
    return json.loads((REF / "survival_evaluate_reference.json").read_text())


@pytest.fixture(scope="module")
def pred():
    p = pd.read_csv(REF / "survival_scores_predictions.csv")
    return p.assign(subject_id=[f"S{i:03d}" for i in range(len(p))])


def test_kaplan_meier_with_delayed_entry_equals_survfit(ref):
    lung = pd.read_csv(REF / "lung.csv")
    km = kaplan_meier(lung["time"], lung["event"], entry=lung["entry"])
    r = ref["km"]
    assert_allclose(km["time"], r["time"])
    assert_allclose(km["n_at_risk"], r["n_risk"])
    assert_allclose(km["n_events"], r["n_event"])
    for col, key in (
        ("survival", "surv"),
        ("se", "se"),
        ("lower", "lower"),
        ("upper", "upper"),
    ):
        assert_allclose(km[col], r[key], rtol=1e-10, err_msg=col)
    assert km_at(km, [0.0])[0] == 1.0 and km_at(km, [1e9])[0] == km["survival"].iloc[-1]


def _landmark_predictions(pred, landmark=180.0):
    """Survival at 365 and 540 given survival to 180, as long rows."""
    s180 = 1 - pred["risk_180"]
    rows = []
    for h, col in ((365.0, "risk_365"), (540.0, "risk_540")):
        rows.append(
            pd.DataFrame(
                {
                    "subject_id": pred["subject_id"],
                    "days": h,
                    "survival": (1 - pred[col]) / s180,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_landmark_scores_equal_riskregression_concordance_and_coxph(pred, ref):
    actual = pred[["subject_id", "time", "event"]]
    s = evaluate_survival(
        _landmark_predictions(pred),
        actual,
        event_time="time",
        event="event",
        landmark=180.0,
    )
    sc = s.scores
    assert sc["horizon"].tolist() == ref["horizons"]
    assert (sc["n"] == ref["n"]).all()
    assert_allclose(sc["auc"], ref["auc"], rtol=1e-10)
    assert_allclose(sc["brier"], ref["brier"], rtol=1e-10)
    assert_allclose(sc["brier_km"], ref["brier_null"], rtol=1e-10)
    assert_allclose(sc["harrell_c"], ref["harrell"], rtol=1e-10)
    assert_allclose(sc["uno_c"], ref["uno"], rtol=1e-10)
    assert_allclose(sc["calibration_slope"], ref["slope"], rtol=1e-6)


def test_calibration_table_is_observed_against_predicted(pred):
    actual = pred[["subject_id", "time", "event"]]
    p = pd.DataFrame(
        {"subject_id": pred["subject_id"], "t": 365.0, "survival": 1 - pred["risk_365"]}
    )
    s = evaluate_survival(p, actual, event_time="time", event="event", n_groups=4)
    cal = s.calibration
    assert cal["group"].tolist() == [1, 2, 3, 4] and cal["n"].sum() == len(pred)
    # group 1 has the lowest predicted risk: the highest predicted survival
    assert cal["predicted"].is_monotonic_decreasing
    g1 = (1 - pred["risk_365"]).rank(method="first") > 0.75 * len(pred)
    km = kaplan_meier(pred.loc[g1, "time"], pred.loc[g1, "event"])
    assert_allclose(cal["observed"].iloc[0], km_at(km, [365.0])[0])


def test_calibration_slope_detects_overconfident_predictions():
    rng = np.random.default_rng(3)
    n = 4000
    x = rng.normal(size=n)
    t = rng.exponential(1 / np.exp(x))  # hazard exp(x), S(t) = exp(-t e^x)
    c = rng.exponential(2.0, n)
    actual = pd.DataFrame(
        {
            "subject_id": np.arange(n).astype(str),
            "time": np.minimum(t, c),
            "event": (t <= c).astype(int),
        }
    )

    def preds(scale):
        return pd.DataFrame(
            {
                "subject_id": actual["subject_id"],
                "t": 0.5,
                "survival": np.exp(-0.5 * np.exp(scale * x)),
            }
        )

    good = evaluate_survival(preds(1.0), actual, event_time="time", event="event")
    over = evaluate_survival(preds(2.0), actual, event_time="time", event="event")
    assert abs(good.scores["calibration_slope"].iloc[0] - 1) < 0.1
    assert abs(over.scores["calibration_slope"].iloc[0] - 0.5) < 0.06


def test_missing_predictions_are_named(pred):
    actual = pred[["subject_id", "time", "event"]]
    p = _landmark_predictions(pred)
    p = p[p["subject_id"] != "S005"]
    with pytest.raises(DataValidationError, match="S005"):
        evaluate_survival(p, actual, event_time="time", event="event", landmark=180.0)
    with pytest.raises(ValueError, match="after the landmark"):
        evaluate_survival(
            _landmark_predictions(pred),
            actual,
            event_time="time",
            event="event",
            landmark=400.0,
        )


@pytest.mark.slow  # seconds: the quick tier is full
def test_backtest_scores_each_model_on_the_same_held_out_patients():
    from alsprog.simulate import simulate_cohort

    f = "Surv(death_or_tracheostomy_months, event_observed) ~ delta_fs + onset_site"
    models = {
        "rp": SurvivalModel(f, time_origin="onset"),
        "cox": SurvivalModel(f, method="cox", time_origin="onset"),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, pa = backtest_survival(
            simulate_cohort(250, seed=8),
            models,
            times=[6, 12],
            seed=3,
            return_predictions=True,
        )
        b = backtest_survival(
            simulate_cohort(250, seed=8), models, times=[6, 12], seed=3
        )
    pd.testing.assert_frame_equal(a.scores, b.scores)
    assert a.scores["model"].tolist() == ["rp", "rp", "cox", "cox"]
    n = a.scores.groupby("model")["n"].first()
    assert n["rp"] == n["cox"] == pa["subject_id"].nunique()
    assert np.isfinite(a.scores[["auc", "brier", "harrell_c"]].to_numpy()).all()


@pytest.mark.slow
def test_joint_model_beats_baseline_cox_at_a_six_month_landmark():
    """Issue 25: dynamic predictions (the joint model, visits up to month 6) against
    a Cox model on baseline covariates, both given event-free at month 6, scored
    on the next 6 and 12 months."""
    from alsprog.models import JointModel
    from alsprog.simulate import simulate_cohort

    cov = "delta_fs + onset_site + age_at_onset"
    models = {
        "cox": SurvivalModel(
            f"Surv(death_or_tracheostomy_months, event_observed) ~ {cov}",
            method="cox",
            time_origin="onset",
        ),
        "joint": JointModel(
            "alsfrs_r_total ~ months + (months | subject_id)", event_formula=cov
        ),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = backtest_survival(
            simulate_cohort(1000, seed=5),
            models,
            times=[12, 18],
            landmark=6,
            seed=1,
            test_fraction=0.5,
        )
    auc = s.scores.pivot(index="horizon", columns="model", values="auc")
    assert (auc["joint"] > auc["cox"] + 0.05).all(), auc
    brier = s.scores.pivot(index="horizon", columns="model", values="brier")
    assert (brier["joint"] < brier["cox"]).all(), brier
