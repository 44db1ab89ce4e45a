"""A new patient's sigmoid effects given their history, drawn by importance resampling.

Oracle: the exact posterior of the two effects on a dense 2-D grid (prior
``N(0, D)`` times the normal or Student-t likelihood of the history, written out
with scipy), against which the draws' means, SDs and correlation are compared
within Monte Carlo error.  One patient, one posterior draw repeated, so every draw
samples the same posterior.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from alsprog.models.bayes._forecast import _sigmoid_effects

BASE = np.array([np.log(30.0), np.log(9.0)])
D = np.array([[0.09, 0.03], [0.03, 0.16]])
SIGMA = 2.0


def _grid_posterior(y, t, nu=None):
    g0 = np.linspace(-1.6, 1.6, 401)
    g1 = np.linspace(-2.0, 2.0, 401)
    B0, B1 = np.meshgrid(g0, g1, indexing="ij")
    lp = stats.multivariate_normal([0, 0], D).logpdf(np.stack([B0, B1], axis=-1))
    d50 = np.exp(BASE[0] + B0)[..., None]
    dx = np.exp(BASE[1] + B1)[..., None]
    mu = 48.0 * expit((d50 - t) / dx)
    dist = stats.norm(mu, SIGMA) if nu is None else stats.t(nu, mu, SIGMA)
    lp = lp + dist.logpdf(y).sum(axis=-1)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    m0, m1 = (w * B0).sum(), (w * B1).sum()
    v0, v1 = (w * (B0 - m0) ** 2).sum(), (w * (B1 - m1) ** 2).sum()
    c = (w * (B0 - m0) * (B1 - m1)).sum()
    return np.array([m0, m1]), np.sqrt([v0, v1]), c / np.sqrt(v0 * v1)


@pytest.mark.parametrize(
    ("t", "y", "nu"),
    [
        (np.array([14.0, 17.0]), np.array([41.0, 38.0]), None),  # two early visits
        (np.array([25.0]), np.array([33.0]), None),  # one visit: a ridge
        (np.array([20.0, 23.0, 26.0]), np.array([35.0, 30.0, 24.0]), 4.0),
    ],
)
def test_draws_match_the_exact_posterior(t, y, nu):
    S = 6000
    base = np.broadcast_to(BASE, (S, 1, 2)).copy()
    Ds = np.broadcast_to(D, (S, 2, 2)).copy()
    sigma = np.full(S, SIGMA)
    nus = None if nu is None else np.full(S, nu)
    gh = np.zeros(len(y), dtype=np.intp)
    b = _sigmoid_effects(base, Ds, sigma, nus, y, t, gh, 1, np.random.default_rng(1))[
        :, 0, :
    ]
    mean, sd, corr = _grid_posterior(y, t, nu)
    mcse = sd / np.sqrt(S) * 2.0  # importance resampling: allow ESS ~ S / 4
    assert np.all(np.abs(b.mean(axis=0) - mean) < 4 * mcse)
    assert np.all(np.abs(b.std(axis=0) / sd - 1) < 0.06)
    assert abs(np.corrcoef(b.T)[0, 1] - corr) < 0.06


def test_draws_are_seeded_and_not_restricted_to_grid_nodes():
    S = 200
    base = np.broadcast_to(BASE, (S, 1, 2)).copy()
    Ds = np.broadcast_to(D, (S, 2, 2)).copy()
    args = (base, Ds, np.full(S, SIGMA), None, np.array([40.0]), np.array([15.0]))
    gh = np.zeros(1, dtype=np.intp)
    a = _sigmoid_effects(*args, gh, 1, np.random.default_rng(5))
    b = _sigmoid_effects(*args, gh, 1, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert len(np.unique(a[:, 0, 0])) > 0.9 * S  # continuous, not a few nodes
