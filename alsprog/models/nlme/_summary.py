"""The summary of a fitted D50 nonlinear mixed model, as nlme's.

Owns: :func:`nlme_summary` (header with nlme's criteria; the fixed effects with
t-tests on nlme's degrees of freedom and t intervals, as ``summary.nlme`` and
``intervals``; the variance components with ``intervals``' approximate intervals
from ``apVar``; the reference patient's D50 and dx in months) and
:func:`fixed_df` (nlme's degrees of freedom of a nonlinear model's fixed effects).
Leaves: the numbers to :mod:`alsprog.models.nlme._numerics`; the layout to
:class:`alsprog.models.Summary`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from alsprog.models._summary import Summary
from alsprog.models.nlme._numerics import variance_apvar

__all__ = ["fixed_df", "nlme_summary", "random_table"]


def fixed_df(n_obs: int, n_subjects: int, n_fixed: int) -> int:
    """nlme's denominator degrees of freedom of every fixed effect of a nonlinear
    mixed model with one grouping level: ``N - G - (p - 1)``.

    nlme's containment rule puts every term of the linearised model at the
    observation level (its design ``J_i x_i`` varies within a patient even when
    ``x_i`` does not), the first one counting as the intercept.

    Examples
    --------
    >>> fixed_df(556, 100, 4)  # nlme 3.1-162 prints DF 453
    453
    """
    return int(n_obs - n_subjects - (n_fixed - 1))


def fixed_table(model: Any, level: float) -> pd.DataFrame:
    """nlme's fixed-effects table: ``summary``'s estimate, standard error, df, t
    and two-sided p, and ``intervals``' t interval.

    As nlme (``adjustSigma = TRUE``), the ML fit's standard errors in the tests
    are ``bse_`` times ``sqrt(N / (N - p))`` (an REML-like residual variance),
    while the intervals use ``bse_`` itself (nlme's ``vcov``).
    """
    est = model.fe_params_
    se = model.bse_
    n, p = model.n_obs_, len(est)
    df = fixed_df(n, model.n_subjects_, p)
    se_adj = se * np.sqrt(n / (n - p))
    t = est / se_adj
    q = float(stats.t.ppf(0.5 + level / 2, df))
    return pd.DataFrame(
        {
            "estimate": est,
            "std_error": se_adj,
            "df": float(df),
            "t": t,
            "p_value": 2.0 * stats.t.sf(np.abs(t), df),
            "ci_lower": est - q * se,
            "ci_upper": est + q * se,
        }
    )


def random_table(model: Any, level: float) -> pd.DataFrame:
    """The subject-effect SDs, their correlation and the residual SD with nlme's
    ``intervals``: normal intervals on ``log sd``, ``log((1 + r)/(1 - r))`` and
    ``log sigma`` (``apVar``), mapped back; NaN where ``apVar`` is not positive
    definite."""
    par, V = variance_apvar(model._stats, model._Xs, model._cov, model._sigma)
    z = float(stats.norm.ppf(0.5 + level / 2))
    se = np.sqrt(np.diag(V))
    lo, hi = par - z * se, par + z * se
    sd = np.sqrt(np.diag(model._cov))
    r = model._cov[0, 1] / (sd[0] * sd[1])
    return pd.DataFrame(
        {
            "estimate": [sd[0], sd[1], r, model._sigma],
            "ci_lower": [
                np.exp(lo[0]),
                np.exp(lo[1]),
                np.tanh(lo[2] / 2),
                np.exp(lo[3]),
            ],
            "ci_upper": [
                np.exp(hi[0]),
                np.exp(hi[1]),
                np.tanh(hi[2] / 2),
                np.exp(hi[3]),
            ],
        },
        index=pd.Index(
            ["sd(log_d50)", "sd(log_dx)", "corr(log_d50,log_dx)", "sigma"],
            name="parameter",
        ),
    )


def nlme_summary(model: Any, level: float) -> Summary:
    """The :class:`~alsprog.models.Summary` of a fitted
    :class:`~alsprog.models.NonlinearMixedModel` at interval ``level``."""
    d = model._design
    fixed = fixed_table(model, level)
    random = random_table(model, level)
    tables = {"fixed": fixed, "random": random}
    pct = f"{100 * level:g} %"
    captions = {
        "fixed": f"Fixed effects of log D50 and log dx (t-tests, {pct} intervals)",
        "random": (
            f"Random effects ({d.subject}) and residual SD, approximate {pct} intervals"
        ),
    }
    if "Intercept" in d.fe_names:
        rows = []
        for effect, name in (("log_d50", "D50"), ("log_dx", "dx")):
            at = list(fixed.index).index((effect, "Intercept"))
            r = fixed[["estimate", "ci_lower", "ci_upper"]].to_numpy(dtype=float)[at]
            rows.append((name, *np.exp(r).tolist()))
        tables["curve"] = pd.DataFrame(
            rows, columns=["parameter", "estimate", "ci_lower", "ci_upper"]
        ).set_index("parameter")
        captions["curve"] = (
            f"The reference patient's curve ({d.time}; D50, dx = exp of the intercepts)"
        )
    notes = []
    if not model.converged_:
        notes.append(f"The fit did not converge in {model.n_iter_} iterations.")
    if random["ci_lower"].isna().any():
        notes.append(
            "Non-positive definite approximate variance-covariance of the variance "
            "components: no intervals for them (nlme's message)."
        )
    rhs = model.formula.split("~", 1)[1].strip()
    header = {
        "Model": f"{d.outcome} = 48 / (1 + exp(({d.time} - D50) / dx)) + e",
        "Fixed": f"log D50 + log dx ~ {rhs}",
        "Random": f"pdSymm(log D50 + log dx ~ 1) | {d.subject}",
        "Log-likelihood (Lindstrom-Bates)": round(model.llf_, 4),
        "AIC / BIC": f"{model.aic:.2f} / {model.bic:.2f}",
        "Number of obs / groups": f"{model.n_obs_} / {model.n_subjects_}",
        "Iterations": f"{model.n_iter_} ({'converged' if model.converged_ else 'not converged'})",
    }
    return Summary(
        "Nonlinear mixed-effects model fit by maximum likelihood (Lindstrom-Bates)",
        header,
        tables,
        captions=captions,
        notes=notes,
    )
