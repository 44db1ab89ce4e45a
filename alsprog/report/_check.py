"""Checks of a run before anything is fitted: inputs, tables, formulas, output folder.

Owns: :func:`check_run` (every problem of a config and the data it names, collected
into one list: unreadable or invalid tables, visits of unknown subjects, formulas naming
columns the data will not have, an output folder alsprog may not write) and
:func:`formula_variables` (the columns a model's formula needs).
Leaves: parsing the config to :mod:`alsprog.report._config`, the table rules to
:mod:`alsprog.data`, the output-folder rule to :mod:`alsprog._io`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alsprog.errors import (
    AlsprogWarning,
    DataValidationError,
    ModelSpecificationError,
    Problem,
)
from alsprog.report._config import ModelConfig, RunConfig

__all__ = ["CheckResult", "check_run", "formula_variables", "model_time"]

#: Columns ``assemble`` adds to the input tables' own.
DERIVED_COLUMNS = (
    "months",
    "months_since_onset",
    "age",
    "delta_fs",
    "onset_months_before_baseline",
    "imaging_offset_days",
)


@dataclass
class CheckResult:
    """What the check stage learnt: the problems and the tables it could read."""

    problems: list[Problem] = field(default_factory=list)
    table: pd.DataFrame | None = None  # assembled (without NIfTI features)
    warnings: list[str] = field(default_factory=list)  # alsprog's own
    library_warnings: list[str] = field(default_factory=list)  # other libraries'
    columns: set[str] = field(default_factory=set)
    proact: Any = None  # the ProactCohort read from data.proact


def model_params(config: RunConfig, m: ModelConfig) -> dict[str, Any]:
    """A configured model's constructor arguments: its section's values, the keys it
    leaves unset filled from ``[data]`` by the model class
    (``TrajectoryModel.data_defaults``).  The run adds ``seed`` and ``progress``."""
    from alsprog.models.registry import MODELS

    cls: Any = MODELS[m.type]
    params = dict(m.params)
    params.update(
        cls.data_defaults(params, outcome=config.data.outcome, time=config.data.time)
    )
    return params


def model_time(config: RunConfig, m: ModelConfig) -> str:
    """The time column a model uses."""
    return str(model_params(config, m).get("time") or config.data.time)


def model_formula(config: RunConfig, m: ModelConfig) -> str | None:
    """The model's formula (None for a model without one)."""
    return model_params(config, m).get("formula")


def formula_variables(formula: str) -> list[str]:
    """Columns an lme4-style formula reads: outcome, fixed terms, random terms, groups.

    Parameters
    ----------
    formula : str

    Returns
    -------
    list of str
        Sorted column names.

    Raises
    ------
    ModelSpecificationError
        If the formula cannot be read.

    Examples
    --------
    >>> formula_variables("alsfrs_r_total ~ months * onset_site + (months | subject_id)")
    ['alsfrs_r_total', 'months', 'onset_site', 'subject_id']
    """
    from alsprog._formula_text import check_formula
    from alsprog.models._formula import parse_mixed_formula

    parse_mixed_formula(formula)  # lme4's shape, with its own messages
    return sorted(check_formula(formula, kind="mixed").variables)


def _headers(path: Path, rename: dict[str, str] | None = None) -> list[str]:
    """Column names of a table file (after ``[data] rename``), or [] if it cannot be
    read."""
    if rename:
        return [rename.get(c, c) for c in _headers(path)]
    try:
        suffixes = "".join(path.suffixes[-2:]).lower()
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        sep = "\t" if ".tsv" in suffixes else ","
        return [
            str(c).strip()
            for c in pd.read_csv(path, sep=sep, nrows=0, encoding="utf-8-sig").columns
        ]
    except Exception:  # unreadable: the table reader reports why
        return []


def _expected_columns(config: RunConfig, proact: Any = None) -> set[str]:
    """Columns the assembled table will have, from the input files' headers."""
    from alsprog.data._dictionary import load_dictionary

    cols: set[str] = set(DERIVED_COLUMNS)
    for p in (config.data.visits, config.data.subjects, config.data.imaging):
        if p is not None and p.is_file():
            cols |= set(_headers(p, config.data.rename))
    if proact is not None:
        cols |= set(proact.visits.columns) | set(proact.subjects.columns)
    dd = load_dictionary()
    for total, items in dd.sum_fields().items():
        if any(i in cols for i in items) or (
            "alsfrs_r_q5" in items and "alsfrs_r_q5a" in cols
        ):
            cols.add(total)
    if (
        config.data.imaging is not None
        or config.imaging is not None
        or config.connectivity is not None
    ):
        cols |= {"session", "acquisition_date"}
    return cols


def _add_error(problems: list[Problem], exc: DataValidationError) -> None:
    problems.extend(exc.problem_list)


def _formula_problems(
    config: RunConfig, columns: set[str], *, defer_imaging: bool, source: str
) -> list[Problem]:
    """A problem for every model whose formula or time names an unknown column."""
    from alsprog.data._dictionary import load_dictionary

    dd = load_dictionary()
    out = []

    def unknown(names: list[str]) -> list[str]:
        return [
            n
            for n in names
            if n not in columns and not (defer_imaging and dd.is_imaging_feature(n))
        ]

    for m in config.models:
        out += _model_problems(config, m, columns, unknown, source)
    out += _survival_problems(config, unknown, source)
    for key, col in (
        ("data.outcome", config.data.outcome),
        ("data.time", config.data.time),
    ):
        if col not in columns:
            out.append(
                Problem(
                    f"key {key}: column {col!r} is not in the data",
                    rule="unknown_column",
                    source=source,
                    value=col,
                )
            )
    return out


def _survival_problems(config: RunConfig, unknown: Any, source: str) -> list[Problem]:
    """The survival formula's columns against the data's, when the user wrote the
    formula (the default one, on data without its columns, is skipped by the
    survival stage with a note)."""
    from alsprog.models.survival._design import parse_surv_formula, rhs_variables
    from alsprog.report._schema import DEFAULT_SURVIVAL_FORMULA

    sv = config.survival
    if not sv.enabled or sv.formula == DEFAULT_SURVIVAL_FORMULA:
        return []
    try:
        f = parse_surv_formula(sv.formula)
        names = [*f.columns, *rhs_variables(f.rhs)]
    except ModelSpecificationError as exc:
        return [Problem(f"key survival.formula: {exc}", rule="config", source=source)]
    bad = unknown(names)
    if not bad:
        return []
    return [
        Problem(
            f"key survival.formula: {sv.formula!r} names unknown column(s) "
            f"{', '.join(map(repr, bad))}",
            rule="unknown_column",
            source=source,
            value=sv.formula,
        )
    ]


def _model_problems(
    config: RunConfig, m: ModelConfig, columns: set[str], unknown: Any, source: str
) -> list[Problem]:
    """A model's formulas (``formula``, ``*_formula``) and the columns its
    parameters name (the class's ``column_params``) against the data's columns."""
    from alsprog._formula_text import check_formula
    from alsprog.models.registry import MODELS

    cls: Any = MODELS[m.type]
    params = model_params(config, m)
    first = [k for k in ("formula", "time") if k in params]
    out = []
    for key in [*first, *(k for k in params if k not in first)]:
        value = params[key]
        if not isinstance(value, str):
            continue
        where = f"key models.{m.name}.{key}"
        if key == "formula" or key.endswith("_formula"):
            try:
                names = (
                    formula_variables(value)
                    if key == "formula"
                    else list(
                        check_formula(_rhs(key, value), kind="rhs", what=key).variables
                    )
                )
            except ModelSpecificationError as exc:
                out.append(Problem(f"{where}: {exc}", rule="config", source=source))
                continue
            bad = unknown(names)
            if bad:
                out.append(
                    Problem(
                        f"{where}: {value!r} names unknown column(s) "
                        f"{', '.join(map(repr, bad))}; the data will have "
                        f"{', '.join(sorted(columns))}",
                        rule="unknown_column",
                        source=source,
                        value=value,
                    )
                )
        elif key in cls.column_params:
            missing = value not in columns if key == "time" else unknown([value])
            if missing:
                what = "time column" if key == "time" else "column"
                out.append(
                    Problem(
                        f"{where}: {what} {value!r} is not in the data",
                        rule="unknown_column",
                        source=source,
                        value=value,
                    )
                )
    return out


def _rhs(key: str, value: str) -> str:
    """A right-hand-side formula key's text as its model reads it: the latent-class
    model's ``class_formula`` is lcmm's ``classmb``, written ``"~ delta_fs"``, and
    its model drops the ``~``; the other keys take no ``~``."""
    text = value.strip()
    if key == "class_formula" and text.startswith("~"):
        return text[1:].strip()
    return value


def run_inputs(config: RunConfig) -> dict[str, Path]:
    """Every input of a run by name: the config file and the paths it names."""
    inputs = dict(config.input_paths())
    if config.path is not None:
        inputs["config"] = config.path
    return inputs


def _out_problems(
    config: RunConfig, out: Path, source: str, *, force: bool = False
) -> list[Problem]:
    """The output folder against alsprog's one rule (:mod:`alsprog._io`): a new or
    empty folder, or one alsprog wrote (a re-run from its own copies included); never
    an input, a folder holding one, or one inside an input folder."""
    from alsprog._io import out_folder_problems

    return [
        Problem(msg, rule="output", source=source)
        for msg in out_folder_problems(
            out, inputs=run_inputs(config), force=force, rerun_in_place=True
        )
    ]


def check_run(config: RunConfig, out: Path, *, force: bool = False) -> CheckResult:
    """Every problem of a run that can be found before fitting.

    Reads the visits, subjects and imaging tables (each problem with its file, line,
    subject and column), assembles them to find cross-table problems, checks each
    model's formula and time column against the columns the data will have, and
    checks that alsprog may write the output folder (new, empty or written by alsprog,
    holding no input: :func:`alsprog._io.out_folder_problems`).

    Parameters
    ----------
    config : RunConfig
    out : pathlib.Path
        The output folder.
    force : bool, default False
        Accept a non-empty output folder alsprog did not write (its files are kept).

    Returns
    -------
    CheckResult
        ``problems`` (empty when the run can go on) and, when the tables are valid,
        the assembled ``table`` (imaging from ``data.imaging`` only).
    """
    from alsprog.data import assemble, read_imaging, read_subjects, read_visits

    source = str(config.path) if config.path is not None else "run config"
    res = CheckResult()
    res.problems += _out_problems(config, out, source, force=force)
    tables: dict[str, Any] = {}
    for key, reader in (
        ("visits", read_visits),
        ("subjects", read_subjects),
        ("imaging", read_imaging),
    ):
        p = getattr(config.data, key)
        if p is None or not p.is_file():
            continue  # a missing path is a config problem already
        try:
            tables[key] = reader(p, rename=config.data.rename)
        except DataValidationError as exc:
            _add_error(res.problems, exc)
    if config.data.proact is not None and config.data.proact.is_dir():
        from alsprog.data import read_proact

        try:
            res.proact = read_proact(config.data.proact)
            tables["visits"] = res.proact.visits
            tables["subjects"] = res.proact.subjects
        except DataValidationError as exc:
            _add_error(res.problems, exc)
    res.columns = _expected_columns(config, res.proact)
    ok = {"visits", "subjects"} <= set(tables) and (
        config.data.imaging is None or "imaging" in tables
    )
    if ok:
        visits, subjects = config.data.visits, config.data.subjects
        if res.proact is not None:
            visits, subjects = res.proact.visits, res.proact.subjects
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res.table = assemble(
                    visits,
                    subjects,
                    config.data.imaging,
                    window_days=config.data.window_days,
                    rename=config.data.rename,
                )
            for w in caught:
                if issubclass(w.category, AlsprogWarning):
                    res.warnings.append(str(w.message))
                else:
                    res.library_warnings.append(f"{w.category.__name__}: {w.message}")
            res.columns |= set(res.table.columns)
        except DataValidationError as exc:
            _add_error(res.problems, exc)

    # the columns are known only when the visits and subjects headers could be read;
    # without a readable imaging table, imaging-feature names are given the benefit
    # of the doubt
    def readable(p: Path | None) -> bool:
        return p is not None and p.is_file() and bool(_headers(p))

    if res.proact is not None or (
        readable(config.data.visits) and readable(config.data.subjects)
    ):
        defer = (
            config.imaging is not None
            or config.connectivity is not None
            or (config.data.imaging is not None and not readable(config.data.imaging))
        )
        res.problems += _formula_problems(
            config, res.columns, defer_imaging=defer, source=source
        )
    return res


def check_columns_after_assembly(
    config: RunConfig, table: pd.DataFrame
) -> list[Problem]:
    """Formula and time columns against the assembled table (NIfTI features in)."""
    source = str(config.path) if config.path is not None else "run config"
    return _formula_problems(
        config, set(table.columns), defer_imaging=False, source=source
    )
