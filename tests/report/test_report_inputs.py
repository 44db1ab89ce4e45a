"""What a run keeps of its inputs (issue 18, item 9): tables copied, NIfTI trees
hard-linked (or, across file systems, left in place with their checksums), never a
second copy of the images unless asked; and the run repeats from OUT/config.toml."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest

from alsprog.report import load_config, run
from alsprog.report._inputs import IMAGE_CHECKSUMS
from alsprog.report._inputs import keep_inputs as _keep_inputs


@pytest.fixture(scope="module")
def study(tmp_path_factory, config_writer):
    """Visits, subjects and a small NIfTI tree of 12 patients, with a quick config."""
    from alsprog.data import write_table
    from alsprog.simulate import simulate_cohort, write_nifti

    folder = tmp_path_factory.mktemp("study")
    cohort = simulate_cohort(12, 0, months=6, seed=5)
    write_table(cohort.visits, folder / "visits.csv")
    write_table(cohort.subjects, folder / "subjects.csv")
    write_nifti(
        cohort, folder / "derivatives", shape=(20, 24, 20), seed=5, progress=False
    )
    config = config_writer(
        folder,
        imaging='root = "derivatives"\n'
        'atlas = "derivatives/atlas/atlas-alsprogsim_dseg.nii.gz"',
        forecast="enabled = false",
    )
    return folder, config


def _tree(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_default_run_links_images_copies_tables_and_repeats(study, tmp_path):
    folder, config = study
    assert load_config(config).run.inputs == "auto"  # the default
    out = tmp_path / "results"
    run(config, out, progress=False)
    images = _tree(folder / "derivatives")
    kept = out / "inputs" / "derivatives"
    assert len(images) > 20
    for src in images:
        dst = kept / src.relative_to(folder / "derivatives")
        # a hard link: the same file, no second copy of the bytes
        assert os.stat(dst).st_ino == os.stat(src).st_ino, dst
    for name in ("visits.csv", "subjects.csv"):
        copy = out / "inputs" / name
        assert copy.read_bytes() == (folder / name).read_bytes()
        assert os.stat(copy).st_ino != os.stat(folder / name).st_ino  # a real copy
    assert not (out / "inputs" / IMAGE_CHECKSUMS).exists()
    log = (out / "run.log").read_text()
    assert (
        f"image tree {(folder / 'derivatives').resolve()} ({len(images)} files, " in log
    )
    assert "hard-linked into inputs/derivatives/ (no extra space)" in log
    assert "inputs/ (auto): visits.csv, subjects.csv, " in log
    # the saved config reads the linked tree, and repeats the run in place
    saved = load_config(out / "config.toml")
    assert saved.imaging is not None and saved.imaging.root == kept
    before = (out / "imaging" / "features.csv").read_bytes()
    run(out / "config.toml", progress=False)
    assert (out / "imaging" / "features.csv").read_bytes() == before
    assert (
        os.stat(kept / "participants.tsv").st_ino
        == os.stat(folder / "derivatives" / "participants.tsv").st_ino
    )


def test_across_file_systems_images_stay_in_place_with_checksums(
    study, tmp_path, monkeypatch
):
    folder, config = study
    cfg = load_config(config)

    def no_link(src, dst, **kw):  # as os.link fails across file systems
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    kept, said = _keep_inputs(cfg, tmp_path / "inputs", "auto")
    images = _tree(folder / "derivatives")
    # nothing of the tree is copied; the config reads the originals
    assert not (tmp_path / "inputs" / "derivatives").exists()
    assert kept.imaging.root == (folder / "derivatives").resolve()
    assert (
        kept.imaging.atlas
        == (folder / "derivatives" / "atlas" / "atlas-alsprogsim_dseg.nii.gz").resolve()
    )
    assert kept.data.visits == tmp_path / "inputs" / "visits.csv"  # tables copied
    sums = pd.read_csv(tmp_path / "inputs" / IMAGE_CHECKSUMS, sep="\t")
    assert sums.columns.tolist() == ["path", "size_bytes", "sha256"]
    assert sums["path"].tolist() == [str(p.resolve()) for p in images]
    assert sums["size_bytes"].tolist() == [p.stat().st_size for p in images]
    assert sums["sha256"].tolist() == [_sha256(p) for p in images]
    assert (
        "left in place, not copied (no hard link possible: Invalid cross-device "
        in (said[1])
    )
    assert f"inputs/{IMAGE_CHECKSUMS}" in said[1]


def test_copy_mode_still_copies_everything(study, tmp_path):
    folder, config = study
    cfg = load_config(config)
    kept, said = _keep_inputs(cfg, tmp_path / "inputs", "copy")
    images = _tree(folder / "derivatives")
    for src in images:
        dst = (
            tmp_path
            / "inputs"
            / "derivatives"
            / src.relative_to(folder / "derivatives")
        )
        assert dst.read_bytes() == src.read_bytes()
        assert os.stat(dst).st_ino != os.stat(src).st_ino
    assert kept.imaging.root == tmp_path / "inputs" / "derivatives"
    assert said[1].endswith("copied into inputs/derivatives/")


def test_none_keeps_nothing(study, tmp_path):
    _, config = study
    cfg = load_config(config)
    kept, said = _keep_inputs(cfg, tmp_path / "inputs", "none")
    assert kept == cfg and not (tmp_path / "inputs").exists()
    assert said == [
        'inputs not kept (run.inputs = "none"): config.toml points at the originals'
    ]


@pytest.mark.parametrize("linkable", [True, False])
def test_manifest_images_linked_or_checksummed(
    study, tmp_path, monkeypatch, config_writer, linkable
):
    import re
    import shutil

    from alsprog.imaging._bids import find_images

    folder, _ = study
    mine = tmp_path / "study"  # a config of its own beside the same data
    mine.mkdir()
    for name in ("visits.csv", "subjects.csv"):
        shutil.copy(folder / name, mine / name)
    man = find_images(folder / "derivatives")
    man.to_csv(mine / "maps.csv", index=False)  # absolute paths to the images
    config = config_writer(
        mine,
        imaging='root = "maps.csv"\n'
        f'atlas = "{folder / "derivatives/atlas/atlas-alsprogsim_dseg.nii.gz"}"',
    )
    cfg = load_config(config)
    if not linkable:

        def no_link(src, dst, **kw):
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(os, "link", no_link)
    kept, said = _keep_inputs(cfg, tmp_path / "inputs", "auto")
    copy = pd.read_csv(kept.imaging.root)
    assert kept.imaging.root == tmp_path / "inputs" / "maps.csv"
    originals = [Path(p) for p in man["path"]]
    if linkable:
        targets = [tmp_path / "inputs" / p for p in copy["path"]]
        assert [os.stat(t).st_ino for t in targets] == [
            os.stat(o).st_ino for o in originals
        ]
        assert re.fullmatch(
            rf"the {len(man)} images of maps\.csv \(\d+\.\d MB\) hard-linked into "
            "inputs/maps_images/",
            said[1],
        )
    else:
        assert copy["path"].tolist() == [str(o.resolve()) for o in originals]
        assert not (tmp_path / "inputs" / "maps_images").exists()
        sums = pd.read_csv(tmp_path / "inputs" / IMAGE_CHECKSUMS, sep="\t")
        assert sums["sha256"].tolist() == [_sha256(o) for o in originals]
        assert "left in place, not copied" in said[1]
