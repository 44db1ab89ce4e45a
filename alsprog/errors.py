"""Exception and warning types raised by alsprog.

Owns: the error hierarchy and the :class:`Problem` record that validation errors collect.
Leaves: the checks themselves to the modules that raise these types.  This module imports
nothing from alsprog, so every other module can import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "AlsprogError",
    "AlsprogWarning",
    "ConfigError",
    "ConvergenceError",
    "ConvergenceWarning",
    "DataValidationError",
    "DataWarning",
    "ImagingError",
    "ModelSpecificationError",
    "ModelSpecificationWarning",
    "NotFittedError",
    "OutputError",
    "Problem",
    "SavedModelError",
    "not_converged",
]


class AlsprogError(Exception):
    """Base class of every error alsprog raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a table.

    Parameters
    ----------
    message : str
        What was found and what was expected, e.g. ``"5 is outside 0-4"``.
    rule : str
        Short machine-readable name of the rule broken (``"maximum"``, ``"duplicate"``).
    source : str or None
        File the table came from (``None`` for an in-memory table).
    line : int or None
        1-based line in a CSV file (the header is line 1), or 1-based row otherwise.
    subject_id : str or None
        Subject of the offending row, when known.
    column : str or None
        Column at fault, when the problem is about one column.
    value : object
        The offending value.
    """

    message: str
    rule: str = "invalid"
    source: str | None = None
    line: int | None = None
    subject_id: str | None = None
    column: str | None = None
    value: Any = None
    line_kind: str = "line"

    def location(self) -> str:
        """Where the problem is, as ``"line 14, subject P0031, column alsfrs_r_q7"``."""
        parts = []
        if self.line is not None:
            parts.append(f"{self.line_kind} {self.line}")
        if self.subject_id is not None:
            parts.append(f"subject {self.subject_id}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def __str__(self) -> str:
        loc = self.location()
        return f"{loc}: {self.message}" if loc else self.message


class DataValidationError(AlsprogError, ValueError):
    """A table broke one or more rules of the data dictionary.

    All problems of a table are collected and raised together.

    Parameters
    ----------
    problems : sequence of Problem
        Every problem found.
    source : str, optional
        Name of the table (file path or description) used in the heading.

    Attributes
    ----------
    problems : pandas.DataFrame
        One row per problem with columns ``source, line, subject_id, column, value,
        rule, message``.

    Examples
    --------
    >>> err = DataValidationError([Problem("5 is outside 0-4", rule="maximum",
    ...     source="visits.csv", line=14, subject_id="P0031", column="alsfrs_r_q7",
    ...     value=5)], source="visits.csv")
    >>> print(err)
    visits.csv: 1 problem
      line 14, subject P0031, column alsfrs_r_q7: 5 is outside 0-4
    """

    max_listed = 50

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        problems = list(problems)
        order: dict[str | None, int] = {}
        for p in problems:
            order.setdefault(p.source, len(order))
        if all(p.line is None or isinstance(p.line, int) for p in problems):
            problems.sort(key=lambda p: (order[p.source], p.line or 0))
        self._problems = problems
        self.source = source
        super().__init__(self._render())

    @property
    def problem_list(self) -> list[Problem]:
        """The problems as :class:`Problem` records."""
        return list(self._problems)

    @property
    def problems(self) -> Any:
        """The problems as a pandas DataFrame, one row per problem."""
        import pandas as pd

        cols = ["source", "line", "subject_id", "column", "value", "rule", "message"]
        rows = [{k: asdict(p)[k] for k in cols} for p in self._problems]
        return pd.DataFrame(rows, columns=cols)

    def _render(self) -> str:
        n = len(self._problems)
        sources = {p.source for p in self._problems if p.source is not None}
        head = self.source or (sources.pop() if len(sources) == 1 else "table")
        lines = [f"{head}: {n} problem{'s' if n != 1 else ''}"]
        for p in self._problems[: self.max_listed]:
            prefix = ""
            if p.source is not None and p.source != head:
                prefix = f"{p.source}: "
            lines.append(f"  {prefix}{p}")
        if n > self.max_listed:
            lines.append(f"  ... and {n - self.max_listed} more (see .problems)")
        return "\n".join(lines)

    @classmethod
    def merge(
        cls, errors: Iterable[DataValidationError], source: str | None = None
    ) -> DataValidationError:
        """Combine several errors into one that lists every problem."""
        problems: list[Problem] = []
        for err in errors:
            problems.extend(err.problem_list)
        return cls(problems, source=source)


class ConfigError(DataValidationError):
    """A run configuration, or the inputs it names, has one or more problems.

    Every problem (config keys, input paths, input tables, formulas naming unknown
    columns) is collected before anything is fitted and listed in one message;
    ``.problems`` holds them as a DataFrame.
    """


class ModelSpecificationError(AlsprogError, ValueError):
    """A model was specified wrongly: formula, columns, priors or arguments."""


class ImagingError(AlsprogError, ValueError):
    """An image or atlas cannot be used; the message always names the file."""


class SavedModelError(AlsprogError, ValueError):
    """A saved model file is unreadable or does not match the class or version."""


class OutputError(AlsprogError, OSError):
    """alsprog refuses to write an output there: the path holds files alsprog did not
    write, contains or equals an input, or is not a folder; the message names it."""


class NotFittedError(AlsprogError, ValueError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``."""


class ConvergenceError(AlsprogError, RuntimeError):
    """An optimiser or sampler did not converge and ``strict=True`` was asked for."""


class AlsprogWarning(UserWarning):
    """Base class of every alsprog warning, so all can be filtered at once."""


class ConvergenceWarning(AlsprogWarning):
    """An optimiser or sampler may not have converged."""


class ModelSpecificationWarning(AlsprogWarning):
    """A model can be fitted but part of it is not identifiable as specified."""


class DataWarning(AlsprogWarning):
    """Rows were dropped, values clipped or records left unmatched."""


def not_converged(message: str, *, strict: bool, stacklevel: int = 2) -> None:
    """Raise :class:`ConvergenceError` when ``strict``, else warn.

    ``stacklevel`` counts from the caller, as for :func:`warnings.warn`.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     not_converged("stopped early", strict=False)
    >>> w[0].category.__name__
    'ConvergenceWarning'
    """
    import warnings

    if strict:
        raise ConvergenceError(message)
    warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel + 1)
