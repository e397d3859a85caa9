"""Calibration: JSON round trip, fingerprint, merge, from_parquet, the Parquet calibration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SLICE, Cli, load_json

import embquant
from embquant import Calibration


def test_json_round_trip(cal: Calibration) -> None:
    again = Calibration.from_json(cal.to_json())
    assert again == cal
    assert again.fingerprint == cal.fingerprint
    assert again.to_json() == cal.to_json()
    doc = json.loads(cal.to_json())
    assert doc["dim"] == 384 and doc["method"] == {"kind": "minmax"} and doc["rows"] == 5000
    assert doc["fingerprint"] == cal.fingerprint


def test_properties(x: np.ndarray, cal: Calibration) -> None:
    assert cal.dim == 384 and cal.rows == 5000 and cal.method == "minmax"
    assert np.array_equal(np.asarray(cal.lo, np.float32), x.min(0))
    assert np.array_equal(np.asarray(cal.hi, np.float32), x.max(0))
    assert np.array_equal(np.asarray(cal.min, np.float32), x.min(0))
    assert np.array_equal(np.asarray(cal.max, np.float32), x.max(0))
    assert np.allclose(cal.mean, x.astype(np.float64).mean(0), atol=1e-6)
    assert np.allclose(cal.std, x.astype(np.float64).std(0), rtol=1e-3, atol=1e-6)


def test_fingerprint_is_stable(x: np.ndarray, cal: Calibration) -> None:
    assert embquant.calibrate(x).fingerprint == cal.fingerprint
    assert embquant.calibrate(np.asfortranarray(x)).fingerprint == cal.fingerprint
    other = embquant.calibrate(x[:4000])
    assert other.fingerprint != cal.fingerprint
    assert len(cal.fingerprint) >= 16


def test_methods(x: np.ndarray) -> None:
    q = embquant.calibrate(x, "quantile:0.99")
    assert q.method == "quantile:0.99"
    assert (np.asarray(q.lo) >= np.asarray(q.min)).all()
    assert (np.asarray(q.hi) <= np.asarray(q.max)).all()
    m = embquant.calibrate(x, "meanstd:3")
    assert m.method == "meanstd:3"
    with pytest.raises(ValueError):
        embquant.calibrate(x, "median")


def test_merge_of_halves_equals_the_whole(x: np.ndarray, cal: Calibration) -> None:
    a, b = embquant.calibrate(x[:2500]), embquant.calibrate(x[2500:])
    assert a.mergeable and b.mergeable
    merged = a.merge(b)
    assert merged.rows == 5000 and merged.dim == 384 and merged.method == "minmax"
    for attr in ("lo", "hi", "min", "max"):
        assert getattr(merged, attr) == getattr(cal, attr), attr
    assert np.allclose(merged.mean, cal.mean, atol=1e-7)
    assert np.allclose(merged.std, cal.std, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError):
        a.merge(embquant.calibrate(x[:, :128]))


def test_dims(x: np.ndarray) -> None:
    c = embquant.calibrate(x, dims=128)
    assert c.dim == 128
    # Matryoshka: the first 128 dimensions, re-normalized.
    prefix = x[:, :128] / np.linalg.norm(x[:, :128], axis=1, keepdims=True)
    assert np.allclose(c.lo, prefix.min(0), atol=1e-6)


def test_calibrate_parquet_equals_calibrate(cal: Calibration) -> None:
    seen: list[tuple[str, int, int]] = []
    got = embquant.calibrate_parquet(SLICE, progress=lambda p, d, t: seen.append((p, d, t)))
    assert got.lo == cal.lo and got.hi == cal.hi and got.rows == cal.rows
    assert seen and seen[-1][1] == seen[-1][2] == 5000


@pytest.mark.cli
def test_from_parquet_of_a_cli_file(cal: Calibration, cli_quantized: Path) -> None:
    assert Calibration.from_parquet(str(cli_quantized)) == cal


@pytest.mark.cli
def test_calibrate_equals_the_cli(cli: Cli, cal: Calibration, tmp_path: Path) -> None:
    out = tmp_path / "cal.json"
    cli.run("calibrate", SLICE, "-o", out)
    theirs = Calibration.from_json(out.read_text())
    assert theirs == embquant.calibrate_parquet(SLICE, progress=False)
    assert theirs.lo == cal.lo and theirs.hi == cal.hi
    cli.run("calibrate", SLICE, "--method", "quantile:0.999", "-o", out)
    doc: Any = load_json(out)
    mine = embquant.calibrate_parquet(SLICE, method="quantile:0.999", progress=False)
    assert doc["fingerprint"] == mine.fingerprint
