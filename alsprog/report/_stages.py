"""The analysis stages of a run, each reading and extending one :class:`State`.

Owns: imaging extraction, assembly, model fitting (summaries, saved posteriors, LOO
comparison), forecasts and backtest, trial design and imaging biomarkers, each writing
its tables into the run's (temporary) output folder.
Leaves: the order, timing, logging and atomic output folder to
:mod:`alsprog.report._run`; figures to :mod:`alsprog.report._figures`; the statistics
to the library subpackages called here.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alsprog.errors import AlsprogError, DataValidationError, ModelSpecificationError
from alsprog.report._check import (
    check_columns_after_assembly,
    model_formula,
    model_time,
)
from alsprog.report._config import ConfigError, ModelConfig, RunConfig

__all__ = ["State", "stage_seed"]

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

#: Largest patients per arm for which the analytic size is checked by simulation.
MAX_SIMULATED_N = 2000


def stage_seed(base: int, label: str) -> int:
    """A seed for one step, fixed by the run seed and the step's name.

    Adding or removing a model does not change the seeds of the others.

    Examples
    --------
    >>> stage_seed(2026, "models.lmm") == stage_seed(2026, "models.lmm")
    True
    """
    ss = np.random.SeedSequence([int(base), zlib.crc32(label.encode())])
    return int(ss.generate_state(1)[0] >> 1)


@dataclass
class State:
    """Everything a run has computed so far (tables, fitted models, notes)."""

    config: RunConfig
    out: Path
    progress: bool | None = None
    say: Callable[[str], None] = lambda msg: None
    seeds: dict[str, int] = field(default_factory=dict)
    table: pd.DataFrame | None = None
    imaging_qc: pd.DataFrame | None = None
    patients: pd.DataFrame | None = None
    fit_data: pd.DataFrame | None = None
    holdout: list[str] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    summaries: dict[str, Any] = field(default_factory=dict)
    comparison: pd.DataFrame | None = None
    cohort: pd.DataFrame | None = None
    forecasts: pd.DataFrame | None = None
    forecast_history: pd.DataFrame | None = None
    backtest: pd.DataFrame | None = None
    calibration: pd.DataFrame | None = None
    design: Any = None
    sample_size: pd.DataFrame | None = None
    power_curve: pd.DataFrame | None = None
    features: list[str] = field(default_factory=list)
    classifier: Any = None
    change_rates: pd.DataFrame | None = None
    markers: pd.DataFrame | None = None
    notes: dict[str, list[str]] = field(default_factory=dict)

    def seed(self, label: str) -> int:
        """The seed of a step, recorded for the log."""
        s = stage_seed(self.config.run.seed, label)
        self.seeds[label] = s
        return s

    def note(self, stage: str, text: str) -> None:
        """Remember something the report should say about a stage."""
        self.notes.setdefault(stage, []).append(text)
        self.say(text)

    def write(self, df: pd.DataFrame, rel: str, *, index: bool = False) -> Path:
        """Write a result table (CSV) into the output folder."""
        from alsprog._io import atomic_path

        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=index)
        return path


# ------------------------------------------------------------------ imaging
def stage_imaging(s: State) -> None:
    """ROI features of the NIfTI maps (when ``[imaging]`` is given)."""
    from alsprog.data import write_table
    from alsprog.imaging import extract_roi_features

    im = s.config.imaging
    if im is None:
        src = s.config.data.imaging
        s.note(
            "imaging",
            f"features read from {src.name}" if src else "no imaging inputs",
        )
        return
    s.say(f"extracting ROI {', '.join(im.stats)} of the maps under {im.root.name}")
    res = extract_roi_features(
        im.root,
        im.atlas,
        im.labels,
        stats=im.stats,
        metrics=list(im.metrics) if im.metrics else None,
        metrics_by_region=list(im.metrics_by_region or ()) or None,
        n_jobs=s.config.run.n_jobs,
        progress=s.progress,
    )
    write_table(res.features, s.out / "imaging" / "features.csv")
    s.imaging_qc = res.qc
    s.write(res.qc, "imaging/qc.csv")
    n_img = res.qc["path"].nunique()
    s.note(
        "imaging",
        f"{len(res.features)} sessions x {res.features.shape[1] - 3} features from "
        f"{n_img} images",
    )
    s.table = res.features  # handed to stage_assemble


# ----------------------------------------------------------------- assemble
def stage_assemble(s: State, checked: pd.DataFrame | None) -> None:
    """The long table, its description, the patients the models see."""
    import warnings as _w

    from alsprog.biomarkers import imaging_feature_columns, select_features
    from alsprog.data import assemble, write_table
    from alsprog.report._cohort import describe_cohort

    cfg = s.config
    if cfg.imaging is not None:
        with _w.catch_warnings():
            _w.simplefilter("always")
            table = assemble(
                cfg.data.visits,
                cfg.data.subjects,
                s.table,
                window_days=cfg.data.window_days,
                rename=cfg.data.rename,
            )
    else:
        assert checked is not None
        table = checked
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
    constant = [f for f in feats if table[f].dropna().nunique() < 2]
    if constant:
        s.note(
            "assemble", f"left out constant imaging feature(s): {', '.join(constant)}"
        )
    s.features = [f for f in feats if f not in constant]
    s.table = table
    write_table(table, s.out / "table.parquet")
    write_table(table, s.out / "table.csv")
    s.cohort = describe_cohort(table, outcome=cfg.data.outcome)
    s.write(s.cohort, "cohort.csv", index=True)
    pat = table
    if "group" in pat.columns:
        pat = pat.loc[pat["group"].astype(str) == "als"]
    pat = pat.loc[pat[cfg.data.outcome].notna()].reset_index(drop=True)
    if pat.empty:
        raise ModelSpecificationError(
            f"no patient (group 'als') has a value of {cfg.data.outcome!r}; nothing "
            "to model."
        )
    s.patients = pat
    s.holdout = _choose_holdout(s, pat)
    s.fit_data = pat.loc[~pat["subject_id"].isin(s.holdout)].reset_index(drop=True)
    n_sub = pat["subject_id"].nunique()
    msg = (
        f"{len(table)} rows, {table['subject_id'].nunique()} subjects; "
        f"{n_sub} patients with {cfg.data.outcome}"
    )
    if s.holdout:
        msg += f" ({len(s.holdout)} held out of the fits for the forecast charts)"
    s.note("assemble", msg)


def _choose_holdout(s: State, pat: pd.DataFrame) -> list[str]:
    fc = s.config.forecast
    if not fc.enabled or fc.n_patients == 0 or not s.config.models:
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
    rng = np.random.default_rng(s.seed("forecast.holdout"))
    return sorted(
        str(x) for x in rng.choice(np.asarray(ids, dtype=object), n, replace=False)
    )


# -------------------------------------------------------------------- models
def build_model(s: State, m: ModelConfig) -> Any:
    """An unfitted estimator for a model's config."""
    cfg = s.config
    formula = model_formula(cfg, m)
    if m.type == "mixed":
        from alsprog.models import LinearMixedModel

        return LinearMixedModel(formula, reml=m.reml, time=model_time(cfg, m))
    if m.type == "joint":
        from alsprog.models import JointModel

        return JointModel(
            formula,
            event_formula=m.event_formula,
            event_time=m.event_time,
            event=m.event,
            n_intervals=m.n_intervals,
        )
    from alsprog.models import BayesianTrajectoryModel

    return BayesianTrajectoryModel(
        m.kind,
        formula=formula,
        likelihood=m.likelihood,
        sampler=m.sampler,
        chains=m.chains,
        draws=m.draws,
        tune=m.tune,
        seed=s.seed(f"models.{m.name}"),
        time=model_time(cfg, m),
        target_accept=m.target_accept,
        progress=s.progress,
    )


def stage_models(s: State) -> None:
    """Fit every model; write summaries (CSV/text), saved models, LOO.

    Each model is saved under its class's ``file_suffix`` (``.npz`` for mixed models,
    ``.nc`` netCDF for Bayesian ones).
    """
    import time

    cfg = s.config
    if not cfg.models:
        s.note("models", "no models configured")
        return
    assert s.fit_data is not None
    rows = []
    for m in cfg.models:
        what = {
            "mixed": "mixed model (REML)",
            "joint": "joint model of the visits and death/tracheostomy (ML)",
        }.get(m.type, f"Bayesian {m.kind}, {m.chains} chains x {m.draws} draws")
        s.say(f"fitting {m.name}: {what}")
        est = build_model(s, m)
        t0 = time.perf_counter()
        est.fit(s.fit_data)
        seconds = time.perf_counter() - t0
        s.models[m.name] = est
        summ = est.summary()
        s.summaries[m.name] = summ
        for tname, tab in summ.tables.items():
            if tab.index.nlevels == 1 and tab.index.name is None:
                tab = tab.rename_axis("term")
            fname = SUMMARY_FILES.get(tname, tname)
            s.write(tab, f"models/{m.name}_{fname}.csv", index=True)
        _write_text(s.out / "models" / f"{m.name}_summary.txt", str(summ) + "\n")
        saver = getattr(est, "save", None)
        if callable(saver):  # each model under its own format's suffix
            saver(s.out / "models" / f"{m.name}{type(est).file_suffix}")
        rows.append(_model_row(m, est, model_formula(cfg, m), seconds))
        if m.type == "bayesian" and not est.converged_:
            dg = est.diagnostics_
            s.note(
                "models",
                f"{m.name} did not pass the convergence gate (max R-hat "
                f"{dg['max_rhat']:.3f}, min bulk ESS {dg['min_ess_bulk']:.0f}, "
                f"{dg['n_divergent']} divergent): raise draws/tune or chains before "
                "relying on its numbers",
            )
    comp = pd.DataFrame(rows).set_index("model")
    comp = _add_loo(s, comp)
    s.comparison = comp
    s.write(comp, "models/comparison.csv", index=True)


def _write_text(path: Path, text: str) -> None:
    from alsprog._io import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _model_row(
    m: ModelConfig, est: Any, formula: str, seconds: float
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": m.name,
        "type": m.type if m.type != "bayesian" else f"bayesian {m.kind}",
        "formula": formula,
        "n_obs": int(est.n_obs_),
        "n_subjects": int(
            getattr(est, "n_groups_", 0) or getattr(est, "n_subjects_", 0)
        ),
        "seconds": seconds,
    }
    if m.type in ("mixed", "joint"):
        row.update(
            loglik=float(est.llf_),
            aic=_value(est.aic),
            bic=_value(est.bic),
            converged=bool(est.converged_),
        )
    else:
        dg = est.diagnostics_
        row.update(
            converged=bool(est.converged_),
            max_rhat=float(dg["max_rhat"]),
            min_ess_bulk=float(dg["min_ess_bulk"]),
            n_divergent=int(dg["n_divergent"]),
        )
    return row


def _value(v: Any) -> float:
    """A derived quantity that is a property in some versions, a method in others."""
    return float(v() if callable(v) else v)


def _add_loo(s: State, comp: pd.DataFrame) -> pd.DataFrame:
    import arviz as az

    loos = {}
    for name, est in s.models.items():
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
            cmp = az.compare(loos)
            comp.loc[cmp.index, "rank"] = cmp["rank"].astype(float)
            comp.loc[cmp.index, "elpd_diff"] = cmp["elpd_diff"].astype(float)
            comp.loc[cmp.index, "diff_se"] = cmp["dse"].astype(float)
            comp.loc[cmp.index, "weight"] = cmp["weight"].astype(float)
        else:
            s.note(
                "models",
                "the Bayesian models used different rows (missing values), so their "
                "LOO values are not compared",
            )
    if loos:
        bad = comp.loc[list(loos), "n_pareto_k_bad"].astype(int).to_dict()
        if any(bad.values()):
            s.note(
                "models",
                "PSIS-LOO: some observations have Pareto k > 0.7 ("
                + ", ".join(f"{n}: {b}" for n, b in bad.items())
                + "); their LOO values are optimistic, read the comparison with care",
            )
    return comp


# ------------------------------------------------------------------ forecast
def forecast_available() -> bool:
    """Whether :mod:`alsprog.forecast` can be imported."""
    try:
        import alsprog.forecast  # noqa: F401
    except ImportError:
        return False
    return True


def _baseline(name: str, history_months: float, seed: int) -> Any:
    from alsprog.forecast import DeltaFSBaseline, PatientOLSBaseline, RandomForestSlope

    if name == "delta_fs":
        return DeltaFSBaseline(history_months=history_months)
    if name == "patient_ols":
        return PatientOLSBaseline(history_months=history_months)
    return RandomForestSlope(history_months=history_months, random_state=seed)


def stage_forecast(s: State) -> None:
    """Forecasts of the held-out patients and the backtest of models and baselines."""
    from alsprog.forecast import backtest, calibration, forecast

    cfg, fc = s.config, s.config.forecast
    if not fc.enabled:
        s.note("forecast", "disabled in the config")
        return
    assert s.patients is not None
    hist_cut = fc.history_months + 0.5
    if s.holdout and s.models:
        pat = s.patients
        rows = pat.loc[pat["subject_id"].isin(s.holdout)]
        history = rows.loc[rows["months"] <= hist_cut]
        s.forecast_history = history
        last = float(history["months"].max())
        end = max(max(fc.horizons), float(rows["months"].max()))
        grid = sorted({*np.arange(np.ceil(last), end + 1e-9, 1.0), *fc.horizons})
        grid = [g for g in grid if g >= last]
        parts = []
        for name, est in s.models.items():
            s.say(f"forecasting {len(s.holdout)} held-out patients with {name}")
            f = forecast(
                est,
                history,
                [float(g) for g in grid],
                level=fc.level,
                seed=s.seed(f"forecast.{name}"),
            )
            parts.append(f.assign(model=name))
        fcs = pd.concat(parts, ignore_index=True)
        keep = ["model", "subject_id", "months", "mean", "median", "lower", "upper"]
        s.forecasts = fcs[[c for c in keep if c in fcs.columns]]
        s.write(s.forecasts, "forecasts.csv")
    names = list(fc.models) if fc.models is not None else [m.name for m in cfg.models]
    models = {n: build_model(s, cfg.model(n)) for n in names}
    if fc.recalibrate != "none":
        from alsprog.forecast import CalibratedForecaster

        probe = CalibratedForecaster(None, history_months=fc.history_months)
        later = s.patients["months"] > fc.history_months + probe.tol_months
        n_later = int(later.sum() * (1 - fc.test_fraction))
        if n_later < 2 * probe.min_per_bin:
            s.note(
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
        models[b] = _baseline(b, fc.history_months, s.seed(f"forecast.baseline.{b}"))
    s.say(
        f"backtest: {len(models)} models, {fc.test_fraction:.0%} of patients held out, "
        f"history {fc.history_months:g} months, horizons "
        f"{', '.join(f'{h:g}' for h in fc.horizons)}"
    )
    try:
        res, fcs = backtest(
            s.patients,
            models,
            history_months=fc.history_months,
            horizons=fc.horizons,
            test_fraction=fc.test_fraction,
            level=fc.level,
            return_forecasts=True,
            outcome=cfg.data.outcome,
            seed=s.seed("forecast.backtest"),
            progress=s.progress,
        )
    except (DataValidationError, ModelSpecificationError, ValueError) as exc:
        s.note("forecast", f"no backtest: {exc}")
        return
    s.backtest = res
    s.write(res, "backtest.csv")
    actual = fcs.attrs.get("actual")
    if actual is not None:
        try:
            s.calibration = calibration(fcs, actual, outcome=cfg.data.outcome)
            s.write(s.calibration, "forecast_calibration.csv")
        except (AlsprogError, ValueError) as exc:
            s.note("forecast", f"no calibration table: {exc}")


# -------------------------------------------------------------------- design
def stage_design(s: State) -> None:
    """Variance components from a mixed model -> sample sizes and power curves."""
    from alsprog.design import TrialDesign, simulate_power
    from alsprog.models import LinearMixedModel

    cfg, dc = s.config, s.config.design
    if not dc.enabled:
        s.note("design", "disabled in the config")
        return
    time_col = cfg.data.time
    if dc.model is not None:
        model = s.models[dc.model]
        time_col = model_time(cfg, cfg.model(dc.model))
        src = f"model {dc.model!r}"
    else:
        formula = f"{cfg.data.outcome} ~ {time_col} + ({time_col} | subject_id)"
        assert s.fit_data is not None
        model = LinearMixedModel(formula, time=time_col).fit(s.fit_data)
        src = formula
    kw: dict[str, Any] = dict(alpha=dc.alpha, power=dc.power)
    if dc.retention is not None:
        kw["retention"] = dc.retention
    d = TrialDesign.from_model(
        model, dc.visit_months, slowing=dc.slowing[0], time=time_col, **kw
    )
    s.design = d
    s.say(
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
        s.note(
            "design",
            f"simulated trials lose patients as the formula assumes: {lost}; "
            "no extra dropout or death",
        )
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
            s.note("design", f"{slow:.0%} slowing: n = {n} per arm, not simulated")
            continue
        s.say(f"simulating {dc.n_sims} trials of {n} per arm ({slow:.0%} slowing)")
        r = simulate_power(
            replace(d, slowing=slow),
            n,
            n_sims=dc.n_sims,
            seed=s.seed(f"design.simulate.{slow:g}"),
            n_jobs=cfg.run.n_jobs,
            progress=s.progress,
        )
        sim_power[i], sim_se[i] = r.power, r.se
    table = table.assign(simulated_power=sim_power, simulated_se=sim_se)
    s.sample_size = table
    s.write(table, "sample_size.csv")
    design_row = pd.DataFrame([{k: _plain(v) for k, v in d.to_dict().items()}])
    s.write(design_row, "trial_design.csv")
    top = max(sizes.values()) if sizes else 100
    top = min(top, 5 * MAX_SIMULATED_N)
    grid = np.unique(np.ceil(np.linspace(max(top / 20, 4), 1.5 * top, 20)))
    grid = np.unique(np.concatenate([grid, list(sizes.values())]))
    curve = d.power_curve(list(grid), slowing=dc.slowing, method=dc.methods[0])
    curve["simulated_power"] = np.nan
    curve["simulated_se"] = np.nan
    sim = table.loc[first]
    for row in sim.itertuples(index=False):
        hit = (curve["slowing"] == row.slowing) & (
            curve["n_per_arm"] == row.n_per_arm_ceil
        )
        curve.loc[hit, "simulated_power"] = row.simulated_power
        curve.loc[hit, "simulated_se"] = row.simulated_se
    s.power_curve = curve
    s.write(curve, "power_curve.csv")


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return " ".join(f"{x:g}" for x in v)
    return v


# ---------------------------------------------------------------- biomarkers
def stage_biomarkers(s: State) -> None:
    """Imaging classifier (ALS vs control), change rates, progression markers."""
    from alsprog.biomarkers import (
        ImagingClassifier,
        evaluate_classifier,
        imaging_change_rates,
        screen_progression_markers,
    )

    cfg, bc = s.config, s.config.biomarkers
    if not bc.enabled:
        s.note("biomarkers", "disabled in the config")
        return
    if not s.features:
        s.note("biomarkers", "no imaging features in the table; stage skipped")
        return
    table = s.table
    assert table is not None
    feats = s.features
    imaged = table.dropna(subset=feats, how="all")
    groups = set(imaged["group"].astype(str)) if "group" in imaged.columns else set()
    if {"als", "control"} <= groups:
        covs = [c for c in ("age", "sex") if c in table.columns]
        clf = ImagingClassifier(
            bc.estimator,
            features=feats,
            harmonize=None if bc.harmonize == "none" else bc.harmonize,
            covariates=covs,
            random_state=s.seed("biomarkers.classifier"),
        )
        s.say(
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
                seed=s.seed("biomarkers.evaluate"),
                n_jobs=cfg.run.n_jobs,
                progress=s.progress,
            )
        except (DataValidationError, ModelSpecificationError) as exc:
            s.note("biomarkers", f"no classifier: {exc}")
            ev = None
        if ev is not None:
            s.classifier = ev
            s.write(
                ev.summary.rename_axis("metric"),
                "biomarkers/classifier.csv",
                index=True,
            )
            s.write(ev.folds, "biomarkers/classifier_folds.csv")
            s.write(ev.roc_curves(), "biomarkers/roc.csv")
            s.note(
                "biomarkers",
                f"classifier: positive class {ev.pos_label!r} (sensitivity and the "
                f"ROC curve are about it); permutation p-value of the ROC AUC: "
                f"{ev.pvalue_text}",
            )
        try:
            s.change_rates = imaging_change_rates(table, feats, visit_months=(0, 6, 12))
            s.write(s.change_rates, "biomarkers/imaging_change_rates.csv")
        except (DataValidationError, ModelSpecificationError) as exc:
            s.note("biomarkers", f"no imaging change rates: {exc}")
    else:
        s.note(
            "biomarkers",
            "the classifier and change rates need imaged ALS patients and controls "
            f"(groups with imaging: {sorted(groups) or 'none'}); skipped",
        )
    try:
        s.markers = screen_progression_markers(
            table, feats, outcome=cfg.data.outcome, time=cfg.data.time
        )
        s.write(s.markers, "biomarkers/progression_markers.csv")
    except (DataValidationError, ModelSpecificationError) as exc:
        s.note("biomarkers", f"no progression-marker screen: {exc}")
