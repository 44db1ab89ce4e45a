"""The one summary object every alsprog model returns from ``summary()``.

Owns: :class:`Summary`, a container of named DataFrames plus header facts, rendered as
text (``str``), as HTML for notebooks (``_repr_html_``) and for reports (``to_html``);
:class:`MixedSummary`, the same container printed exactly as lme4's
``print(summary(lmer(...)))`` lays it out; and the R number formatting both use
(``format()``, ``print()`` of named vectors and character matrices, ``printCoefmat``,
``format.pval``, ``zapsmall``, ``abbreviate``), so a column's numbers share one number of
decimals and show ``digits`` significant digits, as R prints them.
Numbers stay numbers in ``.tables``; formatting happens only here.
Leaves: computing the numbers to the models.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pandas as pd

__all__ = ["MixedSummary", "Summary"]

#: Columns shown with R's ``format.pval`` (``< 2e-16`` below machine epsilon).
_P_COLUMNS = frozenset({"p", "p_value", "pvalue", "P>|z|", "P>|t|", "Pr(>|t|)"})
_EPS = float(np.finfo(float).eps)


# ----------------------------------------------------------------- R's formatting
def _sci(x: float, digits: int) -> tuple[int, int, int, bool]:
    """R's ``scientific()``: sign, exponent, significant digits, rounding widens."""
    if x == 0.0:
        return 0, 0, 1, False
    neg = int(x < 0)
    r = abs(x)
    kp = math.floor(math.log10(r)) - digits + 1
    scaled = Decimal(r).scaleb(-kp)
    if scaled < Decimal(10) ** (digits - 1):
        scaled *= 10
        kp -= 1
    alpha = int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    nsig = digits
    for _ in range(digits):
        if alpha % 10 == 0:
            alpha //= 10
            nsig -= 1
        else:
            break
    if nsig == 0:
        nsig = 1
        kp += 1
    kpower = kp + digits - 1
    rgt = min(max(digits - kpower, 0), 27)
    widens = 0 < kpower <= 27 and r < 10.0**kpower - 0.5 / 10.0**rgt
    return neg, kpower, nsig, widens


def r_format(values: Sequence[float], digits: int = 7, nsmall: int = 0) -> list[str]:
    """R's ``format(x, digits=, nsmall=)`` of a numeric vector: one common layout.

    Every number gets the decimals the most demanding one needs to show ``digits``
    significant digits (fixed notation unless scientific is narrower), and all are
    padded to one width.  Missing values print as ``NA``.

    Examples
    --------
    >>> r_format([612.0900951, 35.0716644, 654.9410077], digits=4)
    ['612.09', ' 35.07', '654.94']
    >>> r_format([1e-10, 1.0], digits=3)
    ['1e-10', '1e+00']
    """
    xs = [float(v) for v in values]
    fin = [v for v in xs if math.isfinite(v)]
    if not fin:
        out = ["NA" if math.isnan(v) else ("Inf" if v > 0 else "-Inf") for v in xs]
        w = max((len(s) for s in out), default=0)
        return [s.rjust(w) for s in out]
    rgt = mxl = mxsl = mxns = -(10**9)
    mnl = 10**9
    neg = 0
    for v in fin:
        neg_i, kpower, nsig, widens = _sci(v, digits)
        left = kpower + 1 - int(widens)
        sleft = neg_i + (1 if left <= 0 else left)
        right = nsig - left
        neg = max(neg, neg_i)
        rgt, mxl, mnl = max(rgt, right), max(mxl, left), min(mnl, left)
        mxsl, mxns = max(mxsl, sleft), max(mxns, nsig)
    if mxl < 0:
        mxsl = 1 + neg
    rgt = max(rgt, 0)
    w_fixed = mxsl + rgt + (rgt != 0)
    e = 2 if (mxl > 100 or mnl <= -99) else 1
    d = mxns - 1
    w_sci = neg + (d > 0) + d + 4 + e
    if w_fixed <= w_sci:
        rgt = max(rgt, nsmall)
        strs = [_fmt_one(v, f".{rgt}f") for v in xs]
    else:
        strs = [_fmt_one(v, f".{d}e") for v in xs]
    w = max(len(s) for s in strs)
    return [s.rjust(w) for s in strs]


def _fmt_one(v: float, spec: str) -> str:
    """One number with a format spec; R's spelling of missing and infinite values."""
    if math.isnan(v):
        return "NA"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return format(v, spec)


def _r_round(x: float, digits: float) -> float:
    """R's ``round(x, digits)`` (digits rounded to the nearest whole number)."""
    if not math.isfinite(x):
        return x
    return float(round(x, math.floor(digits + 0.5)))


def _zapsmall(xs: Sequence[float], digits: int) -> list[float]:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest."""
    fin = [abs(v) for v in xs if math.isfinite(v)]
    mx = max(fin, default=0.0)
    d = max(0.0, digits - math.log10(mx)) if mx > 0 else digits
    return [_r_round(v, d) for v in xs]


def _format_pval(pv: Sequence[float], digits: int) -> list[str]:
    """R's ``format.pval(pv, digits)`` (values below machine epsilon as ``< 2e-16``)."""
    xs = [float(v) for v in pv]
    ok = [i for i, v in enumerate(xs) if not math.isnan(v)]
    out = ["NA"] * len(xs)
    small = [i for i in ok if xs[i] < _EPS]
    big = [i for i in ok if xs[i] >= _EPS]
    if big:
        vals = [xs[i] for i in big]
        expo = [math.floor(math.log10(v if v > 0 else 1e-50)) for v in vals]
        fixp = [k >= -3 or (k == -4 and digits > 1) for k in expo]
        rr = [""] * len(vals)
        for flag in (True, False):
            idx = [j for j, f in enumerate(fixp) if f is flag]
            for j, s in zip(idx, r_format([vals[j] for j in idx], digits), strict=True):
                rr[j] = s
        for i, s in zip(big, rr, strict=True):
            out[i] = s
    if small:
        d = max(1, digits - 2)
        if big:
            nc = max(len(out[i]) for i in big)
            if d > 1 and d + 6 > nc:
                d = max(1, nc - 7)
            sep = "" if d == 1 and nc <= 6 else " "
        else:
            sep = "" if d == 1 else " "
        for i in small:
            out[i] = "<" + sep + r_format([_EPS], d)[0]
    return out


def _abbreviate_one(name: str, minlength: int) -> str:
    """R's internal ``abbreviate`` of one string (lower-case vowels, then lower case,
    then any letter from the right, never a word's first letter)."""
    b = list(name.strip())
    if len(b) <= minlength:
        return "".join(b)
    nspace = sum(c.isspace() for c in b[1:])

    def short() -> bool:
        return len(b) - nspace <= minlength

    for keep in (
        lambda c: c in "aeiou",
        lambda c: c.islower(),
        lambda c: not c.isspace(),
    ):
        if short():
            break
        for i in range(len(b) - 1, 0, -1):
            if i < len(b) and keep(b[i]) and not b[i - 1].isspace():
                del b[i]
            if short():
                break
    if len(b) > minlength:
        b = [b[0], *(c for c in b[1:] if not c.isspace())]
    return "".join(b)


def r_abbreviate(names: Sequence[str], minlength: int) -> list[str]:
    """R's ``abbreviate(names, minlength)``: unique abbreviations of ``names``.

    Examples
    --------
    >>> r_abbreviate(["(Intercept)", "Days"], 6)
    ['(Intr)', 'Days']
    """
    uniq = list(dict.fromkeys(n.strip() for n in names))
    x = list(uniq)
    these = list(range(len(uniq)))
    m = minlength
    while True:
        for i in these:
            x[i] = _abbreviate_one(uniq[i], m)
        seen: set[str] = set()
        dup = set()
        for v in x:
            if v in seen:
                dup.add(v)
            seen.add(v)
        if not dup:
            break
        m += 1
        these = [i for i, v in enumerate(x) if v in dup]
    lookup = dict(zip(uniq, x, strict=True))
    return [lookup[n.strip()] for n in names]


def _print_named(names: Sequence[str], cells: Sequence[str]) -> list[str]:
    """R's ``print`` of a named vector: one width for all, right-aligned (2 lines)."""
    w = max([len(n) for n in names] + [len(c) for c in cells])
    return [
        " ".join(n.rjust(w) for n in names),
        " ".join(c.rjust(w) for c in cells),
    ]


def _print_matrix(
    cells: Sequence[Sequence[str]],
    colnames: Sequence[str],
    rownames: Sequence[str],
    *,
    right: bool,
    width: int = 80,
) -> list[str]:
    """R's ``print`` of a character matrix (``quote = FALSE``), trailing blanks cut.

    Columns that do not fit in ``width`` characters go to a further block below, as
    R wraps a wide matrix.
    """
    rw = max((len(r) for r in rownames), default=0)
    widths = [
        max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(colnames)
    ]

    def just(s: str, w: int) -> str:
        return s.rjust(w) if right else s.ljust(w)

    lines: list[str] = []
    lo = 0
    while lo < len(colnames):
        hi, used = lo, rw
        while True:  # R's printMatrix: at least one column, then while they fit
            used += widths[hi] + 1
            hi += 1
            if hi >= len(colnames) or used + widths[hi] + 1 >= width:
                break
        block = range(lo, hi)
        lines.append(
            " ".join(
                [" " * rw] + [just(colnames[j], widths[j]) for j in block]
            ).rstrip()
        )
        for label, row in zip(rownames, cells, strict=True):
            lines.append(
                " ".join(
                    [label.ljust(rw)] + [just(row[j], widths[j]) for j in block]
                ).rstrip()
            )
        lo = hi
    return lines


def _coefmat(coef: np.ndarray, digits: int) -> list[list[str]]:
    """Cells of R's ``printCoefmat`` for columns estimate, std. error, t value."""
    cells = [[*row, ""] for row in _coef_cells(coef[:, :2], digits)]
    tst = r_format(
        [_r_round(v, max(1, min(5, digits - 1))) for v in coef[:, 2]], digits
    )
    for i, s in enumerate(tst):
        cells[i][2] = s
    for i in range(len(coef)):
        for j in range(3):
            if math.isnan(float(coef[i, j])):
                cells[i][j] = "NaN" if j < 2 else "NA"
    return cells


def _coef_cells(cs: np.ndarray, digits: int) -> list[list[str]]:
    """R's ``printCoefmat`` cells of its jointly formatted columns (``cs.ind``)."""
    n, k = cs.shape
    cells = [[""] * k for _ in range(n)]
    acs = np.abs(cs[np.isfinite(cs) & (cs != 0)])
    if not np.isfinite(cs).any():
        return cells
    digmin = 1 + np.floor(np.log10([acs.min(), acs.max()])) if acs.size else [1.0]
    nd = max(1.0, float(np.max(digits - np.asarray(digmin))))
    flat = [_r_round(v, nd) for v in cs.T.ravel()]  # R formats column-major
    strs = r_format(flat, digits)
    for j in range(k):
        for i in range(n):
            s = strs[j * n + i]
            v = float(cs[i, j])
            if (v == 0) != (float(s) == 0):  # a non-zero rounded to 0, or back
                s = r_format([v], max(1, digits - 1))[0]
            cells[i][j] = s
    return cells


#: R's significance codes (``symnum`` in ``printCoefmat``).
_STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (1.0, " "))
SIGNIF_LEGEND = "Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1"


def _coefmat_tests(coef: np.ndarray, digits: int) -> tuple[list[list[str]], bool]:
    """Cells of R's ``printCoefmat`` for estimate, std. error, [df,] t and p (lme4's
    print of lmerTest's table: estimate, std. error and df formatted together, p
    as ``format.pval``), and whether significance stars are shown (R shows them,
    and the legend, only when some p is below 0.1)."""
    k = 3 if coef.shape[1] == 5 else 2
    cells = _coef_cells(coef[:, :k].astype(float), digits)
    dig_tst = max(1, min(5, digits - 1))
    tst = r_format([_r_round(v, dig_tst) for v in coef[:, k]], digits)
    pvals = coef[:, k + 1].astype(float)
    pv = _format_pval(list(pvals), dig_tst)
    stars = bool(np.any(pvals[~np.isnan(pvals)] < 0.1))
    out = []
    for i in range(len(coef)):
        row = [*cells[i], tst[i], pv[i]]
        if stars:
            p = float(pvals[i])
            star = next((s for cut, s in _STARS if p <= cut), " ") if p == p else " "
            row.append(star.ljust(3))  # R's format(): left-justified, one width
        out.append(row)
    return out, stars


def _cell_strings(col: pd.Series, digits: int) -> list[str]:
    """One column's cells: numbers as R's ``format``, p-values as ``format.pval``."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_integer_dtype(col):
        return [str(v) for v in col]
    if pd.api.types.is_float_dtype(col):
        vals = col.to_numpy(dtype=float)
        if str(col.name) in _P_COLUMNS:
            strs = _format_pval(vals, max(1, digits - 1))
        else:
            strs = r_format(vals, digits)
        return ["" if math.isnan(v) else s for s, v in zip(strs, vals, strict=True)]
    return [
        "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
        for v in col
    ]


def format_frame(df: pd.DataFrame, digits: int = 4) -> list[str]:
    """Lines of a table as R's ``print.data.frame`` shows it, without index headers.

    Numeric columns are formatted column by column (one number of decimals each,
    ``digits`` significant digits), p-value columns as ``format.pval``; headers and
    values are right-aligned, row labels (every index level) left-aligned; a default
    0..n-1 index is not shown; missing numbers are blank.

    Examples
    --------
    >>> df = pd.DataFrame({"estimate": [40.123456, -0.93]}, index=["a", "bb"])
    >>> print("\\n".join(format_frame(df)))
       estimate
    a     40.12
    bb    -0.93
    """
    cols = [_cell_strings(df[c], digits) for c in df.columns]
    cells = [[c[i] for c in cols] for i in range(len(df))]
    colnames = [str(c) for c in df.columns]
    idx = df.index
    if isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1:
        labels: list[list[str]] = [[] for _ in range(len(df))]
    elif isinstance(idx, pd.MultiIndex):
        labels = [["" if pd.isna(v) else str(v) for v in t] for t in idx]
    else:
        labels = [[str(v)] for v in idx]
    nlev = len(labels[0]) if labels else 0
    lw = [max(len(r[k]) for r in labels) for k in range(nlev)]
    vw = [max([len(c)] + [len(r[j]) for r in cells]) for j, c in enumerate(colnames)]

    def line(lab: Sequence[str], row: Sequence[str]) -> str:
        parts = [s.ljust(w) for s, w in zip(lab, lw, strict=True)]
        parts += [s.rjust(w) for s, w in zip(row, vw, strict=True)]
        return " ".join(parts).rstrip()

    return [line([""] * nlev, colnames)] + [
        line(lab, row) for lab, row in zip(labels, cells, strict=True)
    ]


# ------------------------------------------------------------------ the summaries
class Summary:
    """Tables and header facts of a fitted model.

    Parameters
    ----------
    title : str
        First line, e.g. ``"MMRM fit by REML"``.
    header : mapping of str to object
        Facts shown under the title as ``key: value`` lines, in order.
    tables : mapping of str to pandas.DataFrame
        Named result tables (numeric columns, labelled rows), in display order.
    captions : mapping of str to str, optional
        Heading shown above each table; defaults to the table's name.
    notes : sequence of str, optional
        Lines shown after the tables (warnings such as a singular fit).
    digits : int, default 4
        Significant digits when rendering numbers (R's ``summary`` printing default):
        each column is printed with one number of decimals, as R's ``format`` does.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
    header : dict of str to object
    notes : list of str

    Examples
    --------
    >>> s = Summary("Demo fit", {"Number of obs": 3},
    ...             {"fixed": pd.DataFrame({"estimate": [1.5, 0.25]}, index=["x", "y"])})
    >>> print(s)
    Demo fit
    Number of obs: 3
    <BLANKLINE>
    fixed:
      estimate
    x     1.50
    y     0.25
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

    def __str__(self) -> str:
        lines = [self.title]
        lines += [f"{k}: {v}" for k, v in self.header.items()]
        for name, table in self.tables.items():
            lines += ["", f"{self.captions.get(name, name)}:"]
            lines += format_frame(table, self.digits)
        if self.notes:
            lines.append("")
            lines += list(self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def to_html(self) -> str:
        """The summary as an HTML fragment (title, facts, one table per result).

        Numbers are formatted as in the text (one number of decimals per column).

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
            shown = pd.DataFrame(
                {
                    c: [s.strip() for s in _cell_strings(table[c], self.digits)]
                    for c in table.columns
                },
                index=table.index,
            )
            parts.append(shown.to_html())
        for note in self.notes:
            parts.append(f"<p>{html.escape(note)}</p>")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()


def _r_name(name: str) -> str:
    """A coefficient's name as lme4 prints it (the intercept as ``(Intercept)``)."""
    return "(Intercept)" if name == "Intercept" else name


class MixedSummary(Summary):
    """A mixed model's :class:`Summary`, printed as lme4's ``print(summary(fit))``.

    The text is lme4's layout line for line: the criterion (REML) or the AIC, BIC,
    logLik, deviance and residual df (ML); the scaled residuals' quantiles; the
    random effects with their groups, names, variances, standard deviations and
    correlations; the numbers of observations and groups; the fixed effects with
    estimate, standard error and t value; the correlation of the fixed effects (for
    up to 12 of them, lme4's default).  Numbers are formatted as R formats them at
    its default 7 digits (``digits`` = 4 in the tables).  The intercept is printed
    as lme4 spells it, ``(Intercept)``; the tables keep the model's names.

    Parameters
    ----------
    title, header, tables, captions, notes, digits
        As for :class:`Summary`; ``tables`` holds ``"residuals"`` (one row, columns
        Min, 1Q, Median, 3Q, Max), ``"random"`` (index group, name; columns
        ``variance`` and ``std_dev``) and ``"fixed"`` (``estimate``, ``std_error``,
        ``t``).
    formula : str
        Shown on the ``Formula:`` line.
    criterion : mapping of str to float
        ``{"REML": value}`` or ``{"AIC", "BIC", "logLik", "deviance", "df.resid"}``.
    terms : sequence of (str, sequence of str)
        Random-effects terms in order: grouping factor and the effects' names.
    correlations : sequence of pandas.DataFrame
        Correlation matrix of each term's effects.
    groups : mapping of str to int
        Number of levels of each grouping factor.
    n_obs : int
    fixed_corr : pandas.DataFrame or None
        Correlation of the fixed-effect estimates.
    """

    def __init__(
        self,
        title: str,
        header: Mapping[str, object],
        tables: Mapping[str, pd.DataFrame],
        *,
        formula: str,
        criterion: Mapping[str, float],
        terms: Sequence[tuple[str, Sequence[str]]],
        correlations: Sequence[pd.DataFrame],
        groups: Mapping[str, int],
        n_obs: int,
        fixed_corr: pd.DataFrame | None = None,
        captions: Mapping[str, str] | None = None,
        notes: Sequence[str] = (),
        digits: int = 4,
    ) -> None:
        super().__init__(
            title, header, tables, captions=captions, notes=notes, digits=digits
        )
        self.formula = formula
        self.criterion = dict(criterion)
        self.terms = [(g, list(n)) for g, n in terms]
        self.correlations = list(correlations)
        self.groups = dict(groups)
        self.n_obs = int(n_obs)
        self.fixed_corr = fixed_corr

    # one block per lme4 printing function
    def _criterion_lines(self) -> list[str]:
        if list(self.criterion) == ["REML"]:
            v = r_format([_r_round(self.criterion["REML"], 1)])[0]
            return [f"REML criterion at convergence: {v}"]
        names = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        vals = [_r_round(self.criterion[k], 1) for k in names]
        cells = r_format(vals)
        cells[-1] = r_format([vals[-1]])[0]
        return _print_named(names, cells)

    def _residual_lines(self) -> list[str]:
        q = self.tables["residuals"].iloc[0].to_numpy(dtype=float)
        cells = r_format(_zapsmall(q, self.digits + 1), self.digits)
        return [
            "Scaled residuals:",
            *_print_named(["Min", "1Q", "Median", "3Q", "Max"], cells),
        ]

    def _random_lines(self) -> list[str]:
        random = self.tables["random"]
        sd = random["std_dev"].to_numpy(dtype=float)
        var = random["variance"].to_numpy(dtype=float)
        labels: list[str] = []
        seen: dict[str, int] = {}
        for g, _ in self.terms:  # R's make.unique
            k = seen.get(g, 0)
            labels.append(g if k == 0 else f"{g}.{k}")
            seen[g] = k + 1
        groups, names = [], []
        for lab, (_, nms) in zip(labels, self.terms, strict=True):
            groups += [lab] + [""] * (len(nms) - 1)
            names += [_r_name(n) for n in nms]
        groups.append("Residual")
        names.append("")
        cols = [groups, names, r_format(var, self.digits), r_format(sd, self.digits)]
        colnames = ["Groups", "Name", "Variance", "Std.Dev."]
        maxlen = max(len(n) for _, n in self.terms)
        if maxlen > 1:
            dig = max(2, self.digits - 2)
            corr_rows: list[list[str]] = []
            for c in self.correlations:
                m = c.to_numpy(dtype=float)
                k = m.shape[0]
                flat = r_format([_r_round(v, dig) for v in m.ravel()], nsmall=dig)
                for i in range(k):
                    row = [flat[i * k + j] if j < i else "" for j in range(k)]
                    corr_rows.append((row + [""] * maxlen)[: maxlen - 1])
            corr_rows.append([""] * (maxlen - 1))
            for j in range(maxlen - 1):
                cols.append([r[j] for r in corr_rows])
            colnames += ["Corr"] + [""] * (maxlen - 2)
        cells = [list(row) for row in zip(*cols, strict=True)]
        return [
            "Random effects:",
            *_print_matrix(cells, colnames, [""] * len(cells), right=False),
        ]

    def _fixed_lines(self) -> list[str]:
        fixed = self.tables["fixed"]
        names = [_r_name(str(n)) for n in fixed.index]
        lines = ["", "Fixed effects:"]
        if "p_value" not in fixed.columns:
            coef = fixed[["estimate", "std_error", "t"]].to_numpy(dtype=float)
            lines += _print_matrix(
                _coefmat(coef, self.digits),
                ["Estimate", "Std. Error", "t value"],
                names,
                right=True,
            )
        else:
            z = bool(np.all(np.isinf(fixed["df"].to_numpy(dtype=float))))
            cols = ["estimate", "std_error", "t", "p_value"]
            heads = ["Estimate", "Std. Error", "z value", "Pr(>|z|)", ""]
            if not z:
                cols.insert(2, "df")
                heads = ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)", ""]
            coef = fixed[cols].to_numpy(dtype=float)
            cells, stars = _coefmat_tests(coef, self.digits)
            lines += _print_matrix(
                cells, heads if stars else heads[:-1], names, right=True
            )
            if stars:
                lines += ["---", SIGNIF_LEGEND]
        fc = self.fixed_corr
        p = len(names)
        if fc is not None and 1 < p <= 12:
            vals = [_r_round(v, 3) for v in fc.to_numpy(dtype=float).T.ravel()]
            strs = r_format(vals, nsmall=3)  # column-major, as R stores it
            cells = [
                [strs[j * p + i] if j < i else "" for j in range(p - 1)]
                for i in range(1, p)
            ]
            lines += ["", "Correlation of Fixed Effects:"]
            lines += _print_matrix(
                cells,
                r_abbreviate(names, 6)[: p - 1],
                r_abbreviate(names, 11)[1:],
                right=False,
            )
        return lines

    def __str__(self) -> str:
        groups = "; ".join(f"{g}, {n}" for g, n in self.groups.items())
        lines = [self.title, f"Formula: {self.formula}", ""]
        lines += [*self._criterion_lines(), ""]
        lines += [*self._residual_lines(), ""]
        lines += self._random_lines()
        lines.append(f"Number of obs: {self.n_obs}, groups:  {groups}")
        lines += self._fixed_lines()
        lines += list(self.notes)
        return "\n".join(lines)
