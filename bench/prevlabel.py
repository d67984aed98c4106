#!/usr/bin/env python3
"""How much the window model's context alone tells: predict each test row's class as the class of its
source host's previous row in the shard (the `prev` pointer the window model follows), or of the
previous row in the shard (the old consecutive-row windows), the majority class where there is none.
On per-class sample files both leak the label; this measures by how much.

  python3 bench/prevlabel.py DIR [--split test]
"""
import argparse, json, os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from rf import read_safetensors


def macro_f1(y, p):
    labels = sorted(set(y.tolist()) | set(p.tolist()))
    f1s = []
    for c in labels:
        tp = np.sum((p == c) & (y == c)); fp = np.sum((p == c) & (y != c)); fn = np.sum((p != c) & (y == c))
        pr = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * pr * rc / (pr + rc) if pr + rc else 0.0)
    return float(np.mean(f1s))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dir')
    ap.add_argument('--split', default='test')
    a = ap.parse_args()
    m = json.load(open(os.path.join(a.dir, 'manifest.json')))
    ys, host, row = [], [], []
    maj = int(np.argmax([m['splits']['train']['class_counts'].get(l, 0) for l in m['labels']]))
    for sh in m['splits'][a.split]['shards']:
        t = read_safetensors(os.path.join(a.dir, sh['file']))
        y = t['labels']
        prev = t.get('prev')
        ys.append(y)
        row.append(np.concatenate([[maj], y[:-1]]))
        host.append(np.where(prev >= 0, y[np.maximum(prev, 0)], maj) if prev is not None else np.full(len(y), maj))
        has_prev = prev is not None
    y = np.concatenate(ys)
    out = {'dir': a.dir, 'split': a.split, 'rows': int(len(y)), 'previous_row_label_macro_f1': round(macro_f1(y, np.concatenate(row)), 4)}
    if has_prev:
        out['previous_same_host_label_macro_f1'] = round(macro_f1(y, np.concatenate(host)), 4)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
