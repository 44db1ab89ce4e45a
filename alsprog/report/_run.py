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
        Warnings raised while running (also in ``run.log`` and the report).
    notes : dict of str to list of str
        What each stage reported (skips, counts).
    n_figures : int
    """

    out: Path
    report: Path
    stage_seconds: dict[str, float] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    n_figures: int = 0


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


@contextmanager
def _capture(sink: list[str], log: _Log, stage: str) -> Iterator[None]:
    """Record every warning raised inside into ``sink`` (deduplicated, counted)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    counts: dict[str, int] = {}
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        counts[text] = counts.get(text, 0) + 1
    for text, n in counts.items():
        line = f"[{stage}] {text}" + (f" (x{n})" if n > 1 else "")
        sink.append(line)
        log.add(f"warning {line}")


# ------------------------------------------------------------------- inputs
def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _keep_inputs(config: RunConfig, folder: Path, mode: str) -> RunConfig:
    """Copy (or hard-link) every input into ``folder``; the config pointing at them."""
    if mode == "none":
        return config
    copy = _link_or_copy if mode == "link" else shutil.copy2
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()

    def place(name: str, key: str) -> Path:
        if name in used:
            name = f"{key.replace('.', '_')}_{name}"
        used.add(name)
        return folder / name

    def put_file(src: Path, key: str) -> Path:
        dst = place(src.name, key)
        copy(str(src), str(dst))
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
        if root.is_dir():
            new_root = place(root.name, "imaging.root")
            shutil.copytree(root, new_root, copy_function=copy)
        else:
            new_root = _copy_manifest(root, place(root.name, "imaging.root"), copy)

        def inside(p: Path | None, key: str) -> Path | None:
            if p is None:
                return None
            p = p.resolve()
            if root.is_dir() and root in p.parents:
                return new_root / p.relative_to(root)
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
    return replace(config, data=new_data, imaging=new_img)


def _copy_manifest(manifest: Path, dst: Path, copy: Callable[[str, str], Any]) -> Path:
    """Copy a manifest and the images it lists; paths in the copy are relative."""
    sep = "\t" if manifest.suffix.lower() == ".tsv" else ","
    m = pd.read_csv(manifest, sep=sep, dtype=str, keep_default_na=False)
    images = dst.parent / f"{dst.stem}_images"
    new_paths = []
    for i, p in enumerate(m["path"]):
        src = Path(p) if Path(p).is_absolute() else manifest.parent / p
        target = images / f"{i:05d}_{src.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        copy(str(src), str(target))
        new_paths.append(os.path.relpath(target, dst.parent))
    m["path"] = new_paths
    m.to_csv(dst, sep=sep, index=False)
    return dst


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
    ``report.html``, ``run.log``, ``inputs/`` (the inputs, copied) and
    ``config.toml`` (pointing at ``inputs/``, so ``alsprog run OUT/config.toml``
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
        with _capture(caught, log, name):
            yield
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
        log.add(f"[{name}] done in {seconds[name]:.1f} s")

    with stage("check", "config, input paths, tables and formulas"):
        checked = check_run(cfg, out_path, force=force)
        problems = [*problems, *checked.problems]
        for w in checked.warnings:
            caught.append(f"[check] {w}")
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
            kept = _keep_inputs(cfg, tmp / "inputs", cfg.run.inputs)
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
        log.add("seeds: " + ", ".join(f"{k}={v}" for k, v in s.seeds.items()))
        log.add(
            "stage seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items())
            + f"; total {total:.1f}"
        )
        log.add(
            f"{len(caught)} warning(s); output {out_path}; repeat with "
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
    )


def _write(path: Path, text: str) -> None:
    from alsprog._io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
