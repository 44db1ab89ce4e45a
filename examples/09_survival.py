"""Survival as the ENCALS model predicts it, and scores of every survival prediction.

1. A simulated cohort with death/tracheostomy, permanent NIV and FVC per visit.
2. ``SurvivalModel``: Royston-Parmar on the ENCALS composite (death, tracheostomy or
   NIV), time from symptom onset with delayed entry at the first visit; hazard
   ratios, a patient's predicted survival with its interval and median.
3. Cox beside it: the same hazard ratios to a few per cent.
4. ENCALS-style risk groups (quintiles of the prognostic index), observed beside
   predicted, and a figure.
5. ``backtest_survival``: C-index, time-dependent AUC, Brier and calibration slope on
   held-out patients; then at a 6-month landmark, the joint model's dynamic
   predictions (visits up to month 6) against the baseline survival model.

Run: ``python examples/09_survival.py [OUT_DIR]``
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from alsprog.data import assemble
from alsprog.errors import DataWarning
from alsprog.forecast import backtest_survival
from alsprog.models import JointModel, SurvivalModel, risk_groups
from alsprog.plots import risk_group_curves, survival_curve
from alsprog.simulate import simulate_cohort

COVARIATES = (
    "age_at_onset + onset_site + diagnostic_delay_months + delta_fs "
    "+ fvc_percent_predicted"
)
ENCALS = f"Surv(death_tracheostomy_or_niv_months, death_tracheostomy_or_niv_observed) ~ {COVARIATES}"
DEATH = f"Surv(death_or_tracheostomy_months, event_observed) ~ {COVARIATES}"


def main(out: Path) -> None:
    warnings.simplefilter("ignore", DataWarning)  # baseline-only dropouts left out
    cohort = simulate_cohort(500, seed=25)
    table = assemble(cohort.visits, cohort.subjects)
    events = table.drop_duplicates("subject_id")
    print(
        f"{len(events)} patients: {int(events['event_observed'].sum())} deaths or "
        f"tracheostomies, {int(events['niv_observed'].sum())} permanent NIV starts"
    )

    rp = SurvivalModel(ENCALS, time_origin="onset").fit(table)
    print("\n" + rp.describe())
    print(rp.hazard_ratios().round(3).to_string())
    one = table[table["subject_id"] == "P0001"]
    s = rp.predict_survival(one, [12, 24])
    print(
        f"\nP0001, event-free from the first visit:\n{s.round(3).to_string(index=False)}"
    )
    print(f"P0001's predicted median: {rp.predict_median(one).iloc[0]:.1f} months")

    cox = SurvivalModel(ENCALS, method="cox", time_origin="onset").fit(table)
    print("\nCox hazard ratios beside Royston-Parmar's:")
    print(
        (cox.hazard_ratios()["hazard_ratio"] / rp.hazard_ratios()["hazard_ratio"])
        .round(3)
        .rename("cox / rp")
        .to_string()
    )

    groups = risk_groups(rp, table)
    print("\nrisk groups (quintiles of the prognostic index):")
    print(groups.table.round(2).to_string())
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    risk_group_curves(groups, ax=ax[0])
    grid = [float(t) for t in range(0, 37, 2)]
    survival_curve(rp.predict_survival(one, grid), label="P0001", ax=ax[1])
    fig.savefig(out / "survival_risk_groups.png", dpi=100)
    plt.close(fig)

    scores = backtest_survival(
        table,
        {"rp": SurvivalModel(ENCALS, time_origin="onset"),
         "cox": SurvivalModel(ENCALS, method="cox", time_origin="onset")},
        times=[6, 12, 18],
        seed=1,
    )  # fmt: skip
    cols = ["model", "horizon", "n", "harrell_c", "auc", "brier", "brier_km"]
    print("\nheld-out scores:")
    print(scores.scores[cols + ["calibration_slope"]].round(3).to_string(index=False))

    landmark = backtest_survival(
        table,
        {
            "cox (baseline)": SurvivalModel(DEATH, method="cox", time_origin="onset"),
            "joint (visits to month 6)": JointModel(
                "alsfrs_r_total ~ months + (months | subject_id)",
                event_formula="delta_fs + onset_site + age_at_onset",
            ),
        },
        times=[12, 18],
        landmark=6,
        test_fraction=0.5,
        seed=1,
    )
    print("\ndeath/tracheostomy at the 6-month landmark:")
    print(landmark.scores[cols].round(3).to_string(index=False))
    print(f"\nfigure: {out / 'survival_risk_groups.png'}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=None, help="folder for the figure")
    args = ap.parse_args()
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    main(folder)
