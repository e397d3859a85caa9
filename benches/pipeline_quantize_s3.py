"""(f) pyarrow + numpy streaming quantize pipeline (the peer for our Parquet->Parquet quantizer).

A copy of ../shared/peers/pipeline_quantize.py whose input may be an s3:// URL, read through
pyarrow.fs.S3FileSystem configured from the same environment embquant reads (AWS_ENDPOINT,
AWS_ALLOW_HTTP, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION); benches/s3.sh runs it.
The output is a local file, as in embquant's job it is compared with.

read float parquet (FixedSizeList<float32,384>) in record batches
  -> int8 (per-dim min/max, 256 buckets, ST math with rint) + binary (packbits(x>0))
  -> write parquet with two columns: FixedSizeList<int8,384>, FixedSizeBinary(48)

--calib full   : two passes (pass 1 min/max over the whole file, pass 2 quantize+write)
--calib sample : one pass; ranges from the first batch (--batch rows)
Prints one JSON line (wall time split). Run it under /usr/bin/time -v for
peak RSS (bench_pipeline.py does that).

Usage: python pipeline_quantize.py IN.parquet OUT.parquet [--calib full|sample]
       [--batch 65536] [--compression zstd]
"""
import argparse
import json
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def open_input(url):
    """A pyarrow ParquetFile on a local path or an s3:// URL, and the input's size."""
    if not url.startswith("s3://"):
        return pq.ParquetFile(url), os.path.getsize(url)
    from pyarrow import fs
    endpoint = os.environ.get("AWS_ENDPOINT", "")
    scheme = "http" if endpoint.startswith("http://") else "https"
    s3 = fs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_override=endpoint.split("://", 1)[-1] or None, scheme=scheme)
    path = url[len("s3://"):]
    size = s3.get_file_info(path).size
    return pq.ParquetFile(s3.open_input_file(path)), size


def batches(pf, batch):
    for rb in pf.iter_batches(batch_size=batch, use_threads=True):
        col = rb.column(0)
        d = col.type.list_size
        vals = col.flatten().to_numpy(zero_copy_only=False).reshape(-1, d)
        yield vals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--calib", default="full", choices=["full", "sample"])
    ap.add_argument("--batch", type=int, default=65536)
    ap.add_argument("--compression", default="zstd")
    a = ap.parse_args()
    t0 = time.perf_counter()
    pf, in_bytes = open_input(a.inp)
    n = pf.metadata.num_rows
    d = pf.schema_arrow.field(0).type.list_size
    if a.calib == "full":
        lo = np.full(d, np.inf, np.float32)
        hi = np.full(d, -np.inf, np.float32)
        for v in batches(pf, a.batch):
            np.minimum(lo, v.min(axis=0), out=lo)
            np.maximum(hi, v.max(axis=0), out=hi)
    else:
        v = next(batches(pf, a.batch))
        lo, hi = v.min(axis=0), v.max(axis=0)
    t1 = time.perf_counter()
    inv = (255.0 / (hi - lo)).astype(np.float32)
    off = (-lo * inv - 128.0).astype(np.float32)
    schema = pa.schema([("emb_i8", pa.list_(pa.int8(), d)), ("emb_bin", pa.binary(d // 8))])
    rows = 0
    with pq.ParquetWriter(a.out, schema, compression=a.compression, use_dictionary=False) as w:
        pf2, _ = open_input(a.inp)
        tmp = None
        for v in batches(pf2, a.batch):
            m = v.shape[0]
            if tmp is None or tmp.shape[0] < m:
                tmp = np.empty((m, d), np.float32)
            t = tmp[:m]
            np.multiply(v, inv, out=t)
            np.add(t, off, out=t)
            np.rint(t, out=t)
            np.clip(t, -128, 127, out=t)
            q8 = t.astype(np.int8)
            qb = np.packbits(v > 0, axis=1)
            arr8 = pa.FixedSizeListArray.from_arrays(pa.array(q8.reshape(-1)), d)
            arrb = pa.FixedSizeBinaryArray.from_buffers(pa.binary(d // 8), m, [None, pa.py_buffer(qb)])
            w.write_batch(pa.record_batch([arr8, arrb], schema=schema))
            rows += m
    t2 = time.perf_counter()
    print(json.dumps({"kind": "pipeline_inner", "rows": rows, "n": n, "d": d, "calib": a.calib,
                      "calib_s": round(t1 - t0, 4), "quantize_write_s": round(t2 - t1, 4),
                      "total_s": round(t2 - t0, 4), "out_bytes": os.path.getsize(a.out),
                      "in_bytes": in_bytes}), flush=True)


if __name__ == "__main__":
    main()
