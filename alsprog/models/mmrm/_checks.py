"""Checks of an MMRM's design and fit: numeric columns, identifiability, rank,
convergence.

Owns: the checks :class:`~alsprog.models.MMRM` runs on its design before fitting and
on the optimiser's result after, with messages naming the culprit.
Leaves: the estimator to :mod:`alsprog.models.mmrm._model`; the REML numerics to
:mod:`alsprog.models.mmrm._numerics`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import ModelSpecificationError

__all__ = [
    "_numeric_design",
    "_first_values",
    "_check_identifiable",
    "_assess_convergence",
    "_text",
    "_py",
    "_check_rank",
]

Array = npt.NDArray[np.float64]
#: Outcome spread (SD) that the REML criterion handles in double precision: beyond
#: it, squares of residuals overflow or underflow.
_SPREAD_RANGE = (1e-100, 1e100)


def _numeric_design(
    mm: object, sub: pd.DataFrame, formula: str, subject: str, visit: str
) -> tuple[Array, Array]:
    """Outcome and fixed-effects matrix as finite floats, or a clear error."""
    lhs = mm.lhs  # type: ignore[attr-defined]
    rhs = mm.rhs  # type: ignore[attr-defined]
    outcome = formula.split("~")[0].strip()
    if lhs.shape[1] != 1:
        raise ModelSpecificationError(
            f"The outcome {outcome!r} of {formula!r} must be numeric; it has "
            f"{lhs.shape[1]} categories (values such as "
            f"{_first_values(lhs, sub, outcome)})."
        )
    y = np.asarray(lhs, dtype=float).ravel()
    X = np.asarray(rhs, dtype=float)
    for what, arr, labels in (
        ("outcome", y[:, None], [outcome]),
        ("fixed-effects term", X, [str(c) for c in rhs.columns]),
    ):
        bad = ~np.isfinite(arr)
        if bad.any():
            i, j = map(int, np.argwhere(bad)[0])
            row = sub.iloc[i]
            raise ModelSpecificationError(
                f"The {what} {labels[j]!r} of {formula!r} is {float(arr[i, j])!r} for "
                f"subject {_py(row[subject])!r} at visit {_py(row[visit])!r} "
                f"({int(bad.sum())} non-finite value(s)); an MMRM needs finite numbers."
            )
    top = float(np.max(np.abs(y)))
    if np.ptp(y) == 0.0:
        raise ModelSpecificationError(
            f"The outcome {outcome!r} is constant ({_py(y[0])!r} in all {len(y)} "
            "rows); there is no variation over visits to model."
        )
    spread = float(np.std(y / top)) * top  # no overflow or underflow on the way
    if not (_SPREAD_RANGE[0] < spread < _SPREAD_RANGE[1]):
        raise ModelSpecificationError(
            f"The outcome {outcome!r} has standard deviation {spread:.3g}, outside "
            f"{_SPREAD_RANGE[0]:g} to {_SPREAD_RANGE[1]:g}; rescale it (e.g. to "
            "points, mm or grams) before fitting."
        )
    return y, X


def _first_values(lhs: object, sub: pd.DataFrame, outcome: str) -> str:
    if outcome in sub.columns:
        return ", ".join(repr(_py(v)) for v in sub[outcome].iloc[:3])
    return ", ".join(str(c) for c in lhs.columns[:3])  # type: ignore[attr-defined]


def _check_identifiable(
    y: Array,
    res: Array,
    subj: npt.NDArray[np.intp],
    vis: npt.NDArray[np.intp],
    visits: list,
    formula: str,
    visit_col: str,
    structure: str,
    where: str = "",
) -> None:
    """Refuse data whose visit covariance cannot be estimated (before optimising).

    The fixed effects must leave residual variation (not fit the outcome exactly),
    at every visit; with an unstructured covariance every visit needs two subjects
    and every pair of visits one subject seen at both.  ``where`` (e.g. ``" in
    group 'A'"``) is added to the messages of a group-specific covariance.
    """
    outcome = formula.split("~")[0].strip()
    tiny = 1e-10 * float(np.max(np.abs(y)))
    if np.all(np.abs(res) <= tiny):
        raise ModelSpecificationError(
            f"The fixed effects of {formula!r} reproduce the outcome {outcome!r} "
            "exactly (all residuals 0); nothing is left to estimate the covariance "
            "over visits from. Check the outcome column."
        )
    T = len(visits)
    n_at = np.bincount(vis, minlength=T)
    if structure == "unstructured":
        few = np.flatnonzero(n_at < 2)
        if few.size:
            j = int(few[0])
            raise ModelSpecificationError(
                f"Visit {_py(visits[j])!r} ({visit_col!r}) has {int(n_at[j])} "
                f"subject{where}; an unstructured covariance needs at least 2 per "
                "visit. Drop "
                "or merge that visit, or use covariance='compound_symmetry' or 'ar1'."
            )
    for j in range(T):
        at = vis == j
        if n_at[j] < 2:
            continue
        if np.ptp(y[at]) == 0.0 or np.all(np.abs(res[at]) <= tiny):
            what = (
                f"{outcome!r} is {_py(y[at][0])!r} for all"
                if np.ptp(y[at]) == 0.0
                else f"the fixed effects reproduce {outcome!r} exactly for all"
            )
            raise ModelSpecificationError(
                f"At visit {_py(visits[j])!r} ({visit_col!r}) {what} {int(n_at[j])} "
                "subjects, so its variance cannot be estimated (e.g. a change from "
                "baseline that is 0 at the baseline visit). Drop that visit; "
                "baseline belongs in the formula as a covariate."
            )
    if structure != "unstructured":
        return
    seen = np.zeros((int(subj.max()) + 1, T), dtype=bool)
    seen[subj, vis] = True
    together = seen.T.astype(np.int64) @ seen.astype(np.int64)
    never = np.argwhere(together == 0)
    if never.size:
        j, k = map(int, never[0])
        raise ModelSpecificationError(
            f"No subject{where} has both visit {_py(visits[j])!r} and visit "
            f"{_py(visits[k])!r}; their covariance cannot be estimated with an "
            "unstructured covariance. Use covariance='compound_symmetry' or 'ar1'."
        )


#: Largest Newton decrement ``g'H^{-1}g`` (twice the further decrease of the REML
#: criterion ``-2 l_R`` a Newton step predicts) at which a fit counts as converged.
_DECREMENT_TOL = 1e-6


def _assess_convergence(
    value: float, grad: Array, H: Array, evals: npt.NDArray[np.floating]
) -> tuple[bool, float]:
    """Whether the REML fit is at a minimum, and the Newton decrement there.

    Judged at the final parameters (after the last Newton correction), by a
    scale-free test: the Hessian of ``-2 l_R`` is positive definite and the Newton
    decrement ``g'H^{-1}g`` is below :data:`_DECREMENT_TOL`.  The decrement does not
    depend on how the covariance is parameterised nor on the outcome's units (a
    Cholesky factor in grams has entries in the hundreds), unlike the size of the
    last step, and the optimiser's own status message is not used: L-BFGS-B stops
    with "CONVERGENCE: REL_REDUCTION_OF_F <= FACTR*EPSMCH" or an abnormal line-search
    end at a minimum that the Newton step then polishes.
    """
    if not (np.isfinite(value) and np.all(np.isfinite(grad)) and evals.min() > 0):
        return False, float("inf")
    try:
        decrement = float(grad @ np.linalg.solve(H, grad))
    except np.linalg.LinAlgError:
        return False, float("inf")
    return bool(decrement < _DECREMENT_TOL), decrement


def _text(message: object) -> str:
    """An optimiser message as text (older scipy gives L-BFGS-B's as bytes)."""
    if isinstance(message, bytes):
        return message.decode("ascii", errors="replace")
    return str(message)


def _py(v: object) -> object:
    """A numpy scalar as the Python value (for messages)."""
    item = getattr(v, "item", None)
    return item() if callable(item) else v


def _check_rank(X: Array, names: list[str], formula: str) -> None:
    from alsprog.models._formula import _check_rank as check

    check(X, names, formula)
