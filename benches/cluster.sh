#!/usr/bin/env bash
# The 1M x 384 quantize job (calibrate + int8,binary) on a Ballista cluster of 1 and 2
# executors (one core and one task slot each, pinned with taskset) against the local job
# (pinned to one core, then on both): wall time of the client and peak RSS of every process
# (GNU time). The input is the peers' 1M x 384 file split into 8 files of 125,000 rows
# (each file is one shard); the scheduler, executors and client run on 127.0.0.1.
#
#   benches/cluster.sh      (BIN=dir holding embquant and embquant-cluster instead of a
#                            release build; SHARDS=dir of input files; COLUMN=name)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${PEER_DATA:-/tmp/peerdata}
WORK=${WORK:-/tmp/embquant-cluster-bench}
SHARDS=${SHARDS:-$WORK/in}
COLUMN=${COLUMN:-emb}
PY=${PY:-$HOME/venv-peers/bin/python}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin embquant --bin embquant-cluster >&2
  BIN="$CARGO_TARGET_DIR/release"
fi
mkdir -p "$WORK"
if [ ! -d "$SHARDS" ]; then
  mkdir -p "$SHARDS"
  "$PY" - "$DATA/parquet/float32_fsl384_zstd_default.parquet" "$SHARDS" <<'PY'
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1]); n = t.num_rows; per = n // 8
for i in range(8):
    pq.write_table(t.slice(i * per, per if i < 7 else n - 7 * per),
                   f"{sys.argv[2]}/part-{i}.parquet", compression="zstd", row_group_size=65536)
PY
fi

# GNU time's peak RSS (MB) and wall seconds from its -v report.
rss() { awk '/Maximum resident/ {printf "%.0f", $6/1024}' "$1"; }
wall() { awk '/Elapsed \(wall/ {n=split($8,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.1f", s}' "$1"; }

echo "| run | client wall (s) | client RSS (MB) | scheduler RSS (MB) | executor RSS (MB) |"
echo "| --- | ---: | ---: | ---: | ---: |"
for cores in 0 0,1; do
  rm -rf "$WORK/local.parquet"
  /usr/bin/time -v -o "$WORK/local.time" taskset -c $cores "$BIN/embquant" --quiet quantize \
    "$SHARDS" --column "$COLUMN" -o "$WORK/local.parquet" >/dev/null
  echo "| local job, cores $cores | $(wall "$WORK/local.time") | $(rss "$WORK/local.time") | - | - |"
done

for n in 1 2; do
  PORT=$((51050 + n * 10))
  rm -rf "$WORK/out" "$WORK"/*.time
  /usr/bin/time -v -o "$WORK/scheduler.time" "$BIN/embquant-cluster" scheduler \
    --bind 127.0.0.1:$PORT >"$WORK/scheduler.log" 2>&1 &
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  for e in $(seq 1 $n); do
    /usr/bin/time -v -o "$WORK/executor-$e.time" taskset -c $((e - 1)) \
      "$BIN/embquant-cluster" executor --scheduler 127.0.0.1:$PORT \
      --bind 127.0.0.1:$((PORT + e)) --vcores 1 >"$WORK/executor-$e.log" 2>&1 &
  done
  for e in $(seq 1 $n); do
    for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$((PORT + e))") 2>/dev/null && break; sleep 0.1; done
  done
  sleep 1
  /usr/bin/time -v -o "$WORK/client.time" "$BIN/embquant-cluster" quantize \
    --cluster df://127.0.0.1:$PORT "$SHARDS" --column "$COLUMN" -o "$WORK/out" >"$WORK/client.log"
  pkill -INT -f "embquant-cluster (scheduler|executor) .*127.0.0.1:$PORT" || true
  wait 2>/dev/null || true
  ex=$(for e in $(seq 1 $n); do rss "$WORK/executor-$e.time"; echo -n " "; done)
  echo "| cluster, $n executor(s) x 1 core | $(wall "$WORK/client.time") | $(rss "$WORK/client.time") | $(rss "$WORK/scheduler.time") | ${ex% } |"
  grep -o "on [0-9]* worker(s)" "$WORK/client.log" >&2 || true
done
