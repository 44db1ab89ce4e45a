"""Posterior math of a fitted Bayesian trajectory model on new rows.

Owns: the pointwise log-likelihood of the fitted rows (:func:`pointwise_loglik`, for
LOO), the design, time and subject effects of a new table's rows
(:func:`table_rows`: fitted subjects' posterior effects, new subjects' drawn from the
population), new subjects' effects (:func:`new_effects`) and residual noise per
posterior draw (:func:`noise`), and LOO by subject (:func:`subject_loo`).
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

__all__ = ["new_effects", "noise", "pointwise_loglik", "subject_loo", "table_rows"]


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


def subject_loo(model: Any) -> Any:
    """PSIS-LOO leaving out whole subjects, from the exact marginal log-likelihood
    blocks of the linear normal model (ArviZ ``ELPDData``)."""
    import arviz as az

    from alsprog.models.bayes._linear import marginal_loglik, subject_stats

    d = model._design
    stats = subject_stats(d.y, d.X, d.t, d.groups, len(d.subject_ids))
    ll = marginal_loglik(
        stats,
        model._draws("beta"),
        model._draws("subject_sd"),
        model._draws("subject_corr"),
        model._draws("sigma"),
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
