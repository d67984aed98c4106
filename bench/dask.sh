#!/usr/bin/env bash
# One-machine prep vs flowtensor-dask on the same input, interleaved (docs/SCALE.md "Costs, measured here"):
#   bench/dask.sh [ROWS [ROUNDS [extra prep options...]]]      e.g. bench/dask.sh 1000000 2 --dedupe
# Writes into ${BENCH_DIR:-/tmp/flowtensor-dask-bench}; prints the load average before each run, GNU time's
# wall time, CPU and peak RSS, and flowtensor-dask's summary (its tasks' CPU and peak RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}; ROUNDS=${2:-2}; shift $(( $# < 2 ? $# : 2 ))
B=${BENCH_DIR:-/tmp/flowtensor-dask-bench}
mkdir -p "$B"
[ -f "$B/x-$ROWS.csv" ] || node bin/flowtensor.js synth --rows "$ROWS" --seed 1 --out "$B/x-$ROWS.csv"
load() { node -e 'console.log(new Date().toISOString(), "loadavg", require("os").loadavg().map(x=>x.toFixed(2)).join(" "))'; }
times() { grep -E 'Elapsed|User time|System time|Maximum resident' "$1" | sed 's/^\s*/  /'; }
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r: prep"; load; rm -rf "$B/one"
  /usr/bin/time -v node bin/flowtensor.js prep -q "$@" --out "$B/one" "$B/x-$ROWS.csv" > /dev/null 2> "$B/one.time"; times "$B/one.time"
  echo "== round $r: flowtensor-dask --scheduler local:2 --partitions 4"; load; rm -rf "$B/dk"
  /usr/bin/time -v bin/flowtensor-dask prep --scheduler local:2 --partitions 4 "$@" --out "$B/dk" "$B/x-$ROWS.csv" 2> "$B/dk.err"; times "$B/dk.err"
done
load
