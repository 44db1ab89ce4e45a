"""Several outcomes on one latent disease time: the multivariate disease-course model.

1. ``simulate_disease_course``: patients whose ALSFRS-R domains and FVC decline as
   logistic curves on a shared latent time, with known time shifts, speeds and the
   order in which the outcomes decline.
2. ``DiseaseCourseModel`` (Leaspy's multivariate logistic model, sampled fully by
   NUTS): population curves, the posterior probability of each order of decline,
   each patient's stage and speed against the truth.
3. Forecasts of new patients from their first visits, for every outcome, through the
   model contract (``alsprog.forecast.forecast`` on ``model.for_outcome(name)``).
4. The stage plot.

Run: ``python examples/10_disease_course.py [OUT_DIR]`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from alsprog.errors import ConvergenceWarning
from alsprog.forecast import forecast
from alsprog.models import DiseaseCourseModel
from alsprog.plots import disease_course_plot
from alsprog.simulate import simulate_disease_course

OUTCOMES = [
    "alsfrs_r_bulbar",
    "alsfrs_r_gross_motor",
    "alsfrs_r_respiratory",
    "fvc_percent_predicted",
]


def main(out: Path) -> None:
    sim = simulate_disease_course(64, outcomes=OUTCOMES, seed=3)
    print("true order of decline:", " < ".join(sim.decline_order()))
    new = sim.visits["subject_id"].isin(["P0063", "P0064"])
    model = DiseaseCourseModel(
        OUTCOMES, chains=2, draws=300, tune=300, seed=1, progress=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # few draws: a demo
        model.fit(sim.visits[~new])
    dg = model.diagnostics_
    print(
        f"sampled in {model.sampling_seconds_:.0f} s: max R-hat {dg['max_rhat']:.3f}, "
        f"min bulk ESS {dg['min_ess_bulk']:.0f}"
    )

    order = model.decline_order(0.5)
    print("\nhalf-way times (latent months) and P(first):")
    print(order.times.round(2).to_string())
    print("\nmost probable orders:")
    print(order.orders.head(3).round(3).to_string(index=False))

    stage = model.patient_stage().set_index("subject_id")
    truth = sim.truth.set_index("subject_id").loc[stage.index]
    r_tau = np.corrcoef(stage["tau_mean"], truth["tau"])[0, 1]
    r_xi = np.corrcoef(stage["xi_mean"], truth["xi"])[0, 1]
    print(f"\ntime shift r = {r_tau:.2f}, acceleration r = {r_xi:.2f} (vs the truth)")

    history = sim.visits[new & (sim.visits["months"] <= 6)]
    for outcome in OUTCOMES:
        fc = forecast(model.for_outcome(outcome), history, [12, 18], seed=2)
        print(f"\n{outcome}, forecast from the first 6 months:")
        print(
            fc[["subject_id", "months", "mean", "lower", "upper"]]
            .round(1)
            .to_string(index=False)
        )

    fig = disease_course_plot(model)
    fig.savefig(out / "disease_course.png", dpi=100)
    plt.close(fig)
    print(f"\nstage plot: {out / 'disease_course.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path)
    args = parser.parse_args()
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        main(args.out)
