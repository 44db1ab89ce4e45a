"""The sections of a run: each owns its stage, its figures and its part of the report.

A section (:class:`Section`) computes a frozen result from the config and the results
of the sections before it, draws its figures from them and renders its HTML
fragment; :func:`alsprog.report.run` walks a list of them (:data:`SECTIONS` unless
its ``sections`` argument says otherwise), and the report's page places each
fragment.  Adding a section or a figure is one file: a :class:`Section` subclass,
passed to ``run(..., sections=[*SECTIONS, MySection()])``.

Owns: :data:`SECTIONS` (imaging, cohort, models, survival, course, forecast,
design, biomarkers, in that order) and the names a new section needs (:class:`Section`,
:class:`RunContext`, :class:`~alsprog.report._figures.FigureOut`).
Leaves: each section's work to its module; the stages around them (check, figures,
report), timing and logging to :mod:`alsprog.report._run`.
"""

from __future__ import annotations

from alsprog.report._figures import FigureOut, new_figure, png
from alsprog.report.sections._base import (
    FigureMaker,
    RunContext,
    Section,
    check_sections,
    draw_figures,
    stage_seed,
)
from alsprog.report.sections.biomarkers import BiomarkersSection
from alsprog.report.sections.cohort import CohortSection
from alsprog.report.sections.course import CourseSection
from alsprog.report.sections.design import DesignSection
from alsprog.report.sections.forecast import ForecastSection
from alsprog.report.sections.imaging import ImagingSection
from alsprog.report.sections.models import ModelsSection
from alsprog.report.sections.survival import SurvivalSection

__all__ = [
    "SECTIONS",
    "FigureMaker",
    "FigureOut",
    "RunContext",
    "Section",
    "check_sections",
    "draw_figures",
    "new_figure",
    "png",
    "stage_seed",
]

#: The sections of a run, in order.
SECTIONS: tuple[Section, ...] = (
    ImagingSection(),
    CohortSection(),
    ModelsSection(),
    SurvivalSection(),
    CourseSection(),
    ForecastSection(),
    DesignSection(),
    BiomarkersSection(),
)
