"""Mutation testing of alsprog's statistical core with mutmut 3: ``make mutation``.

Each core module is mutated on its own, in a scratch copy of the working tree
(``.mutation/<module>/``, never the repository itself), and each mutant is run
against that module's own tests and doctests only (quick tier: no ``slow`` or
``veryslow`` test), as ``[tool.alsprog.mutation.modules]`` in ``pyproject.toml``
lists them.  Mutants that change nothing observable are listed with a one-line
reason in ``scripts/equivalent_mutants/<module>.toml`` (``"mutant name" = "why"``)
and left out of the score.

Usage::

    python scripts/mutation.py                 # every module in the table
    python scripts/mutation.py alsprog/data/_scoring.py --jobs 2
    python scripts/mutation.py --fail-under 85 # exit 1 when a module scores less

Prints one row per module (mutants, killed, survived, equivalent, score) and writes
``.mutation/report.md`` with the table and every surviving mutant's name
(``mutmut show NAME`` inside that module's folder prints its diff).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"
#: The file marking a scratch folder as this script's (only such folders are replaced).
MARK = ".alsprog-mutation-scratch"
#: pytest options of every mutant run: quick tests only, no cache, no xdist.
PYTEST_ARGS = ["-p", "no:cacheprovider", "-p", "no:xdist", "-q"]
QUICK = ["-m", "not slow and not veryslow"]


def _settings() -> tuple[dict[str, list[str]], dict[str, str]]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        tool = tomllib.load(fh)["tool"]["alsprog"]["mutation"]
    equivalent: dict[str, str] = {}
    for path in sorted((ROOT / "scripts" / "equivalent_mutants").glob("*.toml")):
        with open(path, "rb") as fh:
            for name, why in tomllib.load(fh).items():
                if not (isinstance(why, str) and why.strip()):
                    sys.exit(f"{path}: {name!r} needs a one-line reason")
                equivalent[name] = why
    return dict(tool["modules"]), equivalent


def _tracked() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [p for p in out.split("\0") if p]


def _top_level() -> list[str]:
    """The tree's top-level files and folders besides the package and the tests
    (mutmut copies those two itself)."""
    tops = {rel.split("/", 1)[0] for rel in _tracked()}
    return sorted(tops - {"alsprog", "tests", "pyproject.toml"})


def _slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def _scratch(module: str, tests: list[str]) -> Path:
    """A fresh copy of the working tree (tracked and unignored files) configured to
    mutate ``module`` against ``tests`` and its doctests."""
    where = WORK / _slug(module)
    if where.exists():
        if not (where / MARK).is_file():
            sys.exit(f"{where} exists and was not made by this script; move it away")
        shutil.rmtree(where)  # our own scratch folder, made below on an earlier run
    where.mkdir(parents=True)
    (where / MARK).write_text("scratch copy made by scripts/mutation.py\n")
    for rel in _tracked():
        src = ROOT / rel
        if src.is_file():
            dst = where / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    conf = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["alsprog"]',
            f"only_mutate = {json.dumps([module])}",
            "pytest_add_cli_args_test_selection = " + json.dumps([*tests, module]),
            f"pytest_add_cli_args = {json.dumps(PYTEST_ARGS + QUICK)}",
            # the rest of the tree the tests read (data_dictionary/, README.md, ...)
            f"also_copy = {json.dumps(_top_level())}",
            # JAX deadlocks in a child forked from a process that has used it, so a
            # plain fork would time out (and count as killed) every mutant that
            # reaches JAX code; a fork server starts each child clean
            'process_isolation = "forkserver"',
            "",
        ]
    )
    with open(where / "pyproject.toml", "a", encoding="utf-8") as fh:
        fh.write(conf)
    return where


def _mutmut() -> str:
    exe = Path(sys.executable).with_name("mutmut")
    if not exe.exists():
        sys.exit(
            "mutmut is not installed in this environment: "
            f"{sys.executable} -m pip install 'mutmut>=3.3' (or make mutation)"
        )
    return str(exe)


def run_module(module: str, tests: list[str], jobs: int) -> dict[str, object]:
    """Mutate ``module``; return its counts and the names of surviving mutants."""
    where = _scratch(module, tests)
    exe = _mutmut()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    log = where / "mutmut.log"
    with open(log, "w", encoding="utf-8") as fh:
        subprocess.run(
            [exe, "run", "--max-children", str(jobs)],
            cwd=where,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=False,
        )
    subprocess.run(
        [exe, "export-cicd-stats"], cwd=where, env=env, check=False, capture_output=True
    )
    stats_file = where / "mutants" / "mutmut-cicd-stats.json"
    if not stats_file.exists():
        sys.exit(f"mutmut did not finish for {module}; see {log}")
    stats = json.loads(stats_file.read_text())
    res = subprocess.run(
        [exe, "results", "--all", "true"],
        cwd=where,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    status: dict[str, str] = {}
    for line in res.splitlines():
        name, _, state = line.strip().rpartition(": ")
        if name:
            status[name] = state
    return {
        "stats": stats,
        "status": status,
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> int:
    modules, equivalent = _settings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="modules to mutate (default: all)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--fail-under", type=float, default=None)
    args = ap.parse_args(argv)
    chosen = args.modules or list(modules)
    unknown = [m for m in chosen if m not in modules]
    if unknown:
        ap.error(f"not in [tool.alsprog.mutation.modules]: {', '.join(unknown)}")
    rows, survivors, failed = [], {}, False
    for module in chosen:
        out = run_module(module, modules[module], args.jobs)
        st, status = out["stats"], out["status"]
        prefix = _slug(module) + "."
        equiv = {n for n in equivalent if n.startswith(prefix) and n in status}
        alive = sorted(
            n
            for n, s in status.items()
            if s not in ("killed", "timeout", "segfault") and n not in equiv
        )
        # listed equivalents count on neither side, whatever mutmut recorded
        caught = {
            n for n, s in status.items() if s in ("killed", "timeout", "segfault")
        }
        killed = len(caught - equiv)
        counted = st["total"] - len(equiv) - st["skipped"]
        score = 100.0 * killed / counted if counted else 100.0
        failed |= args.fail_under is not None and score < args.fail_under
        rows.append(
            (module, st["total"], killed, len(alive), len(equiv), score, out["seconds"])
        )
        survivors[module] = alive
        print(
            f"{module}: {killed}/{counted} killed ({score:.1f} %), "
            f"{len(alive)} survived, {len(equiv)} equivalent, {out['seconds']:.0f} s",
            flush=True,
        )
    head = "| module | mutants | killed | survived | equivalent | score | seconds |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for m, tot, k, a, e, sc, sec in rows:
        lines.append(f"| `{m}` | {tot} | {k} | {a} | {e} | {sc:.1f} % | {sec:.0f} |")
    report = ["# Mutation testing", "", *lines, ""]
    for m, alive in survivors.items():
        report += [f"## Survivors in `{m}` ({len(alive)})", ""]
        report += [f"- `{n}`" for n in alive] + [""]
    WORK.mkdir(exist_ok=True)
    (WORK / "report.md").write_text("\n".join(report), encoding="utf-8")
    print("\n".join(lines))
    print(f"survivors: {WORK / 'report.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
