"""The report as sections (issue 19, item 4): a section owns its stage, its figures
and its part of the report; a section of one's own is added without touching any
other file; no figure a section draws is left out of the report."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from alsprog.report import STAGES, run
from alsprog.report._config import DataConfig, RunConfig
from alsprog.report._figures import FigureOut
from alsprog.report._page import render_report
from alsprog.report.sections import (
    SECTIONS,
    RunContext,
    Section,
    check_sections,
    draw_figures,
    new_figure,
    png,
)
from alsprog.report.sections.cohort import Cohort


# --------------------------------------------------------- a section of one's own
@dataclass(frozen=True)
class VisitCounts:
    """The toy section's result: visits per patient."""

    counts: pd.DataFrame


def count_visits(ctx: RunContext) -> VisitCounts:
    patients = ctx.result("cohort", Cohort).patients
    counts = patients.groupby("subject_id").size().value_counts().sort_index()
    table = counts.rename_axis("visits").reset_index(name="patients")
    ctx.write(table, "toy/visit_counts.csv")
    ctx.note("toy", f"{int(table['patients'].sum())} patients counted")
    return VisitCounts(table)


def draw_visit_counts(ctx: RunContext) -> FigureOut | None:
    table = ctx.result("toy", VisitCounts).counts
    fig, ax = new_figure(4, 3)
    ax[0, 0].bar(table["visits"], table["patients"])
    return FigureOut(
        "toy_visit_counts",
        "toy",
        "Visits per patient",
        "How many patients had each number of visits.",
        png(fig),
    )


class VisitCountSection(Section):
    name = "toy"
    title = "Visit counts"
    figures = (draw_visit_counts,)

    def intro(self, ctx):
        return "visits per patient"

    def compute(self, ctx):
        return count_visits(ctx)

    def render(self, ctx, result, figures):
        from alsprog.report._html import notes_html, table_html

        return [
            notes_html(ctx.notes.get("toy", [])),
            table_html(result.counts),
            figures.html("toy_visit_counts"),
        ]

    def kpis(self, ctx, result):
        return [("most frequent visit count", str(result.counts["visits"].iloc[0]))]


class Unplaced(VisitCountSection):
    """Draws its figure but its fragment does not place it."""

    def render(self, ctx, result, figures):
        return ["<p>the table only</p>"]


def _sections_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', html, re.S))


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory, config_writer):
    from alsprog.data import write_table
    from alsprog.simulate import simulate_cohort

    folder = tmp_path_factory.mktemp("toy")
    cohort = simulate_cohort(30, 0, seed=5)
    write_table(cohort.visits, folder / "visits.csv")
    write_table(cohort.subjects, folder / "subjects.csv")
    config = config_writer(folder)
    lines: list[tuple[int, int, str, str]] = []
    result = run(
        config,
        folder / "out",
        progress=False,
        on_stage=lambda *a: lines.append(a),
        sections=[*SECTIONS, VisitCountSection()],
    )
    return result, lines


def test_own_section_runs_as_a_stage_of_its_own(toy_run):
    result, lines = toy_run
    n = len(STAGES) + 1
    assert (len(STAGES) - 1, n, "toy", "visits per patient") in lines  # before figures
    assert [s for _, _, s, _ in lines if s == "figures"] and all(
        k == n for _, k, _, _ in lines
    )
    assert list(result.stage_seconds) == [*STAGES[:-2], "toy", "figures", "report"]
    assert result.notes["toy"] == ["30 patients counted"]  # every patient
    log = (result.out / "run.log").read_text()
    assert "[toy] visits per patient" in log and "[toy] done in" in log


def test_own_section_writes_its_table_and_figure_into_the_folder(toy_run):
    result, _ = toy_run
    counts = pd.read_csv(result.out / "toy" / "visit_counts.csv")
    assert list(counts.columns) == ["visits", "patients"]
    assert (result.out / "figures" / "toy_visit_counts.png").is_file()
    assert "toy/visit_counts.csv" in result.files
    assert "figures/toy_visit_counts.png" in result.files


def test_own_section_has_its_part_of_the_report_with_its_figure(toy_run):
    result, _ = toy_run
    html = result.report.read_text()
    assert '<a href="#toy">Visit counts</a>' in html
    part = _sections_of(html)["toy"]
    assert part.startswith("<h2>Visit counts</h2>")
    assert "<th>visits</th><th>patients</th>" in part
    raw = (result.out / "figures" / "toy_visit_counts.png").read_bytes()
    data = base64.b64encode(raw).decode("ascii")
    assert (
        f'<figure id="fig-toy_visit_counts"><img src="data:image/png;base64,{data}"'
        in part
    )
    assert "most frequent visit count" in _sections_of(html)["summary"]
    # the built-in sections are all still there, in order, before it
    assert list(_sections_of(html)) == [
        "summary", "cohort", "models", "survival", "course", "forecast", "design",
        "biomarkers", "toy", "run",
    ]  # fmt: skip


def test_a_figure_a_section_does_not_place_is_shown_at_its_end(tmp_path, config_writer):
    """A new figure that the section's fragment does not name is still shown."""
    from alsprog.data import write_table
    from alsprog.simulate import simulate_cohort

    cohort = simulate_cohort(30, 0, seed=5)
    write_table(cohort.visits, tmp_path / "visits.csv")
    write_table(cohort.subjects, tmp_path / "subjects.csv")
    config = config_writer(
        tmp_path, forecast="enabled = false", design="enabled = false"
    )
    result = run(
        config, tmp_path / "out", progress=False, sections=[*SECTIONS, Unplaced()]
    )
    part = _sections_of(result.report.read_text())["toy"]
    assert part.index("<p>the table only</p>") < part.index(
        '<figure id="fig-toy_visit_counts">'
    )


# ---------------------------------------------------- every figure is in the HTML
def _ctx(tmp_path: Path) -> RunContext:
    cfg = RunConfig(
        data=DataConfig(visits=tmp_path / "v.csv", subjects=tmp_path / "s.csv")
    )
    return RunContext(config=cfg, out=tmp_path)


@pytest.mark.parametrize(
    "section", [s for s in SECTIONS if s.title], ids=lambda s: s.name
)
def test_every_figure_of_a_section_is_in_its_part(tmp_path, section):
    """A figure no fragment names (a new one) is shown, in its own section."""
    figs = [
        FigureOut(f"new_{section.name}", section.name, "New", "A new figure.", b"png")
    ]
    html = render_report(_ctx(tmp_path), figs, [f"figures/new_{section.name}.png"], {})
    parts = _sections_of(html)
    assert f'id="fig-new_{section.name}"' in parts[section.name]
    assert html.count('id="fig-') == 1


@pytest.mark.slow  # runs the tiny demo (minutes); heavy for the quick tier; CI runs the slow tier
def test_each_figure_of_a_run_is_shown_once_in_the_section_that_drew_it(tiny_demo):
    out = Path(tiny_demo.out)
    html = (out / "report.html").read_text()
    parts = _sections_of(html)
    owner = {
        "cohort_spaghetti": "cohort",
        "model_comparison": "models",
        "subject_trajectories": "models",
        "class_selection": "models",
        "class_trajectories": "models",
        "survival_risk_groups": "survival",
        "survival_calibration": "survival",
        "survival_patients": "survival",
        "course_stage_plot": "course",
        "forecast_fan_charts": "forecast",
        "forecast_calibration": "forecast",
        "power_curve": "design",
        "endpoint_power": "design",
        "imaging_feature_trajectories": "biomarkers",
        "classifier_roc": "biomarkers",
        "connectivity_by_group": "biomarkers",
    }
    pngs = sorted((out / "figures").glob("*.png"))
    assert {p.stem for p in pngs} == set(owner)
    for p in pngs:
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        assert html.count(f'id="fig-{p.stem}"') == 1
        assert (
            f'id="fig-{p.stem}"><img src="data:image/png;base64,{data}"'
            in parts[owner[p.stem]]
        )


# ------------------------------------------------------------- the rules of a list
def test_default_sections_give_the_stages():
    assert check_sections(SECTIONS) == STAGES
    assert [s.name for s in SECTIONS] == [
        "imaging", "cohort", "models", "survival", "course", "forecast", "design",
        "biomarkers",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([VisitCountSection(), VisitCountSection()], "'toy' is empty or used twice"),
        ([type("S", (Section,), {"name": "x", "stage": "models"})()], "stage 'models'"),
        ([type("S", (Section,), {"name": "figures"})()], "stage 'figures' is taken"),
        ([type("S", (Section,), {"name": ""})()], "'' is empty"),
        (
            [type("S", (Section,), {"name": "x", "figures": (draw_visit_counts,)})()],
            "draws figures but has no title",
        ),
    ],
)
def test_bad_section_lists_are_refused(extra, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_sections([*SECTIONS, *extra])
    with pytest.raises(TypeError, match="must be Sections"):
        check_sections([*SECTIONS, "toy"])


def test_a_figure_naming_another_section_is_refused(tmp_path):
    def stray(ctx):
        return FigureOut("stray", "models", "t", "c", b"")

    class Stray(Section):
        name = "stray"
        title = "Stray"
        figures = (stray,)

    with pytest.raises(
        ValueError, match="drawn by section 'stray' names section 'models'"
    ):
        draw_figures(_ctx(tmp_path), [Stray()])
    with pytest.raises(ValueError, match="names section 'nowhere'"):
        render_report(
            _ctx(tmp_path), [FigureOut("x", "nowhere", "t", "c", b"")], ["x"], {}
        )


def test_results_are_frozen_and_read_in_order(tmp_path):
    import dataclasses

    ctx = _ctx(tmp_path)
    with pytest.raises(LookupError, match="no result of section 'cohort' yet"):
        ctx.result("cohort", Cohort)
    ctx.results["toy"] = VisitCounts(pd.DataFrame())
    with pytest.raises(TypeError, match="is a VisitCounts, not a Cohort"):
        ctx.result("toy", Cohort)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.results["toy"].counts = None
