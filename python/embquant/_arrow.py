"""Input normalisation and Arrow <-> numpy helpers shared by the public API (internal)."""

from __future__ import annotations

import logging
import os
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

logger = logging.getLogger("embquant")

PathLike = str | os.PathLike[str]

# numpy dtypes the native side reads as they are (float64 is converted there, which also
# reports NaN and infinity with the CLI's message).
_NATIVE_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def prepare_vectors(vectors: Any) -> Any:
    """Turns `vectors` into something the native module reads without copying.

    numpy arrays must be 2-d (rows x dimensions); they are made C-contiguous (a copy only
    when they are not) and integer / bool arrays become float32. Python lists of rows become
    a pyarrow ``List<float32>`` array, so a ragged list gets the native (CLI) error naming
    the row. Arrow objects (pyarrow, polars, DuckDB, nanoarrow, arro3) pass through, except
    ``LargeList`` vector columns (polars' ``List``), which are cast to ``List`` (the values
    are shared, only the offsets are narrowed).
    """
    if isinstance(vectors, np.ndarray):
        return _prepare_numpy(vectors)
    if _is_torch_tensor(vectors):
        return _prepare_numpy(vectors.detach().cpu().numpy())
    if isinstance(vectors, (pa.Array, pa.ChunkedArray, pa.Table, pa.RecordBatch)):
        return _narrow_large_lists(vectors)
    module = type(vectors).__module__.split(".")[0]
    if module == "polars":
        return _narrow_large_lists(vectors.to_arrow())
    if module == "duckdb" and not hasattr(vectors, "__arrow_c_stream__"):
        # Older DuckDB relations: materialise as a pyarrow table.
        return _narrow_large_lists(vectors.arrow())
    if hasattr(vectors, "__arrow_c_array__") or hasattr(vectors, "__arrow_c_stream__"):
        return vectors
    if isinstance(vectors, (list, tuple)):
        return _prepare_rows(vectors)
    if hasattr(vectors, "__array__") or hasattr(vectors, "__array_interface__"):
        return _prepare_numpy(np.asarray(vectors))
    raise TypeError(
        "vectors: expected a 2-d numpy array, a list of rows, or an Arrow array / table "
        f"(pyarrow, polars, DuckDB, ...), got {type(vectors).__name__}"
    )


def _is_torch_tensor(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "detach")


def _prepare_numpy(a: np.ndarray) -> np.ndarray:
    if a.ndim != 2:
        raise ValueError(
            f"vectors must be a 2-d array (rows x dimensions), got a {a.ndim}-d array of "
            f"shape {a.shape}"
        )
    if a.dtype.kind in "iub":
        a = a.astype(np.float32)
    elif a.dtype.kind == "f" and a.dtype.newbyteorder("=") in _NATIVE_FLOATS:
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
    else:
        raise ValueError(
            f"vectors: unsupported dtype {a.dtype} (expected float16, float32, float64, "
            "or an integer type, which is converted to float32)"
        )
    if not a.flags.c_contiguous:
        logger.debug("copying a non-C-contiguous %s array of shape %s", a.dtype, a.shape)
        a = np.ascontiguousarray(a)
    return a


def _prepare_rows(rows: Sequence[Any]) -> pa.Array:
    if len(rows) > 0 and not isinstance(rows[0], (list, tuple, np.ndarray)):
        raise ValueError(
            "vectors must be a 2-d array (rows x dimensions), got a 1-d list of "
            f"{len(rows)} values"
        )
    try:
        return pa.array(rows, type=pa.list_(pa.float32()))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ValueError(f"vectors: cannot read the rows as float32 lists: {e}") from e


def _narrow_large_lists(obj: Any) -> Any:
    """Casts LargeList<float> vector columns to List<float> (the native module reads List)."""
    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        schema = obj.schema
        if not any(_is_large_float_list(f.type) for f in schema):
            return obj
        fields = [
            (
                pa.field(f.name, pa.list_(f.type.value_type), f.nullable, f.metadata)
                if _is_large_float_list(f.type)
                else f
            )
            for f in schema
        ]
        return obj.cast(pa.schema(fields, metadata=schema.metadata))
    if isinstance(obj, (pa.Array, pa.ChunkedArray)) and _is_large_float_list(obj.type):
        return obj.cast(pa.list_(obj.type.value_type))
    return obj


def _is_large_float_list(t: pa.DataType) -> bool:
    return pa.types.is_large_list(t) and pa.types.is_floating(t.value_type)


def paths(inputs: PathLike | Sequence[PathLike]) -> list[str]:
    """One path or a sequence of paths, as a list of strings."""
    if isinstance(inputs, (str, os.PathLike)):
        return [os.fspath(inputs)]
    out = [os.fspath(p) for p in inputs]
    if not out:
        raise ValueError("inputs: expected at least one path")
    return out


def is_paths(obj: Any) -> bool:
    """Whether `obj` is a path or a non-empty sequence of paths."""
    if isinstance(obj, (str, os.PathLike)):
        return True
    return (
        isinstance(obj, (list, tuple))
        and len(obj) > 0
        and all(isinstance(p, (str, os.PathLike)) for p in obj)
    )


def int64_array(values: Any, what: str) -> Any:
    """Ids as an Arrow array (Arrow objects pass through; sequences become int64)."""
    if values is None:
        return None
    if hasattr(values, "__arrow_c_array__") or hasattr(values, "__arrow_c_stream__"):
        return values
    a = np.asarray(values)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"{what} must be a 1-d sequence of integers, got {a.dtype} {a.shape}")
    return pa.array(a)


class FieldArray:
    """An Arrow array exported together with its field (name, type, metadata).

    pyarrow arrays export their type but not their field: this keeps the embquant field
    metadata (the recipe and calibration) when codes go back to the native module.
    """

    def __init__(self, field: pa.Field, array: pa.Array) -> None:
        self.field = field
        self.array = array

    def __arrow_c_schema__(self) -> Any:
        return self.field.__arrow_c_schema__()

    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]:
        return self.field.__arrow_c_schema__(), self.array.__arrow_c_array__()[1]


def import_field_array(obj: Any) -> tuple[pa.Field, pa.Array]:
    """Imports a native result (`__arrow_c_array__`) as a pyarrow (field, array), zero-copy.

    ``pyarrow.array(obj)`` would drop the field (name and metadata); the schema capsule is
    imported as a field first, then exported again for the array import.
    """
    schema_capsule, array_capsule = obj.__arrow_c_array__()
    field = pa.Field._import_from_c_capsule(schema_capsule)
    array = pa.Array._import_from_c_capsule(field.__arrow_c_schema__(), array_capsule)
    return field, array


def one_column_table(field: pa.Field, array: pa.Array) -> pa.Table:
    """A one-column table whose schema field keeps the metadata (no copy)."""
    return pa.Table.from_arrays([array], schema=pa.schema([field]))


def codes_to_numpy(array: pa.Array, signed: bool = False) -> np.ndarray:
    """A 2-d numpy view (rows x width) of fixed-width codes, zero-copy.

    ``FixedSizeBinary(w)`` gives uint8 (int8 with `signed`), ``FixedSizeList<T, D>`` gives
    T. The view is read-only (it shares the Arrow buffer) and keeps the buffer alive.
    """
    if array.null_count:
        raise ValueError(
            f"the codes hold {array.null_count} null rows, which numpy cannot represent: "
            "use output='pyarrow'"
        )
    n, t = len(array), array.type
    if pa.types.is_fixed_size_binary(t):
        width = t.byte_width
        buf = array.buffers()[1]
        dtype = np.int8 if signed else np.uint8
        if buf is None or n == 0:
            return np.empty((0, width), dtype=dtype)
        out = np.frombuffer(buf, dtype=dtype, count=n * width, offset=array.offset * width)
        return out.reshape(n, width)
    if pa.types.is_fixed_size_list(t):
        width = t.list_size
        values = array.values  # the whole child array: slice by the parent's offset
        flat = values.to_numpy(zero_copy_only=True)
        start = array.offset * width
        out = flat[start : start + n * width].reshape(n, width)
        if signed and out.dtype == np.uint8:
            out = out.view(np.int8)
        return out
    raise ValueError(f"cannot view codes of type {t} as a numpy array")


def table_column(obj: pa.Table | pa.RecordBatch, column: str | None) -> tuple[pa.Field, pa.Array]:
    """The (field, array) of one column of a table (the only column when `column` is None)."""
    if column is None:
        if obj.num_columns != 1:
            raise ValueError(
                f"the table has {obj.num_columns} columns ({', '.join(obj.schema.names)}): "
                "pass column="
            )
        index = 0
    else:
        index = obj.schema.get_field_index(column)
        if index < 0:
            raise ValueError(f"no column {column!r} (columns: {', '.join(obj.schema.names)})")
    field = obj.schema.field(index)
    col = obj.column(index)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return field, col
