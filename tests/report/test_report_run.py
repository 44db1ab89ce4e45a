"""The demo pipeline on a tiny cohort: every output exists and parses."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from alsprog.report import STAGES, load_config

PNG = b"\x89PNG\r\n\x1a\n"

#: Every file the README promises (besides per-model summary tables).
OUTPUTS = [
    "table.parquet",
    "table.csv",
    "cohort.csv",
    "models/comparison.csv",
    "models/lmm_fixed.csv",
    "models/lmm_summary.txt",
    "models/lmm.npz",
    "models/bayes_linear.nc",
    "models/bayes_linear_fixed.csv",
    # one file name per content (issue 18): scaled residuals vs the residual SD
    "models/lmm_scaled_residuals.csv",
    "models/bayes_linear_residual_sd.csv",
    "figures/power_curve.png",  # figures named by content, not position
    "models/bayes_sigmoid.nc",
    "models/lcmm.npz",  # the latent-class model, its class-number table and classes
    "models/lcmm_class_selection.csv",
    "figures/class_trajectories.png",
    "forecasts.csv",
    "backtest.csv",
    "forecast_calibration.csv",
    "sample_size.csv",
    "power_curve.csv",
    "trial_design.csv",
    "endpoints.csv",
    "endpoint_power.csv",
    "figures/endpoint_power.png",
    "imaging/features.csv",
    "imaging/qc.csv",
    # the demo's resting-state runs (issue 27): connectivity features and figure
    "imaging/connectivity.csv",
    "imaging/connectivity_qc.csv",
    "figures/connectivity_by_group.png",
    "inputs/fmriprep/atlas/atlas-alsprogsim_dseg.nii.gz",
    "biomarkers/classifier.csv",
    # logistic, svm and mlp on the same folds (issue 27, item 4)
    "biomarkers/classifier_comparison.csv",
    "biomarkers/classifier_comparison_folds.csv",
    "biomarkers/roc.csv",
    "biomarkers/imaging_change_rates.csv",
    "biomarkers/progression_markers.csv",
    "report.html",
    "run.log",
    "config.toml",
    "inputs/visits.csv",
    "inputs/subjects.csv",
    "inputs/derivatives/atlas/atlas-alsprogsim_dseg.nii.gz",
]


#: every test reads the tiny demo run (a few minutes): the slow tier, which CI runs
pytestmark = pytest.mark.slow


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("href", "src"):
            if a.get(key):
                self.links.append(a[key])


@pytest.fixture(scope="module")
def out(tiny_demo):
    return Path(tiny_demo.out)


@pytest.mark.parametrize("name", OUTPUTS)
def test_output_exists(out, name):
    assert (out / name).is_file(), name


def test_no_temporary_folders_left(out):
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_tables_read_back(out):
    from alsprog.data import read_table

    pq = pd.read_parquet(out / "table.parquet")
    csv, kind = read_table(out / "table.csv", kind="long")
    assert kind == "long" and len(csv) == len(pq) > 0
    assert {"fa_cst_left", "months_since_onset", "delta_fs"} <= set(pq.columns)
    for rel in ("forecasts.csv", "backtest.csv", "sample_size.csv", "power_curve.csv"):
        assert len(pd.read_csv(out / rel)) > 0, rel
    f = pd.read_csv(out / "forecasts.csv")
    assert {"model", "subject_id", "months", "mean", "lower", "upper"} <= set(f.columns)
    assert (f["lower"] <= f["upper"]).all()
    b = pd.read_csv(out / "backtest.csv")
    assert {"model", "horizon", "rmse", "coverage", "crps"} <= set(b.columns)
    assert {"lmm", "delta_fs", "patient_ols", "random_forest"} <= set(b["model"])
    s = pd.read_csv(out / "sample_size.csv")
    assert (s["n_per_arm_ceil"] > 0).all() and s["simulated_power"].notna().any()


def test_endpoint_comparison_covers_every_source_ratio_and_endpoint(out):
    e = pd.read_csv(out / "endpoints.csv")
    # the tiny demo: 25 % slowing, hazard ratios 1 and 0.8, the simulator and the
    # run's own patients, the four default endpoints
    assert set(e["source"]) == {"course", "cohort"}
    assert set(e["hazard_ratio"]) == {1.0, 0.8}
    assert set(e["endpoint"]) == {"slope", "cafs", "win_ratio", "survival"}
    assert len(e) == 16 and (e["slowing"] == 0.25).all()
    assert e["type_one_error"].between(0, 1).all()
    # no survival effect: the survival endpoint cannot reach the power
    surv = e[(e["endpoint"] == "survival") & (e["hazard_ratio"] == 1.0)]
    assert surv["n_per_arm"].isna().all()
    html = (out / "report.html").read_text()
    assert "Endpoints compared at the same treatment effect" in html


def test_model_comparison_has_loo(out):
    comp = pd.read_csv(out / "models" / "comparison.csv", index_col="model")
    assert list(comp.index) == ["lmm", "bayes_linear", "bayes_sigmoid", "lcmm"]
    assert comp.loc[["bayes_linear", "bayes_sigmoid"], "elpd_loo"].notna().all()
    assert set(comp["rank"].dropna()) == {0.0, 1.0}
    assert pd.notna(comp.loc["lmm", "aic"])


@pytest.mark.parametrize("name", ["bayes_linear", "bayes_sigmoid"])
def test_posteriors_open_with_arviz_and_load(out, name):
    import arviz as az

    from alsprog.models import BayesianTrajectoryModel

    idata = az.from_netcdf(out / "models" / f"{name}.nc")
    assert "posterior" in idata.groups() and "log_likelihood" in idata.groups()
    m = BayesianTrajectoryModel.load(out / "models" / f"{name}.nc")
    # the demo's linear model keeps twice the draws (write_demo_inputs)
    assert m.chains == 2 and m.draws == (200 if name == "bayes_linear" else 100)


def test_figures_are_pngs(out):
    from PIL import Image

    pngs = sorted((out / "figures").glob("*.png"))
    assert len(pngs) >= 6
    names = [p.stem for p in pngs]  # named by content, not by position
    for want in (
        "cohort_spaghetti",
        "model_comparison",
        "subject_trajectories",
        "forecast_fan_charts",
        "power_curve",
        "imaging_feature_trajectories",
        "classifier_roc",
    ):
        assert want in names
    for p in pngs:
        with Image.open(p) as im:
            im.verify()


def test_report_is_self_contained_and_every_image_decodes(out):
    from PIL import Image

    text = (out / "report.html").read_text()
    parser = _Images()
    parser.feed(text)
    parser.close()
    assert len(parser.images) == len(list((out / "figures").glob("*.png"))) >= 6
    for src in parser.images:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64"
        raw = base64.b64decode(data, validate=True)
        assert raw.startswith(PNG)
        with Image.open(io.BytesIO(raw)) as im:
            im.verify()
    # no external resources: only in-page anchors and data URIs
    assert all(x.startswith(("#", "data:")) for x in parser.links)
    assert "Content-Security-Policy" in text
    for section in ("Cohort", "Trajectory models", "Forecasts", "Trial design"):
        assert f">{section}</h2>" in text
    assert "Imaging biomarkers" in text and "roc_auc" in text


def test_run_log_records_versions_seeds_and_timings(out, tiny_demo):
    log = (out / "run.log").read_text()
    assert "versions: alsprog " in log and "numpyro " in log and "pymc " in log
    assert "seeds: " in log and "models.bayes_linear=" in log
    assert "stage seconds: check " in log
    assert set(STAGES) <= set(tiny_demo.stage_seconds)
    assert "simulate" in tiny_demo.stage_seconds


def test_saved_config_repeats_the_run_from_its_folder(out):
    from alsprog.report import check

    cfg = load_config(out / "config.toml")
    assert cfg.data.visits == out / "inputs" / "visits.csv"
    assert (
        cfg.imaging is not None and cfg.imaging.root == out / "inputs" / "derivatives"
    )
    assert cfg.run.out == out  # re-running in place replaces the folder atomically
    assert cfg.run.seed == 5 and [m.name for m in cfg.models] == [
        "lmm",
        "bayes_linear",
        "bayes_sigmoid",
        "lcmm",
    ]
    check(cfg, out)  # everything it names is there and valid
    assert (out / "inputs" / "config.original.toml").is_file()


def test_inputs_and_table_validate_with_the_cli(out, capsys):
    from alsprog.cli import main

    tables = [str(out / "inputs" / f"{n}.csv") for n in ("visits", "subjects")]
    assert main(["validate", *tables, str(out / "imaging" / "features.csv")]) == 0
    assert main(["validate", str(out / "table.csv")]) == 0
    assert "ok: tables agree with each other" in capsys.readouterr().out


def test_mixed_model_saved_when_supported(out):
    from alsprog.models import LinearMixedModel

    if not hasattr(LinearMixedModel, "save"):
        pytest.skip("LinearMixedModel.save is not available")
    assert not (out / "models" / "lmm.nc").exists()  # each format its own suffix
    m = LinearMixedModel.load(out / "models" / "lmm.npz")
    fixed = pd.read_csv(out / "models" / "lmm_fixed.csv", index_col="term")
    assert list(m.fe_params_.index) == list(fixed.index)


def test_outputs_are_not_private(out):
    """The run folder and its files get the umask's modes, not mkdtemp's 0700."""
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    for name in ("report.html", "run.log", "table.csv", "models/lmm_fixed.csv"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~mask, name
