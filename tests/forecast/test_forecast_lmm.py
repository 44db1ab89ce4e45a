"""Mixed-model forecasts: exact conditional normal, bounds, errors, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from forecast_testdata import first_months, fitted_lmm, split_cohort
from numpy.testing import assert_allclose
from scipy.stats import norm

from alsprog.errors import DataValidationError, NotFittedError
from alsprog.forecast import forecast
from alsprog.models import LinearMixedModel


def _dense_reference(model, hist_rows, fut_rows):
    """Independent dense computation: y_f | y_h for one subject (Henderson form)."""
    beta = model.fe_params_.to_numpy()
    C = model.cov_params().to_numpy()
    D = model.cov_re_.to_numpy()
    s2 = model.scale_
    Xh = np.column_stack(
        [
            np.ones(len(hist_rows)),
            hist_rows["months"],
            hist_rows["delta_fs"],
            (hist_rows["onset_site"] == "spinal").astype(float),
            hist_rows["months"] * hist_rows["delta_fs"],
            hist_rows["months"] * (hist_rows["onset_site"] == "spinal"),
        ]
    )
    Xf = np.column_stack(
        [
            np.ones(len(fut_rows)),
            fut_rows["months"],
            fut_rows["delta_fs"],
            (fut_rows["onset_site"] == "spinal").astype(float),
            fut_rows["months"] * fut_rows["delta_fs"],
            fut_rows["months"] * (fut_rows["onset_site"] == "spinal"),
        ]
    )
    Zh = np.column_stack([np.ones(len(hist_rows)), hist_rows["months"]])
    Zf = np.column_stack([np.ones(len(fut_rows)), fut_rows["months"]])
    Vhh = Zh @ D @ Zh.T + s2 * np.eye(len(Zh))
    Vfh = Zf @ D @ Zh.T
    Vff = Zf @ D @ Zf.T + s2 * np.eye(len(Zf))
    K = Vfh @ np.linalg.inv(Vhh)
    y = hist_rows["alsfrs_r_total"].to_numpy()
    loc = Xf @ beta + K @ (y - Xh @ beta)
    A = Xf - K @ Xh
    var = np.diag(Vff - K @ Vfh.T + A @ C @ A.T)
    return loc, np.sqrt(var)


def test_matches_dense_conditional_normal():
    model = fitted_lmm()
    _, _, _, test = split_cohort()
    assert list(model.fe_params_.index) == [
        "Intercept",
        "months",
        "delta_fs",
        "onset_site[T.spinal]",
        "months:delta_fs",
        "months:onset_site[T.spinal]",
    ]
    hist = first_months(test)
    f = forecast(model, hist, [6.0, 12.0, 18.0])
    for sid in list(pd.unique(hist["subject_id"]))[:5]:
        h = hist[hist["subject_id"] == sid]
        fut = pd.concat([h.iloc[[-1]]] * 3, ignore_index=True)
        fut["months"] = [6.0, 12.0, 18.0]
        loc, scale = _dense_reference(model, h, fut)
        got = f[f["subject_id"] == sid]
        assert_allclose(got["loc"], loc, rtol=1e-9)
        assert_allclose(got["scale"], scale, rtol=1e-9)
        # 90 % interval: normal quantiles, clipped to the 0-48 range
        assert_allclose(got["lower"], np.clip(loc - norm.ppf(0.95) * scale, 0, 48))


def test_no_history_is_the_population_forecast():
    model = fitted_lmm()
    _, _, _, test = split_cohort()
    row = test.groupby("subject_id").head(1).iloc[[0]].copy()
    # a patient with covariates only: no ALSFRS-R (items and totals) yet
    row = row.drop(columns=[c for c in row if c.startswith("alsfrs_r_")])
    row["alsfrs_r_total"] = np.nan
    f = forecast(model, row, [0.0, 12.0])
    X = np.array(
        [
            [
                1,
                t,
                row["delta_fs"].iloc[0],
                row["onset_site"].iloc[0] == "spinal",
                t * row["delta_fs"].iloc[0],
                t * (row["onset_site"].iloc[0] == "spinal"),
            ]
            for t in (0.0, 12.0)
        ],
        dtype=float,
    )
    Z = np.array([[1, 0.0], [1, 12.0]])
    beta = model.fe_params_.to_numpy()
    var = np.einsum("np,pr,nr->n", X, model.cov_params().to_numpy(), X)
    var += np.einsum("nq,qr,nr->n", Z, model.cov_re_.to_numpy(), Z) + model.scale_
    assert_allclose(f["loc"], X @ beta, rtol=1e-10)
    assert_allclose(f["scale"], np.sqrt(var), rtol=1e-10)


def test_forecasts_respect_bounds_and_order():
    model = fitted_lmm()
    _, _, _, test = split_cohort()
    f = forecast(model, first_months(test), [3.5, 24.0, 60.0], level=0.95)
    cols = ["mean", "median", "lower", "upper"]
    assert (f[cols] >= 0).all().all() and (f[cols] <= 48).all().all()
    assert (f["lower"] <= f["median"]).all() and (f["median"] <= f["upper"]).all()
    far = f[f["months"] == 60.0]
    # far out many patients' normal extends below 0: the censored mean is above loc
    low = far["loc"] < 5
    assert low.any()
    assert (far.loc[low, "mean"] > far.loc[low, "loc"]).all()


def test_per_subject_times_and_draws_are_reproducible():
    model = fitted_lmm()
    _, _, _, test = split_cohort()
    hist = first_months(test)
    at = test[test["months"] > 5][["subject_id", "months"]]
    a = forecast(model, hist, at, n_samples=50, seed=3)
    b = forecast(model, hist, at, n_samples=50, seed=3)
    assert len(a) == len(at)
    assert_allclose(a["months"], at["months"].to_numpy())
    pd.testing.assert_frame_equal(a, b)
    draws = a.filter(like="draw_").to_numpy()
    assert draws.shape == (len(at), 50)
    assert draws.min() >= 0 and draws.max() <= 48


def test_history_is_not_modified():
    model = fitted_lmm()
    _, _, _, test = split_cohort()
    hist = first_months(test)
    before = hist.copy()
    forecast(model, hist, [12.0])
    pd.testing.assert_frame_equal(hist, before)


def test_time_varying_columns_advance():
    from alsprog.data._history import shift_time_columns

    rows = pd.DataFrame({"months": [3.0], "months_since_onset": [18.0], "age": [61.0]})
    out = shift_time_columns(rows, [15.0])
    assert out["months_since_onset"].iloc[0] == 30.0
    assert out["age"].iloc[0] == 62.0


# ----------------------------------------------------------------- bad input
def test_missing_covariate_names_subject_and_column():
    model = fitted_lmm()
    _, _, _, test = split_cohort()
    hist = first_months(test)
    sid = hist["subject_id"].iloc[0]
    hist.loc[hist["subject_id"] == sid, "delta_fs"] = np.nan
    with pytest.raises(DataValidationError, match=rf"subject {sid}, column delta_fs"):
        forecast(model, hist, [12.0])


def test_absent_column_is_named():
    model = fitted_lmm()
    _, _, _, test = split_cohort()
    with pytest.raises(DataValidationError, match="column onset_site"):
        forecast(model, first_months(test).drop(columns="onset_site"), [12.0])


def test_horizon_before_last_visit_is_refused():
    model = fitted_lmm()
    _, _, _, test = split_cohort()
    hist = first_months(test)
    with pytest.raises(DataValidationError, match=r"forecast time 1 months is before"):
        forecast(model, hist, [1.0, 12.0])


def test_invalid_history_rows_are_listed():
    model = fitted_lmm()
    _, _, _, test = split_cohort()
    hist = first_months(test).reset_index(drop=True)
    hist.loc[1, "alsfrs_r_total"] = 52.0
    with pytest.raises(DataValidationError, match=r"column alsfrs_r_total: 52"):
        forecast(model, hist, [12.0])


def test_unfitted_model_and_wrong_type():
    _, _, _, test = split_cohort()
    with pytest.raises(NotFittedError):
        forecast(
            LinearMixedModel("alsfrs_r_total ~ months + (1 | subject_id)"),
            first_months(test),
            [12.0],
        )
    with pytest.raises(TypeError, match="model"):
        forecast(object(), first_months(test), [12.0])


@pytest.mark.parametrize("level", [0, 1.5, "0.9"])
def test_bad_level(level):
    _, _, _, test = split_cohort()
    with pytest.raises((ValueError, TypeError), match="level"):
        forecast(fitted_lmm(), first_months(test), [12.0], level=level)


def test_unknown_subject_in_times_table():
    _, _, _, test = split_cohort()
    at = pd.DataFrame({"subject_id": ["NOPE"], "months": [12.0]})
    with pytest.raises(DataValidationError, match="subject NOPE"):
        forecast(fitted_lmm(), first_months(test), at)


@pytest.mark.parametrize(
    "random",
    ["(1 | subject_id)", "(1 | subject_id) + (0 + months | subject_id)"],
)
def test_other_random_structures_match_dense_algebra(random):
    _, _, train, test = split_cohort()
    model = LinearMixedModel(f"alsfrs_r_total ~ months * delta_fs + {random}").fit(
        train
    )
    hist = first_months(test)
    f = forecast(model, hist, [9.0, 15.0])
    beta = model.fe_params_.to_numpy()
    C = model.cov_params().to_numpy()
    D = model.cov_re_.to_numpy()
    for sid in list(pd.unique(hist["subject_id"]))[:4]:
        h = hist[hist["subject_id"] == sid]
        fut = pd.concat([h.iloc[[-1]]] * 2, ignore_index=True)
        fut["months"] = [9.0, 15.0]
        Xh, Zh, _ = model._fixed_matrix(h)
        Xf, Zf, _ = model._fixed_matrix(fut)
        V = Zh @ D @ Zh.T + model.scale_ * np.eye(len(h))
        K = Zf @ D @ Zh.T @ np.linalg.inv(V)
        loc = Xf @ beta + K @ (h["alsfrs_r_total"].to_numpy() - Xh @ beta)
        A = Xf - K @ Xh
        cov = Zf @ D @ Zf.T + model.scale_ * np.eye(2) - K @ Zh @ D @ Zf.T + A @ C @ A.T
        got = f[f["subject_id"] == sid]
        assert_allclose(got["loc"], loc, rtol=1e-9)
        assert_allclose(got["scale"], np.sqrt(np.diag(cov)), rtol=1e-9)
