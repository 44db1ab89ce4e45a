"""The self-contained HTML report of a run.

Owns: rendering a run's results as one HTML file: inline CSS, figures embedded as
base64 PNG, tables from DataFrames, everything escaped, a Content-Security-Policy
that forbids any external request, and one small inline script that marks each image
as loaded or failed (for headless checks).
Leaves: the numbers to the run's tables, the figures to
:mod:`alsprog.report._figures`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from alsprog.report._figures import FigureOut
from alsprog.report._stages import State

__all__ = ["render_report"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#1d2330;background:#fff;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:1.5rem 2rem 4rem}
header{background:#23395d;color:#fff;padding:1.4rem 2rem}
header h1{margin:0 0 .3rem;font-size:1.6rem}
header p{margin:0;opacity:.85}
nav{margin:1rem 0 1.5rem;font-size:.95rem}
nav a{margin-right:1rem;color:#23395d}
h2{border-bottom:2px solid #23395d;padding-bottom:.2rem;margin-top:2.5rem}
h3{margin-top:1.6rem}
div.scroll{overflow-x:auto}
table.data{border-collapse:collapse;font-size:.85rem;margin:.6rem 0 1rem}
table.data th,table.data td{border-bottom:1px solid #d5dae3;padding:.25rem .6rem;
text-align:right}
table.data th:first-child,table.data td:first-child{text-align:left}
table.data thead th{background:#eef1f6}
figure{margin:1rem 0 1.6rem}
figure img{max-width:100%;height:auto;border:1px solid #e3e6ec}
figcaption{font-size:.88rem;color:#4a5263;margin-top:.3rem}
p.note{background:#fff7e0;border-left:4px solid #e0a800;padding:.4rem .8rem;
font-size:.9rem}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
pre{background:#f5f6f8;padding:.8rem;overflow-x:auto;font-size:.8rem}
details{margin:.5rem 0}
summary{cursor:pointer;font-weight:600}
.kpi{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0}
.kpi div{background:#eef1f6;border-radius:6px;padding:.6rem 1rem;min-width:12rem}
.kpi b{display:block;font-size:1.3rem}
"""

# Marks every <img> as loaded (naturalWidth > 0) or failed, and records script errors,
# in attributes a headless browser's --dump-dom shows.
_SCRIPT = (
    "(function(){var b=document.body,imgs=document.images,ok=0,bad=0;"
    "b.setAttribute('data-images-total',String(imgs.length));"
    "function put(){b.setAttribute('data-images-loaded',String(ok));"
    "b.setAttribute('data-images-failed',String(bad));}"
    "function watch(img){function mark(){if(img.getAttribute('data-loaded'))return;"
    "var good=img.naturalWidth>0;img.setAttribute('data-loaded',good?'1':'0');"
    "if(good){ok++;}else{bad++;}put();}"
    "if(img.complete){mark();}else{img.addEventListener('load',mark);"
    "img.addEventListener('error',mark);}}"
    "for(var i=0;i<imgs.length;i++){watch(imgs[i]);}put();"
    "window.addEventListener('error',function(e){b.setAttribute('data-js-error',"
    "String(e.message));});})();"
)


def esc(x: Any) -> str:
    """HTML-escape any value's text."""
    return html.escape(str(x), quote=True)


def fmt_number(v: Any) -> str:
    """A number as the report shows it (4 significant digits, thousands grouped)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        v = float(v)
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v == int(v) and abs(v) < 1e7:
            return f"{int(v):,}"
        if abs(v) >= 1e4:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return str(v)


def table_html(
    df: pd.DataFrame, *, index: bool = False, caption: str | None = None
) -> str:
    """A DataFrame as an escaped HTML table with formatted numbers."""
    shown = df.copy()
    for c in shown.columns:
        shown[c] = shown[c].map(fmt_number).astype(object)
    parts = ['<div class="scroll"><table class="data">']
    if caption:
        parts.append(f"<caption>{esc(caption)}</caption>")
    heads = ([esc(df.index.name or "")] if index else []) + [esc(c) for c in df.columns]
    parts.append(
        "<thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead>"
    )
    parts.append("<tbody>")
    for idx, row in shown.iterrows():
        cells = ([f"<th>{esc(idx)}</th>"] if index else []) + [
            f"<td>{esc(v)}</td>" for v in row.tolist()
        ]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


def figure_html(fig: FigureOut, file: str) -> str:
    """A figure embedded as a base64 PNG with its caption."""
    data = base64.b64encode(fig.png).decode("ascii")
    return (
        f'<figure id="fig-{esc(fig.name)}"><img src="data:image/png;base64,{data}" '
        f'alt="{esc(fig.title)}" title="{esc(file)}">'
        f"<figcaption><b>{esc(fig.title)}.</b> {esc(fig.caption)}</figcaption></figure>"
    )


def facts_html(facts: Mapping[str, Any]) -> str:
    """Key-value facts as a definition list."""
    rows = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(fmt_number(v))}</dd>" for k, v in facts.items()
    )
    return f'<dl class="facts">{rows}</dl>'


def notes_html(notes: Iterable[str]) -> str:
    """Stage notes as highlighted paragraphs."""
    return "".join(f'<p class="note">{esc(n)}</p>' for n in notes)


class _Doc:
    def __init__(self, figures: Sequence[FigureOut], files: Sequence[str]) -> None:
        self.sections: list[tuple[str, str, list[str]]] = []
        self.figures = {
            f.name: (f, file) for f, file in zip(figures, files, strict=True)
        }

    def section(self, sid: str, title: str) -> list[str]:
        parts: list[str] = []
        self.sections.append((sid, title, parts))
        return parts

    def fig(self, name: str) -> str:
        if name not in self.figures:
            return ""
        f, file = self.figures[name]
        return figure_html(f, file)


def _kpis(s: State) -> str:
    items = []
    t = s.table
    if t is not None:
        n_pat = s.patients["subject_id"].nunique() if s.patients is not None else 0
        n_sub = t["subject_id"].nunique()
        items.append(("patients / subjects", f"{n_pat} / {n_sub}"))
        items.append(("visits", f"{len(t):,}"))
    comp = s.comparison
    if comp is not None and "rank" in comp.columns and comp["rank"].notna().any():
        best = comp["rank"].idxmin()
        items.append(("best model by LOO", str(best)))
    if s.sample_size is not None and len(s.sample_size):
        r = s.sample_size.iloc[0]
        items.append(
            (
                f"patients per arm, {r['slowing']:.0%} slowing",
                fmt_number(r["n_per_arm_ceil"]),
            )
        )
    if s.classifier is not None:
        auc = s.classifier.summary.loc["roc_auc"]
        items.append(
            (
                "classifier ROC AUC",
                f"{auc['estimate']:.2f} [{auc['ci_lower']:.2f}, {auc['ci_upper']:.2f}]",
            )
        )
    if s.backtest is not None and len(s.backtest):
        b = s.backtest.dropna(subset=["rmse"]) if "rmse" in s.backtest else s.backtest
        if len(b):
            h = b["horizon"].max()
            row = b.loc[b["horizon"] == h].sort_values("rmse").iloc[0]
            items.append(
                (
                    f"best {h:g}-month forecast RMSE",
                    f"{row['rmse']:.2f} ({row['model']})",
                )
            )
    return (
        '<div class="kpi">'
        + "".join(f"<div>{esc(k)}<b>{esc(v)}</b></div>" for k, v in items)
        + "</div>"
    )


def render_report(
    s: State,
    figures: Sequence[FigureOut],
    figure_files: Sequence[str],
    run_info: Mapping[str, Any],
) -> str:
    """The whole report as one HTML document.

    Parameters
    ----------
    s : State
        The run's results.
    figures, figure_files : sequences
        The figures and their file names (as written in ``figures/``).
    run_info : mapping
        ``started``, ``versions`` (mapping), ``stage_seconds`` (mapping),
        ``warnings`` (list of str), ``files`` (list of str), ``config_toml`` (str).

    Returns
    -------
    str
    """
    cfg = s.config
    doc = _Doc(figures, figure_files)

    p = doc.section("summary", "At a glance")
    p.append(_kpis(s))
    p.append(
        "<p>This report was written by <code>alsprog run</code>. Every table in it is "
        "also a CSV file in the run's folder; the figures are in "
        "<code>figures/</code>; <code>run.log</code> lists what ran, with versions, "
        "seeds and timings; <code>config.toml</code> repeats the run.</p>"
    )

    p = doc.section("cohort", "Cohort")
    if s.cohort is not None:
        p.append(table_html(s.cohort.rename_axis("quantity"), index=True))
    p.append(notes_html(s.notes.get("imaging", [])))
    p.append(notes_html(s.notes.get("assemble", [])))
    p.append(doc.fig("cohort_spaghetti"))

    p = doc.section("models", "Trajectory models")
    p.append(notes_html(s.notes.get("models", [])))
    if s.comparison is not None:
        comp = s.comparison.drop(columns=["formula"], errors="ignore")
        p.append(
            "<p>One row per model. Mixed models: REML log-likelihood, AIC and BIC. "
            "Bayesian models: convergence (R-hat, bulk ESS, divergences) and the "
            "expected log predictive density by PSIS-LOO (by visit, conditional on the "
            "patient's effects); <code>rank</code> 0 is the best, "
            "<code>elpd_diff</code> the loss against it with its SE.</p>"
        )
        p.append(table_html(comp, index=True))
    p.append(doc.fig("model_comparison"))
    p.append(doc.fig("subject_trajectories"))
    for name, summ in s.summaries.items():
        p.append(
            f"<details><summary>{esc(name)}: summary</summary>{summ.to_html()}</details>"
        )

    p = doc.section("forecast", "Forecasts")
    p.append(notes_html(s.notes.get("forecast", [])))
    if s.backtest is not None:
        fc = cfg.forecast
        recal = {
            "none": "",
            "band": " Models named <code>*_recalibrated</code> have their intervals "
            "learnt from the training patients' own later visits (the model's centre "
            "kept).",
            "shift": " Models named <code>*_recalibrated</code> have their centre and "
            "intervals learnt from the training patients' own later visits.",
        }[fc.recalibrate]
        p.append(
            f"<p>Backtest: {fc.test_fraction:.0%} of the patients are held out, every "
            "model is refitted on the others, and each held-out patient is forecast from "
            f"the first {fc.history_months:g} months of visits. Errors in ALSFRS-R points "
            f"at each horizon; <code>coverage</code> of the {fc.level:.0%} interval; "
            "<code>crps</code> scores the whole predictive distribution (lower is "
            "better); <code>slope_rmsd</code> is the DREAM challenge's error of the "
            f"ALSFRS-R slope from month {fc.history_months:g} on, each predicted slope "
            f"running through the history's known values.{recal}</p>"
        )
        cols = [
            c
            for c in (
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
            if c in s.backtest.columns
        ]
        p.append(table_html(s.backtest[cols]))
    p.append(doc.fig("forecast_fan_charts"))
    p.append(doc.fig("forecast_calibration"))

    p = doc.section("design", "Trial design")
    p.append(notes_html(s.notes.get("design", [])))
    if s.design is not None:
        d = s.design
        p.append(
            facts_html(
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
        )
    if s.sample_size is not None:
        p.append(
            "<p>Patients per arm to detect each slowing of the mean ALSFRS-R slope "
            "with a random-intercept-and-slope mixed model; <code>simulated_power</code>"
            " is the power of simulated whole trials analysed exactly at that size,"
            " losing patients as the retention above says (the formula's attrition)."
            "</p>"
        )
        p.append(table_html(s.sample_size))
    p.append(doc.fig("power_curve"))

    p = doc.section("biomarkers", "Imaging biomarkers")
    p.append(notes_html(s.notes.get("biomarkers", [])))
    if s.classifier is not None:
        p.append(
            f"<p>ALS vs control classifier on {len(s.classifier.features)} imaging "
            f"features, {esc(s.classifier.cv)} cross-validation (every session of a "
            "subject in one fold; harmonisation and scaling refitted in each training "
            f"fold); {s.classifier.level:.0%} subject-bootstrap intervals.</p>"
        )
        p.append(table_html(s.classifier.summary.rename_axis("metric"), index=True))
    p.append(doc.fig("classifier_roc"))
    p.append(doc.fig("imaging_feature_trajectories"))
    if s.change_rates is not None:
        p.append("<h3>Yearly change of each feature</h3>")
        cols = [
            c
            for c in (
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
            if c in s.change_rates.columns
        ]
        p.append(table_html(s.change_rates[cols]))
    if s.markers is not None:
        p.append("<h3>Baseline imaging as a predictor of ALSFRS-R decline</h3>")
        p.append(table_html(s.markers))

    p = doc.section("run", "Run details")
    p.append(
        facts_html(
            {
                "started": run_info.get("started", ""),
                "config": "config.toml in this folder"
                + (f" (run from {cfg.path})" if cfg.path else " (built in code)"),
                "seed": str(cfg.run.seed),
                "total seconds": sum(run_info.get("stage_seconds", {}).values()),
            }
        )
    )
    secs = run_info.get("stage_seconds", {})
    if secs:
        p.append("<h3>Stage timings</h3>")
        p.append(
            table_html(
                pd.DataFrame({"stage": list(secs), "seconds": list(secs.values())})
            )
        )
    vers = run_info.get("versions", {})
    if vers:
        p.append("<h3>Versions</h3>")
        p.append(facts_html(vers))
    if s.seeds:
        p.append("<details><summary>Seeds of each step</summary>")
        p.append(facts_html({k: str(v) for k, v in s.seeds.items()}) + "</details>")
    warns = run_info.get("warnings", [])
    if warns:
        p.append(f"<details><summary>{len(warns)} warnings</summary><ul>")
        p.append("".join(f"<li>{esc(w)}</li>" for w in warns) + "</ul></details>")
    if run_info.get("config_toml"):
        p.append("<details><summary>Configuration (config.toml)</summary>")
        p.append(f"<pre>{esc(run_info['config_toml'])}</pre></details>")
    if run_info.get("files"):
        p.append("<details><summary>Files written</summary><ul>")
        p.append("".join(f"<li><code>{esc(f)}</code></li>" for f in run_info["files"]))
        p.append("</ul></details>")

    nav = "".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t, _ in doc.sections)
    body = "\n".join(
        f'<section id="{sid}"><h2>{esc(t)}</h2>\n'
        + "\n".join(x for x in parts if x)
        + "</section>"
        for sid, t, parts in doc.sections
    )
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'"
    )
    from alsprog._version import __version__

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(cfg.run.title)}</title><style>{_CSS}</style></head>\n"
        f"<body><header><h1>{esc(cfg.run.title)}</h1><p>alsprog {esc(__version__)} · "
        f"{esc(run_info.get('started', ''))}</p></header>\n<main><nav>{nav}</nav>\n"
        f"{body}\n</main><script>{_SCRIPT}</script></body></html>\n"
    )
