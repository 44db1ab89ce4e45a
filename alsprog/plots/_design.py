"""Figures for trial design: power curves.

Owns: :func:`power_curve`.  Draws only what :func:`alsprog.design.power_curve`
computed; nothing new is estimated here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["power_curve"]


def power_curve(curve: pd.DataFrame, *, ax: Any = None) -> Any:
    """Power against patients per arm, one line per slowing.

    Parameters
    ----------
    curve : pandas.DataFrame
        From :func:`alsprog.design.power_curve` or :meth:`TrialDesign.power_curve`
        (``n_per_arm, slowing, power`` and optionally ``simulated_power,
        simulated_se``, drawn as points with ±2 SE bars).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from alsprog.design import TrialDesign
    >>> ax = power_curve(TrialDesign().power_curve([40, 80, 126], slowing=[0.25, 0.5]))
    >>> len(ax.get_lines())
    2
    """
    import matplotlib.pyplot as plt

    need = {"n_per_arm", "slowing", "power"}
    if not need <= set(curve.columns):
        raise ValueError(
            f"`curve` needs the columns {sorted(need)}; got {list(curve.columns)}."
        )
    ax = ax if ax is not None else plt.gca()
    for slowing, g in curve.sort_values("n_per_arm").groupby("slowing", sort=True):
        (line,) = ax.plot(g["n_per_arm"], g["power"], label=f"{slowing:.0%} slowing")
        if "simulated_power" in g:
            ax.errorbar(
                g["n_per_arm"],
                g["simulated_power"],
                yerr=2 * g["simulated_se"],
                fmt="o",
                color=line.get_color(),
                ms=4,
                capsize=2,
            )
    ax.set_xlabel("patients per arm")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return ax
