"""Fitted models are never changed by using them (issue 19).

``predict``, ``forecast``, ``subject_trajectories`` and ``summary`` must leave a
fitted model's ``__dict__`` exactly as ``fit`` left it: the same attributes, the same
objects, the same values (the mixed model used to leave ``_last_Z`` behind on every
prediction).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alsprog.data import assemble
from alsprog.forecast import forecast
from alsprog.models import BayesianTrajectoryModel, JointModel, LinearMixedModel
from alsprog.simulate import simulate_cohort

FORMULA = "alsfrs_r_total ~ months * delta_fs + (months | subject_id)"


def _fingerprint(value: Any, depth: int = 0) -> Any:
    """A copy of ``value``'s content to compare later (objects by their attributes)."""
    if isinstance(value, np.ndarray | pd.DataFrame | pd.Series | pd.Index):
        return value.copy()
    if isinstance(value, dict):
        return {k: _fingerprint(v, depth + 1) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return {k: _fingerprint(v, depth + 1) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [type(value).__name__, *(_fingerprint(v, depth + 1) for v in value)]
    if value is None or isinstance(value, str | int | float | bool | np.generic):
        return value
    if hasattr(value, "to_dict") and hasattr(value, "copy") and hasattr(value, "dims"):
        return value.copy(deep=True)  # xarray
    if hasattr(value, "groups") and callable(value.groups):  # arviz InferenceData
        return {g: value[g].copy(deep=True) for g in value.groups()}
    if depth < 3 and hasattr(value, "__dict__"):
        return {k: _fingerprint(v, depth + 1) for k, v in vars(value).items()}
    return ("object", id(value))


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    if isinstance(a, pd.DataFrame | pd.Series | pd.Index):
        return type(a) is type(b) and a.equals(b)
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    if hasattr(a, "identical"):
        return bool(a.identical(b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a):
        return bool(np.isnan(b))
    return bool(a == b)


def _snapshot(model: Any) -> dict[str, Any]:
    return {k: (id(v), _fingerprint(v)) for k, v in vars(model).items()}


def _assert_unchanged(model: Any, before: dict[str, Any], what: str) -> None:
    after = _snapshot(model)
    assert after.keys() == before.keys(), (
        f"{what} added/removed {set(after) ^ set(before)}"
    )
    for k in before:
        assert after[k][0] == before[k][0], f"{what} replaced {k}"
        assert _equal(before[k][1], after[k][1]), f"{what} changed {k}"


@pytest.fixture(scope="module")
def data():
    c = simulate_cohort(60, seed=6)
    t = assemble(c.visits, c.subjects)
    new = sorted(pd.unique(t["subject_id"]))[:6]
    return t[~t["subject_id"].isin(new)], t[t["subject_id"].isin(new)]


def _uses(model: Any, train: pd.DataFrame, test: pd.DataFrame) -> list:
    hist = test[test["months"] <= 3.5]
    seen = sorted(pd.unique(train["subject_id"]))[:2]
    return [
        ("predict", lambda: model.predict(test)),
        ("forecast", lambda: forecast(model, hist, [6.0, 12.0], n_samples=5, seed=1)),
        (
            "subject_trajectories",
            lambda: model.subject_trajectories([0.0, 6.0], subjects=seen),
        ),
        ("summary", lambda: str(model.summary())),
    ]


def _check(model: Any, train: pd.DataFrame, test: pd.DataFrame) -> None:
    for what, use in _uses(model, train, test):
        before = _snapshot(model)
        use()
        _assert_unchanged(model, before, what)
    # and a deep copy made after all that still equals the model
    twin = copy.deepcopy(model)
    assert vars(twin).keys() == vars(model).keys()


def test_a_fitted_mixed_model_is_not_changed(data):
    train, test = data
    _check(LinearMixedModel(FORMULA).fit(train), train, test)


def test_a_fitted_mixed_model_stays_the_same_after_ml_summary(data):
    train, test = data
    m = LinearMixedModel(FORMULA, reml=False).fit(train)
    before = _snapshot(m)
    _ = m.aic, m.bic, m.cov_params(), m.confint(0.9), m.columns_
    _assert_unchanged(m, before, "aic/bic/cov_params/confint")


def test_a_fitted_joint_model_is_not_changed(data):
    train, test = data
    jm = JointModel(FORMULA, event_formula="delta_fs").fit(train)
    for what, use in _uses(jm, train, test):
        before = _snapshot(jm)
        use()
        _assert_unchanged(jm, before, what)
    before = _snapshot(jm)
    jm.predict_survival(test[test["months"] <= 3.5], [12.0])
    _assert_unchanged(jm, before, "predict_survival")
    before = _snapshot(jm.longitudinal_)
    forecast(jm, test[test["months"] <= 3.5], [6.0])
    _assert_unchanged(jm.longitudinal_, before, "forecast (longitudinal part)")


@pytest.mark.slow
def test_a_fitted_bayesian_model_is_not_changed(data):
    train, test = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = BayesianTrajectoryModel(
            formula="alsfrs_r_total ~ months * delta_fs",
            chains=1,
            draws=60,
            tune=60,
            seed=2,
            progress=False,
        ).fit(train)
    _check(m, train, test)
