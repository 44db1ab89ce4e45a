"""Shared fixtures of the report tests: one tiny demo run for the whole session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: Settings of the tiny demo: small enough for CI, every stage and figure still runs.
TINY = dict(
    n_patients=30,
    n_controls=10,
    seed=5,
    draws=100,
    n_sims=10,
    endpoint_sims=10,
    n_permutations=0,
    n_bootstrap=50,
    course_patients=20,
    n_jobs=1,
    backtest_models=("lmm",),
)


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    """A finished tiny demo run (LMM, Bayesian linear and sigmoid, NIfTI imaging)."""
    from alsprog.report import run_demo

    out = tmp_path_factory.mktemp("tiny") / "demo"
    result = run_demo(out, progress=False, **TINY)
    return result


@pytest.fixture(scope="session")
def _tables(tmp_path_factory):
    from alsprog.data import write_table
    from alsprog.simulate import simulate_cohort

    folder = tmp_path_factory.mktemp("tables")
    cohort = simulate_cohort(30, 0, seed=5)
    write_table(cohort.visits, folder / "visits.csv")
    write_table(cohort.subjects, folder / "subjects.csv")
    return folder


@pytest.fixture
def tiny_inputs(_tables, tmp_path):
    """A fresh folder with a small simulated cohort's visits and subjects (CSV)."""
    inputs = tmp_path / "data"
    inputs.mkdir()
    for name in ("visits.csv", "subjects.csv"):
        shutil.copy(_tables / name, inputs / name)
    return inputs


def _fast_config(folder: Path, **sections: str | None) -> Path:
    parts: dict[str, str | None] = {
        "run": 'title = "quick"\nseed = 1',
        "data": 'visits = "visits.csv"\nsubjects = "subjects.csv"',
        "models.lmm": 'type = "mixed"\n'
        'formula = "alsfrs_r_total ~ months + (months | subject_id)"',
        "forecast": 'models = ["lmm"]\nbaselines = ["delta_fs"]\nn_patients = 2',
        "design": "n_sims = 0\nslowing = [0.3]\nendpoint_sims = 0",
        "biomarkers": "enabled = false",
        "report": "n_subjects = 2",
    }
    parts.update({k.replace("__", "."): v for k, v in sections.items()})
    text = "\n".join(f"[{k}]\n{v}\n" for k, v in parts.items() if v is not None)
    path = folder / "run.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def config_writer():
    """``config_writer(folder, **sections)``: write a quick config over ``folder``'s
    visits.csv and subjects.csv (see :func:`make_config`)."""
    return _fast_config


@pytest.fixture
def make_config(tiny_inputs):
    """``make_config(**sections)``: a quick config (mixed model only) over copies of
    the tiny demo's tables; a keyword replaces a section's body (``models__lmm=...``;
    ``None`` drops it)."""

    def make(**sections: str | None) -> Path:
        return _fast_config(tiny_inputs, **sections)

    return make
