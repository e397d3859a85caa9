#!/usr/bin/env bash
# The same jobs on a local file and on the same file in an S3 bucket: wall time, MB/s of
# input and peak RSS (GNU time), one after the other. The S3 server is moto (installed by
# .ci/run in ~/.cache/embquant-s3-venv), started here on 127.0.0.1 and stopped at the end;
# the input is the peers' 1M x 384 file (one row group, a 1.4 GB float column chunk).
#
#   benches/s3.sh              (BIN=path: that embquant binary instead of a release build;
#                               IN=file.parquet COLUMN=name: another input)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${PEER_DATA:-/tmp/peerdata}
IN=${IN:-$DATA/parquet/float32_fsl384_zstd_default.parquet}
COLUMN=${COLUMN:-emb}
WORK=${WORK:-/tmp/embquant-s3}
VENV=${S3_VENV:-$HOME/.cache/embquant-s3-venv}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$WORK"
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin embquant >&2
  BIN="$CARGO_TARGET_DIR/release/embquant"
fi
[ -x "$VENV/bin/moto_server" ] || { echo "no moto in $VENV (run .ci/run once)" >&2; exit 1; }

PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true' EXIT
export AWS_ENDPOINT="http://127.0.0.1:$PORT" AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.2; done
"$VENV/bin/python" - "$AWS_ENDPOINT" "$IN" <<'PYEOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="testing",
                  aws_secret_access_key="testing", region_name="us-east-1")
s3.create_bucket(Bucket="bench")
s3.upload_file(sys.argv[2], "bench", "emb/part-0.parquet")
PYEOF
URL="s3://bench/emb/part-0.parquet"
BYTES=$(stat -c %s "$IN")

# One job: prints "name where seconds MB/s peak-RSS-MB".
run() {
  local name=$1 where=$2; shift 2
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
  read -r secs kb <"$WORK/time"
  awk -v n="$name" -v w="$where" -v s="$secs" -v kb="$kb" -v b="$BYTES" \
    'BEGIN { printf "%-10s %-6s %7.2f s %8.1f MB/s %7.0f MB peak RSS\n", n, w, s, b / 1e6 / s, kb / 1024 }'
}
for where in local s3; do
  src=$IN; [ "$where" = s3 ] && src=$URL
  run calibrate "$where" "$BIN" calibrate "$src" --column "$COLUMN" -o "$WORK/cal-$where.json"
  run quantize "$where" "$BIN" quantize "$src" --column "$COLUMN" --scheme int8,binary \
    -o "$WORK/q-$where.parquet" --quiet
done
cmp "$WORK/cal-local.json" "$WORK/cal-s3.json" && echo "calibrations identical"
