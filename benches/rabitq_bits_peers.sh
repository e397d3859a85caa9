#!/usr/bin/env bash
# Peer benchmark of faiss 1.15.1 multi-bit RaBitQ (+ int8 rescoring); see rabitq_bits_peers.py.
# Venv: python3 -m venv $HOME/venv-peers && $HOME/venv-peers/bin/pip install numpy==2.4.6 \
#       pyarrow==26.0.1 faiss-cpu==1.15.1 threadpoolctl==3.8.0 psutil==7.2.2
# The 1M data: shared/peers/common.py load_embeddings() with PEER_DATA=/tmp/peerdata.
set -euo pipefail
PY=${PY:-$HOME/venv-peers/bin/python}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/rabitq-peers.jsonl}
DATA=${DATA:-$HERE/../../shared/data/minilm-wordnet}
export PEER_DATA=${PEER_DATA:-/tmp/peerdata}

[ -f /tmp/heldout-384/ground_truth.parquet ] || $PY "$HERE/rabitq_bits_peers.py" --make-heldout /tmp/heldout-384
[ -f "$PEER_DATA/emb_n1000000_d384_q1000_s42_x.npy" ] ||
    (cd "$HERE/../../shared/peers" && $PY -c "import common; common.load_embeddings()")

for d in "$DATA" /tmp/heldout-384; do
    $PY "$HERE/rabitq_bits_peers.py" --data "$d" --bits 1,2,4,8 --oversample 1,2,4 --k 10 \
        --threads 1 --qps --out "$OUT"
done
$PY "$HERE/rabitq_bits_peers.py" --peers-1m --bits 1,2,4,8 --oversample 2,4 --k 10 --nq 1000 \
    --threads 1 --out "$OUT"
