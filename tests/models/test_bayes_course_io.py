"""DiseaseCourseModel.save / load: one netCDF file, every result restored exactly.

Quick tier: files of another kind (text, zip, pickle bytes, a netCDF file without
alsprog's config) and an unfitted model, no sampling.  A module fixture samples one
tiny fit (slow) and saves it; the roundtrip compares every result of the loaded
model with the original's (same draws, same seeds: equal bit for bit), and forged
copies of the file (written by ArviZ/xarray, never unpickled) check that each
refusal is a SavedModelError naming the file and the field.  A tiny
BayesianTrajectoryModel file checks that each model names the other's file.
"""

from __future__ import annotations

import copy
import json
import pickle
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from alsprog.errors import ConvergenceWarning, NotFittedError, SavedModelError
from alsprog.models.bayes._course import DiseaseCourseModel
from alsprog.simulate import simulate_disease_course

THREE = ["alsfrs_r_bulbar", "alsfrs_r_gross_motor", "fa_cst_left"]
HELD = ["P0029", "P0030"]


# ---------------------------------------------------------------- quick tier
def _text(p):
    p.write_text("subject_id,months\nP1,0\n")


def _zip(p):
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("a.npy", b"\x93NUMPY")


def _pickle(p):
    p.write_bytes(pickle.dumps({"model": "DiseaseCourseModel"}))  # never loaded


@pytest.mark.parametrize(
    ("write", "match"),
    [
        (_text, r"cannot be read: it is a text file \(starts 'subject_id,months'\)"),
        (
            _zip,
            r"cannot be read: it is a zip archive \(\.npz\).*LinearMixedModel\.load",
        ),
        (
            _pickle,
            r"cannot be read: it is a Python pickle \(alsprog never loads pickles",
        ),
        (lambda p: p.write_bytes(b""), r"cannot be read: it is an empty file"),
        (lambda p: None, r"no such file"),
    ],
)
def test_load_names_a_file_of_another_kind(tmp_path, write, match):
    path = tmp_path / "model.nc"
    write(path)
    with pytest.raises(SavedModelError, match=r"model\.nc: " + match):
        DiseaseCourseModel.load(path)


def test_load_refuses_a_netcdf_file_without_config(tmp_path):
    import h5netcdf

    with h5netcdf.File(tmp_path / "x.nc", "w") as f:
        g = f.create_group("posterior")
        g.dimensions["draw"] = 3
        g.create_variable("t0", ("draw",), "f8", data=np.zeros(3))
    with pytest.raises(
        SavedModelError,
        match=r"x\.nc: field 'alsprog' missing .*written by DiseaseCourseModel\.save",
    ):
        DiseaseCourseModel.load(tmp_path / "x.nc")


def test_save_needs_a_fit(tmp_path):
    with pytest.raises(NotFittedError, match="DiseaseCourseModel is not fitted"):
        DiseaseCourseModel(THREE).save(tmp_path / "m.nc")
    assert not list(tmp_path.iterdir())


def test_file_suffix_is_netcdf():
    assert DiseaseCourseModel.file_suffix == ".nc"


def test_a_saved_default_loads_as_the_default_itself():
    from alsprog.models.bayes._course_io import _with_defaults

    saved = {"outcomes": ["a"], "offsets": [], "chains": 4, "target_accept": 0.8}
    back = _with_defaults(DiseaseCourseModel, saved)
    assert back["offsets"] == () and isinstance(back["offsets"], tuple)
    assert back["outcomes"] == ["a"] and back["chains"] == 4
    # a value other than the default keeps its JSON form
    assert _with_defaults(DiseaseCourseModel, {"offsets": ["a"]}) == {"offsets": ["a"]}
    # a model saved with its defaults has the same parameters after loading
    m = DiseaseCourseModel(["alsfrs_r_bulbar"])
    as_json = json.loads(json.dumps(m.get_params()))
    assert as_json["offsets"] == []
    back = DiseaseCourseModel(**_with_defaults(DiseaseCourseModel, as_json))
    assert back.get_params() == m.get_params()


# ---------------------------------------------------------------- a tiny fit
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A fitted model, its held-out patients and the file it saved."""
    sim = simulate_disease_course(30, outcomes=THREE, seed=7)
    held = sim.visits["subject_id"].isin(HELD)
    model = DiseaseCourseModel(
        THREE,
        offsets=("fa_cst_left",),
        bounds={"fa_cst_left": (0.55, 0.45)},
        chains=2,
        draws=100,
        tune=100,
        seed=4,
        progress=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(sim.visits[~held])
    path = tmp_path_factory.mktemp("course") / "model.nc"
    model.save(path)
    return model, sim.visits[held], sim.visits[~held], path


@pytest.fixture(scope="module")
def loaded(saved):
    return DiseaseCourseModel.load(saved[3])


@pytest.mark.slow
def test_roundtrip_restores_the_fitted_state(saved, loaded):
    m, b = saved[0], loaded
    assert not list(saved[3].parent.glob(".*.tmp"))  # the write was atomic
    # JSON has lists, not tuples: the offsets come back as a list
    assert b.get_params()["offsets"] == ["fa_cst_left"]
    assert {**b.get_params(), "offsets": ("fa_cst_left",)} == m.get_params()
    assert b.get_params()["bounds"] == {"fa_cst_left": (0.55, 0.45)}
    for name in ("n_obs_", "n_subjects_", "n_dropped_", "reference_time_"):
        assert getattr(b, name) == getattr(m, name), name
    assert b.bounds_ == m.bounds_
    assert b.sampling_seconds_ == m.sampling_seconds_
    assert b.converged_ is m.converged_
    assert b.diagnostics_ == pytest.approx(m.diagnostics_, nan_ok=True, rel=0)
    pd.testing.assert_frame_equal(b.population_, m.population_)
    # the posterior and the sampler statistics, values and coordinates
    assert b.idata_.groups() == m.idata_.groups() == ["posterior", "sample_stats"]
    assert b.idata_.posterior.equals(m.idata_.posterior)
    assert b.idata_.sample_stats.equals(m.idata_.sample_stats)
    assert b.idata_.sample_stats.attrs == m.idata_.sample_stats.attrs
    assert "alsprog" not in b.idata_.attrs
    # the prepared data, field by field
    for field in m._data.__dataclass_fields__:
        x, y = getattr(b._data, field), getattr(m._data, field)
        if isinstance(y, np.ndarray):
            assert x.dtype == y.dtype, field
            assert_array_equal(x, y, strict=True, err_msg=field)
        else:
            assert x == y, field
    assert b._draws.keys() == m._draws.keys()
    for key in m._draws:
        assert_array_equal(b._draws[key], m._draws[key], strict=True)


@pytest.mark.slow
def test_roundtrip_gives_the_same_results(saved, loaded):
    m, b = saved[0], loaded
    held, fitted = saved[1], saved[2]
    for level in (0.9, 0.5):
        sb, sm = b.summary(level), m.summary(level)
        assert str(sb) == str(sm)
        for name in sm.tables:
            pd.testing.assert_frame_equal(sb.tables[name], sm.tables[name])
    pd.testing.assert_frame_equal(b.patient_stage(), m.patient_stage())
    pd.testing.assert_frame_equal(
        b.patient_stage(30.0, subjects=["P0003"]),
        m.patient_stage(30.0, subjects=["P0003"]),
    )
    for threshold in (0.5, 0.2):
        ob, om = b.decline_order(threshold), m.decline_order(threshold)
        for part in ("times", "pairwise", "orders"):
            pd.testing.assert_frame_equal(getattr(ob, part), getattr(om, part))
    for scale in ("normalised", "raw"):
        pd.testing.assert_frame_equal(
            b.population_curves(scale=scale), m.population_curves(scale=scale)
        )
    for interval, outcomes in (("confidence", None), ("prediction", THREE)):
        kw = {
            "subjects": ["P0001", "P0010"],
            "interval": interval,
            "outcomes": outcomes,
            "seed": 3,
        }
        pd.testing.assert_frame_equal(
            b.subject_trajectories([0.0, 12.0, 30.0], **kw),
            m.subject_trajectories([0.0, 12.0, 30.0], **kw),
        )
    rows = fitted.iloc[:10]
    pd.testing.assert_series_equal(b.predict(rows), m.predict(rows))
    pd.testing.assert_series_equal(
        b.for_outcome("fa_cst_left").predict(rows),
        m.for_outcome("fa_cst_left").predict(rows),
    )
    pd.testing.assert_frame_equal(b.predict_outcomes(rows), m.predict_outcomes(rows))
    kw = {"n_draws": 40, "n_importance": 50, "seed": 5}
    pd.testing.assert_frame_equal(b.forecast(held, **kw), m.forecast(held, **kw))


@pytest.mark.slow
def test_saved_file_layout_and_config(saved):
    import arviz as az

    m, path = saved[0], saved[3]
    with az.rc_context({"data.load": "eager"}):
        idata = az.from_netcdf(str(path))
    assert idata.groups() == [
        "posterior",
        "sample_stats",
        "observed_data",
        "constant_data",
    ]
    cfg = json.loads(idata.attrs["alsprog"])
    assert cfg["model"] == "DiseaseCourseModel"
    assert cfg["params"]["seed"] == 4 and cfg["params"]["offsets"] == ["fa_cst_left"]
    assert cfg["params"]["bounds"] == {"fa_cst_left": [0.55, 0.45]}
    assert set(cfg["params"]) == set(m.get_params(deep=False))
    c = idata.constant_data
    d = m._data
    assert_array_equal(c["subject_index"].values, d.s)
    assert_array_equal(c["outcome_index"].values, d.k)
    assert_array_equal(c["time"].values, d.t)
    assert_array_equal(idata.observed_data["y"].values, d.y)
    assert int(c["n_dropped"].values) == 0
    assert idata.sample_stats.attrs["sampling_time"] == m.sampling_seconds_


@pytest.mark.slow
def test_generator_seed_is_saved_as_null(saved, tmp_path):
    import arviz as az

    m = copy.copy(saved[0])
    m.seed = np.random.default_rng(0)
    m.save(tmp_path / "g.nc")
    cfg = json.loads(az.from_netcdf(str(tmp_path / "g.nc")).attrs["alsprog"])
    assert cfg["params"]["seed"] is None
    assert DiseaseCourseModel.load(tmp_path / "g.nc").seed is None


def _forge(src, dst, *, params=None, config=None, edit=None):
    """Copy a saved file through ArviZ, changing its config or its groups."""
    import arviz as az

    with az.rc_context({"data.load": "eager"}):
        idata = az.from_netcdf(str(src))
    cfg = json.loads(idata.attrs["alsprog"])
    cfg["params"].update(params or {})
    cfg.update(config or {})
    idata.attrs["alsprog"] = json.dumps(cfg)
    if edit is not None:
        edit(idata)
    idata.to_netcdf(str(dst))


def _set(group, name, fn):
    def edit(idata):
        ds = idata[group]
        idata[group] = ds.assign({name: fn(ds[name])})

    return edit


def _copy(group, name, new):
    def edit(idata):
        idata[group] = idata[group].assign({new: idata[group][name]})

    return edit


def _drop(group, name):
    def edit(idata):
        idata[group] = idata[group].drop_vars(name)

    return edit


def _delete_group(name):
    def edit(idata):
        del idata[name]

    return edit


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "match"),
    [
        # the config: class, version, each parameter's JSON type and range
        ({"config": {"version": "0.0.1"}}, r"field 'version' is '0\.0\.1'"),
        ({"config": {"model": "LinearMixedModel"}}, r"field 'model' is 'Linear"),
        ({"config": {"extra": 1}}, r"field 'extra' is not part of a DiseaseCourse"),
        ({"params": {"chains": "2"}}, r"field 'params\.chains' is '2'; expected int"),
        ({"params": {"strict": 1}}, r"field 'params\.strict' is 1; expected bool"),
        ({"params": {"outcomes": "x"}}, r"field 'params\.outcomes' is 'x'; expected"),
        (
            {"params": {"outcomes": [1, 2]}},
            r"field 'params\.outcomes' is \[1, 2\]; expected",
        ),
        ({"params": {"seed": -1}}, r"field 'params\.seed' is -1"),
        (
            {"params": {"bounds": {"fa_cst_left": [1]}}},
            r"field 'params\.bounds\.fa_cst",
        ),
        (
            {"params": {"bounds": {"fa_cst_left": [0.5, 0.5]}}},
            r"field 'params\.bounds': `bounds\['fa_cst_left'\]` must be two",
        ),
        (
            {"params": {"target_accept": 1.5}},
            r"field 'params\.target_accept': `target_accept` must be",
        ),
        ({"params": {"draws": 0}}, r"field 'params\.draws': `draws` must be"),
        ({"params": {"outcome": "fvc"}}, r"field 'params\.outcome': `outcome` must"),
        ({"params": {"offsets": ["fvc"]}}, r"field 'params\.offsets' names 'fvc'"),
        ({"params": {"nope": 1}}, r"field 'params\.nope' is not a parameter"),
        # the layout: groups, variables, dimensions and sizes
        ({"params": {"draws": 99}}, r"field 'posterior\.draw' has size 100 but para"),
        (
            {"params": {"outcomes": THREE[:2], "offsets": []}},
            r"field 'posterior\.outcome' has size 3 but params\.outcomes gives 2",
        ),
        ({"edit": _delete_group("constant_data")}, r"field 'constant_data' is missing"),
        ({"edit": _delete_group("sample_stats")}, r"field 'sample_stats' is missing"),
        ({"edit": _drop("posterior", "t0")}, r"field 'posterior\.t0' is missing"),
        ({"edit": _drop("observed_data", "y")}, r"field 'observed_data\.y' is missing"),
        (
            {"edit": _drop("sample_stats", "diverging")},
            r"field 'sample_stats\.diverging' is missing",
        ),
        (
            {"edit": _copy("posterior", "t0", "extra")},
            r"field 'posterior\.extra' is not a variable",
        ),
        (
            {"edit": _set("posterior", "t0", lambda x: x.astype(str))},
            r"field 'posterior\.t0' has a type alsprog does not write",
        ),
        (
            {"edit": _set("constant_data", "time", lambda x: x.rename(cell="row"))},
            r"field 'constant_data\.time' has dimensions",
        ),
        # the values
        (
            {"edit": _set("posterior", "t0", lambda x: x.where(x.draw != 3))},
            r"field 'posterior\.t0' holds values that are not finite numbers",
        ),
        (
            {"edit": _set("posterior", "sigma", lambda x: -x)},
            r"field 'posterior\.sigma' holds -0\.\d+; a scale must be positive",
        ),
        (
            {"edit": _set("constant_data", "subject_index", lambda x: x + 100)},
            r"field 'constant_data\.subject_index' holds a value outside \[0, 28\)",
        ),
        (
            {"edit": _set("constant_data", "outcome_index", lambda x: x * 0 - 1)},
            r"field 'constant_data\.outcome_index' holds a value outside \[0, 3\)",
        ),
        (
            {
                "edit": _set(
                    "observed_data", "y", lambda x: x.where(x.cell != 2, np.inf)
                )
            },
            r"field 'observed_data\.y' holds values that are not finite",
        ),
        (
            {"edit": _set("constant_data", "n_dropped", lambda x: x - 5)},
            r"field 'constant_data\.n_dropped' is -5",
        ),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, str) else None,
)
def test_load_refuses_a_forged_file(saved, tmp_path, change, match):
    _forge(saved[3], tmp_path / "edited.nc", **change)
    with pytest.raises(SavedModelError, match=r"edited\.nc: " + match):
        DiseaseCourseModel.load(tmp_path / "edited.nc")


@pytest.mark.slow
def test_load_refuses_an_extra_group_and_a_huge_variable(saved, tmp_path):
    import shutil

    import h5netcdf
    import xarray as xr

    def add_group(idata):
        idata.add_groups({"log_likelihood": xr.Dataset({"y": ("cell", [0.0])})})

    _forge(saved[3], tmp_path / "edited.nc", edit=add_group)
    with pytest.raises(
        SavedModelError, match=r"edited\.nc: field 'log_likelihood' is not a group"
    ):
        DiseaseCourseModel.load(tmp_path / "edited.nc")
    huge = tmp_path / "huge.nc"
    shutil.copyfile(saved[3], huge)
    with h5netcdf.File(huge, "a") as f:
        g = f.groups["posterior"]
        g.dimensions["huge"] = 10**11
        g.create_variable("huge_var", ("huge",), "f8", chunks=(4096,))
    with pytest.raises(
        SavedModelError, match=r"huge\.nc: the variables declare 8000\d+ bytes"
    ):
        DiseaseCourseModel.load(huge)


@pytest.mark.slow
def test_load_refuses_inconsistent_coordinates(saved, tmp_path):
    def rename(idata):
        idata.posterior = idata.posterior.assign_coords(outcome=["a", "b", "c"])

    _forge(saved[3], tmp_path / "edited.nc", edit=rename)
    with pytest.raises(SavedModelError, match=r"field 'posterior\.outcome' is \['a'"):
        DiseaseCourseModel.load(tmp_path / "edited.nc")

    def reverse(idata):
        idata.posterior = idata.posterior.assign_coords(
            subject_id=idata.posterior.subject_id.values[::-1]
        )

    _forge(saved[3], tmp_path / "edited.nc", edit=reverse)
    with pytest.raises(
        SavedModelError, match=r"field 'posterior\.subject_id' is not in"
    ):
        DiseaseCourseModel.load(tmp_path / "edited.nc")


# ---------------------------------------------------------------- the other model
@pytest.fixture(scope="module")
def trajectory_file(tmp_path_factory):
    """A tiny BayesianTrajectoryModel file."""
    from alsprog.models.bayes._model import BayesianTrajectoryModel

    rng = np.random.default_rng(0)
    sid = np.repeat([f"S{i}" for i in range(12)], 4)
    months = np.tile([0.0, 3.0, 6.0, 9.0], 12)
    frs = 40.0 - 0.8 * months + rng.normal(0.0, 2.0, len(months))
    df = pd.DataFrame({"subject_id": sid, "months": months, "frs": frs})
    m = BayesianTrajectoryModel(
        formula="frs ~ months", chains=1, draws=30, tune=30, seed=1, progress=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(df)
    path = tmp_path_factory.mktemp("bayes") / "trajectory.nc"
    m.save(path)
    return path


@pytest.mark.slow
def test_each_bayesian_model_names_the_others_file(saved, trajectory_file):
    from alsprog.models.bayes._model import BayesianTrajectoryModel

    with pytest.raises(
        SavedModelError,
        match=r"trajectory\.nc: field 'model' is 'BayesianTrajectoryModel', expected "
        r"'DiseaseCourseModel': the file holds a BayesianTrajectoryModel; load it "
        r"with BayesianTrajectoryModel\.load\.",
    ):
        DiseaseCourseModel.load(trajectory_file)
    with pytest.raises(
        SavedModelError,
        match=r"model\.nc: field 'model' is 'DiseaseCourseModel', expected "
        r"'BayesianTrajectoryModel': the file holds a DiseaseCourseModel; load it "
        r"with DiseaseCourseModel\.load\.",
    ):
        BayesianTrajectoryModel.load(saved[3])


@pytest.mark.slow
def test_numeric_subject_ids_come_back(saved, tmp_path):
    """Integer subject ids (a coordinate of numbers, not text) load as numbers."""

    def renumber(idata):
        n = idata.posterior.sizes["subject_id"]
        ids = np.arange(101, 101 + n)
        idata.posterior = idata.posterior.assign_coords(subject_id=ids)

    _forge(saved[3], tmp_path / "ids.nc", edit=renumber)
    b = DiseaseCourseModel.load(tmp_path / "ids.nc")
    stage = b.patient_stage()
    assert stage["subject_id"].tolist() == list(range(101, 129))
    assert_array_equal(stage["stage_mean"], saved[0].patient_stage()["stage_mean"])
    assert_array_equal(
        b.patient_stage(subjects=[110])["stage_mean"],
        saved[0].patient_stage(subjects=["P0010"])["stage_mean"],
    )
