"""Along-tract group comparison of tract profiles with family-wise error control.

Owns: :func:`tract_profile_test` (ALS vs control at every position of a tract,
Welch t, FWER-adjusted p-values from the permutation distribution of max |t|, and
the significant clusters), :class:`TractProfileTest` (its result) and
:func:`max_t_permutation` (the numerics: arrays in, arrays out).
Leaves: reading profiles to :mod:`alsprog.imaging._tracts`; figures to
:mod:`alsprog.plots`.

The test follows Nichols & Holmes (2002): group labels are permuted between
subjects (one profile per subject), the largest |t| over positions is recorded for
each permutation, and a position's adjusted p-value is the share of permutations
(the observed labelling counted as one) whose max |t| reaches its |t|.  This is the
same max-statistic approach as pyAFQ/TractSeg's ``AFQ_MultiCompCorrection``
(Yeatman et al. 2012), applied to |t| rather than to p-values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._random import as_generator
from alsprog._validation import check_int, check_interval
from alsprog.errors import DataValidationError, ModelSpecificationError, Problem

__all__ = [
    "TractProfileTest",
    "fwer_p_values",
    "max_t_permutation",
    "tract_profile_test",
]


def _t_stat(
    s1: npt.NDArray[np.float64],
    q1: npt.NDArray[np.float64],
    total: npt.NDArray[np.float64],
    total_sq: npt.NDArray[np.float64],
    n1: int,
    n0: int,
    equal_var: bool,
) -> npt.NDArray[np.float64]:
    """t of group 1 minus group 0 from group-1 sums and the column totals."""
    m1 = s1 / n1
    m0 = (total - s1) / n0
    ss1 = np.maximum(q1 - n1 * m1 * m1, 0.0)
    ss0 = np.maximum((total_sq - q1) - n0 * m0 * m0, 0.0)
    if equal_var:
        pooled = (ss1 + ss0) / (n1 + n0 - 2)
        se2 = pooled * (1.0 / n1 + 1.0 / n0)
    else:
        se2 = ss1 / ((n1 - 1) * n1) + ss0 / ((n0 - 1) * n0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (m1 - m0) / np.sqrt(se2)


def max_t_permutation(
    y: npt.NDArray[np.float64],
    group: npt.NDArray[np.bool_],
    *,
    n_permutations: int = 5000,
    equal_var: bool = False,
    seed: Any = 0,
    chunk_size: int = 1000,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Pointwise t and the permutation distribution of max |t| over positions.

    Parameters
    ----------
    y : ndarray, shape (n_subjects, n_positions)
        One profile per subject.
    group : ndarray of bool, shape (n_subjects,)
        True for group 1 (ALS); t is group 1 minus group 0.
    n_permutations : int
        Random relabellings (the observed one is not among them).
    equal_var : bool
        Pooled-variance t when True, else Welch's t.
    seed : int, Generator or None
        Randomness of the relabellings.
    chunk_size : int
        Permutations per matrix product.

    Returns
    -------
    (ndarray, ndarray)
        Observed t per position, shape ``(n_positions,)``; max |t| of each
        permutation, shape ``(n_permutations,)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=(10, 4))
    >>> t, null = max_t_permutation(y, np.arange(10) < 5, n_permutations=200)
    >>> t.shape, null.shape, bool((null >= 0).all())
    ((4,), (200,), True)
    """
    rng = as_generator(seed)
    y = np.asarray(y, dtype=np.float64)
    g = np.asarray(group, dtype=bool)
    # t is unchanged by a shift and scale of each position: centring and scaling
    # first keeps the sums of squares free of cancellation
    sd = y.std(axis=0)
    sd[sd == 0] = 1.0
    z = (y - y.mean(axis=0)) / sd
    n1 = int(g.sum())
    n0 = len(g) - n1
    total = z.sum(axis=0)
    total_sq = (z * z).sum(axis=0)
    z2 = z * z
    gf = g.astype(np.float64)
    t_obs = _t_stat(gf @ z, gf @ z2, total, total_sq, n1, n0, equal_var)
    null = np.empty(n_permutations)
    base = np.tile(gf, (min(chunk_size, max(n_permutations, 1)), 1))
    done = 0
    while done < n_permutations:
        k = min(chunk_size, n_permutations - done)
        labels = rng.permuted(base[:k], axis=1)
        t = _t_stat(labels @ z, labels @ z2, total, total_sq, n1, n0, equal_var)
        null[done : done + k] = np.nanmax(np.abs(t), axis=1)
        done += k
    return t_obs, null


def fwer_p_values(
    t: npt.NDArray[np.float64], null: npt.NDArray[np.float64], *, alpha: float = 0.05
) -> tuple[npt.NDArray[np.float64], float]:
    """Max-statistic FWER-adjusted p-values and the critical |t|.

    ``p_j = (1 + #{b: null_b >= |t_j|}) / (1 + B)``; a position is significant at
    ``alpha`` when ``|t_j|`` exceeds the returned critical value, the ``(k + 1)``-th
    largest ``null_b`` with ``k = floor(alpha (B + 1)) - 1`` (``inf`` when
    ``k < 0``).

    Examples
    --------
    >>> p, crit = fwer_p_values(np.array([3.0, -1.0]), np.array([0.5, 1.5, 2.5, 3.5]),
    ...                         alpha=0.5)
    >>> p.tolist(), crit
    ([0.4, 0.8], 2.5)
    """
    abs_t = np.abs(np.asarray(t, dtype=np.float64))
    sorted_null = np.sort(np.asarray(null, dtype=np.float64))
    exceed = len(sorted_null) - np.searchsorted(sorted_null, abs_t, side="left")
    p = ((1.0 + exceed) / (1.0 + len(sorted_null))).astype(np.float64)
    # p <= alpha  <=>  at most k permutations reach |t|  <=>  |t| exceeds the
    # (k + 1)-th largest null max |t|
    k = int(np.floor(alpha * (len(sorted_null) + 1) - 1 + 1e-12))
    crit = float(sorted_null[::-1][k]) if 0 <= k < len(sorted_null) else float("inf")
    if k >= len(sorted_null):
        crit = 0.0
    return p, crit


@dataclass(frozen=True)
class TractProfileTest:
    """Result of :func:`tract_profile_test`.

    Attributes
    ----------
    positions : pandas.DataFrame
        One row per position: ``position``, ``percent`` (centre, % of the tract),
        ``mean_als``, ``mean_control``, ``difference`` (ALS - control), ``t``,
        ``p_fwer`` (adjusted for all positions), ``significant`` (``p_fwer <=
        alpha``).
    clusters : pandas.DataFrame
        Runs of adjacent significant positions: ``start``, ``stop`` (exclusive),
        ``n_positions``, ``percent_start``, ``percent_stop``, ``peak_position``,
        ``peak_t``, ``min_p_fwer``, ``mean_difference``.
    subjects : pandas.DataFrame
        The profile used per subject: ``subject_id``, ``session``, ``group``.
    t_critical : float
        A position is significant when its |t| exceeds it: the ``k + 1``-th
        largest permutation max |t|, ``k = floor(alpha (B + 1)) - 1`` (infinite
        when ``k < 0``: too few permutations for ``alpha``).
    max_t_null : ndarray
        max |t| of every permutation.
    bundle : str
    alpha : float
    n_permutations : int
    equal_var : bool
        True: pooled-variance t; False: Welch's t.
    """

    positions: pd.DataFrame
    clusters: pd.DataFrame
    subjects: pd.DataFrame
    t_critical: float
    max_t_null: npt.NDArray[np.float64]
    bundle: str
    alpha: float
    n_permutations: int
    equal_var: bool

    def __repr__(self) -> str:
        n = self.subjects["group"].value_counts()
        head = (
            f"TractProfileTest(bundle={self.bundle!r}, {n.get('als', 0)} ALS vs "
            f"{n.get('control', 0)} controls, {len(self.positions)} positions, "
            f"{self.n_permutations} permutations, FWER {self.alpha:g}: "
            f"|t| > {self.t_critical:.2f}"
        )
        if self.clusters.empty:
            return head + "; no significant position)"
        parts = [
            f"{c.percent_start:.0f}-{c.percent_stop:.0f} % (difference "
            f"{c.mean_difference:+.3g}, min p {c.min_p_fwer:.3g})"
            for c in self.clusters.itertuples()
        ]
        return head + "; significant along " + ", ".join(parts) + ")"


def _groups_series(groups: Any) -> pd.Series:
    if isinstance(groups, pd.DataFrame):
        missing = [c for c in ("subject_id", "group") if c not in groups.columns]
        if missing:
            raise ModelSpecificationError(
                f"`groups` needs columns subject_id and group; missing {missing}"
            )
        s = pd.Series(
            groups["group"].to_numpy(), index=groups["subject_id"].astype(str)
        )
    elif isinstance(groups, pd.Series):
        s = groups.copy()
        s.index = s.index.astype(str)
    elif isinstance(groups, Mapping):
        s = pd.Series(dict(groups))
        s.index = s.index.astype(str)
    else:
        raise TypeError(
            "`groups` must be a subjects table (subject_id, group), a Series or a "
            f"dict subject_id -> 'als'/'control'; got {type(groups).__name__}."
        )
    if s.index.duplicated().any():
        sid = s.index[s.index.duplicated()][0]
        raise ModelSpecificationError(f"`groups` lists subject {sid} twice")
    return s


def _natural(x: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", x))


def tract_profile_test(
    profiles: pd.DataFrame,
    groups: Any,
    *,
    bundle: str | None = None,
    session: str | None = "first",
    n_permutations: int = 5000,
    alpha: float = 0.05,
    equal_var: bool = False,
    seed: Any = 0,
    chunk_size: int = 1000,
) -> TractProfileTest:
    """ALS vs control difference along a tract, family-wise error controlled.

    Parameters
    ----------
    profiles : pandas.DataFrame
        Long profiles (``subject_id, session, bundle, position, value``) as
        :func:`read_tract_profiles` returns.
    groups : pandas.DataFrame, Series or dict
        ``group`` per subject: ``"als"`` or ``"control"`` (the subjects table, or
        ``subject_id -> group``).  Subjects with profiles but no group are an
        error; subjects in ``groups`` without profiles are ignored.
    bundle : str, optional
        The bundle to test (alsprog's name); required when ``profiles`` holds
        several.
    session : str or None, default "first"
        Permutations are between subjects, one profile each: ``"first"`` uses
        each subject's first session (session labels in natural order, so
        ``m00 < m06 < m12``); a label (``"m00"``) uses that session and drops
        subjects without it; ``None`` requires one session per subject.
    n_permutations : int, default 5000
        Random relabellings; the smallest possible ``p_fwer`` is
        ``1 / (n_permutations + 1)``.
    alpha : float, default 0.05
        Family-wise error rate for ``significant`` and the clusters.
    equal_var : bool, default False
        False: Welch's t (unequal variances); True: pooled-variance t.
    seed : int, Generator or None, default 0
    chunk_size : int, default 1000
        Permutations per matrix product (memory ``chunk_size × subjects``).

    Returns
    -------
    TractProfileTest

    Raises
    ------
    ModelSpecificationError
        Bundle not given or unknown; a session label nobody has; several sessions
        per subject with ``session=None``; fewer than 2 subjects in a group.
    DataValidationError
        Subjects without a group, a group other than als/control, or profiles of
        different lengths.

    Notes
    -----
    ``p_fwer(j) = (1 + #{b: max_k |t*_bk| >= |t_j|}) / (1 + B)`` [Nichols & Holmes
    2002, Hum Brain Mapp 15:1-25]; under the null of exchangeable profiles the
    chance of any false positive along the tract is at most ``alpha``.

    Examples
    --------
    >>> from alsprog.simulate._tracts import simulate_tract_profiles
    >>> sim = simulate_tract_profiles(20, 20, n_positions=50, effect_d=-3.0, seed=1)
    >>> res = tract_profile_test(sim.profiles, sim.subjects, bundle="cst_left",
    ...                          n_permutations=500, seed=1)
    >>> c = res.clusters.iloc[0]
    >>> int(c["start"]) <= 20 and int(c["stop"]) >= 30
    True
    """
    n_permutations = check_int(n_permutations, "n_permutations", low=1)
    chunk_size = check_int(chunk_size, "chunk_size", low=1)
    alpha = check_interval(
        alpha, "alpha", low=0, high=1, low_closed=False, high_closed=False
    )
    need = ["subject_id", "session", "bundle", "position", "value"]
    missing = [c for c in need if c not in profiles.columns]
    if missing:
        raise ModelSpecificationError(
            f"`profiles` needs columns {need}; missing {missing}"
        )
    found = list(dict.fromkeys(profiles["bundle"].astype(str)))
    if bundle is None:
        if len(found) != 1:
            raise ModelSpecificationError(
                f"`profiles` holds bundles {found}; choose one with bundle="
            )
        bundle = found[0]
    if bundle not in found:
        raise ModelSpecificationError(
            f"bundle {bundle!r} is not in `profiles`; it holds {found}"
        )
    df = profiles.loc[profiles["bundle"].astype(str) == bundle].copy()
    df["subject_id"] = df["subject_id"].astype(str)
    df["session"] = df["session"].astype(str)
    visits = df[["subject_id", "session"]].drop_duplicates()
    if session is None:
        counts = visits.groupby("subject_id").size()
        if (counts > 1).any():
            sid = counts.index[counts > 1][0]
            raise ModelSpecificationError(
                f"subject {sid} has {int(counts[sid])} sessions of {bundle!r}; "
                "permutations need one profile per subject: pass session='first' or "
                "a session label"
            )
        chosen = visits
    elif session == "first":
        chosen = (
            visits.assign(_k=visits["session"].map(_natural))
            .sort_values(["subject_id", "_k"])
            .groupby("subject_id", as_index=False)
            .first()[["subject_id", "session"]]
        )
    else:
        chosen = visits[visits["session"] == str(session)]
        if chosen.empty:
            raise ModelSpecificationError(
                f"no profile of {bundle!r} has session {session!r}; sessions: "
                f"{sorted(set(visits['session']), key=_natural)}"
            )
    df = df.merge(chosen, on=["subject_id", "session"])
    raw = _groups_series(groups)
    g = raw.where(raw.isna(), raw.astype(str).str.strip().str.lower())
    subjects = chosen.sort_values("subject_id").reset_index(drop=True)
    subjects["group"] = subjects["subject_id"].map(g)
    given = subjects["subject_id"].map(raw)
    problems = [
        Problem(
            "has profiles but no group in `groups`"
            if pd.isna(v)
            else f"group {v!r} is neither 'als' nor 'control'",
            rule="group",
            subject_id=sid,
            column="group",
            value=None if pd.isna(v) else v,
        )
        for sid, v, norm in zip(
            subjects["subject_id"], given, subjects["group"], strict=True
        )
        if pd.isna(norm) or norm not in ("als", "control")
    ]
    if problems:
        raise DataValidationError(problems, source="groups")
    wide = df.pivot(index="subject_id", columns="position", values="value")
    wide = wide.loc[subjects["subject_id"]]
    n_pos = wide.shape[1]
    if wide.isna().any().any() or not np.array_equal(
        wide.columns.to_numpy(), np.arange(n_pos)
    ):
        lengths = df.groupby("subject_id")["position"].max() + 1
        raise DataValidationError(
            [
                Problem(
                    f"profile of {bundle!r} has {int(n)} positions; others have "
                    f"{n_pos} (resample all profiles to one length)",
                    rule="length",
                    subject_id=str(sid),
                    column="position",
                )
                for sid, n in lengths.items()
                if n != n_pos
            ]
            or [Problem("positions are not 0..n-1 for every subject", rule="length")],
            source="profiles",
        )
    is_als = (subjects["group"] == "als").to_numpy()
    n1, n0 = int(is_als.sum()), int((~is_als).sum())
    if min(n1, n0) < 2:
        raise ModelSpecificationError(
            f"need at least 2 ALS and 2 control subjects with a profile of "
            f"{bundle!r}; got {n1} ALS, {n0} control"
        )
    y = wide.to_numpy(dtype=np.float64)
    t, null = max_t_permutation(
        y,
        is_als,
        n_permutations=n_permutations,
        equal_var=equal_var,
        seed=seed,
        chunk_size=chunk_size,
    )
    p_fwer, t_critical = fwer_p_values(t, null, alpha=alpha)
    mean_als = y[is_als].mean(axis=0)
    mean_ctl = y[~is_als].mean(axis=0)
    sig = p_fwer <= alpha
    percent = 100.0 * (np.arange(n_pos) + 0.5) / n_pos
    positions = pd.DataFrame(
        {
            "position": np.arange(n_pos, dtype=np.int64),
            "percent": percent,
            "mean_als": mean_als,
            "mean_control": mean_ctl,
            "difference": mean_als - mean_ctl,
            "t": t,
            "p_fwer": p_fwer,
            "significant": sig,
        }
    )
    clusters = _clusters(positions, n_pos)
    return TractProfileTest(
        positions=positions,
        clusters=clusters,
        subjects=subjects,
        t_critical=t_critical,
        max_t_null=null,
        bundle=bundle,
        alpha=float(alpha),
        n_permutations=n_permutations,
        equal_var=equal_var,
    )


def _clusters(positions: pd.DataFrame, n_pos: int) -> pd.DataFrame:
    sig = positions["significant"].to_numpy()
    edges = np.diff(np.concatenate([[0], sig.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    rows = []
    t = positions["t"].to_numpy()
    p = positions["p_fwer"].to_numpy()
    d = positions["difference"].to_numpy()
    for a, b in zip(starts, stops, strict=True):
        peak = a + int(np.argmax(np.abs(t[a:b])))
        rows.append(
            {
                "start": int(a),
                "stop": int(b),
                "n_positions": int(b - a),
                "percent_start": 100.0 * a / n_pos,
                "percent_stop": 100.0 * b / n_pos,
                "peak_position": int(peak),
                "peak_t": float(t[peak]),
                "min_p_fwer": float(p[a:b].min()),
                "mean_difference": float(d[a:b].mean()),
            }
        )
    cols = [
        "start",
        "stop",
        "n_positions",
        "percent_start",
        "percent_stop",
        "peak_position",
        "peak_t",
        "min_p_fwer",
        "mean_difference",
    ]
    return pd.DataFrame(rows, columns=cols)
