"""MMRM against nlme::gls (R, run offline) and closed forms."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from lmm_testdata import REFERENCE
from numpy.testing import assert_allclose

from alsprog.errors import DataWarning, ModelSpecificationError, NotFittedError
from alsprog.models import MMRM, Summary
from alsprog.models.mmrm._numerics import (
    build_patterns,
    cov_jacobian,
    covariance_from_params,
    mmrm_reml_criterion,
)

# tests/reference/mmrm_reference.R (R 4.2.2, nlme 3.1-162): gls(chg ~ visit * arm +
# baseline_total, method = "REML") on tests/reference/mmrm_trial.csv with
# corSymm + varIdent (unstructured), corCompSymm, corAR1; values in mmrm_reference.json,
# printed output in mmrm_reference.Rout.
RTOL = 1e-4  # issue 5: "MMRM matches nlme::gls on a simulated trial to 1e-4"
FORMULA = "chg ~ visit * arm + baseline_total"


@pytest.fixture(scope="module")
def trial() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "mmrm_trial.csv")


@pytest.fixture(scope="module")
def gls_values() -> dict:
    return json.loads((REFERENCE / "mmrm_reference.json").read_text())


@pytest.fixture(scope="module")
def fits(trial) -> dict[str, MMRM]:
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        for cov in ("unstructured", "compound_symmetry", "ar1"):
            out[cov] = MMRM(FORMULA, reference="placebo", covariance=cov).fit(trial)
    return out


def _r_name(name: str) -> str:
    name = name.replace("(Intercept)", "Intercept")
    name = re.sub(r"visit(\d+)", r"visit[T.\1]", name)
    return name.replace("armactive", "arm[T.active]")


@pytest.mark.parametrize("cov", ["unstructured", "compound_symmetry", "ar1"])
def test_matches_nlme_gls(fits, gls_values, cov):
    ref = gls_values[cov]
    m = fits[cov]
    assert m.converged_
    names = [_r_name(k) for k in ref["coef"]]
    assert sorted(names) == sorted(m.fe_params_.index)
    assert_allclose(
        m.fe_params_[names], list(ref["coef"].values()), rtol=RTOL, atol=1e-6
    )
    assert_allclose(m.bse_[names], ref["se"], rtol=RTOL)
    assert_allclose(m.cov_.to_numpy(), np.asarray(ref["cov"]), rtol=RTOL)
    # nlme's REML log-likelihood has the same constants as ours
    assert m.llf_ == pytest.approx(ref["logLik"], rel=1e-7)
    assert m.n_obs_ == ref["nobs"]
    # LS means (baseline_total at its mean) and the final-visit contrast
    ls = m.lsmeans_.set_index(["visit", "arm"])
    r = pd.DataFrame(ref["lsmeans"])
    for visit, arm, est, se in zip(
        r["visit"], r["arm"], r["estimate"], r["se"], strict=True
    ):
        row = ls.loc[(int(visit), arm)]
        assert row["estimate"] == pytest.approx(est, rel=RTOL)
        assert row["std_error"] == pytest.approx(se, rel=RTOL)
    c = m.contrast().iloc[0]
    assert (c["visit"], c["arm"], c["reference"]) == (12, "active", "placebo")
    assert c["estimate"] == pytest.approx(ref["contrast"]["estimate"], rel=RTOL)
    assert c["std_error"] == pytest.approx(ref["contrast"]["se"], rel=RTOL)


def test_lsmeans_match_emmeans(fits, gls_values):
    em = pd.DataFrame(gls_values["unstructured"]["emmeans"])
    ls = fits["unstructured"].lsmeans_.set_index(["visit", "arm"])
    for visit, arm, est, se in zip(
        em["visit"], em["arm"], em["emmean"], em["SE"], strict=True
    ):
        assert ls.loc[(int(visit), arm), "estimate"] == pytest.approx(est, rel=RTOL)
        assert ls.loc[(int(visit), arm), "std_error"] == pytest.approx(se, rel=RTOL)


def _balanced(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    visits = [1, 2, 3]
    arm = np.repeat(["placebo", "active"], n // 2)
    df = pd.DataFrame(
        {
            "subject_id": np.repeat(np.arange(n), 3),
            "visit": np.tile(visits, n),
            "arm": np.repeat(arm, 3),
        }
    )
    b = rng.normal(0, 2, n)
    df["chg"] = -df["visit"] + b[df["subject_id"]] + rng.normal(0, 1.5, len(df))
    return df


def test_satterthwaite_closed_form_balanced():
    """Complete balanced data, saturated visit x arm means, unstructured covariance:
    the final-visit contrast is a two-sample difference whose REML variance estimate is
    the pooled sample variance, so Satterthwaite df = n - 2 and the t test is exact."""
    from scipy import stats

    df = _balanced(40, seed=3)
    m = MMRM("chg ~ visit * arm", reference="placebo").fit(df)
    c = m.contrast().iloc[0]
    assert c["df"] == pytest.approx(38.0, rel=1e-5)
    last = df[df["visit"] == 3]
    t = stats.ttest_ind(
        last.loc[last["arm"] == "active", "chg"],
        last.loc[last["arm"] == "placebo", "chg"],
    )
    assert c["t"] == pytest.approx(t.statistic, rel=1e-6)
    assert c["p_value"] == pytest.approx(t.pvalue, rel=1e-5)
    ls = m.lsmeans_
    assert_allclose(ls["df"], 38.0, rtol=1e-5)


def test_satterthwaite_invariant_to_parameterisation(fits):
    """df recomputed with Sigma's own entries as parameters (Hessian and gradient by
    finite differences of the REML criterion) equals the Cholesky-parameterised one."""
    m = fits["unstructured"]
    Sigma = m.cov_.to_numpy()
    T = len(Sigma)
    iu = np.triu_indices(T)

    def sig(v):
        S = np.zeros((T, T))
        S[iu] = v
        return S + np.triu(S, 1).T

    v0 = Sigma[iu]
    pats = m._patterns

    def crit(v):
        return mmrm_reml_criterion(sig(v), pats)[0]

    def cvar(v):
        Cinv = mmrm_reml_criterion(sig(v), pats)[2]
        return c @ Cinv @ c

    L = m._grid["L"]
    c = (L.loc[(12, "active")] - L.loc[(12, "placebo")]).to_numpy()
    k = len(v0)
    h = 1e-4 * np.maximum(1.0, np.abs(v0))
    H = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h[i], np.eye(k)[j] * h[j]
            H[i, j] = (
                crit(v0 + ei + ej)
                - crit(v0 + ei - ej)
                - crit(v0 - ei + ej)
                + crit(v0 - ei - ej)
            ) / (4 * h[i] * h[j])
    g = np.array(
        [
            (cvar(v0 + np.eye(k)[i] * h[i]) - cvar(v0 - np.eye(k)[i] * h[i]))
            / (2 * h[i])
            for i in range(k)
        ]
    )
    v = cvar(v0)
    df_check = 2 * v**2 / (g @ (2 * np.linalg.inv(H)) @ g)
    assert m.contrast().iloc[0]["df"] == pytest.approx(df_check, rel=1e-3)


@pytest.mark.parametrize("structure", ["unstructured", "compound_symmetry", "ar1"])
def test_criterion_gradient_matches_finite_differences(trial, structure):
    df = trial.dropna()
    X = np.column_stack([np.ones(len(df)), df["visit"] / 12, df["arm"] == "active"])
    vis = pd.factorize(df["visit"], sort=True)[0]
    subj = pd.factorize(df["subject_id"])[0]
    pats = build_patterns(df["chg"].to_numpy(), X.astype(float), subj, vis)
    rng = np.random.default_rng(1)
    k = 10 if structure == "unstructured" else 2
    th = rng.normal(0, 0.3, k) + (1.0 if k == 2 else 0.0)
    S = covariance_from_params(th, structure, 4)
    _, _, _, G = mmrm_reml_criterion(S, pats, gradient=True)
    grad = np.einsum("kij,ij->k", cov_jacobian(th, structure, 4), G)
    num = []
    for e in np.eye(k) * 1e-6:
        fp = mmrm_reml_criterion(covariance_from_params(th + e, structure, 4), pats)[0]
        fm = mmrm_reml_criterion(covariance_from_params(th - e, structure, 4), pats)[0]
        num.append((fp - fm) / 2e-6)
    assert_allclose(grad, num, rtol=1e-5, atol=1e-5)


def test_covariance_structures_closed_form():
    """mmrm's parameterisation (src/covariance.h): rho = phi / sqrt(1 + phi^2) for
    AR(1); rho = expit(phi) (1 + a) - a, a = 1/(T-1), for compound symmetry;
    unstructured L = D L0 with log D first, then L0 below the diagonal by rows."""
    S = covariance_from_params([np.log(2.0), 0.5 / np.sqrt(0.75)], "ar1", 3)
    assert_allclose(S, 4 * np.array([[1, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 1]]))
    u = (0.3 + 0.5) / 1.5
    S = covariance_from_params([0.0, np.log(u / (1 - u))], "compound_symmetry", 3)
    assert_allclose(S, 0.7 * np.eye(3) + 0.3, rtol=1e-12)
    L = np.array([[1.0, 0, 0], [0.5, 2.0, 0], [-0.2, 0.1, 0.5]])
    th = [0.0, np.log(2.0), np.log(0.5), 0.25, -0.4, 0.2]
    assert_allclose(covariance_from_params(th, "unstructured", 3), L @ L.T, rtol=1e-12)


def test_dropped_rows_warned(trial):
    n_na = int(trial["chg"].isna().sum())
    with pytest.warns(DataWarning, match=rf"Dropped {n_na} of {len(trial)} rows.*chg"):
        m = MMRM(FORMULA, covariance="compound_symmetry").fit(trial)
    assert m.n_dropped_ == n_na and m.n_obs_ == len(trial) - n_na
    assert m.n_subjects_ == trial.loc[trial["chg"].notna(), "subject_id"].nunique()


def test_summary(fits):
    s = fits["unstructured"].summary()
    assert isinstance(s, Summary)
    assert set(s.tables) == {"fixed", "covariance", "lsmeans", "contrast"}
    text = str(s)
    assert (
        "MMRM fit by REML" in text and "Treatment contrast at the final visit" in text
    )


def test_default_reference_is_first_level(trial):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        m = MMRM(FORMULA, covariance="ar1").fit(trial)
    assert m.arms_ == ["active", "placebo"]
    assert m.contrast().iloc[0]["arm"] == "placebo"


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            {"formula": "chg ~ visit * arm + nope"},
            ModelSpecificationError,
            r"Unknown column\(s\) 'nope'",
        ),
        (
            {"subject": "patient"},
            ModelSpecificationError,
            r"Unknown column\(s\) 'patient'",
        ),
        (
            {"formula": "chg ~ visit + baseline_total"},
            ModelSpecificationError,
            r"arm column 'arm' does not appear",
        ),
        ({"formula": "chg visit"}, ModelSpecificationError, "one '~'"),
        (
            {"formula": "chg ~ visit * arm + (1 | subject_id)"},
            ModelSpecificationError,
            "no random-effects terms",
        ),
        (
            {"reference": "sham"},
            ModelSpecificationError,
            r"`reference` 'sham' is not a level",
        ),
        ({"covariance": "banded"}, ValueError, r"`covariance` must be one of"),
        ({"method": "reml"}, ValueError, r"`method` must be one of"),
        ({"tol": -1.0}, ValueError, r"`tol` must be in"),
        ({"max_iter": 0}, ValueError, r"`max_iter` must be an integer >= 1"),
        (
            {"formula": "chg ~ visit * arm + I(2 * baseline_total) + baseline_total"},
            ModelSpecificationError,
            "perfectly collinear",
        ),
    ],
)
def test_bad_input(trial, kwargs, exc, match):
    kw = {"formula": FORMULA, **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.raises(exc, match=match):
            MMRM(**kw).fit(trial)


def test_duplicate_subject_visit(trial):
    df = pd.concat([trial.dropna(), trial.dropna().iloc[[0]]])
    with pytest.raises(
        ModelSpecificationError,
        match=r"1 duplicated subject x visit rows, "
        r"e.g. subject 'T0000' at visit 3",
    ):
        MMRM(FORMULA).fit(df)


def test_one_visit_or_one_arm(trial):
    one_visit = trial.dropna().query("visit == 3")
    with pytest.raises(ModelSpecificationError, match="has 1 level.*at least 2"):
        MMRM("chg ~ visit + arm").fit(one_visit)
    one_arm = trial.dropna().query("arm == 'active'")
    with pytest.raises(ModelSpecificationError, match="Arm column 'arm' has 1 level"):
        MMRM("chg ~ visit + arm").fit(one_arm)


def test_too_few_observations():
    df = _balanced(4, seed=0)
    with pytest.raises(ModelSpecificationError, match="Too few observations"):
        MMRM("chg ~ visit * arm").fit(df)


def test_not_fitted_and_bad_contrast_visit(fits):
    with pytest.raises(NotFittedError):
        MMRM(FORMULA).contrast()
    with pytest.raises(ModelSpecificationError, match="Visit 24 is not one of"):
        fits["ar1"].contrast(visit=24)
    with pytest.raises(ValueError, match=r"`level` must be in \(0, 1\)"):
        fits["ar1"].lsmeans(level=95)


# ------------------------------------------------- convergence on a real data set
# tests/reference/mmrm_bodyweight.R (R 4.2.2, nlme 3.1-162): nlme's BodyWeight rats
# (Crowder & Hand 1990), weight in grams at days 8, 22, 36, 50, 64 ~ Time * Diet +
# day-1 weight, gls with corSymm + varIdent by visit (unstructured), REML, polished
# to full precision with Newton steps on nlme's own REML objective (see the script);
# values in mmrm_bodyweight.json, printed output in mmrm_bodyweight.Rout.
# alsprog before issue 17 fitted this to 1e-8 yet reported converged_ = False.
BW_RTOL = 1e-6


def _bw_name(name: str) -> str:
    name = name.replace("(Intercept)", "Intercept")
    name = re.sub(r"Time(\d+)", r"Time[T.\1]", name)
    return re.sub(r"Diet(\d)", r"Diet[T.\1]", name)


def test_converged_matches_nlme_gls_bodyweight():
    from alsprog.errors import ConvergenceWarning

    ref = json.loads((REFERENCE / "mmrm_bodyweight.json").read_text())
    rats = pd.read_csv(REFERENCE / "mmrm_bodyweight.csv")
    baseline = rats[rats["Time"] == 1].set_index("Rat")["weight"].rename("baseline")
    df = rats[rats["Time"].isin(ref["visits"])].join(baseline, on="Rat")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = MMRM(
            "weight ~ Time * Diet + baseline", subject="Rat", visit="Time", arm="Diet"
        ).fit(df)
    assert m.converged_ is True
    assert m.n_obs_ == ref["nobs"] == 80 and m.n_subjects_ == 16
    assert m.visits_ == ref["visits"]
    names = [_bw_name(k) for k in ref["coef"]]
    assert sorted(names) == sorted(m.fe_params_.index)
    assert_allclose(m.fe_params_[names], list(ref["coef"].values()), rtol=BW_RTOL)
    assert_allclose(m.bse_[names], ref["se"], rtol=BW_RTOL)
    assert_allclose(m.cov_.to_numpy(), np.asarray(ref["cov"]), rtol=BW_RTOL)
    assert m.llf_ == pytest.approx(ref["logLik"], rel=BW_RTOL, abs=0)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_converged_whatever_the_outcome_units(trial, scale):
    """The convergence test is scale-free: the same trial in other units converges
    (before issue 17, x10 and above were reported as not converged)."""
    from alsprog.errors import ConvergenceWarning

    df = trial.dropna().assign(chg=lambda d: d["chg"] * scale)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = MMRM(FORMULA, reference="placebo").fit(df)
    assert m.converged_ is True
    base = MMRM(FORMULA, reference="placebo").fit(trial.dropna())
    assert_allclose(m.fe_params_, base.fe_params_ * scale, rtol=1e-6, atol=1e-9 * scale)


def test_not_converged_is_reported(trial):
    from alsprog.errors import ConvergenceError, ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match=r"Raise max_iter \(now 2\)"):
        m = MMRM(FORMULA, reference="placebo", max_iter=2).fit(trial.dropna())
    assert m.converged_ is False
    with pytest.raises(ConvergenceError, match="Newton step would still lower"):
        MMRM(FORMULA, reference="placebo", max_iter=2, strict=True).fit(trial.dropna())


def test_numeric_arm_codes_match_a_numeric_reference():
    """An arm column coded 0/1 is read as text by the data dictionary (``arm`` is a
    dictionary column since issue 21); ``reference=0`` still names its level."""
    rng = np.random.default_rng(4)
    n, visits = 40, np.array([0.0, 3.0, 6.0])
    arm = np.repeat(np.arange(n) % 2, 3)
    df = pd.DataFrame(
        {
            "subject_id": np.repeat([f"S{i}" for i in range(n)], 3),
            "visit": np.tile(visits, n),
            "arm": arm,
            "chg": -0.9 * np.tile(visits, n)
            + 0.3 * np.tile(visits, n) * arm
            + rng.normal(0, 1, 3 * n),
        }
    )
    m = MMRM("chg ~ visit * arm", subject="subject_id", visit="visit", arm="arm",
             reference=0).fit(df)  # fmt: skip
    text = MMRM("chg ~ visit * arm", subject="subject_id", visit="visit", arm="arm",
                reference="0").fit(df)  # fmt: skip
    np.testing.assert_allclose(m.fe_params_, text.fe_params_, rtol=1e-12)
    with pytest.raises(ModelSpecificationError, match="`reference` 2 is not a level"):
        MMRM("chg ~ visit * arm", subject="subject_id", visit="visit", arm="arm",
             reference=2).fit(df)  # fmt: skip
