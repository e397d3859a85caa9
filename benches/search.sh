#!/usr/bin/env bash
# Search throughput on the peers' 1M x 384 data, one thread, 1,000 queries, k = 10:
# embquant search (tier chains) vs ../shared/peers/bench_search.py (faiss IndexBinaryFlat,
# IndexScalarQuantizer QT_8bit, IndexFlatIP with BLAS, faiss binary + numpy rescoring),
# run one after the other in this script. Prints embquant's lines; the peers' JSON lines go
# to $WORK/peer-search.jsonl.
#
#   benches/search.sh         (BIN=path: run that embquant binary instead of building one;
#                              SKIP_PEERS=1: embquant only, e.g. for a second binary)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$HOME/venv-peers/bin/python}
PEERS=$(cd ../shared/peers && pwd)
DATA=${PEER_DATA:-/tmp/peerdata}
WORK=${WORK:-/tmp/embquant-search}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$WORK"
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin embquant >&2
  BIN="$CARGO_TARGET_DIR/release/embquant"
fi
IN="$DATA/parquet/float32_fsl384_zstd_default.parquet"
[ -f "$IN" ] || (cd "$PEERS" && PEER_DATA="$DATA" PEER_RESULTS="$WORK/peer-parquet.jsonl" "$PY" bench_parquet.py --only float32_fsl384 --variants zstd_default --repeats 1 >&2)
# The same 1,000 queries the peers use, as Parquet.
"$PY" - "$DATA" "$WORK/queries.parquet" <<'PYEOF'
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
q = np.load(f"{sys.argv[1]}/emb_n1000000_d384_q1000_s42_q.npy")
pq.write_table(pa.table({"id": pa.array(np.arange(len(q)), pa.int64()),
                         "emb": pa.FixedSizeListArray.from_arrays(pa.array(q.reshape(-1)), q.shape[1])}), sys.argv[2])
PYEOF
"$BIN" quantize "$IN" --column emb --scheme int8,binary -o "$WORK/search-corpus.parquet" --quiet >&2
[ -n "${SKIP_PEERS:-}" ] || (cd "$PEERS" && PEER_DATA="$DATA" PEER_RESULTS="$WORK/peer-search.jsonl" "$PY" bench_search.py --only binary,int8,float_blas,tiered --threads 1 --ks 10 --repeats 1 --nq 1000 --nq-sq 50 >&2)
for tiers in binary int8 binary:4,int8 binary:8,int8 binary:4,int8:2,float; do
  RAYON_NUM_THREADS=1 "$BIN" search --corpus "$WORK/search-corpus.parquet" --queries "$WORK/queries.parquet" --column emb --k 10 --tiers "$tiers" -o "$WORK/results.parquet"
done
