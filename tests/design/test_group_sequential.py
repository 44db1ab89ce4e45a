"""Group-sequential designs against R's rpact and closed forms.

References: ``tests/reference/rpact_group_sequential_reference.R`` (rpact 3.3.4
``getDesignGroupSequential`` and ``getDesignCharacteristics``; its .json output and
.Rout log), and closed forms for one look and for the bivariate normal.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from alsprog.design._group_sequential import GroupSequentialDesign, group_sequential
from alsprog.errors import ModelSpecificationError

REF = json.loads(
    (
        Path(__file__).parents[1]
        / "reference"
        / "rpact_group_sequential_reference.json"
    ).read_text(encoding="utf-8")
)
REL = 1e-6


def _arr(x):
    return np.array([np.nan if v is None else v for v in np.atleast_1d(x)], dtype=float)


def _design(case) -> GroupSequentialDesign:
    a = {key: v for key, v in case["args"].items() if v is not None}
    return group_sequential(a.pop("k"), **a)


@pytest.mark.parametrize("case", REF, ids=[c["name"] for c in REF])
def test_equals_rpact(case):
    d = _design(case)
    np.testing.assert_allclose(
        d.information_rates, _arr(case["informationRates"]), rtol=1e-12
    )
    np.testing.assert_allclose(
        d.critical_values, _arr(case["criticalValues"]), rtol=REL
    )
    np.testing.assert_allclose(d.stage_levels, _arr(case["stageLevels"]), rtol=REL)
    np.testing.assert_allclose(d.alpha_spent, _arr(case["alphaSpent"]), rtol=REL)
    fut = _arr(case["futilityBounds"])
    if case["args"]["futility"] is None:
        assert np.all(fut == -6) and np.all(np.isneginf(d.futility_bounds))
        assert d.beta_spent is None
    else:
        np.testing.assert_allclose(d.futility_bounds, fut, rtol=REL, atol=1e-9)
        np.testing.assert_allclose(d.beta_spent, _arr(case["betaSpent"]), rtol=REL)
    assert d.inflation_factor == pytest.approx(case["inflationFactor"], rel=REL)
    assert d.shift == pytest.approx(case["shift"], rel=REL)
    assert d.n_fixed == pytest.approx(case["nFixed"], rel=1e-12)
    np.testing.assert_allclose(d.power, _arr(case["power"]), rtol=REL)
    np.testing.assert_allclose(
        d.rejection_probabilities, _arr(case["rejectionProbabilities"]), rtol=REL
    )
    np.testing.assert_allclose(
        d.futility_probabilities,
        _arr(case["futilityProbabilities"]),
        rtol=REL,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        d.average_sample_number, _arr(case["averageSampleNumber"]), rtol=REL
    )


def test_reference_covers_the_brief():
    args = [c["args"] for c in REF]
    assert len(REF) >= 12
    assert {a["k"] for a in args} >= {2, 3, 4, 5}
    assert {a["sided"] for a in args} == {1, 2}
    assert {a["spending"] for a in args} >= {
        "obrien-fleming",
        "pocock",
        "hsd",
        "kim-demets",
        "classical-obrien-fleming",
        "classical-pocock",
    }
    assert any(a["information_rates"] is not None for a in args)
    assert {a["futility"] for a in args} >= {None, "obrien-fleming", "pocock", "hsd"}


def test_two_looks_against_bivariate_normal():
    # closed form independent of the grid: P(Z1 >= c1 or Z2 >= c2) with
    # corr(Z1, Z2) = sqrt(t1) equals alpha, and alpha spent at look 1 is 1 - Phi(c1)
    t1 = 0.4
    d = group_sequential(2, information_rates=[t1, 1.0], spending="pocock")
    c1, c2 = d.critical_values
    r = math.sqrt(t1)
    cont = stats.multivariate_normal(mean=[0, 0], cov=[[1, r], [r, 1]]).cdf([c1, c2])
    assert 1 - cont == pytest.approx(0.025, abs=2e-7)
    assert d.alpha_spent[0] == pytest.approx(1 - stats.norm.cdf(c1), rel=1e-12)
    # the Lan-DeMets Pocock function at t1
    assert d.alpha_spent[0] == pytest.approx(0.025 * math.log(1 + (math.e - 1) * t1))


def test_one_look_is_the_fixed_design():
    d = group_sequential(1, alpha=0.05, sided=2, beta=0.1)
    assert d.critical_values[0] == pytest.approx(stats.norm.ppf(0.975), rel=1e-12)
    assert d.inflation_factor == 1.0
    assert d.n_fixed == pytest.approx(
        (stats.norm.ppf(0.975) + stats.norm.ppf(0.9)) ** 2
    )


def test_stop_at_looks():
    d = group_sequential(3, futility="obrien-fleming")
    c, f = d.critical_values, d.futility_bounds
    z = np.array(
        [
            [c[0] + 0.01, -9, -9],  # efficacy at look 1
            [f[0] - 0.01, 9, 9],  # futility at look 1
            [0.5 * (f[0] + c[0]), c[1], 0.0],  # efficacy at look 2 (bound inclusive)
            [
                0.5 * (f[0] + c[0]),
                0.5 * (f[1] + c[1]),
                c[2] - 1e-9,
            ],  # end, not rejected
            [0.5 * (f[0] + c[0]), 0.5 * (f[1] + c[1]), c[2] + 1e-9],  # end, rejected
        ]
    )
    out = d.stop_at_looks(z)
    assert out.look.tolist() == [1, 1, 2, 3, 3]
    assert out.rejected.tolist() == [True, False, True, False, True]
    assert out.futility.tolist() == [False, True, False, False, False]
    assert out.power == pytest.approx(0.6)
    low = d.stop_at_looks(-z, direction="lower")
    assert low.look.tolist() == out.look.tolist()
    assert low.rejected.tolist() == out.rejected.tolist()


def test_stop_at_looks_simulated_type_i_error_and_power():
    # brute force: simulated Brownian motion at the looks under H0 and under the
    # drift of the design's maximum information reproduces alpha and the power
    d = group_sequential(3, spending="pocock")
    rng = np.random.default_rng(7)
    n = 200_000
    t = d.information_rates
    inc = rng.standard_normal((n, 3)) * np.sqrt(np.diff(t, prepend=0.0))
    for drift, target in ((0.0, d.alpha_spent[-1]), (math.sqrt(d.shift), 0.8)):
        s = np.cumsum(inc, axis=1) + drift * t
        out = d.stop_at_looks(s / np.sqrt(t))
        se = math.sqrt(target * (1 - target) / n)
        assert abs(out.power - target) < 4 * se


def test_two_sided_stops_on_absolute_value():
    d = group_sequential(2, sided=2, alpha=0.05)
    out = d.stop_at_looks([[-(d.critical_values[0] + 0.1), 0.0]])
    assert out.look.tolist() == [1] and out.rejected.tolist() == [True]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(k=0), r"`k` must be an integer in \[1, 20\]"),
        (dict(k=3, alpha=0.7), "`alpha` must be in"),
        (dict(k=3, sided=3), "`sided` must be an integer"),
        (dict(k=3, spending="lan-demets"), "`spending` must be one of"),
        (dict(k=3, spending="hsd"), "`gamma` is required"),
        (dict(k=3, spending="hsd", gamma=-12), "`gamma` must be in"),
        (dict(k=3, gamma=1.0), "`gamma` is used only"),
        (dict(k=3, information_rates=[0.5, 1.0]), "one fraction per look"),
        (dict(k=3, information_rates=[0.5, 0.4, 1.0]), "strictly increasing"),
        (dict(k=2, information_rates=[0.5, 0.9]), "must end at 1"),
        (dict(k=3, futility="pocock", sided=2), "one-sided designs only"),
        (dict(k=3, futility="pocock", spending="classical-pocock"), "alpha-spending"),
        (dict(k=1, futility="pocock"), "needs interim looks"),
        (dict(k=3, futility="hsd"), "`gamma_futility` is required"),
        (dict(k=3, gamma_futility=1.0), "only together with `futility`"),
        (dict(k=3, futility="fast"), "`futility` must be one of"),
    ],
)
def test_invalid_arguments(kwargs, match):
    k = kwargs.pop("k")
    with pytest.raises(ModelSpecificationError, match=match):
        group_sequential(k, **kwargs)


def test_stop_at_looks_rejects_bad_shapes():
    d = group_sequential(3)
    with pytest.raises(ModelSpecificationError, match=r"shape \(n_trials, 3\)"):
        d.stop_at_looks(np.zeros((4, 2)))
    with pytest.raises(ModelSpecificationError, match="NaN"):
        d.stop_at_looks([[0.0, np.nan, 1.0]])
    with pytest.raises(ModelSpecificationError, match="`direction`"):
        d.stop_at_looks(np.zeros((1, 3)), direction="up")


def test_result_is_frozen_and_serialisable():
    d = group_sequential(2)
    with pytest.raises(AttributeError):
        d.k = 3  # type: ignore[misc]
    dd = d.to_dict()
    assert dd["critical_values"] == d.critical_values.tolist()
    json.dumps({k: v for k, v in dd.items() if k != "futility_bounds"})
    assert "GroupSequentialDesign(k=2" in repr(d)


def test_to_frame_one_row_per_look():
    d = group_sequential(3, futility="pocock")
    f = d.to_frame()
    assert f.index.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(f["critical_value"], d.critical_values)
    np.testing.assert_array_equal(f["futility_bound"].iloc[:2], d.futility_bounds)
    assert np.isnan(f["futility_bound"].iloc[2])
    np.testing.assert_array_equal(f["beta_spent"], d.beta_spent)
    assert f["power"].iloc[-1] == pytest.approx(0.8, rel=1e-6)


def test_extreme_early_bound_is_infinite_as_rpact():
    # rpact: getDesignGroupSequential(kMax = 3, typeOfDesign = "asOF",
    #   informationRates = c(0.01, 0.02, 1))$criticalValues is Inf Inf 1.96
    d = group_sequential(3, information_rates=[0.01, 0.02, 1.0])
    assert np.isposinf(d.critical_values[0])
    assert d.critical_values[2] == pytest.approx(stats.norm.ppf(0.975), rel=1e-6)
    out = d.stop_at_looks([[50.0, 50.0, 0.0]])
    assert out.look.tolist() == [3] and not out.rejected[0]
