"""The nonlinear (D50 sigmoid, nlme) model in a run: fitted, saved, compared,
forecast and backtested through the generic registry path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alsprog.models import NonlinearMixedModel
from alsprog.report import run


@pytest.mark.slow
def test_the_nonlinear_model_runs_through_the_generic_path(
    tiny_inputs, config_writer, tmp_path
):
    config = config_writer(
        tiny_inputs,
        models__d50='type = "nonlinear"\nformula = "alsfrs_r_total ~ onset_site"',
        forecast='models = ["lmm", "d50"]\nbaselines = ["delta_fs"]\nn_patients = 2',
    )
    out = tmp_path / "out"
    run(config, out, progress=False)
    comp = pd.read_csv(out / "models" / "comparison.csv", index_col="model")
    assert comp.loc["d50", "type"] == "nonlinear"
    back = NonlinearMixedModel.load(out / "models" / "d50.npz")
    assert back.time == "months_since_onset"  # the sigmoid's time, not [data]'s
    assert np.isclose(comp.loc["d50", "loglik"], back.llf_, rtol=0, atol=1e-9)
    assert np.isclose(comp.loc["d50", "aic"], back.aic)
    bt = pd.read_csv(out / "backtest.csv")
    assert (bt["model"] == "d50").any()
    fc = pd.read_csv(out / "forecasts.csv")
    assert fc.loc[fc["model"] == "d50", ["lower", "upper"]].stack().between(0, 48).all()
    assert "Lindstrom-Bates" in (out / "report.html").read_text()
