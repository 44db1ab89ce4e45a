"""A small multilayer perceptron with early stopping on a subject-grouped split.

Owns: :class:`GroupedEarlyStoppingMLP` (the ``"mlp"`` estimator of
:class:`~alsprog.biomarkers.ImagingClassifier`) and :func:`grouped_validation_split`,
the inner train/validation split it stops on.
Leaves: imputation, harmonisation and scaling to the classifier's pipeline
(:mod:`alsprog.biomarkers._classifier`), cross-validation, permutation p-values and
calibration to :mod:`alsprog.biomarkers._evaluate`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin

from alsprog._random import as_generator, child_seed
from alsprog._validation import check_choice, check_int, check_interval

__all__ = ["GroupedEarlyStoppingMLP", "grouped_validation_split"]

_ACTIVATIONS = ("relu", "tanh", "logistic", "identity")


def grouped_validation_split(
    y: npt.ArrayLike,
    groups: npt.ArrayLike | None,
    *,
    validation_fraction: float = 0.2,
    seed: Any = None,
    max_tries: int = 20,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None:
    """Split rows into an inner training and a validation part, whole groups apart.

    :class:`~sklearn.model_selection.GroupShuffleSplit` draws about
    ``validation_fraction`` of the groups (subjects) for validation; draws whose
    training part lacks a class are redrawn (up to ``max_tries``, all from ``seed``).

    Parameters
    ----------
    y : array-like
        Labels of the rows.
    groups : array-like or None
        Group (subject) of each row; ``None``: each row is its own group.
    validation_fraction : float, default 0.2
        Share of the groups held out, in (0, 1).
    seed : int, Generator or None
        Seed of the draws.
    max_tries : int, default 20
        Draws tried before giving up.

    Returns
    -------
    tuple of numpy.ndarray or None
        Row indices ``(train, validation)``, or None when no draw works (fewer than
        two groups, or every draw leaves one class out of the training part).

    Examples
    --------
    >>> tr, va = grouped_validation_split(
    ...     [0, 0, 1, 1, 0, 0, 1, 1], ["a", "a", "b", "b", "c", "c", "d", "d"],
    ...     validation_fraction=0.25, seed=0)
    >>> len(va), len(set(tr) | set(va))
    (2, 8)
    """
    from sklearn.model_selection import GroupShuffleSplit

    yv = np.asarray(y)
    g = np.arange(len(yv)) if groups is None else np.asarray(groups, dtype=object)
    if len(g) != len(yv):
        raise ValueError(f"`groups` has {len(g)} values for {len(yv)} rows")
    if len(np.unique(g.astype(str))) < 2:
        return None
    rng = as_generator(seed)
    n_classes = len(np.unique(yv))
    for _ in range(max_tries):
        cv = GroupShuffleSplit(
            n_splits=1, test_size=validation_fraction, random_state=child_seed(rng)
        )
        try:
            train, val = next(cv.split(np.zeros(len(yv)), yv, g.astype(str)))
        except ValueError:  # too few groups for this fraction
            return None
        if len(val) and len(np.unique(yv[train])) == n_classes:
            return train.astype(np.intp), val.astype(np.intp)
    return None


class GroupedEarlyStoppingMLP(ClassifierMixin, BaseEstimator):
    """Binary multilayer perceptron that stops early on whole held-out subjects.

    scikit-learn's :class:`~sklearn.neural_network.MLPClassifier` with
    ``early_stopping=True`` validates on a random share of the *rows*: repeated scans
    of one subject then sit on both sides, the validation loss rewards memorising
    subjects and the network trains too long.  Here the training rows are split by
    :func:`grouped_validation_split` (whole subjects held out), the network is
    trained one epoch at a time (``partial_fit``), the validation log-loss (weighted
    as the training loss) is recorded after each epoch, and training stops when it
    has not improved by ``tol`` for ``n_iter_no_change`` epochs (or after
    ``max_iter``).  With ``refit=True`` a network with the same initial weights is
    then trained on all training rows for the best number of epochs; otherwise the
    best epoch's weights are kept.  Without ``groups`` (or with a single group) it
    falls back to rows as groups (or to the training loss), as scikit-learn would.

    The network is scikit-learn's rather than one written in JAX: a one- or
    two-layer network on tens of regional features and a few hundred subjects is
    CPU work (a fit takes well under a second; JAX would add compilation time, a
    heavy dependency and device-dependent numbers), it is deterministic for a seed,
    clones and passes scikit-learn's estimator checks inside the pipeline, and
    ``partial_fit`` gives the epoch-by-epoch control early stopping needs.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (32,)
        Units of each hidden layer.
    alpha : float, default 1e-3
        L2 penalty.
    activation : {"relu", "tanh", "logistic", "identity"}, default "relu"
    learning_rate_init : float, default 1e-3
        Adam step size.
    batch_size : int, default 32
        Minibatch size (capped at the number of rows).
    max_iter : int, default 300
        Most epochs.
    n_iter_no_change : int, default 10
        Patience: epochs without an improvement of the monitored loss by ``tol``.
    tol : float, default 1e-4
        Smallest decrease of the monitored loss that counts as an improvement.
    validation_fraction : float, default 0.2
        Share of the subjects held out for early stopping.
    refit : bool, default True
        Retrain on all rows for the best number of epochs (else keep the best
        epoch's weights of the inner fit).
    class_weight : "balanced", dict or None, default None
        Weights of the classes in the training and the validation loss.
    random_state : int, Generator or None
        Seed of the inner split, the initial weights and the minibatch order.

    Attributes
    ----------
    classes_ : numpy.ndarray
    n_features_in_ : int
    mlp_ : sklearn.neural_network.MLPClassifier
        The final network.
    n_iter_ : int
        Epochs run before stopping (the early-stopping phase).
    best_epoch_ : int
        Epochs of the final network (1-based epoch of the best monitored loss).
    loss_curve_ : numpy.ndarray
        Monitored loss after each epoch: the validation log-loss, or the training
        loss when no grouped split was possible.
    monitor_ : {"validation", "training"}
        What was monitored.
    stopped_early_ : bool
        Whether training stopped before ``max_iter``.
    train_groups_, validation_groups_ : numpy.ndarray
        Groups (as text) of the inner training and validation parts (empty
        validation when monitoring the training loss).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
    >>> m = GroupedEarlyStoppingMLP((8,), learning_rate_init=0.02, max_iter=40,
    ...                             random_state=0)
    >>> m = m.fit(X, y, groups=np.arange(60) // 2)  # two rows per subject
    >>> m.monitor_, len(m.validation_groups_), bool(m.score(X, y) > 0.8)
    ('validation', 6, True)
    """

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (32,),
        *,
        alpha: float = 1e-3,
        activation: str = "relu",
        learning_rate_init: float = 1e-3,
        batch_size: int = 32,
        max_iter: int = 300,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        validation_fraction: float = 0.2,
        refit: bool = True,
        class_weight: Any = None,
        random_state: Any = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.activation = activation
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.class_weight = class_weight
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _network(self, seed: int, n_rows: int) -> Any:
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(
            hidden_layer_sizes=tuple(np.atleast_1d(self.hidden_layer_sizes)),
            activation=self.activation,
            alpha=self.alpha,
            batch_size=min(self.batch_size, n_rows),
            learning_rate_init=self.learning_rate_init,
            shuffle=True,
            # one RandomState across the epochs: an int would be re-seeded by every
            # partial_fit, giving the same minibatch order each epoch
            random_state=np.random.RandomState(seed),
        )

    def fit(
        self,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        groups: npt.ArrayLike | None = None,
    ) -> GroupedEarlyStoppingMLP:
        """Train with early stopping on subjects held out from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
        y : array-like
            Two classes.
        groups : array-like, optional
            Subject of each row.  Without it each row is its own group (repeated
            scans of a subject can then land on both sides of the inner split).

        Returns
        -------
        GroupedEarlyStoppingMLP
        """
        from sklearn.utils.class_weight import compute_sample_weight
        from sklearn.utils.multiclass import type_of_target
        from sklearn.utils.validation import validate_data

        for k in ("max_iter", "n_iter_no_change", "batch_size"):
            check_int(getattr(self, k), k, low=1)
        check_interval(self.alpha, "alpha", low=0.0)
        check_interval(self.tol, "tol", low=0.0)
        check_interval(
            self.learning_rate_init, "learning_rate_init", low=0.0, low_closed=False
        )
        check_interval(
            self.validation_fraction,
            "validation_fraction",
            low=0.0,
            high=1.0,
            low_closed=False,
            high_closed=False,
        )
        check_choice(self.activation, "activation", _ACTIVATIONS)
        Xa, yv = validate_data(self, X, y, dtype=np.float64)
        X, y = np.asarray(Xa, np.float64), np.asarray(yv)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(
                "Only binary classification is supported. The type of the target "
                f"is {y_type}."
            )
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) != 2:
            raise ValueError(
                "GroupedEarlyStoppingMLP needs two classes; `y` has one class "
                f"{classes.tolist()}."
            )
        self.classes_ = classes
        g = None if groups is None else np.asarray(groups, dtype=object)
        if g is not None and len(g) != len(y):
            raise ValueError(f"`groups` has {len(g)} values for {len(y)} rows")
        rng = as_generator(self.random_state)
        split_seed, net_seed = child_seed(rng), child_seed(rng)
        sw = compute_sample_weight(self.class_weight, y)
        y = codes.astype(np.intp)  # 0, 1: classes_[1] is the network's class 1
        split = grouped_validation_split(
            y, g, validation_fraction=self.validation_fraction, seed=split_seed
        )
        gs = (np.arange(len(y)) if g is None else g).astype(str)
        if split is None:
            train, val = np.arange(len(y)), np.arange(0)
            self.monitor_ = "training"
        else:
            train, val = split
            self.monitor_ = "validation"
        self.train_groups_ = np.unique(gs[train])
        self.validation_groups_ = np.unique(gs[val])

        net, losses, best, best_state = self._train(X, y, sw, train, val, net_seed)
        self.n_iter_ = len(losses)
        self.best_epoch_ = best
        self.loss_curve_ = np.asarray(losses, np.float64)
        self.stopped_early_ = self.n_iter_ < self.max_iter
        if self.monitor_ == "validation" and self.refit:
            net = self._network(net_seed, len(y))
            for _ in range(best):
                self._epoch(net, X, y, sw, np.arange(len(y)))
        elif self.monitor_ == "validation":
            net.coefs_, net.intercepts_ = best_state
        self.mlp_ = net
        return self

    def _epoch(
        self,
        net: Any,
        X: npt.NDArray[np.float64],
        y: npt.NDArray[Any],
        sw: npt.NDArray[np.float64],
        rows: npt.NDArray[np.intp],
    ) -> None:
        from sklearn import config_context

        # the data were checked once in fit: skip scikit-learn's per-call checks
        with config_context(assume_finite=True, skip_parameter_validation=True):
            net.partial_fit(X[rows], y[rows], sample_weight=sw[rows], classes=_CODES)

    def _train(
        self,
        X: npt.NDArray[np.float64],
        y: npt.NDArray[Any],
        sw: npt.NDArray[np.float64],
        train: npt.NDArray[np.intp],
        val: npt.NDArray[np.intp],
        net_seed: int,
    ) -> tuple[Any, list[float], int, Any]:
        """Epoch loop: the monitored losses, the best epoch and its weights."""
        net = self._network(net_seed, len(train))
        losses: list[float] = []
        best_loss, best, best_state, stale = np.inf, 0, None, 0
        for epoch in range(1, self.max_iter + 1):
            self._epoch(net, X, y, sw, train)
            if len(val):
                loss = _log_loss(_logit(net, X[val], self.activation), y[val], sw[val])
            else:
                loss = float(net.loss_)
            losses.append(loss)
            if loss < best_loss - self.tol:
                best_loss, best, stale = loss, epoch, 0
                if len(val) and not self.refit:
                    best_state = copy.deepcopy((net.coefs_, net.intercepts_))
            else:
                stale += 1
                if stale >= self.n_iter_no_change:
                    break
        if not len(val):
            best = len(losses)  # the training loss: keep the last epoch
        return net, losses, max(best, 1), best_state

    def decision_function(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Log-odds of ``classes_[1]`` (the output unit before its sigmoid)."""
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self, "mlp_")
        a = validate_data(self, X, reset=False, dtype=np.float64)
        return _logit(self.mlp_, a, self.activation)

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Class probabilities, columns in the order of ``classes_``."""
        from scipy.special import expit

        p1 = expit(self.decision_function(X))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[Any]:
        """Class of each row (``classes_[1]`` where the log-odds are positive)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "mlp_")
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


_CODES = np.array([0, 1])


def _logit(net: Any, X: npt.NDArray[np.float64], activation: str) -> Any:
    """Output of the network before its final sigmoid (log-odds of class 1)."""
    a = X
    last = len(net.coefs_) - 1
    for i, (w, b) in enumerate(zip(net.coefs_, net.intercepts_, strict=True)):
        a = a @ w + b
        if i < last:
            a = _activate(a, activation)
    return np.asarray(a, np.float64).ravel()


def _log_loss(
    logit: npt.NDArray[np.float64],
    y: npt.NDArray[np.intp],
    w: npt.NDArray[np.float64],
) -> float:
    """Weighted mean binary cross-entropy of codes ``y`` (0/1) given the log-odds."""
    # -log sigmoid(+-logit), computed stably
    nll = np.logaddexp(0.0, np.where(y == 1, -logit, logit))
    return float(np.sum(w * nll) / np.sum(w))


def _activate(a: npt.NDArray[np.float64], name: str) -> npt.NDArray[np.float64]:
    if name == "relu":
        return np.maximum(a, 0.0)
    if name == "tanh":
        return np.tanh(a)
    if name == "logistic":
        from scipy.special import expit

        return np.asarray(expit(a), np.float64)
    return a
