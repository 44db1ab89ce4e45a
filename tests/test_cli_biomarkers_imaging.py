"""The `classify`, `features` and `simulate --nifti` commands (issue 18: items 3, 5, 8,
16): one permutation default shown in --help, p-values with their permutation count,
progress lines off a terminal, the positive class named, meaningful features only, and
the size of the NIfTI maps said before they are written."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from alsprog.cli import build_parser, main


@pytest.fixture(scope="module")
def long_table(tmp_path_factory) -> Path:
    from alsprog.data import assemble, write_table
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(30, 20, months=0, seed=3)
    df = assemble(c.visits, c.subjects, c.imaging)
    # the same labels as a lab would write them: ALS / HC
    df["diagnosis"] = df["group"].map({"als": "ALS", "control": "HC"})
    return write_table(df, tmp_path_factory.mktemp("clf") / "table.csv")


def _classify(table: Path, out: Path, *extra: str) -> list[str]:
    return [
        "classify", "--table", str(table), "--features", "fa_*", "md_*",
        "--cv", "4", "--seed", "1", "--out", str(out), *extra,
    ]  # fmt: skip


def test_one_permutation_default_shown_in_help(capsys):
    from alsprog.biomarkers import DEFAULT_N_PERMUTATIONS, evaluate_classifier
    from alsprog.report._config import BiomarkersConfig
    from alsprog.report._demo import run_demo, write_demo_inputs
    from alsprog.report._schema import SCHEMA

    assert DEFAULT_N_PERMUTATIONS == 200
    import inspect

    def default(f):
        return inspect.signature(f).parameters["n_permutations"].default

    assert default(evaluate_classifier) == DEFAULT_N_PERMUTATIONS
    assert default(write_demo_inputs) == DEFAULT_N_PERMUTATIONS
    assert BiomarkersConfig().n_permutations == DEFAULT_N_PERMUTATIONS
    key = next(k for k in SCHEMA["biomarkers"] if k.name == "n_permutations")
    assert key.default == DEFAULT_N_PERMUTATIONS
    del run_demo
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices
    for command in ("classify", "demo"):
        action = next(a for a in sub[command]._actions if a.dest == "n_permutations")
        assert action.default == DEFAULT_N_PERMUTATIONS
    assert main(["classify", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "the smallest p-value is 1/(N+1); 0 skips (200)" in text


def test_classify_prints_pvalue_with_its_count_and_positive_class(
    long_table, tmp_path, capsys
):
    out = tmp_path / "clf"
    assert main(_classify(long_table, out, "--n-permutations", "9")) == 0
    text = capsys.readouterr().out
    assert "positive class: 'als' (sensitivity" in text
    line = next(x for x in text.splitlines() if x.startswith("permutation p-value"))
    # the simulated effect is large: no permuted AUC reaches the real one
    assert line == (
        "permutation p-value of the ROC AUC: p <= 1/10 (none of 9 permutations "
        "reached the observed AUC)"
    )
    summary = pd.read_csv(out / "classifier.csv", index_col=0)
    assert summary.loc["roc_auc", "p_value"] == pytest.approx(0.1)
    assert summary["n_permutations"].tolist() == [9, 9, 9, 9]
    assert summary["positive_class"].tolist() == ["als"] * 4


def test_classify_als_hc_labels_make_als_positive(long_table, tmp_path, capsys):
    base = _classify(long_table, tmp_path / "a", "--n-permutations", "0")
    assert main(base) == 0
    ref = pd.read_csv(tmp_path / "a" / "classifier.csv", index_col=0)
    capsys.readouterr()
    args = _classify(
        long_table, tmp_path / "b", "--n-permutations", "0", "--target", "diagnosis"
    )
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "positive class: 'ALS'" in text
    assert "not computed (0 permutations)" in text
    got = pd.read_csv(tmp_path / "b" / "classifier.csv", index_col=0)
    # ALS positive, as with als/control: the same sensitivity and specificity
    cols = ["estimate", "ci_lower", "ci_upper"]
    pd.testing.assert_frame_equal(got[cols], ref[cols])
    assert got["positive_class"].tolist() == ["ALS"] * 4
    # asking for HC swaps sensitivity and specificity
    args = _classify(
        long_table, tmp_path / "c", "--n-permutations", "0", "--target",
        "diagnosis", "--positive", "hc",
    )  # fmt: skip
    assert main(args) == 0
    hc = pd.read_csv(tmp_path / "c" / "classifier.csv", index_col=0)
    assert hc.loc["sensitivity", "estimate"] == pytest.approx(
        ref.loc["specificity", "estimate"]
    )
    assert hc["positive_class"].tolist() == ["HC"] * 4


def test_classify_unknown_positive_is_an_error(long_table, tmp_path, capsys):
    args = _classify(long_table, tmp_path / "x", "--positive", "patient")
    assert main(args) == 1
    assert (
        "`positive` 'patient' is not a class of column 'group'; its classes are "
        "['als', 'control']: pass one of them" in capsys.readouterr().err
    )


def test_classify_progress_lines_off_a_terminal(
    long_table, tmp_path, capsys, monkeypatch
):
    import itertools

    import alsprog._progress as progress

    ticks = itertools.count(0.0, 7.0)  # every clock reading 7 s later
    monkeypatch.setattr(progress, "_clock", lambda: next(ticks))
    args = _classify(long_table, tmp_path / "p", "--n-permutations", "40")
    assert main(args) == 0
    err = capsys.readouterr().err  # captured: not a terminal
    lines = [x for x in err.splitlines() if x.startswith("permutations: ")]
    assert re.fullmatch(
        r"permutations: 20/40 permutations \(50%\), \d+ s, about \d+ s left", lines[0]
    )
    assert re.fullmatch(r"permutations: 40/40 permutations done in \d+ s", lines[-1])


@pytest.mark.parametrize("flag", [[], ["-q"], ["--no-progress"]])
def test_classify_progress_off_with_quiet_or_no_progress(
    long_table, tmp_path, capsys, monkeypatch, flag
):
    import alsprog._progress as progress

    made = []
    real = progress.LineProgress.__init__

    def spy(self, *a, **kw):
        made.append(kw.get("desc"))
        real(self, *a, **kw)

    monkeypatch.setattr(progress.LineProgress, "__init__", spy)
    args = _classify(long_table, tmp_path / "q", "--n-permutations", "2", *flag)
    assert main(args) == 0
    assert made == ([] if flag else ["permutations"])
    assert "permutations:" not in capsys.readouterr().err


@pytest.fixture(scope="module")
def nifti_study(tmp_path_factory):
    from alsprog.simulate import simulate_cohort, write_nifti

    cohort = simulate_cohort(3, 1, months=6, seed=4)
    root = write_nifti(
        cohort, tmp_path_factory.mktemp("nii") / "deriv", shape=(20, 24, 20), seed=4,
        progress=False,
    )  # fmt: skip
    return root


def _features(root: Path, out: Path, *extra: str) -> list[str]:
    atlas = root / "atlas" / "atlas-alsprogsim_dseg.nii.gz"
    return ["features", "--images", str(root), "--atlas", str(atlas), "--out", str(out),
            *extra]  # fmt: skip


def test_features_only_meaningful_metric_region_pairs(nifti_study, tmp_path, capsys):
    out = tmp_path / "f.csv"
    assert main(_features(nifti_study, out)) == 0
    assert "sessions x 8 features" in capsys.readouterr().out
    assert pd.read_csv(out).columns[3:].tolist() == [
        "fa_cst_left", "fa_cst_right", "fa_cc_motor", "md_cst_left", "md_cst_right",
        "thickness_precentral_left", "thickness_precentral_right",
        "thickness_cuneus_left",
    ]  # fmt: skip


def test_features_metrics_by_region_option(nifti_study, tmp_path, capsys):
    out = tmp_path / "dti.csv"
    args = _features(
        nifti_study, out, "--metrics-by-region", "cst_*=fa,md", "cc_*=fa",
        "precentral_*=fa", "cuneus_left=md",
    )  # fmt: skip
    assert main(args) == 0
    assert pd.read_csv(out).columns[3:].tolist() == [
        "fa_cst_left", "fa_cst_right", "fa_cc_motor", "fa_precentral_left",
        "fa_precentral_right", "md_cst_left", "md_cst_right", "md_cuneus_left",
    ]  # fmt: skip
    capsys.readouterr()
    bad = _features(nifti_study, tmp_path / "x.csv", "--metrics-by-region", "cst=fa")
    assert main(bad) == 1
    assert "metrics_by_region: 'cst' matches no region of the atlas" in (
        capsys.readouterr().err
    )


def test_simulate_nifti_says_how_much_before_writing(tmp_path, capsys, monkeypatch):
    from alsprog.simulate import _nifti

    said_before: list[str] = []
    real = _nifti.write_nifti

    def spy(*args, **kw):  # what stderr held when the writing started
        said_before.append(capsys.readouterr().err)
        return real(*args, **kw)

    monkeypatch.setattr("alsprog.simulate.write_nifti", spy)
    out = tmp_path / "sim"
    args = ["simulate", "--out", str(out), "--n-patients", "4", "--n-controls", "2",
            "--months", "6", "--nifti"]  # fmt: skip
    assert main(args) == 0
    m = re.search(
        r"writing (\d+) NIfTI maps \(FA, MD and thickness of (\d+) imaging sessions\) "
        r"and an atlas, about (\d+) MB",
        said_before[0],
    )
    assert m is not None, said_before
    n_sessions = len(pd.read_csv(out / "imaging.csv"))
    assert int(m[1]) == 3 * n_sessions and int(m[2]) == n_sessions
    files = [p for p in (out / "derivatives").rglob("*") if p.is_file()]
    maps = [p for p in files if p.name.endswith(".nii.gz") and "atlas" not in p.parts]
    assert len(maps) == int(m[1])
    actual_mb = sum(p.stat().st_size for p in files) / 1e6
    assert abs(int(m[3]) - actual_mb) <= 0.5 + 0.05 * actual_mb
    text = capsys.readouterr().out
    assert (
        f"(BIDS derivatives + atlas: {len(maps)} NIfTI maps, {actual_mb:.1f} MB)"
        in (text)
    )
