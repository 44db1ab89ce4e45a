"""A registered model with scheduled visits (MMRM) in a run (issue 19): fitted,
saved, summarised and compared; drawn at its visits; left out of the forecasts on
``months``, with the reason in the report."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alsprog.data import assemble, write_table
from alsprog.models import MMRM
from alsprog.report import run
from alsprog.simulate import simulate_cohort


def _trial_tables(folder):
    """Visits with a text ``visit`` column (months rounded to 3, as a CSV's extra
    column loads) up to month 12, subjects with an alternating ``arm``."""
    c = simulate_cohort(60, 0, seed=3)
    t = assemble(c.visits, c.subjects)
    months = t.set_index(["subject_id", "visit_date"])["months"]
    v = c.visits.copy()
    key = pd.MultiIndex.from_frame(v[["subject_id", "visit_date"]])
    v["visit"] = np.round(months.reindex(key).to_numpy() / 3) * 3
    v = v.drop_duplicates(["subject_id", "visit"])
    v = v[v["visit"] <= 12]
    s = c.subjects.copy()
    s["arm"] = np.where(np.arange(len(s)) % 2 == 0, "placebo", "active")
    write_table(v, folder / "visits.csv")
    write_table(s, folder / "subjects.csv")


TRIAL = 'type = "mmrm"\nformula = "alsfrs_r_total ~ visit * arm"\nreference = "placebo"'


def test_a_run_with_an_mmrm_section(config_writer, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _trial_tables(data)
    config = config_writer(
        data,
        models__trial=TRIAL,
        forecast='models = ["lmm", "trial"]\nbaselines = ["delta_fs"]\nn_patients = 2',
        design="enabled = false",
    )
    out = tmp_path / "out"
    run(config, out, progress=False)
    comp = pd.read_csv(out / "models" / "comparison.csv", index_col="model")
    assert comp.loc["trial", "type"] == "mmrm"
    # REML AIC/BIC count the 15 covariance parameters of 5 visits (SAS, R mmrm)
    ll = comp.loc["trial", "loglik"]
    assert comp.loc["trial", "aic"] == -2 * ll + 2 * 15
    assert np.isclose(
        comp.loc["trial", "bic"], -2 * ll + 15 * np.log(comp.loc["trial", "n_subjects"])
    )
    back = MMRM.load(out / "models" / "trial.npz")
    # the text visits were read as numbers: visit 12 is the last, not '9.0'
    assert back.visits_ == [0.0, 3.0, 6.0, 9.0, 12.0]
    assert back.contrast()["visit"].item() == 12.0
    lsm = pd.read_csv(out / "models" / "trial_lsmeans.csv")
    assert len(lsm) == 10
    fc = pd.read_csv(out / "forecasts.csv")
    assert set(fc["model"]) == {"lmm"}
    bt = pd.read_csv(out / "backtest.csv")
    assert "trial" not in set(bt["model"]) and "lmm" in set(bt["model"])
    html = (out / "report.html").read_text()
    assert "trial is left out of the forecasts: MMRM forecasts at its visit" in html
