"""Bad inputs raise ValueError with the CLI's message (where the CLI has an equivalent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SLICE, Cli

import embquant


def test_one_dimensional_array(x: np.ndarray, cal: Any) -> None:
    with pytest.raises(ValueError) as e:
        embquant.quantize(x[0], "int8", cal)
    assert str(e.value) == (
        "vectors must be a 2-d array (rows x dimensions), got a 1-d array of shape (384,)"
    )
    with pytest.raises(ValueError, match="2-d"):
        embquant.calibrate(x[0])
    with pytest.raises(ValueError, match="2-d"):
        embquant.quantize([0.1, 0.2, 0.3], "binary")
    with pytest.raises(ValueError, match="3-d"):
        embquant.calibrate(x.reshape(10, 500, 384))


def test_unsupported_dtype_and_type() -> None:
    with pytest.raises(ValueError, match="complex64"):
        embquant.calibrate(np.zeros((3, 4), np.complex64))
    with pytest.raises(TypeError):
        embquant.calibrate(object())


def test_integer_arrays_become_float32() -> None:
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    assert embquant.calibrate(a) == embquant.calibrate(a.astype(np.float32))


def nan_case(x: np.ndarray) -> np.ndarray:
    bad = x[:100].astype(np.float64)
    bad[42, 17] = np.nan
    return bad


def test_nan_names_the_row(x: np.ndarray, cal: Any) -> None:
    with pytest.raises(ValueError, match=r"row 42\b") as e:
        embquant.quantize(nan_case(x), "int8", cal)
    assert "NaN" in str(e.value) or "non-finite" in str(e.value)


def ragged_rows() -> list[list[float]]:
    return [[0.1, 0.2, 0.3], [0.4, 0.5], [0.6, 0.7, 0.8]]


def test_ragged_lists() -> None:
    with pytest.raises(ValueError, match="row 1") as e:
        embquant.calibrate(ragged_rows())
    assert "ragged" in str(e.value)


def test_calibration_of_the_wrong_dimension(x: np.ndarray) -> None:
    cal128 = embquant.calibrate(x[:, :128].copy())
    with pytest.raises(ValueError, match="128") as e:
        embquant.quantize(x, "int8", cal128)
    assert "384" in str(e.value)


def test_bad_scheme_and_options(x: np.ndarray, cal: Any) -> None:
    with pytest.raises(ValueError, match="scheme"):
        embquant.quantize(x, "int7", cal)
    with pytest.raises(ValueError):
        embquant.quantize(x, "binary", binary_threshold="middle")
    with pytest.raises(ValueError):
        embquant.quantize(x, "int8", cal, int8_layout="columns")


def test_missing_file() -> None:
    with pytest.raises(OSError):
        embquant.calibrate_parquet("/nonexistent/embquant/x.parquet", progress=False)


def test_error_kinds_map_to_python_exceptions(
    tmp_path: Path, cal: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bad argument is a ValueError naming the argument...
    with pytest.raises(ValueError, match="invalid rabitq_bits"):
        embquant.quantize_parquet(SLICE, tmp_path / "o.parquet", rabitq_bits=9, progress=False)
    # ...a store that cannot be set up an OSError (not a ValueError)...
    monkeypatch.setenv("AWS_ENDPOINT", "not a url")
    with pytest.raises(OSError, match="AWS_ENDPOINT") as e:
        embquant.calibrate_parquet("s3://bucket/x.parquet", progress=False)
    assert not isinstance(e.value, ValueError)
    monkeypatch.delenv("AWS_ENDPOINT")
    # ...and an output occupied by something else a FileExistsError.
    taken = tmp_path / "taken"
    taken.mkdir()
    with pytest.raises(FileExistsError, match="is a directory"):
        embquant.quantize_parquet(SLICE, taken, calibration=cal, progress=False)


# --- the same messages as the CLI ----------------------------------------------------------


def cli_stderr(cli: Cli, path: Path, cal: Any, tmp_path: Path, scheme: str = "int8") -> str:
    cal_path = tmp_path / "c.json"
    cal_path.write_text(cal.to_json())
    return cli.fail(
        "quantize",
        path,
        "--scheme",
        scheme,
        "--calibration",
        cal_path,
        "-o",
        tmp_path / "o.parquet",
    )


@pytest.mark.cli
def test_nan_message_equals_the_cli(cli: Cli, x: np.ndarray, cal: Any, tmp_path: Path) -> None:
    bad = nan_case(x)
    path = tmp_path / "nan.parquet"
    values = pa.array(bad.reshape(-1))
    pq.write_table(pa.table({"embedding": pa.FixedSizeListArray.from_arrays(values, 384)}), path)
    with pytest.raises(ValueError) as e:
        embquant.quantize(bad, "int8", cal)
    assert str(e.value) in cli_stderr(cli, path, cal, tmp_path)
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.cli
def test_ragged_message_equals_the_cli(cli: Cli, tmp_path: Path) -> None:
    rows = ragged_rows()
    cal = embquant.calibrate(np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], np.float32))
    path = tmp_path / "ragged.parquet"
    pq.write_table(pa.table({"embedding": pa.array(rows, pa.list_(pa.float32()))}), path)
    with pytest.raises(ValueError) as e:
        embquant.quantize(rows, "int8", cal)
    assert str(e.value) in cli_stderr(cli, path, cal, tmp_path)


@pytest.mark.cli
def test_dimension_message_equals_the_cli(cli: Cli, x: np.ndarray, tmp_path: Path) -> None:
    cal128 = embquant.calibrate(x[:, :128].copy())
    with pytest.raises(ValueError) as e:
        embquant.quantize(x, "int8", cal128, column="embedding")
    assert str(e.value) in cli_stderr(cli, SLICE, cal128, tmp_path)
