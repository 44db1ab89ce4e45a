"""Power by simulation: whole trials simulated and analysed as the statistician would.

Owns: :func:`simulate_power` (its arguments, the child seed of each chunk of trials,
the parallel chunks and the attrition realised) with its result :class:`PowerResult`,
and :func:`power_curve` (analytic power over a grid, optionally simulated).
Leaves: the trial generator and each trial's analysis (alsprog's exact REML engine or
:class:`~alsprog.models.MMRM`) to :mod:`alsprog.design._simulated_trials`, baseline
markers, enrichment and adjustment to :mod:`alsprog.design._markers`, formulas to
:mod:`alsprog.design._analytic`, figures to :mod:`alsprog.plots`.

Attrition, two separate sources:

- ``TrialDesign.retention`` is the attrition the analytic formulas assume (longpower's
  ``ra``; Edland 2009): ``retention[j]`` is the probability that a randomised patient
  is still observed at visit ``j``, dropout is monotone (missing at visit ``j``,
  missing afterwards) and non-informative (independent of the patient's intercept,
  slope, arm and outcomes).  Each patient draws one uniform ``u`` and is seen at
  visit ``j`` while ``u < retention[j]``, so a fraction ``retention[j] -
  retention[j+1]`` has its last visit at ``j``: the pattern mixture of
  :func:`~alsprog.design.sample_size_slope`.  Simulated and analytic power then agree
  within Monte Carlo error.
- ``dropout`` and ``death_hazard`` of :func:`simulate_power` remove further visits on
  top (informative: hazards rise with the progression rate), which no analytic
  formula here includes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from alsprog._progress import progress_bar
from alsprog._random import as_generator
from alsprog._validation import (
    check_choice,
    check_int,
    check_interval,
    check_n_jobs,
    check_numbers,
)
from alsprog.design._endpoint_analysis import ENDPOINTS, SURVIVAL_ENDPOINTS
from alsprog.design._markers import (
    BaselineMarker,
    Enrichment,
    _check_design,
    _check_markers,
    enriched_design,
)
from alsprog.design._simulated_trials import _Spec
from alsprog.design._trial import TrialDesign
from alsprog.design._trial_runner import describe_source, make_plan, run_trials
from alsprog.errors import ModelSpecificationError

__all__ = ["PowerResult", "power_curve", "simulate_power"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PowerResult:
    """Power estimated by simulating and analysing whole trials.

    Attributes
    ----------
    power : float
        Fraction of trials whose two-sided test rejected at ``alpha``.
    se : float
        Monte Carlo standard error, ``sqrt(power (1 - power) / n_sims)``.
    n_sims : int
    n_per_arm : int
        Treated patients per trial.
    n_control : int
    analysis : str
        ``"slope"`` or ``"mmrm"``.
    screen_failure : float
        Fraction of screened patients not enrolled (0 without enrichment).
    estimates : pandas.DataFrame
        One row per trial: ``trial, estimate, std_error, z, p_value, reject,
        n_patients, n_observations, n_screened, converged``.
    design : TrialDesign
    seconds : float
        Wall time of the simulation.
    retention : tuple of float or None
        The design's non-informative attrition the trials were simulated with (and
        the analytic formulas assume); ``None`` = none.
    dropout, death_hazard : float
        Extra informative dropout and death added on top of ``retention`` (0 = none).
    attrition : pandas.DataFrame
        One row per visit: ``months, retention`` (the design's, 1 without attrition),
        ``observed, observed_treatment, observed_control`` (the realised fraction of
        randomised patients seen at that visit, over all simulated trials, after
        ``retention`` and any ``dropout``/``death_hazard``).
    endpoint : str
        The endpoint analysed (``analysis`` is the same name).
    source : str
        ``"design"``, ``"course"`` or ``"historical (n patients)"``.
    hazard_ratio : float
    type_one_error, type_one_error_se : float or None
        Rejection rate of as many trials with no treatment effect, and its Monte
        Carlo SE at the nominal alpha (``type_one_error=True``).
    looks : GroupSequentialDesign or None
        With looks, ``estimates`` also has ``stop_look, stopped_for, stop_months``.
    """

    power: float
    se: float
    n_sims: int
    n_per_arm: int
    n_control: int
    analysis: str
    screen_failure: float
    estimates: pd.DataFrame = field(repr=False)
    design: TrialDesign = field(repr=False)
    seconds: float = field(default=0.0, repr=False)
    retention: tuple[float, ...] | None = None
    dropout: float = 0.0
    death_hazard: float = 0.0
    attrition: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    endpoint: str = "slope"
    source: str = "design"
    hazard_ratio: float = 1.0
    type_one_error: float | None = None
    type_one_error_se: float | None = None
    looks: Any = field(default=None, repr=False)

    @property
    def stopping(self) -> pd.DataFrame:
        """With group-sequential ``looks``: per look, the fraction of trials stopped
        there for efficacy and for futility and the cumulative rejection rate
        (empty without looks)."""
        est = self.estimates
        if self.looks is None or "stop_look" not in est:
            return pd.DataFrame()
        n_looks = len(self.looks.information_rates)
        out = []
        for look in range(1, n_looks + 1):
            at = est["stop_look"] == look
            out.append(
                {
                    "look": look,
                    "information_rate": float(self.looks.information_rates[look - 1]),
                    "stopped_efficacy": float(
                        (at & (est["stopped_for"] == "efficacy")).mean()
                    ),
                    "stopped_futility": float(
                        (at & (est["stopped_for"] == "futility")).mean()
                    ),
                    "mean_months": float(est.loc[at, "stop_months"].mean())
                    if at.any()
                    else float("nan"),
                }
            )
        df = pd.DataFrame(out)
        return df.assign(cumulative_power=df["stopped_efficacy"].cumsum())

    def __repr__(self) -> str:
        ret = None if self.retention is None else [f"{r:g}" for r in self.retention]
        ret_text = "None" if ret is None else f"[{', '.join(ret)}]"
        extra = ""
        if self.source != "design":
            extra += f", source={self.source!r}"
        if self.hazard_ratio != 1.0:
            extra += f", hazard_ratio={self.hazard_ratio:g}"
        if self.type_one_error is not None:
            extra += f", type_one_error={self.type_one_error:.4f}"
        return (
            f"PowerResult(power={self.power:.4f}, se={self.se:.4f}, n_sims={self.n_sims}, "
            f"n_per_arm={self.n_per_arm}, endpoint={self.endpoint!r}, "
            f"retention={ret_text}, dropout={self.dropout:g}, "
            f"death_hazard={self.death_hazard:g}, "
            f"screen_failure={self.screen_failure:.3f}{extra})"
        )


#: Largest trial simulated: treated patients per arm, trials, Monte Carlo draws.
MAX_PER_ARM = 100_000
MAX_SIMS = 10_000_000

#: Options :func:`power_curve` passes on to :func:`simulate_power`.
_SIMULATE_OPTIONS = frozenset(
    {"dropout", "death_hazard", "enrichment", "covariates", "effect", "chunk_size"}
)


def _check_count(value: Any, name: str, low: int, high: int) -> int:
    """An integer >= ``low`` (the usual message), then at most ``high``."""
    n = check_int(value, name, low=low, error=ModelSpecificationError)
    if n > high:
        raise ModelSpecificationError(f"`{name}` must be at most {high:,}; got {n:,}.")
    return n


def simulate_power(
    design: TrialDesign | Any,
    n_per_arm: int,
    *,
    n_sims: int = 1000,
    analysis: Literal["slope", "mmrm"] = "slope",
    endpoint: str | None = None,
    source: Any = None,
    hazard_ratio: float = 1.0,
    horizon_months: float | None = None,
    threshold: float = 0.0,
    looks: Any = None,
    type_one_error: bool = False,
    dropout: float = 0.0,
    death_hazard: float = 0.0,
    enrichment: Enrichment | None = None,
    covariates: Sequence[BaselineMarker] = (),
    effect: Literal["additive", "proportional"] = "additive",
    seed: Any = None,
    n_jobs: int = -1,
    chunk_size: int = 50,
    progress: bool | None = None,
) -> PowerResult:
    """Power of a two-arm trial by simulating and analysing ``n_sims`` trials.

    Each trial randomises ``n_per_arm`` treated and ``n_per_arm / allocation_ratio``
    control patients, draws every patient's intercept and slope from the design's
    variance components (treatment slows the mean slope by ``design.slowing``),
    loses patients as ``design.retention`` says (monotone, non-informative: the
    attrition the analytic formulas assume, so both answer the same question),
    removes further visits after the extra ``dropout`` or ``death_hazard`` (if any),
    and analyses the trial exactly:
    ``analysis="slope"`` fits ``y ~ months * arm (+ covariates × months) + (months |
    subject)`` by REML with alsprog's engine and tests ``months:arm`` (Wald, two-sided);
    ``analysis="mmrm"`` fits an unstructured MMRM to change from baseline and tests
    the arm difference at the final visit.

    Other endpoints (``endpoint=``): ``"cafs"`` (Finkelstein–Schoenfeld scores of
    survival, then ALSFRS-R change to the horizon, ranked by the Wilcoxon test),
    ``"joint_rank"`` (the same with each survivor's own ALSFRS-R slope),
    ``"win_ratio"`` (treated × control pairs on survival, then change beyond
    ``threshold``; tested on the net benefit over its U-statistic SE, the log win
    ratio reported) and ``"survival"`` (log-rank test; Cox log hazard ratio
    reported).  Trials come from the design's linear model (``source=None``, deaths
    from ``death_hazard``), from alsprog's nonlinear ALS course (``source="course"``
    or a :class:`~alsprog.simulate.CohortParams`: D50 sigmoid, deaths rising with the
    progression rate, informative dropout; treatment runs the course at ``1 -
    slowing`` of its speed) or from a :class:`HistoricalCohort` (patients resampled
    with their own visits and survival; the slowing shrinks each one's change from
    baseline).  ``hazard_ratio`` multiplies the treated patients' death hazard.

    Parameters
    ----------
    design : TrialDesign or LinearMixedModel
        The trial; a fitted model is turned into one by
        :meth:`TrialDesign.from_model`.
    n_per_arm : int
        Treated patients per trial (>= 2).
    n_sims : int, default 1000
        Trials to simulate.
    analysis : {"slope", "mmrm"}, default "slope"
        The endpoint when ``endpoint`` is not given (kept for earlier code).
    endpoint : {"slope", "mmrm", "cafs", "joint_rank", "win_ratio", "survival"}
        The planned analysis of each trial (default: ``analysis``).  Every trial's
        ``z`` in :attr:`PowerResult.estimates` is positive when the treated arm did
        better (slope and MMRM: in the direction of the design's ``mean_slope``).
    source : None, "course", CohortParams, CourseSource or HistoricalCohort
        Where the trials come from (above); with a source, ``dropout``,
        ``death_hazard``, ``enrichment``, ``covariates``, ``effect`` and the design's
        ``retention`` are refused: the source brings its own losses.
    hazard_ratio : float, default 1.0
        Treated : control death hazard ratio after randomisation (1 = the treatment
        does not change survival).  With the nonlinear course it is the patient-level
        (conditional) ratio: patients' hazards differ widely, so the population
        ratio a Cox model estimates lies nearer 1.
    horizon_months : float, optional
        CAFS, joint-rank and win-ratio horizon (default: the last visit).
    threshold : float, default 0.0
        Win ratio: the ALSFRS-R change difference that decides a pair.
    looks : GroupSequentialDesign, optional
        Interim analyses (:func:`group_sequential`): each trial is analysed on the
        data seen at each look (survival: when its share of the final deaths has
        occurred; the others: at that share of the follow-up) and stops at the first
        boundary crossed; ``reject`` is then the design's decision (one-sided on
        ``z`` for one-sided designs), and :attr:`PowerResult.stopping` gives the
        stopping probabilities per look.
    type_one_error : bool, default False
        Also simulate ``n_sims`` trials with no treatment effect (``slowing`` 0,
        hazard ratio 1) and report their rejection rate.
    dropout : float, default 0.0
        Extra yearly dropout probability at the mean progression rate, on top of
        ``design.retention``; a patient's hazard scales with their progression rate
        (informative dropout, not in the analytic formulas).
    death_hazard : float, default 0.0
        Extra yearly probability of death or tracheostomy at the mean progression
        rate, on top of ``design.retention``; the hazard scales with the square of the
        patient's progression rate (as the simulator, docs/domain.md §2).  With
        ``design.retention=None, dropout=0, death_hazard=0`` follow-up is complete.
    enrichment : Enrichment, optional
        Screen patients on a baseline marker; the screen-failure fraction is reported.
    covariates : sequence of BaselineMarker
        Baseline markers to adjust for (main effect and interaction with time).
    effect : {"additive", "proportional"}, default "additive"
        ``"additive"``: treatment adds ``slowing × |mean slope|`` of the enrolled
        population to every treated slope (the analytic formulas' model);
        ``"proportional"``: every treated patient's own slope is multiplied by
        ``1 - slowing`` (fast progressors gain most, and the treated arm's slope
        variance shrinks).
    seed : int, Generator or None
        Seed; each chunk of trials gets its own child seed, so the result does not
        depend on ``n_jobs`` or the joblib backend.
    n_jobs : int, default -1
        joblib workers (``-1`` = all cores); runs on a Dask cluster inside
        ``joblib.parallel_config(backend="dask")``.
    chunk_size : int, default 50
        Trials per task.
    progress : bool or None
        Progress bar per chunk (None: only on a terminal).

    Returns
    -------
    PowerResult
        With the attrition simulated (``retention``, ``dropout``, ``death_hazard``)
        and the realised fraction seen at each visit (``attrition``).

    Raises
    ------
    ModelSpecificationError
        Bad arguments or impossible marker correlations.

    Examples
    --------
    >>> d = TrialDesign(slowing=0.5)
    >>> r = simulate_power(d, 40, n_sims=20, seed=1, n_jobs=1, progress=False)
    >>> r.n_sims, 0 <= r.power <= 1
    (20, True)

    The design's retention is simulated as the analytic formula assumes it:

    >>> d = TrialDesign(retention=[1, 0.5, 0.3, 0.2, 0.1])
    >>> n = d.sample_size().n_per_arm_ceil
    >>> r = simulate_power(d, n, n_sims=200, seed=1, n_jobs=1, progress=False)
    >>> n, round(d.power_at(n).power, 3), r.retention
    (383, 0.801, (1.0, 0.5, 0.3, 0.2, 0.1))
    >>> abs(r.power - d.power_at(n).power) < 3 * r.se
    True
    >>> r.attrition["observed"].round(2).tolist()
    [1.0, 0.5, 0.3, 0.2, 0.1]
    """
    e = ModelSpecificationError
    if progress not in (None, True, False):
        raise e(f"`progress` must be True, False or None; got {progress!r}.")
    if not isinstance(design, TrialDesign):
        if hasattr(design, "fe_params_") and hasattr(design, "cov_re_"):
            design = TrialDesign.from_model(design)
        else:
            raise e(
                f"`design` must be a TrialDesign or a fitted LinearMixedModel; got "
                f"{type(design).__name__}."
            )
    n_per_arm = _check_count(n_per_arm, "n_per_arm", 2, MAX_PER_ARM)
    n_sims = _check_count(n_sims, "n_sims", 1, MAX_SIMS)
    chunk_size = check_int(chunk_size, "chunk_size", low=1, error=e)
    check_n_jobs(n_jobs, error=e)
    check_choice(analysis, "analysis", ("slope", "mmrm"), error=e)
    endpoint = analysis if endpoint is None else endpoint
    check_choice(endpoint, "endpoint", ENDPOINTS, error=e)
    check_choice(effect, "effect", ("additive", "proportional"), error=e)
    check_choice(type_one_error, "type_one_error", (True, False), error=e)
    dropout = check_interval(
        dropout, "dropout", low=0, high=1, high_closed=False, error=e
    )
    death_hazard = check_interval(
        death_hazard, "death_hazard", low=0, high=1, high_closed=False, error=e
    )
    covariates = _check_markers(covariates)
    if enrichment is not None and not isinstance(enrichment, Enrichment):
        raise e("`enrichment` must be an Enrichment.")
    plan = make_plan(
        design,
        endpoint=endpoint,
        source=source,
        hazard_ratio=hazard_ratio,
        horizon_months=horizon_months,
        threshold=threshold,
        looks=looks,
        extras={
            "dropout": dropout,
            "death_hazard": death_hazard,
            "enrichment": enrichment,
            "covariates": covariates,
            "effect": effect,
        },
    )
    n_c = max(2, int(round(n_per_arm / design.allocation_ratio)))
    rng = as_generator(seed)
    sizes = [chunk_size] * (n_sims // chunk_size)
    if n_sims % chunk_size:
        sizes.append(n_sims % chunk_size)
    root = np.random.SeedSequence(int(rng.integers(0, 2**63 - 1)))
    seeds = root.spawn(len(sizes))
    started = time.perf_counter()
    delta = None
    if enrichment is not None and effect == "additive":
        # the slowing is a fraction of the enrolled population's mean slope
        delta = enriched_design(design, enrichment).delta
    spec = _Spec(
        n_t=n_per_arm,
        n_c=n_c,
        dropout=dropout,
        death_hazard=death_hazard,
        enrichment=enrichment,
        covariates=covariates,
        delta=delta,
        effect=effect,
        survival=endpoint in SURVIVAL_ENDPOINTS,
        hazard_ratio=plan.hazard_ratio,
    )
    rows, seen_t, seen_c = _simulate_trials(
        design,
        spec,
        plan,
        sizes,
        seeds,
        n_jobs,
        progress,
        f"simulating {n_sims} trials",
    )
    alpha_hat = None
    if type_one_error:
        null_design = replace(design, slowing=0.0)
        null_spec = replace(
            spec, hazard_ratio=1.0, delta=None if spec.delta is None else 0.0
        )
        null_plan = replace(plan, slowing=0.0, hazard_ratio=1.0)
        null_rows, _, _ = _simulate_trials(
            null_design,
            null_spec,
            null_plan,
            sizes,
            root.spawn(len(sizes)),
            n_jobs,
            progress,
            f"simulating {n_sims} trials under the null",
        )
        alpha_hat = float(np.mean([r["reject"] for r in null_rows]))
    est = pd.DataFrame(rows)
    n_visits = len(design.visit_months)
    est.insert(0, "trial", np.arange(len(est)))
    p = float(est["reject"].mean())
    screened = float(est["n_screened"].sum())
    enrolled = float(est["n_patients"].sum())
    seconds = time.perf_counter() - started
    level = design.alpha if plan.looks is None else float(plan.looks.alpha)
    logger.info("simulated %d trials in %.1f s (power %.3f)", n_sims, seconds, p)
    attrition = pd.DataFrame(
        {
            "months": np.asarray(design.visit_months, float),
            "retention": (
                np.ones(n_visits)
                if design.retention is None
                else np.asarray(design.retention, float)
            ),
            "observed": (seen_t + seen_c) / (n_sims * (n_per_arm + n_c)),
            "observed_treatment": seen_t / (n_sims * n_per_arm),
            "observed_control": seen_c / (n_sims * n_c),
        }
    )
    return PowerResult(
        power=p,
        se=math.sqrt(p * (1 - p) / n_sims),
        n_sims=n_sims,
        n_per_arm=n_per_arm,
        n_control=n_c,
        analysis=endpoint,
        screen_failure=1.0 - enrolled / screened if screened else 0.0,
        estimates=est,
        design=design,
        seconds=seconds,
        retention=design.retention,
        dropout=dropout,
        death_hazard=death_hazard,
        attrition=attrition,
        endpoint=endpoint,
        source=describe_source(plan.source),
        hazard_ratio=plan.hazard_ratio,
        type_one_error=alpha_hat,
        type_one_error_se=(
            None
            if alpha_hat is None
            # at the level the trials are tested at (the looks' own alpha)
            else math.sqrt(level * (1 - level) / n_sims)
        ),
        looks=plan.looks,
    )


def _simulate_trials(
    design: TrialDesign,
    spec: _Spec,
    plan: Any,
    sizes: list[int],
    seeds: list[np.random.SeedSequence],
    n_jobs: int,
    progress: bool | None,
    desc: str,
) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Run the chunks (in parallel through joblib) and gather their rows."""
    from joblib import Parallel, delayed

    tasks = (
        delayed(run_trials)(design, spec, plan, k, s)
        for k, s in zip(sizes, seeds, strict=True)
    )
    parts = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    rows: list[dict] = []
    n_visits = len(design.visit_months)
    seen_t, seen_c = np.zeros(n_visits), np.zeros(n_visits)
    for part, part_t, part_c in progress_bar(
        parts, progress=progress, total=len(sizes), desc=desc, unit="chunk"
    ):
        rows.extend(part)
        seen_t += part_t
        seen_c += part_c
    return rows, seen_t, seen_c


def power_curve(
    design: TrialDesign,
    n_per_arm: Sequence[int] | None = None,
    *,
    slowing: Sequence[float] | None = None,
    method: Literal["edland", "diggle", "liu_liang"] = "edland",
    simulate: bool = False,
    n_sims: int = 200,
    analysis: Literal["slope", "mmrm"] = "slope",
    seed: Any = None,
    n_jobs: int = 1,
    progress: bool | None = None,
    **simulate_kwargs: Any,
) -> pd.DataFrame:
    """Power over a grid of sizes and slowings, analytic and optionally simulated.

    Parameters
    ----------
    design : TrialDesign
    n_per_arm : sequence of int, optional
        Treated patients per point (default: :meth:`TrialDesign.power_curve`'s grid).
    slowing : sequence of float, optional
        Slowings (default: the design's).
    method : {"edland", "diggle", "liu_liang"}
        Analytic formula.
    simulate : bool, default False
        Also estimate each point's power by :func:`simulate_power` (``n_sims``
        trials losing patients as ``design.retention`` says, the attrition of the
        analytic curve; each point gets its own child seed).
    n_sims, analysis, seed, n_jobs, progress, **simulate_kwargs
        Passed to :func:`simulate_power` (``dropout``, ``death_hazard`` add
        informative losses on top of the retention; ``enrichment``, ...).

    Returns
    -------
    pandas.DataFrame
        ``n_per_arm, slowing, delta, power`` (analytic), plus ``simulated_power`` and
        ``simulated_se`` when ``simulate=True``.

    Examples
    --------
    >>> c = power_curve(TrialDesign(), [60, 126], simulate=True, n_sims=20, seed=1,
    ...                 progress=False)
    >>> list(c.columns)
    ['n_per_arm', 'slowing', 'delta', 'power', 'simulated_power', 'simulated_se']
    """
    e = ModelSpecificationError
    _check_design(design)
    sizes = None
    if n_per_arm is not None:
        sizes = check_numbers(n_per_arm, "n_per_arm", low=0, low_closed=False, error=e)
    slowings = None
    if slowing is not None:
        slowings = check_numbers(slowing, "slowing", error=e)
    check_choice(simulate, "simulate", (True, False), error=e)
    n_sims = _check_count(n_sims, "n_sims", 1, MAX_SIMS)
    check_choice(analysis, "analysis", ("slope", "mmrm"), error=e)
    unknown = sorted(set(simulate_kwargs) - _SIMULATE_OPTIONS)
    if unknown:
        raise e(
            f"unknown option(s) {', '.join(map(repr, unknown))} for simulate_power; "
            f"valid: {', '.join(sorted(_SIMULATE_OPTIONS))}."
        )
    curve = design.power_curve(sizes, slowing=slowings, method=method)
    if not simulate:
        return curve
    rng = as_generator(seed)
    sims, ses = [], []
    for row in curve.itertuples(index=False):
        d = replace(design, slowing=float(row.slowing))
        r = simulate_power(
            d,
            int(round(row.n_per_arm)),
            n_sims=n_sims,
            analysis=analysis,
            seed=int(rng.integers(0, 2**31 - 1)),
            n_jobs=n_jobs,
            progress=progress,
            **simulate_kwargs,
        )
        sims.append(r.power)
        ses.append(r.se)
    return curve.assign(simulated_power=sims, simulated_se=ses)
