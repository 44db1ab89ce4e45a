"""Simulated imaging features: disease effects, ageing, decline and site effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alsprog.simulate import simulate_cohort
from alsprog.simulate._params import IMAGING_FEATURES

FEATURES = [f for f, _ in IMAGING_FEATURES]


@pytest.fixture(scope="module")
def pre_site(large_cohort):
    """Imaging truth (before site effects) with group, site and years since baseline."""
    c = large_cohort
    it = c.imaging_truth.merge(
        c.subjects[["subject_id", "group", "site", "age_at_baseline"]]
    )
    first = it.groupby("subject_id")["acquisition_date"].transform("min")
    it["years"] = (it["acquisition_date"] - first).dt.days / 365.25
    return it


def _cohens_d(df: pd.DataFrame, feature: str) -> float:
    a = df.loc[df["group"] == "als", feature]
    h = df.loc[df["group"] == "control", feature]
    return (a.mean() - h.mean()) / np.sqrt((a.var() + h.var()) / 2)


@pytest.mark.parametrize(
    ("feature", "d"),
    [
        # docs/domain.md §7 / §6 Foerster 2012/2013: AUC 0.75 ⇒ d ≈ −0.95 (CST FA)
        ("fa_cst_left", -0.95),
        ("fa_cst_right", -0.95),
        # §6 Li 2012, Zhang 2018 (approx.): MD up in the CST, CC motor FA down
        ("md_cst_left", 0.8),
        ("fa_cc_motor", -0.7),
        # §7: precentral thickness 2.5 ± 0.12 mm, ALS −0.15 mm ⇒ d = −1.25
        ("thickness_precentral_left", -1.25),
        # negative-control region: no ALS effect
        ("thickness_cuneus_left", 0.0),
    ],
)
def test_baseline_als_effect_before_site_effects(pre_site, feature, d):
    base = pre_site[pre_site["session"] == "m00"]
    # SE of d with 20,000 vs 2,000 subjects is about 0.024; tolerance 0.1
    assert _cohens_d(base, feature) == pytest.approx(d, abs=0.1)


@pytest.mark.parametrize(
    ("feature", "mean", "sd"),
    [
        ("fa_cst_left", 0.55, 0.03),  # docs/domain.md §7 CST FA HC 0.55 ± 0.03
        ("md_cst_right", 0.75, 0.04),  # brief: MD HC ≈ 0.75 ± 0.04 × 10^-3 mm²/s
        ("thickness_precentral_right", 2.5, 0.12),  # §7 precentral HC 2.5 ± 0.12 mm
    ],
)
def test_healthy_distribution(pre_site, feature, mean, sd):
    hc = pre_site[(pre_site["group"] == "control") & (pre_site["session"] == "m00")][
        feature
    ]
    assert hc.mean() == pytest.approx(mean, abs=sd * 0.1)
    assert hc.std() == pytest.approx(sd, rel=0.08)


def test_left_right_share_a_subject_effect(pre_site):
    hc = pre_site[(pre_site["group"] == "control") & (pre_site["session"] == "m00")]
    # imaging_lr_correlation = 0.7 on the random effect; age adds shared variance
    r = hc["fa_cst_left"].corr(hc["fa_cst_right"])
    assert 0.6 < r < 0.9


def test_fa_declines_with_age(pre_site, large_cohort):
    hc = pre_site[(pre_site["group"] == "control") & (pre_site["session"] == "m00")]
    slope = np.polyfit(hc["age_at_baseline"], hc["fa_cst_left"], 1)[0]
    assert slope == pytest.approx(large_cohort.params.fa_age_per_year, abs=0.0003)


def _per_subject_slope(df: pd.DataFrame, y: str) -> pd.Series:
    n = df.groupby("subject_id")["years"].transform("size")
    d = df[n >= 3]
    xc = d["years"] - d.groupby("subject_id")["years"].transform("mean")
    yc = d[y] - d.groupby("subject_id")[y].transform("mean")
    return (xc * yc).groupby(d["subject_id"]).sum() / (xc**2).groupby(
        d["subject_id"]
    ).sum()


def test_fa_decline_tracks_clinical_progression(pre_site, large_cohort):
    # docs/domain.md §6 (Steinbach 2020/2021): white-matter change linked to aggressiveness
    als = pre_site[pre_site["group"] == "als"]
    truth = large_cohort.truth.set_index("subject_id")
    fa = _per_subject_slope(als, "fa_cst_left")
    r = np.corrcoef(fa, truth.loc[fa.index, "slope_12m"])[0, 1]
    assert r > 0.4  # both negative for fast patients: positive correlation
    assert fa.mean() < 0
    md = _per_subject_slope(als, "md_cst_left")
    assert np.corrcoef(md, truth.loc[md.index, "slope_12m"])[0, 1] < -0.3


def test_precentral_near_flat_and_cuneus_unrelated(pre_site, large_cohort):
    # docs/domain.md §6 Schuster 2014: precentral thinning does not progress (floor at first
    # scan): yearly change well under 0.1 healthy SD (0.12 mm)
    als = pre_site[pre_site["group"] == "als"]
    hc = pre_site[pre_site["group"] == "control"]
    pre = _per_subject_slope(als, "thickness_precentral_left").mean()
    ageing = _per_subject_slope(hc, "thickness_precentral_left").mean()
    assert abs(pre - ageing) < 0.1 * 0.12
    truth = large_cohort.truth.set_index("subject_id")
    cun = _per_subject_slope(als, "thickness_cuneus_left")
    assert abs(np.corrcoef(cun, truth.loc[cun.index, "slope_12m"])[0, 1]) < 0.05


def test_observed_equals_pre_site_through_site_effects(large_cohort):
    c = large_cohort
    offset = c.site_effects.pivot(index="site", columns="feature", values="offset")
    scale = c.site_effects.pivot(index="site", columns="feature", values="scale")
    site = c.imaging["subject_id"].map(c.subjects.set_index("subject_id")["site"])
    for feature, measure in IMAGING_FEATURES:
        mu = getattr(c.params, f"{measure}_hc_mean")
        off = offset.loc[site, feature].to_numpy()
        sc = scale.loc[site, feature].to_numpy()
        expected = mu + sc * (c.imaging_truth[feature].to_numpy() - mu) + off
        np.testing.assert_allclose(c.imaging[feature], expected, rtol=1e-12)
    assert (
        (
            c.imaging[["subject_id", "session"]]
            == c.imaging_truth[["subject_id", "session"]]
        )
        .all()
        .all()
    )


def test_site_effect_ranges():
    # docs/domain.md §7 / §6 (assumption): offset ~ N(0, 0.5 SD), scale ~ U(0.8, 1.25);
    # 60 sites x 8 features = 480 draws: SD of offset/SD within 0.5 ± 0.05
    c = simulate_cohort(1, 0, months=0, n_sites=60, seed=3)
    sd = {f: getattr(c.params, f"{m}_hc_sd") for f, m in IMAGING_FEATURES}
    z = c.site_effects["offset"] / c.site_effects["feature"].map(sd)
    assert z.std() == pytest.approx(0.5, abs=0.05)
    assert abs(z.mean()) < 0.08
    scale = c.site_effects["scale"]
    assert scale.between(0.8, 1.25).all()
    assert scale.mean() == pytest.approx((0.8 + 1.25) / 2, abs=0.03)


def test_site_effects_shift_observed_site_means(large_cohort):
    # healthy controls only, baseline: site means differ by the offsets (after scale)
    c = large_cohort
    im = c.imaging.merge(c.subjects[["subject_id", "group", "site"]])
    hc = im[(im["group"] == "control") & (im["session"] == "m00")]
    eff = c.site_effects[c.site_effects["feature"] == "fa_cst_left"].set_index("site")
    observed = hc.groupby("site")["fa_cst_left"].mean()
    expected = (
        0.55 + eff["offset"]
    )  # healthy mean + offset; scale acts on ~0 deviations
    np.testing.assert_allclose(observed.sort_index(), expected.sort_index(), atol=0.004)


def test_imaging_values_within_dictionary_ranges(large_cohort):
    im = large_cohort.imaging
    assert im.filter(like="fa_").stack().between(0, 1).all()
    assert (im.filter(like="md_") > 0).all().all()
    assert im.filter(like="thickness_").stack().between(0, 10).all()
