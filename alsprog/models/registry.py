"""The registry of trajectory model types: one name per model class.

Owns: :data:`MODELS` (a read-only mapping of the config's model ``type`` names to
model classes, each loaded on first access), :func:`register` (add a model type:
tests, plugins) and :func:`unregister` (remove one that was added); it re-exports
:func:`config_keys` (a model's configuration keys, their defaults and types, read
from its constructor, the one place defaults are declared: :mod:`._params`).
Leaves: the contract the classes meet to :mod:`alsprog.models._contract`; reading a
run config and building the CLI from the registry to :mod:`alsprog.report` and
:mod:`alsprog.cli`.

A new model is one folder under ``alsprog/models`` plus one line in
``_BUILTIN`` here.  The lines name ``"module:Class"`` so that importing the
registry imports no model (the Bayesian one pulls in PyMC when its module loads).
``MMRM`` (``"mmrm"``) forecasts at its scheduled visits only: its time column is
the visit column and its forecast times are visit levels.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

from alsprog.errors import ModelSpecificationError
from alsprog.models._params import REQUIRED, ConfigKey, config_keys

__all__ = [
    "MODELS",
    "REQUIRED",
    "ConfigKey",
    "config_keys",
    "register",
    "unregister",
]

#: The built-in model types: config ``type`` -> ``"module:Class"``.
_BUILTIN = {
    "mixed": "alsprog.models.lmm._model:LinearMixedModel",
    "bayesian": "alsprog.models.bayes._model:BayesianTrajectoryModel",
    "joint": "alsprog.models.joint._model:JointModel",
    "mmrm": "alsprog.models.mmrm._model:MMRM",
    "latent_class": "alsprog.models.latent._model:LatentClassMixedModel",
    "nonlinear": "alsprog.models.nlme._model:NonlinearMixedModel",
}


def _load(name: str, target: str) -> type:
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    _check_class(name, cls)
    return cls  # type: ignore[no-any-return]


def _check_class(name: str, cls: Any) -> None:
    from alsprog.models._contract import TrajectoryModel

    if not (isinstance(cls, type) and issubclass(cls, TrajectoryModel)):
        raise TypeError(
            f"model type {name!r}: {cls!r} is not a subclass of TrajectoryModel "
            "(alsprog.models._contract); every registered model meets that contract."
        )


class _Lazy(dict):  # type: ignore[type-arg]
    """name -> class, holding ``"module:Class"`` until a name is first read."""

    def __getitem__(self, name: str) -> type:
        value = super().__getitem__(name)
        if isinstance(value, str):
            value = _load(name, value)
            super().__setitem__(name, value)
        return value  # type: ignore[no-any-return]

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    def values(self) -> list[type]:  # type: ignore[override]
        return [self[k] for k in self]

    def items(self) -> list[tuple[str, type]]:  # type: ignore[override]
        return [(k, self[k]) for k in self]

    def copy(self) -> dict[str, type]:
        return dict(self.items())

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))


_ENTRIES = _Lazy(_BUILTIN)

#: Model type name -> model class (read-only; classes load on first access).
MODELS: MappingProxyType[str, type] = MappingProxyType(_ENTRIES)


def register(name: str, cls: type) -> type:
    """Add a model type to :data:`MODELS` under ``name``.

    Parameters
    ----------
    name : str
        The config's ``type`` for the model: lower-case letters, digits and
        underscores, starting with a letter.
    cls : type
        A subclass of :class:`~alsprog.models._contract.TrajectoryModel`.

    Returns
    -------
    type
        ``cls`` (so ``register`` can decorate a class).

    Raises
    ------
    ModelSpecificationError
        If ``name`` is taken or not a valid name.
    TypeError
        If ``cls`` is not a TrajectoryModel subclass.

    Examples
    --------
    >>> from alsprog.models._contract import TrajectoryModel
    >>> class Flat(TrajectoryModel):
    ...     def __init__(self, *, level=0.5):
    ...         self.level = level
    >>> register("flat", Flat) is Flat, "flat" in MODELS
    (True, True)
    >>> register("flat", Flat)
    Traceback (most recent call last):
    ...
    alsprog.errors.ModelSpecificationError: model type 'flat' is already registered (Flat); choose another name.
    >>> unregister("flat")
    """
    if not (
        isinstance(name, str)
        and name[:1].isalpha()
        and name.replace("_", "a").isalnum()
        and name == name.lower()
        and name.isascii()
    ):
        raise ModelSpecificationError(
            f"model type name {name!r}: use lower-case letters, digits and "
            "underscores, starting with a letter (e.g. 'latent_class')."
        )
    if name in _ENTRIES:
        held = dict.__getitem__(_ENTRIES, name)
        shown = held.rpartition(":")[2] if isinstance(held, str) else held.__name__
        raise ModelSpecificationError(
            f"model type {name!r} is already registered ({shown}); choose another name."
        )
    _check_class(name, cls)
    dict.__setitem__(_ENTRIES, name, cls)
    return cls


def unregister(name: str) -> None:
    """Remove a model type added by :func:`register` (built-in ones stay).

    Raises
    ------
    ModelSpecificationError
        For a built-in or unknown name.
    """
    if name in _BUILTIN or name not in _ENTRIES:
        raise ModelSpecificationError(
            f"model type {name!r} is "
            + ("built in" if name in _BUILTIN else "not registered")
            + "; only types added by register() can be removed."
        )
    dict.__delitem__(_ENTRIES, name)
