"""Whether a fitted mixed model's variance parameters are identifiable.

Owns: :func:`flat_directions`: the Hessian of the profiled REML criterion (or ML
deviance) in ``theta`` at the optimum, by central differences of its exact
gradient, and the directions along which it is flat (an eigenvalue under ``1e-6``
of the largest), as lme4 checks its Hessian after a fit ("Model is nearly
unidentifiable").  A random-effects column that repeats another, or a random
slope of a variable that is also the grouping factor's fixed effect, gives such a
ridge: every point on it fits equally well.
Leaves: the warning to :mod:`alsprog.models.lmm._model`; the deviance and gradient
to :mod:`alsprog.models.lmm._numerics`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from alsprog.models.lmm._numerics import GroupStats, profiled_deviance

__all__ = ["flat_directions"]

Array = npt.NDArray[np.float64]

#: An eigenvalue of the Hessian under this fraction of the largest is flat.
FLAT_RATIO = 1e-6


def flat_directions(
    theta: Array,
    stats: GroupStats,
    rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp],
    *,
    reml: bool,
) -> tuple[Array, Array]:
    """Eigenvalue ratios (to the largest) and unit directions in ``theta`` along
    which the criterion is flat; empty when none is.

    Examples
    --------
    >>> from alsprog.models.lmm._numerics import compute_group_stats
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(30), 4); X = np.ones((120, 1))
    >>> Z = np.column_stack([np.ones(120), 2 * np.ones(120)])  # one column twice
    >>> y = rng.normal(size=30)[g] + rng.normal(size=120)
    >>> s = compute_group_stats(X, Z, y, g, 30)
    >>> ratio, _ = flat_directions(np.array([0.5, 0.2, 0.3]), s,
    ...     np.array([0, 1, 1]), np.array([0, 0, 1]), reml=True)
    >>> len(ratio)
    1
    """
    k = len(theta)
    H = np.empty((k, k))
    for i in range(k):
        h = 1e-5 * max(1.0, abs(float(theta[i])))
        e = np.zeros(k)
        e[i] = h
        _, gp = profiled_deviance(
            theta + e, stats, rows, cols, reml=reml, gradient=True
        )
        _, gm = profiled_deviance(
            theta - e, stats, rows, cols, reml=reml, gradient=True
        )
        H[:, i] = (gp - gm) / (2.0 * h)
    w, U = np.linalg.eigh(0.5 * (H + H.T))
    top = float(np.max(np.abs(w)))
    if top == 0.0:
        return np.ones(k), U
    ratio = w / top
    flat = ratio < FLAT_RATIO
    return ratio[flat], U[:, flat]
