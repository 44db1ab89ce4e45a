"""The Bayes-oracle forecast: the best prediction from a history under the simulator.

Owns: :func:`oracle_forecast`, the conditional distribution of a simulated patient's
future observed ALSFRS-R total given their visits so far, under the simulator's own
generative model with its true population parameters.  Given the onset-to-baseline
time and onset site (both in the table), a patient's whole course is fixed by two
latent normals (ΔFS's and the progression rate's copula scores); their posterior
given the observed totals (rounded, clipped, noisy), the baseline window and having
been seen (alive, not dropped out) at the last visit is computed by adaptive
Gauss-Hermite quadrature, and the predictive distribution of the rounded, clipped
observation is exact given the nodes.
Leaves: the generative model itself to :mod:`alsprog.simulate._progression`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import log_ndtr, ndtr

from alsprog._quadrature import adaptive_gauss_hermite, padded
from alsprog._random import as_generator
from alsprog._validation import check_choice, check_int, check_level
from alsprog.data._history import prepare_history, with_draws
from alsprog.errors import DataValidationError, Problem
from alsprog.simulate._params import (
    CohortParams,
    lognormal_from_moments,
    resolve_params,
)
from alsprog.simulate._progression import (
    dropout_reference_hazard,
    event_reference_scale,
    rate_lognormal,
    realised_slope,
    sigmoid_through,
)

__all__ = ["oracle_forecast"]

_LEVELS = np.arange(49.0)  # possible observed totals
_CHUNK = 256  # patients per quadrature batch


def _curves(
    p: CohortParams,
    t0: npt.NDArray[np.float64],
    bulbar: npt.NDArray[np.bool_],
    e: npt.NDArray[np.float64],
) -> dict[str, npt.NDArray[np.float64]]:
    """Each node's course: e (B, K, 2) standard normals -> d50, dx, rate, ok."""
    mu_d, s_d = lognormal_from_moments(p.delta_fs_mean, p.delta_fs_sd)
    rho = p.onset_delta_fs_correlation
    z_t0 = (t0 - p.onset_to_baseline_mean) / p.onset_to_baseline_sd
    z_dfs = rho * z_t0[:, None] + math.sqrt(1 - rho**2) * e[..., 0]
    dfs = np.exp(mu_d + s_d * z_dfs)
    T0 = np.broadcast_to(t0[:, None], dfs.shape)
    baseline = 48.0 - dfs * T0
    ok = (baseline >= p.baseline_min) & (baseline <= p.baseline_max)
    safe_base = np.clip(baseline, p.baseline_min, p.baseline_max)
    r = p.slope_delta_fs_correlation
    z_rate = r * z_dfs + math.sqrt(1 - r**2) * e[..., 1]
    mu, sigma = rate_lognormal(p)
    mult = np.where(bulbar, p.bulbar_slope_multiplier, 1.0)[:, None]
    rate = np.exp(mu + sigma * z_rate) * mult
    slope = realised_slope(rate, safe_base, p)
    d50, dx = sigmoid_through(T0, safe_base, safe_base + 12.0 * slope)
    return {"d50": d50, "dx": dx, "rate": rate, "ok": ok}


def _true_total(
    c: dict[str, npt.NDArray[np.float64]],
    months_since_onset: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """True totals (B, K, n) at months since onset (B, n)."""
    from scipy.special import expit

    x = (months_since_onset[:, None, :] - c["d50"][..., None]) / c["dx"][..., None]
    return np.asarray(48.0 * expit(-x))


def _log_p_observed(
    y: npt.NDArray[np.float64], mu: npt.NDArray[np.float64], sd: float
) -> npt.NDArray[np.float64]:
    """log P(clip(round(mu + e), 0, 48) == y), e ~ N(0, sd^2)."""
    hi = np.where(y >= 48, np.inf, (y + 0.5 - mu) / sd)
    lo = np.where(y <= 0, -np.inf, (y - 0.5 - mu) / sd)
    # log(Phi(hi) - Phi(lo)), from the CDF below the mean and the survival function
    # above it, so that values far in either tail keep their (tiny) probability
    with np.errstate(divide="ignore", invalid="ignore"):
        via_cdf = log_ndtr(hi) + np.log1p(
            -np.exp(np.minimum(log_ndtr(lo) - log_ndtr(hi), 0))
        )
        via_sf = log_ndtr(-lo) + np.log1p(
            -np.exp(np.minimum(log_ndtr(-hi) - log_ndtr(-lo), 0))
        )
        out = np.where(mu > y, via_cdf, via_sf)
    return np.where(np.isfinite(out), out, -1e300)


def _history_arrays(
    history: pd.DataFrame, at_months: Any, subject: str
) -> tuple[pd.DataFrame, pd.DataFrame]:

    covs = ["months", "onset_site"]
    if "onset_months_before_baseline" in history.columns:
        covs.append("onset_months_before_baseline")
    elif "months_since_onset" in history.columns:
        covs.append("months_since_onset")
    else:
        raise DataValidationError(
            [
                Problem(
                    "the oracle needs the time from onset to the first visit: give "
                    "'onset_months_before_baseline' or 'months_since_onset'",
                    rule="required",
                    column="onset_months_before_baseline",
                )
            ],
            source="history",
        )
    prep = prepare_history(
        history, at_months, outcome="alsfrs_r_total", covariates=covs, subject=subject
    )
    return prep, covs  # type: ignore[return-value]


def _followed_weights(
    wf: npt.NDArray[np.float64],
    c: dict[str, Any],
    p: CohortParams,
    T0: npt.NDArray[np.float64],
    last: npt.NDArray[np.float64],
    f_pad: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """The nodes' weights given the patient alive and in the study at each forecast
    time (Weibull death and exponential dropout from the last visit on)."""
    k_w = p.event_weibull_shape
    ev_ref, dr_ref = event_reference_scale(p), dropout_reference_hazard(p)
    rel = c["rate"] / -p.slope_mean
    scale = (ev_ref * rel ** (-p.event_rate_exponent / k_w))[..., None]
    tl = last[:, None, None]
    tf = np.maximum(f_pad[:, None, :], tl)
    T = T0[:, None, None]
    log_s = -(((T + tf) / scale) ** k_w) + ((T + tl) / scale) ** k_w
    log_s -= (dr_ref * rel**p.dropout_rate_exponent)[..., None] * (tf - tl)
    wf = wf * np.exp(log_s)
    return wf / np.maximum(wf.sum(axis=1, keepdims=True), 1e-300)


def _draw_totals(
    wf: npt.NDArray[np.float64],
    mu: npt.NDArray[np.float64],
    gi: npt.NDArray[np.intp],
    pi: npt.NDArray[np.intp],
    sd: float,
    n_samples: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """Predictive draws of observed totals: a node per draw and forecast row (by its
    weight), then the rounded, clipped noise."""
    wr = wf[gi, :, pi]  # (rows, K)
    cum = np.cumsum(wr, axis=1)
    u = rng.random((n_samples, len(gi)))
    k = np.minimum((cum[None] < u[..., None]).sum(axis=-1), wr.shape[1] - 1)
    mu_k = mu[gi[None, :], k, pi[None, :]]  # (S, rows)
    noisy = mu_k + sd * rng.standard_normal(mu_k.shape)
    return np.clip(np.rint(noisy), 0.0, 48.0)


def oracle_forecast(
    history: pd.DataFrame,
    at_months: Any,
    *,
    params: CohortParams | dict[str, float] | None = None,
    level: float = 0.9,
    n_samples: int | None = None,
    n_nodes: int = 20,
    given_follow_up: bool = True,
    seed: Any = None,
) -> pd.DataFrame:
    """Bayes-optimal forecast of simulated patients' observed ALSFRS-R totals.

    The best prediction possible from a history: the conditional distribution of the
    future *observed* total (rounded, clipped to 0-48) given the visits so far, under
    :func:`simulate_cohort`'s generative model with its true population parameters.
    Use it as the floor that a fitted model's forecast is compared with (knowing each
    patient's true curve is a lower floor still, but unattainable from a few visits).

    Parameters
    ----------
    history : pandas.DataFrame
        Long-format rows of simulated patients (``subject_id``, ``months``,
        ``alsfrs_r_total``, ``onset_site`` and ``onset_months_before_baseline`` or
        ``months_since_onset``), as :func:`alsprog.data.assemble` returns.
    at_months : float, sequence of float or pandas.DataFrame
        Months since the first visit, as in :func:`alsprog.forecast.forecast`.
    params : CohortParams or dict, optional
        The simulator's parameters (``cohort.params``); defaults otherwise.
    level : float, default 0.9
        Central interval coverage.
    n_samples : int, optional
        Also return this many predictive draws per row (``draw_0``, ...).
    n_nodes : int, default 20
        Quadrature nodes per latent dimension (two dimensions).
    given_follow_up : bool, default True
        Also condition on the patient being alive and still in the study at each
        forecast time, i.e. forecast the value that a backtest can score (only
        patients still followed are observed; the simulator's death and dropout
        hazards rise with the progression rate, so they are the slower ones).
        ``False`` forecasts the value whether or not it will be observed.
    seed : int, numpy.random.Generator or None
        For the draws only; the summaries are deterministic.

    Returns
    -------
    pandas.DataFrame
        ``subject_id``, ``months``, ``mean``, ``median``, ``lower``, ``upper``
        (quantiles of the integer-valued observation), and draws when asked.

    Notes
    -----
    Given the onset-to-baseline time ``T0`` (known) and onset site, the simulator
    draws ΔFS's copula score from ``N(rho z_T0, 1 - rho^2)`` (truncated to baselines
    in ``[baseline_min, baseline_max]``) and the rate's from ``N(r z_dFS, 1 - r^2)``;
    together they fix the D50 sigmoid.  The likelihood of the history is that of each
    rounded, clipped total plus surviving (Weibull, conditional on survival to ``T0``)
    and staying in the study (exponential dropout) up to the last visit.  Missed
    visits are missing at random in the simulator and carry no information.

    Examples
    --------
    >>> from alsprog.simulate import simulate_cohort
    >>> from alsprog.data import assemble
    >>> c = simulate_cohort(5, seed=2)
    >>> hist = assemble(c.visits, c.subjects)
    >>> f = oracle_forecast(hist[hist["months"] < 4], [12], params=c.params)
    >>> f.columns.tolist()
    ['subject_id', 'months', 'mean', 'median', 'lower', 'upper']
    >>> bool(((f["lower"] <= f["median"]) & (f["median"] <= f["upper"])).all())
    True
    """
    p = resolve_params(params, {})
    level = check_level(level)
    n_nodes = check_int(n_nodes, "n_nodes", low=3, high=60)
    if n_samples is not None:
        n_samples = check_int(n_samples, "n_samples", low=1, high=1_000_000)
    check_choice(given_follow_up, "given_follow_up", (True, False))
    rng = as_generator(seed)
    subject = "subject_id"
    prep, covs = _history_arrays(history, at_months, subject)
    subjects = prep.subjects
    first = prep.first
    if "onset_months_before_baseline" in covs:
        t0 = first["onset_months_before_baseline"].to_numpy(dtype=float)
    else:
        t0 = (first["months_since_onset"] - first["months"]).to_numpy(dtype=float)
    bulbar = (first["onset_site"].astype(str) == "bulbar").to_numpy()
    G = len(subjects)
    obs = prep.observed
    g_obs = subjects.get_indexer(obs[subject].astype(str))
    y_pad, mask = padded(obs["alsfrs_r_total"].to_numpy(float), g_obs, G)
    m_pad, _ = padded(obs["months"].to_numpy(float), g_obs, G)
    last = np.nan_to_num(prep.last_time, nan=0.0)
    fut = prep.future
    g_fut = fut["_subject_index"].to_numpy()
    f_pad, f_mask = padded(fut["months"].to_numpy(float), g_fut, G)
    k_w = p.event_weibull_shape
    ev_ref, dr_ref = event_reference_scale(p), dropout_reference_hazard(p)
    sd = p.residual_sd

    n_f = len(fut)
    mean = np.empty(n_f)
    cdf = np.empty((n_f, len(_LEVELS)))
    draws = None if n_samples is None else np.empty((n_samples, n_f))
    pos = np.zeros(n_f, dtype=np.intp)  # position of each future row in its pad
    order = np.argsort(g_fut, kind="stable")
    counts = np.bincount(g_fut, minlength=G)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos[order] = np.arange(n_f) - starts[g_fut[order]]

    for lo in range(0, G, _CHUNK):
        sl = slice(lo, min(G, lo + _CHUNK))
        b = sl.stop - sl.start
        T0, bb = t0[sl], bulbar[sl]

        def loglik(e: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            c = _curves(p, T0, bb, e)  # noqa: B023
            mu = _true_total(c, T0[:, None] + m_pad[sl])  # noqa: B023
            lp = _log_p_observed(y_pad[sl][:, None, :], mu, sd)  # noqa: B023
            ll = np.sum(np.where(mask[sl][:, None, :], lp, 0.0), axis=-1)  # noqa: B023
            rel = c["rate"] / -p.slope_mean
            scale = ev_ref * rel ** (-p.event_rate_exponent / k_w)
            tl = last[sl][:, None]  # noqa: B023
            t_0 = T0[:, None]  # noqa: B023
            ll -= ((t_0 + tl) / scale) ** k_w - (t_0 / scale) ** k_w
            ll -= dr_ref * rel**p.dropout_rate_exponent * tl
            return np.where(c["ok"], ll, -np.inf)

        nodes, w = adaptive_gauss_hermite(
            loglik,
            np.zeros((b, 2)),
            np.broadcast_to(np.eye(2), (b, 2, 2)),
            n_nodes=n_nodes,
        )
        c = _curves(p, T0, bb, nodes)
        mu = _true_total(c, T0[:, None] + f_pad[sl])  # (b, K, n_pad)
        wf = np.broadcast_to(w[..., None], mu.shape)
        if given_follow_up:  # seen alive and in the study at each forecast time
            wf = _followed_weights(wf, c, p, T0, last[sl], f_pad[sl])
        # E[Y | mu] = sum_j Phi((mu - j - 0.5) / sd), j = 0..47
        z = (mu[..., None] - _LEVELS[None, None, None, :48] - 0.5) / sd
        e_y = ndtr(z).sum(axis=-1)  # (b, K, n_pad)
        m_sub = np.einsum("bkn,bkn->bn", wf, e_y)
        cdf_sub = np.einsum(
            "bkn,bknj->bnj",
            wf,
            ndtr((_LEVELS[None, None, None, :] + 0.5 - mu[..., None]) / sd),
        )
        cdf_sub[..., -1] = 1.0
        rows = np.flatnonzero((g_fut >= sl.start) & (g_fut < sl.stop))
        gi, pi = g_fut[rows] - sl.start, pos[rows]
        mean[rows] = m_sub[gi, pi]
        cdf[rows] = cdf_sub[gi, pi]
        if draws is not None and n_samples is not None:
            draws[:, rows] = _draw_totals(wf, mu, gi, pi, sd, n_samples, rng)

    def quantile(q: float) -> npt.NDArray[np.float64]:
        return _LEVELS[np.argmax(cdf >= q - 1e-12, axis=1)]

    out = pd.DataFrame(
        {
            subject: fut[subject].astype(str).to_numpy(),
            "months": fut["months"].to_numpy(dtype=float),
            "mean": mean,
            "median": quantile(0.5),
            "lower": quantile((1 - level) / 2),
            "upper": quantile((1 + level) / 2),
        }
    )
    if draws is not None and n_samples is not None:
        out = with_draws(out, draws)
    return out
