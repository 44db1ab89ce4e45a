"""The model contract (issue 19): every registered model, and a toy one defined here.

Each model in :data:`alsprog.models.registry.MODELS` goes through fit -> summary ->
forecast -> save -> load -> the same forecast -> clone, as scikit-learn's
``check_estimator`` runs every estimator through its protocol.  The toy model below
is registered from this file only and passes the same test: adding a model is one
class plus one ``register`` call.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from alsprog.data import assemble
from alsprog.data._history import ModelColumns
from alsprog.errors import ModelSpecificationError, NotFittedError
from alsprog.forecast import (
    CalibratedForecaster,
    DeltaFSBaseline,
    RandomForestSlope,
    backtest,
    forecast,
)
from alsprog.models import BayesianTrajectoryModel, LinearMixedModel, Summary
from alsprog.models._contract import (
    DEFAULT_LEVEL,
    ForecastRows,
    TrajectoryModel,
    outcome_bounds,
)
from alsprog.models.registry import (
    MODELS,
    REQUIRED,
    config_keys,
    register,
    unregister,
)
from alsprog.simulate import simulate_cohort

FORMULA = "alsfrs_r_total ~ months + (months | subject_id)"


# ------------------------------------------------------------------ a toy model
class ToyLastValue(TrajectoryModel):
    """Forecasts each new patient's last observed value, with the training
    patients' spread of later changes as a normal band (a model in ten minutes)."""

    file_suffix = ".json"

    def __init__(self, *, outcome: str = "alsfrs_r_total", shrink: float = 1.0):
        self.outcome = outcome
        self.shrink = shrink

    def required_columns(self) -> ModelColumns:
        return ModelColumns.of(self.outcome, "subject_id", "months", ["months"])

    def fit(self, table: pd.DataFrame) -> ToyLastValue:
        rows = table[table[self.outcome].notna()]
        change = rows.groupby("subject_id")[self.outcome].agg(
            lambda y: y.iloc[-1] - y.iloc[0]
        )
        self.sd_ = float(np.std(change.to_numpy(), ddof=1)) * float(self.shrink)
        self.mean_ = float(rows[self.outcome].mean())
        self.n_obs_ = len(rows)
        self.n_subjects_ = int(rows["subject_id"].nunique())
        self.outcome_bounds_ = outcome_bounds(self.outcome)
        return self

    @property
    def columns_(self) -> ModelColumns:
        if not hasattr(self, "sd_"):
            raise NotFittedError("ToyLastValue is not fitted; call fit first.")
        return self.required_columns()

    def summary(self, level: float = DEFAULT_LEVEL) -> Summary:
        table = pd.DataFrame({"estimate": [self.mean_, self.sd_]}, index=["mean", "sd"])
        return Summary("Toy last-value model", {"level": level}, {"fixed": table})

    def subject_trajectories(self, times=None, **kwargs) -> pd.DataFrame:
        t = np.asarray([0.0] if times is None else times, dtype=float)
        return pd.DataFrame({"months": t, "mean": self.mean_})

    def forecast_rows(self, history, *, level, n_samples=None, rng, given_alive=True):
        from scipy.stats import norm

        obs = history.observed.groupby("subject_id", sort=False)[self.outcome].last()
        last = obs.reindex(history.subjects).fillna(self.mean_).to_numpy()
        loc = last[history.future["_subject_index"].to_numpy()]
        z = float(norm.ppf(0.5 + level / 2))
        lo, hi = self.outcome_bounds_
        stats = {
            "mean": np.clip(loc, lo, hi),
            "median": np.clip(loc, lo, hi),
            "lower": np.clip(loc - z * self.sd_, lo, hi),
            "upper": np.clip(loc + z * self.sd_, lo, hi),
        }
        draws = None
        if n_samples is not None:
            draws = np.clip(
                loc + self.sd_ * rng.standard_normal((n_samples, len(loc))), lo, hi
            )
        return ForecastRows(stats, draws)

    def save(self, path) -> None:
        state = {
            "params": self.get_params(),
            "sd_": self.sd_,
            "mean_": self.mean_,
            "n_obs_": self.n_obs_,
            "n_subjects_": self.n_subjects_,
        }
        Path(path).write_text(json.dumps(state))

    @classmethod
    def load(cls, path) -> ToyLastValue:
        state = json.loads(Path(path).read_text())
        m = cls(**state.pop("params"))
        for k, v in state.items():
            setattr(m, k, v)
        m.outcome_bounds_ = outcome_bounds(m.outcome)
        return m


#: The types under test: the registry's and the toy, which the fixture below
#: registers for this module only (other modules' configs list the built-in types).
TYPES = [*MODELS, "toy_last_value"]


@pytest.fixture(scope="module", autouse=True)
def _toy_registered():
    register("toy_last_value", ToyLastValue)
    yield
    unregister("toy_last_value")


#: Small settings per model type, so the contract test is quick; a model type
#: registered later gets its defaults (and the formula above where it needs one).
SMALL = {
    "mixed": {"formula": FORMULA},
    "joint": {"formula": FORMULA, "event_formula": "delta_fs"},
    "bayesian": {"chains": 1, "draws": 60, "tune": 60, "seed": 1, "progress": False},
    "mmrm": {"formula": "alsfrs_r_total ~ visit * arm", "reference": "placebo"},
    "latent_class": {"formula": FORMULA, "n_classes": 2, "n_init": 2, "seed": 1},
    "nonlinear": {"formula": "alsfrs_r_total ~ 1"},
}
SLOW = {"bayesian"}  # a first numpyro fit compiles for ~20 s


def _params(name: str) -> dict:
    kw = dict(SMALL.get(name, {}))
    for key in config_keys(MODELS[name]):
        if key.default is REQUIRED and key.name not in kw:
            kw[key.name] = FORMULA if key.name == "formula" else pytest.fail(key.name)
    return kw


@pytest.fixture(scope="module")
def data():
    c = simulate_cohort(60, seed=4)
    t = assemble(c.visits, c.subjects)
    new = sorted(pd.unique(t["subject_id"]))[:8]
    train = t[~t["subject_id"].isin(new)]
    hist = t[t["subject_id"].isin(new) & (t["months"] <= 3.5)]
    return train, hist


def _scheduled(train, hist):
    """The cohort on scheduled visits (months to the nearest 3, one row per subject
    and visit, visits seen in 20 subjects or more) with an alternating ``arm``."""

    def on_visits(t):
        t = t.assign(visit=(np.round(t["months"] / 3) * 3).astype(int))
        t = t.drop_duplicates(["subject_id", "visit"])
        ids = sorted(pd.unique(t["subject_id"]))
        arm = {s: ("placebo", "active")[i % 2] for i, s in enumerate(ids)}
        return t.assign(arm=t["subject_id"].map(arm))

    train, hist = on_visits(train), on_visits(hist)
    common = train["visit"].value_counts()
    keep = set(common.index[common >= 20])
    return train[train["visit"].isin(keep)], hist[hist["visit"].isin(keep)]


#: Each type's data, from the cohort (a model on scheduled visits needs them).
DATA = {"mmrm": _scheduled}


def _same_state(a, b) -> None:
    """Forecast tables equal to the last bit."""
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a.attrs == b.attrs


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in TYPES],
)
def test_every_registered_model_meets_the_contract(name, data, tmp_path):
    train, hist = DATA.get(name, lambda *d: d)(*data)
    cls = MODELS[name]
    assert issubclass(cls, TrajectoryModel)
    model = cls(**_params(name))
    declared = model.required_columns()
    assert (declared.subject, declared.outcome) == ("subject_id", "alsfrs_r_total")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert model.fit(train) is model
    cols = model.columns_
    assert (cols.subject, cols.time, cols.outcome) == (
        declared.subject,
        declared.time,
        declared.outcome,
    )
    assert model.outcome_bounds_ == (0.0, 48.0)
    assert model.n_subjects_ == train["subject_id"].nunique() == model.n_groups_
    assert model.n_obs_ > model.n_subjects_
    s = model.summary()
    assert isinstance(s, Summary) and s.tables
    assert isinstance(model.summary(level=0.8), Summary)
    f = forecast(model, hist, [6.0, 12.0], seed=3, n_samples=20)
    assert len(f) == 2 * hist["subject_id"].nunique()
    assert f[["mean", "median", "lower", "upper"]].stack().between(0, 48).all()
    assert (f["lower"] <= f["upper"]).all()
    assert sum(c.startswith("draw_") for c in f.columns) == 20
    path = tmp_path / f"model{cls.file_suffix}"
    model.save(path)
    back = cls.load(path)
    assert type(back) is cls and back.get_params() == model.get_params()
    _same_state(forecast(back, hist, [6.0, 12.0], seed=3, n_samples=20), f)
    twin = clone(model)
    assert type(twin) is cls and twin.get_params() == model.get_params()
    assert not hasattr(twin, "n_obs_")
    with pytest.raises(NotFittedError):
        forecast(twin, hist, [6.0])


def test_one_default_summary_level_for_every_model():
    import inspect

    for name, cls in MODELS.items():
        default = inspect.signature(cls.summary).parameters["level"].default
        assert default == DEFAULT_LEVEL == 0.95, name


def test_aic_and_bic_are_properties(data):
    train, _ = data
    m = LinearMixedModel(FORMULA, reml=False).fit(train)
    # lme4: AIC = -2 logLik + 2 k, k = 2 fixed effects + 3 covariance parameters + 1
    assert m.aic == pytest.approx(-2 * m.llf_ + 2 * 6)
    assert m.bic == pytest.approx(-2 * m.llf_ + math.log(m.n_obs_) * 6)
    assert m.n_groups_ == m.n_subjects_
    with pytest.raises(AttributeError):
        m.n_groups_ = 3


# ------------------------------------------------------------------ bounds
def test_outcome_bounds_come_from_the_data_dictionary():
    assert outcome_bounds("alsfrs_r_total") == (0.0, 48.0)
    assert outcome_bounds("frs") == (-math.inf, math.inf)
    assert outcome_bounds("alsfrs_r_q1") == (0.0, 4.0)


def test_an_unbounded_outcome_is_not_clipped(data):
    """A renamed ``frs`` is not the ALSFRS-R total: its forecasts are not cut at 48."""
    train, hist = data
    up = {"alsfrs_r_total": "frs"}
    shift = 30.0  # the same data moved up: forecasts near 48 + 30
    tr = train.rename(columns=up).assign(frs=lambda d: d["frs"] + shift)
    hs = hist.rename(columns=up).assign(frs=lambda d: d["frs"] + shift)
    m0 = LinearMixedModel(FORMULA).fit(train)
    m = LinearMixedModel(FORMULA.replace("alsfrs_r_total", "frs")).fit(tr)
    assert m.outcome_bounds_ == (-math.inf, math.inf)
    f0, f = forecast(m0, hist, [6.0]), forecast(m, hs, [6.0])
    np.testing.assert_allclose(f["loc"], f0["loc"] + shift, rtol=1e-9)
    np.testing.assert_allclose(f["upper"], f["loc"] + 1.6448536269514722 * f["scale"])
    assert f["upper"].max() > 48


# ------------------------------------------------------------------ registry
def test_registry_is_read_only_and_checks_what_is_registered():
    with pytest.raises(TypeError):
        MODELS["other"] = LinearMixedModel  # type: ignore[index]
    with pytest.raises(ModelSpecificationError, match="already registered"):
        register("mixed", ToyLastValue)
    with pytest.raises(TypeError, match="not a subclass of TrajectoryModel"):
        register("forest", RandomForestSlope)
    with pytest.raises(ModelSpecificationError, match="lower-case"):
        register("Bad Name", ToyLastValue)
    with pytest.raises(ModelSpecificationError, match="built in"):
        unregister("mixed")
    assert MODELS["toy_last_value"] is ToyLastValue
    assert {"mixed", "bayesian", "joint"} <= set(MODELS)
    assert MODELS["mmrm"].__name__ == "MMRM"


def test_registry_loads_models_lazily():
    code = (
        "import sys; from alsprog.models.registry import MODELS; "
        "assert 'mixed' in MODELS; "
        "assert not any(m.startswith(('alsprog.models.bayes', 'pymc', 'jax', "
        "'sklearn')) for m in sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_keys_are_the_constructor_signature():
    keys = {k.name: k for k in config_keys(MODELS["bayesian"])}
    assert keys["draws"].default == 1000 and keys["draws"].type is int
    assert keys["kind"].default == "linear"
    toy = config_keys(ToyLastValue)
    assert [(k.name, k.default) for k in toy] == [
        ("outcome", "alsfrs_r_total"),
        ("shrink", 1.0),
    ]
    assert config_keys(MODELS["mixed"])[0].default is REQUIRED


# ------------------------------------------------------------------ seeds
def test_with_seed_reseeds_only_models_with_randomness():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    lmm = LinearMixedModel(FORMULA).with_seed(rng)
    assert rng.bit_generator.state == state  # drew nothing
    assert lmm.get_params() == LinearMixedModel(FORMULA).get_params()
    b = BayesianTrajectoryModel(draws=10).with_seed(rng)
    assert isinstance(b.seed, int) and rng.bit_generator.state != state
    assert BayesianTrajectoryModel().with_seed(7).seed == 7
    cal = CalibratedForecaster(BayesianTrajectoryModel(draws=10)).with_seed(5)
    assert cal.model.seed == 5 and cal.model.draws == 10
    assert RandomForestSlope().with_seed(9).random_state == 9
    state = rng.bit_generator.state
    DeltaFSBaseline().with_seed(rng)
    assert rng.bit_generator.state == state


@pytest.mark.slow
def test_a_recalibrated_bayesian_backtest_is_reproducible():
    c = simulate_cohort(80, seed=8)
    table = assemble(c.visits, c.subjects)
    small = {"chains": 1, "draws": 40, "tune": 40, "progress": False}
    models = {
        "bayes_cal": CalibratedForecaster(
            BayesianTrajectoryModel(**small), min_per_bin=10
        )
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = backtest(table, models, seed=5, n_samples=30)
        b = backtest(table, models, seed=5, n_samples=30)
    num = [c for c in a.columns if c not in ("model", "seconds")]
    pd.testing.assert_frame_equal(a[num], b[num], check_exact=True)
