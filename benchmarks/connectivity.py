"""Benchmark: alsprog.imaging extract_connectivity against nilearn's NiftiLabelsMasker.

Usage::

    python benchmarks/connectivity.py [--quick] [--n-sessions 50] [--size 96]
        [--volumes 200] [--regions 100] [--repeats 3] [--distinct N] [--group 10]

The issue's target: alsprog >= 3x nilearn's throughput on 50 sessions of 96³ x 200
volumes; the full-size run on a small machine is::

    nice -n 10 python benchmarks/connectivity.py --repeats 1 --distinct 10

Data: a label atlas of ``--regions`` regions (a Voronoi partition of an ellipsoidal
brain) on a ``size``³ grid and ``--n-sessions`` 4-D BOLD series of ``--volumes``
volumes, float32 (ROI signals with a shared component plus voxel noise), gzipped by
``nibabel.save`` (zlib level 1, as fMRIPrep's ``desc-preproc_bold.nii.gz``), in a
BIDS-derivatives layout with a JSON sidecar (t_r 2 s), in a temporary folder that is
always deleted.  ``--distinct N`` writes only N distinct series and links the other
sessions to them in turn (hard links: each session is still a file of its own, read
and processed in full by every tool; only the disk and the time to write them are
saved: a 96³ x 200 series takes about 20 s to write and 220 MB of disk).  The run
refuses to start when the series would not fit in ``--max-disk-gb`` (25) or the free
disk.

Before timing, the correlation matrices of both tools are compared on the first two
sessions (nilearn given the series as in-memory float64 images so that both compute
in double precision; the run fails above 1e-6) and each tool is warmed up on one
session.  Then the sessions are timed in groups of ``--group``: every tool in turn on
one group (the median of ``--repeats``), then the next group, so that a change in the
machine's load falls on all tools alike; the rows are the sums over the groups:

* ``read only (nibabel)``: ``numpy.asanyarray(nibabel.load(path).dataobj)`` of every
  series (the floor of a nibabel-based reader: stdlib gzip);
* ``inflate only (<inflater>)``: the bytes of every series inflated by alsprog's reader
  (:mod:`alsprog.imaging._gzread`: ISA-L, zlib-ng or zlib, whichever is installed
  first) and dropped (alsprog's floor);
* ``nilearn``: ``NiftiLabelsMasker(atlas, standardize="zscore_sample", detrend=True,
  high_pass=0.008, low_pass=0.1, t_r=2).fit_transform(path)`` per session (its
  default float32 pipeline, one process), then ``ConnectivityMeasure(kind="correlation")``;
* ``alsprog (n_jobs=1)``: ``extract_connectivity(manifest, atlas, n_jobs=1)`` with the
  same cleaning (the headline ratio); ``alsprog (n_jobs=-1)`` (threads) when the
  machine has more than one core; ``alsprog (n_jobs=1, zlib)`` the stdlib inflater
  forced, when a faster one is installed.

A missing nilearn prints ``skipped (not installed)``.  Rows are also written to
``benchmarks/results/connectivity.csv``.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _timing import time_median  # noqa: E402

from alsprog.imaging import _gzread  # noqa: E402
from alsprog.imaging._connectivity import extract_connectivity  # noqa: E402

T_R = 2.0
CLEAN = {"high_pass": 0.008, "low_pass": 0.1, "detrend": True}


def make_data(
    out: Path,
    n_sessions: int,
    size: int,
    n_t: int,
    n_regions: int,
    seed: int,
    distinct: int | None = None,
) -> dict:
    import nibabel as nib

    rng = np.random.default_rng(seed)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    axes = [(np.arange(size) - (size - 1) / 2) / (size / 2)] * 3
    x, y, z = np.meshgrid(*axes, indexing="ij")
    brain = (x / 0.9) ** 2 + (y / 0.95) ** 2 + (z / 0.85) ** 2 <= 1.0
    coords = np.stack([x[brain], y[brain], z[brain]], axis=1)
    centres = coords[rng.choice(len(coords), n_regions, replace=False)]
    nearest = np.empty(len(coords), dtype=np.int64)
    for i in range(0, len(coords), 65536):  # Voronoi cells, in chunks
        d = ((coords[i : i + 65536, None, :] - centres[None]) ** 2).sum(axis=2)
        nearest[i : i + 65536] = d.argmin(axis=1)
    labels = np.zeros((size,) * 3, dtype=np.int16)
    labels[brain] = nearest + 1
    (out / "atlas").mkdir(parents=True)
    atlas = out / "atlas" / "atlas-bench_dseg.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), atlas)
    pd.DataFrame(
        {
            "index": np.arange(1, n_regions + 1),
            "name": [f"r{i:03d}" for i in range(1, n_regions + 1)],
        }
    ).to_csv(out / "atlas" / "atlas-bench_dseg.tsv", sep="\t", index=False)
    root = out / "deriv"
    paths = []
    flat_labels = labels[brain] - 1
    distinct = n_sessions if distinct is None else max(1, min(distinct, n_sessions))
    for s in range(n_sessions):
        sid = f"S{s:04d}"
        func = root / f"sub-{sid}" / "ses-m00" / "func"
        func.mkdir(parents=True)
        (root / f"sub-{sid}" / f"sub-{sid}_sessions.tsv").write_text(
            "session_id\tacq_time\nses-m00\t2020-01-01\n"
        )
        stem = f"sub-{sid}_ses-m00_task-rest_space-bench_desc-preproc_bold"
        path = func / f"{stem}.nii.gz"
        (func / f"{stem}.json").write_text(json.dumps({"RepetitionTime": T_R}))
        paths.append(str(path))
        if s >= distinct:  # a hard link to an earlier series: a file of its own
            os.link(paths[s % distinct], path)
            continue
        shared = rng.normal(size=(n_t, 1))
        roi = rng.normal(size=(n_t, n_regions)) + shared
        data = np.zeros((*labels.shape, n_t), dtype=np.float32)
        vox = 1000.0 + roi[:, flat_labels].T * 5.0
        vox += rng.normal(0.0, 10.0, vox.shape)
        data[brain] = vox
        del vox
        img = nib.Nifti1Image(data, affine)
        img.header.set_xyzt_units("mm", "sec")
        img.header.set_zooms((2.0, 2.0, 2.0, T_R))
        nib.save(img, path)
        del data, img
    return {"atlas": atlas, "root": root, "paths": paths}


def read_only(paths: list[str]) -> None:
    import nibabel as nib

    for p in paths:
        np.asanyarray(nib.load(p).dataobj)


def inflate_only(paths: list[str]) -> None:
    from alsprog.imaging._gzread import FastReader

    for p in paths:
        with open(p, "rb") as fh:
            reader = FastReader(fh, p)
            while reader.read(8 * 2**20):
                pass


def manifest(paths: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject_id": [Path(p).name.split("_")[0][4:] for p in paths],
            "session": "m00",
            "acquisition_date": "2020-01-01",
            "metric": "bold",
            "path": paths,
        }
    )


def run_nilearn(atlas: Path, imgs: list, *, as_float64: bool = False) -> np.ndarray:
    """nilearn's masker per session then ConnectivityMeasure; ``as_float64`` gives
    it the series as in-memory float64 images (its ``dtype="float64"`` option
    still extracts the ROI means in float32)."""
    import nibabel as nib
    from nilearn.connectome import ConnectivityMeasure
    from nilearn.maskers import NiftiLabelsMasker

    if as_float64:
        imgs = [
            nib.Nifti1Image(nib.load(p).get_fdata(), nib.load(p).affine) for p in imgs
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        series = [
            NiftiLabelsMasker(
                str(atlas), standardize="zscore_sample", t_r=T_R, **CLEAN
            ).fit_transform(p)
            for p in imgs
        ]
        return ConnectivityMeasure(kind="correlation").fit_transform(series)


def run_alsprog(
    atlas: Path, source, n_jobs: int, inflater: str | None = None
) -> np.ndarray:
    """``extract_connectivity``; ``inflater`` forces one of ``_gzread.INFLATERS``."""
    saved = _gzread.PREFERRED
    if inflater is not None:
        _gzread.PREFERRED = inflater
    try:
        return extract_connectivity(
            source, atlas, n_jobs=n_jobs, progress=False, **CLEAN
        ).matrices
    finally:
        _gzread.PREFERRED = saved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="4 sessions of 24³ x 60, 1 repeat"
    )
    ap.add_argument("--n-sessions", type=int, default=50)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--volumes", type=int, default=200)
    ap.add_argument("--regions", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--distinct",
        type=int,
        default=None,
        help="distinct series written; the other sessions are hard links to them "
        "(default: every session distinct)",
    )
    ap.add_argument(
        "--group", type=int, default=10, help="sessions per group timed by each tool"
    )
    ap.add_argument("--max-disk-gb", type=float, default=25.0)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "connectivity.csv")
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.n_sessions, args.size, args.volumes, args.regions, args.repeats = (
            4,
            24,
            60,
            20,
            1,
        )
    n = args.n_sessions
    distinct = n if args.distinct is None else max(1, min(args.distinct, n))
    # noise compresses to about a third; a margin on top
    need = 0.4 * distinct * args.size**3 * args.volumes * 4 + 2**26
    tmp_root = Path(tempfile.gettempdir())
    free = shutil.disk_usage(tmp_root).free
    if need > min(args.max_disk_gb * 1e9, free - 2e9):
        print(
            f"FAILED: {distinct} distinct series need about {need / 1e9:.1f} GB in "
            f"{tmp_root} ({free / 1e9:.1f} GB free, --max-disk-gb "
            f"{args.max_disk_gb}); pass --distinct with fewer",
            file=sys.stderr,
        )
        return 1
    inflater = _gzread.PREFERRED
    have_nilearn = importlib.util.find_spec("nilearn") is not None
    tools: list[tuple[str, object]] = [
        ("read only (nibabel)", lambda paths, man: read_only(paths)),
        (f"inflate only ({inflater})", lambda paths, man: inflate_only(paths)),
    ]
    if have_nilearn:
        tools.append(
            ("nilearn NiftiLabelsMasker", lambda paths, man: run_nilearn(atlas, paths))
        )
    tools.append(("alsprog (n_jobs=1)", lambda paths, man: run_alsprog(atlas, man, 1)))
    if (os.cpu_count() or 1) > 1:
        tools.append(
            ("alsprog (n_jobs=-1)", lambda paths, man: run_alsprog(atlas, man, -1))
        )
    if inflater != "zlib":
        tools.append(
            (
                "alsprog (n_jobs=1, zlib)",
                lambda paths, man: run_alsprog(atlas, man, 1, "zlib"),
            )
        )
    totals = dict.fromkeys((name for name, _ in tools), 0.0)
    tmp = Path(tempfile.mkdtemp(prefix="alsprog-bench-connectivity-"))
    try:
        t0 = time.perf_counter()
        data = make_data(
            tmp,
            n,
            args.size,
            args.volumes,
            args.regions,
            args.seed,
            distinct,
        )
        atlas = data["atlas"]
        size_mb = sum(os.path.getsize(p) for p in data["paths"][:distinct]) / 1e6
        print(
            f"wrote {distinct} distinct gzipped float32 series of {args.size}³ x "
            f"{args.volumes} ({size_mb:.0f} MB; {n} sessions, "
            f"{n - distinct} of them hard links) and a {args.regions}-region atlas "
            f"in {time.perf_counter() - t0:.1f} s; alsprog inflates with {inflater}",
            file=sys.stderr,
        )
        max_abs = float("nan")
        first = data["paths"][: min(2, n)]
        ours_first = run_alsprog(atlas, manifest(first), 1)
        if have_nilearn:
            ref = run_nilearn(atlas, first, as_float64=True)
            max_abs = float(np.nanmax(np.abs(ours_first - ref)))
            if not max_abs <= 1e-6:
                print(f"FAILED: correlations differ from nilearn by {max_abs:.3g}")
                return 1
            run_nilearn(atlas, data["paths"][:1])  # warm-up
        inflate_only(data["paths"][:1])
        read_only(data["paths"][:1])
        step = max(1, args.group)
        for g0 in range(0, n, step):
            paths = data["paths"][g0 : g0 + step]
            man = manifest(paths)
            for name, fn in tools:
                totals[name] += time_median(
                    lambda fn=fn, paths=paths, man=man: fn(paths, man),  # type: ignore[misc]
                    args.repeats,
                )
            print(
                f"  sessions {g0 + 1}-{g0 + len(paths)}: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in totals.items()),
                file=sys.stderr,
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t_nil = totals.get("nilearn NiftiLabelsMasker", float("nan"))
    t_ours = totals["alsprog (n_jobs=1)"]
    t_par = totals.get("alsprog (n_jobs=-1)")
    rows = [
        {
            "n_sessions": n,
            "distinct_series": distinct,
            "size": args.size,
            "volumes": args.volumes,
            "regions": args.regions,
            "dtype": "float32 gz",
            "inflater": inflater,
            "repeats": args.repeats,
            "read_only_s": round(totals["read only (nibabel)"], 3),
            "inflate_only_s": round(totals[f"inflate only ({inflater})"], 3),
            "nilearn_s": round(t_nil, 3),
            "alsprog_s": round(t_ours, 3),
            "alsprog_parallel_s": None if t_par is None else round(t_par, 3),
            "alsprog_zlib_s": (
                round(totals["alsprog (n_jobs=1, zlib)"], 3)
                if inflater != "zlib"
                else round(t_ours, 3)
            ),
            "speedup_vs_nilearn": round(t_nil / t_ours, 2),
            "max_abs_diff": max_abs,
        }
    ]
    print(
        f"{n} sessions of {args.size}³ x {args.volumes} float32 .nii.gz "
        f"({distinct} distinct), {args.regions} regions, median of {args.repeats}"
    )
    print(f"{'tool':<30}{'seconds':>10}{'s/session':>11}{'sessions/s':>12}")
    for name, v in totals.items():
        print(f"{name:<30}{v:>10.2f}{v / n:>11.3f}{n / v:>12.2f}")
    if not have_nilearn:
        print(f"{'nilearn NiftiLabelsMasker':<30}{'skipped (not installed)':>22}")
    print(
        f"alsprog/nilearn throughput ratio: {t_nil / t_ours:.2f}x (n_jobs=1)"
        + ("" if t_par is None else f", {t_nil / t_par:.2f}x (n_jobs=-1)")
        + f"; largest difference from nilearn (float64): {max_abs:.2g}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
