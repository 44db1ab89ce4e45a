"""Hostile formulas through every door: nothing in a formula is ever run as Python.

Each payload would create a marker file if any part of it were evaluated; every case
asserts the error class, that the message names the offending term, and that the
marker does not exist afterwards.  A control test shows the payloads are live: handed
to formulaic directly, they do create the marker.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alsprog._formula_text import TRANSFORMS, check_formula
from alsprog.errors import (
    ConfigError,
    ModelSpecificationError,
    ModelSpecificationWarning,
)

# {M} is replaced by the marker path, quoted.  Each template is a whole formula.
PAYLOADS = {
    "brace_block": "alsfrs_r_total ~ months + {{__import__('pathlib').Path({M}).touch()}}",
    "brace_via_column": "alsfrs_r_total ~ {{months.__class__.__mro__[-1].__subclasses__() and open({M}, 'w')}}",
    "I_call": "alsfrs_r_total ~ months + I(__import__('pathlib').Path({M}).touch())",
    "I_open": "alsfrs_r_total ~ months + I(open({M}, 'w'))",
    "I_lambda": "alsfrs_r_total ~ I((lambda: open({M}, 'w'))())",
    "center_exec": "alsfrs_r_total ~ center(exec(\"open({M}, 'w')\"))",
    "unknown_call": "alsfrs_r_total ~ months + open({M}, 'w')",
    "np_attr_call": "alsfrs_r_total ~ np.save({M}, months)",
    "np_chain": "alsfrs_r_total ~ np.log.__globals__['__builtins__']['open']({M}, 'w')",
    "C_contrast_code": "alsfrs_r_total ~ C(onset_site, __import__('os').system('touch ' + {M}))",
    "C_level_code": "alsfrs_r_total ~ C(onset_site, levels=[open({M}, 'w')])",
    "poly_kwarg_code": "alsfrs_r_total ~ poly(months, degree=len(open({M}, 'w').name))",
    "backtick_code": "alsfrs_r_total ~ `open({M}, 'w')`",
    "outcome_side": "{{open({M}, 'w')}} ~ months",
    "outcome_call": "open({M}, 'w') ~ months",
    "getattr_call": "alsfrs_r_total ~ getattr(months, 'to_csv')({M})",
    "dunder_attr": "alsfrs_r_total ~ center(months.__class__)",
    "comment_newline": "alsfrs_r_total ~ months #\n+ {{open({M}, 'w')}}",
    "semicolon": "alsfrs_r_total ~ months; open({M}, 'w')",
    "fullwidth_brace": "alsfrs_r_total ~ months + \uff5bopen({M}, 'w')\uff5d",
    "string_in_I": "alsfrs_r_total ~ I(eval('open(' + {M} + ', \"w\")'))",
    "subscript": "alsfrs_r_total ~ I(months[open({M}, 'w') and 0])",
}
# random-effects doors of the mixed models
MIXED_PAYLOADS = {
    "random_lhs": "alsfrs_r_total ~ months + ({{open({M}, 'w')}} | subject_id)",
    "random_group": "alsfrs_r_total ~ months + (1 | {{open({M}, 'w')}})",
    "random_I": "alsfrs_r_total ~ months + (I(open({M}, 'w')) | subject_id)",
}


def _payload(template: str, marker: Path) -> str:
    return template.format(M=repr(str(marker)))


@pytest.fixture(scope="module")
def table():
    from alsprog.data import assemble
    from alsprog.simulate import simulate_cohort

    cohort = simulate_cohort(40, 0, seed=11)
    return assemble(cohort.visits, cohort.subjects)


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a formula ran code: the marker file was created"


def _with_random(formula: str) -> str:
    return f"{formula} + (months | subject_id)" if "|" not in formula else formula


# ------------------------------------------------------------------ the threat
def test_payloads_are_live_when_formulaic_sees_them(tmp_path, table):
    """Control: without alsprog's check, formulaic runs the payload."""
    from formulaic import model_matrix

    marker = tmp_path / "LIVE"
    formula = _payload(PAYLOADS["brace_block"], marker)
    try:
        model_matrix(formula, table)
    except Exception:
        pass
    assert marker.exists()


# ------------------------------------------------------------- check_formula
@pytest.mark.parametrize("name", sorted(PAYLOADS) + sorted(MIXED_PAYLOADS))
def test_check_formula_refuses(name, marker):
    template = {**PAYLOADS, **MIXED_PAYLOADS}[name]
    formula = _payload(template, marker)
    with pytest.raises(ModelSpecificationError, match="is refused") as info:
        check_formula(formula, kind="mixed")
    assert "in the term" in str(info.value) or "outcome" in str(info.value)


@pytest.mark.parametrize(
    ("formula", "term"),
    [
        ("y ~ x + {x.__class__}", "{x.__class__}"),
        ("y ~ x + I(__import__('os'))", "I(__import__('os'))"),
        ("y ~ x + eval(x)", "eval(x)"),
        ("y ~ x + C(g, __import__)", "C(g, __import__)"),
        ("y ~ x + poly(x, evil=1)", "poly(x, evil=1)"),
    ],
)
def test_message_names_the_term(formula, term):
    with pytest.raises(ModelSpecificationError) as info:
        check_formula(formula)
    assert f"in the term {term!r}" in str(info.value)


ACCEPTED = [
    "alsfrs_r_total ~ months * delta_fs + (months | subject_id)",
    "alsfrs_r_total ~ 0 + months + (0 + months || subject_id)",
    "alsfrs_r_total ~ months + I(months ** 2) + (1 | subject_id)",
    "alsfrs_r_total ~ poly(months, 2) + (1 | subject_id)",
    "alsfrs_r_total ~ poly(months, degree=2, raw=True) + (1 | subject_id)",
    "alsfrs_r_total ~ bs(months, df=4) + (1 | subject_id)",
    "alsfrs_r_total ~ 0 + cr(months, df=3) + (1 | subject_id)",
    "alsfrs_r_total ~ months + C(onset_site, Treatment('spinal')) + (1 | subject_id)",
    "alsfrs_r_total ~ months + C(onset_site, levels=['spinal', 'bulbar']) + (1 | subject_id)",
    "alsfrs_r_total ~ months + center(age_at_onset) + scale(delta_fs) + (1 | subject_id)",
    "alsfrs_r_total ~ np.log(months + 1) + log(delta_fs) + sqrt(months) + (1 | subject_id)",
    "alsfrs_r_total ~ months + I((months - 6) * (months > 6)) + (months | subject_id)",
    "alsfrs_r_total ~ months:onset_site + (1 | subject_id)",
    "alsfrs_r_total ~ (months + delta_fs + onset_site) ** 2 + (1 | subject_id)",
    "alsfrs_r_total ~ months - 1 + (1 | subject_id)",
    "I(48 - alsfrs_r_total) ~ months + (1 | subject_id)",
]


@pytest.mark.filterwarnings("ignore::alsprog.errors.ConvergenceWarning")
@pytest.mark.parametrize("formula", ACCEPTED)
def test_ordinary_formulas_fit(formula, table):
    """Everything the formula language offers users still works, with the designs
    formulaic builds for it."""
    from alsprog.models import LinearMixedModel

    m = LinearMixedModel(formula).fit(table)
    assert np.isfinite(m.llf_)


def test_every_transform_is_documented():
    assert {
        "center",
        "scale",
        "log",
        "exp",
        "sqrt",
        "poly",
        "bs",
        "cr",
        "C",
        "I",
    } <= set(TRANSFORMS)


def test_unknown_columns_listed_at_once():
    with pytest.raises(ModelSpecificationError, match=r"unknown column\(s\) 'a', 'b'"):
        check_formula("y ~ a + b + x", columns=["y", "x"])


def test_dotted_name_must_be_a_column():
    assert check_formula("y ~ fa.cst", columns=["y", "fa.cst"]).variables == (
        "y",
        "fa.cst",
    )
    with pytest.raises(ModelSpecificationError, match="'x.real' is not a column"):
        check_formula("y ~ x.real", columns=["y", "x"])


@pytest.mark.parametrize("bad", [None, 3, b"y ~ x", ["y ~ x"]])
def test_non_string_formula(bad):
    with pytest.raises(ModelSpecificationError, match="must be a string"):
        check_formula(bad)


def test_overlong_formula():
    with pytest.raises(ModelSpecificationError, match="at most 2000"):
        check_formula("y ~ " + " + ".join(["x"] * 1000))


# ---------------------------------------------------------------- Python API
@pytest.mark.parametrize("name", sorted(PAYLOADS) + sorted(MIXED_PAYLOADS))
def test_lmm_fit(name, table, marker):
    from alsprog.models import LinearMixedModel

    formula = _with_random(_payload({**PAYLOADS, **MIXED_PAYLOADS}[name], marker))
    before = pd.util.hash_pandas_object(table).sum()
    with pytest.raises(ModelSpecificationError):
        LinearMixedModel(formula).fit(table)
    assert pd.util.hash_pandas_object(table).sum() == before


@pytest.mark.parametrize("name", ["brace_block", "I_call", "C_contrast_code"])
def test_mmrm_fit(name, marker):
    from alsprog.models import MMRM

    df = pd.DataFrame(
        {
            "subject_id": np.repeat([f"S{i}" for i in range(8)], 2),
            "visit": ["V1", "V2"] * 8,
            "arm": np.repeat(["a", "b"] * 4, 2),
            "onset_site": "spinal",
            "months": [0.0, 3.0] * 8,
            "alsfrs_r_total": np.arange(16.0) % 7 + 30,
        }
    )
    formula = _payload(PAYLOADS[name], marker).replace("~", "~ visit * arm +", 1)
    with pytest.raises(ModelSpecificationError, match="is refused"):
        MMRM(formula, subject="subject_id", visit="visit", arm="arm").fit(df)


@pytest.mark.parametrize("name", ["brace_block", "I_call", "random_group"])
def test_joint_formula(name, table, marker):
    from alsprog.models import JointModel

    formula = _with_random(_payload({**PAYLOADS, **MIXED_PAYLOADS}[name], marker))
    with pytest.raises(ModelSpecificationError):
        JointModel(formula).fit(table)


@pytest.mark.parametrize(
    "event_formula",
    [
        "delta_fs + {{open({M}, 'w')}}",
        "delta_fs + I(open({M}, 'w'))",
        "C(onset_site, __import__('os').system('touch ' + {M}))",
        "x ~ delta_fs",
    ],
)
def test_joint_event_formula(event_formula, table, marker):
    from alsprog.models import JointModel

    ef = event_formula.format(M=repr(str(marker)))
    with pytest.raises(ModelSpecificationError, match="event_formula"):
        JointModel(
            "alsfrs_r_total ~ months + (months | subject_id)", event_formula=ef
        ).fit(table)


@pytest.mark.parametrize("kind", ["linear", "sigmoid"])
def test_bayesian_formula(kind, table, marker):
    from alsprog.models import BayesianTrajectoryModel

    formula = _payload("alsfrs_r_total ~ {{open({M}, 'w')}}", marker)
    with pytest.raises(ModelSpecificationError, match="is refused"):
        BayesianTrajectoryModel(kind, formula=formula, draws=5, tune=5).fit(table)


# -------------------------------------------------------- config and command line
def _sha(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _toml_config(folder: Path, formula: str, **extra: str) -> Path:
    model = {"type": '"mixed"', "formula": _toml_str(formula), **extra}
    text = (
        '[run]\ntitle = "hostile"\nseed = 1\n'
        '[data]\nvisits = "visits.csv"\nsubjects = "subjects.csv"\n'
        "[models.lmm]\n" + "\n".join(f"{k} = {v}" for k, v in model.items()) + "\n"
        '[forecast]\nmodels = ["lmm"]\nbaselines = ["delta_fs"]\nn_patients = 2\n'
        "[design]\nn_sims = 0\nslowing = [0.3]\n"
        "[biomarkers]\nenabled = false\n"
    )
    path = folder / "run.toml"
    path.write_text(text)
    return path


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@pytest.fixture
def data_folder(tmp_path, table):
    from alsprog.data import write_table
    from alsprog.simulate import simulate_cohort

    folder = tmp_path / "data"
    folder.mkdir()
    cohort = simulate_cohort(30, 0, seed=5)
    write_table(cohort.visits, folder / "visits.csv")
    write_table(cohort.subjects, folder / "subjects.csv")
    return folder


@pytest.mark.parametrize(
    "name", ["brace_block", "I_call", "random_lhs", "outcome_side"]
)
def test_config_check(name, data_folder, marker):
    from alsprog.report import check

    formula = _with_random(_payload({**PAYLOADS, **MIXED_PAYLOADS}[name], marker))
    cfg = _toml_config(data_folder, formula)
    before = _sha(data_folder)
    with pytest.raises(ConfigError) as info:
        check(cfg)
    msg = str(info.value)
    assert "models.lmm.formula" in msg and "is refused" in msg
    assert _sha(data_folder) == before


def test_config_run_and_cli_check(data_folder, marker, tmp_path, capsys):
    from alsprog.cli import main

    formula = _with_random(_payload(PAYLOADS["I_call"], marker))
    cfg = _toml_config(data_folder, formula)
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--check"]) == 1
    assert main(["run", str(cfg), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("is refused") >= 2 and "Traceback" not in err
    assert not out.exists()


def test_config_event_formula(data_folder, marker):
    from alsprog.report import check

    cfg = _toml_config(
        data_folder,
        "alsfrs_r_total ~ months + (months | subject_id)",
        event_formula=_toml_str(f"delta_fs + {{open({str(marker)!r}, 'w')}}"),
    )
    text = cfg.read_text().replace('type = "mixed"', 'type = "joint"')
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=r"models\.lmm\.event_formula.*is refused"):
        check(cfg)


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("forecast", "--formula"),
        ("backtest", "--formula"),
        ("forecast", "--event-formula"),
    ],
)
def test_cli_formula_options(command, option, data_folder, marker, tmp_path, capsys):
    from alsprog.cli import main
    from alsprog.data import assemble, write_table

    table = assemble(data_folder / "visits.csv", data_folder / "subjects.csv")
    long = tmp_path / "long.csv"
    write_table(table, long)
    payload = _payload(PAYLOADS["I_call"], marker)
    if option == "--formula":
        value = _with_random(payload)
    else:
        value = f"delta_fs + I(open({str(marker)!r}, 'w'))"
    if command == "forecast":
        argv = ["forecast", "--train", str(long), "--history", str(long), "--at", "6"]
        argv += ["--out", str(tmp_path / "f.csv")]
        if option == "--event-formula":
            argv += ["--model", "joint"]
    else:
        argv = ["backtest", "--data", str(long), "--models", "lmm"]
        argv += ["--out", str(tmp_path / "b.csv")]
    before = hashlib.sha256(long.read_bytes()).hexdigest()
    code = main([*argv, option, value])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "is refused" in err and "Traceback" not in err
    assert hashlib.sha256(long.read_bytes()).hexdigest() == before
    assert not (tmp_path / "f.csv").exists() and not (tmp_path / "b.csv").exists()


# ------------------------------------------------------- identifiability, constants
def test_constant_outcome(table):
    from alsprog.models import LinearMixedModel

    flat = table.assign(alsfrs_r_total=40.0)
    with pytest.raises(ModelSpecificationError, match=r"'alsfrs_r_total'.*is constant"):
        LinearMixedModel("alsfrs_r_total ~ months + (months | subject_id)").fit(flat)


def test_grouping_factor_also_fixed_warns(table):
    from alsprog.models import LinearMixedModel

    with pytest.warns(ModelSpecificationWarning, match="'subject_id' is both a fixed"):
        LinearMixedModel("alsfrs_r_total ~ months + subject_id + (1 | subject_id)").fit(
            table
        )


def test_fit_refuses_what_forecast_refuses(table):
    """fit runs the data dictionary's checks on its columns, as forecast does."""
    from alsprog.errors import DataValidationError
    from alsprog.forecast import forecast
    from alsprog.models import LinearMixedModel

    bad = table.copy()
    bad.loc[bad.index[3], "alsfrs_r_total"] = 52.0
    formula = "alsfrs_r_total ~ months + (months | subject_id)"
    with pytest.raises(DataValidationError, match="52 is outside 0-48") as fit_err:
        LinearMixedModel(formula).fit(bad)
    good = LinearMixedModel(formula).fit(table)
    with pytest.raises(DataValidationError, match="52 is outside 0-48") as fc_err:
        forecast(good, bad[bad.subject_id == bad.subject_id.iloc[3]], [24])
    assert "column alsfrs_r_total" in str(fit_err.value)
    assert "column alsfrs_r_total" in str(fc_err.value)


def test_outcome_fitted_exactly_by_fixed_effects():
    from alsprog.models import LinearMixedModel

    df = pd.DataFrame(
        {"subject_id": np.repeat(list("abcd"), 3), "months": [0.0, 3.0, 6.0] * 4}
    )
    df["alsfrs_r_total"] = 40 - df["months"]
    with pytest.raises(ModelSpecificationError, match="fit the outcome .* exactly"):
        LinearMixedModel("alsfrs_r_total ~ months + (1 | subject_id)").fit(df)


def test_fit_and_forecast_read_a_synonym_alike(table):
    """A coding the dictionary maps ('limb' -> 'spinal', with a warning) is mapped by
    fit and forecast alike, so the forecast sees no new level."""
    from alsprog.errors import DataWarning
    from alsprog.forecast import forecast
    from alsprog.models import LinearMixedModel

    coded = table.assign(onset_site=table["onset_site"].replace({"spinal": "limb"}))
    formula = "alsfrs_r_total ~ months * onset_site + (months | subject_id)"
    with pytest.warns(DataWarning, match="'limb' -> 'spinal'"):
        m = LinearMixedModel(formula).fit(coded)
    ref = LinearMixedModel(formula).fit(table)
    assert list(m.fe_params_.index) == list(ref.fe_params_.index)
    np.testing.assert_allclose(m.fe_params_, ref.fe_params_, rtol=1e-10)
    sid = coded.loc[coded.onset_site == "limb", "subject_id"].iloc[0]
    hist = coded[(coded.subject_id == sid) & (coded.months < 4)]
    with pytest.warns(DataWarning, match="'limb' -> 'spinal'"):
        a = forecast(m, hist, [12])
    b = forecast(ref, table[(table.subject_id == sid) & (table.months < 4)], [12])
    np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-10)
    assert coded["onset_site"].eq("limb").any()  # the caller's table is untouched
