"""Atomic outputs: the usual permissions (not mkstemp's private 0600/0700), a manifest
of what was written, and nothing left behind by a failure (the hostile cases are in
tests/safety/test_safety_outputs.py)."""

from __future__ import annotations

import os
import stat

import pytest

from alsprog._io import MANIFEST_NAME, atomic_dir, atomic_path, read_manifest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_file_and_folder_modes(tmp_path):
    with atomic_path(tmp_path / "a.csv") as tmp:
        tmp.write_text("x\n")
    assert stat.S_IMODE((tmp_path / "a.csv").stat().st_mode) == 0o666 & ~_umask()
    with atomic_dir(tmp_path / "out") as d:
        (d / "f.txt").write_text("y")
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o777 & ~_umask()


def test_failed_write_leaves_target_untouched(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_atomic_dir_lists_what_it_wrote(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out, command="test") as d:
        (d / "sub").mkdir()
        (d / "sub" / "a.csv").write_text("a\n")
    manifest = read_manifest(out)
    assert manifest is not None and manifest.command == "test"
    assert set(manifest.files) == {"sub/a.csv"} and manifest.dirs == {"sub"}
    assert manifest.files["sub/a.csv"].size == 2
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "sub"]


def test_failed_body_keeps_an_earlier_result_and_leaves_no_temp(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as d:
        (d / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_dir(out) as d:
        (d / "new.txt").write_text("new")
        raise RuntimeError("boom")
    assert (out / "old.txt").read_text() == "old" and not (out / "new.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with atomic_dir(out) as d:  # an alsprog folder: replaced, listed files only
        (d / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "new.txt"]
