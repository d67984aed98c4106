// Stage 6, split: deterministic train/val/test assignment, optional exact-duplicate removal.
// --split-by hash (default): each row's split comes from a 64-bit fingerprint of its feature values (as
// float32, the precision of the shards) and its label, so exact duplicates always land in the same
// split. This stage gives that natural split; the per-class minimum (the three smallest fingerprints
// of every class go to train, val and test, so that every class with >= 3 distinct rows is present in
// each split) is decided once every row has been seen, by the shard writer and pass 2 (src/stats.ts),
// so that it depends neither on row order nor on how the input was partitioned. Dedupe keeps the first
// copy of each fingerprint in input order (the smallest file and line; `prep` sorts files by name).
// --split-by connection|host: the split comes from the row's group key (stages/keys.ts), so every flow
// of a connection (or every flow from a host) lands in one split; no row is moved for the per-class
// minimum, which would break a group. --split-by file: the caller assigns a split per input file.
import { bump, compact, SPLITS, type Batch, type Counts } from '../src/batch.js';
import { FingerprintSet, rowHash32, rowHash32x2 } from '../src/hash.js';

export interface SplitOptions {
  ratios: { train: number; val: number; test: number };
  dedupe?: boolean;
  /** Columns hashed, in order (default: every numeric column of the batch, sorted by name). */
  columns?: string[];
}

export interface SplitResult {
  split: Uint8Array;
  /** null when every row is kept. */
  keep: Uint8Array | null;
}

export interface Splitter {
  counts: Counts;
  /** Rows as a row-major float32 matrix [n][F] with labels. */
  assign(x: Float32Array, F: number, n: number, label: Int32Array): SplitResult;
  /**
   * The same from the rows' fingerprints (rowHashes), computed elsewhere (prep's parse threads); with
   * `group`, each row's split group ([2n] words, 0,0 = none: its fingerprint decides); with `forced`,
   * every row goes to that split (--split-by file).
   */
  assignHashed(hash: Uint32Array, n: number, label: Int32Array, group?: Uint32Array, forced?: number): SplitResult;
  apply(b: Batch): Batch;
}

/** Rows per tile of toRowMajor: the tile's rows stay in the first-level cache while every column is written into them. */
const TILE = 64;

/** The batch's columns of these names, in that order. */
export function columnsOf(b: Batch, names: string[]): Float64Array[] {
  return names.map((nm) => {
    const c = b.num.get(nm);
    if (!c) throw new Error(`${b.file}: column ${nm} missing`);
    return c;
  });
}

/** Row-major float32 copy of a batch's columns. */
export function toRowMajor(b: Batch, names: string[], into?: Float32Array): Float32Array {
  const F = names.length;
  const n = b.n;
  const x = into && into.length === n * F ? into : new Float32Array(n * F);
  const cols = columnsOf(b, names);
  for (let r0 = 0; r0 < n; r0 += TILE) {
    const r1 = Math.min(n, r0 + TILE);
    for (let f = 0; f < F; f++) {
      const c = cols[f];
      for (let i = r0, o = r0 * F + f; i < r1; i++, o += F) x[o] = c[i];
    }
  }
  return x;
}

/** The 64-bit fingerprint of each row of a row-major float32 matrix and its label: [n][2] 32-bit words. */
export function rowHashes(x: Float32Array, F: number, n: number, label: Int32Array, into?: Uint32Array): Uint32Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, n * F);
  const out = into && into.length === 2 * n ? into : new Uint32Array(2 * n);
  const h = new Uint32Array(2);
  let i = 0;
  // two rows at a time: four independent multiply chains instead of two (rowHash32's arithmetic, interleaved)
  for (; i + 1 < n; i += 2) rowHash32x2(u, i * F, F, label[i], label[i + 1], out, 2 * i);
  for (; i < n; i++) {
    rowHash32(u, i * F, F, label[i], h);
    out[2 * i] = h[0];
    out[2 * i + 1] = h[1];
  }
  return out;
}

export function createSplit(opts: SplitOptions & { grouped?: boolean }): Splitter {
  const { train, val, test } = opts.ratios;
  const total = train + val + test;
  if (!(total > 0) || train < 0 || val < 0 || test < 0) throw new Error('split ratios must be non-negative with a positive sum');
  const tTrain = (train / total) * 2 ** 32;
  const tVal = ((train + val) / total) * 2 ** 32;
  const set = opts.dedupe ? new FingerprintSet() : null;
  const counts: Counts = { deduplicated: 0, rows: { train: 0, val: 0, test: 0 }, deduplicated_by_class: {} };
  const splitter: Splitter = {
    counts,
    assign(x, F, n, label) {
      return splitter.assignHashed(rowHashes(x, F, n, label), n, label);
    },
    assignHashed(h, n, label, group, forced) {
      const split = new Uint8Array(n);
      let keep: Uint8Array | null = null;
      const rows = counts.rows as Counts;
      for (let i = 0; i < n; i++) {
        const lab = label[i];
        if (set && set.addHas(h[2 * i], h[2 * i + 1])) {
          keep ??= new Uint8Array(n).fill(1);
          keep[i] = 0;
          (counts.deduplicated as number)++;
          bump(counts, 'deduplicated_by_class', String(lab));
          continue;
        }
        let s: number;
        if (forced !== undefined) s = forced;
        else {
          // the group's hash where there is one (rows without one: their own fingerprint)
          const v = group && (group[2 * i] !== 0 || group[2 * i + 1] !== 0) ? group[2 * i + 1] : h[2 * i + 1];
          s = v < tTrain ? 0 : v < tVal ? 1 : 2;
        }
        split[i] = s;
        (rows[SPLITS[s]] as number)++;
      }
      return { split, keep };
    },
    apply(b) {
      if (!b.label) throw new Error('split needs labels (run the labels stage first)');
      const names = opts.columns ?? b.order?.filter((c) => b.num.has(c)) ?? [...b.num.keys()].sort();
      const x = toRowMajor(b, names);
      const r = splitter.assignHashed(rowHashes(x, names.length, b.n, b.label), b.n, b.label, opts.grouped ? b.keys?.group : undefined);
      let out: Batch = { ...b, split: r.split };
      if (r.keep) out = compact(out, r.keep);
      return out;
    },
  };
  return splitter;
}
