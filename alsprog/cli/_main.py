"""The ``alsprog`` parser and entry point: parsing, signals and exit codes.

Owns: :func:`build_parser` (the subcommands, in the order ``--help`` lists them),
parsing with the nearest valid option suggested, and :func:`main`: exit codes (0 ok,
1 alsprog error or validation problems, 2 usage, 130 interrupted by Ctrl-C, 143
terminated by SIGTERM).
Leaves: each command's options and handler to its module, logging and warnings to
:mod:`alsprog.cli._logging`.
"""

from __future__ import annotations

import argparse
import difflib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from alsprog._version import __version__
from alsprog.cli._data import (
    add_assemble_parser,
    add_simulate_parser,
    add_validate_parser,
)
from alsprog.cli._forecast import add_backtest_parser, add_forecast_parser
from alsprog.cli._imaging import add_classify_parser, add_features_parser
from alsprog.cli._import import add_import_parser
from alsprog.cli._logging import _routed
from alsprog.cli._options import _global_options, _Parser, _SubParsers
from alsprog.cli._pipeline import add_demo_parser, add_run_parser
from alsprog.cli._power import add_power_parser
from alsprog.cli._survival import add_survival_parser
from alsprog.errors import AlsprogError

__all__ = ["build_parser", "main"]

#: The subcommands, in the order ``alsprog --help`` lists them.
_COMMANDS = (
    add_simulate_parser,
    add_validate_parser,
    add_assemble_parser,
    add_import_parser,
    add_features_parser,
    add_classify_parser,
    add_power_parser,
    add_forecast_parser,
    add_backtest_parser,
    add_survival_parser,
    add_demo_parser,
    add_run_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per task."""
    parser = _Parser(
        prog="alsprog",
        description="Longitudinal disease-progression modelling in ALS.",
    )
    parser.register("action", "parsers", _SubParsers)
    parser.add_argument("--version", action="version", version=f"alsprog {__version__}")
    _global_options(parser, sub=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add_parser in _COMMANDS:
        add_parser(sub)
    return parser


def _quiet_swallowed_interrupt(unraisable: Any) -> None:
    """``sys.unraisablehook`` for a command: a Ctrl-C raised inside a callback that
    CPython cannot propagate is noted (the next commit raises it), not printed."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    sys.__unraisablehook__(unraisable)


@contextmanager
def _signal_handlers() -> Iterator[None]:
    """SIGINT and SIGTERM raise (and are noted) while a command runs, where Python's
    defaults are in place; the previous handlers come back afterwards."""
    from alsprog._io import raise_for_signal, signals_received

    signals_received.clear()
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        defaults = {
            signal.SIGINT: signal.default_int_handler,
            signal.SIGTERM: signal.SIG_DFL,
        }
        for sig, default in defaults.items():
            if signal.getsignal(sig) == default:
                old[sig] = signal.signal(sig, raise_for_signal)
    hook, sys.unraisablehook = sys.unraisablehook, _quiet_swallowed_interrupt
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for sig, h in old.items():
            signal.signal(sig, h)


def _interrupted(
    args: argparse.Namespace, exc: KeyboardInterrupt, n_before: int
) -> int:
    """One line on stderr for Ctrl-C / SIGTERM; exit status 130 / 143."""
    from alsprog._io import Terminated, committed

    what = "terminated" if isinstance(exc, Terminated) else "interrupted"
    written = committed[n_before:]
    if written:
        note = "after writing " + ", ".join(str(p) for p in written)
    else:
        out = getattr(args, "out", None)
        note = "nothing was written" + (f" to {out}" if out else "")
    print(f"alsprog: {what}; {note}", file=sys.stderr, flush=True)
    return 143 if isinstance(exc, Terminated) else 130


def _subparser(
    parser: argparse.ArgumentParser, command: str | None
) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command:
            return action.choices.get(command)
    return None


def _option_strings(*parsers: argparse.ArgumentParser | None) -> list[str]:
    return [
        o
        for p in parsers
        if p is not None
        for a in p._actions
        for o in a.option_strings
        if o.startswith("--")
    ]


def _parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace:
    """Parse; an unknown option gets the nearest valid one (``--n-job`` ->
    ``--n-jobs``); global flags count wherever they stand."""
    args, extras = parser.parse_known_args(argv)
    sub = _subparser(parser, getattr(args, "command", None))
    if extras:
        hints = []
        names = _option_strings(parser, sub)
        for word in extras:
            if word.startswith("--"):
                close = difflib.get_close_matches(
                    word.split("=")[0], names, n=1, cutoff=0.6
                )
                if close:
                    hints.append(f"{word}: did you mean {close[0]}?")
        msg = f"unrecognized arguments: {' '.join(extras)}"
        (sub or parser).error(msg + ("; " + "; ".join(hints) if hints else ""))
    args.verbose = args.verbose + getattr(args, "sub_verbose", 0)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``alsprog`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = _parse_args(parser, argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    # after parsing: ``--help`` does without them
    from alsprog._io import _raise_if_signalled, committed, signals_received

    n_before = len(committed)
    try:
        with _signal_handlers(), _routed(args.verbose):
            status = int(args.handler(args))
            _raise_if_signalled()  # one swallowed after the last commit: report it
            return status
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        return _interrupted(args, exc, n_before)
    except AlsprogError as exc:
        if args.debug:
            raise
        print(f"alsprog: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as exc:
        if args.debug:
            raise
        print(f"alsprog: error: {exc}", file=sys.stderr)
        return 2
    finally:
        signals_received.clear()
