"""Raw errors where a clear one is due (issue 17, part 6).

Hostile inputs to the imaging readers (files that are not regular files, a gzip bomb,
an absurd header, maps on the wrong scale, garbled FreeSurfer tables), to the MMRM
(data it cannot fit) and to the public API of ``alsprog.design``,
``alsprog.biomarkers``, ``alsprog.forecast`` and ``alsprog.simulate`` (arguments no
function can honour).  Each case asserts the exact error class and what the message
names; the imaging cases also assert that the input is untouched and that nothing
hangs (a named pipe or ``/dev/zero`` would block or never end).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import sys
import tracemalloc
import warnings
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alsprog.errors import (
    DataValidationError,
    DataWarning,
    ImagingError,
    ModelSpecificationError,
)

posix_only = pytest.mark.skipif(
    sys.platform == "win32", reason="named pipes, devices and symlinks are POSIX"
)


def raises_exactly(cls, match):
    """``pytest.raises`` that also insists on the exact class (not a subclass)."""

    class _Exact:
        def __enter__(self):
            self._cm = pytest.raises(cls, match=match)
            self.info = self._cm.__enter__()
            return self.info

        def __exit__(self, *exc):
            out = self._cm.__exit__(*exc)
            assert type(self.info.value) is cls, (
                f"expected exactly {cls.__name__}, got {type(self.info.value).__name__}"
            )
            return out

    return _Exact()


@pytest.fixture
def no_hang():
    """Fail (instead of hanging the suite) if a call blocks for 20 s."""

    def boom(signum, frame):
        raise TimeoutError("the call blocked: a pipe or device was read")

    if not hasattr(signal, "SIGALRM"):
        yield
        return
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _digest(root: Path) -> dict[str, str]:
    """Every regular file under ``root`` -> sha256 (links and pipes by their kind)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p)] = "link:" + os.readlink(p)
        elif p.is_fifo():
            out[str(p)] = "fifo"
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# ============================================================== imaging fixtures
def _save(path: Path, data, affine=None, dtype=np.float32) -> Path:
    affine = np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=dtype), affine), path)
    return path


@pytest.fixture
def atlas(tmp_path) -> Path:
    """A 6x5x4 atlas: label 1 cst_left, 2 precentral_left, with its TSV table."""
    labels = np.zeros((6, 5, 4), dtype=np.int16)
    labels[0:3] = 1
    labels[3:6, 0:3] = 2
    path = _save(tmp_path / "atlas" / "atl_dseg.nii.gz", labels, dtype=np.int16)
    pd.DataFrame({"index": [1, 2], "name": ["cst_left", "precentral_left"]}).to_csv(
        tmp_path / "atlas" / "atl_dseg.tsv", sep="\t", index=False
    )
    return path


def _manifest(paths, metric="fa", sessions=None) -> pd.DataFrame:
    rows = []
    for i, p in enumerate(paths, start=1):
        ses = "m00" if sessions is None else sessions[i - 1]
        rows.append((f"P{i}", ses, "2021-03-01", metric, str(p)))
    return pd.DataFrame(
        rows, columns=["subject_id", "session", "acquisition_date", "metric", "path"]
    )


def _extract(man, atlas, **kw):
    from alsprog.imaging import extract_roi_features

    return extract_roi_features(man, atlas, progress=False, **kw)


def _make_trap(kind: str, path: Path, tmp_path: Path) -> str:
    """Create a non-regular file at ``path``; return words its message must hold."""
    if kind == "folder":
        path.mkdir()
        return "is a folder"
    if kind == "fifo":
        os.mkfifo(path)
        return r"is a named pipe \(FIFO\)"
    if kind == "dev_zero":
        os.symlink("/dev/zero", path)
        return r"is a character device \(a symbolic link to /dev/zero\)"
    if kind == "dev_urandom":
        os.symlink("/dev/urandom", path)
        return r"is a character device \(a symbolic link to /dev/urandom\)"
    if kind == "loop":
        other = path.with_name("other" + path.name)
        os.symlink(other, path)
        os.symlink(path, other)
        return "is a symbolic link loop"
    if kind == "dangling":
        os.symlink(tmp_path / "gone.nii.gz", path)
        return "is a dangling symbolic link .*gone.nii.gz.*does not exist"
    raise AssertionError(kind)


TRAPS = ["folder", "fifo", "dev_zero", "dev_urandom", "loop", "dangling"]


# ------------------------------------------------------- images that are not files
@posix_only
@pytest.mark.parametrize("kind", TRAPS)
def test_image_not_a_regular_file(kind, tmp_path, atlas, no_hang):
    img = tmp_path / "sub-P1_ses-m00_fa.nii.gz"
    words = _make_trap(kind, img, tmp_path)
    before = _digest(tmp_path)
    with raises_exactly(ImagingError, rf"sub-P1_ses-m00_fa\.nii\.gz: {words}"):
        _extract(_manifest([img]), atlas)
    assert _digest(tmp_path) == before


@posix_only
@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_atlas_not_a_regular_file(kind, tmp_path, no_hang):
    from alsprog.imaging._atlas import prepare_atlas

    path = tmp_path / "trap_dseg.nii.gz"
    words = _make_trap(kind, path, tmp_path)
    with raises_exactly(ImagingError, rf"trap_dseg\.nii\.gz: {words}"):
        prepare_atlas(path, labels={1: "a"})


@posix_only
@pytest.mark.parametrize(
    "which", ["lookup table", "manifest", "sessions table", "FreeSurfer stats"]
)
def test_text_input_is_a_pipe(which, tmp_path, atlas, no_hang):
    """Every text input of alsprog.imaging is opened the same guarded way."""
    from alsprog.imaging import read_freesurfer_stats

    img = _save(tmp_path / "img.nii.gz", np.full((6, 5, 4), 0.5))
    if which == "lookup table":
        pipe = tmp_path / "labels.tsv"
        os.mkfifo(pipe)
        call = lambda: _extract(_manifest([img]), atlas, labels=pipe)  # noqa: E731
    elif which == "manifest":
        pipe = tmp_path / "manifest.csv"
        os.mkfifo(pipe)
        call = lambda: _extract(pipe, atlas)  # noqa: E731
    elif which == "sessions table":
        ses = tmp_path / "bids" / "sub-P1" / "ses-m00" / "dwi"
        _save(ses / "sub-P1_ses-m00_fa.nii.gz", np.full((6, 5, 4), 0.5))
        pipe = tmp_path / "bids" / "sub-P1" / "sub-P1_sessions.tsv"
        os.mkfifo(pipe)
        call = lambda: _extract(tmp_path / "bids", atlas)  # noqa: E731
    else:
        pipe = tmp_path / "lh.aparc.stats"
        os.mkfifo(pipe)
        call = lambda: read_freesurfer_stats(pipe)  # noqa: E731
    with raises_exactly(
        ImagingError, rf"{pipe.name}: is a named pipe \(FIFO\), not a regular"
    ):
        call()


# ------------------------------------------------------------- gzip bomb, header
def _bomb(path: Path, zeros_mb: int) -> Path:
    """A valid 64^3 float32 header and data, then ``zeros_mb`` MiB more zeros, in one
    gzip stream written chunk by chunk (200 MiB of zeros compress to ~200 KiB)."""
    img = nib.Nifti1Image(np.zeros((64, 64, 64), np.float32), np.eye(4))
    co = zlib.compressobj(6, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    with open(path, "wb") as fh:
        fh.write(co.compress(img.to_bytes()))
        for _ in range(zeros_mb):
            fh.write(co.compress(chunk))
        fh.write(co.flush())
    return path


def test_gzip_bomb_refused_without_inflating_it(tmp_path):
    from alsprog.imaging._nifti import read_volume

    path = _bomb(tmp_path / "bomb.nii.gz", 200)
    assert path.stat().st_size < 1_000_000  # the bomb is small on disk
    before = _digest(tmp_path)
    tracemalloc.start()
    try:
        with raises_exactly(
            ImagingError,
            r"bomb\.nii\.gz: decompresses to more than .* though its header implies "
            r"1,048,928 .*\(shape \(64, 64, 64\) float32\).*decompression bomb",
        ):
            read_volume(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB allocated: the bomb was inflated"
    assert _digest(tmp_path) == before


def test_gzip_with_a_little_padding_still_reads(tmp_path):
    """A stream a few bytes longer than the header implies is within the slack."""
    from alsprog.imaging._nifti import read_volume

    img = nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.eye(4))
    path = tmp_path / "pad.nii.gz"
    path.write_bytes(gzip.compress(img.to_bytes() + bytes(100)))
    vol = read_volume(path)
    assert vol.shape == (2, 3, 4)
    assert vol.grid()[1, 2, 3] == 23.0


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ((1000, 1000, 1000), r"header gives shape \(1000, 1000, 1000\) "
                             r"\(1,000,000,000 voxels of float32"),
        ((30000, 30000, 2), r"header gives shape \(30000, 30000, 2\)"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("gz", [False, True])
def test_absurd_header_refused_before_allocation(tmp_path, shape, words, gz):
    from alsprog.imaging._nifti import read_volume

    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.float32)
    raw = hdr.binaryblock + bytes(4) + bytes(64)  # header, extension flag, 16 voxels
    path = tmp_path / ("huge.nii.gz" if gz else "huge.nii")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    tracemalloc.start()
    try:
        with raises_exactly(ImagingError, rf"huge\.nii(\.gz)?: {words}"):
            read_volume(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_absurd_data_offset_refused(tmp_path):
    from alsprog.imaging._nifti import read_volume

    hdr = nib.Nifti1Header()
    hdr.set_data_shape((2, 2, 2))
    hdr.set_data_dtype(np.float32)
    hdr.set_data_offset(2**40)
    path = tmp_path / "offset.nii"
    path.write_bytes(hdr.binaryblock + bytes(36))
    with raises_exactly(ImagingError, r"offset\.nii: header puts the voxel data at"):
        read_volume(path)


# ------------------------------------------------- values out of range, per file
@pytest.mark.parametrize(
    ("metric", "value", "words"),
    [
        ("fa", 500.0, r"fa_cst_left = 500 \(allowed 0-1\)"),
        ("fa", -0.2, r"fa_cst_left = -0.2 \(allowed 0-1\)"),
        ("thickness", -2.5, r"thickness_cst_left = -2.5 \(allowed 0-10\)"),
        ("md", -0.7, r"md_cst_left = -0.7 \(allowed >= 0\)"),
    ],
)
def test_out_of_range_map_names_file_subject_session(
    tmp_path, atlas, metric, value, words
):
    good = _save(tmp_path / "good.nii.gz", np.full((6, 5, 4), 0.5))
    bad = _save(tmp_path / "scaled.nii.gz", np.full((6, 5, 4), value))
    man = _manifest([good, bad], metric=metric, sessions=["m00", "m06"])
    with raises_exactly(
        ImagingError,
        rf"1 image\(s\) give regional values outside the data dictionary's range.*"
        rf"\n  .*scaled\.nii\.gz \(subject P2, session m06\): {words}",
    ) as info:
        _extract(man, atlas)
    assert "good.nii.gz" not in str(info.value)
    assert "row" not in str(info.value)


def test_nan_everywhere_in_a_region_warns_with_file_subject_session(tmp_path, atlas):
    data = np.full((6, 5, 4), 0.5)
    data[0:3] = np.nan  # every voxel of cst_left
    img = _save(tmp_path / "holes.nii.gz", data)
    man = _manifest([img], sessions=["m12"])
    with pytest.warns(
        DataWarning,
        match=r"holes\.nii\.gz \(subject P1, session m12\), region 'cst_left': all "
        r"60 of its voxels are NaN/inf",
    ):
        features, qc = _extract(man, atlas)
    assert np.isnan(features.loc[0, "fa_cst_left"])
    assert features.loc[0, "fa_precentral_left"] == pytest.approx(0.5)


# ------------------------------------------------------- FreeSurfer stats files
LH = (
    "# Measure Cortex, MeanThickness, Mean Thickness, 2.45, mm\n"
    "# hemi lh\n"
    "# ColHeaders StructName NumVert SurfArea GrayVol ThickAvg ThickStd\n"
    "precentral 8034 5386 14357 2.512 0.552\n"
    "postcentral 7000 4386 10357 2.112 0.452\n"
)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (LH[:-20].encode(), r"line 5: 3 fields, the ColHeaders line names 6"),
        (LH[: LH.index("# ColHeaders") + 8].encode(),
         r"is not a FreeSurfer stats file or is truncated \(no '# ColHeaders' line in "
         r"its 3 lines\)"),
        (LH[:40].encode(), r"line 1: '# Measure' line has 3 fields; expected 5"),
        (LH.encode()[:150] + b"\xff\xfe\x00garbage" + LH.encode()[150:],
         r"cannot be read as UTF-8 text \(line 4: byte b'\\xff'\)"),
        (LH.replace("2.512", "nan").encode(),
         r"line 4: thickness_precentral_left = nan is outside 0-10"),
        (LH.replace("10357", "-10357").encode(),
         r"line 5: volume_postcentral_left = -10357.0 is outside >= 0"),
        (LH.replace("2.45, mm", "1e400, mm").encode(),
         r"line 1: thickness_cortex_left = inf is outside 0-10"),
    ],
    ids=["truncated_row", "truncated_header", "truncated_measure", "binary", "nan",
         "negative", "inf"],
)  # fmt: skip
def test_freesurfer_truncated_or_garbled_names_file_and_line(tmp_path, content, words):
    from alsprog.errors import ImagingError as _ImagingError
    from alsprog.imaging import read_freesurfer_stats

    path = tmp_path / "lh.aparc.stats"
    path.write_bytes(content)
    with raises_exactly(_ImagingError, rf"lh\.aparc\.stats: {words}"):
        read_freesurfer_stats(path)
    assert path.read_bytes() == content


# ===================================================================== MMRM
def _trial(n=40, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    visits = [3, 6, 9, 12]
    arm = np.repeat(["placebo", "active"], n // 2)
    df = pd.DataFrame(
        {
            "subject_id": np.repeat([f"T{i:03d}" for i in range(n)], 4),
            "visit": np.tile(visits, n),
            "arm": np.repeat(arm, 4),
            "baseline_total": np.repeat(rng.integers(30, 46, n), 4).astype(float),
        }
    )
    df["months"] = df["visit"].astype(float)
    b = rng.normal(0, 2, n)
    df["chg"] = (
        -0.9 * df["visit"]
        + 0.3 * df["visit"] * (df["arm"] == "active")
        + b[np.repeat(np.arange(n), 4)]
        + rng.normal(0, 1.5, len(df))
    )
    return df


def _hostile_mmrm(case: str) -> tuple[pd.DataFrame, str, dict]:
    f = "chg ~ visit * arm + baseline_total"
    df = _trial()
    if case == "constant":
        df["chg"] = 1.0
    elif case == "visit_with_one_subject":
        extra = df[df["visit"] == 3].iloc[:1].assign(visit=15, months=15.0)
        df = pd.concat([df, extra], ignore_index=True)
        f = "chg ~ visit + arm + baseline_total"
    elif case == "zero_at_baseline_visit":
        extra = df[df["visit"] == 3].assign(visit=0, months=0.0, chg=0.0)
        df = pd.concat([df, extra], ignore_index=True)
    elif case == "exact_fit":
        df["chg"] = -0.9 * df["visit"] + 0.01 * df["baseline_total"]
    elif case == "infinite_outcome":
        df.loc[5, "chg"] = np.inf
    elif case == "text_outcome":
        df["chg"] = df["chg"].round(2).astype(str)
    elif case == "huge_scale":
        df["chg"] = df["chg"] * 1e200
    elif case == "visits_never_together":
        first = df["subject_id"].isin(df["subject_id"].unique()[::2])
        df = df[~((first & (df["visit"] == 12)) | (~first & (df["visit"] == 9)))]
    return df, f, {"reference": "placebo"}


MMRM_CASES = {
    "constant": r"The outcome 'chg' is constant \(1\.0 in all 160 rows\)",
    "visit_with_one_subject": r"Visit 15 \('visit'\) has 1 subject; an unstructured "
    r"covariance needs at least 2 per visit",
    "zero_at_baseline_visit": r"At visit 0 \('visit'\) 'chg' is 0\.0 for all 40 "
    r"subjects.*baseline visit",
    "exact_fit": r"reproduce the outcome 'chg' exactly \(all residuals 0\)",
    "infinite_outcome": r"The outcome 'chg' .* is inf for subject 'T001' at visit 6",
    "text_outcome": r"The outcome 'chg' .* must be numeric; it has \d+ categories",
    "huge_scale": r"The outcome 'chg' has standard deviation .*e\+200.*rescale it",
    "visits_never_together": r"No subject has both visit 9 and visit 12",
}


@pytest.mark.parametrize("case", list(MMRM_CASES))
def test_mmrm_unfittable_data_is_a_specification_error(case):
    from alsprog.models import MMRM

    df, formula, kw = _hostile_mmrm(case)
    before = df.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning, no RuntimeWarning
        with raises_exactly(ModelSpecificationError, MMRM_CASES[case]):
            MMRM(formula, **kw).fit(df)
    pd.testing.assert_frame_equal(df, before)


# ============================================================ public API sweep
def _design():
    from alsprog.design import TrialDesign

    return TrialDesign()


def _marker(**kw):
    from alsprog.design import BaselineMarker

    return BaselineMarker(**{"name": "nfl", "mean": 3.0, "sd": 0.5, "corr_slope": -0.4,
                             **kw})  # fmt: skip


def _api_cases():
    import alsprog.design as D

    td = _design()
    yield (
        "sample_size_slope_tiny_delta",
        lambda: D.sample_size_slope(1e-300),
        ModelSpecificationError,
        r"the effect 1e-300 is too small to detect",
    )
    yield (
        "sample_size_mmrm_empty_corr",
        lambda: D.sample_size_mmrm(2.0, 5.0, np.zeros((0, 0))),
        ModelSpecificationError,
        r"`corr` must be a square matrix with one row per visit; got shape \(0, 0\)",
    )
    yield (
        "sample_size_slope_times_overflow",
        lambda: D.sample_size_slope(0.2, times=(0, 1e300)),
        ModelSpecificationError,
        r"`times` must be visit times in months within",
    )
    yield (
        "sample_size_table_empty",
        lambda: D.sample_size_table([], mean_slope=-0.9),
        ModelSpecificationError,
        r"`slowings` must hold at least 1 number; got \[\]",
    )
    yield (
        "simulate_power_n_jobs_0",
        lambda: D.simulate_power(td, 10, n_sims=2, n_jobs=0, progress=False),
        ModelSpecificationError,
        r"`n_jobs` must be a non-zero integer \(-1: all cores\) or None; got 0",
    )
    yield (
        "simulate_power_billion_patients",
        lambda: D.simulate_power(td, 10**9, n_sims=2, n_jobs=1, progress=False),
        ModelSpecificationError,
        r"`n_per_arm` must be at most 100,000; got 1,000,000,000",
    )
    yield (
        "simulate_power_unanalysable_trials",
        lambda: D.simulate_power(
            td, 2, n_sims=20, n_jobs=1, dropout=0.99, seed=1, progress=False
        ),
        ModelSpecificationError,
        r"a simulated trial \(4 patients, \d+ visits observed\) has too few follow-up "
        r"visits.*raise `n_per_arm`",
    )
    yield (
        "power_curve_scalar_n",
        lambda: D.power_curve(td, 10),
        ModelSpecificationError,
        r"`n_per_arm` must be a sequence of numbers; got 10",
    )
    yield (
        "power_curve_not_a_design",
        lambda: D.power_curve("design.toml"),
        ModelSpecificationError,
        r"`design` must be a TrialDesign; got str",
    )
    yield (
        "power_curve_unknown_option",
        lambda: D.power_curve(td, [10], simulate=True, n_sims=2, dropuot=0.1),
        ModelSpecificationError,
        r"unknown option\(s\) 'dropuot' for simulate_power; valid: .*dropout",
    )
    yield (
        "enriched_design_not_enrichment",
        lambda: D.enriched_design(td, "nfl > 3"),
        ModelSpecificationError,
        r"`enrichment` must be an Enrichment; got str",
    )
    yield (
        "adjusted_design_not_markers",
        lambda: D.adjusted_design(td, ["nfl"]),
        ModelSpecificationError,
        r"`covariates` must be BaselineMarker objects; got 'nfl'",
    )
    yield (
        "adjusted_design_duplicate_markers",
        lambda: D.adjusted_design(td, [_marker(), _marker()]),
        ModelSpecificationError,
        r"`covariates` name marker\(s\) 'nfl' more than once",
    )
    yield (
        "marker_name_is_code",
        lambda: _marker(name="{__import__('os').getcwd()}"),
        ModelSpecificationError,
        r"`name` must be a column name .*got \"\{__import__",
    )
    yield (
        "marker_mean_nan",
        lambda: _marker(mean=float("nan")),
        ModelSpecificationError,
        r"`nfl\.mean` must be in \(-inf, inf\); got nan",
    )
    yield (
        "enrichment_threshold_nan",
        lambda: D.Enrichment(_marker(), threshold=float("nan")),
        ModelSpecificationError,
        r"`threshold` must be in \(-inf, inf\); got nan",
    )


def _bio_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 40
    group = np.repeat(["als", "control"], n // 2)
    return pd.DataFrame(
        {
            "subject_id": [f"S{i:02d}" for i in range(n)],
            "group": group,
            "site": np.tile(["A", "B"], n // 2),
            "age": rng.uniform(40, 80, n),
            "sex": rng.choice(["F", "M"], n),
            "fa_cst_left": rng.normal(0.55, 0.03, n) - 0.03 * (group == "als"),
            "md_cst_left": rng.normal(0.75, 0.04, n),
        }
    )


def _bio_cases():
    import alsprog.biomarkers as B

    tab = _bio_table()
    clf = B.ImagingClassifier(features=["fa_cst_left", "md_cst_left"], random_state=0)
    kw = {"n_permutations": 0, "n_bootstrap": 20, "seed": 0}
    inf_tab = tab.assign(fa_cst_left=tab["fa_cst_left"].where(tab.index != 3, np.inf))
    yield (
        "evaluate_classifier_inf_feature",
        lambda: B.evaluate_classifier(inf_tab, clf=clf, **kw),
        DataValidationError,
        r"row 4, subject S03, column fa_cst_left: 1 value\(s\) not finite numbers; "
        r"the first, .*inf.*, is infinite",
    )
    yield (
        "evaluate_classifier_text_feature",
        lambda: B.evaluate_classifier(tab.assign(md_cst_left="high"), clf=clf, **kw),
        DataValidationError,
        r"column md_cst_left: 40 value\(s\) not finite numbers; the first, 'high', is "
        r"not a number",
    )
    yield (
        "evaluate_classifier_clf_is_text",
        lambda: B.evaluate_classifier(tab, clf="logistic", **kw),
        ModelSpecificationError,
        r"`clf` must be an ImagingClassifier; got str",
    )
    yield (
        "evaluate_classifier_n_jobs_text",
        lambda: B.evaluate_classifier(tab, clf=clf, n_jobs="all", **kw),
        ModelSpecificationError,
        r"`n_jobs` must be a non-zero integer \(-1: all cores\) or None; got 'all'",
    )
    yield (
        "evaluate_classifier_trillion_bootstraps",
        lambda: B.evaluate_classifier(tab, clf=clf, **{**kw, "n_bootstrap": 10**12}),
        ModelSpecificationError,
        r"`n_bootstrap` must be an integer in \[1, 1000000\]; got 1000000000000",
    )
    yield (
        "classifier_bad_class_weight",
        lambda: B.ImagingClassifier(class_weight="equal").fit(tab, tab["group"]),
        ModelSpecificationError,
        r"`class_weight` must be 'balanced', a dict \{class: weight\} or None; got "
        r"'equal'",
    )
    yield (
        "classifier_unknown_grid_parameter",
        lambda: B.ImagingClassifier(param_grid={"alpha": [1.0]}).fit(tab, tab["group"]),
        ModelSpecificationError,
        r"`param_grid` names 'alpha', not a parameter of the 'logistic' estimator; "
        r"valid: .*\bC\b",
    )
    yield (
        "classifier_predict_no_rows",
        lambda: (
            B.ImagingClassifier(random_state=0)
            .fit(tab, tab["group"])
            .predict_proba(tab.iloc[:0])
        ),
        ModelSpecificationError,
        r"`X` has no rows to predict",
    )
    yield (
        "learning_curve_sizes_empty",
        lambda: B.learning_curve(tab, clf=clf, train_sizes=(), n_repeats=1, seed=0),
        ModelSpecificationError,
        r"`train_sizes` must hold at least one number of training subjects",
    )
    yield (
        "site_confounding_lengths_differ",
        lambda: B.check_site_confounding(["A", "B", "A"], ["als", "control"]),
        ModelSpecificationError,
        r"`sites` has 3 values for 2 values of `y`",
    )
    yield (
        "select_features_not_names",
        lambda: B.select_features(["fa_cst_left"], 42),
        ModelSpecificationError,
        r"`features` must be a sequence of column names; got 42",
    )


def _forecast_cases():
    import alsprog.forecast as F
    from alsprog.models import LinearMixedModel

    hist = pd.DataFrame(
        {"subject_id": ["A", "A"], "months": [0.0, 3.0], "alsfrs_r_total": [40, 38]}
    )
    yield (
        "forecast_trillion_draws",
        lambda: F.forecast(
            LinearMixedModel("alsfrs_r_total ~ months + (months | subject_id)"),
            hist,
            [6],
            n_samples=10**12,
        ),
        ValueError,
        r"`n_samples` must be an integer in \[1, 1000000\]; got 1000000000000",
    )
    yield (
        "crps_draws_shapes_differ",
        lambda: F.crps_draws(np.zeros((3, 10)), np.zeros(4)),
        ValueError,
        r"`draws` must have shape \(rows, draws\) with one `y` per row; got shapes "
        r"\(3, 10\) and \(4,\)",
    )
    yield (
        "evaluate_text_forecasts",
        lambda: F.evaluate(hist.assign(mean="n/a"), hist),
        ModelSpecificationError,
        r"`forecasts` column 'mean' holds 2 value\(s\) that are not numbers, e.g. 'n/a'",
    )
    yield (
        "evaluate_slope_window_reversed",
        lambda: F.evaluate(hist.assign(mean=1.0), hist, slope_window=(12, 3)),
        ValueError,
        r"`slope_window` must be \(start, end\) with start < end; got \(12, 3\)",
    )
    yield (
        "backtest_model_is_text",
        lambda: F.backtest(hist, {"lmm": "lmm.nc"}),
        TypeError,
        r"`models`\['lmm'\] must be an unfitted alsprog model or forecast baseline",
    )
    yield (
        "backtest_outcome_missing",
        lambda: F.backtest(hist, {"dfs": F.DeltaFSBaseline()}, outcome="alsfrs"),
        ModelSpecificationError,
        r"`data` lacks column\(s\) 'alsfrs'",
    )
    yield (
        "calibrated_forecaster_of_text",
        lambda: F.CalibratedForecaster("lmm").fit(hist),
        TypeError,
        r"`model` must be an unfitted alsprog model or forecast baseline .*got 'lmm'",
    )
    yield (
        "history_features_without_outcome",
        lambda: F.history_features(hist.drop(columns="alsfrs_r_total")),
        ModelSpecificationError,
        r"`history` lacks column\(s\) 'alsfrs_r_total'",
    )
    yield (
        "window_slopes_reversed",
        lambda: F.window_slopes(hist, start=12, end=3),
        ValueError,
        r"`end` must be after `start`; got start=12, end=3",
    )


def _simulate_cases():
    import alsprog.simulate as S

    hist = pd.DataFrame(
        {
            "subject_id": ["A", "A"],
            "months": [0.0, 3.0],
            "alsfrs_r_total": [40, 38],
            "onset_months_before_baseline": [12.0, 12.0],
            "onset_site": ["spinal", "spinal"],
        }
    )
    yield (
        "simulate_cohort_billion_patients",
        lambda: S.simulate_cohort(10**9, seed=0),
        ValueError,
        r"make 7,000,000,000 visit rows; at most 10,000,000",
    )
    yield (
        "oracle_trillion_draws",
        lambda: S.oracle_forecast(hist, [6], n_samples=10**12),
        ValueError,
        r"`n_samples` must be an integer in \[1, 1000000\]; got 1000000000000",
    )


API_CASES = [*_api_cases(), *_bio_cases(), *_forecast_cases(), *_simulate_cases()]


@pytest.mark.parametrize(
    ("call", "cls", "match"),
    [c[1:] for c in API_CASES],
    ids=[c[0] for c in API_CASES],
)
def test_public_api_hostile_arguments(call, cls, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with raises_exactly(cls, match):
            call()
