"""The cohort section: the long table, who is in it, who the models see.

Owns: :func:`stage_assemble` (the long table with imaging features joined, its
description in ``cohort.csv``, the imaging features the biomarkers use, the patients
the models are fitted on and those held out for the forecast charts), :class:`Cohort`
(its frozen result), the trajectories figure and the report's "Cohort" part (with the
imaging stage's notes).
Leaves: assembling and describing to :mod:`alsprog.data` and
:func:`alsprog.report.describe_cohort`; the checks to :mod:`alsprog.report._check`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alsprog.errors import ModelSpecificationError
from alsprog.report._check import check_columns_after_assembly
from alsprog.report._config import ConfigError
from alsprog.report._figures import FigureOut, new_figure, png
from alsprog.report._html import Figures, notes_html, table_html
from alsprog.report.sections._base import RunContext, Section
from alsprog.report.sections.imaging import Imaging

__all__ = ["Cohort", "CohortSection", "stage_assemble"]


@dataclass(frozen=True)
class Cohort:
    """The assembled table and the patients the models see.

    Attributes
    ----------
    table : pandas.DataFrame
        Every row of the long table (patients and controls).
    description : pandas.DataFrame
        ``cohort.csv``: one row per quantity.
    patients : pandas.DataFrame
        The ALS patients' rows with a value of the outcome.
    fit_data : pandas.DataFrame
        ``patients`` less those held out.
    holdout : tuple of str
        Patients held out of every fit for the forecast charts.
    features : tuple of str
        The imaging features the biomarkers stage uses (constant ones left out).
    """

    table: pd.DataFrame
    description: pd.DataFrame
    patients: pd.DataFrame
    fit_data: pd.DataFrame
    holdout: tuple[str, ...] = ()
    features: tuple[str, ...] = ()


def stage_assemble(ctx: RunContext) -> Cohort:
    """The long table, its description, the patients the models see."""
    from alsprog.data import write_table
    from alsprog.report._cohort import describe_cohort

    cfg = ctx.config
    table = _assembled(ctx)
    feats = _imaging_features(ctx, table)
    constant = [f for f in feats if table[f].dropna().nunique() < 2]
    if constant:
        ctx.note(
            "assemble", f"left out constant imaging feature(s): {', '.join(constant)}"
        )
    if ctx.proact is not None:
        _note_import(ctx)
    write_table(table, ctx.out / "table.parquet")
    write_table(table, ctx.out / "table.csv")
    description = describe_cohort(table, outcome=cfg.data.outcome)
    ctx.write(description, "cohort.csv", index=True)
    pat = table
    if "group" in pat.columns:
        pat = pat.loc[pat["group"].astype(str) == "als"]
    pat = pat.loc[pat[cfg.data.outcome].notna()].reset_index(drop=True)
    if pat.empty:
        raise ModelSpecificationError(
            f"no patient (group 'als') has a value of {cfg.data.outcome!r}; nothing "
            "to model."
        )
    holdout = _choose_holdout(ctx, pat)
    fit_data = pat.loc[~pat["subject_id"].isin(holdout)].reset_index(drop=True)
    n_sub = pat["subject_id"].nunique()
    msg = (
        f"{len(table)} rows, {table['subject_id'].nunique()} subjects; "
        f"{n_sub} patients with {cfg.data.outcome}"
    )
    if holdout:
        msg += f" ({len(holdout)} held out of the fits for the forecast charts)"
    ctx.note("assemble", msg)
    return Cohort(
        table=table,
        description=description,
        patients=pat,
        fit_data=fit_data,
        holdout=tuple(holdout),
        features=tuple(f for f in feats if f not in constant),
    )


def _note_import(ctx: RunContext) -> None:
    """The PRO-ACT import summary: in the cohort section and ``proact_import.txt``."""
    r = ctx.proact.report
    ctx.note(
        "assemble",
        f"PRO-ACT export {r.folder}: {r.n_subjects} subjects, {r.n_visits} visits "
        f"({r.n_alsfrs_r} ALSFRS-R, {r.n_alsfrs_original} original ALSFRS only, "
        f"{r.n_fvc} FVC); the full import report is in proact_import.txt",
    )
    for n in r.notes:
        ctx.note("assemble", f"import: {n}")
    from alsprog._io import atomic_path

    with atomic_path(ctx.out / "proact_import.txt") as tmp:
        tmp.write_text(str(r) + "\n", encoding="utf-8")


def _assembled(ctx: RunContext) -> pd.DataFrame:
    """The checked table, or with NIfTI features (ROI, connectivity) the table
    assembled with them."""
    import warnings as _w

    from alsprog.data import assemble

    cfg = ctx.config
    if cfg.imaging is None and cfg.connectivity is None:
        assert ctx.checked_table is not None
        return ctx.checked_table
    with _w.catch_warnings():
        _w.simplefilter("always")
        visits, subjects = cfg.data.visits, cfg.data.subjects
        if ctx.proact is not None:
            visits, subjects = ctx.proact.visits, ctx.proact.subjects
        return assemble(
            visits,
            subjects,
            ctx.result("imaging", Imaging).features,
            window_days=cfg.data.window_days,
            rename=cfg.data.rename,
        )


def _imaging_features(ctx: RunContext, table: pd.DataFrame) -> list[str]:
    """The imaging features the biomarkers use; every problem of the table's
    columns raised at once (:class:`~alsprog.report.ConfigError`)."""
    from alsprog.biomarkers import imaging_feature_columns, select_features

    cfg = ctx.config
    problems = check_columns_after_assembly(cfg, table)
    feats: list[str] = []
    imaging_cols = imaging_feature_columns(list(table.columns))
    if cfg.biomarkers.enabled and imaging_cols:
        try:
            feats = select_features(
                list(table.columns),
                list(cfg.biomarkers.features) if cfg.biomarkers.features else None,
            )
        except ModelSpecificationError as exc:
            from alsprog.errors import Problem

            problems.append(
                Problem(
                    f"key biomarkers.features: {exc}",
                    rule="config",
                    source=str(cfg.path) if cfg.path else "run config",
                    value=list(cfg.biomarkers.features or ()),
                )
            )
    if problems:
        raise ConfigError(problems, source=str(cfg.path) if cfg.path else None)
    return feats


def _choose_holdout(ctx: RunContext, pat: pd.DataFrame) -> list[str]:
    fc = ctx.config.forecast
    if not fc.enabled or fc.n_patients == 0 or not ctx.config.models:
        return []
    g = pat.groupby("subject_id")["months"]
    first_ok = g.min() <= fc.history_months
    later = g.max() >= max(fc.horizons) - 0.5
    ids = sorted(first_ok.index[first_ok & later])
    if len(ids) < fc.n_patients:
        beyond = g.max() > fc.history_months + 0.5
        ids = sorted(first_ok.index[first_ok & beyond])
    n = min(fc.n_patients, len(ids), max(0, pat["subject_id"].nunique() // 5))
    if n == 0:
        return []
    rng = np.random.default_rng(ctx.seed("forecast.holdout"))
    return sorted(
        str(x) for x in rng.choice(np.asarray(ids, dtype=object), n, replace=False)
    )


def fig_spaghetti(ctx: RunContext) -> FigureOut | None:
    """Every patient's observed outcome over time, by onset site."""
    from alsprog.plots import spaghetti

    cfg = ctx.config
    patients = ctx.result("cohort", Cohort).patients
    by = "onset_site" if "onset_site" in patients.columns else None
    fig, ax = new_figure(8, 4.6)
    spaghetti(
        patients, outcome=cfg.data.outcome, time=cfg.data.time, by=by, ax=ax[0, 0]
    )
    ax[0, 0].set_title(f"Observed {cfg.data.outcome} of every patient")
    n = patients["subject_id"].nunique()
    return FigureOut(
        "cohort_spaghetti",
        "cohort",
        "Trajectories by onset site",
        f"{cfg.data.outcome} of each of the {n} patients over {cfg.data.time}"
        + (", coloured by onset site." if by else "."),
        png(fig),
    )


class CohortSection(Section):
    """Stage ``assemble``; the report's "Cohort"."""

    name = "cohort"
    stage = "assemble"
    title = "Cohort"
    kpi_order = 10
    figures = (fig_spaghetti,)

    def intro(self, ctx: RunContext) -> str:
        return "long-format table"

    def compute(self, ctx: RunContext) -> Cohort:
        return stage_assemble(ctx)

    def render(
        self, ctx: RunContext, result: Cohort | None, figures: Figures
    ) -> list[str]:
        parts = []
        if result is not None:
            desc = result.description.rename_axis("quantity")
            parts.append(table_html(desc, index=True))
        return [
            *parts,
            notes_html(ctx.notes.get("imaging", [])),
            notes_html(ctx.notes.get("assemble", [])),
            figures.html("cohort_spaghetti"),
        ]

    def kpis(self, ctx: RunContext, result: Cohort | None) -> list[tuple[str, str]]:
        if result is None:
            return []
        t = result.table
        n_pat = result.patients["subject_id"].nunique()
        return [
            ("patients / subjects", f"{n_pat} / {t['subject_id'].nunique()}"),
            ("visits", f"{len(t):,}"),
        ]
