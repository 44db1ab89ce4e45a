"""TrialDesign: analytic answers and variance components from a fitted mixed model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alsprog.design import TrialDesign, sample_size_slope
from alsprog.errors import ModelSpecificationError


def _lmm_data(n=800, seed=0, g=((25.0, 0.5), (0.5, 0.36)), sig_e=2.0, slope=-0.9):
    """Random intercept+slope data with known components (not the simulator)."""
    rng = np.random.default_rng(seed)
    times = np.array([0, 3, 6, 9, 12], float)
    b = rng.multivariate_normal([0, 0], np.asarray(g), size=n)
    rows = []
    for i in range(n):
        y = 38 + b[i, 0] + (slope + b[i, 1]) * times + rng.normal(0, sig_e, times.size)
        rows.append(pd.DataFrame({"subject_id": f"S{i}", "months": times, "frs": y}))
    return pd.concat(rows, ignore_index=True)


def test_delta_and_sample_size_match_function():
    d = TrialDesign(
        visit_months=[0, 3, 6, 9, 12],
        mean_slope=-0.9,
        slowing=0.3,
        sig2_int=20,
        sig2_slope=0.36,
        sig2_e=4,
    )
    assert d.delta == pytest.approx(0.27)
    assert d.treatment_slope == pytest.approx(-0.63)
    expected = sample_size_slope(0.27, [0, 3, 6, 9, 12], 20, 0.36, 0.0, 4.0)
    assert d.sample_size().n_per_arm == pytest.approx(expected.n_per_arm)
    assert d.power_at(expected.n_per_arm).power == pytest.approx(0.8)


def test_power_curve_monotone_and_hits_target():
    d = TrialDesign()
    n = d.sample_size().n_per_arm
    curve = d.power_curve([20, 60, n, 300], slowing=[0.25, 0.5])
    assert len(curve) == 8
    for _, g in curve.groupby("slowing"):
        assert g["power"].is_monotonic_increasing
    at_n = curve[(curve["slowing"] == 0.25) & (curve["n_per_arm"] == n)]["power"]
    assert at_n.iloc[0] == pytest.approx(0.8, abs=1e-9)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"visit_months": [0, 6, 3]}, "strictly increasing"),
        ({"sig2_slope": -1}, "sig2_slope"),
        ({"power": 1.0}, r"`power` must be in \(0, 1\)"),
        ({"mean_slope": 0}, "no decline"),
        (
            {"sig2_int": 1, "sig2_slope": 1, "cov_int_slope": 2},
            "not positive semi-definite",
        ),
        ({"retention": [1, 0.5]}, "one value per visit"),
    ],
)
def test_bad_design(kwargs, match):
    with pytest.raises(ModelSpecificationError, match=match):
        TrialDesign(**kwargs)


def test_from_model_recovers_variance_components():
    from alsprog.models import LinearMixedModel

    df = _lmm_data()
    m = LinearMixedModel("frs ~ months + (months | subject_id)").fit(df)
    d = TrialDesign.from_model(m, [0, 3, 6, 9, 12], slowing=0.25, power=0.9)
    assert d.sig2_int == pytest.approx(m.cov_re_.iloc[0, 0])
    assert d.sig2_slope == pytest.approx(m.cov_re_.iloc[1, 1])
    assert d.cov_int_slope == pytest.approx(m.cov_re_.iloc[0, 1])
    assert d.sig2_e == pytest.approx(m.scale_)
    assert d.power == 0.9
    # simulation truth: slope -0.9, slope variance 0.36, residual 4, n = 800
    assert d.mean_slope == pytest.approx(-0.9, abs=0.06)
    assert d.sig2_slope == pytest.approx(0.36, rel=0.15)
    assert d.sig2_e == pytest.approx(4.0, rel=0.1)


def test_from_model_errors():
    from alsprog.models import LinearMixedModel

    with pytest.raises(
        ModelSpecificationError, match="must be a fitted LinearMixedModel"
    ):
        TrialDesign.from_model(LinearMixedModel("y ~ t + (t | g)"))
    m = LinearMixedModel("frs ~ months + (months | subject_id)").fit(_lmm_data(n=60))
    with pytest.raises(ModelSpecificationError, match="no fixed effect 'days'"):
        TrialDesign.from_model(m, time="days")


def test_design_on_another_outcome_takes_its_dictionary_range():
    """FVC % of predicted (issue 21): a mean of 88 is valid there, not for the
    ALSFRS-R total; from_model keeps the model's outcome and clamps to its range."""
    import numpy as np
    import pandas as pd

    from alsprog.design import TrialDesign
    from alsprog.errors import ModelSpecificationError
    from alsprog.models import LinearMixedModel

    d = TrialDesign(mean_intercept=88.0, outcome="fvc_percent_predicted")
    assert d.outcome == "fvc_percent_predicted"
    with pytest.raises(ModelSpecificationError, match="mean_intercept"):
        TrialDesign(mean_intercept=88.0)
    with pytest.raises(ModelSpecificationError, match="mean_intercept"):
        TrialDesign(mean_intercept=251.0, outcome="fvc_percent_predicted")
    rng = np.random.default_rng(3)
    n, t = 60, np.array([0.0, 3, 6, 9, 12])
    b0 = rng.normal(85, 10, n)
    b1 = rng.normal(-2.0, 0.5, n)
    df = pd.DataFrame(
        {
            "subject_id": np.repeat([f"S{i}" for i in range(n)], 5),
            "months": np.tile(t, n),
            "fvc_percent_predicted": (b0[:, None] + b1[:, None] * t).ravel()
            + rng.normal(0, 3, 5 * n),
        }
    )
    m = LinearMixedModel("fvc_percent_predicted ~ months + (months | subject_id)").fit(
        df
    )
    d = TrialDesign.from_model(m, [0, 3, 6, 9, 12])
    assert d.outcome == "fvc_percent_predicted"
    assert d.mean_intercept == pytest.approx(float(m.fe_params_["Intercept"]))
    assert 80 < d.mean_intercept < 90
