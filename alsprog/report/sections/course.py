"""The disease-course section: several outcomes on one latent disease time.

Owns: :func:`stage_course` (a :class:`~alsprog.models.DiseaseCourseModel` from
``[course]`` fitted to the ALS patients' visits: its summary, the order in which the
outcomes decline, each patient's stage and speed; written under ``course/``), its
frozen result :class:`Course`, the stage plot and the report's "Disease course".
Leaves: the model to :mod:`alsprog.models.bayes._course`; the drawing to
:func:`alsprog.plots.disease_course_plot`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alsprog.report._figures import FigureOut, png
from alsprog.report._html import Figures, esc, notes_html, table_html
from alsprog.report.sections._base import RunContext, Section
from alsprog.report.sections.cohort import Cohort

__all__ = ["Course", "CourseSection", "stage_course"]


@dataclass(frozen=True)
class Course:
    """The fitted disease-course model and what the report shows of it; every
    field None when the stage is disabled or skipped."""

    model: Any = None
    summary: Any = None
    decline: Any = None
    stages: pd.DataFrame | None = None


def stage_course(ctx: RunContext) -> Course:
    """Fit the model; write ``course/*.csv``, the summary and the model."""
    import warnings

    from alsprog.errors import ConvergenceWarning, DataWarning, ModelSpecificationError
    from alsprog.models import DiseaseCourseModel

    cc = ctx.config.course
    if not cc.enabled:
        ctx.note("course", "disabled in the config")
        return Course()
    table = ctx.result("cohort", Cohort).patients
    outs = list(cc.outcomes)
    missing = [c for c in (*outs, cc.time) if c not in table.columns]
    if missing:
        ctx.note(
            "course",
            f"skipped: the data have no column(s) {', '.join(missing)} "
            "(set [course] outcomes to columns of your visits)",
        )
        return Course()
    sid = "subject_id"  # the assembled table's
    rows = table[[sid, cc.time, *outs]]
    ids = np.asarray(pd.unique(rows[sid].astype(str)))
    if 0 < cc.max_patients < len(ids):
        rng = np.random.default_rng(ctx.seed("course.patients"))
        keep = set(rng.choice(ids, size=cc.max_patients, replace=False))
        rows = rows[rows[sid].astype(str).isin(keep)]
        ctx.note(
            "course",
            f"fitted on {cc.max_patients} of the {len(ids)} patients drawn at "
            "random (max_patients)",
        )
    model = DiseaseCourseModel(
        outs,
        time=cc.time,
        subject=sid,
        offsets=list(cc.offsets or ()),
        chains=cc.chains,
        draws=cc.draws,
        tune=cc.tune,
        seed=ctx.seed("course.fit"),
        progress=ctx.progress,
    )
    ctx.say(
        f"sampling the disease-course model of {', '.join(outs)} "
        f"({cc.chains} x {cc.draws} draws)"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            model.fit(rows)
        except ModelSpecificationError as exc:  # no observed cell
            ctx.note("course", f"skipped: {exc}")
            return Course()
    for w in caught:
        if issubclass(w.category, DataWarning):
            ctx.note("course", str(w.message))
        elif not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    problem = model.fit_warning()
    if problem is not None:
        ctx.note("course", f"the model {problem}")
    summary = model.summary()
    decline = model.decline_order(cc.threshold, level=ctx.config.report.level)
    stages = model.patient_stage(level=ctx.config.report.level)
    ctx.write_text("course/summary.txt", str(summary) + "\n")
    ctx.write(decline.times, "course/decline_times.csv", index=True)
    ctx.write(decline.orders, "course/decline_orders.csv")
    ctx.write(stages, "course/patient_stage.csv")
    if hasattr(model, "save") and type(model).file_suffix == ".nc":
        model.save(ctx.out / "course" / "model.nc")
    ctx.note(
        "course",
        f"{model.n_subjects_} patients, {model.n_obs_} observed values of "
        f"{len(outs)} outcomes; sampling {model.sampling_seconds_:.0f} s",
    )
    return Course(model=model, summary=summary, decline=decline, stages=stages)


# ------------------------------------------------------------------- figures
def fig_stage_plot(ctx: RunContext) -> FigureOut | None:
    """Population curves on the latent time and the patients' stages."""
    from alsprog.plots import disease_course_plot

    res = ctx.result("course", Course)
    if res.model is None:
        return None
    level = ctx.config.report.level
    fig = disease_course_plot(
        res.model, level=level, threshold=ctx.config.course.threshold
    )
    return FigureOut(
        "course_stage_plot",
        "course",
        "Disease course: outcomes on one latent disease time",
        "Top: each outcome's population curve (0 healthy, 1 floor) against the "
        f"latent disease time (months since onset of a typical patient), with its "
        f"{level:.0%} credible band and the time it is half-way (dots). Bottom: each "
        "patient's stage (latent time at the last visit) against their speed "
        f"(1 = typical; log scale), with {level:.0%} intervals.",
        png(fig),
    )


class CourseSection(Section):
    """Stage ``course``; the report's "Disease course"."""

    name = "course"
    title = "Disease course"
    kpi_order = 27
    figures = (fig_stage_plot,)

    def intro(self, ctx: RunContext) -> str:
        return "several outcomes on one latent disease time"

    def compute(self, ctx: RunContext) -> Course:
        return stage_course(ctx)

    def render(
        self, ctx: RunContext, result: Course | None, figures: Figures
    ) -> list[str]:
        r = result or Course()
        p = [notes_html(ctx.notes.get("course", []))]
        if r.model is None:
            return p
        m = r.model
        p.append(
            f"<p>{esc(', '.join(m.outcomes))}: each a logistic curve on a latent "
            "disease time shared by the outcomes, with a time shift and a speed per "
            "patient and outcome-specific deviations (Leaspy's multivariate "
            "logistic model, sampled fully by NUTS).</p>"
        )
        p.append(figures.html("course_stage_plot"))
        d = r.decline
        p.append(
            f"<p>When each outcome's population curve is {d.threshold:.0%} of the way "
            f"to its floor (latent months, {d.level:.0%} intervals) and the "
            "posterior probability that it is the first; below, the most probable "
            "orders of all outcomes.</p>"
        )
        p.append(table_html(d.times, index=True))
        p.append(table_html(d.orders.head(5)))
        p.append(f"<details><summary>summary</summary>{r.summary.to_html()}</details>")
        return p

    def kpis(self, ctx: RunContext, result: Course | None) -> list[tuple[str, str]]:
        if result is None or result.decline is None:
            return []
        t = result.decline.times
        first = t["prob_first"].idxmax()
        return [
            (
                "first outcome to decline",
                f"{first} (P = {t.loc[first, 'prob_first']:.2f})",
            )
        ]
