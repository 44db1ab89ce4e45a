"""Trial endpoints ALS trials use today: CAFS, win ratio, survival, interim looks.

1. One simulated two-arm trial (alsprog's nonlinear disease course: 25 % slower
   progression and a death hazard ratio of 0.8 in the treated arm) as a long visit
   table; the CAFS test (Finkelstein-Schoenfeld scores, rank-sum and permutation
   p-values) and the win ratio (survival to 12 months, then the ALSFRS-R change
   by at least 2 points) on it.
2. Survival sample size as rpact computes it (Schoenfeld and Freedman), and a
   three-look O'Brien-Fleming design with non-binding futility.
3. Power of CAFS by simulating whole trials from the disease course, without and
   with a survival effect, and with the interim looks.
4. A historical cohort as the source: placebo patients read back from a PRO-ACT
   export, resampled into trials with the treatment applied.

Run: ``python examples/07_trial_endpoints.py [OUT_DIR] [--sims N]``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from alsprog.data import assemble, read_proact, write_table
from alsprog.design import (
    CourseSource,
    HistoricalCohort,
    Priority,
    TrialDesign,
    cafs_test,
    group_sequential,
    horizon_endpoints,
    sample_size_survival,
    simulate_power,
    win_ratio,
)
from alsprog.simulate import simulate_cohort

VISITS = (0.0, 3.0, 6.0, 9.0, 12.0)


def one_trial(n_per_arm: int, seed: int) -> pd.DataFrame:
    """A simulated trial as a long table: one row per patient x visit seen."""
    grid = np.asarray(VISITS)
    c = CourseSource().draw_trials(
        grid,
        n_per_arm,
        n_per_arm,
        1,
        np.random.default_rng(seed),
        slowing=0.25,
        hazard_ratio=0.8,
    )
    n = 2 * n_per_arm
    long = pd.DataFrame(
        {
            "subject_id": np.repeat([f"P{i:03d}" for i in range(n)], grid.size),
            "arm": np.repeat(np.where(c.arm[0] > 0, "drug", "placebo"), grid.size),
            "months": np.tile(grid, n),
            "alsfrs_r_total": c.y[0].ravel(),
            "death_or_tracheostomy_months": np.repeat(c.time[0], grid.size),
            "event_observed": np.repeat(c.event[0], grid.size),
        }
    )
    return long[c.mask[0].ravel() > 0].reset_index(drop=True)


def main(out: Path, n_sims: int) -> pd.DataFrame:
    # 1. CAFS and win ratio of one trial --------------------------------------------
    trial = one_trial(300, seed=7)
    print(
        f"one simulated trial: {trial['subject_id'].nunique()} patients, "
        f"{len(trial)} visits"
    )
    cafs = cafs_test(
        trial,
        arm="arm",
        treatment="drug",
        horizon_months=12,
        n_permutations=2000,
        seed=1,
    )
    print(
        f"\nCAFS at 12 months: z = {cafs.statistic:.2f}, p = {cafs.p_value:.4f} "
        f"(permutation {cafs.p_value_permutation:.4f})"
    )
    print(cafs.table().round(2).to_string())
    per_patient = horizon_endpoints(trial, horizon_months=12)
    arms = trial.groupby("subject_id")["arm"].first()
    per_patient = per_patient.assign(arm=arms.reindex(per_patient.index).to_numpy())
    per_patient = per_patient.rename_axis("subject_id").reset_index()
    wr = win_ratio(
        per_patient,
        arm="arm",
        treatment="drug",
        priorities=[
            Priority("event_time", kind="survival", event="event", horizon=12.0),
            Priority("change", threshold=2.0),
        ],
    )
    print(
        f"\nwin statistics (survival to 12 months, then ALSFRS-R change >= 2 points):"
        f"\n  net benefit {wr.net_benefit:.3f} "
        f"[{wr.net_benefit_ci[0]:.3f}, {wr.net_benefit_ci[1]:.3f}], "
        f"win ratio {wr.win_ratio:.2f} "
        f"[{wr.win_ratio_ci[0]:.2f}, {wr.win_ratio_ci[1]:.2f}] (p {wr.win_ratio_p:.4f}), "
        f"win odds {wr.win_odds:.2f}"
    )
    print(
        wr.priorities[["favorable", "unfavorable", "neutral", "uninformative"]].round(3)
    )

    # 2. Survival sample size and a group-sequential design --------------------------
    print("\nsurvival sample size, HR 0.7, control median 30 months, 12 + 12 months:")
    for method in ("schoenfeld", "freedman"):
        s = sample_size_survival(
            0.7,
            accrual_months=12,
            follow_up_months=12,
            control_median_months=30,
            dropout_rate=0.1,
            method=method,
        )
        print(f"  {method:10s} events {s.events_ceil}, patients {s.patients:.1f}")
    looks = group_sequential(
        3, alpha=0.025, beta=0.2, spending="obrien-fleming", futility="obrien-fleming"
    )
    print("\nthree looks, O'Brien-Fleming alpha spending, non-binding futility:")
    print(looks.to_frame().round(4).to_string())
    s = sample_size_survival(
        0.7,
        accrual_months=12,
        follow_up_months=12,
        control_median_months=30,
        design=looks,
    )
    print(
        f"  inflation factor {looks.inflation_factor:.4f}: events "
        f"{np.round(s.events_per_look, 1).tolist()} at months "
        f"{np.round(s.analysis_times, 1).tolist()}"
    )

    # 3. Power of CAFS simulated from the disease course -----------------------------
    design = TrialDesign(visit_months=VISITS, slowing=0.25)
    rows = []
    for hr, gs in ((1.0, None), (0.8, None), (0.8, looks)):
        r = simulate_power(
            design,
            300,
            n_sims=n_sims,
            endpoint="cafs",
            source="course",
            hazard_ratio=hr,
            looks=gs,
            type_one_error=gs is None,
            seed=3,
            n_jobs=1,
            progress=False,
        )
        rows.append(
            {
                "source": "course",
                "endpoint": "cafs",
                "hazard_ratio": hr,
                "looks": 1 if gs is None else gs.k,
                "n_per_arm": 300,
                "power": r.power,
                "mc_se": r.se,
                "type_one_error": r.type_one_error,
            }
        )
        if gs is not None:
            print("\nCAFS with three looks (HR 0.8): where trials stopped")
            print(r.stopping.round(3).to_string(index=False))

    # 4. A historical cohort as the source -------------------------------------------
    with tempfile.TemporaryDirectory() as folder:
        simulate_cohort(800, months=12, seed=11).to_proact(folder)
        proact = read_proact(folder)
    long = assemble(proact.visits, proact.subjects, today="2030-01-01")
    hist = HistoricalCohort.from_table(
        long, visit_months=VISITS, arm="arm", arm_values=["placebo"]
    )
    print(f"\n{hist}")
    for endpoint in ("slope", "cafs"):
        for hr in (1.0, 0.8):
            r = simulate_power(
                design,
                300,
                n_sims=n_sims,
                endpoint=endpoint,
                source=hist,
                hazard_ratio=hr,
                seed=5,
                n_jobs=1,
                progress=False,
            )
            rows.append(
                {
                    "source": "historical",
                    "endpoint": endpoint,
                    "hazard_ratio": hr,
                    "looks": 1,
                    "n_per_arm": 300,
                    "power": r.power,
                    "mc_se": r.se,
                    "type_one_error": None,
                }
            )
    table = pd.DataFrame(rows)
    print(f"\nsimulated power, 2 x 300 patients, 25 % slowing, {n_sims} trials each:")
    print(table.round(3).to_string(index=False))
    write_table(table, out / "endpoint_power.csv")
    return table


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=None)
    ap.add_argument("--sims", type=int, default=200, help="simulated trials per row")
    args = ap.parse_args()
    target = Path(args.out) if args.out else Path(tempfile.mkdtemp())
    target.mkdir(parents=True, exist_ok=True)
    main(target, args.sims)
