"""Benchmark: forecast accuracy and calibration on simulated cohorts (issue 10).

Run: ``python benchmarks/forecast.py [--quick] [--reps N]``

Each replication simulates 1,000 patients with the default (curvilinear D50)
simulator, forecasts 200 held-out patients from their first 3 months and scores the
forecasts at 6 and 12 months (RMSE, bias, 90 % coverage, CRPS) and on the DREAM
slope (months 3-12).  Models: alsprog's mixed model (conditional normal forecast),
its joint model with death/tracheostomy (forecast given alive), both recalibrated on
the training patients' own errors (``CalibratedForecaster``; ``_band``: the band only,
the model's centre kept, ``shift=False``), the three baselines (ΔFS extrapolation,
per-patient OLS, the DREAM random forest, the peer), the simulator's Bayes oracle (the best possible from the same history)
and each patient's true curve (the unattainable noise floor).  Results are pooled
over replications; ratios to the oracle and to the random forest are printed and the
rows written to ``benchmarks/results/forecast.csv``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from alsprog.forecast import (
    CalibratedForecaster,
    DeltaFSBaseline,
    PatientOLSBaseline,
    RandomForestSlope,
    backtest,
)
from alsprog.models import JointModel, LinearMixedModel
from alsprog.simulate import simulate_cohort

RESULTS = Path(__file__).resolve().parent / "results"
FORMULA = "alsfrs_r_total ~ months * (delta_fs + onset_site) + (months | subject_id)"


def pool(results: pd.DataFrame) -> pd.DataFrame:
    def agg(d: pd.DataFrame) -> pd.Series:
        n = d["n"].to_numpy()
        sn = d["slope_n"].to_numpy()
        return pd.Series(
            {
                "n": n.sum(),
                "rmse": np.sqrt(np.sum(d["rmse"].to_numpy() ** 2 * n) / n.sum()),
                "bias": np.sum(d["bias"].to_numpy() * n) / n.sum(),
                "coverage": np.sum(d["coverage"].to_numpy() * n) / n.sum(),
                "width": np.sum(d["width"].to_numpy() * n) / n.sum(),
                "crps": np.sum(d["crps"].to_numpy() * n) / n.sum(),
                "slope_rmsd": np.sqrt(
                    np.sum(d["slope_rmsd"].to_numpy() ** 2 * sn) / sn.sum()
                ),
                "seconds": d["seconds"].mean(),
            }
        )

    return results.groupby(["model", "horizon"], sort=False).apply(agg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 replications")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    reps = 3 if args.quick else args.reps
    models = {
        "alsprog_lmm": LinearMixedModel(FORMULA),
        "alsprog_joint": JointModel(FORMULA),
        "alsprog_lmm_calibrated": CalibratedForecaster(LinearMixedModel(FORMULA)),
        "alsprog_joint_calibrated": CalibratedForecaster(JointModel(FORMULA)),
        "alsprog_lmm_calibrated_band": CalibratedForecaster(
            LinearMixedModel(FORMULA), shift=False
        ),
        "alsprog_joint_calibrated_band": CalibratedForecaster(
            JointModel(FORMULA), shift=False
        ),
        "delta_fs": DeltaFSBaseline(),
        "patient_ols": PatientOLSBaseline(),
        "random_forest": RandomForestSlope(n_estimators=300, random_state=1),
    }
    parts = []
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rep in range(reps):
            cohort = simulate_cohort(1000, seed=5000 + rep)
            r = backtest(cohort, models, seed=rep, n_samples=200, progress=False)
            r["rep"] = rep
            parts.append(r)
            print(f"replication {rep + 1}/{reps} done", flush=True)
    res = pool(pd.concat(parts, ignore_index=True))
    RESULTS.mkdir(exist_ok=True)
    res.to_csv(RESULTS / "forecast.csv")
    pd.set_option("display.width", 200)
    print(
        f"\n{reps} replications x 200 forecast patients, {time.perf_counter() - t0:.0f} s"
    )
    print(res.round(3).to_string())
    ours = [m for m in models if m.startswith("alsprog")]
    for h in sorted(res.index.get_level_values("horizon").unique()):
        for name in ours:
            r = res.loc[(name, h)]
            print(
                f"month {h:g} {name}: RMSE /oracle "
                f"{r['rmse'] / res.loc[('oracle', h), 'rmse']:.3f}, /random forest "
                f"{r['rmse'] / res.loc[('random_forest', h), 'rmse']:.3f}; "
                f"coverage {r['coverage']:.3f}"
            )
    s = res.xs(12.0, level="horizon")["slope_rmsd"]
    print(
        "slope RMSD (DREAM): "
        + ", ".join(f"{m} {s[m]:.3f}" for m in s.index)
        + f"; best alsprog / random forest {s[ours].min() / s['random_forest']:.3f}"
    )


if __name__ == "__main__":
    main()
