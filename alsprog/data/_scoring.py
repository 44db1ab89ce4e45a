"""ALSFRS-R scoring: items to total and domain subscores, and the ΔFS pre-slope.

Owns: :func:`score_alsfrs_r`, :func:`delta_fs`, the q5a/q5b gastrostomy fold and the
check that declared totals agree with their items.  Which items make up which score is
read from the data dictionary (``sumOf``), not written here.
Leaves: column types and ranges to :mod:`alsprog.data._columns`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.data._columns import (
    _coerce_column,
    check_columns,
    refuse_repeated_columns,
)
from alsprog.data._context import TableContext, _fmt_value, raise_if
from alsprog.data._dictionary import DataDictionary, Field, load_dictionary
from alsprog.errors import DataValidationError, Problem

__all__ = ["delta_fs", "score_alsfrs_r"]

Q5A, Q5B, Q5, Q5_FLAG = (
    "alsfrs_r_q5a",
    "alsfrs_r_q5b",
    "alsfrs_r_q5",
    "alsfrs_r_q5_gastrostomy",
)
IMPUTED = "alsfrs_r_imputed"


def fold_q5(df: pd.DataFrame, ctx: TableContext) -> tuple[pd.DataFrame, list[Problem]]:
    """Fold separate 5a (no gastrostomy) / 5b (gastrostomy) columns into q5 + flag.

    Exactly one of the two may be scored per visit.  ``df`` must already hold numbers
    in the two columns (strings are parsed here with the item rules).
    """
    if Q5A not in df.columns and Q5B not in df.columns:
        return df, []
    dd = load_dictionary()
    item = dd.fields[Q5]
    probs: list[Problem] = []
    out = df.copy()
    parts = {}
    for col in (Q5A, Q5B):
        if col in df.columns:
            parsed, p = _parse_column(df, col, item, ctx, dd)
            probs += p
            parts[col] = parsed.to_numpy()
        else:
            parts[col] = np.full(len(df), np.nan)
    a, b = parts[Q5A], parts[Q5B]
    both = ~np.isnan(a) & ~np.isnan(b)
    for pos in np.flatnonzero(both):
        probs.append(
            ctx.problem(
                df,
                int(pos),
                f"both 5a ({_fmt_value(a[pos])}) and 5b "
                f"({_fmt_value(b[pos])}) are scored; exactly one may be",
                rule="q5_variant",
                column=Q5B,
                value=b[pos],
            )
        )
    q5 = np.where(~np.isnan(b), b, a)
    scored = ~np.isnan(a) | ~np.isnan(b)
    derived = ~np.isnan(b)
    if Q5 in df.columns:
        # parsed with the item rules too: a bad q5 is reported, never silently dropped
        parsed, p = _parse_column(df, Q5, item, ctx, dd)
        probs += p
        existing = parsed.to_numpy(dtype=float)
        clash = ~np.isnan(existing) & scored & (existing != q5)
        for pos in np.flatnonzero(clash):
            probs.append(
                ctx.problem(
                    df,
                    int(pos),
                    f"alsfrs_r_q5 = {_fmt_value(existing[pos])} "
                    f"disagrees with 5a/5b = {_fmt_value(q5[pos])}",
                    rule="q5_variant",
                    column=Q5,
                    value=existing[pos],
                )
            )
        q5 = np.where(scored, q5, existing)
    flag = pd.array([pd.NA] * len(df), dtype="boolean")
    if Q5_FLAG in df.columns:
        given, p = _parse_column(df, Q5_FLAG, dd.fields[Q5_FLAG], ctx, dd)
        probs += p
        flag = given.array.copy()
        g = given.to_numpy(dtype=object)
        clash = scored & np.array(
            [
                v is not pd.NA and v is not None and bool(v) != d
                for v, d in zip(g, derived, strict=True)
            ]
        )
        for pos in np.flatnonzero(clash):
            probs.append(
                ctx.problem(
                    df,
                    int(pos),
                    f"alsfrs_r_q5_gastrostomy = {g[pos]!r} "
                    "disagrees with which of 5a/5b is scored",
                    rule="q5_variant",
                    column=Q5_FLAG,
                    value=g[pos],
                )
            )
    flag[scored] = derived[scored]
    out[Q5] = q5
    out[Q5_FLAG] = flag
    out = out.drop(columns=[c for c in (Q5A, Q5B) if c in out.columns])
    cols = list(out.columns)
    # keep the canonical order: q5 right after q4 when possible
    if "alsfrs_r_q4" in cols:
        for c in (Q5, Q5_FLAG):
            cols.remove(c)
        i = cols.index("alsfrs_r_q4") + 1
        cols[i:i] = [Q5, Q5_FLAG]
        out = out[cols]
    return out, probs


def _parse_column(
    df: pd.DataFrame, col: str, field: Field, ctx: TableContext, dd: DataDictionary
) -> tuple[pd.Series, list[Problem]]:
    """Column ``col`` of ``df`` coerced with ``field``'s rules; problems name subjects."""
    tmp = pd.DataFrame({col: df[col]}, index=df.index)
    if "subject_id" in df.columns:
        tmp.insert(0, "subject_id", df["subject_id"])
    return _coerce_column(tmp, col, field, ctx, dd)


def check_scores(
    df: pd.DataFrame,
    ctx: TableContext,
    *,
    original: pd.DataFrame | None = None,
    impute: Literal["domain_mean"] | None = None,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Compute totals/domains from items and check declared ones against them.

    ``df`` holds coerced (float) item columns.  A declared score that differs from the
    sum of complete items, or that is impossible given the items present, is a
    problem; a missing score is filled from complete items (or, with
    ``impute='domain_mean'``, from items imputed within their domain).
    """
    dd = load_dictionary()
    sums = dd.sum_fields()
    items = sorted(
        {i for parts in sums.values() for i in parts},
        key=lambda c: int(c.rsplit("q", 1)[1]),
    )
    present_items = [c for c in items if c in df.columns]
    if not present_items:
        return df, []
    out = df.copy()
    ref = original if original is not None else df
    probs: list[Problem] = []
    n = len(out)
    item_vals = {
        c: (out[c].to_numpy(dtype=float) if c in out.columns else np.full(n, np.nan))
        for c in items
    }
    imputed_any = np.zeros(n, dtype=bool)
    if impute == "domain_mean":
        item_vals, imputed_any = _impute_domain_mean(item_vals, sums)
    for score, parts in sums.items():
        mat = np.column_stack([item_vals[c] for c in parts])
        n_missing = np.isnan(mat).sum(axis=1)
        partial = np.nansum(mat, axis=1)
        complete = n_missing == 0
        computed = np.where(complete, partial, np.nan)
        if score in out.columns:
            declared = out[score].to_numpy(dtype=float)
            has = ~np.isnan(declared)
            label = f"{parts[0]}..{parts[-1].removeprefix('alsfrs_r_')}"
            diff = has & complete & (declared != computed)
            for pos in np.flatnonzero(diff):
                probs.append(
                    ctx.problem(
                        ref,
                        int(pos),
                        f"declared {_fmt_value(declared[pos])} differs from "
                        f"the sum of items {label} = {_fmt_value(computed[pos])}",
                        rule="sum",
                        column=score,
                        value=declared[pos],
                    )
                )
            lo, hi = partial, partial + 4 * n_missing
            impossible = (
                has
                & ~complete
                & ((declared < lo) | (declared > hi))
                & (n_missing < len(parts))
            )
            for pos in np.flatnonzero(impossible):
                probs.append(
                    ctx.problem(
                        ref,
                        int(pos),
                        f"declared {_fmt_value(declared[pos])} is impossible "
                        f"with the items given ({int(n_missing[pos])} missing, the rest sum "
                        f"to {_fmt_value(partial[pos])})",
                        rule="sum",
                        column=score,
                        value=declared[pos],
                    )
                )
            filled = np.where(has, declared, computed)
        else:
            filled = computed
        out[score] = filled
    if impute == "domain_mean":
        for c in items:
            if c in out.columns or imputed_any.any():
                out[c] = item_vals[c]
        out[IMPUTED] = pd.array(imputed_any, dtype="boolean")
    return out, probs


def _impute_domain_mean(
    item_vals: dict[str, npt.NDArray[np.float64]], sums: dict[str, tuple[str, ...]]
) -> tuple[dict[str, npt.NDArray[np.float64]], npt.NDArray[np.bool_]]:
    """Replace one missing item per domain by the rounded mean of its domain's others."""
    vals = {k: v.copy() for k, v in item_vals.items()}
    n = len(next(iter(vals.values())))
    imputed = np.zeros(n, dtype=bool)
    domains = [parts for name, parts in sums.items() if name != "alsfrs_r_total"]
    for parts in domains:
        mat = np.column_stack([vals[c] for c in parts])
        miss = np.isnan(mat)
        one = miss.sum(axis=1) == 1
        if not one.any():
            continue
        rows = np.where(one[:, None], mat, np.nan)
        count = np.maximum((~np.isnan(rows)).sum(axis=1), 1)
        mean = np.nansum(rows, axis=1) / count
        fill = np.floor(mean + 0.5)
        for j, c in enumerate(parts):
            rows = one & miss[:, j]
            vals[c][rows] = fill[rows]
            imputed |= rows
    return vals, imputed


def score_alsfrs_r(
    df: pd.DataFrame, *, impute: Literal["domain_mean"] | None = None
) -> pd.DataFrame:
    """Compute the ALSFRS-R total and the four domain subscores from the 12 items.

    Items are the columns ``alsfrs_r_q1`` ... ``alsfrs_r_q12`` (item 5 may come as
    ``alsfrs_r_q5a``/``alsfrs_r_q5b``, folded into ``alsfrs_r_q5`` plus
    ``alsfrs_r_q5_gastrostomy``).  Domains: bulbar q1-3, fine motor q4-6, gross motor
    q7-9, respiratory q10-12 (from the data dictionary).  A score already present in
    ``df`` must equal the sum of its items when all are present, and be reachable from
    the items present otherwise (it is then kept: many data sets record only the
    total).  A missing score stays missing when an item is missing, unless
    ``impute="domain_mean"``.

    Parameters
    ----------
    df : pandas.DataFrame
        Visits with item columns; other columns pass through.  Not modified.
    impute : {None, "domain_mean"}, default None
        ``"domain_mean"`` replaces a single missing item in a domain by the mean of
        the domain's two other items, rounded half up, and flags the row in
        ``alsfrs_r_imputed``.  Domains with two or more missing items stay missing.

    Returns
    -------
    pandas.DataFrame
        A copy with ``alsfrs_r_total``, ``alsfrs_r_bulbar``, ``alsfrs_r_fine_motor``,
        ``alsfrs_r_gross_motor``, ``alsfrs_r_respiratory`` (float64, NaN when
        unknown).

    Raises
    ------
    DataValidationError
        An item outside 0-4 or not a whole number, both 5a and 5b scored, or a
        declared score that disagrees with its items.

    Examples
    --------
    >>> import pandas as pd
    >>> items = {f"alsfrs_r_q{i}": [4, 3] for i in range(1, 13)}
    >>> scored = score_alsfrs_r(pd.DataFrame({"subject_id": ["P1", "P1"], **items}))
    >>> scored[["alsfrs_r_total", "alsfrs_r_bulbar"]].to_numpy().tolist()
    [[48.0, 12.0], [36.0, 9.0]]
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`df` must be a pandas DataFrame; got {type(df).__name__}.")
    if impute not in (None, "domain_mean"):
        raise ValueError(
            f"`impute` must be one of None, 'domain_mean'; got {impute!r}."
        )
    ctx = TableContext.of(df, "visits table")
    refuse_repeated_columns(df, ctx)
    folded, probs = fold_q5(df, ctx)
    dd = load_dictionary()
    cols = [
        c for c in folded.columns if isinstance(c, str) and c.startswith("alsfrs_r")
    ]
    sub = folded[(["subject_id"] if "subject_id" in folded.columns else []) + cols]
    coerced, p = check_columns(sub, ctx, level="visit", dd=dd, required=[])
    # only item/score rules matter here; time columns are not required
    probs += [q for q in p if q.rule != "required_column"]
    out = folded.copy()
    for c in cols:
        out[c] = coerced[c]
    out, p = check_scores(out, ctx, original=df, impute=impute)
    probs += p
    raise_if(probs, ctx.name)
    return out


def delta_fs(baseline_total: Any, months_since_onset: Any) -> Any:
    """ALSFRS-R points lost per month between symptom onset and the first visit.

    ΔFS = (48 - ALSFRS-R total at the first visit) / months from onset to that visit
    (Kimura et al. 2006, Neurology); positive means decline.

    Parameters
    ----------
    baseline_total : float or array-like
        ALSFRS-R total (0-48) at the first visit.
    months_since_onset : float or array-like
        Months from symptom onset to that visit; must be positive.

    Returns
    -------
    float or numpy.ndarray
        ``(48 - baseline_total) / months_since_onset``; NaN where an input is NaN.

    Raises
    ------
    DataValidationError
        If a total is outside 0-48 or a duration is not positive.

    Examples
    --------
    >>> delta_fs(39, 12.0)
    0.75
    >>> delta_fs([39, 30], [12.0, 6.0]).tolist()
    [0.75, 3.0]
    """
    scalar = np.ndim(baseline_total) == 0 and np.ndim(months_since_onset) == 0
    try:
        b = np.asarray(baseline_total, dtype=float)
        m = np.asarray(months_since_onset, dtype=float)
        b, m = np.broadcast_arrays(b, m)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`baseline_total` and `months_since_onset` must be numbers "
            f"or arrays of numbers ({exc})."
        ) from None
    probs = []
    for pos in np.flatnonzero(~np.isnan(b) & ((b < 0) | (b > 48) | ~np.isfinite(b))):
        probs.append(
            Problem(
                f"{_fmt_value(b.flat[pos])} is outside 0-48",
                rule="range",
                column="alsfrs_r_total",
                value=float(b.flat[pos]),
                line=int(pos) if not scalar else None,
                line_kind="element",
            )
        )
    for pos in np.flatnonzero(~np.isnan(m) & ~(m > 0)):
        probs.append(
            Problem(
                f"{_fmt_value(m.flat[pos])} months since onset is not "
                "positive (ΔFS needs the first visit after onset)",
                rule="range",
                column="months_since_onset",
                value=float(m.flat[pos]),
                line=int(pos) if not scalar else None,
                line_kind="element",
            )
        )
    if probs:
        raise DataValidationError(probs, source="delta_fs")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (48.0 - b) / m
    return float(out) if scalar else out
