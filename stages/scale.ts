// Stage 7 (pass 2), scale: min-max scaling fitted on TRAIN only (the seed's FIXME), with an optional
// signed log1p first. Rewrites every shard in place (atomically), resolves the ±Infinity kept by
// sanitize to the train max/min, clips val/test values outside the train range to [0, 1] (counted),
// and writes manifest.json last.
import fs from 'node:fs';
import crypto from 'node:crypto';
import { Worker, threadId } from 'node:worker_threads';
import os from 'node:os';
import type { SplitName } from '../src/batch.js';
import { decodeSafetensors, encodeSafetensors } from '../src/safetensors.js';
import { writeFileAtomic, PageReuse } from '../src/atomic.js';
import { decodeParquet, encodeParquet, parquetMetadata, parquetName } from '../src/parquet.js';
import type { ScalerMethod, ScalerStats } from '../src/manifest.js';
import { meanStd, type MomentsJson } from '../src/moments.js';
import { UserError, errorFrom, workerExecArgv, type ErrorData } from '../src/errors.js';
import type { DatasetConfig, SanitizePolicy } from '../src/config.js';
import { ScaleKernel, REC_F64 } from '../src/kernels/scalekern.js';
import { SLOT } from '../src/kernels/scalewat.js';

export const slog1p = (x: number) => (x < 0 ? -Math.log1p(-x) : Math.log1p(x));

/** Slots per feature of LogCache (a power of two). */
const LOG_SLOTS = 256;
const LOG_SHIFT = 32 - Math.log2(LOG_SLOTS);
const EMPTY = 0xffffffff; // a NaN's bits: never looked up (callers pass finite values only)

/**
 * slog1p of float32 values, remembered per feature in a small direct-mapped table keyed by the value's
 * bits: flow features repeat values (flags, ports, counts, sizes), and a lookup costs a few
 * nanoseconds where Math.log1p costs ~20. Exact: a hit returns what slog1p returned for the same value.
 */
export class LogCache {
  private keys: Uint32Array;
  private vals: Float64Array;
  constructor(readonly F: number) {
    this.keys = new Uint32Array(F * LOG_SLOTS).fill(EMPTY);
    this.vals = new Float64Array(F * LOG_SLOTS);
  }
  /** slog1p(v) for the finite float32 value v of feature f, whose bits are `bits`. */
  get(f: number, v: number, bits: number): number {
    const k = f * LOG_SLOTS + (Math.imul(bits, 0x9e3779b1) >>> LOG_SHIFT);
    if (this.keys[k] === bits) return this.vals[k];
    const t = slog1p(v);
    this.keys[k] = bits;
    this.vals[k] = t;
    return t;
  }
}

/**
 * What pass 2 needs besides the statistics, decided before it: the ±Infinity replacement per feature
 * (from the sanitize policy, 'drop'/'quarantine' having removed those rows already) and the features
 * that get the signed log1p (every feature for the log-* scalers; the config's heavy-tailed columns
 * for min-max with --log1p).
 */
export function scaleSettings(cfg: DatasetConfig, features: string[], policyFor: (feature: string) => SanitizePolicy, log1p: boolean, method: ScalerMethod = 'minmax'): { posinf: string[]; neginf: string[]; log1p: string[]; scaler: ScalerMethod } {
  const pol = features.map(policyFor);
  return {
    posinf: pol.map((p) => (p.posinf === 'zero' ? 'zero' : p.posinf === 'train_min' ? 'train_min' : 'train_max')),
    neginf: pol.map((p) => (p.neginf === 'zero' ? 'zero' : p.neginf === 'train_max' ? 'train_max' : 'train_min')),
    log1p: method !== 'minmax' ? [...features] : log1p ? cfg.scale.log1p.filter((c) => features.includes(c)) : [],
    scaler: method,
  };
}

/**
 * Build scaler statistics from train min/max (and, for log-standard, the moments of the signed log1p).
 * A feature with no finite train value gets min = max = 0.
 */
export function fitScaler(
  features: string[],
  rawMin: ArrayLike<number>,
  rawMax: ArrayLike<number>,
  opts: { log1p: string[]; clip: boolean; posinf: string[]; neginf: string[]; method?: ScalerMethod; moments?: MomentsJson },
): ScalerStats {
  const method = opts.method ?? 'minmax';
  const logSet = new Set(opts.log1p);
  if (method === 'log-standard' && !opts.moments) throw new Error('fitScaler: log-standard needs the train moments from pass 1');
  const ms = opts.moments ? meanStd(opts.moments) : null;
  const min: number[] = [];
  const max: number[] = [];
  const tMin: number[] = [];
  const tMax: number[] = [];
  const center: number[] = [];
  const scale: number[] = [];
  const yMin: number[] = [];
  const yMax: number[] = [];
  features.forEach((f, k) => {
    let lo = rawMin[k];
    let hi = rawMax[k];
    if (!(lo <= hi)) lo = hi = 0;
    min.push(lo);
    max.push(hi);
    const tl = logSet.has(f) ? slog1p(lo) : lo;
    const th = logSet.has(f) ? slog1p(hi) : hi;
    tMin.push(tl);
    tMax.push(th);
    if (method === 'log-standard') {
      // constant in train: centred on its value exactly, scale 1 (as scikit-learn), never a division by zero
      const c = th > tl ? ms!.mean[k] : tl;
      const sd = th > tl && ms!.std[k] > 0 ? ms!.std[k] : 1;
      center.push(c);
      scale.push(sd);
      // the bounds computed exactly as applyScaler computes y, so a train value maps onto them bit for bit
      yMin.push((tl - c) * (1 / sd));
      yMax.push((th - c) * (1 / sd));
    } else {
      center.push(tl);
      scale.push(th > tl ? th - tl : 1);
      yMin.push(0);
      yMax.push(1);
    }
  });
  return { method, fitted_on: 'train', clip: opts.clip, log1p: features.filter((f) => logSet.has(f)), min, max, t_min: tMin, t_max: tMax, center, scale, y_min: yMin, y_max: yMax, posinf: opts.posinf, neginf: opts.neginf };
}

/** applyScaler's LogCache, kept from call to call (predict scales batch by batch, pass 2 shard by shard): what it holds is slog1p of a value, true for any shard or batch. */
let scalerLogs: LogCache | null = null;
function logCacheFor(F: number): LogCache {
  if (!scalerLogs || scalerLogs.F !== F) scalerLogs = new LogCache(F);
  return scalerLogs;
}

/** Rows applyScaler walks a feature at a time (64 KiB of a 62-feature shard). */
const SCALE_BLOCK = 256;

/** y = (t - center) / scale and the clip bounds, also for format-1 scalers (min-max only, clipped to [0, 1]). */
export function scalerParams(sc: ScalerStats, F: number): { center: ArrayLike<number>; inv: Float64Array; yMin: ArrayLike<number>; yMax: ArrayLike<number> } {
  const center = sc.center ?? sc.t_min;
  const inv = new Float64Array(F);
  for (let f = 0; f < F; f++) {
    const s = sc.scale ? sc.scale[f] : sc.t_max[f] > sc.t_min[f] ? sc.t_max[f] - sc.t_min[f] : 1;
    inv[f] = 1 / s;
  }
  const ones = new Float64Array(F).fill(1);
  return { center, inv, yMin: sc.y_min ?? new Float64Array(F), yMax: sc.y_max ?? ones };
}

export interface ScaleCounts {
  clipped: Record<string, Record<string, number>>; // split -> feature -> count
  inf_replaced: Record<string, number>; // feature.kind -> count
}

/**
 * Scale a row-major [n, F] block in place with fitted statistics. Returns nothing; counts go to `counts`.
 * Used by the scale stage, the trainer's checks and predict, so all agree.
 */
export function applyScaler(x: Float32Array, F: number, sc: ScalerStats, counts?: { clipped?: Record<string, number>; inf?: Record<string, number> }, features?: string[]): void {
  const logSet = new Set(sc.log1p);
  const useLog = new Uint8Array(F);
  const posRep = new Float64Array(F);
  const negRep = new Float64Array(F);
  for (let f = 0; f < F; f++) {
    useLog[f] = features && logSet.has(features[f]) ? 1 : 0;
    posRep[f] = sc.posinf[f] === 'zero' ? 0 : sc.posinf[f] === 'train_min' ? sc.min[f] : sc.max[f];
    negRep[f] = sc.neginf[f] === 'zero' ? 0 : sc.neginf[f] === 'train_max' ? sc.max[f] : sc.min[f];
  }
  const { center, inv, yMin, yMax } = scalerParams(sc, F);
  const clipped = new Float64Array(F);
  const infs = new Float64Array(F);
  const clip = sc.clip;
  const kernel = ScaleKernel.forFeatures(F);
  if (kernel) {
    // the same loop in WebAssembly (src/kernels/scalewat.ts), the same bits
    const rec = kernel.records(F);
    rec.fill(0);
    for (let f = 0, r = 0; f < F; f++, r += REC_F64) {
      rec[r + SLOT.center] = center[f];
      rec[r + SLOT.inv] = inv[f];
      rec[r + SLOT.lo] = yMin[f];
      rec[r + SLOT.hi] = yMax[f];
      rec[r + SLOT.posRep] = posRep[f];
      rec[r + SLOT.negRep] = negRep[f];
      rec[r + SLOT.useLog] = useLog[f];
    }
    kernel.scale(x, F, clip);
    const out = kernel.records(F); // the memory may have grown (a copied array): a new view
    for (let f = 0, r = 0; f < F; f++, r += REC_F64) {
      clipped[f] = out[r + SLOT.clipped];
      infs[f] = out[r + SLOT.inf];
    }
  } else scaleLoop(x, F, clip, useLog, posRep, negRep, center, inv, yMin, yMax, clipped, infs);
  for (let f = 0; f < F; f++) {
    const name = features?.[f] ?? String(f);
    if (counts?.clipped && clipped[f]) counts.clipped[name] = (counts.clipped[name] ?? 0) + clipped[f];
    if (counts?.inf && infs[f]) counts.inf[name] = (counts.inf[name] ?? 0) + infs[f];
  }
}

/** applyScaler's loop in JavaScript (where the kernel does not load, and for the tests to compare). */
function scaleLoop(x: Float32Array, F: number, clip: boolean, useLog: Uint8Array, posRep: Float64Array, negRep: Float64Array, center: ArrayLike<number>, inv: Float64Array, yMin: ArrayLike<number>, yMax: ArrayLike<number>, clipped: Float64Array, infs: Float64Array): void {
  const n = x.length / F;
  // per feature, the last finite input and its result: consecutive rows often repeat a value (flags,
  // ports, counts), and then the log and the clip test are not done again
  const lastIn = new Float64Array(F).fill(NaN);
  const lastOut = new Float64Array(F);
  const lastClipped = new Uint8Array(F);
  const logs = logCacheFor(F);
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  // a block of rows at a time (it stays in cache), within it a feature at a time: the feature's
  // parameters and cache stay in registers, and it still sees its values in row order
  for (let i0 = 0; i0 < n; i0 += SCALE_BLOCK) {
    const i1 = Math.min(n, i0 + SCALE_BLOCK);
    for (let f = 0; f < F; f++) {
      const log = useLog[f] === 1;
      const c0 = center[f];
      const k = inv[f];
      const lo = yMin[f];
      const hi = yMax[f];
      let lIn = lastIn[f];
      let lOut = lastOut[f];
      let lClip = lastClipped[f];
      let nClip = 0;
      let nInf = 0;
      for (let o = i0 * F + f, end = i1 * F; o < end; o += F) {
        // -0 scales as 0: with the reuse below, a -0 after a 0 took the 0's result and a -0 first its
        // own (-0 where the center is 0): the sign of a zero came from the rows before it
        let v = x[o] + 0;
        if (v === lIn) {
          x[o] = lOut;
          nClip += lClip;
          continue;
        }
        const finite = v - v === 0;
        if (!finite) {
          nInf++;
          v = v > 0 ? posRep[f] : v < 0 ? negRep[f] : 0;
        }
        const t = log ? (finite ? logs.get(f, v, bits[o]) : slog1p(v)) : v;
        let y = (t - c0) * k;
        let c = 0;
        if (clip) {
          // outside the train range (val, test, predict): clipped to it, counted
          if (y < lo) {
            y = lo;
            c = 1;
          } else if (y > hi) {
            y = hi;
            c = 1;
          }
        } else if (!(Math.abs(y) <= 3.4028234663852886e38)) {
          // unclipped, a value far outside the train range can pass float32's range: never an Infinity in a shard
          y = y > 0 ? 3.4028234663852886e38 : -3.4028234663852886e38;
          c = 1;
        }
        nClip += c;
        x[o] = y;
        if (finite) {
          lIn = v;
          lOut = y;
          lClip = c;
        }
      }
      lastIn[f] = lIn;
      lastOut[f] = lOut;
      lastClipped[f] = lClip;
      clipped[f] += nClip;
      infs[f] += nInf;
    }
  }
}

export interface ShardJob {
  full: string;
  file: string;
  split: SplitName;
  /** Rows of the unscaled shard. */
  rows: number;
  /** Rows (ascending) that pass 2 takes out: duplicates of rows kept elsewhere, rows the per-class minimum moves. */
  remove?: number[];
  /** Write the scaled shard as Parquet (beside, then the unscaled safetensors goes), with the label names in its metadata. */
  parquet?: { labels: string[] };
}

/** A shard pass 2 already wrote as Parquet (a rerun): its counts from its metadata, its checksum. */
function parquetDone(job: ShardJob, features: string[]): ShardJobResult {
  const full = parquetName(job.full);
  const buf = fs.readFileSync(full);
  const d = decodeParquet(buf, features, full);
  const clipped: Record<string, number> = {};
  const inf: Record<string, number> = {};
  let meta: Record<string, string> = {};
  try {
    meta = JSON.parse(d.metadata['flowtensor.shard'] ?? '{}');
  } catch {
    /* checked below */
  }
  shardCounts(meta, full, clipped, inf);
  const cc = new Map<number, number>();
  for (const v of d.y) cc.set(v, (cc.get(v) ?? 0) + 1);
  const class_counts: Record<string, number> = {};
  for (const [k, v] of [...cc].sort((a, b) => a[0] - b[0])) class_counts[k] = v;
  return { file: parquetName(job.file), bytes: buf.byteLength, sha256: crypto.createHash('sha256').update(buf).digest('hex'), rows: d.y.length, class_counts, clipped, inf };
}

export interface ShardJobResult {
  file: string;
  bytes: number;
  sha256: string;
  /** Rows left, and per class index. */
  rows: number;
  class_counts: Record<string, number>;
  clipped: Record<string, number>;
  inf: Record<string, number>;
}

/**
 * Take rows out of a shard's arrays, in place (rows move up; the results are views of the same memory);
 * `prev` pointers skip to the host's previous row that stays.
 */
export function removeRows(x: Float32Array, y: Int32Array, prev: Int32Array | null, F: number, remove: number[]): { x: Float32Array; y: Int32Array; prev: Int32Array | null } {
  const n = y.length;
  const gone = new Uint8Array(n);
  for (const r of remove) gone[r] = 1;
  // each removed row's nearest kept ancestor on its host's chain, from the pointers as they are
  const anc = new Map<number, number>();
  if (prev) for (const r of [...remove].sort((a, b) => a - b)) anc.set(r, prev[r] >= 0 && gone[prev[r]] ? anc.get(prev[r])! : prev[r]);
  const at = new Int32Array(n).fill(-1);
  let j = 0;
  for (let i = 0; i < n; i++) {
    if (gone[i]) continue;
    at[i] = j;
    if (j !== i) {
      x.copyWithin(j * F, i * F, (i + 1) * F);
      y[j] = y[i];
    }
    if (prev) {
      let p = prev[i];
      if (p >= 0 && gone[p]) p = anc.get(p)!;
      prev[j] = p >= 0 ? at[p] : -1;
    }
    j++;
  }
  return { x: x.subarray(0, j * F), y: y.subarray(0, j), prev: prev ? prev.subarray(0, j) : null };
}

/** Scale one shard file in place (atomically); a shard already marked scaled is only checksummed. */
// one read buffer per thread, reused for every shard: pass 2 then allocates nothing per shard; with
// the scaler's kernel, its memory, where the features are then scaled without a copy
let readBuf: Buffer = Buffer.alloc(0);
function readWhole(file: string, F: number): Buffer {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK); // a FIFO never blocks here
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new UserError(`${file}: not a regular file; refused`);
    const size = st.size;
    const kernel = ScaleKernel.forFeatures(F);
    if (kernel && ScaleKernel.fits(size)) {
      const r = kernel.region(size);
      readBuf = Buffer.from(r.buffer, r.byteOffset, r.byteLength);
    } else if (readBuf.length < size) readBuf = Buffer.allocUnsafeSlow(size);
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, readBuf, off, size - off, off);
      if (n === 0) throw new UserError(`${file}: shorter than its size while reading`);
      off += n;
    }
    return readBuf.subarray(0, size);
  } finally {
    fs.closeSync(fd);
  }
}

/** This thread's replacements reuse the pages of the shards they replace (src/atomic.ts). */
const pages = new PageReuse(threadId);

/** One shard job; the caller runs one at a time per thread (they share the read buffer and the spare). */
export async function scaleShard(job: ShardJob, scaler: ScalerStats, features: string[]): Promise<ShardJobResult> {
  const F = features.length;
  if (job.parquet && !fs.existsSync(job.full) && fs.existsSync(parquetName(job.full))) return parquetDone(job, features);
  const buf = readWhole(job.full, F);
  const st = decodeSafetensors(buf, job.full);
  const scaledAlready = st.metadata.scaled === 'true';
  let x = st.get('features') as Float32Array; // a view into buf when aligned: scaled in place
  let y = st.get('labels') as Int32Array;
  const remove = job.remove ?? [];
  // a scaled shard (a rerun after a kill) has its rows taken out already
  const rows = scaledAlready ? job.rows - remove.length : job.rows;
  if (x.length !== rows * F || y.length !== rows) throw new UserError(`${job.full}: ${y.length} rows, the statistics say ${rows}`, 'the folder is damaged; prepare it again');
  let prev = st.tensors.prev ? (st.get('prev') as Int32Array) : null;
  if (x.buffer !== buf.buffer) {
    // the features were copied out (not 4-byte aligned in the file: pass 1 never writes that): scaling
    // them goes through the kernel's memory, where buf may lie, so the rest is copied out too
    y = y.slice();
    if (prev) prev = prev.slice();
  }
  if (prev && prev.length !== rows) throw new UserError(`${job.full}: prev holds ${prev.length} rows, the statistics say ${rows}`, 'the folder is damaged; prepare it again');
  if (!scaledAlready && remove.length) ({ x, y, prev } = removeRows(x, y, prev, F, remove));
  const n = y.length;
  const clipped: Record<string, number> = {};
  const inf: Record<string, number> = {};
  if (!scaledAlready) applyScaler(x, F, scaler, { clipped, inf }, features);
  else shardCounts(st.metadata, job.full, clipped, inf); // a rerun after a kill counts what the first run did
  // labels are class indices below a thousand (stages/labels.ts): counted in an array
  let top = 0;
  for (let i = 0; i < n; i++) if (y[i] > top) top = y[i];
  const cc = new Float64Array(top + 1);
  for (let i = 0; i < n; i++) cc[y[i]]++;
  const class_counts: Record<string, number> = {};
  for (let k = 0; k <= top; k++) if (cc[k] > 0) class_counts[k] = cc[k];
  // per-host context pointers travel unchanged (but for rows taken out)
  const parts = encodeSafetensors(
    {
      features: { dtype: 'F32', shape: [n, F], data: x },
      labels: { dtype: 'I32', shape: [n], data: y },
      ...(prev ? { prev: { dtype: 'I32' as const, shape: [n], data: prev } } : {}),
    },
    // the shard's own counts travel with it, so a rerun of pass 2 after a kill gives the same totals
    { format: 'flowtensor', split: job.split, shard: String(Number(job.file.match(/(\d+)\.safetensors$/)?.[1] ?? 0)), scaled: 'true', clipped: JSON.stringify(clipped), infinities: JSON.stringify(inf) },
  );
  if (job.parquet) {
    // the scaled shard as Parquet, then the unscaled one goes (a rerun finds the Parquet file: parquetDone)
    const meta = { format: 'flowtensor', split: job.split, shard: String(Number(job.file.match(/(\d+)\.safetensors$/)?.[1] ?? 0)), scaled: 'true', clipped: JSON.stringify(clipped), infinities: JSON.stringify(inf) };
    const pq = encodeParquet({ x, y, prev }, features, parquetMetadata(meta, { features, labels: job.parquet.labels, scaler }));
    writeFileAtomic(parquetName(job.full), [pq]);
    fs.rmSync(job.full, { force: true });
    return { file: parquetName(job.file), bytes: pq.byteLength, sha256: crypto.createHash('sha256').update(pq).digest('hex'), rows: n, class_counts, clipped, inf };
  }
  const digest = () => {
    const h = crypto.createHash('sha256');
    let bytes = 0;
    for (const p of parts) {
      h.update(p);
      bytes += p.byteLength;
    }
    return { bytes, sha256: h.digest('hex') };
  };
  // atomically, over the pages of the shard replaced before; hashed while the disk syncs
  const { bytes, sha256 } = scaledAlready ? digest() : await pages.replace(job.full, parts, digest);
  return { file: job.file, bytes, sha256, rows: n, class_counts, clipped, inf };
}

/** Jobs a worker thread holds at once: the one it runs and the next, so it never waits for this thread to hand one out. */
const WORKER_DEPTH = 2;

/**
 * Run shard jobs on the given worker threads (src/prepworker.js, which answer 'scale' messages) and,
 * when useMain, on this thread too. Results come back in job order. Jobs are handed out largest first
 * (the small ones then even out the threads at the end); each worker holds the next job while it runs
 * one, since this thread hands out jobs only between its own. On the first error no new job is
 * handed out and the promise rejects only once every job already handed out has answered, so nothing
 * writes into the folder after the caller has seen the error (and may be cleaning it up).
 */
export async function runShardJobs(jobs: ShardJob[], scaler: ScalerStats, features: string[], pool: Worker[], useMain: boolean, onDone?: (r: ShardJobResult, done: number) => void): Promise<ShardJobResult[]> {
  const results: ShardJobResult[] = new Array(jobs.length);
  // largest first; ties in job order
  const order = jobs.map((_, i) => i).sort((a, b) => jobs[b].rows - jobs[a].rows || a - b);
  let next = 0;
  let done = 0;
  if (pool.length === 0) useMain = true;
  return new Promise((resolve, reject) => {
    let settled = false;
    let error: Error | undefined;
    const held = new Map<Worker, number>(); // jobs handed to each worker and not answered yet
    let outstanding = 0;
    const detach = () => {
      for (const w of pool) for (const ev of ['message', 'error', 'exit']) w.removeAllListeners(ev);
    };
    const settle = () => {
      if (settled || outstanding > 0) return;
      if (error) {
        settled = true;
        detach();
        reject(error);
      } else if (done === jobs.length) {
        settled = true;
        detach();
        resolve(results);
      }
    };
    const fail = (e: Error) => {
      error ??= e;
      settle();
    };
    const give = (w: Worker) => {
      while (!error && next < jobs.length && (held.get(w) ?? 0) < WORKER_DEPTH) {
        const id = order[next++];
        held.set(w, (held.get(w) ?? 0) + 1);
        outstanding++;
        w.postMessage({ type: 'scale', id, job: jobs[id], scaler, features });
      }
    };
    const answered = (w: Worker) => {
      const k = held.get(w) ?? 0;
      if (k > 0) {
        held.set(w, k - 1);
        outstanding--;
      }
    };
    for (const w of pool) {
      for (const ev of ['message', 'error', 'exit']) w.removeAllListeners(ev);
      w.on('message', (m: { type: 'scaled'; id: number; r: ShardJobResult } | ({ type: 'error' } & ErrorData) | { type: 'other' }) => {
        if (m.type !== 'scaled' && m.type !== 'error') return;
        answered(w);
        if (m.type === 'error') return fail(errorFrom(m));
        results[m.id] = m.r;
        onDone?.(m.r, ++done);
        give(w);
        settle();
      });
      const dead = (e: Error) => {
        // a dead worker answers none of the jobs it held
        const k = held.get(w) ?? 0;
        held.set(w, 0);
        outstanding -= k;
        fail(e);
      };
      w.on('error', dead);
      w.on('exit', (code) => dead(new Error(`scale worker exited with code ${code}`)));
      give(w);
    }
    if (useMain) {
      const step = async () => {
        if (error) return settle();
        if (next < jobs.length) {
          const id = order[next++];
          outstanding++; // settles only after this job, like a worker's
          try {
            results[id] = await scaleShard(jobs[id], scaler, features);
          } catch (e) {
            outstanding--;
            return fail(e as Error);
          }
          outstanding--;
          onDone?.(results[id], ++done);
          for (const w of pool) give(w);
          setImmediate(step);
        }
        settle();
      };
      setImmediate(step);
    }
    settle();
  });
}

/** Start n scale-capable worker threads (for `flowtensor scale` on its own). */
export function startScaleWorkers(n: number): Worker[] {
  const url = new URL('../src/prepworker.js', import.meta.url);
  return Array.from({ length: n }, () => new Worker(url, { workerData: { tasks: [] }, execArgv: workerExecArgv() }));
}

/** A scaled shard's clipped / infinity counts, from its metadata (written by scaleShard). */
function shardCounts(meta: Record<string, string>, file: string, clipped: Record<string, number>, inf: Record<string, number>): void {
  for (const [key, into] of [['clipped', clipped], ['infinities', inf]] as const) {
    if (meta[key] === undefined) continue;
    let v: unknown;
    try {
      v = JSON.parse(meta[key]);
    } catch {
      v = null;
    }
    if (!v || typeof v !== 'object' || !Object.values(v).every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) throw new UserError(`${file}: metadata ${key} is not a set of counts`, 'the folder is damaged; prepare it again');
    Object.assign(into, v);
  }
}
