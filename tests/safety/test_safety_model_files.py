"""Crafted model files: a saved model is checked whole before anything is built.

Every case hands a loader (``LinearMixedModel.load``, ``BayesianTrajectoryModel.load``
or ``alsprog power --from-model``) a file that was damaged, forged or is of another
kind, and asserts the exact outcome: :class:`~alsprog.errors.SavedModelError` with a
message naming the file and the field (or what the file *is*), the input file
byte-identical afterwards, no marker file where the file carries code, no
``MemoryError`` where it claims huge arrays.  Control tests show that the valid files
load and that the code payloads are live (handed to ``pickle``/formulaic directly they
do create the marker).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shlex
import struct
import time
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from npz_forge import craft as _craft
from npz_forge import npy as _npy
from npz_forge import npy_header as _npy_header

from alsprog.errors import SavedModelError
from alsprog.models import BayesianTrajectoryModel, LinearMixedModel

FORMULA = "alsfrs_r_total ~ months * onset_site + (months | subject_id)"


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def table():
    from alsprog.data import assemble
    from alsprog.simulate import simulate_cohort

    cohort = simulate_cohort(30, 0, seed=1)
    return assemble(cohort.visits, cohort.subjects)


@pytest.fixture(scope="module")
def lmm_file(table, tmp_path_factory) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LinearMixedModel(FORMULA).fit(table)
    path = tmp_path_factory.mktemp("lmm") / "model.npz"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def bayes_file(table, tmp_path_factory) -> Path:
    """A file laid out exactly as ``BayesianTrajectoryModel.save`` writes one.

    Built from made-up draws (no sampling, so the suite stays quick); ``load`` reads
    nothing but the file, and :func:`test_valid_files_load` shows that it loads.
    """
    path = tmp_path_factory.mktemp("bayes") / "model.nc"
    _bayes_idata(table).to_netcdf(str(path))
    return path


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a model file ran code: the marker file was created"


def _bayes_idata(table, *, chains=1, draws=20, config=None):
    import arviz as az

    from alsprog._version import __version__

    rng = np.random.default_rng(0)
    df = table[["alsfrs_r_total", "months", "subject_id"]].dropna()
    df = df.reset_index(drop=True)
    ids = sorted(df["subject_id"].unique())
    n, s, c, d = len(df), len(ids), chains, draws
    idata = az.from_dict(
        posterior={
            "beta": rng.normal([38.0, -0.9], 0.1, (c, d, 2)),
            "subject_sd": rng.uniform(0.5, 5.0, (c, d, 2)),
            "subject_corr": rng.uniform(-0.5, 0.5, (c, d)),
            "sigma": rng.uniform(1.5, 2.5, (c, d)),
            "subject_effects": rng.normal(0.0, 1.0, (c, d, s, 2)),
        },
        sample_stats={"diverging": np.zeros((c, d), dtype=bool)},
        log_likelihood={"alsfrs_r_total": rng.normal(-2.0, 0.1, (c, d, n))},
        observed_data={"alsfrs_r_total": df["alsfrs_r_total"].to_numpy(float)},
        constant_data={
            "alsfrs_r_total": df["alsfrs_r_total"].to_numpy(float),
            "months": df["months"].to_numpy(float),
            "subject_id": df["subject_id"].to_numpy(object).astype(str).astype(object),
        },
        coords={
            "term": ["Intercept", "months"],
            "effect": ["Intercept", "months"],
            "subject_id": [str(i) for i in ids],
            "obs": np.arange(n),
        },
        dims={
            "beta": ["term"],
            "subject_sd": ["effect"],
            "subject_effects": ["subject_id", "effect"],
            "alsfrs_r_total": ["obs"],
            "months": ["obs"],
            "subject_id": ["obs"],
        },
    )
    params = BayesianTrajectoryModel(
        chains=chains, draws=draws, tune=10, seed=1, progress=False
    ).get_params()
    idata.attrs["alsprog"] = json.dumps(
        config
        or {
            "model": "BayesianTrajectoryModel",
            "version": __version__,
            "params": params,
        }
    )
    return idata


# ------------------------------------------------------------------- helpers
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _array(path: Path, key: str) -> np.ndarray:
    with np.load(path) as npz:
        return npz[key]


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


def _payload(template: str, marker: Path) -> str:
    return template.format(M=shlex.quote(str(marker)))


# ------------------------------------------------------ mixed-model (.npz) files
def _netcdf(path: Path, *, _src: Path, _m: Path) -> Path:
    import xarray as xr

    xr.Dataset({"x": ("a", np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
    return path


def _hdf5(path: Path, *, _src: Path, _m: Path) -> Path:
    import h5py

    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3.0)
    return path


def _bytes(data: bytes) -> Callable[..., Path]:
    def make(path: Path, *, _src: Path, _m: Path) -> Path:
        path.write_bytes(data)
        return path

    return make


def _truncated(path: Path, *, _src: Path, _m: Path) -> Path:
    raw = _src.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _pickle_file(path: Path, *, _src: Path, _m: Path) -> Path:
    path.write_bytes(pickle.dumps(_Boom(_m)))
    return path


def _npy_file(path: Path, *, _src: Path, _m: Path) -> Path:
    path.write_bytes(_npy(np.arange(3.0)))
    return path


#: id -> (maker, regex the message must match after "<file>: ")
WRONG_KIND = {
    "empty": (_bytes(b""), r"cannot be read: it is an empty file \(0 bytes\)"),
    "text_csv": (
        _bytes(b"subject_id,months,alsfrs_r_total\nP1,0,40\n"),
        r"cannot be read: it is a text file \(starts 'subject_id,months,",
    ),
    "netcdf": (_netcdf, r"cannot be read: it is a netCDF-4/HDF5 file, not an alsprog"),
    "hdf5": (_hdf5, r"cannot be read: it is a netCDF-4/HDF5 file, not an alsprog"),
    "truncated_zip": (_truncated, r"cannot be read: it is a truncated or damaged zip"),
    "zip_magic_only": (
        _bytes(b"PK\x03\x04" + bytes(40)),
        r"cannot be read: it is a truncated or damaged zip",
    ),
    "random_bytes": (
        _bytes(np.random.default_rng(5).bytes(4096)),
        r"cannot be read: it is binary data of an unknown kind \(first bytes ",
    ),
    "pickle_file": (_pickle_file, r"cannot be read: it is a Python pickle \(alsprog"),
    "npy_file": (_npy_file, r"cannot be read: it is a single NumPy array \(\.npy\)"),
}


@pytest.mark.parametrize("case", list(WRONG_KIND))
def test_mixed_model_loader_names_the_kind_of_a_wrong_file(
    tmp_path, lmm_file, marker, case
):
    make, match = WRONG_KIND[case]
    path = make(tmp_path / "model.npz", _src=lmm_file, _m=marker)
    before = _digest(path)
    with pytest.raises(SavedModelError, match=rf"model\.npz: {match}") as info:
        LinearMixedModel.load(path)
    text = str(info.value)
    assert "not an alsprog mixed-model .npz file" in text
    if case != "pickle_file":  # the true kind, never a parser's guess
        assert "pickle" not in text.lower()
    assert _digest(path) == before


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


BRACE = "alsfrs_r_total ~ months + {{__import__('os').system('touch ' + {M!r})}} + (months | subject_id)"
I_CALL = 'alsfrs_r_total ~ months + I(__import__("os").system("touch " + {M!r})) + (months | subject_id)'
DUNDER = "alsfrs_r_total ~ center(months.__class__) + (months | subject_id)"

#: id -> (kwargs of _craft, given the saved file and the marker; regex)
HEADER_CASES: dict[str, tuple[Callable[[Path, Path], dict], str]] = {
    "formula_brace_block": (
        lambda src, m: {
            "header": _set("params", "formula", value=BRACE.format(M=str(m)))
        },
        r"field 'params\.formula' is refused: .*not part of the formula language",
    ),
    "formula_I_import": (
        lambda src, m: {
            "header": _set("params", "formula", value=I_CALL.format(M=str(m)))
        },
        r"field 'params\.formula' is refused: .*__import__",
    ),
    "formula_dunder_attr": (
        lambda src, m: {"header": _set("params", "formula", value=DUNDER)},
        r"field 'params\.formula' is refused",
    ),
    "formula_not_a_string": (
        lambda src, m: {"header": _set("params", "formula", value=["y ~ x"])},
        r"field 'params\.formula' is \['y ~ x'\]; expected str",
    ),
    "missing_model": (
        lambda src, m: {"header": _pop("model")},
        r"field 'model' is missing",
    ),
    "missing_n_obs": (
        lambda src, m: {"header": _pop("scalars", "n_obs")},
        r"field 'scalars\.n_obs' is missing",
    ),
    "missing_frame_index": (
        lambda src, m: {"header": _pop("frame", "index")},
        r"field 'frame\.index' is missing",
    ),
    "missing_param_tol": (
        lambda src, m: {"header": _pop("params", "tol")},
        r"field 'params\.tol' is missing",
    ),
    "wrong_model_class": (
        lambda src, m: {"header": _set("model", value="BayesianTrajectoryModel")},
        r"field 'model' is 'BayesianTrajectoryModel', expected 'LinearMixedModel'",
    ),
    "unknown_format": (
        lambda src, m: {"header": _set("format", value=2)},
        r"field 'format' is 2, expected 1",
    ),
    "reml_string": (
        lambda src, m: {"header": _set("params", "reml", value="yes")},
        r"field 'params\.reml' is 'yes'; expected bool",
    ),
    "max_iter_float": (
        lambda src, m: {"header": _set("params", "max_iter", value=1.5)},
        r"field 'params\.max_iter' is 1\.5; expected int",
    ),
    "max_iter_zero": (
        lambda src, m: {"header": _set("params", "max_iter", value=0)},
        r"field 'params\.max_iter': `max_iter` must be an integer >= 1; got 0",
    ),
    "n_groups_string": (
        lambda src, m: {"header": _set("scalars", "n_groups", value="30")},
        r"field 'scalars\.n_groups' is '30'; expected int",
    ),
    "tol_nan": (
        lambda src, m: {"header": _set("params", "tol", value=float("nan"))},
        r"field 'params\.tol': `tol` must be in \(0, 1\]; got nan",
    ),
    "scale_inf": (
        lambda src, m: {"header": _set("scalars", "scale", value=float("inf"))},
        r"field 'scalars\.scale' is inf; expected a positive finite number",
    ),
    "scale_negative": (
        lambda src, m: {"header": _set("scalars", "scale", value=-4.0)},
        r"field 'scalars\.scale' is -4\.0; expected a positive finite number",
    ),
    "deviance_nan": (
        lambda src, m: {"header": _set("scalars", "deviance", value=float("nan"))},
        r"field 'scalars\.deviance' is nan; expected a finite number",
    ),
    "unknown_field": (
        lambda src, m: {"header": _set("code", value="__import__('os')")},
        r"field 'code' is not part of a LinearMixedModel file",
    ),
    "pandas_dtype_not_allowed": (
        lambda src, m: {
            "header": _set(
                "frame", "columns", 0, "values", "pandas_dtype", value="object"
            )
        },
        r"field 'frame\.columns\[0\]\.values\.pandas_dtype' is 'object'",
    ),
    "n_obs_1e11": (
        lambda src, m: {"header": _set("scalars", "n_obs", value=10**11)},
        r"field 'frame' should have 119 rows \(frame\.n_rows\) but scalars\.n_obs is "
        r"100000000000",
    ),
}


@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_forged_header_is_refused_before_building(tmp_path, lmm_file, marker, case):
    kwargs, match = HEADER_CASES[case]
    path = _craft(lmm_file, tmp_path / "edited.npz", **kwargs(lmm_file, marker))
    before = _digest(path)
    with pytest.raises(SavedModelError, match=rf"edited\.npz: {match}"):
        LinearMixedModel.load(path)
    assert _digest(path) == before


def test_formula_error_keeps_its_cause(tmp_path, lmm_file, marker):
    from alsprog.errors import ModelSpecificationError

    payload = BRACE.format(M=str(marker))
    path = _craft(
        lmm_file, tmp_path / "f.npz", header=_set("params", "formula", value=payload)
    )
    with pytest.raises(SavedModelError) as info:
        LinearMixedModel.load(path)
    assert isinstance(info.value.__cause__, ModelSpecificationError)


def test_formula_payload_is_live(tmp_path, table):
    """Control: the same formula payload, handed to formulaic itself, runs code."""
    from formulaic import model_matrix

    m = tmp_path / "LIVE"
    model_matrix(
        f"alsfrs_r_total ~ months + {{__import__('os').system('touch ' + {str(m)!r})}}",
        table.head(3),
    )
    assert m.exists()


def _cov_re_negative(src: Path, m: Path) -> dict:
    cov = _array(src, "cov_re").copy()
    cov[1, 1] = -0.25
    return {"arrays": {"cov_re": cov}}


def _cov_re_inconsistent(src: Path, m: Path) -> dict:
    return {"arrays": {"cov_re": _array(src, "cov_re") * 2}}


def _theta_negative(src: Path, m: Path) -> dict:
    theta = _array(src, "theta").copy()
    theta[0] = -theta[0]
    return {"arrays": {"theta": theta}}


def _nan_in(key: str) -> Callable[[Path, Path], dict]:
    def make(src: Path, m: Path) -> dict:
        arr = _array(src, key).copy()
        arr.flat[0] = np.nan
        return {"arrays": {key: arr}}

    return make


def _codes_out_of_range(src: Path, m: Path) -> dict:
    site = _array(src, "frame.col2")
    codes = (site == "spinal").astype(np.int64)
    codes[3] = 7
    spec = {"kind": "categorical", "ordered": False, "categories": {"kind": "object"}}
    return {
        "header": _set("frame", "columns", 2, "values", value=spec),
        "drop": ("frame.col2",),
        "arrays": {
            "frame.col2.codes": codes,
            "frame.col2.categories": np.array(["bulbar", "spinal"]),
        },
    }


ARRAY_CASES: dict[str, tuple[Callable[[Path, Path], dict], str]] = {
    "object_dtype_pickle": (
        lambda src, m: {"raw": {"fe_params": _evil_object_array(m)}},
        r"field 'fe_params' holds Python objects \(dtype object\)",
    ),
    "structured_dtype": (
        lambda src, m: {
            "raw": {"theta": _npy(np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")]))}
        },
        r"field 'theta' has a structured dtype",
    ),
    "member_claims_1e11_elements": (
        lambda src, m: {"raw": {"resid": _npy_header((10**11,)) + bytes(64)}},
        r"field 'resid' declares shape \(100000000000,\) of float64 \(800000000000 "
        r"bytes\) but the member holds 64 bytes; refused before reading it",
    ),
    "header_claims_1e11_bytes": (
        lambda src, m: {"raw": {"__header__": _npy_header((10**11,), "|u1") + b"{}"}},
        r"field 'header' declares shape \(100000000000,\)",
    ),
    "deflate_bomb": (
        lambda src, m: {
            "raw": {"resid": _npy_header((6_250_000,)) + bytes(50_000_000)},
            "deflated": ("resid",),
        },
        r"field 'resid' (claims 5\d+ bytes from \d+ compressed|has shape \(6250000,\))",
    ),
    "shape_mismatch_resid": (
        lambda src, m: {"arrays": {"resid": _array(src, "resid")[:-1]}},
        r"field 'resid' has shape \(118,\); expected \(119,\)",
    ),
    "shape_transposed": (
        lambda src, m: {"arrays": {"random_effects": _array(src, "random_effects").T}},
        r"field 'random_effects' has shape \(2, 30\); expected \(30, 2\)",
    ),
    "missing_member": (
        lambda src, m: {"drop": ("Q",)},
        r"field 'Q' is missing",
    ),
    "missing_frame_column": (
        lambda src, m: {"drop": ("frame.col1",)},
        r"field 'frame' is missing \(member 'frame\.col1'\)",
    ),
    "unexpected_member": (
        lambda src, m: {"arrays": {"extra": np.zeros(3)}},
        r"field 'extra' is not part of a LinearMixedModel file",
    ),
    "strings_for_numbers": (
        lambda src, m: {"arrays": {"fe_params": np.array(["a", "b", "c", "d"])}},
        r"field 'fe_params' has dtype <U1; expected floating-point numbers",
    ),
    "nan_fixed_effect": (
        _nan_in("fe_params"),
        r"field 'fe_params' holds nan at \(0,\); expected finite numbers",
    ),
    "inf_in_Q": (
        lambda src, m: {"arrays": {"Q": _array(src, "Q") * np.inf}},
        r"field 'Q' holds (inf|nan) at",
    ),
    "negative_variance": (
        _cov_re_negative,
        r"field 'cov_re' has a negative variance -0\.25 on its diagonal",
    ),
    "cov_re_not_from_theta": (
        _cov_re_inconsistent,
        r"field 'cov_re' differs from scalars\.scale x Lambda\(theta\)",
    ),
    "negative_relative_sd": (
        _theta_negative,
        r"field 'theta' has Intercept = -[\d.]+; a relative standard deviation",
    ),
    "nan_in_saved_rows": (
        _nan_in("frame.col0"),
        r"field 'frame' column 'months' has missing values at row 0",
    ),
    "category_code_out_of_range": (
        _codes_out_of_range,
        r"field 'frame' has category code 7; expected -1 to 1 \(2 categories\)",
    ),
    "header_not_json": (
        lambda src, m: {
            "raw": {"__header__": _npy(np.frombuffer(b"{'a': 1", np.uint8))}
        },
        r"field 'header' is not valid JSON",
    ),
    "header_deeply_nested": (
        lambda src, m: {
            "raw": {
                "__header__": _npy(
                    np.frombuffer(b"[" * 200_000 + b"]" * 200_000, np.uint8)
                )
            }
        },
        r"field 'header' is not (valid JSON|a JSON object)",
    ),
}


@pytest.mark.parametrize("case", list(ARRAY_CASES))
def test_forged_array_is_refused(tmp_path, lmm_file, marker, case):
    kwargs, match = ARRAY_CASES[case]
    path = _craft(lmm_file, tmp_path / "edited.npz", **kwargs(lmm_file, marker))
    before = _digest(path)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(SavedModelError, match=rf"edited\.npz: {match}"):
            LinearMixedModel.load(path)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _digest(path) == before
    if case in (
        "member_claims_1e11_elements",
        "header_claims_1e11_bytes",
        "deflate_bomb",
    ):
        # refused from the headers alone: no allocation, no decompression
        assert peak < 8 * 2**20, peak
        assert seconds < 5, seconds


def test_object_array_payload_is_live(tmp_path):
    """Control: the object member's pickle does run code when numpy unpickles it."""
    m = tmp_path / "LIVE"
    np.load(io.BytesIO(_evil_object_array(m)), allow_pickle=True)
    assert m.exists()


def test_deflate_member_claiming_more_than_deflate_can_give(tmp_path, lmm_file):
    """A member whose directory entry claims 1000x more than deflate can produce."""
    path = _craft(lmm_file, tmp_path / "bomb.npz", deflated=("resid",))
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("resid.npy")
        pos = zf.start_dir
    forged = struct.pack("<I", 2**31)
    # the uncompressed size: offset 22 of the local header, 24 of the directory entry
    raw[info.header_offset + 22 : info.header_offset + 26] = forged
    while raw[pos : pos + 4] == b"PK\x01\x02":
        n_name, n_extra, n_comment = struct.unpack("<HHH", raw[pos + 28 : pos + 34])
        if raw[pos + 46 : pos + 46 + n_name] == b"resid.npy":
            raw[pos + 24 : pos + 28] = forged
        pos += 46 + n_name + n_extra + n_comment
    path.write_bytes(bytes(raw))
    with pytest.raises(
        SavedModelError,
        match=r"bomb\.npz: field 'resid' claims 2147483648 bytes from \d+ compressed, more than deflate can expand to",
    ):
        LinearMixedModel.load(path)


# ----------------------------------------------------- Bayesian (.nc) files
def _rewrite_bayes(src: Path, dst: Path, edit: Callable) -> Path:
    import arviz as az

    idata = az.from_netcdf(str(src))
    edit(idata)
    idata.to_netcdf(str(dst))
    return dst


def _config(**change):
    def edit(idata):
        cfg = json.loads(idata.attrs["alsprog"])
        for key, value in change.items():
            if key in cfg:
                cfg[key] = value
            else:
                cfg["params"][key] = value
        idata.attrs["alsprog"] = json.dumps(cfg)

    return edit


def _drop_group(name):
    def edit(idata):
        del idata[name]

    return edit


def _posterior(fn):
    def edit(idata):
        post = idata.posterior.load()
        idata.posterior = fn(post)

    return edit


def _add_huge_variable(path: Path) -> None:
    import h5netcdf

    with h5netcdf.File(path, "a") as f:
        g = f.groups["posterior"]
        g.dimensions["huge"] = 10**11
        g.create_variable("huge_var", ("huge",), "f8", chunks=(4096,))


BAYES_CASES: dict[str, tuple[Callable, str]] = {
    "missing_group_constant_data": (
        _drop_group("constant_data"),
        r"field 'constant_data' is missing: the file has no group 'constant_data'",
    ),
    "missing_group_sample_stats": (
        _drop_group("sample_stats"),
        r"field 'sample_stats' is missing",
    ),
    "missing_variable_sigma": (
        _posterior(lambda p: p.drop_vars("sigma")),
        r"field 'posterior\.sigma' is missing from group 'posterior'",
    ),
    "wrong_dims_subject_effects": (
        _posterior(
            lambda p: p.assign(
                subject_effects=p["subject_effects"].transpose(
                    "chain", "draw", "effect", "subject_id"
                )
            )
        ),
        r"field 'posterior\.subject_effects' has dimensions \('chain', 'draw', "
        r"'effect', 'subject_id'\); expected",
    ),
    "chains_disagree": (
        _config(chains=4),
        r"field 'posterior' has 1 chains x 20 draws but params\.chains = 4",
    ),
    "formula_payload": (
        lambda idata, m: _config(
            formula=f"alsfrs_r_total ~ months + {{__import__('os').system('touch {m}')}}"
        )(idata),
        r"field 'params\.formula' is refused",
    ),
    "time_column_payload": (
        lambda idata, m: _config(
            time=f"months) + {{__import__('os').system('touch {m}')}} + (1"
        )(idata),
        r"field 'params\.time' is refused: The saved time .* is refused in the term",
    ),
    "prior_not_a_distribution": (
        _config(priors={"sigma": {"distribution": "__import__", "name": "os"}}),
        r"field 'params\.priors\.sigma' is refused",
    ),
    "chains_string": (
        _config(chains="4"),
        r"field 'params\.chains' is '4'; expected int",
    ),
    "target_accept_out_of_range": (
        _config(target_accept=1.5),
        r"field 'params\.target_accept': `target_accept` must be in \(0, 1\)",
    ),
    "unknown_version": (_config(version="0.0.1"), r"field 'version' is '0\.0\.1'"),
    "wrong_model_class": (
        _config(model="LinearMixedModel"),
        r"field 'model' is 'LinearMixedModel', expected 'BayesianTrajectoryModel'",
    ),
    "config_not_json": (
        lambda idata: idata.attrs.update(alsprog="{'model': "),
        r"field 'alsprog' is not a valid config: not JSON",
    ),
    "nan_draws": (
        _posterior(lambda p: p.assign(sigma=p["sigma"] * np.nan)),
        r"field 'posterior\.sigma' holds values that are not finite numbers",
    ),
    "negative_scale": (
        _posterior(lambda p: p.assign(subject_sd=-p["subject_sd"])),
        r"field 'posterior\.subject_sd' holds -[\d.]+; a scale must be positive",
    ),
    "subjects_disagree": (
        _posterior(lambda p: p.isel(subject_id=slice(0, 10))),
        r"field 'posterior\.subject_id' has 10 values but the saved rows give 30; "
        r"the file is inconsistent",
    ),
}


@pytest.mark.parametrize("case", list(BAYES_CASES))
def test_forged_bayesian_file_is_refused(tmp_path, bayes_file, marker, case):
    edit, match = BAYES_CASES[case]
    needs_marker = edit.__code__.co_argcount == 2
    path = _rewrite_bayes(
        bayes_file,
        tmp_path / "edited.nc",
        (lambda idata: edit(idata, marker)) if needs_marker else edit,
    )
    before = _digest(path)
    with pytest.raises(SavedModelError, match=rf"edited\.nc: {match}"):
        BayesianTrajectoryModel.load(path)
    assert _digest(path) == before


def test_bayesian_variable_declaring_1e11_values(tmp_path, bayes_file):
    path = tmp_path / "huge.nc"
    path.write_bytes(bayes_file.read_bytes())
    _add_huge_variable(path)
    t0 = time.perf_counter()
    with pytest.raises(
        SavedModelError,
        match=r"huge\.nc: the variables declare 8000\d+ bytes, more than a \d+-byte "
        r"file can hold",
    ):
        BayesianTrajectoryModel.load(path)
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize(
    ("case", "match"),
    [
        (
            "npz",
            r"it is a zip archive \(\.npz\) \(a mixed model saved by "
            r"LinearMixedModel\.save\? load it with LinearMixedModel\.load\)",
        ),
        ("text", r"it is a text file \(starts 'not netcdf'\)"),
        ("empty", r"it is an empty file"),
        ("netcdf3", r"it is a netCDF-3 \(64-bit offset\) file"),
    ],
)
def test_bayesian_loader_names_the_kind_of_a_wrong_file(
    tmp_path, lmm_file, case, match
):
    path = tmp_path / "model.nc"
    if case == "npz":
        path.write_bytes(lmm_file.read_bytes())
    elif case == "text":
        path.write_text("not netcdf\n")
    elif case == "empty":
        path.write_bytes(b"")
    else:
        import xarray as xr

        xr.Dataset({"x": ("a", np.arange(3.0))}).to_netcdf(path, engine="scipy")
    with pytest.raises(
        SavedModelError, match=rf"model\.nc: cannot be read: {match}"
    ) as info:
        BayesianTrajectoryModel.load(path)
    assert "pickle" not in str(info.value).lower()


# --------------------------------------------------- alsprog power --from-model
POWER_CASES = {
    "bayesian_netcdf": (
        lambda tmp, lmm, bayes, m: bayes,
        r"it is a netCDF-4/HDF5 file; --from-model takes a mixed model saved by "
        r"LinearMixedModel\.save",
    ),
    "empty": (
        lambda tmp, lmm, bayes, m: _bytes(b"")(tmp / "m.npz", _src=lmm, _m=m),
        r"it is an empty file \(0 bytes\); --from-model takes",
    ),
    "random_bytes": (
        lambda tmp, lmm, bayes, m: _bytes(np.random.default_rng(1).bytes(999))(
            tmp / "m.npz", _src=lmm, _m=m
        ),
        r"it is binary data of an unknown kind",
    ),
    "pickle": (
        lambda tmp, lmm, bayes, m: _pickle_file(tmp / "m.pkl", _src=lmm, _m=m),
        r"it is a Python pickle",
    ),
    "truncated_zip": (
        lambda tmp, lmm, bayes, m: _truncated(tmp / "m.npz", _src=lmm, _m=m),
        r"cannot be read: it is a truncated or damaged zip archive",
    ),
    "formula_payload": (
        lambda tmp, lmm, bayes, m: _craft(
            lmm,
            tmp / "m.npz",
            header=_set("params", "formula", value=BRACE.format(M=str(m))),
        ),
        r"field 'params\.formula' is refused",
    ),
    "object_member": (
        lambda tmp, lmm, bayes, m: _craft(
            lmm, tmp / "m.npz", raw={"cov_beta": _evil_object_array(m)}
        ),
        r"field 'cov_beta' holds Python objects",
    ),
    "member_claims_1e11": (
        lambda tmp, lmm, bayes, m: _craft(
            lmm, tmp / "m.npz", raw={"Q": _npy_header((10**11, 2, 2)) + bytes(8)}
        ),
        r"field 'Q' declares shape \(100000000000, 2, 2\)",
    ),
    "wrong_model_class": (
        lambda tmp, lmm, bayes, m: _craft(
            lmm, tmp / "m.npz", header=_set("model", value="MMRM")
        ),
        r"field 'model' is 'MMRM', expected 'LinearMixedModel'",
    ),
    "negative_variance": (
        lambda tmp, lmm, bayes, m: _craft(
            lmm, tmp / "m.npz", **_cov_re_negative(lmm, m)
        ),
        r"field 'cov_re' has a negative variance",
    ),
}


@pytest.mark.parametrize("case", list(POWER_CASES))
def test_power_from_model_refuses_bad_files(
    tmp_path, lmm_file, bayes_file, marker, capsys, case
):
    from alsprog.cli import main

    make, match = POWER_CASES[case]
    path = make(tmp_path, lmm_file, bayes_file, marker)
    before = _digest(path)
    rc = main(["power", "--from-model", str(path), "--slowing", "0.3"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert err.startswith("alsprog: error: ") and str(path) in err
    assert "Traceback" not in err
    import re

    assert re.search(match, err), err
    assert _digest(path) == before


def test_power_from_model_table_payload_in_outcome(tmp_path, table, marker, capsys):
    """A table given to --from-model: the formula built from --outcome is checked."""
    from alsprog.cli import main

    path = tmp_path / "history.csv"
    table.to_csv(path, index=False)
    before = _digest(path)
    payload = f"{{__import__('os').system('touch {marker}')}}"
    rc = main(
        ["power", "--from-model", str(path), "--outcome", payload, "--slowing", "0.3"]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and "not part of the formula" in err, err
    assert _digest(path) == before


# ------------------------------------------------------------------ controls
def test_valid_files_load(lmm_file, bayes_file, capsys):
    from alsprog.cli import main

    m = LinearMixedModel.load(lmm_file)
    assert list(m.fe_params_.index)[:2] == ["Intercept", "months"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = BayesianTrajectoryModel.load(bayes_file)
    assert b.terms_ == ["Intercept", "months"] and b.n_obs_ > 0
    assert main(["power", "--from-model", str(lmm_file), "--slowing", "0.3"]) == 0
    assert "sample size per arm" in capsys.readouterr().out


def test_saved_models_declare_their_suffix():
    assert LinearMixedModel.file_suffix == ".npz"
    assert BayesianTrajectoryModel.file_suffix == ".nc"
