"""`[connectivity]` in a run config: resting-state BOLD runs into the long table
(issue 27, items 1 and 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alsprog.errors import ConfigError
from alsprog.report import load_config
from alsprog.report.sections import RunContext as State
from alsprog.report.sections.imaging import stage_imaging

NETWORKS = '["motor=precentral_*,cst_*,cc_motor", "visual=cuneus_*"]'


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from alsprog.data import write_table
    from alsprog.simulate import simulate_cohort, write_fmri, write_nifti

    folder = tmp_path_factory.mktemp("fc")
    cohort = simulate_cohort(4, 2, months=6, seed=5)
    write_table(cohort.visits, folder / "visits.csv")
    write_table(cohort.subjects, folder / "subjects.csv")
    write_table(cohort.imaging, folder / "imaging.csv")
    write_nifti(
        cohort, folder / "derivatives", shape=(20, 24, 20), seed=5, progress=False
    )
    baseline = cohort.imaging.drop_duplicates("subject_id")
    from dataclasses import replace

    write_fmri(
        replace(cohort, imaging=baseline),
        folder / "fmriprep",
        shape=(16, 18, 16),
        n_volumes=40,
        seed=5,
        progress=False,
    )
    return folder


def _connectivity(extra: str = "") -> str:
    return (
        'root = "fmriprep"\natlas = "fmriprep/atlas/atlas-alsprogsim_dseg.nii.gz"\n'
        'confounds = ["trans_*", "rot_*", "csf", "white_matter"]\n'
        f"networks = {NETWORKS}\n" + extra
    )


def test_roi_features_and_connectivity_share_one_row_per_session(
    study, config_writer, tmp_path
):
    from alsprog.imaging import extract_connectivity

    config = config_writer(
        study,
        imaging='root = "derivatives"\n'
        'atlas = "derivatives/atlas/atlas-alsprogsim_dseg.nii.gz"',
        connectivity=_connectivity('edges = ["precentral_left--precentral_right"]'),
    )
    cfg = load_config(config)
    assert cfg.connectivity.edge_pairs == [("precentral_left", "precentral_right")]
    res = stage_imaging(State(config=cfg, out=tmp_path))
    features = pd.read_csv(tmp_path / "imaging" / "features.csv")
    # every imaging session (baseline and 6 months) once; the BOLD runs at baseline
    assert len(features) == len(pd.read_csv(study / "imaging.csv"))
    assert {"fa_cst_left", "fc_precentral_left__precentral_right", "fcnet_motor",
            "fcnet_motor__visual", "fcroi_cst_left"} <= set(features.columns)  # fmt: skip
    assert not any(c.startswith("fc_cst") for c in features.columns)  # edges chosen
    has_fc = features["fcnet_motor"].notna()
    assert has_fc.sum() == 6 and features.loc[has_fc, "fa_cst_left"].notna().all()
    # the values are extract_connectivity's with the config's settings
    direct = extract_connectivity(
        study / "fmriprep",
        study / "fmriprep/atlas/atlas-alsprogsim_dseg.nii.gz",
        confounds=["trans_*", "rot_*", "csf", "white_matter"],
        networks={"motor": ["precentral_*", "cst_*", "cc_motor"],
                  "visual": ["cuneus_*"]},
        edges=[("precentral_left", "precentral_right")],
        progress=False,
    ).features  # fmt: skip
    got = features[has_fc].sort_values("subject_id")["fcnet_motor"].to_numpy()
    want = direct.sort_values("subject_id")["fcnet_motor"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert res.connectivity is not None and res.connectivity.matrices.shape[0] == 6
    for name in ("connectivity.csv", "connectivity_qc.csv", "qc.csv"):
        assert (tmp_path / "imaging" / name).is_file()


def test_connectivity_beside_an_imaging_table(study, config_writer, tmp_path):
    config = config_writer(
        study,
        data='visits = "visits.csv"\nsubjects = "subjects.csv"\nimaging = "imaging.csv"',
        connectivity=_connectivity('kind = "partial correlation"\nhigh_pass = 0'),
    )
    cfg = load_config(config)
    assert cfg.connectivity.kind == "partial correlation"
    assert cfg.connectivity.high_pass == 0
    stage_imaging(State(config=cfg, out=tmp_path))
    features = pd.read_csv(tmp_path / "imaging" / "features.csv")
    assert "fa_cst_left" in features.columns and "fcnet_motor" in features.columns
    assert features["fcnet_motor"].notna().sum() == 6


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_connectivity('edges = ["precentral_left-precentral_right"]'),
         "key connectivity.edges: 'precentral_left-precentral_right' is not a region "
         "pair written REGION--REGION"),
        (_connectivity('edges = ["cst_left--cst_left"]'), "joins a region to itself"),
        ('root = "fmriprep"\natlas = "fmriprep/atlas/atlas-alsprogsim_dseg.nii.gz"\n'
         'networks = ["motor precentral_*"]', "is not a network written NAME=REGION"),
        ('root = "fmriprep"\natlas = "fmriprep/atlas/atlas-alsprogsim_dseg.nii.gz"\n'
         'networks = ["Motor Net=cst_*"]', "network name 'Motor Net'"),
        ('root = "fmriprep"\natlas = "fmriprep/atlas/atlas-alsprogsim_dseg.nii.gz"\n'
         'networks = ["motor=cst_*", "motor=cc_*"]', "network 'motor' is given twice"),
        (_connectivity("high_pass = 0.2"), "is not below low_pass"),
        (_connectivity('kind = "coherence"'), "'coherence' is not one of"),
        ('atlas = "fmriprep/atlas/atlas-alsprogsim_dseg.nii.gz"',
         "key connectivity.root: is required but missing"),
        ('root = "nowhere"\natlas = "fmriprep/atlas/atlas-alsprogsim_dseg.nii.gz"',
         "key connectivity.root: 'nowhere' does not exist"),
    ],
)  # fmt: skip
def test_bad_connectivity_keys_are_named(study, config_writer, body, message):
    config = config_writer(study, connectivity=body)
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert message in str(err.value)


def test_dump_reads_back_equal(study, config_writer):
    from alsprog.report import dump_config

    cfg = load_config(
        config_writer(
            study, connectivity=_connectivity('edges = ["cst_left--cc_motor"]')
        )
    )
    again = study / "again.toml"
    again.write_text(dump_config(cfg))
    back = load_config(again)
    assert back.connectivity == cfg.connectivity
    assert "connectivity.root" in cfg.input_paths()


@pytest.mark.parametrize("linkable", [True, False])
def test_both_image_trees_are_kept_or_checksummed(
    study, config_writer, tmp_path, monkeypatch, linkable
):
    import errno
    import os

    from alsprog.report._inputs import IMAGE_CHECKSUMS, keep_inputs

    cfg = load_config(
        config_writer(
            study,
            imaging='root = "derivatives"\n'
            'atlas = "derivatives/atlas/atlas-alsprogsim_dseg.nii.gz"',
            connectivity=_connectivity(),
        )
    )
    if not linkable:

        def no_link(src, dst, **kw):  # as os.link fails across file systems
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(os, "link", no_link)
    kept, said = keep_inputs(cfg, tmp_path / "inputs", "auto")
    n_files = {
        name: sum(1 for p in (study / name).rglob("*") if p.is_file())
        for name in ("derivatives", "fmriprep")
    }
    if linkable:
        assert kept.connectivity.root == tmp_path / "inputs" / "fmriprep"
        assert kept.connectivity.atlas.is_file()
        assert kept.connectivity.atlas.is_relative_to(tmp_path / "inputs")
        assert not (tmp_path / "inputs" / IMAGE_CHECKSUMS).exists()
    else:  # both trees stay in place; one checksum table lists the files of both
        assert kept.connectivity.root == (study / "fmriprep").resolve()
        sums = pd.read_csv(tmp_path / "inputs" / IMAGE_CHECKSUMS, sep="\t")
        assert len(sums) == sum(n_files.values())
        assert sums["path"].str.contains("/fmriprep/").sum() == n_files["fmriprep"]
    assert len(said) == 3  # the tables, then one line per image tree


def test_classifier_comparison_key(study, config_writer):
    from alsprog.report import dump_config

    cfg = load_config(config_writer(study))
    assert cfg.biomarkers.compare == ("logistic", "svm", "mlp")
    off = load_config(config_writer(study, biomarkers="compare = []"))
    assert off.biomarkers.compare == ()
    again = study / "again_compare.toml"
    again.write_text(dump_config(off))
    assert load_config(again).biomarkers.compare == ()
    with pytest.raises(ConfigError, match="'xgboost'"):
        load_config(config_writer(study, biomarkers='compare = ["xgboost"]'))
