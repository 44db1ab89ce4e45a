"""``alsprog features`` and ``classify``: the imaging commands.

Owns: their options and handlers.
Leaves: feature extraction to :mod:`alsprog.imaging`, the classifier and its
cross-validation to :mod:`alsprog.biomarkers`.
"""

from __future__ import annotations

import argparse

from alsprog.cli._options import (
    _out_folder_options,
    _rename_option,
    _seed_option,
)
from alsprog.cli._shared import _progress, _read_long

__all__ = ["add_classify_parser", "add_features_parser", "cmd_classify", "cmd_features"]


def add_features_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog features``: ROI features of NIfTI maps, one row per session."""
    p = sub.add_parser(
        "features",
        help="ROI features of NIfTI maps, one row per session",
        description="Extract regional statistics of every map under a "
        "BIDS-derivatives folder (or listed in a manifest) with a label atlas; write "
        "one row per subject x session, ready for `alsprog validate` and assemble().",
    )
    p.add_argument(
        "--images", required=True, help="BIDS-derivatives folder or manifest CSV/TSV"
    )
    p.add_argument("--atlas", required=True, help="label atlas (.nii/.nii.gz)")
    p.add_argument(
        "--labels",
        default=None,
        help="lookup table (default: the atlas's .tsv); an optional `metrics` column "
        "lists the metrics measured in each region (e.g. 'fa md' for a tract, "
        "'thickness' for cortex; empty: all)",
    )
    p.add_argument(
        "--metrics-by-region",
        nargs="+",
        default=None,
        metavar="REGION=METRICS",
        help="which metrics belong to which regions, over the lookup table, e.g. "
        "'cst_*=fa,md' 'precentral_*=thickness' (regions as in the feature names, or "
        "patterns; default: the lookup table's metrics column, else every metric in "
        "every region)",
    )
    p.add_argument("--out", required=True, help="features table (.csv or .parquet)")
    p.add_argument("--qc", default=None, help="also write the QC table")
    p.add_argument(
        "--stats",
        nargs="+",
        default=["mean"],
        choices=["mean", "median", "std", "count", "volume", "trimmed_mean"],
        help="statistics (mean)",
    )
    p.add_argument("--mask", default=None, help="mask on the atlas grid")
    p.add_argument("--nan-policy", choices=["ignore", "raise"], default="ignore")
    p.add_argument(
        "--resample",
        choices=["nearest", "linear"],
        default=None,
        help="resample images on another grid (default: refuse them)",
    )
    p.add_argument("--n-jobs", type=int, default=1, help="parallel workers (1)")
    p.set_defaults(handler=cmd_features)


def cmd_features(args: argparse.Namespace) -> int:
    from alsprog._io import check_out_file
    from alsprog.data import write_table
    from alsprog.imaging import extract_roi_features

    inputs = {
        "--images": args.images,
        "--atlas": args.atlas,
        "--labels": args.labels,
        "--mask": args.mask,
    }
    check_out_file(args.out, inputs=inputs)
    if args.qc:
        check_out_file(args.qc, inputs={**inputs, "--out": args.out}, what="--qc")
    features, qc = extract_roi_features(
        args.images,
        args.atlas,
        args.labels,
        stats=args.stats,
        mask=args.mask,
        nan_policy=args.nan_policy,
        resample=args.resample,
        metrics_by_region=args.metrics_by_region,
        n_jobs=args.n_jobs,
        progress=_progress(args),
    )
    out = write_table(features, args.out)
    if args.qc:
        write_table(qc, args.qc)
    print(
        f"{len(features)} sessions x {features.shape[1] - 3} features from "
        f"{qc['path'].nunique()} images -> {out}"
    )
    return 0


def add_classify_parser(sub: argparse._SubParsersAction) -> None:
    """``alsprog classify``: a cross-validated ALS-vs-control classifier."""
    from alsprog.biomarkers import DEFAULT_N_PERMUTATIONS  # light: no scikit-learn

    p = sub.add_parser(
        "classify",
        help="cross-validate an ALS-vs-control imaging classifier",
        description="Subject-grouped (or leave-site-out) cross-validation of an "
        "imaging classifier, with in-fold harmonisation, bootstrap CIs and a "
        "permutation p-value.",
    )
    p.add_argument("--table", required=True, help="long-format table (CSV/Parquet)")
    p.add_argument(
        "--features",
        nargs="+",
        default=None,
        help="names or patterns, e.g. 'fa_*' (default: all imaging)",
    )
    p.add_argument(
        "--cv", default="subject", help="subject, site or a number of folds (subject)"
    )
    p.add_argument(
        "--estimator", choices=["logistic", "svm", "rf", "mlp"], default="logistic"
    )
    p.add_argument(
        "--harmonize",
        choices=["combat", "none"],
        default="none",
        help="site harmonisation inside each training fold, as the config's "
        "biomarkers.harmonize (none)",
    )
    p.add_argument("--target", default="group", help="two-class label column (group)")
    p.add_argument(
        "--positive",
        default=None,
        help="the positive class (sensitivity, ROC); default: the ALS label 'als', "
        "case ignored (ALS)",
    )
    p.add_argument(
        "--n-permutations",
        type=int,
        default=DEFAULT_N_PERMUTATIONS,
        help="label permutations for the AUC p-value; the smallest p-value is "
        f"1/(N+1); 0 skips ({DEFAULT_N_PERMUTATIONS})",
    )
    p.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        help="parallel workers for folds and permutations, -1 all cores (1); the "
        "numbers do not depend on it",
    )
    _seed_option(p, "seed of the folds, bootstrap and permutations")
    _rename_option(p)
    _out_folder_options(p)
    p.set_defaults(handler=cmd_classify)


def cmd_classify(args: argparse.Namespace) -> int:
    from alsprog._io import check_out_folder
    from alsprog.biomarkers import ImagingClassifier, evaluate_classifier

    check_out_folder(args.out, inputs={"--table": args.table}, force=args.force)
    table = _read_long(args.table, "--table", args)
    cv = int(args.cv) if args.cv.isdigit() else args.cv
    clf = ImagingClassifier(
        args.estimator,
        features=args.features,
        harmonize=None if args.harmonize == "none" else args.harmonize,
    )
    res = evaluate_classifier(
        table,
        args.target,
        clf=clf,
        cv=cv,
        n_permutations=args.n_permutations,
        seed=args.seed,
        n_jobs=args.n_jobs,
        progress=_progress(args),
        positive=args.positive,
    )
    command = (
        f"alsprog classify --table {args.table} --cv {args.cv} --estimator "
        f"{args.estimator} --n-permutations {args.n_permutations} --seed {args.seed}"
    )  # recorded in the folder's manifest
    res.save(args.out, force=args.force, command=command)
    print(f"seed {args.seed}; results in {args.out}")
    print(
        f"positive class: {res.pos_label!r} (sensitivity: its sessions called "
        f"{res.pos_label!r}; ROC AUC: it scored higher)"
    )
    cols = ["estimate", "ci_lower", "ci_upper"]
    print(res.summary[cols].to_string(float_format="%.3f"))
    print(f"permutation p-value of the ROC AUC: {res.pvalue_text}")
    return 0
