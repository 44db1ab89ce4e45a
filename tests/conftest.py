"""Shared fixtures: small hand-made tables written as files, matplotlib on Agg."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tablefiles import (
    SUBJECTS_HEADER,
    VISITS_HEADER,
    valid_subjects_rows,
    valid_visits_rows,
    write_csv,
)

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def visits_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "visits.csv", VISITS_HEADER, valid_visits_rows())


@pytest.fixture
def subjects_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "subjects.csv", SUBJECTS_HEADER, valid_subjects_rows())


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
