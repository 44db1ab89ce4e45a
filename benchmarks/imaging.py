"""Benchmark: alsprog.imaging.extract_roi_features against nilearn's NiftiLabelsMasker.

Usage::

    python benchmarks/imaging.py [--quick] [--n-images 200] [--size 96] [--repeats 3]

One synthetic data set is written to a temporary folder: a label atlas of ``--regions``
compact regions (a Voronoi partition of an ellipsoidal brain) on a ``size``³ grid and
``--n-images`` gzipped float32 maps (region means plus voxel noise, written by
``nibabel.save``, so compressed as nibabel compresses).  Before timing, the ROI means
of both tools are compared (largest absolute and relative difference over every image
× region; the run fails above 1e-6).  Then each is warmed up on a few images and
timed as the median of repeats:

* ``read only``: ``numpy.asanyarray(nibabel.load(path).dataobj)`` for every image, the
  least any tool that reads every voxel must spend;
* ``nilearn``: ``NiftiLabelsMasker(atlas, strategy="mean").fit_transform(paths)``;
* ``alsprog``: ``extract_roi_features(manifest, atlas, n_jobs=1)``, and with
  ``n_jobs=-1`` (threads) when the machine has more than one core.

nilearn is timed ``--nilearn-repeats`` times (default 1: it takes ~30 s per run).  A
missing nilearn prints ``skipped (not installed)``.  Rows are also written to
``benchmarks/results/imaging.csv``.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
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

from alsprog.imaging import extract_roi_features  # noqa: E402


def make_data(out: Path, n_images: int, size: int, n_regions: int, seed: int) -> dict:
    """Atlas, lookup table, manifest and gzipped maps under ``out``."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    shape = (size, size, size)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -(np.asarray(shape) - 1)
    axes = [(np.arange(n) - (n - 1) / 2) / (n / 2) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    brain = (x / 0.9) ** 2 + (y / 0.95) ** 2 + (z / 0.85) ** 2 <= 1
    centres = rng.uniform(-0.8, 0.8, (n_regions, 3))
    pts = np.stack([x[brain], y[brain], z[brain]], axis=1)
    nearest = np.argmin(((pts[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    atlas = np.zeros(shape, np.int16)
    atlas[brain] = nearest + 1
    atlas_path = out / "atlas_dseg.nii.gz"
    nib.save(nib.Nifti1Image(atlas, affine), atlas_path)
    pd.DataFrame(
        {
            "index": np.arange(1, n_regions + 1),
            "name": [f"r{i:03d}" for i in range(n_regions)],
        }
    ).to_csv(out / "atlas_dseg.tsv", sep="\t", index=False)
    region_mean = rng.uniform(0.2, 0.8, n_regions)
    rows = []
    for i in range(n_images):
        data = np.where(brain, 0.0, 0.0)
        data[brain] = region_mean[nearest] + rng.normal(0, 0.05, n_regions)[nearest]
        data += rng.normal(0, 0.1, shape) * brain
        path = out / f"sub-{i:04d}_ses-1_fa.nii.gz"
        nib.save(nib.Nifti1Image(data.astype(np.float32), affine), path)
        rows.append((f"{i:04d}", "1", "2020-01-01", "fa", str(path)))
    manifest = pd.DataFrame(
        rows, columns=["subject_id", "session", "acquisition_date", "metric", "path"]
    )
    return {
        "atlas": atlas_path,
        "manifest": manifest,
        "paths": manifest["path"].tolist(),
    }


def read_only(paths: list[str]) -> None:
    import nibabel as nib

    for p in paths:
        np.asanyarray(nib.load(p).dataobj)


def run_nilearn(atlas: Path, paths: list[str]) -> np.ndarray:
    from nilearn.maskers import NiftiLabelsMasker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        masker = NiftiLabelsMasker(labels_img=str(atlas), strategy="mean")
        return masker.fit_transform(paths)


def run_alsprog(atlas: Path, manifest: pd.DataFrame, n_jobs: int) -> np.ndarray:
    features, _ = extract_roi_features(manifest, atlas, n_jobs=n_jobs, progress=False)
    return features.drop(
        columns=["subject_id", "session", "acquisition_date"]
    ).to_numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="40 images of 64³, 1 repeat")
    ap.add_argument("--n-images", type=int, default=200)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--regions", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nilearn-repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "imaging.csv")
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.n_images, args.size, args.repeats = 40, 64, 1
    tmp = Path(tempfile.mkdtemp(prefix="alsprog-bench-imaging-"))
    try:
        t0 = time.perf_counter()
        data = make_data(tmp, args.n_images, args.size, args.regions, args.seed)
        print(
            f"wrote {args.n_images} gzipped float32 volumes of {args.size}³ and a "
            f"{args.regions}-region atlas in {time.perf_counter() - t0:.1f} s "
            f"({sum(os.path.getsize(p) for p in data['paths']) / 1e6:.0f} MB)",
            file=sys.stderr,
        )
        have_nilearn = importlib.util.find_spec("nilearn") is not None
        ours = run_alsprog(data["atlas"], data["manifest"], 1)
        max_abs = max_rel = float("nan")
        if have_nilearn:
            ref = run_nilearn(data["atlas"], data["paths"][:20])
            diff = np.abs(ours[:20] - ref)
            max_abs = float(diff.max())
            max_rel = float((diff / np.abs(ref)).max())
            if max_abs > 1e-6:
                print(f"FAILED: ROI means differ from nilearn by {max_abs:.3g}")
                return 1
        # warm-up on a few images (imports, caches)
        read_only(data["paths"][:5])
        run_alsprog(data["atlas"], data["manifest"].iloc[:5], 1)
        t_read = time_median(lambda: read_only(data["paths"]), args.repeats)
        t_ours = time_median(
            lambda: run_alsprog(data["atlas"], data["manifest"], 1), args.repeats
        )
        cores = os.cpu_count() or 1
        t_ours_par = (
            time_median(
                lambda: run_alsprog(data["atlas"], data["manifest"], -1), args.repeats
            )
            if cores > 1
            else float("nan")
        )
        if have_nilearn:
            run_nilearn(data["atlas"], data["paths"][:5])
            t_nil = time_median(
                lambda: run_nilearn(data["atlas"], data["paths"]), args.nilearn_repeats
            )
        else:
            t_nil = float("nan")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    n = args.n_images
    rows = [
        {
            "n_images": n,
            "size": args.size,
            "regions": args.regions,
            "read_only_s": round(t_read, 3),
            "nilearn_s": round(t_nil, 3),
            "alsprog_s": round(t_ours, 3),
            f"alsprog_{cores}jobs_s": round(t_ours_par, 3),
            "speedup_vs_nilearn": round(t_nil / t_ours, 2),
            "alsprog_over_read_only": round(t_ours / t_read, 3),
            "max_abs_diff": max_abs,
            "max_rel_diff": max_rel,
        }
    ]
    print(
        f"\nROI means of {n} gzipped float32 volumes of {args.size}³, {args.regions} regions"
    )
    print(f"{'tool':<28}{'seconds':>10}{'images/s':>10}")
    print(f"{'read only (nibabel)':<28}{t_read:>10.2f}{n / t_read:>10.1f}")
    if have_nilearn:
        print(f"{'nilearn NiftiLabelsMasker':<28}{t_nil:>10.2f}{n / t_nil:>10.1f}")
    else:
        print(f"{'nilearn NiftiLabelsMasker':<28}{'skipped (not installed)':>20}")
    print(f"{'alsprog (n_jobs=1)':<28}{t_ours:>10.2f}{n / t_ours:>10.1f}")
    if cores > 1:
        label = f"alsprog (n_jobs=-1, {cores} cores)"
        print(f"{label:<28}{t_ours_par:>10.2f}{n / t_ours_par:>10.1f}")
    print(
        f"alsprog/nilearn throughput ratio: {t_nil / t_ours:.1f}x; alsprog time / "
        f"read-only time: {t_ours / t_read:.2f}; largest difference from nilearn: "
        f"{max_abs:.2g} absolute, {max_rel:.2g} relative"
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
