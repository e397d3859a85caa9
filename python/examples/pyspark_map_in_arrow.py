"""Quantize embeddings in a PySpark job with ``mapInArrow`` and a broadcast calibration.

    pip install pyspark          # needs a JDK (17 or later for Spark 4)
    python examples/pyspark_map_in_arrow.py --input corpus.parquet --output quantized/

1. Calibration, distributed: each partition computes a partial ``minmax`` calibration of
   its rows (``mapInArrow``), the driver merges them (``Calibration.merge``): the same
   ranges as one pass over all rows.
2. Quantization: the calibration JSON is broadcast, and each partition appends the codes
   (``<column>_int8``, ``<column>_bin``, ...) to its Arrow batches, zero-copy in and out
   of embquant. Spark stores the codes as ``binary``; the calibration JSON is written
   beside the output (``--calibration-out``) to decode or search them later.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import reduce
from pathlib import Path
from typing import Iterator

import pyarrow as pa

import embquant

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
SUFFIX = {"int8": "_int8", "int4": "_int4", "binary": "_bin", "rabitq": "_rq"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(DATA / "minilm-wordnet-5k.parquet"))
    parser.add_argument("--output", required=True)
    parser.add_argument("--column", default="embedding")
    parser.add_argument("--schemes", default="int8,binary")
    parser.add_argument("--calibration-out", default=None)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)

    # Local mode: the Python workers run this interpreter (where embquant is installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession
    from pyspark.sql.types import BinaryType, StructField, StructType

    spark = (
        SparkSession.builder.master(args.master)
        .appName("embquant-map-in-arrow")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "4096")
        .config("spark.sql.execution.arrow.useLargeVarTypes", "false")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    column = args.column
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    unknown = [s for s in schemes if s not in SUFFIX]
    if unknown:
        parser.error(f"--schemes: {unknown} (this example writes {', '.join(SUFFIX)})")
    df = spark.read.parquet(args.input)

    # 1. One partial calibration per partition, merged on the driver.
    def calibrate_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        partial = None
        for batch in batches:
            if batch.num_rows == 0:
                continue
            cal = embquant.calibrate(batch, "minmax", column=column)
            partial = cal if partial is None else partial.merge(cal)
        if partial is not None:
            yield pa.RecordBatch.from_pydict({"calibration": [partial.to_json()]})

    rows = df.select(column).mapInArrow(calibrate_partition, "calibration string").collect()
    partials = [embquant.Calibration.from_json(r["calibration"]) for r in rows]
    calibration = reduce(lambda a, b: a.merge(b), partials)
    print(f"calibration of {calibration.rows} rows from {len(partials)} partitions")
    if args.calibration_out:
        Path(args.calibration_out).write_text(calibration.to_json())

    # 2. Broadcast it; every partition appends its codes.
    broadcast = spark.sparkContext.broadcast(calibration.to_json())

    def quantize_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        cal = embquant.Calibration.from_json(broadcast.value)
        for batch in batches:
            arrays = list(batch.columns)
            names = list(batch.schema.names)
            for scheme in schemes:
                codes = embquant.quantize(batch, scheme, cal, column=column, output="array")
                arrays.append(codes.cast(pa.binary()))  # Spark's BinaryType is Arrow binary
                names.append(column + SUFFIX[scheme])
            yield pa.RecordBatch.from_arrays(arrays, names=names)

    extra = [StructField(column + SUFFIX[s], BinaryType()) for s in schemes]
    out_schema = StructType(df.schema.fields + extra)
    out = df.mapInArrow(quantize_partition, out_schema)
    out.write.mode("overwrite").parquet(args.output)
    written = spark.read.parquet(args.output).count()
    print(f"wrote {written} rows with {', '.join(f.name for f in extra)} to {args.output}")
    spark.stop()
    return written


if __name__ == "__main__":
    main()
