"""Benchmark: alsprog's LinearMixedModel against statsmodels MixedLM and lme4::lmer.

Usage::

    python benchmarks/lmm.py [--quick] [--sizes 1000 10000 100000] [--repeats 3]
                             [--cold-repeats 5] [--cold-max 10000]

For each size one ALS-like data set (random intercept + slope, ~5.5 visits per subject,
months 0-24, onset site and age) is fitted by every tool with
``alsfrs_r_total ~ months * onset_site + age_at_onset + (months | subject_id)`` (REML).
The estimates are compared before timing (largest relative difference over fixed
effects, variance components, residual variance and REML criterion; a fixed effect is
scaled by ``max(|estimate|, its standard error)`` so that near-zero effects do not
inflate the figure), then each tool is warmed up and timed as the median of repeats.
lme4 runs in Rscript on a CSV of the same data: "warm" is ``system.time(lmer(...))``
inside R (median of repeats after a warm-up fit).
"Cold" is the first fit in a fresh process, timed from outside as the wall time of the
whole process: ``Rscript`` that loads lme4, reads the CSV with ``read.csv`` and fits
once, against ``python`` that imports pandas and alsprog, reads the same CSV with
``pandas.read_csv`` and fits once (interpreter start-up and exit included for both).
Each tool first runs once untimed (so both find their files in the OS cache and
Python's byte code is compiled, as in an installed package), then the two alternate run
by run, ``--cold-repeats`` times (at least 3), and the medians are
compared (``ratio_cold_lme4`` = alsprog / lme4).  Cold starts are measured up to
``--cold-max`` subjects.  The 1-minute load average is recorded with each row, because
the timings depend on what else the machine is running.
The site case (``--sites``, default 10,000 subjects in 50 sites; ``--sites 0`` skips
it) fits ``alsfrs_r_total ~ months * arm + (1 | site) + (months | subject_id)`` (issue
22: alsprog's time at most 0.3 x lme4's) with both tools warm, after comparing the
estimates, and writes ``benchmarks/results/lmm_sites.csv``.
A missing peer prints ``skipped (not installed)``; statsmodels is skipped above
``--statsmodels-max`` subjects (its fit takes minutes there).  Rows are also written to
``benchmarks/results/lmm.csv``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
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

from alsprog.models import LinearMixedModel  # noqa: E402

FORMULA = "alsfrs_r_total ~ months * onset_site + age_at_onset + (months | subject_id)"
SM_FIXED = "alsfrs_r_total ~ months * onset_site + age_at_onset"

R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE)
reps <- as.integer(args[2])
f <- alsfrs_r_total ~ months * onset_site + age_at_onset + (months | subject_id)
m <- suppressWarnings(lmer(f, d))  # warm-up, also the estimates compared
times <- numeric(reps)
for (i in seq_len(reps)) times[i] <- system.time(suppressWarnings(lmer(f, d)))[["elapsed"]]
vc <- as.matrix(Matrix::bdiag(VarCorr(m)))
cat(jsonlite::toJSON(list(times = times, fixef = as.list(fixef(m)),
    se = unname(sqrt(diag(as.matrix(vcov(m))))), vcov_re = unname(vc),
    sigma2 = sigma(m)^2, criterion = REMLcrit(m)), digits = NA, auto_unbox = TRUE))
"""

SITE_FORMULA = "alsfrs_r_total ~ months * arm + (1 | site) + (months | subject_id)"
R_SITES = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE)
reps <- as.integer(args[2])
f <- alsfrs_r_total ~ months * arm + (1 | site) + (months | subject_id)
m <- suppressWarnings(lmer(f, d))
times <- numeric(reps)
for (i in seq_len(reps)) times[i] <- system.time(suppressWarnings(lmer(f, d)))[["elapsed"]]
cat(jsonlite::toJSON(list(times = times, fixef = as.list(fixef(m)),
    se = unname(sqrt(diag(as.matrix(vcov(m))))), theta = unname(getME(m, "theta")),
    sigma2 = sigma(m)^2, criterion = REMLcrit(m)), digits = NA, auto_unbox = TRUE))
"""

R_COLD = r"""
suppressMessages(library(lme4))
d <- read.csv(commandArgs(trailingOnly = TRUE)[1], stringsAsFactors = TRUE)
m <- suppressWarnings(lmer(alsfrs_r_total ~ months * onset_site + age_at_onset +
                           (months | subject_id), d))
"""

PY_COLD = (
    "import sys, warnings; import pandas as pd; "
    "from alsprog.models import LinearMixedModel; "
    "df = pd.read_csv(sys.argv[1]); warnings.simplefilter('ignore'); "
    f"LinearMixedModel({FORMULA!r}).fit(df)"
)


def make_data(n_subjects: int, seed: int) -> pd.DataFrame:
    """ALS-like long table: 2-9 visits every ~3 months, random intercept and slope."""
    rng = np.random.default_rng(seed)
    n_vis = rng.integers(2, 10, n_subjects)  # mean 5.5
    sid = np.repeat(np.arange(n_subjects), n_vis)
    pos = np.arange(len(sid)) - np.repeat(np.cumsum(n_vis) - n_vis, n_vis)
    months = np.where(pos > 0, pos * 3.0 + rng.uniform(-0.5, 0.5, len(sid)), 0.0)
    site = rng.choice(["bulbar", "spinal", "other"], n_subjects, p=[0.3, 0.65, 0.05])
    age = rng.normal(58.0, 10.0, n_subjects)
    b0 = rng.normal(0.0, 5.0, n_subjects)
    b1 = rng.normal(0.0, 0.6, n_subjects)
    slope = -0.9 + b1[sid] - 0.3 * (site[sid] == "bulbar")
    y = (
        38
        + b0[sid]
        - 0.05 * (age[sid] - 58)
        + slope * months
        + rng.normal(0, 2, len(sid))
    )
    return pd.DataFrame(
        {
            "subject_id": np.char.add("S", np.char.zfill(sid.astype(str), 6)),
            "months": months.round(4),
            # ALSFRS-R totals are whole numbers in 0-48 (every fit checks it)
            "alsfrs_r_total": np.clip(y.round(), 0, 48),
            "onset_site": site[sid],
            "age_at_onset": age[sid].round(2),
        }
    )


def estimates_alsprog(m: LinearMixedModel) -> dict:
    return {
        "fixef": m.fe_params_.to_numpy(),
        "se": m.bse_.to_numpy(),
        "vcov_re": m.cov_re_.to_numpy(),
        "sigma2": m.scale_,
        "criterion": -2 * m.llf_,
    }


def max_rel_diff(a: dict, b: dict) -> float:
    """Largest relative difference; fixed effects scaled by max(|b|, se_b)."""
    fe = np.abs(a["fixef"] - b["fixef"]) / np.maximum(np.abs(b["fixef"]), b["se"])
    vre_scale = np.sqrt(np.outer(np.diag(b["vcov_re"]), np.diag(b["vcov_re"])))
    vre = np.abs(a["vcov_re"] - b["vcov_re"]) / vre_scale
    out = [fe.max(), vre.max(), abs(a["sigma2"] - b["sigma2"]) / b["sigma2"]]
    if b.get("criterion") is not None:
        out.append(abs(a["criterion"] - b["criterion"]) / abs(b["criterion"]))
    return float(max(out))


def fit_alsprog(df: pd.DataFrame) -> LinearMixedModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LinearMixedModel(FORMULA).fit(df)


def fit_statsmodels(df: pd.DataFrame):
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixedlm(
            SM_FIXED, df, groups=df["subject_id"], re_formula="~months"
        ).fit(reml=True, method=["lbfgs"])


def run_lme4(csv: Path, repeats: int, workdir: Path) -> tuple[dict, float]:
    script = workdir / "lme4_bench.R"
    script.write_text(R_SCRIPT)
    out = subprocess.run(
        ["Rscript", str(script), str(csv), str(repeats)],
        check=True,
        capture_output=True,
        text=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    est = {
        "fixef": np.asarray(list(res["fixef"].values()), dtype=float),
        "se": np.asarray(res["se"], dtype=float),
        "vcov_re": np.asarray(res["vcov_re"], dtype=float),
        "sigma2": float(res["sigma2"]),
        "criterion": float(res["criterion"]),
    }
    return est, float(statistics.median(np.atleast_1d(res["times"]).tolist()))


def cold(
    commands: dict[str, list[str]], repeats: int, workdir: Path
) -> dict[str, list[float]]:
    """Wall times of fresh processes, the tools alternating run by run.

    Each command first runs once untimed (files into the OS cache, byte code
    compiled), so neither tool pays a first-ever start the other does not.  Python
    keeps its byte code in ``workdir`` (``PYTHONPYCACHEPREFIX``, overriding a
    ``PYTHONDONTWRITEBYTECODE`` of the environment), as an installed package has it;
    R's packages are byte-compiled when installed.
    """
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONPYCACHEPREFIX": str(workdir / "pycache"),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for cmd in commands.values():
        subprocess.run(cmd, check=True, capture_output=True, env=env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            times[name].append(time.perf_counter() - t0)
    return times


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def make_site_data(n_subjects: int, n_sites: int, seed: int) -> pd.DataFrame:
    """A multi-centre cohort: site intercepts (sd 2), subject intercepts and slopes,
    visits at 0, 3, 6, 9, 12, 18 months with dropout after 3 to 6 visits."""
    rng = np.random.default_rng(seed)
    site = np.arange(n_subjects) % n_sites
    visits = np.array([0.0, 3, 6, 9, 12, 18])
    n_vis = rng.integers(3, 7, n_subjects)
    sid = np.repeat(np.arange(n_subjects), n_vis)
    t = np.concatenate([visits[:k] for k in n_vis])
    arm = sid % 2
    b0 = rng.normal(0, 5, n_subjects)
    b1 = rng.normal(0, 0.4, n_subjects)
    s0 = rng.normal(0, 2, n_sites)
    y = (
        38
        + s0[site[sid]]
        + b0[sid]
        + (-0.9 + 0.2 * arm + b1[sid]) * t
        + rng.normal(0, 2, len(t))
    )
    return pd.DataFrame(
        {
            "subject_id": [f"P{i:05d}" for i in sid],
            "site": [f"S{k:02d}" for k in site[sid]],
            "arm": np.where(arm == 1, "active", "placebo"),
            "months": t,
            "alsfrs_r_total": np.clip(np.round(y), 0, 48),
        }
    )


def site_case(
    n_subjects: int, n_sites: int, seed: int, repeats: int, have_r: bool, work: Path
) -> dict[str, object]:
    """The ``(1 | site) + (months | subject_id)`` row: estimates compared, then timed."""
    df = make_site_data(n_subjects, n_sites, seed)
    csv = work / "lmm_sites.csv"
    df.to_csv(csv, index=False)
    row: dict[str, object] = {"subjects": n_subjects, "sites": n_sites, "rows": len(df)}

    def fit() -> LinearMixedModel:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return LinearMixedModel(SITE_FORMULA).fit(df)

    m = fit()
    row["alsprog_s"] = time_median(fit, repeats)
    row["alsprog_converged"] = m.converged_
    if have_r:
        script = work / "lme4_sites.R"
        script.write_text(R_SITES)
        out = subprocess.run(
            ["Rscript", str(script), str(csv), str(repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
        l4 = json.loads(out.stdout.strip().splitlines()[-1])
        fe = np.array(list(l4["fixef"].values()))
        se = np.array(l4["se"])
        row["diff_fixef"] = float(
            np.max(np.abs(m.fe_params_.to_numpy() - fe) / np.maximum(np.abs(fe), se))
        )
        row["diff_theta"] = float(np.max(np.abs(m.theta_.to_numpy() - l4["theta"])))
        row["llf_minus_lme4"] = (l4["criterion"] + 2 * m.llf_) / 2
        row["lme4_s"] = statistics.median(l4["times"])
        row["ratio_lme4"] = row["alsprog_s"] / row["lme4_s"]
    else:
        row["lme4_s"] = "skipped (not installed)"
    row["load_1min"] = os.getloadavg()[0]
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="1k and 10k subjects, 1 repeat"
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument(
        "--statsmodels-max",
        type=int,
        default=10_000,
        help="largest size statsmodels is run at (default 10000)",
    )
    ap.add_argument(
        "--cold-repeats",
        type=int,
        default=5,
        help="fresh processes per tool for the cold start (at least 3; default 5)",
    )
    ap.add_argument(
        "--cold-max",
        type=int,
        default=10_000,
        help="largest size the cold start is measured at (default 10000)",
    )
    ap.add_argument("--seed", type=int, default=20240501)
    ap.add_argument(
        "--sites",
        type=int,
        nargs=2,
        default=[10_000, 50],
        metavar=("SUBJECTS", "SITES"),
        help="the site x subject case (default 10000 50; 0 0 skips it)",
    )
    args = ap.parse_args(argv)
    sizes = args.sizes or ([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])
    repeats = args.repeats or (1 if args.quick else 3)
    cold_repeats = max(3, args.cold_repeats)
    print(f"load average at start: {_load()}", file=sys.stderr, flush=True)

    have_sm = importlib.util.find_spec("statsmodels") is not None
    have_r = (
        shutil.which("Rscript") is not None
        and subprocess.run(
            ["Rscript", "-e", "library(lme4); library(jsonlite)"], capture_output=True
        ).returncode
        == 0
    )

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in sizes:
            df = make_data(n, args.seed + n)
            csv = work / f"lmm_{n}.csv"
            df.to_csv(csv, index=False)
            row: dict[str, object] = {"subjects": n, "rows": len(df)}
            m = fit_alsprog(df)
            ours = estimates_alsprog(m)
            row["alsprog_s"] = time_median(lambda df=df: fit_alsprog(df), repeats)
            row["alsprog_converged"] = m.converged_
            if have_sm and n <= args.statsmodels_max:
                r = fit_statsmodels(df)
                names = m.fe_params_.index
                sm = {
                    "fixef": r.fe_params[names].to_numpy(),
                    "se": r.bse_fe[names].to_numpy(),
                    "vcov_re": r.cov_re.to_numpy(),
                    "sigma2": r.scale,
                    "criterion": -2 * r.llf,
                }
                row["diff_statsmodels"] = max_rel_diff(ours, sm)
                row["statsmodels_s"] = time_median(
                    lambda df=df: fit_statsmodels(df), max(1, repeats - 1)
                )
                row["ratio_statsmodels"] = row["alsprog_s"] / row["statsmodels_s"]
            else:
                row["statsmodels_s"] = (
                    "skipped (not installed)"
                    if not have_sm
                    else f"skipped (> {args.statsmodels_max})"
                )
            if have_r:
                l4, l4_time = run_lme4(csv, repeats, work)
                row["diff_lme4"] = max_rel_diff(ours, l4)
                row["lme4_s"] = l4_time
                row["ratio_lme4"] = row["alsprog_s"] / l4_time
                row["llf_minus_lme4"] = (l4["criterion"] - ours["criterion"]) / 2
            else:
                row["lme4_s"] = "skipped (not installed)"
            if n <= args.cold_max:
                commands = {"alsprog": [sys.executable, "-c", PY_COLD, str(csv)]}
                if have_r:
                    cold_script = work / "lme4_cold.R"
                    cold_script.write_text(R_COLD)
                    commands["lme4"] = ["Rscript", str(cold_script), str(csv)]
                times = cold(commands, cold_repeats, work)
                for name, ts in times.items():
                    row[f"{name}_cold_s"] = statistics.median(ts)
                    print(
                        f"cold {name} {n}: " + " ".join(f"{t:.3f}" for t in ts),
                        file=sys.stderr,
                        flush=True,
                    )
                if have_r:
                    row["ratio_cold_lme4"] = row["alsprog_cold_s"] / row["lme4_cold_s"]
                else:
                    row["lme4_cold_s"] = "skipped (not installed)"
            row["load_1min"] = os.getloadavg()[0]
            rows.append(row)
            print(f"done: {n} subjects", file=sys.stderr, flush=True)
        site_rows = []
        if args.sites[0] > 0:
            site_rows.append(
                site_case(*args.sites, args.seed, max(3, repeats), have_r, work)
            )
            print("done: site case", file=sys.stderr, flush=True)

    table = pd.DataFrame(rows)
    with pd.option_context(
        "display.width",
        200,
        "display.max_columns",
        30,
        "display.float_format",
        lambda v: f"{v:.4g}",
    ):
        print(table.to_string(index=False))
        if site_rows:
            print("\n(1 | site) + (months | subject_id), REML:")
            print(pd.DataFrame(site_rows).to_string(index=False))
    print(
        "ratio_* = alsprog seconds / peer seconds (warm, median); *_cold_s = median wall "
        f"time of {cold_repeats} fresh processes (start-up, imports, CSV read, one fit, "
        "exit), the tools alternating; ratio_cold_lme4 = alsprog / lme4 cold; diff_* = "
        "largest relative difference of the estimates; llf_minus_lme4 > 0 means "
        "alsprog found a higher REML likelihood; load_1min = 1-minute load average."
    )
    print(f"load average at end: {_load()}", file=sys.stderr)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    from alsprog._io import atomic_path

    with atomic_path(results / "lmm.csv") as tmp_csv:
        table.to_csv(tmp_csv, index=False)
    if site_rows:
        with atomic_path(results / "lmm_sites.csv") as tmp_csv:
            pd.DataFrame(site_rows).to_csv(tmp_csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
