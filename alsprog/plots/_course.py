"""The stage plot of a multivariate disease-course model.

Owns: :func:`disease_course_plot`: every outcome's population curve (normalised, 0
healthy to 1 floor) on the latent disease time with its credible band, each outcome's
half-way time, and below it each patient's stage (latent time at the last visit) with
its interval against the patient's speed.
Leaves: every number drawn to the model's public methods
(:meth:`~alsprog.models.bayes._course.DiseaseCourseModel.population_curves`,
``decline_order``, ``patient_stage``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["disease_course_plot"]


def disease_course_plot(
    model: Any,
    *,
    level: float = 0.9,
    threshold: float = 0.5,
    subjects: Any = None,
    figsize: tuple[float, float] = (8.0, 6.5),
) -> Any:
    """Population curves of every outcome on the latent time, with patient stages.

    Parameters
    ----------
    model : DiseaseCourseModel
        A fitted model.
    level : float, default 0.9
        Coverage of the curves' bands and of the stage intervals.
    threshold : float, default 0.5
        Normalised level whose crossing times are marked on the curves.
    subjects : list, optional
        Patients to mark (default all).
    figsize : tuple, default (8, 6.5)
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels sharing the latent-time axis: the curves on top, the patients'
        stages (x) against their speed (y, log scale) below.  A figure rather than
        an Axes, because the plot needs both panels.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from types import SimpleNamespace
    >>> import pandas as pd
    >>> curves = pd.DataFrame({"outcome": ["a"] * 3, "latent_time": [0.0, 20, 40],
    ...     "mean": [0.1, 0.5, 0.9], "lower": [0.0, 0.4, 0.8], "upper": [0.2, 0.6, 1]})
    >>> times = pd.DataFrame({"mean": [20.0], "lower": [18.0], "upper": [22.0]},
    ...                      index=pd.Index(["a"], name="outcome"))
    >>> stage = pd.DataFrame({"subject_id": ["P1"], "stage_mean": [25.0],
    ...     "stage_lower": [22.0], "stage_upper": [28.0], "speed_mean": [1.2]})
    >>> m = SimpleNamespace(population_curves=lambda level: curves,
    ...     decline_order=lambda threshold, level: SimpleNamespace(times=times),
    ...     patient_stage=lambda subjects, level: stage)
    >>> fig = disease_course_plot(m)
    >>> len(fig.axes)
    2
    >>> plt.close("all")
    """
    import matplotlib.pyplot as plt

    curves = model.population_curves(level=level)
    order = model.decline_order(threshold=threshold, level=level).times
    stage = model.patient_stage(subjects=subjects, level=level)
    fig, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=figsize, height_ratios=(2.0, 1.2)
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, outcome in enumerate(order.index):
        g = curves[curves["outcome"] == outcome]
        col = colours[i % len(colours)]
        top.plot(g["latent_time"], g["mean"], color=col, label=str(outcome))
        top.fill_between(
            g["latent_time"], g["lower"], g["upper"], color=col, alpha=0.2, lw=0
        )
        row = order.loc[outcome]
        top.errorbar(
            [row["mean"]],
            [threshold],
            xerr=[[row["mean"] - row["lower"]], [row["upper"] - row["mean"]]],
            fmt="o",
            color=col,
            capsize=3,
            ms=4,
        )
    top.set_ylim(-0.03, 1.03)
    top.set_ylabel("decline (0 normal, 1 floor)")
    top.legend(fontsize="small", loc="upper left")
    top.set_title("Disease course: outcomes on the shared latent time")
    x = stage["stage_mean"].to_numpy(dtype=float)
    lo = x - stage["stage_lower"].to_numpy(dtype=float)
    hi = stage["stage_upper"].to_numpy(dtype=float) - x
    y = stage["speed_mean"].to_numpy(dtype=float)
    bottom.errorbar(
        x,
        y,
        xerr=np.vstack([lo, hi]),
        fmt="o",
        ms=3,
        color="0.3",
        ecolor="0.7",
        elinewidth=0.8,
    )
    bottom.set_yscale("log")
    ticks = [0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0]
    bottom.set_yticks(ticks, labels=[f"{t:g}" for t in ticks])
    bottom.minorticks_off()
    if len(y):
        bottom.set_ylim(
            min(0.8, float(np.min(y)) / 1.15), max(1.25, float(np.max(y)) * 1.15)
        )
    bottom.axhline(1.0, color="0.5", lw=0.8, ls="--")
    bottom.set_xlabel("latent disease time (months since onset, reference patient)")
    bottom.set_ylabel("speed (alpha)")
    fig.tight_layout()
    return fig
