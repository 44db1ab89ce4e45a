"""Group-sequential designs: efficacy and non-binding futility boundaries at interim looks.

Owns: :func:`group_sequential` and the frozen :class:`GroupSequentialDesign` (bounds,
stage levels, alpha and beta spent, inflation factor as rpact's
``getDesignGroupSequential`` and ``getDesignCharacteristics`` give them) and
:meth:`GroupSequentialDesign.stop_at_looks`, which makes simulated trials stop at the
looks.
Leaves: the recursive integration and root finders to
:mod:`alsprog.design._gs_numerics`; events and patients of a survival trial to
:mod:`alsprog.design._survival`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from alsprog._validation import check_choice, check_int, check_interval
from alsprog.design._gs_numerics import (
    critical_values_spending,
    critical_values_wang_tsiatis,
    futility_bounds_spending,
    gs_probabilities,
    one_minus_qnorm,
    zeroin,
)
from alsprog.errors import ModelSpecificationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GroupSequentialDesign", "SequentialOutcome", "group_sequential"]

FloatArray = npt.NDArray[np.float64]
Spending = Literal[
    "obrien-fleming",
    "pocock",
    "hsd",
    "kim-demets",
    "classical-obrien-fleming",
    "classical-pocock",
]
FutilitySpending = Literal["obrien-fleming", "pocock", "hsd", "kim-demets"]

#: alsprog's names of the efficacy boundaries and rpact's ``typeOfDesign`` codes.
_EFFICACY = {
    "obrien-fleming": "asOF",
    "pocock": "asP",
    "hsd": "asHSD",
    "kim-demets": "asKD",
    "classical-obrien-fleming": "OF",
    "classical-pocock": "P",
}
#: alsprog's names of the futility (beta-spending) functions and rpact's codes.
_FUTILITY = {
    "obrien-fleming": "bsOF",
    "pocock": "bsP",
    "hsd": "bsHSD",
    "kim-demets": "bsKD",
}
_TOL = 1e-8  # rpact's C_DESIGN_TOLERANCE_DEFAULT
_LOWER = -6.0


@dataclass(frozen=True)
class SequentialOutcome:
    """Where each simulated trial stopped (see :meth:`GroupSequentialDesign.stop_at_looks`).

    Attributes
    ----------
    look : ndarray of int, shape (K,)
        Look (1-based) at which the trial stopped; ``k`` when it ran to the end.
    rejected : ndarray of bool, shape (K,)
        The null hypothesis was rejected (an efficacy bound was crossed).
    futility : ndarray of bool, shape (K,)
        The trial stopped early for futility.

    Examples
    --------
    >>> out = group_sequential(2).stop_at_looks([[3.0, 0.0], [0.0, 2.5]])
    >>> out.look.tolist(), out.power
    ([1, 2], 1.0)
    """

    look: npt.NDArray[np.int64]
    rejected: npt.NDArray[np.bool_]
    futility: npt.NDArray[np.bool_]

    @property
    def power(self) -> float:
        """Fraction of trials that rejected the null hypothesis."""
        return float(np.mean(self.rejected))


@dataclass(frozen=True)
class GroupSequentialDesign:
    """A group-sequential design with ``k`` looks on the z scale (immutable).

    Attributes
    ----------
    k : int
        Number of looks (the last is the final analysis).
    alpha, beta : float
        Type I and type II error.
    sided : int
        1 (reject for large z) or 2 (reject for large ``|z|``).
    spending, futility : str or None
        Efficacy boundary and futility spending function (alsprog names).
    type_of_design, type_beta_spending : str
        The same as rpact's ``typeOfDesign`` and ``typeBetaSpending`` codes.
    gamma, gamma_futility : float or None
        Parameters of the Hwang–Shih–DeCani or Kim–DeMets spending functions.
    information_rates : ndarray, shape (k,)
        Fraction of the maximum information at each look.
    critical_values : ndarray, shape (k,)
        Efficacy bounds on the z scale (rpact ``criticalValues``); ``inf`` where
        the bound is 7.5 or more (no efficacy stop), as rpact reports it.
    futility_bounds : ndarray, shape (k - 1,)
        Non-binding futility bounds on the z scale at the interim looks; ``-inf``
        where there is no futility stop (rpact prints ``-6``).
    stage_levels : ndarray, shape (k,)
        One-sided nominal levels ``1 - Phi(critical_values)``.
    alpha_spent : ndarray, shape (k,)
        Cumulative type I error spent (rpact ``alphaSpent``, the last value floored
        to 1e-8 as rpact does).
    beta_spent : ndarray or None
        Cumulative type II error spent with a futility rule (rpact ``betaSpent``).
    inflation_factor : float
        Maximum information relative to the fixed design with the same alpha and
        power (rpact ``getDesignCharacteristics(design)$inflationFactor``).
    shift : float
        Maximum information for a unit standardized effect (rpact ``shift``).
    n_fixed : float
        ``(z_{1-alpha/sided} + z_{1-beta})^2``, the fixed design's information.
    rejection_probabilities, futility_probabilities : ndarray
        Probability to reject / stop for futility at each look under the alternative.
    power : ndarray, shape (k,)
        Cumulative power under the alternative.
    average_sample_number : tuple of float
        Expected information relative to the fixed design under H1, under half
        the effect and under H0 (rpact ``averageSampleNumber1/01/0``).

    Examples
    --------
    >>> d = group_sequential(2, spending="pocock")
    >>> d.critical_values.round(4).tolist(), round(d.inflation_factor, 4)
    ([2.157, 2.201], 1.1226)
    """

    k: int
    alpha: float
    beta: float
    sided: int
    spending: str
    futility: str | None
    type_of_design: str
    type_beta_spending: str
    gamma: float | None
    gamma_futility: float | None
    information_rates: FloatArray
    critical_values: FloatArray
    futility_bounds: FloatArray
    stage_levels: FloatArray
    alpha_spent: FloatArray
    beta_spent: FloatArray | None
    inflation_factor: float
    shift: float
    n_fixed: float
    rejection_probabilities: FloatArray
    futility_probabilities: FloatArray
    power: FloatArray
    average_sample_number: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain Python values (arrays as lists)."""
        return {
            key: (v.tolist() if isinstance(v, np.ndarray) else v)
            for key, v in asdict(self).items()
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per look: information rate, bounds, levels, spending, probabilities.

        Examples
        --------
        >>> group_sequential(2).to_frame().columns.tolist()[:3]
        ['information_rate', 'critical_value', 'futility_bound']
        """
        import pandas as pd

        k = self.k
        return pd.DataFrame(
            {
                "information_rate": self.information_rates,
                "critical_value": self.critical_values,
                "futility_bound": np.append(self.futility_bounds, np.nan),
                "stage_level": self.stage_levels,
                "alpha_spent": self.alpha_spent,
                "beta_spent": (
                    np.full(k, np.nan) if self.beta_spent is None else self.beta_spent
                ),
                "rejection_probability": self.rejection_probabilities,
                "futility_probability": np.append(self.futility_probabilities, np.nan),
                "power": self.power,
            },
            index=pd.RangeIndex(1, k + 1, name="look"),
        )

    def stop_at_looks(
        self,
        z: npt.ArrayLike,
        *,
        direction: Literal["upper", "lower"] = "upper",
    ) -> SequentialOutcome:
        """Stop simulated trials at the looks of this design.

        Parameters
        ----------
        z : array_like, shape (K, k)
            Test statistic of each of ``K`` trials at each look, computed on all
            the data of that look as if the trial had continued.
        direction : {"upper", "lower"}
            ``"upper"`` when benefit shows as a large ``z``; ``"lower"`` when it
            shows as a small one (e.g. the log-rank z of
            :func:`~alsprog.design.logrank_batch`, negative when the hazard ratio
            is below 1).  Ignored for two-sided designs (``|z|`` is compared).

        Returns
        -------
        SequentialOutcome
            Per trial: the look at which it stopped, whether it rejected and
            whether it stopped for futility.  A trial stops at the first look where
            z crosses the efficacy bound (reject) or, at an interim look, falls at
            or below the futility bound (non-binding bounds are applied as
            planned); otherwise at look ``k``.

        Examples
        --------
        >>> d = group_sequential(3, spending="obrien-fleming")
        >>> out = d.stop_at_looks([[3.8, 0.0, 0.0], [1.0, 2.6, 0.0], [0.5, 1.0, 1.5]])
        >>> out.look.tolist(), out.rejected.tolist()
        ([1, 2, 3], [True, True, False])
        """
        check_choice(
            direction, "direction", ("upper", "lower"), error=ModelSpecificationError
        )
        zz = np.asarray(z, dtype=float)
        if zz.ndim == 1:
            zz = zz[None, :]
        if zz.ndim != 2 or zz.shape[1] != self.k:
            raise ModelSpecificationError(
                f"`z` must have shape (n_trials, {self.k}) (one column per look); "
                f"got shape {np.shape(z)}."
            )
        if np.isnan(zz).any():
            raise ModelSpecificationError(
                "`z` must not hold NaN: give every look's statistic as if the trial "
                "had continued."
            )
        if self.sided == 2:
            zz = np.abs(zz)
        elif direction == "lower":
            zz = -zz
        eff = zz >= self.critical_values[None, :]
        fut = np.zeros_like(eff)
        fut[:, :-1] = zz[:, :-1] <= self.futility_bounds[None, :]
        fut &= ~eff
        stop = eff | fut
        stop[:, -1] = True
        look = np.argmax(stop, axis=1)
        rows = np.arange(zz.shape[0])
        return SequentialOutcome(
            look=(look + 1).astype(np.int64),
            rejected=eff[rows, look],
            futility=fut[rows, look],
        )

    def __repr__(self) -> str:
        cv = ", ".join(f"{c:.4f}" for c in self.critical_values)
        fb = ", ".join(f"{c:.4f}" for c in self.futility_bounds)
        return (
            f"GroupSequentialDesign(k={self.k}, spending={self.spending!r}, "
            f"futility={self.futility!r}, alpha={self.alpha:g}, sided={self.sided}, "
            f"critical_values=[{cv}], futility_bounds=[{fb}], "
            f"inflation_factor={self.inflation_factor:.6f})"
        )


# ---------------------------------------------------------------------- checks
def _err(msg: str) -> ModelSpecificationError:
    return ModelSpecificationError(msg)


def _check_information_rates(rates: Sequence[float] | None, k: int) -> FloatArray:
    if rates is None:
        return np.arange(1, k + 1) / k
    try:
        r = np.asarray(rates, dtype=float)
    except (TypeError, ValueError):
        raise _err(
            f"`information_rates` must be a sequence of fractions; got {rates!r}."
        ) from None
    if r.shape != (k,):
        raise _err(
            f"`information_rates` must hold one fraction per look ({k}); got "
            f"{np.size(r)} value(s): {rates!r}."
        )
    if not np.all(np.isfinite(r)) or r[0] <= 0 or np.any(np.diff(r) <= 0):
        raise _err(
            "`information_rates` must be strictly increasing fractions in (0, 1]; "
            f"got {r.tolist()!r}."
        )
    if r[-1] != 1:
        raise _err(
            f"`information_rates` must end at 1 (the final analysis); got {r.tolist()!r}."
        )
    return r


def _check_gamma(gamma: float | None, kind: str, name: str) -> float | None:
    e = ModelSpecificationError
    if kind in ("asHSD", "bsHSD"):
        if gamma is None:
            raise _err(
                f"`{name}` is required by the Hwang–Shih–DeCani spending function."
            )
        return check_interval(gamma, name, low=-10, high=5, error=e)
    if kind in ("asKD", "bsKD"):
        if gamma is None:
            raise _err(f"`{name}` is required by the Kim–DeMets spending function.")
        return check_interval(gamma, name, low=0.4, high=8, error=e)
    if gamma is not None:
        raise _err(
            f"`{name}` is used only with the 'hsd' or 'kim-demets' spending "
            f"functions; got {name}={gamma!r} with another."
        )
    return None


# ---------------------------------------------------------------------- design
def group_sequential(
    k: int,
    *,
    alpha: float = 0.025,
    beta: float = 0.2,
    sided: int = 1,
    spending: Spending = "obrien-fleming",
    gamma: float | None = None,
    information_rates: Sequence[float] | None = None,
    futility: FutilitySpending | None = None,
    gamma_futility: float | None = None,
) -> GroupSequentialDesign:
    """Efficacy and non-binding futility boundaries of a group-sequential design.

    Equal to R's ``rpact::getDesignGroupSequential`` (and the inflation factor to
    ``getDesignCharacteristics``): the same recursive integration grid and root
    finders, so bounds agree to about 1e-10.

    Parameters
    ----------
    k : int
        Number of looks, 1 to 20 (the last is the final analysis).
    alpha : float
        Type I error; with ``sided=2`` the total of both tails.
    beta : float
        Type II error (1 - power), for the inflation factor and futility bounds.
    sided : {1, 2}
        One-sided (reject for large z) or two-sided test.
    spending : str
        Efficacy boundary: Lan–DeMets alpha spending of O'Brien–Fleming type
        (``"obrien-fleming"``, rpact ``asOF``) or Pocock type (``"pocock"``,
        ``asP``), Hwang–Shih–DeCani (``"hsd"``, ``asHSD``, needs ``gamma``),
        Kim–DeMets power family (``"kim-demets"``, ``asKD``, needs ``gamma``), or
        the classical constant-shape bounds (``"classical-obrien-fleming"``, ``OF``;
        ``"classical-pocock"``, ``P``).
    gamma : float, optional
        ``gammaA`` of the HSD (in [-10, 5]) or Kim–DeMets (in [0.4, 8]) function.
    information_rates : sequence of float, optional
        Information fraction at each look, increasing to 1; equally spaced by
        default.
    futility : {"obrien-fleming", "pocock", "hsd", "kim-demets"}, optional
        Non-binding futility bounds by beta spending (rpact ``bsOF``, ``bsP``,
        ``bsHSD``, ``bsKD``); one-sided alpha-spending designs only.
    gamma_futility : float, optional
        ``gammaB`` of the HSD or Kim–DeMets beta-spending function.

    Returns
    -------
    GroupSequentialDesign

    Raises
    ------
    ModelSpecificationError
        When an argument is out of range or a combination rpact does not define.

    Examples
    --------
    >>> d = group_sequential(3, alpha=0.025, spending="obrien-fleming")
    >>> d.critical_values.round(4).tolist()
    [3.7103, 2.5114, 1.993]
    >>> round(d.inflation_factor, 4)
    1.0128
    """
    e = ModelSpecificationError
    k = check_int(k, "k", low=1, high=20, error=e)
    sided = check_int(sided, "sided", low=1, high=2, error=e)
    alpha = check_interval(
        alpha, "alpha", low=1e-6, high=0.5, high_closed=False, error=e
    )
    beta = check_interval(beta, "beta", low=1e-3, high=0.5, high_closed=False, error=e)
    check_choice(spending, "spending", tuple(_EFFICACY), error=e)
    tod = _EFFICACY[spending]
    gamma = _check_gamma(gamma, tod, "gamma")
    info = _check_information_rates(information_rates, k)
    tbs = "none"
    if futility is not None:
        check_choice(futility, "futility", tuple(_FUTILITY), error=e)
        tbs = _FUTILITY[futility]
        if k == 1:
            raise _err("`futility` needs interim looks: `k` must be at least 2.")
        if sided != 1:
            raise _err(
                "`futility` bounds are available for one-sided designs only "
                f"(`sided=1`); got sided={sided}."
            )
        if not tod.startswith("as"):
            raise _err(
                "`futility` (beta spending) needs an alpha-spending `spending` "
                "('obrien-fleming', 'pocock', 'hsd' or 'kim-demets'); got "
                f"{spending!r}."
            )
        gamma_futility = _check_gamma(gamma_futility, tbs, "gamma_futility")
    elif gamma_futility is not None:
        raise _err("`gamma_futility` is used only together with `futility`.")

    # efficacy bounds
    if k == 1:
        crit = np.array([one_minus_qnorm(alpha / sided)])
    elif tod in ("OF", "P"):
        delta = 0.0 if tod == "OF" else 0.5
        crit = critical_values_wang_tsiatis(info, alpha, sided, delta, _TOL)
    else:
        crit = critical_values_spending(info, alpha, sided, tod, gamma, _TOL)
    if not np.all(np.isfinite(crit)):  # pragma: no cover - rpact's NA
        raise _err(f"no efficacy bounds found for spending={spending!r} at {info!r}.")

    fut_full = np.full(k, _LOWER)
    beta_spent = None
    if futility is not None:
        fut_full, shift_b = futility_bounds_spending(
            info, crit, beta, tbs, gamma_futility, _TOL
        )
        d = np.vstack(
            [fut_full - np.sqrt(info) * shift_b, crit - np.sqrt(info) * shift_b]
        )
        p = gs_probabilities(d, info)
        beta_spent = np.cumsum(p[0])
    fut = fut_full[:-1].copy()

    # alpha spent (non-binding: futility ignored)
    lower = -crit if sided == 2 else np.full(k, _LOWER)
    p0 = gs_probabilities(np.vstack([lower, crit]), info)
    per = p0[2] - p0[1] + (p0[0] if sided == 2 else 0.0)
    alpha_spent = np.cumsum(per)
    alpha_spent[-1] = math.floor(alpha_spent[-1] * 1e8) / 1e8

    chars = _characteristics(info, crit, fut, alpha, beta, sided)
    stage_levels = 1.0 - _ndtr(crit)
    # as rpact: a bound at or beyond 7.5 is no efficacy stop (its level is < 1e-13)
    crit = np.where(crit >= 7.5, np.inf, crit)
    return GroupSequentialDesign(
        k=k,
        alpha=alpha,
        beta=beta,
        sided=sided,
        spending=spending,
        futility=futility,
        type_of_design=tod,
        type_beta_spending=tbs,
        gamma=gamma,
        gamma_futility=gamma_futility,
        information_rates=info,
        critical_values=crit,
        futility_bounds=np.where(fut <= _LOWER, -np.inf, fut),
        stage_levels=stage_levels,
        alpha_spent=alpha_spent,
        beta_spent=beta_spent,
        **chars,
    )


def _ndtr(x: FloatArray) -> FloatArray:
    from scipy import special

    return special.ndtr(x)


def _characteristics(
    info: FloatArray,
    crit: FloatArray,
    fut: FloatArray,
    alpha: float,
    beta: float,
    sided: int,
) -> dict[str, Any]:
    """rpact ``getDesignCharacteristics`` for non-binding designs without 4-row bounds."""
    k = info.size
    n_fixed = (one_minus_qnorm(alpha / sided) + one_minus_qnorm(beta)) ** 2
    if k == 1:
        return dict(
            inflation_factor=1.0,
            shift=n_fixed,
            n_fixed=n_fixed,
            rejection_probabilities=np.array([1 - beta]),
            futility_probabilities=np.empty(0),
            power=np.array([1 - beta]),
            average_sample_number=(1.0, 1.0, 1.0),
        )
    c = np.clip(crit, -7.5, 7.5)

    def matrix(drift: float) -> FloatArray:
        s = np.sqrt(drift * info)
        if sided == 2:
            return np.vstack([-c - s, c - s])
        f = fut - s[:-1]
        f[fut <= _LOWER] = _LOWER
        return np.vstack([np.append(f, _LOWER), c - s])

    def reject(p: FloatArray) -> FloatArray:
        return p[2] - p[1]  # twoSidedPower = FALSE

    upper = 4 * n_fixed
    shift = zeroin(
        lambda s: float(np.sum(reject(gs_probabilities(matrix(s), info)))) - 1 + beta,
        0.0,
        upper,
        _TOL,
        max_iter=1000,
        fallback=False,
    )
    p1 = gs_probabilities(matrix(shift), info)
    rej = reject(p1)
    if sided == 2:
        futp = np.zeros(k - 1)
    else:
        futp = p1[0, :-1].copy()
        futp[fut <= _LOWER] = 0.0

    def asn(p: FloatArray) -> float:
        stop = p[2, :-1] - p[1, :-1] + p[0, :-1]
        return float((shift - np.sum(stop * (info[-1] - info[:-1]) * shift)) / n_fixed)

    def matrix0(drift_root: float) -> FloatArray:
        s = np.sqrt(shift * info) * drift_root
        if sided == 2:
            return np.vstack([-c - s, c - s])
        f = fut - s[:-1]
        f[fut <= _LOWER] = _LOWER
        return np.vstack([np.append(f, _LOWER), c - s])

    return dict(
        inflation_factor=shift / n_fixed,
        shift=shift,
        n_fixed=n_fixed,
        rejection_probabilities=rej,
        futility_probabilities=futp,
        power=np.cumsum(rej),
        average_sample_number=(
            asn(p1),
            asn(gs_probabilities(matrix0(0.5), info)),
            asn(gs_probabilities(matrix0(0.0), info)),
        ),
    )
