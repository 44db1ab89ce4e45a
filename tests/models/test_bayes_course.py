"""DiseaseCourseModel and simulate_disease_course (issue 26, item 3).

Quick tier: the simulator against the closed form of Leaspy's logistic model, its
bounds, seeds and errors; the model's data preparation, mean curve and argument
checks (no sampling).  A module fixture samples one tiny fit (slow) for the shape of
every output; the recovery study on 150 simulated patients is ``slow``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone

from alsprog.errors import (
    ConvergenceWarning,
    DataValidationError,
    DataWarning,
    ModelSpecificationError,
    NotFittedError,
)
from alsprog.models.bayes._course import DiseaseCourseModel
from alsprog.models.bayes._course_graph import (
    DEFAULT_BOUNDS,
    course_mean,
    prepare_course_data,
)
from alsprog.simulate import simulate_disease_course
from alsprog.simulate._course_multi import (
    COURSE_OUTCOMES,
    DOMAINS,
    REFERENCE_RANGES,
    default_course_params,
)

THREE = ["alsfrs_r_bulbar", "alsfrs_r_gross_motor", "fa_cst_left"]


def _leaspy(t, tau, xi, t0, m, v, w):
    """Leaspy's form 1 / (1 + g exp(-v e^xi (t - tau) - w)), g = exp(v (m - t0))."""
    g = np.exp(v * (m - t0))
    return 1.0 / (1.0 + g * np.exp(-v * np.exp(xi) * (t - tau) - w))


# ---------------------------------------------------------------- simulator
def test_simulator_shapes_columns_and_bounds():
    sim = simulate_disease_course(40, seed=3)
    v = sim.visits
    assert list(v.columns) == ["subject_id", "months", "months_since_onset"] + list(
        COURSE_OUTCOMES
    )
    assert len(v) == 40 * 7  # visits 0, 3, ..., 18
    assert sorted(v["months"].unique()) == [0, 3, 6, 9, 12, 15, 18]
    for d in DOMAINS:
        x = v[d].to_numpy()
        assert np.all(x == np.round(x)) and x.min() >= 0 and x.max() <= 12
    assert v["fvc_percent_predicted"].between(0, 250).all()
    # FA only at scans (every 6 months), inside 0-1
    fa = v["fa_cst_left"]
    assert fa.notna().to_numpy().tolist() == v["months"].isin([0, 6, 12, 18]).tolist()
    assert fa.dropna().between(0, 1).all()
    t = sim.truth
    assert len(t) == 40 and t["subject_id"].is_unique
    assert {"tau", "xi", "alpha", "onset_site", "entry_months_since_onset"} <= set(t)
    assert_allclose(t["alpha"], np.exp(t["xi"]))
    entry = t.set_index("subject_id").loc[v["subject_id"], "entry_months_since_onset"]
    assert_allclose(v["months_since_onset"], entry.to_numpy() + v["months"])
    assert list(sim.outcomes.index) == list(COURSE_OUTCOMES)


def test_simulator_seed_reproducible():
    a = simulate_disease_course(6, seed=11)
    b = simulate_disease_course(6, seed=11)
    c = simulate_disease_course(6, seed=12)
    pd.testing.assert_frame_equal(a.visits, b.visits)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not np.allclose(a.truth["tau"], c.truth["tau"])


def test_simulator_noise_free_matches_leaspy_closed_form():
    outs = ["fvc_percent_predicted", "fa_cst_left"]
    quiet = {o: {"noise_sd": 0.0, "healthy_sd": 0.0} for o in outs}
    sim = simulate_disease_course(
        5, outcomes=outs, seed=2, params={"outcomes": quiet, "imaging_every_months": 3}
    )
    p, tr = default_course_params(), sim.truth.set_index("subject_id")
    v = sim.visits
    for o in outs:
        normal, floor = REFERENCE_RANGES[o]
        po = p["outcomes"][o]
        row = tr.loc[v["subject_id"]]
        y = _leaspy(
            v["months_since_onset"].to_numpy(),
            row["tau"].to_numpy(),
            row["xi"].to_numpy(),
            p["t0"],
            po["midpoint"],
            po["rate"],
            row[f"w_{o}"].to_numpy(),
        )
        assert_allclose(v[o], normal - y * (normal - floor), rtol=1e-10)


def test_space_shifts_orthogonal_to_rates_and_follow_onset_site():
    sim = simulate_disease_course(400, seed=5)
    rates = sim.outcomes["rate"].to_numpy()
    W = sim.truth[[f"w_{o}" for o in COURSE_OUTCOMES]].to_numpy()
    assert_allclose(W @ rates, 0.0, atol=1e-12)  # Leaspy: w_i orthogonal to v
    by_site = sim.truth.groupby("onset_site")["w_alsfrs_r_bulbar"].mean()
    # bulbar onset: the bulbar domain declines earlier, i.e. a larger logit shift
    assert by_site["bulbar"] > by_site["spinal"] + 1.0


def test_simulator_first_visit_means_are_trial_like():
    # docs/domain.md §1: trial-entry domain means 9.7 / 8.0 / 7.6 / 10.8
    # [Paganoni 2020]; tolerance 1 point (a simulator calibration, not a fit).
    v = simulate_disease_course(2000, seed=1).visits
    first = v[v["months"] == 0]
    for d, ref in zip(DOMAINS, [9.7, 8.0, 7.6, 10.8], strict=True):
        assert abs(first[d].mean() - ref) < 1.0, d


def test_simulated_decline_order_by_hand():
    sim = simulate_disease_course(2, seed=0)
    # midpoints (months): fa 12, fine 21, gross 23, fvc 30, bulbar 33, resp 36
    assert sim.decline_order() == [
        "fa_cst_left",
        "alsfrs_r_fine_motor",
        "alsfrs_r_gross_motor",
        "fvc_percent_predicted",
        "alsfrs_r_bulbar",
        "alsfrs_r_respiratory",
    ]
    # at 10 % decline FA (rate 0.08) is reached 27.5 months before its midpoint
    # (12 + ln(1/9)/0.08 = -15.5), still first; fvc (rate 0.1) at 8.0
    assert sim.decline_order(0.1)[0] == "fa_cst_left"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"outcomes": ["alsfrs_r_total"]}, ModelSpecificationError, "alsfrs_r_total"),
        ({"outcomes": []}, ModelSpecificationError, "no outcome"),
        ({"params": {"tau_mean": 3}}, ModelSpecificationError, "tau_mean"),
        (
            {"params": {"outcomes": {"alsfrs_r_bulbar": {"rate": 0.0}}}},
            ModelSpecificationError,
            "rate",
        ),
        ({"months": -1}, ValueError, "months"),
        ({"visit_interval_months": 0}, ValueError, "visit_interval_months"),
    ],
)
def test_simulator_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        simulate_disease_course(3, **kwargs)


def test_simulator_rejects_zero_patients():
    with pytest.raises(ValueError, match="n_patients"):
        simulate_disease_course(0)


# ---------------------------------------------------------------- model numerics
def test_model_ranges_match_the_simulator():
    for o, pair in REFERENCE_RANGES.items():
        assert DEFAULT_BOUNDS[o] == pair


def test_course_mean_is_leaspy_logistic():
    t = np.linspace(0, 60, 7)
    got = course_mean(t, 20.0, 0.3, 24.0, 30.0, 0.12, w=0.4)
    assert_allclose(got, _leaspy(t, 20.0, 0.3, 24.0, 30.0, 0.12, 0.4), rtol=1e-12)
    # half-way exactly at latent time m when w = 0
    assert course_mean(np.array(30.0), 30.0, 0.0, 30.0, 30.0, 0.5) == pytest.approx(0.5)


def test_prepare_course_data_normalises_observed_cells_only():
    df = pd.DataFrame(
        {
            "subject_id": ["a", "a", "b", "b"],
            "months_since_onset": [10.0, 13.0, 20.0, 23.0],
            "alsfrs_r_bulbar": [12, 9, np.nan, np.nan],
            "fvc_percent_predicted": [100.0, np.nan, 75.0, np.nan],
        }
    )
    d = prepare_course_data(
        df,
        ["alsfrs_r_bulbar", "fvc_percent_predicted"],
        subject="subject_id",
        time="months_since_onset",
        bounds=DEFAULT_BOUNDS,
    )
    assert d.n_dropped == 1  # b's second row has no value
    assert list(d.subject_ids) == ["a", "b"]
    # cells: a@10 bulbar 0, a@10 fvc 0, a@13 bulbar 0.25, b@20 fvc 0.25
    order = np.lexsort((d.k, d.t))
    assert_allclose(d.y[order], [0.0, 0.0, 0.25, 0.25])
    assert_allclose(d.t[order], [10, 10, 13, 20])
    assert_allclose(d.last_time, [13.0, 20.0])
    assert_allclose(d.mean_time, [(10 + 10 + 13) / 3, 20.0])
    assert d.t_ref == 11.5


def test_prepare_course_data_names_bad_cells():
    df = pd.DataFrame(
        {
            "subject_id": ["a", "b"],
            "months_since_onset": [10.0, np.nan],
            "alsfrs_r_bulbar": ["x", 9],
        }
    )
    with pytest.raises(DataValidationError) as exc:
        prepare_course_data(
            df,
            ["alsfrs_r_bulbar"],
            subject="subject_id",
            time="months_since_onset",
            bounds=DEFAULT_BOUNDS,
        )
    msg = str(exc.value)
    assert "row 1, subject a, column alsfrs_r_bulbar: 'x' is not a number" in msg
    assert "row 2, subject b, column months_since_onset" in msg


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"outcomes": []}, "non-empty"),
        ({"outcomes": "alsfrs_r_bulbar"}, "non-empty"),
        ({"outcomes": ["alsfrs_r_bulbar", "alsfrs_r_bulbar"]}, "repeats"),
        ({"outcomes": ["mystery_score"]}, r"mystery_score.*bounds="),
        ({"outcomes": ["x"], "bounds": {"x": (1.0, 1.0)}}, r"bounds\['x'\]"),
        ({"outcomes": ["alsfrs_r_bulbar"], "chains": 0}, "chains"),
        ({"outcomes": ["alsfrs_r_bulbar"], "target_accept": 1.0}, "target_accept"),
        ({"outcomes": ["alsfrs_r_bulbar"], "offsets": ["fa_cst_left"]}, "offsets"),
        ({"outcomes": ["alsfrs_r_bulbar", "nope"], "bounds": {"nope": (0, 1)}}, "nope"),
    ],
)
def test_model_bad_arguments_fail_before_sampling(kwargs, match):
    df = simulate_disease_course(3, outcomes=["alsfrs_r_bulbar"], seed=1).visits
    with pytest.raises(ModelSpecificationError, match=match):
        DiseaseCourseModel(**kwargs).fit(df)


def test_model_warns_about_rows_without_outcomes(monkeypatch):
    import alsprog.models.bayes._course as course

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(course, "build_course_model", stop)  # no sampling
    df = simulate_disease_course(3, outcomes=["alsfrs_r_bulbar"], seed=1).visits
    df.loc[[0, 5], "alsfrs_r_bulbar"] = np.nan
    with pytest.warns(DataWarning, match="2 row"), pytest.raises(Stop):
        DiseaseCourseModel(["alsfrs_r_bulbar"]).fit(df)


def test_model_not_fitted():
    m = DiseaseCourseModel(["alsfrs_r_bulbar"])
    with pytest.raises(NotFittedError):
        m.patient_stage()
    with pytest.raises(NotFittedError):
        m.decline_order()


def test_model_keeps_parameters_unchanged():
    m = DiseaseCourseModel(["a", "b"], draws=10, seed=3)
    assert m.get_params()["outcomes"] == ["a", "b"]
    assert m.get_params()["draws"] == 10
    assert repr(m) == "DiseaseCourseModel(outcomes=['a', 'b'], draws=10, seed=3)"
    assert clone(m).get_params() == m.get_params()


@pytest.mark.parametrize(
    ("t", "y", "sigma"),
    [
        ([15.0, 18.0, 21.0], [0.20, 0.27, 0.36], 0.06),  # data-dominated
        ([15.0], [0.2], 0.3),  # prior-dominated: the proposal's inflation shows
    ],
)
def test_forecast_importance_sampling_matches_grid_quadrature(t, y, sigma):
    """One outcome (effects tau, xi), one posterior draw: a new patient's latent
    time 12 months after their last visit, by importance sampling against a
    201 x 201 grid over the prior (an independent quadrature of the same posterior)."""
    from scipy.special import expit

    from alsprog.models.bayes._course_forecast import forecast_subject

    p = {
        "t0": np.array([24.0]),
        "tau_sd": np.array([8.0]),
        "xi_sd": np.array([0.4]),
        "m": np.array([[30.0]]),
        "log_v": np.log(np.array([[0.12]])),
        "sigma": np.array([[sigma]]),
    }
    t, y = np.array(t), np.array(y)
    k = np.zeros(len(t), dtype=np.int64)
    when = np.array([t[-1] + 12.0])
    n = 2000
    curves, stages, ess = forecast_subject(
        p,
        np.zeros(n, dtype=np.int64),
        np.array([False]),
        (k, t, y),
        when,
        200,
        np.random.default_rng(0),
    )
    g = np.linspace(-6, 6, 201)
    z1, z2 = np.meshgrid(g, g, indexing="ij")
    tau, alpha = 24.0 + 8.0 * z1, np.exp(0.4 * z2)
    psi = alpha[..., None] * (t - tau[..., None]) + 24.0
    ll = -0.5 * (((y - expit(0.12 * (psi - 30.0))) / sigma) ** 2).sum(axis=-1)
    logw = ll - 0.5 * (z1**2 + z2**2)
    w = np.exp(logw - logw.max())
    f = alpha * (when[0] - tau) + 24.0
    target = (w * f).sum() / w.sum()
    sd = np.sqrt((w * (f - target) ** 2).sum() / w.sum())
    assert abs(stages.mean() - target) < 4 * sd / np.sqrt(n / 2)  # MC error
    assert stages.std() == pytest.approx(sd, rel=0.1)
    assert 10 < ess <= 200
    assert_allclose(curves[:, 0, 0], expit(0.12 * (stages[:, 0] - 30.0)))


@pytest.mark.slow
def test_likelihood_on_the_visit_grid_equals_the_per_cell_normal_density():
    """The graph sums the likelihood on a masked (subject, visit, outcome) grid;
    at a random point it must equal scipy's normal density summed over the
    observed cells, computed from the model's own deterministics."""
    from scipy import stats

    from alsprog.models.bayes._course_graph import (
        build_course_model,
        initial_curves,
        prepare_course_data,
    )

    sim = simulate_disease_course(12, outcomes=THREE, seed=2)
    v = sim.visits.copy()
    v.loc[v.index[::5], "alsfrs_r_bulbar"] = np.nan  # ragged cells
    d = prepare_course_data(
        v,
        THREE,
        subject="subject_id",
        time="months_since_onset",
        bounds=dict(DEFAULT_BOUNDS),
        offsets=("fa_cst_left",),
    )
    model = build_course_model(d, *initial_curves(d))
    rng = np.random.default_rng(0)
    point = {
        k: np.asarray(x) + rng.normal(0.0, 0.1, np.shape(x))
        for k, x in model.initial_point().items()
    }
    names = ["t0", "m", "log_v", "tau", "xi", "w", "b", "sigma"]
    det = dict(
        zip(
            names,
            model.compile_fn(
                model.replace_rvs_by_values([model[n] for n in names]),
                inputs=model.value_vars,
                on_unused_input="ignore",
            )(point),
            strict=True,
        )
    )
    pot = next(p for p in model.potentials if p.name == "y")
    got = float(
        model.compile_fn(
            model.replace_rvs_by_values([pot])[0],
            inputs=model.value_vars,
            on_unused_input="ignore",
        )(point)
    )
    b = np.zeros((len(d.subject_ids), len(THREE)))
    b[:, d.offset_mask] = det["b"]
    mu = course_mean(
        d.t,
        det["tau"][d.s],
        det["xi"][d.s],
        det["t0"],
        det["m"][d.k],
        np.exp(det["log_v"])[d.k],
        det["w"][d.s, d.k],
        b[d.s, d.k],
    )
    want = stats.norm.logpdf(d.y, mu, det["sigma"][d.k]).sum()
    assert len(d.y) < 12 * 7 * 3
    assert got == pytest.approx(want, rel=1e-10, abs=1e-8)


# ---------------------------------------------------------------- a tiny fit
@pytest.fixture(scope="module")
def tiny():
    sim = simulate_disease_course(30, outcomes=THREE, seed=7)
    held = sim.visits["subject_id"].isin(["P0029", "P0030"])
    model = DiseaseCourseModel(
        THREE,
        offsets=["fa_cst_left"],
        chains=2,
        draws=100,
        tune=150,
        seed=4,
        progress=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(sim.visits[~held])
    model_warnings = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    return sim, model, sim.visits[held], model_warnings


@pytest.mark.slow
def test_tiny_fit_state(tiny):
    sim, m, _, _ = tiny
    assert m.n_subjects_ == 28
    n_fa = sim.visits["fa_cst_left"].notna().sum()
    assert m.n_obs_ == 28 * 7 * 2 + n_fa - 2 * 4  # FA only at 4 scans per patient
    assert m.n_dropped_ == 0
    assert set(m.diagnostics_) == {
        "max_rhat",
        "min_ess_bulk",
        "min_ess_tail",
        "n_divergent",
        "min_bfmi",
    }
    assert isinstance(m.converged_, bool) and m.sampling_seconds_ > 0
    assert list(m.population_.columns) == [
        "midpoint",
        "rate",
        "sigma",
        "normal",
        "floor",
    ]
    assert list(m.population_.index) == THREE
    post = m.idata_.posterior
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 100
    assert post["b"].shape[-1] == 1  # only FA has a healthy-level offset
    W = post["w"].values.reshape(-1, 28, 3)
    V = np.exp(post["log_v"].values.reshape(-1, 3))
    assert_allclose(np.einsum("snk,sk->sn", W, V), 0.0, atol=1e-6)


@pytest.mark.slow
def test_tiny_summary(tiny):
    _, m, _, _ = tiny
    s = m.summary(level=0.9)
    pop = s.tables["population"]
    assert list(pop.columns) == ["mean", "sd", "lower", "upper", "r_hat", "ess_bulk"]
    assert pop.index[:4].tolist() == ["t0", "tau_sd", "xi_sd", "w_sd"]
    assert "midpoint[alsfrs_r_gross_motor]" in pop.index
    assert "b_sd[fa_cst_left]" in pop.index
    assert_allclose(
        pop.loc[[f"midpoint[{o}]" for o in THREE], "mean"], m.population_["midpoint"]
    )
    assert (pop["lower"] <= pop["upper"]).all()
    assert s.tables["decline"].equals(m.decline_order(0.5, level=0.9).times)
    assert "Number of subjects" in str(s)


@pytest.mark.slow
def test_tiny_fit_fails_the_gate_loudly(tiny):
    _, m, _, caught = tiny
    # 2 x 100 draws cannot give a bulk ESS of 400 for every population parameter
    assert m.diagnostics_["min_ess_bulk"] < 400
    assert m.converged_ is False
    assert len(caught) == 1
    assert "DiseaseCourseModel may not have converged: " in str(caught[0].message)
    assert "raise draws/tune or chains" in str(caught[0].message)


@pytest.mark.slow
def test_tiny_patient_stage(tiny):
    _, m, _, _ = tiny
    st = m.patient_stage()
    cols = ["subject_id", "months_since_onset"] + [
        f"{q}_{s}"
        for q in ("stage", "speed", "tau", "xi")
        for s in ("mean", "lower", "upper")
    ]
    assert list(st.columns) == cols and len(st) == 28
    for q in ("stage", "speed", "tau", "xi"):
        assert (st[f"{q}_lower"] <= st[f"{q}_mean"]).all()
        assert (st[f"{q}_mean"] <= st[f"{q}_upper"]).all()
    assert (st["speed_mean"] > 0).all()
    later, earlier = m.patient_stage(at=40.0), m.patient_stage(at=20.0)
    assert (later["stage_mean"] > earlier["stage_mean"]).all()  # time moves forward
    one = m.patient_stage(subjects=["P0003"], level=0.5)
    assert one["subject_id"].tolist() == ["P0003"]
    assert (one["stage_upper"] - one["stage_lower"]).iloc[0] < (
        st.loc[st["subject_id"] == "P0003", "stage_upper"]
        - st.loc[st["subject_id"] == "P0003", "stage_lower"]
    ).iloc[0]
    with pytest.raises(ModelSpecificationError, match="P9999"):
        m.patient_stage(subjects=["P9999"])


@pytest.mark.slow
def test_tiny_decline_order(tiny):
    _, m, _, _ = tiny
    do = m.decline_order(0.5, level=0.9)
    assert list(do.times.columns) == ["mean", "lower", "upper", "prob_first"]
    assert do.times["mean"].is_monotonic_increasing
    assert do.times["prob_first"].sum() == pytest.approx(1.0)
    pw = do.pairwise.to_numpy()
    off = ~np.eye(3, dtype=bool)
    assert_allclose((pw + pw.T)[off], 1.0)  # ties have probability 0 in draws
    assert do.orders["probability"].sum() == pytest.approx(1.0)
    assert do.orders["probability"].is_monotonic_decreasing
    # a lower threshold is reached earlier
    assert (
        m.decline_order(0.2).times["mean"]
        < do.times["mean"].reindex(m.decline_order(0.2).times.index)
    ).all()
    with pytest.raises(ValueError, match="threshold"):
        m.decline_order(1.0)


@pytest.mark.slow
def test_tiny_trajectories_predict_and_curves(tiny):
    sim, m, _, _ = tiny
    tr = m.subject_trajectories(
        [12.0, 24.0], subjects=["P0001", "P0002"], outcomes=m.outcomes
    )
    assert list(tr.columns) == [
        "subject_id",
        "months_since_onset",
        "outcome",
        "mean",
        "lower",
        "upper",
    ]
    assert len(tr) == 2 * 2 * 3
    wide = tr[tr["outcome"] == "alsfrs_r_bulbar"]
    assert wide["mean"].between(0, 12).all()
    pred_band = m.subject_trajectories(
        [24.0], subjects=["P0001"], interval="prediction", outcomes=m.outcomes
    )
    conf_band = tr[(tr["subject_id"] == "P0001") & (tr["months_since_onset"] == 24.0)]
    # the contract's one-outcome table: the reported outcome only, same numbers
    one = m.subject_trajectories([12.0, 24.0], subjects=["P0001", "P0002"])
    assert (one["outcome"] == THREE[0]).all() and len(one) == 4
    pd.testing.assert_frame_equal(
        one, tr[tr["outcome"] == THREE[0]].reset_index(drop=True)
    )
    assert (
        (pred_band["upper"] - pred_band["lower"]).to_numpy()
        > (conf_band["upper"] - conf_band["lower"]).to_numpy()
    ).all()
    fitted = sim.visits[~sim.visits["subject_id"].isin(["P0029", "P0030"])]
    pred = m.predict_outcomes(fitted)
    assert list(pred.columns) == THREE and pred.index.equals(fitted.index)
    series = m.predict(fitted)
    assert series.name == "predicted"
    assert_allclose(series.to_numpy(), pred[THREE[0]].to_numpy())
    assert_allclose(
        m.for_outcome(THREE[2]).predict(fitted).to_numpy(), pred[THREE[2]].to_numpy()
    )
    for o in ("alsfrs_r_bulbar", "alsfrs_r_gross_motor"):
        r = np.corrcoef(pred[o], fitted[o])[0, 1]
        assert r > 0.8, (o, r)
    pc = m.population_curves(level=0.8)
    assert list(pc.columns) == ["outcome", "latent_time", "mean", "lower", "upper"]
    g = pc[pc["outcome"] == "alsfrs_r_gross_motor"]
    assert g["mean"].is_monotonic_increasing  # normalised decline rises
    raw = m.population_curves([-40.0, 100.0], scale="raw")
    gm = raw[raw["outcome"] == "alsfrs_r_gross_motor"]["mean"].to_numpy()
    # rate ~0.12/month, midpoint ~20: 60-80 months from it the curve is at its ends
    assert gm[0] > 11.5 and gm[1] < 0.5


@pytest.mark.slow
def test_tiny_forecast_new_patients(tiny):
    sim, m, held, _ = tiny
    history = held[held["months"] <= 6]
    fc = m.forecast(history, times=[30.0, 36.0], n_draws=50, n_importance=200, seed=1)
    assert list(fc.columns) == [
        "subject_id",
        "months_since_onset",
        "outcome",
        "mean",
        "lower",
        "upper",
        "stage_mean",
        "importance_ess",
    ]
    assert len(fc) == 2 * 2 * 3
    assert fc["importance_ess"].between(1, 200).all()
    assert (fc["lower"] <= fc["upper"]).all()
    again = m.forecast(
        history, times=[30.0, 36.0], n_draws=50, n_importance=200, seed=1
    )
    pd.testing.assert_frame_equal(fc, again)
    default = m.forecast(history, n_draws=20, n_importance=100, seed=2)
    assert len(default) == 2 * 5 * 3  # last visit + 0, 3, ..., 12 months


@pytest.mark.slow
def test_tiny_forecast_every_outcome_through_the_contract(tiny):
    from alsprog.forecast import forecast

    sim, m, held, _ = tiny
    history = held[held["months"] <= 6]
    at = [9.0, 15.0]  # months since the first visit (the model's visit time)
    tables = {
        o: forecast(m.for_outcome(o), history, at, n_samples=300, seed=3)
        for o in m.outcomes
    }
    truth = held.set_index(["subject_id", "months"])
    for o, fc in tables.items():
        assert list(fc.columns[:2]) == ["subject_id", "months"]
        assert len(fc) == 2 * len(at)
        assert (fc["lower"] <= fc["median"]).all() and (
            fc["median"] <= fc["upper"]
        ).all()
        lo, hi = m.for_outcome(o).outcome_bounds_
        assert fc[["lower", "upper"]].stack().between(lo, hi).all()
    # the predictive mean agrees with the mean curve of the model's own
    # multi-outcome forecast (independent draws of the same posterior predictive)
    offset = (
        (history["months_since_onset"] - history["months"])
        .groupby(history["subject_id"])
        .first()
    )
    for sid, g in tables[THREE[1]].groupby("subject_id"):
        times = (g["months"] + offset[sid]).to_numpy()
        direct = m.forecast(
            history[history["subject_id"] == sid], times=times, n_draws=200, seed=4
        )
        mean = direct[direct["outcome"] == THREE[1]]["mean"].to_numpy()
        assert_allclose(g["mean"].to_numpy(), mean, atol=0.75)
    # the observed values at those visits mostly fall inside the 90 % bands
    bulbar = tables["alsfrs_r_bulbar"].set_index(["subject_id", "months"])
    inside = [
        bulbar.loc[k, "lower"] - 1e-9
        <= truth.loc[k, "alsfrs_r_bulbar"]
        <= bulbar.loc[k, "upper"] + 1e-9
        for k in bulbar.index
        if k in truth.index and np.isfinite(truth.loc[k, "alsfrs_r_bulbar"])
    ]
    assert len(inside) >= 2 and np.mean(inside) >= 0.5
    # the same seed gives the same table; the default outcome is the first
    again = forecast(m, history, at, n_samples=300, seed=3)
    pd.testing.assert_frame_equal(again, tables[THREE[0]])
    with pytest.raises(ModelSpecificationError, match="outcome"):
        m.for_outcome("alsfrs_r_total")


@pytest.mark.slow
def test_tiny_plot(tiny):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alsprog.plots import disease_course_plot

    _, m, _, _ = tiny
    fig = disease_course_plot(m)
    try:
        top, bottom = fig.axes
        assert len(top.get_lines()) >= 3
        assert [t.get_text() for t in top.get_legend().get_texts()] == list(
            m.decline_order().times.index
        )
        assert bottom.get_yscale() == "log"
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- recovery
@pytest.mark.veryslow  # a study (make test-all): keeps make test near 15 minutes
def test_recovery_on_the_simulator():
    """150 patients, 4 outcomes, 2 x 300 draws: tau and xi, decline order, forecasts.

    Oracles: the simulation truth (tau, xi, the order of the midpoints) and, for the
    forecast of 20 held-out patients from their first 3 visits (months 0-6), the
    noise-free curve at month 18 from Leaspy's closed form (:func:`_leaspy`) and
    last-observation-carried-forward as the baseline to beat.
    """
    outs = [
        "alsfrs_r_bulbar",
        "alsfrs_r_gross_motor",
        "alsfrs_r_respiratory",
        "fvc_percent_predicted",
    ]
    sim = simulate_disease_course(170, outcomes=outs, seed=3)
    held_ids = [f"P{i:04d}" for i in range(151, 171)]
    held = sim.visits["subject_id"].isin(held_ids)
    m = DiseaseCourseModel(
        outs,
        offsets=["fvc_percent_predicted"],
        chains=2,
        draws=300,
        tune=300,
        seed=1,
        progress=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(sim.visits[~held])
    truth = sim.truth[~sim.truth["subject_id"].isin(held_ids)]
    st = m.patient_stage().set_index("subject_id").loc[truth["subject_id"]]
    assert np.corrcoef(st["tau_mean"], truth["tau"])[0, 1] >= 0.8
    assert np.corrcoef(st["xi_mean"], truth["xi"])[0, 1] >= 0.8
    do = m.decline_order(0.5)
    assert do.orders["order"].iloc[0] == " < ".join(sim.decline_order(0.5))
    assert m.diagnostics_["n_divergent"] == 0
    assert m.diagnostics_["max_rhat"] < 1.1

    history = sim.visits[held & (sim.visits["months"] <= 6)]
    fc = m.forecast(history, n_draws=200, n_importance=500, seed=2)
    end = fc.groupby(["subject_id", "outcome"], sort=False).tail(1)  # last + 12 mo
    p = default_course_params()
    tr = sim.truth.set_index("subject_id")
    covered, err_model, err_locf = [], [], []
    for o in ("alsfrs_r_bulbar", "alsfrs_r_gross_motor"):
        e = end[end["outcome"] == o].set_index("subject_id").loc[held_ids]
        row = tr.loc[held_ids]
        y = _leaspy(
            e["months_since_onset"].to_numpy(),
            row["tau"].to_numpy(),
            row["xi"].to_numpy(),
            p["t0"],
            p["outcomes"][o]["midpoint"],
            p["outcomes"][o]["rate"],
            row[f"w_{o}"].to_numpy(),
        )
        true_mean = 12.0 - 12.0 * y
        covered += list((e["lower"] <= true_mean) & (true_mean <= e["upper"]))
        v = sim.visits.set_index("subject_id")
        obs18 = v[v["months"] == 18].loc[held_ids, o].to_numpy()
        obs6 = v[v["months"] == 6].loc[held_ids, o].to_numpy()
        err_model += list(np.abs(e["mean"].to_numpy() - obs18))
        err_locf += list(np.abs(obs6 - obs18))
    # 90 % bands of the mean curve: P(<= 29 of 40 covered | p = 0.9) < 1 %
    assert np.mean(covered) >= 0.75
    assert np.mean(err_model) < 0.8 * np.mean(err_locf)


@pytest.mark.slow
def test_tiny_contract_history_keeps_visits_without_the_reported_outcome(tiny):
    """A visit with other outcomes but not the reported one is part of the
    contract's history (``columns_.context``): it moves the forecast, and a
    forecast time before it is refused as a forecast of the past."""
    from alsprog.errors import DataValidationError
    from alsprog.forecast import forecast

    _, m, held, _ = tiny
    fa = m.for_outcome("fa_cst_left")
    assert fa.columns_.context == tuple(o for o in THREE if o != "fa_cst_left")
    history = held[held["months"] <= 12].copy()
    last = history.groupby("subject_id")["months"].idxmax()
    without = history.copy()
    without.loc[last, "fa_cst_left"] = np.nan  # the last visit: domains only
    dropped = without.drop(index=last)
    at = [18.0]
    kept = forecast(fa, without, at, n_samples=300, seed=3)
    gone = forecast(fa, dropped, at, n_samples=300, seed=3)
    assert not np.allclose(kept["mean"], gone["mean"], atol=1e-9)
    # between a subject's last two visits: fine without the domains-only visit,
    # a forecast of the past with it
    sid = str(without.loc[last.iloc[0], "subject_id"])
    mid = 0.5 * (
        float(without.loc[last.iloc[0], "months"])
        + float(dropped.loc[dropped["subject_id"] == sid, "months"].max())
    )
    when = pd.DataFrame({"subject_id": [sid], "months": [mid]})
    assert len(forecast(fa, dropped[dropped["subject_id"] == sid], when, seed=3)) == 1
    with pytest.raises(DataValidationError, match="before this subject's last"):
        forecast(fa, without[without["subject_id"] == sid], when, seed=3)
    # the single-outcome columns of other models carry no context
    from alsprog.data._history import ModelColumns

    assert ModelColumns.of("y", "s", "t", ["t"]).context == ()


@pytest.mark.slow
def test_speed_information_summarises_each_patients_speed():
    """The sampler's per-patient speed map (``speed_information``): on simulated
    patients the fitted log speeds track the truth, a patient seen once carries no
    information about its speed, more visits carry more, and the information at
    residual SDs sigma scales nearly as 1 / sigma^2."""
    from scipy import stats

    from alsprog.models.bayes._course_graph import (
        initial_curves,
        prepare_course_data,
        speed_info,
        speed_information,
    )

    sim = simulate_disease_course(60, outcomes=THREE, seed=11)
    v = sim.visits
    visit = v.groupby("subject_id").cumcount()
    one = v["subject_id"] == "P0001"  # seen once
    short = v["subject_id"].isin([f"P{i:04d}" for i in range(2, 21)])  # twice
    v = v[(~one | (visit == 0)) & (~short | (visit <= 1))]
    d = prepare_course_data(
        v,
        THREE,
        subject="subject_id",
        time="months_since_onset",
        bounds=dict(DEFAULT_BOUNDS),
    )
    m0, v0 = initial_curves(d)
    a_hat, _, H = speed_information(d, m0, v0)
    assert H.shape == (60, 3, 3) and np.isfinite(a_hat).all()
    sigma = np.full(3, 0.05)
    info = speed_info(H, sigma)
    assert info.min() >= -1e-9
    i1 = list(d.subject_ids).index("P0001")
    assert info[i1] < 1e-6 * np.median(info)  # one visit: no speed information
    n_visits = np.array([len(np.unique(d.t[d.s == i])) for i in range(60)])
    two, full = (n_visits == 2), (n_visits >= 4)
    assert two.sum() == 19 and full.sum() == 40
    assert np.median(info[two]) < 0.5 * np.median(info[full])
    # 1 / sigma^2 but for the stage's weak prior in the profile
    assert_allclose(speed_info(H, sigma / 2), 4 * info, rtol=0.02)
    truth = sim.truth.set_index("subject_id").loc[d.subject_ids]
    ok = full  # patients seen at 4 visits or more
    assert stats.pearsonr(a_hat[ok], truth["xi"].to_numpy()[ok]).statistic > 0.5


def test_stage_map_blends_prior_and_likelihood_by_their_information():
    """The sampler's per-patient stage map (``stage_map``): no likelihood
    information gives the prior (non-centred), much gives the likelihood's centre
    moved along the stage-speed correlation (centred), and between them the
    precision-weighted mean; the information scales as 1 / sigma^2 and with the
    logit unit vbar0."""
    from alsprog.models.bayes._course_graph import stage_map

    vbar0 = 0.1
    H = np.zeros((3, 2, 3))
    H[1, :, 0] = 1e-4  # weak: h_ss per outcome at unit residual SD
    H[2, :, 0] = 1e4  # strong
    H[2, :, 1] = 50.0  # stage-speed cross term
    sigma = np.array([0.1, 0.2])
    u_hat = np.array([1.0, 2.0, 3.0])
    a_delta = np.array([0.0, 0.0, 0.2])
    prior_mean, prior_sd = np.array([-1.0, -1.0, -1.0]), np.array([0.5, 0.5, 0.5])
    c, s = stage_map(H, sigma, u_hat, a_delta, prior_mean, prior_sd, vbar0)
    assert_allclose([c[0], s[0]], [-1.0, 0.5])  # no information: the prior
    huu = (H[1, :, 0] / sigma**2).sum() / vbar0**2
    prec = huu + 1 / 0.25
    assert_allclose([c[1], s[1]], [(huu * 2.0 - 4.0) / prec, prec**-0.5])
    huu2 = (H[2, :, 0] / sigma**2).sum() / vbar0**2
    hua2 = (H[2, :, 1] / sigma**2).sum() / vbar0
    u_cond = 3.0 - hua2 / (huu2 + 1 / 24**2 / vbar0**2) * 0.2
    assert abs(c[2] - u_cond) < 1e-4 and abs(s[2] - huu2**-0.5) < 1e-3 * huu2**-0.5
    # twice the noise: a quarter of the information
    _, s_half = stage_map(H, 2 * sigma, u_hat, a_delta, prior_mean, prior_sd, vbar0)
    assert_allclose(s_half[2], 2 * s[2], rtol=1e-3)
