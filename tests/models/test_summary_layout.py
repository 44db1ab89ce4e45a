"""Printed summaries: LinearMixedModel's is lme4's ``print(summary(fit))`` line for line;
every other model's tables have no stray index header and one number of decimals per
column (issue 18, item 12).

The reference printouts are tests/reference/lme4_summary_print.Rout (R 4.2.2, lme4
1.1.31, R's default ``digits = 7``), written offline by lme4_summary_print.R
(``summary(ddf=None)``), and lmertest_summary_print.Rout (lmerTest 3.1.3, by
lmertest_summary_print.R: the default Satterthwaite t-tests, issue 22).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from lmm_testdata import REFERENCE

from alsprog.models import MMRM, LinearMixedModel, MixedSummary, Summary
from alsprog.models._summary import (
    _format_pval,
    format_frame,
    r_abbreviate,
    r_format,
)

ALS = (
    "frs ~ months * (onset_spinal + onset_other) + age_at_onset + (months | subject_id)"
)
NOTES = {
    "noise_int": ["boundary (singular) fit: see help('isSingular') in lme4"],
    "als_reml": ["21 rows with missing values were dropped"],
}
CASES = {
    "sleep_reml": ("Reaction ~ Days + (Days | Subject)", True),
    "sleep_ml": ("Reaction ~ Days + (Days | Subject)", False),
    "sleep_uncorr": ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", True),
    "sleep_int": ("Reaction ~ Days + (1 | Subject)", True),
    "sleep_quad": ("Reaction ~ Days + Days2 + (Days + Days2 | Subject)", True),
    "als_reml": (ALS, True),
    "noise_int": ("y ~ 1 + (1 | g)", True),
}


@pytest.fixture(scope="module")
def sleep_fit(sleepstudy) -> LinearMixedModel:
    return LinearMixedModel("Reaction ~ Days + (Days | Subject)").fit(sleepstudy)


def lme4_printout(name: str, file: str = "lme4_summary_print.Rout") -> list[str]:
    """lme4's lines for one case: the class tag, ``Data:``/``Control:`` lines (R call
    details) and the optimiser's report after the tables left out, trailing blanks cut;
    lmerTest's title (wrapped by R, with its class tag) on one line."""
    text = (REFERENCE / file).read_text()
    block = text.split(f"==== {name}\n", 1)[1].split("==== end\n", 1)[0]
    raw = block.splitlines()
    if "lmertest" in file:
        at = next(i for i, line in enumerate(raw) if line.startswith("Formula:"))
        title = " ".join(line.strip() for line in raw[:at])
        title = re.sub(r"\s*\[\s*lmerModLmerTest\]", "", title).replace(" .", ".")
        raw = [title, *raw[at:]]
    lines: list[str] = []
    for line in raw:
        if line.startswith(("   Data:", "Control:")):
            continue
        if line.startswith("    ") and lines[-1].startswith("Formula:"):
            lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"  # R's deparse wraps
            continue
        if line.startswith("optimizer ("):  # lme4's warnings block: not compared
            break
        lines.append(line.replace(" ['lmerMod']", "").rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _data(name: str, sleepstudy: pd.DataFrame) -> pd.DataFrame:
    if name.startswith("als"):
        als = pd.read_csv(REFERENCE / "als_sim.csv", dtype={"subject_id": str})
        return als.assign(
            frs=als.pop("alsfrs_r_total"),
            onset_spinal=(als["onset_site"] == "spinal").astype(float),
            onset_other=(als["onset_site"] == "other").astype(float),
        )
    if name == "noise_int":
        return pd.DataFrame(
            {
                "y": [1, -1, 0, 2, -2, 0, 0.5, -0.5, 0, 1.5, -1.5, 0],
                "g": [g for g in "abcd" for _ in range(3)],
            }
        )
    return sleepstudy.assign(Days2=(sleepstudy["Days"] - 4.5) ** 2 / 10)


@pytest.mark.parametrize("name", list(CASES))
def test_lmm_summary_is_lme4s_printout(name, sleepstudy):
    formula, reml = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # noise_int: singular fit warning
        m = LinearMixedModel(formula, reml=reml).fit(_data(name, sleepstudy))
    s = m.summary(ddf=None)
    assert isinstance(s, MixedSummary) and isinstance(s, Summary)
    ours = str(s).splitlines()
    expected = lme4_printout(name)
    assert ours[: len(expected)] == expected
    # our notes replace lme4's optimiser report
    assert ours[len(expected) :] == NOTES.get(name, [])


@pytest.mark.parametrize("name", list(CASES))
def test_lmm_summary_is_lmertests_printout(name, sleepstudy):
    """The default summary: lmerTest's, Satterthwaite df, p-values and stars."""
    formula, reml = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LinearMixedModel(formula, reml=reml).fit(_data(name, sleepstudy))
    ours = str(m.summary()).splitlines()
    expected = lme4_printout(name, "lmertest_summary_print.Rout")
    assert len(ours) >= len(expected)
    for mine, theirs in zip(ours, expected, strict=False):
        if mine != theirs:
            # the df's last printed decimal: both are numerical derivatives (lmerTest's
            # numDeriv and ours agree to 1e-7 relative), so the layout must be the
            # same and the numbers within 1e-6
            a, b = mine.split(), theirs.split()
            assert len(mine) == len(theirs) and len(a) == len(b), (mine, theirs)
            for x, y in zip(a, b, strict=True):
                assert x == y or float(x) == pytest.approx(float(y), rel=1e-6)
    assert ours[len(expected) :] == NOTES.get(name, [])


def test_lmm_summary_sleepstudy_text_exact(sleep_fit):
    # the whole printout, spelled out (lme4_summary_print.Rout, sleep_reml)
    assert str(sleep_fit.summary(ddf=None)) == "\n".join(
        [
            "Linear mixed model fit by REML",
            "Formula: Reaction ~ Days + (Days | Subject)",
            "",
            "REML criterion at convergence: 1743.6",
            "",
            "Scaled residuals:",
            "    Min      1Q  Median      3Q     Max",
            "-3.9536 -0.4634  0.0231  0.4634  5.1793",
            "",
            "Random effects:",
            " Groups   Name        Variance Std.Dev. Corr",
            " Subject  (Intercept) 612.09   24.740",
            "          Days         35.07    5.922   0.07",
            " Residual             654.94   25.592",
            "Number of obs: 180, groups:  Subject, 18",
            "",
            "Fixed effects:",
            "            Estimate Std. Error t value",
            "(Intercept)  251.405      6.825  36.838",
            "Days          10.467      1.546   6.771",
            "",
            "Correlation of Fixed Effects:",
            "     (Intr)",
            "Days -0.138",
        ]
    )


def test_lmm_summary_tables_keep_numbers(sleep_fit):
    s = sleep_fit.summary()
    # the tables are unchanged numbers with the model's names; only the text is lme4's
    assert list(s.tables["fixed"].index) == ["Intercept", "Days"]
    assert s.tables["random"].loc[("Subject", "Intercept"), "variance"] == (
        pytest.approx(612.0900951, rel=1e-5)
    )
    assert s.fixed_corr.loc["Days", "Intercept"] == pytest.approx(-0.1375, abs=1e-4)


def test_lmm_summary_formulaic_names(cohort):
    m = LinearMixedModel(
        "frs ~ months * onset_site + age_at_onset + (months | subject_id)"
    ).fit(cohort)
    lines = str(m.summary()).splitlines()
    at = lines.index("Random effects:")
    assert lines[at + 1] == " Groups     Name        Variance Std.Dev. Corr"
    assert lines[at + 5] == f"Number of obs: {m.n_obs_}, groups:  subject_id, 120"
    assert lines[at + 11].startswith("onset_site[T.other]           2.03161")
    # 7 fixed effects: R's abbreviate() names (checked in R 4.2.2) and its wrapping of
    # the correlation matrix at 80 characters
    at = lines.index("Correlation of Fixed Effects:")
    assert lines[at + 1].split() == [
        "(Intr)",
        "months",
        "onst_st[T.t]",
        "onst_st[T.s]",
        "ag_t_n",
    ]
    assert [line.split()[0] for line in lines[at + 2 : at + 8]] == [
        "months",
        "onst_st[T.t]",
        "onst_st[T.s]",
        "age_at_onst",
        "mnths:nst_st[T.t]",
        "mnths:nst_st[T.s]",
    ]
    assert lines[at + 8].split() == ["mnths:nst_st[T.t]"]
    assert len(lines[at + 1]) < 80
    assert not any(re.search(r"\bgroup\s+name\b", line) for line in lines)


def test_r_format_matches_r():
    # format(c(...), digits = 4) in R 4.2.2
    assert r_format([251.40510485, 10.46728596, 6.82455714, 1.54578896], 4) == [
        "251.405",
        " 10.467",
        "  6.825",
        "  1.546",
    ]
    assert r_format([0.0000123, 45.6], 4) == ["1.23e-05", "4.56e+01"]
    assert r_format([9.9996, 1.0], 4) == ["10", " 1"]
    assert r_format([-876.0, 1763.9, 174.0]) == ["-876.0", "1763.9", " 174.0"]
    assert r_format([0.5, np.nan], 4) == ["0.5", " NA"]
    assert r_format([1.0, 0.07], nsmall=2) == ["1.00", "0.07"]
    # format.pval(c(0.000367, 0.807, 1e-20), digits = 3)
    assert _format_pval([0.000367, 0.807, 1e-20], 3) == [
        "0.000367",
        "0.807000",
        "< 2e-16",
    ]
    assert _format_pval([1e-20], 3) == ["<2e-16"]


def test_r_abbreviate_matches_r():
    # abbreviate(x, 6) and abbreviate(x, 11) in R 4.2.2
    names = ["(Intercept)", "Days", "months:onset_site[T.spinal]", "ab cd ef gh ij"]
    assert r_abbreviate(names, 6) == ["(Intr)", "Days", "m:_[T.", "abcegi"]
    assert r_abbreviate(names, 11) == [
        "(Intercept)",
        "Days",
        "mnths:_[T.]",
        "abcdefghij",
    ]
    # duplicates: R raises the length of the clashing ones
    assert r_abbreviate(["abcdefgh", "abcdefgx"], 4) == ["abcdfgh", "abcdfgx"]


def test_generic_summary_has_no_index_header_and_one_layout_per_column():
    df = pd.DataFrame(
        {
            "variance": [612.0900951, 35.0716644, 654.9410077],
            "std_dev": [24.74, 5.92, 25.59],
        },
        index=pd.MultiIndex.from_tuples(
            [("Subject", "Intercept"), ("", "Days"), ("Residual", "")],
            names=["group", "name"],
        ),
    )
    assert format_frame(df) == [
        "                   variance std_dev",
        "Subject  Intercept   612.09   24.74",
        "         Days         35.07    5.92",
        "Residual             654.94   25.59",
    ]


def test_mmrm_summary_columns_share_decimals():
    trial = pd.read_csv(REFERENCE / "mmrm_trial.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MMRM("chg ~ visit * arm + baseline_total", covariance="ar1").fit(trial)
    text = str(m.summary())
    block = text.split("Fixed effects (Satterthwaite df):\n", 1)[1].split("\n\n")[0]
    rows = block.splitlines()[1:]
    for j in (1, 2, 4, -2, -1):  # estimate, std_error, t, ci_lower, ci_upper
        # (from the right for the intervals: a p-value "< 2e-16" is two words)
        decimals = {len(r.split()[j].split(".")[1]) for r in rows}
        assert len(decimals) == 1, (j, decimals)
    lines = text.splitlines()
    assert not any(line.split() == ["visit"] for line in lines)  # no index-name line
    # every number to 4 significant digits at least, the column's decimals for all
    assert rows[0] == (
        "Intercept                  -3.65370   1.95701 207.8  -1.8670   0.0633 "
        "-7.51183   0.2044"
    )
    assert rows[5] == (
        "baseline_total              0.04543   0.05013 203.7   0.9063   0.3659 "
        "-0.05341   0.1443"
    )
