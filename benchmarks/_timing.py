"""Timing shared by the benchmark scripts (imported as a sibling module).

Callers warm up first (the agreement check before timing runs each tool once).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def time_median(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn``."""
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)
