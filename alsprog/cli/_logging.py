"""What reaches the terminal besides a command's results: logging and warnings.

Owns: alsprog's log on stderr (WARNING, INFO with ``-v``, DEBUG with ``-vv``), other
libraries' log records and warnings passed to the ``alsprog.third_party`` logger at
DEBUG (shown with ``-v``), and alsprog's own warnings printed once each, in its words.
Leaves: the commands to their modules, exit codes to :mod:`alsprog.cli._main`.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from alsprog.errors import AlsprogWarning

__all__ = ["configure_logging"]

logger = logging.getLogger("alsprog")
#: Other libraries' warnings and log records (PyTensor, arviz, pandas, JAX, ...).
third_party_logger = logging.getLogger("alsprog.third_party")


def _levels(verbosity: int) -> int:
    return (
        logging.WARNING
        if verbosity <= 0
        else (logging.INFO if verbosity == 1 else logging.DEBUG)
    )


class _Shown(logging.Filter):
    """alsprog's records at the chosen level; other libraries' from ``-v`` on."""

    def __init__(self, verbosity: int) -> None:
        super().__init__()
        self.verbosity = verbosity
        self.level = _levels(verbosity)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == third_party_logger.name:
            return self.verbosity >= 1
        return record.levelno >= self.level


class _ToThirdParty(logging.Handler):
    """Other libraries' log records, passed on to ``alsprog.third_party`` at DEBUG."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "alsprog" or record.name.startswith("alsprog."):
            return
        try:
            text = record.getMessage()
        except Exception:  # a library's malformed record: keep its template
            text = str(record.msg)
        third_party_logger.debug("%s %s: %s", record.name, record.levelname, text)


def configure_logging(verbosity: int) -> None:
    """Send alsprog's log to stderr at WARNING, INFO (-v) or DEBUG (-vv).

    Other libraries' records reach it through :func:`_routed` as
    ``alsprog.third_party`` DEBUG records, shown from ``-v`` on.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
    )
    handler.addFilter(_Shown(verbosity))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbosity >= 1 else logging.WARNING)
    logger.propagate = False


def _library_handlers() -> list[tuple[logging.Logger, logging.Handler]]:
    """Other libraries' own stderr/stdout handlers (PyTensor adds one on import)."""
    found: list[tuple[logging.Logger, logging.Handler]] = []
    for name, lg in list(logging.root.manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger) or name.split(".")[0] == "alsprog":
            continue
        for h in list(lg.handlers):
            if type(h) is logging.StreamHandler:  # not files, not test capture
                found.append((lg, h))
    return found


@contextmanager
def _routed(verbosity: int) -> Iterator[None]:
    """What a command prints besides its results, decided in one place.

    alsprog's own warnings (:class:`~alsprog.errors.AlsprogWarning`) are printed once
    each as ``alsprog: warning: <message>``, without a source line; every other
    warning and other libraries' log records go to ``alsprog.third_party`` at DEBUG
    (shown with ``-v``; ``alsprog run`` also keeps them in ``run.log``).
    """
    saved = (logger.handlers[:], logger.level, logger.propagate)
    configure_logging(verbosity)
    root = logging.getLogger()
    forward = _ToThirdParty()
    root.addHandler(forward)
    quieted = _library_handlers()
    for lg, h in quieted:
        lg.removeHandler(h)
    shown: set[str] = set()
    passed: set[tuple[str, str]] = set()

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        text = str(message)
        if issubclass(category, AlsprogWarning):
            if text not in shown:
                shown.add(text)
                print(f"alsprog: warning: {text}", file=sys.stderr, flush=True)
            return
        if (category.__name__, text) not in passed:
            passed.add((category.__name__, text))
            third_party_logger.debug(
                "%s: %s (%s:%s)", category.__name__, text, filename, lineno
            )

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # `show` keeps one of each
            warnings.showwarning = show
            yield
    finally:
        root.removeHandler(forward)
        for lg, h in quieted:
            lg.addHandler(h)
        logger.handlers[:], level, logger.propagate = saved
        logger.setLevel(level)
