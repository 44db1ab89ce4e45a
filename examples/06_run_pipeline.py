"""The whole pipeline from a config file: what ``alsprog run CONFIG.toml`` does.

1. Simulate a small cohort and write its visits and subjects tables (stand-ins for
   a clinic's exports).
2. Write a run config naming them, the models, the forecast, the trial-design
   questions and the report.
3. Run it: tables, model summaries, forecasts, backtest, sample sizes, figures and a
   self-contained ``report.html`` in one folder, with the inputs copied beside them.

Add ``[models.bayes]`` with ``type = "bayesian"`` (and ``kind = "sigmoid"``) for the
Bayesian models, and ``[imaging]`` for NIfTI maps; see the README's config reference.

Run: ``python examples/06_run_pipeline.py [OUT_DIR]``
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alsprog.data import write_table
from alsprog.report import run
from alsprog.simulate import simulate_cohort

CONFIG = """\
[run]
title = "Example study"
seed = 1

[data]
visits = "visits.csv"
subjects = "subjects.csv"

[models.lmm]
type = "mixed"
formula = "alsfrs_r_total ~ months * onset_site + (months | subject_id)"

[forecast]
history_months = 3
horizons = [6, 12]
baselines = ["delta_fs", "patient_ols"]
n_patients = 3

[design]
slowing = [0.25, 0.5]
visit_months = [0, 3, 6, 9, 12]
n_sims = 50

[report]
n_subjects = 4
"""


def main(out: Path) -> None:
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    cohort = simulate_cohort(80, months=18, seed=1)
    write_table(cohort.visits, data / "visits.csv")
    write_table(cohort.subjects, data / "subjects.csv")
    config = data / "study.toml"
    config.write_text(CONFIG)

    result = run(
        config,
        out / "results",
        progress=False,
        on_stage=lambda i, n, stage, msg: print(f"[{i}/{n}] {stage}: {msg}"),
    )
    print(f"report: {result.report} ({result.n_figures} figures)")
    print("stage seconds:", {k: round(v, 1) for k, v in result.stage_seconds.items()})


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    target.mkdir(parents=True, exist_ok=True)
    main(target)
