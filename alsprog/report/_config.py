"""The run configuration: a TOML file read into a frozen dataclass tree.

Owns: the frozen dataclass tree of a run (:class:`RunConfig`), :func:`load_config` (TOML via ``tomllib``;
every problem collected and raised at once as one :class:`ConfigError` naming the key
and the value; paths resolved relative to the config file), :func:`dump_config` (the
effective config back to TOML) and :class:`ConfigError`.
Leaves: checking the data the config names (tables, formulas against columns) to
:mod:`alsprog.report._check`; running it to :mod:`alsprog.report._run`.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

from alsprog._random import DEFAULT_SEED
from alsprog.biomarkers._pvalue import DEFAULT_N_PERMUTATIONS
from alsprog.errors import ConfigError, ModelSpecificationError, Problem
from alsprog.models.registry import MODELS, REQUIRED, config_keys
from alsprog.report._model_schema import model_defaults
from alsprog.report._schema import (
    _TYPE_TEXT,
    DEFAULT_COURSE_OUTCOMES,
    DEFAULT_SURVIVAL_FORMULA,
    SCHEMA,
    Key,
    Method,
    Statistic,
    _range_text,
    _toml_value,
    _types_text,
)

__all__ = [
    "BiomarkersConfig",
    "ConfigError",
    "DataConfig",
    "DesignConfig",
    "ForecastConfig",
    "ConnectivityConfig",
    "ImagingConfig",
    "ModelConfig",
    "ReportConfig",
    "RunConfig",
    "RunSettings",
    "SurvivalConfig",
    "dump_config",
    "load_config",
]


_MODEL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")

#: An example value named in the message of a missing required model key.
_EXAMPLES = {"formula": "'alsfrs_r_total ~ months + (months | subject_id)'"}


def _is_mixed(type_name: str) -> bool:
    """Whether a model type gives the design its variance components (a linear
    mixed model with a random intercept and slope)."""
    from alsprog.models.lmm._model import LinearMixedModel

    return issubclass(MODELS[type_name], LinearMixedModel)


# -------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class RunSettings:
    """``[run]``: title, seed, output folder, workers, how inputs are kept."""

    title: str = "alsprog analysis"
    seed: int = DEFAULT_SEED
    out: Path = Path("output")
    n_jobs: int = 1
    inputs: Literal["auto", "copy", "link", "none"] = "auto"


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: the input tables and the outcome."""

    visits: Path | None = None
    subjects: Path | None = None
    imaging: Path | None = None
    proact: Path | None = None
    window_days: float = 45.0
    outcome: str = "alsfrs_r_total"
    time: str = "months"
    rename: dict[str, str] | None = None


@dataclass(frozen=True)
class ImagingConfig:
    """``[imaging]``: NIfTI derivatives and atlas for ROI feature extraction."""

    root: Path
    atlas: Path
    labels: Path | None = None
    stats: tuple[Statistic, ...] = ("mean",)
    metrics: tuple[str, ...] | None = None
    metrics_by_region: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ConnectivityConfig:
    """``[connectivity]``: resting-state BOLD runs and atlas for connectivity features.

    ``edges`` and ``networks`` keep the config's text (``"a--b"``,
    ``"motor=precentral_*,cst_*"``); :attr:`edge_pairs` and :attr:`network_map` are
    the forms :func:`~alsprog.imaging.extract_connectivity` takes.
    """

    root: Path
    atlas: Path
    labels: Path | None = None
    kind: Literal["correlation", "partial correlation", "tangent"] = "correlation"
    confounds: tuple[str, ...] | None = None
    high_pass: float = 0.008
    low_pass: float = 0.1
    t_r: float | None = None
    detrend: bool = True
    standardize: bool = True
    edges: tuple[str, ...] | None = None
    networks: tuple[str, ...] | None = None

    @property
    def edge_pairs(self) -> list[tuple[str, str]] | None:
        """``edges`` as (region, region) pairs; None for every pair."""
        if self.edges is None:
            return None
        return [_edge_pair(e) for e in self.edges]

    @property
    def network_map(self) -> dict[str, list[str]] | None:
        """``networks`` as ``{name: [patterns]}``; None without networks."""
        if self.networks is None:
            return None
        return dict(_network_entry(n) for n in self.networks)


def _edge_pair(text: str) -> tuple[str, str]:
    """``"a--b"`` -> ``("a", "b")``; ValueError saying what is expected."""
    parts = [p.strip() for p in text.split("--")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(
            f"{text!r} is not a region pair written REGION--REGION "
            "(e.g. 'precentral_left--precentral_right')"
        )
    if parts[0] == parts[1]:
        raise ValueError(f"{text!r} joins a region to itself")
    return parts[0], parts[1]


_NETWORK_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def _network_entry(text: str) -> tuple[str, list[str]]:
    """``"motor=precentral_*,cst_*"`` -> ``("motor", ["precentral_*", "cst_*"])``."""
    name, sep, members = text.partition("=")
    name = name.strip()
    pats = [m.strip() for m in members.split(",")]
    if not sep or not all(pats):
        raise ValueError(
            f"{text!r} is not a network written NAME=REGION,REGION (shell patterns "
            "allowed, e.g. 'motor=precentral_*,cst_*')"
        )
    if not _NETWORK_NAME.fullmatch(name):
        raise ValueError(
            f"network name {name!r} in {text!r} must be lower-case letters, digits "
            "and single underscores, starting with a letter (it names the feature "
            "column fcnet_<name>)"
        )
    return name, pats


@dataclass(frozen=True)
class ModelConfig:
    """``[models.<name>]``: one trajectory model of a registered type.

    Attributes
    ----------
    name : str
        The section's name (``lmm``), which names the model's outputs.
    type : str
        A type of :data:`alsprog.models.registry.MODELS`.
    params : mapping of str to object
        Constructor arguments: the section's keys over the constructor's defaults
        (the keys the run fills from ``[data]``, e.g. ``time``, only when given).
        Each is also an attribute (``m.chains``); a key of the type that is not
        set reads as None.
    """

    name: str
    type: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_") or key in ("name", "type", "params"):
            raise AttributeError(key)
        params = self.__dict__.get("params", {})
        if key in params:
            return params[key]
        from alsprog.report._model_schema import model_keys

        if any(k.name == key for k in model_keys()):
            return None
        raise AttributeError(
            f"{type(self).__name__} {self.__dict__.get('name')!r} has no key {key!r}"
        )


@dataclass(frozen=True)
class ForecastConfig:
    """``[forecast]``: backtest and forecast settings."""

    enabled: bool = True
    history_months: float = 3.0
    horizons: tuple[float, ...] = (6.0, 12.0)
    test_fraction: float = 0.2
    level: float = 0.9
    models: tuple[str, ...] | None = None
    baselines: tuple[str, ...] = ("delta_fs", "patient_ols", "random_forest")
    recalibrate: Literal["none", "band", "shift"] = "none"
    n_patients: int = 4


@dataclass(frozen=True)
class SurvivalConfig:
    """``[survival]``: the survival model, its scores and risk groups."""

    enabled: bool = True
    formula: str = DEFAULT_SURVIVAL_FORMULA
    method: Literal["flexible", "cox"] = "flexible"
    scale: Literal["hazard", "odds", "normal"] = "hazard"
    df: int = 3
    time_origin: Literal["onset", "baseline"] = "onset"
    times: tuple[float, ...] = (6.0, 12.0, 18.0, 24.0)
    n_groups: int = 5
    landmark: float = 6.0
    test_fraction: float = 0.3


@dataclass(frozen=True)
class CourseConfig:
    """``[course]``: the multivariate disease-course model."""

    enabled: bool = False
    outcomes: tuple[str, ...] = DEFAULT_COURSE_OUTCOMES
    offsets: tuple[str, ...] | None = None
    time: str = "months_since_onset"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    max_patients: int = 0
    threshold: float = 0.5


@dataclass(frozen=True)
class DesignConfig:
    """``[design]``: the trial-design questions."""

    enabled: bool = True
    model: str | None = None
    slowing: tuple[float, ...] = (0.25, 0.3, 0.5)
    visit_months: tuple[float, ...] = (0.0, 3.0, 6.0, 9.0, 12.0)
    power: float = 0.8
    alpha: float = 0.05
    methods: tuple[Method, ...] = ("edland",)
    retention: tuple[float, ...] | None = None
    n_sims: int = 200
    endpoints: tuple[str, ...] = ("slope", "cafs", "win_ratio", "survival")
    hazard_ratios: tuple[float, ...] = (1.0, 0.8)
    sources: tuple[str, ...] = ("course", "cohort")
    endpoint_sims: int = 200


@dataclass(frozen=True)
class BiomarkersConfig:
    """``[biomarkers]``: the imaging classifier and progression markers."""

    enabled: bool = True
    features: tuple[str, ...] | None = None
    estimator: Literal["logistic", "svm", "rf", "mlp"] = "logistic"
    compare: tuple[str, ...] = ("logistic", "svm", "mlp")
    harmonize: Literal["combat", "none"] = "combat"
    cv: Literal["subject", "site"] | int = "subject"
    n_permutations: int = DEFAULT_N_PERMUTATIONS
    n_bootstrap: int = 500


@dataclass(frozen=True)
class ReportConfig:
    """``[report]``: what the report draws."""

    n_subjects: int = 4
    n_features: int = 4
    level: float = 0.9


@dataclass(frozen=True)
class RunConfig:
    """A whole run: every section, paths absolute.

    Attributes
    ----------
    path : pathlib.Path or None
        The config file (``None`` when built in code).
    run, data, imaging, models, forecast, survival, course, design, biomarkers, report
        The sections; ``imaging`` is ``None`` without NIfTI inputs; ``models`` is a
        tuple of :class:`ModelConfig` in file order.
    """

    data: DataConfig
    run: RunSettings = field(default_factory=RunSettings)
    imaging: ImagingConfig | None = None
    connectivity: ConnectivityConfig | None = None
    models: tuple[ModelConfig, ...] = ()
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    survival: SurvivalConfig = field(default_factory=SurvivalConfig)
    course: CourseConfig = field(default_factory=CourseConfig)
    design: DesignConfig = field(default_factory=DesignConfig)
    biomarkers: BiomarkersConfig = field(default_factory=BiomarkersConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    path: Path | None = None

    def model(self, name: str) -> ModelConfig:
        """The model called ``name``."""
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def input_paths(self) -> dict[str, Path]:
        """Every input path by its config key (``data.visits``, ``imaging.root``...)."""
        out = {}
        for key in ("visits", "subjects", "imaging", "proact"):
            p = getattr(self.data, key)
            if p is not None:
                out[f"data.{key}"] = p
        if self.imaging is not None:
            for key in ("root", "atlas", "labels"):
                p = getattr(self.imaging, key)
                if p is not None:
                    out[f"imaging.{key}"] = p
        if self.connectivity is not None:
            for key in ("root", "atlas", "labels"):
                p = getattr(self.connectivity, key)
                if p is not None:
                    out[f"connectivity.{key}"] = p
        return out


# ------------------------------------------------------------------ parsing
class _Collector:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def add(self, key: str, message: str, value: Any = None) -> None:
        self.problems.append(
            Problem(
                f"key {key}: {message}", rule="config", source=self.source, value=value
            )
        )


def _type_ok(k: Key, v: Any) -> bool:
    if k.kind in ("str", "path"):
        return isinstance(v, str)
    if k.kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if k.kind == "float":
        return isinstance(v, int | float) and not isinstance(v, bool)
    if k.kind == "bool":
        return isinstance(v, bool)
    if k.kind == "floats":
        return isinstance(v, list) and all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in v
        )
    if k.kind == "strs":
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if k.kind == "cv":
        return (isinstance(v, str)) or (isinstance(v, int) and not isinstance(v, bool))
    if k.kind == "map":
        return isinstance(v, dict)
    raise AssertionError(k.kind)


def _is_fraction(k: Key) -> bool:
    return k.low == 0 and k.high == 1


def _percent_hint(k: Key, v: Any) -> str:
    """``"; did you mean 0.25?"`` for a fraction given as a whole percentage (25)."""
    if not _is_fraction(k):
        return ""
    values = v if isinstance(v, list) else [v]
    percent = [1 < float(x) <= 100 and float(x).is_integer() for x in values]
    fixed = [
        float(x) / 100 if pc else float(x)
        for x, pc in zip(values, percent, strict=True)
    ]
    if not any(percent) or not all(_in_range(k, x) for x in fixed):
        return ""
    shown = (
        "[" + ", ".join(f"{x:g}" for x in fixed) + "]"
        if isinstance(v, list)
        else f"{fixed[0]:g}"
    )
    return f"; did you mean {shown}? (a fraction, not a percentage)"


def _nearest(word: str, valid: Sequence[str]) -> str:
    """``"did you mean 'n_jobs'? "`` for the valid name closest to ``word``."""
    close = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _in_range(k: Key, x: float) -> bool:
    if not math.isfinite(x):
        return False
    if k.low is not None and (x <= k.low if k.low_open else x < k.low):
        return False
    return not (k.high is not None and (x >= k.high if k.high_open else x > k.high))


def _check_value(k: Key, v: Any, key: str, c: _Collector, base: Path) -> Any:
    """Check one value; return it converted (paths resolved, lists as tuples)."""
    if not _type_ok(k, v):
        c.add(key, f"{v!r} is not a {_TYPE_TEXT[k.kind]}", v)
        return _MISSING
    if k.kind == "path":
        if not v.strip():
            c.add(key, "the path is empty", v)
            return _MISSING
        p = Path(os.path.expanduser(v))
        p = p if p.is_absolute() else (base / p)
        if key != "run.out":
            if not p.exists():
                c.add(key, f"{v!r} does not exist (looked for {p})", v)
            elif key == "data.proact":
                if not p.is_dir():
                    c.add(key, f"{v!r} is not a folder (the unpacked export) ({p})", v)
            elif key not in ("imaging.root", "connectivity.root") and not p.is_file():
                c.add(key, f"{v!r} is not a file ({p})", v)
        return p
    if k.kind in ("int", "float") and (k.low is not None or k.high is not None):
        if not _in_range(k, float(v)):
            c.add(key, f"{v!r} is outside {_range_text(k)}{_percent_hint(k, v)}", v)
            return _MISSING
    if k.name == "n_jobs" and v == 0:
        c.add(key, "0 workers: use a positive number or -1 (all cores)", v)
        return _MISSING
    if k.kind in ("str",) and k.choices is not None and v not in k.choices:
        listed = ", ".join(map(repr, k.choices))
        near = _nearest(v, [str(x) for x in k.choices]).strip()
        c.add(key, f"{v!r} is not one of {listed}" + (f"; {near}" if near else ""), v)
        return _MISSING
    if k.kind == "cv":
        if isinstance(v, str) and v not in ("subject", "site"):
            c.add(key, f"{v!r} is not 'subject', 'site' or a number of folds >= 2", v)
            return _MISSING
        if isinstance(v, int) and v < 2:
            c.add(key, f"{v!r} folds: need at least 2", v)
            return _MISSING
    if k.kind == "map":
        from alsprog.data._validate import rename_problems

        probs = rename_problems(v)
        for text in probs:
            c.add(key, text, v)
        return _MISSING if probs else dict(v)
    if k.kind in ("floats", "strs"):
        if not v and k.allow_empty:
            return ()
        if not v:
            c.add(key, "the list is empty", v)
            return _MISSING
        if k.kind == "floats" and (k.low is not None or k.high is not None):
            bad = [x for x in v if not _in_range(k, float(x))]
            if bad:
                hint = _percent_hint(k, v)
                c.add(key, f"{bad!r} outside {_range_text(k)} (in {v!r}){hint}", v)
                return _MISSING
        if k.kind == "strs" and k.choices is not None:
            bad = [x for x in v if x not in k.choices]
            if bad:
                listed = ", ".join(map(repr, k.choices))
                near = _nearest(bad[0], [str(x) for x in k.choices]).strip()
                text = f"{bad!r} not among {listed}" + (f"; {near}" if near else "")
                c.add(key, text, v)
                return _MISSING
        if len(set(v)) != len(v):
            c.add(key, f"{v!r} repeats a value", v)
            return _MISSING
        return tuple(float(x) for x in v) if k.kind == "floats" else tuple(v)
    if k.kind == "float":
        return float(v)
    return v


_MISSING = object()


def _section(
    raw: Any,
    name: str,
    keys: Sequence[Key],
    c: _Collector,
    base: Path,
    *,
    prefix: str | None = None,
    model_type: str | None = None,
) -> dict[str, Any]:
    """Check one table's keys; return the converted values that passed."""
    prefix = prefix or name
    if not isinstance(raw, Mapping):
        c.add(prefix, f"must be a table ([{prefix}]); got {raw!r}", raw)
        return {}
    known = {k.name: k for k in keys}
    takes = [  # a model type's own keys
        n
        for n, k in known.items()
        if model_type is None or k.applies is None or model_type in k.applies
    ]
    out: dict[str, Any] = {}
    for key, v in raw.items():
        k = known.get(key)
        if k is None:
            valid = ", ".join(sorted(takes))
            c.add(
                f"{prefix}.{key}",
                f"unknown key ({_nearest(key, takes)}valid keys: {valid})",
                v,
            )
            continue
        if (
            k.applies is not None
            and model_type is not None
            and model_type not in k.applies
        ):
            c.add(
                f"{prefix}.{key}",
                f"applies to {_types_text(k.applies)} models only, "
                f"not type {model_type!r}",
                v,
            )
            continue
        value = _check_value(k.for_type(model_type), v, f"{prefix}.{key}", c, base)
        if value is not _MISSING:
            out[key] = value
    for k in keys:
        if k.required and k.name not in raw:
            c.add(f"{prefix}.{k.name}", "is required but missing")
    return out


def _check_course(cc: Mapping[str, Any], c: _Collector) -> None:
    """``[course]``: two or more distinct outcomes, each with a known range; the
    offsets among them."""
    from alsprog.models.bayes._course_graph import DEFAULT_BOUNDS

    outs = list(cc.get("outcomes", DEFAULT_COURSE_OUTCOMES))
    if "outcomes" in cc:
        if len(set(outs)) < 2 or len(set(outs)) != len(outs):
            c.add("course.outcomes", "needs two or more distinct columns", outs)
        for o in outs:
            if o not in DEFAULT_BOUNDS:
                c.add(
                    "course.outcomes",
                    f"{o!r} has no known (normal, floor) range; one of "
                    f"{', '.join(DEFAULT_BOUNDS)}",
                    o,
                )
    for o in cc.get("offsets") or ():
        if o not in outs:
            c.add("course.offsets", f"{o!r} is not one of course.outcomes", o)


def _check_connectivity(cc: dict[str, Any], c: _Collector) -> None:
    """``[connectivity]``: edges and networks well written, the band-pass ordered;
    a key that fails is dropped from ``cc``."""
    for key, parse in (("edges", _edge_pair), ("networks", _network_entry)):
        bad = False
        for text in cc.get(key) or ():
            try:
                parse(text)
            except ValueError as exc:
                c.add(f"connectivity.{key}", str(exc), text)
                bad = True
        if bad:
            cc.pop(key)
    names = [_network_entry(t)[0] for t in cc.get("networks") or ()]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        c.add("connectivity.networks", f"network {twice[0]!r} is given twice", twice)
        cc.pop("networks")
    hp, lp = cc.get("high_pass", 0.008), cc.get("low_pass", 0.1)
    if hp and lp and hp >= lp:
        c.add(
            "connectivity.high_pass",
            f"{hp!r} Hz is not below low_pass ({lp!r} Hz): the band would be empty",
            hp,
        )
        cc.pop("high_pass", None)


def _parse(raw: Mapping[str, Any], base: Path, c: _Collector) -> RunConfig | None:
    """Build a RunConfig from parsed TOML, collecting every problem in ``c``."""
    for name in raw:
        if name not in SCHEMA:
            valid = ", ".join(f"[{s}]" for s in SCHEMA)
            close = difflib.get_close_matches(name, list(SCHEMA), n=1, cutoff=0.6)
            near = f"did you mean [{close[0]}]? " if close else ""
            c.add(name, f"unknown section ({near}valid sections: {valid})", raw[name])
    values: dict[str, dict[str, Any]] = {}
    for name, keys in SCHEMA.items():
        if name == "models" or name not in raw:
            continue
        values[name] = _section(raw[name], name, keys, c, base)
    if "data" not in raw:
        c.add(
            "data",
            "the [data] section is required (visits and subjects tables, or a PRO-ACT "
            "export: proact)",
        )

    models: list[ModelConfig] = []
    raw_models = raw.get("models", {})
    if not isinstance(raw_models, Mapping):
        c.add(
            "models", f"must be tables [models.<name>]; got {raw_models!r}", raw_models
        )
        raw_models = {}
    for mname, spec in raw_models.items():
        prefix = f"models.{mname}"
        if not _MODEL_NAME.fullmatch(mname):
            c.add(
                prefix,
                f"model name {mname!r} must start with a letter and hold only letters, "
                "digits, '_' or '-' (it names output files)",
                mname,
            )
            continue
        mtype = spec.get("type") if isinstance(spec, Mapping) else None
        mtype = mtype if isinstance(mtype, str) and mtype in MODELS else None
        got = _section(
            spec, "models", SCHEMA["models"], c, base, prefix=prefix, model_type=mtype
        )
        if mtype is not None and isinstance(spec, Mapping):
            for ck in config_keys(MODELS[mtype]):
                if ck.default is REQUIRED and ck.name not in spec:
                    eg = _EXAMPLES.get(ck.name, "")
                    c.add(
                        f"{prefix}.{ck.name}",
                        f"is required for a {mtype} model"
                        + (f", e.g. {eg}" if eg else ""),
                    )
        if "type" in got:
            mtype = got.pop("type")
            params = {**model_defaults(MODELS[mtype]), **got}
            order = [k.name for k in config_keys(MODELS[mtype])]
            params = {k: params[k] for k in order if k in params}
            models.append(ModelConfig(name=mname, type=mtype, params=params))

    names = [m.name for m in models]
    fc = values.get("forecast", {})
    if fc.get("recalibrate", "none") != "none":
        for n in names:
            if f"{n}_recalibrated" in names:
                c.add(
                    "forecast.recalibrate",
                    f"the recalibrated copy of {n!r} would be named "
                    f"'{n}_recalibrated', which is already a model in [models]",
                    fc["recalibrate"],
                )
    for key in ("models",):
        for ref in fc.get(key) or ():
            if ref not in names:
                c.add(
                    f"forecast.{key}",
                    f"{ref!r} is not a model in [models] ({names})",
                    ref,
                )
    sv = values.get("survival", {})
    if "formula" in sv:
        from alsprog.models.survival._design import parse_surv_formula

        try:
            parse_surv_formula(sv["formula"])
        except ModelSpecificationError as exc:
            c.add("survival.formula", str(exc), sv["formula"])
    _check_course(values.get("course", {}), c)
    _check_connectivity(values.get("connectivity", {}), c)
    dc = values.get("design", {})
    ref = dc.get("model")
    if ref is not None:
        m = next((m for m in models if m.name == ref), None)
        if m is None:
            c.add("design.model", f"{ref!r} is not a model in [models] ({names})", ref)
        elif not _is_mixed(m.type):
            c.add(
                "design.model",
                f"{ref!r} is a {m.type} model; the design needs a mixed model with a "
                "random intercept and slope",
                ref,
            )
    dv = values.get("design", {})
    if "retention" in dv:
        vm = dv.get("visit_months", DesignConfig.visit_months)
        if len(dv["retention"]) != len(vm):
            c.add(
                "design.retention",
                f"has {len(dv['retention'])} values for {len(vm)} visits "
                "(design.visit_months)",
                list(dv["retention"]),
            )
    data = values.get("data", {})
    if data.get("imaging") is not None and "imaging" in values:
        c.add(
            "data.imaging",
            "give either an imaging-features table (data.imaging) or NIfTI inputs "
            "([imaging] root and atlas), not both",
            str(data["imaging"]),
        )
    raw_data = raw.get("data", {}) if isinstance(raw.get("data"), Mapping) else {}
    if "proact" in raw_data:
        for key in ("visits", "subjects"):
            if key in raw_data:
                c.add(
                    f"data.{key}",
                    "give either the visits and subjects tables or a PRO-ACT export "
                    "(data.proact), not both",
                    raw_data[key],
                )
        if "proact" not in data:
            return None
    else:
        for key in ("visits", "subjects"):
            if "data" in raw and key not in raw_data:
                c.add(f"data.{key}", "is required but missing (or give data.proact)")
        if "visits" not in data or "subjects" not in data:
            return None
    img = values.get("imaging")
    imaging = ImagingConfig(**img) if img and "root" in img and "atlas" in img else None
    con = values.get("connectivity")
    connectivity = (
        ConnectivityConfig(**con) if con and "root" in con and "atlas" in con else None
    )
    return RunConfig(
        data=DataConfig(**data),
        run=RunSettings(**{"out": base / "output", **values.get("run", {})}),
        imaging=imaging,
        connectivity=connectivity,
        models=tuple(models),
        forecast=ForecastConfig(**values.get("forecast", {})),
        survival=SurvivalConfig(**values.get("survival", {})),
        course=CourseConfig(**values.get("course", {})),
        design=DesignConfig(**values.get("design", {})),
        biomarkers=BiomarkersConfig(**values.get("biomarkers", {})),
        report=ReportConfig(**values.get("report", {})),
    )


def parse_config(
    path: str | os.PathLike[str],
) -> tuple[RunConfig | None, list[Problem]]:
    """Read a config file; return the config (None if unusable) and its problems."""
    path = Path(path)
    c = _Collector(str(path.resolve()))
    if not path.is_file():
        c.add("config", f"the config file {str(path)!r} does not exist", str(path))
        return None, c.problems
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        c.problems.append(
            Problem(f"not valid TOML: {exc}", rule="config", source=str(path))
        )
        return None, c.problems
    config = _parse(raw, path.resolve().parent, c)
    if config is not None:
        config = _replace(config, path=path.resolve())
    return config, c.problems


def _replace(obj: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(obj, **changes)


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and check a run configuration (TOML).

    Paths are taken relative to the config file's folder.  Every problem is collected
    first: unknown sections and keys, wrong types, values out of range or not among
    the choices, required keys missing, model references that name no model, and
    input paths that do not exist.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.toml`` file.  Sections: ``[run]``, ``[data]``, ``[imaging]``,
        ``[models.<name>]``, ``[forecast]``, ``[survival]``, ``[design]``, ``[biomarkers]``,
        ``[report]`` (see :data:`SCHEMA` or the README's config reference).

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        Listing every problem, each naming its key and value.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "v.csv").write_text("subject_id,months,alsfrs_r_total\\nP1,0,40\\n")
    >>> _ = (d / "s.csv").write_text("subject_id,group\\nP1,als\\n")
    >>> _ = (d / "run.toml").write_text('''
    ... [data]
    ... visits = "v.csv"
    ... subjects = "s.csv"
    ... [models.lmm]
    ... type = "mixed"
    ... formula = "alsfrs_r_total ~ months + (months | subject_id)"
    ... ''')
    >>> cfg = load_config(d / "run.toml")
    >>> cfg.models[0].name, cfg.data.visits.name, cfg.forecast.horizons
    ('lmm', 'v.csv', (6.0, 12.0))
    >>> _ = (d / "bad.toml").write_text('[data]\\nvisits = "none.csv"\\nsubjects = 3\\n')
    >>> load_config(d / "bad.toml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    alsprog.errors.ConfigError: .../bad.toml: 2 problems
      key data.visits: 'none.csv' does not exist (looked for .../none.csv)
      key data.subjects: 3 is not a path
    """
    config, problems = parse_config(path)
    if problems or config is None:
        raise ConfigError(problems, source=str(Path(path).resolve()))
    return config


# ------------------------------------------------------------------ dumping
def _dump_fields(obj: Any, skip: Sequence[str] = ()) -> list[str]:
    lines = []
    for f in fields(obj):
        if f.name in skip:
            continue
        v = getattr(obj, f.name)
        if v is None:
            continue
        lines.append(f"{f.name} = {_toml_value(v)}")
    return lines


def dump_config(config: RunConfig, *, relative_to: Path | None = None) -> str:
    """The config as TOML, every key written (defaults included).

    Parameters
    ----------
    config : RunConfig
    relative_to : pathlib.Path, optional
        Write paths under this folder relative to it (for a config that travels
        with its inputs).

    Returns
    -------
    str
        TOML text that :func:`load_config` reads back to an equal config.
    """

    def rel(obj: Any) -> Any:
        if relative_to is None or not is_dataclass(obj):
            return obj
        changes = {}
        for f in fields(obj):
            v = getattr(obj, f.name)
            if isinstance(v, Path):
                try:
                    changes[f.name] = Path(os.path.relpath(v, relative_to))
                except ValueError:  # another drive (Windows)
                    pass
        return _replace(obj, **changes) if changes else obj

    parts = [
        "# alsprog run configuration (every key; see the README's config reference)"
    ]
    for name in ("run", "data", "imaging", "connectivity"):
        section = getattr(config, name)
        if section is None:
            continue
        parts += ["", f"[{name}]", *_dump_fields(rel(section))]
    for m in config.models:
        values = {"type": m.type, **m.params}
        lines = [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
        parts += ["", f"[models.{m.name}]", *lines]
    for name in ("forecast", "survival", "course", "design", "biomarkers", "report"):
        parts += ["", f"[{name}]", *_dump_fields(getattr(config, name))]
    return "\n".join(parts) + "\n"
