"""Benchmark: alsprog's SurvivalModel and survival scores beside lifelines (issue 25).

Usage::

    python benchmarks/survival.py [--quick] [--patients 10000] [--repeats 3]
                                  [--seed 25] [--no-lifelines] [--no-sksurv]

One simulated cohort of ``--patients`` patients (seed ``--seed``) with 8 baseline
covariates (``x1``-``x4`` continuous: three standard normal and one skewed,
log-normal with log-scale SD 0.5; ``x5``-``x8`` binary with prevalences 0.5, 0.3,
0.2, 0.6), Weibull event
times (shape 1.4, baseline median 24 months) with log hazard ratios ``BETA`` (one of
them 0), censored by an exponential dropout (rate 0.012 per month) and at 60 months
of follow-up: about 30 % censored.  The delayed-entry variant draws an entry time
U(0, 12) months per patient on the same time axis (onset to baseline) and keeps the
first ``--patients`` patients still event-free at entry (left truncation), follow-up
and its 60-month cap counted from entry.

Lines timed (the issue-25 targets: the Royston-Parmar fit and the scores each <= 2 s
for 10,000 patients on 2 cores), each beside its peer in the same run:

* ``SurvivalModel("Surv(time, event) ~ x1 + ... + x8")``: Royston-Parmar, df 3,
  hazard scale (the headline).  Peer: lifelines' ``CoxPHFitter(baseline_estimation_
  method="spline", n_baseline_knots=3)``, which *is* the Royston-Parmar
  proportional-hazards model (log cumulative hazard a restricted cubic spline in log
  time with 3 degrees of freedom, the same truncated-power basis); its knots are set
  to alsprog's ``knots_`` (its own choice, the 5/35/65/95 centiles of the event
  times, is timed too), so both maximise the same likelihood and the
  log-likelihoods and coefficients can be compared.  lifelines' ``CRCSplineFitter`` is the flexible *accelerated failure time*
  model (another likelihood), so it is not the peer.
* The same with delayed entry, ``Surv(entry, time, event) ~ ...`` (lifelines:
  ``entry_col``).
* ``df=1`` (the Weibull model), plain and with delayed entry, beside lifelines'
  ``WeibullAFTFitter`` (the same model: log hazard ratio = ``-rho * AFT
  coefficient``; ``entry_col``).
* ``method="cox"`` (Efron ties), plain and with delayed entry, beside lifelines'
  ``CoxPHFitter`` (Efron; ``entry_col``).
* ``predict_survival`` of every patient at 20 horizons (the 5th to 80th centiles of
  the event times; with delta-method intervals) beside lifelines'
  ``predict_survival_function`` of its spline PH fit (the one, of the two knot
  choices, with the higher log-likelihood) at the same horizons.
* ``auc_brier`` (time-dependent AUC, IPCW Brier score, Kaplan-Meier null Brier and
  integrated Brier) of the 10,000 x 20 matrix of ``1 - S(t | x)`` beside
  scikit-survival's ``cumulative_dynamic_auc`` + ``brier_score`` (lifelines has no
  equivalent; skipped with a note when ``sksurv`` is not importable).
* ``concordance`` (Harrell) of the prognostic index beside
  ``lifelines.utils.concordance_index``; Uno's beside sksurv's
  ``concordance_index_ipcw``.

Before timing each pair is run once (warm-up) and compared (``max_abs_diff``: of the
log hazard ratios for the fits, of the survival probabilities for the predictions,
of the AUC and Brier curves, of the C statistics; ``llf``: each fit's maximised
(partial) log-likelihood; the log-likelihood of the simulation's true parameters is
printed beside the Royston-Parmar fits: the maximum of any model that nests the
Weibull is at least that, so a lifelines fit below it is marked ``FAILED FIT``).
A peer that raises gets a row without seconds.  Times are the median of
``--repeats`` runs (a peer whose warm-up took over 20 s: one run); the
1-minute load average is recorded per row (the machine is shared).  ``ratio`` is the
row's seconds over alsprog's on the same line (above 1: the peer is slower).  Rows go
to ``benchmarks/results/survival.csv``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _timing import time_median  # noqa: E402

from alsprog.models import SurvivalModel  # noqa: E402
from alsprog.models.survival._scores import auc_brier, concordance  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "survival.csv"
TARGET_S = 2.0
COVS = [f"x{j}" for j in range(1, 9)]
#: True log hazard ratios of x1..x8.
BETA = np.array([0.5, -0.3, 0.2, 0.1, 0.4, -0.6, 0.25, 0.0])
RHS = " + ".join(COVS)
N_HORIZONS = 20


def simulate(n: int, seed: int, *, delayed: bool = False) -> pd.DataFrame:
    """``n`` patients: ``x1``..``x8``, ``time``, ``event`` (0/1) and, when
    ``delayed``, ``entry`` (months; every patient event-free at entry)."""
    rng = np.random.default_rng(seed + (1 if delayed else 0))
    m = 3 * n if delayed else n  # ~60 % survive to a U(0, 12) entry
    X = np.column_stack(
        [
            rng.normal(size=(m, 3)),
            rng.lognormal(0.0, 0.5, m),  # a skewed marker
            rng.random((m, 4)) < np.array([0.5, 0.3, 0.2, 0.6]),
        ]
    ).astype(float)
    # Weibull: H(t | x) = log 2 (t / 24)^1.4 exp(x' beta)
    T = 24.0 * (rng.exponential(size=m) * np.exp(-(X @ BETA)) / np.log(2)) ** (1 / 1.4)
    entry = rng.uniform(0.0, 12.0, m) if delayed else np.zeros(m)
    C = entry + np.minimum(rng.exponential(1 / 0.012, m), 60.0)
    keep = np.flatnonzero(T > entry)[:n]
    if len(keep) < n:  # pragma: no cover - 3n draws leave ~1.8n
        raise RuntimeError("too few patients survive to entry; raise the pool")
    df = pd.DataFrame(X[keep], columns=COVS)
    df["time"] = np.minimum(T, C)[keep]
    df["event"] = (T <= C)[keep].astype(int)
    if delayed:
        df.insert(0, "entry", entry[keep])
    return df


def llf_truth(df: pd.DataFrame) -> float:
    """The log-likelihood of the simulation's own Weibull model (every
    Royston-Parmar fit with df >= 1 nests it, so its maximum is at least this)."""
    lp = df[COVS].to_numpy() @ BETA
    t, e = df["time"].to_numpy(), df["event"].to_numpy()
    entry = df["entry"].to_numpy() if "entry" in df else np.zeros(len(df))

    def H(u: np.ndarray) -> np.ndarray:
        return np.log(2) * (u / 24.0) ** 1.4 * np.exp(lp)

    log_h = np.log(np.log(2) * 1.4 / 24.0) + 0.4 * np.log(t / 24.0) + lp
    return float(np.sum(e * log_h - H(t) + H(entry)))


def formula(delayed: bool) -> str:
    surv = "Surv(entry, time, event)" if delayed else "Surv(time, event)"
    return f"{surv} ~ {RHS}"


# ------------------------------------------------------------------ alsprog
def fit_alsprog(data: pd.DataFrame, delayed: bool, **kw: Any) -> SurvivalModel:
    return SurvivalModel(formula(delayed), **kw).fit(data)


def risk_matrix(m: SurvivalModel, df: pd.DataFrame, horizons: np.ndarray) -> np.ndarray:
    """``1 - S(t | x)``, shape (n, len(horizons)), from alsprog's long rows."""
    s = m.predict_survival(df, horizons)
    return 1.0 - s["survival"].to_numpy().reshape(len(df), len(horizons))


# ----------------------------------------------------------------- lifelines
def fit_lifelines_spline(
    df: pd.DataFrame, delayed: bool, knots: np.ndarray | None = None
) -> Any:
    """Royston-Parmar PH with df 3 (``n_baseline_knots=3``: 4 knots); with
    ``knots`` (4 values, time units) the knots are those instead of lifelines'."""
    from lifelines import CoxPHFitter

    cph = CoxPHFitter(baseline_estimation_method="spline", n_baseline_knots=3)
    if knots is not None:
        cph.knots = list(knots)  # passed on to the spline fitter; 3 df kept
    return cph.fit(df, "time", "event", entry_col="entry" if delayed else None)


def fit_lifelines_cox(df: pd.DataFrame, delayed: bool) -> Any:
    from lifelines import CoxPHFitter

    return CoxPHFitter().fit(
        df, "time", "event", entry_col="entry" if delayed else None
    )


def fit_lifelines_weibull(df: pd.DataFrame, delayed: bool) -> Any:
    from lifelines import WeibullAFTFitter

    entry = "entry" if delayed else None
    return WeibullAFTFitter().fit(df, "time", "event", entry_col=entry)


def weibull_log_hr(w: Any) -> np.ndarray:
    """lifelines' Weibull AFT fit as log hazard ratios: ``-rho * beta``."""
    rho = float(np.exp(w.params_.loc[("rho_", "Intercept")]))
    return -rho * w.params_.loc["lambda_"].loc[COVS].to_numpy()


def lifelines_risk(cph: Any, df: pd.DataFrame, horizons: np.ndarray) -> np.ndarray:
    return 1.0 - cph.predict_survival_function(df[COVS], times=horizons).to_numpy().T


# ------------------------------------------------------------------ sksurv
def have_sksurv() -> bool:
    try:
        import sksurv.metrics  # noqa: F401
    except ImportError:
        return False
    return True


def sksurv_scores(df: pd.DataFrame, risk: np.ndarray, horizons: np.ndarray) -> Any:
    from sksurv.metrics import brier_score, cumulative_dynamic_auc
    from sksurv.util import Surv

    y = Surv.from_arrays(df["event"].to_numpy(bool), df["time"].to_numpy())
    # tied_tol=0: exact ties only, as alsprog (sksurv's default 1e-8 merges
    # near-equal small risks and moves the AUC by ~1e-7 here)
    auc, _ = cumulative_dynamic_auc(y, y, risk, horizons, tied_tol=0.0)
    _, brier = brier_score(y, y, 1.0 - risk, horizons)
    return auc, brier


def sksurv_uno(df: pd.DataFrame, pi: np.ndarray) -> float:
    from sksurv.metrics import concordance_index_ipcw
    from sksurv.util import Surv

    y = Surv.from_arrays(df["event"].to_numpy(bool), df["time"].to_numpy())
    # tau just below the last time (the 60-month cap, where G drops to 0): sksurv
    # refuses a tau with G(tau) = 0; every event is earlier, so all pairs are kept
    tau = float(np.max(df["time"])) * (1 - 1e-9)
    return float(concordance_index_ipcw(y, y, pi, tau=tau)[0])


# -------------------------------------------------------------------- driver
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 patients, 1 repeat")
    ap.add_argument("--patients", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--seed", type=int, default=25)
    ap.add_argument("--no-lifelines", action="store_true", help="skip lifelines")
    ap.add_argument("--no-sksurv", action="store_true", help="skip scikit-survival")
    a = ap.parse_args(argv)
    n = a.patients or (2000 if a.quick else 10000)
    repeats = a.repeats or (1 if a.quick else 3)
    warnings.simplefilter("ignore")  # lifelines' pandas-4 deprecation notes
    use_ll = not a.no_lifelines
    if use_ll:
        try:
            import lifelines
        except ImportError:
            print("note: lifelines is not importable; its lines are skipped")
            use_ll = False
    use_sk = not a.no_sksurv and have_sksurv()
    if not a.no_sksurv and not use_sk:
        print("note: scikit-survival (sksurv) is not importable; its lines are skipped")

    df = simulate(n, a.seed)
    dfe = simulate(n, a.seed, delayed=True)
    horizons = np.quantile(
        df.loc[df["event"] == 1, "time"], np.linspace(0.05, 0.80, N_HORIZONS)
    )
    print(
        f"{n} patients x {len(COVS)} covariates; censored {1 - df['event'].mean():.1%} "
        f"(delayed entry: {1 - dfe['event'].mean():.1%}); {N_HORIZONS} horizons "
        f"{horizons[0]:.1f}-{horizons[-1]:.1f} months; {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}; repeats {repeats}"
    )
    versions = {"alsprog": _version("alsprog")}
    if use_ll:
        versions["lifelines"] = lifelines.__version__
    if use_sk:
        versions["scikit-survival"] = _version("scikit-survival")

    rows: list[dict[str, Any]] = []

    def timed(
        line: str,
        tool: str,
        fn: Callable[[], Any],
        *,
        target: float | None = None,
        diff: float | None = None,
        diff_of: str = "",
        reps: int | None = None,
        llf: float | None = None,
    ) -> float:
        s = time_median(fn, reps or repeats)
        base = next(
            (
                r["seconds"]
                for r in rows
                if r["line"] == line and r["tool"] == "alsprog"
            ),
            s,
        )
        rows.append(
            {
                "line": line,
                "tool": tool,
                "version": versions.get(tool.split()[0], ""),
                "patients": n,
                "covariates": len(COVS),
                "horizons": N_HORIZONS,
                "seconds": s,
                "repeats": reps or repeats,
                "ratio": s / base,
                "target_s": target if target is not None else np.nan,
                "met": (s <= target) if target is not None else "",
                "max_abs_diff": diff if diff is not None else np.nan,
                "diff_of": diff_of,
                "llf": llf if llf is not None else np.nan,
                "load_1min": round(os.getloadavg()[0], 2),
                "cpus": os.cpu_count(),
            }
        )
        extra = f"  max|diff| {diff:.2e} ({diff_of})" if diff is not None else ""
        print(f"  {line:<34} {tool:<44} {s:8.3f} s  x{s / base:6.2f}{extra}")
        return s

    def peer(
        line: str,
        tool: str,
        fn: Callable[[], Any],
        compare: Callable[[Any], float],
        diff_of: str,
        llf: Callable[[Any], float] | None = None,
        check: Callable[[Any], str] | None = None,
    ) -> Any:
        """Warm-up and agreement, then the timing (one repeat when the warm-up took
        over 20 s); a peer that fails gets a row without seconds."""
        t0 = time.perf_counter()
        try:
            out = fn()
        except Exception as exc:  # lifelines' ConvergenceError and the like
            print(f"  {line:<34} {tool:<44}   failed: {type(exc).__name__}")
            rows.append(
                {
                    "line": line,
                    "tool": tool,
                    "version": versions.get(tool.split()[0], ""),
                    "patients": n,
                    "covariates": len(COVS),
                    "horizons": N_HORIZONS,
                    "diff_of": f"failed: {type(exc).__name__}",
                    "load_1min": round(os.getloadavg()[0], 2),
                    "cpus": os.cpu_count(),
                }
            )
            return None
        reps = 1 if time.perf_counter() - t0 > 20 else repeats
        timed(
            line,
            tool,
            fn,
            diff=float(compare(out)),
            diff_of=diff_of + (check(out) if check is not None else ""),
            reps=reps,
            llf=None if llf is None else float(llf(out)),
        )
        return out

    print(f"{'line':<36} {'tool':<44} {'seconds':>10}  ratio")
    # --- Royston-Parmar df 3 (headline), plain and delayed entry
    fits: dict[bool, SurvivalModel] = {}
    ll_plain: dict[str, Any] = {}  # lifelines' spline PH fits (for the predictions)
    for delayed, data in ((False, df), (True, dfe)):
        line = "RP df3 fit" + (" delayed entry" if delayed else "")
        m = fits[delayed] = fit_alsprog(data, delayed)
        b = m.params_.to_numpy()
        truth = llf_truth(data)
        timed(
            line,
            "alsprog",
            lambda d=data, e=delayed: fit_alsprog(d, e),
            target=TARGET_S,
            llf=m.llf_,
        )
        print(
            f"    alsprog: llf {m.llf_:.4f} (at the true parameters "
            f"{truth:.4f}), converged {m.converged_}, "
            f"max|log HR - truth| {np.max(np.abs(b - BETA)):.3f}"
        )
        if not use_ll:
            continue
        for label, knots in (("alsprog's knots", m.knots_), ("own knots", None)):
            ll = peer(
                line,
                f"lifelines spline PH, {label}",
                lambda d=data, e=delayed, k=knots: fit_lifelines_spline(d, e, k),
                lambda r, b=b: np.max(np.abs(b - r.params_.loc["beta_"][COVS])),
                "log HR",
                llf=lambda r: r.log_likelihood_,
                check=lambda r, tr=truth: (
                    "; FAILED FIT: llf below the true parameters'"
                    if r.log_likelihood_ < tr - 1
                    else ""
                ),
            )
            if not delayed and ll is not None:
                ll_plain[label] = ll
            if ll is not None:
                gap = m.llf_ - ll.log_likelihood_
                print(
                    f"    lifelines ({label}): llf {ll.log_likelihood_:.4f}, "
                    f"alsprog's llf - lifelines' {gap:+.2e}"
                )
                if ll.log_likelihood_ < truth - 1:
                    print(
                        "      WARNING: lifelines stopped below the log-likelihood "
                        "of the true parameters (a nested point): a failed fit"
                    )
                elif knots is None:
                    print("      (other knots: another model; llfs differ a little)")
    rp = fits[False]

    # --- Weibull (RP df 1), plain and delayed entry: the same model in lifelines
    for delayed, data in ((False, df), (True, dfe)):
        line = "Weibull fit (RP df1)" + (" delayed entry" if delayed else "")
        mw = fit_alsprog(data, delayed, df=1)
        bw = mw.params_.to_numpy()
        timed(
            line,
            "alsprog",
            lambda d=data, e=delayed: fit_alsprog(d, e, df=1),
            llf=mw.llf_,
        )
        if use_ll:
            peer(
                line,
                "lifelines WeibullAFTFitter",
                lambda d=data, e=delayed: fit_lifelines_weibull(d, e),
                lambda w, b=bw: np.max(np.abs(b - weibull_log_hr(w))),
                "log HR",
                llf=lambda w: w.log_likelihood_,
            )

    # --- Cox (Efron), plain and delayed entry
    for delayed, data in ((False, df), (True, dfe)):
        line = "Cox Efron fit" + (" delayed entry" if delayed else "")
        mc = fit_alsprog(data, delayed, method="cox")
        bc = mc.params_.to_numpy()
        timed(
            line,
            "alsprog",
            lambda d=data, e=delayed: fit_alsprog(d, e, method="cox"),
            llf=mc.llf_,
        )
        if use_ll:
            peer(
                line,
                "lifelines CoxPHFitter",
                lambda d=data, e=delayed: fit_lifelines_cox(d, e),
                lambda c, b=bc: np.max(np.abs(b - c.params_[COVS])),
                "log HR",
                llf=lambda c: c.log_likelihood_,
            )

    # --- predicted survival at 20 horizons (the scores' input)
    risk = risk_matrix(rp, df, horizons)
    timed("predict_survival 20 times", "alsprog", lambda: risk_matrix(rp, df, horizons))
    if ll_plain:
        # the lifelines fit nearest alsprog's maximum (a failed one would compare
        # the optimisers, not the predictions)
        label = max(ll_plain, key=lambda k: ll_plain[k].log_likelihood_)
        ll_rp = ll_plain[label]
        peer(
            "predict_survival 20 times",
            "lifelines predict_survival_function",
            lambda: lifelines_risk(ll_rp, df, horizons),
            lambda lr: np.max(np.abs(risk - lr)),
            f"1 - S(t|x), spline PH with {label}",
        )

    # --- time-dependent AUC and Brier at 20 horizons
    t, e = df["time"].to_numpy(), df["event"].to_numpy()
    ab = auc_brier(t, e, risk, horizons)
    timed(
        "AUC+Brier 20 times",
        "alsprog",
        lambda: auc_brier(t, e, risk, horizons),
        target=TARGET_S,
    )
    print(
        f"    AUC {ab.auc.min():.3f}-{ab.auc.max():.3f}, Brier "
        f"{ab.brier.min():.3f}-{ab.brier.max():.3f}, IBS at the last {ab.ibs[-1]:.4f}"
    )
    if use_sk:
        peer(
            "AUC+Brier 20 times",
            "scikit-survival cumulative_dynamic_auc+brier_score",
            lambda: sksurv_scores(df, risk, horizons),
            lambda r: max(
                np.max(np.abs(ab.auc - r[0])), np.max(np.abs(ab.brier - r[1]))
            ),
            "AUC and Brier curves",
        )

    # --- concordance of the prognostic index
    pi = rp.prognostic_index(df).to_numpy()
    ch = concordance(t, e, pi)
    timed("Harrell C", "alsprog", lambda: concordance(t, e, pi))
    print(f"    Harrell C {ch:.4f}")
    if use_ll:
        from lifelines.utils import concordance_index

        peer(
            "Harrell C",
            "lifelines concordance_index",
            lambda: concordance_index(t, -pi, e),
            lambda c: abs(ch - c),
            "C",
        )
    cu = concordance(t, e, pi, weights="uno")
    timed("Uno C", "alsprog", lambda: concordance(t, e, pi, weights="uno"))
    print(f"    Uno C {cu:.4f}")
    if use_sk:
        peer(
            "Uno C",
            "scikit-survival concordance_index_ipcw",
            lambda: sksurv_uno(df, pi),
            lambda c: abs(cu - c),
            "C (sksurv tau = last time)",
        )

    table = pd.DataFrame(rows)
    table["repeats"] = table["repeats"].astype("Int64")
    for line, target in (("RP df3 fit", TARGET_S), ("AUC+Brier 20 times", TARGET_S)):
        s = table.loc[(table["line"] == line) & (table["tool"] == "alsprog"), "seconds"]
        verdict = "met" if s.iloc[0] <= target else "MISSED"
        print(f"target {line} <= {target:g} s: {verdict} ({s.iloc[0]:.3f} s)")
    print(
        "seconds: median of the repeats after a warm-up; ratio: seconds / alsprog's on "
        "the line (above 1: slower than alsprog); max_abs_diff: against alsprog."
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    from alsprog._io import atomic_path

    with atomic_path(OUT) as tmp_csv:
        table.to_csv(tmp_csv, index=False)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return ""


if __name__ == "__main__":
    raise SystemExit(main())
