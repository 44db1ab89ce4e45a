"""Argument types and the options several ``alsprog`` commands share.

Owns: the parser class that suggests the nearest valid choice, fraction and
``OLD=NEW`` argument types, ``--rename`` (and its check), ``--seed``, ``--out`` with
``--force``, ``--recalibrate`` and the global options (``-v``, ``-q``, ``--debug``,
``--no-progress``) that every subcommand's help also lists.
Leaves: each command's own options to its module, parsing to :mod:`alsprog.cli._main`.
"""

from __future__ import annotations

import argparse
import difflib
import re

from alsprog._random import DEFAULT_SEED

__all__: list[str] = []


class _Parser(argparse.ArgumentParser):
    """argparse with the nearest valid choice suggested on an invalid one."""

    def error(self, message: str):  # type: ignore[override]
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2))
            close = difflib.get_close_matches(m.group(1), choices, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {close[0]!r}?"
        super().error(message)


def _fraction(option: str, *, high_closed: bool = False):
    """An argparse type for a fraction in (0, 1) (or (0, 1]): a whole percentage
    (``25``) is refused with "did you mean 0.25?"; other values go on to the library's
    own check."""
    interval = "(0, 1]" if high_closed else "(0, 1)"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if 1 < v <= 100 and v.is_integer():
            raise argparse.ArgumentTypeError(
                f"{text} is not a fraction in {interval}; did you mean {v / 100:g}?"
            )
        return v

    parse.__name__ = option
    return parse


def _rename_pair(text: str) -> tuple[str, str]:
    """``OLD=NEW`` of ``--rename``."""
    old, sep, new = text.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not OLD=NEW (e.g. patient=subject_id)"
        )
    return old.strip(), new.strip()


def _rename_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rename",
        nargs="+",
        action="extend",
        type=_rename_pair,
        default=None,
        metavar="OLD=NEW",
        help="map your column names to the data dictionary's before checking, e.g. "
        "--rename patient=subject_id visit_month=months",
    )


def _renames(args: argparse.Namespace) -> dict[str, str] | None:
    """``--rename`` as a checked mapping (None when not given)."""
    from alsprog.data._validate import check_rename

    pairs = getattr(args, "rename", None)
    if not pairs:
        return None
    olds = [old for old, _ in pairs]
    again = sorted({o for o in olds if olds.count(o) > 1})
    if again:
        raise ValueError(
            f"`--rename`: {', '.join(map(repr, again))} is mapped more than once."
        )
    return check_rename(dict(pairs), what="`--rename`")


def _seed_option(p: argparse.ArgumentParser, what: str = "random seed") -> None:
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"{what} ({DEFAULT_SEED}; the same seed gives the same numbers)",
    )


def _recalibrate_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--recalibrate",
        choices=("none", "band", "shift"),
        default="none",
        help=f"recalibrate {what} on the training patients' own errors "
        "(CalibratedForecaster): 'band' keeps the model's centre, 'shift' also "
        "moves it (none)",
    )


def _out_folder_options(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--out`` (a folder) and ``--force``, worded alike for every command."""
    p.add_argument(
        "--out",
        required=default is None,
        default=None,
        help="output folder: new, empty or an earlier alsprog result (only alsprog's "
        "files are replaced)" + (f"; default: {default}" if default else ""),
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="also write into a non-empty folder alsprog did not write; its files are "
        "never deleted or overwritten (a name clash is refused)",
    )


def _global_options(p: argparse.ArgumentParser, *, sub: bool) -> None:
    """``-v``, ``-q``, ``--debug``, ``--no-progress``: before or after the command.

    On a subcommand they default to nothing (``argparse.SUPPRESS``), so that a flag
    given before the command is kept; ``-v`` counts separately and is added up in
    :func:`_parse_args`.
    """
    g = (
        p.add_argument_group("global options (before or after the command)")
        if sub
        else p
    )
    default = argparse.SUPPRESS if sub else None
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        dest="sub_verbose" if sub else "verbose",
        default=default if sub else 0,
        help="log what runs (-v info, with other libraries' warnings; -vv debug)",
    )
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if sub else False,
        help="do not print stage messages",
    )
    g.add_argument(
        "--no-progress",
        action="store_true",
        default=default if sub else False,
        help="never show progress bars",
    )
    g.add_argument(
        "--debug",
        action="store_true",
        default=default if sub else False,
        help="re-raise errors with their traceback",
    )


class _SubParsers(argparse._SubParsersAction):
    """Every subcommand gets the global options in its own --help."""

    def add_parser(self, name, **kwargs):  # type: ignore[no-untyped-def]
        p = super().add_parser(name, **kwargs)
        _global_options(p, sub=True)
        return p
