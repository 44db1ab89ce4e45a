"""One vocabulary for every registered model (issue 19): ``predict`` means the
per-row point prediction everywhere, ``subject_trajectories`` has one default band
(the 90 % band of the subject's mean curve), ``summary`` one default level."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from alsprog.data import assemble
from alsprog.errors import ModelSpecificationError
from alsprog.models import LinearMixedModel
from alsprog.models._contract import (
    DEFAULT_INTERVAL,
    DEFAULT_LEVEL,
    DEFAULT_TRAJECTORY_LEVEL,
    TrajectoryModel,
    parse_range,
)
from alsprog.models.registry import MODELS, config_keys
from alsprog.report._model_schema import model_keys
from alsprog.simulate import simulate_cohort


def _default(method, name):
    return inspect.signature(method).parameters[name].default


@pytest.mark.parametrize("name", list(MODELS))
def test_one_default_band_and_level(name):
    cls = MODELS[name]
    assert DEFAULT_INTERVAL == "confidence" and DEFAULT_TRAJECTORY_LEVEL == 0.9
    assert _default(cls.summary, "level") == DEFAULT_LEVEL == 0.95
    assert _default(cls.subject_trajectories, "level") == DEFAULT_TRAJECTORY_LEVEL
    params = inspect.signature(cls.subject_trajectories).parameters
    if "interval" in params:
        assert params["interval"].default == DEFAULT_INTERVAL


@pytest.mark.parametrize("name", list(MODELS))
def test_predict_is_defined_by_every_model(name):
    cls = MODELS[name]
    assert cls.predict is not TrajectoryModel.predict, name
    first = next(iter(list(inspect.signature(cls.predict).parameters)[1:]))
    assert first in ("df", "table")


def test_the_mixed_model_band_defaults_to_the_mean_curve():
    c = simulate_cohort(40, seed=2)
    t = assemble(c.visits, c.subjects)
    m = LinearMixedModel("alsfrs_r_total ~ months + (months | subject_id)").fit(t)
    sid = [str(t["subject_id"].iloc[0])]
    default = m.subject_trajectories([0.0, 6.0], subjects=sid)
    conf = m.subject_trajectories([0.0, 6.0], subjects=sid, interval="confidence")
    pred = m.subject_trajectories([0.0, 6.0], subjects=sid, interval="prediction")
    pd.testing.assert_frame_equal(default, conf)
    assert (pred["se"] ** 2 - conf["se"] ** 2).to_numpy() == pytest.approx(
        np.full(2, m.scale_)
    )
    point = m.predict(t.head(3))
    assert isinstance(point, pd.Series) and point.name == "predicted"


# ------------------------------------------------------------ one declaration
def _outside(text: str, is_int: bool):
    """A value just outside the interval ``text`` (below it, else above it)."""
    r = parse_range(text)
    if r["low"] is not None:
        return int(r["low"]) - (0 if r["low_open"] else 1) if is_int else r["low"]
    return int(r["high"]) + (0 if r["high_open"] else 1) if is_int else r["high"] * 2


def _inside(text: str, is_int: bool):
    r = parse_range(text)
    lo = r["low"] if r["low"] is not None else (r["high"] or 1.0) - 1
    if is_int:
        return int(lo) + (1 if r["low_open"] else 0)
    return lo + (1e-3 if r["low_open"] else 0.0)


def _cases():
    for name, cls in MODELS.items():
        keys = {k.name: k for k in config_keys(cls)}
        for param, text in cls.param_ranges.items():
            yield pytest.param(name, param, text, keys[param], id=f"{name}-{param}")


@pytest.mark.parametrize(("name", "param", "text", "key"), list(_cases()))
def test_fit_refuses_what_param_ranges_refuses(name, param, text, key):
    """``param_ranges`` is the one declaration: the config schema shows it and the
    fit enforces it, at the edge."""
    cls = MODELS[name]
    is_int = key.type is int
    base = {"formula": "alsfrs_r_total ~ months + (months | subject_id)"}
    base = {k: v for k, v in base.items() if k in {c.name for c in config_keys(cls)}}
    if name == "mmrm":
        base = {"formula": "chg ~ visit * arm"}
    bad = cls(**base, **{param: _outside(text, is_int)})
    with pytest.raises(ValueError, match=f"`{param}` must be"):
        bad.check_params()
    with pytest.raises(ValueError, match=f"`{param}` must be"):
        bad.fit(pd.DataFrame({"subject_id": ["a"]}))
    cls(**base, **{param: _inside(text, is_int)}).check_params()
    shown = {k.name: k for k in model_keys()}[param]
    r = parse_range(text)
    assert (shown.low, shown.high) == (r["low"], r["high"]), (name, param)


def test_choices_and_booleans_come_from_the_annotations():
    with pytest.raises(ValueError, match="`reml` must be one of True, False"):
        LinearMixedModel("y ~ t + (1 | g)", reml="yes").check_params()
    b = MODELS["bayesian"]
    with pytest.raises(ValueError, match="`likelihood` must be one of 'normal'"):
        b(likelihood="cauchy").check_params()
    with pytest.raises(ValueError, match="`progress` must be one of True, False, None"):
        b(progress="loud").check_params()
    b(progress=None, marginalize=True).check_params()
    with pytest.raises(ModelSpecificationError, match="blackjax"):
        b(sampler="blackjax").fit(pd.DataFrame())
