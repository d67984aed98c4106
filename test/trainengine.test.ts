import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as TF from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { buildModel, buildFused, copyWeights, batchShape } from '../src/models.js';
import { TrainEngine, batchParts, flatLayout, weightShapes, splitFlat } from '../src/trainengine.js';
import { FlatOptimizer, iterationsOf } from '../src/optim.js';
import { compile, train } from '../src/train.js';
import fs from 'node:fs';
import path from 'node:path';
import { prep } from '../src/prep.js';
import { synthToFile } from '../src/synth.js';
import { tmpdir } from './helpers.js';

/** tfjs's gradients of the compiled loss (as trainOnBatch computes them) and the engine's, same weights and batch. */
async function both(kind: 'seed' | 'window', units: number, n: number, weighted: boolean, scaleWeights = 1) {
  const { tf } = await initBackend('auto');
  const spec = { kind, features: 11, classes: 5, units, project: 6, window: 3, seed: 3 };
  const std = buildModel(tf, spec);
  const fused = buildFused(tf, spec);
  if (scaleWeights !== 1) std.setWeights(std.getWeights().map((w) => tf.mul(w, scaleWeights)));
  copyWeights(std, fused);
  const cw = weighted ? [0.5, 2, 1, 3, 0.25] : null;
  compile(tf, fused, 0.01, cw, 'rmsprop');
  const x = tf.randomUniform(batchShape(spec, n), -2, 2, 'float32', 9);
  const yArr = Int32Array.from({ length: n }, (_, i) => (i * 7 + 3) % 5);
  const ys = cw ? tf.oneHot(tf.tensor1d(yArr, 'int32'), 5).cast('float32') : tf.tensor1d(Float32Array.from(yArr));
  const vars = fused.trainableWeights.map((w) => (w as unknown as { val: TF.Variable }).val);
  // the compiled loss, reduced as trainOnBatch reduces it
  const lossFn = (fused as unknown as { model: { lossFunctions: ((a: TF.Tensor, b: TF.Tensor) => TF.Tensor)[] } }).model.lossFunctions[0]; // a Sequential compiles its inner model
  const { value, grads } = tf.variableGrads(() => tf.mean(lossFn(ys, fused.apply(x, { training: true }) as TF.Tensor)) as TF.Scalar, vars);
  const tfGrads = vars.map((v) => grads[v.name].dataSync() as Float32Array);
  const shapes = weightShapes(spec);
  const { size } = flatLayout(shapes);
  const w = new Float32Array(size);
  let off = 0;
  for (const t of fused.getWeights()) {
    w.set(t.dataSync() as Float32Array, off);
    off += t.size;
  }
  const eng = new TrainEngine(spec, cw);
  const xa = x.dataSync() as Float32Array;
  const total = new Float32Array(size);
  eng.setWeights(w, Math.ceil(n / 8));
  let loss = 0;
  for (const [r0, r1] of batchParts(n)) {
    const g = new Float32Array(size);
    loss += eng.part(xa, yArr, r0, r1, 1 / n, g).loss;
    for (let i = 0; i < size; i++) total[i] += g[i];
  }
  return { tfLoss: value.dataSync()[0], loss, tfGrads, grads: splitFlat(total, shapes), shapes, names: vars.map((v) => v.name) };
}

test('training engine: loss and every gradient match tfjs (seed and window, weighted and not, saturating weights, odd batch)', async () => {
  for (const [kind, units, n, weighted, scale] of [['seed', 8, 37, true, 1], ['window', 8, 37, true, 1], ['seed', 16, 64, false, 1], ['window', 32, 65, false, 1], ['window', 16, 20, true, 4], ['seed', 8, 1, true, 3]] as const) {
    const r = await both(kind, units, n, weighted, scale);
    assert.ok(Math.abs(r.loss - r.tfLoss) <= 1e-5 * Math.max(1, Math.abs(r.tfLoss)), `${kind} ${units}: loss ${r.loss} vs ${r.tfLoss}`);
    r.tfGrads.forEach((g, k) => {
      let d = 0;
      let m = 0;
      for (let i = 0; i < g.length; i++) {
        d = Math.max(d, Math.abs(g[i] - r.grads[k][i]));
        m = Math.max(m, Math.abs(g[i]));
      }
      assert.ok(d <= 2e-5 * Math.max(1e-2, m), `${kind} ${units} n ${n}: gradient ${k} ${r.names[k]} [${r.shapes[k]}]: max |d| ${d}, max |g| ${m}`);
    });
  }
});

test('FlatOptimizer updates weights and state as tf.train.rmsprop / adam do, bit for bit; its state round-trips', async () => {
  const { tf } = await initBackend('auto');
  for (const kind of ['rmsprop', 'adam'] as const) {
    const shapes = [[3, 4], [4]];
    const init = shapes.map((s, i) => tf.randomNormal(s, 0, 1, 'float32', 10 + i));
    const vars = init.map((t, i) => tf.variable(t, true, `opt_test_${kind}_${i}`));
    const opt = (kind === 'rmsprop' ? tf.train.rmsprop(0.003) : tf.train.adam(0.003)) as unknown as { learningRate: number; applyGradients(g: Record<string, TF.Tensor>): void; getWeights(): Promise<{ name: string; tensor: TF.Tensor }[]> };
    const flat = new FlatOptimizer(kind, 0.003, vars.map((v) => v.name), shapes);
    const ws = init.map((t) => Float32Array.from(t.dataSync() as Float32Array));
    for (let step = 0; step < 5; step++) {
      const gs = shapes.map((s, i) => tf.randomNormal(s, 0, step === 2 ? 1e-4 : 1, 'float32', 100 * step + i));
      if (step === 3) {
        opt.learningRate = 0.0015;
        flat.learningRate = 0.0015;
      }
      opt.applyGradients(Object.fromEntries(vars.map((v, i) => [v.name, gs[i]])));
      flat.apply(ws, gs.map((g) => g.dataSync() as Float32Array));
      vars.forEach((v, i) => assert.deepEqual(Array.from(ws[i]), Array.from(v.dataSync()), `${kind} step ${step} variable ${i}`));
    }
    const tfState = await opt.getWeights();
    const mine = flat.getWeights();
    assert.deepEqual(mine.map((w) => w.name), tfState.map((w) => w.name));
    mine.slice(1).forEach((w, i) => assert.deepEqual(Array.from(w.values), Array.from(tfState[i + 1].tensor.dataSync())));
    const again = new FlatOptimizer(kind, 0.003, vars.map((v) => v.name), shapes);
    again.setWeights(mine);
    assert.deepEqual(again.getWeights(), mine);
  }
  // the training engine's step (applyParts: parts summed in order, then the update, in the kernel) gives
  // the bits of summing into a float32 array and apply(); 17 weights: a tail past the kernel's 4 lanes
  for (const kind of ['rmsprop', 'adam'] as const) {
    const shapes = [[3, 4], [5]];
    const a = new FlatOptimizer(kind, 0.003, ['a', 'b'], shapes);
    const b = new FlatOptimizer(kind, 0.003, ['a', 'b'], shapes);
    const wa = Float32Array.from({ length: 17 }, (_, i) => Math.sin(i + 1));
    const wb = wa.slice();
    for (let step = 0; step < 4; step++) {
      const parts = [0, 1, 2].map((p) => Float32Array.from({ length: 17 }, (_, i) => Math.cos(step * 31 + p * 7 + i) * (p === 1 ? 1e-3 : 1)));
      const sum = parts[0].slice();
      for (const g of parts.slice(1)) for (let i = 0; i < 17; i++) sum[i] += g[i];
      a.apply(splitFlat(wa, shapes), splitFlat(sum, shapes));
      assert.ok(b.applyParts(wb, parts), 'the kernel step runs here');
      assert.deepEqual(Array.from(wb), Array.from(wa), `${kind} step ${step}: weights`);
      assert.deepEqual(b.getWeights(), a.getWeights(), `${kind} step ${step}: state`);
    }
  }
  // a checkpoint of an older flowtensor holds tfjs's int32 iteration count in the float32 file
  assert.equal(iterationsOf(new Float32Array(Int32Array.of(1234).buffer)[0]), 1234);
  assert.equal(iterationsOf(1234), 1234);
});

async function synthShards(rows: number, seed: number): Promise<string> {
  const d = tmpdir();
  const csv = path.join(d, 'a.csv');
  synthToFile(csv, { rows, seed, classes: ['BENIGN', 'DDoS', 'PortScan', 'DoS Hulk', 'SSH-Patator'] });
  const out = path.join(d, 'shards');
  await prep({ out, inputs: [csv], workers: 0, shardRows: 2000 });
  return out;
}

const strip = (run: string) =>
  fs.readFileSync(path.join(run, 'metrics.ndjson'), 'utf8').trim().split('\n').map((l) => {
    const { seconds, samples_per_s, ...rest } = JSON.parse(l);
    return rest;
  });

test('one thread and two train bit for bit the same (seed and window): metrics, weights, optimizer state, evaluation', async () => {
  const dir = await synthShards(5000, 21);
  for (const model of ['seed', 'window'] as const) {
    const runs: string[] = [];
    const results = [];
    for (const threads of [1, 2]) {
      const out = path.join(tmpdir(), `run-${model}-${threads}`);
      const r = await train({ shards: dir, out, model, window: 3, epochs: 2, batchSize: 97, progress: false, threads });
      assert.deepEqual(r.trainer, { engine: 'kernel', threads });
      const info = JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8'));
      assert.match(info.backend.trainer, new RegExp(`${threads} thread`));
      runs.push(out);
      results.push(r);
    }
    assert.deepEqual(strip(runs[0]), strip(runs[1]), `${model}: metrics.ndjson`);
    // (optimizer.json differs: it names tfjs's variables, whose suffixes count the models built in the process)
    for (const f of ['weights.bin', 'last/weights.bin', 'last/optimizer.bin', 'best/weights.bin', 'eval.json'])
      assert.ok(fs.readFileSync(path.join(runs[0], f)).equals(fs.readFileSync(path.join(runs[1], f))), `${model}: ${f} differs`);
  }
});

test('the engine trains as tfjs does, within the documented tolerance (same seed, data, defaults)', async () => {
  const dir = await synthShards(6000, 22);
  for (const model of ['seed', 'window'] as const) {
    const opts = { shards: dir, model, window: 3, epochs: 3, patience: 5, batchSize: 128, progress: false };
    const k = await train({ ...opts, out: path.join(tmpdir(), 'k') });
    const t = await train({ ...opts, out: path.join(tmpdir(), 't'), engine: 'tfjs' });
    assert.equal(k.trainer.engine, 'kernel');
    assert.equal(t.trainer.engine, 'tfjs');
    // docs/DESIGN.md, "Training on two threads": the first epoch agrees to 1e-4 (measured 1e-8 to 8e-6); after it
    // RMSprop turns last-bit differences of tiny gradient elements into whole steps and the runs drift apart as
    // any last-bit change makes them (the window model here stays within 1e-7 for 3 epochs, the seed model's
    // train loss within 1.4%); bounded here at 5% of the train loss
    for (let e = 0; e < 3; e++) {
      for (const key of ['loss', 'val_loss'] as const) {
        const a = k.epochs[e][key];
        const b = t.epochs[e][key];
        const tol = e === 0 ? 1e-4 : key === 'loss' ? 0.05 : Infinity;
        assert.ok(Math.abs(a - b) <= tol * Math.abs(b), `${model} epoch ${e + 1} ${key}: engine ${a}, tfjs ${b}`);
      }
    }
  }
});
