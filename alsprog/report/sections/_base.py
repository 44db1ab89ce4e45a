"""What a section of a run is, and what the sections of a run share.

Owns: :class:`Section` (one part of a run: a stage that computes a frozen result, the
figures drawn from it and its part of the report), :class:`RunContext` (the config,
the output folder, the seeds, the notes and the results of the sections run so far),
:func:`stage_seed`, :func:`check_sections` and :func:`draw_figures` (every figure of
every section, written to ``figures/``).
Leaves: the order, timing and logging of the stages and the output folder to
:mod:`alsprog.report._run`; the page around the sections' fragments to
:mod:`alsprog.report._page`; each section's own work to its module.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from alsprog.report._config import RunConfig
from alsprog.report._figures import FigureOut

if TYPE_CHECKING:
    from alsprog.report._html import Figures

__all__ = [
    "FigureMaker",
    "RunContext",
    "Section",
    "check_sections",
    "draw_figures",
    "stage_seed",
]

T = TypeVar("T")

#: Stages every run has around its sections' stages.
FIXED_STAGES = ("check", "figures", "report")


def stage_seed(base: int, label: str) -> int:
    """A seed for one step, fixed by the run seed and the step's name.

    Adding or removing a model does not change the seeds of the others.

    Examples
    --------
    >>> stage_seed(2026, "models.lmm") == stage_seed(2026, "models.lmm")
    True
    """
    ss = np.random.SeedSequence([int(base), zlib.crc32(label.encode())])
    return int(ss.generate_state(1)[0] >> 1)


def _silent(msg: str) -> None:
    """Say nothing (the default of :attr:`RunContext.say`)."""


@dataclass(eq=False)
class RunContext:
    """What the sections of one run share.

    Each section reads the config and the frozen results of the sections before it
    (:meth:`result`), and reports through :meth:`note`, :meth:`seed` and
    :meth:`write`; it never changes another section's result.

    Attributes
    ----------
    config : RunConfig
    out : pathlib.Path
        The (temporary) output folder the tables and figures go into.
    progress : bool or None
        Progress bars of the long steps.
    say : callable
        Reports a line of progress (the run logs and prints it).
    checked_table : pandas.DataFrame or None
        The long table the check stage assembled (without NIfTI features).
    proact : alsprog.data.ProactCohort or None
        The PRO-ACT export read by the check stage (``[data] proact``).
    seeds : dict of str to int
        The seed of every step so far, by label (for ``run.log``).
    notes : dict of str to list of str
        What each stage reported (skips, counts), by stage.
    results : dict of str to object
        The frozen result of each section run so far, by section name.

    Examples
    --------
    >>> from alsprog.report._config import DataConfig, RunConfig
    >>> cfg = RunConfig(data=DataConfig(visits=Path("v.csv"), subjects=Path("s.csv")))
    >>> ctx = RunContext(config=cfg, out=Path("out"))
    >>> ctx.seed("models.lmm") == stage_seed(cfg.run.seed, "models.lmm")
    True
    >>> ctx.note("design", "disabled in the config")
    >>> ctx.notes
    {'design': ['disabled in the config']}
    """

    config: RunConfig
    out: Path
    progress: bool | None = None
    say: Callable[[str], None] = _silent
    checked_table: pd.DataFrame | None = None
    proact: Any = None
    seeds: dict[str, int] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def seed(self, label: str) -> int:
        """The seed of a step, recorded for the log."""
        s = stage_seed(self.config.run.seed, label)
        self.seeds[label] = s
        return s

    def note(self, stage: str, text: str) -> None:
        """Remember something the report should say about a stage."""
        self.notes.setdefault(stage, []).append(text)
        self.say(text)

    def write(self, df: pd.DataFrame, rel: str, *, index: bool = False) -> Path:
        """Write a result table (CSV) into the output folder."""
        from alsprog._io import atomic_path

        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=index)
        return path

    def write_text(self, rel: str, text: str) -> Path:
        """Write a text file (UTF-8) into the output folder."""
        from alsprog._io import atomic_path

        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return path

    def result(self, name: str, kind: type[T]) -> T:
        """The result of the section called ``name``, which must be a ``kind``.

        Raises
        ------
        LookupError
            If that section has not run (it comes later in the run, or not at all).
        """
        try:
            r = self.results[name]
        except KeyError:
            raise LookupError(
                f"no result of section {name!r} yet (sections run so far: "
                f"{', '.join(self.results) or 'none'}); put it before the section "
                "that reads it"
            ) from None
        if not isinstance(r, kind):
            raise TypeError(
                f"the result of section {name!r} is a {type(r).__name__}, "
                f"not a {kind.__name__}"
            )
        return r


#: Draws one figure from the results in a context, or returns None when there is
#: nothing to draw.
FigureMaker = Callable[[RunContext], FigureOut | None]


class Section:
    """One part of a run: its stage, its figures and its part of the report.

    Subclass it, set :attr:`name` (and :attr:`title` to have a part in the report),
    and override what applies; a run walks its list of sections in order (see the
    ``sections`` argument of :func:`alsprog.report.run`).

    1. Stage: :meth:`compute` runs in the stage :attr:`stage` (``[k/n] stage:
       intro`` on the command line, timed in ``run.log``) and returns the section's
       result: a frozen dataclass that later sections read with
       :meth:`RunContext.result` and never change.  It writes its tables with
       :meth:`RunContext.write`.
    2. Figures: each function in :attr:`figures` draws one figure from the results
       (``None`` when there is nothing to draw), in the run's ``figures`` stage; it
       is written to ``figures/<name>.png`` and always shown in this section of the
       report (where :meth:`render` places it, else at the section's end).  Its
       :attr:`FigureOut.section` must be this section's :attr:`name`.
    3. Report: :meth:`render` returns the section's HTML fragments, :meth:`kpis`
       its facts for the report's "At a glance".

    Examples
    --------
    >>> class Note(Section):
    ...     name = "note"
    ...     title = "A note"
    ...
    ...     def render(self, ctx, result, figures):
    ...         return ["<p>Nothing else to say.</p>"]
    >>> Note().stage_name, Note().title
    ('note', 'A note')
    """

    #: The section's name: the key of its result, the ``id`` of its part of the
    #: report and the stage name unless :attr:`stage` says otherwise.
    name: ClassVar[str] = ""
    #: The stage its computation runs in (default: :attr:`name`).
    stage: ClassVar[str | None] = None
    #: Heading of its part of the report; ``None``: no part of its own.
    title: ClassVar[str | None] = None
    #: Where its facts go in "At a glance" (lower first; equal ranks keep the
    #: order of the sections).
    kpi_order: ClassVar[int] = 100
    #: The functions that draw its figures, in order.
    figures: ClassVar[tuple[FigureMaker, ...]] = ()

    @property
    def stage_name(self) -> str:
        """The stage its computation runs in."""
        return self.stage or self.name

    def intro(self, ctx: RunContext) -> str:
        """The stage's first line (what it is about to do)."""
        return self.title or self.name

    def compute(self, ctx: RunContext) -> Any:
        """Run the section's stage; its frozen result."""
        return None

    def render(self, ctx: RunContext, result: Any, figures: Figures) -> list[str]:
        """The section's HTML fragments, in order (empty ones are left out).

        ``result`` is None when the section has not run; ``figures.html(name)``
        places one of its figures (the others follow the fragments).
        """
        return []

    def kpis(self, ctx: RunContext, result: Any) -> list[tuple[str, str]]:
        """Label and value of each of its facts for "At a glance"."""
        return []


def check_sections(sections: Sequence[Section]) -> tuple[str, ...]:
    """The stages of a run over these sections, in order; checks the list.

    Raises
    ------
    TypeError
        If an entry is not a :class:`Section`.
    ValueError
        If a name or stage is empty or used twice or is one of the fixed stages
        (check, figures, report), or a section that draws figures has no title.

    Examples
    --------
    >>> from alsprog.report.sections import SECTIONS
    >>> check_sections(SECTIONS)[:4]
    ('check', 'imaging', 'assemble', 'models')
    """
    names: set[str] = set()
    stages: list[str] = []
    for sec in sections:
        if not isinstance(sec, Section):
            raise TypeError(f"a run's sections must be Sections; got {sec!r}")
        if not sec.name or sec.name in names:
            raise ValueError(f"section name {sec.name!r} is empty or used twice")
        if sec.stage_name in stages or sec.stage_name in FIXED_STAGES:
            raise ValueError(
                f"section {sec.name!r}: stage {sec.stage_name!r} is taken; give it "
                "a stage of its own"
            )
        if sec.figures and not sec.title:
            raise ValueError(
                f"section {sec.name!r} draws figures but has no title to show them "
                "under"
            )
        names.add(sec.name)
        stages.append(sec.stage_name)
    return ("check", *stages, "figures", "report")


def draw_figures(ctx: RunContext, sections: Sequence[Section]) -> list[FigureOut]:
    """Draw every figure the sections' results allow; write them to ``figures/``.

    Raises
    ------
    ValueError
        If a section's figure names another section.
    """
    from alsprog._io import atomic_path

    out = []
    folder = ctx.out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    for sec in sections:
        for make in sec.figures:
            t0 = time.perf_counter()
            fig = make(ctx)
            if fig is None:
                continue
            if fig.section != sec.name:
                raise ValueError(
                    f"figure {fig.name!r} drawn by section {sec.name!r} names section "
                    f"{fig.section!r}"
                )
            ctx.say(f"{fig.name} ({time.perf_counter() - t0:.1f} s)")
            out.append(fig)
            with atomic_path(folder / f"{fig.name}.png") as tmp:  # named by content
                tmp.write_bytes(fig.png)
    return out
