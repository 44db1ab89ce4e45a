"""A model registered in a test reaches the run config, the checks, the report, the
backtest and the command line, without any other file knowing it (issue 19).

The toy model below is defined here only: each patient's last value plus the
training patients' mean slope, with a normal band from the residual spread.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alsprog.data._history import ModelColumns
from alsprog.errors import NotFittedError
from alsprog.models import Summary
from alsprog.models._contract import (
    DEFAULT_LEVEL,
    ForecastRows,
    TrajectoryModel,
    outcome_bounds,
)
from alsprog.models.registry import MODELS, register, unregister
from alsprog.report import ConfigError, check, config_reference, load_config, run


class ToySlope(TrajectoryModel):
    """Each patient's last value plus the population's mean slope.

    Parameters
    ----------
    outcome : str, optional
        Outcome column (a run fills it from ``[data] outcome``).
    time : str, default "months"
        Time column of the slope.
    shrink : float, default 1.0
        Multiplies the mean slope, in [0, 1].
    """

    file_suffix = ".json"
    param_ranges = {"shrink": "[0, 1]"}

    def __init__(
        self, *, outcome: str | None = None, time: str = "months", shrink: float = 1.0
    ) -> None:
        self.outcome = outcome
        self.time = time
        self.shrink = shrink

    def required_columns(self) -> ModelColumns:
        return ModelColumns.of(
            self.outcome or "alsfrs_r_total", "subject_id", self.time, [self.time]
        )

    @property
    def columns_(self) -> ModelColumns:
        if not hasattr(self, "slope_"):
            raise NotFittedError("ToySlope is not fitted; call fit first.")
        return self.required_columns()

    def fit(self, table: pd.DataFrame) -> ToySlope:
        y, t = self.required_columns().outcome, self.time
        rows = table.loc[table[y].notna()].sort_values(["subject_id", t])
        g = rows.groupby("subject_id")
        span = g[t].max() - g[t].min()
        change = g[y].last() - g[y].first()
        ok = span > 0
        self.slope_ = float((change[ok] / span[ok]).mean()) * float(self.shrink)
        fitted = g[y].transform("last") + self.slope_ * (
            rows[t] - g[t].transform("max")
        )
        self.sd_ = float(np.std((rows[y] - fitted).to_numpy(), ddof=1))
        self.last_ = {
            str(s): (float(v), float(tt))
            for s, v, tt in zip(g[y].last().index, g[y].last(), g[t].max(), strict=True)
        }
        self.n_obs_ = len(rows)
        self.n_subjects_ = len(self.last_)
        self.outcome_bounds_ = outcome_bounds(y)
        return self

    def summary(self, level: float = DEFAULT_LEVEL) -> Summary:
        tab = pd.DataFrame({"estimate": [self.slope_, self.sd_]}, index=["slope", "sd"])
        return Summary("Toy last value + slope", {"level": level}, {"fixed": tab})

    def _band(self, loc: np.ndarray, level: float) -> dict[str, np.ndarray]:
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + level / 2))
        lo, hi = self.outcome_bounds_
        return {
            "mean": np.clip(loc, lo, hi),
            "median": np.clip(loc, lo, hi),
            "lower": np.clip(loc - z * self.sd_, lo, hi),
            "upper": np.clip(loc + z * self.sd_, lo, hi),
        }

    def subject_trajectories(self, times, *, subjects=None, level=0.9):
        t = np.asarray(times, dtype=float)
        parts = []
        for s in subjects if subjects is not None else list(self.last_):
            v, t0 = self.last_[str(s)]
            band = self._band(v + self.slope_ * (t - t0), level)
            parts.append(pd.DataFrame({"subject_id": s, self.time: t, **band}))
        return pd.concat(parts, ignore_index=True)

    def forecast_rows(self, history, *, level, n_samples=None, rng, given_alive=True):
        y, t = self.required_columns().outcome, self.time
        last = history.observed.groupby("subject_id", sort=False)[y].last()
        last = last.reindex(history.subjects).to_numpy(float)
        idx = history.future["_subject_index"].to_numpy()
        ahead = history.future[t].to_numpy(float) - history.last_time[idx]
        loc = last[idx] + self.slope_ * ahead
        draws = None
        if n_samples is not None:
            lo, hi = self.outcome_bounds_
            noise = self.sd_ * rng.standard_normal((n_samples, len(loc)))
            draws = np.clip(loc + noise, lo, hi)
        return ForecastRows(self._band(loc, level), draws)

    def save(self, path) -> None:
        state = {"params": self.get_params(), "slope_": self.slope_, "sd_": self.sd_}
        state |= {"last_": self.last_, "n_obs_": self.n_obs_}
        Path(path).write_text(json.dumps(state))

    @classmethod
    def load(cls, path) -> ToySlope:
        state = json.loads(Path(path).read_text())
        m = cls(**state.pop("params"))
        for k, v in state.items():
            setattr(m, k, v)
        m.last_ = {k: tuple(v) for k, v in m.last_.items()}
        m.n_subjects_ = len(m.last_)
        m.outcome_bounds_ = outcome_bounds(m.required_columns().outcome)
        return m


@pytest.fixture
def toy():
    """``toy`` registered for one test."""
    register("toy", ToySlope)
    yield "toy"
    unregister("toy")


TOY = 'type = "toy"\nshrink = 0.5'


def test_the_toy_is_a_config_type_with_its_constructor_keys(
    toy, config_writer, tiny_inputs
):
    cfg = load_config(config_writer(tiny_inputs, models__toy=TOY))
    m = cfg.model("toy")
    assert (m.type, dict(m.params)) == ("toy", {"shrink": 0.5})  # time: [data]
    ref = config_reference()
    assert "`toy` (ToySlope)" in ref
    assert "| `shrink` | number | `1.0` | Multiplies the mean slope, in [0, 1]." in ref
    assert "(toy only)" in ref


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'type = "toy"\nshrnk = 0.5',
            "key models.toy.shrnk: unknown key (did you mean 'shrink'? valid keys: "
            "outcome, shrink, time, type)",
        ),
        ('type = "toy"\nshrink = 2', "key models.toy.shrink: 2 is outside [0, 1]"),
        (
            'type = "toy"\nreml = false',
            "key models.toy.reml: applies to mixed models only, not type 'toy'",
        ),
        (
            'type = "mixd"',
            "key models.toy.type: 'mixd' is not one of 'mixed', 'bayesian', 'joint', "
            "'mmrm', 'latent_class', 'nonlinear', 'toy'; did you mean 'mixed'?",
        ),
    ],
)
def test_a_bad_toy_section_is_refused(toy, config_writer, tiny_inputs, body, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(config_writer(tiny_inputs, models__toy=body))


def test_unregistered_the_type_is_unknown(config_writer, tiny_inputs):
    with pytest.raises(ConfigError, match="'toy' is not one of 'mixed', 'bayesian'"):
        load_config(config_writer(tiny_inputs, models__toy=TOY))


def test_check_reads_the_toy_columns(toy, config_writer, tiny_inputs, tmp_path):
    from alsprog.cli import main

    good = config_writer(tiny_inputs, models__toy=TOY)
    assert main(["run", str(good), "--out", str(tmp_path / "o"), "--check"]) == 0
    bad = config_writer(tiny_inputs, models__toy=TOY + '\ntime = "weeks"')
    with pytest.raises(ConfigError) as info:
        check(bad, tmp_path / "o")
    assert "key models.toy.time: time column 'weeks' is not in the data" in str(
        info.value
    )


def test_a_run_fits_reports_forecasts_and_backtests_the_toy(
    toy, config_writer, tiny_inputs, tmp_path
):
    config = config_writer(
        tiny_inputs,
        models__toy=TOY,
        forecast='models = ["lmm", "toy"]\nbaselines = ["delta_fs"]\nn_patients = 2',
        design="enabled = false",
    )
    out = tmp_path / "out"
    run(config, out, progress=False)
    comp = pd.read_csv(out / "models" / "comparison.csv", index_col="model")
    assert comp.loc["toy", "type"] == "toy"
    assert comp.loc["toy", "n_subjects"] > 0
    assert (out / "models" / "toy.json").is_file()
    assert (out / "models" / "toy_fixed.csv").is_file()
    again = ToySlope.load(out / "models" / "toy.json")
    assert again.shrink == 0.5 and again.outcome == "alsfrs_r_total"
    fc = pd.read_csv(out / "forecasts.csv")
    assert {"lmm", "toy"} <= set(fc["model"])
    assert fc.loc[fc["model"] == "toy", "mean"].notna().all()
    bt = pd.read_csv(out / "backtest.csv")
    assert "toy" in set(bt["model"])
    assert bt.loc[bt["model"] == "toy", "rmse"].notna().all()
    html = (out / "report.html").read_text()
    assert ">toy<" in html
    assert "[models.toy]" in (out / "config.toml").read_text()


def test_the_command_line_backtests_the_toy(toy, tmp_path, capsys):
    from alsprog.cli import main

    table = tmp_path / "bt.csv"
    code = main(
        [
            "backtest",
            "--simulate",
            "40",
            "--models",
            "toy",
            "delta_fs",
            "--out",
            str(table),
            "--no-progress",
        ]
    )
    assert code == 0
    res = pd.read_csv(table)
    assert {"toy", "delta_fs"} <= set(res["model"])
    assert res.loc[res["model"] == "toy", "rmse"].notna().all()
    capsys.readouterr()
    assert main(["backtest", "--help"]) == 0
    assert (
        "the registry (mixed, bayesian, joint, mmrm, latent_class, nonlinear, toy)"
        in " ".join(capsys.readouterr().out.split())
    )


def test_registry_names_are_command_line_names_too(tmp_path):
    """``mixed`` is the ``lmm`` forecaster by its type name: the same backtest."""
    from alsprog.cli import main

    tables = []
    for name in ("lmm", "mixed"):
        tables.append(tmp_path / f"{name}.csv")
        argv = ["backtest", "--simulate", "40", "--models", name, "--out"]
        assert main([*argv, str(tables[-1]), "--no-progress"]) == 0
    a, b = (pd.read_csv(t).drop(columns=["model", "seconds"]) for t in tables)
    pd.testing.assert_frame_equal(a, b)
    assert "toy" not in MODELS
