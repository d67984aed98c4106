// `flowtensor prep`: every stage in one process over many files, both passes. The fast path.
// Stages are chained as plain function calls on batches (the same functions their stream
// wrappers call in the stage commands); reading is the only asynchronous step.
import { ensureDir } from './atomic.js';
import fs from 'node:fs';
import { strHash64 } from './hash.js';
import path from 'node:path';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { RejectRecord, HeaderInfo } from '../stages/parse.js';
import { ipFeatureNames } from '../stages/ipsplit.js';
import type { AttemptedPolicy } from '../stages/labels.js';
import { EXAMPLES, type Example } from '../stages/sanitize.js';
import { createFront } from './front.js';
import { processTask, type Packed, type ParseSettings } from './prepfile.js';
import { planTasks, type Task } from './chunks.js';
import type { WorkerInput } from './prepworker.js';
import { createSplit } from '../stages/split.js';
import { GROUP_COLUMNS, type SplitBy } from '../stages/keys.js';
import { ShardWriter, clearShardDir } from '../stages/shard.js';
import { scaleSettings } from '../stages/scale.js';
import { scaleDir } from './transform.js';
import crypto from 'node:crypto';
import { PARTS_DIR, STATS_FORMAT, STATS_VERSION, partName, partStatsFile, writeStats, type FpTable, type PartStats, type SourcePart, type TaskInfo } from './stats.js';
import { addCounts, sortCounts, SPLITS, type Counts } from './batch.js';
import { canonicalHeader, detectFormat, loadConfig, modelColumns, packageVersion, type DatasetConfig, type SanitizePolicy } from './config.js';
import { describeReleases, detectLayout, misreadError, missingModelColumns, readHeaderLine, type InputLayout } from './releases.js';
import { expandInputs } from './inputs.js';
import { rejectSink } from './rejects.js';
import { PASS1, type Manifest, type ScalerMethod } from './manifest.js';
import { Progress, silentLogger, type Logger } from './log.js';
import { UserError, errorFrom, shiftedRowError, workerExecArgv, type ErrorData } from './errors.js';
import { withDirLock } from './lock.js';

export interface PrepOptions {
  out: string;
  inputs: string[];
  /** Data-set config; default: detected from the inputs' headers (cicids2017 when nothing else matches). */
  config?: string;
  /** Accept inputs of more than one release (recorded); by default prep refuses to mix them. */
  allowMixedReleases?: boolean;
  /** Accept inputs that lack model columns (zero-filled, counted, recorded); by default refused. */
  allowMissingFeatures?: boolean;
  /** How rows are assigned to splits (stages/keys.ts, stages/split.ts); default hash. */
  splitBy?: SplitBy;
  /** --split-by file: input files (globs on the name or path) that go to test whole. */
  testFiles?: string[];
  dropIdentifiers?: boolean;
  dedupe?: boolean;
  strict?: boolean;
  /** Quoted fields may span lines (RFC 4180); off: a quote left open at the end of its line quarantines that row. */
  multilineQuotes?: boolean;
  /** Write quarantined rows here instead of OUT/rejects.ndjson. */
  rejects?: string;
  allowNewLabels?: boolean;
  attempted?: AttemptedPolicy;
  ratios?: { train: number; val: number; test: number };
  shardRows?: number;
  batchSize?: number;
  log1p?: boolean;
  /** Scaler fitted on train in pass 2 (default: the config's scale.method). */
  scaler?: ScalerMethod;
  clip?: boolean;
  sanitize?: Partial<SanitizePolicy>;
  maxLineBytes?: number;
  delimiter?: string;
  logger?: Logger;
  progress?: boolean;
  /** Parser threads: 0 parses in the main thread; default 0 under 16 MiB of input, else 1 (at most 1 with allowNewLabels). */
  workers?: number;
  /** The main thread parses a share of the chunks too (default): with one worker ~35% faster, ~80 MB more peak memory (docs/BENCHMARKS.md). */
  mainParses?: boolean;
  /** Byte size of the line-aligned ranges workers parse (default 8 MiB). */
  chunkBytes?: number;
  /** Tests only: workers wait this long before each task, so that the main thread parses tasks ahead of their turn. */
  testWorkerDelayMs?: number;
  /** Shard files: safetensors (default) or Parquet (src/parquet.ts). */
  format?: 'safetensors' | 'parquet';
}

function parseSettings(o: PrepOptions): ParseSettings {
  return { batchSize: o.batchSize, strict: o.strict, maxLineBytes: o.maxLineBytes, delimiter: o.delimiter, multilineQuotes: o.multilineQuotes };
}

interface WorkerResult {
  counts: Record<string, Counts>;
  vocab: string[];
  /** sanitize's examples, tagged with their task (line numbers local to it) */
  examples: Record<string, Example[]>;
}

interface WorkerHooks {
  consume(t: Task, p: Packed, bytesIn: number): void;
  taskDone(t: Task, res: { parse: Counts; bytes: number; newlines: number }): void;
  onHeader(t: Task, h: HeaderInfo): void;
  onReject(t: Task, r: RejectRecord): void;
  onNewLabel(t: Task, label: string, file: string, line: number): void;
  onReplace(t: Task, file: string, line: number, col: string, kind: string, raw: string): void;
  /** Lines before task t in its file (a chunk's local line + this = the file's line); known once the tasks before it are consumed. */
  lineOffset(t: Task): number;
}

type WorkerMsg =
  | { type: 'header'; index: number; h: HeaderInfo }
  | { type: 'batch'; index: number; p: Packed; bytesIn: number }
  | { type: 'reject'; index: number; r: RejectRecord }
  | { type: 'newlabel'; index: number; label: string; file: string; line: number }
  | { type: 'replace'; index: number; file: string; line: number; col: string; kind: string; raw: string }
  | { type: 'task'; index: number; parse: Counts; bytes: number; newlines: number }
  | ({ type: 'done' } & WorkerResult)
  | ({ type: 'error'; index: number } & ErrorData)
  /** this thread's own parse of a task ahead of its turn failed: thrown when the task's turn comes */
  | { type: 'failed'; index: number; err: unknown };

/** One message of task t (a worker's, or this thread's own parse's) through the hooks; true at the task's end. An error about a row names the file's line. */
function handleMessage(hooks: WorkerHooks, t: Task, m: WorkerMsg): boolean {
  if (m.type === 'error') throw shiftedRowError(errorFrom(m), hooks.lineOffset(t));
  if (m.type === 'failed') throw shiftedRowError(m.err, hooks.lineOffset(t));
  if (m.type === 'header') hooks.onHeader(t, m.h);
  else if (m.type === 'reject') hooks.onReject(t, m.r);
  else if (m.type === 'newlabel') hooks.onNewLabel(t, m.label, m.file, m.line);
  else if (m.type === 'replace') hooks.onReplace(t, m.file, m.line, m.col, m.kind, m.raw);
  else if (m.type === 'batch') hooks.consume(t, m.p, m.bytesIn);
  else if (m.type === 'task') {
    hooks.taskDone(t, m);
    return true;
  }
  return false;
}

/** Task t parsed and consumed on this thread, as it goes: its messages through the hooks; a failure about a row names the file's line. */
async function parseNow(hooks: WorkerHooks, t: Task, local: (t: Task, emit: (m: WorkerMsg) => void) => Promise<void>): Promise<void> {
  try {
    await local(t, (m) => void handleMessage(hooks, t, m));
  } catch (e) {
    throw shiftedRowError(e, hooks.lineOffset(t));
  }
}

/**
 * Tasks go to the W workers and, with `local`, to this thread too; this thread consumes them strictly in
 * task order, so the output is byte-identical to the in-process path whatever the timing.
 * Without `local`: dealt in a fixed pattern. With it: claimed as they come (a shared counter): each worker
 * takes the next unclaimed task when it is free, and this thread takes the one it must consume next when
 * no worker has (it starts with the first, while the workers start), parsing and consuming it as it goes;
 * when the task it must consume next is a worker's and not ready yet, it takes the next unclaimed task if
 * that is a plain byte range of at most AHEAD_BYTES, and parses it into a buffer of the messages a worker
 * would have sent, replayed when its turn comes (at most AHEAD wait; a failure there is thrown in its
 * turn too, so the first error in input order is the one reported). This thread also assigns splits,
 * writes every row and gathers the train statistics, so its share follows from how fast each side is on
 * this machine and these options (a fixed share was right for one of them only).
 */
async function runWorkers(W: number, tasks: Task[], base: Omit<WorkerInput, 'tasks'>, hooks: WorkerHooks, workers: Worker[], local?: (t: Task, emit: (m: WorkerMsg) => void) => Promise<void>, share: { main: number; ahead: number; aheadTasks?: number[] } = { main: 0, ahead: 0 }): Promise<WorkerResult[]> {
  const url = new URL('./prepworker.js', import.meta.url);
  const n = tasks.length;
  // claims: [0] the next unclaimed task (a position in `tasks`), [1 + q] who took task q (worker w: w + 1, this thread: W + 1)
  const claims = local ? new Int32Array(new SharedArrayBuffer(4 * (1 + n))) : null;
  const MAIN = W + 1;
  const queues: WorkerMsg[][] = [];
  const waiters: ((() => void) | null)[] = [];
  for (let w = 0; w < W; w++) {
    const mine = claims ? tasks : tasks.filter((_, q) => q % W === w);
    const wk = new Worker(url, { workerData: { ...base, tasks: mine, ...(claims ? { claims: claims.buffer as SharedArrayBuffer, id: w } : {}) } satisfies WorkerInput, execArgv: workerExecArgv(), resourceLimits: WORKER_LIMITS });
    queues.push([]);
    waiters.push(null);
    const push = (m: WorkerMsg) => {
      queues[w].push(m);
      const wake = waiters[w];
      waiters[w] = null;
      wake?.();
    };
    wk.on('message', push);
    wk.on('error', (e) => push({ type: 'error', index: -1, user: false, message: e.message, stack: e.stack }));
    wk.on('exit', (code) => {
      if (code !== 0) push({ type: 'error', index: -1, user: false, message: `parser worker exited with code ${code}` });
    });
    workers.push(wk);
  }
  const next = async (w: number): Promise<WorkerMsg> => {
    while (queues[w].length === 0) await new Promise<void>((r) => (waiters[w] = r));
    return queues[w].shift()!;
  };
  const handle = (t: Task, m: WorkerMsg) => handleMessage(hooks, t, m);
  // this thread's tasks, parsed ahead of their turn: position -> the messages
  const ahead = new Map<number, WorkerMsg[]>();
  /** Task q, claimed by this thread: parsed and consumed as it goes (its turn), or into a buffer (ahead). */
  const parseHere = async (q: number, now: boolean): Promise<void> => {
    Atomics.store(claims!, 1 + q, MAIN);
    share.main++;
    const t = tasks[q];
    if (now) return parseNow(hooks, t, local!);
    share.ahead++;
    if (share.aheadTasks && share.aheadTasks.length < 20) share.aheadTasks.push(t.index);
    const out: WorkerMsg[] = [];
    try {
      await local!(t, (m) => void out.push(m));
    } catch (e) {
      out.push({ type: 'failed', index: t.index, err: e });
    }
    ahead.set(q, out);
  };
  try {
    for (let q = 0; q < n; q++) {
      const t = tasks[q];
      for (;;) {
        const who = claims ? Atomics.load(claims, 1 + q) : 1 + (q % W);
        if (who === MAIN) {
          const msgs = ahead.get(q);
          if (msgs) {
            ahead.delete(q);
            for (const m of msgs) handle(t, m);
          }
          break;
        }
        if (who === 0) {
          // (the tests' slow worker: this thread leaves the tasks after the first to it until it has
          // claimed one, however late it starts, so that parsing ahead is what the test sees)
          if (base.delayMs && q > 0 && !claims!.subarray(1).some((c) => c > 0 && c !== MAIN)) {
            await new Promise<void>((r) => setTimeout(r, 1));
            continue;
          }
          // not claimed yet: this thread takes it if no worker has; else a worker is writing its claim
          if (Atomics.compareExchange(claims!, 0, q, q + 1) === q) {
            await parseHere(q, true);
            break;
          }
          await new Promise<void>((r) => setImmediate(r));
          continue;
        }
        const w = who - 1;
        // the worker's rows are not here yet: parse a later task meanwhile, if it is a small plain range
        if (claims && queues[w].length === 0 && ahead.size < AHEAD) {
          const u = Atomics.load(claims, 0);
          const b = u < n ? tasks[u].plainBytes : -1;
          if (b >= 0 && b <= AHEAD_BYTES && Atomics.compareExchange(claims, 0, u, u + 1) === u) {
            await parseHere(u, false);
            continue;
          }
        }
        const m = await next(w);
        const done = handle(t, m);
        // the credit carries the batch's arrays back (consumed: the writer copied the rows)
        if (m.type === 'batch') workers[w].postMessage({ type: 'credit', x: m.p.x, hash: m.p.hash }, [m.p.x.buffer, m.p.hash.buffer] as ArrayBuffer[]);
        if (done) break;
      }
    }
    const results: WorkerResult[] = [];
    for (let w = 0; w < W; w++) {
      for (;;) {
        const m = await next(w);
        if (m.type === 'error') throw errorFrom(m);
        if (m.type === 'done') {
          results.push(m);
          break;
        }
      }
    }
    return results;
  } catch (e) {
    await Promise.all(workers.map((wk) => wk.terminate()));
    workers.length = 0;
    throw e;
  }
}

export interface FeatureSpec {
  /** Model columns after filter (IP columns unexpanded). */
  columns: string[];
  /** Final feature names after ipsplit, in shard order. */
  features: string[];
}

export function featureSpec(cfg: DatasetConfig, columns: string[]): FeatureSpec {
  const ip = new Set(cfg.ip_columns);
  const features: string[] = [];
  for (const c of columns) {
    if (ip.has(c)) features.push(...ipFeatureNames(c));
    else features.push(c);
  }
  return { columns, features };
}

/** Tasks the main thread may hold parsed ahead of their turn, and the largest it takes (plain byte ranges only: a gzip file or a multi-line-quotes file is one task of unknown size). */
const AHEAD = 2;
const AHEAD_BYTES = 16 << 20;
/** Packed batches a worker may run ahead of the main thread (~1 MB each): two of its tasks in a row fit. */
const CREDITS = 16;

/** Worker heaps: small young generation (batches die young) keeps RSS flat; measured in docs/BENCHMARKS.md. */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 64 };

type CheckedLayout = InputLayout & { hasSource: boolean; canonical: string[] };

/**
 * Before any row is read: each input's layout and release from its header, the data-set config (given, or
 * the one every input's layout belongs to), no mixing of releases, no model column left unmapped, the
 * identifiers a group split needs. A pipe's header cannot be read twice: it is checked by `late` when
 * the parser meets it (prep's output is then cleared like after any failure).
 */
export function preflight(files: string[], o: Pick<PrepOptions, 'config' | 'allowMixedReleases' | 'allowMissingFeatures' | 'dropIdentifiers' | 'delimiter' | 'splitBy'>, log: Logger): { cfg: DatasetConfig; layouts: CheckedLayout[]; late: (h: HeaderInfo) => void } {
  const found = files
    .filter((file) => fs.statSync(file).isFile())
    .map((file) => {
      const raw = readHeaderLine(file, o.delimiter);
      return { file, raw, layout: detectLayout(raw) };
    });
  let cfgName = o.config;
  if (!cfgName) {
    const names = [...new Set(found.map((f) => f.layout?.config).filter((c): c is string => !!c))];
    if (names.length > 1)
      throw new UserError(
        `inputs belong to different data sets: ${names.map((n) => `${n} (${found.filter((f) => f.layout?.config === n).map((f) => path.basename(f.file)).slice(0, 3).join(', ')})`).join('; ')}`,
        'prepare each data set into its own shard folder',
      );
    cfgName = names[0] ?? 'cicids2017';
    if (names.length === 1 && cfgName !== 'cicids2017') log.info({ config: cfgName }, `data set detected from the headers: ${cfgName}`);
  }
  const cfg = loadConfig(cfgName);
  const columns = modelColumns(cfg, { dropIdentifiers: o.dropIdentifiers });
  const known = new Set(cfg.columns);
  const by = o.splitBy ?? 'hash';
  const layouts: CheckedLayout[] = [];
  /** This config's view of one header; null when it is no CICFlowMeter header at all (the parser says why). */
  const view = (file: string, raw: string[]): CheckedLayout | null => {
    const canonical = canonicalHeader(raw, cfg);
    const k = canonical.filter((c) => known.has(c)).length;
    if (k < 8) return null;
    const misread = misreadError(path.basename(file), raw, cfg, k);
    if (misread) throw misread;
    const format = detectFormat(raw, canonical, cfg);
    return { file, config: cfg.name, format, release: cfg.formats[format]?.release ?? cfg.name, known: k, missing: missingModelColumns(canonical, columns, cfg), hasSource: canonical.includes('source_ip'), canonical };
  };
  /** The checks over the inputs seen so far. */
  const check = (all: CheckedLayout[], warn: boolean): void => {
    // a group split needs the identifiers it groups on, in every file
    if (by === 'connection' || by === 'host') {
      const need = GROUP_COLUMNS[by];
      const bad = all.filter((l) => need.some((c) => !l.canonical.includes(c)) && !(by === 'connection' && l.canonical.includes('flow_id')));
      if (bad.length)
        throw new UserError(
          `--split-by ${by} needs ${need.join(', ')}${by === 'connection' ? ' (or Flow ID)' : ''} in every input; ${bad.map((l) => `${path.basename(l.file)} (${l.format})`).slice(0, 3).join(', ')}${bad.length > 3 ? ', …' : ''} ha${bad.length === 1 ? 's' : 've'} none`,
          'use --split-by hash or file for layouts without identifiers (MachineLearningCVE, the 80-column CICFlowMeter-V4 files)',
        );
    }
    const releases = new Set(all.map((l) => l.release));
    if (releases.size > 1) {
      const what = describeReleases(all, (f) => path.basename(f));
      if (!o.allowMixedReleases)
        throw new UserError(`inputs mix releases whose features differ in meaning: ${what}`, 'prepare each release into its own shard folder, or add --allow-mixed-releases (recorded in the manifest)');
      if (warn) log.warn({ releases: [...releases] }, `mixing releases (--allow-mixed-releases): ${what}`);
    }
    const lacking = all.filter((l) => l.missing.length > 0);
    if (lacking.length > 0) {
      const first = lacking[0];
      const what = `${path.basename(first.file)} (${first.format}) lacks model columns ${first.missing.join(', ')}${lacking.length > 1 ? ` (and ${lacking.length - 1} more file${lacking.length > 2 ? 's' : ''})` : ''}`;
      const idsOnly = lacking.every((l) => l.missing.every((c) => cfg.identifier_columns.includes(c)));
      if (!o.allowMissingFeatures)
        throw new UserError(`${what}: they would be zero-filled`, `${idsOnly ? 'add --drop-identifiers (the missing columns are identifiers), or ' : ''}add --allow-missing-features to zero-fill them (counted and recorded)`);
      if (warn) log.warn({ files: lacking.map((l) => ({ file: l.file, missing: l.missing })) }, `${what}: zero-filled (--allow-missing-features)`);
    }
  };
  for (const { file, raw } of found) {
    const l = view(file, raw);
    if (l) layouts.push(l);
  }
  check(layouts, true);
  const checked = new Set(found.map((f) => f.file));
  const late = (h: HeaderInfo) => {
    if (checked.has(h.file)) return;
    checked.add(h.file);
    const l = view(h.file, h.raw);
    if (!l) return;
    layouts.push(l);
    check(layouts, true);
  };
  return { cfg, layouts, late };
}

/** A shell-style glob (`*`, `?`, `**`) as a regular expression over a whole name or path. */
export function globRegex(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * --split-by file: whole files to splits. Files matching a --test-files glob go to test; the others are
 * taken in the order of a hash of their name (independent of the command line) and cut by the ratios
 * on their byte sizes (a file goes where the middle of its bytes falls).
 */
export function assignFiles(files: string[], ratios: { train: number; val: number; test: number }, testGlobs: string[], log: Logger): Map<string, number> {
  const res = testGlobs.map(globRegex);
  const isTest = (f: string) => res.some((r) => r.test(path.basename(f)) || r.test(f));
  const out = new Map<string, number>();
  const rest = files.filter((f) => {
    if (testGlobs.length && isTest(f)) {
      out.set(f, 2);
      return false;
    }
    return true;
  });
  if (testGlobs.length && out.size === 0) throw new UserError(`--test-files ${testGlobs.join(' ')}: matches none of the ${files.length} inputs`);
  const r = testGlobs.length ? { train: ratios.train, val: ratios.val, test: 0 } : ratios;
  const total = r.train + r.val + r.test;
  const key = (f: string) => {
    const h = new Uint32Array(2);
    strHash64(path.basename(f), h, 0);
    return h[0] * 2 ** 32 + h[1];
  };
  const ordered = [...rest].sort((a, b) => key(a) - key(b) || (a < b ? -1 : 1));
  const bytes = ordered.map((f) => fs.statSync(f).size);
  const all = bytes.reduce((a, b) => a + b, 0) || 1;
  let acc = 0;
  ordered.forEach((f, k) => {
    const mid = (acc + bytes[k] / 2) / all;
    acc += bytes[k];
    out.set(f, mid < r.train / total ? 0 : mid < (r.train + r.val) / total ? 1 : 2);
  });
  const by = SPLITS.map((_, s) => files.filter((f) => out.get(f) === s).map((f) => path.basename(f)));
  log.info({ train: by[0], val: by[1], test: by[2] }, '--split-by file: files assigned to splits');
  if (by[0].length === 0) throw new UserError(`--split-by file: no input file falls in train (${files.length} files)`, 'give more files, or other --ratios / --test-files');
  for (const s of [1, 2]) if (by[s].length === 0 && [r.train, r.val, r.test][s] > 0) log.warn({ split: SPLITS[s], files: files.length }, `--split-by file: no input file falls in ${SPLITS[s]} (${files.length} file${files.length === 1 ? '' : 's'}): it stays empty`);
  return out;
}

/** How the input is cut: line-aligned byte ranges (src/chunks.ts), grouped into N contiguous partitions. */
export interface InputPlan {
  tasks: Task[];
  /** partition of each task */
  partOf: number[];
  n: number;
  chunkBytes: number;
}

/**
 * The ranges, and which partition each belongs to (a range goes where the middle of its bytes falls, so
 * partitions are contiguous and about equal in bytes; with fewer ranges than partitions some are empty).
 * One partition keeps 8 MiB ranges (prep's threads); several cut each into about two ranges.
 */
export function planInput(files: string[], n: number, o: { chunkBytes?: number; multilineQuotes?: boolean; threads: boolean }): InputPlan {
  const sizes = files.map((f) => {
    const st = fs.statSync(f);
    return st.isFile() ? st.size : 0;
  });
  const total = sizes.reduce((a, b) => a + b, 0);
  const chunkBytes = o.chunkBytes ?? (n > 1 ? Math.max(64 << 10, Math.min(8 << 20, Math.floor(total / n / 2))) : o.threads ? 8 << 20 : Infinity);
  const tasks = planTasks(files, chunkBytes, o.multilineQuotes);
  const bytesOf = (t: Task) => (t.end < 0 ? sizes[t.fileIndex] : t.end) - t.start;
  let acc = 0;
  const partOf = tasks.map((t) => {
    const b = bytesOf(t);
    const mid = acc + b / 2;
    acc += b;
    return total > 0 ? Math.min(n - 1, Math.floor((n * mid) / total)) : 0;
  });
  return { tasks, partOf, n, chunkBytes };
}

/** One writer per shard folder at a time (src/lock.ts). */
export async function prep(opts: PrepOptions): Promise<Manifest> {
  return withDirLock(opts.out, 'prep', () => prepLocked(opts));
}

/** What every partition of a run shares: inputs, their check, the data-set config, the stages' settings. */
interface RunSetup {
  files: string[];
  duplicates: string[];
  totalBytes: number;
  cfg: DatasetConfig;
  layouts: (InputLayout & { hasSource: boolean; canonical: string[] })[];
  splitBy: SplitBy;
  fileSplit: Map<string, number> | null;
  hostKeys: boolean;
  scaler: ScalerMethod;
  /** a pipe's header, seen only when the parser meets it: the checks files had before any row */
  late: (h: HeaderInfo) => void;
}

function setup(opts: PrepOptions, log: Logger): RunSetup {
  const { files, duplicates, totalBytes } = expandInputs(opts.inputs);
  for (const d of duplicates) log.warn({ file: d }, 'input given twice: read once');
  const { cfg, layouts, late } = preflight(files, opts, log);
  const splitBy = opts.splitBy ?? 'hash';
  const fileSplit = splitBy === 'file' ? assignFiles(files, opts.ratios ?? cfg.split, opts.testFiles ?? [], log) : null;
  // per-host context (the window model) needs the source address; every file with one gets it
  const hostKeys = layouts.some((l) => l.hasSource) || files.some((f) => !fs.statSync(f).isFile()); // a pipe's header is not known yet
  return { files, duplicates, totalBytes, cfg, layouts, late, splitBy, fileSplit, hostKeys, scaler: opts.scaler ?? cfg.scale.method };
}

/** The options that shape the data, as the manifest records them. */
function dataOptions(opts: PrepOptions, r: RunSetup): Record<string, unknown> {
  return {
    config: r.cfg.name,
    releases: [...new Set(r.layouts.map((l) => l.release))].sort(),
    allow_mixed_releases: !!opts.allowMixedReleases,
    allow_missing_features: !!opts.allowMissingFeatures,
    drop_identifiers: !!opts.dropIdentifiers,
    dedupe: !!opts.dedupe,
    strict: !!opts.strict,
    allow_new_labels: !!opts.allowNewLabels,
    attempted: opts.attempted ?? r.cfg.attempted.default_policy,
    ratios: opts.ratios ?? r.cfg.split,
    split_by: r.splitBy,
    ...(r.fileSplit ? { file_splits: Object.fromEntries([...r.fileSplit].map(([f, s]) => [path.basename(f), SPLITS[s]])) } : {}),
    ...(opts.testFiles?.length ? { test_files: opts.testFiles } : {}),
    row_context: r.hostKeys ? 'host' : null,
    log1p: !!opts.log1p,
    scaler: r.scaler,
    shard_format: opts.format ?? 'safetensors',
    inputs: r.files.map((f) => path.basename(f)),
    duplicate_inputs: r.duplicates.length,
  };
}

async function prepLocked(opts: PrepOptions): Promise<Manifest> {
  const log = opts.logger ?? silentLogger;
  const t0 = Date.now();
  const r = setup(opts, log);
  log.info({ files: r.files.length, bytes: r.totalBytes, out: opts.out }, 'prep: start');
  const pool: Worker[] = []; // parse workers, reused for pass 2
  let st: { s: PartStats; fp: FpTable | null };
  try {
    st = await analyzePartition(opts, r, { k: 0, n: 1 }, pool, log);
  } catch (e) {
    await Promise.all(pool.map((wk) => wk.terminate()));
    throw e;
  }
  writeStats(path.join(opts.out, PASS1), st.s, st.fp);
  const rowsDone = SPLITS.reduce((a, sp) => a + st.s.parts[0].shards[sp].reduce((b, sh) => b + sh.rows, 0), 0);
  log.info({ rows: rowsDone, seconds: (Date.now() - t0) / 1000 }, 'pass 1 done: unscaled shards written');

  const progress2 = new Progress('prep pass 2 (scale)', 0, opts.progress ?? process.stderr.isTTY === true, 'shards');
  let manifest: Manifest;
  try {
    manifest = await scaleDir({ dir: opts.out, pool, stats: st, onShard: (_f, done) => progress2.update(done) });
  } catch (e) {
    await Promise.all(pool.map((wk) => wk.terminate())); // first: no worker may write after the clean-up
    clearShardDir(opts.out); // a failed pass 2 leaves no half-scaled folder behind
    throw e;
  }
  await Promise.all(pool.map((wk) => wk.terminate()));
  progress2.done();
  const acc = manifest.accounting;
  if (acc.unaccounted !== 0) log.error({ accounting: acc }, 'row accounting does not add up');
  log.info({ ...acc, train: manifest.splits.train.rows, val: manifest.splits.val.rows, test: manifest.splits.test.rows, seconds: (Date.now() - t0) / 1000, rows_per_s: Math.round(acc.data_rows / ((Date.now() - t0) / 1000)) }, 'prep done');
  if (acc.unaccounted !== 0) throw new Error(`row accounting does not add up: ${JSON.stringify(acc)}`);
  return manifest;
}

/** `prep --analyze --partition K/N`: pass 1 of one partition, its statistics in OUT/parts/ (a rerun replaces them). */
export async function prepAnalyze(opts: PrepOptions & { partition: { k: number; n: number } }): Promise<PartStats> {
  const { k, n } = opts.partition;
  const log = opts.logger ?? silentLogger;
  if (n > 1 && opts.allowNewLabels) throw new UserError('--allow-new-labels needs one partition: new classes are numbered in input order', 'prepare with --partition 0/1 (or plain prep), or add the labels to the config');
  return withDirLock(opts.out, `prep --analyze ${k}/${n}`, async () => {
    const r = setup(opts, log);
    if (n > 1 && opts.dedupe && r.splitBy !== 'hash')
      throw new UserError(`--dedupe with --split-by ${r.splitBy} needs one partition: copies of a row can then lie in different splits, and a train range cannot be merged after a copy leaves it`, 'use --split-by hash, or one partition');
    const pool: Worker[] = [];
    try {
      const st = await analyzePartition(opts, r, { k, n }, pool, log);
      const file = n > 1 ? partStatsFile(opts.out, k) : path.join(opts.out, PASS1);
      ensureDir(path.dirname(file));
      writeStats(file, st.s, st.fp);
      log.info({ partition: `${k}/${n}`, stats: file }, 'partition analysed');
      return st.s;
    } finally {
      await Promise.all(pool.map((wk) => wk.terminate()));
    }
  }, n > 1 ? `.flowtensor-${partName(k)}.lock` : undefined);
}

/** Pass 1 of partition k of n: parse its ranges, write its unscaled shards, gather its statistics. */
async function analyzePartition(opts: PrepOptions, r: RunSetup, part: { k: number; n: number }, pool: Worker[], log: Logger): Promise<{ s: PartStats; fp: FpTable | null }> {
  const { files, cfg, splitBy, fileSplit, hostKeys, scaler } = r;
  const { k, n: N } = part;
  const t0 = Date.now();
  ensureDir(opts.out);
  const rejectsFile = N > 1 ? path.join(opts.out, PARTS_DIR, `${partName(k)}.rejects.ndjson`) : (opts.rejects ?? path.join(opts.out, 'rejects.ndjson'));
  if (N > 1) ensureDir(path.dirname(rejectsFile));
  const rejects = rejectSink(log, { file: rejectsFile, atomic: true });
  const onReject = rejects.onReject;

  const frontOpts = { dropIdentifiers: opts.dropIdentifiers, allowNewLabels: opts.allowNewLabels, attempted: opts.attempted, sanitize: opts.sanitize, splitBy, hostKeys };
  const onNewLabel = (label: string, file: string, line: number) => log.warn({ label, file, line }, 'new label added to the vocabulary');
  const onReplace = log.isLevelEnabled('debug') ? (file: string, line: number, col: string, kind: string, raw: string) => log.debug({ file, line, col, kind, raw }, 'value replaced') : undefined;
  // the main thread's own front: does the work when there are no workers, and names columns and policies;
  // while it parses a chunk of a file itself, its line numbers are shifted by that chunk's offset
  // while this thread parses a task, what its front reports goes into that task's messages (consumed in
  // task order, lines resolved then, as a worker's)
  let sink: { t: Task; emit: (m: WorkerMsg) => void } | null = null;
  const front = createFront({
    cfg,
    ...frontOpts,
    onReject: (x) => sink!.emit({ type: 'reject', index: sink!.t.index, r: x }),
    onNewLabel: (l, f, n) => sink!.emit({ type: 'newlabel', index: sink!.t.index, label: l, file: f, line: n }),
    onReplace: onReplace && ((f, n, c, kind, raw) => sink!.emit({ type: 'replace', index: sink!.t.index, file: f, line: n, col: c, kind, raw })),
  });
  const spec = featureSpec(cfg, front.filter.columns);
  const splitter = createSplit({ ratios: opts.ratios ?? cfg.split, dedupe: opts.dedupe, columns: spec.features, grouped: splitBy !== 'hash' });
  const fingerprints = !!opts.dedupe && N > 1;
  const writer = new ShardWriter({
    dir: opts.out,
    features: spec.features,
    labels: front.labels.vocab,
    shardRows: opts.shardRows,
    logMoments: scaler === 'log-standard',
    hostContext: hostKeys,
    part,
    fingerprints,
    onShard: (s) => log.debug({ shard: s.file, rows: s.rows }, 'shard written (unscaled)'),
  });

  // new labels must get the same index everywhere: one worker then reads every file in order
  const maxWorkers = opts.allowNewLabels ? 1 : Math.max(1, Math.min(os.availableParallelism(), 4));
  const plan = planInput(files, N, { chunkBytes: opts.chunkBytes, multilineQuotes: opts.multilineQuotes, threads: N > 1 || (opts.workers ?? (r.totalBytes > 16 << 20 ? 1 : 0)) > 0 });
  const tasks = plan.tasks.filter((_, i) => plan.partOf[i] === k);
  const bytesOf = (t: Task) => (t.end < 0 ? fs.statSync(t.file).size : t.end) - t.start;
  const myBytes = tasks.reduce((a, t) => a + bytesOf(t), 0);
  // One parse thread beside the main thread (which parses a share too) is the default: on the 2-core
  // reference machine it meets both the speed and the memory target; a second worker (and a second
  // isolate) is no faster on two cores (docs/BENCHMARKS.md has the figures).
  const W = Math.min(opts.workers ?? (myBytes > 16 << 20 ? 1 : 0), maxWorkers);
  const parseTotals: Counts = {};
  let stageTotals: Record<string, Counts> = {};
  let vocab = front.labels.vocab;
  const workerExamples: Record<string, Example[]>[] = [];
  const progress = new Progress(N > 1 ? `prep partition ${k}/${N}` : 'prep pass 1', myBytes, opts.progress);
  let rowsDone = 0;
  let bytesDone = 0;
  const headers = new Map<number, HeaderInfo>();
  const perFile = new Map<number, { parse: Counts; bytes: number; newlines: number; start: number }>();
  const taskInfos: TaskInfo[] = [];
  // line numbers from a chunk are local to it (its first line is local line 2, after the prepended header);
  // a partition that starts inside a file knows only its own share: the merge adds the rest (src/stats.ts)
  const lineOffset = (t: Task) => (t.chunk === 0 ? 0 : (perFile.get(t.fileIndex)?.newlines ?? 0) - 1);
  // each task's line offset, for sanitize's examples (noted with chunk-local lines, resolved at the end)
  const taskOffsets = new Map<number, number>();
  // rows arrive sanitized, as float32 with their fingerprints: the main thread assigns splits (in task
  // order: duplicates) and writes the shards
  let lastFile = -1;
  const consume = (t: Task, p: Packed, bytesIn: number) => {
    if (t.fileIndex !== lastFile) {
      writer.newFile();
      lastFile = t.fileIndex;
    }
    const x = splitter.assignHashed(p.hash, p.n, p.label, p.group, fileSplit?.get(files[t.fileIndex]));
    writer.addRows(p.x, p.n, p.label, x.split, x.keep, p.host, p.hash);
    rowsDone += p.n;
    progress.update(rowsDone, bytesDone + bytesIn);
  };
  const taskDone = (t: Task, res: { parse: Counts; bytes: number; newlines: number }) => {
    taskOffsets.set(t.index, lineOffset(t));
    taskInfos.push({ index: t.index, file: t.fileIndex, chunk: t.chunk, newlines: res.newlines, part: k });
    let f = perFile.get(t.fileIndex);
    if (!f) perFile.set(t.fileIndex, (f = { parse: {}, bytes: 0, newlines: 0, start: Date.now() }));
    addCounts(f.parse, res.parse);
    f.bytes += res.bytes;
    f.newlines += res.newlines;
    bytesDone += res.bytes;
    if (t.end >= 0) return; // more chunks of this file follow
    log.info({ file: files[t.fileIndex], ...f.parse, seconds: (Date.now() - f.start) / 1000, ...(N > 1 ? { partition: k } : {}) }, 'file done');
  };
  const onHeader = (fileIndex: number, h: HeaderInfo) => {
    if (headers.has(fileIndex)) return;
    r.late(h); // a pipe's header, seen only now: the same checks as the files had before any row
    headers.set(fileIndex, h);
    if (!perFile.has(fileIndex)) perFile.set(fileIndex, { parse: {}, bytes: 0, newlines: 0, start: Date.now() });
    log.info({ file: h.file, format: h.format, columns: h.canonical.length, missing: h.missing, extra: h.extra.length ? h.extra : undefined }, 'reading');
  };
  let examples: Record<string, Example[]>;
  let splits: ReturnType<typeof writer.finish>;
  try {
    // a task parsed on this thread: the messages a worker would send for it, handed to emit as they come
    // (the same hooks then consume them, whichever thread parsed the task)
    const local = async (t: Task, emit: (m: WorkerMsg) => void): Promise<void> => {
      sink = { t, emit };
      try {
        const res = await processTask(t, front, spec.features, parseSettings(opts), cfg, {
          header: (h) => emit({ type: 'header', index: t.index, h }),
          reject: (x) => emit({ type: 'reject', index: t.index, r: x }),
          batch: (p, bytesIn) => emit({ type: 'batch', index: t.index, p, bytesIn }),
        });
        emit({ type: 'task', index: t.index, ...res });
      } finally {
        sink = null;
      }
    };
    const hooks: WorkerHooks = {
      consume,
      taskDone,
      onHeader: (t, h) => onHeader(t.fileIndex, h),
      onReject: (t, x) => onReject({ ...x, line: x.line + lineOffset(t) }),
      onNewLabel: (t, label, file, line) => onNewLabel(label, file, line + lineOffset(t)),
      onReplace: (t, file, line, col, kind, raw) => onReplace?.(file, line + lineOffset(t), col, kind, raw),
      lineOffset,
    };
    if (W === 0) for (const t of tasks) await parseNow(hooks, t, local);
    else {
      // the main thread parses a share too unless new labels must be numbered by a single parser
      const mainParses = (opts.mainParses ?? true) && !opts.allowNewLabels && tasks.length > 1;
      log.info({ workers: W, main_thread_parses: mainParses, tasks: tasks.length }, 'parsing in worker threads');
      // tasks this thread parsed, and how many of them ahead of their turn (in a buffer)
      const share = { main: 0, ahead: 0, aheadTasks: [] as number[] };
      const res = await runWorkers(Math.min(W, tasks.length), tasks, { config: cfg.name, front: frontOpts, parse: parseSettings(opts), features: spec.features, credits: CREDITS, logReplaced: !!onReplace, delayMs: opts.testWorkerDelayMs }, hooks, pool, mainParses ? local : undefined, share);
      log.info({ tasks: tasks.length, main_thread: share.main, main_thread_ahead: share.ahead, ahead_tasks: share.aheadTasks }, 'tasks parsed');
      for (const x of res) for (const [key, v] of Object.entries(x.counts)) stageTotals[key] = addCounts(stageTotals[key] ?? {}, v);
      workerExamples.push(...res.map((x) => x.examples));

      if (opts.allowNewLabels && res.length) vocab = res[0].vocab;
    }
    // the main thread's front: its stages' counts for the tasks it parsed
    for (const [key, v] of Object.entries(front.counts())) stageTotals[key] = addCounts(stageTotals[key] ?? {}, v);
    examples = mergeExamples([front.examples(), ...workerExamples], taskOffsets);
    splits = writer.finish(vocab); // the last shards of each split (a full disk can fail them too)
  } catch (e) {
    rejects.abort();
    progress.done();
    writer.abort();
    await Promise.all(pool.map((wk) => wk.terminate()));
    pool.length = 0;
    clearShardDir(opts.out, part); // no partial output survives a failed run
    throw e;
  }
  progress.done();
  rejects.commit(); // rejects.ndjson always exists after a run (empty when nothing was quarantined)
  for (const f of perFile.values()) addCounts(parseTotals, f.parse);
  const sources: Record<string, SourcePart> = {};
  for (const fi of [...perFile.keys()].sort((a, b) => a - b)) {
    const f = perFile.get(fi)!;
    const h = headers.get(fi) ?? r.layouts.find((l) => l.file === files[fi]);
    const hh = h as Partial<HeaderInfo> | undefined;
    sources[fi] = { file: files[fi], info: { format: hh?.format, release: hh?.release, missing: hh?.missing ?? [], extra: hh?.extra ?? [] }, bytes: f.bytes, parse: f.parse };
  }
  const options = dataOptions(opts, r);
  const splitCounts = { deduplicated: splitter.counts.deduplicated, deduplicated_by_class: splitter.counts.deduplicated_by_class } as Counts;
  const s: PartStats = {
    format: STATS_FORMAT,
    version: STATS_VERSION,
    flowtensor_version: packageVersion(),
    dataset: cfg.name,
    features: spec.features,
    labels: vocab,
    shard_rows: writer.shardRows,
    partitions: N,
    plan: planDigest(files, plan, options, spec.features, writer.shardRows),
    parts: [{ index: k, shards: { train: splits.train.shards, val: splits.val.shards, test: splits.test.shards } }],
    tasks: taskInfos.sort((a, b) => a.index - b.index),
    min: Array.from(writer.min, (v) => (Number.isFinite(v) ? v : null)),
    max: Array.from(writer.max, (v) => (Number.isFinite(v) ? v : null)),
    moments: writer.moments?.toJSON(),
    rows: Object.fromEntries(SPLITS.map((sp, si) => [sp, Object.fromEntries([...writer.rows[si]].filter(([, v]) => v > 0).sort((a, b) => a[0] - b[0]))])) as PartStats['rows'],
    candidates: writer.candidates(k),
    stages: sortCounts({ parse: parseTotals, ...stageTotals, split: splitCounts }),
    examples,
    sources,
    ...scaleSettings(cfg, spec.features, (f) => front.sanitize.policyFor(f), !!opts.log1p, scaler),
    clip: opts.clip ?? cfg.scale.clip,
    options,
  };
  log.info({ partition: `${k}/${N}`, rows: rowsDone, seconds: (Date.now() - t0) / 1000 }, N > 1 ? 'partition read' : 'pass 1 read');
  return { s, fp: fingerprints ? { entries: writer.fingerprintTable(k), drops: new Uint32Array(0) } : null };
}

/** What every partition of one run must agree on: the files (and sizes), the cut, the options, the features. */
function planDigest(files: string[], plan: InputPlan, options: Record<string, unknown>, features: string[], shardRows: number): string {
  const sizes = files.map((f) => {
    const st = fs.statSync(f);
    return st.isFile() ? st.size : -1;
  });
  const cut = plan.tasks.map((t, i) => [t.fileIndex, t.start, t.end, plan.partOf[i]]);
  return crypto.createHash('sha256').update(JSON.stringify({ files, sizes, n: plan.n, cut, options, features, shardRows })).digest('hex').slice(0, 32);
}

/**
 * sanitize's examples from every thread, as one list per column and kind: line numbers made true within
 * the partition with each task's offset (the task kept, for the merge), the first EXAMPLES in input
 * order. Each thread noted its first EXAMPLES in its own (increasing) task order, so the first EXAMPLES
 * overall are among them.
 */
export function mergeExamples(lists: Record<string, Example[]>[], taskOffsets: Map<number, number>): Record<string, Example[]> {
  const all: Record<string, Example[]> = {};
  for (const list of lists) for (const [key, ex] of Object.entries(list)) (all[key] ??= []).push(...ex);
  const out: Record<string, Example[]> = {};
  for (const key of Object.keys(all).sort()) {
    const sorted = all[key]
      .map((e) => ({ ...e, line: e.line + (taskOffsets.get(e.task ?? -1) ?? 0) }))
      .sort((a, b) => (a.task ?? 0) - (b.task ?? 0) || a.line - b.line);
    out[key] = sorted.slice(0, EXAMPLES).map(({ file, line, raw, task }) => ({ file, line, raw, task: task ?? 0 }));
  }
  return out;
}

export { accountingOf } from './transform.js';
