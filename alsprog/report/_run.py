"""One command from data to report: the stages of a run, in order, into one folder.

Owns: :func:`run` (check everything first, then imaging -> assemble -> models ->
forecast -> design -> biomarkers -> figures -> report, each timed and logged, into an
output folder built as ``out.tmp-*`` and put in place at the end, under the one
output-folder rule of :mod:`alsprog._io`), :class:`RunResult`,
keeping the inputs beside the outputs (``inputs/`` and a rewritten ``config.toml``)
and ``run.log``.
Leaves: the config to :mod:`alsprog.report._config`, the checks to
:mod:`alsprog.report._check`, the stages to :mod:`alsprog.report._stages`, figures
and HTML to :mod:`alsprog.report._figures` / :mod:`alsprog.report._html`.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from alsprog.report._config import ConfigError, RunConfig, dump_config, parse_config

__all__ = ["STAGES", "RunResult", "check", "run"]

logger = logging.getLogger(__name__)

#: The stages of a run, in order.
STAGES = (
    "check",
    "imaging",
    "assemble",
    "models",
    "forecast",
    "design",
    "biomarkers",
    "figures",
    "report",
)

#: Libraries whose versions go into run.log and the report.
_LIBRARIES = (
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "formulaic",
    "pymc",
    "pytensor",
    "numpyro",
    "jax",
    "arviz",
    "nibabel",
    "matplotlib",
    "joblib",
)

StageCallback = Callable[[int, int, str, str], None]


@dataclass
class RunResult:
    """What a run wrote and how long each stage took.

    Attributes
    ----------
    out : pathlib.Path
        The output folder.
    report : pathlib.Path
        ``out / "report.html"``.
    stage_seconds : dict of str to float
        Wall time of each stage.
    files : list of str
        Every file written, relative to ``out`` (the copies under ``inputs/`` are
        summarised by folder).
    warnings : list of str
        alsprog's own warnings (:class:`~alsprog.errors.AlsprogWarning`) raised while
        running, one line each as ``[stage] message`` (counted when repeated); also
        in ``run.log`` and the report.
    notes : dict of str to list of str
        What each stage reported (skips, counts).
    n_figures : int
    library_warnings : list of str
        Other libraries' warnings and log records (PyTensor, arviz, pandas, JAX...),
        kept in ``run.log`` only.
    seed : int or None
        The run's seed (``run.seed``); every step's seed derives from it.
    """

    out: Path
    report: Path
    stage_seconds: dict[str, float] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    n_figures: int = 0
    library_warnings: list[str] = field(default_factory=list)
    seed: int | None = None


class _Log:
    """run.log: timestamped lines of what ran."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, text: str) -> None:
        stamp = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
        for i, line in enumerate(str(text).splitlines() or [""]):
            self.lines.append(
                f"{stamp}  {line}" if i == 0 else f"{' ' * len(stamp)}  {line}"
            )
        logger.info("%s", text)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def versions() -> dict[str, str]:
    """Versions of alsprog, Python and the key libraries."""
    from importlib.metadata import PackageNotFoundError, version

    from alsprog._version import __version__

    out = {
        "alsprog": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    for lib in _LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out


class _LibraryLog(logging.Handler):
    """Other libraries' log records during a stage, kept for run.log."""

    def __init__(self, sink: list[str], log: _Log, stage: str) -> None:
        super().__init__()
        self.sink, self.log, self.stage = sink, log, stage

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] == "alsprog":
            return
        try:
            text = record.getMessage()
        except Exception:  # a library's malformed record: keep its template
            text = str(record.msg)
        line = f"[{self.stage}] {record.name} {record.levelname}: {text}"
        self.sink.append(line)
        self.log.add(f"library log {line}")


@contextmanager
def _capture(
    sink: list[str], log: _Log, stage: str, library: list[str]
) -> Iterator[None]:
    """Record the warnings raised inside (deduplicated, counted): alsprog's own
    (:class:`~alsprog.errors.AlsprogWarning`) into ``sink``, in alsprog's words;
    other libraries' warnings and log records into ``library`` (run.log only)."""
    from alsprog.errors import AlsprogWarning

    handler = _LibraryLog(library, log, stage)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        root.removeHandler(handler)
    counts: dict[tuple[bool, str], int] = {}
    for w in caught:
        ours = issubclass(w.category, AlsprogWarning)
        text = (
            str(w.message)
            if ours
            else f"{w.category.__name__}: {w.message} "
            f"({Path(w.filename).name}:{w.lineno})"
        )
        counts[(ours, text)] = counts.get((ours, text), 0) + 1
    for (ours, text), n in counts.items():
        line = f"[{stage}] {text}" + (f" (x{n})" if n > 1 else "")
        (sink if ours else library).append(line)
        log.add(f"warning {line}" if ours else f"library warning {line}")


# ------------------------------------------------------------------- inputs
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
    """Path, size and SHA-256 of each file into ``out`` (TSV); the total size."""
    from alsprog._io import atomic_path
    from alsprog._outfolder import _sha256

    table = pd.DataFrame(
        {
            "path": [str(f) for f in files],
            "size_bytes": [f.stat().st_size for f in files],
            "sha256": [_sha256(f) for f in files],
        }
    )
    with atomic_path(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
    return int(table["size_bytes"].sum())


def _keep_inputs(
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
        visits=put_file(data.visits, "data.visits"),
        subjects=put_file(data.subjects, "data.subjects"),
        imaging=put_file(data.imaging, "data.imaging") if data.imaging else None,
    )
    new_img = config.imaging
    if config.imaging is not None:
        im = config.imaging
        root = im.root.resolve()
        dst = place(root.name, "imaging.root")
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
            if key == "imaging.atlas" and im.labels is None:
                stem = p.name.split(".")[0]
                tsv = p.with_name(f"{stem}.tsv")
                if tsv.is_file():
                    copy(str(tsv), str(dst.with_name(f"{dst.name.split('.')[0]}.tsv")))
            return dst

        atlas = inside(im.atlas, "imaging.atlas")
        assert atlas is not None
        new_img = replace(
            im, root=new_root, atlas=atlas, labels=inside(im.labels, "imaging.labels")
        )
    if config.path is not None:
        shutil.copy2(config.path, folder / "config.original.toml")
        tables.append("config.original.toml")
    how = "hard-linked" if mode == "link" else "copied"
    said.insert(0, f"inputs/ ({mode}): {', '.join(tables)} {how}")
    return replace(config, data=new_data, imaging=new_img), said


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


def _list_files(out: Path) -> list[str]:
    from alsprog._io import TEMP_MARKER_NAME

    files = []
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if rel.parts[0] not in ("inputs", TEMP_MARKER_NAME) and p.is_file():
            files.append(rel.as_posix())
    inputs = out / "inputs"
    if inputs.is_dir():
        for q in sorted(inputs.iterdir()):
            name = q.relative_to(out).as_posix()
            if q.is_dir():
                n = sum(1 for x in q.rglob("*") if x.is_file())
                files.append(f"{name}/ ({n} files)")
            else:
                files.append(name)
    return files


# ---------------------------------------------------------------------- run
def _resolve(config: RunConfig | str | os.PathLike[str]) -> tuple[RunConfig, list[Any]]:
    if isinstance(config, RunConfig):
        from alsprog.report._config import _check_value, _Collector
        from alsprog.report._schema import SCHEMA

        c = _Collector(str(config.path) if config.path else "run config")
        for key, p in config.input_paths().items():
            section, name = key.split(".")
            k = next(k for k in SCHEMA[section] if k.name == name)
            _check_value(k, str(p), key, c, Path.cwd())
        return config, c.problems
    cfg, problems = parse_config(config)
    if cfg is None:
        raise ConfigError(problems, source=str(Path(config).resolve()))
    return cfg, problems


def check(
    config: RunConfig | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
) -> RunConfig:
    """Check a run without running it: the config, input paths, tables, formulas.

    Parameters
    ----------
    config : RunConfig or path
        A config or its TOML file.
    out : path, optional
        Output folder to check (default: the config's ``run.out``), as :func:`run`
        would.
    force : bool, default False
        As in :func:`run`.

    Returns
    -------
    RunConfig
        The config, when nothing is wrong.

    Raises
    ------
    ConfigError
        Listing every problem (the same list :func:`run` would stop with).
    """
    from alsprog.report._check import check_run

    cfg, problems = _resolve(config)
    out_path = Path(out) if out is not None else cfg.run.out
    checked = check_run(cfg, out_path, force=force)
    problems = [*problems, *checked.problems]
    if problems:
        raise ConfigError(problems, source=str(cfg.path) if cfg.path else None)
    return cfg


def run(
    config: RunConfig | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    progress: bool | None = None,
    on_stage: StageCallback | None = None,
    force: bool = False,
) -> RunResult:
    """Run the whole analysis a config describes and write its report.

    Stages: **check** (every problem of the config, the input paths, the tables and
    the formulas, listed at once, before anything is fitted), **imaging** (ROI features
    of the NIfTI maps), **assemble** (the long table), **models** (fit, summaries,
    posteriors, LOO comparison), **forecast** (held-out patients' forecasts and the
    backtest), **design** (sample sizes and power), **biomarkers** (classifier, change
    rates, progression markers), **figures** and **report**.

    The output folder is built beside ``out`` as ``out.tmp-*`` and put in place at
    the end: a failed or interrupted run leaves ``out`` untouched (and a killed run's
    ``out.tmp-*`` is removed by the next run into ``out``).  It holds
    ``table.parquet`` / ``table.csv``, ``cohort.csv``, ``models/`` (summary CSVs, text
    summaries, ``<name>.npz`` mixed models, ``<name>.nc`` Bayesian InferenceData,
    ``comparison.csv``), ``forecasts.csv``,
    ``backtest.csv``, ``sample_size.csv``, ``power_curve.csv``, ``biomarkers/``,
    ``imaging/`` (features and QC, with NIfTI inputs), ``figures/*.png``,
    ``report.html``, ``run.log``, ``inputs/`` (the inputs as ``run.inputs`` says:
    by default tables copied and NIfTI trees hard-linked, or left in place with
    their checksums in ``inputs/image_checksums.tsv``; ``run.log`` says which) and
    ``config.toml`` (pointing at what was kept, so ``alsprog run OUT/config.toml``
    repeats the run) and ``.alsprog-manifest.json`` (what alsprog wrote, so that
    only alsprog's own files are ever replaced).

    Parameters
    ----------
    config : RunConfig or path
        A config, or the TOML file to read (see :func:`load_config`).
    out : path, optional
        Output folder (default: the config's ``run.out``).  An existing folder is
        used only if it is empty or an earlier alsprog result holding nothing else
        (its manifest's files are then replaced); any other folder, one that is or
        holds an input, or one inside an input folder is refused before anything
        runs.
    progress : bool or None
        Progress bars of the long steps (sampling, images, simulations): ``None`` on
        a terminal only.
    on_stage : callable, optional
        Called as ``on_stage(i, n, stage, message)`` when stage ``i`` of ``n`` starts
        and as it reports progress (the CLI prints these lines).
    force : bool, default False
        Write into a non-empty folder alsprog did not write: alsprog's files are added
        beside the others; none of them is deleted or overwritten (a name clash is
        refused).

    Returns
    -------
    RunResult

    Raises
    ------
    ConfigError
        Listing every problem of the config, input paths, input tables and formulas
        and the output folder, before any model is fitted.
    OutputError
        If the output folder changed while the run went on so that alsprog may no
        longer write it (nothing is written then).
    AlsprogError
        From a stage (e.g. an unreadable image); nothing is written then.
    """
    from alsprog._io import MANIFEST_NAME, atomic_dir
    from alsprog.report import _stages as st
    from alsprog.report._check import check_run, run_inputs
    from alsprog.report._figures import figure_files, make_figures
    from alsprog.report._html import render_report

    started = datetime.now(UTC).astimezone()
    cfg, problems = _resolve(config)
    out_path = Path(out) if out is not None else cfg.run.out
    n = len(STAGES)
    log = _Log()
    log.add(f"alsprog run started; config {cfg.path or '(in code)'}; output {out_path}")
    vers = versions()
    log.add("versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    seconds: dict[str, float] = {}
    caught: list[str] = []
    library: list[str] = []
    current: dict[str, Any] = {"i": 0, "name": ""}

    def say(msg: str) -> None:
        log.add(f"[{current['name']}] {msg}")
        if on_stage is not None:
            on_stage(int(current["i"]), n, str(current["name"]), msg)

    @contextmanager
    def stage(name: str, intro: str) -> Iterator[None]:
        current["i"], current["name"] = STAGES.index(name) + 1, name
        say(intro)
        t0 = time.perf_counter()
        with _capture(caught, log, name, library):
            yield
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
        log.add(f"[{name}] done in {seconds[name]:.1f} s")

    with stage("check", "config, input paths, tables and formulas"):
        checked = check_run(cfg, out_path, force=force)
        problems = [*problems, *checked.problems]
        for w in checked.warnings:
            caught.append(f"[check] {w}")
            log.add(f"warning [check] {w}")
        for w in checked.library_warnings:
            library.append(f"[check] {w}")
            log.add(f"library warning [check] {w}")
        if problems:
            raise ConfigError(problems, source=str(cfg.path) if cfg.path else None)
        say("no problems found")

    with atomic_dir(
        out_path,
        command="alsprog run",
        inputs=run_inputs(cfg),
        force=force,
        rerun_in_place=True,
    ) as tmp:
        s = st.State(config=cfg, out=tmp, progress=progress, say=say)
        with stage("check", "keeping the inputs beside the outputs"):
            kept, how = _keep_inputs(cfg, tmp / "inputs", cfg.run.inputs)
            for line in how:
                say(line)
            # the copy's config re-runs into its own folder: run.out = "."
            kept = replace(kept, run=replace(kept.run, out=tmp))
        with stage(
            "imaging",
            "ROI features of the NIfTI maps" if cfg.imaging else "imaging features",
        ):
            st.stage_imaging(s)
        with stage("assemble", "long-format table"):
            st.stage_assemble(s, checked.table)
        with stage("models", f"{len(cfg.models)} model(s)"):
            st.stage_models(s)
        with stage("forecast", "forecasts and backtest"):
            if st.forecast_available():
                st.stage_forecast(s)
            else:
                s.note("forecast", "alsprog.forecast is not available; stage skipped")
        with stage("design", "sample size and power"):
            st.stage_design(s)
        with stage("biomarkers", "imaging biomarkers"):
            st.stage_biomarkers(s)
        with stage("figures", "drawing"):
            figs = make_figures(s)
            say(f"{len(figs)} figures")
        with stage("report", "report.html, config.toml, run.log"):
            config_text = dump_config(kept, relative_to=tmp)
            _write(tmp / "config.toml", config_text)
            files = _list_files(tmp) + ["report.html", "run.log", MANIFEST_NAME]
            info = {
                "started": started.isoformat(timespec="seconds"),
                "versions": vers,
                "stage_seconds": dict(seconds),
                "warnings": list(caught),
                "files": sorted(set(files)),
                "config_toml": config_text,
            }
            _write(
                tmp / "report.html", render_report(s, figs, figure_files(figs), info)
            )
        total = sum(seconds.values())
        log.add(
            f"seed {cfg.run.seed} (run.seed), from which every step's seed derives; "
            "seeds: " + ", ".join(f"{k}={v}" for k, v in s.seeds.items())
        )
        log.add(
            "stage seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items())
            + f"; total {total:.1f}"
        )
        log.add(
            f"{len(caught)} alsprog warning(s), {len(library)} other libraries' "
            f"warning(s) and log record(s); output {out_path}; repeat with "
            f"`alsprog run {out_path / 'config.toml'}`"
        )
        _write(tmp / "run.log", log.text())
    return RunResult(
        out=out_path,
        report=out_path / "report.html",
        stage_seconds=seconds,
        files=sorted(set(files)),
        warnings=caught,
        notes=s.notes,
        n_figures=len(figs),
        library_warnings=library,
        seed=cfg.run.seed,
    )


def _write(path: Path, text: str) -> None:
    from alsprog._io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
