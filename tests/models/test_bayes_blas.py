"""PyTensor without BLAS (issue 26, item 4): only PyMC's own NUTS is slowed, and it
says so; numpyro (the default) is not affected."""

from __future__ import annotations

import pytensor
import pytest

from alsprog.models.bayes._sampling import NO_BLAS_MESSAGE, no_blas_note


@pytest.mark.parametrize("flags", ["", "-lopenblas"])
def test_the_note_follows_pytensors_blas_flags(monkeypatch, flags):
    monkeypatch.setattr(pytensor.config, "blas__ldflags", flags)
    assert no_blas_note() == (NO_BLAS_MESSAGE if not flags else None)
