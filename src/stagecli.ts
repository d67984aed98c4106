// The stage commands: NDJSON on stdin -> one stage -> NDJSON on stdout (parse reads CSV).
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform, Writable } from 'node:stream';
import { parseStream } from '../stages/parse.js';
import { createFilter } from '../stages/filter.js';
import { createKeys, type SplitBy } from '../stages/keys.js';
import { createIpSplit } from '../stages/ipsplit.js';
import { createLabels, type AttemptedPolicy } from '../stages/labels.js';
import { createSanitize } from '../stages/sanitize.js';
import { createSplit } from '../stages/split.js';
import { ShardWriter, clearShardDir } from '../stages/shard.js';
import { scaleSettings } from '../stages/scale.js';
import { addCounts, sortCounts, SPLITS, type Batch, type Counts } from './batch.js';
import { MAX_CLASSES } from '../stages/labels.js';
import type { DatasetConfig, SanitizePolicy } from './config.js';
import { UserError } from './errors.js';
import { withDirLock } from './lock.js';
import { isMeta, STAGE_ORDER, ndjsonDecodeStream, ndjsonEncodeStream, stageStream, type Item, type Meta } from './ndjson.js';
import { openInput, expandInputs } from './inputs.js';
import { PASS1, type ScalerMethod } from './manifest.js';
import { STATS_FORMAT, STATS_VERSION, writeStats, type PartStats, type SourcePart } from './stats.js';
import { packageVersion } from './config.js';
import type { Logger } from './log.js';
import { rejectSink } from './rejects.js';

export async function runParse(cfg: DatasetConfig, files: string[], o: { strict?: boolean; rejects?: string; delimiter?: string; maxLineBytes?: number; multilineQuotes?: boolean }, log: Logger): Promise<void> {
  const rw = rejectSink(log, { file: o.rejects });
  const enc = ndjsonEncodeStream();
  const out = process.stdout;
  const inputs = files.length ? expandInputs(files).files : ['-'];
  const sources: unknown[] = [];
  const totals: Counts = {};
  async function* items(): AsyncGenerator<Item> {
    for (const f of inputs) {
      const name = f === '-' ? 'stdin' : f;
      const ps = parseStream({ file: name, cfg, want: null, strict: o.strict, delimiter: o.delimiter, maxLineBytes: o.maxLineBytes, multilineQuotes: o.multilineQuotes, onReject: rw.onReject, onHeader: (h) => log.info({ file: name, format: h.format, columns: h.canonical.length }, 'reading') });
      const src = f === '-' ? process.stdin : openInput(f);
      src.on('error', (e) => ps.destroy(e));
      src.pipe(ps);
      for await (const b of ps) yield b as Item;
      addCounts(totals, ps.parser.counts);
      sources.push({ file: name, format: ps.parser.header?.format, ...ps.parser.counts });
      log.info({ file: name, ...ps.parser.counts }, 'file done');
    }
    yield { _meta: { stage: 'parse', counts: totals, sources } } as Meta;
  }
  try {
    await pipeline(Readable.from(items()), enc, out);
  } finally {
    rw.commit();
  }
}

export interface StageCliOptions {
  dropIdentifiers?: boolean;
  allowNewLabels?: boolean;
  attempted?: AttemptedPolicy;
  sanitize?: Partial<SanitizePolicy>;
  dedupe?: boolean;
  ratios?: { train: number; val: number; test: number };
  rejects?: string;
  splitBy?: SplitBy;
}

export async function runStage(cfg: DatasetConfig, stage: string, o: StageCliOptions, log: Logger): Promise<void> {
  const rw = rejectSink(log, { file: o.rejects });
  let t: Transform;
  let vocab: (() => string[] | undefined) | undefined;
  switch (stage) {
    case 'filter': {
      // the row keys come first, from the identifiers filter may drop: the source host (per-host
      // windows) and the connection (split --split-by connection)
      const k = createKeys({ splitBy: 'connection', host: true });
      const f = createFilter({ cfg, dropIdentifiers: o.dropIdentifiers });
      t = stageStream('filter', (b) => f.apply(k.apply(b)), () => ({ counts: f.counts, columns: f.columns, keys: k.counts }));
      break;
    }
    case 'ipsplit': {
      const s = createIpSplit(cfg.ip_columns);
      t = stageStream('ipsplit', s.apply, () => ({ counts: s.counts }));
      break;
    }
    case 'labels': {
      const l = createLabels({ cfg, allowNewLabels: o.allowNewLabels, attempted: o.attempted, onReject: rw.onReject, onNewLabel: (label, file, line) => log.warn({ label, file, line }, 'new label added') });
      t = stageStream('labels', l.apply, () => ({ counts: l.counts, vocab: l.vocab }));
      vocab = () => l.vocab;
      break;
    }
    case 'sanitize': {
      const s = createSanitize({ cfg, policy: o.sanitize, onReject: rw.onReject });
      t = stageStream('sanitize', s.apply, () => ({ counts: s.counts, examples: s.examples, policy: { ...cfg.sanitize.default, ...o.sanitize } }));
      break;
    }
    case 'split': {
      const by = o.splitBy ?? 'hash';
      if (by !== 'hash' && by !== 'connection') throw new UserError(`split --split-by ${by}: the stage commands split by hash or connection`, 'prep splits by host or file');
      const s = createSplit({ ratios: o.ratios ?? cfg.split, dedupe: o.dedupe, grouped: by === 'connection' });
      t = stageStream('split', (b) => s.apply(numericRows(b, 'split')), () => ({ counts: s.counts, split_by: by, ratios: o.ratios ?? cfg.split }));
      break;
    }
    default:
      throw new Error(`unknown stage ${stage}`);
  }
  // names of labels come from the labels stage's vocabulary, or from an upstream labels meta
  let upstreamVocab: string[] | undefined;
  const grabVocab = new Transform({
    objectMode: true,
    transform(x: Item, _e, cb) {
      if (isMeta(x) && x._meta.stage === 'labels') upstreamVocab = x._meta.vocab as string[];
      cb(null, x);
    },
  });
  try {
    await pipeline(process.stdin, ndjsonDecodeStream(cfg, undefined, stage), grabVocab, t, ndjsonEncodeStream(() => vocab?.() ?? upstreamVocab ?? cfg.classes), process.stdout);
  } finally {
    rw.commit();
  }
}

/** `shard --out DIR`: the end of the stage pipe; writes unscaled shards and pass1.json. */
/** `shard --out DIR`, holding DIR's lock (src/lock.ts). */
export async function runShard(cfg: DatasetConfig, o: { out: string; shardRows?: number; log1p?: boolean; scaler?: ScalerMethod; clip?: boolean }, log: Logger): Promise<void> {
  return withDirLock(o.out, 'shard', () => runShardLocked(cfg, o, log));
}

async function runShardLocked(cfg: DatasetConfig, o: { out: string; shardRows?: number; log1p?: boolean; scaler?: ScalerMethod; clip?: boolean }, log: Logger): Promise<void> {
  let writer: ShardWriter | null = null;
  let features: string[] = [];
  const metas: Record<string, Meta['_meta']> = {};
  const scaler = o.scaler ?? cfg.scale.method;
  let rows = 0;
  let maxLabel = -1;
  const sink = new Writable({
    objectMode: true,
    write(x: Item, _e, cb) {
      try {
        if (isMeta(x)) {
          metas[x._meta.stage] = x._meta;
          return cb();
        }
        if (!x.split || !x.label) throw new UserError(`${x.file}:${x.line[0]}: shard reads the output of split (rows need _label_id and _split)`, `the order is ${STAGE_ORDER.join(' | ')}`);
        if (!writer) {
          features = (x.order ?? [...x.num.keys()]).filter((c) => c !== 'label');
          numericRows(x, 'shard');
          writer = new ShardWriter({ dir: o.out, features, labels: cfg.classes, shardRows: o.shardRows, logMoments: scaler === 'log-standard', hostContext: !!x.keys?.host });
        }
        writer.add(x);
        for (let i = 0; i < x.n; i++) if (x.label[i] > maxLabel) maxLabel = x.label[i];
        rows += x.n;
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
  try {
    await pipeline(process.stdin, ndjsonDecodeStream(cfg, undefined, 'shard'), sink);
    if (!writer) throw new UserError('shard: no rows on standard input', `pipe the output of split into it: ${STAGE_ORDER.join(' | ')}`);
    // the whole pipe must have run, each stage once: its metadata are the accounting of pass1.json
    const missing = STAGE_ORDER.filter((s) => s !== 'shard' && !metas[s]);
    if (missing.length) throw new UserError(`shard: the input lacks the metadata of ${missing.join(', ')}: not the whole pipe ran`, `the order is ${STAGE_ORDER.join(' | ')}`);
    checkVocab(metas.labels?.vocab, maxLabel);
  } catch (e) {
    (writer as ShardWriter | null)?.abort();
    if (writer) clearShardDir(o.out); // no unscaled shards of a refused stream stay behind
    throw e;
  }
  const w = writer as ShardWriter;
  const vocab = (metas.labels?.vocab as string[]) ?? cfg.classes;
  const splits = w.finish(vocab);
  const pol = (metas.sanitize?.policy as SanitizePolicy) ?? cfg.sanitize.default;
  const stages: Record<string, Counts> = {};
  for (const [k, m] of Object.entries(metas)) stages[k] = m.counts;
  if (stages.split) stages.split = { deduplicated: stages.split.deduplicated ?? 0, deduplicated_by_class: stages.split.deduplicated_by_class ?? {} };
  const sources: Record<string, SourcePart> = {};
  ((metas.parse?.sources as Record<string, unknown>[]) ?? []).forEach((src, i) => {
    const { file, format, release, bytes, missing_columns, extra_columns, ...parse } = src;
    sources[i] = { file: String(file), info: { format, release, missing: missing_columns, extra: extra_columns }, bytes: Number(bytes ?? 0), parse: parse as Counts };
  });
  const examples: PartStats['examples'] = {};
  for (const [k, ex] of Object.entries((metas.sanitize?.examples as PartStats['examples']) ?? {})) examples[k] = ex.map((e) => ({ file: e.file, line: e.line, raw: e.raw, task: 0 }));
  const s: PartStats = {
    format: STATS_FORMAT,
    version: STATS_VERSION,
    flowtensor_version: packageVersion(),
    dataset: cfg.name,
    features,
    labels: vocab,
    shard_rows: w.shardRows,
    partitions: 1,
    plan: 'stage commands',
    parts: [{ index: 0, shards: { train: splits.train.shards, val: splits.val.shards, test: splits.test.shards } }],
    tasks: [],
    min: Array.from(w.min, (v) => (Number.isFinite(v) ? v : null)),
    max: Array.from(w.max, (v) => (Number.isFinite(v) ? v : null)),
    moments: w.moments?.toJSON(),
    rows: Object.fromEntries(SPLITS.map((sp, si) => [sp, Object.fromEntries([...w.rows[si]].filter(([, v]) => v > 0).sort((a, b) => a[0] - b[0]))])) as PartStats['rows'],
    candidates: w.candidates(0),
    stages: sortCounts(stages),
    examples,
    sources,
    // the sanitize stage's policy, with the config's per-column overrides as prep applies them
    ...scaleSettings(cfg, features, (f) => ({ ...pol, ...cfg.sanitize.columns[f] }), !!o.log1p, scaler),
    clip: o.clip ?? cfg.scale.clip,
    options: { config: cfg.name, via: 'stage commands', row_context: w.hostContext ? 'host' : null, log1p: !!o.log1p, scaler, split_by: metas.split?.split_by ?? 'hash', ratios: metas.split?.ratios ?? cfg.split },
  };
  writeStats(path.join(o.out, PASS1), s, null);
  log.info({ rows, out: o.out, train: splits.train.rows, val: splits.val.rows, test: splits.test.rows }, 'pass 1 done: unscaled shards written; run `flowtensor scale` next');
  process.stdout.write(`${o.out}: ${rows.toLocaleString('en-US')} rows in unscaled shards (train ${splits.train.rows.toLocaleString('en-US')}, val ${splits.val.rows.toLocaleString('en-US')}, test ${splits.test.rows.toLocaleString('en-US')}); next: flowtensor scale ${o.out}\n`);
}

/** The batch a stage that hashes or writes rows gets: labelled, and every model column numeric. */
function numericRows(b: Batch, stage: string): Batch {
  const order = `the order is ${STAGE_ORDER.join(' | ')}`;
  if (!b.label) throw new UserError(`${b.file}:${b.line[0]}: ${stage}: rows have no class: run labels before ${stage}`, order);
  const text = (b.order ?? []).find((c) => c !== 'label' && !b.num.has(c));
  if (text) throw new UserError(`${b.file}:${b.line[0]}: ${stage}: column ${text} holds text: run filter and ipsplit before ${stage}`, order);
  return b;
}

/** A labels stage's vocabulary from the stream: class names, each once, covering every class index in the rows. */
function checkVocab(v: unknown, maxLabel: number): void {
  if (v === undefined) return;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string') || new Set(v).size !== v.length || v.length > MAX_CLASSES)
    throw new UserError(`shard: the labels metadata holds no list of distinct class names (at most ${MAX_CLASSES})`, 'the stream was changed between the stages');
  if (maxLabel >= v.length) throw new UserError(`shard: rows carry class ${maxLabel} but the labels metadata names ${v.length} classes`, 'the stream was changed between the stages');
}
