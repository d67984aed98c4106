// Reading a run folder's own files (run.json, a checkpoint's state.json and optimizer files, eval.json,
// metrics.ndjson) as untrusted data: each is checked once here, so that a damaged or hand-edited file is
// one clear error (exit 2) naming the file and the field, never a crash or a silent wrong result.
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import { checkScaler } from './manifest.js';
import { MAX_BINARY_BYTES, MAX_JSON_BYTES, readJsonFile, readRegularFile } from './safefile.js';
import { NUMERIC_OPTIONS } from './validate.js';
import { MAX_CLASSES } from '../stages/labels.js';

const DAMAGED = 'the run folder is damaged: train it again (or restore the file)';

export interface RunConfig {
  model: 'seed' | 'window';
  units: number;
  project: number;
  window: number;
  seed: number;
  [k: string]: unknown;
}

export interface RunInfo {
  config: RunConfig;
  features: string[];
  labels: string[];
  scaler: import('./manifest.js').ScalerStats;
  dataset?: string;
  shards_manifest?: { options?: { drop_identifiers?: boolean; releases?: string[] } } & Record<string, unknown>;
  /** window models: examples follow the source host ('host') or are consecutive rows ('rows', older runs) */
  window_context?: 'host' | 'rows' | null;
  [k: string]: unknown;
}

/** run.json keys checked with the rule of the command-line option that sets them (src/validate.ts). */
const CONFIG_RULES: Record<string, string> = {
  units: 'units',
  project: 'project',
  window: 'window',
  seed: 'seed',
  learning_rate: 'lr',
  batch_size: 'batch-size',
  epochs: 'epochs',
  patience: 'patience',
  max_benign_ratio: 'max-benign-ratio',
  max_batches_per_epoch: 'max-batches',
};

function inRange(file: string, key: string, v: unknown, option: string, hint = DAMAGED): void {
  const r = NUMERIC_OPTIONS[option];
  const ok = typeof v === 'number' && Number.isFinite(v) && (!r.int || Number.isInteger(v)) && (r.minOpen ? v > r.min : v >= r.min) && v <= r.max;
  if (!ok) throw new UserError(`${file}: config.${key} is ${JSON.stringify(v)}: ${r.int ? 'a whole number' : 'a number'} from ${r.min} to ${r.max} expected`, hint);
}

/** A training configuration (from options or a run.json) within the limits of the command-line options. */
export function checkRunConfig(c: Record<string, unknown>, what: string): void {
  for (const [k, opt] of Object.entries(CONFIG_RULES)) if (c[k] !== undefined && c[k] !== null) inRange(what, k, c[k], opt, `see flowtensor train --help for --${opt}`);
  checkChoices(c, what);
}

/** The training settings that are names: one of their options' choices (a hand-edited run.json is refused). */
const CONFIG_CHOICES: Record<string, string[]> = {
  monitor: ['val_loss', 'val_macro_f1'],
  optimizer: ['adam', 'rmsprop'],
  lr_schedule: ['plateau', 'constant'],
  class_weights: ['auto', 'sqrt', 'none'],
};

function checkChoices(c: Record<string, unknown>, file: string, hint = DAMAGED): void {
  for (const [k, allowed] of Object.entries(CONFIG_CHOICES))
    if (c[k] !== undefined && !allowed.includes(c[k] as string)) throw new UserError(`${file}: config.${k} is ${JSON.stringify(c[k]).slice(0, 40)}: one of ${allowed.join(', ')} expected`, hint);
}

/** run.json of a run folder, checked: the settings, features, classes and scaler a model needs. */
export function readRunInfo(dir: string): RunInfo {
  const file = path.join(dir, 'run.json');
  if (!fs.existsSync(file)) throw new UserError(`${dir}: no run.json`, 'give a run folder written by flowtensor train');
  const run = readJsonFile<RunInfo>(file, { within: dir, hint: DAMAGED });
  const c = run.config as unknown as Record<string, unknown>;
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new UserError(`${file}: no config object`, DAMAGED);
  if (c.model !== 'seed' && c.model !== 'window') throw new UserError(`${file}: config.model is ${JSON.stringify(c.model)}: seed or window expected`, DAMAGED);
  for (const k of ['units', 'project', 'window', 'seed']) if (!(k in c)) throw new UserError(`${file}: config.${k} is missing`, DAMAGED);
  for (const [k, opt] of Object.entries(CONFIG_RULES)) if (c[k] !== undefined && c[k] !== null) inRange(file, k, c[k], opt);
  checkChoices(c, file);
  if (!Array.isArray(run.features) || run.features.length === 0 || !run.features.every((f) => typeof f === 'string')) throw new UserError(`${file}: features is not a list of names`, DAMAGED);
  if (!Array.isArray(run.labels) || run.labels.length === 0 || run.labels.length > MAX_CLASSES || !run.labels.every((l) => typeof l === 'string') || new Set(run.labels).size !== run.labels.length)
    throw new UserError(`${file}: labels is not a list of 1 to ${MAX_CLASSES} distinct class names`, DAMAGED);
  checkScaler(run.scaler, run.features.length, file);
  if (run.dataset !== undefined && typeof run.dataset !== 'string') throw new UserError(`${file}: dataset is not a name`, DAMAGED);
  return run;
}

export interface CheckpointState {
  epoch: number;
  /** the monitored metric's best value (null: none yet); states from before the monitor: best_val_loss */
  best: number | null;
  best_val_loss: number;
  best_epoch: number;
  bad_epochs: number;
  /** learning rate for the next epoch (absent in states from before the schedule) */
  lr?: number;
  stopped_early: boolean;
}

/** A checkpoint's state.json, checked (JSON has no Infinity: a null best_val_loss means none yet). */
export function readState(ckpt: string): CheckpointState {
  const file = path.join(ckpt, 'state.json');
  const s = readJsonFile<Record<string, unknown>>(file, { hint: DAMAGED });
  const count = (k: string) => {
    if (typeof s[k] !== 'number' || !Number.isSafeInteger(s[k]) || (s[k] as number) < 0) throw new UserError(`${file}: ${k} is ${JSON.stringify(s[k])}: a whole number from 0 expected`, DAMAGED);
    return s[k] as number;
  };
  const loss = s.best_val_loss;
  if (loss !== null && (typeof loss !== 'number' || Number.isNaN(loss))) throw new UserError(`${file}: best_val_loss is ${JSON.stringify(loss)}: a number expected`, DAMAGED);
  const best = s.best === undefined ? loss : s.best;
  if (best !== null && (typeof best !== 'number' || !Number.isFinite(best))) throw new UserError(`${file}: best is ${JSON.stringify(best)}: a number expected`, DAMAGED);
  const lr = s.lr;
  if (lr !== undefined && (typeof lr !== 'number' || !(lr > 0) || !Number.isFinite(lr))) throw new UserError(`${file}: lr is ${JSON.stringify(lr)}: a positive number expected`, DAMAGED);
  return { epoch: count('epoch'), best: best as number | null, best_val_loss: loss === null ? Infinity : (loss as number), best_epoch: count('best_epoch'), bad_epochs: count('bad_epochs'), lr: lr as number | undefined, stopped_early: s.stopped_early === true };
}

/** A checkpoint's optimizer state: names and shapes from optimizer.json, values from optimizer.bin, sizes matched. */
export function readOptimizerFiles(dir: string): { meta: { weights: { name: string; shape: number[] }[] }; values: Float32Array } {
  const file = path.join(dir, 'optimizer.json');
  const meta = readJsonFile<{ weights: { name: string; shape: number[] }[] }>(file, { hint: DAMAGED });
  if (!Array.isArray(meta.weights) || !meta.weights.every((w) => w && typeof w.name === 'string' && Array.isArray(w.shape) && w.shape.every((d) => Number.isSafeInteger(d) && d >= 0)))
    throw new UserError(`${file}: weights is not a list of names and shapes`, DAMAGED);
  const need = meta.weights.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0) * 4;
  if (need > MAX_BINARY_BYTES) throw new UserError(`${file}: asks for ${need} bytes of optimizer state`, DAMAGED);
  const buf = readRegularFile(path.join(dir, 'optimizer.bin'), { maxBytes: MAX_BINARY_BYTES, exactBytes: need, what: 'optimizer state' });
  return { meta, values: new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)) };
}

/** eval.json, or null when the run has none; a damaged one is an error. */
export function readEvalJson<T>(dir: string): T | null {
  const file = path.join(dir, 'eval.json');
  if (!fs.existsSync(file)) return null;
  const ev = readJsonFile<Record<string, unknown>>(file, { hint: DAMAGED });
  const labels = ev.labels;
  if (!Array.isArray(labels) || !Array.isArray(ev.confusion) || ev.confusion.length !== labels.length || !ev.confusion.every((r) => Array.isArray(r) && r.length === labels.length && r.every((v) => typeof v === 'number')) || !Array.isArray(ev.per_class) || typeof ev.macro_f1 !== 'number')
    throw new UserError(`${file}: not an evaluation (labels, confusion, per_class, macro_f1)`, DAMAGED);
  return ev as T;
}

/** metrics.ndjson: one object per epoch; a damaged line is an error naming it. */
export function readMetrics<T>(dir: string): T[] {
  const file = path.join(dir, 'metrics.ndjson');
  if (!fs.existsSync(file)) return [];
  const text = readRegularFile(file, { maxBytes: MAX_JSON_BYTES }).toString('utf8');
  return text
    .split('\n')
    .map((l, i) => [l, i + 1] as const)
    .filter(([l]) => l.trim())
    .map(([l, n]) => {
      let o: unknown;
      try {
        o = JSON.parse(l);
      } catch {
        throw new UserError(`${file}:${n}: not a JSON record`, DAMAGED);
      }
      if (!o || typeof o !== 'object' || typeof (o as { epoch?: unknown }).epoch !== 'number') throw new UserError(`${file}:${n}: not an epoch record`, DAMAGED);
      return o as T;
    });
}
