"""CohortParams: defaults from docs/domain.md §7, overrides, and argument errors."""

from __future__ import annotations

import dataclasses
import math

import pytest

from alsprog.simulate import CohortParams, simulate_cohort
from alsprog.simulate._params import resolve_params
from alsprog.simulate._progression import rate_lognormal


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("slope_mean", -0.9),  # docs/domain.md §7 "ALSFRS-R slope mean (trial-like)"
        ("slope_sd", 0.6),  # §7 "Between-patient slope SD"
        ("residual_sd", 2.0),  # §7 "Residual SD"
        ("baseline_max", 47.0),  # §7 "Baseline ALSFRS-R ... truncated ≤ 47"
        ("onset_to_baseline_mean", 15.0),  # §7 "Months onset → baseline 15 ± 6"
        ("onset_to_baseline_sd", 6.0),
        ("onset_to_baseline_min", 3.0),  # §7 "truncated ≥ 3"
        ("delta_fs_mean", 0.7),  # §7 "ΔFS lognormal, mean 0.7, SD 0.5"
        ("delta_fs_sd", 0.5),
        ("p_bulbar", 0.28),  # §7 "Bulbar onset 28%; slope × 1.15"
        ("bulbar_slope_multiplier", 1.15),
        ("age_at_onset_mean", 58.0),  # §7 "Age at onset 58 ± 11"
        ("age_at_onset_sd", 11.0),
        ("p_male", 0.62),  # §7 "Male 62%"
        ("diagnostic_delay_median", 11.0),  # §7 "lognormal, median 11 mo"
        ("event_median_months", 30.0),  # §7 "Weibull, median 30 mo from onset"
        ("dropout_per_year", 0.15),  # §7 "Dropout 15%/yr, informative"
        ("fa_cst_hc_mean", 0.55),  # §7 "CST FA (HC / ALS) 0.55 ± 0.03 / d = −0.95"
        ("fa_cst_hc_sd", 0.03),
        ("fa_cst_als_d", -0.95),
        ("thickness_precentral_hc_mean", 2.5),  # §7 "2.5 ± 0.12 mm / −0.15 mm"
        ("thickness_precentral_hc_sd", 0.12),
        ("site_offset_sd", 0.5),  # §7 "Site effect offset ~ N(0, 0.5 SD)"
        ("site_scale_min", 0.8),  # §7 "scale ~ U(0.8, 1.25)"
        ("site_scale_max", 1.25),
    ],
)
def test_defaults_follow_domain_table(name, expected):
    assert getattr(CohortParams(), name) == pytest.approx(expected)


def test_precentral_deficit_is_minus_015_mm():
    p = CohortParams()
    # docs/domain.md §7: ALS precentral thickness −0.15 mm, expressed as d on the HC SD
    assert p.thickness_precentral_als_d * p.thickness_precentral_hc_sd == pytest.approx(
        -0.15
    )


def test_params_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CohortParams().slope_mean = -1.0  # type: ignore[misc]


def test_overrides_merge_over_params_object_and_dict():
    base = CohortParams(slope_mean=-1.5)
    p = resolve_params(base, {"p_male": 0.5})
    assert (p.slope_mean, p.p_male, p.slope_sd) == (-1.5, 0.5, 0.6)
    assert resolve_params({"p_bulbar": 0.3}, {}).p_bulbar == 0.3
    cohort = simulate_cohort(3, seed=1, params=base, residual_sd=1.0)
    assert cohort.params.slope_mean == -1.5
    assert cohort.params.residual_sd == 1.0


def test_to_dict_round_trips():
    p = CohortParams(p_male=0.55)
    assert CohortParams(**p.to_dict()) == p
    assert set(p.to_dict()) == set(CohortParams.field_names())


@pytest.mark.parametrize("bad", ["p_mle", "slope"])
def test_unknown_override_lists_valid_names(bad):
    with pytest.raises(
        TypeError, match=rf"unknown simulator parameter '{bad}'.*slope_mean"
    ):
        simulate_cohort(3, seed=1, **{bad: 1.0})


@pytest.mark.parametrize(
    ("overrides", "culprit"),
    [
        ({"p_bulbar": 1.5}, "p_bulbar"),
        ({"p_male": -0.1}, "p_male"),
        ({"slope_mean": 0.5}, "slope_mean"),
        ({"slope_sd": 0.0}, "slope_sd"),
        ({"residual_sd": -1.0}, "residual_sd"),
        ({"onset_delta_fs_correlation": 1.0}, "onset_delta_fs_correlation"),
        ({"baseline_min": 40.0, "baseline_max": 30.0}, "baseline_min"),
        ({"site_scale_min": 1.3}, "site_scale_min"),
        ({"dropout_per_year": 1.0}, "dropout_per_year"),
        ({"fa_cst_hc_sd": 0.001}, "fa_cst_hc_sd"),
        ({"event_median_months": math.nan}, "event_median_months"),
    ],
)
def test_bad_parameter_values_name_the_field(overrides, culprit):
    with pytest.raises(ValueError, match=rf"`{culprit}`"):
        CohortParams(**overrides)


def test_non_numeric_parameter_is_type_error():
    with pytest.raises(TypeError, match="`p_male`"):
        CohortParams(p_male="0.6")  # type: ignore[arg-type]


def test_unreachable_slope_sd_is_explained():
    with pytest.raises(ValueError, match="`slope_sd`"):
        simulate_cohort(3, seed=1, slope_sd=3.0)


def test_rate_calibration_without_floor_matches_closed_form():
    # With no fast patient near the floor (tiny SD), the realised-slope calibration
    # must agree with the two-group lognormal moments: E[rate] = e^(mu + s^2/2) * mix.
    # rel 0.5%: the calibration averages over accepted patients, whose ΔFS copula
    # scores (correlated with the rate) are not exactly standard normal.
    p = CohortParams(slope_sd=0.1)
    mu, sigma = rate_lognormal(p)
    mix = (1 - p.p_bulbar) + p.p_bulbar * p.bulbar_slope_multiplier
    assert math.exp(mu + sigma**2 / 2) * mix == pytest.approx(0.9, rel=5e-3)


def test_params_argument_type_is_checked():
    with pytest.raises(TypeError, match="`params`"):
        simulate_cohort(3, params="defaults")  # type: ignore[arg-type]
