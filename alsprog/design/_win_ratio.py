"""Generalised pairwise comparisons of a trial table: net benefit, win ratio, win odds.

Owns: :class:`Priority` (one prioritised endpoint), :func:`win_ratio` (every treated
patient against every control, priority by priority) and its result
:class:`WinRatioResult` with asymptotic (U-statistic) and bootstrap intervals.
Leaves: the batched numerics for simulated trials and the first-order variance to
:mod:`alsprog.design._pairwise`; table checks to
:mod:`alsprog.design._endpoint_table`; CAFS to :mod:`alsprog.design._cafs`.

Scoring follows R's BuyseTest (Ozenne, Budtz-Jorgensen & Peron 2021) with
``scoring.rule = "Gehan"``, ``neutral.as.uninf = TRUE`` and ``correction.uninf = 0``:
a pair goes to the next priority when it is neutral (the difference is below the
threshold) or uninformative (censoring or a missing value hides the order);
survival with a ``horizon`` is BuyseTest's ``restriction``.

References
----------
Buyse M (2010). Generalized pairwise comparisons of prioritized outcomes in the
two-sample problem. Stat Med 29:3245-3257.
Pocock SJ, Ariti CA, Collier TJ, Wang D (2012). The win ratio: a new approach to the
analysis of composite endpoints in clinical trials based on clinical priorities. Eur
Heart J 33:176-182.
Dong G, Hoaglin DC, Qiu J, et al. (2020). The win ratio: on interpretation and
handling of ties. Stat Biopharm Res 12:99-106.
Brunner E, Vandemeulebroecke M, Mutze T (2021). Win odds: an adaptation of the win
ratio to include ties. Stat Med 40:3367-3384.
Ozenne B, Budtz-Jorgensen E, Peron J (2021). The asymptotic distribution of the
Net Benefit estimator in presence of right-censoring. Stat Methods Med Res
30:2399-2412.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from alsprog._random import as_generator
from alsprog._validation import check_choice, check_int, check_interval, check_level
from alsprog.design._endpoint_table import (
    _SOURCE,
    _arm_levels,
    _flags,
    _numbers,
    _raise,
    _require,
    duplicate_subjects,
)
from alsprog.design._pairwise import _ratio_stats, _u_moments
from alsprog.errors import ModelSpecificationError, Problem

__all__ = ["Priority", "WinRatioResult", "win_ratio"]

Kind = Literal["survival", "continuous", "binary"]
Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class Priority:
    """One endpoint of a hierarchy of generalised pairwise comparisons (immutable).

    Parameters
    ----------
    column : str
        Column of the endpoint (for ``"survival"``: months to the event or to the last
        contact, >= 0).
    kind : {"survival", "continuous", "binary"}, default "continuous"
        ``"survival"`` is right-censored (Gehan's rule, needs ``event``);
        ``"binary"`` holds True/False or 1/0; missing values are uninformative.
    direction : {"higher", "lower"}, default "higher"
        Which values are better (``"higher"``: a longer survival, a higher score).
    threshold : float, default 0.0
        Smallest difference (>= 0, in the column's units) that decides a pair; 0: any
        difference (BuyseTest's infinitesimal threshold).  Must be 0 for binary.
    event : str, optional
        For ``"survival"``: the event flag column (True/1: the event was observed).
    horizon : float, optional
        For ``"survival"``: follow-up is truncated at this time (BuyseTest's
        ``restriction``): patients followed past it count as event-free at it.

    Examples
    --------
    >>> Priority("death_or_tracheostomy_months", kind="survival",
    ...          event="event_observed", horizon=12.0)
    Priority(column='death_or_tracheostomy_months', kind='survival', direction='higher', threshold=0.0, event='event_observed', horizon=12.0)
    """

    column: str
    kind: Kind = "continuous"
    direction: Direction = "higher"
    threshold: float = 0.0
    event: str | None = None
    horizon: float | None = None

    def __post_init__(self) -> None:
        e = ModelSpecificationError
        if not isinstance(self.column, str):
            raise e(f"`column` must be a column name; got {self.column!r}.")
        check_choice(self.kind, "kind", ("survival", "continuous", "binary"), error=e)
        check_choice(self.direction, "direction", ("higher", "lower"), error=e)
        check_interval(self.threshold, "threshold", low=0, error=e)
        if self.kind == "binary" and self.threshold != 0:
            raise e(
                f"`threshold` must be 0 for a binary priority ({self.column!r}); got "
                f"{self.threshold!r}."
            )
        if self.kind == "survival":
            if not isinstance(self.event, str):
                raise e(
                    f"a survival priority ({self.column!r}) needs `event`, the column "
                    f"of its event flag; got {self.event!r}."
                )
            if self.horizon is not None:
                check_interval(
                    self.horizon, "horizon", low=0, low_closed=False, error=e
                )
        elif self.event is not None or self.horizon is not None:
            raise e(
                f"`event` and `horizon` apply to survival priorities only; "
                f"{self.column!r} is {self.kind}."
            )

    @property
    def label(self) -> str:
        """``column`` with its threshold and horizon, e.g. ``"change (>= 2)"``."""
        extra = []
        if self.threshold:
            extra.append(f">= {self.threshold:g}")
        if self.horizon is not None:
            extra.append(f"to {self.horizon:g}")
        return f"{self.column} ({', '.join(extra)})" if extra else self.column


@dataclass(frozen=True)
class WinRatioResult:
    """Result of :func:`win_ratio` (immutable).

    Fractions are of the ``n_treatment * n_control`` pairs; "favorable" means the
    treated patient wins.

    Attributes
    ----------
    favorable, unfavorable, ties : float
        Fractions of pairs won, lost and left undecided (neutral or uninformative at
        the last priority) over all priorities.
    net_benefit, net_benefit_se : float
        ``favorable - unfavorable`` (Buyse 2010) and its first-order U-statistic
        standard error.
    net_benefit_ci : tuple of float
        Asymptotic interval at ``level``, on the atanh scale and back-transformed
        (BuyseTest's default ``transformation = TRUE``).
    net_benefit_p : float
        Two-sided p-value of no net benefit (atanh scale).
    win_ratio, log_win_ratio_se, win_ratio_ci, win_ratio_p : float, tuple
        ``favorable / unfavorable`` (Pocock 2012), the delta-method standard error of
        its log, the interval on the log scale, and the p-value of a ratio of 1.
    win_odds, log_win_odds_se, win_odds_ci, win_odds_p : float, tuple
        ``(favorable + ties / 2) / (unfavorable + ties / 2)`` = ``(1 + NB) / (1 -
        NB)`` (Dong 2020; Brunner 2021), likewise.
    level : float
    n_bootstrap : int
    net_benefit_ci_bootstrap, win_ratio_ci_bootstrap, win_odds_ci_bootstrap : tuple or None
        Percentile intervals from ``n_bootstrap`` resamples of patients within each
        arm; None without bootstrap.
    net_benefit_se_bootstrap, log_win_ratio_se_bootstrap, log_win_odds_se_bootstrap : float or None
        Standard deviations of the bootstrap estimates (of the logs for the ratios).
    n_treatment, n_control : int
    treatment, control : object
        Labels of the arms.
    priorities : pandas.DataFrame
        One row per priority (index: its label): ``favorable``, ``unfavorable``
        (pairs decided there), ``neutral``, ``uninformative`` (pairs left undecided
        there, passed on), and cumulative up to it ``favorable_cum``,
        ``unfavorable_cum``, ``net_benefit``, ``net_benefit_se``, ``win_ratio``,
        ``log_win_ratio_se``, ``win_odds``, ``log_win_odds_se``.
    """

    favorable: float
    unfavorable: float
    ties: float
    net_benefit: float
    net_benefit_se: float
    net_benefit_ci: tuple[float, float]
    net_benefit_p: float
    win_ratio: float
    log_win_ratio_se: float
    win_ratio_ci: tuple[float, float]
    win_ratio_p: float
    win_odds: float
    log_win_odds_se: float
    win_odds_ci: tuple[float, float]
    win_odds_p: float
    level: float
    n_bootstrap: int
    net_benefit_ci_bootstrap: tuple[float, float] | None
    win_ratio_ci_bootstrap: tuple[float, float] | None
    win_odds_ci_bootstrap: tuple[float, float] | None
    net_benefit_se_bootstrap: float | None
    log_win_ratio_se_bootstrap: float | None
    log_win_odds_se_bootstrap: float | None
    n_treatment: int
    n_control: int
    treatment: Any
    control: Any
    priorities: pd.DataFrame = field(repr=False, compare=False)


# ------------------------------------------------------------------ pair scoring
def _score_priority(
    p: Priority,
    x_t: np.ndarray,
    x_c: np.ndarray,
    s_t: np.ndarray | None,
    s_c: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Favorable, unfavorable and neutral (n_T, n_C) matrices of one priority; the
    rest is uninformative.  ``s`` is the status: 1 event, 0.5 restricted, 0 censored
    (BuyseTest, src/FCT_calcOnePair.h, ``calcOnePair_Continuous`` and
    ``calcOnePair_TTEgehan``)."""
    xt, xc = x_t[:, None], x_c[None, :]
    tau = p.threshold
    with np.errstate(invalid="ignore"):
        if tau == 0:
            above, below = xt > xc, xt < xc
        else:
            above, below = xt >= xc + tau, xt <= xc - tau
    known = ~np.isnan(xt) & ~np.isnan(xc)
    if p.kind != "survival":
        fav, unf = known & above, known & below
        neu = known & ~above & ~below
    else:
        assert s_t is not None and s_c is not None
        st, sc = s_t[:, None], s_c[None, :]
        equal = xt == xc
        # event or restricted on both sides: compare times; both restricted: neutral
        both = (st > 0) & (sc > 0)
        both_r = (st == 0.5) & (sc == 0.5)
        fav = both & ~both_r & above
        unf = both & ~both_r & below
        neu = both & (both_r | (~above & ~below))
        # treated event/restricted, control censored: unfavorable when the treated
        # time is at most the control's (an equal time counts with threshold 0 and
        # an observed treated event: the censored one outlived it)
        t_ev = (st > 0) & (sc == 0)
        unf |= t_ev & (below | ((tau == 0) & (st == 1) & equal))
        c_ev = (st == 0) & (sc > 0)
        fav |= c_ev & (above | ((tau == 0) & (sc == 1) & equal))
    if p.direction == "lower":
        fav, unf = unf, fav
    return fav, unf, neu


def _pair_matrix_stats(fav: np.ndarray, unf: np.ndarray) -> dict[str, float]:
    n1, n0 = fav.shape
    nan_t, nan_c = np.full(n0, np.nan), np.full(n1, np.nan)
    f_t = np.concatenate([fav.mean(axis=1), nan_t])[None, :]
    u_t = np.concatenate([unf.mean(axis=1), nan_t])[None, :]
    f_c = np.concatenate([nan_c, fav.mean(axis=0)])[None, :]
    u_c = np.concatenate([nan_c, unf.mean(axis=0)])[None, :]
    mom = _u_moments(f_t, u_t, f_c, u_c, np.array([float(n1)]), np.array([float(n0)]))
    st = _ratio_stats(*mom)
    return {"favorable": float(mom[0][0]), "unfavorable": float(mom[1][0])} | {
        k: float(v[0]) for k, v in st.items()
    }


def _interval(est: float, se: float, z: float, kind: str) -> tuple[float, float]:
    if se == 0:  # as BuyseTest: a zero standard error stays zero once transformed
        return float(est), float(est)
    est, se = np.float64(est), np.float64(se)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "atanh":
            centre, half = np.arctanh(est), z * se / (1 - est * est)
            lo, hi = np.tanh(centre - half), np.tanh(centre + half)
        else:
            centre, half = np.log(est), z * se
            lo, hi = np.exp(centre - half), np.exp(centre + half)
    return float(lo), float(hi)


def _p_value(est: float, se: float, kind: str) -> float:
    est, se = np.float64(est), np.float64(se)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "atanh":
            zval = np.arctanh(est) / (se / (1 - est * est))
        else:
            zval = np.log(est) / se
    return float(2 * stats.norm.sf(abs(zval))) if np.isfinite(zval) else float("nan")


def _bootstrap(
    fav: np.ndarray,
    unf: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    level: float,
) -> dict[str, Any]:
    n1, n0 = fav.shape
    a = rng.multinomial(n1, np.full(n1, 1.0 / n1), size=n_boot).astype(float)
    b = rng.multinomial(n0, np.full(n0, 1.0 / n0), size=n_boot).astype(float)
    # a resample's fraction: sum_ij a_i F_ij b_j / (n1 n0), a and b the multiplicities
    pf = np.sum((a @ fav.astype(float)) * b, axis=1) / (n1 * n0)
    pu = np.sum((a @ unf.astype(float)) * b, axis=1) / (n1 * n0)
    nb = pf - pu
    with np.errstate(divide="ignore", invalid="ignore"):
        wr = pf / pu
        wo = (1 + nb) / (1 - nb)
    q = [(1 - level) / 2, (1 + level) / 2]

    def ci(x: np.ndarray) -> tuple[float, float]:
        # a ratio is NaN (0 / 0) in a resample without wins or losses: left out;
        # two infinite neighbours interpolate to NaN: then the order statistic
        x = x[~np.isnan(x)]
        if x.size == 0:
            return float("nan"), float("nan")
        with np.errstate(invalid="ignore"):
            lo, hi = np.quantile(x, q)
        if np.isnan(lo) or np.isnan(hi):
            lo, hi = np.quantile(x, q, method="inverted_cdf")
        return float(lo), float(hi)

    def sd_log(x: np.ndarray) -> float:
        with np.errstate(divide="ignore"):
            lx = np.log(x)
        lx = lx[np.isfinite(lx)]
        return float(np.std(lx, ddof=1)) if lx.size > 1 else float("nan")

    return {
        "net_benefit_ci_bootstrap": ci(nb),
        "win_ratio_ci_bootstrap": ci(wr),
        "win_odds_ci_bootstrap": ci(wo),
        "net_benefit_se_bootstrap": float(np.std(nb, ddof=1)),
        "log_win_ratio_se_bootstrap": sd_log(wr),
        "log_win_odds_se_bootstrap": sd_log(wo),
    }


# ------------------------------------------------------------------ table input
def _priority_values(
    df: pd.DataFrame, p: Priority, subject: str, problems: list[Problem]
) -> tuple[np.ndarray, np.ndarray | None]:
    if p.kind == "continuous":
        return _numbers(df, p.column, subject, problems), None
    if p.kind == "binary":
        return _flags(df, p.column, subject, problems), None
    assert p.event is not None
    x = _numbers(
        df,
        p.column,
        subject,
        problems,
        low=0,
        missing_ok=False,
        what="a follow-up time >= 0",
    )
    ev = _flags(df, p.event, subject, problems)
    for pos in np.flatnonzero(df[p.event].isna().to_numpy()):
        problems.append(
            Problem(
                "has no value (expected True/False or 1/0)",
                rule="required",
                source=_SOURCE,
                line=int(pos) + 1,
                subject_id=str(df[subject].iloc[pos]),
                column=p.event,
                value=None,
                line_kind="row",
            )
        )
    status = np.where(ev == 1, 1.0, 0.0)
    if p.horizon is not None:  # BuyseTest's restriction (R/BuyseTest.R)
        h = float(p.horizon)
        status = np.where((x > h) | ((x == h) & (status == 0)), 0.5, status)
        x = np.minimum(x, h)
    return x, status


def _check_priorities(priorities: Any) -> tuple[Priority, ...]:
    if isinstance(priorities, Priority):
        priorities = [priorities]
    try:
        items = tuple(priorities)
    except TypeError:
        items = ()
    if not items or not all(isinstance(p, Priority) for p in items):
        raise ModelSpecificationError(
            "`priorities` must be a non-empty sequence of Priority, e.g. "
            "[Priority('death_or_tracheostomy_months', kind='survival', "
            f"event='event_observed')]; got {priorities!r}."
        )
    return items


def win_ratio(
    table: pd.DataFrame,
    *,
    arm: str,
    priorities: Any,
    treatment: Any = None,
    subject: str = "subject_id",
    level: float = 0.95,
    n_bootstrap: int = 0,
    seed: Any = None,
) -> WinRatioResult:
    """Net benefit, win ratio and win odds of prioritised endpoints (Buyse 2010).

    Every treated patient is compared with every control on the first priority; a
    pair that is neutral (difference below the threshold) or uninformative
    (censoring or a missing value) goes on to the next.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject with ``subject``, ``arm`` and the priorities' columns
        (e.g. the output of :func:`horizon_endpoints` joined with the arm).
    arm : str
        Column of the arm; exactly two levels.
    priorities : sequence of Priority
        Endpoints in order of priority.
    treatment : object, optional
        Treated level of ``arm`` (may be left out for True/False or 1/0 levels).
    subject : str, default "subject_id"
        Subject column (named in error messages; one row each).
    level : float, default 0.95
        Coverage of the intervals.
    n_bootstrap : int, default 0
        Resamples for the bootstrap intervals, drawn within each arm (0: none).
    seed : int, Generator or None
        Seed of the bootstrap.

    Returns
    -------
    WinRatioResult

    Raises
    ------
    DataValidationError
        Naming subject, column and value: a column absent, a value that is not a
        number or flag, a negative or missing time, a duplicated subject, an arm
        without two levels.
    ModelSpecificationError
        For invalid priorities or ``treatment``.

    Notes
    -----
    The standard errors are first order in the Hoeffding (H-) decomposition of the
    two-sample U-statistics, as BuyseTest's ``method.inference = "u-statistic"``
    (src/FCT_calcStatistic.h, ``calcStatistic``): with ``s_ij`` the favorable
    (unfavorable) indicator of treated ``i`` vs control ``j`` and ``U`` its mean,
    ``Var(U) = sum_i (mean_j s_ij - U)^2 / m^2 + sum_j (mean_i s_ij - U)^2 / n^2``,
    and likewise the covariance of the favorable and unfavorable fractions.  The
    net benefit's variance is ``V_f + V_u - 2 C``; the win ratio's
    (R/BuyseTest-inference.R) is ``V_f / p_u^2 + V_u p_f^2 / p_u^4 - 2 C p_f /
    p_u^3``, so that of its log is ``V_f / p_f^2 + V_u / p_u^2 - 2 C / (p_f p_u)``;
    the win odds are ``(1 + NB) / (1 - NB)``, so the log's standard error is
    ``2 SE(NB) / (1 - NB^2)``.  Intervals use BuyseTest's transformations (atanh for
    the net benefit, log for the ratios; R/S4-BuyseTest-confint.R).

    BuyseTest's win odds (``add.halfNeutral = TRUE``) add half of the neutral pairs
    only; here every undecided pair counts as a tie (Dong 2020), so the two agree
    when no pair is left uninformative at the last priority.

    Examples
    --------
    >>> df = pd.DataFrame({"subject_id": list("abcdef"),
    ...     "arm": [1, 1, 1, 0, 0, 0],
    ...     "months": [12, 12, 9, 12, 5, 10], "died": [0, 0, 1, 0, 1, 0],
    ...     "change": [-3, -5, None, -8, None, None]})
    >>> res = win_ratio(df, arm="arm", priorities=[
    ...     Priority("months", kind="survival", event="died", horizon=12),
    ...     Priority("change", threshold=2)])
    >>> round(res.favorable, 4), round(res.unfavorable, 4), round(res.win_ratio, 4)
    (0.5556, 0.2222, 2.5)
    """
    items = _check_priorities(priorities)
    lev = check_level(level, error=ModelSpecificationError)
    n_boot = check_int(n_bootstrap, "n_bootstrap", low=0, error=ModelSpecificationError)
    if not isinstance(arm, str):
        raise ModelSpecificationError(f"`arm` must be a column name; got {arm!r}.")
    cols = [subject, arm]
    roles = {subject: "the subject column", arm: "the arm of each subject"}
    for p in items:
        cols.append(p.column)
        roles[p.column] = f"priority {p.label}"
        if p.event is not None:
            cols.append(p.event)
            roles[p.event] = f"event flag of priority {p.label}"
    _require(table, cols, roles)
    df = table.reset_index(drop=True)
    problems = duplicate_subjects(
        df,
        subject,
        "appears on more than one row (the table must have one row per subject)",
    )
    codes = np.arange(len(df))
    is_t, t_label, c_label = _arm_levels(
        df, arm, treatment, subject, codes, len(df), problems
    )
    values = [_priority_values(df, p, subject, problems) for p in items]
    _raise(problems)
    tr, ct = np.flatnonzero(is_t), np.flatnonzero(~is_t)
    n1, n0 = len(tr), len(ct)
    remaining = np.ones((n1, n0), dtype=bool)
    fav_all = np.zeros((n1, n0), dtype=bool)
    unf_all = np.zeros((n1, n0), dtype=bool)
    rows = []
    for p, (x, s) in zip(items, values, strict=True):
        fav, unf, neu = _score_priority(
            p, x[tr], x[ct], None if s is None else s[tr], None if s is None else s[ct]
        )
        fav &= remaining
        unf &= remaining
        neu &= remaining
        uninf = remaining & ~fav & ~unf & ~neu
        fav_all |= fav
        unf_all |= unf
        remaining = neu | uninf
        cum = _pair_matrix_stats(fav_all, unf_all)
        n_pairs = n1 * n0
        rows.append(
            {
                "favorable": fav.sum() / n_pairs,
                "unfavorable": unf.sum() / n_pairs,
                "neutral": neu.sum() / n_pairs,
                "uninformative": uninf.sum() / n_pairs,
                "favorable_cum": cum["favorable"],
                "unfavorable_cum": cum["unfavorable"],
                "net_benefit": cum["net_benefit"],
                "net_benefit_se": cum["net_benefit_se"],
                "win_ratio": cum["win_ratio"],
                "log_win_ratio_se": cum["log_win_ratio_se"],
                "win_odds": cum["win_odds"],
                "log_win_odds_se": cum["log_win_odds_se"],
            }
        )
    table_p = pd.DataFrame(
        rows, index=pd.Index([p.label for p in items], name="priority")
    )
    z = float(stats.norm.ppf((1 + lev) / 2))
    nb, se_nb = cum["net_benefit"], cum["net_benefit_se"]
    wr, se_wr = cum["win_ratio"], cum["log_win_ratio_se"]
    wo, se_wo = cum["win_odds"], cum["log_win_odds_se"]
    boot: dict[str, Any] = dict.fromkeys(
        [
            "net_benefit_ci_bootstrap",
            "win_ratio_ci_bootstrap",
            "win_odds_ci_bootstrap",
            "net_benefit_se_bootstrap",
            "log_win_ratio_se_bootstrap",
            "log_win_odds_se_bootstrap",
        ]
    )
    if n_boot > 0:
        boot = _bootstrap(fav_all, unf_all, n_boot, as_generator(seed), lev)
    return WinRatioResult(
        favorable=cum["favorable"],
        unfavorable=cum["unfavorable"],
        ties=1.0 - cum["favorable"] - cum["unfavorable"],
        net_benefit=nb,
        net_benefit_se=se_nb,
        net_benefit_ci=_interval(nb, se_nb, z, "atanh"),
        net_benefit_p=_p_value(nb, se_nb, "atanh"),
        win_ratio=wr,
        log_win_ratio_se=se_wr,
        win_ratio_ci=_interval(wr, se_wr, z, "log"),
        win_ratio_p=_p_value(wr, se_wr, "log"),
        win_odds=wo,
        log_win_odds_se=se_wo,
        win_odds_ci=_interval(wo, se_wo, z, "log"),
        win_odds_p=_p_value(wo, se_wo, "log"),
        level=lev,
        n_bootstrap=n_boot,
        n_treatment=n1,
        n_control=n0,
        treatment=t_label,
        control=c_label,
        priorities=table_p,
        **boot,
    )
