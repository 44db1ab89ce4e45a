"""The survival section: the ENCALS-style survival model, its scores and risk groups.

Owns: :func:`stage_survival` (a :class:`~alsprog.models.SurvivalModel` from
``[survival]`` fitted to the patients and saved as ``survival/model.npz``; its
summary and hazard ratios; the risk
groups of its prognostic index; the backtest of it beside the other method (Royston-
Parmar and Cox); at a landmark, the joint models of ``[models]`` against it), its
frozen result :class:`Survival`, the figures (risk groups' curves, calibration,
patients' predicted curves) and the report's "Survival".
Leaves: the model, scores and groups to :mod:`alsprog.models` and
:mod:`alsprog.forecast`; the drawings to :mod:`alsprog.plots`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alsprog.report._figures import FigureOut, grid, new_figure, png
from alsprog.report._html import Figures, esc, notes_html, table_html
from alsprog.report.sections._base import RunContext, Section
from alsprog.report.sections.cohort import Cohort
from alsprog.report.sections.models import Models

__all__ = ["Survival", "SurvivalSection", "stage_survival"]


@dataclass(frozen=True)
class Survival:
    """The fitted survival model and what the report shows of it; every field None
    when the stage is disabled or skipped."""

    model: Any = None
    summary: Any = None
    coefficients: pd.DataFrame | None = None
    groups: Any = None
    scores: pd.DataFrame | None = None
    calibration: pd.DataFrame | None = None
    landmark: pd.DataFrame | None = None


def _estimator(ctx: RunContext, method: str | None = None) -> Any:
    from alsprog.models import SurvivalModel

    sv = ctx.config.survival
    return SurvivalModel(
        sv.formula,
        method=method or sv.method,  # type: ignore[arg-type]
        scale=sv.scale if (method or sv.method) == "flexible" else "hazard",  # type: ignore[arg-type]
        df=sv.df,
        time_origin=sv.time_origin,  # type: ignore[arg-type]
        time=ctx.config.data.time,
    )


def stage_survival(ctx: RunContext) -> Survival:
    """Fit, score and group; write ``survival/*.csv`` and the summary."""
    import warnings

    from alsprog.errors import ConvergenceWarning, DataWarning, ModelSpecificationError
    from alsprog.forecast import backtest_survival
    from alsprog.models import risk_groups

    sv = ctx.config.survival
    if not sv.enabled:
        ctx.note("survival", "disabled in the config")
        return Survival()
    patients = ctx.result("cohort", Cohort).patients
    est = _estimator(ctx)
    missing = [c for c in est.required_columns() if c not in patients.columns]
    if missing:
        ctx.note(
            "survival",
            f"skipped: the data have no column(s) {', '.join(missing)} "
            "(set [survival] formula to your event columns)",
        )
        return Survival()
    ctx.say(f"fitting the survival model: {est.describe()}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            est.fit(patients)
        except ModelSpecificationError as exc:  # no events, collinear covariates
            ctx.note("survival", f"skipped: {exc}")
            return Survival()
    for w in caught:
        if issubclass(w.category, DataWarning):
            ctx.note("survival", str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    summary = est.summary()
    ctx.write_text("survival/summary.txt", str(summary) + "\n")
    est.save(ctx.out / "survival" / f"model{type(est).file_suffix}")
    coefs = est.coef_table()
    ctx.write(coefs.rename_axis("term"), "survival/coefficients.csv", index=True)
    groups = risk_groups(est, patients, n_groups=sv.n_groups)
    ctx.write(groups.table, "survival/risk_groups.csv", index=True)
    ctx.write(
        groups.assignments.rename_axis(est.subject),
        "survival/prognostic_index.csv",
        index=True,
    )
    other = "cox" if sv.method == "flexible" else "flexible"
    models = {sv.method: _estimator(ctx), other: _estimator(ctx, other)}
    times = [t for t in sv.times if t > 0]
    seed = ctx.seed("survival.split")
    bt = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", DataWarning)  # noted once above
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            bt = backtest_survival(
                patients,
                models,
                times=times,
                test_fraction=sv.test_fraction,
                n_groups=sv.n_groups,
                seed=seed,
                time=ctx.config.data.time,
            )
        except (ModelSpecificationError, ValueError) as exc:  # too few patients
            ctx.note("survival", f"scores on held-out patients skipped: {exc}")
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        ctx.note(
            "survival",
            "a fit on the training patients did not converge (too few events for "
            "the covariates?): read its scores with care",
        )
    if bt is not None:
        ctx.write(bt.scores, "survival/scores.csv")
        ctx.write(bt.calibration, "survival/calibration.csv")
    landmark = _landmark(ctx, patients, seed)
    ctx.note(
        "survival",
        f"{est.n_subjects_} patients, {est.n_events_} events; scores on "
        f"{sv.test_fraction:.0%} of the patients held out of the fits",
    )
    return Survival(
        model=est,
        summary=summary,
        coefficients=coefs,
        groups=groups,
        scores=None if bt is None else bt.scores,
        calibration=None if bt is None else bt.calibration,
        landmark=landmark,
    )


def _landmark(
    ctx: RunContext, patients: pd.DataFrame, seed: int
) -> pd.DataFrame | None:
    """The joint models of ``[models]`` against the survival model at the landmark."""
    import warnings

    from sklearn.base import clone

    from alsprog.errors import AlsprogError
    from alsprog.forecast import backtest_survival
    from alsprog.models import JointModel
    from alsprog.models.survival._design import parse_surv_formula

    sv = ctx.config.survival
    fitted = ctx.result("models", Models).models
    f = parse_surv_formula(sv.formula)
    joint = {
        name: clone(m)
        for name, m in fitted.items()
        if isinstance(m, JointModel) and (m.event_time, m.event) == (f.exit, f.event)
    }
    times = [t for t in sv.times if t > sv.landmark]
    if not joint or not times:
        return None
    ctx.say(f"scoring {', '.join(joint)} at the {sv.landmark:g}-month landmark")
    models = {f"survival ({sv.method})": _estimator(ctx), **joint}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = backtest_survival(
                patients,
                models,
                times=times,
                landmark=sv.landmark,
                test_fraction=sv.test_fraction,
                n_groups=sv.n_groups,
                seed=seed,
                time=ctx.config.data.time,
            )
    except AlsprogError as exc:
        ctx.note("survival", f"landmark comparison skipped: {exc}")
        return None
    ctx.write(out.scores, "survival/landmark_scores.csv")
    return out.scores


# ------------------------------------------------------------------- figures
def fig_risk_groups(ctx: RunContext) -> FigureOut | None:
    """Kaplan-Meier and predicted survival of each risk group."""
    from alsprog.plots import risk_group_curves

    res = ctx.result("survival", Survival)
    if res.groups is None:
        return None
    fig, ax = new_figure(7, 4.2)
    risk_group_curves(res.groups, ax=ax[0, 0])
    k = len(res.groups.table)
    return FigureOut(
        "survival_risk_groups",
        "survival",
        "Survival by risk group",
        f"Patients in {k} groups of the prognostic index (its quantiles, group 1 the "
        "best prognosis, as the ENCALS model's groups): the Kaplan-Meier curve of "
        "each group (solid, with its 95% interval) and the mean predicted curve of "
        "its members (dashed), from the first visit.",
        png(fig),
    )


def fig_calibration(ctx: RunContext) -> FigureOut | None:
    """Observed against predicted event-free probability by risk group."""
    res = ctx.result("survival", Survival)
    if res.calibration is None or res.calibration.empty:
        return None
    cal = res.calibration[res.calibration["model"] == ctx.config.survival.method]
    horizons = sorted(cal["horizon"].unique())
    nrows, ncols = grid(len(horizons))
    fig, axes = new_figure(3.0 * ncols, 3.0 * nrows + 0.3, nrows, ncols)
    for ax, h in zip(axes.ravel(), horizons, strict=False):
        c = cal[cal["horizon"] == h]
        yerr = np.vstack([c["observed"] - c["lower"], c["upper"] - c["observed"]])
        ax.errorbar(c["predicted"], c["observed"], yerr=np.abs(yerr), fmt="o", ms=4)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{h:g} months", fontsize="small")
        ax.set_xlabel("predicted")
        ax.set_ylabel("observed (Kaplan-Meier)")
    for ax in axes.ravel()[len(horizons) :]:
        ax.set_visible(False)
    return FigureOut(
        "survival_calibration",
        "survival",
        "Calibration of predicted survival",
        "Held-out patients in groups of their predicted risk at each horizon: the "
        "mean predicted event-free probability against the Kaplan-Meier estimate of "
        "the group (95% interval); on the dotted line a prediction is calibrated.",
        png(fig),
    )


def fig_patients(ctx: RunContext) -> FigureOut | None:
    """A few patients' predicted survival curves."""
    from alsprog.plots import survival_curve
    from alsprog.report.sections.models import _pick_patients

    res = ctx.result("survival", Survival)
    if res.model is None:
        return None
    patients = ctx.result("cohort", Cohort).patients
    m = res.model
    keep = set(m.complete_subjects(patients))
    patients = patients[patients[m.subject].astype(str).isin(keep)]
    ids = _pick_patients(ctx, patients, ctx.config.report.n_subjects)
    hi = float(max(ctx.config.survival.times))
    grid_t = np.linspace(0.0, 2 * hi, 61)
    rows = patients[patients[m.subject].astype(str).isin(ids)]
    pred = m.predict_survival(rows, grid_t)
    fig, ax = new_figure(6.5, 4)
    for sid in ids:
        one = pred[pred[m.subject] == sid]
        if len(one):
            survival_curve(one, time=m.time, label=sid, ax=ax[0, 0])
    ax[0, 0].set_xlabel(f"{m.time} since the first visit")
    return FigureOut(
        "survival_patients",
        "survival",
        "Predicted survival of individual patients",
        "Each patient's predicted probability of being free of the event from the "
        "first visit, from their baseline covariates, with its 95% interval and the "
        "predicted median.",
        png(fig),
    )


class SurvivalSection(Section):
    """Stage ``survival``; the report's "Survival"."""

    name = "survival"
    title = "Survival"
    kpi_order = 25
    figures = (fig_risk_groups, fig_calibration, fig_patients)

    def intro(self, ctx: RunContext) -> str:
        return "time to death, tracheostomy or NIV"

    def compute(self, ctx: RunContext) -> Survival:
        return stage_survival(ctx)

    def render(
        self, ctx: RunContext, result: Survival | None, figures: Figures
    ) -> list[str]:
        r = result or Survival()
        p = [notes_html(ctx.notes.get("survival", []))]
        if r.model is None:
            return p
        m = r.model
        p.append(
            f"<p>{esc(m.describe())}: <code>{esc(m.formula)}</code>. Coefficients "
            "are at each patient's first visit; on the hazard scale their "
            "exponentials are hazard ratios (95% intervals).</p>"
        )
        p.append(table_html(r.coefficients, index=True))
        p.append(figures.html("survival_risk_groups"))
        p.append(table_html(r.groups.table, index=True))
        if r.scores is not None:
            p.append(
                "<p>Scores on held-out patients at each horizon: Harrell's and Uno's "
                "concordance, the time-dependent AUC, the Brier score with inverse-"
                "probability-of-censoring weights beside the Kaplan-Meier reference "
                "(<code>brier_km</code>: lower is better), the integrated Brier score "
                "and the calibration slope (1 is calibrated).</p>"
            )
            p.append(table_html(r.scores))
        p.append(figures.html("survival_calibration"))
        if r.landmark is not None:
            p.append(
                f"<p>Dynamic predictions at the {ctx.config.survival.landmark:g}-month "
                "landmark: patients event-free then, the joint model predicting from "
                "their visits up to it, the survival model from baseline.</p>"
            )
            p.append(table_html(r.landmark))
        p.append(figures.html("survival_patients"))
        p.append(f"<details><summary>summary</summary>{r.summary.to_html()}</details>")
        return p

    def kpis(self, ctx: RunContext, result: Survival | None) -> list[tuple[str, str]]:
        if result is None or result.scores is None:
            return []
        s = result.scores[result.scores["model"] == ctx.config.survival.method]
        s = s.dropna(subset=["harrell_c"])
        if s.empty:
            return []
        row = s.iloc[(s["horizon"] - 12).abs().argmin()]
        return [
            (
                f"survival C-index ({row['horizon']:g} months)",
                f"{row['harrell_c']:.2f}",
            )
        ]
