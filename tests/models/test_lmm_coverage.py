"""Slow recovery and coverage study of LinearMixedModel on simulated cohorts.

Runtime: about 30-60 s on 2 cores (1,000 fits of 100 subjects).
"""

from __future__ import annotations

import numpy as np
import pytest
from lmm_testdata import TRUTH, simulate_als_long

from alsprog.models import LinearMixedModel

N_SETS = 1000  # binomial SE of a 95 % coverage: 0.7 points, so 93-97 % is +-2.9 SE


@pytest.mark.veryslow  # a study (make test-all): keeps make test near 15 minutes
def test_wald_coverage_and_recovery():
    formula = "frs ~ months + months:onset_site + (months | subject_id)"
    truth = {"Intercept": TRUTH["intercept"], "months": TRUTH["slope"]}
    hits = {k: 0 for k in truth}
    est = {k: [] for k in truth}
    sd_int, sd_slope, sd_res = [], [], []
    for i in range(N_SETS):
        df = simulate_als_long(
            100, seed=10_000 + i, truth={"age_effect": 0.0, "bulbar_slope": 0.0}
        )
        df["onset_site"] = np.where(df["onset_site"] == "bulbar", "bulbar", "spinal")
        m = LinearMixedModel(formula).fit(df)
        ci = m.confint(0.95)
        for k, v in truth.items():
            hits[k] += ci.loc[k, "lower"] <= v <= ci.loc[k, "upper"]
            est[k].append(m.fe_params_[k])
        sd = np.sqrt(np.diag(m.cov_re_))
        sd_int.append(sd[0])
        sd_slope.append(sd[1])
        sd_res.append(np.sqrt(m.scale_))
    for k in truth:
        coverage = hits[k] / N_SETS
        assert 0.93 <= coverage <= 0.97, (k, coverage)
        # unbiased: mean within 3 Monte Carlo SEs of the truth
        e = np.asarray(est[k])
        assert abs(e.mean() - truth[k]) < 3 * e.std() / np.sqrt(N_SETS), k
    # variance components recovered (REML: nearly unbiased for variances)
    assert np.mean(np.square(sd_int)) == pytest.approx(
        TRUTH["sd_intercept"] ** 2, rel=0.03
    )
    assert np.mean(np.square(sd_slope)) == pytest.approx(
        TRUTH["sd_slope"] ** 2, rel=0.03
    )
    assert np.mean(np.square(sd_res)) == pytest.approx(TRUTH["sd_resid"] ** 2, rel=0.01)
