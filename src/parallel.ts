// Data-parallel training steps over two threads. Each batch is cut into the engine's fixed parts
// (src/trainengine.ts: batchParts, 8 of them); with two threads, one worker thread and this thread take
// the parts as they come free (an atomic counter): the worker from the moment a step starts, this thread
// once it has read the next batch, so a thread slowed by other work on the machine takes fewer; with
// one, this thread computes them in order. Either way the parts' gradients are summed in part order and
// one optimizer step (src/optim.ts, tfjs's update in float32) is applied to the one copy of the weights,
// so the thread count changes the speed, never the result (a test checks bit-identical runs). (Two
// workers with this thread only waiting put three busy threads on two cores: measured slower.)
//
// Shared memory, no messages per step: the weights, two batch buffers (the next batch is read from the
// shards while the worker computes this one), each part's gradients and loss live in SharedArrayBuffers;
// a step is started by bumping a sequence number (Atomics.notify), each finished part adds one to a
// counter, and this thread waits (a short spin, then Atomics.wait) until all parts are done.
import { Worker } from 'node:worker_threads';
import { TrainEngine, PARTS, batchParts, flatLayout, splitFlat, weightShapes, type EngineSpec } from './trainengine.js';
import { FlatOptimizer } from './optim.js';
import { workerExecArgv } from './errors.js';
import type { OptimizerName } from './train.js';
import type { BatchArrays } from './shardset.js';

/** Control words of the shared Int32Array (src/trainworker.ts uses the same). */
export const CTRL = {
  SEQ: 0, // step number the workers are asked to run (-1: exit)
  BUF: 1, // which batch buffer holds it
  ROWS: 2, // rows in the batch
  NEXT: 3, // the next part to take, as partBase(step) + part (a worker late for a step cannot take the next step's parts)
  DONE: 4, // parts finished
  FAIL: 5, // a worker failed (its message follows by postMessage)
  SIZE: 6,
};
const { SEQ, BUF, ROWS, NEXT, DONE, FAIL } = CTRL;
/** How long a thread spins on the step counter or the done counter before it sleeps (a futex wake-up costs about as much). */
export const SPIN_MS = 0.1;
/** NEXT's value before a step's first part is taken. */
export const partBase = (seq: number) => (seq % (1 << 20)) * 32;

/**
 * The parts of step `seq` (a batch of n rows in x, y) this thread can take, computed with its engine as
 * they come free: a compare-exchange on NEXT, keyed by the step, so that a thread late for one step cannot
 * take a part of the next one; the weights are loaded once, on the first part taken. After each part,
 * `finished()`. With `failed`, a part that throws is reported there and still finished (the worker);
 * without, the error is thrown (the main thread).
 */
export function takeParts(ctrl: Int32Array, seq: number, n: number, eng: TrainEngine, weights: Float32Array, x: Float32Array, y: Int32Array, grads: Float32Array[], stats: Float64Array, finished: () => void, failed?: (e: unknown) => void): void {
  const parts = batchParts(n);
  const base = partBase(seq);
  let loaded = false;
  for (;;) {
    const v = Atomics.load(ctrl, NEXT);
    if (v < base || v >= base + PARTS) break;
    if (Atomics.compareExchange(ctrl, NEXT, v, v + 1) !== v) continue;
    const p = v - base;
    try {
      if (!loaded) eng.setWeights(weights, parts[0][1]);
      loaded = true;
      const r = eng.part(x, y, parts[p][0], parts[p][1], 1 / n, grads[p]);
      stats[2 * p] = r.loss;
      stats[2 * p + 1] = r.correct;
    } catch (e) {
      if (!failed) throw e;
      failed(e);
    }
    finished();
  }
}

export interface WorkerData {
  spec: EngineSpec;
  classWeights: number[] | null;
  maxRows: number;
  ctrl: SharedArrayBuffer;
  weights: SharedArrayBuffer;
  xs: SharedArrayBuffer[];
  ys: SharedArrayBuffer[];
  grads: SharedArrayBuffer;
  stats: SharedArrayBuffer;
}

export interface StepResult {
  /** batch mean of the (class-weighted) loss */
  loss: number;
  /** share of rows predicted right */
  acc: number;
}

/**
 * Trains a fused model's weights with the engine: `start(batch)` hands a batch to the threads (or
 * keeps it, with one thread), `finish()` waits for its gradients and applies the optimizer step.
 * Between the two the caller may read the next batch.
 */
export class EngineStepper {
  readonly weights: Float32Array;
  readonly optimizer: FlatOptimizer;
  private shapes: number[][];
  private size: number;
  private per: number;
  private ctrl: Int32Array;
  private xs: Float32Array[];
  private ys: Int32Array[];
  private grads: Float32Array[];
  private stats: Float64Array;
  private sum: Float32Array;
  private workers: Worker[] = [];
  private failure: Error | null = null;
  private local: TrainEngine | null = null;
  private seq = 0;
  private pending: { n: number; buf: number } | null = null;

  private constructor(
    private spec: EngineSpec,
    private classWeights: number[] | null,
    readonly threads: number,
    private maxRows: number,
    optimizer: OptimizerName,
    learningRate: number,
    names: string[],
    initial: Float32Array[],
  ) {
    this.shapes = weightShapes(spec);
    this.size = flatLayout(this.shapes).size;
    this.per = spec.kind === 'seed' ? spec.features : spec.window * spec.features;
    const sab = (bytes: number) => new SharedArrayBuffer(Math.max(8, bytes));
    this.ctrl = new Int32Array(sab(4 * CTRL.SIZE));
    this.weights = new Float32Array(sab(4 * this.size));
    let off = 0;
    for (const w of initial) {
      this.weights.set(w, off);
      off += w.length;
    }
    if (off !== this.size) throw new Error(`training engine: ${off} weights given, the model has ${this.size}`);
    this.xs = [0, 1].map(() => new Float32Array(sab(4 * maxRows * this.per)));
    this.ys = [0, 1].map(() => new Int32Array(sab(4 * maxRows)));
    const gradsBuf = sab(4 * this.size * PARTS);
    this.grads = Array.from({ length: PARTS }, (_, p) => new Float32Array(gradsBuf, 4 * this.size * p, this.size));
    this.stats = new Float64Array(sab(8 * 2 * PARTS));
    this.sum = new Float32Array(this.size);
    this.optimizer = new FlatOptimizer(optimizer, learningRate, names, this.shapes);
  }

  /** One thread: the engine here; two: this thread and a worker thread taking the parts as they come free (started and ready when this resolves). */
  static async create(o: { spec: EngineSpec; classWeights: number[] | null; threads: number; maxRows: number; optimizer: OptimizerName; learningRate: number; names: string[]; weights: Float32Array[] }): Promise<EngineStepper> {
    const threads = o.threads >= 2 ? 2 : 1;
    const s = new EngineStepper(o.spec, o.classWeights, threads, o.maxRows, o.optimizer, o.learningRate, o.names, o.weights);
    s.local = new TrainEngine(o.spec, o.classWeights);
    if (threads === 2) await s.startWorkers(1);
    return s;
  }

  private async startWorkers(count: number): Promise<void> {
    const data = (): WorkerData => ({
      spec: this.spec,
      classWeights: this.classWeights,
      maxRows: this.maxRows,
      ctrl: this.ctrl.buffer as SharedArrayBuffer,
      weights: this.weights.buffer as SharedArrayBuffer,
      xs: this.xs.map((x) => x.buffer as SharedArrayBuffer),
      ys: this.ys.map((y) => y.buffer as SharedArrayBuffer),
      grads: this.grads[0].buffer as SharedArrayBuffer,
      stats: this.stats.buffer as SharedArrayBuffer,
    });
    const ready: Promise<void>[] = [];
    for (let p = 0; p < count; p++) {
      const w = new Worker(new URL('./trainworker.js', import.meta.url), { workerData: data(), execArgv: workerExecArgv() });
      this.workers.push(w);
      ready.push(
        new Promise<void>((res, rej) => {
          w.on('message', (m: { ready?: boolean; error?: string }) => {
            if (m.ready) res();
            else if (m.error) {
              this.failure ??= new Error(`training worker ${p}: ${m.error}`);
              rej(this.failure);
            }
          });
          w.once('error', (e) => {
            this.failure ??= e;
            rej(e);
          });
          w.once('exit', (code) => {
            if (this.seq >= 0 && code !== 0) this.failure ??= new Error(`training worker ${p} exited with code ${code}`);
            res();
          });
        }),
      );
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await this.dispose();
      throw e;
    }
  }

  set learningRate(lr: number) {
    this.optimizer.learningRate = lr;
  }

  /** The weights as the model's arrays (views of the shared weights). */
  weightArrays(): Float32Array[] {
    return splitFlat(this.weights, this.shapes);
  }

  /** Hands a batch over; with worker threads they start on it at once. */
  start(b: BatchArrays): void {
    if (this.pending) throw new Error('training engine: start() twice without finish()');
    if (b.n > this.maxRows) throw new Error(`training engine: a batch of ${b.n} rows, at most ${this.maxRows}`);
    const buf = this.seq & 1;
    this.xs[buf].set(b.x.subarray(0, b.n * this.per));
    this.ys[buf].set(b.y.subarray(0, b.n));
    this.pending = { n: b.n, buf };
    this.seq++;
    if (this.workers.length) {
      Atomics.store(this.ctrl, BUF, buf);
      Atomics.store(this.ctrl, ROWS, b.n);
      Atomics.store(this.ctrl, NEXT, partBase(this.seq));
      Atomics.store(this.ctrl, DONE, 0);
      Atomics.store(this.ctrl, SEQ, this.seq);
      Atomics.notify(this.ctrl, SEQ);
    }
  }

  /** Waits for the batch's gradients, applies the optimizer step and returns the batch's loss and accuracy. */
  async finish(): Promise<StepResult> {
    const job = this.pending;
    if (!job) throw new Error('training engine: finish() without start()');
    this.pending = null;
    const parts = batchParts(job.n);
    const local = this.local!;
    if (!this.workers.length) {
      local.setWeights(this.weights, parts[0][1]);
      parts.forEach(([r0, r1], p) => {
        const r = local.part(this.xs[job.buf], this.ys[job.buf], r0, r1, 1 / job.n, this.grads[p]);
        this.stats[2 * p] = r.loss;
        this.stats[2 * p + 1] = r.correct;
      });
    } else {
      // this thread takes the parts the worker has not taken yet
      takeParts(this.ctrl, this.seq, job.n, local, this.weights, this.xs[job.buf], this.ys[job.buf], this.grads, this.stats, () => void Atomics.add(this.ctrl, DONE, 1));
      // the worker's last part ends within a fraction of a millisecond: spin briefly before sleeping
      const until = performance.now() + SPIN_MS;
      while (Atomics.load(this.ctrl, DONE) < PARTS && performance.now() < until);
      for (let done = Atomics.load(this.ctrl, DONE); done < PARTS; done = Atomics.load(this.ctrl, DONE)) {
        if (Atomics.load(this.ctrl, FAIL) !== 0 || this.failure) await this.fail();
        if (Atomics.wait(this.ctrl, DONE, done, 1000) === 'timed-out') await new Promise<void>((res) => setImmediate(res));
      }
      if (Atomics.load(this.ctrl, FAIL) !== 0) await this.fail();
    }
    // the parts' gradients summed in part order, then one optimizer step (in the kernel where it loads)
    let loss = this.stats[0];
    let correct = this.stats[1];
    for (let p = 1; p < PARTS; p++) {
      loss += this.stats[2 * p];
      correct += this.stats[2 * p + 1];
    }
    if (!this.optimizer.applyParts(this.weights, this.grads)) {
      const sum = this.sum;
      sum.set(this.grads[0]);
      for (let p = 1; p < PARTS; p++) {
        const g = this.grads[p];
        for (let i = 0; i < sum.length; i++) sum[i] += g[i];
      }
      this.optimizer.apply(splitFlat(this.weights, this.shapes), splitFlat(sum, this.shapes));
    }
    return { loss, acc: correct / job.n };
  }

  private async fail(): Promise<never> {
    // the worker's message may still be on its way
    for (let k = 0; k < 100 && !this.failure; k++) await new Promise<void>((res) => setTimeout(res, 10));
    const e = this.failure ?? new Error('a training worker failed');
    await this.dispose();
    throw e;
  }

  async dispose(): Promise<void> {
    if (!this.workers.length) return;
    this.seq = -1;
    Atomics.store(this.ctrl, SEQ, -1);
    Atomics.notify(this.ctrl, SEQ);
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map((w) => w.terminate()));
  }
}
