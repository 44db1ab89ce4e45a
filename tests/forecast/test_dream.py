"""The DREAM ALS Prediction challenge's protocol (issue 21): the target slope as the
challenge defined it, models scored on it beside the no-skill references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alsprog.cli import main
from alsprog.forecast import PatientOLSBaseline, backtest
from alsprog.forecast._dream import dream_slopes
from alsprog.simulate import simulate_cohort


def test_target_slope_first_visit_after_3_to_last_up_to_12():
    df = pd.DataFrame(
        {
            "subject_id": ["A"] * 6 + ["B"] * 3 + ["C"] * 2,
            "months": [0, 3.0, 3.2, 6, 12.0, 12.5, 0, 2, 3.5, 0, 13],
            "alsfrs_r_total": [40, 39, 37, np.nan, 31, 30, 44, 43, 42, 40, 30],
        }
    )
    s = dream_slopes(df)
    # A: month 3.0 is not after 3; 12.5 is past 12; B has one visit in the window;
    # C none
    assert list(s.index) == ["A"]
    assert s.loc["A"].tolist() == [3.2, 37.0, 12.0, 31.0, (31 - 37) / (12 - 3.2)]
    with pytest.raises(ValueError, match="`end` must be after `start`"):
        dream_slopes(df, start=12, end=3)


def _hand_scored(cohort, seed):
    """The same split and protocol written out: the baseline fitted on the training
    patients, its forecast means at each test patient's two target visits from
    the visits of months 0-3, the slope between them."""
    from alsprog._random import as_generator
    from alsprog.data import assemble
    from alsprog.forecast import forecast
    from alsprog.forecast._split import split_patients

    t = assemble(cohort.visits, cohort.subjects)
    rng = as_generator(seed)
    train, test = split_patients(t, "alsfrs_r_total", 0.2, rng, "subject_id")
    target = dream_slopes(test)
    hist = test[(test["months"] <= 3) & test["alsfrs_r_total"].notna()]
    target = target[target.index.isin(set(hist["subject_id"]))]
    model = PatientOLSBaseline().fit(train)
    pred = []
    for sid, r in target.iterrows():
        f = forecast(model, hist[hist["subject_id"] == sid], [r["t1"], r["t2"]])
        m = f.set_index("months")["mean"]
        pred.append((m[r["t2"]] - m[r["t1"]]) / (r["t2"] - r["t1"]))
    train_mean = dream_slopes(train)["slope"].mean()
    return target["slope"].to_numpy(), np.asarray(pred), train_mean


@pytest.mark.slow  # heavy for the quick tier; CI runs the slow tier
def test_dream_backtest_scores_and_references():
    cohort = simulate_cohort(150, months=12, visit_interval_months=1, seed=4)
    res = backtest(cohort, {"ols": PatientOLSBaseline()}, protocol="dream", seed=3)
    assert res["model"].tolist() == ["ols", "training_mean", "zero"]
    assert list(res.columns) == [
        "model",
        "n",
        "rmsd",
        "r",
        "mean_observed",
        "mean_predicted",
        "seconds",
    ]
    obs, pred, train_mean = _hand_scored(cohort, 3)
    row = res.set_index("model")
    assert row.loc["zero", "n"] == len(obs) == res.attrs["n_scored"]
    assert row.loc["zero", "rmsd"] == pytest.approx(np.sqrt(np.mean(obs**2)))
    assert np.isnan(row.loc["zero", "r"])
    assert row.loc["training_mean", "rmsd"] == pytest.approx(
        np.sqrt(np.mean((obs - train_mean) ** 2))
    )
    assert res.attrs["training_mean_slope"] == pytest.approx(train_mean)
    ok = ~np.isnan(pred)
    assert ok.all()  # monthly visits: every test patient has a 0-3 month line
    assert row.loc["ols", "rmsd"] == pytest.approx(np.sqrt(np.mean((pred - obs) ** 2)))
    assert row.loc["ols", "r"] == pytest.approx(np.corrcoef(pred, obs)[0, 1])
    assert row.loc["ols", "mean_observed"] == pytest.approx(obs.mean())


def test_dream_protocol_arguments():
    cohort = simulate_cohort(40, seed=1)
    with pytest.raises(ValueError, match="`protocol` must be 'horizons' or 'dream'"):
        backtest(cohort, {"ols": PatientOLSBaseline()}, protocol="DREAM")
    with pytest.raises(ValueError, match="protocol='dream' scores slopes only"):
        backtest(
            cohort, {"ols": PatientOLSBaseline()}, protocol="dream", reference=True
        )


def test_cli_backtest_dream(capsys):
    code = main(
        [
            "backtest",
            "--simulate",
            "80",
            "--models",
            "patient_ols",
            "--protocol",
            "dream",
            "--seed",
            "2",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "DREAM protocol:" in out and "training_mean" in out and "zero" in out
