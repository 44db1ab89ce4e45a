"""The ``alsprog`` command line: a thin argparse layer over the public library.

Owns: parsing, printing and exit codes (0 ok, 1 alsprog error or validation problems,
2 usage, 130 interrupted by Ctrl-C, 143 terminated by SIGTERM).  No statistics here:
each handler calls the library.  Output paths are checked (:mod:`alsprog._io`) before
any work starts.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from alsprog._version import __version__
from alsprog.errors import AlsprogError, AlsprogWarning, DataValidationError

__all__ = ["build_parser", "main"]

logger = logging.getLogger("alsprog")


def _stage(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress else None


def _write_inputs(cohort, out: Path, *, fmt: str) -> list[Path]:
    from alsprog.data import write_table

    written = []
    for name in ("subjects", "visits", "imaging", "truth"):
        table = getattr(cohort, name)
        if name == "imaging" and table.empty:
            continue
        written.append(write_table(table, out / f"{name}.{fmt}"))
    return written


def cmd_simulate(args: argparse.Namespace) -> int:
    from alsprog._io import atomic_dir, check_out_folder
    from alsprog.simulate import simulate_cohort, write_nifti

    out = Path(args.out)
    check_out_folder(out, force=args.force)  # before any work
    t0 = time.perf_counter()
    cohort = simulate_cohort(
        args.n_patients, n_controls=args.n_controls, months=args.months, seed=args.seed
    )
    with atomic_dir(out, command="alsprog simulate", force=args.force) as tmp:
        files = _write_inputs(cohort, tmp, fmt=args.format)
        if args.nifti:
            _stage(args, f"writing NIfTI volumes for {len(cohort.imaging)} sessions")
            write_nifti(
                cohort, tmp / "derivatives", seed=args.seed, progress=_progress(args)
            )
    n_subj = len(cohort.subjects)
    print(
        f"simulated {n_subj} subjects ({args.n_patients} ALS, {args.n_controls} "
        f"controls), {len(cohort.visits)} visits, {len(cohort.imaging)} imaging "
        f"sessions in {time.perf_counter() - t0:.1f} s"
    )
    for f in files:
        print(f"  {out / f.name}")
    if args.nifti:
        print(f"  {out / 'derivatives'} (BIDS derivatives + atlas)")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from alsprog.data import assemble
    from alsprog.data._read import read_table

    errors: list[DataValidationError] = []
    tables: dict[str, str] = {}
    for path in args.files:
        try:
            df, kind = read_table(path, kind=args.kind)
        except DataValidationError as exc:
            errors.append(exc)
            print(str(exc), file=sys.stderr)
            continue
        print(f"ok: {path} ({kind}, {len(df)} rows)")
        if kind in ("visits", "subjects", "imaging") and kind not in tables:
            tables[kind] = path
    if not errors and "visits" in tables and "subjects" in tables:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", AlsprogWarning)
                assemble(
                    tables["visits"],
                    tables["subjects"],
                    tables.get("imaging"),
                    window_days=args.window_days,
                )
            for w in caught:
                print(f"warning: {w.message}", file=sys.stderr)
            print(
                "ok: tables agree with each other (subjects, visits"
                + (", imaging" if "imaging" in tables else "")
                + ")"
            )
        except DataValidationError as exc:
            errors.append(exc)
            print(str(exc), file=sys.stderr)
    if errors:
        n = sum(len(e.problem_list) for e in errors)
        print(f"alsprog: {n} problem{'s' if n != 1 else ''} found", file=sys.stderr)
        return 1
    return 0


def _stage_printer(args: argparse.Namespace):
    """An ``on_stage`` callback printing ``[i/n] stage: message`` lines to stderr."""
    seen: set[str] = set()

    def on_stage(i: int, n: int, stage: str, message: str) -> None:
        if stage in seen:
            _stage(args, f"      {message}")
        else:
            seen.add(stage)
            _stage(args, f"[{i}/{n}] {stage}: {message}")

    return on_stage


def _print_run(result, seconds: float) -> None:
    timings = ", ".join(f"{k} {v:.0f}" for k, v in result.stage_seconds.items())
    print(
        f"alsprog: {result.n_figures} figures and {len(result.files)} files in "
        f"{seconds:.0f} s ({timings} s)"
    )
    print(f"  report: {result.report}")
    print(f"  repeat: alsprog run {result.out / 'config.toml'}")
    if result.warnings:
        print(f"  {len(result.warnings)} warning(s): see {result.out / 'run.log'}")


def cmd_run(args: argparse.Namespace) -> int:
    from alsprog.report import check, run

    if args.check:
        config = check(args.config, args.out, force=args.force)
        print(f"ok: {args.config}: no problems ({len(config.models)} models)")
        return 0
    t0 = time.perf_counter()
    result = run(
        args.config,
        args.out,
        progress=_progress(args),
        on_stage=_stage_printer(args),
        force=args.force,
    )
    _print_run(result, time.perf_counter() - t0)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from alsprog.report import run_demo

    t0 = time.perf_counter()
    result = run_demo(
        args.out,
        n_patients=args.n_patients,
        n_controls=args.n_controls,
        seed=args.seed,
        chains=args.chains,
        draws=args.draws,
        n_sims=args.n_sims,
        n_permutations=args.n_permutations,
        n_jobs=args.n_jobs,
        progress=_progress(args),
        on_stage=_stage_printer(args),
        force=args.force,
    )
    _print_run(result, time.perf_counter() - t0)
    return 0


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


def cmd_classify(args: argparse.Namespace) -> int:
    from alsprog._io import check_out_folder
    from alsprog.biomarkers import ImagingClassifier, evaluate_classifier
    from alsprog.data._read import read_table

    check_out_folder(args.out, inputs={"--table": args.table}, force=args.force)
    table, _ = read_table(args.table)
    cv = int(args.cv) if args.cv.isdigit() else args.cv
    clf = ImagingClassifier(
        args.estimator, features=args.features, harmonize=args.harmonize
    )
    res = evaluate_classifier(
        table,
        clf=clf,
        cv=cv,
        n_permutations=args.n_permutations,
        seed=args.seed,
        n_jobs=args.n_jobs,
        progress=_progress(args),
    )
    res.save(args.out, force=args.force)
    print(res.summary.to_string(float_format="%.3f"))
    print(f"permutation p = {res.permutation_pvalue}")
    return 0


_FORECAST_MODELS = (
    "lmm",
    "joint",
    "bayes-linear",
    "bayes-sigmoid",
    "delta-fs",
    "patient-ols",
    "random-forest",
)
_LMM_FORMULA = (
    "alsfrs_r_total ~ months * (delta_fs + onset_site) + (months | subject_id)"
)


def _forecast_model(name: str, args: argparse.Namespace):
    """An unfitted forecaster from its command-line name (configuration only)."""
    from alsprog.forecast import DeltaFSBaseline, PatientOLSBaseline, RandomForestSlope
    from alsprog.models import BayesianTrajectoryModel, JointModel, LinearMixedModel

    formula = getattr(args, "formula", None)
    if name == "lmm":
        return LinearMixedModel(formula or _LMM_FORMULA)
    if name == "joint":
        return JointModel(formula or _LMM_FORMULA, event_formula=args.event_formula)
    if name in ("bayes-linear", "bayes-sigmoid"):
        kind = name.split("-")[1]
        return BayesianTrajectoryModel(
            kind,
            formula=formula,
            chains=args.chains,
            draws=args.draws,
            tune=args.draws,
            seed=args.seed,
            progress=_progress(args),
        )
    if name == "delta-fs":
        return DeltaFSBaseline(history_months=args.history_months)
    if name == "patient-ols":
        return PatientOLSBaseline(history_months=args.history_months)
    return RandomForestSlope(history_months=args.history_months, random_state=args.seed)


_BASELINES = ("delta-fs", "patient-ols", "random-forest")


def _recalibrate_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--recalibrate",
        choices=("none", "band", "shift"),
        default="none",
        help=f"recalibrate {what} on the training patients' own errors "
        "(CalibratedForecaster): 'band' keeps the model's centre, 'shift' also "
        "moves it (none)",
    )


def _recalibrated(model, args: argparse.Namespace):
    """``model`` wrapped in CalibratedForecaster per ``--recalibrate`` (band/shift)."""
    from alsprog.forecast import CalibratedForecaster

    return CalibratedForecaster(
        model, history_months=args.history_months, shift=args.recalibrate == "shift"
    )


def _read_long(path: str):
    from alsprog.data import read_table

    table, _ = read_table(path, kind="long")
    return table


def cmd_forecast(args: argparse.Namespace) -> int:
    from alsprog._io import atomic_path, check_out_file
    from alsprog.forecast import forecast

    check_out_file(args.out, inputs={"--train": args.train, "--history": args.history})
    train = _read_long(args.train)
    history = _read_long(args.history)
    _stage(args, f"fitting {args.model} on {train['subject_id'].nunique()} patients")
    model = _forecast_model(args.model, args)
    if args.recalibrate != "none":
        model = _recalibrated(model, args)
    model = model.fit(train)
    f = forecast(model, history, args.at, level=args.level, seed=args.seed)
    out = Path(args.out)
    with atomic_path(out) as tmp:
        f.to_csv(tmp, index=False)
    print(
        f"{len(f)} forecasts for {f['subject_id'].nunique()} patients at months "
        f"{', '.join(f'{t:g}' for t in args.at)} -> {out}"
    )
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from alsprog._io import atomic_path, check_out_file
    from alsprog.forecast import backtest

    if (args.data is None) == (args.simulate is None):
        print(
            "alsprog: error: give exactly one of --data or --simulate", file=sys.stderr
        )
        return 2
    if args.out:
        check_out_file(args.out, inputs={"--data": args.data})
    if args.data is not None:
        data = _read_long(args.data)
    else:
        from alsprog.simulate import simulate_cohort

        data = simulate_cohort(args.simulate, seed=args.seed)
    models = {name: _forecast_model(name, args) for name in args.models}
    if args.recalibrate != "none":
        for name in [n for n in args.models if n not in _BASELINES]:
            models[f"{name}-recalibrated"] = _recalibrated(models[name], args)
    res = backtest(
        data,
        models,
        history_months=args.history_months,
        horizons=args.horizons,
        test_fraction=args.test_fraction,
        level=args.level,
        seed=args.seed,
        progress=_progress(args),
    )
    if args.out:
        with atomic_path(Path(args.out)) as tmp:
            res.to_csv(tmp, index=False)
    cols = ["model", "horizon", "n", "rmse", "bias", "coverage", "crps", "slope_rmsd"]
    print(res[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    from alsprog.design import TrialDesign

    common = dict(
        alpha=args.alpha,
        power=args.power,
        allocation_ratio=args.allocation_ratio,
        retention=None if args.retention is None else tuple(args.retention),
    )
    if args.from_model:
        from alsprog.data._read import read_table
        from alsprog.errors import SavedModelError
        from alsprog.models import LinearMixedModel
        from alsprog.models._file_kind import sniff_file

        kind = sniff_file(args.from_model)  # from the first bytes, not the suffix
        if kind.kind == "zip":  # a LinearMixedModel.save() file, checked whole
            model = LinearMixedModel.load(args.from_model)
            formula = model.formula
        elif kind.kind not in ("text", "parquet", "gzip", "missing", "not_file"):
            raise SavedModelError(
                f"{args.from_model}: it is {kind.description}; --from-model takes a "
                "mixed model saved by LinearMixedModel.save (.npz) or a long-format "
                "table (.csv, .tsv, .parquet)."
            )
        else:  # a historical table: fit the random-slope model to it
            data, _ = read_table(args.from_model)
            formula = f"{args.outcome} ~ {args.time} + ({args.time} | subject_id)"
            model = LinearMixedModel(formula, time=args.time).fit(data)
        d = TrialDesign.from_model(model, args.months, time=args.time, **common)
        args.mean_slope = d.mean_slope
        print(
            f"from {args.from_model}: {formula} on {model.n_groups_} subjects: "
            f"mean slope {d.mean_slope:.4g}, sig2_int {d.sig2_int:.4g}, sig2_slope "
            f"{d.sig2_slope:.4g}, cov {d.cov_int_slope:.4g}, sig2_e {d.sig2_e:.4g}"
        )
    else:
        d = TrialDesign(
            visit_months=tuple(args.months),
            mean_slope=args.mean_slope,
            sig2_int=args.sig2_int,
            sig2_slope=args.sig2_slope,
            cov_int_slope=args.cov_int_slope,
            sig2_e=args.sig2_e,
            **common,
        )
    table = d.sample_size_table(
        args.slowing, methods=args.method, alternative=args.alternative
    )
    if args.csv:
        print(table.to_csv(index=False), end="")
        return 0
    print(
        f"sample size per arm for slowing a mean slope of {args.mean_slope:g} "
        f"points/month; visits at months {', '.join(f'{m:g}' for m in args.months)}; "
        f"power {args.power:g}, alpha {args.alpha:g} ({args.alternative})"
    )
    shown = table.assign(
        slowing=(table["slowing"] * 100).map(lambda v: f"{v:g}%"),
        delta=table["delta"].map(lambda v: f"{v:.4g}"),
        n_per_arm=table["n_per_arm"].map(lambda v: f"{v:.2f}"),
    )[["method", "slowing", "delta", "n_per_arm", "n_per_arm_ceil", "n_total_ceil"]]
    print(shown.to_string(index=False))
    return 0


def _out_folder_options(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--out`` (a folder) and ``--force``, worded alike for every command."""
    p.add_argument(
        "--out",
        required=default is None,
        default=None,
        help="output folder: new, empty or an earlier alsprog result (only alsprog's "
        "files are replaced)" + (f"; default: {default}" if default else ""),
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="also write into a non-empty folder alsprog did not write; its files are "
        "never deleted or overwritten (a name clash is refused)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per task."""
    parser = argparse.ArgumentParser(
        prog="alsprog",
        description="Longitudinal disease-progression modelling in ALS.",
    )
    parser.add_argument("--version", action="version", version=f"alsprog {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log what runs (-v info, -vv debug)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="never show progress bars"
    )
    parser.add_argument(
        "--debug", action="store_true", help="re-raise errors with their traceback"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="do not print stage messages"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "simulate",
        help="simulate a synthetic ALS cohort",
        description="Simulate a realistic synthetic ALS cohort and write "
        "its subjects, visits, imaging and truth tables.",
    )
    _out_folder_options(p)
    p.add_argument("--n-patients", type=int, default=200, help="ALS patients (200)")
    p.add_argument("--n-controls", type=int, default=0, help="healthy controls (0)")
    p.add_argument("--months", type=int, default=18, help="follow-up months (18)")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument(
        "--nifti",
        action="store_true",
        help="also write NIfTI feature maps and an atlas (BIDS derivatives)",
    )
    p.add_argument(
        "--format", choices=("csv", "parquet"), default="csv", help="table format (csv)"
    )
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser(
        "validate",
        help="check tables against the data dictionary",
        description="Check visits, subjects, imaging or long-format "
        "tables against the data dictionary; given a visits and a "
        "subjects table, also check them against each other. Prints "
        "every problem; exit status 1 if there is any.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="CSV/TSV or Parquet files")
    p.add_argument(
        "--kind",
        choices=("visits", "subjects", "imaging", "long"),
        default=None,
        help="table kind (guessed from the columns)",
    )
    p.add_argument(
        "--window-days",
        type=float,
        default=45,
        help="imaging-to-visit matching window in days (45)",
    )
    p.set_defaults(handler=cmd_validate)

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
        "--labels", default=None, help="lookup table (default: the atlas's .tsv)"
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
    p.add_argument("--estimator", choices=["logistic", "svm", "rf"], default="logistic")
    p.add_argument("--harmonize", choices=["combat"], default=None)
    p.add_argument("--n-permutations", type=int, default=1000)
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--seed", type=int, default=None)
    _out_folder_options(p)
    p.set_defaults(handler=cmd_classify)

    p = sub.add_parser(
        "power",
        help="sample size for slowing ALSFRS-R decline",
        description="Patients per arm to detect a slowing of the mean ALSFRS-R slope "
        "with a random-intercept-and-slope mixed model (Diggle 2002, Liu & Liang "
        "1997, Edland 2009; as R's longpower).",
    )
    p.add_argument(
        "--from-model",
        default=None,
        metavar="FILE",
        help="a model saved by LinearMixedModel.save, or a historical long-format "
        "table (a random-slope mixed model is fitted to it): variance components "
        "and mean slope",
    )
    p.add_argument(
        "--outcome", default="alsfrs_r_total", help="outcome for --from-model"
    )
    p.add_argument("--time", default="months", help="time column (months)")
    p.add_argument(
        "--slowing",
        type=float,
        nargs="+",
        required=True,
        help="fractional slowing(s), e.g. 0.25 0.3 0.5",
    )
    p.add_argument(
        "--mean-slope",
        type=float,
        default=-0.9,
        help="control-arm mean slope, points/month (-0.9)",
    )
    p.add_argument(
        "--months",
        type=float,
        nargs="+",
        default=[0, 3, 6, 9, 12],
        help="visit times in months (0 3 6 9 12)",
    )
    p.add_argument(
        "--sig2-int",
        type=float,
        default=0.0,
        help="random-intercept variance (0; cancels without attrition)",
    )
    p.add_argument(
        "--sig2-slope",
        type=float,
        default=0.36,
        help="random-slope variance (0.36 = SD 0.6)",
    )
    p.add_argument(
        "--cov-int-slope",
        type=float,
        default=0.0,
        help="intercept-slope covariance (0)",
    )
    p.add_argument("--sig2-e", type=float, default=4.0, help="residual variance (4)")
    p.add_argument(
        "--method",
        nargs="+",
        default=["edland"],
        choices=("edland", "diggle", "liu_liang"),
        help="formula(s) (edland)",
    )
    p.add_argument("--power", type=float, default=0.8, help="target power (0.8)")
    p.add_argument("--alpha", type=float, default=0.05, help="type I error (0.05)")
    p.add_argument(
        "--alternative", choices=("two-sided", "one-sided"), default="two-sided"
    )
    p.add_argument(
        "--allocation-ratio",
        type=float,
        default=1.0,
        help="treatment:control allocation (1)",
    )
    p.add_argument(
        "--retention",
        type=float,
        nargs="+",
        default=None,
        help="fraction still observed at each visit, 1 first",
    )
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.set_defaults(handler=cmd_power)

    p = sub.add_parser(
        "forecast",
        help="forecast new patients' ALSFRS-R from their visits so far",
        description="Fit a model on the training table's patients, then forecast the "
        "patients in the history table at the given months since their first visit.",
    )
    p.add_argument("--train", required=True, help="long table of training patients")
    p.add_argument("--history", required=True, help="long table: visits so far")
    p.add_argument(
        "--at", type=float, nargs="+", required=True, help="months to forecast"
    )
    p.add_argument("--out", required=True, help="CSV file for the forecasts")
    p.add_argument("--model", choices=_FORECAST_MODELS, default="lmm", help="(lmm)")
    p.add_argument("--formula", default=None, help="model formula (lmm default)")
    p.add_argument(
        "--event-formula",
        default="delta_fs + onset_site",
        help="joint model: covariates of the death/tracheostomy hazard "
        "(delta_fs + onset_site)",
    )
    p.add_argument("--level", type=float, default=0.9, help="interval level (0.9)")
    p.add_argument("--history-months", type=float, default=3.0, help="(3)")
    _recalibrate_option(p, "the model")
    p.add_argument("--chains", type=int, default=2, help="Bayesian chains (2)")
    p.add_argument("--draws", type=int, default=500, help="Bayesian draws (500)")
    p.add_argument("--seed", type=int, default=1, help="random seed (1)")
    p.set_defaults(handler=cmd_forecast)

    p = sub.add_parser(
        "backtest",
        help="score forecasters on held-out patients",
        description="Split patients, fit each model on the training part, forecast "
        "the others from their first months and score them (RMSE, coverage, CRPS, "
        "DREAM slope RMSD).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", default=None, help="assembled long table")
    src.add_argument(
        "--simulate", type=int, default=None, metavar="N", help="simulate N patients"
    )
    p.add_argument(
        "--models",
        nargs="+",
        choices=_FORECAST_MODELS,
        default=["lmm", "delta-fs", "patient-ols", "random-forest"],
    )
    p.add_argument("--formula", default=None, help="formula of the lmm/bayes models")
    p.add_argument(
        "--event-formula",
        default="delta_fs + onset_site",
        help="joint model: covariates of the event hazard (delta_fs + onset_site)",
    )
    p.add_argument("--history-months", type=float, default=3.0, help="(3)")
    p.add_argument("--horizons", type=float, nargs="+", default=[6.0, 12.0])
    p.add_argument("--test-fraction", type=float, default=0.2, help="(0.2)")
    _recalibrate_option(p, "also each non-baseline model (as NAME-recalibrated)")
    p.add_argument("--level", type=float, default=0.9, help="interval level (0.9)")
    p.add_argument("--chains", type=int, default=2, help="Bayesian chains (2)")
    p.add_argument("--draws", type=int, default=500, help="Bayesian draws (500)")
    p.add_argument("--seed", type=int, default=1, help="random seed (1)")
    p.add_argument("--out", default=None, help="CSV file for the table")
    p.set_defaults(handler=cmd_backtest)

    p = sub.add_parser(
        "demo",
        help="run the main job on the embedded synthetic cohort",
        description="Simulate the embedded synthetic cohort (with NIfTI "
        "volumes) and run the alsprog pipeline on it.",
    )
    _out_folder_options(p)
    p.add_argument("--n-patients", type=int, default=200, help="ALS patients (200)")
    p.add_argument("--n-controls", type=int, default=60, help="healthy controls (60)")
    p.add_argument("--seed", type=int, default=2026, help="random seed (2026)")
    p.add_argument("--chains", type=int, default=2, help="Bayesian chains (2)")
    p.add_argument(
        "--draws", type=int, default=500, help="Bayesian draws and tuning steps (500)"
    )
    p.add_argument(
        "--n-sims", type=int, default=200, help="simulated trials per slowing (200)"
    )
    p.add_argument(
        "--n-permutations",
        type=int,
        default=30,
        help="classifier label permutations (30)",
    )
    p.add_argument("--n-jobs", type=int, default=-1, help="parallel workers (-1: all)")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser(
        "run",
        help="the whole analysis of your own data, from a TOML config",
        description="Check every input first (all problems listed before anything "
        "is fitted), then extract imaging features, assemble the long table, fit the "
        "models, forecast and backtest, size a trial, evaluate imaging biomarkers and "
        "write tables, figures and a self-contained report.html into one folder. "
        "See the README's config reference.",
    )
    p.add_argument("config", metavar="CONFIG.toml", help="run configuration")
    _out_folder_options(p, default="the config's run.out")
    p.add_argument(
        "--check",
        action="store_true",
        help="only check the config and its inputs; write nothing",
    )
    p.set_defaults(handler=cmd_run)
    return parser


def configure_logging(verbosity: int) -> None:
    """Send alsprog's log to stderr at WARNING, INFO (-v) or DEBUG (-vv)."""
    level = (
        logging.WARNING
        if verbosity <= 0
        else (logging.INFO if verbosity == 1 else logging.DEBUG)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
    )
    logger.handlers[:] = [handler]
    logger.setLevel(level)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that temp folders are cleaned up."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


def _interrupted(
    args: argparse.Namespace, exc: KeyboardInterrupt, n_before: int
) -> int:
    """One line on stderr for Ctrl-C / SIGTERM; exit status 130 / 143."""
    from alsprog._io import committed

    what = "terminated" if isinstance(exc, _Terminated) else "interrupted"
    written = committed[n_before:]
    if written:
        note = "after writing " + ", ".join(str(p) for p in written)
    else:
        out = getattr(args, "out", None)
        note = "nothing was written" + (f" to {out}" if out else "")
    print(f"alsprog: {what}; {note}", file=sys.stderr, flush=True)
    return 143 if isinstance(exc, _Terminated) else 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``alsprog`` command; returns the exit status."""
    from alsprog._io import committed

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    configure_logging(args.verbose)
    n_before = len(committed)
    term = None
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            term = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        return _interrupted(args, exc, n_before)
    except AlsprogError as exc:
        if args.debug:
            raise
        print(f"alsprog: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as exc:
        if args.debug:
            raise
        print(f"alsprog: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if term is not None:
            signal.signal(signal.SIGTERM, term)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
