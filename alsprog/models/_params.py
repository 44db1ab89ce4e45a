"""A model's parameters as declared once: its constructor and ``param_ranges``.

Owns: :func:`config_keys` (a model class's constructor parameters, their defaults
and types: the one place defaults are declared), :class:`ConfigKey`,
:data:`REQUIRED`, :func:`parse_range` (the interval text of ``param_ranges``) and
:func:`check_declared` (a model's parameter values against those declarations,
which ``TrajectoryModel.check_params`` runs before a fit).
Leaves: the registry of names to :mod:`alsprog.models.registry` (which re-exports
:func:`config_keys`); reading a run config to :mod:`alsprog.report`.
Imports nothing of alsprog's models, so the contract and the registry both use it.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, NamedTuple

from alsprog._validation import check_choice, check_int, check_interval

__all__ = ["REQUIRED", "ConfigKey", "check_declared", "config_keys", "parse_range"]


class ConfigKey(NamedTuple):
    """One configuration key of a model: its constructor parameter."""

    name: str
    #: The constructor's default; :data:`REQUIRED` when it has none.
    default: Any
    #: The annotation, resolved where possible (else its text).
    type: Any


#: The ``default`` of a key the constructor requires.
REQUIRED = inspect.Parameter.empty


def config_keys(cls: type) -> tuple[ConfigKey, ...]:
    """The configuration keys of a model class, from its constructor signature.

    The constructor is the one place a model's defaults are declared; the config
    schema, its checks and the command line read them here.

    Examples
    --------
    >>> from alsprog.models import LinearMixedModel
    >>> keys = {k.name: k for k in config_keys(LinearMixedModel)}
    >>> keys["reml"].default, keys["reml"].type
    (True, <class 'bool'>)
    >>> keys["formula"].default is REQUIRED
    True
    """
    init = cls.__init__  # type: ignore[misc]
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # a name only imported for type checkers
        hints = {}
    out = []
    for p in inspect.signature(init).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append(ConfigKey(p.name, p.default, hints.get(p.name, p.annotation)))
    return tuple(out)


_RANGE = re.compile(r"\s*([\[(])\s*([^,]+),\s*([^\])]+)([\])])\s*")


def parse_range(text: str) -> dict[str, Any]:
    """``"(0, 1)"`` -> ``low``, ``high`` (None when infinite), ``low_open``,
    ``high_open``: the interval text of :attr:`TrajectoryModel.param_ranges`.

    Examples
    --------
    >>> parse_range("[1, inf]")
    {'low': 1.0, 'high': None, 'low_open': False, 'high_open': False}
    """
    m = _RANGE.fullmatch(text)
    if m is None:
        raise ValueError(f"not an interval: {text!r} (write e.g. '[1, inf]')")
    lo, hi = float(m.group(2)), float(m.group(3))
    return {
        "low": None if lo == float("-inf") else lo,
        "high": None if hi == float("inf") else hi,
        "low_open": m.group(1) == "(",
        "high_open": m.group(4) == ")",
    }


@functools.cache
def _declared_choices(cls: type) -> tuple[tuple[str, Any, tuple[Any, ...] | None], ...]:
    """Per constructor parameter of ``cls``: its name, its scalar type (``int``,
    ``float``, ``bool``, ``str`` or None) and its allowed values (a ``Literal``'s,
    ``(True, False)`` for a bool; ``None`` added where the annotation allows it;
    None when any value of the type is allowed)."""
    out = []
    for key in config_keys(cls):
        ann, optional = key.type, False
        if typing.get_origin(ann) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            optional = len(args) < len(typing.get_args(ann))
            ann = args[0] if len(args) == 1 else None
        choices: tuple[Any, ...] | None = None
        kind: Any = ann if ann in (int, float, bool, str) else None
        if typing.get_origin(ann) is typing.Literal:
            choices = typing.get_args(ann)
        elif ann is bool:
            choices = (True, False)
        if choices is not None and optional:
            choices = (*choices, None)
        out.append((key.name, kind, choices))
    return tuple(out)


def check_declared(cls: type, values: Mapping[str, Any]) -> None:
    """Check a model's parameter ``values`` against ``cls``'s declarations: its
    constructor's annotations (``Literal`` choices, ``bool``) and its
    ``param_ranges`` (see ``TrajectoryModel.check_params``).

    Examples
    --------
    >>> class Flat:
    ...     param_ranges = {"n": "(0, inf]"}
    ...     def __init__(self, n: int = 3):
    ...         self.n = n
    >>> check_declared(Flat, {"n": 0})
    Traceback (most recent call last):
    ...
    ValueError: `n` must be an integer >= 1; got 0.
    """
    ranges: Mapping[str, str] = getattr(cls, "param_ranges", {})
    for name, kind, choices in _declared_choices(cls):
        if name not in values:
            continue
        value = values[name]
        if name in ranges:
            r = parse_range(ranges[name])
            if kind is int:
                lo, hi = r["low"], r["high"]
                if lo is not None:
                    lo = math.floor(lo) + 1 if r["low_open"] else math.ceil(lo)
                if hi is not None:
                    hi = math.ceil(hi) - 1 if r["high_open"] else math.floor(hi)
                check_int(value, name, low=lo, high=hi)
            else:
                check_interval(
                    value,
                    name,
                    low=r["low"],
                    high=r["high"],
                    low_closed=not r["low_open"],
                    high_closed=not r["high_open"],
                )
        elif choices is not None:
            check_choice(value, name, choices)
