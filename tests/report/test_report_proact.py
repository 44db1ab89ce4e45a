"""``alsprog run`` and ``alsprog import`` on a PRO-ACT export (issue 21)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from alsprog.cli import main
from alsprog.report import run
from alsprog.report._config import load_config
from alsprog.simulate import simulate_cohort, write_proact


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("proact") / "export"
    write_proact(simulate_cohort(40, 0, seed=8), folder, quirks=["original_alsfrs"])
    return folder


def _hashes(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()
    }


@pytest.mark.slow  # heavy for the quick tier; CI runs the slow tier
def test_run_on_a_proact_folder(config_writer, export, tmp_path):
    before = _hashes(export)
    config = config_writer(
        tmp_path, data=f'proact = "{export}"', design="enabled = false"
    )
    out = tmp_path / "out"
    run(config, out, progress=False)
    assert _hashes(export) == before
    table = pd.read_csv(out / "table.csv")
    assert table["subject_id"].nunique() == 40
    assert set(table["alsfrs_version"]) == {"alsfrs", "alsfrs-r"}
    # original-ALSFRS visits carry no ALSFRS-R total, so the models never see them
    assert table.loc[table["alsfrs_version"] == "alsfrs", "alsfrs_r_total"].isna().all()
    text = (out / "proact_import.txt").read_text()
    assert "40 subjects" in text and "original ALSFRS" in text
    html = (out / "report.html").read_text()
    assert "PRO-ACT export" in html and "proact_import.txt" in html
    kept = sorted(p.name for p in (out / "inputs" / "proact").iterdir())
    assert "PROACT_ALSFRS.csv" in kept and len(kept) == 7
    cfg = load_config(out / "config.toml")
    assert cfg.data.proact is not None and cfg.data.visits is None


@pytest.mark.slow
def test_run_with_fvc_as_the_outcome(config_writer, export, tmp_path):
    config = config_writer(
        tmp_path,
        data=f'proact = "{export}"\noutcome = "fvc_percent_predicted"',
        models__lmm='type = "mixed"\n'
        'formula = "fvc_percent_predicted ~ months + (months | subject_id)"',
        forecast='models = ["lmm"]\nn_patients = 2',
        design="enabled = false",
    )
    out = tmp_path / "out"
    run(config, out, progress=False)
    bt = pd.read_csv(out / "backtest.csv")
    assert {"lmm", "patient_ols", "random_forest"} <= set(bt["model"])
    assert "delta_fs" not in set(bt["model"])
    html = (out / "report.html").read_text()
    assert "baseline delta_fs left out: ΔFS extrapolates ALSFRS-R points" in html
    comp = pd.read_csv(out / "models" / "comparison.csv", index_col="model")
    assert comp.loc["lmm", "n_subjects"] == 38  # 2 held out for the forecasts
    fixed = pd.read_csv(out / "models" / "lmm_fixed.csv", index_col=0)
    # the writer's FVC falls 2.5 % per ALSFRS-R point lost: about -2 %/month
    assert -4.0 < fixed.iloc[1, 0] < -0.5


def test_config_takes_proact_or_tables_not_both(tmp_path, export):
    (tmp_path / "v.csv").write_text("subject_id,months,alsfrs_r_total\nP1,0,40\n")
    (tmp_path / "run.toml").write_text(
        f'[data]\nproact = "{export}"\nvisits = "v.csv"\n'
    )
    with pytest.raises(Exception, match="give either the visits and subjects tables"):
        load_config(tmp_path / "run.toml")
    (tmp_path / "run.toml").write_text('[data]\nproact = "v.csv"\n')
    with pytest.raises(Exception, match="is not a folder"):
        load_config(tmp_path / "run.toml")
    (tmp_path / "run.toml").write_text('[data]\nvisits = "v.csv"\n')
    with pytest.raises(Exception, match="data.subjects: is required but missing"):
        load_config(tmp_path / "run.toml")


def test_cli_import(export, tmp_path, capsys):
    out = tmp_path / "tables"
    assert (
        main(
            [
                "import",
                "proact",
                str(export),
                "--out",
                str(out),
                "--today",
                "2026-12-01",
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    assert "imported 40 subjects" in said and "original ALSFRS" in said
    assert sorted(p.name for p in out.iterdir()) == [
        ".alsprog-manifest.json",
        "long.csv",
        "report.txt",
        "subjects.csv",
        "visits.csv",
    ]
    long = pd.read_csv(out / "long.csv")
    assert long["subject_id"].nunique() == 40
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "PROACT_DEMOGRAPHICS.csv").write_text("subject_id,Age\n1,50\n")
    assert main(["import", "proact", str(bad), "--out", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert "no ALSFRS file" in err and "Traceback" not in err
    assert not (tmp_path / "o2").exists()


@pytest.mark.slow
def test_readme_proact_lines_run(export, tmp_path, monkeypatch):
    """The README's three lines, from the unpacked folder to the report."""
    import re
    import shlex
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("### Your PRO-ACT download", 1)[1]
    block = block.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [ln.split("   #")[0].strip() for ln in block.strip().splitlines()]
    assert len(lines) == 3
    monkeypatch.chdir(tmp_path)
    for line in lines:
        line = line.replace("PROACT_FOLDER", str(export))
        if line.startswith("printf"):
            fmt, target = re.fullmatch(r"printf '(.*)' > (\S+)", line).groups()
            Path(target).write_text(fmt.replace("\\n", "\n"))
            continue
        words = shlex.split(line)
        assert words[0] == "alsprog"
        assert main(words[1:]) == 0, line
    assert (tmp_path / "proact_report" / "report.html").is_file()
    assert (tmp_path / "proact_tables" / "report.txt").is_file()


def test_run_check_lists_the_exports_problems(config_writer, tmp_path):
    from alsprog.report._config import ConfigError

    bad = tmp_path / "export"
    write_proact(simulate_cohort(6, 0, seed=2), bad)
    text = (bad / "PROACT_ALSFRS.csv").read_text().splitlines()
    head = text[0].split(",")
    row = text[1].split(",")
    row[head.index("Q1_Speech")] = "7"
    text[1] = ",".join(row)
    (bad / "PROACT_ALSFRS.csv").write_text("\n".join(text) + "\n")
    config = config_writer(tmp_path, data=f'proact = "{bad}"')
    with pytest.raises(ConfigError) as info:
        run(config, tmp_path / "out", progress=False)
    (p,) = info.value.problem_list
    assert (p.line, p.column, p.value) == (2, "Q1_Speech", "7")
    assert p.source.endswith("PROACT_ALSFRS.csv")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_run_model_table_shows_the_configured_ddf(config_writer, tiny_inputs, tmp_path):
    """Issue 22, item 6: the mixed model's table carries df and p-values, by the
    config's ddf (Satterthwaite by default, Kenward-Roger when asked)."""
    config = config_writer(
        tiny_inputs,
        models__lmm='type = "mixed"\nformula = "alsfrs_r_total ~ months + '
        '(months | subject_id)"\nddf = "kenward-roger"',
        design="enabled = false",
    )
    out = tmp_path / "out"
    run(config, out, progress=False)
    fixed = pd.read_csv(out / "models" / "lmm_fixed.csv", index_col="term")
    assert {"df", "p_value"} <= set(fixed.columns)
    from alsprog.models import LinearMixedModel

    back = LinearMixedModel.load(out / "models" / "lmm.npz")
    assert back.ddf == "kenward-roger"
    kr = back.summary().tables["fixed"]
    assert fixed["df"].to_numpy() == pytest.approx(kr["df"].to_numpy(), rel=1e-9)
    sat = back.summary(ddf="satterthwaite").tables["fixed"]
    assert not np.allclose(kr["df"], sat["df"], rtol=1e-6)
    assert "Kenward-Roger" in (out / "models" / "lmm_summary.txt").read_text()
