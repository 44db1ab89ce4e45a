"""The Combined Assessment of Function and Survival (CAFS) of a trial table.

Owns: :func:`cafs_scores` (one score per patient) and :func:`cafs_test` (the
Wilcoxon rank-sum test of the scores between arms, asymptotic and by permutation)
with its result :class:`CafsTest`.
Leaves: the pair rule and its batched numerics to :mod:`alsprog.design._pairwise`,
reading survival and the change in function from the table to
:mod:`alsprog.design._endpoint_table`, simulated trials to
:mod:`alsprog.design._simulate`.

Every patient is compared with every other: on survival up to the horizon first
(the later death wins; a death loses to anyone known alive longer), then, when both
are known alive at the horizon, on the change in the outcome from baseline to the
horizon (the smaller loss wins); a pair whose order censoring hides is a tie, as
Finkelstein and Schoenfeld (1999) do.  A patient's score is wins minus losses; the
arms are compared by the rank-sum test of the scores (Berry et al. 2013).

References
----------
Finkelstein DM, Schoenfeld DA (1999). Combining mortality and longitudinal measures in
clinical trials. Stat Med 18:1341-1354.
Berry JD, Miller R, Moore DH, et al. (2013). The Combined Assessment of Function and
Survival (CAFS): a new endpoint for ALS clinical trials. Amyotroph Lateral Scler
Frontotemporal Degener 14:162-168.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from alsprog._random import as_generator
from alsprog._validation import check_int, check_interval
from alsprog.design._endpoint_table import (
    _arm_levels,
    _raise,
    _require,
    _subject_table,
    _subjects,
    horizon_endpoints,
)
from alsprog.design._pairwise import _midranks, cafs_scores_batch, rank_sum_z
from alsprog.errors import ModelSpecificationError, Problem

__all__ = ["CafsTest", "cafs_scores", "cafs_test"]


def _endpoints(
    table: pd.DataFrame,
    *,
    horizon_months: float,
    outcome: str,
    event_time: str,
    event: str,
    subject: str,
    months: str,
    change: str | None,
    window_months: float,
    missing: Literal["tie", "last"],
    extra: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, list[Problem]]:
    if change is None:
        return (
            horizon_endpoints(
                table,
                horizon_months=horizon_months,
                outcome=outcome,
                event_time=event_time,
                event=event,
                subject=subject,
                months=months,
                window_months=window_months,
                missing=missing,
            ),
            [],
        )
    h = check_interval(
        horizon_months,
        "horizon_months",
        low=0,
        low_closed=False,
        error=ModelSpecificationError,
    )
    return _subject_table(
        table,
        change=change,
        event_time=event_time,
        event=event,
        subject=subject,
        horizon=h,
        extra=extra,
    )


def cafs_scores(
    table: pd.DataFrame,
    *,
    horizon_months: float,
    outcome: str = "alsfrs_r_total",
    event_time: str = "death_or_tracheostomy_months",
    event: str = "event_observed",
    subject: str = "subject_id",
    months: str = "months",
    change: str | None = None,
    window_months: float = 1.0,
    missing: Literal["tie", "last"] = "tie",
) -> pd.Series:
    """CAFS score of every patient: wins minus losses against all other patients.

    Parameters
    ----------
    table : pandas.DataFrame
        Long visit table, one row per subject x visit, as read by
        :func:`horizon_endpoints`: ``months`` since baseline, the ``outcome`` per
        visit, and the subject's ``event_time`` and ``event`` repeated on its rows.
        With ``change`` given instead: one row per subject holding ``event_time``,
        ``event`` and the precomputed change (``months`` and ``outcome`` unused).
    horizon_months : float
        Months (> 0) to which survival is compared and at which function is.
    outcome, event_time, event, subject, months : str
        Column names (the data dictionary's by default).
    change : str, optional
        Column of a one-row-per-subject table holding the outcome at the horizon
        minus at baseline (missing: unknown; read only for patients known alive at
        the horizon).
    window_months : float, default 1.0
        Tolerance of the horizon visit (see :func:`horizon_endpoints`).
    missing : {"tie", "last"}, default "tie"
        A patient alive at the horizon without a horizon visit ties on function with
        every other alive patient (``"tie"``) or has its last value carried forward
        (``"last"``).

    Returns
    -------
    pandas.Series of int
        Named ``cafs_score``, indexed by subject (text, order of first appearance).
        Scores sum to 0.

    Raises
    ------
    DataValidationError
        Naming subject, column and value, for a missing column, a non-numeric value,
        a negative time or an invalid event flag.

    Notes
    -----
    The pair rule (``a`` vs ``b``), with a patient dead when the event is observed at
    or before the horizon, known alive when followed past it (or censored at it),
    censored otherwise: two deaths, the later wins (equal: tie); a death at ``t``
    loses to anyone known alive at ``t`` (censored at ``t`` or later counts as
    longer, as Gehan's rule does) and ties with anyone censored before ``t``; two
    patients alive at the horizon are ordered by ``change`` (larger wins, missing:
    tie); every other pair is a tie.  Computed by sorting
    (:func:`cafs_scores_batch`), not by looping over pairs.

    Examples
    --------
    >>> visits = pd.DataFrame({"subject_id": ["a", "a", "b", "b", "c", "c", "d"],
    ...     "months": [0, 12, 0, 12, 0, 6, 0], "alsfrs_r_total": [40, 34, 38, 36, 40,
    ...     31, 39], "death_or_tracheostomy_months": [13, 13, 12, 12, 7, 7, 3],
    ...     "event_observed": [0, 0, 0, 0, 1, 1, 1]})
    >>> cafs_scores(visits, horizon_months=12).tolist()
    [1, 3, -1, -3]
    """
    ep, problems = _endpoints(
        table,
        horizon_months=horizon_months,
        outcome=outcome,
        event_time=event_time,
        event=event,
        subject=subject,
        months=months,
        change=change,
        window_months=window_months,
        missing=missing,
    )
    _raise(problems)
    s = cafs_scores_batch(
        ep["event_time"].to_numpy(dtype=float),
        ep["event"].to_numpy(dtype=bool),
        ep["change"].to_numpy(dtype=float),
        float(horizon_months),
    )
    return pd.Series(s, index=ep.index, name="cafs_score")


@dataclass(frozen=True)
class CafsTest:
    """Result of :func:`cafs_test` (immutable).

    Attributes
    ----------
    statistic : float
        Wilcoxon rank-sum z of the CAFS scores with the tie correction; positive when
        the treated arm scores higher (does better).
    p_value : float
        Two-sided asymptotic p-value, ``2 * norm.sf(|statistic|)`` (equal to
        ``scipy.stats.mannwhitneyu(treated, control, use_continuity=False,
        method="asymptotic")``).
    p_value_permutation : float or None
        Two-sided permutation p-value ``(1 + #{|W* - E| >= |W - E|}) / (1 + B)`` over
        ``n_permutations`` relabellings of the arms; None when not asked for.
    n_permutations : int
    rank_sum : float
        Sum of the treated arm's mid-ranks ``W``.
    mean_rank_treatment, mean_rank_control : float
        Mean mid-rank of the scores per arm (1 = worst).
    mean_score_treatment, mean_score_control : float
        Mean CAFS score per arm.
    n_treatment, n_control : int
    treatment, control : object
        Labels of the two arms in the ``arm`` column.
    horizon_months : float
    scores : pandas.Series
        Every patient's score (see :func:`cafs_scores`).
    """

    statistic: float
    p_value: float
    p_value_permutation: float | None
    n_permutations: int
    rank_sum: float
    mean_rank_treatment: float
    mean_rank_control: float
    mean_score_treatment: float
    mean_score_control: float
    n_treatment: int
    n_control: int
    treatment: Any
    control: Any
    horizon_months: float
    scores: pd.Series = field(repr=False, compare=False)

    def table(self) -> pd.DataFrame:
        """Per arm: ``n``, ``mean_rank``, ``mean_score`` (rows treatment, control)."""
        return pd.DataFrame(
            {
                "n": [self.n_treatment, self.n_control],
                "mean_rank": [self.mean_rank_treatment, self.mean_rank_control],
                "mean_score": [self.mean_score_treatment, self.mean_score_control],
            },
            index=pd.Index([str(self.treatment), str(self.control)], name="arm"),
        )


def cafs_test(
    table: pd.DataFrame,
    *,
    arm: str,
    horizon_months: float,
    treatment: Any = None,
    outcome: str = "alsfrs_r_total",
    event_time: str = "death_or_tracheostomy_months",
    event: str = "event_observed",
    subject: str = "subject_id",
    months: str = "months",
    change: str | None = None,
    window_months: float = 1.0,
    missing: Literal["tie", "last"] = "tie",
    n_permutations: int = 0,
    seed: Any = None,
) -> CafsTest:
    """Compare two arms on CAFS: rank-sum test of the scores, asymptotic and exact.

    Parameters
    ----------
    table : pandas.DataFrame
        As for :func:`cafs_scores`, with the ``arm`` column (one value per subject,
        repeated on its rows).
    arm : str
        Column holding the arm; exactly two levels.
    horizon_months : float
        Months (> 0).
    treatment : object, optional
        The treated level of ``arm``; may be left out when the levels are True/False
        or 1/0 (True/1 is treated).
    outcome, event_time, event, subject, months, change, window_months, missing
        As for :func:`cafs_scores`.
    n_permutations : int, default 0
        Relabellings of the arms for the permutation p-value (0: none).
    seed : int, Generator or None
        Seed of the permutations.

    Returns
    -------
    CafsTest

    Raises
    ------
    DataValidationError
        As :func:`cafs_scores`; also when ``arm`` lacks two levels or differs between
        a subject's rows.
    ModelSpecificationError
        If ``treatment`` is not a level of ``arm`` or is needed and not given.

    Examples
    --------
    >>> subjects = pd.DataFrame({"subject_id": list("abcdef"),
    ...     "arm": ["drug"] * 3 + ["placebo"] * 3,
    ...     "death_or_tracheostomy_months": [12, 12, 9, 12, 5, 4],
    ...     "event_observed": [0, 0, 1, 0, 1, 1], "change": [-3, -5, None, -8, None,
    ...     None]})
    >>> res = cafs_test(subjects, arm="arm", treatment="drug", horizon_months=12,
    ...                 change="change", n_permutations=999, seed=1)
    >>> round(res.statistic, 4), round(res.p_value, 4), res.mean_rank_treatment
    (1.5275, 0.1266, 4.666666666666667)
    """
    n_perm = check_int(
        n_permutations, "n_permutations", low=0, error=ModelSpecificationError
    )
    if not isinstance(arm, str):
        raise ModelSpecificationError(f"`arm` must be a column name; got {arm!r}.")
    _require(table, [arm], {arm: "the arm of each subject"})
    ep, problems = _endpoints(
        table,
        horizon_months=horizon_months,
        outcome=outcome,
        event_time=event_time,
        event=event,
        subject=subject,
        months=months,
        change=change,
        window_months=window_months,
        missing=missing,
        extra=(arm,),
    )
    df = table.reset_index(drop=True)
    subjects, codes = _subjects(df, subject)
    is_t, t_label, c_label = _arm_levels(
        df, arm, treatment, subject, codes, len(subjects), problems
    )
    _raise(problems)
    is_t = pd.Series(is_t, index=subjects).reindex(ep.index).to_numpy(dtype=bool)
    s = cafs_scores_batch(
        ep["event_time"].to_numpy(dtype=float),
        ep["event"].to_numpy(dtype=bool),
        ep["change"].to_numpy(dtype=float),
        float(horizon_months),
    )
    sf = s.astype(float)
    z = float(rank_sum_z(sf, is_t))
    ranks, _ = _midranks(sf[None, :])
    r = ranks[0]
    n1, n0 = int(is_t.sum()), int((~is_t).sum())
    w = float(r[is_t].sum())
    p_perm = None
    if n_perm > 0:
        rng = as_generator(seed)
        labels = np.tile(is_t, (n_perm, 1))
        labels = rng.permuted(labels, axis=1)
        w_star = labels.astype(float) @ r
        centre = n1 * (len(r) + 1) / 2.0
        extreme = np.abs(w_star - centre) >= abs(w - centre) - 1e-9
        p_perm = float((1 + extreme.sum()) / (1 + n_perm))
    return CafsTest(
        statistic=z,
        p_value=float(2 * stats.norm.sf(abs(z))),
        p_value_permutation=p_perm,
        n_permutations=n_perm,
        rank_sum=w,
        mean_rank_treatment=w / n1,
        mean_rank_control=float(r[~is_t].mean()),
        mean_score_treatment=float(sf[is_t].mean()),
        mean_score_control=float(sf[~is_t].mean()),
        n_treatment=n1,
        n_control=n0,
        treatment=t_label,
        control=c_label,
        horizon_months=float(horizon_months),
        scores=pd.Series(s, index=ep.index, name="cafs_score"),
    )
