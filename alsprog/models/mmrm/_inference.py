"""Inference on a fitted :class:`~alsprog.models.MMRM` as R's mmrm gives it.

Owns: :func:`model_blocks` (a fit's visit patterns with the covariance's exact
derivatives in mmrm's ``theta``), :func:`mmrm_inference` (the t or F test of ``L
beta`` with the ``ddf`` and ``vcov`` of mmrm: Satterthwaite, Kenward-Roger (linear or
not), between-within, residual; model-based or sandwich CR0/CR2/CR3 covariance) and
:func:`contrast_var_df` / :func:`coefficient_table` (what the model's LS means,
contrasts and summary use, with the fit's own ``ddf`` and ``vcov``).  The
Kenward-Roger components and the sandwich covariances are computed once per fit and
kept beside the model (:mod:`alsprog.models._derived`).
Leaves: the algebra to :mod:`alsprog.models.mmrm._kr` and
:mod:`alsprog.models.mmrm._sandwich`; the fit to :mod:`alsprog.models.mmrm._model`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import ModelSpecificationError
from alsprog.models._derived import derived
from alsprog.models.mmrm._kr import (
    between_within_df,
    contrast_test,
    kr_components,
    kr_df,
    kr_vcov,
    reml_information,
    residual_df,
    satterthwaite_md,
)
from alsprog.models.mmrm._sandwich import SandwichType, SubjectBlock

if TYPE_CHECKING:
    from alsprog.models.mmrm._model import MMRM

__all__ = [
    "DDF",
    "VCOV",
    "coefficient_table",
    "contrast_var_df",
    "mmrm_inference",
    "model_blocks",
]

Array = npt.NDArray[np.float64]


DDF = ("satterthwaite", "kenward-roger", "kenward-roger-linear", "between-within",
       "residual")  # fmt: skip
VCOV = ("model", "cr0", "cr2", "cr3")


def model_blocks(model: MMRM, *, order: int = 1) -> list[SubjectBlock]:
    """A fitted MMRM's visit patterns as :class:`SubjectBlock`s with the
    covariance's exact derivatives in the model's ``theta`` (mmrm's parameterisation,
    groups' parameters concatenated; weighted fits as ``W^1/2 X``, ``W^1/2 y`` under
    the group's ``Sigma``, which is the same GLS).

    Parameters
    ----------
    model : MMRM
        Fitted.
    order : {1, 2}, default 1
        2 adds the second derivatives (Kenward-Roger, observed information).
    """
    from alsprog.models.mmrm._covariance import (
        covariance_and_derivatives,
        n_cov_params,
    )

    structure = model._structure
    T = len(model.visits_)
    k = n_cov_params(structure, T)
    sigmas = model._sigmas
    G = sigmas.shape[0]
    kt = G * k
    beta = model.fe_params_.to_numpy()
    derivs = [
        covariance_and_derivatives(
            model.theta_[g * k : (g + 1) * k], structure, T, order=order
        )  # fmt: skip
        for g in range(G)
    ]
    out = []
    for pt in model._patterns:
        Y, X = pt.weighted()
        ix = pt.idx
        g = pt.group
        cd = derivs[g]
        sl = slice(g * k, (g + 1) * k)
        d = len(ix)
        assert cd.jac is not None
        dS = np.zeros((kt, d, d))
        dS[sl] = cd.jac[:, ix][:, :, ix]
        d2S = None
        if order >= 2:
            assert cd.hess is not None
            d2S = np.zeros((kt, kt, d, d))
            d2S[sl, sl] = cd.hess[:, :, ix][:, :, :, ix]
        out.append(
            SubjectBlock(
                X=X,
                Sigma=sigmas[g][np.ix_(ix, ix)],
                resid=Y - X @ beta,
                dSigma=dS,
                d2Sigma=d2S,
            )
        )
    return out


def mmrm_inference(
    model: MMRM,
    L: npt.ArrayLike,
    *,
    ddf: str = "satterthwaite",
    vcov: str | None = None,
) -> dict[str, float]:
    """Test ``L beta`` on a fitted MMRM as R's mmrm does (``df_1d`` / ``df_md``).

    Parameters
    ----------
    model : MMRM
        Fitted (REML for Kenward-Roger).
    L : array-like, shape (p,) or (q, p)
        One contrast (t test) or several (F test).
    ddf : {"satterthwaite", "kenward-roger", "kenward-roger-linear",
        "between-within", "residual"}, default "satterthwaite"
    vcov : {"model", "cr0", "cr2", "cr3"}, optional
        Covariance of the fixed effects; by default mmrm's: the Kenward-Roger
        adjusted one for the Kenward-Roger ddf (the only one allowed there),
        ``"cr0"`` for ``"residual"``, the model's otherwise.  With a sandwich,
        ``"satterthwaite"`` is mmrm's empirical Satterthwaite.

    Returns
    -------
    dict
        One row: ``estimate, std_error, df, t, p_value``; several: ``num_df,
        denom_df, f_stat, p_value``.

    Raises
    ------
    ModelSpecificationError
        Unknown ``ddf`` or ``vcov``, a sandwich with Kenward-Roger, Kenward-Roger on
        an ML fit, ``L`` of the wrong width.
    """
    from alsprog._validation import check_is_fitted
    from alsprog.models.mmrm._sandwich import sandwich_df, sandwich_vcov

    check_is_fitted(model, ["fe_params_"])
    if ddf not in DDF:
        raise ModelSpecificationError(f"`ddf` {ddf!r} is not one of {list(DDF)}.")
    kr = ddf.startswith("kenward-roger")
    if vcov is None:
        vcov = "cr0" if ddf == "residual" else "model"
    if vcov not in VCOV:
        raise ModelSpecificationError(f"`vcov` {vcov!r} is not one of {list(VCOV)}.")
    if kr and vcov != "model":
        raise ModelSpecificationError(
            f"Kenward-Roger ddf use the Kenward-Roger covariance; got vcov={vcov!r} "
            "(use ddf='satterthwaite' with a sandwich)."
        )
    if kr and getattr(model, "method", "REML") != "REML":
        raise ModelSpecificationError(
            f"Kenward-Roger needs a REML fit; this one is {model.method!r}."
        )
    beta = model.fe_params_.to_numpy()
    p = len(beta)
    Lm = np.atleast_2d(np.asarray(L, dtype=float))
    if Lm.ndim != 2 or Lm.shape[1] != p:
        raise ModelSpecificationError(
            f"`L` must have {p} columns (one per fixed effect); got shape "
            f"{np.shape(L)}."
        )
    one = Lm.shape[0] == 1
    cache = derived(model)
    if kr:
        kc, W = _kr_state(model, cache)
        key = f"vcov_{ddf}"
        if key not in cache:
            cache[key] = kr_vcov(kc, W, linear=ddf == "kenward-roger-linear")
        m, lam = kr_df(Lm, kc, W)
        return contrast_test(beta, cache[key], Lm, m, f_scaling=lam)
    if vcov == "model":
        V = np.asarray(model._Cinv, dtype=float)
        sw = None
    else:
        key = f"sandwich_{vcov}"
        if key not in cache:
            cache[key] = sandwich_vcov(
                model_blocks(model), model._Cinv, type=cast(SandwichType, vcov)
            )
        sw = cache[key]
        V = sw.vcov
    if ddf == "residual":
        df = residual_df(model.n_obs_, p)
        return contrast_test(beta, V, Lm, df)
    if ddf == "between-within":
        names = list(model.fe_params_.index)
        icpt = next(
            (i for i, n in enumerate(names) if n in ("Intercept", "(Intercept)")),
            None,
        )
        rows = model._rows
        df = between_within_df(rows["X"], rows["subject"], Lm, intercept=icpt)
        return contrast_test(beta, V, Lm, df)
    # Satterthwaite
    if sw is not None:
        res = sw

        def df_of(c: Array) -> float:
            return sandwich_df(res, c)
    else:
        if getattr(model, "method", "REML") == "REML":
            kc, W = _kr_state(model, cache)
        else:
            if model._theta_cov is None:
                raise ModelSpecificationError(
                    "Satterthwaite ddf need the covariance of theta, which this fit "
                    "lacks (its Hessian was not positive definite)."
                )
            if "kc1" not in cache:
                cache["kc1"] = kr_components(model_blocks(model))
            kc = cache["kc1"]
            W = np.asarray(model._theta_cov, dtype=float)

        def df_of(c: Array) -> float:
            Vc = V @ c
            g = -np.einsum("p,rpq,q->r", Vc, kc.P, Vc)
            v = float(c @ Vc)
            return 2.0 * v * v / float(g @ W @ g)

    if one:
        return contrast_test(beta, V, Lm[0], df_of(Lm[0]))
    return satterthwaite_md(beta, V, Lm, df_of)


def _kr_state(model: MMRM, cache: dict) -> tuple[Any, Array]:
    """The Kenward-Roger components (second derivatives included) and ``W``, the
    inverse observed REML information in ``theta``, computed once per fit."""
    if "kc2" not in cache:
        kc = kr_components(model_blocks(model, order=2))
        cache["kc2"] = kc
        cache["W"] = np.linalg.inv(reml_information(kc))
    return cache["kc2"], cache["W"]


def contrast_var_df(model: MMRM, c: Array) -> tuple[float, float]:
    """Variance and ddf of ``c'beta`` with the fit's ``ddf`` and ``vcov``."""
    r = mmrm_inference(model, c, ddf=model.ddf, vcov=model.vcov)
    return float(r["std_error"]) ** 2, float(r["df"])


def coefficient_table(model: MMRM, level: float) -> pd.DataFrame:
    """mmrm's coefficient table: ``estimate, std_error, df, t, p_value, ci_lower,
    ci_upper`` per fixed effect, with the fit's ``ddf`` and ``vcov``."""
    from scipy.stats import t as tdist

    names = list(model.fe_params_.index)
    rows = {}
    for j, name in enumerate(names):
        c = np.zeros(len(names))
        c[j] = 1.0
        r = mmrm_inference(model, c, ddf=model.ddf, vcov=model.vcov)
        q = float(tdist.ppf(0.5 + level / 2, r["df"]))
        rows[name] = {
            "estimate": r["estimate"],
            "std_error": r["std_error"],
            "df": r["df"],
            "t": r["t"],
            "p_value": r["p_value"],
            "ci_lower": r["estimate"] - q * r["std_error"],
            "ci_upper": r["estimate"] + q * r["std_error"],
        }
    return pd.DataFrame.from_dict(rows, orient="index")
