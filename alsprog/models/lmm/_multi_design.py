"""Design of a linear mixed model with several grouping factors (lme4's ``reTrms``).

Owns: :func:`build_multi_design`, which turns ``y ~ fixed + (1 | site) + (months |
subject_id)`` (crossed, nested ``(1 | site/subject_id)`` or interaction ``(1 |
site:subject_id)`` grouping) into the fixed design, one :class:`FactorDesign` per
grouping factor, and the map from lme4's theta vector to each factor's relative
covariance factor; :func:`needs_multi`, the rule for when a formula takes this path.
Leaves: formula reading and the fixed part to :mod:`alsprog.models._formula`, the
likelihood to :mod:`alsprog.models.lmm._multi`.

lme4 orders the random-effect terms by decreasing number of levels of their
grouping factor (stably) and concatenates their theta vectors in that order; the terms
of one factor share a per-level block (uncorrelated terms are zeros of the block), so
theta here means exactly lme4's ``getME(m, "theta")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import ModelSpecificationError
from alsprog.models._formula import (
    ParsedFormula,
    _warn_fixed_and_random,
    check_fixed_fit,
    fixed_part,
    parse_for_data,
    term_pieces,
)

__all__ = [
    "FactorDesign",
    "MultiDesign",
    "build_multi_design",
    "level_labels",
    "needs_multi",
]

Array = npt.NDArray[np.float64]


@dataclass
class FactorDesign:
    """One grouping factor: its levels, random-effects columns and theta slots.

    Attributes
    ----------
    name : str
        lme4's name (``"subject_id"``, ``"subject_id:site"``).
    columns : tuple of str
        The data columns whose combination it is.
    codes : ndarray of int, shape (n,)
        Level of each row.
    levels : pandas.Index
        Level labels (values joined by ``":"`` for an interaction), sorted.
    Z : ndarray, shape (n, q)
        Random-effects columns of its terms, side by side.
    re_names : list of str
    rows, cols : ndarray of int
        Position in the factor's q x q block of each of its theta entries.
    theta_index : ndarray of int
        Where those entries sit in the model's theta vector.
    terms : list of (start, stop)
        Its terms' column ranges (correlations only within a term).
    """

    name: str
    columns: tuple[str, ...]
    codes: npt.NDArray[np.intp]
    levels: pd.Index
    Z: Array
    re_names: list[str]
    rows: npt.NDArray[np.intp]
    cols: npt.NDArray[np.intp]
    theta_index: npt.NDArray[np.intp]
    terms: list[tuple[int, int]]
    random_specs: list[Any] = field(default_factory=list)

    @property
    def q(self) -> int:
        """Random effects per level."""
        return self.Z.shape[1]

    @property
    def n_levels(self) -> int:
        """Number of levels."""
        return len(self.levels)

    def factor(self, theta: Array) -> Array:
        """The factor's q x q relative covariance factor for the model's ``theta``."""
        lam = np.zeros((self.q, self.q))
        lam[self.rows, self.cols] = theta[self.theta_index]
        return lam


@dataclass
class MultiDesign:
    """Arrays and bookkeeping of a fit with several grouping factors."""

    y: Array
    X: Array
    fe_names: list[str]
    factors: list[FactorDesign]
    theta_names: list[str]
    theta_lower: Array
    outcome: str
    n_dropped: int
    row_index: pd.Index
    row_positions: npt.NDArray[np.intp]
    fixed_spec: Any
    variables: list[str]
    frame: pd.DataFrame

    @property
    def n_theta(self) -> int:
        """Length of theta."""
        return len(self.theta_names)

    def start(self) -> Array:
        """lme4's start: 1 on each diagonal entry, 0 off it."""
        return np.where(np.isfinite(self.theta_lower), 1.0, 0.0)


def needs_multi(parsed: ParsedFormula) -> bool:
    """Whether a formula has several grouping factors or a combined one (``a:b``)."""
    groups = {t.group for t in parsed.random}
    return len(groups) > 1 or any(len(t.group_columns) > 1 for t in parsed.random)


def level_labels(rows: pd.DataFrame, columns: list[str] | tuple[str, ...]) -> pd.Series:
    """A grouping factor's level of each row: the column's value, or the columns'
    values joined by ``":"`` (lme4's labels of ``site:subject_id``)."""
    if len(columns) == 1:
        return rows[columns[0]]
    labels = rows[columns[0]].astype(str)
    for c in columns[1:]:
        labels = labels + ":" + rows[c].astype(str)
    return labels


def _codes(sub: pd.DataFrame, columns: tuple[str, ...]) -> tuple[Array, pd.Index]:
    codes, levels = pd.factorize(level_labels(sub, columns), sort=True)
    return codes.astype(np.intp), pd.Index(levels, name=":".join(columns))


def build_multi_design(formula: str, df: pd.DataFrame) -> MultiDesign:
    """Build the design of a mixed model with one or more grouping factors.

    Parameters
    ----------
    formula : str
        lme4-style formula, e.g. ``"y ~ months + (1 | site) + (months | subject_id)"``.
    df : pandas.DataFrame
        Long-format data; not modified.

    Returns
    -------
    MultiDesign

    Raises
    ------
    ModelSpecificationError
        Unreadable formula, unknown column, a factor with fewer than two levels, an
        effect repeated within a factor, rank-deficient fixed effects or too few
        observations.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1.0, 2.0, 2.5, 4.0, 3.1, 2.2],
    ...                    "site": list("aabbab"), "s": list("uvwuvw")})
    >>> d = build_multi_design("y ~ 1 + (1 | site) + (1 | s)", df)
    >>> [f.name for f in d.factors], d.theta_names
    (['s', 'site'], ['s.Intercept', 'site.Intercept'])
    """
    parsed = parse_for_data(formula, df)
    group_columns = tuple(
        dict.fromkeys(c for t in parsed.random for c in t.group_columns)
    )
    fx = fixed_part(formula, parsed, df, group_columns)
    sub = fx.frame
    # every term's columns, by factor in order of first appearance
    by_factor: dict[str, list[tuple[int, list[str], Array, Any]]] = {}
    cols_of: dict[str, tuple[str, ...]] = {}
    for pos, term in enumerate(parsed.random):
        spec, pieces = term_pieces(term, sub)
        cols_of[term.group] = term.group_columns
        for nm, za in pieces:
            by_factor.setdefault(term.group, []).append((pos, nm, za, (spec, nm)))
    factors: list[FactorDesign] = []
    term_order: list[tuple[int, int, str, int]] = []  # (nlevels, pos, group, k)
    for group, terms in by_factor.items():
        codes, levels = _codes(sub, cols_of[group])
        if len(levels) < 2:
            raise ModelSpecificationError(
                f"Grouping factor {group!r} has {len(levels)} level(s); a random "
                "effect needs at least 2 groups."
            )
        re_names = [n for _, nm, _, _ in terms for n in nm]
        dup = sorted({n for n in re_names if re_names.count(n) > 1})
        if dup:
            raise ModelSpecificationError(
                f"Random effect(s) {', '.join(map(repr, dup))} appear in more than one "
                f"term of {group!r} in {formula!r}; write each once, e.g. "
                "'(1 | g) + (0 + months | g)'."
            )
        bounds, start = [], 0
        for k, (pos, nm, _, _) in enumerate(terms):
            bounds.append((start, start + len(nm)))
            start += len(nm)
            term_order.append((len(levels), pos * 1000 + k, group, k))
        factors.append(
            FactorDesign(
                name=group,
                columns=cols_of[group],
                codes=codes,
                levels=levels,
                Z=np.hstack([za for _, _, za, _ in terms]),
                re_names=re_names,
                rows=np.zeros(0, np.intp),
                cols=np.zeros(0, np.intp),
                theta_index=np.zeros(0, np.intp),
                terms=bounds,
                random_specs=[spec for _, _, _, spec in terms],
            )
        )
    # lme4: terms by decreasing number of levels, stably; theta in that order
    term_order.sort(key=lambda t: (-t[0], t[1]))
    fmap = {f.name: f for f in factors}
    slots: dict[str, list[tuple[int, int, int]]] = {f.name: [] for f in factors}
    theta_names: list[str] = []
    lower: list[float] = []
    for _, _, group, k in term_order:
        f = fmap[group]
        a, b = f.terms[k]
        for c in range(a, b):
            for r in range(c, b):
                slots[group].append((r, c, len(theta_names)))
                lower.append(0.0 if r == c else -np.inf)
                nm = f.re_names[r] if r == c else f"{f.re_names[r]}.{f.re_names[c]}"
                theta_names.append(f"{group}.{nm}")
    for f in factors:
        arr = np.asarray(slots[f.name], dtype=np.intp).reshape(-1, 3)
        f.rows, f.cols, f.theta_index = arr[:, 0], arr[:, 1], arr[:, 2]
    factors.sort(key=lambda f: (-f.n_levels, min(f.theta_index)))
    y, X = fx.y, fx.X
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(X))) or not all(
        np.all(np.isfinite(f.Z)) for f in factors
    ):
        raise ModelSpecificationError(
            f"The design of {formula!r} contains infinite values; check the columns "
            f"{', '.join(fx.variables)}."
        )
    n = len(y)
    if n <= factors[0].q * factors[0].n_levels:
        f = factors[0]
        raise ModelSpecificationError(
            f"Too few observations: {n} complete rows <= {f.q * f.n_levels} random "
            f"effects of {f.name!r} ({f.q} per level x {f.n_levels} levels); the "
            "random-effects parameters and the residual variance are not identifiable."
        )
    check_fixed_fit(y, X, fx.fe_names, formula, parsed.outcome)
    for f in factors:
        if len(f.columns) == 1:  # a nested factor beside its fixed parent is fine
            _warn_fixed_and_random(fx.fixed_spec, f.columns[0], formula)
    return MultiDesign(
        y=y,
        X=X,
        fe_names=fx.fe_names,
        factors=factors,
        theta_names=theta_names,
        theta_lower=np.asarray(lower, dtype=float),
        outcome=parsed.outcome,
        n_dropped=fx.n_dropped,
        row_index=sub.index,
        row_positions=np.flatnonzero(fx.complete),
        fixed_spec=fx.fixed_spec,
        variables=fx.variables,
        frame=sub,
    )
