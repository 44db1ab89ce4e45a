"""Trial design table: patients per arm for 80 % power, by endpoint and trial source.

Run: ``python benchmarks/endpoints.py [--quick] [--n-sims N] [--mmrm-sims N]
[--no-mmrm]``

The closing-note table of issue 23.  A 12-month trial with visits every 3 months,
a treatment that slows progression by 25 %, without and with a survival effect
(hazard ratio 1 and 0.8); two-sided alpha 0.05, 80 % power.  For each endpoint
(slope, cafs, win_ratio, survival, and mmrm last: it fits an MMRM per trial) the
patients per arm are found by :func:`alsprog.design.simulated_sample_size` (trials
simulated at four sizes, a probit fit of power in sqrt(n)), with the type I error
(trials with neither effect, at the size found) and its Monte Carlo SE, from two
sources of trials:

- ``course``: alsprog's nonlinear disease-course simulator (D50 sigmoid, deaths
  rising with progression, informative dropout, missed visits);
- ``historical``: placebo-like patients: a simulated cohort written as a PRO-ACT
  export, read back by :func:`alsprog.data.read_proact`, assembled, and its
  ``placebo`` arm (half the patients, randomised with no effect) put on the visit
  grid by :meth:`alsprog.design.HistoricalCohort.from_table`; trials resample them
  with their own visits, survival and dropout.

An endpoint that needs more than ``--n-max`` patients per arm (survival without a
survival effect) is reported as ``> n_max``.  Prints the table and writes
``results/endpoints.csv`` (one row per source x hazard ratio x endpoint).

Defaults: 1000 trials per simulated size (80 for the MMRM), a 3000-patient cohort,
n_max 3000; about 7 minutes on 2 shared cores.  ``--quick``: 100 trials (10 for
the MMRM), 1000 patients, about a minute.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alsprog.data import assemble, read_proact
from alsprog.design import (
    CourseSource,
    HistoricalCohort,
    TrialDesign,
    sample_size_survival,
    simulate_power,
    simulated_sample_size,
)
from alsprog.simulate import simulate_cohort

RESULTS = Path(__file__).resolve().parent / "results"
VISITS = (0.0, 3.0, 6.0, 9.0, 12.0)
ENDPOINTS = ("slope", "cafs", "win_ratio", "survival")


def historical_cohort(n_patients: int, seed: int) -> tuple[HistoricalCohort, dict]:
    """Placebo-like patients through PRO-ACT: simulate, export, read, assemble."""
    cohort = simulate_cohort(n_patients, months=12, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        cohort.to_proact(folder)
        proact = read_proact(folder)
    long = assemble(proact.visits, proact.subjects, today="2030-01-01")
    hist = HistoricalCohort.from_table(
        long, visit_months=VISITS, arm="arm", arm_values=["placebo"]
    )
    alive = ~hist.event
    facts = {
        "patients": len(hist.subjects),
        "died_by_12m": float(np.mean(hist.event & (hist.time <= 12))),
        "censored_before_12m": float(np.mean(alive & (hist.time < 12))),
        "seen_at_12m": float(np.mean(np.isfinite(hist.y[:, -1]))),
    }
    return hist, facts


def survival_check(design: TrialDesign, sources: dict, n_jobs: int) -> pd.DataFrame:
    """Per source: the control arm's 12-month death probability, the Schoenfeld
    (rpact) patients per arm for HR 0.8 with all patients followed 12 months, and
    the mean Cox hazard ratio that simulated trials with HR 0.8 estimate."""
    rows = []
    for name, src in sources.items():
        if name == "course":
            c = CourseSource().draw_trials(
                np.asarray(VISITS),
                1,
                20_000,
                1,
                np.random.default_rng(5),
                slowing=0.0,
                hazard_ratio=1.0,
            )
            p12 = float(c.event[0, 1:].mean())
        else:
            times, cum_h = src.cumulative_hazard()
            p12 = float(1 - np.exp(-np.interp(12.0, times, cum_h)))
        s = sample_size_survival(
            0.8,
            accrual_months=1e-3,  # everyone randomised at month 0, as simulated
            follow_up_months=12,
            control_event_rate=p12,
            event_time_months=12,
            alpha=design.alpha,
            sided=2,
            power=design.power,
        )
        r = simulate_power(
            design,
            1000,
            n_sims=200,
            endpoint="survival",
            source=src,
            hazard_ratio=0.8,
            seed=7,
            n_jobs=n_jobs,
            progress=False,
        )
        rows.append(
            {
                "source": name,
                "control_death_12m": p12,
                "schoenfeld_n_per_arm": s.patients / 2,
                "mean_cox_hr": float(np.exp(r.estimates["estimate"].mean())),
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a 1-minute version")
    ap.add_argument("--n-sims", type=int, default=None, help="trials per size")
    ap.add_argument("--mmrm-sims", type=int, default=None, help="trials per size, MMRM")
    ap.add_argument("--no-mmrm", action="store_true", help="leave the MMRM out")
    ap.add_argument("--n-max", type=int, default=3000, help="largest n per arm tried")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--patients", type=int, default=None, help="historical cohort")
    args = ap.parse_args(argv)
    n_sims = args.n_sims or (100 if args.quick else 1000)
    mmrm_sims = args.mmrm_sims or (10 if args.quick else 80)
    n_patients = args.patients or (1000 if args.quick else 3000)
    endpoints = ENDPOINTS + (() if args.no_mmrm else ("mmrm",))
    design = TrialDesign(visit_months=VISITS, slowing=0.25)
    started = time.perf_counter()
    hist, facts = historical_cohort(n_patients, seed=2026)
    print(
        f"historical cohort: {facts['patients']} placebo patients of {n_patients} "
        f"simulated, read back through PRO-ACT; died by 12 months "
        f"{facts['died_by_12m']:.1%}, alive but censored before 12 months "
        f"{facts['censored_before_12m']:.1%}, ALSFRS-R seen at 12 months "
        f"{facts['seen_at_12m']:.1%}"
    )
    sources = {"course": "course", "historical": hist}
    rows = []
    seed = np.random.SeedSequence(23)
    cells = [(ep, src, hr) for ep in endpoints for src in sources for hr in (1.0, 0.8)]
    children = seed.spawn(len(cells))
    for (ep, src, hr), child in zip(cells, children, strict=True):
        sims = mmrm_sims if ep == "mmrm" else n_sims
        t0 = time.perf_counter()
        r = simulated_sample_size(
            design,
            endpoint=ep,
            n_sims=sims,
            n_max=args.n_max,
            type_one_error=True,
            source=sources[src],
            hazard_ratio=hr,
            seed=np.random.default_rng(child),
            n_jobs=args.n_jobs,
            progress=False,
        )
        sec = time.perf_counter() - t0
        row = {
            "source": src,
            "hazard_ratio": hr,
            "endpoint": ep,
            "n_per_arm": r.n_per_arm,
            "n_per_arm_exact": r.n_per_arm_exact,
            "ci_low": r.ci[0],
            "ci_high": r.ci[1],
            "type_one_error": r.type_one_error,
            "type_one_error_se": r.type_one_error_se,
            "n_sims": sims,
            "sizes_simulated": len(r.points),
            "seconds": sec,
        }
        rows.append(row)
        shown = f"> {args.n_max}" if r.n_per_arm is None else str(r.n_per_arm)
        print(
            f"  {src:10s} HR {hr:g} {ep:9s} n/arm {shown:>7s} "
            f"[{r.ci[0]:.0f}, {r.ci[1]:.0f}]  type I {r.type_one_error:.3f} "
            f"(SE {r.type_one_error_se:.3f})  {sims} sims/size, {sec:.0f} s",
            flush=True,
        )
    table = pd.DataFrame(rows)
    check = survival_check(design, sources, args.n_jobs)
    total = time.perf_counter() - started
    print_table(table, args.n_max)
    print(
        "\nSurvival at HR 0.8, analytic check (Schoenfeld as rpact, no censoring "
        "but at 12 months, from the control arm's 12-month death probability; exact "
        "only for the historical source without its early censoring) and the "
        "hazard ratio that Cox estimates on simulated trials (mean over 200 trials "
        "of 2 x 1000):"
    )
    print(check.round(3).to_string(index=False))
    print(
        f"\n{total:.0f} s on {os.cpu_count()} cores (shared; n_jobs={args.n_jobs}); "
        f"{n_sims} trials per simulated size ({mmrm_sims} for the MMRM), four or "
        "five sizes per cell, plus as many trials under no effect for the type I error"
    )
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "endpoints.csv", index=False)
    return 0


def print_table(table: pd.DataFrame, n_max: int) -> None:
    """n per arm (95 % MC interval) and type I error (SE), endpoint by column."""

    def n_text(r: pd.Series) -> str:
        if r["n_per_arm"] is None or pd.isna(r["n_per_arm"]):
            return f"> {n_max}"
        return f"{int(r['n_per_arm'])} ({r['ci_low']:.0f}-{r['ci_high']:.0f})"

    def a_text(r: pd.Series) -> str:
        return f"{r['type_one_error']:.3f} ({r['type_one_error_se']:.3f})"

    t = table.assign(
        n=table.apply(n_text, axis=1),
        alpha=table.apply(a_text, axis=1),
        scenario=[
            f"{s}, HR {h:g}"
            for s, h in zip(table["source"], table["hazard_ratio"], strict=True)
        ],
    )
    order = list(dict.fromkeys(t["endpoint"]))
    print(
        "\nPatients per arm for 80 % power (two-sided alpha 0.05), 25 % slowing of "
        "progression,\n12 months, visits every 3 months (95 % Monte Carlo interval):"
    )
    wide = t.pivot(index="scenario", columns="endpoint", values="n")[order]
    print(wide.to_string())
    print("\nType I error at that n, no effect on progression or survival (MC SE):")
    wide = t.pivot(index="scenario", columns="endpoint", values="alpha")[order]
    print(wide.to_string())


if __name__ == "__main__":
    sys.exit(main())
