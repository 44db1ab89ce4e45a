"""Benchmark: power by simulation, alsprog's vectorised trials vs fitting trial by trial.

Run: ``python benchmarks/design.py [--quick] [--slope | --endpoints]`` (both sections
by default).

The target (issue 8): 1000 trials of 2 x 300 patients with 5 visits in <= 10 s on 2
cores.  Peers, on the same simulated trials: alsprog's own ``LinearMixedModel`` fitted
per trial through its formula interface, and statsmodels' ``MixedLM`` per trial (the
usual Python way).  Before timing, the estimates of the treatment x time effect are
checked to agree.  Peers are timed on a subset of trials and reported per trial (the
column says how many were run); nothing is extrapolated into the alsprog column.

Endpoint section (issue 23): 1000 simulated CAFS trials of
2 x 300 patients from the nonlinear course (12 months, deaths and dropout built in)
in <= 20 s on 2 cores, against ``cafs_test`` on each trial's table and a brute-force
O(n^2) pair matrix per trial; win ratio and survival timed the same way.  Rows go
to ``results/design_endpoints.csv``.
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


def _months_by_arm(params: pd.Series) -> float:
    """The treatment x time coefficient, named ``months:arm`` or, where the 0/1
    ``arm`` column is dummy-coded, ``months:arm[T.1]``."""
    (name,) = [k for k in params.index if k in ("months:arm", "months:arm[T.1]")]
    return float(params[name])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer trials and repeats")
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--slope", action="store_true", help="slope section only")
    only.add_argument(
        "--endpoints", action="store_true", help="CAFS/win ratio/survival section only"
    )
    args = ap.parse_args(argv)
    rc = 0 if args.endpoints else _slope_section(args)
    if rc == 0 and not args.slope:
        rc = _endpoint_section(args.quick)
    return rc


def _slope_section(args: argparse.Namespace) -> int:
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
        lmm.append(_months_by_arm(m.fe_params_))
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
    for n_jobs in (1, -1):  # warm-up, and the worker pool's start
        simulate_power(design, 300, n_sims=50, seed=0, n_jobs=n_jobs, progress=False)
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


# ---------------------------------------------------------------- endpoint section
HORIZON = 12.0


def _course_trials(k: int, seed: int, n: int = 300):
    """``k`` trials of ``n`` + ``n`` patients from the nonlinear course (25 % slowing)."""
    from alsprog.design import CourseSource

    grid = np.array([0.0, 3.0, 6.0, 9.0, 12.0])
    return CourseSource().draw_trials(
        grid, n, n, k, np.random.default_rng(seed), slowing=0.25, hazard_ratio=1.0
    )


def _long_table(chunk, i, grid):
    """Trial ``i`` as the long visit table ``cafs_test`` reads (seen visits only)."""
    n, j = chunk.y.shape[1:]
    df = pd.DataFrame(
        {
            "subject_id": np.repeat(np.arange(n), j),
            "months": np.tile(grid, n),
            "alsfrs_r_total": chunk.y[i].ravel(),
            "death_or_tracheostomy_months": np.repeat(chunk.time[i], j),
            "event_observed": np.repeat(chunk.event[i], j),
            "arm": np.repeat(chunk.arm[i].astype(int), j),
        }
    )
    return df[chunk.mask[i].ravel() > 0].reset_index(drop=True)


def _horizon_view(chunk, i, h):
    """Trial ``i``: survival to the horizon and the change (NaN unless seen)."""
    seen = (chunk.mask[i, :, h] > 0) & (chunk.mask[i, :, 0] > 0)
    change = np.where(seen, chunk.y[i, :, h] - chunk.y[i, :, 0], np.nan)
    return chunk.time[i], chunk.event[i], change, chunk.arm[i] > 0


def _brute_cafs_z(time, event, change, arm, horizon=HORIZON):
    """CAFS by the n x n pair matrix (Finkelstein-Schoenfeld rule written out) and
    scipy's Mann-Whitney test of the scores, as the signed z."""
    from scipy import stats

    dead = event & (time <= horizon)
    alive = ~dead & (time >= horizon)
    ti, tj = time[:, None], time[None, :]
    di, dj = dead[:, None], dead[None, :]
    ai, aj = alive[:, None], alive[None, :]
    ci, cj = change[:, None], change[None, :]
    wins = (
        (di & dj & (ti > tj))  # both died: the later death wins
        | (~di & dj & (ti >= tj))  # i followed at least to j's death
        | (ai & aj & (ci > cj))  # both alive at the horizon: smaller loss wins
    )
    score = wins.sum(axis=1) - wins.sum(axis=0)
    u, p = stats.mannwhitneyu(
        score[arm], score[~arm], use_continuity=False, method="asymptotic"
    )
    return float(np.sign(u - arm.sum() * (~arm).sum() / 2) * stats.norm.isf(p / 2))


def _per_trial(seconds: float, trials: int, tool: str, **extra) -> dict:
    return {
        "endpoint": extra.pop("endpoint"),
        "tool": tool,
        "trials": trials,
        "seconds": seconds,
        "sec_per_trial": seconds / trials,
        **extra,
    }


def _endpoint_section(quick: bool) -> int:
    """Time 1000 CAFS / win-ratio / survival trials; write design_endpoints.csv."""
    from alsprog.design import Priority, cafs_test, win_ratio
    from alsprog.design._endpoint_analysis import analyse

    n_sims = 200 if quick else 1000
    repeats = 1 if quick else 3
    n_peer = 5 if quick else 20
    grid = np.array([0.0, 3.0, 6.0, 9.0, 12.0])
    h = grid.size - 1
    design = TrialDesign(visit_months=tuple(grid), slowing=0.25, retention=None)
    chunk = _course_trials(n_peer, seed=11)

    # --- agreement: batched analysis vs table path vs brute force ---------------
    batch = analyse(chunk, design, grid, "cafs", horizon=HORIZON, threshold=0.0)
    z_batch = np.array([r["z"] for r in batch])
    tables = [_long_table(chunk, i, grid) for i in range(n_peer)]
    z_table = np.array(
        [
            cafs_test(t, arm="arm", treatment=1, horizon_months=HORIZON).statistic
            for t in tables
        ]
    )
    views = [_horizon_view(chunk, i, h) for i in range(n_peer)]
    z_brute = np.array([_brute_cafs_z(*v) for v in views])
    diff_cafs = float(
        max(np.max(np.abs(z_batch - z_table)), np.max(np.abs(z_batch - z_brute)))
    )
    wr_batch = analyse(chunk, design, grid, "win_ratio", horizon=HORIZON, threshold=0)
    pri = [
        Priority("time", kind="survival", event="event", horizon=HORIZON),
        Priority("change"),
    ]
    subj_tables = []
    for t, e, c, a in views:
        known = ~(e & (t <= HORIZON)) & (t >= HORIZON)
        subj_tables.append(
            pd.DataFrame(
                {
                    "subject_id": np.arange(t.size),
                    "arm": a.astype(int),
                    "time": t,
                    "event": e,
                    "change": np.where(known, c, np.nan),
                }
            )
        )
    wr_table = [
        win_ratio(s, arm="arm", treatment=1, priorities=pri) for s in subj_tables
    ]
    z_wr = np.array([r.net_benefit / r.net_benefit_se for r in wr_table])
    diff_wr = float(np.max(np.abs(np.array([r["z"] for r in wr_batch]) - z_wr)))
    print(
        f"\nagreement on {n_peer} course trials of 2 x 300 (max |difference| of z): "
        f"CAFS batched vs cafs_test per table and vs brute-force pairs {diff_cafs:.1e}; "
        f"win ratio batched vs win_ratio per table {diff_wr:.1e}"
    )
    if diff_cafs > 1e-8 or diff_wr > 1e-8:
        print(
            "alsprog's batched endpoints disagree with the per-trial path",
            file=sys.stderr,
        )
        return 1

    # --- timing -------------------------------------------------------------------
    rows = []
    for ep in ("cafs", "win_ratio", "survival"):  # warm-up (and the pool's start)
        for nj in (1, 2):
            simulate_power(
                design,
                300,
                n_sims=20,
                endpoint=ep,
                source="course",
                n_jobs=nj,
                seed=0,
                progress=False,
            )
    for ep in ("cafs", "win_ratio", "survival"):
        for nj in (1, 2):
            res = {}

            def sim(ep=ep, nj=nj, res=res):
                res["r"] = simulate_power(
                    design,
                    300,
                    n_sims=n_sims,
                    endpoint=ep,
                    source="course",
                    n_jobs=nj,
                    seed=3,
                    progress=False,
                )

            sec = time_median(sim, repeats)
            rows.append(
                _per_trial(
                    sec,
                    n_sims,
                    f"alsprog simulate_power (n_jobs={nj})",
                    endpoint=ep,
                    power=res["r"].power,
                )
            )
    sec = time_median(
        lambda: analyse(chunk, design, grid, "cafs", horizon=HORIZON, threshold=0.0),
        repeats,
    )
    rows.append(
        _per_trial(
            sec, n_peer, "alsprog batched analysis only (same trials)", endpoint="cafs"
        )
    )
    sec = time_median(
        lambda: [
            cafs_test(t, arm="arm", treatment=1, horizon_months=HORIZON) for t in tables
        ],
        repeats,
    )
    rows.append(_per_trial(sec, n_peer, "cafs_test per trial table", endpoint="cafs"))
    sec = time_median(lambda: [_brute_cafs_z(*v) for v in views], repeats)
    rows.append(
        _per_trial(
            sec, n_peer, "brute-force n x n pairs + scipy per trial", endpoint="cafs"
        )
    )
    sec = time_median(
        lambda: [
            win_ratio(s, arm="arm", treatment=1, priorities=pri) for s in subj_tables
        ],
        repeats,
    )
    rows.append(
        _per_trial(sec, n_peer, "win_ratio per trial table", endpoint="win_ratio")
    )
    try:
        import lifelines  # noqa: F401
    except ImportError:
        print("lifelines log-rank per trial: skipped (not installed)")

    best = {
        ep: min(
            r["sec_per_trial"]
            for r in rows
            if r["endpoint"] == ep and r["tool"].startswith("alsprog simulate_power")
        )
        for ep in ("cafs", "win_ratio", "survival")
    }
    cafs2 = next(
        r for r in rows if r["endpoint"] == "cafs" and r["tool"].endswith("n_jobs=2)")
    )
    print(
        f"\n{n_sims}-trial target: CAFS, 2 x 300 patients, nonlinear course, 12 months, "
        f"deaths and dropout, <= 20 s on 2 cores (cores here: {os.cpu_count()}, "
        f"shared; load average {os.getloadavg()[0]:.1f}): "
        f"{cafs2['seconds']:.2f} s with n_jobs=2"
        + ("" if quick else (" -> met" if cafs2["seconds"] <= 20 else " -> NOT met"))
    )
    print(
        f"{'endpoint':10s} {'tool':46s} {'trials':>7s} {'seconds':>9s} "
        f"{'s/trial':>9s} {'vs alsprog':>11s}"
    )
    for r in rows:
        r["ratio_to_alsprog"] = r["sec_per_trial"] / best[r["endpoint"]]
        r.setdefault("power", float("nan"))
        print(
            f"{r['endpoint']:10s} {r['tool']:46s} {r['trials']:7d} {r['seconds']:9.2f} "
            f"{r['sec_per_trial']:9.5f} {r['ratio_to_alsprog']:10.1f}x"
        )
    print(
        "(ratios: per trial, against alsprog's best simulate_power row of the same "
        "endpoint, which also simulates the trials; the peers only analyse "
        "pre-simulated ones)"
    )
    RESULTS.mkdir(exist_ok=True)
    fields = [
        "endpoint",
        "tool",
        "trials",
        "seconds",
        "sec_per_trial",
        "ratio_to_alsprog",
        "power",
    ]
    with open(RESULTS / "design_endpoints.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
