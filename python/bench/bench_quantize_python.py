"""Quantization throughput from Python: embquant against numpy, sentence-transformers, faiss.

    python bench/bench_quantize_python.py [--rows 100000] [--repeats 5] \
        [--rust-int8-gbps G] [--rust-binary-gbps G] [--json results.jsonl]

Data: the peers' synthetic embeddings (/work/shared/peers/common.py: seed 42, per-dimension
offsets and scales, 1,000 clusters, unit-norm rows), here 100,000 x 384 float32 (the first
100,000 rows of the peers' 1M set). Timing as the peers': `repeats` runs, perf_counter, the
median; GB/s of float32 input (rows x 384 x 4 bytes). Calibration is excluded unless the
row says "+ calibrate".

The "Rust kernel" column is criterion's number for the same operation (pass it with
--rust-int8-gbps / --rust-binary-gbps); "% of Rust" is the Python binding's share of it
(the target is >= 90%: the binding adds no copy, only the call).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

import embquant


def gen_embeddings(n: int, d: int = 384, seed: int = 42, chunk: int = 100_000) -> np.ndarray:
    """The peers' corpus generator (common.gen_embeddings), corpus rows only."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 0.3, d).astype(np.float32)
    sigma = rng.lognormal(0.0, 0.35, d).astype(np.float32)
    n_clusters = 1000
    centers = rng.standard_normal((n_clusters, d), dtype=np.float32)
    x = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        c = rng.integers(0, n_clusters, e - s)
        z = rng.standard_normal((e - s, d), dtype=np.float32)
        blk = mu + sigma * (0.6 * centers[c] + 0.8 * z)
        blk /= np.linalg.norm(blk, axis=1, keepdims=True)
        x[s:e] = blk
    return x


def bench(fn: Callable[[], Any], repeats: int) -> tuple[list[float], list[float]]:
    """Wall seconds and cores used (process CPU / wall) of `repeats` runs (one warm-up)."""
    fn()
    walls, cores = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        walls.append(wall)
        cores.append((time.process_time() - c0) / wall)
    return walls, cores


# sentence-transformers 6.x quantize_embeddings math, verbatim (numpy only), as the peers.
def st_ranges(emb: np.ndarray) -> np.ndarray:
    return np.vstack((np.min(emb, axis=0), np.max(emb, axis=0)))


def st_int8(emb: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    ranges = ranges.astype(np.float32, copy=False)
    starts = ranges[0, :]
    steps = (ranges[1, :] - starts) / 255
    steps = np.where(steps == 0, 1, steps)
    q_vals = np.clip(np.floor((emb - starts) / steps), 0, 255)
    return (q_vals - 128).astype(np.int8)


def st_ubinary(emb: np.ndarray) -> np.ndarray:
    return np.packbits(emb > 0, axis=-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rust-int8-gbps", type=float, default=None)
    ap.add_argument("--rust-binary-gbps", type=float, default=None)
    ap.add_argument("--json", default=None, help="append one JSON line per row to this file")
    a = ap.parse_args()

    x = gen_embeddings(a.rows)
    n, d = x.shape
    nbytes = x.nbytes
    cal = embquant.calibrate(x)
    ranges = st_ranges(x)
    rust = {"int8": a.rust_int8_gbps, "binary": a.rust_binary_gbps}
    # Reused outputs: the Rust kernel's benchmark writes into one buffer too.
    out8 = np.empty((len(x), d), np.int8)
    out1 = np.empty((len(x), (d + 7) // 8), np.uint8)

    cases: list[tuple[str, str, str | None, Callable[[], Any]]] = [
        ("int8", "embquant.quantize(x, 'int8', cal) -> pyarrow.Table", "int8",
         lambda: embquant.quantize(x, "int8", cal)),
        ("int8", "embquant.quantize(..., output='native')", "int8",
         lambda: embquant.quantize(x, "int8", cal, output="native")),
        ("int8", "embquant.quantize_embeddings(x, 'int8', ranges=cal)", "int8",
         lambda: embquant.quantize_embeddings(x, "int8", ranges=cal)),
        ("int8", "embquant.quantize_embeddings(x, 'int8', ranges=cal, out=reused)", "int8",
         lambda: embquant.quantize_embeddings(x, "int8", ranges=cal, out=out8)),
        ("int8", "numpy, sentence-transformers 6.x math (st_int8)", None,
         lambda: st_int8(x, ranges)),
        ("int8 + calibrate", "embquant.quantize_embeddings(x, 'int8')", None,
         lambda: embquant.quantize_embeddings(x, "int8")),
        ("int8 + calibrate", "numpy, ST math (st_ranges + st_int8)", None,
         lambda: st_int8(x, st_ranges(x))),
        ("binary", "embquant.quantize(x, 'binary') -> pyarrow.Table", "binary",
         lambda: embquant.quantize(x, "binary")),
        ("binary", "embquant.quantize_embeddings(x, 'ubinary')", "binary",
         lambda: embquant.quantize_embeddings(x, "ubinary")),
        ("binary", "embquant.quantize_embeddings(x, 'ubinary', out=reused)", "binary",
         lambda: embquant.quantize_embeddings(x, "ubinary", out=out1)),
        ("binary", "numpy.packbits(x > 0, axis=1) (ST 'ubinary')", None,
         lambda: st_ubinary(x)),
    ]  # fmt: skip
    try:
        import faiss  # type: ignore[import-not-found]

        sq = faiss.ScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit)
        sq.train(x)
        cases.append(("int8", "faiss.ScalarQuantizer QT_8bit compute_codes", None,
                      lambda: sq.compute_codes(x)))  # fmt: skip
    except ImportError:
        print("faiss is not installed: no faiss row", file=sys.stderr)

    rows = []
    for op, impl, kernel, fn in cases:
        walls, cores = bench(fn, a.repeats)
        med = statistics.median(walls)
        gbps = nbytes / med / 1e9
        ref = rust.get(kernel) if kernel else None
        rows.append(
            {
                "operation": op,
                "implementation": impl,
                "median_s": med,
                "GBps": gbps,
                "vectors_per_s": n / med,
                "cores": statistics.median(cores),
                "rust_GBps": ref,
                "pct_of_rust": 100 * gbps / ref if ref else None,
                # Filled from criterion (cargo bench) when not given on the command line.
                "placeholder": "(criterion)" if kernel else "",
            }
        )
        print(f"{op:18} {impl:55} {gbps:7.2f} GB/s", file=sys.stderr)

    print(f"\n{n:,} x {d} float32 ({nbytes / 1e6:.0f} MB), {a.repeats} runs, median; "
          f"embquant {embquant.__version__} ({embquant.simd_level}), numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs\n")  # fmt: skip
    print(
        "| operation | implementation | median s | GB/s | M vectors/s | cores "
        "| Rust kernel GB/s | % of Rust |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        rust_s = f"{r['rust_GBps']:.2f}" if r["rust_GBps"] else r["placeholder"]
        pct = f"{r['pct_of_rust']:.0f}%" if r["pct_of_rust"] else ""
        print(
            f"| {r['operation']} | {r['implementation']} | {r['median_s']:.4f} | "
            f"{r['GBps']:.2f} | {r['vectors_per_s'] / 1e6:.2f} | {r['cores']:.1f} | "
            f"{rust_s} | {pct} |"
        )
    if a.json:
        with open(a.json, "a") as f:
            for r in rows:
                f.write(json.dumps({"bench": "quantize_python", "rows": n, "dim": d, **r}) + "\n")


if __name__ == "__main__":
    main()
