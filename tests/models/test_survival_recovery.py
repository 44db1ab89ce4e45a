"""SurvivalModel on the simulator, whose hazards are known (issue 25).

Each simulated patient's death/tracheostomy time is Weibull from onset with shape
``k = 1.5`` and their own scale (``truth["event_weibull_scale"]``), given survival
to the first visit: ``log H(t) = k log t - k log scale``.  With ``log scale`` as the
covariate the log hazard ratio is ``-k`` and onset site adds nothing; on the
Royston-Parmar hazard scale with delayed entry from onset the model must recover
both within 2 SE, and its predicted 1-year survival must be calibrated on an
independent cohort (calibration slope 0.9-1.1).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from alsprog.data import assemble
from alsprog.forecast import evaluate_survival
from alsprog.models import SurvivalModel
from alsprog.simulate import simulate_cohort

FORMULA = "Surv(death_or_tracheostomy_months, event_observed) ~ log_scale + onset_site"


def _table(n, seed):
    c = simulate_cohort(n, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = assemble(c.visits, c.subjects)
    scale = c.truth.set_index("subject_id")["event_weibull_scale"].astype(float)
    return t.assign(log_scale=np.log(t["subject_id"].map(scale)))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["flexible", "cox"])
def test_hazard_ratios_recovered_and_one_year_survival_calibrated(method):
    fit_on, check_on = _table(4000, 2026), _table(4000, 2027)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # controls and baseline-only dropouts
        m = SurvivalModel(FORMULA, method=method, time_origin="onset").fit(fit_on)
    truth = np.array([-1.5, 0.0])
    z = (m.params_.to_numpy() - truth) / m.bse_.to_numpy()
    assert np.all(np.abs(z) < 2), (m.params_, m.bse_)
    if method == "flexible":  # the spline's log-time slope: the Weibull shape
        m1 = SurvivalModel(FORMULA, df=1, time_origin="onset").fit(fit_on)
        se = np.sqrt(m1.cov_params_.iloc[1, 1])
        assert abs(m1.spline_params_.iloc[1] - 1.5) < 2 * se
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = evaluate_survival(m.predict_survival(check_on, [12.0]), check_on)
    slope = float(s.scores["calibration_slope"].iloc[0])
    assert 0.9 <= slope <= 1.1, slope
    cal = s.calibration
    assert np.all(np.abs(cal["predicted"] - cal["observed"]) < 0.05), cal
