// manifest.json: what a shard folder holds. Written last, atomically; readers trust nothing else.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { UserError } from './errors.js';
import type { Counts, SplitName } from './batch.js';
import { writeFileAtomic } from './atomic.js';
import type { MomentsJson } from './moments.js';

export const MANIFEST = 'manifest.json';
export const PASS1 = 'pass1.json';
export const FORMAT = 'flowtensor-shards';
export const FORMAT_VERSION = 2;
/** Manifest format versions this code reads (1: min-max scalers only). */
export const READS_FORMAT_VERSIONS = [1, 2];

export interface ShardInfo {
  file: string; // relative to the folder, e.g. train/shard-00000.safetensors
  rows: number;
  bytes?: number;
  sha256?: string;
  class_counts: Record<string, number>;
}

export interface SplitInfo {
  rows: number;
  class_counts: Record<string, number>;
  shards: ShardInfo[];
}

export type ScalerMethod = 'minmax' | 'log-minmax' | 'log-standard';
export const SCALER_METHODS: ScalerMethod[] = ['log-standard', 'log-minmax', 'minmax'];

export interface ScalerStats {
  /**
   * minmax: y = (t - t_min) / (t_max - t_min); log-minmax: the same after a signed log1p of every
   * feature; log-standard: y = (t - mean) / std of the signed log1p over train (format 2).
   */
  method: ScalerMethod;
  fitted_on: 'train';
  clip: boolean;
  /** Features that get the signed log1p first: t = sign(x)·log1p(|x|); others t = x. */
  log1p: string[];
  /** Per feature, over finite train values (float32-rounded), before log1p. */
  min: number[];
  max: number[];
  /** Per feature, after the optional log1p. */
  t_min: number[];
  t_max: number[];
  /** Per feature (format 2): y = (t - center) / scale; scale 1 for a feature constant in train. */
  center?: number[];
  scale?: number[];
  /** Per feature (format 2): with clip, y is clipped to [y_min, y_max] (the train range; [0, 1] for min-max). */
  y_min?: number[];
  y_max?: number[];
  /** +Infinity / -Infinity replacement per feature: 'train_max' | 'train_min' | 'zero'. */
  posinf: string[];
  neginf: string[];
}

export interface Pass1 {
  format: 'flowtensor-pass1';
  flowtensor_version: string;
  dataset: string;
  features: string[];
  labels: string[];
  shard_rows: number;
  raw_min: number[];
  raw_max: number[];
  /** The scaler pass 2 fits (absent in folders from before format 2: minmax). */
  scaler?: ScalerMethod;
  /** Exact moments of the signed log1p of finite train values (log-standard). */
  moments?: MomentsJson;
  posinf: string[];
  neginf: string[];
  log1p: string[];
  clip: boolean;
  splits: Record<SplitName, SplitInfo>;
  stages: Record<string, Counts>;
  examples: Record<string, unknown>;
  sources: unknown[];
  options: Record<string, unknown>;
}

export interface Manifest {
  format: typeof FORMAT;
  format_version: number;
  flowtensor_version: string;
  dataset: string;
  features: string[];
  num_features: number;
  labels: string[];
  num_classes: number;
  shard_rows: number;
  scaler: ScalerStats;
  splits: Record<SplitName, SplitInfo>;
  accounting: Record<string, number>;
  quality: Record<string, unknown>;
  stages: Record<string, Counts>;
  sources: unknown[];
  options: Record<string, unknown>;
}

/** A path from a manifest must stay inside its folder. */
export function safeJoin(dir: string, rel: string, what: string): string {
  if (typeof rel !== 'string' || rel === '' || path.isAbsolute(rel) || rel.split(/[\\/]/).includes('..'))
    throw new UserError(`${what}: refusing path ${JSON.stringify(rel)}: it must be relative and stay inside ${dir}`);
  const full = path.resolve(dir, rel);
  const root = path.resolve(dir);
  if (!full.startsWith(root + path.sep)) throw new UserError(`${what}: path ${JSON.stringify(rel)} leaves ${dir}`);
  return full;
}

export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function writeJsonAtomic(file: string, obj: unknown): void {
  writeFileAtomic(file, [JSON.stringify(obj, null, 2) + '\n']);
}

/** Read and validate a shard folder's manifest; with verify, check every shard's size and checksum. */
export function readManifest(dir: string, opts: { verify?: 'size' | 'sha256' } = {}): Manifest {
  const file = path.join(dir, MANIFEST);
  if (!fs.existsSync(file)) {
    const partial = fs.existsSync(path.join(dir, PASS1));
    throw new UserError(
      `${dir}: no ${MANIFEST}${partial ? ' (pass 1 finished but scaling did not: the folder is unfinished)' : ''}`,
      partial ? `run: flowtensor scale ${dir}` : `prepare the folder first: flowtensor prep --out ${dir} FILES...`,
    );
  }
  let m: Manifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (m.format !== FORMAT) throw new UserError(`${file}: not a flowtensor manifest (format ${JSON.stringify(m.format)})`);
  if (!READS_FORMAT_VERSIONS.includes(m.format_version)) throw new UserError(`${file}: format version ${m.format_version}, this flowtensor reads ${READS_FORMAT_VERSIONS.join(' and ')}`);
  if (!Array.isArray(m.features) || m.features.length !== m.num_features) throw new UserError(`${file}: features do not match num_features`);
  if (!Array.isArray(m.labels) || m.labels.length !== m.num_classes) throw new UserError(`${file}: labels do not match num_classes`);
  for (const [split, info] of Object.entries(m.splits)) {
    let rows = 0;
    for (const s of info.shards) {
      const full = safeJoin(dir, s.file, file);
      if (opts.verify) {
        let st: fs.Stats;
        try {
          st = fs.statSync(full);
        } catch {
          throw new UserError(`${dir}: shard ${s.file} listed in the manifest is missing`, 'prepare the folder again');
        }
        if (s.bytes !== undefined && st.size !== s.bytes)
          throw new UserError(`${dir}: shard ${s.file} has ${st.size} bytes, the manifest says ${s.bytes}`, 'the folder is damaged; prepare it again');
        if (opts.verify === 'sha256' && s.sha256 && sha256File(full) !== s.sha256)
          throw new UserError(`${dir}: shard ${s.file} checksum does not match the manifest`, 'the file was changed or damaged; prepare the folder again');
      }
      rows += s.rows;
    }
    if (rows !== info.rows) throw new UserError(`${file}: split ${split} lists ${info.rows} rows but its shards hold ${rows}`);
  }
  return m;
}
