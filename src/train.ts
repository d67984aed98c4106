// `flowtensor train`: batches from shard folders into an LSTM, never the whole split in memory.
// Early stopping on val_loss with the best weights restored, best/last checkpoints, --resume,
// Ctrl-C saves and exits 130, one NDJSON line of metrics per epoch, evaluation on test at the end.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { initBackend, type BackendName, type Tf } from './backend.js';
import { buildModel, buildFused, copyWeights, batchShape, predictProbs, type ModelKind, type ModelSpec } from './models.js';
import { benignClass, hasHostContext, openShards, splitBatches, type BatchArrays } from './shardset.js';
import { saveModel, loadModel, swapDir, findCheckpoint } from './runio.js';
import { writeJsonAtomic, type Manifest } from './manifest.js';
import { ensureDir, writeFileAtomic } from './atomic.js';
import { Confusion, type Report } from './metrics.js';
import { BatchEta, fmtCount, fmtDuration, silentLogger, type Logger } from './log.js';
import { UserError } from './errors.js';
import { packageVersion } from './config.js';
import type { SplitName } from './batch.js';
import { kernelUnits, lstmKernel } from './kernels/lstm.js';
import { TensorBoardWriter } from './tensorboard.js';
import { reportEpoch } from './epochline.js';
import { checkRunConfig, readOptimizerFiles, readRunInfo, readState } from './runfiles.js';
import { prepareRunFolder, trimMetrics } from './runfolder.js';
import { withDirLock } from './lock.js';
import { provenance } from './provenance.js';
import { EngineStepper } from './parallel.js';
import { engineAvailable } from './trainengine.js';
import { iterationsOf, type NamedState } from './optim.js';

export interface TrainOptions {
  shards: string;
  out: string;
  model?: ModelKind;
  units?: number;
  project?: number;
  window?: number;
  learningRate?: number;
  batchSize?: number;
  epochs?: number;
  patience?: number;
  /** What early stopping, the best checkpoint and the learning-rate schedule watch. */
  monitor?: Monitor;
  optimizer?: OptimizerName;
  /** plateau: halve the learning rate after a third of `patience` epochs without improvement; constant: never. */
  lrSchedule?: LrSchedule;
  classWeights?: ClassWeights;
  maxBenignRatio?: number;
  seed?: number;
  backend?: BackendName | 'auto';
  resume?: boolean;
  /** Replace the run a non-empty --out holds (without it, train refuses such a folder unless resuming). */
  force?: boolean;
  bufferSize?: number;
  /** Stop an epoch after this many batches (quick runs, benchmarks). */
  maxBatchesPerEpoch?: number;
  logger?: Logger;
  progress?: boolean;
  /** Set to true (e.g. on SIGINT) to finish the current batch, save and stop. */
  stop?: { requested: boolean };
  /**
   * Threads computing the training steps (default: 2 where the machine has two cores or more). Each
   * batch is cut into the same two parts whatever this is, so the results are identical; only the
   * speed differs. Needs the WebAssembly kernel; without it training runs on tfjs, one thread.
   */
  threads?: number;
  /** kernel (default where the kernel handles the model): the training engine; tfjs: tfjs's trainOnBatch, one thread (tests, benchmarks). */
  engine?: 'kernel' | 'tfjs';
}

/** Training threads by default: both parts of each batch at once where there are two cores. */
export const defaultTrainThreads = (): number => (os.availableParallelism() >= 2 ? 2 : 1);

export type Monitor = 'val_loss' | 'val_macro_f1';
export type OptimizerName = 'adam' | 'rmsprop';
export type LrSchedule = 'plateau' | 'constant';
export const MONITORS: Monitor[] = ['val_loss', 'val_macro_f1'];
export const OPTIMIZERS: OptimizerName[] = ['adam', 'rmsprop'];
export const LR_SCHEDULES: LrSchedule[] = ['plateau', 'constant'];

/** Training defaults, chosen by measurement on the real samples (docs/RESULTS.md). */
export const TRAIN_DEFAULTS = {
  model: 'seed' as ModelKind,
  units: 32,
  project: 32,
  window: 8,
  learning_rate: 0.003,
  batch_size: 128,
  epochs: 40,
  patience: 8,
  monitor: 'val_loss' as Monitor,
  optimizer: 'rmsprop' as OptimizerName,
  lr_schedule: 'plateau' as LrSchedule,
  class_weights: 'sqrt' as ClassWeights,
};

export interface EpochMetrics {
  epoch: number;
  loss: number;
  acc: number;
  val_loss: number;
  val_acc: number;
  /** Macro-F1 over the classes present in val (as scikit-learn), the headline metric. */
  val_macro_f1: number;
  /** Learning rate used in this epoch. */
  lr: number;
  samples_per_s: number;
  seconds: number;
  samples: number;
}

export interface TrainResult {
  run: string;
  epochs: EpochMetrics[];
  best_epoch: number;
  interrupted: boolean;
  eval?: Report;
  backend: string;
  /** what computed the training steps: the engine (WebAssembly kernel, 1 or 2 threads) or tfjs (one thread) */
  trainer: { engine: 'kernel' | 'tfjs'; threads: number };
}

interface State {
  epoch: number; // last completed epoch (1-based)
  /** Best value of the monitored metric so far (null in JSON for none yet). */
  best: number | null;
  /** val_loss at the best epoch: breaks ties of val_macro_f1. */
  best_val_loss: number | null;
  best_epoch: number;
  bad_epochs: number;
  /** Learning rate for the next epoch. */
  lr: number;
  stopped_early: boolean;
}

/** Whether an epoch's result beats the best so far: a higher macro-F1 (a tie with a lower val_loss), or a lower val_loss. */
export function improves(monitor: Monitor, s: Pick<State, 'best' | 'best_val_loss'>, e: Pick<EpochMetrics, 'val_loss' | 'val_macro_f1'>): boolean {
  if (s.best === null) return true;
  if (monitor === 'val_loss') return e.val_loss < s.best;
  return e.val_macro_f1 > s.best || (e.val_macro_f1 === s.best && s.best_val_loss !== null && e.val_loss < s.best_val_loss);
}

export type ClassWeights = 'auto' | 'sqrt' | 'none';
export const CLASS_WEIGHTS: ClassWeights[] = ['sqrt', 'auto', 'none'];

/**
 * Class weights from the manifest's train counts: auto = n / (k * n_c) (balanced), sqrt = its square root
 * (a class 100x rarer weighs 10x more, not 100x), both capped at 100; 0 for classes absent from train.
 */
export function classWeights(m: Manifest, kind: 'auto' | 'sqrt' = 'auto'): number[] {
  const cc = m.splits.train.class_counts;
  const present = m.labels.filter((l) => (cc[l] ?? 0) > 0).length;
  const n = m.splits.train.rows;
  return m.labels.map((l) => {
    if (!((cc[l] ?? 0) > 0)) return 0;
    const w = n / (present * cc[l]);
    return Math.min(100, kind === 'sqrt' ? Math.sqrt(w) : w);
  });
}

/** Class-weighted cross-entropy over one-hot targets (tfjs checks a custom loss's target shape). */
export function weightedCE(tf: Tf, weights: number[]) {
  const w = tf.tensor2d(weights, [weights.length, 1]);
  return (yTrue: TF.Tensor, yPred: TF.Tensor) =>
    tf.tidy(() => {
      const ce = tf.neg(tf.sum(tf.mul(yTrue, tf.log(tf.clipByValue(yPred, 1e-7, 1))), -1));
      const sw = tf.matMul(yTrue as TF.Tensor2D, w).reshape([-1]);
      return tf.mean(tf.mul(ce, sw));
    });
}

export function compile(tf: Tf, model: TF.LayersModel, lr: number, weights: number[] | null, optimizer: OptimizerName): void {
  model.compile({
    optimizer: optimizer === 'adam' ? tf.train.adam(lr) : tf.train.rmsprop(lr),
    loss: weights ? weightedCE(tf, weights) : 'sparseCategoricalCrossentropy',
    metrics: [weights ? tf.metrics.categoricalAccuracy : tf.metrics.sparseCategoricalAccuracy],
  });
}

function toTensors(tf: Tf, spec: Pick<ModelSpec, 'kind' | 'features' | 'window' | 'classes'>, b: BatchArrays, oneHot: boolean) {
  const xs = tf.tensor(b.x, batchShape(spec, b.n));
  if (!oneHot) return { xs, ys: tf.tensor1d(Float32Array.from(b.y)) };
  const oh = new Float32Array(b.n * spec.classes);
  for (let i = 0; i < b.n; i++) oh[i * spec.classes + b.y[i]] = 1;
  return { xs, ys: tf.tensor2d(oh, [b.n, spec.classes]) };
}

/** Loss (unweighted cross-entropy), accuracy and a confusion matrix over a split. */
export async function evaluateSplit(tf: Tf, model: TF.LayersModel, dir: string, m: Manifest, split: SplitName, spec: Pick<ModelSpec, 'kind' | 'features' | 'window'>, batchSize = 1024): Promise<{ loss: number; acc: number; confusion: Confusion }> {
  const conf = new Confusion(m.labels);
  let loss = 0;
  let n = 0;
  for (const b of splitBatches(dir, m, split, { batchSize, window: spec.kind === 'window' ? spec.window : 1 })) {
    const probs = await predictProbs(tf, model, spec, b.x, b.n);
    const C = m.num_classes;
    const pred = new Int32Array(b.n);
    for (let i = 0; i < b.n; i++) {
      let best = 0;
      for (let c = 1; c < C; c++) if (probs[i * C + c] > probs[i * C + best]) best = c;
      pred[i] = best;
      loss -= Math.log(Math.max(probs[i * C + b.y[i]], 1e-7));
    }
    conf.add(b.y, pred);
    n += b.n;
  }
  const r = conf.report();
  return { loss: n ? loss / n : NaN, acc: r.accuracy, confusion: conf };
}

/** The tfjs optimizer's state as float32 arrays (its int32 iteration count as a float, as every value in the file). */
async function tfjsOptimizerState(model: TF.LayersModel): Promise<NamedState[]> {
  const out: NamedState[] = [];
  for (const w of await model.optimizer.getWeights()) out.push({ name: w.name, shape: w.tensor.shape, values: Float32Array.from((await w.tensor.data()) as Float32Array) });
  return out;
}

function saveOptimizer(ws: NamedState[], dir: string): void {
  writeFileAtomic(path.join(dir, 'optimizer.bin'), ws.map((w) => new Uint8Array(w.values.buffer, w.values.byteOffset, w.values.byteLength)));
  writeJsonAtomic(path.join(dir, 'optimizer.json'), { weights: ws.map((w) => ({ name: w.name, shape: w.shape })) });
}

/** optimizer.json/bin as a list of named arrays (checked: src/runfiles.ts). */
function readOptimizer(dir: string): NamedState[] {
  const { meta, values: all } = readOptimizerFiles(dir);
  let off = 0;
  return meta.weights.map((w) => {
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (off + n > all.length) throw new UserError(`${dir}: optimizer.bin is shorter than optimizer.json says`);
    const values = all.slice(off, off + n);
    off += n;
    return { name: w.name, shape: w.shape, values };
  });
}

async function loadOptimizer(tf: Tf, model: TF.LayersModel, ws: NamedState[]): Promise<void> {
  // the iteration count as tfjs reads it (older files hold its int32 bytes: src/optim.ts)
  await model.optimizer.setWeights(ws.map((w, i) => ({ name: w.name, tensor: tf.tensor(i === 0 && w.name === 'iter' ? Float32Array.of(iterationsOf(w.values[0])) : w.values, w.shape) })));
}

async function writeCheckpoint(tf: Tf, model: TF.LayersModel, std: TF.LayersModel, run: string, name: 'last' | 'best', state: State, optimizer: (() => Promise<NamedState[]>) | null): Promise<void> {
  const tmp = path.join(run, `.${name}.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    copyWeights(model, std); // saved as standard layers, readable by any tfjs loader
    await saveModel(tf, std, tmp);
    if (optimizer) saveOptimizer(await optimizer(), tmp);
    writeJsonAtomic(path.join(tmp, 'state.json'), state);
    swapDir(tmp, path.join(run, name));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true }); // after a failure (a full disk) no temp folder stays
  }
}

export class TrainProgress {
  private last = 0;
  private eta = new BatchEta();
  constructor(private enabled: boolean) {}
  update(epoch: number, epochs: number, done: number, total: number, rate: number, loss: number, acc: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    const left = this.eta.update(epoch, done, total, now); // from batches per second (rate is samples per second)
    if (now - this.last < 200 && done < total) return;
    this.last = now;
    const frac = total ? Math.min(1, done / total) : 0;
    const bar = '='.repeat(Math.round(frac * 24)).padEnd(24);
    const eta = fmtDuration(left);
    fs.writeSync(2, `\r\x1b[Kepoch ${epoch}/${epochs} [${bar}] ${(frac * 100).toFixed(0)}%  ${fmtCount(rate)} samples/s  ETA ${eta}  loss ${loss.toFixed(4)} acc ${acc.toFixed(4)}`);
  }
  done(): void {
    if (this.enabled) fs.writeSync(2, '\r\x1b[K');
  }
}

/** One train per run folder at a time (src/lock.ts). */
export async function train(o: TrainOptions): Promise<TrainResult> {
  return withDirLock(o.out, 'train', () => trainLocked(o));
}

async function trainLocked(o: TrainOptions): Promise<TrainResult> {
  const log = o.logger ?? silentLogger;
  const m = openShards(o.shards, 'sha256');
  if (m.splits.train.rows === 0) throw new UserError(`${o.shards}: the train split is empty`);
  if (m.splits.val.rows === 0) throw new UserError(`${o.shards}: the val split is empty: early stopping needs validation rows`, 'prepare with a val share, e.g. --ratios 70,15,15');
  const { tf, backend, reason } = await initBackend(o.backend ?? 'auto', log);
  const run = o.out;
  ensureDir(run);
  prepareRunFolder(run, { resume: o.resume, force: o.force }); // one run per folder, crash leftovers cleared
  const ckpt = o.resume ? findCheckpoint(run) : null;
  if (o.resume && !ckpt) throw new UserError(`${run}: nothing to resume (no last/ checkpoint)`, 'start without --resume');
  let config: Record<string, unknown>;
  if (ckpt) {
    config = readRunInfo(run).config; // checked: src/runfiles.ts
    // a resumed run keeps its settings, except how long it may go on
    if (o.epochs !== undefined) config.epochs = o.epochs;
    if (o.patience !== undefined) config.patience = o.patience;
    // runs from before these settings existed trained this way
    config.monitor ??= 'val_loss';
    config.optimizer ??= 'rmsprop';
    config.lr_schedule ??= 'constant';
    if (config.shards_features && JSON.stringify(config.shards_features) !== JSON.stringify(m.features)) throw new UserError(`${o.shards}: features differ from the run being resumed`);
  } else {
    const d = TRAIN_DEFAULTS;
    const kind = o.model ?? d.model;
    config = {
      model: kind,
      units: o.units ?? d.units,
      project: o.project ?? d.project,
      window: kind === 'window' ? (o.window ?? d.window) : 1,
      learning_rate: o.learningRate ?? d.learning_rate,
      batch_size: o.batchSize ?? d.batch_size,
      epochs: o.epochs ?? d.epochs,
      patience: o.patience ?? d.patience,
      monitor: o.monitor ?? d.monitor,
      optimizer: o.optimizer ?? d.optimizer,
      lr_schedule: o.lrSchedule ?? d.lr_schedule,
      class_weights: o.classWeights ?? d.class_weights,
      max_benign_ratio: o.maxBenignRatio ?? null,
      seed: o.seed ?? 1,
      buffer_size: o.bufferSize ?? 65536,
      max_batches_per_epoch: o.maxBatchesPerEpoch ?? null,
      shards: path.resolve(o.shards),
    };
  }
  checkRunConfig(config, 'train'); // library callers get the CLI's limits too (a batch size of 0 trained forever)
  const spec: ModelSpec = { kind: config.model as ModelKind, features: m.num_features, classes: m.num_classes, units: config.units as number, project: config.project as number, window: config.window as number, seed: config.seed as number };
  const weights = config.class_weights === 'auto' || config.class_weights === 'sqrt' ? classWeights(m, config.class_weights) : null;
  const trainer: TrainResult['trainer'] = o.engine !== 'tfjs' && engineAvailable(spec.units) ? { engine: 'kernel', threads: Math.min(2, Math.max(1, o.threads ?? defaultTrainThreads())) } : { engine: 'tfjs', threads: 1 };
  const windowContext = spec.kind !== 'window' ? null : hasHostContext(m) ? 'host' : 'rows';
  if (windowContext === 'rows')
    log.warn({ shards: o.shards }, 'these shards carry no per-host context (no source addresses, or prepared by an older flowtensor): windows are consecutive rows, which on per-class files share a label and inflate scores');
  writeJsonAtomic(path.join(run, 'run.json'), {
    flowtensor_version: packageVersion(),
    ...provenance(tf as unknown as { version?: Record<string, string> }, ckpt ? run : undefined), // created, command line, versions
    config,
    backend: { name: backend, reason, lstm: kernelUnits(spec.units) ? lstmKernel().reason : `JavaScript gate loop (${spec.units} units: the kernel needs a multiple of 8)`, trainer: trainerText(trainer) },
    class_weights: weights ? Object.fromEntries(m.labels.map((l, i) => [l, weights[i]])) : null,
    // window model: each example is a row and its source host's previous flows ('host'), or consecutive rows
    window_context: windowContext,
    features: m.features,
    labels: m.labels,
    scaler: m.scaler,
    dataset: m.dataset,
    // what the data looked like, so that the run folder is self-contained (report, predict)
    shards_manifest: {
      splits: { train: m.splits.train.rows, val: m.splits.val.rows, test: m.splits.test.rows },
      class_counts: { train: m.splits.train.class_counts, val: m.splits.val.class_counts, test: m.splits.test.class_counts },
      accounting: m.accounting,
      quality: m.quality,
      options: m.options,
    },
  });

  let model: TF.LayersModel;
  let std: TF.LayersModel;
  let state: State;
  let savedOptimizer: NamedState[] | null = null;
  if (ckpt) {
    std = await loadModel(tf, ckpt);
    model = buildFused(tf, spec);
    copyWeights(std, model);
    compile(tf, model, config.learning_rate as number, weights, config.optimizer as OptimizerName);
    savedOptimizer = readOptimizer(ckpt);
    const saved = readState(ckpt); // states written before the monitor existed watched val_loss: best = best_val_loss
    state = { ...saved, lr: saved.lr ?? (config.learning_rate as number), stopped_early: false }; // asked to go on
    trimMetrics(run, state.epoch); // a kill between an epoch's metrics line and its checkpoint
    log.info({ run, from: path.basename(ckpt), epoch: state.epoch }, 'resuming');
  } else {
    std = buildModel(tf, spec);
    model = buildFused(tf, spec); // the same network and weights, computed by FusedLSTM (src/fusedlstm.ts)
    copyWeights(std, model);
    compile(tf, model, config.learning_rate as number, weights, config.optimizer as OptimizerName);
    state = { epoch: 0, best: null, best_val_loss: null, best_epoch: 0, bad_epochs: 0, lr: config.learning_rate as number, stopped_early: false };
    fs.rmSync(path.join(run, 'metrics.ndjson'), { force: true });
  }
  const epochs = config.epochs as number;
  const B = config.batch_size as number;
  // the training steps: the engine (WebAssembly kernel, batches cut in 8 fixed parts, one thread or two
  // worker threads, src/parallel.ts) where the kernel handles the model, else tfjs's trainOnBatch here
  const stepper = trainer.engine === 'kernel'
    ? await EngineStepper.create({
        spec,
        classWeights: weights,
        threads: trainer.threads,
        maxRows: B,
        optimizer: config.optimizer as OptimizerName,
        learningRate: state.lr,
        names: model.trainableWeights.map((w) => (w as unknown as { val?: { name: string } }).val?.name ?? w.name),
        weights: model.getWeights().map((t) => Float32Array.from(t.dataSync() as Float32Array)),
      })
    : null;
  // what runs is what is reported (run.json, the log): the threads the stepper actually started
  if (stepper) trainer.threads = stepper.threads;
  const optimizerState = stepper ? async () => stepper.optimizer.getWeights() : () => tfjsOptimizerState(model);
  /** The engine's weights into the tfjs model (validation, checkpoints). */
  const syncModel = () => {
    if (stepper) tf.tidy(() => model.setWeights(stepper.weightArrays().map((w, i) => tf.tensor(w.slice(), model.weights[i].shape as number[]))));
  };
  let interrupted = false;
  const history: EpochMetrics[] = [];
  try {
    if (savedOptimizer) {
      if (stepper) stepper.optimizer.setWeights(savedOptimizer);
      else await loadOptimizer(tf, model, savedOptimizer);
    } else {
      // the starting point is a checkpoint too: a stop in epoch 1 resumes from it, as any stop does from its epoch's start
      await writeCheckpoint(tf, model, std, run, 'last', state, optimizerState);
    }
    const monitor = config.monitor as Monitor;
    const patience = config.patience as number;
    // plateau schedule: halve the rate after a third of the patience without improvement
    const reduceAfter = Math.max(1, Math.round(patience / 3));
    const setLearningRate = (lr: number) => {
      if (stepper) stepper.learningRate = lr;
      else (model.optimizer as unknown as { learningRate: number }).learningRate = lr;
    };
    const metricsFile = path.join(run, 'metrics.ndjson');
    const prog = new TrainProgress(o.progress ?? process.stderr.isTTY === true);
    const stop = o.stop ?? { requested: false };
    const perEpoch = Math.ceil((config.max_benign_ratio !== null ? expectedRows(m, config.max_benign_ratio as number) : m.splits.train.rows) / B);
    const batchesPerEpoch = config.max_batches_per_epoch ? Math.min(perEpoch, config.max_batches_per_epoch as number) : perEpoch;
    log.info({ model: spec.kind, features: spec.features, classes: spec.classes, steps: spec.kind === 'seed' ? spec.features : spec.window, batch: B, batches_per_epoch: batchesPerEpoch, params: model.countParams(), trainer: trainerText(trainer) }, 'training');
    // TensorBoard event files on every backend (src/tensorboard.ts); a resumed run appends a new file per run
    const tb = new TensorBoardWriter(path.join(run, 'tb'), { fresh: !ckpt, firstStep: state.epoch + 1 });
    while (state.epoch < epochs && !state.stopped_early) {
      const epoch = state.epoch + 1;
      setLearningRate(state.lr);
      const t0 = performance.now();
      let seen = 0;
      let lossSum = 0;
      let accSum = 0;
      let k = 0;
      const maxK = (config.max_batches_per_epoch as number | null) ?? Infinity;
      const batches = splitBatches(o.shards, m, 'train', { batchSize: B, window: spec.kind === 'window' ? spec.window : 1, shuffle: true, seed: (config.seed as number) * 1000 + epoch, bufferSize: config.buffer_size as number, maxBenignRatio: (config.max_benign_ratio as number | null) ?? undefined });
      const ended: IteratorResult<BatchArrays, void> = { done: true, value: undefined };
      let next = batches.next();
      while (!next.done) {
        const b = next.value;
        let loss: number;
        let acc: number;
        if (stepper) {
          stepper.start(b);
          next = k + 1 < maxK ? batches.next() : ended; // the next batch is read while the threads compute this one
          ({ loss, acc } = await stepper.finish());
        } else {
          const { xs, ys } = toTensors(tf, spec, b, weights !== null);
          [loss, acc] = (await model.trainOnBatch(xs, ys)) as number[];
          xs.dispose();
          ys.dispose();
          next = k + 1 < maxK ? batches.next() : ended;
        }
        lossSum += loss * b.n;
        accSum += acc * b.n;
        seen += b.n;
        k++;
        prog.update(epoch, epochs, k, batchesPerEpoch, seen / ((performance.now() - t0) / 1000), lossSum / seen, accSum / seen);
        // let signal handlers and timers run: trainOnBatch resolves through microtasks only
        await new Promise<void>((res) => setImmediate(res));
        if (stop.requested) {
          interrupted = true;
          break;
        }
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      prog.done();
      if (interrupted) {
        // the epoch did not finish: keep the last complete checkpoint, but save progress as a separate one
        log.warn({ epoch, batches: k }, 'interrupted: stopping after this batch');
        break;
      }
      syncModel();
      const val = await evaluateSplit(tf, model, o.shards, m, 'val', spec);
      const valF1 = val.confusion.report().macro_f1;
      const em: EpochMetrics = { epoch, loss: lossSum / seen, acc: accSum / seen, val_loss: val.loss, val_acc: val.acc, val_macro_f1: valF1, lr: state.lr, samples_per_s: Math.round(seen / trainSeconds), seconds: +((performance.now() - t0) / 1000).toFixed(2), samples: seen };
      history.push(em);
      fs.appendFileSync(metricsFile, JSON.stringify(em) + '\n');
      reportEpoch(log, em, epochs, o.progress ?? process.stderr.isTTY === true);
      tb.epoch(em);
      state.epoch = epoch;
      if (improves(monitor, state, em)) {
        state.best = monitor === 'val_loss' ? em.val_loss : em.val_macro_f1;
        state.best_val_loss = em.val_loss;
        state.best_epoch = epoch;
        state.bad_epochs = 0;
        await writeCheckpoint(tf, model, std, run, 'best', state, null);
      } else {
        state.bad_epochs++;
        if (state.bad_epochs >= patience) {
          state.stopped_early = true;
          log.info({ epoch, best_epoch: state.best_epoch, patience, monitor }, `early stopping: ${monitor} stopped improving`);
        } else if (config.lr_schedule === 'plateau' && state.bad_epochs % reduceAfter === 0) {
          state.lr /= 2;
          log.info({ epoch, lr: state.lr, monitor }, `learning rate halved: ${monitor} did not improve for ${reduceAfter} epochs`);
        }
      }
      await writeCheckpoint(tf, model, std, run, 'last', state, optimizerState);
    }
  } finally {
    await stepper?.dispose();
  }
  if (interrupted) {
    // last/ holds the last finished epoch (or the start): --resume runs the interrupted epoch again from its
    // start, with the same data order, so a resumed run trains exactly as an uninterrupted one
    log.warn({ run, checkpoint: 'last', resume_at_epoch: state.epoch + 1 }, 'stopped; --resume goes on from the last finished epoch');
    model.dispose();
    std.dispose();
    return { run, epochs: history, best_epoch: state.best_epoch, interrupted, backend, trainer };
  }
  // the best weights become the run's model
  const bestDir = path.join(run, 'best');
  if (!fs.existsSync(path.join(bestDir, 'model.json'))) throw new UserError(`${run}: no best checkpoint was written`);
  for (const f of ['model.json', 'weights.bin']) fs.copyFileSync(path.join(bestDir, f), path.join(run, `.${f}.tmp-${process.pid}`));
  for (const f of ['weights.bin', 'model.json']) fs.renameSync(path.join(run, `.${f}.tmp-${process.pid}`), path.join(run, f));
  model.dispose();
  std.dispose();
  const best = await loadFused(tf, run, spec);
  let report: Report | undefined;
  if (m.splits.test.rows > 0) {
    const ev = await evaluateSplit(tf, best, o.shards, m, 'test', spec);
    report = ev.confusion.report();
    writeJsonAtomic(path.join(run, 'eval.json'), { split: 'test', shards: path.resolve(o.shards), best_epoch: state.best_epoch, loss: ev.loss, ...report });
    log.info({ split: 'test', macro_f1: +report.macro_f1.toFixed(4), accuracy: +report.accuracy.toFixed(4), majority_macro_f1: +report.majority_macro_f1.toFixed(4) }, 'evaluation of the best model');
  }
  best.dispose();
  return { run, epochs: history, best_epoch: state.best_epoch, interrupted, eval: report, backend, trainer };
}

/** A saved run's model as its fused twin (the fast form for predicting). */
export async function loadFused(tf: Tf, dir: string, spec: ModelSpec): Promise<TF.LayersModel> {
  const std = await loadModel(tf, dir);
  const fused = buildFused(tf, spec);
  copyWeights(std, fused);
  std.dispose();
  return fused;
}

function trainerText(t: TrainResult['trainer']): string {
  return t.engine === 'kernel' ? `training engine (WebAssembly kernel), ${t.threads} thread${t.threads > 1 ? 's' : ''}` : 'tfjs trainOnBatch, one thread';
}

function expectedRows(m: Manifest, ratio: number): number {
  const nb = m.splits.train.class_counts[benignClass(m)] ?? 0;
  const others = m.splits.train.rows - nb;
  return others + Math.min(nb, Math.round(ratio * others));
}

/** `flowtensor eval`: a saved run on a split of a shard folder. */
export async function evalRun(o: { model: string; shards: string; split: SplitName; backend?: BackendName | 'auto'; logger?: Logger }): Promise<Report & { loss: number }> {
  const m = openShards(o.shards, 'sha256');
  if (m.splits[o.split].rows === 0) throw new UserError(`${o.shards}: the ${o.split} split is empty: nothing to evaluate`, 'give a split with rows (--split train|val|test)');
  const runInfo = readRunInfo(o.model);
  if (JSON.stringify(runInfo.features) !== JSON.stringify(m.features)) throw new UserError(`${o.shards}: its features differ from those ${o.model} was trained on`);
  if (JSON.stringify(runInfo.labels) !== JSON.stringify(m.labels)) throw new UserError(`${o.shards}: its label vocabulary differs from the run's`);
  const { tf } = await initBackend(o.backend ?? 'auto', o.logger);
  const c = runInfo.config;
  const model = await loadFused(tf, o.model, { kind: c.model, features: m.num_features, classes: m.num_classes, units: c.units, project: c.project, window: c.window, seed: c.seed });
  const ev = await evaluateSplit(tf, model, o.shards, m, o.split, { kind: c.model, features: m.num_features, window: c.window });
  model.dispose();
  return { ...ev.confusion.report(), loss: ev.loss };
}
