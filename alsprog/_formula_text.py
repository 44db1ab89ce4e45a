"""The allow-list every model formula passes before formulaic sees it.

Owns: :func:`check_formula`, which reads a formula (user text from the Python API, a
TOML config, the command line or a saved model file) with alsprog's own tokenizer and
grammar, and accepts only column names, numbers, the operators of the formula language
(``~ + - * / : ** ^ %in% | ||`` and parentheses) and a named set of transforms
(:data:`TRANSFORMS`) with arguments of a fixed shape; and :func:`formula_context`, the
only names formulaic may evaluate in (instead of the caller's frame).
Leaves: turning an accepted formula into design matrices to formulaic, called from
:mod:`alsprog.models`.

formulaic evaluates each term as Python (``{...}`` blocks, ``I(...)`` and any call), so
a formula is code unless it is checked: nothing but this module decides what reaches
it.  The check works on the whole text: every character belongs to an accepted token,
and every token sits where the grammar allows it.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from alsprog.errors import ModelSpecificationError

__all__ = ["TRANSFORMS", "CheckedFormula", "check_formula", "formula_context"]

#: Transforms a formula may call, with what each does.  ``np.`` spellings of the
#: element-wise functions are accepted too (``np.log(months + 1)``).
TRANSFORMS: dict[str, str] = {
    "center": "subtract the training mean",
    "scale": "centre and divide by the training standard deviation",
    "standardize": "same as scale",
    "log": "natural logarithm",
    "log1p": "log(1 + x)",
    "log2": "base-2 logarithm",
    "log10": "base-10 logarithm",
    "exp": "exponential",
    "sqrt": "square root",
    "abs": "absolute value",
    "poly": "orthogonal (or raw=True) polynomial: poly(x, degree)",
    "bs": "B-spline basis: bs(x, df=..., degree=...)",
    "cr": "natural cubic regression spline: cr(x, df=...)",
    "cs": "cubic regression spline with a sum-to-zero constraint: cs(x, df=...)",
    "cc": "cyclic cubic regression spline: cc(x, df=...)",
    "C": "categorical: C(x), C(x, Treatment('level')), C(x, levels=['a', 'b'])",
    "I": "arithmetic as written: I(months ** 2), I(age / 10)",
}

_ELEMENTWISE = frozenset(
    {"log", "log1p", "log2", "log10", "exp", "sqrt", "abs", "center", "scale"}
    | {"standardize"}
)
_NP_FUNCS = frozenset({"log", "log1p", "log2", "log10", "exp", "sqrt", "abs"})
_CONTRASTS = frozenset({"Treatment", "Sum", "Helmert", "Diff", "Poly"})
_SPLINE_KW: dict[str, frozenset[str]] = {
    "poly": frozenset({"degree", "raw"}),
    "bs": frozenset({"df", "degree", "include_intercept"}),
    "cr": frozenset({"df"}),
    "cs": frozenset({"df"}),
    "cc": frozenset({"df"}),
}

Kind = Literal["mixed", "fixed", "rhs"]

# Tokens, longest first.  Names may hold dots (R-style column names such as
# ``fa.cst``); a double underscore is never a name.
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<string>'[A-Za-z0-9_ .+\-]*'|"[A-Za-z0-9_ .+\-]*")
  | (?P<backtick>`[^`{}\\]*`)
  | (?P<op>%in%|\|\||\*\*|>=|<=|==|!=|[~+\-*/:^|(),=\[\]<>])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class CheckedFormula:
    """A formula that passed :func:`check_formula`.

    Attributes
    ----------
    text : str
        The formula, stripped; safe to hand to formulaic with
        :func:`formula_context`.
    variables : tuple of str
        The column names it uses, in order of first use.
    """

    text: str
    variables: tuple[str, ...]


def formula_context() -> dict[str, Any]:
    """The names formulaic may evaluate besides its own transforms and the data.

    Passed as ``context=`` to every ``model_matrix``/``get_model_matrix`` call, so a
    formula never sees the calling module's globals.

    Examples
    --------
    >>> sorted(formula_context())
    ['abs', 'log1p', 'sqrt']
    """
    import numpy as np

    return {"sqrt": np.sqrt, "log1p": np.log1p, "abs": np.abs}


def _tokenize(
    text: str, fail: Callable[[str, int], ModelSpecificationError]
) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise fail(
                f"the character {text[pos]!r} is not part of the formula language", pos
            )
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return toks


class _Parser:
    """Recursive descent over the tokens; collects the column names used."""

    def __init__(
        self,
        text: str,
        toks: list[_Tok],
        columns: frozenset[str] | None,
        what: str,
    ) -> None:
        self.text = text
        self.toks = toks
        self.i = 0
        self.columns = columns
        self.what = what
        self.variables: list[str] = []
        self.unknown: list[str] = []

    # -- helpers
    def error(self, message: str, tok: _Tok | None = None) -> ModelSpecificationError:
        return _error(self.text, self.what, message, tok.pos if tok else len(self.text))

    def peek(self, k: int = 0) -> _Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error("it ends too early")
        self.i += 1
        return tok

    def expect(self, text: str) -> _Tok:
        tok = self.peek()
        if tok is None or tok.text != text:
            found = "the end" if tok is None else repr(tok.text)
            raise self.error(f"expected {text!r} but found {found}", tok)
        return self.take()

    def at(self, *texts: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.text in texts

    def column(self, tok: _Tok) -> None:
        if tok.kind == "backtick":
            name = tok.text[1:-1]
        else:
            name = tok.text
            if "." in name and self.columns is not None and name not in self.columns:
                raise self.error(
                    f"{name!r} is not a column of the data (a name with '.' must "
                    "be a column)",
                    tok,
                )
            if "__" in name:
                raise self.error(
                    f"{name!r} is not a column name (no '__' allowed)", tok
                )
            if keyword.iskeyword(name):
                raise self.error(f"{name!r} is a Python keyword, not a column", tok)
        if tok.kind == "backtick" and self.columns is not None:
            if name not in self.columns:
                raise self.error(f"the quoted name {tok.text} is not a column", tok)
        elif self.columns is not None and name not in self.columns:
            if name not in self.unknown:
                self.unknown.append(name)
            return
        if tok.kind == "backtick" and self.columns is None:
            raise self.error(
                f"the quoted name {tok.text} can only be checked against the data's "
                "columns; rename the column to letters, digits and '_'",
                tok,
            )
        if name not in self.variables:
            self.variables.append(name)

    # -- formula level: terms joined by the formula operators
    def formula_sum(self, *, inside_parens: bool, allow_bar: bool) -> None:
        self.formula_term(allow_bar=allow_bar)
        while True:
            tok = self.peek()
            if tok is None or (tok.kind == "op" and tok.text in (")", "~")):
                return
            if tok.kind == "op" and tok.text in ("+", "-", "*", "/", ":", "%in%"):
                self.take()
                self.formula_term(allow_bar=allow_bar)
            elif tok.kind == "op" and tok.text in ("**", "^"):
                self.take()
                num = self.take()
                if num.kind != "number" or not num.text.isdigit():
                    raise self.error(
                        f"'{tok.text}' must be followed by a whole number", num
                    )
            elif (
                tok.kind == "op"
                and tok.text in ("|", "||")
                and inside_parens
                and allow_bar
            ):
                self.take()
                self.grouping()
                return
            else:
                raise self.error(f"{tok.text!r} cannot stand here", tok)

    def grouping(self) -> None:
        # a grouping factor: columns joined by ':' or '/' (nesting)
        tok = self.take()
        if tok.kind not in ("name", "backtick"):
            raise self.error(
                f"expected a grouping column after '|', found {tok.text!r}", tok
            )
        self.column(tok)
        while self.at(":", "/"):
            self.take()
            tok = self.take()
            if tok.kind not in ("name", "backtick"):
                raise self.error(f"expected a grouping column, found {tok.text!r}", tok)
            self.column(tok)

    def formula_term(self, *, allow_bar: bool) -> None:
        tok = self.peek()
        if tok is None:
            raise self.error("a term is missing at the end")
        if tok.kind == "op" and tok.text == "(":
            self.take()
            self.formula_sum(inside_parens=True, allow_bar=allow_bar)
            self.expect(")")
            return
        if tok.kind == "op" and tok.text == "-":  # '-1', '- months'
            self.take()
            self.formula_term(allow_bar=allow_bar)
            return
        if tok.kind == "number":
            self.take()
            if tok.text not in ("0", "1"):
                raise self.error(
                    f"the number {tok.text} cannot be a term (only 0 and 1, for the "
                    "intercept; wrap arithmetic in I(...))",
                    tok,
                )
            return
        if tok.kind == "name" and self._is_call():
            self.call()
            return
        if tok.kind in ("name", "backtick"):
            self.take()
            self.column(tok)
            return
        raise self.error(f"{tok.text!r} cannot start a term", tok)

    def _is_call(self) -> bool:
        nxt = self.peek(1)
        return nxt is not None and nxt.kind == "op" and nxt.text == "("

    # -- transforms
    def call(self) -> None:
        tok = self.take()
        name = tok.text
        base = name[3:] if name.startswith("np.") else name
        if name.startswith("np.") and base not in _NP_FUNCS:
            raise self.error(f"np.{base}(...) is not an allowed transform", tok)
        if not name.startswith("np.") and name not in TRANSFORMS:
            allowed = ", ".join(sorted(TRANSFORMS))
            raise self.error(
                f"{name}(...) is not an allowed transform (allowed: {allowed})", tok
            )
        self.expect("(")
        if base in _ELEMENTWISE:
            self.arith()
        elif base == "I":
            self.arith()
        elif base in _SPLINE_KW:
            self.arith()
            self.keywords(base, positional=base == "poly")
        elif base == "C":
            self.categorical()
        self.expect(")")

    def keywords(self, fn: str, *, positional: bool) -> None:
        allowed = _SPLINE_KW[fn]
        first = True
        while self.at(","):
            self.take()
            tok = self.take()
            if positional and first and tok.kind == "number":
                self._whole(tok)
                first = False
                continue
            first = False
            if tok.kind != "name" or tok.text not in allowed:
                raise self.error(
                    f"{fn}() takes only {', '.join(sorted(allowed))}; found {tok.text!r}",
                    tok,
                )
            self.expect("=")
            val = self.take()
            if tok.text in ("raw", "include_intercept"):
                if val.text not in ("True", "False"):
                    raise self.error(f"{tok.text}= must be True or False", val)
            else:
                self._whole(val)

    def _whole(self, tok: _Tok) -> None:
        if tok.kind != "number" or not tok.text.isdigit() or int(tok.text) > 100:
            raise self.error(
                f"expected a whole number up to 100, found {tok.text!r}", tok
            )

    def categorical(self) -> None:
        tok = self.take()
        if tok.kind not in ("name", "backtick") or self._is_call_at(tok):
            raise self.error(f"C() takes a column first, found {tok.text!r}", tok)
        self.column(tok)
        if not self.at(","):
            return
        self.take()
        tok = self.take()
        if tok.kind == "name" and tok.text in _CONTRASTS:
            if self.at("("):
                self.take()
                if not self.at(")"):
                    lvl = self.take()
                    if lvl.kind not in ("string", "number"):
                        raise self.error(
                            f"{tok.text}() takes a quoted reference level, found "
                            f"{lvl.text!r}",
                            lvl,
                        )
                self.expect(")")
            return
        if tok.kind == "name" and tok.text == "levels":
            self.expect("=")
            self.expect("[")
            while True:
                lvl = self.take()
                if lvl.kind not in ("string", "number"):
                    raise self.error(
                        f"levels must be quoted values, found {lvl.text!r}", lvl
                    )
                if self.at(","):
                    self.take()
                    continue
                break
            self.expect("]")
            return
        raise self.error(
            "C() takes a column and optionally a contrast "
            f"({', '.join(sorted(_CONTRASTS))}) or levels=[...]; found {tok.text!r}",
            tok,
        )

    def _is_call_at(self, tok: _Tok) -> bool:
        nxt = self.peek()
        return tok.kind == "name" and nxt is not None and nxt.text == "("

    # -- arithmetic inside transforms: columns, numbers, + - * / ** and comparisons
    def arith(self) -> None:
        self.arith_unary()
        while self.at("+", "-", "*", "/", "**", ">", "<", ">=", "<=", "==", "!="):
            self.take()
            self.arith_unary()

    def arith_unary(self) -> None:
        while self.at("-", "+"):
            self.take()
        tok = self.peek()
        if tok is None:
            raise self.error("an argument is missing")
        if tok.kind == "op" and tok.text == "(":
            self.take()
            self.arith()
            self.expect(")")
            return
        if tok.kind == "number":
            self.take()
            return
        if tok.kind == "name" and self._is_call():
            base = tok.text[3:] if tok.text.startswith("np.") else tok.text
            if base not in _ELEMENTWISE and base != "I":
                raise self.error(
                    f"{tok.text}(...) cannot be used inside another transform", tok
                )
            self.call()
            return
        if tok.kind in ("name", "backtick"):
            self.take()
            if tok.kind == "name" and tok.text in ("True", "False", "None"):
                raise self.error(f"{tok.text} is not a column", tok)
            self.column(tok)
            return
        raise self.error(f"{tok.text!r} is not allowed in arithmetic", tok)


def _error(text: str, what: str, message: str, pos: int) -> ModelSpecificationError:
    term = _term_at(text, pos)
    where = f" in the term {term!r}" if term else ""
    return ModelSpecificationError(
        f"The {what} {text!r} is refused{where}: {message}. A formula may use "
        "column names, numbers, the operators ~ + - * / : ** ^ %in% | and the "
        f"transforms {', '.join(sorted(TRANSFORMS))}."
    )


def _term_at(text: str, pos: int) -> str:
    """The top-level term (between '+', '~' outside parentheses) holding ``pos``."""
    start, depth = 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth <= 0 and ch in "+~":
            if i >= pos:
                return text[start:i].strip()
            start = i + 1
    return text[start:].strip()


def check_formula(
    formula: object,
    *,
    columns: Iterable[object] | None = None,
    kind: Kind = "mixed",
    what: str = "formula",
) -> CheckedFormula:
    """Accept a formula only if it is made of the formula language's own parts.

    Parameters
    ----------
    formula : str
        ``"outcome ~ terms"`` (``kind="mixed"`` allows lme4's random-effects terms
        ``(expr | group)``; ``kind="fixed"`` does not) or, with ``kind="rhs"``, the
        right-hand side alone (e.g. a joint model's ``event_formula``).
    columns : iterable of str, optional
        The data's columns.  When given, every name that is not a transform must be
        one of them.
    kind : {"mixed", "fixed", "rhs"}
        Which shape of formula is expected.
    what : str
        How the error message calls it (``"event_formula"``, ``"saved formula"``).

    Returns
    -------
    CheckedFormula
        The stripped text and the column names it uses.

    Raises
    ------
    ModelSpecificationError
        Naming the term that is not allowed and why: Python code (``{...}``,
        attribute access such as ``x.__class__``, calls of anything but
        :data:`TRANSFORMS`, strings outside ``C(...)``), unknown columns,
        unbalanced parentheses, a missing or doubled ``~``.

    Examples
    --------
    >>> check_formula("alsfrs_r_total ~ months * onset_site + (months | subject_id)").variables
    ('alsfrs_r_total', 'months', 'onset_site', 'subject_id')
    >>> check_formula("y ~ {__import__('os').getcwd()}")
    Traceback (most recent call last):
    ...
    alsprog.errors.ModelSpecificationError: The formula "y ~ {__import__('os').getcwd()}" is refused in the term "{__import__('os').getcwd()}": the character '{' is not part of the formula language...
    """
    if kind not in ("mixed", "fixed", "rhs"):
        raise ValueError(f"kind must be 'mixed', 'fixed' or 'rhs'; got {kind!r}")
    if not isinstance(formula, str):
        raise ModelSpecificationError(
            f"The {what} must be a string like 'y ~ x + (x | g)'; got "
            f"{type(formula).__name__} {formula!r:.80}."
        )
    text = formula.strip()
    if len(text) > 2000:
        raise ModelSpecificationError(
            f"The {what} is {len(text)} characters long; at most 2000 are accepted."
        )
    if not text:
        raise ModelSpecificationError(f"The {what} is empty.")
    cols = None if columns is None else frozenset(str(c) for c in columns)

    def fail(message: str, pos: int) -> ModelSpecificationError:
        return _error(text, what, message, pos)

    toks = _tokenize(text, fail)
    tildes = [t for t in toks if t.kind == "op" and t.text == "~"]
    if kind == "rhs" and tildes:
        raise fail("it must be a right-hand side only (no '~')", tildes[0].pos)
    if kind != "rhs" and len(tildes) != 1:
        raise fail(
            "it must contain exactly one '~' (e.g. 'alsfrs_r_total ~ months')",
            tildes[1].pos if len(tildes) > 1 else 0,
        )
    p = _Parser(text, toks, cols, what)
    if kind != "rhs":
        if p.at("~"):
            raise fail("it has no outcome left of '~'", 0)
        p.arith_unary()  # the outcome: a column or a transform of one
        if not p.at("~"):
            tok = p.peek()
            raise p.error("the outcome must be one column or a transform of one", tok)
        p.take()
        if p.peek() is None:
            raise fail("it has nothing right of '~'", len(text))
    p.formula_sum(inside_parens=False, allow_bar=kind == "mixed")
    tok = p.peek()
    if tok is not None:
        raise p.error(f"unmatched {tok.text!r}", tok)
    if p.unknown and cols is not None:
        listed = ", ".join(repr(u) for u in p.unknown)
        raise ModelSpecificationError(
            f"The {what} {text!r} uses unknown column(s) {listed}; the data "
            f"has {', '.join(sorted(cols))}."
        )
    return CheckedFormula(text=text, variables=tuple(p.variables))
