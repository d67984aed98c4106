// Mergeable statistics of a partition of the input (the analyze step of analyze → merge → transform).
// A partition's statistics say everything pass 2 and the manifest need, and two of them merge into
// the statistics of both partitions: the merge is associative and commutative, so any tree of merges
// over any partitioning gives the same result (test/stats.test.ts checks it as a property).
//
// What makes that hold:
// - counts add; train min/max take the min/max; the log1p moments are exact integers (src/moments.ts);
// - the per-class minimum (every class in every split) is decided at the end by fingerprint order: the
//   three smallest distinct fingerprints of each class go to train, val and test. Each partition holds
//   its own three smallest per class aside (their values, and where their rows are), out of its train
//   statistics; a merge keeps the three smallest of the union and adds the evicted ones to the
//   statistics of their natural split. A fingerprint among the three smallest overall is among the three
//   smallest of every partition holding it, so it is never added early. `finalize` then places them.
// - with dedupe, every partition lists its distinct fingerprints (a binary side file); a merge keeps the
//   copy of the lowest partition (the smallest file and line), counts the others as duplicates and takes
//   them out of the statistics (reading the row's values from its unscaled shard: subtracting from the
//   exact moments is exact; a duplicate has the same values and, split by its fingerprint, the same
//   split as the copy kept, so the train min/max do not change), and lists them for pass 2 to drop.
import fs from 'node:fs';
import path from 'node:path';
import { SPLITS, addCounts, sortCounts, type Counts, type SplitName } from './batch.js';
import { EXAMPLES, type Example } from '../stages/sanitize.js';
import type { MomentsJson } from './moments.js';
import type { ScalerMethod, ScalerStats, ShardInfo } from './manifest.js';
import { writeFileAtomic } from './atomic.js';
import { UserError } from './errors.js';
import { MAX_BINARY_BYTES, readJsonFile, readRegularFile } from './safefile.js';
import { fitScaler, slog1p } from '../stages/scale.js';

export const STATS_FORMAT = 'flowtensor-stats';
export const STATS_VERSION = 1;
/** Rows held aside per class: the per-class minimum places at most three (train, val, test). */
export const HELD_PER_CLASS = 3;

/** One of the smallest fingerprints of a class: its row's values and where its copies are. */
export interface Candidate {
  /** 16 hex digits: the fingerprint's two 32-bit words, low word first (the order of candidates). */
  fp: string;
  label: number;
  /** The natural split (from the fingerprint, or the group). */
  split: number;
  /** The row's float32 values (±Infinity as strings: JSON has none). */
  values: (number | string)[];
  /** Partition -> the copies' row numbers within that partition's split (ascending). */
  locs: Record<string, number[]>;
}

export interface TaskInfo {
  index: number;
  file: number;
  chunk: number;
  newlines: number;
  part: number;
}

export interface SourcePart {
  file: string;
  info: Record<string, unknown>;
  bytes: number;
  parse: Counts;
}

export interface PartInfo {
  index: number;
  /** Unscaled shards of the partition per split, in order (full shards hold shard_rows rows). */
  shards: Record<SplitName, ShardInfo[]>;
}

export interface PartStats {
  format: typeof STATS_FORMAT;
  version: number;
  flowtensor_version: string;
  dataset: string;
  features: string[];
  labels: string[];
  shard_rows: number;
  /** N: how many partitions the input was cut into, and a digest of the plan every partition shares. */
  partitions: number;
  plan: string;
  /** The partitions merged in, ascending. */
  parts: PartInfo[];
  tasks: TaskInfo[];
  /** Train statistics of the rows not held aside (null: no finite value). */
  min: (number | null)[];
  max: (number | null)[];
  moments?: MomentsJson;
  /** Rows per split and class index (not held aside). */
  rows: Record<SplitName, Record<string, number>>;
  /** Class index -> its (at most three) smallest fingerprints, ascending. */
  candidates: Record<string, Candidate[]>;
  /** The binary fingerprint table beside this file (dedupe over several partitions). */
  fingerprints?: string;
  stages: Record<string, Counts>;
  /** sanitize's first examples per column and kind, with their task (line numbers partition-local). */
  examples: Record<string, Example[]>;
  /** File index -> what each partition read of it. */
  sources: Record<string, SourcePart>;
  posinf: string[];
  neginf: string[];
  log1p: string[];
  scaler: ScalerMethod;
  clip: boolean;
  options: Record<string, unknown>;
}

/**
 * Distinct fingerprints with the copy kept (6 words each: lo, hi, label, split, partition, row number
 * in the partition's split; sorted by lo, hi) and the copies dropped (3 words: partition, split, row).
 */
export interface FpTable {
  entries: Uint32Array;
  drops: Uint32Array;
}

export const fpHex = (lo: number, hi: number) => (lo >>> 0).toString(16).padStart(8, '0') + (hi >>> 0).toString(16).padStart(8, '0');
export const emptyRows = (): Record<SplitName, Record<string, number>> => ({ train: {}, val: {}, test: {} });

const enc = (v: number): number | string => (Number.isFinite(v) ? v : v > 0 ? 'Infinity' : '-Infinity');
const dec = (v: number | string): number => (typeof v === 'number' ? v : v === 'Infinity' ? Infinity : -Infinity);
export const encodeValues = (x: ArrayLike<number>): (number | string)[] => Array.from(x, enc);

/** Add `times` copies of a row (raw values) to min/max and the moments of slog1p (exact, in BigInts); times may be negative (moments only). */
export function addRowStats(s: { min: (number | null)[]; max: (number | null)[]; moments?: MomentsJson }, values: (number | string)[] | ArrayLike<number>, times: number): void {
  const F = s.min.length;
  const one = s.moments ? 2 ** s.moments.bits : 0;
  for (let f = 0; f < F; f++) {
    const v = dec((values as ArrayLike<number | string>)[f] as number | string);
    if (!Number.isFinite(v)) continue;
    if (times > 0) {
      if (s.min[f] === null || v < s.min[f]!) s.min[f] = v;
      if (s.max[f] === null || v > s.max[f]!) s.max[f] = v;
    }
    if (s.moments) {
      const t = slog1p(v);
      s.moments.n[f] += times;
      s.moments.s1[f] = String(BigInt(s.moments.s1[f]) + BigInt(Math.round(t * one)) * BigInt(times));
      s.moments.s2[f] = String(BigInt(s.moments.s2[f]) + BigInt(Math.round(t * t * one)) * BigInt(times));
    }
  }
}

const bumpRows = (rows: Record<SplitName, Record<string, number>>, split: number, label: number, by: number) => {
  const r = rows[SPLITS[split]];
  const v = (r[label] ?? 0) + by;
  if (v === 0) delete r[label];
  else r[label] = v;
};

const copiesOf = (c: Candidate) => Object.values(c.locs).reduce((a, l) => a + l.length, 0);

/** A held candidate leaves the candidates: its copies join the statistics of its natural split. */
function release(s: PartStats, c: Candidate): void {
  const n = copiesOf(c);
  if (n === 0) return;
  bumpRows(s.rows, c.split, c.label, n);
  if (c.split === 0) addRowStats(s, c.values, n);
}

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

/** Reads one unscaled row back: partition, split, row number in that partition's split. */
export type RowReader = (part: number, split: number, ord: number) => ArrayLike<number>;

/** The statistics of both inputs (associative and commutative). */
export function mergeTwo(a: PartStats, fa: FpTable | null, b: PartStats, fb: FpTable | null, readRow: RowReader): { s: PartStats; fp: FpTable | null } {
  for (const k of ['format', 'version', 'dataset', 'plan', 'partitions', 'shard_rows'] as const)
    if (a[k] !== b[k]) throw new UserError(`statistics to merge differ in ${k} (${JSON.stringify(a[k])} vs ${JSON.stringify(b[k])}): they come from different runs`, 'merge the statistics of one plan (the same files, options and --partition N)');
  const seen = new Set(a.parts.map((p) => p.index));
  const twice = b.parts.find((p) => seen.has(p.index));
  if (twice) throw new UserError(`partition ${twice.index} is in both statistics to merge`, 'merge each partition once');
  const s: PartStats = clone(a);
  delete s.fingerprints; // named when written
  s.parts = [...a.parts, ...clone(b.parts)].sort((x, y) => x.index - y.index);
  s.tasks = [...a.tasks, ...b.tasks].sort((x, y) => x.index - y.index);
  for (let f = 0; f < s.min.length; f++) {
    const lo = [a.min[f], b.min[f]].filter((v): v is number => v !== null);
    const hi = [a.max[f], b.max[f]].filter((v): v is number => v !== null);
    s.min[f] = lo.length ? Math.min(...lo) : null;
    s.max[f] = hi.length ? Math.max(...hi) : null;
  }
  if (a.moments && b.moments)
    for (let f = 0; f < s.min.length; f++) {
      s.moments!.n[f] = a.moments.n[f] + b.moments.n[f];
      s.moments!.s1[f] = String(BigInt(a.moments.s1[f]) + BigInt(b.moments.s1[f]));
      s.moments!.s2[f] = String(BigInt(a.moments.s2[f]) + BigInt(b.moments.s2[f]));
    }
  for (const sp of SPLITS) for (const [k, v] of Object.entries(b.rows[sp])) s.rows[sp][k] = (s.rows[sp][k] ?? 0) + v;
  s.stages = sortCounts(addCounts(clone(a.stages) as Counts, b.stages as Counts)) as Record<string, Counts>;
  const ex: Record<string, Example[]> = {};
  for (const src of [a.examples, b.examples]) for (const [k, v] of Object.entries(src)) (ex[k] ??= []).push(...v);
  s.examples = {};
  for (const k of Object.keys(ex).sort()) s.examples[k] = ex[k].sort((x, y) => (x.task ?? 0) - (y.task ?? 0) || x.line - y.line).slice(0, EXAMPLES);
  for (const [k, v] of Object.entries(b.sources)) {
    const t = s.sources[k];
    if (!t) s.sources[k] = clone(v);
    else {
      t.bytes += v.bytes;
      t.parse = addCounts(t.parse, v.parse);
    }
  }
  s.sources = Object.fromEntries(Object.entries(s.sources).sort((x, y) => Number(x[0]) - Number(y[0])));
  // candidates: the union, copies of one fingerprint together
  const cands: Record<string, Candidate[]> = clone(a.candidates);
  for (const [lab, list] of Object.entries(b.candidates)) {
    const into = (cands[lab] ??= []);
    for (const c of list) {
      const same = into.find((x) => x.fp === c.fp && x.split === c.split);
      if (!same) into.push(clone(c));
      else for (const [p, l] of Object.entries(c.locs)) same.locs[p] = [...(same.locs[p] ?? []), ...l].sort((x, y) => x - y);
    }
  }
  // duplicates across the two: the copy of the lower partition stays
  let fp: FpTable | null = null;
  if (fa || fb) {
    if (!fa || !fb) throw new UserError('statistics to merge: one has a fingerprint table (dedupe), the other not', 'merge the statistics of one plan');
    fp = mergeFp(fa, fb, (e) => {
      const [lo, hi, label, split, part, ord] = e;
      const c = cands[label]?.find((x) => x.fp === fpHex(lo, hi) && x.split === split);
      const l = c?.locs[part];
      const at = l ? l.indexOf(ord) : -1;
      if (at >= 0) l!.splice(at, 1);
      else {
        bumpRows(s.rows, split, label, -1);
        if (split === 0) addRowStats(s, readRow(part, split, ord), -1);
      }
      const sc = (s.stages.split ??= {});
      sc.deduplicated = ((sc.deduplicated as number) ?? 0) + 1;
      const by = ((sc.deduplicated_by_class as Counts) ??= {});
      by[label] = ((by[label] as number) ?? 0) + 1;
    });
    s.stages = sortCounts(s.stages);
  }
  // the three smallest of each class stay held; the others join the statistics
  s.candidates = {};
  for (const lab of Object.keys(cands).sort((x, y) => Number(x) - Number(y))) {
    const list = cands[lab].sort((x, y) => (x.fp < y.fp ? -1 : x.fp > y.fp ? 1 : x.split - y.split));
    for (const c of list.slice(HELD_PER_CLASS)) release(s, c);
    s.candidates[lab] = list.slice(0, HELD_PER_CLASS);
  }
  return { s, fp };
}

/** Merge two fingerprint tables; `dropped` sees each copy that loses (lo, hi, label, split, part, ord). */
function mergeFp(a: FpTable, b: FpTable, dropped: (e: number[]) => void): FpTable {
  const A = a.entries;
  const B = b.entries;
  const out = new Uint32Array(A.length + B.length);
  const drops: number[] = [...a.drops, ...b.drops];
  let i = 0;
  let j = 0;
  let o = 0;
  const put = (src: Uint32Array, k: number) => {
    out.set(src.subarray(k, k + 6), o);
    o += 6;
  };
  while (i < A.length || j < B.length) {
    if (j >= B.length) {
      put(A, i);
      i += 6;
      continue;
    }
    if (i >= A.length) {
      put(B, j);
      j += 6;
      continue;
    }
    const c = A[i] - B[j] || A[i + 1] - B[j + 1];
    if (c < 0) {
      put(A, i);
      i += 6;
    } else if (c > 0) {
      put(B, j);
      j += 6;
    } else {
      const [keep, lose] = A[i + 4] < B[j + 4] ? [A.subarray(i, i + 6), B.subarray(j, j + 6)] : [B.subarray(j, j + 6), A.subarray(i, i + 6)];
      out.set(keep, o);
      o += 6;
      dropped(Array.from(lose));
      drops.push(lose[4], lose[3], lose[5]);
      i += 6;
      j += 6;
    }
  }
  // drops sorted (partition, split, row), so the table does not depend on the merge order
  const d: number[][] = [];
  for (let k = 0; k < drops.length; k += 3) d.push([drops[k], drops[k + 1], drops[k + 2]]);
  d.sort((x, y) => x[0] - y[0] || x[1] - y[1] || x[2] - y[2]);
  return { entries: out.slice(0, o), drops: Uint32Array.from(d.flat()) };
}

export interface Move {
  label: number;
  fp: string;
  from: number;
  to: number;
  locs: Record<string, number[]>;
}

export interface Final {
  scaler: ScalerStats;
  /** Rows per split and class index, after the per-class minimum. */
  rows: Record<SplitName, Record<string, number>>;
  moves: Move[];
  /** Which split each held fingerprint goes to. */
  firsts: number[];
}

/** The decisions and the scaler, from statistics that cover every partition. */
export function finalize(s: PartStats): Final {
  const missing: number[] = [];
  for (let k = 0; k < s.partitions; k++) if (!s.parts.some((p) => p.index === k)) missing.push(k);
  if (missing.length) throw new UserError(`the statistics cover ${s.parts.length} of ${s.partitions} partitions (missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''})`, 'merge the statistics of every partition first (flowtensor merge-stats)');
  const t: PartStats = clone(s);
  const ratios = (s.options.ratios as { train: number; val: number; test: number } | undefined) ?? { train: 1, val: 1, test: 1 };
  const shares = [ratios.train, ratios.val, ratios.test];
  const firsts = s.options.split_by === undefined || s.options.split_by === 'hash' ? [0, 1, 2].filter((k) => shares[k] > 0) : [];
  const moves: Move[] = [];
  for (const lab of Object.keys(t.candidates).sort((x, y) => Number(x) - Number(y)))
    t.candidates[lab].forEach((c, k) => {
      const to = k < firsts.length ? firsts[k] : c.split;
      const n = copiesOf(c);
      if (n === 0) return;
      bumpRows(t.rows, to, c.label, n);
      if (to === 0) addRowStats(t, c.values, n);
      if (to !== c.split) moves.push({ label: c.label, fp: c.fp, from: c.split, to, locs: c.locs });
    });
  const min = t.min.map((v) => (v === null ? Infinity : v));
  const max = t.max.map((v) => (v === null ? -Infinity : v));
  const scaler = fitScaler(t.features, min, max, { log1p: t.log1p, clip: t.clip, posinf: t.posinf, neginf: t.neginf, method: t.scaler, moments: t.moments });
  return { scaler, rows: t.rows, moves, firsts };
}

/** Line offset to add to a partition-local line of a task: the newlines of its file in earlier partitions. */
export function carryOf(s: PartStats): (task: number) => number {
  const byIndex = new Map(s.tasks.map((t) => [t.index, t]));
  const memo = new Map<number, number>();
  return (task) => {
    let v = memo.get(task);
    if (v !== undefined) return v;
    const t = byIndex.get(task);
    v = 0;
    if (t && t.chunk > 0) for (const u of s.tasks) if (u.file === t.file && u.index < t.index && u.part !== t.part) v += u.newlines;
    memo.set(task, v);
    return v;
  };
}

/** sanitize's examples with true line numbers, without their task. */
export function finalExamples(s: PartStats): Record<string, { file: string; line: number; raw: string }[]> {
  const carry = carryOf(s);
  const out: Record<string, { file: string; line: number; raw: string }[]> = {};
  for (const [k, ex] of Object.entries(s.examples)) out[k] = ex.map((e) => ({ file: e.file, line: e.line + carry(e.task ?? -1), raw: e.raw }));
  return sortCounts(out);
}

/** The manifest's sources: one entry per input file, in input order. */
export function finalSources(s: PartStats): Record<string, unknown>[] {
  return Object.entries(s.sources)
    .sort((x, y) => Number(x[0]) - Number(y[0]))
    .map(([, v]) => ({ file: v.file, format: v.info.format, release: v.info.release, bytes: v.bytes, missing_columns: v.info.missing ?? [], extra_columns: v.info.extra ?? [], ...v.parse }));
}

// ---- files: stats JSON + the binary fingerprint table beside it

export function fpFileOf(statsFile: string): string {
  return statsFile.replace(/\.json$/, '') + '.fp';
}

export function writeStats(file: string, s: PartStats, fp: FpTable | null): void {
  const out = { ...s };
  if (fp) {
    const fpFile = fpFileOf(file);
    const head = Uint32Array.of(0x46545046, fp.entries.length / 6, fp.drops.length / 3);
    writeFileAtomic(fpFile, [new Uint8Array(head.buffer), new Uint8Array(fp.entries.buffer, fp.entries.byteOffset, fp.entries.byteLength), new Uint8Array(fp.drops.buffer, fp.drops.byteOffset, fp.drops.byteLength)]);
    out.fingerprints = path.basename(fpFile);
  } else delete out.fingerprints;
  writeFileAtomic(file, [JSON.stringify(out) + '\n']);
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Read and check a statistics file (and its fingerprint table). */
export function readStats(file: string): { s: PartStats; fp: FpTable | null } {
  const s = readJsonFile<PartStats>(file, { hint: 'write the statistics again (prep --analyze, merge-stats)' });
  const bad = (what: string) => new UserError(`${file}: ${what}`, 'write the statistics again (prep --analyze, merge-stats)');
  if (!isObj(s) || s.format !== STATS_FORMAT) throw bad(`not flowtensor statistics (format ${JSON.stringify((s as { format?: unknown })?.format)})`);
  if (s.version !== STATS_VERSION) throw bad(`statistics version ${s.version}, this flowtensor reads ${STATS_VERSION}`);
  const F = Array.isArray(s.features) ? s.features.length : 0;
  if (F === 0 || !s.features.every((f) => typeof f === 'string')) throw bad('features is not a list of names');
  if (!Array.isArray(s.labels) || !s.labels.every((l) => typeof l === 'string')) throw bad('labels is not a list of names');
  for (const k of ['min', 'max'] as const) if (!Array.isArray(s[k]) || s[k].length !== F || !s[k].every((v) => v === null || Number.isFinite(v))) throw bad(`${k} is not ${F} numbers`);
  if (!Number.isSafeInteger(s.partitions) || s.partitions < 1 || !Number.isSafeInteger(s.shard_rows) || s.shard_rows < 1) throw bad('partitions or shard_rows is not a positive whole number');
  if (!Array.isArray(s.parts) || !s.parts.every((p) => isObj(p) && Number.isSafeInteger(p.index) && p.index >= 0 && p.index < s.partitions && isObj(p.shards))) throw bad('parts is malformed');
  if (!Array.isArray(s.tasks) || !isObj(s.rows) || !isObj(s.candidates) || !isObj(s.stages) || !isObj(s.examples) || !isObj(s.sources) || !isObj(s.options)) throw bad('a section is missing');
  for (const list of Object.values(s.candidates))
    if (!Array.isArray(list) || !list.every((c) => isObj(c) && typeof c.fp === 'string' && /^[0-9a-f]{16}$/.test(c.fp) && Array.isArray(c.values) && c.values.length === F && isObj(c.locs))) throw bad('candidates are malformed');
  let fp: FpTable | null = null;
  if (s.fingerprints !== undefined) {
    if (typeof s.fingerprints !== 'string' || s.fingerprints.includes('/') || s.fingerprints.includes('\\') || s.fingerprints.startsWith('.')) throw bad('fingerprints names no file beside it');
    const buf = readRegularFile(path.join(path.dirname(file), s.fingerprints), { maxBytes: MAX_BINARY_BYTES, what: 'fingerprint table' });
    const u = new Uint32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength - (buf.byteLength % 4)));
    if (u.length < 3 || u[0] !== 0x46545046 || u.length !== 3 + u[1] * 6 + u[2] * 3) throw bad(`fingerprint table ${s.fingerprints} is damaged`);
    fp = { entries: u.slice(3, 3 + u[1] * 6), drops: u.slice(3 + u[1] * 6) };
  }
  return { s, fp };
}

/** Statistics files and their shards live in DIR/parts/: the shard folder is the one above. */
export function dataDirOf(statsFile: string): string {
  return path.dirname(path.dirname(path.resolve(statsFile)));
}

export const PARTS_DIR = 'parts';
export const partName = (k: number) => `part-${String(k).padStart(5, '0')}`;
export const partStatsFile = (dir: string, k: number) => path.join(dir, PARTS_DIR, `${partName(k)}.stats.json`);

/** Parse "K/N" (0 <= K < N). */
export function parsePartition(s: string): { k: number; n: number } {
  const m = /^(\d{1,6})\/(\d{1,6})$/.exec(String(s).trim());
  const k = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || !(n >= 1) || !(k < n)) throw new UserError(`--partition ${s}: give K/N with 0 <= K < N (e.g. 0/4 for the first of four)`);
  return { k, n };
}

/** Whether a file exists (a statistics or result file written by an earlier try of the same task). */
export const exists = (f: string) => fs.existsSync(f);
