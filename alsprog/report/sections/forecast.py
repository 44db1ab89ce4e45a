"""The forecast section: held-out patients' forecasts and the backtest.

Owns: :func:`stage_forecast` (each fitted model's forecast of the patients held out
of every fit, from their first months of visits, into ``forecasts.csv``; the
backtest of the models, their recalibrated versions and the baselines into
``backtest.csv`` and ``forecast_calibration.csv``), :class:`Forecasts` (its frozen
result), the fan-chart and calibration figures and the report's "Forecasts".
Leaves: forecasting and scoring to :mod:`alsprog.forecast`; the models' estimators
to :func:`alsprog.report.sections.models.build_model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alsprog.errors import (
    AlsprogError,
    DataValidationError,
    ModelSpecificationError,
    NotFittedError,
)
from alsprog.models._contract import on_alsfrs_r_scale
from alsprog.report._figures import FigureOut, new_figure, png
from alsprog.report._html import Figures, notes_html, table_html
from alsprog.report.sections._base import RunContext, Section
from alsprog.report.sections.cohort import Cohort
from alsprog.report.sections.models import Models, build_model

__all__ = ["ForecastSection", "Forecasts", "stage_forecast"]

#: Columns of the backtest table the report shows, in order.
BACKTEST_COLUMNS = (
    "model",
    "horizon",
    "n",
    "rmse",
    "mae",
    "bias",
    "coverage",
    "width",
    "crps",
    "slope_rmsd",
    "seconds",
)


@dataclass(frozen=True)
class Forecasts:
    """Forecasts of the held-out patients (and their history), the backtest and
    its calibration; each None when not made."""

    forecasts: pd.DataFrame | None = None
    history: pd.DataFrame | None = None
    backtest: pd.DataFrame | None = None
    calibration: pd.DataFrame | None = None


def _baseline(name: str, history_months: float, seed: int, outcome: str) -> Any:
    from alsprog.forecast import DeltaFSBaseline, PatientOLSBaseline, RandomForestSlope

    if name == "delta_fs":
        return DeltaFSBaseline(history_months=history_months, outcome=outcome)
    if name == "patient_ols":
        return PatientOLSBaseline(history_months=history_months, outcome=outcome)
    return RandomForestSlope(
        history_months=history_months, random_state=seed, outcome=outcome
    )


def stage_forecast(ctx: RunContext) -> Forecasts:
    """Forecasts of the held-out patients and the backtest of models and baselines."""
    fc = ctx.config.forecast
    if not fc.enabled:
        ctx.note("forecast", "disabled in the config")
        return Forecasts()
    cohort = ctx.result("cohort", Cohort)
    fitted = ctx.result("models", Models).models
    forecasts = history = None
    if cohort.holdout and fitted:
        forecasts, history = _holdout_forecasts(ctx, cohort, fitted)
    models = _backtest_models(ctx, cohort.patients)
    backtest, calibration = _backtest(ctx, cohort.patients, models)
    return Forecasts(forecasts, history, backtest, calibration)


def _holdout_forecasts(
    ctx: RunContext, cohort: Cohort, fitted: Any
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Each fitted model's forecast of the held-out patients, and their history."""
    from alsprog.forecast import forecast

    fc = ctx.config.forecast
    pat = cohort.patients
    rows = pat.loc[pat["subject_id"].isin(cohort.holdout)]
    history = rows.loc[rows["months"] <= fc.history_months + 0.5]
    last = float(history["months"].max())
    end = max(max(fc.horizons), float(rows["months"].max()))
    grid = sorted({*np.arange(np.ceil(last), end + 1e-9, 1.0), *fc.horizons})
    grid = [g for g in grid if g >= last]
    parts = []
    for name, est in fitted.items():
        if not _on_run_time(ctx, name, est):
            continue
        ctx.say(f"forecasting {len(cohort.holdout)} held-out patients with {name}")
        f = forecast(
            est,
            history,
            [float(g) for g in grid],
            level=fc.level,
            seed=ctx.seed(f"forecast.{name}"),
        )
        parts.append(f.assign(model=name))
    if not parts:
        return None, None
    fcs = pd.concat(parts, ignore_index=True)
    keep = ["model", "subject_id", "months", "mean", "median", "lower", "upper"]
    forecasts = fcs[[c for c in keep if c in fcs.columns]]
    ctx.write(forecasts, "forecasts.csv")
    return forecasts, history


def _on_run_time(ctx: RunContext, name: str, est: Any, *, say: bool = True) -> bool:
    """Whether ``est`` forecasts on the run's visit time (``months``, which the
    held-out split and the backtest use); a model that cannot (an MMRM forecasts at
    its scheduled visits only) is left out, and the report says why (once)."""
    try:
        est.check_forecast_time("months")
    except NotFittedError:  # the check needs a fit; the backtest will tell
        return True
    except ModelSpecificationError as exc:
        if say:
            ctx.note("forecast", f"{name} is left out of the forecasts: {exc}")
        return False
    return True


def _backtest_models(ctx: RunContext, patients: pd.DataFrame) -> dict[str, Any]:
    """The backtest's estimators: the models, recalibrated ones, the baselines."""
    cfg, fc = ctx.config, ctx.config.forecast
    names = list(fc.models) if fc.models is not None else [m.name for m in cfg.models]
    models = {n: build_model(ctx, cfg.model(n)) for n in names}
    models = {n: m for n, m in models.items() if _on_run_time(ctx, n, m, say=False)}
    names = list(models)
    if fc.recalibrate != "none":
        from alsprog.forecast import CalibratedForecaster

        probe = CalibratedForecaster(None, history_months=fc.history_months)
        later = patients["months"] > fc.history_months + probe.tol_months
        n_later = int(later.sum() * (1 - fc.test_fraction))
        if n_later < 2 * probe.min_per_bin:
            ctx.note(
                "forecast",
                f"no recalibrated models: about {n_later} training visits after "
                f"month {fc.history_months:g}, {2 * probe.min_per_bin} needed",
            )
        else:
            for n in names:
                models[f"{n}_recalibrated"] = CalibratedForecaster(
                    models[n],
                    history_months=fc.history_months,
                    shift=fc.recalibrate == "shift",
                )
    for b in fc.baselines:
        if b == "delta_fs" and not on_alsfrs_r_scale(cfg.data.outcome):
            ctx.note(
                "forecast",
                f"baseline delta_fs left out: ΔFS extrapolates ALSFRS-R points, not "
                f"{cfg.data.outcome}",
            )
            continue
        models[b] = _baseline(
            b, fc.history_months, ctx.seed(f"forecast.baseline.{b}"), cfg.data.outcome
        )
    return models


def _backtest(
    ctx: RunContext, patients: pd.DataFrame, models: dict[str, Any]
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The backtest table and its calibration (None where not made, and said)."""
    from alsprog.forecast import backtest, calibration

    cfg, fc = ctx.config, ctx.config.forecast
    ctx.say(
        f"backtest: {len(models)} models, {fc.test_fraction:.0%} of patients held out, "
        f"history {fc.history_months:g} months, horizons "
        f"{', '.join(f'{h:g}' for h in fc.horizons)}"
    )
    try:
        res, fcs = backtest(
            patients,
            models,
            history_months=fc.history_months,
            horizons=fc.horizons,
            test_fraction=fc.test_fraction,
            level=fc.level,
            return_forecasts=True,
            outcome=cfg.data.outcome,
            seed=ctx.seed("forecast.backtest"),
            progress=ctx.progress,
        )
    except (DataValidationError, ModelSpecificationError, ValueError) as exc:
        ctx.note("forecast", f"no backtest: {exc}")
        return None, None
    ctx.write(res, "backtest.csv")
    actual = fcs.attrs.get("actual")
    cal = None
    if actual is not None:
        try:
            cal = calibration(fcs, actual, outcome=cfg.data.outcome)
            ctx.write(cal, "forecast_calibration.csv")
        except (AlsprogError, ValueError) as exc:
            ctx.note("forecast", f"no calibration table: {exc}")
    return res, cal


# ------------------------------------------------------------------- figures
def fig_fan_charts(ctx: RunContext) -> FigureOut | None:
    """The held-out patients' forecasts by the first three models, with their
    later visits."""
    from alsprog.plots import fan_chart

    r = ctx.result("forecast", Forecasts)
    holdout = ctx.result("cohort", Cohort).holdout
    if r.forecasts is None or not holdout:
        return None
    cfg = ctx.config
    patients = ctx.result("cohort", Cohort).patients
    hist = r.history
    assert hist is not None
    models = list(dict.fromkeys(r.forecasts["model"]))[:3]
    ids = holdout[: cfg.report.n_subjects]
    fig, axes = new_figure(
        3.2 * len(ids), 2.8 * len(models) + 0.3, len(models), len(ids)
    )
    for row, name in enumerate(models):
        f = r.forecasts.loc[r.forecasts["model"] == name]
        for c, sid in enumerate(ids):
            ax = axes[row, c]
            rows = patients.loc[patients["subject_id"] == sid]
            later = rows.loc[~rows.index.isin(hist.index)]
            fan_chart(hist, f, sid, actual=later, outcome=cfg.data.outcome, ax=ax)
            ax.set_title(f"{sid}: {name}", fontsize="medium")
    return FigureOut(
        "forecast_fan_charts",
        "forecast",
        "Forecast fan charts",
        f"Forecasts of {len(ids)} patients held out of every fit, from their first "
        f"{cfg.forecast.history_months:g} months of visits ({cfg.forecast.level:.0%} "
        "prediction interval); their later visits are shown for comparison.",
        png(fig),
    )


def fig_calibration(ctx: RunContext) -> FigureOut | None:
    """Empirical against nominal coverage of the backtest's intervals."""
    from alsprog.plots import calibration_curve

    cal = ctx.result("forecast", Forecasts).calibration
    if cal is None:
        return None
    fig, ax = new_figure(5.5, 4.5)
    calibration_curve(cal, ax=ax[0, 0])
    return FigureOut(
        "forecast_calibration",
        "forecast",
        "Forecast calibration",
        "Empirical coverage of the backtest's central prediction intervals against "
        "their nominal level (the diagonal is perfect calibration).",
        png(fig),
    )


_RECALIBRATED = {
    "none": "",
    "band": " Models named <code>*_recalibrated</code> have their intervals "
    "learnt from the training patients' own later visits (the model's centre "
    "kept).",
    "shift": " Models named <code>*_recalibrated</code> have their centre and "
    "intervals learnt from the training patients' own later visits.",
}


class ForecastSection(Section):
    """Stage ``forecast``; the report's "Forecasts"."""

    name = "forecast"
    title = "Forecasts"
    kpi_order = 50
    figures = (fig_fan_charts, fig_calibration)

    def intro(self, ctx: RunContext) -> str:
        return "forecasts and backtest"

    def compute(self, ctx: RunContext) -> Forecasts:
        return stage_forecast(ctx)

    def render(
        self, ctx: RunContext, result: Forecasts | None, figures: Figures
    ) -> list[str]:
        p = [notes_html(ctx.notes.get("forecast", []))]
        bt = result.backtest if result is not None else None
        if bt is not None:
            fc = ctx.config.forecast
            p.append(
                f"<p>Backtest: {fc.test_fraction:.0%} of the patients are held out, "
                "every model is refitted on the others, and each held-out patient is "
                f"forecast from the first {fc.history_months:g} months of visits. "
                "Errors in ALSFRS-R points at each horizon; <code>coverage</code> of "
                f"the {fc.level:.0%} interval; <code>crps</code> scores the whole "
                "predictive distribution (lower is better); <code>slope_rmsd</code> "
                "is the DREAM challenge's error of the ALSFRS-R slope from month "
                f"{fc.history_months:g} on, each predicted slope running through the "
                f"history's known values.{_RECALIBRATED[fc.recalibrate]}</p>"
            )
            p.append(table_html(bt[[c for c in BACKTEST_COLUMNS if c in bt.columns]]))
        p.append(figures.html("forecast_fan_charts"))
        p.append(figures.html("forecast_calibration"))
        return p

    def kpis(self, ctx: RunContext, result: Forecasts | None) -> list[tuple[str, str]]:
        bt = result.backtest if result is not None else None
        if bt is None or not len(bt):
            return []
        b = bt.dropna(subset=["rmse"]) if "rmse" in bt else bt
        if not len(b):
            return []
        h = b["horizon"].max()
        row = b.loc[b["horizon"] == h].sort_values("rmse").iloc[0]
        return [
            (f"best {h:g}-month forecast RMSE", f"{row['rmse']:.2f} ({row['model']})")
        ]
