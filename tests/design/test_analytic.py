"""Analytic sample size and power against longpower's documented values and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import linalg, stats

from alsprog.design import (
    detectable_delta_slope,
    power_mmrm,
    power_slope,
    sample_size_mmrm,
    sample_size_slope,
)
from alsprog.errors import AlsprogError, ModelSpecificationError

# longpower's ADAS-cog pilot example (lmmpower / edland.linear.power /
# diggle.linear.power / liu.liang.linear.power help pages; docs/domain.md §5 table)
T_AD = np.arange(0, 1.51, 0.25)
AD = dict(
    times=T_AD,
    sig2_int=55.0,
    sig2_slope=24.0,
    cov_int_slope=0.8 * math.sqrt(55) * math.sqrt(24),
    sig2_e=10.0,
)
REL = 0.005  # the tolerance: 0.5 %


@pytest.mark.parametrize("method", ["edland", "diggle", "liu_liang"])
def test_longpower_adas_cog_sample_size(method):
    r = sample_size_slope(1.5, **AD, power=0.80, method=method)
    # longpower: n = 207.3101 per arm, N = 414.6202
    assert r.n_per_arm == pytest.approx(207.3101, rel=1e-6)
    assert r.n_total == pytest.approx(414.6202, rel=1e-6)
    assert r.n_per_arm_ceil == 208


@pytest.mark.parametrize("method", ["edland", "diggle", "liu_liang"])
def test_longpower_adas_cog_inverses(method):
    # lmmpower(n=208, ...): delta = 1.49751; liu.liang(N=416, delta=1.5): power 0.8013015
    assert detectable_delta_slope(208, **AD, method=method).delta == pytest.approx(
        1.49751, rel=1e-5
    )
    assert power_slope(208, 1.5, **AD, method=method).power == pytest.approx(
        0.8013015, rel=1e-6
    )


def test_longpower_pct_change():
    # lmmpower(beta=5, pct.change=0.30, ...): n = 207.3101 (delta 1.5)
    r = sample_size_slope(slowing=0.30, mean_slope=5, **AD)
    assert r.delta == pytest.approx(1.5)
    assert r.n_per_arm == pytest.approx(207.3101, rel=1e-6)


# Diggle et al. (2002) p. 29 table, reproduced in diggle.linear.power's examples:
# t = (0, 2, 5), exchangeable rho, one-sided, power 0.8, delta 0.5, ceiling
DIGGLE_P29 = {0.2: [313, 625, 938], 0.5: [196, 391, 586], 0.8: [79, 157, 235]}


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("method", ["diggle", "edland", "liu_liang"])
def test_diggle_page_29_table(rho, method):
    got = []
    for s2 in (100, 200, 300):
        # exchangeable correlation = random intercept with variance rho*s2
        r = sample_size_slope(
            0.5,
            [0, 2, 5],
            rho * s2,
            0.0,
            0.0,
            (1 - rho) * s2,
            alternative="one-sided",
            method=method,
        )
        got.append(r.n_per_arm_ceil)
    assert got == DIGGLE_P29[rho]


def test_closed_form_random_slope_complete_data():
    # docs/domain.md §5: n = 2 (z_a + z_b)^2 [s2_slope + s2_e / sum (t - tbar)^2] / delta^2,
    # intercept variance and covariance cancel without dropout
    rng = np.random.default_rng(1)
    for _ in range(20):
        t = np.sort(
            rng.choice(np.arange(0, 25), size=rng.integers(2, 8), replace=False)
        )
        s2i, s2s, s2e = rng.uniform(1, 60), rng.uniform(0, 1), rng.uniform(1, 9)
        cov = rng.uniform(-0.9, 0.9) * math.sqrt(s2i * s2s)
        delta, alpha, power = (
            rng.uniform(0.1, 1),
            rng.uniform(0.01, 0.1),
            rng.uniform(0.6, 0.95),
        )
        z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
        expected = 2 * z**2 * (s2s + s2e / np.sum((t - t.mean()) ** 2)) / delta**2
        for method in ("edland", "diggle", "liu_liang"):
            r = sample_size_slope(
                delta, t, s2i, s2s, cov, s2e, alpha=alpha, power=power, method=method
            )
            assert r.n_per_arm == pytest.approx(expected, rel=1e-9)


def test_als_illustrations_from_domain():
    # docs/domain.md §5 (derived with the formula above): slope SD 0.6, sigma_e 2.0,
    # 25 % of 0.9 points/month
    base = dict(sig2_slope=0.36, sig2_e=4.0, mean_slope=-0.9)
    cases = [
        (list(range(13)), 0.25, 118.4),
        ([0, 3, 6, 9, 12], 0.25, 125.4),
        ([0, 3, 6, 9, 12], 0.30, 87.1),
        (list(range(7)), 0.25, 155.9),
    ]
    for times, slowing, n in cases:
        r = sample_size_slope(times=times, slowing=slowing, **base)
        assert r.n_per_arm == pytest.approx(n, abs=0.05)


def _gls_var_delta(times, v, patterns_t, patterns_c, n_t, n_c):
    """Var of the treatment x time coefficient by brute-force GLS on a finite trial."""
    rows_x, blocks = [], []
    for arm, patterns, n in ((1, patterns_t, n_t), (0, patterns_c, n_c)):
        for k, count in enumerate(
            np.round(np.asarray(patterns) * n).astype(int), start=1
        ):
            for _ in range(count):
                t = np.asarray(times[:k], float)
                rows_x.append(
                    np.column_stack([np.ones(k), np.full(k, arm), t, arm * t])
                )
                blocks.append(v[:k, :k])
    x = np.vstack(rows_x)
    vinv = linalg.block_diag(*[np.linalg.inv(b) for b in blocks])
    return np.linalg.inv(x.T @ vinv @ x)[3, 3]


@pytest.mark.parametrize("method", ["edland", "diggle", "liu_liang"])
def test_attrition_matches_brute_force_gls(method):
    times = [0, 3, 6, 9, 12]
    s2i, s2s, cov, s2e = 25.0, 0.36, 0.5, 4.0
    ret_t = [1, 0.9, 0.8, 0.7, 0.6]
    ret_c = [1, 0.95, 0.85, 0.8, 0.7]
    from alsprog.design._analytic import marginal_covariance

    v = marginal_covariance(np.asarray(times, float), s2i, s2s, cov, s2e)
    p_t = np.asarray(ret_t) - np.append(ret_t[1:], 0)
    p_c = np.asarray(ret_c) - np.append(ret_c[1:], 0)
    n_t, n_c = 400, 200  # allocation 2:1; patterns times n are whole numbers
    var = _gls_var_delta(times, v, p_t, p_c, n_t, n_c)
    r = power_slope(
        n_t,
        0.3,
        times,
        s2i,
        s2s,
        cov,
        s2e,
        allocation_ratio=2,
        retention=ret_t,
        retention_control=ret_c,
        method=method,
    )
    z = stats.norm.ppf(0.975)
    assert r.power == pytest.approx(stats.norm.cdf(0.3 / math.sqrt(var) - z), rel=1e-9)


def test_attrition_needs_more_patients():
    full = sample_size_slope(0.3, [0, 3, 6, 9, 12], 25, 0.36, 0.0, 4.0)
    lossy = sample_size_slope(
        0.3, [0, 3, 6, 9, 12], 25, 0.36, 0.0, 4.0, retention=[1, 0.9, 0.8, 0.7, 0.6]
    )
    same = sample_size_slope(
        0.3, [0, 3, 6, 9, 12], 25, 0.36, 0.0, 4.0, retention=[1, 1, 1, 1, 1]
    )
    assert lossy.n_per_arm > full.n_per_arm
    assert same.n_per_arm == pytest.approx(full.n_per_arm, rel=1e-12)


def test_allocation_ratio():
    # unequal allocation: Var = xi (1/n_t + 1/n_c) -> n_t = z^2 xi (1 + lambda) / delta^2
    one = sample_size_slope(1.5, **AD)
    two = sample_size_slope(1.5, **AD, allocation_ratio=2.0)
    assert two.n_per_arm == pytest.approx(one.n_per_arm * 1.5, rel=1e-12)
    assert two.n_control == pytest.approx(two.n_per_arm / 2)


# ------------------------------------------------------------------------------ MMRM
EXCH_025 = 0.25
RA = [1, 0.90, 0.80, 0.70]


def test_mmrm_longpower_examples():
    # power.mmrm(Ra = exch 0.25, ra = c(1,.9,.8,.7), sigmaa = 1, delta = .5, power = .8)
    r = sample_size_mmrm(0.5, 1.0, EXCH_025, RA)
    assert r.n_per_arm == pytest.approx(86.99175, rel=1e-6)
    # ... lambda = 2: n1 = 130.4876, n2 = 65.24381
    r2 = sample_size_mmrm(0.5, 1.0, EXCH_025, RA, allocation_ratio=2)
    assert (r2.n_per_arm, r2.n_control) == pytest.approx((130.4876, 65.24381), rel=1e-6)
    # N = 174, delta = .5: power 0.8000372
    assert power_mmrm(87, 0.5, 1.0, EXCH_025, RA).power == pytest.approx(
        0.8000372, rel=1e-6
    )


def test_mmrm_ar1_longpower_example():
    # power.mmrm.ar1(rho=.6, ra=c(1,.76,.63,.52), rb=c(1,.87,.81,.78), sigmaa=1,
    #   lambda=1, power=.903, delta=.9): n1 = n2 = 39.3224, phi1 1.752276, phi2 1.246951
    i = np.arange(4)
    ar1 = 0.6 ** np.abs(i[:, None] - i[None, :])
    r = sample_size_mmrm(
        0.9,
        1.0,
        ar1,
        [1, 0.76, 0.63, 0.52],
        power=0.903,
        retention_control=[1, 0.87, 0.81, 0.78],
    )
    assert r.n_per_arm == pytest.approx(39.3224, rel=1e-5)
    assert r.inputs["phi"] == pytest.approx(1.752276, rel=1e-6)
    assert r.inputs["phi_control"] == pytest.approx(1.246951, rel=1e-6)


def test_mmrm_lu_luo_chen_table1_row1():
    # Lu, Luo & Chen (2008) Table 1 row 1 (phi = 1, lambda = 1, alpha .05, power .90,
    # delta .5 SD): N = 168.1188 with the z test
    r = sample_size_mmrm(0.5, 1.0, np.eye(3), None, power=0.90)
    assert r.n_total == pytest.approx(168.1188, rel=1e-6)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"power": 1.2}, r"`power` must be in \(0, 1\); got 1.2"),
        ({"power": 0}, r"`power` must be in \(0, 1\)"),
        ({"alpha": 0.0}, r"`alpha` must be in \(0, 1\)"),
        (
            {"times": [0, 6, 3, 12]},
            r"`times` must be strictly increasing; got \[0.0, 6.0, 3.0",
        ),
        ({"times": [0, 3, 3]}, r"`times` must be strictly increasing"),
        ({"times": [0]}, r"at least two visit times"),
        ({"sig2_slope": -0.1}, r"`sig2_slope` must be in \[0, inf\); got -0.1"),
        ({"sig2_int": -1}, r"`sig2_int` must be in \[0, inf\)"),
        ({"sig2_e": 0}, r"`sig2_e` must be in \(0, inf\)"),
        (
            {"sig2_int": 4, "sig2_slope": 0.25, "cov_int_slope": 2},
            r"not positive semi-definite: cov_int_slope\^2 = 4 > sig2_int \* sig2_slope = 1",
        ),
        ({"retention": [1, 0.9, 0.95, 0.8, 0.7]}, r"`retention` must not increase"),
        ({"retention": [0.9, 0.9, 0.9, 0.8, 0.7]}, r"`retention` must start at 1"),
        ({"retention": [1, 0.9]}, r"one value per visit \(5\)"),
        (
            {"method": "lme4"},
            r"`method` must be one of 'edland', 'diggle', 'liu_liang'",
        ),
        ({"delta": 0}, r"`delta` must not be 0"),
        ({"delta": None}, r"give `delta`"),
        ({"slowing": 0.25, "mean_slope": -0.9}, r"either `delta` or `slowing`"),
    ],
)
def test_bad_input_is_a_clear_alsprog_error(kwargs, match):
    args = dict(
        delta=0.2,
        times=[0, 3, 6, 9, 12],
        sig2_int=20.0,
        sig2_slope=0.36,
        cov_int_slope=0.0,
        sig2_e=4.0,
    )
    args.update(kwargs)
    with pytest.raises(ModelSpecificationError, match=match) as exc:
        sample_size_slope(**args)
    assert isinstance(exc.value, AlsprogError)


def test_zero_slope_variance_is_legal():
    # a random-intercept design (sig2_slope = 0) is legal, with zero covariance
    r = sample_size_slope(
        0.2, [0, 3, 6, 9, 12], sig2_int=20, sig2_slope=0, cov_int_slope=0, sig2_e=4
    )
    assert r.n_per_arm > 0


@pytest.mark.parametrize(
    "corr, match",
    [
        ([[1, 0.5], [0.4, 1]], "symmetric correlation"),
        ([[1, 1.2], [1.2, 1]], "positive definite"),
        (np.ones((2, 3)), "square"),
    ],
)
def test_mmrm_bad_correlation(corr, match):
    with pytest.raises(ModelSpecificationError, match=match):
        sample_size_mmrm(0.5, 1.0, corr)


def test_result_object():
    r = sample_size_slope(1.5, **AD)
    d = r.to_dict()
    assert d["n_per_arm_ceil"] == 208 and d["method"] == "edland"
    assert "n_per_arm=207.3101 (ceil 208)" in repr(r)
    with pytest.raises(AttributeError):
        r.n_per_arm = 3  # frozen
