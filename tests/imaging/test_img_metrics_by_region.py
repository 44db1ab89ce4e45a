"""Which metrics belong to which regions (issue 18, item 8): a `metrics` column of the
lookup table or `metrics_by_region`, so that no feature is the thickness of a tract or
the FA of cortex; default: every metric in every region, as before."""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alsprog.errors import ImagingError
from alsprog.imaging import extract_roi_features
from alsprog.imaging._atlas import metrics_by_region_mapping


@pytest.fixture
def study(small_atlas, nifti, manifest, tmp_path):
    """FA, MD and thickness maps of one session on the 3-region atlas: thickness is
    NaN outside cortex (labels 1 and 3 are tracts), as FreeSurfer-like maps are."""
    atlas_path, labels = small_atlas
    fa = np.where(labels > 0, 0.5, 0.0)
    md = np.where(labels > 0, 0.8, 0.0)
    thick = np.where(labels == 2, 2.5, np.nan)  # cortex only
    paths = {m: nifti(tmp_path / f"{m}.nii.gz", d)
             for m, d in (("fa", fa), ("md", md), ("thickness", thick))}  # fmt: skip
    man = pd.concat(
        [manifest([p], metric=m) for m, p in paths.items()], ignore_index=True
    )
    return atlas_path, man


def _columns(features):
    return features.columns[3:].tolist()


def test_default_is_every_metric_in_every_region(study):
    atlas, man = study
    with pytest.warns(UserWarning, match=r"2 image × region pairs had no usable voxel"):
        features, qc = extract_roi_features(man, atlas, progress=False)
    assert len(_columns(features)) == 9
    assert len(qc) == 9


def test_metrics_column_of_the_lookup_table(study):
    atlas, man = study
    labels = pd.DataFrame(
        {
            "index": [1, 2, 3],
            "name": ["cst_left", "Left-Hippocampus", "CC motor"],
            "metrics": ["fa md", "thickness", "FA"],  # case ignored
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty-region warning: NaN regions skipped
        features, qc = extract_roi_features(man, atlas, labels, progress=False)
    assert _columns(features) == [
        "fa_cst_left", "fa_cc_motor", "md_cst_left", "thickness_left_hippocampus",
    ]  # fmt: skip
    assert features.loc[0, "thickness_left_hippocampus"] == 2.5
    assert qc[["metric", "region"]].values.tolist() == [
        ["fa", "cst_left"], ["fa", "cc_motor"], ["md", "cst_left"],
        ["thickness", "left_hippocampus"],
    ]  # fmt: skip


def test_metrics_column_in_a_tsv_file_with_empty_cells_meaning_all(study, tmp_path):
    atlas, man = study
    tsv = tmp_path / "lut.tsv"
    tsv.write_text(
        "index\tname\tmetrics\n1\tcst_left\tfa,md\n2\tLeft-Hippocampus\t\n"
        "3\tCC motor\tfa\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # thickness only where the maps have it
        features, _ = extract_roi_features(man, atlas, tsv, progress=False)
    assert _columns(features) == [
        "fa_cst_left", "fa_left_hippocampus", "fa_cc_motor", "md_cst_left",
        "md_left_hippocampus", "thickness_left_hippocampus",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "mapping",
    [
        {"cst_*": ["fa", "md"], "cc_motor": "fa", "left_hippocampus": ["thickness"]},
        ["cst_*=fa,md", "cc_motor=fa", "left_hippocampus=thickness"],
    ],
)
def test_metrics_by_region_mapping(study, mapping):
    atlas, man = study
    features, _ = extract_roi_features(
        man, atlas, metrics_by_region=mapping, progress=False
    )
    assert _columns(features) == [
        "fa_cst_left", "fa_cc_motor", "md_cst_left", "thickness_left_hippocampus",
    ]  # fmt: skip


def test_mapping_wins_over_the_table_and_leaves_other_regions(study, tmp_path):
    atlas, man = study
    labels = pd.DataFrame(
        {"index": [1, 2, 3], "name": ["cst_left", "hippo", "cc"],
         "metrics": ["fa", "thickness", "fa"]}
    )  # fmt: skip
    features, _ = extract_roi_features(
        man, atlas, labels, metrics_by_region={"cst_left": "md"}, progress=False
    )
    assert _columns(features) == ["fa_cc", "md_cst_left", "thickness_hippo"]


def test_out_of_range_values_of_excluded_pairs_are_not_checked(study, nifti, tmp_path):
    atlas, man = study
    # an MD map with nonsense where MD is not measured (the corpus callosum here)
    labels_img = np.asarray(nib.load(atlas).dataobj)
    md_path = man.loc[man["metric"] == "md", "path"].iloc[0]
    nifti(Path(md_path), np.where(labels_img == 3, -5.0, 0.8))
    with pytest.raises(ImagingError, match=r"md_cc_motor = -5"):
        extract_roi_features(man, atlas, progress=False)
    features, _ = extract_roi_features(
        man, atlas, metrics_by_region=["cst_*=fa,md", "cc_*=fa", "left_*=thickness"],
        progress=False,
    )  # fmt: skip
    assert "md_cc_motor" not in features.columns


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["cst=fa"], r"metrics_by_region: 'cst' matches no region of the atlas "
                     r"\(.*atl_dseg\.tsv: cst_left, left_hippocampus, cc_motor\)"),
        (["cst_*=fs"], r"metrics_by_region\['cst_\*'\] names metric 'fs', but the "
                       r"images hold the metrics fa, md, thickness"),
        (["cst_*"], r"metrics_by_region: 'cst_\*' is not REGION=METRIC\[,METRIC\.\.\.\]"),
        ({"cst_*": []}, r"metrics_by_region\['cst_\*'\]: no metric given"),
        ({"cst_*": ["f-a"]}, r"metric 'f-a' is not a metric name"),
        ("cst_*=fa", r"must be a mapping \{region: metrics\} or a list"),
    ],
)  # fmt: skip
def test_bad_mapping_names_the_entry(study, spec, message):
    atlas, man = study
    with pytest.raises(ImagingError, match=message):
        extract_roi_features(man, atlas, metrics_by_region=spec, progress=False)


def test_bad_metrics_cell_names_file_and_line(study, tmp_path):
    atlas, man = study
    tsv = tmp_path / "lut.tsv"
    tsv.write_text("index\tname\tmetrics\n1\ta\tfa\n2\tb\tfa/md\n3\tc\tfa\n")
    with pytest.raises(
        ImagingError, match=r"lut\.tsv: line 3, column metrics: metric 'fa/md'"
    ):
        extract_roi_features(man, atlas, tsv, progress=False)


def test_mapping_text_form():
    assert metrics_by_region_mapping(None) == {}
    assert metrics_by_region_mapping({"CST_*": "FA MD"}) == {"cst_*": ("fa", "md")}
    with pytest.raises(ImagingError, match=r"metrics_by_region\['a'\]: the region is "):
        metrics_by_region_mapping(["a=fa", "A=md"])
