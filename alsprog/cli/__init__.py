"""The ``alsprog`` command line: a thin argparse layer over the public library.

Owns: parsing, printing and exit codes (0 ok, 1 alsprog error or validation problems,
2 usage, 130 interrupted by Ctrl-C, 143 terminated by SIGTERM), and what reaches the
terminal: alsprog's own warnings once each, in its words; other libraries' warnings and
log records to the ``alsprog.third_party`` logger at DEBUG (shown with ``-v``).  No
statistics here: each handler calls the library.  Output paths are checked
(:mod:`alsprog._io`) before any work starts.

Layout: one module per group of commands, each with one ``add_<command>_parser``
and one ``cmd_<command>`` handler per command (:mod:`~alsprog.cli._data`: simulate,
validate, assemble; :mod:`~alsprog.cli._imaging`: features, classify;
:mod:`~alsprog.cli._power`; :mod:`~alsprog.cli._forecast`: forecast, backtest;
:mod:`~alsprog.cli._pipeline`: demo, run); the options several commands share in
:mod:`~alsprog.cli._options`, what they share when they run in
:mod:`~alsprog.cli._shared`, the model names in :mod:`~alsprog.cli._models`, logging
and warnings in :mod:`~alsprog.cli._logging`, and the parser, signals and exit codes
in :mod:`~alsprog.cli._main`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alsprog._lazy import lazy_names

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from alsprog.cli._main import build_parser, main

__all__ = ["build_parser", "main"]

# loaded on first use (PEP 562), so that ``import alsprog.cli`` costs nothing more
# than the package itself; ``_parse_args`` for the tests of the global options
_MODULES = {
    "build_parser": "alsprog.cli._main",
    "main": "alsprog.cli._main",
    "_parse_args": "alsprog.cli._main",
}

__getattr__, __dir__ = lazy_names(__name__, globals(), _MODULES, __all__)
