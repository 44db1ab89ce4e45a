"""Recovery, coverage and cross-check studies of BayesianTrajectoryModel (slow).

Truth comes from the data generators (bayes_fixtures: exact-model data), from
``alsprog.simulate.simulate_cohort``'s per-subject truth, or from LinearMixedModel's
REML fit.  ``ALSPROG_BAYES_REPS`` sets the coverage study's replications (default 50).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from bayes_fixtures import LINEAR_TRUTH, SIGMOID_TRUTH, linear_long, sigmoid_long

from alsprog.errors import ConvergenceWarning
from alsprog.models.bayes._model import BayesianTrajectoryModel

# minutes each (MCMC on simulated cohorts): excluded from `make test`, run by `make
# test-all` (about 23 min on 2 cores)
pytestmark = [pytest.mark.slow, pytest.mark.veryslow]

FORMULA = "frs ~ months * onset_site + age_at_onset"


def _fit(df, **kw):
    kw = {"chains": 2, "draws": 500, "tune": 500, "progress": False, **kw}
    if "frs" in df.columns:  # the generators' continuous outcome (bayes_fixtures)
        kw.setdefault(
            "formula", "frs ~ 1" if kw.get("kind") == "sigmoid" else "frs ~ months"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BayesianTrajectoryModel(**kw).fit(df)


def _linear_truth_by_term() -> dict[str, float]:
    t = LINEAR_TRUTH
    # generator: bulbar = reference level (alphabetical), age centred at 58
    return {
        "beta[Intercept]": t["intercept"] - 58.0 * t["age"],
        "beta[months]": t["slope"] + t["bulbar_slope"],
        "beta[onset_site[T.spinal]]": 0.0,
        "beta[age_at_onset]": t["age"],
        "beta[months:onset_site[T.spinal]]": -t["bulbar_slope"],
        "subject_sd[Intercept]": t["sd_intercept"],
        "subject_sd[months]": t["sd_slope"],
        "subject_corr": t["corr"],
        "sigma": t["sigma"],
    }


def _intervals(m, level=0.9):
    post = m.idata_.posterior
    out = {}
    q = [(1 - level) / 2, (1 + level) / 2]
    for t in post.term.values:
        out[f"beta[{t}]"] = np.quantile(post.beta.sel(term=t).values, q)
    for e in post.effect.values:
        out[f"subject_sd[{e}]"] = np.quantile(post.subject_sd.sel(effect=e).values, q)
    out["subject_corr"] = np.quantile(post.subject_corr.values, q)
    out["sigma"] = np.quantile(post.sigma.values, q)
    return out


def test_linear_coverage_of_90pct_intervals():
    """Pooled coverage of the 90 % intervals over replications lies in 85-95 %."""
    reps = int(os.environ.get("ALSPROG_BAYES_REPS", "50"))
    truth = _linear_truth_by_term()
    hits = {k: [] for k in truth}
    for r in range(reps):
        df, _ = linear_long(150, seed=1000 + r)
        ci = _intervals(_fit(df, formula=FORMULA, seed=r))
        for k, v in truth.items():
            hits[k].append(ci[k][0] <= v <= ci[k][1])
    per = {k: np.mean(v) for k, v in hits.items()}
    pooled = np.mean([x for v in hits.values() for x in v])
    print(f"pooled coverage {pooled:.3f} over {reps} reps; per parameter {per}")
    assert 0.85 <= pooled <= 0.95, per
    # no single parameter grossly off (binomial 3-SD band around 0.9 for 50 reps)
    assert min(per.values()) >= 0.9 - 3 * np.sqrt(0.09 / reps), per


def test_subject_slopes_track_simulator_truth():
    """Per-subject slope posteriors vs the simulator's true mean slope (>= 6 visits)."""
    from alsprog.data import assemble
    from alsprog.models.bayes._sigmoid import sigmoid_mean
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(300, seed=21)
    df = assemble(c.visits, c.subjects)
    m = _fit(df, formula="alsfrs_r_total ~ months", seed=3)
    post = m.idata_.posterior
    slope = post.beta.sel(term="months") + post.subject_effects.sel(effect="months")
    est = slope.mean(("chain", "draw")).to_series()
    g = df.groupby("subject_id")["months"].agg(["min", "max", "size"])
    g = g[g["size"] >= 6]
    tr = c.truth.set_index("subject_id").loc[g.index]
    t0 = tr["months_onset_to_baseline"] + g["min"]
    t1 = tr["months_onset_to_baseline"] + g["max"]
    true = (
        sigmoid_mean(t1.to_numpy(), tr.d50.to_numpy(), tr.dx.to_numpy())
        - sigmoid_mean(t0.to_numpy(), tr.d50.to_numpy(), tr.dx.to_numpy())
    ) / (g["max"] - g["min"]).to_numpy()
    r = np.corrcoef(est.loc[g.index].to_numpy(), true)[0, 1]
    print(f"{len(g)} subjects with >= 6 visits, r = {r:.3f}")
    assert r > 0.9


def test_linear_agrees_with_reml_on_a_large_cohort():
    """Posterior means within one posterior SD of LinearMixedModel's REML estimates."""
    from alsprog.models import LinearMixedModel

    df, _ = linear_long(1000, seed=77)
    try:
        lmm = LinearMixedModel(FORMULA + " + (months | subject_id)").fit(df)
    except Exception as exc:  # colleague's model under construction
        pytest.skip(f"LinearMixedModel not usable yet: {exc}")
    m = _fit(df, formula=FORMULA, seed=5)
    post = m.idata_.posterior
    for term, est in lmm.fe_params_.items():
        d = post.beta.sel(term=term).values
        assert abs(d.mean() - est) < d.std(), term
    cov = lmm.cov_re_.to_numpy()
    sd = post.subject_sd.values.reshape(-1, 2)
    assert np.all(np.abs(sd.mean(0) - np.sqrt(np.diag(cov))) < sd.std(0))
    rho = post.subject_corr.values.ravel()
    assert abs(rho.mean() - cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])) < rho.std()
    s = post.sigma.values.ravel()
    assert abs(s.mean() - np.sqrt(lmm.scale_)) < s.std()


def test_sigmoid_recovers_population_d50_and_dx():
    """Population log D50 / log dx recovered from exact-model sigmoid data.

    The 90 % intervals must cover the cohort's realised mean of log D50 / log dx (what
    200 subjects identify); the generator's population value (differing from it by
    sampling error, SD 0.3 / sqrt(200) = 0.02) must lie within the 99 % interval.
    """
    df, truth = sigmoid_long(200, seed=31)
    m = _fit(df, kind="sigmoid", seed=7)
    b = m.idata_.posterior.beta.sel(term="Intercept")
    realised = {"log_d50": np.log(truth.d50).mean(), "log_dx": np.log(truth.dx).mean()}
    for eff in ("log_d50", "log_dx"):
        draws = b.sel(effect=eff).values
        lo, hi = np.quantile(draws, [0.05, 0.95])
        assert lo <= realised[eff] <= hi, (eff, lo, hi, realised[eff])
        lo, hi = np.quantile(draws, [0.005, 0.995])
        assert lo <= SIGMOID_TRUTH[eff] <= hi, (eff, lo, hi)
    sd = m.idata_.posterior.subject_sd.values.reshape(-1, 2)
    lo, hi = np.quantile(sd, [0.005, 0.995], axis=0)
    truth_sd = [SIGMOID_TRUTH["sd_log_d50"], SIGMOID_TRUTH["sd_log_dx"]]
    assert np.all((lo <= truth_sd) & (truth_sd <= hi)), (lo, hi)


def test_sigmoid_fits_simulator_cohort():
    """On simulate_cohort data the population D50/dx match the cohort's truth."""
    from alsprog.data import assemble
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(200, seed=41)
    df = assemble(c.visits, c.subjects)
    m = _fit(df, kind="sigmoid", seed=9)
    b = m.idata_.posterior.beta.sel(term="Intercept")
    # the simulator's D50/dx are not exactly lognormal (two-point construction);
    # compare the median curve parameters with the cohort's median truth, 20 %
    assert abs(np.exp(b.sel(effect="log_d50").mean()) / c.truth.d50.median() - 1) < 0.2
    assert abs(np.exp(b.sel(effect="log_dx").mean()) / c.truth.dx.median() - 1) < 0.3


def test_loo_prefers_sigmoid_on_sigmoid_data():
    df, _ = sigmoid_long(150, seed=51, visits=(0, 3, 6, 9, 12, 18, 24, 30, 36))
    lin = _fit(
        df,
        formula="frs ~ months_since_onset",
        time="months_since_onset",
        seed=1,
    )
    sig = _fit(df, kind="sigmoid", seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        l_lin, l_sig = lin.loo(), sig.loo()
    diff = l_sig.elpd_loo - l_lin.elpd_loo
    print(f"elpd sigmoid - linear = {diff:.1f}")
    assert diff > 0


def test_same_seed_same_posterior():
    df, _ = linear_long(30, seed=8)
    a = _fit(df, seed=123, draws=100, tune=100)
    b = _fit(df, seed=123, draws=100, tune=100)
    for v in ("beta", "subject_effects", "sigma"):
        assert np.array_equal(
            a.idata_.posterior[v].values, b.idata_.posterior[v].values
        )


@pytest.mark.parametrize("sampler", ["pymc", "nutpie"])
def test_other_samplers_agree_with_numpyro(sampler):
    """The same marginal model sampled by PyMC's NUTS / nutpie gives the same posterior."""
    import arviz as az

    df, _ = linear_long(60, seed=9)
    a = _fit(df, seed=1)
    b = _fit(df, seed=2, sampler=sampler)
    pa, pb = a.idata_.posterior, b.idata_.posterior
    se_a, se_b = az.mcse(pa[["beta", "sigma"]]), az.mcse(pb[["beta", "sigma"]])
    for v in ("beta", "sigma"):
        diff = np.abs(pa[v].mean(("chain", "draw")) - pb[v].mean(("chain", "draw")))
        assert np.all(diff.values < 4.5 * np.sqrt(se_a[v] ** 2 + se_b[v] ** 2).values)


def test_student_t_linear_model_runs_full():
    df, _ = linear_long(60, seed=10)
    m = _fit(df, likelihood="student_t", seed=3)
    assert not m.marginalized_
    assert "nu" in m.idata_.posterior
    assert "nu" in m.summary().tables["residual"].index
    # normal data: nu should not be tiny
    assert np.median(m.idata_.posterior.nu.values) > 5
