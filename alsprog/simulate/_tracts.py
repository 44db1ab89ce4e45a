"""Simulated DTI tract profiles with a known, localised ALS effect.

Owns: :func:`simulate_tract_profiles` (FA profiles along the corticospinal tracts
of ALS patients and controls, in memory, with the truth) and
:func:`write_tract_profiles` (the same as TractSeg ``Tractometry`` CSVs, one per
subject × session, or as one pyAFQ ``tract_profiles.csv``, plus the mapping table
that :func:`alsprog.imaging.read_tract_profiles` needs).
Leaves: reading the files to :mod:`alsprog.imaging._tracts`; regional imaging
features of a cohort to :mod:`alsprog.simulate._imaging`.

Model, for subject ``i``, session at ``t`` years, position ``s = (j + 0.5) / n`` of a
bundle::

    fa_ij = mu(s) + u_i + w_i(s) + als_i * shift(s) + e_ij(s)

* ``mu(s)``: healthy CST profile (assumption, shape only): low near the brainstem
  end, a peak in the internal capsule / cerebral peduncle (``s ~ 0.35``), falling
  through the corona radiata towards cortex; shifted so that its mean over the
  tract is ``fa_cst_hc_mean`` = 0.55 [docs/domain.md §6-7].
* ``u_i ~ N(0, subject_sd²)`` and ``w_i(s)`` a Gaussian process with squared-
  exponential correlation ``exp(-(s - s')² / (2 length²))`` and SD ``profile_sd``:
  between-subject variation, correlated along the tract.  The pointwise healthy SD
  ``sqrt(subject_sd² + profile_sd²)`` defaults to 0.03 (``fa_cst_hc_sd``, §7).
* ``shift(s)`` is ``effect_d`` pointwise healthy SDs (default -0.95, the CST FA
  Cohen's d derived from AUC 0.75, §6 Foerster 2013) on the positions whose centre
  lies in ``effect_segment`` percent (default 40-60) and 0 elsewhere, plus
  ``change_per_year * t`` there for later sessions (``fa_cst_change_per_year``).
* ``e_ij(s) ~ N(0, scan_sd²)``, independent per position: scan noise
  (``fa_scan_sd``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._io import atomic_path, check_out_folder, write_manifest
from alsprog._random import as_generator
from alsprog._validation import check_choice, check_int, check_interval

__all__ = [
    "SimulatedTracts",
    "healthy_cst_profile",
    "simulate_tract_profiles",
    "write_tract_profiles",
]

# pyAFQ's names for the bundles (AFQ/api/bundle_dict.py default set)
_AFQ_NAMES = {"CST_left": "Left Corticospinal", "CST_right": "Right Corticospinal"}


class SimulatedTracts(NamedTuple):
    """Result of :func:`simulate_tract_profiles`.

    Attributes
    ----------
    profiles : pandas.DataFrame
        ``subject_id, session, bundle, position, value`` (alsprog bundle names).
    subjects : pandas.DataFrame
        ``subject_id, group`` (``"als"``/``"control"``).
    sessions : pandas.DataFrame
        ``subject_id, session, months, acquisition_date``.
    truth : pandas.DataFrame
        Per position: ``position``, ``percent``, ``healthy_mean``, ``shift``
        (ALS minus control at baseline), ``in_effect`` (inside the segment).
    bundles : tuple of str
        TractSeg bundle names (``"CST_left"``).
    """

    profiles: pd.DataFrame
    subjects: pd.DataFrame
    sessions: pd.DataFrame
    truth: pd.DataFrame
    bundles: tuple[str, ...]


def healthy_cst_profile(
    n_positions: int, mean: float = 0.55
) -> npt.NDArray[np.float64]:
    """Healthy CST FA along the tract (brainstem -> cortex), mean ``mean``.

    Examples
    --------
    >>> mu = healthy_cst_profile(100)
    >>> round(float(mu.mean()), 6), int(np.argmax(mu)) in range(25, 45)
    (0.55, True)
    """
    s = (np.arange(n_positions) + 0.5) / n_positions
    shape = (
        0.10 * np.exp(-(((s - 0.35) / 0.15) ** 2)) - 0.12 * s**2 - 0.04 * (1 - s) ** 4
    )
    return mean + shape - shape.mean()


def _bundle_name(name: str) -> str:
    # alsprog.imaging.bundle_name for TractSeg names (simulate must not import
    # imaging: imports point data -> simulate -> imaging)
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _segment_positions(a: int, b: int, n: int) -> npt.NDArray[np.intp]:
    # as alsprog.imaging._tracts.segment_positions: centre 100 (j + 0.5) / n in [a, b)
    centre2 = 100 * (2 * np.arange(n) + 1)
    return np.flatnonzero((centre2 >= 2 * a * n) & (centre2 < 2 * b * n))


@functools.lru_cache(maxsize=16)
def _gp_factor(n: int, length: float) -> npt.NDArray[np.float64]:
    s = (np.arange(n) + 0.5) / n
    k = np.exp(-((s[:, None] - s[None, :]) ** 2) / (2.0 * length**2))
    w, v = np.linalg.eigh(k)
    f = v * np.sqrt(np.clip(w, 0.0, None))  # k = f @ f.T, unit diagonal
    f.flags.writeable = False  # cached: shared between calls
    return f


def simulate_tract_profiles(
    n_als: int,
    n_controls: int,
    *,
    n_positions: int = 100,
    bundles: Sequence[str] = ("CST_left", "CST_right"),
    months: Sequence[float] = (0.0,),
    effect_d: float = -0.95,
    effect_segment: tuple[int, int] = (40, 60),
    change_per_year: float = -0.010,
    healthy_mean: float = 0.55,
    subject_sd: float = 0.015,
    profile_sd: float = 0.026,
    length: float = 0.1,
    scan_sd: float = 0.005,
    seed: Any = None,
) -> SimulatedTracts:
    """FA profiles of ALS patients and controls along the CSTs, with the truth.

    Parameters
    ----------
    n_als, n_controls : int
        Subjects per group (ids ``P001``... and ``C001``...).
    n_positions : int, default 100
        Positions per profile.
    bundles : sequence of str, default ("CST_left", "CST_right")
        TractSeg bundle names; every bundle gets the same model, drawn
        independently.
    months : sequence of float, default (0.0,)
        Session times; sessions are labelled ``m00``, ``m06``, ...
    effect_d : float, default -0.95
        ALS shift inside the segment in pointwise healthy SDs (§6 Foerster 2013).
    effect_segment : (int, int), default (40, 60)
        Segment in percent of the tract: positions whose centre
        ``100 (j + 0.5) / n`` lies in ``[a, b)``.
    change_per_year : float, default -0.010
        Further FA change per year in ALS inside the segment (§7).
    healthy_mean : float, default 0.55
        Healthy whole-tract mean FA (§7).
    subject_sd, profile_sd, length, scan_sd : float
        Subject offset SD, along-tract process SD and length scale (fraction of
        the tract), scan noise SD.

    Returns
    -------
    SimulatedTracts

    Examples
    --------
    >>> sim = simulate_tract_profiles(2, 2, n_positions=20, seed=0)
    >>> sim.profiles.shape, sorted(set(sim.profiles["bundle"]))
    ((160, 5), ['cst_left', 'cst_right'])
    """
    n_als = check_int(n_als, "n_als", low=0)
    n_controls = check_int(n_controls, "n_controls", low=0)
    if n_als + n_controls == 0:
        raise ValueError("`n_als` + `n_controls` must be at least 1; got 0.")
    n = check_int(n_positions, "n_positions", low=2)
    for name, v in (("subject_sd", subject_sd), ("profile_sd", profile_sd),
                    ("scan_sd", scan_sd)):  # fmt: skip
        check_interval(v, name, low=0.0)
    check_interval(length, "length", low=0.0, low_closed=False)
    check_interval(effect_d, "effect_d")
    check_interval(change_per_year, "change_per_year")
    check_interval(healthy_mean, "healthy_mean", low=0.0, high=1.0)
    a, b = effect_segment
    if not (0 <= a < b <= 100):
        raise ValueError(
            f"`effect_segment` must be (a, b) with 0 <= a < b <= 100; got {effect_segment!r}."
        )
    months = [float(check_interval(m, "months", low=0.0)) for m in months]
    if not months or len(set(months)) != len(months):
        raise ValueError(f"`months` must be distinct times; got {months!r}.")
    rng = as_generator(seed)
    n_subj = n_als + n_controls
    ids = [f"P{i + 1:03d}" for i in range(n_als)] + [
        f"C{i + 1:03d}" for i in range(n_controls)
    ]
    is_als = np.arange(n_subj) < n_als
    mu = healthy_cst_profile(n, healthy_mean)
    pos = _segment_positions(a, b, n)
    in_eff = np.zeros(n, dtype=bool)
    in_eff[pos] = True
    sd_point = float(np.hypot(subject_sd, profile_sd))
    shift = np.where(in_eff, effect_d * sd_point, 0.0)
    factor = _gp_factor(n, float(length))
    labels = [f"m{int(round(m)):02d}" for m in months]
    t_years = np.asarray(months) / 12.0
    rows = []
    for bundle in bundles:
        u = subject_sd * rng.standard_normal(n_subj)
        w = profile_sd * (rng.standard_normal((n_subj, n)) @ factor.T)
        for k, (lab, yrs) in enumerate(zip(labels, t_years, strict=True)):
            e = scan_sd * rng.standard_normal((n_subj, n))
            als_part = shift + np.where(in_eff, change_per_year * yrs, 0.0)
            value = mu + u[:, None] + w + is_als[:, None] * als_part + e
            value = np.clip(value, 0.0, 1.0)
            rows.append(
                pd.DataFrame(
                    {
                        "subject_id": np.repeat(ids, n),
                        "session": lab,
                        "bundle": _bundle_name(bundle),
                        "position": np.tile(np.arange(n, dtype=np.int64), n_subj),
                        "value": value.ravel(),
                        "_k": k,
                    }
                )
            )
    prof = pd.concat(rows, ignore_index=True)
    prof = prof.sort_values(["subject_id", "_k"], kind="stable").drop(columns="_k")
    for c in ("subject_id", "session", "bundle"):
        prof[c] = prof[c].astype("str")
    start = pd.Timestamp("2024-01-08")
    sessions = pd.DataFrame(
        {
            "subject_id": pd.array(np.repeat(ids, len(months)), dtype="str"),
            "session": pd.array(labels * n_subj, dtype="str"),
            "months": np.tile(months, n_subj),
            "acquisition_date": [
                start + pd.Timedelta(days=round(30.4375 * m)) for m in months
            ]
            * n_subj,
        }
    )
    subjects = pd.DataFrame(
        {
            "subject_id": pd.array(ids, dtype="str"),
            "group": pd.array(np.where(is_als, "als", "control"), dtype="str"),
        }
    )
    truth = pd.DataFrame(
        {
            "position": np.arange(n, dtype=np.int64),
            "percent": 100.0 * (np.arange(n) + 0.5) / n,
            "healthy_mean": mu,
            "shift": shift,
            "in_effect": in_eff,
        }
    )
    return SimulatedTracts(
        prof.reset_index(drop=True), subjects, sessions, truth, tuple(bundles)
    )


def write_tract_profiles(
    sim: SimulatedTracts,
    out_dir: str | os.PathLike[str],
    *,
    format: Literal["tractseg", "afq"] = "tractseg",
) -> Path:
    """Write simulated profiles in TractSeg's or pyAFQ's layout, plus a mapping.

    Parameters
    ----------
    sim : SimulatedTracts
        From :func:`simulate_tract_profiles`.
    out_dir : str or path-like
        Output folder: new, empty or an earlier alsprog result (its files are
        rewritten, each atomically); any other folder is refused (``OutputError``).
    format : {"tractseg", "afq"}, default "tractseg"
        ``"tractseg"``: ``sub-<id>_ses-<s>_Tractometry.csv`` per session as
        TractSeg's ``bin/Tractometry`` writes it (``np.savetxt(..., delimiter=";",
        header="CST_left;CST_right", comments="")``, values ``%.18e``), and
        ``mapping.csv`` (``path, subject_id, session, acquisition_date``).
        ``"afq"``: one ``tract_profiles.csv`` as pyAFQ's
        ``combine_list_of_profiles`` writes it (``tractID`` with pyAFQ's names,
        ``nodeID``, ``dti_fa``, ``subjectID``, ``sessionID``).

    Returns
    -------
    pathlib.Path
        The mapping file (TractSeg) or ``tract_profiles.csv`` (pyAFQ).

    Examples
    --------
    >>> import tempfile
    >>> sim = simulate_tract_profiles(1, 1, n_positions=10, seed=0)
    >>> write_tract_profiles(sim, tempfile.mkdtemp()).name
    'mapping.csv'
    """
    check_choice(format, "format", ("tractseg", "afq"))
    out = Path(out_dir)
    check_out_folder(out)  # never over files alsprog did not write
    out.mkdir(parents=True, exist_ok=True)
    prof = sim.profiles
    names = {_bundle_name(b): b for b in sim.bundles}
    if format == "afq":
        table = pd.DataFrame(
            {
                "tractID": [_AFQ_NAMES.get(names[b], names[b]) for b in prof["bundle"]],
                "nodeID": prof["position"].to_numpy(),
                "dti_fa": prof["value"].to_numpy(),
                "subjectID": prof["subject_id"].to_numpy(),
                "sessionID": prof["session"].to_numpy(),
            }
        )
        path = out / "tract_profiles.csv"
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False, float_format="%.18e")
        write_manifest(out, command="write_tract_profiles")
        return path
    rows = []
    dates = {
        (str(a), str(b)): pd.Timestamp(d)
        for a, b, d in zip(
            sim.sessions["subject_id"],
            sim.sessions["session"],
            sim.sessions["acquisition_date"],
            strict=True,
        )
    }
    for (sid, ses), g in prof.groupby(["subject_id", "session"], sort=True):
        wide = g.pivot(index="position", columns="bundle", values="value")
        order = [_bundle_name(b) for b in sim.bundles]
        fname = f"sub-{sid}_ses-{ses}_Tractometry.csv"
        with atomic_path(out / fname) as tmp:
            np.savetxt(
                tmp,
                wide[order].to_numpy(),
                delimiter=";",
                header=";".join(sim.bundles),
                comments="",
            )
        rows.append((fname, sid, ses, dates[(str(sid), str(ses))].strftime("%Y-%m-%d")))
    mapping = pd.DataFrame(
        rows, columns=["path", "subject_id", "session", "acquisition_date"]
    )
    path = out / "mapping.csv"
    with atomic_path(path) as tmp:
        mapping.to_csv(tmp, index=False)
    write_manifest(out, command="write_tract_profiles")
    return path
