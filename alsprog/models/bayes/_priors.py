"""Priors as data for the Bayesian trajectory models.

Owns: :class:`Prior` (an immutable distribution name plus parameters, with
``to_dict``/``from_dict`` and a repr that is valid Python), the default priors of each
model kind (weakly informative on ALSFRS-R's scale, ``docs/domain.md`` §2-§3), merging user
priors over them, and turning a prior into a PyMC variable or log-density.
Leaves: the models that use the priors to :mod:`alsprog.models.bayes._linear`,
:mod:`alsprog.models.bayes._sigmoid` and :mod:`alsprog.models.bayes._model`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from alsprog.errors import ModelSpecificationError

__all__ = ["Prior", "default_priors", "merge_priors"]

#: distribution -> (required parameters, parameters that must be positive)
_DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Normal": (("mu", "sigma"), ("sigma",)),
    "StudentT": (("nu", "mu", "sigma"), ("nu", "sigma")),
    "HalfNormal": (("sigma",), ("sigma",)),
    "HalfStudentT": (("nu", "sigma"), ("nu", "sigma")),
    "HalfCauchy": (("beta",), ("beta",)),
    "Exponential": (("lam",), ("lam",)),
    "Gamma": (("alpha", "beta"), ("alpha", "beta")),
    "LogNormal": (("mu", "sigma"), ("sigma",)),
    "Uniform": (("lower", "upper"), ()),
    "LKJ": (("eta",), ("eta",)),
}
_POSITIVE_SUPPORT = {
    "HalfNormal",
    "HalfStudentT",
    "HalfCauchy",
    "Exponential",
    "Gamma",
    "LogNormal",
}


class Prior:
    """A prior distribution: a PyMC distribution name and its parameters.

    Parameters
    ----------
    distribution : str
        One of ``Normal(mu, sigma)``, ``StudentT(nu, mu, sigma)``,
        ``HalfNormal(sigma)``, ``HalfStudentT(nu, sigma)``, ``HalfCauchy(beta)``,
        ``Exponential(lam)``, ``Gamma(alpha, beta)``, ``LogNormal(mu, sigma)``,
        ``Uniform(lower, upper)`` (PyMC's parameterisations) or ``LKJ(eta)`` for a
        correlation matrix (only for the ``corr`` key).
    **params : float
        The distribution's parameters, all required, as finite numbers.

    Raises
    ------
    ModelSpecificationError
        Unknown distribution, missing or unknown parameter, or a value out of range.

    Examples
    --------
    >>> p = Prior("Normal", mu=-0.9, sigma=0.5)
    >>> p
    Prior('Normal', mu=-0.9, sigma=0.5)
    >>> Prior.from_dict(p.to_dict()) == p
    True
    >>> p.params["sigma"]
    0.5
    """

    __slots__ = ("_distribution", "_params")
    _distribution: str
    _params: tuple[tuple[str, float], ...]

    def __init__(self, distribution: str, **params: float) -> None:
        if distribution not in _DISTRIBUTIONS:
            raise ModelSpecificationError(
                f"Unknown prior distribution {distribution!r}; choose one of "
                f"{', '.join(_DISTRIBUTIONS)}."
            )
        required, positive = _DISTRIBUTIONS[distribution]
        missing = [k for k in required if k not in params]
        extra = [k for k in params if k not in required]
        if missing or extra:
            raise ModelSpecificationError(
                f"Prior {distribution!r} takes parameters {', '.join(required)}; got "
                f"{', '.join(params) or 'none'}."
            )
        clean: dict[str, float] = {}
        for k in required:
            v = params[k]
            if isinstance(v, bool) or not isinstance(v, int | float | np.number):
                raise ModelSpecificationError(
                    f"Prior {distribution!r}: `{k}` must be a number; got {v!r}."
                )
            v = float(v)
            if not math.isfinite(v) or (k in positive and v <= 0):
                what = "a positive number" if k in positive else "finite"
                raise ModelSpecificationError(
                    f"Prior {distribution!r}: `{k}` must be {what}; got {v!r}."
                )
            clean[k] = v
        if distribution == "Uniform" and clean["lower"] >= clean["upper"]:
            raise ModelSpecificationError(
                f"Prior 'Uniform': `lower` must be below `upper`; got {clean}."
            )
        object.__setattr__(self, "_distribution", distribution)
        object.__setattr__(self, "_params", tuple(clean.items()))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Prior is immutable; create a new one.")

    @property
    def distribution(self) -> str:
        """The distribution's name."""
        return self._distribution

    @property
    def params(self) -> dict[str, float]:
        """The parameters as a new dict."""
        return dict(self._params)

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self._params)
        return f"Prior({self._distribution!r}{args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Prior):
            return NotImplemented
        return (self._distribution, self._params) == (
            other._distribution,
            other._params,
        )

    def __hash__(self) -> int:
        return hash((self._distribution, self._params))

    def __reduce__(self) -> tuple[Any, ...]:  # copy/deepcopy (sklearn.clone)
        return (_rebuild, (self._distribution, self._params))

    def to_dict(self) -> dict[str, Any]:
        """``{"distribution": name, **params}``, JSON-ready.

        Examples
        --------
        >>> Prior("HalfNormal", sigma=2.0).to_dict()
        {'distribution': 'HalfNormal', 'sigma': 2.0}
        """
        return {"distribution": self._distribution, **dict(self._params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prior:
        """Rebuild a prior written by :meth:`to_dict`.

        Examples
        --------
        >>> Prior.from_dict({"distribution": "HalfNormal", "sigma": 2.0})
        Prior('HalfNormal', sigma=2.0)
        """
        if not isinstance(data, Mapping) or "distribution" not in data:
            raise ModelSpecificationError(
                f"A prior dict needs a 'distribution' key; got {data!r}."
            )
        rest = {k: v for k, v in data.items() if k != "distribution"}
        return cls(str(data["distribution"]), **rest)

    @property
    def positive(self) -> bool:
        """Whether the distribution lives on the positive reals (for SDs)."""
        return self._distribution in _POSITIVE_SUPPORT

    def dist(self, **shape: Any) -> Any:
        """An unnamed PyMC distribution (``pm.<Name>.dist``) for this prior."""
        import pymc as pm

        if self._distribution == "LKJ":
            raise ModelSpecificationError("An LKJ prior has no scalar distribution.")
        return getattr(pm, self._distribution).dist(**dict(self._params), **shape)


def _rebuild(distribution: str, params: tuple[tuple[str, float], ...]) -> Prior:
    return Prior(distribution, **dict(params))


def _vector_prior(name: str, priors: Sequence[Prior], dims: str | None = None) -> Any:
    """One PyMC vector variable whose entries follow ``priors`` (one family)."""
    import pymc as pm

    dist = priors[0].distribution
    assert all(p.distribution == dist for p in priors)  # internal invariant
    keys = priors[0].params.keys()
    args = {k: np.array([p.params[k] for p in priors]) for k in keys}
    return getattr(pm, dist)(name, **args, shape=len(priors))


def vector_from_priors(name: str, priors: Sequence[Prior]) -> Any:
    """A PyTensor vector with entry ``k`` drawn from ``priors[k]``.

    Entries sharing a distribution family become one PyMC variable
    (``{name}_{family}``) with vector parameters; the result stitches them together in
    the given order.
    """
    import pytensor.tensor as pt

    if not priors:
        return pt.zeros((0,))
    families: dict[str, list[int]] = {}
    for i, p in enumerate(priors):
        families.setdefault(p.distribution, []).append(i)
    if len(families) == 1:
        return _vector_prior(name, priors)
    out = pt.zeros((len(priors),))
    for fam, idx in families.items():
        v = _vector_prior(f"{name}_{fam.lower()}", [priors[i] for i in idx])
        out = pt.set_subtensor(out[np.asarray(idx)], v)
    return out


def correlation_from_prior(name: str, prior: Prior) -> Any:
    """The correlation of two effects under an LKJ(eta) prior.

    For a 2 x 2 correlation matrix the LKJ(eta) density of its one free entry is
    ``(1 - rho^2)^(eta - 1)``, i.e. ``(rho + 1) / 2 ~ Beta(eta, eta)``; the variable
    is built that way (a Uniform(-1, 1) prior is LKJ(1)).
    """
    import pymc as pm

    if prior.distribution != "LKJ":
        raise ModelSpecificationError(
            f"The `corr` prior must be Prior('LKJ', eta=...); got {prior!r}."
        )
    eta = prior.params["eta"]
    return 2.0 * pm.Beta(name, alpha=eta, beta=eta) - 1.0


def scalar_from_prior(name: str, prior: Prior, *, positive: bool = False) -> Any:
    """A scalar PyMC variable with this prior (checked positive for SDs)."""
    import pymc as pm

    if positive and not prior.positive:
        raise ModelSpecificationError(
            f"Prior for {name.lstrip('_')!r} must live on the positive reals "
            f"(HalfNormal, HalfStudentT, HalfCauchy, Exponential, Gamma, LogNormal); "
            f"got {prior!r}."
        )
    if prior.distribution == "LKJ":
        raise ModelSpecificationError(
            f"Prior('LKJ', ...) is only for `corr`; got it for {name.lstrip('_')!r}."
        )
    return getattr(pm, prior.distribution)(name, **prior.params)


# ------------------------------------------------------------------- defaults
_LOG30, _LOG10 = math.log(30.0), math.log(10.0)

_DEFAULTS: dict[str, dict[str, Prior]] = {
    "linear": {
        # ALSFRS-R (0-48) at the covariates' sample means: trial entry 38 +- 5.6,
        # minus some decline over follow-up (docs/domain.md §2)
        "intercept": Prior("Normal", mu=36.0, sigma=12.0),
        # population slope (points/month): -0.99 to -1.66 reported (§2)
        "slope": Prior("Normal", mu=-1.0, sigma=1.0),
        # other fixed effects, points per unit of the covariate
        "beta": Prior("Normal", mu=0.0, sigma=5.0),
        # between-patient SDs: level approx. 5, slope approx. 0.5-0.8 (§2, §7)
        "sd_intercept": Prior("HalfNormal", sigma=10.0),
        "sd_slope": Prior("HalfNormal", sigma=1.5),
        "corr": Prior("LKJ", eta=2.0),
        # within-patient residual SD approx. 1.5-2.5 points (§2)
        "sigma": Prior("HalfNormal", sigma=5.0),
    },
    "sigmoid": {
        # log D50 (months since onset) at the covariates' means: medians 25-40 (§3)
        "d50_intercept": Prior("Normal", mu=_LOG30, sigma=0.5),
        # log dx (months): approx. 8-15 (§3)
        "dx_intercept": Prior("Normal", mu=_LOG10, sigma=0.5),
        # covariate effects on log D50 / log dx, per unit of the covariate
        "d50_beta": Prior("Normal", mu=0.0, sigma=0.5),
        "dx_beta": Prior("Normal", mu=0.0, sigma=0.5),
        # between-patient SDs of log D50 / log dx (simulator: log-SD 0.5, §7)
        "sd_d50": Prior("HalfNormal", sigma=0.5),
        "sd_dx": Prior("HalfNormal", sigma=0.5),
        "corr": Prior("LKJ", eta=2.0),
        "sigma": Prior("HalfNormal", sigma=5.0),
    },
}
#: degrees of freedom of a Student-t likelihood [Juárez & Steel 2010]
_NU = Prior("Gamma", alpha=2.0, beta=0.1)

#: keys that take a per-term form ``key[term]`` with the model's term names
TERM_KEYS = {"linear": ("beta",), "sigmoid": ("d50_beta", "dx_beta")}


def default_priors(
    kind: str = "linear", likelihood: str = "normal"
) -> dict[str, Prior]:
    """The default priors of one model kind, as a new dict.

    Examples
    --------
    >>> default_priors("linear")["slope"]
    Prior('Normal', mu=-1.0, sigma=1.0)
    >>> "nu" in default_priors("sigmoid", "student_t")
    True
    """
    if kind not in _DEFAULTS:
        raise ModelSpecificationError(
            f"`kind` must be one of 'linear', 'sigmoid'; got {kind!r}."
        )
    out = dict(_DEFAULTS[kind])
    if likelihood == "student_t":
        out["nu"] = _NU
    return out


def outcome_defaults(
    kind: str,
    likelihood: str,
    outcome: str,
    y: Any,
    t: Any,
) -> dict[str, Prior]:
    """The default priors for a fit of ``outcome``: :func:`default_priors` (on the
    ALSFRS-R scale) for the ALSFRS-R total or a column the data dictionary does not
    bound (a renamed total); for a linear model of another dictionary outcome (FVC
    % of predicted, an imaging feature), the same families scaled to the data as
    rstanarm scales its defaults: intercept ``Normal(mean(y), 2.5 sd(y))``, slope
    ``Normal(0, 2.5 sd(y) / sd(t))``, ``beta`` ``Normal(0, 2.5 sd(y))``, subject
    SDs ``HalfNormal(sd(y))`` and ``HalfNormal(sd(y) / sd(t))``, residual SD
    ``HalfNormal(sd(y))``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([80.0, 90, 70, 100]); t = np.array([0.0, 3, 6, 9])
    >>> outcome_defaults("linear", "normal", "fvc_percent_predicted", y, t)["intercept"]
    Prior('Normal', mu=85.0, sigma=32.27486121839514)
    >>> outcome_defaults("linear", "normal", "alsfrs_r_total", y, t)["intercept"]
    Prior('Normal', mu=36.0, sigma=12.0)
    """

    import numpy as np

    from alsprog.models._contract import on_alsfrs_r_scale

    out = default_priors(kind, likelihood)
    if kind != "linear" or on_alsfrs_r_scale(outcome):
        return out
    y = np.asarray(y, dtype=float)
    t = np.asarray(t, dtype=float)
    sd_y = float(np.std(y, ddof=1)) if len(y) > 1 else 0.0
    sd_t = float(np.std(t, ddof=1)) if len(t) > 1 else 0.0
    if not (sd_y > 0 and sd_t > 0):
        return out  # a constant outcome or time: the fit's own checks say why
    out.update(
        intercept=Prior("Normal", mu=float(np.mean(y)), sigma=2.5 * sd_y),
        slope=Prior("Normal", mu=0.0, sigma=2.5 * sd_y / sd_t),
        beta=Prior("Normal", mu=0.0, sigma=2.5 * sd_y),
        sd_intercept=Prior("HalfNormal", sigma=sd_y),
        sd_slope=Prior("HalfNormal", sigma=sd_y / sd_t),
        sigma=Prior("HalfNormal", sigma=sd_y),
    )
    return out


def merge_priors(
    kind: str,
    likelihood: str,
    priors: Mapping[str, Any] | None,
    terms: Sequence[str],
    *,
    defaults: Mapping[str, Prior] | None = None,
) -> dict[str, Prior]:
    """Merge user priors over the defaults, checking every key.

    Keys are the default keys plus ``key[term]`` for the per-term keys of the kind
    (e.g. ``beta[age_at_onset]``); values are :class:`Prior` objects or their dicts.

    Raises
    ------
    ModelSpecificationError
        An unknown key (the message lists the valid ones) or a value that is not a
        prior.
    """
    out = dict(defaults) if defaults is not None else default_priors(kind, likelihood)
    if priors is None:
        return out
    if not isinstance(priors, Mapping):
        raise ModelSpecificationError(
            f"`priors` must be a dict of name -> Prior; got {type(priors).__name__}."
        )
    term_keys = [
        f"{k}[{t}]" for k in TERM_KEYS[kind] for t in terms if t != "Intercept"
    ]
    valid = [*out, *term_keys]
    for key, value in priors.items():
        if key not in valid:
            raise ModelSpecificationError(
                f"Unknown prior {key!r} for a {kind} model with a {likelihood} "
                f"likelihood; valid keys are: {', '.join(valid)}."
            )
        if isinstance(value, Mapping):
            value = Prior.from_dict(value)
        if not isinstance(value, Prior):
            raise ModelSpecificationError(
                f"Prior {key!r} must be a Prior or its dict; got {value!r}."
            )
        out[key] = value
    return out


def term_priors(
    merged: Mapping[str, Prior], key: str, terms: Sequence[str]
) -> list[Prior]:
    """The prior of each term: ``key[term]`` when given, else ``key``."""
    return [merged.get(f"{key}[{t}]", merged[key]) for t in terms]
