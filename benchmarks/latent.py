"""Benchmark: choosing the number of latent progression classes (issue 24's speed line).

Usage::

    python benchmarks/latent.py [--quick] [--patients 2000] [--n-init 20]
                                [--max-k 5] [--n-jobs 2] [--no-loop] [--no-gmm]

One cohort of ``--patients`` simulated patients from 3 linear progression classes
(slopes -0.3, -1.0, -2.0 points/month; random intercept N(0, 3^2) and slope
N(0, 0.15^2); 5 visits 3 months apart; noise N(0, 1.5^2); scores rounded and
clipped to 0-48: ``simulate_classes`` of ``tests/models/latent_testdata.py``, the
generator of the latent-class tests, with seed 21) is given to

* ``select_n_classes`` for K = 1..``--max-k`` with ``--n-init`` starts per K and
  ``--n-jobs`` workers (the issue-24 target: <= 60 s for 2,000 patients, K = 1..5,
  20 starts, on 2 cores);
* the peer, a plain loop over K of ``LatentClassMixedModel(..., n_jobs=1)`` with
  the same starts;
* a naive two-stage baseline: per-subject OLS intercept and slope (standardised),
  then scikit-learn's ``GaussianMixture`` (full covariance, 5 initialisations) for each
  K, chosen by its BIC.

Each is run once (a fit takes tens of seconds; the machine is shared, so the
1-minute load average is recorded).  Reported beside the times: the K each picks
by BIC and the adjusted Rand index of its 3-class MAP classes against the truth.
Rows go to ``benchmarks/results/latent.csv``.

Then (unless ``--no-backtest``) a forecast backtest of the 3-class model beside the
mixed model fitted by ML (:func:`forecast_backtest`): RMSE, interval coverage and
width, CRPS at 12 and 18 months, to ``benchmarks/results/latent_backtest.csv``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "models"))

from latent_testdata import FORMULA, simulate_classes  # noqa: E402

from alsprog.models import LatentClassMixedModel, select_n_classes  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "latent.csv"
TARGET_S = 60.0


def simulate(n: int, seed: int = 21) -> tuple[pd.DataFrame, np.ndarray]:
    """The 3-class cohort of the tests: ``simulate_classes(n, seed=seed)``."""
    return simulate_classes(n, seed=seed)


def ari(truth: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(truth, labels))


def map_labels(m: LatentClassMixedModel, n: int) -> np.ndarray:
    ids = [f"P{i:04d}" for i in range(n)]
    return m.classes_.loc[ids].to_numpy()


def two_stage(df: pd.DataFrame, ks: list[int], seed: int) -> dict[int | str, Any]:
    """Per-subject OLS (intercept, slope), then a Gaussian mixture per K."""
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    d = df.sort_values(["subject_id", "months"])
    g = d.groupby("subject_id", sort=True)
    t, y = d["months"], d["alsfrs_r_total"]
    n = g.size()
    st, sy = g["months"].sum(), g["alsfrs_r_total"].sum()
    stt = (t * t).groupby(d["subject_id"]).sum()
    sty = (t * y).groupby(d["subject_id"]).sum()
    slope = (n * sty - st * sy) / (n * stt - st**2)
    icpt = (sy - slope * st) / n
    F = np.c_[icpt.to_numpy(), slope.to_numpy()]
    # standardised, so k-means initialisation does not split on the intercept's
    # larger spread alone (BIC differences between K are affine-invariant)
    F = (F - F.mean(axis=0)) / F.std(axis=0)
    # one thread, as the latent-class fits (OpenMP k-means oversubscribes a busy
    # 2-core machine: 100x slower)
    with threadpool_limits(limits=1):
        fits: dict[int | str, object] = {
            k: GaussianMixture(k, n_init=5, random_state=seed).fit(F) for k in ks
        }
    fits["features"] = F
    return fits


BACKTEST_OUT = ROOT / "benchmarks" / "results" / "latent_backtest.csv"
#: The simulator's classes of the backtest (shares, slope mean and SD per month).
SIM_CLASSES = ((0.3, -0.3, 0.15), (0.45, -1.0, 0.3), (0.25, -2.0, 0.4))


def forecast_backtest(n: int, n_init: int, seed: int = 3) -> pd.DataFrame:
    """Forecasts of held-out patients (20 %) from their first 3 or 6 months: the
    3-class model beside the mixed model (ML), on (a) the linear classes above
    with 7 visits (18 months) and (b) ``simulate_cohort(progression_classes=...)``
    (sigmoid courses, deaths and dropouts tied to the rate, 24 months), with a
    quadratic time term in both models there, and (c) the same cohort in months
    since onset with the class model's D50 sigmoid (``link="d50"``) beside the
    mixed model's straight line."""
    from alsprog.forecast import backtest
    from alsprog.models import LinearMixedModel
    from alsprog.simulate import ProgressionClass, simulate_cohort

    quad = "alsfrs_r_total ~ months + I(months ** 2) + (months | subject_id)"
    onset = "alsfrs_r_total ~ months_since_onset + (months_since_onset | subject_id)"
    linear_df, _ = simulate_classes(n, seed=5, n_visits=7)
    classes = [ProgressionClass(*c) for c in SIM_CLASSES]
    cohort = simulate_cohort(n, months=24, seed=7, progression_classes=classes)
    # (name, data, formula, time, link, histories)
    cases = [
        ("linear classes", linear_df, FORMULA, "months", "identity", (3.0, 6.0)),
        ("simulate_cohort classes", cohort, quad, "months", "identity", (6.0,)),
        (
            "simulate_cohort classes, D50 since onset",
            cohort,
            onset,
            "months_since_onset",
            "d50",
            (6.0,),
        ),
    ]
    frames = []
    for data_name, data, formula, tcol, link, histories in cases:
        for hist in histories:
            res = backtest(
                data,
                {
                    "latent_class_3": LatentClassMixedModel(
                        formula, 3, time=tcol, link=link, n_init=n_init, seed=1
                    ),
                    "mixed_ml": LinearMixedModel(formula, reml=False, time=tcol),
                },
                history_months=hist,
                horizons=(12.0, 18.0),
                seed=seed,
                progress=False,
                reference=False,
            )
            res.insert(0, "history_months", hist)
            res.insert(0, "data", data_name)
            frames.append(res)
    cols = ["data", "history_months", "model", "horizon", "n", "rmse", "coverage"]
    out = pd.concat(frames, ignore_index=True)[[*cols, "width", "crps", "slope_rmsd"]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="400 patients, 4 starts")
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--n-init", type=int, default=20)
    ap.add_argument("--max-k", type=int, default=5)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--no-loop", action="store_true", help="skip the per-K loop peer")
    ap.add_argument("--no-gmm", action="store_true", help="skip the two-stage GMM")
    ap.add_argument(
        "--no-backtest", action="store_true", help="skip the forecast backtest"
    )
    a = ap.parse_args()
    if a.quick:
        a.patients, a.n_init = 400, 4
    ks = list(range(1, a.max_k + 1))
    df, cls = simulate(a.patients)
    n = a.patients
    print(
        f"{n} patients x 5 visits, 3 true classes; K = 1..{a.max_k}, "
        f"{a.n_init} starts per K; {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    rows = []
    warnings.simplefilter("ignore")  # overfitted K: lonely optima, tiny classes

    def row(tool: str, seconds: float, n_jobs: int, best: int, a3: float) -> None:
        rows.append(
            {
                "tool": tool,
                "patients": n,
                "visits": 5,
                "max_k": a.max_k,
                "n_init": a.n_init,
                "n_jobs": n_jobs,
                "seconds": round(seconds, 3),
                "best_k_bic": best,
                "ari_k3": round(a3, 4),
                "target_s": TARGET_S,
                "load_1min": round(os.getloadavg()[0], 2),
                "cpus": os.cpu_count(),
            }
        )
        print(
            f"  {tool:<34} {seconds:7.1f} s  n_jobs={n_jobs}  BIC picks K={best}  "
            f"ARI(K=3)={a3:.3f}"
        )

    t0 = time.perf_counter()
    sel = select_n_classes(
        df, FORMULA, ks, n_init=a.n_init, seed=1, n_jobs=a.n_jobs, progress=False
    )
    s_sel = time.perf_counter() - t0
    a3 = ari(cls, map_labels(sel.models[3], n)) if 3 in sel.models else float("nan")
    row("alsprog select_n_classes", s_sel, a.n_jobs, int(sel.best or 0), a3)
    print(sel.table.round(3).to_string())
    if sel.note:
        print(f"  note: {sel.note}")
    verdict = "met" if s_sel <= TARGET_S else "MISSED"
    print(f"  target <= {TARGET_S:.0f} s: {verdict} ({s_sel:.1f} s)")

    if not a.no_loop:
        t0 = time.perf_counter()
        fits = {
            k: LatentClassMixedModel(FORMULA, k, n_init=a.n_init, seed=1).fit(df)
            for k in ks
        }
        s_loop = time.perf_counter() - t0
        best = min(fits, key=lambda k: fits[k].bic)
        a3 = ari(cls, map_labels(fits[3], n)) if 3 in fits else float("nan")
        row("per-K loop LatentClassMixedModel", s_loop, 1, best, a3)

    if not a.no_gmm:
        t0 = time.perf_counter()
        gm = two_stage(df, ks, seed=1)
        s_gmm = time.perf_counter() - t0
        F = gm.pop("features")
        best = min(gm, key=lambda k: gm[k].bic(F))
        a3 = ari(cls, gm[3].predict(F)) if 3 in gm else float("nan")
        row("two-stage OLS + GaussianMixture", s_gmm, 1, best, a3)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(OUT, index=False)
    print(f"wrote {OUT.relative_to(ROOT)}")

    if not a.no_backtest:
        bt = forecast_backtest(a.patients, min(a.n_init, 6))
        print("forecast backtest (held-out 20 %; lower rmse/crps is better):")
        print(bt.round(3).to_string(index=False))
        key = ["data", "history_months", "horizon"]
        wide = bt.pivot_table(index=key, columns="model", values=["rmse", "crps"])
        for metric in ("rmse", "crps"):
            ratio = wide[(metric, "latent_class_3")] / wide[(metric, "mixed_ml")]
            for idx, r in ratio.items():
                print(f"  {metric} latent/mixed {idx}: {r:.3f}")
        bt.to_csv(BACKTEST_OUT, index=False)
        print(f"wrote {BACKTEST_OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
