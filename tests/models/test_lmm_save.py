"""LinearMixedModel.save / load: one .npz file, no pickle, identical results after load.

Every expectation here is the fitted model itself: a loaded model must reproduce the
saved one's numbers exactly (``check_exact``), so no external reference is needed.
"""

from __future__ import annotations

import json
import pickle
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
from lmm_testdata import simulate_als_long
from npz_forge import rewrite_npz
from pandas.testing import assert_frame_equal, assert_index_equal, assert_series_equal
from sklearn.base import clone

from alsprog._version import __version__
from alsprog.errors import NotFittedError, SavedModelError
from alsprog.models import LinearMixedModel

FITTED = [
    "fe_params_",
    "bse_",
    "cov_re_",
    "scale_",
    "llf_",
    "theta_",
    "random_effects_",
    "converged_",
    "singular_",
    "n_obs_",
    "n_groups_",
    "n_dropped_",
    "n_iter_",
    "resid_",
]


def _fit(formula: str, df: pd.DataFrame, **kw: object) -> LinearMixedModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LinearMixedModel(formula, **kw).fit(df)


def _equal(a: object, b: object) -> None:
    if isinstance(a, pd.DataFrame):
        assert_frame_equal(a, b, check_exact=True)
    elif isinstance(a, pd.Series):
        assert_series_equal(a, b, check_exact=True)
    else:
        assert type(a) is type(b) and a == b, (a, b)


def _assert_same_results(m: LinearMixedModel, back: LinearMixedModel, df) -> None:
    assert back.get_params() == m.get_params()
    for name in FITTED:
        _equal(getattr(m, name), getattr(back, name))
    assert str(back.summary()) == str(m.summary())
    for key, table in m.summary(0.8).tables.items():
        assert_frame_equal(back.summary(0.8).tables[key], table, check_exact=True)
    assert_frame_equal(back.confint(0.9), m.confint(0.9), check_exact=True)
    assert_frame_equal(back.cov_params(), m.cov_params(), check_exact=True)
    assert back.aic == m.aic and back.bic == m.bic
    assert_series_equal(back.predict(df), m.predict(df), check_exact=True)
    pop = back.predict(df, include_random=False)
    assert_series_equal(pop, m.predict(df, include_random=False), check_exact=True)
    group = m._design_info["group"]
    unseen = df.assign(**{group: df[group].astype(str) + "_new"})
    assert_series_equal(back.predict(unseen), m.predict(unseen), check_exact=True)
    assert_series_equal(back.predict(unseen), pop, check_exact=True)
    if m.time in m._design_info["variables"]:
        for kw in [
            {},
            {"times": [0.0, 6.5, 30.0], "level": 0.5, "interval": "confidence"},
            {"subjects": list(m.random_effects_.index[[3, 0]])},
        ]:
            assert_frame_equal(
                back.subject_trajectories(**kw),
                m.subject_trajectories(**kw),
                check_exact=True,
            )
    # the state alsprog.forecast reads
    assert_frame_equal(back._first_rows, m._first_rows, check_exact=True)
    np.testing.assert_array_equal(back._time_range, m._time_range)  # NaN == NaN
    for key in ["group", "outcome", "variables", "n_theta"]:
        assert back._design_info[key] == m._design_info[key]
    assert_index_equal(back._design_info["levels"], m._design_info["levels"])
    assert back._design_info["fixed_spec"].column_names == (
        m._design_info["fixed_spec"].column_names
    )
    for a, b in [(back._cov_beta, m._cov_beta), (back._Q, m._Q), (back._ZtX, m._ZtX)]:
        np.testing.assert_array_equal(a, b)
    assert back._deviance == m._deviance


@pytest.fixture(scope="module")
def sleep_fit(sleepstudy) -> LinearMixedModel:
    return _fit("Reaction ~ Days + (Days | Subject)", sleepstudy, time="Days")


@pytest.fixture(scope="module")
def categorical_cohort() -> pd.DataFrame:
    """Cohort with a pandas Categorical (reference level 'spinal'), integer subject
    ids, a string row index, an integer covariate and a few missing outcomes."""
    df = simulate_als_long(60, seed=5)
    df["subject_id"] = df["subject_id"].str.extract(r"(\d+)")[0].astype(int) + 1000
    df["onset_site"] = pd.Categorical(
        df["onset_site"], categories=["spinal", "bulbar", "other"]
    )
    df["visit"] = df.groupby("subject_id").cumcount().astype(np.int64)
    df.loc[df.index[[4, 17]], "frs"] = np.nan
    df.index = [f"row{i}" for i in range(len(df))]
    return df


CASES = {
    "sleep_reml": (
        "sleepstudy",
        "Reaction ~ Days + (Days | Subject)",
        {"time": "Days"},
    ),
    "sleep_uncorr_ml": (
        "sleepstudy",
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
        {"reml": False, "time": "Days"},
    ),
    "sleep_center_log": (
        "sleepstudy",
        "np.log(Reaction) ~ center(Days) + (center(Days) | Subject)",
        {"time": "Days"},
    ),
    "cohort": (
        "cohort",
        "frs ~ months * onset_site + age_at_onset + (months | subject_id)",
        {},
    ),
    "categorical": (
        "categorical_cohort",
        "frs ~ months * onset_site + C(visit) + (1 | subject_id)",
        {},
    ),
    "no_time_column": (
        "cohort",
        "frs ~ onset_site + (1 | subject_id)",
        {},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_gives_identical_results(request, tmp_path, case):
    data, formula, kw = CASES[case]
    df = request.getfixturevalue(data)
    m = _fit(formula, df, **kw)
    path = tmp_path / "model.npz"
    m.save(path)
    back = LinearMixedModel.load(path)
    _assert_same_results(m, back, df)
    # saving the loaded model gives the same content again
    back.save(tmp_path / "again.npz")
    _assert_same_results(m, LinearMixedModel.load(tmp_path / "again.npz"), df)


def test_round_trip_keeps_dropped_rows_and_dtypes(tmp_path, categorical_cohort):
    m = _fit(
        "frs ~ months * onset_site + (months | subject_id)",
        categorical_cohort,
    )
    assert m.n_dropped_ == 2
    m.save(tmp_path / "m.npz")
    back = LinearMixedModel.load(tmp_path / "m.npz")
    assert back.n_dropped_ == 2
    assert list(back.fe_params_.index)[2] == "onset_site[T.bulbar]"  # reference kept
    assert isinstance(back._first_rows["onset_site"].dtype, pd.CategoricalDtype)
    assert list(back._first_rows["onset_site"].cat.categories) == [
        "spinal",
        "bulbar",
        "other",
    ]
    assert back.random_effects_.index.dtype == np.int64
    assert back.resid_.index[0] == "row0"


def test_loaded_model_forecasts_like_the_fitted_one(tmp_path):
    from alsprog.data import assemble
    from alsprog.forecast import forecast
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(80, seed=3)
    table = assemble(c.visits, c.subjects)
    train = table[table["subject_id"] > "P0010"]
    new = table[(table["subject_id"] <= "P0010") & (table["months"] < 4)]
    m = _fit("alsfrs_r_total ~ months * delta_fs + (months | subject_id)", train)
    m.save(tmp_path / "m.npz")
    back = LinearMixedModel.load(tmp_path / "m.npz")
    assert_frame_equal(
        forecast(back, new, [6, 12], n_samples=5, seed=1),
        forecast(m, new, [6, 12], n_samples=5, seed=1),
        check_exact=True,
    )


def test_saved_file_is_npz_not_pickle(tmp_path, sleep_fit):
    path = tmp_path / "m.npz"
    sleep_fit.save(path)
    raw = path.read_bytes()
    assert raw[:4] == b"PK\x03\x04" and zipfile.is_zipfile(path)
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(raw)
    with np.load(path, allow_pickle=False) as npz:  # raises on any object array
        for key in npz.files:
            assert npz[key].dtype != object
        header = json.loads(npz["__header__"].tobytes().decode())
    assert header["model"] == "LinearMixedModel"
    assert header["version"] == __version__
    assert header["params"] == sleep_fit.get_params()


def test_save_is_atomic(tmp_path, sleep_fit, monkeypatch):
    import alsprog.models.lmm._io as lmm_io

    path = tmp_path / "m.npz"
    sleep_fit.save(path)
    before = path.read_bytes()

    def broken(fh, **arrays):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(lmm_io.np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        sleep_fit.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_save_needs_a_fit_and_clone_after_load(tmp_path, sleep_fit):
    with pytest.raises(NotFittedError):
        LinearMixedModel("Reaction ~ Days + (1 | Subject)").save(tmp_path / "x.npz")
    sleep_fit.save(tmp_path / "m.npz")
    back = LinearMixedModel.load(tmp_path / "m.npz")
    c = clone(back)
    assert c.get_params() == back.get_params() and not hasattr(c, "fe_params_")


def test_unsaveable_column_names_it(tmp_path):
    df = simulate_als_long(30, seed=2)
    df["mixed"] = [1 if i % 2 else "a" for i in range(len(df))]
    m = _fit("frs ~ months + mixed + (1 | subject_id)", df)
    with pytest.raises(SavedModelError, match=r"x\.npz: .*column 'mixed'"):
        m.save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


# ------------------------------------------------------------------ bad files
_rewrite = rewrite_npz


@pytest.fixture
def saved(tmp_path, sleep_fit):
    path = tmp_path / "good.npz"
    sleep_fit.save(path)
    return path


def test_load_missing_file(tmp_path):
    with pytest.raises(SavedModelError, match=r"nope\.npz: no such file"):
        LinearMixedModel.load(tmp_path / "nope.npz")


@pytest.mark.parametrize(
    "content",
    [b"", b"not a model at all", b"PK\x03\x04 truncated zip"],
    ids=["empty", "text", "truncated"],
)
def test_load_corrupt_file(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(SavedModelError, match=r"bad\.npz: cannot be read"):
        LinearMixedModel.load(path)


def test_load_truncated_saved_file(tmp_path, saved):
    raw = saved.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SavedModelError, match=r"cut\.npz"):
        LinearMixedModel.load(path)


def test_load_refuses_pickle(tmp_path, sleep_fit):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(sleep_fit))
    with pytest.raises(SavedModelError, match=r"model\.pkl: cannot be read"):
        LinearMixedModel.load(path)


def test_load_plain_npy(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(3.0))
    with pytest.raises(
        SavedModelError, match=r"a\.npy: cannot be read: it is a single NumPy array"
    ):
        LinearMixedModel.load(path)


def test_load_npz_without_header(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.arange(3))
    with pytest.raises(SavedModelError, match=r"other\.npz: field 'header' is missing"):
        LinearMixedModel.load(path)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda h: h.update(model="MMRM"), r"field 'model' is 'MMRM', expected"),
        (lambda h: h.update(version="0.0.1"), r"field 'version' is '0\.0\.1'"),
        (lambda h: h.update(format=99), r"field 'format' is 99"),
        (lambda h: h.pop("params"), r"field 'params' is missing"),
        (
            lambda h: h["params"].update(colour=1),
            r"field 'params\.colour' is not a parameter",
        ),
        (lambda h: h["scalars"].pop("scale"), r"field 'scalars\.scale' is missing"),
        (lambda h: h["scalars"].update(n_iter="7"), r"field 'scalars\.n_iter' is '7'"),
        (lambda h: h["names"].update(fe=["a", "b"]), r"field 'names\.fe'"),
        (
            lambda h: h["params"].update(formula="Reaction ~ 1 + (1 | Subject)"),
            r"field 'names\.fe'",
        ),
        (lambda h: h["frame"]["columns"].pop(), r"field 'frame'"),
        (lambda h: h["frame"].update(n_rows=3), r"field 'frame' should have 3 rows"),
        (
            lambda h: h["frame"]["columns"][0].pop("values"),
            r"field 'frame\.columns\[0\]\.values' is missing",
        ),
        (
            lambda h: h.update(levels={"kind": "values"}),
            r"field 'levels\.name' is missing",
        ),
        (
            lambda h: h["levels"]["values"].update(kind="?"),
            r"field 'levels\.values\.kind' is '\?'; expected one of",
        ),
    ],
    ids=[
        "class",
        "version",
        "format",
        "no_params",
        "bad_param",
        "no_scale",
        "bad_type",
        "names",
        "formula",
        "column",
        "rows",
        "column_spec",
        "levels_spec",
        "levels_kind",
    ],
)
def test_load_bad_header(tmp_path, saved, edit, match):
    path = _rewrite(saved, tmp_path / "edited.npz", header=edit)
    with pytest.raises(SavedModelError, match=rf"edited\.npz: {match}"):
        LinearMixedModel.load(path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"drop": ["fe_params"]}, r"field 'fe_params' is missing"),
        ({"drop": ["frame.col0"]}, r"field 'frame' is missing"),
        ({"replace": {"cov_beta": np.eye(3)}}, r"field 'cov_beta' has shape \(3, 3\)"),
        ({"replace": {"theta": np.array(["a", "b", "c"])}}, r"field 'theta' has dtype"),
        ({"replace": {"x_first": np.zeros((18, 2))}}, r"field 'x_first': the design"),
    ],
    ids=["missing_array", "missing_column", "shape", "dtype", "design_check"],
)
def test_load_bad_arrays(tmp_path, saved, kwargs, match):
    path = _rewrite(saved, tmp_path / "edited.npz", **kwargs)
    with pytest.raises(SavedModelError, match=rf"edited\.npz: {match}"):
        LinearMixedModel.load(path)


# ------------------------------------------- the format as an embeddable piece
def _embed(path, model, *, edit=None, drop=(), replace=None):
    """An outer file holding ``model`` under ``inner.`` beside its own member."""
    from alsprog.models._npz import write_saved
    from alsprog.models.lmm._io import mixed_fields

    header, arrays = mixed_fields(model, path, field="inner")
    header = json.loads(json.dumps(header))
    if edit is not None:
        edit(header)
    members = {f"inner.{k}": v for k, v in arrays.items()}
    members["other"] = np.arange(3.0)
    for key in drop:
        del members[key]
    members.update(replace or {})
    write_saved(path, {"model": "Outer", "inner": header}, members)
    return path


def test_mixed_fields_write_nothing_and_are_what_save_writes(tmp_path, sleep_fit):
    from alsprog.models.lmm._io import mixed_fields

    path = tmp_path / "m.npz"
    header, arrays = mixed_fields(sleep_fit, path)
    assert list(tmp_path.iterdir()) == []
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    sleep_fit.save(path)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(["__header__", *arrays])
        for key, value in arrays.items():
            assert npz[key].dtype == value.dtype
            np.testing.assert_array_equal(npz[key], value)
        saved = json.loads(npz["__header__"].tobytes().decode())
    assert saved == json.loads(json.dumps(header))


def test_mixed_model_embedded_under_a_prefix_round_trips(
    tmp_path, sleep_fit, sleepstudy
):
    from alsprog.models._npz import read_saved
    from alsprog.models.lmm._io import check_mixed, restore_mixed

    path = _embed(tmp_path / "outer.npz", sleep_fit)
    outer, saved = read_saved(path)
    with saved:
        part = saved.part("inner.")
        assert part.prefix == "inner." and "other" not in part.data_keys
        assert check_mixed(LinearMixedModel, outer["inner"], part)["n_groups"] == 18
        with part:  # a part leaves the archive open
            back = restore_mixed(LinearMixedModel, outer["inner"], part)
        np.testing.assert_array_equal(saved.array("other"), np.arange(3.0))
    _assert_same_results(sleep_fit, back, sleepstudy)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"edit": lambda h: h["scalars"].update(scale=-1.0)},
            r"field 'inner\.scalars\.scale' is -1\.0; expected a positive",
        ),
        (
            {"edit": lambda h: h.update(version="0.0.1")},
            r"field 'inner\.version' is '0\.0\.1'",
        ),
        (
            {"edit": lambda h: h["params"].update(tol=-1.0)},
            r"field 'inner\.params\.tol': ",
        ),
        (
            {
                "edit": lambda h: h["params"].update(
                    formula="Reaction ~ __import__('os') + (1 | Subject)"
                )
            },
            r"field 'inner\.params\.formula' is refused",
        ),
        ({"drop": ["inner.fe_params"]}, r"field 'inner\.fe_params' is missing\."),
        (
            {"drop": ["inner.frame.col0"]},
            r"field 'inner\.frame' is missing \(member 'inner\.frame\.col0'\)",
        ),
        (
            {"replace": {"inner.cov_beta": np.eye(3)}},
            r"field 'inner\.cov_beta' has shape \(3, 3\)",
        ),
        (
            {"replace": {"inner.fe_params": np.array([np.nan, 1.0])}},
            r"field 'inner\.fe_params' holds nan at \(0,\)",
        ),
        (
            {"replace": {"inner.__header__": np.zeros(3, dtype=np.uint8)}},
            r"field 'inner\.__header__' is not part of a LinearMixedModel file",
        ),
        (
            {"replace": {"inner.x_first": np.zeros((18, 2))}},
            r"field 'inner\.x_first': the design",
        ),
    ],
    ids=[
        "scale",
        "version",
        "param",
        "formula",
        "missing_array",
        "missing_column",
        "shape",
        "nan",
        "header_member_inside",
        "design_check",
    ],
)
def test_embedded_mixed_model_refusals_name_the_prefix(
    tmp_path, sleep_fit, kwargs, match
):
    from alsprog.models._npz import read_saved
    from alsprog.models.lmm._io import restore_mixed

    path = _embed(tmp_path / "outer.npz", sleep_fit, **kwargs)
    outer, saved = read_saved(path)
    with saved, pytest.raises(SavedModelError, match=rf"outer\.npz: {match}"):
        restore_mixed(LinearMixedModel, outer["inner"], saved.part("inner."))


def test_saved_file_part_is_a_view_with_a_key_prefix(tmp_path):
    from alsprog.models._npz import HEADER, open_saved, write_saved

    path = tmp_path / "x.npz"
    write_saved(
        path,
        {"model": "X"},
        {"a": np.zeros(2), "sub.b": np.ones(3), "sub.deep.c": np.arange(4)},
    )
    with open_saved(path) as saved:
        assert saved.prefix == "" and saved.data_keys == {"a", "sub.b", "sub.deep.c"}
        assert HEADER in saved.members
        sub = saved.part("sub.")
        assert sub.data_keys == {"b", "deep.c"} and sub.path == saved.path
        deep = sub.part("deep.")
        assert deep.prefix == "sub.deep." and deep.name("c") == "sub.deep.c"
        np.testing.assert_array_equal(deep.array("c"), np.arange(4))
        with pytest.raises(SavedModelError, match=r"x\.npz: field 'sub\.deep\.c' has"):
            deep.check("c", shape=(5,))
        with pytest.raises(SavedModelError, match=r"field 'sub\.x' is missing\."):
            sub.array("x")
        deep.close()  # a part leaves the archive to the whole file
        np.testing.assert_array_equal(saved.array("a"), np.zeros(2))
