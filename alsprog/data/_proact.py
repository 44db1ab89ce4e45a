"""A PRO-ACT export read into alsprog's visits and subjects tables.

Owns: :func:`read_proact`, :class:`ProactCohort` and :class:`ProactReport`: the
time anchors (each subject's first visit is its baseline; onset, diagnosis, death
and censoring are counted from it), the cross-file checks (a subject with visits
but no demographics row), and the report of what was kept, mapped, collapsed and
dropped, per file and rule.
Leaves: file names, cells and per-table rules to :mod:`alsprog.data._proact_files`
and :mod:`alsprog.data._proact_tables`; validation of the result to
:func:`~alsprog.data.assemble`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alsprog.data._dictionary import DAYS_PER_MONTH
from alsprog.data._proact_files import (
    TABLES,
    Note,
    ProactFile,
    find_files,
    read_file,
    subject_labels,
)
from alsprog.data._proact_tables import (
    VISIT_COLUMNS,
    Conflicts,
    alsfrs_rows,
    death_table,
    demographics_table,
    fvc_rows,
    history_table,
    riluzole_table,
    treatment_table,
)
from alsprog.errors import DataValidationError, Problem

__all__ = ["ProactCohort", "ProactReport", "read_proact"]

DAYS_PER_YEAR = 365.25
OPTIONAL = ("alshistory", "deathdata", "fvc", "treatment", "riluzole")
FILE_NAMES = {
    "alsfrs": "PROACT_ALSFRS.csv",
    "demographics": "PROACT_DEMOGRAPHICS.csv",
    "alshistory": "PROACT_ALSHISTORY.csv",
    "deathdata": "PROACT_DEATHDATA.csv",
    "fvc": "PROACT_FVC.csv",
    "treatment": "PROACT_TREATMENT.csv",
    "riluzole": "PROACT_RILUZOLE.csv",
}
FVC_COLUMNS = ["fvc_liters", "fvc_percent_predicted"]


@dataclass(frozen=True)
class ProactReport:
    """What :func:`read_proact` read, kept, mapped, collapsed and dropped.

    Attributes
    ----------
    folder : str
        The export's folder.
    files : dict of str to str or None
        Each table alsprog reads and the file it was read from (``None``: absent
        or not asked for).
    unread : list of str
        Other files of the folder (vital signs, labs, ...), not read.
    notes : list of Note
        One entry per file and rule that changed rows, with its count.
    n_subjects, n_visits, n_alsfrs_r, n_alsfrs_original, n_fvc : int
        Subjects and visits of the result; visits with an ALSFRS-R score, with an
        original-ALSFRS score, and with an FVC value.
    """

    folder: str
    files: dict[str, str | None]
    unread: list[str]
    notes: list[Note]
    n_subjects: int
    n_visits: int
    n_alsfrs_r: int
    n_alsfrs_original: int
    n_fvc: int

    def to_frame(self) -> pd.DataFrame:
        """The notes as a table: ``file, rule, rows, message``."""
        return pd.DataFrame(
            [(Path(n.source).name, n.rule, n.count, n.message) for n in self.notes],
            columns=["file", "rule", "rows", "message"],
        )

    def count(self, rule: str) -> int:
        """Rows affected by ``rule`` over all files (0 when it never applied)."""
        return sum(n.count for n in self.notes if n.rule == rule)

    def __str__(self) -> str:
        out = [
            f"PRO-ACT export {self.folder}",
            f"  {self.n_subjects} subjects, {self.n_visits} visits "
            f"({self.n_alsfrs_r} with ALSFRS-R, {self.n_alsfrs_original} with the "
            f"original ALSFRS only, {self.n_fvc} with FVC)",
            "Files read:",
        ]
        for table, name in self.files.items():
            shown = Path(name).name if name else "(absent)"
            out.append(f"  {table:<13}{shown}")
        if self.unread:
            out.append("Not read: " + ", ".join(self.unread))
        out.append("Rules applied:" if self.notes else "Rules applied: none")
        out.extend(f"  {n}" for n in self.notes)
        return "\n".join(out)


@dataclass
class ProactCohort:
    """A PRO-ACT export as alsprog tables (see :func:`read_proact`).

    Attributes
    ----------
    visits : pandas.DataFrame
        One row per subject × visit (ALSFRS and FVC rows at the same
        ``visit_day`` joined): ``subject_id``, ``visit_day`` (days from trial
        entry), the ALSFRS-R items, ``alsfrs_r_q5_gastrostomy``,
        ``alsfrs_r_total``, ``alsfrs_version``, ``alsfrs_original_total``,
        ``fvc_liters``, ``fvc_percent_predicted``.
    subjects : pandas.DataFrame
        One row per subject with visits: ``subject_id``, ``group`` ('als'),
        ``sex``, ``age_at_baseline``, ``age_at_onset``, ``onset_site``,
        ``onset_months_before_baseline``, ``diagnostic_delay_months``,
        ``death_or_tracheostomy_months``, ``event_observed``, ``arm``,
        ``riluzole`` (columns of tables that were absent stay empty).
    fvc : pandas.DataFrame
        The FVC visits alone: ``subject_id``, ``visit_day``, ``fvc_liters``,
        ``fvc_percent_predicted``.
    report : ProactReport
        What was read and what each rule did.
    """

    visits: pd.DataFrame
    subjects: pd.DataFrame
    fvc: pd.DataFrame
    report: ProactReport = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"ProactCohort({len(self.subjects)} subjects, {len(self.visits)} visits, "
            f"from {self.report.folder})"
        )


def _check_tables(tables: Iterable[str] | None) -> tuple[str, ...]:
    if tables is None:
        return OPTIONAL
    if isinstance(tables, str):
        tables = [tables]
    out = []
    for t in tables:
        key = str(t).lower()
        if key not in TABLES:
            raise ValueError(f"`tables` names {t!r}; alsprog reads {', '.join(TABLES)}")
        out.append(key)
    return tuple(k for k in OPTIONAL if k in out)


def _first_line(f: ProactFile, sid: float) -> int:
    return int(np.flatnonzero(f.subject == sid)[0])


def read_proact(
    folder: str | os.PathLike[str],
    *,
    tables: Iterable[str] | None = None,
    arm: Mapping[str, str] | None = None,
    conflicts: Conflicts = "raise",
) -> ProactCohort:
    """Read an unpacked PRO-ACT download into alsprog's visits and subjects tables.

    The export's files are found by name, in any case, with or without the
    ``PROACT_`` or ``F_`` prefix (``PROACT_ALSFRS.csv``, ``alsfrs.csv``,
    ``F_PROACT_FVC.csv``, ``AlsHistory.csv``); nothing in the folder is modified.
    Every problem of every file is reported at once, each with its file, line,
    subject, column and value.

    Time: every ``*_Delta`` is days from trial entry.  A subject's first visit (its
    earliest ALSFRS or FVC row) is its baseline; ``visit_day`` keeps the export's
    days, so :func:`~alsprog.data.assemble` gives ``months = (day - first day) /
    30.4375``, which is ``delta / 30.4375`` when the first visit is at trial entry.
    Onset, diagnosis, death and censoring are counted from the baseline.

    ALSFRS: a row with ``R_1_Dyspnea`` ... ``R_3_Respiratory_Insufficiency`` or
    ``ALSFRS_R_Total`` is ALSFRS-R (``alsfrs_version`` 'alsfrs-r'), even when the
    original ``Q10_Respiratory`` is filled too; a row with only ``Q10_Respiratory``
    or ``ALSFRS_Total`` is the original ALSFRS ('alsfrs'): it keeps items 1-9 (the
    same questions on both scales) and its 0-40 total in ``alsfrs_original_total``,
    and never gets an ALSFRS-R total.  Item 5 is ``Q5a`` (no gastrostomy) or
    ``Q5b`` (``alsfrs_r_q5_gastrostomy`` true).  A row with a half-point item keeps
    its items and totals empty: they are never rounded.  A declared total must be
    the sum of its items.  Exact duplicate rows collapse; differing rows of one
    subject at one ``ALSFRS_Delta`` are an error (``conflicts='raise'``) or are
    all dropped (``conflicts='drop'``).

    FVC: the best (largest) of the attempts ``Subject_Liters_Trial_1..3`` and
    ``pct_of_Normal_Trial_1..3`` per row and per visit; rows whose units say
    ``Percent Predicted`` hold percentages in the litre columns.

    Subjects: ``Site_of_Onset`` text (``Onset: Bulbar`` -> 'bulbar', ``Onset:
    Limb``/``Onset: Spine`` -> 'spinal', ``Onset: Other``/``Onset: Limb and Bulbar``
    -> 'other') or the one-hot ``Site_of_Onset___*`` flags; ``Sex``; age at
    baseline from ``Date_of_Birth`` (days, negative) or ``Age`` at trial entry;
    death from ``Subject_Died`` and ``Death_Days`` (a death without a day keeps an
    empty time: none is invented; 'No' is censored at the subject's last visit);
    ``Study_Arm`` lower-cased to ``arm``; ``Subject_used_Riluzole`` to
    ``riluzole``.  Subjects of the demographics file without visits are left out
    (counted in the report).

    Parameters
    ----------
    folder : str or os.PathLike
        The unpacked export.
    tables : iterable of str, optional
        Which of the optional tables to read: ``"alshistory"``, ``"deathdata"``,
        ``"fvc"``, ``"treatment"``, ``"riluzole"`` (default: each one present).
        ALSFRS and demographics are always read.
    arm : mapping of str to str, optional
        ``Study_Arm`` values (matched ignoring case) to arm labels, e.g.
        ``{"Active": "drug", "Placebo": "placebo"}``; default: lower-cased.
    conflicts : {"raise", "drop"}, default "raise"
        What to do with differing ALSFRS rows of one subject on one day.

    Returns
    -------
    ProactCohort
        ``visits``, ``subjects``, ``fvc`` and ``report``; pass ``visits`` and
        ``subjects`` to :func:`~alsprog.data.assemble`.

    Raises
    ------
    DataValidationError
        Listing every problem of every file: no ALSFRS or demographics file, an
        item of 7, an unknown onset site, a non-numeric delta, a subject with
        visits but no demographics row, conflicting rows, ...

    Examples
    --------
    >>> import tempfile
    >>> from alsprog.data import assemble
    >>> from alsprog.simulate import simulate_cohort, write_proact
    >>> folder = tempfile.mkdtemp()
    >>> _ = write_proact(simulate_cohort(n_patients=5, n_controls=0, seed=1), folder)
    >>> cohort = read_proact(folder)
    >>> cohort
    ProactCohort(5 subjects, ... visits, from ...)
    >>> long = assemble(cohort.visits, cohort.subjects, today="2026-01-01")
    >>> sorted(long["alsfrs_version"].unique())
    ['alsfrs-r']
    """
    if conflicts not in ("raise", "drop"):
        raise ValueError(f"`conflicts` must be 'raise' or 'drop'; got {conflicts!r}")
    wanted = _check_tables(tables)
    root = Path(folder)
    name = str(folder)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataValidationError(
            [Problem(f"the PRO-ACT export {what}", rule="file", source=name)],
            source=name,
        )
    paths, others, problems = find_files(root)
    for key in ("alsfrs", "demographics"):
        if key not in paths:
            problems.append(
                Problem(
                    f"no {key.upper()} file: looked for {FILE_NAMES[key]} (any case, "
                    f"optional F_ prefix) or {key}.csv",
                    rule="file",
                    source=name,
                )
            )
    if problems:
        raise DataValidationError(problems, source=name)
    notes: list[Note] = []
    files = {k: read_file(paths[k]) for k in ("alsfrs", "demographics")}
    files.update({k: read_file(paths[k]) for k in wanted if k in paths})
    rows = alsfrs_rows(files["alsfrs"], notes, conflicts)
    demo = demographics_table(files["demographics"])
    fvc = fvc_rows(files["fvc"], notes) if "fvc" in files else pd.DataFrame()
    hist = history_table(files["alshistory"]) if "alshistory" in files else None
    death = death_table(files["deathdata"], notes) if "deathdata" in files else None
    treat = treatment_table(files["treatment"], arm) if "treatment" in files else None
    ril = riluzole_table(files["riluzole"]) if "riluzole" in files else None
    problems = [p for f in files.values() for p in f.problems]
    if not problems:
        problems = _unknown_subjects(files, rows, fvc, demo)
    if problems:
        raise DataValidationError(problems, source=name)
    visits = _visits(rows, fvc)
    subjects, more = _subjects(visits, demo, hist, death, treat, ril, files, notes)
    if more:
        raise DataValidationError(more, source=name)
    kept = set(visits["subject"].unique())
    dropped = len(set(demo.index) - kept)
    if dropped:
        notes.append(
            Note(
                files["demographics"].name,
                "no_visits",
                dropped,
                f"{dropped} subjects without ALSFRS or FVC visits left out",
            )
        )
    visits = visits.drop(columns=["subject"])
    fvc_out = visits.loc[visits[FVC_COLUMNS].notna().any(axis=1).to_numpy()]
    fvc_out = fvc_out[["subject_id", "visit_day", *FVC_COLUMNS]].reset_index(drop=True)
    report = ProactReport(
        folder=name,
        files={k: (str(paths[k]) if k in files else None) for k in FILE_NAMES},
        unread=others,
        notes=notes,
        n_subjects=len(subjects),
        n_visits=len(visits),
        n_alsfrs_r=int((visits["alsfrs_version"] == "alsfrs-r").sum()),
        n_alsfrs_original=int((visits["alsfrs_version"] == "alsfrs").sum()),
        n_fvc=len(fvc_out),
    )
    return ProactCohort(visits, subjects, fvc_out, report)


def _unknown_subjects(
    files: dict[str, ProactFile],
    rows: pd.DataFrame,
    fvc: pd.DataFrame,
    demo: pd.DataFrame,
) -> list[Problem]:
    """Visits (ALSFRS or FVC) of a subject missing from the demographics file."""
    problems: list[Problem] = []
    known = set(demo.index)
    for key, table in (("alsfrs", rows), ("fvc", fvc)):
        if table.empty:
            continue
        f = files[key]
        for sid in sorted(set(table["subject"].unique()) - known):
            pos = _first_line(f, sid)
            problems.append(
                Problem(
                    f"subject {int(sid)} has visits but no row in "
                    f"{Path(files['demographics'].name).name}",
                    rule="unknown_subject",
                    source=f.name,
                    line=int(f.lines[pos]),
                    subject_id=str(int(sid)),
                    column=f.column("subject_id"),
                    value=int(sid),
                )
            )
    return problems


def _visits(rows: pd.DataFrame, fvc: pd.DataFrame) -> pd.DataFrame:
    """ALSFRS and FVC rows joined on subject and day, sorted."""
    keep = ["subject", "day", *VISIT_COLUMNS]
    v = rows[keep] if not rows.empty else pd.DataFrame(columns=keep)
    if not fvc.empty:
        v = v.merge(
            fvc[["subject", "day", *FVC_COLUMNS]], on=["subject", "day"], how="outer"
        )
    else:
        v = v.assign(fvc_liters=np.nan, fvc_percent_predicted=np.nan)
    v = v.sort_values(["subject", "day"], kind="stable").reset_index(drop=True)
    out = pd.DataFrame(
        {
            "subject_id": pd.array(
                subject_labels(v["subject"].to_numpy()), dtype="str"
            ),
            "visit_day": v["day"].to_numpy(dtype=np.int64),
        }
    )
    for c in VISIT_COLUMNS + FVC_COLUMNS:
        out[c] = v[c].to_numpy()
    out["alsfrs_r_q5_gastrostomy"] = out["alsfrs_r_q5_gastrostomy"].astype("boolean")
    out["alsfrs_version"] = out["alsfrs_version"].astype("str")
    for c in out.columns[2:]:
        if c not in ("alsfrs_r_q5_gastrostomy", "alsfrs_version"):
            out[c] = out[c].astype(float)
    out.insert(0, "subject", v["subject"].to_numpy())
    return out


def _subjects(
    visits: pd.DataFrame,
    demo: pd.DataFrame,
    hist: pd.DataFrame | None,
    death: pd.DataFrame | None,
    treat: pd.DataFrame | None,
    ril: pd.DataFrame | None,
    files: dict[str, ProactFile],
    notes: list[Note],
) -> tuple[pd.DataFrame, list[Problem]]:
    """The subjects table, with every time counted from the subject's first visit."""
    days = visits.groupby("subject", sort=True)["visit_day"]
    first = days.min().astype(float)
    last = days.max().astype(float)
    sids = first.index
    n = len(sids)

    def col(table: pd.DataFrame | None, name: str) -> np.ndarray:
        if table is None or name not in table.columns:
            return np.full(n, np.nan, dtype=object)
        return table[name].reindex(sids).to_numpy(dtype=object)

    def num(table: pd.DataFrame | None, name: str) -> np.ndarray:
        return pd.to_numeric(pd.Series(col(table, name)), errors="coerce").to_numpy(
            dtype=float
        )

    b = first.to_numpy()
    problems: list[Problem] = []
    onset = num(hist, "onset_day")
    diag = num(hist, "diagnosis_day")
    onset_months = (b - onset) / DAYS_PER_MONTH
    delay = (diag - onset) / DAYS_PER_MONTH
    if hist is not None:
        f = files["alshistory"]
        problems += _flagged(
            f,
            sids,
            onset_months < 0,
            "Onset_Delta",
            onset,
            lambda i: f"onset is after the subject's first visit (day {b[i]:g})",
        )
        problems += _flagged(
            f,
            sids,
            delay < 0,
            "Diagnosis_Delta",
            diag,
            lambda i: f"diagnosis is before symptom onset (Onset_Delta {onset[i]:g})",
        )
    age = num(demo, "age")
    dob = num(demo, "dob_day")
    age_base = np.where(
        ~np.isnan(dob), (b - dob) / DAYS_PER_YEAR, age + b / DAYS_PER_YEAR
    )
    died = num(death, "died")
    death_day = num(death, "death_day")
    t_event = np.where(died == 1, (death_day - b) / DAYS_PER_MONTH, np.nan)
    t_cens = np.where(died == 0, (last.to_numpy() - b) / DAYS_PER_MONTH, np.nan)
    time = np.where(died == 1, t_event, t_cens)
    event = pd.array(np.where(np.isnan(time), None, died == 1), dtype="boolean")
    if death is not None:
        f = files["deathdata"]
        problems += _flagged(
            f,
            sids,
            t_event < 0,
            "Death_Days",
            death_day,
            lambda i: f"death is before the subject's first visit (day {b[i]:g})",
        )
        unknown = int(((died == 1) & np.isnan(death_day)).sum())
        if unknown:
            notes.append(
                Note(
                    f.name,
                    "death_without_day",
                    unknown,
                    f"{unknown} deaths without Death_Days: time and event left empty "
                    "(none invented)",
                )
            )
        alive = int((died == 0).sum())
        if alive:
            notes.append(
                Note(
                    f.name,
                    "censored",
                    alive,
                    f"{alive} subjects alive (Subject_Died No): censored at their last"
                    " ALSFRS or FVC visit",
                )
            )
    ril_v = num(ril, "riluzole")
    sex = col(demo, "sex")
    site = col(hist, "onset_site")
    arm = col(treat, "arm")
    out = pd.DataFrame(
        {
            "subject_id": pd.array(subject_labels(np.asarray(sids)), dtype="str"),
            "group": pd.array(["als"] * n, dtype="str"),
            "sex": pd.array(_na(sex), dtype="str"),
            "age_at_baseline": age_base,
            "age_at_onset": age_base - onset_months / 12.0,
            "onset_site": pd.array(_na(site), dtype="str"),
            "onset_months_before_baseline": onset_months,
            "diagnostic_delay_months": delay,
            "death_or_tracheostomy_months": time,
            "event_observed": event,
            "arm": pd.array(_na(arm), dtype="str"),
            "riluzole": pd.array(
                np.where(np.isnan(ril_v), None, ril_v == 1), dtype="boolean"
            ),
        }
    )
    return out, problems


def _na(values: np.ndarray) -> list[object]:
    return [None if (v is None or v is pd.NA or v != v) else v for v in values]


def _flagged(
    f: ProactFile,
    sids: pd.Index,
    bad: np.ndarray,
    column: str,
    values: np.ndarray,
    message: Callable[[int], str],
) -> list[Problem]:
    """A timeline problem for every subject where ``bad``, at its first row."""
    return [
        _subject_problem(f, sids[i], column, values[i], message(int(i)))
        for i in np.flatnonzero(bad)
    ]


def _subject_problem(
    f: ProactFile, sid: float, column: str, value: float, message: str
) -> Problem:
    pos = _first_line(f, sid)
    return Problem(
        message,
        rule="timeline",
        source=f.name,
        line=int(f.lines[pos]),
        subject_id=str(int(sid)),
        column=f.column(column) or column,
        value=value if value != value else int(value),
    )
