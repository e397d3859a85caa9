#!/usr/bin/env bash
# The same jobs on a local file and on the same file in an S3 bucket: wall time, MB/s of
# input and peak RSS (GNU time), one after the other, with the peer (pyarrow + numpy, the
# peers' two-pass quantize pipeline reading through pyarrow.fs.S3FileSystem:
# benches/pipeline_quantize_s3.py) in the same run. The S3 server is SeaweedFS (`weed mini`,
# installed by .ci/run in ~/.cache/embquant-s3-venv), started here on 127.0.0.1 and stopped
# at the end; the input is the peers' 1M x 384 file (one row group, a 1.4 GB float column
# chunk).
#
#   benches/s3.sh              (BIN=path: that embquant binary instead of a release build;
#                               IN=file.parquet COLUMN=name: another input;
#                               PY=python with pyarrow and numpy: the peer's interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${PEER_DATA:-/tmp/peerdata}
IN=${IN:-$DATA/parquet/float32_fsl384_zstd_default.parquet}
COLUMN=${COLUMN:-emb}
WORK=${WORK:-/tmp/embquant-s3}
VENV=${S3_VENV:-$HOME/.cache/embquant-s3-venv}
PY=${PY:-$HOME/venv-peers/bin/python}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
rm -rf "$WORK" && mkdir -p "$WORK/weed"
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin embquant >&2
  BIN="$CARGO_TARGET_DIR/release/embquant"
fi
[ -x "$VENV/bin/weed" ] || { echo "no SeaweedFS in $VENV (run .ci/run once)" >&2; exit 1; }

cat >"$WORK/s3.json" <<'JSON'
{"identities": [{"name": "bench", "credentials": [{"accessKey": "bench", "secretKey": "bench-secret"}],
                 "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
"$VENV/bin/weed" mini -dir="$WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.telemetry=false -s3.config="$WORK/s3.json" -bucket=bench >"$WORK/weed.log" 2>&1 &
WEED=$!
trap 'kill $WEED 2>/dev/null || true' EXIT
export AWS_ENDPOINT="http://127.0.0.1:8333" AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=bench \
  AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
for _ in $(seq 300); do (echo >"/dev/tcp/127.0.0.1/8333") 2>/dev/null && break; sleep 0.2; done
sleep 2
URL="s3://bench/emb/part-0.parquet"
"$PY" - "$IN" "${URL#s3://}" <<'PYEOF'
import os, sys
from pyarrow import fs
s3 = fs.S3FileSystem(access_key="bench", secret_key="bench-secret", region="us-east-1",
                     endpoint_override="127.0.0.1:8333", scheme="http")
fs.copy_files(sys.argv[1], sys.argv[2], destination_filesystem=s3)
assert s3.get_file_info(sys.argv[2]).size == os.path.getsize(sys.argv[1])
PYEOF
BYTES=$(stat -c %s "$IN")

# One job: prints "name where seconds MB/s peak-RSS-MB".
run() {
  local name=$1 where=$2; shift 2
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
  read -r secs kb <"$WORK/time"
  awk -v n="$name" -v w="$where" -v s="$secs" -v kb="$kb" -v b="$BYTES" \
    'BEGIN { printf "%-22s %-6s %7.2f s %8.1f MB/s %7.0f MB peak RSS\n", n, w, s, b / 1e6 / s, kb / 1024 }'
}
echo "input: $IN ($BYTES bytes); embquant: $BIN; SIMD level: ${EMBQUANT_SIMD:-detected}"
for where in local s3; do
  src=$IN; [ "$where" = s3 ] && src=$URL
  run "embquant calibrate" "$where" "$BIN" calibrate "$src" --column "$COLUMN" -o "$WORK/cal-$where.json"
  run "embquant quantize" "$where" "$BIN" quantize "$src" --column "$COLUMN" --scheme int8,binary \
    -o "$WORK/q-$where.parquet" --quiet
  run "pyarrow+numpy quantize" "$where" "$PY" benches/pipeline_quantize_s3.py "$src" "$WORK/p-$where.parquet"
done
cmp "$WORK/cal-local.json" "$WORK/cal-s3.json" && echo "calibrations identical"
cmp "$WORK/q-local.parquet" "$WORK/q-s3.parquet" >/dev/null && echo "quantized files identical" \
  || echo "quantized files differ in bytes (the recipe names the input)"
