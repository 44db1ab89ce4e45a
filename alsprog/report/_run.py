"""One command from data to report: the stages of a run, in order, into one folder.

Owns: :func:`run` (check everything first, then each section's stage in order:
imaging -> assemble -> models -> forecast -> design -> biomarkers, then the sections'
figures and the report, each stage timed and logged, into an output folder built as
``out.tmp-*`` and put in place at the end, under the one output-folder rule of
:mod:`alsprog._io`), :class:`RunResult`, the rewritten ``config.toml`` and
``run.log``.
Leaves: the config to :mod:`alsprog.report._config`, the checks to
:mod:`alsprog.report._check`, keeping the inputs (``inputs/``) to
:mod:`alsprog.report._inputs`, each stage's work, figures and part of the report to
its section (:mod:`alsprog.report.sections`), the page to
:mod:`alsprog.report._page`.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alsprog.report._check import CheckResult
from alsprog.report._config import ConfigError, RunConfig, dump_config, parse_config
from alsprog.report._figures import FigureOut, figure_files
from alsprog.report._inputs import keep_inputs
from alsprog.report.sections import (
    SECTIONS,
    RunContext,
    Section,
    check_sections,
    draw_figures,
)

__all__ = ["STAGES", "RunResult", "check", "run"]

logger = logging.getLogger(__name__)

#: The stages of a run, in order: check, the stage of each of the
#: :data:`~alsprog.report.sections.SECTIONS` (imaging, assemble, models, forecast,
#: design, biomarkers), figures, report.
STAGES = check_sections(SECTIONS)

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
    sections: Sequence[Section] | None = None,
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
    sections : sequence of Section, optional
        The sections to run, in order (default
        :data:`alsprog.report.sections.SECTIONS`); a
        :class:`~alsprog.report.sections.Section` of your own, added to the list,
        runs as a stage of its own after the sections before it, writes its tables
        and figures into the folder and has its part in the report.

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
    ValueError
        If two sections share a name or stage (see
        :func:`~alsprog.report.sections.check_sections`).
    """
    from alsprog._io import atomic_dir
    from alsprog.report._check import run_inputs

    secs = tuple(SECTIONS if sections is None else sections)
    steps = _Steps(check_sections(secs), on_stage)
    started = datetime.now(UTC).astimezone()
    cfg, problems = _resolve(config)
    out_path = Path(out) if out is not None else cfg.run.out
    steps.log.add(
        f"alsprog run started; config {cfg.path or '(in code)'}; output {out_path}"
    )
    vers = versions()
    steps.log.add("versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    checked = _check_stage(steps, cfg, out_path, problems, force=force)
    with atomic_dir(
        out_path,
        command="alsprog run",
        inputs=run_inputs(cfg),
        force=force,
        rerun_in_place=True,
    ) as tmp:
        ctx = RunContext(
            config=cfg,
            out=tmp,
            progress=progress,
            say=steps.say,
            checked_table=checked.table,
            proact=checked.proact,
        )
        with steps.stage("check", "keeping the inputs beside the outputs"):
            kept, how = keep_inputs(cfg, tmp / "inputs", cfg.run.inputs)
            for line in how:
                steps.say(line)
            # the copy's config re-runs into its own folder: run.out = "."
            kept = replace(kept, run=replace(kept.run, out=tmp))
        for sec in secs:
            with steps.stage(sec.stage_name, sec.intro(ctx)):
                ctx.results[sec.name] = sec.compute(ctx)
        with steps.stage("figures", "drawing"):
            figs = draw_figures(ctx, secs)
            steps.say(f"{len(figs)} figures")
        with steps.stage("report", "report.html, config.toml, run.log"):
            files = _write_report(ctx, kept, figs, secs, steps, started, vers)
        _write_log(ctx, steps, out_path)
    return RunResult(
        out=out_path,
        report=out_path / "report.html",
        stage_seconds=steps.seconds,
        files=files,
        warnings=steps.caught,
        notes=ctx.notes,
        n_figures=len(figs),
        library_warnings=steps.library,
        seed=cfg.run.seed,
    )


class _Steps:
    """The stages of one run: their numbers, timings, warnings and run.log."""

    def __init__(self, stages: Sequence[str], on_stage: StageCallback | None) -> None:
        self.stages = tuple(stages)
        self.on_stage = on_stage
        self.log = _Log()
        self.seconds: dict[str, float] = {}
        self.caught: list[str] = []  # alsprog's own warnings
        self.library: list[str] = []  # other libraries' warnings and log records
        self.i, self.name = 0, ""

    def say(self, msg: str) -> None:
        """Log a line of the current stage and pass it to ``on_stage``."""
        self.log.add(f"[{self.name}] {msg}")
        if self.on_stage is not None:
            self.on_stage(self.i, len(self.stages), self.name, msg)

    @contextmanager
    def stage(self, name: str, intro: str) -> Iterator[None]:
        """Run a stage: announce it, time it, record its warnings."""
        self.i, self.name = self.stages.index(name) + 1, name
        self.say(intro)
        t0 = time.perf_counter()
        with _capture(self.caught, self.log, name, self.library):
            yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        self.log.add(f"[{name}] done in {self.seconds[name]:.1f} s")


def _check_stage(
    steps: _Steps,
    cfg: RunConfig,
    out_path: Path,
    problems: list[Any],
    *,
    force: bool,
) -> CheckResult:
    """The check stage: every problem at once (:class:`ConfigError`), or the
    checked inputs."""
    from alsprog.report._check import check_run

    with steps.stage("check", "config, input paths, tables and formulas"):
        checked = check_run(cfg, out_path, force=force)
        problems = [*problems, *checked.problems]
        for w in checked.warnings:
            steps.caught.append(f"[check] {w}")
            steps.log.add(f"warning [check] {w}")
        for w in checked.library_warnings:
            steps.library.append(f"[check] {w}")
            steps.log.add(f"library warning [check] {w}")
        if problems:
            raise ConfigError(problems, source=str(cfg.path) if cfg.path else None)
        steps.say("no problems found")
    return checked


def _write_report(
    ctx: RunContext,
    kept: RunConfig,
    figs: list[FigureOut],
    secs: Sequence[Section],
    steps: _Steps,
    started: datetime,
    vers: dict[str, str],
) -> list[str]:
    """config.toml and report.html into the folder; the files of the run."""
    from alsprog._io import MANIFEST_NAME
    from alsprog.report._page import render_report

    tmp = ctx.out
    config_text = dump_config(kept, relative_to=tmp)
    _write(tmp / "config.toml", config_text)
    files = sorted(set(_list_files(tmp) + ["report.html", "run.log", MANIFEST_NAME]))
    info = {
        "started": started.isoformat(timespec="seconds"),
        "versions": vers,
        "stage_seconds": dict(steps.seconds),
        "warnings": list(steps.caught),
        "files": files,
        "config_toml": config_text,
    }
    html = render_report(ctx, figs, figure_files(figs), info, sections=secs)
    _write(tmp / "report.html", html)
    return files


def _write_log(ctx: RunContext, steps: _Steps, out_path: Path) -> None:
    """The closing lines of run.log (seeds, timings, warnings), then the file."""
    log, seconds = steps.log, steps.seconds
    total = sum(seconds.values())
    log.add(
        f"seed {ctx.config.run.seed} (run.seed), from which every step's seed "
        "derives; seeds: " + ", ".join(f"{k}={v}" for k, v in ctx.seeds.items())
    )
    log.add(
        "stage seconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items())
        + f"; total {total:.1f}"
    )
    log.add(
        f"{len(steps.caught)} alsprog warning(s), {len(steps.library)} other "
        f"libraries' warning(s) and log record(s); output {out_path}; repeat with "
        f"`alsprog run {out_path / 'config.toml'}`"
    )
    _write(ctx.out / "run.log", log.text())


def _write(path: Path, text: str) -> None:
    from alsprog._io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
