"""Benchmark: 12-month forecast accuracy of the sigmoid (D50) model against Leaspy.

Usage::

    python benchmarks/sigmoid_forecast.py [--quick] [--subjects 1200] [--test 200]
        [--draws 1000] [--tune 1000] [--chains 2] [--leaspy-python PATH]
        [--leaspy-iter 2000] [--n-boot 2000] [--seed 2026]

Issue 26, item 1 ("12-month forecast RMSE below Leaspy's on the same data").  One
simulated cohort (``simulate_cohort``: each patient's ALSFRS-R follows the D50 curve
``48 / (1 + exp((t - d50) / dx))`` on months since onset, plus item-level noise) is
split at random into training patients (the whole follow-up) and test patients.
Each test patient's visits in the first ``--history`` months (``months <= 3``) are the
history; the forecasts are made at that patient's own visits near 6 and 12 months
(within ``--tol`` months) and scored by RMSE against the observed ALSFRS-R total and
against the noiseless true curve at the same time (``c.truth``'s ``d50``, ``dx``).

Tools:

- ``alsprog sigmoid``: ``BayesianTrajectoryModel("sigmoid",
  formula="alsfrs_r_total ~ onset_site")`` (NUTS, numpyro), forecast by
  :func:`alsprog.forecast.forecast` (posterior predictive given the history); the
  point forecast is the predictive **mean** (``median`` RMSEs go to the CSV too);
- ``alsprog LMM``: ``LinearMixedModel("alsfrs_r_total ~ months * onset_site +
  (months | subject_id)")`` forecast the same way (conditional normal, its mean);
- ``Leaspy logistic``: Leaspy's univariate ``LogisticModel`` (``source_dimension=0``)
  on ``y = 1 - ALSFRS-R / 48`` (in [0, 1], rising with progression, as Leaspy's
  logistic curve does) with ``TIME`` = months since onset (the sigmoid model's time
  axis), fitted by MCMC-SAEM (``--leaspy-iter`` iterations), the test patients
  personalised from their history by ``scipy_minimize`` (MAP of ``tau``, ``xi``),
  then ``estimate`` at the forecast times mapped back to ``48 * (1 - y)``.
  Leaspy is not a dependency of alsprog: it runs in its own interpreter
  (``--leaspy-python``, e.g. a venv with ``torch`` CPU and ``leaspy``) on CSV files
  written to a temporary folder; without it the row prints ``skipped``.
  Its fit and forecast seconds are timed inside that process (imports excluded).
- ``true curve``: the noiseless curve itself, the noise floor of the observed RMSE
  (a reference, not a tool).

Fit seconds are the whole ``fit``; forecast seconds the whole forecast of the test
patients.  Each tool's 12-month RMSE minus Leaspy's is printed with a 90 % paired
bootstrap interval over the test patients (``d_rmse_*_12_vs_leaspy*`` in the CSV): with
~100 patients at 12 months, differences of a few tenths are within noise.  One run,
no warm-up (a first fit, JAX compilation included); timings on a
shared machine are noisy.  Rows go to ``benchmarks/results/sigmoid_forecast.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
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

from alsprog._io import atomic_path  # noqa: E402
from alsprog.data import assemble  # noqa: E402
from alsprog.forecast import forecast  # noqa: E402
from alsprog.models import LinearMixedModel  # noqa: E402
from alsprog.models.bayes._model import BayesianTrajectoryModel  # noqa: E402
from alsprog.simulate import simulate_cohort  # noqa: E402

SIGMOID_FORMULA = "alsfrs_r_total ~ onset_site"
LMM_FORMULA = "alsfrs_r_total ~ months * onset_site + (months | subject_id)"
COLS = ["subject_id", "months", "months_since_onset", "alsfrs_r_total", "onset_site"]
HORIZONS = (6.0, 12.0)

# Run by the Leaspy interpreter: argv = folder, n_iter, seed.  Reads train.csv and
# history.csv (ID, TIME, Y), at.csv (K, ID, TIME); writes pred.csv (K, Y) and
# info.json (version, settings, seconds, fitted population parameters).
LEASPY_RUNNER = r"""
import json, sys, time, warnings
from pathlib import Path
warnings.filterwarnings("ignore")
import pandas as pd
import leaspy
from importlib.metadata import version
from leaspy.models import LogisticModel

folder, n_iter, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def read(name):
    d = pd.read_csv(folder / name, dtype={"ID": str})
    return d.set_index(["ID", "TIME"]).sort_index()

train, hist = read("train.csv"), read("history.csv")
at = pd.read_csv(folder / "at.csv", dtype={"ID": str})
t0 = time.perf_counter()
model = LogisticModel(name="als", source_dimension=0)
model.fit(train, "mcmc_saem", seed=seed, n_iter=n_iter, progress_bar=False)
fit_s = time.perf_counter() - t0
t0 = time.perf_counter()
ip = model.personalize(hist, "scipy_minimize", seed=seed, progress_bar=False)
times = {i: g["TIME"].to_numpy() for i, g in at.groupby("ID", sort=False)}
keys = {i: g["K"].to_numpy() for i, g in at.groupby("ID", sort=False)}
est = model.estimate(times, ip)
forecast_s = time.perf_counter() - t0
rows = [
    (int(k), float(v))
    for i, ks in keys.items()
    for k, v in zip(ks, est[i].reshape(len(ks), -1)[:, 0])
]
pd.DataFrame(rows, columns=["K", "Y"]).to_csv(folder / "pred.csv", index=False)
params = {k: v.tolist() for k, v in model.parameters.items()}
info = {"version": version("leaspy"), "torch": version("torch"), "n_iter": n_iter,
        "seed": seed, "fit_s": fit_s, "forecast_s": forecast_s, "params": params}
(folder / "info.json").write_text(json.dumps(info, default=str))
"""


def make_split(n: int, n_test: int, seed: int, history: float, tol: float):
    """The cohort's table, training rows, test histories and forecast targets."""
    c = simulate_cohort(n, seed=seed)
    df = assemble(c.visits, c.subjects)
    df = df[COLS].dropna().reset_index(drop=True)
    df["subject_id"] = df["subject_id"].astype(str)
    ids = np.asarray(pd.unique(df["subject_id"]), dtype=object)
    rng = np.random.default_rng(seed + 1)
    test_ids = set(rng.permutation(ids)[:n_test])
    is_test = df["subject_id"].isin(test_ids)
    train, test = df[~is_test], df[is_test]
    hist = test[test["months"] <= history]
    # each test patient's visit nearest each horizon, within tol months
    parts = []
    for h in HORIZONS:
        near = test[(test["months"] - h).abs() <= tol].copy()
        near["_d"] = (near["months"] - h).abs()
        near = near.sort_values("_d").drop_duplicates("subject_id")
        parts.append(near.drop(columns="_d").assign(horizon=h))
    at = pd.concat(parts, ignore_index=True)
    at = at[at["subject_id"].isin(set(hist["subject_id"]))]
    truth = c.truth.set_index("subject_id").reindex(at["subject_id"])
    t = truth["months_onset_to_baseline"].to_numpy() + at["months"].to_numpy(float)
    at["true"] = 48.0 / (
        1.0 + np.exp((t - truth["d50"].to_numpy()) / truth["dx"].to_numpy())
    )
    return df, train, hist, at.reset_index(drop=True)


def score(at: pd.DataFrame, pred: np.ndarray) -> dict[str, float]:
    """RMSE against the observed total and the true curve at each horizon."""
    out: dict[str, float] = {}
    for h in HORIZONS:
        k = (at["horizon"] == h).to_numpy()
        e_obs = pred[k] - at["alsfrs_r_total"].to_numpy(float)[k]
        e_true = pred[k] - at["true"].to_numpy()[k]
        out[f"rmse_obs_{h:g}"] = float(np.sqrt(np.mean(e_obs**2)))
        out[f"rmse_true_{h:g}"] = float(np.sqrt(np.mean(e_true**2)))
        out[f"n_{h:g}"] = int(k.sum())
    return out


def vs_leaspy(at: pd.DataFrame, rows: list[dict], n_boot: int, seed: int) -> None:
    """Each tool's 12-month RMSE minus Leaspy's, with a 90 % paired bootstrap
    interval over the patients (added to ``rows`` and printed)."""
    lea = [r for r in rows if r["tool"].startswith("Leaspy")]
    if not lea:
        return
    base = lea[0]["_pred"]
    k = (at["horizon"] == 12.0).to_numpy()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, int(k.sum()), size=(n_boot, int(k.sum())))
    print("\n12-month RMSE minus Leaspy's (90 % paired bootstrap over patients):")
    for r in rows:
        if r is lea[0] or "_pred" not in r:
            continue
        for what in ("obs", "true"):
            ref = at["alsfrs_r_total" if what == "obs" else "true"].to_numpy(float)[k]
            e1, e0 = (r["_pred"][k] - ref) ** 2, (base[k] - ref) ** 2
            d = np.sqrt(e1[idx].mean(1)) - np.sqrt(e0[idx].mean(1))
            point = np.sqrt(e1.mean()) - np.sqrt(e0.mean())
            lo, hi = np.quantile(d, [0.05, 0.95])
            col = f"d_rmse_{what}_12_vs_leaspy"
            r[col], r[col + "_lo"], r[col + "_hi"] = point, lo, hi
            print(f"  {r['tool']}, {what}: {point:+.3f} [{lo:+.3f}, {hi:+.3f}]")


def run_alsprog(model, train, hist, at, seed, label, rows):
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(train)
    fit_s = time.perf_counter() - t0
    notes = sorted(
        {f"{w.category.__name__}: {w.message}" for w in caught}
    )  # convergence and other warnings, reported
    for n in notes:
        print(f"  {label} fit warned: {n}", flush=True)
    target = at[["subject_id", "months"]]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = forecast(model, hist, target, seed=seed)
    fc_s = time.perf_counter() - t0
    m = target.merge(f, on=["subject_id", "months"], how="left", validate="1:1")
    row = {"tool": label, "fit_s": fit_s, "forecast_s": fc_s, "point": "mean"}
    row.update(score(at, m["mean"].to_numpy(float)))
    row["_pred"] = m["mean"].to_numpy(float)
    med = score(at, m["median"].to_numpy(float))
    row.update({f"{k}_median": v for k, v in med.items() if k.startswith("rmse")})
    row["warnings"] = " | ".join(notes)
    row["max_rhat"] = getattr(model, "diagnostics_", {}).get("max_rhat", np.nan)
    rows.append(row)
    return model


def leaspy_works(python: str | None) -> str | None:
    """Why the Leaspy interpreter cannot be used (None if it can)."""
    if not python:
        return "no --leaspy-python given"
    try:
        r = subprocess.run(
            [python, "-c", "import leaspy, torch, pandas"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{python} does not run ({e})"
    if r.returncode != 0:
        return f"{python} cannot import leaspy: {r.stderr.strip().splitlines()[-1:]}"
    return None


def run_leaspy(python, train, hist, at, n_iter, seed, rows):
    def frame(d: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "ID": d["subject_id"].to_numpy(),
                "TIME": d["months_since_onset"].to_numpy(float),
                "Y": 1.0 - d["alsfrs_r_total"].to_numpy(float) / 48.0,
            }
        ).drop_duplicates(["ID", "TIME"])

    with tempfile.TemporaryDirectory(prefix="alsprog-leaspy-") as tmp:
        folder = Path(tmp)
        frame(train).to_csv(folder / "train.csv", index=False)
        frame(hist).to_csv(folder / "history.csv", index=False)
        at_l = pd.DataFrame(
            {
                "K": np.arange(len(at)),
                "ID": at["subject_id"].to_numpy(),
                "TIME": at["months_since_onset"].to_numpy(float),
            }
        )
        at_l.to_csv(folder / "at.csv", index=False)
        (folder / "runner.py").write_text(LEASPY_RUNNER)
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        t0 = time.perf_counter()
        r = subprocess.run(
            [python, str(folder / "runner.py"), tmp, str(n_iter), str(seed)],
            capture_output=True,
            text=True,
            env=env,
        )
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            print(f"Leaspy logistic: failed\n{r.stderr[-2000:]}", flush=True)
            return None
        pred = pd.read_csv(folder / "pred.csv", dtype={"ID": str})
        info = json.loads((folder / "info.json").read_text())
    y = 48.0 * (1.0 - pred.set_index("K")["Y"].reindex(at_l["K"]).to_numpy(float))
    row = {
        "tool": f"Leaspy {info['version']} logistic (MCMC-SAEM {n_iter} it)",
        "fit_s": info["fit_s"],
        "forecast_s": info["forecast_s"],
        "point": "MAP plug-in",
    }
    row.update(score(at, y))
    row["_pred"] = y
    row["warnings"] = ""
    rows.append(row)
    print(
        f"  Leaspy {info['version']} (torch {info['torch']}): n_iter {n_iter}, "
        f"personalize scipy_minimize; subprocess wall {wall:.0f} s; "
        f"population: {info['params']}",
        flush=True,
    )
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 patients, short chains")
    ap.add_argument("--subjects", type=int, default=1200)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--history", type=float, default=3.0)
    ap.add_argument("--tol", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--leaspy-python", default=None)
    ap.add_argument("--leaspy-iter", type=int, default=2000)
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args(argv)
    if args.quick:
        args.subjects, args.test = 300, 60
        args.draws, args.tune, args.leaspy_iter = 300, 300, 500

    df, train, hist, at = make_split(
        args.subjects, args.test, args.seed, args.history, args.tol
    )
    print(
        f"data: {df['subject_id'].nunique()} patients ({train['subject_id'].nunique()}"
        f" training, {len(train)} rows; {hist['subject_id'].nunique()} forecast from "
        f"months <= {args.history:g}); targets within {args.tol:g} months of "
        + ", ".join(f"{h:g} ({(at['horizon'] == h).sum()})" for h in HORIZONS),
        flush=True,
    )
    rows: list[dict] = []
    bayes = BayesianTrajectoryModel(
        "sigmoid",
        formula=SIGMOID_FORMULA,
        chains=args.chains,
        draws=args.draws,
        tune=args.tune,
        seed=args.seed,
        progress=False,
    )
    label = f"alsprog sigmoid ({args.chains}x{args.draws}, tune {args.tune})"
    bayes = run_alsprog(bayes, train, hist, at, args.seed, label, rows)
    d = bayes.diagnostics_
    print(
        f"  {label}: R-hat max {d.get('max_rhat', float('nan')):.3f}, min bulk ESS "
        f"{d.get('min_ess_bulk', float('nan')):.0f}, {d.get('n_divergent', 'n/a')} "
        f"divergent; {rows[-1]['fit_s']:.0f} s fit",
        flush=True,
    )
    run_alsprog(
        LinearMixedModel(LMM_FORMULA), train, hist, at, args.seed, "alsprog LMM", rows
    )
    why = leaspy_works(args.leaspy_python)
    if why is None:
        run_leaspy(
            args.leaspy_python, train, hist, at, args.leaspy_iter, args.seed, rows
        )
    else:
        print(f"Leaspy logistic: skipped ({why})", flush=True)
    ref = {"tool": "true curve (noise floor)", "point": "truth", "warnings": ""}
    ref.update(score(at, at["true"].to_numpy()))
    rows.append(ref)

    vs_leaspy(at, rows, args.n_boot, args.seed)
    table = pd.DataFrame(rows).drop(columns="_pred")
    table.insert(1, "subjects", args.subjects)
    table.insert(2, "n_test", hist["subject_id"].nunique())
    show = [
        "tool",
        "fit_s",
        "forecast_s",
        "rmse_obs_6",
        "rmse_obs_12",
        "rmse_true_6",
        "rmse_true_12",
        "n_6",
        "n_12",
    ]
    print()
    pd.set_option("display.width", 200)
    print(table[show].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    out = ROOT / "benchmarks" / "results"
    with atomic_path(out / "sigmoid_forecast.csv") as tmp:
        table.to_csv(tmp, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
