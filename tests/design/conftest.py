"""Design tests under mutation testing (issue 20): no worker processes.

mutmut collects every child process of its own as a finished mutant, so joblib's
process workers (loky) started by a test crash a run; under mutmut
(``MUTANT_UNDER_TEST`` is set) parallel simulations run on threads instead, which
give the same numbers (each chunk has its own seed).
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _threads_under_mutmut():
    if "MUTANT_UNDER_TEST" not in os.environ:
        yield
        return
    from joblib import parallel_config

    with parallel_config(backend="threading"):
        yield


def pytest_collection_modifyitems(config, items):
    """Under mutmut, drop the doctests of mutmut's copies of each function.

    mutmut copies every function, docstring included, once per mutant; each copy's
    doctest calls the public name, which runs the active mutant, so the copies only
    repeat the original's doctest (hundreds of times: minutes per mutant).
    """
    if "MUTANT_UNDER_TEST" not in os.environ:
        return
    keep = [item for item in items if "__mutmut_" not in item.name]
    if len(keep) < len(items):
        config.hook.pytest_deselected(
            items=[item for item in items if "__mutmut_" in item.name]
        )
        items[:] = keep
