"""Runs into existing folders, failed runs, and the `run` / `demo` commands."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from alsprog.cli import main
from alsprog.report import RunResult, run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def first_run(_tables, config_writer, tmp_path_factory):
    """One quick run; the tests below re-run into its folder, in this order."""
    import shutil

    folder = tmp_path_factory.mktemp("rerun")
    data = folder / "data"
    shutil.copytree(_tables, data)
    config = config_writer(data)
    out = folder / "results"
    result = run(config, out, progress=False)
    return config, out, result


def test_quick_run_writes_the_report(first_run):
    _, out, result = first_run
    assert result.report == out / "report.html" and result.report.is_file()
    assert result.n_figures >= 4  # cohort, trajectories, fan charts, power...
    assert "biomarkers" in result.notes  # disabled, and said so
    text = (out / "report.html").read_text()
    assert "disabled in the config" in text


def test_failed_rerun_keeps_the_earlier_results_intact(first_run, monkeypatch):
    from alsprog.report.sections import design as _stages

    config, out, _ = first_run
    before = _snapshot(out)

    def boom(state):
        raise RuntimeError("simulated crash in the design stage")

    monkeypatch.setattr(_stages, "stage_design", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(config, out, progress=False)
    assert _snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(["results", "data"])


def test_rerun_in_place_from_the_saved_config(first_run):
    _, out, _ = first_run
    old_table = (out / "table.csv").read_bytes()
    result = run(out / "config.toml", progress=False)  # run.out = "." in the copy
    assert result.out.resolve() == out.resolve()
    assert (out / "table.csv").read_bytes() == old_table  # same inputs, same seed
    assert (out / "inputs" / "visits.csv").is_file()


def test_rerun_replaces_only_an_alsprog_folder(first_run):
    """A file alsprog did not write stops the re-run (issue 17: it used to be
    deleted); without it, the run replaces exactly the files its manifest lists."""
    from alsprog._io import MANIFEST_NAME, read_manifest
    from alsprog.report import ConfigError

    config, out, _ = first_run
    (out / "stale.txt").write_text("a note of the user's")
    before = _snapshot(out)
    with pytest.raises(ConfigError, match=r"files alsprog did not write: stale\.txt"):
        run(config, out, progress=False)
    assert _snapshot(out) == before
    (out / "stale.txt").unlink()
    run(config, out, progress=False)
    manifest = read_manifest(out)
    assert manifest is not None and manifest.command == "alsprog run"
    on_disk = set(_snapshot(out)) - {MANIFEST_NAME}
    assert on_disk == set(manifest.files) and "report.html" in on_disk
    assert sorted(p.name for p in out.parent.iterdir()) == ["data", "results"]


def test_cli_run(make_config, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["--no-progress", "run", str(make_config()), "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert f"report: {out / 'report.html'}" in cap.out
    assert "[1/11] check: config, input paths, tables and formulas" in cap.err
    assert "[4/11] models:" in cap.err


def test_cli_run_lists_problems_and_exits_1(make_config, tmp_path, capsys):
    config = make_config(
        data='visits = "visits.csv"\nsubjects = "subjects.csv"\nimaging = "mri.csv"',
        models__lmm='type = "mixed"\nformula = "alsfrs_r_total ~ dose + (1 | subject_id)"',
    )
    assert main(["run", str(config), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "alsprog: error:" in err and "2 problems" in err
    assert "key data.imaging: 'mri.csv' does not exist" in err
    assert "unknown column(s) 'dose'" in err


def test_cli_run_check(make_config, capsys, tmp_path):
    assert (
        main(["run", str(make_config()), "--check", "--out", str(tmp_path / "x")]) == 0
    )
    assert "no problems (1 models)" in capsys.readouterr().out
    assert not (tmp_path / "x").exists()


def test_cli_demo_passes_its_options(monkeypatch, tmp_path, capsys):
    import alsprog.report

    seen = {}

    def fake_demo(out, **kwargs):
        seen.update(kwargs, out=out)
        kwargs["on_stage"](1, 10, "simulate", "pretending")
        return RunResult(out=Path(out), report=Path(out) / "report.html", n_figures=8)

    monkeypatch.setattr(alsprog.report, "run_demo", fake_demo)
    args = ["demo", "--out", str(tmp_path / "d"), "--n-patients", "40", "--draws", "50"]
    assert main(args) == 0
    assert seen["n_patients"] == 40 and seen["draws"] == 50 and seen["n_controls"] == 60
    assert seen["progress"] is None
    cap = capsys.readouterr()
    assert "[1/10] simulate: pretending" in cap.err
    assert "report: " in cap.out


def test_run_backtests_recalibrated_models(config_writer, tmp_path):
    """[forecast] recalibrate adds <model>_recalibrated to the backtest; too little
    data gives a note instead of losing the backtest."""
    from alsprog.data import write_table
    from alsprog.report import run
    from alsprog.simulate import simulate_cohort

    folder = tmp_path / "data"
    folder.mkdir()
    cohort = simulate_cohort(120, 0, seed=6)
    write_table(cohort.visits, folder / "visits.csv")
    write_table(cohort.subjects, folder / "subjects.csv")
    fc = 'models = ["lmm"]\nbaselines = ["delta_fs"]\nn_patients = 2\n'
    config = config_writer(folder, forecast=fc + 'recalibrate = "band"')
    run(config, tmp_path / "out", progress=False)
    b = pd.read_csv(tmp_path / "out" / "backtest.csv")
    assert {"lmm", "lmm_recalibrated", "delta_fs"} <= set(b["model"])
    rec = b[b["model"] == "lmm_recalibrated"]
    assert rec["coverage"].between(0, 1).all() and (rec["n"] > 0).all()

    few = tmp_path / "few"
    few.mkdir()
    small = simulate_cohort(20, 0, seed=6)
    write_table(small.visits, few / "visits.csv")
    write_table(small.subjects, few / "subjects.csv")
    config = config_writer(few, forecast=fc + 'recalibrate = "shift"')
    run(config, tmp_path / "out2", progress=False)
    b = pd.read_csv(tmp_path / "out2" / "backtest.csv")
    assert "lmm_recalibrated" not in set(b["model"]) and "lmm" in set(b["model"])
    assert "no recalibrated models" in (tmp_path / "out2" / "report.html").read_text()
    html = (tmp_path / "out" / "report.html").read_text()
    assert "the model's centre kept" in html


def test_run_with_a_joint_model(config_writer, tmp_path):
    """type = "joint": fitted, summarised, compared, forecast and backtested."""
    from alsprog.data import write_table
    from alsprog.report import run
    from alsprog.simulate import simulate_cohort

    folder = tmp_path / "data"
    folder.mkdir()
    cohort = simulate_cohort(150, 0, seed=7)
    write_table(cohort.visits, folder / "visits.csv")
    write_table(cohort.subjects, folder / "subjects.csv")
    config = config_writer(
        folder,
        models__j='type = "joint"\n'
        'formula = "alsfrs_r_total ~ months * delta_fs + (months | subject_id)"\n'
        'event_formula = "delta_fs"\nn_intervals = 4',
        forecast='models = ["lmm", "j"]\nbaselines = ["delta_fs"]\nn_patients = 2',
    )
    run(config, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    comp = pd.read_csv(out / "models" / "comparison.csv").set_index("model")
    assert comp.loc["j", "type"] == "joint" and bool(comp.loc["j", "converged"])
    assert comp.loc["j", "n_subjects"] == comp.loc["lmm", "n_subjects"]
    ev = pd.read_csv(out / "models" / "j_event.csv")
    assert {"delta_fs", "alpha:Intercept", "alpha:months"} == set(ev["term"])
    assert {"lmm", "j"} <= set(pd.read_csv(out / "backtest.csv")["model"])
    assert {"lmm", "j"} <= set(pd.read_csv(out / "forecasts.csv")["model"])
    html = (out / "report.html").read_text()
    assert "j: summary" in html
