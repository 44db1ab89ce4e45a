"""A run stops before any fitting, with every problem of config, inputs and formulas."""

from __future__ import annotations

import csv

import pytest

from alsprog.report import ConfigError, check, run
from alsprog.report._check import formula_variables


@pytest.fixture
def no_fitting(monkeypatch):
    """Make any model fit fail loudly, so a test proves nothing was fitted."""
    from alsprog.models.bayes._model import BayesianTrajectoryModel
    from alsprog.models.lmm._model import LinearMixedModel

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{type(self).__name__}.fit was called")

    monkeypatch.setattr(LinearMixedModel, "fit", refuse)
    monkeypatch.setattr(BayesianTrajectoryModel, "fit", refuse)


def _break_visits(path, line: int, column: str, value: str) -> None:
    rows = list(csv.reader(path.open()))
    rows[line - 1][rows[0].index(column)] = value
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def _run_fails(config, out):
    with pytest.raises(ConfigError) as info:
        run(config, out)
    assert not out.exists()
    assert not list(out.parent.glob(f"{out.name}.tmp-*"))
    return str(info.value)


def test_broken_path_unknown_column_and_bad_visits_all_listed(
    make_config, tiny_inputs, tmp_path, no_fitting
):
    _break_visits(tiny_inputs / "visits.csv", 4, "alsfrs_r_q7", "7")
    config = make_config(
        data='visits = "visits.csv"\nsubjects = "subjects.csv"\nimaging = "scans.csv"',
        models__lmm='type = "mixed"\n'
        'formula = "alsfrs_r_total ~ months * onset_sight + (months | subject_id)"',
    )
    msg = _run_fails(config, tmp_path / "out")
    assert "key data.imaging: 'scans.csv' does not exist" in msg
    assert "line 4, subject" in msg and "column alsfrs_r_q7: 7 is outside 0-4" in msg
    assert "key models.lmm.formula:" in msg and "unknown column(s) 'onset_sight'" in msg


def test_unknown_formula_column_alone(make_config, tmp_path, no_fitting):
    config = make_config(
        models__b='type = "bayesian"\nformula = "alsfrs_r_total ~ months + weight"'
    )
    msg = _run_fails(config, tmp_path / "out")
    assert (
        "key models.b.formula: 'alsfrs_r_total ~ months + weight' names unknown" in msg
    )
    assert "1 problem" in msg


def test_invalid_visit_table_alone(make_config, tiny_inputs, tmp_path, no_fitting):
    _break_visits(tiny_inputs / "visits.csv", 3, "visit_date", "2021-13-02")
    msg = _run_fails(make_config(), tmp_path / "out")
    assert "line 3, subject" in msg
    assert "column visit_date: '2021-13-02' is not a date" in msg


def test_cross_table_problem(make_config, tiny_inputs, tmp_path, no_fitting):
    _break_visits(tiny_inputs / "visits.csv", 2, "subject_id", "Z999")
    msg = _run_fails(make_config(), tmp_path / "out")
    assert "'Z999', which is not in the subjects table" in msg


def test_time_and_outcome_columns_checked(make_config, tmp_path, no_fitting):
    config = make_config(
        data='visits = "visits.csv"\nsubjects = "subjects.csv"\noutcome = "fvc"'
    )
    msg = _run_fails(config, tmp_path / "out")
    assert "key data.outcome: column 'fvc' is not in the data" in msg


def test_foreign_output_folder_is_never_replaced(make_config, tmp_path, no_fitting):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not empty and was not written by alsprog"):
        run(make_config(), out)
    assert (out / "thesis.tex").read_text() == "precious"


def test_check_only_writes_nothing(make_config, tmp_path):
    config = make_config()
    cfg = check(config, tmp_path / "out")
    assert [m.name for m in cfg.models] == ["lmm"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        (
            "alsfrs_r_total ~ months * onset_site + (months | subject_id)",
            ["alsfrs_r_total", "months", "onset_site", "subject_id"],
        ),
        ("y ~ 1 + (1 | site) + (0 + t | site)", ["site", "t", "y"]),
        ("y ~ np.log(x) + C(g)", ["g", "x", "y"]),
    ],
)
def test_formula_variables(formula, expected):
    assert formula_variables(formula) == expected


def test_joint_model_event_columns_are_checked(make_config, tmp_path, no_fitting):
    config = make_config(
        models__j='type = "joint"\n'
        'formula = "alsfrs_r_total ~ months + (months | subject_id)"\n'
        'event_formula = "delta_fs + weight"\nevent_time = "death_months"'
    )
    msg = _run_fails(config, tmp_path / "out")
    assert "key models.j.event_formula: 'delta_fs + weight' names unknown" in msg
    assert "unknown column(s) 'weight'" in msg
    assert "key models.j.event_time: column 'death_months' is not in the data" in msg
    assert "2 problems" in msg


def _own_names(folder) -> None:
    """Rename the tables' subject column to a clinic's own `patient`, visit_date to
    `seen_on` (the files of the tiny demo, rewritten)."""
    import pandas as pd

    for name, cols in (
        ("visits.csv", {"subject_id": "patient", "visit_date": "seen_on"}),
        ("subjects.csv", {"subject_id": "patient"}),
    ):
        table = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
        table.rename(columns=cols).to_csv(folder / name, index=False)


def test_rename_maps_the_columns_before_every_check(
    make_config, tiny_inputs, tmp_path, no_fitting
):
    _own_names(tiny_inputs)
    # without the mapping: every table problem is about the missing dictionary names
    msg = _run_fails(make_config(), tmp_path / "out")
    assert "column 'subject_id' is missing (required in the visits table)" in msg
    assert "column 'subject_id' is missing (required in the subjects table)" in msg
    data = 'visits = "visits.csv"\nsubjects = "subjects.csv"\n'
    config = make_config(
        data=data + 'rename = {patient = "subject_id", seen_on = "visit_date"}'
    )
    cfg = check(config, tmp_path / "out")  # tables, cross-table and formulas all pass
    assert cfg.data.rename == {"patient": "subject_id", "seen_on": "visit_date"}
    from alsprog.report._check import check_run

    res = check_run(cfg, tmp_path / "out")
    assert res.problems == []
    assert {"subject_id", "visit_date", "months"} <= set(res.table.columns)
    assert "patient" not in res.table.columns
    # the inputs are never rewritten: the files keep their own names
    assert (tiny_inputs / "visits.csv").read_text().startswith("patient,seen_on,")


def test_rename_clashing_with_a_column_the_table_has(
    make_config, tiny_inputs, tmp_path, no_fitting
):
    data = 'visits = "visits.csv"\nsubjects = "subjects.csv"\n'
    config = make_config(data=data + 'rename = {group = "onset_site"}')
    msg = _run_fails(config, tmp_path / "out")
    assert (
        "column 'group' is renamed to 'onset_site' (`rename`), but the table has "
        "'onset_site' already: drop one of them or the mapping"
    ) in msg
