"""Reading BOLD series for extract_connectivity: the gzip reader of every installed
inflater against the stdlib's gzip, and the block-wise region sums (runs of equal
region) against a plain nibabel read summed by hand, at odd block and chunk
boundaries, for gzipped, uncompressed, scaled int16, big-endian and non-finite
series."""

from __future__ import annotations

import gzip
import io

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from alsprog.errors import ImagingError
from alsprog.imaging import _connectivity as conn
from alsprog.imaging._atlas import prepare_atlas
from alsprog.imaging._gzread import INFLATERS, FastReader, inflater

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
NAMES = list(INFLATERS)


def _labels(shape=(7, 5, 6)):
    """Three regions in interleaved stripes (many short runs in Fortran order) and
    background between them."""
    lab = np.zeros(shape, dtype=np.int16)
    x, y, z = np.indices(shape)
    lab[(x + 2 * y + z) % 4 == 1] = 1
    lab[(x + 2 * y + z) % 4 == 2] = 3
    lab[(x * y + z) % 5 == 0] = 2
    lab[0] = 0
    return lab


def _atlas(lab, mask=None):
    lut = {int(v): f"r{int(v)}" for v in np.unique(lab) if v}
    return prepare_atlas(nib.Nifti1Image(lab, AFFINE), lut, mask)


def _expected(path, lab, atlas):
    """Region sums by hand: nibabel's scaled values, ``np.bincount`` per volume
    (the oracle for the raw sums times the slope plus the intercept times n)."""
    img = nib.load(path)
    vals = img.get_fdata()
    flat = lab.ravel(order="F")
    k = atlas.n_regions
    order = [int(v) for v in atlas.labels]
    out = np.empty((vals.shape[3], k))
    for t in range(vals.shape[3]):
        per = np.bincount(flat, weights=vals[..., t].ravel(order="F"))
        out[t] = [per[v] for v in order]
    return out


def _write(tmp_path, data, name, *, slope=None, dtype=None):
    img = nib.Nifti1Image(data if dtype is None else data.astype(dtype), AFFINE)
    if slope is not None:
        img.header.set_slope_inter(*slope)
    path = tmp_path / name
    nib.save(img, path)
    return path


def _scaled_means(bold):
    slope, inter = bold.scale
    return bold.sums / bold.used * slope + inter


@pytest.mark.parametrize("using", NAMES)
def test_reader_equals_stdlib_gzip_at_odd_boundaries(tmp_path, using, monkeypatch):
    rng = np.random.default_rng(3)
    payload = rng.normal(size=5000).astype(np.float32).tobytes() + bytes(range(256))
    # two gzip members and zero padding after them, as some writers leave
    raw = gzip.compress(payload[:7001]) + gzip.compress(payload[7001:]) + b"\0" * 9
    path = tmp_path / "x.gz"
    path.write_bytes(raw)
    monkeypatch.setattr(FastReader, "_CHUNK", 37)  # compressed bytes per raw read
    with path.open("rb") as fh:
        reader = FastReader(fh, str(path), using)
        parts, n = [], 0
        while True:
            got = reader.read([13, 1000, 4097, 1][n % 4])
            n += 1
            if not got:
                break
            parts.append(got)
    assert b"".join(parts) == gzip.decompress(raw[:-9])


@pytest.mark.parametrize("using", NAMES)
def test_reader_corrupt_stream_names_file(tmp_path, using):
    raw = bytearray(gzip.compress(np.arange(4000, dtype=np.int32).tobytes()))
    raw[40:60] = b"\xff" * 20
    path = tmp_path / "bad_bold.nii.gz"
    path.write_bytes(bytes(raw))
    with (
        path.open("rb") as fh,
        pytest.raises(ImagingError, match=r"bad_bold\.nii\.gz: cannot be read"),
    ):
        FastReader(fh, str(path), using).read(10**6)


def test_unknown_inflater_refused():
    with pytest.raises(ValueError, match="not installed"):
        inflater("no-such")


def test_runs_cover_each_region_exactly():
    lab = _labels()
    atlas = _atlas(lab)
    runs = conn._runs(atlas)
    flat = lab.ravel(order="F")
    ends = np.append(runs.starts[1:], flat.size)
    for j, v in enumerate(atlas.labels):
        mine = runs.order[runs.bounds[j] : runs.bounds[j + 1]]
        covered = np.concatenate([np.arange(runs.starts[r], ends[r]) for r in mine])
        assert_array_equal(np.sort(covered), np.flatnonzero(flat == v))


@pytest.mark.parametrize(
    ("name", "dtype", "slope"),
    [
        ("f32_bold.nii.gz", np.float32, None),
        ("f32_bold.nii", np.float32, None),
        ("i16_bold.nii.gz", np.int16, (0.25, 7.0)),
        ("i16_bold.nii", np.int16, (-1.5, 3.0)),
        ("be_bold.nii.gz", np.dtype(">f4"), None),
        ("f64_bold.nii.gz", np.float64, None),
    ],
)
@pytest.mark.parametrize("block", [1, 3 * 210 * 4 - 1, 10**9])
def test_region_sums_equal_a_nibabel_read(
    tmp_path, monkeypatch, name, dtype, slope, block
):
    # block bytes: one volume per block, blocks ending mid-way, one block in all
    lab = _labels()
    atlas = _atlas(lab)
    rng = np.random.default_rng(11)
    data = rng.integers(-2000, 2000, (*lab.shape, 9)).astype(np.float64)
    if np.dtype(dtype).kind == "f":
        data = data + rng.normal(0, 1, data.shape)
    path = _write(tmp_path, data, name, slope=slope, dtype=dtype)
    monkeypatch.setattr(conn, "_BLOCK_BYTES", block)
    monkeypatch.setattr(FastReader, "_CHUNK", 101)
    expect = _expected(path, lab, atlas)
    for runs in (conn._runs(atlas), None):
        bold = conn._read_bold(str(path), atlas, runs)
        assert_array_equal(bold.used, np.diff(atlas.starts))
        assert not bold.n_nan.any()
        sums = _scaled_means(bold) * bold.used
        assert_allclose(sums, expect, rtol=1e-12, atol=1e-9)


def test_masked_out_region_is_empty_on_both_paths(tmp_path):
    lab = _labels()
    mask = (lab != 2).astype(np.uint8)  # region 2 wholly outside the mask
    atlas = _atlas(lab, nib.Nifti1Image(mask, AFFINE))
    data = np.random.default_rng(2).normal(50, 1, (*lab.shape, 5))
    path = _write(tmp_path, data, "m_bold.nii.gz", dtype=np.float32)
    fast = conn._read_bold(str(path), atlas, conn._runs(atlas))
    slow = conn._read_bold(str(path), atlas, None)
    j = list(atlas.labels).index(2)
    assert fast.used[j] == slow.used[j] == 0
    assert_array_equal(fast.used, slow.used)
    assert_allclose(fast.sums, slow.sums, rtol=1e-13)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxel_falls_back_to_the_exact_path(tmp_path, bad):
    lab = _labels()
    atlas = _atlas(lab)
    data = np.random.default_rng(5).normal(10, 1, (*lab.shape, 6))
    x, y, z = np.argwhere(lab == 3)[4]
    data[x, y, z, 2] = bad
    data[0, 0, 0, 1] = np.nan  # background: no effect
    path = _write(tmp_path, data, "n_bold.nii.gz", dtype=np.float32)
    bold = conn._read_bold(str(path), atlas, conn._runs(atlas))
    j = list(atlas.labels).index(3)
    assert bold.n_nan.tolist() == [int(i == j) for i in range(atlas.n_regions)]
    keep = np.isfinite(data).all(axis=3) & (lab == 3)
    vals = nib.load(path).get_fdata()
    assert_allclose(bold.sums[:, j], vals[keep].sum(axis=0), rtol=1e-12)
    assert np.isfinite(bold.sums).all()


def test_truncated_gzip_names_file(tmp_path):
    lab = _labels()
    atlas = _atlas(lab)
    data = np.random.default_rng(1).normal(0, 1, (*lab.shape, 8))
    path = _write(tmp_path, data, "t_bold.nii.gz", dtype=np.float32)
    raw = io.BytesIO(gzip.decompress(path.read_bytes())).getvalue()
    path.write_bytes(gzip.compress(raw[: len(raw) - 300]))
    with pytest.raises(ImagingError, match=r"t_bold\.nii\.gz: is truncated .*of 8"):
        conn._read_bold(str(path), atlas, conn._runs(atlas))


@pytest.mark.parametrize("using", sorted(INFLATERS))
def test_a_bad_gzip_method_byte_is_named_by_every_inflater(tmp_path, using):
    path = tmp_path / "bad.nii.gz"
    path.write_bytes(b"\x1f\x8bgarbage")
    with (
        open(path, "rb") as fh,
        pytest.raises(
            ImagingError, match=r"bad\.nii\.gz: cannot be read .*compression method 103"
        ),
    ):
        FastReader(fh, str(path), using).read(348)
