"""Choosing the number of latent progression classes.

Owns: :func:`select_n_classes` (one :class:`LatentClassMixedModel` fit per class
number, each from its own child seed) and its result :class:`ClassSelection` (the
lcmm-style table of log-likelihood, parameters, AIC, BIC, SABIC, relative entropy,
ICL, smallest class share and starts at the best; the BIC choice under a minimum
class share, with a note when that rule overrules BIC; the fitted models; a plot).
Leaves: each fit (starts, optimiser, criteria) to
:mod:`alsprog.models.latent._model`; styling of figures beyond one axis to
:mod:`alsprog.plots`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from alsprog._progress import progress_bar
from alsprog._validation import check_int, check_interval, check_n_jobs
from alsprog.errors import ModelSpecificationError, ModelSpecificationWarning
from alsprog.models.latent._model import LatentClassMixedModel

__all__ = ["ClassSelection", "select_n_classes"]

#: Columns of :attr:`ClassSelection.table`, in order.
TABLE_COLUMNS = (
    "n_classes",
    "llf",
    "n_params",
    "aic",
    "bic",
    "sabic",
    "entropy",
    "icl",
    "smallest_share",
    "below_min_share",
    "n_best_starts",
    "n_init",
    "converged",
)


@dataclass(frozen=True)
class ClassSelection:
    """Result of :func:`select_n_classes`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per class number ``K`` (column ``n_classes``, also the index):
        ``llf``, ``n_params``, ``aic``, ``bic``, ``sabic``, ``entropy`` (relative
        entropy), ``icl``, ``smallest_share`` (share of subjects in the smallest MAP
        class), ``below_min_share`` (that share is under ``min_share``, so the ``K``
        is not proposed), ``n_best_starts`` (starts within 1e-4 of the best
        log-likelihood), ``n_init`` (starts run) and ``converged``.
    best : int or None
        The ``K`` with the lowest BIC among those with no class under
        ``min_share``; None when every ``K`` has such a class.
    note : str
        Empty, or why ``best`` is not the lowest-BIC ``K`` (and any other caveat
        about the choice, such as a fit that did not converge).
    models : Mapping[int, LatentClassMixedModel]
        The fitted models by ``K`` (read-only mapping).
    min_share : float
        The minimum class share used.
    """

    table: pd.DataFrame
    best: int | None
    note: str
    models: Mapping[int, LatentClassMixedModel]
    min_share: float

    def plot(self, ax: Any = None) -> Any:
        """BIC, SABIC and ICL against the number of classes, the choice marked.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; default a new figure (no pyplot state, so it works
            under any backend, Agg included).

        Returns
        -------
        matplotlib.axes.Axes
        """
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(5.5, 3.8)).add_subplot()
        t = self.table
        k = t["n_classes"].to_numpy()
        for col, label, style in (
            ("bic", "BIC", "o-"),
            ("sabic", "SABIC", "s--"),
            ("icl", "ICL", "^:"),
        ):
            ax.plot(k, t[col].to_numpy(), style, label=label)
        low = t["below_min_share"].to_numpy(bool)
        if low.any():
            ax.plot(
                k[low],
                t["bic"].to_numpy()[low],
                "x",
                color="grey",
                markersize=10,
                label=f"class < {self.min_share:.0%}",
            )
        if self.best is not None:
            ax.axvline(self.best, color="black", linewidth=0.8, linestyle="-.")
            ax.plot(
                [self.best],
                [float(t.loc[self.best, "bic"])],
                "o",
                markersize=12,
                markerfacecolor="none",
                color="black",
                label=f"chosen K = {self.best}",
            )
        ax.set_xticks(k)
        ax.set_xlabel("Number of classes K")
        ax.set_ylabel("Criterion (lower is better)")
        ax.legend(frameon=False)
        return ax


def _check_ks(n_classes: Any) -> list[int]:
    err = ModelSpecificationError
    if isinstance(n_classes, int | np.integer) and not isinstance(n_classes, bool):
        ks = [n_classes]
    elif isinstance(n_classes, Iterable) and not isinstance(n_classes, str | bytes):
        ks = list(n_classes)
    else:
        raise err(
            "`n_classes` must be an integer or a sequence of integers >= 1 such as "
            f"range(1, 7); got {n_classes!r}."
        )
    if not ks:
        raise err("`n_classes` is empty; give at least one number of classes.")
    out = [check_int(k, "n_classes", low=1, error=err) for k in ks]
    if len(set(out)) != len(out):
        raise err(f"`n_classes` repeats a number: {ks!r}.")
    return sorted(out)


def _seed_sequence(seed: Any) -> np.random.SeedSequence:
    err = ModelSpecificationError
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63 - 1)))
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        if seed < 0:
            raise err(f"`seed` must be a non-negative integer; got {seed!r}.")
        return np.random.SeedSequence(int(seed))
    raise err(f"`seed` must be an int, a numpy Generator or None; got {seed!r}.")


def select_n_classes(
    table: pd.DataFrame,
    formula: str,
    n_classes: int | Iterable[int] = range(1, 7),
    *,
    time: str = "months",
    mixture: Sequence[str] | None = None,
    class_formula: str | None = None,
    random_covariance: str = "shared",
    link: str = "identity",
    n_init: int = 20,
    min_share: float = 0.05,
    seed: Any = None,
    n_jobs: int | None = 1,
    progress: bool | None = None,
) -> ClassSelection:
    """Fit a latent-class mixed model for each number of classes and choose one.

    Each ``K`` is fitted by :class:`~alsprog.models.LatentClassMixedModel` with
    ``n_init`` starts and its own child seed (the ``SeedSequence`` child of
    ``seed`` with spawn key ``K``, so a ``K``'s fit does not depend on which
    other numbers are in ``n_classes``).  The proposed ``K`` is the one with the
    lowest BIC among those whose smallest MAP class holds at least ``min_share``
    of the subjects; when the lowest-BIC ``K`` has a smaller class it is not
    proposed, and :attr:`ClassSelection.note` and a warning say so.

    Parameters
    ----------
    table : pandas.DataFrame
        Long-format visits (one row per visit), as for ``fit``.
    formula : str
        Mixed-model formula, e.g. ``"alsfrs_r_total ~ months + (months |
        subject_id)"``.
    n_classes : int or iterable of int, default range(1, 7)
        Numbers of classes to fit (each >= 1, no repeats).
    time : str, default "months"
        The formula's time column, as for the model.
    mixture : sequence of str, optional
        Class-specific fixed effects (default all), as for the model.
    class_formula : str, optional
        Class membership on baseline covariates, as for the model (every ``K``
        is fitted on the same subjects: those with the covariates).
    random_covariance : {"shared", "class"}, default "shared"
        One random-effects covariance for all classes or one per class, as for
        the model.
    link : {"identity", "d50"}, default "identity"
        The outcome's link (the D50 sigmoid with ``"d50"``), as for the model.
    n_init : int, default 20
        Starts per ``K`` (``K = 1`` needs one).
    min_share : float, default 0.05
        Smallest acceptable share of subjects in a MAP class, in [0, 1).
    seed : int, numpy Generator, SeedSequence or None
        Seed of the starts.
    n_jobs : int or None, default 1
        joblib workers over the starts of each ``K`` (-1: all cores).
    progress : bool or None
        Progress over the class numbers (alsprog's convention: None automatic,
        True a bar, False nothing).

    Returns
    -------
    ClassSelection
        ``table``, ``best``, ``note``, ``models`` and ``plot()``.

    Raises
    ------
    ModelSpecificationError
        A bad ``n_classes``, ``n_init``, ``min_share``, ``seed``, ``n_jobs`` or
        ``progress``, and whatever the model's fit raises (formula, ``mixture``,
        too few subjects).

    Warns
    -----
    ModelSpecificationWarning
        When the lowest-BIC ``K`` has a class under ``min_share`` (so another is
        proposed, or none).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> cls = np.repeat([0, 1], 40); slope = np.array([-0.3, -2.0])[cls]
    >>> sid = np.repeat(np.arange(80), 5); t = np.tile(np.arange(5.0) * 3, 80)
    >>> y = 40 + rng.normal(0, 2, 80)[sid] + slope[sid] * t + rng.normal(0, 1, 400)
    >>> df = pd.DataFrame({"subject_id": sid, "months": t,
    ...                    "alsfrs_r_total": np.clip(np.round(y), 0, 48)})
    >>> sel = select_n_classes(df, "alsfrs_r_total ~ months + (1 | subject_id)",
    ...                        range(1, 4), n_init=4, seed=1, progress=False)
    >>> sel.best, sel.table["n_classes"].tolist()
    (2, [1, 2, 3])
    """
    err = ModelSpecificationError
    ks = _check_ks(n_classes)
    check_int(n_init, "n_init", low=1, error=err)
    check_interval(
        min_share, "min_share", low=0.0, high=1.0, high_closed=False, error=err
    )
    check_n_jobs(n_jobs, error=err)
    if progress is not None and not isinstance(progress, bool):
        raise err(f"`progress` must be True, False or None; got {progress!r}.")
    if not isinstance(formula, str):
        raise err(f"`formula` must be a string; got {formula!r}.")
    if not isinstance(table, pd.DataFrame):
        raise err(f"`table` must be a pandas DataFrame; got {type(table).__name__}.")
    ss = _seed_sequence(seed)

    models: dict[int, LatentClassMixedModel] = {}
    with progress_bar(
        total=len(ks), desc="class numbers", unit="fit", progress=progress
    ) as bar:
        for k in ks:
            child = np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, k))
            m = LatentClassMixedModel(
                formula,
                k,
                time=time,
                mixture=mixture,
                class_formula=class_formula,
                random_covariance=random_covariance,
                link=link,
                n_init=n_init,
                seed=np.random.default_rng(child),
                n_jobs=n_jobs,
            )
            models[k] = m.fit(table)
            bar.update(1)

    rows = []
    for k, m in models.items():
        share = float(m.class_sizes_.min()) / m.n_subjects_
        rows.append(
            {
                "n_classes": k,
                "llf": m.llf_,
                "n_params": m.n_params_,
                "aic": m.aic,
                "bic": m.bic,
                "sabic": m.sabic,
                "entropy": m.entropy_,
                "icl": m.icl_,
                "smallest_share": share,
                "below_min_share": bool(k > 1 and share < min_share),
                "n_best_starts": m.n_best_starts_,
                "n_init": len(m.start_llf_),
                "converged": bool(m.converged_),
            }
        )
    tab = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    tab.index = pd.Index(tab["n_classes"].to_numpy(), name="K")
    best, note = _choose(tab, min_share)
    if best != int(tab["bic"].idxmin()):
        warnings.warn(note, ModelSpecificationWarning, stacklevel=2)
    return ClassSelection(tab, best, note, MappingProxyType(models), float(min_share))


def _choose(tab: pd.DataFrame, min_share: float) -> tuple[int | None, str]:
    """The lowest-BIC K without a class under ``min_share``, and the note."""
    k_bic = int(tab["bic"].idxmin())
    ok = tab[~tab["below_min_share"]]
    best = int(ok["bic"].idxmin()) if len(ok) else None
    notes = []
    if best != k_bic:
        share = float(tab.loc[k_bic, "smallest_share"])
        head = (
            f"The lowest BIC is at K = {k_bic}, but its smallest class holds "
            f"{share:.1%} of the subjects, under min_share = {min_share:.1%}; "
        )
        if best is None:
            notes.append(head + "every K fitted has such a class, so none is proposed.")
        else:
            notes.append(
                head + f"K = {best} is proposed instead (lowest BIC among the others)."
            )
    if best is not None and not bool(tab.loc[best, "converged"]):
        notes.append(f"The fit with K = {best} did not converge.")
    return best, " ".join(notes)
