"""The models section: every configured trajectory model, fitted and compared.

Owns: :func:`build_model` (an unfitted estimator for a model's config),
:func:`stage_models` (fit each model on the cohort's fit data; its summary tables,
text summary and saved model under ``models/``; ``models/comparison.csv`` with
PSIS-LOO for the Bayesian ones, and PSIS-LOO by patient or exact K-fold CV by
subject in its place when PSIS-LOO by visit is unreliable), :class:`Models` (its frozen result), the model
comparison and per-patient trajectory figures and the report's "Trajectory models".
Leaves: the models to :mod:`alsprog.models`; the drawings to :mod:`alsprog.plots`;
what a latent-class model adds (number of classes, class curves and sizes) to
:mod:`alsprog.report.sections._latent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from alsprog.report._check import model_formula, model_params
from alsprog.report._config import ModelConfig
from alsprog.report._figures import FigureOut, grid, new_figure, png
from alsprog.report._html import Figures, esc, notes_html, table_html
from alsprog.report.sections._base import RunContext, Section
from alsprog.report.sections._latent import (
    LatentClasses,
    fig_class_selection,
    fig_class_trajectories,
    is_latent,
    latent_classes,
    latent_html,
)
from alsprog.report.sections.cohort import Cohort

__all__ = [
    "KFOLD_K",
    "MAX_PARETO_K_BAD",
    "PSIS_SUBJECT",
    "Models",
    "ModelsSection",
    "best_by_loo",
    "build_model",
    "criterion_name",
    "stage_models",
]

#: File of each summary table (``models/NAME_<file>.csv``): one name per content,
#: whichever model wrote it.  The joint model's ``fixed_effects`` is ``NAME_fixed.csv``
#: as the mixed model's ``fixed`` is; the mixed model's scaled-residual quantiles
#: (``residuals``) and the Bayesian model's residual SD (``residual``) differ, and so
#: do their names.
SUMMARY_FILES = {
    "fixed": "fixed",
    "fixed_effects": "fixed",
    "random": "random",
    "random_effects": "random",
    "residuals": "scaled_residuals",
    "residual": "residual_sd",
}


def _frozen_map() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Models:
    """The fitted models, their summaries and their comparison, by model name.

    ``comparison`` is None when no model is configured; ``classes`` holds what the
    report shows of each latent-class model (:class:`LatentClasses`).
    """

    models: Mapping[str, Any] = field(default_factory=_frozen_map)
    summaries: Mapping[str, Any] = field(default_factory=_frozen_map)
    comparison: pd.DataFrame | None = None
    classes: Mapping[str, LatentClasses] = field(default_factory=_frozen_map)


def build_model(ctx: RunContext, m: ModelConfig) -> Any:
    """An unfitted model for a model's config: its registered class built from the
    section's keys (unset ones filled from ``[data]``), with a seed derived from
    ``run.seed`` and the run's progress setting where the class takes them."""
    from alsprog.models.registry import MODELS, config_keys

    cls = MODELS[m.type]
    params = model_params(ctx.config, m)
    takes = {k.name for k in config_keys(cls)}
    if "seed" in takes:
        params["seed"] = ctx.seed(f"models.{m.name}")
    if "progress" in takes:
        params["progress"] = ctx.progress
    return cls(**params)


def stage_models(ctx: RunContext) -> Models:
    """Fit every model; write summaries (CSV/text), saved models, LOO.

    Each model is saved under its class's ``file_suffix`` (``.npz`` for mixed models,
    ``.nc`` netCDF for Bayesian ones).
    """
    import time

    cfg = ctx.config
    if not cfg.models:
        ctx.note("models", "no models configured")
        return Models()
    fit_data = ctx.result("cohort", Cohort).fit_data
    rows = []
    models: dict[str, Any] = {}
    summaries: dict[str, Any] = {}
    for m in cfg.models:
        est = build_model(ctx, m)
        ctx.say(f"fitting {m.name}: {est.describe()}")
        t0 = time.perf_counter()
        est.fit(fit_data)
        seconds = time.perf_counter() - t0
        models[m.name] = est
        summaries[m.name] = summ = est.summary(level=type(est).report_level)
        _write_summary(ctx, m.name, summ)
        saver = getattr(est, "save", None)
        if callable(saver):  # each model under its own format's suffix
            saver(ctx.out / "models" / f"{m.name}{type(est).file_suffix}")
        rows.append(_model_row(m, est, model_formula(cfg, m), seconds))
        warning = est.fit_warning()
        if warning:
            ctx.note("models", f"{m.name} {warning}")
    comp = pd.DataFrame(rows).set_index("model")
    comp = _add_loo(ctx, models, comp, fit_data)
    ctx.write(comp, "models/comparison.csv", index=True)
    classes = {
        m.name: latent_classes(ctx, m, models[m.name], summaries[m.name], fit_data)
        for m in cfg.models
        if is_latent(models[m.name])
    }
    return Models(
        models=MappingProxyType(models),
        summaries=MappingProxyType(summaries),
        comparison=comp,
        classes=MappingProxyType(classes),
    )


def _write_summary(ctx: RunContext, name: str, summ: Any) -> None:
    """``models/NAME_<table>.csv`` for each summary table and ``NAME_summary.txt``."""
    for tname, tab in summ.tables.items():
        if tab.index.nlevels == 1 and tab.index.name is None:
            tab = tab.rename_axis("term")
        fname = SUMMARY_FILES.get(tname, tname)
        ctx.write(tab, f"models/{name}_{fname}.csv", index=True)
    ctx.write_text(f"models/{name}_summary.txt", str(summ) + "\n")


def _model_row(
    m: ModelConfig, est: Any, formula: str | None, seconds: float
) -> dict[str, Any]:
    """A model's row of ``comparison.csv``: its name, type (and variant), formula,
    sizes and time, then its fit statistics (``TrajectoryModel.fit_statistics``)."""
    variant = est.variant()
    return {
        "model": m.name,
        "type": m.type if variant is None else f"{m.type} {variant}",
        "formula": formula,
        "n_obs": int(est.n_obs_),
        "n_subjects": int(est.n_subjects_),
        "seconds": seconds,
        **est.fit_statistics(),
    }


#: Most observations with Pareto k > 0.7 for which a model's PSIS-LOO is still read
#: as reliable (Vehtari et al. 2017 ask for none; a handful is tolerated).
MAX_PARETO_K_BAD = 5
#: Folds of the exact cross-validation by subject that replaces PSIS-LOO in the
#: comparison when a converged model's PSIS-LOO is unreliable.
KFOLD_K = 5
#: The ``criterion`` of a comparison by PSIS-LOO (by visit), and by PSIS-LOO leaving
#: out whole patients.
PSIS_LOO = "PSIS-LOO"
PSIS_SUBJECT = "PSIS-LOO by patient"


def criterion_name(comp: pd.DataFrame) -> str:
    """The criterion the Bayesian models were ranked by: ``"PSIS-LOO"``,
    ``"PSIS-LOO by patient"`` or ``"5-fold CV by subject"`` (the ``criterion``
    column; PSIS-LOO without it).

    Examples
    --------
    >>> criterion_name(pd.DataFrame({"rank": [0.0]}))
    'PSIS-LOO'
    """
    if "criterion" not in comp.columns:
        return PSIS_LOO
    used = comp.loc[comp["rank"].notna(), "criterion"].dropna()
    return str(used.iloc[0]) if len(used) else PSIS_LOO


def best_by_loo(comp: pd.DataFrame) -> str:
    """The model the comparison ranks first among those that passed the
    convergence gate and, when ranked by PSIS-LOO, whose PSIS-LOO is reliable
    (at most :data:`MAX_PARETO_K_BAD` observations with Pareto k > 0.7; the
    Pareto k do not matter when the ``criterion`` column says K-fold);
    otherwise what kept each ranked model out.

    Examples
    --------
    >>> comp = pd.DataFrame({"rank": [0.0, 1.0], "converged": [False, True],
    ...                      "n_pareto_k_bad": [0, 2]}, index=["a", "b"])
    >>> best_by_loo(comp)
    'b (a did not converge)'
    """
    ranked = comp[comp["rank"].notna()].sort_values("rank")
    psis = criterion_name(comp) == PSIS_LOO
    why: dict[str, str] = {}
    for name, row in ranked.iterrows():
        if not bool(row.get("converged", True)):
            why[str(name)] = "did not converge"
        elif psis and float(row.get("n_pareto_k_bad", 0) or 0) > MAX_PARETO_K_BAD:
            why[str(name)] = f"{int(row['n_pareto_k_bad'])} Pareto k > 0.7"
    ok = [str(n) for n in ranked.index if str(n) not in why]
    left = "; ".join(f"{n} {w}" for n, w in why.items())
    if not ok:
        return f"none ({left})"
    first_ranked = str(ranked.index[0])
    return ok[0] if ok[0] == first_ranked else f"{ok[0]} ({left})"


def _add_loo(
    ctx: RunContext,
    models: Mapping[str, Any],
    comp: pd.DataFrame,
    fit_data: pd.DataFrame,
) -> pd.DataFrame:
    """Each Bayesian model's PSIS-LOO by visit and their comparison (``rank``,
    ``elpd_diff``, ``diff_se``, ``weight``, ``criterion``); the comparison is by
    PSIS-LOO by patient or exact :data:`KFOLD_K`-fold CV by subject
    (:func:`_kfold`) when a converged model's PSIS-LOO is unreliable."""
    import arviz as az

    loos = {}
    for name, est in models.items():
        if hasattr(est, "loo") and hasattr(est, "idata_"):
            lo = est.loo()
            loos[name] = lo
            k = np.asarray(lo.pareto_k)
            comp.loc[name, "elpd_loo"] = float(lo.elpd_loo)
            comp.loc[name, "elpd_se"] = float(lo.se)
            comp.loc[name, "p_loo"] = float(lo.p_loo)
            comp.loc[name, "n_pareto_k_bad"] = int((k > 0.7).sum())
    if len(loos) >= 2:
        n_obs = set(comp.loc[list(loos), "n_obs"].astype(int))
        if len(n_obs) == 1:
            criterion, elpds = _kfold(ctx, models, comp, fit_data, loos)
            cmp = az.compare(elpds)
            comp.loc[cmp.index, "rank"] = cmp["rank"].astype(float)
            comp.loc[cmp.index, "elpd_diff"] = cmp["elpd_diff"].astype(float)
            comp.loc[cmp.index, "diff_se"] = cmp["dse"].astype(float)
            comp.loc[cmp.index, "weight"] = cmp["weight"].astype(float)
            comp.loc[cmp.index, "criterion"] = criterion
        else:
            ctx.note(
                "models",
                "the Bayesian models used different rows (missing values), so their "
                "LOO values are not compared",
            )
    if loos:
        bad = comp.loc[list(loos), "n_pareto_k_bad"].astype(int).to_dict()
        if any(bad.values()):
            ctx.note(
                "models",
                "PSIS-LOO: some observations have Pareto k > 0.7 ("
                + ", ".join(f"{n}: {b}" for n, b in bad.items())
                + "); their LOO values are optimistic"
                + (
                    ", read the comparison with care"
                    if criterion_name(comp) == PSIS_LOO
                    else f"; the comparison uses {criterion_name(comp)} instead"
                ),
            )
    return comp


def _kfold(
    ctx: RunContext,
    models: Mapping[str, Any],
    comp: pd.DataFrame,
    fit_data: pd.DataFrame,
    loos: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The criterion and the ELPDs to compare the Bayesian models by.

    Their PSIS-LOO by visit when reliable.  When a converged model has more than
    :data:`MAX_PARETO_K_BAD` observations with Pareto k > 0.7: PSIS-LOO leaving out
    whole patients (each patient's marginal likelihood, effects integrated out; no
    refits), written to ``elpd_subject``/``subject_se``, if that is reliable for
    every converged model; else exact :data:`KFOLD_K`-fold CV by subject for every
    one of them (like with like; seeds ``models.NAME.kfold``, the run's
    ``n_jobs``), written to ``elpd_kfold`` and ``kfold_se``."""
    import time

    rows = comp.loc[list(loos)]
    converged = {str(n): bool(r.get("converged", True)) for n, r in rows.iterrows()}
    unreliable = [
        str(n)
        for n, r in rows.iterrows()
        if converged[str(n)] and int(r["n_pareto_k_bad"]) > MAX_PARETO_K_BAD
    ]
    if not unreliable:
        return PSIS_LOO, loos
    by_subject = {name: models[name].loo(by="subject") for name in loos}
    bad = {
        name: int((np.asarray(cv["pareto_k"]) > 0.7).sum())
        for name, cv in by_subject.items()
    }
    if all(bad[n] <= MAX_PARETO_K_BAD or not converged[n] for n in loos):
        ctx.note(
            "models",
            f"PSIS-LOO by visit is unreliable for {', '.join(unreliable)} (more than "
            f"{MAX_PARETO_K_BAD} observations with Pareto k > 0.7), so the Bayesian "
            f"models are compared by {PSIS_SUBJECT} (reliable: "
            + ", ".join(f"{n}: {b} patients with k > 0.7" for n, b in bad.items())
            + ")",
        )
        for name, cv in by_subject.items():
            comp.loc[name, "elpd_subject"] = float(cv["elpd_loo"])
            comp.loc[name, "subject_se"] = float(cv["se"])
        return PSIS_SUBJECT, by_subject
    criterion = f"{KFOLD_K}-fold CV by subject"
    ctx.note(
        "models",
        f"PSIS-LOO is unreliable for {', '.join(unreliable)} (more than "
        f"{MAX_PARETO_K_BAD} observations with Pareto k > 0.7, by visit and by "
        f"patient), so the Bayesian models are compared by {criterion} (each "
        f"refitted {KFOLD_K} times)",
    )
    elpds = {}
    for name in loos:
        t0 = time.perf_counter()
        ctx.say(f"{criterion} of {name}")
        cv = models[name].kfold(
            fit_data,
            k=KFOLD_K,
            seed=ctx.seed(f"models.{name}.kfold"),
            n_jobs=ctx.config.run.n_jobs,
        )
        elpds[name] = cv
        comp.loc[name, "elpd_kfold"] = float(cv["elpd_loo"])
        comp.loc[name, "kfold_se"] = float(cv["se"])
        ctx.say(f"{criterion} of {name}: {time.perf_counter() - t0:.1f} s")
    return criterion, elpds


# ------------------------------------------------------------------- figures
def fig_comparison(ctx: RunContext) -> FigureOut | None:
    """Each Bayesian model's PSIS-LOO with one standard error."""
    from alsprog.plots import model_comparison

    comp = ctx.result("models", Models).comparison
    if (
        comp is None
        or "elpd_loo" not in comp.columns
        or comp["elpd_loo"].notna().sum() == 0
    ):
        return None
    k = int(comp["elpd_loo"].notna().sum())
    fig, ax = new_figure(7, 1.3 + 0.55 * k)
    model_comparison(comp, ax=ax[0, 0])
    return FigureOut(
        "model_comparison",
        "models",
        "Model comparison (PSIS-LOO)",
        "Expected log predictive density of each Bayesian model, leaving out one visit "
        "at a time (PSIS-LOO), with one standard error.",
        png(fig),
    )


def _pick_patients(ctx: RunContext, d: pd.DataFrame, n: int) -> list[str]:
    """Patients for the per-patient panels: several visits, onset sites mixed."""
    counts = d.groupby("subject_id").size()
    pool = counts.index[counts >= 3] if (counts >= 3).sum() >= n else counts.index
    rng = np.random.default_rng(ctx.seed("report.patients"))
    ids = list(rng.permutation(np.asarray(pool, dtype=object)))
    if "onset_site" in d.columns:
        site = d.groupby("subject_id")["onset_site"].first().astype(str)
        by: dict[str, list[Any]] = {}
        for i in ids:
            by.setdefault(site.get(i, "missing"), []).append(i)
        ordered: list[Any] = []
        while len(ordered) < len(ids):
            for lst in by.values():
                if lst:
                    ordered.append(lst.pop(0))
        ids = ordered
    return [str(i) for i in ids[:n]]


def fig_trajectories(ctx: RunContext) -> FigureOut | None:
    """A few patients' visits with every model's fitted curve and band."""
    from alsprog.plots import subject_trajectories

    models = ctx.result("models", Models).models
    if not models:
        return None
    cfg = ctx.config
    fit_data = ctx.result("cohort", Cohort).fit_data
    ids = _pick_patients(ctx, fit_data, cfg.report.n_subjects)
    nrows, ncols = grid(len(ids))
    fig, axes = new_figure(3.2 * ncols, 2.8 * nrows + 0.5, nrows, ncols)
    for ax, sid in zip(axes.ravel(), ids, strict=False):
        # one band type for every model (the band of the patient's mean curve:
        # confidence for the mixed and joint models, credible for the Bayesian ones)
        subject_trajectories(
            dict(models),
            fit_data,
            sid,
            outcome=cfg.data.outcome,
            time=cfg.data.time,
            level=cfg.report.level,
            interval="confidence",
            ax=ax,
        )
    for ax in axes.ravel()[len(ids) :]:
        ax.set_visible(False)
    first = axes[0, 0].get_legend()
    handles = list(first.legend_handles)
    labels = [t.get_text() for t in first.get_texts()]
    for ax in axes.ravel()[: len(ids)]:
        ax.get_legend().remove()  # one legend for the figure
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 4),
        fontsize="small",
    )
    return FigureOut(
        "subject_trajectories",
        "models",
        "Per-patient trajectories",
        f"Visits of {len(ids)} patients with each model's fitted curve (its own "
        f"colour, line style and marker) and the {cfg.report.level:.0%} band of the "
        "patient's mean curve for every model (confidence band for the mixed and "
        "joint models, credible band for the Bayesian ones; not a prediction "
        "interval for new visits, which would be wider).",
        png(fig),
    )


class ModelsSection(Section):
    """Stage ``models``; the report's "Trajectory models"."""

    name = "models"
    title = "Trajectory models"
    kpi_order = 20
    figures = (
        fig_comparison,
        fig_trajectories,
        fig_class_selection,
        fig_class_trajectories,
    )

    def intro(self, ctx: RunContext) -> str:
        return f"{len(ctx.config.models)} model(s)"

    def compute(self, ctx: RunContext) -> Models:
        return stage_models(ctx)

    def render(
        self, ctx: RunContext, result: Models | None, figures: Figures
    ) -> list[str]:
        r = result or Models()
        p = [notes_html(ctx.notes.get("models", []))]
        if r.comparison is not None:
            comp = r.comparison.drop(columns=["formula"], errors="ignore")
            p.append(
                "<p>One row per model. Mixed models: REML log-likelihood, AIC and BIC. "
                "Bayesian models: convergence (R-hat, bulk ESS, divergences) and the "
                "expected log predictive density by PSIS-LOO (by visit, conditional on "
                "the patient's effects). They are ranked by "
                f"{esc(criterion_name(r.comparison))}: PSIS-LOO, unless a converged "
                f"model has more than {MAX_PARETO_K_BAD} observations of Pareto k > "
                "0.7 (its PSIS-LOO unreliable); then all of them by PSIS-LOO "
                "leaving out whole patients (each patient's likelihood with their "
                "effects integrated out; <code>elpd_subject</code>) where that is "
                f"reliable, else by exact {KFOLD_K}-fold cross-validation leaving "
                "out whole patients (refits; <code>elpd_kfold</code>). "
                "<code>rank</code> 0 is the "
                "best, <code>elpd_diff</code> the loss against it with its SE. A "
                "model that did not pass the convergence gate, or ranked by an "
                "unreliable PSIS-LOO, is never named the best.</p>"
            )
            if r.classes:
                p.append(
                    "<p>Latent-class models: maximum-likelihood log-likelihood, AIC "
                    "and BIC with the number of patients as N (lcmm's convention), "
                    "so not comparable with the mixed models' REML values; their "
                    "number of classes is compared below, where K = 1 is the same "
                    "formula's mixed model fitted by ML.</p>"
                )
            p.append(table_html(comp, index=True))
        p.append(figures.html("model_comparison"))
        p.append(figures.html("subject_trajectories"))
        p.extend(latent_html(r.classes, figures))
        for name, summ in r.summaries.items():
            p.append(
                f"<details><summary>{esc(name)}: summary</summary>"
                f"{summ.to_html()}</details>"
            )
        return p

    def kpis(self, ctx: RunContext, result: Models | None) -> list[tuple[str, str]]:
        comp = result.comparison if result is not None else None
        out = []
        if comp is not None and "rank" in comp.columns and comp["rank"].notna().any():
            out.append((f"best model by {criterion_name(comp)}", best_by_loo(comp)))
        for lc in (result.classes if result is not None else {}).values():
            out.append((f"{lc.name}: latent classes", lc.kpi))
        return out
