"""Edge and branch tests that kill the mutants the main tests let survive (issue 20).

Every expected number comes from a closed form computed here (the complete-data
random-slope formula of docs/domain.md §5, Lu, Luo & Chen's MMRM formula with φ
computed by hand) or from longpower's published values, never from the code under
test.  Every error is checked for its type and its whole message.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from alsprog.design import (
    SampleSize,
    detectable_delta_slope,
    power_mmrm,
    power_slope,
    sample_size_mmrm,
    sample_size_slope,
    sample_size_table,
)
from alsprog.errors import ModelSpecificationError

TIMES = [0, 3, 6, 9, 12]
SXX = 90.0  # sum (t - tbar)^2 of TIMES
Z80 = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)


def _raises(message, fn, *args, **kwargs):
    """``fn`` raises ModelSpecificationError whose message is exactly ``message``."""
    with pytest.raises(ModelSpecificationError) as exc:
        fn(*args, **kwargs)
    assert str(exc.value) == message


def _xi_complete(s2s, s2e, times):
    """Diggle's [(X'V^-1X)^-1]_22 for a random slope and complete data."""
    t = np.asarray(times, float)
    return s2s + s2e / np.sum((t - t.mean()) ** 2)


# ------------------------------------------------------------- SampleSize result
def _result(n_t, n_c, ratio=1.0):
    return SampleSize(
        n_per_arm=n_t,
        n_control=n_c,
        power=0.8,
        delta=0.25,
        method="edland",
        alpha=0.05,
        alternative="two-sided",
        allocation_ratio=ratio,
        inputs={"sigma": 1.0},
    )


def test_ceil_of_an_exact_integer_is_that_integer():
    r = _result(207.0, 103.5, ratio=2.0)
    assert r.n_per_arm_ceil == 207
    assert r.n_control_ceil == 104
    assert r.n_total == 310.5
    assert r.n_total_ceil == 311
    # rounding noise just above a whole number is not a patient more
    assert _result(207.0 + 1e-11, 1.0).n_per_arm_ceil == 207
    assert _result(207.001, 1.0).n_per_arm_ceil == 208


def test_to_dict_holds_every_field_and_derived_size():
    d = _result(10.2, 5.1, ratio=2.0).to_dict()
    assert d == {
        "n_per_arm": 10.2,
        "n_control": 5.1,
        "power": 0.8,
        "delta": 0.25,
        "method": "edland",
        "alpha": 0.05,
        "alternative": "two-sided",
        "allocation_ratio": 2.0,
        "inputs": {"sigma": 1.0},
        "n_per_arm_ceil": 11,
        "n_control_ceil": 6,
        "n_total": pytest.approx(15.3),
        "n_total_ceil": 17,
    }


def test_repr_names_both_arms_under_unequal_allocation():
    assert repr(_result(10.2, 5.1, ratio=2.0)) == (
        "SampleSize(n_treatment=10.2000, n_control=5.1000, n_total=15.3000, "
        "power=0.8000, delta=0.25, method='edland', alpha=0.05, two-sided)"
    )
    assert repr(_result(10.2, 10.2)) == (
        "SampleSize(n_per_arm=10.2000 (ceil 11), n_total=20.4000, power=0.8000, "
        "delta=0.25, method='edland', alpha=0.05, two-sided)"
    )


# ------------------------------------------------------------------ visit times
def test_times_errors_name_the_value():
    _raises(
        "`times` must be a sequence of numbers; got ['a', 'b'].",
        sample_size_slope,
        0.2,
        ["a", "b"],
    )
    _raises(
        "`times` must be finite; got [0.0, inf].", sample_size_slope, 0.2, [0, np.inf]
    )
    _raises(
        "`times` must be visit times in months within ±100000; got [0.0, 100001.0].",
        sample_size_slope,
        0.2,
        [0, 100001],
    )


def test_times_at_the_largest_accepted_month():
    t = [0.0, 1e5]
    r = sample_size_slope(0.2, t, 0.0, 0.36, 0.0, 4.0)
    assert r.n_per_arm == pytest.approx(
        2 * Z80**2 * _xi_complete(0.36, 4.0, t) / 0.04, rel=1e-9
    )


# -------------------------------------------------------------------- retention
@pytest.mark.parametrize(
    "retention, message",
    [
        ([1, 0.9, 0.8, 0.7, 0], "got [1.0, 0.9, 0.8, 0.7, 0.0]."),
        ([1, 0.9, 0.8, 0.7, -0.1], "got [1.0, 0.9, 0.8, 0.7, -0.1]."),
        ([1, None, 0.8, 0.7, 0.6], "got [1.0, nan, 0.8, 0.7, 0.6]."),
        ([1, 0.9, np.inf, 0.7, 0.6], "got [1.0, 0.9, inf, 0.7, 0.6]."),
        ([1.5, 1, 1, 1, 1], "got [1.5, 1.0, 1.0, 1.0, 1.0]."),
        ([1, 1 + 1e-9, 1, 1, 1], f"got [1.0, {1 + 1e-9!r}, 1.0, 1.0, 1.0]."),
    ],
)
def test_retention_outside_zero_one_is_refused(retention, message):
    _raises(
        "`retention` must be fractions in (0, 1]; " + message,
        sample_size_slope,
        0.2,
        TIMES,
        retention=retention,
    )


def test_retention_errors_name_the_value():
    _raises(
        "`retention` must be a sequence of fractions; got ['a', 1, 1, 1, 1].",
        sample_size_slope,
        0.2,
        TIMES,
        retention=["a", 1, 1, 1, 1],
    )
    # the value is the first one, written as a plain number
    with pytest.raises(ModelSpecificationError) as exc:
        sample_size_slope(0.2, TIMES, retention_control=[0.9, 0.8, 0.7, 0.6, 0.5])
    assert re.fullmatch(
        r"`retention_control` must start at 1 \(everyone is seen at baseline\); "
        r"got 0\.9\.",
        str(exc.value),
    )


def test_retention_of_whole_numbers_is_stored_as_fractions():
    r = sample_size_slope(0.2, TIMES, retention=[1, 1, 1, 1, 1])
    assert r.inputs["retention"] == [1.0] * 5
    assert all(type(x) is float for x in r.inputs["retention"])
    assert all(type(x) is float for x in r.inputs["retention_control"])


# ----------------------------------------------------------- variance components
def _psd_message(cov2, prod, corr):
    return (
        "the random-effects covariance matrix [[sig2_int, cov_int_slope], "
        "[cov_int_slope, sig2_slope]] is not positive semi-definite: "
        f"cov_int_slope^2 = {cov2} > sig2_int * sig2_slope = {prod} (implied "
        f"correlation {corr}); |cov_int_slope| must be at most "
        "sqrt(sig2_int * sig2_slope)."
    )


@pytest.mark.parametrize(
    "s2i, s2s, cov, message",
    [
        (4.0, 0.25, 1.2, _psd_message("1.44", "1", "1.2")),
        (4.0, 0.25, -2.0, _psd_message("4", "1", "-2")),
        (16.0, 0.25, 2.5, _psd_message("6.25", "4", "1.25")),
        (0.25, 0.16, 0.3, _psd_message("0.09", "0.04", "1.5")),
        # a zero variance with a nonzero covariance: infinite implied correlation,
        # not a ZeroDivisionError
        (0.0, 0.36, 0.1, _psd_message("0.01", "0", "inf")),
        (4.0, 0.0, 0.1, _psd_message("0.01", "0", "inf")),
    ],
)
def test_covariance_not_positive_semidefinite(s2i, s2s, cov, message):
    _raises(message, sample_size_slope, 0.2, TIMES, s2i, s2s, cov, 4.0)


def test_perfect_intercept_slope_correlation_is_legal():
    # |cov| = sqrt(sig2_int sig2_slope) exactly: a singular G is positive semi-definite;
    # without dropout the intercept and covariance cancel (docs/domain.md §5)
    r = sample_size_slope(0.2, TIMES, 4.0, 0.25, -1.0, 4.0)
    assert r.n_per_arm == pytest.approx(
        2 * Z80**2 * _xi_complete(0.25, 4.0, TIMES) / 0.04, rel=1e-9
    )
    assert r.inputs["cov_int_slope"] == -1.0
    # just beyond the limit (by more than the 1e-12 rounding allowance)
    _raises(
        _psd_message("1", "1", "1"),
        sample_size_slope,
        0.2,
        TIMES,
        4.0,
        0.25,
        1.0 + 1e-9,
        4.0,
    )


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_covariance_must_be_finite(value):
    _raises(
        f"`cov_int_slope` must be in (-inf, inf); got {value!r}.",
        sample_size_slope,
        0.2,
        TIMES,
        0.0,
        0.36,
        value,
        4.0,
    )


def test_residual_variance_edge():
    _raises(
        "`sig2_e` must be in (0, inf); got 0.",
        sample_size_slope,
        0.2,
        TIMES,
        0.0,
        0.36,
        0.0,
        0,
    )
    r = sample_size_slope(0.2, TIMES, 0.0, 0.36, 0.0, 1e-12)
    assert r.n_per_arm == pytest.approx(
        2 * Z80**2 * _xi_complete(0.36, 1e-12, TIMES) / 0.04, rel=1e-9
    )


# --------------------------------------------------- alpha, alternative, allocation
@pytest.mark.parametrize("alpha", [0, 1, 0.0, 1.0])
def test_alpha_at_its_limits(alpha):
    _raises(
        f"`alpha` must be in (0, 1); got {alpha!r}.",
        sample_size_slope,
        0.2,
        alpha=alpha,
    )


def test_alternative_must_be_named():
    _raises(
        "`alternative` must be one of 'two-sided', 'one-sided'; got 'two_sided'.",
        sample_size_slope,
        0.2,
        alternative="two_sided",
    )


@pytest.mark.parametrize("ratio", [0, 0.0, -1.0])
def test_allocation_ratio_must_be_positive(ratio):
    _raises(
        f"`allocation_ratio` must be in (0, inf); got {ratio!r}.",
        sample_size_slope,
        0.2,
        allocation_ratio=ratio,
    )


# ------------------------------------------------------------------------- effect
def test_slowing_and_mean_slope_errors():
    give = (
        "give `delta` (difference in slopes, points/month) or `slowing` (a fraction, "
        "e.g. 0.25) together with `mean_slope` (e.g. -0.9)."
    )
    _raises(give, sample_size_slope, slowing=0.25)
    _raises(give, sample_size_slope, mean_slope=-0.9)
    _raises(give, sample_size_slope)
    _raises(
        "give either `delta` or `slowing` (with `mean_slope`), not both.",
        sample_size_slope,
        0.2,
        slowing=0.25,
        mean_slope=-0.9,
    )
    _raises(
        "`slowing` must be in (0, inf); got 0.",
        sample_size_slope,
        slowing=0,
        mean_slope=-0.9,
    )
    _raises(
        "`slowing` must be in (0, inf); got -0.25.",
        sample_size_slope,
        slowing=-0.25,
        mean_slope=-0.9,
    )
    _raises(
        "`mean_slope` must be in (-inf, inf); got nan.",
        sample_size_slope,
        slowing=0.25,
        mean_slope=np.nan,
    )
    _raises(
        "`mean_slope` must not be 0 when `slowing` is given.",
        sample_size_slope,
        slowing=0.25,
        mean_slope=0,
    )
    _raises("`delta` must be in (-inf, inf); got nan.", sample_size_slope, np.nan)
    _raises(
        "`delta` must not be 0 (no effect cannot be detected).",
        sample_size_slope,
        0.0,
    )


@pytest.mark.parametrize("mean_slope", [1.0, -1.0, 0.5])
def test_slowing_of_any_nonzero_mean_slope(mean_slope):
    r = sample_size_slope(slowing=0.5, mean_slope=mean_slope)
    d = 0.5 * abs(mean_slope)
    assert r.delta == d
    assert r.n_per_arm == pytest.approx(
        2 * Z80**2 * _xi_complete(0.36, 4.0, TIMES) / d**2, rel=1e-9
    )
    assert r.inputs["slowing"] == 0.5 and r.inputs["mean_slope"] == mean_slope


def test_an_effect_too_small_for_a_finite_sample_size():
    with pytest.raises(ModelSpecificationError) as exc:
        sample_size_slope(1e-200)
    m = re.fullmatch(
        r"the effect 1e-200 is too small to detect: the sample size per arm "
        r"\((\S+) / 1e-200\^2\) is not a finite number\.",
        str(exc.value),
    )
    assert m is not None
    assert float(m.group(1)) == pytest.approx(
        Z80**2 * 2 * _xi_complete(0.36, 4.0, TIMES), rel=1e-9
    )


# ------------------------------------------------------------------------------ MMRM
def _phi_two_visits(rho, r):
    """φ of Lu, Luo & Chen for two visits, retention (1, r), correlation rho.

    The ML estimate of the final-visit mean regresses visit 2 on visit 1:
    Var = σ²/n [ρ² + (1 - ρ²)/r], i.e. φ = 1 + (1 - ρ²)(1 - r)/r.
    """
    return 1 + (1 - rho**2) * (1 - r) / r


def _corr2(rho):
    return [[1.0, rho], [rho, 1.0]]


def test_phi_two_visit_closed_form():
    r = sample_size_mmrm(0.5, 1.0, _corr2(0.6), [1, 0.8])
    assert r.inputs["phi"] == pytest.approx(_phi_two_visits(0.6, 0.8), rel=1e-12)
    assert r.inputs["phi_control"] == pytest.approx(
        _phi_two_visits(0.6, 0.8), rel=1e-12
    )


def _inputs_with_corr_control(phi_t: float, phi_c: float) -> dict:
    """The ``inputs`` of the two-visit corr_control design of the tests below."""
    return {
        "sigma": 2.0,
        "corr": _corr2(0.5),
        "retention": [1.0, 0.8],
        "corr_control": _corr2(0.2),
        "retention_control": [1.0, 0.9],
        "phi": pytest.approx(phi_t, rel=1e-12),
        "phi_control": pytest.approx(phi_c, rel=1e-12),
    }


def test_sample_size_mmrm_every_field_with_corr_control():
    # different correlation and retention per arm, unequal allocation, sigma != 1,
    # one-sided: n_t = (φ_t + λ φ_c) z² σ² / δ², n_c = n_t / λ
    phi_t, phi_c = _phi_two_visits(0.5, 0.8), _phi_two_visits(0.2, 0.9)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.9)
    n_t = (phi_t + 2 * phi_c) * z**2 * 2.0**2 / 1.2**2
    r = sample_size_mmrm(
        -1.2,
        2.0,
        _corr2(0.5),
        [1, 0.8],
        alpha=0.025,
        power=0.9,
        allocation_ratio=2,
        corr_control=_corr2(0.2),
        retention_control=[1, 0.9],
        alternative="one-sided",
    )
    assert r.n_per_arm == pytest.approx(n_t, rel=1e-12)
    assert r.n_control == pytest.approx(n_t / 2, rel=1e-12)
    assert r.power == 0.9
    assert r.delta == 1.2
    assert r.method == "mmrm"
    assert r.alpha == 0.025
    assert r.alternative == "one-sided"
    assert r.allocation_ratio == 2.0 and type(r.allocation_ratio) is float
    assert r.inputs == _inputs_with_corr_control(phi_t, phi_c)


def test_power_mmrm_every_field_with_corr_control():
    phi_t, phi_c = _phi_two_visits(0.5, 0.8), _phi_two_visits(0.2, 0.9)
    lam, n, sigma, delta = 0.5, 60.0, 2.0, 1.2
    se = sigma * math.sqrt((phi_t + lam * phi_c) / n)
    r = power_mmrm(
        n,
        delta,
        sigma,
        _corr2(0.5),
        [1, 0.8],
        alpha=0.1,
        allocation_ratio=lam,
        corr_control=_corr2(0.2),
        retention_control=[1, 0.9],
    )
    assert r.power == pytest.approx(
        stats.norm.cdf(delta / se - stats.norm.ppf(0.95)), rel=1e-12
    )
    assert r.n_per_arm == 60.0 and type(r.n_per_arm) is float
    assert r.n_control == 120.0
    assert r.delta == 1.2
    assert r.method == "mmrm"
    assert r.alpha == 0.1
    assert r.alternative == "two-sided"
    assert r.allocation_ratio == 0.5
    assert r.inputs == _inputs_with_corr_control(phi_t, phi_c)


def test_exchangeable_corr_control_as_a_number():
    r = power_mmrm(
        50, 0.5, 1.0, 0.5, [1, 0.8], corr_control=0.2, retention_control=[1, 0.9]
    )
    assert r.inputs["corr_control"] == _corr2(0.2)
    assert r.inputs["phi_control"] == pytest.approx(_phi_two_visits(0.2, 0.9))
    se = math.sqrt((_phi_two_visits(0.5, 0.8) + _phi_two_visits(0.2, 0.9)) / 50)
    assert r.power == pytest.approx(
        stats.norm.cdf(0.5 / se - stats.norm.ppf(0.975)), rel=1e-12
    )


def test_power_mmrm_below_one_patient_and_at_zero():
    # n_per_arm need only be positive (a fraction is a valid argument)
    r = power_mmrm(0.5, 0.5, 1.0, np.eye(2))
    se = math.sqrt(2 / 0.5)
    assert r.power == pytest.approx(stats.norm.cdf(0.5 / se - stats.norm.ppf(0.975)))
    for n in (0, -1.0):
        _raises(
            f"`n_per_arm` must be in (0, inf); got {n!r}.",
            power_mmrm,
            n,
            0.5,
            1.0,
            np.eye(2),
        )


@pytest.mark.parametrize("power", [0, 1, 0.0, 1.0, 1.5, -0.2])
def test_sample_size_mmrm_power_at_its_limits(power):
    _raises(
        f"`power` must be in (0, 1); got {power!r}.",
        sample_size_mmrm,
        0.5,
        1.0,
        np.eye(2),
        power=power,
    )


@pytest.mark.parametrize("sigma", [0, 0.0, -1.0])
def test_sigma_must_be_positive(sigma):
    for fn, args in ((sample_size_mmrm, (0.5,)), (power_mmrm, (50, 0.5))):
        _raises(
            f"`sigma` must be in (0, inf); got {sigma!r}.", fn, *args, sigma, np.eye(2)
        )


@pytest.mark.parametrize(
    "n_vis, rho",
    [(4, -1 / 3 + 1e-6), (4, -0.3), (4, 0.999), (2, -0.9), (3, -0.49)],
)
def test_exchangeable_correlation_inside_its_limits(n_vis, rho):
    # without dropout φ = 1 whatever the correlation (Lu, Luo & Chen)
    r = sample_size_mmrm(0.5, 1.0, rho, [1.0] * n_vis)
    assert r.inputs["phi"] == pytest.approx(1.0, rel=1e-6)
    assert r.n_per_arm == pytest.approx(2 * Z80**2 / 0.25, rel=1e-6)
    assert len(r.inputs["corr"]) == n_vis


@pytest.mark.parametrize(
    "n_vis, rho", [(4, -1 / 3), (4, -0.5), (4, 1.0), (4, 1.5), (2, -1.0), (3, -0.5)]
)
def test_exchangeable_correlation_at_its_limits(n_vis, rho):
    _raises(
        f"`corr` = {rho!r} is not a valid exchangeable correlation.",
        sample_size_mmrm,
        0.5,
        1.0,
        rho,
        [1.0] * n_vis,
    )
    _raises(
        f"`corr_control` = {rho!r} is not a valid exchangeable correlation.",
        power_mmrm,
        50,
        0.5,
        1.0,
        0.2,
        [1.0] * n_vis,
        corr_control=rho,
    )


def test_single_visit_mmrm_is_a_two_sample_z_test():
    r = sample_size_mmrm(0.5, 2.0, [[1.0]])
    assert r.inputs["phi"] == 1.0
    assert r.n_per_arm == pytest.approx(2 * Z80**2 * 4.0 / 0.25, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"corr": "abc"}, "`corr` must be a correlation matrix; got 'abc'."),
        (
            {"corr": 0.25, "retention": None},
            "`corr` as a single number needs `retention` to set its size.",
        ),
        (
            {"corr": np.zeros((0, 0))},
            "`corr` must be a square matrix with one row per visit; got shape (0, 0).",
        ),
        (
            {"corr": [[1.0, 0.0, 0.0], [1e-9, 1.0, 0.0], [0.0, 0.0, 1.0]]},
            "`corr` must be a symmetric correlation matrix (ones on the diagonal).",
        ),
        (
            {"corr": [[1.0, None], [None, 1.0]]},
            "`corr` must be a symmetric correlation matrix (ones on the diagonal).",
        ),
        ({"corr": _corr2(1.0)}, "`corr` must be positive definite."),
        (
            {"corr_control": _corr2(1.0)},
            "`corr_control` must be positive definite.",
        ),
        (
            {"corr_control": "abc"},
            "`corr_control` must be a correlation matrix; got 'abc'.",
        ),
        (
            {"corr_control": np.eye(3)},
            "`corr_control` must have the same size as `corr`.",
        ),
        (
            {"retention": [1, 0.9, 0.8]},
            "`retention` must have one value per visit (2); got 3.",
        ),
        (
            {"retention_control": [1, 0.9, 0.8]},
            "`retention_control` must have one value per visit (2); got 3.",
        ),
        (
            {"retention_control": [1, 0]},
            "`retention_control` must be fractions in (0, 1]; got [1.0, 0.0].",
        ),
    ],
)
def test_mmrm_errors_name_the_argument(kwargs, message):
    args = {"corr": _corr2(0.5), "retention": [1, 0.9]}
    args.update(kwargs)
    corr, retention = args.pop("corr"), args.pop("retention")
    _raises(message, sample_size_mmrm, 0.5, 1.0, corr, retention, **args)
    _raises(message, power_mmrm, 50, 0.5, 1.0, corr, retention, **args)


def test_mmrm_inputs_are_floats():
    r = sample_size_mmrm(0.5, 1, [[1, 0], [0, 1]], [1, 1])
    assert r.inputs["corr"] == [[1.0, 0.0], [0.0, 1.0]]
    assert all(type(x) is float for row in r.inputs["corr"] for x in row)
    assert all(type(x) is float for row in r.inputs["corr_control"] for x in row)


# ------------------------------------------------------- slope methods, two visits
def _xi_two_visits(t_end, s2i, s2s, cov, s2e, r):
    """ξ for visits (0, T) when a fraction r is seen at T, in closed form.

    One patient's OLS (intercept, slope) = (y0, (y1 - y0)/T) has covariance
    C11 = s2i + s2e, C12 = (cov T - s2e)/T, C22 = (s2s T² + 2 s2e)/T²; patients
    seen only at baseline inform the intercept, which regresses out of the slope:
    ξ = [C22 - (1 - r) C12² / C11] / r.
    """
    c11 = s2i + s2e
    c12 = (cov * t_end - s2e) / t_end
    c22 = (s2s * t_end**2 + 2 * s2e) / t_end**2
    return (c22 - (1 - r) * c12**2 / c11) / r


VC2 = dict(sig2_int=9.0, sig2_slope=0.36, cov_int_slope=0.5, sig2_e=4.0)
XI_T = _xi_two_visits(12, 9.0, 0.36, 0.5, 4.0, 0.7)
XI_C = _xi_two_visits(12, 9.0, 0.36, 0.5, 4.0, 0.9)


@pytest.mark.parametrize("method", ["edland", "diggle", "liu_liang"])
def test_sample_size_slope_every_field_with_attrition(method):
    # unequal allocation and retention per arm, one-sided, alpha 0.1, power 0.9:
    # n_t = z² (ξ_t + λ ξ_c) / δ²
    z = stats.norm.ppf(0.9) + stats.norm.ppf(0.9)
    r = sample_size_slope(
        -0.2,
        [0, 12],
        **VC2,
        alpha=0.1,
        power=0.9,
        method=method,
        allocation_ratio=2,
        retention=[1, 0.7],
        retention_control=[1, 0.9],
        alternative="one-sided",
    )
    n_t = z**2 * (XI_T + 2 * XI_C) / 0.04
    assert r.n_per_arm == pytest.approx(n_t, rel=1e-9)
    assert r.n_control == pytest.approx(n_t / 2, rel=1e-9)
    assert r.power == 0.9
    assert r.delta == 0.2
    assert r.method == method
    assert r.alpha == 0.1
    assert r.alternative == "one-sided"
    assert r.allocation_ratio == 2.0 and type(r.allocation_ratio) is float
    assert r.inputs == {
        "times": [0.0, 12.0],
        **VC2,
        "retention": [1.0, 0.7],
        "retention_control": [1.0, 0.9],
        "slowing": None,
        "mean_slope": None,
    }


@pytest.mark.parametrize("method", ["edland", "diggle", "liu_liang"])
def test_power_slope_every_field_with_slowing(method):
    # Var(δ̂) = (ξ_t + λ ξ_c) / n_t; control retention defaults to the treatment one
    lam, n = 0.5, 80.0
    xi = _xi_two_visits(12, 9.0, 0.36, 0.5, 4.0, 0.8)
    r = power_slope(
        n,
        times=[0, 12],
        **VC2,
        method=method,
        allocation_ratio=lam,
        retention=[1, 0.8],
        slowing=0.25,
        mean_slope=-0.9,
    )
    se = math.sqrt(xi * (1 + lam) / n)
    assert r.power == pytest.approx(
        stats.norm.cdf(0.225 / se - stats.norm.ppf(0.975)), rel=1e-9
    )
    assert r.n_per_arm == 80.0 and type(r.n_per_arm) is float
    assert r.n_control == 160.0
    assert r.delta == pytest.approx(0.225, rel=1e-15)
    assert r.method == method
    assert r.alpha == 0.05
    assert r.alternative == "two-sided"
    assert r.allocation_ratio == 0.5
    assert r.inputs == {
        "times": [0.0, 12.0],
        **VC2,
        "retention": [1.0, 0.8],
        "retention_control": [1.0, 0.8],
        "slowing": 0.25,
        "mean_slope": -0.9,
    }


@pytest.mark.parametrize("method", ["edland", "diggle", "liu_liang"])
def test_detectable_delta_every_field_with_attrition(method):
    z = stats.norm.ppf(0.99) + stats.norm.ppf(0.85)
    r = detectable_delta_slope(
        120,
        [0, 12],
        **VC2,
        alpha=0.02,
        power=0.85,
        method=method,
        allocation_ratio=2,
        retention=[1, 0.7],
        retention_control=[1, 0.9],
    )
    assert r.delta == pytest.approx(z * math.sqrt((XI_T + 2 * XI_C) / 120), rel=1e-9)
    assert r.n_per_arm == 120.0 and type(r.n_per_arm) is float
    assert r.n_control == 60.0
    assert r.power == 0.85
    assert r.method == method
    assert r.alpha == 0.02
    assert r.alternative == "two-sided"
    assert r.allocation_ratio == 2.0 and type(r.allocation_ratio) is float
    assert r.inputs == {
        "times": [0.0, 12.0],
        **VC2,
        "retention": [1.0, 0.7],
        "retention_control": [1.0, 0.9],
    }


def test_default_variance_components_with_attrition():
    # defaults: sig2_int 0, sig2_slope 0.36, cov 0, sig2_e 4 (docs/domain.md §7);
    # with attrition the intercept variance and covariance matter
    xi = _xi_two_visits(12, 0.0, 0.36, 0.0, 4.0, 0.6)
    ret = [1, 0.6]
    n = sample_size_slope(0.2, [0, 12], retention=ret).n_per_arm
    assert n == pytest.approx(2 * Z80**2 * xi / 0.04, rel=1e-9)
    pw = power_slope(100, 0.2, [0, 12], retention=ret).power
    assert pw == pytest.approx(
        stats.norm.cdf(0.2 / math.sqrt(2 * xi / 100) - stats.norm.ppf(0.975)), rel=1e-9
    )
    d = detectable_delta_slope(100, [0, 12], retention=ret).delta
    assert d == pytest.approx(Z80 * math.sqrt(2 * xi / 100), rel=1e-9)
    t = sample_size_table([0.5], mean_slope=-0.4, times=[0, 12], retention=ret)
    assert t["n_per_arm"].tolist() == pytest.approx([2 * Z80**2 * xi / 0.04], rel=1e-9)


def test_sample_size_without_control_retention_uses_the_treatment_one():
    r = sample_size_slope(0.2, [0, 12], **VC2, retention=[1, 0.7])
    assert r.inputs["retention_control"] == [1.0, 0.7]
    assert r.n_per_arm == pytest.approx(2 * Z80**2 * XI_T / 0.04, rel=1e-9)


@pytest.mark.parametrize(
    "fn, args", [(power_slope, (0.2,)), (detectable_delta_slope, ())]
)
def test_n_per_arm_at_zero(fn, args):
    for n in (0, 0.0, -5.0):
        _raises(f"`n_per_arm` must be in (0, inf); got {n!r}.", fn, n, *args)


def test_detectable_delta_fraction_of_a_patient():
    # a fraction of a patient is a valid (if odd) argument: the formula still holds
    xi = _xi_complete(0.36, 4.0, [0, 12])
    r = detectable_delta_slope(0.5, times=[0, 12])
    assert r.n_per_arm == 0.5
    assert r.delta == pytest.approx(Z80 * math.sqrt(2 * xi / 0.5), rel=1e-9)


def test_power_slope_fraction_of_a_patient():
    xi = _xi_complete(0.36, 4.0, [0, 12])
    r = power_slope(0.5, 3.0, [0, 12])
    assert r.power == pytest.approx(
        stats.norm.cdf(3.0 / math.sqrt(2 * xi / 0.5) - stats.norm.ppf(0.975)), rel=1e-9
    )


@pytest.mark.parametrize("power", [0, 1, 1.0, -0.5])
def test_detectable_delta_power_at_its_limits(power):
    _raises(
        f"`power` must be in (0, 1); got {power!r}.",
        detectable_delta_slope,
        100,
        power=power,
    )


def test_liu_liang_differs_where_the_slope_is_barely_estimable():
    # Only 1e-20 of the patients reach the second visit.  Diggle's and Edland's ξ
    # (inverse of a per-patient information that is numerically rank one) refuse
    # the design; Liu & Liang's Σ1 (information of the treatment × time contrast
    # after the nuisance parameters) stays finite and equals the closed form.
    ret = [1, 1e-20]
    for method in ("edland", "diggle"):
        _raises(
            "the slope is not estimable: too few patients are seen at two or more "
            "visits (check `retention`).",
            sample_size_slope,
            0.2,
            [0, 12],
            **VC2,
            retention=ret,
            method=method,
        )
    xi = _xi_two_visits(12, 9.0, 0.36, 0.5, 4.0, 1e-20)
    r = sample_size_slope(0.2, [0, 12], **VC2, retention=ret, method="liu_liang")
    assert r.n_per_arm == pytest.approx(2 * Z80**2 * xi / 0.04, rel=1e-6)
    r = power_slope(1e24, 0.2, [0, 12], **VC2, retention=ret, method="liu_liang")
    assert r.power == pytest.approx(
        stats.norm.cdf(0.2 / math.sqrt(2 * xi / 1e24) - stats.norm.ppf(0.975)),
        rel=1e-6,
    )


# ------------------------------------------------------------ sample_size_table
def test_sample_size_table_every_column_and_argument():
    # every argument away from its default, and each one matters to the numbers
    z = stats.norm.ppf(0.9) + stats.norm.ppf(0.9)
    s2i, s2s, cov, s2e = 16.0, 0.25, -0.6, 2.0
    xi = _xi_two_visits(6, s2i, s2s, cov, s2e, 0.75)
    t = sample_size_table(
        [0.25, 0.5],
        mean_slope=-1.2,
        times=[0, 6],
        sig2_int=s2i,
        sig2_slope=s2s,
        cov_int_slope=cov,
        sig2_e=s2e,
        methods=("diggle", "liu_liang"),
        alpha=0.1,
        power=0.9,
        allocation_ratio=3,
        retention=[1, 0.75],
        alternative="one-sided",
    )
    assert list(t.columns) == [
        "method",
        "slowing",
        "delta",
        "n_per_arm",
        "n_per_arm_ceil",
        "n_control_ceil",
        "n_total_ceil",
        "power",
    ]
    assert t["method"].tolist() == ["diggle", "diggle", "liu_liang", "liu_liang"]
    assert t["slowing"].tolist() == [0.25, 0.5, 0.25, 0.5]
    deltas = [0.3, 0.6, 0.3, 0.6]
    assert t["delta"].tolist() == pytest.approx(deltas, rel=1e-15)
    n_t = [z**2 * xi * 4 / d**2 for d in deltas]
    assert t["n_per_arm"].tolist() == pytest.approx(n_t, rel=1e-9)
    assert t["n_per_arm_ceil"].tolist() == [math.ceil(n) for n in n_t]
    assert t["n_control_ceil"].tolist() == [math.ceil(n / 3) for n in n_t]
    assert t["n_total_ceil"].tolist() == [math.ceil(n) + math.ceil(n / 3) for n in n_t]
    assert t["power"].tolist() == [0.9] * 4


def test_sample_size_table_one_method_as_a_name():
    t = sample_size_table([0.25], mean_slope=-0.9, methods="diggle")
    assert t["method"].tolist() == ["diggle"]
    n = 2 * Z80**2 * _xi_complete(0.36, 4.0, TIMES) / 0.225**2
    assert t["n_per_arm"].tolist() == pytest.approx([n], rel=1e-9)
    assert t["n_per_arm_ceil"].tolist() == [126]


def test_sample_size_table_errors():
    _raises(
        "`methods` must name at least one of 'edland', 'diggle', 'liu_liang'.",
        sample_size_table,
        [0.25],
        mean_slope=-0.9,
        methods=[],
    )
    _raises(
        "`method` must be one of 'edland', 'diggle', 'liu_liang'; got None.",
        sample_size_table,
        [0.25],
        mean_slope=-0.9,
        methods=None,
    )
    for bad in (0, 0.0, -0.25):
        _raises(
            f"`slowings` must be in (0, inf); got {bad!r}.",
            sample_size_table,
            [0.25, bad],
            mean_slope=-0.9,
        )
    _raises(
        "`slowings` must be a sequence of numbers; got 0.25.",
        sample_size_table,
        0.25,
        mean_slope=-0.9,
    )
    _raises(
        "`mean_slope` must not be 0 when `slowing` is given.",
        sample_size_table,
        [0.25],
        mean_slope=0,
    )
