"""Names of a subpackage loaded on first use (PEP 562).

Owns: :func:`lazy_names`, the module-level ``__getattr__``/``__dir__`` pair that
imports a public name's private module only when the name is first read, so that
light imports (``alsprog --help``, one model class) do not pull in the heavy ones.
Leaves: which names live where to each subpackage's ``__init__``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str,
    namespace: dict[str, Any],
    modules: Mapping[str, str],
    public: Sequence[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package whose names load on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (for the error message).
    namespace : dict
        The package's ``globals()``: a loaded name is stored there, so later look-ups
        skip ``__getattr__``.
    modules : mapping of str to str
        Public name -> the module that defines it.
    public : sequence of str
        The package's ``__all__``.

    Examples
    --------
    >>> ns = {}
    >>> getattr_, dir_ = lazy_names("pkg", ns, {"sqrt": "math"}, ["sqrt"])
    >>> getattr_("sqrt")(4.0), "sqrt" in ns
    (2.0, True)
    """

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__
