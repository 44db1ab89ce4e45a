"""The report's figures, drawn from a run's results and saved as PNG.

Owns: choosing what to draw (which patients, which features), laying out panels and
writing ``figures/<name>.png`` (named by content, e.g. ``power_curve.png``, so a name
never depends on which other figures a run drew).  Figures are built on
``matplotlib.figure.Figure`` directly, so a run never changes the caller's pyplot
state or backend.
Leaves: every drawing to :mod:`alsprog.plots`; every number to the run's tables and
fitted models.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from alsprog.report._stages import State

__all__ = ["FigureOut", "make_figures"]

DPI = 110


@dataclass(frozen=True)
class FigureOut:
    """One figure: its file name, section, caption and PNG bytes."""

    name: str
    section: str
    title: str
    caption: str
    png: bytes


def _new(
    width: float, height: float, nrows: int = 1, ncols: int = 1
) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _pick_patients(s: State, n: int) -> list[str]:
    """Patients for the per-patient panels: several visits, onset sites mixed."""
    d = s.fit_data
    assert d is not None
    counts = d.groupby("subject_id").size()
    pool = counts.index[counts >= 3] if (counts >= 3).sum() >= n else counts.index
    rng = np.random.default_rng(s.seed("report.patients"))
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


def _fig_spaghetti(s: State) -> FigureOut | None:
    from alsprog.plots import spaghetti

    cfg = s.config
    assert s.patients is not None
    by = "onset_site" if "onset_site" in s.patients.columns else None
    fig, ax = _new(8, 4.6)
    spaghetti(
        s.patients, outcome=cfg.data.outcome, time=cfg.data.time, by=by, ax=ax[0, 0]
    )
    ax[0, 0].set_title(f"Observed {cfg.data.outcome} of every patient")
    n = s.patients["subject_id"].nunique()
    return FigureOut(
        "cohort_spaghetti",
        "cohort",
        "Trajectories by onset site",
        f"{cfg.data.outcome} of each of the {n} patients over {cfg.data.time}"
        + (", coloured by onset site." if by else "."),
        _png(fig),
    )


def _fig_comparison(s: State) -> FigureOut | None:
    from alsprog.plots import model_comparison

    comp = s.comparison
    if (
        comp is None
        or "elpd_loo" not in comp.columns
        or comp["elpd_loo"].notna().sum() == 0
    ):
        return None
    k = int(comp["elpd_loo"].notna().sum())
    fig, ax = _new(7, 1.3 + 0.55 * k)
    model_comparison(comp, ax=ax[0, 0])
    return FigureOut(
        "model_comparison",
        "models",
        "Model comparison (PSIS-LOO)",
        "Expected log predictive density of each Bayesian model, leaving out one visit "
        "at a time (PSIS-LOO), with one standard error.",
        _png(fig),
    )


def _fig_trajectories(s: State) -> FigureOut | None:
    from alsprog.plots import subject_trajectories

    if not s.models:
        return None
    cfg = s.config
    ids = _pick_patients(s, cfg.report.n_subjects)
    assert s.fit_data is not None
    nrows, ncols = _grid(len(ids))
    fig, axes = _new(3.2 * ncols, 2.8 * nrows + 0.5, nrows, ncols)
    for ax, sid in zip(axes.ravel(), ids, strict=False):
        # one band type for every model (the band of the patient's mean curve:
        # confidence for the mixed and joint models, credible for the Bayesian ones)
        subject_trajectories(
            s.models,
            s.fit_data,
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
        _png(fig),
    )


def _fig_fan_charts(s: State) -> FigureOut | None:
    import alsprog.plots as plots

    fan = getattr(plots, "fan_chart", None)
    if fan is None or s.forecasts is None or not s.holdout:
        return None
    cfg = s.config
    assert s.patients is not None
    models = list(dict.fromkeys(s.forecasts["model"]))[:3]
    ids = s.holdout[: cfg.report.n_subjects]
    fig, axes = _new(3.2 * len(ids), 2.8 * len(models) + 0.3, len(models), len(ids))
    for r, name in enumerate(models):
        f = s.forecasts.loc[s.forecasts["model"] == name]
        for c, sid in enumerate(ids):
            ax = axes[r, c]
            rows = s.patients.loc[s.patients["subject_id"] == sid]
            hist = s.forecast_history
            assert hist is not None
            later = rows.loc[~rows.index.isin(hist.index)]
            fan(hist, f, sid, actual=later, outcome=cfg.data.outcome, ax=ax)
            ax.set_title(f"{sid}: {name}", fontsize="medium")
    return FigureOut(
        "forecast_fan_charts",
        "forecast",
        "Forecast fan charts",
        f"Forecasts of {len(ids)} patients held out of every fit, from their first "
        f"{cfg.forecast.history_months:g} months of visits ({cfg.forecast.level:.0%} "
        "prediction interval); their later visits are shown for comparison.",
        _png(fig),
    )


def _fig_calibration(s: State) -> FigureOut | None:
    import alsprog.plots as plots

    cal = getattr(plots, "calibration_curve", None)
    if cal is None or s.calibration is None:
        return None
    fig, ax = _new(5.5, 4.5)
    cal(s.calibration, ax=ax[0, 0])
    return FigureOut(
        "forecast_calibration",
        "forecast",
        "Forecast calibration",
        "Empirical coverage of the backtest's central prediction intervals against "
        "their nominal level (the diagonal is perfect calibration).",
        _png(fig),
    )


def _fig_power(s: State) -> FigureOut | None:
    from alsprog.plots import power_curve

    if s.power_curve is None:
        return None
    fig, ax = _new(7, 4.5)
    power_curve(s.power_curve, ax=ax[0, 0])
    dc = s.config.design
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
        _png(fig),
    )


def _top_features(s: State, n: int) -> list[str]:
    feats = list(s.features)
    r = s.change_rates
    if r is not None and "srm" in r.columns:
        order = r.assign(a=r["srm"].abs()).sort_values("a", ascending=False)
        ranked = [f for f in order["feature"] if f in feats]
        feats = ranked + [f for f in feats if f not in ranked]
    return feats[:n]


def _fig_features(s: State) -> FigureOut | None:
    from alsprog.plots import feature_trajectories

    if not s.features or s.table is None or "group" not in s.table.columns:
        return None
    feats = _top_features(s, s.config.report.n_features)
    nrows, ncols = _grid(len(feats), 2)
    fig, axes = _new(4.6 * ncols, 3.2 * nrows, nrows, ncols)
    for ax, f in zip(axes.ravel(), feats, strict=False):
        feature_trajectories(
            s.table, f, time=s.config.data.time, rates=s.change_rates, ax=ax
        )
    for ax in axes.ravel()[len(feats) :]:
        ax.set_visible(False)
    how = (
        " (those with the largest standardised response to ALS progression)"
        if s.change_rates is not None
        else ""
    )
    return FigureOut(
        "imaging_feature_trajectories",
        "biomarkers",
        "Imaging features over time by group",
        f"{len(feats)} imaging features{how}, one line per subject; the legend gives "
        "each group's fitted yearly change.",
        _png(fig),
    )


def _fig_roc(s: State) -> FigureOut | None:
    from alsprog.plots import roc_curves

    if s.classifier is None:
        return None
    fig, ax = _new(5.5, 5)
    roc_curves(s.classifier, ax=ax[0, 0])
    return FigureOut(
        "classifier_roc",
        "biomarkers",
        "ALS vs control classifier: ROC",
        f"Held-out ROC curve of each cross-validation fold ({s.classifier.cv} "
        "split) and their mean.",
        _png(fig),
    )


_MAKERS: tuple[Callable[[State], FigureOut | None], ...] = (
    _fig_spaghetti,
    _fig_comparison,
    _fig_trajectories,
    _fig_fan_charts,
    _fig_calibration,
    _fig_power,
    _fig_features,
    _fig_roc,
)


def make_figures(s: State) -> list[FigureOut]:
    """Draw every figure the run's results allow; write them to ``figures/``."""
    from alsprog._io import atomic_path

    out = []
    folder = s.out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    for make in _MAKERS:
        t0 = time.perf_counter()
        fig = make(s)
        if fig is None:
            continue
        s.say(f"{fig.name} ({time.perf_counter() - t0:.1f} s)")
        out.append(fig)
        with atomic_path(folder / f"{fig.name}.png") as tmp:  # named by content
            tmp.write_bytes(fig.png)
    return out


def figure_files(figs: list[FigureOut]) -> list[str]:
    """The file names :func:`make_figures` gave the figures, in order."""
    return [f"figures/{f.name}.png" for f in figs]
