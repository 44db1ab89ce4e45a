"""One imaging-features table from several extractions of the same sessions.

Owns: :func:`merge_features` (ROI statistics, connectivity, SUVR, FreeSurfer and
tract-profile features of each subject × session side by side in one row, the scan
dates checked to agree).
Leaves: joining the sessions to clinic visits to :func:`alsprog.data.assemble`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from alsprog.errors import DataValidationError, Problem

__all__ = ["merge_features"]

_KEYS = ("subject_id", "session")
_DATE = "acquisition_date"


def _as_frame(table: Any, name: str) -> pd.DataFrame:
    """A DataFrame, or the ``features`` of an extraction result."""
    frame = getattr(table, "features", table)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"{name}: expected a DataFrame or an extraction result with `.features`; "
            f"got {type(table).__name__}."
        )
    return frame


def merge_features(
    *tables: Any, names: Sequence[str] | None = None, how: str = "outer"
) -> pd.DataFrame:
    """Put imaging features of the same sessions from several sources in one table.

    Each table has one row per ``subject_id`` × ``session`` (as every alsprog
    extractor writes); the result has one row per session found in any table
    (``how="outer"``) or in all (``"inner"``), with every table's feature columns.
    ``acquisition_date`` is taken from whichever table has it; two tables that
    give different dates for one session are an error, not a silent choice.

    Parameters
    ----------
    *tables : pandas.DataFrame or extraction results
        Feature tables, or results with a ``features`` table
        (:class:`RoiFeatures`, :class:`ConnectivityFeatures`, the results of
        :func:`extract_suvr` and :func:`read_tract_profiles`...).  Never modified.
    names : sequence of str, optional
        A name per table for messages (default ``"table 1"``, ``"table 2"``...).
    how : {"outer", "inner"}, default "outer"
        Keep sessions found in any table, or only those in all of them.

    Returns
    -------
    pandas.DataFrame
        ``subject_id``, ``session``, ``acquisition_date`` (when any table has it),
        then the features in table order; sorted by subject and session.

    Raises
    ------
    DataValidationError
        Listing every problem at once: a table without ``subject_id`` or
        ``session``, a session twice in one table, a feature column in two tables,
        a session whose dates disagree between tables (naming subject, session,
        both tables and dates).
    TypeError, ValueError
        Fewer than one table, ``names`` of the wrong length, a bad ``how``.

    Examples
    --------
    >>> import pandas as pd
    >>> roi = pd.DataFrame({"subject_id": ["P1", "P2"], "session": ["m00", "m00"],
    ...                     "acquisition_date": ["2024-01-05", "2024-02-01"],
    ...                     "fa_cst_left": [0.52, 0.47]})
    >>> fc = pd.DataFrame({"subject_id": ["P1"], "session": ["m00"],
    ...                    "acquisition_date": ["2024-01-05"], "fcnet_motor": [0.41]})
    >>> merge_features(roi, fc, names=["dti", "fmri"])[["subject_id", "fcnet_motor"]]
      subject_id  fcnet_motor
    0         P1         0.41
    1         P2          NaN
    """
    if not tables:
        raise TypeError("merge_features() needs at least one table.")
    if how not in ("outer", "inner"):
        raise ValueError(f"`how` must be 'outer' or 'inner'; got {how!r}.")
    if names is None:
        names = [f"table {i + 1}" for i in range(len(tables))]
    names = [str(n) for n in names]
    if len(names) != len(tables):
        raise ValueError(f"`names` has {len(names)} entries for {len(tables)} tables.")
    frames = [_as_frame(t, n) for t, n in zip(tables, names, strict=True)]
    problems: list[Problem] = []
    owner: dict[str, str] = {}
    for frame, name in zip(frames, names, strict=True):
        missing = [k for k in _KEYS if k not in frame.columns]
        if missing:
            problems.append(
                Problem(
                    f"{name} has no column {' or '.join(missing)} (a features table "
                    "has one row per subject_id x session)",
                    rule="required",
                    source=name,
                    column=missing[0],
                )
            )
            continue
        keys = frame[list(_KEYS)].astype(str)
        dup = keys.duplicated(keep=False)
        for sid, ses in keys[dup].drop_duplicates().itertuples(index=False):
            problems.append(
                Problem(
                    f"{name} has session {ses!r} of subject {sid!r} more than once",
                    rule="duplicate",
                    source=name,
                    subject_id=sid,
                    column="session",
                    value=ses,
                )
            )
        for col in frame.columns:
            if col in _KEYS or col == _DATE:
                continue
            if col in owner:
                problems.append(
                    Problem(
                        f"column {col!r} is in both {owner[col]} and {name}; rename "
                        "or drop it in one of them",
                        rule="duplicate",
                        source=name,
                        column=col,
                    )
                )
            else:
                owner[col] = name
    if problems:
        raise DataValidationError(problems, source="merge_features")

    def keyed(frame: pd.DataFrame, i: int) -> pd.DataFrame:
        out = frame.copy()
        out["subject_id"] = out["subject_id"].astype(str)
        out["session"] = out["session"].astype(str)
        if _DATE in out.columns:
            out = out.rename(columns={_DATE: f"{_DATE}__{i}"})
            out[f"{_DATE}__{i}"] = pd.to_datetime(out[f"{_DATE}__{i}"])
        return out

    merged = keyed(frames[0], 0)
    for i, frame in enumerate(frames[1:], start=1):
        merged = merged.merge(keyed(frame, i), on=list(_KEYS), how=how)
    date_cols = [c for c in merged.columns if c.startswith(f"{_DATE}__")]
    features = [c for c in merged.columns if c not in _KEYS and c not in date_cols]
    out = merged[list(_KEYS)].copy()
    if date_cols:
        dates = merged[date_cols]
        first = dates.bfill(axis=1).iloc[:, 0]
        for col in date_cols:
            bad = dates[col].notna() & (dates[col] != first)
            src = names[int(col.rsplit("__", 1)[1])]
            for row in merged.index[bad]:
                ref = date_cols[int(dates.loc[row].notna().to_numpy().argmax())]
                problems.append(
                    Problem(
                        f"subject {merged.at[row, 'subject_id']!r} session "
                        f"{merged.at[row, 'session']!r}: {src} gives acquisition_date "
                        f"{dates.at[row, col].date()}, "
                        f"{names[int(ref.rsplit('__', 1)[1])]} gives "
                        f"{dates.at[row, ref].date()}; one session has one scan "
                        "date (give the sessions distinct labels if they differ)",
                        rule="consistency",
                        source=src,
                        subject_id=str(merged.at[row, "subject_id"]),
                        column=_DATE,
                        value=str(dates.at[row, col].date()),
                    )
                )
        if problems:
            raise DataValidationError(problems, source="merge_features")
        out[_DATE] = first
    out = pd.concat([out, merged[features]], axis=1)
    return out.sort_values(list(_KEYS), kind="stable").reset_index(drop=True)
