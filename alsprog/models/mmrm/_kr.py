"""Degrees of freedom and adjusted covariance for an MMRM's fixed effects, as R's mmrm.

Owns: the Kenward-Roger pieces of mmrm's R/kenwardroger.R and src/kr_comp.cpp
(:func:`kr_components`: ``P_r``, ``Q_rs``, ``R_rs``; :func:`kr_vcov`: the adjusted
covariance, ``linear=True`` for "Kenward-Roger-Linear"; :func:`kr_df`: the ddf and F
scaling), the REML information in the variance parameters (:func:`reml_information`,
observed as mmrm's ``theta_vcov`` or expected as pbkrtest's), between-within
(:func:`between_within_df`, mmrm's R/between-within.R), residual ddf, mmrm's
multi-row Satterthwaite F test (:func:`satterthwaite_md`, :func:`md_denom_df`) and
the t / F tests of a contrast (:func:`contrast_test`); the adapter to a fitted
:class:`~alsprog.models.MMRM` (:func:`model_blocks`, :func:`mmrm_inference`).
Leaves: the adapter to a fitted :class:`~alsprog.models.MMRM` to
:mod:`alsprog.models.mmrm._inference`; the sandwich covariances to
:mod:`alsprog.models.mmrm._sandwich`; covariance
structures, their Jacobians and the fit to :mod:`alsprog.models.mmrm._numerics` and
:mod:`alsprog.models.mmrm._model`.

Everything takes the covariance's derivatives ``dSigma/dtheta_r`` (and second
derivatives) per visit pattern, so it works for any parameterisation.  With
``V = C^-1 = (sum_i X_i'S_i^-1 X_i)^-1`` (``S_i`` the subject's block) and ``W`` the
inverse of the information in ``theta``:

* ``P_r = -sum_i X_i'S_i^-1 S_{i,r} S_i^-1 X_i``,
  ``Q_rs = sum_i X_i'S_i^-1 S_{i,r} S_i^-1 S_{i,s} S_i^-1 X_i``,
  ``R_rs = sum_i X_i'S_i^-1 S_{i,rs} S_i^-1 X_i``;
* ``V_KR = V + 2 V [sum_rs W_rs (Q_rs - P_r V P_s - R_rs / 4)] V`` (Kenward & Roger
  1997, eq. 5); "linear" drops ``R``;
* the ddf and F scaling of ``L beta`` from ``V`` (unadjusted), ``P`` and ``W``
  (mmrm's ``h_kr_df``, the same algebra as pbkrtest's ``.KR_adjust``).

mmrm takes ``W`` as the inverse observed Hessian of ``-l_R`` in its own ``theta``
(TMB); pbkrtest the inverse expected information of the variance components (linear:
``R = 0``).  At the REML optimum the ddf and the linear adjusted covariance do not
depend on the parameterisation, the second-order term does: to reproduce mmrm's
"Kenward-Roger" give the derivatives in mmrm's ``theta`` (src/covariance.h).

References: Kenward MG, Roger JH (1997). Biometrics 53:983-997.  The R package mmrm
(github.com/openpharma/mmrm), R/kenwardroger.R, R/between-within.R,
R/satterthwaite.R.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from alsprog.errors import ModelSpecificationError
from alsprog.models.mmrm._sandwich import SubjectBlock

if TYPE_CHECKING:
    pass

__all__ = [
    "KRComponents",
    "between_within_df",
    "contrast_test",
    "kr_components",
    "kr_df",
    "kr_vcov",
    "md_denom_df",
    "reml_information",
    "residual_df",
    "satterthwaite_md",
]

Array = npt.NDArray[np.float64]


def _gram(SiX: Array) -> Array:
    """``sum_m SiX_m[d]' SiX_m[e]`` as (d d, p p) (one BLAS product)."""
    m, d, p = SiX.shape
    F = SiX.reshape(m, d * p)
    G = (F.T @ F).reshape(d, p, d, p)
    return G.transpose(0, 2, 1, 3).reshape(d * d, p * p)


def _products(dS: Array, A: Array) -> Array:
    """``dS_r A_s`` for all ``r, s``, as (k k, d d) (one BLAS product)."""
    k, d = dS.shape[0], dS.shape[1]
    M = dS.reshape(k * d, d) @ A.transpose(1, 0, 2).reshape(d, k * d)
    return M.reshape(k, d, k, d).transpose(0, 2, 1, 3).reshape(k * k, d * d)


@dataclass(frozen=True)
class KRComponents:
    """What :func:`kr_components` returns.

    Attributes
    ----------
    Cinv : ndarray, shape (p, p)
        ``V = (sum_i X_i'S_i^-1 X_i)^-1``.
    P : ndarray, shape (k, p, p)
    trace_rs : ndarray, shape (k, k)
        ``sum_i tr(S_i^-1 S_{i,r} S_i^-1 S_{i,s})``.
    trace_r2 : ndarray, shape (k, k)
        ``sum_i tr(S_i^-1 S_{i,rs})`` (zero without second derivatives).
    resid_rs : ndarray, shape (k, k)
        ``sum_i e_i'S_{i,r} S_i^-1 S_{i,s} e_i`` with ``e_i = S_i^-1 r_i``.
    resid_r2 : ndarray, shape (k, k)
        ``sum_i e_i'S_{i,rs} e_i``.
    a : ndarray, shape (k, p)
        ``sum_i X_i'S_i^-1 S_{i,r} e_i``.
    trace_VQ, trace_VR : ndarray, shape (k, k)
        ``tr(V Q_rs)``, ``tr(V R_rs)`` (zero without second derivatives).
    blocks : tuple of SubjectBlock
        The input, for :meth:`weighted` and the full ``Q`` and ``R``.
    second : bool
        Whether any block has second derivatives.

    Notes
    -----
    ``Q`` and ``R`` (k, k, p, p) are built only on request (:attr:`Q`, :attr:`R`);
    the adjusted covariance needs only ``sum_rs W_rs Q_rs`` (:meth:`weighted`),
    ``k^2`` times cheaper for an unstructured covariance.
    """

    Cinv: Array
    P: Array
    trace_rs: Array
    trace_r2: Array
    resid_rs: Array
    resid_r2: Array
    a: Array
    trace_VQ: Array
    trace_VR: Array
    blocks: tuple[SubjectBlock, ...]
    second: bool

    def _terms(self) -> Iterator[tuple[Array, Array, Array | None]]:
        """Per block: ``Z`` (d d, p p), ``S_r S^-1 S_s`` (k k, d d), ``S_rs``."""
        for b in self.blocks:
            S = np.asarray(b.Sigma, dtype=float)
            d = S.shape[0]
            Si = np.linalg.inv(S)
            Si = 0.5 * (Si + Si.T)
            SiX = np.einsum("de,mep->mdp", Si, b.X)
            Z = _gram(SiX)
            dS = np.asarray(b.dSigma, dtype=float)
            k = dS.shape[0]
            SrSiSs = _products(dS, Si @ dS)
            d2 = None
            if b.d2Sigma is not None:
                d2 = np.asarray(b.d2Sigma, dtype=float).reshape(k * k, d * d)
            yield Z, SrSiSs, d2

    def weighted(self, W: npt.ArrayLike) -> tuple[Array, Array | None]:
        """``(sum_rs W_rs Q_rs, sum_rs W_rs R_rs)`` (the second None without second
        derivatives)."""
        w = np.asarray(W, dtype=float).ravel()
        p = self.Cinv.shape[0]
        WQ = np.zeros(p * p)
        WR = np.zeros(p * p) if self.second else None
        for Z, SrSiSs, d2 in self._terms():
            WQ += (w @ SrSiSs) @ Z
            if d2 is not None and WR is not None:
                WR += (w @ d2) @ Z
        return WQ.reshape(p, p), None if WR is None else WR.reshape(p, p)

    @cached_property
    def Q(self) -> Array:
        """``Q_rs``, shape (k, k, p, p)."""
        k, p = self.P.shape[0], self.P.shape[1]
        Q = np.zeros((k * k, p * p))
        for Z, SrSiSs, _ in self._terms():
            Q += SrSiSs @ Z
        return Q.reshape(k, k, p, p)

    @cached_property
    def R(self) -> Array | None:
        """``R_rs``, shape (k, k, p, p); None without second derivatives."""
        if not self.second:
            return None
        k, p = self.P.shape[0], self.P.shape[1]
        R = np.zeros((k * k, p * p))
        for Z, _, d2 in self._terms():
            if d2 is not None:
                R += d2 @ Z
        return R.reshape(k, k, p, p)


def kr_components(blocks: Sequence[SubjectBlock]) -> KRComponents:
    """``P``, the traces the REML information needs, and (on request) ``Q``, ``R``.

    Parameters
    ----------
    blocks : sequence of SubjectBlock
        Every subject of the fit, each block with a shared ``Sigma`` (d, d) and
        ``dSigma`` (k, d, d); ``d2Sigma`` (k, k, d, d) where the parameterisation is
        not linear (weighted fits: one block per subject, or the weighted data
        ``W^1/2 X``, ``W^1/2 r`` under the unweighted ``Sigma``).

    Returns
    -------
    KRComponents

    Raises
    ------
    ModelSpecificationError
        A block without ``dSigma`` or with per-subject covariance arrays.

    Examples
    --------
    >>> X = np.ones((1, 2, 1))  # one subject, two visits, an intercept
    >>> S = np.array([[2.0, 1.0], [1.0, 2.0]])  # s2_b J + s2 I, s2_b = s2 = 1
    >>> dS = np.array([np.ones((2, 2)), np.eye(2)])
    >>> kc = kr_components([SubjectBlock(X, S, np.zeros((1, 2)), dS)])
    >>> kc.Cinv.round(6).tolist(), kc.P[:, 0, 0].round(6).tolist()
    ([[1.5]], [-0.444444, -0.222222])
    """
    if not blocks:
        raise ModelSpecificationError("No subjects: `blocks` is empty.")
    p = blocks[0].X.shape[-1]
    ks = set()
    C = np.zeros((p, p))
    for j, b in enumerate(blocks):
        S = np.asarray(b.Sigma, dtype=float)
        if b.dSigma is None or S.ndim != 2 or np.ndim(b.dSigma) != 3:
            raise ModelSpecificationError(
                f"Block {j} needs a shared Sigma (d, d) and dSigma (k, d, d); got "
                f"Sigma {S.shape} and dSigma "
                f"{None if b.dSigma is None else np.shape(b.dSigma)}."
            )
        ks.add(np.shape(b.dSigma)[0])
        C += np.einsum("mdp,de,meq->pq", b.X, np.linalg.inv(S), b.X)
    if len(ks) != 1:
        raise ModelSpecificationError(
            f"The blocks' dSigma disagree on the number of parameters: {sorted(ks)}."
        )
    k = ks.pop()
    Cinv = np.linalg.inv(0.5 * (C + C.T))
    Cinv = 0.5 * (Cinv + Cinv.T)
    vecV = Cinv.ravel()
    P = np.zeros((k, p * p))
    trace_rs = np.zeros((k, k))
    trace_r2 = np.zeros((k, k))
    resid_rs = np.zeros((k, k))
    resid_r2 = np.zeros((k, k))
    trace_VQ = np.zeros(k * k)
    trace_VR = np.zeros(k * k)
    a = np.zeros((k, p))
    second = any(b.d2Sigma is not None for b in blocks)
    for b in blocks:
        S = np.asarray(b.Sigma, dtype=float)
        d = S.shape[0]
        m = b.X.shape[0]
        Si = np.linalg.inv(S)
        Si = 0.5 * (Si + Si.T)
        SiX = np.einsum("de,mep->mdp", Si, b.X)  # (m, d, p)
        # sum_m SiX_m[d]' SiX_m[e], flattened to (d d, p p) for BLAS products
        Z = _gram(SiX)
        zV = Z @ vecV  # tr(V Z_de)
        e = b.resid @ Si  # (m, d), S^-1 r per subject
        E2 = (e.T @ e).ravel()
        Y = np.einsum("mdp,me->dep", SiX, e).reshape(d * d, p)
        dS = np.asarray(b.dSigma, dtype=float)
        A = Si @ dS  # (k, d, d): S^-1 S_r
        SrSiSs = _products(dS, A)
        dSf = dS.reshape(k, d * d)
        P -= dSf @ Z
        trace_VQ += SrSiSs @ zV
        trace_rs += m * (A.reshape(k, d * d) @ A.transpose(0, 2, 1).reshape(k, d * d).T)
        resid_rs += (SrSiSs @ E2).reshape(k, k)
        a += dSf @ Y
        if b.d2Sigma is not None:
            d2 = np.asarray(b.d2Sigma, dtype=float).reshape(k * k, d * d)
            trace_VR += d2 @ zV
            trace_r2 += m * (d2 @ Si.T.ravel()).reshape(k, k)
            resid_r2 += (d2 @ E2).reshape(k, k)
    P3 = P.reshape(k, p, p)
    return KRComponents(
        Cinv=Cinv,
        P=0.5 * (P3 + P3.transpose(0, 2, 1)),
        trace_rs=trace_rs,
        trace_r2=trace_r2,
        resid_rs=resid_rs,
        resid_r2=resid_r2,
        a=a,
        trace_VQ=trace_VQ.reshape(k, k),
        trace_VR=trace_VR.reshape(k, k),
        blocks=tuple(blocks),
        second=second,
    )


def reml_information(
    kc: KRComponents, *, kind: Literal["observed", "expected"] = "observed"
) -> Array:
    """Information of the variance parameters in ``-l_R`` (half the REML criterion).

    ``"observed"``: the Hessian of ``-l_R`` at the given ``theta`` (mmrm's
    ``theta_vcov`` is its inverse at the optimum),
    ``1/2 [tr(P S_rs) - tr(P S_r P S_s) + 2 y'P S_r P S_s P y - y'P S_rs P y]`` with
    ``P = S^-1 - S^-1 X V X'S^-1``.  ``"expected"``: ``1/2 tr(P S_r P S_s)``
    (pbkrtest's ``IE2 / 2``).

    Parameters
    ----------
    kc : KRComponents
        From :func:`kr_components` (residuals at the REML ``beta``).
    kind : {"observed", "expected"}, default "observed"

    Returns
    -------
    ndarray, shape (k, k)
    """
    V = kc.Cinv
    PV = kc.P @ V  # tr(V P_r V P_s) = sum (P_r V) * (P_s V)'
    tr_pp = kc.trace_rs - 2.0 * kc.trace_VQ + np.einsum("rpq,sqp->rs", PV, PV)
    if kind == "expected":
        out = 0.5 * tr_pp
    elif kind == "observed":
        tr_p2 = kc.trace_r2 - kc.trace_VR
        quad = kc.resid_rs - np.einsum("rp,pq,sq->rs", kc.a, V, kc.a)
        out = 0.5 * (tr_p2 - tr_pp + 2.0 * quad - kc.resid_r2)
    else:
        raise ModelSpecificationError(
            f"`kind` {kind!r} is not one of 'observed', 'expected'."
        )
    return 0.5 * (out + out.T)


def kr_vcov(kc: KRComponents, W: npt.ArrayLike, *, linear: bool = False) -> Array:
    """Kenward-Roger adjusted covariance of the fixed effects (mmrm's ``h_var_adj``).

    Parameters
    ----------
    kc : KRComponents
    W : array-like, shape (k, k)
        Inverse information of ``theta`` (mmrm: ``theta_vcov``).
    linear : bool, default False
        Drop the second-derivative term ("Kenward-Roger-Linear").

    Returns
    -------
    ndarray, shape (p, p)
    """
    W = np.asarray(W, dtype=float)
    V = kc.Cinv
    PV = kc.P @ V  # (k, p, p)
    k, p = PV.shape[0], PV.shape[1]
    WP = (W @ kc.P.reshape(k, p * p)).reshape(k, p, p)  # sum_s W_rs P_s
    WQ, WR = kc.weighted(W)
    inner = WQ - np.einsum("rpa,raq->pq", PV, WP)
    if WR is not None and not linear:
        inner -= 0.25 * WR
    out = V + 2.0 * V @ inner @ V
    return 0.5 * (out + out.T)


def kr_df(L: npt.ArrayLike, kc: KRComponents, W: npt.ArrayLike) -> tuple[float, float]:
    """Kenward-Roger denominator df and F scaling of the test of ``L beta``.

    mmrm's ``h_kr_df`` (pbkrtest's ``.KR_adjust``): from the unadjusted ``V``, ``P``
    and ``W`` only, so "Kenward-Roger" and "Kenward-Roger-Linear" share it.

    Parameters
    ----------
    L : array-like, shape (p,) or (q, p)
        Contrast(s), linearly independent rows.
    kc : KRComponents
    W : array-like, shape (k, k)

    Returns
    -------
    (float, float)
        ``(ddf, lambda)``; the F statistic is ``lambda / q * (L b)'(L V_KR L')^-1
        (L b)``.
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    W = np.asarray(W, dtype=float)
    V = kc.Cinv
    q = L.shape[0]
    M = L.T @ np.linalg.solve(L @ V @ L.T, L)
    MV = M @ V
    T = np.einsum("ab,rbc,cd->rad", MV, kc.P, V)  # M V P_r V
    tr = np.einsum("raa->r", T)
    a1 = float(tr @ W @ tr)
    a2 = float(np.einsum("rs,rab,sba->", W, T, T))
    b = (a1 + 6.0 * a2) / (2.0 * q)
    e_star = 1.0 / (1.0 - a2 / q)
    g = ((q + 1.0) * a1 - (q + 4.0) * a2) / ((q + 2.0) * a2)
    den = 3.0 * q + 2.0 - 2.0 * g
    c1, c2, c3 = g / den, (q - g) / den, (q + 2.0 - g) / den
    v_star = 2.0 / q * (1.0 + c1 * b) / (1.0 - c2 * b) ** 2 / (1.0 - c3 * b)
    rho = v_star / (2.0 * e_star**2)
    m = 4.0 + (q + 2.0) / (q * rho - 1.0)
    lam = m / (e_star * (m - 2.0))
    return float(m), float(lam)


def residual_df(n_obs: int, n_coef: int) -> float:
    """mmrm's "Residual" ddf: observations minus coefficients.

    Examples
    --------
    >>> residual_df(537, 2)
    535.0
    """
    return float(n_obs - n_coef)


def between_within_df(
    X: npt.ArrayLike,
    subject: npt.ArrayLike,
    L: npt.ArrayLike,
    *,
    intercept: int | None = 0,
) -> float:
    """mmrm's "Between-Within" ddf of a contrast (R/between-within.R).

    A column constant within every subject is "between" (ddf ``n_subjects -
    n_between - n_intercept``), any other "within" (ddf ``n_obs - n_subjects -
    n_within``), the intercept counts as within; a contrast gets the smallest ddf of
    the coefficients it involves.

    Parameters
    ----------
    X : array-like, shape (N, p)
        Design of the fit's rows.
    subject : array-like, shape (N,)
        Each row's subject.
    L : array-like, shape (p,) or (q, p)
    intercept : int or None, default 0
        Column of the intercept (None: none).

    Returns
    -------
    float

    Examples
    --------
    >>> X = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1], [1, 2, 3, 1, 2, 3]])
    >>> s = [0, 0, 0, 1, 1, 1]
    >>> between_within_df(X, s, [0, 1, 0]), between_within_df(X, s, [0, 0, 1])
    (0.0, 3.0)
    """
    X = np.asarray(X, dtype=float)
    _, sid = np.unique(np.asarray(subject), return_inverse=True)
    n_sub = int(sid.max()) + 1
    L = np.atleast_2d(np.asarray(L, dtype=float))
    kinds = []
    for j in range(X.shape[1]):
        if j == intercept:
            kinds.append("intercept")
            continue
        pairs = np.unique(np.column_stack([X[:, j], sid]), axis=0)
        kinds.append("within" if len(pairs) > n_sub else "between")
    n_between = kinds.count("between")
    n_within = kinds.count("within")
    n_int = kinds.count("intercept")
    ddf = {
        "between": n_sub - n_between - n_int,
        "within": X.shape[0] - n_sub - n_within,
        "intercept": X.shape[0] - n_sub - n_within,
    }
    involved = np.any(L != 0, axis=0)
    if not involved.any():
        raise ModelSpecificationError("The contrast `L` is all zeros.")
    return float(min(ddf[kinds[j]] for j in np.flatnonzero(involved)))


def md_denom_df(t_df: npt.ArrayLike) -> float:
    """mmrm's ``h_md_denom_df``: one ddf for an F test from the 1-d ddf of its
    orthogonalised rows (``2E/(E - q)``, ``E = sum t/(t - 2)``).

    Examples
    --------
    >>> md_denom_df([10.0, 10.0]), round(md_denom_df([3.0, 5.0, 10.0]), 6)
    (10.0, 4.057143)
    """
    t = np.asarray(t_df, dtype=float).ravel()
    if t.size == 1:
        return float(t[0])
    if np.all(np.abs(np.diff(t)) < np.sqrt(np.finfo(float).eps)):
        return float(t.mean())
    if np.any(t <= 2):
        return 2.0
    e = float(np.sum(t / (t - 2.0)))
    return 2.0 * e / (e - t.size)


def satterthwaite_md(
    beta: npt.ArrayLike,
    vcov: npt.ArrayLike,
    L: npt.ArrayLike,
    df_of: Callable[[Array], float],
) -> dict[str, float]:
    """F test of several contrasts with Satterthwaite ddf as mmrm's ``h_df_md_sat``.

    ``L V L'`` is diagonalised; its rank-``q`` eigen-rows ``u_j'L`` give ``F =
    mean_j (u_j'L b)^2 / lambda_j`` and the 1-d ddf ``df_of(u_j'L)`` combined by
    :func:`md_denom_df`.  A rank-1 ``L`` is a t test squared.

    Parameters
    ----------
    beta : array-like, shape (p,)
    vcov : array-like, shape (p, p)
        Model-based or sandwich covariance.
    L : array-like, shape (q, p)
    df_of : callable
        The 1-d Satterthwaite ddf of a contrast vector (model-based, or
        :func:`~alsprog.models.mmrm._sandwich.sandwich_df` for a sandwich).

    Returns
    -------
    dict
        ``num_df, denom_df, f_stat, p_value``.

    Examples
    --------
    >>> r = satterthwaite_md([1.0, 2.0], np.eye(2), np.eye(2), lambda c: 20.0)
    >>> r["num_df"], r["f_stat"], r["denom_df"]
    (2.0, 2.5, 20.0)
    """
    from scipy import stats

    beta = np.asarray(beta, dtype=float)
    V = np.asarray(vcov, dtype=float)
    L = np.atleast_2d(np.asarray(L, dtype=float))
    w, U = np.linalg.eigh(L @ V @ L.T)
    order = np.argsort(w)[::-1]
    w, U = w[order], U[:, order]
    tol = max(np.sqrt(np.finfo(float).eps) * w[0], 0.0)
    rank = int(np.sum(w > tol))
    if rank == 0:
        raise ModelSpecificationError("The contrast `L` has rank 0 under `vcov`.")
    rows = (U.T @ L)[:rank]
    if rank == 1:
        t = contrast_test(beta, V, rows[0], df_of(rows[0]))
        f = t["t"] ** 2
        return {
            "num_df": 1.0,
            "denom_df": t["df"],
            "f_stat": f,
            "p_value": float(stats.f.sf(f, 1, t["df"])),
        }
    f = float(np.mean((rows @ beta) ** 2 / w[:rank]))
    ddf = md_denom_df([df_of(r) for r in rows])
    return {
        "num_df": float(rank),
        "denom_df": ddf,
        "f_stat": f,
        "p_value": float(stats.f.sf(f, rank, ddf)),
    }


def contrast_test(
    beta: npt.ArrayLike,
    vcov: npt.ArrayLike,
    L: npt.ArrayLike,
    df: float,
    *,
    f_scaling: float = 1.0,
) -> dict[str, float]:
    """t test of one contrast or F test of several (mmrm's ``h_test_1d`` /
    ``h_test_md``).

    Parameters
    ----------
    beta : array-like, shape (p,)
    vcov : array-like, shape (p, p)
        The covariance to use (model, sandwich or Kenward-Roger adjusted).
    L : array-like, shape (p,) or (q, p)
    df : float
        Denominator degrees of freedom.
    f_scaling : float, default 1
        Kenward-Roger's ``lambda`` (F tests only).

    Returns
    -------
    dict
        One row: ``estimate, std_error, df, t, p_value``; several: ``num_df,
        denom_df, f_stat, p_value``.

    Examples
    --------
    >>> r = contrast_test([1.0, 2.0], np.eye(2), [0.0, 1.0], 10.0)
    >>> r["t"], round(r["p_value"], 6)
    (2.0, 0.073388)
    """
    from scipy import stats

    beta = np.asarray(beta, dtype=float)
    vcov = np.asarray(vcov, dtype=float)
    Lm = np.asarray(L, dtype=float)
    if Lm.ndim == 1 or Lm.shape[0] == 1:
        c = Lm.ravel()
        est = float(c @ beta)
        se = float(np.sqrt(c @ vcov @ c))
        t = est / se
        return {
            "estimate": est,
            "std_error": se,
            "df": float(df),
            "t": t,
            "p_value": float(2.0 * stats.t.sf(abs(t), df)),
        }
    Lb = Lm @ beta
    q = Lm.shape[0]
    f = float(f_scaling / q * Lb @ np.linalg.solve(Lm @ vcov @ Lm.T, Lb))
    return {
        "num_df": float(q),
        "denom_df": float(df),
        "f_stat": f,
        "p_value": float(stats.f.sf(f, q, df)),
    }
