"""FreeSurfer ``.stats`` files as alsprog imaging features.

Owns: :func:`read_freesurfer_stats` (``aseg.stats``-style volume tables and
``?h.aparc*.stats`` surface tables -> ``<metric>_<region>`` features).
Leaves: voxel maps to :mod:`alsprog.imaging._extract`; running FreeSurfer to the user.

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
from pathlib import Path

import pandas as pd

from alsprog.data._dictionary import load_dictionary
from alsprog.errors import ImagingError
from alsprog.imaging._atlas import region_name
from alsprog.imaging._files import read_text

__all__ = ["read_freesurfer_stats"]

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
