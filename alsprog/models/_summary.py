"""The one summary object every alsprog model returns from ``summary()``.

Owns: :class:`Summary`, a container of named DataFrames plus header facts, rendered as an
lme4-like text table (``str``), as HTML for notebooks (``_repr_html_``) and for reports
(``to_html``).  Numbers stay numbers in ``.tables``; formatting happens only here.
Leaves: computing the numbers to the models.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["Summary"]


class Summary:
    """Tables and header facts of a fitted model.

    Parameters
    ----------
    title : str
        First line, e.g. ``"Linear mixed model fit by REML"``.
    header : mapping of str to object
        Facts shown under the title as ``key: value`` lines, in order.
    tables : mapping of str to pandas.DataFrame
        Named result tables (numeric columns, labelled rows), in display order.
    captions : mapping of str to str, optional
        Heading shown above each table; defaults to the table's name.
    notes : sequence of str, optional
        Lines shown after the tables (warnings such as a singular fit).
    digits : int, default 4
        Significant digits when rendering numbers.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
    header : dict of str to object
    notes : list of str

    Examples
    --------
    >>> s = Summary("Demo fit", {"Number of obs": 3},
    ...             {"fixed": pd.DataFrame({"estimate": [1.5]}, index=["x"])})
    >>> print(s)
    Demo fit
    Number of obs: 3
    <BLANKLINE>
    fixed:
       estimate
    x       1.5
    """

    def __init__(
        self,
        title: str,
        header: Mapping[str, object],
        tables: Mapping[str, pd.DataFrame],
        *,
        captions: Mapping[str, str] | None = None,
        notes: Sequence[str] = (),
        digits: int = 4,
    ) -> None:
        self.title = title
        self.header = dict(header)
        self.tables = dict(tables)
        self.captions = dict(captions or {})
        self.notes = list(notes)
        self.digits = digits

    def _fmt_table(self, df: pd.DataFrame) -> str:
        def fmt(v: object) -> str:
            if isinstance(v, float | np.floating):
                v = float(v)
                if np.isnan(v):
                    return ""
                return (
                    f"{v:.{self.digits}g}" if abs(v) < 1e6 else f"{v:.{self.digits}e}"
                )
            return str(v)

        shown = df.copy()
        for c in shown.columns:
            shown[c] = shown[c].map(fmt).astype(object)
        return shown.to_string()

    def __str__(self) -> str:
        lines = [self.title]
        lines += [f"{k}: {v}" for k, v in self.header.items()]
        for name, table in self.tables.items():
            lines += ["", f"{self.captions.get(name, name)}:", self._fmt_table(table)]
        if self.notes:
            lines.append("")
            lines += list(self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def to_html(self) -> str:
        """The summary as an HTML fragment (title, facts, one table per result).

        Returns
        -------
        str
        """
        parts = [f"<h4>{html.escape(self.title)}</h4>", "<dl>"]
        for k, v in self.header.items():
            parts.append(
                f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
            )
        parts.append("</dl>")
        for name, table in self.tables.items():
            parts.append(f"<h5>{html.escape(self.captions.get(name, name))}</h5>")
            parts.append(
                table.to_html(float_format=lambda v: f"{v:.{self.digits}g}", na_rep="")
            )
        for note in self.notes:
            parts.append(f"<p>{html.escape(note)}</p>")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()
