// Stage 8 (pass 1), shard: rows -> fixed-size unscaled shards per split, while gathering the
// train-only min/max the scale stage needs. Files are written atomically.
import fs from 'node:fs';
import path from 'node:path';
import { SPLITS, type Batch, type SplitName } from '../src/batch.js';
import { rowHashes, toRowMajor } from './split.js';
import { ensureDir, isTempName, tempName, writeAll } from '../src/atomic.js';
import { MANIFEST, PASS1, type ShardInfo, type SplitInfo } from '../src/manifest.js';
import { Moments, MOMENT_LIMIT, MOMENT_ONE } from '../src/moments.js';
import { U32Map } from '../src/hash.js';
import { slog1p } from './scale.js';
import { ScaleKernel, REC_F64 } from '../src/kernels/scalekern.js';
import { MAX_CLASSES } from './labels.js';
import { SLOT } from '../src/kernels/scalewat.js';
import { UserError } from '../src/errors.js';
import { HELD_PER_CLASS, encodeValues, fpHex, type Candidate } from '../src/stats.js';

export interface ShardOptions {
  dir: string;
  features: string[];
  labels: string[];
  shardRows?: number;
  /** Also gather the exact moments of the signed log1p of finite train values (the log-standard scaler). */
  logMoments?: boolean;
  /** Write each row's `prev`: the previous row of the same source host in this shard (per-host windows). */
  hostContext?: boolean;
  /** This partition (files named per partition when there are several; src/stats.ts). */
  part?: { k: number; n: number };
  /** List every kept row's fingerprint and place (dedupe over several partitions). */
  fingerprints?: boolean;
  onShard?: (info: ShardInfo) => void;
}

interface Open {
  /** Rows waiting to be written: a block of BLOCK_ROWS rows. */
  block: Float32Array;
  /** block's bits (the same memory) */
  blockBits: Uint32Array;
  bn: number;
  labels: Int32Array;
  /** per row: index of the same host's previous row in this shard, -1 for none (with hostContext) */
  prev: Int32Array | null;
  /** host -> its last row in this shard */
  lastOfHost: U32Map;
  n: number;
  index: number;
  /** rows per class index in this shard */
  classCounts: Float64Array;
  fd: number;
  tmp: string;
}

const BLOCK_ROWS = 2048;
/** Class indices counted in arrays: stages/labels.ts allows at most MAX_CLASSES classes. */
const CLASS_SLOTS = MAX_CLASSES;
/** Train rows whose statistics are added together, a feature at a time (addTrainRows). */
const TRAIN_BLOCK = 256;
/** Slots per feature of the train statistics' table of logs (a power of two; 1,024 hit 78% of synth values, 256 75%). */
const FIXED_SLOTS = 1024;
const FIXED_SHIFT = 32 - Math.log2(FIXED_SLOTS);
/** Pass-1 shards reserve this many bytes for the 8-byte length and the (space-padded) JSON header. */
const HEADER_RESERVE = 1024;

/** A shard's file: `train/shard-00000.safetensors`, or with several partitions `train/part-00002-shard-00000.safetensors`. */
export const shardName = (split: SplitName, index: number, part?: { k: number; n: number }) =>
  `${split}/${part && part.n > 1 ? `part-${String(part.k).padStart(5, '0')}-` : ''}shard-${String(index).padStart(5, '0')}.safetensors`;
/** Rows moved by the per-class minimum end their split, in files of their own. */
export const movedName = (split: SplitName, index: number) => `${split}/moved-${String(index).padStart(5, '0')}.safetensors`;
const SHARD_FILE = /^(part-\d+-)?(shard|moved)-\d+\.safetensors$/;

/** A held-aside row of the per-class minimum (src/stats.ts), while pass 1 runs. */
interface Held {
  lo: number;
  hi: number;
  label: number;
  split: number;
  values: Float32Array;
  locs: number[];
}

/**
 * Remove what an earlier run left in dir (manifest first, so no manifest ever lists missing shards). With
 * a partition of several, only that partition's files (the others' tasks may be running).
 */
export function clearShardDir(dir: string, part?: { k: number; n: number }): void {
  for (const f of [MANIFEST, PASS1]) fs.rmSync(path.join(dir, f), { force: true });
  const prefix = part && part.n > 1 ? `part-${String(part.k).padStart(5, '0')}-` : null;
  for (const s of SPLITS) {
    const d = path.join(dir, s);
    if (!fs.existsSync(d)) continue;
    for (const f of fs.readdirSync(d)) {
      const ours = prefix ? f.startsWith(prefix) || f.startsWith(`.${prefix}`) : SHARD_FILE.test(f) || isTempName(f);
      if (ours && (SHARD_FILE.test(f) || isTempName(f))) fs.rmSync(path.join(d, f), { force: true });
    }
  }
  if (!prefix) for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) if (isTempName(f)) fs.rmSync(path.join(dir, f), { force: true });
}

export class ShardWriter {
  readonly F: number;
  readonly shardRows: number;
  readonly min: Float64Array;
  readonly max: Float64Array;
  /** Moments of slog1p over finite train values, when asked for. */
  readonly moments: Moments | null;
  /** per feature: the last train value and its slog1p (a one-entry cache for the moments) */
  private lastV: Float64Array;
  private lastT: Float64Array;
  /** slog1p of the values seen (a miss of the one-entry cache looks here before the log): per feature, FIXED_SLOTS entries keyed by a value's float32 bits, its slog1p and the moments' fixed-point terms of it */
  private fixed: { keys: Uint32Array; t: Float64Array; t1: Float64Array; t2: Float64Array };
  private open: Open[];
  readonly splits: Record<SplitName, SplitInfo>;
  /** Rows per split and class index, not counting the rows held aside. */
  get rows(): Map<number, number>[] {
    return this.rowCounts.map((c) => new Map([...c].map((v, k) => [k, v] as [number, number]).filter(([, v]) => v > 0)));
  }
  /** Per split, rows per class index (arrays: a Map look-up per row cost more than the row's copy). */
  private rowCounts = [0, 1, 2].map(() => new Float64Array(CLASS_SLOTS));
  /** Per class, the rows of its (at most three) smallest fingerprints, held out of the statistics. */
  private held: (Held[] | undefined)[] = [];
  /** Rows written per split (a row's number in its split). */
  private written = [0, 0, 0];
  /** Offsets in the current addRows matrix of the train rows whose statistics are not added yet. */
  private pend = new Int32Array(TRAIN_BLOCK);
  private npend = 0;
  /** lo, hi, label, split, row number: every kept row (with `fingerprints`). */
  private fps: Uint32Array | null = null;
  private nfps = 0;
  /** The scaler's kernel (train statistics), and the current addRows matrix copied into its memory. */
  private kernel: ScaleKernel | null;
  private kx: Float32Array | null = null;
  /** With the kernel: per split, the value offsets in kx of rows not yet copied into its block, from block row gatherAt. */
  private gatherOffs = [0, 1, 2].map(() => new Int32Array(BLOCK_ROWS));
  private ngather = [0, 0, 0];
  private gatherAt = [0, 0, 0];

  constructor(private opts: ShardOptions) {
    this.F = opts.features.length;
    this.kernel = ScaleKernel.forFeatures(this.F);
    this.shardRows = opts.shardRows ?? 65536;
    if (!Number.isSafeInteger(this.shardRows) || this.shardRows < 1 || this.shardRows > 1 << 22) throw new UserError(`shard rows ${this.shardRows}: give a whole number from 1 to ${1 << 22}`);
    this.min = new Float64Array(this.F).fill(Infinity);
    this.max = new Float64Array(this.F).fill(-Infinity);
    this.moments = opts.logMoments ? new Moments(this.F) : null;
    this.lastV = new Float64Array(this.F).fill(NaN);
    this.lastT = new Float64Array(this.F);
    this.fixed = { keys: new Uint32Array(this.F * FIXED_SLOTS).fill(0xffffffff), t: new Float64Array(this.F * FIXED_SLOTS), t1: new Float64Array(this.F * FIXED_SLOTS), t2: new Float64Array(this.F * FIXED_SLOTS) };
    ensureDir(opts.dir);
    clearShardDir(opts.dir, opts.part);
    if (opts.fingerprints) this.fps = new Uint32Array(5 * 4096);
    for (const s of SPLITS) ensureDir(path.join(opts.dir, s));
    this.open = SPLITS.map(() => this.fresh(0));
    this.splits = { train: emptySplit(), val: emptySplit(), test: emptySplit() };
  }

  private fresh(index: number): Open {
    const block = new Float32Array(BLOCK_ROWS * this.F);
    return { block, blockBits: new Uint32Array(block.buffer), bn: 0, labels: new Int32Array(this.shardRows), prev: this.opts.hostContext ? new Int32Array(this.shardRows) : null, lastOfHost: new U32Map(), n: 0, index, classCounts: new Float64Array(CLASS_SLOTS), fd: -1, tmp: '' };
  }

  /** Write the pending block of split s at its place in the shard's temp file. */
  private spill(s: number): void {
    this.gatherRows(s);
    const o = this.open[s];
    if (o.bn === 0) return;
    if (o.fd < 0) {
      o.tmp = tempName(path.join(this.opts.dir, shardName(SPLITS[s], o.index, this.opts.part)));
      o.fd = fs.openSync(o.tmp, 'w');
    }
    const bytes = new Uint8Array(o.block.buffer, 0, o.bn * this.F * 4);
    writeAll(o.fd, bytes, HEADER_RESERVE + (o.n - o.bn) * this.F * 4);
    o.bn = 0;
  }

  /** Close every open temp file and remove it (after an error). */
  abort(): void {
    for (const o of this.open) {
      if (o.fd >= 0) fs.closeSync(o.fd);
      if (o.tmp) fs.rmSync(o.tmp, { force: true });
      o.fd = -1;
    }
  }

  get hostContext(): boolean {
    return !!this.opts.hostContext;
  }

  /** Add a batch that carries split and labels (the stage-command path). */
  add(b: Batch): void {
    if (!b.split || !b.label) throw new Error('shard needs split and labels');
    if (b.file !== this.lastFile) {
      this.newFile();
      this.lastFile = b.file;
    }
    const x = toRowMajor(b, this.opts.features);
    this.addRows(x, b.n, b.label, b.split, null, b.keys?.host, rowHashes(x, this.F, b.n, b.label));
  }
  private lastFile: string | undefined;

  /**
   * A new input file starts: a host's earlier flows in another file (another day, another capture) are
   * no context for its next ones.
   */
  newFile(): void {
    for (const o of this.open) o.lastOfHost.clear();
  }

  /**
   * Add rows of a row-major float32 matrix [n][F]; rows whose keep byte is 0 are skipped. With their
   * fingerprints (`hash`, [n][2]), the rows of each class's three smallest fingerprints are held out
   * of the statistics (src/stats.ts).
   */
  addRows(x: Float32Array, n: number, label: Int32Array, split: Uint8Array, keep: Uint8Array | null, host?: Uint32Array, hash?: Uint32Array): void {
    const F = this.F;
    const bits = new Uint32Array(x.buffer, x.byteOffset, n * F); // the values' float32 bits (the log cache's keys)
    // the train statistics in the scaler's kernel: the rows copied into its memory once per call
    this.kx = this.kernel ? this.kernel.load(x.subarray(0, n * F), TRAIN_BLOCK, Math.min(n, BLOCK_ROWS) * F) : null;
    const kx = this.kx;
    for (let i = 0; i < n; i++) {
      if (keep && !keep[i]) continue;
      const s = split[i];
      let o = this.open[s];
      if (o.n === this.shardRows) {
        this.flush(s);
        o = this.open[s];
      }
      const src = i * F;
      if (kx) {
        // copied by the kernel, a split's rows at once (before its block is written, and at the end)
        const g = this.ngather[s]++;
        if (g === 0) this.gatherAt[s] = o.bn;
        this.gatherOffs[s][g] = src;
      } else {
        const block = o.blockBits; // the row's bits copied as they are, without a subarray object per row
        for (let f = 0, d = o.bn * F; f < F; f++) block[d + f] = bits[src + f];
      }
      const lab = label[i];
      const ord = this.written[s]++;
      if (!hash || !this.hold(hash[2 * i], hash[2 * i + 1], lab, s, x, bits, src, ord)) {
        this.rowCounts[s][lab]++;
        if (s === 0) {
          this.pend[this.npend++] = src;
          if (this.npend === TRAIN_BLOCK) this.addTrainRows(x, bits);
        }
      }
      if (this.fps && hash) {
        if (this.fps.length < 5 * (this.nfps + 1)) {
          const g = new Uint32Array(this.fps.length * 2);
          g.set(this.fps);
          this.fps = g;
        }
        this.fps.set([hash[2 * i], hash[2 * i + 1], lab, s, ord], 5 * this.nfps++);
      }
      o.labels[o.n] = lab;
      if (o.prev) {
        const h = host ? host[i] : 0;
        if (h === 0) o.prev[o.n] = -1;
        else {
          o.prev[o.n] = o.lastOfHost.get(h);
          o.lastOfHost.set(h, o.n);
        }
      }
      o.classCounts[lab]++;
      o.n++;
      if (++o.bn === BLOCK_ROWS) this.spill(s);
    }
    for (let s = 0; s < 3; s++) this.gatherRows(s);
    this.addTrainRows(x, bits);
    this.kx = null; // a view of the kernel's memory, reused by the next call
  }

  /** Copy split s's rows gathered from this call's rows into its block (the kernel's path). */
  private gatherRows(s: number): void {
    const k = this.ngather[s];
    if (k === 0) return;
    this.ngather[s] = 0;
    this.kernel!.gather(this.kx!, this.gatherOffs[s], k, this.F, this.open[s].block, this.gatherAt[s] * this.F);
  }

  /**
   * The pending train rows' min/max and moments, a feature at a time (its minimum, maximum, cached log
   * and sums stay in registers). Each feature still sees its values in row order, so min/max (-0 and 0
   * included) come out as row by row; the moments are exact integer sums, the same in any order.
   */
  private addTrainRows(x: Float32Array, bits: Uint32Array): void {
    const k = this.npend;
    if (k === 0) return;
    this.npend = 0;
    const F = this.F;
    const pend = this.pend;
    const mom = this.moments;
    if (this.kernel && this.kx) {
      this.addTrainKernel(this.kernel, this.kx, k);
      return;
    }
    const { t: ft, t1: f1, t2: f2 } = this.fixed;
    if (mom) mom.beginRows(k);
    for (let f = 0; f < F; f++) {
      let lo = this.min[f];
      let hi = this.max[f];
      let lastV = this.lastV[f];
      let lastT = this.lastT[f];
      // the last value's fixed-point terms, summed here and handed to the moments once per feature
      let t1 = Math.round(lastT * MOMENT_ONE);
      let t2 = Math.round(lastT * lastT * MOMENT_ONE);
      let count = 0;
      let s1 = 0;
      let s2 = 0;
      for (let r = 0; r < k; r++) {
        const at = pend[r] + f;
        const v = x[at];
        if (v - v !== 0) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (mom) {
          // consecutive rows often repeat a value (flags, ports, counts): its log is taken once; the
          // table remembers each value's log and both fixed-point terms
          if (v !== lastV) {
            lastV = v;
            const slot = this.logSlot(f, v, bits[at]);
            lastT = ft[slot];
            t1 = f1[slot];
            t2 = f2[slot];
          }
          count++;
          s1 += t1;
          s2 += t2;
        }
      }
      this.min[f] = lo;
      this.max[f] = hi;
      this.lastV[f] = lastV;
      this.lastT[f] = lastT;
      if (mom && count > 0) mom.addSums(f, count, s1, s2);
    }
  }

  /** addTrainRows in the scaler's kernel (src/kernels/scalewat.ts train): the same min, max and sums. */
  private addTrainKernel(kernel: ScaleKernel, kx: Float32Array, k: number): void {
    const F = this.F;
    const mom = this.moments;
    const rec = kernel.records(F);
    for (let f = 0, r = 0; f < F; f++, r += REC_F64) {
      rec[r + SLOT.min] = this.min[f];
      rec[r + SLOT.max] = this.max[f];
      rec[r + SLOT.one] = MOMENT_ONE;
    }
    kernel.train(kx, this.pend, k, F, mom !== null);
    if (mom) mom.beginRows(k);
    for (let f = 0, r = 0; f < F; f++, r += REC_F64) {
      this.min[f] = rec[r + SLOT.min];
      this.max[f] = rec[r + SLOT.max];
      const count = rec[r + SLOT.count];
      if (mom && count > 0) mom.addSums(f, count, rec[r + SLOT.s1], rec[r + SLOT.s2]);
    }
  }

  /** The slot of the table of logs holding feature f's value v (float32 bits b), filled if it held another. */
  private logSlot(f: number, v: number, b: number): number {
    const { keys, t, t1, t2 } = this.fixed;
    const slot = f * FIXED_SLOTS + (Math.imul(b, 0x9e3779b1) >>> FIXED_SHIFT);
    if (keys[slot] !== b) {
      const y = slog1p(v);
      if (y > MOMENT_LIMIT || y < -MOMENT_LIMIT) throw new Error(`moments: ${y} is outside ±${MOMENT_LIMIT}`);
      keys[slot] = b;
      t[slot] = y;
      t1[slot] = Math.round(y * MOMENT_ONE);
      t2[slot] = Math.round(y * y * MOMENT_ONE);
    }
    return slot;
  }

  /** Train min/max and moments of `times` copies of one row. */
  private addTrain(x: Float32Array, bits: Uint32Array, src: number, times: number): void {
    const F = this.F;
    const min = this.min;
    const max = this.max;
    const mom = this.moments;
    const lastV = this.lastV;
    const lastT = this.lastT;
    for (let f = 0; f < F; f++) {
      const v = x[src + f];
      if (v - v === 0) {
        if (v < min[f]) min[f] = v;
        if (v > max[f]) max[f] = v;
        if (mom) {
          // consecutive rows often repeat a value (flags, ports, counts): its log is taken once
          if (v !== lastV[f]) {
            lastV[f] = v;
            lastT[f] = this.fixed.t[this.logSlot(f, v, bits[src + f])];
          }
          mom.add(f, lastT[f], times);
        }
      }
    }
    if (mom) mom.endRow();
  }

  /** Whether the row is held aside: its fingerprint is among its class's three smallest so far. */
  private hold(lo: number, hi: number, lab: number, s: number, x: Float32Array, bits: Uint32Array, src: number, ord: number): boolean {
    let list = this.held[lab];
    if (!list) this.held[lab] = list = [];
    let k = 0;
    for (; k < list.length; k++) {
      const c = list[k];
      if (c.lo === lo && c.hi === hi && c.split === s) {
        c.locs.push(ord);
        return true;
      }
      if (lo < c.lo || (lo === c.lo && (hi < c.hi || (hi === c.hi && s < c.split)))) break;
    }
    if (k >= HELD_PER_CLASS) return false;
    list.splice(k, 0, { lo, hi, label: lab, split: s, values: x.slice(src, src + this.F), locs: [ord] });
    if (list.length > HELD_PER_CLASS) {
      // the largest leaves: its copies join the statistics now
      const ev = list.pop()!;
      this.rowCounts[ev.split][ev.label] += ev.locs.length;
      if (ev.split === 0) {
        this.addTrainRows(x, bits); // the rows before it first: every feature sees its values in order
        this.addTrain(ev.values, new Uint32Array(ev.values.buffer, ev.values.byteOffset, this.F), 0, ev.locs.length);
      }
    }
    return true;
  }

  /** The rows held aside, per class index (src/stats.ts's candidates). */
  candidates(part: number): Record<string, Candidate[]> {
    const out: Record<string, Candidate[]> = {};
    for (let lab = 0; lab < this.held.length; lab++) {
      const list = this.held[lab];
      if (list?.length) out[lab] = list.map((c) => ({ fp: fpHex(c.lo, c.hi), label: c.label, split: c.split, values: encodeValues(c.values), locs: { [part]: c.locs } }));
    }
    return out;
  }

  /** The kept rows' fingerprints (lo, hi, label, split, partition, row), sorted by fingerprint. */
  fingerprintTable(part: number): Uint32Array {
    const n = this.nfps;
    const idx = Array.from({ length: n }, (_, k) => k);
    const f = this.fps!;
    idx.sort((a, b) => f[5 * a] - f[5 * b] || f[5 * a + 1] - f[5 * b + 1]);
    const out = new Uint32Array(6 * n);
    idx.forEach((k, j) => out.set([f[5 * k], f[5 * k + 1], f[5 * k + 2], f[5 * k + 3], part, f[5 * k + 4]], 6 * j));
    return out;
  }

  private flush(s: number): void {
    const o = this.open[s];
    if (o.n === 0) return;
    const split = SPLITS[s];
    const file = shardName(split, o.index, this.opts.part);
    this.spill(s);
    // labels (and prev) after the features, then the header into the reserved space (padded with spaces)
    const fBytes = o.n * this.F * 4;
    writeAll(o.fd, new Uint8Array(o.labels.buffer, 0, o.n * 4), HEADER_RESERVE + fBytes);
    if (o.prev) writeAll(o.fd, new Uint8Array(o.prev.buffer, 0, o.n * 4), HEADER_RESERVE + fBytes + o.n * 4);
    const header = JSON.stringify({
      __metadata__: { format: 'flowtensor', split, shard: String(o.index), scaled: 'false' },
      features: { dtype: 'F32', shape: [o.n, this.F], data_offsets: [0, fBytes] },
      labels: { dtype: 'I32', shape: [o.n], data_offsets: [fBytes, fBytes + o.n * 4] },
      ...(o.prev ? { prev: { dtype: 'I32', shape: [o.n], data_offsets: [fBytes + o.n * 4, fBytes + o.n * 8] } } : {}),
    });
    const head = Buffer.alloc(HEADER_RESERVE, 0x20);
    head.writeBigUInt64LE(BigInt(HEADER_RESERVE - 8), 0);
    head.write(header, 8, 'utf8');
    writeAll(o.fd, head, 0);
    // no fsync: pass 2 rewrites (and fsyncs) every shard; an unscaled shard never outlives a crash unnoticed
    fs.closeSync(o.fd);
    o.fd = -1;
    fs.renameSync(o.tmp, path.join(this.opts.dir, file));
    const cc: Record<string, number> = {};
    o.classCounts.forEach((v, k) => {
      if (v > 0) cc[this.opts.labels[k] ?? String(k)] = v;
    });
    const info: ShardInfo = { file, rows: o.n, class_counts: cc };
    const sp = this.splits[split];
    sp.shards.push(info);
    sp.rows += o.n;
    for (const [k, v] of Object.entries(cc)) sp.class_counts[k] = (sp.class_counts[k] ?? 0) + v;
    this.opts.onShard?.(info);
    o.n = 0;
    o.bn = 0;
    o.tmp = '';
    o.index++;
    o.classCounts.fill(0);
    o.lastOfHost.clear(); // prev points inside its shard
  }

  /** Flush partial shards. Labels may have grown (--allow-new-labels): pass the final vocabulary. */
  finish(labels?: string[]): Record<SplitName, SplitInfo> {
    if (labels) this.opts.labels = labels;
    for (let s = 0; s < SPLITS.length; s++) this.flush(s);
    return this.splits;
  }
}

function emptySplit(): SplitInfo {
  return { rows: 0, class_counts: {}, shards: [] };
}
