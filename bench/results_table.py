#!/usr/bin/env python3
"""The tables of docs/RESULTS.md from bench/results.sh's JSON lines: per release and split mode, test
macro-F1 of each model over its seeds (mean, min-max), and the LSTM's ratio to scikit-learn's RandomForest.

  bash bench/results.sh OUT > results.ndjson && python3 bench/results_table.py results.ndjson
"""
import json, sys
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = defaultdict(lambda: defaultdict(list))
for r in rows:
    by[(r['release'], r['split_by'])][r['model']].append(r['test_macro_f1'])


def cell(v):
    if not v:
        return '–'
    m = sum(v) / len(v)
    return f'{m:.3f} ({min(v):.3f}–{max(v):.3f})' if len(v) > 1 else f'{m:.3f}'


print('| release | split | LSTM seed model | LSTM window model | scikit-learn RF | YDF RF (`baseline`) | seed LSTM / sklearn RF |')
print('|---|---|---|---|---|---|---|')
for (rel, split), d in by.items():
    s, rf = d.get('lstm-seed', []), d.get('sklearn-rf', [])
    ratio = f'{(sum(s) / len(s)) / (sum(rf) / len(rf)):.3f}' if s and rf else '–'
    print(f"| {rel} | {split} | {cell(s)} | {cell(d.get('lstm-window', []))} | {cell(rf)} | {cell(d.get('ydf-rf', []))} | {ratio} |")
