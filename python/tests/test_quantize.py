"""quantize / dequantize: every input kind gives the same codes, equal to the CLI's."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DIM, SCHEMES, SLICE, SUFFIX, Cli

import embquant

N = 600  # rows used by the input-kind matrix (the CLI checks use all 5,000)


def codes(result: pa.Table) -> pa.Array:
    assert isinstance(result, pa.Table) and result.num_columns == 1
    return result.column(0).combine_chunks()


def fsl(x: np.ndarray, mask: np.ndarray | None = None) -> pa.FixedSizeListArray:
    values = pa.array(np.ascontiguousarray(x).reshape(-1))
    if mask is None:
        return pa.FixedSizeListArray.from_arrays(values, x.shape[1])
    return pa.FixedSizeListArray.from_arrays(values, x.shape[1], mask=pa.array(mask))


# Each input kind: a function of the (N, DIM) float32 rows -> (input, column=).
INPUTS: dict[str, Callable[[np.ndarray], tuple[Any, str | None]]] = {
    "numpy": lambda x: (x, None),
    "numpy-fortran": lambda x: (np.asfortranarray(x), None),
    "numpy-float64": lambda x: (x.astype(np.float64), None),
    "numpy-strided": lambda x: (np.repeat(x, 2, axis=0)[::2], None),
    "list-of-lists": lambda x: (x.tolist(), None),
    "pyarrow-fsl": lambda x: (fsl(x), None),
    "pyarrow-chunked": lambda x: (pa.chunked_array([fsl(x[:250]), fsl(x[250:])]), None),
    "pyarrow-list": lambda x: (pa.array(list(x), type=pa.list_(pa.float32())), None),
    "pyarrow-table": lambda x: (
        pa.table({"id": np.arange(len(x)), "embedding": fsl(x)}),
        "embedding",
    ),
    "polars-array": lambda x: (pl.Series("e", x, dtype=pl.Array(pl.Float32, DIM)), None),
    "polars-list": lambda x: (pl.Series("e", x.tolist(), dtype=pl.List(pl.Float32)), None),
    "polars-frame": lambda x: (
        pl.DataFrame({"id": np.arange(len(x)), "e": pl.Series(x, dtype=pl.Array(pl.Float32, DIM))}),
        "e",
    ),
}


@pytest.fixture(scope="module")
def cal256(x: np.ndarray) -> Any:
    return embquant.calibrate(x, dims=256)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_every_input_kind_gives_the_same_codes(
    x: np.ndarray, cal: Any, scheme: str, kind: str
) -> None:
    rows = x[:N]
    want = codes(embquant.quantize(rows, scheme, cal))
    vectors, column = INPUTS[kind](rows)
    got = codes(embquant.quantize(vectors, scheme, cal, column=column))
    assert got.equals(want), f"{kind}: codes differ"


@pytest.mark.parametrize("scheme", ["int8", "int4", "binary", "rabitq"])
def test_dims_prefix(x: np.ndarray, cal256: Any, scheme: str) -> None:
    want = codes(embquant.quantize(x[:N], scheme, cal256, dims=256))
    got = codes(embquant.quantize(fsl(x[:N]), scheme, cal256, dims=256))
    assert got.equals(want)
    assert cal256.dim == 256


@pytest.mark.parametrize("scheme", SCHEMES)
def test_sliced_array_with_nulls(x: np.ndarray, cal: Any, scheme: str) -> None:
    mask = np.zeros(N, dtype=bool)
    mask[[3, 50, 51, 400]] = True  # True = null
    sliced = fsl(x[:N], mask).slice(40, 400)  # rows 40 .. 439
    got = codes(embquant.quantize(sliced, scheme, cal))
    full = codes(embquant.quantize(x[:N], scheme, cal))
    assert len(got) == 400
    nulls = mask[40:440]
    assert got.is_null().to_numpy(zero_copy_only=False).tolist() == nulls.tolist()
    valid = np.flatnonzero(~nulls)
    assert got.take(valid).equals(full.take(valid + 40))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_duckdb_inputs(x: np.ndarray, cal: Any, scheme: str) -> None:
    want = codes(embquant.quantize(x, scheme, cal))
    rel = duckdb.sql(f"SELECT id, embedding FROM read_parquet('{SLICE}') ORDER BY id")
    got = codes(embquant.quantize(rel, scheme, cal, column="embedding"))
    assert got.equals(want)
    rel2 = duckdb.sql(f"SELECT embedding FROM read_parquet('{SLICE}') ORDER BY id")
    assert rel2 is not None
    table = rel2.to_arrow_table()
    assert isinstance(table, pa.Table)
    got = codes(embquant.quantize(table, scheme, cal, column="embedding"))
    assert got.equals(want)


def test_output_kinds(x: np.ndarray, cal: Any) -> None:
    table = embquant.quantize(x[:10], "int8", cal)
    field = table.schema.field(0)
    assert field.metadata and b"embquant" in field.metadata
    assert b"embquant.calibration" in field.metadata
    array = embquant.quantize(x[:10], "int8", cal, output="array")
    assert isinstance(array, pa.Array) and array.equals(codes(table))
    view = embquant.quantize(x[:10], "int8", cal, output="numpy")
    assert view.dtype == np.int8 and view.shape == (10, DIM)
    assert view.tobytes() == array.buffers()[1].to_pybytes()[: 10 * DIM]
    bits = embquant.quantize(x[:10], "binary", output="numpy")
    assert bits.dtype == np.uint8 and bits.shape == (10, DIM // 8)
    native = embquant.quantize(x[:10], "int8", cal, output="native")
    assert hasattr(native, "__arrow_c_array__")
    with pytest.raises(ValueError, match="output"):
        embquant.quantize(x[:10], "int8", cal, output="pandas")  # type: ignore[arg-type]


def test_int8_list_layout(x: np.ndarray, cal: Any) -> None:
    binary = embquant.quantize(x[:50], "int8", cal, output="numpy")
    listed = codes(embquant.quantize(x[:50], "int8", cal, int8_layout="list"))
    assert pa.types.is_fixed_size_list(listed.type)
    assert listed.type.value_type == pa.int8() and listed.type.list_size == DIM
    assert np.array_equal(listed.flatten().to_numpy().reshape(50, DIM), binary)


# --- the same codes as the Rust library (the CLI) --------------------------------------


@pytest.mark.cli
def test_codes_equal_the_cli(x: np.ndarray, cal: Any, cli_quantized: Path) -> None:
    written = pq.read_table(cli_quantized)
    for scheme in SCHEMES:
        got = codes(embquant.quantize(x, scheme, cal))
        want = written.column("embedding" + SUFFIX[scheme]).combine_chunks()
        assert got.type == want.type, scheme
        assert got.equals(want), f"{scheme}: codes differ from embquant quantize"
        # And the same codes from the Parquet rows read back with pyarrow.
        again = codes(embquant.quantize(written.select(["embedding"]), scheme, cal))
        assert again.equals(want), scheme


@pytest.mark.cli
def test_dims_codes_equal_the_cli(x: np.ndarray, cal256: Any, cli: Cli, tmp_path: Path) -> None:
    cal_path = tmp_path / "cal256.json"
    cal_path.write_text(cal256.to_json())
    written = cli.quantize(
        SLICE, tmp_path / "q.parquet", "int8,binary,rabitq", cal_path, "--dims", 256
    )
    for scheme in ("int8", "binary", "rabitq"):
        got = codes(embquant.quantize(x, scheme, cal256, dims=256))
        assert got.equals(written.column("embedding" + SUFFIX[scheme]).combine_chunks()), scheme


# --- dequantize -------------------------------------------------------------------------


def test_int8_round_trip_error_is_half_a_step(x: np.ndarray, cal: Any) -> None:
    back = embquant.dequantize(embquant.quantize(x, "int8", cal), output="numpy")
    lo, hi = np.asarray(cal.lo, np.float32), np.asarray(cal.hi, np.float32)
    step = (hi - lo) / 255
    degenerate = np.zeros(DIM, dtype=bool)
    degenerate[cal.degenerate_dims] = True
    err = np.abs(back - x)
    bound = step / 2 + 1e-6 * np.maximum(np.abs(lo), np.abs(hi)) + 1e-7
    assert (err[:, ~degenerate] <= bound[~degenerate]).all()
    mid = (lo + hi) / 2
    assert np.allclose(back[:, degenerate], mid[degenerate], atol=1e-7)


@pytest.mark.parametrize(
    "scheme,tolerance",
    [("int4", None), ("f16", 1e-3), ("bf16", 8e-3), ("binary", None), ("rabitq", None)],
)
def test_round_trip_every_scheme(x: np.ndarray, cal: Any, scheme: str, tolerance: Any) -> None:
    table = embquant.quantize(x[:200], scheme, cal)
    back = embquant.dequantize(table, output="numpy")
    assert back.shape == (200, DIM) and back.dtype == np.float32
    if scheme == "int4":
        step = (np.asarray(cal.hi) - np.asarray(cal.lo)) / 15
        assert (np.abs(back - x[:200]) <= step / 2 + 1e-6).all()
    elif tolerance is not None:
        assert np.abs(back - x[:200]).max() <= tolerance
    else:
        # 1-bit codes keep the direction: the decoded vector points the same way.
        cos = (
            (back * x[:200]).sum(1) / np.linalg.norm(back, axis=1) / np.linalg.norm(x[:200], axis=1)
        )
        assert cos.mean() > 0.5
    if scheme == "rabitq":
        return  # plain RaBitQ codes record no rotation: refused (see the README's rules)
    # Plain codes (no metadata) decode the same with scheme= and the calibration.
    plain = embquant.quantize(x[:200], scheme, cal, output="numpy")
    again = embquant.dequantize(plain, cal, scheme=scheme, output="numpy")
    assert np.array_equal(again, back)


@pytest.mark.cli
def test_dequantize_a_column_of_a_quantized_file(cli_quantized: Path, x: np.ndarray) -> None:
    table = pq.read_table(cli_quantized)
    back = embquant.dequantize(table, column="embedding_int8", output="numpy")
    assert np.abs(back - x).max() < 0.02


def test_dequantize_needs_the_scheme_of_plain_codes(x: np.ndarray, cal: Any) -> None:
    plain = embquant.quantize(x[:5], "int8", cal, output="numpy")
    with pytest.raises(ValueError, match="scheme"):
        embquant.dequantize(plain, cal)


def test_symmetric_per_tensor_calibration(x: np.ndarray) -> None:
    # `+symmetric` puts a level at zero: int8 codes are round(x / step), step = max|x| / 127,
    # and every reader decodes them through the calibration the codes carry.
    cal = embquant.calibrate(x, method="minmax+symmetric+per-tensor")
    m = max(abs(v) for v in cal.lo + cal.hi)
    assert cal.lo == [-m] * DIM and cal.hi == [m] * DIM
    table = embquant.quantize(x, "int8", cal)
    codes = codes_to_int8(table)
    step = m / 127
    assert np.abs(codes.astype(np.float64) - x / step).max() <= 0.5 + 1e-3
    back = embquant.dequantize(table, output="numpy")
    assert np.allclose(back, codes * np.float32(step), atol=1e-6)
    recipe = table.schema.field(0).metadata[b"embquant"]
    assert b'"range_shape"' in recipe
    with pytest.raises(ValueError, match="range shape"):
        embquant.calibrate(x, method="minmax+tensor")


def codes_to_int8(table: pa.Table) -> np.ndarray:
    col = table.column(0).combine_chunks()
    return np.frombuffer(col.buffers()[1], dtype=np.int8).reshape(len(col), -1)
