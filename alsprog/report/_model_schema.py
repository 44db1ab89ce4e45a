"""The ``[models.NAME]`` keys of a run config, read from the model registry.

Owns: :func:`model_keys` (the section's keys: ``type`` with the registered type
names as choices, then every constructor parameter of a registered model that a
TOML file can hold, with its type from the annotation, its choices from a
``Literal``, its range from the class's ``param_ranges``, its default from the
constructor and its meaning from the class docstring's numpydoc Parameters
section), :func:`data_keys` (the keys a run fills in from ``[data]`` when a model's
section leaves them out) and :func:`model_defaults` (a type's defaults).
Leaves: the registry and the defaults themselves to :mod:`alsprog.models.registry`
and the model classes; checking values to :mod:`alsprog.report._config`.

The run supplies ``seed`` (derived from ``run.seed``) and ``progress``; a parameter
TOML cannot hold (a mapping of priors) is left to the Python API.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from typing import Any

from alsprog.models._contract import parse_range
from alsprog.models.registry import MODELS, REQUIRED, config_keys
from alsprog.report._key import Key, Shown

__all__ = [
    "RUN_SUPPLIED",
    "data_keys",
    "model_defaults",
    "model_keys",
    "param_help",
]

#: Constructor parameters the run sets itself (never config keys).
RUN_SUPPLIED = ("seed", "progress")

_SCALAR = {bool: "bool", int: "int", float: "float", str: "str"}


_REQUIRED_TEXT = Shown("required")
_DATA_TEXT = Shown("from `[data]`")


def _kind(annotation: Any) -> tuple[str, tuple[Any, ...] | None] | None:
    """The schema kind (and ``Literal`` choices) of an annotation, None when TOML
    cannot hold it."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _kind(args[0]) if len(args) == 1 else None
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return "str", tuple(values)
        return None
    if origin in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if args and all(a is str for a in args):
            return "strs", None
        if args and all(a in (float, int) for a in args):
            return "floats", None
        return None
    if annotation in _SCALAR:
        return _SCALAR[annotation], None
    return None


_PARAM_LINE = re.compile(r"^(\w[\w, ]*?)\s*:\s*(.*)$")


def _parameters_section(doc: str) -> dict[str, str]:
    """Each parameter's description in a numpydoc docstring (grouped names share
    one), as one line."""
    lines = inspect.cleandoc(doc).splitlines()
    out: dict[str, str] = {}
    try:
        start = next(
            i
            for i, line in enumerate(lines[:-1])
            if line.strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"}
        )
    except StopIteration:
        return out
    names: list[str] = []
    text: list[str] = []

    def flush() -> None:
        for n in names:
            out[n] = " ".join(text).strip()

    for i in range(start + 2, len(lines)):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and set(nxt.strip()) == {"-"} and not line.startswith(" "):
            break  # the next section
        m = _PARAM_LINE.match(line) if not line.startswith(" ") else None
        if m:
            flush()
            names = [n.strip() for n in m.group(1).split(",")]
            text = []
        elif line.strip():
            text.append(line.strip())
    flush()
    return out


_SENTENCE = re.compile(r"(?<!e\.g)(?<!i\.e)(?<!\bvs)\.(\s|$)")


def param_help(cls: type, name: str) -> str:
    """The first sentence of parameter ``name``'s description in ``cls``'s
    docstring, in Markdown (``code`` in single backticks, roles dropped).

    Examples
    --------
    >>> print(param_help(MODELS["mixed"], "reml"))
    REML (`True`, lme4's default) or maximum likelihood.
    """
    text = _parameters_section(cls.__doc__ or "").get(name, "")
    m = _SENTENCE.search(text)
    if m is not None:
        text = text[: m.start() + 1]
    text = re.sub(r":\w+:`~?([^`]+)`", lambda g: f"`{g.group(1).split('.')[-1]}`", text)
    return text.replace("``", "`")


def data_keys(cls: type) -> tuple[str, ...]:
    """The keys a run fills from ``[data]`` when a section of type ``cls`` leaves
    them out (``TrajectoryModel.data_defaults``), required ones excepted."""
    filled = cls.data_defaults({}, outcome="outcome", time="time")  # type: ignore[attr-defined]
    required = {k.name for k in config_keys(cls) if k.default is REQUIRED}
    return tuple(k for k in filled if k not in required)


def model_defaults(cls: type) -> dict[str, Any]:
    """A type's config defaults: its constructor's, for the keys a config may give
    that the run does not fill from ``[data]`` (required keys have none)."""
    keys = {k.name for k in model_keys() if k.name != "type"}
    skip = set(data_keys(cls))
    return {
        k.name: k.default
        for k in config_keys(cls)
        if k.name in keys and k.name not in skip and k.default is not REQUIRED
    }


def model_keys() -> tuple[Key, ...]:
    """Every key of ``[models.NAME]``, from the registry as it is now."""
    types_ = list(MODELS)
    out = [
        Key(
            "type",
            "str",
            None,
            "The model: "
            + ", ".join(f"`{n}` ({MODELS[n].__name__})" for n in types_)
            + " (`alsprog.models.registry`).",
            choices=tuple(types_),
            required=True,
        )
    ]
    found: dict[str, dict[str, Any]] = {}
    for tname in types_:
        cls = MODELS[tname]
        filled = set(data_keys(cls))
        ranges = getattr(cls, "param_ranges", {})
        for k in config_keys(cls):
            if k.name in RUN_SUPPLIED:
                continue
            kind = _kind(k.type)
            if kind is None:
                continue
            entry = found.setdefault(
                k.name,
                {
                    "kind": kind,
                    "help": "",
                    "defaults": {},
                    "range": {},
                    "types": [],
                    "choices": {},
                },
            )
            entry["types"].append(tname)
            entry["choices"][tname] = kind[1]
            if not entry["help"]:
                entry["help"] = param_help(cls, k.name)
            if k.name in ranges and not entry["range"]:
                entry["range"] = parse_range(ranges[k.name])
            if k.default is REQUIRED:
                entry["defaults"][tname] = _REQUIRED_TEXT
            elif k.name in filled:
                entry["defaults"][tname] = _DATA_TEXT
            else:
                entry["defaults"][tname] = k.default
    for name, e in found.items():
        kind, choices = e["kind"], e["kind"][1]
        own = e["choices"]
        by_choice = None
        if any(c != choices for c in own.values()):  # e.g. each model's `ddf`
            union = [c for cs in own.values() for c in cs or ()]
            choices = tuple(dict.fromkeys(union))
            by_choice = tuple((t, tuple(c or ())) for t, c in own.items())
        per_type = e["defaults"]
        firsts = list(per_type.values())
        common = all(_same(v, firsts[0]) for v in firsts)
        out.append(
            Key(
                name,
                kind[0],
                firsts[0] if common else None,
                e["help"],
                choices=choices,
                applies=None if len(e["types"]) == len(types_) else tuple(e["types"]),
                by_type=None if common else tuple(per_type.items()),
                choices_by_type=by_choice,
                **e["range"],
            )
        )
    return tuple(out)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
