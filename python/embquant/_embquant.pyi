"""The native extension (Rust, pyo3). Use the `embquant` package, not this module.

Every function that takes `vectors` accepts anything exporting the Arrow PyCapsule
interface (`__arrow_c_array__` or `__arrow_c_stream__`: pyarrow, polars, DuckDB, nanoarrow,
arro3) or the buffer protocol (a C-contiguous 2-d numpy array, zero-copy). Vector columns
are `FixedSizeList<float32 | float16 | float64, D>` or `List<float32>` with every valid row
of the same length. A table or struct input needs `column=` (or has one vector column).

Errors: `ValueError` for bad input, options and data (the message is the CLI's), `OSError`
for files, `KeyboardInterrupt` when Ctrl-C stops a job (its output is not written).
"""

from typing import Any, Callable, Optional, Sequence

__version__: str
simd_level: str

class Calibration:
    @staticmethod
    def from_json(json: str) -> "Calibration": ...
    @staticmethod
    def from_parquet(path: str, column: Optional[str] = None) -> "Calibration": ...
    def to_json(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def rows(self) -> int: ...
    @property
    def method(self) -> str: ...
    @property
    def lo(self) -> list[float]: ...
    @property
    def hi(self) -> list[float]: ...
    @property
    def min(self) -> list[float]: ...
    @property
    def max(self) -> list[float]: ...
    @property
    def mean(self) -> list[float]: ...
    @property
    def std(self) -> list[float]: ...
    @property
    def degenerate_dims(self) -> list[int]: ...
    @property
    def mergeable(self) -> bool: ...
    def merge(self, other: "Calibration") -> "Calibration": ...
    def __eq__(self, other: object) -> bool: ...

def calibrate(
    vectors: Any,
    method: str = "minmax",
    column: Optional[str] = None,
    dims: Optional[int] = None,
    sketch: bool = True,
) -> Calibration: ...

# Returns a list of objects with `__arrow_c_array__` (the code columns with their embquant field
# metadata: one, or two for multi-bit RaBitQ).
def quantize(
    vectors: Any,
    scheme: str,
    calibration: Optional[Calibration] = None,
    column: Optional[str] = None,
    binary_threshold: str = "zero",
    dims: Optional[int] = None,
    int8_layout: str = "binary",
    rabitq_rotation: str = "hadamard",
    rabitq_bits: Optional[int] = None,
) -> list[Any]: ...

# Writes the codes of float32 `vectors` (no null rows) into `out`, a writable C-contiguous
# uint8 buffer of rows x width bytes: precision "int8" / "uint8" (with the calibration) or
# "ubinary" / "binary" (sign bits, numpy.packbits order). Returns the clipped count.
def quantize_into(
    vectors: Any, precision: str, calibration: Optional[Calibration], out: Any
) -> int: ...

# Returns FixedSizeList<float32, D> (an object with `__arrow_c_array__`).
def dequantize(
    codes: Any,
    calibration: Optional[Calibration] = None,
    scheme: Optional[str] = None,
) -> Any: ...

class Corpus:
    @staticmethod
    def load(
        paths: Sequence[str],
        column: str = "embedding",
        id_column: Optional[str] = None,
        tiers: str = "binary:8,int8:2,float",
    ) -> "Corpus": ...
    @staticmethod
    def from_vectors(
        vectors: Any,
        calibration: Optional[Calibration] = None,
        schemes: str = "int8,binary",
        ids: Any = None,
        column: Optional[str] = None,
        keep_float: bool = True,
    ) -> "Corpus": ...
    @property
    def rows(self) -> int: ...
    @property
    def dim(self) -> int: ...
    # The chain the corpus was loaded for, and the default of `search`; from_vectors orders
    # the schemes coarse to fine ("binary:8,int8:2,float").
    @property
    def tiers(self) -> str: ...
    # Returns a table (an object with `__arrow_c_stream__`) of
    # (query_id int64, rank uint32, id int64, score float32, tier utf8).
    def search(
        self,
        queries: Any,
        k: int = 10,
        tiers: str = "binary:8,int8:2,float",
        query_ids: Any = None,
        column: Optional[str] = None,
    ) -> Any: ...

# Progress: called as progress(phase: str, done_rows: int, total_rows: int) from the
# calling thread while the job runs (between Ctrl-C checks).
def calibrate_parquet(
    inputs: Sequence[str],
    column: str = "embedding",
    method: str = "minmax",
    sample_rows: Optional[int] = None,
    seed: int = 42,
    dims: Optional[int] = None,
    batch_rows: int = 1024,
    concurrency: int = 2,
    progress: Optional[Callable[[str, int, int], None]] = None,
) -> Calibration: ...

# Returns the summary as a JSON string (rows, files, bytes_in, bytes_out, columns, seconds).
def quantize_parquet(
    inputs: Sequence[str],
    output: str,
    column: str = "embedding",
    schemes: str = "int8,binary",
    calibration: Optional[Calibration] = None,
    method: str = "minmax",
    sample_rows: Optional[int] = None,
    seed: int = 42,
    binary_threshold: str = "zero",
    dims: Optional[int] = None,
    drop_source: bool = False,
    row_group_rows: int = 65536,
    target_file_rows: Optional[int] = None,
    int8_layout: str = "binary",
    zstd_level: int = 1,
    rabitq_rotation: str = "hadamard",
    overwrite: bool = False,
    batch_rows: int = 1024,
    concurrency: int = 2,
    progress: Optional[Callable[[str, int, int], None]] = None,
    rabitq_bits: Optional[int] = None,
) -> str: ...

# The `embquant inspect --json` document.
def inspect(path: str) -> str: ...

# The report as JSON (report.json); writes report.json, report.md, recall.svg and
# ground_truth.parquet into `report` when given. `corpus` is a list of Parquet paths or
# vectors (in memory).
def recall(
    corpus: Any,
    queries: Any = None,
    sample_queries: Optional[int] = None,
    column: str = "embedding",
    k: Sequence[int] = (1, 10, 100),
    configs: Optional[str] = None,
    dims: Sequence[int] = (),
    target_recall: Optional[str] = None,
    min_recall: Sequence[str] = (),
    calibration_rows: Optional[int] = None,
    method: str = "minmax",
    seed: int = 42,
    code_budget_mb: int = 1024,
    report: Optional[str] = None,
    progress: Optional[Callable[[str, int, int], None]] = None,
    binary_threshold: str = "zero",
    rabitq_rotation: str = "hadamard",
) -> str: ...

# DataFusion FFI (datafusion-python 55): objects exporting the capsules.
class ScalarUDF:
    @property
    def name(self) -> str: ...
    def __datafusion_scalar_udf__(self) -> object: ...

class AggregateUDF:
    @property
    def name(self) -> str: ...
    def __datafusion_aggregate_udf__(self) -> object: ...

class TieredSearchFunction:
    name: str
    def __datafusion_table_function__(self, session: Any) -> object: ...

def scalar_udfs() -> list[ScalarUDF]: ...
def aggregate_udfs() -> list[AggregateUDF]: ...
def table_functions() -> list[TieredSearchFunction]: ...
# The DataFusion major version the FFI types were built against ("55").
datafusion_major: int
