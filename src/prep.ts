// `flowtensor prep`: every stage in one process over many files, both passes. The fast path.
// Stages are chained as plain function calls on batches (the same functions their stream
// wrappers call in the stage commands); reading is the only asynchronous step.
import fs from 'node:fs';
import path from 'node:path';
import { CsvBatchParser, type RejectRecord, type HeaderInfo } from '../stages/parse.js';
import { createFilter } from '../stages/filter.js';
import { createIpSplit, ipFeatureNames } from '../stages/ipsplit.js';
import { createLabels, type AttemptedPolicy } from '../stages/labels.js';
import { createSanitize } from '../stages/sanitize.js';
import { createSplit } from '../stages/split.js';
import { ShardWriter } from '../stages/shard.js';
import { scaleDir } from '../stages/scale.js';
import { addCounts, type Counts } from './batch.js';
import { loadConfig, packageVersion, type DatasetConfig, type SanitizePolicy } from './config.js';
import { expandInputs, openInput, describeReadError } from './inputs.js';
import { PASS1, writeJsonAtomic, type Manifest, type Pass1 } from './manifest.js';
import { Progress, silentLogger, type Logger } from './log.js';
import { UserError } from './errors.js';

export interface PrepOptions {
  out: string;
  inputs: string[];
  config?: string;
  dropIdentifiers?: boolean;
  dedupe?: boolean;
  strict?: boolean;
  allowNewLabels?: boolean;
  attempted?: AttemptedPolicy;
  ratios?: { train: number; val: number; test: number };
  shardRows?: number;
  batchSize?: number;
  log1p?: boolean;
  clip?: boolean;
  sanitize?: Partial<SanitizePolicy>;
  maxLineBytes?: number;
  delimiter?: string;
  logger?: Logger;
  progress?: boolean;
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

const REJECT_LOG_LIMIT = 20;

export async function prep(opts: PrepOptions): Promise<Manifest> {
  const log = opts.logger ?? silentLogger;
  const cfg = loadConfig(opts.config ?? 'cicids2017');
  const t0 = Date.now();
  const { files, duplicates, totalBytes } = expandInputs(opts.inputs);
  for (const d of duplicates) log.warn({ file: d }, 'input given twice: read once');
  log.info({ files: files.length, bytes: totalBytes, out: opts.out }, 'prep: start');

  const rejectsFile = path.join(opts.out, 'rejects.ndjson');
  fs.mkdirSync(opts.out, { recursive: true });
  const rejectsTmp = path.join(opts.out, `.rejects.ndjson.tmp-${process.pid}`);
  let rejectsFd = -1;
  let rejects = 0;
  const onReject = (r: RejectRecord) => {
    rejects++;
    if (rejectsFd < 0) rejectsFd = fs.openSync(rejectsTmp, 'w');
    fs.writeSync(rejectsFd, JSON.stringify(r) + '\n');
    if (rejects <= REJECT_LOG_LIMIT) log.warn({ file: r.file, line: r.line, reason: r.reason, detail: r.detail }, 'row quarantined');
    else if (rejects === REJECT_LOG_LIMIT + 1) log.warn({ rejects: rejectsFile }, 'more rows quarantined: see the rejects file');
  };

  const filter = createFilter({ cfg, dropIdentifiers: opts.dropIdentifiers });
  const spec = featureSpec(cfg, filter.columns);
  const ipsplit = createIpSplit(cfg.ip_columns);
  const labels = createLabels({
    cfg,
    allowNewLabels: opts.allowNewLabels,
    attempted: opts.attempted,
    onReject,
    onNewLabel: (label, file, line) => log.warn({ label, file, line }, 'new label added to the vocabulary'),
  });
  const sanitize = createSanitize({
    cfg,
    policy: opts.sanitize,
    onReject,
    onReplace: log.isLevelEnabled('debug') ? (file, line, col, kind, raw) => log.debug({ file, line, col, kind, raw }, 'value replaced') : undefined,
  });
  const splitter = createSplit({ ratios: opts.ratios ?? cfg.split, dedupe: opts.dedupe, columns: spec.features });
  const writer = new ShardWriter({
    dir: opts.out,
    features: spec.features,
    labels: labels.vocab,
    shardRows: opts.shardRows,
    onShard: (s) => log.debug({ shard: s.file, rows: s.rows }, 'shard written (unscaled)'),
  });

  const parseTotals: Counts = {};
  const sources: Record<string, unknown>[] = [];
  const progress = new Progress('prep pass 1', totalBytes, opts.progress);
  let rowsDone = 0;
  let bytesDone = 0;
  const run = (b: ReturnType<CsvBatchParser['push']>[number]) => {
    let x = filter.apply(b);
    x = ipsplit.apply(x);
    x = labels.apply(x);
    x = sanitize.apply(x);
    x = splitter.apply(x);
    writer.add(x);
    rowsDone += b.n;
  };
  try {
    for (const file of files) {
      let header: HeaderInfo | null = null;
      const parser = new CsvBatchParser({
        file,
        cfg,
        want: filter.wanted,
        batchSize: opts.batchSize,
        strict: opts.strict,
        maxLineBytes: opts.maxLineBytes,
        delimiter: opts.delimiter,
        onReject,
        onHeader: (h) => {
          header = h;
          log.info({ file, format: h.format, columns: h.canonical.length, missing: h.missing, extra: h.extra.length ? h.extra : undefined }, 'reading');
        },
      });
      const ft = Date.now();
      try {
        for await (const chunk of openInput(file)) {
          for (const b of parser.push(chunk as Buffer)) run(b);
          progress.update(rowsDone, bytesDone + parser.bytesIn);
        }
        for (const b of parser.end()) run(b);
      } catch (e) {
        throw describeReadError(file, e);
      }
      bytesDone += fs.statSync(file).size;
      addCounts(parseTotals, parser.counts);
      const h = header as HeaderInfo | null;
      sources.push({ file, format: h?.format, bytes: fs.statSync(file).size, missing_columns: h?.missing ?? [], extra_columns: h?.extra ?? [], ...parser.counts });
      log.info({ file, ...parser.counts, seconds: (Date.now() - ft) / 1000 }, 'file done');
    }
  } catch (e) {
    if (rejectsFd >= 0) fs.closeSync(rejectsFd);
    fs.rmSync(rejectsTmp, { force: true });
    progress.done();
    throw e;
  }
  progress.done();
  const splits = writer.finish(labels.vocab);
  // the rejects file always exists after a run (empty when nothing was quarantined)
  if (rejectsFd < 0) rejectsFd = fs.openSync(rejectsTmp, 'w');
  fs.closeSync(rejectsFd);
  fs.renameSync(rejectsTmp, rejectsFile);

  const policies = spec.features.map((f) => sanitize.policyFor(f));
  const p1: Pass1 = {
    format: 'flowtensor-pass1',
    flowtensor_version: packageVersion(),
    dataset: cfg.name,
    features: spec.features,
    labels: labels.vocab,
    shard_rows: writer.shardRows,
    raw_min: Array.from(writer.min),
    raw_max: Array.from(writer.max),
    posinf: policies.map((p) => (p.posinf === 'zero' ? 'zero' : p.posinf === 'train_min' ? 'train_min' : 'train_max')),
    neginf: policies.map((p) => (p.neginf === 'zero' ? 'zero' : p.neginf === 'train_max' ? 'train_max' : 'train_min')),
    log1p: opts.log1p ? cfg.scale.log1p.filter((c) => spec.features.includes(c)) : [],
    clip: opts.clip ?? cfg.scale.clip,
    splits,
    stages: { parse: parseTotals, filter: filter.counts, ipsplit: ipsplit.counts, labels: labels.counts, sanitize: sanitize.counts, split: splitter.counts },
    examples: sanitize.examples,
    sources,
    options: {
      config: cfg.name,
      drop_identifiers: !!opts.dropIdentifiers,
      dedupe: !!opts.dedupe,
      strict: !!opts.strict,
      allow_new_labels: !!opts.allowNewLabels,
      attempted: opts.attempted ?? cfg.attempted.default_policy,
      ratios: opts.ratios ?? cfg.split,
      log1p: !!opts.log1p,
      inputs: files.map((f) => path.basename(f)),
      duplicate_inputs: duplicates.length,
    },
  };
  writeJsonAtomic(path.join(opts.out, PASS1), p1);
  const t1 = Date.now();
  log.info({ rows: rowsDone, seconds: (t1 - t0) / 1000 }, 'pass 1 done: unscaled shards written');

  const progress2 = new Progress('prep pass 2 (scale)', 0, opts.progress);
  const manifest = scaleDir({
    dir: opts.out,
    onShard: (_f, done) => progress2.update(done),
    extra: (p, _scaler, counts) => accountingOf(p, counts),
  });
  progress2.done();
  const acc = manifest.accounting;
  if (acc.unaccounted !== 0) log.error({ accounting: acc }, 'row accounting does not add up');
  log.info({ ...acc, train: manifest.splits.train.rows, val: manifest.splits.val.rows, test: manifest.splits.test.rows, seconds: (Date.now() - t0) / 1000, rows_per_s: Math.round(acc.data_rows / ((Date.now() - t0) / 1000)) }, 'prep done');
  if (acc.unaccounted !== 0) throw new Error(`row accounting does not add up: ${JSON.stringify(acc)}`);
  return manifest;
}

/** Row accounting: rows in = rows in shards + quarantined + dropped + deduplicated. */
export function accountingOf(p: Pass1, scaleCounts: { inf_replaced: Record<string, number> }): Pick<Manifest, 'accounting' | 'quality'> {
  const st = p.stages;
  const num = (c: Counts | undefined, k: string) => ((c?.[k] as number) ?? 0);
  const dataRows = num(st.parse, 'data_rows');
  const rowsOut = p.splits.train.rows + p.splits.val.rows + p.splits.test.rows;
  const quarantined = num(st.parse, 'quarantined') + num(st.labels, 'missing_label') + num(st.sanitize, 'quarantined_rows');
  const dropped = num(st.labels, 'dropped_attempted') + num(st.sanitize, 'dropped_rows');
  const dedup = num(st.split, 'deduplicated');
  const accounting = {
    data_rows: dataRows,
    rows_in_shards: rowsOut,
    quarantined,
    dropped,
    deduplicated: dedup,
    blank_rows: num(st.parse, 'blank_rows'),
    header_rows: num(st.parse, 'header_rows'),
    unaccounted: dataRows - rowsOut - quarantined - dropped - dedup,
  };
  const quality = {
    quarantine_reasons: st.parse?.quarantine_reasons ?? {},
    replaced_values: st.sanitize?.replaced ?? {},
    infinities_kept_for_scale: st.sanitize?.kept_for_scale ?? {},
    examples: p.examples,
    filled_missing_column: st.filter?.filled_missing_column ?? {},
    derived_column: st.filter?.derived_column ?? {},
    ip: st.ipsplit ?? {},
    label_spellings: st.labels?.spellings ?? {},
    attempted: st.labels?.attempted ?? {},
    new_labels: st.labels?.new_labels ?? {},
    cp1252_cells: num(st.parse, 'cp1252_cells'),
    short_rows_accepted: num(st.parse, 'short_rows_accepted'),
    long_rows_accepted: num(st.parse, 'long_rows_accepted'),
    infinities_replaced_at_scale: scaleCounts.inf_replaced,
  };
  return { accounting, quality };
}

export { UserError };
