"""Latent progression classes: fast, typical and slow ALS, found from the visits.

1. A cohort from three linear progression classes (known membership).
2. ``select_n_classes``: K = 1..4, one row per K (log-likelihood, AIC, BIC, SABIC,
   relative entropy, ICL, smallest class share, starts at the best).
3. The chosen model: class trajectories, sizes, the posterior classification table
   and the adjusted Rand index against the truth.
4. A new patient: class probabilities from their first two visits, and the
   forecast (a mixture of the class forecasts) beside the mixed model's.
5. Class membership on a baseline covariate (ΔFS) and ``simulate_cohort``'s own
   progression classes.

Run: ``python examples/08_latent_classes.py [OUT_DIR]``
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from alsprog.forecast import forecast
from alsprog.models import LatentClassMixedModel, LinearMixedModel, select_n_classes
from alsprog.simulate import ProgressionClass, simulate_cohort

FORMULA = "alsfrs_r_total ~ months + (months | subject_id)"


def linear_classes(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Slopes -0.3, -1.0, -2.0 points/month; random intercept SD 3, slope SD 0.15;
    five visits three months apart; ΔFS higher in the faster classes."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 3, n)
    sid = np.repeat(np.arange(n), 5)
    t = np.tile(np.arange(5) * 3.0, n)
    slope = np.array([-0.3, -1.0, -2.0])[cls] + rng.normal(0, 0.15, n)
    y = 40 + rng.normal(0, 3, n)[sid] + slope[sid] * t + rng.normal(0, 1.5, len(t))
    dfs = np.array([0.3, 0.6, 1.0])[cls] * rng.lognormal(0, 0.3, n)
    return (
        pd.DataFrame(
            {
                "subject_id": [f"P{i:04d}" for i in sid],
                "months": t,
                "alsfrs_r_total": np.clip(np.round(y), 0, 48),
                "delta_fs": dfs[sid],
            }
        ),
        cls,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=None)
    out = Path(ap.parse_args().out or tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    df, cls = linear_classes(600, seed=1)
    new = [f"P{i:04d}" for i in range(500, 600)]
    train = df[~df["subject_id"].isin(new)]

    print("1-2. Class numbers 1..4 (6 starts each):")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # over-fitted K: lonely optima
        sel = select_n_classes(
            train, FORMULA, range(1, 5), n_init=6, seed=2, progress=False
        )
    print(sel.table.round(3).to_string())
    print(f"BIC chooses K = {sel.best}. {sel.note}".strip())
    fig = sel.plot().figure
    fig.savefig(out / "class_selection.png", dpi=100)

    m = sel.models[sel.best]
    print("\n3. The chosen model:")
    print(m.summary())
    print(m.class_trajectories([0.0, 6.0, 12.0]).round(2).to_string(index=False))
    from sklearn.metrics import adjusted_rand_score

    ids = sorted(pd.unique(train["subject_id"]))
    truth = cls[[int(s[1:]) for s in ids]]
    ari = adjusted_rand_score(truth, m.classes_.loc[ids])
    print(f"adjusted Rand index of the MAP classes against the truth: {ari:.3f}")

    print("\n4. A new patient from their first two visits (months 0 and 3):")
    hist = df[(df["subject_id"] == "P0500") & (df["months"] <= 3)]
    print(m.predict_class(hist).round(3).to_string())
    print(f"(true class: {cls[500] + 1})")
    lmm = LinearMixedModel(FORMULA, reml=False).fit(train)
    both = pd.concat(
        [
            forecast(m, hist, [6.0, 12.0]).assign(model="latent classes"),
            forecast(lmm, hist, [6.0, 12.0]).assign(model="mixed model"),
        ]
    )
    cols = ["model", "months", "mean", "lower", "upper"]
    print(both[cols].round(2).to_string(index=False))

    print("\n5. Membership on ΔFS, and the simulator's progression classes:")
    mc = LatentClassMixedModel(
        FORMULA, 3, class_formula="~ delta_fs", n_init=6, seed=3
    ).fit(train)
    print(mc.summary().tables["membership"].round(3).to_string())
    classes = [
        ProgressionClass(0.3, -0.3, 0.15, name="slow"),
        ProgressionClass(0.45, -1.0, 0.3, name="typical"),
        ProgressionClass(0.25, -2.0, 0.4, name="fast"),
    ]
    cohort = simulate_cohort(300, seed=4, progression_classes=classes)
    print(cohort.truth["progression_class"].value_counts().sort_index().to_string())
    m.save(out / "latent_classes.npz")
    print(f"wrote {out / 'class_selection.png'} and {out / 'latent_classes.npz'}")


if __name__ == "__main__":
    main()
