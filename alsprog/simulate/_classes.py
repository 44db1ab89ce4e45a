"""Latent progression classes of the simulated cohort: who is slow, typical or fast.

Owns: :class:`ProgressionClass` (one class: its share of the patients and its own
12-month slope distribution), checking a user's list of classes
(:func:`resolve_classes`), each class's calibrated lognormal rate
(:func:`class_lognormals`) and the seeded draw of each patient's class
(:func:`draw_classes`).
Leaves: the rate draw itself (copula to ΔFS, bulbar multiplier) to
:mod:`alsprog.simulate._course`, the calibration of one lognormal to
:mod:`alsprog.simulate._progression`, tables to :mod:`alsprog.simulate._cohort`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alsprog._validation import check_interval
from alsprog.errors import ModelSpecificationError
from alsprog.simulate._params import CohortParams
from alsprog.simulate._progression import rate_lognormal

__all__ = [
    "SHARE_TOLERANCE",
    "ProgressionClass",
    "class_lognormals",
    "draw_classes",
    "resolve_classes",
]

#: How far the shares of the classes may sum from 1 (they are then divided by
#: their sum, so the class probabilities sum to 1 exactly).
SHARE_TOLERANCE = 1e-9

_KEYS = ("share", "slope_mean", "slope_sd", "name")


@dataclass(frozen=True)
class ProgressionClass:
    """One latent progression class of :func:`~alsprog.simulate.simulate_cohort`.

    A patient of this class draws the 12-month progression rate from the class's own
    lognormal, calibrated as the population one of :class:`CohortParams` is: the true
    12-month slopes of the class (bulbar multiplier and the ``min_total_12m`` floor
    included) have mean ``slope_mean`` and SD ``slope_sd``.

    Parameters
    ----------
    share : float
        Probability that a patient belongs to the class, in (0, 1]; the shares of all
        classes must sum to 1 (within :data:`SHARE_TOLERANCE`).
    slope_mean : float
        Mean true 12-month ALSFRS-R slope of the class (points/month), < 0.
    slope_sd : float
        Within-class SD of the true 12-month slope (points/month), > 0.
    name : str, optional
        A label for reports (``"slow"``, ``"fast"``); the truth table numbers the
        classes 1..K in the order given whatever their names.

    Raises
    ------
    ModelSpecificationError
        If a value is not a number or is out of range (the message names it).

    Examples
    --------
    >>> ProgressionClass(0.3, -2.0, 0.4, name="fast")
    ProgressionClass(share=0.3, slope_mean=-2.0, slope_sd=0.4, name='fast')
    >>> ProgressionClass(0.3, 0.5, 0.4)
    Traceback (most recent call last):
    ...
    alsprog.errors.ModelSpecificationError: `slope_mean` must be in (-inf, 0); got 0.5.
    """

    share: float
    slope_mean: float
    slope_sd: float
    name: str | None = None

    def __post_init__(self) -> None:
        err = ModelSpecificationError
        for field, low, high, low_closed, high_closed in (
            ("share", 0.0, 1.0, False, True),
            ("slope_mean", None, 0.0, True, False),
            ("slope_sd", 0.0, None, False, True),
        ):
            value = check_interval(
                getattr(self, field),
                field,
                low=low,
                high=high,
                low_closed=low_closed,
                high_closed=high_closed,
                error=err,
            )
            object.__setattr__(self, field, float(value))
        if self.name is not None and not isinstance(self.name, str):
            raise err(f"`name` must be a string or None; got {self.name!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Return the class as a plain dict (the keys :func:`resolve_classes` reads).

        Examples
        --------
        >>> ProgressionClass(1.0, -0.9, 0.6).to_dict()
        {'share': 1.0, 'slope_mean': -0.9, 'slope_sd': 0.6, 'name': None}
        """
        return dataclasses.asdict(self)


def resolve_classes(
    classes: Sequence[ProgressionClass | Mapping[str, Any]] | None,
) -> tuple[ProgressionClass, ...] | None:
    """Check a list of progression classes and return it as a tuple.

    Parameters
    ----------
    classes : sequence of ProgressionClass or dict, or None
        One entry per class, in the order the truth table numbers them (1..K); a dict
        has the keys ``share``, ``slope_mean``, ``slope_sd`` and optionally ``name``.
        ``None`` means no classes (the single population of :class:`CohortParams`).

    Returns
    -------
    tuple of ProgressionClass or None

    Raises
    ------
    ModelSpecificationError
        If ``classes`` is not a sequence, is empty, an entry is neither a
        ProgressionClass nor a dict, a dict has unknown or missing keys, a value is out
        of range (the message names the class, 1-based, and the value), or the shares
        do not sum to 1 within :data:`SHARE_TOLERANCE`.

    Examples
    --------
    >>> resolve_classes([{"share": 0.4, "slope_mean": -0.5, "slope_sd": 0.2},
    ...                  {"share": 0.6, "slope_mean": -1.5, "slope_sd": 0.4}])[1]
    ProgressionClass(share=0.6, slope_mean=-1.5, slope_sd=0.4, name=None)
    >>> resolve_classes([{"share": 0.4, "slope_mean": -0.5, "slope_sd": 0.2}])
    Traceback (most recent call last):
    ...
    alsprog.errors.ModelSpecificationError: the shares of the progression classes must sum to 1 (within 1e-09); got 0.4 (shares 0.4).
    """
    err = ModelSpecificationError
    if classes is None:
        return None
    if isinstance(classes, str | bytes | Mapping) or not isinstance(classes, Sequence):
        raise err(
            "`progression_classes` must be a sequence of ProgressionClass or dicts "
            f"(one per class); got {type(classes).__name__}."
        )
    if len(classes) == 0:
        raise err("`progression_classes` must hold at least 1 class; got none.")
    out = []
    for i, c in enumerate(classes, start=1):
        where = f"progression class {i} of {len(classes)}"
        if isinstance(c, ProgressionClass):
            out.append(c)
            continue
        if not isinstance(c, Mapping):
            raise err(
                f"{where} must be a ProgressionClass or a dict with keys share, "
                f"slope_mean, slope_sd (and optionally name); got {c!r}."
            )
        unknown = [k for k in c if k not in _KEYS]
        if unknown:
            raise err(
                f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in unknown)}; valid keys are "
                f"{', '.join(_KEYS)}."
            )
        missing = [k for k in _KEYS[:3] if k not in c]
        if missing:
            raise err(f"{where}: missing {', '.join(repr(k) for k in missing)}.")
        try:
            out.append(ProgressionClass(**c))
        except ModelSpecificationError as exc:
            raise err(f"{where}: {exc}") from None
    shares = [c.share for c in out]
    total = math.fsum(shares)
    if not abs(total - 1.0) <= SHARE_TOLERANCE:
        raise err(
            "the shares of the progression classes must sum to 1 (within "
            f"{SHARE_TOLERANCE:g}); got {total!r} (shares "
            f"{', '.join(f'{s:g}' for s in shares)})."
        )
    return tuple(out)


def class_lognormals(
    p: CohortParams, classes: Sequence[ProgressionClass]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(mu, sigma)`` of each class's log rate (spinal onset), one entry per class.

    Each is :func:`~alsprog.simulate._progression.rate_lognormal` of ``p`` with the
    class's ``slope_mean`` and ``slope_sd``: every other parameter (ΔFS copula,
    bulbar multiplier, the floor) is the population's.

    Raises
    ------
    ModelSpecificationError
        If a class's slope mean and SD cannot be reached under the floor.

    Examples
    --------
    >>> mu, sigma = class_lognormals(CohortParams(), [ProgressionClass(1.0, -0.9, 0.6)])
    >>> bool(np.allclose([mu[0], sigma[0]], rate_lognormal(CohortParams())))
    True
    """
    mu, sigma = np.empty(len(classes)), np.empty(len(classes))
    for i, c in enumerate(classes):
        q = dataclasses.replace(p, slope_mean=c.slope_mean, slope_sd=c.slope_sd)
        try:
            mu[i], sigma[i] = rate_lognormal(q)
        except ValueError as exc:
            raise ModelSpecificationError(
                f"progression class {i + 1} of {len(classes)} ({c!r}): {exc}"
            ) from None
    return mu, sigma


def draw_classes(
    classes: Sequence[ProgressionClass], n: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Each of ``n`` patients' class (0-based), drawn with the classes' shares.

    The shares are divided by their sum; patient ``i`` is in class ``k`` when a
    uniform draw falls in the ``k``-th interval of their cumulative sums.

    Examples
    --------
    >>> c = [ProgressionClass(0.5, -0.5, 0.2), ProgressionClass(0.5, -1.5, 0.4)]
    >>> draw_classes(c, 6, np.random.default_rng(0)).tolist()
    [1, 0, 0, 0, 1, 1]
    """
    shares = np.array([c.share for c in classes])
    cum = np.cumsum(shares / shares.sum())
    k = np.searchsorted(cum, rng.random(n), side="right")
    return np.minimum(k, len(classes) - 1).astype(np.int64)
