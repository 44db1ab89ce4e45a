"""simulate_cohort(progression_classes=...): K latent classes with known membership.

Oracles: the default path against fingerprints and values computed with the code
before classes existed (commit 176194f); class shares against the multinomial; each
class's realised 12-month slopes against its documented mean and SD (the calibration
target) within Monte-Carlo error; the copula to ΔFS and the bulbar multiplier by
least squares on log rates against their closed forms; the death law against its
closed form ``scale ∝ rate ** (-event_rate_exponent / event_weibull_shape)``.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from alsprog.errors import ModelSpecificationError
from alsprog.simulate import CohortParams, ProgressionClass, simulate_cohort
from alsprog.simulate._course import draw_course

TABLES = ("subjects", "visits", "imaging", "truth", "imaging_truth", "site_effects")
#: Three well-separated classes (points/month), as in the simulate_cohort docstring.
CLASSES = (
    ProgressionClass(0.3, slope_mean=-0.3, slope_sd=0.15, name="slow"),
    ProgressionClass(0.5, slope_mean=-1.0, slope_sd=0.3, name="typical"),
    ProgressionClass(0.2, slope_mean=-2.0, slope_sd=0.4, name="fast"),
)
N = 3000
#: Draws the rate calibration is solved on (alsprog.simulate._progression): the
#: class mean and SD hold exactly on them, so they add their own Monte-Carlo error.
CALIBRATION_DRAWS = 60_000


#: Columns added with permanent NIV and FVC (issue 25), after the fingerprints below.
NIV_FVC = [
    "niv_months",
    "niv_observed",
    "death_tracheostomy_or_niv_months",
    "death_tracheostomy_or_niv_observed",
    "fvc_liters",
    "fvc_percent_predicted",
    "niv_weibull_scale",
    "niv_months_since_onset",
]


def fingerprint(frames) -> str:
    """SHA-256 over (name, shape, column, values); floats as 10 significant digits so
    that an ulp-level libm difference on another machine does not change it."""
    h = hashlib.sha256()
    for name, df in frames:
        h.update(f"{name}:{df.shape}".encode())
        for col in df.columns:
            s = df[col]
            h.update(str(col).encode())
            if pd.api.types.is_datetime64_any_dtype(s):
                h.update(s.to_numpy("datetime64[ns]").astype(np.int64).tobytes())
            elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                v = s.to_numpy(dtype=float, na_value=np.nan)
                h.update(" ".join(f"{x:.10g}" for x in v).encode())
            else:
                h.update("\x1f".join(map(str, s.astype(object))).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(N, 40, months=12, seed=24, progression_classes=CLASSES)


@pytest.fixture(scope="module")
def patients(cohort):
    return cohort.truth[cohort.truth["group"] == "als"]


# --------------------------------------------------------------------------- default


# computed with the code of commit 176194f (before progression classes), this file's
# fingerprint(): the default path must give the same cohort for the same seed
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"n_patients": 40, "n_controls": 5, "seed": 7},
            "dd066b2f2b38f7e6d570a022fe68580804ce3e19f0dec8280fc6cdcaeaeca2ad",
        ),
        (
            {
                "n_patients": 25,
                "months": 24,
                "seed": 123,
                "params": {"slope_mean": -1.3},
            },
            "04b1c8763adc435b429ad995d039578a813c506080ec1a6d9fb873b7dd25ddf9",
        ),
    ],
)
def test_default_path_is_unchanged(kwargs, expected):
    c = simulate_cohort(**kwargs)
    # the NIV and FVC columns came later, from a stream of their own: every other
    # column must be what it was
    old = ((t, getattr(c, t).drop(columns=NIV_FVC, errors="ignore")) for t in TABLES)
    assert fingerprint(old) == expected
    assert "progression_class" not in c.truth.columns
    assert c.progression_classes is None
    explicit = simulate_cohort(**kwargs, progression_classes=None)
    for t in TABLES:
        assert_frame_equal(getattr(explicit, t), getattr(c, t))


def test_default_path_values_are_unchanged():
    c = simulate_cohort(40, 5, seed=7)
    tr = c.truth.set_index("subject_id").loc[["P0001", "P0002", "P0003"]]
    # printed with repr() by the code of commit 176194f
    np.testing.assert_allclose(
        tr["progression_rate"],
        [0.29132890498557373, 0.4729692662142679, 1.0648549853205338],
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        tr["d50"],
        [58.33357524415398, 44.18935868310575, 27.007055365447044],
        rtol=1e-12,
    )
    p1 = c.visits.loc[c.visits["subject_id"] == "P0001", "alsfrs_r_total"]
    assert p1.tolist() == [36.0, 38.0, 38.0, 36.0, 35.0, 39.0, 32.0]
    assert list(c.truth.columns) == [
        "subject_id", "group", "onset_site", "months_onset_to_baseline",
        "baseline_total", "delta_fs", "progression_rate", "slope_12m", "d50", "dx",
        "event_weibull_scale", "event_months_since_onset", "niv_weibull_scale",
        "niv_months_since_onset", "dropout_months", "study_end_months",
    ]  # fmt: skip


def test_trial_simulator_course_is_unchanged():
    """draw_course (alsprog.design's trial simulator) shares draw_rate."""
    d = draw_course(CohortParams(), 50, np.random.default_rng(3))
    assert (
        fingerprint((k, pd.DataFrame({k: d[k]})) for k in sorted(d))
        == "4ed430b1a0b31b43bdf3ef124b8e9bf5001b8a1b30f49b4faee4737f5fc9ff08"
    )
    assert d["rate"][0] == pytest.approx(0.9520447806037009, rel=1e-12)
    assert d["d50"][1] == pytest.approx(43.1150999341833, rel=1e-12)


# --------------------------------------------------------------------------- layout


def test_truth_column_and_metadata(cohort, patients):
    t = cohort.truth
    cols = list(t.columns)
    assert cols[cols.index("delta_fs") + 1] == "progression_class"
    assert str(t["progression_class"].dtype) == "Int64"
    assert t.loc[t["group"] == "control", "progression_class"].isna().all()
    assert set(patients["progression_class"]) == {1, 2, 3}
    assert cohort.progression_classes == CLASSES
    assert repr(cohort).startswith(f"Cohort({N} patients, 40 controls, ") and repr(
        cohort
    ).endswith(", 3 progression classes, seed=24)")


def test_controls_only_cohort_has_an_empty_class_column():
    c = simulate_cohort(0, 3, months=6, seed=1, progression_classes=CLASSES)
    assert c.truth["progression_class"].isna().all()
    assert str(c.truth["progression_class"].dtype) == "Int64"


def test_shares_are_recovered(patients):
    counts = patients["progression_class"].value_counts().sort_index()
    expected = N * np.array([c.share for c in CLASSES])
    se = np.sqrt(expected * (1 - expected / N))  # multinomial
    assert counts.index.tolist() == [1, 2, 3]
    assert np.all(np.abs(counts.to_numpy() - expected) < 4 * se), counts.tolist()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_class_slopes_have_the_class_mean_and_sd(patients, k):
    """The documented calibration target, per class: true 12-month slopes (floor and
    bulbar multiplier included) with the class's slope_mean and slope_sd."""
    c = CLASSES[k - 1]
    s = patients.loc[patients["progression_class"] == k, "slope_12m"].to_numpy()
    n = len(s)
    # Monte-Carlo error of the cohort plus that of the calibration draws
    se_mean = s.std() * math.sqrt(1 / n + 1 / CALIBRATION_DRAWS)
    assert abs(s.mean() - c.slope_mean) < 4 * se_mean
    m4 = np.mean((s - s.mean()) ** 4)
    se_sd = math.sqrt(max(m4 - s.var() ** 2, 0.0) / (4 * s.var()) / n)
    assert abs(s.std(ddof=1) - c.slope_sd) < 4 * se_sd + 4 * c.slope_sd / math.sqrt(
        2 * CALIBRATION_DRAWS
    )


@pytest.mark.parametrize("k", [1, 2, 3])
def test_copula_and_bulbar_multiplier_hold_within_class(patients, k):
    """log rate = mu_k + sigma_k (r z_dFS + sqrt(1 - r^2) e) + log(mult) * bulbar with
    log ΔFS = mu_d + s_d z_dFS: least squares on [1, log ΔFS, bulbar] gives the
    bulbar coefficient log(1.15), and coef(log ΔFS) * s_d / residual SD equals
    r / sqrt(1 - r^2) whatever mu_k and sigma_k (selection on ΔFS does not bias it)."""
    p = CohortParams()
    g = patients[patients["progression_class"] == k]
    X = np.c_[np.ones(len(g)), np.log(g["delta_fs"]), g["onset_site"] == "bulbar"]
    y = np.log(g["progression_rate"].to_numpy())
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    s2 = resid @ resid / (len(y) - 3)
    cov = s2 * np.linalg.inv(X.T @ X)
    assert abs(beta[2] - math.log(p.bulbar_slope_multiplier)) < 4 * math.sqrt(cov[2, 2])
    s_d = math.sqrt(math.log1p((p.delta_fs_sd / p.delta_fs_mean) ** 2))
    r = p.slope_delta_fs_correlation
    ratio = beta[1] * s_d / math.sqrt(s2)
    se_ratio = math.sqrt(cov[1, 1]) * s_d / math.sqrt(s2)
    assert abs(ratio - r / math.sqrt(1 - r**2)) < 4 * se_ratio


def test_death_law_is_the_populations(patients):
    """scale = ref * (rate / |slope_mean|) ** (-exponent / shape) with the reference
    of CohortParams, in every class: scale * rate ** (exponent / shape) is constant."""
    p = CohortParams()
    x = patients["event_weibull_scale"] * patients["progression_rate"] ** (
        p.event_rate_exponent / p.event_weibull_shape
    )
    np.testing.assert_allclose(x, x.iloc[0], rtol=1e-10)
    fast = patients["progression_class"] == 3
    assert (
        patients.loc[fast, "event_weibull_scale"].median()
        < patients.loc[~fast, "event_weibull_scale"].median()
    )


# --------------------------------------------------------------------------- seeds


def test_same_seed_same_cohort_and_dicts_equal_classes():
    dicts = [c.to_dict() for c in CLASSES]
    a = simulate_cohort(60, 5, seed=3, progression_classes=CLASSES)
    b = simulate_cohort(60, 5, seed=3, progression_classes=dicts)
    c = simulate_cohort(
        60, 5, seed=np.random.default_rng(3), progression_classes=list(CLASSES)
    )
    for t in TABLES:
        assert_frame_equal(getattr(a, t), getattr(b, t))
        assert_frame_equal(getattr(a, t), getattr(c, t))
    assert b.progression_classes == CLASSES


def test_other_seed_other_classes():
    a = simulate_cohort(200, seed=3, progression_classes=CLASSES).truth
    b = simulate_cohort(200, seed=4, progression_classes=CLASSES).truth
    assert not a["progression_class"].equals(b["progression_class"])


def test_one_class_is_a_population_with_its_slope():
    one = [ProgressionClass(1.0, slope_mean=-1.4, slope_sd=0.5)]
    t = simulate_cohort(2000, months=0, seed=9, progression_classes=one).truth
    assert (t["progression_class"] == 1).all()
    s = t["slope_12m"]
    assert abs(s.mean() + 1.4) < 4 * s.std() / math.sqrt(len(s))


def test_classes_do_not_touch_the_other_draws_order():
    """Onset, ΔFS and baseline are drawn before the class: identical with or without."""
    a = simulate_cohort(100, seed=11).truth
    b = simulate_cohort(100, seed=11, progression_classes=CLASSES).truth
    for col in ("months_onset_to_baseline", "delta_fs", "baseline_total", "onset_site"):
        assert a[col].equals(b[col]), col


# --------------------------------------------------------------------------- errors


def _cls(**change):
    rows = [c.to_dict() for c in CLASSES]
    rows[1].update(change)
    return rows


@pytest.mark.parametrize(
    ("classes", "match"),
    [
        ([], r"at least 1 class; got none"),
        (CLASSES[0], r"must be a sequence .* got ProgressionClass"),
        ({"share": 1.0}, r"must be a sequence .* got dict"),
        ("slow", r"must be a sequence .* got str"),
        (3, r"must be a sequence .* got int"),
        ([CLASSES[0], 5], r"progression class 2 of 2 must be a ProgressionClass .*5"),
        (
            _cls(share=0.6),
            r"sum to 1 \(within 1e-09\); got 1\.1.*shares 0\.3, 0\.6, 0\.2",
        ),
        (
            _cls(share=0.0),
            r"progression class 2 of 3: `share` must be in \(0, 1\]; got 0",
        ),
        (_cls(share=-0.5), r"class 2 of 3: `share` .* got -0\.5"),
        (
            _cls(slope_mean=0.0),
            r"class 2 of 3: `slope_mean` must be in \(-inf, 0\); got 0",
        ),
        (_cls(slope_mean=1.2), r"class 2 of 3: `slope_mean` .* got 1\.2"),
        (_cls(slope_sd=0.0), r"class 2 of 3: `slope_sd` must be in \(0, inf\); got 0"),
        (_cls(slope_sd=float("nan")), r"class 2 of 3: `slope_sd` .* got nan"),
        (_cls(slope_sd="wide"), r"class 2 of 3: `slope_sd` must be a number .*'wide'"),
        (_cls(name=7), r"class 2 of 3: `name` must be a string or None; got 7"),
        (_cls(slope=-1.0), r"class 2 of 3: unknown key 'slope'; valid keys are share"),
        ([{"share": 1.0, "slope_mean": -1.0}], r"class 1 of 1: missing 'slope_sd'"),
        (_cls(slope_mean=-6.0, slope_sd=0.2), r"class 2 of 3 \(.*-6.*\): .*cannot be"),
    ],
)
def test_bad_classes_name_the_value(classes, match):
    with pytest.raises(ModelSpecificationError, match=match):
        simulate_cohort(5, seed=1, progression_classes=classes)


def test_shares_within_tolerance_are_accepted():
    third = [ProgressionClass(1 / 3, -0.5 * (k + 1), 0.2) for k in range(3)]
    c = simulate_cohort(30, months=0, seed=1, progression_classes=third)
    assert set(c.truth["progression_class"]) <= {1, 2, 3}
    off = [c.to_dict() for c in third]
    off[0]["share"] += 2e-9
    with pytest.raises(ModelSpecificationError, match="sum to 1"):
        simulate_cohort(30, months=0, seed=1, progression_classes=off)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"share": 1.5}, r"`share` must be in \(0, 1\]; got 1\.5"),
        ({"slope_mean": -0.0}, r"`slope_mean` must be in \(-inf, 0\); got -0\.0"),
        ({"slope_sd": -1}, r"`slope_sd` must be in \(0, inf\); got -1"),
        ({"slope_mean": True}, r"`slope_mean` must be a number .* got True"),
    ],
)
def test_progression_class_checks_its_values(kwargs, match):
    args = {"share": 1.0, "slope_mean": -1.0, "slope_sd": 0.3, **kwargs}
    with pytest.raises(ModelSpecificationError, match=match):
        ProgressionClass(**args)


def test_share_of_one_is_allowed_and_values_become_floats():
    c = ProgressionClass(1, -2, 1)
    assert (c.share, c.slope_mean, c.slope_sd) == (1.0, -2.0, 1.0)
    assert all(type(v) is float for v in (c.share, c.slope_mean, c.slope_sd))
