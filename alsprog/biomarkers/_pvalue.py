"""Permutation p-values: how many permutations by default, and how a p-value is shown.

Owns: :data:`DEFAULT_N_PERMUTATIONS` (the one default of the library, the
``alsprog classify`` command, the run config and the demo), :func:`permutation_pvalue`
and :func:`format_pvalue` (the p-value with its permutation count and its floor, as
the CLI, the report and ``repr`` show it).
Leaves: permuting labels and refitting to :mod:`alsprog.biomarkers._folds`.

This module imports nothing heavy, so the command line can show the default in
``--help`` without loading scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["DEFAULT_N_PERMUTATIONS", "format_pvalue", "permutation_pvalue"]

#: Label permutations of the classifier's AUC test unless told otherwise: the smallest
#: p-value it can give is 1/201 (about 0.005), and on the 260-subject demo cohort it
#: takes about 10 s on one worker with ComBat inside each fold (fitted once per fold:
#: only the final estimator sees the permuted labels).
DEFAULT_N_PERMUTATIONS = 200


def permutation_pvalue(observed: float, permuted: Sequence[float]) -> float:
    """``(1 + #{permuted >= observed}) / (1 + n)``, never 0 (Phipson & Smyth 2010).

    Parameters
    ----------
    observed : float
        The statistic on the real labels.
    permuted : sequence of float
        The statistic under each of ``n >= 1`` label permutations.

    Returns
    -------
    float
        The p-value, in ``[1 / (n + 1), 1]``.

    References
    ----------
    Phipson B, Smyth GK (2010). Permutation p-values should never be zero.
    Stat Appl Genet Mol Biol 9:39.

    Examples
    --------
    >>> permutation_pvalue(0.8, [0.5, 0.6, 0.85, 0.4])
    0.4
    """
    values = list(permuted)
    if not values:
        raise ValueError("`permuted` is empty: a permutation p-value needs n >= 1.")
    hits = sum(1 for v in values if v >= observed)
    return (1 + hits) / (1 + len(values))


def _decimal(p: float) -> str:
    """Two significant digits in plain decimal notation (no exponent)."""
    r = float(f"{p:.2g}")
    digits = max(1, 1 - math.floor(math.log10(r)))
    return f"{r:.{digits}f}"


def format_pvalue(p: float | None, n_permutations: int) -> str:
    """A permutation p-value with its permutation count and floor, for people.

    Parameters
    ----------
    p : float or None
        The p-value (``None`` when no permutation ran).
    n_permutations : int
        Permutations behind it; the smallest possible p-value is
        ``1 / (n_permutations + 1)``.

    Returns
    -------
    str
        ``"p = 0.012 (1000 permutations)"``; at the floor, when no permuted
        statistic reached the observed one, ``"p <= 1/1001 (none of 1000
        permutations reached the observed AUC)"``; ``"not computed (0
        permutations)"`` without permutations.

    Examples
    --------
    >>> format_pvalue(1 / 1001, 1000)
    'p <= 1/1001 (none of 1000 permutations reached the observed AUC)'
    >>> format_pvalue(13 / 1001, 1000)
    'p = 0.013 (1000 permutations; smallest possible 1/1001)'
    >>> format_pvalue(None, 0)
    'not computed (0 permutations)'
    """
    n = int(n_permutations)
    if p is None or n == 0 or (isinstance(p, float) and math.isnan(p)):
        return f"not computed ({n} permutations)"
    if round(float(p) * (n + 1)) <= 1:
        return (
            f"p <= 1/{n + 1} (none of {n} permutation{'s' if n != 1 else ''} "
            "reached the observed AUC)"
        )
    return (
        f"p = {_decimal(float(p))} ({n} permutation{'s' if n != 1 else ''}; "
        f"smallest possible 1/{n + 1})"
    )
