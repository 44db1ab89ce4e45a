"""The design of an MMRM fit: its checked rows, fixed-effects matrix, visit-pattern
groups and LS-means reference grid.

Owns: :func:`build_design` (the rows an :class:`~alsprog.models.MMRM` uses, checked
and laid out: the visit, arm and covariance-group levels, the observation weights,
the formulaic design and its model spec, the data grouped by covariance group and
observed-visit pattern, a starting covariance per group, the reference grid of the
least-squares means with equal and proportional weights), run by ``fit`` and by
``load`` on the saved rows.
Leaves: the REML fit and inference to :mod:`alsprog.models.mmrm._model`; the checks'
messages to :mod:`alsprog.models.mmrm._checks`; the numerics to
:mod:`alsprog.models.mmrm._numerics`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from alsprog._formula_text import check_formula, formula_context
from alsprog.data._history import validate_model_columns
from alsprog.errors import DataWarning, ModelSpecificationError
from alsprog.models.mmrm._checks import (
    _check_identifiable,
    _check_rank,
    _numeric_design,
    _py,
)
from alsprog.models.mmrm._covariance import canonical_structure
from alsprog.models.mmrm._numerics import build_patterns

__all__ = ["build_design", "visit_values"]


def build_design(model: Any, df: pd.DataFrame) -> dict:
    from formulaic import model_matrix

    if not isinstance(df, pd.DataFrame):
        raise ModelSpecificationError(
            f"Data must be a pandas DataFrame; got {type(df).__name__}."
        )
    if not isinstance(model.formula, str) or model.formula.count("~") != 1:
        raise ModelSpecificationError(
            f"Formula {model.formula!r} must be a string with one '~', e.g. "
            "'chg ~ visit * arm + baseline_total'."
        )
    if "|" in model.formula:
        raise ModelSpecificationError(
            f"MMRM formulas have no random-effects terms; got {model.formula!r} (use "
            "LinearMixedModel for '(x | g)' terms)."
        )
    required = set(check_formula(model.formula, kind="fixed").variables)
    extra = [c for c in (model.group, model.weights) if c is not None]
    cols = list(dict.fromkeys([model.subject, model.visit, model.arm, *extra]))
    missing = sorted((required | set(cols)) - set(df.columns))
    if missing:
        raise ModelSpecificationError(
            f"Unknown column(s) {', '.join(map(repr, missing))} (formula "
            f"{model.formula!r}, subject/visit/arm/group/weights); the data has "
            f"{', '.join(map(str, df.columns))}."
        )
    df = validate_model_columns(df, [*required, *cols])
    if model.arm not in required:
        raise ModelSpecificationError(
            f"The arm column {model.arm!r} does not appear in {model.formula!r}."
        )
    used = list(dict.fromkeys([*sorted(required), *cols]))
    sub = df.loc[:, used]
    ok = sub.notna().all(axis=1).to_numpy()
    n_dropped = int((~ok).sum())
    if n_dropped:
        warnings.warn(
            f"Dropped {n_dropped} of {len(df)} rows with a missing value in "
            f"{', '.join(c for c in used if sub[c].isna().any())}.",
            DataWarning,
            stacklevel=4,
        )
        sub = sub.loc[ok]
    sub = sub.copy()
    sub[model.visit] = visit_values(sub[model.visit])
    frame = sub.reset_index(drop=True)  # the complete rows, as given (save)
    vcol = sub[model.visit]
    if isinstance(vcol.dtype, pd.CategoricalDtype):
        visits = [v for v in vcol.cat.categories if (vcol == v).any()]
    else:
        visits = sorted(vcol.unique())
    if len(visits) < 2:
        raise ModelSpecificationError(
            f"Visit column {model.visit!r} has {len(visits)} level(s); an MMRM needs "
            "at least 2 scheduled visits."
        )
    sub[model.visit] = pd.Categorical(vcol, categories=visits)
    T = len(visits)
    acol = sub[model.arm]
    if isinstance(acol.dtype, pd.CategoricalDtype):
        arms = [a for a in acol.cat.categories if (acol == a).any()]
    else:
        arms = sorted(acol.unique())
    if len(arms) < 2:
        raise ModelSpecificationError(
            f"Arm column {model.arm!r} has {len(arms)} level(s); contrasts need 2."
        )
    if model.reference is not None:
        ref = model.reference
        if ref not in arms:
            # an arm column the data dictionary reads as text ('0', '1') still
            # matches a reference given as a number (0, 0.0)
            same = [a for a in arms if _same_level(a, ref)]
            if len(same) != 1:
                raise ModelSpecificationError(
                    f"`reference` {model.reference!r} is not a level of {model.arm!r} "
                    f"({', '.join(map(repr, arms))})."
                )
            ref = same[0]
        arms = [ref] + [a for a in arms if a != ref]
    sub[model.arm] = pd.Categorical(acol, categories=arms)
    dup = sub.duplicated([model.subject, model.visit])
    if dup.any():
        first = sub.loc[dup].iloc[0]
        raise ModelSpecificationError(
            f"{int(dup.sum())} duplicated subject x visit rows, e.g. subject "
            f"{_py(first[model.subject])!r} at visit {_py(first[model.visit])!r}; an "
            "MMRM needs "
            "one row per subject and visit."
        )
    try:
        mm = model_matrix(
            model.formula, sub, na_action="raise", context=formula_context()
        )
    except Exception as exc:
        raise ModelSpecificationError(
            f"Cannot build the design from {model.formula!r}: {exc}"
        ) from exc
    y, X = _numeric_design(mm, sub, model.formula, model.subject, model.visit)
    names = [str(c) for c in mm.rhs.columns]
    _check_rank(X, names, model.formula)
    subj_codes = pd.factorize(sub[model.subject])[0].astype(np.intp)
    vis_codes = sub[model.visit].cat.codes.to_numpy().astype(np.intp)
    groups, group_codes = _group_codes(model, sub, subj_codes)
    weights = _weights(model, sub)
    patterns = build_patterns(y, X, subj_codes, vis_codes, group_codes, weights)
    # start: residual covariance of OLS, pairwise
    beta_ols = np.linalg.lstsq(X, y, rcond=None)[0]
    res = y - X @ beta_ols
    structure = canonical_structure(model.covariance)
    gc = np.zeros(len(y), dtype=np.intp) if group_codes is None else group_codes
    for g, level in enumerate(groups):
        at = gc == g
        _check_identifiable(
            y[at],
            res[at],
            subj_codes[at],
            vis_codes[at],
            visits,
            model.formula,
            model.visit,
            structure,
            where="" if group_codes is None else f" in group {_py(level)!r}",
        )
    Sigma0 = np.stack(
        [
            _empirical_cov(subj_codes[gc == g], vis_codes[gc == g], res[gc == g], T)
            for g in range(len(groups))
        ]
    )
    # reference grid for LS means: visit x arm, numeric covariates at their mean,
    # other factors crossed and averaged with equal weights
    grid = _reference_grid(model, sub, required, visits, arms, mm.rhs.model_spec)
    return {
        "patterns": patterns,
        "fe_names": names,
        "visits": visits,
        "arms": arms,
        "n": len(y),
        "p": X.shape[1],
        "n_subjects": int(subj_codes.max() + 1),
        "n_dropped": n_dropped,
        "Sigma0": Sigma0,
        "groups": groups,
        "structure": structure,
        "grid": grid,
        "spec": mm.rhs.model_spec,
        "frame": frame,
        "rows": {
            "y": y,
            "X": X,
            "subject": subj_codes,
            "visit": vis_codes,
            "group": gc,
            "weights": np.ones(len(y)) if weights is None else weights,
            "levels": pd.Index(pd.unique(sub[model.subject])),
        },
    }


def _group_codes(
    model: Any, sub: pd.DataFrame, subj: np.ndarray
) -> tuple[list, np.ndarray | None]:
    """The covariance groups' levels (sorted, or a categorical's order) and each
    row's group index; ``([None], None)`` without ``group``."""
    if model.group is None:
        return [None], None
    col = sub[model.group]
    if isinstance(col.dtype, pd.CategoricalDtype):
        levels = [a for a in col.cat.categories if (col == a).any()]
    else:
        levels = sorted(col.unique())
    codes = pd.Index(levels).get_indexer(col).astype(np.intp)
    first = np.full(int(subj.max()) + 1, -1, dtype=np.intp)
    first[subj[::-1]] = codes[::-1]
    bad = np.flatnonzero(first[subj] != codes)
    if bad.size:
        row = sub.iloc[int(bad[0])]
        raise ModelSpecificationError(
            f"Subject {_py(row[model.subject])!r} has more than one value of the "
            f"covariance group column {model.group!r} (e.g. {_py(row[model.group])!r} "
            f"and {_py(levels[first[subj[bad[0]]]])!r}); a subject belongs to one "
            "group."
        )
    return levels, codes


def _weights(model: Any, sub: pd.DataFrame) -> np.ndarray | None:
    """The observation weights (finite, positive), or None without ``weights``."""
    if model.weights is None:
        return None
    col = sub[model.weights]
    try:
        w = col.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise ModelSpecificationError(
            f"The weights column {model.weights!r} must hold numbers; got values such "
            f"as {_py(col.iloc[0])!r}."
        ) from exc
    bad = np.flatnonzero(~(np.isfinite(w) & (w > 0)))
    if bad.size:
        raise ModelSpecificationError(
            f"The weights column {model.weights!r} is {float(w[bad[0]])!r} at row "
            f"{int(bad[0])} ({bad.size} such row(s)); weights must be finite and "
            "positive."
        )
    return w


def _empirical_cov(
    subj: np.ndarray, vis: np.ndarray, res: np.ndarray, T: int
) -> np.ndarray:
    """Pairwise covariance over visits of the OLS residuals (a starting value)."""
    wide = pd.DataFrame({"s": subj, "v": vis, "r": res}).pivot(
        index="s", columns="v", values="r"
    )
    wide = wide.reindex(columns=range(T))
    S = wide.cov(min_periods=2).to_numpy()
    S = np.where(np.isfinite(S), S, 0.0)
    dvar = np.diag(S).copy()
    dvar[~(dvar > 0)] = np.var(res) if np.var(res) > 0 else 1.0
    np.fill_diagonal(S, dvar)
    return S


def _reference_grid(
    model: Any, sub: pd.DataFrame, required: set, visits: list, arms: list, spec: Any
) -> dict:
    outcome = str(model.formula.split("~")[0]).strip()
    others = [v for v in sorted(required) if v not in (model.visit, model.arm, outcome)]
    levels: dict[str, list] = {model.visit: visits, model.arm: arms}
    means: dict[str, float] = {}
    for v in others:
        col = sub[v]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            means[v] = float(col.mean())
        else:
            levels[v] = sorted(col.unique())
    index = pd.MultiIndex.from_product(list(levels.values()), names=list(levels))
    grid = index.to_frame(index=False)
    for v, mu in means.items():
        grid[v] = mu
    grid[model.visit] = pd.Categorical(grid[model.visit], categories=visits)
    grid[model.arm] = pd.Categorical(grid[model.arm], categories=arms)
    for v in levels:
        if v not in (model.visit, model.arm):
            grid[v] = pd.Categorical(grid[v], categories=levels[v])
    Xg = np.asarray(spec.get_model_matrix(grid, context=formula_context()), dtype=float)
    keys = pd.MultiIndex.from_frame(grid[[model.visit, model.arm]].astype(object))
    by = [keys.get_level_values(0), keys.get_level_values(1)]
    L = pd.DataFrame(Xg).groupby(by, sort=False).mean()
    L.index = L.index.set_names(["visit", "arm"])
    # emmeans' weights = "proportional": the other factors' combinations weighted
    # by how many rows of the data hold them
    factors = [v for v in levels if v not in (model.visit, model.arm)]
    if factors:
        counts = sub[factors].astype(object).value_counts()
        at = pd.MultiIndex.from_frame(grid[factors].astype(object))
        if len(factors) == 1:
            counts.index = pd.MultiIndex.from_arrays([counts.index], names=factors)
        w = counts.reindex(at, fill_value=0).to_numpy(dtype=float)
    else:
        w = np.ones(len(grid))
    Lw = pd.DataFrame(Xg * w[:, None]).groupby(by, sort=False).sum()
    Lp = Lw.div(pd.Series(w).groupby(by, sort=False).sum().to_numpy(), axis=0)
    Lp.index = L.index
    return {"L": L, "L_proportional": Lp}


def visit_values(col: pd.Series) -> pd.Series:
    """Visits written as numbers in a text column (``"3"``, ``"12.0"``: a CSV's
    extra columns load as text) as numbers, so that they sort as 3 < 12; other
    columns unchanged.

    Examples
    --------
    >>> visit_values(pd.Series(["12", "3.0", None], dtype="str")).tolist()
    [12.0, 3.0, nan]
    >>> visit_values(pd.Series(["week 4", "week 12"])).tolist()
    ['week 4', 'week 12']
    """
    if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(col):
        return col
    num = pd.to_numeric(col, errors="coerce")
    given = col.notna()
    if given.any() and bool(num[given].notna().all()):
        return num.astype(float)
    return col


def _same_level(level: Any, value: Any) -> bool:
    """``level`` (as the data holds it) and ``value`` name the same arm: equal
    text, or equal numbers (``'0'`` and ``0.0``)."""
    if str(level) == str(value):
        return True
    try:
        return float(level) == float(value)
    except (TypeError, ValueError):
        return False
