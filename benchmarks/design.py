"""Benchmark: power by simulation, alsprog's vectorised trials vs fitting trial by trial.

Run: ``python benchmarks/design.py [--quick]``

The target (issue 8): 1000 trials of 2 x 300 patients with 5 visits in <= 10 s on 2
cores.  Peers, on the same simulated trials: alsprog's own ``LinearMixedModel`` fitted
per trial through its formula interface, and statsmodels' ``MixedLM`` per trial (the
usual Python way).  Before timing, the estimates of the treatment x time effect are
checked to agree.  Peers are timed on a subset of trials and reported per trial (the
column says how many were run); nothing is extrapolated into the alsprog column.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _timing import time_median

from alsprog.design import TrialDesign, simulate_power
from alsprog.design._simulated_trials import _simulate_chunk, _Spec

RESULTS = Path(__file__).resolve().parent / "results"


def _trial_frame(chunk, i, times):
    n, j = chunk.y.shape[1:]
    df = pd.DataFrame(
        {
            "subject_id": np.repeat(np.arange(n), j),
            "months": np.tile(times, n),
            "arm": np.repeat(chunk.arm[i], j),
            "y": chunk.y[i].ravel(),
        }
    )
    return df[chunk.mask[i].ravel().astype(bool)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer trials and repeats")
    args = ap.parse_args(argv)
    n_sims = 200 if args.quick else 1000
    repeats = 1 if args.quick else 3
    n_peer = 5 if args.quick else 20
    design = TrialDesign(visit_months=(0, 3, 6, 9, 12), slowing=0.25)
    times = np.asarray(design.visit_months)

    # --- agreement on the same trials -------------------------------------------
    from alsprog.design._simulated_trials import _fit_slope_trials
    from alsprog.models import LinearMixedModel

    chunk = _simulate_chunk(
        design,
        _Spec(300, 300, dropout=0.15, death_hazard=0.15),
        n_peer,
        np.random.default_rng(1),
    )
    ours = pd.DataFrame(_fit_slope_trials(chunk, design, 0.05))["estimate"].to_numpy()
    lmm = []
    for i in range(n_peer):
        m = LinearMixedModel("y ~ months * arm + (months | subject_id)").fit(
            _trial_frame(chunk, i, times)
        )
        lmm.append(m.fe_params_["months:arm"])
    diff_lmm = float(np.max(np.abs(ours - np.asarray(lmm)) / np.abs(np.asarray(lmm))))
    try:
        import statsmodels.formula.api as smf

        sm = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(n_peer):
                df = _trial_frame(chunk, i, times)
                r = smf.mixedlm(
                    "y ~ months * arm", df, groups="subject_id", re_formula="~months"
                ).fit(reml=True)
                sm.append(r.fe_params["months:arm"])
        diff_sm = float(np.max(np.abs(ours - np.asarray(sm)) / np.abs(np.asarray(sm))))
    except ImportError:
        smf = None
        diff_sm = float("nan")
    print(
        f"agreement on {n_peer} trials (max relative difference of months:arm): "
        f"LinearMixedModel {diff_lmm:.1e}, statsmodels {diff_sm:.1e}"
    )
    if diff_lmm > 1e-5:
        print(
            "alsprog's vectorised fits disagree with LinearMixedModel", file=sys.stderr
        )
        return 1

    # --- timing --------------------------------------------------------------------
    rows = []
    simulate_power(design, 300, n_sims=50, seed=0, n_jobs=1, progress=False)  # warm-up
    for n_jobs in (1, -1):
        sec = time_median(
            lambda nj=n_jobs: simulate_power(
                design, 300, n_sims=n_sims, seed=2, n_jobs=nj, progress=False
            ),
            repeats,
        )
        rows.append(
            {
                "tool": f"alsprog simulate_power (n_jobs={n_jobs})",
                "trials": n_sims,
                "seconds": sec,
                "sec_per_trial": sec / n_sims,
            }
        )

    def per_trial_lmm():
        for i in range(n_peer):
            LinearMixedModel("y ~ months * arm + (months | subject_id)").fit(
                _trial_frame(chunk, i, times)
            )

    sec = time_median(per_trial_lmm, repeats)
    rows.append(
        {
            "tool": "alsprog LinearMixedModel per trial",
            "trials": n_peer,
            "seconds": sec,
            "sec_per_trial": sec / n_peer,
        }
    )
    if smf is not None:

        def per_trial_sm():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for i in range(n_peer):
                    smf.mixedlm(
                        "y ~ months * arm",
                        _trial_frame(chunk, i, times),
                        groups="subject_id",
                        re_formula="~months",
                    ).fit(reml=True)

        sec = time_median(per_trial_sm, 1)
        rows.append(
            {
                "tool": "statsmodels MixedLM per trial",
                "trials": n_peer,
                "seconds": sec,
                "sec_per_trial": sec / n_peer,
            }
        )
    else:
        print("statsmodels MixedLM: skipped (not installed)")
    best = min(r["sec_per_trial"] for r in rows if r["tool"].startswith("alsprog sim"))
    print(
        f"\n1000-trial target: 2 x 300 patients, 5 visits, <= 10 s on 2 cores "
        f"(cores here: {os.cpu_count()})"
    )
    print(
        f"{'tool':42s} {'trials':>7s} {'seconds':>9s} {'s/trial':>9s} {'vs alsprog':>11s}"
    )
    for r in rows:
        r["ratio_to_alsprog"] = r["sec_per_trial"] / best
        print(
            f"{r['tool']:42s} {r['trials']:7d} {r['seconds']:9.2f} "
            f"{r['sec_per_trial']:9.4f} {r['ratio_to_alsprog']:10.1f}x"
        )
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "design.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
