"""What each table of a PRO-ACT export means in alsprog's long format.

Owns: the mapping of the ALSFRS file (ALSFRS-R or original ALSFRS per row, Q5a/Q5b,
half-point items, declared totals, duplicates), the FVC file (best attempt per
visit, litres and % predicted), and the one-row-per-subject files (history,
demographics, death, treatment, riluzole), each recording a problem per bad cell
and a :class:`~alsprog.data._proact_files.Note` per rule that changed rows.
Leaves: finding and parsing files to :mod:`alsprog.data._proact_files`, the
time axes and the cohort to :mod:`alsprog.data._proact`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from alsprog.data._proact_files import Note, ProactFile

__all__ = [
    "alsfrs_rows",
    "death_table",
    "demographics_table",
    "fvc_rows",
    "history_table",
    "riluzole_table",
    "treatment_table",
]

Conflicts = Literal["raise", "drop"]

#: ALSFRS-R items other than 5: alsprog's column and PRO-ACT's.
ITEMS = {
    "alsfrs_r_q1": "Q1_Speech",
    "alsfrs_r_q2": "Q2_Salivation",
    "alsfrs_r_q3": "Q3_Swallowing",
    "alsfrs_r_q4": "Q4_Handwriting",
    "alsfrs_r_q6": "Q6_Dressing_and_Hygiene",
    "alsfrs_r_q7": "Q7_Turning_in_Bed",
    "alsfrs_r_q8": "Q8_Walking",
    "alsfrs_r_q9": "Q9_Climbing_Stairs",
    "alsfrs_r_q10": "R_1_Dyspnea",
    "alsfrs_r_q11": "R_2_Orthopnea",
    "alsfrs_r_q12": "R_3_Respiratory_Insufficiency",
}
Q5A = "Q5a_Cutting_without_Gastrostomy"
Q5B = "Q5b_Cutting_with_Gastrostomy"
Q5_OLD = "Q5_Cutting"
Q10_ORIGINAL = "Q10_Respiratory"
ITEM_COLUMNS = [f"alsfrs_r_q{k}" for k in range(1, 13)]
VISIT_COLUMNS = [
    *ITEM_COLUMNS,
    "alsfrs_r_q5_gastrostomy",
    "alsfrs_r_total",
    "alsfrs_version",
    "alsfrs_original_total",
]

#: ``Site_of_Onset`` text (without ``Onset:``) and one-hot flag suffixes.
ONSET_TEXT = {
    "bulbar": "bulbar",
    "limb": "spinal",
    "spine": "spinal",
    "spinal": "spinal",
    "limb and bulbar": "other",
    "other": "other",
}
ONSET_FLAGS = {
    "bulbar": "bulbar",
    "limb": "spinal",
    "spine": "spinal",
    "limb_and_bulbar": "other",
    "other": "other",
    "other_specify": "other",
}


def _item(f: ProactFile, column: str | None) -> np.ndarray:
    """An item column: 0-4 in steps of 0.5 (half points are real, never rounded)."""
    v = f.numbers(column)
    bad = ~np.isnan(v) & ((v < 0) | (v > 4) | (v * 2 != np.round(v * 2)))
    for pos in np.flatnonzero(bad):
        f.problem(
            int(pos),
            column,
            f.cells[column].iloc[pos].strip(),
            "is not an ALSFRS item score (0-4)",
            "item_range",
        )
    v[bad] = np.nan
    return v


def _halves(grid: np.ndarray) -> np.ndarray:
    """Rows with a half-point item."""
    return (np.isfinite(grid) & (grid != np.round(grid))).any(axis=1)


def _total(f: ProactFile, column: str | None, top: int) -> np.ndarray:
    v = f.numbers(column)
    bad = ~np.isnan(v) & ((v < 0) | (v > top))
    for pos in np.flatnonzero(bad):
        f.problem(
            int(pos),
            column,
            f.cells[column].iloc[pos].strip(),
            f"is outside the total's range 0-{top}",
            "total_range",
        )
    v[bad] = np.nan
    return v


def _sum_check(
    f: ProactFile,
    rows: np.ndarray,
    items: np.ndarray,
    declared: np.ndarray,
    column: str | None,
    scale: str,
) -> None:
    """A declared total must equal the sum of complete items, and lie within what
    the missing items allow when some are missing."""
    n_items = items.shape[1]
    have = ~np.isnan(items)
    part = np.where(have, items, 0.0).sum(axis=1)
    n_miss = n_items - have.sum(axis=1)
    low, high = part, part + 4.0 * n_miss
    bad = rows & ~np.isnan(declared) & ((declared < low) | (declared > high))
    for pos in np.flatnonzero(bad):
        if n_miss[pos] == 0:
            why = f"is not the sum of the {n_items} {scale} items ({part[pos]:g})"
        else:
            why = (
                f"cannot be the {scale} total of these items: the {n_items - n_miss[pos]}"
                f" given sum to {part[pos]:g} and the {n_miss[pos]} missing add 0-"
                f"{4 * n_miss[pos]}"
            )
        f.problem(int(pos), column, f"{declared[pos]:g}", why, "total_mismatch")


def alsfrs_rows(f: ProactFile, notes: list[Note], conflicts: Conflicts) -> pd.DataFrame:
    """The ALSFRS file as visit rows: ``subject``, ``day`` and :data:`VISIT_COLUMNS`.

    A row is ALSFRS-R when R_1-R_3 or ALSFRS_R_Total is filled (even if Q10 of the
    original scale is filled too); otherwise it is an original-ALSFRS row when Q10
    or ALSFRS_Total is filled: items 1-9 (the same questions on both scales) are
    kept, the ALSFRS-R items 10-12 and total stay empty and the 0-40 total goes to
    ``alsfrs_original_total``.  A row with a half-point item keeps its items and
    total empty (never rounded).
    """
    (delta_col,) = f.require("ALSFRS_Delta")
    if delta_col is None:
        return pd.DataFrame()
    day = f.whole(delta_col, "days from trial entry")
    cols = {k: f.column(v) for k, v in ITEMS.items()}
    items = {k: _item(f, c) for k, c in cols.items()}
    c5a, c5b, c5 = f.column(Q5A), f.column(Q5B), f.column(Q5_OLD)
    q5a, q5b, q5old = _item(f, c5a), _item(f, c5b), _item(f, c5)
    c10 = f.column(Q10_ORIGINAL)
    q10o = _item(f, c10)
    c_tr, c_to = f.column("ALSFRS_R_Total"), f.column("ALSFRS_Total")
    tot_r, tot_o = _total(f, c_tr, 48), _total(f, c_to, 40)
    both = ~np.isnan(q5a) & ~np.isnan(q5b)
    for pos in np.flatnonzero(both):
        f.problem(
            int(pos),
            c5b,
            f"{q5b[pos]:g}",
            f"both {Q5A} ({q5a[pos]:g}) and {Q5B} are filled; item 5 is one or the "
            "other",
            "q5_clash",
        )
    q5 = np.where(~np.isnan(q5a), q5a, np.where(~np.isnan(q5b), q5b, q5old))
    gastro = np.where(~np.isnan(q5a), 0.0, np.where(~np.isnan(q5b), 1.0, np.nan))
    items["alsfrs_r_q5"] = q5
    grid = np.column_stack([items[c] for c in ITEM_COLUMNS])
    n = len(day)
    resp = grid[:, 9:12]
    revised = ~np.isnan(resp).all(axis=1) | ~np.isnan(tot_r)
    first9 = grid[:, :9]
    original = ~revised & (~np.isnan(q10o) | ~np.isnan(tot_o))
    half_r = revised & _halves(grid)
    orig_items = np.column_stack([first9, q10o])
    half_o = original & _halves(orig_items)
    unknown = ~revised & ~original
    half_u = unknown & _halves(first9)
    _sum_check(f, revised & ~half_r, grid, tot_r, c_tr, "ALSFRS-R")
    _sum_check(f, original & ~half_o, orig_items, tot_o, c_to, "ALSFRS")

    total = np.where(revised, tot_r, np.nan)
    complete = revised & ~np.isnan(grid).any(axis=1)
    total = np.where(np.isnan(total) & complete, grid.sum(axis=1), total)
    orig_total = np.where(original, tot_o, np.nan)
    complete_o = original & ~np.isnan(orig_items).any(axis=1)
    orig_total = np.where(
        np.isnan(orig_total) & complete_o, orig_items.sum(axis=1), orig_total
    )
    out_items = grid.copy()
    out_items[~revised, 9:12] = np.nan
    half = half_r | half_o | half_u
    out_items[half] = np.nan
    total[half] = np.nan
    orig_total[half] = np.nan
    version = np.full(n, None, dtype=object)
    version[revised] = "alsfrs-r"
    version[original] = "alsfrs"

    df = pd.DataFrame(out_items, columns=ITEM_COLUMNS)
    df.insert(0, "subject", f.subject)
    df.insert(1, "day", day)
    df["alsfrs_r_q5_gastrostomy"] = pd.array(
        np.where(np.isnan(gastro), None, gastro == 1.0), dtype="boolean"
    )
    df["alsfrs_r_total"] = total
    df["alsfrs_version"] = pd.array(version, dtype="str")
    df["alsfrs_original_total"] = orig_total
    df["line"] = f.lines
    df["_half"] = half
    df["_empty"] = unknown & np.isnan(first9).all(axis=1)
    df["_both_scales"] = revised & (~np.isnan(q10o) | ~np.isnan(tot_o))
    df["_original"] = original
    return _finish_rows(f, df, notes, conflicts, delta_col, "ALSFRS")


def _finish_rows(
    f: ProactFile,
    df: pd.DataFrame,
    notes: list[Note],
    conflicts: Conflicts | None,
    delta_col: str,
    what: str,
) -> pd.DataFrame:
    """Drop rows without a time, collapse exact duplicates, handle conflicts."""
    name = f.name
    miss_day = f.missing(delta_col)[df.index.to_numpy()] & ~np.isnan(
        df["subject"].to_numpy()
    )
    if miss_day.any():
        notes.append(
            Note(
                name,
                "no_delta",
                int(miss_day.sum()),
                f"{int(miss_day.sum())} rows without {delta_col} dropped",
            )
        )
    df = df[~np.isnan(df["day"].to_numpy()) & ~np.isnan(df["subject"].to_numpy())]
    if what == "ALSFRS":
        for flag, rule, msg in (
            ("_empty", "empty", "rows with no item and no total dropped"),
            (
                "_half",
                "half_points",
                "rows with half-point items: items and totals left empty (never "
                "rounded)",
            ),
            (
                "_original",
                "original_alsfrs",
                "rows on the original ALSFRS (Q10_Respiratory or ALSFRS_Total, no "
                "R_1-R_3): kept with alsfrs_version 'alsfrs', the 0-40 total in "
                "alsfrs_original_total and alsfrs_r_total empty",
            ),
            (
                "_both_scales",
                "both_scales",
                "rows with R_1-R_3 or ALSFRS_R_Total and the original Q10/ALSFRS_Total"
                " also filled: read as ALSFRS-R",
            ),
        ):
            k = int(df[flag].sum())
            if k:
                notes.append(Note(name, rule, k, f"{k} {msg}"))
        df = df[~df["_empty"].to_numpy()]
        df = df.drop(columns=["_empty", "_half", "_both_scales", "_original"])
    values = [c for c in df.columns if c != "line"]
    exact = df.duplicated(subset=values, keep="first").to_numpy()
    if exact.any():
        notes.append(
            Note(
                name,
                "duplicate",
                int(exact.sum()),
                f"{int(exact.sum())} exact duplicate rows collapsed",
            )
        )
        df = df[~exact]
    if conflicts is None:
        return df.reset_index(drop=True)
    clash = df.duplicated(subset=["subject", "day"], keep=False).to_numpy()
    if clash.any():
        groups = df[clash].groupby(["subject", "day"], sort=True)
        if conflicts == "raise":
            for (sid, day), g in groups:
                lines = g["line"].tolist()
                pos = int(np.searchsorted(f.lines, lines[0]))
                f.problem(
                    pos,
                    delta_col,
                    f"{day:g}",
                    f"{len(lines)} rows of subject {int(sid)} at {delta_col} "
                    f"{day:g} (lines {', '.join(map(str, lines))}) differ; "
                    "keep one, or read with conflicts='drop'",
                    "conflict",
                )
        else:
            notes.append(
                Note(
                    name,
                    "conflict",
                    int(clash.sum()),
                    f"{int(clash.sum())} rows dropped: {groups.ngroups} visits with "
                    f"differing {what} rows at one {delta_col}",
                )
            )
            df = df[~clash]
    return df.reset_index(drop=True)


FVC_LITERS = (
    "Subject_Liters_Trial_1",
    "Subject_Liters_Trial_2",
    "Subject_Liters_Trial_3",
)
FVC_PERCENT = (
    "pct_of_Normal_Trial_1",
    "pct_of_Normal_Trial_2",
    "pct_of_Normal_Trial_3",
)


def _attempts(
    f: ProactFile, names: tuple[str, ...], top: np.ndarray, what: np.ndarray
) -> np.ndarray:
    """The best (largest) attempt per row; each attempt outside 0-``top`` of its row
    is a problem."""
    best = np.full(len(f.cells), np.nan)
    for name in names:
        col = f.column(name)
        v = f.numbers(col)
        bad = ~np.isnan(v) & ((v < 0) | (v > top))
        for pos in np.flatnonzero(bad):
            f.problem(
                int(pos),
                col,
                f.cells[col].iloc[pos].strip(),
                f"is outside 0-{top[pos]:g} ({what[pos]})",
                "fvc_range",
            )
        v[bad] = np.nan
        best = np.fmax(best, v)
    return best


def fvc_rows(f: ProactFile, notes: list[Note]) -> pd.DataFrame:
    """The FVC file as one row per subject × visit: the best (largest) of the
    spirometry attempts ("Trial" 1-3) in litres and in % of predicted.

    Rows whose ``Forced_Vital_Capacity_Units`` is ``Percent Predicted`` hold
    percentages in the litre columns; they are read as such.  Where no percentage
    is given but ``subject_normal`` (the predicted litres) is, it is computed.
    Several rows at one visit: the largest values (ATS/ERS: the best attempt).
    """
    (delta_col,) = f.require("Forced_Vital_Capacity_Delta")
    if delta_col is None:
        return pd.DataFrame()
    day = f.whole(delta_col, "days from trial entry")
    n = len(day)
    units = f.text(f.column("Forced_Vital_Capacity_Units")).str.lower()
    pct_units = (units == "percent predicted").fillna(False).to_numpy(dtype=bool)
    top = np.where(pct_units, 250.0, 10.0)
    what = np.where(pct_units, "% of predicted, as the row's units say", "litres")
    first = _attempts(f, FVC_LITERS, top, what)
    liters = np.where(pct_units, np.nan, first)
    pct = _attempts(f, FVC_PERCENT, np.full(n, 250.0), np.full(n, "% of predicted"))
    if pct_units.any():
        pct = np.where(np.isnan(pct) & pct_units, first, pct)
        k = int(pct_units.sum())
        notes.append(
            Note(
                f.name,
                "percent_units",
                k,
                f"{k} rows with Forced_Vital_Capacity_Units 'Percent Predicted': their "
                "Subject_Liters values read as % of predicted",
            )
        )
    c_norm = f.column("subject_normal")
    normal = f.numbers(c_norm)
    fill = np.isnan(pct) & ~np.isnan(liters) & (normal > 0)
    if fill.any():
        pct[fill] = 100.0 * liters[fill] / normal[fill]
        over = fill & (pct > 250)
        for pos in np.flatnonzero(over):
            f.problem(
                int(pos),
                c_norm,
                f"{normal[pos]:g}",
                f"gives {pct[pos]:.0f} % of predicted (over 250 %): is it in litres?",
                "fvc_range",
            )
        pct[over] = np.nan
        notes.append(
            Note(
                f.name,
                "percent_computed",
                int(fill.sum()),
                f"{int(fill.sum())} rows: % of predicted computed as 100 x litres / "
                "subject_normal",
            )
        )
    df = pd.DataFrame(
        {
            "subject": f.subject,
            "day": day,
            "fvc_liters": liters,
            "fvc_percent_predicted": pct,
            "line": f.lines,
        }
    )
    empty = np.isnan(liters) & np.isnan(pct) & ~np.isnan(day)
    if empty.any():
        k = int(empty.sum())
        notes.append(Note(f.name, "empty", k, f"{k} rows with no FVC value dropped"))
    df = _finish_rows(f, df[~empty], notes, None, delta_col, "FVC")
    merged = df.groupby(["subject", "day"], as_index=False, sort=True).agg(
        fvc_liters=("fvc_liters", "max"),
        fvc_percent_predicted=("fvc_percent_predicted", "max"),
        line=("line", "min"),
    )
    k = len(df) - len(merged)
    if k:
        notes.append(
            Note(
                f.name,
                "best_of_visit",
                k,
                f"{k} rows at a visit that had another FVC row: the visit keeps the "
                "largest litres and % of predicted",
            )
        )
    return merged


def _per_subject(
    f: ProactFile, values: Mapping[str, tuple[str | None, object]]
) -> pd.DataFrame:
    """One row per subject from a file that may have several: the values found
    on its rows; differing values on two rows are a problem naming both lines."""
    data = {k: v for k, (_, v) in values.items()}
    df = pd.DataFrame(data)
    df["_sid"] = f.subject
    df["_line"] = f.lines
    df["_pos"] = np.arange(len(df))
    df = df[~np.isnan(df["_sid"].to_numpy())]
    for key, (column, _) in values.items():
        sub = df[["_sid", key, "_line", "_pos"]].dropna(subset=[key])
        counts = sub.groupby("_sid")[key].nunique()
        for sid in counts.index[counts.to_numpy() > 1]:
            rows = sub[sub["_sid"] == sid]
            first = rows.iloc[0]
            for _, r in rows.iloc[1:].iterrows():
                if r[key] != first[key]:
                    f.problem(
                        int(r["_pos"]),
                        column,
                        _fmt(r[key]),
                        f"differs from {_fmt(first[key])} on line {int(first['_line'])}"
                        " (one value per subject)",
                        "conflict",
                    )
    firsts = df.groupby("_sid", sort=True).first()
    return firsts.drop(columns=["_pos"])


def _fmt(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _onset_site(f: ProactFile) -> pd.Series:
    col = f.column("Site_of_Onset")
    text = f.text(col)
    key = text.str.lower().str.replace(r"^onset:\s*", "", regex=True).str.strip()
    site = key.map(ONSET_TEXT)
    bad = key.notna() & site.isna()
    allowed = "'Onset: Bulbar', 'Onset: Limb', 'Onset: Spine', 'Onset: Limb and Bulbar', 'Onset: Other'"
    for pos in np.flatnonzero(bad.to_numpy()):
        f.problem(
            int(pos),
            col,
            text.iloc[pos],
            f"is not an onset site ({allowed})",
            "onset_site",
        )
    from_flags = pd.Series(pd.NA, index=text.index, dtype="str")
    for suffix, value in ONSET_FLAGS.items():
        fcol = f.column(f"Site_of_Onset___{suffix}")
        if fcol is None:
            continue
        v = f.numbers(fcol)
        weird = ~np.isnan(v) & (v != 0) & (v != 1)
        for pos in np.flatnonzero(weird):
            f.problem(int(pos), fcol, f"{v[pos]:g}", "is not a 0/1 flag", "flag")
        on = v == 1
        several = on & from_flags.notna().to_numpy() & (from_flags != value).to_numpy()
        from_flags[on] = value
        from_flags[several] = "other"  # bulbar and limb both flagged
    clash = site.notna() & from_flags.notna() & (site != from_flags)
    for pos in np.flatnonzero(clash.to_numpy()):
        f.problem(
            int(pos),
            col,
            text.iloc[pos],
            f"disagrees with the row's Site_of_Onset___ flags ({from_flags.iloc[pos]})",
            "onset_site",
        )
    return site.fillna(from_flags).astype("str")


def history_table(f: ProactFile) -> pd.DataFrame:
    """Onset and diagnosis (days from trial entry) and onset site per subject."""
    c_on, c_dx = f.column("Onset_Delta"), f.column("Diagnosis_Delta")
    onset = f.whole(c_on, "days from trial entry")
    diag = f.whole(c_dx, "days from trial entry")
    site = _onset_site(f)
    return _per_subject(
        f,
        {
            "onset_day": (c_on, onset),
            "diagnosis_day": (c_dx, diag),
            "onset_site": (f.column("Site_of_Onset"), site.to_numpy(dtype=object)),
        },
    )


def demographics_table(f: ProactFile) -> pd.DataFrame:
    """Sex, age at trial entry and date of birth (days, negative) per subject."""
    c_sex, c_age, c_dob = f.column("Sex"), f.column("Age"), f.column("Date_of_Birth")
    sex_text = f.text(c_sex)
    sex = sex_text.str.lower().map(
        {"male": "male", "female": "female", "m": "male", "f": "female"}
    )
    for pos in np.flatnonzero((sex_text.notna() & sex.isna()).to_numpy()):
        f.problem(int(pos), c_sex, sex_text.iloc[pos], "is not Male or Female", "sex")
    age = f.numbers(c_age)
    bad = (age < 0) | (age > 120)
    for pos in np.flatnonzero(bad):
        f.problem(int(pos), c_age, f"{age[pos]:g}", "is outside 0-120 years", "age")
    age[bad] = np.nan
    dob = f.whole(c_dob, "days from trial entry")
    late = dob > 0
    for pos in np.flatnonzero(late):
        f.problem(
            int(pos),
            c_dob,
            f"{dob[pos]:g}",
            "is after trial entry (birth is a negative number of days)",
            "dob",
        )
    dob[late] = np.nan
    return _per_subject(
        f,
        {
            "sex": (c_sex, sex.to_numpy(dtype=object)),
            "age": (c_age, age),
            "dob_day": (c_dob, dob),
        },
    )


def death_table(f: ProactFile, notes: list[Note]) -> pd.DataFrame:
    """Death per subject: ``died`` (1/0) and ``death_day``; no time is invented."""
    c_died, c_days = f.column("Subject_Died"), f.column("Death_Days")
    died = f.yes_no(c_died)
    days = f.whole(c_days, "days from trial entry")
    contra = (died == 0) & ~np.isnan(days)
    for pos in np.flatnonzero(contra):
        f.problem(
            int(pos),
            c_days,
            f"{days[pos]:g}",
            "is given but Subject_Died is No",
            "death",
        )
    implied = np.isnan(died) & ~np.isnan(days)
    if implied.any():
        notes.append(
            Note(
                f.name,
                "death_implied",
                int(implied.sum()),
                f"{int(implied.sum())} rows with Death_Days and Subject_Died empty: read "
                "as deaths",
            )
        )
        died[implied] = 1.0
    return _per_subject(f, {"died": (c_died, died), "death_day": (c_days, days)})


def treatment_table(f: ProactFile, arm: Mapping[str, str] | None) -> pd.DataFrame:
    """Randomised arm per subject: ``Study_Arm`` lower-cased, spaces as ``_``
    (``Active`` -> ``active``), or mapped by ``arm``."""
    (col,) = f.require("Study_Arm")
    text = f.text(col)
    if arm is not None:
        lookup = {str(k).strip().lower(): v for k, v in arm.items()}
        label = text.str.lower().map(lookup)
        for pos in np.flatnonzero((text.notna() & label.isna()).to_numpy()):
            f.problem(
                int(pos),
                col,
                text.iloc[pos],
                f"is not one of the arms mapped by `arm` ({', '.join(map(repr, arm))})",
                "arm",
            )
    else:
        label = text.str.lower().str.replace(r"\s+", "_", regex=True)
    return _per_subject(f, {"arm": (col, label.to_numpy(dtype=object))})


def riluzole_table(f: ProactFile) -> pd.DataFrame:
    """Riluzole use per subject (``Subject_used_Riluzole`` Yes/No)."""
    (col,) = f.require("Subject_used_Riluzole")
    return _per_subject(f, {"riluzole": (col, f.yes_no(col))})
