"""The run config: parsing, defaults, round trip, and every problem listed at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alsprog.report import ConfigError, config_reference, dump_config, load_config
from alsprog.report._schema import SCHEMA

README = Path(__file__).resolve().parents[2] / "README.md"


def _tables(folder: Path) -> None:
    (folder / "v.csv").write_text("subject_id,months,alsfrs_r_total\nP1,0,40\n")
    (folder / "s.csv").write_text("subject_id,group\nP1,als\n")


def _write(folder: Path, text: str) -> Path:
    p = folder / "run.toml"
    p.write_text(text)
    return p


GOOD = """
[run]
title = "my study"
seed = 7

[data]
visits = "v.csv"
subjects = "s.csv"

[models.lmm]
type = "mixed"
formula = "alsfrs_r_total ~ months + (months | subject_id)"

[models.bl]
type = "bayesian"
kind = "sigmoid"
chains = 2
draws = 300

[design]
slowing = [0.25, 0.5]
retention = [1, 0.9, 0.8, 0.75, 0.7]
"""


def test_good_config_parses_with_defaults(tmp_path):
    _tables(tmp_path)
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.run.title == "my study" and cfg.run.seed == 7
    assert cfg.data.visits == tmp_path / "v.csv"  # relative to the config file
    assert [m.name for m in cfg.models] == ["lmm", "bl"]
    bl = cfg.model("bl")
    assert (bl.kind, bl.chains, bl.draws, bl.tune) == ("sigmoid", 2, 300, 1000)
    assert cfg.design.slowing == (0.25, 0.5)
    assert cfg.design.retention == (1.0, 0.9, 0.8, 0.75, 0.7)
    assert cfg.forecast.horizons == (6.0, 12.0)  # default
    assert cfg.biomarkers.cv == "subject"
    assert cfg.imaging is None


def test_paths_resolve_relative_to_the_config_not_the_cwd(tmp_path, monkeypatch):
    sub = tmp_path / "study"
    sub.mkdir()
    _tables(sub)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(_write(sub, GOOD))
    assert cfg.data.subjects == sub / "s.csv"


def test_dump_reads_back_to_the_same_config(tmp_path):
    _tables(tmp_path)
    cfg = load_config(_write(tmp_path, GOOD))
    text = dump_config(cfg, relative_to=tmp_path)
    assert 'visits = "v.csv"' in text
    again = load_config(_write(tmp_path, text))
    assert again == cfg


def test_every_problem_is_listed_at_once(tmp_path):
    _tables(tmp_path)
    text = """
[run]
seed = -1
colour = "blue"

[data]
visits = "missing.csv"
subjects = 3

[models.lmm]
type = "mixed"
chains = 2

[models.b]
type = "bayesian"
kind = "quadratic"
draws = 0

[forecast]
level = 95
models = ["nope"]

[design]
model = "b"
retention = [1, 0.9]

[biomarkers]
cv = 1

[plots]
x = 1
"""
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    msg = str(info.value)
    expected = [
        "key run.seed: -1 is outside [0, inf]",
        "key run.colour: unknown key (valid keys: inputs, n_jobs, out, seed, title)",
        "key data.visits: 'missing.csv' does not exist",
        "key data.subjects: 3 is not a path",
        "key models.lmm.chains: applies to bayesian models only, not type 'mixed'",
        "key models.lmm.formula: is required for a mixed model",
        "key models.b.kind: 'quadratic' is not one of 'linear', 'sigmoid'",
        "key models.b.draws: 0 is outside [1, inf]",
        "key forecast.level: 95 is outside (0, 1)",
        "key forecast.models: 'nope' is not a model in [models]",
        "key design.model: 'b' is a bayesian model",
        "key design.retention: has 2 values for 5 visits",
        "key biomarkers.cv: 1 folds: need at least 2",
        "key plots: unknown section",
    ]
    for line in expected:
        assert line in msg, line
    assert f"{len(expected)} problems" in msg
    assert len(info.value.problems) == len(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[data\nvisits=", "not valid TOML"),
        ('[data]\nvisits = "v.csv"\n', "key data.subjects: is required but missing"),
        ("[run]\nseed = 1\n", "key data: the [data] section is required"),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n[models."1bad"]\n'
            'type = "mixed"\n',
            "model name '1bad' must start with a letter",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\nimaging = "v.csv"\n'
            '[imaging]\nroot = "."\natlas = "s.csv"\n',
            "key data.imaging: give either an imaging-features table",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n[design]\n'
            'methods = ["edland", "magic"]\n',
            "key design.methods: ['magic'] not among 'edland', 'diggle', 'liu_liang'",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "."\n',
            "key data.subjects: '.' is not a file",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n[models.a]\n'
            'type = "bayesian"\n[models.a_recalibrated]\ntype = "bayesian"\n'
            '[forecast]\nrecalibrate = "band"\n',
            "key forecast.recalibrate: the recalibrated copy of 'a' would be named "
            "'a_recalibrated'",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n[models.j]\n'
            'type = "joint"\n',
            "key models.j.formula: is required for a joint model",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n[models.j]\n'
            'type = "joint"\nformula = "y ~ months + (months | subject_id)"\n'
            "reml = false\n",
            "applies to mixed models only, not type 'joint'",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n[models.m]\n'
            'type = "mixed"\nformula = "y ~ months + (months | subject_id)"\n'
            "n_intervals = 4\n",
            "applies to joint models only, not type 'mixed'",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n[forecast]\n'
            'recalibrate = "yes"\n',
            "key forecast.recalibrate: 'yes' is not one of 'none', 'band', 'shift'",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n[course]\n'
            'outcomes = ["alsfrs_r_bulbar", "alsfrs_r_total"]\n',
            "key course.outcomes: 'alsfrs_r_total' has no known (normal, floor) range",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n[course]\n'
            'outcomes = ["alsfrs_r_bulbar"]\n',
            "key course.outcomes: needs two or more distinct columns",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n[course]\n'
            'offsets = ["fa_cst_left"]\n',
            "key course.offsets: 'fa_cst_left' is not one of course.outcomes",
        ),
        (
            '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n[course]\n'
            "max_patients = -1\n",
            "key course.max_patients: -1 is outside [0, inf]",
        ),
    ],
)
def test_each_problem_names_key_and_value(tmp_path, text, message):
    _tables(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(_write(tmp_path, text))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml")


def test_readme_documents_every_key():
    readme = README.read_text()
    ref = config_reference()
    for section, keys in SCHEMA.items():
        head = "[models.NAME]" if section == "models" else f"[{section}]"
        assert f"`{head}`" in ref
        for k in keys:
            assert f"| `{k.name}` |" in ref
    # the README carries the generated reference verbatim
    assert ref.strip() in readme


def test_readme_example_config_is_valid(tmp_path):
    from alsprog.report._config import parse_config

    block = re.search(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    path = _write(tmp_path, block.group(1))
    cfg, problems = parse_config(path)
    # only the example's data files are missing here
    assert cfg is not None
    assert all("does not exist" in p.message for p in problems), problems
    assert {p.message.split(":")[0] for p in problems} == {
        "key data.visits",
        "key data.subjects",
        "key imaging.root",
        "key imaging.atlas",
        "key connectivity.root",
        "key connectivity.atlas",
    }
    assert [m.name for m in cfg.models] == [
        "lmm",
        "bayes_linear",
        "bayes_sigmoid",
        "lcmm",
    ]


# ------------------------------------------------ issue 18: hints and mappings
DATA = '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[run]\nn_job = 2\n" + DATA,
            "key run.n_job: unknown key (did you mean 'n_jobs'? valid keys: inputs, "
            "n_jobs, out, seed, title)",
        ),
        (
            DATA + "[desgin]\nslowing = [0.3]\n",
            "key desgin: unknown section (did you mean [design]? valid sections:",
        ),
        (
            DATA + '[models.b]\ntype = "bayesian"\ndraw = 10\n',
            "key models.b.draw: unknown key (did you mean 'draws'?",
        ),
        (
            DATA + "[forecast]\nhorizon = [6]\n",
            "key forecast.horizon: unknown key (did you mean 'horizons'?",
        ),
        (
            DATA + '[models.m]\ntype = "mixd"\n',
            "key models.m.type: 'mixd' is not one of 'mixed', 'bayesian', 'joint', "
            "'mmrm', 'latent_class', 'nonlinear'; "
            "did you mean 'mixed'?",
        ),
        (
            DATA + '[forecast]\nbaselines = ["delta-fs"]\n',
            "key forecast.baselines: ['delta-fs'] not among 'delta_fs', "
            "'patient_ols', 'random_forest'; did you mean 'delta_fs'?",
        ),
    ],
)
def test_unknown_key_suggests_the_nearest_valid_one(tmp_path, text, message):
    _tables(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        (
            "design",
            "slowing = [25]",
            "key design.slowing: [25] outside (0, 1] (in [25]); did you mean [0.25]? "
            "(a fraction, not a percentage)",
        ),
        (
            "design",
            "slowing = [25, 30, 0.5]",
            "did you mean [0.25, 0.3, 0.5]?",
        ),
        (
            "forecast",
            "level = 90",
            "key forecast.level: 90 is outside (0, 1); did you mean 0.9? (a fraction, "
            "not a percentage)",
        ),
        (
            "forecast",
            "test_fraction = 20",
            "test_fraction: 20 is outside (0, 1); did you mean 0.2?",
        ),
        (
            "design",
            "power = 80",
            "key design.power: 80 is outside (0, 1); did you mean 0.8?",
        ),
        (
            "report",
            "level = 95",
            "key report.level: 95 is outside (0, 1); did you mean 0.95?",
        ),
        (
            "design",
            "retention = [100, 90, 80, 70, 60]",
            "did you mean [1, 0.9, 0.8, 0.7, 0.6]?",
        ),
    ],
)
def test_fraction_given_as_a_percentage_gets_a_hint(tmp_path, section, line, message):
    _tables(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, f"{DATA}[{section}]\n{line}\n"))
    assert message in str(info.value)
    assert len(info.value.problems) == 1


@pytest.mark.parametrize("line", ["alpha = 1.5", "level = 150", "power = -5"])
def test_no_percentage_hint_where_it_would_not_help(tmp_path, line):
    _tables(tmp_path)
    section = "forecast" if line.startswith("level") else "design"
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, f"{DATA}[{section}]\n{line}\n"))
    assert "is outside (0, 1)" in str(info.value)
    assert "did you mean" not in str(info.value)


def test_rename_is_read_checked_and_written_back(tmp_path):
    _tables(tmp_path)
    text = DATA + 'rename = {patient = "subject_id", "visit month" = "months"}\n'
    cfg = load_config(_write(tmp_path, text))
    assert cfg.data.rename == {"patient": "subject_id", "visit month": "months"}
    dumped = dump_config(cfg, relative_to=tmp_path)
    assert 'rename = {"patient" = "subject_id", "visit month" = "months"}' in dumped
    assert load_config(_write(tmp_path, dumped)) == cfg


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            '{patient = "subjectid"}',
            "key data.rename: 'patient' -> 'subjectid': 'subjectid' is not a column of "
            "the data dictionary; did you mean 'subject_id'?",
        ),
        (
            '{patient = "subject_id", id = "subject_id"}',
            "key data.rename: 'patient' and 'id' are both renamed to 'subject_id'; "
            "keep one",
        ),
        (
            '{months = "months"}',
            "key data.rename: 'months' -> 'months': renames the column to itself",
        ),
        ("{patient = 3}", "'patient' -> 3: the new name must be a non-empty string"),
        ('"patient"', "key data.rename: 'patient' is not a table of strings"),
    ],
)
def test_a_bad_rename_is_a_config_problem(tmp_path, mapping, message):
    _tables(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, f"{DATA}rename = {mapping}\n"))
    assert message in str(info.value)
