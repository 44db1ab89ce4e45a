"""extract_connectivity: ROI time series, cleaning and connectivity against nilearn
0.14 (NiftiLabelsMasker + ConnectivityMeasure, the reference), recovery of the
simulator's ALS effect, and every bad input."""

from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.connectome import ConnectivityMeasure
from nilearn.maskers import NiftiLabelsMasker
from nilearn.signal import clean
from numpy.testing import assert_allclose

from alsprog.errors import DataWarning, ImagingError
from alsprog.imaging._connectivity import (
    clean_signals,
    connectivity_matrices,
    extract_connectivity,
)
from alsprog.simulate import simulate_cohort
from alsprog.simulate._fmri import FMRI_NETWORKS, write_fmri

KINDS = ["correlation", "partial correlation", "tangent"]
CONF = ["trans_x", "trans_y", "rot_z", "csf"]
AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])


def _nilearn_matrices(imgs, labels_img, kind, confounds=None, **options):
    """The reference: nilearn's masker and ConnectivityMeasure (defaults)."""
    series = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, img in enumerate(imgs):
            masker = NiftiLabelsMasker(labels_img, **options)
            conf = None if confounds is None else confounds[i]
            series.append(masker.fit_transform(img, confounds=conf))
        return ConnectivityMeasure(kind=kind).fit_transform(series)


def _bold(rng, labels, n_t=60, t_r=2.0, drift=True):
    """Random 4-D float64 series: ROI signals with a shared component, voxel noise,
    a linear drift; plus 5 confound columns mixed into it."""
    k = int(labels.max())
    shared = rng.normal(size=(n_t, 1))
    roi = rng.normal(size=(n_t, k)) + shared * np.linspace(0.3, 1.2, k)
    conf = np.cumsum(rng.normal(size=(n_t, 5)), axis=0)
    roi = roi + conf @ rng.normal(0, 0.5, (5, k))
    if drift:
        roi = roi + np.outer(np.arange(n_t), rng.normal(0, 0.05, k))
    data = 100.0 + rng.normal(0, 1.0, (*labels.shape, n_t))
    for lab in range(1, k + 1):
        data[labels == lab] += roi[:, lab - 1]
    return data, conf


@pytest.fixture
def small_bids(tmp_path):
    """A 10^3 atlas with 4 regions and 3 sessions of 60 volumes (float64), with
    confounds tables and JSON sidecars (t_r 2 s)."""
    rng = np.random.default_rng(7)
    labels = np.zeros((10, 10, 10), dtype=np.int16)
    labels[1:4, 1:5, 2:8] = 1
    labels[5:9, 1:5, 2:8] = 2
    labels[1:4, 6:9, 2:8] = 3
    labels[5:9, 6:9, 2:8] = 4
    adir = tmp_path / "atlas"
    adir.mkdir()
    atlas = adir / "atl_dseg.nii.gz"
    nib.save(nib.Nifti1Image(labels, AFFINE), atlas)
    pd.DataFrame(
        {
            "index": [1, 2, 3, 4],
            "name": ["Precentral L", "Precentral-R", "CST L", "cuneus"],
        }
    ).to_csv(adir / "atl_dseg.tsv", sep="\t", index=False)
    root = tmp_path / "deriv"
    imgs, confs = [], []
    for sid in ["01", "02", "03"]:
        data, conf = _bold(rng, labels)
        func = root / f"sub-{sid}" / "ses-m00" / "func"
        func.mkdir(parents=True)
        (root / f"sub-{sid}" / f"sub-{sid}_sessions.tsv").write_text(
            "session_id\tacq_time\nses-m00\t2020-01-02\n"
        )
        stem = f"sub-{sid}_ses-m00_task-rest_space-x_desc-preproc_bold"
        img = nib.Nifti1Image(data, AFFINE)
        img.header.set_xyzt_units("mm", "sec")
        img.header.set_zooms((3.0, 3.0, 3.0, 2.0))
        nib.save(img, func / f"{stem}.nii.gz")
        (func / f"{stem}.json").write_text(json.dumps({"RepetitionTime": 2.0}))
        df = pd.DataFrame(conf, columns=["trans_x", "trans_y", "rot_z", "csf", "extra"])
        df.to_csv(
            func / f"sub-{sid}_ses-m00_task-rest_desc-confounds_timeseries.tsv",
            sep="\t",
            index=False,
        )
        imgs.append(img)
        confs.append(conf[:, :4])
    return root, atlas, nib.Nifti1Image(labels, AFFINE), imgs, confs


@pytest.mark.parametrize("kind", KINDS)
def test_matches_nilearn_small_images(small_bids, kind):
    root, atlas, labels_img, imgs, confs = small_bids
    res = extract_connectivity(root, atlas, confounds=CONF, kind=kind, progress=False)
    ref = _nilearn_matrices(
        imgs,
        labels_img,
        kind,
        confs,
        standardize="zscore_sample",
        detrend=True,
        high_pass=0.008,
        low_pass=0.1,
        t_r=2.0,
    )
    assert_allclose(res.matrices, ref, atol=1e-6, rtol=0)
    # the edge features are Fisher z of the matrix (tangent: the coordinates)
    i, j = res.regions.index("precentral_l"), res.regions.index("cuneus")
    expect = ref[:, i, j] if kind == "tangent" else np.arctanh(ref[:, i, j])
    assert_allclose(res.features["fc_precentral_l__cuneus"], expect, atol=1e-6)
    assert (res.reference is not None) == (kind == "tangent")


@pytest.mark.parametrize(
    "options",
    [
        {"detrend": False, "standardize": False, "high_pass": None, "low_pass": None},
        {"detrend": True, "standardize": True, "high_pass": 0.01, "low_pass": None},
        {"detrend": False, "standardize": True, "high_pass": None, "low_pass": 0.08},
    ],
)
def test_options_match_nilearn(small_bids, options):
    root, atlas, labels_img, imgs, confs = small_bids
    res = extract_connectivity(root, atlas, confounds=CONF, progress=False, **options)
    nl = dict(options, t_r=2.0)
    nl["standardize"] = "zscore_sample" if options["standardize"] else False
    ref = _nilearn_matrices(imgs, labels_img, "correlation", confs, **nl)
    assert_allclose(res.matrices, ref, atol=1e-6, rtol=0)


def test_clean_signals_matches_nilearn_clean():
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.normal(size=(80, 4)), axis=0) + 50.0
    c = rng.normal(size=(80, 3))
    ours = clean_signals(x, confounds=c, t_r=1.5, high_pass=0.01, low_pass=0.2)
    ref = clean(
        x,
        confounds=c,
        t_r=1.5,
        high_pass=0.01,
        low_pass=0.2,
        standardize="zscore_sample",
    )
    assert_allclose(ours, ref, atol=1e-10)


def test_empirical_covariance_is_sample_correlation():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(50, 3))
    m, _ = connectivity_matrices([x], cov_estimator="empirical")
    assert_allclose(m[0], np.corrcoef(x.T), atol=1e-12)  # closed form
    with pytest.raises(ValueError, match="two or more sessions"):
        connectivity_matrices([x], kind="tangent")


@pytest.fixture(scope="module")
def sim_small(tmp_path_factory):
    cohort = simulate_cohort(1, 2, months=0, seed=11)
    out = tmp_path_factory.mktemp("fmri") / "deriv"
    return write_fmri(
        cohort, out, shape=(16, 18, 16), n_volumes=60, seed=3, progress=False
    )


@pytest.mark.parametrize("kind", KINDS)
def test_matches_nilearn_simulated(sim_small, kind):
    cols = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "csf"]
    res = extract_connectivity(
        sim_small.root, sim_small.atlas, confounds=cols, kind=kind, progress=False
    )
    imgs, confs = [], []
    for path in res.qc.drop_duplicates("path")["path"]:
        img = nib.load(path)  # float32 on disk: nilearn gets float64, as alsprog uses
        imgs.append(nib.Nifti1Image(img.get_fdata(), img.affine))
        tsv = path.replace("_space-alsprogsim_desc-preproc_bold.nii.gz", "")
        confs.append(
            pd.read_csv(tsv + "_desc-confounds_timeseries.tsv", sep="\t")[
                cols
            ].to_numpy()
        )
    ref = _nilearn_matrices(
        imgs,
        nib.load(sim_small.atlas),
        kind,
        confs,
        standardize="zscore_sample",
        detrend=True,
        high_pass=0.008,
        low_pass=0.1,
        t_r=2.0,
    )
    assert_allclose(res.matrices, ref, atol=1e-6, rtol=0)


def test_edges_networks_and_qc(sim_small):
    nets = {"motor": ["precentral_*", "cst_*", "cc_motor"], "visual": "cuneus_left"}
    res = extract_connectivity(
        sim_small.root,
        sim_small.atlas,
        edges=[("Precentral_Right", "precentral_left"), ("cuneus_left", "cst_left")],
        networks=nets,
        progress=False,
    )
    f = res.features
    fc = [c for c in f.columns if c.startswith("fc_")]
    assert fc == ["fc_precentral_left__precentral_right", "fc_cst_left__cuneus_left"]
    with np.errstate(divide="ignore"):
        z = np.arctanh(res.matrices)  # the diagonal becomes inf; never used
    motor = [res.regions.index(r) for r in FMRI_NETWORKS["motor"]]
    cun = res.regions.index("cuneus_left")
    within = [z[:, a, b] for x, a in enumerate(motor) for b in motor[x + 1 :]]
    assert_allclose(f["fcnet_motor"], np.mean(within, axis=0), atol=1e-12)
    assert_allclose(f["fcnet_motor__visual"], z[:, motor, cun].mean(axis=1), atol=1e-12)
    others = [r for r in range(6) if r != cun]
    assert_allclose(f["fcroi_cuneus_left"], z[:, cun, others].mean(axis=1), atol=1e-12)
    assert list(f[["subject_id", "session"]].itertuples(index=False, name=None)) == [
        ("C0001", "m00"),
        ("C0002", "m00"),
        ("P0001", "m00"),
    ]
    qc = res.qc
    assert len(qc) == 3 * 6
    assert set(qc["status"]) == {"ok"} and set(qc["n_volumes"]) == {60}
    assert set(qc["t_r"]) == {2.0} and set(qc["t_r_source"]) == {"sidecar"}
    assert (qc["n_used"] == qc["n_voxels"]).all() and (qc["n_nan"] == 0).all()


def test_simulator_same_seed_same_series(tmp_path):
    cohort = simulate_cohort(1, 0, months=0, seed=1)
    a = write_fmri(
        cohort, tmp_path / "a", shape=(16, 18, 16), n_volumes=20, seed=9, progress=False
    )
    b = write_fmri(
        cohort, tmp_path / "b", shape=(16, 18, 16), n_volumes=20, seed=9, progress=False
    )
    pa, pb = (sorted(x.root.rglob("*_bold.nii.gz"))[0] for x in (a, b))
    assert np.array_equal(nib.load(pa).get_fdata(), nib.load(pb).get_fdata())
    assert a.truth.equals(b.truth)
    assert_allclose(
        a.truth["fc_precentral_left__precentral_right"], np.arctanh(0.5) - 0.25
    )
    assert_allclose(a.truth["fc_precentral_left__cuneus_left"], np.arctanh(0.15))


@pytest.mark.slow
def test_recovers_als_motor_effect(tmp_path):
    cohort = simulate_cohort(8, 8, months=0, seed=21)
    sim = write_fmri(
        cohort,
        tmp_path / "d",
        shape=(16, 18, 16),
        n_volumes=200,
        t_r=2.0,
        seed=5,
        progress=False,
    )
    nets = {"motor": list(FMRI_NETWORKS["motor"]), "visual": ["cuneus_left"]}
    res = extract_connectivity(
        sim.root,
        sim.atlas,
        confounds=list(CONF[:3]) + ["trans_z", "rot_x", "rot_y", "white_matter", "csf"],
        networks=nets,
        cov_estimator="empirical",
        progress=False,
    )
    f = res.features.merge(sim.truth[["subject_id", "session", "group"]])
    als = f["group"] == "als"
    diff = f.loc[als, "fcnet_motor"].mean() - f.loc[~als, "fcnet_motor"].mean()
    # truth: -0.25 in Fisher z; SE of the group difference is about 0.05 here
    assert -0.35 < diff < -0.15  # measured -0.24 (seed 21/5)
    control = f.loc[~als, "fcnet_motor"].mean()
    assert abs(control - np.arctanh(0.5)) < 0.12
    cross = (
        f.loc[als, "fcnet_motor__visual"].mean()
        - f.loc[~als, "fcnet_motor__visual"].mean()
    )
    assert abs(cross) < 0.1
    # without the confound regression the motion/CSF mix swamps the motor edges
    raw = extract_connectivity(
        sim.root, sim.atlas, networks=nets, cov_estimator="empirical", progress=False
    ).features
    assert abs(raw["fcnet_motor"].mean() - np.arctanh(0.5)) > 0.2


# --------------------------------------------------------------------------- errors


def _one_session(tmp_path, data, *, t_r=2.0, sidecar=True, conf=None, unit="sec"):
    labels = np.zeros((6, 6, 6), dtype=np.int16)
    labels[:3] = 1
    labels[3:] = 2
    tmp_path.mkdir(parents=True, exist_ok=True)
    atlas = tmp_path / "a_dseg.nii.gz"
    nib.save(nib.Nifti1Image(labels, AFFINE), atlas)
    pd.DataFrame({"index": [1, 2], "name": ["m1", "m2"]}).to_csv(
        tmp_path / "a_dseg.tsv", sep="\t", index=False
    )
    func = tmp_path / "d" / "sub-01" / "ses-m00" / "func"
    func.mkdir(parents=True)
    (tmp_path / "d" / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tacq_time\nses-m00\t2020-01-02\n"
    )
    path = func / "sub-01_ses-m00_task-rest_bold.nii.gz"
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), AFFINE)
    img.header.set_xyzt_units("mm", unit)
    if np.ndim(data) == 4:
        img.header.set_zooms((3.0, 3.0, 3.0, t_r if unit == "sec" else t_r * 1000))
    nib.save(img, path)
    if sidecar:
        (func / "sub-01_ses-m00_task-rest_bold.json").write_text(
            json.dumps({"RepetitionTime": t_r})
        )
    if conf is not None:
        conf.to_csv(
            func / "sub-01_ses-m00_task-rest_desc-confounds_timeseries.tsv",
            sep="\t",
            index=False,
            na_rep="n/a",
        )
    return tmp_path / "d", atlas, path


def _data(n_t=60, shape=(6, 6, 6)):
    return np.random.default_rng(0).normal(100, 1, (*shape, n_t))


def _quiet(**kw):
    return dict(progress=False, **kw)


def test_three_d_image_refused(tmp_path):
    root, atlas, path = _one_session(tmp_path, _data()[..., 0])
    with pytest.raises(
        ImagingError, match=r"sub-01_ses-m00_task-rest_bold\.nii\.gz.*4-D"
    ):
        extract_connectivity(root, atlas, **_quiet())


def test_atlas_grid_mismatch_names_file(tmp_path):
    root, _, path = _one_session(tmp_path, _data(shape=(7, 6, 6)))
    labels = np.zeros((6, 6, 6), dtype=np.int16)
    labels[:3], labels[3:] = 1, 2
    atlas = tmp_path / "b_dseg.nii.gz"
    nib.save(nib.Nifti1Image(labels, AFFINE), atlas)
    pd.DataFrame({"index": [1, 2], "name": ["m1", "m2"]}).to_csv(
        tmp_path / "b_dseg.tsv", sep="\t", index=False
    )
    with pytest.raises(ImagingError, match=r"bold\.nii\.gz: grid \(7, 6, 6\) differs"):
        extract_connectivity(root, atlas, **_quiet())


def test_missing_confound_column_names_file_and_column(tmp_path):
    conf = pd.DataFrame({"trans_x": np.arange(60.0), "csf": np.ones(60)})
    root, atlas, _ = _one_session(tmp_path, _data(), conf=conf)
    with pytest.raises(
        ImagingError, match=r"desc-confounds_timeseries\.tsv: confounds column 'rot_z'"
    ):
        extract_connectivity(root, atlas, confounds=["trans_x", "rot_z"], **_quiet())


def test_confounds_file_missing(tmp_path):
    root, atlas, _ = _one_session(tmp_path, _data())
    with pytest.raises(ImagingError, match="no \\*_desc-confounds_timeseries.tsv"):
        extract_connectivity(root, atlas, confounds=["csf"], **_quiet())


def test_confound_na_inside_series_and_leading_na(tmp_path):
    x = np.random.default_rng(1).normal(size=60)
    inner = x.copy()
    inner[10] = np.nan
    lead = x.copy()
    lead[0] = np.nan
    conf = pd.DataFrame({"inner": inner, "lead": lead})
    root, atlas, _ = _one_session(tmp_path, _data(), conf=conf)
    with pytest.raises(ImagingError, match=r"line 12, column inner: n/a inside"):
        extract_connectivity(root, atlas, confounds=["inner"], **_quiet())
    res = extract_connectivity(root, atlas, confounds=["lead"], **_quiet())
    assert res.qc["n_confounds"].iloc[0] == 1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a\tb\n" + "1\t2\n" * 59, "has 59 rows, but .* has 60 volumes"),
        ("a\tb\n" + "1\t2\n" * 30 + "1\n" + "1\t2\n" * 29,
         "line 32 has 1 fields, the header 2"),
        ("a\tb\n" + "1\tx\n" * 60, "column b: not numbers"),
        ("a\tb\n" + "1\t2\n" * 5 + "1\tinf\n" + "1\t2\n" * 54,
         "line 7, column b: not finite"),
        ("", "the file is empty"),
    ],
)  # fmt: skip
def test_confounds_table_errors_name_file_line_and_column(tmp_path, text, match):
    root, atlas, _ = _one_session(tmp_path, _data(), conf=pd.DataFrame({"a": [0.0]}))
    conf = next(root.rglob("*_desc-confounds_timeseries.tsv"))
    conf.write_text(text)
    with pytest.raises(ImagingError, match=match) as err:
        extract_connectivity(root, atlas, confounds=["a", "b"], **_quiet())
    assert "desc-confounds_timeseries.tsv" in str(err.value)


def test_confounds_table_plain_and_quoted_read_alike(tmp_path):
    rng = np.random.default_rng(3)
    conf = pd.DataFrame({"trans_x": rng.normal(size=60), "csf": rng.normal(size=60)})
    root, atlas, _ = _one_session(tmp_path / "plain", _data(), conf=conf)
    plain = extract_connectivity(root, atlas, confounds=["trans_x", "csf"], **_quiet())
    path = next(root.rglob("*_desc-confounds_timeseries.tsv"))
    lines = path.read_text().splitlines()
    quoted = ['"' + c.replace("\t", '"\t"') + '"' for c in lines]
    path.write_text("\n".join(quoted) + "\n\n")  # quoted cells, trailing blank line
    again = extract_connectivity(root, atlas, confounds=["trans_x", "csf"], **_quiet())
    np.testing.assert_array_equal(plain.matrices, again.matrices)


def test_too_few_volumes(tmp_path):
    root, atlas, _ = _one_session(tmp_path, _data(n_t=8))
    with pytest.raises(ImagingError, match="has 8 volumes; at least 10"):
        extract_connectivity(root, atlas, **_quiet())
    root2, atlas2, _ = _one_session(tmp_path / "x", _data(n_t=30))
    with pytest.raises(ImagingError, match="Butterworth filter needs more than"):
        extract_connectivity(root2, atlas2, **_quiet())
    res = extract_connectivity(root2, atlas2, high_pass=None, low_pass=None, **_quiet())
    assert res.matrices.shape == (1, 2, 2)


def test_low_pass_at_nyquist(tmp_path):
    root, atlas, _ = _one_session(tmp_path, _data(), t_r=5.0)
    with pytest.raises(ImagingError, match=r"low_pass=0.1 Hz is not below the Nyquist"):
        extract_connectivity(root, atlas, **_quiet())


def test_t_r_from_header_in_msec(tmp_path):
    root, atlas, _ = _one_session(
        tmp_path, _data(), t_r=2.5, sidecar=False, unit="msec"
    )
    res = extract_connectivity(root, atlas, **_quiet())
    assert res.qc["t_r"].iloc[0] == pytest.approx(2.5)
    assert res.qc["t_r_source"].iloc[0] == "header"
    res = extract_connectivity(root, atlas, t_r=1.0, **_quiet())
    assert res.qc["t_r_source"].iloc[0] == "argument"
    root, atlas, _ = _one_session(
        tmp_path / "u", _data(), t_r=1.0, sidecar=False, unit="unknown"
    )
    with pytest.raises(ImagingError, match=r"bold\.nii\.gz: no repetition time"):
        extract_connectivity(root, atlas, **_quiet())


def test_argument_errors(small_bids):
    root, atlas, *_ = small_bids
    with pytest.raises(ValueError, match="`high_pass` must be below `low_pass`"):
        extract_connectivity(root, atlas, high_pass=0.1, low_pass=0.05, **_quiet())
    with pytest.raises(ValueError, match="kind"):
        extract_connectivity(root, atlas, kind="covariance", **_quiet())
    with pytest.raises(ImagingError, match="region 'thalamus' is not in the atlas"):
        extract_connectivity(root, atlas, edges=[("thalamus", "cuneus")], **_quiet())
    with pytest.raises(ImagingError, match=r"networks\['motor'\]: 'm9\*' matches no"):
        extract_connectivity(root, atlas, networks={"motor": ["m9*"]}, **_quiet())


def test_tangent_needs_two_sessions(tmp_path):
    root, atlas, _ = _one_session(tmp_path, _data())
    with pytest.raises(ValueError, match="tangent.*two or more sessions"):
        extract_connectivity(root, atlas, kind="tangent", **_quiet())


def test_nan_voxels_left_out_and_empty_region_warned(tmp_path):
    data = _data()
    data[0, 0, 0, 5] = np.nan  # one voxel of region 1 (m1) at one volume
    root, atlas, _ = _one_session(tmp_path, data)
    res = extract_connectivity(root, atlas, **_quiet())
    qc = res.qc.set_index("region")
    assert qc.loc["m1", "n_nan"] == 1 and qc.loc["m1", "n_used"] == 3 * 36 - 1
    data[:3] = np.nan  # all of m1
    root, atlas, _ = _one_session(tmp_path / "e", data)
    with pytest.warns(DataWarning, match="region 'm1': empty"):
        res = extract_connectivity(root, atlas, **_quiet())
    assert res.qc["status"].tolist() == ["empty", "ok"]
    assert np.isnan(res.features["fc_m1__m2"]).all()


def test_scaled_integer_and_uncompressed_images_read_as_their_values(tmp_path):
    rng = np.random.default_rng(4)
    ints = rng.integers(0, 3000, (6, 6, 6, 40)).astype(np.int16)
    root, atlas, path = _one_session(tmp_path, ints.astype(np.float64))
    ref = extract_connectivity(root, atlas, **_quiet())
    img = nib.Nifti1Image(ints, AFFINE)
    img.header.set_slope_inter(0.25, 7.0)
    img.header.set_xyzt_units("mm", "sec")
    path.unlink()
    nib.save(img, path.with_name(path.name.removesuffix(".gz")))  # plain .nii
    res = extract_connectivity(root, atlas, **_quiet())
    assert_allclose(res.matrices, ref.matrices, atol=1e-12)  # affine map: same r


def test_truncated_series_names_file(tmp_path):
    root, atlas, path = _one_session(tmp_path, _data())
    raw = nib.load(path)
    plain = path.with_name(path.name.removesuffix(".gz"))
    nib.save(raw, plain)
    path.unlink()
    plain.write_bytes(plain.read_bytes()[:-1000])
    with pytest.raises(
        ImagingError, match=r"bold\.nii: is truncated .*volume 59 of 60"
    ):
        extract_connectivity(root, atlas, **_quiet())


def test_manifest_and_threads_give_the_folder_result(small_bids):
    root, atlas, *_ = small_bids
    folder = extract_connectivity(root, atlas, confounds=CONF, **_quiet())
    paths = sorted(str(p) for p in root.rglob("*_bold.nii.gz"))
    manifest = pd.DataFrame(
        {
            "subject_id": ["01", "02", "03"],
            "session": "m00",
            "acquisition_date": "2020-01-02",
            "metric": "bold",
            "path": paths,
        }
    )
    listed = extract_connectivity(
        manifest, atlas, confounds=CONF, n_jobs=2, batch_size=1, **_quiet()
    )
    assert_allclose(listed.matrices, folder.matrices, atol=0)
    pd.testing.assert_frame_equal(listed.features, folder.features)


def test_roi_features_skip_bold_series_in_a_shared_folder(tmp_path):
    """write_nifti's maps and write_fmri's BOLD series in one folder: the ROI
    extractor reads the maps and leaves the 4-D series to extract_connectivity."""
    from alsprog.imaging import extract_roi_features
    from alsprog.simulate import write_nifti

    cohort = simulate_cohort(1, 1, months=0, seed=4)
    out = tmp_path / "deriv"
    write_nifti(cohort, out, shape=(16, 18, 16), seed=1, progress=False)
    sim = write_fmri(
        cohort, out, shape=(16, 18, 16), n_volumes=40, seed=2, progress=False
    )
    atlas = next((out / "atlas").glob("*_dseg.nii.gz"))
    res = extract_roi_features(out, atlas, progress=False)
    assert set(res.qc["metric"]) and "bold" not in set(res.qc["metric"])
    fc = extract_connectivity(sim.root, sim.atlas, progress=False)
    assert len(fc.features) == len(res.features) == 2
