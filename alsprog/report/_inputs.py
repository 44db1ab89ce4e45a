"""Keeping a run's inputs beside its outputs (``inputs/``), as ``run.inputs`` says.

Owns: :func:`keep_inputs` (tables, atlas and config copied; an image tree or a
manifest's images hard-linked, copied, or left in place with the size and SHA-256 of
each file in ``inputs/image_checksums.tsv``) and the config pointing at what was kept.
Leaves: the output folder and when this runs to :mod:`alsprog.report._run`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from alsprog.report._config import RunConfig

__all__ = ["IMAGE_CHECKSUMS", "keep_inputs"]

#: Where image trees left in place are recorded (``inputs = "auto"`` when hard links
#: are impossible): one row per file, its path, size and SHA-256.
IMAGE_CHECKSUMS = "image_checksums.tsv"


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


class _NoLink(Exception):  # not an OSError: shutil.copytree must not collect it
    """A hard link was refused (another file system, no permission)."""


def _link_only(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError as exc:
        raise _NoLink(exc.strerror or str(exc)) from exc
    return dst


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def _files_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _write_checksums(files: list[Path], out: Path) -> int:
    """Path, size and SHA-256 of each file into ``out`` (TSV), after the rows an
    earlier image section of the same run wrote there; the total size."""
    from alsprog._io import atomic_path
    from alsprog._outfolder import _sha256

    table = pd.DataFrame(
        {
            "path": [str(f) for f in files],
            "size_bytes": [f.stat().st_size for f in files],
            "sha256": [_sha256(f) for f in files],
        }
    )
    if out.is_file():  # [imaging] and [connectivity] both left in place
        earlier = pd.read_csv(out, sep="\t", dtype={"path": str, "sha256": str})
        table = pd.concat([earlier, table], ignore_index=True).drop_duplicates("path")
    with atomic_path(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
    return int(table["size_bytes"].sum())


def keep_inputs(
    config: RunConfig, folder: Path, mode: str
) -> tuple[RunConfig, list[str]]:
    """Keep the inputs in ``folder`` as ``mode`` says; the config pointing at what was
    kept, and lines saying what that is (for run.log).

    ``"auto"`` (the default): the tables, the atlas, its lookup table and the
    original config are copied; an image tree (the ``imaging.root`` folder, or the
    images a manifest lists) is hard-linked (no extra space) when the output folder
    is on the same file system, else left where it is, the config pointing at it and
    ``inputs/image_checksums.tsv`` recording each file's path, size and SHA-256.
    ``"copy"``: everything copied; ``"link"``: everything hard-linked (copied where
    that is impossible); ``"none"``: nothing kept, the config points at the
    originals.
    """
    if mode == "none":
        return config, [
            'inputs not kept (run.inputs = "none"): config.toml points at the originals'
        ]
    copy = _link_or_copy if mode == "link" else shutil.copy2
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    tables: list[str] = []
    said: list[str] = []

    def place(name: str, key: str) -> Path:
        if name in used:
            name = f"{key.replace('.', '_')}_{name}"
        used.add(name)
        return folder / name

    def put_file(src: Path, key: str) -> Path:
        dst = place(src.name, key)
        copy(str(src), str(dst))
        tables.append(dst.name)
        return dst

    data = config.data
    new_data = replace(
        data,
        visits=put_file(data.visits, "data.visits") if data.visits else None,
        subjects=put_file(data.subjects, "data.subjects") if data.subjects else None,
        imaging=put_file(data.imaging, "data.imaging") if data.imaging else None,
        proact=_keep_proact(data.proact, place("proact", "data.proact"), copy, tables)
        if data.proact
        else None,
    )

    def keep_images(im: Any, section: str) -> Any:
        """Keep one image section's tree (or manifest), atlas and lookup table;
        the section pointing at what was kept."""
        root = im.root.resolve()
        dst = place(root.name, f"{section}.root")
        if root.is_dir():
            new_root, line = _keep_tree(root, dst, mode, folder)
        else:
            new_root, line = _keep_manifest(root, dst, mode, folder)
            tables.append(dst.name)
        said.append(line)
        kept_tree = new_root != root

        def inside(p: Path | None, key: str) -> Path | None:
            if p is None:
                return None
            p = p.resolve()
            if root.is_dir() and root in p.parents:
                return new_root / p.relative_to(root) if kept_tree else p
            dst = put_file(p, key)
            if key.endswith(".atlas") and im.labels is None:
                stem = p.name.split(".")[0]
                tsv = p.with_name(f"{stem}.tsv")
                if tsv.is_file():
                    copy(str(tsv), str(dst.with_name(f"{dst.name.split('.')[0]}.tsv")))
            return dst

        atlas = inside(im.atlas, f"{section}.atlas")
        assert atlas is not None
        return replace(
            im,
            root=new_root,
            atlas=atlas,
            labels=inside(im.labels, f"{section}.labels"),
        )

    new_img = keep_images(config.imaging, "imaging") if config.imaging else None
    new_con = (
        keep_images(config.connectivity, "connectivity")
        if config.connectivity
        else None
    )
    if config.path is not None:
        shutil.copy2(config.path, folder / "config.original.toml")
        tables.append("config.original.toml")
    how = "hard-linked" if mode == "link" else "copied"
    said.insert(0, f"inputs/ ({mode}): {', '.join(tables)} {how}")
    return (
        replace(config, data=new_data, imaging=new_img, connectivity=new_con),
        said,
    )


def _keep_proact(src: Path, dst: Path, copy: Any, kept: list[str]) -> Path:
    """The PRO-ACT files alsprog reads (not labs, vital signs, ...) into ``dst``."""
    from alsprog.data._proact_files import TABLES, find_files

    paths, _, _ = find_files(src)
    dst.mkdir()
    for key in TABLES:
        if key in paths:
            copy(str(paths[key]), str(dst / paths[key].name))
            kept.append(f"{dst.name}/{paths[key].name}")
    return dst


def _keep_tree(root: Path, dst: Path, mode: str, folder: Path) -> tuple[Path, str]:
    """Copy, link or (``"auto"`` across file systems) checksum an image folder."""
    files = _files_of(root)
    size = _mb(sum(f.stat().st_size for f in files))
    what = f"image tree {root} ({len(files)} files, {size})"
    rel = dst.relative_to(folder.parent).as_posix()
    if mode == "copy":
        shutil.copytree(root, dst, copy_function=shutil.copy2)
        return dst, f"{what} copied into {rel}/"
    if mode == "link":
        shutil.copytree(root, dst, copy_function=_link_or_copy)
        return dst, f"{what} hard-linked into {rel}/ (copied where impossible)"
    try:
        shutil.copytree(root, dst, copy_function=_link_only)
    except _NoLink as exc:
        shutil.rmtree(dst, ignore_errors=True)
        _write_checksums(files, folder / IMAGE_CHECKSUMS)
        return root, (
            f"{what} left in place, not copied (no hard link possible: {exc}); "
            f"config.toml reads it from there; the size and SHA-256 of each of its "
            f"files are in inputs/{IMAGE_CHECKSUMS} "
            '(run.inputs = "copy" copies it)'
        )
    return dst, f"{what} hard-linked into {rel}/ (no extra space)"


def _keep_manifest(
    manifest: Path, dst: Path, mode: str, folder: Path
) -> tuple[Path, str]:
    """Copy a manifest; its images copied, linked or (``"auto"`` across file systems)
    checksummed.  Paths in the copy are relative to it, or absolute to the originals
    when these stay in place."""
    sep = "\t" if manifest.suffix.lower() == ".tsv" else ","
    m = pd.read_csv(manifest, sep=sep, dtype=str, keep_default_na=False)
    images = dst.parent / f"{dst.stem}_images"
    sources = [
        Path(p) if Path(p).is_absolute() else manifest.parent / p for p in m["path"]
    ]
    size = _mb(sum(src.stat().st_size for src in sources))
    what = f"the {len(sources)} images of {manifest.name} ({size})"
    copies: dict[str, Callable[[str, str], Any]] = {
        "copy": shutil.copy2,
        "link": _link_or_copy,
        "auto": _link_only,
    }
    copy = copies[mode]
    new_paths = []
    try:
        for i, src in enumerate(sources):
            target = images / f"{i:05d}_{src.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            copy(str(src), str(target))
            new_paths.append(os.path.relpath(target, dst.parent))
        how = {"copy": "copied", "link": "hard-linked (copied where impossible)"}
        line = f"{what} {how.get(mode, 'hard-linked')} into "
        line += f"{images.relative_to(folder.parent).as_posix()}/"
    except _NoLink as exc:
        shutil.rmtree(images, ignore_errors=True)
        _write_checksums([s.resolve() for s in sources], folder / IMAGE_CHECKSUMS)
        new_paths = [str(s.resolve()) for s in sources]
        line = (
            f"{what} left in place, not copied (no hard link possible: {exc}); the "
            f"manifest's copy points at them; the size and SHA-256 of each are in "
            f"inputs/{IMAGE_CHECKSUMS}"
        )
    m["path"] = new_paths
    m.to_csv(dst, sep=sep, index=False)
    return dst, line
