#!/usr/bin/env bash
# Whole-job comparison, all in one run on this machine:
#   embquant quantize (two passes: calibrate on all rows, then encode int8 + binary)
#   vs pyarrow + numpy (../shared/peers/pipeline_quantize.py --calib full, the same job)
#   vs a plain arrow-rs read + write of the same file (the I/O floor, examples/parquet_copy.rs),
# wall time and peak RSS from /usr/bin/time, on the peers' 1M x 384 float32 zstd file (pyarrow
# defaults: one 1M-row row group); then peak RSS of embquant on synthetic 1M and 3M x 384 files.
# Prints markdown tables (BENCHMARKS.md). Needs the peers' venv (../shared/peers/README.md).
#
#   benches/compare.sh [repeats]     (BIN=path: that embquant binary instead of a new build;
#                                     SKIP_PEERS=1: leave out the pyarrow + numpy peer)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${1:-3}
PY=${PY:-$HOME/venv-peers/bin/python}
PEERS=$(cd ../shared/peers && pwd)
DATA=${PEER_DATA:-/tmp/peerdata}
WORK=${WORK:-/tmp/embquant-compare}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$WORK" "$DATA"

cargo build --release --example parquet_copy >&2
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin embquant >&2
  BIN="$CARGO_TARGET_DIR/release/embquant"
fi
COPY="$CARGO_TARGET_DIR/release/examples/parquet_copy"

IN="$DATA/parquet/float32_fsl384_zstd_default.parquet"
if [ ! -f "$IN" ]; then
  echo "making the peers' input $IN" >&2
  (cd "$PEERS" && PEER_DATA="$DATA" PEER_RESULTS="$WORK/peer-parquet.jsonl" "$PY" bench_parquet.py --only float32_fsl384 --variants zstd_default --repeats 1 >&2)
fi

# run NAME CMD...: REPEATS runs, prints "NAME median_wall_s max_rss_mb"
run() {
  local name=$1; shift
  local walls=() rss=0
  for _ in $(seq "$REPEATS"); do
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" > "$WORK/out.log" 2>&1 || { cat "$WORK/out.log" >&2; exit 1; }
    read -r w m < "$WORK/time"
    walls+=("$w"); [ "$m" -gt "$rss" ] && rss=$m
  done
  local med
  med=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$name $med $((rss / 1024))"
}

echo "load average before: $(cat /proc/loadavg)" >&2
if [ -n "${SKIP_PEERS:-}" ]; then R_PEER="peer nan 0"; touch "$WORK/peer.parquet"; else
  R_PEER=$(run peer "$PY" "$PEERS/pipeline_quantize.py" "$IN" "$WORK/peer.parquet" --calib full)
fi
R_EQ=$(run embquant "$BIN" quantize "$IN" --column emb --scheme int8,binary --drop-source -o "$WORK/eq.parquet" --quiet)
R_EQL=$(run embquant_list "$BIN" quantize "$IN" --column emb --scheme int8,binary --drop-source --int8-layout list -o "$WORK/eql.parquet" --quiet)
R_FLOOR=$(run floor "$COPY" "$IN" "$WORK/copy.parquet" 1024)
echo "load average after: $(cat /proc/loadavg)" >&2

read -r _ pw pr <<< "$R_PEER"; read -r _ ew er <<< "$R_EQ"; read -r _ lw lr <<< "$R_EQL"; read -r _ fw fr <<< "$R_FLOOR"
size() { stat -c %s "$1" | awk '{printf "%.0f", $1 / 1e6}'; }
echo
echo "| job (1M x 384 float32, zstd, one row group) | wall s (median of $REPEATS) | peak RSS MB | output MB | vs pyarrow+numpy | vs I/O floor |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
echo "| pyarrow + numpy (pipeline_quantize.py --calib full) | $pw | $pr | $(size "$WORK/peer.parquet") | 1.00x | - |"
echo "| embquant quantize --scheme int8,binary --drop-source | $ew | $er | $(size "$WORK/eq.parquet") | $(awk "BEGIN {printf \"%.2fx faster, %.2fx the RSS\", $pw / $ew, $er / $pr}") | $(awk "BEGIN {printf \"%.2fx\", $ew / $fw}") |"
echo "| same, --int8-layout list (the peer's layout) | $lw | $lr | $(size "$WORK/eql.parquet") | $(awk "BEGIN {printf \"%.2fx faster, %.2fx the RSS\", $pw / $lw, $lr / $pr}") | $(awk "BEGIN {printf \"%.2fx\", $lw / $fw}") |"
echo "| I/O floor: arrow-rs read + write of the same file (examples/parquet_copy) | $fw | $fr | $(size "$WORK/copy.parquet") | - | 1.00x |"

echo
echo "| synthetic input (131,072-row row groups) | file MB | embquant two-pass wall s | peak RSS MB |"
echo "| --- | ---: | ---: | ---: |"
for rows in 1000000 3000000; do
  f="$WORK/syn-$rows.parquet"
  [ -f "$f" ] || "$BIN" gen-synthetic --rows "$rows" --dims 384 -o "$f" --quiet >&2
  R=$(REPEATS=1 run syn "$BIN" quantize "$f" --scheme int8,binary -o "$WORK/syn-out.parquet" --quiet)
  read -r _ w m <<< "$R"
  echo "| $rows x 384 (keeping the float column) | $(size "$f") | $w | $m |"
done
rm -f "$WORK"/eq.parquet "$WORK"/eql.parquet "$WORK"/copy.parquet "$WORK"/peer.parquet "$WORK"/syn-out.parquet
