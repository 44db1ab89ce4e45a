"""``python -m alsprog.cli``: the ``alsprog`` command."""

from __future__ import annotations

import sys

from alsprog.cli._main import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
