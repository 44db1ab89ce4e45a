"""Fit the trajectory models to a simulated cohort: mixed (REML) and Bayesian.

1. Simulate 80 patients followed for 18 months and assemble the long table.
2. Fit the linear mixed model ``alsfrs_r_total ~ months * onset_site +
   (months | subject_id)`` (lme4-exact REML) and print its summary.
3. Fit the same model as a Bayesian hierarchical model (PyMC sampled by numpyro,
   subject effects integrated out exactly), print its summary and PSIS-LOO, save the
   posterior (netCDF) and set its fixed effects beside the REML estimates.
   (``kind="sigmoid"`` fits the D50 model on months since onset the same way.)

Run: ``python examples/02_models.py [OUT_DIR]``
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from alsprog.data import assemble
from alsprog.models import BayesianTrajectoryModel, LinearMixedModel
from alsprog.simulate import simulate_cohort


def main(out: Path) -> None:
    cohort = simulate_cohort(80, months=18, seed=21)
    table = assemble(cohort.visits, cohort.subjects)

    lmm = LinearMixedModel(
        "alsfrs_r_total ~ months * onset_site + (months | subject_id)"
    ).fit(table)
    print(lmm.summary())

    bayes = BayesianTrajectoryModel(
        "linear",
        formula="alsfrs_r_total ~ months * onset_site",
        chains=2,
        draws=300,
        tune=300,
        seed=21,
        progress=False,
    )
    with warnings.catch_warnings():  # few draws: the convergence gate may warn
        warnings.simplefilter("ignore")
        bayes.fit(table)
    print()
    print(bayes.summary(level=0.9))
    print()
    print(bayes.loo())
    bayes.save(out / "bayes_linear.nc")

    both = pd.DataFrame(
        {
            "REML": lmm.fe_params_,
            "REML SE": lmm.bse_,
            "posterior mean": bayes.summary().tables["fixed"]["mean"],
            "posterior SD": bayes.summary().tables["fixed"]["sd"],
        }
    )
    print("fixed effects, REML vs Bayesian:")
    print(both.round(3).to_string())
    print(f"posterior saved in {out / 'bayes_linear.nc'}")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    target.mkdir(parents=True, exist_ok=True)
    main(target)
