"""Covariance structures over visits of :class:`~alsprog.models.MMRM`, parameterised
as the R package mmrm parameterises them.

Owns: the structures' names and mmrm's short aliases (:data:`STRUCTURES`,
:data:`ALIASES`, :func:`canonical_structure`), their parameter counts
(:func:`n_cov_params`), the maps from the unconstrained parameter vector ``theta``
to the visit covariance ``Sigma`` with exact first and second derivatives
(:func:`covariance_from_params`, :func:`cov_jacobian`, :func:`cov_hessian`,
:func:`covariance_and_derivatives`) and starting values from an empirical
covariance (:func:`start_params`).
Leaves: the likelihood to :mod:`alsprog.models.mmrm._numerics`; the estimator to
:mod:`alsprog.models.mmrm._model`.

The parameterisations are mmrm's (``src/covariance.h``, ``src/utils.h``), so that
``theta`` means what mmrm's ``theta_est`` means:

- ``"unstructured"`` (``us``, ``T (T + 1) / 2`` parameters): ``Sigma = L L'`` with
  ``L = D L0``, ``D = diag(exp(theta[:T]))`` and ``L0`` unit lower triangular, its
  entries below the diagonal ``theta[T:]`` row by row (``(1,0), (2,0), (2,1), ...``).
- homogeneous structures: ``Sigma = exp(2 theta[0]) R``; heterogeneous ones
  (``heterogeneous_*``): ``Sigma = D R D`` with ``D = diag(exp(theta[:T]))``; the
  correlation parameters ``phi`` follow.
- ``toeplitz`` (``toep``, ``toeph``): ``R_jk = rho_{|j-k|}``, ``T - 1`` correlations;
  ``ar1`` (``ar1``, ``ar1h``): ``R_jk = rho^|j-k|``; ``ante_dependence`` (``ad``,
  ``adh``): ``R_jk = rho_j rho_{j+1} ... rho_{k-1}``; each ``rho = phi / sqrt(1 +
  phi^2)``.
- ``compound_symmetry`` (``cs``, ``csh``): ``R_jk = rho`` off the diagonal with
  ``rho = expit(phi) (1 + a) - a``, ``a = 1 / (T - 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALIASES",
    "STRUCTURES",
    "CovDerivatives",
    "canonical_structure",
    "cov_hessian",
    "cov_jacobian",
    "covariance_and_derivatives",
    "covariance_from_params",
    "n_cov_params",
    "start_params",
]

Array = npt.NDArray[np.float64]

#: Every structure's name, as :class:`~alsprog.models.MMRM` takes it.
STRUCTURES = (
    "unstructured",
    "toeplitz",
    "heterogeneous_toeplitz",
    "ar1",
    "heterogeneous_ar1",
    "compound_symmetry",
    "heterogeneous_compound_symmetry",
    "ante_dependence",
    "heterogeneous_ante_dependence",
)
#: mmrm's short names (``us(visit | subject)`` ...) for the same structures.
ALIASES = {
    "us": "unstructured",
    "toep": "toeplitz",
    "toeph": "heterogeneous_toeplitz",
    "ar1h": "heterogeneous_ar1",
    "cs": "compound_symmetry",
    "csh": "heterogeneous_compound_symmetry",
    "ad": "ante_dependence",
    "adh": "heterogeneous_ante_dependence",
}


def canonical_structure(name: str) -> str:
    """The structure's full name (mmrm's short names accepted).

    Raises
    ------
    ValueError
        If ``name`` is neither a structure nor an alias.

    Examples
    --------
    >>> canonical_structure("toeph"), canonical_structure("ar1")
    ('heterogeneous_toeplitz', 'ar1')
    """
    if name in STRUCTURES:
        return name
    if name in ALIASES:
        return ALIASES[name]
    raise ValueError(
        f"unknown structure {name!r}; expected one of {', '.join(STRUCTURES)} or "
        f"mmrm's {', '.join(ALIASES)}"
    )


def _base(structure: str) -> tuple[bool, str]:
    """(heterogeneous?, correlation kind) of a non-unstructured structure."""
    s = canonical_structure(structure)
    het = s.startswith("heterogeneous_")
    return het, s.removeprefix("heterogeneous_")


def _n_corr(kind: str, T: int) -> int:
    return {"toeplitz": T - 1, "ar1": 1, "compound_symmetry": 1}.get(kind, T - 1)


def n_cov_params(structure: str, n_visits: int) -> int:
    """Number of covariance parameters of a structure over ``n_visits`` visits.

    Examples
    --------
    >>> [n_cov_params(s, 4) for s in ("us", "toep", "toeph", "ar1", "ar1h", "cs")]
    [10, 4, 7, 2, 5, 2]
    """
    T = int(n_visits)
    s = canonical_structure(structure)
    if s == "unstructured":
        return T * (T + 1) // 2
    het, kind = _base(s)
    return (T if het else 1) + _n_corr(kind, T)


# ---------------------------------------------------------- correlation functions
def _map_cor(phi: Array) -> tuple[Array, Array, Array]:
    """rho = phi / sqrt(1 + phi^2) and its first two derivatives."""
    q = 1.0 + phi * phi
    return phi / np.sqrt(q), q**-1.5, -3.0 * phi * q**-2.5


def _map_cs(phi: float, T: int) -> tuple[float, float, float]:
    """rho = expit(phi) (1 + a) - a, a = 1/(T-1), and its first two derivatives."""
    a = 1.0 / (T - 1) if T > 1 else 0.0
    s = 0.5 * (1.0 + np.tanh(0.5 * phi))  # expit, stable for large |phi|
    d1 = (1 + a) * s * (1 - s)
    return (1 + a) * s - a, d1, d1 * (1 - 2 * s)


def _band_products(r: Array, T: int) -> Array:
    """P_jk = prod_{l=j}^{k-1} r_l for j < k (and P_kj = P_jk, P_jj = 1)."""
    P = np.eye(T)
    for k in range(1, T):
        P[:k, k] = P[:k, k - 1] * r[k - 1]
    return np.triu(P, 1) + np.triu(P, 1).T + np.eye(T)


def _correlation(
    kind: str, phi: Array, T: int, order: int
) -> tuple[Array, Array | None, Array | None]:
    """Correlation matrix R(phi), dR/dphi (q, T, T) and d2R (q, q, T, T)."""
    q = len(phi)
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    off = lag > 0
    dR = np.zeros((q, T, T)) if order >= 1 else None
    d2R = np.zeros((q, q, T, T)) if order >= 2 else None
    if kind == "compound_symmetry":
        rho, r1, r2 = _map_cs(float(phi[0]), T)
        R = np.where(off, rho, 1.0)
        if dR is not None:
            dR[0] = np.where(off, r1, 0.0)
        if d2R is not None:
            d2R[0, 0] = np.where(off, r2, 0.0)
        return R, dR, d2R
    rho, r1, r2 = _map_cor(np.asarray(phi, dtype=float))
    if kind == "toeplitz":
        vals = np.r_[1.0, rho]
        R = vals[lag]
        for lg in range(1, T):
            at = lag == lg
            if dR is not None:
                dR[lg - 1][at] = r1[lg - 1]
            if d2R is not None:
                d2R[lg - 1, lg - 1][at] = r2[lg - 1]
        return R, dR, d2R
    if kind == "ar1":
        p = float(rho[0])
        R = p**lag
        if dR is not None:
            # d rho^n = n rho^(n-1) rho'; written without negative powers (rho = 0)
            pm1 = np.where(lag >= 1, p ** np.maximum(lag - 1, 0), 0.0)
            dR[0] = lag * pm1 * r1[0]
        if d2R is not None:
            pm1 = np.where(lag >= 1, p ** np.maximum(lag - 1, 0), 0.0)
            pm2 = np.where(lag >= 2, p ** np.maximum(lag - 2, 0), 0.0)
            d2R[0, 0] = lag * (lag - 1) * pm2 * r1[0] ** 2 + lag * pm1 * r2[0]
        return R, dR, d2R
    if kind == "ante_dependence":
        R = _band_products(rho, T)
        inside = [
            np.triu(np.logical_and.outer(np.arange(T) <= m, np.arange(T) > m), 1)
            for m in range(q)
        ]  # pairs j <= m < k: R_jk has the factor rho_m
        for m in range(q if dR is not None else 0):
            r = rho.copy()
            r[m] = r1[m]
            D = np.where(inside[m], _band_products(r, T), 0.0)
            dR[m] = D + D.T  # type: ignore[index]
        for m in range(q if d2R is not None else 0):
            for n in range(m, q):
                r = rho.copy()
                if m == n:
                    r[m] = r2[m]
                else:
                    r[m], r[n] = r1[m], r1[n]
                D = np.where(inside[m] & inside[n], _band_products(r, T), 0.0)
                d2R[m, n] = d2R[n, m] = D + D.T  # type: ignore[index]
        return R, dR, d2R
    raise ValueError(f"unknown correlation {kind!r}")


# ----------------------------------------------------------------- covariance maps
@dataclass(frozen=True)
class CovDerivatives:
    """``Sigma(theta)`` and its exact derivatives.

    ``sigma``: (T, T); ``jac``: dSigma/dtheta_k, (k, T, T) or None;
    ``hess``: d2Sigma/dtheta_k dtheta_l, (k, k, T, T) or None.
    """

    sigma: Array
    jac: Array | None
    hess: Array | None


def covariance_and_derivatives(
    theta: npt.ArrayLike, structure: str, n_visits: int, order: int = 1
) -> CovDerivatives:
    """``Sigma`` with its first (``order >= 1``) and second (``order == 2``) exact
    derivatives in ``theta``.

    Examples
    --------
    >>> d = covariance_and_derivatives([0.0, 0.0], "ar1", 2, order=1)
    >>> d.jac[0].tolist()  # d Sigma / d log sigma = 2 Sigma
    [[2.0, 0.0], [0.0, 2.0]]
    """
    th = np.asarray(theta, dtype=float)
    T = int(n_visits)
    s = canonical_structure(structure)
    k = n_cov_params(s, T)
    if th.shape != (k,):
        raise ValueError(
            f"{s} covariance over {T} visits has {k} parameters; got theta of shape "
            f"{th.shape}"
        )
    if s == "unstructured":
        return _unstructured(th, T, order)
    het, kind = _base(s)
    nv = T if het else 1
    logsd = th[:nv] if het else np.full(T, th[0])
    R, dR, d2R = _correlation(kind, th[nv:], T, order)
    sd = np.exp(logsd)
    S = np.outer(sd, sd)
    Sigma = S * R
    jac = hess = None
    # A[i]_jk = d(logsd_j + logsd_k)/d theta_i for the variance parameters
    if het:
        E = np.eye(T)
        A = E[:, :, None] + E[:, None, :]
    else:
        A = np.full((1, T, T), 2.0)
    if order >= 1:
        jac = np.concatenate([A * Sigma, S * dR], axis=0)
    if order >= 2:
        hess = np.zeros((k, k, T, T))
        hess[:nv, :nv] = A[:, None] * A[None, :] * Sigma
        cross = A[:, None] * (S * dR)[None, :]
        hess[:nv, nv:] = cross
        hess[nv:, :nv] = cross.transpose(1, 0, 2, 3)
        hess[nv:, nv:] = S * d2R
    return CovDerivatives(Sigma, jac, hess)


def _unstructured(th: Array, T: int, order: int) -> CovDerivatives:
    sd = np.exp(th[:T])
    L0 = np.eye(T)
    r, c = np.tril_indices(T, -1)  # row by row: (1,0), (2,0), (2,1), ...
    L0[r, c] = th[T:]
    L = sd[:, None] * L0
    Sigma = L @ L.T
    k = len(th)
    if order < 1:
        return CovDerivatives(Sigma, None, None)
    dL = np.zeros((k, T, T))
    for i in range(T):
        dL[i, i] = L[i]  # d L / d log sd_i: row i of L
    dL[T + np.arange(len(r)), r, c] = sd[r]  # d L_rc / d l_rc = sd_r
    LdLt = np.einsum("kij,lj->kil", dL, L)
    jac = LdLt + LdLt.transpose(0, 2, 1)
    hess = None
    if order >= 2:
        d2L = np.zeros((k, k, T, T))
        for i in range(T):
            d2L[i, i, i] = L[i]
        for m, (ri, ci) in enumerate(zip(r, c, strict=True)):
            d2L[ri, T + m, ri, ci] = d2L[T + m, ri, ri, ci] = sd[ri]
        t1 = np.einsum("abij,lj->abil", d2L, L)
        t2 = np.einsum("aij,blj->abil", dL, dL)
        hess = t1 + t1.transpose(0, 1, 3, 2) + t2 + t2.transpose(1, 0, 2, 3)
    return CovDerivatives(Sigma, jac, hess)


def covariance_from_params(
    theta: npt.ArrayLike, structure: str, n_visits: int
) -> Array:
    """Visit covariance matrix ``Sigma(theta)`` (mmrm's parameterisation, see the
    module docstring).

    Parameters
    ----------
    theta : array-like
    structure : str
        One of :data:`STRUCTURES` or an alias of :data:`ALIASES`.
    n_visits : int

    Returns
    -------
    ndarray, shape (T, T)

    Examples
    --------
    >>> covariance_from_params([np.log(2.0), 0.0], "ar1", 3).round(3).tolist()
    [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]]
    """
    return covariance_and_derivatives(theta, structure, n_visits, order=0).sigma


def cov_jacobian(theta: npt.ArrayLike, structure: str, T: int) -> Array:
    """Exact dSigma/dtheta_k, shape (k, T, T)."""
    out = covariance_and_derivatives(theta, structure, T, order=1).jac
    assert out is not None
    return out


def cov_hessian(theta: npt.ArrayLike, structure: str, T: int) -> Array:
    """Exact d2Sigma/dtheta_k dtheta_l, shape (k, k, T, T)."""
    out = covariance_and_derivatives(theta, structure, T, order=2).hess
    assert out is not None
    return out


# ------------------------------------------------------------------ start values
def _inv_map_cor(rho: Array) -> Array:
    rho = np.clip(rho, -0.95, 0.95)
    return rho / np.sqrt(1.0 - rho * rho)


def start_params(Sigma0: Array, structure: str) -> Array:
    """Parameters of ``structure`` near the empirical covariance ``Sigma0``
    (exactly it for ``"unstructured"``; an identity correlation where the
    structure's version of it is not positive definite).

    Examples
    --------
    >>> S = np.array([[4.0, 2.0], [2.0, 9.0]])
    >>> th = start_params(S, "us")
    >>> covariance_from_params(th, "us", 2).round(12).tolist()
    [[4.0, 2.0], [2.0, 9.0]]
    """
    S0 = np.asarray(Sigma0, dtype=float)
    T = S0.shape[0]
    s = canonical_structure(structure)
    var = np.diag(S0).copy()
    var[~(var > 0)] = 1.0
    if s == "unstructured":
        try:
            L = np.linalg.cholesky(S0)
        except np.linalg.LinAlgError:
            L = np.diag(np.sqrt(var))
        sd = np.diag(L).copy()
        r, c = np.tril_indices(T, -1)
        return np.r_[np.log(sd), L[r, c] / sd[r]].astype(float)
    het, kind = _base(s)
    v = 0.5 * np.log(var) if het else np.array([0.5 * np.log(np.mean(var))])
    sdv = np.sqrt(var)
    C = S0 / np.outer(sdv, sdv)
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    if kind == "toeplitz":
        rho = np.array([np.mean(C[lag == g]) for g in range(1, T)])
        phi = _inv_map_cor(rho)
    elif kind == "ar1":
        phi = _inv_map_cor(np.array([np.mean(C[lag == 1])]))
    elif kind == "ante_dependence":
        phi = _inv_map_cor(np.diag(C, 1).copy())
    else:  # compound symmetry
        a = 1.0 / (T - 1)
        rho = float(np.clip(np.mean(C[lag > 0]), -a + 0.05 * (1 + a), 0.95))
        u = (rho + a) / (1 + a)
        phi = np.array([np.log(u / (1 - u))])
    th = np.r_[v, phi]
    try:
        np.linalg.cholesky(covariance_from_params(th, s, T))
    except np.linalg.LinAlgError:
        th = np.r_[v, np.zeros_like(phi)]
    if not np.all(np.isfinite(th)):
        th = np.r_[np.zeros_like(v), np.zeros_like(phi)]
    return th
