// Stage 8 (pass 1), shard: rows -> fixed-size unscaled shards per split, while gathering the
// train-only min/max the scale stage needs. Files are written atomically.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { SPLITS, type Batch, type SplitName } from '../src/batch.js';
import { toRowMajor } from './split.js';
import { writeSafetensors } from '../src/safetensors.js';
import { isTempName } from '../src/atomic.js';
import { MANIFEST, PASS1, type ShardInfo, type SplitInfo } from '../src/manifest.js';

export interface ShardOptions {
  dir: string;
  features: string[];
  labels: string[];
  shardRows?: number;
  onShard?: (info: ShardInfo) => void;
}

interface Open {
  features: Float32Array;
  labels: Int32Array;
  n: number;
  index: number;
  classCounts: Map<number, number>;
}

export const shardName = (split: SplitName, index: number) => `${split}/shard-${String(index).padStart(5, '0')}.safetensors`;

/** Remove what an earlier run left in dir (manifest first, so no manifest ever lists missing shards). */
export function clearShardDir(dir: string): void {
  for (const f of [MANIFEST, PASS1]) fs.rmSync(path.join(dir, f), { force: true });
  for (const s of SPLITS) {
    const d = path.join(dir, s);
    if (!fs.existsSync(d)) continue;
    for (const f of fs.readdirSync(d)) if (/^shard-\d+\.safetensors$/.test(f) || isTempName(f)) fs.rmSync(path.join(d, f), { force: true });
  }
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) if (isTempName(f)) fs.rmSync(path.join(dir, f), { force: true });
}

export class ShardWriter {
  readonly F: number;
  readonly shardRows: number;
  readonly min: Float64Array;
  readonly max: Float64Array;
  private open: Open[];
  readonly splits: Record<SplitName, SplitInfo>;

  constructor(private opts: ShardOptions) {
    this.F = opts.features.length;
    this.shardRows = opts.shardRows ?? 65536;
    this.min = new Float64Array(this.F).fill(Infinity);
    this.max = new Float64Array(this.F).fill(-Infinity);
    fs.mkdirSync(opts.dir, { recursive: true });
    clearShardDir(opts.dir);
    for (const s of SPLITS) fs.mkdirSync(path.join(opts.dir, s), { recursive: true });
    this.open = SPLITS.map(() => this.fresh(0));
    this.splits = { train: emptySplit(), val: emptySplit(), test: emptySplit() };
  }

  private fresh(index: number): Open {
    return { features: new Float32Array(this.shardRows * this.F), labels: new Int32Array(this.shardRows), n: 0, index, classCounts: new Map() };
  }

  /** Add a batch that carries split and labels (the stage-command path). */
  add(b: Batch): void {
    if (!b.split || !b.label) throw new Error('shard needs split and labels');
    this.addRows(toRowMajor(b, this.opts.features), b.n, b.label, b.split, null);
  }

  /** Add rows of a row-major float32 matrix [n][F]; rows whose keep byte is 0 are skipped. */
  addRows(x: Float32Array, n: number, label: Int32Array, split: Uint8Array, keep: Uint8Array | null): void {
    const F = this.F;
    const min = this.min;
    const max = this.max;
    for (let i = 0; i < n; i++) {
      if (keep && !keep[i]) continue;
      const s = split[i];
      let o = this.open[s];
      if (o.n === this.shardRows) {
        this.flush(s);
        o = this.open[s];
      }
      const src = i * F;
      const base = o.n * F;
      o.features.set(x.subarray(src, src + F), base);
      if (s === 0) {
        for (let f = 0; f < F; f++) {
          const v = x[src + f];
          if (v - v === 0) {
            if (v < min[f]) min[f] = v;
            if (v > max[f]) max[f] = v;
          }
        }
      }
      const lab = label[i];
      o.labels[o.n] = lab;
      o.classCounts.set(lab, (o.classCounts.get(lab) ?? 0) + 1);
      o.n++;
    }
  }

  private flush(s: number): void {
    const o = this.open[s];
    if (o.n === 0) return;
    const split = SPLITS[s];
    const file = shardName(split, o.index);
    writeSafetensors(
      path.join(this.opts.dir, file),
      {
        features: { dtype: 'F32', shape: [o.n, this.F], data: o.features.subarray(0, o.n * this.F) },
        labels: { dtype: 'I32', shape: [o.n], data: o.labels.subarray(0, o.n) },
      },
      { format: 'flowtensor', split, shard: String(o.index), scaled: 'false' },
      false, // pass 2 rewrites (and fsyncs) every shard; an unscaled shard never outlives a crash unnoticed
    );
    const cc: Record<string, number> = {};
    for (const [k, v] of [...o.classCounts].sort((a, b) => a[0] - b[0])) cc[this.opts.labels[k] ?? String(k)] = v;
    const info: ShardInfo = { file, rows: o.n, class_counts: cc };
    const sp = this.splits[split];
    sp.shards.push(info);
    sp.rows += o.n;
    for (const [k, v] of Object.entries(cc)) sp.class_counts[k] = (sp.class_counts[k] ?? 0) + v;
    this.opts.onShard?.(info);
    o.n = 0;
    o.index++;
    o.classCounts = new Map();
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

export function shardSink(w: ShardWriter): Writable {
  return new Writable({
    objectMode: true,
    write(b: Batch, _e, cb) {
      try {
        w.add(b);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
}
