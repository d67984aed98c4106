// `flowtensor baseline`: a tree ensemble trained on the same shards as the LSTM, evaluated on the same
// test split, so a user sees at once whether the LSTM is worth it. The learner is a library's, not ours:
// Yggdrasil Decision Forests (Google's C++ decision-forest library; its npm package ydf-training is the
// library compiled to WebAssembly), RandomForest with its defaults (300 trees). Chosen by measurement
// (docs/RESULTS.md): on the improved-release shards it scores within 0.005 macro-F1 of scikit-learn's
// RandomForest in 12-16 s, while mljs' ml-random-forest had not finished 10 trees after 10 minutes.
// The JavaScript API takes every training value as a JS number, so train is sampled down to --max-rows
// (classes below 1% of that keep every row); the sample and its size are recorded. The fitted forest
// is evaluated and then discarded: this is a yardstick for the LSTM, not a second detector to deploy.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import YDFTraining, { type YdfModel } from 'ydf-training';
import { benignClass, loadShard, openShards } from './shardset.js';
import { Confusion, type Report } from './metrics.js';
import { ensureDir } from './atomic.js';
import { MANIFEST, writeJsonAtomic, type Manifest } from './manifest.js';
import { rng } from './synth.js';
import { UserError } from './errors.js';
import { packageVersion } from './config.js';
import { silentLogger, type Logger } from './log.js';
import type { SplitName } from './batch.js';

export interface BaselineOptions {
  shards: string;
  out: string;
  /** Train rows used at most (sampled); default 200,000. */
  maxRows?: number;
  seed?: number;
  learner?: 'random-forest' | 'gradient-boosted-trees';
  logger?: Logger;
}

export interface BaselineResult {
  learner: string;
  train_rows: number;
  train_rows_used: number;
  fit_seconds: number;
  val?: Report;
  test?: Report;
}

const LEARNERS = { 'random-forest': 'RandomForestLearner', 'gradient-boosted-trees': 'GradientBoostedTreesLearner' } as const;

/** sha256 of a shard folder's manifest: a baseline and a run compare only on the very same shards. */
export function manifestDigest(dir: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, MANIFEST))).digest('hex');
}

/** Class names as YDF labels: plain tokens, mapped back by index. */
const labelName = (k: number) => `c${k}`;

function columnsOf(m: Manifest): Record<string, number[]> {
  const cols: Record<string, number[]> = {};
  // YDF column names: f0..fN (feature names may hold dots, which some of its readers treat specially)
  for (let f = 0; f < m.num_features; f++) cols[`f${f}`] = [];
  return cols;
}

/** Predicted class indices for rows x [n][F]; YDF gives n×K probabilities (n for two classes). */
function predictRows(model: YdfModel, classes: number[], x: Float32Array, n: number, F: number): Int32Array {
  const cols: Record<string, number[]> = {};
  for (let f = 0; f < F; f++) {
    const a = new Array<number>(n);
    for (let i = 0; i < n; i++) a[i] = x[i * F + f];
    cols[`f${f}`] = a;
  }
  const p = model.predict(cols);
  const K = classes.length;
  const out = new Int32Array(n);
  if (K === 2 && p.length === n) {
    for (let i = 0; i < n; i++) out[i] = classes[p[i] > 0.5 ? 1 : 0];
    return out;
  }
  if (p.length !== n * K) throw new Error(`baseline: ${p.length} probabilities for ${n} rows of ${K} classes`);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < K; c++) if (p[i * K + c] > p[i * K + best]) best = c;
    out[i] = classes[best];
  }
  return out;
}

function evaluate(model: YdfModel, classes: number[], dir: string, m: Manifest, split: SplitName): Report | undefined {
  if (m.splits[split].rows === 0) return undefined;
  const conf = new Confusion(m.labels);
  const CHUNK = 32768;
  for (const sh of m.splits[split].shards) {
    const { x, y } = loadShard(dir, m, sh.file, sh.rows, sh.bytes);
    for (let s = 0; s < y.length; s += CHUNK) {
      const n = Math.min(CHUNK, y.length - s);
      conf.add(y.subarray(s, s + n), predictRows(model, classes, x.subarray(s * m.num_features, (s + n) * m.num_features), n, m.num_features));
    }
  }
  return conf.report();
}

export async function baseline(o: BaselineOptions): Promise<BaselineResult> {
  const log = o.logger ?? silentLogger;
  const maxRows = o.maxRows ?? 200_000;
  if (!(Number.isInteger(maxRows) && maxRows >= 100)) throw new UserError(`--max-rows ${o.maxRows}: give a whole number of at least 100`);
  const learner = o.learner ?? 'random-forest';
  const m = openShards(o.shards, 'sha256');
  const n = m.splits.train.rows;
  if (n === 0) throw new UserError(`${o.shards}: the train split is empty`);
  ensureDir(o.out);
  // a sample of train: every row of a class below 1% of the budget, the others with the same chance
  const small = new Set(m.labels.map((l, k) => ((m.splits.train.class_counts[l] ?? 0) < maxRows / 100 ? k : -1)).filter((k) => k >= 0));
  const smallRows = [...small].reduce((a, k) => a + (m.splits.train.class_counts[m.labels[k]] ?? 0), 0);
  const keep = n <= maxRows ? 1 : Math.max(0, (maxRows - smallRows) / Math.max(1, n - smallRows));
  const r = rng((o.seed ?? 1) >>> 0);
  const cols = columnsOf(m);
  const labels: string[] = [];
  const F = m.num_features;
  for (const sh of m.splits.train.shards) {
    const { x, y } = loadShard(o.shards, m, sh.file, sh.rows, sh.bytes);
    for (let i = 0; i < y.length; i++) {
      if (keep < 1 && !small.has(y[i]) && r() >= keep) continue;
      for (let f = 0; f < F; f++) cols[`f${f}`].push(x[i * F + f]);
      labels.push(labelName(y[i]));
    }
  }
  const present = new Set(labels);
  if (present.size < 2) throw new UserError(`${o.shards}: train holds one class (${m.labels[Number([...present][0]?.slice(1))]}): nothing to tell apart`);
  log.info({ learner, train_rows: n, train_rows_used: labels.length, sampled: keep < 1 }, 'baseline: fitting');
  const ydf = await YDFTraining({ print: (s) => log.debug({ ydf: s }, 'ydf'), printErr: (s) => log.debug({ ydf: s }, 'ydf') });
  const t0 = performance.now();
  const model = new ydf[LEARNERS[learner]]('label', 'CLASSIFICATION').train({ ...cols, label: labels });
  const fitSeconds = (performance.now() - t0) / 1000;
  const classes = model.getLabelClasses().map((c) => Number(c.slice(1)));
  const trees = Number(/Number of trees: (\d+)/.exec(model.describe())?.[1] ?? NaN);
  log.info({ fit_seconds: +fitSeconds.toFixed(2), trees }, 'baseline: fitted');
  const val = evaluate(model, classes, o.shards, m, 'val');
  const test = evaluate(model, classes, o.shards, m, 'test');
  // the model itself is not kept: the package's save() needs a browser's global JSZip and prints to stdout
  model.unload();
  const info = {
    flowtensor_version: packageVersion(),
    learner: `Yggdrasil Decision Forests ${learner === 'random-forest' ? 'RandomForest' : 'GradientBoostedTrees'} (ydf-training, defaults)`,
    trees,
    shards: path.resolve(o.shards),
    manifest_sha256: manifestDigest(o.shards),
    dataset: m.dataset,
    releases: m.options.releases ?? null,
    split_by: m.options.split_by ?? 'hash',
    features: m.features,
    labels: m.labels,
    benign_class: benignClass(m),
    train_rows: n,
    train_rows_used: labels.length,
    sample: keep < 1 ? { seed: o.seed ?? 1, keep_probability: keep, classes_kept_whole: [...small].map((k) => m.labels[k]) } : null,
    fit_seconds: +fitSeconds.toFixed(3),
    ydf_column_names: 'f0..fN in the order of features; labels c0..cK by class index',
    val: val ?? null,
  };
  writeJsonAtomic(path.join(o.out, 'baseline.json'), info);
  if (test) writeJsonAtomic(path.join(o.out, 'eval.json'), { split: 'test', shards: path.resolve(o.shards), manifest_sha256: info.manifest_sha256, model: info.learner, ...test });
  else fs.rmSync(path.join(o.out, 'eval.json'), { force: true });
  return { learner: info.learner, train_rows: n, train_rows_used: labels.length, fit_seconds: fitSeconds, val, test };
}

/** A baseline folder's test report, checked to come from the same shard folder (by its manifest's sha256). */
export function readBaselineEval(dir: string, shards: string, split = 'test'): Report {
  if (split !== 'test') throw new UserError(`--baseline compares on the test split; --split is ${split}`);
  const f = path.join(dir, 'eval.json');
  if (!fs.existsSync(f)) throw new UserError(`${dir}: no eval.json`, 'give a folder written by flowtensor baseline');
  let ev: Report & { manifest_sha256?: string };
  try {
    ev = JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    throw new UserError(`${f}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(ev.per_class) || typeof ev.macro_f1 !== 'number') throw new UserError(`${f}: not a baseline evaluation`);
  if (shards && ev.manifest_sha256 !== manifestDigest(shards)) throw new UserError(`${dir}: the baseline was trained on other shards than ${shards}`, 'run flowtensor baseline on the same shard folder');
  return ev;
}
