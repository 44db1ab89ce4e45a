"""Property-based fuzzing of the table readers: never a raw traceback, never a change.

Random mutations of valid visits, subjects, imaging and long-format CSV files (byte
flips, deleted, duplicated or inserted characters, swapped separators, truncation,
hostile cell values, dropped, duplicated, renamed or shuffled columns) go through
``read_visits`` / ``read_subjects`` / ``read_imaging`` / ``read_table`` / ``assemble``
and, as DataFrames, through ``validate``.  Whatever the input, the only exceptions
allowed are alsprog's own (:class:`~alsprog.errors.AlsprogError` subclasses, which
name the problem), the input file's bytes are unchanged and nothing is written beside
it; a DataFrame given to ``validate`` is unchanged.

The default tier runs a bounded, derandomized sample (reproducible in CI, well under
30 s); the ``slow`` tier runs many more examples of the same properties.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from alsprog.data import (  # noqa: E402
    assemble,
    read_imaging,
    read_subjects,
    read_table,
    read_visits,
    validate,
    write_table,
)
from alsprog.errors import AlsprogError  # noqa: E402

TODAY = dt.date(2026, 1, 1)
_COMMON = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FAST_READ = settings(max_examples=200, **_COMMON)  # ~5 ms an example
FAST = settings(max_examples=50, **_COMMON)  # ~60 ms an example
SLOW = settings(max_examples=400, **_COMMON)  # the `slow` tier: ~1 min in all

#: Cell values and byte strings a hostile or broken file is made of.
NASTY_CELLS = [
    "",
    "NA",
    "nan",
    "-1",
    "-0",
    "1e308",
    "1e400",
    "inf",
    "-inf",
    "0x10",
    "1.5",
    "48",
    "49",
    "4.0",
    "TRUE",
    "Y",
    "M",
    "1",
    "2",
    "limb",
    "2099-01-01",
    "9999-12-31",
    "0001-01-01",
    "1899-12-31",
    "2020-02-30",
    "2020-01-01T10:00",
    "20200101",
    "P 001",
    "P001",
    "../../etc",
    "é",
    "\u202e",
    "x" * 300,
    '"',
    '""',
    "a,b",
    "a\nb",
    "\t",
    ";",
    "\x00",
    "\ufeff",
    "999999999999999999999",
]
NASTY_BYTES = [
    b",",
    b";",
    b"\t",
    b"|",
    b'"',
    b"\n",
    b"\r",
    b"\r\n",
    b"\x00",
    b"\xff",
    b"\xfe",
    b"\xef\xbb\xbf",
    b"\xe9",
    b"\xc3",
    b" ",
    b"\\",
    b"'",
    b"#",
    b"NA",
    b"\x1f\x8b",
    b"PAR1",
]
HEADER_VARIANTS = [
    str.upper,
    str.title,
    lambda s: s.replace("_", ""),
    lambda s: s.replace("_", " "),
    lambda s: s + "_",
    lambda s: " " + s,
    lambda s: s[:-1],
    lambda s: "",
]


@lru_cache(maxsize=1)
def _valid_files() -> dict[str, bytes]:
    """Valid CSV bytes of each table, from a small simulated cohort."""
    from alsprog.simulate import simulate_cohort

    c = simulate_cohort(3, 1, months=12, seed=7)
    long = assemble(c.visits, c.subjects, c.imaging, today=TODAY)
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name, df in (
            ("visits", c.visits),
            ("subjects", c.subjects),
            ("imaging", c.imaging),
            ("long", long),
        ):
            out[name] = write_table(df, Path(d) / f"{name}.csv").read_bytes()
    return out


# ------------------------------------------------------------------- mutations
def _split(data: bytes) -> list[list[bytes]]:
    return [line.split(b",") for line in data.split(b"\n")]


def _join(rows: list[list[bytes]]) -> bytes:
    return b"\n".join(b",".join(r) for r in rows)


def _at(data: bytes, frac: float) -> int:
    return min(int(frac * len(data)), max(len(data) - 1, 0))


def _apply(data: bytes, op: tuple[Any, ...]) -> bytes:
    kind = op[0]
    if kind == "flip" and data:
        i = _at(data, op[1])
        return data[:i] + bytes([op[2]]) + data[i + 1 :]
    if kind == "delete" and data:
        i = _at(data, op[1])
        return data[:i] + data[i + op[2] :]
    if kind == "duplicate" and data:
        i = _at(data, op[1])
        return data[: i + op[2]] + data[i:]
    if kind == "insert":
        i = _at(data, op[1])
        return data[:i] + op[2] + data[i:]
    if kind == "truncate":
        return data[: int(op[1] * len(data))]
    if kind == "separator":
        return data.replace(b",", op[1])
    rows = _split(data)
    width = len(rows[0])
    if kind == "cell" and len(rows) > 1:
        r = 1 + op[1] % (len(rows) - 1)
        if rows[r]:
            rows[r][op[2] % len(rows[r])] = op[3].encode("utf-8", "surrogatepass")
    elif kind == "drop_column":
        k = op[1] % width
        rows = [row[:k] + row[k + 1 :] for row in rows]
    elif kind == "duplicate_column":
        k = op[1] % width
        rows = [row[: k + 1] + row[k : k + 1] + row[k + 1 :] for row in rows]
    elif kind == "shuffle_header":
        rows[0] = [rows[0][i % width] for i in op[1]][:width] or rows[0]
    elif kind == "rename_header":
        k = op[1] % width
        rows[0][k] = op[2](rows[0][k].decode("utf-8", "replace")).encode()
    elif kind == "drop_rows" and len(rows) > 1:
        rows = [rows[0]] + [row for i, row in enumerate(rows[1:]) if i % op[1]]
    return _join(rows)


_frac = st.floats(min_value=0.0, max_value=1.0)
OPS = st.one_of(
    st.tuples(st.just("flip"), _frac, st.integers(0, 255)),
    st.tuples(st.just("delete"), _frac, st.integers(1, 8)),
    st.tuples(st.just("duplicate"), _frac, st.integers(1, 40)),
    st.tuples(
        st.just("insert"),
        _frac,
        st.one_of(st.sampled_from(NASTY_BYTES), st.binary(min_size=1, max_size=6)),
    ),
    st.tuples(st.just("truncate"), _frac),
    st.tuples(st.just("separator"), st.sampled_from([b";", b"\t", b"|", b", "])),
    st.tuples(
        st.just("cell"),
        st.integers(0, 200),
        st.integers(0, 40),
        st.one_of(st.sampled_from(NASTY_CELLS), st.text(max_size=12)),
    ),
    st.tuples(st.just("drop_column"), st.integers(0, 40)),
    st.tuples(st.just("duplicate_column"), st.integers(0, 40)),
    st.tuples(st.just("shuffle_header"), st.permutations(list(range(40)))),
    st.tuples(
        st.just("rename_header"), st.integers(0, 40), st.sampled_from(HEADER_VARIANTS)
    ),
    st.tuples(st.just("drop_rows"), st.integers(2, 4)),
)
MUTATIONS = st.lists(OPS, min_size=1, max_size=4)


def _mutate(name: str, ops: list[tuple[Any, ...]]) -> bytes:
    data = _valid_files()[name]
    for op in ops:
        data = _apply(data, op)
    return data


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _only_alsprog_errors(call: Any) -> Any:
    """Run ``call``; an alsprog error is a fine outcome, any other type fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DataWarnings (synonyms mapped) are fine
        try:
            return call()
        except AlsprogError as exc:
            assert str(exc)  # says what is wrong
            return None


READERS = {"visits": read_visits, "subjects": read_subjects, "imaging": read_imaging}


# ------------------------------------------------------------------- properties
def _check_reader(name: str, ops: list[tuple[Any, ...]], suffix: str) -> None:
    data = _mutate(name, ops)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}{suffix}"
        path.write_bytes(data)
        if name == "long":
            _only_alsprog_errors(lambda: read_table(path, kind="long", today=TODAY))
            _only_alsprog_errors(lambda: read_table(path, today=TODAY))
        else:
            _only_alsprog_errors(lambda: READERS[name](path, today=TODAY))
        assert _digest(path.read_bytes()) == _digest(data)
        assert [p.name for p in Path(d).iterdir()] == [path.name]


def _check_assemble(name: str, ops: list[tuple[Any, ...]]) -> None:
    data = _mutate(name, ops)
    with tempfile.TemporaryDirectory() as d:
        paths = {}
        for table, valid in _valid_files().items():
            if table == "long":
                continue
            paths[table] = Path(d) / f"{table}.csv"
            paths[table].write_bytes(data if table == name else valid)
        before = {k: _digest(p.read_bytes()) for k, p in paths.items()}
        _only_alsprog_errors(
            lambda: assemble(
                paths["visits"], paths["subjects"], paths["imaging"], today=TODAY
            )
        )
        assert {k: _digest(p.read_bytes()) for k, p in paths.items()} == before
        assert sorted(p.name for p in Path(d).iterdir()) == sorted(
            p.name for p in paths.values()
        )


def _frame_key(df: pd.DataFrame) -> tuple[Any, ...]:
    return (
        pd.util.hash_pandas_object(df.astype(str), index=True).to_numpy().tobytes(),
        tuple(map(str, df.columns)),
        tuple(map(str, df.dtypes)),
        repr(df.attrs),
    )


def _check_validate_frame(ops: list[tuple[Any, ...]]) -> None:
    """Cell, column and header mutations of a long table given as a DataFrame."""
    long = pd.read_csv(
        __import__("io").BytesIO(_valid_files()["long"]),
        dtype=str,
        keep_default_na=False,
    )
    df = long.copy()
    for op in ops:
        kind = op[0]
        if kind == "cell" and len(df):
            df.iloc[op[1] % len(df), op[2] % df.shape[1]] = op[3]
        elif kind == "drop_column" and df.shape[1] > 1:
            df = df.drop(columns=df.columns[op[1] % df.shape[1]])
        elif kind == "duplicate_column":
            k = op[1] % df.shape[1]
            df = pd.concat([df, df.iloc[:, [k]]], axis=1)
        elif kind == "shuffle_header":
            order = [i % df.shape[1] for i in op[1]]
            order = list(dict.fromkeys(order)) or list(range(df.shape[1]))
            df = df.iloc[:, order]
        elif kind == "rename_header":
            k = op[1] % df.shape[1]
            cols = list(df.columns)
            cols[k] = op[2](str(cols[k]))
            df.columns = cols
        elif kind == "drop_rows":
            df = df.iloc[[i for i in range(len(df)) if i % op[1]]]
    key = _frame_key(df)
    _only_alsprog_errors(lambda: validate(df, today=TODAY))
    assert _frame_key(df) == key


TABLES = st.sampled_from(["visits", "subjects", "imaging", "long"])
INPUT_TABLES = st.sampled_from(["visits", "subjects", "imaging"])
SUFFIXES = st.sampled_from([".csv", ".tsv", ".txt"])


def test_valid_files_pass():
    """The unmutated files are valid: the properties start from good data."""
    with tempfile.TemporaryDirectory() as d:
        for name, data in _valid_files().items():
            path = Path(d) / f"{name}.csv"
            path.write_bytes(data)
            if name == "long":
                read_table(path, kind="long", today=TODAY)
            else:
                READERS[name](path, today=TODAY)


def test_mutations_change_the_files():
    """The fuzzer's operations do corrupt a file (a guard against a no-op fuzzer)."""
    base = _valid_files()["visits"]
    assert _apply(base, ("separator", b";")) != base
    assert _apply(base, ("drop_column", 1)).count(b",") < base.count(b",")
    assert _apply(base, ("truncate", 0.5)) == base[: len(base) // 2]
    assert b"2099-01-01" in _apply(base, ("cell", 3, 1, "2099-01-01"))


@FAST_READ
@given(name=TABLES, ops=MUTATIONS, suffix=SUFFIXES)
def test_readers_raise_only_alsprog_errors(name, ops, suffix):
    _check_reader(name, ops, suffix)


@FAST
@given(name=INPUT_TABLES, ops=MUTATIONS)
def test_assemble_raises_only_alsprog_errors(name, ops):
    _check_assemble(name, ops)


@FAST
@given(ops=MUTATIONS)
def test_validate_raises_only_alsprog_errors_and_keeps_the_frame(ops):
    _check_validate_frame(ops)


@pytest.mark.veryslow  # a study (make test-all): keeps make test near 15 minutes
@SLOW
@given(name=TABLES, ops=MUTATIONS, suffix=SUFFIXES)
def test_readers_fuzz_long_run(name, ops, suffix):
    _check_reader(name, ops, suffix)


@pytest.mark.veryslow  # a study (make test-all): keeps make test near 15 minutes
@SLOW
@given(name=INPUT_TABLES, ops=MUTATIONS)
def test_assemble_fuzz_long_run(name, ops):
    _check_assemble(name, ops)


@pytest.mark.veryslow  # a study (make test-all): keeps make test near 15 minutes
@SLOW
@given(ops=MUTATIONS)
def test_validate_fuzz_long_run(ops):
    _check_validate_frame(ops)
