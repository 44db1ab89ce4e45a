"""The biomarkers section: imaging features as diagnostic and progression markers.

Owns: :func:`stage_biomarkers` (the ALS vs control classifier's cross-validated
evaluation, each feature's yearly change by group, the screen of baseline imaging
against ALSFRS-R decline, into ``biomarkers/``), :class:`Biomarkers` (its frozen
result), the ROC and feature-trajectory figures and the report's "Imaging
biomarkers".
Leaves: the statistics to :mod:`alsprog.biomarkers`; which features to the cohort
section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from alsprog.errors import DataValidationError, ModelSpecificationError
from alsprog.report._figures import FigureOut, grid, new_figure, png
from alsprog.report._html import Figures, esc, notes_html, table_html
from alsprog.report.sections._base import RunContext, Section
from alsprog.report.sections.cohort import Cohort

__all__ = ["Biomarkers", "BiomarkersSection", "stage_biomarkers"]

#: Columns of the change-rate table the report shows, in order.
CHANGE_RATE_COLUMNS = (
    "feature",
    "als_slope",
    "control_slope",
    "difference",
    "difference_ci_lower",
    "difference_ci_upper",
    "srm",
    "n_per_arm",
    "note",
)


@dataclass(frozen=True)
class Biomarkers:
    """The classifier's evaluation, the change rates and the progression-marker
    screen; each None when not made."""

    classifier: Any = None
    change_rates: pd.DataFrame | None = None
    markers: pd.DataFrame | None = None
    comparison: Any = None  # ClassifierComparison


def stage_biomarkers(ctx: RunContext) -> Biomarkers:
    """Imaging classifier (ALS vs control), change rates, progression markers."""
    from alsprog.biomarkers import screen_progression_markers

    cfg, bc = ctx.config, ctx.config.biomarkers
    if not bc.enabled:
        ctx.note("biomarkers", "disabled in the config")
        return Biomarkers()
    cohort = ctx.result("cohort", Cohort)
    if not cohort.features:
        ctx.note("biomarkers", "no imaging features in the table; stage skipped")
        return Biomarkers()
    table, feats = cohort.table, list(cohort.features)
    imaged = table.dropna(subset=feats, how="all")
    groups = set(imaged["group"].astype(str)) if "group" in imaged.columns else set()
    ev = rates = markers = comparison = None
    if {"als", "control"} <= groups:
        ev = _classifier(ctx, table, feats)
        comparison = _comparison(ctx, table, feats)
        try:
            rates = _change_rates(ctx, table, feats)
        except (DataValidationError, ModelSpecificationError) as exc:
            ctx.note("biomarkers", f"no imaging change rates: {exc}")
    else:
        ctx.note(
            "biomarkers",
            "the classifier and change rates need imaged ALS patients and controls "
            f"(groups with imaging: {sorted(groups) or 'none'}); skipped",
        )
    try:
        markers = screen_progression_markers(
            table, feats, outcome=cfg.data.outcome, time=cfg.data.time
        )
        ctx.write(markers, "biomarkers/progression_markers.csv")
    except (DataValidationError, ModelSpecificationError) as exc:
        ctx.note("biomarkers", f"no progression-marker screen: {exc}")
    return Biomarkers(
        classifier=ev, change_rates=rates, markers=markers, comparison=comparison
    )


def _classifier(ctx: RunContext, table: pd.DataFrame, feats: list[str]) -> Any:
    """The classifier's evaluation (None, and said, when it cannot be made)."""
    from alsprog.biomarkers import ImagingClassifier, evaluate_classifier

    bc = ctx.config.biomarkers
    covs = [c for c in ("age", "sex") if c in table.columns]
    clf = ImagingClassifier(
        bc.estimator,
        features=feats,
        harmonize=None if bc.harmonize == "none" else bc.harmonize,
        covariates=covs,
        random_state=ctx.seed("biomarkers.classifier"),
    )
    ctx.say(
        f"classifier ({bc.estimator}, {bc.harmonize}) on {len(feats)} features, "
        f"cv={bc.cv}, {bc.n_permutations} permutations"
    )
    try:
        ev = evaluate_classifier(
            table,
            clf=clf,
            cv=bc.cv,
            n_permutations=bc.n_permutations,
            n_bootstrap=bc.n_bootstrap,
            seed=ctx.seed("biomarkers.evaluate"),
            n_jobs=ctx.config.run.n_jobs,
            progress=ctx.progress,
        )
    except (DataValidationError, ModelSpecificationError) as exc:
        ctx.note("biomarkers", f"no classifier: {exc}")
        return None
    ctx.write(ev.summary.rename_axis("metric"), "biomarkers/classifier.csv", index=True)
    ctx.write(ev.folds, "biomarkers/classifier_folds.csv")
    ctx.write(ev.roc_curves(), "biomarkers/roc.csv")
    ctx.note(
        "biomarkers",
        f"classifier: positive class {ev.pos_label!r} (sensitivity and the "
        f"ROC curve are about it); permutation p-value of the ROC AUC: "
        f"{ev.pvalue_text}",
    )
    return ev


#: Columns of the classifier comparison the report shows, in order.
COMPARISON_COLUMNS = (
    "roc_auc",
    "roc_auc_ci_lower",
    "roc_auc_ci_upper",
    "difference",
    "difference_ci_lower",
    "difference_ci_upper",
    "p_value",
    "balanced_accuracy",
    "brier_score",
)


def _comparison(ctx: RunContext, table: pd.DataFrame, feats: list[str]) -> Any:
    """``compare``: the classifiers on the classifier's folds, paired AUC
    differences from ``estimator`` (None, and said, when not made)."""
    from alsprog.biomarkers import compare_classifiers

    bc = ctx.config.biomarkers
    names = [bc.estimator, *(e for e in bc.compare if e != bc.estimator)]
    if not bc.compare or len(names) < 2:
        return None
    ctx.say(f"comparing {', '.join(names)} on the same folds (cv={bc.cv})")
    try:
        cmp = compare_classifiers(
            table,
            names,
            cv=bc.cv,
            reference=bc.estimator,
            features=feats,
            harmonize=None if bc.harmonize == "none" else bc.harmonize,
            covariates=[c for c in ("age", "sex") if c in table.columns],
            n_bootstrap=bc.n_bootstrap,
            seed=ctx.seed("biomarkers.evaluate"),
            n_jobs=ctx.config.run.n_jobs,
        )
    except (DataValidationError, ModelSpecificationError) as exc:
        ctx.note("biomarkers", f"no classifier comparison: {exc}")
        return None
    ctx.write(
        cmp.to_frame().rename_axis("estimator"),
        "biomarkers/classifier_comparison.csv",
        index=True,
    )
    ctx.write(cmp.folds, "biomarkers/classifier_comparison_folds.csv", index=True)
    return cmp


def _change_rates(
    ctx: RunContext, table: pd.DataFrame, feats: list[str]
) -> pd.DataFrame | None:
    from alsprog.biomarkers import imaging_change_rates

    # a feature measured once per subject (e.g. a baseline-only scan) has no rate
    counts = table.dropna(subset=["group"]).groupby(["group", "subject_id"])[feats]
    followed = counts.count().ge(2).groupby(level="group").any()
    once = [f for f in feats if not followed[f].all()]
    if once:
        ctx.note(
            "biomarkers",
            f"no yearly change of {', '.join(once)}: no follow-up scans in each group",
        )
    feats = [f for f in feats if f not in once]
    if not feats:
        return None
    rates = imaging_change_rates(table, feats, visit_months=(0, 6, 12))
    ctx.write(rates, "biomarkers/imaging_change_rates.csv")
    return rates


# ------------------------------------------------------------------- figures
def _top_features(ctx: RunContext, n: int) -> list[str]:
    feats = list(ctx.result("cohort", Cohort).features)
    r = ctx.result("biomarkers", Biomarkers).change_rates
    if r is not None and "srm" in r.columns:
        order = r.assign(a=r["srm"].abs()).sort_values("a", ascending=False)
        ranked = [f for f in order["feature"] if f in feats]
        feats = ranked + [f for f in feats if f not in ranked]
    return feats[:n]


def fig_features(ctx: RunContext) -> FigureOut | None:
    """The imaging features that change most, one line per subject, by group."""
    from alsprog.plots import feature_trajectories

    cohort = ctx.result("cohort", Cohort)
    rates = ctx.result("biomarkers", Biomarkers).change_rates
    if not cohort.features or "group" not in cohort.table.columns:
        return None
    feats = _top_features(ctx, ctx.config.report.n_features)
    nrows, ncols = grid(len(feats), 2)
    fig, axes = new_figure(4.6 * ncols, 3.2 * nrows, nrows, ncols)
    for ax, f in zip(axes.ravel(), feats, strict=False):
        feature_trajectories(
            cohort.table, f, time=ctx.config.data.time, rates=rates, ax=ax
        )
    for ax in axes.ravel()[len(feats) :]:
        ax.set_visible(False)
    how = (
        " (those with the largest standardised response to ALS progression)"
        if rates is not None
        else ""
    )
    return FigureOut(
        "imaging_feature_trajectories",
        "biomarkers",
        "Imaging features over time by group",
        f"{len(feats)} imaging features{how}, one line per subject; the legend gives "
        "each group's fitted yearly change.",
        png(fig),
    )


def fig_roc(ctx: RunContext) -> FigureOut | None:
    """The classifier's held-out ROC curve of each fold and their mean."""
    from alsprog.plots import roc_curves

    ev = ctx.result("biomarkers", Biomarkers).classifier
    if ev is None:
        return None
    fig, ax = new_figure(5.5, 5)
    roc_curves(ev, ax=ax[0, 0])
    return FigureOut(
        "classifier_roc",
        "biomarkers",
        "ALS vs control classifier: ROC",
        f"Held-out ROC curve of each cross-validation fold ({ev.cv} split) and "
        "their mean.",
        png(fig),
    )


def fig_connectivity(ctx: RunContext) -> FigureOut | None:
    """Mean resting-state connectivity (Fisher z) of each group and their
    difference, with ``[connectivity]``."""
    import numpy as np

    from alsprog.report.sections.imaging import Imaging

    con = ctx.result("imaging", Imaging).connectivity
    table = ctx.result("cohort", Cohort).table
    if con is None or "group" not in table.columns:
        return None
    group = dict(
        zip(table["subject_id"].astype(str), table["group"].astype(str), strict=False)
    )
    of = con.features["subject_id"].astype(str).map(group).to_numpy()
    z = (
        con.matrices
        if con.reference is not None
        else np.arctanh(np.clip(con.matrices, -0.999999, 0.999999))
    )
    means = {
        g: np.nanmean(z[of == g], axis=0) for g in ("als", "control") if (of == g).any()
    }
    if len(means) < 2:
        return None
    k = len(con.regions)
    for m in means.values():
        m[np.diag_indices(k)] = np.nan
    diff = means["als"] - means["control"]
    fig, axes = new_figure(13.5, 4.4, 1, 3)
    lim = float(np.nanmax(np.abs(np.stack(list(means.values())))))
    dlim = float(np.nanmax(np.abs(diff))) or 1.0
    panels = (
        (means["control"], f"controls (n={int((of == 'control').sum())})", lim),
        (means["als"], f"ALS (n={int((of == 'als').sum())})", lim),
        (diff, "ALS - controls", dlim),
    )
    measure = "tangent coordinate" if con.reference is not None else "Fisher z"
    for ax, (m, title, v) in zip(axes.ravel(), panels, strict=True):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-v, vmax=v)
        ax.set_title(title)
        ax.set_xticks(range(k), con.regions, rotation=90, fontsize=7)
        ax.set_yticks(range(k), con.regions, fontsize=7)
        fig.colorbar(im, ax=ax, shrink=0.8, label=measure)
    kind = ctx.config.connectivity.kind if ctx.config.connectivity else "correlation"
    return FigureOut(
        "connectivity_by_group",
        "biomarkers",
        "Resting-state connectivity by group",
        f"Mean {kind} connectivity ({measure}) between atlas regions over the BOLD "
        "runs of each group, and the difference (blue: weaker in ALS).",
        png(fig),
    )


class BiomarkersSection(Section):
    """Stage ``biomarkers``; the report's "Imaging biomarkers"."""

    name = "biomarkers"
    title = "Imaging biomarkers"
    kpi_order = 40
    figures = (fig_features, fig_roc, fig_connectivity)

    def intro(self, ctx: RunContext) -> str:
        return "imaging biomarkers"

    def compute(self, ctx: RunContext) -> Biomarkers:
        return stage_biomarkers(ctx)

    def render(
        self, ctx: RunContext, result: Biomarkers | None, figures: Figures
    ) -> list[str]:
        r = result or Biomarkers()
        p = [notes_html(ctx.notes.get("biomarkers", []))]
        ev = r.classifier
        if ev is not None:
            p.append(
                f"<p>ALS vs control classifier on {len(ev.features)} imaging "
                f"features, {esc(ev.cv)} cross-validation (every session of a "
                "subject in one fold; harmonisation and scaling refitted in each "
                f"training fold); {ev.level:.0%} subject-bootstrap intervals.</p>"
            )
            p.append(table_html(ev.summary.rename_axis("metric"), index=True))
        p.append(figures.html("classifier_roc"))
        cmp = r.comparison
        if cmp is not None:
            frame = cmp.to_frame()
            cols = [c for c in COMPARISON_COLUMNS if c in frame.columns]
            p.append("<h3>Classifiers compared on the same folds</h3>")
            p.append(
                f"<p>Each classifier cross-validated on the same {esc(cmp.cv)} folds "
                "(same splits, same in-fold harmonisation and scaling, same fold "
                f"seeds); difference: its ROC AUC minus {esc(cmp.reference)}'s, with "
                f"a paired {cmp.level:.0%} subject-bootstrap interval and p-value (one "
                "set of subject resamples for every classifier; the fold models are "
                "taken as fixed). Brier score: mean squared error of the predicted "
                "probability (lower is better).</p>"
            )
            p.append(table_html(frame[cols].rename_axis("classifier"), index=True))
        p.append(figures.html("imaging_feature_trajectories"))
        p.append(figures.html("connectivity_by_group"))
        if r.change_rates is not None:
            p.append("<h3>Yearly change of each feature</h3>")
            cols = [c for c in CHANGE_RATE_COLUMNS if c in r.change_rates.columns]
            p.append(table_html(r.change_rates[cols]))
        if r.markers is not None:
            p.append("<h3>Baseline imaging as a predictor of ALSFRS-R decline</h3>")
            p.append(table_html(r.markers))
        return p

    def kpis(self, ctx: RunContext, result: Biomarkers | None) -> list[tuple[str, str]]:
        ev = result.classifier if result is not None else None
        if ev is None:
            return []
        auc = ev.summary.loc["roc_auc"]
        return [
            (
                "classifier ROC AUC",
                f"{auc['estimate']:.2f} [{auc['ci_lower']:.2f}, {auc['ci_upper']:.2f}]",
            )
        ]
