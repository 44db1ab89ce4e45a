"""The design section's comparison of trial endpoints at one treatment effect.

Owns: :func:`compare_endpoints` (for the first slowing of ``[design]``, each hazard
ratio of ``hazard_ratios`` and each source of ``sources``: patients per arm for the
target power of each endpoint of ``endpoints``, found by simulating whole trials,
with the type I error of each endpoint under no effect, into ``endpoints.csv``; the
fitted power curves into ``endpoint_power.csv``), its figure and its HTML.
Leaves: the simulations to :func:`alsprog.design.simulated_sample_size`; the
design itself to :mod:`alsprog.report.sections.design`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from alsprog.report._figures import FigureOut, new_figure, png
from alsprog.report.sections._base import RunContext

__all__ = ["compare_endpoints", "endpoints_html", "fig_endpoint_power"]

#: Largest patients per arm simulated in the comparison.
MAX_N = 3000
_LABELS = {
    "slope": "ALSFRS-R slope (mixed model)",
    "mmrm": "ALSFRS-R change at the last visit (MMRM)",
    "cafs": "CAFS (function and survival, ranks)",
    "joint_rank": "joint rank (survival, then own slope)",
    "win_ratio": "win ratio (survival, then ALSFRS-R change)",
    "survival": "death or tracheostomy (log-rank)",
}


def _sources(ctx: RunContext, d: Any) -> dict[str, Any]:
    """``course`` (the simulator) and/or ``cohort`` (the run's own patients)."""
    from alsprog.design import HistoricalCohort
    from alsprog.errors import DataValidationError, ModelSpecificationError

    out: dict[str, Any] = {}
    for name in ctx.config.design.sources:
        if name == "course":
            out[name] = "course"
            continue
        from alsprog.report.sections.cohort import Cohort

        patients = ctx.result("cohort", Cohort).patients
        cfg = ctx.config
        try:
            h = HistoricalCohort.from_table(
                patients,
                visit_months=d.visit_months,
                outcome=cfg.data.outcome,
                months=cfg.data.time,
                source="the run's patients",
            )
        except (DataValidationError, ModelSpecificationError) as exc:  # reported
            ctx.note(
                "design", f"endpoint comparison: the run's patients left out: {exc}"
            )
            continue
        if not h.has_survival:
            ctx.note(
                "design",
                "endpoint comparison: the run's patients have no survival columns; "
                "only the simulator is used",
            )
            continue
        out[name] = h
    return out


def compare_endpoints(ctx: RunContext, d: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The endpoint table and the fitted power curves (both empty when disabled)."""
    from alsprog.design import simulated_sample_size

    dc = ctx.config.design
    if dc.endpoint_sims == 0 or not dc.endpoints:
        return pd.DataFrame(), pd.DataFrame()
    slowing = float(dc.slowing[0])
    design = replace(d, slowing=slowing, retention=None)
    rows, curves = [], []
    z_a = stats.norm.ppf(1 - design.alpha / 2)
    for src_name, source in _sources(ctx, design).items():
        null: dict[str, tuple[Any, Any]] = {}
        for hr in dc.hazard_ratios:
            for ep in dc.endpoints:
                ctx.say(
                    f"endpoint {ep}: {slowing:.0%} slowing, hazard ratio {hr:g}, "
                    f"{src_name}: {dc.endpoint_sims} trials at each size"
                )
                r = simulated_sample_size(
                    design,
                    endpoint=ep,
                    source=source,
                    hazard_ratio=hr,
                    n_sims=dc.endpoint_sims,
                    n_max=MAX_N,
                    type_one_error=ep not in null,
                    seed=ctx.seed(f"design.endpoints.{src_name}.{ep}.{hr:g}"),
                    n_jobs=ctx.config.run.n_jobs,
                    progress=ctx.progress,
                )
                if ep not in null:  # the null has no effect: one per endpoint
                    null[ep] = (r.type_one_error, r.type_one_error_se)
                rows.append(
                    {
                        "source": src_name,
                        "endpoint": ep,
                        "slowing": slowing,
                        "hazard_ratio": hr,
                        "n_per_arm": r.n_per_arm,
                        "ci_low": r.ci[0],
                        "ci_high": r.ci[1],
                        "type_one_error": null[ep][0],
                        "type_one_error_se": null[ep][1],
                    }
                )
                top = MAX_N if r.n_per_arm is None else max(2 * r.n_per_arm, 20)
                grid = np.unique(np.linspace(2, top, 40).round())
                curves.append(
                    pd.DataFrame(
                        {
                            "source": src_name,
                            "endpoint": ep,
                            "hazard_ratio": hr,
                            "n_per_arm": grid,
                            "power": stats.norm.cdf(r.slope * np.sqrt(grid) - z_a),
                        }
                    )
                )
    table = pd.DataFrame(rows)
    curve = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    if len(table):
        table = table.astype({"n_per_arm": "Int64"})
    return table, curve


def fig_endpoint_power(ctx: RunContext) -> FigureOut | None:
    """Fitted power against patients per arm for each endpoint."""
    from alsprog.report.sections.design import Design

    res = ctx.result("design", Design)
    curve = res.endpoint_curves
    if curve is None or not len(curve):
        return None
    hrs = list(dict.fromkeys(curve["hazard_ratio"]))
    src = curve["source"].iloc[0]
    fig, ax = new_figure(4.2 * len(hrs), 4.2, ncols=len(hrs))
    for k, hr in enumerate(hrs):
        a = ax[0, k]
        part = curve[(curve["hazard_ratio"] == hr) & (curve["source"] == src)]
        for ep, g in part.groupby("endpoint", sort=False):
            a.plot(g["n_per_arm"], g["power"], label=_LABELS.get(str(ep), str(ep)))
        a.axhline(ctx.config.design.power, color="k", lw=0.8, ls=":")
        a.set_xlabel("patients per arm")
        a.set_ylabel("power")
        a.set_ylim(0, 1)
        a.set_title(f"hazard ratio {hr:g}")
    ax[0, 0].legend(fontsize=7, loc="lower right")
    slow = ctx.config.design.slowing[0]
    return FigureOut(
        "endpoint_power",
        "design",
        "Power by endpoint",
        f"Power of each endpoint against patients per arm for a {slow:.0%} slowing of "
        f"progression ({src}), fitted to {ctx.config.design.endpoint_sims} simulated "
        "trials at each of several sizes; one panel per hazard ratio of death.",
        png(fig),
    )


def endpoints_html(table: pd.DataFrame | None, ctx: RunContext) -> list[str]:
    """The comparison's paragraph and table."""
    from alsprog.report._html import table_html

    if table is None or not len(table):
        return []
    dc = ctx.config.design
    shown = table.assign(
        endpoint=table["endpoint"].map(lambda e: _LABELS.get(e, e)),
        n_per_arm=table["n_per_arm"].map(
            lambda v: f"> {MAX_N}" if pd.isna(v) else str(int(v))
        ),
        interval=[
            f"{lo:.0f}-{hi:.0f}" if np.isfinite(hi) and hi < 1e6 else "-"
            for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)
        ],
    )[
        [
            "source",
            "endpoint",
            "hazard_ratio",
            "n_per_arm",
            "interval",
            "type_one_error",
            "type_one_error_se",
        ]
    ]
    return [
        f"<p>Endpoints compared at the same treatment effect: progression slowed by "
        f"{dc.slowing[0]:.0%} from randomisation, and the death hazard multiplied by "
        "each hazard ratio. Each endpoint's patients per arm for "
        f"{dc.power:.0%} power (two-sided alpha {dc.alpha:g}) come from "
        f"{dc.endpoint_sims} simulated trials at each of several sizes, analysed as "
        "planned (<code>course</code>: alsprog's nonlinear ALS course with deaths and "
        "informative dropout; <code>cohort</code>: this run's patients resampled "
        "with their own visits and survival). <code>type_one_error</code> is the "
        "rejection rate of the same trials with no effect (nominal "
        f"{dc.alpha:g} ± its Monte Carlo SE).</p>",
        table_html(shown),
    ]
