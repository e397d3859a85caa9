#!/usr/bin/env bash
# Multi-bit RaBitQ against faiss IndexRaBitQ(nb_bits) on the same data, same session (issue 16).
#
# 1. Recall@10 on ../shared/data/minilm-wordnet and on the held-out set that
#    benches/rabitq_bits_peers.py --make-heldout generates (/tmp/heldout-384), with `embquant
#    recall` (exact ground truth) for 1, 2, 4, 8 bits alone, then int8 at oversampling 1, 2, 4,
#    and the bound-pruned chains.
# 2. Queries/s at one thread on the peers' 1M x 384 data (.npy from ../shared/peers/common.py)
#    with examples/rabitq_bits_bench.rs.
# 3. faiss: benches/rabitq_bits_peers.sh (recall on both sets and queries/s on 1M).
#
#   benches/rabitq_bits.sh     (BIN=path of an embquant binary; NQ=queries for the 1M run)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
PY=${PY:-$HOME/venv-peers/bin/python}
DATA=${PEER_DATA:-/tmp/peerdata}
OUT=${OUT:-/tmp/embquant-rabitq-bits}
NQ=${NQ:-200}
mkdir -p "$OUT"
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin embquant >&2
  BIN="$CARGO_TARGET_DIR/release/embquant"
fi
[ -f /tmp/heldout-384/ground_truth.parquet ] || "$PY" benches/rabitq_bits_peers.py --make-heldout /tmp/heldout-384
CFGS="int8;rabitq;rabitq2;rabitq4;rabitq8"
for b in rabitq rabitq2 rabitq4 rabitq8; do for o in 1 2 4; do CFGS="$CFGS;$b:$o,int8"; done; done
CFGS="$CFGS;rabitq1:bound,rabitq4:bound,int8;rabitq1:bound,rabitq2:bound,int8;rabitq1:bound,rabitq8:bound,int8"
for d in ../shared/data/minilm-wordnet /tmp/heldout-384; do
  name=$(basename "$d")
  "$BIN" recall --corpus "$d/corpus.parquet" --queries "$d/queries.parquet" --k 10 \
    --configs "$CFGS" --report "$OUT/recall-$name"
done
cargo build --release --example rabitq_bits_bench >&2
RAYON_NUM_THREADS=1 "$CARGO_TARGET_DIR/release/examples/rabitq_bits_bench" \
  "$DATA/emb_n1000000_d384_q1000_s42_x.npy" "$DATA/emb_n1000000_d384_q1000_s42_q.npy" "$NQ" \
  int8 rabitq rabitq2 rabitq4 rabitq8 rabitq:2,int8 rabitq:4,int8 rabitq2:2,int8 rabitq2:4,int8 \
  rabitq4:2,int8 rabitq4:4,int8 rabitq8:2,int8 rabitq1:bound,rabitq4:bound,int8 \
  rabitq1:bound,rabitq2:bound,int8
[ -n "${SKIP_PEERS:-}" ] || benches/rabitq_bits_peers.sh
