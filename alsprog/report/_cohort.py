"""A cohort's description: who is in the long table, per group.

Owns: :func:`describe_cohort` (subjects, visits, follow-up, baseline characteristics
and imaging per group, as numbers).
Leaves: formatting to the report renderer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["describe_cohort"]


def describe_cohort(
    table: pd.DataFrame,
    *,
    outcome: str = "alsfrs_r_total",
    group: str = "group",
    subject: str = "subject_id",
) -> pd.DataFrame:
    """Describe a long table per group: counts, follow-up and baseline values.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table (one row per subject x visit, ``months`` since the first visit).
    outcome : str, default "alsfrs_r_total"
        Outcome whose baseline (first visit) is described.
    group, subject : str
        Group and subject columns (without a group column every subject is ``all``).

    Returns
    -------
    pandas.DataFrame
        One row per quantity (index), one numeric column per group plus ``all``;
        NaN where a quantity does not apply.  Quantities missing from the table are
        left out.

    Examples
    --------
    >>> t = pd.DataFrame({"subject_id": ["P1", "P1", "C1"],
    ...     "group": ["als", "als", "control"], "months": [0.0, 6.0, 0.0],
    ...     "alsfrs_r_total": [40.0, 35.0, np.nan]})
    >>> describe_cohort(t).loc[["subjects", "visits", "follow-up months, median"]]
                               als  control  all
    subjects                   1.0      1.0  2.0
    visits                     2.0      1.0  3.0
    follow-up months, median   6.0      0.0  3.0
    """
    t = table.copy()
    if group not in t.columns:
        t[group] = "all"
    t[group] = t[group].astype(str)
    groups = sorted(t[group].unique())
    first = t.sort_values([subject, "months"]).groupby(subject, sort=False).first()
    cols: dict[str, dict[str, float]] = {}
    for g in [*groups, "all"]:
        rows = t if g == "all" else t.loc[t[group] == g]
        base = first if g == "all" else first.loc[first[group] == g]
        fu = rows.groupby(subject)["months"].max()
        d: dict[str, float] = {
            "subjects": float(rows[subject].nunique()),
            "visits": float(len(rows)),
            "visits per subject, median": float(rows.groupby(subject).size().median()),
            "follow-up months, median": float(fu.median()),
            "follow-up months, max": float(fu.max()),
        }
        if outcome in rows.columns:
            d[f"visits with {outcome}"] = float(rows[outcome].notna().sum())
            b = base[outcome].dropna() if outcome in base.columns else pd.Series([])
            d[f"baseline {outcome}, mean"] = _mean(b)
            d[f"baseline {outcome}, SD"] = _sd(b)
        for col, label in (
            ("age_at_baseline", "age at baseline, mean"),
            ("delta_fs", "ΔFS (points/month), mean"),
            ("onset_months_before_baseline", "months onset to baseline, mean"),
        ):
            if col in base.columns:
                d[label] = _mean(base[col])
        if "sex" in base.columns:
            s = base["sex"].dropna().astype(str).str.lower()
            d["male, %"] = (
                100 * float(s.isin(["male", "m"]).mean()) if len(s) else np.nan
            )
        if "onset_site" in base.columns:
            s = base["onset_site"].dropna().astype(str)
            d["bulbar onset, %"] = (
                100 * float((s == "bulbar").mean()) if len(s) else np.nan
            )
        if "site" in base.columns:
            d["sites"] = float(base["site"].nunique())
        if "session" in rows.columns:
            d["imaging sessions"] = float(rows["session"].notna().sum())
        if "death_or_tracheostomy_months" in base.columns:
            ev = base.get("event_observed")
            if ev is not None:
                d["death or tracheostomy observed"] = float(
                    pd.Series(ev).fillna(False).astype(bool).sum()
                )
        cols[g] = d
    out = pd.DataFrame(cols)
    return out.reindex(list(cols["all"].keys()))


def _mean(s: pd.Series) -> float:
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.mean()) if len(s) else np.nan


def _sd(s: pd.Series) -> float:
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.std(ddof=1)) if len(s) > 1 else np.nan
