"""The MMRM's keys of issue 22 in a run config: ``covariance`` (every structure
and mmrm's short names), ``method``, ``group`` and ``weights`` pass through
``alsprog run``'s config to the model; bad values and unknown columns are named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alsprog.models import MMRM
from alsprog.report import ConfigError, load_config
from alsprog.report._check import check_run, model_params


def _tables(folder: Path) -> None:
    (folder / "v.csv").write_text("subject_id,months,alsfrs_r_total\nP1,0,40\n")
    (folder / "s.csv").write_text("subject_id,group\nP1,als\n")


def _config(folder: Path, body: str) -> Path:
    _tables(folder)
    p = folder / "run.toml"
    p.write_text(
        '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n\n[models.trial]\n'
        'type = "mmrm"\nformula = "alsfrs_r_total ~ visit * arm"\n' + body
    )
    return p


@pytest.mark.parametrize(
    "covariance", ["heterogeneous_toeplitz", "ante_dependence", "toeph", "csh"]
)
def test_mmrm_keys_reach_the_model(tmp_path, covariance):
    body = f'covariance = "{covariance}"\nmethod = "ML"\ngroup = "arm"\nweights = "w"\n'
    config = load_config(_config(tmp_path, body))
    (m,) = [m for m in config.models if m.name == "trial"]
    params = model_params(config, m)
    assert params["covariance"] == covariance
    assert (params["method"], params["group"], params["weights"]) == ("ML", "arm", "w")
    model = MMRM(**params)
    model.check_params()  # the constructor takes them as given
    assert model.get_params()["group"] == "arm"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'covariance = "banded"',
            "key models.trial.covariance: 'banded' is not one of",
        ),
        (
            'method = "reml"',
            "key models.trial.method: 'reml' is not one of 'REML', 'ML'",
        ),
    ],
)
def test_bad_values_are_named(tmp_path, line, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(_config(tmp_path, line + "\n"))


def test_group_and_weights_columns_are_checked_against_the_data(tmp_path):
    config = load_config(_config(tmp_path, 'group = "site"\nweights = "w"\n'))
    problems = [str(p) for p in check_run(config, tmp_path / "out").problems]
    text = "\n".join(problems)
    assert "key models.trial.group: column 'site' is not in the data" in text
    assert "key models.trial.weights: column 'w' is not in the data" in text


def test_ddf_and_vcov_take_each_model_types_own_values(tmp_path):
    # `ddf` is a key of both the mixed model and the MMRM, with different choices
    body = 'ddf = "between-within"\nvcov = "cr2"\n'
    config = load_config(_config(tmp_path, body))
    (m,) = [m for m in config.models if m.name == "trial"]
    assert model_params(config, m)["ddf"] == "between-within"
    assert model_params(config, m)["vcov"] == "cr2"
    bad = _config(tmp_path, 'ddf = "normal"\n')
    with pytest.raises(
        ConfigError, match=r"models\.trial\.ddf: 'normal' is not one of"
    ):
        load_config(bad)
    mixed = tmp_path / "mixed.toml"
    mixed.write_text(
        '[data]\nvisits = "v.csv"\nsubjects = "s.csv"\n\n[models.lmm]\n'
        'type = "mixed"\nformula = "alsfrs_r_total ~ months + (1 | subject_id)"\n'
        'ddf = "residual"\n'
    )
    with pytest.raises(ConfigError, match=r"models\.lmm\.ddf: 'residual' is not one"):
        load_config(mixed)
