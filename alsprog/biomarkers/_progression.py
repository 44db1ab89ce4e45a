"""Imaging markers of ALS progression: prognostic screening and change rates.

Owns: :func:`screen_progression_markers` (does a subject's baseline imaging value
predict how fast the ALSFRS-R falls? one mixed model per feature, Benjamini-Hochberg
across features) and :func:`imaging_change_rates` (how fast does each imaging feature
change in ALS against controls, its standardized response mean and the trial size
it would need as an endpoint).
Leaves: the mixed models to :mod:`alsprog.models`, the sample-size formulae to
:mod:`alsprog.design`, figures to :mod:`alsprog.plots`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._validation import check_interval, check_numbers
from alsprog.errors import (
    ConvergenceWarning,
    DataValidationError,
    ModelSpecificationError,
    Problem,
)

__all__ = [
    "imaging_change_rates",
    "screen_progression_markers",
]

logger = logging.getLogger(__name__)


def _bh_qvalues(p_values: Any) -> npt.NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN.

    Parameters
    ----------
    p_values : array-like of float
        Unadjusted p-values in [0, 1].

    Returns
    -------
    numpy.ndarray
        ``q_(i) = min_{j >= i} p_(j) m / j`` in the input order, capped at 1.

    References
    ----------
    Benjamini Y, Hochberg Y (1995). Controlling the false discovery rate. J R Stat
    Soc B 57:289-300.

    Examples
    --------
    >>> _bh_qvalues([0.01, 0.04, 0.03, 0.5]).round(3).tolist()
    [0.04, 0.053, 0.053, 0.5]
    """
    p = np.asarray(p_values, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    ranked = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    return q


def _check_columns(table: Any, needed: dict[str, str]) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ModelSpecificationError(
            f"`table` must be a pandas DataFrame; got {type(table).__name__}."
        )
    for arg, col in needed.items():
        if not isinstance(col, str) or col not in table.columns:
            raise ModelSpecificationError(f"`{arg}` column {col!r} not in the table")


def _feature_list(table: pd.DataFrame, features: Any) -> list[str]:
    feats = [features] if isinstance(features, str) else list(features)
    if not feats:
        raise ModelSpecificationError("`features` is empty; give column names.")
    missing = [f for f in feats if f not in table.columns]
    if missing:
        raise ModelSpecificationError(f"feature column(s) {missing} not in the table")
    for f in feats:
        if not pd.api.types.is_numeric_dtype(table[f]):
            raise ModelSpecificationError(
                f"feature column {f!r} is not numeric (dtype {table[f].dtype})"
            )
    return list(dict.fromkeys(feats))


def _fit_lmm(formula: str, df: pd.DataFrame, time: str) -> Any:
    """Fit quietly; return the model and whether the fit was singular."""
    from alsprog.models import LinearMixedModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        return LinearMixedModel(formula, time=time).fit(df)


def screen_progression_markers(
    table: pd.DataFrame,
    features: Sequence[str],
    *,
    outcome: str = "alsfrs_r_total",
    time: str = "months",
    subject: str = "subject_id",
    group: str | None = "group",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Screen baseline imaging features as predictors of ALSFRS-R decline.

    For each feature the subject's baseline value (its earliest session with the
    feature) is standardised to mean 0 and SD 1 across patients and entered in
    ``outcome ~ time * feature + (time | subject)``; the ``time:feature``
    coefficient is the change in the slope (points per ``time`` unit) per SD of the
    baseline feature.  P-values are adjusted across features by Benjamini-Hochberg.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table (clinic visits with the outcome, imaging sessions with features).
    features : sequence of str
        Feature columns to screen.
    outcome, time, subject : str
        Outcome, time and subject columns.
    group : str or None, default "group"
        Group column; when present only rows whose group is ``"als"`` are used.
        ``None``: use every row.
    alpha : float, default 0.05
        False discovery rate for ``significant``, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        One row per feature, in the order given: ``feature, estimate, std_error, z,
        p_value, q_value, significant, n_subjects, note`` (``note`` says why a
        feature could not be fitted; its numbers are then NaN).

    Raises
    ------
    ModelSpecificationError
        Bad ``alpha``, missing or non-numeric columns.
    DataValidationError
        No patient has both the outcome and a feature.

    See Also
    --------
    imaging_change_rates : change of the features themselves over time.

    Notes
    -----
    The Wald ``z`` uses the lme4-style standard error; with few patients it is
    somewhat liberal.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(40, months=12, seed=2)
    >>> df = assemble(c.visits, c.subjects, c.imaging)
    >>> res = screen_progression_markers(df, ["fa_cst_left", "thickness_cuneus_left"])
    >>> res.columns[:7].tolist()
    ['feature', 'estimate', 'std_error', 'z', 'p_value', 'q_value', 'significant']
    """
    from scipy import stats

    _check_columns(table, {"outcome": outcome, "time": time, "subject": subject})
    feats = _feature_list(table, features)
    alpha = check_interval(
        alpha,
        "alpha",
        low=0,
        high=1,
        low_closed=False,
        high_closed=False,
        error=ModelSpecificationError,
    )
    df = table
    if group is not None and group in table.columns:
        df = table.loc[table[group] == "als"]
    base = df[[subject, time, *feats]].sort_values([subject, time], kind="stable")
    clin = df.loc[df[outcome].notna(), [subject, time, outcome]]
    clin = clin.loc[clin[time].notna()]
    rows = []
    for f in feats:
        first = base.loc[base[f].notna()].groupby(subject, sort=False)[f].first()
        row: dict[str, Any] = {"feature": f, "n_subjects": 0, "note": ""}
        sd = first.std(ddof=1)
        if len(first) < 3 or not np.isfinite(sd) or sd <= 0:
            row["note"] = f"{len(first)} patients with a baseline value, or no spread"
            rows.append(row)
            continue
        # the standardised marker gets a name of its own, outside the data
        # dictionary: a z-score is not on the feature's scale (FA z = 1.9 is not FA)
        zf = "marker_z"
        while zf in clin.columns:
            zf += "_"
        z = ((first - first.mean()) / sd).rename(zf)
        work = clin.merge(z, left_on=subject, right_index=True, how="inner")
        row["n_subjects"] = int(work[subject].nunique())
        term = f"{time}:{zf}"
        try:
            m = _fit_lmm(
                f"{outcome} ~ {time} * {zf} + ({time} | {subject})", work, time
            )
        except ModelSpecificationError as exc:
            row["note"] = str(exc)
            rows.append(row)
            continue
        if term not in m.fe_params_.index:
            row["note"] = f"no {term} term in the fit"
        else:
            est, se = float(m.fe_params_[term]), float(m.bse_[term])
            row.update(estimate=est, std_error=se, z=est / se)
            if m.singular_:
                row["note"] = "singular random effects"
        rows.append(row)
    out = pd.DataFrame(rows)
    for c in ("estimate", "std_error", "z"):
        if c not in out:
            out[c] = np.nan
    if (out["n_subjects"] == 0).all():
        raise DataValidationError(
            [
                Problem(
                    f"no patient has both {outcome!r} and a baseline value of any "
                    "feature",
                    rule="required",
                    column=outcome,
                )
            ],
            source="screen_progression_markers",
        )
    out["p_value"] = 2 * stats.norm.sf(np.abs(out["z"].to_numpy(np.float64)))
    out["q_value"] = _bh_qvalues(out["p_value"])
    out["significant"] = out["q_value"].to_numpy() <= alpha
    return out[
        [
            "feature",
            "estimate",
            "std_error",
            "z",
            "p_value",
            "q_value",
            "significant",
            "n_subjects",
            "note",
        ]
    ]


def _ols_slopes(df: pd.DataFrame, f: str, time: str, subject: str) -> pd.Series:
    """Per-subject least-squares slopes (subjects with >= 2 distinct times)."""
    d = df[[subject, time, f]].dropna()
    g = d.groupby(subject, sort=False)
    tc = d[time] - g[time].transform("mean")
    yc = d[f] - g[f].transform("mean")
    sxy = (tc * yc).groupby(d[subject], sort=False).sum()
    sxx = (tc * tc).groupby(d[subject], sort=False).sum()
    ok = sxx > 1e-12
    return (sxy[ok] / sxx[ok]).astype(np.float64)


def _group_fit(df: pd.DataFrame, f: str, time: str, subject: str) -> tuple[Any, str]:
    model = _fit_lmm(f"{f} ~ {time} + ({time} | {subject})", df, time)
    if not model.singular_:
        return model, ""
    model = _fit_lmm(f"{f} ~ {time} + (1 | {subject})", df, time)
    return model, "random slope singular: (1 | subject)"


def imaging_change_rates(
    table: pd.DataFrame,
    features: Sequence[str],
    *,
    time: str = "months",
    subject: str = "subject_id",
    group: str = "group",
    slowing: float = 0.25,
    visit_months: Sequence[float] = (0, 6, 12),
    power: float = 0.8,
    level: float = 0.95,
    time_per_year: float = 12.0,
) -> pd.DataFrame:
    """Yearly change of imaging features in ALS and controls, and their trial size.

    Per feature and group a mixed model ``feature ~ time + (time | subject)`` is fitted
    (``(1 | subject)`` when the random slope is singular, noted in ``note``).  The
    ALS-specific change is the ALS slope minus the control slope; the sample size is
    for detecting a ``slowing`` fraction of it in a two-arm trial with visits at
    ``visit_months``, using the ALS model's variance components.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table with the feature, time, subject and group columns.
    features : sequence of str
        Feature columns.
    time, subject, group : str
        Time, subject and group (``"als"`` vs ``"control"``) columns.
    slowing : float, default 0.25
        Fraction of the ALS-specific change a treatment would remove, in (0, 1].
    visit_months : sequence of float, default (0, 6, 12)
        Imaging visits of the planned trial, in ``time`` units.
    power : float, default 0.8
        Target power (two-sided alpha 0.05), in (0, 1).
    level : float, default 0.95
        Coverage of the interval of the ALS-specific change.
    time_per_year : float, default 12.0
        ``time`` units per year (12 for months).

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``feature``, ``als_slope``, ``als_slope_se``,
        ``control_slope``, ``control_slope_se``, ``difference`` (ALS minus control),
        ``difference_ci_lower``, ``difference_ci_upper`` (all per year), ``srm``
        (mean / SD of the per-patient least-squares slopes, patients with >= 2
        sessions), ``n_per_arm`` (inf when the ALS-specific change is 0),
        ``n_als``, ``n_control`` (subjects) and ``note``.

    Raises
    ------
    ModelSpecificationError
        Bad arguments or missing columns.
    DataValidationError
        A group without any subject with two sessions of a feature.

    See Also
    --------
    alsprog.design.sample_size_slope : the sample-size formula (Edland).

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(40, 30, months=12, seed=4)
    >>> df = assemble(c.visits, c.subjects, c.imaging)
    >>> r = imaging_change_rates(df, ["fa_cst_left"])
    >>> bool(r.loc[0, "als_slope"] < r.loc[0, "control_slope"])
    True
    """
    from scipy import stats

    from alsprog.design import sample_size_slope

    _check_columns(table, {"time": time, "subject": subject, "group": group})
    feats = _feature_list(table, features)
    kw = dict(low=0, high=1, low_closed=False, error=ModelSpecificationError)
    slowing = check_interval(slowing, "slowing", **kw)  # type: ignore[arg-type]
    power = check_interval(power, "power", high_closed=False, **kw)  # type: ignore[arg-type]
    level = check_interval(level, "level", high_closed=False, **kw)  # type: ignore[arg-type]
    time_per_year = check_interval(
        time_per_year,
        "time_per_year",
        low=0,
        low_closed=False,
        error=ModelSpecificationError,
    )
    visits = check_numbers(
        visit_months, "visit_months", min_len=2, error=ModelSpecificationError
    )
    if any(b <= a for a, b in zip(visits, visits[1:], strict=False)):
        raise ModelSpecificationError(
            f"`visit_months` must hold at least two increasing times; got {visit_months!r}."
        )
    groups = {"als": table.loc[table[group] == "als"]}
    groups["control"] = table.loc[table[group] == "control"]
    zc = stats.norm.ppf(0.5 + level / 2)
    rows = []
    for f in feats:
        row: dict[str, Any] = {"feature": f}
        notes = []
        models = {}
        for g, d in groups.items():
            d = d.loc[d[f].notna() & d[time].notna(), [subject, time, f]]
            n_multi = int((d.groupby(subject)[time].nunique() >= 2).sum())
            if n_multi == 0:
                raise DataValidationError(
                    [
                        Problem(
                            f"no {g} subject has two sessions with {f!r}; change "
                            "rates need follow-up scans",
                            rule="required",
                            column=f,
                        )
                    ],
                    source="imaging_change_rates",
                )
            m, note = _group_fit(d, f, time, subject)
            models[g] = m
            if note:
                notes.append(f"{g}: {note}")
            row[f"{g}_slope"] = float(m.fe_params_[time]) * time_per_year
            row[f"{g}_slope_se"] = float(m.bse_[time]) * time_per_year
            row[f"n_{g}"] = int(d[subject].nunique())
            if g == "als":
                sl = _ols_slopes(d, f, time, subject)
                sd = sl.std(ddof=1)
                row["srm"] = float(sl.mean() / sd) if len(sl) > 1 and sd > 0 else np.nan
        diff = row["als_slope"] - row["control_slope"]
        se = math.hypot(row["als_slope_se"], row["control_slope_se"])
        row.update(
            difference=diff,
            difference_ci_lower=diff - zc * se,
            difference_ci_upper=diff + zc * se,
        )
        row["n_per_arm"] = _n_per_arm(
            models["als"],
            diff / time_per_year,
            slowing,
            visits,
            time,
            power,
            sample_size_slope,
        )
        row["note"] = "; ".join(notes)
        rows.append(row)
    cols = [
        "feature",
        "als_slope",
        "als_slope_se",
        "control_slope",
        "control_slope_se",
        "difference",
        "difference_ci_lower",
        "difference_ci_upper",
        "srm",
        "n_per_arm",
        "n_als",
        "n_control",
        "note",
    ]
    return pd.DataFrame(rows)[cols]


def _n_per_arm(
    model: Any,
    specific_slope: float,
    slowing: float,
    visits: list[float],
    time: str,
    power: float,
    sample_size_slope: Any,
) -> float:
    delta = abs(slowing * specific_slope)
    if not np.isfinite(delta) or delta <= 0:
        return math.inf
    cov = model.cov_re_
    icpt = next(n for n in cov.index if n in ("Intercept", "(Intercept)"))
    has_slope = time in cov.index
    res = sample_size_slope(
        delta,
        visits,
        float(cov.loc[icpt, icpt]),
        float(cov.loc[time, time]) if has_slope else 0.0,
        float(cov.loc[icpt, time]) if has_slope else 0.0,
        float(model.scale_),
        power=power,
    )
    return float(res.n_per_arm)
