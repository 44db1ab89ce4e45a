"""The pipeline steps of :class:`~alsprog.biomarkers.ImagingClassifier` before scaling.

Owns: imputation by training medians and modes, ComBat harmonisation fitted on the
training fold (and the alignment of a site unseen in fit), and the encoding of the
frame into a float matrix (text as indicators, the site column left out), each a
scikit-learn transformer, and :data:`SITE`, the site column they pass along.
Leaves: assembling the pipeline to :mod:`alsprog.biomarkers._classifier`, the ComBat
numerics to :mod:`alsprog.imaging`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["SITE"]

#: The pipeline's column holding each row's site (named so no feature can clash).
SITE = "__site__"


class _Impute(TransformerMixin, BaseEstimator):
    """Fill missing values with training medians (numbers) or modes (text)."""

    def fit(self, X: pd.DataFrame, y: Any = None) -> _Impute:
        fill: dict[str, Any] = {}
        for c in X.columns:
            if c == SITE:
                continue
            col = X[c]
            if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(
                col
            ):
                v = col.median()
                fill[c] = 0.0 if pd.isna(v) else float(v)
            else:
                m = col.mode(dropna=True)
                fill[c] = m.iloc[0] if len(m) else "missing"
        self.fill_ = fill
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        for c, v in self.fill_.items():
            if out[c].isna().any():
                out[c] = out[c].fillna(v)
        return out


class _FoldComBat(TransformerMixin, BaseEstimator):
    """ComBat fitted on the training fold; a site unseen in fit is aligned by its own
    feature means and SDs to the harmonised training data (no labels used)."""

    def __init__(self, features: Sequence[str] = (), covariates: Sequence[str] = ()):
        self.features = features
        self.covariates = covariates

    def fit(self, X: pd.DataFrame, y: Any = None) -> _FoldComBat:
        from alsprog.imaging import ComBat

        self.combat_ = ComBat(
            batch=SITE, covariates=list(self.covariates), features=list(self.features)
        ).fit(X)
        harm = self.combat_.transform(X)[list(self.features)]
        self.mean_ = harm.mean().to_numpy()
        self.sd_ = harm.std(ddof=1).fillna(1.0).to_numpy()
        self.sites_ = set(self.combat_.batches_)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        feats = list(self.features)
        seen = X[SITE].isin(list(self.sites_)).to_numpy()
        out = X.copy()
        if seen.any():
            out.loc[seen, feats] = self.combat_.transform(X.loc[seen])[feats].to_numpy()
        for s in pd.unique(X.loc[~seen, SITE]):
            rows = (X[SITE] == s).to_numpy()
            v = X.loc[rows, feats].to_numpy(np.float64)
            sd = v.std(axis=0, ddof=1) if len(v) > 1 else np.ones(v.shape[1])
            sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
            out.loc[rows, feats] = (v - v.mean(axis=0)) / sd * self.sd_ + self.mean_
        return out


class _Encode(TransformerMixin, BaseEstimator):
    """Frame to float matrix: numbers as they are, text as indicators (first level
    dropped), the site column left out."""

    def fit(self, X: pd.DataFrame, y: Any = None) -> _Encode:
        self.levels_: dict[str, list[Any]] = {}
        for c in X.columns:
            if c == SITE:
                continue
            col = X[c]
            if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(
                col
            ):
                self.levels_[c] = sorted(pd.unique(col.dropna()), key=str)
        self.columns_ = [c for c in X.columns if c != SITE]
        names: list[str] = []
        for c in self.columns_:
            if c in self.levels_:
                names += [f"{c}[T.{lv}]" for lv in self.levels_[c][1:]]
            else:
                names.append(c)
        self.names_ = names
        return self

    def transform(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:
        parts = []
        for c in self.columns_:
            if c in self.levels_:
                vals = X[c].to_numpy(dtype=object)
                for lv in self.levels_[c][1:]:
                    parts.append((vals == lv).astype(np.float64))
            else:
                parts.append(X[c].to_numpy(np.float64))
        return np.column_stack(parts) if parts else np.empty((len(X), 0))

    def get_feature_names_out(self, input_features: Any = None) -> npt.NDArray[Any]:
        return np.asarray(self.names_, dtype=object)
