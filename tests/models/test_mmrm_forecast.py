"""MMRM as a trajectory model (issue 19): forecasts of new patients, fitted subjects'
trajectories, predictions, save/load and the registry.

The forecasts are checked against a dense computation written here independently
(the design from the coefficient names, the conditional covariance through the
precision matrix of the patient's visits) and against the truth of simulated data.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from npz_forge import rewrite_npz
from pandas.testing import assert_frame_equal, assert_series_equal

from alsprog.errors import ModelSpecificationError, SavedModelError
from alsprog.forecast import forecast
from alsprog.models.mmrm._model import MMRM

VISITS = [3, 6, 9, 12]
SD = np.array([2.0, 2.5, 3.0, 3.5])
SIGMA = SD[:, None] * SD[None, :] * 0.8 ** abs(np.subtract.outer(range(4), range(4)))
FORMULA = "score ~ visit * arm"


def _trial(n: int, seed: int, prefix: str = "S") -> pd.DataFrame:
    """``n`` patients seen at every visit: arms alternate, the active arm declines
    more slowly, errors N(0, SIGMA) over visits (``score`` is unbounded)."""
    rng = np.random.default_rng(seed)
    v = np.array(VISITS, dtype=float)
    active = np.arange(n) % 2 == 1
    mean = 30.0 - 0.8 * v[None, :] + 0.3 * v[None, :] * active[:, None]
    y = mean + rng.multivariate_normal(np.zeros(4), SIGMA, size=n)
    return pd.DataFrame(
        {
            "subject_id": np.repeat([f"{prefix}{i:04d}" for i in range(n)], 4),
            "visit": np.tile(VISITS, n),
            "arm": np.repeat(np.where(active, "active", "placebo"), 4),
            "score": y.ravel(),
        }
    )


@pytest.fixture(scope="module")
def fitted() -> MMRM:
    df = _trial(120, seed=1)
    df = df.drop(index=df.index[np.random.default_rng(2).random(len(df)) < 0.15])
    return MMRM(FORMULA, reference="placebo").fit(df)


def _history() -> pd.DataFrame:
    """Four new patients: visits 3 and 6; 6 only; 3 only (active); none (one row of
    covariates)."""
    rows = [
        ("N1", 3, "placebo", 27.0),
        ("N1", 6, "placebo", 24.5),
        ("N2", 6, "placebo", 21.0),
        ("N3", 3, "active", 31.0),
        ("N4", 3, "active", np.nan),
    ]
    return pd.DataFrame(rows, columns=["subject_id", "visit", "arm", "score"])


# ------------------------------------------------------- an independent answer
def _x(names: list[str], visit: object, arm: str) -> np.ndarray:
    """A design row from the coefficient names (treatment coding)."""
    row = []
    for name in names:
        value = 1.0
        if name != "Intercept":
            for part in name.split(":"):
                col, level = re.fullmatch(r"(\w+)\[T\.(.+)\]", part).groups()
                value *= float(str({"visit": visit, "arm": arm}[col]) == level)
        row.append(value)
    return np.array(row)


def _dense(m: MMRM, seen: list[tuple], arm: str, ahead: list) -> tuple:
    """Mean and covariance of the outcomes at ``ahead`` given ``seen`` (visit,
    outcome) pairs: the patient's visits' precision matrix gives the conditional
    covariance and the regression on the observed residuals; beta's covariance
    enters through ``A = X_f - K X_o``."""
    names = list(m.fe_params_.index)
    b, C = m.fe_params_.to_numpy(), m._Cinv
    S = m.cov_.to_numpy()
    pos = {v: i for i, v in enumerate(m.visits_)}
    o = [pos[v] for v, _ in seen]
    f = [pos[v] for v in ahead]
    Xf = np.array([_x(names, v, arm) for v in ahead])
    if not o:
        return Xf @ b, S[np.ix_(f, f)] + Xf @ C @ Xf.T
    Xo = np.array([_x(names, v, arm) for v, _ in seen])
    yo = np.array([y for _, y in seen])
    u = o + f
    P = np.linalg.inv(S[np.ix_(u, u)])
    k = len(o)
    cond = np.linalg.inv(P[k:, k:])
    K = -cond @ P[k:, :k]
    A = Xf - K @ Xo
    return Xf @ b + K @ (yo - Xo @ b), cond + A @ C @ A.T


def test_forecast_is_the_conditional_normal_with_beta_uncertainty(fitted):
    m = fitted
    f = forecast(m, _history(), [9, 12], level=0.9)
    assert list(f["subject_id"]) == ["N1", "N1", "N2", "N2", "N3", "N3", "N4", "N4"]
    cases = {
        "N1": ([(3, 27.0), (6, 24.5)], "placebo"),
        "N2": ([(6, 21.0)], "placebo"),
        "N3": ([(3, 31.0)], "active"),
        "N4": ([], "active"),
    }
    for sid, (seen, arm) in cases.items():
        mean, cov = _dense(m, seen, arm, [9, 12])
        got = f[f["subject_id"] == sid]
        np.testing.assert_allclose(got["loc"], mean, rtol=1e-10)
        np.testing.assert_allclose(got["scale"] ** 2, np.diag(cov), rtol=1e-9)
        np.testing.assert_allclose(got["mean"], mean, rtol=1e-10)  # unbounded
        np.testing.assert_allclose(
            got["upper"] - got["loc"], 1.6448536269514722 * got["scale"], rtol=1e-9
        )
    # the beta term is there: without it the variance is smaller
    mean, cov = _dense(m, [(3, 27.0), (6, 24.5)], "placebo", [9, 12])
    S = m.cov_.to_numpy()
    cond = S[2:, 2:] - S[2:, :2] @ np.linalg.solve(S[:2, :2], S[:2, 2:])
    assert np.all(np.diag(cov) - np.diag(cond) > 1e-3)


def test_a_patient_without_visits_gets_the_marginal(fitted):
    m = fitted
    hist = _history().query("subject_id == 'N4'")
    f = forecast(m, hist, [6, 12])
    names = list(m.fe_params_.index)
    X = np.array([_x(names, v, "active") for v in (6, 12)])
    S = m.cov_.to_numpy()[np.ix_([1, 3], [1, 3])]
    np.testing.assert_allclose(f["loc"], X @ m.fe_params_.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        f["scale"] ** 2, np.diag(S + X @ m._Cinv @ X.T), rtol=1e-10
    )


def test_draws_are_joint_over_a_patients_visits(fitted):
    m = fitted
    hist = _history().query("subject_id == 'N3'")
    f = forecast(m, hist, [6, 9, 12], n_samples=10_000, seed=5)
    draws = f[[c for c in f.columns if c.startswith("draw_")]].to_numpy()
    _, cov = _dense(m, [(3, 31.0)], "active", [6, 9, 12])
    np.testing.assert_allclose(draws.mean(axis=1), f["loc"], atol=0.1)
    np.testing.assert_allclose(np.cov(draws), cov, rtol=0.05, atol=0.05)
    again = forecast(m, hist, [6, 9, 12], n_samples=10_000, seed=5)
    assert_frame_equal(f, again, check_exact=True)


def test_a_bounded_outcome_is_censored_like_the_mixed_models():
    df = _trial(80, seed=3).assign(
        alsfrs_r_total=lambda d: np.clip(np.round(d["score"] + 18), 0, 48)
    )
    m = MMRM("alsfrs_r_total ~ visit * arm", reference="placebo").fit(df)
    assert m.outcome_bounds_ == (0.0, 48.0)
    hist = pd.DataFrame(
        {"subject_id": ["A"], "visit": [3], "arm": ["active"], "alsfrs_r_total": [47]}
    )
    f = forecast(m, hist, [6, 12], level=0.95, n_samples=500, seed=1)
    assert f["upper"].max() == 48.0 and f["loc"].max() + 1.96 * f["scale"].max() > 48
    draws = f[[c for c in f.columns if c.startswith("draw_")]].to_numpy()
    assert draws.max() == 48.0 and draws.min() >= 0.0


def test_unknown_visits_are_refused_naming_the_fitted_ones(fitted):
    with pytest.raises(ModelSpecificationError, match=r"7\.5 .*3, 6, 9, 12"):
        forecast(fitted, _history(), [7.5])
    hist = _history().assign(visit=[3, 4, 6, 3, 3])
    with pytest.raises(ModelSpecificationError, match=r"History visit 4 "):
        forecast(fitted, hist, [12])
    with pytest.raises(ModelSpecificationError, match=r"not on 'months'"):
        fitted.check_forecast_time("months")
    with pytest.raises(ModelSpecificationError, match=r"Visit 5 "):
        fitted.subject_trajectories([5])
    with pytest.raises(ModelSpecificationError, match=r"Arm 'other' .* not in the fit"):
        forecast(fitted, _history().assign(arm="other"), [12])


def test_forecast_coverage_of_held_out_final_visits():
    """Simulated with known truth: 90 % and 95 % intervals of the final visit given
    the earlier ones cover about 90 % and 95 % of 400 new patients."""
    m = MMRM(FORMULA, reference="placebo").fit(_trial(300, seed=11))
    new = _trial(400, seed=12, prefix="N")
    hist = new[new["visit"] < 12]
    truth = new[new["visit"] == 12]["score"].to_numpy()
    for level, tol in ((0.9, 0.04), (0.95, 0.03)):
        f = forecast(m, hist, [12], level=level)
        inside = (f["lower"] <= truth) & (truth <= f["upper"])
        assert abs(inside.mean() - level) < tol, (level, inside.mean())


# ----------------------------------------------------- fitted subjects' curves
def test_subject_trajectories_condition_on_the_subjects_visits(fitted):
    m = fitted
    sid = m._rows["levels"][0]
    own = m._frame[m._frame["subject_id"] == sid]
    tr = m.subject_trajectories(subjects=[sid], interval="prediction")
    assert list(tr.columns) == ["subject_id", "visit", "mean", "se", "lower", "upper"]
    assert list(tr["visit"]) == VISITS
    seen = tr.set_index("visit").loc[own["visit"]]
    np.testing.assert_allclose(seen["mean"], own["score"], rtol=1e-10)
    assert (seen["se"] < 1e-6).all()
    conf = m.subject_trajectories([9, 12], subjects=[sid])
    pred = tr[tr["visit"].isin([9, 12])].reset_index(drop=True)
    np.testing.assert_allclose(conf["mean"], pred["mean"], rtol=1e-12)
    assert (conf["se"] <= pred["se"] + 1e-12).all()
    with pytest.raises(ModelSpecificationError, match="not in the fitted data"):
        m.subject_trajectories(subjects=["nobody"])


def test_predict_is_the_conditional_mean_of_seen_subjects(fitted):
    m = fitted
    rows = m._frame.head(6)
    p = m.predict(rows)
    np.testing.assert_allclose(p, rows["score"], rtol=1e-10)  # seen at those visits
    new = rows.assign(subject_id="new")
    names = list(m.fe_params_.index)
    X = np.array(
        [_x(names, v, a) for v, a in zip(new["visit"], new["arm"], strict=True)]
    )
    np.testing.assert_allclose(m.predict(new), X @ m.fe_params_.to_numpy())
    gap = rows.assign(arm=[None, *rows["arm"][1:]])
    assert np.isnan(m.predict(gap).iloc[0]) and m.predict(gap).notna().sum() == 5


# ------------------------------------------------------------------ save/load
def test_loaded_model_gives_identical_numbers(fitted, tmp_path):
    m = fitted
    path = tmp_path / "mmrm.npz"
    m.save(path)
    back = MMRM.load(path)
    assert back.get_params() == m.get_params()
    assert str(back.summary()) == str(m.summary())
    for key, table in m.summary(0.8).tables.items():
        assert_frame_equal(back.summary(0.8).tables[key], table, check_exact=True)
    assert_frame_equal(back.lsmeans(0.9), m.lsmeans(0.9), check_exact=True)
    for visit in (6, 12):
        assert_frame_equal(back.contrast(visit), m.contrast(visit), check_exact=True)
    a = forecast(m, _history(), [9, 12], n_samples=30, seed=4)
    assert_frame_equal(forecast(back, _history(), [9, 12], n_samples=30, seed=4), a)
    for kw in ({}, {"interval": "prediction", "level": 0.5}):
        assert_frame_equal(
            back.subject_trajectories(**kw), m.subject_trajectories(**kw)
        )
    assert_series_equal(back.predict(m._frame), m.predict(m._frame), check_exact=True)
    assert (back.llf_, back.n_obs_, back.n_subjects_, back.converged_) == (
        m.llf_,
        m.n_obs_,
        m.n_subjects_,
        m.converged_,
    )
    with np.load(path, allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


_rewrite = rewrite_npz


def _non_pd(cov: np.ndarray) -> np.ndarray:
    w, U = np.linalg.eigh(cov)
    w[0] = -1.0
    return (U * w) @ U.T


def _set(path: str, value: object):
    def edit(h: dict) -> None:
        *outer, last = path.split(".")
        d = h
        for k in outer:
            d = d[k]
        d[last] = value

    return edit


FORGED = {
    "model": ({"header": _set("model", "LinearMixedModel")}, r"field 'model' is"),
    "format": ({"header": _set("format", 99)}, r"field 'format' is 99"),
    "missing": ({"drop": ["cov"]}, r"field 'cov' is missing"),
    "shape": ({"replace": {"cov": np.eye(5)}}, r"field 'cov' has shape \(5, 5\)"),
    "nan": (
        {"replace": {"cov": np.full((1, 4, 4), np.nan)}},
        r"field 'cov' holds nan",
    ),
    "non_pd": (
        {"replace": {"cov": _non_pd(SIGMA)[None]}},
        r"field 'cov' is not positive definite",
    ),
    "formula": (
        {"header": _set("params.formula", "score ~ visit * arm + __import__('os')")},
        r"field 'params.formula' is refused",
    ),
    "covariance": (
        {"header": _set("params.covariance", "banded")},
        r"field 'params.covariance' is refused: `covariance` must be one of .*got 'banded'",
    ),
    "theta": (
        {"replace": {"theta": np.zeros(10)}},
        r"field 'cov' differs from what",
    ),
    "beta": (
        {"replace": {"fe_params": np.zeros(8)}},
        r"field 'fe_params' differs from what",
    ),
    "extra": ({"replace": {"code": np.zeros(2)}}, r"field 'code' is not part of"),
    "n_obs": ({"header": _set("scalars.n_obs", 7)}, r"field 'scalars.n_obs' is 7"),
    "rows": (
        {"header": _set("scalars.n_subjects", 119)},
        r"field 'scalars.n_subjects' is 119 but the saved rows give 120",
    ),
}


@pytest.mark.parametrize("case", list(FORGED))
def test_forged_files_are_refused_naming_the_field(fitted, tmp_path, case):
    good = tmp_path / "good.npz"
    fitted.save(good)
    kwargs, match = FORGED[case]
    path = _rewrite(good, tmp_path / "edited.npz", **kwargs)
    before = path.read_bytes()
    with pytest.raises(SavedModelError, match=rf"edited\.npz: {match}"):
        MMRM.load(path)
    assert path.read_bytes() == before


def test_a_file_of_another_model_is_named(tmp_path):
    from alsprog.models import LinearMixedModel

    df = _trial(30, seed=5).assign(months=lambda d: d["visit"].astype(float))
    lmm = LinearMixedModel("score ~ months + (1 | subject_id)").fit(df)
    lmm.save(tmp_path / "lmm.npz")
    with pytest.raises(SavedModelError, match="this is a LinearMixedModel file"):
        MMRM.load(tmp_path / "lmm.npz")


# ------------------------------------------------------------------ registry
def test_registered_with_its_config_keys():
    from alsprog.models.registry import MODELS
    from alsprog.report._model_schema import model_keys

    assert MODELS["mmrm"] is MMRM
    keys = {k.name: k for k in model_keys()}
    assert keys["covariance"].choices[:9] == (
        "unstructured",
        "toeplitz",
        "heterogeneous_toeplitz",
        "ar1",
        "heterogeneous_ar1",
        "compound_symmetry",
        "heterogeneous_compound_symmetry",
        "ante_dependence",
        "heterogeneous_ante_dependence",
    )
    assert set(keys["covariance"].choices[9:]) == {
        "us", "toep", "toeph", "ar1h", "cs", "csh", "ad", "adh"
    }  # fmt: skip
    assert keys["method"].choices == ("REML", "ML")
    assert {"visit", "arm", "subject"} <= set(keys)
    assert keys["reference"].kind == "str"  # an arm level in a config (a name)
    assert keys["reference"].applies == ("mmrm",)
    assert MMRM.column_params == ("subject", "visit", "arm", "group", "weights")
    assert MMRM.data_defaults({}, outcome="chg", time="months") == {
        "formula": "chg ~ visit * arm"
    }
    assert MMRM.data_defaults({"formula": "y ~ v * a"}, outcome="c", time="t") == {}


def test_visits_written_as_text_are_numbers_in_their_numeric_order():
    """A CSV's extra ``visit`` column loads as text ("12.0" sorts before "3.0"):
    the fit reads numbers, so visit 12 is the last (the final contrast's) visit,
    and text visits in a history name the same visits."""
    df = _trial(60, seed=5)
    text = df.assign(visit=df["visit"].astype(float).astype(str).astype("str"))
    a = MMRM(FORMULA, reference="placebo").fit(df)
    b = MMRM(FORMULA, reference="placebo").fit(text)
    assert b.visits_ == [3.0, 6.0, 9.0, 12.0]
    assert b.contrast()["visit"].item() == 12.0
    np.testing.assert_allclose(b.fe_params_.to_numpy(), a.fe_params_.to_numpy())
    hist = _trial(2, seed=6, prefix="T").query("visit <= 6")
    f_num = forecast(a, hist, [9.0, 12.0])
    f_txt = forecast(b, hist.assign(visit=hist["visit"].astype(str)), [9.0, 12.0])
    np.testing.assert_allclose(f_txt["mean"], f_num["mean"], rtol=1e-9)
    assert b.scheduled_times() == (3.0, 6.0, 9.0, 12.0)


def test_the_command_line_builds_it_with_its_own_default_formula():
    from alsprog.cli._models import _LMM_FORMULA, _default_formula
    from alsprog.models import LinearMixedModel

    assert _default_formula(MMRM) == "alsfrs_r_total ~ visit * arm"
    assert _default_formula(LinearMixedModel) == _LMM_FORMULA


def test_reml_aic_and_bic_count_the_covariance_parameters(fitted):
    k = 10  # unstructured over 4 visits
    assert len(fitted.theta_) == k
    assert fitted.aic == pytest.approx(-2 * fitted.llf_ + 2 * k, rel=1e-12)
    assert fitted.bic == pytest.approx(
        -2 * fitted.llf_ + k * np.log(fitted.n_subjects_), rel=1e-12
    )


def test_forecast_with_group_covariance_and_weights():
    """A new patient's forecast uses their arm's covariance, scaled by the weights
    of their rows (W^-1/2 Sigma W^-1/2)."""
    df = _trial(120, seed=3).assign(w=lambda d: 0.5 + (d.index % 3) / 2)
    m = MMRM(FORMULA, reference="placebo", group="arm", weights="w").fit(df)
    # the group column is the arm: its levels in the arm's order, reference first
    assert m.converged_ and list(m.covs_) == ["placebo", "active"]
    hist = pd.DataFrame(
        [("N1", 3, "active", 31.0, 2.0), ("N1", 6, "active", 29.0, 0.5)],
        columns=["subject_id", "visit", "arm", "score", "w"],
    )
    # the rows to forecast carry the last history row's covariates (w = 0.5)
    f = forecast(m, hist, [9, 12], level=0.9)
    names = list(m.fe_params_.index)
    b, C = m.fe_params_.to_numpy(), m._Cinv
    s = np.sqrt(np.array([2.0, 0.5, 0.5, 0.5]))
    S = m.covs_["active"].to_numpy() / np.outer(s, s)
    Xo = np.array([_x(names, v, "active") for v in (3, 6)])
    Xf = np.array([_x(names, v, "active") for v in (9, 12)])
    K = S[2:, :2] @ np.linalg.inv(S[:2, :2])
    mean = Xf @ b + K @ (np.array([31.0, 29.0]) - Xo @ b)
    A = Xf - K @ Xo
    cov = S[2:, 2:] - K @ S[:2, 2:] + A @ C @ A.T
    np.testing.assert_allclose(f["loc"], mean, rtol=1e-10)
    np.testing.assert_allclose(f["scale"] ** 2, np.diag(cov), rtol=1e-9)
    with pytest.raises(ModelSpecificationError, match="'other' .* was not in the fit"):
        forecast(m, hist.assign(arm="other"), [12])
