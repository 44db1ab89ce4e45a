"""lme4's summary of a fitted linear mixed model.

Owns: :func:`lmm_summary`, the tables and header of
:meth:`LinearMixedModel.summary <alsprog.models.LinearMixedModel.summary>` (scaled
residuals, random effects with correlations, fixed effects with Wald intervals, the
REML criterion or the ML information criteria), laid out as lme4 prints them.
Leaves: the container and its rendering to :mod:`alsprog.models._summary`; the
fitted state to :mod:`alsprog.models.lmm._model`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alsprog.models._summary import MixedSummary

__all__ = ["lmm_summary"]


def lmm_summary(model: Any, level: float, ddf: str | None = None) -> MixedSummary:
    """The :class:`MixedSummary` of a fitted ``LinearMixedModel`` at ``level``:
    lme4's without ``ddf``, lmerTest's (``df``, ``p_value``, t-based intervals) with
    ``ddf="satterthwaite"``, z-tests with ``ddf="normal"``."""
    ci = model.confint(level, ddf=ddf or "normal")
    fixed = pd.DataFrame(
        {
            "estimate": model.fe_params_,
            "std_error": model.bse_,
            "t": model.fe_params_ / model.bse_,
            "ci_lower": ci["lower"],
            "ci_upper": ci["upper"],
        }
    )
    if ddf is not None:
        tests = model._tests(np.eye(len(model.fe_params_)), ddf)
        fixed["std_error"] = tests["std_error"]  # Kenward-Roger: adjusted
        fixed["t"] = tests["t"]
        fixed.insert(2, "df", tests["df"])
        fixed.insert(4, "p_value", tests["p_value"])
    blocks = random_blocks(model)
    rows = []
    for group, names, cov in blocks:
        sd = np.sqrt(np.diag(cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = cov / np.outer(sd, sd)
        for i, nm in enumerate(names):
            row: dict[str, object] = {
                "group": group if i == 0 else "",
                "name": nm,
                "variance": sd[i] ** 2,
                "std_dev": sd[i],
            }
            for j in range(i):
                row[f"corr_{names[j]}"] = corr[i, j]
            rows.append(row)
    rows.append(
        {
            "group": "Residual",
            "name": "",
            "variance": model.scale_,
            "std_dev": np.sqrt(model.scale_),
        }
    )
    random = pd.DataFrame(rows).set_index(["group", "name"])
    terms = [(group, list(names)) for group, names, _ in blocks]
    correlations = []
    for _, names, cov in blocks:
        sd = np.sqrt(np.diag(cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            correlations.append(
                pd.DataFrame(cov / np.outer(sd, sd), index=names, columns=names)
            )
    group_sizes = (
        {model._design_info["group"]: model.n_subjects_}
        if model._multi is None
        else {f["name"]: len(f["levels"]) for f in model._multi["factors"]}
    )
    sr = model.resid_.to_numpy() / np.sqrt(model.scale_)
    resid = pd.DataFrame(
        [np.quantile(sr, [0, 0.25, 0.5, 0.75, 1])],
        columns=["Min", "1Q", "Median", "3Q", "Max"],
        index=[""],
    )
    n_par = len(model.fe_params_) + model._design_info["n_theta"] + 1
    criterion: dict[str, float]
    if model.reml:
        criterion = {"REML": -2 * model.llf_}
        header: dict[str, object] = {
            "Formula": model.formula,
            "REML criterion at convergence": f"{-2 * model.llf_:.1f}",
        }
        title = "Linear mixed model fit by REML"
    else:
        criterion = {
            "AIC": model.aic,
            "BIC": model.bic,
            "logLik": model.llf_,
            "deviance": -2 * model.llf_,
            "df.resid": float(model.n_obs_ - n_par),
        }
        header = {
            "Formula": model.formula,
            "AIC": f"{model.aic:.1f}",
            "BIC": f"{model.bic:.1f}",
            "logLik": f"{model.llf_:.1f}",
            "deviance": f"{-2 * model.llf_:.1f}",
        }
        title = "Linear mixed model fit by maximum likelihood"
    if ddf == "satterthwaite":
        title += ". t-tests use Satterthwaite's method"
    elif ddf == "kenward-roger":
        title += ". t-tests use Kenward-Roger's method"
    elif ddf == "normal":
        title += ". z-tests (normal reference distribution)"
    header["Number of obs"] = f"{model.n_obs_}, groups: " + "; ".join(
        f"{g}, {n}" for g, n in group_sizes.items()
    )
    cb = np.asarray(model.cov_params().to_numpy(), dtype=float)
    se = np.sqrt(np.diag(cb))
    with np.errstate(invalid="ignore", divide="ignore"):
        fixed_corr = pd.DataFrame(
            cb / np.outer(se, se), index=fixed.index, columns=fixed.index
        )
    notes = []
    if model.singular_:
        notes.append("boundary (singular) fit: see help('isSingular') in lme4")
    if not model.converged_:
        notes.append("optimiser did not converge")
    if model.n_dropped_:
        notes.append(f"{model.n_dropped_} rows with missing values were dropped")
    return MixedSummary(
        title,
        header,
        {"residuals": resid, "random": random, "fixed": fixed},
        formula=model.formula,
        criterion=criterion,
        terms=terms,
        correlations=correlations,
        groups=group_sizes,
        n_obs=model.n_obs_,
        fixed_corr=fixed_corr,
        captions={
            "residuals": "Scaled residuals",
            "random": "Random effects",
            "fixed": "Fixed effects",
        },
        notes=notes,
    )


def random_blocks(model: Any) -> list[tuple[str, list[str], np.ndarray]]:
    """The random-effects terms in lme4's order: (group, effect names, covariance).

    A term is a set of effects with a free correlation (lme4's ``(a + b | g)``);
    ``(a || g)`` gives one term per effect.
    """
    if model._multi is not None:  # terms in theta (lme4's) order
        return [
            (
                group,
                list(model.cov_re_[group].index[a:b]),
                model.cov_re_[group].to_numpy()[a:b, a:b],
            )
            for group, a, b in model._multi["terms"]
        ]
    group = model._design_info["group"]
    tpl = model._design_info["template"]
    names = list(model.cov_re_.index)
    cov = model.cov_re_.to_numpy()
    starts = [
        i for i in range(len(names)) if not np.any((tpl.rows == i) & (tpl.cols < i))
    ]
    bounds = list(zip(starts, [*starts[1:], len(names)], strict=True))
    return [(group, names[a:b], cov[a:b, a:b]) for a, b in bounds]
