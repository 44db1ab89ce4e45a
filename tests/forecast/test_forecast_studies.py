"""Calibration and accuracy studies on simulated cohorts (slow; run in CI).

Truth: the simulator's own Bayes oracle (alsprog.simulate.oracle_forecast) and each
patient's true curve; 10 replications of 1,000 patients (800 train / 200 forecast
from their first 3 months) give about 1,300 scored values at 6 months and 1,000 at
12, so the pooled coverage is measured to about +-1 %.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from forecast_testdata import LMM_FORMULA

from alsprog.forecast import DeltaFSBaseline, PatientOLSBaseline, backtest
from alsprog.models import LinearMixedModel
from alsprog.simulate import simulate_cohort


def _pool(results: pd.DataFrame) -> pd.DataFrame:
    def agg(d: pd.DataFrame) -> pd.Series:
        n = d["n"].to_numpy()
        return pd.Series(
            {
                "n": n.sum(),
                "rmse": np.sqrt(np.sum(d["rmse"] ** 2 * n) / n.sum()),
                "coverage": np.sum(d["coverage"] * n) / n.sum(),
                "slope_rmsd": np.sqrt(
                    np.sum(d["slope_rmsd"] ** 2 * d["slope_n"]) / d["slope_n"].sum()
                ),
            }
        )

    return results.groupby(["model", "horizon"]).apply(agg)


@pytest.fixture(scope="module")
def study():
    parts = []
    models = {
        "lmm": LinearMixedModel(LMM_FORMULA),
        "delta_fs": DeltaFSBaseline(),
        "patient_ols": PatientOLSBaseline(),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rep in range(10):
            cohort = simulate_cohort(1000, seed=9100 + rep)
            r = backtest(cohort, models, seed=rep, n_samples=20, progress=False)
            parts.append(r)
    return _pool(pd.concat(parts, ignore_index=True))


@pytest.mark.slow
@pytest.mark.parametrize(
    "horizon",
    [
        6.0,
        pytest.param(
            12.0,
            marks=pytest.mark.xfail(
                strict=True,
                reason="known gap (issue 10 open): the patients still observed at 12 "
                "months are the slower, less variable ones (informative dropout), so "
                "the mixed model's 90 % intervals cover about 94 % of them",
            ),
        ),
    ],
)
def test_lmm_intervals_are_calibrated(study, horizon):
    row = study.loc[("lmm", horizon)]
    assert row["n"] >= 900
    assert 0.88 <= row["coverage"] <= 0.92, row


@pytest.mark.slow
def test_lmm_rmse_close_to_the_bayes_oracle(study):
    ratio = study.loc[("lmm", 12.0), "rmse"] / study.loc[("oracle", 12.0), "rmse"]
    assert ratio <= 1.10
    # knowing the true curve is the (unattainable) floor: residual SD 2 plus rounding
    # to whole points, sqrt(2**2 + 1/12) = 2.02 (clipping at 0/48 is rare)
    assert study.loc[("true_curve", 12.0), "rmse"] == pytest.approx(
        np.sqrt(4 + 1 / 12), abs=0.1
    )


@pytest.mark.slow
@pytest.mark.parametrize("baseline", ["delta_fs", "patient_ols"])
def test_lmm_beats_the_simple_baselines(study, baseline):
    for h in (6.0, 12.0):
        assert study.loc[("lmm", h), "rmse"] < study.loc[(baseline, h), "rmse"]
    assert (
        study.loc[("lmm", 12.0), "slope_rmsd"]
        < study.loc[(baseline, 12.0), "slope_rmsd"]
    )
