"""The HTML report: escaping, no external resources, and a real browser's view."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from alsprog.report._config import DataConfig, RunConfig, RunSettings
from alsprog.report._html import table_html
from alsprog.report._page import render_report
from alsprog.report.sections import RunContext as State

EVIL = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def _empty_state(tmp_path: Path, title: str) -> State:
    cfg = RunConfig(
        data=DataConfig(visits=tmp_path / "v.csv", subjects=tmp_path / "s.csv"),
        run=RunSettings(title=title),
    )
    return State(config=cfg, out=tmp_path)


def test_everything_is_escaped(tmp_path):
    s = _empty_state(tmp_path, EVIL)
    s.notes = {"models": [EVIL]}
    s.cohort = pd.DataFrame({EVIL: [1.5]}, index=pd.Index([EVIL], name="quantity"))
    html = render_report(s, [], [], {"warnings": [EVIL], "config_toml": EVIL})
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;" in html
    assert html.count("<script>") == 1  # only the report's own script


def test_script_is_allowed_by_its_hash_and_nothing_external(tmp_path):
    html = render_report(_empty_state(tmp_path, "t"), [], [], {})
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert f"script-src &#x27;sha256-{digest}&#x27;" in csp.group(1)
    assert "default-src &#x27;none&#x27;" in csp.group(1)
    assert "http://" not in html and "https://" not in html


def test_numbers_are_formatted_only_when_rendered():
    df = pd.DataFrame({"n": [1200.0, float("nan")], "p": [0.0123456, 1e5 + 0.5]})
    html = table_html(df)
    assert "<td>1,200</td>" in html and "<td>0.01235</td>" in html
    assert "<td>100,000</td>" in html and "<td></td>" in html


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow  # the tiny demo run (minutes)
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_report_renders_in_headless_chromium(tiny_demo):
    report = Path(tiny_demo.out) / "report.html"
    n_figures = len(list((Path(tiny_demo.out) / "figures").glob("*.png")))
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            report.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", proc.stdout)
    assert body is not None, proc.stdout[:500]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    # the report's script marks each image once it has decoded (naturalWidth > 0)
    assert attrs.get("data-images-total") == str(n_figures)
    assert attrs.get("data-images-loaded") == str(n_figures)
    assert attrs.get("data-images-failed") == "0"
    assert "data-js-error" not in attrs
    assert proc.stdout.count('data-loaded="1"') == n_figures
    # every console message (errors, CSP violations, uncaught exceptions) is logged
    # by chromium as INFO:CONSOLE; the report writes none
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
