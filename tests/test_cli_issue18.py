"""Issue 18 on the command line: `alsprog assemble`, global flags after the command,
alsprog's warnings once and other libraries' noise in the log, one default seed,
the config's names everywhere, column mappings and did-you-mean hints."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import warnings

import pandas as pd
import pytest

import alsprog.cli as cli
from alsprog.cli import build_parser, main
from alsprog.data import assemble, read_table, write_table
from alsprog.simulate import simulate_cohort

#: The one default seed, documented in the README and every command's --help.
DEFAULT_SEED = 2026
BLAS = "PyTensor could not link to a BLAS installation"
INPLACE = "A value is trying to be set on a copy of a DataFrame through chained assignment using an inplace method"
BLAS_LOG = "Using NumPy C-API based implementation for BLAS functions."


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Visits, subjects and imaging tables of 30 patients and 10 controls (CSV)."""
    c = simulate_cohort(30, 10, months=12, seed=3)
    folder = tmp_path_factory.mktemp("cohort")
    for name in ("visits", "subjects", "imaging"):
        write_table(getattr(c, name), folder / f"{name}.csv")
    return folder


@pytest.fixture(scope="module")
def long_csv(cohort, tmp_path_factory):
    """The assembled long table of ``cohort`` (what the library builds)."""
    out = tmp_path_factory.mktemp("long") / "table.csv"
    table = assemble(
        cohort / "visits.csv", cohort / "subjects.csv", cohort / "imaging.csv"
    )
    return write_table(table, out)


def _files(cohort):
    return [
        "--visits",
        str(cohort / "visits.csv"),
        "--subjects",
        str(cohort / "subjects.csv"),
        "--imaging",
        str(cohort / "imaging.csv"),
    ]


# ------------------------------------------------------------ 4: assemble
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_assemble_writes_the_long_table_of_the_library(cohort, tmp_path, capsys, fmt):
    out = tmp_path / f"table.{fmt}"
    assert main(["assemble", *_files(cohort), "--out", str(out)]) == 0
    expected = assemble(
        cohort / "visits.csv", cohort / "subjects.csv", cohort / "imaging.csv"
    )
    if fmt == "csv":  # the same bytes as write_table of the library's table
        ref = write_table(expected, tmp_path / "expected.csv")
        assert out.read_bytes() == ref.read_bytes()
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(out), expected)
    per = expected.drop_duplicates("subject_id")
    n_als = int((per["group"] == "als").sum())
    n_img = int(expected["session"].notna().sum())
    text = capsys.readouterr().out
    assert (
        f"assembled {len(expected)} visits of {len(per)} subjects ({n_als} ALS, "
        f"{len(per) - n_als} controls); {n_img} imaging sessions joined within 45 "
        "days, 0 left out" in text
    )
    # and it is the table the other commands read
    table, kind = read_table(out)
    assert kind == "long" and len(table) == len(expected)


def test_assemble_never_writes_over_an_input(cohort, capsys):
    visits = cohort / "visits.csv"
    before = visits.read_bytes()
    assert main(["assemble", *_files(cohort), "--out", str(visits)]) == 1
    assert "is the input --visits" in capsys.readouterr().err
    assert visits.read_bytes() == before


def test_assemble_out_must_be_a_table_file(cohort, tmp_path, capsys):
    assert main(["assemble", *_files(cohort), "--out", str(tmp_path / "t.txt")]) == 2
    assert "must end in .csv or .parquet" in capsys.readouterr().err
    assert not (tmp_path / "t.txt").exists()


@pytest.mark.parametrize("command", ["forecast", "backtest", "classify", "power"])
def test_raw_visits_file_names_the_assemble_command(cohort, tmp_path, capsys, command):
    visits = str(cohort / "visits.csv")
    args = {
        "forecast": ["--train", visits, "--history", visits, "--at", "6"]
        + ["--out", str(tmp_path / "f.csv")],
        "backtest": ["--data", visits, "--out", str(tmp_path / "b.csv")],
        "classify": ["--table", visits, "--out", str(tmp_path / "clf")],
        "power": ["--from-model", visits, "--slowing", "0.3"],
    }[command]
    assert main([command, *args]) == 1
    err = capsys.readouterr().err
    assert "this looks like a visits table" in err
    assert "alsprog assemble --visits VISITS --subjects SUBJECTS" in err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------- 6: global flags
def test_global_flags_count_before_and_after_the_command():
    parser = build_parser()
    args = cli._parse_args(parser, ["-v", "power", "--slowing", "0.3", "-v", "-q"])
    assert (args.verbose, args.quiet, args.no_progress, args.debug) == (
        2,
        True,
        False,
        False,
    )
    args = cli._parse_args(parser, ["power", "--slowing", "0.3", "--no-progress"])
    assert (args.verbose, args.quiet, args.no_progress) == (0, False, True)
    args = cli._parse_args(parser, ["--quiet", "power", "--slowing", "0.3"])
    assert args.quiet is True  # a flag before the command is kept


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_after_the_command_reraises(where):
    cmd = ["power", "--slowing", "0.25", "--power", "1.5"]
    argv = ["--debug", *cmd] if where == "before" else [*cmd, "--debug"]
    with pytest.raises(ValueError, match=r"`power` must be in \(0, 1\); got 1.5"):
        main(argv)


def test_quiet_and_verbose_after_the_command(long_csv, tmp_path, capsys):
    table, _ = read_table(long_csv, kind="long")
    pat = table[table["group"] == "als"]
    train = write_table(pat[pat["subject_id"] > "P0010"], tmp_path / "train.csv")
    new = pat[(pat["subject_id"] <= "P0010") & (pat["months"] < 4)]
    history = write_table(new, tmp_path / "history.csv")
    common = ["--train", str(train), "--history", str(history), "--at", "6"]
    assert main(["forecast", *common, "--out", str(tmp_path / "a.csv")]) == 0
    assert "fitting lmm on" in capsys.readouterr().err
    assert main(["forecast", *common, "--out", str(tmp_path / "b.csv"), "-q"]) == 0
    assert "fitting lmm on" not in capsys.readouterr().err
    assert main(["power", "--from-model", str(long_csv), "--slowing", "0.3", "-v"]) == 0
    assert " alsprog.models.lmm._model INFO: " in capsys.readouterr().err


@pytest.mark.parametrize("command", ["simulate", "assemble", "forecast", "run"])
def test_each_subcommand_help_lists_the_global_flags(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "global options (before or after the command):" in out
    for flag in ("-v, --verbose", "-q, --quiet", "--no-progress", "--debug"):
        assert flag in out


# ------------------------------------------------------ 7: what is printed
def test_alsprog_warning_is_printed_once_in_its_own_words(long_csv, capsys):
    # the long table has control rows without ALSFRS-R: the fit drops them (DataWarning)
    assert main(["power", "--from-model", str(long_csv), "--slowing", "0.3"]) == 0
    err = capsys.readouterr().err
    assert err.count("alsprog: warning: ") == 1
    assert "Dropped" in err and "rows with a missing value" in err
    assert ".py:" not in err and "DataWarning" not in err


@pytest.fixture
def noisy_libraries(monkeypatch):
    """Make ``TrialDesign.sample_size_table`` raise the noise other libraries make:
    PyTensor's BLAS warning and log line (through PyTensor's own stderr handler),
    pandas' deprecation raised inside arviz."""
    import sys

    from alsprog.design import TrialDesign

    original = TrialDesign.sample_size_table
    pytensor_log = logging.getLogger("pytensor")
    own = logging.StreamHandler(sys.stderr)  # as pytensor adds on import
    pytensor_log.addHandler(own)

    def noisy(self, *args, **kwargs):
        warnings.warn_explicit(
            BLAS, UserWarning, "site-packages/pytensor/link/c/cmodule.py", 2986
        )
        warnings.warn_explicit(
            INPLACE, FutureWarning, "site-packages/arviz/data/base.py", 123
        )
        logging.getLogger("pytensor.tensor.blas").warning(BLAS_LOG)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TrialDesign, "sample_size_table", noisy)
    yield own
    pytensor_log.removeHandler(own)


def test_other_libraries_noise_goes_to_the_log(noisy_libraries, capsys):
    assert main(["power", "--slowing", "0.3"]) == 0
    cap = capsys.readouterr()
    assert "sample size per arm" in cap.out
    for noise in (BLAS, "inplace", "BLAS functions", "cmodule.py"):
        assert noise not in cap.err
    assert cap.err == ""
    # PyTensor's own handler is back once the command is done
    assert noisy_libraries in logging.getLogger("pytensor").handlers
    assert main(["power", "--slowing", "0.3", "-v"]) == 0
    err = capsys.readouterr().err
    assert (
        f"alsprog.third_party DEBUG: UserWarning: {BLAS} "
        "(site-packages/pytensor/link/c/cmodule.py:2986)" in err
    )
    assert f"alsprog.third_party DEBUG: FutureWarning: {INPLACE}" in err
    assert f"pytensor.tensor.blas WARNING: {BLAS_LOG}" in err
    assert err.count(BLAS) == 1 and err.count(BLAS_LOG) == 1


QUICK_RUN = """
[run]
seed = 1
[data]
visits = "visits.csv"
subjects = "subjects.csv"
rename = {patient = "subject_id"}
[models.lmm]
type = "mixed"
formula = "alsfrs_r_total ~ months + (months | subject_id)"
[forecast]
models = ["lmm"]
baselines = ["delta_fs"]
n_patients = 2
[design]
n_sims = 0
slowing = [0.3]
[biomarkers]
enabled = false
[report]
n_subjects = 2
"""


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One `alsprog run` of a mixed model over tables whose subject column is called
    `patient`, with the design stage raising alsprog's and other libraries' warnings."""
    from alsprog.report.sections import design as _stages

    folder = tmp_path_factory.mktemp("run")
    c = simulate_cohort(30, 0, seed=5)
    for name in ("visits", "subjects"):
        table = getattr(c, name).rename(columns={"subject_id": "patient"})
        write_table(table, folder / f"{name}.csv")
    (folder / "run.toml").write_text(QUICK_RUN)
    original = _stages.stage_design

    def noisy_design(s):
        from alsprog.errors import DataWarning

        for _ in range(2):
            warnings.warn("alsprog's own note on the design", DataWarning, stacklevel=2)
        warnings.warn_explicit(
            BLAS, UserWarning, "site-packages/pytensor/link/c/cmodule.py", 2986
        )
        logging.getLogger("pytensor.tensor.blas").warning(BLAS_LOG)
        return original(s)

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_stages, "stage_design", noisy_design)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            config = str(folder / "run.toml")
            code = main(["run", config, "--out", str(folder / "res"), "--no-progress"])
    assert code == 0, err.getvalue()
    return folder / "res", out.getvalue(), err.getvalue()


@pytest.mark.slow  # one whole run; heavy for the quick tier; CI runs the slow tier
def test_run_prints_alsprog_warnings_once_and_logs_the_rest(quick_run):
    res, out, err = quick_run
    assert (
        err.count("alsprog: warning: [design] alsprog's own note on the design (x2)")
        == 1
    )
    assert BLAS not in err and BLAS_LOG not in err
    log = (res / "run.log").read_text()
    assert "warning [design] alsprog's own note on the design (x2)" in log
    assert f"library warning [design] UserWarning: {BLAS} (cmodule.py:2986)" in log
    assert f"library log [design] pytensor.tensor.blas WARNING: {BLAS_LOG}" in log
    n = re.search(r"(\d+) warning\(s\) and log record\(s\) of other libraries", out)
    assert n is not None and int(n.group(1)) >= 2
    html = (res / "report.html").read_text()
    assert "own note on the design" in html and BLAS not in html


# -------------------------------------------------------------- 10: seeds
@pytest.mark.parametrize(
    "command", ["simulate", "classify", "forecast", "backtest", "demo"]
)
def test_every_random_command_defaults_to_one_documented_seed(command, capsys):
    from alsprog._random import DEFAULT_SEED as seed
    from alsprog.report import run_demo
    from alsprog.report._config import RunSettings
    from alsprog.report._schema import SCHEMA

    assert seed == DEFAULT_SEED
    assert DEFAULT_SEED == 2026
    assert RunSettings().seed == DEFAULT_SEED
    assert next(k for k in SCHEMA["run"] if k.name == "seed").default == DEFAULT_SEED
    assert run_demo.__kwdefaults__["seed"] == DEFAULT_SEED
    needed = {
        "simulate": ["--out", "x"],
        "demo": ["--out", "x"],
        "classify": ["--table", "t", "--out", "o"],
        "forecast": ["--train", "a", "--history", "b", "--at", "6", "--out", "c"],
        "backtest": ["--simulate", "10"],
    }[command]
    assert build_parser().parse_args([command, *needed]).seed == DEFAULT_SEED
    assert main([command, "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert f"({DEFAULT_SEED}; the same seed gives the same numbers)" in shown


def test_simulate_default_seed_is_fixed_printed_and_recorded(tmp_path, capsys):
    for name in ("a", "b"):
        assert (
            main(["simulate", "--out", str(tmp_path / name), "--n-patients", "6"]) == 0
        )
        assert f"(seed {DEFAULT_SEED})" in capsys.readouterr().out
    a, b = tmp_path / "a", tmp_path / "b"
    for table in ("subjects", "visits", "truth"):
        assert (a / f"{table}.csv").read_bytes() == (b / f"{table}.csv").read_bytes()
    manifest = json.loads((a / ".alsprog-manifest.json").read_text())
    assert manifest["command"] == (
        "alsprog simulate --n-patients 6 --n-controls 0 --months 18 --seed 2026 "
        "--format csv"
    )


def test_classify_seed_and_output_names(long_csv, tmp_path, capsys):
    args = ["classify", "--table", str(long_csv), "--features", "fa_*", "--cv", "3"]
    args += ["--n-permutations", "9"]
    for name in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
        assert f"seed {DEFAULT_SEED}; results in" in capsys.readouterr().out
    a = tmp_path / "a"
    assert sorted(p.name for p in a.iterdir()) == [
        ".alsprog-manifest.json",
        "classifier.csv",
        "classifier.json",
        "classifier_folds.csv",
        "classifier_predictions.csv",
        "roc.csv",
    ]
    for f in ("classifier.csv", "classifier_folds.csv", "classifier_predictions.csv"):
        assert (a / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert pd.read_csv(a / "classifier.csv").columns[0] == "metric"  # as run's
    manifest = json.loads((a / ".alsprog-manifest.json").read_text())
    assert manifest["command"].endswith("--n-permutations 9 --seed 2026")


@pytest.mark.slow  # one whole run; heavy for the quick tier; CI runs the slow tier
def test_run_records_its_seed(quick_run):
    res, out, _ = quick_run
    assert "  seed: 1 (run.seed; every step's seed derives from it)" in out
    assert (
        "seed 1 (run.seed), from which every step's seed derives; seeds: "
        in (res / "run.log").read_text()
    )


# -------------------------------------------------------------- 11: names
def test_backtest_takes_and_writes_the_configs_model_names(long_csv, tmp_path, capsys):
    out = tmp_path / "bt.csv"
    args = ["backtest", "--data", str(long_csv), "--horizons", "6", "--out", str(out)]
    assert main([*args, "--models", "lmm", "delta_fs", "patient_ols"]) == 0
    assert set(pd.read_csv(out)["model"]) >= {"lmm", "delta_fs", "patient_ols"}
    assert "note" not in capsys.readouterr().err
    # the old spelling is read, with a note
    assert main([*args, "--models", "delta-fs"]) == 0
    assert "delta_fs" in set(pd.read_csv(out)["model"])
    assert (
        "alsprog: note: model name 'delta-fs' is now spelled 'delta_fs', as in the "
        "config and the output tables" in capsys.readouterr().err
    )


def test_power_takes_the_configs_design_names(capsys):
    config_names = ["--visit-months", "0", "6", "12", "--methods", "edland", "diggle"]
    assert main(["power", "--slowing", "0.3", *config_names, "--csv"]) == 0
    by_config = capsys.readouterr().out
    short = ["--months", "0", "6", "12", "--method", "edland", "diggle"]
    assert main(["power", "--slowing", "0.3", *short, "--csv"]) == 0
    assert by_config == capsys.readouterr().out
    assert by_config.count("\n") == 3  # header, edland, diggle


def test_classify_harmonize_choices_as_in_the_config():
    parse = build_parser().parse_args
    argv = ["classify", "--table", "t.csv", "--out", "o"]
    assert parse(argv).harmonize == "none"
    assert parse([*argv, "--harmonize", "none"]).harmonize == "none"
    assert parse([*argv, "--harmonize", "combat"]).harmonize == "combat"


@pytest.mark.slow  # one whole run; heavy for the quick tier; CI runs the slow tier
def test_figures_are_named_by_content(quick_run):
    from alsprog.report._figures import FigureOut, figure_files

    res, _, _ = quick_run
    names = sorted(p.name for p in (res / "figures").glob("*.png"))
    assert {"cohort_spaghetti.png", "power_curve.png"} <= set(names)
    assert not any(n[0].isdigit() for n in names)
    figs = [FigureOut(n, "s", "t", "c", b"") for n in ("power_curve", "classifier_roc")]
    assert figure_files(figs) == [
        "figures/power_curve.png",
        "figures/classifier_roc.png",
    ]


@pytest.mark.slow  # one whole run; heavy for the quick tier; CI runs the slow tier
def test_summary_tables_have_one_name_per_content(quick_run):
    res, _, _ = quick_run
    names = sorted(p.name for p in (res / "models").glob("lmm_*.csv"))
    assert names == ["lmm_fixed.csv", "lmm_random.csv", "lmm_scaled_residuals.csv"]


# ------------------------------------------------- 13: kinds and mappings
def _clinic_table(tmp_path):
    """A long table in a clinic's own names: `patient`, `visit_month`."""
    path = tmp_path / "clinic.csv"
    path.write_text(
        "patient,visit_month,alsfrs_r_total,group,onset_site\n"
        "P1,0,40,als,bulbar\nP1,3,38,als,bulbar\nP2,0,44,als,spinal\n"
    )
    return path


def test_validate_says_what_kind_it_read_and_the_columns_found(tmp_path, capsys):
    path = _clinic_table(tmp_path)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{path}: read as a long table, guessed from its columns (visit columns "
        "(alsfrs_r_total) and subject columns (group, onset_site)); --kind "
        "visits|subjects|imaging|long chooses another"
    ) in err
    assert (
        "  columns found: patient, visit_month, alsfrs_r_total, group, onset_site"
        in err
    )
    assert "column 'subject_id' is missing (required in the long-format table)" in err
    assert "map it: --rename YOURS=subject_id" in err


def test_validate_with_a_column_mapping(tmp_path, capsys):
    path = _clinic_table(tmp_path)
    argv = ["validate", str(path), "--rename", "patient=subject_id"]
    assert main([*argv, "visit_month=months"]) == 0
    assert f"ok: {path} (long, 3 rows)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (
            ["patient=subjectid"],
            "`--rename`: 'patient' -> 'subjectid': 'subjectid' is not a column of the "
            "data dictionary; did you mean 'subject_id'?",
        ),
        (["patient"], "'patient' is not OLD=NEW (e.g. patient=subject_id)"),
        (
            ["patient=subject_id", "id=subject_id"],
            "'patient' and 'id' are both renamed to 'subject_id'; keep one",
        ),
        (
            ["patient=subject_id", "patient=months"],
            "`--rename`: 'patient' is mapped more than once.",
        ),
    ],
)
def test_the_mapping_itself_is_checked(tmp_path, capsys, pairs, message):
    path = _clinic_table(tmp_path)
    assert main(["validate", str(path), "--rename", *pairs]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (
            ["power", "--slowing", "25"],
            "25 is not a fraction in (0, 1]; did you mean 0.25?",
        ),
        (["power", "--slowing", "0.3", "--power", "80"], "did you mean 0.8?"),
        (
            ["forecast", "--level", "90"],
            "90 is not a fraction in (0, 1); did you mean 0.9?",
        ),
        (["backtest", "--test-fraction", "20"], "did you mean 0.2?"),
        (["power", "--slowing", "0.3", "--retention", "1", "90"], "did you mean 0.9?"),
    ],
)
def test_fraction_given_as_a_percentage(argv, hint, capsys):
    assert main(argv) == 2
    assert hint in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["simulat", "--out", "x"], "invalid choice: 'simulat'"),
        (
            ["classify", "--table", "t.csv", "--out", "o", "--njobs", "2"],
            "--njobs: did you mean --n-jobs?",
        ),
        (
            ["power", "--slowing", "0.3", "--alpah", "0.1"],
            "--alpah: did you mean --alpha?",
        ),
        (["forecast", "--model", "bayes_liner"], "did you mean 'bayes_linear'?"),
    ],
)
def test_unknown_options_and_choices_suggest_the_nearest(argv, hint, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert hint in err
    if argv[0] == "simulat":
        assert "did you mean 'simulate'?" in err
