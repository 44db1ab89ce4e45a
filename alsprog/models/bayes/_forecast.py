"""Posterior predictive forecasts from a fitted BayesianTrajectoryModel.

Owns: draws of a new patient's future outcome conditioned on their history, without
refitting: per posterior draw, the exact conditional normal of the subject effects for
the linear model with a normal likelihood, importance resampling from a Laplace
proposal for the sigmoid model, adaptive Gauss-Hermite quadrature for the linear model
with a Student-t likelihood; and the sigmoid model's marginal likelihood of a
patient's visits, the effects integrated out (:func:`sigmoid_log_marginal`).
Also the model's :meth:`forecast_rows` (:func:`bayes_forecast_rows`: the draws
clipped at the outcome's bounds and summarised).
Leaves: history checks to :mod:`alsprog.data._history`, the forecast table to
:func:`alsprog.forecast.forecast`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._formula_text import formula_context
from alsprog._quadrature import adaptive_gauss_hermite, padded
from alsprog.data._history import Prepared
from alsprog.errors import ModelSpecificationError
from alsprog.models._contract import ForecastRows
from alsprog.models._gaussian import conditional_effects, psd_sqrt, subject_sums
from alsprog.models.bayes._sigmoid import sigmoid_mean

__all__ = [
    "DEFAULT_SAMPLES",
    "MARGINAL_NODES",
    "bayes_draws",
    "bayes_forecast_rows",
    "sigmoid_log_marginal",
    "summarise_draws",
]

_CHUNK = 20_000  # (draw, subject) problems per quadrature batch
#: Posterior draws a forecast uses when ``n_samples`` is not given.
DEFAULT_SAMPLES = 1000


def summarise_draws(
    draws: npt.NDArray[np.float64], level: float
) -> dict[str, npt.NDArray[np.float64]]:
    """Mean, median and central interval per column of ``draws`` (samples, rows).

    Examples
    --------
    >>> s = summarise_draws(np.array([[0.0], [1.0], [2.0]]), 0.5)
    >>> [float(s[k][0]) for k in ("mean", "median", "lower", "upper")]
    [1.0, 1.0, 0.5, 1.5]
    """
    lo, med, hi = np.quantile(draws, [(1 - level) / 2, 0.5, (1 + level) / 2], axis=0)
    return {"mean": draws.mean(axis=0), "median": med, "lower": lo, "upper": hi}


def bayes_forecast_rows(
    model: Any,
    prep: Prepared,
    *,
    level: float,
    n_samples: int | None,
    rng: np.random.Generator,
) -> ForecastRows:
    """The posterior predictive of the future rows given the history: draws
    clipped at the model's ``outcome_bounds_``, summarised; the draws are returned
    only when ``n_samples`` is given (:data:`DEFAULT_SAMPLES` are used otherwise)."""
    k = n_samples if n_samples is not None else DEFAULT_SAMPLES
    draws = np.clip(
        bayes_draws(model, prep, n_samples=k, rng=rng), *model.outcome_bounds_
    )
    return ForecastRows(summarise_draws(draws, level), draws if n_samples else None)


def _design(model: Any, rows: pd.DataFrame) -> npt.NDArray[np.float64]:
    d = model._design
    need = [c for c in d.mixed.variables if c not in (d.outcome, d.subject)]
    sub = rows[need].copy()
    for c in sub.columns:  # the fit stored non-numeric columns as str objects
        if not pd.api.types.is_numeric_dtype(sub[c]) or pd.api.types.is_bool_dtype(
            sub[c]
        ):
            sub[c] = sub[c].astype(str).astype(object)
    try:
        X = d.mixed.fixed_spec.get_model_matrix(
            sub, na_action="raise", context=formula_context()
        )
    except Exception as exc:  # formulaic: unseen category levels, bad types
        raise ModelSpecificationError(
            f"Cannot build the model's design for the history: {exc}"
        ) from exc
    X = np.asarray(X, dtype=float)
    if X.shape[0] != len(rows):  # intercept-only designs
        X = np.broadcast_to(X[:1], (len(rows), X.shape[1])).copy()
    return X


def _cov(sd: npt.NDArray[np.float64], rho: npt.NDArray[np.float64]) -> Any:
    c = np.empty((len(rho), 2, 2))
    c[:, 0, 0], c[:, 1, 1] = sd[:, 0] ** 2, sd[:, 1] ** 2
    c[:, 0, 1] = c[:, 1, 0] = rho * sd[:, 0] * sd[:, 1]
    return c


def bayes_draws(
    model: Any,
    prep: Prepared,
    *,
    n_samples: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """Predictive draws (n_samples, n_future) of the future rows' outcome.

    Posterior draws are thinned evenly to ``n_samples`` (or recycled when there are
    fewer); each gives one joint draw of the subject's effects given its history and
    independent residual noise per future row.  Not yet clipped at the bounds.
    """
    d = model._design
    observed, future, subjects = prep.observed, prep.future, prep.subjects
    S_all = model._draws("sigma").shape[0]
    if n_samples <= S_all:
        idx = np.round(np.linspace(0, S_all - 1, n_samples)).astype(np.intp)
    else:
        idx = np.arange(n_samples) % S_all
    beta = model._draws("beta")[idx]
    sd, rho = model._draws("subject_sd")[idx], model._draws("subject_corr")[idx]
    sigma = model._draws("sigma")[idx]
    nu = model._draws("nu")[idx] if model.likelihood == "student_t" else None
    G = len(subjects)
    gh = np.asarray(subjects.get_indexer(observed[d.subject].astype(str)), np.intp)
    gf = future["_subject_index"].to_numpy()
    yh = observed[d.outcome].to_numpy(dtype=float)
    th = observed[d.time].to_numpy(dtype=float)
    tf = future[d.time].to_numpy(dtype=float)
    D = _cov(sd, rho)

    if model.kind == "linear":
        Xh = _design(model, observed) if len(observed) else np.zeros((0, beta.shape[1]))
        Xf = _design(model, future)
        if nu is None:
            Zh = np.column_stack([np.ones_like(th), th])
            sums = subject_sums(Xh, Zh, yh, gh, G)
            mean, cov, _ = conditional_effects(sums, beta, D, sigma**2)
            z = rng.standard_normal(mean.shape)
            b = mean + np.einsum("sgij,sgj->sgi", psd_sqrt(cov), z)  # (S, G, 2)
        else:
            base = Xh @ beta.T  # (n_h, S)
            b = _effects_given_history(base, D, sigma, nu, yh, th, gh, G, rng)
        mu = Xf @ beta.T  # (n_f, S)
        mu = mu.T + b[:, gf, 0] + b[:, gf, 1] * tf[None, :]
    else:
        # sigmoid: covariates of log D50 / log dx read at each subject's first row
        Xs = _design(model, prep.first)  # (G, p)
        lin0 = np.einsum("gp,skp->sgk", Xs, beta)  # (S, G, 2)
        b = _sigmoid_effects(lin0, D, sigma, nu, yh, th, gh, G, rng)
        lin = (lin0 + b)[:, gf]  # (S, n_f, 2)
        mu = sigmoid_mean(tf[None, :], np.exp(lin[..., 0]), np.exp(lin[..., 1]))
    if nu is None:
        e = rng.standard_normal(mu.shape)
    else:
        e = rng.standard_t(nu[:, None], size=mu.shape)
    return np.asarray(mu + sigma[:, None] * e)


#: Candidates per (posterior draw, patient) in the sigmoid model's importance
#: resampling, and the degrees of freedom of their multivariate-t proposal.
SIR_CANDIDATES = 32
_SIR_DF = 5.0


class _History:
    """One batch of (posterior draw, patient) problems of the sigmoid model.

    ``lin0`` (B, 2) fixed ``(log D50, log dx)``, ``prec`` (B, 2, 2) the inverse of
    the subject-effect covariance, ``sigma``/``nu`` (B,), and the padded history
    ``y``, ``t``, ``mask`` (B, n).
    """

    def __init__(
        self,
        lin0: npt.NDArray[np.float64],
        prec: npt.NDArray[np.float64],
        sigma: npt.NDArray[np.float64],
        nu: npt.NDArray[np.float64] | None,
        y: npt.NDArray[np.float64],
        t: npt.NDArray[np.float64],
        mask: npt.NDArray[np.bool_],
    ) -> None:
        self.lin0, self.prec, self.sigma, self.nu = lin0, prec, sigma, nu
        self.y, self.t, self.mask = y, t, mask

    def log_joint(self, b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``log p(y | b) - b'P b / 2`` for candidate effects ``b`` (B, K, 2)."""
        lin = self.lin0[:, None, :] + b
        mu = sigmoid_mean(
            self.t[:, None, :], np.exp(lin[..., 0:1]), np.exp(lin[..., 1:2])
        )
        ll = _loglik_rows(mu, self.y, self.mask, self.sigma, self.nu)
        return ll - 0.5 * np.einsum("bki,bij,bkj->bk", b, self.prec, b)

    def mode(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Each problem's posterior mode of ``b`` and the Gauss-Newton curvature
        there (B, 2, 2), by damped Gauss-Newton from ``b = 0``."""
        from scipy.special import expit

        b = np.zeros((len(self.lin0), 2))
        cur = self.log_joint(b[:, None, :])[:, 0]
        m, s2 = self.mask, self.sigma[:, None] ** 2
        for _ in range(_MODE_STEPS):
            lin = self.lin0 + b
            d50, dx = np.exp(lin[:, 0:1]), np.exp(lin[:, 1:2])
            eta = (d50 - self.t) / dx
            p = expit(eta)
            q = 48.0 * p * (1.0 - p) * m
            J = np.stack([q * d50 / dx, -q * eta], axis=-1)  # (B, n, 2)
            r = (self.y - 48.0 * p) * m
            H = np.swapaxes(J, 1, 2) @ J / s2[..., None] + self.prec
            grad = (np.swapaxes(J, 1, 2) @ r[..., None])[..., 0] / s2
            grad = grad - (self.prec @ b[..., None])[..., 0]
            step = _solve2(H, grad)
            scale = np.ones(len(b))
            for _ in range(8):  # halve the step where the log density does not rise
                cand = b + scale[:, None] * step
                new = self.log_joint(cand[:, None, :])[:, 0]
                bad = ~(new >= cur - 1e-10)
                if not bad.any():
                    break
                scale = np.where(bad, scale / 2.0, scale)
            ok = new >= cur - 1e-10
            b = np.where(ok[:, None], cand, b)
            cur = np.where(ok, new, cur)
            if np.max(np.abs(step * scale[:, None])) < 1e-7:
                break
        lin = self.lin0 + b
        d50, dx = np.exp(lin[:, 0:1]), np.exp(lin[:, 1:2])
        eta = (d50 - self.t) / dx
        q = 48.0 * expit(eta) * (1.0 - expit(eta)) * m
        J = np.stack([q * d50 / dx, -q * eta], axis=-1)
        return b, np.swapaxes(J, 1, 2) @ J / s2[..., None] + self.prec


#: Damped Gauss-Newton steps at most per mode.
_MODE_STEPS = 30


def _solve2(
    H: npt.NDArray[np.float64], v: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``H^-1 v`` for a batch of 2 x 2 ``H`` (B, 2, 2) and ``v`` (B, 2)."""
    det = H[:, 0, 0] * H[:, 1, 1] - H[:, 0, 1] ** 2
    return (
        np.stack(
            [
                H[:, 1, 1] * v[:, 0] - H[:, 0, 1] * v[:, 1],
                H[:, 0, 0] * v[:, 1] - H[:, 0, 1] * v[:, 0],
            ],
            axis=1,
        )
        / det[:, None]
    )


def _chol_inv2(H: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Lower Cholesky factor of ``H^-1`` for a batch of 2 x 2 ``H``."""
    det = H[:, 0, 0] * H[:, 1, 1] - H[:, 0, 1] ** 2
    C = np.zeros_like(H)
    C[:, 0, 0] = np.sqrt(H[:, 1, 1] / det)
    C[:, 1, 0] = -H[:, 0, 1] / (det * C[:, 0, 0])
    C[:, 1, 1] = 1.0 / np.sqrt(H[:, 1, 1])
    return C


def _histories(
    base: npt.NDArray[np.float64],
    D: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    nu: npt.NDArray[np.float64] | None,
    yh: npt.NDArray[np.float64],
    th: npt.NDArray[np.float64],
    gh: npt.NDArray[np.intp],
    G: int,
    per_problem: int,
) -> Any:
    """Batches ``(s_idx, g_idx, _History)`` over every (posterior draw, patient)."""
    S = len(sigma)
    y_pad, mask = padded(yh, gh, G)
    t_pad = padded(th, gh, G)[0]
    prec = np.linalg.inv(D + 1e-12 * np.eye(2))  # (S, 2, 2)
    chunk = max(1, 4_000_000 // (per_problem * max(y_pad.shape[1], 1)))
    s_all, g_all = np.divmod(np.arange(S * G), G)
    for start in range(0, S * G, chunk):
        s_idx, g_idx = s_all[start : start + chunk], g_all[start : start + chunk]
        yield (
            s_idx,
            g_idx,
            _History(
                base[s_idx, g_idx],
                prec[s_idx],
                sigma[s_idx],
                None if nu is None else nu[s_idx],
                y_pad[g_idx],
                t_pad[g_idx],
                mask[g_idx],
            ),
        )


def _sigmoid_effects(
    base: npt.NDArray[np.float64],
    D: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    nu: npt.NDArray[np.float64] | None,
    yh: npt.NDArray[np.float64],
    th: npt.NDArray[np.float64],
    gh: npt.NDArray[np.intp],
    G: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """One draw per (posterior draw, patient) of the sigmoid effects given the history.

    Sampling-importance-resampling from a Laplace proposal: per problem, damped
    Gauss-Newton steps find the mode of ``log p(y_hist | b) + log N(b; 0, D_s)``; a
    multivariate t (5 df) around it, scaled by the inverse curvature times 1.5,
    proposes :data:`SIR_CANDIDATES` effects, and one is kept with probability
    proportional to ``p(y_hist | b) N(b; 0, D_s) / q(b)`` (the exact likelihood,
    Student-t too).  About 45 log-likelihood evaluations per problem instead of the
    450 of two 15 x 15 quadrature grids, and draws that are not restricted to grid
    nodes.  ``base`` is each draw's and patient's fixed ``(log D50, log dx)``
    (S, G, 2); returns (S, G, 2).
    """
    out = np.empty((len(sigma), G, 2))
    for s_idx, g_idx, h in _histories(
        base, D, sigma, nu, yh, th, gh, G, SIR_CANDIDATES
    ):
        b, H = h.mode()
        C = _chol_inv2(H / 1.5)
        z = rng.standard_normal((len(b), SIR_CANDIDATES, 2))
        chi = rng.chisquare(_SIR_DF, (len(b), SIR_CANDIDATES, 1)) / _SIR_DF
        x = b[:, None, :] + (z / np.sqrt(chi)) @ np.swapaxes(C, 1, 2)
        # log density of the multivariate t proposal (constants cancel)
        dev = x - b[:, None, :]
        u0 = dev[..., 0] / C[:, None, 0, 0]
        u1 = (dev[..., 1] - C[:, None, 1, 0] * u0) / C[:, None, 1, 1]
        log_q = -(_SIR_DF + 2) / 2 * np.log1p((u0**2 + u1**2) / _SIR_DF)
        logw = h.log_joint(x) - log_q
        logw -= logw.max(axis=1, keepdims=True)
        w = np.exp(logw)
        cum = np.cumsum(w, axis=1)
        pick = np.minimum(
            (cum < rng.random(len(b))[:, None] * cum[:, -1:]).sum(axis=1),
            SIR_CANDIDATES - 1,
        )
        out[s_idx, g_idx] = x[np.arange(len(b)), pick]
    return out


#: Gauss-Hermite nodes per effect of :func:`sigmoid_log_marginal` (a 9 x 9 grid
#: centred on the mode, scaled by the curvature there; the log marginal is within
#: about 1e-3 of a 31 x 31 grid on the generic quadrature, ample for LOO).
MARGINAL_NODES = 9


def sigmoid_log_marginal(
    base: npt.NDArray[np.float64],
    D: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    nu: npt.NDArray[np.float64] | None,
    yh: npt.NDArray[np.float64],
    th: npt.NDArray[np.float64],
    gh: npt.NDArray[np.intp],
    G: int,
    *,
    n_nodes: int = MARGINAL_NODES,
) -> npt.NDArray[np.float64]:
    """``log p(y_i | theta_s)`` of the sigmoid model, the two effects integrated out.

    Adaptive Gauss-Hermite quadrature as lme4's ``nAGQ``: the tensor grid sits on
    each problem's posterior mode and is scaled by the Gauss-Newton curvature there
    (:meth:`_History.mode`, analytic derivatives), and
    ``log sum_k w_k p(y | x_k) N(x_k; 0, D) / N(x_k; mode, H^-1)``.  Arguments as
    :func:`_sigmoid_effects`; returns (S, G).
    """
    from alsprog._quadrature import _grid

    g, logw = _grid(n_nodes, 2)
    out = np.empty((len(sigma), G))
    for s_idx, g_idx, h in _histories(base, D, sigma, nu, yh, th, gh, G, len(g)):
        b, H = h.mode()
        C = _chol_inv2(H)
        x = b[:, None, :] + g @ np.swapaxes(C, 1, 2)
        log_prop = (
            -0.5 * np.sum(g**2, axis=-1)[None, :]
            - np.log(C[:, 0, 0] * C[:, 1, 1])[:, None]
            - np.log(2 * np.pi)
        )
        # log N(x; 0, D): the joint's quadratic form plus its normalising constant
        log_norm = 0.5 * np.log(
            h.prec[:, 0, 0] * h.prec[:, 1, 1] - h.prec[:, 0, 1] ** 2
        ) - np.log(2 * np.pi)
        terms = logw[None, :] + h.log_joint(x) + log_norm[:, None] - log_prop
        top = terms.max(axis=1)
        out[s_idx, g_idx] = top + np.log(np.exp(terms - top[:, None]).sum(axis=1))
    return out


def _loglik_rows(
    mu: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    mask: npt.NDArray[np.bool_],
    sigma: npt.NDArray[np.float64],
    nu: npt.NDArray[np.float64] | None,
) -> npt.NDArray[np.float64]:
    """Summed log-density of padded observations; mu (B, K, n), y/mask (B, n)."""
    from scipy.special import gammaln

    z = (y[:, None, :] - mu) / sigma[:, None, None]
    if nu is None:
        lp = -0.5 * z**2 - np.log(sigma)[:, None, None] - 0.5 * np.log(2 * np.pi)
    else:
        n = nu[:, None, None]
        lp = (
            gammaln((n + 1) / 2)
            - gammaln(n / 2)
            - 0.5 * np.log(n * np.pi)
            - np.log(sigma)[:, None, None]
            - (n + 1) / 2 * np.log1p(z**2 / n)
        )
    return np.sum(np.where(mask[:, None, :], lp, 0.0), axis=-1)


def _effects_by_quadrature(
    mean_fn: Any,
    D: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    nu: npt.NDArray[np.float64] | None,
    yh: npt.NDArray[np.float64],
    gh: npt.NDArray[np.intp],
    G: int,
    rng: np.random.Generator,
    extra: tuple[npt.NDArray[np.float64], ...],
) -> npt.NDArray[np.float64]:
    """One draw per (posterior draw, subject) of the effects given the history.

    ``mean_fn(b, s_idx, g_idx, *extra_padded)`` gives the mean of each padded history
    row for effects ``b`` (B, K, 2) of problems with draw ``s_idx`` and subject
    ``g_idx`` (B,).
    """
    S = len(sigma)
    y_pad, mask = padded(yh, gh, G)
    pads = [padded(v, gh, G)[0] for v in extra]
    chol = np.linalg.cholesky(D + 1e-12 * np.eye(2))
    out = np.empty((S, G, 2))
    s_all, g_all = np.divmod(np.arange(S * G), G)
    for start in range(0, S * G, _CHUNK):
        s_idx, g_idx = s_all[start : start + _CHUNK], g_all[start : start + _CHUNK]
        yb, mb = y_pad[g_idx], mask[g_idx]
        padb = [p[g_idx] for p in pads]
        sig = sigma[s_idx]
        nub = None if nu is None else nu[s_idx]

        def loglik(b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            mu = mean_fn(b, s_idx, g_idx, *padb)  # noqa: B023
            return _loglik_rows(mu, yb, mb, sig, nub)  # noqa: B023

        nodes, w = adaptive_gauss_hermite(
            loglik,
            np.zeros((len(s_idx), 2)),
            np.asarray(chol[s_idx], dtype=np.float64),
            n_nodes=15,
        )
        cum = np.cumsum(w, axis=1)
        u = rng.random(len(s_idx))[:, None]
        k = np.minimum((cum < u).sum(axis=1), w.shape[1] - 1)
        out[s_idx, g_idx] = nodes[np.arange(len(s_idx)), k]
    return out


def _effects_given_history(
    base: npt.NDArray[np.float64],
    D: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    nu: npt.NDArray[np.float64] | None,
    yh: npt.NDArray[np.float64],
    th: npt.NDArray[np.float64],
    gh: npt.NDArray[np.intp],
    G: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """Effects (S, G, 2) of the linear model with a Student-t likelihood drawn given
    the history by adaptive quadrature; ``base`` is each history row's fixed part
    per draw (n_h, S).  (The sigmoid's: :func:`_sigmoid_effects`.)"""
    rows = np.arange(len(yh), dtype=float)

    def mean_fn(
        b: npt.NDArray[np.float64],
        s_idx: npt.NDArray[np.intp],
        g_idx: npt.NDArray[np.intp],
        t_pad: npt.NDArray[np.float64],
        r_pad: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        t = t_pad[:, None, :]
        if base.shape[0] == 0:  # no history at all: the mean is never used
            return np.zeros(b.shape[:2] + t_pad.shape[-1:])
        off = base[r_pad.astype(np.intp), s_idx[:, None]]  # (B, n)
        return off[:, None, :] + b[..., 0:1] + b[..., 1:2] * t

    return _effects_by_quadrature(mean_fn, D, sigma, nu, yh, gh, G, rng, (th, rows))
