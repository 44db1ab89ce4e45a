"""LatentClassMixedModel against R's flexmix (``FLXMRlmm``) on a shared data set.

Reference: tests/reference/latent_flexmix_reference.R (output
latent_flexmix_reference.json / .Rout) fits, on tests/reference/latent_flexmix_data.csv
(150 subjects x 5 visits, written by latent_flexmix_make_data.py)::

    flexmix(score ~ months | subject_id, data, k = K, cluster = <start>,
            model = FLXMRlmm(random = ~ months,   # or ~ 1
                             varFix = c(Random = TRUE, Residual = TRUE)),
            control = list(tolerance = 1e-13, iter.max = 50000, minprior = 0))

from the true partition and from random subject-level partitions, keeping the best.

What flexmix maximises (read from flexmix 2.3-18's source, ``FLXMRlmm``,
``FLXgetModelmatrix``, ``FLXfit``): the grouping ``| subject_id`` keeps all visits of a
subject in one component; each component's ``logLik`` is ``mvtnorm::dmvnorm`` of the
subject's outcome vector with mean ``X_i beta_k`` and covariance ``Z_i G Z_i' +
s2 I`` (the random effects integrated out exactly; ML, no REML correction), spread
evenly over the subject's rows and summed back by ``groupPosteriors``; the reported
log-likelihood is ``sum_i log sum_k pi_k N(...)``.  With ``varFix = c(Random = TRUE,
Residual = TRUE)`` ``G`` and ``s2`` are one matrix and one number for all components;
the prior is constant (``FLXPconstant``).  That is exactly alsprog's model with
``mixture`` = all terms, and its parameter count (flexmix's ``df``) is ours.

flexmix fits by EM only: the fixed effects by weighted least squares of ``y - Z
b_hat`` and the covariances by the expected complete-data updates, pooled over the
components as ``G = sum_k c_k G_k`` with ``c_k = sum_i n_i w_ik / sum_i n_i`` (its
``weighted.mean(w, sapply(x, length))``) and ``s2 = sum_k (sum_i w_ik / N) s2_k``
(``colMeans(w)``).  The exact EM step pools ``G_k`` with ``sum_i w_ik / N`` and
``s2_k`` with ``sum_i n_i w_ik / sum_i n_i``.  The two agree when every subject has
the same number of visits, so on the balanced data flexmix's fixed point is the ML
estimate and the two fits agree (tested to 1e-4 in the log-likelihood); on
unbalanced data (the ``k2_slope_unbalanced`` fit: 3, 4 or 5 visits) flexmix's M-step
is not an EM step of the likelihood it reports, its fixed point is not a stationary
point of it, and alsprog's ML fit reaches a higher log-likelihood.  Both programs
still compute the same log-likelihood at the same parameters (tested to 1e-6 on all
four fits).  flexmix's BIC uses the number of rows (visits), alsprog's the number of
subjects (lcmm's convention); AIC agrees.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from alsprog.models.latent._model import LatentClassMixedModel
from alsprog.models.latent._numerics import Layout, build_stats, evaluate

REF = Path(__file__).resolve().parents[1] / "reference"
BALANCED = ("k2_slope", "k1_slope", "k2_intercept")
FORMULAS = {
    "~months": "score ~ months + (months | subject_id)",
    "~1": "score ~ months + (1 | subject_id)",
}


@pytest.fixture(scope="module")
def ref() -> dict:
    with open(REF / "latent_flexmix_reference.json") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(REF / "latent_flexmix_data.csv")


def _subset(data: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows the R script fits: all, or visit number <= 3 + subject_id %% 3."""
    d = data.sort_values(["subject_id", "months"], kind="stable")
    if name.endswith("_unbalanced"):
        visit = d.groupby("subject_id").cumcount() + 1
        d = d[visit <= 3 + d["subject_id"] % 3]
    return d.reset_index(drop=True)


def _flexmix_point(r: dict, d: pd.DataFrame) -> tuple[np.ndarray, Layout, object, list]:
    """flexmix's estimates as alsprog's parameter vector, with the layout, the
    subject statistics (built here from the CSV, not through the formula code) and
    the components ordered as alsprog labels its classes (decreasing slope)."""
    y = d["score"].to_numpy(float)
    X = np.c_[np.ones(len(d)), d["months"].to_numpy(float)]
    Z = X if r["random"] == "~months" else X[:, :1]
    codes, levels = pd.factorize(d["subject_id"], sort=True)
    assert levels.tolist() == r["subject_ids"]
    st = build_stats(y, X, Z, codes.astype(np.intp), len(levels))
    K = r["k"]
    lay = Layout(K, 2, Z.shape[1], np.ones(2, dtype=bool))
    order = sorted(range(K), key=lambda k: -r["components"][k]["coef"]["months"])
    comps = [r["components"][k] for k in order]
    betas = np.array([[c["coef"]["(Intercept)"], c["coef"]["months"]] for c in comps])
    G = np.atleast_2d(np.array(comps[0]["random_cov"], dtype=float))
    for c in comps[1:]:  # varFix: one G and one s2 for all components
        assert_allclose(np.atleast_2d(c["random_cov"]), G, rtol=0, atol=0)
        assert c["residual"] == comps[0]["residual"]
    prior = np.array(r["prior"], dtype=float)[order]
    x = lay.pack(betas, G, comps[0]["residual"], prior)
    return x, lay, st, order


def _posterior(r: dict, order: list) -> np.ndarray:
    return np.array(r["posterior"], dtype=float).reshape(-1, r["k"])[:, order]


@pytest.mark.parametrize("name", [*BALANCED, "k2_slope_unbalanced"])
def test_same_log_likelihood_at_flexmix_estimates(ref, data, name):
    """alsprog's exact marginal log-likelihood at flexmix's estimates is flexmix's
    reported log-likelihood (and the R script's dense recomputation): both programs
    compute one and the same likelihood."""
    r = ref[name]
    d = _subset(data, name)
    assert (r["n_subjects"], r["n_obs"]) == (d["subject_id"].nunique(), len(d))
    x, lay, st, order = _flexmix_point(r, d)
    ev = evaluate(x, lay, st, grad=False)
    assert abs(ev.llf - r["logLik"]) < 1e-6
    assert abs(ev.llf - r["loglik_dense"]) < 1e-6
    assert lay.n_params == r["df"]
    assert_allclose(ev.posterior, _posterior(r, order), rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def fits(data):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in BALANCED:
            random = "~1" if name.endswith("intercept") else "~months"
            k = 1 if name.startswith("k1") else 2
            m = LatentClassMixedModel(FORMULAS[random], k, n_init=6, seed=3)
            out[name] = m.fit(_subset(data, name))
        m = LatentClassMixedModel(FORMULAS["~months"], 2, n_init=6, seed=3)
        out["k2_slope_unbalanced"] = m.fit(_subset(data, "k2_slope_unbalanced"))
    return out


@pytest.mark.parametrize("name", BALANCED)
def test_fit_equals_flexmix_on_balanced_data(ref, data, fits, name):
    """Balanced visits: flexmix's EM and alsprog's EM + quasi-Newton reach the same
    maximum; log-likelihood to 1e-4, estimates to 1e-3 relative, posteriors."""
    r, m = ref[name], fits[name]
    x, lay, st, order = _flexmix_point(r, _subset(data, name))
    betas, _, G, s2, _ = lay.unpack(x)
    assert abs(m.llf_ - r["logLik"]) < 1e-4
    assert m.n_params_ == r["df"]
    assert abs(m.aic - r["AIC"]) < 2e-4
    assert_allclose(m.fe_params_.to_numpy(), betas, rtol=1e-3)
    assert_allclose(m.cov_re_.to_numpy(), G, rtol=1e-3, atol=1e-5)
    assert_allclose(m.scale_, s2, rtol=1e-3)
    assert_allclose(m.class_probs_.to_numpy(), np.array(r["prior"])[order], atol=1e-4)
    assert_allclose(m.posterior_.to_numpy(), _posterior(r, order), atol=1e-4)
    # flexmix's BIC counts visits, alsprog's (lcmm's) subjects
    assert abs(r["BIC"] - (-2 * r["logLik"] + r["df"] * np.log(r["n_obs"]))) < 1e-6


def test_unbalanced_flexmix_stops_short_of_the_maximum(ref, data, fits):
    """Unbalanced visits: flexmix's EM converged (relative change < 1e-13) but its
    point is not stationary for the likelihood it reports (the gradient there is
    far from zero in the covariance parameters), and alsprog's ML fit is higher."""
    r, m = ref["k2_slope_unbalanced"], fits["k2_slope_unbalanced"]
    assert r["converged"]
    x, lay, st, _ = _flexmix_point(r, _subset(data, "k2_slope_unbalanced"))
    g = evaluate(x, lay, st).grad
    assert np.max(np.abs(g)) > 1.0
    x_ours = lay.pack(
        m.fe_params_.to_numpy(),
        m.cov_re_.to_numpy(),
        m.scale_,
        m.class_probs_.to_numpy(),
    )
    assert np.max(np.abs(evaluate(x_ours, lay, st).grad)) < 1e-2
    assert m.llf_ > r["logLik"] + 1e-3
