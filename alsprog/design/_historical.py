"""Historical patients as the source of simulated trials.

Owns: :class:`HistoricalCohort` (a long-format table of real patients, e.g. the
placebo arms of PRO-ACT, checked and put on a trial's visit grid: each patient's
outcome at the scheduled visits, survival time and event flag, and the pooled
Nelson–Aalen cumulative hazard) and the resampling of its patients into simulated
trials with a treatment applied (:meth:`HistoricalCohort.draw_trials`).
Leaves: the analysis of the trials to :mod:`alsprog.design._endpoint_analysis`, the
arguments and seeds to :mod:`alsprog.design._simulate`.

Treatment applied to a resampled patient of the treated arm:

- progression: the change from the patient's own baseline is multiplied by
  ``1 - slowing`` at every visit (``y_t = y_0 + (1 - s) (y_t - y_0)``): the treated
  patient loses a fraction ``s`` fewer points than the same patient did untreated;
- survival: the event time is moved so that the cumulative hazard is divided by the
  hazard ratio, ``T' = H^-1(H(T) / HR)`` with ``H`` the cohort's Nelson–Aalen
  estimate (exact for proportional hazards: ``T'`` then has hazard ``HR h(t)``); a
  moved time past the cohort's last event time is censored at the cohort's longest
  follow-up.  Visits after the original death stay missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.design._simulated_trials import _Chunk
from alsprog.errors import DataValidationError, ModelSpecificationError, Problem

__all__ = ["HistoricalCohort"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, repr=False, eq=False)
class HistoricalCohort:
    """Real patients, put on a trial's visit grid, to resample into simulated trials.

    Build it with :meth:`from_table`; :func:`~alsprog.design.simulate_power` takes it
    as ``source=``.

    Attributes
    ----------
    visit_months : tuple of float
        The trial's scheduled visits (months since randomisation; the first is 0).
    subjects : tuple of str
        Patients kept (those with an outcome at the baseline visit).
    y : ndarray, shape (n_patients, n_visits)
        Outcome at each scheduled visit (NaN where no visit fell in its window).
    time, event : ndarray, shape (n_patients,)
        Months from the first visit to death/tracheostomy (``event`` True) or to the
        last contact (False), a censored patient counted alive at least up to the
        last scheduled visit their visits fill; NaN when the table has no survival
        columns.
    window : float
        Half-width (months) of the window matching a visit to a scheduled visit.
    outcome : str
    n_dropped : int
        Patients left out for lack of a baseline outcome.

    Examples
    --------
    >>> from alsprog.data import assemble
    >>> from alsprog.simulate import simulate_cohort
    >>> c = simulate_cohort(60, months=12, seed=1)
    >>> long = assemble(c.visits, c.subjects)
    >>> h = HistoricalCohort.from_table(long, visit_months=[0, 3, 6, 9, 12])
    >>> h.y.shape, h.has_survival
    ((60, 5), True)
    """

    visit_months: tuple[float, ...]
    subjects: tuple[str, ...]
    y: Array = field(repr=False)
    time: Array = field(repr=False)
    event: npt.NDArray[np.bool_] = field(repr=False)
    window: float = 1.5
    outcome: str = "alsfrs_r_total"
    n_dropped: int = 0

    def __repr__(self) -> str:
        seen = np.isfinite(self.y).mean(axis=0)
        return (
            f"HistoricalCohort({len(self.subjects)} patients, visits "
            f"{list(self.visit_months)}, observed {np.round(seen, 2).tolist()}, "
            f"survival={'yes' if self.has_survival else 'no'})"
        )

    @property
    def has_survival(self) -> bool:
        """Whether every patient has a survival time and event flag."""
        return bool(np.all(np.isfinite(self.time)))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame,
        *,
        visit_months: Sequence[float] = (0.0, 3.0, 6.0, 9.0, 12.0),
        outcome: str = "alsfrs_r_total",
        subject: str = "subject_id",
        months: str = "months",
        event_time: str = "death_or_tracheostomy_months",
        event: str = "event_observed",
        arm: str | None = None,
        arm_values: Sequence[str] = (),
        window: float | None = None,
        source: str | None = None,
    ) -> HistoricalCohort:
        """Put a long-format table (one row per subject × visit) on the visit grid.

        Parameters
        ----------
        table : pandas.DataFrame
            Long format of the data dictionary: ``subject``, ``months`` (since the
            first visit), ``outcome``; ``event_time`` and ``event`` (one value per
            subject, repeated on its rows) for the survival endpoints.
        visit_months : sequence of float
            The trial's schedule (increasing, the first 0).
        outcome, subject, months, event_time, event : str
            Column names.
        arm, arm_values : optional
            Keep only rows whose ``arm`` column is one of ``arm_values`` (e.g. the
            placebo arms of PRO-ACT: ``arm="arm", arm_values=["placebo"]``).
        window : float, optional
            A visit counts for a scheduled visit within ± this many months (default:
            half the smallest gap of the schedule); the nearest visit wins.
        source : str, optional
            Name of the table in error messages (e.g. its file).

        Returns
        -------
        HistoricalCohort

        Raises
        ------
        DataValidationError
            Missing columns, non-numeric or negative months, survival values that
            differ within a subject or are missing, no patient with a baseline
            outcome; each problem names the column, subject and value.
        ModelSpecificationError
            A bad schedule or window.
        """
        grid = _check_grid(visit_months)
        if window is None:
            window = float(np.min(np.diff(grid))) / 2 if grid.size > 1 else 1.5
        if not (isinstance(window, int | float) and 0 < window < np.inf):
            raise ModelSpecificationError(
                f"`window` must be a positive number of months; got {window!r}."
            )
        name = source or "historical cohort table"
        if not isinstance(table, pd.DataFrame):
            raise ModelSpecificationError(
                f"`table` must be a pandas DataFrame; got {type(table).__name__}."
            )
        need = [subject, months, outcome] + ([arm] if arm is not None else [])
        missing = [c for c in need if c not in table.columns]
        if missing:
            raise DataValidationError(
                [
                    Problem(
                        f"column {c!r} is missing (columns: "
                        f"{', '.join(map(str, table.columns))})",
                        rule="required",
                        source=name,
                        column=c,
                    )
                    for c in missing
                ],
                source=name,
            )
        df = table
        if arm is not None:
            keep = df[arm].astype("str").str.strip().str.lower()
            wanted = {str(v).strip().lower() for v in arm_values}
            df = df.loc[keep.isin(wanted).to_numpy()]
            if df.empty:
                raise DataValidationError(
                    [
                        Problem(
                            f"no row has {arm} in {sorted(wanted)}",
                            rule="empty",
                            source=name,
                            column=arm,
                        )
                    ],
                    source=name,
                )
        m = _numeric(df, months, name, subject, low=0.0)
        y = _numeric(df, outcome, name, subject, low=None, allow_nan=True)
        subj = df[subject].astype("str").to_numpy()
        has_surv = event_time in df.columns and event in df.columns
        ids, inv = np.unique(subj, return_inverse=True)
        n_p, n_v = len(ids), grid.size
        Y = np.full((n_p, n_v), np.nan)
        best = np.full((n_p, n_v), np.inf)
        ok = np.isfinite(y)
        for j, g in enumerate(grid):
            d = np.abs(m - g)
            hit = ok & (d <= window)
            # nearest visit in the window: the smallest distance per patient
            order = np.lexsort((d, inv))
            order = order[hit[order]]
            first = np.ones(order.size, bool)
            first[1:] = inv[order][1:] != inv[order][:-1]
            rows = order[first]
            Y[inv[rows], j] = y[rows]
            best[inv[rows], j] = d[rows]
        time = np.full(n_p, np.nan)
        ev = np.zeros(n_p, bool)
        if has_surv:
            time, ev = _survival(df, subj, ids, inv, event_time, event, name)
            # a patient censored alive was seen at each scheduled visit they fill
            # (within the window): known alive then, though the last contact may
            # fall a little before it (PRO-ACT censors at the last visit, e.g.
            # 11.8 months for the 12-month visit)
            filled = np.where(np.isfinite(Y), grid[None, :], -np.inf).max(axis=1)
            time = np.where(ev, time, np.maximum(time, filled))
        keep = np.isfinite(Y[:, 0])
        if not keep.any():
            raise DataValidationError(
                [
                    Problem(
                        f"no patient has {outcome} at the baseline visit (months 0 ± "
                        f"{window:g})",
                        rule="empty",
                        source=name,
                        column=outcome,
                    )
                ],
                source=name,
            )
        return cls(
            visit_months=tuple(float(g) for g in grid),
            subjects=tuple(str(s) for s in ids[keep]),
            y=Y[keep],
            time=time[keep],
            event=ev[keep],
            window=float(window),
            outcome=outcome,
            n_dropped=int((~keep).sum()),
        )

    # ---------------------------------------------------------------- resampling
    @cached_property
    def _nelson_aalen(self) -> tuple[Array, Array]:
        """:meth:`cumulative_hazard`, computed once (each chunk of trials uses it)."""
        return self.cumulative_hazard()

    def cumulative_hazard(self) -> tuple[Array, Array]:
        """Nelson–Aalen estimate ``(event times, H at those times)`` of the cohort.

        Examples
        --------
        >>> h = HistoricalCohort((0.0,), ("a", "b"), np.zeros((2, 1)),
        ...                      np.array([1.0, 2.0]), np.array([True, True]))
        >>> h.cumulative_hazard()
        (array([1., 2.]), array([0.5, 1.5]))
        """
        if not self.has_survival:
            raise ModelSpecificationError(
                "the historical cohort has no survival columns "
                "(death_or_tracheostomy_months, event_observed)."
            )
        t, e = self.time, self.event
        times, d = np.unique(t[e], return_counts=True)
        n_risk = t.size - np.searchsorted(np.sort(t), times, side="left")
        return times.astype(float), np.cumsum(d / n_risk)

    def draw_trials(
        self,
        grid: npt.ArrayLike,
        n_t: int,
        n_c: int,
        k: int,
        rng: np.random.Generator,
        *,
        slowing: float,
        hazard_ratio: float,
    ) -> _Chunk:
        """``k`` trials of ``n_t`` treated and ``n_c`` control patients, resampled
        with replacement, treatment applied (module docstring); the same call as
        :meth:`~alsprog.design.CourseSource.draw_trials`.

        ``grid`` must be the cohort's own ``visit_months``.  Returns the chunk of
        trials: ``arm`` (k, n), ``y`` and ``mask`` (k, n, J), ``time`` and ``event``
        (k, n; None without survival columns): survival in months since
        randomisation, censored at the last scheduled visit.
        """
        if not np.array_equal(np.asarray(grid, float), self.visit_months):
            raise ModelSpecificationError(
                f"the historical cohort is on visits {list(self.visit_months)}; got "
                f"{list(np.asarray(grid, float))}."
            )
        n = n_t + n_c
        idx = rng.integers(0, len(self.subjects), (k, n))
        arm = np.zeros((k, n))
        arm[:, :n_t] = 1.0
        Y = self.y[idx]
        y0 = Y[..., :1]
        y = y0 + (1.0 - slowing * arm[..., None]) * (Y - y0)
        mask = np.isfinite(y)
        time = event = None
        if self.has_survival:
            t = self.time[idx].copy()
            e = self.event[idx].copy()
            if hazard_ratio != 1.0:
                t, e = self._move_events(t, e, arm > 0, hazard_ratio)
            # visits after death or last contact stay missing; administrative end
            end = self.visit_months[-1]
            event = e & (t <= end)
            time = np.minimum(t, end)
        return _Chunk(
            arm=arm,
            markers=np.zeros((k, n, 0)),
            y=np.where(mask, y, 0.0),
            mask=mask.astype(float),
            n_screened=np.full(k, n, dtype=np.int64),
            time=time,
            event=event,
        )

    def _move_events(
        self, t: Array, e: npt.NDArray[np.bool_], treated: Any, hr: float
    ) -> tuple[Array, npt.NDArray[np.bool_]]:
        times, H = self._nelson_aalen
        move = treated & e
        if not move.any() or times.size == 0:
            return t, e
        h_t = np.interp(t[move], times, H)  # H at the patient's event time
        target = h_t / hr
        beyond = target > H[-1]
        # the first time the (step) cumulative hazard reaches the target
        pos = np.searchsorted(H, target, side="left")
        new = times[np.minimum(pos, times.size - 1)]
        t2, e2 = t.copy(), e.copy()
        vals = np.where(beyond, float(np.max(self.time)), new)
        t2[move] = vals
        e2[move] = ~beyond
        return t2, e2


# ------------------------------------------------------------------------ checks
def _check_grid(visit_months: Sequence[float]) -> Array:
    try:
        grid = np.asarray(visit_months, dtype=float)
    except (TypeError, ValueError):
        raise ModelSpecificationError(
            f"`visit_months` must be numbers; got {visit_months!r}."
        ) from None
    if (
        grid.ndim != 1
        or grid.size < 2
        or not np.all(np.isfinite(grid))
        or grid[0] != 0
        or np.any(np.diff(grid) <= 0)
    ):
        raise ModelSpecificationError(
            "`visit_months` must be at least two increasing months starting at 0; "
            f"got {list(np.atleast_1d(grid))}."
        )
    return grid


def _numeric(
    df: pd.DataFrame,
    col: str,
    name: str,
    subject: str,
    *,
    low: float | None,
    allow_nan: bool = False,
) -> Array:
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    raw = df[col].to_numpy()
    bad = (np.isnan(values) & pd.notna(raw)) | (~allow_nan & np.isnan(values))
    if low is not None:
        bad |= values < low
    if bad.any():
        subj = df[subject].astype("str").to_numpy()
        what = "a number" + ("" if low is None else f" >= {low:g}")
        raise DataValidationError(
            _bad_rows(df, col, bad, subj, name, what, 50), source=name
        )
    return values


def _bad_rows(
    df: pd.DataFrame,
    col: str,
    bad: npt.NDArray[np.bool_],
    subj: Any,
    name: str,
    what: str,
    limit: int,
) -> list[Problem]:
    """One problem per bad row of ``col`` (the first ``limit``)."""
    raw = df[col].to_numpy()
    return [
        Problem(
            f"{raw[i]!r} is not {what}",
            rule="type",
            source=name,
            line=int(i) + 1,
            line_kind="row",
            subject_id=str(subj[i]),
            column=col,
            value=raw[i],
        )
        for i in np.flatnonzero(bad)[:limit]
    ]


def _survival(
    df: pd.DataFrame,
    subj: Any,
    ids: Any,
    inv: Any,
    event_time: str,
    event: str,
    name: str,
) -> tuple[Array, npt.NDArray[np.bool_]]:
    t = pd.to_numeric(df[event_time], errors="coerce").to_numpy(dtype=float)
    raw_e = df[event].astype("str").str.strip().str.lower().to_numpy()
    codes = {"true": 1.0, "1": 1.0, "1.0": 1.0, "yes": 1.0}
    codes.update({"false": 0.0, "0": 0.0, "0.0": 0.0, "no": 0.0})
    e = np.array([codes.get(v, np.nan) for v in raw_e])
    problems: list[Problem] = []
    for col, vals, what in (
        (event_time, t, "a number of months >= 0"),
        (event, e, "true or false"),
    ):
        bad = ~np.isfinite(vals) | ((vals < 0) if col == event_time else False)
        problems += _bad_rows(df, col, bad, subj, name, what, 20)
    if problems:
        raise DataValidationError(problems, source=name)
    time = np.full(len(ids), np.nan)
    ev = np.full(len(ids), np.nan)
    time[inv] = t
    ev[inv] = e
    differs = (np.abs(t - time[inv]) > 1e-9) | (e != ev[inv])
    if differs.any():
        i = int(np.flatnonzero(differs)[0])
        raise DataValidationError(
            [
                Problem(
                    "survival differs between the rows of one subject "
                    f"({event_time}={t[i]:g}, {event}={bool(e[i])} vs "
                    f"{time[inv[i]]:g}, {bool(ev[inv[i]])}); expected one value "
                    "per subject",
                    rule="consistent",
                    source=name,
                    line=i + 1,
                    line_kind="row",
                    subject_id=str(subj[i]),
                    column=event_time,
                    value=t[i],
                )
            ],
            source=name,
        )
    return time, ev.astype(bool)
