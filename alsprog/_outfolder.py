"""Which output folders alsprog may write: the one rule, and the manifest behind it.

Owns: :func:`out_folder_problems` / :func:`check_out_folder` (may a command write into
this folder?), :func:`check_out_file` (may a command write this file?) and
:func:`read_manifest` (the ``.alsprog-manifest.json`` that marks a folder as alsprog's
and lists what alsprog wrote there, with sizes and SHA-256 hashes).
Leaves: writing folders, the manifest and temp folders to :mod:`alsprog._io`, which
re-exports these functions for every writer.

The rule, for every command and function that writes a folder:

* alsprog replaces only a folder that alsprog wrote: one holding a valid manifest and
  no file beyond those the manifest lists (each still as alsprog wrote it).  Replacing
  removes only the files the manifest lists.
* A non-empty folder alsprog did not write is refused (:class:`OutputError`) unless
  ``force``: then alsprog's files are added beside the others, and a name that is
  already taken by a file alsprog did not write is refused; nothing of the user's is
  deleted or overwritten.  An empty folder is fine.
* The output folder may not be, contain or lie inside an input, nor be ``/``, the
  home folder, a symbolic link or a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from alsprog.errors import OutputError

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "check_out_file",
    "check_out_folder",
    "out_folder_problems",
    "read_manifest",
]

#: The file that marks a folder as written by alsprog (and lists what it wrote).
MANIFEST_NAME = ".alsprog-manifest.json"
_MANIFEST_FORMAT = 1
_MAX_MANIFEST_BYTES = 64 * 2**20
_SHOWN = 5  # file names shown in a message


def _shown(names: list[str]) -> str:
    text = ", ".join(names[:_SHOWN])
    return text + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _resolved_inputs(
    inputs: Mapping[str, str | os.PathLike[str] | None] | None,
) -> dict[str, Path]:
    return {k: Path(p).resolve() for k, p in (inputs or {}).items() if p is not None}


def check_out_file(
    path: str | os.PathLike[str],
    *,
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    what: str = "--out",
) -> Path:
    """Refuse an output file that is a folder or an input (or a file in an input folder).

    A new file inside an input folder is fine; an existing one there is an input.

    Parameters
    ----------
    path : path
        The file a command will write (replacing an earlier file of that name that is
        not an input).
    inputs : mapping of str to path, optional
        The command's inputs by name (``"--history"``...): files or folders.
    what : str
        How the message names the output.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OutputError
        Naming the output and the input it would write over.
    """
    path = Path(path)
    real = path.resolve()
    if path.is_dir():
        raise OutputError(
            f"{what} {str(path)!r} is a folder; give a file name such as "
            f"{str(path / 'result.csv')!r}."
        )
    for parent in real.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(
                f"{what} {str(path)!r} cannot be written: {str(parent)!r} is a file, "
                "not a folder."
            )
    resolved = _resolved_inputs(inputs)
    for key, p in resolved.items():
        same = real == p or (path.exists() and p.exists() and os.path.samefile(path, p))
        if same:
            raise OutputError(
                f"{what} {str(path)!r} is the input {key} ({str(p)!r}); alsprog never "
                f"writes over its inputs: give another file name for {what}."
            )
    for key, p in resolved.items():
        if p.is_dir() and p in real.parents and os.path.lexists(path):
            raise OutputError(
                f"{what} {str(path)!r} is a file of the input folder {key} "
                f"({str(p)!r}); alsprog never writes over its inputs: give a new "
                "file name or write it elsewhere."
            )
    return path


# ------------------------------------------------------------------ manifest
@dataclass(frozen=True)
class _Record:
    size: int
    sha256: str
    mtime_ns: int


@dataclass(frozen=True)
class Manifest:
    """A folder's ``.alsprog-manifest.json``: who wrote it and what."""

    command: str
    created: str
    version: str
    files: dict[str, _Record] = field(default_factory=dict)
    dirs: frozenset[str] = frozenset()


def _safe_rel(text: Any) -> bool:
    """A relative POSIX path inside the folder: no '..', no absolute, no empties."""
    if not isinstance(text, str) or not text or "\\" in text or "\x00" in text:
        return False
    parts = text.split("/")
    return not text.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def read_manifest(folder: str | os.PathLike[str]) -> Manifest | None:
    """The folder's manifest, or ``None`` if it has none or it is not valid."""
    p = Path(folder) / MANIFEST_NAME
    try:
        st = os.lstat(p)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_MANIFEST_BYTES:
            return None
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("alsprog_manifest") != _MANIFEST_FORMAT:
        return None
    files, dirs = data.get("files"), data.get("dirs")
    if not isinstance(files, dict) or not isinstance(dirs, list):
        return None
    records = {}
    for rel, rec in files.items():
        if not _safe_rel(rel) or rel == MANIFEST_NAME or not isinstance(rec, dict):
            return None
        size, digest, mtime = rec.get("size"), rec.get("sha256"), rec.get("mtime_ns")
        if not (
            isinstance(size, int)
            and size >= 0
            and isinstance(mtime, int)
            and isinstance(digest, str)
            and len(digest) == 64
            and all(c in "0123456789abcdef" for c in digest)
        ):
            return None
        records[rel] = _Record(size, digest, mtime)
    if not all(_safe_rel(d) for d in dirs):
        return None
    return Manifest(
        command=str(data.get("command", "")),
        created=str(data.get("created", "")),
        version=str(data.get("alsprog_version", "")),
        files=records,
        dirs=frozenset(dirs),
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _unchanged(path: Path, rec: _Record) -> bool:
    """Whether ``path`` is still the regular file the manifest recorded (same size
    and SHA-256: a time stamp proves nothing)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != rec.size:
        return False
    return _sha256(path) == rec.sha256


def _walk(folder: Path) -> tuple[list[str], list[str]]:
    """Relative files (symlinks included) and folders under ``folder``."""
    files, dirs = [], []
    for root, dnames, fnames in os.walk(folder, followlinks=False):
        base = Path(root).relative_to(folder)
        for d in list(dnames):
            rel = (base / d).as_posix()
            if (Path(root) / d).is_symlink():
                files.append(rel)
                dnames.remove(d)
            else:
                dirs.append(rel)
        files += [(base / f).as_posix() for f in fnames]
    return sorted(files), sorted(dirs)


# ---------------------------------------------------------------- the rule
Mode = Literal["new", "empty", "replace", "merge"]


@dataclass
class _Plan:
    path: Path
    mode: Mode = "new"
    manifest: Manifest | None = None
    foreign: list[str] = field(default_factory=list)  # not alsprog's (or changed)
    problems: list[str] = field(default_factory=list)

    def foreign_paths(self) -> set[str]:
        """The foreign entries as plain relative paths (no notes, no '/')."""
        return {f.split(" (changed")[0].rstrip("/") for f in self.foreign}


def _foreign(folder: Path, manifest: Manifest | None) -> list[str]:
    """Entries of ``folder`` alsprog did not write (or that changed since)."""
    if manifest is None:  # nothing is alsprog's: the top level says enough
        return sorted(
            e.name + ("/" if e.is_dir() and not e.is_symlink() else "")
            for e in os.scandir(folder)
        )
    out = []
    for root, dnames, fnames in os.walk(folder, followlinks=False):
        base = Path(root).relative_to(folder)
        for d in list(dnames):
            rel = (base / d).as_posix()
            if (Path(root) / d).is_symlink():
                out.append(rel)
                dnames.remove(d)
            elif rel not in manifest.dirs:
                out.append(rel + "/")
                dnames.remove(d)
        for f in fnames:
            rel = (base / f).as_posix()
            if rel == MANIFEST_NAME:
                continue
            rec = manifest.files.get(rel)
            if rec is None:
                out.append(rel)
            elif not _unchanged(Path(root) / f, rec):
                out.append(f"{rel} (changed since alsprog wrote it)")
    return sorted(out)


def _plan(
    out: str | os.PathLike[str],
    *,
    inputs: Mapping[str, str | os.PathLike[str] | None] | None,
    force: bool,
    rerun_in_place: bool,
) -> _Plan:
    path = Path(os.path.abspath(out))
    plan = _Plan(path=path)
    shown = os.path.normpath(out)  # as given, tidied (for messages only)
    if path.is_symlink():
        plan.problems.append(
            f"output folder {shown!r} is a symbolic link (to {os.readlink(path)!r}); "
            "give the folder itself, or a new folder"
        )
        return plan
    real = path.resolve()
    if real.parent == real:
        plan.problems.append(
            f"output folder {shown!r} is the root folder; give a new folder"
        )
        return plan
    try:
        home = Path.home().resolve()
    except (RuntimeError, KeyError, OSError):
        home = None
    if real == home:
        plan.problems.append(
            f"output folder {shown!r} is your home folder; give a new folder such as "
            f"{str(real / 'alsprog-output')!r}"
        )
        return plan
    for parent in real.parents:
        if parent.exists() and not parent.is_dir():
            plan.problems.append(
                f"output folder {shown!r} cannot be created: {str(parent)!r} is a file"
            )
            return plan
    resolved = _resolved_inputs(inputs)
    for key, p in resolved.items():
        if p == real:
            kind = "folder" if p.is_dir() else "file"
            plan.problems.append(
                f"output folder {shown!r} is the input {kind} {key} ({str(p)!r}); "
                "alsprog never writes over its inputs: choose another output folder"
            )
        elif p.is_dir() and p in real.parents:
            plan.problems.append(
                f"output folder {shown!r} lies inside the input folder {key} "
                f"({str(p)!r}); choose an output folder outside it"
            )
    if plan.problems:
        return plan
    if path.exists() and not path.is_dir():
        plan.problems.append(
            f"output folder {shown!r} is a file, not a folder; give a folder name "
            "(it is created)"
        )
        return plan
    if not path.exists():
        return plan
    manifest = read_manifest(path)
    plan.manifest = manifest
    held = []
    for key, p in resolved.items():
        if real not in p.parents:
            continue
        rel = p.relative_to(real).as_posix()
        ours = manifest is not None and (
            rel in manifest.dirs
            or (rel in manifest.files and _unchanged(p, manifest.files[rel]))
        )
        if not (rerun_in_place and ours):
            held.append(f"{key} ({str(p)!r})")
    if held:
        plan.problems.append(
            f"output folder {shown!r} contains the input{'s' if len(held) > 1 else ''} "
            f"{', '.join(held)}; alsprog never writes over its inputs: choose an "
            "output folder that does not hold them, such as a new subfolder"
        )
        return plan
    plan.foreign = _foreign(path, manifest)
    if manifest is None and not plan.foreign:
        plan.mode = "empty"
    elif not plan.foreign:
        plan.mode = "replace"
    elif force:
        plan.mode = "merge"
    elif manifest is None:
        plan.problems.append(
            f"output folder {shown!r} is not empty and was not written by alsprog "
            f"(it has no {MANIFEST_NAME}): it holds {_shown(plan.foreign)}. alsprog "
            "never deletes files it did not write: choose a new or empty folder, or "
            "pass --force (force=True in Python) to add alsprog's files beside these "
            "(none of them is deleted or overwritten)"
        )
    else:
        plan.problems.append(
            f"output folder {shown!r} holds an earlier alsprog result "
            f"({manifest.command or 'alsprog'}, {manifest.created or 'undated'}) and "
            f"files alsprog did not write: {_shown(plan.foreign)}. alsprog replaces "
            "only its own folders: move those files out, choose another folder, or "
            "pass --force (force=True in Python) to keep them and replace only "
            "alsprog's files"
        )
    return plan


def out_folder_problems(
    out: str | os.PathLike[str],
    *,
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    force: bool = False,
    rerun_in_place: bool = False,
) -> list[str]:
    """Why alsprog may not write the folder ``out`` (empty when it may).

    Parameters
    ----------
    out : path
        The output folder.
    inputs : mapping of str to path, optional
        The command's inputs by name (config key or option): files or folders.  The
        output folder may not be one, contain one or lie inside one.
    force : bool, default False
        Allow writing into a non-empty folder alsprog did not write (alsprog's files
        are added; none of the others is deleted or overwritten).
    rerun_in_place : bool, default False
        Allow inputs inside ``out`` when they are files an earlier alsprog run wrote
        there (``alsprog run OUT/config.toml`` re-runs from its own copies).

    Returns
    -------
    list of str
        One message per problem, each naming the folder.
    """
    return _plan(
        out, inputs=inputs, force=force, rerun_in_place=rerun_in_place
    ).problems


def check_out_folder(
    out: str | os.PathLike[str],
    *,
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    force: bool = False,
    rerun_in_place: bool = False,
) -> None:
    """Raise :class:`OutputError` if alsprog may not write the folder ``out``.

    See :func:`out_folder_problems` for the parameters.
    """
    problems = out_folder_problems(
        out, inputs=inputs, force=force, rerun_in_place=rerun_in_place
    )
    if problems:
        raise OutputError("; ".join(problems) + ".")


def _real_parents(folder: Path, rel: str) -> bool:
    """Whether every folder between ``folder`` and ``rel`` is a real folder (no link
    leads out of it)."""
    parts = PurePosixPath(rel).parts
    return all(
        not (p := folder.joinpath(*parts[:i])).is_symlink() and p.is_dir()
        for i in range(1, len(parts))
    )
