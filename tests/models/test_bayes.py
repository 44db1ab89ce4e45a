"""BayesianTrajectoryModel: contract, errors, fitted outputs, save/load.

Sampling fixtures (bayes_fixtures.py) fit each model once per session with short
chains; the checks here are about structure and consistency, tolerances are in units
of Monte Carlo error.  Recovery and coverage studies are in test_bayes_recovery.py
(``@pytest.mark.slow``).
"""

from __future__ import annotations

import json
import warnings

import bayes_fixtures as bf
import numpy as np
import pandas as pd
import pytest
from bayes_fixtures import LINEAR_TRUTH, linear_long
from numpy.testing import assert_allclose
from sklearn.base import clone

import alsprog.models.bayes._model as bayes_mod
from alsprog.errors import (
    ConvergenceError,
    ConvergenceWarning,
    ModelSpecificationError,
    NotFittedError,
    SavedModelError,
)
from alsprog.models import Summary
from alsprog.models.bayes._model import BayesianTrajectoryModel, Prior

POP = ["beta", "subject_sd", "subject_corr", "sigma"]

# session fixtures (each model is sampled once)
linear_data = bf.linear_data
linear_fit = bf.linear_fit
linear_full_fit = bf.linear_full_fit
sigmoid_data = bf.sigmoid_data
sigmoid_fit = bf.sigmoid_fit


# ------------------------------------------------------------ contract, errors
def test_init_stores_arguments_unchanged():
    priors = {"sigma": Prior("HalfNormal", sigma=3.0)}
    m = BayesianTrajectoryModel("sigmoid", priors=priors, chains=3, seed=7)
    p = m.get_params()
    assert p["kind"] == "sigmoid" and p["priors"] is priors and p["formula"] is None
    c = clone(m)
    assert c.get_params()["priors"] == priors
    assert "BayesianTrajectoryModel" in repr(m)


def test_bad_kind_is_rejected_at_fit(linear_data):
    m = BayesianTrajectoryModel("quadratic")  # __init__ does not check
    with pytest.raises(
        ValueError,
        match=r"`kind` must be one of 'linear', 'sigmoid'; "
        r"got 'quadratic'",
    ):
        m.fit(linear_data)


def test_blackjax_is_refused_with_the_reason(linear_data):
    with pytest.raises(ModelSpecificationError, match=r"blackjax 1\.7\.1"):
        BayesianTrajectoryModel(sampler="blackjax").fit(linear_data)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"kind": "sigmoid", "marginalize": True},
            r"marginalize=True needs kind='linear'",
        ),
        ({"likelihood": "student_t", "marginalize": True}, r"likelihood='student_t'"),
        ({"chains": 0}, r"`chains` must be an integer >= 1; got 0"),
        ({"target_accept": 1.5}, r"`target_accept` must be in \(0, 1\); got 1.5"),
        ({"formula": "frs ~ monthz"}, r"unknown column\(s\) 'monthz'"),
        ({"time": "weeks"}, r"Column 'weeks' is not in the data"),
        ({"formula": "frs ~ months + (1 | site)"}, r"one random term"),
        (
            {"formula": "frs ~ months + (1 | subject_id)"},
            r"random intercept and a slope on 'months'",
        ),
        (
            {"priors": {"sigma_resid": Prior("HalfNormal", sigma=1.0)}},
            r"Unknown prior 'sigma_resid'.*valid keys are: intercept",
        ),
        (
            {"priors": {"sd_slope": Prior("Normal", mu=0.0, sigma=1.0)}},
            r"'sd_slope' must live on the positive reals",
        ),
    ],
)
def test_bad_specification_names_the_culprit(linear_data, kwargs, match):
    with pytest.raises((ModelSpecificationError, ValueError), match=match):
        default = "frs ~ 1" if kwargs.get("kind") == "sigmoid" else "frs ~ months"
        BayesianTrajectoryModel(**{"formula": default, **kwargs}).fit(linear_data)


def test_sigmoid_formula_must_not_contain_time(sigmoid_data):
    m = BayesianTrajectoryModel("sigmoid", formula="frs ~ months_since_onset")
    with pytest.raises(ModelSpecificationError, match=r"not 'months_since_onset'"):
        m.fit(sigmoid_data)


def test_sigmoid_refuses_an_outcome_on_another_scale(sigmoid_data):
    """The D50 curve runs from 48 to 0: FVC % of predicted (0-250 in the data
    dictionary) is refused before sampling (issue 21)."""
    df = sigmoid_data.rename(columns={"frs": "fvc_percent_predicted"})
    m = BayesianTrajectoryModel("sigmoid", formula="fvc_percent_predicted ~ 1")
    with pytest.raises(
        ModelSpecificationError,
        match=r"'fvc_percent_predicted' ranges over 0-250\. Use kind='linear'",
    ):
        m.fit(df)


@pytest.mark.parametrize("method", ["summary", "loo", "save"])
def test_methods_need_a_fit(method, tmp_path):
    m = BayesianTrajectoryModel()
    args = (tmp_path / "m.nc",) if method == "save" else ()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(m, method)(*args)


def test_predict_needs_a_fit(linear_data):
    with pytest.raises(NotFittedError):
        BayesianTrajectoryModel().predict(linear_data)


# ---------------------------------------------------------------- fitted linear
def test_posterior_names_dims_and_coords(linear_fit, linear_data):
    m = linear_fit
    post = m.idata_.posterior
    for v in [*POP, "subject_effects"]:
        assert v in post
    assert [n for n in post.data_vars if n.startswith("_")] == []
    assert set(post.beta.coords["term"].values) == {
        "Intercept",
        "onset_site[T.spinal]",
        "months",
        "age_at_onset",
        "months:onset_site[T.spinal]",
    }
    assert list(post.beta.coords["term"].values) == m.terms_
    assert post.subject_effects.dims == ("chain", "draw", "subject_id", "effect")
    assert list(post.subject_effects.coords["effect"].values) == ["Intercept", "months"]
    assert post.sizes["subject_id"] == linear_data["subject_id"].nunique()
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 400
    for g in ("posterior", "sample_stats", "observed_data", "log_likelihood"):
        assert g in m.idata_.groups()
    assert m.idata_.log_likelihood["frs"].shape == (2, 400, len(linear_data))
    assert m.marginalized_ and m.n_obs_ == len(linear_data)


def test_diagnostics_keys_and_values(linear_fit):
    d = linear_fit.diagnostics_
    assert set(d) == {
        "max_rhat",
        "min_ess_bulk",
        "min_ess_tail",
        "n_divergent",
        "min_bfmi",
    }
    assert 0.99 < d["max_rhat"] < 1.05 and d["min_ess_bulk"] > 100
    assert d["n_divergent"] == 0


def test_marginal_and_full_models_agree(linear_fit, linear_full_fit):
    """Same data, same priors: population posteriors agree within MC error."""
    import arviz as az

    a, b = linear_fit.idata_.posterior, linear_full_fit.idata_.posterior
    se_a, se_b = az.mcse(a[POP]), az.mcse(b[POP])
    for v in POP:
        diff = np.abs(a[v].mean(("chain", "draw")) - b[v].mean(("chain", "draw")))
        se = np.sqrt(se_a[v] ** 2 + se_b[v] ** 2)
        assert np.all(diff.values < 4.5 * se.values), v
        # and the spreads match (posterior SD within 25 %)
        sd_a, sd_b = a[v].std(("chain", "draw")), b[v].std(("chain", "draw"))
        assert_allclose(sd_a.values, sd_b.values, rtol=0.25)
    ea = a.subject_effects.mean(("chain", "draw")).values
    eb = b.subject_effects.mean(("chain", "draw")).values
    sd = a.subject_effects.std(("chain", "draw")).values
    assert np.median(np.abs(ea - eb) / sd) < 0.15


def test_slope_recovered_roughly(linear_fit):
    s = linear_fit.summary().tables["fixed"]
    # simulation truth, bayes_fixtures.LINEAR_TRUTH; 80 subjects -> loose bounds
    assert (
        s.loc["months", "ci_lower"] - 0.3
        < LINEAR_TRUTH["slope"]
        < (s.loc["months", "ci_upper"] + 0.3)
    )
    r = linear_fit.summary().tables["random"]
    assert 1.0 < r.loc["sd(Intercept)", "mean"] < 10.0


def test_summary_tables_and_text(linear_fit):
    s = linear_fit.summary(level=0.8)
    assert isinstance(s, Summary)
    fixed = s.tables["fixed"]
    assert list(fixed.columns) == [
        "mean",
        "sd",
        "ci_lower",
        "ci_upper",
        "r_hat",
        "ess_bulk",
        "ess_tail",
    ]
    assert list(fixed.index) == linear_fit.terms_
    post = linear_fit.idata_.posterior.beta.sel(term="months").values.ravel()
    assert_allclose(fixed.loc["months", "mean"], post.mean())
    assert_allclose(fixed.loc["months", "ci_upper"], np.quantile(post, 0.9))
    text = str(s)
    assert "sd(months)" in text and "corr(Intercept, months)" in text
    assert "marginal model" in text


def test_subject_trajectories_are_beta_plus_subject_effects(linear_fit, linear_data):
    m = linear_fit
    sid = linear_data["subject_id"].iloc[0]
    tr = m.subject_trajectories([0.0, 12.0], subjects=[sid], level=0.9)
    assert list(tr.columns) == ["subject_id", "months", "mean", "lower", "upper"]
    post = m.idata_.posterior
    row = linear_data[linear_data.subject_id == sid].iloc[0]
    beta = post.beta.stack(s=("chain", "draw")).values  # (p, S)
    b = post.subject_effects.sel(subject_id=sid).stack(s=("chain", "draw")).values
    terms = list(post.term.values)
    spinal = float(row.onset_site == "spinal")
    x12 = {
        "Intercept": 1.0,
        "months": 12.0,
        "onset_site[T.spinal]": spinal,
        "age_at_onset": row.age_at_onset,
        "months:onset_site[T.spinal]": 12 * spinal,
    }
    mu = np.array([x12[t] for t in terms]) @ beta + b[0] + 12.0 * b[1]
    assert_allclose(tr["mean"].iloc[1], mu.mean(), rtol=1e-10)
    assert (tr["lower"] < tr["mean"]).all() and (tr["mean"] < tr["upper"]).all()
    with pytest.raises(ModelSpecificationError, match=r"'nobody' were not in"):
        m.subject_trajectories([0.0], subjects=["nobody"])


def test_predict_known_and_new_subjects(linear_fit, linear_data):
    m = linear_fit
    rows = linear_data.iloc[:2].copy()
    new = rows.assign(subject_id="NEW1")
    both = pd.concat([rows, new])
    out = m.predict_interval(both, interval="prediction", seed=1)
    assert list(out.columns) == ["mean", "lower", "upper"]
    width = out["upper"] - out["lower"]
    assert (width.iloc[2:].to_numpy() > width.iloc[:2].to_numpy()).all()
    mean_only = m.predict_interval(rows, seed=1)  # the band of the mean curve
    tr = m.subject_trajectories(
        rows["months"].to_numpy()[:1], subjects=[rows.subject_id.iloc[0]]
    )
    assert_allclose(mean_only["mean"].iloc[0], tr["mean"].iloc[0], rtol=1e-10)
    assert_allclose(mean_only["lower"].iloc[0], tr["lower"].iloc[0], rtol=1e-10)
    assert ((mean_only["upper"] - mean_only["lower"]) < width.iloc[:2]).all()
    # predict: the point prediction per row, a Series like the mixed model's
    point = m.predict(both, seed=1)
    assert isinstance(point, pd.Series) and point.name == "predicted"
    assert point.index.equals(both.index)
    assert_allclose(point.iloc[:1], tr["mean"].iloc[:1], rtol=1e-10)
    # same seed, same numbers
    assert out.equals(m.predict_interval(both, interval="prediction", seed=1))
    assert point.equals(m.predict(both, seed=1))
    miss = rows.assign(age_at_onset=[np.nan, 60.0])
    assert m.predict(miss, seed=0).isna().tolist() == [True, False]


def test_loo_by_observation_and_by_subject(linear_fit, linear_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lo = linear_fit.loo()
        ls = linear_fit.loo(by="subject")
    assert lo.n_data_points == len(linear_data)
    assert ls.n_data_points == linear_data["subject_id"].nunique()
    assert np.isfinite(lo.elpd_loo) and np.isfinite(ls.elpd_loo)


def test_convergence_gate_warns_and_strict_raises(linear_fit, monkeypatch):
    m = clone(linear_fit)
    for k, v in vars(linear_fit).items():
        setattr(m, k, v)
    monkeypatch.setattr(bayes_mod, "ESS_BULK_MIN", 10**9)
    with pytest.warns(
        ConvergenceWarning,
        match=r"min bulk ESS \d+ < 1000000000; "
        r"raise draws/tune or chains",
    ):
        m._gate()
    assert m.converged_ is False
    m.strict = True
    with pytest.raises(ConvergenceError, match="may not have converged"):
        m._gate()


def test_save_load_roundtrip(linear_fit, tmp_path):
    path = tmp_path / "model.nc"
    linear_fit.save(path)
    assert not list(tmp_path.glob(".*.tmp"))
    back = BayesianTrajectoryModel.load(path)
    assert back.get_params() == linear_fit.get_params()
    pd.testing.assert_frame_equal(
        back.summary().tables["fixed"], linear_fit.summary().tables["fixed"]
    )
    a = back.subject_trajectories([0.0, 6.0], subjects=["S0001"])
    b = linear_fit.subject_trajectories([0.0, 6.0], subjects=["S0001"])
    pd.testing.assert_frame_equal(a, b)
    assert back.diagnostics_ == pytest.approx(linear_fit.diagnostics_, nan_ok=True)


def _rewrite_config(src, dst, **changes):
    import arviz as az

    idata = az.from_netcdf(str(src))
    cfg = json.loads(idata.attrs["alsprog"])
    cfg.update(changes)
    idata.attrs["alsprog"] = json.dumps(cfg)
    idata.to_netcdf(str(dst))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"version": "0.0.1"}, r"field 'version' is '0.0.1'"),
        ({"model": "LinearMixedModel"}, r"field 'model' is 'LinearMixedModel'"),
    ],
)
def test_load_checks_class_and_version(linear_fit, tmp_path, change, match):
    linear_fit.save(tmp_path / "a.nc")
    _rewrite_config(tmp_path / "a.nc", tmp_path / "b.nc", **change)
    with pytest.raises(SavedModelError, match=r"b\.nc: " + match):
        BayesianTrajectoryModel.load(tmp_path / "b.nc")


def test_load_rejects_foreign_files(tmp_path):
    import arviz as az

    az.from_dict(posterior={"x": np.zeros((1, 3))}).to_netcdf(str(tmp_path / "x.nc"))
    with pytest.raises(SavedModelError, match=r"x\.nc: field 'alsprog' missing"):
        BayesianTrajectoryModel.load(tmp_path / "x.nc")
    (tmp_path / "junk.nc").write_text("not netcdf")
    with pytest.raises(SavedModelError, match=r"junk\.nc: cannot be read"):
        BayesianTrajectoryModel.load(tmp_path / "junk.nc")


def test_saved_priors_are_dicts(linear_data, linear_fit, tmp_path):
    import arviz as az

    m = clone(linear_fit)
    for k, v in vars(linear_fit).items():
        setattr(m, k, v)
    m.priors = {"sigma": Prior("HalfNormal", sigma=4.0)}
    m.save(tmp_path / "p.nc")
    cfg = json.loads(az.from_netcdf(str(tmp_path / "p.nc")).attrs["alsprog"])
    assert cfg["model"] == "BayesianTrajectoryModel"
    assert cfg["params"]["priors"] == {
        "sigma": {"distribution": "HalfNormal", "sigma": 4.0}
    }
    assert BayesianTrajectoryModel.load(tmp_path / "p.nc").priors == m.priors


# ---------------------------------------------------------------- fitted sigmoid
def test_sigmoid_fit_structure(sigmoid_fit, sigmoid_data):
    m = sigmoid_fit
    post = m.idata_.posterior
    assert post.beta.dims == ("chain", "draw", "effect", "term")
    assert list(post.effect.values) == ["log_d50", "log_dx"]
    assert not m.marginalized_
    tr = m.subject_trajectories(np.linspace(0, 120, 5), subjects=["S0000"])
    assert ((tr["lower"] >= 0) & (tr["upper"] <= 48)).all()
    assert tr["mean"].is_monotonic_decreasing
    s = m.summary()
    assert "log_d50: Intercept" in s.tables["fixed"].index
    assert m.loo(by="subject").n_data_points == m.n_subjects_


def test_sigmoid_d50_roughly_recovered(sigmoid_fit):
    from bayes_fixtures import SIGMOID_TRUTH

    b = sigmoid_fit.idata_.posterior.beta.sel(term="Intercept")
    for eff in ("log_d50", "log_dx"):
        draws = b.sel(effect=eff).values.ravel()
        # 40 exact-model subjects; truth within the central 99 % interval
        lo, hi = np.quantile(draws, [0.005, 0.995])
        assert lo < SIGMOID_TRUTH[eff] < hi, eff


def test_prior_predictive_is_on_alsfrs_scale(linear_data):
    m = BayesianTrajectoryModel(formula="frs ~ months")
    pp = m.prior_predictive(linear_data.iloc[:60], draws=200, seed=1)
    y = pp.prior_predictive["frs"].values
    assert y.shape[-1] == 60
    # weakly informative: the bulk of prior draws lies on a plausible range
    assert -40 < np.median(y) < 90
    assert not hasattr(m, "idata_")
    s = BayesianTrajectoryModel("sigmoid", formula="frs ~ 1").prior_predictive(
        linear_long(5, seed=0)[0].assign(months_since_onset=lambda d: d.months + 12),
        draws=100,
        seed=2,
    )
    ys = s.prior_predictive["frs"].values
    assert np.quantile(ys, 0.01) > -15 and np.quantile(ys, 0.99) < 63
