"""MMRM inference as R's mmrm does it (``alsprog.models.mmrm._sandwich`` and ``_kr``):
sandwich covariances against clubSandwich on nlme::gls fits, Kenward-Roger against
pbkrtest (a random-intercept model is an MMRM with a compound-symmetry covariance
linear in its parameters) and against the numbers published in mmrm's own tests
(SAS PROC MIXED values and mmrm's snapshots on its ``fev_data``).

References: tests/reference/mmrm_inference_reference.R (R 4.2.2, nlme 3.1-162,
clubSandwich 0.5.8, lme4 1.1-31, pbkrtest 0.5.2) -> mmrm_inference_reference.json /
.Rout, on tests/reference/fev_data_inference.csv (mmrm's fev_data) and mmrm_trial.csv.
mmrm's numbers are quoted from github.com/openpharma/mmrm at commit
ec290b2695b25057b31bc98e27c39d3f498cd0d6 (file named at each use).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from alsprog.errors import ModelSpecificationError
from alsprog.models.mmrm._kr import (
    between_within_df,
    contrast_test,
    kr_components,
    kr_df,
    kr_vcov,
    md_denom_df,
    reml_information,
    residual_df,
    satterthwaite_md,
)
from alsprog.models.mmrm._numerics import build_patterns, evaluate_reml
from alsprog.models.mmrm._sandwich import (
    SubjectBlock,
    blocks_from_rows,
    sandwich_df,
    sandwich_vcov,
)

REFERENCE = Path(__file__).parents[1] / "reference"
GLS_FITS = (
    "fev_ar1",
    "fev_cs",
    "fev_us",
    "fev_us_racesex",
    "fev_us_full",
    "fev_ar1_weighted",
    "trial_us",
    "trial_cs",
    "trial_ar1",
)


@pytest.fixture(scope="module")
def ref():
    return json.loads((REFERENCE / "mmrm_inference_reference.json").read_text())


def _arrays(f):
    return (
        np.array(f["X"], dtype=float),
        np.array(f["y"], dtype=float),
        np.array(f["subject"]),
        np.array(f["visit"]),
    )


def _gls_blocks(f):
    X, y, sub, _ = _arrays(f)
    return blocks_from_rows(X, y - X @ np.array(f["coef"]), sub, f["sigma"])


def _full_sigma(f, T=4):
    """The visit covariance of an unweighted gls fit, from its subjects' blocks."""
    _, _, sub, vis = _arrays(f)
    S = np.full((T, T), np.nan)
    for j, Sj in enumerate(f["sigma"]):
        v = vis[sub == j]
        S[np.ix_(v, v)] = Sj
    assert not np.isnan(S).any()
    return S


# ------------------------------------------------- covariance parameterisations
# Each maps theta to the T x T covariance; derivatives are taken numerically below
# (complex step, exact to rounding; second derivatives by central differences of
# it), independently of the code under test, which only receives them.
def mmrm_ar1(th, T=4):
    """mmrm's ar1 (src/covariance.h): sd = exp(th0), rho = th1 / sqrt(1 + th1^2)."""
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    rho = th[1] / np.sqrt(1 + th[1] ** 2)
    return np.exp(2 * th[0]) * rho**lag


def mmrm_cs(th, T=4):
    """mmrm's cs: sd = exp(th0), rho = invlogit(th1) (1 + a) - a, a = 1/(T-1)."""
    a = 1.0 / (T - 1)
    rho = 1 / (1 + np.exp(-th[1])) * (1 + a) - a
    return np.exp(2 * th[0]) * (rho + (1 - rho) * np.eye(T))


def elements(th, T=4):
    """Linear: the lower triangle of Sigma (SAS's unstructured parameterisation)."""
    r, c = np.tril_indices(T)
    S = np.zeros((T, T), dtype=np.asarray(th).dtype)
    S[r, c] = th
    S[c, r] = th
    return S


def cs_linear(th, T=4):
    """Random intercept: s2_b J + s2 I (pbkrtest's variance components)."""
    return th[0] * np.ones((T, T)) + th[1] * np.eye(T)


def derivatives(fn, th, *, second=True):
    th = np.asarray(th, dtype=float)
    k = len(th)

    def d1(t):
        out = []
        for r in range(k):
            tc = t.astype(complex)
            tc[r] += 1e-30j
            out.append(fn(tc).imag / 1e-30)
        return np.array(out)

    dS = d1(th)
    if not second:
        return dS, None
    d2 = np.empty((k,) + dS.shape)
    for s in range(k):
        h = 1e-4 * max(1.0, abs(th[s]))
        e = np.zeros(k)
        e[s] = h
        d2[:, s] = (d1(th + e) - d1(th - e)) / (2 * h)
    return dS, 0.5 * (d2 + d2.transpose(1, 0, 2, 3))


def pattern_blocks(patterns, S, beta, dS, d2S):
    out = []
    for pt in patterns:
        ix = pt.idx
        out.append(
            SubjectBlock(
                X=pt.X,
                Sigma=S[np.ix_(ix, ix)],
                resid=pt.Y - pt.X @ beta,
                dSigma=dS[:, ix][:, :, ix],
                d2Sigma=None if d2S is None else d2S[:, :, ix][:, :, :, ix],
            )
        )
    return out


def reml_optimum(f, fn: Callable, th0, *, linear=False, T=4):
    """Newton's method on the REML criterion (value and gradient from
    ``_numerics.evaluate_reml``, tested against gls; Hessian from the code under
    test, whose own check is test_observed_information_is_the_reml_hessian) from the
    gls estimate: gls stops ~1e-4 short of the optimum on the unstructured fit."""
    X, y, sub, vis = _arrays(f)
    pats = build_patterns(y, X, sub, vis)
    th = np.asarray(th0, dtype=float)
    for _ in range(20):
        S = fn(th, T)
        ev = evaluate_reml(S, pats, True)
        dS, d2S = derivatives(lambda t: fn(t, T), th, second=not linear)
        g = 0.5 * np.einsum("kij,ij->k", dS, ev.grad_sigma)  # of -l_R
        kc = kr_components(pattern_blocks(pats, S, ev.beta, dS, d2S))
        H = reml_information(kc)
        step = np.linalg.solve(H, g)
        th = th - step
        if np.max(np.abs(step)) < 1e-13 * max(1.0, np.max(np.abs(th))):
            break
    S = fn(th, T)
    ev = evaluate_reml(S, pats, True)
    dS, d2S = derivatives(lambda t: fn(t, T), th, second=not linear)
    blocks = pattern_blocks(pats, S, ev.beta, dS, d2S)
    kc = kr_components(blocks)
    return th, ev.beta, blocks, kc, np.linalg.inv(reml_information(kc))


# ------------------------------------------------------------------ sandwich
@pytest.mark.parametrize("name", GLS_FITS)
@pytest.mark.parametrize("cr", ["CR0", "CR2", "CR3"])
def test_sandwich_matches_clubsandwich(ref, name, cr):
    """clubSandwich::vcovCR(gls, type) and coef_test's Satterthwaite df, unweighted
    and weighted (variance / WEIGHT) fits: largest relative difference ~6e-13."""
    f = ref["gls"][name]
    res = sandwich_vcov(_gls_blocks(f), type=cr.lower(), flavour="clubsandwich")
    np.testing.assert_allclose(res.Cinv, f["vcov"], rtol=1e-9)
    want = np.array(f[cr]["vcov"])
    np.testing.assert_allclose(res.vcov, want, rtol=1e-9, atol=1e-11 * abs(want).max())
    p = len(f["coef"])
    df = [sandwich_df(res, np.eye(p)[j]) for j in range(p)]
    np.testing.assert_allclose(df, f[cr]["df"], rtol=1e-9)


def test_cr0_cr3_do_not_depend_on_the_flavour_cr2_does(ref):
    blocks = _gls_blocks(ref["gls"]["fev_ar1"])
    for cr in ("cr0", "cr3"):
        a = sandwich_vcov(blocks, type=cr, flavour="mmrm").vcov
        b = sandwich_vcov(blocks, type=cr, flavour="clubsandwich").vcov
        np.testing.assert_allclose(a, b, rtol=1e-12)
    a = sandwich_vcov(blocks, type="cr2", flavour="mmrm").vcov
    b = sandwich_vcov(blocks, type="cr2", flavour="clubsandwich").vcov
    assert np.max(np.abs(a / b - 1)) > 1e-4  # mmrm's tests accept 1e-3 between them


def test_sandwich_matches_mmrm_on_fev_ar1(ref):
    """mmrm's snapshots of h_get_empirical on FEV1 ~ ARMCD + ar1(AVISIT | USUBJID)
    (tests/testthat/_snaps/empirical.md), at our REML optimum (mmrm's stops ~5e-7
    away) and the SAS value of its "Empirical" (tests/testthat/test-empirical.R)."""
    f = ref["gls"]["fev_ar1"]
    S = _full_sigma(f)
    rho = S[0, 1] / S[0, 0]
    th0 = [0.5 * np.log(S[0, 0]), rho / np.sqrt(1 - rho**2)]
    _, _, blocks, _, _ = reml_optimum(f, mmrm_ar1, th0)
    snap = {
        "cr0": (0.276669200825678, 0.681966674143019),
        "cr2": (0.27938383855849, 0.689265455017577),
        "cr3": (0.282126502688394, 0.696645916580453),
    }
    for cr, (v00, v11) in snap.items():
        V = sandwich_vcov(blocks, type=cr).vcov
        np.testing.assert_allclose([V[0, 0], V[1, 1], -V[0, 1]], [v00, v11, v00],
                                   rtol=1e-6)  # fmt: skip
    V = sandwich_vcov(blocks, type="cr0").vcov
    np.testing.assert_allclose(
        [V[0, 0], V[1, 1]], [0.27666930670945, 0.68196697308307], rtol=1e-6
    )


@pytest.mark.parametrize(
    ("name", "fn", "want", "rtol"),
    [
        # tests/testthat/test-empirical.R, "... same with SAS result for cs / us";
        # SAS's unstructured fit stops ~2e-5 from the optimum (mmrm's test: 1e-4)
        ("fev_cs", "cs", (0.26910953746582, 0.6297163326325), 1e-6),
        ("fev_us", "us", (0.16725909903518, 0.40908637028234), 2e-5),
    ],
)
def test_cr0_matches_sas(ref, name, fn, want, rtol):
    f = ref["gls"][name]
    S = _full_sigma(f)
    if fn == "cs":
        _, _, blocks, _, _ = reml_optimum(
            f, cs_linear, [S[0, 1], S[0, 0] - S[0, 1]], linear=True
        )
    else:
        _, _, blocks, _, _ = reml_optimum(
            f, elements, S[np.tril_indices(4)], linear=True
        )
    V = sandwich_vcov(blocks, type="cr0").vcov
    np.testing.assert_allclose([V[0, 0], V[1, 1]], want, rtol=rtol)


def test_empirical_satterthwaite_matches_mmrm(ref):
    """tests/testthat/test-satterthwaite.R: FEV1 ~ RACE + SEX + us(AVISIT | USUBJID)
    with vcov = "Empirical": the intercept's df rounds to 58 (se 0.68615, t 59.670),
    the F test of the RACE coefficients has denominator df rounding to 112 and
    F = 37.603 (mmrm's tolerance 1e-3)."""
    f = ref["gls"]["fev_us_racesex"]
    S = _full_sigma(f)
    _, beta, blocks, _, _ = reml_optimum(f, elements, S[np.tril_indices(4)],
                                         linear=True)  # fmt: skip
    res = sandwich_vcov(blocks, type="cr0")
    t = contrast_test(beta, res.vcov, [1, 0, 0, 0], sandwich_df(res, [1, 0, 0, 0]))
    assert t["estimate"] == pytest.approx(40.94273, rel=1e-4)
    assert t["std_error"] == pytest.approx(0.68615, rel=1e-4)
    assert t["t"] == pytest.approx(59.670, rel=1e-4)
    assert round(t["df"]) == 58
    L = np.zeros((2, 4))
    L[0, 1] = L[1, 2] = 1
    F = satterthwaite_md(beta, res.vcov, L, lambda c: sandwich_df(res, c))
    assert F["num_df"] == 2 and round(F["denom_df"]) == 112
    assert F["f_stat"] == pytest.approx(37.603, rel=1e-3)


def test_sandwich_df_closed_form_and_errors():
    # a mean over J equal clusters with identity covariance: df = J - 1 for CR2
    # (Bell & McCaffrey), whatever the residuals
    rng = np.random.default_rng(3)
    X = np.ones((15, 1))
    blocks = blocks_from_rows(X, rng.normal(size=15), np.repeat(np.arange(5), 3),
                              [np.eye(3)] * 5)  # fmt: skip
    for cr in ("cr0", "cr2", "cr3"):
        assert sandwich_df(sandwich_vcov(blocks, type=cr), [1.0]) == pytest.approx(4)
    with pytest.raises(ModelSpecificationError, match="'cr1'"):
        sandwich_vcov(blocks, type="cr1")
    with pytest.raises(ModelSpecificationError, match="'sas'"):
        sandwich_vcov(blocks, flavour="sas")
    # a subject alone determining a coefficient: CR3 refuses, CR2 (pseudo-inverse) not
    X2 = np.column_stack([np.ones(15), np.r_[np.ones(3), np.zeros(12)]])
    b2 = blocks_from_rows(X2, rng.normal(size=15), np.repeat(np.arange(5), 3),
                          [np.eye(3)] * 5)  # fmt: skip
    with pytest.raises(ModelSpecificationError, match="use 'cr2'"):
        sandwich_vcov(b2, type="cr3")
    assert np.isfinite(sandwich_vcov(b2, type="cr2").vcov).all()


def test_sandwich_cr3_is_the_leave_one_subject_out_jackknife_for_ols():
    """With Sigma = I, CR3 = sum_i (b_(-i) - b)(b_(-i) - b)' exactly (no (J-1)/J)."""
    rng = np.random.default_rng(7)
    J, d = 8, 3
    X = np.column_stack([np.ones(J * d), rng.normal(size=J * d)])
    y = X @ [1.0, -0.5] + rng.normal(size=J * d)
    sub = np.repeat(np.arange(J), d)
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    blocks = blocks_from_rows(X, y - X @ b, sub, [np.eye(d)] * J)
    jk = np.zeros((2, 2))
    for i in range(J):
        keep = sub != i
        bi = np.linalg.lstsq(X[keep], y[keep], rcond=None)[0]
        jk += np.outer(bi - b, bi - b)
    np.testing.assert_allclose(sandwich_vcov(blocks, type="cr3").vcov, jk, rtol=1e-10)


# ------------------------------------------------------------- Kenward-Roger
def test_kr_matches_pbkrtest_random_intercept(ref):
    """pbkrtest's vcovAdj and KR ddf / F scaling on lmer(chg ~ visit * arm +
    baseline_total + (1 | subject_id)): the MMRM with Sigma = s2_b J + s2 I and W the
    inverse expected information (pbkrtest's), at lmer's estimates."""
    r = ref["pbkrtest"]
    X = np.array(r["X"])
    y = np.array(r["y"])
    sub = np.array(r["subject"])
    th = np.array([r["s2_b"], r["s2"]])
    beta = np.array(r["coef"])
    blocks = []
    for j in range(sub.max() + 1):
        rows = np.flatnonzero(sub == j)
        T = len(rows)
        dS, _ = derivatives(lambda t, T=T: cs_linear(t, T), th, second=False)
        blocks.append(SubjectBlock(X[rows][None], cs_linear(th, T),
                                   (y[rows] - X[rows] @ beta)[None], dS))  # fmt: skip
    kc = kr_components(blocks)
    assert kc.R is None
    np.testing.assert_allclose(kc.Cinv, r["vcov"], rtol=1e-9)
    W = np.linalg.inv(reml_information(kc, kind="expected"))
    np.testing.assert_allclose(kr_vcov(kc, W), r["vcov_adj"], rtol=1e-9)
    np.testing.assert_allclose(kr_vcov(kc, W, linear=True), r["vcov_adj"], rtol=1e-9)
    for t in r["tests"].values():
        ddf, lam = kr_df(np.array(t["L"]), kc, W)
        assert ddf == pytest.approx(t["ddf"], rel=1e-9)
        assert lam == pytest.approx(t["F_scaling"], rel=1e-9)


def test_observed_information_is_the_reml_hessian(ref):
    """Observed information against central differences of -l_R (evaluate_reml) in
    mmrm's non-linear ar1 parameterisation, away from the optimum."""
    f = ref["gls"]["fev_ar1"]
    X, y, sub, vis = _arrays(f)
    pats = build_patterns(y, X, sub, vis)
    th = np.array([1.7, 0.3])

    def crit(t):
        return 0.5 * evaluate_reml(mmrm_ar1(t), pats, False).value

    H = np.empty((2, 2))
    h = 1e-4
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            H[i, j] = (crit(th + ei + ej) - crit(th + ei - ej) - crit(th - ei + ej)
                       + crit(th - ei - ej)) / (4 * h * h)  # fmt: skip
    S = mmrm_ar1(th)
    dS, d2S = derivatives(mmrm_ar1, th)
    beta = evaluate_reml(S, pats, False).beta
    kc = kr_components(pattern_blocks(pats, S, beta, dS, d2S))
    np.testing.assert_allclose(reml_information(kc), H, rtol=0, atol=1e-6 * H.max())
    E = reml_information(kc, kind="expected")
    assert not np.allclose(E, H, rtol=1e-3)  # observed != expected off the optimum


@pytest.fixture(scope="module")
def fev_ar1_kr(ref):
    f = ref["gls"]["fev_ar1"]
    S = _full_sigma(f)
    rho = S[0, 1] / S[0, 0]
    th0 = [0.5 * np.log(S[0, 0]), rho / np.sqrt(1 - rho**2)]
    return reml_optimum(f, mmrm_ar1, th0)


def test_kr_matches_mmrm_snapshots_fev_ar1(fev_ar1_kr):
    """mmrm's snapshots for FEV1 ~ ARMCD + ar1(AVISIT | USUBJID), method =
    "Kenward-Roger" (tests/testthat/_snaps/kenwardroger.md: h_get_kr_comp,
    h_var_adj, h_kr_df, h_df_1d_kr, h_df_md_kr), at our REML optimum: largest
    relative difference 7e-7 (P), 2e-7 elsewhere (mmrm's optimiser tolerance)."""
    th, beta, _, kc, W = fev_ar1_kr
    P = np.array([-8.6951404485695, -4.18484163528792, -3.2993613446609,
                  -1.64605311219472, -4.18484163528792, -4.18484163528792,
                  -1.64605311219472, -1.64605311219472]).reshape(2, 4).T  # fmt: skip
    np.testing.assert_allclose(kc.P.reshape(4, 2), P, rtol=2e-6)
    R = np.array([17.390280897139, 8.36968327057585, 6.59872268932179,
                  3.29210622438944, 6.59872268932179, 3.29210622438944,
                  0.587917298512552, 0.305218430155293, 8.36968327057585,
                  8.36968327057585, 3.29210622438944, 3.29210622438944,
                  3.29210622438944, 3.29210622438944, 0.305218430155293,
                  0.305218430155293]).reshape(2, 8).T  # fmt: skip
    Q = R.copy()
    Q[6:8] = [[3.13460478136063, 1.58300324944804], [1.58300324944804] * 2]
    np.testing.assert_allclose(kc.Q.reshape(8, 2), Q, rtol=2e-6)
    # mmrm's d2Sigma/dtheta1^2 entries sit 8.5e-6 from the closed form (ours: 2e-8)
    np.testing.assert_allclose(kc.R.reshape(8, 2), R, rtol=1e-5)
    # h_var_adj: linear = TRUE then FALSE (the snapshot titles have them swapped)
    lin = kr_vcov(kc, W, linear=True)
    full = kr_vcov(kc, W)
    np.testing.assert_allclose(lin.ravel(), [0.444119599330238, -0.444119599330238,
                               -0.444119599330237, 0.922715039314076], rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(full.ravel(), [0.442311524488976, -0.442311524488976,
                               -0.442311524488976, 0.918881052484644], rtol=1e-6)  # fmt: skip
    ddf, lam = kr_df([0, 1], kc, W)
    assert ddf == pytest.approx(188.469542953831, rel=1e-6)
    assert lam == pytest.approx(1.0, abs=1e-12)
    t = contrast_test(beta, full, [0, 1], ddf)
    assert t["estimate"] == pytest.approx(4.22574283798881, rel=1e-6)
    assert t["std_error"] == pytest.approx(0.958582835484051, rel=1e-6)
    assert t["p_value"] == pytest.approx(1.74717113178929e-05, rel=1e-4)
    t = contrast_test(beta, full, [1, 1], kr_df([1, 1], kc, W)[0])
    assert t["std_error"] == pytest.approx(0.690340153834085, rel=1e-6)
    assert t["df"] == pytest.approx(183.109526300275, rel=1e-6)
    L = np.array([[0.0, 1.0], [1.0, 0.0]])
    ddf, lam = kr_df(L, kc, W)
    F = contrast_test(beta, full, L, ddf, f_scaling=lam)
    assert F["denom_df"] == pytest.approx(188.648444482487, rel=1e-6)
    assert F["f_stat"] == pytest.approx(3913.7241325595, rel=1e-6)


@pytest.mark.parametrize(
    ("name", "fn", "linear", "want", "rtol"),
    [
        # tests/testthat/test-kenwardroger.R, "kr [linear] give similar results as
        # SAS for ar1 / cs / unstructured": (se, df); SAS's numbers
        ("fev_ar1", "mmrm_ar1", False, (0.95865439662225, 188.46934887972), 1e-4),
        ("fev_ar1", "mmrm_ar1", True, (0.96058142305176, 188.46934887972), 1e-5),
        ("fev_cs", "cs_linear", True, (0.7964696053595, 177.038485931223), 1e-5),
        # SAS's unstructured KR stays 2.7e-4 (df) and 9e-5 (se) from this algebra at
        # the exact optimum (mmrm's own test accepts 1e-3)
        ("fev_us", "elements", True, (0.66124382270307, 160.733266403768), 3e-4),
    ],
)
def test_kr_matches_sas(ref, name, fn, linear, want, rtol):
    f = ref["gls"][name]
    S = _full_sigma(f)
    if fn == "mmrm_ar1":
        rho = S[0, 1] / S[0, 0]
        out = reml_optimum(
            f, mmrm_ar1, [0.5 * np.log(S[0, 0]), rho / np.sqrt(1 - rho**2)]
        )
    elif fn == "cs_linear":
        out = reml_optimum(f, cs_linear, [S[0, 1], S[0, 0] - S[0, 1]], linear=True)
    else:
        out = reml_optimum(f, elements, S[np.tril_indices(4)], linear=True)
    _, _, _, kc, W = out
    V = kr_vcov(kc, W, linear=linear)
    ddf, _ = kr_df([0, 1], kc, W)
    np.testing.assert_allclose([np.sqrt(V[1, 1]), ddf], want, rtol=rtol)


def test_kr_ddf_and_linear_vcov_do_not_depend_on_the_parameterisation(ref):
    """At the optimum, compound symmetry as mmrm parameterises it (non-linear) and
    as variance components (linear) give the same ddf and KR-linear covariance."""
    f = ref["gls"]["fev_cs"]
    S = _full_sigma(f)
    _, _, _, kc1, W1 = reml_optimum(f, cs_linear, [S[0, 1], S[0, 0] - S[0, 1]],
                                    linear=True)  # fmt: skip
    a = 1 / 3
    rho = S[0, 1] / S[0, 0]
    u = (rho + a) / (1 + a)
    _, _, _, kc2, W2 = reml_optimum(
        f, mmrm_cs, [0.5 * np.log(S[0, 0]), np.log(u / (1 - u))]
    )
    for L in ([0, 1], [1, 1], np.eye(2)):
        assert kr_df(L, kc1, W1)[0] == pytest.approx(kr_df(L, kc2, W2)[0], rel=1e-8)
    np.testing.assert_allclose(
        kr_vcov(kc1, W1), kr_vcov(kc2, W2, linear=True), rtol=1e-8
    )
    # the second-order term is parameterisation-specific: non-zero for mmrm's cs
    assert not np.allclose(kr_vcov(kc2, W2), kr_vcov(kc2, W2, linear=True), rtol=1e-6)


def test_kr_components_refuse_missing_derivatives():
    b = SubjectBlock(np.ones((1, 2, 1)), np.eye(2), np.zeros((1, 2)))
    with pytest.raises(ModelSpecificationError, match="dSigma"):
        kr_components([b])
    with pytest.raises(ModelSpecificationError, match="empty"):
        kr_components([])


# ------------------------------------------------- between-within, residual, F
def test_between_within_matches_mmrm(ref):
    """tests/testthat/test-between-within.R on fev_data: FEV1 ~ RACE + SEX + ARMCD *
    AVISIT has ddf_between 192 and ddf_within 334; FEV1 ~ ARMCD + RACE gives 193 to
    contrasts of RACE (and of RACE with the intercept); intercept only: 340."""
    f = ref["gls"]["fev_us_full"]
    X, _, sub, _ = _arrays(f)
    cols = f["columns"]
    assert cols[1].startswith("RACE") and cols[5] == "AVISITVIS2"
    e = np.eye(X.shape[1])
    assert between_within_df(X, sub, e[1]) == 192  # RACE: between
    assert between_within_df(X, sub, e[5]) == 334  # AVISIT: within
    assert between_within_df(X, sub, e[0]) == 334  # intercept: within's ddf
    assert between_within_df(X, sub, e[[1, 5]]) == 192  # the smallest
    X2 = X[:, [0, 4, 1, 2]]  # (Intercept), ARMCDTRT, RACE x2 as R orders ARMCD + RACE
    assert between_within_df(X2, sub, [0, 0, 1, -1]) == 193
    assert between_within_df(X2, sub, [1, 0, -1, 0]) == 193
    assert between_within_df(X[:, :1], sub, [1]) == 340
    assert between_within_df(X[:, 1:], sub, [1] + [0] * 10, intercept=None) == 193
    with pytest.raises(ModelSpecificationError, match="all zeros"):
        between_within_df(X, sub, np.zeros(X.shape[1]))


def test_residual_and_md_denom_df():
    assert residual_df(537, 2) == 535.0
    # tests/testthat/test-satterthwaite.R, h_md_denom_df
    e = sum(t / (t - 2) for t in (3, 5, 10))
    assert md_denom_df([3, 5, 10]) == pytest.approx(2 * e / (e - 3))
    assert md_denom_df([1, 5, 10]) == 2.0
    assert md_denom_df([7.0, 7.0]) == 7.0 and md_denom_df([4.5]) == 4.5


def test_contrast_test_closed_forms():
    from scipy import stats

    beta = np.array([1.0, 2.0, -1.0])
    V = np.diag([1.0, 4.0, 0.25])
    t = contrast_test(beta, V, [0, 1, 0], 12.0)
    assert (t["estimate"], t["std_error"], t["t"]) == (2.0, 2.0, 1.0)
    assert t["p_value"] == pytest.approx(2 * stats.t.sf(1.0, 12))
    L = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    F = contrast_test(beta, V, L, 20.0, f_scaling=0.9)
    assert F["f_stat"] == pytest.approx(0.9 * (1.0 + 4.0) / 2)
    assert F["p_value"] == pytest.approx(stats.f.sf(F["f_stat"], 2, 20))
    # rank-deficient L: one independent row is a squared t test
    F1 = satterthwaite_md(beta, V, np.array([[0, 1.0, 0], [0, 2.0, 0]]), lambda c: 9.0)
    assert F1["num_df"] == 1 and F1["f_stat"] == pytest.approx(1.0)


# ------------------------------------------------------------ the MMRM adapter
@pytest.fixture(scope="module")
def fev():
    import pandas as pd

    return pd.read_csv(REFERENCE / "fev_data_inference.csv")


def _fit_fev(fev, **kw):
    import warnings

    from alsprog.models import MMRM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 263 missing FEV1 rows
        return MMRM("FEV1 ~ ARMCD", subject="USUBJID", visit="AVISIT", arm="ARMCD",
                    **kw).fit(fev)  # fmt: skip


@pytest.fixture(scope="module")
def fev_ar1_model(fev):
    return _fit_fev(fev, covariance="ar1")


def test_mmrm_inference_matches_mmrm_on_fev_ar1(fev_ar1_model):
    """A fitted MMRM through the adapter against mmrm's snapshots and tests
    (_snaps/kenwardroger.md, _snaps/empirical.md, test-between-within.R)."""
    from alsprog.models.mmrm._inference import mmrm_inference

    m = fev_ar1_model
    kr = mmrm_inference(m, [0, 1], ddf="kenward-roger")
    assert kr["estimate"] == pytest.approx(4.22574283798881, rel=1e-6)
    assert kr["std_error"] == pytest.approx(0.958582835484051, rel=1e-6)
    assert kr["df"] == pytest.approx(188.469542953831, rel=1e-6)
    assert kr["p_value"] == pytest.approx(1.74717113178929e-05, rel=1e-5)
    lin = mmrm_inference(m, [0, 1], ddf="kenward-roger-linear")
    assert lin["std_error"] == pytest.approx(np.sqrt(0.922715039314076), rel=1e-6)
    assert lin["df"] == kr["df"]
    F = mmrm_inference(m, [[0, 1], [1, 0]], ddf="kenward-roger")
    assert F["denom_df"] == pytest.approx(188.648444482487, rel=1e-6)
    assert F["f_stat"] == pytest.approx(3913.7241325595, rel=1e-6)
    res = mmrm_inference(m, [0, 1], ddf="residual")  # mmrm's default: Empirical
    assert res["df"] == 535 and res["std_error"] == pytest.approx(
        np.sqrt(0.681966674143019), rel=1e-6
    )
    for vc, v11 in (("cr2", 0.689265455017577), ("cr3", 0.696645916580453)):
        t = mmrm_inference(m, [0, 1], ddf="residual", vcov=vc)
        assert t["std_error"] == pytest.approx(np.sqrt(v11), rel=1e-6)
    assert mmrm_inference(m, [0, 1], ddf="between-within")["df"] == 197 - 2
    # model-based Satterthwaite: the fit's own contrast (numerical Hessian)
    sat = mmrm_inference(m, [0, 1])
    c = m.contrast(visit="VIS4").iloc[0]
    assert sat["std_error"] == pytest.approx(c["std_error"], rel=1e-10)
    assert sat["df"] == pytest.approx(c["df"], rel=1e-5)


def test_mmrm_inference_weighted_matches_clubsandwich(ref, fev):
    """weights = "WEIGHT" (mmrm's weights; gls's varFixed(~ 1/WEIGHT)): the sandwich
    of the fitted model against clubSandwich, CR0 and CR3 (flavour-free)."""
    from alsprog.models.mmrm._inference import mmrm_inference

    m = _fit_fev(fev, covariance="ar1", weights="WEIGHT")
    f = ref["gls"]["fev_ar1_weighted"]
    for cr in ("CR0", "CR3"):
        t = mmrm_inference(m, [0, 1], vcov=cr.lower())
        assert t["std_error"] == pytest.approx(np.sqrt(f[cr]["vcov"][1][1]), rel=1e-6)
        assert t["df"] == pytest.approx(f[cr]["df"][1], rel=1e-6)


def test_mmrm_inference_unstructured_kr_linear_matches_sas(fev):
    from alsprog.models.mmrm._inference import mmrm_inference

    m = _fit_fev(fev, covariance="unstructured")
    t = mmrm_inference(m, [0, 1], ddf="kenward-roger-linear")
    # tests/testthat/test-kenwardroger.R (SAS), as test_kr_matches_sas
    assert t["std_error"] == pytest.approx(0.66124382270307, rel=1e-4)
    assert t["df"] == pytest.approx(160.733266403768, rel=3e-4)


def test_mmrm_inference_refuses(fev_ar1_model):
    from alsprog.models.mmrm._inference import mmrm_inference

    m = fev_ar1_model
    with pytest.raises(ModelSpecificationError, match="'wald'"):
        mmrm_inference(m, [0, 1], ddf="wald")
    with pytest.raises(ModelSpecificationError, match="'hc0'"):
        mmrm_inference(m, [0, 1], vcov="hc0")
    with pytest.raises(ModelSpecificationError, match="Kenward-Roger covariance"):
        mmrm_inference(m, [0, 1], ddf="kenward-roger", vcov="cr2")
    with pytest.raises(ModelSpecificationError, match="2 columns"):
        mmrm_inference(m, [0, 1, 0])


# ------------------------------------------------- the fit's own ddf and vcov
def test_fit_with_kenward_roger_reports_mmrm_numbers(fev):
    # FEV1 ~ ARMCD with ar1: the coefficient of ARMCD equals mmrm's Kenward-Roger
    # snapshot (_snaps/kenwardroger.md), in the summary and as the LS-mean contrast
    # (one arm factor: the contrast at any visit is that coefficient)
    m = _fit_fev(fev, covariance="ar1", ddf="kenward-roger")
    row = m.summary().tables["fixed"].iloc[1]
    assert row["estimate"] == pytest.approx(4.22574283798881, rel=1e-6)
    assert row["std_error"] == pytest.approx(0.958582835484051, rel=1e-6)
    assert row["df"] == pytest.approx(188.469542953831, rel=1e-6)
    assert row["p_value"] == pytest.approx(1.74717113178929e-05, rel=1e-5)
    c = m.contrast(visit="VIS4").iloc[0]
    assert c["std_error"] == pytest.approx(0.958582835484051, rel=1e-6)
    assert c["df"] == pytest.approx(188.469542953831, rel=1e-6)
    assert "Kenward-Roger df" in str(m.summary())
    lin = _fit_fev(fev, covariance="ar1", ddf="kenward-roger-linear")
    assert lin.contrast(visit="VIS4")["std_error"].iloc[0] == pytest.approx(
        np.sqrt(0.922715039314076), rel=1e-6
    )


@pytest.mark.parametrize(
    ("kw", "v11", "df"),
    [
        ({"ddf": "residual"}, 0.681966674143019, 535),
        ({"ddf": "residual", "vcov": "cr2"}, 0.689265455017577, 535),
        ({"ddf": "residual", "vcov": "cr3"}, 0.696645916580453, 535),
        ({"ddf": "between-within"}, None, 195),
    ],
)
def test_fit_with_a_sandwich_or_other_ddf(fev, fev_ar1_model, kw, v11, df):
    m = _fit_fev(fev, covariance="ar1", **kw)
    c = m.contrast(visit="VIS4").iloc[0]
    se = fev_ar1_model.bse_.iloc[1] if v11 is None else np.sqrt(v11)
    assert c["std_error"] == pytest.approx(se, rel=1e-6)
    assert c["df"] == df
    assert m.lsmeans()["df"].iloc[0] > 0
    words = m.summary().captions["fixed"]
    assert words.startswith("Fixed effects (")
    if v11 is not None:
        assert (kw.get("vcov") or "cr0").upper() + " covariance" in words


def test_kenward_roger_needs_reml_and_its_own_covariance(fev):
    with pytest.raises(ModelSpecificationError, match="needs a REML fit"):
        _fit_fev(fev, covariance="ar1", method="ML", ddf="kenward-roger")
    with pytest.raises(ModelSpecificationError, match="vcov='cr2' goes with"):
        _fit_fev(fev, covariance="ar1", ddf="kenward-roger", vcov="cr2")
    with pytest.raises(ValueError, match="`vcov` must be one of"):
        _fit_fev(fev, covariance="ar1", vcov="hc3")
