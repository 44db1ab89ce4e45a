"""Benchmark: alsprog's NonlinearMixedModel (D50 sigmoid, ML) against R's nlme::nlme.

Usage::

    python benchmarks/nlme.py [--quick] [--patients 100 1000 10000] [--repeats N]
                              [--r-timeout 150] [--r-control tight|default]
                              [--forecast-patients 200] [--seed 2026]

For each size, ``--patients`` simulated patients (default 100, 1,000 and 10,000;
``--quick``: 100 only) with 5 visits each, 3 months apart, the first 3-24 months
after onset, on the D50 sigmoid ``frs = 48 / (1 + exp((t - D50_i) / dx_i)) + e`` in
months since onset ``t``: ``(log D50_i, log dx_i) = (3.4 - 0.25 bulbar_i, 2.3 + 0.1
bulbar_i) + b_i``, ``b_i ~ N(0, Psi)`` with SDs 0.3 and 0.25 and correlation 0.4,
noise SD 2, about a third bulbar onset (``onset_site``); the generator of
``tests/models/test_nlme.py``'s ``simulate``, copied here).  The outcome ``frs`` is
continuous, as in ``tests/reference/nlme_sigmoid_data.csv``.  The data go to one CSV
in a temporary folder (17 significant digits) that both tools read, and both fit
``frs ~ onset_site`` (the covariate acts on log D50 and log dx):

* alsprog: ``NonlinearMixedModel("frs ~ onset_site")`` (default ``tol`` 1e-8) on
  the table read back from that CSV, timed in this process as the best of
  ``--repeats`` fits (default 5 up to 100 patients, 3 up to 1,000, then 1; a
  warm-up fit runs first);
* the peer, R's ``nlme`` 3.1 in an ``Rscript`` subprocess: ``nlme(frs ~ 48 / (1 +
  exp(-(exp(lD50) - t) / exp(ldx))), fixed = lD50 + ldx ~ onset_site, random =
  pdSymm(lD50 + ldx ~ 1), groups = ~subject_id, start = c(log(30), 0, log(10), 0),
  method = "ML")`` with the tight ``nlmeControl`` of
  ``tests/reference/nlme_sigmoid_reference.R`` (``--r-control default`` uses
  nlme's defaults, which stop earlier and fail less often).  Its time is
  ``system.time()`` around ``nlme()`` alone inside R (best of the same number of
  repeats; R's start-up, loading nlme and reading the CSV excluded); the wall time
  of the whole subprocess is reported beside it.  ``nlme()`` errors ("maximum
  number of iterations reached", "step halving factor reduced below minimum") are
  caught and reported as a failed fit; a subprocess that runs past
  ``--r-timeout`` seconds is killed and reported as "timed out after N s".

R is a reference tool for this benchmark only, never a dependency of alsprog: when
``Rscript`` or its ``nlme`` package is missing, the R columns say so ("skipped
(...)") and the alsprog rows are still measured.

Reported per size: seconds of each fit, ``ratio_nlme`` = nlme seconds / alsprog
seconds (same run, same machine), the largest absolute difference of the four
fixed effects, the relative difference of the log-likelihoods (|alsprog - nlme| /
|nlme|; ``llf_minus_nlme`` > 0 means alsprog found a higher one), whether each
converged, and the time of ``alsprog.forecast.forecast`` for ``--forecast-patients``
new patients (another seed) from their first 3 months (visits at 0 and 3) to months
6, 9 and 12 with the model fitted at that size (best of 2), with the RMSE at 12
months against their simulated scores as a check.  The machine is shared, so the
1-minute load average is recorded with each row.  Rows go to
``benchmarks/results/nlme.csv``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alsprog.forecast import forecast  # noqa: E402
from alsprog.models import NonlinearMixedModel  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "nlme.csv"
FORMULA = "frs ~ onset_site"
N_VISITS = 5
HISTORY_MONTHS = 3.0
FORECAST_MONTHS = (6.0, 9.0, 12.0)

#: nlme in R, fitted ``reps`` times on the CSV; prints ``key<TAB>value`` lines
#: (base R only, so that nlme is the one package needed).
R_SCRIPT = r"""
suppressMessages(library(nlme))
args <- commandArgs(trailingOnly = TRUE)
reps <- as.integer(args[2])
d <- read.csv(args[1])
d$t <- d$months_since_onset
d$onset_site <- factor(d$onset_site, levels = c("bulbar", "spinal"))
dg <- groupedData(frs ~ t | subject_id, data = d)
ctl <- if (args[3] == "tight") {
  nlmeControl(maxIter = 500, pnlsMaxIter = 100, msMaxIter = 500,
              tolerance = 1e-10, pnlsTol = 1e-7, msTol = 1e-12, minScale = 1e-10)
} else nlmeControl()
sig <- frs ~ 48 / (1 + exp(-(exp(lD50) - t) / exp(ldx)))
out <- function(key, value) cat(key, "\t", paste(value, collapse = ","), "\n", sep = "")
num <- function(x) sprintf("%.17g", x)
out("versions", c(paste(R.version$major, R.version$minor, sep = "."),
                  as.character(packageVersion("nlme"))))
times <- numeric(0)
fit <- NULL
warns <- character(0)
err <- NULL
for (i in seq_len(reps)) {
  st <- system.time(res <- tryCatch(withCallingHandlers(
    nlme(sig, data = dg, fixed = lD50 + ldx ~ onset_site,
         random = pdSymm(lD50 + ldx ~ 1), groups = ~subject_id,
         start = c(log(30), 0, log(10), 0), method = "ML", control = ctl),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")
    }), error = function(e) e))
  times <- c(times, st[["elapsed"]])
  if (inherits(res, "error")) { err <- conditionMessage(res); break }
  fit <- res
}
out("times", num(times))
if (!is.null(err)) out("error", gsub("[\t\n]+", " ", err))
if (length(warns)) out("warnings", gsub("[\t\n,]+", " ", unique(warns)))
if (!is.null(fit)) {
  out("fixef", num(fixef(fit)))
  out("logLik", num(as.numeric(logLik(fit))))
  out("iterations", fit$numIter)
}
"""


def simulate(
    n: int,
    seed: int,
    *,
    beta: tuple[tuple[float, float], tuple[float, float]] = (
        (3.4, -0.25),
        (2.3, 0.1),
    ),
    sd: tuple[float, float] = (0.3, 0.25),
    corr: float = 0.4,
    sigma: float = 2.0,
    n_visits: int = N_VISITS,
    prefix: str = "P",
) -> pd.DataFrame:
    """Patients on the model (``tests/models/test_nlme.py``'s ``simulate``): visits
    every 3 months from a first visit 3-24 months after onset; ``beta`` rows log
    D50, log dx; columns intercept, bulbar onset."""
    rng = np.random.default_rng(seed)
    bulbar = (rng.random(n) < 0.35).astype(float)
    cov = np.array([[1.0, corr], [corr, 1.0]]) * np.outer(sd, sd)
    theta = np.column_stack([np.ones(n), bulbar]) @ np.asarray(beta).T
    theta = theta + rng.multivariate_normal(np.zeros(2), cov, n)
    first = rng.uniform(3.0, 24.0, n)
    months = np.tile(np.arange(n_visits) * 3.0, n)
    sid = np.repeat(np.arange(n), n_visits)
    since = first[sid] + months
    d50, dx = np.exp(theta[sid, 0]), np.exp(theta[sid, 1])
    y = 48.0 / (1.0 + np.exp((since - d50) / dx)) + rng.normal(0, sigma, len(sid))
    return pd.DataFrame(
        {
            "subject_id": [f"{prefix}{i:05d}" for i in sid],
            "months": months,
            "months_since_onset": since,
            "frs": y,
            "onset_site": np.where(bulbar[sid] == 1, "bulbar", "spinal"),
        }
    )


def fit_alsprog(df: pd.DataFrame) -> NonlinearMixedModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NonlinearMixedModel(FORMULA).fit(df)


def time_best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Shortest wall time of ``repeats`` calls of ``fn`` and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def default_repeats(n: int) -> int:
    return 5 if n <= 100 else 3 if n <= 1000 else 1


def check_r() -> tuple[str | None, str]:
    """``(None, versions)`` when Rscript with nlme runs, else ``(reason, "")``."""
    if shutil.which("Rscript") is None:
        return "Rscript not found on PATH", ""
    try:
        res = subprocess.run(
            [
                "Rscript",
                "-e",
                'suppressMessages(library(nlme)); cat(R.version$major, "."'
                ', R.version$minor, " nlme ", as.character(packageVersion("nlme")),'
                ' sep = "")',
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Rscript does not run ({exc})", ""
    if res.returncode != 0:
        return "R package nlme not installed", ""
    return None, f"R {res.stdout.strip()}"


def run_nlme(
    csv: Path, reps: int, control: str, timeout: float, work: Path
) -> dict[str, Any]:
    """nlme's fit in a subprocess: its times, estimates or the reason it has none."""
    script = work / "nlme_bench.R"
    script.write_text(R_SCRIPT)
    cmd = ["Rscript", str(script), str(csv), str(reps), control]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timed out after {timeout:g} s", "wall": float("nan")}
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        tail = " ".join(res.stderr.strip().splitlines()[-2:])
        return {"status": f"Rscript failed: {tail}", "wall": wall}
    vals: dict[str, list[str]] = {}
    for line in res.stdout.splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            vals[key] = value.split(",") if value else []
    out: dict[str, Any] = {
        "wall": wall,
        "warnings": "; ".join(vals.get("warnings", [])),
    }
    times = [float(v) for v in vals.get("times", [])]
    if "error" in vals:
        out["status"] = f"failed: {','.join(vals['error'])}"
        out["seconds_to_error"] = times[-1] if times else float("nan")
        return out
    out["status"] = "converged"
    out["seconds"] = min(times)
    out["fixef"] = np.array([float(v) for v in vals["fixef"]])
    out["llf"] = float(vals["logLik"][0])
    out["iterations"] = int(vals["iterations"][0])
    return out


def time_forecast(
    m: NonlinearMixedModel, n: int, seed: int
) -> tuple[float, float, int]:
    """Best of 2 timings of ``forecast`` for ``n`` new patients from their first 3
    months, and the RMSE at 12 months against their simulated scores."""
    new = simulate(n, seed, prefix="N")
    hist = new[new["months"] <= HISTORY_MONTHS]
    secs, f = time_best(lambda: forecast(m, hist, list(FORECAST_MONTHS), seed=1), 2)
    at = FORECAST_MONTHS[-1]
    merged = f[f["months"] == at].merge(
        new[new["months"] == at], on=["subject_id", "months"]
    )
    rmse = float(np.sqrt(np.mean((merged["mean"] - merged["frs"]) ** 2)))
    return secs, rmse, len(merged)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 patients only")
    ap.add_argument("--patients", type=int, nargs="+", default=None)
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="fits timed per tool (default 5 up to 100 patients, 3 up to 1000, 1)",
    )
    ap.add_argument(
        "--r-timeout",
        type=float,
        default=150.0,
        help="seconds the nlme subprocess may run per size (default 150)",
    )
    ap.add_argument("--r-control", choices=["tight", "default"], default="tight")
    ap.add_argument("--forecast-patients", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args(argv)
    sizes = a.patients or ([100] if a.quick else [100, 1_000, 10_000])

    skip, versions = check_r()
    print(
        f"D50 sigmoid NLME, {FORMULA!r}, {N_VISITS} visits per patient; "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    if skip:
        print(
            f"nlme rows skipped: {skip}. R is a reference tool for this benchmark "
            "only, never a dependency of alsprog; alsprog is still measured."
        )
    else:
        print(f"peer: {versions} via Rscript (control: {a.r_control})")

    fit_alsprog(simulate(60, 1))  # warm-up (imports, first-call overheads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in sizes:
            reps = a.repeats or default_repeats(n)
            csv = work / f"nlme_{n}.csv"
            simulate(n, a.seed + n).to_csv(csv, index=False, float_format="%.17g")
            df = pd.read_csv(csv)
            secs, m = time_best(lambda df=df: fit_alsprog(df), reps)
            row: dict[str, Any] = {
                "patients": n,
                "rows": len(df),
                "repeats": reps,
                "alsprog_s": secs,
                "alsprog_converged": bool(m.converged_),
                "alsprog_iter": int(m.n_iter_),
                "alsprog_llf": float(m.llf_),
            }
            if skip:
                row["nlme_s"] = f"skipped ({skip})"
            else:
                r = run_nlme(csv, reps, a.r_control, a.r_timeout, work)
                row["nlme_wall_s"] = r["wall"]
                if r["status"] == "converged":
                    row["nlme_s"] = r["seconds"]
                    row["nlme_converged"] = True
                    row["nlme_iter"] = r["iterations"]
                    row["nlme_llf"] = r["llf"]
                    row["ratio_nlme"] = r["seconds"] / secs
                    row["max_abs_diff_fixef"] = float(
                        np.max(np.abs(m.fe_params_.to_numpy() - r["fixef"]))
                    )
                    row["rel_diff_llf"] = abs(m.llf_ - r["llf"]) / abs(r["llf"])
                    row["llf_minus_nlme"] = float(m.llf_ - r["llf"])
                else:
                    row["nlme_s"] = r["status"]
                    row["nlme_converged"] = False
                    if "seconds_to_error" in r:
                        row["nlme_s_to_error"] = r["seconds_to_error"]
                row["nlme_warnings"] = r.get("warnings", "")
            fsecs, rmse, nf = time_forecast(m, a.forecast_patients, a.seed + 7 * n + 1)
            row["forecast_patients"] = nf
            row["forecast_s"] = fsecs
            row["forecast_rmse_12"] = rmse
            row["load_1min"] = round(os.getloadavg()[0], 2)
            row["cpus"] = os.cpu_count()
            rows.append(row)
            ratio = row.get("ratio_nlme")
            print(
                f"  {n:>6} patients: alsprog {secs:.3f} s, nlme "
                + (
                    f"{row['nlme_s']:.3f} s, R/alsprog {ratio:.1f}x"
                    if ratio is not None
                    else str(row["nlme_s"])
                ),
                flush=True,
            )

    table = pd.DataFrame(rows)
    show = [
        c
        for c in [
            "patients",
            "rows",
            "repeats",
            "alsprog_s",
            "nlme_s",
            "nlme_wall_s",
            "ratio_nlme",
            "max_abs_diff_fixef",
            "rel_diff_llf",
            "alsprog_converged",
            "nlme_converged",
            "forecast_s",
            "forecast_rmse_12",
            "load_1min",
        ]
        if c in table.columns
    ]
    with pd.option_context(
        "display.width",
        250,
        "display.max_columns",
        30,
        "display.max_colwidth",
        60,
        "display.float_format",
        lambda v: f"{v:.4g}",
    ):
        print(table[show].to_string(index=False))
    print(
        "alsprog_s / nlme_s: best fit time (nlme's from system.time() around nlme() "
        "in R); nlme_wall_s: the whole Rscript run (start-up, CSV read, all repeats); "
        "ratio_nlme = nlme_s / alsprog_s; max_abs_diff_fixef: largest |difference| "
        "of the 4 fixed effects; rel_diff_llf = |llf_alsprog - llf_nlme| / "
        f"|llf_nlme|; forecast_s: forecast of {a.forecast_patients} new patients "
        f"from their first {HISTORY_MONTHS:g} months; forecast_rmse_12: its RMSE "
        "at 12 months; load_1min: 1-minute load average."
    )
    for row in rows:
        if row.get("nlme_warnings"):
            print(f"  nlme warnings at {row['patients']}: {row['nlme_warnings']}")
    from alsprog._io import atomic_path

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(OUT) as tmp_csv:
        table.to_csv(tmp_csv, index=False)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
