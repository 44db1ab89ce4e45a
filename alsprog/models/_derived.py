"""Quantities derived from a fitted model once asked for, kept beside it.

Owns: :func:`derived` (the dict of a fitted model's cached derived states: the
Satterthwaite and Kenward-Roger states of a mixed model, an MMRM's Kenward-Roger
components and sandwich covariances) and :func:`forget_derived` (called by every fit
and load).  They live in a weak-keyed table, not in the model: using a fitted model
never changes it (``tests/models/test_no_mutation.py``).
Leaves: what is derived to the models' inference modules.
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["derived", "forget_derived"]

_DERIVED: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def derived(model: Any) -> dict[str, Any]:
    """The cache of what was derived from ``model``'s current fit.

    Examples
    --------
    >>> class M: pass
    >>> m = M(); derived(m)["x"] = 1; derived(m)
    {'x': 1}
    >>> forget_derived(m); derived(m)
    {}
    """
    return _DERIVED.setdefault(model, {})


def forget_derived(model: Any) -> None:
    """Drop what was derived from ``model``'s previous fit (a refit or a load)."""
    _DERIVED.pop(model, None)
