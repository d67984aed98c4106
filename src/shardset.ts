// Reading a split for training and evaluation without loading it whole: one shard at a time,
// a bounded shuffle buffer of rows (or windows), batches as typed arrays.
// A window ends at its row and holds the W-1 flows before it from the same source host, following the
// shard's `prev` pointers (written by prep: the host's previous row in the shard, in input order, not
// across input files); where the chain ends, zeros. Shards without `prev` (no source addresses, older
// folders) give windows of W consecutive rows, which on per-class files leak the label: the trainer warns.
import path from 'node:path';
import { readManifest, safeJoin, type Manifest } from './manifest.js';
import { readSafetensors } from './safetensors.js';
import { decodeParquet, isParquet } from './parquet.js';
import { MAX_BINARY_BYTES, readRegularFile } from './safefile.js';
import type { SplitName } from './batch.js';
import { rng as makeRng } from './synth.js';
import { UserError } from './errors.js';
import { loadConfig } from './config.js';

export interface BatchArrays {
  /** [n, F] (window 1) or [n, W, F] flattened. */
  x: Float32Array;
  y: Int32Array;
  n: number;
}

export interface StreamOptions {
  batchSize: number;
  /** Flows per example (1 = one flow; W > 1 = the window model: the row and its host's W-1 previous flows). */
  window?: number;
  shuffle?: boolean;
  seed?: number;
  /** Rows (or windows) held for shuffling. */
  bufferSize?: number;
  /** Keep BENIGN at most ratio × the other rows of the split (per epoch, random). */
  maxBenignRatio?: number;
}

/** The class of normal traffic in a shard folder (its config's benign_class). */
export function benignClass(m: Manifest): string {
  try {
    return loadConfig(m.dataset).benign_class;
  } catch {
    return m.labels.includes('BENIGN') ? 'BENIGN' : m.labels[0];
  }
}

export function openShards(dir: string, verify: 'size' | 'sha256' = 'size'): Manifest {
  return readManifest(dir, { verify });
}

/** Whether a shard folder's windows follow hosts (its shards carry `prev`). */
export function hasHostContext(m: Manifest): boolean {
  return m.options?.row_context === 'host';
}

/** Read one shard, checking it against the manifest entry. */
export function loadShard(dir: string, m: Manifest, file: string, rows: number, bytes?: number): { x: Float32Array; y: Int32Array; prev: Int32Array | null } {
  const full = safeJoin(dir, file, path.join(dir, 'manifest.json'));
  if (isParquet(full)) return checkShard(full, m, rows, parquetShard(full, dir, m, bytes));
  // a regular file inside the folder, of the size the manifest gives, before a byte is read
  const st = readSafetensors(full, { within: dir, exactBytes: bytes });
  if (st.tensors.features?.dtype !== 'F32' || st.tensors.labels?.dtype !== 'I32') throw new UserError(`${full}: not a flowtensor shard (features F32 and labels I32 expected)`, 'the folder is damaged; prepare it again');
  if (st.metadata.scaled !== 'true') throw new UserError(`${full}: shard is not scaled (pass 2 did not finish)`, `run: flowtensor scale ${dir}`);
  if (st.tensors.prev && st.tensors.prev.dtype !== 'I32') throw new UserError(`${full}: prev is not I32`, 'the folder is damaged; prepare it again');
  return checkShard(full, m, rows, { x: st.get('features') as Float32Array, y: st.get('labels') as Int32Array, prev: st.tensors.prev ? (st.get('prev') as Int32Array) : null });
}

/** A Parquet shard (prep --format parquet): a regular file inside the folder, of the size the manifest gives. */
function parquetShard(full: string, dir: string, m: Manifest, bytes?: number): { x: Float32Array; y: Int32Array; prev: Int32Array | null } {
  const buf = readRegularFile(full, { maxBytes: MAX_BINARY_BYTES, within: dir, exactBytes: bytes, what: 'shard' });
  const d = decodeParquet(buf, m.features, full);
  return { x: d.x, y: d.y, prev: d.prev };
}

/** A shard's arrays checked against its manifest entry: sizes, labels, per-host pointers. */
function checkShard(full: string, m: Manifest, rows: number, a: { x: Float32Array; y: Int32Array; prev: Int32Array | null }): { x: Float32Array; y: Int32Array; prev: Int32Array | null } {
  const { x, y } = a;
  if (y.length !== rows || x.length !== rows * m.num_features)
    throw new UserError(`${full}: holds ${y.length} rows of ${x.length / Math.max(1, y.length)} features; the manifest says ${rows} × ${m.num_features}`, 'the folder is damaged; prepare it again');
  for (let i = 0; i < y.length; i++) if (y[i] < 0 || y[i] >= m.num_classes) throw new UserError(`${full}: label ${y[i]} outside the ${m.num_classes} classes`);
  const prev = a.prev;
  if (prev) {
    if (prev.length !== rows) throw new UserError(`${full}: prev holds ${prev.length} rows, the manifest says ${rows}`, 'the folder is damaged; prepare it again');
    // a pointer must go back within the shard: anything else is damage (and could loop)
    for (let i = 0; i < rows; i++) if (prev[i] >= i || prev[i] < -1) throw new UserError(`${full}: prev[${i}] = ${prev[i]} does not point to an earlier row`, 'the folder is damaged; prepare it again');
  }
  return { x, y, prev };
}

/**
 * dst[d..d+n) = src[s..s+n): for one row (n = F) a loop beats subarray() + set() (an object and checks
 * per call); a window (W·F floats) is copied faster by set() (memmove).
 */
function copyFloats(dst: Float32Array, d: number, src: Float32Array, s: number, n: number): void {
  if (n >= 32) {
    if (dst === src) dst.copyWithin(d, s, s + n);
    else dst.set(src.subarray(s, s + n), d);
    return;
  }
  for (let i = 0; i < n; i++) dst[d + i] = src[s + i];
}

/** Number of examples in a split (after the benign cap, an expectation). */

/**
 * Batches of a split. With shuffle: shard order shuffled per call (seeded), rows mixed in a buffer
 * across shards (tf.data's shuffle semantics), so day-ordered shards still mix.
 */
export function* splitBatches(dir: string, m: Manifest, split: SplitName, o: StreamOptions): Generator<BatchArrays> {
  const F = m.num_features;
  const W = Math.max(1, o.window ?? 1);
  const unit = W * F;
  const B = o.batchSize;
  const r = makeRng((o.seed ?? 1) >>> 0);
  const shards = [...m.splits[split].shards];
  if (o.shuffle) for (let i = shards.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [shards[i], shards[j]] = [shards[j], shards[i]];
  }
  const benign = m.labels.indexOf(benignClass(m));
  let keepBenign = 1;
  if (o.maxBenignRatio !== undefined && benign >= 0) {
    const cc = m.splits[split].class_counts;
    const nb = cc[benignClass(m)] ?? 0;
    const others = m.splits[split].rows - nb;
    if (nb > 0) keepBenign = Math.min(1, (o.maxBenignRatio * others) / nb);
  }
  const cap = o.shuffle ? Math.max(B, o.bufferSize ?? 65536) : B;
  const poolX = new Float32Array(cap * unit);
  const poolY = new Int32Array(cap);
  let size = 0;
  function* emit(all: boolean): Generator<BatchArrays> {
    while (size >= (all ? 1 : cap)) {
      const n = Math.min(B, size);
      const x = new Float32Array(n * unit);
      const y = new Int32Array(n);
      for (let k = 0; k < n; k++) {
        const i = o.shuffle ? Math.floor(r() * size) : k;
        copyFloats(x, k * unit, poolX, i * unit, unit);
        y[k] = poolY[i];
        if (o.shuffle) {
          size--;
          if (i !== size) {
            copyFloats(poolX, i * unit, poolX, size * unit, unit);
            poolY[i] = poolY[size];
          }
        }
      }
      if (!o.shuffle) {
        poolX.copyWithin(0, n * unit, size * unit);
        poolY.copyWithin(0, n, size);
        size -= n;
      }
      yield { x, y, n };
      if (!all && !o.shuffle) break;
    }
  }
  for (const sh of shards) {
    const { x, y, prev } = loadShard(dir, m, sh.file, sh.rows, sh.bytes);
    for (let i = 0; i < y.length; i++) {
      if (y[i] === benign && keepBenign < 1 && r() >= keepBenign) continue;
      const at = size * unit;
      if (W === 1) copyFloats(poolX, at, x, i * F, F);
      else if (prev) {
        // the row last, its host's earlier flows before it, zeros where the chain ends
        let src = i;
        for (let w = W - 1; w >= 0; w--) {
          if (src >= 0) {
            copyFloats(poolX, at + w * F, x, src * F, F);
            src = prev[src];
          } else poolX.fill(0, at + w * F, at + (w + 1) * F);
        }
      } else {
        // window ending at row i; rows before the shard's start are zeros
        for (let w = 0; w < W; w++) {
          const src = i - (W - 1) + w;
          if (src < 0) poolX.fill(0, at + w * F, at + (w + 1) * F);
          else copyFloats(poolX, at + w * F, x, src * F, F);
        }
      }
      poolY[size] = y[i];
      size++;
      if (size === cap) yield* emit(false);
    }
  }
  yield* emit(true);
}
