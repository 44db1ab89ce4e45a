"""Cluster-robust (sandwich) covariance of an MMRM's fixed effects, as R's mmrm does it.

Owns: :class:`SubjectBlock` (subjects sharing a visit pattern: their design rows, fitted
covariance block, residuals and, for Kenward-Roger, the covariance's derivatives in
the variance parameters), :func:`sandwich_vcov` (``"cr0"``, ``"cr2"``, ``"cr3"``: mmrm's
``vcov = "Empirical"``, ``"Empirical-Bias-Reduced"``, ``"Empirical-Jackknife"``, and
clubSandwich's ``vcovCR`` on an ``nlme::gls`` fit) and :func:`sandwich_df` (the
Satterthwaite degrees of freedom mmrm gives with an empirical covariance, the same as
clubSandwich's ``coef_test(test = "Satterthwaite")``).
Leaves: fitting, the covariance structures and their parameters to
:mod:`alsprog.models.mmrm._model` and :mod:`alsprog.models.mmrm._numerics`;
Kenward-Roger, between-within and residual degrees of freedom to
:mod:`alsprog.models.mmrm._kr`.

With ``Sigma_i = L_i L_i'``, whitened design ``Xw_i = L_i^-1 X_i``, residuals
``rw_i = L_i^-1 (y_i - X_i beta)``, ``C = sum_i Xw_i'Xw_i`` and the whitened hat block
``H_i = Xw_i C^-1 Xw_i'``, the sandwich is ``C^-1 (sum_i z_i z_i') C^-1`` with
``z_i = Xw_i' a_i rw_i`` and ``a_i = I`` (CR0), ``(I - H_i)^-1`` (CR3) or
``(I - H_i)^-1/2`` (CR2).  CR0 and CR3 do not depend on the square root ``L_i``; CR2
does: mmrm takes the symmetric root in any whitened basis (the result is the same in
all of them), clubSandwich the root of ``U_i (Sigma_i - X_i C^-1 X_i') U_i'`` with
``U_i = L_i'`` (``a_i = (S_i (I - H_i) S_i)^-1/2 S_i``, ``S_i = L_i'L_i``), which
differs in the fourth digit on real data (mmrm's own tests accept ``1e-3`` between
them).  Neither package rescales CR0 or CR3 (no ``J/(J-1)``).  The weighted fit's
``Sigma_i`` is the weighted block ``W_i^-1/2 Sigma W_i^-1/2`` (mmrm's
``gi_simga_inv_chol`` in src/empirical.cpp).

Satterthwaite degrees of freedom for ``c'beta`` (mmrm's ``h_df_1d_sat_empirical``,
Bell & McCaffrey 2002): with ``g_i = a_i' Xw_i C^-1 c`` and the whitened residuals'
covariance ``I - Xw C^-1 Xw'`` under the working model, the matrix
``M_ij = delta_ij |g_i|^2 - (Xw_i'g_i)' C^-1 (Xw_j'g_j)`` over subjects gives
``df = tr(M)^2 / sum(M^2)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from alsprog.errors import ModelSpecificationError

__all__ = [
    "SandwichResult",
    "SubjectBlock",
    "blocks_from_rows",
    "sandwich_df",
    "sandwich_vcov",
]

Array = npt.NDArray[np.float64]
SandwichType = Literal["cr0", "cr2", "cr3"]
Flavour = Literal["mmrm", "clubsandwich"]


@dataclass(frozen=True)
class SubjectBlock:
    """Subjects that share one set of observed visits (or one subject).

    Attributes
    ----------
    X : ndarray, shape (m, d, p)
        Design rows of the ``m`` subjects at their ``d`` visits.
    Sigma : ndarray, shape (d, d) or (m, d, d)
        Fitted covariance block (shared, or per subject for weighted fits).
    resid : ndarray, shape (m, d)
        ``y - X beta``.
    dSigma : ndarray, shape (k, d, d) or (k, m, d, d), optional
        ``dSigma/dtheta_r`` for the ``k`` variance parameters (Kenward-Roger).
    d2Sigma : ndarray, shape (k, k, d, d) or (k, k, m, d, d), optional
        Second derivatives (Kenward-Roger with the second-order term, the observed
        REML Hessian of a non-linear parameterisation).
    """

    X: Array
    Sigma: Array
    resid: Array
    dSigma: Array | None = None
    d2Sigma: Array | None = None

    @property
    def n_subjects(self) -> int:
        return int(self.X.shape[0])


def blocks_from_rows(
    X: npt.ArrayLike,
    resid: npt.ArrayLike,
    subject: npt.ArrayLike,
    sigma: Sequence[npt.ArrayLike],
) -> list[SubjectBlock]:
    """One block per subject from stacked rows.

    Parameters
    ----------
    X : array-like, shape (N, p)
    resid : array-like, shape (N,)
    subject : array-like of int, shape (N,)
        Subject code ``0 .. n-1`` of each row; a subject's rows in visit order.
    sigma : sequence of array-like
        The covariance block of subject ``j`` at ``sigma[j]``.

    Returns
    -------
    list of SubjectBlock
        In subject-code order.

    Examples
    --------
    >>> b = blocks_from_rows(np.ones((3, 1)), [1.0, -1.0, 2.0], [0, 0, 1],
    ...                      [np.eye(2), np.eye(1)])
    >>> [blk.X.shape for blk in b]
    [(1, 2, 1), (1, 1, 1)]
    """
    X = np.asarray(X, dtype=float)
    r = np.asarray(resid, dtype=float)
    s = np.asarray(subject)
    out = []
    for j, S in enumerate(sigma):
        rows = np.flatnonzero(s == j)
        S = np.asarray(S, dtype=float).reshape(len(rows), len(rows))
        out.append(SubjectBlock(X=X[rows][None], Sigma=S, resid=r[rows][None]))
    return out


@dataclass(frozen=True)
class SandwichResult:
    """What :func:`sandwich_vcov` returns.

    Attributes
    ----------
    vcov : ndarray, shape (p, p)
        The sandwich covariance of the fixed effects.
    Cinv : ndarray, shape (p, p)
        The model-based ``C^-1`` it was built on.
    Xw, F : list of ndarray, shape (m, d, p)
        Per block the whitened design and ``a_i' Xw_i`` (what
        :func:`sandwich_df` needs).
    """

    vcov: Array
    Cinv: Array
    Xw: list[Array]
    F: list[Array]


def _inv_sqrt_psd(A: Array, flavour: Flavour) -> Array:
    """Symmetric (pseudo-)inverse square root of symmetric PSD matrices (..., d, d),
    with mmrm's (relative, SVD) or clubSandwich's (absolute ``1e-12``) cut-off."""
    w, V = np.linalg.eigh(0.5 * (A + np.swapaxes(A, -1, -2)))
    if flavour == "mmrm":
        d = A.shape[-1]
        tol = np.finfo(float).eps * d * np.max(np.abs(w), axis=-1, keepdims=True)
        keep = w > tol
    else:
        keep = w > 1e-12
    ws = np.where(keep, 1.0 / np.sqrt(np.where(keep, w, 1.0)), 0.0)
    return (V * ws[..., None, :]) @ np.swapaxes(V, -1, -2)


def sandwich_vcov(
    blocks: Sequence[SubjectBlock],
    Cinv: npt.ArrayLike | None = None,
    *,
    type: SandwichType = "cr0",
    flavour: Flavour = "mmrm",
) -> SandwichResult:
    """Cluster-robust covariance of the GLS fixed effects, one cluster per subject.

    Parameters
    ----------
    blocks : sequence of SubjectBlock
        Every subject of the fit (``X``, fitted ``Sigma``, ``resid``).
    Cinv : array-like, shape (p, p), optional
        ``(sum_i X_i' Sigma_i^-1 X_i)^-1``; computed from ``blocks`` when omitted.
    type : {"cr0", "cr2", "cr3"}, default "cr0"
        Empirical, bias-reduced (Bell-McCaffrey) or jackknife-like adjustment.
    flavour : {"mmrm", "clubsandwich"}, default "mmrm"
        Whose CR2 square root (see the module docstring); CR0 and CR3 are the same.

    Returns
    -------
    SandwichResult

    Raises
    ------
    ModelSpecificationError
        An unknown ``type`` or ``flavour``, or (CR3) a subject whose ``I - H_i`` is
        singular (its rows alone determine a fixed effect).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([np.ones(12), np.tile([0.0, 1.0, 2.0], 4)])
    >>> r = rng.normal(size=12)
    >>> blocks = blocks_from_rows(X, r, np.repeat(np.arange(4), 3), [np.eye(3)] * 4)
    >>> V = sandwich_vcov(blocks, type="cr0").vcov
    >>> C = np.linalg.inv(X.T @ X)
    >>> meat = sum(np.outer(X[i:i + 3].T @ r[i:i + 3], X[i:i + 3].T @ r[i:i + 3])
    ...            for i in range(0, 12, 3))
    >>> bool(np.allclose(V, C @ meat @ C))
    True
    """
    if type not in ("cr0", "cr2", "cr3"):
        raise ModelSpecificationError(
            f"Sandwich type {type!r} is not one of 'cr0', 'cr2', 'cr3'."
        )
    if flavour not in ("mmrm", "clubsandwich"):
        raise ModelSpecificationError(
            f"Sandwich flavour {flavour!r} is not one of 'mmrm', 'clubsandwich'."
        )
    whitened = []
    p = blocks[0].X.shape[-1]
    C = np.zeros((p, p))
    for b in blocks:
        L = np.linalg.cholesky(np.asarray(b.Sigma, dtype=float))
        Xw = np.linalg.solve(L, b.X)  # (m, d, p); L broadcasts over m
        rw = np.linalg.solve(L, b.resid[..., None])[..., 0]  # (m, d)
        C += np.einsum("mdp,mdq->pq", Xw, Xw)
        whitened.append((L, Xw, rw))
    if Cinv is None:
        Cinv = np.linalg.inv(0.5 * (C + C.T))
    Cinv = np.asarray(Cinv, dtype=float)
    meat = np.zeros((p, p))
    Xws: list[Array] = []
    Fs: list[Array] = []
    for L, Xw, rw in whitened:
        d = Xw.shape[1]
        if type == "cr0":
            F = Xw
        else:
            IH = np.eye(d) - Xw @ Cinv @ np.swapaxes(Xw, 1, 2)  # (m, d, d)
            if type == "cr3":
                if np.min(np.linalg.eigvalsh(IH)) < 1e-10:
                    raise ModelSpecificationError(
                        "CR3 (jackknife) needs I - H_i invertible for every subject; "
                        "a subject's rows alone determine a fixed effect: use 'cr2'."
                    )
                a = np.linalg.inv(IH)
            elif flavour == "mmrm":
                a = _inv_sqrt_psd(IH, "mmrm")
            else:
                S = np.swapaxes(L, -1, -2) @ L  # L'L
                a = _inv_sqrt_psd(S @ IH @ S, "clubsandwich") @ S
            F = np.swapaxes(a, 1, 2) @ Xw  # a' Xw, (m, d, p)
        z = np.einsum("mdp,md->mp", F, rw)
        meat += z.T @ z
        Xws.append(np.asarray(Xw, dtype=float))
        Fs.append(np.asarray(F, dtype=float))
    V = Cinv @ meat @ Cinv
    return SandwichResult(vcov=0.5 * (V + V.T), Cinv=Cinv, Xw=Xws, F=Fs)


def sandwich_df(result: SandwichResult, c: npt.ArrayLike) -> float:
    """Satterthwaite degrees of freedom of ``c'beta`` with a sandwich covariance.

    mmrm's ``h_df_1d_sat_empirical`` (and clubSandwich's ``df_Satt`` for the same
    adjustment): ``tr(M)^2 / sum(M^2)`` with ``M`` the covariance, under the working
    model, of the subjects' contributions to ``c' V c`` (module docstring).

    Parameters
    ----------
    result : SandwichResult
        From :func:`sandwich_vcov`.
    c : array-like, shape (p,)
        One contrast.

    Returns
    -------
    float

    Examples
    --------
    >>> X = np.ones((8, 1))
    >>> r = np.arange(8.0) - 3.5
    >>> res = sandwich_vcov(blocks_from_rows(X, r, np.repeat(np.arange(4), 2),
    ...                                      [np.eye(2)] * 4))
    >>> round(sandwich_df(res, [1.0]), 6)  # 4 equal clusters, a mean: J - 1
    3.0
    """
    c = np.asarray(c, dtype=float).ravel()
    w = result.Cinv @ c
    d_all, b_all = [], []
    for Xw, F in zip(result.Xw, result.F, strict=True):
        g = F @ w  # (m, d)
        d_all.append(np.einsum("md,md->m", g, g))
        b_all.append(np.einsum("mdp,md->mp", Xw, g))
    d = np.concatenate(d_all)
    B = np.concatenate(b_all)  # (n, p)
    # M = diag(d) - B C^-1 B'; tr and sum of squares without forming it when large
    BC = B @ result.Cinv
    q = np.einsum("np,np->n", BC, B)  # diag of B C^-1 B'
    tr = float(d.sum() - q.sum())
    # sum(M^2) = sum d^2 - 2 sum d q + ||B C^-1 B'||_F^2, the last = tr((C^-1 B'B)^2)
    G = result.Cinv @ (B.T @ B)
    ss = float(np.sum(d * d) - 2.0 * np.sum(d * q) + np.sum(G * G.T))
    return tr * tr / ss
