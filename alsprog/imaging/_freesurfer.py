"""FreeSurfer ``.stats`` files as alsprog imaging features.

Owns: :func:`read_freesurfer_stats` (``aseg.stats``-style volume tables and
``?h.aparc*.stats`` surface tables -> ``<metric>_<region>`` features) and
:func:`read_freesurfer_dir` (a whole ``SUBJECTS_DIR``, several subjects and sessions,
cross-sectional or longitudinal, -> the imaging table, one row per subject × session).
Leaves: voxel maps to :mod:`alsprog.imaging._extract`; running FreeSurfer to the user;
opening files safely to :mod:`alsprog.imaging._files`.

Naming (lower case, every other character run -> ``_``, hemisphere last):

* segmentation tables (``aseg.stats``, ``wmparc.stats``; column ``Volume_mm3``):
  ``volume_<structname>``, e.g. ``Left-Hippocampus`` -> ``volume_left_hippocampus``
  (the hemisphere is part of FreeSurfer's own name there); ``# Measure`` lines in mm^3
  -> ``volume_<first field>``, e.g. ``volume_brainseg``, ``volume_lhcortex`` (the
  intracranial volume by its key: ``volume_etiv``).
* surface tables (``lh.aparc.stats``, ...; ``ThickAvg``, ``SurfArea``, ``GrayVol``):
  ``thickness_<region>_<left|right>``, ``area_<region>_<left|right>`` (mm²),
  ``volume_<region>_<left|right>`` (mm³), e.g. ``thickness_precentral_left``; the
  ``MeanThickness`` measure -> ``thickness_cortex_<hemi>``.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from alsprog.data._dictionary import load_dictionary
from alsprog.errors import DataWarning, ImagingError
from alsprog.imaging._atlas import region_name
from alsprog.imaging._files import read_text, read_text_table

__all__ = ["read_freesurfer_dir", "read_freesurfer_stats"]

#: The stats files :func:`read_freesurfer_dir` reads from each subject folder.
DEFAULT_STATS_FILES = ("aseg.stats", "lh.aparc.stats", "rh.aparc.stats")

_SURFACE_COLUMNS = {"ThickAvg": "thickness", "SurfArea": "area", "GrayVol": "volume"}
_HEMI = {"lh": "left", "rh": "right"}


def _parse(path: Path) -> tuple[dict[str, str],
                                list[tuple[str, str, float, str, int]],
                                list[str], list[tuple[int, list[str]]]]:  # fmt: skip
    text = read_text(path, "FreeSurfer stats")
    info: dict[str, str] = {}
    measures: list[tuple[str, str, float, str, int]] = []
    headers: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            key, _, rest = body.partition(" ")
            if key == "ColHeaders":
                headers = rest.split()
            elif key == "Measure":
                parts = [p.strip() for p in rest.split(",")]
                if len(parts) != 5:
                    raise ImagingError(
                        f"{path}: line {line_no}: '# Measure' line has {len(parts)} "
                        "fields; expected 5 (name, key, description, value, unit)"
                    )
                try:
                    value = float(parts[3])
                except ValueError:
                    raise ImagingError(
                        f"{path}: line {line_no}: measure value {parts[3]!r} is not a "
                        "number"
                    ) from None
                measures.append((parts[0], parts[1], value, parts[4], line_no))
            elif key in ("hemi", "subjectname"):
                info[key] = rest.strip()
            continue
        rows.append((line_no, stripped.split()))
    if not headers:
        n_lines = len(text.splitlines())
        raise ImagingError(
            f"{path}: is not a FreeSurfer stats file or is truncated (no "
            f"'# ColHeaders' line in its {n_lines} lines)"
        )
    return info, measures, headers, rows


def _number(path: Path, line_no: int, column: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ImagingError(
            f"{path}: line {line_no}, column {column}: {text!r} is not a number"
        ) from None


def _read_one(path: Path) -> dict[str, float]:
    info, measures, headers, rows = _parse(path)
    out: dict[str, float] = {}

    dd = load_dictionary()

    def put(name: str, value: float, line_no: int) -> None:
        if name in out:
            raise ImagingError(
                f"{path}: line {line_no}: feature {name!r} appears twice"
            )
        f = dd.field_for(name)
        lo = None if f is None else f.minimum
        hi = None if f is None else f.maximum
        if (
            not math.isfinite(value)
            or (lo is not None and value < lo)
            or (hi is not None and value > hi)
        ):
            allowed = "a finite number" if f is None else f.range_text()
            raise ImagingError(
                f"{path}: line {line_no}: {name} = {value!r} is outside {allowed}; "
                "the file is garbled or not a FreeSurfer stats table"
            )
        out[name] = value

    for line_no, parts in rows:
        if len(parts) != len(headers):
            raise ImagingError(
                f"{path}: line {line_no}: {len(parts)} fields, the ColHeaders line "
                f"names {len(headers)}"
            )
    if "StructName" not in headers:
        raise ImagingError(f"{path}: ColHeaders has no StructName column")
    name_col = headers.index("StructName")
    if "Volume_mm3" in headers:  # segmentation table
        vcol = headers.index("Volume_mm3")
        for name, key, value, unit, m_line in measures:
            if unit.replace(" ", "") in ("mm^3", "mm3"):
                short = key if key.lower() == "etiv" else name
                put(f"volume_{region_name(short)}", value, m_line)
        for line_no, parts in rows:
            value = _number(path, line_no, "Volume_mm3", parts[vcol])
            put(f"volume_{region_name(parts[name_col])}", value, line_no)
        return out
    if not set(_SURFACE_COLUMNS) & set(headers):
        raise ImagingError(
            f"{path}: ColHeaders has neither Volume_mm3 (segmentation) nor "
            "ThickAvg/SurfArea/GrayVol (surface parcellation)"
        )
    hemi_code = info.get("hemi") or path.name.split(".", 1)[0]
    if hemi_code not in _HEMI:
        raise ImagingError(
            f"{path}: hemisphere unknown (no '# hemi lh|rh' line and the name does "
            "not start with lh. or rh.)"
        )
    hemi = _HEMI[hemi_code]
    for name, key, value, _unit, m_line in measures:
        if key == "MeanThickness":
            put(f"thickness_{region_name(name)}_{hemi}", value, m_line)
    cols = [
        (headers.index(c), c, m) for c, m in _SURFACE_COLUMNS.items() if c in headers
    ]
    for line_no, parts in rows:
        region = region_name(parts[name_col])
        for j, column, metric in cols:
            value = _number(path, line_no, column, parts[j])
            put(f"{metric}_{region}_{hemi}", value, line_no)
    return out


def read_freesurfer_stats(path: str | os.PathLike[str]) -> pd.Series:
    """Read FreeSurfer ``.stats`` tables as ``<metric>_<region>`` features.

    Parameters
    ----------
    path : str or path-like
        A ``.stats`` file (``aseg.stats``, ``lh.aparc.stats``, ``rh.aparc.stats``,
        ``wmparc.stats``, ``?h.aparc.a2009s.stats``, ...) or a FreeSurfer subject
        folder, from which ``stats/aseg.stats``, ``stats/lh.aparc.stats`` and
        ``stats/rh.aparc.stats`` are read (those present; at least one).

    Returns
    -------
    pandas.Series
        Feature name -> value (float), in file order, named after ``path``.
        Segmentation tables give ``volume_<structure>`` (mm³; hemisphere inside
        FreeSurfer's name, ``volume_left_hippocampus``) and their mm³ ``# Measure``
        lines (``volume_etiv``); surface tables give ``thickness_``, ``area_`` and
        ``volume_<region>_<left|right>`` (mm, mm², mm³) and
        ``thickness_cortex_<hemi>`` (mean thickness).

    Raises
    ------
    ImagingError
        Naming the file (and line): not a regular file (folder, named pipe, device,
        dangling link), unreadable or not UTF-8 text (garbled or binary), no
        ``# ColHeaders`` line, a row with the wrong number of fields (a truncated
        file), a value that is not a number, not finite or outside the data
        dictionary's range (negative volume, thickness above 10 mm), unknown table
        kind or hemisphere, a feature twice, or a subject folder without stats.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "lh.aparc.stats"
    >>> _ = p.write_text(
    ...     "# Measure Cortex, MeanThickness, Mean Thickness, 2.45, mm\\n"
    ...     "# hemi lh\\n"
    ...     "# ColHeaders StructName NumVert SurfArea GrayVol ThickAvg ThickStd\\n"
    ...     "precentral 8034 5386 14357 2.512 0.552\\n")
    >>> read_freesurfer_stats(p).to_dict()
    {'thickness_cortex_left': 2.45, 'thickness_precentral_left': 2.512,
     'area_precentral_left': 5386.0, 'volume_precentral_left': 14357.0}
    """
    p = Path(path)
    if p.is_dir():
        files = [
            p / "stats" / n
            for n in ("aseg.stats", "lh.aparc.stats", "rh.aparc.stats")
            if (p / "stats" / n).exists() or (p / "stats" / n).is_symlink()
        ]
        if not files:
            raise ImagingError(
                f"{p}: no stats/aseg.stats, stats/lh.aparc.stats or "
                "stats/rh.aparc.stats in this FreeSurfer subject folder"
            )
    else:
        files = [p]
    values: dict[str, float] = {}
    for f in files:
        for k, v in _read_one(f).items():
            if k in values:
                raise ImagingError(f"{f}: feature {k!r} also comes from another file")
            values[k] = v
    return pd.Series(values, name=str(p), dtype=float)


# ------------------------------------------------------------------ SUBJECTS_DIR
_LONG = re.compile(r"^(?P<tp>.+)\.long\.(?P<base>.+)$")
_BIDS = re.compile(r"^sub-(?P<sub>[A-Za-z0-9]+)_ses-(?P<ses>[A-Za-z0-9]+)$")
_SUBJECT = re.compile(r"^[A-Za-z0-9_-]+$")
_SESSION = re.compile(r"^[A-Za-z0-9]+$")
#: FreeSurfer's own template subjects, found in many SUBJECTS_DIRs.
_TEMPLATES = re.compile(r"^(fsaverage.*|[lr]h\.EC_average|cvs_avg35.*)$")
_FS_PARTS = ("stats", "mri", "surf", "scripts")


@dataclass(frozen=True)
class _Folder:
    name: str
    tp: str  # the time point's own id (the name without .long.<base>)
    base: str | None  # the within-subject template, when known
    long: bool


def _is_subject_folder(p: Path) -> bool:
    return p.is_dir() and any((p / part).is_dir() for part in _FS_PARTS)


def _base_tps(folder: Path) -> list[str]:
    """The time points a base (template) lists in its ``base-tps`` file."""
    f = folder / "base-tps"
    if not f.exists() and not f.is_symlink():
        return []
    return read_text(f, "FreeSurfer base-tps").split()


def _subject_session(f: _Folder) -> tuple[str, str] | None:
    """Subject and session from FreeSurfer's names (None when they do not say)."""
    m = _BIDS.match(f.tp)
    if m:
        return m["sub"], m["ses"]
    if f.base is None:
        return None
    subject = f.base.removeprefix("sub-")
    session = f.tp.removeprefix(f.base).lstrip("_-.") if f.tp != f.base else ""
    return subject, session.removeprefix("ses-")


def _read_sessions_table(sessions: Any) -> tuple[pd.DataFrame, str]:
    if isinstance(sessions, pd.DataFrame):
        df, source = sessions.copy(), "sessions table"
    else:
        path = Path(sessions)
        df = read_text_table(path, "sessions table")
        source = str(path)
    missing = [c for c in ("subject_id", "session") if c not in df.columns]
    if missing:
        raise ImagingError(
            f"{source}: needs columns subject_id and session (and acquisition_date "
            f"or acquisition_day; folder to name FreeSurfer folders); missing {missing}"
        )
    df["subject_id"] = df["subject_id"].astype(str).str.strip().str.removeprefix("sub-")
    df["session"] = df["session"].astype(str).str.strip().str.removeprefix("ses-")
    return df, source


def _choose(root: Path, longitudinal: str) -> tuple[list[_Folder], list[str]]:
    """The folders to read and notes on those left out."""
    entries = sorted(
        p
        for p in root.iterdir()
        if not p.name.startswith(".") and not _TEMPLATES.match(p.name)
    )
    subjects = [p for p in entries if _is_subject_folder(p)]
    long_base: dict[str, str] = {}
    for p in subjects:
        m = _LONG.match(p.name)
        if m:
            long_base[m["tp"]] = m["base"]
    bases = set(long_base.values())
    tp_base: dict[str, str] = dict(long_base)
    for p in subjects:
        tps = _base_tps(p)
        if tps:
            bases.add(p.name)
            for tp in tps:
                tp_base.setdefault(tp, p.name)
    chosen: list[_Folder] = []
    skipped: list[str] = []
    for p in subjects:
        m = _LONG.match(p.name)
        if m:
            f = _Folder(p.name, m["tp"], m["base"], True)
            if longitudinal == "cross":
                skipped.append(f"{p.name} (longitudinal; longitudinal='cross')")
                continue
        elif p.name in bases:
            skipped.append(f"{p.name} (a within-subject template, not a session)")
            continue
        else:
            f = _Folder(p.name, p.name, tp_base.get(p.name), False)
            if longitudinal == "long":
                skipped.append(f"{p.name} (cross-sectional; longitudinal='long')")
                continue
            if longitudinal == "auto" and p.name in long_base:
                skipped.append(
                    f"{p.name} (cross-sectional; its longitudinal run "
                    f"{p.name}.long.{long_base[p.name]} is read)"
                )
                continue
        chosen.append(f)
    return chosen, skipped


def read_freesurfer_dir(
    subjects_dir: str | os.PathLike[str],
    *,
    sessions: Any = None,
    files: Sequence[str] = DEFAULT_STATS_FILES,
    longitudinal: Literal["auto", "long", "cross"] = "auto",
) -> pd.DataFrame:
    """A FreeSurfer ``SUBJECTS_DIR`` as the imaging table: one row per subject × session.

    Every subject folder's ``stats/`` files are read with
    :func:`read_freesurfer_stats` (same feature names, same checks: regular files
    only, numbers within the data dictionary's ranges).

    Folder names follow FreeSurfer's conventions:

    * ``sub-<id>_ses-<label>`` (BIDS; the FreeSurfer BIDS app's naming): subject
      ``<id>``, session ``<label>``;
    * the longitudinal stream: time points processed cross-sectionally as
      ``<tp>``, a within-subject template ``<base>`` (its ``base-tps`` file lists
      the time points) and the longitudinal runs ``<tp>.long.<base>``: subject
      ``<base>`` (without ``sub-``), session ``<tp>`` without the ``<base>`` prefix
      (``OAS2_0001_MR1.long.OAS2_0001`` -> subject ``OAS2_0001``, session ``MR1``);
      ``sub-01_ses-02.long.sub-01`` -> ``01``, ``02``;
    * any other naming: pass ``sessions`` with a ``folder`` column.

    Templates are never sessions; FreeSurfer's own templates (``fsaverage*``,
    ``?h.EC_average``, ``cvs_avg35*``) and folders that are not FreeSurfer
    subjects (no ``stats``, ``mri``, ``surf`` or ``scripts`` inside) are left out.

    Parameters
    ----------
    subjects_dir : str or path-like
        The ``SUBJECTS_DIR``.
    sessions : pandas.DataFrame, str or path-like, optional
        A table (or CSV/TSV file) with ``subject_id``, ``session`` and
        ``acquisition_date`` (or ``acquisition_day``) per session, giving the dates
        FreeSurfer does not keep.  With a ``folder`` column it also names the folder
        of each session, and exactly those folders are read (any naming).
    files : sequence of str, default ("aseg.stats", "lh.aparc.stats", "rh.aparc.stats")
        Stats files read from each folder's ``stats/``; each must be there.
    longitudinal : {"auto", "long", "cross"}, default "auto"
        ``"auto"``: a subject's ``<tp>.long.<base>`` runs when it has them (as
        FreeSurfer recommends for longitudinal analysis), else its cross-sectional
        folders; ``"long"`` or ``"cross"``: only those.

    Returns
    -------
    pandas.DataFrame
        ``subject_id``, ``session``, ``acquisition_date`` (``acquisition_day`` when
        the sessions table gives days; NaT without a sessions table, with a
        :class:`~alsprog.errors.DataWarning`) and the features, sorted by subject
        and session; ready for ``alsprog.data.assemble(visits, subjects,
        imaging=...)``.  ``attrs["folders"]`` maps each row's subject and session to
        its folder, ``attrs["skipped"]`` lists the folders left out and why.

    Raises
    ------
    ImagingError
        Naming the folder or file: no subject folder found; a folder whose name
        gives no subject and session (without ``sessions``) or an invalid one; two
        folders for one subject × session; a missing stats file; anything
        :func:`read_freesurfer_stats` refuses.

    Warns
    -----
    DataWarning
        Sessions without an acquisition date.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for tp, thick in (("P01_m00", 2.51), ("P01_m06", 2.47)):
    ...     stats = root / f"{tp}.long.P01" / "stats"
    ...     stats.mkdir(parents=True)
    ...     _ = (stats / "lh.aparc.stats").write_text(
    ...         "# hemi lh\\n# ColHeaders StructName ThickAvg\\n"
    ...         f"precentral {thick}\\n")
    >>> dates = pd.DataFrame({"subject_id": ["P01", "P01"], "session": ["m00", "m06"],
    ...                       "acquisition_date": ["2021-03-01", "2021-09-02"]})
    >>> t = read_freesurfer_dir(root, sessions=dates, files=["lh.aparc.stats"])
    >>> t[["subject_id", "session", "thickness_precentral_left"]].to_dict("list")
    {'subject_id': ['P01', 'P01'], 'session': ['m00', 'm06'],
     'thickness_precentral_left': [2.51, 2.47]}
    """
    root = Path(subjects_dir)
    if not root.is_dir():
        raise ImagingError(f"{root}: is not a folder (a FreeSurfer SUBJECTS_DIR)")
    if longitudinal not in ("auto", "long", "cross"):
        raise ValueError(
            f"`longitudinal` must be 'auto', 'long' or 'cross'; got {longitudinal!r}."
        )
    if isinstance(files, str) or not list(files):
        raise ValueError(
            f"`files` must be a non-empty list of file names; got {files!r}."
        )
    table = None
    if sessions is not None:
        table, tsource = _read_sessions_table(sessions)
    if table is not None and "folder" in table.columns:
        keys = []
        for folder, sid, ses in zip(
            table["folder"], table["subject_id"], table["session"], strict=True
        ):
            keys.append((str(folder).strip(), sid, ses))
        missing = [f for f, _, _ in keys if not (root / f).is_dir()]
        if missing:
            raise ImagingError(f"{tsource}: folder(s) {missing[:5]} are not in {root}")
        skipped: list[str] = []
    else:
        chosen, skipped = _choose(root, longitudinal)
        if not chosen:
            raise ImagingError(
                f"{root}: no FreeSurfer subject folders (with stats/, mri/, surf/ or "
                "scripts/ inside)"
                + (f"; left out: {', '.join(skipped)}" if skipped else "")
            )
        keys = []
        for f in chosen:
            names = _subject_session(f)
            if names is None:
                raise ImagingError(
                    f"{root / f.name}: the name gives no session (FreeSurfer's "
                    "cross-sectional <subject> naming): name folders "
                    "sub-<id>_ses-<label>, use the longitudinal stream "
                    "(<tp>.long.<base>), or pass `sessions` with columns folder, "
                    "subject_id, session and acquisition_date"
                )
            keys.append((f.name, *names))
    for folder, sid, ses in keys:
        if not _SUBJECT.match(sid) or not _SESSION.match(ses):
            raise ImagingError(
                f"{root / folder}: subject {sid!r} / session {ses!r} read from the "
                "name are not valid (subject: letters, digits, '-' and '_'; session: "
                "letters and digits); pass `sessions` with a folder column"
            )
    seen: dict[tuple[str, str], str] = {}
    for folder, sid, ses in keys:
        if (sid, ses) in seen:
            raise ImagingError(
                f"{root}: folders {seen[(sid, ses)]} and {folder} are both subject "
                f"{sid} session {ses}; keep one (or choose with `longitudinal` or a "
                "sessions table with a folder column)"
            )
        seen[(sid, ses)] = folder
    rows = []
    for folder, sid, ses in keys:
        values: dict[str, Any] = {"subject_id": sid, "session": ses}
        for name in files:
            path = root / folder / "stats" / name
            if not path.exists() and not path.is_symlink():
                raise ImagingError(
                    f"{path}: missing (recon-all unfinished?); every session folder "
                    f"needs {', '.join(files)} (pass `files` to read others)"
                )
            for k, v in read_freesurfer_stats(path).items():
                if k in values:
                    raise ImagingError(
                        f"{path}: feature {k!r} also comes from another file"
                    )
                values[k] = v
        rows.append(values)
    out = pd.DataFrame(rows)
    out = _add_dates(out, table, tsource if table is not None else str(root))
    out = out.sort_values(["subject_id", "session"], kind="stable").reset_index(
        drop=True
    )
    out.attrs["folders"] = {f"{sid}/{ses}": folder for folder, sid, ses in keys}
    out.attrs["skipped"] = list(skipped)
    return out


def _add_dates(
    out: pd.DataFrame, table: pd.DataFrame | None, source: str
) -> pd.DataFrame:
    """``acquisition_date`` (or ``_day``) from the sessions table, third column."""
    col = "acquisition_date"
    if (
        table is not None
        and "acquisition_date" not in table.columns
        and ("acquisition_day" in table.columns)
    ):
        col = "acquisition_day"
    if table is None or col not in table.columns:
        values = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
    else:
        key = table.drop_duplicates(["subject_id", "session"]).set_index(
            ["subject_id", "session"]
        )[col]
        idx = pd.MultiIndex.from_frame(out[["subject_id", "session"]])
        raw = key.reindex(idx).to_numpy()
        try:
            if col == "acquisition_date":
                values = pd.to_datetime(
                    pd.Series(raw, index=out.index).replace("", None)
                ).dt.normalize()
            else:
                values = pd.to_numeric(
                    pd.Series(raw, index=out.index).replace("", None)
                )
        except (ValueError, TypeError) as exc:
            raise ImagingError(
                f"{source}: {col} has values that are not {'dates' if col == 'acquisition_date' else 'whole days'} ({exc})"
            ) from exc
    out.insert(2, col, values)
    undated = out.loc[out[col].isna(), ["subject_id", "session"]]
    if len(undated):
        first = undated.iloc[0]
        warnings.warn(
            f"{source}: {len(undated)} session(s) have no {col} (first: subject "
            f"{first['subject_id']} session {first['session']}); FreeSurfer keeps no "
            "scan dates: pass `sessions` (subject_id, session, acquisition_date) "
            "before joining to visits",
            DataWarning,
            stacklevel=3,
        )
    return out
