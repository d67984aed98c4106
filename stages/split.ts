// Stage 6, split: deterministic train/val/test assignment, optional exact-duplicate removal.
// Each row's split comes from a 64-bit fingerprint of its feature values and label (so exact
// duplicates always land in the same split), except the first three rows of every class, which go
// to train, val and test in that order so that every class with >= 3 rows is present in each split.
// The result depends only on the rows and their order; `prep` sorts its input files by name.
import { Transform } from 'node:stream';
import { bump, compact, SPLITS, type Batch, type Counts } from '../src/batch.js';
import { FingerprintSet, rowHash } from '../src/hash.js';

export interface SplitOptions {
  ratios: { train: number; val: number; test: number };
  dedupe?: boolean;
  /** Columns hashed, in order (default: every numeric column of the batch, sorted by name). */
  columns?: string[];
}

export interface Splitter {
  counts: Counts;
  apply(b: Batch): Batch;
}

export function createSplit(opts: SplitOptions): Splitter {
  const { train, val, test } = opts.ratios;
  const total = train + val + test;
  if (!(total > 0) || train < 0 || val < 0 || test < 0) throw new Error('split ratios must be non-negative with a positive sum');
  const tTrain = (train / total) * 2 ** 32;
  const tVal = ((train + val) / total) * 2 ** 32;
  const seen = new Map<number, number>();
  const set = opts.dedupe ? new FingerprintSet() : null;
  const counts: Counts = { deduplicated: 0, rows: { train: 0, val: 0, test: 0 }, deduplicated_by_class: {} };
  const h = new Uint32Array(2);
  return {
    counts,
    apply(b: Batch): Batch {
      if (!b.label) throw new Error('split needs labels (run the labels stage first)');
      const names = opts.columns ?? [...b.num.keys()].sort();
      const cols = names.map((n) => {
        const c = b.num.get(n);
        if (!c) throw new Error(`split: column ${n} missing`);
        return c;
      });
      const split = new Uint8Array(b.n);
      let keep: Uint8Array | null = null;
      const rows = counts.rows as Counts;
      for (let i = 0; i < b.n; i++) {
        const lab = b.label[i];
        rowHash(cols, i, lab, h);
        if (set && set.addHas(h[0], h[1])) {
          keep ??= new Uint8Array(b.n).fill(1);
          keep[i] = 0;
          (counts.deduplicated as number)++;
          bump(counts, 'deduplicated_by_class', String(lab));
          continue;
        }
        const k = seen.get(lab) ?? 0;
        seen.set(lab, k + 1);
        let s: number;
        if (k < 3) s = k;
        else {
          const u = h[1];
          s = u < tTrain ? 0 : u < tVal ? 1 : 2;
        }
        split[i] = s;
        (rows[SPLITS[s]] as number)++;
      }
      let out: Batch = { ...b, split };
      if (keep) out = compact(out, keep);
      return out;
    },
  };
}

export function splitStream(s: Splitter): Transform {
  return new Transform({ objectMode: true, transform: (b: Batch, _e, cb) => cb(null, s.apply(b)) });
}
