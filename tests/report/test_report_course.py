"""The disease-course stage of a run: off by default, skipped with a note when the
data lack its outcomes (the fitted stage itself runs in the tiny demo: see
``test_report_sections``)."""

from __future__ import annotations

import re

import pytest

from alsprog.report import run


def _course_part(html: str) -> str:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', html, re.S))[
        "course"
    ]


@pytest.mark.slow  # a whole (quick) run
@pytest.mark.parametrize(
    ("body", "note"),
    [
        (None, "disabled in the config"),
        (
            'enabled = true\noutcomes = ["fa_cst_left", "fa_cst_right"]',
            "skipped: the data have no column(s) fa_cst_left, fa_cst_right",
        ),
    ],
)
def test_course_stage_notes_why_it_did_not_fit(make_config, tmp_path, body, note):
    config = make_config(
        forecast="enabled = false", design="enabled = false", course=body
    )
    result = run(config, tmp_path / "out", progress=False)
    part = _course_part(result.report.read_text())
    assert note in part
    assert "<figure" not in part
    assert not (result.out / "course").exists()
