#!/usr/bin/env python3
"""RandomForest cross-check on a flowtensor shard folder (Debian python3-sklearn, numpy).

Reads DIR/manifest.json and the safetensors shards with numpy only (no flowtensor code), trains
scikit-learn's RandomForestClassifier on train and prints test (and val) macro-F1 as one JSON line.
Default protocol as Engelen et al.: 50 trees, max depth 20, balanced class weights.

  python3 bench/rf.py DIR [--seed 1] [--trees 50] [--depth 20] [--per-class]
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np


def read_safetensors(path):
    with open(path, 'rb') as f:
        buf = f.read()
    (n,) = struct.unpack('<Q', buf[:8])
    header = json.loads(buf[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        a, b = t['data_offsets']
        dt = {'F32': np.float32, 'I32': np.int32}[t['dtype']]
        out[name] = np.frombuffer(buf[base + a:base + b], dtype=dt).reshape(t['shape'])
    return out


def load_split(d, m, split):
    xs, ys = [], []
    for sh in m['splits'][split]['shards']:
        t = read_safetensors(os.path.join(d, sh['file']))
        xs.append(t['features'])
        ys.append(t['labels'])
    if not xs:
        return np.zeros((0, m['num_features']), np.float32), np.zeros(0, np.int32)
    return np.concatenate(xs), np.concatenate(ys)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dir')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--trees', type=int, default=50)
    ap.add_argument('--depth', type=int, default=20)
    ap.add_argument('--jobs', type=int, default=1)
    ap.add_argument('--per-class', action='store_true')
    a = ap.parse_args()
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import f1_score, accuracy_score, classification_report

    m = json.load(open(os.path.join(a.dir, 'manifest.json')))
    xtr, ytr = load_split(a.dir, m, 'train')
    t0 = time.time()
    rf = RandomForestClassifier(n_estimators=a.trees, max_depth=a.depth, class_weight='balanced', random_state=a.seed, n_jobs=a.jobs)
    rf.fit(xtr, ytr)
    fit_s = time.time() - t0
    res = {'dir': a.dir, 'model': f'RandomForest({a.trees} trees, depth {a.depth}, balanced)', 'seed': a.seed, 'train_rows': int(len(ytr)), 'fit_seconds': round(fit_s, 2)}
    for split in ('val', 'test'):
        x, y = load_split(a.dir, m, split)
        if len(y) == 0:
            continue
        p = rf.predict(x)
        res[f'{split}_macro_f1'] = round(float(f1_score(y, p, average='macro')), 4)
        res[f'{split}_accuracy'] = round(float(accuracy_score(y, p)), 4)
        if a.per_class and split == 'test':
            present = sorted(set(y.tolist()) | set(p.tolist()))
            print(classification_report(y, p, labels=present, target_names=[m['labels'][i] for i in present], digits=3), file=sys.stderr)
    print(json.dumps(res))


if __name__ == '__main__':
    main()
