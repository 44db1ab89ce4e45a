"""Atomic outputs get the usual permissions (not mkstemp's private 0600/0700)."""

from __future__ import annotations

import os
import stat

from alsprog._io import atomic_dir, atomic_path


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
