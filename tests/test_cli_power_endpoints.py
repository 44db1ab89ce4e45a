"""``alsprog power --endpoint ... / --from-cohort ...``: simulated sizes, the
survival formula and group-sequential looks from the command line."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from alsprog.cli import main
from alsprog.data import assemble, write_table
from alsprog.simulate import simulate_cohort


def _csv(capsys) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(capsys.readouterr().out))


def test_survival_formula_equals_rpact(capsys):
    """rpact 3.3.4: getSampleSizeSurvival(getDesignGroupSequential(kMax = 3, alpha =
    0.025, beta = 0.2, typeOfDesign = "asOF"), hazardRatio = 0.75, lambda2 =
    log(2) / 24, accrualTime = c(0, 12), followUpTime = 12) gives 384.2055 events
    and 1062.2499 patients; without looks (kMax = 1) 379.3517 and 1048.8303."""
    args = ["power", "--endpoint", "survival", "--hazard-ratio", "0.75"]
    args += ["--control-median-months", "24", "--csv"]
    assert main([*args, "--looks", "3"]) == 0
    t = _csv(capsys)
    assert t.loc[0, ["events", "patients"]].tolist() == [385, 1063]
    assert main(args) == 0
    t = _csv(capsys)
    assert t.loc[0, ["events", "patients"]].tolist() == [380, 1049]
    assert t.loc[0, "patients_treatment"] == t.loc[0, "patients_control"] == 525


def test_simulated_endpoints_table_is_reproducible(capsys):
    args = ["power", "--slowing", "0.4", "--endpoint", "slope", "cafs"]
    args += ["--n-sims", "20", "--n-jobs", "1", "--seed", "3", "--csv"]
    assert main(args) == 0
    a = _csv(capsys)
    assert a["endpoint"].tolist() == ["slope", "cafs"]
    assert (a["source"] == "course").all()
    assert (a["ci_low"] <= a["n_per_arm"]).all()
    assert main(args) == 0
    pd.testing.assert_frame_equal(a, _csv(capsys))


def test_from_cohort_resamples_the_placebo_arm(tmp_path, capsys):
    c = simulate_cohort(60, months=12, seed=4)
    long = assemble(c.visits, c.subjects)
    subjects = long["subject_id"].unique()
    arm = dict(zip(subjects, ["placebo", "active"] * len(subjects), strict=False))
    long = long.assign(arm=long["subject_id"].map(arm))
    path = tmp_path / "history.csv"
    write_table(long, path)
    args = ["power", "--slowing", "0.5", "--from-cohort", str(path)]
    args += ["--cohort-arm", "placebo", "--endpoint", "slope", "survival"]
    args += ["--hazard-ratio", "0.5", "--n-sims", "15", "--n-jobs", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "HistoricalCohort(30 patients" in out
    assert "historical (30 patients)" in out


def test_bad_combinations_are_refused(capsys):
    assert main(["power"]) == 2
    assert "--slowing" in capsys.readouterr().err
    assert (
        main(
            ["power", "--slowing", "0.3", "--endpoint", "cafs"]
            + ["--alternative", "one-sided"]
        )
        == 1
    )
    assert "two-sided" in capsys.readouterr().err
    assert (
        main(
            ["power", "--endpoint", "cafs", "--control-median-months", "24"]
            + ["--hazard-ratio", "0.8"]
        )
        == 1
    )
    assert "--endpoint survival only" in capsys.readouterr().err


@pytest.mark.parametrize("endpoint", ["win_ratio", "survival"])
def test_each_endpoint_runs_from_the_command_line(endpoint, capsys):
    args = ["power", "--slowing", "0.5", "--endpoint", endpoint, "--n-sims", "12"]
    args += ["--hazard-ratio", "0.5", "--n-jobs", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "patients per arm for power 0.8" in out and endpoint in out


def test_endpoint_lists_of_the_cli_and_config_are_the_libraries():
    """The command line and the config keep their own copies (they stay light to
    import); they must name the endpoints simulate_power analyses."""
    from alsprog.cli._power_sim import ENDPOINTS as cli
    from alsprog.design._endpoint_analysis import ENDPOINTS
    from alsprog.report._schema import SCHEMA

    key = {k.name: k for k in SCHEMA["design"]}["endpoints"]
    assert cli == ENDPOINTS == key.choices
