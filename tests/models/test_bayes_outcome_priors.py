"""Default priors follow the outcome's scale (issue 21: FVC % of predicted as an
outcome): ALSFRS-R keeps its own; another dictionary outcome gets rstanarm-style
priors scaled to its data."""

from __future__ import annotations

import numpy as np
import pytest

from alsprog.models.bayes._priors import (
    Prior,
    default_priors,
    merge_priors,
    outcome_defaults,
)


def test_alsfrs_and_unknown_outcomes_keep_the_alsfrs_defaults():
    y, t = np.array([40.0, 35, 30]), np.array([0.0, 6, 12])
    for outcome in ("alsfrs_r_total", "frs"):
        assert outcome_defaults("linear", "normal", outcome, y, t) == default_priors()
    # the sigmoid is the ALSFRS-R curve whatever the column is called
    assert outcome_defaults("sigmoid", "normal", "fa_cst_left", y, t) == (
        default_priors("sigmoid")
    )


def test_fvc_defaults_scaled_like_rstanarm():
    rng = np.random.default_rng(1)
    y = rng.normal(85, 15, 200)
    t = rng.uniform(0, 12, 200)
    sy, st = np.std(y, ddof=1), np.std(t, ddof=1)
    p = outcome_defaults("linear", "student_t", "fvc_percent_predicted", y, t)
    assert p["intercept"] == Prior("Normal", mu=float(np.mean(y)), sigma=2.5 * sy)
    assert p["slope"] == Prior("Normal", mu=0.0, sigma=2.5 * sy / st)
    assert p["beta"] == Prior("Normal", mu=0.0, sigma=2.5 * sy)
    assert p["sd_intercept"] == Prior("HalfNormal", sigma=sy)
    assert p["sd_slope"] == Prior("HalfNormal", sigma=sy / st)
    assert p["sigma"] == Prior("HalfNormal", sigma=sy)
    assert p["corr"] == default_priors()["corr"]
    assert p["nu"] == default_priors("linear", "student_t")["nu"]
    # a constant time or outcome: the defaults unchanged (the fit refuses it later)
    flat = outcome_defaults("linear", "normal", "fvc_liters", y, np.zeros(200))
    assert flat == default_priors()


def test_user_priors_win_over_scaled_defaults():
    y, t = np.array([80.0, 90, 70, 100]), np.array([0.0, 3, 6, 9])
    d = outcome_defaults("linear", "normal", "fvc_percent_predicted", y, t)
    mine = Prior("Normal", mu=-2.0, sigma=1.0)
    out = merge_priors("linear", "normal", {"slope": mine}, ["Intercept"], defaults=d)
    assert out["slope"] == mine
    assert out["intercept"] == d["intercept"]
    assert d["intercept"].to_dict()["mu"] == pytest.approx(85.0)
