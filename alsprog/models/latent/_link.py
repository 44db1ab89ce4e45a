"""The outcome's link of a latent-class mixed model: identity, or the D50 sigmoid.

Owns: :class:`Link` (the map ``z = g(y)`` on which the model is linear, its inverse,
the log-Jacobian that puts the likelihood back on the outcome's scale) and
:func:`link_band` (mean, median and central interval on the outcome's scale of a
mixture of normals on the link scale).
Leaves: the model on the link scale to :mod:`alsprog.models.latent._numerics`; where
the predictions come from to :mod:`alsprog.models.latent._predict`.

The D50 model of ALS (Poesen et al. 2017; Steinbach et al. 2021) writes the
ALSFRS-R total since onset as ``48 / (1 + exp((t - D50) / dx))``: on the logit scale,
``logit(y / 48) = (D50 - t) / dx``, a straight line in ``t``.  With ``link="d50"``
the model is the linear latent-class mixed model of ``z = log((y - lo + 1/2) /
(hi - y + 1/2))`` (the outcome's range ``[lo, hi]``, half a point kept from each
end so that 0 and 48 stay finite), so each class follows its own sigmoid and each
patient's random intercept and slope move their own D50 and dx; with
``z ~ months_since_onset`` a class's ``D50 = -b0 / b1`` and ``dx = -1 / b1``.  The
link has no parameter, so the maximum-likelihood estimates are those on ``z`` and
the log-likelihood on the outcome's scale adds ``sum log |dz/dy|`` (so AIC and BIC
compare with the identity link's), as lcmm's fixed links do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import expit, log_expit

__all__ = ["Link", "link_band"]

Array = npt.NDArray[np.float64]

#: Gauss-Hermite nodes and weights for E[f(Z)], Z normal (probabilists' form).
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(40)
_GH_W = _GH_W / _GH_W.sum()


@dataclass(frozen=True)
class Link:
    """``kind`` ``"identity"`` or ``"d50"`` on the outcome range ``[lo, hi]``.

    Examples
    --------
    >>> g = Link("d50", 0.0, 48.0)
    >>> float(g.forward(np.array([24.0]))[0]), float(g.inverse(np.array([0.0]))[0])
    (0.0, 24.0)
    """

    kind: str = "identity"
    lo: float = -np.inf
    hi: float = np.inf

    @property
    def identity(self) -> bool:
        return self.kind == "identity"

    @property
    def span(self) -> float:
        return float(self.hi - self.lo + 1.0)

    def forward(self, y: Array) -> Array:
        """``z = g(y)``."""
        y = np.asarray(y, dtype=float)
        if self.identity:
            return y
        return np.log((y - self.lo + 0.5) / (self.hi - y + 0.5))

    def inverse(self, z: Array) -> Array:
        """``y = g^{-1}(z)``, in ``(lo - 1/2, hi + 1/2)``."""
        z = np.asarray(z, dtype=float)
        if self.identity:
            return z
        return self.lo - 0.5 + self.span * expit(z)

    def log_jacobian(self, z: Array) -> float:
        """``sum log |dz/dy|`` at the link-scale values ``z`` (0 for the identity)."""
        if self.identity:
            return 0.0
        z = np.asarray(z, dtype=float)
        return float(-np.sum(np.log(self.span) + log_expit(z) + log_expit(-z)))

    def derivative(self, z: Array) -> Array:
        """``dy/dz`` at ``z`` (the delta method's factor)."""
        z = np.asarray(z, dtype=float)
        if self.identity:
            return np.ones_like(z)
        return self.span * expit(z) * expit(-z)

    def mean(self, loc: Array, scale: Array, bounds: tuple[float, float]) -> Array:
        """``E[clip(g^{-1}(Z), bounds)]`` for ``Z ~ N(loc, scale^2)`` (elementwise),
        by Gauss-Hermite quadrature."""
        z = loc[..., None] + scale[..., None] * _GH_X
        return np.asarray(np.clip(self.inverse(z), *bounds) @ _GH_W, dtype=float)


def link_band(
    link: Link,
    w: Array,
    loc: Array,
    scale: Array,
    level: float,
    bounds: tuple[float, float],
) -> dict[str, Array]:
    """Mean, median and central ``level`` interval on the outcome's scale of
    ``sum_k w_k N(loc_k, scale_k)`` on the link scale, censored at ``bounds``:
    quantiles map through the (increasing) inverse link; the mean is each class's
    quadrature mean, weighted."""
    from alsprog.models.latent._predict import mixture_band, mixture_quantile

    if link.identity:
        return mixture_band(w, loc, scale, level, bounds)
    alpha = (1.0 - level) / 2.0
    out = {"mean": np.sum(w * link.mean(loc, scale, bounds), axis=1)}
    for name, p in (("median", 0.5), ("lower", alpha), ("upper", 1.0 - alpha)):
        q = link.inverse(mixture_quantile(w, loc, scale, p))
        out[name] = np.clip(q, *bounds)
    return out
