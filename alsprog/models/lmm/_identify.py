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

__all__ = ["flat_directions", "flat_from_hessian", "warn_flat"]

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


def flat_from_hessian(H: Array) -> tuple[Array, Array]:
    """:func:`flat_directions` of a given Hessian (the eigenvalue ratios under
    ``FLAT_RATIO`` and their unit directions)."""
    w, U = np.linalg.eigh(0.5 * (H + H.T))
    top = float(np.max(np.abs(w))) if len(w) else 0.0
    if top == 0.0:
        return np.ones(len(w)), U
    ratio = w / top
    flat = ratio < FLAT_RATIO
    return ratio[flat], U[:, flat]


def warn_flat(ratio: Array, U: Array, names: list[str], reml: bool) -> None:
    """lme4's "Model is nearly unidentifiable" as alsprog words it."""
    import warnings

    from alsprog.errors import ModelSpecificationWarning

    if not len(ratio):
        return
    u = U[:, 0]
    along = " + ".join(
        f"{u[i]:.2f} {names[i]}" for i in np.argsort(-np.abs(u)) if abs(u[i]) > 0.05
    )
    warnings.warn(
        f"the {'REML criterion' if reml else 'deviance'} is nearly flat along "
        f"theta direction ({along}) (Hessian eigenvalue {ratio[0]:.1e} of the "
        "largest): the random-effect variances are not identifiable; a random "
        "effect that repeats another, or that is also a fixed effect of its "
        "grouping factor? (lme4: 'Model is nearly unidentifiable')",
        ModelSpecificationWarning,
        stacklevel=4,
    )
