#!/usr/bin/env bash
# Brute-force SQL top-10 over the peers' 1M x 384 file, all in one run on this machine:
#   embquant sql: ORDER BY hamming_distance(emb_bin, ...) and ORDER BY inner_product(emb, ...)
#   DuckDB (../shared/peers/bench_duckdb.py's parquet_direct query): array_cosine_similarity
#   on the float column of the same file.
# The file is the peers' float32 file plus a binary_quantize(emb) column, written once by
# `embquant sql "COPY ..."` with 131,072-row row groups (both engines parallelize by row
# group). Prints a markdown table (BENCHMARKS.md). Needs the peers' venv.
#
#   benches/sql_topk.sh [repeats]
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${1:-3}
PY=${PY:-$HOME/venv-peers/bin/python}
DATA=${PEER_DATA:-/tmp/peerdata}
WORK=${WORK:-/tmp/embquant-sqlbench}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$WORK"
cargo build --release --bin embquant >&2
exec "$PY" benches/sql_topk.py --bin "$CARGO_TARGET_DIR/release/embquant" \
  --src "$DATA/parquet/float32_fsl384_zstd_default.parquet" --work "$WORK" --repeats "$REPEATS"
