"""The design section: a trial's sample size and power from the cohort's variance.

Owns: :func:`stage_design` (the variance components of a mixed model, the patients
per arm for each slowing, checked by simulation, and the power curves, into
``sample_size.csv``, ``trial_design.csv`` and ``power_curve.csv``), :class:`Design`
(its frozen result), the power-curve figure and the report's "Trial design".
Leaves: the formulas and simulations to :mod:`alsprog.design`; the comparison of
endpoints (``endpoints.csv``) to :mod:`alsprog.report.sections._endpoints`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from alsprog.report._check import model_time
from alsprog.report._figures import FigureOut, new_figure, png
from alsprog.report._html import Figures, facts_html, fmt_number, notes_html, table_html
from alsprog.report.sections._base import RunContext, Section
from alsprog.report.sections._endpoints import (
    compare_endpoints,
    endpoints_html,
    fig_endpoint_power,
)
from alsprog.report.sections.cohort import Cohort
from alsprog.report.sections.models import Models

__all__ = ["Design", "DesignSection", "stage_design"]

#: Largest patients per arm for which the analytic size is checked by simulation.
MAX_SIMULATED_N = 2000


@dataclass(frozen=True)
class Design:
    """The trial design (a :class:`~alsprog.design.TrialDesign`), its sample-size
    table and power curves; each None when the stage is disabled."""

    design: Any = None
    sample_size: pd.DataFrame | None = None
    power_curve: pd.DataFrame | None = None
    endpoints: pd.DataFrame | None = None
    endpoint_curves: pd.DataFrame | None = None


def stage_design(ctx: RunContext) -> Design:
    """Variance components from a mixed model -> sample sizes and power curves."""
    from alsprog.design import TrialDesign

    cfg, dc = ctx.config, ctx.config.design
    if not dc.enabled:
        ctx.note("design", "disabled in the config")
        return Design()
    model, time_col, src = _variance_model(ctx)
    kw: dict[str, Any] = dict(alpha=dc.alpha, power=dc.power)
    if dc.retention is not None:
        kw["retention"] = dc.retention
    d = TrialDesign.from_model(
        model, dc.visit_months, slowing=dc.slowing[0], time=time_col, **kw
    )
    ctx.say(
        f"variance components from {src}: mean slope {d.mean_slope:.3g}/month, "
        f"slope SD {np.sqrt(d.sig2_slope):.3g}, residual SD {np.sqrt(d.sig2_e):.3g}"
    )
    if dc.n_sims:
        lost = (
            "no attrition (no `retention` in [design])"
            if d.retention is None
            else "retention "
            + ", ".join(f"{r:g}" for r in d.retention)
            + " (monotone, non-informative)"
        )
        ctx.note(
            "design",
            f"simulated trials lose patients as the formula assumes: {lost}; "
            "no extra dropout or death",
        )
    table, sizes = _sample_sizes(ctx, d)
    ctx.write(table, "sample_size.csv")
    design_row = pd.DataFrame([{k: _plain(v) for k, v in d.to_dict().items()}])
    ctx.write(design_row, "trial_design.csv")
    curve = _power_curve(d, table, sizes, cfg.design)
    ctx.write(curve, "power_curve.csv")
    endpoints, endpoint_curves = compare_endpoints(ctx, d)
    if len(endpoints):
        ctx.write(endpoints, "endpoints.csv")
        ctx.write(endpoint_curves, "endpoint_power.csv")
    return Design(
        design=d,
        sample_size=table,
        power_curve=curve,
        endpoints=endpoints if len(endpoints) else None,
        endpoint_curves=endpoint_curves if len(endpoint_curves) else None,
    )


def _variance_model(ctx: RunContext) -> tuple[Any, str, str]:
    """The fitted mixed model, its time column and how the report names it."""
    from alsprog.models import LinearMixedModel

    cfg, dc = ctx.config, ctx.config.design
    if dc.model is not None:
        model = ctx.result("models", Models).models[dc.model]
        return model, model_time(cfg, cfg.model(dc.model)), f"model {dc.model!r}"
    time_col = cfg.data.time
    formula = f"{cfg.data.outcome} ~ {time_col} + ({time_col} | subject_id)"
    fit_data = ctx.result("cohort", Cohort).fit_data
    return LinearMixedModel(formula, time=time_col).fit(fit_data), time_col, formula


def _sample_sizes(ctx: RunContext, d: Any) -> tuple[pd.DataFrame, dict[float, int]]:
    """The sample-size table, the first method's sizes checked by simulation; the
    patients per arm of each slowing."""
    from alsprog.design import simulate_power

    dc = ctx.config.design
    table = d.sample_size_table(dc.slowing, methods=dc.methods)
    sizes: dict[float, int] = {}
    sim_power = np.full(len(table), np.nan)
    sim_se = np.full(len(table), np.nan)
    first = table["method"] == dc.methods[0]
    for i in np.flatnonzero(first.to_numpy()):
        slow = float(table["slowing"].iloc[i])
        n = int(table["n_per_arm_ceil"].iloc[i])
        sizes[slow] = n
        if dc.n_sims == 0:
            continue
        if n > MAX_SIMULATED_N:
            ctx.note("design", f"{slow:.0%} slowing: n = {n} per arm, not simulated")
            continue
        ctx.say(f"simulating {dc.n_sims} trials of {n} per arm ({slow:.0%} slowing)")
        r = simulate_power(
            replace(d, slowing=slow),
            n,
            n_sims=dc.n_sims,
            seed=ctx.seed(f"design.simulate.{slow:g}"),
            n_jobs=ctx.config.run.n_jobs,
            progress=ctx.progress,
        )
        sim_power[i], sim_se[i] = r.power, r.se
    return table.assign(simulated_power=sim_power, simulated_se=sim_se), sizes


def _power_curve(
    d: Any, table: pd.DataFrame, sizes: dict[float, int], dc: Any
) -> pd.DataFrame:
    """Analytic power over a grid of sizes, with the simulated points."""
    top = max(sizes.values()) if sizes else 100
    top = min(top, 5 * MAX_SIMULATED_N)
    grid = np.unique(np.ceil(np.linspace(max(top / 20, 4), 1.5 * top, 20)))
    grid = np.unique(np.concatenate([grid, list(sizes.values())]))
    curve = d.power_curve(list(grid), slowing=dc.slowing, method=dc.methods[0])
    curve["simulated_power"] = np.nan
    curve["simulated_se"] = np.nan
    sim = table.loc[table["method"] == dc.methods[0]]
    for row in sim.itertuples(index=False):
        hit = (curve["slowing"] == row.slowing) & (
            curve["n_per_arm"] == row.n_per_arm_ceil
        )
        curve.loc[hit, "simulated_power"] = row.simulated_power
        curve.loc[hit, "simulated_se"] = row.simulated_se
    return curve


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return " ".join(f"{x:g}" for x in v)
    return v


def fig_power(ctx: RunContext) -> FigureOut | None:
    """Analytic power against patients per arm, with the simulated points."""
    from alsprog.plots import power_curve

    curve = ctx.result("design", Design).power_curve
    if curve is None:
        return None
    fig, ax = new_figure(7, 4.5)
    power_curve(curve, ax=ax[0, 0])
    dc = ctx.config.design
    ax[0, 0].axhline(dc.power, color="k", lw=0.8, ls=":")
    return FigureOut(
        "power_curve",
        "design",
        "Power curves",
        f"Analytic power ({dc.methods[0]}) against patients per arm for each slowing; "
        + (
            f"points: power of {dc.n_sims} simulated trials at the analytic sample "
            "size (± 2 SE), with the formula's retention."
            if dc.n_sims
            else "no simulation asked."
        ),
        png(fig),
    )


def _design_facts(d: Any) -> str:
    return facts_html(
        {
            "visits (months)": ", ".join(f"{v:g}" for v in d.visit_months),
            "control-arm mean slope (points/month)": d.mean_slope,
            "random-intercept SD": math.sqrt(d.sig2_int),
            "random-slope SD": math.sqrt(d.sig2_slope),
            "intercept-slope covariance": d.cov_int_slope,
            "residual SD": math.sqrt(d.sig2_e),
            "alpha (two-sided) / power": f"{d.alpha:g} / {d.power:g}",
            "retention at each visit": (
                "none (complete follow-up)"
                if d.retention is None
                else ", ".join(f"{r:g}" for r in d.retention)
            ),
        }
    )


class DesignSection(Section):
    """Stage ``design``; the report's "Trial design"."""

    name = "design"
    title = "Trial design"
    kpi_order = 30
    figures = (fig_power, fig_endpoint_power)

    def intro(self, ctx: RunContext) -> str:
        return "sample size and power"

    def compute(self, ctx: RunContext) -> Design:
        return stage_design(ctx)  # looked up when called (tests replace it)

    def render(
        self, ctx: RunContext, result: Design | None, figures: Figures
    ) -> list[str]:
        r = result or Design()
        p = [notes_html(ctx.notes.get("design", []))]
        if r.design is not None:
            p.append(_design_facts(r.design))
        if r.sample_size is not None:
            p.append(
                "<p>Patients per arm to detect each slowing of the mean ALSFRS-R slope "
                "with a random-intercept-and-slope mixed model; "
                "<code>simulated_power</code> is the power of simulated whole trials "
                "analysed exactly at that size, losing patients as the retention "
                "above says (the formula's attrition).</p>"
            )
            p.append(table_html(r.sample_size))
        p.append(figures.html("power_curve"))
        p.extend(endpoints_html(r.endpoints, ctx))
        p.append(figures.html("endpoint_power"))
        return p

    def kpis(self, ctx: RunContext, result: Design | None) -> list[tuple[str, str]]:
        ss = result.sample_size if result is not None else None
        if ss is None or not len(ss):
            return []
        r = ss.iloc[0]
        return [
            (
                f"patients per arm, {r['slowing']:.0%} slowing",
                fmt_number(r["n_per_arm_ceil"]),
            )
        ]
