"""quantize_embeddings: sentence-transformers' shapes and dtypes, embquant's documented codes."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import UBINARY

import embquant
from embquant import quantize_embeddings


def reference_levels(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The documented int8 codec in numpy (float32 throughout, as the Rust kernels).

    u = floor(clip((x - lo) * inv + 0.5, 0.5, 255.5)), inv = 255 / (hi - lo) rounded down
    until (hi - lo) * inv <= 255; degenerate dimensions (width <= max(1e-30, 1e-6 x the
    median width), NaN width) get level 128.
    """
    lo = lo.astype(np.float32)
    hi = hi.astype(np.float32)
    width = hi - lo
    median = np.sort(width)[len(width) // 2]
    floor = max(np.float32(1e-30), median * np.float32(1e-6))
    degenerate = np.isnan(width) | (width <= floor)
    safe = np.where(degenerate, np.float32(1), width).astype(np.float32)
    inv = (np.float32(255) / safe).astype(np.float32)
    while True:
        over = ~degenerate & (safe * inv > np.float32(255))
        if not over.any():
            break
        inv[over] = np.nextafter(inv[over], np.float32(0))
    inv[degenerate] = 0
    bias = np.where(degenerate, np.float32(128.5), np.float32(0.5)).astype(np.float32)
    t = (x.astype(np.float32) - lo) * inv + bias
    c = np.minimum(np.maximum(t, np.float32(0.5)), np.float32(255.5))
    return c.astype(np.uint8)


def st6_levels(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """sentence-transformers 6.x: clip(floor((x - lo) / steps), 0, 255)."""
    steps = (hi - lo) / 255
    steps = np.where(steps == 0, 1, steps)
    return np.clip(np.floor((x - lo) / steps), 0, 255).astype(np.uint8)


def test_ubinary_is_packbits_byte_for_byte(x: np.ndarray) -> None:
    got = quantize_embeddings(x, "ubinary")
    assert got.dtype == np.uint8 and got.shape == (5000, 48)
    assert got.tobytes() == np.packbits(x > 0, axis=1).tobytes()
    # The repository's oracle, made by numpy 2.4.6.
    oracle = pq.read_table(UBINARY)["ubinary"].combine_chunks()
    assert got.tobytes() == oracle.buffers()[1].to_pybytes()[: got.size]


def test_binary_is_packbits_minus_128(x: np.ndarray) -> None:
    got = quantize_embeddings(x, "binary")
    assert got.dtype == np.int8 and got.shape == (5000, 48)
    want = (np.packbits(x > 0, axis=-1).astype(np.int16) - 128).astype(np.int8)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("dim", [13, 64, 100])
def test_binary_odd_dimensions(dim: int) -> None:
    x = np.random.default_rng(dim).standard_normal((37, dim), dtype=np.float32)
    got = quantize_embeddings(x, "ubinary")
    assert np.array_equal(got, np.packbits(x > 0, axis=-1))


@pytest.mark.parametrize("how", ["calibration_embeddings", "ranges", "self"])
def test_int8_and_uint8_follow_the_documented_formula(x: np.ndarray, how: str) -> None:
    data, calib = x[:1000], x[1000:]
    kwargs: dict[str, np.ndarray] = {}
    if how == "calibration_embeddings":
        kwargs = {"calibration_embeddings": calib}
        lo, hi = calib.min(0), calib.max(0)
    elif how == "ranges":
        lo, hi = x.min(0), x.max(0)
        kwargs = {"ranges": np.vstack([lo, hi])}
    else:
        lo, hi = data.min(0), data.max(0)
    u = reference_levels(data, lo, hi)
    got8 = quantize_embeddings(data, "int8", **kwargs)
    assert got8.dtype == np.int8 and got8.shape == data.shape
    assert np.array_equal(got8, (u.astype(np.int16) - 128).astype(np.int8))
    gotu = quantize_embeddings(data, "uint8", **kwargs)
    assert gotu.dtype == np.uint8 and gotu.shape == data.shape
    assert np.array_equal(gotu, u)
    # Against sentence-transformers 6.x: the same level or one above (rounding vs floor),
    # except the dead dimensions (level 128 here, 0 there).
    st = st6_levels(data, lo, hi).astype(np.int16)
    live = np.ones(x.shape[1], dtype=bool)
    live[embquant.calibrate(np.vstack([lo, hi])).degenerate_dims] = False
    diff = u.astype(np.int16)[:, live] - st[:, live]
    assert diff.min() >= 0 and diff.max() <= 1


def test_the_dead_dimensions_are_degenerate(x: np.ndarray) -> None:
    cal = embquant.calibrate(x)
    assert {127, 223, 319} <= set(cal.degenerate_dims)
    assert (quantize_embeddings(x, "int8")[:, [127, 223, 319]] == 0).all()


def test_ranges_accepts_a_calibration(x: np.ndarray, cal: object) -> None:
    got = quantize_embeddings(x[:100], "int8", ranges=cal)  # type: ignore[arg-type]
    assert np.array_equal(got, quantize_embeddings(x[:100], "int8", calibration_embeddings=x))


def test_float32_and_inputs(x: np.ndarray) -> None:
    assert quantize_embeddings(x, "float32").dtype == np.float32
    assert np.array_equal(
        quantize_embeddings(x.astype(np.float16), "float32"), x.astype(np.float16)
    )
    rows = x[:20].tolist()
    assert np.array_equal(
        quantize_embeddings(rows, "ubinary"), quantize_embeddings(x[:20], "ubinary")
    )


def test_bad_arguments(x: np.ndarray) -> None:
    with pytest.raises(ValueError, match="not supported"):
        quantize_embeddings(x, "int4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"shape \(2, 384\)"):
        quantize_embeddings(x, "int8", ranges=np.zeros((3, 384), np.float32))
    with pytest.raises(ValueError, match="2-d"):
        quantize_embeddings(x[0], "int8")


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_out_is_written_in_place(x: np.ndarray, precision: str) -> None:
    fresh = quantize_embeddings(x, precision)
    assert fresh.flags.c_contiguous and fresh.flags.writeable and fresh.flags.owndata
    out = np.full_like(fresh, 7)
    got = quantize_embeddings(x, precision, out=out)
    assert got is out
    assert np.array_equal(out, fresh)
    with pytest.raises(ValueError, match="out must be"):
        quantize_embeddings(x, precision, out=np.empty((len(x) + 1, fresh.shape[1]), fresh.dtype))
    with pytest.raises(ValueError, match="out must be"):
        quantize_embeddings(x, precision, out=np.empty(fresh.shape, np.float32))
