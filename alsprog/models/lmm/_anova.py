"""Type III hypotheses of a mixed model's fixed-effect terms, as lmerTest forms them.

Owns: :func:`type3_contrasts`, one contrast matrix over the fixed effects per term
of the fixed part (SAS's type III hypotheses, lmerTest's
``get_contrasts_type3``): the full-dummy ("rank-deficient") design of every term
expressed in the model's treatment-coded parameters, each term's columns made
orthogonal to those of the terms that contain it (higher-order terms first).
Leaves: the F-tests to :mod:`alsprog.models.lmm._ddf`; the table to
:mod:`alsprog.models.lmm._inference`.

Reference: Kuznetsova A, Brockhoff PB, Christensen RHB. lmerTest package: tests in
linear mixed effects models. J Stat Softw 2017;82(13); Goodnight JH. Tests of
hypotheses in fixed-effects linear models. Commun Stat Theory Methods
1980;9:167-180.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog.errors import ModelSpecificationError

__all__ = ["type3_contrasts"]

Array = npt.NDArray[np.float64]


def _zap(x: Array, digits: int = 7) -> Array:
    """R's ``zapsmall(x)`` (7 significant digits of the largest entry)."""
    fin = np.abs(x[np.isfinite(x)])
    mx = float(fin.max()) if fin.size else 0.0
    d = max(0.0, digits - math.log10(mx)) if mx > 0 else digits
    return np.round(x, int(math.floor(d + 0.5)))


def _kinds(spec: Any) -> dict[str, str]:
    """Each factor expression of the fixed part: ``"numerical"`` or
    ``"categorical"`` (treatment-coded only)."""
    out: dict[str, str] = {}
    for expr, (kind, state) in spec.encoder_state.items():
        name = getattr(kind, "value", str(kind))
        if name == "categorical":
            contrasts = state.get("contrasts")
            coding = type(getattr(contrasts, "contrasts", None)).__name__
            if coding not in ("TreatmentContrasts", "NoneType"):
                raise ModelSpecificationError(
                    f"type III tests take treatment-coded factors (the default); "
                    f"{expr!r} uses {coding}."
                )
        out[expr] = name
    return out


def type3_contrasts(spec: Any, frame: pd.DataFrame) -> dict[str, Array]:
    """The type III contrast matrix of every non-intercept term of ``spec`` (a
    formulaic ModelSpec of the fixed effects, evaluated on ``frame``)."""
    from formulaic import model_matrix

    from alsprog._formula_text import formula_context

    X = np.asarray(
        spec.get_model_matrix(frame, na_action="raise", context=formula_context()),
        dtype=float,
    )
    names = list(spec.column_names)
    kinds = _kinds(spec)
    terms = [t for t in spec.terms if str(t) != "1"]
    col_map = {str(t): list(idx) for t, idx in spec.term_indices.items()}
    # the rank-deficient design: every level of every factor in each term
    blocks, rd_names = [], []
    if "1" in col_map:
        blocks.append(np.ones((len(frame), 1)))
        rd_names.append("Intercept")
    for t in terms:
        mm = model_matrix(
            f"0 + {t}", frame, ensure_full_rank=False, context=formula_context()
        )
        blocks.append(np.asarray(mm, dtype=float))
        rd_names += list(mm.columns)
    rdX = np.hstack(blocks)
    L = _zap((np.linalg.pinv(X) @ rdX).T)  # rdX parameters in X's parameters
    factors = {str(t): [str(f.expr) for f in t.factors] for t in terms}
    numerics = {
        k: {v for v in vs if kinds.get(v) == "numerical"} for k, vs in factors.items()
    }

    def contains(a: str, b: str) -> bool:
        va, vb = set(factors[a]), set(factors[b])
        return va < vb and numerics[a] == numerics[b]

    for t in sorted(terms, key=lambda t: len(t.factors), reverse=True):
        a = str(t)
        bigger = [str(u) for u in terms if contains(a, str(u))]
        if not bigger:
            continue
        A = L[:, [c for b in bigger for c in col_map[b]]]
        Y = L[:, col_map[a]]
        coef, *_ = np.linalg.lstsq(A, Y, rcond=None)
        L[:, col_map[a]] = _zap(Y - A @ coef)
    # the rows of X's own parameters (treatment level names without "T.")
    plain = {re.sub(r"\[T\.", "[", n): i for i, n in enumerate(rd_names)}
    rows = []
    for n in names:
        key = re.sub(r"\[T\.", "[", n)
        if key not in plain:
            raise ModelSpecificationError(
                f"type III tests cannot map the coefficient {n!r} (a transformed or "
                "custom-coded term): test it with contest(L, joint=True)."
            )
        rows.append(plain[key])
    L = L[rows]
    out = {}
    for t in terms:
        Lt = L[:, col_map[str(t)]].T
        out[str(t)] = Lt[np.abs(Lt).sum(axis=1) > 1e-8]
    return out
