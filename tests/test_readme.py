"""Every number README.md states is what the code gives (issue 18, items 14 and 15).

The quick start runs as a script and prints what the README shows; the synthetic
cohort's table is recomputed from the call the README names; the demo's size and CPU
time, the pipeline's stages and the benchmarks' rows (``veryslow``: the forecast one
re-runs ``benchmarks/forecast.py``, about 5 minutes on 2 cores) are checked against the
code; and no file in the repository cites the domain notes outside it
(``../shared/``): they ship as ``docs/domain.md``.
"""

from __future__ import annotations

import doctest
import inspect
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOMAIN = ROOT / "docs" / "domain.md"
MINUS = "\u2212"


def _section(title: str) -> str:
    """The README's text from ``## title`` to the next ``## `` heading."""
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 4)
    return README[start : end if end > 0 else None]


def _signed(text: str) -> str:
    """Python's minus as the README's typographic one."""
    return text.replace("-", MINUS)


# ------------------------------------------------------------------ item 14: sources
_TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".R", ".Rout", ".json", ".cfg", ".yml"}
_SKIP_DIRS = {"__pycache__", "node_modules", "demo_output", "build", "dist"}


def _repository_text_files() -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [
            d
            for d in dirs
            if not (d.startswith(".") or d in _SKIP_DIRS or d.endswith(".egg-info"))
        ]
        for name in names:
            path = Path(folder) / name
            if path.suffix in _TEXT_SUFFIXES or name == "Makefile":
                files.append(path)
    return files


def test_no_file_cites_the_domain_notes_outside_the_repository():
    this = Path(__file__).resolve()
    offenders = []
    for path in _repository_text_files():
        if path.resolve() == this:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            if "../shared/" in line or "DOMAIN.md" in line or "STYLE.md" in line:
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


def test_domain_citations_name_existing_sections():
    text = DOMAIN.read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\d+)\. ", text, flags=re.M))
    assert sections == {"1", "2", "3", "4", "5", "6", "7"}
    cited: dict[str, set[str]] = {}
    for path in _repository_text_files():
        body = path.read_text(encoding="utf-8", errors="replace")
        for m in re.finditer(
            r"docs/domain\.md`{0,2}\)?,? §(\d+)(?:[-/]§?(\d+))?", body
        ):
            for s in m.groups():
                if s:
                    cited.setdefault(s, set()).add(str(path.relative_to(ROOT)))
    assert cited, "no file cites docs/domain.md by section"
    assert set(cited) <= sections, {s: f for s, f in cited.items() if s not in sections}


def test_domain_reference_carries_the_numbers_the_code_defaults_to():
    from alsprog.simulate import CohortParams

    text = DOMAIN.read_text(encoding="utf-8")
    p = CohortParams()
    table7 = text[text.index("## 7.") :]
    # docs/domain.md §7, row by row, against CohortParams' defaults
    slope = _signed(f"{p.slope_mean:g}")
    assert f"| ALSFRS-R slope mean (trial-like) | {slope} pts/mo" in table7
    assert f"| Between-patient slope SD | {p.slope_sd:g} pts/mo" in table7
    death = f"| Death/tracheostomy/NIV | Weibull, median {p.event_median_months:g} mo"
    assert death in table7


# ------------------------------------------------------------- items 14-15: quick start
def _quick_start() -> tuple[str, str]:
    """The quick start's code and the output the README shows for it."""
    sec = _section("Quick start")
    code = re.search(r"```python\n(.*?)```", sec, re.S)
    shown = re.search(r"It prints.*?```\n(.*?)```", sec, re.S)
    assert code and shown
    return code.group(1), shown.group(1)


@pytest.fixture(scope="module")
def quick_start_output(tmp_path_factory) -> str:
    code, _ = _quick_start()
    script = tmp_path_factory.mktemp("quick_start") / "quick_start.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_quick_start_runs_as_a_script_and_prints_what_the_readme_shows(
    quick_start_output,
):
    _, shown = _quick_start()
    checker = doctest.OutputChecker()
    assert checker.check_output(shown, quick_start_output, doctest.ELLIPSIS), (
        f"README shows:\n{shown}\nthe script prints:\n{quick_start_output}"
    )
    # every print() of the block shows something: its last line is the sample size
    assert quick_start_output.splitlines()[-1] == "91"
    assert shown.splitlines()[-1] == "91"


def test_quick_start_forecast_columns_are_explained(quick_start_output):
    header = next(
        line
        for line in quick_start_output.splitlines()
        if line.split()[:2] == ["subject_id", "months"]
    )
    cols = header.split()
    assert cols == [
        "subject_id",
        "months",
        "mean",
        "median",
        "lower",
        "upper",
        "loc",
        "scale",
    ]
    sec = _section("Quick start")
    prose = " ".join(sec[sec.index("`forecast` returns one row") :].split())
    for c in cols[2:]:
        assert f"`{c}`" in prose, c
    # the worked example of the text: P0002 at 12 months, mean against loc
    row = next(
        line.split()
        for line in quick_start_output.splitlines()
        if line.split()[1:3] == ["P0002", "12.0"]
    )
    mean, loc, scale = float(row[3]), float(row[7]), float(row[8])
    above = 100 * norm.sf((48 - loc) / scale)
    assert (
        f"`mean` {mean:.2f} against `loc` {loc:.2f}, as {above:.1f} % of its normal "
        "lies above 48" in prose
    )


def test_forecast_docstring_explains_loc_and_scale():
    from alsprog.forecast import forecast

    doc = " ".join(inspect.getdoc(forecast).split())
    assert "``loc`` and ``scale``: the mean and SD of the normal predictive" in doc
    assert "censored at 0 and 48" in doc


# -------------------------------------------------------- item 14: the synthetic cohort
def _cohort_call() -> tuple[int, int, int]:
    m = re.search(
        r"`simulate_cohort\((\d[\d_]*), (\d[\d_]*), seed=(\d+)\)`",
        _section("The synthetic cohort"),
    )
    assert m, "the synthetic cohort's call is not stated"
    n, c, seed = (int(g.replace("_", "")) for g in m.groups())
    return n, c, seed


def _readme_cohort_table() -> dict[str, str]:
    sec = _section("The synthetic cohort")
    rows = {}
    for line in sec.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if (
            line.startswith("|")
            and len(cells) == 3
            and cells[0]
            not in {
                "quantity",
                "---",
            }
        ):
            rows[cells[0]] = cells[1]
    return rows


@pytest.fixture(scope="module")
def cohort_numbers() -> dict[str, object]:
    from alsprog.simulate import simulate_cohort

    n, n_controls, seed = _cohort_call()
    assert (n, n_controls, seed) == (20_000, 2_000, 2024)
    c = simulate_cohort(n, n_controls, seed=seed)
    truth = c.truth[c.truth["group"] == "als"].set_index("subject_id")
    subj = c.subjects.set_index("subject_id").loc[truth.index]
    v = c.visits.sort_values(["subject_id", "visit_date"])
    first = v.groupby("subject_id").first().loc[truth.index]
    k = c.params.event_weibull_shape
    scale = truth["event_weibull_scale"].to_numpy()
    at_onset = brentq(lambda t: np.mean(np.exp(-((t / scale) ** k))) - 0.5, 1, 500)
    from_first = truth["event_months_since_onset"] - truth["months_onset_to_baseline"]
    by_dfs = from_first.groupby(
        pd.cut(truth["delta_fs"], [0, 0.47, 1.11, np.inf]), observed=True
    ).median()
    entry = first[first["alsfrs_r_total"].between(34, 38)]
    sub = ["bulbar", "fine_motor", "gross_motor", "respiratory"]
    img = c.imaging_truth.merge(c.subjects[["subject_id", "group"]])
    img = img[img["session"] == "m00"]
    hc, als = img[img["group"] == "control"], img[img["group"] == "als"]

    def first_year_events(s: pd.DataFrame) -> float:
        p = s[s["group"] == "als"]
        seen = p["event_observed"].astype(float).eq(1)
        return float((seen & (p["death_or_tracheostomy_months"] < 12)).mean())

    trial_like = simulate_cohort(n, seed=seed, event_median_months=60)
    fa, th = "fa_cst_left", "thickness_precentral_left"
    d_fa = (als[fa].mean() - hc[fa].mean()) / math.sqrt(
        (als[fa].var() + hc[fa].var()) / 2
    )
    return {
        "table": {
            "true 12-month slope, mean / SD": _signed(
                f"{truth['slope_12m'].mean():.2f} / {truth['slope_12m'].std():.2f} "
                "pts/month"
            ),
            "baseline ALSFRS-R (observed)": (
                f"{first['alsfrs_r_total'].mean():.1f} ± "
                f"{first['alsfrs_r_total'].std():.1f}"
            ),
            "months onset → baseline": (
                f"{truth['months_onset_to_baseline'].mean():.1f} ± "
                f"{truth['months_onset_to_baseline'].std():.1f}"
            ),
            "ΔFS (true) mean / SD": (
                f"{truth['delta_fs'].mean():.2f} / {truth['delta_fs'].std():.2f}"
            ),
            "bulbar onset / male": (
                f"{100 * (truth['onset_site'] == 'bulbar').mean():.0f}% / "
                f"{100 * (subj['sex'] == 'male').mean():.0f}%"
            ),
            "age at onset": (
                f"{subj['age_at_onset'].mean():.1f} ± {subj['age_at_onset'].std():.1f}"
            ),
            "median D50 / dx": (
                f"{truth['d50'].median():.0f} / {truth['dx'].median():.0f} months"
            ),
            "median survival from onset: every onset (the simulator's Weibull) / the "
            "patients who reached a first visit": (
                f"{at_onset:.1f} / {truth['event_months_since_onset'].median():.1f} "
                "months"
            ),
            "median survival from first visit (before dropout), true ΔFS < 0.47 / "
            "0.47–1.11 / > 1.11": " / ".join(f"{m:.0f}" for m in by_dfs) + " months",
            "entry subscores (bulbar / fine / gross / resp.) at an entry total of "
            "34–38": " / ".join(f"{entry[f'alsfrs_r_{s}'].mean():.1f}" for s in sub),
            "left CST FA, healthy; ALS vs healthy Cohen's d": _signed(
                f"{hc[fa].mean():.2f} ± {hc[fa].std():.2f}; {d_fa:.2f}"
            ),
            "left precentral thickness, healthy; ALS deficit": _signed(
                f"{hc[th].mean():.2f} ± {hc[th].std():.2f} mm; "
                f"{als[th].mean() - hc[th].mean():.2f} mm"
            ),
        },
        "median_from_onset_entered": truth["event_months_since_onset"].median(),
        "first_year_events": first_year_events(c.subjects),
        "first_year_events_60": first_year_events(trial_like.subjects),
        "event_median_months": c.params.event_median_months,
        "min_onset_to_first_visit": truth["months_onset_to_baseline"].min(),
    }


def test_synthetic_cohort_table_is_what_the_simulator_gives(cohort_numbers):
    assert _readme_cohort_table() == cohort_numbers["table"]


def test_synthetic_cohort_event_sentence(cohort_numbers):
    text = " ".join(_section("The synthetic cohort").split())
    n = cohort_numbers
    assert n["min_onset_to_first_visit"] >= 3
    assert "(onset 3 months or more before it)" in text
    assert f"follows a median of {n['event_median_months']:g} months from onset" in text
    assert (
        f"their median from onset is longer ({n['median_from_onset_entered']:.1f} months)"
        in text
    )
    assert (
        f"{100 * n['first_year_events']:.0f} % of them have an observed event (before "
        "any dropout) in their first year" in text
    )
    assert (
        f"with `event_median_months=60` it is {100 * n['first_year_events_60']:.0f} % "
        "(trial-like)" in text
    )


# ------------------------------------------------------------ demo and pipeline stages
def test_demo_size_is_the_stated_one():
    from alsprog.biomarkers import DEFAULT_N_PERMUTATIONS
    from alsprog.report import run_demo

    m = re.search(
        r"`make demo` simulates (\d+) ALS patients and (\d+) healthy controls", README
    )
    assert m
    sig = inspect.signature(run_demo).parameters
    assert (sig["n_patients"].default, sig["n_controls"].default) == tuple(
        map(int, m.groups())
    )
    m = re.search(r"the classifier's (\d+) permutations", README)
    assert m and int(m.group(1)) == DEFAULT_N_PERMUTATIONS


def test_pipeline_stages_are_the_stated_ones():
    from alsprog.report._run import STAGES

    sec = _section("Your own data: `alsprog run`")
    listed = re.findall(r"(\d+)\. \*\*(\w+)\*\*", sec)
    assert [(int(i), s) for i, s in listed] == list(enumerate(STAGES, 1))
    k = STAGES.index("models") + 1
    assert f"`[{k}/{len(STAGES)}] models: fitting lmm ...`" in sec


@pytest.mark.veryslow
def test_demo_takes_the_stated_cpu_time(tmp_path):
    import resource
    import shutil

    m = re.search(
        r"takes about (\d+) minutes? on 2 cores \((\d+\.\d) minutes of CPU", README
    )
    assert m
    wall, cpu = int(m.group(1)), float(m.group(2))
    assert cpu / 2 <= wall <= cpu  # 2 cores: between the CPU time and half of it
    exe = shutil.which("alsprog", path=str(Path(sys.executable).parent))
    assert exe
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [exe, "-q", "--no-progress", "demo", "--out", str(tmp_path / "demo")],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / 60
    # CPU time hardly depends on the machine's load, unlike the wall-clock time
    assert cpu * 0.7 <= used <= cpu * 1.3, f"{used:.2f} CPU minutes"


def test_lmm_benchmark_row_is_the_recorded_run():
    # benchmarks/lmm.py writes its last run to benchmarks/results/lmm.csv
    rec = pd.read_csv(ROOT / "benchmarks" / "results" / "lmm.csv").iloc[-1]
    text = " ".join(_section("How it compares").split())
    n = int(rec["subjects"])
    assert f"| LMM, {n // 1000}k subjects | {rec['alsprog_s']:.1f} s" in text
    assert f"| lme4 {rec['lme4_s']:.1f} s | {rec['ratio_lme4']:.2f}× |" in text
    assert f"{rec['rows'] / n:.1f} visits" in text


# ------------------------------------------------------- the forecast benchmark's rows
@pytest.mark.veryslow
def test_forecast_benchmark_rows(tmp_path, capsys, monkeypatch):
    import runpy

    bench = runpy.run_path(str(ROOT / "benchmarks" / "forecast.py"))
    main = bench["main"]
    monkeypatch.setitem(main.__globals__, "RESULTS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["forecast.py", "--reps", "10"])
    main()
    capsys.readouterr()
    res = pd.read_csv(tmp_path / "forecast.csv").set_index(["model", "horizon"])

    def r(model: str, h: float, col: str) -> float:
        return float(res.loc[(model, h), col])

    cal, band, lmm = (
        "alsprog_lmm_calibrated",
        "alsprog_lmm_calibrated_band",
        "alsprog_lmm",
    )
    ours = [cal, band]
    rf, orc = r("random_forest", 12.0, "rmse"), r("oracle", 12.0, "rmse")
    to_rf = [r(m, 12.0, "rmse") / rf for m in ours]
    to_or = [r(m, 12.0, "rmse") / orc for m in ours]

    def cov(m: str) -> str:
        return f"{r(m, 6.0, 'coverage'):.3f} / {r(m, 12.0, 'coverage'):.3f}"

    slope = {m: r(m, 12.0, "slope_rmsd") for m in res.index.get_level_values(0)}
    same = {f"{slope[m]:.3f}" for m in (lmm, "alsprog_joint", band)}
    assert len(same) == 1
    best = min(slope[m] for m in slope if m.startswith("alsprog"))
    row = {
        "rmse": f"{r(cal, 12.0, 'rmse'):.2f} (mixed model, recalibrated); "
        f"{r(band, 12.0, 'rmse'):.2f} (band-only recalibration)",
        "peers": f"DREAM random forest {rf:.2f}; ΔFS {r('delta_fs', 12.0, 'rmse'):.2f}; "
        f"Bayes oracle {orc:.2f}",
        "ratios": f"{min(to_rf):.2f}–{max(to_rf):.2f}× forest, "
        f"{min(to_or):.2f}–{max(to_or):.2f}× oracle",
        "coverage": f"{cov(cal)} (recalibrated); {cov(band)} (band only); "
        f"{cov(lmm)} before",
        "coverage peers": f"random forest {cov('random_forest')}; oracle {cov('oracle')}",
        "slope": f"{same.pop()} (mixed, joint and band-recalibrated models); "
        f"{slope[cal]:.3f} (recalibrated with the centre shift)",
        "slope peers": f"random forest {slope['random_forest']:.3f}; ΔFS "
        f"{slope['delta_fs']:.3f}; oracle {slope['oracle']:.3f}",
        "slope ratio": f"{best / slope['random_forest']:.2f}× forest",
        "survivors": f"so its 90 % bands cover {100 * r(lmm, 12.0, 'coverage'):.0f} % of them",
        "bias": _signed(
            f"(bias at 12 months {r(lmm, 12.0, 'bias'):.2f} → "
            f"{r('alsprog_joint', 12.0, 'bias'):.2f})"
        ),
    }
    text = " ".join(_section("How it compares").split())
    missing = {k: v for k, v in row.items() if v not in text}
    assert missing == {}
