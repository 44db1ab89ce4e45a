"""Edge and branch tests of ComBat harmonisation that kill the mutants the main tests let
survive (issue 20).

Oracles: neuroCombat 0.2.12's own helpers (``it_sol``, ``int_eprior``, ``aprior``,
``bprior``) on small arrays, dense-matrix REML written out here, and closed forms of
the two-site design without covariates (site means, pooled variance divided by n)."""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from alsprog.errors import DataValidationError, ModelSpecificationError
from alsprog.imaging import ComBat, combat
from alsprog.imaging._combat import (
    _int_eprior,
    _it_sol,
    combat_estimate,
    random_intercept_reml,
)

nc = pytest.importorskip("neuroCombat.neuroCombat")


# --------------------------------------------------------------------- helpers


def _two_sites(seed=0, n_a=5, n_b=7, p=3):
    """A small table: sites A and B, features fa_f0.. with site shifts and scales."""
    rng = np.random.default_rng(seed)
    site = np.array(["A"] * n_a + ["B"] * n_b)
    df = pd.DataFrame({"site": site})
    for k in range(p):
        df[f"fa_f{k}"] = rng.normal(0, 1, n_a + n_b) * np.where(
            site == "B", 2.0, 1.0
        ) + (np.where(site == "B", 1.0 + k, 0.0))
    return df


def _by_hand(df, features, ref=None):
    """Standardised data of the design without covariates: site means, grand mean (the
    size-weighted mean, or the reference site's), pooled variance divided by n."""
    Y = df[features].to_numpy(float)
    sites = sorted(df["site"].unique())
    means = np.array([Y[df["site"].to_numpy() == s].mean(axis=0) for s in sites])
    fitted = means[[sites.index(s) for s in df["site"]]]
    if ref is None:
        grand = Y.mean(axis=0)
        var = ((Y - fitted) ** 2).mean(axis=0)
    else:
        grand = means[sites.index(ref)]
        rows = df["site"].to_numpy() == ref
        var = ((Y[rows] - fitted[rows]) ** 2).mean(axis=0)
    return Y, sites, means, grand, var


# --------------------------------------------------------------------- REML


def _dense_reml(y, X, groups):
    """REML of the random-intercept model by dense matrices (V = I + lam Z Z')."""
    from scipy.optimize import minimize_scalar

    n, q = X.shape
    Z = (groups[:, None] == np.arange(groups.max() + 1)[None, :]).astype(float)

    def parts(lam):
        V = np.eye(n) + lam * Z @ Z.T
        Vi = np.linalg.inv(V)
        XVX = X.T @ Vi @ X
        beta = np.linalg.solve(XVX, X.T @ Vi @ y)
        r = y - X @ beta
        s2 = float(r @ Vi @ r) / (n - q)
        crit = (
            (n - q) * np.log(s2) + np.linalg.slogdet(V)[1] + np.linalg.slogdet(XVX)[1]
        )
        return beta, s2, crit, r

    res = minimize_scalar(lambda t: parts(np.exp(t))[2], bounds=(-20, 16),
                          method="bounded", options={"xatol": 1e-12})  # fmt: skip
    lam = float(np.exp(res.x))
    beta, s2, _, r = parts(lam)
    blup = lam * Z.T @ np.linalg.solve(np.eye(n) + lam * Z @ Z.T, r)
    return beta, s2, lam, blup


def test_reml_matches_dense_algebra_unequal_groups():
    """Groups of 1 to 4 rows (one singleton, codes not in row order), two fixed
    effects: beta, residual variance, variance ratio and BLUPs as the dense REML."""
    rng = np.random.default_rng(4)
    sizes = [1, 2, 3, 4, 2, 3, 4, 1, 3, 2, 4, 3]
    groups = np.repeat(np.arange(len(sizes)), sizes)
    groups = (groups * 5) % len(sizes)  # relabel, so codes are not sorted
    n = len(groups)
    x = rng.normal(size=n)
    y = 1.0 + 0.5 * x + rng.normal(0, 1.0, len(sizes))[groups] + rng.normal(0, 0.6, n)
    X = np.column_stack([np.ones(n), x])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the optimiser accepts every option given
        beta, s2, lam, blup = random_intercept_reml(y, X, groups)
    d_beta, d_s2, d_lam, d_blup = _dense_reml(y, X, groups)
    assert lam > 0.1
    # tolerance 1e-10 on log(lam): within 2e-7 of the dense optimum (1e-5 is not)
    assert lam == pytest.approx(d_lam, rel=2e-7)
    assert s2 == pytest.approx(d_s2, rel=5e-8)
    assert_allclose(beta, d_beta, rtol=1e-6)
    assert_allclose(blup, d_blup, atol=1e-6)
    assert blup.shape == (len(sizes),)
    assert isinstance(s2, float) and isinstance(lam, float)


def test_reml_highest_group_code_has_no_rows_left_out():
    """The last group (highest code) gets its own BLUP: a group of one row at the end."""
    rng = np.random.default_rng(8)
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4])
    y = rng.normal(0, 1, 5)[groups] * 2 + rng.normal(0, 0.3, len(groups))
    X = np.ones((len(groups), 1))
    beta, s2, lam, blup = random_intercept_reml(y, X, groups)
    d_beta, d_s2, d_lam, d_blup = _dense_reml(y, X, groups)
    assert_allclose(blup, d_blup, atol=1e-6)
    assert_allclose(beta, d_beta, rtol=1e-6)
    # BLUP closed form: lam n_i / (1 + lam n_i) * mean residual of group i
    resid = y - beta[0]
    assert blup[4] == pytest.approx(lam / (1 + lam) * resid[-1], rel=1e-10)


def test_reml_boundary_is_exactly_zero():
    """Rows of a group pulled apart (negative within-group correlation): the variance
    ratio is exactly 0, the BLUPs are 0 and beta, s2 are least squares."""
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(10), 2)
    e = rng.normal(0, 1, 10)
    y = np.column_stack([e, -e]).ravel() + 0.01 * rng.normal(size=20)
    x = rng.normal(size=20)
    X = np.column_stack([np.ones(20), x])
    beta, s2, lam, blup = random_intercept_reml(y, X, groups)
    assert lam == 0.0
    assert_array_equal(blup, np.zeros(10))
    ols, rss, *_ = np.linalg.lstsq(X, y, rcond=None)
    assert_allclose(beta, ols, rtol=1e-10)
    assert s2 == pytest.approx(float(rss[0]) / 18, rel=1e-10)


def test_reml_variance_ratio_capped_at_e12():
    """Residual SD 1/1000 of the subject SD: the ratio (about 1e6) is capped at e^12."""
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(15), 3)
    y = rng.normal(0, 1, 15)[groups] + rng.normal(0, 1e-3, 45)
    _, s2, lam, blup = random_intercept_reml(y, np.ones((45, 1)), groups)
    assert lam == pytest.approx(np.exp(12.0), rel=1e-6)
    assert _dense_reml(y, np.ones((45, 1)), groups)[2] > np.exp(12.5)


# --------------------------------------------------------------------- EB numerics


def test_it_sol_matches_neurocombat():
    rng = np.random.default_rng(2)
    sdat = rng.normal(0.3, 1.5, (6, 9))  # features x rows
    g_hat, d_hat = sdat.mean(axis=1), sdat.var(axis=1, ddof=1)
    a, b = nc.aprior(d_hat), nc.bprior(d_hat)
    g_bar, t2 = g_hat.mean(), g_hat.var(ddof=1)
    for conv in (1e-4, 1e-9):
        ours = _it_sol(sdat, g_hat, d_hat, g_bar, t2, a, b, conv=conv)
        ref = nc.it_sol(sdat, g_hat, d_hat, g_bar, t2, a, b, conv=conv)
        assert_allclose(ours[0], ref[0], rtol=1e-13)
        assert_allclose(ours[1], ref[1], rtol=1e-13)
    # the default tolerance is neuroCombat's 1e-4 (a looser one stops earlier)
    assert_array_equal(
        _it_sol(sdat, g_hat, d_hat, g_bar, t2, a, b)[1],
        _it_sol(sdat, g_hat, d_hat, g_bar, t2, a, b, conv=1e-4)[1],
    )
    loose = _it_sol(sdat, g_hat, d_hat, g_bar, t2, a, b, conv=0.5)
    ref = nc.it_sol(sdat, g_hat, d_hat, g_bar, t2, a, b, conv=0.5)
    assert_allclose(loose[1], ref[1], rtol=1e-13)


def test_it_sol_zero_location_stops_without_warnings():
    """A site mean of exactly 0 (0/0 in the stopping rule, as in neuroCombat): no
    warning, and the same answer as neuroCombat."""
    sdat = np.array([[-1.0, 0.0, 1.0], [0.5, -0.5, 0.0], [1.0, 2.0, 3.0]])
    g_hat = np.array([0.0, 0.0, 2.0])
    d_hat = sdat.var(axis=1, ddof=1)
    a, b = nc.aprior(d_hat), nc.bprior(d_hat)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g, d = _it_sol(sdat, g_hat, d_hat, 0.0, 1.0, a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nc.it_sol(sdat, g_hat, d_hat, 0.0, 1.0, a, b)
    assert_allclose(g, ref[0], rtol=1e-14)
    assert_allclose(d, ref[1], rtol=1e-14)
    # prior mean 0.5: the first relative change divides a nonzero step by 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g, d = _it_sol(sdat, g_hat, d_hat, 0.5, 1.0, a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nc.it_sol(sdat, g_hat, d_hat, 0.5, 1.0, a, b)
    assert_allclose(g, ref[0], rtol=1e-14)


def test_it_sol_fixed_point():
    """At convergence (tight tolerance) the posterior mean and variance solve their
    equations: g = (t2 n g_hat + d g_bar) / (t2 n + d), d = (sum2 / 2 + b) / (n/2 + a - 1)."""
    rng = np.random.default_rng(3)
    sdat = rng.normal(-0.2, 0.8, (4, 5))
    g_hat, d_hat = sdat.mean(axis=1), sdat.var(axis=1, ddof=1)
    g_bar, t2, a, b = 0.1, 0.3, 3.0, 2.0
    g, d = _it_sol(sdat, g_hat, d_hat, g_bar, t2, a, b, conv=1e-14)
    n = 5
    assert_allclose(g, (t2 * n * g_hat + d * g_bar) / (t2 * n + d), rtol=1e-10)
    sum2 = ((sdat - g[:, None]) ** 2).sum(axis=1)
    assert_allclose(d, (0.5 * sum2 + b) / (n / 2 + a - 1), rtol=1e-10)


def test_int_eprior_matches_neurocombat():
    rng = np.random.default_rng(5)
    sdat = rng.normal(0.0, 1.0, (7, 6)) + rng.normal(0, 0.5, (7, 1))
    g_hat, d_hat = sdat.mean(axis=1), sdat.var(axis=1, ddof=1)
    g, d = _int_eprior(sdat, g_hat, d_hat)
    ref_g, ref_d = nc.int_eprior(sdat, g_hat, d_hat)
    assert_allclose(g, ref_g, rtol=1e-11)
    assert_allclose(d, ref_d, rtol=1e-11)


def test_int_eprior_in_log_space_where_neurocombat_underflows():
    """800 rows: every likelihood underflows to 0 in neuroCombat; the weights written
    out with logsumexp here are what the log-space version returns."""
    from scipy.special import logsumexp

    rng = np.random.default_rng(6)
    p, n = 4, 800
    # rows on different scales: each row's weights are normalised on its own
    sdat = rng.normal(0, 1, (p, n)) * np.array([[1.0], [1.2], [0.9], [4.0]])
    g_hat = np.array([0.0, 0.05, -0.05, 0.1])
    d_hat = np.array([1.0, 1.4, 0.8, 1.2])
    g, d = _int_eprior(sdat, g_hat, d_hat)
    exp_g, exp_d = np.empty(p), np.empty(p)
    for i in range(p):
        others = [j for j in range(p) if j != i]
        ll = np.array([
            -0.5 * n * np.log(2 * np.pi * d_hat[j])
            - ((sdat[i] - g_hat[j]) ** 2).sum() / (2 * d_hat[j])
            for j in others
        ])  # fmt: skip
        w = np.exp(ll - logsumexp(ll))
        exp_g[i], exp_d[i] = w @ g_hat[others], w @ d_hat[others]
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(d))
    assert_allclose(g, exp_g, rtol=1e-9)
    assert_allclose(d, exp_d, rtol=1e-9)


# --------------------------------------------------------------------- combat_estimate


def _s_two_sites(p=4, seed=7):
    rng = np.random.default_rng(seed)
    s = rng.normal(0, 1, (11, p)) * np.repeat([[1.0], [1.8]], [5, 6], axis=0)
    s += np.repeat([[-0.4], [0.5]], [5, 6], axis=0)
    return s, np.repeat([0, 1], [5, 6])


def test_combat_estimate_every_field_parametric():
    s, batch = _s_two_sites()
    est = combat_estimate(s, batch, 2)
    assert sorted(est) == sorted(["gamma_hat", "delta_hat", "gamma_star", "delta_star",
                                  "gamma_bar", "t2", "a_prior", "b_prior"])  # fmt: skip
    rows = [slice(0, 5), slice(5, 11)]
    g_hat = np.stack([s[r].mean(axis=0) for r in rows])
    d_hat = np.stack([s[r].var(axis=0, ddof=1) for r in rows])
    assert_allclose(est["gamma_hat"], g_hat, rtol=1e-14)
    assert_allclose(est["delta_hat"], d_hat, rtol=1e-14)
    assert_allclose(est["gamma_bar"], g_hat.mean(axis=1), rtol=1e-14)
    assert_allclose(est["t2"], g_hat.var(axis=1, ddof=1), rtol=1e-14)
    assert_allclose(est["a_prior"], [nc.aprior(d) for d in d_hat], rtol=1e-12)
    assert_allclose(est["b_prior"], [nc.bprior(d) for d in d_hat], rtol=1e-12)
    for k, r in enumerate(rows):
        g, d = nc.it_sol(s[r].T, g_hat[k], d_hat[k], g_hat[k].mean(),
                         g_hat[k].var(ddof=1), nc.aprior(d_hat[k]),
                         nc.bprior(d_hat[k]))  # fmt: skip
        assert_allclose(est["gamma_star"][k], g, rtol=1e-12)
        assert_allclose(est["delta_star"][k], d, rtol=1e-12)


def test_combat_estimate_mean_only_and_no_eb():
    s, batch = _s_two_sites()
    g_hat = np.stack([s[:5].mean(axis=0), s[5:].mean(axis=0)])
    est = combat_estimate(s, batch, 2, mean_only=True)
    assert_array_equal(est["delta_hat"], np.ones((2, 4)))
    assert_array_equal(est["delta_star"], np.ones((2, 4)))
    t2, g_bar = g_hat.var(axis=1, ddof=1), g_hat.mean(axis=1)
    expected = (t2[:, None] * g_hat + g_bar[:, None]) / (t2[:, None] + 1.0)
    assert_allclose(est["gamma_star"], expected, rtol=1e-13)
    # the same as neuroCombat's posterior mean with n = 1, d = 1
    assert_allclose(est["gamma_star"][1], nc.postmean(g_hat[1], g_bar[1], 1, 1, t2[1]))
    # no EB: the per-site estimates as they are
    est = combat_estimate(s, batch, 2, eb=False)
    assert_allclose(est["gamma_star"], g_hat, rtol=1e-14)
    assert_allclose(est["delta_star"], est["delta_hat"], rtol=0)
    assert_allclose(est["delta_hat"][0], s[:5].var(axis=0, ddof=1), rtol=1e-14)


def test_combat_estimate_non_parametric():
    s, batch = _s_two_sites(p=6)
    est = combat_estimate(s, batch, 2, parametric=False)
    for k, r in enumerate([slice(0, 5), slice(5, 11)]):
        g, d = nc.int_eprior(s[r].T, s[r].mean(axis=0), s[r].var(axis=0, ddof=1))
        assert_allclose(est["gamma_star"][k], g, rtol=1e-11)
        assert_allclose(est["delta_star"][k], d, rtol=1e-11)
    # mean only: the likelihood uses unit variances, delta stays 1
    est = combat_estimate(s, batch, 2, parametric=False, mean_only=True)
    g, _ = nc.int_eprior(s[5:].T, s[5:].mean(axis=0), np.ones(6))
    assert_allclose(est["gamma_star"][1], g, rtol=1e-11)
    assert_allclose(est["delta_star"], np.ones((2, 6)), rtol=1e-14)


@pytest.mark.parametrize(
    "kw", [{}, {"eb": False}, {"parametric": False}, {"mean_only": True}]
)
def test_combat_estimate_reference_batch(kw):
    """The reference site gets gamma* = 0, delta* = 1; its raw estimates are untouched
    (the no-EB stars are copies, not views)."""
    s, batch = _s_two_sites()
    est = combat_estimate(s, batch, 2, ref=1, **kw)
    free = combat_estimate(s, batch, 2, **kw)
    assert_array_equal(est["gamma_star"][1], np.zeros(4))
    assert_array_equal(est["delta_star"][1], np.ones(4))
    assert_array_equal(est["gamma_star"][0], free["gamma_star"][0])
    assert_array_equal(est["delta_star"][0], free["delta_star"][0])
    assert_allclose(est["gamma_hat"][1], s[5:].mean(axis=0), rtol=1e-14)
    if not kw.get("mean_only"):
        assert_allclose(est["delta_hat"][1], s[5:].var(axis=0, ddof=1), rtol=1e-14)


def test_combat_estimate_one_feature_and_two_features():
    """One feature: no spread across features, t2 = 1 and the inverse-gamma priors
    undefined (NaN).  Two features: the sample variances across the two."""
    s, batch = _s_two_sites(p=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ddof warning from a 1-element variance
        est = combat_estimate(s, batch, 2, mean_only=True)
    assert_array_equal(est["t2"], [1.0, 1.0])
    g_hat = np.array([s[:5, 0].mean(), s[5:, 0].mean()])
    assert_allclose(est["gamma_star"][:, 0], (g_hat + g_hat) / 2, rtol=1e-14)
    est = combat_estimate(s, batch, 2, eb=False)
    assert np.isnan(est["a_prior"]).all() and np.isnan(est["b_prior"]).all()
    s, batch = _s_two_sites(p=2)
    est = combat_estimate(s, batch, 2)
    g_hat = np.stack([s[:5].mean(axis=0), s[5:].mean(axis=0)])
    d_hat = np.stack([s[:5].var(axis=0, ddof=1), s[5:].var(axis=0, ddof=1)])
    assert_allclose(est["t2"], g_hat.var(axis=1, ddof=1), rtol=1e-14)
    assert_allclose(est["a_prior"], [nc.aprior(d) for d in d_hat], rtol=1e-12)


def test_combat_estimate_priors_without_warnings():
    """Equal site variances (mean only: all 1) give a_prior = b_prior = inf; variances
    whose spread overflows give inf / inf = NaN: both without a RuntimeWarning."""
    s, batch = _s_two_sites()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = combat_estimate(s, batch, 2, mean_only=True)
    assert np.isinf(est["a_prior"]).all() and np.isinf(est["b_prior"]).all()
    for r in (slice(0, 5), slice(5, 11)):  # site variances of feature 0: 1e306
        s[r, 0] *= np.sqrt(1e306 / s[r, 0].var(ddof=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow: v = m**2 = inf
        warnings.filterwarnings(
            "error", message="invalid value", category=RuntimeWarning
        )
        est = combat_estimate(s, batch, 2, eb=False)
    assert np.isnan(est["a_prior"]).all()


def test_combat_estimate_zero_variance_within_a_site_counts_as_one():
    s, batch = _s_two_sites()
    s[:5, 2] = 0.25  # constant within site 0
    est = combat_estimate(s, batch, 2, eb=False)
    assert est["delta_hat"][0, 2] == 1.0
    assert est["delta_hat"][1, 2] == pytest.approx(s[5:, 2].var(ddof=1), rel=1e-14)
    assert est["delta_hat"][0, 1] == pytest.approx(s[:5, 1].var(ddof=1), rel=1e-14)


# --------------------------------------------------------------------- ComBat: closed forms


FEATS = ["fa_f0", "fa_f1", "fa_f2"]


def test_fit_two_sites_every_field_by_hand():
    """No covariates, no EB: every fitted attribute and the output from site means and
    the pooled variance divided by n, written out here."""
    df = _two_sites()
    cb = ComBat(eb=False).fit(df)
    Y, sites, means, grand, var = _by_hand(df, FEATS)
    assert cb.features_ == FEATS
    assert cb.batches_ == ["A", "B"]
    pd.testing.assert_series_equal(
        cb.n_per_batch_, pd.Series([5, 7], index=pd.Index(["A", "B"], name="site"))
    )
    assert_allclose(cb.grand_mean_.to_numpy(), grand, rtol=1e-12)
    assert list(cb.grand_mean_.index) == FEATS
    assert cb.beta_.shape == (0, 3) and list(cb.beta_.columns) == FEATS
    assert_allclose(cb.batch_effect_.to_numpy(), means - grand, atol=1e-12)
    assert cb.batch_effect_.index.name == "site"
    assert list(cb.batch_effect_.index) == ["A", "B"]
    assert list(cb.batch_effect_.columns) == FEATS
    assert_allclose(cb.var_pooled_.to_numpy(), var, rtol=1e-12)
    assert list(cb.var_pooled_.index) == FEATS
    s = (Y - grand) / np.sqrt(var)
    code = (df["site"] == "B").to_numpy().astype(int)
    g_hat = np.stack([s[code == 0].mean(axis=0), s[code == 1].mean(axis=0)])
    d_hat = np.stack(
        [s[code == 0].var(axis=0, ddof=1), s[code == 1].var(axis=0, ddof=1)]
    )
    for name, value in [("gamma_hat_", g_hat), ("delta_hat_", d_hat),
                        ("gamma_star_", g_hat), ("delta_star_", d_hat)]:  # fmt: skip
        frame = getattr(cb, name)
        assert_allclose(frame.to_numpy(), value, rtol=1e-10, err_msg=name)
        assert frame.index.name == "site" and list(frame.index) == ["A", "B"]
        assert list(frame.columns) == FEATS
    assert cb.design_columns_ == []
    assert cb.categories_ == {}
    assert cb.ref_index_ is None
    assert not hasattr(cb, "var_ratio_")
    out = cb.transform(df)
    expected = (s - g_hat[code]) / np.sqrt(d_hat[code]) * np.sqrt(var) + grand
    assert_allclose(out[FEATS].to_numpy(), expected, rtol=1e-10)
    assert_array_equal(out["site"], df["site"])
    # no EB, no covariates: each site ends with the grand mean and the pooled SD
    assert_allclose(out.groupby("site")[FEATS].mean().to_numpy(),
                    np.vstack([grand, grand]), rtol=1e-10)  # fmt: skip


def test_fit_reference_site_by_hand():
    df = _two_sites(seed=1)
    cb = ComBat(eb=False, ref_batch="B").fit(df)
    Y, sites, means, grand, var = _by_hand(df, FEATS, ref="B")
    assert cb.ref_index_ == 1
    assert_allclose(cb.grand_mean_.to_numpy(), means[1], rtol=1e-12)
    assert_allclose(cb.batch_effect_.to_numpy(), means - means[1], atol=1e-12)
    assert_array_equal(cb.batch_effect_.loc["B"].to_numpy(), np.zeros(3))
    assert_allclose(cb.var_pooled_.to_numpy(), var, rtol=1e-12)
    assert_array_equal(cb.gamma_star_.loc["B"].to_numpy(), np.zeros(3))
    assert_array_equal(cb.delta_star_.loc["B"].to_numpy(), np.ones(3))
    s = (Y - means[1]) / np.sqrt(var)
    a = (df["site"] == "A").to_numpy()
    g, d = s[a].mean(axis=0), s[a].var(axis=0, ddof=1)
    assert_allclose(cb.gamma_hat_.loc["A"].to_numpy(), g, rtol=1e-10)
    out = cb.transform(df)
    assert_array_equal(out.loc[~a, FEATS].to_numpy(), Y[~a])
    expected = (s[a] - g) / np.sqrt(d) * np.sqrt(var) + means[1]
    assert_allclose(out.loc[a, FEATS].to_numpy(), expected, rtol=1e-10)
    # site A ends with site B's mean
    assert_allclose(out.loc[a, FEATS].mean().to_numpy(), means[1], rtol=1e-10)


def test_reference_site_first_in_order_with_covariate():
    """The reference site first among three, with a covariate: as neuroCombat."""
    rng = np.random.default_rng(11)
    df = pd.DataFrame({"site": np.repeat(["S1", "S2", "S3"], [6, 8, 7])})
    df["age"] = np.round(rng.uniform(50, 70, len(df)) * 8) / 8
    for k in range(4):
        df[f"md_r{k}"] = (0.01 * df["age"] + rng.normal(0, 0.2, len(df))
                          + df["site"].map({"S1": 0.0, "S2": 0.3, "S3": -0.2}))  # fmt: skip
    feats = [f"md_r{k}" for k in range(4)]
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
        warnings.simplefilter("ignore")
        mp.setattr(np, "int", int, raising=False)
        ref = nc.neuroCombat(dat=df[feats].to_numpy().T,
                             covars=df[["site", "age"]], batch_col="site",
                             continuous_cols=["age"], ref_batch="S1")  # fmt: skip
    for kw in [{}, {"parametric": False}]:
        if kw:
            with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
                warnings.simplefilter("ignore")
                mp.setattr(np, "int", int, raising=False)
                ref = nc.neuroCombat(dat=df[feats].to_numpy().T,
                                     covars=df[["site", "age"]], batch_col="site",
                                     continuous_cols=["age"], ref_batch="S1",
                                     parametric=False)  # fmt: skip
        out = combat(df, covariates=["age"], ref_batch="S1", **kw)
        assert_allclose(out[feats].to_numpy(), ref["data"].T, atol=1e-6)
    cb = ComBat(covariates=["age"], ref_batch="S1").fit(df)
    assert cb.ref_index_ == 0
    assert_allclose(cb.var_pooled_.to_numpy(), ref["estimates"]["var.pooled"][:, 0],
                    rtol=1e-8)  # fmt: skip


# --------------------------------------------------------------------- ComBat: inputs


@pytest.mark.parametrize("name", ["eb", "parametric", "mean_only"])
def test_flags_must_be_bool(name):
    df = _two_sites()
    with pytest.raises(TypeError, match=rf"^`{name}` must be True or False; got 1\.$"):
        ComBat(**{name: 1}).fit(df)
    with pytest.raises(
        TypeError, match=rf"^`{name}` must be True or False; got 'yes'\.$"
    ):
        ComBat(**{name: "yes"}).fit(df)
    ComBat(**{name: np.bool_(True)}).fit(df)  # NumPy booleans are fine


def test_not_a_dataframe():
    with pytest.raises(
        TypeError, match=r"^ComBat needs a pandas DataFrame; got dict\.$"
    ):
        ComBat(features=["fa_f0"]).fit({"site": ["A", "B"], "fa_f0": [1.0, 2.0]})


def test_missing_columns_message():
    df = _two_sites()
    msg = ("ComBat: columns ['scanner', 'age', 'subject_id'] are not in the table; it "
           "has ['site', 'fa_f0', 'fa_f1', 'fa_f2']")  # fmt: skip
    with pytest.raises(ModelSpecificationError, match=f"^{re.escape(msg)}$"):
        ComBat(batch="scanner", covariates=["age"], subject="subject_id").fit(df)
    # 20 columns are listed in full, from 21 on the first 20 and " ..."
    wide = df.assign(**{f"x{i}": 0.0 for i in range(16)})
    assert wide.shape[1] == 20
    with pytest.raises(ModelSpecificationError) as err:
        ComBat(covariates=["age"]).fit(wide)
    assert str(err.value).endswith("'x15']")
    wide["x16"] = 0.0
    with pytest.raises(ModelSpecificationError) as err:
        ComBat(covariates=["age"]).fit(wide)
    assert str(err.value).endswith("'x15'] ...")
    # a single covariate given as a string
    with pytest.raises(ModelSpecificationError, match=r"columns \['age'\] are not"):
        ComBat(covariates="age").fit(df)


def test_missing_values_every_problem_field():
    df = _two_sites().assign(subject_id=[f"P{i:02d}" for i in range(12)], sex="m",
                             age=60.0)  # fmt: skip
    df["sex"] = df["sex"].astype(object)
    df.loc[2, "fa_f1"] = np.inf
    df.loc[4, "sex"] = None
    df.loc[5, "age"] = np.inf  # a numeric covariate: not finite, not only NaN
    df.loc[7, "site"] = None
    with pytest.raises(DataValidationError) as err:
        ComBat(covariates=["sex", "age"], features=FEATS).fit(df)
    probs = err.value.problem_list
    got = sorted((p.line, p.column, p.subject_id, p.rule, p.line_kind) for p in probs)
    assert got == [(3, "fa_f1", "P02", "missing", "row"), (5, "sex", "P04", "missing", "row"),
                   (6, "age", "P05", "missing", "row"), (8, "site", "P07", "missing", "row")]  # fmt: skip
    p = next(p for p in probs if p.column == "fa_f1")
    assert p.value == np.inf
    # the value written as a plain number (not NumPy 2's "np.float64(inf)")
    assert p.message == ("inf is missing or not a finite number "
                         "(ComBat needs complete rows; drop or impute them first)")  # fmt: skip
    assert str(err.value).startswith("ComBat input: 4 problems")
    # without a subject_id column the problems name no subject
    with pytest.raises(DataValidationError) as err:
        ComBat(features=FEATS).fit(df.drop(columns="subject_id").drop(index=7))
    assert [(p.line, p.subject_id) for p in err.value.problem_list] == [(3, None)]


def test_missing_values_listed_up_to_20_per_column():
    df = _two_sites(n_a=15, n_b=15)
    df.loc[:20, "fa_f0"] = np.nan  # 21 rows
    df["fa_f2"] = df["fa_f2"].astype(object)
    df.loc[0, "fa_f2"] = "x"  # text in a feature column counts as missing
    with pytest.raises(DataValidationError) as err:
        ComBat(features=FEATS).fit(df)
    lines = [(p.column, p.line) for p in err.value.problem_list]
    assert lines == sorted([("fa_f0", i) for i in range(1, 21)] + [("fa_f2", 1)],
                           key=lambda t: t[1])  # fmt: skip


def test_site_counts_limits():
    df = _two_sites(n_a=3, n_b=2)
    cb = ComBat(eb=False).fit(df)  # exactly 2 rows per site is enough
    assert cb.n_per_batch_.tolist() == [3, 2]
    msg = ("ComBat: sites ['C', 'D'] have fewer than 2 rows; ComBat needs at least 2 per "
           "site (merge or drop them)")  # fmt: skip
    # A and B keep 2 rows each, C and D get 1
    three = pd.concat([df.iloc[1:], df.iloc[:1].assign(site="C"),
                       df.iloc[:1].assign(site="D")], ignore_index=True)  # fmt: skip
    with pytest.raises(ModelSpecificationError, match=f"^{re.escape(msg)}$"):
        ComBat().fit(three)
    with pytest.raises(
        ModelSpecificationError,
        match=r"^ComBat: site has 1 level\(s\); at least 2 sites are needed$",
    ):
        ComBat().fit(df.assign(site="A"))


def test_reference_and_design_messages():
    df = _two_sites()
    with pytest.raises(
        ModelSpecificationError,
        match=r"^ComBat: ref_batch 'C' is not a level of site \(\['A', 'B'\]\)$",
    ):
        ComBat(ref_batch="C").fit(df)
    with pytest.raises(
        ModelSpecificationError,
        match=r"^ComBat: `ref_batch` is not available with `subject` \(longitudinal "
        r"ComBat maps every site to the pooled one\)$",
    ):
        ComBat(ref_batch="A", subject="site").fit(df)
    msg = ("ComBat: the design [site indicators, where[T.B], x] is rank deficient: a "
           "covariate is constant within sites or confounded with site; drop it")  # fmt: skip
    with pytest.raises(ModelSpecificationError, match=f"^{re.escape(msg)}$"):
        ComBat(covariates=["where", "x"]).fit(df.assign(where=df["site"], x=1.0))


def test_constant_feature_has_no_residual_variance():
    df = _two_sites().assign(fa_c=0.5, fa_d=np.repeat([0.25, 0.75], [5, 7]))
    with pytest.raises(
        ModelSpecificationError,
        match=r"^ComBat: features \['fa_c', 'fa_d'\] have no residual variance; drop them$",
    ):
        ComBat().fit(df)


@pytest.mark.parametrize("subject", [None, "sid"])
def test_constant_feature_up_to_rounding_is_refused(subject):
    """Bug found in issue 20: a constant of 0.1 left rounding residuals (variance about
    1e-33; in the longitudinal model rounding of y'y or the 1e-300 floor), so the
    feature was accepted, its noise standardised to unit scale and the EB priors of
    every other feature shifted.  A residual SD below 1e-6 of the feature's root mean
    square now counts as none."""
    rng = np.random.default_rng(0)
    df = _two_sites().assign(age=rng.uniform(40, 80, 12), fa_c=0.1,
                             sid=np.repeat(np.arange(6), 2))  # fmt: skip
    msg = r"^ComBat: features \['fa_c'\] have no residual variance; drop them$"
    with pytest.raises(ModelSpecificationError, match=msg):
        ComBat(covariates=["age"], subject=subject).fit(df)
    for c in [1 / 3, 2.2, 1e4 / 3]:
        with pytest.raises(ModelSpecificationError, match=msg):
            ComBat(covariates=["age"], subject=subject).fit(df.assign(fa_c=c))
    # 1e-7 of the size is refused, 1e-5 is kept
    noise = rng.normal(0, 1, 12)
    with pytest.raises(ModelSpecificationError, match=msg):
        ComBat(subject=subject).fit(df.assign(fa_c=1000 + 1e-4 * noise))
    cb = ComBat(subject=subject).fit(df.assign(fa_c=1000 + 1e-2 * noise))
    assert cb.features_ == [*FEATS, "fa_c"]
    # all zeros
    with pytest.raises(ModelSpecificationError, match=msg):
        ComBat(subject=subject).fit(df.assign(fa_c=0.0))


def test_default_feature_picking():
    df = _two_sites()
    df["md_x"] = df["fa_f0"].astype(str)  # text: not a feature
    df["thickness_x_volume"] = 1.0  # a size statistic
    df["volume_total"] = df["fa_f1"] * 2  # a volume itself is a feature
    df["FA_upper"] = 1.0
    df[3] = 1.0  # a column named by a number
    assert ComBat().fit(df).features_ == [*FEATS, "volume_total"]
    # a column named like a feature but used as the batch or a covariate is not one
    df["volume_icv"] = np.arange(12.0) ** 1.5
    assert ComBat(covariates=["volume_icv"]).fit(df).features_ == [
        *FEATS,
        "volume_total",
    ]
    df2 = _two_sites().rename(columns={"site": "area_site"})
    assert (
        ComBat(batch="area_site", features=None)
        .fit(df2.assign(area_site=df2["area_site"].map({"A": 1, "B": 2})))
        .features_
        == FEATS
    )
    assert ComBat(features="fa_f1").fit(df).features_ == ["fa_f1"]
    msg = ("ComBat: no feature columns (none named like fa_..., md_..., thickness_...); "
           "pass `features`")  # fmt: skip
    with pytest.raises(ModelSpecificationError, match=f"^{re.escape(msg)}$"):
        ComBat().fit(df[["site", "md_x", "FA_upper"]])
    with pytest.raises(ModelSpecificationError, match=f"^{re.escape(msg)}$"):
        ComBat(features=[]).fit(df)


def test_unseen_site_and_level_messages():
    df = _two_sites().assign(sex=np.tile(["f", "m"], 6))
    cb = ComBat(covariates=["sex"]).fit(df)
    new = pd.DataFrame({"site": ["B", "C", "D", "A"], "sex": "f", "fa_f0": 0.0,
                        "fa_f1": 0.0, "fa_f2": 0.0})  # fmt: skip
    msg = ("ComBat: site values ['C', 'D'] were not seen in fit (seen: ['A', 'B']); "
           "ComBat can only harmonise sites it was fitted on")  # fmt: skip
    with pytest.raises(ModelSpecificationError, match=f"^{re.escape(msg)}$"):
        cb.transform(new)
    new = new.assign(site="A", sex=["x", "f", "u", "m"])
    msg = "ComBat: covariate 'sex' has levels ['u', 'x'] not seen in fit (seen: ['f', 'm'])"
    with pytest.raises(ModelSpecificationError, match=f"^{re.escape(msg)}$"):
        cb.transform(new)


# --------------------------------------------------------------------- covariates


def test_covariates_design_by_least_squares():
    """Text, boolean and numeric covariates: the design columns, levels and
    coefficients as ordinary least squares with site indicators; the covariate effects
    stay in the output."""
    rng = np.random.default_rng(9)
    n = 16
    df = pd.DataFrame({
        "site": np.repeat(["B", "A"], [8, 8]),
        "dx": np.tile(["als", "control", "pls", "als"], 4),
        "on": np.tile([True, False], 8),
        "age": rng.uniform(40, 80, n),
    })  # fmt: skip
    for k in range(3):
        df[f"fa_f{k}"] = (0.02 * df["age"] + 0.3 * (df["dx"] == "pls") - 0.2 * df["on"]
                          + rng.normal(0, 0.1, n) + 0.5 * (df["site"] == "B"))  # fmt: skip
    cb = ComBat(covariates=["dx", "on", "age"], eb=False).fit(df)
    assert cb.categories_ == {"dx": ["als", "control", "pls"], "on": ["False", "True"]}
    names = ["dx[T.control]", "dx[T.pls]", "on[T.True]", "age"]
    assert cb.design_columns_ == names
    X = np.column_stack([df["dx"] == "control", df["dx"] == "pls", df["on"],
                         df["age"]]).astype(float)  # fmt: skip
    D = np.column_stack([df["site"] == "A", df["site"] == "B", X]).astype(float)
    Y = df[FEATS].to_numpy()
    B, *_ = np.linalg.lstsq(D, Y, rcond=None)
    assert_allclose(cb.beta_.to_numpy(), B[2:], rtol=1e-9)
    assert list(cb.beta_.index) == names and list(cb.beta_.columns) == FEATS
    grand = 0.5 * B[0] + 0.5 * B[1]
    assert_allclose(cb.grand_mean_.to_numpy(), grand, rtol=1e-9)
    assert_allclose(cb.batch_effect_.to_numpy(), B[:2] - grand, atol=1e-9)
    resid = Y - D @ B
    assert_allclose(cb.var_pooled_.to_numpy(), (resid**2).mean(axis=0), rtol=1e-9)
    out = cb.transform(df)
    mean = grand + X @ B[2:]
    s = (Y - mean) / np.sqrt((resid**2).mean(axis=0))
    assert_allclose(cb.gamma_hat_.loc["A"].to_numpy(), s[8:].mean(axis=0), rtol=1e-9)
    # rows differing only in site: the adjusted values no longer differ by the site shift
    adj = out[FEATS].to_numpy() - X @ B[2:]
    assert_allclose(adj[:8].mean(axis=0), adj[8:].mean(axis=0), rtol=1e-9)
    # unseen level of a boolean-like column
    with pytest.raises(ModelSpecificationError, match=r"'on' has levels \['maybe'\]"):
        cb.transform(df.assign(on="maybe"))


def test_categorical_covariate_with_one_level_in_new_rows():
    """New rows need not show every level: indicators use the fitted levels."""
    df = _two_sites(n_a=6, n_b=6).assign(sex=np.tile(["f", "m", "m"], 4))
    cb = ComBat(covariates=["sex"]).fit(df)
    one = cb.transform(df.iloc[[0, 7]])
    full = cb.transform(df)
    assert_allclose(
        one[FEATS].to_numpy(), full.iloc[[0, 7]][FEATS].to_numpy(), rtol=1e-12
    )


# --------------------------------------------------------------------- apply, API


def test_transform_copies_and_fit_transform():
    df = _two_sites()
    before = df.copy()
    cb = ComBat()
    out = cb.fit_transform(df)
    pd.testing.assert_frame_equal(df, before)
    pd.testing.assert_frame_equal(out, ComBat().fit(df).transform(df))
    assert out is not df
    assert not np.allclose(out[FEATS].to_numpy(), df[FEATS].to_numpy())


def test_combat_function_passes_every_parameter():
    df = (
        _two_sites(p=4)
        .rename(columns={"site": "scanner"})
        .assign(age=np.linspace(40, 70, 12), sid=np.repeat(np.arange(6), 2))
    )
    feats = ["fa_f0", "fa_f1", "fa_f3"]
    cases = [dict(eb=False), dict(parametric=False), dict(mean_only=True),
             dict(ref_batch="B"), dict(covariates=["age"]), dict(subject="sid"), {}]  # fmt: skip
    for kw in cases:
        got = combat(df, batch="scanner", columns=feats, **kw)
        want = ComBat(batch="scanner", features=feats, **kw).fit_transform(df)
        pd.testing.assert_frame_equal(got, want, obj=str(kw))
    assert_array_equal(combat(df, batch="scanner")["fa_f2"] != df["fa_f2"], True)


def test_logs_what_was_fitted(caplog):
    df = _two_sites().assign(sid=np.repeat(np.arange(6), 2))
    with caplog.at_level(logging.INFO, logger="alsprog.imaging._combat"):
        ComBat().fit(df)
        ComBat(subject="sid").fit(df)
    assert [r.getMessage() for r in caplog.records] == [
        "ComBat fitted on 12 rows, 2 sites, 3 features",
        "ComBat fitted on 12 rows, 2 sites, 3 features (longitudinal)",
    ]


# --------------------------------------------------------------------- longitudinal


def _longitudinal(seed=0):
    """Subjects with 1 to 3 scans at sites A and B; subject P3 is scanned at both."""
    rng = np.random.default_rng(seed)
    sid = np.repeat(
        ["P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7"], [3, 2, 1, 3, 2, 3, 2, 1]
    )
    site = np.array(list("AAAAAAABBBBBBBBBB"))
    years = np.concatenate([np.arange(k) for k in [3, 2, 1, 3, 2, 3, 2, 1]]).astype(
        float
    )
    df = pd.DataFrame({"sid": sid, "site": site, "years": years})
    u = dict(zip(np.unique(sid), rng.normal(0, 1.0, 8), strict=True))
    for k in range(3):
        df[f"fa_f{k}"] = (df["sid"].map(u) - 0.2 * df["years"] + rng.normal(0, 0.4, 17)
                          + (df["site"] == "B") * (0.8 + 0.3 * k))  # fmt: skip
    return df


def test_longitudinal_fit_every_field_and_output():
    """The mean model is random_intercept_reml on [site indicators, years]; the output
    keeps each subject's BLUP out of the site adjustment, written out here."""
    df = _longitudinal()
    cb = ComBat(subject="sid", covariates=["years"], eb=False).fit(df)
    Y = df[FEATS].to_numpy()
    D = np.column_stack([df["site"] == "A", df["site"] == "B", df["years"]]).astype(
        float
    )
    groups = pd.factorize(df["sid"])[0]
    sizes = np.bincount(groups).astype(float)
    counts = np.array([7, 10])
    out = cb.transform(df)
    for v, f in enumerate(FEATS):
        beta, s2, lam, _ = _dense_reml(Y[:, v], D, groups)
        assert cb.var_ratio_[f] == pytest.approx(lam, rel=1e-4)
        assert cb.var_pooled_[f] == pytest.approx(s2, rel=1e-6)
        assert_allclose(cb.beta_[f].to_numpy(), beta[2:], rtol=1e-5)
        grand = counts @ beta[:2] / 17
        assert cb.grand_mean_[f] == pytest.approx(grand, rel=1e-6)
        assert_allclose(cb.batch_effect_[f].to_numpy(), beta[:2] - grand, atol=1e-6)
        # BLUP: lam n_i / (1 + lam n_i) * mean residual of subject i
        r = Y[:, v] - D @ beta
        blup = lam * sizes / (1 + lam * sizes) * np.bincount(groups, r) / sizes
        mean = grand + df["years"].to_numpy() * beta[2] + blup[groups]
        s = (Y[:, v] - mean) / np.sqrt(s2)
        code = (df["site"] == "B").to_numpy().astype(int)
        g = np.array([s[code == 0].mean(), s[code == 1].mean()])
        d = np.array([s[code == 0].var(ddof=1), s[code == 1].var(ddof=1)])
        assert_allclose(cb.gamma_hat_[f].to_numpy(), g, rtol=1e-4, atol=1e-6)
        assert_allclose(cb.delta_hat_[f].to_numpy(), d, rtol=1e-4)
        expected = (s - g[code]) / np.sqrt(d[code]) * np.sqrt(s2) + mean
        assert_allclose(out[f].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    assert list(cb.var_ratio_.index) == FEATS
    assert cb.ref_index_ is None
    assert cb.design_columns_ == ["years"]


def test_longitudinal_new_subjects_use_fitted_ratio():
    """Applied to new rows, each subject's intercept is predicted from its rows there
    with the fitted variance ratio (a one-scan subject included)."""
    df = _longitudinal(seed=2)
    cb = ComBat(subject="sid", covariates=["years"]).fit(df)
    new = (
        _longitudinal(seed=3)
        .iloc[[0, 1, 5, 9, 10, 16]]
        .assign(sid=["Q1", "Q1", "Q2", "Q3", "Q3", "Q4"])
    )
    out = cb.transform(new)
    Y = new[FEATS].to_numpy()
    code = (new["site"] == "B").to_numpy().astype(int)
    grand, beta = cb.grand_mean_.to_numpy(), cb.beta_.to_numpy()[0]
    alpha = cb.batch_effect_.to_numpy()[code] + grand
    years = new["years"].to_numpy()[:, None]
    resid = Y - alpha - years * beta
    groups = np.array([0, 0, 1, 2, 2, 3])
    lam = cb.var_ratio_.to_numpy()
    blup = np.zeros_like(Y)
    for gi in range(4):
        rows = groups == gi
        k = rows.sum()
        blup[rows] = lam * k / (1 + lam * k) * resid[rows].mean(axis=0)
    mean = grand + years * beta + blup
    sd = np.sqrt(cb.var_pooled_.to_numpy())
    g = cb.gamma_star_.to_numpy()[code]
    d = cb.delta_star_.to_numpy()[code]
    expected = ((Y - mean) / sd - g) / np.sqrt(d) * sd + mean
    assert_allclose(out[FEATS].to_numpy(), expected, rtol=1e-12)
    # an empty table comes back empty
    empty = cb.transform(new.iloc[:0])
    assert empty.shape == (0, new.shape[1])


def test_failed_fit_is_not_fitted():
    """A fit that stopped at the site-count check has set ``batches_`` already; the
    estimator still counts as not fitted."""
    from alsprog.errors import NotFittedError

    df = _two_sites()
    cb = ComBat()
    with pytest.raises(ModelSpecificationError, match="fewer than 2 rows"):
        cb.fit(pd.concat([df, df.iloc[:1].assign(site="C")], ignore_index=True))
    assert cb.batches_ == ["A", "B", "C"]
    with pytest.raises(
        NotFittedError, match=r"^This ComBat is not fitted yet; call `fit`"
    ):
        cb.transform(df)


def test_sites_of_mixed_types_sorted_as_text():
    df = _two_sites().assign(site=[1] * 5 + ["A"] * 7)
    df["site"] = df["site"].astype(object)
    cb = ComBat(eb=False).fit(df)
    assert cb.batches_ == [1, "A"]
    assert cb.n_per_batch_.tolist() == [5, 7]


def test_nullable_integer_columns():
    """Nullable Int64 features and covariate: read as floats, output float64 columns,
    the same numbers as with float64 columns."""
    df = _two_sites().assign(age=np.arange(40, 52))
    for f in FEATS:
        df[f] = (df[f] * 1000).round()
    ints = df.astype({f: "Int64" for f in [*FEATS, "age"]})
    got = combat(ints, covariates=["age"])
    want = combat(df, covariates=["age"])
    for f in FEATS:
        assert got[f].dtype == np.float64
    assert_allclose(got[FEATS].to_numpy(), want[FEATS].to_numpy(), rtol=1e-12)


def test_residual_variance_limit_is_per_feature():
    """The limit is relative to each feature's own size: a feature of size 1e-3 next to
    one of size 1e5 is kept."""
    rng = np.random.default_rng(12)
    df = _two_sites().assign(
        fa_small=1e-3 * rng.normal(0, 1, 12), fa_big=1e5 + rng.normal(0, 1, 12)
    )
    assert ComBat().fit(df).features_ == [*FEATS, "fa_small", "fa_big"]


def test_zero_feature_at_the_reml_floor():
    """Four rows, two sites and a covariate (n - q = 1): REML's floored residual
    variance of an all-zero feature is exactly 1e-300, still refused."""
    df = pd.DataFrame({"site": ["A", "A", "B", "B"], "sid": [0, 1, 2, 3],
                       "x": [0.0, 1.0, 3.0, 2.0], "fa_z": 0.0,
                       "fa_w": [0.3, 0.5, 0.2, 0.9]})  # fmt: skip
    _, s2, _, _ = random_intercept_reml(
        np.zeros(4),
        np.column_stack([[1, 1, 0, 0], [0, 0, 1, 1], df["x"]]).astype(float),
        np.arange(4),
    )
    assert s2 == 1e-300
    with pytest.raises(ModelSpecificationError, match=r"features \['fa_z'\] have no"):
        ComBat(subject="sid", covariates=["x"]).fit(df)
