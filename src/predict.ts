// `flowtensor predict`: score new flows with exactly the preprocessing a run was trained with:
// parse -> filter -> ipsplit -> sanitize -> the run's saved scaler (never refitted) -> model.
// One output line per data row, or one quarantine record; memory stays flat on an endless stdin.
import type { Readable, Writable } from 'node:stream';
import { CsvBatchParser, type HeaderInfo } from '../stages/parse.js';
import { missingModelColumns } from './releases.js';
import { createFilter } from '../stages/filter.js';
import { createKeys } from '../stages/keys.js';
import { createIpSplit } from '../stages/ipsplit.js';
import { createLabels } from '../stages/labels.js';
import { createSanitize } from '../stages/sanitize.js';
import { toRowMajor } from '../stages/split.js';
import { applyScaler } from '../stages/scale.js';
import { featureSpec } from './prep.js';
import { loadConfig } from './config.js';
import { initBackend, type BackendName } from './backend.js';
import { loadFused } from './train.js';
import { predictProbs, type ModelSpec } from './models.js';
import { OnnxScorer } from './onnxengine.js';
import { Confusion, type Report } from './metrics.js';
import { openInput, describeReadError, plainBytes } from './inputs.js';
import { UserError, workerExecArgv } from './errors.js';
import { rejectSink } from './rejects.js';
import { writeText } from './output.js';
import { readRunInfo } from './runfiles.js';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { silentLogger, Progress, type Logger } from './log.js';
import type { Batch, Counts } from './batch.js';

export interface PredictOptions {
  model: string;
  /** Files; empty reads `input` (stdin). */
  inputs: string[];
  input?: Readable;
  output: Writable;
  format?: 'ndjson' | 'csv';
  batchSize?: number;
  backend?: BackendName | 'auto';
  rejects?: string;
  /** Quoted fields may span lines (RFC 4180); off by default. */
  multilineQuotes?: boolean;
  logger?: Logger;
  progress?: boolean;
  /** 2 (default): a worker thread scores every other batch; 1: this thread only. */
  threads?: number;
  /** Score inputs whose header lacks model columns (zero-filled, counted in the summary). */
  allowMissingFeatures?: boolean;
  /** wasm (default): tfjs with the WebAssembly LSTM kernel; onnx: onnxruntime-node (optional dependency). */
  engine?: PredictEngine;
  /**
   * A stream (stdin, a pipe, a FIFO) quiet for this many ms has the rows it sent so far scored and
   * printed, without waiting for a full batch (default 200; 0: only full batches and the end). Regular
   * files are read at full speed and never wait.
   */
  flushMs?: number;
}

export const PREDICT_ENGINES = ['wasm', 'onnx'] as const;
export type PredictEngine = (typeof PREDICT_ENGINES)[number];

const IDLE = Symbol('idle');
/** `p`, or IDLE when it takes longer than `ms` (the timer cleared either way). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof IDLE> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<typeof IDLE>((res) => (timer = setTimeout(res, ms, IDLE)))]);
  } finally {
    clearTimeout(timer);
  }
}
const isRegularFile = (f: string) => {
  if (f === '-') return false;
  try {
    return fs.statSync(f).isFile();
  } catch {
    return false;
  }
};

/** Start the predict worker and wait until its model is loaded. */
async function startHelper(model: string, spec: ModelSpec, backend: BackendName | 'auto', engine: PredictEngine): Promise<Worker> {
  const w = new Worker(new URL('./predictworker.js', import.meta.url), { workerData: { model, spec, backend, engine }, execArgv: workerExecArgv() });
  await new Promise<void>((res, rej) => {
    const onMsg = (m: { ready?: boolean; error?: string }) => {
      w.off('message', onMsg);
      if (m.ready) res();
      else rej(new Error(`predict worker: ${m.error}`));
    };
    w.on('message', onMsg);
    w.once('error', rej);
  });
  return w;
}

export interface PredictSummary {
  rows_in: number;
  rows_scored: number;
  quarantined: number;
  blank_rows: number;
  header_rows: number;
  /** window models: hosts whose context was dropped to stay within MAX_HOSTS */
  hosts_forgotten: number;
  unknown_labels: Record<string, number>;
  clipped: Record<string, number>;
  replaced: Counts;
  report?: Report;
  /** Inputs whose release differs from the one the run was trained on (scores there are not to be trusted). */
  release_mismatch: { file: string; release: string; run_releases: string[] }[];
  /** Inputs scored with model columns zero-filled (--allow-missing-features). */
  missing_features: { file: string; missing: string[] }[];
  seconds: number;
  flows_per_s: number;
}

const ID_COLUMNS = ['flow_id', 'source_ip', 'source_port', 'destination_ip', 'destination_port', 'protocol', 'timestamp'];
const CSV_COLUMNS = ['file', 'line', ...ID_COLUMNS, 'predicted', 'probability', 'top2', 'p2', 'top3', 'p3', 'label'];

/** Hosts whose last flows predict keeps for window models; beyond, the least recently seen is forgotten (counted). */
export const MAX_HOSTS = 32768;

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export async function predict(o: PredictOptions): Promise<PredictSummary> {
  const log = o.logger ?? silentLogger;
  const run = readRunInfo(o.model); // checked: settings, features, classes, scaler (src/runfiles.ts)
  const cfg = loadConfig(run.dataset ?? 'cicids2017');
  const filter = createFilter({ cfg, dropIdentifiers: !!run.shards_manifest?.options?.drop_identifiers });
  const spec = featureSpec(cfg, filter.columns);
  if (JSON.stringify(spec.features) !== JSON.stringify(run.features)) throw new UserError(`${o.model}: the run's features do not match what this flowtensor computes`, 'predict with the flowtensor version and config the run was trained with');
  const ipsplit = createIpSplit(cfg.ip_columns);
  // windows of a run trained on per-host context follow each source host; older runs: the stream's last rows
  const hostContext = run.config.model === 'window' && run.window_context !== 'rows' && run.window_context !== undefined;
  const keys = createKeys({ host: hostContext });
  // every quarantined row is logged (predict promises one output line or one quarantine record per row)
  const rejects = rejectSink(log, { file: o.rejects, logLimit: Infinity });
  const onReject = rejects.onReject;
  const sanitize = createSanitize({ cfg, policy: { nan: 'zero', empty: 'zero', text: 'zero', posinf: 'train_max', neginf: 'train_min' }, onReject });
  const labels = createLabels({ cfg, vocab: run.labels });
  const ms: ModelSpec = { kind: run.config.model, features: run.features.length, classes: run.labels.length, units: run.config.units, project: run.config.project, window: run.config.window, seed: run.config.seed };
  const engine = o.engine ?? 'wasm';
  const onnx = engine === 'onnx' ? await OnnxScorer.create(o.model, ms) : null;
  if (onnx) log.info({ engine }, 'scoring on onnxruntime-node');
  const tf = onnx ? null : (await initBackend(o.backend ?? 'auto', log)).tf;
  const model = tf ? await loadFused(tf, o.model, ms) : null;
  const F = ms.features;
  const C = ms.classes;
  const W = ms.kind === 'window' ? ms.window : 1;
  const B = o.batchSize ?? 1024;
  const fmt = o.format ?? 'ndjson';
  const out = o.output;
  const conf = new Confusion(run.labels);
  let labelled = 0;
  const unknown: Record<string, number> = {};
  const clipped: Record<string, number> = {};
  const totals = { rows_in: 0, rows_scored: 0, blank_rows: 0, header_rows: 0, hosts_forgotten: 0 };
  const t0 = performance.now();
  // a total (and so an ETA) when every input is a plain file; streams and .gz show rows and rows/s only
  const progress = new Progress('predict', plainBytes(o.inputs), o.progress);
  let bytesBefore = 0;
  if (fmt === 'csv') await writeText(out, CSV_COLUMNS.join(',') + '\n');

  const write = async (s: string) => writeText(out, s); // rejects when the output fails (a full disk)

  interface Prepared {
    b: Batch;
    ids: (ArrayLike<unknown> | undefined)[];
    rawLabels: (string | undefined)[] | undefined;
    input: Float32Array;
  }

  /** The run's preprocessing, unchanged: filter, ipsplit, sanitize, the saved scaler, window context. */
  function prepare(b: Batch, context: { rows: Float32Array | null; hosts: Map<number, Float32Array> }): Prepared {
    // identifiers and labels as given, before the model's stages drop them
    const ids = ID_COLUMNS.map((c) => b.str.get(c) ?? b.num.get(c));
    const rawLabels = b.str.get('label') ?? b.str.get('attack_type');
    const keyed = keys.apply(b);
    const host = keyed.keys?.host;
    let x = filter.apply(keyed);
    x = ipsplit.apply(x);
    x = sanitize.apply(x);
    if (x.n !== b.n) throw new Error('predict: sanitize dropped rows; only the zero policies are used here');
    const rows = toRowMajor(x, run.features);
    applyScaler(rows, F, run.scaler, { clipped }, run.features);
    let input = rows;
    if (W > 1 && hostContext) {
      // each row after its host's last W-1 flows in this input (as the trainer's windows); zeros before
      // a host's first flows and for rows without a source address
      input = new Float32Array(b.n * W * F);
      const ctxLen = (W - 1) * F;
      for (let i = 0; i < b.n; i++) {
        const at = i * W * F;
        const h = host ? host[i] : 0;
        const row = rows.subarray(i * F, (i + 1) * F);
        input.set(row, at + ctxLen);
        if (h === 0) continue;
        let ctx = context.hosts.get(h);
        if (ctx) {
          input.set(ctx, at);
          context.hosts.delete(h); // re-inserted below: the map's order is least recently seen first
        } else {
          ctx = new Float32Array(ctxLen);
          if (context.hosts.size >= MAX_HOSTS) {
            const oldest = context.hosts.keys().next().value as number;
            ctx = context.hosts.get(oldest)!.fill(0);
            context.hosts.delete(oldest);
            totals.hosts_forgotten++;
          }
        }
        ctx.copyWithin(0, F);
        ctx.set(row, ctxLen - F);
        context.hosts.set(h, ctx);
      }
    } else if (W > 1) {
      // windows of the last W flows of this stream; before its first flows, zeros
      const prev = context.rows ?? new Float32Array((W - 1) * F);
      const all = new Float32Array((W - 1 + b.n) * F);
      all.set(prev, 0);
      all.set(rows, (W - 1) * F);
      input = new Float32Array(b.n * W * F);
      for (let i = 0; i < b.n; i++) input.set(all.subarray(i * F, (i + W) * F), i * W * F);
      context.rows = all.slice(b.n * F);
    }
    return { b, ids, rawLabels, input };
  }

  const inferHere = (p: Prepared) => (onnx ? onnx.probs(p.input, p.b.n) : predictProbs(tf!, model!, ms, p.input, p.b.n));

  async function emit(p: Prepared, probs: Float32Array): Promise<void> {
    const { b, ids, rawLabels } = p;
    const lines: string[] = [];
    const yTrue: number[] = [];
    const yPred: number[] = [];
    for (let i = 0; i < b.n; i++) {
      const order = [0, 1, 2].map(() => -1);
      for (let c = 0; c < C; c++) {
        const p = probs[i * C + c];
        for (let r = 0; r < 3; r++) {
          if (order[r] < 0 || p > probs[i * C + order[r]]) {
            order.splice(r, 0, c);
            order.length = 3;
            break;
          }
        }
      }
      const top = order.filter((c) => c >= 0);
      let trueLabel: string | null = null;
      let known = true;
      const raw = rawLabels?.[i];
      if (raw !== undefined && unknown[raw] !== undefined) {
        // known to be unknown: resolve() would build and throw the same error again for every row
        known = false;
        unknown[raw]++;
      } else if (raw !== undefined) {
        try {
          const id = labels.resolve(raw, b.format, b.file, b.line[i]);
          trueLabel = id >= 0 ? run.labels[id] : null;
          if (id >= 0) {
            yTrue.push(id);
            yPred.push(top[0]);
          }
        } catch {
          known = false;
          unknown[raw] = (unknown[raw] ?? 0) + 1;
        }
      }
      const idv = ID_COLUMNS.map((_, k) => ids[k]?.[i]);
      if (fmt === 'csv') {
        lines.push([b.file, b.line[i], ...idv, run.labels[top[0]], probs[i * C + top[0]].toFixed(6), run.labels[top[1]] ?? '', top[1] >= 0 ? probs[i * C + top[1]].toFixed(6) : '', run.labels[top[2]] ?? '', top[2] >= 0 ? probs[i * C + top[2]].toFixed(6) : '', trueLabel ?? (known ? '' : raw)].map(csvCell).join(','));
      } else {
        const rec: Record<string, unknown> = { file: b.file, line: b.line[i] };
        ID_COLUMNS.forEach((c, k) => {
          if (idv[k] !== undefined && !(typeof idv[k] === 'number' && Number.isNaN(idv[k]))) rec[c] = idv[k];
        });
        rec.predicted = run.labels[top[0]];
        rec.probability = +probs[i * C + top[0]].toFixed(6);
        rec.top3 = top.map((c) => ({ label: run.labels[c], p: +probs[i * C + c].toFixed(6) }));
        if (raw !== undefined) {
          rec.label = trueLabel;
          if (!known) {
            rec.label_raw = raw;
            rec.label_known = false;
          }
        }
        lines.push(JSON.stringify(rec));
      }
    }
    conf.add(yTrue, yPred);
    labelled += yTrue.length;
    totals.rows_scored += b.n;
    await write(lines.join('\n') + '\n');
  }

  // a second thread holds its own copy of the model: batches are scored in pairs, one here, one there,
  // and written in input order
  const helper = o.threads === 1 ? null : await startHelper(o.model, ms, o.backend ?? 'auto', engine);
  let nextId = 0;
  const waiting = new Map<number, (r: { probs?: Float32Array; error?: string }) => void>();
  helper?.on('message', (m: { id: number; probs?: Float32Array; error?: string }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    w?.(m);
  });
  const inferThere = (p: Prepared) =>
    new Promise<Float32Array>((res, rej) => {
      const id = nextId++;
      waiting.set(id, (r) => (r.error ? rej(new Error(`predict worker: ${r.error}`)) : res(r.probs!)));
      const x = p.input;
      helper!.postMessage({ id, x, n: p.b.n }, [x.buffer as ArrayBuffer]);
    });
  let held: Prepared | null = null;
  const take = async (p: Prepared) => {
    if (!helper) return emit(p, await inferHere(p));
    if (!held) {
      held = p;
      return;
    }
    const first: Prepared = held;
    held = null;
    const there = inferThere(p); // the later batch goes to the helper, the earlier is scored here meanwhile
    await emit(first, await inferHere(first));
    await emit(p, await there);
  };
  const drain = async () => {
    if (held) {
      const p: Prepared = held;
      held = null;
      await emit(p, await inferHere(p));
    }
  };

  // the run's release(s): runs from before releases were recorded have none, and are not checked
  const runReleases = run.shards_manifest?.options?.releases ?? [];
  const releaseMismatch: PredictSummary['release_mismatch'] = [];
  const missingFeatures: PredictSummary['missing_features'] = [];
  const onHeader = (h: HeaderInfo) => {
    const missing = missingModelColumns(h.canonical, filter.columns, cfg);
    if (missing.length > 0) {
      if (!o.allowMissingFeatures)
        throw new UserError(`${h.file}: its header (${h.format}) lacks model columns ${missing.join(', ')}: they would be zero-filled`, 'add --allow-missing-features to score it anyway (the summary says so)');
      missingFeatures.push({ file: h.file, missing });
      log.warn({ file: h.file, format: h.format, missing }, 'model columns missing from the input: zero-filled (--allow-missing-features)');
    }
    if (runReleases.length > 0 && !runReleases.includes(h.release)) {
      releaseMismatch.push({ file: h.file, release: h.release, run_releases: runReleases });
      log.warn({ file: h.file, release: h.release, run_releases: runReleases }, `input is ${h.release}, the run was trained on ${runReleases.join(' + ')}: features differ in meaning, scores are not to be trusted`);
    }
  };
  const sources = o.inputs.length ? o.inputs : ['-'];
  try {
    for (const f of sources) {
      const name = f === '-' ? 'stdin' : f;
      const parser = new CsvBatchParser({ file: name, cfg, want: new Set([...filter.wanted, ...ID_COLUMNS, ...keys.wanted]), requireLabel: false, batchSize: B, multilineQuotes: o.multilineQuotes, onReject, onHeader });
      const context = { rows: null as Float32Array | null, hosts: new Map<number, Float32Array>() };
      const src = f === '-' ? (o.input ?? process.stdin) : openInput(f);
      // a stream that goes quiet gets what it sent scored now (a regular file never pauses)
      const idleMs = o.flushMs ?? 200;
      const streaming = idleMs > 0 && !isRegularFile(f);
      const it = (src as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      try {
        let next = it.next();
        for (;;) {
          let r = streaming ? await within(next, idleMs) : await next;
          if (r === IDLE) {
            for (const b of parser.takePartial()) await take(prepare(b, context));
            await drain();
            r = await next;
          }
          const step = r as IteratorResult<Buffer>;
          if (step.done) break;
          next = it.next();
          for (const b of parser.push(step.value)) await take(prepare(b, context));
          progress.update(totals.rows_scored, bytesBefore + parser.bytesIn);
        }
        for (const b of parser.end()) await take(prepare(b, context));
        await drain();
      } catch (e) {
        await it.return?.().catch(() => undefined); // closes the input, as leaving a for-await loop does
        throw describeReadError(name, e);
      }
      bytesBefore += parser.bytesIn;
      totals.rows_in += parser.counts.data_rows as number;
      totals.blank_rows += parser.counts.blank_rows as number;
      totals.header_rows += parser.counts.header_rows as number;
    }
  } finally {
    progress.done();
    rejects.commit();
    model?.dispose();
    await onnx?.release();
    if (helper) await helper.terminate();
  }
  const seconds = (performance.now() - t0) / 1000;
  const summary: PredictSummary = {
    ...totals,
    quarantined: rejects.count,
    unknown_labels: unknown,
    clipped,
    replaced: sanitize.counts.replaced as Counts,
    seconds: +seconds.toFixed(3),
    flows_per_s: Math.round(totals.rows_scored / seconds),
    report: labelled > 0 ? conf.report() : undefined,
    release_mismatch: releaseMismatch,
    missing_features: missingFeatures,
  };
  return summary;
}
