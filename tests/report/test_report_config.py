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
    }
    assert [m.name for m in cfg.models] == ["lmm", "bayes_linear", "bayes_sigmoid"]
