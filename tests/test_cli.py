"""The command line, called in-process through ``main``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from tablefiles import VISITS_HEADER, valid_visits_rows, write_csv

from alsprog import __version__
from alsprog.cli import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"alsprog {__version__}"


@pytest.mark.parametrize("command", [[], ["simulate"], ["validate"], ["demo"], ["run"]])
def test_usage_errors_exit_2(command, capsys):
    assert main(command) == 2


@pytest.mark.parametrize("command", ["simulate", "validate", "demo", "run"])
def test_each_subcommand_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert "usage: alsprog " + command in capsys.readouterr().out


def test_validate_good_files(visits_csv, subjects_csv, capsys):
    assert main(["validate", str(visits_csv), str(subjects_csv)]) == 0
    out = capsys.readouterr().out
    assert f"ok: {visits_csv} (visits, 5 rows)" in out
    assert "ok: tables agree with each other" in out


def test_validate_bad_file_prints_problems_and_exits_1(tmp_path, capsys):
    rows = valid_visits_rows()
    rows[2][VISITS_HEADER.index("alsfrs_r_q7")] = 5
    path = write_csv(tmp_path / "visits.csv", VISITS_HEADER, rows)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 4, subject P001, column alsfrs_r_q7: 5 is outside 0-4" in err
    assert "alsprog: 1 problem found" in err


def test_validate_cross_table_problems(visits_csv, tmp_path, capsys):
    s = write_csv(tmp_path / "s.csv", ["subject_id", "group"], [["P001", "als"]])
    assert main(["validate", str(visits_csv), str(s)]) == 1
    assert "visit for subject 'P002', which is not in the subjects table" in (
        capsys.readouterr().err
    )


def test_missing_file_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "none.csv")]) == 1
    assert "the file does not exist" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "alsprog.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("alsprog ")


def test_import_is_light():
    code = (
        "import sys, alsprog, alsprog.cli, alsprog.data; "
        "heavy = [m for m in ('pymc', 'jax', 'nibabel', 'matplotlib', 'statsmodels') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# `alsprog demo` runs the whole pipeline: tested on a tiny cohort in
# tests/report/test_report_run.py (outputs) and test_report_rerun.py (options).


def test_simulate_is_reproducible(tmp_path):
    for name in ("a", "b"):
        args = ["simulate", "--out", str(tmp_path / name), "--n-patients", "8"]
        assert main([*args, "--seed", "3", "--format", "parquet"]) == 0
    for table in ("subjects", "visits", "imaging", "truth"):
        a = (tmp_path / "a" / f"{table}.parquet").read_bytes()
        assert a == (tmp_path / "b" / f"{table}.parquet").read_bytes()


def test_simulate_bad_argument_is_a_usage_error(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path / "x"), "--n-patients", "-3"]) == 2
    assert "`n_patients` must be an integer >= 0; got -3." in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_power_prints_table(capsys):
    assert (
        main(
            ["power", "--slowing", "0.25", "0.3", "--months", "0", "3", "6", "9", "12"]
        )
        == 0
    )
    out = capsys.readouterr().out
    # docs/domain.md §5 ALS illustration: 3-monthly 0-12, 25 % of 0.9 -> 125.4 per arm
    assert "125.4" in out and "126" in out


def test_power_csv_and_bad_power(capsys):
    assert main(["power", "--slowing", "0.25", "--csv"]) == 0
    assert capsys.readouterr().out.startswith("method,slowing,delta,n_per_arm")
    assert main(["power", "--slowing", "0.25", "--power", "1.5"]) == 1
    assert "`power` must be in (0, 1); got 1.5." in capsys.readouterr().err


def test_features_command_extracts_simulated_maps(tmp_path, capsys):
    from alsprog.data import read_imaging
    from alsprog.simulate import simulate_cohort, write_nifti

    cohort = simulate_cohort(3, 1, months=6, seed=4)
    root = write_nifti(
        cohort, tmp_path / "deriv", shape=(20, 24, 20), seed=4, progress=False
    )
    out = tmp_path / "features.csv"
    args = [
        "features",
        "--images",
        str(root),
        "--atlas",
        str(root / "atlas" / "atlas-alsprogsim_dseg.nii.gz"),
        "--out",
        str(out),
        "--qc",
        str(tmp_path / "qc.csv"),
    ]
    assert main(args) == 0
    assert "sessions x" in capsys.readouterr().out
    feats = read_imaging(out)  # valid against the data dictionary
    merged = feats.merge(
        cohort.imaging, on=["subject_id", "session"], suffixes=("", "_t")
    )
    assert len(merged) == len(cohort.imaging)
    np.testing.assert_allclose(
        merged["fa_cst_left"], merged["fa_cst_left_t"], rtol=1e-5
    )


def test_features_empty_folder_is_an_error(tmp_path, capsys):
    assert (
        main(
            [
                "features",
                "--images",
                str(tmp_path),
                "--atlas",
                str(tmp_path / "none.nii.gz"),
                "--out",
                str(tmp_path / "f.csv"),
            ]
        )
        == 1
    )
    assert "no images named sub-<id>/ses-<id>" in capsys.readouterr().err


def test_classify_command(tmp_path, capsys):
    from alsprog.data import assemble, write_table
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(30, 20, months=0, seed=3)
    table = write_table(assemble(c.visits, c.subjects, c.imaging), tmp_path / "t.csv")
    out = tmp_path / "clf"
    args = [
        "classify",
        "--table",
        str(table),
        "--features",
        "fa_*",
        "md_*",
        "--cv",
        "4",
        "--n-permutations",
        "9",
        "--seed",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "roc_auc" in text.lower() or "auc" in text.lower()
    assert "permutation p" in text
    assert out.is_dir() and any(out.iterdir())


def test_power_from_model(tmp_path, capsys):
    from alsprog.data import assemble, write_table
    from alsprog.design import TrialDesign
    from alsprog.models import LinearMixedModel
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(150, months=12, seed=3)
    long = assemble(c.visits, c.subjects)
    table = write_table(long, tmp_path / "hist.csv")
    assert main(["power", "--from-model", str(table), "--slowing", "0.3"]) == 0
    out = capsys.readouterr().out
    # the CLI must report what the library computes from the same data
    m = LinearMixedModel("alsfrs_r_total ~ months + (months | subject_id)").fit(long)
    d = TrialDesign.from_model(m, [0, 3, 6, 9, 12], slowing=0.3)
    assert f"mean slope {d.mean_slope:.4g}" in out
    assert f"sig2_slope {d.sig2_slope:.4g}" in out
    assert f" {d.sample_size().n_per_arm_ceil} " in out


def test_power_from_saved_model(tmp_path, capsys):
    from alsprog.data import assemble
    from alsprog.design import TrialDesign
    from alsprog.models import LinearMixedModel
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(150, months=12, seed=4)
    long = assemble(c.visits, c.subjects)
    m = LinearMixedModel(
        "alsfrs_r_total ~ months * onset_site + (months | subject_id)"
    ).fit(long)
    m.save(tmp_path / "lmm.npz")
    assert (
        main(["power", "--from-model", str(tmp_path / "lmm.npz"), "--slowing", "0.3"])
        == 0
    )
    out = capsys.readouterr().out
    d = TrialDesign.from_model(m, [0, 3, 6, 9, 12], slowing=0.3)
    assert "months * onset_site" in out
    assert f"sig2_slope {d.sig2_slope:.4g}" in out
    assert f" {d.sample_size().n_per_arm_ceil} " in out
