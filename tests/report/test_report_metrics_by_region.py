"""`[imaging] metrics_by_region` in a run config (issue 18, item 8)."""

from __future__ import annotations

import pandas as pd
import pytest

from alsprog.report import load_config
from alsprog.report.sections import RunContext as State
from alsprog.report.sections.imaging import stage_imaging


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from alsprog.data import write_table
    from alsprog.simulate import simulate_cohort, write_nifti

    folder = tmp_path_factory.mktemp("mbr")
    cohort = simulate_cohort(3, 1, months=6, seed=5)
    write_table(cohort.visits, folder / "visits.csv")
    write_table(cohort.subjects, folder / "subjects.csv")
    write_nifti(
        cohort, folder / "derivatives", shape=(20, 24, 20), seed=5, progress=False
    )
    return folder


@pytest.mark.parametrize(
    ("extra", "columns"),
    [
        # the simulated atlas's own metrics column: its 8 features
        ("", ["fa_cst_left", "fa_cst_right", "fa_cc_motor", "md_cst_left",
              "md_cst_right", "thickness_precentral_left",
              "thickness_precentral_right", "thickness_cuneus_left"]),
        ('metrics_by_region = ["cst_*=md", "cc_motor=md"]\nmetrics = ["md"]',
         ["md_cst_left", "md_cst_right", "md_cc_motor"]),
    ],
)  # fmt: skip
def test_config_key_selects_the_features(
    study, config_writer, tmp_path, extra, columns
):
    config = config_writer(
        study,
        imaging='root = "derivatives"\n'
        'atlas = "derivatives/atlas/atlas-alsprogsim_dseg.nii.gz"\n' + extra,
    )
    cfg = load_config(config)
    s = State(config=cfg, out=tmp_path)
    stage_imaging(s)
    features = pd.read_csv(tmp_path / "imaging" / "features.csv")
    assert features.columns[3:].tolist() == columns
