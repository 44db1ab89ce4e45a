"""Argument checks at the public boundary, phrased alike everywhere.

Owns: small helpers that check one argument and raise ``ValueError``/``TypeError`` with
the message ``"`name` must be ...; got value."``.  Table rules live in the data
dictionary (``alsprog.data``), not here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = [
    "check_choice",
    "check_int",
    "check_interval",
    "check_is_fitted",
    "check_level",
    "check_n_jobs",
    "check_numbers",
]


def check_interval(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_closed: bool = True,
    high_closed: bool = True,
    error: type[Exception] = ValueError,
) -> float:
    """Check that ``value`` is a finite real number in an interval and return it.

    ``error`` is the exception type raised for a bad value (and a wrong type, unless
    it is ``ValueError``, where ``TypeError`` is raised for a wrong type).

    Examples
    --------
    >>> check_interval(0.9, "level", low=0, high=1, low_closed=False, high_closed=False)
    0.9
    >>> check_interval(95, "level", low=0, high=1, low_closed=False, high_closed=False)
    Traceback (most recent call last):
    ...
    ValueError: `level` must be in (0, 1); got 95.
    """
    lo = "[" if low_closed and low is not None else "("
    hi = "]" if high_closed and high is not None else ")"
    rng = f"{lo}{'-inf' if low is None else _fmt(low)}, "
    rng += f"{'inf' if high is None else _fmt(high)}{hi}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            import numpy as np

            if isinstance(value, np.integer | np.floating):
                value = value.item()
            else:
                raise TypeError
        except TypeError:
            exc = TypeError if error is ValueError else error
            raise exc(f"`{name}` must be a number in {rng}; got {value!r}.") from None
    if not math.isfinite(value):
        raise error(f"`{name}` must be in {rng}; got {value!r}.")
    bad = False
    if low is not None:
        bad |= value < low if low_closed else value <= low
    if high is not None:
        bad |= value > high if high_closed else value >= high
    if bad:
        raise error(f"`{name}` must be in {rng}; got {value!r}.")
    return value


def check_level(
    value: Any, name: str = "level", *, error: type[Exception] = ValueError
) -> float:
    """Check an interval coverage given as a fraction in (0, 1) and return it.

    Examples
    --------
    >>> check_level(0.9)
    0.9
    >>> check_level(95)
    Traceback (most recent call last):
    ...
    ValueError: `level` must be in (0, 1); got 95.
    """
    return check_interval(
        value, name, low=0, high=1, low_closed=False, high_closed=False, error=error
    )


def check_int(
    value: Any,
    name: str,
    *,
    low: int | None = None,
    high: int | None = None,
    error: type[Exception] = ValueError,
) -> int:
    """Check that ``value`` is an integer (not bool) within bounds and return it.

    Examples
    --------
    >>> check_int(3, "n_patients", low=1)
    3
    >>> check_int(0, "n_patients", low=1)
    Traceback (most recent call last):
    ...
    ValueError: `n_patients` must be an integer >= 1; got 0.
    """
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        bounds = _bounds_text(low, high)
        exc = TypeError if error is ValueError else error
        raise exc(f"`{name}` must be an integer{bounds}; got {value!r}.")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise error(
            f"`{name}` must be an integer{_bounds_text(low, high)}; got {value!r}."
        )
    return value


def check_numbers(
    values: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_closed: bool = True,
    high_closed: bool = True,
    min_len: int = 1,
    error: type[Exception] = ValueError,
) -> list[float]:
    """Check a sequence of finite real numbers, each in an interval; return floats.

    A string, a mapping or a single number is not a sequence here.

    Examples
    --------
    >>> check_numbers([50, 126], "n_per_arm", low=0, low_closed=False)
    [50.0, 126.0]
    >>> check_numbers(126, "n_per_arm")
    Traceback (most recent call last):
    ...
    TypeError: `n_per_arm` must be a sequence of numbers; got 126.
    >>> check_numbers([], "slowing")
    Traceback (most recent call last):
    ...
    ValueError: `slowing` must hold at least 1 number; got [].
    """
    from collections.abc import Mapping

    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        exc = TypeError if error is ValueError else error
        raise exc(f"`{name}` must be a sequence of numbers; got {values!r}.")
    items = list(values)
    if len(items) < min_len:
        raise error(
            f"`{name}` must hold at least {min_len} number{'s' if min_len != 1 else ''}"
            f"; got {values!r}."
        )
    return [
        float(
            check_interval(
                v,
                name,
                low=low,
                high=high,
                low_closed=low_closed,
                high_closed=high_closed,
                error=error,
            )
        )
        for v in items
    ]


def check_n_jobs(
    value: Any, name: str = "n_jobs", *, error: type[Exception] = ValueError
) -> int | None:
    """Check a joblib worker count: a non-zero integer (-1 = all cores) or None.

    Examples
    --------
    >>> check_n_jobs(-1)
    -1
    >>> check_n_jobs(0)
    Traceback (most recent call last):
    ...
    ValueError: `n_jobs` must be a non-zero integer (-1: all cores) or None; got 0.
    """
    if value is None:
        return None
    msg = f"`{name}` must be a non-zero integer (-1: all cores) or None; got {value!r}."
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise (TypeError if error is ValueError else error)(msg)
    if int(value) == 0:
        raise error(msg)
    return int(value)


def check_choice(
    value: Any,
    name: str,
    choices: Iterable[Any],
    *,
    error: type[Exception] = ValueError,
) -> Any:
    """Check that ``value`` is one of ``choices`` and return it.

    Examples
    --------
    >>> check_choice("warn", "unmatched", ("warn", "raise", "keep"))
    'warn'
    >>> check_choice("drop", "unmatched", ("warn", "raise", "keep"))
    Traceback (most recent call last):
    ...
    ValueError: `unmatched` must be one of 'warn', 'raise', 'keep'; got 'drop'.
    """
    choices = tuple(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise error(f"`{name}` must be one of {listed}; got {value!r}.")
    return value


def check_columns(
    table: Any,
    name: str,
    columns: Iterable[str],
    *,
    not_frame: type[Exception] = TypeError,
) -> Any:
    """Check that ``table`` is a DataFrame holding ``columns`` and return it.

    A table of another type raises ``not_frame``; missing columns raise
    :class:`~alsprog.errors.ModelSpecificationError` naming them.

    Examples
    --------
    >>> import pandas as pd
    >>> check_columns(pd.DataFrame({"a": [1]}), "forecasts", ["a", "b"])
    Traceback (most recent call last):
    ...
    alsprog.errors.ModelSpecificationError: `forecasts` lacks column(s) 'b'.
    """
    import pandas as pd

    from alsprog.errors import ModelSpecificationError

    if not isinstance(table, pd.DataFrame):
        raise not_frame(
            f"`{name}` must be a pandas DataFrame; got {type(table).__name__}."
        )
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ModelSpecificationError(
            f"`{name}` lacks column(s) {', '.join(map(repr, missing))}."
        )
    return table


def check_is_fitted(estimator: Any, attributes: Iterable[str] | None = None) -> None:
    """Raise :class:`~alsprog.errors.NotFittedError` unless ``estimator`` was fitted.

    An estimator counts as fitted when it has every attribute in ``attributes`` or, by
    default, any public attribute ending in ``_``.
    """
    from alsprog.errors import NotFittedError

    if attributes is not None:
        fitted = all(hasattr(estimator, a) for a in attributes)
    else:
        fitted = any(k.endswith("_") and not k.startswith("_") for k in vars(estimator))
    if not fitted:
        name = type(estimator).__name__
        raise NotFittedError(
            f"This {name} is not fitted yet; call `fit` before using this method."
        )


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _bounds_text(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""
