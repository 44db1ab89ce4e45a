"""`alsprog forecast` and `alsprog backtest` call the library and write CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alsprog.cli import main
from alsprog.data import assemble, write_table
from alsprog.simulate import simulate_cohort


def test_forecast_command_writes_the_library_forecasts(tmp_path, capsys):
    from alsprog.forecast import forecast
    from alsprog.models import LinearMixedModel

    c = simulate_cohort(150, seed=8)
    t = assemble(c.visits, c.subjects)
    train = t[t["subject_id"] > "P0020"]
    hist = t[(t["subject_id"] <= "P0020") & (t["months"] < 4)]
    write_table(train, tmp_path / "train.csv")
    write_table(hist, tmp_path / "hist.csv")
    out = tmp_path / "f.csv"
    code = main(
        [
            "forecast",
            "--train",
            str(tmp_path / "train.csv"),
            "--history",
            str(tmp_path / "hist.csv"),
            "--at",
            "6",
            "12",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    got = pd.read_csv(out, dtype={"subject_id": str})
    from alsprog.data import read_table

    train_r, _ = read_table(tmp_path / "train.csv", kind="long")
    hist_r, _ = read_table(tmp_path / "hist.csv", kind="long")
    m = LinearMixedModel(
        "alsfrs_r_total ~ months * (delta_fs + onset_site) + (months | subject_id)"
    ).fit(train_r)
    expect = forecast(m, hist_r, [6.0, 12.0])
    np.testing.assert_allclose(got["mean"], expect["mean"], rtol=1e-6)
    assert "20 patients" in capsys.readouterr().out


def test_forecast_command_reports_bad_history(tmp_path, capsys):
    c = simulate_cohort(80, seed=8)
    t = assemble(c.visits, c.subjects)
    write_table(t, tmp_path / "train.csv")
    hist = t[t["months"] < 4].drop(columns=["delta_fs"])
    write_table(hist, tmp_path / "hist.csv")
    code = main(
        [
            "forecast",
            "--train",
            str(tmp_path / "train.csv"),
            "--history",
            str(tmp_path / "hist.csv"),
            "--at",
            "12",
            "--out",
            str(tmp_path / "f.csv"),
        ]
    )
    assert code == 1
    assert "delta_fs" in capsys.readouterr().err
    assert not (tmp_path / "f.csv").exists()


def test_backtest_command_on_a_simulated_cohort(tmp_path, capsys):
    out = tmp_path / "bt.csv"
    code = main(
        [
            "--no-progress",
            "backtest",
            "--simulate",
            "200",
            "--models",
            "lmm",
            "delta_fs",
            "--seed",
            "3",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    res = pd.read_csv(out)
    assert set(res["model"]) == {"lmm", "delta_fs", "oracle", "true_curve"}
    assert "slope_rmsd" in capsys.readouterr().out


def test_backtest_needs_one_source(capsys):
    assert main(["backtest", "--models", "lmm"]) == 2


def test_forecast_command_with_the_joint_model(tmp_path):
    from alsprog.data import read_table
    from alsprog.forecast import forecast
    from alsprog.models import JointModel

    c = simulate_cohort(200, seed=9)
    t = assemble(c.visits, c.subjects)
    write_table(t[t["subject_id"] > "P0020"], tmp_path / "train.csv")
    write_table(t[(t["subject_id"] <= "P0020") & (t["months"] < 4)], tmp_path / "h.csv")
    out = tmp_path / "f.csv"
    args = ["forecast", "--model", "joint", "--event-formula", "delta_fs", "--at", "9"]
    args += [
        "--train",
        str(tmp_path / "train.csv"),
        "--history",
        str(tmp_path / "h.csv"),
    ]
    assert main([*args, "--out", str(out)]) == 0
    got = pd.read_csv(out, dtype={"subject_id": str})
    train_r, _ = read_table(tmp_path / "train.csv", kind="long")
    hist_r, _ = read_table(tmp_path / "h.csv", kind="long")
    jm = JointModel(
        "alsfrs_r_total ~ months * (delta_fs + onset_site) + (months | subject_id)",
        event_formula="delta_fs",
    ).fit(train_r)
    np.testing.assert_allclose(
        got["mean"], forecast(jm, hist_r, [9.0])["mean"], rtol=1e-6
    )


def test_recalibrate_option(tmp_path, capsys):
    from alsprog.data import read_table
    from alsprog.forecast import CalibratedForecaster, forecast
    from alsprog.models import LinearMixedModel

    c = simulate_cohort(300, seed=8)
    t = assemble(c.visits, c.subjects)
    write_table(t[t["subject_id"] > "P0020"], tmp_path / "train.csv")
    write_table(t[(t["subject_id"] <= "P0020") & (t["months"] < 4)], tmp_path / "h.csv")
    out = tmp_path / "f.csv"
    args = ["forecast", "--recalibrate", "band", "--at", "6", "12", "--out", str(out)]
    args += [
        "--train",
        str(tmp_path / "train.csv"),
        "--history",
        str(tmp_path / "h.csv"),
    ]
    assert main(args) == 0
    got = pd.read_csv(out, dtype={"subject_id": str})
    train_r, _ = read_table(tmp_path / "train.csv", kind="long")
    hist_r, _ = read_table(tmp_path / "h.csv", kind="long")
    lmm = LinearMixedModel(
        "alsfrs_r_total ~ months * (delta_fs + onset_site) + (months | subject_id)"
    )
    cal = CalibratedForecaster(lmm, shift=False).fit(train_r)
    expect = forecast(cal, hist_r, [6.0, 12.0])
    np.testing.assert_allclose(
        got[["mean", "lower", "upper"]], expect[["mean", "lower", "upper"]], rtol=1e-6
    )
    bt = tmp_path / "bt.csv"
    code = main(
        [
            "--no-progress",
            "backtest",
            "--simulate",
            "300",
            "--models",
            "lmm",
            "delta_fs",
            "--recalibrate",
            "shift",
            "--seed",
            "3",
            "--out",
            str(bt),
        ]
    )
    assert code == 0
    models = set(pd.read_csv(bt)["model"])
    assert {"lmm", "lmm_recalibrated", "delta_fs"} <= models
    assert "delta_fs_recalibrated" not in models
