"""One key of a run config: :class:`Key`, and :class:`Shown` (a default the
reference prints as it is).

Owns: the two small types the static sections (:mod:`alsprog.report._schema`) and
the model sections read from the registry (:mod:`alsprog.report._model_schema`)
share.
Leaves: the keys themselves to those modules; checking values to
:mod:`alsprog.report._config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Key", "Shown"]


@dataclass(frozen=True)
class Key:
    """One config key: its type, default, allowed values and meaning."""

    name: str
    kind: str  # str, path, int, float, bool, floats, strs, cv, map
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    required: bool = False
    #: lists only: ``[]`` is a value (it switches the step off)
    allow_empty: bool = False
    #: models only: the registered types that take the key (None: every type)
    applies: tuple[str, ...] | None = None
    #: models only: each type's default, when the types disagree
    by_type: tuple[tuple[str, Any], ...] | None = None
    #: models only: each type's allowed values, when the types disagree (``choices``
    #: is then their union)
    choices_by_type: tuple[tuple[str, tuple[Any, ...]], ...] | None = None

    def for_type(self, model_type: str | None) -> Key:
        """The key as ``model_type`` takes it (its own allowed values)."""
        from dataclasses import replace

        if model_type is None or self.choices_by_type is None:
            return self
        own = dict(self.choices_by_type).get(model_type)
        return self if own is None else replace(self, choices=own)


class Shown(str):
    """A default the reference shows as it is (not as a TOML value)."""
