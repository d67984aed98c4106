// The CLI: yargs commands, each a thin call into src/ or stages/.
import fs from 'node:fs';
import { ensureDir } from './atomic.js';
import path from 'node:path';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UserError, formatUserError, ioErrorLine } from './errors.js';
import { createLogger, silentLogger, type Logger } from './log.js';
import { checkArgs } from './validate.js';
import { usageText } from './usage.js';
import { removeStaleTemps, withDirLock } from './lock.js';
import { loadConfig, packageVersion, shippedConfigs, type SanitizePolicy } from './config.js';
import { prep } from './prep.js';
import { SPLIT_MODES, type SplitBy } from '../stages/keys.js';
import { runParse, runShard, runStage } from './stagecli.js';
import { startScaleWorkers } from '../stages/scale.js';
import { prepAnalyze } from './prep.js';
import { finish, readPartResult, scaleDir, scalePartition } from './transform.js';
import { mergeStatsFiles } from './mergestats.js';
import { finalize, parsePartition, readStats, dataDirOf } from './stats.js';
import { inspectText } from './inspect.js';
import { readManifest, PASS1, SCALER_METHODS, type ScalerMethod } from './manifest.js';
import { synthCsv, synthLayouts } from './synth.js';
import { train, evalRun, CLASS_WEIGHTS, type ClassWeights, TRAIN_DEFAULTS, MONITORS, OPTIMIZERS, LR_SCHEDULES, type Monitor, type OptimizerName, type LrSchedule } from './train.js';
import { predict, PREDICT_ENGINES, type PredictEngine } from './predict.js';
import { exportOnnx } from './onnx.js';
import { writeReport } from './report.js';
import { compareText, reportText } from './metrics.js';
import { baseline, readBaselineEval } from './baseline.js';

type Common = { config: string; 'log-level': string; 'log-file'?: string; quiet?: boolean };

function logger(a: Common): Logger {
  return createLogger({ level: a.quiet ? 'warn' : a['log-level'], file: a['log-file'] });
}

function ratios(s: string | undefined): { train: number; val: number; test: number } | undefined {
  if (!s) return undefined;
  const p = s.split(/[,/:]/).map(Number);
  if (p.length !== 3 || p.some((x) => !(x >= 0)) || p[0] + p[1] + p[2] <= 0) throw new UserError(`--ratios ${s}: give three non-negative numbers, e.g. 70,15,15`);
  return { train: p[0], val: p[1], test: p[2] };
}

/** --test-files: comma-separated globs, or the option repeated; an empty one is a mistake, not "none". */
function testFiles(v: string | string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const globs = ([] as string[]).concat(v).flatMap((g) => String(g).split(','));
  if (globs.some((g) => g.trim() === '')) throw new UserError(`--test-files ${JSON.stringify(([] as string[]).concat(v).join(','))}: give file names or globs, e.g. 'Friday*,Thursday*'`);
  return globs.map((g) => g.trim());
}

function sanitizePolicy(a: Record<string, unknown>): Partial<SanitizePolicy> {
  const p: Partial<SanitizePolicy> = {};
  if (a.nan) p.nan = p.empty = a.nan as SanitizePolicy['nan'];
  if (a.text) p.text = a.text as SanitizePolicy['text'];
  if (a.posinf) p.posinf = a.posinf as SanitizePolicy['posinf'];
  if (a.neginf) p.neginf = a.neginf as SanitizePolicy['neginf'];
  return p;
}

const stageOpts = {
  'drop-identifiers': { type: 'boolean', describe: 'drop IPs and ports (models otherwise learn CICIDS2017\'s fixed attacker addresses)' },
  'allow-new-labels': { type: 'boolean', describe: 'add unknown labels to the vocabulary instead of stopping' },
  attempted: { choices: ['benign', 'attack', 'drop'], describe: 'improved CICIDS2017 "- Attempted" labels: count as BENIGN (default, as its authors do), as the attack, or drop' },
  nan: { choices: ['zero', 'drop', 'quarantine'], describe: 'NaN and empty numeric cells' },
  text: { choices: ['zero', 'drop', 'quarantine'], describe: 'text in numeric cells' },
  posinf: { choices: ['train_max', 'zero', 'drop', 'quarantine'], describe: '+Infinity (default: the column\'s largest finite train value)' },
  neginf: { choices: ['train_min', 'zero', 'drop', 'quarantine'], describe: '-Infinity (default: the column\'s smallest finite train value)' },
  dedupe: { type: 'boolean', describe: 'drop exact duplicate rows (features + label); they otherwise leak across splits' },
  ratios: { type: 'string', describe: 'train,val,test shares (default 70,15,15)' },
  'split-by': { choices: SPLIT_MODES, describe: 'hash: each row by its content (duplicates together); connection: all flows of a five-tuple (both directions) in one split; host: all flows of a source address; file: whole input files (docs/RESULTS.md compares them)' },
  rejects: { type: 'string', describe: 'append quarantined rows (NDJSON with file, line, reason) to this file' },
  'multiline-quotes': { type: 'boolean', describe: 'quoted fields may span lines (RFC 4180); by default a quote left open at the end of its line quarantines that row' },
} as const;

/** What inspect --verify checked (it fails with one line when a shard does not match). */
function verifiedLine(m: ReturnType<typeof readManifest>): string {
  const shards = (['train', 'val', 'test'] as const).reduce((s, k) => s + m.splits[k].shards.length, 0);
  return `verified  ${shards} shards: sizes and sha256 match the manifest\n`;
}

/** The arguments as given, for error messages that quote a value as typed. */
let givenArgv: string[] = [];

async function run(a: Common, f: (log: Logger) => Promise<void> | void): Promise<void> {
  let log: Logger = silentLogger;
  try {
    const args = a as unknown as Record<string, unknown>;
    checkArgs(String((args._ as unknown[])?.[0] ?? ''), args, givenArgv); // every value checked before any work (src/validate.ts)
    log = logger(a);
    await f(log);
  } catch (e) {
    if (e instanceof UserError) {
      process.stderr.write(formatUserError(e) + '\n');
      log.debug({ err: e }, 'user error');
      process.exitCode = e.exitCode;
      return;
    }
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') {
      process.exitCode = 0;
      return;
    }
    const line = ioErrorLine(err);
    if (line) {
      if (!reported.has(err)) process.stderr.write(line + '\n');
      log.debug({ err }, 'write error');
      process.exitCode = 1;
      return;
    }
    log.error({ err }, 'internal error');
    process.stderr.write(`flowtensor: internal error: ${err.message}\n  (set FLOWTENSOR_LOG_LEVEL=debug for the stack; please report it)\n`);
    if (process.env.FLOWTENSOR_LOG_LEVEL === 'debug') process.stderr.write(String(err.stack) + '\n');
    process.exitCode = 1;
  }
}

/** I/O errors already printed (a failed standard output is reported once, where it happens). */
const reported = new WeakSet<object>();

export async function main(argv = hideBin(process.argv)): Promise<void> {
  givenArgv = argv;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    if (!e.syscall) return; // a pipeline's own error, passed on to the stream it destroys: the command reports it
    // any other failure of standard output (a full disk, /dev/full): one line, exit 1, never silent;
    // writers waiting on it fail too (src/output.ts), so no thread is left waiting
    e.path ??= 'standard output';
    if (!reported.has(e)) process.stderr.write((ioErrorLine(e) ?? `flowtensor: cannot write standard output: ${e.message}`) + '\n');
    reported.add(e);
    process.exitCode = 1;
  });
  const y = yargs(argv)
    .scriptName('flowtensor')
    .version(packageVersion())
    .option('config', { type: 'string', describe: `data-set config name (config/NAME.json: ${shippedConfigs().join(', ')}) or path; prep detects it from the headers, the stage commands default to cicids2017` })
    .option('log-level', { type: 'string', default: process.env.FLOWTENSOR_LOG_LEVEL ?? 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'], describe: 'how much to log (debug: every replaced value with file and line)' })
    .option('log-file', { type: 'string', describe: 'write JSON logs here instead of stderr' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'logs: warnings and errors only (results still go to stdout)' })
    .command(
      'prep <files..>',
      'all stages in one process: CSVs -> scaled train/val/test shards + manifest',
      (c: Argv) =>
        c
          .positional('files', { type: 'string', array: true, describe: 'CSV / CSV.gz files or folders' })
          .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'output folder' })
          .options(stageOpts)
          .option('rejects', { type: 'string', describe: 'write quarantined rows (NDJSON with file, line, reason) here instead of OUT/rejects.ndjson' })
          .option('strict', { type: 'boolean', describe: 'stop at the first malformed row instead of quarantining it' })
          .option('test-files', { type: 'string', describe: 'with --split-by file: inputs (comma-separated globs on name or path, or the option repeated) that go to test whole; the rest to train/val by --ratios' })
          .option('allow-mixed-releases', { type: 'boolean', describe: 'accept inputs of different releases (original and improved CICIDS2017 features differ in meaning); recorded' })
          .option('allow-missing-features', { type: 'boolean', describe: 'accept inputs whose header lacks model columns (zero-filled, counted); recorded' })
          .option('shard-rows', { type: 'number', default: 65536, describe: 'rows per shard file' })
          .option('scaler', { choices: SCALER_METHODS, describe: 'fitted on train: log-standard (default: signed log1p, then mean/std), log-minmax, minmax (the seed\'s)' })
          .option('log1p', { type: 'boolean', describe: 'with --scaler minmax: signed log1p first on the heavy-tailed byte/packet columns (config scale.log1p)' })
          .option('clip', { type: 'boolean', default: true, describe: 'clip val/test values outside the train range to [0,1] (--no-clip keeps them)' })
          .option('delimiter', { type: 'string', default: ',', describe: 'field separator of the CSV files (one character)' })
          .option('progress', { type: 'boolean', describe: 'progress line (default: on when stderr is a TTY)' })
          .option('workers', { type: 'number', describe: 'parse threads beside the main one (default 1; 0 = single-threaded; each adds speed and ~40 MB)' })
          .option('main-parses', { type: 'boolean', default: true, describe: 'the main thread parses a share of the input too (--no-main-parses: ~25% slower, ~80 MB less memory)' })
          .option('format', { choices: ['safetensors', 'parquet'], default: 'safetensors', describe: 'shard files: safetensors, or Parquet (a float32 column per feature, int32 label; scaler and labels in the file metadata; docs/FORMAT.md)' })
          .option('analyze', { type: 'boolean', describe: 'pass 1 of one partition only (--partition K/N): unscaled shards and OUT/parts/part-K.stats.json; then merge-stats, scale --partition, scale --finish (docs/SCALE.md)' })
          .option('partition', { type: 'string', describe: 'with --analyze: K/N, the K-th (from 0) of N partitions of the input (line-aligned byte ranges; a .gz file is one)' })
          .example('$0 prep --out data/shards data/MachineLearningCVE/*.csv', '')
          .example('$0 prep --out data/noid --drop-identifiers --dedupe data/csv/', ''),
      (a) =>
        run(a as unknown as Common, async (log) => {
          if (!!a.analyze !== (a.partition !== undefined)) throw new UserError(a.analyze ? 'prep --analyze: give --partition K/N' : 'prep --partition: only with --analyze (one partition\'s pass 1)');
          const go = a.analyze ? (o: Parameters<typeof prep>[0]) => prepAnalyze({ ...o, partition: parsePartition(a.partition as string) }) : prep;
          const res = await go({
            out: a.out as string,
            inputs: a.files as string[],
            config: a.config as string | undefined,
            allowMixedReleases: a['allow-mixed-releases'] as boolean,
            splitBy: a['split-by'] as SplitBy | undefined,
            testFiles: testFiles(a['test-files'] as string | string[] | undefined),
            allowMissingFeatures: a['allow-missing-features'] as boolean,
            dropIdentifiers: a['drop-identifiers'] as boolean,
            dedupe: a.dedupe as boolean,
            strict: a.strict as boolean,
            multilineQuotes: a['multiline-quotes'] as boolean,
            rejects: a.rejects as string | undefined,
            allowNewLabels: a['allow-new-labels'] as boolean,
            attempted: a.attempted as 'benign' | undefined,
            ratios: ratios(a.ratios as string),
            shardRows: a['shard-rows'] as number,
            log1p: a.log1p as boolean,
            scaler: a.scaler as ScalerMethod | undefined,
            clip: a.clip as boolean,
            sanitize: sanitizePolicy(a),
            delimiter: a.delimiter as string,
            logger: log,
            progress: a.progress as boolean | undefined,
            workers: a.workers as number | undefined,
            mainParses: a['main-parses'] as boolean | undefined,
            format: a.format as 'parquet',
          });
          if (a.analyze) {
            const st = res as Awaited<ReturnType<typeof prepAnalyze>>;
            const rows = (['train', 'val', 'test'] as const).reduce((t, sp) => t + st.parts[0].shards[sp].reduce((u, sh) => u + sh.rows, 0), 0);
            process.stdout.write(`${a.out}: partition ${a.partition}: ${rows.toLocaleString('en-US')} rows in unscaled shards\n`);
          } else process.stdout.write(inspectText(a.out as string)); // the result: on stdout, whatever the log level
        }),
    )
    .command(
      'parse [files..]',
      'stage 1: CSV (files or stdin) -> NDJSON records with canonical column names',
      (c: Argv) =>
        c
          .positional('files', { type: 'string', array: true, describe: 'CSV / CSV.gz files or folders (default: stdin)' })
          .option('strict', { type: 'boolean', describe: 'stop at the first malformed row instead of quarantining it' })
          .option('rejects', stageOpts.rejects)
          .option('multiline-quotes', stageOpts['multiline-quotes'])
          .option('delimiter', { type: 'string', default: ',', describe: 'field separator of the CSV files (one character)' })
          .example('cat Monday.csv | $0 parse | $0 filter | $0 ipsplit | $0 labels | $0 sanitize | $0 split | $0 shard --out data/shards && $0 scale data/shards', ''),
      (a) => run(a as unknown as Common, (log) => runParse(loadConfig(a.config as string), (a.files as string[]) ?? [], { strict: a.strict as boolean, rejects: a.rejects as string, delimiter: a.delimiter as string, multilineQuotes: a['multiline-quotes'] as boolean }, log)),
    )
    .command('filter', 'stage 2: keep the seed\'s columns (NDJSON in/out)', (c: Argv) => c.option('drop-identifiers', stageOpts['drop-identifiers']), (a) =>
      run(a as unknown as Common, (log) => runStage(loadConfig(a.config as string), 'filter', { dropIdentifiers: a['drop-identifiers'] as boolean }, log)),
    )
    .command('ipsplit', 'stage 3: IPv4/IPv6 addresses -> 8 16-bit groups + family (NDJSON in/out)', (c: Argv) => c, (a) =>
      run(a as unknown as Common, (log) => runStage(loadConfig(a.config as string), 'ipsplit', {}, log)),
    )
    .command('labels', 'stage 4: label text -> class index (NDJSON in/out)', (c: Argv) => c.option('allow-new-labels', stageOpts['allow-new-labels']).option('attempted', stageOpts.attempted).option('rejects', stageOpts.rejects), (a) =>
      run(a as unknown as Common, (log) => runStage(loadConfig(a.config as string), 'labels', { allowNewLabels: a['allow-new-labels'] as boolean, attempted: a.attempted as 'benign', rejects: a.rejects as string }, log)),
    )
    .command('sanitize', 'stage 5: NaN / empty / text / ±Infinity by policy, counted (NDJSON in/out)', (c: Argv) => c.option('nan', stageOpts.nan).option('text', stageOpts.text).option('posinf', stageOpts.posinf).option('neginf', stageOpts.neginf).option('rejects', stageOpts.rejects), (a) =>
      run(a as unknown as Common, (log) => runStage(loadConfig(a.config as string), 'sanitize', { sanitize: sanitizePolicy(a), rejects: a.rejects as string }, log)),
    )
    .command('split', 'stage 6: deterministic train/val/test assignment (NDJSON in/out)', (c: Argv) => c.option('dedupe', stageOpts.dedupe).option('ratios', stageOpts.ratios).option('split-by', { choices: ['hash', 'connection'], describe: 'hash, or connection (the five-tuple key the filter stage computed); prep also splits by host and file' }), (a) =>
      run(a as unknown as Common, (log) => runStage(loadConfig(a.config as string), 'split', { dedupe: a.dedupe as boolean, ratios: ratios(a.ratios as string), splitBy: a['split-by'] as SplitBy | undefined }, log)),
    )
    .command(
      'shard',
      'stage 8 / pass 1: NDJSON from split -> unscaled shards + pass1.json',
      (c: Argv) => c.option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'output folder for the unscaled shards and pass1.json' }).option('shard-rows', { type: 'number', default: 65536, describe: 'rows per shard file' }).option('scaler', { choices: SCALER_METHODS, describe: 'the scaler pass 2 fits on train (default log-standard)' }).option('log1p', { type: 'boolean', describe: 'with --scaler minmax: signed log1p first on the heavy-tailed columns (at scale)' }).option('clip', { type: 'boolean', default: true, describe: 'clip val/test values outside the train range to it (--no-clip keeps them)' }),
      (a) => run(a as unknown as Common, (log) => runShard(loadConfig(a.config as string), { out: a.out as string, shardRows: a['shard-rows'] as number, log1p: a.log1p as boolean, scaler: a.scaler as ScalerMethod | undefined, clip: a.clip as boolean }, log)),
    )
    .command(
      'scale <dir>',
      'pass 2: fit the scaler on train, rewrite the shards scaled, write manifest.json (one partition, or --partition K/N and --finish with merged --stats)',
      (c: Argv) =>
        c
          .positional('dir', { type: 'string', demandOption: true, describe: 'shard folder holding pass1.json (or the partitions\' unscaled shards)' })
          .option('stats', { type: 'string', describe: 'merged statistics of every partition (flowtensor merge-stats)' })
          .option('partition', { type: 'string', describe: 'with --stats: rewrite partition K/N\'s shards (a rerun after a kill is safe)' })
          .option('finish', { type: 'boolean', describe: 'with --stats, after every partition: write the moved rows, rejects.ndjson and manifest.json (last)' })
          .option('rejects', { type: 'string', describe: 'with --finish: write quarantined rows here instead of DIR/rejects.ndjson' }),
      (a) =>
        run(a as unknown as Common, async (log) => {
          const dir = a.dir as string;
          if (!fs.existsSync(dir)) throw new UserError(`${dir}: no such folder`);
          if (a.stats === undefined) {
            if (a.partition !== undefined || a.finish) throw new UserError('scale --partition and --finish need --stats MERGED (flowtensor merge-stats)');
            const pool = startScaleWorkers(1);
            let m;
            try {
              // one writer at a time; a pass 2 killed before left temp files: removed first
              m = await withDirLock(dir, 'scale', () => (removeStaleTemps(dir), scaleDir({ dir, pool })));
            } finally {
              await Promise.all(pool.map((w) => w.terminate()));
            }
            log.info({ dir, ...m.accounting }, 'scaled; manifest written');
            process.stdout.write(inspectText(dir, m));
            if (m.accounting.unaccounted !== 0) log.warn({ accounting: m.accounting }, 'row accounting does not add up (were rows removed between stages?)');
            return;
          }
          if (!!a.finish === (a.partition !== undefined)) throw new UserError('scale --stats: give --partition K/N (one partition) or --finish (after all of them)');
          const { s, fp } = readStats(a.stats as string);
          const fin = finalize(s);
          if (a.partition !== undefined) {
            const { k, n } = parsePartition(a.partition as string);
            if (n !== s.partitions) throw new UserError(`--partition ${a.partition}: the statistics are of ${s.partitions} partitions`);
            const pool = startScaleWorkers(1);
            try {
              const r = await withDirLock(dir, `scale ${k}/${n}`, () => scalePartition({ dir, s, fp, fin, k, pool }), `.flowtensor-part-${String(k).padStart(5, '0')}.lock`);
              const rows = (['train', 'val', 'test'] as const).reduce((t, sp) => t + r.result.shards[sp].reduce((u, sh) => u + sh.rows, 0), 0);
              log.info({ partition: `${k}/${n}`, rows, moved: r.moved.y.length }, 'partition scaled');
              process.stdout.write(`${dir}: partition ${k}/${n}: ${rows.toLocaleString('en-US')} rows scaled\n`);
            } finally {
              await Promise.all(pool.map((w) => w.terminate()));
            }
            return;
          }
          const m = await withDirLock(dir, 'scale --finish', () => {
            const parts = s.parts.map((p) => readPartResult(dir, p.index, s.plan));
            return finish({ dir, s, fin, parts, hostContext: s.options.row_context === 'host', rejects: a.rejects as string | undefined });
          });
          log.info({ dir, ...m.accounting }, 'manifest written');
          process.stdout.write(inspectText(dir, m));
          if (m.accounting.unaccounted !== 0) throw new Error(`row accounting does not add up: ${JSON.stringify(m.accounting)}`);
        }),
    )
    .command(
      'merge-stats <files..>',
      'merge partition statistics (prep --analyze) into one file: any number, in any order or tree',
      (c: Argv) =>
        c
          .positional('files', { type: 'string', array: true, describe: 'statistics files (DIR/parts/*.stats.json, or earlier merges)' })
          .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'the merged statistics (JSON; a .fp table beside it with --dedupe)' }),
      (a) =>
        run(a as unknown as Common, (log) => {
          const s = mergeStatsFiles(a.files as string[], a.out as string);
          log.info({ out: a.out, parts: s.parts.length, partitions: s.partitions }, 'statistics merged');
          process.stdout.write(`${a.out}: ${s.parts.length} of ${s.partitions} partitions\n`);
          void dataDirOf;
        }),
    )
    .command(
      'inspect <dir>',
      'what a shard folder holds: rows per split and class, features, data-quality counts',
      (c: Argv) => c.positional('dir', { type: 'string', demandOption: true, describe: 'shard folder written by prep (or scale)' }).option('json', { type: 'boolean', describe: 'the whole manifest as JSON' }).option('verify', { type: 'boolean', describe: 'check every shard\'s size and sha256' }),
      (a) =>
        run(a as unknown as Common, () => {
          const m = readManifest(a.dir as string, { verify: a.verify ? 'sha256' : undefined });
          process.stdout.write(a.json ? JSON.stringify(m, null, 2) + '\n' : inspectText(a.dir as string, m));
          if (a.verify && !a.json) process.stdout.write(verifiedLine(m));
        }),
    )
    .command(
      'train',
      'train an LSTM on a shard folder: streaming input, early stopping, checkpoints, evaluation on test',
      (c: Argv) =>
        c
          .option('shards', { alias: 's', type: 'string', demandOption: true, describe: 'shard folder written by prep' })
          .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'run folder' })
          .option('model', { choices: ['seed', 'window'], default: TRAIN_DEFAULTS.model, describe: 'seed: F features as F steps; window: a flow and its source host\'s W-1 previous flows, W x F' })
          .option('units', { type: 'number', default: TRAIN_DEFAULTS.units, describe: 'LSTM units (a multiple of 8 runs in the WebAssembly kernel)' })
          .option('project', { type: 'number', default: TRAIN_DEFAULTS.project, describe: 'per-step projection width (seed model)' })
          .option('window', { type: 'number', default: TRAIN_DEFAULTS.window, describe: 'flows per example (window model)' })
          .option('lr', { type: 'number', default: TRAIN_DEFAULTS.learning_rate, describe: 'initial learning rate' })
          .option('optimizer', { choices: OPTIMIZERS, default: TRAIN_DEFAULTS.optimizer, describe: 'the optimizer (rmsprop: as the seed notebook)' })
          .option('lr-schedule', { choices: LR_SCHEDULES, default: TRAIN_DEFAULTS.lr_schedule, describe: 'plateau: halve the rate after a third of --patience epochs without improvement' })
          .option('batch-size', { alias: 'b', type: 'number', default: TRAIN_DEFAULTS.batch_size, describe: 'rows per training batch' })
          .option('epochs', { alias: 'e', type: 'number', default: TRAIN_DEFAULTS.epochs, describe: 'most epochs to train (early stopping may end sooner)' })
          .option('patience', { type: 'number', default: TRAIN_DEFAULTS.patience, describe: 'epochs without a better --monitor value before stopping' })
          .option('monitor', { choices: MONITORS, default: TRAIN_DEFAULTS.monitor, describe: 'what early stopping, the best checkpoint and the schedule watch' })
          .option('class-weights', { choices: CLASS_WEIGHTS, default: TRAIN_DEFAULTS.class_weights, describe: 'auto: weight each class by n / (k · n_class); sqrt: by its square root (gentler on tiny classes); both at most 100' })
          .option('max-benign-ratio', { type: 'number', describe: 'per epoch, keep BENIGN rows at most R x the other rows' })
          .option('seed', { type: 'number', default: 1, describe: 'random seed (weights, shuffling)' })
          .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'cpu'], default: 'auto', describe: 'TensorFlow.js backend (auto: tensorflow, else wasm, else cpu)' })
          .option('resume', { type: 'boolean', describe: 'continue from the run folder\'s last checkpoint (its last finished epoch)' })
          .option('force', { type: 'boolean', describe: 'replace the run the --out folder holds (train refuses a used folder otherwise)' })
          .option('max-batches', { type: 'number', describe: 'at most this many batches per epoch' })
          .option('threads', { type: 'number', choices: [1, 2], describe: 'threads computing the training steps (default 2 on a machine with 2+ cores); the results are the same with either' })
          .option('progress', { type: 'boolean', describe: 'progress line (default: on when stderr is a TTY)' })
          .example('$0 train --shards data/shards --out runs/first', '')
          .example('$0 train --shards data/shards --out runs/win --model window --window 8 --batch-size 256', ''),
      (a) =>
        run(a as unknown as Common, async (log) => {
          const stop = { requested: false };
          const onInt = () => {
            if (stop.requested) process.exit(130);
            stop.requested = true;
            process.stderr.write('\nflowtensor: stopping after the current batch; --resume goes on from the last finished epoch (Ctrl-C again to quit at once)\n');
          };
          process.on('SIGINT', onInt);
          process.on('SIGTERM', onInt);
          const r = await train({
            shards: a.shards as string,
            out: a.out as string,
            model: a.model as 'seed',
            units: a.units as number,
            project: a.project as number,
            window: a.window as number,
            learningRate: a.lr as number,
            batchSize: a['batch-size'] as number,
            epochs: a.epochs as number,
            patience: a.patience as number,
            monitor: a.monitor as Monitor,
            optimizer: a.optimizer as OptimizerName,
            lrSchedule: a['lr-schedule'] as LrSchedule,
            classWeights: a['class-weights'] as ClassWeights,
            maxBenignRatio: a['max-benign-ratio'] as number | undefined,
            seed: a.seed as number,
            backend: a.backend as 'auto',
            resume: a.resume as boolean,
            force: a.force as boolean,
            maxBatchesPerEpoch: a['max-batches'] as number | undefined,
            threads: a.threads as number | undefined,
            logger: log,
            progress: a.progress as boolean | undefined,
            stop,
          });
          process.off('SIGINT', onInt);
          process.off('SIGTERM', onInt);
          if (r.interrupted) {
            process.exitCode = 130;
            return;
          }
          if (r.eval) process.stdout.write(reportText(r.eval, `test split, best epoch ${r.best_epoch} (${r.run}/eval.json)`));
        }),
    )
    .command(
      'baseline',
      'a tree ensemble (Yggdrasil Decision Forests RandomForest) on the same shards: the score the LSTM has to beat',
      (c: Argv) =>
        c
          .option('shards', { alias: 's', type: 'string', demandOption: true, describe: 'shard folder written by prep' })
          .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'baseline folder (baseline.json, eval.json)' })
          .option('max-rows', { type: 'number', default: 200000, describe: 'train rows used at most (a sample; classes below 1% of it keep every row)' })
          .option('learner', { choices: ['random-forest', 'gradient-boosted-trees'], default: 'random-forest' })
          .option('seed', { type: 'number', default: 1, describe: 'seed of the train sample' })
          .option('json', { type: 'boolean', describe: 'print the test report as JSON' })
          .example('$0 baseline --shards data/shards --out runs/rf && $0 eval --model runs/lstm --shards data/shards --baseline runs/rf', ''),
      (a) =>
        run(a as unknown as Common, async (log) => {
          const r = await baseline({ shards: a.shards as string, out: a.out as string, maxRows: a['max-rows'] as number, learner: a.learner as 'random-forest', seed: a.seed as number, logger: log });
          if (a.json) process.stdout.write(JSON.stringify(r.test ?? null, null, 2) + '\n');
          else if (r.test) process.stdout.write(reportText(r.test, `${r.learner}, ${r.train_rows_used.toLocaleString('en-US')} of ${r.train_rows.toLocaleString('en-US')} train rows, fitted in ${r.fit_seconds.toFixed(1)} s: test split (${a.out}/eval.json)`));
        }),
    )
    .command(
      'eval',
      'per-class precision/recall/F1, macro/weighted F1, accuracy and the confusion matrix of a run on a split',
      (c: Argv) =>
        c
          .option('model', { alias: 'm', type: 'string', demandOption: true, describe: 'run folder' })
          .option('shards', { alias: 's', type: 'string', demandOption: true, describe: 'shard folder written by prep' })
          .option('split', { choices: ['train', 'val', 'test'], default: 'test', describe: 'which split to evaluate' })
          .option('json', { type: 'boolean', describe: 'the report as JSON' })
          .option('baseline', { type: 'string', describe: 'a folder written by `flowtensor baseline` on the same shards: its per-class F1 beside the LSTM\'s (test split)' })
          .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'cpu'], default: 'auto', describe: 'TensorFlow.js backend (auto: tensorflow, else wasm, else cpu)' }),
      (a) =>
        run(a as unknown as Common, async (log) => {
          const base = a.baseline ? readBaselineEval(a.baseline as string, a.shards as string, a.split as string) : null;
          const r = await evalRun({ model: a.model as string, shards: a.shards as string, split: a.split as 'test', backend: a.backend as 'auto', logger: log });
          if (a.json) process.stdout.write(JSON.stringify(base ? { ...r, baseline: base } : r, null, 2) + '\n');
          else {
            process.stdout.write(reportText(r, `${a.model} on ${a.shards} (${a.split})`));
            if (base) process.stdout.write(`\n${compareText(r, base, 'LSTM', 'baseline')}`);
          }
        }),
    )
    .command(
      'predict [files..]',
      'score flows (CSV files or stdin) with a trained run: NDJSON (or CSV) lines on stdout',
      (c: Argv) =>
        c
          .positional('files', { type: 'string', array: true, describe: 'CSV / CSV.gz files (default: stdin)' })
          .option('model', { alias: 'm', type: 'string', demandOption: true, describe: 'run folder' })
          .option('format', { choices: ['ndjson', 'csv'], default: 'ndjson', describe: 'output format of the scored rows' })
          .option('batch-size', { type: 'number', default: 1024, describe: 'rows scored per model call' })
          .option('threads', { type: 'number', default: 2, choices: [1, 2], describe: '2: a worker thread with its own model copy scores every other batch' })
          .option('rejects', stageOpts.rejects)
          .option('allow-missing-features', { type: 'boolean', describe: 'score inputs whose header lacks model columns (zero-filled; the summary says so)' })
          .option('multiline-quotes', stageOpts['multiline-quotes'])
          .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'cpu'], default: 'auto', describe: 'TensorFlow.js backend (auto: tensorflow, else wasm, else cpu)' })
          .option('engine', { choices: PREDICT_ENGINES, default: 'wasm', describe: 'wasm: tfjs + the WebAssembly LSTM kernel; onnx: onnxruntime-node (optional dependency, faster)' })
          .option('flush-ms', { type: 'number', default: 200, describe: 'a stream (stdin, pipe) quiet this long has its rows so far scored and printed (0: full batches only)' })
          .option('progress', { type: 'boolean', describe: 'progress line (default: on when stderr is a TTY)' })
          .example('$0 predict --model runs/first < Friday.csv > scored.ndjson', '')
          .example('kcat -C -t flows | $0 predict --model runs/first -', 'a live stream: rows printed as they come'),
      (a) =>
        run(a as unknown as Common, async (log) => {
          const s = await predict({ model: a.model as string, inputs: (a.files as string[]) ?? [], output: process.stdout, format: a.format as 'csv', batchSize: a['batch-size'] as number, threads: a.threads as number, rejects: a.rejects as string, multilineQuotes: a['multiline-quotes'] as boolean, backend: a.backend as 'auto', logger: log, progress: a.progress as boolean | undefined, allowMissingFeatures: a['allow-missing-features'] as boolean, engine: a.engine as PredictEngine, flushMs: a['flush-ms'] as number });
          const { report, ...rest } = s;
          log.info({ ...rest, macro_f1: report ? +report.macro_f1.toFixed(4) : undefined }, 'predict done');
          // stdout carries the scored rows: the summary of the labelled ones goes to stderr, and -q keeps it (a result, not a log)
          if (report) process.stderr.write(reportText(report, `labelled input: ${report.rows} rows`));
          for (const m of s.release_mismatch) process.stderr.write(`warning: ${m.file} is ${m.release}; the run was trained on ${m.run_releases.join(' + ')}: features differ in meaning, these scores are not to be trusted\n`);
          for (const m of s.missing_features) process.stderr.write(`warning: ${m.file} lacks model columns ${m.missing.join(', ')}: scored with them zero-filled\n`);
        }),
    )
    .command(
      'export <run>',
      'write a trained run as an ONNX model (RUN/model.onnx) for onnxruntime and other runtimes',
      (c: Argv) =>
        c
          .positional('run', { type: 'string', demandOption: true, describe: 'run folder' })
          .option('onnx', { type: 'boolean', describe: 'ONNX (opset 17): input "features" (scaled), output "probabilities"; scaler, features and labels in its metadata' })
          .option('out', { alias: 'o', type: 'string', describe: 'file (default RUN/model.onnx)' })
          .example('$0 export --onnx runs/first', ''),
      (a) =>
        run(a as unknown as Common, (log) => {
          if (!a.onnx) throw new UserError('export: name the format, --onnx (the only one so far)');
          const r = exportOnnx({ run: a.run as string, out: a.out as string | undefined });
          log.info(r, 'ONNX model written');
          process.stdout.write(r.file + '\n');
        }),
    )
    .command(
      'report <run>',
      'write RUN/report.html: training curves, confusion heat map, per-class table, data quality (self-contained)',
      (c: Argv) =>
        c
          .positional('run', { type: 'string', demandOption: true, describe: 'run folder written by train' })
          .option('out', { type: 'string', describe: 'file (default RUN/report.html)' })
          .option('baseline', { type: 'string', describe: 'a `flowtensor baseline` folder on the run\'s shards: per-class F1 side by side' }),
      (a) =>
        run(a as unknown as Common, (log) => {
          const f = writeReport(a.run as string, a.out as string | undefined, a.baseline as string | undefined);
          log.info({ report: f }, 'report written');
          process.stdout.write(f + '\n');
        }),
    )
    .command(
      'synth',
      'write a CICIDS2017 TrafficLabelling-format CSV with learnable classes and the real files\' quirks',
      (c: Argv) =>
        c
          .option('rows', { alias: 'n', type: 'number', default: 10000, describe: 'data rows to write' })
          .option('seed', { type: 'number', default: 1, describe: 'random seed (the same seed writes the same file)' })
          .option('out', { alias: 'o', type: 'string', describe: 'file (default stdout)' })
          .option('ipv6', { type: 'number', default: 0, describe: 'share of rows with IPv6 addresses (0..1)' })
          .option('crlf', { type: 'boolean', describe: 'end lines with CRLF' })
          .option('bom', { type: 'boolean', describe: 'start with a UTF-8 byte-order mark' })
          .option('quirks', { type: 'boolean', default: true, describe: '--no-quirks writes clean rows only' })
          .option('balanced', { type: 'boolean', describe: 'equal class shares instead of CICIDS2017-like BENIGN-heavy' })
          .option('layout', { choices: Object.keys(synthLayouts()), default: 'trafficlabelling', describe: 'the published layout to write (the flows are the same)' }),
      (a) =>
        run(a as unknown as Common, () => {
          const fd = a.out ? fs.openSync(a.out as string, 'w') : 1;
          for (const b of synthCsv({ rows: a.rows as number, seed: a.seed as number, ipv6: a.ipv6 as number, crlf: a.crlf as boolean, bom: a.bom as boolean, quirks: a.quirks as boolean, mix: a.balanced ? 'balanced' : 'realistic', layout: a.layout as string })) fs.writeSync(fd, b);
          if (fd !== 1) fs.closeSync(fd);
        }),
    )
    .command(
      'demo',
      'the main job on built-in data: synth -> prep -> train -> baseline -> eval -> report (used by npm start)',
      (c: Argv) =>
        c
          .option('rows', { type: 'number', default: 30000, describe: 'synthetic rows' })
          .option('dir', { type: 'string', default: 'data/demo', describe: 'folder for synth.csv, shards/, run/ and baseline/' })
          .option('epochs', { type: 'number', default: 15, describe: 'most epochs to train (train\'s default is 40; the demo keeps it short)' }),
      (a) =>
        run(a as unknown as Common, async (log) => {
          const dir = a.dir as string;
          ensureDir(dir);
          const csv = path.join(dir, 'synth.csv');
          const fd = fs.openSync(csv, 'w');
          for (const b of synthCsv({ rows: a.rows as number, seed: 1 })) fs.writeSync(fd, b);
          fs.closeSync(fd);
          log.info({ csv, rows: a.rows }, 'synthetic CICIDS2017 CSV written (flowtensor synth)');
          // the recommended recipe: no identifiers (a model must not learn the attackers' addresses), no duplicates
          const shards = path.join(dir, 'shards');
          await prep({ out: shards, inputs: [csv], logger: log, dedupe: true, dropIdentifiers: true });
          process.stdout.write(inspectText(shards) + '\n');
          // train's defaults (seed model, log-standard shards, class weights sqrt, ...), with a shorter epoch budget
          const runDir = path.join(dir, 'run');
          const r = await train({ shards, out: runDir, epochs: a.epochs as number, logger: log, force: true }); // the demo's own run, replaced each time
          if (r.eval) process.stdout.write(reportText(r.eval, `LSTM (seed model, train's defaults, ${a.epochs} epochs at most), test split, best epoch ${r.best_epoch}`) + '\n');
          const baseDir = path.join(dir, 'baseline');
          const b = await baseline({ shards, out: baseDir, logger: log });
          if (r.eval && b.test) process.stdout.write(`the LSTM beside ${b.learner} on the same shards (test split):\n${compareText(r.eval, b.test, 'LSTM', 'baseline')}\n`);
          const html = writeReport(runDir, undefined, baseDir);
          process.stdout.write(`shards:   ${shards}\nrun:      ${runDir}\nbaseline: ${baseDir}\nreport:   ${html}\n`);
        }),
    )
    .demandCommand(1, 'give a command')
    .strict()
    .fail((msg, err) => {
      if (err) throw err; // not a usage error
      // the error and where the help is, not the whole help (src/usage.ts)
      process.stderr.write(usageText(msg, givenArgv) + '\n');
      process.exit(2);
    })
    .help()
    .wrap(Math.min(120, process.stdout.columns ?? 100));
  // yargs renders the whole help text once a command's handler has started, to keep it for a later
  // failure (0.3 s of the main thread while prep's threads start); failures here print usageText, never
  // that cached help, so it is not rendered (--help still renders it: before any handler runs)
  const usage = (y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } }).getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
  await y.parseAsync();
}
