#!/usr/bin/env bash
# Output identity of `prep` across code changes: runs prep over fixed inputs and option sets and prints one
# digest per configuration (sha256 over every file of the output folder; Parquet by content, since its
# footer's key order is not reproducible, docs/BENCHMARKS.md). Run it with the old and the new build and
# diff the two outputs.
#   bash bench/identity.sh [FLOWTENSOR_CHECKOUT] > digests.txt     (default: this checkout, built)
set -uo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$HERE}" && pwd)
FT="node $B/bin/flowtensor.js"
D=${DATA:-$HERE/../shared/data/cicids2017}
I=$HERE/.bench/identity
O=$(mktemp -d)
trap 'rm -rf "$O"' EXIT
mkdir -p "$I"
# inputs made by this checkout's synth once (the same files for every build compared)
[ -f "$I/tl.csv" ] || node "$HERE/bin/flowtensor.js" synth -q -n 300000 --seed 7 -o "$I/tl.csv"
[ -f "$I/imp.csv" ] || node "$HERE/bin/flowtensor.js" synth -q -n 300000 --seed 7 --layout improved -o "$I/imp.csv"
[ -f "$I/mlc.csv" ] || node "$HERE/bin/flowtensor.js" synth -q -n 100000 --seed 9 --layout machinelearningcve --crlf --bom -o "$I/mlc.csv"
run() {
  local name=$1; shift
  rm -rf "$O/out"
  if ! $FT prep -q -o "$O/out" "$@" >/dev/null 2>"$O/err"; then echo "$name FAILED $(tail -1 "$O/err")"; return; fi
  echo "$name $(cd "$O/out" && find . -type f | sort | xargs sha256sum | sha256sum | cut -c1-16)"
}
run tl-default "$I/tl.csv"
run tl-dedupe-drop --dedupe --drop-identifiers "$I/tl.csv"
run tl-w0 --workers 0 "$I/tl.csv"
run tl-w2 --workers 2 "$I/tl.csv"
run tl-minmax --scaler minmax --log1p "$I/tl.csv"
run tl-logminmax --scaler log-minmax --drop-identifiers "$I/tl.csv"
run tl-host-dedupe --split-by host --dedupe "$I/tl.csv"
run tl-conn --split-by connection "$I/tl.csv"
run imp-default "$I/imp.csv"
run imp-dedupe-drop --dedupe --drop-identifiers "$I/imp.csv"
run mlc-default --allow-missing-features "$I/mlc.csv"
if [ -d "$D" ]; then
  run real-imp "$D"/Improved-*
  run real-imp-dd --dedupe --drop-identifiers "$D"/Improved-*
  run real-imp-w1 --workers 1 "$D"/Improved-*
  run real-imp-conn --split-by connection "$D"/Improved-*
  run real-orig --allow-missing-features "$D"/TrafficLabelling* "$D"/MachineLearningCVE*
  run real-orig-dd --allow-missing-features --dedupe --drop-identifiers "$D"/TrafficLabelling* "$D"/MachineLearningCVE*
  run real-orig-w1 --allow-missing-features --workers 1 "$D"/TrafficLabelling* "$D"/MachineLearningCVE*
  run derived --allow-new-labels --dedupe --allow-mixed-releases --allow-missing-features "$D"/Derived-*
else
  echo "real samples: $D not found, skipped" >&2
fi
rm -rf "$O/out"
if $FT prep -q -o "$O/out" --format parquet --drop-identifiers "$I/tl.csv" >/dev/null 2>"$O/err"; then
  echo "pq-tl (content) $(node --input-type=module -e "
    import fs from 'node:fs'; import path from 'node:path'; import crypto from 'node:crypto';
    const [dist, dir] = process.argv.slice(1);
    const { decodeParquet } = await import(path.join(dist, 'src/parquet.js'));
    const h = crypto.createHash('sha256');
    h.update(JSON.stringify(JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')), (k, v) => (k === 'sha256' ? undefined : v)));
    for (const sp of ['train', 'val', 'test']) for (const f of fs.readdirSync(path.join(dir, sp)).sort()) {
      const d = decodeParquet(fs.readFileSync(path.join(dir, sp, f)), null, f);
      for (const a of [d.x, d.y, d.prev]) if (a) h.update(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
      h.update(JSON.stringify(Object.entries(d.metadata).sort()));
    }
    console.log(h.digest('hex').slice(0, 16));" "$B/dist" "$O/out")"
else echo "pq-tl FAILED $(tail -1 "$O/err")"; fi
