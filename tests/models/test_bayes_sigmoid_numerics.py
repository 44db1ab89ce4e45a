"""The sigmoid (D50) model's mean curve and its PyMC model, without sampling.

Oracles are independent of the code under test: the closed form
``48 / (1 + exp((t - D50) / dx))`` written out with NumPy, and scipy.stats densities
of every prior and of the observed outcome at a chosen parameter point, with the
per-subject ``log D50`` / ``log dx`` and the non-centred subject effects worked out by
hand (``b0 = sd0 z0``, ``b1 = sd1 (rho z0 + sqrt(1 - rho^2) z1)``).  PyMC graphs are
compiled with ``FAST_COMPILE`` (no C compilation) to keep these tests quick.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from bayes_fixtures import logp_terms
from numpy.testing import assert_allclose
from scipy import stats

from alsprog.errors import ModelSpecificationError
from alsprog.models.bayes._priors import Prior, default_priors
from alsprog.models.bayes._sigmoid import FULL_SCALE, build_sigmoid_model, sigmoid_mean


def _closed_form(t, d50, dx):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # exp overflow -> 48 / inf = 0
        return 48.0 / (1.0 + np.exp((t - d50) / dx))


# ------------------------------------------------------------- sigmoid_mean
def test_full_scale_is_the_alsfrs_r_maximum():
    assert FULL_SCALE == 48.0


def test_sigmoid_mean_matches_the_closed_form_and_broadcasts():
    t = np.array([0.0, 12.5, 30.0, 41.0, 70.0])
    d50 = np.array([[25.0], [36.0], [30.0]])
    dx = np.array([[8.0], [14.0], [3.0]])
    out = sigmoid_mean(t, d50, dx)
    assert out.shape == (3, 5)
    assert_allclose(out, _closed_form(t, d50, dx), rtol=1e-14)
    # at t = D50 the curve is at half scale; it is point-symmetric about there
    assert out[2, 2] == 24.0
    h = np.array([1.0, 5.0, 17.0])
    lo, hi = sigmoid_mean(30.0 - h, 30.0, 9.0), sigmoid_mean(30.0 + h, 30.0, 9.0)
    assert_allclose(lo + hi, 48.0, rtol=1e-15)
    assert np.all(hi < 24.0) and np.all(lo > 24.0)


def test_sigmoid_mean_far_from_d50_reaches_the_asymptotes_without_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning, no NaN
        out = sigmoid_mean(
            np.array([-1e4, 1e4, 300.0]), 30.0, np.array([1.0, 1.0, 10.0])
        )
    assert out[0] == 48.0 and out[1] == 0.0
    assert_allclose(out[2], 48.0 * np.exp(-27.0) / (1 + np.exp(-27.0)), rtol=1e-13)


# ---------------------------------------------------------- the PyMC model
# four subjects (p = 3 terms: Intercept, bulbar, age), rows not sorted by subject
XS = np.array([[1.0, 0.0, 61.0], [1.0, 1.0, 47.0], [1.0, 0.0, 70.0], [1.0, 1.0, 55.0]])
GROUPS = np.array([0, 1, 0, 2, 3, 0, 1, 3])
T = np.array([10.0, 22.0, 18.0, 35.0, 28.0, 30.0, 40.0, 44.0])
Y = np.array([43.0, 30.5, 38.0, 22.0, 27.5, 31.0, 15.0, 18.0])
COORDS = {
    "term": ["Intercept", "bulbar", "age"],
    "effect": ["log_d50", "log_dx"],
    "subject_id": ["s0", "s1", "s2", "s3"],
    "obs": np.arange(8),
}
# a point: centred intercepts and rests of log D50 / log dx, SDs, rho, sigma, z
PT = {
    "ic": np.array([np.log(30.0), np.log(10.0)]),
    "rest": np.array([[-0.2, 0.01], [0.15, -0.005]]),
    "sd": np.array([0.3, 0.25]),
    "rho": 0.35,
    "sigma": 2.4,
    "z": np.array([[0.4, -1.2], [1.1, 0.3], [-0.7, 0.8], [1.9, -0.4]]),
}
# priors that differ between every pair of keys, and one per-term prior
PRIORS = {
    **default_priors("sigmoid"),
    "d50_intercept": Prior("Normal", mu=3.3, sigma=0.4),
    "dx_intercept": Prior("Normal", mu=2.2, sigma=0.6),
    "d50_beta": Prior("Normal", mu=0.1, sigma=0.3),
    "dx_beta": Prior("Normal", mu=-0.1, sigma=0.7),
    "d50_beta[age]": Prior("Normal", mu=0.02, sigma=0.05),
    "sd_d50": Prior("HalfNormal", sigma=0.4),
    "sd_dx": Prior("HalfNormal", sigma=0.9),
    "corr": Prior("LKJ", eta=3.0),
    "sigma": Prior("HalfNormal", sigma=4.0),
}


def _build(**kw):
    args = {
        "y": Y,
        "Xs": XS,
        "t": T,
        "groups": GROUPS,
        "coords": COORDS,
        "priors": PRIORS,
        "outcome": "frs",
        "likelihood": "normal",
    }
    return build_sigmoid_model(**{**args, **kw})


def _values(extra=None):
    u = (PT["rho"] + 1) / 2
    v = {
        "_d50_intercept_centred": PT["ic"][0],
        "_d50_rest": PT["rest"][0],
        "_dx_intercept_centred": PT["ic"][1],
        "_dx_rest": PT["rest"][1],
        "_sd_d50_log__": np.log(PT["sd"][0]),
        "_sd_dx_log__": np.log(PT["sd"][1]),
        "_corr_logodds__": np.log(u / (1 - u)),
        "sigma_log__": np.log(PT["sigma"]),
        "_z": PT["z"],
    }
    return {**v, **(extra or {})}


def _by_hand():
    """beta (2, p), subject effects (G, 2) and the mean of every row."""
    xbar = XS[:, 1:].mean(axis=0)  # sample means over subjects, not rows
    beta = np.column_stack([PT["ic"] - PT["rest"] @ xbar, PT["rest"]])
    z, (s0, s1), r = PT["z"], PT["sd"], PT["rho"]
    b = np.column_stack(
        [s0 * z[:, 0], s1 * (r * z[:, 0] + np.sqrt(1 - r**2) * z[:, 1])]
    )
    lin = XS @ beta.T + b
    mu = _closed_form(T, np.exp(lin[GROUPS, 0]), np.exp(lin[GROUPS, 1]))
    return beta, b, mu


def test_model_variables_dims_and_observed_data():
    # built in each test (0.1 s), not in a shared fixture, so that mutation testing
    # sees every test that builds the model
    m = _build()
    assert [v.name for v in m.free_RVs] == [
        "_d50_intercept_centred",
        "_d50_rest",
        "_dx_intercept_centred",
        "_dx_rest",
        "_sd_d50",
        "_sd_dx",
        "_corr",
        "sigma",
        "_z",
    ]
    assert [v.name for v in m.observed_RVs] == ["frs"]
    assert {d.name for d in m.deterministics} == {
        "beta",
        "subject_sd",
        "subject_corr",
        "subject_effects",
    }
    dims = {n: m.named_vars_to_dims.get(n) for n in ("beta", "subject_sd", "_z")}
    assert dims == {
        "beta": ("effect", "term"),
        "subject_sd": ("effect",),
        "_z": ("subject_id", "effect"),
    }
    assert m.named_vars_to_dims["subject_effects"] == ("subject_id", "effect")
    assert m.named_vars_to_dims["frs"] == ("obs",)
    assert m.named_vars_to_dims.get("subject_corr") is None
    assert np.array_equal(m.rvs_to_values[m["frs"]].data, Y)
    assert m["_d50_rest"].type.shape == (2,) and m["_dx_rest"].type.shape == (2,)


def test_logp_at_a_point_matches_scipy():
    terms, (beta, sd, corr, b) = logp_terms(
        _build(),
        _values(),
        ["beta", "subject_sd", "subject_corr", "subject_effects"],
    )
    ref_beta, ref_b, mu = _by_hand()
    assert_allclose(beta, ref_beta, rtol=1e-13)
    assert_allclose(sd, PT["sd"], rtol=1e-13)
    assert_allclose(corr, PT["rho"], rtol=1e-12)
    assert_allclose(b, ref_b, rtol=1e-13)
    u = (PT["rho"] + 1) / 2
    rest = PT["rest"]
    ref = [
        stats.norm(3.3, 0.4).logpdf(PT["ic"][0]),
        stats.norm(0.1, 0.3).logpdf(rest[0, 0])
        + stats.norm(0.02, 0.05).logpdf(rest[0, 1]),
        stats.norm(2.2, 0.6).logpdf(PT["ic"][1]),
        stats.norm(-0.1, 0.7).logpdf(rest[1]).sum(),
        stats.halfnorm(scale=0.4).logpdf(PT["sd"][0]),
        stats.halfnorm(scale=0.9).logpdf(PT["sd"][1]),
        stats.beta(3.0, 3.0).logpdf(u),
        stats.halfnorm(scale=4.0).logpdf(PT["sigma"]),
        stats.norm.logpdf(PT["z"]).sum(),
        stats.norm(mu, PT["sigma"]).logpdf(Y).sum(),
    ]
    # PyMC folds log(sqrt(2 pi)) and the Beta constant to about 1e-8
    assert_allclose(terms, ref, rtol=1e-7, atol=1e-7)
    # the mean is mid-curve at this point, where every parameter matters
    assert np.all((mu > 5.0) & (mu < 47.5))


def test_student_t_likelihood_adds_nu_with_its_prior():
    priors = {**PRIORS, "nu": Prior("Gamma", alpha=2.0, beta=0.1)}
    m = _build(likelihood="student_t", priors=priors)
    assert [v.name for v in m.free_RVs][-2:] == ["_z", "nu"]
    assert [v.name for v in m.observed_RVs] == ["frs"]
    assert m.named_vars_to_dims["frs"] == ("obs",)
    assert np.array_equal(m.rvs_to_values[m["frs"]].data, Y)
    terms, _ = logp_terms(m, _values({"nu_log__": np.log(5.5)}), [])
    _, _, mu = _by_hand()
    assert_allclose(terms[-2], stats.gamma(2.0, scale=10.0).logpdf(5.5), rtol=1e-7)
    ref = stats.t(5.5, mu, PT["sigma"]).logpdf(Y).sum()
    assert_allclose(terms[-1], ref, rtol=1e-7)


def test_intercept_only_model_has_no_rest_and_no_centring():
    m = _build(Xs=XS[:, :1], coords={**COORDS, "term": ["Intercept"]})
    names = [v.name for v in m.free_RVs]
    assert names[:3] == ["_d50_intercept_centred", "_dx_intercept_centred", "_sd_d50"]
    point = _values()
    del point["_d50_rest"], point["_dx_rest"]
    terms, (beta,) = logp_terms(m, point, ["beta"])
    assert_allclose(beta, PT["ic"][:, None], rtol=1e-15)
    b = _by_hand()[1]
    mu = _closed_form(
        T, np.exp(PT["ic"][0] + b[GROUPS, 0]), np.exp(PT["ic"][1] + b[GROUPS, 1])
    )
    assert_allclose(terms[-1], stats.norm(mu, PT["sigma"]).logpdf(Y).sum(), rtol=1e-7)


@pytest.mark.parametrize("key", ["sd_d50", "sd_dx", "sigma", "nu"])
def test_scale_priors_must_live_on_the_positive_reals(key):
    priors = {**PRIORS, "nu": Prior("Gamma", alpha=2.0, beta=0.1)}
    priors[key] = Prior("Normal", mu=1, sigma=1)
    with pytest.raises(
        ModelSpecificationError,
        match=rf"Prior for '{key}' must live on the positive reals .*"
        r"got Prior\('Normal', mu=1.0, sigma=1.0\)",
    ):
        _build(likelihood="student_t", priors=priors)
