"""Data, mean curve and PyMC graph of the multivariate disease-course model.

Owns: the outcomes' ``(normal, floor)`` ranges (:data:`DEFAULT_BOUNDS`), the
normalisation, the checked table -> arrays step (:func:`prepare_course_data`,
:class:`CourseData`), the NumPy mean curve (:func:`course_mean`), the start values
(:func:`initial_curves`) and the PyMC graph (:func:`build_course_model`).
Leaves: the model's definition, priors and parameterisation (documented in
:mod:`alsprog.models.bayes._course`), the estimator and everything computed from
the draws to :class:`~alsprog.models.bayes._course.DiseaseCourseModel`.
PyMC, PyTensor and SciPy are imported inside the functions that use them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import DataValidationError, ModelSpecificationError, Problem

__all__ = [
    "DEFAULT_BOUNDS",
    "CourseData",
    "build_course_model",
    "course_mean",
    "initial_curves",
    "normalise",
    "prepare_course_data",
    "speed_info",
    "speed_information",
    "stage_map",
    "to_raw",
]

Array = npt.NDArray[np.float64]

_DOMAINS = (
    "alsfrs_r_bulbar",
    "alsfrs_r_fine_motor",
    "alsfrs_r_gross_motor",
    "alsfrs_r_respiratory",
)
#: ``(normal, floor)`` of each known outcome (raw units), mapped to 0 and 1: ALSFRS-R
#: domains 12-0 [Cedarbaum 1999]; FVC 100 % predicted (normal by definition) to 0;
#: FA of the corticospinal tracts and motor corpus callosum 0.55 (healthy CST FA,
#: docs/domain.md §6-7) to 0.45 (an assumed floor, ~18 % below healthy, so that the
#: typical 5-10 % ALS deficit sits mid-curve).  Pass ``bounds=`` for other outcomes.
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    **{d: (12.0, 0.0) for d in _DOMAINS},
    "fvc_percent_predicted": (100.0, 0.0),
    "fa_cst_left": (0.55, 0.45),
    "fa_cst_right": (0.55, 0.45),
    "fa_cc_motor": (0.55, 0.45),
}


@dataclass(frozen=True)
class CourseData:
    """The observed cells of a long table, normalised, as arrays.

    ``subject_ids`` and ``outcomes`` name the rows of the per-subject and
    per-outcome arrays; ``s``, ``k``, ``t``, ``y`` hold one observed cell each
    (subject index, outcome index, time, normalised value); ``normal``/``floor`` the
    outcome ranges; ``t_ref`` the median observed time; ``last_time`` each subject's
    last visit time with an observed cell; ``offset_mask`` which outcomes carry a
    healthy-level offset.
    """

    subject_ids: npt.NDArray[np.object_]
    outcomes: tuple[str, ...]
    s: npt.NDArray[np.int64]
    k: npt.NDArray[np.int64]
    t: Array
    y: Array
    normal: Array
    floor: Array
    t_ref: float
    last_time: Array
    mean_time: Array
    offset_mask: npt.NDArray[np.bool_]
    n_dropped: int


def normalise(x: Array, normal: Array, floor: Array) -> Array:
    """``(normal - x) / (normal - floor)``: 0 healthy, 1 floor.

    Examples
    --------
    >>> normalise(np.array([12.0, 3.0]), np.array(12.0), np.array(0.0))
    array([0.  , 0.75])
    """
    return (normal - x) / (normal - floor)


def to_raw(y: Array, normal: Array, floor: Array) -> Array:
    """Inverse of :func:`normalise`.

    Examples
    --------
    >>> to_raw(np.array([0.5]), np.array(100.0), np.array(0.0))
    array([50.])
    """
    return normal - y * (normal - floor)


def course_mean(
    t: Array,
    tau: Array,
    xi: Array,
    t0: Array,
    midpoint: Array,
    rate: Array,
    w: Array | float = 0.0,
    b: Array | float = 0.0,
) -> Array:
    """``expit(v (alpha (t - tau) + t0 - m) + w) + b``, broadcast over the arguments.

    Examples
    --------
    >>> float(course_mean(np.array(30.0), np.array(30.0), np.array(0.0),
    ...                   np.array(24.0), np.array(24.0), np.array(0.1)))
    0.5
    """
    from scipy.special import expit

    psi = np.exp(xi) * (t - tau) + t0
    return expit(rate * (psi - midpoint) + w) + b


def prepare_course_data(
    df: pd.DataFrame,
    outcomes: Sequence[str],
    *,
    subject: str,
    time: str,
    bounds: Mapping[str, tuple[float, float]],
    offsets: Sequence[str] = (),
) -> CourseData:
    """Check a long table and turn its observed cells into :class:`CourseData`.

    Raises
    ------
    ModelSpecificationError
        Missing column, unknown range, offsets naming a non-outcome.
    DataValidationError
        Non-numeric outcome values or a non-finite time on a row with an outcome.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`df` must be a pandas DataFrame; got {type(df).__name__}.")
    missing = [c for c in (subject, time, *outcomes) if c not in df.columns]
    if missing:
        raise ModelSpecificationError(
            f"the table lacks column(s) {', '.join(map(repr, missing))}; "
            f"it has {', '.join(map(repr, df.columns))}."
        )
    bad_off = [o for o in offsets if o not in outcomes]
    if bad_off:
        raise ModelSpecificationError(
            f"`offsets` names {', '.join(map(repr, bad_off))}, not among `outcomes`."
        )
    problems: list[Problem] = []
    vals = {}
    for o in outcomes:
        col = pd.to_numeric(df[o], errors="coerce")
        bad = col.isna() & df[o].notna()
        for i in np.flatnonzero(bad.to_numpy())[:20]:
            problems.append(
                Problem(
                    f"{df[o].iloc[i]!r} is not a number",
                    rule="type",
                    line=int(i) + 1,
                    line_kind="row",
                    subject_id=str(df[subject].iloc[i]),
                    column=o,
                    value=df[o].iloc[i],
                )
            )
        vals[o] = col.to_numpy(dtype=float)
    Y = np.column_stack([vals[o] for o in outcomes])
    Y[~np.isfinite(Y)] = np.nan
    tt = pd.to_numeric(df[time], errors="coerce").to_numpy(dtype=float)
    has_any = np.isfinite(Y).any(axis=1)
    for i in np.flatnonzero(has_any & ~np.isfinite(tt))[:20]:
        problems.append(
            Problem(
                f"{df[time].iloc[i]!r} is not a finite time",
                rule="type",
                line=int(i) + 1,
                line_kind="row",
                subject_id=str(df[subject].iloc[i]),
                column=time,
                value=df[time].iloc[i],
            )
        )
    if problems:
        raise DataValidationError(problems, source="disease-course table")
    keep = has_any & df[subject].notna().to_numpy()
    n_dropped = int((~keep).sum())
    if not keep.any():
        raise ModelSpecificationError(
            f"no row has an observed value of {', '.join(outcomes)}."
        )
    sid = df[subject].to_numpy()[keep]
    codes, subject_ids = pd.factorize(pd.Series(sid, dtype=object), sort=True)
    normal = np.array([bounds[o][0] for o in outcomes], dtype=float)
    floor = np.array([bounds[o][1] for o in outcomes], dtype=float)
    Yk = normalise(Y[keep], normal[None, :], floor[None, :])
    rows, ks = np.nonzero(np.isfinite(Yk))
    t = tt[keep][rows]
    s = codes[rows].astype(np.int64)
    last = np.full(len(subject_ids), -np.inf)
    np.maximum.at(last, s, t)
    return CourseData(
        subject_ids=np.asarray(subject_ids, dtype=object),
        outcomes=tuple(outcomes),
        s=s,
        k=ks.astype(np.int64),
        t=t,
        y=Yk[rows, ks],
        normal=normal,
        floor=floor,
        t_ref=float(np.round(np.median(t), 1)),
        last_time=last,
        mean_time=np.bincount(s, weights=t, minlength=len(subject_ids))
        / np.bincount(s, minlength=len(subject_ids)),
        offset_mask=np.array([o in offsets for o in outcomes], dtype=bool),
        n_dropped=n_dropped,
    )


def initial_curves(d: CourseData) -> tuple[Array, Array]:
    """Crude pooled logistic fit per outcome (half-way time, rate): start values.

    Least squares of ``y ~ expit(v (t - m))`` on each outcome's pooled cells, with
    ``v`` kept in [0.02, 0.5] and ``m`` within 60 months of the data.
    """
    from scipy.optimize import least_squares
    from scipy.special import expit

    K = len(d.outcomes)
    m = np.full(K, d.t_ref)
    v = np.full(K, 0.1)
    for k in range(K):
        sel = d.k == k
        t, y = d.t[sel], d.y[sel]
        lo, hi = t.min() - 60.0, t.max() + 60.0
        res = least_squares(
            lambda p, t=t, y=y: expit(p[1] * (t - p[0])) - y,
            x0=[float(np.clip(d.t_ref, lo, hi)), 0.1],
            bounds=([lo, 0.02], [hi, 0.5]),
        )
        m[k], v[k] = res.x
    return m, v


def speed_information(
    d: CourseData, m0: Array, v0: Array, *, iterations: int = 30
) -> tuple[Array, Array, Array]:
    """Each patient's likelihood summary for its stage and log speed, given the
    pooled curves ``(m0, v0)``: their centre, and the pieces of their information.

    A damped Gauss-Newton fit per patient (vectorised over patients) of its stage at
    its mean visit time and its log speed, ``y ~ expit(v_k (stage_i + e^xi_i (t -
    tbar_i) - m_k))``, with weak regularising priors (stage ``N(tbar_i, 24)``,
    ``xi_i ~ N(0, 0.5)``) and each outcome's residual SD from the pooled curve as
    weights.  Returns ``(a_hat, stage_hat, H)``: the fitted ``log(vbar alpha_i)``
    (``vbar`` the geometric mean of ``v0``: the scale of the graph's log speed), the
    fitted stage (months of latent time at ``tbar_i``) and, per patient
    and outcome, the Gauss-Newton information about ``(stage_i, xi_i)`` at unit
    residual SD (``H[i, k] = (h_ss, h_sx, h_xx)``), so that the information at
    residual SDs ``sigma`` is :func:`speed_info` ``(H, sigma)`` (and :func:`stage_map`
    uses the stage's).  Only the sampler's coordinates use them (:func:`build_course_model`); the model is the same
    whatever they are.

    Examples
    --------
    >>> d = CourseData(np.array(["a"], dtype=object), ("x",),
    ...     s=np.zeros(3, np.int64), k=np.zeros(3, np.int64),
    ...     t=np.array([0.0, 12.0, 24.0]), y=np.array([0.2, 0.5, 0.8]),
    ...     normal=np.ones(1), floor=np.zeros(1), t_ref=12.0,
    ...     last_time=np.array([24.0]), mean_time=np.array([12.0]),
    ...     offset_mask=np.zeros(1, bool), n_dropped=0)
    >>> a_hat, stage_hat, H = speed_information(d, np.array([12.0]), np.array([0.1]))
    >>> H.shape, bool(speed_info(H, np.array([0.05]))[0] > 0)
    ((1, 1, 3), True)
    """
    from scipy.special import expit

    N, K = len(d.subject_ids), len(d.outcomes)
    times, values, mask = visit_grid(d)
    M = mask.astype(float)
    dt = times - d.mean_time[:, None]  # (N, V)
    m = np.asarray(m0, dtype=float)[None, None, :]
    v = np.asarray(v0, dtype=float)[None, None, :]
    pooled = expit(np.asarray(v0)[d.k] * (d.t - np.asarray(m0)[d.k]))
    resid = np.bincount(d.k, weights=(d.y - pooled) ** 2, minlength=K)
    count = np.maximum(np.bincount(d.k, minlength=K), 1)
    weight = 1.0 / np.maximum(resid / count, 0.02**2)
    stage = d.mean_time.astype(float).copy()
    xi = np.zeros(N)

    def jacobians(stage: Array, xi: Array) -> tuple[Array, Array, Array]:
        alpha = np.exp(xi)[:, None]
        mu = expit(v * ((stage[:, None] + alpha * dt)[:, :, None] - m))
        js = mu * (1.0 - mu) * v * M  # d mu / d stage on the observed cells
        return values - mu, js, js * (alpha * dt)[:, :, None]

    for _ in range(iterations):
        r, js, jx = jacobians(stage, xi)
        gs = (r * js) @ weight
        gx = (r * jx) @ weight
        a = ((js * js) @ weight).sum(axis=1) + _STAGE_PRECISION
        b = ((js * jx) @ weight).sum(axis=1)
        c = ((jx * jx) @ weight).sum(axis=1) + _XI_PRECISION
        gs = gs.sum(axis=1) - _STAGE_PRECISION * (stage - d.mean_time)
        gx = gx.sum(axis=1) - _XI_PRECISION * xi
        det = a * c - b * b
        stage = stage + np.clip((c * gs - b * gx) / det, -12.0, 12.0)
        xi = xi + np.clip((a * gx - b * gs) / det, -0.5, 0.5)
    _, js, jx = jacobians(stage, xi)
    H = np.stack(
        [(js * js).sum(axis=1), (js * jx).sum(axis=1), (jx * jx).sum(axis=1)], axis=2
    )
    return float(np.mean(np.log(v0))) + xi, stage, H


#: Weak regularising priors of :func:`speed_information`'s per-patient fit.
_STAGE_PRECISION, _XI_PRECISION = 1.0 / 24.0**2, 1.0 / 0.5**2


def speed_info(H: Any, sigma: Any) -> Any:
    """Information about each patient's log speed with its stage profiled out, at
    residual SDs ``sigma`` (NumPy arrays or PyTensor variables alike), from
    :func:`speed_information`'s ``H``: ``h_xx - h_sx^2 / (h_ss + 1/24^2)``."""
    w = 1.0 / sigma**2
    hss = (H[:, :, 0] * w[None, :]).sum(axis=1)
    hsx = (H[:, :, 1] * w[None, :]).sum(axis=1)
    hxx = (H[:, :, 2] * w[None, :]).sum(axis=1)
    return hxx - hsx**2 / (hss + _STAGE_PRECISION)


def stage_map(
    H: Any,
    sigma: Any,
    u_hat: Any,
    a_delta: Any,
    prior_mean: Any,
    prior_sd: Any,
    vbar0: float,
) -> tuple[Any, Any]:
    """Centre and scale ``(c, s)`` of the graph's per-patient stage map ``u = c + s
    z`` (NumPy arrays or PyTensor variables alike).

    ``u_i = vbar (stage_i - centre)`` is the stage in logit units from the mean
    half-way time.  Its conditional posterior given the population and the speed is
    approximated by the prior ``N(prior_mean, prior_sd^2)`` (Leaspy's ``tau_i ~ N(t0,
    tau_sd)`` seen through ``stage_i = t0 + alpha_i (tbar_i - tau_i)``) times the
    likelihood's quadratic summary from :func:`speed_information`: centre ``u_hat``
    moved along the stage-speed correlation by ``a_delta = a_i - a_hat_i``,
    information ``h_ss / vbar0^2`` at residual SDs ``sigma``.
    """
    w = 1.0 / sigma**2
    huu = (H[:, :, 0] * w[None, :]).sum(axis=1) / vbar0**2
    hua = (H[:, :, 1] * w[None, :]).sum(axis=1) / vbar0
    u_cond = u_hat - hua / (huu + _STAGE_PRECISION / vbar0**2) * a_delta
    prec0 = 1.0 / prior_sd**2
    prec = huu + prec0
    return (huu * u_cond + prec0 * prior_mean) / prec, prec**-0.5


def visit_grid(
    d: CourseData,
) -> tuple[Array, Array, npt.NDArray[np.bool_]]:
    """The cells on a dense (subject, visit, outcome) grid: visit times ``(N, V)``
    (each subject's distinct times in order, padded), values ``(N, V, K)`` and the
    mask of observed cells.

    Examples
    --------
    >>> d = CourseData(np.array(["a", "b"], dtype=object), ("x", "y"),
    ...     s=np.array([0, 0, 0, 1]), k=np.array([0, 1, 0, 1]),
    ...     t=np.array([1.0, 1.0, 4.0, 2.0]), y=np.array([0.1, 0.2, 0.3, 0.4]),
    ...     normal=np.ones(2), floor=np.zeros(2), t_ref=2.0,
    ...     last_time=np.array([4.0, 2.0]), mean_time=np.array([2.0, 2.0]),
    ...     offset_mask=np.zeros(2, bool), n_dropped=0)
    >>> times, values, mask = visit_grid(d)
    >>> times.tolist(), mask[0].tolist(), mask[1].tolist()
    ([[1.0, 4.0], [2.0, 0.0]], [[True, True], [True, False]], [[False, True], [False, False]])
    """
    from alsprog._quadrature import padded

    N, K = len(d.subject_ids), len(d.outcomes)
    pairs = np.column_stack([d.s.astype(float), d.t])
    uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
    inv = np.ravel(inv)
    vs = uniq[:, 0].astype(np.intp)
    times, _ = padded(uniq[:, 1], vs, N)
    start = np.concatenate([[0], np.cumsum(np.bincount(vs, minlength=N))[:-1]])
    pos = (np.arange(len(vs)) - start[vs])[inv]
    values = np.zeros((N, times.shape[1], K))
    mask = np.zeros(values.shape, dtype=bool)
    values[d.s, pos, d.k] = d.y
    mask[d.s, pos, d.k] = True
    return times, values, mask


def build_course_model(d: CourseData, m0: Array, v0: Array) -> Any:
    """The PyMC graph of the model (see the module notes).

    The likelihood is summed on the dense (subject, visit, outcome) grid of
    :func:`visit_grid`, masked to the observed cells: broadcasting instead of
    per-cell gathers, whose gradients (scatter-adds) dominated the cost on CPU
    (80 patients x 5 outcomes: 0.6 ms per gradient with gathers).
    """
    import pymc as pm
    import pytensor.tensor as pt

    N, K = len(d.subject_ids), len(d.outcomes)
    times, values, mask = visit_grid(d)
    coords = {"subject_id": d.subject_ids, "outcome": list(d.outcomes)}
    offsets = [o for o, on in zip(d.outcomes, d.offset_mask, strict=True) if on]
    if offsets:
        coords["offset_outcome"] = offsets
    with pm.Model(coords=coords) as model:
        # Coordinates NUTS sees (see the notes of alsprog.models.bayes._course):
        # the latent axis in logit units of the mean rate vbar, so that the two
        # directions the data pin only weakly are single coordinates: Leaspy's
        # pivot (all stages and half-way times moving together: ``centre``, the
        # mean half-way time) and the trade of a common speed-up against the
        # rates (``log_v_mean``).
        tbar = d.mean_time
        centre0 = float(np.mean(m0))
        lv0 = float(np.mean(np.log(v0)))
        vbar0 = float(np.exp(lv0))
        t0 = pm.Normal("t0", mu=d.t_ref, sigma=12.0, initval=d.t_ref)
        # no factor of its own: its prior comes from the half-way times' m_k ~
        # N(t_ref, 24) below
        centre = pm.Flat("centre", initval=centre0)
        # iid N(log 0.1, 0.75) rates, written as their mean plus zero-sum part
        lv_mean = pm.Normal(
            "log_v_mean", mu=np.log(0.1), sigma=0.75 / np.sqrt(K), initval=lv0
        )
        if K > 1:
            lv_dev = pm.ZeroSumNormal(
                "log_v_dev", sigma=0.75, dims="outcome", initval=np.log(v0) - lv0
            )
        else:
            lv_dev = pt.zeros(1)
        log_v = pm.Deterministic("log_v", lv_mean + lv_dev, dims="outcome")
        v = pt.exp(log_v)
        rel = pt.exp(lv_dev)
        vbar = pt.exp(lv_mean)
        tau_sd = pm.HalfNormal("tau_sd", sigma=12.0, initval=6.0)
        xi_sd = pm.HalfNormal("xi_sd", sigma=0.5, initval=0.2)
        sigma = pm.HalfNormal(
            "sigma", sigma=0.2, dims="outcome", initval=np.full(K, 0.1)
        )
        # half-way times, logit units from the centre: m_k = centre + c_k / vbar,
        # c zero-sum (K - 1 free values; Jacobian vbar^-(K-1) up to a constant),
        # m_k ~ N(t_ref, 24) months
        c0 = vbar0 * (np.asarray(m0, dtype=float) - centre0)
        if K > 1:
            c_free = pm.Flat("c_free", shape=K - 1, initval=c0[:-1])
            c_vals = pt.concatenate([c_free, -c_free.sum(keepdims=True)])
        else:
            c_vals = pt.zeros(1)
        c_logit = pm.Deterministic("c_logit", c_vals, dims="outcome")
        m = pm.Deterministic("m", centre + c_logit / vbar, dims="outcome")
        pm.Potential(
            "c_prior",
            pm.logp(pm.Normal.dist(mu=d.t_ref, sigma=24.0), m).sum()
            - (K - 1) * lv_mean,
        )
        a_hat, stage_hat, H = speed_information(d, m0, v0)
        # log speed xi_i by a per-patient affine map of a free ``speed_z``: the
        # conditional posterior of xi_i given the population approximated by the
        # prior N(0, xi_sd) times the likelihood's quadratic summary (centre
        # a_hat_i - log vbar, information I_i at the current sigma from
        # :func:`speed_information` and :func:`speed_info`):
        # xi_i = c_i + s_i z_i, s_i = (I_i + xi_sd^-2)^-1/2, c_i = s_i^2 I_i
        # (a_hat_i - log vbar).  Non-centred where the data say little about a
        # patient's speed (no funnel with xi_sd), centred where they say much;
        # Jacobian sum log s_i.  The model itself is unchanged.
        info_c = speed_info(pt.constant(H), sigma)
        s_xi = 1.0 / pt.sqrt(info_c + xi_sd**-2)
        c_xi = s_xi**2 * info_c * (pt.constant(a_hat) - lv_mean)
        z_xi = pm.Flat("speed_z", dims="subject_id", initval=np.zeros(N))
        xi = pm.Deterministic("xi", c_xi + s_xi * z_xi, dims="subject_id")
        a = xi + lv_mean  # log of each patient's rate on the logit scale
        alpha = pt.exp(xi)
        # stage_i = psi_i(tbar_i) = centre + u_i / vbar (Jacobian vbar^-N), u_i by
        # the same kind of map of a free ``stage_z`` given the speed
        # (:func:`stage_map`): Leaspy's tau_i ~ N(t0, tau_sd) is u_i ~ N(vbar (t0 +
        # alpha_i (tbar_i - t0) - centre), vbar alpha_i tau_sd), so a small tau_sd
        # is no funnel either; Jacobian sum log s_i
        c_u, s_u = stage_map(
            pt.constant(H),
            sigma,
            pt.constant(vbar0 * (stage_hat - centre0)),
            a - pt.constant(a_hat),
            vbar * (t0 + alpha * (tbar - t0) - centre),
            vbar * alpha * tau_sd,
            vbar0,
        )
        z_u = pm.Flat("stage_z", dims="subject_id", initval=np.zeros(N))
        u = c_u + s_u * z_u
        stage = pm.Deterministic("stage", centre + u / vbar, dims="subject_id")
        # the prior on tau_i = tbar_i - (stage_i - t0) / alpha_i (Jacobian 1 /
        # alpha_i)
        tau = pm.Deterministic("tau", tbar - (stage - t0) / alpha, dims="subject_id")
        pm.Potential(
            "subject_prior",
            pm.logp(pm.Normal.dist(mu=t0, sigma=tau_sd), tau).sum()
            - xi.sum()
            + pm.logp(pm.Normal.dist(mu=0.0, sigma=xi_sd), xi).sum()
            + pt.log(s_xi).sum()
            + pt.log(s_u).sum()
            - N * lv_mean,
        )
        dt = (times - tbar[:, None])[:, :, None]  # (N, V, 1)
        eta = rel[None, None, :] * (
            u[:, None, None] + pt.exp(a)[:, None, None] * dt - c_logit[None, None, :]
        )
        if K > 1:
            w_sd = pm.HalfNormal("w_sd", sigma=8.0, initval=3.0)
            z_w = pm.Normal(
                "z_w",
                0.0,
                1.0,
                dims=("subject_id", "outcome"),
                initval=np.zeros((N, K)),
            )
            u = z_w * (w_sd * v)[None, :]
            w = pm.Deterministic(
                "w",
                u - pt.outer(pt.dot(u, v), v) / pt.dot(v, v),
                dims=("subject_id", "outcome"),
            )
            eta = eta + w[:, None, :]
        mu = pm.math.sigmoid(eta)
        if offsets:
            idx = np.flatnonzero(d.offset_mask)
            J = len(idx)
            b_sd = pm.HalfNormal(
                "b_sd", sigma=0.3, dims="offset_outcome", initval=np.full(J, 0.1)
            )
            z_b = pm.Normal(
                "z_b",
                0.0,
                1.0,
                dims=("subject_id", "offset_outcome"),
                initval=np.zeros((N, J)),
            )
            b = pm.Deterministic(
                "b", z_b * b_sd[None, :], dims=("subject_id", "offset_outcome")
            )
            # (N, K) offsets: b in the offset columns, 0 elsewhere (a constant
            # 0/1 matrix maps the J offset outcomes onto the K columns)
            place = np.zeros((J, K))
            place[np.arange(J), idx] = 1.0
            mu = mu + pt.dot(b, place)[:, None, :]
        # Normal log-density of the observed cells (masked grid)
        zscore = (values - mu) / sigma[None, None, :]
        cell = -0.5 * zscore**2 - pt.log(sigma)[None, None, :]
        const = -0.5 * np.log(2.0 * np.pi) * float(mask.sum())
        pm.Potential("y", pt.sum(pt.switch(mask, cell, 0.0)) + const)
    return model
