"""Profile-likelihood confidence intervals of a linear mixed model, as lme4's
``profile(m)`` and ``confint(m, method = "profile")`` compute them.

Owns: :func:`profile_model` and :class:`ProfileResult`: the profile zeta of every
parameter (random-effect standard deviations and correlations, the residual standard
deviation, the fixed effects) and the interval where ``|zeta|`` stays below
``sqrt(qchisq(level, 1))``.
Leaves: the likelihood algebra to :mod:`alsprog.models.lmm._numerics` (one grouping
factor) and :mod:`alsprog.models.lmm._multi` (several), reached only through
:class:`_Criterion` and :class:`_MultiCriterion` (``parts``, ``fit``, ``minimum``,
``with_fixed``); the ``confint`` method to :mod:`alsprog.models.lmm._inference`.

What lme4 does, and so what this module does (lme4 1.1.31, ``R/profile.R``):

* The deviance is the **ML** deviance, also for a REML fit: ``devfun2()`` starts with
  ``refitML()``, so the profile and the intervals of a REML fit are those of its ML
  refit (they centre on the ML estimates).  The fixed effects are profiled on the same
  ML deviance.
* The variance parameters are on lme4's sd/cor scale: one value per position of the
  relative covariance factor theta (lower triangle of each term, column by column), a
  standard deviation on the diagonal and a correlation off it, then the residual
  standard deviation ``sigma``; lme4 calls them ``.sig01, .sig02, ...`` and
  ``.sigma``.  The deviance at given sd/cor/sigma has the fixed effects profiled out
  (``log|L|^2 + r^2(theta)/sigma^2 + n log(2 pi sigma^2)``).
* ``zeta(x) = sign(x - estimate) sqrt(D(x) - D_min)`` where ``D(x)`` is the deviance
  minimised over every other variance parameter (and, for a fixed effect, the
  deviance of the ML fit with that effect moved into an offset).
* The limits are where ``zeta = -/+ sqrt(qchisq(level, 1))``.  lme4 interpolates
  them from a spline through about a dozen profile points per parameter; here they
  are solved for with a root finder, so they are the crossing points themselves
  (within 1e-8 relative of those solved in R on lme4's own deviance; lme4's spline
  is up to 7e-5 relative off them, 2e-2 where it warns of a non-monotonic profile
  and falls back to linear interpolation).  A standard deviation whose profile does
  not cross before 0 gets 0 as its lower limit, a correlation -1 or 1 (lme4's
  bounds); an upper limit that is never crossed is ``inf``.
* The inner minimisations (over the other sd/cor/sigma values, or over theta for a
  fixed effect) are Newton steps on finite-difference derivatives, warm-started from
  the neighbouring profile point and its Hessian (lme4: bobyqa from the previous
  point).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._validation import check_int, check_interval, check_is_fitted
from alsprog.errors import ConvergenceWarning, ModelSpecificationError

__all__ = ["ProfileResult", "profile_model", "profile_names"]

Array = npt.NDArray[np.float64]
_LOG2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------- numerics adapter
class _Criterion:
    """The ML criterion of a one-factor model: the only place (with
    :class:`_MultiCriterion`) that calls the numerics.

    ``parts(theta)`` gives ``(log|V|, r^2)`` (``V = I + Z Lambda Lambda' Z'``; ``r^2``
    the penalised residual sum of squares at the profiled fixed effects; None outside
    the parameter space), ``fit(theta0)`` the ML estimates (``theta``, ``beta``,
    ``cov_beta``, ``sigma2``, ``deviance``), ``with_fixed(j, x)`` the same model with
    fixed effect ``j`` held at ``x`` (moved into an offset).
    """

    def __init__(self, stats: Any, template: Any) -> None:
        self.stats = stats
        self.template = template
        self.n = int(stats.n)

    def parts(self, theta: Array) -> tuple[float, float] | None:
        from alsprog.models.lmm._numerics import _evaluate

        try:
            pc = _evaluate(self.template.factor(theta), self.stats, False)
        except np.linalg.LinAlgError:  # X'V^-1X singular: theta far too large
            return None
        return float(pc.logdet_v), float(pc.r2)

    def fit(self, theta0: Array) -> Any:
        from alsprog.models.lmm._numerics import fit_profiled

        tpl = self.template
        return fit_profiled(
            self.stats, tpl.rows, tpl.cols, tpl.lower, reml=False, theta0=theta0
        )

    def minimum(self, start: tuple[Array, Any]) -> tuple[float, tuple[Array, Any]]:
        """The ML deviance at its optimum over theta, from ``start`` (theta and a
        Hessian to reuse: Newton steps from a neighbouring profile point)."""
        return _minimum_over_theta(self, self.template.lower, start)

    def with_fixed(self, j: int, x: float) -> _Criterion:
        from alsprog.models.lmm._numerics import GroupStats

        s = self.stats
        keep = np.arange(s.p) != j
        return _Criterion(
            GroupStats(
                ZtZ=s.ZtZ,
                ZtX=np.ascontiguousarray(s.ZtX[:, :, keep]),
                Zty=np.ascontiguousarray(s.Zty - x * s.ZtX[:, :, j]),
                XtX=s.XtX[np.ix_(keep, keep)],
                Xty=s.Xty[keep] - x * s.XtX[keep, j],
                yty=float(s.yty - 2.0 * x * s.Xty[j] + x * x * s.XtX[j, j]),
                n=s.n,
                n_per_group=s.n_per_group,
            ),
            self.template,
        )


class _MultiCriterion:
    """:class:`_Criterion` of a model with several grouping factors."""

    def __init__(self, design: Any) -> None:
        from alsprog.models.lmm._multi import MultiStats

        self.design = design
        self.stats = MultiStats.of(design)
        self.n = int(self.stats.n)

    def parts(self, theta: Array) -> tuple[float, float] | None:
        from alsprog.models.lmm._multi import multi_pieces

        pc = multi_pieces(theta, self.design, self.stats, False)
        return None if pc is None else (float(pc.logdet_v), float(pc.r2))

    def fit(self, theta0: Array) -> Any:  # starts from lme4's start, not theta0
        from alsprog.models.lmm._multi import fit_multi

        return fit_multi(self.design, reml=False)

    def minimum(self, start: tuple[Array, Any]) -> tuple[float, tuple[Array, Any]]:
        """As :meth:`_Criterion.minimum`."""
        return _minimum_over_theta(self, self.design.theta_lower, start)

    def with_fixed(self, j: int, x: float) -> _MultiCriterion:
        import dataclasses

        d = self.design
        return _MultiCriterion(
            dataclasses.replace(
                d,
                X=np.ascontiguousarray(np.delete(d.X, j, axis=1)),
                y=d.y - x * d.X[:, j],
                fe_names=[n for k, n in enumerate(d.fe_names) if k != j],
            )
        )


def _minimum_over_theta(
    crit: _Criterion | _MultiCriterion, lower: Array, start: tuple[Array, Any]
) -> tuple[float, tuple[Array, Any]]:
    """The profiled ML deviance minimised over theta (``crit.parts`` only)."""
    n = crit.n

    def f(theta: Array) -> float:
        parts = crit.parts(theta)
        if parts is None:
            return math.inf
        logdet, r2 = parts
        return logdet + n * (1.0 + _LOG2PI + math.log(r2 / n))

    d, theta, H = _minimise(f, start[0], lower, np.full_like(lower, np.inf), start[1])
    return d, (theta, H)


@dataclass(frozen=True)
class _Layout:
    """Where each theta sits: row and column in the block-diagonal q x q factor of
    all grouping factors side by side, the effect's name and its grouping factor."""

    rows: npt.NDArray[np.intp]
    cols: npt.NDArray[np.intp]
    q: int
    effects: tuple[str, ...]
    groups: tuple[str, ...]


def _layout(model: Any) -> _Layout:
    if getattr(model, "_multi", None) is None:
        tpl = model._design_info["template"]
        g = str(model._design_info["group"])
        return _Layout(tpl.rows, tpl.cols, tpl.q, tuple(tpl.names), (g,) * tpl.n_theta)
    design = model._rows()
    k = design.n_theta
    rows, cols = np.zeros(k, np.intp), np.zeros(k, np.intp)
    effects, groups = [""] * k, [""] * k
    off = 0
    for f in design.factors:
        for r, c, i in zip(f.rows, f.cols, f.theta_index, strict=True):
            rows[i], cols[i] = off + r, off + c
            nm = f.re_names
            effects[i] = nm[r] if r == c else f"{nm[r]}.{nm[c]}"
            groups[i] = f.name
        off += f.q
    return _Layout(rows, cols, off, tuple(effects), tuple(groups))


def _criterion(model: Any) -> _Criterion | _MultiCriterion:
    """The fitted model's ML criterion, from the rows it was fitted to."""
    from alsprog.models.lmm._numerics import compute_group_stats

    design = model._rows()
    if getattr(model, "_multi", None) is not None:
        return _MultiCriterion(design)
    stats = compute_group_stats(
        design.X, design.Z, design.y, design.groups, len(design.group_levels)
    )
    return _Criterion(stats, model._design_info["template"])


# ---------------------------------------------------------- the sd/cor/sigma scale
def _psd_cholesky(R: Array) -> Array | None:
    """Lower Cholesky factor of a positive semi-definite matrix (zero pivots
    allowed: a correlation of +-1), or None when ``R`` is not PSD."""
    q = len(R)
    L = np.zeros_like(R)
    for j in range(q):
        d = R[j, j] - L[j, :j] @ L[j, :j]
        if d < -1e-12:
            return None
        L[j, j] = math.sqrt(max(d, 0.0))
        for i in range(j + 1, q):
            off = R[i, j] - L[i, :j] @ L[j, :j]
            if L[j, j] > 1e-12:
                L[i, j] = off / L[j, j]
            elif abs(off) > 1e-9:
                return None
    return L


@dataclass(frozen=True)
class _Scale:
    """Conversion between theta (with sigma) and lme4's sd/cor/sigma vector."""

    rows: npt.NDArray[np.intp]
    cols: npt.NDArray[np.intp]
    q: int

    @property
    def is_sd(self) -> npt.NDArray[np.bool_]:
        return np.append(self.rows == self.cols, True)  # the last one is sigma

    def to_sdcor(self, theta: Array, sigma: float) -> Array:
        lam = np.zeros((self.q, self.q))
        lam[self.rows, self.cols] = theta
        S = lam @ lam.T
        d = np.sqrt(np.maximum(np.diag(S), 0.0))
        out = np.empty(len(self.rows) + 1)
        for k, (r, c) in enumerate(zip(self.rows, self.cols, strict=True)):
            if r == c:
                out[k] = sigma * d[r]
            else:
                den = d[r] * d[c]
                out[k] = S[r, c] / den if den > 0 else 0.0
        out[-1] = sigma
        return out

    def to_theta(self, v: Array) -> Array | None:
        """theta of the sd/cor/sigma vector ``v``, or None if its correlations do
        not form a positive semi-definite matrix."""
        sigma = float(v[-1])
        R = np.eye(self.q)
        sd = np.zeros(self.q)
        for k, (r, c) in enumerate(zip(self.rows, self.cols, strict=True)):
            if r == c:
                sd[r] = v[k]
            else:
                R[r, c] = R[c, r] = v[k]
        L = _psd_cholesky(R)
        if L is None or not sigma > 0:
            return None
        lam = (sd / sigma)[:, None] * L
        return lam[self.rows, self.cols]


def _deviance(crit: _Criterion | _MultiCriterion, scale: _Scale, v: Array) -> float:
    """lme4's ``devfun2``: the ML deviance at the sd/cor/sigma vector ``v``, the
    fixed effects profiled out (``inf`` outside the parameter space)."""
    theta = scale.to_theta(v)
    if theta is None:
        return math.inf
    parts = crit.parts(theta)
    if parts is None:
        return math.inf
    logdet, r2 = parts
    s2 = float(v[-1]) ** 2
    return logdet + r2 / s2 + crit.n * (_LOG2PI + math.log(s2))


# ------------------------------------------------------------------- the profiles
@dataclass(frozen=True)
class ProfileResult:
    """Profile-likelihood intervals and the profile traces of a mixed model.

    Attributes
    ----------
    intervals : pandas.DataFrame
        ``lower`` and ``upper`` per parameter (rows as :func:`profile_names`).
    table : pandas.DataFrame
        Every profile point evaluated: ``parameter``, ``value``, ``zeta``
        (sorted by parameter and value; ``zeta`` is 0 at the estimate), for a plot
        of zeta against each parameter as lme4's ``xyplot(profile(m))``.
    estimates : pandas.Series
        The ML estimates on this scale (the profile's centre).
    deviance : float
        The ML deviance at the optimum (lme4's ``basedev``).
    level : float
        The coverage of ``intervals``.

    Examples
    --------
    >>> import pandas as pd
    >>> from alsprog.models import LinearMixedModel
    >>> df = pd.DataFrame({"g": list("aabbccddee"), "t": [0, 1] * 5,
    ...                    "y": [1.0, 2.1, 0.4, 1.2, 2.0, 3.3, 1.1, 1.7, 0.2, 1.4]})
    >>> prof = profile_model(LinearMixedModel("y ~ t + (1 | g)").fit(df), n_grid=3)
    >>> prof.table.columns.tolist()
    ['parameter', 'value', 'zeta']
    >>> bool((prof.intervals["lower"] < prof.estimates).all())
    True
    """

    intervals: pd.DataFrame
    table: pd.DataFrame
    estimates: pd.Series
    deviance: float
    level: float


def profile_names(model: Any) -> list[str]:
    """Row names of the profile of ``model``, in lme4's order.

    ``sd_<effect>|<group>`` on the diagonal of each term, ``cor_<row>.<col>|<group>``
    off it (lme4's ``confint(m, oldNames = FALSE)`` names, ``.sig01, .sig02, ...`` in
    its default output), then ``sigma`` (lme4's ``.sigma``), then the fixed effects
    under their own names.

    Examples
    --------
    >>> import pandas as pd
    >>> from alsprog.models import LinearMixedModel
    >>> df = pd.DataFrame({"g": list("aabbccdd"), "t": [0, 1] * 4,
    ...                    "y": [1.0, 2.1, 0.4, 1.2, 2.0, 3.3, 1.1, 1.7]})
    >>> profile_names(LinearMixedModel("y ~ t + (1 | g)").fit(df))
    ['sd_Intercept|g', 'sigma', 'Intercept', 't']
    """
    lay = _layout(model)
    out = [
        f"{'sd' if r == c else 'cor'}_{name}|{g}"
        for r, c, name, g in zip(
            lay.rows, lay.cols, lay.effects, lay.groups, strict=True
        )
    ]
    return [*out, "sigma", *map(str, model.fe_params_.index)]


def _select(
    parm: str | Sequence[str] | None, names: list[str], n_var: int
) -> list[int]:
    if parm is None:
        return list(range(len(names)))
    if isinstance(parm, str):
        if parm == "theta_":
            return list(range(n_var))
        if parm == "beta_":
            return list(range(n_var, len(names)))
        parm = [parm]
    bad = [p for p in parm if p not in names]
    if bad:
        raise ModelSpecificationError(
            f"`parm` names {bad!r}, which are not parameters of the profile "
            f"({', '.join(names)}; or 'theta_' / 'beta_' for all of one kind)."
        )
    return sorted(names.index(p) for p in parm)


class _Trace:
    """zeta of one parameter, memoised, warm-starting each inner fit from the
    nearest point already solved."""

    def __init__(
        self,
        solve: Callable[[float, Any], tuple[float, Any]],
        estimate: float,
        start: Any,
        base: float,
    ) -> None:
        self.solve = solve
        self.estimate = estimate
        self.base = base
        self.points: dict[float, tuple[float, Any]] = {estimate: (0.0, start)}
        self.lower_deviance = 0.0

    def __call__(self, x: float) -> float:
        x = float(x)
        if x in self.points:
            return self.points[x][0]
        near = min(self.points, key=lambda t: abs(t - x))
        dev, arg = self.solve(x, self.points[near][1])
        diff = dev - self.base
        if not math.isfinite(diff):
            z = math.nan
        else:
            self.lower_deviance = min(self.lower_deviance, diff)
            z = math.copysign(math.sqrt(max(diff, 0.0)), x - self.estimate)
        self.points[x] = (z, arg)
        return z


def _limit(
    zeta: _Trace, side: int, c: float, step: float, bound: float, max_eval: int = 60
) -> float:
    """Where ``zeta`` crosses ``side * c`` going from the estimate toward ``bound``;
    ``bound`` when it does not cross before it (lme4's convention)."""
    from scipy import optimize

    est = zeta.estimate
    if (bound - est) * side <= 0:  # the estimate is at the bound
        return bound
    x0, z0 = est, 0.0
    x = est + side * step
    if (x - bound) * side > 0:
        x = 0.5 * (est + bound) if math.isfinite(bound) else x
    for _ in range(max_eval):
        z = zeta(x)
        if not math.isfinite(z):  # outside the parameter space: back off
            x = 0.5 * (x0 + x)
            continue
        if side * z >= c:
            return float(
                optimize.brentq(
                    lambda t: zeta(t) - side * c,
                    min(x0, x),
                    max(x0, x),
                    xtol=1e-10 * max(1.0, abs(x)),
                    rtol=1e-10,
                )
            )
        if x == bound:
            return bound
        dx = x - x0
        slope = (z - z0) / dx
        if side * slope > 0:
            # secant toward a little beyond the target, at most 10 steps at once
            nxt = x + (side * (c + 0.05) - z) / slope
            nxt = x + float(np.clip(nxt - x, -10 * abs(dx), 10 * abs(dx)))
        else:  # flat or turning: keep going outward
            nxt = x + 2.0 * dx
        x0, z0 = x, z
        x = min(nxt, bound) if side > 0 else max(nxt, bound)
    return side * math.inf


def _fd_gradient(
    f: Callable[[Array], float], u: Array, f0: float, h: float, hessian: bool
) -> tuple[Array, Array | None]:
    """Central-difference gradient of ``f`` at ``u`` and, when asked, its Hessian."""
    k = len(u)
    g = np.empty(k)
    fp, fm = np.empty(k), np.empty(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = h
        fp[i], fm[i] = f(u + e), f(u - e)
        g[i] = (fp[i] - fm[i]) / (2 * h)
    if not hessian:
        return g, None
    H = np.empty((k, k))
    for i in range(k):
        H[i, i] = (fp[i] - 2 * f0 + fm[i]) / (h * h)
        for j in range(i):
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = h, h
            H[i, j] = H[j, i] = (
                f(u + ei + ej) - f(u + ei - ej) - f(u - ei + ej) + f(u - ei - ej)
            ) / (4 * h * h)
    return g, H


def _minimise(
    f: Callable[[Array], float],
    u0: Array,
    lo: Array,
    hi: Array,
    H0: Array | None,
    *,
    h: float = 1e-4,
    step_tol: float = 1e-9,
    max_iter: int = 40,
) -> tuple[float, Array, Array | None]:
    """Minimise a smooth ``f`` over the box ``[lo, hi]`` from a good start: Newton
    steps with finite-difference derivatives, the Hessian reused (from a neighbouring
    profile point when given) and recomputed only when a step fails; L-BFGS-B when
    Newton cannot go on.  Returns ``(f_min, u_min, hessian)``."""
    from scipy import optimize

    u = np.clip(np.asarray(u0, dtype=float), lo, hi)
    f0 = f(u)
    H = H0
    fresh = False
    for _ in range(max_iter):
        if not math.isfinite(f0):
            break
        g, Hn = _fd_gradient(f, u, f0, h, H is None)
        if Hn is not None:
            H, fresh = Hn, True
        assert H is not None
        # coordinates held at a bound by a gradient pointing out of the box
        held = ((u <= lo) & (g > 0)) | ((u >= hi) & (g < 0))
        act = ~held
        if not act.any():
            return f0, u, H
        try:
            Ha = H[np.ix_(act, act)]
            if np.linalg.eigvalsh(Ha).min() <= 0:
                raise np.linalg.LinAlgError
            step = np.zeros_like(u)
            step[act] = -np.linalg.solve(Ha, g[act])
        except np.linalg.LinAlgError:
            if fresh:
                break
            H = None
            continue
        t = 1.0
        while t > 1e-3:
            cand = np.clip(u + t * step, lo, hi)
            fc = f(cand)
            if fc <= f0:
                break
            t *= 0.5
        else:
            if fresh:  # a fresh Hessian and still no descent: at rounding level
                return f0, u, H
            H = None
            continue
        moved = np.max(np.abs(cand - u))
        u, f0, fresh = cand, fc, False
        if moved < step_tol:
            return f0, u, H
    res = optimize.minimize(
        f,
        u,
        method="L-BFGS-B",
        bounds=list(zip(lo, hi, strict=True)),
        options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 500},
    )
    return float(res.fun), np.asarray(res.x, dtype=float), None


def _var_solver(
    crit: _Criterion | _MultiCriterion,
    scale: _Scale,
    w: int,
    v_hat: Array,
    bounds: list[tuple],
) -> tuple[Callable[[float, Any], tuple[float, Any]], Any]:
    """Minimum of the deviance over every sd/cor/sigma but number ``w``, at
    ``v[w] = x``, and the start (the free values at the estimate).  The free values
    are divided by their estimates (sds and sigma) so that they are all O(1)."""
    free = np.arange(len(v_hat)) != w
    unit = np.where(
        scale.is_sd[free], np.maximum(np.abs(v_hat[free]), 1e-3 * v_hat[-1]), 1.0
    )
    fb = [b for k, b in enumerate(bounds) if k != w]
    lo = np.array([b[0] for b in fb]) / unit
    hi = np.array([b[1] for b in fb]) / unit

    def solve(x: float, start: tuple[Array, Array | None]) -> tuple[float, Any]:
        v = v_hat.copy()
        v[w] = x

        def f(u: Array) -> float:
            v[free] = u * unit
            return _deviance(crit, scale, v)

        d, u, H = _minimise(f, start[0], lo, hi, start[1])
        return d, (u, H)

    return solve, (v_hat[free] / unit, None)


def profile_model(
    model: Any,
    level: float = 0.95,
    *,
    parm: str | Sequence[str] | None = None,
    n_grid: int = 0,
) -> ProfileResult:
    """Profile-likelihood intervals of a fitted linear mixed model, as lme4's
    ``confint(m, method = "profile")``.

    Parameters
    ----------
    model : LinearMixedModel
        Fitted; a REML fit is profiled through its ML refit, as lme4 does.
    level : float, default 0.95
        Coverage; the limits are where ``|zeta| = sqrt(qchisq(level, 1))``.
    parm : str or sequence of str, optional
        Parameters to profile (names as :func:`profile_names`, or lme4's
        ``"theta_"`` for the variance parameters and ``"beta_"`` for the fixed
        effects); all by default.
    n_grid : int, default 0
        Extra evenly spaced profile points between each parameter's limits, for a
        smoother :attr:`ProfileResult.table` to plot.

    Returns
    -------
    ProfileResult

    Warns
    -----
    ConvergenceWarning
        When profiling found a deviance lower than the fit's (the fit was not at
        its optimum; lme4 stops with "profiling detected new, lower deviance").

    Examples
    --------
    >>> import pandas as pd
    >>> from alsprog.models import LinearMixedModel
    >>> df = pd.DataFrame({"g": list("aabbccddee"), "t": [0, 1] * 5,
    ...                    "y": [1.0, 2.1, 0.4, 1.2, 2.0, 3.3, 1.1, 1.7, 0.2, 1.4]})
    >>> m = LinearMixedModel("y ~ t + (1 | g)").fit(df)
    >>> prof = profile_model(m, parm="theta_")
    >>> list(prof.intervals.index)
    ['sd_Intercept|g', 'sigma']
    """
    from scipy.special import ndtri

    check_is_fitted(model, ["fe_params_"])
    level = check_interval(
        level, "level", low=0, high=1, low_closed=False, high_closed=False
    )
    n_grid = check_int(n_grid, "n_grid", low=0)
    c = float(ndtri(0.5 + 0.5 * level))  # sqrt(qchisq(level, 1))
    names = profile_names(model)
    lay = _layout(model)
    n_var = len(lay.rows) + 1
    chosen = _select(parm, names, n_var)

    crit = _criterion(model)
    ml = crit.fit(np.asarray(model.theta_, dtype=float))
    base = float(ml.deviance)
    scale = _Scale(lay.rows, lay.cols, lay.q)
    v_hat = scale.to_sdcor(ml.theta, math.sqrt(ml.sigma2))
    bounds = [(0.0, math.inf) if sd else (-1.0, 1.0) for sd in scale.is_sd[:-1]] + [
        (0.0, math.inf)
    ]
    estimates = np.concatenate([v_hat, ml.beta])
    se_beta = np.sqrt(np.diag(ml.cov_beta))

    lower, upper, rows = [], [], []
    low_dev = 0.0
    for i in chosen:
        if i < n_var:
            solver, start = _var_solver(crit, scale, i, v_hat, bounds)
            trace = _Trace(solver, float(v_hat[i]), start, base)
            lo_b, hi_b = bounds[i]
            if scale.is_sd[i]:
                step = 0.1 * v_hat[i] if v_hat[i] > 0 else 1e-3 * v_hat[-1]
            else:
                step = 0.1 * max(1.0 - abs(v_hat[i]), 1e-3)
        else:
            j = i - n_var

            def solve(x: float, start: Any, j: int = j) -> tuple[float, Any]:
                return crit.with_fixed(j, x).minimum(start)

            trace = _Trace(solve, float(ml.beta[j]), (ml.theta, None), base)
            lo_b, hi_b = -math.inf, math.inf
            step = c * float(se_beta[j])
        lo = _limit(trace, -1, c, step, lo_b)
        hi = _limit(trace, +1, c, step, hi_b)
        for x in (lo, hi):  # the limits themselves in the table (usually cached)
            if math.isfinite(x):
                trace(x)
        if n_grid > 0:
            a = lo if math.isfinite(lo) else trace.estimate - 3 * step
            b = hi if math.isfinite(hi) else trace.estimate + 3 * step
            for x in np.linspace(a, b, n_grid + 2)[1:-1]:
                trace(float(x))
        lower.append(lo)
        upper.append(hi)
        low_dev = min(low_dev, trace.lower_deviance)
        rows += [(names[i], x, z) for x, (z, _) in trace.points.items()]
    if low_dev < -1e-6 * max(1.0, abs(base)):
        warnings.warn(
            f"profiling found a deviance {-low_dev:.3g} below the ML fit's "
            f"({base:.10g}): the fit was not at its optimum; the intervals are "
            "those around the fit (lme4 stops: 'profiling detected new, lower "
            "deviance').",
            ConvergenceWarning,
            stacklevel=2,
        )
    sel = [names[i] for i in chosen]
    table = pd.DataFrame(rows, columns=["parameter", "value", "zeta"])
    order = {n: k for k, n in enumerate(sel)}
    table = (
        table.assign(_o=table["parameter"].map(order))
        .sort_values(["_o", "value"], kind="stable")
        .drop(columns="_o")
        .reset_index(drop=True)
    )
    return ProfileResult(
        intervals=pd.DataFrame({"lower": lower, "upper": upper}, index=sel),
        table=table,
        estimates=pd.Series(estimates, index=names, name="estimate"),
        deviance=base,
        level=float(level),
    )
