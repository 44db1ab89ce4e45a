"""SurvivalModel (issue 25) against R: coxph and survfit, and the hand-coded
Royston-Parmar likelihood of tests/reference/royston_parmar_reference.R.

References: tests/reference/coxph_reference.json (survival::coxph on lung and
veteran, Efron and Breslow, delayed entry), royston_parmar_reference.json (the
hand-coded R likelihood's estimates) and survival_model_reference.json
(tests/reference/survival_model_reference.R: predicted survival with delta-method
intervals, conditional survival and medians from those estimates, and
survfit(coxph) at the same times with its medians).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone

from alsprog.errors import DataValidationError, DataWarning, ModelSpecificationError
from alsprog.models import SurvivalModel

REF = Path(__file__).resolve().parents[1] / "reference"


@pytest.fixture(scope="module")
def lung():
    return pd.read_csv(REF / "lung.csv")


@pytest.fixture(scope="module")
def veteran():
    return pd.read_csv(REF / "veteran.csv")


@pytest.fixture(scope="module")
def cox_ref():
    return json.loads((REF / "coxph_reference.json").read_text())


@pytest.fixture(scope="module")
def rp_ref():
    return json.loads((REF / "royston_parmar_reference.json").read_text())


@pytest.fixture(scope="module")
def pred_ref():
    return json.loads((REF / "survival_model_reference.json").read_text())


COX_CASES = [
    (
        "lung_efron",
        "Surv(time, event) ~ age + sex + ph.ecog + ph.karno + wt.loss",
        "efron",
        "lung",
    ),
    (
        "lung_breslow",
        "Surv(time, event) ~ age + sex + ph.ecog + ph.karno + wt.loss",
        "breslow",
        "lung",
    ),
    (
        "lung_entry_efron",
        "Surv(entry, time, event) ~ age + sex + ph.ecog",
        "efron",
        "lung",
    ),
    (
        "veteran_efron",
        "Surv(time, status) ~ trt + karno + diagtime + age + prior + squamous + smallcell + adeno",
        "efron",
        "veteran",
    ),
]


@pytest.mark.parametrize(("key", "formula", "ties", "data"), COX_CASES)
def test_cox_equals_coxph(request, cox_ref, key, formula, ties, data):
    r = cox_ref[key]
    table = request.getfixturevalue(data)
    m = SurvivalModel(formula, method="cox", ties=ties).fit(table)
    assert list(m.params_.index) == r["names"]
    assert_allclose(m.params_, r["coef"], rtol=1e-6, atol=1e-9)
    assert_allclose(m.bse_, r["se"], rtol=1e-6)
    assert_allclose(m.llf_, r["loglik"][1], rtol=1e-9)
    assert_allclose(m.null_llf_, r["loglik"][0], rtol=1e-9)
    assert (m.n_subjects_, m.n_events_) == (r["n"], r["nevent"])
    hr = m.hazard_ratios()
    assert_allclose(hr["hazard_ratio"], np.exp(r["coef"]), rtol=1e-6)


def test_cox_predictions_equal_survfit(lung, pred_ref):
    m = SurvivalModel("Surv(time, event) ~ age + sex + ph.ecog", method="cox").fit(lung)
    new = lung.iloc[:5]
    s = m.predict_survival(new, pred_ref["times"])
    got = s["survival"].to_numpy().reshape(5, 3)
    assert_allclose(got, pred_ref["cox_survival"], rtol=1e-6)
    assert_allclose(m.predict_median(new), np.ravel(pred_ref["cox_median"]))


def test_flexible_equals_the_hand_coded_r_likelihood(lung, rp_ref, pred_ref):
    r = rp_ref["lung_hazard_df3"]
    m = SurvivalModel("Surv(time, event) ~ age + sex + ph.ecog").fit(lung)
    assert_allclose(np.log(m.knots_), r["knots"], rtol=1e-12)
    assert_allclose(m.llf_, r["loglik"], rtol=1e-8)
    assert_allclose(m.params_, r["theta"][4:], rtol=1e-4)
    # SEs: R's optimHess of the analytic gradient with steps of 1e-6 (the numerical
    # Hessian of royston_parmar_reference.R, steps 1e-3, agrees to 1e-3 only)
    assert_allclose(m.bse_, pred_ref["rp_se"][4:], rtol=1e-5)
    # the spline is at the covariates' means: its slope terms are R's, its
    # intercept moves by x_mean' beta
    assert_allclose(m.spline_params_.iloc[1:], r["theta"][1:4], rtol=1e-4)
    shift = float(m.x_means_ @ m.params_)
    assert_allclose(m.spline_params_.iloc[0] - shift, r["theta"][0], rtol=1e-4)
    new = lung.iloc[:5]
    s = m.predict_survival(new, pred_ref["times"])
    want = pd.DataFrame(pred_ref["rp_predictions"])
    for col in ("survival", "lower", "upper"):
        assert_allclose(s[col], want[col], rtol=2e-4, err_msg=col)
    cond = m.predict_survival(new, [500], given_alive_at=200)["survival"]
    assert_allclose(cond, pred_ref["rp_conditional_500_given_200"], rtol=2e-4)
    assert_allclose(m.predict_median(new), pred_ref["rp_median"], rtol=2e-4)


@pytest.mark.parametrize("scale", ["odds", "normal"])
def test_other_scales_equal_r(lung, rp_ref, scale):
    r = rp_ref[f"lung_{scale}_df3"]
    m = SurvivalModel("Surv(time, event) ~ age + sex + ph.ecog", scale=scale).fit(lung)
    assert_allclose(m.llf_, r["loglik"], rtol=1e-8)
    assert_allclose(m.params_, r["theta"][4:], rtol=1e-4)
    with pytest.raises(ModelSpecificationError, match="not log hazard"):
        m.hazard_ratios()
    assert ("odds_ratio" in m.coef_table()) == (scale == "odds")


def _long(n=60, seed=0):
    """A long table: 3 visits per subject, event data repeated, a covariate that
    changes after baseline."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.exponential(1 / np.exp(0.7 * x)) * 10 + 0.5
    d = (rng.random(n) < 0.8).astype(int)
    rows = []
    for i in range(n):
        for k, month in enumerate([0.0, 3.0, 6.0]):
            rows.append(
                {
                    "subject_id": f"S{i:03d}",
                    "months": month,
                    "x": x[i] + (5.0 if k else 0.0),  # only the baseline is read
                    "t": t[i],
                    "d": d[i],
                    "onset": 4.0 + i % 5,
                }
            )
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1), x, t, d


def test_long_table_reads_each_subject_at_baseline():
    table, x, t, d = _long()
    m = SurvivalModel("Surv(t, d) ~ x", method="cox").fit(table)
    flat = pd.DataFrame({"t": t, "d": d, "x": x})
    ref = SurvivalModel("Surv(t, d) ~ x", method="cox").fit(flat)
    assert_allclose(m.params_, ref.params_, rtol=1e-12)
    assert m.n_subjects_ == 60


def test_onset_origin_is_delayed_entry():
    table, *_ = _long()
    a = SurvivalModel("Surv(t, d) ~ x", time_origin="onset", onset="onset").fit(table)
    flat = table.assign(entry=table["onset"], exit=table["onset"] + table["t"])
    b = SurvivalModel("Surv(entry, exit, d) ~ x").fit(flat)
    assert_allclose(a.params_, b.params_, rtol=1e-8)
    assert_allclose(a.llf_, b.llf_, rtol=1e-10)
    # predictions from baseline are conditional on surviving from onset to it
    s = a.predict_survival(table, [0.0, 6.0])
    first = s.groupby("subject_id")["survival"].first()
    assert_allclose(first, 1.0)
    # ... and equal S(onset + t) / S(onset) of the explicit delayed-entry model
    base = flat.sort_values("months").drop_duplicates("subject_id")
    base = base.set_index("subject_id").sort_index()
    s6 = s[s["months"] == 6.0].set_index("subject_id")["survival"].sort_index()
    for i, (_, r) in enumerate(base.iloc[:5].iterrows()):
        one = pd.DataFrame({"x": [r["x"]]})
        cond = b.predict_survival(one, [r["onset"] + 6.0], given_alive_at=r["onset"])
        assert_allclose(cond["survival"].iloc[0], s6.iloc[i], rtol=1e-10)


def test_median_is_where_survival_crosses_one_half(lung):
    m = SurvivalModel("Surv(time, event) ~ age + sex", df=2).fit(lung)
    med = m.predict_median(lung.iloc[:4])
    s = m.predict_survival(lung.iloc[:4].iloc[[0]], [med.iloc[0]])
    assert_allclose(s["survival"], 0.5, rtol=1e-8)


def test_event_data_varying_within_a_subject_is_refused():
    table, *_ = _long()
    bad = table.copy()
    bad.loc[bad.index[0], "t"] = 99.0
    with pytest.raises(
        DataValidationError, match="differs between the subject's visits"
    ):
        SurvivalModel("Surv(t, d) ~ x").fit(bad)


def test_bad_input_gets_clear_errors():
    d = pd.DataFrame({"t": [1.0, 2, 3, 4], "d": [1, 0, 1, 1], "x": [0.0, 1, 0, 1]})
    with pytest.raises(ModelSpecificationError, match="must read 'Surv"):
        SurvivalModel("t ~ x").fit(d)
    with pytest.raises(ModelSpecificationError, match="refused"):
        SurvivalModel("Surv(t, d) ~ {__import__('os').getcwd()}").fit(d)
    with pytest.raises(ModelSpecificationError, match="not in the table"):
        SurvivalModel("Surv(t, dead) ~ x").fit(d)
    with pytest.raises(ModelSpecificationError, match="No events"):
        SurvivalModel("Surv(t, d) ~ x").fit(d.assign(d=0))
    with pytest.raises(DataValidationError, match="not true/false or 1/0"):
        SurvivalModel("Surv(t, d) ~ x").fit(d.assign(d=[1, 2, 0, 1]))
    with pytest.raises(DataValidationError, match="not a number >= 0"):
        SurvivalModel("Surv(t, d) ~ x").fit(d.assign(t=[1.0, -2, 3, 4]))
    with pytest.raises(DataValidationError, match="needs some time at risk"):
        SurvivalModel("Surv(t, d) ~ x").fit(d.assign(t=[0.0, 2, 3, 4]))
    with pytest.raises(ModelSpecificationError, match="collinear"):
        SurvivalModel("Surv(t, d) ~ x + z").fit(d.assign(z=2 * d["x"]))
    with pytest.raises(ModelSpecificationError, match="Cox's model is on the hazard"):
        SurvivalModel("Surv(t, d) ~ x", method="cox", scale="odds").fit(d)
    with pytest.raises(ModelSpecificationError, match="method"):
        SurvivalModel("Surv(t, d) ~ x", method="weibull").fit(d)


def test_censored_without_time_at_risk_and_missing_values_are_left_out(lung):
    d = lung.copy()
    d.loc[0, "age"] = np.nan
    d.loc[1, ["time", "event"]] = [0.0, 0]
    with pytest.warns(DataWarning, match="Left out 2 of 213 subjects"):
        m = SurvivalModel("Surv(time, event) ~ age", method="cox").fit(d)
    assert m.n_subjects_ == 211 and m.n_left_out_ == 2


def test_params_protocol_and_refit_are_clean(lung):
    m = SurvivalModel("Surv(time, event) ~ age", df=2)
    c = clone(m)
    assert c.get_params() == m.get_params()
    c.fit(lung)
    first = c.params_.copy()
    c.set_params(formula="Surv(time, event) ~ sex").fit(lung)
    assert list(c.params_.index) == ["sex"] and not hasattr(c, "baseline_hazard_")
    assert first.index.tolist() == ["age"]
    text = str(c.summary())
    assert "Royston-Parmar" in text and "hazard_ratio" in text and "gamma_0" in text


def test_prediction_needs_the_covariates(lung):
    m = SurvivalModel("Surv(time, event) ~ age + sex", method="cox").fit(lung)
    new = lung.iloc[:3].copy()
    new.loc[new.index[1], "sex"] = np.nan
    with pytest.raises(DataValidationError, match="'sex' is missing"):
        m.predict_survival(new, [100])
    with pytest.raises(ValueError, match="given_alive_at"):
        m.predict_survival(lung.iloc[:2], [50], given_alive_at=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pi = m.prognostic_index(lung.iloc[:3])
    assert_allclose(
        pi,
        (lung.iloc[:3][["age", "sex"]] - m.x_means_.to_numpy()) @ m.params_.to_numpy(),
    )


@pytest.mark.parametrize("kw", [{}, {"method": "cox"}, {"scale": "odds", "df": 2}])
def test_save_and_load_round_trip(tmp_path, kw):
    table, *_ = _long()
    table = table.assign(site=np.where(table["x"] > 0, "a", "b"))
    m = SurvivalModel(
        "Surv(t, d) ~ center(x) + C(site)", time_origin="onset", onset="onset", **kw
    ).fit(table)
    path = tmp_path / "m.npz"
    m.save(path)
    back = SurvivalModel.load(path)
    assert back.get_params() == m.get_params() and back.llf_ == m.llf_
    pd.testing.assert_frame_equal(back.cov_params_, m.cov_params_)
    pd.testing.assert_frame_equal(
        back.predict_survival(table, [3.0, 9.0]), m.predict_survival(table, [3.0, 9.0])
    )
    assert str(back.summary()) == str(m.summary())


def _rewrite(path, out, *, header=None, **arrays):
    import json

    arr = np.load(path)
    members = {k: arr[k] for k in arr.files}
    if header is not None:
        members["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    members.update(arrays)
    np.savez(out, **members)
    return out


def test_a_forged_file_is_refused(tmp_path, lung):
    import json

    from alsprog.errors import SavedModelError

    m = SurvivalModel("Surv(time, event) ~ age + sex").fit(lung)
    path = tmp_path / "m.npz"
    m.save(path)
    theta = np.load(path)["theta"].copy()
    theta[-1] += 0.1  # estimates that do not give the saved log-likelihood
    with pytest.raises(SavedModelError, match="scalars.llf"):
        SurvivalModel.load(_rewrite(path, tmp_path / "a.npz", theta=theta))
    header = json.loads(np.load(path)["__header__"].tobytes())
    header["params"]["formula"] = "Surv(time, event) ~ {__import__('os').getcwd()}"
    with pytest.raises(SavedModelError, match="params.*refused"):
        SurvivalModel.load(_rewrite(path, tmp_path / "b.npz", header=header))
    header = json.loads(np.load(path)["__header__"].tobytes())
    header["names"]["covariates"] = ["age", "weight"]
    with pytest.raises(SavedModelError, match="names.covariates"):
        SurvivalModel.load(_rewrite(path, tmp_path / "c.npz", header=header))
    with pytest.raises(SavedModelError, match="theta"):
        SurvivalModel.load(_rewrite(path, tmp_path / "d.npz", theta=theta[:-1]))
