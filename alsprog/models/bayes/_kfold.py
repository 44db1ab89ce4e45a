"""Exact K-fold cross-validation by subject of a Bayesian trajectory model.

Owns: :func:`kfold_by_subject` (refit on K - 1 folds of subjects, score each held-out
subject's whole data by its posterior predictive marginal density) and the seeded
split of subjects into folds (:func:`fold_subjects`); the model comparison's
fallback when PSIS-LOO is unreliable.
Leaves: each subject's marginal log-likelihood per posterior draw (exact Gaussian
blocks or adaptive Gauss-Hermite quadrature) to
:func:`alsprog.models.bayes._posterior.marginal_loglik_subjects`; the fit to
:class:`~alsprog.models.bayes._model.BayesianTrajectoryModel`; the choice between
PSIS-LOO and K-fold to the report.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alsprog._random import as_generator
from alsprog._validation import check_int
from alsprog.errors import ConvergenceWarning, ModelSpecificationError

__all__ = ["fold_subjects", "kfold_by_subject"]

logger = logging.getLogger(__name__)


def fold_subjects(n_subjects: int, k: int, seed: Any = None) -> npt.NDArray[np.intp]:
    """The fold (``0 .. k - 1``) of each of ``n_subjects`` subjects, seeded.

    A random permutation cut into ``k`` blocks whose sizes differ by at most one.

    Parameters
    ----------
    n_subjects : int
        Number of subjects (>= ``k``).
    k : int
        Number of folds (>= 2).
    seed : int, numpy.random.Generator or None

    Returns
    -------
    ndarray of int, shape (n_subjects,)

    Raises
    ------
    ValueError
        ``k`` below 2 or above ``n_subjects``.

    Examples
    --------
    >>> f = fold_subjects(7, 3, seed=1)
    >>> sorted(np.bincount(f).tolist())
    [2, 2, 3]
    """
    n_subjects = check_int(n_subjects, "n_subjects", low=1)
    k = check_int(k, "k", low=2, high=n_subjects)
    rng = as_generator(seed)
    fold = np.empty(n_subjects, dtype=np.intp)
    for f, part in enumerate(np.array_split(rng.permutation(n_subjects), k)):
        fold[part] = f
    return fold


@dataclass(frozen=True)
class _FoldResult:
    """What one refit returns to the parent process (arrays only, no model)."""

    elpd_i: npt.NDArray[np.float64]
    converged: bool
    seconds: float
    n_samples: int


def _heldout_arrays(model: Any, test: pd.DataFrame, ids: list[str]) -> dict[str, Any]:
    """The fitted ``model``'s design of the held-out rows ``test`` (subjects
    ``ids``, in that order), as :func:`marginal_loglik_subjects` takes it."""
    from alsprog.models.bayes._forecast import _design

    d = model._design
    groups = np.asarray(
        pd.Index(ids).get_indexer(test[d.subject].astype(str)), dtype=np.intp
    )
    if model.kind == "sigmoid":  # covariates at each subject's first visit
        first = np.full(len(ids), -1, dtype=np.intp)
        backwards = np.arange(len(groups))[::-1]
        first[groups[backwards]] = backwards
        X = _design(model, test.iloc[first])
    else:
        X = _design(model, test)
    return {
        "X": X,
        "y": test[d.outcome].to_numpy(dtype=float),
        "t": test[d.time].to_numpy(dtype=float),
        "groups": groups,
        "n_subjects": len(ids),
    }


def _run_fold(
    model: Any, train: pd.DataFrame, test: pd.DataFrame, ids: list[str], fold: int
) -> _FoldResult:
    """Refit ``model`` (unfitted, seeded) on ``train``; score the subjects ``ids``
    of ``test`` by their log posterior predictive marginal density."""
    from scipy.special import logsumexp

    from alsprog.models.bayes._posterior import marginal_loglik_subjects

    start = time.perf_counter()
    with warnings.catch_warnings():  # the parent reports non-converged folds once
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train)
    try:
        arrays = _heldout_arrays(model, test, ids)
    except ModelSpecificationError as exc:
        raise ModelSpecificationError(
            f"K-fold by subject, fold {fold + 1}: the held-out subjects cannot be "
            f"scored by the model refitted without them ({exc}); a covariate level "
            "seen only in this fold needs more subjects or fewer folds."
        ) from exc
    ll = marginal_loglik_subjects(model, **arrays)  # (S, G_test)
    elpd_i = logsumexp(ll, axis=0) - np.log(ll.shape[0])
    return _FoldResult(
        elpd_i=np.asarray(elpd_i, dtype=float),
        converged=bool(model.converged_),
        seconds=time.perf_counter() - start,
        n_samples=int(ll.shape[0]),
    )


def kfold_by_subject(
    model: Any,
    data: pd.DataFrame,
    *,
    k: int = 5,
    seed: Any = None,
    n_jobs: int = 1,
) -> Any:
    """Exact K-fold cross-validation leaving out whole subjects.

    Subjects are split into ``k`` folds at random (:func:`fold_subjects`); for
    each fold a copy of ``model`` (same parameters, its own seed) is fitted on the
    other folds and each held-out subject ``i`` is scored by
    ``log mean_s p(y_i | theta_s)``, ``theta_s`` the refit's posterior draws and
    ``p(y_i | theta_s)`` the subject's visits with its effects integrated out
    (exact Gaussian for the linear normal model, adaptive Gauss-Hermite
    quadrature over the two effects otherwise).  The sum over subjects is the
    elpd of new patients, which PSIS-LOO by subject approximates without
    refitting.

    Parameters
    ----------
    model : BayesianTrajectoryModel
        Fitted or not; it is not changed (copies are fitted).
    data : pandas.DataFrame
        Long-format data, as for ``fit``; rows with missing model values are
        dropped (with a :class:`~alsprog.errors.DataWarning`).
    k : int, default 5
        Number of folds, 2 to the number of subjects.
    seed : int, numpy.random.Generator or None
        Seeds the split and every refit (one child seed per fold, drawn before
        any work starts, so results do not depend on ``n_jobs``).
    n_jobs : int, default 1
        joblib workers for the refits (``joblib.parallel_config`` chooses the
        backend, Dask included).

    Returns
    -------
    arviz.ELPDData
        Laid out as ``az.loo``'s result so ``az.compare`` takes it (keys
        ``elpd_loo``, ``se``, ``p_loo`` (NaN: not estimated), ``n_samples``,
        ``n_data_points`` (subjects), ``warning`` (a refit failed the convergence
        gate), ``loo_i`` (per subject, dim ``subject_id``), ``scale`` = "log"),
        plus ``method`` = "kfold", ``k``, ``fold`` (each subject's fold) and
        ``fold_converged`` (per fold).

    Raises
    ------
    ModelSpecificationError
        Bad model parameters or data (as ``fit``), or held-out subjects with a
        covariate level no training fold has.
    ValueError
        ``k`` outside 2 to the number of subjects.

    Warns
    -----
    ConvergenceWarning
        When a refit fails the convergence gate (``strict=True`` raises instead).

    See Also
    --------
    BayesianTrajectoryModel.loo : PSIS-LOO, by observation or by subject.

    Notes
    -----
    Vehtari, Gelman & Gabry (2017, §4.2) recommend exact K-fold when PSIS-LOO's
    Pareto k diagnostics are high; leaving out whole subjects matches the
    question "how well does the model predict a new patient".

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alsprog.models.bayes._model import BayesianTrajectoryModel
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"subject_id": np.repeat([f"P{i}" for i in range(30)], 4),
    ...                    "months": np.tile([0.0, 3.0, 6.0, 9.0], 30)})
    >>> df["alsfrs_r_total"] = 38 - 0.9 * df["months"] + rng.normal(0, 2, len(df))
    >>> m = BayesianTrajectoryModel(chains=2, draws=200, tune=200, progress=False)
    >>> cv = kfold_by_subject(m, df, k=3, seed=1)  # doctest: +SKIP
    >>> cv["method"], cv["n_data_points"]  # doctest: +SKIP
    ('kfold', 30)
    """
    import xarray as xr
    from arviz.stats.stats_utils import ELPDData
    from joblib import Parallel, delayed

    model._check_params()
    design = model._prepare(data)
    ids = list(design.subject_ids)
    G = len(ids)
    k = check_int(k, "k", low=2, high=G)
    rng = as_generator(seed)
    fold = fold_subjects(G, k, rng)
    copies = [model.with_seed(child) for child in rng.spawn(k)]
    frame = design.frame
    row_fold = fold[design.groups]
    tasks = (
        delayed(_run_fold)(
            copies[f],
            frame[row_fold != f].reset_index(drop=True),
            frame[row_fold == f].reset_index(drop=True),
            [ids[i] for i in np.flatnonzero(fold == f)],
            f,
        )
        for f in range(k)
    )
    logger.info(
        "K-fold by subject: %d folds of %d subjects, %d refits on %s worker(s)",
        k,
        G,
        k,
        n_jobs,
    )
    elpd_i = np.empty(G)
    converged: list[bool] = []
    n_samples = 0
    for f, res in enumerate(Parallel(n_jobs=n_jobs, return_as="generator")(tasks)):
        elpd_i[fold == f] = res.elpd_i
        converged.append(res.converged)
        n_samples = res.n_samples
        logger.info(
            "K-fold by subject: fold %d/%d (%d subjects held out) refitted and "
            "scored in %.1f s; held-out elpd %.1f%s",
            f + 1,
            k,
            len(res.elpd_i),
            res.seconds,
            float(res.elpd_i.sum()),
            "" if res.converged else " (refit did not converge)",
        )
    bad = [str(f + 1) for f, ok in enumerate(converged) if not ok]
    if bad:
        warnings.warn(
            f"K-fold by subject: the refit of fold(s) {', '.join(bad)} of {k} failed "
            "the convergence gate; its elpd may be off. Raise draws/tune or "
            "target_accept of the model.",
            ConvergenceWarning,
            stacklevel=2,
        )
    loo_i = xr.DataArray(elpd_i, dims=["subject_id"], coords={"subject_id": ids})
    return ELPDData(
        data=[
            float(elpd_i.sum()),
            float(np.sqrt(G * np.var(elpd_i))),
            np.nan,
            n_samples,
            G,
            bool(bad),
            loo_i,
            "log",
            "kfold",
            k,
            fold,
            tuple(converged),
        ],
        index=[
            "elpd_loo",
            "se",
            "p_loo",
            "n_samples",
            "n_data_points",
            "warning",
            "loo_i",
            "scale",
            "method",
            "k",
            "fold",
            "fold_converged",
        ],
    )
