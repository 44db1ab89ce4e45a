"""DTI tract profiles (tractometry) as imaging features and along-tract profiles.

Owns: :func:`read_tract_profiles` (TractSeg ``Tractometry`` CSVs and pyAFQ profile
CSVs -> per-session ``<metric>_<bundle>`` and ``<metric>_<bundle>_seg<a>_<b>``
features plus the long along-tract profiles) and :func:`bundle_name` (bundle names
of both tools in alsprog's lower-case style).
Leaves: the along-tract group test to :mod:`alsprog.imaging._tract_stats`; opening
files safely to :mod:`alsprog.imaging._files`; joining features to visits to
:func:`alsprog.data.assemble`.

File layouts (checked against the tools' sources):

* TractSeg (``bin/Tractometry``, MIC-DKFZ/TractSeg, unchanged since v2.x):
  ``np.savetxt(csv_file_out, np.array(results).transpose(), delimiter=";",
  header=bundle_string, comments="")``: a header of ``;``-separated bundle names
  (``AF_left;...;CST_left;CST_right;...``), then one row per position along the tract
  and no index column.  ``--nr_points`` defaults to 100 and the first and last
  positions are dropped (``mean = mean[1:-1]``), so a default file has 98 rows.  A
  bundle without streamlines is written as zeros.  The file names neither subject nor
  session.
* pyAFQ (``AFQ/tasks/segmentation.py::tract_profiles`` and
  ``AFQ/api/group.py::combine_list_of_profiles``, yeatmanlab/pyAFQ): a long
  ``,``-separated table with ``tractID`` (``"Left Corticospinal"``; older releases
  ``"CST_L"``), ``nodeID`` (0..n_points_profile-1, default 100 nodes), one column per
  scalar (``dti_fa``, ``dti_md``, ...) and, in the combined ``tract_profiles.csv``,
  ``subjectID`` and ``sessionID`` (``"unknown"`` when the data set has no sessions).
  The per-subject ``*_desc-profiles_dwi.csv`` adds an unnamed index column.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._validation import check_choice, check_interval
from alsprog.errors import DataWarning, ImagingError
from alsprog.imaging._atlas import region_name
from alsprog.imaging._files import read_text, read_text_table

__all__ = ["PROFILE_COLUMNS", "TractProfiles", "bundle_name", "read_tract_profiles"]

#: Columns of the long profiles table, in order.
PROFILE_COLUMNS = ["subject_id", "session", "bundle", "position", "value"]

# pyAFQ bundle names (full names of its default bundle sets and the abbreviations
# of older releases) -> TractSeg-style abbreviations where TractSeg has that tract.
_AFQ_TRACTS = {
    "anterior_thalamic": "atr",
    "atr": "atr",
    "cingulum_cingulate": "cg",
    "cgc": "cg",
    "corticospinal": "cst",
    "cst": "cst",
    "inferior_fronto_occipital": "ifo",
    "ifo": "ifo",
    "inferior_longitudinal": "ilf",
    "ilf": "ilf",
    "superior_longitudinal": "slf",
    "slf": "slf",
    "arcuate": "af",
    "arc": "af",
    "uncinate": "uf",
    "unc": "uf",
    "posterior_arcuate": "parc",
    "vertical_occipital": "vof",
    "middle_longitudinal": "mdlf",
    "mdlf": "mdlf",
    "optic_radiation": "or",
    "forceps_minor": "forceps_minor",
    "fa": "forceps_minor",
    "forceps_major": "forceps_major",
    "fp": "forceps_major",
}

_SIDES = {"left": "left", "right": "right", "l": "left", "r": "right"}


def bundle_name(name: Any, format: Literal["tractseg", "afq"] = "tractseg") -> str:
    """A tract name from TractSeg or pyAFQ as used in alsprog feature columns.

    TractSeg names are lower-cased (``CST_left`` -> ``cst_left``).  pyAFQ names
    become the TractSeg abbreviation with the side last (``Left Corticospinal`` and
    ``CST_L`` -> ``cst_left``, ``Callosum Motor`` -> ``cc_motor``,
    ``Forceps Minor`` -> ``forceps_minor``); other names are lower-cased with the
    side moved to the end.

    Examples
    --------
    >>> bundle_name("CST_left"), bundle_name("Left Corticospinal", "afq")
    ('cst_left', 'cst_left')
    >>> bundle_name("CST_L", "afq"), bundle_name("Callosum Motor", "afq")
    ('cst_left', 'cc_motor')
    """
    base = region_name(name)
    if format == "tractseg":
        return base
    parts = base.split("_")
    side = ""
    if len(parts) > 1 and parts[0] in ("left", "right"):
        side, parts = parts[0], parts[1:]
    elif len(parts) > 1 and parts[-1] in _SIDES:
        side, parts = _SIDES[parts[-1]], parts[:-1]
    core = "_".join(parts)
    if parts[0] == "callosum" and len(parts) > 1:
        core = "cc_" + "_".join(parts[1:])
    core = _AFQ_TRACTS.get(core, core)
    return f"{core}_{side}" if side else core


class TractProfiles(NamedTuple):
    """Result of :func:`read_tract_profiles`.

    Attributes
    ----------
    features : pandas.DataFrame
        One row per subject × session: ``subject_id``, ``session``,
        ``acquisition_date``, then per bundle ``<metric>_<bundle>`` (whole-tract
        mean) and its ``<metric>_<bundle>_seg<a>_<b>`` segment means.
    profiles : pandas.DataFrame
        Long table :data:`PROFILE_COLUMNS`: one row per subject × session × bundle ×
        position (0..n-1), ``value`` the metric there.
    """

    features: pd.DataFrame
    profiles: pd.DataFrame


@dataclass
class _Profile:
    source: str
    subject_id: str
    session: str
    acquisition_date: Any
    raw_bundle: str
    values: npt.NDArray[np.float64]
    lines: npt.NDArray[np.int64]  # 1-based file line of each position


def _clean_id(value: Any, prefix: str) -> str:
    return str(value).strip().removeprefix(prefix)


# ------------------------------------------------------------------ TractSeg
def _read_tractseg(path: Path) -> list[tuple[str, npt.NDArray[Any], npt.NDArray[Any]]]:
    text = read_text(path, "TractSeg Tractometry")
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ImagingError(f"{path}: is empty; expected a TractSeg Tractometry CSV")
    header = lines[0].strip()
    if header.startswith("#"):  # np.savetxt with its default comments="# "
        header = header.lstrip("#").strip()
    for sep, name in ((",", "','"), ("\t", "tabs")):
        if sep in header:
            raise ImagingError(
                f"{path}: line 1: the header is separated by {name}; TractSeg "
                "Tractometry files separate bundle names by ';' (e.g. "
                "'CST_left;CST_right'); pass format='afq' for a pyAFQ profiles CSV"
            )
    names = [h.strip() for h in header.split(";")]
    for j, h in enumerate(names):
        if not h or re.fullmatch(r"[-+.0-9eE]+", h):
            raise ImagingError(
                f"{path}: line 1, column {j + 1}: {h!r} is not a bundle name; a "
                "TractSeg Tractometry file starts with a header of bundle names"
            )
    seen = set()
    for h in names:
        if h in seen:
            raise ImagingError(f"{path}: line 1: bundle {h!r} appears twice")
        seen.add(h)
    body = [(i, ln) for i, ln in enumerate(lines[1:], start=2) if ln.strip()]
    if not body:
        raise ImagingError(f"{path}: has a header but no rows (positions)")
    values = np.empty((len(body), len(names)))
    for r, (line_no, line) in enumerate(body):
        fields = line.split(";")
        if len(fields) != len(names):
            raise ImagingError(
                f"{path}: line {line_no}: {len(fields)} fields, the header names "
                f"{len(names)} bundles (fields are separated by ';')"
            )
        for j, f in enumerate(fields):
            try:
                values[r, j] = float(f)
            except ValueError:
                raise ImagingError(
                    f"{path}: line {line_no}, column {names[j]}: {f.strip()!r} is "
                    "not a number"
                ) from None
    line_nos = np.array([i for i, _ in body], dtype=np.int64)
    out = []
    for j, h in enumerate(names):
        out.append((h, values[:, j], line_nos))
    return out


# ---------------------------------------------------------------------- pyAFQ
def _read_afq(path: Path, column: str) -> pd.DataFrame:
    text = read_text(path, "pyAFQ profiles")
    first = text.split("\n", 1)[0]
    if ";" in first and "," not in first:
        raise ImagingError(
            f"{path}: line 1 is separated by ';'; pyAFQ profile CSVs are "
            "','-separated (pass format='tractseg' for a TractSeg Tractometry file)"
        )
    try:
        df = pd.read_csv(io.StringIO(text), sep=",", dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many parser error types
        raise ImagingError(f"{path}: cannot be read as a CSV table ({exc})") from exc
    df = df.loc[:, [not str(c).startswith("Unnamed") for c in df.columns]]
    need = ["tractID", "nodeID", column]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ImagingError(
            f"{path}: a pyAFQ profiles CSV needs columns {need}; missing {missing} "
            f"(found {list(df.columns)}); choose the scalar with `column=`"
        )
    df["_line"] = np.arange(2, len(df) + 2)
    if df.empty:
        raise ImagingError(f"{path}: has a header but no rows")
    return df


def _afq_number(path: Path, df: pd.DataFrame, col: str, *, integer: bool) -> Any:
    out = pd.to_numeric(df[col].str.strip().replace("", "nan"), errors="coerce")
    raw = df[col].str.strip().str.lower()
    bad = out.isna() & ~raw.isin(["nan", "", "na"])
    if integer:
        bad |= out.isna() | (out != np.floor(out))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        kind = "a whole number" if integer else "a number"
        raise ImagingError(
            f"{path}: line {int(df['_line'].iloc[i])}, column {col}: "
            f"{df[col].iloc[i]!r} is not {kind}"
        )
    return out.to_numpy(dtype=np.float64)


def _afq_profiles(
    path: Path,
    column: str,
    subject: str | None,
    session: str | None,
    date: Any,
) -> list[_Profile]:
    df = _read_afq(path, column)
    node = _afq_number(path, df, "nodeID", integer=True).astype(np.int64)
    value = _afq_number(path, df, column, integer=False)
    if subject is not None:
        subj = np.full(len(df), subject, dtype=object)
        if "subjectID" in df.columns and df["subjectID"].nunique() > 1:
            raise ImagingError(
                f"{path}: holds subjects {sorted(df['subjectID'].unique())[:5]}; "
                "`subject=` names one subject, so pass it only for a file of one "
                "subject"
            )
    elif "subjectID" in df.columns:
        subj = np.array([_clean_id(s, "sub-") for s in df["subjectID"]], dtype=object)
    else:
        raise ImagingError(
            f"{path}: has no subjectID column (a per-subject pyAFQ file); pass "
            "subject= and session=, or a mapping"
        )
    if session is not None:
        ses = np.full(len(df), session, dtype=object)
    elif "sessionID" in df.columns and not (df["sessionID"] == "unknown").any():
        ses = np.array([_clean_id(s, "ses-") for s in df["sessionID"]], dtype=object)
    else:
        why = (
            "has sessionID 'unknown' (pyAFQ's mark of a data set without sessions)"
            if "sessionID" in df.columns
            else "has no sessionID column"
        )
        raise ImagingError(
            f"{path}: {why}; pass session= (e.g. session='m00') or a mapping"
        )
    lines = df["_line"].to_numpy()
    tract = df["tractID"].to_numpy()
    key = pd.DataFrame({"s": subj, "e": ses, "t": tract})
    out = []
    groups: dict[Any, Any] = dict(key.groupby(["s", "e", "t"], sort=False).indices)
    for k, where in groups.items():
        s, e, t = (str(x) for x in k)
        idx = np.asarray(where, dtype=np.intp)
        order = idx[np.argsort(node[idx], kind="stable")]
        nodes = node[order]
        if not np.array_equal(nodes, np.arange(len(nodes))):
            dup = nodes[:-1][np.diff(nodes) == 0]
            what = (
                f"nodeID {int(dup[0])} appears twice (duplicate subject × session "
                "× tract rows)"
                if dup.size
                else f"nodeIDs are {_ranges(nodes)}, not 0..{len(nodes) - 1}"
            )
            raise ImagingError(
                f"{path}: subject {s}, session {e}, tract {t!r}: {what}; positions "
                "must be 0..n-1, once each"
            )
        out.append(_Profile(str(path), s, e, date, t, value[order], lines[order]))
    return out


def _ranges(nodes: npt.NDArray[np.int64]) -> str:
    return f"{int(nodes.min())}..{int(nodes.max())} ({len(nodes)} rows)"


# --------------------------------------------------------------------- mapping
def _read_mapping(mapping: Any, base: Path | None) -> pd.DataFrame:
    if isinstance(mapping, Mapping):
        rows = []
        for p, ids in mapping.items():
            if isinstance(ids, str) or len(ids) not in (2, 3):
                raise ImagingError(
                    f"mapping[{str(p)!r}] = {ids!r}; expected (subject_id, session) "
                    "or (subject_id, session, acquisition_date)"
                )
            rows.append((str(p), *ids) if len(ids) == 3 else (str(p), *ids, ""))
        df = pd.DataFrame(
            rows, columns=["path", "subject_id", "session", "acquisition_date"]
        ).astype(str)
        source = "mapping"
    elif isinstance(mapping, pd.DataFrame):
        df, source = mapping.copy(), "mapping table"
    else:
        mpath = Path(mapping)
        df = read_text_table(mpath, "mapping")
        source = str(mpath)
        base = base or mpath.parent
    need = ["path", "subject_id", "session"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ImagingError(
            f"{source}: a mapping needs columns {need} (acquisition_date "
            f"optional); missing {missing}"
        )
    if df.empty:
        raise ImagingError(f"{source}: the mapping lists no files")
    out = pd.DataFrame(
        {
            "path": [
                str(base / p) if base is not None and not Path(p).is_absolute() else p
                for p in df["path"].astype(str)
            ],
            "subject_id": [_clean_id(s, "sub-") for s in df["subject_id"]],
            "session": [_clean_id(s, "ses-") for s in df["session"]],
            "acquisition_date": (
                df["acquisition_date"]
                if "acquisition_date" in df.columns
                else pd.Series([""] * len(df))
            ).to_numpy(),
        }
    )
    dup = out[out.duplicated(["subject_id", "session"], keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        files = dup.loc[
            (dup["subject_id"] == first["subject_id"])
            & (dup["session"] == first["session"]),
            "path",
        ]
        raise ImagingError(
            f"{source}: subject {first['subject_id']}, session {first['session']} "
            f"is mapped to several files ({', '.join(files)}); one file per subject "
            "× session"
        )
    return out


# ---------------------------------------------------------------------- segments
def _segment_spec(segments: Any) -> dict[str | None, list[tuple[int, int]]]:
    """``[(40, 60)]`` (every bundle) or ``{"cst_left": [(40, 60)]}``."""
    if segments is None:
        return {}
    items: list[tuple[str | None, Any]]
    if isinstance(segments, Mapping):
        items = [(str(k), v) for k, v in segments.items()]
    else:
        items = [(None, segments)]
    out: dict[str | None, list[tuple[int, int]]] = {}
    for key, spec in items:
        spec = [spec] if _is_pair(spec) else list(spec)
        pairs = []
        for pair in spec:
            if not _is_pair(pair):
                raise ValueError(
                    f"`segments` entries must be (start, stop) percent pairs; got "
                    f"{pair!r}."
                )
            a, b = (int(x) for x in pair)
            if not (0 <= a < b <= 100) or a != pair[0] or b != pair[1]:
                raise ValueError(
                    "`segments` must be whole percents with 0 <= start < stop <= 100; "
                    f"got {tuple(pair)!r}."
                )
            pairs.append((a, b))
        out[key] = pairs
    return out


def _is_pair(x: Any) -> bool:
    return (
        isinstance(x, tuple | list)
        and len(x) == 2
        and all(isinstance(v, int | np.integer | float) for v in x)
    )


def segment_positions(a: int, b: int, n: int) -> npt.NDArray[np.intp]:
    """Positions ``i`` of ``n`` whose centre ``100 (i + 0.5) / n`` is in ``[a, b)``.

    Examples
    --------
    >>> segment_positions(40, 60, 100).tolist() == list(range(40, 60))
    True
    >>> segment_positions(0, 50, 5).tolist()
    [0, 1]
    """
    i = np.arange(n)
    centre2 = 100 * (2 * i + 1)  # 2 n x the centre in percent, in integers
    return np.flatnonzero((centre2 >= 2 * a * n) & (centre2 < 2 * b * n))


# ------------------------------------------------------------------------ main
def read_tract_profiles(
    path: str | os.PathLike[str] | None = None,
    format: Literal["tractseg", "afq"] = "tractseg",
    *,
    subject: str | None = None,
    session: str | None = None,
    acquisition_date: Any = None,
    mapping: Any = None,
    bundles: Sequence[str] | str | None = None,
    segments: Any = None,
    metric: str = "fa",
    column: str | None = None,
    scale: float = 1.0,
) -> TractProfiles:
    """Read tract profiles (TractSeg or pyAFQ) as features and along-tract profiles.

    Parameters
    ----------
    path : str, path-like or None
        One profiles file; with ``mapping`` (several files), ``None`` or the folder
        that the mapping's relative paths start from.
    format : {"tractseg", "afq"}, default "tractseg"
        ``"tractseg"``: TractSeg ``Tractometry`` output (``;``-separated, one
        column per bundle, one row per position, no ids).  ``"afq"``: a pyAFQ
        profiles CSV (``tractID, nodeID, <scalars>`` and, when combined over
        subjects, ``subjectID, sessionID``).
    subject, session : str, optional
        The ids of a single file (``sub-``/``ses-`` prefixes are dropped).  A
        TractSeg file carries none, so these or ``mapping`` are required; for a
        combined pyAFQ file they override ``subjectID``/``sessionID`` (``session``
        is required when pyAFQ wrote ``sessionID = "unknown"``).
    acquisition_date : date-like, optional
        Date of the session read with ``subject``/``session``.
    mapping : pandas.DataFrame, CSV/TSV path or mapping, optional
        Which file is which visit: columns ``path, subject_id, session`` and
        optionally ``acquisition_date`` (relative paths from the mapping file's
        folder, or from ``path``), or ``{path: (subject_id, session[, date])}``.
    bundles : sequence of str or str, optional
        Keep these bundles (either tool's spelling or alsprog's, e.g.
        ``"cst_left"``); default all in the files.
    segments : sequence of (int, int) or mapping, optional
        Along-tract segments in percent of the tract length, ``[(40, 60)]`` for
        every bundle kept or ``{"cst_left": [(40, 60)]}``.  Segment ``(a, b)`` is
        the mean over the positions ``i`` (of ``n``) whose centre
        ``100 (i + 0.5) / n`` lies in ``[a, b)`` (positions ``a..b-1`` when
        ``n = 100``) and becomes ``<metric>_<bundle>_seg<a>_<b>``.
    metric : str, default "fa"
        alsprog's metric name, the feature prefix (``"fa"``, ``"md"``, ``"rd"``,
        ``"ad"``).  A TractSeg file does not say what it measured: name it here.
    column : str, optional
        pyAFQ scalar column; default ``"dti_<metric>"``.
    scale : float, default 1.0
        Values are multiplied by it, e.g. ``1000`` for pyAFQ's ``dti_md`` in mm²/s
        to alsprog's 10⁻³ mm²/s.

    Returns
    -------
    TractProfiles
        ``(features, profiles)``: ``features`` one row per subject × session
        (sorted), ready for ``alsprog.data.assemble(..., imaging=features)``;
        ``profiles`` the long table ``subject_id, session, bundle, position,
        value`` for :func:`tract_profile_test`.

    Raises
    ------
    ImagingError
        Naming the file (and line): ids missing (no ``subject``/``session`` or
        mapping); wrong separator; a row with too few or many fields; a value that
        is not a number; NaN in a profile; positions (``nodeID``) not ``0..n-1``
        once each; a bundle asked for that no file has; a segment without
        positions; the same subject × session twice; values outside the data
        dictionary's range for the metric (FA outside 0-1); diffusivities that
        look like mm²/s.
    TypeError, ValueError
        For a wrong argument.

    Warns
    -----
    DataWarning
        Bundles absent from a file, or written as all zeros by TractSeg (no
        streamlines): their features are NaN and they have no profile rows.

    Notes
    -----
    Position ``i`` of ``n`` covers ``[100 i / n, 100 (i + 1) / n)`` percent of the
    profile as stored.  TractSeg drops the first and last of its ``--nr_points``
    positions, so percent here is of the stored 98 of 100 positions.

    References
    ----------
    Wasserthal J, et al. TractSeg - Fast and accurate white matter tract
    segmentation. NeuroImage 2018;183:239-253 (``bin/Tractometry``).
    Kruper J, et al. Evaluating the reliability of human brain white matter
    tractometry. Aperture Neuro 2021 (pyAFQ).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "Tractometry_P01.csv"
    >>> _ = p.write_text("CST_left;CST_right\\n0.5;0.6\\n0.7;0.6\\n")
    >>> feats, prof = read_tract_profiles(p, subject="P01", session="m00",
    ...                                   segments=[(50, 100)])
    >>> feats[["fa_cst_left", "fa_cst_left_seg50_100"]].round(3).values.tolist()
    [[0.6, 0.7]]
    >>> prof.shape
    (4, 5)
    """
    check_choice(format, "format", ("tractseg", "afq"))
    metric = region_name(metric)
    if not metric:
        raise ValueError("`metric` must be a name such as 'fa'; got ''.")
    scale = float(check_interval(scale, "scale", low=0.0, low_closed=False))
    column = column or f"dti_{metric}"
    seg_spec = _segment_spec(segments)
    if isinstance(bundles, str):
        bundles = [bundles]

    items = _files(path, mapping, subject, session, acquisition_date, format)
    profiles: list[_Profile] = []
    for fpath, subj, ses, date in items:
        if format == "tractseg":
            if subj is None or ses is None:
                raise ImagingError(
                    f"{fpath}: a TractSeg Tractometry file names no subject or "
                    "session; pass subject= and session=, or a mapping (path -> "
                    "subject_id, session)"
                )
            for raw, values, lines in _read_tractseg(fpath):
                profiles.append(
                    _Profile(str(fpath), subj, ses, date, raw, values, lines)
                )
        else:
            profiles.extend(_afq_profiles(fpath, column, subj, ses, date))
    return _assemble(profiles, format, metric, bundles, seg_spec, scale)


def _files(
    path: Any, mapping: Any, subject: Any, session: Any, date: Any, format: str
) -> list[tuple[Path, str | None, str | None, Any]]:
    if mapping is not None:
        if subject is not None or session is not None:
            raise ValueError("Pass either `mapping` or `subject`/`session`, not both.")
        base = None
        if path is not None:
            if not (isinstance(path, str | os.PathLike) and Path(path).is_dir()):
                raise ValueError(
                    "With `mapping`, `path` must be None or the folder its relative "
                    f"paths start from; got {path!r}."
                )
            base = Path(path)
        m = _read_mapping(mapping, base)
        return [
            (Path(str(p)), str(s), str(e), d)
            for p, s, e, d in zip(
                m["path"],
                m["subject_id"],
                m["session"],
                m["acquisition_date"],
                strict=True,
            )
        ]
    if path is None:
        raise ValueError("Pass `path` (a profiles file) or `mapping`.")
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            "`path` must be one file; read several with a `mapping` (path -> "
            f"subject_id, session); got {type(path).__name__}."
        )
    subj = None if subject is None else _clean_id(subject, "sub-")
    ses = None if session is None else _clean_id(session, "ses-")
    if format == "tractseg" and (subj is None or ses is None):
        raise ImagingError(
            f"{path}: a TractSeg Tractometry file names no subject or session; pass "
            "subject= and session=, or a mapping (path -> subject_id, session)"
        )
    return [(Path(path), subj, ses, date)]


def _assemble(
    profiles: list[_Profile],
    format: str,
    metric: str,
    bundles: Sequence[str] | None,
    seg_spec: dict[str | None, list[tuple[int, int]]],
    scale: float,
) -> TractProfiles:
    from alsprog.data._dictionary import load_dictionary

    # bundle names, duplicates within a file after renaming
    names: dict[tuple[str, str, str], _Profile] = {}
    visits: dict[tuple[str, str], tuple[str, Any]] = {}
    for p in profiles:
        b = bundle_name(p.raw_bundle, format)  # type: ignore[arg-type]
        if not b:
            raise ImagingError(f"{p.source}: bundle name {p.raw_bundle!r} is empty")
        key = (p.subject_id, p.session, b)
        if key in names:
            other = names[key]
            where = (
                f"files {other.source} and {p.source}"
                if other.source != p.source
                else f"file {p.source} (as {other.raw_bundle!r} and {p.raw_bundle!r})"
            )
            raise ImagingError(
                f"{p.source}: subject {p.subject_id}, session {p.session}: bundle "
                f"{b!r} appears twice, in {where}; one profile per subject × "
                "session × bundle"
            )
        names[key] = p
        visits.setdefault((p.subject_id, p.session), (p.source, p.acquisition_date))
    found = list(dict.fromkeys(k[2] for k in names))
    if bundles is not None:
        wanted = list(dict.fromkeys(bundle_name(b, format) for b in bundles))  # type: ignore[arg-type]
        wanted = [bundle_name(b, "tractseg") for b in wanted]
        unknown = [b for b in wanted if b not in found]
        if unknown:
            raise ImagingError(
                f"{profiles[0].source if profiles else 'files'}: bundle "
                f"{unknown[0]!r} is not in the profiles; they hold "
                f"{', '.join(found)}"
            )
        keep = wanted
    else:
        keep = found
    seg_spec = {
        (None if k is None else bundle_name(bundle_name(k, format), "tractseg")): v  # type: ignore[arg-type]
        for k, v in seg_spec.items()
    }
    for seg_key in seg_spec:
        if seg_key is not None and seg_key not in keep:
            raise ImagingError(
                f"segments name bundle {seg_key!r}, which is not among the bundles read "
                f"({', '.join(keep)})"
            )
    dd = load_dictionary()
    field = {b: dd.field_for(f"{metric}_{b}") for b in keep}
    visit_keys = sorted(visits)
    columns: dict[str, Any] = {
        "subject_id": pd.array([k[0] for k in visit_keys], dtype="str"),
        "session": pd.array([k[1] for k in visit_keys], dtype="str"),
    }
    try:
        columns["acquisition_date"] = pd.to_datetime(
            pd.Series([visits[k][1] for k in visit_keys], dtype=object).replace(
                "", None
            )
        ).dt.normalize()
    except (ValueError, TypeError) as exc:
        raise ImagingError(
            f"acquisition_date has values that are not dates ({exc})"
        ) from exc
    rows: list[pd.DataFrame] = []
    absent: list[str] = []
    diffusivity = metric in ("md", "rd", "ad")
    for b in keep:
        segs = seg_spec.get(b, seg_spec.get(None, []))
        mean = np.full(len(visit_keys), np.nan)
        seg_means = {s: np.full(len(visit_keys), np.nan) for s in segs}
        for v, (s, e) in enumerate(visit_keys):
            found_p = names.get((s, e, b))
            if found_p is None:
                absent.append(f"{b} (subject {s}, session {e})")
                continue
            p = found_p
            values = p.values * scale
            if format == "tractseg" and np.all(values == 0):
                absent.append(
                    f"{b} (subject {s}, session {e}: all zeros, no streamlines)"
                )
                continue
            _check_values(p, b, values, metric, field[b], diffusivity)
            mean[v] = values.mean()
            for a, z in segs:
                pos = segment_positions(a, z, len(values))
                if pos.size == 0:
                    raise ImagingError(
                        f"{p.source}: segment {a}-{z}% of bundle {b!r} holds none of "
                        f"its {len(values)} positions; widen it"
                    )
                seg_means[(a, z)][v] = values[pos].mean()
            rows.append(
                pd.DataFrame(
                    {
                        "subject_id": s,
                        "session": e,
                        "bundle": b,
                        "position": np.arange(len(values), dtype=np.int64),
                        "value": values,
                    }
                )
            )
        columns[f"{metric}_{b}"] = mean
        for (a, z), m in seg_means.items():
            columns[f"{metric}_{b}_seg{a}_{z}"] = m
    if absent:
        warnings.warn(
            f"{len(absent)} bundle profile(s) missing (first: {absent[0]}); their "
            "features are NaN and they have no profile rows",
            DataWarning,
            stacklevel=3,
        )
    features = pd.DataFrame(columns)
    if rows:
        prof = pd.concat(rows, ignore_index=True)
    else:
        prof = pd.DataFrame({c: pd.Series(dtype=object) for c in PROFILE_COLUMNS})
    for c in ("subject_id", "session", "bundle"):
        prof[c] = prof[c].astype("str")
    prof["position"] = prof["position"].astype(np.int64)
    prof["value"] = prof["value"].astype(np.float64)
    order = {b: i for i, b in enumerate(keep)}
    prof = (
        prof.assign(_b=prof["bundle"].map(order))
        .sort_values(["subject_id", "session", "_b", "position"], kind="stable")
        .drop(columns="_b")
        .reset_index(drop=True)
    )
    return TractProfiles(features, prof[PROFILE_COLUMNS])


def _check_values(
    p: _Profile,
    b: str,
    values: npt.NDArray[np.float64],
    metric: str,
    f: Any,
    diffusivity: bool,
) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise ImagingError(
            f"{p.source}: line {int(p.lines[i])}, subject {p.subject_id}, session "
            f"{p.session}, bundle {b!r}: {bad.size} NaN/inf value(s) in the profile "
            f"(first at position {i}); a profile must be complete"
        )
    lo = -math.inf if f is None or f.minimum is None else f.minimum
    hi = math.inf if f is None or f.maximum is None else f.maximum
    out = np.flatnonzero((values < lo) | (values > hi))
    if out.size:
        i = int(out[0])
        raise ImagingError(
            f"{p.source}: line {int(p.lines[i])}, subject {p.subject_id}, session "
            f"{p.session}, bundle {b!r}, position {i}: {metric} = {values[i]:.6g} is "
            f"outside {f.range_text()}; check `metric`, `column` and `scale`"
        )
    med = float(np.median(values))
    if diffusivity and 0 < med < 0.01:
        raise ImagingError(
            f"{p.source}: subject {p.subject_id}, session {p.session}, bundle {b!r}: "
            f"median {metric} {med:.3g} looks like mm²/s; alsprog's {metric} is in "
            "10⁻³ mm²/s: pass scale=1000"
        )
