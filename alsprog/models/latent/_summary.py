"""The summary of a fitted latent-class mixed model.

Owns: :func:`latent_summary` (header with the criteria and starts, the fixed effects
by class with Wald intervals, the membership logit's coefficients, the shared
random-effects covariance, class probabilities and MAP sizes, and lcmm's posterior
classification table).
Leaves: the estimates to :mod:`alsprog.models.latent._model`; the layout of a
summary to :mod:`alsprog.models._summary`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from alsprog.models._summary import Summary

__all__ = ["latent_summary"]


def _wald(est: pd.DataFrame, se: pd.DataFrame, level: float) -> pd.DataFrame:
    z = float(ndtri(0.5 + level / 2))
    out = est.stack().rename("estimate").to_frame().join(se.stack().rename("std_error"))
    pct = f"{100 * level:g}"
    out[f"lower_{pct}"] = out["estimate"] - z * out["std_error"]
    out[f"upper_{pct}"] = out["estimate"] + z * out["std_error"]
    return out


def _d50_table(model: Any, level: float) -> pd.DataFrame | None:
    """D50 ``= -b0 / b1`` and dx ``= -1 / b1`` per class when the D50 link's fixed
    part is an intercept and the time column alone, with delta-method intervals."""
    names = list(model.fe_params_.columns)
    if model.link != "d50" or names != ["Intercept", str(model.time)]:
        return None
    z = float(ndtri(0.5 + level / 2))
    cov = model._state.cov_betas()
    rows = []
    for k, (b0, b1) in enumerate(model.fe_params_.to_numpy()):
        grads = {
            "D50": np.array([-1.0 / b1, b0 / b1**2]),
            "dx": np.array([0.0, 1.0 / b1**2]),
        }
        values = {"D50": -b0 / b1, "dx": -1.0 / b1}
        for name, g in grads.items():
            se = float(np.sqrt(max(g @ cov[k] @ g, 0.0)))
            v = values[name]
            rows.append((k + 1, name, v, se, v - z * se, v + z * se))
    pct = f"{100 * level:g}"
    cols = [
        "class",
        "parameter",
        "estimate",
        "std_error",
        f"lower_{pct}",
        f"upper_{pct}",
    ]
    return pd.DataFrame(rows, columns=cols).set_index(["class", "parameter"])


def latent_summary(model: Any, level: float) -> Summary:
    """The :class:`~alsprog.models.Summary` of a fitted
    :class:`~alsprog.models.LatentClassMixedModel` at interval ``level``."""
    K = len(model.class_probs_)
    tables = {"fixed": _wald(model.fe_params_, model.bse_, level)}
    captions = {"fixed": "Fixed effects by class"}
    if hasattr(model, "class_coef_"):
        tables["membership"] = _wald(model.class_coef_, model.class_coef_bse_, level)
        captions["membership"] = (
            "Class membership (multinomial logit, log odds against class 1)"
        )
    d50 = _d50_table(model, level)
    if d50 is not None:
        tables["d50"] = d50
        captions["d50"] = (
            "Sigmoid midpoint (D50) and width (dx) by class, in the time column's "
            "units (delta-method intervals)"
        )
    tables["random"] = model.cov_re_.copy()
    captions["random"] = (
        "Random-effects covariance by class"
        if model.random_covariance == "class"
        else "Random-effects covariance (shared)"
    )
    tables["classes"] = pd.DataFrame(
        {
            "pi": model.class_probs_,
            "n": model.class_sizes_,
            "share": model.class_sizes_ / model.n_subjects_,
        }
    )
    captions["classes"] = "Class probabilities (mean prior) and MAP sizes"
    post = (
        model.posterior_.groupby(model.classes_)
        .mean()
        .reindex(model.class_probs_.index)
    )
    # rename_axis, not ``.index.name =``: the index object is the fitted model's
    post = post.rename_axis(index="assigned")
    post.columns = [f"prob_class_{k}" for k in post.columns]
    tables["postprob"] = post
    captions["postprob"] = (
        "Posterior classification (mean probability by assigned class)"
    )
    header = {
        "Subjects": model.n_subjects_,
        "Observations": model.n_obs_,
        "Classes": K,
        "Log-likelihood": round(model.llf_, 4),
        "Parameters": model.n_params_,
        "AIC / BIC / SABIC": f"{model.aic:.2f} / {model.bic:.2f} / {model.sabic:.2f}",
        "Relative entropy / ICL": f"{model.entropy_:.4f} / {model.icl_:.2f}",
        "Residual variance": round(model.scale_, 4),
        "Link": (
            "D50 sigmoid: linear on log((y - lo + 1/2) / (hi - y + 1/2))"
            if model.link == "d50"
            else "identity"
        ),
        "Starts at the best / starts": (
            f"{model.n_best_starts_} / {len(model.start_llf_)}"
        ),
    }
    notes = [] if model.converged_ else ["The best start did not converge."]
    return Summary(
        f"Latent-class linear mixed model ({K} classes), ML",
        header,
        tables,
        captions=captions,
        notes=notes,
    )
