"""Finding the images to extract: a BIDS-derivatives folder or a manifest table.

Owns: :func:`find_images` (walk ``sub-<id>/ses-<id>/<datatype>/`` for
``sub-<id>_ses-<id>_..._<metric>.nii[.gz]``, dates from ``sub-<id>_sessions.tsv``) and
:func:`read_manifest` (a table ``subject_id, session, acquisition_date, metric,
path``); both return the same manifest, checked for duplicate subject × session ×
metric.
Leaves: reading the voxels to :mod:`alsprog.imaging._nifti`.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from alsprog.errors import DataWarning, ImagingError
from alsprog.imaging._atlas import region_name
from alsprog.imaging._files import read_text, read_text_table

__all__ = ["MANIFEST_COLUMNS", "find_images", "images_manifest", "read_manifest"]

MANIFEST_COLUMNS = ["subject_id", "session", "acquisition_date", "metric", "path"]

#: BIDS suffixes that are not scalar maps; skipped unless asked for by ``metrics``.
NON_METRIC_SUFFIXES = frozenset({"mask", "dseg", "probseg", "bold", "boldref"})

_FILE = re.compile(
    r"^sub-(?P<sub>[A-Za-z0-9]+)_ses-(?P<ses>[A-Za-z0-9]+)_(?:[^/]*_)?"
    r"(?P<suffix>[A-Za-z0-9]+)\.nii(?:\.gz)?$"
)


def _sessions_dates(subject_dir: Path, sid: str) -> dict[str, pd.Timestamp]:
    path = subject_dir / f"sub-{sid}_sessions.tsv"
    if not path.exists() and not path.is_symlink():
        return {}
    text = read_text(path, "sessions table")
    try:
        df = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many parser error types
        raise ImagingError(f"{path}: cannot be read as TSV ({exc})") from exc
    if "session_id" not in df.columns or "acq_time" not in df.columns:
        raise ImagingError(
            f"{path}: needs columns 'session_id' and 'acq_time'; found {list(df.columns)}"
        )
    out: dict[str, pd.Timestamp] = {}
    for line, (ses, when) in enumerate(
        zip(df["session_id"], df["acq_time"], strict=True), start=2
    ):
        ses = ses.strip().removeprefix("ses-")
        if not when.strip() or when.strip().lower() == "n/a":
            continue
        try:
            out[ses] = pd.Timestamp(when.strip()).normalize().tz_localize(None)
        except (ValueError, TypeError) as exc:
            raise ImagingError(
                f"{path}: line {line}: acq_time {when!r} is not a date/time "
                "(expected YYYY-MM-DD or YYYY-MM-DDThh:mm:ss)"
            ) from exc
    return out


def find_images(root: str | os.PathLike[str], *, metrics: Any = None) -> pd.DataFrame:
    """Manifest of every ``sub-*/ses-*/<datatype>/*.nii[.gz]`` map under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise ImagingError(
            f"{root}: is not a folder (expected a BIDS-derivatives root)"
        )
    wanted = None if metrics is None else {region_name(m) for m in metrics}
    rows = []
    for subject_dir in sorted(root.glob("sub-*")):
        if not subject_dir.is_dir():
            continue
        sid = subject_dir.name.removeprefix("sub-")
        dates = _sessions_dates(subject_dir, sid)
        for path in sorted(subject_dir.glob("ses-*/*/sub-*.nii*")):
            m = _FILE.match(path.name)
            if m is None:
                continue
            ses = path.parent.parent.name.removeprefix("ses-")
            if m["sub"] != sid or m["ses"] != ses:
                raise ImagingError(
                    f"{path}: file name says sub-{m['sub']}_ses-{m['ses']} but it lies "
                    f"in sub-{sid}/ses-{ses}"
                )
            metric = region_name(m["suffix"])
            if wanted is None and metric in NON_METRIC_SUFFIXES:
                continue
            if wanted is not None and metric not in wanted:
                continue
            rows.append((sid, ses, dates.get(ses, pd.NaT), metric, str(path)))
    if not rows:
        what = "" if wanted is None else f" for metrics {sorted(wanted)}"
        raise ImagingError(
            f"{root}: no images{what} named sub-<id>/ses-<id>/<datatype>/"
            "sub-<id>_ses-<id>_..._<metric>.nii[.gz]"
        )
    return _finish(pd.DataFrame(rows, columns=MANIFEST_COLUMNS), str(root))


def read_manifest(manifest: Any) -> pd.DataFrame:
    """Check a manifest table (DataFrame or CSV/TSV path); relative paths are taken
    from the manifest file's folder."""
    if isinstance(manifest, pd.DataFrame):
        df, source, base = manifest.copy(), "manifest table", None
    else:
        path = Path(manifest)
        df = read_text_table(path, "manifest")
        source, base = str(path), path.parent
    need = ["subject_id", "session", "metric", "path"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ImagingError(
            f"{source}: manifest needs columns {MANIFEST_COLUMNS} (acquisition_date "
            f"optional); missing {missing}"
        )
    if "acquisition_date" not in df.columns:
        df["acquisition_date"] = pd.NaT
    out = pd.DataFrame(
        {
            "subject_id": df["subject_id"]
            .astype(str)
            .str.strip()
            .str.removeprefix("sub-"),
            "session": df["session"].astype(str).str.strip().str.removeprefix("ses-"),
            "acquisition_date": df["acquisition_date"],
            "metric": [region_name(m) for m in df["metric"]],
            "path": [
                str(base / p)
                if base is not None and not Path(p).is_absolute()
                else str(p)
                for p in df["path"].astype(str)
            ],
        }
    )
    try:
        out["acquisition_date"] = pd.to_datetime(
            out["acquisition_date"].replace("", None)
        ).dt.normalize()
    except (ValueError, TypeError) as exc:
        raise ImagingError(
            f"{source}: acquisition_date has values that are not dates ({exc})"
        ) from exc
    return _finish(out, source)


def images_manifest(images: Any, *, metrics: Any = None) -> pd.DataFrame:
    """A folder -> :func:`find_images`; a table or table file -> :func:`read_manifest`."""
    if isinstance(images, pd.DataFrame):
        out = read_manifest(images)
    elif isinstance(images, str | os.PathLike):
        if Path(images).is_dir():
            out = find_images(images, metrics=metrics)
        elif not Path(images).exists() and not Path(images).is_symlink():
            raise ImagingError(f"{images}: does not exist")
        else:
            out = read_manifest(images)
    else:
        raise TypeError(
            "`images` must be a BIDS-derivatives folder, a manifest file or a "
            f"DataFrame; got {type(images).__name__}."
        )
    if metrics is not None and not isinstance(images, str | os.PathLike):
        out = out[out["metric"].isin({region_name(m) for m in metrics})]
    return out


def _finish(df: pd.DataFrame, source: str) -> pd.DataFrame:
    key = ["subject_id", "session", "metric"]
    dup = df[df.duplicated(key, keep=False)]
    if not dup.empty:
        lines = [
            f"  sub-{s} ses-{ses} {met}: " + ", ".join(g["path"])
            for (s, ses, met), g in dup.groupby(key, sort=True)
        ]
        raise ImagingError(
            f"{source}: {len(lines)} duplicate subject × session × metric "
            f"(one image each expected; select one, e.g. with `metrics` or a "
            "manifest):\n" + "\n".join(lines)
        )
    dates = df.groupby(["subject_id", "session"])["acquisition_date"].nunique()
    if (dates > 1).any():
        s, ses = dates[dates > 1].index[0]
        raise ImagingError(
            f"{source}: sub-{s} ses-{ses} has different acquisition dates for "
            "different metrics"
        )
    undated = df.loc[df["acquisition_date"].isna(), ["subject_id", "session"]]
    n_undated = len(undated.drop_duplicates())
    if n_undated:
        first = undated.iloc[0]
        warnings.warn(
            f"{source}: {n_undated} session(s) have no acquisition date (first: "
            f"sub-{first['subject_id']} ses-{first['session']}); add acq_time to "
            "sub-<id>_sessions.tsv or acquisition_date to the manifest before "
            "joining to visits",
            DataWarning,
            stacklevel=5,
        )
    return df.sort_values(key, kind="stable").reset_index(drop=True)
