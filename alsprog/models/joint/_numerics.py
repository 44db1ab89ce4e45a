"""Likelihood of the shared random-effects joint model, in JAX.

Owns: the packing of the joint model's parameters into one vector, the exact
log-likelihood (closed-form Gaussian longitudinal part plus the survival part
integrated over each subject's random effects by Gauss-Hermite quadrature centred on
their longitudinal posterior), its exact gradient and Hessian (JAX, float64), and the
piecewise-constant baseline hazard's exposure bookkeeping.
Leaves: formulas, data checks and the user-facing estimator to
:mod:`alsprog.models.joint._model`.

The likelihood of subject ``i`` factorises as ``p(y_i) E[p(T_i, d_i | b) | y_i]``
because ``y_i`` and the event time are independent given the random effects ``b``:
``p(y_i)`` is the linear mixed model's marginal normal density and ``b | y_i`` is
normal, so the expectation is a smooth low-dimensional integral, computed on a
tensor-product Gauss-Hermite grid mapped through that posterior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "JointData",
    "JointLayout",
    "exposure",
    "make_objective",
]

Array = npt.NDArray[np.float64]
_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class JointLayout:
    """Sizes of the parameter blocks and where each lies in the flat vector.

    Order: fixed effects ``beta`` (p), the random-effects Cholesky factor (lower
    triangle row by row, log diagonal; q(q+1)/2), ``log sigma``, event covariate
    coefficients ``gamma`` (r), association ``alpha`` (q), log baseline hazards (K).
    """

    p: int
    q: int
    r: int
    k: int

    @property
    def n_chol(self) -> int:
        """Entries of the random-effects Cholesky factor."""
        return self.q * (self.q + 1) // 2

    def slices(self) -> dict[str, slice]:
        """Name -> slice into the flat parameter vector."""
        sizes = [
            ("beta", self.p),
            ("chol", self.n_chol),
            ("log_sigma", 1),
            ("gamma", self.r),
            ("alpha", self.q),
            ("log_hazard", self.k),
        ]
        out, at = {}, 0
        for name, n in sizes:
            out[name] = slice(at, at + n)
            at += n
        return out

    @property
    def size(self) -> int:
        """Length of the flat vector."""
        return self.p + self.n_chol + 1 + self.r + self.q + self.k

    def chol_index(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Row and column of each Cholesky entry (row-major lower triangle)."""
        return np.tril_indices(self.q)

    def unpack_chol(self, values: Array) -> Array:
        """Lower-triangular factor (numpy) from its packed entries."""
        rows, cols = self.chol_index()
        L = np.zeros((self.q, self.q))
        v = np.asarray(values, dtype=float).copy()
        diag = rows == cols
        v[diag] = np.exp(v[diag])
        L[rows, cols] = v
        return L

    def pack_chol(self, cov: Array) -> Array:
        """Packed entries from a covariance matrix (small ridge if singular)."""
        q = self.q
        cov = np.asarray(cov, dtype=float)
        ridge = 1e-8 * max(float(np.trace(cov)) / max(q, 1), 1.0)
        L = np.linalg.cholesky(cov + ridge * np.eye(q))
        rows, cols = self.chol_index()
        v = np.asarray(L[rows, cols], dtype=np.float64).copy()
        diag = rows == cols
        v[diag] = np.log(np.maximum(v[diag], 1e-8))
        return v


@dataclass(frozen=True)
class JointData:
    """Sufficient statistics of the longitudinal part and per-subject event data."""

    ZtZ: Array  # (G, q, q)
    ZtX: Array  # (G, q, p)
    Zty: Array  # (G, q)
    XtX: Array  # (p, p)
    Xty: Array  # (p,)
    yty: float
    n_obs: int
    W: Array  # (G, r) event covariates
    event: Array  # (G,) 1.0 event, 0.0 censored
    exposure: Array  # (G, K) time at risk in each baseline-hazard interval
    interval: npt.NDArray[np.intp]  # (G,) interval holding the event/censoring time

    @classmethod
    def from_stats(
        cls,
        stats: Any,
        W: Array,
        event: Array,
        exposure: Array,
        interval: npt.NDArray[np.intp],
    ) -> JointData:
        """From the mixed model's :class:`~alsprog.models.lmm._numerics.GroupStats`."""
        return cls(
            ZtZ=stats.ZtZ,
            ZtX=stats.ZtX,
            Zty=stats.Zty,
            XtX=stats.XtX,
            Xty=stats.Xty,
            yty=float(stats.yty),
            n_obs=int(stats.n),
            W=np.asarray(W, dtype=float),
            event=np.asarray(event, dtype=float),
            exposure=exposure,
            interval=interval,
        )


def exposure(times: Array, breaks: Array) -> tuple[Array, npt.NDArray[np.intp]]:
    """Time at risk in each interval ``[breaks[k], breaks[k+1])`` up to ``times``.

    Examples
    --------
    >>> e, k = exposure(np.array([0.5, 2.5]), np.array([0.0, 1.0, 2.0, np.inf]))
    >>> e.tolist(), k.tolist()
    ([[0.5, 0.0, 0.0], [1.0, 1.0, 0.5]], [0, 2])
    """
    t = np.asarray(times, dtype=float)[:, None]
    lo, hi = breaks[None, :-1], breaks[None, 1:]
    e = np.clip(np.minimum(t, hi) - lo, 0.0, None)
    k = np.searchsorted(breaks, np.asarray(times, dtype=float), side="right") - 1
    return e, np.clip(k, 0, len(breaks) - 2).astype(np.intp)


def make_objective(
    data: JointData, layout: JointLayout, nodes: Array, log_weights: Array
) -> tuple[Any, Any, Any]:
    """Jitted negative log-likelihood, its gradient and Hessian (float64 JAX).

    Returns three callables of the flat parameter vector (numpy in, numpy out); they
    compute in float64 (``jax.enable_x64``) whatever the global JAX setting.
    """
    import jax

    with jax.enable_x64(True):  # the constants below are built as float64
        return _build(data, layout, nodes, log_weights)


def _build(
    data: JointData, layout: JointLayout, nodes: Array, log_weights: Array
) -> tuple[Any, Any, Any]:
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    sl = layout.slices()
    rows, cols = layout.chol_index()
    is_diag = jnp.asarray(rows == cols)
    q = layout.q
    d = {
        k: jnp.asarray(v)
        for k, v in vars(data).items()
        if k not in ("yty", "n_obs", "interval")
    }
    interval = jnp.asarray(data.interval)
    z = jnp.asarray(nodes)  # (M, q)
    lw = jnp.asarray(log_weights)  # (M,)
    eye = jnp.eye(q)

    def negloglik(phi: Any) -> Any:
        beta = phi[sl["beta"]]
        raw = phi[sl["chol"]]
        L = jnp.zeros((q, q)).at[rows, cols].set(jnp.where(is_diag, jnp.exp(raw), raw))
        log_sigma = phi[sl["log_sigma"]][0]
        s2 = jnp.exp(2.0 * log_sigma)
        gamma, alpha = phi[sl["gamma"]], phi[sl["alpha"]]
        log_h = phi[sl["log_hazard"]]
        # longitudinal: V_i = Z L L'Z' + s2 I, Woodbury with A = I + L'Z'ZL / s2
        Ztr = d["Zty"] - jnp.einsum("gqp,p->gq", d["ZtX"], beta)
        rtr = data.yty - 2.0 * beta @ d["Xty"] + beta @ d["XtX"] @ beta
        A = eye + jnp.einsum("ji,gjk,kl->gil", L, d["ZtZ"], L) / s2
        cA = jnp.linalg.cholesky(A)
        u = jnp.einsum("ji,gj->gi", L, Ztr)  # L'Z'r
        v = jax.scipy.linalg.solve_triangular(cA, u[..., None], lower=True)[..., 0]
        logdet = data.n_obs * 2.0 * log_sigma + 2.0 * jnp.sum(
            jnp.log(jnp.diagonal(cA, axis1=-2, axis2=-1))
        )
        quad = (rtr - jnp.sum(v**2) / s2) / s2
        ll_long = -0.5 * (data.n_obs * _LOG_2PI + logdet + quad)
        # posterior of b given y: mean L A^-1 u / s2, covariance L A^-1 L'
        Ainv_u = jax.scipy.linalg.solve_triangular(
            jnp.swapaxes(cA, -1, -2), v[..., None], lower=False
        )[..., 0]
        mean = jnp.einsum("ij,gj->gi", L, Ainv_u) / s2
        # chol of L A^-1 L' = L cA^-T (cA^-T upper); nodes b = mean + L cA^-T z
        cAinvT = jax.scipy.linalg.solve_triangular(
            jnp.swapaxes(cA, -1, -2), jnp.broadcast_to(eye, cA.shape), lower=False
        )
        C = jnp.einsum("ij,gjk->gik", L, cAinvT)
        b = mean[:, None, :] + jnp.einsum("gij,mj->gmi", C, z)  # (G, M, q)
        lin = (d["W"] @ gamma)[:, None] + b @ alpha  # (G, M)
        H0 = d["exposure"] @ jnp.exp(log_h)  # (G,)
        ll_node = d["event"][:, None] * (log_h[interval][:, None] + lin) - H0[
            :, None
        ] * jnp.exp(lin)
        ll_surv = jnp.sum(logsumexp(ll_node + lw[None, :], axis=1))
        return -(ll_long + ll_surv)

    f = jax.jit(negloglik)
    g = jax.jit(jax.grad(negloglik))
    h = jax.jit(jax.hessian(negloglik))

    def as_np(fn: Any) -> Any:
        def call(x: Array) -> Array:
            with jax.enable_x64(True):
                return np.asarray(fn(jnp.asarray(x, dtype=jnp.float64)))

        return call

    return as_np(f), as_np(g), as_np(h)


def event_breaks(event_times: Array, k: int) -> Array:
    """Baseline-hazard breaks: 0, quantiles of the event times, infinity."""
    inner = np.unique(np.quantile(event_times, np.linspace(0, 1, k + 1)[1:-1]))
    inner = inner[inner > 0]
    return np.concatenate([[0.0], inner, [np.inf]])


def newton_polish(
    phi: Array, fun: Any, grad: Any, hess: Any, *, steps: int = 20
) -> tuple[Array, float, Array, Array]:
    """Newton steps with the exact Hessian from the quasi-Newton solution.

    L-BFGS stops where its line search can no longer tell function values apart;
    a few Newton steps (halved until the likelihood does not drop) bring the
    gradient to rounding level, so the standard errors are taken at the optimum.
    """
    f, g, H = float(fun(phi)), grad(phi), hess(phi)
    for _ in range(steps):
        if float(np.max(np.abs(g))) < 1e-8:
            break
        try:
            step = np.linalg.solve(0.5 * (H + H.T), g)
        except np.linalg.LinAlgError:
            break
        t = 1.0
        while t > 1e-4:
            cand = phi - t * step
            fc = float(fun(cand))
            if np.isfinite(fc) and fc <= f + 1e-10 * abs(f):
                break
            t *= 0.5
        else:
            break
        phi, f = cand, fc
        g, H = grad(phi), hess(phi)
    return phi, f, H, g


def inverse_information(H: Array) -> Array:
    """Inverse of the observed information; pseudo-inverse when singular."""
    H = 0.5 * (H + H.T)
    try:
        return np.asarray(np.linalg.inv(H), dtype=np.float64)
    except np.linalg.LinAlgError:
        return np.asarray(np.linalg.pinv(H), dtype=np.float64)
