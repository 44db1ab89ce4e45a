"""Benchmark: alsprog.imaging extract_connectivity against nilearn's NiftiLabelsMasker.

Usage::

    python benchmarks/connectivity.py [--quick] [--n-sessions 50] [--size 96]
        [--volumes 200] [--regions 100] [--repeats 3]

One synthetic data set is written to a temporary folder: a label atlas of
``--regions`` regions (a Voronoi partition of an ellipsoidal brain) on a ``size``³
grid and ``--n-sessions`` gzipped float32 4-D BOLD series of ``--volumes`` volumes
(ROI signals with a shared component plus voxel noise, written by ``nibabel.save``)
in a BIDS-derivatives layout with a JSON sidecar (t_r 2 s).  Before timing, the
correlation matrices of both tools are compared on the first two sessions (nilearn
given the series as in-memory float64 images so that both compute in double
precision; the run fails above 1e-6).  Then each is warmed up on one session and timed as the median of
repeats over all sessions (the issue's target: alsprog >= 3x nilearn's throughput
on 50 sessions of 96³ x 200 volumes):

* ``read only``: ``numpy.asanyarray(nibabel.load(path).dataobj)`` of every series;
* ``nilearn``: ``NiftiLabelsMasker(atlas, standardize="zscore_sample", detrend=True,
  high_pass=0.008, low_pass=0.1, t_r=2).fit_transform(path)`` per session (its
  default float32 pipeline), then ``ConnectivityMeasure(kind="correlation")``;
* ``alsprog``: ``extract_connectivity(root, atlas, n_jobs=1)`` with the same cleaning,
  and with ``n_jobs=-1`` (threads) when the machine has more than one core.

A missing nilearn prints ``skipped (not installed)``.  Rows are also written to
``benchmarks/results/connectivity.csv``.  A full-size run writes about
``n_sessions x size³ x volumes x 4`` bytes before compression (50 x 96³ x 200: 35 GB
raw) and needs that much temporary disk after gzip's modest gain on noise: size
it to the machine.
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

from alsprog.imaging._connectivity import extract_connectivity  # noqa: E402

T_R = 2.0
CLEAN = {"high_pass": 0.008, "low_pass": 0.1, "detrend": True}


def make_data(
    out: Path, n_sessions: int, size: int, n_t: int, n_regions: int, seed: int
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
    for s in range(n_sessions):
        sid = f"S{s:04d}"
        func = root / f"sub-{sid}" / "ses-m00" / "func"
        func.mkdir(parents=True)
        (root / f"sub-{sid}" / f"sub-{sid}_sessions.tsv").write_text(
            "session_id\tacq_time\nses-m00\t2020-01-01\n"
        )
        shared = rng.normal(size=(n_t, 1))
        roi = rng.normal(size=(n_t, n_regions)) + shared
        data = np.zeros((*labels.shape, n_t), dtype=np.float32)
        vox = 1000.0 + roi[:, flat_labels].T * 5.0
        vox += rng.normal(0.0, 10.0, vox.shape)
        data[brain] = vox
        stem = f"sub-{sid}_ses-m00_task-rest_space-bench_desc-preproc_bold"
        img = nib.Nifti1Image(data, affine)
        img.header.set_xyzt_units("mm", "sec")
        img.header.set_zooms((2.0, 2.0, 2.0, T_R))
        path = func / f"{stem}.nii.gz"
        nib.save(img, path)
        (func / f"{stem}.json").write_text(json.dumps({"RepetitionTime": T_R}))
        paths.append(str(path))
    return {"atlas": atlas, "root": root, "paths": paths}


def read_only(paths: list[str]) -> None:
    import nibabel as nib

    for p in paths:
        np.asanyarray(nib.load(p).dataobj)


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


def run_alsprog(atlas: Path, source, n_jobs: int) -> np.ndarray:
    return extract_connectivity(
        source, atlas, n_jobs=n_jobs, progress=False, **CLEAN
    ).matrices


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
    tmp = Path(tempfile.mkdtemp(prefix="alsprog-bench-connectivity-"))
    try:
        t0 = time.perf_counter()
        data = make_data(
            tmp, args.n_sessions, args.size, args.volumes, args.regions, args.seed
        )
        print(
            f"wrote {args.n_sessions} gzipped float32 series of {args.size}³ x "
            f"{args.volumes} and a {args.regions}-region atlas in "
            f"{time.perf_counter() - t0:.1f} s "
            f"({sum(os.path.getsize(p) for p in data['paths']) / 1e6:.0f} MB)",
            file=sys.stderr,
        )
        n = args.n_sessions
        have_nilearn = importlib.util.find_spec("nilearn") is not None
        max_abs = float("nan")
        first = pd.DataFrame(
            {
                "subject_id": [f"S{s:04d}" for s in range(min(2, n))],
                "session": "m00",
                "acquisition_date": "2020-01-01",
                "metric": "bold",
                "path": data["paths"][: min(2, n)],
            }
        )
        ours_first = run_alsprog(data["atlas"], first, 1)
        if have_nilearn:
            ref = run_nilearn(
                data["atlas"], data["paths"][: min(2, n)], as_float64=True
            )
            max_abs = float(np.nanmax(np.abs(ours_first - ref)))
            if not max_abs <= 1e-6:
                print(f"FAILED: correlations differ from nilearn by {max_abs:.3g}")
                return 1
            run_nilearn(data["atlas"], data["paths"][:1])  # warm-up
        t_read = time_median(lambda: read_only(data["paths"]), args.repeats)
        t_ours = time_median(
            lambda: run_alsprog(data["atlas"], data["root"], 1), args.repeats
        )
        t_par = None
        if (os.cpu_count() or 1) > 1:
            t_par = time_median(
                lambda: run_alsprog(data["atlas"], data["root"], -1), args.repeats
            )
        t_nil = (
            time_median(lambda: run_nilearn(data["atlas"], data["paths"]), args.repeats)
            if have_nilearn
            else float("nan")
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [
        {
            "n_sessions": n,
            "size": args.size,
            "volumes": args.volumes,
            "regions": args.regions,
            "read_only_s": round(t_read, 3),
            "nilearn_s": round(t_nil, 3),
            "alsprog_s": round(t_ours, 3),
            "alsprog_parallel_s": None if t_par is None else round(t_par, 3),
            "speedup_vs_nilearn": round(t_nil / t_ours, 2),
            "max_abs_diff": max_abs,
        }
    ]
    print(f"{'tool':<28}{'seconds':>10}{'sessions/s':>12}")
    print(f"{'read only (nibabel)':<28}{t_read:>10.2f}{n / t_read:>12.2f}")
    if have_nilearn:
        print(f"{'nilearn NiftiLabelsMasker':<28}{t_nil:>10.2f}{n / t_nil:>12.2f}")
    else:
        print(f"{'nilearn NiftiLabelsMasker':<28}{'skipped (not installed)':>22}")
    print(f"{'alsprog (n_jobs=1)':<28}{t_ours:>10.2f}{n / t_ours:>12.2f}")
    if t_par is not None:
        print(f"{'alsprog (n_jobs=-1)':<28}{t_par:>10.2f}{n / t_par:>12.2f}")
    print(
        f"alsprog/nilearn throughput ratio: {t_nil / t_ours:.2f}x; largest difference "
        f"from nilearn (float64): {max_abs:.2g}"
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
