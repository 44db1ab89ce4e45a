"""Forecasts, backtests and scores on the columns a model was fitted with (issue 18.1).

A model fitted on ``patient``/``visit_month``/``frs`` (or sleepstudy's
``Subject``/``Days``/``Reaction``) must forecast on those columns: the same numbers
as the same data under the data dictionary's names, a band that widens with the
horizon, and the conditional normal computed densely here from the fitted
parameters (``V = Z D Z' + s2 I``, no code under test).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from forecast_testdata import split_cohort
from numpy.testing import assert_allclose
from scipy.stats import norm

from alsprog.errors import DataValidationError, ModelSpecificationError
from alsprog.forecast import (
    CalibratedForecaster,
    DeltaFSBaseline,
    PatientOLSBaseline,
    RandomForestSlope,
    backtest,
    calibration,
    evaluate,
    forecast,
)
from alsprog.models import JointModel, LinearMixedModel

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
DEFAULT = {"subject": "subject_id", "time": "months", "outcome": "alsfrs_r_total"}
#: The issue's naming, covariate included, and a second one with other letters.
COHORT_NAMINGS = {
    "default": {**DEFAULT, "onset": "onset_site"},
    "visit_month": {
        "subject": "patient",
        "time": "visit_month",
        "outcome": "frs",
        "onset": "onset",
    },
    "short": {"subject": "ID", "time": "t", "outcome": "score", "onset": "region"},
}
STATS = ["mean", "median", "lower", "upper", "loc", "scale"]


def _rename(df: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """The cohort's table under ``names`` (other columns, visit dates included, kept)."""
    return df.rename(
        columns={
            "subject_id": names["subject"],
            "months": names["time"],
            "alsfrs_r_total": names["outcome"],
            "onset_site": names.get("onset", "onset_site"),
        }
    )


def _formula(n: dict[str, str]) -> str:
    t, g = n["time"], n["subject"]
    return f"{n['outcome']} ~ {t} * {n['onset']} + ({t} | {g})"


def _dense(model, hist, fut, design):
    """loc and scale of y_f | y_h by dense algebra (Henderson's V, no Woodbury)."""
    beta = model.fe_params_.to_numpy()
    C = model.cov_params().to_numpy()
    D = model.cov_re_.to_numpy()
    s2 = model.scale_
    (Xh, Zh, y), (Xf, Zf, _) = design(hist), design(fut)
    Vhh = Zh @ D @ Zh.T + s2 * np.eye(len(Zh))
    Vfh = Zf @ D @ Zh.T
    K = Vfh @ np.linalg.inv(Vhh)
    loc = Xf @ beta + K @ (y - Xh @ beta)
    A = Xf - K @ Xh
    var = np.diag(Zf @ D @ Zf.T + s2 * np.eye(len(Zf)) - K @ Vfh.T + A @ C @ A.T)
    return loc, np.sqrt(var)


def _cohort_design(n):
    def design(rows):
        t = rows[n["time"]].to_numpy(float)
        spinal = (rows[n["onset"]].astype(str) == "spinal").to_numpy(float)
        one = np.ones(len(rows))
        X = np.column_stack([one, t, spinal, t * spinal])
        return X, np.column_stack([one, t]), rows[n["outcome"]].to_numpy(float)

    return design


def _assert_same_forecast(f, f0, outcome, level=0.9):
    """``f`` (outcome ``outcome``) is the default naming's ``f0`` (``alsfrs_r_total``).

    Issue 19: forecasts stay inside the outcome's range in the data dictionary.  The
    ALSFRS-R total is censored at 0 and 48; an outcome the dictionary does not bound
    (a renamed ``frs``) is not: the same normal (``loc``, ``scale``), uncensored,
    whose band censored at 0-48 is the default's.
    """
    if outcome == "alsfrs_r_total":
        assert_allclose(f[STATS], f0[STATS], rtol=1e-10, atol=1e-10)
        return
    assert_allclose(f[["loc", "scale"]], f0[["loc", "scale"]], rtol=1e-10, atol=1e-10)
    loc, scale, z = f["loc"], f["scale"], norm.ppf(0.5 + level / 2)
    assert_allclose(f["mean"], loc, rtol=1e-10)
    assert_allclose(f["median"], loc, rtol=1e-10)
    assert_allclose(f["lower"], loc - z * scale, rtol=1e-10)
    assert_allclose(f["upper"], loc + z * scale, rtol=1e-10)
    for k in ("median", "lower", "upper"):
        assert_allclose(np.clip(f[k], 0, 48), f0[k], rtol=1e-10, atol=1e-10)


def _future(h, times, time):
    fut = pd.concat([h.iloc[[-1]]] * len(times), ignore_index=True)
    fut[time] = times
    return fut


@pytest.fixture(scope="module")
def cohort():
    _, _, train, test = split_cohort()
    hist = test[test["months"] <= 3.5]
    return train, test, hist


@pytest.fixture(scope="module")
def default_forecast(cohort):
    train, _, hist = cohort
    n = COHORT_NAMINGS["default"]
    m = LinearMixedModel(_formula(n)).fit(train)
    return m, forecast(m, hist, [6.0, 12.0])


# ---------------------------------------------------------------- mixed model
@pytest.mark.parametrize("naming", list(COHORT_NAMINGS))
def test_lmm_forecast_on_renamed_columns_equals_the_default_one(
    cohort, default_forecast, naming
):
    train, _, hist = cohort
    n = COHORT_NAMINGS[naming]
    m = LinearMixedModel(_formula(n), time=n["time"]).fit(_rename(train, n))
    assert (m.columns_.subject, m.columns_.time, m.columns_.outcome) == (
        n["subject"],
        n["time"],
        n["outcome"],
    )
    f = forecast(m, _rename(hist, n), [6.0, 12.0])
    m0, f0 = default_forecast
    assert list(f.columns[:2]) == [n["subject"], n["time"]]
    assert f.attrs == {k: n[k] for k in ("subject", "time", "outcome")}
    assert_allclose(m.fe_params_.to_numpy(), m0.fe_params_.to_numpy(), rtol=1e-10)
    assert (f[n["subject"]].to_numpy() == f0["subject_id"].to_numpy()).all()
    assert_allclose(f[n["time"]], f0["months"])
    _assert_same_forecast(f, f0, n["outcome"])
    # the band widens with the horizon for every patient (not a flat forecast)
    six, twelve = f[f[n["time"]] == 6.0], f[f[n["time"]] == 12.0]
    assert (twelve["scale"].to_numpy() > six["scale"].to_numpy() + 0.1).all()
    assert (twelve["loc"].to_numpy() != six["loc"].to_numpy()).all()
    assert (twelve["upper"] - twelve["lower"]).mean() > (
        six["upper"] - six["lower"]
    ).mean() + 1.0


def test_a_saved_and_loaded_model_keeps_its_columns(cohort, tmp_path):
    train, _, hist = cohort
    n = COHORT_NAMINGS["visit_month"]
    m = LinearMixedModel(_formula(n), time=n["time"]).fit(_rename(train, n))
    m.save(tmp_path / "m.npz")
    back = LinearMixedModel.load(tmp_path / "m.npz")
    assert back.columns_ == m.columns_
    h = _rename(hist, n)
    pd.testing.assert_frame_equal(forecast(back, h, [9.0]), forecast(m, h, [9.0]))


@pytest.mark.parametrize("naming", ["visit_month", "short"])
def test_lmm_forecast_at_6_and_12_is_the_dense_conditional_normal(cohort, naming):
    train, _, hist = cohort
    n = COHORT_NAMINGS[naming]
    m = LinearMixedModel(_formula(n), time=n["time"]).fit(_rename(train, n))
    assert list(m.fe_params_.index) == [
        "Intercept",
        n["time"],
        f"{n['onset']}[T.spinal]",
        f"{n['time']}:{n['onset']}[T.spinal]",
    ]
    h_all = _rename(hist, n)
    f = forecast(m, h_all, [6.0, 12.0], level=0.9)
    for sid in list(pd.unique(h_all[n["subject"]]))[:6]:
        h = h_all[h_all[n["subject"]] == sid]
        loc, scale = _dense(m, h, _future(h, [6.0, 12.0], n["time"]), _cohort_design(n))
        got = f[f[n["subject"]] == sid]
        assert_allclose(got["loc"], loc, rtol=1e-9)
        assert_allclose(got["scale"], scale, rtol=1e-9)
        z = norm.ppf(0.95)
        assert_allclose(got["lower"], np.clip(loc - z * scale, 0, 48), rtol=1e-9)
        assert_allclose(got["upper"], np.clip(loc + z * scale, 0, 48), rtol=1e-9)
        assert scale[1] > scale[0]


@pytest.fixture(scope="module")
def sleep():
    """sleepstudy (lme4), Reaction in tens of ms rounded so that the default naming
    (whole 0-48 ALSFRS-R totals) can hold the same numbers; 3 subjects held out."""
    d = pd.read_csv(REFERENCE / "sleepstudy.csv")
    d["Reaction"] = np.round(d["Reaction"] / 10.0)
    d["Subject"] = d["Subject"].astype(str)
    held = {"308", "335", "372"}
    test = d[d["Subject"].isin(held)]
    return d[~d["Subject"].isin(held)], test[test["Days"] <= 5]


def test_sleepstudy_days_subject_reaction(sleep):
    train, hist = sleep
    m = LinearMixedModel("Reaction ~ Days + (Days | Subject)", time="Days").fit(train)
    f = forecast(m, hist, [6.0, 12.0])
    to_default = {
        "Subject": "subject_id",
        "Days": "months",
        "Reaction": "alsfrs_r_total",
    }
    m0 = LinearMixedModel("alsfrs_r_total ~ months + (months | subject_id)").fit(
        train.rename(columns=to_default)
    )
    f0 = forecast(m0, hist.rename(columns=to_default), [6.0, 12.0])
    assert list(f.columns[:2]) == ["Subject", "Days"]
    _assert_same_forecast(f, f0, "Reaction")

    def design(rows):
        t = rows["Days"].to_numpy(float)
        X = np.column_stack([np.ones(len(rows)), t])
        return X, X, rows["Reaction"].to_numpy(float)

    for sid in ["308", "335", "372"]:
        h = hist[hist["Subject"] == sid]
        loc, scale = _dense(m, h, _future(h, [6.0, 12.0], "Days"), design)
        got = f[f["Subject"] == sid]
        assert_allclose(got["loc"], loc, rtol=1e-9)
        assert_allclose(got["scale"], scale, rtol=1e-9)
        assert scale[1] > scale[0] and loc[1] != loc[0]


def test_issue_example_is_not_flat(cohort):
    """The issue's model on one patient: 6 and 12 months differ and the band widens."""
    train, _, hist = cohort
    n = COHORT_NAMINGS["visit_month"]
    m = LinearMixedModel(
        "frs ~ visit_month * onset + (visit_month | patient)", time="visit_month"
    ).fit(_rename(train, n))
    one = _rename(hist, n)
    one = one[one["patient"] == one["patient"].iloc[0]]
    assert "months" not in one and "subject_id" not in one
    f = forecast(m, one, [6, 12])
    loc, scale = _dense(
        m, one, _future(one, [6.0, 12.0], "visit_month"), _cohort_design(n)
    )
    assert_allclose(f["loc"], loc, rtol=1e-9)
    assert f["mean"].iloc[1] < f["mean"].iloc[0] - 1.0
    assert f["scale"].iloc[1] > f["scale"].iloc[0]


# ------------------------------------------------------------------ errors
def test_a_column_the_history_lacks_is_named(cohort):
    train, _, hist = cohort
    n = COHORT_NAMINGS["visit_month"]
    m = LinearMixedModel(_formula(n), time=n["time"]).fit(_rename(train, n))
    h = _rename(hist, n)
    with pytest.raises(
        DataValidationError,
        match=r"column visit_month: is needed by the model \(the time axis",
    ):
        forecast(m, h.drop(columns="visit_month"), [12.0])
    with pytest.raises(
        DataValidationError, match=r"column patient: is needed by the model \(its subj"
    ):
        forecast(m, h.drop(columns="patient"), [12.0])
    with pytest.raises(DataValidationError, match=r"column onset: .*a covariate"):
        forecast(m, h.drop(columns="onset"), [12.0])
    with pytest.raises(DataValidationError, match=r"forecast time 1 on 'visit_month'"):
        forecast(m, h, [1.0])


def test_a_time_the_formula_does_not_use_is_refused(cohort):
    """Fitted without `time=`, the model's time is `months`, absent from its formula:
    its forecasts could not move, so it says which parameter to set."""
    train, _, hist = cohort
    n = COHORT_NAMINGS["visit_month"]
    m = LinearMixedModel(_formula(n)).fit(_rename(train, n))
    h = _rename(hist, n).assign(months=lambda d: d["visit_month"])
    with pytest.raises(
        ModelSpecificationError,
        match=r"time column 'months' is not used by .*time='visit_month'",
    ):
        forecast(m, h, [12.0])


# ------------------------------------------------- baselines, backtest, evaluate
BT_NAMES = {"subject": "patient", "time": "visit_month", "outcome": "frs"}


def _bt_models(n: dict[str, str]) -> dict[str, object]:
    cols = {"subject": n["subject"], "time": n["time"], "outcome": n["outcome"]}
    t, g, y = n["time"], n["subject"], n["outcome"]
    lmm = LinearMixedModel(f"{y} ~ {t} * delta_fs + ({t} | {g})", time=t)
    return {
        "lmm": lmm,
        "calibrated": CalibratedForecaster(lmm, min_per_bin=30),
        "delta_fs": DeltaFSBaseline(**cols),
        "patient_ols": PatientOLSBaseline(**cols),
        "forest": RandomForestSlope(n_estimators=30, random_state=0, **cols),
    }


def test_backtest_and_evaluate_on_renamed_columns_equal_the_default_ones():
    _, table, _, _ = split_cohort()
    table = table.iloc[: len(table) * 2 // 3]  # ~200 patients: quick
    # the outcome keeps its name (and so its 0-48 range, issue 19); a renamed,
    # unbounded outcome is checked below
    names = {**BT_NAMES, "outcome": "alsfrs_r_total"}
    renamed = _rename(table, names)
    kw = {"seed": 1, "n_samples": 60, "return_forecasts": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res0, f0 = backtest(table, _bt_models({**DEFAULT}), **kw)
        res, f = backtest(renamed, _bt_models(names), **kw)
        _, fu = backtest(_rename(table, BT_NAMES), _bt_models(BT_NAMES), **kw)
    assert list(res0["model"].unique()) == list(_bt_models(DEFAULT))
    num = [c for c in res0.columns if c not in ("model", "seconds")]
    assert_allclose(res[num].to_numpy(float), res0[num].to_numpy(float), rtol=1e-10)
    assert (res["model"] == res0["model"]).all()
    assert list(f.columns[:4]) == ["model", "patient", "visit_month", "horizon"]
    draws = [c for c in f0.columns if c not in ("model", "subject_id", "months")]
    assert_allclose(
        f[draws].to_numpy(float), f0[draws].to_numpy(float), rtol=1e-10, equal_nan=True
    )
    # every model is scored at both horizons with finite errors
    assert res.groupby("model")["horizon"].nunique().eq(2).all()
    assert np.isfinite(res["rmse"]).all()
    # evaluate and calibration read the forecasts' own columns (from their attrs)
    actual, actual0 = f.attrs["actual"], f0.attrs["actual"]
    assert list(actual.columns) == ["patient", "visit_month", "alsfrs_r_total"]
    assert list(fu.attrs["actual"].columns) == ["patient", "visit_month", "frs"]
    e, e0 = evaluate(f, actual), evaluate(f0, actual0)
    assert_allclose(
        e[num].to_numpy(float), e0[num].to_numpy(float), rtol=1e-10, equal_nan=True
    )
    c, c0 = calibration(f, actual), calibration(f0, actual0)
    assert_allclose(c["coverage"], c0["coverage"], rtol=1e-12)
    # 'frs' is not bounded by the data dictionary: the same forecasts, uncensored
    # (the normal's loc/scale equal; bands and draws censored at 0-48 equal)
    assert (fu["model"] == f0["model"]).all()
    assert_allclose(fu[["loc", "scale"]], f0[["loc", "scale"]], rtol=1e-10)
    bands = ["median", "lower", "upper", *[c for c in f0 if c.startswith("draw_")]]
    assert_allclose(
        np.clip(fu[bands].to_numpy(float), 0, 48),
        f0[bands].to_numpy(float),
        rtol=1e-10,
        equal_nan=True,
    )
    assert (fu[bands].to_numpy(float) > 48).any()  # not clipped


def test_evaluate_with_named_columns():
    f = pd.DataFrame({"patient": ["A", "A"], "Days": [6.0, 12.0], "mean": [35.0, 30.0]})
    a = pd.DataFrame({"patient": ["A", "A"], "Days": [6.0, 12.0], "y": [36.0, 24.0]})
    e = evaluate(f, a, subject="patient", time="Days", outcome="y")
    assert e["rmse"].tolist() == [1.0, 6.0]
    assert e["horizon"].tolist() == [6.0, 12.0]


def test_backtest_models_on_different_columns_are_refused():
    _, table, _, _ = split_cohort()
    models = {
        "lmm": LinearMixedModel(
            "frs ~ visit_month + (visit_month | patient)", time="visit_month"
        ),
        "ols": PatientOLSBaseline(),
    }
    with pytest.raises(
        ModelSpecificationError,
        match=r"different subject columns \('lmm': 'patient'; 'ols': 'subject_id'\)",
    ):
        backtest(_rename(table, BT_NAMES), models, seed=1)


# ------------------------------------------------------------------ joint model
@pytest.fixture(scope="module")
def joints():
    """The joint test data fitted under its own names and renamed ones."""
    from joint_testdata import FORMULA, fitted

    df, jm0 = fitted()
    assert FORMULA == "y ~ months + x + (months | subject_id)"
    ren = {"subject_id": "patient", "months": "visit_month", "y": "frs"}
    ren.update(time="event_months", dead="died")
    jm = JointModel(
        "frs ~ visit_month + x + (visit_month | patient)",
        event_formula="x",
        event_time="event_months",
        event="died",
        time="visit_month",
    ).fit(df.rename(columns=ren))
    return df, jm0, df.rename(columns=ren), jm


@pytest.mark.slow  # two joint-model fits; heavy for the quick tier; CI runs the slow tier
def test_joint_model_on_renamed_columns(joints):
    df0, jm0, df, jm = joints
    assert jm.columns_.time == "visit_month" and jm.columns_.subject == "patient"
    assert_allclose(jm.fe_params_, jm0.fe_params_.to_numpy(), rtol=1e-10)
    assert_allclose(jm.llf_, jm0.llf_, rtol=1e-12)
    ids = df0["subject_id"].unique()[:5]
    h0 = df0[df0["subject_id"].isin(ids) & (df0["months"] <= 4)]
    h = df[df["patient"].isin(ids) & (df["visit_month"] <= 4)]
    for alive in (True, False):
        f0 = forecast(jm0, h0, [6.0, 12.0], given_alive=alive)
        f = forecast(jm, h, [6.0, 12.0], given_alive=alive)
        assert list(f.columns[:2]) == ["patient", "visit_month"]
        assert_allclose(f[STATS], f0[STATS], rtol=1e-10, atol=1e-10)
        six, twelve = f[f["visit_month"] == 6.0], f[f["visit_month"] == 12.0]
        assert (twelve["scale"].to_numpy() > six["scale"].to_numpy()).all()
    # given_alive=False: the conditional normal, computed densely
    f = forecast(jm, h, [6.0, 12.0], given_alive=False)

    def design(rows):
        t = rows["visit_month"].to_numpy(float)
        one = np.ones(len(rows))
        X = np.column_stack([one, t, rows["x"].to_numpy(float)])
        return X, np.column_stack([one, t]), rows["frs"].to_numpy(float)

    for sid in ids:
        hh = h[h["patient"] == sid]
        loc, scale = _dense(jm, hh, _future(hh, [6.0, 12.0], "visit_month"), design)
        got = f[f["patient"] == sid]
        assert_allclose(got["loc"], loc, rtol=1e-8)
        assert_allclose(got["scale"], scale, rtol=1e-8)
    s0 = jm0.predict_survival(h0, [12.0, 24.0])
    s = jm.predict_survival(h, [12.0, 24.0])
    assert list(s.columns) == ["patient", "visit_month", "survival"]
    assert_allclose(s["survival"], s0["survival"], rtol=1e-10)
    tr0 = jm0.subject_trajectories([0.0, 6.0], subjects=list(ids[:2]))
    tr = jm.subject_trajectories([0.0, 6.0], subjects=list(ids[:2]))
    assert list(tr.columns[:2]) == ["patient", "visit_month"]
    assert_allclose(tr[["mean", "lower", "upper"]], tr0[["mean", "lower", "upper"]])


@pytest.mark.slow  # two joint-model fits; heavy for the quick tier; CI runs the slow tier
def test_joint_event_check_reads_the_model_time(joints):
    _, _, df, _ = joints
    bad = df.copy()
    sid = bad.loc[bad["died"], "patient"].iloc[0]
    last = bad.loc[bad["patient"] == sid, "visit_month"].max()
    bad.loc[bad["patient"] == sid, "event_months"] = last - 1.0
    jm = JointModel(
        "frs ~ visit_month + x + (visit_month | patient)",
        event_formula="x",
        event_time="event_months",
        event="died",
        time="visit_month",
    )
    with pytest.raises(
        DataValidationError,
        match=rf"subject {sid}.*before the last visit at visit_month",
    ):
        jm.fit(bad)
