"""Progress of long work, one convention for the whole package.

Owns: :func:`progress_bar` and :class:`LineProgress`.  ``progress=None`` shows a bar on
stderr when it is a terminal and, when it is not (a log file, a pipe, a notebook, CI),
a plain line now and then (:class:`LineProgress`); ``False`` shows nothing, ``True``
always a bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["LineProgress", "progress_bar"]

#: No line before this many seconds (quick work stays silent), and never two lines
#: closer than this.
FIRST_LINE_S = 5.0
#: A line at least this often while work goes on, even between 10 % steps.
MAX_SILENCE_S = 30.0


def _clock() -> float:
    return time.monotonic()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


def _seconds(s: float) -> str:
    s = max(0.0, s)
    if s < 100:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


class LineProgress:
    """Progress as plain lines on stderr, for output that is not a terminal.

    Silent for the first :data:`FIRST_LINE_S` seconds; after that one line whenever
    the work passes another 10 % (at most one line per :data:`FIRST_LINE_S`
    seconds) or has been silent for :data:`MAX_SILENCE_S` seconds, and a last line
    when it ends, e.g.::

        permutations: 60/200 permutations (30%), 12 s, about 28 s left
        permutations: 200/200 permutations done in 41 s

    It offers the part of tqdm's interface alsprog uses: iteration, ``update``,
    ``close`` and use as a context manager.

    Parameters
    ----------
    iterable : iterable, optional
        Items to pass through, counted one each.
    total : int, optional
        Number of steps (default ``len(iterable)`` when it has one).
    desc : str, optional
        What is counted, at the start of each line.
    unit : str, default "it"
        Name of one step.
    clock : callable, optional
        Seconds as a float (default :func:`time.monotonic`); for tests.
    stream : file-like, optional
        Where the lines go (default: ``sys.stderr`` at the time of each line).

    Examples
    --------
    >>> import sys
    >>> ticks = iter(range(0, 1000, 4))  # a clock advancing 4 s per reading
    >>> with LineProgress(total=3, desc="images", unit="image", stream=sys.stdout,
    ...                   clock=lambda: float(next(ticks))) as bar:
    ...     for _ in range(3):
    ...         bar.update(1)
    images: 2/3 images (67%), 8 s, about 4 s left
    images: 3/3 images done in 16 s
    """

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        total: int | None = None,
        desc: str | None = None,
        unit: str = "it",
        clock: Callable[[], float] | None = None,
        stream: Any = None,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total = total
        self.desc = desc or "progress"
        self.unit = unit
        self.n = 0
        self._clock = clock or _clock
        self._stream = stream
        self._start = self._clock()
        self._last_line = self._start
        self._last_step = 0  # tenths of the total reported so far
        self._printed = False
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            return
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _units(self, n: int) -> str:
        return self.unit if n == 1 or self.unit.endswith("s") else f"{self.unit}s"

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stderr  # looked up now: it may be replaced
        stream.write(f"{self.desc}: {text}\n")
        stream.flush()
        self._printed = True

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps done; print a line when one is due."""
        self.n += n
        now = self._clock()
        elapsed = now - self._start
        if elapsed < FIRST_LINE_S or now - self._last_line < FIRST_LINE_S:
            return
        step = (10 * self.n // self.total) if self.total else 0
        if self.total and self.n >= self.total:
            return  # the closing line says it
        if step <= self._last_step and now - self._last_line < MAX_SILENCE_S:
            return
        self._last_step = max(step, self._last_step)
        self._last_line = now
        if self.total:
            left = elapsed * (self.total - self.n) / max(self.n, 1)
            self._write(
                f"{self.n}/{self.total} {self._units(self.total)} "
                f"({100 * self.n / self.total:.0f}%), {_seconds(elapsed)}, "
                f"about {_seconds(left)} left"
            )
        else:
            self._write(f"{self.n} {self._units(self.n)}, {_seconds(elapsed)}")

    def close(self) -> None:
        """End: a last line if any line was printed (so silence means quick)."""
        if self._closed:
            return
        self._closed = True
        if self._printed:
            elapsed = self._clock() - self._start
            of = f"/{self.total}" if self.total else ""
            unit = self._units(self.total or self.n)
            self._write(f"{self.n}{of} {unit} done in {_seconds(elapsed)}")


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    progress: bool | None = None,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
) -> Any:
    """Progress of ``iterable`` (or of ``update`` calls) following alsprog's flag.

    Parameters
    ----------
    iterable : iterable, optional
        Items to wrap; without it, call ``update(n)`` on the result.
    progress : bool or None
        ``None``: a tqdm bar on stderr when it is a terminal, else plain lines now
        and then (:class:`LineProgress`); ``True``: always a bar; ``False``: nothing.
    total, desc, unit
        As for tqdm.

    Returns
    -------
    tqdm or LineProgress
        Iterable, with ``update``/``close``, usable as a context manager.
    """
    if progress is None and not _is_terminal(sys.stderr):
        return LineProgress(iterable, total=total, desc=desc, unit=unit)
    from tqdm.auto import tqdm

    disable = None if progress is None else not progress
    return tqdm(
        iterable, total=total, desc=desc, unit=unit, disable=disable, leave=False
    )
