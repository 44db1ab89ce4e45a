"""Atomic output: every file and folder alsprog writes goes through here.

Owns: :func:`atomic_path` (write a file beside its target, then ``os.replace``),
:func:`atomic_dir` (build a folder as ``OUT.tmp-*``, then put it in place under the
rule of :mod:`alsprog._outfolder`, which this module re-exports), the manifest it
writes (:func:`write_manifest`), the marker it puts into each of its temp folders
(``.alsprog-temp.json``, so that a later run removes only its own stale temp folders:
:func:`remove_stale_temps`) and :func:`temp_dir`.
Leaves: which folders may be written to :mod:`alsprog._outfolder`; reading inputs to
:mod:`alsprog.data`; printing and exit codes to :mod:`alsprog.cli`.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from alsprog._outfolder import (
    _MANIFEST_FORMAT,
    MANIFEST_NAME,
    Manifest,
    _Plan,
    _plan,
    _real_parents,
    _sha256,
    _shown,
    _unchanged,
    _walk,
    check_out_file,
    check_out_folder,
    out_folder_problems,
    read_manifest,
)
from alsprog.errors import OutputError

__all__ = [
    "MANIFEST_NAME",
    "TEMP_MARKER_NAME",
    "atomic_dir",
    "atomic_path",
    "check_out_file",
    "check_out_folder",
    "out_folder_problems",
    "read_manifest",
    "remove_stale_temps",
    "temp_dir",
    "write_manifest",
]

logger = logging.getLogger(__name__)

#: The file alsprog puts into each of its temp folders as it creates them.
TEMP_MARKER_NAME = ".alsprog-temp.json"
#: A temp folder of another host (pid unknowable) is stale after this many seconds.
_FOREIGN_HOST_STALE_S = 2 * 24 * 3600

#: Folders and files committed by atomic_dir / atomic_path in this process (the CLI
#: says whether an interrupted command wrote anything); files written inside a temp
#: folder of this process (``_building``, kept: late worker threads) are not results.
committed: list[Path] = []
_building: set[Path] = set()


def _record(path: Path) -> None:
    real = Path(os.path.abspath(path))
    if not any(b in real.parents for b in _building):
        committed.append(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------ signals
class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that temp folders are cleaned up."""


#: The signals the ``alsprog`` command's handlers received during this command.
#: CPython drops an exception raised inside a weakref or garbage-collector callback
#: (``Exception ignored in ...``): a Ctrl-C that lands there would be lost and the
#: command would go on to write its output; each commit checks this list first.
signals_received: list[int] = []


def raise_for_signal(signum: int, frame: Any = None) -> None:
    """The ``alsprog`` command's SIGINT/SIGTERM handler: note it, then raise."""
    signals_received.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def _raise_if_signalled() -> None:
    """Raise now for a signal whose exception was swallowed before this commit."""
    if signals_received:
        raise Terminated if signals_received[0] == signal.SIGTERM else KeyboardInterrupt


@contextmanager
def _signals_deferred(*, commit: bool = False) -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends (renames must not be cut in half).

    ``commit=True``: a signal received earlier whose exception was swallowed stops
    the commit before it starts.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if commit:
        _raise_if_signalled()
    got: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        got.append(signum)

    old: dict[int, Any] = {}
    for sig in (int(signal.SIGINT), int(signal.SIGTERM)):
        prev = signal.getsignal(sig)
        if prev is None:  # installed outside Python: leave it alone
            continue
        old[sig] = prev
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        if got and got[0] in old:
            first, h = got[0], old[got[0]]
            if callable(h):
                h(first, None)  # Python's SIGINT handler raises KeyboardInterrupt
            elif h == signal.SIG_DFL:
                signal.raise_signal(first)


# --------------------------------------------------------------------- files
@contextmanager
def _atomic_file(path: Path, *, record: bool) -> Iterator[Path]:
    if path.is_dir():
        raise OutputError(
            f"{str(path)!r} is a folder; give a file name such as "
            f"{str(path / 'result.csv')!r}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; files are not private
    try:
        yield tmp_path
        with _signals_deferred(commit=True):
            os.replace(tmp_path, path)
            if record:
                _record(path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` on success.

    If the body raises, the target is left untouched and the temporary file removed.
    A folder at ``path`` is refused (:class:`OutputError`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "x.txt").read_text()
    'hello'
    """
    with _atomic_file(Path(path), record=True) as tmp:
        yield tmp


def write_manifest(
    folder: str | os.PathLike[str],
    *,
    command: str,
    files: list[str] | None = None,
    dirs: list[str] | None = None,
) -> Path:
    """Record in ``folder``'s manifest the files and folders alsprog wrote there.

    Parameters
    ----------
    folder : path
        A folder alsprog has just written.
    command : str
        What wrote it (``"alsprog run"``...).
    files, dirs : list of str, optional
        Relative paths alsprog wrote (default: everything under ``folder``, which
        must then be alsprog's alone).

    Returns
    -------
    pathlib.Path
        The manifest file.
    """
    from alsprog._version import __version__

    folder = Path(folder)
    if files is None or dirs is None:
        all_files, all_dirs = _walk(folder)
        files = all_files if files is None else files
        dirs = all_dirs if dirs is None else dirs
    records = {}
    for rel in files:
        if rel in (MANIFEST_NAME, TEMP_MARKER_NAME):
            continue
        p = folder / rel
        st = os.lstat(p)
        if not stat.S_ISREG(st.st_mode):
            continue  # alsprog writes regular files only
        records[rel] = {
            "size": st.st_size,
            "sha256": _sha256(p),
            "mtime_ns": st.st_mtime_ns,
        }
    data = {
        "alsprog_manifest": _MANIFEST_FORMAT,
        "alsprog_version": __version__,
        "command": command,
        "created": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        "files": records,
        "dirs": sorted(dirs),
    }
    target = folder / MANIFEST_NAME
    with _atomic_file(target, record=False) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return target


# ------------------------------------------------------------- temp folders
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    except OSError:
        return False
    return True


def _mark(folder: Path, prefix: str) -> None:
    marker = {
        "alsprog_temp": 1,
        "prefix": prefix,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "created": time.time(),
    }
    (folder / TEMP_MARKER_NAME).write_text(json.dumps(marker), encoding="utf-8")


def _is_stale(folder: Path, prefix: str) -> bool:
    """A temp folder alsprog made for this target, whose process is gone."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    marker = folder / TEMP_MARKER_NAME
    try:
        st = os.lstat(marker)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 4096:
            return False
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or data.get("alsprog_temp") != 1:
        return False
    if data.get("prefix") != prefix:
        return False
    pid, host, created = data.get("pid"), data.get("host"), data.get("created")
    if not isinstance(pid, int) or not isinstance(created, (int, float)):
        return False
    if host == socket.gethostname():
        return pid != os.getpid() and not _alive(pid)
    return time.time() - created > _FOREIGN_HOST_STALE_S


def _remove_tree(folder: Path) -> None:
    """Remove a temp folder of alsprog's, retrying while worker threads finish.

    An interrupted writer's thread pool (e.g. :func:`alsprog.simulate.write_nifti`)
    finishes the files it has started after the main thread stops, so the folder may
    refill for a moment; retry for up to about 20 s before giving up.
    """
    deadline = time.monotonic() + 20.0
    delay = 0.05
    while True:
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    logger.warning("could not remove the temp folder %s", folder)


def remove_stale_temps(parent: str | os.PathLike[str], prefix: str) -> list[Path]:
    """Remove ``parent/prefix*`` folders alsprog made and whose process is gone.

    Only folders holding alsprog's marker file for this ``prefix`` are removed, and
    only when the process that made them no longer runs (or, made on another host,
    two days later).

    Returns
    -------
    list of pathlib.Path
        The folders removed.
    """
    parent = Path(parent)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for e in entries:
        if e.name.startswith(prefix) and _is_stale(Path(e.path), prefix):
            _remove_tree(Path(e.path))
            logger.info("removed the stale temp folder %s", e.path)
            removed.append(Path(e.path))
    return removed


def _make_temp(parent: Path, prefix: str) -> Path:
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    _mark(tmp, prefix)
    return tmp


@contextmanager
def temp_dir(parent: str | os.PathLike[str], prefix: str) -> Iterator[Path]:
    """A marked work folder ``parent/prefix*``, removed afterwards.

    Stale folders of the same prefix (left by a killed process) are removed first.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(parent, prefix)
    tmp = _make_temp(parent.absolute(), prefix)
    _building.add(tmp)
    try:
        yield tmp
    finally:
        with _signals_deferred():
            _remove_tree(tmp)


# ------------------------------------------------------------------ commits
def _contains_cwd(path: Path) -> bool:
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        return False
    real = path.resolve()
    return cwd == real or real in cwd.parents


def _remove_listed(folder: Path, manifest: Manifest, keep: set[str]) -> list[str]:
    """Delete the manifest's files (unchanged ones, not in ``keep``) and its empty
    folders; return what had to stay."""
    stayed = []
    for rel, rec in manifest.files.items():
        if rel in keep:
            continue
        p = folder / rel
        if not _real_parents(folder, rel) or not os.path.lexists(p):
            continue
        if _unchanged(p, rec):
            p.unlink()
        else:
            stayed.append(rel)
    for rel in sorted(manifest.dirs, key=lambda d: -d.count("/")):
        if rel in keep:
            continue
        p = folder / rel
        if p.is_dir() and not p.is_symlink():
            try:
                p.rmdir()
            except OSError:
                stayed.append(rel + "/")
    return stayed


def _clashes(path: Path, files: list[str], dirs: list[str], plan: _Plan) -> list[str]:
    """New files and folders whose name is taken in ``path`` by something not
    alsprog's (or by a file where a folder goes)."""
    old = plan.manifest
    ours = {
        rel
        for rel, rec in (old.files.items() if old is not None else ())
        if _real_parents(path, rel) and _unchanged(path / rel, rec)
    }
    out = []
    for d in dirs:
        p = path / d
        if os.path.lexists(p) and (p.is_symlink() or not p.is_dir()):
            out.append(d)
    for rel in files:
        parts = PurePosixPath(rel).parts
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            p = path / prefix
            if os.path.lexists(p) and (p.is_symlink() or not p.is_dir()):
                out.append(prefix)
                break
        else:
            p = path / rel
            if os.path.lexists(p) and rel not in ours:
                if rel == MANIFEST_NAME and old is not None:
                    continue
                out.append(rel + ("/" if p.is_dir() else ""))
    return sorted(set(out))


def _commit_in_place(tmp: Path, plan: _Plan, command: str) -> None:
    """Move the new files into the existing folder; delete only alsprog's old ones."""
    path = plan.path
    files, dirs = _walk(tmp)
    files = [f for f in files if f not in (TEMP_MARKER_NAME, MANIFEST_NAME)]
    clashes = _clashes(path, [*files, MANIFEST_NAME], dirs, plan)
    if clashes:
        raise OutputError(
            f"output folder {str(path)!r}: alsprog would write {_shown(clashes)}, "
            "but files of that name are not alsprog's (--force never overwrites "
            "them); nothing was written. Move them or choose another folder."
        )
    with _signals_deferred(commit=True):
        for d in dirs:
            (path / d).mkdir(exist_ok=True)
        for rel in files:
            os.replace(tmp / rel, path / rel)
        if plan.manifest is not None:
            stayed = _remove_listed(path, plan.manifest, set(files) | set(dirs))
            if stayed:
                logger.warning(
                    "kept %s in %s: changed since alsprog wrote them",
                    _shown(stayed),
                    path,
                )
        foreign = plan.foreign_paths()
        write_manifest(
            path,
            command=command,
            files=files,
            dirs=[d for d in dirs if d not in foreign],
        )


def _commit_swap(tmp: Path, plan: _Plan) -> None:
    """Rename the new folder into place; the old one (alsprog's) goes file by file."""
    path = plan.path
    with _signals_deferred(commit=True):
        (tmp / TEMP_MARKER_NAME).unlink()
        if plan.mode in ("new", "empty"):
            try:
                os.replace(tmp, path)  # replaces an empty folder in one step
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise OutputError(
                        f"output folder {str(path)!r} is no longer empty: something "
                        "was written into it while alsprog ran; nothing was written."
                    ) from exc
                raise
            return
        prefix = f"{path.name}.old-"
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=prefix))
        old.rmdir()
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old, path)
            raise
        _mark(old, prefix)
        assert plan.manifest is not None
        stayed = _remove_listed(old, plan.manifest, set())
        (old / TEMP_MARKER_NAME).unlink()
        (old / MANIFEST_NAME).unlink(missing_ok=True)
        try:
            old.rmdir()
        except OSError:
            logger.warning(
                "kept %s: it holds %s, which alsprog did not write or which changed",
                old,
                _shown(stayed) or "files",
            )


@contextmanager
def atomic_dir(
    path: str | os.PathLike[str],
    *,
    command: str = "alsprog",
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    force: bool = False,
    rerun_in_place: bool = False,
) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it becomes ``path`` on success.

    Follows the module's rule: ``path`` may be new, empty, or a folder alsprog wrote
    (replaced: its listed files removed); any other folder is refused with
    :class:`OutputError` before the body runs, unless ``force`` (alsprog's files are
    added beside the others; a name clash is refused).  The folder is checked again
    when the body is done.  A failed or interrupted body leaves ``path`` as it was and
    removes the temporary folder; stale temporary folders of earlier, killed runs into
    ``path`` are removed first.  The result carries a manifest listing what was
    written.

    Parameters
    ----------
    path : path
        The output folder.
    command : str
        What writes it, recorded in the manifest (``"alsprog simulate"``...).
    inputs, force, rerun_in_place
        See :func:`out_folder_problems`.

    Raises
    ------
    OutputError
        If alsprog may not write ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "result"
    >>> with atomic_dir(out, command="example") as tmp:
    ...     _ = (tmp / "a.txt").write_text("a")
    >>> sorted(p.name for p in out.iterdir())
    ['.alsprog-manifest.json', 'a.txt']
    """
    kw = dict(inputs=inputs, force=force, rerun_in_place=rerun_in_place)
    plan = _plan(path, **kw)  # type: ignore[arg-type]
    if plan.problems:
        raise OutputError("; ".join(plan.problems) + ".")
    target = plan.path
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{target.name}.tmp-"
    remove_stale_temps(target.parent, prefix)
    remove_stale_temps(target.parent, f"{target.name}.old-")
    tmp = _make_temp(target.parent, prefix)
    _building.add(tmp)
    try:
        yield tmp
        plan = _plan(path, **kw)  # type: ignore[arg-type]  # anything new there?
        if plan.problems:
            raise OutputError("; ".join(plan.problems) + ".")
        if plan.mode == "merge" or (plan.mode != "new" and _contains_cwd(target)):
            _commit_in_place(tmp, plan, command)
        else:
            write_manifest(tmp, command=command)
            _commit_swap(tmp, plan)
        _record(target)
    finally:
        if tmp.exists():
            with _signals_deferred():
                _remove_tree(tmp)
