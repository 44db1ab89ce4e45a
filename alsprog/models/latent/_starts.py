"""Where a latent-class fit starts, and the many-start search.

Owns: the one-class start (the mixed model's profiled ML fit as the optimiser's
vector, :func:`one_class_start`), the ``n_init`` starts (k-means partitions of the
per-subject coefficients and random perturbations of the one-class fit,
alternately, each from its own child seed) fitted in parallel over joblib workers
(:func:`run_starts`), and the deterministic class labels (:func:`relabel`).
Leaves: one start's EM and quasi-Newton fit to
:mod:`alsprog.models.latent._numerics`; the choice of the best start and the fitted
attributes to :mod:`alsprog.models.latent._model`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog.models._threads import single_blas_thread
from alsprog.models.latent._numerics import (
    Layout,
    StartResult,
    SubjectStats,
    fit_one_start,
    kmeans_start,
    perturbed_start,
    subject_features,
)

__all__ = ["one_class_start", "relabel", "run_starts"]

Array = npt.NDArray[np.float64]


def run_starts(
    x1: Array,
    lay1: Layout,
    lay: Layout,
    st: SubjectStats,
    rng: np.random.Generator,
    n: int,
    n_jobs: int | None,
    *,
    max_iter: int,
    tol: float,
) -> list[StartResult]:
    """Fit from ``n`` starts (the result does not depend on ``n_jobs``)."""
    from joblib import Parallel, delayed

    F = subject_features(x1, lay1, st, lay.mix)
    starts = []
    for i, child in enumerate(rng.spawn(n)):
        if i % 2 == 0:
            starts.append(kmeans_start(x1, lay1, lay, st, F, child))
        else:
            starts.append(perturbed_start(x1, lay1, lay, F, child))
    jobs = 1 if n_jobs is None else int(n_jobs)
    if jobs == 1:
        return [fit_one_start(s, lay, st, max_iter=max_iter, tol=tol) for s in starts]
    chunks = np.array_split(np.arange(n), min(n, max(1, abs(jobs) * 2)))
    parts = Parallel(n_jobs=jobs)(
        delayed(_fit_chunk)([starts[i] for i in c], lay, st, max_iter, tol)
        for c in chunks
    )
    return [r for part in parts for r in part]


def _fit_chunk(
    starts: list[Array], lay: Layout, st: SubjectStats, max_iter: int, tol: float
) -> list[StartResult]:
    with single_blas_thread():
        return [fit_one_start(s, lay, st, max_iter=max_iter, tol=tol) for s in starts]


def one_class_start(design: Any, st: SubjectStats) -> tuple[Array, Layout]:
    """The one-class ML fit (the mixed model's profiled ML) as a vector."""
    from alsprog.models.lmm._numerics import compute_group_stats, fit_profiled

    G = len(design.group_levels)
    stats = compute_group_stats(design.X, design.Z, design.y, design.groups, G)
    tpl = design.template
    est = fit_profiled(stats, tpl.rows, tpl.cols, tpl.lower, reml=False)
    lay1 = Layout(
        1, design.X.shape[1], design.Z.shape[1], np.ones(design.X.shape[1], bool)
    )
    q = design.Z.shape[1]
    cov = np.asarray(est.cov_re, float) + 1e-8 * max(est.sigma2, 1e-12) * np.eye(q)
    x1 = lay1.pack(est.beta[None, :], cov, float(est.sigma2), np.ones(1))
    return x1, lay1


def relabel(x: Array, lay: Layout) -> Array:
    """Reorder the classes: decreasing coefficient of the first class-specific
    non-intercept term, else decreasing class probability (the intercept of the
    membership logit)."""
    if lay.K == 1:
        return x
    betas, _, G, s2, gamma = lay.unpack(x)
    cols = np.flatnonzero(lay.mix)
    key_col = cols[1] if len(cols) > 1 else None
    if key_col is not None:
        order = np.lexsort((-gamma[:, 0], -betas[:, key_col]))
    else:
        order = np.argsort(-gamma[:, 0], kind="stable")
    if lay.class_cov:
        G = G[order]
    return lay.pack(betas[order], G, s2, gamma=gamma[order])
