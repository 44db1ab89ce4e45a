"""Forecast new patients' ALSFRS-R from their first 3 months, and backtest it.

1. Simulate 600 patients; fit the mixed model on 500 of them.
2. Forecast the other 100 at 6 and 12 months from their first 3 months of visits,
   with 90 % intervals; draw one patient's fan chart.
3. Fit the joint model of the trajectory and death/tracheostomy: forecasts given the
   patient is alive then, and the probability of being event-free at 6/12/24 months.
4. Backtest the mixed model, the same recalibrated on the training patients' own
   errors (centre and band, or the band only), and the joint model against the ΔFS, per-patient and random-forest
   baselines, the simulator's Bayes oracle and the true curves; draw the calibration.

Run: ``python examples/05_forecast.py [OUT_DIR]``
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from alsprog.data import assemble
from alsprog.forecast import (
    CalibratedForecaster,
    DeltaFSBaseline,
    PatientOLSBaseline,
    RandomForestSlope,
    backtest,
    calibration,
    forecast,
)
from alsprog.models import JointModel, LinearMixedModel
from alsprog.plots import calibration_curve, fan_chart
from alsprog.simulate import simulate_cohort

FORMULA = "alsfrs_r_total ~ months * (delta_fs + onset_site) + (months | subject_id)"


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cohort = simulate_cohort(600, seed=42)
    table = assemble(cohort.visits, cohort.subjects)
    new = table["subject_id"] <= "P0100"
    model = LinearMixedModel(FORMULA).fit(table[~new])
    history = table[new & (table["months"] <= 3.5)]
    f = forecast(model, history, [4, 6, 8, 10, 12], level=0.9)
    print(f[f["months"].isin([6, 12])].head(6).round(1).to_string(index=False))

    ax = fan_chart(history, f, "P0001", actual=table[new])
    ax.figure.savefig(out / "fan_chart.png", dpi=100)
    plt.close("all")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joint = JointModel(FORMULA, event_formula="delta_fs + onset_site").fit(
            table[~new]
        )
    print(joint.event_params_.round(3).to_string())
    given_alive = forecast(joint, history, [12])
    print(given_alive.head(3).round(1).to_string(index=False))
    print(joint.predict_survival(history, [6, 12, 24]).head(6).round(3).to_string())

    models = {
        "mixed model": LinearMixedModel(FORMULA),
        "mixed model, recalibrated": CalibratedForecaster(LinearMixedModel(FORMULA)),
        "mixed model, band recalibrated": CalibratedForecaster(
            LinearMixedModel(FORMULA), shift=False
        ),
        "joint model": JointModel(FORMULA),
        "ΔFS": DeltaFSBaseline(),
        "per-patient OLS": PatientOLSBaseline(),
        "random forest": RandomForestSlope(n_estimators=200, random_state=1),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res, forecasts = backtest(
            cohort, models, seed=1, n_samples=200, return_forecasts=True
        )
    cols = ["model", "horizon", "n", "rmse", "bias", "coverage", "crps", "slope_rmsd"]
    print(res[cols].round(3).to_string(index=False))
    scored = forecasts[~forecasts["model"].isin(["true_curve"])]
    cal = calibration(scored, forecasts.attrs["actual"])
    ax = calibration_curve(cal)
    ax.figure.savefig(out / "calibration.png", dpi=100)
    plt.close("all")
    print(f"figures written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
