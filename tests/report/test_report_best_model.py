"""The report never names a non-converged model, or one ranked by an unreliable
PSIS-LOO, as the best; when a converged model's PSIS-LOO is unreliable the Bayesian
models are compared by exact 5-fold CV by subject instead, and the report says which
criterion it used (issue 26, honest model comparison)."""

from __future__ import annotations

import html
from pathlib import Path

import arviz  # noqa: F401  (its 3 s import at collection, not in a test)
import numpy as np
import pandas as pd
import pytest

from alsprog.report.sections.models import (
    KFOLD_K,
    MAX_PARETO_K_BAD,
    Models,
    ModelsSection,
    _add_loo,
    best_by_loo,
    criterion_name,
)


def _comp(rank, converged, bad):
    return pd.DataFrame(
        {"rank": rank, "converged": converged, "n_pareto_k_bad": bad},
        index=["sigmoid", "linear", "mixed"][: len(rank)],
    )


@pytest.mark.parametrize(
    ("rank", "converged", "bad", "want"),
    [
        ([0.0, 1.0], [True, True], [0, 0], "sigmoid"),
        ([0.0, 1.0], [False, True], [0, 0], "linear (sigmoid did not converge)"),
        (
            [0.0, 1.0],
            [True, True],
            [MAX_PARETO_K_BAD + 1, MAX_PARETO_K_BAD],
            f"linear (sigmoid {MAX_PARETO_K_BAD + 1} Pareto k > 0.7)",
        ),
        (
            [1.0, 0.0],
            [False, False],
            [0, 80],
            "none (linear did not converge; sigmoid did not converge)",
        ),
        # a model outside the LOO comparison (rank NaN) is never named
        (
            [0.0, 1.0, None],
            [False, True, True],
            [0, 0, 0],
            "linear (sigmoid did not converge)",
        ),
    ],
)
def test_best_model_is_the_first_that_passed_the_gates(rank, converged, bad, want):
    assert best_by_loo(_comp(rank, converged, bad)) == want


@pytest.mark.slow  # reads the tiny demo run (minutes, shared with the other report tests)
def test_the_tiny_demo_names_no_unconverged_model(tiny_demo):
    out = Path(tiny_demo.out)
    comp = pd.read_csv(out / "models" / "comparison.csv", index_col="model")
    text = html.unescape((out / "report.html").read_text())
    assert f"best model by {criterion_name(comp)}" in text
    shown = best_by_loo(comp)
    assert shown in text
    for name in comp.index[(comp["converged"] == False) & comp["rank"].notna()]:  # noqa: E712
        assert not shown.startswith(name)


def test_pareto_k_do_not_gate_a_kfold_comparison():
    comp = _comp([0.0, 1.0], [True, True], [80, 0]).assign(
        criterion="5-fold CV by subject"
    )
    assert best_by_loo(comp) == "sigmoid"
    assert criterion_name(comp) == "5-fold CV by subject"
    assert criterion_name(comp.drop(columns="criterion")) == "PSIS-LOO"


# ---------------------------------------- the fallback, with fast fake models
def _elpd(loo_i, pareto_k=None):
    """An ELPDData laid out as az.loo's (what az.compare reads)."""
    import xarray as xr
    from arviz.stats.stats_utils import ELPDData

    loo_i = np.asarray(loo_i, dtype=float)
    k = np.zeros(len(loo_i)) if pareto_k is None else np.asarray(pareto_k, float)
    return ELPDData(
        data=[
            loo_i.sum(),
            np.sqrt(len(loo_i) * np.var(loo_i)),
            2.0,
            100,
            len(loo_i),
            False,
            xr.DataArray(loo_i, dims=["i"]),
            xr.DataArray(k, dims=["i"]),
            "log",
            0.7,
        ],
        index=[
            "elpd_loo",
            "se",
            "p_loo",
            "n_samples",
            "n_data_points",
            "warning",
            "loo_i",
            "pareto_k",
            "scale",
            "good_k",
        ],
    )


class _Fake:
    """A fitted Bayesian model as the comparison sees it."""

    idata_ = None

    def __init__(self, loo, kfold, converged=True, by_subject=None):
        self._loo, self._kfold, self.converged_ = loo, kfold, converged
        self._by_subject = by_subject
        self.kfold_calls = []

    def loo(self, by="observation"):
        return self._loo if by == "observation" else self._by_subject

    def kfold(self, data, *, k, seed, n_jobs):
        self.kfold_calls.append({"data": data, "k": k, "seed": seed, "n_jobs": n_jobs})
        return self._kfold


def _run(tmp_path, bad_k, converged, n_jobs=3, bad_subject=None):
    from alsprog.report._config import DataConfig, RunConfig, RunSettings
    from alsprog.report.sections._base import RunContext

    cfg = RunConfig(
        data=DataConfig(visits=tmp_path / "v.csv", subjects=tmp_path / "s.csv"),
        run=RunSettings(seed=7, n_jobs=n_jobs),
    )
    ctx = RunContext(config=cfg, out=tmp_path)
    rng = np.random.default_rng(0)
    n_obs, n_subj = 40, 10
    # PSIS ranks "sigmoid" first, K-fold by subject ranks "linear" first, PSIS by
    # patient "sigmoid" again; by default PSIS by patient is unreliable for both
    psis = {"sigmoid": -80.0, "linear": -90.0}
    cv = {"sigmoid": -60.0, "linear": -50.0}
    by_patient = {"sigmoid": -55.0, "linear": -58.0}
    if bad_subject is None:
        bad_subject = {"sigmoid": MAX_PARETO_K_BAD + 1, "linear": MAX_PARETO_K_BAD + 1}
    models = {
        name: _Fake(
            _elpd(
                psis[name] / n_obs + 0.1 * rng.standard_normal(n_obs),
                np.r_[np.full(bad_k[name], 0.9), np.zeros(n_obs - bad_k[name])],
            ),
            _elpd(cv[name] / n_subj + 0.1 * rng.standard_normal(n_subj)),
            converged[name],
            _elpd(
                by_patient[name] / n_subj + 0.1 * rng.standard_normal(n_subj),
                np.r_[
                    np.full(bad_subject[name], 0.9),
                    np.zeros(n_subj - bad_subject[name]),
                ],
            ),
        )
        for name in ("sigmoid", "linear")
    }
    comp = pd.DataFrame(
        {"n_obs": n_obs, "converged": [converged[n] for n in models]},
        index=pd.Index(list(models), name="model"),
    )
    fit_data = pd.DataFrame({"subject_id": ["a"]})
    comp = _add_loo(ctx, models, comp, fit_data)
    return ctx, models, comp, fit_data


def test_reliable_psis_loo_is_the_criterion(tmp_path):
    bad = {"sigmoid": MAX_PARETO_K_BAD, "linear": 0}
    ctx, models, comp, _ = _run(tmp_path, bad, {"sigmoid": True, "linear": True})
    assert all(not m.kfold_calls for m in models.values())
    assert (comp["criterion"] == "PSIS-LOO").all()
    assert "elpd_kfold" not in comp.columns
    assert comp["rank"].to_dict() == {"sigmoid": 0.0, "linear": 1.0}
    kpis = dict(ModelsSection().kpis(ctx, Models(comparison=comp)))
    assert kpis == {"best model by PSIS-LOO": "sigmoid"}


def test_unreliable_psis_of_a_non_converged_model_keeps_psis(tmp_path):
    bad = {"sigmoid": MAX_PARETO_K_BAD + 1, "linear": 0}
    ctx, models, comp, _ = _run(tmp_path, bad, {"sigmoid": False, "linear": True})
    assert all(not m.kfold_calls for m in models.values())
    assert (comp["criterion"] == "PSIS-LOO").all()
    assert best_by_loo(comp) == "linear (sigmoid did not converge)"


def test_unreliable_psis_switches_every_model_to_kfold_by_subject(tmp_path):
    from alsprog.report.sections._base import stage_seed

    bad = {"sigmoid": MAX_PARETO_K_BAD + 1, "linear": 0}
    ctx, models, comp, fit_data = _run(
        tmp_path, bad, {"sigmoid": True, "linear": True}, n_jobs=3
    )
    for name, m in models.items():  # like with like: every compared model
        (call,) = m.kfold_calls
        assert call["data"] is fit_data and call["k"] == KFOLD_K == 5
        assert call["n_jobs"] == 3
        assert call["seed"] == stage_seed(7, f"models.{name}.kfold")
        want = m._kfold
        assert comp.loc[name, "elpd_kfold"] == pytest.approx(want["elpd_loo"])
        assert comp.loc[name, "kfold_se"] == pytest.approx(want["se"])
        # PSIS-LOO by visit is still shown, with its Pareto k count
        assert comp.loc[name, "elpd_loo"] == pytest.approx(m._loo["elpd_loo"])
    assert (comp["criterion"] == "5-fold CV by subject").all()
    # ranked by the K-fold values (PSIS would put sigmoid first)
    assert comp["rank"].to_dict() == {"sigmoid": 1.0, "linear": 0.0}
    diff = (
        models["sigmoid"]._kfold["loo_i"].values
        - models["linear"]._kfold["loo_i"].values
    )
    assert comp.loc["sigmoid", "elpd_diff"] == pytest.approx(-diff.sum())
    assert comp.loc["sigmoid", "diff_se"] == pytest.approx(
        np.sqrt(len(diff) * np.var(diff))
    )
    kpis = dict(ModelsSection().kpis(ctx, Models(comparison=comp)))
    assert kpis == {"best model by 5-fold CV by subject": "linear"}
    assert any(
        "PSIS-LOO is unreliable for sigmoid" in n and "5-fold CV by subject" in n
        for n in ctx.notes["models"]
    )
    assert any(
        "optimistic; the comparison uses 5-fold CV by subject instead" in n
        for n in ctx.notes["models"]
    )
    html_text = "".join(ModelsSection().render(ctx, Models(comparison=comp), _NoFigs()))
    assert "ranked by 5-fold CV by subject" in html_text


class _NoFigs:
    def html(self, name):
        return ""


def test_unreliable_psis_by_visit_uses_psis_by_patient_when_that_is_reliable(tmp_path):
    bad = {"sigmoid": MAX_PARETO_K_BAD + 1, "linear": 0}
    ok = {"sigmoid": 0, "linear": MAX_PARETO_K_BAD}
    ctx, models, comp, _ = _run(
        tmp_path, bad, {"sigmoid": True, "linear": True}, bad_subject=ok
    )
    assert all(not m.kfold_calls for m in models.values())  # no refits
    assert (comp["criterion"] == "PSIS-LOO by patient").all()
    for name, m in models.items():
        assert comp.loc[name, "elpd_subject"] == pytest.approx(
            m._by_subject["elpd_loo"]
        )
    assert comp["rank"].to_dict() == {"sigmoid": 0.0, "linear": 1.0}
    kpis = dict(ModelsSection().kpis(ctx, Models(comparison=comp)))
    assert kpis == {"best model by PSIS-LOO by patient": "sigmoid"}
    assert any("compared by PSIS-LOO by patient" in n for n in ctx.notes["models"])
