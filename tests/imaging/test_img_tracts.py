"""Tract profiles: TractSeg / pyAFQ readers, the along-tract permutation test and
the tract-profile simulator.

File layouts follow the tools' writers: TractSeg ``bin/Tractometry``
(``np.savetxt(out, means.T, delimiter=";", header="AF_left;...", comments="")``,
first and last of ``--nr_points`` dropped) and pyAFQ ``tract_profiles`` /
``combine_list_of_profiles`` (``tractID, nodeID, dti_fa, dti_md[, subjectID,
sessionID]``; per-subject files keep pandas' unnamed index column).
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from alsprog.errors import (
    DataValidationError,
    DataWarning,
    ImagingError,
    ModelSpecificationError,
)
from alsprog.imaging._tract_stats import (
    fwer_p_values,
    max_t_permutation,
    tract_profile_test,
)
from alsprog.imaging._tracts import bundle_name, read_tract_profiles, segment_positions
from alsprog.simulate._tracts import (
    healthy_cst_profile,
    simulate_tract_profiles,
    write_tract_profiles,
)

# The first bundles of TractSeg's "All_tractometry" list
# (tractseg/data/dataset_specific_utils.py), in its order.
TRACTSEG_HEADER = "AF_left;AF_right;ATR_left;ATR_right;CC_1;CG_left;CST_left;CST_right"


def tractseg_file(path, values, header=TRACTSEG_HEADER):
    """Write ``values`` (positions x bundles) exactly as TractSeg's Tractometry."""
    np.savetxt(path, np.asarray(values), delimiter=";", header=header, comments="")
    return path


def tractseg_values(n=10, n_bundles=8):
    # FA-like, all distinct: bundle j, position i -> 0.3 + 0.01 j + 0.002 i
    return 0.3 + 0.01 * np.arange(n_bundles)[None, :] + 0.002 * np.arange(n)[:, None]


# ----------------------------------------------------------------- round trips
@pytest.fixture(scope="module")
def small_sim():
    return simulate_tract_profiles(3, 2, n_positions=20, months=(0, 6), seed=11)


def test_tractseg_round_trip(small_sim, tmp_path):
    mapping = write_tract_profiles(small_sim, tmp_path)
    # the files are in TractSeg's layout: header of bundle names, ';', no index
    first = (tmp_path / "sub-C001_ses-m00_Tractometry.csv").read_text().splitlines()
    assert first[0] == "CST_left;CST_right"
    assert len(first) == 21 and first[1].count(";") == 1
    feats, prof = read_tract_profiles(mapping=mapping, segments=[(40, 60)])
    assert_allclose(prof["value"], small_sim.profiles["value"], rtol=0, atol=0)
    for c in ("subject_id", "session", "bundle", "position"):
        assert prof[c].tolist() == small_sim.profiles[c].tolist()
    assert len(feats) == 10
    expected_dates = pd.to_datetime(small_sim.sessions["acquisition_date"]).tolist()
    assert feats["acquisition_date"].tolist() == expected_dates
    assert list(feats.columns) == [
        "subject_id",
        "session",
        "acquisition_date",
        "fa_cst_left",
        "fa_cst_left_seg40_60",
        "fa_cst_right",
        "fa_cst_right_seg40_60",
    ]
    # hand computation: whole-tract mean and positions 8..11 of 20 (centres 42.5..57.5 %)
    one = small_sim.profiles.query("subject_id == 'P002' and session == 'm06'")
    left = one.loc[one["bundle"] == "cst_left", "value"].to_numpy()
    row = feats.query("subject_id == 'P002' and session == 'm06'").iloc[0]
    assert row["fa_cst_left"] == pytest.approx(sum(left) / 20, abs=1e-15)
    assert row["fa_cst_left_seg40_60"] == pytest.approx(
        (left[8] + left[9] + left[10] + left[11]) / 4, abs=1e-15
    )


def test_afq_round_trip(small_sim, tmp_path):
    path = write_tract_profiles(small_sim, tmp_path, format="afq")
    header = path.read_text().splitlines()[0]
    assert header == "tractID,nodeID,dti_fa,subjectID,sessionID"
    assert "Left Corticospinal" in path.read_text()
    feats, prof = read_tract_profiles(path, "afq")
    assert_allclose(prof["value"], small_sim.profiles["value"], rtol=0, atol=0)
    assert prof["bundle"].tolist() == small_sim.profiles["bundle"].tolist()
    ids = sorted(small_sim.subjects["subject_id"])
    assert feats["subject_id"].tolist() == [s for s in ids for _ in range(2)]
    assert feats["acquisition_date"].isna().all()


def test_hand_made_tractseg_file_and_98_positions(tmp_path):
    vals = tractseg_values(98)  # TractSeg's default: 100 points, ends dropped
    p = tractseg_file(tmp_path / "Tractometry.csv", vals)
    feats, prof = read_tract_profiles(
        p,
        subject="sub-01",
        session="ses-1",
        acquisition_date="2024-03-01",
        bundles=["CST_left", "cst_right"],
        segments={"CST_left": [(40, 60), (0, 10)]},
    )
    cst = vals[:, 6]
    row = feats.iloc[0]
    assert (row["subject_id"], row["session"]) == ("01", "1")
    assert row["acquisition_date"] == pd.Timestamp("2024-03-01")
    assert row["fa_cst_left"] == pytest.approx(cst.mean(), abs=1e-15)
    # centre 100 (i + 0.5) / 98 in [40, 60) <=> 38.7 <= i < 58.3: i = 39..58
    assert row["fa_cst_left_seg40_60"] == pytest.approx(cst[39:59].mean(), abs=1e-15)
    # [0, 10): i + 0.5 < 9.8: i = 0..9
    assert row["fa_cst_left_seg0_10"] == pytest.approx(cst[:10].mean(), abs=1e-15)
    assert "fa_cst_right_seg40_60" not in feats.columns
    assert row["fa_cst_right"] == pytest.approx(vals[:, 7].mean(), abs=1e-15)
    assert sorted(set(prof["bundle"])) == ["cst_left", "cst_right"]
    assert len(prof) == 2 * 98 and prof["position"].max() == 97


AFQ_SUBJECT = """\
,tractID,nodeID,dti_fa,dti_md
0,Left Corticospinal,0,0.51,0.00071
1,Left Corticospinal,1,0.55,0.00073
2,Left Corticospinal,2,0.60,0.00075
3,Left Corticospinal,3,0.58,0.00077
4,Right Corticospinal,0,0.50,0.00070
5,Right Corticospinal,1,0.52,0.00072
6,Right Corticospinal,2,0.57,0.00074
7,Right Corticospinal,3,0.61,0.00076
8,Callosum Motor,0,0.66,0.00080
9,Callosum Motor,1,0.70,0.00082
10,Callosum Motor,2,0.68,0.00084
11,Callosum Motor,3,0.64,0.00086
"""


def test_afq_per_subject_file_names_and_units(tmp_path):
    p = tmp_path / "sub-01_ses-01_desc-profiles_dwi.csv"
    p.write_text(AFQ_SUBJECT)
    feats, prof = read_tract_profiles(
        p, "afq", subject="01", session="01", segments=[(50, 100)]
    )
    assert [c for c in feats.columns if c.startswith("fa_")] == [
        "fa_cst_left",
        "fa_cst_left_seg50_100",
        "fa_cst_right",
        "fa_cst_right_seg50_100",
        "fa_cc_motor",
        "fa_cc_motor_seg50_100",
    ]
    row = feats.iloc[0]
    assert row["fa_cst_left"] == pytest.approx((0.51 + 0.55 + 0.60 + 0.58) / 4)
    assert row["fa_cst_left_seg50_100"] == pytest.approx((0.60 + 0.58) / 2)
    assert row["fa_cc_motor"] == pytest.approx((0.66 + 0.70 + 0.68 + 0.64) / 4)
    # MD in mm^2/s -> alsprog's 10^-3 mm^2/s
    md, _ = read_tract_profiles(p, "afq", subject="01", session="01", metric="md",
                                scale=1000)  # fmt: skip
    assert md.iloc[0]["md_cst_right"] == pytest.approx((0.70 + 0.72 + 0.74 + 0.76) / 4)
    with pytest.raises(ImagingError, match=r"looks like mm²/s.*scale=1000"):
        read_tract_profiles(p, "afq", subject="01", session="01", metric="md")


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("CST_left", "tractseg", "cst_left"),
        ("SLF_III_right", "tractseg", "slf_iii_right"),
        ("CC_1", "tractseg", "cc_1"),
        ("Left Corticospinal", "afq", "cst_left"),
        ("Right Inferior Fronto-occipital", "afq", "ifo_right"),
        ("CST_R", "afq", "cst_right"),
        ("CGC_L", "afq", "cg_left"),
        ("Left Cingulum Cingulate", "afq", "cg_left"),
        ("Forceps Minor", "afq", "forceps_minor"),
        ("FP", "afq", "forceps_major"),
        ("Callosum Superior Frontal", "afq", "cc_superior_frontal"),
        ("Left Arcuate", "afq", "af_left"),
        ("Left Foo Tract", "afq", "foo_tract_left"),
    ],
)
def test_bundle_names(name, fmt, expected):
    assert bundle_name(name, fmt) == expected


@pytest.mark.parametrize(
    ("a", "b", "n", "expected"),
    [
        (40, 60, 100, list(range(40, 60))),
        (40, 60, 98, list(range(39, 59))),
        (0, 100, 5, [0, 1, 2, 3, 4]),
        (0, 50, 5, [0, 1]),  # centres 10, 30 | 50 is not < 50
        (50, 100, 5, [2, 3, 4]),
        (0, 10, 4, []),  # first centre is 12.5 %
    ],
)
def test_segment_positions(a, b, n, expected):
    assert segment_positions(a, b, n).tolist() == expected


def test_combined_afq_with_unknown_session_needs_session(tmp_path):
    rows = [
        ("Left Corticospinal", k, 0.5 + 0.01 * k, "sub-02", "unknown") for k in range(3)
    ]
    p = tmp_path / "tract_profiles.csv"
    pd.DataFrame(
        rows, columns=["tractID", "nodeID", "dti_fa", "subjectID", "sessionID"]
    ).to_csv(p, index=False)
    with pytest.raises(ImagingError, match=r"sessionID 'unknown'.*session="):
        read_tract_profiles(p, "afq")
    feats, _ = read_tract_profiles(p, "afq", session="m00")
    assert feats[["subject_id", "session"]].values.tolist() == [["02", "m00"]]
    assert feats.iloc[0]["fa_cst_left"] == pytest.approx(0.51)


# ---------------------------------------------------------------------- errors
def test_tractseg_without_ids_is_refused(tmp_path):
    p = tractseg_file(tmp_path / "T.csv", tractseg_values(4))
    with pytest.raises(ImagingError, match=r"T\.csv: .*names no subject or session"):
        read_tract_profiles(p)
    with pytest.raises(ImagingError, match="names no subject"):
        read_tract_profiles(p, subject="01")


def test_unknown_bundle_lists_the_bundles(tmp_path):
    p = tractseg_file(tmp_path / "T.csv", tractseg_values(4))
    with pytest.raises(ImagingError, match=r"bundle 'cst_middle' is not in .*cst_left"):
        read_tract_profiles(p, subject="1", session="1", bundles="CST_middle")
    with pytest.raises(ImagingError, match=r"segments name bundle 'uf_left'"):
        read_tract_profiles(p, subject="1", session="1", segments={"UF_left": (0, 50)})


@pytest.mark.parametrize("segments", [[(60, 40)], [(0, 101)], [(10.5, 20)], ["ab"]])
def test_bad_segments(tmp_path, segments):
    p = tractseg_file(tmp_path / "T.csv", tractseg_values(4))
    with pytest.raises(ValueError, match="segments"):
        read_tract_profiles(p, subject="1", session="1", segments=segments)


def test_segment_without_positions(tmp_path):
    p = tractseg_file(tmp_path / "T.csv", tractseg_values(4))
    with pytest.raises(ImagingError, match=r"segment 0-10% of bundle 'af_left'.*4"):
        read_tract_profiles(p, subject="1", session="1", segments=[(0, 10)])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("CST_left,CST_right\n0.5,0.6\n", r"line 1: .*separated by ','"),
        ("CST_left\tCST_right\n0.5\t0.6\n", r"line 1: .*separated by tabs"),
        ("CST_left;CST_right\n0.5;0.6\n0.5\n", r"line 3: 1 fields, .* 2 bundles"),
        ("CST_left;CST_right\n0.5;0.6\n0.5;abc\n", r"line 3, column CST_right: 'abc'"),
        (
            "CST_left;CST_right\n0.5;0.6\n0.5;nan\n",
            r"line 3, .*bundle 'cst_right'.*NaN",
        ),
        ("CST_left;CST_right\n", "no rows"),
        ("", "is empty"),
        ("0.5;0.6\n0.5;0.6\n", r"line 1, column 1: '0.5' is not a bundle name"),
        ("CST_left;CST_left\n0.5;0.6\n", "appears twice"),
        ("CST_left;CST_right\n0.5;1.6\n", r"line 2, .*position 0: fa = 1.6 is outside"),
    ],
)
def test_tractseg_file_errors(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ImagingError, match=match) as err:
        read_tract_profiles(p, subject="1", session="1")
    assert "bad.csv" in str(err.value)


def test_afq_file_errors(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("tractID;nodeID;dti_fa\nCST_L;0;0.5\n")
    with pytest.raises(ImagingError, match=r"p\.csv: line 1 is separated by ';'"):
        read_tract_profiles(p, "afq", subject="1", session="1")
    p.write_text("tractID,node,dti_fa\nCST_L,0,0.5\n")
    with pytest.raises(ImagingError, match=r"missing \['nodeID'\]"):
        read_tract_profiles(p, "afq", subject="1", session="1")
    p.write_text("tractID,nodeID,dti_fa\nCST_L,0,0.5\nCST_L,1,0.5\nCST_L,3,0.5\n")
    with pytest.raises(ImagingError, match=r"tract 'CST_L': nodeIDs are 0..3 \(3 rows"):
        read_tract_profiles(p, "afq", subject="1", session="1")
    p.write_text("tractID,nodeID,dti_fa\nCST_L,0,0.5\nCST_L,1,0.5\nCST_L,1,0.5\n")
    with pytest.raises(ImagingError, match="nodeID 1 appears twice"):
        read_tract_profiles(p, "afq", subject="1", session="1")
    p.write_text("tractID,nodeID,dti_fa\nCST_L,0,0.5\nCST_L,1.5,0.5\n")
    with pytest.raises(ImagingError, match=r"line 3, column nodeID: '1.5'"):
        read_tract_profiles(p, "afq", subject="1", session="1")
    p.write_text("tractID,nodeID,dti_fa\nCST_L,0,0.5\nCST_L,1,\n")
    with pytest.raises(ImagingError, match=r"line 3, .*'cst_left'.*NaN"):
        read_tract_profiles(p, "afq", subject="1", session="1")
    p.write_text("tractID,nodeID,dti_fa\nCST_L,0,0.5\n")
    with pytest.raises(ImagingError, match="no subjectID column"):
        read_tract_profiles(p, "afq")
    # old and new pyAFQ names of one tract in one file
    p.write_text("tractID,nodeID,dti_fa\nCST_L,0,0.5\nLeft Corticospinal,0,0.5\n")
    with pytest.raises(ImagingError, match=r"bundle 'cst_left' appears twice"):
        read_tract_profiles(p, "afq", subject="1", session="1")


def test_duplicate_subject_session_in_mapping(tmp_path):
    a = tractseg_file(tmp_path / "a.csv", tractseg_values(4))
    b = tractseg_file(tmp_path / "b.csv", tractseg_values(4))
    mapping = pd.DataFrame(
        {
            "path": [str(a), str(b)],
            "subject_id": ["P1", "sub-P1"],
            "session": ["m00"] * 2,
        }
    )
    with pytest.raises(ImagingError, match=r"subject P1, session m00 is mapped to"):
        read_tract_profiles(mapping=mapping)
    with pytest.raises(ImagingError, match=r"missing \['session'\]"):
        read_tract_profiles(mapping=mapping.drop(columns="session"))
    # a dict mapping with relative paths from `path`
    feats, _ = read_tract_profiles(
        tmp_path, mapping={"a.csv": ("P1", "m00"), "b.csv": ("P1", "m06", "2024-07-01")}
    )
    assert feats["session"].tolist() == ["m00", "m06"]
    assert pd.isna(feats["acquisition_date"].iloc[0])
    with pytest.raises(ValueError, match="either `mapping` or `subject`"):
        read_tract_profiles(mapping={"a.csv": ("P1", "m00")}, subject="P1")


def test_duplicate_subject_session_in_combined_afq(tmp_path):
    rows = [("CST_L", k, 0.5, "01", "1") for k in (0, 1)] * 2
    p = tmp_path / "tract_profiles.csv"
    pd.DataFrame(
        rows, columns=["tractID", "nodeID", "dti_fa", "subjectID", "sessionID"]
    ).to_csv(p, index=False)
    with pytest.raises(ImagingError, match=r"subject 01, session 1, tract 'CST_L'"):
        read_tract_profiles(p, "afq")


def test_empty_tractseg_bundle_warns_and_is_missing(tmp_path):
    vals = tractseg_values(6)
    vals[:, 7] = 0.0  # TractSeg writes zeros for a bundle without streamlines
    p = tractseg_file(tmp_path / "T.csv", vals)
    with pytest.warns(DataWarning, match=r"cst_right .*all zeros, no streamlines"):
        feats, prof = read_tract_profiles(p, subject="1", session="1")
    assert math.isnan(feats.iloc[0]["fa_cst_right"])
    assert feats.iloc[0]["fa_cst_left"] == pytest.approx(vals[:, 6].mean())
    assert "cst_right" not in set(prof["bundle"])


def test_missing_afq_bundle_for_one_subject_warns(tmp_path):
    rows = [("CST_L", k, 0.5, "01", "1") for k in range(3)]
    rows += [("CST_L", k, 0.6, "02", "1") for k in range(3)]
    rows += [("CST_R", k, 0.7, "02", "1") for k in range(3)]
    p = tmp_path / "tract_profiles.csv"
    pd.DataFrame(
        rows, columns=["tractID", "nodeID", "dti_fa", "subjectID", "sessionID"]
    ).to_csv(p, index=False)
    with pytest.warns(DataWarning, match=r"1 bundle profile\(s\) missing .*cst_right "
                      r"\(subject 01"):  # fmt: skip
        feats, _ = read_tract_profiles(p, "afq")
    assert feats["fa_cst_right"].isna().tolist() == [True, False]


# ------------------------------------------------------------- along-tract test
def _profiles_from_array(y, sessions=None):
    n, p = y.shape
    ids = [f"S{i:02d}" for i in range(n)]
    return pd.DataFrame(
        {
            "subject_id": np.repeat(ids, p),
            "session": "m00" if sessions is None else np.repeat(sessions, p),
            "bundle": "cst_left",
            "position": np.tile(np.arange(p), n),
            "value": y.ravel(),
        }
    ), ids


@pytest.mark.parametrize("equal_var", [False, True])
def test_pointwise_t_matches_scipy(equal_var):
    rng = np.random.default_rng(5)
    y = rng.normal(0.5, 0.03, size=(14, 6))
    y[:5] *= 1.0 + rng.normal(0, 0.2, size=(5, 6))  # unequal variances
    prof, ids = _profiles_from_array(y)
    groups = {s: ("als" if i < 5 else "control") for i, s in enumerate(ids)}
    res = tract_profile_test(prof, groups, n_permutations=50, equal_var=equal_var)
    ref = stats.ttest_ind(y[:5], y[5:], equal_var=equal_var, axis=0)
    assert_allclose(res.positions["t"], ref.statistic, rtol=1e-10)
    assert_allclose(
        res.positions["difference"], y[:5].mean(0) - y[5:].mean(0), rtol=1e-12
    )
    assert_allclose(res.positions["mean_als"], y[:5].mean(0), rtol=1e-12)
    assert res.equal_var is equal_var
    welch = stats.ttest_ind(y[:5], y[5:], equal_var=False, axis=0).statistic
    if equal_var:  # the two t's differ on these data
        assert np.max(np.abs(res.positions["t"] - welch)) > 0.01


def test_null_distribution_matches_full_enumeration():
    # 4 vs 4: all 70 labellings enumerated with scipy; every sampled max |t| must be
    # one of them, with frequencies close to the exact ones
    rng = np.random.default_rng(2)
    y = rng.normal(size=(8, 3))
    exact = []
    for als in itertools.combinations(range(8), 4):
        g = np.isin(np.arange(8), als)
        exact.append(
            np.abs(stats.ttest_ind(y[g], y[~g], equal_var=False).statistic).max()
        )
    exact = np.array(exact)
    _, null = max_t_permutation(y, np.arange(8) < 4, n_permutations=7000, seed=3)
    assert np.all(np.min(np.abs(null[:, None] - exact[None, :]), axis=1) < 1e-9)
    # P(max|t| >= median of exact) within 4 binomial SEs of its exact value
    q = np.median(exact)
    p_exact = np.mean(exact >= q - 1e-12)
    se = math.sqrt(p_exact * (1 - p_exact) / 7000)
    assert abs(np.mean(null >= q - 1e-12) - p_exact) < 4 * se


def test_fwer_p_values_by_hand():
    null = np.array([0.5, 1.5, 2.5, 3.5])
    p, crit = fwer_p_values(np.array([3.0, -1.0, 4.0, 0.1]), null, alpha=0.5)
    # p = (1 + #{null >= |t|}) / 5
    assert p.tolist() == [2 / 5, 4 / 5, 1 / 5, 5 / 5]
    assert crit == 2.5  # k = floor(0.5 * 5) - 1 = 1 -> second largest
    assert fwer_p_values(np.array([9.0]), null, alpha=0.05)[1] == math.inf


def test_effect_is_found_in_its_segment():
    sim = simulate_tract_profiles(60, 60, bundles=("CST_left",), seed=8)
    res = tract_profile_test(sim.profiles, sim.subjects, n_permutations=1000, seed=2)
    assert len(res.clusters) == 1
    c = res.clusters.iloc[0]
    assert c["start"] <= 40 and c["stop"] >= 60  # covers the true segment 40..59
    assert c["start"] >= 35 and c["stop"] <= 65
    assert c["mean_difference"] < 0 and c["peak_t"] < -res.t_critical
    sig = res.positions["significant"].to_numpy()
    assert np.array_equal(sig, res.positions["p_fwer"].to_numpy() <= 0.05)
    assert np.all(np.abs(res.positions["t"][sig]) > res.t_critical)
    assert res.subjects["group"].value_counts().to_dict() == {"als": 60, "control": 60}
    assert res.bundle == "cst_left" and res.n_permutations == 1000
    text = repr(res)  # one line saying what was found, not the arrays
    assert text.startswith("TractProfileTest(bundle='cst_left', 60 ALS vs 60 controls")
    assert f"|t| > {res.t_critical:.2f}; significant along" in text
    assert f"{c['percent_start']:.0f}-{c['percent_stop']:.0f} %" in text
    assert "\n" not in text and "array" not in text


def test_test_is_seeded():
    sim = simulate_tract_profiles(5, 5, n_positions=10, seed=1, bundles=("CST_left",))
    a = tract_profile_test(sim.profiles, sim.subjects, n_permutations=100, seed=4)
    b = tract_profile_test(sim.profiles, sim.subjects, n_permutations=100, seed=4)
    c = tract_profile_test(sim.profiles, sim.subjects, n_permutations=100, seed=5)
    assert np.array_equal(a.max_t_null, b.max_t_null)
    assert not np.array_equal(a.max_t_null, c.max_t_null)
    # chunking does not change the draws' distribution contract: same length
    d = tract_profile_test(
        sim.profiles, sim.subjects, n_permutations=100, seed=4, chunk_size=7
    )
    assert d.max_t_null.shape == (100,)


def test_sessions_first_label_and_none():
    y = np.vstack([np.full((1, 3), v) for v in (0.5, 0.6, 0.7, 0.8)])
    y = y + np.arange(3) * 0.01
    prof, _ = _profiles_from_array(y, sessions=["10", "2", "10", "2"])
    prof["subject_id"] = np.repeat(["A", "A", "B", "B"], 3)
    more = prof.assign(subject_id=lambda d: d["subject_id"].map({"A": "C", "B": "D"}))
    prof = pd.concat([prof, more.assign(value=more["value"] + 0.05)])
    groups = {"A": "als", "B": "als", "C": "control", "D": "control"}
    res = tract_profile_test(prof, groups, n_permutations=20)
    # natural order: session "2" comes before "10"
    assert res.subjects["session"].tolist() == ["2", "2", "2", "2"]
    assert_allclose(res.positions["mean_als"], [0.7, 0.71, 0.72])
    res10 = tract_profile_test(prof, groups, session="10", n_permutations=20)
    assert_allclose(res10.positions["mean_als"], [0.6, 0.61, 0.62])
    with pytest.raises(ModelSpecificationError, match=r"subject A has 2 sessions"):
        tract_profile_test(prof, groups, session=None)
    with pytest.raises(ModelSpecificationError, match=r"no profile .* session 'm99'"):
        tract_profile_test(prof, groups, session="m99")


def test_test_errors():
    y = np.random.default_rng(0).normal(0.5, 0.02, size=(6, 4))
    prof, ids = _profiles_from_array(y)
    groups = {s: ("als" if i < 3 else "control") for i, s in enumerate(ids)}
    with pytest.raises(DataValidationError, match=r"subject S05, column group: has "):
        tract_profile_test(prof, {k: v for k, v in groups.items() if k != "S05"})
    with pytest.raises(DataValidationError, match=r"subject S00.*'ALS\?'"):
        tract_profile_test(prof, {**groups, "S00": "ALS?"})
    with pytest.raises(ModelSpecificationError, match=r"got 1 ALS, 5 control"):
        tract_profile_test(prof, {s: "als" if s == "S00" else "control" for s in ids})
    two = pd.concat([prof, prof.assign(bundle="cst_right")])
    with pytest.raises(ModelSpecificationError, match=r"choose one with bundle="):
        tract_profile_test(two, groups)
    with pytest.raises(ModelSpecificationError, match=r"bundle 'uf_left' is not"):
        tract_profile_test(two, groups, bundle="uf_left")
    short = prof[~((prof["subject_id"] == "S02") & (prof["position"] == 3))]
    with pytest.raises(DataValidationError, match=r"subject S02.*has 3 positions"):
        tract_profile_test(short, groups)
    with pytest.raises(ValueError, match="n_permutations"):
        tract_profile_test(prof, groups, n_permutations=0)
    with pytest.raises(ModelSpecificationError, match="missing"):
        tract_profile_test(prof.drop(columns="value"), groups)
    table = pd.DataFrame({"subject_id": ids, "group": list(groups.values())})
    res = tract_profile_test(prof, table, n_permutations=10)
    assert len(res.positions) == 4


@pytest.mark.slow
def test_null_family_wise_error_rate():
    # 1000 null data sets (one simulation of 30 000 healthy subjects cut into
    # blocks of 30, labelled 12 "ALS" vs 18 controls) x 500 permutations each.
    # Any significant position is a family-wise error; its rate must be 0.05
    # within 3 Monte-Carlo SEs: sqrt(0.05 * 0.95 / 1000) = 0.0069 -> [0.029, 0.071].
    n_sets, n_sub, n_pos = 1000, 30, 50
    sim = simulate_tract_profiles(
        0, n_sets * n_sub, n_positions=n_pos, bundles=("CST_left",), seed=2026
    )
    y = sim.profiles["value"].to_numpy().reshape(n_sets, n_sub, n_pos)
    group = np.arange(n_sub) < 12
    rng = np.random.default_rng(7)
    errors = 0
    for k in range(n_sets):
        t, null = max_t_permutation(y[k], group, n_permutations=500, seed=rng)
        p, _ = fwer_p_values(t, null)
        errors += bool((p <= 0.05).any())
    rate = errors / n_sets
    se = math.sqrt(0.05 * 0.95 / n_sets)
    assert abs(rate - 0.05) < 3 * se, rate


# ------------------------------------------------------------------- simulator
def test_simulator_truth_and_healthy_shape():
    sim = simulate_tract_profiles(40, 40, n_positions=50, bundles=("CST_left",), seed=3)
    assert sim.truth["in_effect"].to_numpy().nonzero()[0].tolist() == list(
        range(20, 30)
    )
    # shift = d * pointwise SD = -0.95 * sqrt(0.015^2 + 0.026^2)
    assert sim.truth["shift"].min() == pytest.approx(-0.95 * math.hypot(0.015, 0.026))
    assert_allclose(sim.truth["healthy_mean"], healthy_cst_profile(50))
    assert healthy_cst_profile(50).mean() == pytest.approx(0.55)
    wide = sim.profiles.pivot(index="subject_id", columns="position", values="value")
    ctl = wide.loc[wide.index.str.startswith("C")].to_numpy()
    # pointwise healthy SD ~ sqrt(0.015^2 + 0.026^2 + 0.005^2) = 0.0304
    assert np.median(ctl.std(axis=0, ddof=1)) == pytest.approx(0.0304, rel=0.25)
    # along-tract correlation: neighbours (1/50 of the tract apart, length 0.1)
    # correlate far more than positions half a tract apart
    r = np.corrcoef(ctl.T)
    assert np.mean(np.diag(r, 1)) > 0.8 and np.mean(np.diag(r, 25)) < 0.5


def test_simulator_seeded_and_checked():
    a = simulate_tract_profiles(2, 2, n_positions=8, seed=4)
    b = simulate_tract_profiles(2, 2, n_positions=8, seed=4)
    assert a.profiles.equals(b.profiles)
    with pytest.raises(ValueError, match="effect_segment"):
        simulate_tract_profiles(2, 2, effect_segment=(60, 40))
    with pytest.raises(ValueError, match="n_als"):
        simulate_tract_profiles(0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = simulate_tract_profiles(1, 1, n_positions=5, months=(0, 12), seed=1)
    assert s.sessions["session"].tolist() == ["m00", "m12", "m00", "m12"]
