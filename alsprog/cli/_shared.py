"""What several ``alsprog`` commands share when they run.

Owns: stage messages on stderr (``-q`` silences them), the progress flag, and reading
the long table a command takes (refusing a visits, subjects or imaging table with the
command that builds the long table).
Leaves: the options to :mod:`alsprog.cli._options`, the commands to their modules.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from alsprog.cli._options import _renames
from alsprog.errors import DataValidationError, Problem

__all__: list[str] = []


def _stage(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress or args.quiet else None


def _read_long(
    path: str,
    option: str,
    args: argparse.Namespace,
    *,
    needed: Sequence[str] | None = None,
):
    """The long table a command reads (``--train``, ``--table``...), validated.

    A visits, subjects or imaging table (the inputs of ``alsprog assemble``) is
    refused with the command that builds the long table from them; with ``needed``,
    only when it lacks one of these columns.
    """
    from alsprog.data._read import guess_kind, header_columns, read_table

    rename = _renames(args)
    cols = header_columns(path, rename=rename)
    if cols is not None:
        kind, why = guess_kind(cols)
        lacking = needed is not None and any(c not in cols for c in needed)
        if kind != "long" and (needed is None or lacking):
            raise DataValidationError(
                [
                    Problem(
                        f"{option} takes the long table (one row per subject x visit, "
                        f"the visits joined with their subjects), but this looks like "
                        f"a {kind} table ({why}); build the long table first: "
                        "alsprog assemble --visits VISITS --subjects SUBJECTS "
                        "[--imaging IMAGING] --out table.csv (--rename OLD=NEW maps "
                        "your column names)",
                        rule="table_kind",
                        source=str(path),
                    )
                ],
                source=str(path),
            )
    table, _ = read_table(path, kind="long", rename=rename)
    return table


def _one_source(args: argparse.Namespace) -> bool:
    """Whether exactly one of ``--data`` and ``--simulate`` was given (else say so
    on stderr: the command then exits 2, as for any usage error)."""
    if (args.data is None) == (args.simulate is None):
        print(
            "alsprog: error: give exactly one of --data or --simulate", file=sys.stderr
        )
        return False
    return True
