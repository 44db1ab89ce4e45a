"""Numerical derivatives shared by the likelihood fits.

Owns: :func:`hessian_from_gradient` (the Hessian as central differences of an
analytic gradient, step ``1e-5`` relative, symmetrised), used for observed
information where the gradient is exact and the Hessian is not written out.
Leaves: the likelihoods and their gradients to the models.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__all__ = ["hessian_from_gradient"]

Array = npt.NDArray[np.float64]


def hessian_from_gradient(grad: Callable[[Array], Array], x: Array) -> Array:
    """Central differences of ``grad`` around ``x``, symmetrised.

    Examples
    --------
    >>> H = hessian_from_gradient(lambda v: np.array([2 * v[0] * v[1], v[0] ** 2]),
    ...                           np.array([1.0, 3.0]))
    >>> H.round(6).tolist()  # of x^2 y
    [[6.0, 2.0], [2.0, 0.0]]
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    H = np.empty((n, n))
    for j in range(n):
        h = 1e-5 * max(1.0, abs(x[j]))
        e = np.zeros(n)
        e[j] = h
        H[:, j] = (np.asarray(grad(x + e)) - np.asarray(grad(x - e))) / (2 * h)
    return 0.5 * (H + H.T)
