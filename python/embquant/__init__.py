"""embquant: embedding quantization for numpy and Arrow.

int8, int4, binary, f16, bf16 and RaBitQ codes with a per-dimension calibration (stored in
the codes' Arrow field metadata), the Parquet job, tiered top-k search, recall reports, and
the SQL functions for datafusion-python (:mod:`embquant.datafusion`).

Inputs are read without copying: a C-contiguous 2-d numpy array (float32, float16 or
float64), or anything exporting the Arrow PyCapsule interface (pyarrow, polars, DuckDB,
nanoarrow, arro3) holding ``FixedSizeList<float, D>`` or equal-length ``List<float>``
vectors. The native work releases the GIL; Ctrl-C stops a long job with
``KeyboardInterrupt`` and leaves no output behind.

Examples
--------
>>> import numpy as np, embquant
>>> x = np.random.default_rng(0).standard_normal((1000, 384), dtype=np.float32)
>>> cal = embquant.calibrate(x)
>>> codes = embquant.quantize(x, "int8", cal)
>>> codes.num_rows, codes.schema.field(0).type
(1000, FixedSizeBinaryType(fixed_size_binary[384]))
>>> back = embquant.dequantize(codes, output="numpy")
>>> bool(np.abs(back - x).max() <= (max(cal.hi) - min(cal.lo)) / 255)
True
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from . import _embquant as _native
from ._arrow import (
    FieldArray,
    codes_to_numpy,
    import_field_array,
    one_column_table,
    prepare_vectors,
    table_column,
)
from ._jobs import calibrate_parquet, inspect, quantize_parquet
from ._search import Corpus, recall, search
from ._st import quantize_embeddings

__all__ = [
    "Calibration",
    "Corpus",
    "__version__",
    "calibrate",
    "calibrate_parquet",
    "dequantize",
    "inspect",
    "quantize",
    "quantize_embeddings",
    "quantize_parquet",
    "recall",
    "search",
    "simd_level",
]

logging.getLogger("embquant").addHandler(logging.NullHandler())

#: The package version (the Rust crates' version).
__version__: str = _native.__version__
#: The SIMD level the kernels use on this CPU (``avx512``, ``avx2`` or ``scalar``).
simd_level: str = _native.simd_level

#: Per-dimension ranges and statistics (``lo``, ``hi``, ``min``, ``max``, ``mean``,
#: ``std``), JSON round trip (:meth:`Calibration.to_json` / :meth:`Calibration.from_json`),
#: a content ``fingerprint``, :meth:`Calibration.merge` of partial calibrations, and
#: :meth:`Calibration.from_parquet` reading the one stored in a quantized file.
Calibration = _native.Calibration

Output = Literal["pyarrow", "array", "numpy", "native", "arro3"]
_OUTPUTS = ("pyarrow", "array", "numpy", "native", "arro3")


def calibrate(
    vectors: Any,
    method: str = "minmax",
    *,
    column: str | None = None,
    dims: int | None = None,
) -> Calibration:
    """Computes a per-dimension calibration of float vectors.

    Parameters
    ----------
    vectors
        A 2-d numpy array (rows x dimensions), a list of rows, or an Arrow array / table
        (pyarrow, polars, DuckDB, ...) of ``FixedSizeList<float, D>`` or ``List<float>``.
    method
        ``"minmax"`` (the range of the data), ``"quantile:P"`` (clips each dimension's
        tails, e.g. ``"quantile:0.999"``) or ``"meanstd:K"`` (mean +- K std), optionally
        followed by ``+symmetric`` (ranges +-max|x| on a grid with a level at zero: int8
        codes are ``round(x / step)``, zero-point 0) and/or ``+per-tensor`` (one range for
        every dimension), e.g. ``"minmax+symmetric"``.
    column
        The vector column of a table input (optional when it has one vector column).
    dims
        Keep the first `dims` dimensions (Matryoshka), re-normalized, before calibrating.

    Returns
    -------
    Calibration

    Examples
    --------
    >>> import numpy as np, embquant
    >>> x = np.array([[0.0, 1.0], [2.0, -1.0]], dtype=np.float32)
    >>> cal = embquant.calibrate(x)
    >>> cal.lo, cal.hi, cal.rows
    ([0.0, -1.0], [2.0, 1.0], 2)
    >>> embquant.Calibration.from_json(cal.to_json()) == cal
    True
    """
    return _native.calibrate(prepare_vectors(vectors), method=method, column=column, dims=dims)


def quantize(
    vectors: Any,
    scheme: str,
    calibration: Calibration | None = None,
    *,
    column: str | None = None,
    binary_threshold: str = "zero",
    dims: int | None = None,
    int8_layout: str = "binary",
    rabitq_rotation: str = "hadamard",
    rabitq_bits: int | None = None,
    output: Output = "pyarrow",
) -> Any:
    """Quantizes float vectors with one scheme.

    Parameters
    ----------
    vectors
        As in :func:`calibrate`. Null rows give null codes.
    scheme
        ``"int8"``, ``"int4"``, ``"binary"``, ``"f16"``, ``"bf16"``, ``"rabitq"``, or
        ``"rabitq2"`` to ``"rabitq8"``: multi-bit RaBitQ, two columns scored together (the
        sign bits with their factors, then the extra bits), returned as a two-column table
        (``output="pyarrow"`` only).
    calibration
        Needed by ``int8`` and ``int4`` (and ``binary`` with a ``mean`` / ``median``
        threshold); its dimension must match the vectors (or `dims`).
    column
        The vector column of a table input.
    binary_threshold
        ``"zero"`` (sign bits, as ``numpy.packbits(x > 0, axis=-1)``), ``"mean"`` or
        ``"median"`` (bits centered at the calibration's statistic).
    dims
        Keep the first `dims` dimensions (Matryoshka), re-normalized, before encoding.
    int8_layout
        ``"binary"`` (``FixedSizeBinary(D)`` of int8 bit patterns, the Parquet-friendly
        default) or ``"list"`` (``FixedSizeList<Int8, D>``).
    rabitq_rotation
        ``"hadamard"``, ``"hadamard:SEED"`` or ``"none"``.
    rabitq_bits
        Bits per dimension of ``rabitq`` codes, 1 to 8 (``scheme="rabitq4"`` says the same).
    output
        ``"pyarrow"`` (default): a one-column ``pyarrow.Table`` whose field carries the
        embquant metadata (``embquant``: the recipe, ``embquant.calibration``: the
        calibration), so ``pyarrow.parquet.write_table(codes, ...)`` or
        ``table.append_column(codes.field(0), codes.column(0))`` keep it and
        :func:`dequantize` needs no other argument. A table rather than an array because a
        ``pyarrow.Array`` has a type but no field, and would drop the metadata.
        ``"array"``: the ``pyarrow.Array`` alone (no metadata). ``"numpy"``: a zero-copy,
        read-only 2-d view of the codes (int8 for ``int8``, uint16 bit patterns for
        ``bf16``, float16 for ``f16``, else uint8 bytes; no null rows allowed).
        ``"native"``: the extension's object (``__arrow_c_array__``, with the field).
        ``"arro3"``: an ``arro3.core.Array`` (keeps the field).

    Returns
    -------
    pyarrow.Table | pyarrow.Array | numpy.ndarray | object
        The codes, one row per input row (see `output`).

    Examples
    --------
    >>> import numpy as np, embquant
    >>> x = np.random.default_rng(0).standard_normal((100, 384), dtype=np.float32)
    >>> bits = embquant.quantize(x, "binary", output="numpy")
    >>> bool((bits == np.packbits(x > 0, axis=-1)).all())
    True
    >>> codes = embquant.quantize(x, "int8", embquant.calibrate(x))
    >>> b"embquant.calibration" in codes.schema.field(0).metadata
    True
    """
    if output not in _OUTPUTS:
        raise ValueError(f"output {output!r}: expected one of {', '.join(_OUTPUTS)}")
    results = _native.quantize(
        prepare_vectors(vectors),
        scheme,
        calibration,
        column=column,
        binary_threshold=binary_threshold,
        dims=dims,
        int8_layout=int8_layout,
        rabitq_rotation=rabitq_rotation,
        rabitq_bits=rabitq_bits,
    )
    if len(results) > 1:
        if output != "pyarrow":
            raise ValueError(
                f"{scheme!r} makes {len(results)} columns (the sign bits and the extra bits, "
                f"scored together): output={output!r} holds one; use output='pyarrow', "
                "which returns them as one table"
            )
        pairs = [import_field_array(r) for r in results]
        return pa.Table.from_arrays([a for _, a in pairs], schema=pa.schema([f for f, _ in pairs]))
    return _convert_codes(results[0], scheme.strip(), output)


def _convert_codes(result: Any, scheme: str, output: str) -> Any:
    if output == "native":
        return result
    if output == "arro3":
        try:
            from arro3.core import Array as Arro3Array
        except ImportError as e:
            raise ImportError("output='arro3' needs the arro3-core package") from e
        return Arro3Array.from_arrow(result)
    field, array = import_field_array(result)
    if output == "array":
        return array
    if output == "numpy":
        codes = codes_to_numpy(array, signed=scheme == "int8")
        return codes.view(np.uint16) if scheme == "bf16" else codes
    return one_column_table(field, array)


def dequantize(
    codes: Any,
    calibration: Calibration | None = None,
    *,
    scheme: str | None = None,
    column: str | None = None,
    output: Literal["pyarrow", "numpy", "native"] = "pyarrow",
) -> Any:
    """Decodes codes back to float32 vectors.

    Parameters
    ----------
    codes
        Codes with their embquant field metadata (the table :func:`quantize` returns, a
        column of a table read from a quantized Parquet file, with `column` naming it when
        the table has several), which say the scheme and calibration; or plain codes (a
        ``pyarrow.Array``, or a numpy array as :func:`quantize` returns with
        ``output="numpy"``) with `scheme` and, for ``int8`` / ``int4``, `calibration`.
    calibration
        Overrides (or supplies) the calibration.
    scheme
        The scheme of plain codes.
    column
        The code column of a table.
    output
        ``"pyarrow"``: a ``FixedSizeList<float32, D>`` ``pyarrow.Array``; ``"numpy"``: a
        2-d float32 view of it (no null rows allowed); ``"native"``: the extension's object.

    Returns
    -------
    pyarrow.Array | numpy.ndarray | object

    Examples
    --------
    >>> import numpy as np, embquant
    >>> x = np.random.default_rng(1).standard_normal((10, 8), dtype=np.float32)
    >>> cal = embquant.calibrate(x)
    >>> codes = embquant.quantize(x, "int8", cal, output="numpy")
    >>> back = embquant.dequantize(codes, cal, scheme="int8", output="numpy")
    >>> back.shape, back.dtype
    ((10, 8), dtype('float32'))
    """
    if output not in ("pyarrow", "numpy", "native"):
        raise ValueError(f"output {output!r}: expected pyarrow, numpy or native")
    arg: Any
    if isinstance(codes, (pa.Table, pa.RecordBatch)):
        arg = FieldArray(*table_column(codes, column))
    elif isinstance(codes, pa.ChunkedArray):
        arg = codes.combine_chunks() if codes.num_chunks != 1 else codes.chunk(0)
    elif isinstance(codes, np.ndarray):
        if scheme is None:
            raise ValueError("dequantize: numpy codes carry no metadata: pass scheme=")
        arg = _numpy_codes(codes, scheme.strip())
    elif type(codes).__module__.split(".")[0] == "polars":
        arg = codes.to_arrow()
    else:
        arg = codes
    result = _native.dequantize(arg, calibration, scheme=scheme)
    if output == "native":
        return result
    array = pa.array(result)
    if output == "numpy":
        return codes_to_numpy(array)
    return array


def _numpy_codes(codes: np.ndarray, scheme: str) -> pa.Array:
    """Plain numpy codes (rows x width) as the Arrow array the native decoder reads."""
    if codes.ndim != 2:
        raise ValueError(f"codes must be a 2-d array (rows x width), got shape {codes.shape}")
    c = np.ascontiguousarray(codes)
    n, width = c.shape
    if scheme in ("f16", "bf16"):
        if c.dtype not in (np.float16, np.uint16):
            raise ValueError(f"{scheme} codes must be float16 or uint16, got {c.dtype}")
        values = pa.array(c.view(np.float16).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(values, width)
    if c.dtype not in (np.int8, np.uint8):
        raise ValueError(f"{scheme} codes must be int8 or uint8 bytes, got {c.dtype}")
    if scheme == "int8":
        return pa.FixedSizeListArray.from_arrays(pa.array(c.view(np.int8).reshape(-1)), width)
    buffer = pa.py_buffer(c.view(np.uint8))
    return pa.Array.from_buffers(pa.binary(width), n, [None, buffer])
