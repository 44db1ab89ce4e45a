"""The report's page: one self-contained HTML file around the sections' fragments.

Owns: :func:`render_report` (the page frame: inline CSS, a Content-Security-Policy
that forbids any external request, the navigation, "At a glance" from the sections'
facts, each section's fragment with its figures, the run details, and one small
inline script that marks each image as loaded or failed, for headless checks).
Leaves: what each section shows to :mod:`alsprog.report.sections`; the HTML
building blocks to :mod:`alsprog.report._html`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from alsprog.report._figures import FigureOut
from alsprog.report._html import Figures, esc, facts_html, table_html
from alsprog.report.sections import SECTIONS, RunContext, Section

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


def render_report(
    ctx: RunContext,
    figures: Sequence[FigureOut],
    figure_files: Sequence[str],
    run_info: Mapping[str, Any],
    *,
    sections: Sequence[Section] = SECTIONS,
) -> str:
    """The whole report as one HTML document.

    Parameters
    ----------
    ctx : RunContext
        The run's results (ctx.results), notes and seeds.
    figures, figure_files : sequences
        The figures and their file names (as written in ``figures/``); each is
        shown in the section its ``section`` names.
    run_info : mapping
        ``started``, ``versions`` (mapping), ``stage_seconds`` (mapping),
        ``warnings`` (list of str), ``files`` (list of str), ``config_toml`` (str).
    sections : sequence of Section, default ``SECTIONS``
        The run's sections, in order.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If a figure names a section that is not in ``sections`` or has no title.
    """
    shown = [s for s in sections if s.title]
    by_section = _figures_by_section(figures, figure_files, shown)
    parts = [("summary", "At a glance", _summary(ctx, sections))]
    for sec in shown:
        figs = Figures(*by_section[sec.name])
        frags = sec.render(ctx, ctx.results.get(sec.name), figs)
        parts.append((sec.name, str(sec.title), [*frags, *figs.rest()]))
    parts.append(("run", "Run details", _run_details(ctx, run_info)))
    nav = "".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t, _ in parts)
    body = "\n".join(
        f'<section id="{sid}"><h2>{esc(t)}</h2>\n'
        + "\n".join(x for x in frags if x)
        + "</section>"
        for sid, t, frags in parts
    )
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'"
    )
    from alsprog._version import __version__

    title = ctx.config.run.title
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><header><h1>{esc(title)}</h1><p>alsprog {esc(__version__)} · "
        f"{esc(run_info.get('started', ''))}</p></header>\n<main><nav>{nav}</nav>\n"
        f"{body}\n</main><script>{_SCRIPT}</script></body></html>\n"
    )


def _figures_by_section(
    figures: Sequence[FigureOut], files: Sequence[str], shown: Sequence[Section]
) -> dict[str, tuple[list[FigureOut], list[str]]]:
    out: dict[str, tuple[list[FigureOut], list[str]]] = {
        s.name: ([], []) for s in shown
    }
    for f, file in zip(figures, files, strict=True):
        if f.section not in out:
            raise ValueError(
                f"figure {f.name!r} names section {f.section!r}, which is not a "
                f"titled section of this report ({', '.join(out) or 'none'})"
            )
        out[f.section][0].append(f)
        out[f.section][1].append(file)
    return out


def _summary(ctx: RunContext, sections: Sequence[Section]) -> list[str]:
    """ "At a glance": every section's facts, then how to read the folder."""
    ranked = sorted(sections, key=lambda s: s.kpi_order)
    items = [kv for s in ranked for kv in s.kpis(ctx, ctx.results.get(s.name))]
    kpis = (
        '<div class="kpi">'
        + "".join(f"<div>{esc(k)}<b>{esc(v)}</b></div>" for k, v in items)
        + "</div>"
    )
    return [
        kpis,
        "<p>This report was written by <code>alsprog run</code>. Every table in it is "
        "also a CSV file in the run's folder; the figures are in "
        "<code>figures/</code>; <code>run.log</code> lists what ran, with versions, "
        "seeds and timings; <code>config.toml</code> repeats the run.</p>",
    ]


def _run_details(ctx: RunContext, run_info: Mapping[str, Any]) -> list[str]:
    """When, with what, how long; seeds, warnings, config and files."""
    cfg = ctx.config
    p = [
        facts_html(
            {
                "started": run_info.get("started", ""),
                "config": "config.toml in this folder"
                + (f" (run from {cfg.path})" if cfg.path else " (built in code)"),
                "seed": str(cfg.run.seed),
                "total seconds": sum(run_info.get("stage_seconds", {}).values()),
            }
        )
    ]
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
    if ctx.seeds:
        p.append("<details><summary>Seeds of each step</summary>")
        p.append(facts_html({k: str(v) for k, v in ctx.seeds.items()}) + "</details>")
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
    return p
