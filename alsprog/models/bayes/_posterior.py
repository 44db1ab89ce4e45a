"""Posterior math of a fitted Bayesian trajectory model on new rows.

Owns: the pointwise log-likelihood of the fitted rows (:func:`pointwise_loglik`, for
LOO), the design, time and subject effects of a new table's rows
(:func:`table_rows`: fitted subjects' posterior effects, new subjects' drawn from the
population), new subjects' effects (:func:`new_effects`) and residual noise per
posterior draw (:func:`noise`), each subject's marginal log-likelihood per draw
with its effects integrated out (:func:`marginal_loglik_subjects`: exact Gaussian
blocks for the linear normal model, adaptive Gauss-Hermite quadrature otherwise)
and LOO by subject (:func:`subject_loo`).
Leaves: the fitted state and argument checks to :mod:`alsprog.models.bayes._model`;
a new patient's forecast given their history to :mod:`alsprog.models.bayes._forecast`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._formula_text import formula_context
from alsprog.errors import ModelSpecificationError

__all__ = [
    "marginal_loglik_subjects",
    "new_effects",
    "noise",
    "pointwise_loglik",
    "subject_loo",
    "table_rows",
]

#: Gauss-Hermite nodes per effect of the generic quadrature of the marginal
#: likelihood (a 21 x 21 grid; the linear model with a Student-t likelihood; see
#: :func:`alsprog._quadrature.log_marginal_gauss_hermite`).  The sigmoid model uses
#: its own (:func:`alsprog.models.bayes._forecast.sigmoid_log_marginal`).
MARGINAL_NODES = 21
_CELLS = 4_000_000  # (problem, node, visit) cells per quadrature batch


def pointwise_loglik(model: Any) -> npt.NDArray[np.float64]:
    """Log-likelihood of each observation given each draw, shape (S, n)."""
    from scipy import stats

    d = model._design
    b_all = model._draws("subject_effects")
    sigma, nu = model._draws("sigma"), None
    if model.likelihood == "student_t":
        nu = model._draws("nu")
    X = d.X if model.kind == "linear" else d.X[d.first_rows][d.groups]
    out = np.empty((len(sigma), len(d.y)))
    for start in range(0, len(sigma), 200):  # chunks bound the memory
        sl = slice(start, start + 200)
        mu = model._mean_draws(X, d.t, b_all[sl][:, d.groups], sl)
        if nu is None:
            out[sl] = stats.norm.logpdf(d.y, mu, sigma[sl, None])
        else:
            out[sl] = stats.t.logpdf(d.y, nu[sl, None], mu, sigma[sl, None])
    return out


def new_effects(
    model: Any, n_new: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Effects of unseen subjects drawn from N(0, Sigma) per posterior draw."""
    sd, rho = model._draws("subject_sd"), model._draws("subject_corr")
    z = rng.standard_normal((len(rho), n_new, 2))
    b0 = sd[:, None, 0] * z[..., 0]
    b1 = sd[:, None, 1] * (
        rho[:, None] * z[..., 0] + np.sqrt(1 - rho[:, None] ** 2) * z[..., 1]
    )
    return np.stack([b0, b1], axis=-1)


def table_rows(
    model: Any, df: pd.DataFrame, rng: np.random.Generator
) -> tuple[
    npt.NDArray[np.bool_],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]:
    """Design, time and subject effects (S, rows, 2) for a new table."""
    d = model._design
    need = [c for c in d.mixed.variables if c != d.outcome]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ModelSpecificationError(
            f"The data lacks the model's column(s) {', '.join(map(repr, missing))}."
        )
    ok = df[need].notna().all(axis=1).to_numpy()
    sub = df.loc[ok, need]
    try:
        X = np.asarray(
            d.mixed.fixed_spec.get_model_matrix(sub, context=formula_context()),
            dtype=float,
        )
    except Exception as exc:  # formulaic: unseen category levels, bad types
        raise ModelSpecificationError(
            f"Cannot build the fixed-effects design for the new data: {exc}"
        ) from exc
    t = sub[d.time].to_numpy(dtype=float)
    ids = sub[d.subject].astype(str).to_numpy()
    pos = np.asarray(pd.Index(d.subject_ids).get_indexer(pd.Index(ids)), np.intp)
    b_all = model._draws("subject_effects")
    new_ids = pd.unique(ids[pos < 0])
    b = np.empty((b_all.shape[0], len(ids), 2))
    known = pos >= 0
    b[:, known] = b_all[:, pos[known]]
    if len(new_ids):
        new = new_effects(model, len(new_ids), rng)
        where = pd.Index(new_ids).get_indexer(pd.Index(ids[~known]))
        b[:, ~known] = new[:, np.asarray(where, dtype=np.intp)]
    return ok, X, t, b


def noise(
    model: Any, shape: tuple[int, ...], rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Residual noise (draws, rows) with each posterior draw's sigma (and nu)."""
    sigma = model._draws("sigma")[:, None]
    if model.likelihood == "student_t":
        e = rng.standard_t(model._draws("nu")[:, None], size=shape)
    else:
        e = rng.standard_normal(shape)
    return np.asarray(sigma * e)


def marginal_loglik_subjects(
    model: Any,
    *,
    X: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    groups: npt.NDArray[np.intp],
    n_subjects: int,
    n_nodes: int | None = None,
) -> npt.NDArray[np.float64]:
    """``log p(y_i | theta_s)`` per posterior draw and subject, effects integrated out.

    Parameters
    ----------
    model : BayesianTrajectoryModel
        Fitted; its population draws ``theta_s`` are used.
    X : ndarray
        Fixed-effects design built by the model's formula: one row per visit
        (linear, (n, p)) or one per subject (sigmoid, (G, p), its first visit).
    y, t : ndarray, shape (n,)
        Outcome and time of each visit.
    groups : ndarray of int, shape (n,)
        Subject code of each visit in ``0 .. n_subjects - 1``.
    n_subjects : int
    n_nodes : int, optional
        Gauss-Hermite nodes per effect (quadrature only; default
        :data:`MARGINAL_NODES`, or the sigmoid's
        :data:`~alsprog.models.bayes._forecast.MARGINAL_NODES`).

    Returns
    -------
    ndarray, shape (S, n_subjects)
        Linear model with a normal likelihood: the exact Gaussian block
        ``N(y_i; X_i beta, sigma^2 I + Z_i Sigma Z_i')``.  Sigmoid model or a
        Student-t likelihood: adaptive Gauss-Hermite quadrature over the two
        subject effects per draw (:func:`alsprog._quadrature.log_marginal_gauss_hermite`).

    Examples
    --------
    One subject, one visit at t = 0, unit SDs: y ~ N(beta, 1 + 1), by the exact
    block and, for a Student-t with huge ``nu`` (the normal), by quadrature.

    >>> from types import SimpleNamespace
    >>> draws = {"beta": np.zeros((1, 1)), "subject_sd": np.ones((1, 2)),
    ...          "subject_corr": np.zeros(1), "sigma": np.ones(1), "nu": [1e9]}
    >>> rows = dict(X=np.ones((1, 1)), y=np.array([1.0]), t=np.zeros(1),
    ...             groups=np.zeros(1, np.intp), n_subjects=1)
    >>> exact = -0.5 * (np.log(2 * np.pi * 2) + 0.5)
    >>> for lik in ("normal", "student_t"):
    ...     m = SimpleNamespace(kind="linear", likelihood=lik,
    ...                         _draws=lambda k: np.asarray(draws[k]))
    ...     ll = marginal_loglik_subjects(m, **rows)
    ...     print(lik, bool(np.isclose(ll[0, 0], exact, atol=1e-6)))
    normal True
    student_t True
    """
    from alsprog._quadrature import log_marginal_gauss_hermite, padded
    from alsprog.models.bayes._forecast import _cov, _loglik_rows

    y = np.asarray(y, dtype=float)
    t = np.asarray(t, dtype=float)
    groups = np.asarray(groups, dtype=np.intp)
    beta = model._draws("beta")
    sd, rho = model._draws("subject_sd"), model._draws("subject_corr")
    sigma = model._draws("sigma")
    if model.kind == "linear" and model.likelihood == "normal":
        from alsprog.models.bayes._linear import marginal_loglik, subject_stats

        stats = subject_stats(y, X, t, groups, n_subjects)
        return marginal_loglik(stats, beta, sd, rho, sigma)
    nu = model._draws("nu") if model.likelihood == "student_t" else None
    if model.kind == "sigmoid":  # analytic Gauss-Newton modes, a grid around them
        from alsprog.models.bayes import _forecast

        base = np.einsum("gp,skp->sgk", X, beta)  # fixed log D50, log dx (S, G, 2)
        return _forecast.sigmoid_log_marginal(
            base,
            _cov(sd, rho),
            sigma,
            nu,
            y,
            t,
            groups,
            n_subjects,
            n_nodes=n_nodes or _forecast.MARGINAL_NODES,
        )
    n_nodes = n_nodes or MARGINAL_NODES
    S, G = len(sigma), n_subjects
    chol = np.linalg.cholesky(_cov(sd, rho) + 1e-12 * np.eye(2))
    y_pad, mask = padded(y, groups, G)
    t_pad = padded(t, groups, G)[0]
    base = X @ beta.T  # fixed part of each visit per draw (n, S)
    r_pad = padded(np.arange(len(y), dtype=float), groups, G)[0].astype(np.intp)
    out = np.empty((S, G))
    s_all, g_all = np.divmod(np.arange(S * G), G)
    chunk = max(1, _CELLS // (n_nodes**2 * y_pad.shape[1]))
    for start in range(0, S * G, chunk):
        s_idx, g_idx = s_all[start : start + chunk], g_all[start : start + chunk]
        yb, mb, tb = y_pad[g_idx], mask[g_idx], t_pad[g_idx][:, None, :]
        sig = sigma[s_idx]
        nub = None if nu is None else nu[s_idx]
        off = base[r_pad[g_idx], s_idx[:, None]][:, None, :]  # (B, 1, n)

        def loglik(b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            mean = off + b[..., 0:1] + b[..., 1:2] * tb  # noqa: B023
            return _loglik_rows(mean, yb, mb, sig, nub)  # noqa: B023

        out[s_idx, g_idx] = log_marginal_gauss_hermite(
            loglik, np.zeros((len(s_idx), 2)), chol[s_idx], n_nodes=n_nodes
        )
    return out


def subject_loo(model: Any) -> Any:
    """PSIS-LOO leaving out whole subjects (ArviZ ``ELPDData``), from each
    subject's marginal log-likelihood per draw (:func:`marginal_loglik_subjects`:
    exact Gaussian blocks for the linear normal model, quadrature otherwise)."""
    import arviz as az

    d = model._design
    X = d.X if model.kind == "linear" else d.X[d.first_rows]
    ll = marginal_loglik_subjects(
        model, X=X, y=d.y, t=d.t, groups=d.groups, n_subjects=len(d.subject_ids)
    )
    post = model._posterior
    ll = ll.reshape(post.sizes["chain"], post.sizes["draw"], -1)
    idata = az.from_dict(
        posterior={"sigma": post["sigma"].values},
        log_likelihood={d.outcome: ll},
        dims={d.outcome: ["subject_id"]},
        coords={"subject_id": d.subject_ids},
    )
    return az.loo(idata, pointwise=True)
