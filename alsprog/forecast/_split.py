"""Splitting patients and their follow-up for backtests and calibration.

Owns: :func:`patient_rows` (the rows with an outcome, controls left out),
:func:`history_and_later` (each patient's first months and the visits after) and
:func:`split_patients` (a seeded split of patients into training and test).
Leaves: fitting and scoring to :mod:`alsprog.forecast._evaluate`; the calibration
to :mod:`alsprog.forecast._calibrated`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["history_and_later", "patient_rows", "split_patients"]


def patient_rows(
    table: pd.DataFrame, outcome: str, *, subject: str = "subject_id"
) -> pd.DataFrame:
    """Rows with an outcome, healthy controls (``group == "control"``) left out."""
    t = table[table[outcome].notna()]
    if "group" in t.columns:
        t = t[t["group"].astype(str) != "control"]
    return t.assign(**{subject: t[subject].astype(str)})


def history_and_later(
    t: pd.DataFrame,
    history_months: float,
    tol_months: float,
    *,
    subject: str = "subject_id",
    time: str = "months",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each patient's visits up to ``history_months + tol_months`` (the history) and
    all visits of the patients with a history, with their last history time in
    ``_last`` (``history_months`` and ``tol_months`` in the units of ``time``)."""
    hist = t[t[time] <= history_months + tol_months]
    last = hist.groupby(subject)[time].max()
    later = t.join(last.rename("_last"), on=subject, how="inner")
    return hist, later


def split_patients(
    table: pd.DataFrame,
    outcome: str,
    test_fraction: float,
    rng: np.random.Generator,
    subject: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and test rows: ``test_fraction`` of the patients, drawn by ``rng``."""
    t = patient_rows(table, outcome, subject=subject)
    ids = np.asarray(pd.unique(t[subject]), dtype=object)
    n_test = int(round(test_fraction * len(ids)))
    if n_test < 1 or n_test >= len(ids):
        raise ValueError(
            f"`test_fraction` {test_fraction:g} of {len(ids)} patients leaves an empty "
            "training or test set."
        )
    test = set(rng.permutation(ids)[:n_test])
    is_test = t[subject].isin(test)
    return t[~is_test], t[is_test]
