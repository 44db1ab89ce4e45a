"""read_freesurfer_dir: a SUBJECTS_DIR with several subjects and sessions, in
FreeSurfer's cross-sectional, longitudinal (<tp>.long.<base>) and BIDS namings
(issue 18, item 16)."""

from __future__ import annotations

import os
import warnings

import pandas as pd
import pytest

from alsprog.data import read_imaging, write_table
from alsprog.errors import DataWarning, ImagingError
from alsprog.imaging import read_freesurfer_dir

# The fields of FreeSurfer 7 stats files that the reader uses (the values encode the
# folder they come from, so each row shows which folder was read).
ASEG = """\
# Measure EstimatedTotalIntraCranialVol, eTIV, Estimated Total Intracranial Volume, {etiv}, mm^3
# ColHeaders  Index SegId NVoxels Volume_mm3 StructName normMean
  1  17      4265     {hippo}  Left-Hippocampus                  78.1553
"""
APARC = """\
# hemi {hemi}
# Measure Cortex, MeanThickness, Mean Thickness, {mean}, mm
# ColHeaders StructName NumVert SurfArea GrayVol ThickAvg ThickStd
precentral 8034 5386 14357 {pre} 0.552
"""


def fs_folder(root, name, code: float, *, files=("aseg", "lh", "rh")):
    """A FreeSurfer subject folder whose values encode ``code``."""
    stats = root / name / "stats"
    stats.mkdir(parents=True)
    (root / name / "mri").mkdir()
    if "aseg" in files:
        (stats / "aseg.stats").write_text(
            ASEG.format(etiv=1.5e6 + code, hippo=4000 + code)
        )
    for hemi in ("lh", "rh"):
        if hemi in files:
            (stats / f"{hemi}.aparc.stats").write_text(
                APARC.format(hemi=hemi, mean=2.0 + code / 100, pre=2.5 + code / 100)
            )
    return root / name


@pytest.fixture
def subjects_dir(tmp_path):
    """Two subjects through the longitudinal stream (FreeSurfer tutorial naming and
    BIDS naming), one cross-sectional BIDS subject, and what a SUBJECTS_DIR also
    holds: fsaverage, a folder that is not a subject."""
    root = tmp_path / "subjects"
    # OASIS-style: cross <tp>, base <base> (base-tps), long <tp>.long.<base>
    fs_folder(root, "P01_m00", 1)
    fs_folder(root, "P01_m06", 2)
    fs_folder(root, "P01", 3)
    (root / "P01" / "base-tps").write_text("P01_m00\nP01_m06\n")
    fs_folder(root, "P01_m00.long.P01", 4)
    fs_folder(root, "P01_m06.long.P01", 5)
    # BIDS app naming: sub-<id>_ses-<label>, base sub-<id>
    fs_folder(root, "sub-02_ses-01", 6)
    fs_folder(root, "sub-02_ses-02", 7)
    fs_folder(root, "sub-02", 8)
    fs_folder(root, "sub-02_ses-01.long.sub-02", 9)
    fs_folder(root, "sub-02_ses-02.long.sub-02", 10)
    # cross-sectional only
    fs_folder(root, "sub-03_ses-01", 11)
    fs_folder(root, "fsaverage", 99)
    (root / "notes").mkdir()
    return root


DATES = pd.DataFrame(
    {
        "subject_id": ["P01", "P01", "02", "02", "03"],
        "session": ["m00", "m06", "01", "02", "01"],
        "acquisition_date": [
            "2021-01-04", "2021-07-05", "2020-02-03", "2020-08-03", "2022-05-09",
        ],
    }
)  # fmt: skip


def test_longitudinal_runs_are_read_in_one_call(subjects_dir, tmp_path):
    t = read_freesurfer_dir(subjects_dir, sessions=DATES)
    assert t.columns[:3].tolist() == ["subject_id", "session", "acquisition_date"]
    assert list(zip(t["subject_id"], t["session"], strict=True)) == [
        ("02", "01"), ("02", "02"), ("03", "01"), ("P01", "m00"), ("P01", "m06"),
    ]  # fmt: skip
    # the .long. folder of each time point (codes 9, 10, 4, 5); the cross-only
    # subject from its own folder (11); never a base or fsaverage
    assert t["volume_left_hippocampus"].tolist() == [4009, 4010, 4011, 4004, 4005]
    assert t["thickness_precentral_left"].tolist() == pytest.approx(
        [2.59, 2.60, 2.61, 2.54, 2.55]
    )
    assert t["thickness_cortex_right"].tolist() == pytest.approx(
        [2.09, 2.10, 2.11, 2.04, 2.05]
    )
    assert t["volume_etiv"].iloc[3] == 1.5e6 + 4
    assert t["acquisition_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2020-02-03", "2020-08-03", "2022-05-09", "2021-01-04", "2021-07-05",
    ]  # fmt: skip
    assert t.attrs["folders"]["P01/m06"] == "P01_m06.long.P01"
    assert any(
        s.startswith("P01 (a within-subject template") for s in t.attrs["skipped"]
    )
    # a valid imaging table of the data dictionary
    back = read_imaging(write_table(t, tmp_path / "imaging.csv"), today="2024-01-01")
    assert len(back) == 5


def test_cross_sectional_runs_on_request(subjects_dir):
    t = read_freesurfer_dir(subjects_dir, sessions=DATES, longitudinal="cross")
    # P01's time points belong to base P01 through its base-tps file
    assert list(zip(t["subject_id"], t["session"], strict=True)) == [
        ("02", "01"), ("02", "02"), ("03", "01"), ("P01", "m00"), ("P01", "m06"),
    ]  # fmt: skip
    assert t["volume_left_hippocampus"].tolist() == [4006, 4007, 4011, 4001, 4002]


def test_long_only(subjects_dir):
    t = read_freesurfer_dir(subjects_dir, sessions=DATES, longitudinal="long")
    assert t["volume_left_hippocampus"].tolist() == [4009, 4010, 4004, 4005]


def test_without_dates_warns_and_leaves_them_empty(subjects_dir):
    with pytest.warns(DataWarning, match=r"5 session\(s\) have no acquisition_date"):
        t = read_freesurfer_dir(subjects_dir)
    assert t["acquisition_date"].isna().all()


def test_sessions_table_names_any_folders(tmp_path):
    root = tmp_path / "subjects"
    fs_folder(root, "scanA", 1)
    fs_folder(root, "scanB", 2)
    table = tmp_path / "sessions.csv"
    table.write_text(
        "folder,subject_id,session,acquisition_date\n"
        "scanB,P7,m06,2021-07-01\nscanA,P7,m00,2021-01-01\n"
    )
    t = read_freesurfer_dir(root, sessions=table, files=["aseg.stats"])
    assert t[["session", "volume_left_hippocampus"]].values.tolist() == [
        ["m00", 4001.0],
        ["m06", 4002.0],
    ]
    assert t.columns.tolist() == [
        "subject_id", "session", "acquisition_date", "volume_etiv",
        "volume_left_hippocampus",
    ]  # fmt: skip


def test_plain_subject_folder_needs_a_sessions_table(tmp_path):
    root = tmp_path / "subjects"
    fs_folder(root, "P01", 1)
    with pytest.raises(ImagingError, match=r"P01: the name gives no session"):
        read_freesurfer_dir(root)


def test_missing_stats_file_names_it(subjects_dir):
    (subjects_dir / "sub-03_ses-01" / "stats" / "rh.aparc.stats").unlink()
    with pytest.raises(
        ImagingError,
        match=r"sub-03_ses-01/stats/rh\.aparc\.stats: missing \(recon-all unfinished",
    ):
        read_freesurfer_dir(subjects_dir, sessions=DATES)


def test_two_folders_for_one_session_are_refused(tmp_path):
    root = tmp_path / "subjects"
    # one time point run longitudinally against two templates
    fs_folder(root, "sub-01_ses-01.long.sub-01", 1)
    fs_folder(root, "sub-01_ses-01.long.sub-01new", 2)
    with pytest.raises(
        ImagingError,
        match=r"folders sub-01_ses-01\.long\.sub-01 and sub-01_ses-01\.long\."
        r"sub-01new are both subject 01 session 01",
    ):
        read_freesurfer_dir(root, sessions=DATES)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_named_pipe_stats_file_is_refused_not_read(subjects_dir):
    # issue 17's file checks: a FIFO would block a plain open()
    p = subjects_dir / "sub-03_ses-01" / "stats" / "aseg.stats"
    p.unlink()
    os.mkfifo(p)
    with pytest.raises(ImagingError, match=r"aseg\.stats: is a named pipe"):
        read_freesurfer_dir(subjects_dir, sessions=DATES)


def test_not_a_subjects_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImagingError, match=r"no FreeSurfer subject folders"):
        read_freesurfer_dir(tmp_path / "empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImagingError, match=r"is not a folder"):
            read_freesurfer_dir(tmp_path / "none")
