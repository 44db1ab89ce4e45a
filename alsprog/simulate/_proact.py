"""A simulated cohort written as a PRO-ACT export, quirks injected on request.

Owns: :func:`write_proact` and :class:`ProactExport`: the patients of a
:class:`~alsprog.simulate.Cohort` as ``PROACT_ALSFRS.csv``, ``PROACT_FVC.csv``,
``PROACT_ALSHISTORY.csv``, ``PROACT_DEATHDATA.csv``, ``PROACT_DEMOGRAPHICS.csv``,
``PROACT_TREATMENT.csv`` and ``PROACT_RILUZOLE.csv``, with days from each
patient's first visit, so that the reader, the tests, the demo and users without
access to PRO-ACT can exercise :func:`alsprog.data.read_proact`.
Leaves: the cohort to :mod:`alsprog.simulate._cohort`; reading to
:mod:`alsprog.data._proact`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alsprog._io import atomic_path
from alsprog._random import as_generator
from alsprog.data._dictionary import DAYS_PER_MONTH
from alsprog.errors import OutputError

__all__ = ["QUIRKS", "ProactExport", "write_proact"]

#: The quirks of real exports that :func:`write_proact` can inject.
QUIRKS = {
    "old_names": "older file names: alsfrs.csv, AlsHistory.csv, DeathData.csv, ...",
    "f_prefix": "an F_ prefix: F_PROACT_ALSFRS.csv, ...",
    "float_deltas": "days written as 8.0 instead of 8",
    "onset_flags": "onset site as one-hot Site_of_Onset___* flags, not text",
    "onset_spine": "'Onset: Spine' for every other spinal-onset patient",
    "history_rows": "two ALS-history rows per patient (onset times on one, site on "
    "the other)",
    "date_of_birth": "Date_of_Birth (days, negative) instead of Age",
    "original_alsfrs": "every patient's first visit scored on the original ALSFRS "
    "(Q10_Respiratory, ALSFRS_Total 0-40, no R_1-R_3)",
    "both_scales": "ALSFRS-R rows with the original Q10_Respiratory also filled",
    "half_points": "one item of every fifth ALSFRS-R row raised by half a point",
    "duplicates": "every third ALSFRS row written twice",
    "fvc_percent_units": "every fourth FVC row in 'Percent Predicted' units "
    "(percentages in the litre columns)",
}

_OLD_NAMES = {
    "alsfrs": "alsfrs.csv",
    "alshistory": "AlsHistory.csv",
    "deathdata": "DeathData.csv",
    "demographics": "demographics.csv",
    "fvc": "Fvc.csv",
    "treatment": "Treatment.csv",
    "riluzole": "Riluzole.csv",
}
_ITEM_NAMES = [
    "Q1_Speech",
    "Q2_Salivation",
    "Q3_Swallowing",
    "Q4_Handwriting",
    None,  # item 5: Q5a or Q5b
    "Q6_Dressing_and_Hygiene",
    "Q7_Turning_in_Bed",
    "Q8_Walking",
    "Q9_Climbing_Stairs",
    "R_1_Dyspnea",
    "R_2_Orthopnea",
    "R_3_Respiratory_Insufficiency",
]
_SITE_TEXT = {
    "bulbar": "Onset: Bulbar",
    "spinal": "Onset: Limb",
    "other": "Onset: Other",
}


@dataclass(frozen=True)
class ProactExport:
    """What :func:`write_proact` wrote.

    Attributes
    ----------
    folder : pathlib.Path
        The export's folder.
    files : dict of str to pathlib.Path
        Each table's file.
    subject_ids : pandas.Series
        PRO-ACT's integer ``subject_id`` of each simulated patient (index: the
        cohort's ``subject_id``).
    arm : pandas.Series
        The randomised arm written for each patient ('Active' or 'Placebo').
    fvc : pandas.DataFrame
        The FVC written: ``subject_id`` (the cohort's), ``delta``,
        ``fvc_liters`` and ``fvc_percent_predicted`` (best attempt).
    quirks : tuple of str
        The quirks injected.
    """

    folder: Path
    files: dict[str, Path]
    subject_ids: pd.Series
    arm: pd.Series
    fvc: pd.DataFrame
    quirks: tuple[str, ...]


def _check_quirks(quirks: Iterable[str]) -> tuple[str, ...]:
    if isinstance(quirks, str):
        quirks = [quirks]
    out = tuple(quirks)
    for q in out:
        if q not in QUIRKS:
            raise ValueError(f"unknown PRO-ACT quirk {q!r}; known: {', '.join(QUIRKS)}")
    return out


def _days(values: np.ndarray, as_float: bool) -> list[str]:
    return [
        "" if v != v else (f"{int(v)}.0" if as_float else str(int(v))) for v in values
    ]


def _num(values: Any) -> list[str]:
    return ["" if v != v else repr(float(v)) for v in np.asarray(values, dtype=float)]


def _int_text(values: Any) -> list[str]:
    out = []
    for v in np.asarray(values, dtype=float):
        if v != v:
            out.append("")
        elif v == int(v):
            out.append(str(int(v)))
        else:
            out.append(repr(float(v)))
    return out


def write_proact(
    cohort: Any,
    folder: str | os.PathLike[str],
    *,
    quirks: Iterable[str] = (),
    seed: Any = 0,
) -> ProactExport:
    """Write the patients of a simulated cohort as a PRO-ACT export.

    Each patient gets an integer ``subject_id`` (1, 2, ... in the cohort's order),
    days from its first visit (``ALSFRS_Delta`` 0 at the first visit; onset and
    diagnosis negative), its ALSFRS-R items and total, an FVC row per visit (an
    illustrative model: % of predicted starts at N(88, 14) and falls 2.5 points per
    ALSFRS-R point lost, three attempts a visit), onset site, sex, age, death or
    censoring, a randomised arm (``Active``/``Placebo``, half each) and riluzole use.
    Controls are left out: PRO-ACT holds trial patients only.  Files are written
    atomically; an existing file of the same name is never replaced.

    Parameters
    ----------
    cohort : alsprog.simulate.Cohort
        From :func:`~alsprog.simulate.simulate_cohort`.
    folder : str or os.PathLike
        Made if absent; it must not already hold the export's files.
    quirks : iterable of str
        Quirks of real exports to inject (see :data:`QUIRKS`): ``"old_names"``,
        ``"f_prefix"``, ``"float_deltas"``, ``"onset_flags"``, ``"onset_spine"``,
        ``"history_rows"``, ``"date_of_birth"``, ``"original_alsfrs"``,
        ``"both_scales"``, ``"half_points"``, ``"duplicates"``,
        ``"fvc_percent_units"``.
    seed : int, numpy.random.Generator or None, default 0
        For the arms, riluzole use and FVC.

    Returns
    -------
    ProactExport

    Examples
    --------
    >>> import tempfile
    >>> from alsprog.simulate import simulate_cohort
    >>> export = write_proact(simulate_cohort(4, 1, seed=3), tempfile.mkdtemp())
    >>> sorted(p.name for p in export.files.values())[:2]
    ['PROACT_ALSFRS.csv', 'PROACT_ALSHISTORY.csv']
    >>> export.subject_ids.to_dict()
    {'P0001': 1, 'P0002': 2, 'P0003': 3, 'P0004': 4}
    """
    q = _check_quirks(quirks)
    rng = as_generator(seed)
    out = Path(folder)
    subjects = cohort.subjects[cohort.subjects["group"] == "als"].reset_index(drop=True)
    ids = pd.Series(np.arange(1, len(subjects) + 1), index=subjects["subject_id"])
    visits = cohort.visits[cohort.visits["subject_id"].isin(ids.index)]
    items = [f"alsfrs_r_q{k}" for k in range(1, 13)]
    visits = visits[visits[items].notna().any(axis=1)].copy()
    first = visits.groupby("subject_id")["visit_date"].min()
    visits["delta"] = (
        visits["visit_date"] - visits["subject_id"].map(first)
    ).dt.days.astype(int)
    visits = visits.sort_values(["subject_id", "delta"], kind="stable")
    visits["sid"] = visits["subject_id"].map(ids).to_numpy()
    float_days = "float_deltas" in q

    tables: dict[str, pd.DataFrame] = {}
    tables["alsfrs"] = _alsfrs(visits, q, float_days)
    fvc_table, fvc_truth = _fvc(visits, subjects, ids, q, float_days, rng)
    tables["fvc"] = fvc_table
    base = subjects.set_index("subject_id")
    first_date = first.reindex(base.index)
    onset = -(first_date - base["onset_date"]).dt.days.to_numpy(dtype=float)
    diag = onset + np.round(base["diagnostic_delay_months"].to_numpy() * DAYS_PER_MONTH)
    tables["alshistory"] = _history(ids, base, onset, diag, q, float_days)
    died = base["event_observed"].fillna(False).to_numpy(dtype=bool)
    death_days = np.round(
        base["death_or_tracheostomy_months"].to_numpy() * DAYS_PER_MONTH
    )
    tables["deathdata"] = pd.DataFrame(
        {
            "subject_id": ids.to_numpy(),
            "Subject_Died": np.where(died, "Yes", "No"),
            "Death_Days": _days(np.where(died, death_days, np.nan), float_days),
        }
    )
    demo = {
        "subject_id": ids.to_numpy(),
        "Demographics_Delta": _days(np.zeros(len(ids)), float_days),
        "Sex": base["sex"].str.capitalize().to_numpy(),
    }
    if "date_of_birth" in q:
        dob = -np.round(base["age_at_baseline"].to_numpy() * 365.25)
        demo["Date_of_Birth"] = _days(dob, float_days)
    else:
        demo["Age"] = _num(base["age_at_baseline"])
    tables["demographics"] = pd.DataFrame(demo)
    arm = np.array(["Active", "Placebo"])[rng.permutation(len(ids)) % 2]
    tables["treatment"] = pd.DataFrame(
        {
            "subject_id": ids.to_numpy(),
            "Study_Arm": arm,
            "Treatment_Group_Delta": _days(np.zeros(len(ids)), float_days),
        }
    )
    tables["riluzole"] = pd.DataFrame(
        {
            "subject_id": ids.to_numpy(),
            "Subject_used_Riluzole": np.where(rng.random(len(ids)) < 0.75, "Yes", "No"),
            "Riluzole_use_Delta": _days(np.zeros(len(ids)), float_days),
        }
    )
    names = {k: f"PROACT_{k.upper()}.csv" for k in tables}
    if "old_names" in q:
        names = dict(_OLD_NAMES)
    if "f_prefix" in q:
        names = {k: "F_" + v for k, v in names.items()}
    paths = {k: out / names[k] for k in tables}
    clash = [p.name for p in paths.values() if p.exists() or p.is_symlink()]
    if clash:
        raise OutputError(
            f"{out} already holds {', '.join(clash)}; write the export to an empty "
            "folder (alsprog never replaces files it did not write)"
        )
    out.mkdir(parents=True, exist_ok=True)
    for key, table in tables.items():
        with atomic_path(paths[key]) as tmp:
            table.to_csv(tmp, index=False)
    return ProactExport(
        folder=out,
        files=paths,
        subject_ids=ids,
        arm=pd.Series(arm, index=ids.index),
        fvc=fvc_truth,
        quirks=q,
    )


def _alsfrs(visits: pd.DataFrame, q: tuple[str, ...], float_days: bool) -> pd.DataFrame:
    grid = np.array(visits[[f"alsfrs_r_q{k}" for k in range(1, 13)]], dtype=float)
    n = len(grid)
    gastro = visits["alsfrs_r_q5_gastrostomy"].fillna(False).to_numpy(dtype=bool)
    if "half_points" in q:
        rows = np.arange(n)[::5]
        col = np.where(grid[rows, 0] < 4, 0, 1)  # an item below 4, or lower item 2
        grid[rows, col] = np.where(grid[rows, col] < 4, grid[rows, col] + 0.5, 3.5)
    original = np.zeros(n, dtype=bool)
    if "original_alsfrs" in q:
        original = (visits["delta"] == 0).to_numpy()
    cols: dict[str, list[str]] = {"subject_id": [str(v) for v in visits["sid"]]}
    for k, name in enumerate(_ITEM_NAMES):
        if name is None:
            cols["Q5a_Cutting_without_Gastrostomy"] = _int_text(
                np.where(gastro, np.nan, grid[:, 4])
            )
            cols["Q5b_Cutting_with_Gastrostomy"] = _int_text(
                np.where(gastro, grid[:, 4], np.nan)
            )
            continue
        vals = grid[:, k]
        if k >= 9:
            vals = np.where(original, np.nan, vals)
        cols[name] = _int_text(vals)
    # the original item 10 (respiratory): dyspnea is its closest ALSFRS-R item
    q10 = np.where(original, grid[:, 9], np.nan)
    if "both_scales" in q:
        q10 = grid[:, 9].copy()
    cols["Q10_Respiratory"] = _int_text(q10)
    total_r = np.where(original, np.nan, grid.sum(axis=1))
    total_o = np.where(original, grid[:, :10].sum(axis=1), np.nan)
    cols["ALSFRS_Total"] = _int_text(total_o)
    cols["ALSFRS_R_Total"] = _int_text(total_r)
    cols["ALSFRS_Delta"] = _days(visits["delta"].to_numpy(dtype=float), float_days)
    table = pd.DataFrame(cols)
    if "duplicates" in q:
        table = pd.concat([table, table.iloc[::3]]).sort_index(kind="stable")
    return table.reset_index(drop=True)


def _fvc(
    visits: pd.DataFrame,
    subjects: pd.DataFrame,
    ids: pd.Series,
    q: tuple[str, ...],
    float_days: bool,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_sub = len(ids)
    base_pct = np.clip(rng.normal(88.0, 14.0, n_sub), 40.0, 130.0)
    male = (
        subjects.set_index("subject_id")["sex"].reindex(ids.index) == "male"
    ).to_numpy()
    normal = np.where(male, 4.6, 3.4) + rng.normal(0.0, 0.4, n_sub)
    pos = ids.reindex(visits["subject_id"]).to_numpy() - 1
    total = visits["alsfrs_r_total"].to_numpy(dtype=float)
    first_total = visits.groupby("subject_id")["alsfrs_r_total"].transform("first")
    loss = np.nan_to_num(first_total.to_numpy(dtype=float) - total)
    pct = np.clip(
        base_pct[pos] - 2.5 * loss + rng.normal(0.0, 4.0, len(pos)), 5.0, 140.0
    )
    liters = np.round(pct / 100.0 * normal[pos], 2)
    attempts = np.column_stack(
        [
            liters,
            *(
                np.round(liters - np.abs(rng.normal(0, 0.08, len(pos))), 2)
                for _ in "ab"
            ),
        ]
    )
    attempts = np.maximum(attempts, 0.05)
    order = rng.permuted(np.tile(np.arange(3), (len(pos), 1)), axis=1)
    attempts = np.take_along_axis(attempts, order, axis=1)
    pct_att = np.round(100.0 * attempts / normal[pos, None], 1)
    units = np.full(len(pos), "Liters", dtype=object)
    lit_cols = attempts.copy()
    pct_cols = pct_att.copy()
    if "fvc_percent_units" in q:
        rows = np.arange(len(pos))[::4]
        units[rows] = "Percent Predicted"
        lit_cols[rows] = pct_att[rows]
        pct_cols[rows] = np.nan
    table = pd.DataFrame(
        {
            "subject_id": visits["sid"].to_numpy(),
            "Subject_Liters_Trial_1": _num(lit_cols[:, 0]),
            "pct_of_Normal_Trial_1": _num(pct_cols[:, 0]),
            "Subject_Liters_Trial_2": _num(lit_cols[:, 1]),
            "pct_of_Normal_Trial_2": _num(pct_cols[:, 1]),
            "Subject_Liters_Trial_3": _num(lit_cols[:, 2]),
            "pct_of_Normal_Trial_3": _num(pct_cols[:, 2]),
            "subject_normal": _num(np.round(normal[pos], 2)),
            "Forced_Vital_Capacity_Units": units,
            "Forced_Vital_Capacity_Delta": _days(
                visits["delta"].to_numpy(dtype=float), float_days
            ),
        }
    )
    best_l = attempts.max(axis=1)
    best_p = pct_att.max(axis=1)
    if "fvc_percent_units" in q:
        best_l[np.arange(len(pos))[::4]] = np.nan
    truth = pd.DataFrame(
        {
            "subject_id": visits["subject_id"].to_numpy(),
            "delta": visits["delta"].to_numpy(),
            "fvc_liters": best_l,
            "fvc_percent_predicted": best_p,
        }
    )
    return table, truth


def _history(
    ids: pd.Series,
    base: pd.DataFrame,
    onset: np.ndarray,
    diag: np.ndarray,
    q: tuple[str, ...],
    float_days: bool,
) -> pd.DataFrame:
    site = base["onset_site"].reindex(ids.index).to_numpy(dtype=object)
    text = np.array([_SITE_TEXT[s] for s in site], dtype=object)
    if "onset_spine" in q:
        spinal = np.flatnonzero(site == "spinal")[::2]
        text[spinal] = "Onset: Spine"
    n = len(ids)
    table: dict[str, Any] = {
        "subject_id": ids.to_numpy(),
        "Subject_ALS_History_Delta": _days(np.zeros(n), float_days),
        "Onset_Delta": _days(onset, float_days),
        "Diagnosis_Delta": _days(diag, float_days),
    }
    if "onset_flags" in q:
        for flag, value in (
            ("Bulbar", "bulbar"),
            ("Limb", "spinal"),
            ("Other", "other"),
            ("Other_Specify", None),
            ("Spine", None),
            ("Limb_and_Bulbar", None),
        ):
            table[f"Site_of_Onset___{flag}"] = np.where(site == value, "1", "")
        table["Site_of_Onset"] = [""] * n
    else:
        table["Site_of_Onset"] = text
    df = pd.DataFrame(table)
    if "history_rows" in q:
        times = df.copy()
        for c in df.columns:
            if c.startswith("Site_of_Onset"):
                times[c] = ""
        sites = df.copy()
        sites["Onset_Delta"] = ""
        sites["Diagnosis_Delta"] = ""
        df = pd.concat([times, sites]).sort_index(kind="stable").reset_index(drop=True)
    return df
