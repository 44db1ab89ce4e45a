"""One BLAS thread while the model numerics run.

Owns: :func:`single_blas_thread`, a context manager that limits OpenBLAS/MKL to one
thread.  The likelihoods here make thousands of tiny BLAS/LAPACK calls (p x p Cholesky,
L-BFGS-B's internal updates); a multithreaded BLAS wakes its thread pool for each, which
on a small machine makes them ~10x slower than single-threaded.  The large products are
memory-bound, so they lose nothing.  Uses threadpoolctl (a scikit-learn dependency) when
it is importable, else does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["single_blas_thread"]

_CONTROLLER: list[Any] = []


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread inside the ``with`` block.

    Examples
    --------
    >>> import numpy as np
    >>> with single_blas_thread():
    ...     float(np.ones(3) @ np.ones(3))
    3.0
    """
    if not _CONTROLLER:
        # load scipy's own BLAS (scipy-openblas) first: the controller only limits
        # the libraries loaded when it is made
        import scipy.linalg  # noqa: F401

        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - scikit-learn always brings it
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    ctl = _CONTROLLER[0]
    if ctl is None:  # pragma: no cover
        yield
        return
    with ctl.limit(limits=1, user_api="blas"):
        yield
