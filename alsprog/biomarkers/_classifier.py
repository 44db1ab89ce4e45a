"""ImagingClassifier: one leakage-free scikit-learn pipeline from imaging features.

Owns: :class:`ImagingClassifier`: feature selection, imputation, in-fold ComBat
harmonisation, scaling and the classifier in one :class:`sklearn.pipeline.Pipeline`
(so a cross-validation fits every step on the training fold only), plus optional
grouped inner-CV tuning and SVM calibration.
Leaves: feature columns, patterns and the positive class to
:mod:`alsprog.biomarkers._features`, the pipeline's steps to
:mod:`alsprog.biomarkers._steps`, cross-validation, metrics and guards to
:mod:`alsprog.biomarkers._evaluate`, the ComBat numerics to :mod:`alsprog.imaging`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError as SkNotFittedError

from alsprog._random import as_generator, child_seed
from alsprog._validation import check_choice, check_is_fitted
from alsprog.biomarkers._features import (
    _same,
    check_feature_values,
    resolve_positive,
    select_features,
)
from alsprog.biomarkers._steps import SITE, _Encode, _FoldComBat, _Impute
from alsprog.errors import (
    DataValidationError,
    ModelSpecificationError,
    NotFittedError,
    Problem,
)

__all__ = ["ImagingClassifier"]

_ESTIMATORS = ("logistic", "svm", "rf", "mlp")


class ImagingClassifier(ClassifierMixin, BaseEstimator):
    """Binary classifier (e.g. ALS vs control) from regional imaging features.

    Every step that learns from data (imputation, ComBat, scaling, the classifier and,
    when ``param_grid`` is given, the hyper-parameter search) lives in one
    :class:`~sklearn.pipeline.Pipeline` fitted on the rows passed to :meth:`fit`, so
    under cross-validation nothing from a test fold reaches training.

    Parameters
    ----------
    estimator : {"logistic", "svm", "rf", "mlp"} or classifier, default "logistic"
        L2 logistic regression, linear-kernel SVC (scores from ``decision_function``,
        probabilities by :class:`~sklearn.calibration.CalibratedClassifierCV` on
        subject-grouped inner folds), a 300-tree random forest, a one-hidden-layer
        perceptron stopped early on held-out subjects
        (:class:`~alsprog.biomarkers._mlp.GroupedEarlyStoppingMLP`), or any unfitted
        scikit-learn classifier (cloned).  An estimator whose ``fit`` takes
        ``groups`` is given the subjects of its training rows.
    features : str or sequence of str, optional
        Feature columns by name or shell pattern (``"fa_*"``).  Default: every
        ``<metric>_<region>`` imaging column of the data dictionary in ``X``.
        Ignored for array input (all columns are features).
    harmonize : {None, "combat"}, default None
        ``"combat"``: ComBat across sites, fitted on the training rows with
        ``covariates`` protected (never the diagnosis: it is unknown at test time).
        Rows from a site unseen in fit are aligned by their own feature means and
        SDs to the harmonised training data.
    covariates : sequence of str, default ("age", "sex")
        Extra predictors taken from ``X`` (text columns as indicators), also
        protected by ComBat.  Ignored for array input.
    class_weight : "balanced", dict or None, default "balanced"
        Passed to the built-in estimators.
    param_grid : dict, optional
        Grid of the final estimator's parameters (``{"C": [0.1, 1, 10]}``), tuned by
        ROC AUC over 3 subject-grouped inner folds; under
        :func:`evaluate_classifier` this is nested cross-validation.
    random_state : int, Generator or None
        Seed of the forest, the network, the inner folds and the calibration folds.
    positive : object, optional
        The positive class (the one :meth:`positive_score` scores and
        :func:`evaluate_classifier` computes sensitivity for): one of the labels of
        ``y``, or text equal to one but for case (``"als"`` finds ``"ALS"``).
        Default: the data dictionary's ALS label ``"als"`` found ignoring case;
        labels without it take scikit-learn's convention, the second class.  A label
        that is not a class, or two classes that are both ``als`` but for case, are
        refused.

    Attributes
    ----------
    classes_ : numpy.ndarray
        The two classes, sorted; ``classes_[1]`` is the one
        :meth:`decision_function` scores (scikit-learn's convention), whichever is
        positive.
    pos_label_ : object
        The positive class, an element of ``classes_`` (``"ALS"`` for labels
        ``ALS``/``HC``).
    features_ : list of str
        Feature columns used.
    covariates_ : list of str
        Covariates used.
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted pipeline (best one when tuned).
    calibrator_ : CalibratedClassifierCV or None
        Probability calibration of ``"svm"``.
    best_params_ : dict or None
        Tuned parameters.
    train_subjects_ : numpy.ndarray or None
        Subjects seen in fit (from ``groups``).
    n_features_in_ : int
    feature_names_in_ : numpy.ndarray
        Only for DataFrame input.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"fa_cst_left": rng.normal(0.55, 0.03, 80),
    ...                   "age": rng.uniform(40, 80, 80),
    ...                   "sex": rng.choice(["F", "M"], 80)})
    >>> y = np.repeat(["als", "control"], 40)
    >>> X.loc[:39, "fa_cst_left"] -= 0.03
    >>> clf = ImagingClassifier(random_state=0).fit(X, y)
    >>> clf.features_, clf.classes_.tolist(), clf.pos_label_
    (['fa_cst_left'], ['als', 'control'], 'als')
    >>> bool(clf.score(X, y) > 0.6)
    True
    """

    def __init__(
        self,
        estimator: Any = "logistic",
        *,
        features: str | Sequence[str] | None = None,
        harmonize: str | None = None,
        covariates: Sequence[str] = ("age", "sex"),
        class_weight: Any = "balanced",
        param_grid: Mapping[str, Sequence[Any]] | None = None,
        random_state: Any = None,
        positive: Any = None,
    ) -> None:
        self.estimator = estimator
        self.features = features
        self.harmonize = harmonize
        self.covariates = covariates
        self.class_weight = class_weight
        self.param_grid = param_grid
        self.random_state = random_state
        self.positive = positive

    # ----------------------------------------------------------------- helpers

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    def covariates_list(self) -> list[str]:
        """``covariates`` as a list (a single string is one column)."""
        cov = self.covariates
        return [cov] if isinstance(cov, str) else list(cov or ())

    def _final_estimator(self, seed: int) -> Any:
        est = self.estimator
        if isinstance(est, str):
            check_choice(est, "estimator", _ESTIMATORS, error=ModelSpecificationError)
            if est == "logistic":
                from sklearn.linear_model import LogisticRegression

                return LogisticRegression(class_weight=self.class_weight, max_iter=2000)
            if est == "mlp":
                from alsprog.biomarkers._mlp import GroupedEarlyStoppingMLP

                return GroupedEarlyStoppingMLP(
                    class_weight=self.class_weight, random_state=seed
                )
            if est == "svm":
                from sklearn.svm import SVC

                return SVC(kernel="linear", class_weight=self.class_weight)
            from sklearn.ensemble import RandomForestClassifier

            return RandomForestClassifier(
                n_estimators=300,
                class_weight=self.class_weight,
                min_samples_leaf=2,
                random_state=seed,
            )
        if not (hasattr(est, "fit") and hasattr(est, "get_params")):
            raise ModelSpecificationError(
                f"`estimator` must be 'logistic', 'svm', 'rf', 'mlp' or a scikit-learn "
                f"classifier; got {est!r}."
            )
        out = clone(est)
        if (
            "random_state" in out.get_params()
            and out.get_params()["random_state"] is None
        ):
            out.set_params(random_state=seed)
        return out

    def _frame(self, X: Any, sites: Any, *, fit: bool) -> pd.DataFrame:
        """The pipeline's input: features, covariates and (when harmonising) site."""
        from sklearn.utils.validation import validate_data

        if isinstance(X, pd.DataFrame) and not all(
            isinstance(c, str) for c in X.columns
        ):
            X = X.to_numpy()
        if isinstance(X, pd.DataFrame):
            if fit:
                self.n_features_in_ = X.shape[1]
                self.feature_names_in_ = np.asarray(X.columns, dtype=object)
                self.features_ = select_features(list(X.columns), self.features)
                cov = (
                    [self.covariates]
                    if isinstance(self.covariates, str)
                    else list(self.covariates or ())
                )
                missing = [c for c in cov if c not in X.columns]
                if missing:
                    raise ModelSpecificationError(
                        f"covariate column(s) {missing} not in the table; pass "
                        "`covariates=()` to use imaging features only"
                    )
                self.covariates_ = [c for c in cov if c not in self.features_]
                self._array_input = False
            else:
                missing = [c for c in self.features_ + self.covariates_ if c not in X]
                if missing:
                    raise ModelSpecificationError(
                        f"column(s) {missing} used in fit are missing from `X`"
                    )
            frame = X[self.features_ + self.covariates_].copy()
            check_feature_values(frame, self.features_, "ImagingClassifier")
        else:
            arr = validate_data(
                self, X, reset=fit, ensure_all_finite="allow-nan", dtype=np.float64
            )
            if fit:
                self.features_ = [f"x{j}" for j in range(arr.shape[1])]
                self.covariates_ = []
                self._array_input = True
            frame = pd.DataFrame(arr, columns=self.features_)
        for c in self.features_:
            if not pd.api.types.is_numeric_dtype(frame[c]):
                raise ModelSpecificationError(
                    f"feature column {c!r} is not numeric (dtype {frame[c].dtype})"
                )
        if self.harmonize == "combat":
            if sites is None:
                if isinstance(X, pd.DataFrame) and "site" in X.columns:
                    sites = X["site"]
                else:
                    raise ModelSpecificationError(
                        "harmonize='combat' needs the site of each row: pass `sites` "
                        "or a 'site' column in `X`"
                    )
            elif isinstance(sites, str):
                if not isinstance(X, pd.DataFrame) or sites not in X.columns:
                    raise ModelSpecificationError(f"`sites` column {sites!r} not in X")
                sites = X[sites]
            s = np.asarray(sites, dtype=object)
            if len(s) != len(frame):
                raise ModelSpecificationError(
                    f"`sites` has {len(s)} values for {len(frame)} rows"
                )
            if pd.isna(s).any():
                raise DataValidationError(
                    [
                        Problem(
                            f"{int(pd.isna(s).sum())} rows have no site",
                            rule="required",
                            column="site",
                        )
                    ],
                    source="ImagingClassifier",
                )
            frame[SITE] = s.astype(str)
        return frame

    def _pipeline(self, seed: int) -> Any:
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        steps: list[tuple[str, Any]] = [("impute", _Impute())]
        if self.harmonize == "combat":
            steps.append(("combat", _FoldComBat(self.features_, self.covariates_)))
        steps += [
            ("encode", _Encode()),
            ("scale", StandardScaler()),
            ("clf", self._final_estimator(seed)),
        ]
        return Pipeline(steps)

    def _inner_splits(
        self, y: npt.NDArray[Any], groups: npt.NDArray[Any] | None, seed: int
    ) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]] | None:
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

        g = groups if groups is not None else np.arange(len(y))
        per_class = pd.Series(g).groupby(pd.Series(y)).nunique()
        k = int(min(3, per_class.min()))
        if k < 2:
            return None
        cv = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
        if groups is None:
            cv = StratifiedKFold(k, shuffle=True, random_state=seed)
        splits = list(cv.split(np.zeros(len(y)), y, g))
        if any(len(np.unique(y[tr])) < 2 for tr, _ in splits):
            return None
        return splits

    # ----------------------------------------------------------------- API

    def fit(
        self, X: Any, y: Any, groups: Any = None, sites: Any = None
    ) -> ImagingClassifier:
        """Fit the whole pipeline on the rows of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            One row per session: feature and covariate columns (and ``site`` when
            harmonising), or a numeric array of features.
        y : array-like
            Two classes.
        groups : array-like or str, optional
            Subject of each row (or its column name in ``X``); inner folds of the
            tuning and the SVM calibration keep each subject in one fold, and an
            estimator whose ``fit`` takes ``groups`` (``"mlp"``) gets them.
        sites : array-like or str, optional
            Site of each row (or its column name); default: the ``site`` column.

        Returns
        -------
        ImagingClassifier

        Raises
        ------
        DataValidationError
            If ``y`` does not have exactly two classes, or ``groups`` has missing
            values.
        ModelSpecificationError
            Bad parameters, features matching no column, missing covariates, a
            ``positive`` label that is not a class (or matches both ignoring case).
        """
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import column_or_1d

        check_choice(
            self.harmonize, "harmonize", (None, "combat"), error=ModelSpecificationError
        )
        rng = as_generator(self.random_state)
        seed = child_seed(rng)
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        yv = column_or_1d(y, warn=True)
        check_classification_targets(yv)
        if isinstance(groups, str) and isinstance(X, pd.DataFrame):
            groups = X[groups]
        frame = self._frame(X, sites, fit=True)
        if len(yv) != len(frame):
            raise ValueError(f"`y` has {len(yv)} values for {len(frame)} rows of X")
        if pd.isna(pd.Series(yv, dtype=object)).any():
            raise DataValidationError(
                [
                    Problem(
                        f"{int(pd.isna(pd.Series(yv, dtype=object)).sum())} rows have "
                        "a missing target",
                        rule="required",
                        column="target",
                    )
                ],
                source="ImagingClassifier",
            )
        classes = np.unique(yv)
        if len(classes) != 2:
            what = "only one class" if len(classes) < 2 else f"{len(classes)} classes"
            raise DataValidationError(
                [
                    Problem(
                        f"the target has {what} ({classes.tolist()}). Only binary "
                        "classification is supported.",
                        rule="classes",
                        column="target",
                        value=classes.tolist(),
                    )
                ],
                source="ImagingClassifier",
            )
        self.classes_ = classes
        self.pos_label_ = resolve_positive(classes, self.positive, strict=False)
        g = None
        if groups is not None:
            g = np.asarray(groups, dtype=object)
            if len(g) != len(yv):
                raise ModelSpecificationError(
                    f"`groups` has {len(g)} values for {len(yv)} rows"
                )
            if pd.isna(g).any():
                raise DataValidationError(
                    [
                        Problem(
                            f"{int(pd.isna(g).sum())} rows have a missing subject "
                            "in `groups`; every session needs its subject",
                            rule="required",
                            column="groups",
                        )
                    ],
                    source="ImagingClassifier",
                )
        self.train_subjects_ = None if g is None else np.unique(g.astype(str))
        self._check_options()
        pipe = self._pipeline(seed)
        fit_params = _groups_param(pipe[-1], g)
        self.best_params_ = None
        if self.param_grid:
            from sklearn.model_selection import GridSearchCV

            grid = {
                (k if "__" in k else f"clf__{k}"): list(v)
                for k, v in dict(self.param_grid).items()
            }
            splits = self._inner_splits(yv, g, seed)
            if splits is None:
                raise DataValidationError(
                    [
                        Problem(
                            "too few subjects per class for inner tuning folds",
                            rule="folds",
                        )
                    ],
                    source="ImagingClassifier",
                )
            search = GridSearchCV(pipe, grid, scoring="roc_auc", cv=splits, refit=True)
            search.fit(frame, yv, **fit_params)
            pipe = search.best_estimator_
            self.best_params_ = dict(search.best_params_)
        else:
            pipe.fit(frame, yv, **fit_params)
        self.pipeline_ = pipe
        self.calibrator_ = None
        if not hasattr(pipe, "predict_proba") or not _has_proba(pipe):
            from sklearn.calibration import CalibratedClassifierCV

            splits = self._inner_splits(yv, g, seed)
            if splits is None:
                from sklearn.frozen import FrozenEstimator

                cal = CalibratedClassifierCV(FrozenEstimator(pipe), method="sigmoid")
            else:
                cal = CalibratedClassifierCV(
                    clone(pipe), method="sigmoid", cv=splits, ensemble=False
                )
            self.calibrator_ = cal.fit(frame, yv)
        return self

    def _check_options(self) -> None:
        """``class_weight`` and ``param_grid`` as scikit-learn will take them."""
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, Mapping)):
            raise ModelSpecificationError(
                f"`class_weight` must be 'balanced', a dict {{class: weight}} or None; "
                f"got {cw!r}."
            )
        if not self.param_grid:
            return
        if not isinstance(self.param_grid, Mapping):
            raise ModelSpecificationError(
                "`param_grid` must be a dict {parameter: list of values}; got "
                f"{self.param_grid!r}."
            )
        valid = sorted(self._final_estimator(0).get_params(deep=False))
        for k, v in self.param_grid.items():
            name = str(k).removeprefix("clf__")
            if "__" not in str(k).removeprefix("clf__") and name not in valid:
                raise ModelSpecificationError(
                    f"`param_grid` names {k!r}, not a parameter of the "
                    f"{self.estimator!r} estimator; valid: {', '.join(valid)}."
                )
            if isinstance(v, str) or not isinstance(v, Iterable) or not list(v):
                raise ModelSpecificationError(
                    f"`param_grid`[{k!r}] must be a non-empty list of values; got {v!r}."
                )

    def _prepare(self, X: Any, sites: Any, groups: Any) -> pd.DataFrame:
        _check_fitted(self)
        if groups is not None and self.train_subjects_ is not None:
            from alsprog.biomarkers._guards import check_subject_overlap

            if isinstance(groups, str) and isinstance(X, pd.DataFrame):
                groups = X[groups]
            check_subject_overlap(
                self.train_subjects_,
                np.asarray(groups, dtype=object).astype(str),
                stacklevel=4,
            )
        if isinstance(X, pd.DataFrame) and self._array_input:
            X = X.to_numpy()
        frame = self._frame(X, sites, fit=False)
        if len(frame) == 0:
            raise ModelSpecificationError("`X` has no rows to predict.")
        return frame

    def predict(
        self, X: Any, *, sites: Any = None, groups: Any = None
    ) -> npt.NDArray[Any]:
        """Predicted class of each row (``groups`` given: warn on subjects seen in fit).

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Same columns as in fit.
        sites, groups : array-like or str, optional
            As in :meth:`fit`.

        Returns
        -------
        numpy.ndarray
        """
        score = self.decision_function(X, sites=sites, groups=groups)
        return self.classes_[(score > 0).astype(int)]

    def predict_proba(
        self, X: Any, *, sites: Any = None, groups: Any = None
    ) -> npt.NDArray[np.float64]:
        """Class probabilities, columns in the order of ``classes_``.

        For ``"svm"`` and other estimators without ``predict_proba`` they come from
        the sigmoid calibration (``calibrator_``).
        """
        frame = self._prepare(X, sites, groups)
        model = self.calibrator_ if self.calibrator_ is not None else self.pipeline_
        return np.asarray(model.predict_proba(frame), np.float64)

    def decision_function(
        self, X: Any, *, sites: Any = None, groups: Any = None
    ) -> npt.NDArray[np.float64]:
        """Score of ``classes_[1]``: the estimator's decision function, or the
        log-odds of its probability when it has none (random forest)."""
        frame = self._prepare(X, sites, groups)
        pipe = self.pipeline_
        if hasattr(pipe[-1], "decision_function"):
            return np.asarray(pipe.decision_function(frame), np.float64).ravel()
        p = np.clip(np.asarray(pipe.predict_proba(frame))[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)

    def positive_score(
        self, X: Any, *, sites: Any = None, groups: Any = None
    ) -> npt.NDArray[np.float64]:
        """Score of the positive class ``pos_label_``: larger = more likely positive.

        :meth:`decision_function` negated when the positive class is ``classes_[0]``
        (labels ``ALS``/``HC`` sort ``ALS`` first).

        Examples
        --------
        >>> X = pd.DataFrame({"fa_cst_left": [0.50, 0.51, 0.58, 0.59]})
        >>> clf = ImagingClassifier(covariates=()).fit(X, ["ALS", "ALS", "HC", "HC"])
        >>> clf.pos_label_, bool(clf.positive_score(X)[0] > 0)
        ('ALS', True)
        """
        score = self.decision_function(X, sites=sites, groups=groups)
        return -score if _same(self.classes_[0], self.pos_label_) else score

    def feature_names_out(self) -> list[str]:
        """Names of the columns reaching the final estimator (after encoding)."""
        _check_fitted(self)
        return list(self.pipeline_.named_steps["encode"].names_)


class _NotFittedError(NotFittedError, SkNotFittedError):
    """alsprog's NotFittedError that scikit-learn tooling also recognises."""


def _check_fitted(est: Any) -> None:
    try:
        check_is_fitted(est, ["pipeline_"])
    except NotFittedError as exc:
        raise _NotFittedError(str(exc)) from None


def _groups_param(final: Any, groups: Any) -> dict[str, Any]:
    """``{"clf__groups": groups}`` when the final estimator's ``fit`` takes
    ``groups`` (the pipeline and the grid search slice it per fold), else ``{}``."""
    import inspect

    if groups is None:
        return {}
    try:
        takes = "groups" in inspect.signature(final.fit).parameters
    except (TypeError, ValueError):
        takes = False
    return {"clf__groups": groups} if takes else {}


def _has_proba(pipe: Any) -> bool:
    final = pipe[-1]
    try:
        return bool(hasattr(final, "predict_proba"))
    except AttributeError:
        return False
