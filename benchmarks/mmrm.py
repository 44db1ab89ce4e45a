"""Benchmark: alsprog's MMRM with Kenward-Roger degrees of freedom against nlme::gls.

Usage::

    python benchmarks/mmrm.py [--quick] [--subjects 1000] [--visits 10]
                              [--repeats 3] [--no-gls]

One simulated trial (two arms, ``--visits`` scheduled visits, dropout: a patient
leaves after visit k with probability 0.04 per visit, so later visits are sparser;
unstructured covariance with visit-increasing variances and correlation 0.5-0.9) is
fitted by alsprog's ``MMRM("chg ~ visit * arm", covariance="unstructured",
ddf="kenward-roger")`` -- the fit, its Kenward-Roger LS means (computed by the fit)
and the final-visit contrast -- and by ``nlme::gls`` with ``corSymm`` + ``varIdent``
by visit (REML) in Rscript on a CSV of the same data.  The estimates (fixed effects,
the covariance matrix, the REML log-likelihood) are compared before timing; alsprog is
timed warm as the median of ``--repeats`` fits, gls once (it takes minutes at the
default size).  The issue-22 target is alsprog <= 1.5 s for 1000 subjects x 10 visits
on 2 cores.  Rows go to ``benchmarks/results/mmrm.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _timing import time_median  # noqa: E402

from alsprog.models import MMRM  # noqa: E402

R_GLS = r"""
suppressMessages(library(nlme))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE)
d$visit <- factor(d$visit, levels = sort(unique(d$visit)))
d$arm <- relevel(d$arm, ref = "placebo")
d$vn <- as.integer(d$visit)
t <- system.time(m <- gls(chg ~ visit * arm, d, method = "REML",
    correlation = corSymm(form = ~ vn | subject_id),
    weights = varIdent(form = ~ 1 | visit)))[["elapsed"]]
full <- names(which.max(table(d$subject_id)))  # a subject seen at every visit
V <- getVarCov(m, individual = full)
cat(jsonlite::toJSON(list(time = t, coef = as.list(coef(m)), logLik = as.numeric(logLik(m)),
    cov = unname(matrix(as.numeric(V), nrow(V)))), digits = NA, auto_unbox = TRUE))
"""


def make_trial(n_subjects: int, n_visits: int, seed: int) -> pd.DataFrame:
    """A two-arm trial with dropout; change from baseline at each visit."""
    rng = np.random.default_rng(seed)
    T = n_visits
    sd = np.linspace(2.0, 5.0, T)
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    corr = 0.5 + 0.4 * 0.8**lag
    np.fill_diagonal(corr, 1.0)
    cov = corr * np.outer(sd, sd)
    arm = np.arange(n_subjects) % 2
    months = 1.5 * (np.arange(T) + 1)
    mean = -0.9 * months[None, :] + 0.25 * arm[:, None] * months[None, :]
    y = mean + rng.multivariate_normal(np.zeros(T), cov, size=n_subjects)
    stay = np.cumprod(rng.uniform(size=(n_subjects, T)) > 0.04, axis=1).astype(bool)
    stay[:, 0] = True
    sid, vis = np.nonzero(stay)
    return pd.DataFrame(
        {
            "subject_id": [f"P{i:05d}" for i in sid],
            "visit": vis + 1,
            "arm": np.where(arm[sid] == 1, "active", "placebo"),
            "chg": y[sid, vis],
        }
    )


def fit_alsprog(df: pd.DataFrame) -> MMRM:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MMRM(
            "chg ~ visit * arm",
            reference="placebo",
            covariance="unstructured",
            ddf="kenward-roger",
        ).fit(df)
        m.contrast()
    return m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="300 subjects, 1 repeat")
    ap.add_argument("--subjects", type=int, default=None)
    ap.add_argument("--visits", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--no-gls", action="store_true", help="skip nlme::gls")
    ap.add_argument("--seed", type=int, default=20261206)
    args = ap.parse_args(argv)
    n = args.subjects or (300 if args.quick else 1000)
    repeats = args.repeats or (1 if args.quick else 3)
    df = make_trial(n, args.visits, args.seed)
    m = fit_alsprog(df)
    row: dict[str, object] = {
        "subjects": n,
        "visits": args.visits,
        "rows": len(df),
        "converged": m.converged_,
    }
    row["alsprog_s"] = time_median(lambda: fit_alsprog(df), repeats)
    c = m.contrast().iloc[0]
    row["kr_df_final"] = float(c["df"])
    have_r = (
        not args.no_gls
        and shutil.which("Rscript") is not None
        and subprocess.run(
            ["Rscript", "-e", "library(nlme); library(jsonlite)"], capture_output=True
        ).returncode
        == 0
    )
    if have_r:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "trial.csv"
            df.to_csv(csv, index=False)
            script = Path(tmp) / "gls.R"
            script.write_text(R_GLS)
            out = subprocess.run(
                ["Rscript", str(script), str(csv)],
                capture_output=True,
                text=True,
                check=True,
            )
        g = json.loads(out.stdout.strip().splitlines()[-1])
        coef = np.array(list(g["coef"].values()))
        ours = m.fe_params_.to_numpy()
        row["diff_coef"] = float(
            np.max(np.abs(ours - coef) / np.maximum(1, np.abs(coef)))
        )
        cov = np.asarray(g["cov"], dtype=float)
        row["diff_cov"] = float(
            np.max(np.abs(m.cov_.to_numpy() - cov) / np.abs(cov).max())
        )
        row["llf_minus_gls"] = float(m.llf_ - g["logLik"])
        row["gls_s"] = float(g["time"])
        row["ratio_gls"] = row["alsprog_s"] / row["gls_s"]
    else:
        row["gls_s"] = "skipped (no R/nlme or --no-gls)"
    row["load_1min"] = os.getloadavg()[0]
    table = pd.DataFrame([row])
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False))
    print(
        "alsprog_s: median warm time of fit + Kenward-Roger LS means + contrast; "
        "gls_s: one nlme::gls REML fit (corSymm + varIdent); ratio_gls = alsprog / "
        "gls; llf_minus_gls > 0: alsprog's REML log-likelihood is higher."
    )
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    from alsprog._io import atomic_path

    with atomic_path(results / "mmrm.csv") as tmp_csv:
        table.to_csv(tmp_csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
