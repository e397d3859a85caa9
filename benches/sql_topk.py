"""SQL brute-force top-10, embquant sql vs DuckDB, on one file (see sql_topk.sh).

Each embquant query is one `embquant sql` process (start-up, table registration, the scan
and the top-k, all timed); DuckDB runs in this process on 2 threads, reading the same file
with read_parquet each query, as bench_duckdb.py's parquet_direct case. Median of --repeats.
"""
import argparse
import os
import subprocess
import time

import duckdb
import numpy as np
import pyarrow.parquet as pq


def timed(f, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--query-row", type=int, default=123457)
    a = ap.parse_args()
    path = os.path.join(a.work, "sqlbench.parquet")
    if not os.path.exists(path):
        t = time.perf_counter()
        # ids are row numbers of the source as DataFusion reads it (not necessarily file order).
        sql = ("COPY (SELECT CAST(row_number() OVER () - 1 AS BIGINT) AS id, emb, binary_quantize(emb) AS emb_bin "
               f"FROM src) TO '{path}' OPTIONS ('format.max_row_group_size' '131072')")
        subprocess.run([a.bin, "sql", sql, "--table", f"src={a.src}"], check=True, capture_output=True)
        print(f"<!-- wrote {path} in {time.perf_counter() - t:.1f} s -->")
    meta = pq.ParquetFile(path).metadata
    n, rgs = meta.num_rows, meta.num_row_groups
    row = pq.read_table(path, columns=["id", "emb"]).slice(a.query_row, 1)
    qid, q = row.column(0)[0].as_py(), row.column(1)[0].as_py()
    qlit = "[" + ", ".join(repr(float(x)) for x in q) + "]"
    d = len(q)

    def ours(sql):
        def run():
            r = subprocess.run([a.bin, "sql", sql, "--table", f"t={path}"], check=True, capture_output=True, text=True)
            return r.stdout
        return run

    bin_sql = f"SELECT id, hamming_distance(emb_bin, binary_quantize({qlit})) AS d FROM t ORDER BY d, id LIMIT 10"
    ip_sql = f"SELECT id, inner_product(emb, {qlit}) AS s FROM t ORDER BY s DESC LIMIT 10"
    con = duckdb.connect()
    con.execute("SET threads=2")
    duck_sql = (f"SELECT id, array_cosine_similarity(emb::FLOAT[{d}], $1::FLOAT[{d}]) AS s "
                f"FROM read_parquet('{path}') ORDER BY s DESC LIMIT 10")
    duck = lambda: con.execute(duck_sql, [q]).fetchall()  # noqa: E731

    t_bin, out_bin = timed(ours(bin_sql), a.repeats)
    t_ip, out_ip = timed(ours(ip_sql), a.repeats)
    t_duck, out_duck = timed(duck, a.repeats)
    # Sanity: the query row itself is the best float match for both engines.
    assert f"| {qid} " in out_ip, out_ip
    assert out_duck[0][0] == qid, out_duck[:3]
    assert f"| {qid} " in out_bin, out_bin

    print(f"file: {path} ({n:,} rows x {d}, {rgs} row groups, {os.path.getsize(path) / 1e9:.2f} GB); "
          f"median of {a.repeats}; loadavg {os.getloadavg()[0]:.2f}")
    print()
    print("| query | engine | s/query | vs DuckDB float |")
    print("| --- | --- | ---: | ---: |")
    print(f"| `ORDER BY array_cosine_similarity(emb, q) DESC LIMIT 10` | DuckDB {duckdb.__version__}, 2 threads | {t_duck:.3f} | 1.0x |")
    print(f"| `ORDER BY inner_product(emb, q) DESC LIMIT 10` | embquant sql | {t_ip:.3f} | {t_duck / t_ip:.1f}x |")
    print(f"| `ORDER BY hamming_distance(emb_bin, binary_quantize(q)) LIMIT 10` | embquant sql | {t_bin:.3f} | {t_duck / t_bin:.1f}x |")


if __name__ == "__main__":
    main()
