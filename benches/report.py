#!/usr/bin/env python3
"""Prints the BENCHMARKS.md codec table from criterion's results and the peers' JSON lines.

Usage (after `cargo bench --bench codecs` and the peer run, see BENCHMARKS.md):
    python3 benches/report.py [--criterion DIR] [--peers peer-results.jsonl]
Standard library only.
"""
import argparse
import json
import os
import sys


def criterion_rows(root):
    rows = {}
    for dirpath, _, files in os.walk(root):
        if "benchmark.json" not in files or not dirpath.endswith("new"):
            continue
        bench = json.load(open(os.path.join(dirpath, "benchmark.json")))
        est = json.load(open(os.path.join(dirpath, "estimates.json")))
        tp = bench.get("throughput") or {}
        nbytes = tp.get("Bytes") or tp.get("BytesDecimal")
        if not nbytes:
            continue
        median_s = est["median"]["point_estimate"] * 1e-9
        rows[bench["full_id"]] = nbytes / median_s / 1e9
    return rows


def peer_rows(path):
    rows = {}
    if not os.path.exists(path):
        return rows
    for line in open(path):
        r = json.loads(line)
        if r.get("kind") == "summary":
            rows[(r["bench"], r["peer"], r["threads"])] = r
    return rows


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("--criterion", default=os.path.join(target, "criterion"))
    ap.add_argument("--peers", default="peer-results.jsonl")
    a = ap.parse_args()
    ours = criterion_rows(a.criterion)
    peers = peer_rows(a.peers)
    if not ours:
        sys.exit(f"no criterion results under {a.criterion}")

    def gb(bench_id):
        v = ours.get(bench_id)
        return f"{v:.2f}" if v is not None else "-"

    def peer(bench, name, threads=1):
        r = peers.get((bench, name, threads))
        return (r["median_GBps"], r) if r else (None, None)

    print("| job | embquant d=384 | embquant d=1024 | scalar twin d=384 | peers, d=384, same run (GB/s) | vs fastest peer |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    lines = [
        ("calibrate: count, min, max, mean, variance", "calibrate/d{d}/moments (min, max, mean, var)", None,
         [("int8_calibrate_minmax", "numpy_chunked", "numpy chunked min/max"),
          ("int8_calibrate_minmax", "faiss.ScalarQuantizer.QT_8bit.train", "faiss SQ8 train (min/max)")]),
        ("calibrate: + quantile sketch", "calibrate/d{d}/moments + quantile sketch", None, []),
        ("int8 encode, slice kernel", "int8/d{d}/kernel/fast", "int8/d{d}/kernel/scalar twin",
         [("int8_quantize", "numpy_chunked", "numpy chunked"),
          ("int8_quantize", "faiss.ScalarQuantizer.QT_8bit.compute_codes", "faiss SQ8"),
          ("int8_quantize", "numpy_st_style_full", "sentence-transformers math")]),
        ("int8 encode, Arrow array in/out", "int8/d{d}/arrow/encode", None, []),
        ("int4 encode, slice kernel", "int4/d{d}/kernel/fast", "int4/d{d}/kernel/scalar twin",
         [("4bit_quantize", "faiss.ScalarQuantizer.QT_4bit.compute_codes", "faiss SQ4")]),
        ("binary encode, slice kernel", "binary/d{d}/kernel/fast", "binary/d{d}/kernel/scalar twin",
         [("binary_quantize", "numpy_packbits_chunked", "numpy packbits chunked"),
          ("binary_quantize", "numpy_packbits_full", "np.packbits full array"),
          ("binary_quantize", "numpy_st_style_ubinary", "sentence-transformers ubinary math")]),
        ("binary encode, Arrow array in/out", "binary/d{d}/arrow/encode", None, []),
        ("f16 encode, slice kernel", "f16/d{d}/kernel/fast", "f16/d{d}/kernel/scalar twin", []),
    ]
    for name, bid, twin, plist in lines:
        ps = [(label, peer(bench, pname)[0]) for bench, pname, label in plist]
        ps = [(l, v) for l, v in ps if v is not None]
        o384 = ours.get(bid.format(d=384))
        best = max((v for _, v in ps), default=None)
        ratio = f"{o384 / best:.2f}x" if (best and o384) else "-"
        plist_s = ", ".join(f"{l} {v:.2f}" for l, v in ps) or "-"
        tw = gb(twin.format(d=384)) if twin else "-"
        print(f"| {name} | {gb(bid.format(d=384))} | {gb(bid.format(d=1024))} | {tw} | {plist_s} | {ratio} |")
    q8 = peers.get(("membw_q8", "c_stream_gcc", 1))
    rd = peers.get(("membw_read", "c_stream_gcc", 1))
    if q8:
        print(f"\nCeilings measured in the same run (one thread): C loop of the int8 quantizer's shape "
              f"{q8['median_GBps'] * 4 / 5:.2f} GB/s of float input ({q8['median_GBps']:.2f} GB/s of traffic); "
              f"read-only stream {rd['median_GBps']:.2f} GB/s." if rd else "")


if __name__ == "__main__":
    main()
