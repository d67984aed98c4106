// Stage 7 (pass 2), scale: min-max scaling fitted on TRAIN only (the seed's FIXME), with an optional
// signed log1p first. Rewrites every shard in place (atomically), resolves the ±Infinity kept by
// sanitize to the train max/min, clips val/test values outside the train range to [0, 1] (counted),
// and writes manifest.json last.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { SPLITS, type SplitName } from '../src/batch.js';
import { readSafetensors, encodeSafetensors } from '../src/safetensors.js';
import { writeFileAtomic } from '../src/atomic.js';
import { FORMAT, FORMAT_VERSION, MANIFEST, PASS1, safeJoin, writeJsonAtomic, type Manifest, type Pass1, type ScalerStats } from '../src/manifest.js';
import { UserError } from '../src/errors.js';

export const slog1p = (x: number) => (x < 0 ? -Math.log1p(-x) : Math.log1p(x));

/** Build scaler statistics from train min/max. A feature with no finite train value gets min = max = 0. */
export function fitScaler(features: string[], rawMin: ArrayLike<number>, rawMax: ArrayLike<number>, opts: { log1p: string[]; clip: boolean; posinf: string[]; neginf: string[] }): ScalerStats {
  const logSet = new Set(opts.log1p);
  const min: number[] = [];
  const max: number[] = [];
  const tMin: number[] = [];
  const tMax: number[] = [];
  features.forEach((f, k) => {
    let lo = rawMin[k];
    let hi = rawMax[k];
    if (!(lo <= hi)) lo = hi = 0;
    min.push(lo);
    max.push(hi);
    tMin.push(logSet.has(f) ? slog1p(lo) : lo);
    tMax.push(logSet.has(f) ? slog1p(hi) : hi);
  });
  return { method: 'minmax', fitted_on: 'train', clip: opts.clip, log1p: features.filter((f) => logSet.has(f)), min, max, t_min: tMin, t_max: tMax, posinf: opts.posinf, neginf: opts.neginf };
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
  const logIdx = new Uint8Array(F);
  const logSet = new Set(sc.log1p);
  if (features) features.forEach((f, k) => (logIdx[k] = logSet.has(f) ? 1 : 0));
  const n = x.length / F;
  for (let f = 0; f < F; f++) {
    const lo = sc.t_min[f];
    const range = sc.t_max[f] - lo;
    const useLog = logIdx[f] === 1;
    const posRep = sc.posinf[f] === 'zero' ? 0 : sc.posinf[f] === 'train_min' ? sc.min[f] : sc.max[f];
    const negRep = sc.neginf[f] === 'zero' ? 0 : sc.neginf[f] === 'train_max' ? sc.max[f] : sc.min[f];
    let clipped = 0;
    let infs = 0;
    for (let i = 0; i < n; i++) {
      let v = x[i * F + f];
      if (v - v !== 0) {
        infs++;
        v = v > 0 ? posRep : v < 0 ? negRep : 0;
      }
      const t = useLog ? slog1p(v) : v;
      let y: number;
      if (range > 0) y = (t - lo) / range;
      else y = t === lo ? 0 : t > lo ? 1 : -1;
      if (sc.clip) {
        if (y < 0) {
          y = 0;
          clipped++;
        } else if (y > 1) {
          y = 1;
          clipped++;
        }
      }
      x[i * F + f] = y;
    }
    if (counts?.clipped && clipped) counts.clipped[features?.[f] ?? String(f)] = (counts.clipped[features?.[f] ?? String(f)] ?? 0) + clipped;
    if (counts?.inf && infs) counts.inf[features?.[f] ?? String(f)] = (counts.inf[features?.[f] ?? String(f)] ?? 0) + infs;
  }
}

export interface ScaleOptions {
  dir: string;
  onShard?: (file: string, done: number, total: number) => void;
  /** Extra fields merged into the manifest (accounting and quality computed by the caller). */
  extra?: (p: Pass1, scaler: ScalerStats, counts: ScaleCounts) => Pick<Manifest, 'accounting' | 'quality'>;
}

export function scaleDir(opts: ScaleOptions): Manifest {
  const dir = opts.dir;
  const p1file = path.join(dir, PASS1);
  if (!fs.existsSync(p1file)) {
    if (fs.existsSync(path.join(dir, MANIFEST))) throw new UserError(`${dir}: already scaled (manifest.json exists)`, 'prepare again to rescale');
    throw new UserError(`${dir}: no ${PASS1}: pass 1 (shard) has not finished here`, `run: flowtensor shard --out ${dir} < records.ndjson`);
  }
  const p1 = JSON.parse(fs.readFileSync(p1file, 'utf8')) as Pass1;
  const F = p1.features.length;
  const scaler = fitScaler(p1.features, p1.raw_min, p1.raw_max, { log1p: p1.log1p, clip: p1.clip, posinf: p1.posinf, neginf: p1.neginf });
  const counts: ScaleCounts = { clipped: {}, inf_replaced: {} };
  const total = SPLITS.reduce((a, s) => a + p1.splits[s].shards.length, 0);
  let done = 0;
  for (const split of SPLITS) {
    const clipped: Record<string, number> = {};
    for (const sh of p1.splits[split].shards) {
      const full = safeJoin(dir, sh.file, PASS1);
      const st = readSafetensors(full);
      const scaledAlready = st.metadata.scaled === 'true';
      const x = new Float32Array(st.get('features') as Float32Array); // own copy
      const y = st.get('labels') as Int32Array;
      if (x.length !== sh.rows * F || y.length !== sh.rows) throw new UserError(`${full}: ${y.length} rows, pass1.json says ${sh.rows}`);
      if (!scaledAlready) applyScaler(x, F, scaler, { clipped, inf: counts.inf_replaced }, p1.features);
      const parts = encodeSafetensors(
        { features: { dtype: 'F32', shape: [sh.rows, F], data: x }, labels: { dtype: 'I32', shape: [sh.rows], data: new Int32Array(y) } },
        { format: 'flowtensor', split, shard: String(sh.file.match(/(\d+)\.safetensors$/)?.[1] ?? '0').replace(/^0+(?=\d)/, ''), scaled: 'true' },
      );
      if (!scaledAlready) writeFileAtomic(full, parts);
      const h = crypto.createHash('sha256');
      let bytes = 0;
      for (const p of parts) {
        h.update(p);
        bytes += p.byteLength;
      }
      sh.bytes = bytes;
      sh.sha256 = h.digest('hex');
      opts.onShard?.(sh.file, ++done, total);
    }
    counts.clipped[split] = clipped;
  }
  const extra = opts.extra?.(p1, scaler, counts) ?? { accounting: {}, quality: {} };
  const manifest: Manifest = {
    format: FORMAT,
    format_version: FORMAT_VERSION,
    flowtensor_version: p1.flowtensor_version,
    dataset: p1.dataset,
    features: p1.features,
    num_features: F,
    labels: p1.labels,
    num_classes: p1.labels.length,
    shard_rows: p1.shard_rows,
    scaler,
    splits: p1.splits as Record<SplitName, typeof p1.splits.train>,
    accounting: extra.accounting,
    quality: { ...extra.quality, clipped_to_train_range: counts.clipped, infinities_replaced: counts.inf_replaced },
    stages: p1.stages,
    sources: p1.sources,
    options: p1.options,
  };
  writeJsonAtomic(path.join(dir, MANIFEST), manifest);
  fs.rmSync(p1file, { force: true });
  return manifest;
}
