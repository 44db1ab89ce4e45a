"""Seeds: turning a user's ``seed``/``random_state`` into one NumPy Generator.

Owns: :func:`as_generator`, :func:`child_seed` and :data:`DEFAULT_SEED` (the one seed the
command line and the run config use when none is given).  Never touches NumPy's global
state.  NumPy is imported inside the functions, so that the command line can read
:data:`DEFAULT_SEED` without it (``alsprog --help`` stays quick).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DEFAULT_SEED", "as_generator", "child_seed"]

#: The seed of every command (``simulate``, ``classify``, ``forecast``, ``backtest``,
#: ``demo``) and of a run config when none is given: the same inputs give the same
#: numbers unless the user asks for another seed.
DEFAULT_SEED = 2026


def as_generator(seed: Any) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for ``seed``.

    ``None`` gives fresh entropy, an integer or SeedSequence a reproducible stream, and a
    Generator is passed through unchanged (so callers can share one stream).

    Examples
    --------
    >>> bool(as_generator(1).integers(100) == as_generator(1).integers(100))
    True
    """
    import numpy as np

    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool):
        raise TypeError(
            f"`seed` must be an int, a numpy Generator or None; got {seed!r}."
        )
    if seed is None or isinstance(seed, int | np.integer | np.random.SeedSequence):
        if isinstance(seed, int | np.integer) and seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer; got {seed!r}.")
        return np.random.default_rng(seed)
    raise TypeError(f"`seed` must be an int, a numpy Generator or None; got {seed!r}.")


def child_seed(rng: np.random.Generator) -> int:
    """Draw an integer seed for a library that wants one (samplers, sklearn)."""
    return int(rng.integers(0, 2**31 - 1))
