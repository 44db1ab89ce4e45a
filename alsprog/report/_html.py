"""The building blocks of the report's HTML, every text escaped.

Owns: escaping (:func:`esc`), numbers as the report shows them (:func:`fmt_number`),
tables from DataFrames (:func:`table_html`), figures embedded as base64 PNG
(:func:`figure_html`), facts and notes, and :class:`Figures` (the figures of one
section, each shown once: where the section places it, else at its end).
Leaves: the page around the sections (CSS, script, navigation, run details) to
:mod:`alsprog.report._page`; what each section shows to that section.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from alsprog.report._figures import FigureOut

__all__ = [
    "Figures",
    "esc",
    "facts_html",
    "figure_html",
    "fmt_number",
    "notes_html",
    "table_html",
]


def esc(x: Any) -> str:
    """HTML-escape any value's text."""
    return html.escape(str(x), quote=True)


def fmt_number(v: Any) -> str:
    """A number as the report shows it (4 significant digits, thousands grouped)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        v = float(v)
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v == int(v) and abs(v) < 1e7:
            return f"{int(v):,}"
        if abs(v) >= 1e4:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return str(v)


def table_html(
    df: pd.DataFrame, *, index: bool = False, caption: str | None = None
) -> str:
    """A DataFrame as an escaped HTML table with formatted numbers."""
    shown = df.copy()
    for c in shown.columns:
        shown[c] = shown[c].map(fmt_number).astype(object)
    parts = ['<div class="scroll"><table class="data">']
    if caption:
        parts.append(f"<caption>{esc(caption)}</caption>")
    heads = ([esc(df.index.name or "")] if index else []) + [esc(c) for c in df.columns]
    parts.append(
        "<thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead>"
    )
    parts.append("<tbody>")
    for idx, row in shown.iterrows():
        cells = ([f"<th>{esc(idx)}</th>"] if index else []) + [
            f"<td>{esc(v)}</td>" for v in row.tolist()
        ]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


def figure_html(fig: FigureOut, file: str) -> str:
    """A figure embedded as a base64 PNG with its caption."""
    data = base64.b64encode(fig.png).decode("ascii")
    return (
        f'<figure id="fig-{esc(fig.name)}"><img src="data:image/png;base64,{data}" '
        f'alt="{esc(fig.title)}" title="{esc(file)}">'
        f"<figcaption><b>{esc(fig.title)}.</b> {esc(fig.caption)}</figcaption></figure>"
    )


def facts_html(facts: Mapping[str, Any]) -> str:
    """Key-value facts as a definition list."""
    rows = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(fmt_number(v))}</dd>" for k, v in facts.items()
    )
    return f'<dl class="facts">{rows}</dl>'


def notes_html(notes: Iterable[str]) -> str:
    """Stage notes as highlighted paragraphs."""
    return "".join(f'<p class="note">{esc(n)}</p>' for n in notes)


class Figures:
    """The figures of one section and their files, each shown once.

    A section's :meth:`~alsprog.report.sections.Section.render` places a figure with
    :meth:`html`; :meth:`rest` gives those it did not place, which the page shows
    at the section's end, so no figure a section draws is left out.

    Examples
    --------
    >>> f = FigureOut("power_curve", "design", "Power", "Caption", b"")
    >>> figs = Figures([f], ["figures/power_curve.png"])
    >>> figs.html("power_curve").startswith('<figure id="fig-power_curve">')
    True
    >>> figs.html("not_drawn"), figs.rest()
    ('', [])
    """

    def __init__(self, figures: Sequence[FigureOut], files: Sequence[str]) -> None:
        self._figures = {
            f.name: (f, file) for f, file in zip(figures, files, strict=True)
        }
        self._placed: set[str] = set()

    def html(self, name: str) -> str:
        """The figure called ``name`` (empty when it was not drawn)."""
        if name not in self._figures or name in self._placed:
            return ""
        self._placed.add(name)
        f, file = self._figures[name]
        return figure_html(f, file)

    def rest(self) -> list[str]:
        """The figures not placed yet, in the order they were drawn."""
        return [h for name in list(self._figures) if (h := self.html(name))]
