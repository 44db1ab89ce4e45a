"""read_freesurfer_stats on samples in FreeSurfer 7's layout (written here)."""

from __future__ import annotations

import pytest

from alsprog.errors import ImagingError
from alsprog.imaging import read_freesurfer_stats

# Field layout of FreeSurfer 7.x mri_segstats / mris_anatomical_stats output; the
# values are made up (the reader copies them, so any number tests it).
ASEG = """\
# Title Segmentation Statistics
#
# generating_program mri_segstats
# cvs_version 7.4.1
# cmdline mri_segstats --seed 1234 --seg mri/aseg.mgz --sum stats/aseg.stats
# sysname  Linux
# subjectname sub-01
# Measure BrainSeg, BrainSegVol, Brain Segmentation Volume, 1153428.000000, mm^3
# Measure BrainSegNotVent, BrainSegVolNotVent, Brain Segmentation Volume Without Ventricles, 1131539.000000, mm^3
# Measure lhCortex, lhCortexVol, Left hemisphere cortical gray matter volume, 246139.578224, mm^3
# Measure SupraTentorialNotVentVox, SupraTentorialVolNotVentVox, Supratentorial volume voxel count, 1004611.000000, mm^3
# Measure BrainSegVol-to-eTIV, BrainSegVol-to-eTIV, Ratio of BrainSegVol to eTIV, 0.752351, unitless
# Measure EstimatedTotalIntraCranialVol, eTIV, Estimated Total Intracranial Volume, 1533103.123456, mm^3
# SegVolFile mri/aseg.mgz
# ColorTable FreeSurferColorLUT.txt
# NRows 3
# NTableCols 10
# TableCol  1 ColHeader Index
# TableCol  2 ColHeader SegId
# ColHeaders  Index SegId NVoxels Volume_mm3 StructName normMean normStdDev normMin normMax normRange
  1   4      6563     6563.4  Left-Lateral-Ventricle            33.8127    11.5301    13.0000    89.0000    76.0000
  2  17      4265     4265.1  Left-Hippocampus                  78.1553     9.2101    30.0000   108.0000    78.0000
  3  53      4383     4383.7  Right-Hippocampus                 79.0071     8.9877    34.0000   109.0000    75.0000
"""

APARC = """\
# Table of FreeSurfer cortical parcellation anatomical statistics
#
# CreationTime 2024/01/15-10:21:33-GMT
# generating_program mris_anatomical_stats
# cvs_version 7.4.1
# subjectname sub-01
# hemi {hemi}
# AnatomicalStructures 1
# Measure Cortex, NumVert, Number of Vertices, 137254, unitless
# Measure Cortex, WhiteSurfArea, White Surface Total Area, 92543.5, mm^2
# Measure Cortex, MeanThickness, Mean Thickness, {mean}, mm
# ColorTable FreeSurferColorLUT.txt
# NTableCols 10
# TableCol  1 ColHeader StructName
# ColHeaders StructName NumVert SurfArea GrayVol ThickAvg ThickStd MeanCurv GausCurv FoldInd CurvInd
bankssts                                 1489   1012   2470  2.606 0.470     0.119     0.027       13     1.6
precentral                               8034   5386  14357  {pre} 0.552     0.119     0.025       78     7.9
superiorfrontal                         11876   8013  24917  2.774 0.571     0.124     0.027      120    13.0
"""


@pytest.fixture
def fs_subject(tmp_path):
    stats = tmp_path / "sub-01" / "stats"
    stats.mkdir(parents=True)
    (stats / "aseg.stats").write_text(ASEG)
    (stats / "lh.aparc.stats").write_text(APARC.format(hemi="lh", mean=2.45, pre=2.512))
    (stats / "rh.aparc.stats").write_text(APARC.format(hemi="rh", mean=2.47, pre=2.498))
    return tmp_path / "sub-01"


def test_aseg(fs_subject):
    s = read_freesurfer_stats(fs_subject / "stats" / "aseg.stats")
    assert s["volume_left_hippocampus"] == 4265.1
    assert s["volume_right_hippocampus"] == 4383.7
    assert s["volume_left_lateral_ventricle"] == 6563.4
    assert s["volume_etiv"] == 1533103.123456
    assert s["volume_brainseg"] == 1153428.0
    assert s["volume_lhcortex"] == 246139.578224
    assert not any("to_etiv" in k for k in s.index)  # unitless ratio left out
    assert s.name.endswith("aseg.stats")


def test_aparc_hemisphere_and_metrics(fs_subject):
    s = read_freesurfer_stats(fs_subject / "stats" / "rh.aparc.stats")
    assert s["thickness_precentral_right"] == 2.498
    assert s["area_precentral_right"] == 5386.0
    assert s["volume_precentral_right"] == 14357.0
    assert s["thickness_cortex_right"] == 2.47
    assert s["thickness_superiorfrontal_right"] == 2.774
    assert len(s) == 1 + 3 * 3


def test_subject_folder_and_data_dictionary_names(fs_subject, tmp_path):
    from alsprog.data import read_imaging

    s = read_freesurfer_stats(fs_subject)
    assert s["thickness_precentral_left"] == 2.512
    assert s["thickness_precentral_right"] == 2.498
    assert s["volume_left_hippocampus"] == 4265.1
    row = s.to_frame().T.assign(subject_id="P1", session="m00",
                                acquisition_date="2024-01-15")  # fmt: skip
    row.to_csv(tmp_path / "fs.csv", index=False)
    table = read_imaging(tmp_path / "fs.csv")  # every name fits a dictionary pattern
    assert table.loc[0, "volume_etiv"] == 1533103.123456


def test_hemisphere_from_file_name(tmp_path):
    text = APARC.format(hemi="lh", mean=2.4, pre=2.5).replace("# hemi lh\n", "")
    (tmp_path / "lh.aparc.a2009s.stats").write_text(text)
    s = read_freesurfer_stats(tmp_path / "lh.aparc.a2009s.stats")
    assert s["thickness_precentral_left"] == 2.5
    (tmp_path / "x.stats").write_text(text)
    with pytest.raises(ImagingError, match=r"x\.stats: hemisphere unknown"):
        read_freesurfer_stats(tmp_path / "x.stats")


@pytest.mark.parametrize(
    "edit, match",
    [(lambda t: t.replace("# ColHeaders", "# Headers"), r"no '# ColHeaders' line"),
     (lambda t: t.replace("4265.1", "n/a"),
      r"line 22, column Volume_mm3: 'n/a' is not a number"),
     (lambda t: t.replace("  17      4265", "  17 "), r"line 22: 9 fields"),
     (lambda t: t.replace("1533103.123456, mm^3", "many, mm^3"),
      r"line 13: measure value 'many'"),
     (lambda t: t.replace("Right-Hippocampus", "Left-Hippocampus"),
      r"line 23: feature 'volume_left_hippocampus' appears twice"),
     (lambda t: t.replace("Volume_mm3", "Vol"), r"neither Volume_mm3")],
)  # fmt: skip
def test_bad_aseg(tmp_path, edit, match):
    p = tmp_path / "aseg.stats"
    p.write_text(edit(ASEG))
    with pytest.raises(ImagingError, match=r"aseg\.stats: (.*)?" + match):
        read_freesurfer_stats(p)


def test_unreadable_and_empty_folder(tmp_path):
    with pytest.raises(ImagingError, match=r"missing\.stats: cannot be read"):
        read_freesurfer_stats(tmp_path / "missing.stats")
    (tmp_path / "bin.stats").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ImagingError, match=r"bin\.stats: cannot be read"):
        read_freesurfer_stats(tmp_path / "bin.stats")
    (tmp_path / "subj").mkdir()
    with pytest.raises(ImagingError, match=r"subj: no stats/aseg\.stats"):
        read_freesurfer_stats(tmp_path / "subj")
