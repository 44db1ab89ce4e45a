"""Simulated regional imaging features (DTI and cortical thickness) with site effects.

Owns: the per-session values of the imaging features in
:data:`~alsprog.simulate._params.IMAGING_FEATURES` before and after site effects, the
site-effect table, and which metrics belong to which atlas region
(:data:`REGION_METRICS`, written into the simulated atlas's lookup table).
Leaves: choosing which visits are scanned to :mod:`alsprog.simulate._cohort`, voxel
maps to :mod:`alsprog.simulate._nifti`.

Model, for feature ``f`` of measure ``m`` (healthy mean ``mu``, healthy SD ``sd``)::

    pre = mu + age_per_year * (age - 60) + u_subject + als * (d * sd + change * r * years)
          + scan_noise
    observed = mu + scale[site, f] * (pre - mu) + offset[site, f]

``u_subject`` is shared between left and right (correlation ``imaging_lr_correlation``)
and its SD is set so that the healthy SD, age and scan noise included, is ``sd``; ``d``
is the ALS baseline effect as Cohen's d [docs/domain.md §6 Foerster 2012/2013]; ``r`` is the
patient's progression rate relative to ``|slope_mean|``, so imaging decline tracks
clinical aggressiveness [§6 Steinbach 2020/2021]; ``years`` is time since the first
visit. Site offsets are ``N(0, site_offset_sd * sd)`` and scales ``U(site_scale_min,
site_scale_max)`` [§6 Fortin 2017; §7 (assumption)].
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.simulate._params import IMAGING_FEATURES, CohortParams

__all__ = [
    "FEATURE_RANGES",
    "REGION_METRICS",
    "apply_site_effects",
    "draw_site_effects",
    "imaging_values",
]

_AGE_REFERENCE = 60.0

#: Valid range of each metric (data dictionary constraints); values are clipped to it.
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "fa": (0.0, 1.0),
    "md": (0.0, np.inf),
    "thickness": (0.0, 10.0),
}


def _metric(measure: str) -> str:
    return measure.split("_", 1)[0]


def _region_metrics() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for column, _ in IMAGING_FEATURES:
        metric, region = column.split("_", 1)
        out.setdefault(region, []).append(metric)
    return {r: tuple(m) for r, m in out.items()}


#: The metrics measured in each simulated atlas region: exactly the imaging features
#: of the cohort's table (``fa_cst_left`` -> FA in ``cst_left``): FA and MD in the
#: corticospinal tracts, FA in the motor corpus callosum, cortical thickness in the
#: precentral gyri and the left cuneus.  No thickness of a tract, no FA of cortex.
REGION_METRICS: dict[str, tuple[str, ...]] = _region_metrics()


def imaging_values(
    p: CohortParams,
    *,
    subject_index: npt.NDArray[np.int64],
    years: npt.NDArray[np.float64],
    age_at_baseline: npt.NDArray[np.float64],
    is_als: npt.NDArray[np.bool_],
    rate_ratio: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """Pre-site feature values, shape ``(n_sessions, n_features)``.

    ``subject_index`` maps each session to a subject (index into the per-subject
    arrays); ``years`` is the session time since the subject's first visit.
    ``rate_ratio`` is NaN-free (1.0 for controls; unused for them).
    """
    n_subj = len(age_at_baseline)
    measures = list(dict.fromkeys(m for _, m in IMAGING_FEATURES))
    shared = dict(
        zip(measures, rng.standard_normal((len(measures), n_subj)), strict=True)
    )
    own = rng.standard_normal((len(IMAGING_FEATURES), n_subj))
    noise = rng.standard_normal((len(years), len(IMAGING_FEATURES)))
    rho = p.imaging_lr_correlation
    age = age_at_baseline[subject_index] + years - _AGE_REFERENCE
    als = is_als[subject_index]
    ratio = np.where(als, rate_ratio[subject_index], 0.0)
    out = np.empty((len(years), len(IMAGING_FEATURES)))
    bilateral = {m for m in measures if sum(mm == m for _, mm in IMAGING_FEATURES) > 1}
    for j, (_, measure) in enumerate(IMAGING_FEATURES):
        metric = _metric(measure)
        mu = getattr(p, f"{measure}_hc_mean")
        sd = getattr(p, f"{measure}_hc_sd")
        age_slope = getattr(p, f"{metric}_age_per_year")
        scan_sd = getattr(p, f"{metric}_scan_sd")
        re_sd = np.sqrt(sd**2 - scan_sd**2 - (age_slope * p.age_at_onset_sd) ** 2)
        if measure in bilateral:
            u = np.sqrt(rho) * shared[measure] + np.sqrt(1 - rho) * own[j]
        else:
            u = shared[measure]
        value = mu + age_slope * age + re_sd * u[subject_index] + scan_sd * noise[:, j]
        d = getattr(p, f"{measure}_als_d", 0.0)
        change = getattr(p, f"{measure}_change_per_year", 0.0)
        value = value + np.where(als, d * sd + change * ratio * years, 0.0)
        out[:, j] = value
    return out


def draw_site_effects(
    p: CohortParams, sites: list[str], rng: np.random.Generator
) -> pd.DataFrame:
    """Site-effect table: one row per site and feature (``site, feature, offset, scale``).

    ``offset`` is in the feature's units (its SD is ``site_offset_sd`` healthy SDs) and
    ``scale`` multiplies the deviation from the healthy mean.
    """
    n_feat = len(IMAGING_FEATURES)
    z = rng.standard_normal((len(sites), n_feat))
    scale = rng.uniform(p.site_scale_min, p.site_scale_max, (len(sites), n_feat))
    sd = np.array([getattr(p, f"{m}_hc_sd") for _, m in IMAGING_FEATURES])
    offset = p.site_offset_sd * sd * z
    return pd.DataFrame(
        {
            "site": pd.array(np.repeat(sites, n_feat), dtype="str"),
            "feature": pd.array(
                [f for f, _ in IMAGING_FEATURES] * len(sites), dtype="str"
            ),
            "offset": offset.ravel(),
            "scale": scale.ravel(),
        }
    )


def apply_site_effects(
    p: CohortParams,
    pre: npt.NDArray[np.float64],
    site_index: npt.NDArray[np.int64],
    site_effects: pd.DataFrame,
) -> npt.NDArray[np.float64]:
    """Observed values: the site's scale around the healthy mean plus its offset."""
    n_feat = len(IMAGING_FEATURES)
    offset = site_effects["offset"].to_numpy().reshape(-1, n_feat)
    scale = site_effects["scale"].to_numpy().reshape(-1, n_feat)
    mu = np.array([getattr(p, f"{m}_hc_mean") for _, m in IMAGING_FEATURES])
    out = mu + scale[site_index] * (pre - mu) + offset[site_index]
    for j, (_, measure) in enumerate(IMAGING_FEATURES):
        low, high = FEATURE_RANGES[_metric(measure)]
        out[:, j] = np.clip(out[:, j], low, high)
    return out
