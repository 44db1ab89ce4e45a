"""JointModel save / load: one .npz file, no pickle, identical results after load.

Every expectation is the fitted model itself: a loaded model must reproduce the saved
one's numbers exactly (``check_exact``, ``assert_array_equal``), so no external
reference is needed.  The refusals follow the mixed model's file rules (issue 17):
a damaged, forged or foreign file is a ``SavedModelError`` naming the file and the
field, found before anything is built, and the file is left byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shlex
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from npz_forge import craft as _craft
from npz_forge import npy as _npy
from npz_forge import npy_header as _npy_header
from pandas.testing import assert_frame_equal, assert_index_equal, assert_series_equal
from sklearn.base import clone

from alsprog._version import __version__
from alsprog.errors import NotFittedError, SavedModelError
from alsprog.models import JointModel, LinearMixedModel
from alsprog.models.joint._io import FILE_SUFFIX

FORMULA = "alsfrs_r_total ~ months * delta_fs + (months | subject_id)"
EVENT_FORMULA = "delta_fs + onset_site"


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """A small simulated cohort; onset site a pandas Categorical ('spinal' first)
    and a string row index, so both survive the file."""
    from alsprog.data import assemble
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(60, seed=3)
    t = assemble(c.visits, c.subjects)
    t["onset_site"] = pd.Categorical(t["onset_site"], categories=["spinal", "bulbar"])
    t.index = [f"row{i}" for i in range(len(t))]
    return t


@pytest.fixture(scope="module")
def train(table) -> pd.DataFrame:
    return table[table["subject_id"] > "P0008"]


@pytest.fixture(scope="module")
def new(table) -> pd.DataFrame:
    """Held-out patients' first four months."""
    return table[(table["subject_id"] <= "P0008") & (table["months"] < 4)]


@pytest.fixture(scope="module")
def jm(train) -> JointModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return JointModel(FORMULA, event_formula=EVENT_FORMULA).fit(train)


@pytest.fixture(scope="module")
def saved_file(jm, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("joint") / "joint.npz"
    jm.save(path)
    return path


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a model file ran code: the marker file was created"


# ------------------------------------------------------------------ helpers
def _equal(a: object, b: object, name: str) -> None:
    """``a`` and ``b`` hold the same values (exactly), whatever their type."""
    if isinstance(a, pd.DataFrame):
        assert_frame_equal(b, a, check_exact=True, obj=name)
    elif isinstance(a, pd.Series):
        assert_series_equal(b, a, check_exact=True, obj=name)
    elif isinstance(a, pd.Index):
        assert_index_equal(b, a, exact=True, obj=name)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and b.dtype == a.dtype, name
        np.testing.assert_array_equal(b, a, err_msg=name)  # NaN == NaN
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(b) == list(a), name
        for k in a:
            _equal(a[k], b[k], f"{name}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert type(b) is type(a) and len(b) == len(a), name
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _equal(x, y, f"{name}[{i}]")
    elif hasattr(a, "column_names") and hasattr(a, "get_model_matrix"):
        # a formulaic ModelSpec (its matrices: the forecasts below use them)
        assert type(b) is type(a) and b.column_names == a.column_names, name
        assert b.formula == a.formula, name
    elif type(a).__module__.startswith("alsprog.models") and hasattr(a, "__dict__"):
        _same_state(a, b, name)
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), name
    else:
        assert a == b and bool(a) == bool(b), (name, a, b)


def _same_state(a: object, b: object, name: str) -> None:
    """Every attribute of ``a`` is on ``b`` with the same value, and no other."""
    assert type(b) is type(a), name
    assert sorted(vars(b)) == sorted(vars(a)), name
    for key, value in vars(a).items():
        if key == "_last_Z":  # the mixed model's scratch of its last design
            continue
        _equal(value, getattr(b, key), f"{name}.{key}")


def _assert_same_results(m: JointModel, back: JointModel, new: pd.DataFrame) -> None:
    from alsprog.forecast import forecast

    assert back.get_params() == m.get_params()
    # the fitted state as fit leaves it, the longitudinal mixed model included
    _same_state(m, back, "model")
    for level in (0.95, 0.8):
        s, sb = m.summary(level), back.summary(level)
        assert str(sb) == str(s)
        assert list(sb.tables) == list(s.tables)
        for key, tab in s.tables.items():
            assert_frame_equal(sb.tables[key], tab, check_exact=True)
    assert_frame_equal(back.cov_params(), m.cov_params(), check_exact=True)
    assert back.aic == m.aic and back.bic == m.bic
    np.testing.assert_array_equal(back.alpha_, m.alpha_)
    assert back.columns_ == m.columns_
    for given_alive in (True, False):
        assert_frame_equal(
            forecast(back, new, [6, 12], n_samples=5, seed=1, given_alive=given_alive),
            forecast(m, new, [6, 12], n_samples=5, seed=1, given_alive=given_alive),
            check_exact=True,
        )
    assert_frame_equal(
        back.predict_survival(new, [6.0, 12.0, 24.0]),
        m.predict_survival(new, [6.0, 12.0, 24.0]),
        check_exact=True,
    )
    some = list(m._fit_events.index[[4, 0]])
    for kw in [
        {"subjects": some},  # the default grid over the fitted times
        {"times": [0.0, 30.0], "level": 0.5, "interval": "confidence"},  # all
        {"times": [6.5], "subjects": some[:1], "n_quad": 5},
    ]:
        assert_frame_equal(
            back.subject_trajectories(**kw),
            m.subject_trajectories(**kw),
            check_exact=True,
        )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _array(path: Path, key: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as npz:
        return npz[key]


def _set(*keys, value):
    def edit(h: dict) -> None:
        d = h
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return edit


def _pop(*keys):
    def edit(h: dict) -> None:
        d = h
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]

    return edit


class _Boom:
    """Pickles to a call of ``os.system`` that creates the marker when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def _evil_object_array(marker: Path) -> bytes:
    arr = np.empty(3, dtype=object)
    arr[:] = [_Boom(marker), 1.0, 2.0]
    return _npy(arr, allow_pickle=True)


# ---------------------------------------------------------------- round trip
def test_round_trip_gives_identical_results(jm, saved_file, new, tmp_path):
    back = JointModel.load(saved_file)
    _assert_same_results(jm, back, new)
    # the loaded model saves the same content again
    again = tmp_path / "again.npz"
    back.save(again)
    with np.load(saved_file) as a, np.load(again) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(b[key], a[key], err_msg=key)


def test_round_trip_random_intercept_without_event_covariates(train, new, tmp_path):
    """No event covariates (no formulaic spec, an empty event design), one random
    effect and integer subject ids."""

    def numbered(t: pd.DataFrame) -> pd.DataFrame:
        return t.assign(subject_id=t["subject_id"].str[1:].astype(np.int64))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = JointModel(
            "alsfrs_r_total ~ months + (1 | subject_id)", event_formula=""
        ).fit(numbered(train))
    path = tmp_path / "m.npz"
    m.save(path)
    back = JointModel.load(path)
    assert back._w_spec is None and back._w_names == []
    assert back._fit_rows["subject_id"].dtype == np.int64
    _assert_same_results(m, back, numbered(new))


def test_loaded_model_clones_unfitted(saved_file):
    back = JointModel.load(saved_file)
    c = clone(back)
    assert c.get_params() == back.get_params() and not hasattr(c, "fe_params_")


def test_saved_file_is_npz_not_pickle(jm, saved_file):
    raw = saved_file.read_bytes()
    assert raw[:4] == b"PK\x03\x04" and zipfile.is_zipfile(saved_file)
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(raw)
    with np.load(saved_file, allow_pickle=False) as npz:  # raises on object arrays
        for key in npz.files:
            assert npz[key].dtype != object
        header = json.loads(npz["__header__"].tobytes().decode())
        files = set(npz.files)
    assert header["model"] == "JointModel"
    assert header["version"] == __version__
    assert header["params"] == jm.get_params()
    assert header["longitudinal"]["model"] == "LinearMixedModel"
    assert header["longitudinal"]["params"] == jm.longitudinal_.get_params()
    assert {"phi", "cov_phi", "event_design", "longitudinal.fe_params"} <= files


def test_suffix_is_npz_and_the_path_is_kept(jm, tmp_path):
    assert JointModel.file_suffix == FILE_SUFFIX == ".npz"
    path = tmp_path / "model.joint"  # written where asked: no suffix added
    jm.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.joint"]
    assert zipfile.is_zipfile(path)
    assert JointModel.load(path).llf_ == jm.llf_


@pytest.mark.parametrize("fail_at", ["longitudinal_part", "joint_file"])
def test_save_is_atomic(jm, tmp_path, monkeypatch, fail_at):
    """A write that fails leaves the previous file as it was and no other file.

    The longitudinal part is written inside the joint file (one write): the write
    fails either midway, at the longitudinal part's first member, or at once."""
    path = tmp_path / "m.npz"
    jm.save(path)
    before = path.read_bytes()
    real = np.savez
    calls: list[list[str]] = []

    def broken(fh, *args, **arrays):
        calls.append(list(arrays))
        if fail_at == "longitudinal_part":  # the joint members, then a failure
            head = {}
            for key, value in arrays.items():
                if key.startswith("longitudinal."):
                    break
                head[key] = value
            assert head and len(head) < len(arrays)
            real(fh, *args, **head)
        else:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    for target in (path, tmp_path / "fresh.npz"):
        calls.clear()
        with pytest.raises(OSError, match="disk full"):
            jm.save(target)
        assert len(calls) == 1 and "longitudinal.fe_params" in calls[0]
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_save_writes_no_temporary_file(jm, tmp_path, monkeypatch):
    """The longitudinal part is embedded without a file of its own: one write (the
    atomic writer's temporary file beside the target), no temporary folder, and
    nothing else in the folder while the file is written."""
    import tempfile

    made: list[str] = []
    seen: list[list[str]] = []
    real_mkstemp, real_savez = tempfile.mkstemp, np.savez

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        made.append(name)
        return fd, name

    def no_mkdtemp(*args, **kwargs):
        raise AssertionError("a temporary folder was made while saving")

    def savez(fh, *args, **arrays):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        return real_savez(fh, *args, **arrays)

    (tmp_path / "old.txt").write_text("kept")
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(tempfile, "mkdtemp", no_mkdtemp)
    monkeypatch.setattr(np, "savez", savez)
    jm.save(tmp_path / "m.npz")
    assert len(made) == 1 and Path(made[0]).parent == tmp_path
    assert seen == [sorted(["old.txt", Path(made[0]).name])]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "old.txt"]
    monkeypatch.undo()
    assert JointModel.load(tmp_path / "m.npz").llf_ == jm.llf_


def test_unsaveable_column_leaves_no_file(jm, tmp_path):
    m = clone(jm)
    for key, value in vars(jm).items():
        setattr(m, key, value)
    rows = jm._fit_rows.copy()
    rows["delta_fs"] = [1 if i % 2 else "a" for i in range(len(rows))]
    m._fit_rows = rows
    with pytest.raises(SavedModelError, match=r"x\.npz: .*column 'delta_fs'"):
        m.save(tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_save_needs_a_fit(tmp_path):
    with pytest.raises(NotFittedError):
        JointModel(FORMULA).save(tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------- foreign files
@pytest.fixture(scope="module")
def lmm_file(train, tmp_path_factory) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LinearMixedModel(FORMULA).fit(train)
    path = tmp_path_factory.mktemp("lmm") / "lmm.npz"
    m.save(path)
    return path


def test_mixed_model_file_is_refused_by_the_joint_loader(lmm_file):
    before = _digest(lmm_file)
    with pytest.raises(
        SavedModelError,
        match=r"lmm\.npz: field 'model' is 'LinearMixedModel', expected 'JointModel' "
        r"\(this is a LinearMixedModel file\)",
    ):
        JointModel.load(lmm_file)
    assert _digest(lmm_file) == before


def test_joint_file_is_refused_by_the_mixed_model_loader(saved_file):
    with pytest.raises(
        SavedModelError,
        match=r"joint\.npz: field 'model' is 'JointModel', expected 'LinearMixedModel'",
    ):
        LinearMixedModel.load(saved_file)


def _hdf5(path: Path, src: Path, m: Path) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3.0)


WRONG_KIND: dict[str, tuple[Callable[[Path, Path, Path], None], str]] = {
    "missing": (lambda p, src, m: None, r"no such file"),
    "empty": (lambda p, src, m: p.write_bytes(b""), r"cannot be read: it is an empty"),
    "text": (
        lambda p, src, m: p.write_text("subject_id,months\nP1,0\n"),
        r"cannot be read: it is a text file \(starts 'subject_id,months'\), not an "
        r"alsprog joint-model \.npz file",
    ),
    "hdf5": (_hdf5, r"cannot be read: it is a netCDF-4/HDF5 file, not an alsprog"),
    "truncated_zip": (
        lambda p, src, m: p.write_bytes(src.read_bytes()[: src.stat().st_size // 2]),
        r"cannot be read: it is a truncated or damaged zip archive",
    ),
    "pickle_file": (
        lambda p, src, m: p.write_bytes(pickle.dumps(_Boom(m))),
        r"cannot be read: it is a Python pickle",
    ),
    "npz_without_header": (
        lambda p, src, m: np.savez(p, x=np.arange(3.0)),
        r"field 'header' is missing",
    ),
}


@pytest.mark.parametrize("case", list(WRONG_KIND))
def test_wrong_kind_of_file(tmp_path, saved_file, marker, case):
    make, match = WRONG_KIND[case]
    path = tmp_path / "model.npz"
    make(path, saved_file, marker)
    before = _digest(path) if path.exists() else None
    with pytest.raises(SavedModelError, match=rf"model\.npz: {match}"):
        JointModel.load(path)
    assert (_digest(path) if path.exists() else None) == before


# ------------------------------------------------------------- forged files
BRACE = "{{__import__('os').system('touch ' + {M!r})}}"

#: id -> (edit of the JSON header given the marker, regex after "<file>: ")
HEADER_CASES: dict[str, tuple[Callable[[Path], Callable[[dict], None]], str]] = {
    "version": (
        lambda m: _set("version", value="0.0.1"),
        r"field 'version' is '0\.0\.1' but this is alsprog",
    ),
    "format": (lambda m: _set("format", value=2), r"field 'format' is 2, expected 1"),
    "another_model_class": (
        lambda m: _set("model", value="MMRM"),
        r"field 'model' is 'MMRM', expected 'JointModel' \(this is a MMRM file\)",
    ),
    "unknown_field": (
        lambda m: _set("code", value="__import__('os')"),
        r"field 'code' is not part of a JointModel file",
    ),
    "formula_payload": (
        lambda m: _set(
            "params",
            "formula",
            value="alsfrs_r_total ~ months + "
            + BRACE.format(M=str(m))
            + " + (months | subject_id)",
        ),
        r"field 'params\.formula' is refused: .*not part of the formula language",
    ),
    "event_formula_payload": (
        lambda m: _set("params", "event_formula", value=BRACE.format(M=str(m))),
        r"field 'params\.event_formula' is refused: .*not part of the formula",
    ),
    "event_formula_unknown_column": (
        lambda m: _set("params", "event_formula", value="delta_fs + age"),
        r"field 'params\.event_formula' is refused: .*age",
    ),
    "event_formula_not_a_string": (
        lambda m: _set("params", "event_formula", value=["x"]),
        r"field 'params\.event_formula' is \['x'\]; expected str",
    ),
    "unknown_param": (
        lambda m: _set("params", "colour", value=1),
        r"field 'params\.colour' is not a parameter of JointModel",
    ),
    "n_quad_1": (
        lambda m: _set("params", "n_quad", value=1),
        r"field 'params\.n_quad': `n_quad` must be an integer in \[2, 40\]; got 1",
    ),
    "tol_nan": (
        lambda m: _set("params", "tol", value=float("nan")),
        r"field 'params\.tol': `tol` must be in \(0, 1\]; got nan",
    ),
    "missing_llf": (
        lambda m: _pop("scalars", "llf"),
        r"field 'scalars\.llf' is missing",
    ),
    "llf_inf": (
        lambda m: _set("scalars", "llf", value=float("inf")),
        r"field 'scalars\.llf' is inf; expected a finite number",
    ),
    "n_subjects_string": (
        lambda m: _set("scalars", "n_subjects", value="51"),
        r"field 'scalars\.n_subjects' is '51'; expected int",
    ),
    "n_events_above_subjects": (
        lambda m: _set("scalars", "n_events", value=999),
        r"field 'scalars\.n_events' is 999 for \d+ subjects",
    ),
    "n_pieces_above_n_intervals": (
        lambda m: _set("scalars", "n_pieces", value=7),
        r"field 'scalars\.n_pieces' is 7 but params\.n_intervals is 6",
    ),
    "n_pieces_without_phi": (
        lambda m: _set("scalars", "n_pieces", value=5),
        r"field 'phi' has shape \(\d+,\); expected",
    ),
    "names_fe": (
        lambda m: _set("names", "fe", value=["Intercept", "months"]),
        r"field 'phi' has shape",
    ),
    "names_event_renamed": (
        lambda m: _set("names", "event", value=["delta_fs", "onset_site[T.x]"]),
        r"field 'names\.event' is \['delta_fs', 'onset_site\[T\.x\]'\] but the saved "
        r"rows give",
    ),
    "fit_rows_n_rows": (
        lambda m: _set("fit_rows", "n_rows", value=3),
        r"field 'fit_rows' should have 3 rows",
    ),
    "fit_events_columns": (
        lambda m: _set("fit_events", "columns", 0, "name", value="when"),
        r"field 'fit_events' has columns \['when', 'event'\]",
    ),
    "longitudinal_not_object": (
        lambda m: _set("longitudinal", value=[1]),
        r"field 'longitudinal' is not a JSON object",
    ),
    "longitudinal_reml": (
        lambda m: _set("longitudinal", "params", "reml", value=True),
        r"field 'longitudinal\.params\.reml' is True but the joint model fits its "
        r"longitudinal part with reml=False",
    ),
    "longitudinal_formula_payload": (
        lambda m: _set(
            "longitudinal",
            "params",
            "formula",
            value="alsfrs_r_total ~ months + "
            + BRACE.format(M=str(m))
            + " + (months | subject_id)",
        ),
        r"field 'longitudinal\.params\.formula' is \"alsfrs_r_total ~ months \+ "
        r"\{__import__\(.*\.\.\. but the joint model fits its longitudinal part with "
        r"formula='alsfrs_r_total ~ months \* delta_fs \+ \(months \| subject_id\)'",
    ),
    "longitudinal_scale": (
        lambda m: _set("longitudinal", "scalars", "scale", value=-1.0),
        r"field 'longitudinal\.scalars\.scale' is -1\.0; expected a positive finite",
    ),
    "longitudinal_version": (
        lambda m: _set("longitudinal", "version", value="0.0.1"),
        r"field 'longitudinal\.version' is '0\.0\.1'",
    ),
}


@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_forged_header_is_refused(tmp_path, saved_file, marker, case):
    edit, match = HEADER_CASES[case]
    path = _craft(saved_file, tmp_path / "edited.npz", header=edit(marker))
    before = _digest(path)
    with pytest.raises(SavedModelError, match=rf"edited\.npz: {match}"):
        JointModel.load(path)
    assert _digest(path) == before


def test_formula_refusal_keeps_its_cause(tmp_path, saved_file, marker):
    from alsprog.errors import ModelSpecificationError

    payload = BRACE.format(M=str(marker))
    path = _craft(
        saved_file,
        tmp_path / "f.npz",
        header=_set("params", "event_formula", value=payload),
    )
    with pytest.raises(SavedModelError) as info:
        JointModel.load(path)
    assert isinstance(info.value.__cause__, ModelSpecificationError)


def _nan_at(key: str, index: int = 0) -> Callable[[Path, Path], dict]:
    def make(src: Path, m: Path) -> dict:
        arr = _array(src, key).astype(float)
        arr.flat[index] = np.nan
        return {"arrays": {key: arr}}

    return make


def _edit(key: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable:
    return lambda src, m: {"arrays": {key: fn(_array(src, key).copy())}}


def _set_at(arr: np.ndarray, index: int, value: float) -> np.ndarray:
    arr.flat[index] = value
    return arr


def _one_piece_less(src: Path, m: Path) -> dict:
    """A consistent file but for a baseline hazard of one piece less."""
    phi, cov = _array(src, "phi"), _array(src, "cov_phi")
    return {
        "header": _set("scalars", "n_pieces", value=5),
        "arrays": {"phi": phi[:-1], "cov_phi": cov[:-1, :-1]},
    }


def _visit_after_event(src: Path, m: Path) -> dict:
    """A saved row (not the first) of a subject with the event moved after it."""
    ids = _array(src, "fit_rows.col0")
    months = _array(src, "fit_rows.col1").copy()
    subjects = _array(src, "fit_events.index")
    time, event = _array(src, "fit_events.col0"), _array(src, "fit_events.col1")
    i = int(np.flatnonzero(event == 1.0)[0])
    row = int(np.flatnonzero(ids == subjects[i])[-1])
    months[row] = time[i] + 5.0
    return {"arrays": {"fit_rows.col1": months}}


#: id -> (kwargs of _craft given the saved file and the marker, regex)
ARRAY_CASES: dict[str, tuple[Callable[[Path, Path], dict], str]] = {
    "pickle_inside": (
        lambda src, m: {"raw": {"phi": _evil_object_array(m)}},
        r"field 'phi' holds Python objects \(dtype object\)",
    ),
    "pickle_inside_longitudinal": (
        lambda src, m: {"raw": {"longitudinal.theta": _evil_object_array(m)}},
        r"field 'longitudinal\.theta' holds Python objects",
    ),
    "phi_strings": (
        _edit("phi", lambda a: a.astype(str)),
        r"field 'phi' has dtype <U\d+; expected floating-point numbers",
    ),
    "phi_shape": (
        _edit("phi", lambda a: a[:-1]),
        r"field 'phi' has shape \(\d+,\); expected \(\d+,\)",
    ),
    "cov_phi_shape": (
        _edit("cov_phi", lambda a: a[:, :-1]),
        r"field 'cov_phi' has shape",
    ),
    "member_claims_1e11_values": (
        lambda src, m: {"raw": {"cov_phi": _npy_header((10**11,)) + bytes(64)}},
        r"field 'cov_phi' declares shape \(100000000000,\)",
    ),
    "phi_nan": (_nan_at("phi"), r"field 'phi' holds nan at \(0,\); expected finite"),
    "cov_phi_inf": (
        _edit("cov_phi", lambda a: _set_at(a, 1, np.inf)),
        r"field 'cov_phi' holds inf at \(0, 1\)",
    ),
    "cov_phi_not_symmetric": (
        _edit("cov_phi", lambda a: _set_at(a, 1, a.flat[1] + 1.0)),
        r"field 'cov_phi' is not symmetric",
    ),
    "log_hazard_overflow": (
        _edit("phi", lambda a: _set_at(a, -1, 1e6)),
        r"field 'phi' gives a baseline hazard of",
    ),
    "event_design_changed": (
        _edit("event_design", lambda a: a + 1.0),
        r"field 'event_design' differs from the event design rebuilt",
    ),
    "event_time_negative": (
        _edit("fit_events.col0", lambda a: _set_at(a, 2, -1.0)),
        r"field 'fit_events' column 'time' is -1\.0 at row 2; expected months >= 0",
    ),
    "event_indicator_2": (
        _edit("fit_events.col1", lambda a: _set_at(a, 0, 2.0)),
        r"field 'fit_events' column 'event' is 2\.0 at row 0; expected 0 or 1",
    ),
    "event_count": (
        _edit("fit_events.col1", lambda a: 1.0 - a),
        r"field 'scalars\.n_events' is \d+ but fit_events holds \d+ events",
    ),
    "n_pieces_not_from_event_times": (
        _one_piece_less,
        r"field 'scalars\.n_pieces' is 5 but the event times give 6 pieces",
    ),
    "visit_after_the_event": (
        _visit_after_event,
        r"field 'fit_events' has subject '\w+' with an event at [\d.]+, before the "
        r"last visit at months [\d.]+",
    ),
    "nan_in_fit_rows": (
        _nan_at("fit_rows.col1", 3),
        r"field 'fit_rows' column 'months' has missing values at row 3",
    ),
    "inf_in_fit_rows": (
        _edit("fit_rows.col3", lambda a: _set_at(a, 3, np.inf)),
        r"field 'fit_rows' column 'delta_fs' holds an infinite value",
    ),
    "missing_member": (
        lambda src, m: {"drop": ("cov_phi",)},
        r"field 'cov_phi' is missing",
    ),
    "missing_frame_column": (
        lambda src, m: {"drop": ("fit_rows.col2",)},
        r"field 'fit_rows' is missing \(member 'fit_rows\.col2'\)",
    ),
    "unexpected_member": (
        lambda src, m: {"arrays": {"extra": np.zeros(3)}},
        r"field 'extra' is not part of a JointModel file",
    ),
    "unexpected_longitudinal_member": (
        lambda src, m: {"arrays": {"longitudinal.extra": np.zeros(3)}},
        r"field 'longitudinal\.extra' is not part of a LinearMixedModel file",
    ),
    "longitudinal_nan": (
        _nan_at("longitudinal.fe_params"),
        r"field 'longitudinal\.fe_params' holds nan at \(0,\)",
    ),
    "longitudinal_missing_column": (
        lambda src, m: {"drop": ("longitudinal.frame.col1",)},
        r"field 'longitudinal\.frame' is missing \(member 'longitudinal\.frame\.col1'\)",
    ),
    "header_member_inside_longitudinal": (
        lambda src, m: {"arrays": {"longitudinal.__header__": np.zeros(3, np.uint8)}},
        r"field 'longitudinal\.__header__' is not part of a LinearMixedModel file",
    ),
}


@pytest.mark.parametrize("case", list(ARRAY_CASES))
def test_forged_array_is_refused(tmp_path, saved_file, marker, case):
    make, match = ARRAY_CASES[case]
    path = _craft(saved_file, tmp_path / "edited.npz", **make(saved_file, marker))
    before = _digest(path)
    with pytest.raises(SavedModelError, match=rf"edited\.npz: {match}"):
        JointModel.load(path)
    assert _digest(path) == before


@pytest.mark.parametrize(
    "case",
    [
        "phi_nan",
        "cov_phi_not_symmetric",
        "event_indicator_2",
        "n_pieces_not_from_event_times",
        "unexpected_member",
        "longitudinal_scale",
        "event_formula_payload",
    ],
)
def test_nothing_is_built_before_the_joint_fields_pass(
    tmp_path, saved_file, marker, monkeypatch, case
):
    """The longitudinal model's design (the first thing a load builds) is never
    rebuilt from a file whose joint fields or longitudinal header are refused."""
    import alsprog.models.joint._io as joint_io

    def built(*args, **kwargs):
        raise AssertionError("the longitudinal model was built before the checks")

    monkeypatch.setattr(joint_io, "restore_mixed", built)
    if case in HEADER_CASES:
        edit, match = HEADER_CASES[case]
        path = _craft(saved_file, tmp_path / "edited.npz", header=edit(marker))
    else:
        make, match = ARRAY_CASES[case]
        path = _craft(saved_file, tmp_path / "edited.npz", **make(saved_file, marker))
    with pytest.raises(SavedModelError, match=rf"edited\.npz: {match}"):
        JointModel.load(path)


def test_joint_io_imports_no_private_name_of_another_family():
    """The mixed model's format is embedded through the lmm family's public names."""
    import ast
    import inspect

    import alsprog.models.joint._io as joint_io

    names = {
        (node.module, alias.name)
        for node in ast.walk(ast.parse(inspect.getsource(joint_io)))
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    assert ("alsprog.models.lmm._io", "restore_mixed") in names
    assert not [
        (m, n)
        for m, n in names
        if n.startswith("_") and m.startswith("alsprog.models.") and ".joint" not in m
    ] and "temp_dir" not in {n for _, n in names}
