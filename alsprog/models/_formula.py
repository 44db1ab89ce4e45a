"""lme4-style model formulas turned into mixed-model design matrices.

Owns: splitting ``"y ~ fixed + (re | g)"`` into its fixed part (materialised by
formulaic, treatment coding, patsy/statsmodels-style column names such as
``onset_site[T.spinal]``) and its random-effects terms (read by the small parser here),
dropping incomplete rows with a :class:`~alsprog.errors.DataWarning`, and the checks that
turn a model nobody can fit into a :class:`~alsprog.errors.ModelSpecificationError`.
Leaves: the likelihood to :mod:`alsprog.models.lmm._numerics`.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._formula_text import check_formula, formula_context
from alsprog.errors import (
    DataWarning,
    ModelSpecificationError,
    ModelSpecificationWarning,
)

__all__ = [
    "MixedDesign",
    "RandomTerm",
    "ThetaTemplate",
    "build_mixed_design",
    "parse_mixed_formula",
]

logger = logging.getLogger(__name__)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


@dataclass(frozen=True)
class RandomTerm:
    """One ``(expr | group)`` term of a formula.

    Attributes
    ----------
    expr : str
        The left-hand side, e.g. ``"months"``, ``"1"``, ``"0 + months"``.
    group : str
        The grouping column.
    correlated : bool
        ``False`` for lme4's ``||`` (each column its own uncorrelated term).
    """

    expr: str
    group: str
    correlated: bool = True
    #: The columns whose combination is the grouping factor (``("subject", "site")``
    #: for lme4's ``subject:site``); empty means ``(group,)``.
    columns: tuple[str, ...] = ()

    @property
    def group_columns(self) -> tuple[str, ...]:
        """The grouping factor's columns (one for a plain column)."""
        return self.columns or (self.group,)


@dataclass(frozen=True)
class ParsedFormula:
    """A formula split into outcome, fixed part and random-effects terms."""

    outcome: str
    fixed: str
    random: tuple[RandomTerm, ...]
    text: str


@dataclass(frozen=True)
class ThetaTemplate:
    """Where each relative covariance parameter sits in the q x q factor Lambda.

    ``theta[k]`` goes to ``Lambda[rows[k], cols[k]]``; ``lower[k]`` is its lower bound
    (0 on the diagonal, ``-inf`` off it).  The order is lme4's: term by term, and within
    a term the lower triangle column by column.
    """

    q: int
    rows: npt.NDArray[np.intp]
    cols: npt.NDArray[np.intp]
    lower: npt.NDArray[np.float64]
    names: tuple[str, ...]

    @property
    def n_theta(self) -> int:
        """Number of parameters."""
        return len(self.rows)

    def start(self) -> npt.NDArray[np.float64]:
        """lme4's starting value: 1 on the diagonal, 0 elsewhere."""
        return np.where(self.rows == self.cols, 1.0, 0.0)

    def factor(self, theta: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The lower-triangular relative covariance factor Lambda for ``theta``."""
        lam = np.zeros((self.q, self.q))
        lam[self.rows, self.cols] = theta
        return lam


@dataclass
class MixedDesign:
    """Arrays and bookkeeping for one mixed model fit.

    Rows are the complete cases of the data, in their original order.
    """

    y: npt.NDArray[np.float64]
    X: npt.NDArray[np.float64]
    Z: npt.NDArray[np.float64]
    groups: npt.NDArray[np.intp]
    group_levels: pd.Index
    fe_names: list[str]
    re_names: list[str]
    template: ThetaTemplate
    outcome: str
    group: str
    n_dropped: int
    row_index: pd.Index
    row_positions: npt.NDArray[np.intp]
    fixed_spec: Any
    random_specs: list[Any] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    #: The complete rows of the model's columns (``variables``), as used.
    frame: pd.DataFrame | None = None


def _split_top_level(text: str, sep: str) -> list[str]:
    """Split ``text`` at ``sep`` characters outside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ModelSpecificationError(
                    f"Formula has an unmatched ')': {text!r}."
                )
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ModelSpecificationError(f"Formula has an unmatched '(': {text!r}.")
    parts.append("".join(cur))
    return parts


def _parse_random_term(piece: str, formula: str) -> list[RandomTerm]:
    inner = piece.strip()[1:-1]
    if "||" in inner:
        lhs, _, rhs = inner.partition("||")
        correlated = False
    else:
        bars = _split_top_level(inner, "|")
        if len(bars) != 2:
            raise ModelSpecificationError(
                f"Cannot read random-effects term {piece.strip()!r} in {formula!r}; "
                "expected '(expr | group)', e.g. '(months | subject_id)'."
            )
        lhs, rhs = bars
        correlated = True
    lhs, rhs = lhs.strip(), rhs.strip()
    if not lhs:
        raise ModelSpecificationError(
            f"Random-effects term {piece.strip()!r} has nothing left of '|'; "
            "write '(1 | group)' for a random intercept."
        )
    return [
        RandomTerm(expr=lhs, group=":".join(cols), correlated=correlated, columns=cols)
        for cols in _grouping_factors(rhs, piece.strip(), formula)
    ]


def _grouping_factors(rhs: str, piece: str, formula: str) -> list[tuple[str, ...]]:
    """The grouping factors of ``a``, ``a:b`` or ``a/b`` as lme4 expands them.

    ``a/b/c`` means ``a + b:a + c:b:a`` (lme4 names the nested factor inner first and
    lists it first: ``(1 | a/b)`` is ``(1 | b:a) + (1 | a)``).
    """
    parts = [p.strip() for p in rhs.split("/")]
    nests = []
    for part in parts:
        cols = tuple(c.strip() for c in part.split(":"))
        for c in cols:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", c):
                raise ModelSpecificationError(
                    f"Grouping factor {rhs!r} in {piece!r} of {formula!r} must be "
                    "column names joined by ':' (interaction) or '/' (nesting), e.g. "
                    f"'(1 | site/subject_id)'; {c!r} is not a column name."
                )
        if len(set(cols)) != len(cols):
            raise ModelSpecificationError(
                f"Grouping factor {part!r} in {piece!r} names a column twice."
            )
        nests.append(cols)
    out: list[tuple[str, ...]] = []
    for k in range(len(nests)):
        cols = tuple(c for part in reversed(nests[: k + 1]) for c in part)
        if len(set(cols)) != len(cols):
            raise ModelSpecificationError(
                f"Grouping factor {rhs!r} in {piece!r} nests a column in itself."
            )
        out.append(cols)
    return out[::-1]


def parse_mixed_formula(formula: str) -> ParsedFormula:
    """Split an lme4-style formula into outcome, fixed part and random terms.

    Parameters
    ----------
    formula : str
        ``"outcome ~ fixed terms + (expr | group)"``; the random terms are
        parenthesised and joined to the rest with ``+``.

    Returns
    -------
    ParsedFormula
        ``fixed`` is a formulaic right-hand side (``"1"`` when only random terms
        were given).

    Raises
    ------
    ModelSpecificationError
        If the formula has no ``~``, no outcome, unbalanced parentheses or a
        random term that cannot be read.

    Examples
    --------
    >>> p = parse_mixed_formula("alsfrs_r_total ~ months + (months | subject_id)")
    >>> p.outcome, p.fixed, p.random[0].group
    ('alsfrs_r_total', 'months', 'subject_id')
    """
    if not isinstance(formula, str):
        raise ModelSpecificationError(
            f"`formula` must be a string like 'y ~ x + (x | g)'; got {formula!r}."
        )
    if formula.count("~") != 1:
        raise ModelSpecificationError(
            f"Formula {formula!r} must contain exactly one '~' "
            "(e.g. 'alsfrs_r_total ~ months + (months | subject_id)')."
        )
    lhs, rhs = (s.strip() for s in formula.split("~"))
    if not lhs:
        raise ModelSpecificationError(
            f"Formula {formula!r} has no outcome left of '~'."
        )
    if not rhs:
        raise ModelSpecificationError(f"Formula {formula!r} has nothing right of '~'.")
    fixed, random = [], []
    for piece in _split_top_level(rhs, "+"):
        s = piece.strip()
        if not s:
            raise ModelSpecificationError(f"Formula {formula!r} has an empty term.")
        if "|" in s:
            if not (s.startswith("(") and s.endswith(")") and _closes_at_end(s)):
                raise ModelSpecificationError(
                    f"Cannot read term {s!r} in {formula!r}; random-effects terms must "
                    "be parenthesised and added with '+', e.g. '+ (1 | subject_id)'."
                )
            random.extend(_parse_random_term(s, formula))
        else:
            fixed.append(s)
    _split_top_level(lhs, "+")  # parenthesis check on the outcome
    # the lme4-shaped reading above gives the familiar messages; the allow-list
    # decides what may be evaluated at all
    check_formula(formula, kind="mixed")
    return ParsedFormula(
        outcome=lhs,
        fixed=" + ".join(fixed) if fixed else "1",
        random=tuple(random),
        text=formula,
    )


def _closes_at_end(s: str) -> bool:
    """True when the '(' at position 0 is closed by the last character."""
    depth = 0
    for i, ch in enumerate(s):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i == len(s) - 1
    return False


def _variables(text: str, columns: pd.Index) -> list[str]:
    names = set(_IDENT.findall(text))
    return [c for c in columns if isinstance(c, str) and c in names]


def _materialize(spec_text: str, data: pd.DataFrame, what: str) -> Any:
    from formulaic import model_matrix

    try:
        return model_matrix(
            spec_text, data, na_action="raise", context=formula_context()
        )
    except ModelSpecificationError:
        raise
    except Exception as exc:  # formulaic raises many types; translate, keep cause
        raise ModelSpecificationError(
            f"Cannot build the {what} from {spec_text!r}: {exc}"
        ) from exc


def _template(terms: list[tuple[str, list[str]]]) -> ThetaTemplate:
    rows, cols, lower, names = [], [], [], []
    offset = 0
    for _, cnames in terms:
        k = len(cnames)
        for c in range(k):
            for r in range(c, k):
                rows.append(offset + r)
                cols.append(offset + c)
                lower.append(0.0 if r == c else -np.inf)
                names.append(cnames[r] if r == c else f"{cnames[r]}.{cnames[c]}")
        offset += k
    return ThetaTemplate(
        q=offset,
        rows=np.asarray(rows, dtype=np.intp),
        cols=np.asarray(cols, dtype=np.intp),
        lower=np.asarray(lower, dtype=float),
        names=tuple(names),
    )


@dataclass
class FixedPart:
    """The complete rows of a formula's columns and its fixed-effects design."""

    frame: pd.DataFrame
    y: npt.NDArray[np.float64]
    X: npt.NDArray[np.float64]
    fe_names: list[str]
    fixed_spec: Any
    variables: list[str]
    n_dropped: int
    complete: npt.NDArray[np.bool_]


def fixed_part(
    formula: str,
    parsed: ParsedFormula,
    df: pd.DataFrame,
    group_columns: tuple[str, ...],
) -> FixedPart:
    """Check the grouping columns, drop incomplete rows (warning) and build y and X.

    Raises
    ------
    ModelSpecificationError
        A grouping column that is not in the data, no complete rows, an outcome that
        is not one numeric column.
    """
    for group in group_columns:
        if group not in df.columns:
            raise ModelSpecificationError(
                f"Grouping factor {group!r} in {formula!r} is not a column of the "
                f"data; the data has {', '.join(map(str, df.columns))}."
            )
    df = _validate_table(df, list(check_formula(formula, columns=df.columns).variables))
    fixed_text = f"{parsed.outcome} ~ {parsed.fixed}"

    all_text = " ".join([fixed_text, *(t.expr for t in parsed.random)])
    variables = list(dict.fromkeys([*_variables(all_text, df.columns), *group_columns]))
    sub = df.loc[:, variables]
    complete = sub.notna().all(axis=1).to_numpy()
    n_dropped = int((~complete).sum())
    if n_dropped:
        counts = sub.isna().sum()
        detail = ", ".join(f"{k}: {v}" for k, v in counts.items() if v)
        warnings.warn(
            f"Dropped {n_dropped} of {len(df)} rows with a missing value in the "
            f"model's columns ({detail}).",
            DataWarning,
            stacklevel=4,
        )
        sub = sub.loc[complete]
    if len(sub) == 0:
        raise ModelSpecificationError(
            f"No complete rows left for {formula!r} after dropping missing values."
        )

    mm = _materialize(fixed_text, sub, "fixed-effects design")
    y_frame, x_frame = mm.lhs, mm.rhs
    if y_frame.shape[1] != 1:
        raise ModelSpecificationError(
            f"Outcome {parsed.outcome!r} must be one numeric column; it expands to "
            f"{y_frame.shape[1]} columns (is it categorical?)."
        )
    return FixedPart(
        frame=sub,
        y=np.asarray(y_frame, dtype=float).ravel(),
        X=np.asarray(x_frame, dtype=float),
        fe_names=[str(c) for c in x_frame.columns],
        fixed_spec=x_frame.model_spec,
        variables=variables,
        n_dropped=n_dropped,
        complete=complete,
    )


def parse_for_data(formula: str, df: Any) -> ParsedFormula:
    """:func:`parse_mixed_formula` for a fit: ``df`` must be a DataFrame and the
    formula must have a random-effects term."""
    if not isinstance(df, pd.DataFrame):
        raise ModelSpecificationError(
            f"Data must be a pandas DataFrame; got {type(df).__name__}."
        )
    parsed = parse_mixed_formula(formula)
    if not parsed.random:
        raise ModelSpecificationError(
            f"Formula {formula!r} has no random-effects term; add one such as "
            "'(1 | subject_id)' (or use an ordinary linear model)."
        )
    return parsed


def term_pieces(
    term: RandomTerm, sub: pd.DataFrame
) -> tuple[Any, list[tuple[list[str], npt.NDArray[np.float64]]]]:
    """A random-effects term's formulaic spec and its blocks of columns: one block
    (names, Z columns), or one per column for lme4's uncorrelated ``||``."""
    zm = _materialize(
        term.expr, sub, f"random-effects design of ({term.expr} | {term.group})"
    )
    names = [str(c) for c in zm.columns]
    if not names:
        raise ModelSpecificationError(
            f"Random-effects term ({term.expr} | {term.group}) has no columns."
        )
    zarr = np.asarray(zm, dtype=float)
    if term.correlated:
        return zm.model_spec, [(names, zarr)]
    return zm.model_spec, [([nm], zarr[:, [j]]) for j, nm in enumerate(names)]


def build_mixed_design(formula: str, df: pd.DataFrame) -> MixedDesign:
    """Build y, X, Z, the grouping and the Lambda template from a formula and data.

    Parameters
    ----------
    formula : str
        lme4-style formula with one grouping factor, e.g.
        ``"alsfrs_r_total ~ months * onset_site + (months | subject_id)"``.
    df : pandas.DataFrame
        Long-format data; not modified.

    Returns
    -------
    MixedDesign

    Raises
    ------
    ModelSpecificationError
        Unreadable formula, unknown column, no or several grouping factors, a
        grouping factor with fewer than two levels, rank-deficient fixed effects,
        or too few observations for the parameters.

    Warns
    -----
    DataWarning
        When rows with a missing outcome, covariate or group are dropped.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1.0, 2.0, 2.5, 4.0], "t": [0.0, 1.0, 0.0, 1.0],
    ...                    "g": ["a", "a", "b", "b"]})
    >>> d = build_mixed_design("y ~ t + (1 | g)", df)
    >>> d.fe_names, d.re_names, d.X.shape, d.Z.shape
    (['Intercept', 't'], ['Intercept'], (4, 2), (4, 1))
    """
    parsed = parse_for_data(formula, df)
    groups = sorted({t.group for t in parsed.random})
    if len(groups) > 1 or any(len(t.group_columns) > 1 for t in parsed.random):
        raise ModelSpecificationError(
            f"Formula {formula!r} has {len(groups)} grouping factors "
            f"({', '.join(groups)}); build_mixed_design reads one plain grouping "
            "column (LinearMixedModel fits several)."
        )
    group = groups[0]
    fx = fixed_part(formula, parsed, df, (group,))
    sub, y, X, fe_names = fx.frame, fx.y, fx.X, fx.fe_names
    variables, n_dropped, complete = fx.variables, fx.n_dropped, fx.complete

    z_blocks: list[npt.NDArray[np.float64]] = []
    terms: list[tuple[str, list[str]]] = []
    random_specs = []
    for term in parsed.random:
        spec, pieces = term_pieces(term, sub)
        random_specs.append(spec)
        for names, zarr in pieces:
            terms.append((term.expr if term.correlated else names[0], names))
            z_blocks.append(zarr)
    re_names = [n for _, cn in terms for n in cn]
    dup = sorted({n for n in re_names if re_names.count(n) > 1})
    if dup:
        raise ModelSpecificationError(
            f"Random effect(s) {', '.join(map(repr, dup))} appear in more than one "
            f"term of {formula!r}; write each once, e.g. '(1 | g) + (0 + months | g)'."
        )
    Z = np.hstack(z_blocks)

    codes, levels = pd.factorize(sub[group], sort=True)
    codes = codes.astype(np.intp)
    n, p = X.shape
    G, q = len(levels), Z.shape[1]
    if not (
        np.all(np.isfinite(y)) and np.all(np.isfinite(X)) and np.all(np.isfinite(Z))
    ):
        raise ModelSpecificationError(
            f"The design of {formula!r} contains infinite values; check the columns "
            f"{', '.join(variables)}."
        )
    if G < 2:
        raise ModelSpecificationError(
            f"Grouping factor {group!r} has {G} level(s); a random effect needs at "
            "least 2 groups."
        )
    if n <= G * q:
        raise ModelSpecificationError(
            f"Too few observations: {n} complete rows <= {G * q} random effects "
            f"({q} per level of {group!r} x {G} levels); the random-effects "
            "parameters and the residual variance are not identifiable."
        )
    check_fixed_fit(y, X, fe_names, formula, parsed.outcome)
    _warn_fixed_and_random(fx.fixed_spec, group, formula)
    return MixedDesign(
        y=y,
        X=X,
        Z=Z,
        groups=codes,
        group_levels=pd.Index(levels, name=group),
        fe_names=fe_names,
        re_names=re_names,
        template=_template(terms),
        outcome=parsed.outcome,
        group=group,
        n_dropped=n_dropped,
        row_index=sub.index,
        row_positions=np.flatnonzero(complete),
        fixed_spec=fx.fixed_spec,
        random_specs=random_specs,
        variables=variables,
        frame=sub,
    )


def check_fixed_fit(
    y: npt.NDArray[np.float64],
    X: npt.NDArray[np.float64],
    fe_names: list[str],
    formula: str,
    outcome: str,
) -> None:
    """Refuse fixed effects nobody can fit: too few rows, collinear columns, a
    constant outcome, or an outcome the fixed part reproduces exactly."""
    n, p = X.shape
    if n <= p:
        raise ModelSpecificationError(
            f"Too few observations: {n} complete rows for {p} fixed effects."
        )
    _check_rank(X, fe_names, formula)
    if np.ptp(y) == 0:
        raise ModelSpecificationError(
            f"The outcome {outcome!r} of {formula!r} is constant (every one of "
            f"the {n} complete rows is {y[0]:g}); a mixed model needs an outcome that "
            "varies."
        )
    if X.shape[1]:
        coef = np.linalg.lstsq(X, y, rcond=None)[0]
        if np.linalg.norm(y - X @ coef) <= 1e-10 * np.linalg.norm(y - y.mean()):
            raise ModelSpecificationError(
                f"The fixed effects of {formula!r} fit the outcome {outcome!r} "
                "exactly (no residual variation is left); a mixed model needs "
                "noise around the fixed part. Check that the outcome is not computed "
                "from the covariates."
            )


def _validate_table(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The data dictionary's checks on the model's columns, as every forecast runs
    them: a table a forecast would refuse is refused by the fit too, and a value the
    dictionary reads differently (a mapped synonym) is read the same way by both.
    """
    from alsprog.data._history import validate_model_columns

    return validate_model_columns(df, columns)


def _warn_fixed_and_random(fixed_spec: Any, group: str, formula: str) -> None:
    """Warn, as lme4's users learn the hard way, when the grouping factor is also a
    fixed effect: its random intercepts are then not identifiable (variance 0)."""
    try:
        used = set(fixed_spec.required_variables)
    except Exception:  # formulaic versions without the attribute: no warning
        return
    if group in used:
        warnings.warn(
            f"{group!r} is both a fixed effect and the grouping factor of the random "
            f"effects in {formula!r}: the random effects of {group!r} are not "
            "identifiable beside its fixed effect (their variance is estimated at or "
            f"near 0); remove {group!r} from the fixed part.",
            ModelSpecificationWarning,
            stacklevel=4,
        )


def _check_rank(X: npt.NDArray[np.float64], names: list[str], formula: str) -> None:
    from scipy.linalg import qr

    if X.shape[1] == 0:
        return
    scale = np.sqrt((X**2).sum(axis=0))
    scale[scale == 0] = 1.0
    # cheap screen on the scaled cross-product; the pivoted QR only names the culprit
    xs = X / scale
    ev = np.linalg.eigvalsh(xs.T @ xs)
    if ev.size and ev[0] > 1e-10 * ev[-1]:
        return
    _, r, piv = qr(xs, mode="economic", pivoting=True)
    d = np.abs(np.diag(r))
    tol = max(X.shape) * np.finfo(float).eps * 1e3 * d[0] if d.size else 0.0
    rank = int((d > tol).sum())
    if rank < X.shape[1]:
        bad = [names[i] for i in piv[rank:]]
        raise ModelSpecificationError(
            f"The fixed effects of {formula!r} are perfectly collinear (rank {rank} < "
            f"{X.shape[1]} columns): {', '.join(map(repr, bad))} is a linear "
            "combination of the other terms (or constant); remove it."
        )
