"""The ``alsprog`` command line: a thin argparse layer over the public library.

Owns: parsing, printing and exit codes (0 ok, 1 alsprog error or validation problems,
2 usage, 130 interrupted by Ctrl-C, 143 terminated by SIGTERM), and what reaches the
terminal: alsprog's own warnings once each, in its words; other libraries' warnings and
log records to the ``alsprog.third_party`` logger at DEBUG (shown with ``-v``).  No
statistics here: each handler calls the library.  Output paths are checked
(:mod:`alsprog._io`) before any work starts.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from alsprog._random import DEFAULT_SEED
from alsprog._version import __version__
from alsprog.errors import AlsprogError, AlsprogWarning, DataValidationError, Problem

__all__ = ["build_parser", "main"]

logger = logging.getLogger("alsprog")
#: Other libraries' warnings and log records (PyTensor, arviz, pandas, JAX, ...).
third_party_logger = logging.getLogger("alsprog.third_party")


# ------------------------------------------------------------- argument types
class _Parser(argparse.ArgumentParser):
    """argparse with the nearest valid choice suggested on an invalid one."""

    def error(self, message: str):  # type: ignore[override]
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2))
            close = difflib.get_close_matches(m.group(1), choices, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {close[0]!r}?"
        super().error(message)


def _fraction(option: str, *, high_closed: bool = False):
    """An argparse type for a fraction in (0, 1) (or (0, 1]): a whole percentage
    (``25``) is refused with "did you mean 0.25?"; other values go on to the library's
    own check."""
    interval = "(0, 1]" if high_closed else "(0, 1)"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if 1 < v <= 100 and v.is_integer():
            raise argparse.ArgumentTypeError(
                f"{text} is not a fraction in {interval}; did you mean {v / 100:g}?"
            )
        return v

    parse.__name__ = option
    return parse


def _rename_pair(text: str) -> tuple[str, str]:
    """``OLD=NEW`` of ``--rename``."""
    old, sep, new = text.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not OLD=NEW (e.g. patient=subject_id)"
        )
    return old.strip(), new.strip()


def _rename_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rename",
        nargs="+",
        action="extend",
        type=_rename_pair,
        default=None,
        metavar="OLD=NEW",
        help="map your column names to the data dictionary's before checking, e.g. "
        "--rename patient=subject_id visit_month=months",
    )


def _renames(args: argparse.Namespace) -> dict[str, str] | None:
    """``--rename`` as a checked mapping (None when not given)."""
    from alsprog.data._validate import check_rename

    pairs = getattr(args, "rename", None)
    if not pairs:
        return None
    olds = [old for old, _ in pairs]
    again = sorted({o for o in olds if olds.count(o) > 1})
    if again:
        raise ValueError(
            f"`--rename`: {', '.join(map(repr, again))} is mapped more than once."
        )
    return check_rename(dict(pairs), what="`--rename`")


def _seed_option(p: argparse.ArgumentParser, what: str = "random seed") -> None:
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"{what} ({DEFAULT_SEED}; the same seed gives the same numbers)",
    )


def _stage(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress or args.quiet else None


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
    command = (
        f"alsprog simulate --n-patients {args.n_patients} --n-controls "
        f"{args.n_controls} --months {args.months} --seed {args.seed} --format "
        f"{args.format}" + (" --nifti" if args.nifti else "")
    )  # recorded in the folder's manifest
    with atomic_dir(out, command=command, force=args.force) as tmp:
        files = _write_inputs(cohort, tmp, fmt=args.format)
        if args.nifti:
            from alsprog.simulate._nifti import nifti_size

            n_maps, n_bytes = nifti_size(cohort)  # said before anything is written
            _stage(
                args,
                f"writing {n_maps} NIfTI maps (FA, MD and thickness of "
                f"{len(cohort.imaging)} imaging sessions) and an atlas, about "
                f"{n_bytes / 1e6:.0f} MB, into {out / 'derivatives'}",
            )
            write_nifti(
                cohort, tmp / "derivatives", seed=args.seed, progress=_progress(args)
            )
    n_subj = len(cohort.subjects)
    print(
        f"simulated {n_subj} subjects ({args.n_patients} ALS, {args.n_controls} "
        f"controls), {len(cohort.visits)} visits, {len(cohort.imaging)} imaging "
        f"sessions in {time.perf_counter() - t0:.1f} s (seed {args.seed})"
    )
    for f in files:
        print(f"  {out / f.name}")
    if args.nifti:
        written = [p for p in (out / "derivatives").rglob("*") if p.is_file()]
        n_maps = sum(p.name.endswith(".nii.gz") for p in written) - 1  # the atlas
        mb = sum(p.stat().st_size for p in written) / 1e6
        print(
            f"  {out / 'derivatives'} (BIDS derivatives + atlas: {n_maps} NIfTI maps, "
            f"{mb:.1f} MB)"
        )
    return 0


def _columns_line(columns: Sequence[str], limit: int = 30) -> str:
    shown = ", ".join(columns[:limit])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > limit else "")


def _explain_kind(path: str, args: argparse.Namespace, rename) -> None:
    """Print how a failed table was read: the kind (and why) and its columns."""
    from alsprog.data._read import guess_kind, header_columns

    cols = header_columns(path, rename=rename)
    if cols is None:
        return
    if args.kind is None:
        kind, why = guess_kind(cols)
        print(
            f"{path}: read as a {kind} table, guessed from its columns ({why}); "
            "--kind visits|subjects|imaging|long chooses another",
            file=sys.stderr,
        )
    else:
        print(f"{path}: read as a {args.kind} table (--kind)", file=sys.stderr)
    print(f"  columns found: {_columns_line(cols)}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from alsprog.data import assemble
    from alsprog.data._read import read_table

    rename = _renames(args)
    errors: list[DataValidationError] = []
    tables: dict[str, str] = {}
    missing_column = False
    for path in args.files:
        try:
            df, kind = read_table(path, kind=args.kind, rename=rename)
        except DataValidationError as exc:
            errors.append(exc)
            _explain_kind(path, args, rename)
            print(str(exc), file=sys.stderr)
            missing_column |= any(p.rule == "required_column" for p in exc.problem_list)
            continue
        print(f"ok: {path} ({kind}, {len(df)} rows)")
        if kind in ("visits", "subjects", "imaging") and kind not in tables:
            tables[kind] = path
    if not errors and "visits" in tables and "subjects" in tables:
        try:
            assemble(  # its warnings are alsprog's: printed once each by main
                tables["visits"],
                tables["subjects"],
                tables.get("imaging"),
                window_days=args.window_days,
                rename=rename,
            )
            print(
                "ok: tables agree with each other (subjects, visits"
                + (", imaging" if "imaging" in tables else "")
                + ")"
            )
        except DataValidationError as exc:
            errors.append(exc)
            print(str(exc), file=sys.stderr)
    if errors:
        if missing_column:
            print(
                "hint: a column the dictionary requires under another name in your "
                "file? map it: --rename YOURS=subject_id (or [data] rename in a run "
                "config)",
                file=sys.stderr,
            )
        n = sum(len(e.problem_list) for e in errors)
        print(f"alsprog: {n} problem{'s' if n != 1 else ''} found", file=sys.stderr)
        return 1
    return 0


def cmd_assemble(args: argparse.Namespace) -> int:
    from alsprog._io import check_out_file
    from alsprog.data import assemble, write_table

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(
            f"--out {args.out!r} must end in .csv or .parquet (the long table's "
            "format)."
        )
    inputs = {
        "--visits": args.visits,
        "--subjects": args.subjects,
        "--imaging": args.imaging,
    }
    check_out_file(out, inputs=inputs)  # before any work
    rename = _renames(args)
    t0 = time.perf_counter()
    table = assemble(
        args.visits,
        args.subjects,
        args.imaging,
        window_days=args.window_days,
        unmatched=args.unmatched,
        rename=rename,
    )
    write_table(table, out)
    per = table.drop_duplicates("subject_id")
    groups = per["group"].astype(str).value_counts() if "group" in per else None
    who = ""
    if groups is not None:
        who = f" ({groups.get('als', 0)} ALS, {groups.get('control', 0)} controls)"
    img = ""
    if args.imaging is not None:
        n_img = int(table["session"].notna().sum()) if "session" in table else 0
        img = (
            f"; {n_img} imaging sessions joined within {args.window_days:g} days, "
            f"{table.attrs.get('n_unmatched_imaging', 0)} left out"
        )
    print(
        f"assembled {len(table)} visits of {len(per)} subjects{who}{img} in "
        f"{time.perf_counter() - t0:.1f} s -> {out}"
    )
    print(
        "  read by: alsprog forecast --train/--history, backtest --data, classify "
        "--table, power --from-model"
    )
    return 0


def _read_long(
    path: str,
    option: str,
    args: argparse.Namespace,
    *,
    needed: Sequence[str] | None = None,
):
    """The long table a command reads (``--train``, ``--table``...), validated.

    A visits, subjects or imaging table (the inputs of ``alsprog assemble``) is
    refused with the command that builds the long table from them; with ``needed``,
    only when it lacks one of these columns.
    """
    from alsprog.data._read import guess_kind, header_columns, read_table

    rename = _renames(args)
    cols = header_columns(path, rename=rename)
    if cols is not None:
        kind, why = guess_kind(cols)
        lacking = needed is not None and any(c not in cols for c in needed)
        if kind != "long" and (needed is None or lacking):
            raise DataValidationError(
                [
                    Problem(
                        f"{option} takes the long table (one row per subject x visit, "
                        f"the visits joined with their subjects), but this looks like "
                        f"a {kind} table ({why}); build the long table first: "
                        "alsprog assemble --visits VISITS --subjects SUBJECTS "
                        "[--imaging IMAGING] --out table.csv (--rename OLD=NEW maps "
                        "your column names)",
                        rule="table_kind",
                        source=str(path),
                    )
                ],
                source=str(path),
            )
    table, _ = read_table(path, kind="long", rename=rename)
    return table


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
    if result.seed is not None:
        print(f"  seed: {result.seed} (run.seed; every step's seed derives from it)")
    for w in result.warnings:  # alsprog's own, once each (also in run.log)
        print(f"alsprog: warning: {w}", file=sys.stderr)
    if result.library_warnings:
        print(
            f"  {len(result.library_warnings)} warning(s) and log record(s) of other "
            f"libraries: see {result.out / 'run.log'}"
        )


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


#: Forecasters by the config's names (``[forecast] baselines``, ``[models.NAME]``).
_FORECAST_MODELS = (
    "lmm",
    "joint",
    "bayes_linear",
    "bayes_sigmoid",
    "delta_fs",
    "patient_ols",
    "random_forest",
)


def _model_name(text: str) -> str:
    """A forecaster's name; the old hyphenated spelling (``delta-fs``) is read with a
    note (the config and the output tables use ``delta_fs``)."""
    name = text.replace("-", "_")
    if name != text and name in _FORECAST_MODELS:
        print(
            f"alsprog: note: model name {text!r} is now spelled {name!r}, as in the "
            "config and the output tables; the old spelling will stop working in a "
            "later version",
            file=sys.stderr,
        )
    return name


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
    if name in ("bayes_linear", "bayes_sigmoid"):
        return BayesianTrajectoryModel(
            "linear" if name == "bayes_linear" else "sigmoid",
            formula=formula,
            chains=args.chains,
            draws=args.draws,
            tune=args.draws,
            seed=args.seed,
            progress=_progress(args),
        )
    if name == "delta_fs":
        return DeltaFSBaseline(history_months=args.history_months)
    if name == "patient_ols":
        return PatientOLSBaseline(history_months=args.history_months)
    return RandomForestSlope(history_months=args.history_months, random_state=args.seed)


_BASELINES = ("delta_fs", "patient_ols", "random_forest")


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


def cmd_forecast(args: argparse.Namespace) -> int:
    from alsprog._io import atomic_path, check_out_file
    from alsprog.forecast import forecast

    check_out_file(args.out, inputs={"--train": args.train, "--history": args.history})
    train = _read_long(args.train, "--train", args)
    history = _read_long(args.history, "--history", args)
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
        f"{', '.join(f'{t:g}' for t in args.at)} -> {out} (seed {args.seed})"
    )
    logger.info("alsprog forecast: seed %d, model %s -> %s", args.seed, args.model, out)
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
        data = _read_long(args.data, "--data", args)
    else:
        from alsprog.simulate import simulate_cohort

        data = simulate_cohort(args.simulate, seed=args.seed)
    models = {name: _forecast_model(name, args) for name in args.models}
    if args.recalibrate != "none":
        for name in [n for n in args.models if n not in _BASELINES]:
            models[f"{name}_recalibrated"] = _recalibrated(models[name], args)
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
    print(f"seed {args.seed}" + (f"; table in {args.out}" if args.out else ""))
    logger.info("alsprog backtest: seed %d, models %s", args.seed, args.models)
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
            data = _read_long(
                args.from_model,
                "--from-model",
                args,
                needed=("subject_id", args.outcome, args.time),
            )
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


def _global_options(p: argparse.ArgumentParser, *, sub: bool) -> None:
    """``-v``, ``-q``, ``--debug``, ``--no-progress``: before or after the command.

    On a subcommand they default to nothing (``argparse.SUPPRESS``), so that a flag
    given before the command is kept; ``-v`` counts separately and is added up in
    :func:`_parse_args`.
    """
    g = (
        p.add_argument_group("global options (before or after the command)")
        if sub
        else p
    )
    default = argparse.SUPPRESS if sub else None
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        dest="sub_verbose" if sub else "verbose",
        default=default if sub else 0,
        help="log what runs (-v info, with other libraries' warnings; -vv debug)",
    )
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if sub else False,
        help="do not print stage messages",
    )
    g.add_argument(
        "--no-progress",
        action="store_true",
        default=default if sub else False,
        help="never show progress bars",
    )
    g.add_argument(
        "--debug",
        action="store_true",
        default=default if sub else False,
        help="re-raise errors with their traceback",
    )


class _SubParsers(argparse._SubParsersAction):
    """Every subcommand gets the global options in its own --help."""

    def add_parser(self, name, **kwargs):  # type: ignore[no-untyped-def]
        p = super().add_parser(name, **kwargs)
        _global_options(p, sub=True)
        return p


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per task."""
    from alsprog.biomarkers import DEFAULT_N_PERMUTATIONS  # light: no scikit-learn

    parser = _Parser(
        prog="alsprog",
        description="Longitudinal disease-progression modelling in ALS.",
    )
    parser.register("action", "parsers", _SubParsers)
    parser.add_argument("--version", action="version", version=f"alsprog {__version__}")
    _global_options(parser, sub=False)
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
    _seed_option(p)
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
    _rename_option(p)
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser(
        "assemble",
        help="visits + subjects (+ imaging) -> the long table the other commands read",
        description="Check the visits, subjects and (optional) imaging tables together "
        "and write the long table (one row per subject x visit: time axes, ΔFS, "
        "subject columns, imaging joined to the nearest visit) that `alsprog "
        "forecast`, `backtest`, `classify` and `power --from-model` read.",
    )
    p.add_argument("--visits", required=True, help="visits table (CSV/TSV/Parquet)")
    p.add_argument("--subjects", required=True, help="subjects table")
    p.add_argument(
        "--imaging", default=None, help="imaging-features table (`alsprog features`)"
    )
    p.add_argument(
        "--out", required=True, help="the long table to write (.csv or .parquet)"
    )
    p.add_argument(
        "--window-days",
        type=float,
        default=45,
        help="largest scan-to-visit distance when joining imaging, days (45)",
    )
    p.add_argument(
        "--unmatched",
        choices=("warn", "raise"),
        default="warn",
        help="imaging sessions matching no visit: leave them out with a warning, or "
        "stop with an error (warn)",
    )
    _rename_option(p)
    p.set_defaults(handler=cmd_assemble)

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
        type=_fraction("--slowing", high_closed=True),
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
        "--visit-months",
        dest="months",
        type=float,
        nargs="+",
        default=[0, 3, 6, 9, 12],
        help="visit times in months (0 3 6 9 12); the config's design.visit_months",
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
        "--methods",
        dest="method",
        nargs="+",
        default=["edland"],
        choices=("edland", "diggle", "liu_liang"),
        help="formula(s) (edland); the config's design.methods",
    )
    p.add_argument(
        "--power", type=_fraction("--power"), default=0.8, help="target power (0.8)"
    )
    p.add_argument(
        "--alpha", type=_fraction("--alpha"), default=0.05, help="type I error (0.05)"
    )
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
        type=_fraction("--retention", high_closed=True),
        nargs="+",
        default=None,
        help="fraction still observed at each visit, 1 first",
    )
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    _rename_option(p)
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
    p.add_argument(
        "--model",
        type=_model_name,
        choices=_FORECAST_MODELS,
        default="lmm",
        help="(lmm)",
    )
    p.add_argument("--formula", default=None, help="model formula (lmm default)")
    p.add_argument(
        "--event-formula",
        default="delta_fs + onset_site",
        help="joint model: covariates of the death/tracheostomy hazard "
        "(delta_fs + onset_site)",
    )
    p.add_argument(
        "--level", type=_fraction("--level"), default=0.9, help="interval level (0.9)"
    )
    p.add_argument("--history-months", type=float, default=3.0, help="(3)")
    _recalibrate_option(p, "the model")
    p.add_argument("--chains", type=int, default=2, help="Bayesian chains (2)")
    p.add_argument("--draws", type=int, default=500, help="Bayesian draws (500)")
    _seed_option(p)
    _rename_option(p)
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
        type=_model_name,
        choices=_FORECAST_MODELS,
        default=["lmm", "delta_fs", "patient_ols", "random_forest"],
        help="forecasters (lmm delta_fs patient_ols random_forest)",
    )
    p.add_argument("--formula", default=None, help="formula of the lmm/bayes models")
    p.add_argument(
        "--event-formula",
        default="delta_fs + onset_site",
        help="joint model: covariates of the event hazard (delta_fs + onset_site)",
    )
    p.add_argument("--history-months", type=float, default=3.0, help="(3)")
    p.add_argument("--horizons", type=float, nargs="+", default=[6.0, 12.0])
    p.add_argument(
        "--test-fraction",
        type=_fraction("--test-fraction"),
        default=0.2,
        help="fraction of patients held out (0.2)",
    )
    _recalibrate_option(p, "also each non-baseline model (as NAME_recalibrated)")
    p.add_argument(
        "--level", type=_fraction("--level"), default=0.9, help="interval level (0.9)"
    )
    p.add_argument("--chains", type=int, default=2, help="Bayesian chains (2)")
    p.add_argument("--draws", type=int, default=500, help="Bayesian draws (500)")
    _seed_option(p)
    p.add_argument("--out", default=None, help="CSV file for the table")
    _rename_option(p)
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
    _seed_option(p)
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
        default=DEFAULT_N_PERMUTATIONS,
        help=f"classifier label permutations ({DEFAULT_N_PERMUTATIONS})",
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


def _levels(verbosity: int) -> int:
    return (
        logging.WARNING
        if verbosity <= 0
        else (logging.INFO if verbosity == 1 else logging.DEBUG)
    )


class _Shown(logging.Filter):
    """alsprog's records at the chosen level; other libraries' from ``-v`` on."""

    def __init__(self, verbosity: int) -> None:
        super().__init__()
        self.verbosity = verbosity
        self.level = _levels(verbosity)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == third_party_logger.name:
            return self.verbosity >= 1
        return record.levelno >= self.level


class _ToThirdParty(logging.Handler):
    """Other libraries' log records, passed on to ``alsprog.third_party`` at DEBUG."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "alsprog" or record.name.startswith("alsprog."):
            return
        try:
            text = record.getMessage()
        except Exception:  # a library's malformed record: keep its template
            text = str(record.msg)
        third_party_logger.debug("%s %s: %s", record.name, record.levelname, text)


def configure_logging(verbosity: int) -> None:
    """Send alsprog's log to stderr at WARNING, INFO (-v) or DEBUG (-vv).

    Other libraries' records reach it through :func:`_routed` as
    ``alsprog.third_party`` DEBUG records, shown from ``-v`` on.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
    )
    handler.addFilter(_Shown(verbosity))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbosity >= 1 else logging.WARNING)
    logger.propagate = False


def _library_handlers() -> list[tuple[logging.Logger, logging.Handler]]:
    """Other libraries' own stderr/stdout handlers (PyTensor adds one on import)."""
    found: list[tuple[logging.Logger, logging.Handler]] = []
    for name, lg in list(logging.root.manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger) or name.split(".")[0] == "alsprog":
            continue
        for h in list(lg.handlers):
            if type(h) is logging.StreamHandler:  # not files, not test capture
                found.append((lg, h))
    return found


@contextmanager
def _routed(verbosity: int) -> Iterator[None]:
    """What a command prints besides its results, decided in one place.

    alsprog's own warnings (:class:`~alsprog.errors.AlsprogWarning`) are printed once
    each as ``alsprog: warning: <message>``, without a source line; every other
    warning and other libraries' log records go to ``alsprog.third_party`` at DEBUG
    (shown with ``-v``; ``alsprog run`` also keeps them in ``run.log``).
    """
    saved = (logger.handlers[:], logger.level, logger.propagate)
    configure_logging(verbosity)
    root = logging.getLogger()
    forward = _ToThirdParty()
    root.addHandler(forward)
    quieted = _library_handlers()
    for lg, h in quieted:
        lg.removeHandler(h)
    shown: set[str] = set()
    passed: set[tuple[str, str]] = set()

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        text = str(message)
        if issubclass(category, AlsprogWarning):
            if text not in shown:
                shown.add(text)
                print(f"alsprog: warning: {text}", file=sys.stderr, flush=True)
            return
        if (category.__name__, text) not in passed:
            passed.add((category.__name__, text))
            third_party_logger.debug(
                "%s: %s (%s:%s)", category.__name__, text, filename, lineno
            )

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # `show` keeps one of each
            warnings.showwarning = show
            yield
    finally:
        root.removeHandler(forward)
        for lg, h in quieted:
            lg.addHandler(h)
        logger.handlers[:], level, logger.propagate = saved
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


def _subparser(
    parser: argparse.ArgumentParser, command: str | None
) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command:
            return action.choices.get(command)
    return None


def _option_strings(*parsers: argparse.ArgumentParser | None) -> list[str]:
    return [
        o
        for p in parsers
        if p is not None
        for a in p._actions
        for o in a.option_strings
        if o.startswith("--")
    ]


def _parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace:
    """Parse; an unknown option gets the nearest valid one (``--n-job`` ->
    ``--n-jobs``); global flags count wherever they stand."""
    args, extras = parser.parse_known_args(argv)
    sub = _subparser(parser, getattr(args, "command", None))
    if extras:
        hints = []
        names = _option_strings(parser, sub)
        for word in extras:
            if word.startswith("--"):
                close = difflib.get_close_matches(
                    word.split("=")[0], names, n=1, cutoff=0.6
                )
                if close:
                    hints.append(f"{word}: did you mean {close[0]}?")
        msg = f"unrecognized arguments: {' '.join(extras)}"
        (sub or parser).error(msg + ("; " + "; ".join(hints) if hints else ""))
    args.verbose = args.verbose + getattr(args, "sub_verbose", 0)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``alsprog`` command; returns the exit status."""
    from alsprog._io import committed

    parser = build_parser()
    try:
        args = _parse_args(parser, argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    n_before = len(committed)
    term = None
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            term = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with _routed(args.verbose):
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
