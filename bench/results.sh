#!/usr/bin/env bash
# The figures of docs/RESULTS.md: per release and split mode, the LSTM (seed and window models, default
# training settings, 3 seeds) beside scikit-learn's RandomForest (Engelen et al. protocol, 3 seeds) and
# flowtensor's own baseline, all on the same shards. One JSON line per result on stdout.
#   bash bench/results.sh [OUT]      (OUT default .bench/results; needs python3 with numpy and scikit-learn)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.bench/results}
FT=${FT:-node bin/flowtensor.js}
D=${DATA:-../shared/data/cicids2017}
SEEDS=${SEEDS:-1 2 3}
mkdir -p "$OUT"
# a python3 with scikit-learn (Debian's python3-sklearn lives under /usr/bin/python3)
PY=${PYTHON:-python3}
$PY -c 'import sklearn' 2>/dev/null || PY=/usr/bin/python3
IMPROVED=$(ls "$D"/Improved-*.csv)
ORIGINAL="$(ls "$D"/TrafficLabelling__*.csv "$D"/MachineLearningCVE__*.csv "$D"/Derived-LabelEncoded-*.csv)"

emit() { python3 - "$@" <<'PY'
import json, sys
kind, rel, split, model, seed, path = sys.argv[1:7]
e = json.load(open(path))
out = {'release': rel, 'split_by': split, 'model': model, 'seed': int(seed), 'test_macro_f1': round(e.get('macro_f1', e.get('test_macro_f1', 0)), 4)}
if kind == 'lstm':
    ms = [json.loads(l) for l in open(path.replace('eval.json', 'metrics.ndjson'))]
    out.update(epochs=len(ms), best_epoch=e.get('best_epoch'), samples_per_s=round(sum(m['samples_per_s'] for m in ms) / len(ms)))
print(json.dumps(out), flush=True)
PY
}

prep_set() { # name release split files...
  local name=$1 split=$2; shift 2
  $FT prep -q --dedupe --drop-identifiers --split-by "$split" --out "$OUT/$name" "$@" >/dev/null
}

run_set() { # name release split
  local name=$1 rel=$2 split=$3
  for seed in $SEEDS; do
    for model in seed window; do
      $FT train -q --shards "$OUT/$name" --out "$OUT/$name-$model-s$seed" --model $model --seed "$seed" >/dev/null
      emit lstm "$rel" "$split" "lstm-$model" "$seed" "$OUT/$name-$model-s$seed/eval.json"
    done
    $PY bench/rf.py "$OUT/$name" --seed "$seed" > "$OUT/$name-rf-s$seed.json"
    emit rf "$rel" "$split" sklearn-rf "$seed" "$OUT/$name-rf-s$seed.json"
  done
  $FT baseline -q --shards "$OUT/$name" --out "$OUT/$name-ydf" >/dev/null
  emit ydf "$rel" "$split" ydf-rf 1 "$OUT/$name-ydf/eval.json"
}

prep_set improved-hash hash $IMPROVED
run_set improved-hash cicids2017-improved hash
prep_set improved-connection connection $IMPROVED
run_set improved-connection cicids2017-improved connection
# the original release: MachineLearningCVE has no identifiers or protocol (zero-filled, recorded)
$FT prep -q --dedupe --drop-identifiers --allow-missing-features --out "$OUT/original-hash" $ORIGINAL >/dev/null
run_set original-hash cicids2017 hash
