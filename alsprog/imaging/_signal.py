"""Numerics of resting-state connectivity: cleaning ROI time series as nilearn does,
and covariances -> connectivity matrices.

Owns: :func:`clean_signals` (detrend, Butterworth band-pass, confound projection,
z-scoring, step for step as nilearn 0.14's ``nilearn.signal.clean``),
:func:`filter_sos`, Ledoit-Wolf covariances as scikit-learn's ``LedoitWolf``,
:func:`geometric_mean` (the tangent kind's group reference) and
:func:`connectivity_matrices` (correlation, partial correlation, tangent).
Leaves: reading images, confounds and the feature tables to
:mod:`alsprog.imaging._connectivity`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from alsprog._validation import check_choice

__all__ = [
    "FILTER_ORDER",
    "KINDS",
    "clean_signals",
    "connectivity_matrices",
    "filter_sos",
    "geometric_mean",
]

#: Connectivity kinds :func:`connectivity_matrices` computes.
KINDS = ("correlation", "partial correlation", "tangent")

Kind = Literal["correlation", "partial correlation", "tangent"]

#: Order of the Butterworth filter (nilearn's default).
FILTER_ORDER = 5

_EPS = np.finfo(np.float64).eps


def _detrend(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Mean and linear trend removed per column (nilearn.signal._detrend)."""
    x = x - x.mean(axis=0)
    reg = np.arange(x.shape[0], dtype=np.float64)
    reg -= reg.mean()
    norm = np.sqrt((reg**2).sum())
    if not norm < _EPS:
        reg /= norm
    return x - np.outer(reg, reg @ x)


def _zscore(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Centred, divided by the SD (ddof=1; an SD below eps counts as 1)."""
    x = x - x.mean(axis=0)
    sd = x.std(axis=0, ddof=1)
    sd[sd < _EPS] = 1.0
    return x / sd


def filter_sos(
    t_r: float, high_pass: float | None, low_pass: float | None
) -> npt.NDArray[np.float64] | None:
    """Second-order sections of the Butterworth filter (None: no filtering); one
    design per distinct ``(t_r, high_pass, low_pass)`` (runs share it)."""
    if high_pass is None and low_pass is None:
        return None
    sos = _butter(float(t_r), high_pass, low_pass)
    return sos.copy()


@functools.lru_cache(maxsize=64)
def _butter(
    t_r: float, high_pass: float | None, low_pass: float | None
) -> npt.NDArray[np.float64]:
    from scipy import signal as sp_signal

    freqs = [f for f in (high_pass, low_pass) if f is not None]
    btype = "band" if len(freqs) == 2 else ("high" if high_pass is not None else "low")
    wn: Any = freqs if len(freqs) == 2 else freqs[0]
    return np.asarray(
        sp_signal.butter(FILTER_ORDER, wn, btype=btype, output="sos", fs=1.0 / t_r)
    )


def _padlen(sos: npt.NDArray[np.float64]) -> int:
    """``scipy.signal.sosfiltfilt``'s default padding (the run must be longer)."""
    ntaps = 2 * len(sos) + 1
    ntaps -= min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * ntaps


def clean_signals(
    signals: npt.NDArray[np.floating[Any]],
    *,
    confounds: npt.NDArray[np.floating[Any]] | None = None,
    detrend: bool = True,
    standardize: bool = True,
    high_pass: float | None = 0.008,
    low_pass: float | None = 0.1,
    t_r: float | None = None,
) -> npt.NDArray[np.float64]:
    """Clean ROI time series as ``nilearn.signal.clean`` does (default options).

    Order: linear detrend (signals and confounds); zero-phase Butterworth filter of
    order 5 (both); confounds z-scored and projected out (pivoted QR); series
    z-scored (``ddof=1``).

    Parameters
    ----------
    signals : ndarray, shape (n_volumes, n_regions)
        Time along the first axis.
    confounds : ndarray, shape (n_volumes, n_confounds), optional
        Regressors removed from the signals.
    detrend : bool, default True
        Remove mean and linear trend first.
    standardize : bool, default True
        z-score each cleaned series.
    high_pass, low_pass : float or None
        Cut-off frequencies in Hz (``None``: that side not filtered).
    t_r : float
        Repetition time in seconds; needed when filtering.

    Returns
    -------
    ndarray, shape (n_volumes, n_regions)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = clean_signals(rng.normal(size=(50, 2)), high_pass=None, low_pass=None)
    >>> np.round(y.std(axis=0, ddof=1), 6).tolist()
    [1.0, 1.0]
    """
    from scipy import linalg
    from scipy import signal as sp_signal

    x = np.array(signals, dtype=np.float64)
    c = None if confounds is None else np.array(confounds, dtype=np.float64)
    if c is not None and c.ndim == 1:
        c = c[:, None]
    if detrend:
        x = _detrend(x)
        if c is not None:
            c = _detrend(c)
    if high_pass is not None or low_pass is not None:
        if t_r is None:
            raise ValueError("`t_r` is needed to filter; got None.")
        sos = filter_sos(t_r, high_pass, low_pass)
        x = sp_signal.sosfiltfilt(sos, x, axis=0, padtype="odd")
        if c is not None:
            c = sp_signal.sosfiltfilt(sos, c, axis=0, padtype="odd")
    if c is not None and c.shape[1]:
        c = _zscore(c)
        q, r, _ = linalg.qr(c, mode="economic", pivoting=True)
        q = q[:, np.abs(np.diag(r)) > _EPS * 100.0]
        x = x - q @ (q.T @ x)
    if standardize:
        x = _zscore(x)
    return x


def _ledoit_wolf(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ledoit-Wolf shrunk covariance as ``sklearn.covariance.LedoitWolf``."""
    n, p = x.shape
    x = x - x.mean(axis=0)
    emp = x.T @ x / n
    if p == 1:
        return emp
    x2 = x**2
    trace = x2.sum(axis=0) / n
    mu = trace.sum() / p
    beta_ = float(np.sum(x2.T @ x2))
    delta_ = float(np.sum((x.T @ x) ** 2)) / n**2
    beta = 1.0 / (p * n) * (beta_ / n - delta_)
    delta = (delta_ - 2.0 * mu * trace.sum() + p * mu**2) / p
    beta = min(beta, delta)
    shrink = 0.0 if beta == 0 else beta / delta
    cov = (1.0 - shrink) * emp
    cov.flat[:: p + 1] += shrink * np.trace(emp) / p
    return cov


def _covariance(x: npt.NDArray[np.float64], estimator: str) -> npt.NDArray[np.float64]:
    if estimator == "ledoit_wolf":
        return _ledoit_wolf(x)
    xc = x - x.mean(axis=0)
    return xc.T @ xc / x.shape[0]


def _cov_to_corr(cov: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    d = np.atleast_2d(1.0 / np.sqrt(np.diag(cov)))
    corr = cov * d * d.T
    np.fill_diagonal(corr, 1.0)
    return corr


def _eig_map(fun: Any, sym: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    from scipy import linalg

    vals, vecs = linalg.eigh(sym)
    return (vecs * fun(vals)) @ vecs.T


def geometric_mean(
    matrices: Sequence[npt.NDArray[np.float64]],
    *,
    max_iter: int = 30,
    tol: float = 1e-7,
) -> npt.NDArray[np.float64]:
    """Riemannian geometric mean of SPD matrices (Fletcher 2007, Algorithm 3).

    Gradient descent from the arithmetic mean, step halved when the gradient norm
    grows, stopped when ``norm / size < tol``, as nilearn's ``ConnectivityMeasure``
    (``max_iter=30``, ``tol=1e-7``).
    """
    from scipy import linalg

    mats = np.asarray(matrices, dtype=np.float64)
    gmean = mats.mean(axis=0)
    norm_old, step, norm = np.inf, 1.0, np.inf
    for _ in range(max_iter):
        vals, vecs = linalg.eigh(gmean)
        inv_sqrt = (vecs * np.sqrt(1.0 / vals)) @ vecs.T
        logs = [_eig_map(np.log, inv_sqrt @ m @ inv_sqrt) for m in mats]
        logs_mean = np.mean(logs, axis=0)
        if np.any(np.isnan(logs_mean)):
            raise FloatingPointError("NaN after the matrix logarithm")
        norm = float(np.linalg.norm(logs_mean))
        sqrt = (vecs * np.sqrt(vals)) @ vecs.T
        lv, lvec = linalg.eigh(logs_mean)
        gmean = sqrt @ ((lvec * np.exp(lv * step)) @ lvec.T) @ sqrt
        if norm < norm_old:
            norm_old = norm
        elif norm > norm_old:
            step /= 2.0
            norm = norm_old
        if norm / gmean.size < tol:
            break
    return gmean


def connectivity_matrices(
    series: Sequence[npt.NDArray[np.float64]],
    *,
    kind: Kind = "correlation",
    cov_estimator: Literal["ledoit_wolf", "empirical"] = "ledoit_wolf",
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
    """Connectivity matrices of cleaned time series, as nilearn's ConnectivityMeasure.

    Parameters
    ----------
    series : sequence of ndarray, each (n_volumes, n_regions)
        One per session; the same regions in each.
    kind : {"correlation", "partial correlation", "tangent"}
        ``"correlation"``: covariance of the z-scored series (``ddof=1``) turned
        into a correlation; ``"partial correlation"``: ``-P_ij / sqrt(P_ii P_jj)``
        of the precision ``P``; ``"tangent"``: ``logm(G^-1/2 C G^-1/2)`` with ``G``
        the geometric mean of all sessions' covariances ``C`` (needs two or more
        sessions).
    cov_estimator : {"ledoit_wolf", "empirical"}
        Ledoit-Wolf shrinkage (nilearn's default) or the sample covariance (1/n).

    Returns
    -------
    (ndarray, ndarray or None)
        Matrices, shape ``(n_sessions, n_regions, n_regions)``, and the tangent
        reference ``G`` (``None`` for the other kinds).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> m, ref = connectivity_matrices([rng.normal(size=(40, 3))])
    >>> m.shape, np.diag(m[0]).tolist(), ref
    ((1, 3, 3), [1.0, 1.0, 1.0], None)
    """
    check_choice(kind, "kind", KINDS)
    check_choice(cov_estimator, "cov_estimator", ("ledoit_wolf", "empirical"))
    xs = [np.asarray(s, dtype=np.float64) for s in series]
    if kind == "correlation":
        out = [_cov_to_corr(_covariance(_zscore(x), cov_estimator)) for x in xs]
        return np.asarray(out), None
    covs = [_covariance(x, cov_estimator) for x in xs]
    if kind == "partial correlation":
        out = []
        for c in covs:
            pc = -_cov_to_corr(np.asarray(np.linalg.inv(c), dtype=np.float64))
            np.fill_diagonal(pc, 1.0)
            out.append(pc)
        return np.asarray(out), None
    if len(covs) < 2:
        raise ValueError(
            "kind='tangent' needs two or more sessions (it measures each session "
            f"against the group's geometric mean); got {len(covs)}."
        )
    ref = geometric_mean(covs)
    white = _eig_map(lambda v: 1.0 / np.sqrt(v), ref)
    out = [_eig_map(np.log, white @ c @ white) for c in covs]
    return np.asarray(out), ref


# --------------------------------------------------------------------------- reading
