"""What a figure of the report is, and the plumbing every section's figures share.

Owns: :class:`FigureOut` (one drawn figure: name, section, caption, PNG bytes), a new
``matplotlib.figure.Figure`` with a grid of axes (:func:`new_figure`, built directly,
so a run never changes the caller's pyplot state or backend), its PNG bytes
(:func:`png`), panel grids (:func:`grid`) and the file names of the figures
(``figures/<name>.png``, named by content, e.g. ``power_curve.png``, so a name never
depends on which other figures a run drew).
Leaves: what each figure shows to the section that draws it
(:mod:`alsprog.report.sections`); every drawing to :mod:`alsprog.plots`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["FigureOut", "figure_files", "grid", "new_figure", "png"]

DPI = 110


@dataclass(frozen=True)
class FigureOut:
    """One figure: its file name, section, caption and PNG bytes.

    ``section`` is the name of the section that drew it; the report shows it in
    that section.

    Examples
    --------
    >>> FigureOut("power_curve", "design", "Power curves", "...", b"").section
    'design'
    """

    name: str
    section: str
    title: str
    caption: str
    png: bytes


def new_figure(
    width: float, height: float, nrows: int = 1, ncols: int = 1
) -> tuple[Any, Any]:
    """A constrained-layout figure (inches) and its 2-d array of axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def png(fig: Any) -> bytes:
    """A figure's PNG bytes at the report's resolution."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    """Rows and columns of a grid of ``n`` panels at most ``max_cols`` wide.

    Examples
    --------
    >>> grid(5), grid(3, 2)
    ((2, 4), (2, 2))
    """
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def figure_files(figs: list[FigureOut]) -> list[str]:
    """The file names the figures are written under, in order."""
    return [f"figures/{f.name}.png" for f in figs]
