"""`alsprog survival` (issue 25) calls the library, prints and writes its scores."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from alsprog.cli import main
from alsprog.data import assemble, write_table
from alsprog.forecast import backtest_survival
from alsprog.models import SurvivalModel
from alsprog.simulate import simulate_cohort

F = "Surv(death_or_tracheostomy_months, event_observed) ~ delta_fs + onset_site"


@pytest.mark.slow  # seconds: the quick tier is full
def test_survival_command_prints_and_writes_the_library_scores(tmp_path, capsys):
    c = simulate_cohort(160, seed=9)
    t = assemble(c.visits, c.subjects)
    write_table(t, tmp_path / "table.csv")
    out = tmp_path / "scores.csv"
    code = main(
        ["-q", "survival", "--data", str(tmp_path / "table.csv"), "--formula", F,
         "--times", "6", "12", "--seed", "4", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "hazard_ratio" in text and "risk groups:" in text
    got = pd.read_csv(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "flexible": SurvivalModel(F, time_origin="onset"),
            "cox": SurvivalModel(F, method="cox", time_origin="onset"),
        }
        want = backtest_survival(t, models, times=[6, 12], seed=4).scores
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_survival_command_refuses_code_in_the_formula(tmp_path, capsys):
    code = main(
        ["-q", "survival", "--simulate", "40", "--formula",
         "Surv(death_or_tracheostomy_months, event_observed) ~ {__import__('os')}"]
    )  # fmt: skip
    assert code == 1
    assert "refused" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [[], ["--data", "x.csv", "--simulate", "5"]])
def test_survival_command_needs_one_source(extra):
    assert main(["-q", "survival", *extra]) == 2
