"""Latent-class models in a run: the number of classes, the classes' trajectories
and sizes.

Owns: :class:`LatentClasses` (what the report shows of one fitted latent-class
model), :func:`latent_classes` (for each configured ``latent_class`` model: the
class-number table of :func:`~alsprog.models.select_n_classes` over ``K = 1 ..
n_classes + 1`` with the model's own settings, the BIC choice and its note, the
class curves, sizes and observed means; ``models/NAME_class_selection.csv`` and
``models/NAME_class_trajectories.csv``), the class-selection and class-trajectory
figures and the fragments of the report's "Trajectory models" about them.
Leaves: the fits and the selection to :mod:`alsprog.models.latent`; the drawings
to :mod:`alsprog.plots` and :meth:`~alsprog.models.ClassSelection.plot`; fitting
the configured models to :mod:`alsprog.report.sections.models`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from alsprog.errors import ModelSpecificationError
from alsprog.report._config import ModelConfig
from alsprog.report._figures import FigureOut, grid, new_figure, png
from alsprog.report._html import Figures, esc, table_html
from alsprog.report.sections._base import RunContext

__all__ = [
    "LatentClasses",
    "fig_class_selection",
    "fig_class_trajectories",
    "is_latent",
    "latent_classes",
    "latent_html",
]

#: Log-likelihoods closer than this count as the same optimum.
SAME_LLF = 1e-3


@dataclass(frozen=True)
class LatentClasses:
    """What the report shows of one fitted latent-class model.

    Attributes
    ----------
    name : str
        The model's name in the config.
    n_classes : int
        Its configured number of classes.
    selection : ClassSelection or None
        :func:`~alsprog.models.select_n_classes` over ``K = 1 .. n_classes + 1``
        (fewer when the data cannot carry ``n_classes + 1``); None when no
        selection could be fitted.
    notes : tuple of str
        What to say about the choice: the selection's own note, a configured
        ``K`` other than the BIC choice, a choice at the largest ``K`` tried, a
        configured fit that fell short of the selection's fit of the same ``K``.
    curves : pandas.DataFrame
        ``class``, the time column, ``mean``, ``se``, ``lower``, ``upper``.
    observed : pandas.DataFrame
        Observed mean outcome per MAP class and time bin (``class``, time,
        ``mean``, ``n``).
    sizes : pandas.DataFrame
        The summary's ``classes`` table: ``pi``, ``n`` and ``share`` by class.
    postprob : pandas.DataFrame
        The summary's ``postprob`` table (lcmm's posterior classification).
    time : str
        The model's time column.
    """

    name: str
    n_classes: int
    selection: Any
    notes: tuple[str, ...]
    curves: pd.DataFrame
    observed: pd.DataFrame
    sizes: pd.DataFrame
    postprob: pd.DataFrame
    time: str

    @property
    def kpi(self) -> str:
        """The configured K, and BIC's choice when it differs."""
        best = None if self.selection is None else self.selection.best
        if self.selection is None or best == self.n_classes:
            return f"K = {self.n_classes}"
        return f"K = {self.n_classes} (BIC: {best if best is not None else 'none'})"

    @property
    def labels(self) -> dict[Any, str]:
        """Legend text of each class: its number, MAP size and share, and ``pi``."""
        return {
            k: f"class {k}: n = {int(r['n'])} ({r['share']:.0%}), π = {r['pi']:.2f}"
            for k, r in self.sizes.iterrows()
        }


def is_latent(est: Any) -> bool:
    """Whether a fitted model is a latent-class mixed model."""
    from alsprog.models.latent._model import LatentClassMixedModel

    return isinstance(est, LatentClassMixedModel)


def latent_classes(
    ctx: RunContext,
    m: ModelConfig,
    est: Any,
    summary: Any,
    fit_data: pd.DataFrame,
) -> LatentClasses:
    """The class-number table, class curves and sizes of one fitted latent-class
    model; writes ``models/NAME_class_selection.csv`` and
    ``models/NAME_class_trajectories.csv``.

    The selection refits the model for ``K = 1 .. n_classes + 1`` with its own
    ``time``, ``mixture``, ``class_formula``, ``random_covariance``, ``link`` and
    ``n_init``, on the same rows,
    with the seed ``models.NAME.selection`` and the model's (else the run's)
    ``n_jobs``; the configured fit itself is not one of them (it keeps its own
    seed), and a note says when the two fits of the configured ``K`` differ.
    """
    cfg = ctx.config
    k_conf = int(est.n_classes)
    notes: list[str] = []
    selection = _select(ctx, m, est, fit_data, k_conf, notes)
    if selection is not None:
        notes.extend(_choice_notes(selection, est, k_conf))
        ctx.write(selection.table, f"models/{m.name}_class_selection.csv")
    curves = est.class_trajectories(level=cfg.report.level)
    ctx.write(curves, f"models/{m.name}_class_trajectories.csv")
    from alsprog.plots import observed_class_means

    cols = est.columns_
    observed = observed_class_means(
        fit_data, est.classes_, outcome=cols.outcome, time=cols.time, group=cols.subject
    )
    for n in notes:
        ctx.say(f"{m.name}: {n}")
    return LatentClasses(
        name=m.name,
        n_classes=k_conf,
        selection=selection,
        notes=tuple(notes),
        curves=curves,
        observed=observed,
        sizes=summary.tables["classes"],
        postprob=summary.tables["postprob"],
        time=cols.time,
    )


def _select(
    ctx: RunContext,
    m: ModelConfig,
    est: Any,
    fit_data: pd.DataFrame,
    k_conf: int,
    notes: list[str],
) -> Any:
    """select_n_classes over 1..K+1, else 1..K when K+1 cannot be fitted."""
    import time

    from alsprog.models import select_n_classes

    seed = ctx.seed(f"models.{m.name}.selection")
    n_jobs = m.params.get("n_jobs", ctx.config.run.n_jobs)
    ctx.say(f"choosing the number of classes of {m.name}: K = 1..{k_conf + 1}")
    last: ModelSpecificationError | None = None
    for top in (k_conf + 1, k_conf):
        t0 = time.perf_counter()
        try:
            sel = select_n_classes(
                fit_data,
                est.formula,
                range(1, top + 1),
                time=est.time,
                mixture=est.mixture,
                class_formula=est.class_formula,
                random_covariance=est.random_covariance,
                link=est.link,
                n_init=est.n_init,
                seed=seed,
                n_jobs=n_jobs,
                progress=ctx.progress,
            )
        except ModelSpecificationError as exc:
            last = exc
            continue
        ctx.say(
            f"{m.name}: {len(sel.table)} class numbers fitted in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        if top == k_conf:
            notes.append(f"the class-number table stops at K = {top}: {last}")
        return sel
    notes.append(f"no class-number table: {last}")
    return None


def _choice_notes(selection: Any, est: Any, k_conf: int) -> list[str]:
    """The selection's note, then how the configured K compares with its choice."""
    tab = selection.table
    out = [selection.note] if selection.note else []
    best = selection.best
    top = int(tab["n_classes"].max())
    if best is not None and best != k_conf:
        out.append(
            f"the configured model has K = {k_conf} classes, but BIC (among the K "
            f"with every class at least {selection.min_share:.0%} of the patients) "
            f"chooses K = {best}"
        )
    if best is not None and best == top and top > 1:
        out.append(
            f"BIC is lowest at K = {top}, the largest number of classes tried; "
            "more classes may fit better still"
        )
    if k_conf in tab.index:
        sel_llf = float(tab.loc[k_conf, "llf"])
        if abs(sel_llf - float(est.llf_)) > SAME_LLF:
            out.append(
                f"the configured fit reached log-likelihood {est.llf_:.3f} and the "
                f"class-number table's fit of K = {k_conf} (other random starts) "
                f"{sel_llf:.3f}: at least one is a local optimum; raise n_init"
            )
    return out


# ------------------------------------------------------------------- figures
def _classes(ctx: RunContext) -> Mapping[str, LatentClasses]:
    from alsprog.report.sections.models import Models

    return ctx.result("models", Models).classes


def fig_class_trajectories(ctx: RunContext) -> FigureOut | None:
    """Each latent-class model's class curves, bands, observed means and sizes."""
    from alsprog.plots import class_trajectories

    lcs = list(_classes(ctx).values())
    if not lcs:
        return None
    cfg = ctx.config
    nrows, ncols = grid(len(lcs), 2)
    fig, axes = new_figure(6.0 * ncols, 4.2 * nrows, nrows, ncols)
    for ax, lc in zip(axes.ravel(), lcs, strict=False):
        class_trajectories(
            lc.curves,
            time=lc.time,
            outcome=cfg.data.outcome,
            labels=lc.labels,
            observed=lc.observed,
            ax=ax,
        )
        ax.set_title(f"{lc.name} (K = {lc.n_classes})")
    for ax in axes.ravel()[len(lcs) :]:
        ax.set_visible(False)
    return FigureOut(
        "class_trajectories",
        "models",
        "Latent class trajectories",
        f"Each class's mean curve with its {cfg.report.level:.0%} band (Wald, over "
        "the fitted patients' covariates); open circles: observed mean of the "
        "patients whose most probable class it is, visits grouped by the median gap "
        "between visits (groups of at least 3 visits). The legend gives each class's patients by most probable class "
        "(n, share) and its estimated probability π.",
        png(fig),
    )


def fig_class_selection(ctx: RunContext) -> FigureOut | None:
    """BIC, SABIC and ICL against the number of classes, per latent-class model."""
    lcs = [lc for lc in _classes(ctx).values() if lc.selection is not None]
    if not lcs:
        return None
    nrows, ncols = grid(len(lcs), 2)
    fig, axes = new_figure(5.5 * ncols, 3.8 * nrows, nrows, ncols)
    for ax, lc in zip(axes.ravel(), lcs, strict=False):
        lc.selection.plot(ax=ax)
        ax.set_title(lc.name)
    for ax in axes.ravel()[len(lcs) :]:
        ax.set_visible(False)
    return FigureOut(
        "class_selection",
        "models",
        "Number of latent classes",
        "BIC, SABIC and ICL of each number of classes K (lower is better); the "
        "circled K is the lowest BIC among those whose smallest class holds at least "
        "the minimum share of the patients (crosses: K with a smaller class).",
        png(fig),
    )


# -------------------------------------------------------------------- report
def latent_html(lcs: Mapping[str, LatentClasses], figures: Figures) -> list[str]:
    """The report's fragments about the latent-class models (empty without one)."""
    if not lcs:
        return []
    p = ["<h3>Latent progression classes</h3>"]
    p.append(
        "<p>For each latent-class model, the model refitted with K = 1, 2, … classes "
        "(same formula, starts and settings): log-likelihood, parameters, AIC, BIC, "
        "SABIC, relative entropy (1: every patient certainly in one class), ICL "
        "(BIC plus twice the classification entropy), the smallest class's share "
        "of patients (by most probable class), and how many starts reached the best "
        "log-likelihood. BIC chooses K among those whose smallest class is not "
        "under the minimum share.</p>"
    )
    for lc in lcs.values():
        p.append(f"<h4>{esc(lc.name)}</h4>")
        sel = lc.selection
        if sel is not None:
            choice = (
                f"BIC chooses K = {sel.best}" if sel.best is not None else "no K chosen"
            )
            same = (
                "the configured K"
                if sel.best == lc.n_classes
                else f"configured K = {lc.n_classes}"
            )
            p.append(f"<p><b>{esc(choice)}</b> ({esc(same)}).</p>")
            tab = sel.table.drop(columns=["n_classes"]).copy()
            p.append(table_html(tab, index=True))
        for n in lc.notes:
            p.append(f'<p class="note">{esc(n)}</p>')
        p.append(
            table_html(
                lc.sizes,
                index=True,
                caption="Class sizes: estimated probability π, patients by most "
                "probable class (n, share)",
            )
        )
        p.append(
            table_html(
                lc.postprob,
                index=True,
                caption="Posterior classification: mean probability of each class "
                "among the patients assigned to a class (diagonal near 1: well "
                "separated classes)",
            )
        )
    p.append(figures.html("class_selection"))
    p.append(figures.html("class_trajectories"))
    return p
