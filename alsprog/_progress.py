"""Progress bars for long work, one convention for the whole package.

Owns: :func:`progress_bar`.  ``progress=None`` shows the bar on stderr only when it is a
terminal, ``False`` never, ``True`` always.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    progress: bool | None = None,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
) -> Any:
    """Wrap ``iterable`` in a tqdm bar that follows alsprog's ``progress`` flag."""
    from tqdm.auto import tqdm

    disable = None if progress is None else not progress
    return tqdm(
        iterable, total=total, desc=desc, unit=unit, disable=disable, leave=False
    )
