// manifest.json: what a shard folder holds. Written last, atomically; readers trust nothing else.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { UserError } from './errors.js';
import type { Counts, SplitName } from './batch.js';
import { writeFileAtomic } from './atomic.js';
import type { MomentsJson } from './moments.js';
import { MAX_BINARY_BYTES, kindOf, readJsonFile, readRegularFile } from './safefile.js';
import { MAX_CLASSES } from '../stages/labels.js';

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

export function sha256File(file: string, within?: string): string {
  return crypto.createHash('sha256').update(readRegularFile(file, { maxBytes: MAX_BINARY_BYTES, within, what: 'shard' })).digest('hex');
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
  const m = readJsonFile<Manifest>(file, { hint: 'the folder is damaged; prepare it again' });
  const bad = (what: string) => new UserError(`${file}: ${what}`, 'the folder is damaged; prepare it again');
  if (m.format !== FORMAT) throw new UserError(`${file}: not a flowtensor manifest (format ${JSON.stringify(m.format)})`);
  if (!READS_FORMAT_VERSIONS.includes(m.format_version)) throw new UserError(`${file}: format version ${m.format_version}, this flowtensor reads ${READS_FORMAT_VERSIONS.join(' and ')}`);
  if (!isCount(m.num_features) || m.num_features < 1 || !Array.isArray(m.features) || m.features.length !== m.num_features || !m.features.every((f) => typeof f === 'string')) throw bad('features do not match num_features');
  if (!isCount(m.num_classes) || m.num_classes < 1 || m.num_classes > MAX_CLASSES || !Array.isArray(m.labels) || m.labels.length !== m.num_classes || !m.labels.every((l) => typeof l === 'string') || new Set(m.labels).size !== m.labels.length)
    throw bad(`labels do not match num_classes (1 to ${MAX_CLASSES} distinct names)`);
  checkScaler(m.scaler, m.num_features, file);
  for (const k of ['accounting', 'quality', 'stages', 'options'] as const) if (!isObject(m[k])) throw bad(`no ${k} object`);
  if (!Array.isArray(m.sources)) throw bad('no sources list');
  if (!isObject(m.splits)) throw bad('no splits object');
  for (const split of SPLIT_NAMES) {
    const info = m.splits[split];
    if (!isObject(info) || !isCount(info.rows) || !isObject(info.class_counts) || !Array.isArray(info.shards)) throw bad(`split ${split} is missing or malformed`);
    let rows = 0;
    for (const s of info.shards) {
      if (!isObject(s) || !isCount(s.rows) || (s.bytes !== undefined && !isCount(s.bytes)) || (s.sha256 !== undefined && typeof s.sha256 !== 'string')) throw bad(`a shard entry of split ${split} is malformed`);
      const full = safeJoin(dir, s.file, file);
      if (opts.verify) {
        let st: fs.Stats;
        try {
          st = fs.statSync(full);
        } catch {
          throw new UserError(`${dir}: shard ${s.file} listed in the manifest is missing`, 'prepare the folder again');
        }
        if (!st.isFile()) throw new UserError(`${dir}: shard ${s.file} is ${kindOf(st)}, not a regular file; refused`);
        if (s.bytes !== undefined && st.size !== s.bytes)
          throw new UserError(`${dir}: shard ${s.file} has ${st.size} bytes, the manifest says ${s.bytes}`, 'the folder is damaged; prepare it again');
        if (opts.verify === 'sha256' && s.sha256 && sha256File(full, dir) !== s.sha256)
          throw new UserError(`${dir}: shard ${s.file} checksum does not match the manifest`, 'the file was changed or damaged; prepare the folder again');
      }
      rows += s.rows;
    }
    if (rows !== info.rows) throw new UserError(`${file}: split ${split} lists ${info.rows} rows but its shards hold ${rows}`);
  }
  return m;
}

const SPLIT_NAMES = ['train', 'val', 'test'] as const;
const isObject = (v: unknown): v is Record<string, any> => v !== null && typeof v === 'object' && !Array.isArray(v); // eslint-disable-line @typescript-eslint/no-explicit-any
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Scaler statistics from a manifest or a run: every array as long as the features, every number finite. */
export function checkScaler(sc: unknown, F: number, file: string): asserts sc is ScalerStats {
  const bad = (what: string) => new UserError(`${file}: scaler ${what}`, 'the file is damaged; write it again');
  if (!isObject(sc) || typeof sc.method !== 'string') throw bad('is missing');
  // per-feature statistics: the min-max ones by name, and any numeric list (other scalers) as long as the features
  if (!(SCALER_METHODS as string[]).includes(sc.method)) throw bad(`method ${JSON.stringify(sc.method).slice(0, 40)} is not one of ${SCALER_METHODS.join(', ')}`);
  const need = ['min', 'max', 't_min', 't_max', ...(sc.method === 'log-standard' ? ['center', 'scale', 'y_min', 'y_max'] : [])];
  for (const k of new Set([...need, ...Object.keys(sc).filter((k) => Array.isArray(sc[k]) && sc[k].some((v: unknown) => typeof v === 'number'))])) {
    const a = sc[k];
    if (!Array.isArray(a) || a.length !== F || !a.every((v) => typeof v === 'number' && Number.isFinite(v))) throw bad(`${k} is not ${F} finite numbers`);
  }
  for (const k of ['posinf', 'neginf'] as const) {
    const a = sc[k];
    if (!Array.isArray(a) || a.length !== F || !a.every((v) => v === 'train_max' || v === 'train_min' || v === 'zero')) throw bad(`${k} is not ${F} replacements (train_max, train_min or zero)`);
  }
  if (!Array.isArray(sc.log1p) || !sc.log1p.every((v: unknown) => typeof v === 'string')) throw bad('log1p is not a list of feature names');
  if (typeof sc.clip !== 'boolean') throw bad('clip is not true or false');
}

/** pass1.json (what pass 2 needs), checked: a damaged one is one clear error, never a crash in scale. */
export function readPass1(file: string): Pass1 {
  const p = readJsonFile<Pass1>(file, { hint: 'prepare the folder again' });
  const bad = (what: string) => new UserError(`${file}: ${what}`, 'the folder is damaged; prepare it again');
  if (p.format !== 'flowtensor-pass1') throw bad(`not a pass-1 record (format ${JSON.stringify(p.format)})`);
  const F = Array.isArray(p.features) ? p.features.length : 0;
  if (F === 0 || !p.features.every((f) => typeof f === 'string')) throw bad('features is not a list of names');
  if (!Array.isArray(p.labels) || p.labels.length === 0 || p.labels.length > MAX_CLASSES || !p.labels.every((l) => typeof l === 'string')) throw bad(`labels is not a list of 1 to ${MAX_CLASSES} names`);
  for (const k of ['raw_min', 'raw_max'] as const) if (!Array.isArray(p[k]) || p[k].length !== F || !p[k].every((v) => v === null || typeof v === 'number')) throw bad(`${k} is not ${F} numbers`);
  for (const k of ['posinf', 'neginf'] as const) if (!Array.isArray(p[k]) || p[k].length !== F) throw bad(`${k} is not ${F} replacements`);
  if (!Array.isArray(p.log1p) || typeof p.clip !== 'boolean' || !isCount(p.shard_rows)) throw bad('log1p, clip or shard_rows is missing');
  for (const k of ['stages', 'examples', 'options'] as const) if (!isObject(p[k])) throw bad(`no ${k} object`);
  if (!Array.isArray(p.sources) || !isObject(p.splits)) throw bad('no sources or splits');
  for (const split of SPLIT_NAMES) {
    const info = p.splits[split];
    if (!isObject(info) || !isCount(info.rows) || !isObject(info.class_counts) || !Array.isArray(info.shards) || !info.shards.every((s) => isObject(s) && typeof s.file === 'string' && isCount(s.rows)))
      throw bad(`split ${split} is missing or malformed`);
  }
  // JSON has no Infinity: a feature without a finite train value was written as null
  p.raw_min = p.raw_min.map((v) => (v === null ? Infinity : v));
  p.raw_max = p.raw_max.map((v) => (v === null ? -Infinity : v));
  return p;
}
